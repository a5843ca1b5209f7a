# -*- test-case-name: tests.test_store_rowcache -*-
"""
The rows of an account's C{mailboxes} table, read once for as long as
nobody commits to the index.

Every command asks its mailbox for a few of these columns (its name for its
folder's path, UIDVALIDITY, HIGHESTMODSEQ to see whether anything changed,
UIDNEXT): four to five single-row C{SELECT}s a command, each of which lets
go of the GIL and waits to get it back from the index writer and the pool
threads.  Between two commits the answers cannot change, and SQLite itself
tells when a commit happened: in WAL mode every transaction that commits,
from any connection of any process, rewrites the header of the
I{wal-index} (the C{-shm} file beside the index; U{its format
<https://www.sqlite.org/walformat.html>}: two copies of a 48-byte header,
with a change counter, the last frame and the frames' checksum, at the
start of the file).  L{IndexStamp} maps those 48 bytes read-only;
L{MailboxRows} keeps the rows read under one value of them and drops them
all when it changes.

A stamp is read before the row it vouches for, so a row is never older than
its stamp; inside a transaction (a snapshot that may be older than the
header, or a write not yet committed) nothing is taken from or put into the
cache.  An index not in WAL mode has no C{-shm} file: then every row is read
as before.

The header is mapped from SQLite's own descriptor of the C{-shm} file,
found in C{/proc/self/fd}, with C{mmap(2)} called directly: opening the file
again would not do, because closing any descriptor of a file lets go of
every POSIX lock the process holds on it, SQLite's included (the lock that
tells other processes a connection uses the wal-index, and its readers'
marks), and Python's C{mmap} module keeps and closes a duplicate of the
descriptor it is given.  Without C{/proc} or C{mmap(2)} there is no stamp.
"""

import ctypes
import ctypes.util
import mmap
import operator
import os

__all__ = ["IndexStamp", "MailboxRows"]

#: The first copy of the wal-index header (C{WalIndexHdr}).
HEADER_SIZE = 48
_MAPPED = mmap.PAGESIZE
_FAILED = ctypes.c_void_p(-1).value


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                              ctypes.c_long)
        libc.munmap.restype = ctypes.c_int
        libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
    except (OSError, AttributeError):
        return None
    return libc


_libc = _libc()


def openDescriptor(path):
    """
    The number of a descriptor this process has open on the file at
    C{path} (found by what each entry of C{/proc/self/fd} leads to, without
    opening anything); C{None} if there is none or no C{/proc}.
    """
    try:
        wanted = os.stat(path)
        entries = os.scandir("/proc/self/fd")
    except OSError:
        return None
    with entries:
        for entry in entries:
            try:
                found = os.stat(entry.path)
            except OSError:
                continue
            if found.st_ino == wanted.st_ino and found.st_dev == wanted.st_dev:
                return int(entry.name)
    return None


class IndexStamp:
    """
    The wal-index header of the index at C{indexPath}, mapped read-only
    from SQLite's own descriptor.  Make it after a connection opened the
    index in WAL mode, keep that connection open while the stamp is used,
    and L{close} the stamp before it: SQLite removes or rebuilds the
    C{-shm} file only when no connection has the index open.
    """

    def __init__(self, indexPath):
        self._address = None
        self._header = None
        if _libc is None:
            return
        shmPath = indexPath + "-shm"
        fd = openDescriptor(shmPath)
        if fd is None:
            return
        try:
            if os.fstat(fd).st_size < HEADER_SIZE:
                return
        except OSError:
            return
        address = _libc.mmap(None, _MAPPED, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if address is None or address == _FAILED:
            return
        self._address = address
        self._header = (ctypes.c_char * HEADER_SIZE).from_address(address)

    def read(self):
        """
        @return: the header's bytes (equal only while nobody committed), or
            C{None} when the index has no wal-index.
        """
        header = self._header
        return None if header is None else header.raw

    def close(self):
        if self._address is not None:
            self._header = None
            _libc.munmap(self._address, _MAPPED)
            self._address = None


#: The query L{MailboxRows.named} answers: C{(id, selectable, indexed)} of
#: the mailbox called C{?}.
NAMED = "SELECT id, selectable, indexed FROM mailboxes WHERE name = ?"


class MailboxRows:
    """
    The C{mailboxes} rows read through one connection (the store's own, in
    the reactor thread), valid while L{IndexStamp} reads the same.
    """

    def __init__(self, conn, stamp):
        self._conn = conn
        self._stamp = stamp
        self._rows = {}
        self._names = {}
        self._seen = None
        self._getters = {}
        self._columns = None

    def row(self, mailboxId, columns):
        """
        The mailbox's C{columns} (as in a C{SELECT}: names separated by
        commas), as a tuple; C{None} when there is no such mailbox.
        """
        conn = self._conn
        if not self._current():
            return conn.execute("SELECT %s FROM mailboxes WHERE id = ?" % (columns,), (mailboxId,)).fetchone()
        row = self._rows.get(mailboxId)
        if row is None:
            cursor = conn.execute("SELECT * FROM mailboxes WHERE id = ?", (mailboxId,))
            row = cursor.fetchone()
            if row is None:
                return None
            if self._columns is None:
                self._columns = {d[0]: i for i, d in enumerate(cursor.description)}
            self._rows[mailboxId] = row
        getter = self._getters.get(columns)
        if getter is None:
            getter = self._getters[columns] = self._getter(columns)
        return getter(row)

    def named(self, name):
        """
        C{(id, selectable, indexed)} of the mailbox called C{name}, or
        C{None} when the index has none.
        """
        current = self._current()
        if current and name in self._names:
            return self._names[name]
        row = self._conn.execute(NAMED, (name,)).fetchone()
        if current:
            self._names[name] = row
        return row

    def stamp(self):
        """
        The wal-index stamp now, for a caller that keeps an answer of its
        own while nobody commits; C{None} when none may be kept (no stamp,
        or inside a transaction).
        """
        return self._seen if self._current() else None

    def _current(self):
        """
        May the cache be used (outside a transaction, with a stamp)?  What
        it holds is dropped first when the stamp changed.
        """
        stamp = self._stamp.read()
        if stamp is None or self._conn.in_transaction:
            return False
        if stamp != self._seen:
            self._rows = {}
            self._names = {}
            self._seen = stamp
        return True

    def _getter(self, columns):
        indexes = [self._columns[name.strip()] for name in columns.split(",")]
        if len(indexes) == 1:
            only = indexes[0]
            return lambda row: (row[only],)
        return operator.itemgetter(*indexes)

    def close(self):
        self._rows = {}
        self._names = {}
        self._stamp.close()
