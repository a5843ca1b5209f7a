# -*- test-case-name: tests.test_store_rescan -*-
"""
How a L{gateway.store.mailbox.Mailbox} follows changes: what changed since
a modseq (kept in memory, L{gateway.store.changelog}), its UIDs at the
latest modseq, listeners called after changes made here or elsewhere, and
synchronization of the index with the Maildir folders.

Changes made through the store are applied to the index directly and never
make it list the folders again.  While inotify watches a mailbox (it has
listeners) and is known to have reported every change since the index last
matched the folders (the mailbox is I{covered}), a wake looks only at the
file names inotify reported, less those this process changed itself; the
folder mtimes decide otherwise.
"""

import os
import threading

from twisted.internet.defer import Deferred, fail, succeed
from twisted.python import log

from gateway.errors import NoSuchMailbox, isStorageFull
from gateway.store import index, maildir, scan
from gateway.store.changelog import ChangeLog
from gateway.store.messagerows import MessageRows
from gateway.store.records import MessageInfo

#: Listeners called per reactor turn when a change is announced.
_FANOUT_BATCH = 200
#: File names of its own changes a watched mailbox remembers at most,
#: waiting for their inotify events.
_MAX_OWN = 100000
#: Names reported by inotify that a watched mailbox looks at one by one on
#: the reactor thread; past this many it lists its folders in a thread.
_MAX_EVENT_NAMES = 500
#: Base names looked up in one query by L{MailboxChanges._inconsistent}.
_BASES_PER_QUERY = 400


def syncFailed(failure, name):
    """
    Log a scan of mailbox C{name} that failed in the background: a full
    disk (the next scan tries again) or a mailbox deleted meanwhile in one
    line, anything else with its traceback.
    """
    if failure.check(NoSuchMailbox):
        log.msg("mailbox %s not scanned: it was deleted meanwhile" % (name,))
    elif isStorageFull(failure.value):
        log.msg("mailbox %s not scanned, the disk is full: %s" % (name, failure.value))
    else:
        log.err(failure, "synchronizing mailbox %s failed" % (name,))


#: L{MailboxChanges._changesAfter}'s statement: the mailbox's row (kind 0),
#: its expunged rows (1) and its messages' rows (2) above a modseq, each
#: padded to the message rows' L{index.INFO_COLUMNS}.
_CHANGES_AFTER = (
    "SELECT 0, highestmodseq, NULL, NULL, NULL, NULL, NULL FROM mailboxes WHERE id = ?"
    " UNION ALL SELECT 1, uid, modseq, NULL, NULL, NULL, NULL FROM expunged WHERE mailbox = ? AND modseq > ?"
    " UNION ALL SELECT 2, %s FROM messages WHERE mailbox = ? AND modseq > ?"
    " ORDER BY 1, 2" % (index.INFO_COLUMNS,))


class MailboxChanges:
    """
    The change-following half of L{Mailbox}, which provides C{_store},
    C{_id}, C{_conn}, C{_row} and C{_path}.
    """

    def _initChanges(self):
        self._uidCache = None
        self._changesCache = None
        self._changeLog = ChangeLog()
        self._messageRows = MessageRows()
        self._listeners = []
        self._notifyCall = None
        self._notifiedModSeq = None
        self._scanning = False
        self._waiters = []
        self._nextWaiters = []
        self._watchedPath = None
        # Event-driven synchronization (see synchronize): are inotify's
        # events known to cover every change since the index last matched
        # the folders; file names changed by this process whose events are
        # still to come; names reported by inotify not yet looked at.
        self._covered = False
        self._scanCovers = None
        self._own = set()
        self._events = set()

    # -- what changed --------------------------------------------------------

    def uidState(self):
        # Every change to the mailbox's messages takes a new modseq, here or
        # in another process, so the tuple read last time is still right while
        # UIDVALIDITY and HIGHESTMODSEQ are unchanged: sessions in step with
        # the mailbox share one tuple, and a SELECT of a large mailbox does
        # not read every row again.  UIDNEXT is read in the same transaction
        # (another process's APPEND may commit between two transactions).
        # One read of the row tells whether the tuple still holds, without
        # the three statements of a transaction; when it does not, the
        # change log (which the sessions' changesSince keeps reading) often
        # tells what changed without a statement.
        cached = self._uidCache
        if cached is not None and not self._conn.in_transaction:
            version = self._row("uidvalidity, highestmodseq, uidnext")
            if cached[0] == version:
                return version[1], version[2], cached[1]
            uids = self._uidsFromLog(cached, version)
            if uids is not None:
                self._uidCache = (version, uids)
                return version[1], version[2], uids
        with index.snapshot(self._conn):
            version = self._row("uidvalidity, highestmodseq, uidnext")
            cached = self._uidCache
            if cached is None or cached[0] != version:
                uids = None if cached is None else self._uidsAfter(cached, version)
                if uids is None:
                    uids = tuple(row[0] for row in self._conn.execute(
                        "SELECT uid FROM messages WHERE mailbox = ? ORDER BY uid", (self._id,)))
                self._uidCache = (version, uids)
        return version[1], version[2], self._uidCache[1]

    def _uidsFromLog(self, cached, version):
        """
        The UIDs at C{version} from those kept at an earlier one and the
        change log (in the reactor thread, outside a transaction): what
        L{_uidsAfter} reads, without a statement when the log already read
        the commits since.  A message added since has a UID from the kept
        UIDNEXT on and a change above the kept modseq, so the log has it,
        or its expunge.  C{None} when the log cannot tell, or the mailbox
        is unselectable (its messages dropped wholesale, which the log does
        not see).
        """
        (validity, modseq, uidNext), uids = cached
        if threading.get_ident() != self._store._ownerThread or version[0] != validity \
                or version[1] < modseq or not self._row("selectable")[0]:
            return None
        changes = self._changeLog.since(modseq, validity, version[1], self._changesAfter)
        if changes is None or changes[2] != version[1]:
            return None
        expunged, changed, _highest = changes
        if expunged:
            gone = set(expunged)
            uids = tuple(uid for uid in uids if uid not in gone)
        return uids + tuple(info.uid for info in changed if info.uid >= uidNext)

    def _uidsAfter(self, cached, version):
        """
        The UIDs at C{version} from those kept at an earlier one, reading
        only what changed (expunged since, appended since): a change to a
        mailbox of 50,000 messages no longer reads every row in each
        process.  C{None} when that cannot be trusted (another UIDVALIDITY,
        or the count does not match: the rows were dropped wholesale, as
        when a mailbox with children is deleted).
        """
        (validity, modseq, uidNext), uids = cached
        if version[0] != validity or version[1] < modseq:
            return None
        gone = {row[0] for row in self._conn.execute(
            "SELECT uid FROM expunged WHERE mailbox = ? AND modseq > ?", (self._id, modseq))}
        kept = tuple(uid for uid in uids if uid not in gone) if gone else uids
        added = tuple(row[0] for row in self._conn.execute(
            "SELECT uid FROM messages WHERE mailbox = ? AND uid >= ? ORDER BY uid", (self._id, uidNext)))
        result = kept + added
        count = self._conn.execute("SELECT count(*) FROM messages WHERE mailbox = ?", (self._id,)).fetchone()[0]
        return result if count == len(result) else None

    def changesSince(self, modseq):
        # Every session in step with the mailbox asks the same question after
        # a change: the last answer stands while HIGHESTMODSEQ does.  In the
        # reactor thread the others come from the mailbox's ChangeLog, which
        # reads each commit's changes once for all sessions.
        cached = self._changesCache
        if threading.get_ident() == self._store._ownerThread and not self._conn.in_transaction:
            validity, highest = self._row("uidvalidity, highestmodseq")
            if cached is not None and cached[0] == (modseq, highest):
                return cached[1]
            result = self._changeLog.since(modseq, validity, highest, self._changesAfter)
            if result is not None:
                self._changesCache = ((modseq, result[2]), result)
                return result
        elif cached is not None and cached[0] == (modseq, self._row("highestmodseq")[0]):
            return cached[1]
        highest, expunged, changed = self._changesAfter(modseq)
        result = (sorted({uid for uid, _ in expunged}), changed, highest)
        self._changesCache = ((modseq, highest), result)
        return result

    def _changesAfter(self, modseq):
        """
        Read in one statement (one state of the index): C{(HIGHESTMODSEQ,
        [(uid, modseq)] expunged above C{modseq}, [MessageInfo] of the rows
        changed above it, in UID order)}.  The reactor reads this after
        every commit to a selected mailbox, its own process's or another's;
        as a transaction of five statements it gave the interpreter's lock
        away five times, each time perhaps to the index writer.
        """
        if self._gone:
            raise NoSuchMailbox("mailbox was deleted")
        highest, expunged, changed = None, [], []
        for kind, *row in self._conn.execute(_CHANGES_AFTER, (self._id, self._id, modseq, self._id, modseq)):
            if kind == 2:
                changed.append(MessageInfo(*row))
            elif kind == 1:
                expunged.append((row[0], row[1]))
            else:
                highest = row[0]
        if highest is None:
            raise NoSuchMailbox("mailbox was deleted")
        return highest, expunged, changed

    # -- listeners -------------------------------------------------------------

    def addListener(self, callback):
        if not self._listeners:
            self._notifiedModSeq = self.highestModSeq()
            self._watchedPath = self._path()
            self._store._startWatching(self)
            self._coverIfInStep()
        self._listeners.append(callback)

        def remove():
            if callback in self._listeners:
                self._listeners.remove(callback)
                if not self._listeners:
                    self._messageRows.clear()
                    self._store._stopWatching(self, self._watchedPath)
                    self._covered = False
                    self._own.clear()
                    self._events.clear()
        return remove

    def _coverIfInStep(self):
        """
        Watching just started: if the index matches the folders now, inotify
        reports every change from here on, so the mailbox is covered at once
        (the session that selected it may change files before it next
        synchronizes, and L{_recordFolders} then keeps the folders trusted).
        """
        if self._scanning or self._store._watchedSince(self) is None:
            return
        try:
            row = self._row("newmtime, newsynced, curmtime, cursynced")
        except NoSuchMailbox:
            return
        if not scan.dirtyDirectories(row, self._path()):
            self._covered = True

    def _changed(self):
        """
        Something changed: call the listeners on the next reactor turn
        (several changes in one turn make one call); made in the index
        writer's thread, once it is durable.
        """
        group = self._store._currentGroup()
        if group is not None:
            group.onReactor(self._changed)
            return
        if self._listeners and (self._notifyCall is None or not self._notifyCall.active()):
            self._notifyCall = self._store._reactor.callLater(0, self._notify)

    def _notify(self):
        self._notifyCall = None
        try:
            self._notifiedModSeq = self.highestModSeq()
        except NoSuchMailbox:
            return
        self._callListeners(list(self._listeners))

    def _callListeners(self, callbacks):
        """
        Call C{callbacks}, L{_FANOUT_BATCH} per reactor turn, so that what
        the reactor has to send meanwhile (the reply to the delivery that
        made the change, the EXISTS of the first sessions) goes out between
        batches rather than after thousands of sessions; a listener removed
        meanwhile is skipped.
        """
        batch, rest = callbacks[:_FANOUT_BATCH], callbacks[_FANOUT_BATCH:]
        current = set(self._listeners)
        for callback in batch:
            if callback not in current:
                continue
            try:
                callback()
            except Exception:
                log.err(None, "mailbox listener failed")
        if rest:
            self._store._reactor.callLater(0, self._callListeners, rest)

    def _expect(self, *names):
        """
        This process is about to change the files C{(subdir, filename)}
        of the mailbox (and the index with them): when the mailbox is
        watched, remember them so that their inotify events cost nothing.
        """
        if self._store._watchedSince(self) is None:
            return
        self._own.update(names)
        if len(self._own) > _MAX_OWN:
            # Events were lost somewhere: fall back on the folder mtimes.
            self._own.clear()
            self._covered = False

    def _recordFolders(self, path=None):
        """
        At the end of a write transaction of this process: while inotify
        covers the mailbox (see L{synchronize}) and reported nothing still
        to look at, the index matches the folders as they are now, so say
        so in the index (their mtimes, trusted at once: what changes in the
        same clock tick is reported to this process, which applies it).
        Other processes, and this one once it stops watching, then need no
        scan for this change.  In the index writer this is done once for
        the group, after its last write (L{gateway.store.writer.WriteGroup.beforeCommit}).
        """
        group = self._store._currentGroup()
        if group is not None:
            group.beforeCommit(("folders", self._id), self._recordFoldersNow, path)
        else:
            self._recordFoldersNow(path)

    def _recordFoldersNow(self, path=None):
        if not self._covered or self._events:
            return
        path = path or self._path()
        columns, values = [], []
        for subdir in ("new", "cur"):
            mtime = scan.folderMtime(os.path.join(path, subdir))
            if mtime is not None:
                columns.append("%smtime = ?, %ssynced = ?" % (subdir, subdir))
                values += (mtime, mtime + scan.DIRTY_WINDOW_NS)
        if columns:
            self._conn.execute("UPDATE mailboxes SET %s WHERE id = ?" % (", ".join(columns),), (*values, self._id))

    def _poll(self, names=(), overflowed=False):
        """
        The watcher says something may have changed: another process's
        index commit (HIGHESTMODSEQ moved), files changed by another program
        (the C{(subdir, filename)} inotify reported in C{names}; without
        inotify, the folder mtimes moved).
        """
        try:
            row = self._row("newmtime, newsynced, curmtime, cursynced, highestmodseq")
        except NoSuchMailbox:
            return
        if overflowed:
            self._covered = False
            self._own.clear()
            self._events.clear()
        for name in names:
            if name in self._own:
                self._own.discard(name)
            else:
                self._events.add(name)
        if self._covered:
            if self._events:
                self.synchronize().addErrback(syncFailed, self.name)
        elif scan.dirtyDirectories(row[:4], self._path()):
            self.synchronize().addErrback(syncFailed, self.name)
        if row[4] != self._notifiedModSeq:
            self._changed()

    def _inconsistent(self, names):
        """
        @return: those of C{names} (C{(subdir, filename)}) on which the
            index and the folder disagree: a file there that the index does
            not have at that place, or the reverse.
        """
        path = self._path()
        names = [(subdir, filename, maildir.splitName(filename)[0]) for subdir, filename in names
                 if not filename.startswith(".")]
        places = {}
        bases = sorted({base for _, _, base in names})
        for i in range(0, len(bases), _BASES_PER_QUERY):
            chunk = bases[i:i + _BASES_PER_QUERY]
            places.update((base, (subdir, filename)) for base, subdir, filename in self._conn.execute(
                "SELECT base, subdir, filename FROM messages WHERE mailbox = ? AND base IN (%s)"
                % (",".join("?" * len(chunk)),), (self._id, *chunk)))
        result = []
        for subdir, filename, base in names:
            indexed = places.get(base) == (subdir, filename)
            if indexed != os.path.exists(os.path.join(path, subdir, filename)):
                result.append((subdir, filename))
        return result

    def synchronize(self):
        """
        Bring the index up to date with the folders.  While inotify watches
        the mailbox and is known to have reported every change since the
        index last matched the folders, only the names it reported (less
        those this process changed itself) are looked at; otherwise the
        folder mtimes say whether the folders must be listed again.
        """
        if self._scanning:
            d = Deferred()
            self._nextWaiters.append(d)
            return d
        try:
            row = self._row("newmtime, newsynced, curmtime, cursynced")
        except NoSuchMailbox:
            return fail()
        since = self._store._watchedSince(self)
        if since is None:
            self._covered = False
        if self._covered and len(self._events) > _MAX_EVENT_NAMES:
            # Many files at once (a Maildir copied in): listing the folders
            # in a thread beats looking at each name on the reactor thread.
            self._covered = False
            self._events.clear()
        if self._covered:
            names, self._events = self._events, set()
            names = self._inconsistent(names)
            if not names:
                return succeed(None)
            d = Deferred()
            self._waiters.append(d)
            self._startScan(names)
            return d
        if not scan.dirtyDirectories(row, self._path()):
            # The index matches the folders now, and from now on inotify
            # reports every change.
            self._covered = since is not None
            return succeed(None)
        d = Deferred()
        self._waiters.append(d)
        self._startScan(None, since)
        return d

    def _startScan(self, names=None, coverSince=None):
        self._scanning = True
        self._scanCovers = coverSince
        d = self._store._deferToThread(self._store._scanInThread, self._id, self._path(), names)
        d.addBoth(self._scanDone)

    def _scanDone(self, result):
        self._scanning = False
        if (isinstance(result, bool) and self._scanCovers is not None
                and self._store._watchedSince(self) == self._scanCovers):
            # Watched since before the scan read the folders.
            self._covered = True
        self._scanCovers = None
        waiters, self._waiters = self._waiters, []
        if result is True:
            self._changed()
        for d in waiters:
            if isinstance(result, bool):
                d.callback(None)
            else:
                d.errback(result)
        if self._nextWaiters:
            waiters, self._nextWaiters = self._nextWaiters, []
            self.synchronize().chainDeferred(_Fanout(waiters))


class _Fanout(Deferred):
    """
    A Deferred that passes its result on to several others.
    """

    def __init__(self, deferreds):
        Deferred.__init__(self)
        self.addBoth(self._fan, deferreds)

    @staticmethod
    def _fan(result, deferreds):
        for d in deferreds:
            if isinstance(result, Exception) or hasattr(result, "raiseException"):
                d.errback(result)
            else:
                d.callback(result)
        return None
