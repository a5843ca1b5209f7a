# -*- test-case-name: tests.test_durable -*-
"""
IMAP writes through the store's index writer (issue 14 item 2): sessions
over L{StringTransport} whose mail stores run on the real reactor, so their
writes go to the writer thread.  A command that changes messages is answered
only once its change is committed, the reactor serves other sessions while
a commit waits, and concurrent sessions' writes share commits.
"""

import os
import sqlite3

from twisted.internet import reactor, task
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from gateway.imap.server import makeFactory
from gateway.store import index, journal
from gateway.store.mail import MailStore
from tests.support import PASSWORD, makeTestContext
from tests.test_store_writer import holdWriter

MESSAGE = b"From: a@example.test\r\nSubject: durable\r\n\r\nbody\r\n"


class Session:
    """
    One IMAP session on the test's factory.
    """

    #: Logs in as demo when made.
    login = True

    def __init__(self, test):
        self.transport = StringTransport()
        self.protocol = test.factory.buildProtocol(None)
        self.protocol.makeConnection(self.transport)
        test.addCleanup(self.close)
        self.read()
        if self.login:
            self.send(b'L LOGIN demo "%s"' % (PASSWORD.encode(),))

    def close(self):
        if not self.transport.disconnected:
            self.transport.loseConnection()
            self.protocol.connectionLost(None)

    def send(self, data):
        self.protocol.dataReceived(data + b"\r\n")
        return self.read()

    def read(self):
        data = self.transport.value()
        self.transport.clear()
        return data


class DurableTestMixin:
    timeout = 60
    #: The reactor the context's realm opens stores with (a Clock: at once,
    #: in the calling thread; the real one: in its thread pool).
    contextReactor = None

    def setUp(self):
        self.context = makeTestContext(self, reactor=self.contextReactor or Clock())
        self.stores = []

        def makeStore(path, quota):
            store = MailStore(path, quota=quota, reactor=reactor, useInotify=False)
            self.stores.append(store)
            return store
        self.context.realm._mailStoreFactory = makeStore
        self.factory = makeFactory(self.context)
        self.addCleanup(self.closeStores)

    def closeStores(self):
        for store in self.stores:
            store.close()

    @inlineCallbacks
    def selected(self):
        """
        A new session with INBOX selected (SELECT may look at the folders
        in the thread pool).
        """
        session = Session(self)
        session.protocol.dataReceived(b"s SELECT INBOX\r\n")
        yield self.waitFor(session, b"s OK")
        return session

    def appendSome(self, count):
        """
        Put C{count} messages into INBOX (through a session) and wait.
        """
        session = Session(self)
        for n in range(count):
            session.protocol.dataReceived(b"ap%d APPEND INBOX {%d+}\r\n%s\r\n" % (n, len(MESSAGE), MESSAGE))
        return self.waitFor(session, b"ap%d OK" % (count - 1,))

    @property
    def store(self):
        return self.stores[0]

    def blockWriter(self, store=None):
        """
        Hold the index writer of C{store} (demo's by default) in a write
        until the returned C{threading.Event} is set: what is submitted
        meanwhile waits.  The held write's Deferred is C{self.blocked}.
        """
        release, self.blocked = holdWriter(self, self.store if store is None else store)
        return release

    @inlineCallbacks
    def waitFor(self, session, text, into=None):
        """
        Let the reactor run until C{session} was sent C{text}.

        @return: a Deferred firing with what it was sent meanwhile.
        """
        seen = b"" if into is None else into
        while text not in seen:
            yield task.deferLater(reactor, 0.005, lambda: None)
            seen += session.read()
        return seen

    def committed(self, sql, params=()):
        """
        What C{sql} reads in the index as committed (a connection of its own).
        """
        conn = sqlite3.connect(self.store.indexPath)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


class AnsweredWhenDurableTests(DurableTestMixin, unittest.TestCase):
    """
    The tagged OK (and the responses reporting the change) only once the
    write is committed; other sessions are served meanwhile.
    """

    @inlineCallbacks
    def check(self, command, tag, before=None):
        """
        Send C{command} while the writer is held: nothing of it is answered,
        another session's NOOP is; once released it is answered.

        @param before: a command to send (and wait for) first.
        @return: a Deferred firing with the answer.
        """
        yield self.appendSome(3)
        session = yield self.selected()
        other = yield self.selected()
        if before is not None:
            session.protocol.dataReceived(before + b"\r\n")
            yield self.waitFor(session, b"b OK")
        release = self.blockWriter()
        self.assertEqual(session.send(command), b"")
        self.assertIn(b"n OK", other.send(b"n FETCH 1:* (FLAGS)"))
        self.assertEqual(session.read(), b"")
        release.set()
        yield self.blocked
        out = yield self.waitFor(session, tag + b" OK")
        return out

    @inlineCallbacks
    def test_store(self):
        """STORE's FETCH response and tagged OK come once the flag change is committed."""
        out = yield self.check(b"a STORE 2 +FLAGS (\\Flagged)", b"a")
        self.assertEqual(out, b"* 2 FETCH (FLAGS (\\Flagged \\Recent))\r\na OK STORE completed\r\n")
        flags = self.committed("SELECT flags FROM messages WHERE uid = 2")
        self.assertIn("\\Flagged", index.decodeFlags(flags[0][0]))

    @inlineCallbacks
    def test_expunge(self):
        """EXPUNGE's EXPUNGE response and tagged OK come once the removal is committed."""
        out = yield self.check(b"a EXPUNGE", b"a", before=b"b STORE 1,3 +FLAGS.SILENT (\\Deleted)")
        self.assertEqual(out, b"* 3 EXPUNGE\r\n* 1 EXPUNGE\r\n* 1 RECENT\r\na OK EXPUNGE completed\r\n")
        self.assertEqual(self.committed("SELECT uid FROM messages"), [(2,)])

    @inlineCallbacks
    def test_copy(self):
        """COPY's tagged OK with COPYUID comes once the copies are committed, and their files are in place."""
        out = yield self.check(b"a COPY 1:2 Drafts", b"a")
        self.assertRegex(out, rb"a OK \[COPYUID \d+ 1:2 1:2\] COPY completed")
        rows = self.committed("SELECT m.subdir, m.filename FROM messages m JOIN mailboxes b ON b.id = m.mailbox"
                              " WHERE b.name = 'Drafts'")
        self.assertEqual(len(rows), 2)
        drafts = os.path.join(self.store.path, "Drafts")
        for subdir, filename in rows:
            self.assertTrue(os.path.exists(os.path.join(drafts, subdir, filename)))
        self.assertEqual(os.listdir(os.path.join(drafts, "tmp")), [])

    @inlineCallbacks
    def test_move(self):
        """MOVE's responses and tagged OK come once the move is committed; no journal is left."""
        out = yield self.check(b"a MOVE 1 Drafts", b"a")
        self.assertRegex(out, rb"^\* OK \[COPYUID \d+ 1 1\] Moved\r\n\* 1 EXPUNGE\r\n")
        self.assertEqual(self.committed("SELECT uid FROM messages m JOIN mailboxes b ON b.id = m.mailbox"
                                        " WHERE b.name = 'INBOX' ORDER BY uid"), [(2,), (3,)])
        self.assertEqual(os.listdir(os.path.join(self.store.path, journal.JOURNAL_FOLDER)), [])

    @inlineCallbacks
    def test_append(self):
        """APPEND's tagged OK comes once the message is committed."""
        yield self.appendSome(1)
        session = Session(self)
        release = self.blockWriter()
        session.protocol.dataReceived(b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(MESSAGE), MESSAGE))
        # The file is written in the thread pool meanwhile; the index row
        # waits for the writer.
        for _ in range(20):
            yield task.deferLater(reactor, 0.005, lambda: None)
        self.assertEqual(session.read(), b"")
        self.assertEqual(self.committed("SELECT COUNT(*) FROM messages"), [(1,)])
        release.set()
        out = yield self.waitFor(session, b"a OK")
        self.assertRegex(out, rb"a OK \[APPENDUID \d+ 2\] APPEND completed")
        self.assertEqual(self.committed("SELECT COUNT(*) FROM messages"), [(2,)])


class GroupCommitTests(DurableTestMixin, unittest.TestCase):
    """
    Concurrent sessions' writes share commits.
    """

    @inlineCallbacks
    def test_concurrentStoresShareCommits(self):
        """Twenty sessions' STOREs submitted while a commit is under way are committed together."""
        yield self.appendSome(20)
        sessions = []
        for _ in range(20):
            sessions.append((yield self.selected()))
        before = (self.store._writer.groups, self.store._writer.written)
        release = self.blockWriter()
        for n, session in enumerate(sessions, 1):
            self.assertEqual(session.send(b"a%d STORE %d +FLAGS ($K%d)" % (n, n, n)), b"")
        release.set()
        for n, session in enumerate(sessions, 1):
            out = yield self.waitFor(session, b"a%d OK" % (n,))
            self.assertRegex(out, rb"\* %d FETCH \(FLAGS \((\\Recent )?\$K%d\)\)" % (n, n))
        groups = self.store._writer.groups - before[0]
        written = self.store._writer.written - before[1]
        self.assertEqual(written, 21)
        self.assertLess(groups, written)
        self.assertEqual(groups, 2)
        for n in range(1, 21):
            flags = self.committed("SELECT flags FROM messages WHERE uid = ?", (n,))
            self.assertIn("$K%d" % (n,), index.decodeFlags(flags[0][0]))


class LMTPDurableTests(unittest.TestCase):
    """
    LMTP's per-recipient 250 comes once that recipient's copy is committed
    by the store's index writer.
    """

    timeout = 60

    @inlineCallbacks
    def test_replyOnceCommitted(self):
        """While the writer is held, a delivered copy gets no 250 and has no index row; once released it has both."""
        from gateway.lmtp.server import LMTPServer

        context = makeTestContext(self, reactor=reactor)
        store = context.realm.accountFor("demo@example.test").mailStore
        self.addCleanup(store.close)
        proto = LMTPServer(context, clock=Clock(), commitLater=True)
        transport = StringTransport()
        proto.makeConnection(transport)
        self.addCleanup(lambda: proto.connectionLost(None) if proto.transport else None)
        for line in (b"LHLO mta.example.org", b"MAIL FROM:<a@example.org>", b"RCPT TO:<demo@example.test>",
                     b"DATA"):
            proto.dataReceived(line + b"\r\n")
        release, blocked = holdWriter(self, store)
        transport.clear()
        proto.dataReceived(b"Subject: x\r\n\r\ny\r\n.\r\n")
        # The spool and the copy are written in the thread pool; the copy's
        # index row waits for the writer.
        while not any(os.listdir(os.path.join(store.path, "INBOX", sub)) for sub in ("tmp", "new")):
            yield task.deferLater(reactor, 0.005, lambda: None)
        for _ in range(20):
            yield task.deferLater(reactor, 0.005, lambda: None)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(store.getMailbox("INBOX").uids(), [])
        release.set()
        yield blocked
        while b"250" not in transport.value():
            yield task.deferLater(reactor, 0.005, lambda: None)
        self.assertTrue(transport.value().startswith(b"250 2.0.0 <demo@example.test>"), transport.value())
        conn = sqlite3.connect(store.indexPath)
        try:
            self.assertEqual(conn.execute("SELECT uid FROM messages").fetchall(), [(1,)])
        finally:
            conn.close()


class FileStoreDurableTests(unittest.TestCase):
    """
    An FTP upload (C{FileStore.writeFile}, whose end FTP's 226 waits for)
    returns only once the file's data and its name are on disk: the file
    fsync'd, then its folder after the rename.
    """

    def setUp(self):
        from gateway.store import files

        self.files = files
        self.store = files.FileStore(self.mktemp())
        self.synced = []
        original = files.os.fsync

        def fsync(fd):
            path = os.readlink("/proc/self/fd/%d" % (fd,))
            self.synced.append((path, os.path.exists(os.path.join(self.store.root.path, "f.txt"))))
            original(fd)
        self.patch(files, "_fsync", fsync)

    def test_replace(self):
        """STOR: the temporary file is fsync'd before the rename, the folder after it."""
        self.store.writeFile("f.txt", _Reader([b"hello", b" world"]))
        root = self.store.root.path
        self.assertEqual(len(self.synced), 2, self.synced)
        (first, existedFirst), (second, existedSecond) = self.synced
        self.assertEqual((os.path.dirname(first), existedFirst), (root, False))
        self.assertEqual((second, existedSecond), (root, True))
        with open(os.path.join(root, "f.txt"), "rb") as f:
            self.assertEqual(f.read(), b"hello world")

    def test_inPlace(self):
        """APPE: the file is fsync'd before writeFile returns."""
        self.store.writeFile("f.txt", b"hello")
        self.synced[:] = []
        self.store.writeFile("f.txt", b" world", append=True)
        self.assertIn((os.path.join(self.store.root.path, "f.txt"), True), self.synced)


class _Reader:
    """
    A binary file object giving C{pieces} one per read.
    """

    def __init__(self, pieces):
        self.pieces = list(pieces)

    def read(self, size=-1):
        return self.pieces.pop(0) if self.pieces else b""
