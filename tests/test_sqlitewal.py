# -*- test-case-name: tests.test_sqlitewal -*-
"""
Tests for L{gateway.sqlitewal}: a new database put into WAL mode by two
processes at once.
"""

import multiprocessing
import os
import sqlite3

from twisted.trial import unittest

from gateway import sqlitewal
from gateway.store import index
from gateway.store.recent import RecentClaims


class Locked:
    """
    A connection whose first C{failures} statements fail as a database
    locked by another's deadlock does.
    """

    def __init__(self, failures, mode="delete", error="database is locked"):
        self.failures = failures
        self.mode = mode
        self.error = error
        self.statements = []

    def execute(self, statement):
        self.statements.append(statement)
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError(self.error)
        if statement == "PRAGMA journal_mode = WAL":
            self.mode = "wal"
        return self

    def fetchone(self):
        return (self.mode,)


def _open(path, barrier, results, how):
    barrier.wait()
    try:
        if how == "index":
            index.connect(path).close()
        elif how == "recent":
            RecentClaims(path).first(1, 1, 1)
        else:
            conn = sqlite3.connect(path, isolation_level=None, timeout=30)
            sqlitewal.useWal(conn)
            conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
            conn.close()
        results.put("ok")
    except Exception as e:
        results.put(repr(e))


class UseWalTests(unittest.TestCase):
    def test_triesAgainWhenLocked(self):
        """A connection told the database is locked tries again, pausing longer each time, and sets the mode."""
        pauses = []
        conn = Locked(3)
        sqlitewal.useWal(conn, sleep=pauses.append)
        self.assertEqual(conn.mode, "wal")
        self.assertEqual(pauses, [0.001, 0.002, 0.004])

    def test_alreadyWal(self):
        """A database in WAL mode is only looked at."""
        conn = Locked(0, mode="wal")
        sqlitewal.useWal(conn, sleep=self.fail)
        self.assertEqual(conn.statements, ["PRAGMA journal_mode"])

    def test_otherErrorsAndGivingUp(self):
        """Another error goes through at once; a lock that never goes away, after ATTEMPTS tries."""
        pauses = []
        self.assertRaises(sqlite3.OperationalError, sqlitewal.useWal, Locked(1, error="disk I/O error"),
                          sleep=pauses.append)
        self.assertEqual(pauses, [])
        self.assertRaises(sqlite3.OperationalError, sqlitewal.useWal, Locked(sqlitewal.ATTEMPTS),
                          sleep=pauses.append)
        self.assertEqual(len(pauses), sqlitewal.ATTEMPTS - 1)
        self.assertEqual(max(pauses), sqlitewal.LONGEST_PAUSE)

    def race(self, how, rounds=25):
        """
        Two processes open a new database at the same moment, C{rounds}
        times: C{[(round, outcomes)]} of the rounds not both C{'ok'}.
        """
        context = multiprocessing.get_context("fork")
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        failed = []
        for n in range(rounds):
            path = os.path.join(folder, "db%d" % (n,))
            barrier, results = context.Barrier(2), context.Queue()
            processes = [context.Process(target=_open, args=(path, barrier, results, how)) for _ in range(2)]
            for process in processes:
                process.start()
            for process in processes:
                process.join(60)
            outcomes = [results.get(timeout=10) for _ in processes]
            if outcomes != ["ok", "ok"]:
                failed.append((n, outcomes))
        return failed

    def test_twoProcessesAtOnce(self):
        """
        Two processes making one new database at once both get it in WAL
        mode (without, SQLite refused one of them at once in 130 of 200
        tries here).
        """
        self.assertEqual(self.race("plain"), [])

    def test_indexAndRecentClaimsAtOnce(self):
        """Two workers' first open of a new account's index, and of its Recent claims, both succeed."""
        self.assertEqual(self.race("index", 10), [])
        self.assertEqual(self.race("recent", 10), [])
