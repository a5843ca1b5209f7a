# -*- test-case-name: tests.test_store_redo -*-
"""
The index as the journal of the message files (issue 14): one flush a
write.

A write made by the store's index writer used to wait for up to three
flushes in a row before its reply: a small APPEND's file in C{tmp/}, the
group's C{COMMIT}, the folders whose entries the group changed.  On the
project's test machine each flush cost about what all of them did, and
imaptest's kept-open mix did 1.19 times the commands with the C{COMMIT}'s
alone (C{bench/RESULTS.md}, session 18).

So the writes that change message files record, in the group's
transaction, what a power cut could take back of them, and the
C{COMMIT}'s flush makes that record durable with the index rows:

- a small APPEND (an IMAP literal of at most
  L{gateway.store.mailbox.INLINE_APPEND}) records its octets: its file is
  written to C{tmp/} and renamed into C{new/} or C{cur/} unsynced;
- a flag change that renamed a message's file, and an expunge that moved
  one out of C{new/} or C{cur/}, record the message's base (its folder is
  not fsync'd).

A row says "the file of message C{base} of C{mailbox} may not be on disk
as the index says".  The reply goes out after the C{COMMIT}.  About once a
L{INTERVAL}, the process's L{Checkpointer} makes the file system durable as
a whole (C{syncfs(2)}: one call for every file and folder written since the
last) and then deletes the rows that were committed before that call began.

After a power cut the first open of the index in the new boot (where
L{gateway.store.scan.distrustFoldersAfterBoot} already marks every folder
for a listing) replays the rows left (L{replay}), before anything lists a
folder: for each message named, the index's row decides.  A message with a
row gets its file under the row's name, written from the recorded octets
when they are there and the file is missing or differs, else renamed from
whatever name of its base the folder holds; a message without a row (it was
expunged) loses any file of its base.  A process that is killed loses
nothing the kernel was given: its rows are left for the next checkpoint,
and nothing is replayed within one boot.

Rows are identified by an C{AUTOINCREMENT} key, so an id is never used
twice, and a checkpoint deletes the rows up to the newest this process had
seen committed before its C{syncfs} began: the index writers of every
process take the writers' lock in turn, so any row with a smaller id was
committed before, and its files' changes were made (before its
C{COMMIT}) before the sync.
"""

import collections
import ctypes
import ctypes.util
import os
import threading
import time

from gateway import affinity, stats
from gateway.errors import isStorageFull
from gateway.logging import getLogger
from gateway.store import index, maildir

log = getLogger("store")

#: How long, in seconds, a checkpoint waits after the first unsynced write
#: it will cover: the rows (and a small APPEND's octets) stay in the index
#: about this long; the files and folders are flushed once for all of them.
INTERVAL = 1.0


_usable = None


def usable():
    """
    May writes leave their files unsynced, recorded here?  Only where the
    first open after a new boot can be told (Linux's boot identifier,
    L{gateway.store.scan.bootId}): nothing would replay the rows elsewhere.
    """
    global _usable
    if _usable is None:
        from gateway.store.scan import bootId
        _usable = bootId() is not None
    return _usable


def addTable(conn):
    """
    Migration 6: the table of message files not yet known durable.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS redo (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " mailbox INTEGER NOT NULL, base TEXT NOT NULL, octets BLOB)")


def record(conn, mailboxId, base, octets=None):
    """
    Record, inside a write's transaction, that the file of message C{base}
    of mailbox C{mailboxId} changed and is not synced (with its octets
    when the write created it).

    @return: the row's id.
    """
    return conn.execute("INSERT INTO redo (mailbox, base, octets) VALUES (?, ?, ?)",
                        (mailboxId, base, octets)).lastrowid


def recordMany(conn, mailboxId, bases):
    """
    L{record} for several messages whose files were renamed or removed.

    @return: the newest row's id, or C{None} when C{bases} is empty.
    """
    if not bases:
        return None
    conn.executemany("INSERT INTO redo (mailbox, base) VALUES (?, ?)",
                     [(mailboxId, base) for base in bases])
    return conn.execute("SELECT last_insert_rowid()").fetchone()[0]


def unsyncedBases(conn, mailboxId):
    """
    @return: the bases of mailbox C{mailboxId}'s messages whose content is
        recorded here and may not be durable in their files yet (for COPY
        and MOVE, whose hard links share it).
    """
    return {base for base, in conn.execute(
        "SELECT base FROM redo WHERE mailbox = ? AND octets IS NOT NULL", (mailboxId,))}


def newest(conn):
    """
    @return: the id of the newest row (C{None} if there is none).
    """
    return conn.execute("SELECT MAX(id) FROM redo").fetchone()[0]


def forget(conn, upTo):
    """
    Delete the rows up to id C{upTo} (their files are durable).
    """
    conn.execute("DELETE FROM redo WHERE id <= ?", (upTo,))


def replay(conn, root):
    """
    Make the message files the rows name what the index says, inside a
    write transaction, then make them durable and delete the rows.  For the
    first open after a new boot, before any folder is listed (see the
    module's docstring).

    @param root: the account's C{mail/} folder.
    @return: how many messages were named.
    """
    rows = conn.execute("SELECT id, mailbox, base, octets FROM redo ORDER BY id").fetchall()
    if not rows:
        return 0
    # {mailbox: {base: the octets recorded for it, or None}}
    byMailbox = collections.defaultdict(dict)
    for _id, mailboxId, base, octets in rows:
        if octets is not None:
            byMailbox[mailboxId][base] = octets
        else:
            byMailbox[mailboxId].setdefault(base, None)
    folders = set()
    for mailboxId, messages in byMailbox.items():
        row = conn.execute("SELECT name FROM mailboxes WHERE id = ?", (mailboxId,)).fetchone()
        if row is None:
            continue  # deleted since
        path = maildir.mailboxPath(root, row[0])
        if not os.path.isdir(path):
            continue
        onDisk = _namesByBase(path)
        for base, octets in messages.items():
            message = conn.execute(
                "SELECT subdir, filename, internaldate FROM messages WHERE mailbox = ? AND base = ?",
                (mailboxId, base)).fetchone()
            try:
                folders.update(_restore(path, onDisk.get(base, ()), message, octets))
            except OSError:
                # One file that cannot be made right (a permission, an I/O
                # error) must not keep the account from opening; the
                # listing that follows then takes the folder as it is.
                log.failure("Replaying message {base} in {path} failed", base=base, path=path)
    maildir.fsyncDirectories(folders)
    forget(conn, rows[-1][0])
    named = sum(len(messages) for messages in byMailbox.values())
    log.info("Replayed {count} unsynced message files in {root}", count=named, root=root)
    return named


def _namesByBase(path):
    """
    @return: C{{base: [(subdir, filename)]}} of the files in C{path}'s
        C{new/} and C{cur/}.
    """
    names = collections.defaultdict(list)
    for subdir in ("new", "cur"):
        try:
            entries = os.listdir(os.path.join(path, subdir))
        except FileNotFoundError:
            continue
        for filename in entries:
            names[maildir.splitName(filename)[0]].append((subdir, filename))
    return names


def _restore(path, found, message, octets):
    """
    Make message C{found}'s files what its index row C{message}
    (C{(subdir, filename, internaldate)} or C{None}) says.

    @return: the folders changed.
    """
    changed = set()
    keep = None
    if message is not None:
        subdir, filename, internalDate = message
        keep = (subdir, filename)
        target = os.path.join(path, subdir, filename)
        if octets is not None:
            if not _holds(target, octets):
                written, _measure = maildir.writeTemporary(os.path.join(path, "tmp"), octets, internalDate)
                os.rename(written, target)
                changed.add(os.path.join(path, subdir))
        elif keep not in found and found:
            os.rename(os.path.join(path, *found[0]), target)
            changed.update((os.path.join(path, found[0][0]), os.path.join(path, subdir)))
    for name in found:
        if name != keep and os.path.exists(os.path.join(path, *name)):
            maildir.removeQuietly(os.path.join(path, *name))
            changed.add(os.path.join(path, name[0]))
    return changed


def _holds(path, octets):
    """
    Whether the file at C{path} holds exactly C{octets}.
    """
    try:
        with open(path, "rb") as f:
            return f.read(len(octets) + 1) == octets
    except FileNotFoundError:
        return False


_libc = None


def syncFileSystem(path):
    """
    Make every file and folder of the file system that holds C{path}
    durable: Linux's C{syncfs(2)}, where there is one, else C{sync(2)}.

    @raise OSError: when it fails (an I/O error).
    """
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            _libc.syncfs.argtypes = [ctypes.c_int]
        except (OSError, AttributeError):
            _libc = False
    if _libc is False:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error), path)
    finally:
        os.close(fd)


class Checkpointer:
    """
    The thread of a process that makes the recorded files durable and then
    forgets their rows (see the module's docstring): at most one
    C{syncfs} a L{INTERVAL} per file system, and one C{DELETE} per index.
    """

    def __init__(self, interval=None, automatic=True):
        """
        @param automatic: C{False} for one that checkpoints only when
            L{flush}ed (tests): it starts no thread.
        """
        self.interval = INTERVAL if interval is None else interval
        self._automatic = automatic
        self._pending = {}
        self._wake = threading.Condition()
        self._thread = None
        #: How many checkpoints were made (for tests and metrics).
        self.passes = 0

    def note(self, indexPath, upTo):
        """
        Rows up to id C{upTo} of the index at C{indexPath} are committed:
        forget them at the next checkpoint.
        """
        with self._wake:
            if upTo > self._pending.get(indexPath, 0):
                self._pending[indexPath] = upTo
            if self._thread is None and self._automatic:
                self._thread = threading.Thread(target=self._run, name="redo-checkpoint", daemon=True)
                self._thread.start()
            self._wake.notify()

    def flush(self):
        """
        Checkpoint now, in the calling thread, what is pending: for a
        process that stops.
        """
        with self._wake:
            batch, self._pending = self._pending, {}
        self._checkpoint(batch)

    def _run(self):
        affinity.yieldToReactor()
        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
            time.sleep(self.interval)
            with self._wake:
                batch, self._pending = self._pending, {}
            self._checkpoint(batch)

    def _checkpoint(self, batch):
        if not batch:
            return
        synced = set()
        for indexPath in sorted(batch):
            folder = os.path.dirname(indexPath)
            try:
                device = os.stat(folder).st_dev
                if device not in synced:
                    started = time.monotonic()
                    syncFileSystem(folder)
                    stats.measure("index_write", time.monotonic() - started, stage="checkpoint")
                    synced.add(device)
            except FileNotFoundError:
                continue  # the account is gone
            except OSError:
                log.failure("Syncing the file system of {index} failed; its redo rows stay", index=indexPath)
                continue
            try:
                _forgetIn(indexPath, batch[indexPath])
            except Exception as e:
                if not os.path.exists(indexPath):
                    continue  # the account went meanwhile
                if isStorageFull(e):
                    # Deleting rows takes room in the log: they stay until a
                    # later pass finds some.
                    log.warn("Forgetting synced redo rows of {index} waits: the disk is full", index=indexPath)
                else:
                    log.failure("Forgetting synced redo rows of {index} failed", index=indexPath)
        self.passes += 1


def _forgetIn(indexPath, upTo):
    """
    Delete the rows up to C{upTo} of the index at C{indexPath}, with a
    connection of its own, in the writers' turn.  Not through
    L{index.transaction}: no other process needs to look at a commit that
    only forgets these rows.
    """
    if not os.path.exists(indexPath):
        return
    conn = index.connect(indexPath)
    try:
        with index.writersTurn(conn):
            conn.execute("BEGIN IMMEDIATE")
            try:
                forget(conn, upTo)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
    finally:
        conn.close()


#: The process's checkpointer.
checkpointer = Checkpointer()
