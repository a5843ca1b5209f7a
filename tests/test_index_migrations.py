# -*- test-case-name: tests.test_index_migrations -*-
"""
Tests for the index schema's ordered migrations (L{gateway.store.index.migrate}).
"""

import sqlite3

from twisted.trial import unittest

from gateway.store import index


class MigrationTests(unittest.TestCase):
    def _conn(self):
        return sqlite3.connect(self.mktemp(), isolation_level=None)

    def test_newIndexAtLatest(self):
        """A new index is created at the last migration's version."""
        path = self.mktemp()
        conn = index.connect(path)
        self.assertEqual(conn.execute("PRAGMA user_version").fetchone()[0], len(index.MIGRATIONS))
        self.assertEqual(index.SCHEMA_VERSION, len(index.MIGRATIONS))

    def test_appliesOnlyMissingSteps(self):
        """An index at version 1 gets steps 2 and 3, in order, and nothing else."""
        ran = []
        steps = [lambda c: ran.append(1), lambda c: ran.append(2), lambda c: ran.append(3)]
        conn = self._conn()
        conn.execute("PRAGMA user_version = 1")
        self.assertEqual(index.migrate(conn, steps), 3)
        self.assertEqual(ran, [2, 3])
        self.assertEqual(index.migrate(conn, steps), 3)
        self.assertEqual(ran, [2, 3])

    def test_failedStepChangesNothing(self):
        """A step that fails rolls back the steps before it and the version."""
        def create(c):
            c.execute("CREATE TABLE t (x)")

        def fail(c):
            raise RuntimeError("boom")

        conn = self._conn()
        self.assertRaises(RuntimeError, index.migrate, conn, [create, fail])
        self.assertEqual(conn.execute("PRAGMA user_version").fetchone()[0], 0)
        self.assertEqual(
            conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 't'").fetchone()[0], 0)

    def test_newerIndexRefused(self):
        """An index from a newer version is refused, not misread."""
        conn = self._conn()
        conn.execute("PRAGMA user_version = 5")
        self.assertRaises(index.IndexTooNew, index.migrate, conn, [lambda c: None])

    def test_firstWaveIndexOpens(self):
        """An index written by the first wave (user_version 1) opens with its data."""
        path = self.mktemp()
        conn = index.connect(path)
        conn.execute("INSERT INTO subscriptions (name) VALUES ('Sent')")
        conn.close()
        conn = index.connect(path)
        self.assertEqual(conn.execute("SELECT name FROM subscriptions").fetchall(), [("Sent",)])
