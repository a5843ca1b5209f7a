# -*- test-case-name: tests.test_delays_shared -*-
"""
Small SQLite databases under the data root's C{run/} folder for the state
that worker processes share (login delays, connection counts): state of
the running server, not data, so it is written without waiting for the
disk (C{synchronous=OFF}); each call is one short transaction.
"""

import mmap
import os
import sqlite3

from gateway import sqlitewal
from gateway.logging import getLogger

log = getLogger("server")

#: The folder, under the data root.
RUN_FOLDER = "run"


def runPath(dataRoot, name):
    """
    The path of the database C{name} under C{dataRoot}.
    """
    return os.path.join(dataRoot, RUN_FOLDER, name)


def mapRunFile(dataRoot, name, size, create=True):
    """
    The file C{name} under C{dataRoot}'s run folder mapped in memory, shared
    with the other processes that map it (the workers' slots), at least
    C{size} bytes long (a new file is sparse: pages never written take no
    room).

    @param create: make the folder and the file if missing (else
        C{FileNotFoundError}).
    @raise OSError: when it cannot be opened or mapped.
    """
    path = runPath(dataRoot, name)
    if create:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0), 0o600)
    try:
        if os.fstat(fd).st_size < size:
            os.ftruncate(fd, size)
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)


class RunDatabase:
    """
    One such database, opened on first use.  A database that cannot be used
    makes L{transaction} return its default, with one error in the log
    until it works again: what the state guards is then not enforced, and
    the server goes on.

    @ivar path: its file.
    @ivar what: what it keeps, for the log (C{"login delays"}).
    @ivar consequence: what a failure means, for the log.
    """

    #: Seconds a process waits for another's transaction.
    BUSY_TIMEOUT = 2.0
    schema = ""

    def __init__(self, path, what, consequence):
        self.path = path
        self.what = what
        self.consequence = consequence
        self._db = None
        self._broken = False

    def _connect(self):
        if self._db is None:
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=self.BUSY_TIMEOUT, isolation_level=None)
            try:
                sqlitewal.useWal(db)
                db.execute("PRAGMA synchronous=OFF")
                db.executescript(self.schema)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def transaction(self, work, default):
        """
        Run C{work(db)} in one C{BEGIN IMMEDIATE} transaction.

        @return: its result, or C{default} when the database cannot be used.
        """
        try:
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except (sqlite3.Error, OSError) as e:
            if not self._broken:
                self._broken = True
                log.error("{what}: {path}: {error}; {consequence}", what=self.what, path=self.path, error=e,
                          consequence=self.consequence)
            return default
        self._broken = False
        return result

    def close(self):
        if self._db is not None:
            self._db.close()
            self._db = None
