# -*- test-case-name: tests.test_store_properties -*-
"""
Tests for L{gateway.store.properties}: stored message properties beside the
messages in the index (docs/xmapi.md R-PROP-2, R-PROP-4, R-STORE-1).
"""

import sqlite3

from twisted.internet.task import Clock
from twisted.trial import unittest

from gateway.store import index, properties
from gateway.store.mail import MailStore

KEYWORDS = "PS_PUBLIC_STRINGS/name=Keywords/0x101F"
REMINDER = "PSETID_Common/0x8503/0x000B"


class StoredPropertyTests(unittest.TestCase):
    def setUp(self):
        self.path = self.mktemp()
        self.store = MailStore(self.path, useInotify=False)
        self.addCleanup(self.store.close)
        self.inbox = self.store.getMailbox("INBOX")
        self.uids = [self.inbox.appendMessage(b"Subject: %d\r\n\r\nbody\r\n" % (n,)) for n in range(3)]

    def test_migrationAddsTable(self):
        """A new index is at the version with the msgprops table and its trigger (migration 3)."""
        conn = self.store._conn
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        self.assertIn("msgprops", names)
        self.assertIn("msgprops_gone", names)
        self.assertEqual(conn.execute("PRAGMA user_version").fetchone()[0], len(index.MIGRATIONS))
        self.assertIs(index.MIGRATIONS[2], index._addProperties)

    def test_olderIndexMigrated(self):
        """An index at version 2 (before stored properties) gets the table when opened, its data kept."""
        conn = sqlite3.connect(self.mktemp(), isolation_level=None)
        index.migrate(conn, index.MIGRATIONS[:2])
        conn.execute("INSERT INTO subscriptions (name) VALUES ('Sent')")
        self.assertEqual(index.migrate(conn), len(index.MIGRATIONS))
        self.assertEqual(conn.execute("SELECT count(*) FROM msgprops").fetchone()[0], 0)
        self.assertEqual(conn.execute("SELECT name FROM subscriptions").fetchall(), [("Sent",)])

    def test_setAndRead(self):
        """Set values are read back with their types; NIL deletes; messages without any are left out."""
        changed, failed = properties.setProperties(
            self.inbox, self.uids[:2], {KEYWORDS: (0x101F, ["Blue", "Travel"]), REMINDER: (0x000B, 1)})
        self.assertEqual((changed, failed), (self.uids[:2], []))
        self.assertEqual(properties.properties(self.inbox, self.uids),
                         {uid: {KEYWORDS: (0x101F, ["Blue", "Travel"]), REMINDER: (0x000B, 1)}
                          for uid in self.uids[:2]})
        properties.setProperties(self.inbox, [self.uids[0]], {REMINDER: None, "0x7FFF0003": None})
        self.assertEqual(properties.properties(self.inbox, [self.uids[0]]),
                         {self.uids[0]: {KEYWORDS: (0x101F, ["Blue", "Travel"])}})

    def test_modSeqBumped(self):
        """R-PROP-2: a change bumps the message's MODSEQ; storing the same values again changes nothing."""
        before = self.inbox.messages([self.uids[0]])[0].modseq
        properties.setProperties(self.inbox, [self.uids[0]], {REMINDER: (0x000B, 1)})
        after = self.inbox.messages([self.uids[0]])[0].modseq
        self.assertGreater(after, before)
        self.assertEqual(self.inbox.highestModSeq(), after)
        self.assertEqual(properties.setProperties(self.inbox, [self.uids[0]], {REMINDER: (0x000B, 1)}),
                         ([], []))
        self.assertEqual(self.inbox.messages([self.uids[0]])[0].modseq, after)

    def test_unchangedSince(self):
        """R-PROP-2: a message changed after UNCHANGEDSINCE fails and keeps its values; the others change."""
        properties.setProperties(self.inbox, [self.uids[1]], {REMINDER: (0x000B, 0)})
        first = self.inbox.messages([self.uids[0]])[0].modseq
        changed, failed = properties.setProperties(self.inbox, self.uids[:2], {REMINDER: (0x000B, 1)},
                                                   unchangedSince=first)
        self.assertEqual((changed, failed), ([self.uids[0]], [self.uids[1]]))
        self.assertEqual(properties.properties(self.inbox, [self.uids[1]])[self.uids[1]][REMINDER], (0x000B, 0))

    def test_limits(self):
        """R-PROP-4: past 256 properties or 64 KiB a value, nothing of the change is stored."""
        many = {"0x%04X001F" % (n,): (0x001F, "v") for n in range(1, 258)}
        self.assertRaises(properties.PropertyLimitError, properties.setProperties, self.inbox, self.uids[:1], many)
        self.assertRaises(properties.PropertyLimitError, properties.setProperties, self.inbox, self.uids[:1],
                          {KEYWORDS: (0x101F, ["x" * (64 * 1024)]), REMINDER: (0x000B, 1)})
        self.assertEqual(properties.properties(self.inbox, self.uids), {})

    def test_expungeRemoves(self):
        """R-PROP-2: EXPUNGE removes the message's properties (and a new message never inherits them)."""
        properties.setProperties(self.inbox, self.uids, {REMINDER: (0x000B, 1)})
        self.inbox.setFlags([self.uids[0]], ["\\Deleted"], "+")
        self.inbox.expunge()
        self.assertEqual(sorted(properties.properties(self.inbox, self.uids)), self.uids[1:])
        count = self.store._conn.execute("SELECT count(*) FROM msgprops WHERE uid = ?", (self.uids[0],))
        self.assertEqual(count.fetchone()[0], 0)

    def test_copyCarries(self):
        """R-PROP-2: COPY gives the copy the source's properties; the source keeps its own."""
        self.store.createMailbox("Other")
        other = self.store.getMailbox("Other")
        properties.setProperties(self.inbox, [self.uids[1]], {KEYWORDS: (0x101F, ["Red"])})
        [(source, copy)] = self.inbox.copyTo([self.uids[1]], other)
        self.assertEqual(properties.properties(other, [copy]), {copy: {KEYWORDS: (0x101F, ["Red"])}})
        self.assertEqual(properties.properties(self.inbox, [source]), {source: {KEYWORDS: (0x101F, ["Red"])}})

    def test_moveCarries(self):
        """R-PROP-2: MOVE gives the moved message its properties and leaves none behind."""
        self.store.createMailbox("Other")
        other = self.store.getMailbox("Other")
        properties.setProperties(self.inbox, [self.uids[2]], {REMINDER: (0x000B, 1)})
        [(source, moved)] = self.inbox.moveTo([self.uids[2]], other)
        self.assertEqual(properties.properties(other, [moved]), {moved: {REMINDER: (0x000B, 1)}})
        self.assertEqual(properties.properties(self.inbox, [source]), {})


class RebuildTests(unittest.TestCase):
    """
    Stored properties are kept in each mailbox's C{gateway-properties}
    file too, so that an index rebuilt from the Maildir has them back.
    """

    def setUp(self):
        self.path = self.mktemp()
        self.store = MailStore(self.path, useInotify=False, reactor=Clock())
        self.inbox = self.store.getMailbox("INBOX")
        self.uids = [self.inbox.appendMessage(b"Subject: %d\r\n\r\nbody\r\n" % (n,)) for n in range(4)]

    def rebuilt(self):
        """
        The store again, its index deleted and rebuilt from the Maildir.
        """
        import os

        from gateway.store import maildir

        self.store.close()
        for suffix in ("", "-wal", "-shm"):
            maildir.removeQuietly(os.path.join(self.path, maildir.INDEX_NAME + suffix))
        self.store = MailStore(self.path, useInotify=False, reactor=Clock())
        self.addCleanup(self.store.close)
        return self.store

    def bySubject(self, mailbox):
        """
        The stored properties of C{mailbox}'s messages by their subjects.
        """
        infos = mailbox.messages(mailbox.uids())
        found = properties.properties(mailbox, [info.uid for info in infos])
        return {bytes(info.headers).split(b"\r\n")[0]: found.get(info.uid, {}) for info in infos}

    def test_rebuild(self):
        """Set, changed, deleted, copied and moved properties are the same after an index rebuild."""
        self.store.createMailbox("Work")
        work = self.store.getMailbox("Work")
        properties.setProperties(self.inbox, self.uids, {KEYWORDS: (0x101F, ["Blue"]), REMINDER: (0x000B, 1)})
        properties.setProperties(self.inbox, [self.uids[1]], {KEYWORDS: (0x101F, ["Red", "\u00c9t\u00e9"])})
        properties.setProperties(self.inbox, [self.uids[2]], {KEYWORDS: None, REMINDER: None})
        self.inbox.copyTo([self.uids[1]], work)
        self.inbox.moveTo([self.uids[3]], work)
        before = (self.bySubject(self.inbox), self.bySubject(work))
        self.assertEqual(before[1][b"Subject: 1"], {KEYWORDS: (0x101F, ["Red", "\u00c9t\u00e9"]),
                                                    REMINDER: (0x000B, 1)})
        store = self.rebuilt()
        self.assertEqual((self.bySubject(store.getMailbox("INBOX")), self.bySubject(store.getMailbox("Work"))),
                         before)

    def test_rebuildAfterExpunge(self):
        """A message expunged before the rebuild does not give its properties to anything."""
        properties.setProperties(self.inbox, self.uids[:2], {REMINDER: (0x000B, 1)})
        self.inbox.setFlags([self.uids[0]], ["\\Deleted"], "+")
        self.inbox.expunge()
        inbox = self.rebuilt().getMailbox("INBOX")
        self.assertEqual(self.bySubject(inbox), {b"Subject: 1": {REMINDER: (0x000B, 1)}, b"Subject: 2": {},
                                                 b"Subject: 3": {}})

    def test_fileCompacted(self):
        """The file is rewritten from the index when it has grown to several times what it holds."""
        import os

        for n in range(300):
            properties.setProperties(self.inbox, [self.uids[0]], {REMINDER: (0x000B, n % 2), KEYWORDS: (
                0x101F, ["x" * 200, str(n)])})
        size = os.path.getsize(os.path.join(self.path, "INBOX", properties.PROPERTIES_FILE))
        self.assertLess(size, 3 * 65536)
        inbox = self.rebuilt().getMailbox("INBOX")
        self.assertEqual(self.bySubject(inbox)[b"Subject: 0"], {REMINDER: (0x000B, 1),
                                                                KEYWORDS: (0x101F, ["x" * 200, "299"])})

    def test_damagedLine(self):
        """A torn last line (a crash while appending) is skipped; the lines before it count."""
        import os

        properties.setProperties(self.inbox, [self.uids[0]], {REMINDER: (0x000B, 1)})
        with open(os.path.join(self.path, "INBOX", properties.PROPERTIES_FILE), "ab") as f:
            f.write(b'["12345.abc.host", {"x": [3, ')
        inbox = self.rebuilt().getMailbox("INBOX")
        self.assertEqual(self.bySubject(inbox)[b"Subject: 0"], {REMINDER: (0x000B, 1)})
