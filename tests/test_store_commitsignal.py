"""
Tests for the file written after every commit to an index
(L{gateway.store.index.signalCommit}), by which watchers in other processes
learn of the commit once it is visible.
"""

import os
import sqlite3
import sys

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.trial import unittest

from gateway.store import index, maildir
from gateway.store.watch import ChangeWatcher


class CommitSignalTests(unittest.TestCase):
    def setUp(self):
        self.root = os.path.abspath(self.mktemp())
        os.makedirs(self.root)
        self.path = os.path.join(self.root, maildir.INDEX_NAME)
        self.conn = index.connect(self.path)
        self.addCleanup(self.conn.close)
        self.signal = self.path + index.COMMIT_SIGNAL_SUFFIX
        os.remove(self.signal)  # written by the migrations' commit

    def test_afterTheCommitIsVisible(self):
        """
        When the signal is written, another connection already sees what
        the transaction wrote.
        """
        seen = []
        other = sqlite3.connect(self.path, isolation_level=None)
        self.addCleanup(other.close)
        real = index.signalCommit

        def signalCommit(conn):
            seen.append(other.execute("SELECT value FROM meta WHERE key = 'probe'").fetchone())
            real(conn)
        self.patch(index, "signalCommit", signalCommit)
        with index.transaction(self.conn):
            self.conn.execute("INSERT INTO meta (key, value) VALUES ('probe', 'written')")
        self.assertEqual(seen, [("written",)])
        with open(self.signal, "rb") as f:
            self.assertEqual(f.read(), b"c")

    def test_notAfterRollback(self):
        """
        A transaction that did not commit writes no signal.
        """
        with self.assertRaises(RuntimeError):
            with index.transaction(self.conn):
                self.conn.execute("INSERT INTO meta (key, value) VALUES ('probe', 'no')")
                raise RuntimeError("undone")
        self.assertFalse(os.path.exists(self.signal))

    def test_notAfterNothingChanged(self):
        """
        A transaction that changed no row writes no signal: there is
        nothing for the watchers to read.
        """
        with index.transaction(self.conn):
            self.conn.execute("UPDATE meta SET value = 'none' WHERE key = 'no such key'")
        self.assertFalse(os.path.exists(self.signal))
        with index.transaction(self.conn):
            self.conn.execute("INSERT INTO meta (key, value) VALUES ('probe', 'one')")
        self.assertTrue(os.path.exists(self.signal))

    def test_readOnlyFolder(self):
        """
        A signal that cannot be written is left out; the commit stands.
        """
        os.makedirs(self.signal)  # a folder: it cannot be opened for writing
        with index.transaction(self.conn):
            self.conn.execute("INSERT INTO meta (key, value) VALUES ('probe', 'kept')")
        self.assertEqual(self.conn.execute("SELECT value FROM meta WHERE key = 'probe'").fetchone(), ("kept",))

    def test_wakesWatchers(self):
        """
        The signal alone (no log written) wakes a watcher of the index's
        folder.
        """
        if not sys.platform.startswith("linux"):
            raise unittest.SkipTest("inotify is Linux only")
        woken = Deferred()
        watcher = ChangeWatcher(reactor, self.root, lambda: woken.called or woken.callback(None))
        watcher.start()
        self.addCleanup(watcher.stop)
        self.assertEqual(watcher.mode, "inotify")
        index.signalCommit(self.conn)
        woken.addTimeout(8, reactor)
        return woken

    def test_logWritesDoNotWake(self):
        """
        Writes that are not a commit's signal (the write-ahead log's pages,
        the Recent claims beside the index) do not wake a watcher: only the
        signal after the commit does, once.
        """
        if not sys.platform.startswith("linux"):
            raise unittest.SkipTest("inotify is Linux only")
        wakes = []
        watcher = ChangeWatcher(reactor, self.root, lambda: wakes.append(None))
        watcher.start()
        self.addCleanup(watcher.stop)
        self.assertEqual(watcher.mode, "inotify")
        # Opened before the watch: only modifications of the files follow.
        claims = open(self.path + "-recent", "ab")
        self.addCleanup(claims.close)
        wal = open(self.path + "-wal", "ab")
        self.addCleanup(wal.close)
        for _ in range(3):
            for f in (claims, wal):
                f.write(b"page")
                f.flush()
        d = deferLater(reactor, 0.3, lambda: None)

        def check(_):
            self.assertEqual(wakes, [])
            index.signalCommit(self.conn)
            return deferLater(reactor, 0.3, lambda: None)

        d.addCallback(check)
        d.addCallback(lambda _: self.assertEqual(wakes, [None]))
        return d
