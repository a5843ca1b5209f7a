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
Maildir (L{gateway.store.scan.scanMailbox}); what is lost then is UIDs (a
new UIDVALIDITY is taken), mailbox classes other than the defaults, and
keywords past the 26 a mailbox's C{dovecot-keywords} file gives letters
to (the others are in the file names); EMAILID and THREADID come back,
being derived from the messages (L{gateway.store.objectid}).

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
    structures(mailbox, uid, name, value)  IMAP ENVELOPE, BODY and
                                  BODYSTRUCTURE computed when stored
                                  (L{gateway.store.structures})

The schema grows by ordered steps (L{MIGRATIONS}, counted in C{PRAGMA
user_version}): a feature appends a step; an older index is brought up to
date when opened.

What reads the Maildir into the index is L{gateway.store.scan}; what
finishes or undoes a COPY or MOVE cut short by a crash is
L{gateway.store.journal}.  This module keeps the schema, the connection
and its transactions, UIDs and UIDVALIDITY, the usage sum and the reserve
kept for a full disk.
"""

import contextlib
import fcntl
import os
import sqlite3
import time

from gateway import caches, sqlitewal
from gateway.errors import isStorageFull
from gateway.store import maildir

BUSY_TIMEOUT_MS = 30000
#: Next to the index: the last UIDVALIDITY handed out (survives index loss).
UIDVALIDITY_FILE = ".gateway-uidvalidity"

#: Beside the index (C{maildir.INDEX_NAME} with this suffix): octets kept
#: in reserve so that flagging and expunging, which make room, still work
#: on a full disk (see L{roomPermitting}).
RESERVE_SUFFIX = "-reserve"
#: Beside the index: a file written after every commit through
#: L{transaction}.  Other processes watch the index's folder with inotify
#: (L{gateway.store.watch}) to learn of each other's changes; the
#: write-ahead log is written before the commit is visible (a commit is
#: visible once the log is on disk and the wal-index updated, which makes
#: no event), so a watcher woken by the log alone could look too early and
#: find nothing until the next change.  This write comes after.
COMMIT_SIGNAL_SUFFIX = "-commits"
RESERVE_SIZE = 256 * 1024

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


def _addStructures(conn):
    """
    Migration 5: each message's IMAP structures, computed when it is
    stored (see L{gateway.store.structures}).
    """
    from gateway.store.structures import addTable
    addTable(conn)


def _addRedo(conn):
    """
    Migration 6: the message files the index knows and a power cut could
    take back, see L{gateway.store.redo}.
    """
    from gateway.store.redo import addTable
    addTable(conn)


MIGRATIONS = [
    _createBase,
    _addUserFlags,
    _addProperties,
    _addObjectIds,
    _addStructures,
    _addRedo,
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


class IndexConnection(sqlite3.Connection):
    """
    A connection to an index, which knows its path (for L{signalCommit}).
    """

    indexPath = None
    #: Set by the index writer while a write runs in its savepoint
    #: (L{WRITE_SAVEPOINT}): L{total_changes} when that savepoint was taken
    #: (see L{transaction}).
    writeSavepoint = None


#: The savepoint in which the index writer runs each write of a group.
WRITE_SAVEPOINT = "write"


def connect(path):
    """
    Open (and create if needed) the index at C{path}.

    @return: an autocommit L{IndexConnection}; use L{transaction} to write.
    """
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000.0,
                           check_same_thread=False, factory=IndexConnection)
    conn.indexPath = os.path.abspath(path)
    conn.execute("PRAGMA busy_timeout = %d" % (BUSY_TIMEOUT_MS,))
    sqlitewal.useWal(conn)
    # FULL: a UID once reported to a client is never handed out again, even
    # after a power failure.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = OFF")
    migrate(conn)
    return conn


#: Beside the index: the file that what writes to it (the index writers of
#: every process, one per worker, and rescans in pool threads) lock in
#: turn, each for one transaction.  SQLite's own lock would do, but a
#: writer that finds it taken sleeps (1, 2, 5, 10 ms...) and tries again:
#: with two workers writing to one account, a group waited 1.2 to 2 ms for
#: the lock, against about 1.3 ms of holding it.  A writer waiting here is
#: woken as soon as the other lets go.
WRITERS_LOCK_SUFFIX = "-writer"


def openWritersLock(indexPath):
    """
    @return: a descriptor of the index's L{WRITERS_LOCK_SUFFIX} file, to
        C{flock}.
    """
    return os.open(indexPath + WRITERS_LOCK_SUFFIX, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


@contextlib.contextmanager
def writersTurn(conn):
    """
    Hold the index's writers' lock (L{WRITERS_LOCK_SUFFIX}) for a write made
    outside the store's index writer, so that it waits in line with the
    index writers of every process instead of meeting them at SQLite's lock.
    Not for a thread that holds it already (an index writer).
    """
    lock = openWritersLock(conn.indexPath)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield conn
    finally:
        os.close(lock)


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
        fresh = getattr(conn, "writeSavepoint", None)
        if fresh is not None and fresh == conn.total_changes:
            # The index writer's savepoint for this write, with nothing
            # written in it yet, is this transaction's: undoing to it undoes
            # exactly this transaction, and saves two statements (each of
            # which gives the GIL away).
            conn.writeSavepoint = None
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK TO " + WRITE_SAVEPOINT)
                conn.writeSavepoint = conn.total_changes  # as fresh again (a retry)
                raise
            return
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
    changes = conn.total_changes
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
        if conn.total_changes != changes:
            # A transaction that changed no row wrote nothing (SQLite did
            # not sync either): nobody needs to look.
            signalCommit(conn)


def signalCommit(conn):
    """
    Write the index's L{COMMIT_SIGNAL_SUFFIX} file (one octet, in place),
    after a commit through C{conn}.  What fails (a full disk, a read-only
    folder) is left: the watchers then learn of the commit at the next
    change, or by polling.
    """
    path = getattr(conn, "indexPath", None)
    if path is None:
        return
    try:
        fd = os.open(path + COMMIT_SIGNAL_SUFFIX, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return
    try:
        os.pwrite(fd, b"c", 0)
    except OSError:
        pass
    finally:
        os.close(fd)


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
    # One statement (the index writer gives the GIL away at each).
    return conn.execute("UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ?"
                        " RETURNING highestmodseq", (mailboxId,)).fetchall()[0][0]


def encodeFlags(flags):
    return " ".join(sorted(flags))


_FLAG_SETS = caches.kept({}, "gateway.store.index flag sets")


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


def indexRoot(conn):
    """
    @return: the folder of the index C{conn} is open on (the account's
        mail folder).
    """
    return os.path.dirname(conn.execute("PRAGMA database_list").fetchone()[2])
