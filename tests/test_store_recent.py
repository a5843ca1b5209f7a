# -*- test-case-name: tests.test_store_recent -*-
"""
Tests for L{gateway.store.recent}: C{\\Recent} claims kept beside the index.
"""

import os
import sqlite3

from twisted.trial import unittest

from gateway.store import index, recent
from tests.test_store_mail import StoreTestMixin

MESSAGE = b"Subject: a\r\n\r\nbody\r\n"


class RecentClaimsTests(StoreTestMixin, unittest.TestCase):
    """
    A message is recent in one session only, whatever process it is in.
    """

    def test_claimedOnce(self):
        """A second store on the same folder (another worker) claims nothing the first claimed, then what is new."""
        first = self.makeStore()
        second = self.makeStore(self.mailPath)
        a = first.getMailbox("INBOX").appendMessage(MESSAGE)
        self.assertEqual(first.getMailbox("INBOX").claimRecent(), {a})
        self.assertEqual(second.getMailbox("INBOX").claimRecent(), set())
        b = first.getMailbox("INBOX").appendMessage(MESSAGE)
        self.assertEqual(second.getMailbox("INBOX").unclaimedRecent(), {b})
        self.assertEqual(second.getMailbox("INBOX").claimRecent(), {b})
        self.assertEqual(first.getMailbox("INBOX").claimRecent(), set())

    def test_floorSkipsTheRead(self):
        """
        Once this process claimed a delivery, the next session's look at
        the same mailbox finds nothing to claim without reading the claims.
        """
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        a = inbox.appendMessage(MESSAGE)
        self.assertEqual(inbox.claimRecent(), {a})
        reads = []
        real = store.recentClaims.first
        self.patch(store.recentClaims, "first", lambda *args: reads.append(args) or real(*args))
        self.assertEqual(store.getMailbox("INBOX").claimRecent(), set())
        self.assertEqual(reads, [])
        b = inbox.appendMessage(MESSAGE)
        self.assertEqual(store.getMailbox("INBOX").claimRecent(), {b})
        self.assertTrue(reads)

    def test_floorNotAboveAnotherProcess(self):
        """
        The floor is what this process knows: a claim another process made
        is read, and one this process knew of does not hide a delivery made
        since.
        """
        first = self.makeStore()
        second = self.makeStore(self.mailPath)
        a = first.getMailbox("INBOX").appendMessage(MESSAGE)
        self.assertEqual(second.getMailbox("INBOX").claimRecent(), {a})
        self.assertEqual(first.getMailbox("INBOX").claimRecent(), set())
        inbox = first.getMailbox("INBOX")
        self.assertEqual(first.recentClaims.floor(inbox._id, inbox.uidValidity), a + 1)
        b = second.getMailbox("INBOX").appendMessage(MESSAGE)
        self.assertEqual(first.getMailbox("INBOX").claimRecent(), {b})
        self.assertEqual(second.getMailbox("INBOX").claimRecent(), set())

    def test_below(self):
        """A claim stops below the UID it is given; the rest is left to the next session."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        a, b = inbox.appendMessage(MESSAGE), inbox.appendMessage(MESSAGE)
        self.assertEqual(inbox.claimRecent(below=b), {a})
        self.assertEqual(inbox.unclaimedRecent(), {b})
        self.assertEqual(inbox.counts().recent, 1)

    def test_survivesRestart(self):
        """Claims are kept across a restart of the store."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        inbox.appendMessage(MESSAGE)
        inbox.claimRecent()
        store.close()
        again = self.makeStore(self.mailPath)
        self.assertEqual(again.getMailbox("INBOX").claimRecent(), set())
        self.assertEqual(again.getMailbox("INBOX").counts().recent, 0)

    def test_indexColumnIsTheStart(self):
        """With no claim of the mailbox's UIDVALIDITY, the index's recentuid column says where claims start."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        a, b = inbox.appendMessage(MESSAGE), inbox.appendMessage(MESSAGE)
        with index.transaction(store._conn):
            store._conn.execute("UPDATE mailboxes SET recentuid = ? WHERE id = ?", (b, inbox._id))
        self.assertEqual(inbox.claimRecent(), {b})
        # A claim kept under another UIDVALIDITY (the mailbox made again)
        # is not this mailbox's.
        validity = inbox.uidValidity
        conn = sqlite3.connect(store.recentClaims.path)
        self.addCleanup(conn.close)
        conn.execute("UPDATE claims SET uidvalidity = ? WHERE mailbox = ?", (validity - 1, inbox._id))
        conn.commit()
        self.assertEqual(inbox.unclaimedRecent(), {b})
        self.assertNotIn(a, inbox.claimRecent())

    def test_noIndexLock(self):
        """Claiming does not wait for the index's write lock, which the index writers hold for whole groups."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        a = inbox.appendMessage(MESSAGE)
        store._conn.execute("PRAGMA busy_timeout = 50")
        self.addCleanup(store._conn.execute, "PRAGMA busy_timeout = %d" % (index.BUSY_TIMEOUT_MS,))
        writer = index.connect(store.indexPath)
        self.addCleanup(writer.close)
        writer.execute("BEGIN IMMEDIATE")
        self.addCleanup(writer.execute, "ROLLBACK")
        self.assertEqual(inbox.claimRecent(), {a})

    def test_beside(self):
        """The claims file is beside the index and named after it (backups and the watcher skip such names)."""
        store = self.makeStore()
        store.getMailbox("INBOX").claimRecent()
        self.assertTrue(os.path.exists(store.indexPath + recent.SUFFIX))
        self.assertTrue(os.path.basename(store.recentClaims.path).startswith(os.path.basename(store.indexPath)))
