# -*- test-case-name: tests.test_store_mail -*-
"""
The account's mail index: one SQLite database per account
(C{mail/.gateway-index.sqlite}, WAL mode), shared by every process that
serves the account.

Why one database per account rather than one per mailbox: COPY and MOVE
between mailboxes, RENAME of a hierarchy and the account's usage sum are then
single transactions; WAL gives concurrent readers in other processes; every
write is a C{BEGIN IMMEDIATE} transaction, so a crash at any instant leaves
either the old or the new index.  The index can always be rebuilt from the
Maildir (L{scanMailbox}); what is lost then is UIDs (a new UIDVALIDITY
is taken), mailbox classes other than the defaults, and keywords past the
26 a mailbox's C{dovecot-keywords} file gives letters to (the others are
in the file names); EMAILID and THREADID come back, being derived from the
messages (L{gateway.store.objectid}).

Tables::

    meta(key, value)              schema version, usage sum, last UIDVALIDITY
    mailboxes(id, name, ...)      UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, recent
                                  boundary, class, special use, stored
                                  mtimes of new/ and cur/
    messages(mailbox, uid, ...)   file location, flags, dates, sizes, modseq,
                                  CRLF header block
    expunged(mailbox, uid, modseq)  for changesSince (QRESYNC-style)
    subscriptions(name)
    userflags(mailbox, user, uid, flags)  a viewer's own flags in another
                                  account's mailbox (\\Seen)
    msgprops(mailbox, uid, key, type, value)  stored message properties
    messages.emailid, .threadid   RFC 8474 ids, derived from the message
                                  (L{gateway.store.objectid})

The schema grows by ordered steps (L{MIGRATIONS}, counted in C{PRAGMA
user_version}): a feature appends a step; an older index is brought up to
date when opened.

A directory's stored mtime is trusted only if it was recorded at least
L{DIRTY_WINDOW} seconds after the directory last changed: a change made in
the same timestamp tick as our C{stat} would otherwise go unseen.  A dirty
(recently changed) directory is simply scanned again.
"""

import contextlib
import json
import os
import sqlite3
import time

from gateway.errors import isStorageFull
from gateway.store import maildir, objectid

BUSY_TIMEOUT_MS = 30000
DIRTY_WINDOW_NS = 2 * 10**9
#: New files indexed per transaction by L{scanMailbox}.
SCAN_BATCH = 2000
#: Next to the index: the last UIDVALIDITY handed out (survives index loss).
UIDVALIDITY_FILE = ".gateway-uidvalidity"

#: Beside the index (C{maildir.INDEX_NAME} with this suffix): octets kept
#: in reserve so that flagging and expunging, which make room, still work
#: on a full disk (see L{roomPermitting}).
RESERVE_SUFFIX = "-reserve"
RESERVE_SIZE = 256 * 1024
#: Next to the index: the journals of MOVEs in progress (L{writeJournal}).
JOURNAL_FOLDER = ".gateway-journal"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value
);
CREATE TABLE IF NOT EXISTS mailboxes (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL DEFAULT 1,
    highestmodseq INTEGER NOT NULL DEFAULT 1,
    recentuid INTEGER NOT NULL DEFAULT 1,
    class TEXT NOT NULL DEFAULT 'IPF.Note',
    specialuse TEXT,
    selectable INTEGER NOT NULL DEFAULT 1,
    indexed INTEGER NOT NULL DEFAULT 0,
    newmtime INTEGER NOT NULL DEFAULT 0,
    newsynced INTEGER NOT NULL DEFAULT 0,
    curmtime INTEGER NOT NULL DEFAULT 0,
    cursynced INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    mailbox INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    base TEXT NOT NULL,
    subdir TEXT NOT NULL,
    filename TEXT NOT NULL,
    flags TEXT NOT NULL DEFAULT '',
    internaldate REAL NOT NULL,
    size INTEGER NOT NULL,
    rawsize INTEGER NOT NULL,
    crlf INTEGER NOT NULL DEFAULT 0,
    modseq INTEGER NOT NULL,
    headers BLOB NOT NULL DEFAULT x''
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_uid ON messages (mailbox, uid);
CREATE UNIQUE INDEX IF NOT EXISTS messages_base ON messages (mailbox, base);
CREATE INDEX IF NOT EXISTS messages_modseq ON messages (mailbox, modseq);
CREATE TABLE IF NOT EXISTS expunged (
    mailbox INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS expunged_modseq ON expunged (mailbox, modseq);
CREATE TABLE IF NOT EXISTS subscriptions (
    name TEXT PRIMARY KEY
);
"""



def _createBase(conn):
    """
    Migration 1: the tables of the first wave.
    """
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('usage', 0)")
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('uidvalidity', 0)")


def _addUserFlags(conn):
    """
    Migration 2: flags kept per user in shared mailboxes (a viewer who is
    not the owner has their own C{\\Seen}, as Dovecot's private index and
    Cyrus do).
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS userflags (mailbox INTEGER NOT NULL, user TEXT NOT NULL,"
        " uid INTEGER NOT NULL, flags TEXT NOT NULL, PRIMARY KEY (mailbox, user, uid))")


#: The index schema as ordered steps: step I{n} (1-based) brings an index
#: at C{PRAGMA user_version} I{n - 1} to I{n}.  A feature that needs new
#: tables or columns appends a step (never edits one that has shipped); an
#: index written by an older version is brought up to date when opened, in
#: one transaction, and an index from a newer version is refused rather
#: than misread.
def _addProperties(conn):
    """
    Migration 3: stored message properties (XMAPI), see
    L{gateway.store.properties}.
    """
    from gateway.store.properties import addTable
    addTable(conn)


def _addObjectIds(conn):
    """
    Migration 4: each message's EMAILID and THREADID (RFC 8474), see
    L{gateway.store.objectid}.
    """
    from gateway.store.objectid import addColumns
    addColumns(conn)


MIGRATIONS = [
    _createBase,
    _addUserFlags,
    _addProperties,
    _addObjectIds,
]

SCHEMA_VERSION = len(MIGRATIONS)


class IndexTooNew(Exception):
    """
    The index was written by a newer version of gateway (its schema version
    is past the last migration this version knows).
    """


def migrate(conn, steps=None):
    """
    Apply the migrations an index at its C{user_version} still lacks, in
    one write transaction (so two processes opening an old index at once
    migrate it once).

    @return: the schema version the index is at now.
    @raise IndexTooNew: for an index from a newer version.
    """
    steps = MIGRATIONS if steps is None else steps
    if conn.execute("PRAGMA user_version").fetchone()[0] == len(steps):
        return len(steps)
    with transaction(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(steps):
            raise IndexTooNew("index schema version %d; this gateway knows %d" % (version, len(steps)))
        for step in steps[version:]:
            step(conn)
        conn.execute("PRAGMA user_version = %d" % (len(steps),))
    return len(steps)


#: Columns of L{messages} that make an L{IMessageInfo}, in this order.
INFO_COLUMNS = "uid, flags, internaldate, size, modseq, headers"
INFO_COLUMNS_NO_HEADERS = "uid, flags, internaldate, size, modseq"


def connect(path):
    """
    Open (and create if needed) the index at C{path}.

    @return: an autocommit C{sqlite3.Connection}; use L{transaction} to write.
    """
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000.0,
                           check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = %d" % (BUSY_TIMEOUT_MS,))
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL: a UID once reported to a client is never handed out again, even
    # after a power failure.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = OFF")
    migrate(conn)
    return conn


@contextlib.contextmanager
def transaction(conn):
    """
    A write transaction (C{BEGIN IMMEDIATE}: the write lock is taken at once,
    so nothing read inside it is stale).  Inside a transaction already (a
    write run by the store's index writer, L{gateway.store.writer}, inside
    its group's), a savepoint: undone alone if it raises, committed with
    the group.
    """
    if conn.in_transaction:
        conn.execute("SAVEPOINT nested")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK TO nested")
            conn.execute("RELEASE nested")
            raise
        else:
            conn.execute("RELEASE nested")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        try:
            conn.execute("COMMIT")
        except BaseException:
            # A commit that failed (a full disk) may leave the transaction
            # open: the connection must take the next one.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def keepReserve(indexPath):
    """
    Best effort: make sure the reserve beside the index at C{indexPath}
    (C{RESERVE_SIZE} octets of zeros, named after the index so backups and
    the change watcher skip it) is there.  On a full disk it is given up
    to the writes that make room (see L{roomPermitting}).
    """
    path = indexPath + RESERVE_SUFFIX
    try:
        if os.path.getsize(path) >= RESERVE_SIZE:
            return
    except OSError:
        pass
    try:
        # Written, not fsync'd: the file system allocates (or reserves,
        # with delayed allocation) the blocks when they are written.
        with open(path, "wb") as f:
            f.write(b"\0" * RESERVE_SIZE)
    except OSError:
        maildir.removeQuietly(path)


def roomPermitting(conn, f, *args):
    """
    C{f(*args)}, a write that makes room or must work when the disk is
    full (flagging C{\\Deleted}, expunging).  When it fails with
    C{SQLITE_FULL}, the reserve beside the index is given up, the
    write-ahead log is checkpointed (the next write then reuses the log's
    space), and C{f} runs once more (an expunge has unlinked its files by
    then); the reserve is taken back when there is room again.  C{f} must
    be safe to run again after a failed commit.
    """
    try:
        return f(*args)
    except sqlite3.Error as e:
        if not isStorageFull(e):
            raise
    indexPath = makeRoom(conn)
    result = f(*args)
    keepReserve(indexPath)
    return result


def makeRoom(conn):
    """
    The disk is full: give up the reserve beside the index of C{conn} and
    checkpoint its write-ahead log (see L{roomPermitting}).

    @return: the index's path (for L{keepReserve} once there is room).
    """
    indexPath = conn.execute("PRAGMA database_list").fetchone()[2]
    maildir.removeQuietly(indexPath + RESERVE_SUFFIX)
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error:
        pass  # the retry tells
    return indexPath


@contextlib.contextmanager
def snapshot(conn):
    """
    A read transaction: several C{SELECT}s see one state of the index.
    """
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


def newUidValidity(conn):
    """
    A UIDVALIDITY never used before for this account, even by an index that
    was lost: time based, greater than the last one in the index and than the
    one recorded in C{.gateway-uidvalidity} next to the index (written before
    the transaction commits).  Call inside a transaction.
    """
    last = int(conn.execute("SELECT value FROM meta WHERE key = 'uidvalidity'").fetchone()[0])
    path = os.path.join(indexRoot(conn), UIDVALIDITY_FILE)
    try:
        with open(path, "r") as f:
            last = max(last, int(f.read().strip() or "0", 16))
    except (OSError, ValueError):
        pass
    value = max(int(time.time()), last + 1) & 0xFFFFFFFF
    conn.execute("UPDATE meta SET value = ? WHERE key = 'uidvalidity'", (value,))
    temporary = "%s.%d.tmp" % (path, os.getpid())
    try:
        with open(temporary, "w") as f:
            f.write("%08x\n" % (value,))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        maildir.removeQuietly(temporary)
        raise
    return value


def addUsage(conn, delta):
    if delta:
        conn.execute("UPDATE meta SET value = value + ? WHERE key = 'usage'", (delta,))


def bumpModSeq(conn, mailboxId):
    """
    Take the mailbox's next modseq (inside a transaction).
    """
    conn.execute("UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ?", (mailboxId,))
    return conn.execute("SELECT highestmodseq FROM mailboxes WHERE id = ?", (mailboxId,)).fetchone()[0]


def encodeFlags(flags):
    return " ".join(sorted(flags))


_FLAG_SETS = {}


def decodeFlags(text):
    """
    The C{frozenset} of flags stored as C{text}: the same object for the
    same text (a mailbox has few distinct combinations), which makes
    decoding and hashing them cheap.
    """
    flags = _FLAG_SETS.get(text)
    if flags is None:
        if len(_FLAG_SETS) >= 4096:
            _FLAG_SETS.clear()
        flags = _FLAG_SETS[text] = frozenset(text.split())
    return flags


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
    if not maildir.isMaildir(path):
        return False
    maildir.ensureMaildir(path)
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

    uidList = None
    keptProperties = {}
    keywordLetters = readDovecotKeywords(os.path.join(path, maildir.KEYWORDS_FILE))
    if not row[4]:
        from gateway.store import properties
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
            with transaction(conn):
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


def recoverTemporary(conn, mailboxId, path, now=None):
    """
    Clear a mailbox's C{tmp/} of what nobody holds any more (see
    L{maildir.temporaryHeld}): a message staged by a COPY or MOVE whose
    index commit happened is put in place (the process died between its
    commit and its renames); anything else is removed.  Run this only
    after L{recoverJournals}, which may still need staged files.

    @return: bytes of the files that stay although their ctime is older
        than L{maildir.TMP_GRACE} (held by a live process that is not this
        one), which the account's usage counts.
    """
    now = time.time() if now is None else now
    tmpDir = os.path.join(path, "tmp")
    kept = 0
    for name, st in maildir.temporaryFiles(tmpDir):
        if maildir.temporaryHeld(name, st.st_ctime, now):
            owner = maildir.temporaryOwner(name)
            if now - st.st_ctime >= maildir.TMP_GRACE and (owner is None or owner[0] != os.getpid()):
                kept += st.st_size
            continue
        filePath = os.path.join(tmpDir, name)
        row = conn.execute("SELECT subdir, filename FROM messages WHERE mailbox = ? AND base = ?",
                           (mailboxId, name)).fetchone()
        if row is not None and not os.path.exists(os.path.join(path, row[0], row[1])):
            try:
                os.rename(filePath, os.path.join(path, row[0], row[1]))
                continue
            except FileNotFoundError:
                continue
        maildir.removeQuietly(filePath)
    return kept


def writeJournal(root, entries):
    """
    Record, durably and before its index transaction, what a MOVE is about
    to do, so that whoever finds it after a crash (L{recoverJournals}) can
    finish or undo the part that happens outside the transaction: the
    source files are unlinked inside it, the staged hard links are renamed
    into place after it.

    @param root: the account's mail folder.
    @param entries: C{list} of C{(sourceMailboxId, sourceBase, sourceSubdir,
        sourceFilename, destinationMailboxId, stagedBase)}.
    @return: the journal's path; remove it when the MOVE is complete.
    """
    folder = os.path.join(root, JOURNAL_FOLDER)
    os.makedirs(folder, exist_ok=True)
    # The name says which process owns it (see maildir.temporaryHeld).
    name = "move." + maildir.newBase(0, 0).split(".", 1)[1].split(",", 1)[0]
    path, _ = maildir.writeTemporary(folder, json.dumps(entries).encode("utf-8"))
    target = os.path.join(folder, name)
    os.rename(path, target)
    maildir.fsyncDirectory(folder)
    return target


def recoverJournals(conn, root, now=None):
    """
    Finish or undo the MOVEs whose process died (see L{writeJournal}).  A
    MOVE committed if its source messages are gone from the index: then its
    staged files are put in place and the sources unlinked; otherwise the
    sources it had unlinked are linked back from the staged files.  Run
    before anything that could take a missing source for an expunged
    message or remove staged files (L{recoverTemporary}, the removals of
    L{scanMailbox}, which calls L{_recoverJournalsLocked} itself).
    """
    if not maildir.temporaryFiles(os.path.join(root, JOURNAL_FOLDER)):
        return
    with transaction(conn):
        _recoverJournalsLocked(conn, root, now)


def _recoverJournalsLocked(conn, root, now=None):
    """
    L{recoverJournals} inside a write transaction.
    """
    folder = os.path.join(root, JOURNAL_FOLDER)
    now = time.time() if now is None else now
    for name, st in maildir.temporaryFiles(folder):
        if maildir.temporaryHeld(name, st.st_ctime, now):
            continue
        path = os.path.join(folder, name)
        try:
            with open(path, "rb") as f:
                entries = json.loads(f.read().decode("utf-8"))
        except (OSError, ValueError):
            entries = []
        for sourceId, sourceBase, subdir, filename, destinationId, stagedBase in entries:
            paths = dict(conn.execute(
                "SELECT id, name FROM mailboxes WHERE id IN (?, ?)", (sourceId, destinationId)).fetchall())
            if sourceId not in paths or destinationId not in paths:
                continue
            sourcePath = os.path.join(maildir.mailboxPath(root, paths[sourceId]), subdir, filename)
            destinationPath = maildir.mailboxPath(root, paths[destinationId])
            staged = os.path.join(destinationPath, "tmp", stagedBase)
            if conn.execute("SELECT 1 FROM messages WHERE mailbox = ? AND base = ?",
                            (sourceId, sourceBase)).fetchone():
                if not os.path.exists(sourcePath) and os.path.exists(staged):
                    os.link(staged, sourcePath)
                maildir.removeQuietly(staged)
                continue
            row = conn.execute("SELECT subdir, filename FROM messages WHERE mailbox = ? AND base = ?",
                               (destinationId, stagedBase)).fetchone()
            if row is not None and os.path.exists(staged):
                os.rename(staged, os.path.join(destinationPath, row[0], row[1]))
            maildir.removeQuietly(staged)
            maildir.removeQuietly(sourcePath)
        maildir.removeQuietly(path)


def indexRoot(conn):
    """
    @return: the folder of the index C{conn} is open on (the account's
        mail folder).
    """
    return os.path.dirname(conn.execute("PRAGMA database_list").fetchone()[2])


def _modSeqTaker(conn, mailboxId):
    taken = []

    def take():
        if not taken:
            taken.append(bumpModSeq(conn, mailboxId))
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
        _recoverJournalsLocked(conn, indexRoot(conn))
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
    addUsage(conn, usage)

    for base in changed:
        subdir, name = onDisk[base]
        current = conn.execute(
            "SELECT uid, subdir, filename, flags FROM messages WHERE mailbox = ? AND base = ?",
            (mailboxId, base)).fetchone()
        if current is None or (current[1], current[2]) == (subdir, name):
            continue
        if not os.path.exists(os.path.join(path, subdir, name)):
            continue
        oldFlags = decodeFlags(current[3])
        info = maildir.splitName(name)[1]
        # Keywords with a letter are what the name says; others stay.
        lettered = set(keywordLetters.values())
        keywords = {f for f in oldFlags if not maildir.isSystemFlag(f) and f not in lettered}
        keywords |= {keywordLetters[c] for c in maildir.extraLetters(info) if c in keywordLetters}
        newFlags = frozenset(keywords) | maildir.systemFlagsFromInfo(info)
        if newFlags != oldFlags:
            conn.execute("UPDATE messages SET subdir = ?, filename = ?, flags = ?, modseq = ?"
                         " WHERE mailbox = ? AND uid = ?",
                         (subdir, name, encodeFlags(newFlags), takeModSeq(), mailboxId, current[0]))
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
            (mailboxId, uid, base, subdir, name, encodeFlags(flags), mtime, measure.size,
             measure.rawSize, int(measure.needsCRLF), takeModSeq(), measure.headers, *objectid.idsOf(measure)))
        usage += measure.rawSize
        changedAny = True
    addUsage(conn, usage)
    conn.execute("UPDATE mailboxes SET uidnext = ? WHERE id = ?", (uidNext, mailboxId))
    return changedAny
