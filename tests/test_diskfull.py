# -*- test-case-name: tests.test_diskfull -*-
"""
A full disk for IMAP, POP3 and the mail store: reading, flagging and
expunging still work so a user can make room, and refusals are the
protocols' own (IMAP C{NO [UNAVAILABLE]}/C{NO [OVERQUOTA]}, POP3 C{-ERR
[SYS/TEMP]}), never C{[SERVERBUG]} and never a traceback in the log.
"""

import contextlib
import errno
import imaplib
import os
import poplib
import sqlite3

from twisted.internet import defer, reactor
from twisted.internet.threads import deferToThread
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial import unittest

from gateway.errors import NoSuchMailbox, QuotaExceeded, StorageFull, isStorageFull
from gateway.imap import commands_mailbox
from gateway.imap.protocol import ANY, COMMANDS, DISK_FULL, Command
from gateway.imap.server import makeFactory
from gateway.lmtp import delivery
from gateway.pop3.server import makeFactory as makePOP3Factory
from gateway.service import makeContext
from gateway.store import changes, index, maildir, metadata, scan
from tests.support import PASSWORD, makeDataRoot, makeTestConfig
from tests.test_imap_protocol import IMAPTestMixin
from tests.test_pop3 import SessionMixin
from tests.test_store_files import smallFileSystem
from tests.test_store_mail import StoreTestMixin

MESSAGE = b"From: a@example.test\r\nTo: demo@example.test\r\nSubject: %d\r\n\r\n" + b"body line\r\n" * 200


def sqliteFull():
    """
    The error SQLite raises when a write meets a full disk.
    """
    error = sqlite3.OperationalError("database or disk is full")
    error.sqlite_errorcode = 13  # SQLITE_FULL, as the sqlite3 module sets it
    return error


def diskFull():
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class RecognitionTests(unittest.TestCase):
    def test_storageFullErrors(self):
        """ENOSPC, EDQUOT, SQLITE_FULL (by code or by message) and StorageFull say the disk is full."""
        self.assertTrue(isStorageFull(diskFull()))
        self.assertTrue(isStorageFull(OSError(errno.EDQUOT, "Disk quota exceeded")))
        self.assertTrue(isStorageFull(sqliteFull()))
        self.assertTrue(isStorageFull(sqlite3.OperationalError("database or disk is full")))
        self.assertTrue(isStorageFull(StorageFull("full")))

    def test_otherErrors(self):
        """Other errors, the account's quota included, are not a full disk."""
        self.assertFalse(isStorageFull(OSError(errno.EACCES, "Permission denied")))
        busy = sqlite3.OperationalError("database is locked")
        busy.sqlite_errorcode = 5
        self.assertFalse(isStorageFull(busy))
        self.assertFalse(isStorageFull(QuotaExceeded()))
        self.assertFalse(isStorageFull(NoSuchMailbox("x")))
        self.assertFalse(isStorageFull(ValueError("x")))


class LMTPTests(unittest.TestCase):
    def test_sqliteFullIs452(self):
        """A delivery whose index commit meets SQLITE_FULL is 452 4.3.1 (try later), as ENOSPC is; the quota is 552."""
        for error in (sqliteFull(), diskFull()):
            result = delivery.failureResult(error, "demo@example.test")
            self.assertEqual((result.code, result.status), (452, "4.3.1"))
        self.assertEqual(delivery.failureResult(QuotaExceeded(), "demo@example.test").code, 552)


class IMAPInjectedTests(IMAPTestMixin, unittest.TestCase):
    """
    IMAP commands meeting a full disk (the error injected).
    """

    def setUp(self):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def failWith(self, exception):
        def handler(session, tag, args):
            raise exception

        COMMANDS["XFAIL"] = Command("XFAIL", ANY, handler)
        self.addCleanup(COMMANDS.pop, "XFAIL", None)

    def assertNoTraceback(self):
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual([e for e in self.events if e.get("log_failure") is not None], [])

    def test_commandMeetsFullDisk(self):
        """A command failing with ENOSPC or SQLITE_FULL gets NO [UNAVAILABLE], one warning, no traceback; the session goes on."""
        for error in (diskFull(), sqliteFull()):
            self.failWith(error)
            self.connect()
            self.assertEqual(self.send(b"x XFAIL"), b"x NO %s\r\n" % (DISK_FULL.encode(),))
            self.assertIn(b"y OK", self.send(b"y NOOP"))
            self.disconnect()
        self.assertNoTraceback()
        warnings = [e for e in self.events if "disk is full" in e.get("log_format", "")]
        self.assertEqual(len(warnings), 2)

    def test_storeErrorMapping(self):
        """A store error that says the disk is full maps to NO [UNAVAILABLE], never [SERVERBUG]."""
        self.assertEqual(commands_mailbox.storeError(StorageFull("full")).text, DISK_FULL)

    def test_appendMeetsFullDisk(self):
        """APPEND whose message file cannot be written: NO [UNAVAILABLE], nothing appended, no traceback."""
        def full(*args, **kwargs):
            raise diskFull()

        self.connect()
        self.login()
        self.patch(maildir, "writeTemporary", full)
        out = self.send(b"a APPEND INBOX {5+}\r\nhello")
        self.assertEqual(out, b"a NO %s\r\n" % (DISK_FULL.encode(),))
        self.assertIn(b'* STATUS "INBOX" (MESSAGES 0)', self.send(b"s STATUS INBOX (MESSAGES)"))
        self.assertNoTraceback()


@contextlib.contextmanager
def _fullOnCommit(conn):
    """
    L{index.transaction} on a full disk: the changes are rolled back and
    the commit fails with SQLITE_FULL.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    finally:
        conn.execute("ROLLBACK")
    raise sqliteFull()


class StoreInjectedTests(StoreTestMixin, unittest.TestCase):
    """
    Reads never need a write: what opening a mailbox writes is best effort.
    """

    def test_claimRecentOnFullDisk(self):
        """A session opening a mailbox on a full disk sees the new messages as recent; the claim is left to the next."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        uids = {inbox.appendMessage(b"Subject: a\r\n\r\nx\r\n"), inbox.appendMessage(b"Subject: b\r\n\r\ny\r\n")}
        self.patch(index, "transaction", _fullOnCommit)

        def full(*args):
            raise sqliteFull()

        self.patch(store.recentClaims, "claim", full)
        self.assertEqual(inbox.claimRecent(), uids)
        self.assertEqual(inbox.unclaimedRecent(), uids)

    def test_scanWithoutChangesOnFullDisk(self):
        """A scan that finds nothing to change succeeds on a full disk; one with changes fails with the error."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        inbox.appendMessage(b"Subject: a\r\n\r\nx\r\n")
        path = inbox._path()
        self.patch(index, "transaction", _fullOnCommit)
        conn = index.connect(store.indexPath)
        self.addCleanup(conn.close)
        self.assertFalse(scan.scanMailbox(conn, inbox._id, path))
        with open(os.path.join(path, "new", "1.external.host"), "wb") as f:
            f.write(b"Subject: b\r\n\r\ny\r\n")
        e = self.assertRaises(sqlite3.OperationalError, scan.scanMailbox, conn, inbox._id, path)
        self.assertTrue(isStorageFull(e))

    def test_smallFilesLeaveNothingBehind(self):
        """A metadata or UIDVALIDITY file that cannot be written leaves no temporary file."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        folder = inbox._path()
        before = sorted(os.listdir(folder)), sorted(os.listdir(store.path))

        def full(fd):
            raise diskFull()

        self.patch(os, "fsync", full)
        self.assertRaises(OSError, metadata.writeFile, os.path.join(folder, metadata.METADATA_FILE), {}, {}, "M1")
        with index.transaction(store._conn):
            self.assertRaises(OSError, index.newUidValidity, store._conn)
        self.assertEqual((sorted(os.listdir(folder)), sorted(os.listdir(store.path))), before)


class BackgroundScanTests(unittest.TestCase):
    def test_scanFailureLogged(self):
        """A background scan meeting a full disk is one log line, no traceback; another error keeps its traceback."""
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        changes.syncFailed(Failure(sqliteFull()), "INBOX")
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual([e for e in events if e.get("log_failure") is not None], [])
        self.assertEqual(len(events), 1)
        changes.syncFailed(Failure(ValueError("boom")), "INBOX")
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)


class ReserveTests(StoreTestMixin, unittest.TestCase):
    """
    The reserve beside the index that lets flagging and expunging work on
    a full disk.
    """

    def reserve(self, store):
        path = store.indexPath + index.RESERVE_SUFFIX
        return os.path.getsize(path) if os.path.exists(path) else None

    def test_keptWhenOpened(self):
        """A store, when opened, keeps RESERVE_SIZE octets beside its index (and takes back one lost)."""
        store = self.makeStore()
        self.assertEqual(self.reserve(store), index.RESERVE_SIZE)
        os.unlink(store.indexPath + index.RESERVE_SUFFIX)
        again = self.makeStore(store.path)
        self.assertEqual(self.reserve(again), index.RESERVE_SIZE)

    def test_givenUpOnFullDisk(self):
        """A flag change meeting SQLITE_FULL gives up the reserve, runs again, and takes the reserve back."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        uid = inbox.appendMessage(b"Subject: a\r\n\r\nx\r\n")
        real, seen = inbox._setFlags, []

        def failingOnce(*args):
            seen.append(self.reserve(store))
            if len(seen) == 1:
                raise sqliteFull()
            return real(*args)

        self.patch(inbox, "_setFlags", failingOnce)
        changed, failed = inbox.setFlags([uid], ["\\Deleted"], "+")
        self.assertEqual(([info.uid for info in changed], failed), ([uid], []))
        self.assertEqual(seen, [index.RESERVE_SIZE, None])
        self.assertEqual(self.reserve(store), index.RESERVE_SIZE)
        self.assertEqual(inbox.expunge(), [uid])

    def test_otherErrorsNotRetried(self):
        """An error other than a full disk is not retried and leaves the reserve."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        calls = []

        def locked(*args):
            calls.append(args)
            raise sqlite3.OperationalError("database is locked")

        self.patch(inbox, "_expunge", locked)
        self.assertRaises(sqlite3.OperationalError, inbox.expunge)
        self.assertEqual(len(calls), 1)
        self.assertEqual(self.reserve(store), index.RESERVE_SIZE)


class POP3InjectedTests(SessionMixin, unittest.TestCase):
    cleartextLogin = True
    overrides = {}

    def setUp(self):
        SessionMixin.setUp(self)
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    @defer.inlineCallbacks
    def test_retrMeetsFullDisk(self):
        """A POP3 command failing with ENOSPC gets -ERR [SYS/TEMP] and a warning, no traceback; the session goes on."""
        yield self.addMessages()

        def full(uid):
            raise diskFull()

        protocol = yield self.login()
        self.patch(self.mailbox, "openMessage", full)
        out = yield self.send(protocol, b"RETR 1")
        self.assertTrue(out.startswith(b"-ERR [SYS/TEMP]"), out)
        out = yield self.send(protocol, b"NOOP")
        self.assertTrue(out.startswith(b"+OK"), out)
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual([e for e in self.events if e.get("log_failure") is not None], [])
        self.assertEqual(len([e for e in self.events if "disk is full" in e.get("log_format", "")]), 1)


def fillUp(path):
    """
    Fill the file system holding C{path} with one file, C{path}/filler,
    until it is full.
    """
    chunk = b"\0" * 65536
    with open(os.path.join(path, "filler"), "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError:
            pass
    with open(os.path.join(path, "filler2"), "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0")
        except OSError:
            pass


class RealDiskFullTests(unittest.TestCase):
    """
    On a small tmpfs the test mounts (root only), filled up after some
    mail arrived.
    """

    def setUp(self):
        self.mount = smallFileSystem(self, "4m")
        self.dataRoot = os.path.join(self.mount, "data")
        makeDataRoot(self.dataRoot)
        self.context = makeContext(makeTestConfig(self.dataRoot), reactor=reactor, clock=reactor)
        self.logged = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)
        self.factory = makeFactory(self.context)
        port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port
        self.addCleanup(self._dropSessions)

    def _dropSessions(self):
        for session in list(self.factory.sessions):
            if session.transport is not None:
                session.transport.abortConnection()

    def assertNoTraceback(self):
        failures = [event for event in self.logged if event.get("log_failure") is not None]
        self.assertEqual(failures, [], [str(event.get("log_failure")) for event in failures][:1])

    def fillAfterMail(self, imap):
        """
        Log C{imap} in, create C{Other}, append five messages, then fill
        the disk.  The session stays logged in: the account stays open, as
        in a server that runs for long, and its index keeps its log.
        """
        imap.login("demo", PASSWORD)
        imap.create("Other")
        for i in range(5):
            self.assertEqual(imap.append("INBOX", None, None, MESSAGE % (i,))[0], "OK")
        fillUp(self.mount)

    def test_imapOnFullDisk(self):
        """On a full disk APPEND and CREATE get NO [UNAVAILABLE], SELECT, EXAMINE and FETCH (BODY.PEEK, and BODY[] setting \\Seen) work, no traceback is logged."""
        def client():
            held = imaplib.IMAP4("127.0.0.1", self.port)
            self.fillAfterMail(held)
            imap = imaplib.IMAP4("127.0.0.1", self.port)
            imap.login("demo", PASSWORD)
            typ, data = imap.append("INBOX", None, None, MESSAGE % (9,))
            self.assertEqual((typ, data), ("NO", [b"[UNAVAILABLE] The server's disk is full, try again later"]))
            typ, data = imap.create("New")
            self.assertEqual(typ, "NO")
            self.assertIn(b"[UNAVAILABLE]", data[0])
            self.assertEqual(imap.select("Other", readonly=True), ("OK", [b"0"]))
            self.assertEqual(imap.select("INBOX"), ("OK", [b"5"]))
            typ, data = imap.fetch("1:*", "(FLAGS BODY.PEEK[])")
            self.assertEqual(typ, "OK")
            self.assertEqual(data[0][1], MESSAGE % (0,))
            self.assertEqual(len([item for item in data if isinstance(item, tuple)]), 5)
            typ, data = imap.fetch("2", "(BODY[] FLAGS)")
            self.assertEqual(typ, "OK")
            self.assertEqual(data[0][1], MESSAGE % (1,))
            self.assertIn(b"\\Seen", b"".join(item if isinstance(item, bytes) else item[0] for item in data))
            # COPY is all or nothing, and a refusal is NO [UNAVAILABLE].
            copied, data = imap.copy("1:2", "Other")
            self.assertIn((copied, data[0][:13]), [("OK", data[0][:13]), ("NO", b"[UNAVAILABLE]")])
            typ, data = imap.status("Other", "(MESSAGES)")
            self.assertIn(b"(MESSAGES %d)" % (2 if copied == "OK" else 0,), data[0])
            other = os.path.join(self.dataRoot, "domains", "example.test", "accounts", "demo", "mail", "Other")
            self.assertEqual(os.listdir(os.path.join(other, "tmp")), [])
            imap.logout()
            os.unlink(os.path.join(self.mount, "filler"))
            imap = imaplib.IMAP4("127.0.0.1", self.port)
            imap.login("demo", PASSWORD)
            self.assertEqual(imap.select("INBOX"), ("OK", [b"5"]))
            self.assertEqual(imap.append("INBOX", None, None, MESSAGE % (10,))[0], "OK")
            self.assertEqual(imap.create("New")[0], "OK")
            imap.logout()
            held.logout()
        return deferToThread(client).addCallback(lambda _: self.assertNoTraceback())

    def test_imapMakeRoomOnFullDisk(self):
        """On a full disk STORE \\Deleted and EXPUNGE work, so a user can make room."""
        def client():
            held = imaplib.IMAP4("127.0.0.1", self.port)
            self.fillAfterMail(held)
            imap = imaplib.IMAP4("127.0.0.1", self.port)
            imap.login("demo", PASSWORD)
            self.assertEqual(imap.select("INBOX"), ("OK", [b"5"]))
            typ, data = imap.store("1:3", "+FLAGS", "(\\Deleted)")
            self.assertEqual(typ, "OK", data)
            typ, data = imap.expunge()
            self.assertEqual(typ, "OK")
            self.assertEqual(len(data), 3)
            imap.logout()
            imap = imaplib.IMAP4("127.0.0.1", self.port)
            imap.login("demo", PASSWORD)
            self.assertEqual(imap.select("INBOX"), ("OK", [b"2"]))
            typ, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            self.assertEqual([item[1] for item in data if isinstance(item, tuple)],
                             [b"Subject: 3\r\n\r\n", b"Subject: 4\r\n\r\n"])
            imap.logout()
            held.logout()
        return deferToThread(client).addCallback(lambda _: self.assertNoTraceback())

    def test_pop3OnFullDisk(self):
        """On a full disk POP3 logs in, lists, retrieves, and deletes at QUIT."""
        pop3Factory = makePOP3Factory(self.context)
        port = reactor.listenTCP(0, pop3Factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)

        def client():
            held = imaplib.IMAP4("127.0.0.1", self.port)
            self.fillAfterMail(held)
            pop = poplib.POP3("127.0.0.1", port.getHost().port)
            pop.user("demo")
            pop.pass_(PASSWORD)
            self.assertEqual(pop.stat()[0], 5)
            self.assertEqual(b"\r\n".join(pop.retr(1)[1]) + b"\r\n", MESSAGE % (0,))
            pop.dele(1)
            self.assertTrue(pop.quit().startswith(b"+OK"))
            pop = poplib.POP3("127.0.0.1", port.getHost().port)
            pop.user("demo")
            pop.pass_(PASSWORD)
            self.assertEqual(pop.stat()[0], 4)
            pop.quit()
            held.logout()
        return deferToThread(client).addCallback(lambda _: self.assertNoTraceback())
