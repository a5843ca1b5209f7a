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
fires (on the reactor thread) after the group's C{COMMIT} returned (the
index runs with C{synchronous = FULL}) and the folders it changed were
fsync'd, that is once the change is durable: the place to send a command's
tagged OK.

A write that records its file changes in the index instead (a small
APPEND, a STORE's renames, an EXPUNGE's moves: L{gateway.store.redo},
L{WriteGroup.noteRedo}) registers no folder: the C{COMMIT} makes it
durable, and the process's checkpointer syncs the file system later.
Folders whose entries another write changed (a file renamed into C{new/}) are
given to L{WriteGroup.syncFolder}: each is fsync'd once per group, after
the commit and once the writers' lock is let go, so that the other
workers' writers write meanwhile (docs/durability.md says what a power cut
between the two can leave: never an acknowledged change lost, never a UID
given twice).  What must wait for the commit (renaming the staged
files of a COPY into place, removing a MOVE's journal) is given to
L{WriteGroup.afterCommit}, what undoes a write's file changes when the
group's commit fails to L{WriteGroup.ifRolledBack}, and what must run on
the reactor thread once the write is durable (telling listeners) to
L{WriteGroup.onReactor}.
"""

import collections
import fcntl
import os
import threading
import time

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python import log
from twisted.python.failure import Failure

from gateway import affinity, stats
from gateway.errors import isStorageFull
from gateway.store import index, maildir, redo


class WriteGroup:
    """
    What the writes of one group share (given to each write).

    @ivar folders: the folders to fsync once the group committed, before
        its writes' L{Deferred}s fire.
    """

    def __init__(self):
        self.folders = set()
        self._actions = _Actions()
        self._summaries = {}
        #: The newest row a write of the group recorded in the index's
        #: C{redo} table (L{gateway.store.redo}), or C{None}.
        self.redoUpTo = None

    def noteRedo(self, rowId):
        """
        A write recorded row C{rowId} in the index's C{redo} table: once
        the group committed, the process's checkpointer makes its files
        durable and forgets it (L{gateway.store.redo.Checkpointer}).
        """
        if rowId is not None and (self.redoUpTo is None or rowId > self.redoUpTo):
            self.redoUpTo = rowId

    def syncFolder(self, path):
        """
        Have folder C{path} fsync'd once the group committed, before the
        write's L{Deferred} fires.
        """
        self.folders.add(path)

    def beforeCommit(self, key, f, *args):
        """
        Call C{f(*args)} in the writing thread once the group's writes have
        run, inside its transaction but outside any write's savepoint,
        before the group commits: once for a
        C{key}, however many writes ask.  For what sums up the group's
        changes (a mailbox's folder mtimes after all of them); it is called
        even if the write that asked was undone, so it must hold whatever
        the group's writes did.  If it raises, the group fails.
        """
        self._summaries.setdefault(key, (f, args))

    def _summarize(self):
        """
        Call what L{beforeCommit} was given, in the order it was.
        """
        summaries, self._summaries = self._summaries, {}
        for f, args in summaries.values():
            f(*args)

    def afterCommit(self, f, *args):
        """
        Call C{f(*args)} in the writing thread once the group committed,
        before the write's L{Deferred} fires (dropped if the write fails).
        """
        self._actions.committed.append((f, args))

    def ifRolledBack(self, f, *args):
        """
        Call C{f(*args)} in the writing thread if the write's index changes
        do not become durable (the write raises later, or the group's
        commit fails): undo what it did outside the index.
        """
        self._actions.rolledBack.append((f, args))

    def afterRelease(self, f, *args):
        """
        Call C{f(*args)} in the writing thread once the group committed and
        the writers' lock (L{index.WRITERS_LOCK_SUFFIX}) is let go, after the write's
        L{Deferred} was given to the reactor (dropped if the write fails):
        clean-up that neither the reply nor the other writers wait for,
        such as unlinking the files of expunged messages.
        """
        self._actions.released.append((f, args))

    def onReactor(self, f, *args):
        """
        Call C{f(*args)} on the reactor thread once the write is durable,
        just before its L{Deferred} fires (dropped if the write fails).
        """
        self._actions.reactor.append((f, args))

    def _startWrite(self):
        """
        A new write of the group begins: the actions registered from now
        on are its own.

        @return: the L{_Actions} of the write that ended.
        """
        ended, self._actions = self._actions, _Actions()
        return ended


class _Actions:
    """
    The actions one write registered with its L{WriteGroup}.
    """

    def __init__(self):
        self.committed = []
        self.rolledBack = []
        self.released = []
        self.reactor = []

    @staticmethod
    def run(actions):
        for f, args in actions:
            try:
                f(*args)
            except Exception:
                log.err(None, "index write follow-up failed")


def runNow(conn, write, holder=None):
    """
    Run C{write(conn, group)} as L{IndexWriter} would, in the calling
    thread, in a transaction of its own: for reactors without threads
    (tests).

    @param holder: an object whose C{current} is the group while it runs
        (as L{IndexWriter.current}), or C{None}.
    @return: what C{write} returned, once committed.
    """
    group = WriteGroup()
    if holder is not None:
        holder.current = group
    try:
        with index.transaction(conn):
            result = write(conn, group)
            group._summarize()
    except BaseException:
        _Actions.run(group._startWrite().rolledBack)
        raise
    finally:
        if holder is not None:
            holder.current = None
    actions = group._startWrite()
    _Actions.run(actions.committed)
    try:
        maildir.fsyncDirectories(group.folders)
    finally:
        # Committed: what follows a commit runs even if the folders could
        # not be made durable (the write then raises, see L{_syncFolders}).
        _Actions.run(actions.released)
        _Actions.run(actions.reactor)
    return result


class IndexWriter:
    """
    The writer thread of one index file.

    @ivar groups: how many groups were committed (for tests and metrics).
    @ivar written: how many writes they held.
    """

    def __init__(self, path, reactor, connect=None):
        """
        @param connect: makes the writer's connection in its thread (the
            store's own for that thread, so that what the writes call of
            the store reads inside the group's transaction);
            L{index.connect} of C{path} by default.
        """
        self._path = path
        self._reactor = reactor
        self._connect = connect
        self._queue = collections.deque()
        self._wake = threading.Condition()
        self._stopping = False
        self.groups = 0
        self.written = 0
        #: The L{WriteGroup} being written (read in the writer's thread).
        self.current = None
        self._thread = threading.Thread(target=self._run, name="index-writer", daemon=True)
        self._thread.start()

    def inWriter(self):
        """
        Is the calling thread this writer's?
        """
        return threading.current_thread() is self._thread

    def submit(self, write, makesRoom=False, before=None):
        """
        Run C{write(conn, group)} in the next group (C{conn} is inside the
        group's transaction; C{group} a L{WriteGroup}).

        @param makesRoom: C{True} for a write that must work on a full disk
            (flagging C{\\Deleted}, expunging) and may run again after a
            failed commit: when its group fails for want of room, the
            index's reserve is given up (L{index.makeRoom}) and it runs
            again in a group of such writes.
        @param before: a no-argument callable that waits for the disk (the
            fsync of a small APPEND's file), run by this thread before it
            takes the writers' lock for the group, at the same time as the
            group's others (L{maildir.runTogether}), so that the lock is
            not held meanwhile.  A write submitted while the lock is awaited
            joins the group without it: C{write} must then do it itself,
            and must when C{before} failed (it is not told).

        @return: a L{Deferred} that fires on the reactor thread with what
            C{write} returned once the group committed, or fails with what
            it raised (or with the commit's error).
        """
        d = Deferred()
        if stats.measuring():
            submitted = time.monotonic()
            d.addBoth(_measureWrite, submitted)
        with self._wake:
            if self._stopping:
                raise RuntimeError("index writer is closed")
            self._queue.append([write, d, makesRoom, before])
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
        yielding = affinity.yieldToReactor()
        conn = index.connect(self._path) if self._connect is None else self._connect()
        lock = index.openWritersLock(self._path)
        try:
            while True:
                with self._wake:
                    while not self._queue and not self._stopping:
                        self._wake.wait()
                    if not self._queue:
                        return
                self._runBefore()
                # The writers of every process take turns on this lock
                # before SQLite's: see index.WRITERS_LOCK_SUFFIX.  What was submitted
                # while this one waited joins the group.
                waited = time.monotonic()
                if yielding:
                    # Others wait for what it holds now: woken by its
                    # COMMIT's fsync, it runs and lets go at once (see
                    # gateway.affinity).
                    affinity.setYielding(False)
                fcntl.flock(lock, fcntl.LOCK_EX)
                locked = time.monotonic()
                try:
                    with self._wake:
                        items = list(self._queue)
                        self._queue.clear()
                    outcomes, folders = self._writeGroup(conn, items)
                    # What waits for the commit (a COPY's staged files put
                    # in place) runs before the lock is let go: the other
                    # worker's writer must not expunge a copy whose file is
                    # not in place yet (it would come back at the next scan).
                    self._runCommitted(outcomes, "committed")
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
                    if yielding:
                        affinity.setYielding(True)
                    stats.measure("index_write", locked - waited, stage="lock")
                    stats.measure("index_write", time.monotonic() - locked, stage="held")
                # The folders' fsync waits for the disk outside the lock:
                # the other workers' writers take it meanwhile.
                self._finishGroup(outcomes, folders)
        finally:
            os.close(lock)
            if self._connect is None:
                conn.close()

    def _runBefore(self):
        """
        Run the C{before} of the writes queued now (see L{submit}), all at
        once; one that fails is left to its write.
        """
        with self._wake:
            calls = []
            for item in self._queue:
                if item[3] is not None:
                    calls.append(item[3])
                    item[3] = None
        if not calls:
            return
        try:
            maildir.runTogether(calls)
        except Exception:
            pass  # each write does what failed again, and fails itself

    def _commitGroup(self, conn, items, retry=True):
        outcomes, folders = self._writeGroup(conn, items, retry)
        self._runCommitted(outcomes, "committed")
        self._finishGroup(outcomes, folders)

    def _finishGroup(self, outcomes, folders):
        """
        What follows a group's commit and its L{WriteGroup.afterCommit}
        actions: its folders' fsync, its L{Deferred}s fired on the reactor,
        then its L{WriteGroup.afterRelease} actions.
        """
        outcomes = self._syncFolders(outcomes, folders)
        self._reactor.callFromThread(self._fire, outcomes)
        self._runCommitted(outcomes, "released")

    @staticmethod
    def _syncFolders(outcomes, folders):
        """
        fsync the C{folders} of a group that committed.  If that fails (an
        I/O error), the group's changes are in the index but may not
        survive a power cut: each of its writes fails with the error (its
        client is not told the change is durable), while what follows a
        commit still runs (listeners are told, expunged files unlinked).

        @return: C{outcomes}, as L{_fire} then takes them.
        """
        try:
            maildir.fsyncDirectories(folders)
        except Exception:
            failure = Failure()
            log.err(failure, "syncing the folders of a committed index write group")
            return [(d, outcome if isinstance(outcome, Failure) else failure, actions)
                    for d, outcome, actions in outcomes]
        return outcomes

    @staticmethod
    def _runCommitted(outcomes, kind):
        """
        Run what the committed writes registered as C{kind}
        (C{"committed"}: L{WriteGroup.afterCommit}; C{"released"}:
        L{WriteGroup.afterRelease}).
        """
        for _d, _result, actions in outcomes:
            if actions is not None:
                _Actions.run(getattr(actions, kind))

    def _writeGroup(self, conn, items, retry=True):
        """
        Write C{items} in one transaction (L{_runCommitted} then runs what
        waits for the commit, and L{_syncFolders} syncs the folders).

        @return: C{(outcomes, folders)}: what L{_fire} takes, a
            (L{Deferred}, result or L{Failure}, L{_Actions} or C{None}) per
            item, and the folders to sync (none if the group failed).
        """
        group = self.current = WriteGroup()
        outcomes = []
        try:
            with index.transaction(conn):
                for write, d, _makesRoom, _before in items:
                    conn.execute("SAVEPOINT " + index.WRITE_SAVEPOINT)
                    conn.writeSavepoint = conn.total_changes  # see index.transaction
                    group._startWrite()
                    try:
                        try:
                            result = write(conn, group)
                        finally:
                            conn.writeSavepoint = None
                    except BaseException:
                        conn.execute("ROLLBACK TO " + index.WRITE_SAVEPOINT)
                        conn.execute("RELEASE " + index.WRITE_SAVEPOINT)
                        _Actions.run(group._startWrite().rolledBack)
                        outcomes.append((d, Failure(), None))
                    else:
                        conn.execute("RELEASE " + index.WRITE_SAVEPOINT)
                        outcomes.append((d, result, group._startWrite()))
                group._summarize()
        except BaseException as e:
            failure = Failure()
            for _d, _result, actions in outcomes:
                if actions is not None:
                    _Actions.run(actions.rolledBack)
            again = [item for item in items if item[2]]
            if retry and again and isStorageFull(e):
                self.current = None
                indexPath = index.makeRoom(conn)
                self._commitGroup(conn, again, retry=False)
                index.keepReserve(indexPath)
                items = [item for item in items if not item[2]]
            outcomes = [(d, failure, None) for _, d, _makesRoom, _before in items]
            return outcomes, ()
        else:
            self.groups += 1
            self.written += len(items)
            if group.redoUpTo is not None:
                redo.checkpointer.note(self._path, group.redoUpTo)
        finally:
            self.current = None
        return outcomes, group.folders

    @staticmethod
    def _fire(outcomes):
        for d, outcome, actions in outcomes:
            if actions is not None:
                # Committed (even when its folders' sync then failed).
                _Actions.run(actions.reactor)
            if isinstance(outcome, Failure):
                d.errback(outcome)
            else:
                d.callback(outcome)


def _measureWrite(result, submitted):
    stats.measure("index_write", time.monotonic() - submitted, stage="durable")
    return result


def callDurably(mailbox, name, *args):
    """
    Call the write C{name} (C{"setFlags"}, C{"expunge"}, ...) of
    C{mailbox} so that the reactor does not wait for it: its C{nameLater}
    form (the store's index writer) when it has one, else C{name} itself
    (another account's mailbox through the access layer).

    @return: a L{Deferred} firing with its result once it is durable.
    """
    later = getattr(mailbox, name + "Later", None)
    if later is None:
        return maybeDeferred(getattr(mailbox, name), *args)
    return later(*args)
