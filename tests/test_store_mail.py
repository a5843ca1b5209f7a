# -*- test-case-name: tests.test_store_mail -*-
"""
Tests for L{gateway.store.mail}: the Maildir + SQLite mail store.
"""

import errno
import io
import os
import shutil
import sqlite3
import sys
import tempfile

from twisted.internet import reactor, task, threads, utils
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from gateway.errors import (
    InvalidMailboxName,
    MailboxExists,
    MailboxHasChildren,
    NoSuchMailbox,
    NoSuchMessage,
    QuotaExceeded,
)
from gateway.interfaces import IMailbox, IMailboxInfo, IMailStore, IMessageInfo
from gateway.store import changes, index, maildir, scan
from gateway.store.mail import MailStore
from gateway.store.mailbox import Mailbox
from gateway.store.watch import sharedINotify

CRLF_MESSAGE = b"From: a@example.org\r\nSubject: Hello\r\n\r\nBody line\r\n"
LF_MESSAGE = b"From: a@example.org\nSubject: Bare\n\nline one\nline two\n"


class FakeQuota:
    """
    An L{IQuota} over one store's usage.
    """

    def __init__(self, limit):
        self._limit = limit
        self.store = None

    def limit(self):
        return self._limit

    def used(self):
        return self.store.usage()

    def check(self, additional):
        if self.used() + additional > self._limit:
            raise QuotaExceeded("over quota")


class StoreTestMixin:
    def temporaryFolder(self):
        """
        A new folder outside the working tree, removed after the test.
        """
        folder = tempfile.mkdtemp(prefix="gateway-test-store-")
        self.addCleanup(shutil.rmtree, folder, ignore_errors=True)
        return folder

    def makeStore(self, path=None, **kwargs):
        if path is None:
            path = self.mailPath = os.path.join(self.temporaryFolder(), "mail")
        kwargs.setdefault("reactor", task.Clock())
        store = MailStore(path, **kwargs)
        self.addCleanup(store.close)
        return store

    def files(self, mailbox, subdir="cur"):
        return sorted(os.listdir(os.path.join(mailbox._path(), subdir)))

    def allFiles(self, mailbox):
        return self.files(mailbox, "cur") + self.files(mailbox, "new")

    def readAll(self, f, size=-1):
        chunks = []
        while True:
            chunk = f.read(size)
            if not chunk:
                break
            chunks.append(chunk)
            if size < 0:
                break
        f.close()
        return b"".join(chunks)


class InterfaceTests(StoreTestMixin, unittest.TestCase):
    def test_verifyObjects(self):
        """MailStore, Mailbox, MessageInfo and MailboxInfo provide their interfaces."""
        store = self.makeStore()
        self.assertTrue(verifyObject(IMailStore, store))
        mailbox = store.getMailbox("INBOX")
        self.assertTrue(verifyObject(IMailbox, mailbox))
        uid = mailbox.appendMessage(CRLF_MESSAGE)
        self.assertTrue(verifyObject(IMessageInfo, mailbox.messages([uid])[0]))
        self.assertTrue(verifyObject(IMailboxInfo, store.listMailboxes()[0]))


class MailStoreTests(StoreTestMixin, unittest.TestCase):
    def test_defaultMailboxes(self):
        """A new account gets INBOX and the default folders with class, special use and subscription."""
        store = self.makeStore()
        infos = {info.name: info for info in store.listMailboxes()}
        self.assertEqual(sorted(infos), sorted([
            "INBOX", "Drafts", "Sent", "Deleted Items", "Junk", "Calendar", "Contacts", "Tasks", "Notes"]))
        self.assertEqual(infos["Deleted Items"].specialUse, "\\Trash")
        self.assertEqual(infos["Sent"].specialUse, "\\Sent")
        self.assertEqual(infos["Calendar"].mailboxClass, "IPF.Appointment")
        self.assertEqual(infos["Notes"].mailboxClass, "IPF.StickyNote")
        self.assertEqual(infos["INBOX"].mailboxClass, "IPF.Note")
        self.assertEqual(sorted(store.subscriptions()), sorted(infos))
        for name in infos:
            self.assertTrue(os.path.isdir(os.path.join(self.mailPath, *name.split("/"), "cur")))

    def test_getMailboxSharedAndCaseInsensitiveInbox(self):
        """getMailbox returns one object per mailbox; INBOX is case-insensitive."""
        store = self.makeStore()
        self.assertIs(store.getMailbox("inbox"), store.getMailbox("INBOX"))
        self.assertEqual(store.getMailbox("Inbox").name, "INBOX")
        self.assertRaises(NoSuchMailbox, store.getMailbox, "Nope")

    def test_invalidNames(self):
        """Empty parts, cur/new/tmp, dot names, NUL and over-long parts are refused."""
        store = self.makeStore()
        for name in ["", "a//b", "/a", "a/", "cur", "a/new", "tmp", ".hidden", "a/.b", "a\x00b",
                     "x" * 256, "..", "a/../b"]:
            self.assertRaises(InvalidMailboxName, store.createMailbox, name)
        store.createMailbox("\u00e9" * 127)  # 254 bytes in UTF-8
        self.assertRaises(InvalidMailboxName, store.createMailbox, "\u00e9" * 128)

    def test_createHierarchy(self):
        """Creating a/b/c creates missing parents as folders on disk and in LIST."""
        store = self.makeStore()
        store.createMailbox("Archive/2024/Q1", "IPF.Note")
        infos = {info.name: info for info in store.listMailboxes()}
        self.assertTrue(infos["Archive"].hasChildren)
        self.assertTrue(infos["Archive/2024"].hasChildren)
        self.assertFalse(infos["Archive/2024/Q1"].hasChildren)
        self.assertTrue(os.path.isdir(os.path.join(self.mailPath, "Archive", "2024", "Q1", "new")))
        self.assertRaises(MailboxExists, store.createMailbox, "Archive/2024")
        store.createMailbox("Cal/Work", "IPF.Appointment", None)
        self.assertEqual(store.getMailbox("Cal").mailboxClass, "IPF.Appointment")

    def test_renameHierarchy(self):
        """Renaming moves the folder, its children and their messages; the old names are gone."""
        store = self.makeStore()
        store.createMailbox("A/B")
        uid = store.getMailbox("A/B").appendMessage(CRLF_MESSAGE)
        child = store.getMailbox("A/B")
        store.renameMailbox("A", "X/Y")
        names = [info.name for info in store.listMailboxes()]
        self.assertIn("X/Y/B", names)
        self.assertIn("X", names)
        self.assertNotIn("A", names)
        self.assertNotIn("A/B", names)
        self.assertIs(store.getMailbox("X/Y/B"), child)
        self.assertEqual(child.name, "X/Y/B")
        self.assertEqual(self.readAll(child.openMessage(uid)), CRLF_MESSAGE)
        self.assertFalse(os.path.exists(os.path.join(self.mailPath, "A")))
        self.assertRaises(NoSuchMailbox, store.renameMailbox, "A", "Z")
        self.assertRaises(MailboxExists, store.renameMailbox, "X", "Drafts")
        self.assertRaises(InvalidMailboxName, store.renameMailbox, "X", "X/Y/Z")

    def test_renameInbox(self):
        """Renaming INBOX moves its messages to the new mailbox and leaves INBOX empty."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        inbox.appendMessage(CRLF_MESSAGE, flags=["\\Seen"])
        inbox.appendMessage(LF_MESSAGE)
        usage = store.usage()
        store.renameMailbox("INBOX", "Old Mail")
        self.assertEqual(inbox.uids(), [])
        self.assertEqual(self.allFiles(inbox), [])
        moved = store.getMailbox("Old Mail")
        infos = moved.messages(moved.uids())
        self.assertEqual(len(infos), 2)
        self.assertEqual(infos[0].flags, {"\\Seen"})
        self.assertEqual(self.readAll(moved.openMessage(infos[1].uid)),
                         LF_MESSAGE.replace(b"\n", b"\r\n"))
        self.assertEqual(store.usage(), usage)

    def test_deleteMailbox(self):
        """Deleting a leaf removes it and its messages and gives back its usage."""
        store = self.makeStore()
        store.createMailbox("Trashme")
        mailbox = store.getMailbox("Trashme")
        mailbox.appendMessage(CRLF_MESSAGE)
        store.deleteMailbox("trashme".capitalize())
        self.assertEqual(store.usage(), 0)
        self.assertNotIn("Trashme", [info.name for info in store.listMailboxes()])
        self.assertFalse(os.path.exists(os.path.join(self.mailPath, "Trashme")))
        self.assertRaises(NoSuchMailbox, store.getMailbox, "Trashme")
        self.assertRaises(NoSuchMailbox, mailbox.uids)
        self.assertRaises(NoSuchMailbox, store.deleteMailbox, "Trashme")
        self.assertRaises(InvalidMailboxName, store.deleteMailbox, "inbox")

    def test_deleteMailboxWithChildren(self):
        """A mailbox with children becomes \\Noselect; deleting it again raises MailboxHasChildren."""
        store = self.makeStore()
        store.createMailbox("P/C")
        store.getMailbox("P").appendMessage(CRLF_MESSAGE)
        store.deleteMailbox("P")
        infos = {info.name: info for info in store.listMailboxes()}
        self.assertFalse(infos["P"].selectable)
        self.assertTrue(infos["P/C"].selectable)
        self.assertEqual(store.usage(), 0)
        self.assertRaises(NoSuchMailbox, store.getMailbox, "P")
        self.assertRaises(MailboxHasChildren, store.deleteMailbox, "P")
        store.deleteMailbox("P/C")
        store.deleteMailbox("P")
        self.assertNotIn("P", [info.name for info in store.listMailboxes()])

    def test_subscriptions(self):
        """Subscriptions need not exist and are kept sorted."""
        store = self.makeStore()
        store.subscribe("Zeta/Not There")
        store.unsubscribe("Junk")
        subscriptions = store.subscriptions()
        self.assertIn("Zeta/Not There", subscriptions)
        self.assertNotIn("Junk", subscriptions)
        self.assertEqual(subscriptions, sorted(subscriptions))


class MessageTests(StoreTestMixin, unittest.TestCase):
    def setUp(self):
        self.store = self.makeStore()
        self.inbox = self.store.getMailbox("INBOX")

    def test_appendByteExact(self):
        """Appended bytes are stored unchanged on disk and read back as CRLF with the CRLF size."""
        uid = self.inbox.appendMessage(LF_MESSAGE)
        [name] = self.files(self.inbox, "new")
        with open(os.path.join(self.inbox._path(), "new", name), "rb") as f:
            self.assertEqual(f.read(), LF_MESSAGE)
        expected = LF_MESSAGE.replace(b"\n", b"\r\n")
        [info] = self.inbox.messages([uid])
        self.assertEqual(info.size, len(expected))
        self.assertEqual(self.readAll(self.inbox.openMessage(uid)), expected)
        self.assertEqual(self.readAll(self.inbox.openMessage(uid), 3), expected)
        self.assertEqual(info.headers, b"From: a@example.org\r\nSubject: Bare\r\n\r\n")
        self.assertEqual(self.store.usage(), len(LF_MESSAGE))

    def test_messagesWithoutHeaders(self):
        """
        messages(uids, headers=False) gives the same uid, flags, size, date
        and modseq without the header block; the default still reads it.
        """
        uid = self.inbox.appendMessage(LF_MESSAGE, flags={"\\Seen"})
        other = self.inbox.appendMessage(CRLF_MESSAGE)
        full = self.inbox.messages([uid, other])
        bare = self.inbox.messages([other, uid], headers=False)
        self.assertEqual([i.uid for i in bare], [uid, other])
        for a, b in zip(full, bare, strict=True):
            self.assertEqual((a.uid, a.flags, a.size, a.internalDate, a.modseq),
                             (b.uid, b.flags, b.size, b.internalDate, b.modseq))
            self.assertIsNone(b.headers)
        self.assertEqual(full[0].headers, b"From: a@example.org\r\nSubject: Bare\r\n\r\n")
        self.assertEqual(self.inbox.messages([uid], headers=True)[0].headers, full[0].headers)
        self.assertEqual(self.inbox.messages([], headers=False), [])
        many = [self.inbox.appendMessage(CRLF_MESSAGE) for _ in range(3)]
        self.assertEqual([i.uid for i in self.inbox.messages(many, headers=False)], many)

    def test_crlfMessageIsPlainFile(self):
        """A message already in CRLF form is opened as a plain file of exactly its size."""
        uid = self.inbox.appendMessage(io.BytesIO(CRLF_MESSAGE))
        f = self.inbox.openMessage(uid)
        self.assertIsInstance(f, io.BufferedReader)
        self.assertEqual(self.readAll(f), CRLF_MESSAGE)
        self.assertEqual(self.inbox.messages([uid])[0].size, len(CRLF_MESSAGE))

    def test_crlfReaderChunkBoundary(self):
        """A CR at the end of one chunk and LF at the start of the next stay one CRLF."""
        data = b"a" * (maildir.CHUNK - 1) + b"\r\nb\nc\r\r\n\n"
        reader = maildir.CRLFReader(io.BytesIO(data))
        self.assertEqual(self.readAll(reader, 7), data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        self.assertEqual(maildir.CRLFReader(io.BytesIO(b"x\ny\n")).readline(), b"x\r\n")

    def test_internalDateAndMissingMessage(self):
        """internalDate is kept (also as file mtime); openMessage of an unknown UID raises."""
        import datetime
        when = datetime.datetime(2020, 5, 17, 10, 30, tzinfo=datetime.timezone.utc)
        uid = self.inbox.appendMessage(CRLF_MESSAGE, internalDate=when)
        self.assertEqual(self.inbox.messages([uid])[0].internalDate, when)
        [name] = self.files(self.inbox, "new")
        self.assertEqual(os.stat(os.path.join(self.inbox._path(), "new", name)).st_mtime, when.timestamp())
        self.assertRaises(NoSuchMessage, self.inbox.openMessage, uid + 1)

    def test_flagsInFileName(self):
        """System flags are sorted letters in the file name, keywords their dovecot-keywords letters."""
        uid = self.inbox.appendMessage(CRLF_MESSAGE, flags=["\\seen", "$Forwarded", "\\Recent", "Work"])
        [name] = self.files(self.inbox)
        self.assertTrue(name.endswith(":2,PSa"), name)
        self.assertEqual(self.inbox.messages([uid])[0].flags, {"\\Seen", "$Forwarded", "Work"})
        changed, failed = self.inbox.setFlags([uid], ["\\Answered", "\\Flagged", "\\Draft", "\\Deleted"], "+")
        self.assertEqual([info.uid for info in changed], [uid])
        [name] = self.files(self.inbox)
        self.assertTrue(name.endswith(":2,DFPRSTa"), name)
        self.inbox.setFlags([uid], ["\\Seen", "Work"], "-")
        [name] = self.files(self.inbox)
        self.assertTrue(name.endswith(":2,DFPRT"), name)
        self.inbox.setFlags([uid], ["Other"], "=")
        [name] = self.files(self.inbox)
        self.assertTrue(name.endswith(":2,b"), name)
        self.assertEqual(self.inbox.messages([uid])[0].flags, {"Other"})
        self.assertEqual(self.readAll(self.inbox.openMessage(uid)), CRLF_MESSAGE)

    def test_setFlagsAnswersAsTheRowNowIs(self):
        """
        What setFlags returns for a changed message is the row as it is
        after the change (flags, modseq, date, size), taken from the one
        read of the rows it changes: the index is not read again for it.
        """
        uids = [self.inbox.appendMessage(CRLF_MESSAGE, flags=["Work"]) for _ in range(2)]
        statements = []
        self.store._conn.set_trace_callback(statements.append)
        self.addCleanup(self.store._conn.set_trace_callback, None)
        changed, failed = self.inbox.setFlags(uids, ["\\Flagged"], "+")
        self.store._conn.set_trace_callback(None)
        self.assertEqual(failed, [])
        after = self.inbox.messages(uids, headers=False)
        self.assertEqual([(i.uid, i.flags, i.modseq, i.internalDate, i.size) for i in changed],
                         [(i.uid, i.flags, i.modseq, i.internalDate, i.size) for i in after])
        self.assertEqual({i.flags == {"\\Flagged", "Work"} for i in changed}, {True})
        self.assertEqual(len([sql for sql in statements if sql.startswith("SELECT") and "FROM messages" in sql]), 1)

    def test_writesTakeOneStatementAStep(self):
        """
        A modseq and a UID are each taken, and the folders' mtimes recorded,
        in one statement (the index writer gives the GIL away at each):
        appending a message and flagging it run no SELECT of the mailbox's
        row inside their transactions.
        """
        uid = self.inbox.appendMessage(CRLF_MESSAGE)
        statements = []
        self.store._conn.set_trace_callback(statements.append)
        self.addCleanup(self.store._conn.set_trace_callback, None)
        self.inbox.setFlags([uid], ["\\Seen"], "+")
        self.inbox.appendMessage(CRLF_MESSAGE)
        self.store._conn.set_trace_callback(None)
        self.assertEqual([sql for sql in statements if "SELECT highestmodseq" in sql or "SELECT uidnext" in sql],
                         [])
        # The folders' mtimes (recorded while inotify covers the mailbox).
        self.inbox._covered, self.inbox._events = True, set()
        del statements[:]
        self.store._conn.set_trace_callback(statements.append)
        with index.transaction(self.store._conn):
            self.inbox._recordFolders()
        self.store._conn.set_trace_callback(None)
        self.assertEqual([sql.split(" = ")[0] for sql in statements if sql.startswith("UPDATE")],
                         ["UPDATE mailboxes SET newmtime"])
        self.assertEqual(self.inbox._row("newmtime, curmtime"),
                         tuple(scan.folderMtime(os.path.join(self.inbox._path(), sub)) for sub in ("new", "cur")))

    def test_uidOfDeletedMailbox(self):
        """
        Taking a UID (inside the append's transaction) for a mailbox that
        another process deleted meanwhile raises NoSuchMailbox, as reading
        the mailbox's row would: its UPDATE found no row.
        """
        self.store.createMailbox("Gone")
        gone = self.store.getMailbox("Gone")
        self.makeStore(self.mailPath).deleteMailbox("Gone")
        self.assertFalse(gone._gone)
        with self.assertRaises(NoSuchMailbox):
            with index.transaction(self.store._conn):
                gone._takeUid()

    def test_listReadsTheMailboxesOnce(self):
        """
        LIST reads the index's mailboxes once when the folders agree with
        them (the names it compares with the folders are the listed rows'),
        and again only after registering a folder another program made.
        """
        self.store.listMailboxes()
        statements = []
        self.store._conn.set_trace_callback(statements.append)
        self.addCleanup(self.store._conn.set_trace_callback, None)
        names = [info.name for info in self.store.listMailboxes()]
        self.assertEqual(len([sql for sql in statements if "FROM mailboxes" in sql]), 1)
        self.assertNotIn("Imported", names)
        maildir.ensureMaildir(os.path.join(self.mailPath, "Imported"))
        del statements[:]
        self.assertIn("Imported", [info.name for info in self.store.listMailboxes()])
        self.assertEqual(len([sql for sql in statements if sql.startswith("SELECT name, class")]), 2)

    def test_newMessageMovesToCurOnFlag(self):
        """An unflagged message waits in new/ and moves to cur/ when it gets a flag."""
        uid = self.inbox.appendMessage(CRLF_MESSAGE)
        self.assertEqual(len(self.files(self.inbox, "new")), 1)
        self.inbox.setFlags([uid], ["\\Seen"], "+")
        self.assertEqual(self.files(self.inbox, "new"), [])
        self.assertEqual(len(self.files(self.inbox, "cur")), 1)

    def test_unchangedSince(self):
        """setFlags with unchangedSince skips messages modified later (RFC 7162)."""
        first = self.inbox.appendMessage(CRLF_MESSAGE)
        second = self.inbox.appendMessage(CRLF_MESSAGE)
        modseq = self.inbox.messages([first])[0].modseq
        changed, failed = self.inbox.setFlags([first, second], ["\\Seen"], "+", unchangedSince=modseq)
        self.assertEqual(([info.uid for info in changed], failed), ([first], [second]))
        self.assertGreater(changed[0].modseq, modseq)
        changed, failed = self.inbox.setFlags([first], ["\\Seen"], "+", unchangedSince=0)
        self.assertEqual((changed, failed), ([], [first]))

    def test_expunge(self):
        """Only \\Deleted messages (among the given UIDs) are expunged, files and usage included."""
        uids = [self.inbox.appendMessage(CRLF_MESSAGE) for _ in range(4)]
        self.inbox.setFlags(uids[:3], ["\\Deleted"], "+")
        self.assertEqual(self.inbox.expunge([uids[0], uids[3]]), [uids[0]])
        self.assertEqual(self.inbox.expunge(), uids[1:3])
        self.assertEqual(self.inbox.uids(), [uids[3]])
        self.assertEqual(len(self.allFiles(self.inbox)), 1)
        self.assertEqual(self.store.usage(), len(CRLF_MESSAGE))
        self.assertEqual(self.inbox.expunge(), [])

    def test_changesSince(self):
        """changesSince reports new, flag-changed and expunged messages after a modseq."""
        a = self.inbox.appendMessage(CRLF_MESSAGE)
        b = self.inbox.appendMessage(CRLF_MESSAGE)
        start = self.inbox.highestModSeq()
        c = self.inbox.appendMessage(CRLF_MESSAGE)
        self.inbox.setFlags([a], ["\\Deleted"], "+")
        self.inbox.expunge()
        self.inbox.setFlags([b], ["\\Seen"], "+")
        expunged, changed, highest = self.inbox.changesSince(start)
        self.assertEqual(expunged, [a])
        self.assertEqual([info.uid for info in changed], [b, c])
        self.assertEqual(highest, self.inbox.highestModSeq())
        self.assertEqual(self.inbox.changesSince(highest), ([], [], highest))

    def test_uidStateFollowsOtherProcess(self):
        """The UIDs kept from an earlier state are brought up to date from what changed, as a full read gives them."""
        other = self.makeStore(self.mailPath).getMailbox("INBOX")
        for _ in range(5):
            other.appendMessage(CRLF_MESSAGE)
        self.assertEqual(self.inbox.uidState()[2], (1, 2, 3, 4, 5))
        incremental = []
        original = Mailbox._uidsAfter
        self.patch(Mailbox, "_uidsAfter", lambda mailbox, *args: incremental.append(1) or original(mailbox, *args))
        other.setFlags([2, 4], ["\\Deleted"], "+")
        other.expunge()
        other.appendMessage(CRLF_MESSAGE)
        other.setFlags([6], ["\\Deleted"], "+")
        other.expunge()
        other.appendMessage(CRLF_MESSAGE)
        modseq, uidNext, uids = self.inbox.uidState()
        self.assertEqual(uids, (1, 3, 5, 7))
        self.assertEqual((modseq, uidNext), (other.highestModSeq(), 8))
        self.assertEqual(incremental, [1])

    def test_countsFollowEveryChange(self):
        """Counts kept while nothing changed follow another process's append, flag change, expunge and \\Recent claim."""
        other = self.makeStore(self.mailPath).getMailbox("INBOX")
        other.appendMessage(CRLF_MESSAGE)
        first = self.inbox.counts()
        self.assertEqual((first.messages, first.unseen, first.recent), (1, 1, 1))
        self.assertIs(self.inbox.counts(), first)
        other.appendMessage(CRLF_MESSAGE)
        self.assertEqual(self.inbox.counts().messages, 2)
        other.setFlags([1], ["\\Seen"], "+")
        self.assertEqual(self.inbox.counts().unseen, 1)
        other.claimRecent()
        self.assertEqual(self.inbox.counts().recent, 0)
        other.setFlags([2], ["\\Deleted"], "+")
        other.expunge()
        counts = self.inbox.counts()
        self.assertEqual((counts.messages, counts.unseen, counts.size), (1, 0, len(CRLF_MESSAGE)))

    def test_uidStateAfterRowsDropped(self):
        """When a mailbox's rows are dropped without being expunged (it was deleted while it has children), the UIDs are read again."""
        store = self.makeStore()
        store.createMailbox("P/C")
        mailbox = store.getMailbox("P")
        mailbox.appendMessage(CRLF_MESSAGE)
        self.assertEqual(mailbox.uidState()[2], (1,))
        self.makeStore(self.mailPath).deleteMailbox("P")
        self.assertEqual(mailbox.uidState()[2], ())

    def test_copyAndMove(self):
        """copyTo keeps flags and files; moveTo removes the originals and logs their expunge."""
        self.store.createMailbox("Dest")
        dest = self.store.getMailbox("Dest")
        a = self.inbox.appendMessage(CRLF_MESSAGE, flags=["\\Seen", "Tag"])
        b = self.inbox.appendMessage(LF_MESSAGE)
        pairs = self.inbox.copyTo([a, b], dest)
        self.assertEqual(pairs, [(a, 1), (b, 2)])
        self.assertEqual(dest.messages([1])[0].flags, {"\\Seen", "Tag"})
        self.assertEqual(self.readAll(dest.openMessage(2)), LF_MESSAGE.replace(b"\n", b"\r\n"))
        self.assertEqual(self.inbox.uids(), [a, b])
        self.assertEqual(self.store.usage(), 2 * (len(CRLF_MESSAGE) + len(LF_MESSAGE)))
        start = self.inbox.highestModSeq()
        self.assertEqual(self.inbox.moveTo([a], dest), [(a, 3)])
        self.assertEqual(self.inbox.uids(), [b])
        self.assertEqual(self.inbox.changesSince(start)[0], [a])
        self.assertEqual(dest.uids(), [1, 2, 3])
        self.assertEqual(len(self.allFiles(self.inbox)), 1)
        self.assertEqual(len(self.allFiles(dest)), 3)
        self.assertEqual(self.store.usage(), 2 * (len(CRLF_MESSAGE) + len(LF_MESSAGE)))
        self.assertEqual(self.readAll(dest.openMessage(3)), CRLF_MESSAGE)

    def test_quotaRefusalLeavesNothing(self):
        """Append and copy over quota raise QuotaExceeded and leave no file or index row."""
        quota = FakeQuota(len(CRLF_MESSAGE) + 10)
        store = self.makeStore(quota=quota)
        quota.store = store
        inbox = store.getMailbox("INBOX")
        uid = inbox.appendMessage(CRLF_MESSAGE)
        self.assertRaises(QuotaExceeded, inbox.appendMessage, CRLF_MESSAGE)
        self.assertRaises(QuotaExceeded, inbox.appendMessage, io.BytesIO(CRLF_MESSAGE))
        self.assertRaises(QuotaExceeded, inbox.copyTo, [uid], store.getMailbox("Drafts"))
        self.assertEqual(inbox.uids(), [uid])
        self.assertEqual(inbox.uidNext(), uid + 1)
        self.assertEqual(len(self.allFiles(inbox)), 1)
        self.assertEqual(self.files(inbox, "tmp"), [])
        self.assertEqual(self.allFiles(store.getMailbox("Drafts")), [])
        self.assertEqual(store.usage(), len(CRLF_MESSAGE))

    def test_committedAppendUnlinksNothing(self):
        """
        An APPEND whose file was renamed into place tries no unlink of its
        temporary name (it would only fail, in the writers' lock); one that
        failed to rename still removes its temporary file.
        """
        removed = []
        original = maildir.removeQuietly

        def removeQuietly(path):
            removed.append(path)
            original(path)
        self.patch(maildir, "removeQuietly", removeQuietly)
        self.inbox.appendMessage(CRLF_MESSAGE)
        self.inbox.appendMessage(io.BytesIO(LF_MESSAGE))
        self.assertEqual(removed, [])
        self.assertEqual(self.files(self.inbox, "tmp"), [])

        def rename(source, target):
            raise OSError(errno.EIO, "rename failed")
        self.patch(os, "rename", rename)
        self.assertRaises(OSError, self.inbox.appendMessage, CRLF_MESSAGE)
        self.assertEqual(len(removed), 1)
        self.assertEqual(os.path.dirname(removed[0]), os.path.join(self.inbox._path(), "tmp"))
        self.assertEqual(self.files(self.inbox, "tmp"), [])
        self.assertEqual(len(self.inbox.uids()), 2)

    def test_uidsPersistAcrossReopen(self):
        """UIDs, UIDVALIDITY, UIDNEXT, flags and keywords survive a new MailStore on the same path."""
        a = self.inbox.appendMessage(CRLF_MESSAGE, flags=["\\Seen", "Kw"])
        b = self.inbox.appendMessage(CRLF_MESSAGE)
        self.inbox.setFlags([b], ["\\Deleted"], "+")
        self.inbox.expunge()
        validity, uidNext = self.inbox.uidValidity, self.inbox.uidNext()
        other = self.makeStore(self.mailPath).getMailbox("INBOX")
        self.assertEqual(other.uidValidity, validity)
        self.assertEqual(other.uidNext(), uidNext)
        self.assertEqual(other.uids(), [a])
        self.assertEqual(other.messages([a])[0].flags, {"\\Seen", "Kw"})
        self.assertEqual(other.appendMessage(CRLF_MESSAGE), b + 1)

    def test_claimRecentExactlyOnce(self):
        """Each new message is \\Recent for exactly one claimer, across two MailStore objects."""
        other = self.makeStore(self.mailPath).getMailbox("INBOX")
        a = self.inbox.appendMessage(CRLF_MESSAGE)
        self.assertEqual(other.claimRecent(), {a})
        self.assertEqual(self.inbox.claimRecent(), set())
        b = other.appendMessage(CRLF_MESSAGE)
        self.assertEqual(self.inbox.claimRecent(), {b})
        self.assertEqual(other.claimRecent(), set())

    def test_listenerInProcess(self):
        """Listeners are called once, on the next reactor turn, after changes through the store."""
        clock = task.Clock()
        store = self.makeStore(os.path.join(self.temporaryFolder(), "mail"), reactor=clock, useInotify=False)
        inbox = store.getMailbox("INBOX")
        calls = []
        remove = inbox.addListener(lambda: calls.append(1))
        inbox.appendMessage(CRLF_MESSAGE)
        inbox.appendMessage(CRLF_MESSAGE)
        self.assertEqual(calls, [])
        clock.advance(0)
        self.assertEqual(calls, [1])
        clock.advance(5)  # the periodic check finds nothing new
        self.assertEqual(calls, [1])
        remove()
        inbox.setFlags([1], ["\\Seen"], "+")
        clock.advance(5)
        self.assertEqual(calls, [1])
        self.assertIsNone(store._watcher.mode)

    def test_listenersInBatches(self):
        """Many listeners are called a batch per reactor turn, in order; one removed meanwhile is skipped."""
        clock = task.Clock()
        store = self.makeStore(os.path.join(self.temporaryFolder(), "mail"), reactor=clock, useInotify=False)
        inbox = store.getMailbox("INBOX")
        batch = changes._FANOUT_BATCH
        calls = []
        removers = [inbox.addListener(lambda n=n: calls.append(n)) for n in range(2 * batch + 10)]

        def turn():
            # One reactor turn: the calls due now, not those they schedule
            # (Clock.advance would run those too).
            due = [call for call in clock.getDelayedCalls() if call.getTime() <= clock.seconds()]
            for call in due:
                clock.calls.remove(call)
                call.func(*call.args, **call.kw)

        inbox.appendMessage(CRLF_MESSAGE)
        turn()
        self.assertEqual(calls, list(range(batch)))
        removers[batch]()
        turn()
        self.assertEqual(calls, list(range(batch)) + list(range(batch + 1, 2 * batch)))
        turn()
        self.assertEqual(calls[-10:], list(range(2 * batch, 2 * batch + 10)))
        self.assertEqual(len(calls), 2 * batch + 9)
        turn()
        self.assertEqual(len(calls), 2 * batch + 9)

    def test_listenerOtherStorePolling(self):
        """A change through a second MailStore on the same path reaches a listener via the periodic check."""
        clock = task.Clock()
        store = self.makeStore(os.path.join(self.temporaryFolder(), "mail"), reactor=clock, useInotify=False)
        inbox = store.getMailbox("INBOX")
        other = self.makeStore(store.path).getMailbox("INBOX")
        uid = other.appendMessage(CRLF_MESSAGE)
        calls = []
        inbox.addListener(lambda: calls.append(1))
        other.setFlags([uid], ["\\Seen"], "+")
        self.assertEqual(store._watcher.mode, "poll")
        clock.advance(1.5)
        self.assertEqual(calls, [1])
        self.assertEqual([info.uid for info in inbox.changesSince(2)[1]], [uid])


class CrashAndImportTests(StoreTestMixin, unittest.TestCase):
    """
    Files put into the Maildir by other programs, crashes, lost indexes.
    """

    def writeFile(self, mailbox, subdir, name, data=CRLF_MESSAGE):
        path = os.path.join(self.mailPath, *mailbox.split("/"), subdir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_strayTmpFileIsNotAMessage(self):
        """A file left in tmp/ by an interrupted delivery is never indexed."""
        store = self.makeStore()
        self.writeFile("INBOX", "tmp", "123.half.host", b"From: x\r\n")
        inbox = store.getMailbox("INBOX")
        self.assertEqual(inbox.uids(), [])
        other = self.makeStore(self.mailPath).getMailbox("INBOX")
        self.assertEqual(other.uids(), [])

    def test_indexRebuiltWithFlags(self):
        """With the index deleted, a new MailStore rebuilds it from the Maildir with flags and sizes."""
        store = self.makeStore()
        store.createMailbox("Work/Projects")
        inbox = store.getMailbox("INBOX")
        inbox.appendMessage(CRLF_MESSAGE, flags=["\\Seen", "\\Flagged"])
        inbox.appendMessage(LF_MESSAGE)
        store.getMailbox("Work/Projects").appendMessage(CRLF_MESSAGE, flags=["\\Answered"])
        oldValidity = inbox.uidValidity
        store.close()
        for suffix in ("", "-wal", "-shm"):
            maildir.removeQuietly(os.path.join(self.mailPath, maildir.INDEX_NAME + suffix))
        store = self.makeStore(self.mailPath)
        inbox = store.getMailbox("INBOX")
        self.assertNotEqual(inbox.uidValidity, oldValidity)
        infos = inbox.messages(inbox.uids())
        self.assertEqual(sorted(sorted(info.flags) for info in infos), [[], ["\\Flagged", "\\Seen"]])
        self.assertEqual(sorted(info.size for info in infos),
                         sorted([len(CRLF_MESSAGE), len(LF_MESSAGE.replace(b"\n", b"\r\n"))]))
        projects = store.getMailbox("Work/Projects")
        self.assertEqual(projects.messages(projects.uids())[0].flags, {"\\Answered"})
        self.assertEqual(store.usage(), 2 * len(CRLF_MESSAGE) + len(LF_MESSAGE))

    def test_copiedInMaildir(self):
        """A Maildir copied in (no uidlist) appears in LIST and is indexed on first open; new/ goes to cur/."""
        store = self.makeStore()
        folder = os.path.join(self.mailPath, "Imported")
        maildir.ensureMaildir(folder)
        self.writeFile("Imported", "cur", "1000.a.host:2,RS")
        self.writeFile("Imported", "cur", "1001.b.host:2,", LF_MESSAGE)
        self.writeFile("Imported", "new", "1002.c.host")
        self.assertIn("Imported", [info.name for info in store.listMailboxes()])
        mailbox = store.getMailbox("Imported")
        infos = mailbox.messages(mailbox.uids())
        self.assertEqual([info.uid for info in infos], [1, 2, 3])
        self.assertEqual(infos[0].flags, {"\\Answered", "\\Seen"})
        self.assertEqual(infos[1].size, len(LF_MESSAGE.replace(b"\n", b"\r\n")))
        self.assertEqual(self.files(mailbox, "new"), [])
        self.assertIn("1002.c.host:2,", self.files(mailbox, "cur"))
        self.assertEqual(mailbox.claimRecent(), {1, 2, 3})

    def test_bigImportInBatches(self):
        """A copied-in Maildir larger than one index batch gets every file, UIDs in file-name order."""
        self.patch(scan, "SCAN_BATCH", 2)
        store = self.makeStore()
        maildir.ensureMaildir(os.path.join(self.mailPath, "Many"))
        for n in range(7):
            self.writeFile("Many", "cur", "%d.m%d.host:2,S" % (1000 + n, n), b"Subject: %d\r\n\r\n" % (n,))
        mailbox = store.getMailbox("Many")
        infos = mailbox.messages(mailbox.uids())
        self.assertEqual([info.uid for info in infos], list(range(1, 8)))
        self.assertEqual([info.headers for info in infos], [b"Subject: %d\r\n\r\n" % (n,) for n in range(7)])
        self.assertEqual(mailbox.uidNext(), 8)

    def test_copiedInDovecotMaildir(self):
        """A copied-in Dovecot Maildir keeps its UIDs, UIDVALIDITY and keywords from dovecot files."""
        store = self.makeStore()
        folder = os.path.join(self.mailPath, "Dove")
        maildir.ensureMaildir(folder)
        self.writeFile("Dove", "cur", "1500.x.host,S=%d:2,Sb" % (len(CRLF_MESSAGE),))
        self.writeFile("Dove", "cur", "1400.y.host:2,")
        self.writeFile("Dove", "new", "1600.z.host")
        with open(os.path.join(folder, "dovecot-uidlist"), "w") as f:
            f.write("3 V1234567 N40 G3085f01b7f11094c501100008c4a11c1\n")
            f.write("17 :1400.y.host\n")
            f.write("25 W1234 :1500.x.host,S=%d\n" % (len(CRLF_MESSAGE),))
        with open(os.path.join(folder, "dovecot-keywords"), "w") as f:
            f.write("0 $Junk\n1 Important\n")
        mailbox = store.getMailbox("Dove")
        self.assertEqual(mailbox.uidValidity, 1234567)
        self.assertEqual(mailbox.uids(), [17, 25, 40])
        self.assertEqual(mailbox.messages([25])[0].flags, {"\\Seen", "Important"})
        self.assertEqual(mailbox.uidNext(), 41)

    def test_deliveryCrashBeforeIndex(self):
        """A message renamed into new/ whose index commit never happened is indexed by the next scan."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        inbox.appendMessage(CRLF_MESSAGE)
        self.writeFile("INBOX", "new", "2000.crash.host", LF_MESSAGE)
        store2 = self.makeStore(self.mailPath, reactor=reactor)
        d = store2.getMailbox("INBOX").synchronize()

        def check(_):
            self.assertEqual(inbox.uids(), [1, 2])
            self.assertEqual(self.readAll(inbox.openMessage(2)), LF_MESSAGE.replace(b"\n", b"\r\n"))
        return d.addCallback(check)


class SynchronizeTests(StoreTestMixin, unittest.TestCase):
    """
    synchronize() against changes by other programs (real reactor, threads).
    """

    def setUp(self):
        self.store = self.makeStore(reactor=reactor)
        self.inbox = self.store.getMailbox("INBOX")

    def test_nothingChangedIsFiredAtOnce(self):
        """synchronize() returns an already-fired Deferred when the folders did not change."""
        d = self.inbox.synchronize()
        d.addCallback(lambda _: self.inbox.synchronize())
        d.addCallback(lambda _: self.store._conn.execute(
            "UPDATE mailboxes SET newsynced = newsynced + 10000000000,"
            " cursynced = cursynced + 10000000000"))
        d.addCallback(lambda _: self.assertTrue(self.inbox.synchronize().called))
        return d

    @inlineCallbacks
    def test_externalChanges(self):
        """Flag letters renamed, files removed and added by another program are taken into the index."""
        a = self.inbox.appendMessage(CRLF_MESSAGE, flags=["\\Seen", "Kw"])
        b = self.inbox.appendMessage(CRLF_MESSAGE, flags=["\\Seen"])
        yield self.inbox.synchronize()
        start = self.inbox.highestModSeq()
        cur = os.path.join(self.inbox._path(), "cur")
        # Which file is which, from the index (names sort by their time's
        # digits, which are not zero-padded: the order says nothing).
        nameA, nameB = (self.inbox._conn.execute("SELECT filename FROM messages WHERE mailbox = ? AND uid = ?",
                                                 (self.inbox._id, uid)).fetchone()[0] for uid in (a, b))
        os.rename(os.path.join(cur, nameA), os.path.join(cur, nameA.replace(":2,S", ":2,FRS")))
        os.unlink(os.path.join(cur, nameB))
        with open(os.path.join(self.inbox._path(), "new", "3000.ext.host"), "wb") as f:
            f.write(LF_MESSAGE)
        calls = []
        self.inbox.addListener(lambda: calls.append(1))
        yield self.inbox.synchronize()
        self.assertEqual(self.inbox.uids(), [a, b + 1])
        self.assertEqual(self.inbox.messages([a])[0].flags, {"\\Seen", "\\Flagged", "\\Answered", "Kw"})
        expunged, changed, highest = self.inbox.changesSince(start)
        self.assertEqual(expunged, [b])
        self.assertEqual([info.uid for info in changed], [a, b + 1])
        self.assertEqual(self.readAll(self.inbox.openMessage(b + 1)), LF_MESSAGE.replace(b"\n", b"\r\n"))
        self.assertEqual(self.store.usage(), len(CRLF_MESSAGE) + len(LF_MESSAGE))
        yield task.deferLater(reactor, 0.01, lambda: None)
        self.assertTrue(calls)

    def test_openMessageAfterExternalRename(self):
        """openMessage finds a message whose file another program renamed before we synchronized."""
        uid = self.inbox.appendMessage(CRLF_MESSAGE, flags=["\\Seen"])
        cur = os.path.join(self.inbox._path(), "cur")
        [name] = os.listdir(cur)
        os.rename(os.path.join(cur, name), os.path.join(cur, name + "T"))
        self.assertEqual(self.readAll(self.inbox.openMessage(uid)), CRLF_MESSAGE)


    def test_locatedMessages(self):
        """
        locatedMessages gives what messages gives, and where each file is:
        openMessage opens it from there without a query, and finds it when
        it has been renamed since (a flag changed).
        """
        a = self.inbox.appendMessage(CRLF_MESSAGE)
        b = self.inbox.appendMessage(LF_MESSAGE, flags=["\\Seen"])
        for headers in (True, False):
            infos, locations = self.inbox.locatedMessages([a, b, b + 5], headers=headers)
            self.assertEqual([(i.uid, i.flags, i.size, i.modseq, i.headers) for i in infos],
                             [(i.uid, i.flags, i.size, i.modseq, i.headers)
                              for i in self.inbox.messages([a, b], headers=headers)])
            self.assertEqual(sorted(locations), [a, b])
        self.inbox.setFlags([a], ["\\Flagged"], "+")

        class NoQueries:
            def execute(self, *args):
                raise AssertionError("a query: %r" % (args,))

        self.patch(type(self.inbox), "_conn", NoQueries())
        self.assertEqual(self.readAll(self.inbox.openMessage(a, locations[a])), CRLF_MESSAGE)
        self.assertEqual(self.readAll(self.inbox.openMessage(b, locations[b])), LF_MESSAGE.replace(b"\n", b"\r\n"))

class CrossProcessTests(StoreTestMixin, unittest.TestCase):
    """
    Listeners learn of changes made by another MailStore and another process.
    """

    timeout = 15

    def waitForListener(self, mailbox):
        notified = Deferred()

        def listener():
            if not notified.called:
                notified.callback(None)
        self.addCleanup(mailbox.addListener(listener))
        notified.addTimeout(8, reactor)
        return notified

    @inlineCallbacks
    def test_otherStoreInotify(self):
        """A message appended through an independent MailStore reaches a listener (inotify or polling)."""
        store = self.makeStore(reactor=reactor)
        inbox = store.getMailbox("INBOX")
        notified = self.waitForListener(inbox)
        other = self.makeStore(self.mailPath).getMailbox("INBOX")
        uid = other.appendMessage(CRLF_MESSAGE)
        yield notified
        expected = ("inotify",) if sys.platform.startswith("linux") else ("inotify", "poll")
        self.assertIn(store._watcher.mode, expected)
        self.assertEqual([info.uid for info in inbox.changesSince(1)[1]], [uid])

    @inlineCallbacks
    def test_accountsShareOneINotify(self):
        """
        Stores of different accounts watch through one inotify descriptor;
        each still hears only of its own changes, and once nothing is
        watched the descriptor is no longer read by the reactor.
        """
        if not sys.platform.startswith("linux"):
            raise unittest.SkipTest("inotify is Linux only")
        first = self.makeStore(reactor=reactor)
        second = self.makeStore(os.path.join(self.temporaryFolder(), "second"), reactor=reactor)
        inboxes = [store.getMailbox("INBOX") for store in (first, second)]
        heard = []
        removers = [inbox.addListener(lambda n=n: heard.append(n)) for n, inbox in enumerate(inboxes)]
        notified = self.waitForListener(inboxes[1])
        self.assertEqual((first._watcher.mode, second._watcher.mode), ("inotify", "inotify"))
        self.assertIs(first._watcher._notifier, second._watcher._notifier)
        self.makeStore(second.path).getMailbox("INBOX").appendMessage(CRLF_MESSAGE)
        yield notified
        self.assertEqual(set(heard), {1})
        for remove in removers:
            remove()
        shared = sharedINotify(reactor)
        self.assertIs(second._watcher._notifier, shared)  # the test's own listener is still there
        self.assertTrue(shared._notifier.wanted)  # read now or after its pause
        first.close()
        second.close()
        self.assertFalse(shared._notifier.wanted)
        self.assertNotIn(shared._notifier, reactor.getReaders())

    @inlineCallbacks
    def test_externalFileReachesListener(self):
        """A file dropped into new/ by another program is indexed and reaches a listener."""
        store = self.makeStore(reactor=reactor)
        inbox = store.getMailbox("INBOX")
        yield inbox.synchronize()
        notified = self.waitForListener(inbox)
        with open(os.path.join(inbox._path(), "new", "4000.mutt.host"), "wb") as f:
            f.write(CRLF_MESSAGE)
        yield notified
        self.assertEqual(inbox.uids(), [1])

    @inlineCallbacks
    def test_otherProcess(self):
        """A message appended by a real second process reaches a listener in this one."""
        store = self.makeStore(reactor=reactor)
        inbox = store.getMailbox("INBOX")
        notified = self.waitForListener(inbox)
        script = (
            "import sys; from gateway.store.mail import MailStore; "
            "s = MailStore(sys.argv[1]); m = s.getMailbox('INBOX'); "
            "print(m.appendMessage(b'Subject: from afar\\r\\n\\r\\nhi\\r\\n', flags=['\\\\Seen']))"
        )
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        out, err, code = yield utils.getProcessOutputAndValue(
            sys.executable, ["-c", script, store.path], env=dict(os.environ, PYTHONPATH=root), path=root)
        self.assertEqual(code, 0, err)
        yield notified
        self.assertEqual(inbox.uids(), [int(out)])
        self.assertEqual(inbox.messages([int(out)])[0].flags, {"\\Seen"})


class UidListTests(StoreTestMixin, unittest.TestCase):
    def test_changesElsewhereSeen(self):
        """
        The UID list a mailbox remembers between calls follows changes made
        through another store on the same index (another process): appends,
        expunges, and the mailbox deleted and made again.
        """
        store = self.makeStore()
        other = self.makeStore(self.mailPath)
        store.createMailbox("Work/Old")
        mine = store.getMailbox("Work")
        first = mine.appendMessage(CRLF_MESSAGE)
        self.assertEqual(mine.uids(), [first])
        theirs = other.getMailbox("Work")
        second = theirs.appendMessage(CRLF_MESSAGE)
        self.assertEqual(mine.uids(), [first, second])
        theirs.setFlags([first], ["\\Deleted"], "+")
        theirs.expunge()
        self.assertEqual(mine.uids(), [second])
        returned = mine.uids()
        returned.append(99)
        self.assertEqual(mine.uids(), [second], "callers get their own copy")
        other.deleteMailbox("Work")  # has a child: only its messages go
        other.createMailbox("Work")
        self.assertEqual(store.getMailbox("Work").uids(), [])

    def test_deletedWithChildren(self):
        """
        Deleting a mailbox that has children removes its messages in one
        step that other stores notice.
        """
        store = self.makeStore()
        store.createMailbox("Work/Old")
        mine = store.getMailbox("Work")
        mine.appendMessage(CRLF_MESSAGE)
        self.assertEqual(len(mine.uids()), 1)
        self.makeStore(self.mailPath).deleteMailbox("Work")
        self.assertEqual(mine.uids(), [])


class ThreadTests(StoreTestMixin, unittest.TestCase):
    @inlineCallbacks
    def test_workerThreadHasItsOwnConnection(self):
        """
        A mailbox read from a worker thread while the store's thread is in
        the middle of a write transaction neither joins that transaction nor
        trips over it: it sees the last committed state.
        """
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        first = inbox.appendMessage(CRLF_MESSAGE)
        with index.transaction(store._conn):
            store._conn.execute("UPDATE messages SET flags = '\\Flagged' WHERE uid = ?", (first,))
            seen = yield threads.deferToThread(
                lambda: (inbox.uids(), inbox.messages([first])[0].flags, inbox.openMessage(first).read()))
        self.assertEqual(seen, ([first], frozenset(), CRLF_MESSAGE))
        self.assertEqual(inbox.messages([first])[0].flags, {"\\Flagged"})


    def test_closeLetsGoOfThreadConnections(self):
        """After close, the connections the store made in other threads are closed once collected, threads alive."""
        import gc
        import threading

        from gateway import memdebug

        store = self.makeStore()
        ready, finish = threading.Barrier(3), threading.Event()

        def use():
            store._conn.execute("SELECT COUNT(*) FROM mailboxes").fetchone()
            ready.wait()
            finish.wait()
        workers = [threading.Thread(target=use) for _ in range(2)]
        for t in workers:
            t.start()
        self.addCleanup(lambda: [finish.set()] + [t.join() for t in workers])
        ready.wait()

        def open_():
            return len([name for name, _ in memdebug.sqliteConnections() if name == store.indexPath])
        self.assertEqual(open_(), 3)  # the store's own, one per thread
        store.close()
        gc.collect()  # each is in a cycle with its statement cache
        self.assertEqual(open_(), 0)
        self.assertTrue(all(t.is_alive() for t in workers))


class IndexFileTests(StoreTestMixin, unittest.TestCase):
    def test_walAndTransactions(self):
        """The index is one SQLite file per account in WAL mode."""
        store = self.makeStore()
        conn = sqlite3.connect(store.indexPath)
        self.addCleanup(conn.close)
        self.assertEqual(conn.execute("PRAGMA journal_mode").fetchone()[0], "wal")
        self.assertEqual(store.indexPath, os.path.abspath(os.path.join(self.mailPath, ".gateway-index.sqlite")))

    def test_removedFolderIsForgotten(self):
        """A mailbox folder removed by another program disappears from LIST."""
        store = self.makeStore()
        store.createMailbox("Gone")
        shutil.rmtree(os.path.join(self.mailPath, "Gone"))
        self.assertNotIn("Gone", [info.name for info in store.listMailboxes()])
