# -*- test-case-name: tests.test_store_writer -*-
"""
Index writes off the reactor thread, grouped: one writer thread per
account index takes every write submitted while the previous group was
committing and runs them in one transaction, so that many sessions' changes
share one fsync (group commit), and a writer of another process holding the
SQLite lock makes the writer thread wait, never the reactor.

Each write is a function of the writer's connection that runs inside the
group's transaction, in a savepoint of its own: if it raises, only its own
changes are undone and only its L{Deferred} fails.  A write's L{Deferred}
fires (on the reactor thread) after the group's C{COMMIT} returned, that is
once the change is durable (the index runs with C{synchronous = FULL}): the
place to send a command's tagged OK.

Folders whose entries a write changed (a file renamed into C{new/}) are
given to L{WriteGroup.syncFolder}: each is fsync'd once per group, before
the commit, so an index that says a message exists never outlives its file
after a power cut.
"""

import collections
import threading

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from gateway.store import index, maildir


class WriteGroup:
    """
    What the writes of one group share (given to each write).

    @ivar folders: the folders to fsync before the commit.
    """

    def __init__(self):
        self.folders = set()

    def syncFolder(self, path):
        """
        Have folder C{path} fsync'd before the group commits.
        """
        self.folders.add(path)


class IndexWriter:
    """
    The writer thread of one index file.

    @ivar groups: how many groups were committed (for tests and metrics).
    @ivar written: how many writes they held.
    """

    def __init__(self, path, reactor):
        self._path = path
        self._reactor = reactor
        self._queue = collections.deque()
        self._wake = threading.Condition()
        self._stopping = False
        self.groups = 0
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="index-writer", daemon=True)
        self._thread.start()

    def submit(self, write):
        """
        Run C{write(conn, group)} in the next group (C{conn} is inside the
        group's transaction; C{group} a L{WriteGroup}).

        @return: a L{Deferred} that fires on the reactor thread with what
            C{write} returned once the group committed, or fails with what
            it raised (or with the commit's error).
        """
        d = Deferred()
        with self._wake:
            if self._stopping:
                raise RuntimeError("index writer is closed")
            self._queue.append((write, d))
            self._wake.notify()
        return d

    def close(self):
        """
        Commit what was submitted, then stop the thread (waits for it).
        """
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join()

    def _run(self):
        conn = index.connect(self._path)
        try:
            while True:
                with self._wake:
                    while not self._queue and not self._stopping:
                        self._wake.wait()
                    if not self._queue:
                        return
                    items = list(self._queue)
                    self._queue.clear()
                self._commitGroup(conn, items)
        finally:
            conn.close()

    def _commitGroup(self, conn, items):
        group = WriteGroup()
        outcomes = []
        try:
            with index.transaction(conn):
                for write, d in items:
                    conn.execute("SAVEPOINT write")
                    try:
                        result = write(conn, group)
                    except BaseException:
                        conn.execute("ROLLBACK TO write")
                        conn.execute("RELEASE write")
                        outcomes.append((d, Failure()))
                    else:
                        conn.execute("RELEASE write")
                        outcomes.append((d, result))
                for folder in sorted(group.folders):
                    maildir.fsyncDirectory(folder)
        except BaseException:
            failure = Failure()
            outcomes = [(d, failure) for _, d in items]
        else:
            self.groups += 1
            self.written += len(items)
        self._reactor.callFromThread(self._fire, outcomes)

    @staticmethod
    def _fire(outcomes):
        for d, outcome in outcomes:
            if isinstance(outcome, Failure):
                d.errback(outcome)
            else:
                d.callback(outcome)
