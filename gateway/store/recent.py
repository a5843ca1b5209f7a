# -*- test-case-name: tests.test_store_recent -*-
"""
Who has claimed C{\\Recent}: for each mailbox of an account, the first UID
no session has claimed yet (RFC 3501 2.3.2: a message is recent in one
session only, the first to see it).

Every session with a mailbox selected claims what was delivered since it
looked, after each command.  In the index that claim was a write: it took
the index's lock, which the index writers (one per worker process) hold
for a group at a time, with its fsyncs, and on the reactor thread, where
a session waiting for it is every session of the worker.  Under imaptest's
mixed load with two workers the reactor spent 28 to 37% of its time in
that wait.  The claims live here instead, in a small database of their own
beside the index, written without fsync and locked only by other claims
for the microseconds one takes.

Without fsync a power cut can forget claims: messages delivered just
before it are recent again for the next session, as with Dovecot, whose
index is not synced either.  Nothing else depends on them.

Claims only ever grow, so what this process last read or wrote of a
mailbox's claim is a floor (L{RecentClaims.floor}): when a delivery
reaches every session with the mailbox selected, the first to look claims
it and the others, seeing the floor at the mailbox's UIDNEXT, skip the
read (under imaptest's mix with ten sessions on one INBOX, 5,248 reads
in 20 s, one for every session after every delivery).  A claim made by
another process is read as before: the floor is never above the claims.

A mailbox's claim is kept with the mailbox's UIDVALIDITY: one of another
UIDVALIDITY (a mailbox deleted and made again, an index rebuilt) is not
this mailbox's, and then the index's own C{recentuid} column (where the
claims were kept before, and which a rebuild resets) is where it starts.
"""

import fcntl
import os
import sqlite3
import threading

from gateway import sqlitewal
from gateway.errors import isStorageFull
from gateway.store import index

#: Beside the index (C{maildir.INDEX_NAME} with this suffix).
SUFFIX = "-recent"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
    mailbox INTEGER PRIMARY KEY,
    uidvalidity INTEGER NOT NULL,
    recentuid INTEGER NOT NULL
)
"""


class RecentClaims:
    """
    The C{\\Recent} claims of one account's mailboxes.

    @ivar path: the claims database.
    """

    def __init__(self, indexPath):
        self.path = indexPath + SUFFIX
        self._local = threading.local()
        self._conns = []
        self._connsLock = threading.Lock()
        self._floors = {}

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=index.BUSY_TIMEOUT_MS / 1000.0,
                                   check_same_thread=False)
            try:
                sqlitewal.useWal(conn)
                conn.execute("PRAGMA synchronous = OFF")
                conn.execute(_SCHEMA)
            except BaseException:
                conn.close()
                raise
            lock = os.open(self.path + "-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._local.conn, self._local.lock = conn, lock
            with self._connsLock:
                self._conns.append((conn, lock))
        return conn

    def first(self, mailboxId, uidValidity, default):
        """
        @param default: the index's C{recentuid} of the mailbox.
        @return: the first UID of C{mailboxId} no session has claimed
            (C{default} if the claims cannot be read for want of room).
        """
        try:
            row = self._conn().execute("SELECT uidvalidity, recentuid FROM claims WHERE mailbox = ?",
                                       (mailboxId,)).fetchone()
        except sqlite3.Error as e:
            # The claims cannot be opened on a full disk (a first use makes
            # the file): reading a mailbox must not need a write, and
            # nothing was claimed that could not be written.
            if not isStorageFull(e):
                raise
            row = None
        if row is None or row[0] != uidValidity:
            return default
        self._raise(mailboxId, uidValidity, row[1])
        return row[1]

    def floor(self, mailboxId, uidValidity):
        """
        @return: a UID of C{mailboxId} below which every UID is known to be
            claimed, without reading the claims: the most this process read
            or wrote (0 when it knows nothing).
        """
        return self._floors.get((mailboxId, uidValidity), 0)

    def _raise(self, mailboxId, uidValidity, uid):
        key = (mailboxId, uidValidity)
        if uid > self._floors.get(key, 0):
            self._floors[key] = uid

    def claim(self, mailboxId, uidValidity, default, upTo):
        """
        Claim the UIDs of C{mailboxId} below C{upTo} that no session has.

        @param default: the index's C{recentuid} of the mailbox.
        @return: the first UID claimed now: the claim is the UIDs from it
            to C{upTo} (none when it is C{upTo} or more).
        """
        conn = self._conn()
        fcntl.flock(self._local.lock, fcntl.LOCK_EX)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                first = self.first(mailboxId, uidValidity, default)
                if first < upTo:
                    conn.execute("INSERT OR REPLACE INTO claims (mailbox, uidvalidity, recentuid) VALUES (?, ?, ?)",
                                 (mailboxId, uidValidity, upTo))
                conn.execute("COMMIT")
                self._raise(mailboxId, uidValidity, upTo)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            fcntl.flock(self._local.lock, fcntl.LOCK_UN)
        return first

    def close(self):
        """
        Close every thread's connection.
        """
        with self._connsLock:
            conns, self._conns = self._conns, []
        for conn, lock in conns:
            conn.close()
            os.close(lock)
        self._local = threading.local()
