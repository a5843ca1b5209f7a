# -*- test-case-name: tests.test_store_mail -*-
"""
One mailbox of an account's L{gateway.store.mail.MailStore}: reading
messages from the index, appending, flags, expunge, copy and move, recent,
change tracking (modseq) and listeners.
"""

import datetime
import os
import shutil

import attr
from twisted.internet.defer import Deferred, fail, succeed
from twisted.python import log
from zope.interface import implementer

from gateway.errors import NoSuchMailbox, NoSuchMessage, StoreError
from gateway.interfaces import IMailbox, IMessageInfo
from gateway.store import index, maildir, query

_SYSTEM_FLAGS = {flag.lower(): flag for flag in maildir.LETTER_FLAGS.values()}
_BATCH = 500
#: Listeners called per reactor turn when a change is announced.
_FANOUT_BATCH = 200


def normalizeFlags(flags):
    """
    System flags in their canonical spelling, C{\\Recent} dropped.

    @rtype: C{frozenset}
    """
    result = set()
    for flag in flags:
        lower = flag.lower()
        if lower == "\\recent":
            continue
        result.add(_SYSTEM_FLAGS.get(lower, flag))
    return frozenset(result)


@implementer(IMessageInfo)
class MessageInfo:
    __slots__ = ("uid", "flags", "_internalDate", "size", "modseq", "headers")

    def __init__(self, uid, flags, internalDate, size, modseq, headers=b""):
        self.uid = uid
        self.flags = index.decodeFlags(flags)
        self._internalDate = internalDate
        self.size = size
        self.modseq = modseq
        self.headers = headers

    @property
    def internalDate(self):
        return datetime.datetime.fromtimestamp(self._internalDate, datetime.timezone.utc)

    def __repr__(self):
        return "<MessageInfo uid=%d flags=%s modseq=%d>" % (self.uid, sorted(self.flags), self.modseq)


@attr.s(frozen=True)
class MailboxCounts:
    """
    What L{Mailbox.counts} gives: numbers of messages in all, without
    C{\\Seen}, not yet given C{\\Recent} to a session, and the sum of their
    sizes.
    """

    messages = attr.ib()
    unseen = attr.ib()
    recent = attr.ib()
    size = attr.ib()


@implementer(IMailbox)
class Mailbox:
    """
    One mailbox of a L{MailStore}; get it with L{MailStore.getMailbox}.
    """

    def __init__(self, store, mailboxId):
        self._store = store
        self._id = mailboxId
        self._listeners = []
        self._notifyCall = None
        self._notifiedModSeq = None
        self._scanning = False
        self._waiters = []
        self._nextWaiters = []
        self._watchedPath = None
        self._gone = False
        self._uidCache = None
        self._changesCache = None
        self._keywordCache = None

    @property
    def _conn(self):
        return self._store._conn

    def _forget(self):
        self._gone = True

    def _row(self, columns):
        row = None
        if not self._gone:
            row = self._conn.execute("SELECT %s FROM mailboxes WHERE id = ?" % (columns,),
                                     (self._id,)).fetchone()
        if row is None:
            raise NoSuchMailbox("mailbox was deleted")
        return row

    def _path(self, name=None):
        return maildir.mailboxPath(self._store.path, name or self.name)

    def __repr__(self):
        return "<Mailbox %d>" % (self._id,)

    # -- attributes ------------------------------------------------------------

    @property
    def name(self):
        return self._row("name")[0]

    @property
    def mailboxClass(self):
        return self._row("class")[0]

    @property
    def specialUse(self):
        return self._row("specialuse")[0]

    @property
    def uidValidity(self):
        return self._row("uidvalidity")[0]

    def uidNext(self):
        return self._row("uidnext")[0]

    def highestModSeq(self):
        return self._row("highestmodseq")[0]

    # -- reading ---------------------------------------------------------------

    def uids(self):
        return list(self.uidSnapshot()[1])

    def uidSnapshot(self):
        # Every change to the mailbox's messages takes a new modseq, here or
        # in another process, so the tuple read last time is still right while
        # UIDVALIDITY and HIGHESTMODSEQ are unchanged: sessions in step with
        # the mailbox share one tuple, and a SELECT of a large mailbox does
        # not read every row again.
        with index.snapshot(self._conn):
            version = self._row("uidvalidity, highestmodseq")
            if self._uidCache is None or self._uidCache[0] != version:
                uids = tuple(row[0] for row in self._conn.execute(
                    "SELECT uid FROM messages WHERE mailbox = ? ORDER BY uid", (self._id,)))
                self._uidCache = (version, uids)
        return version[1], self._uidCache[1]

    def _select(self, columns, uids):
        """
        Rows for C{uids} (in UID order); C{uid} must be the first column.
        """
        wanted = sorted({int(uid) for uid in uids})
        if not wanted:
            return []
        if len(wanted) > _BATCH:
            rows = self._conn.execute(
                "SELECT %s FROM messages WHERE mailbox = ? AND uid BETWEEN ? AND ? ORDER BY uid"
                % (columns,), (self._id, wanted[0], wanted[-1])).fetchall()
            if wanted[-1] - wanted[0] + 1 != len(wanted):
                keep = set(wanted)
                rows = [row for row in rows if row[0] in keep]
            return rows
        rows = []
        for i in range(0, len(wanted), _BATCH):
            chunk = wanted[i:i + _BATCH]
            rows.extend(self._conn.execute(
                "SELECT %s FROM messages WHERE mailbox = ? AND uid IN (%s) ORDER BY uid"
                % (columns, ",".join("?" * len(chunk))), (self._id, *chunk)).fetchall())
        return rows

    def messages(self, uids, headers=True):
        if not headers:
            return [MessageInfo(*row, headers=None)
                    for row in self._select(index.INFO_COLUMNS_NO_HEADERS, uids)]
        return [MessageInfo(*row) for row in self._select(index.INFO_COLUMNS, uids)]

    def keywords(self):
        # Read whole once, then only the rows changed since (by modseq): a
        # keyword taken off every message stays in the answer, which the
        # interface allows.
        with index.snapshot(self._conn):
            highest = self._row("highestmodseq")[0]
            cached = self._keywordCache
            if cached is not None and cached[0] == highest:
                return cached[1]
            if cached is None:
                rows = self._conn.execute("SELECT DISTINCT flags FROM messages WHERE mailbox = ?",
                                          (self._id,))
                found = set()
            else:
                rows = self._conn.execute("SELECT DISTINCT flags FROM messages WHERE mailbox = ? AND modseq > ?",
                                          (self._id, cached[0]))
                found = set(cached[1])
            for (text,) in rows:
                found.update(flag for flag in index.decodeFlags(text) if not flag.startswith("\\"))
        result = frozenset(found)
        self._keywordCache = (highest, result)
        return result

    def saveDates(self, uids):
        # The Maildir base name starts with the time the file was written
        # into this folder (maildir.newBase: delivery, APPEND, COPY, MOVE);
        # a name that does not is another program's, of unknown time.
        result = {}
        for uid, base in self._select("uid, base", uids):
            head = base.split(".", 1)[0]
            result[uid] = int(head) if head.isdigit() and len(head) < 12 else None
        return result

    def counts(self):
        unseen, params = query.Not(query.HasFlag("\\Seen")).sql()
        with index.snapshot(self._conn):
            recentUid = self._row("recentuid")[0]
            row = self._conn.execute(
                "SELECT count(*), COALESCE(sum(%s), 0), COALESCE(sum(uid >= ?), 0), COALESCE(sum(size), 0)"
                " FROM messages WHERE mailbox = ?" % (unseen,), (*params, recentUid, self._id)).fetchone()
        return MailboxCounts(*row)

    def search(self, term, limit=None):
        condition, params = term.sql()
        self._row("id")
        return self._conn.execute(
            "SELECT uid, modseq FROM messages WHERE mailbox = ? AND (%s) ORDER BY uid LIMIT ?" % (condition,),
            (self._id, *params, -1 if limit is None else limit)).fetchall()

    def openMessage(self, uid):
        row = self._conn.execute(
            "SELECT m.subdir, m.filename, m.crlf, m.base, b.name FROM messages m"
            " JOIN mailboxes b ON b.id = m.mailbox WHERE m.mailbox = ? AND m.uid = ?",
            (self._id, uid)).fetchone()
        if row is None:
            if self._gone:
                raise NoSuchMailbox("mailbox was deleted")
            raise NoSuchMessage(uid)
        subdir, filename, crlf, base, name = row
        path = self._path(name)
        try:
            f = open(os.path.join(path, subdir, filename), "rb")
        except FileNotFoundError:
            # Renamed by another program since we looked: find it by base.
            found = self._locate(path, base)
            if found is None:
                raise NoSuchMessage(uid)
            f = open(found, "rb")
        return maildir.CRLFReader(f) if crlf else f

    def _locate(self, path, base):
        for subdir in ("cur", "new"):
            try:
                names = os.listdir(os.path.join(path, subdir))
            except FileNotFoundError:
                continue
            for name in names:
                if maildir.splitName(name)[0] == base:
                    return os.path.join(path, subdir, name)
        return None

    def claimRecent(self):
        recent, uidNext = self._row("recentuid, uidnext")
        if recent >= uidNext:
            return set()  # without the write lock: every session asks after a delivery
        with index.transaction(self._conn):
            recent, uidNext = self._row("recentuid, uidnext")
            if recent >= uidNext:
                return set()
            self._conn.execute("UPDATE mailboxes SET recentuid = ? WHERE id = ?", (uidNext, self._id))
            return {row[0] for row in self._conn.execute(
                "SELECT uid FROM messages WHERE mailbox = ? AND uid >= ?", (self._id, recent))}

    def unclaimedRecent(self):
        recent, uidNext = self._row("recentuid, uidnext")
        if recent >= uidNext:
            return set()
        return {row[0] for row in self._conn.execute(
            "SELECT uid FROM messages WHERE mailbox = ? AND uid >= ?", (self._id, recent))}

    def changesSince(self, modseq):
        # Every session in step with the mailbox asks the same question after
        # a change: the last answer stands while HIGHESTMODSEQ does.
        cached = self._changesCache
        if cached is not None and cached[0] == (modseq, self._row("highestmodseq")[0]):
            return cached[1]
        with index.snapshot(self._conn):
            highest = self._row("highestmodseq")[0]
            expunged = sorted({row[0] for row in self._conn.execute(
                "SELECT uid FROM expunged WHERE mailbox = ? AND modseq > ?", (self._id, modseq))})
            changed = [MessageInfo(*row) for row in self._conn.execute(
                "SELECT %s FROM messages WHERE mailbox = ? AND modseq > ? ORDER BY uid"
                % (index.INFO_COLUMNS,), (self._id, modseq))]
        result = (expunged, changed, highest)
        self._changesCache = ((modseq, highest), result)
        return result

    # -- writing ---------------------------------------------------------------

    def _checkQuota(self, additional):
        if self._store.quota is not None:
            self._store.quota.check(additional)

    def appendMessage(self, source, flags=(), internalDate=None):
        flags = normalizeFlags(flags)
        path = self._path()
        if isinstance(source, (bytes, bytearray, memoryview)):
            self._checkQuota(len(source))
        mtime = internalDate.timestamp() if internalDate is not None else None
        tmpPath, measure = maildir.writeTemporary(os.path.join(path, "tmp"), source, mtime)
        try:
            if not isinstance(source, (bytes, bytearray, memoryview)):
                self._checkQuota(measure.rawSize)
            if mtime is None:
                mtime = os.stat(tmpPath).st_mtime
            base = maildir.newBase(measure.rawSize, measure.size)
            if any(maildir.isSystemFlag(f) for f in flags):
                subdir, name = "cur", maildir.fileName(base, flags)
            else:
                subdir, name = "new", base
            target = os.path.join(path, subdir, name)
            with index.transaction(self._conn):
                uid = self._row("uidnext")[0]
                modseq = index.bumpModSeq(self._conn, self._id)
                os.rename(tmpPath, target)
                try:
                    maildir.fsyncDirectory(os.path.join(path, subdir))
                    self._conn.execute(
                        "INSERT INTO messages (mailbox, uid, base, subdir, filename, flags, internaldate,"
                        " size, rawsize, crlf, modseq, headers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (self._id, uid, base, subdir, name, index.encodeFlags(flags), mtime, measure.size,
                         measure.rawSize, int(measure.needsCRLF), modseq, measure.headers))
                    self._conn.execute("UPDATE mailboxes SET uidnext = ? WHERE id = ?", (uid + 1, self._id))
                    index.addUsage(self._conn, measure.rawSize)
                except BaseException:
                    maildir.removeQuietly(target)
                    raise
        finally:
            maildir.removeQuietly(tmpPath)
        self._changed()
        self._store._added(self, [uid])
        return uid

    def setFlags(self, uids, flags, mode, unchangedSince=None):
        if mode not in ("+", "-", "="):
            raise ValueError("mode must be '+', '-' or '='")
        flags = normalizeFlags(flags)
        path = self._path()
        changed, failed = [], []
        with index.transaction(self._conn):
            self._row("id")
            rows = self._select("uid, base, subdir, filename, flags, modseq", uids)
            modseq = None
            for uid, base, subdir, filename, flagText, oldModSeq in rows:
                if unchangedSince is not None and oldModSeq > unchangedSince:
                    failed.append(uid)
                    continue
                old = index.decodeFlags(flagText)
                new = old | flags if mode == "+" else old - flags if mode == "-" else flags
                if new == old:
                    continue
                if modseq is None:
                    modseq = index.bumpModSeq(self._conn, self._id)
                newSubdir, newName = subdir, filename
                oldLetters = {f for f in old if maildir.isSystemFlag(f)}
                newLetters = {f for f in new if maildir.isSystemFlag(f)}
                if oldLetters != newLetters:
                    info = maildir.splitName(filename)[1]
                    newSubdir = "cur"
                    newName = maildir.fileName(base, new, maildir.extraLetters(info))
                    source = os.path.join(path, subdir, filename)
                    try:
                        os.rename(source, os.path.join(path, newSubdir, newName))
                    except FileNotFoundError:
                        source = self._locate(path, base)
                        if source is None:
                            newSubdir, newName = subdir, filename
                        else:
                            os.rename(source, os.path.join(path, newSubdir, newName))
                self._conn.execute(
                    "UPDATE messages SET subdir = ?, filename = ?, flags = ?, modseq = ?"
                    " WHERE mailbox = ? AND uid = ?",
                    (newSubdir, newName, index.encodeFlags(new), modseq, self._id, uid))
                changed.append(uid)
            changedInfos = self.messages(changed) if changed else []
        if changed:
            self._changed()
        return changedInfos, failed

    def expunge(self, uids=None):
        path = self._path()
        with index.transaction(self._conn):
            self._row("id")
            columns = "uid, subdir, filename, rawsize, flags"
            if uids is None:
                rows = self._conn.execute(
                    "SELECT %s FROM messages WHERE mailbox = ? AND ' ' || flags || ' ' LIKE ?"
                    " ORDER BY uid" % (columns,), (self._id, "% \\Deleted %")).fetchall()
            else:
                rows = self._select(columns, uids)
            rows = [row for row in rows if "\\Deleted" in index.decodeFlags(row[4])]
            if not rows:
                return []
            self._removeRows(path, rows, index.bumpModSeq(self._conn, self._id))
        self._changed()
        return [row[0] for row in rows]

    def _removeRows(self, path, rows, modseq, unlink=True):
        """
        Delete index rows C{(uid, subdir, filename, rawsize, ...)} and log
        them as expunged (inside a transaction).
        """
        for uid, subdir, filename, rawSize, *_rest in rows:
            if unlink:
                maildir.removeQuietly(os.path.join(path, subdir, filename))
            self._conn.execute("DELETE FROM messages WHERE mailbox = ? AND uid = ?", (self._id, uid))
            self._conn.execute("INSERT INTO expunged (mailbox, uid, modseq) VALUES (?, ?, ?)",
                               (self._id, uid, modseq))
            index.addUsage(self._conn, -rawSize)

    def _transfer(self, uids, destination, move):
        if not isinstance(destination, Mailbox) or destination._store is not self._store:
            raise StoreError("copy and move work within one account")
        columns = ("uid, subdir, filename, rawsize, flags, internaldate, size, crlf, headers, base")
        path, destinationPath = self._path(), destination._path()
        rows = self._select(columns, uids)
        if not move:
            self._checkQuota(sum(row[3] for row in rows))
        # Hard links into the destination's tmp/ first (outside the lock).
        staged = {}
        try:
            if not move:
                for row in rows:
                    staged[row[0]] = self._stage(path, row, destinationPath)
            result = []
            with index.transaction(self._conn):
                self._row("id")
                rows = self._select(columns, [row[0] for row in rows])
                uid = destination._row("uidnext")[0]
                modseq = index.bumpModSeq(self._conn, destination._id)
                moved = []
                for row in rows:
                    sourceUid, subdir, filename, rawSize, flagText, internalDate, size, crlf, headers, _ = row
                    source = staged.get(sourceUid) if not move else os.path.join(path, subdir, filename)
                    if source is None:
                        continue
                    flags = index.decodeFlags(flagText)
                    base = maildir.newBase(rawSize, size)
                    if any(maildir.isSystemFlag(f) for f in flags):
                        newSubdir, name = "cur", maildir.fileName(base, flags)
                    else:
                        newSubdir, name = "new", base
                    try:
                        os.rename(source, os.path.join(destinationPath, newSubdir, name))
                    except FileNotFoundError:
                        continue
                    self._conn.execute(
                        "INSERT INTO messages (mailbox, uid, base, subdir, filename, flags, internaldate,"
                        " size, rawsize, crlf, modseq, headers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (destination._id, uid, base, newSubdir, name, flagText, internalDate, size,
                         rawSize, crlf, modseq, headers))
                    result.append((sourceUid, uid))
                    uid += 1
                    index.addUsage(self._conn, rawSize)
                    if move:
                        moved.append(row)
                self._conn.execute("UPDATE mailboxes SET uidnext = ? WHERE id = ?", (uid, destination._id))
                if moved:
                    self._removeRows(path, moved, index.bumpModSeq(self._conn, self._id), unlink=False)
                for sub in ("new", "cur"):
                    maildir.fsyncDirectory(os.path.join(destinationPath, sub))
        finally:
            for tmpPath in staged.values():
                if tmpPath is not None:
                    maildir.removeQuietly(tmpPath)
        if result:
            destination._changed()
            if move:
                self._changed()
            self._store._added(destination, result, source=self)
        return result

    def _stage(self, path, row, destinationPath):
        """
        Put a copy of a message file into the destination's C{tmp/}: a hard
        link, or a real copy where links are not possible.
        """
        source = os.path.join(path, row[1], row[2])
        target = os.path.join(destinationPath, "tmp", maildir.newBase(row[3], row[6]))
        try:
            os.link(source, target)
        except FileNotFoundError:
            return None
        except OSError:
            shutil.copyfile(source, target)
            with open(target, "rb") as f:
                os.fsync(f.fileno())
        return target

    def copyTo(self, uids, destination):
        return self._transfer(uids, destination, move=False)

    def moveTo(self, uids, destination):
        return self._transfer(uids, destination, move=True)

    # -- changes -----------------------------------------------------------------

    def addListener(self, callback):
        if not self._listeners:
            self._notifiedModSeq = self.highestModSeq()
            self._watchedPath = self._path()
            self._store._startWatching(self)
        self._listeners.append(callback)

        def remove():
            if callback in self._listeners:
                self._listeners.remove(callback)
                if not self._listeners:
                    self._store._stopWatching(self, self._watchedPath)
        return remove

    def _changed(self):
        """
        Something changed: call the listeners on the next reactor turn
        (several changes in one turn make one call).
        """
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

    def _poll(self):
        """
        The watcher says something may have changed: another process's
        index commit (HIGHESTMODSEQ moved) or files changed by another program
        (folder mtimes moved: synchronize).
        """
        try:
            row = self._row("newmtime, newsynced, curmtime, cursynced, highestmodseq")
        except NoSuchMailbox:
            return
        if index.dirtyDirectories(row[:4], self._path()):
            self.synchronize().addErrback(log.err, "synchronizing mailbox failed")
        if row[4] != self._notifiedModSeq:
            self._changed()

    def synchronize(self):
        if self._scanning:
            d = Deferred()
            self._nextWaiters.append(d)
            return d
        try:
            row = self._row("newmtime, newsynced, curmtime, cursynced")
        except NoSuchMailbox:
            return fail()
        if not index.dirtyDirectories(row, self._path()):
            return succeed(None)
        d = Deferred()
        self._waiters.append(d)
        self._startScan()
        return d

    def _startScan(self):
        self._scanning = True
        scan = self._store._deferToThread(self._store._scanInThread, self._id, self._path())
        scan.addBoth(self._scanDone)

    def _scanDone(self, result):
        self._scanning = False
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
