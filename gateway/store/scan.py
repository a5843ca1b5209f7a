# -*- test-case-name: tests.test_store_rescan -*-
"""
Reconciling an account's index (L{gateway.store.index}) with its Maildir:
L{scanMailbox} indexes files that other programs (an MDA, Dovecot, a
restore) added, drops files that were removed and takes over changed flag
letters; a copied-in Maildir's C{dovecot-uidlist} and C{dovecot-keywords}
give their UIDs and keywords (L{readDovecotUidList},
L{readDovecotKeywords}).

A directory's stored mtime is trusted only if it was recorded at least
L{DIRTY_WINDOW_NS} nanoseconds after the directory last changed
(L{dirtyDirectories}): a change made in the same timestamp tick as our
C{stat} would otherwise go unseen.  A dirty (recently changed) directory is
simply scanned again.
"""

import os
import sqlite3
import time

from gateway.errors import NoSuchMailbox, isStorageFull
from gateway.store import index, journal, maildir, objectid, properties, redo

DIRTY_WINDOW_NS = 2 * 10**9
#: New files indexed per transaction by L{scanMailbox}.
SCAN_BATCH = 2000


# ---------------------------------------------------------------------------
# Dovecot's files in a copied-in Maildir


def readDovecotUidList(path):
    """
    Read C{dovecot-uidlist} (versions 1 and 3).

    @return: C{(uidValidity, nextUid, {base: uid})}, or C{None} if there is
        no usable file.
    """
    try:
        with open(path, "r", encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    if not lines:
        return None
    header = lines[0].split()
    uidValidity = nextUid = None
    try:
        if header[0] == "1" and len(header) >= 3:
            uidValidity, nextUid = int(header[1]), int(header[2])
        elif header[0] == "3":
            for field in header[1:]:
                if field[:1] == "V":
                    uidValidity = int(field[1:])
                elif field[:1] == "N":
                    nextUid = int(field[1:])
        else:
            return None
    except (ValueError, IndexError):
        return None
    uids = {}
    for line in lines[1:]:
        if header[0] == "1":
            uidText, _, name = line.partition(" ")
        else:
            uidText, _, rest = line.partition(" ")
            _, _, name = rest.partition(":")
        try:
            uid = int(uidText)
        except ValueError:
            continue
        name = name.strip()
        if name:
            uids[maildir.splitName(name)[0]] = uid
    if not uidValidity:
        return None
    return uidValidity, max(nextUid or 1, max(uids.values(), default=0) + 1), uids


def readDovecotKeywords(path):
    """
    @return: C{{letter: keyword}} from C{dovecot-keywords}, or C{{}}.
    """
    keywords = {}
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            for line in f:
                number, _, name = line.strip().partition(" ")
                if number.isdigit() and name and int(number) < 26:
                    keywords[chr(ord("a") + int(number))] = name
    except OSError:
        pass
    return keywords


# ---------------------------------------------------------------------------
# Reconciling the index with the Maildir


#: Where Linux says which boot the machine is in (a new value each start).
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
#: The C{meta} key of the boot in which the index was last opened.
BOOT_KEY = "boot"


def bootId():
    """
    @return: the running boot's identifier, or C{None} where there is none.
    """
    try:
        with open(BOOT_ID_PATH, "rb") as f:
            # Bytes: a text file's codec is looked up in the standard
            # library, which a server that gave up root may not read.
            return f.read().strip().decode("ascii", "replace") or None
    except OSError:
        return None


def distrustFoldersAfterBoot(conn, boot=None, root=None):
    """
    The first time the index is opened since the machine started: mark
    every mailbox's recorded folder mtimes as not to be trusted, so that
    the first look at each mailbox lists its folders (L{dirtyDirectories}).

    A write group's folders are fsync'd after its C{COMMIT}, once the
    writers' lock is let go (L{gateway.store.writer}): a power cut in
    between can leave a committed index that says what a folder does not
    hold (a message whose file never reached C{new/}, a flag change whose
    rename was lost, an expunged file still in C{cur/}), next to recorded
    mtimes that match the folder when its previous change came in the same
    clock tick.  A listing then reconciles them.  A process that is killed
    loses nothing the kernel was given, so only a new boot needs it.

    On a full disk nothing is written (opening a mailbox must not need
    room: its user may be opening it to make some), and the next open tries
    again.

    The message files that the index writer left unsynced, recorded in
    the index, are then made what the index says (L{redo.replay}), before
    any listing.

    @param boot: the running boot (L{bootId} by default).
    @param root: the account's C{mail/} folder, for L{redo.replay}; none is
        made without it.
    @return: whether the folders were marked.
    """
    boot = bootId() if boot is None else boot
    if boot is None:
        return False
    known = "SELECT value FROM meta WHERE key = ?"
    row = conn.execute(known, (BOOT_KEY,)).fetchone()
    if row is not None and row[0] == boot:
        return False
    try:
        with index.writersTurn(conn), index.transaction(conn):
            row = conn.execute(known, (BOOT_KEY,)).fetchone()
            if row is not None and row[0] == boot:
                return False  # another process did it meanwhile
            conn.execute("UPDATE mailboxes SET newsynced = newmtime, cursynced = curmtime")
            if root is not None:
                redo.replay(conn, root)
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (BOOT_KEY, boot))
    except sqlite3.OperationalError as e:
        if not isStorageFull(e):
            raise
        return False
    return True


def folderMtime(path):
    """
    @return: the mtime of folder C{path} in nanoseconds, or C{None}.
    """
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return None


_stat = folderMtime


def dirtyDirectories(row, path, now=None):
    """
    Which of C{new}, C{cur} need a scan: changed since the stored mtime, or
    recorded too soon after a change to be trusted.

    @param row: C{(newmtime, newsynced, curmtime, cursynced)} of the mailbox.
    @param path: the mailbox folder.
    @return: C{list} of C{(subdir, currentMtime)}.
    """
    result = []
    for subdir, stored, synced in (("new", row[0], row[1]), ("cur", row[2], row[3])):
        current = _stat(os.path.join(path, subdir))
        if current is None:
            continue
        if current != stored or synced - stored < DIRTY_WINDOW_NS:
            result.append((subdir, current))
    return result


def _listDirectory(path):
    try:
        return [name for name in os.listdir(path) if not name.startswith(".")]
    except FileNotFoundError:
        return []


def scanMailbox(conn, mailboxId, path, names=None):
    """
    Reconcile one mailbox's index with its Maildir: index files that other
    programs added (moving them from C{new/} to C{cur/} as Dovecot does), drop
    files that were removed, and take flag letters that were changed.  Safe
    to run in a thread (give it its own connection) and concurrently with
    other processes: the file system is read without the lock, then every
    change is checked again under the write lock before it is applied.

    @param names: C{None} to list the folders that changed (by their
        mtimes), or an iterable of C{(subdir, filename)} to look at those
        files only (what inotify reported): then the cost is in the number
        of names, not of messages, and the folder mtimes are not recorded.
    @return: C{True} if the index changed.
    """
    row = conn.execute(
        "SELECT newmtime, newsynced, curmtime, cursynced, indexed FROM mailboxes WHERE id = ?",
        (mailboxId,)).fetchone()
    if row is None:
        return False
    if not maildir.isMaildir(path) or not maildir.completeMaildir(path):
        return False
    targeted = names is not None and row[4]
    if targeted:
        scan = []
        subdirs = ["new", "cur"]
    else:
        scan = dirtyDirectories(row, path)
        if not scan:
            if row[4]:
                return False
            scan = [(subdir, _stat(os.path.join(path, subdir))) for subdir in ("new", "cur")]
            if any(mtime is None for _subdir, mtime in scan):
                # Gone meanwhile (renamed aside by a DELETE or RENAME under
                # way): still unindexed, the next scan looks again.
                return False
        subdirs = [subdir for subdir, _ in scan]
    now = time.time_ns()

    # Compare file names (cheap set operations); only differences are
    # looked at by base name.
    onDisk = {}
    missing = {}
    for subdir in subdirs:
        if targeted:
            given = {name for sub, name in names if sub == subdir and not name.startswith(".")}
            present = {name for name in given if os.path.exists(os.path.join(path, subdir, name))}
            known = set()
            for name in given:
                found = conn.execute("SELECT filename FROM messages WHERE mailbox = ? AND base = ? AND subdir = ?",
                                     (mailboxId, maildir.splitName(name)[0], subdir)).fetchone()
                if found is not None and found[0] == name:
                    known.add(name)
            onDiskNames = present
        else:
            onDiskNames = set(_listDirectory(os.path.join(path, subdir)))
            known = {row[0] for row in conn.execute(
                "SELECT filename FROM messages WHERE mailbox = ? AND subdir = ?", (mailboxId, subdir))}
        for name in onDiskNames - known:
            base = maildir.splitName(name)[0]
            if base not in onDisk or subdir == "cur":
                onDisk[base] = (subdir, name)
        for name in known - onDiskNames:
            missing[maildir.splitName(name)[0]] = (subdir, name)

    removed = [base for base in missing if base not in onDisk]
    changed = [base for base in onDisk if base in missing]
    added = [base for base in onDisk if base not in missing]
    if (len(subdirs) < 2 or targeted) and added:
        # A file may have moved from the other folder.
        moved = {base for base in added if conn.execute(
            "SELECT 1 FROM messages WHERE mailbox = ? AND base = ?", (mailboxId, base)).fetchone()}
        changed.extend(moved)
        added = [base for base in added if base not in moved]
    if targeted and not (removed or changed or added):
        # What inotify reported is in the index by now: most often another
        # worker's rename seen before its commit.  There is nothing to
        # record (the folder mtimes are not, for names).
        return False

    uidList = None
    keptProperties = {}
    keywordLetters = readDovecotKeywords(os.path.join(path, maildir.KEYWORDS_FILE))
    if not row[4]:
        uidList = readDovecotUidList(os.path.join(path, "dovecot-uidlist"))
        keptProperties = properties.readFile(path)  # a rebuilt index gets them back

    def sortKey(base):
        if uidList is not None and base in uidList[2]:
            return (0, uidList[2][base], base)
        head = base.split(".", 1)[0]
        return (1, int(head) if head.isdigit() else 0, base)

    # New files are read (the slow part, outside the lock) and indexed in
    # batches, each its own short transaction, so other writers wait at most
    # one batch.  Folder mtimes are recorded with the last batch only: after
    # a crash in between, the next scan picks up the rest.
    added.sort(key=sortKey)
    batches = [added[i:i + SCAN_BATCH] for i in range(0, len(added), SCAN_BATCH)] or [[]]
    changedAny = False
    for number, batch in enumerate(batches):
        measures = []
        for base in batch:
            subdir, name = onDisk[base]
            filePath = os.path.join(path, subdir, name)
            try:
                measures.append((base, maildir.measureFile(filePath), os.stat(filePath).st_mtime))
            except FileNotFoundError:
                continue
        batchChanged = None
        try:
            with index.writersTurn(conn), index.transaction(conn):
                removedAny = False
                if number == 0:
                    uidList, removedAny = _applyRemovals(conn, mailboxId, path, removed, changed, onDisk,
                                                         keywordLetters, uidList)
                addedAny = _applyAdditions(conn, mailboxId, path, measures, onDisk, keywordLetters, uidList)
                if keptProperties:
                    properties.restore(conn, mailboxId, keptProperties, [measure[0] for measure in measures])
                batchChanged = removedAny or addedAny
                _recordScan(conn, mailboxId, scan, now, number == len(batches) - 1)
        except sqlite3.Error as e:
            # A full disk: a scan that found nothing to change only failed
            # to note so (the next one looks again); mailboxes stay readable.
            if batchChanged is not False or not isStorageFull(e):
                raise
        changedAny |= batchChanged
    return changedAny


def _recordScan(conn, mailboxId, scan, now, last):
    """
    After the last batch of a scan: the mailbox is indexed, and its folders
    matched the index at the mtimes in C{scan}.
    """
    if not last:
        return
    conn.execute("UPDATE mailboxes SET indexed = 1 WHERE id = ?", (mailboxId,))
    for subdir, mtime in scan:
        # What we saw before listing; if we moved files ourselves
        # the folder looks changed and is scanned once more.
        conn.execute("UPDATE mailboxes SET %smtime = ?, %ssynced = ? WHERE id = ?"
                     % (subdir, subdir), (mtime, now, mailboxId))


def messageFileExists(path, base, subdir, filename):
    """
    Is the file of an indexed message there, or still staged in C{tmp/}
    under its base by a COPY or MOVE that committed and is about to put
    it in place?  C{tmp/} is looked at first: the file moves from there.
    """
    return (os.path.exists(os.path.join(path, "tmp", base))
            or os.path.exists(os.path.join(path, subdir, filename)))



def _modSeqTaker(conn, mailboxId):
    taken = []

    def take():
        if not taken:
            taken.append(index.bumpModSeq(conn, mailboxId))
        return taken[0]
    return take


def _applyRemovals(conn, mailboxId, path, removed, changed, onDisk, keywordLetters, uidList):
    """
    Under the lock: take a C{dovecot-uidlist} into use for a mailbox never
    indexed, drop files that are gone, take over changed flag letters.

    @return: C{(uidList, changed)}: the uidlist if it is to be used (else
        C{None}), and whether the index changed.
    """
    mailbox = conn.execute(
        "SELECT uidnext, indexed, (SELECT COUNT(*) FROM messages WHERE mailbox = ?)"
        " FROM mailboxes WHERE id = ?", (mailboxId, mailboxId)).fetchone()
    if mailbox is None:
        # Deleted while the folders were listed (a first open's scan in the
        # thread pool, then a DELETE by the index writer).
        raise NoSuchMailbox("mailbox was deleted")
    uidNext, wasIndexed, count = mailbox
    takeModSeq = _modSeqTaker(conn, mailboxId)
    if uidList is not None and not wasIndexed and count == 0:
        conn.execute("UPDATE mailboxes SET uidvalidity = ?, uidnext = ?, recentuid = 1 WHERE id = ?",
                     (uidList[0], max(uidNext, uidList[1]), mailboxId))
    else:
        uidList = None
    if removed:
        # A file that seems gone may be the source of a MOVE whose process
        # died inside its transaction: put it back first.
        journal.recoverJournalsLocked(conn, index.indexRoot(conn))
    usage = 0
    changedAny = False
    for base in removed:
        current = conn.execute(
            "SELECT uid, subdir, filename, rawsize FROM messages WHERE mailbox = ? AND base = ?",
            (mailboxId, base)).fetchone()
        if current is None or messageFileExists(path, base, current[1], current[2]):
            continue
        conn.execute("DELETE FROM messages WHERE mailbox = ? AND uid = ?", (mailboxId, current[0]))
        conn.execute("INSERT INTO expunged (mailbox, uid, modseq) VALUES (?, ?, ?)",
                     (mailboxId, current[0], takeModSeq()))
        usage -= current[3]
        changedAny = True
    index.addUsage(conn, usage)

    for base in changed:
        subdir, name = onDisk[base]
        current = conn.execute(
            "SELECT uid, subdir, filename, flags FROM messages WHERE mailbox = ? AND base = ?",
            (mailboxId, base)).fetchone()
        if current is None or (current[1], current[2]) == (subdir, name):
            continue
        if not os.path.exists(os.path.join(path, subdir, name)):
            continue
        oldFlags = index.decodeFlags(current[3])
        info = maildir.splitName(name)[1]
        # Keywords with a letter are what the name says; others stay.
        lettered = set(keywordLetters.values())
        keywords = {f for f in oldFlags if not maildir.isSystemFlag(f) and f not in lettered}
        keywords |= {keywordLetters[c] for c in maildir.extraLetters(info) if c in keywordLetters}
        newFlags = frozenset(keywords) | maildir.systemFlagsFromInfo(info)
        if newFlags != oldFlags:
            conn.execute("UPDATE messages SET subdir = ?, filename = ?, flags = ?, modseq = ?"
                         " WHERE mailbox = ? AND uid = ?",
                         (subdir, name, index.encodeFlags(newFlags), takeModSeq(), mailboxId, current[0]))
            changedAny = True
        else:
            conn.execute("UPDATE messages SET subdir = ?, filename = ? WHERE mailbox = ? AND uid = ?",
                         (subdir, name, mailboxId, current[0]))
    return uidList, changedAny


def _applyAdditions(conn, mailboxId, path, measures, onDisk, keywordLetters, uidList):
    """
    Under the lock: index new files (moving them from C{new/} to C{cur/}).

    @return: C{True} if any was indexed.
    """
    if not measures:
        return False
    uidNext = conn.execute("SELECT uidnext FROM mailboxes WHERE id = ?", (mailboxId,)).fetchone()[0]
    takeModSeq = _modSeqTaker(conn, mailboxId)
    usage = 0
    changedAny = False
    for base, measure, mtime in measures:
        if conn.execute("SELECT 1 FROM messages WHERE mailbox = ? AND base = ?",
                        (mailboxId, base)).fetchone():
            continue
        subdir, name = onDisk[base]
        info = maildir.splitName(name)[1]
        if subdir == "new":
            target = name if info else name + ":2,"
            try:
                os.rename(os.path.join(path, "new", name), os.path.join(path, "cur", target))
            except FileNotFoundError:
                continue
            subdir, name = "cur", target
        elif not os.path.exists(os.path.join(path, subdir, name)):
            continue
        flags = set(maildir.systemFlagsFromInfo(info))
        flags |= {keywordLetters[c] for c in maildir.extraLetters(info) if c in keywordLetters}
        uid = None
        if uidList is not None:
            uid = uidList[2].get(base)
            if uid is not None and conn.execute(
                    "SELECT 1 FROM messages WHERE mailbox = ? AND uid = ?", (mailboxId, uid)).fetchone():
                uid = None
        if uid is None:
            uid = uidNext
        uidNext = max(uidNext, uid + 1)
        conn.execute(
            "INSERT INTO messages (mailbox, uid, base, subdir, filename, flags, internaldate, size,"
            " rawsize, crlf, modseq, headers, emailid, threadid)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (mailboxId, uid, base, subdir, name, index.encodeFlags(flags), mtime, measure.size,
             measure.rawSize, int(measure.needsCRLF), takeModSeq(), measure.headers, *objectid.idsOf(measure)))
        usage += measure.rawSize
        changedAny = True
    index.addUsage(conn, usage)
    conn.execute("UPDATE mailboxes SET uidnext = ? WHERE id = ?", (uidNext, mailboxId))
    return changedAny

