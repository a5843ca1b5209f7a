# -*- test-case-name: tests.test_realm -*-
"""
Tests for L{gateway.cred.realm}: one shared account object per address, the
quota that covers mail and files together, and alerts.
"""

import gc
import io
import os
import threading
import weakref

from twisted.cred.portal import IRealm
from twisted.internet import reactor, task
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import Clock
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from gateway.cred import realm
from gateway.cred.realm import GatewayRealm
from gateway.errors import NoSuchAccount, QuotaExceeded
from gateway.interfaces import IAccount, IFileStore, IIdleRelease, IMailStore, IQuota
from gateway.store.mail import MailStore
from tests.support import makeDataRoot

MESSAGE = b"From: a@example.org\r\nSubject: quota\r\n\r\n" + b"m" * 460 + b"\r\n"


class RealmTests(unittest.TestCase):
    def setUp(self):
        self.directory = makeDataRoot(self.mktemp())
        self.stores = []
        self.realm = GatewayRealm(self.directory, mailStoreFactory=self.mailStore)

    def mailStore(self, path, quota):
        store = MailStore(path, quota=quota, reactor=Clock(), useInotify=False)
        self.stores.append(store)
        self.addCleanup(store.close)
        return store

    def unkeptMailStore(self, path, quota):
        """A mail store the test does not hold (the realm's finalizer closes it)."""
        return MailStore(path, quota=quota, reactor=Clock(), useInotify=False)

    def setQuota(self, address, limit):
        self.directory.setAccount(address, quota=limit, quotaSetting=str(limit))

    def test_interfaces(self):
        """The realm, its accounts, their quota and stores provide their interfaces."""
        verifyObject(IRealm, self.realm)
        account = self.realm.accountFor("demo@example.test")
        verifyObject(IAccount, account)
        verifyObject(IQuota, account.quota)
        verifyObject(IFileStore, account.fileStore)
        verifyObject(IMailStore, account.mailStore)

    def test_requestAvatar(self):
        """requestAvatar gives the IAccount of a bytes or str avatar id with a logout callable."""
        interface, avatar, logout = self.realm.requestAvatar(b"demo@example.test", None, IAccount)
        self.assertIs(interface, IAccount)
        self.assertEqual(avatar.address, "demo@example.test")
        self.assertIsNone(logout())
        self.assertRaises(NotImplementedError, self.realm.requestAvatar, "demo@example.test", None, IQuota)

    def test_oneAccountPerAddress(self):
        """Every request for one address, in any case or type, gets the same account object."""
        first = self.realm.accountFor("demo@example.test")
        self.assertIs(self.realm.accountFor("DEMO@example.test"), first)
        self.assertIs(self.realm.requestAvatar(b"demo@example.test", None, IAccount)[1], first)
        self.assertIs(self.realm.requestAvatar("demo@example.test", None, IAccount)[1], first)
        self.assertIsNot(self.realm.accountFor("other@example.test"), first)
        self.assertEqual(len(self.stores), 2)

    def test_unknownAccount(self):
        """An address the directory does not know raises NoSuchAccount."""
        self.assertRaises(NoSuchAccount, self.realm.accountFor, "nobody@example.test")

    def test_recordIsFresh(self):
        """The account's record reflects directory changes at once."""
        account = self.realm.accountFor("demo@example.test")
        self.setQuota("demo@example.test", 5000)
        self.assertEqual(account.record.quota, 5000)
        self.assertEqual(account.quota.limit(), 5000)

    def test_storesUnderAccount(self):
        """The file store lives in the account's C{files/} folder with C{private/}."""
        account = self.realm.accountFor("demo@example.test")
        self.assertEqual(account.fileStore.root.path, account.record.path.child("files").path)
        self.assertTrue(account.fileStore.root.child("private").isdir())
        self.assertIn("INBOX", [info.name for info in account.mailStore.listMailboxes()])

    def test_unlimited(self):
        """Without a quota the limit is None and nothing is refused."""
        account = self.realm.accountFor("demo@example.test")
        self.assertIsNone(account.quota.limit())
        account.quota.check(10**15)

    def test_usedCoversMailAndFiles(self):
        """C{used} is the sum of mail and file bytes."""
        account = self.realm.accountFor("demo@example.test")
        account.fileStore.writeFile("/private/f", b"f" * 300)
        account.mailStore.getMailbox("INBOX").appendMessage(MESSAGE)
        self.assertEqual(account.quota.used(), 300 + len(MESSAGE))

    def test_mailCountsAgainstFiles(self):
        """Mail already stored leaves less room for files."""
        self.setQuota("demo@example.test", 1000)
        account = self.realm.accountFor("demo@example.test")
        account.mailStore.getMailbox("INBOX").appendMessage(MESSAGE)
        room = 1000 - len(MESSAGE)
        self.assertRaises(QuotaExceeded, account.fileStore.writeFile, "/f", b"x" * (room + 1))
        account.fileStore.writeFile("/f", b"x" * room)
        self.assertEqual(account.quota.used(), 1000)

    def test_filesCountAgainstMail(self):
        """Files already stored leave less room for mail (bytes and streamed)."""
        self.setQuota("demo@example.test", 1000)
        account = self.realm.accountFor("demo@example.test")
        account.fileStore.writeFile("/f", b"x" * (1000 - len(MESSAGE) + 1))
        inbox = account.mailStore.getMailbox("INBOX")
        self.assertRaises(QuotaExceeded, inbox.appendMessage, MESSAGE)
        self.assertRaises(QuotaExceeded, inbox.appendMessage, io.BytesIO(MESSAGE))
        self.assertEqual(inbox.uids(), [])
        account.fileStore.remove("/f")
        inbox.appendMessage(MESSAGE)
        self.assertEqual(len(inbox.uids()), 1)

    def test_quotaFollowsDomainDefault(self):
        """An account at quota C{default} is limited by its domain's default quota."""
        account = self.realm.accountFor("demo@example.test")
        self.directory.setDomain("example.test", defaultQuota=200)
        self.assertEqual(account.quota.limit(), 200)
        self.assertRaises(QuotaExceeded, account.mailStore.getMailbox("INBOX").appendMessage, MESSAGE)

    def test_popAlertsOldestFirstOnce(self):
        """popAlerts returns pending alerts oldest first, each exactly once."""
        account = self.realm.accountFor("demo@example.test")
        self.assertEqual(account.popAlerts(), [])
        for text in ("first", "second", "third"):
            self.directory.addAlert("demo@example.test", text)
        self.assertEqual(account.popAlerts(), ["first", "second", "third"])
        self.assertEqual(account.popAlerts(), [])
        self.directory.addAlert("demo@example.test", "fourth")
        self.assertEqual(account.popAlerts(), ["fourth"])

    def test_popAlertsOnceAcrossProcesses(self):
        """An alert is shown once when another process pops alerts while this one reads it (workers)."""
        from gateway.cred import realm as realmModule

        account = self.realm.accountFor("demo@example.test")
        other = GatewayRealm(self.directory, mailStoreFactory=self.mailStore).accountFor("demo@example.test")
        self.assertIsNot(other, account)
        self.directory.addAlert("demo@example.test", "only once")
        shownByOther = []
        unlink = os.unlink

        def otherPopsFirst(path):
            if not shownByOther:
                shownByOther.append([])
                shownByOther[0] = other.popAlerts()  # the other process, between read and unlink
            unlink(path)

        self.patch(realmModule.os, "unlink", otherPopsFirst)
        shown = account.popAlerts()
        self.assertEqual(sorted(shown + shownByOther[0]), ["only once"])
        self.assertEqual(os.listdir(os.path.join(account.path, "alerts")), [])

    def test_idleAccountsLetGo(self):
        """Beyond keepIdle, an account nothing holds is closed when collected, and built afresh when asked for."""
        closed = []
        realm = GatewayRealm(self.directory, mailStoreFactory=self.unkeptMailStore, keepIdle=1)
        self.directory.addAccount("third@example.test", "{PLAIN}x")
        first = realm.accountFor("demo@example.test")
        path = first.mailStore.path
        first.mailStore.close = lambda: closed.append(path)
        del first
        realm.accountFor("other@example.test")
        realm.accountFor("third@example.test")
        gc.collect()
        self.assertEqual(closed, [path])
        again = realm.accountFor("demo@example.test")
        self.assertEqual(again.mailStore.getMailbox("INBOX").uids(), [])

    def test_heldAccountsKept(self):
        """An account a session holds stays the one object, however many others are asked for."""
        realm = GatewayRealm(self.directory, mailStoreFactory=self.unkeptMailStore, keepIdle=1)
        self.directory.addAccount("third@example.test", "{PLAIN}x")
        held = realm.accountFor("demo@example.test")
        realm.accountFor("other@example.test")
        realm.accountFor("third@example.test")
        gc.collect()
        self.assertIs(realm.accountFor("demo@example.test"), held)
        held.mailStore.getMailbox("INBOX").appendMessage(MESSAGE)

    def test_releaseIdle(self):
        """An account nobody asked for between two releaseIdle calls is let go: closed, and built afresh."""
        closed = []
        realm = GatewayRealm(self.directory, mailStoreFactory=self.unkeptMailStore)
        verifyObject(IIdleRelease, realm)
        first = realm.accountFor("demo@example.test")
        path = first.mailStore.path
        first.mailStore.close = lambda: closed.append(path)
        del first
        self.assertEqual(realm.releaseIdle(), 0)  # asked for since the start
        gc.collect()
        self.assertEqual((closed, len(realm.heldAccounts())), ([], 1))
        self.assertEqual(realm.releaseIdle(), 1)
        gc.collect()
        self.assertEqual((closed, realm.heldAccounts()), ([path], []))
        self.assertEqual(realm.accountFor("demo@example.test").mailStore.getMailbox("INBOX").uids(), [])

    def test_letGoMailStoreFreedWhileFilesHeld(self):
        """A mail store the realm let go is freed, with its mailboxes, while its file store is still held (after a soak an idle FTP worker held one, and its quota kept the closed mail store alive); that quota still counts the mail."""
        self.setQuota("demo@example.test", 1000)
        realm = GatewayRealm(self.directory, mailStoreFactory=self.unkeptMailStore)
        account = realm.accountFor("demo@example.test")
        inbox = account.mailStore.getMailbox("INBOX")
        inbox.appendMessage(MESSAGE)
        fileStore = account.fileStore
        refs = [weakref.ref(account), weakref.ref(account.mailStore), weakref.ref(inbox)]
        del account, inbox
        realm.releaseIdle()
        realm.releaseIdle()
        gc.collect()
        self.assertEqual([ref() for ref in refs], [None, None, None])
        self.assertEqual(fileStore.quota.used(), len(MESSAGE))
        room = 1000 - len(MESSAGE)
        self.assertRaises(QuotaExceeded, fileStore.writeFile, "/f", b"x" * (room + 1))
        fileStore.writeFile("/f", b"x" * room)
        self.assertEqual(fileStore.quota.used(), 1000)

    def test_releaseIdleKeepsUsed(self):
        """An account asked for between two calls is kept, the same object."""
        realm = GatewayRealm(self.directory, mailStoreFactory=self.unkeptMailStore)
        firstId = id(realm.accountFor("demo@example.test"))
        for _ in range(3):
            realm.releaseIdle()
            self.assertEqual(id(realm.accountFor("demo@example.test")), firstId)
        self.assertIn("realm: 1 accounts held (1 kept as recently used)", realm.describe()[0])

    def test_releaseIdleHeld(self):
        """An idle account a session still holds stops being kept but stays open and the one object."""
        realm = GatewayRealm(self.directory, mailStoreFactory=self.unkeptMailStore)
        held = realm.accountFor("demo@example.test")
        session = {"session": ("holding", held)}
        realm.releaseIdle()
        self.assertEqual(realm.releaseIdle(), 1)
        gc.collect()
        self.assertEqual(realm.heldAccounts(), [held])
        holders = realm.describe()[1]
        self.assertIn("demo@example.test held by: builtins.tuple (str, Account) <- {", holders)
        self.assertIn("builtins.dict ['session']", holders)
        self.assertEqual(len(session), 1)
        self.assertFalse(held.mailStore.closed)
        self.assertIs(realm.accountFor("demo@example.test"), held)

    def test_releaseIdleStoreInUse(self):
        """An idle account whose store has a mailbox with listeners (another account's session) stays kept."""
        realm = GatewayRealm(self.directory, mailStoreFactory=self.unkeptMailStore)
        inbox = realm.accountFor("other@example.test").mailStore.getMailbox("INBOX")
        remove = inbox.addListener(lambda *a: None)
        realm.releaseIdle()
        self.assertEqual(realm.releaseIdle(), 0)
        gc.collect()
        self.assertEqual(len(realm.heldAccounts()), 1)
        self.assertFalse(inbox._store.closed)
        inbox.uids()
        remove()
        self.assertEqual(realm.releaseIdle(), 1)
        gc.collect()
        self.assertEqual(realm.heldAccounts(), [])

    def test_alertsPerAccount(self):
        """An alert is shown only to its own account."""
        self.directory.addAlert("other@example.test", "for other")
        self.assertEqual(self.realm.accountFor("demo@example.test").popAlerts(), [])
        self.assertEqual(self.realm.accountFor("other@example.test").popAlerts(), ["for other"])

    def test_alertSeenByAnotherRealm(self):
        """An alert is taken by the first session that shows it, even in another process's realm."""
        self.directory.addAlert("demo@example.test", "once")
        other = GatewayRealm(self.directory, mailStoreFactory=self.mailStore)
        self.assertEqual(other.accountFor("demo@example.test").popAlerts(), ["once"])
        self.assertEqual(self.realm.accountFor("demo@example.test").popAlerts(), [])

    def test_closedStoreNotHandedOut(self):
        """An account whose mail store was closed (account removed, restore) is built again, not handed out."""
        old = self.realm.accountFor("other@example.test")
        old.mailStore.close()
        new = self.realm.accountFor("other@example.test")
        self.assertIsNot(new, old)
        self.assertEqual(new.mailStore.getMailbox("INBOX").uids(), [])

    def test_recreatedAccountIsNew(self):
        """An account removed and added again under the same name gets a fresh account with working stores."""
        old = self.realm.accountFor("other@example.test")
        old.mailStore.getMailbox("INBOX").appendMessage(MESSAGE)
        self.directory.removeAccount("other@example.test")
        self.directory.addAccount("other@example.test", "{PLAIN}x")
        new = self.realm.accountFor("other@example.test")
        self.assertIsNot(new, old)
        self.assertEqual(new.mailStore.getMailbox("INBOX").uids(), [])
        new.mailStore.getMailbox("INBOX").appendMessage(MESSAGE)
        self.assertIs(self.realm.accountFor("other@example.test"), new)


class RecheckTests(unittest.TestCase):
    """
    What commands ask of an account all the time, the identity of its
    folder and its quota's limit, is read again after
    L{realm.RECHECK_AFTER} seconds or a change through the directory, not
    at every command.
    """

    def setUp(self):
        self.directory = makeDataRoot(self.mktemp())
        self.now = 1000.0
        self.patch(realm, "_monotonic", lambda: self.now)
        self.realm = GatewayRealm(self.directory, mailStoreFactory=self.mailStore)
        self.stats = []
        folderIdOf = realm._folderId

        def folderId(path):
            self.stats.append(path)
            return folderIdOf(path)
        self.patch(realm, "_folderId", folderId)
        self.reads = []
        getAccountOf = self.directory.getAccount

        def getAccount(address):
            self.reads.append(address)
            return getAccountOf(address)
        self.patch(self.directory, "getAccount", getAccount)

    def mailStore(self, path, quota):
        store = MailStore(path, quota=quota, reactor=Clock(), useInotify=False)
        self.addCleanup(store.close)
        return store

    def test_folderCheckedOncePerInterval(self):
        """The account's folder is looked at again only once the interval passed or the directory changed."""
        account = self.realm.accountFor("demo@example.test")
        del self.stats[:]
        self.now += realm.RECHECK_AFTER / 2
        self.assertIs(self.realm.accountFor("demo@example.test"), account)
        self.assertEqual(self.stats, [])
        self.now += realm.RECHECK_AFTER
        self.assertIs(self.realm.accountFor("demo@example.test"), account)
        self.assertEqual(len(self.stats), 1)
        self.directory.setAccount("other@example.test", quotaSetting="5000", quota=5000)
        self.assertIs(self.realm.accountFor("demo@example.test"), account)
        self.assertEqual(len(self.stats), 2)
        self.assertIs(self.realm.accountFor("demo@example.test"), account)
        self.assertEqual(len(self.stats), 2)

    def test_folderReplacedByHand(self):
        """An account folder replaced behind the directory's back gives a new account once the interval passed."""
        account = self.realm.accountFor("demo@example.test")
        path = account.path
        os.rename(path, path + ".old")
        os.makedirs(path)
        os.rename(os.path.join(path + ".old", "account.ini"), os.path.join(path, "account.ini"))
        self.assertIs(self.realm.accountFor("demo@example.test"), account)
        self.now += realm.RECHECK_AFTER
        replaced = self.realm.accountFor("demo@example.test")
        self.assertIsNot(replaced, account)
        self.assertEqual(replaced.mailStore.getMailbox("INBOX").uids(), [])

    def test_quotaLimitKept(self):
        """The quota's limit is read from the directory once an interval, and again at once after a change."""
        quota = self.realm.accountFor("demo@example.test").quota
        self.directory.setAccount("demo@example.test", quotaSetting="5000", quota=5000)
        del self.reads[:]
        self.assertEqual([quota.limit(), quota.limit()], [5000, 5000])
        self.assertEqual(self.reads, ["demo@example.test"])
        self.directory.setAccount("demo@example.test", quotaSetting="6000", quota=6000)
        del self.reads[:]
        self.assertEqual([quota.limit(), quota.limit()], [6000, 6000])
        self.assertEqual(self.reads, ["demo@example.test"])

    def test_quotaEditedByHand(self):
        """An account.ini edited by hand (or by another process) sets the limit once the interval passed."""
        account = self.realm.accountFor("demo@example.test")
        self.assertIsNone(account.quota.limit())
        ini = os.path.join(account.path, "account.ini")
        with open(ini) as f:
            text = f.read()
        with open(ini, "w") as f:
            f.write(text.replace("quota = default", "quota = 7000"))
        os.utime(ini, ns=(0, os.stat(ini).st_mtime_ns + 10**9))
        self.assertIsNone(account.quota.limit())
        self.now += realm.RECHECK_AFTER
        self.assertEqual(account.quota.limit(), 7000)


class OpenLaterTests(unittest.TestCase):
    """
    L{GatewayRealm.accountForLater}: an account's mail store opened in the
    reactor's thread pool, one opening shared by concurrent logins.
    """

    timeout = 30

    def setUp(self):
        self.directory = makeDataRoot(self.mktemp())
        self.threads = []
        self.gate = threading.Event()
        self.addCleanup(self.gate.set)
        self.realm = GatewayRealm(self.directory, mailStoreFactory=self.mailStore, reactor=reactor)

    def mailStore(self, path, quota):
        """In a pool thread: waits for C{self.gate}, then opens the store (the test closes it)."""
        self.threads.append(threading.current_thread())
        self.gate.wait(10)
        store = MailStore(path, quota=quota, reactor=reactor, useInotify=False)
        self.addCleanup(store.close)
        return store

    @inlineCallbacks
    def test_sharedOpening(self):
        """Two logins of one account while its store opens share the one opening, made in a pool thread."""
        first = self.realm.accountForLater("demo@example.test")
        second = self.realm.accountForLater(b"DEMO@example.test")
        self.assertNoResult(first)
        self.gate.set()
        account = yield first
        self.assertIs((yield second), account)
        self.assertEqual(len(self.threads), 1)
        self.assertIsNot(self.threads[0], threading.current_thread())
        self.assertIs(account.mailStore._conn, account.mailStore._ownConn)
        self.assertIn("INBOX", [info.name for info in account.mailStore.listMailboxes()])
        self.assertIs(self.realm.accountFor("demo@example.test"), account)
        self.assertIs(self.successResultOf(self.realm.accountForLater("demo@example.test")), account)
        self.assertEqual(len(self.threads), 1)

    @inlineCallbacks
    def test_requestAvatar(self):
        """requestAvatar with a reactor gives a Deferred of (IAccount, account, logout)."""
        self.gate.set()
        interface, avatar, logout = yield self.realm.requestAvatar(b"demo@example.test", None, IAccount)
        self.assertIs(interface, IAccount)
        self.assertEqual(avatar.address, "demo@example.test")

    @inlineCallbacks
    def test_failureToEveryLogin(self):
        """An opening that fails fails every login waiting for it; the next login tries again."""
        calls = []

        def failing(path, quota):
            calls.append(path)
            self.gate.wait(10)
            raise OSError(28, "No space left on device")
        self.realm._mailStoreFactory = failing
        first = self.realm.accountForLater("demo@example.test")
        second = self.realm.accountForLater("demo@example.test")
        self.gate.set()
        for d in (first, second):
            failure = yield self.assertFailure(d, OSError)
            self.assertEqual(failure.errno, 28)
        self.assertEqual(len(calls), 1)
        self.realm._mailStoreFactory = self.mailStore
        account = yield self.realm.accountForLater("demo@example.test")
        self.assertEqual(account.address, "demo@example.test")

    @inlineCallbacks
    def test_removedWhileOpening(self):
        """An account removed while its store opens: the login fails with NoSuchAccount and the store is closed."""
        d = self.realm.accountForLater("demo@example.test")
        self.directory.removeAccount("demo@example.test")
        closed = []
        original = MailStore.close
        self.patch(MailStore, "close", lambda store: (closed.append(store), original(store)))
        self.gate.set()
        yield self.assertFailure(d, NoSuchAccount)
        self.assertEqual(len(closed), 1)
        self.assertEqual(self.realm.heldAccounts(), [])

    @inlineCallbacks
    def test_unknownAccount(self):
        """An address the directory does not know fails with NoSuchAccount, opening nothing."""
        yield self.assertFailure(self.realm.accountForLater("nobody@example.test"), NoSuchAccount)
        self.assertEqual(self.threads, [])

    @inlineCallbacks
    def test_accountForMeanwhile(self):
        """An account built meanwhile by accountFor (a delivery) is the one the waiting logins get; the other store is closed."""
        waiting = self.realm.accountForLater("demo@example.test")
        self.realm._mailStoreFactory = lambda path, quota: MailStore(path, quota=quota, reactor=Clock(),
                                                                      useInotify=False)
        built = self.realm.accountFor("demo@example.test")
        self.addCleanup(built.mailStore.close)
        self.gate.set()
        self.assertIs((yield waiting), built)
        self.assertFalse(built.mailStore.closed)

    def test_clockOpensAtOnce(self):
        """With a reactor without threads (a Clock), the store opens at once."""
        self.gate.set()
        self.realm._reactor = Clock()
        account = self.successResultOf(self.realm.accountForLater("demo@example.test"))
        self.assertEqual(self.threads, [threading.current_thread()])
        self.assertEqual(self.realm.requestAvatar("demo@example.test", None, IAccount)[1], account)

    @inlineCallbacks
    def test_openingThreadsLimited(self):
        """At most OPENING_THREADS stores open at once; the others wait for a thread of theirs."""
        from gateway.cred import realm as realmModule

        self.patch(realmModule, "OPENING_THREADS", 1)
        self.realm = GatewayRealm(self.directory, mailStoreFactory=self.mailStore, reactor=self.realm._reactor)
        first = self.realm.accountForLater("demo@example.test")
        second = self.realm.accountForLater("other@example.test")
        while not self.threads:
            yield task.deferLater(reactor, 0.005, lambda: None)
        yield task.deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(len(self.threads), 1)
        self.gate.set()
        self.assertEqual([(yield first).address, (yield second).address], ["demo@example.test", "other@example.test"])
        self.assertEqual(len(self.threads), 2)
