# -*- test-case-name: tests.test_store_mail -*-
"""
One mailbox of an account's L{gateway.store.mail.MailStore}: reading
messages from the index, appending, flags and keywords, expunge, recent,
change tracking (modseq); listeners and synchronization are in
L{gateway.store.changes}, copy and move in L{gateway.store.transfer},
C{\\Recent} claims in L{gateway.store.recent}, what it hands out
(L{MessageInfo}, L{MailboxCounts}, L{PreparedMessage}) in
L{gateway.store.records}.
"""

import os
import sqlite3
import string

from twisted.internet.defer import DeferredList, fail, succeed
from zope.interface import implementer

from gateway.errors import NoSuchMailbox, NoSuchMessage, isStorageFull
from gateway.interfaces import IMailbox, IStagedDelivery
from gateway.store import index, maildir, objectid, query, redo, scan, structures, transfer
from gateway.store.changes import MailboxChanges
from gateway.store.messagerows import MessageReads
from gateway.store.records import MailboxCounts, MessageInfo, PreparedMessage, normalizeFlags

__all__ = ["Mailbox", "MailboxCounts", "MessageInfo", "PreparedMessage", "normalizeFlags", "OPEN_ATTEMPTS"]

#: An APPEND of at most this many bytes in memory is written into C{tmp/}
#: on the calling thread, unsynced, and fsync'd by the index writer before
#: it is moved into place (L{Mailbox.appendMessageLater}): a trip through
#: the thread pool and back costs the reactor more than writing a small
#: file to the page cache.
INLINE_APPEND = 64 * 1024


#: How often L{Mailbox.openMessage} looks for a file that other processes
#: keep renaming before it gives the message up as gone.
OPEN_ATTEMPTS = 5


@implementer(IStagedDelivery)
@implementer(IMailbox)
class Mailbox(MessageReads, MailboxChanges):
    """
    One mailbox of a L{MailStore}; get it with L{MailStore.getMailbox}.
    Reading message rows is in L{MessageReads}; listeners and
    synchronization with the folders are in L{MailboxChanges}.
    """

    def __init__(self, store, mailboxId):
        self._store = store
        self._id = mailboxId
        self._gone = False
        #: The index's stamp when no message had \Deleted (see _anyDeleted).
        self._noneDeletedAt = None
        self._countsCache = None
        self._keywordCache = None
        self._keywordsInUse = None
        self._initChanges()

    @property
    def _conn(self):
        return self._store._conn

    def _forget(self):
        self._gone = True

    def _row(self, columns):
        row = None
        if not self._gone:
            row = self._store.mailboxRow(self._id, columns)
        if row is None:
            raise NoSuchMailbox("mailbox was deleted")
        return row

    def _takeUid(self):
        """
        Inside a transaction: the mailbox's UIDNEXT, moved on by one (read
        and written in one statement: the index writer gives the GIL away
        at each).
        """
        rows = None if self._gone else self._conn.execute(
            "UPDATE mailboxes SET uidnext = uidnext + 1 WHERE id = ? RETURNING uidnext - 1", (self._id,)).fetchall()
        if not rows:
            raise NoSuchMailbox("mailbox was deleted")
        return rows[0][0]

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

    @property
    def contentKey(self):
        """
        What names this mailbox's messages' content for as long as their
        UIDs mean the same messages (caches of what a message's content
        gives, L{gateway.imap.structcache}): the account's folder, the
        mailbox's id and its UIDVALIDITY (never given twice in an account,
        L{index.newUidValidity}).
        """
        return (self._store.path, self._id, self.uidValidity)

    def uidNext(self):
        return self._row("uidnext")[0]

    def mailboxId(self):
        from gateway.store.metadata import mailboxId

        return mailboxId(self._path())

    def mailboxIdLater(self):
        """
        L{mailboxId} without a write on the calling (reactor) thread: a
        mailbox that has no MAILBOXID yet gets it in the thread pool (the
        metadata file is written and fsync'd under its folder's lock,
        which another process's metadata write may hold).

        @return: a L{Deferred} firing with it.
        """
        from gateway.store.metadata import knownMailboxId, mailboxId

        path = self._path()
        found = knownMailboxId(path)
        if found is not None:
            return succeed(found)
        return self._store._deferToThread(mailboxId, path)

    def highestModSeq(self):
        return self._row("highestmodseq")[0]

    # -- reading ---------------------------------------------------------------

    def uids(self):
        return list(self.uidSnapshot()[1])

    def uidSnapshot(self):
        modseq, _, uids = self.uidState()
        return modseq, uids

    def keywords(self):
        # Read whole once, then only the rows changed since (by modseq): a
        # keyword taken off every message stays in the answer, which the
        # interface allows.
        with index.snapshot(self._conn):
            highest = self._row("highestmodseq")[0]
            cached = self._keywordsInUse
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
        self._keywordsInUse = (highest, result)
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

    def storedStructures(self, uids):
        """
        The structures kept in the index for C{uids} (see
        L{gateway.store.structures}): C{{uid: {name: bytes}}}, only for
        messages that have some.
        """
        return structures.read(self._conn, self._id, uids)

    def counts(self):
        # Every change to the messages takes a new modseq or UIDNEXT (as
        # for changesSince): while neither nor the first unclaimed UID
        # moved, the counts stand, and a STATUS does not go through every
        # row.
        unseen, params = query.Not(query.HasFlag("\\Seen")).sql()
        with index.snapshot(self._conn):
            validity, recentUid, uidNext, highest = self._row("uidvalidity, recentuid, uidnext, highestmodseq")
            recentUid = self._store.recentClaims.first(self._id, validity, recentUid)
            version = (validity, highest, uidNext, recentUid)
            cached = self._countsCache
            if cached is not None and cached[0] == version:
                return cached[1]
            row = self._conn.execute(
                "SELECT count(*), COALESCE(sum(%s), 0), COALESCE(sum(uid >= ?), 0), COALESCE(sum(size), 0)"
                " FROM messages WHERE mailbox = ?" % (unseen,), (*params, recentUid, self._id)).fetchone()
        counts = MailboxCounts(*row, uidnext=uidNext)
        self._countsCache = (version, counts)
        return counts

    def search(self, term, limit=None):
        condition, params = term.sql()
        self._row("id")
        return self._conn.execute(
            "SELECT uid, modseq FROM messages WHERE mailbox = ? AND (%s) ORDER BY uid LIMIT ?" % (condition,),
            (self._id, *params, -1 if limit is None else limit)).fetchall()

    def openMessage(self, uid, location=None):
        """
        @param location: where L{locatedMessages} found the file, or
            C{None} to look it up.
        """
        if location is not None:
            path, subdir, filename, crlf, base = location
        else:
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
        found = os.path.join(path, subdir, filename)
        missed = 0
        for _ in range(OPEN_ATTEMPTS):
            if found is not None:
                try:
                    f = open(found, "rb")
                except FileNotFoundError:
                    pass
                else:
                    return maildir.CRLFReader(f) if crlf else f
            elif missed == 2:
                break  # not found by two listings: gone (being expunged)
            # Renamed by another program (a flag change in another
            # process) since we looked: find it by base, again if it is
            # renamed once more between the listing and the open, or once
            # more if a listing missed it (a folder read while an entry is
            # renamed in it may leave the entry out).
            found = self._locate(path, base)
            missed += found is None
        raise NoSuchMessage(uid)

    def _locate(self, path, base):
        """
        Find the file of the message C{base} when it is not where the index
        says: renamed by another program, or still staged in C{tmp/} by a
        COPY or MOVE that committed (see L{gateway.store.transfer}).
        """
        staged = os.path.join(path, "tmp", base)
        if os.path.exists(staged):
            return staged
        # new/ first: a file moves from new/ to cur/ (its first flag), never
        # back, so one moving meanwhile is found in one or the other.
        for subdir in ("new", "cur"):
            try:
                names = os.listdir(os.path.join(path, subdir))
            except FileNotFoundError:
                continue
            for name in names:
                if maildir.splitName(name)[0] == base:
                    return os.path.join(path, subdir, name)
        return None

    def claimRecent(self, below=None):
        validity, recent, uidNext = self._row("uidvalidity, recentuid, uidnext")
        claims = self._store.recentClaims
        if below is not None:
            uidNext = min(uidNext, below)
        if claims.floor(self._id, validity) >= uidNext or claims.first(self._id, validity, recent) >= uidNext:
            return set()  # without a lock: every session asks after a delivery
        try:
            first = claims.claim(self._id, validity, recent, uidNext)
        except sqlite3.Error as e:
            # A full disk: opening a mailbox must not need a write (the
            # user is opening it to make room); this session sees the
            # messages as recent and leaves the claim to the next one.
            if not isStorageFull(e):
                raise
            return self.unclaimedRecent(below=below)
        return self._uidsFrom(first, uidNext)

    def unclaimedRecent(self, below=None):
        validity, recent, uidNext = self._row("uidvalidity, recentuid, uidnext")
        if below is not None:
            uidNext = min(uidNext, below)
        return self._uidsFrom(self._store.recentClaims.first(self._id, validity, recent), uidNext)

    def _uidsFrom(self, first, end):
        if first >= end:
            return set()
        return {row[0] for row in self._conn.execute(
            "SELECT uid FROM messages WHERE mailbox = ? AND uid >= ? AND uid < ?", (self._id, first, end))}

    # -- writing ---------------------------------------------------------------

    def _checkQuota(self, additional):
        if self._store.quota is not None:
            self._store.quota.check(additional)

    def appendMessage(self, source, flags=(), internalDate=None):
        if isinstance(source, (bytes, bytearray, memoryview)):
            self._checkQuota(len(source))
        mtime = internalDate.timestamp() if internalDate is not None else None
        return self.commitMessage(self.prepareMessage(source, mtime=mtime), flags)

    def prepareMessage(self, source, measure=None, mtime=None, sync=True):
        """
        The slow half of L{appendMessage}: put the message into the
        mailbox's C{tmp/}, durable, and measure it.  It reads the index only
        through the calling thread's own connection and tells no listener,
        so it may run in a worker thread; L{commitMessage} (in the reactor
        thread) then makes it a message.

        @param source: C{bytes} or a binary file object to write; or the
            path (C{str}) of a complete, fsync'd file, which is hard-linked
            (copied where links are not possible) and must not change.
        @param measure: the L{maildir.Measure} of a C{source} path, when the
            caller has it (several mailboxes get one file); measured here
            otherwise.
        @param mtime: POSIX time for the internal date of a written message.
        @param sync: fsync a written message now; when false,
            L{commitMessage} does, in the index writer.
        @return: a L{PreparedMessage}.
        """
        tmpDir = os.path.join(self._path(), "tmp")
        if isinstance(source, str):
            if measure is None:
                measure = maildir.measureFile(source)
            tmpPath = maildir.linkTemporary(tmpDir, source)
            return PreparedMessage(tmpPath, measure, structures=structures.compute(source, tmpPath, measure))
        tmpPath, measure = maildir.writeTemporary(tmpDir, source, mtime, sync)
        octets = None if sync or not isinstance(source, (bytes, bytearray, memoryview)) else bytes(source)
        return PreparedMessage(tmpPath, measure, mtime, sync, structures.compute(source, tmpPath, measure), octets)

    def commitMessage(self, prepared, flags=()):
        """
        The quick half of L{appendMessage}: check the quota, then move a
        L{PreparedMessage} of this mailbox into C{new/} or C{cur/} and add it
        to the index, in one transaction.  The prepared file is gone
        afterwards, whatever happens.

        @return: the new UID.
        @raise gateway.errors.QuotaExceeded:
        """
        flags = normalizeFlags(flags)
        path = self._path()
        tmpPath, measure = prepared.path, prepared.measure
        renamed = False
        # In the index writer, a small message's octets go into the index in
        # place of its file's fsync and its folder's (gateway.store.redo).
        unsynced = self._store._unsyncedGroup() if prepared.octets is not None else None
        try:
            self._checkQuota(measure.rawSize)
            if unsynced is None:
                prepared.sync()
            mtime = prepared.mtime
            if mtime is None:
                mtime = os.stat(tmpPath).st_mtime
            base = maildir.newBase(measure.rawSize, measure.size)
            with index.transaction(self._conn):
                subdir, name = self._place(base, flags, folder=path)
                target = os.path.join(path, subdir, name)
                uid = self._takeUid()
                modseq = index.bumpModSeq(self._conn, self._id)
                self._expect((subdir, name))
                os.rename(tmpPath, target)
                renamed = True
                group = self._store._currentGroup()
                if group is not None:
                    # The group's commit may still fail.
                    group.ifRolledBack(maildir.removeQuietly, target)
                try:
                    if unsynced is None:
                        self._store._syncFolder(os.path.join(path, subdir))
                    self._conn.execute(
                        "INSERT INTO messages (mailbox, uid, base, subdir, filename, flags, internaldate,"
                        " size, rawsize, crlf, modseq, headers, emailid, threadid)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (self._id, uid, base, subdir, name, index.encodeFlags(flags), mtime, measure.size,
                         measure.rawSize, int(measure.needsCRLF), modseq, measure.headers,
                         *objectid.idsOf(measure)))
                    index.addUsage(self._conn, measure.rawSize)
                    if prepared.structures:
                        structures.store(self._conn, self._id, uid, prepared.structures)
                    if unsynced is not None:
                        unsynced.noteRedo(redo.record(self._conn, self._id, base, prepared.octets))
                    self._recordFolders(path)
                except BaseException:
                    maildir.removeQuietly(target)
                    raise
        finally:
            if not renamed:
                # Renamed, it is gone from tmp/: an unlink would only fail
                # (a system call in the writers' lock, each APPEND).
                maildir.removeQuietly(tmpPath)
        self._changed()
        self._store._added(self, [uid])
        return uid

    def appendMessageLater(self, source, flags=(), internalDate=None):
        """
        L{appendMessage} off the reactor thread: the file is written and
        fsync'd in the thread pool (L{prepareMessage}), then moved into
        place and given its index row by the store's index writer in a
        group with other sessions' writes (L{commitMessageLater}), so the
        reactor never waits for the disk or for another process's lock.
        A message of at most L{INLINE_APPEND} bytes in memory is written
        here, to the page cache, and its octets recorded in the index by
        the writer (L{gateway.store.redo}).

        @return: a L{Deferred} firing with the new UID once the message is
            durable (its row and octets in the index; or its file, its
            folder and its row), failing with
            L{gateway.errors.QuotaExceeded} and the like.
        """
        if isinstance(source, (bytes, bytearray, memoryview)):
            try:
                self._checkQuota(len(source))
            except Exception:
                return fail()
        mtime = internalDate.timestamp() if internalDate is not None else None
        if isinstance(source, (bytes, bytearray, memoryview)) and len(source) <= INLINE_APPEND:
            try:
                prepared = self.prepareMessage(source, None, mtime, sync=False)
            except Exception:
                return fail()
            return self.commitMessageLater(prepared, flags)
        prepared = self._store._deferToThread(self.prepareMessage, source, None, mtime)
        return prepared.addCallback(self.commitMessageLater, flags)

    def appendMessagesLater(self, messages, finish=None):
        """
        Several messages, all or none (IMAP MULTIAPPEND): each is written
        in the thread pool, then all are committed in one write of the
        store's index writer, so that a crash too leaves all or none.

        @param messages: C{[(source, flags, internalDate)]}, as for
            L{appendMessage}.
        @param finish: see L{commitMessagesLater}.
        @return: a L{Deferred} firing with their UIDs once durable.
        """
        try:
            self._checkQuota(sum(len(source) for source, _flags, _date in messages
                                 if isinstance(source, (bytes, bytearray, memoryview))))
        except Exception:
            return fail()
        prepared = [self._store._deferToThread(self.prepareMessage, source, None,
                                               None if date is None else date.timestamp())
                    for source, _flags, date in messages]

        def commit(results):
            ready = [value for ok, value in results if ok]
            failures = [value for ok, value in results if not ok]
            if failures:
                for message in ready:
                    message.discard()
                return failures[0]
            pairs = [(message, flags) for message, (_source, flags, _date) in zip(ready, messages, strict=True)]
            return self.commitMessagesLater(pairs, finish)
        return DeferredList(prepared, consumeErrors=True).addCallback(commit)

    def commitMessagesLater(self, pairs, finish=None):
        """
        L{commitMessage} of several prepared messages in one write of the
        store's index writer: all or none.

        @param pairs: C{[(prepared, flags)]}.
        @param finish: C{finish(uids)}, called in the same write once the
            messages have their rows (what goes with them in the index:
            a viewer's own C{\\Seen}, properties carried from a copy's
            source), or C{None}.
        @return: a L{Deferred} firing with their UIDs once durable.
        """
        def write(conn, group):
            try:
                uids = [self.commitMessage(message, flags) for message, flags in pairs]
                if finish is not None:
                    finish(uids)
                return uids
            except BaseException:
                # (The committed ones are undone with the write.)
                for message, _flags in pairs:
                    message.discard()
                raise
        return self._store._write(write)

    def commitMessageLater(self, prepared, flags=()):
        """
        L{commitMessage} by the store's index writer.

        @return: a L{Deferred} firing with the new UID once it is durable.
        """
        return self._store._write(lambda conn, group: self.commitMessage(prepared, flags),
                                  before=None if prepared.synced or prepared.octets is not None else prepared.sync)

    def setFlagsLater(self, uids, flags, mode, unchangedSince=None):
        """
        L{setFlags} by the store's index writer.

        @return: a L{Deferred} firing with what L{setFlags} returns once
            the change is durable.
        """
        if mode not in ("+", "-", "="):
            return fail(ValueError("mode must be '+', '-' or '='"))
        return self._store._write(lambda conn, group: self.setFlags(uids, flags, mode, unchangedSince),
                                  makesRoom=True)

    def expungeLater(self, uids=None):
        """
        L{expunge} by the store's index writer, when a message it would
        expunge has C{\\Deleted} now: else nothing waits for the writer (under
        imaptest's mix, most EXPUNGEs find the messages already gone).

        @return: a L{Deferred} firing with the expunged UIDs once durable.
        """
        try:
            if not self._anyDeleted(uids):
                return succeed([])
        except Exception:
            return fail()
        return self._store._write(lambda conn, group: self.expunge(uids), makesRoom=True)

    def _anyDeleted(self, uids=None):
        """
        Whether a message of this mailbox (of C{uids}, when given) has
        C{\\Deleted} in the last committed state: a read, without the write
        lock.  What a session flagged before has committed (its STORE was
        answered), so an EXPUNGE that finds none may answer at once.
        """
        stamp = self._store.indexStamp() if uids is None else None
        if stamp is not None and stamp == self._noneDeletedAt:
            return False  # nobody committed since none was found
        self._row("id")
        found = bool(self._deletedRows("uid, flags", uids, limit=1))
        if uids is None:
            self._noneDeletedAt = None if found else stamp
        return found

    def _deletedRows(self, columns, uids=None, limit=None):
        """
        The rows (C{columns}, ending with C{flags}) of the messages with
        C{\\Deleted}, of C{uids} when given, in UID order.
        """
        if uids is None:
            # The pattern is in the statement's text: a LIKE with a bound
            # pattern is prepared again at every run (SQLite's plan depends
            # on the pattern), 1.2% of the reactor thread under imaptest.
            rows = self._conn.execute(
                "SELECT %s FROM messages WHERE mailbox = ? AND ' ' || flags || ' ' LIKE '%% \\Deleted %%'"
                " ORDER BY uid LIMIT ?" % (columns,),
                (self._id, -1 if limit is None else limit)).fetchall()
        else:
            rows = self._select(columns, uids)
        rows = [row for row in rows if "\\Deleted" in index.decodeFlags(row[-1])]
        return rows if limit is None else rows[:limit]

    def copyToLater(self, uids, destination):
        """
        L{copyTo} by the store's index writer.

        @return: a L{Deferred} firing with the C{(source, destination)} UID
            pairs once the copies are durable.
        """
        return self._store._write(lambda conn, group: self._transfer(uids, destination, move=False))

    def moveToLater(self, uids, destination):
        """
        L{moveTo} by the store's index writer.

        @return: a L{Deferred} firing with the C{(source, destination)} UID
            pairs once the move is durable.
        """
        return self._store._write(lambda conn, group: self._transfer(uids, destination, move=True))

    def _place(self, base, flags, current="", folder=None):
        """
        Where a message file with these flags belongs (inside a write
        transaction): C{new/} under its base while it has no flag that a
        file name shows, else C{cur/} with the letters of its system flags
        and of its keywords (L{_keywordLetters}), plus the letters of
        C{current} (its file name now) that this mailbox's keyword file
        does not know; a message in C{cur/} stays there.

        @param folder: the mailbox folder, if known (saves a look at the
            index).
        @return: C{(subdir, filename)}.
        """
        keywords = [f for f in flags if not maildir.isSystemFlag(f)]
        letters = self._keywordLetters(keywords, folder)
        known = set(letters.values())
        extra = "".join(letters[k] for k in keywords if k in letters)
        extra += "".join(c for c in maildir.extraLetters(maildir.splitName(current)[1]) if c not in known)
        if not extra and not any(maildir.isSystemFlag(f) for f in flags) and ":" not in current:
            return "new", base
        return "cur", maildir.fileName(base, flags, extra)

    def _keywordLetters(self, keywords, folder=None):
        """
        The letters of C{keywords} in this mailbox's C{dovecot-keywords}
        file (Dovecot's format: line I{n} is C{"n keyword"}, letter I{n} is
        C{'a' + n}), adding those it lacks while letters are left (26):
        file names then carry keywords too, and an index rebuilt from the
        Maildir, or a Dovecot given it, gets them back.  Call inside a
        write transaction: the index lock keeps our processes from writing
        the file at once.

        @return: C{{keyword: letter}} for every keyword in the file.
        """
        folder = self._path() if folder is None else folder
        path = os.path.join(folder, maildir.KEYWORDS_FILE)
        try:
            st = os.stat(path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if self._keywordCache is None or self._keywordCache[0] != stamp:
            byLetter = scan.readDovecotKeywords(path) if stamp is not None else {}
            self._keywordCache = (stamp, {keyword: letter for letter, keyword in byLetter.items()})
        letters = self._keywordCache[1]
        missing = [k for k in dict.fromkeys(keywords) if k not in letters]
        if not missing:
            return letters
        used = set(letters.values())
        free = [letter for letter in string.ascii_lowercase if letter not in used]
        if not free:
            return letters
        letters = dict(letters)
        for keyword, letter in zip(missing, free, strict=False):
            letters[keyword] = letter
        text = "".join("%d %s\n" % (ord(letter) - ord("a"), keyword)
                       for keyword, letter in sorted(letters.items(), key=lambda item: item[1]))
        temporary, _ = maildir.writeTemporary(os.path.join(folder, "tmp"), text.encode("utf-8"))
        os.rename(temporary, path)
        self._keywordCache = None
        return letters

    def setFlags(self, uids, flags, mode, unchangedSince=None):
        if mode not in ("+", "-", "="):
            raise ValueError("mode must be '+', '-' or '='")
        return index.roomPermitting(self._conn, self._setFlags, uids, flags, mode, unchangedSince)

    def _setFlags(self, uids, flags, mode, unchangedSince):
        flags = normalizeFlags(flags)
        changed, failed = [], []
        renamedIn, renamed = set(), []
        with index.transaction(self._conn):
            path = self._path()  # under the write lock: raises if the mailbox is gone
            rows = self._select("uid, base, subdir, filename, flags, modseq, internaldate, size", uids)
            modseq = None
            changedInfos = []
            for uid, base, subdir, filename, flagText, oldModSeq, internalDate, size in rows:
                if unchangedSince is not None and oldModSeq > unchangedSince:
                    failed.append(uid)
                    continue
                old = index.decodeFlags(flagText)
                new = old | flags if mode == "+" else old - flags if mode == "-" else flags
                if new == old:
                    continue
                if modseq is None:
                    modseq = index.bumpModSeq(self._conn, self._id)
                newSubdir, newName = self._place(base, new, filename, folder=path)
                if (newSubdir, newName) != (subdir, filename):
                    source = os.path.join(path, subdir, filename)
                    self._expect((subdir, filename), (newSubdir, newName))
                    try:
                        os.rename(source, os.path.join(path, newSubdir, newName))
                    except FileNotFoundError:
                        source = self._locate(path, base)
                        if source is None:
                            newSubdir, newName = subdir, filename
                        else:
                            os.rename(source, os.path.join(path, newSubdir, newName))
                    renamedIn.update((subdir, newSubdir))
                    renamed.append(base)
                newText = index.encodeFlags(new)
                self._conn.execute(
                    "UPDATE messages SET subdir = ?, filename = ?, flags = ?, modseq = ?"
                    " WHERE mailbox = ? AND uid = ?",
                    (newSubdir, newName, newText, modseq, self._id, uid))
                changed.append(uid)
                # As the row now is (without its header block): not read again.
                changedInfos.append(MessageInfo(uid, newText, internalDate, size, modseq, headers=None))
            # The new names durable before the reply: a scan after a power
            # cut must not find the old ones beside acknowledged flags.
            self._syncRenamed(path, renamedIn, renamed)
            if changed:
                self._recordFolders(path)
        if changed:
            self._changed()
        return changedInfos, failed

    def expunge(self, uids=None):
        return index.roomPermitting(self._conn, self._expunge, uids)

    def _expunge(self, uids):
        with index.transaction(self._conn):
            path = self._path()  # under the write lock: raises if the mailbox is gone
            rows = self._deletedRows("uid, subdir, filename, rawsize, flags", uids)
            if not rows:
                return []
            self._removeRows(path, rows, index.bumpModSeq(self._conn, self._id))
            # The moves durable before the reply: a file back after a power
            # cut would be scanned in as a new message.
            self._syncRenamed(path, {row[1] for row in rows}, [maildir.splitName(row[2])[0] for row in rows])
            self._recordFolders(path)
        self._changed()
        return [row[0] for row in rows]

    def _syncRenamed(self, path, subdirs, bases):
        """
        Make durable the renames (or moves aside) of the files of messages
        C{bases} out of sub-folders C{subdirs} of C{path}: in the index
        writer, recorded in the index (L{gateway.store.redo}); else by the
        folders' fsync (L{MailStore._syncFolder}).
        """
        group = self._store._unsyncedGroup()
        if group is not None:
            if bases:
                group.noteRedo(redo.recordMany(self._conn, self._id, bases))
            return
        for subdir in sorted(subdirs):
            self._store._syncFolder(os.path.join(path, subdir))

    def _removeRows(self, path, rows, modseq, unlink=True):
        """
        Delete index rows C{(uid, subdir, filename, rawsize, ...)} and log
        them as expunged (inside a transaction).
        """
        group = self._store._currentGroup() if unlink else None
        for uid, subdir, filename, rawSize, *_rest in rows:
            if unlink:
                self._expect((subdir, filename))
                if group is None:
                    maildir.removeQuietly(os.path.join(path, subdir, filename))
                else:
                    aside = maildir.setAside(path, os.path.join(subdir, filename))
                    if aside is not None:
                        group.ifRolledBack(os.rename, aside, os.path.join(path, subdir, filename))
                        group.afterRelease(maildir.removeQuietly, aside)
            self._conn.execute("DELETE FROM messages WHERE mailbox = ? AND uid = ?", (self._id, uid))
            self._conn.execute("INSERT INTO expunged (mailbox, uid, modseq) VALUES (?, ?, ?)",
                               (self._id, uid, modseq))
            index.addUsage(self._conn, -rawSize)

    def _transfer(self, uids, destination, move):
        return transfer.transfer(self, uids, destination, move)

    def copyTo(self, uids, destination):
        return self._transfer(uids, destination, move=False)

    def moveTo(self, uids, destination):
        return self._transfer(uids, destination, move=True)
