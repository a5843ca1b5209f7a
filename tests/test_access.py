# -*- test-case-name: tests.test_access -*-
"""
Tests for the access layer (L{gateway.store.access}): names of other
accounts' mailboxes, rights on every operation, listing, ACL changes,
RENAME/DELETE carrying the ACL, delivery with C{p}, copies across accounts.
"""

import os

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from gateway.cred.passwords import hashPassword
from gateway.cred.realm import SHARED_INDEX, GatewayRealm
from gateway.errors import NoSuchMailbox, PermissionDenied, QuotaExceeded
from gateway.interfaces import IMailbox, IMailboxAccess, IViewerAccess
from gateway.store import acl
from gateway.store.access import SharedMailbox, transfer, transferLater
from gateway.store.mail import MailStore
from gateway.store.mailbox import Mailbox
from tests.support import PASSWORD, makeDataRoot

MESSAGE = b"From: boss@example.test\r\nSubject: plan\r\n\r\nHello\r\n"


def makeSharingRealm(test, quota=None, clock=None):
    """
    A realm over a data root with demo@ and other@example.test (as
    L{makeDataRoot} makes them), boss@b.test, and public@example.test.

    @param clock: the stores' reactor (a L{Clock}, whose stores write at
        once, by default).
    """
    root = test.mktemp()
    directory = makeDataRoot(root)
    directory.addDomain("b.test")
    directory.addAccount("boss@b.test", hashPassword(PASSWORD, "PLAIN"), quota=quota,
                         quotaSetting=str(quota) if quota else "default")
    directory.addAccount("public@example.test", hashPassword(PASSWORD, "PLAIN"), enabled=False)
    if clock is None:
        clock = Clock()
    realm = GatewayRealm(directory, mailStoreFactory=lambda path, quota: MailStore(
        path, quota=quota, reactor=clock, useInotify=False))
    test.addCleanup(realm.access.sharedIndex.close)
    return realm


class AccessTests(unittest.TestCase):
    def setUp(self):
        self.realm = makeSharingRealm(self)
        self.boss = self.realm.accountFor("boss@b.test").access
        self.demo = self.realm.accountFor("demo@example.test").access
        self.other = self.realm.accountFor("other@example.test").access

    def test_interfaces(self):
        """The layer and a viewer's access provide their interfaces."""
        self.assertTrue(verifyObject(IMailboxAccess, self.realm.access))
        self.assertTrue(verifyObject(IViewerAccess, self.demo))

    def test_names(self):
        """~account (viewer's domain), ~account@domain and own names resolve to their owners."""
        loc = self.demo.resolve("~boss@b.test/Calendar")
        self.assertEqual((loc.owner, loc.name), ("boss@b.test", "Calendar"))
        loc = self.demo.resolve("~other/inbox")
        self.assertEqual((loc.owner, loc.name), ("other@example.test", "INBOX"))
        loc = self.demo.resolve("Sent")
        self.assertEqual((loc.owner, loc.name), ("demo@example.test", "Sent"))
        self.assertEqual(self.demo.nameOf(self.demo.resolve("~boss@b.test/Calendar")), "~boss@b.test/Calendar")
        self.assertEqual(self.demo.nameOf(self.demo.resolve("~other/Sent")), "~other/Sent")
        self.assertRaises(NoSuchMailbox, self.demo.resolve, "~boss")

    def test_invisibleLikeMissing(self):
        """Without any right a shared mailbox raises the same error as a missing one."""
        self.assertRaises(NoSuchMailbox, self.demo.getMailbox, "~boss@b.test/Calendar")
        self.assertRaises(NoSuchMailbox, self.demo.getMailbox, "~boss@b.test/Nothing")
        self.assertRaises(NoSuchMailbox, self.demo.getMailbox, "~nobody/INBOX")
        self.assertRaises(NoSuchMailbox, self.demo.myRights, "~boss@b.test/Calendar")

    def test_lookupOnly(self):
        """With l but not r, opening for reading is refused with PermissionDenied."""
        self.boss.setACL("Calendar", "demo@example.test", "l")
        self.assertRaises(PermissionDenied, self.demo.getMailbox, "~boss@b.test/Calendar")
        # p: anyone may post into a Calendar (mail.DEFAULT_ACLS).
        self.assertEqual(self.demo.myRights("~boss@b.test/Calendar"), frozenset("lp"))

    def test_readAndShare(self):
        """With lr the viewer reads the owner's mailbox object; flags it may not set are dropped."""
        inbox = self.realm.accountFor("boss@b.test").mailStore.getMailbox("Calendar")
        uid = inbox.appendMessage(MESSAGE)
        self.boss.setACL("Calendar", "demo@example.test", "lrs")
        mailbox = self.demo.getMailbox("~boss@b.test/Calendar")
        self.assertIsInstance(mailbox, SharedMailbox)
        self.assertTrue(verifyObject(IMailbox, mailbox))
        self.assertEqual(mailbox.name, "~boss@b.test/Calendar")
        self.assertEqual(mailbox.uids(), [uid])
        self.assertEqual(mailbox.openMessage(uid).read(), MESSAGE)
        changed, _ = mailbox.setFlags([uid], ["\\Seen", "\\Flagged", "\\Deleted"], "+")
        self.assertEqual([info.flags for info in changed], [frozenset(["\\Seen"])])
        self.assertEqual(mailbox.messages([uid])[0].flags, frozenset(["\\Seen"]))
        self.assertEqual(inbox.messages([uid])[0].flags, frozenset())
        self.assertRaises(PermissionDenied, mailbox.expunge)
        self.assertRaises(PermissionDenied, mailbox.appendMessage, MESSAGE)

    def test_replaceKeepsForbiddenFlags(self):
        """STORE FLAGS (replace) by a viewer with s only keeps the other flags as they are."""
        inbox = self.realm.accountFor("boss@b.test").mailStore.getMailbox("INBOX")
        uid = inbox.appendMessage(MESSAGE, ["\\Flagged"])
        self.boss.setACL("INBOX", "demo@example.test", "lrs")
        mailbox = self.demo.getMailbox("~boss@b.test/INBOX")
        mailbox.setFlags([uid], ["\\Seen"], "=")
        self.assertEqual(mailbox.messages([uid])[0].flags, frozenset(["\\Seen", "\\Flagged"]))
        mailbox.setFlags([uid], [], "=")
        self.assertEqual(mailbox.messages([uid])[0].flags, frozenset(["\\Flagged"]))
        self.boss.setACL("INBOX", "demo@example.test", "w", "+")
        mailbox.setFlags([uid], ["$Done", "\\Seen"], "=")
        self.assertEqual(mailbox.messages([uid])[0].flags, frozenset(["\\Seen", "$Done"]))
        self.assertEqual(inbox.messages([uid])[0].flags, frozenset(["$Done"]))

    def test_rightsAreLive(self):
        """A right taken away applies to an open mailbox at once."""
        inbox = self.realm.accountFor("boss@b.test").mailStore.getMailbox("INBOX")
        uid = inbox.appendMessage(MESSAGE)
        self.boss.setACL("INBOX", "demo@example.test", "lr")
        mailbox = self.demo.getMailbox("~boss@b.test/INBOX")
        mailbox.openMessage(uid).close()
        self.boss.setACL("INBOX", "demo@example.test", "r", "-")
        self.assertRaises(PermissionDenied, mailbox.openMessage, uid)

    def test_anyoneAuthenticatedNegative(self):
        """anyone, authenticated and negative entries combine as RFC 4314 2 says."""
        self.boss.setACL("INBOX", "authenticated", "lr")
        self.boss.setACL("INBOX", "-other@example.test", "r")
        self.assertEqual(self.demo.rights("~boss@b.test/INBOX"), frozenset("lr"))
        self.assertEqual(self.other.rights("~boss@b.test/INBOX"), frozenset("l"))
        self.assertEqual(self.realm.access.rightsOf(None, self.demo.resolve("~boss@b.test/INBOX")),
                         frozenset())
        self.boss.setACL("INBOX", "anyone", "l")
        self.assertEqual(self.realm.access.rightsOf(None, self.demo.resolve("~boss@b.test/INBOX")),
                         frozenset("l"))

    def test_bareNameIsViewersDomain(self):
        """A bare identifier in SETACL means an account of the setter's domain."""
        own = self.realm.accountFor("demo@example.test").access
        own.setACL("Sent", "other", "lr")
        self.assertEqual(self.other.rights("~demo/Sent"), frozenset("lr"))
        self.assertEqual(own.getACL("Sent"), [("demo@example.test", False, acl.ALL_RIGHTS),
                                              ("other@example.test", False, frozenset("lr"))])

    def test_adminNeeded(self):
        """GETACL and SETACL need a; the owner cannot lose rights."""
        self.boss.setACL("INBOX", "demo@example.test", "lr")
        self.assertRaises(PermissionDenied, self.demo.getACL, "~boss@b.test/INBOX")
        self.assertRaises(PermissionDenied, self.demo.setACL, "~boss@b.test/INBOX", "demo@example.test", "lra")
        self.assertRaises(acl.ACLError, self.boss.setACL, "INBOX", "boss@b.test", "l")
        self.boss.setACL("INBOX", "demo@example.test", "a", "+")
        self.demo.setACL("~boss@b.test/INBOX", "other@example.test", "l")
        self.assertEqual(self.other.rights("~boss@b.test/INBOX"), frozenset("l"))

    def test_listing(self):
        """listMailboxes shows own mailboxes, shared ones with l, and \\Noselect levels above them."""
        self.boss.setACL("Calendar", "demo@example.test", "lr")
        self.boss.setACL("Drafts", "demo@example.test", "r")
        self.realm.accountFor("boss@b.test").mailStore.createMailbox("Work/Team")
        self.boss.setACL("Work/Team", "anyone", "l")
        listed = {m.name: m for m in self.demo.listMailboxes()}
        self.assertIn("INBOX", listed)
        self.assertIn("~boss@b.test/Calendar", listed)
        self.assertNotIn("~boss@b.test/Drafts", listed)
        self.assertIn("~boss@b.test/Work/Team", listed)
        self.assertFalse(listed["~boss@b.test/Work"].selectable)
        self.assertFalse(listed["~boss@b.test"].exists)
        self.assertEqual(listed["~boss@b.test/Calendar"].rights, frozenset("lrp"))
        self.assertNotIn("~demo", {m.name.split("/")[0] for m in self.demo.listMailboxes()})

    def test_public(self):
        """~public is the domain's public account; its mailboxes are shared like any other."""
        public = self.realm.accountFor("public@example.test").access
        public.createMailbox("news")
        public.setACL("news", "anyone", "lr")
        self.assertEqual(self.demo.rights("~public/news"), frozenset("lr"))
        self.assertIn("~public/news", [m.name for m in self.demo.listMailboxes()])
        self.assertEqual(self.realm.accountFor("boss@b.test").access.rights("~public@example.test/news"),
                         frozenset("lr"))

    def test_renameCarriesDeleteRemoves(self):
        """RENAME carries a mailbox's ACL (and its children's); DELETE removes it."""
        store = self.realm.accountFor("boss@b.test").mailStore
        store.createMailbox("Projects/Alpha")
        self.boss.setACL("Projects", "demo@example.test", "lr")
        self.boss.setACL("Projects/Alpha", "demo@example.test", "lrs")
        self.boss.renameMailbox("Projects", "Archive")
        self.assertEqual(self.demo.rights("~boss@b.test/Archive/Alpha"), frozenset("lrs"))
        self.assertEqual(self.demo.rights("~boss@b.test/Projects/Alpha"), frozenset())
        names = [m.name for m in self.demo.listMailboxes()]
        self.assertIn("~boss@b.test/Archive/Alpha", names)
        self.assertNotIn("~boss@b.test/Projects/Alpha", names)
        self.boss.deleteMailbox("Archive")  # has a child: stays as \\Noselect
        self.assertFalse(os.path.exists(os.path.join(store.path, "Archive", "dovecot-acl")))
        listed = {m.name: m for m in self.demo.listMailboxes()}
        self.assertFalse(listed["~boss@b.test/Archive"].exists)  # only the level above Alpha
        store.createMailbox("Archive")
        self.assertEqual(self.demo.rights("~boss@b.test/Archive"), frozenset())

    def test_createInherits(self):
        """A viewer with k creates a child in another account; it starts with the parent's ACL."""
        self.boss.setACL("INBOX", "demo@example.test", "lrk")
        self.demo.createMailbox("~boss@b.test/INBOX/From demo")
        self.assertEqual(self.demo.rights("~boss@b.test/INBOX/From demo"), frozenset("lrk"))
        self.assertRaises(PermissionDenied, self.other.createMailbox, "~boss@b.test/Top")
        self.assertRaises(NoSuchMailbox, self.other.createMailbox, "~boss@b.test/INBOX/x")

    def test_aclList(self):
        """The owner's dovecot-acl-list names the mailboxes others may look up."""
        self.boss.setACL("Calendar", "demo@example.test", "lr")
        self.boss.setACL("Sent", "demo@example.test", "r")
        path = os.path.join(self.realm.accountFor("boss@b.test").mailStore.path, "dovecot-acl-list")
        with open(path) as f:
            self.assertEqual(f.read(), "Calendar\n")
        self.boss.deleteACL("Calendar", "demo@example.test")
        self.boss.deleteACL("Sent", "demo@example.test")
        self.assertFalse(os.path.exists(path))

    def test_indexRebuiltWhenLost(self):
        """A lost shared index is rebuilt from the dovecot-acl files (ACLs survive)."""
        self.boss.setACL("Calendar", "demo@example.test", "lr")
        self.realm.access.sharedIndex.close()
        os.unlink(os.path.join(self.realm.directory.dataRoot, SHARED_INDEX))
        realm = GatewayRealm(self.realm.directory)
        self.addCleanup(realm.access.sharedIndex.close)
        names = [m.name for m in realm.accountFor("demo@example.test").access.listMailboxes()]
        self.assertIn("~boss@b.test/Calendar", names)

    def test_surviveRestart(self):
        """A new realm on the same data root (a restart) has the same sharing."""
        self.boss.setACL("Calendar", "demo@example.test", "lrs")
        realm = GatewayRealm(self.realm.directory)
        self.addCleanup(realm.access.sharedIndex.close)
        demo = realm.accountFor("demo@example.test").access
        self.assertEqual(demo.rights("~boss@b.test/Calendar"), frozenset("lrsp"))
        self.assertIn("~boss@b.test/Calendar", [m.name for m in demo.listMailboxes()])

    def test_handWrittenFile(self):
        """A dovecot-acl file written by hand is honoured by access checks."""
        store = self.realm.accountFor("boss@b.test").mailStore
        with open(os.path.join(store.path, "Notes", "dovecot-acl"), "w") as f:
            f.write("owner lrwstipekxa\nuser=demo@example.test lr\nbogus line here\n")
        self.assertEqual(self.demo.rights("~boss@b.test/Notes"), frozenset("lr"))
        self.demo.getMailbox("~boss@b.test/Notes")

    def test_deliveryTarget(self):
        """Delivery to account+box needs p for senders other than the owner; INBOX always works."""
        layer = self.realm.access
        self.assertEqual(layer.deliveryTarget("x@else.test", "boss@b.test").name, "INBOX")
        self.assertEqual(layer.deliveryTarget("boss@b.test", "boss@b.test", "Calendar").name, "Calendar")
        # A new account's Calendar lets anyone post (invitations to boss+Calendar@)...
        self.assertEqual(layer.deliveryTarget("x@else.test", "boss@b.test", "Calendar").name, "Calendar")
        # ...until the owner takes the right away.
        self.boss.deleteACL("Calendar", "anyone")
        self.assertRaises(NoSuchMailbox, layer.deliveryTarget, "x@else.test", "boss@b.test", "Calendar")
        self.boss.setACL("Calendar", "anyone", "p")
        self.assertEqual(layer.deliveryTarget("x@else.test", "boss@b.test", "Calendar").name, "Calendar")
        self.assertEqual(layer.deliveryTarget("", "boss@b.test", "Calendar").name, "Calendar")


class PrivateSeenTests(unittest.TestCase):
    def setUp(self):
        self.realm = makeSharingRealm(self)
        self.boss = self.realm.accountFor("boss@b.test").access
        self.demo = self.realm.accountFor("demo@example.test").access
        self.other = self.realm.accountFor("other@example.test").access
        self.inbox = self.realm.accountFor("boss@b.test").mailStore.getMailbox("INBOX")
        self.uids = [self.inbox.appendMessage(MESSAGE) for _ in range(3)]
        self.inbox.setFlags([self.uids[2]], ["\\Seen"], "+")
        self.boss.setACL("INBOX", "authenticated", "lrs")

    def test_ownSeen(self):
        """Each viewer has their own \\Seen; the owner's flags do not change."""
        demo = self.demo.getMailbox("~boss@b.test/INBOX")
        other = self.other.getMailbox("~boss@b.test/INBOX")
        demo.setFlags(self.uids[:2], ["\\Seen"], "+")
        self.assertEqual([i.flags for i in demo.messages(self.uids)], [frozenset(["\\Seen"])] * 2 + [frozenset()])
        self.assertEqual([i.flags for i in other.messages(self.uids)], [frozenset()] * 3)
        self.assertEqual([i.flags for i in self.inbox.messages(self.uids)],
                         [frozenset(), frozenset(), frozenset(["\\Seen"])])
        demo.setFlags([self.uids[0]], ["\\Seen"], "-")
        self.assertEqual([i.flags for i in demo.messages(self.uids)],
                         [frozenset(), frozenset(["\\Seen"]), frozenset()])

    def test_countsAndSearch(self):
        """STATUS UNSEEN and SEARCH (UN)SEEN use the viewer's own \\Seen."""
        from gateway.store import query
        demo = self.demo.getMailbox("~boss@b.test/INBOX")
        demo.setFlags([self.uids[1]], ["\\Seen"], "+")
        self.assertEqual(demo.counts().unseen, 2)
        self.assertEqual(self.inbox.counts().unseen, 2)
        self.assertEqual([u for u, _ in demo.search(query.HasFlag("\\Seen"))], [self.uids[1]])
        self.assertEqual([u for u, _ in demo.search(query.Not(query.HasFlag("\\seen")))],
                         [self.uids[0], self.uids[2]])
        self.assertEqual([u for u, _ in self.inbox.search(query.HasFlag("\\Seen"))], [self.uids[2]])

    def test_migration(self):
        """An index of the first wave gets the userflags table when opened."""
        import sqlite3

        from gateway.store import index
        path = self.mktemp()
        conn = sqlite3.connect(path, isolation_level=None)
        index.migrate(conn, index.MIGRATIONS[:1])
        conn.close()
        conn = index.connect(path)
        self.assertEqual(conn.execute("PRAGMA user_version").fetchone()[0], len(index.MIGRATIONS))
        conn.execute("SELECT mailbox, user, uid, flags FROM userflags").fetchall()
        conn.close()


class SharedWritesTests(unittest.TestCase):
    """
    A viewer's changes to another account's mailbox go through the owner's
    index writer, as the owner's own do: the reactor never waits for them.
    """

    timeout = 20

    def setUp(self):
        from twisted.internet import reactor
        self.realm = makeSharingRealm(self, clock=reactor)
        self.owner = self.realm.accountFor("boss@b.test")
        self.addCleanup(self.owner.mailStore.close)
        self.demo = self.realm.accountFor("demo@example.test").access
        self.inbox = self.owner.mailStore.getMailbox("INBOX")
        self.uids = [self.inbox.appendMessage(MESSAGE) for _ in range(2)]
        self.owner.access.setACL("INBOX", "demo@example.test", "lrswite")

    @defer.inlineCallbacks
    def test_storeAndExpungeByTheOwnersWriter(self):
        """STORE (shared and private flags) and EXPUNGE by a viewer are written in the owner's writer groups."""
        shared = self.demo.getMailbox("~boss@b.test/INBOX")
        changed, failed = yield shared.setFlagsLater(self.uids, ["\\Seen", "\\Deleted"], "+")
        self.assertEqual((sorted(i.uid for i in changed), failed), (self.uids, []))
        self.assertEqual([i.flags for i in changed], [frozenset(["\\Seen", "\\Deleted"])] * 2)
        self.assertEqual([i.flags for i in self.inbox.messages(self.uids)], [frozenset(["\\Deleted"])] * 2)
        self.assertEqual((yield shared.expungeLater([self.uids[0]])), [self.uids[0]])
        self.assertEqual(self.inbox.uids(), [self.uids[1]])
        self.assertEqual(self.owner.mailStore._writer.written, 2)

    @defer.inlineCallbacks
    def test_rightsStillChecked(self):
        """Without e, EXPUNGE by the writer fails with the permission error and expunges nothing."""
        self.owner.access.setACL("INBOX", "demo@example.test", "lrsw")
        shared = self.demo.getMailbox("~boss@b.test/INBOX")
        yield self.assertFailure(shared.expungeLater(), PermissionDenied)
        self.assertEqual(self.inbox.uids(), self.uids)

    def recordCommits(self):
        """
        Record, for each message committed from now on, whether the owner's
        index writer thread committed it.

        @return: the C{list} of booleans, one per message.
        """
        committed = []
        original = Mailbox.commitMessage
        store = self.owner.mailStore

        def commitMessage(mailbox, prepared, flags=()):
            committed.append(store._writer is not None and store._writer.inWriter())
            return original(mailbox, prepared, flags)
        self.patch(Mailbox, "commitMessage", commitMessage)
        return committed

    @defer.inlineCallbacks
    def test_appendByTheOwnersWriter(self):
        """APPEND (one or several) into a shared mailbox is committed by the owner's writer, the viewer's \\Seen kept apart."""
        committed = self.recordCommits()
        shared = self.demo.getMailbox("~boss@b.test/INBOX")
        written = _written(self.owner.mailStore)
        uid = yield shared.appendMessageLater(MESSAGE, ["\\Seen", "\\Flagged"])
        uids = yield shared.appendMessagesLater([(MESSAGE, [], None), (MESSAGE, ["\\Seen"], None)])
        self.assertEqual(committed, [True, True, True])
        self.assertEqual(self.owner.mailStore._writer.written, written + 2)
        self.assertEqual([uid] + uids, [self.uids[-1] + 1, self.uids[-1] + 2, self.uids[-1] + 3])
        self.assertEqual([i.flags for i in self.inbox.messages([uid] + uids)],
                         [frozenset(["\\Flagged"]), frozenset(), frozenset()])
        self.assertEqual([i.flags for i in shared.messages([uid] + uids)],
                         [frozenset(["\\Seen", "\\Flagged"]), frozenset(), frozenset(["\\Seen"])])

    @defer.inlineCallbacks
    def test_appendNeedsInsert(self):
        """Without i, APPEND through the writer fails with the permission error and stores nothing."""
        self.owner.access.setACL("INBOX", "demo@example.test", "lrs")
        shared = self.demo.getMailbox("~boss@b.test/INBOX")
        yield self.assertFailure(shared.appendMessageLater(MESSAGE), PermissionDenied)
        self.assertEqual(self.inbox.uids(), self.uids)

    @defer.inlineCallbacks
    def test_copyIntoByTheOwnersWriter(self):
        """COPY from an own mailbox into a shared one: the copies committed by the owner's writer in one write, with flags and properties."""
        from gateway.store import properties
        own = self.realm.accountFor("demo@example.test").mailStore.getMailbox("INBOX")
        mine = [own.appendMessage(MESSAGE, ["\\Seen", "$Label"]), own.appendMessage(MESSAGE)]
        properties.setProperties(own, [mine[0]], {"x-note": ("string", "kept")})
        committed = self.recordCommits()
        written = _written(self.owner.mailStore)
        shared = self.demo.getMailbox("~boss@b.test/INBOX")
        pairs = yield transferLater(own, mine, shared)
        self.assertEqual(committed, [True, True])
        self.assertEqual(self.owner.mailStore._writer.written, written + 1)
        self.assertEqual([p[0] for p in pairs], mine)
        copies = [p[1] for p in pairs]
        self.assertEqual(self.inbox.uids(), self.uids + copies)
        self.assertEqual([i.flags for i in shared.messages(copies)], [frozenset(["\\Seen", "$Label"]), frozenset()])
        self.assertEqual(self.inbox.messages(copies)[0].flags, frozenset(["$Label"]))
        self.assertEqual(self.inbox.openMessage(copies[1]).read(), MESSAGE)
        self.assertEqual(self.inbox.messages(copies)[0].internalDate, own.messages(mine)[0].internalDate)
        self.assertEqual(properties.properties(self.inbox, copies), {copies[0]: {"x-note": ("string", "kept")}})
        self.assertEqual(os.listdir(os.path.join(self.inbox._path(), "tmp")), [])

    @defer.inlineCallbacks
    def test_moveOutByBothWriters(self):
        """MOVE out of a shared mailbox: the copies by the viewer's writer, the originals removed by the owner's."""
        demoStore = self.realm.accountFor("demo@example.test").mailStore
        self.addCleanup(demoStore.close)
        own = demoStore.getMailbox("INBOX")
        shared = self.demo.getMailbox("~boss@b.test/INBOX")
        ownerWritten = _written(self.owner.mailStore)
        pairs = yield transferLater(shared, self.uids, own, move=True)
        self.assertEqual([p[0] for p in pairs], self.uids)
        self.assertEqual(own.uids(), [p[1] for p in pairs])
        self.assertEqual(self.inbox.uids(), [])
        self.assertEqual(demoStore._writer.written, 1)
        self.assertEqual(self.owner.mailStore._writer.written, ownerWritten + 1)

    @defer.inlineCallbacks
    def test_copyOverQuota(self):
        """A COPY into another account over its owner's quota fails whole: no message, no file left."""
        self.owner.mailStore.quota = _Quota(self.owner.mailStore, self.owner.mailStore.usage() + 10)
        own = self.realm.accountFor("demo@example.test").mailStore.getMailbox("INBOX")
        mine = [own.appendMessage(MESSAGE)]
        shared = self.demo.getMailbox("~boss@b.test/INBOX")
        yield self.assertFailure(transferLater(own, mine, shared), QuotaExceeded)
        self.assertEqual(self.inbox.uids(), self.uids)
        self.assertEqual(os.listdir(os.path.join(self.inbox._path(), "tmp")), [])


def _written(store):
    """
    How many writes the index writer of C{store} committed so far.
    """
    return 0 if store._writer is None else store._writer.written


class _Quota:
    """
    A quota of C{limit} octets for a store.
    """

    def __init__(self, store, limit):
        self.store = store
        self.limit = limit

    def check(self, additional):
        if self.store.usage() + additional > self.limit:
            raise QuotaExceeded()


class TransferTests(unittest.TestCase):
    def setUp(self):
        self.realm = makeSharingRealm(self, quota=2000)
        self.boss = self.realm.accountFor("boss@b.test").access
        self.demo = self.realm.accountFor("demo@example.test").access
        self.bossInbox = self.realm.accountFor("boss@b.test").mailStore.getMailbox("INBOX")

    def test_copyBothWays(self):
        """COPY from a shared mailbox into an own one and back keeps flags and dates."""
        uid = self.bossInbox.appendMessage(MESSAGE, ["\\Flagged", "$Label"])
        self.boss.setACL("INBOX", "demo@example.test", "lrwi")
        shared = self.demo.getMailbox("~boss@b.test/INBOX")
        own = self.demo.getMailbox("Sent")
        [(src, dst)] = transfer(shared, [uid], own)
        [info] = own.messages([dst])
        self.assertEqual(info.flags, frozenset(["\\Flagged", "$Label"]))
        self.assertEqual(info.internalDate, self.bossInbox.messages([uid])[0].internalDate)
        self.assertEqual(own.openMessage(dst).read(), MESSAGE)
        [(_, back)] = transfer(own, [dst], shared)
        # w but no s/t: \\Flagged and the keyword stay.
        self.assertEqual(self.bossInbox.messages([back])[0].flags, frozenset(["\\Flagged", "$Label"]))

    def test_moveNeedsExpunge(self):
        """MOVE out of a shared mailbox needs e; with it the original goes."""
        uid = self.bossInbox.appendMessage(MESSAGE)
        self.boss.setACL("INBOX", "demo@example.test", "lr")
        shared = self.demo.getMailbox("~boss@b.test/INBOX")
        own = self.demo.getMailbox("Sent")
        self.assertRaises(PermissionDenied, transfer, shared, [uid], own, True)
        self.boss.setACL("INBOX", "demo@example.test", "te", "+")
        transfer(shared, [uid], own, True)
        self.assertEqual(self.bossInbox.uids(), [])
        self.assertEqual(len(own.uids()), 1)

    def test_quotaOfTarget(self):
        """Copying into another account's mailbox is charged to its owner's quota, all or nothing."""
        self.boss.setACL("INBOX", "demo@example.test", "lri")
        own = self.demo.getMailbox("INBOX")
        big = MESSAGE + b"x" * 1500 + b"\r\n"
        uids = [own.appendMessage(big)]
        shared = self.demo.getMailbox("~boss@b.test/INBOX")
        transfer(own, uids, shared)
        self.assertRaises(QuotaExceeded, transfer, own, uids, shared)
        self.assertEqual(len(self.bossInbox.uids()), 1)


class ForgetTests(unittest.TestCase):
    def test_deleteForgetsPrivateFlags(self):
        """Deleting a shared mailbox removes its viewers' private flags with it."""
        realm = makeSharingRealm(self)
        boss = realm.accountFor("boss@b.test")
        boss.mailStore.createMailbox("Box")
        mailbox = boss.mailStore.getMailbox("Box")
        uid = mailbox.appendMessage(MESSAGE)
        boss.access.setACL("Box", "demo@example.test", "lrs")
        realm.accountFor("demo@example.test").access.getMailbox("~boss@b.test/Box").setFlags([uid], ["\\Seen"], "+")
        from gateway.store import userflags
        self.assertEqual(userflags.seenUids(mailbox, "demo@example.test"), {uid})
        boss.access.deleteMailbox("Box")
        conn = boss.mailStore._conn
        self.assertEqual(conn.execute("SELECT count(*) FROM userflags").fetchone()[0], 0)


class PersonalizeTests(unittest.TestCase):
    def test_sharedInfosCopied(self):
        """A viewer's \\Seen is put on copies of shared infos (changesSince's) and in place only on the caller's own."""
        from gateway.store import userflags
        from gateway.store.mailbox import MessageInfo

        class Seen:
            pass

        self.patch(userflags, "seenUids", lambda mailbox, user, uids: {2})
        shared = [MessageInfo(1, "\\Seen", 0.0, 10, 1), MessageInfo(2, "", 0.0, 10, 1)]
        personal = userflags.personalize(Seen(), "viewer@x", shared)
        self.assertEqual([i.flags for i in personal], [frozenset(), frozenset(["\\Seen"])])
        self.assertEqual([i.flags for i in shared], [frozenset(["\\Seen"]), frozenset()])
        own = userflags.personalize(Seen(), "viewer@x", shared, own=True)
        self.assertIs(own, shared)
        self.assertEqual([i.flags for i in shared], [frozenset(), frozenset(["\\Seen"])])
