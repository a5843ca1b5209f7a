# -*- test-case-name: tests.test_store_writer -*-
"""
Tests for L{gateway.store.writer}: index writes in a thread, grouped into
one transaction (one fsync) per group, and L{Mailbox.appendMessageLater}
built on it.
"""

import fcntl
import io
import os
import signal
import sqlite3
import subprocess
import sys
import threading

from twisted.internet import reactor, task
from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.trial import unittest

from gateway.errors import NoSuchMailbox, QuotaExceeded
from gateway.store import index, journal, mailbox, maildir, scan, writer
from tests.test_store_mail import CRLF_MESSAGE, FakeQuota, StoreTestMixin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def holdWriter(test, store, seconds=30):
    """
    Hold C{store}'s index writer in a write until the returned event is set
    (at the test's cleanup at the latest): what is submitted meanwhile
    waits.

    @return: C{(release, blocked)}: the C{threading.Event} to set, and the
        held write's L{Deferred}.
    """
    started, release = threading.Event(), threading.Event()
    test.addCleanup(release.set)

    def blocking(conn, group):
        started.set()
        release.wait(seconds)
    blocked = store._write(blocking)
    started.wait(seconds)
    return release, blocked


def failingGroup(test, store, submit):
    """
    Run C{submit()} (a write of C{store}) in a group whose commit fails
    after the write ran: another write of the group gives the group a
    summary that raises (L{writer.WriteGroup.beforeCommit}).

    @return: a Deferred firing once the group ended.
    """
    release, blocked = holdWriter(test, store, 10)
    d = submit()
    spoiler = store._write(lambda conn, group: group.beforeCommit(
        "spoiler", _raise, FileNotFoundError(2, "the group cannot commit")))
    release.set()
    test.assertFailure(spoiler, FileNotFoundError)
    test.assertFailure(d, FileNotFoundError)
    return gatherResults([blocked, spoiler, d])


def _raise(exception):
    raise exception


class IndexWriterTests(StoreTestMixin, unittest.TestCase):
    """
    The writer thread of one index.
    """

    timeout = 20

    def setUp(self):
        self.store = self.makeStore(reactor=reactor)
        self.writer = writer.IndexWriter(self.store.indexPath, reactor)
        self.addCleanup(self.writer.close)

    def setUsage(self, value):
        def write(conn, group):
            conn.execute("UPDATE meta SET value = ? WHERE key = 'usage'", (value,))
            return value
        return write

    @inlineCallbacks
    def test_writesSubmittedMeanwhileShareOneCommit(self):
        """Writes submitted while a group commits go together in the next group: one commit for all."""
        started, release = threading.Event(), threading.Event()

        def blocking(conn, group):
            started.set()
            release.wait(10)
            return "first"
        first = self.writer.submit(blocking)
        started.wait(10)
        rest = [self.writer.submit(self.setUsage(n)) for n in range(1, 21)]
        release.set()
        results = yield gatherResults([first] + rest)
        self.assertEqual(results, ["first"] + list(range(1, 21)))
        self.assertEqual((self.writer.groups, self.writer.written), (2, 21))
        self.assertEqual(self.store.usage(), 20)

    @inlineCallbacks
    def test_groupHoldsTheWritersLock(self):
        """A group is written holding the lock every process's writer takes in turn, and lets it go after."""
        lockPath = self.store.indexPath + index.WRITERS_LOCK_SUFFIX

        def tryLock():
            with open(lockPath, "ab") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return "held"
                fcntl.flock(f, fcntl.LOCK_UN)
                return "free"
        self.assertEqual((yield self.writer.submit(lambda conn, group: tryLock())), "held")
        self.assertEqual(tryLock(), "free")

    @inlineCallbacks
    def test_waitingForTheLockJoinsTheGroup(self):
        """Writes submitted while the writer waits for another process's turn are written in the group after it."""
        lockPath = self.store.indexPath + index.WRITERS_LOCK_SUFFIX
        other = open(lockPath, "ab")
        self.addCleanup(other.close)
        fcntl.flock(other, fcntl.LOCK_EX)
        first = self.writer.submit(self.setUsage(1))
        rest = [self.writer.submit(self.setUsage(n)) for n in range(2, 11)]
        fcntl.flock(other, fcntl.LOCK_UN)
        self.assertEqual((yield gatherResults([first] + rest)), list(range(1, 11)))
        self.assertEqual(self.writer.groups, 1)
        self.assertEqual(self.store.usage(), 10)

    @inlineCallbacks
    def test_beforeRunsOutsideTheLock(self):
        """
        A write's C{before} runs before the writer takes the writers' lock:
        while another process holds it, the befores of the writes queued
        run (at the same time), and the writes wait.  One that fails is
        left to its write.
        """
        lockPath = self.store.indexPath + index.WRITERS_LOCK_SUFFIX
        other = open(lockPath, "ab")
        self.addCleanup(other.close)
        fcntl.flock(other, fcntl.LOCK_EX)
        ran, both = [], threading.Barrier(2, timeout=10)

        def before(n):
            def call():
                both.wait()
                ran.append(n)
                if n == 2:
                    raise OSError("no")
            return call
        with self.writer._wake:
            # Both queued before the writer looks at the queue.
            writes = [self.writer.submit(self.setUsage(n), before=before(n)) for n in (1, 2)]
        for _ in range(200):
            if len(ran) == 2:
                break
            yield task.deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(sorted(ran), [1, 2])
        self.assertFalse(any(d.called for d in writes))
        fcntl.flock(other, fcntl.LOCK_UN)
        self.assertEqual((yield gatherResults(writes)), [1, 2])

    @inlineCallbacks
    def test_failingWriteUndoesOnlyItself(self):
        """A write that raises fails its own Deferred and undoes its own changes; the group commits."""
        release = threading.Event()
        self.writer.submit(lambda conn, group: release.wait(10))

        def failing(conn, group):
            conn.execute("UPDATE meta SET value = 999 WHERE key = 'usage'")
            raise ValueError("no")
        bad = self.writer.submit(failing)
        good = self.writer.submit(self.setUsage(7))
        release.set()
        yield self.assertFailure(bad, ValueError)
        self.assertEqual((yield good), 7)
        self.assertEqual(self.store.usage(), 7)

    @inlineCallbacks
    def test_transactionInAWrite(self):
        """
        A write's first index.transaction uses the writer's savepoint (no
        statement of its own): when it raises and the write goes on (a
        retry, as index.roomPermitting makes), only the transaction is
        undone; one begun after the write changed something is a savepoint
        of its own, undone alone.
        """
        statements = []

        def write(conn, group):
            conn.set_trace_callback(statements.append)
            try:
                for attempt in (1, 2):
                    try:
                        with index.transaction(conn):
                            conn.execute("UPDATE meta SET value = value + 10 WHERE key = 'usage'")
                            if attempt == 1:
                                raise ValueError("undone")
                        break
                    except ValueError:
                        pass
                with self.assertRaises(ValueError):
                    with index.transaction(conn):
                        conn.execute("UPDATE meta SET value = value + 100 WHERE key = 'usage'")
                        raise ValueError("undone alone")
                conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'usage'")
            finally:
                conn.set_trace_callback(None)
            return conn.execute("SELECT value FROM meta WHERE key = 'usage'").fetchone()[0]
        self.assertEqual((yield self.writer.submit(write)), 11)
        self.assertEqual(self.store.usage(), 11)
        self.assertEqual([sql for sql in statements if sql.startswith(("SAVEPOINT", "ROLLBACK", "RELEASE"))],
                         ["ROLLBACK TO write", "SAVEPOINT nested", "ROLLBACK TO nested", "RELEASE nested"])

    @inlineCallbacks
    def test_lockElsewhereDoesNotBlockReactor(self):
        """While another process holds the index's write lock, the reactor runs on and the write waits."""
        other = sqlite3.connect(self.store.indexPath, isolation_level=None)
        self.addCleanup(other.close)
        other.execute("BEGIN IMMEDIATE")
        d = self.writer.submit(self.setUsage(5))
        turns = []
        for n in range(5):
            yield task.deferLater(reactor, 0.01, turns.append, n)
        self.assertEqual(turns, list(range(5)))
        self.assertFalse(d.called)
        other.execute("COMMIT")
        self.assertEqual((yield d), 5)


class FollowUpTests(StoreTestMixin, unittest.TestCase):
    """
    What a write asks to run after its group: L{writer.WriteGroup.afterCommit},
    C{ifRolledBack} and C{onReactor}.
    """

    timeout = 20

    def setUp(self):
        self.store = self.makeStore(reactor=reactor)
        self.writer = writer.IndexWriter(self.store.indexPath, reactor)
        self.addCleanup(self.writer.close)
        self.events = []

    def registering(self, name, fail=False):
        def record(what):
            self.events.append((name, what, self.writer.inWriter()))

        def write(conn, group):
            group.afterCommit(record, "committed")
            group.ifRolledBack(record, "rolled back")
            group.onReactor(record, "reactor")
            if fail:
                raise ValueError(name)
            return name
        return write

    @inlineCallbacks
    def test_committed(self):
        """A write's afterCommit actions run in the writer, its onReactor ones on the reactor, before its Deferred fires."""
        d = self.writer.submit(self.registering("a"))
        d.addCallback(lambda result: self.events.append((result, "fired")))
        yield d
        self.assertEqual(self.events, [("a", "committed", True), ("a", "reactor", False), ("a", "fired")])

    @inlineCallbacks
    def test_failedWrite(self):
        """A write that raises has its ifRolledBack actions run, not the others; the next write's run."""
        release = threading.Event()
        self.writer.submit(lambda conn, group: release.wait(10))
        bad = self.writer.submit(self.registering("bad", fail=True))
        good = self.writer.submit(self.registering("good"))
        release.set()
        yield self.assertFailure(bad, ValueError)
        yield good
        self.assertEqual(self.events, [("bad", "rolled back", True), ("good", "committed", True),
                                       ("good", "reactor", False)])

    @inlineCallbacks
    def test_failedGroup(self):
        """When the group cannot commit, every write fails and their ifRolledBack actions run."""
        release = threading.Event()
        blocking = self.writer.submit(lambda conn, group: release.wait(10))
        first = self.writer.submit(self.registering("first"))

        def spoiler(conn, group):
            conn.execute("UPDATE meta SET value = 5 WHERE key = 'usage'")
            group.beforeCommit("spoiler", _raise, OSError(5, "no commit"))
        second = self.writer.submit(spoiler)
        release.set()
        yield self.assertFailure(blocking, OSError)
        yield self.assertFailure(first, OSError)
        yield self.assertFailure(second, OSError)
        self.assertEqual(self.events, [("first", "rolled back", True)])
        self.assertEqual(self.store.usage(), 0)

    @inlineCallbacks
    def test_foldersNotSynced(self):
        """
        When the group committed but its folders cannot be synced, every
        write of the group fails with the error (nobody is told the change
        is durable), while what follows a commit still runs: the change is
        in the index.
        """
        def failingSync(path):
            raise OSError(5, "no fsync")
        self.patch(writer.maildir, "fsyncDirectory", failingSync)
        release = threading.Event()
        blocking = self.writer.submit(lambda conn, group: release.wait(10))
        first = self.writer.submit(self.registering("first"))

        def folder(conn, group):
            group.syncFolder(self.mailPath)
            conn.execute("UPDATE meta SET value = 5 WHERE key = 'usage'")
        second = self.writer.submit(folder)
        release.set()
        yield self.assertFailure(blocking, OSError)
        yield self.assertFailure(first, OSError)
        error = yield self.assertFailure(second, OSError)
        self.assertEqual(error.errno, 5)
        self.assertEqual(self.events, [("first", "committed", True), ("first", "reactor", False)])
        self.assertEqual(self.store.usage(), 5)
        self.flushLoggedErrors(OSError)

    @inlineCallbacks
    def test_foldersSyncedOutsideTheLock(self):
        """
        A group's folders are fsync'd after its commit, with the writers'
        lock let go (another process's writer may write meanwhile), and
        before its writes' Deferreds fire.
        """
        seen = []
        original = writer.maildir.fsyncDirectories

        def fsyncDirectories(paths):
            if paths:
                other = index.connect(self.store.indexPath)
                try:
                    usage = other.execute("SELECT value FROM meta WHERE key = 'usage'").fetchone()[0]
                finally:
                    other.close()
                lock = index.openWritersLock(self.store.indexPath)
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(lock, fcntl.LOCK_UN)
                    free = True
                except BlockingIOError:
                    free = False
                finally:
                    os.close(lock)
                seen.append((sorted(paths), usage, free))
            original(paths)
        self.patch(writer.maildir, "fsyncDirectories", fsyncDirectories)

        def folder(conn, group):
            group.syncFolder(self.mailPath)
            conn.execute("UPDATE meta SET value = 7 WHERE key = 'usage'")
        d = self.writer.submit(folder)
        d.addCallback(lambda _: seen.append("fired"))
        yield d
        self.assertEqual(seen, [([self.mailPath], 7, True), "fired"])

    def test_runNowSyncsAfterCommit(self):
        """
        runNow (a reactor without threads) syncs the folders after the
        commit; if that fails the write raises, and what follows a commit
        has run.
        """
        conn = index.connect(self.store.indexPath)
        self.addCleanup(conn.close)

        def failingSync(paths):
            self.assertFalse(conn.in_transaction)
            raise OSError(5, "no fsync")
        self.patch(writer.maildir, "fsyncDirectories", failingSync)

        def write(conn, group):
            group.syncFolder(self.mailPath)
            group.afterRelease(self.events.append, "released")
            group.onReactor(self.events.append, "reactor")
            conn.execute("UPDATE meta SET value = 3 WHERE key = 'usage'")
        self.assertRaises(OSError, writer.runNow, conn, write)
        self.assertEqual(self.events, ["released", "reactor"])
        self.assertEqual(self.store.usage(), 3)

    @inlineCallbacks
    def test_beforeCommitOncePerKey(self):
        """
        What writes give beforeCommit runs once a key, after the group's
        last write and inside its transaction, even for a write undone.
        """
        release = threading.Event()
        self.writer.submit(lambda conn, group: release.wait(10))

        def summary(conn, key):
            self.events.append((key, conn.in_transaction, conn.execute(
                "SELECT value FROM meta WHERE key = 'usage'").fetchone()[0]))
            conn.execute("UPDATE meta SET value = value + 100 WHERE key = 'usage'")

        def write(key, value, fail=False):
            def run(conn, group):
                group.beforeCommit(key, summary, conn, key)
                conn.execute("UPDATE meta SET value = value + ? WHERE key = 'usage'", (value,))
                self.events.append(value)
                if fail:
                    raise ValueError()
            return run
        writes = [self.writer.submit(write("a", 1)), self.writer.submit(write("b", 2, fail=True)),
                  self.writer.submit(write("a", 4))]
        release.set()
        yield writes[0]
        yield self.assertFailure(writes[1], ValueError)
        yield writes[2]
        self.assertEqual(self.events, [1, 2, 4, ("a", True, 5), ("b", True, 105)])
        self.assertEqual(self.store.usage(), 205)

    @inlineCallbacks
    def test_beforeCommitFails(self):
        """A beforeCommit action that raises fails every write of the group, and nothing is committed."""
        def spoiling(conn, group):
            conn.execute("UPDATE meta SET value = 7 WHERE key = 'usage'")
            group.beforeCommit("x", _raise, OSError("summary"))
        yield self.assertFailure(self.writer.submit(spoiling), OSError)
        self.assertEqual(self.store.usage(), 0)

    def test_beforeCommitRunNow(self):
        """writer.runNow (a reactor without threads) runs the beforeCommit actions too, before its commit."""
        seen = []

        def write(conn, group):
            group.beforeCommit("k", lambda: seen.append(conn.in_transaction))
            group.beforeCommit("k", lambda: seen.append("again"))
            return 3
        self.assertEqual(writer.runNow(self.store._conn, write), 3)
        self.assertEqual(seen, [True])

    def test_nestedTransaction(self):
        """index.transaction inside a transaction is a savepoint: undone alone when it raises."""
        conn = self.store._conn
        with index.transaction(conn):
            conn.execute("UPDATE meta SET value = 3 WHERE key = 'usage'")
            with self.assertRaises(ValueError):
                with index.transaction(conn):
                    conn.execute("UPDATE meta SET value = 9 WHERE key = 'usage'")
                    raise ValueError()
            self.assertTrue(conn.in_transaction)
        self.assertEqual(self.store.usage(), 3)


class AppendLaterTests(StoreTestMixin, unittest.TestCase):
    """
    L{Mailbox.appendMessageLater}.
    """

    timeout = 30

    @inlineCallbacks
    def test_concurrentAppends(self):
        """Many appends at once, all through the store's writer, get distinct UIDs, every file and row."""
        store = self.makeStore(reactor=reactor)
        inbox = store.getMailbox("INBOX")
        uids = yield gatherResults([inbox.appendMessageLater(b"Subject: %d\r\n\r\nx\r\n" % (n,),
                                                             flags=["\\Seen"] if n % 2 else [])
                                    for n in range(30)])
        self.assertEqual(sorted(uids), list(range(1, 31)))
        self.assertEqual(inbox.uids(), list(range(1, 31)))
        self.assertEqual(len(self.allFiles(inbox)), 30)
        self.assertEqual(os.listdir(os.path.join(inbox._path(), "tmp")), [])
        for uid in (uids[0], uids[7]):
            n = uids.index(uid)
            self.assertEqual(self.readAll(inbox.openMessage(uid)), b"Subject: %d\r\n\r\nx\r\n" % (n,))
        self.assertEqual(store._writer.written, 30)

    @inlineCallbacks
    def test_smallWrittenHereNotSynced(self):
        """
        A small append is written into tmp/ by the calling thread, not the
        thread pool, and not fsync'd: its octets go into the index with its
        row (gateway.store.redo); a large one is still written and fsync'd
        in the pool.
        """
        store = self.makeStore(reactor=reactor)
        inbox = store.getMailbox("INBOX")
        pooled, synced = [], []
        realPool = store._deferToThread

        def pool(f, *args):
            pooled.append(len(args[0]))
            return realPool(f, *args)
        self.patch(store, "_deferToThread", pool)
        self.patch(maildir, "fsyncFile", synced.append)
        small = b"Subject: small\r\n\r\nx\r\n"
        large = b"Subject: large\r\n\r\n" + b"y" * mailbox.INLINE_APPEND + b"\r\n"
        uids = yield gatherResults([inbox.appendMessageLater(small), inbox.appendMessageLater(large)])
        self.assertEqual(pooled, [len(large)])
        self.assertEqual(synced, [])
        self.assertEqual(store._conn.execute("SELECT octets FROM redo").fetchall(), [(small,)])
        self.assertEqual([self.readAll(inbox.openMessage(uid)) for uid in uids], [small, large])

    @inlineCallbacks
    def test_quota(self):
        """An append over quota fails and leaves nothing behind."""
        quota = FakeQuota(10)
        store = self.makeStore(reactor=reactor, quota=quota)
        quota.store = store
        inbox = store.getMailbox("INBOX")
        yield self.assertFailure(inbox.appendMessageLater(CRLF_MESSAGE), QuotaExceeded)
        self.assertEqual(inbox.uids(), [])
        self.assertEqual(os.listdir(os.path.join(inbox._path(), "tmp")), [])

    def test_acknowledgedSurvivesKill(self):
        """An append whose Deferred fired is there after SIGKILL of its process, once opened again."""
        self.makeStore().close()
        script = (
            "import os, signal, sys\n"
            "from twisted.internet import reactor\n"
            "from gateway.store.mail import MailStore\n"
            "store = MailStore(sys.argv[1], reactor=reactor)\n"
            "inbox = store.getMailbox('INBOX')\n"
            "def done(uid):\n"
            "    sys.stdout.write('%d\\n' % uid); sys.stdout.flush()\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n"
            "reactor.callWhenRunning(lambda: inbox.appendMessageLater(b'Subject: kept\\r\\n\\r\\n')"
            ".addCallback(done))\n"
            "reactor.run()\n")
        child = subprocess.run([sys.executable, "-c", script, self.mailPath], capture_output=True,
                               env=dict(os.environ, PYTHONPATH=ROOT), cwd=ROOT, timeout=60)
        self.assertEqual(child.returncode, -signal.SIGKILL, child.stderr)
        uid = int(child.stdout)
        inbox = self.makeStore(self.mailPath).getMailbox("INBOX")
        self.assertEqual(inbox.uids(), [uid])
        self.assertEqual(self.readAll(inbox.openMessage(uid)), b"Subject: kept\r\n\r\n")
        scan.scanMailbox(inbox._store._conn, inbox._id, inbox._path())
        self.assertEqual(inbox.uids(), [uid])


class LaterTests(StoreTestMixin, unittest.TestCase):
    """
    The mailbox writes through the writer (C{setFlagsLater}, C{expungeLater},
    C{copyToLater}, C{moveToLater}, C{commitMessageLater}) when the group
    cannot be made durable: nothing of them is left.
    """

    timeout = 30

    @inlineCallbacks
    def setUp(self):
        self.store = self.makeStore(reactor=reactor)
        self.inbox = self.store.getMailbox("INBOX")
        self.drafts = self.store.getMailbox("Drafts")
        for n in range(3):
            yield self.inbox.appendMessageLater(b"Subject: %d\r\n\r\nx\r\n" % (n,))
        self.before = sorted(self.allFiles(self.inbox))

    def failingGroup(self, submit):
        return failingGroup(self, self.store, submit)

    @inlineCallbacks
    def test_copyCommits(self):
        """copyToLater gives new UIDs, files in place, no staged file left."""
        pairs = yield self.inbox.copyToLater([1, 2, 3], self.drafts)
        self.assertEqual(pairs, [(1, 1), (2, 2), (3, 3)])
        self.assertEqual(len(self.allFiles(self.drafts)), 3)
        self.assertEqual(os.listdir(os.path.join(self.drafts._path(), "tmp")), [])

    @inlineCallbacks
    def test_copyGroupFails(self):
        """A COPY whose group does not commit leaves no message, no file in the destination."""
        yield self.failingGroup(lambda: self.inbox.copyToLater([1, 2, 3], self.drafts))
        self.assertEqual(self.drafts.uids(), [])
        for sub in ("new", "cur", "tmp"):
            self.assertEqual(os.listdir(os.path.join(self.drafts._path(), sub)), [])

    @inlineCallbacks
    def test_moveGroupFails(self):
        """A MOVE whose group does not commit leaves every source file and row where it was, and no journal."""
        yield self.failingGroup(lambda: self.inbox.moveToLater([1, 2], self.drafts))
        self.assertEqual(self.inbox.uids(), [1, 2, 3])
        self.assertEqual(sorted(self.allFiles(self.inbox)), self.before)
        self.assertEqual(self.drafts.uids(), [])
        self.assertEqual(os.listdir(os.path.join(self.drafts._path(), "tmp")), [])
        self.assertEqual(os.listdir(os.path.join(self.store.path, journal.JOURNAL_FOLDER)), [])

    @inlineCallbacks
    def test_appendGroupFails(self):
        """An append whose group does not commit leaves no file in new/ or cur/."""
        prepared = self.inbox.prepareMessage(b"Subject: later\r\n\r\nx\r\n")
        yield self.failingGroup(lambda: self.inbox.commitMessageLater(prepared))
        self.assertEqual(self.inbox.uids(), [1, 2, 3])
        self.assertEqual(sorted(self.allFiles(self.inbox)), self.before)


class FolderSyncTests(StoreTestMixin, unittest.TestCase):
    """
    STORE and EXPUNGE through the writer record the files they renamed in
    the index (gateway.store.redo) and make no folder wait for the disk;
    run at once (a reactor without threads), they fsync the folders they
    changed once committed.
    """

    timeout = 30

    @inlineCallbacks
    def setUp(self):
        self.store = self.makeStore(reactor=reactor)
        self.inbox = self.store.getMailbox("INBOX")
        for n in range(2):
            yield self.inbox.appendMessageLater(b"Subject: %d\r\n\r\nx\r\n" % (n,))
        self.synced = []
        original = writer.maildir.fsyncDirectories

        def fsyncDirectories(paths):
            for path in paths:
                self.synced.append((path, self.store._conn.in_transaction))
            original(paths)
        self.patch(writer.maildir, "fsyncDirectories", fsyncDirectories)

    def recorded(self):
        return [base for base, in self.store._conn.execute("SELECT base FROM redo WHERE octets IS NULL")]

    @inlineCallbacks
    def test_store(self):
        """A flag change that renames a file from new/ into cur/ records it and syncs no folder."""
        base = self.store._conn.execute("SELECT base FROM messages WHERE uid = 1").fetchone()[0]
        yield self.inbox.setFlagsLater([1], ["\\Seen"], "+")
        self.assertEqual(self.synced, [])
        self.assertEqual(self.recorded(), [base])

    @inlineCallbacks
    def test_expunge(self):
        """An expunge records the message it moved out and syncs no folder."""
        yield self.inbox.setFlagsLater([2], ["\\Deleted"], "+")
        base = self.store._conn.execute("SELECT base FROM messages WHERE uid = 2").fetchone()[0]
        self.assertEqual((yield self.inbox.expungeLater()), [2])
        self.assertEqual(self.synced, [])
        self.assertEqual(self.recorded(), [base, base])

    @inlineCallbacks
    def test_atOnce(self):
        """
        Run at once (no index writer), a flag change has both folders
        fsync'd after the commit, and records nothing.
        """
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        inbox.appendMessage(b"Subject: 1\r\n\r\nx\r\n")
        self.store = store
        yield inbox.setFlagsLater([1], ["\\Seen"], "+")
        folder = inbox._path()
        self.assertEqual(sorted(self.synced), [(os.path.join(folder, "cur"), False),
                                               (os.path.join(folder, "new"), False)])
        self.assertEqual(store._conn.execute("SELECT COUNT(*) FROM redo").fetchone()[0], 0)

    @inlineCallbacks
    def test_expungeOfNothing(self):
        """An expunge that finds no \\Deleted message (of those given) answers without a group of the writer."""
        yield self.inbox.setFlagsLater([2], ["\\Deleted"], "+")
        groups = self.store._writer.groups
        self.assertEqual((yield self.inbox.expungeLater([1])), [])
        self.assertEqual(self.store._writer.groups, groups)
        self.assertEqual((yield self.inbox.expungeLater([1, 2])), [2])
        self.assertEqual(self.store._writer.groups, groups + 1)
        self.assertEqual((yield self.inbox.expungeLater()), [])
        self.assertEqual(self.store._writer.groups, groups + 1)
        self.assertEqual(self.inbox.uids(), [1])

    @inlineCallbacks
    def test_expungeOfDeletedMailbox(self):
        """An expunge of a mailbox deleted meanwhile fails through its Deferred, as before."""
        drafts = self.store.getMailbox("Drafts")
        self.store.deleteMailbox("Drafts")
        yield self.assertFailure(drafts.expungeLater(), NoSuchMailbox)


class SyncTogetherTests(unittest.TestCase):
    """
    L{maildir.fsyncDirectories}: a group's folders are synced at the same
    time (one journal commit), and all of them before it returns.
    """

    def setUp(self):
        base = self.mktemp()
        self.folders = [os.path.join(base, name) for name in ("a", "b", "c")]
        for path in self.folders:
            os.makedirs(path)

    def test_together(self):
        """Three folders are synced at once: each sync waits until the three have begun."""
        started = threading.Barrier(3, timeout=10)
        synced = []

        def fsyncDirectory(path):
            started.wait()
            synced.append(path)
        self.patch(maildir, "fsyncDirectory", fsyncDirectory)
        maildir.fsyncDirectories(self.folders)
        self.assertEqual(sorted(synced), self.folders)

    def test_oneFails(self):
        """When one folder's sync fails, the others still finish and the error is raised."""
        synced = []

        def fsyncDirectory(path):
            if path == self.folders[1]:
                raise OSError(5, "I/O error")
            synced.append(path)
        self.patch(maildir, "fsyncDirectory", fsyncDirectory)
        error = self.assertRaises(OSError, maildir.fsyncDirectories, self.folders)
        self.assertEqual(error.errno, 5)
        self.assertEqual(sorted(synced), [self.folders[0], self.folders[2]])

    def test_real(self):
        """Real folders (one, several, none) are synced without error; a missing one raises."""
        maildir.fsyncDirectories(self.folders)
        maildir.fsyncDirectories(self.folders[:1])
        maildir.fsyncDirectories([])
        self.assertRaises(FileNotFoundError, maildir.fsyncDirectories, self.folders + [self.folders[0] + "-gone"])


class AppendManyTests(StoreTestMixin, unittest.TestCase):
    """
    L{Mailbox.appendMessagesLater}: several messages in one write (IMAP
    MULTIAPPEND), all or none.
    """

    timeout = 30

    @inlineCallbacks
    def test_oneWrite(self):
        """Three messages are committed by one write of the writer, with consecutive UIDs."""
        store = self.makeStore(reactor=reactor)
        inbox = store.getMailbox("INBOX")
        yield inbox.appendMessageLater(b"Subject: first\r\n\r\nx\r\n")
        written = store._writer.written
        uids = yield inbox.appendMessagesLater([(b"Subject: %d\r\n\r\nx\r\n" % (n,), ["\\Seen"] if n else [], None)
                                                for n in range(3)])
        self.assertEqual(uids, [2, 3, 4])
        self.assertEqual(store._writer.written, written + 1)
        self.assertEqual(self.readAll(inbox.openMessage(3)), b"Subject: 1\r\n\r\nx\r\n")
        self.assertEqual([m.flags for m in inbox.messages([2, 3])], [frozenset(), frozenset(["\\Seen"])])

    @inlineCallbacks
    def test_noneWhenOneFails(self):
        """When the last message goes over the quota at commit time, none of them is stored, no file is left."""
        quota = FakeQuota(100)
        store = self.makeStore(reactor=reactor, quota=quota)
        quota.store = store
        inbox = store.getMailbox("INBOX")
        messages = [(io.BytesIO(b"Subject: %d\r\n\r\n" % (n,) + b"x" * 30), [], None) for n in range(3)]
        yield self.assertFailure(inbox.appendMessagesLater(messages), QuotaExceeded)
        self.assertEqual(inbox.uids(), [])
        self.assertEqual(self.allFiles(inbox), [])
        self.assertEqual(os.listdir(os.path.join(inbox._path(), "tmp")), [])
        self.assertEqual(store.usage(), 0)
