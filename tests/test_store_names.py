# -*- test-case-name: tests.test_store_names -*-
"""
The mail store's account-level change feed (L{gateway.store.names}):
mailboxes created, deleted and renamed and subscriptions changed, by this
store or by another store object over the same folder (another process).
"""

from twisted.internet import task
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from gateway.interfaces import IAccountChangeFeed
from gateway.store import names
from gateway.store.mail import MailStore
from gateway.store.metadata import MetadataChange
from gateway.store.names import MailboxNameChange, SubscriptionChange
from gateway.store.watch import POLL_INTERVAL


class AccountChangesTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.path = self.mktemp()
        self.store = self.open()
        self.seen = []
        self.stop = self.store.addAccountListener(self.seen.append)
        self.addCleanup(self.stop)

    def open(self):
        store = MailStore(self.path, reactor=self.clock, useInotify=False)
        self.addCleanup(store.close)
        return store

    def changes(self):
        self.clock.advance(0)
        found = [change for batch in self.seen for change in batch]
        del self.seen[:]
        return found

    def test_interface(self):
        """The mail store provides IAccountChangeFeed."""
        self.assertTrue(verifyObject(IAccountChangeFeed, self.store))

    def test_create(self):
        """CREATE is told as one change of the new name (and of a parent it made)."""
        self.store.createMailbox("Projects/2026")
        self.assertEqual(self.changes(), [MailboxNameChange("Projects"), MailboxNameChange("Projects/2026")])

    def test_deleteAndRename(self):
        """DELETE tells the name it had; RENAME tells the new name with the old one, children too."""
        self.store.createMailbox("A/B")
        self.changes()
        self.store.renameMailbox("A", "C")
        self.assertEqual(self.changes(), [MailboxNameChange("C", "A"), MailboxNameChange("C/B", "A/B")])
        self.store.deleteMailbox("C/B")
        self.assertEqual(self.changes(), [MailboxNameChange("C/B")])

    def test_subscriptions(self):
        """SUBSCRIBE and UNSUBSCRIBE are told; subscribing a subscribed name tells nothing."""
        self.store.subscribe("Lists")
        self.assertEqual(self.changes(), [SubscriptionChange("Lists", True)])
        self.store.subscribe("Lists")
        self.assertEqual(self.changes(), [])
        self.store.unsubscribe("Lists")
        self.assertEqual(self.changes(), [SubscriptionChange("Lists", False)])

    def test_coalesced(self):
        """Several changes in one reactor turn reach a listener in one call."""
        self.store.createMailbox("X")
        self.store.subscribe("X")
        self.clock.advance(0)
        self.assertEqual(self.seen, [[MailboxNameChange("X"), SubscriptionChange("X", True)]])

    def test_anotherProcess(self):
        """A change made through another store over the same folder reaches the listener when the watcher looks."""
        other = self.open()
        other.createMailbox("Elsewhere")
        other.renameMailbox("Drafts", "Brouillons")
        other.subscribe("Elsewhere")
        self.clock.advance(0)
        self.assertEqual(self.seen, [])
        self.clock.advance(POLL_INTERVAL)
        self.assertEqual(self.changes(), [MailboxNameChange("Brouillons", "Drafts"), MailboxNameChange("Elsewhere"),
                                          SubscriptionChange("Elsewhere", True)])

    def test_removed(self):
        """A removed listener hears nothing, and the watcher stops with the last listener."""
        self.stop()
        self.store.createMailbox("Quiet")
        self.assertEqual(self.changes(), [])
        self.assertFalse(self.store._watcher.running)

    def test_generationCounted(self):
        """Each change counts in the index, which is how another process notices it cheaply."""
        before = names.generation(self.store._conn)
        self.store.createMailbox("Counted")
        self.store.subscribe("Counted")
        self.assertEqual(names.generation(self.store._conn), before + 2)

    def test_metadataFromAnotherProcess(self):
        """A metadata write recorded by another process reaches the listener (without an owner: the store's)."""
        other = self.open()
        original = names._processId
        names._processId = lambda: -1  # written by another process
        try:
            other.recordMetadataChange("INBOX", ["/shared/comment"], "demo@example.test")
            other.recordMetadataChange(None, ["/private/x"], "demo@example.test")
        finally:
            names._processId = original
        self.clock.advance(POLL_INTERVAL)
        self.assertEqual(self.changes(), [MetadataChange(None, "INBOX", ("/shared/comment",), "demo@example.test"),
                                          MetadataChange(None, None, ("/private/x",), "demo@example.test")])

    def test_ownMetadataWrites(self):
        """This process's own recorded metadata writes are not told again through the feed."""
        self.store.recordMetadataChange("INBOX", ["/shared/comment"], "demo@example.test")
        self.clock.advance(POLL_INTERVAL)
        self.assertEqual(self.changes(), [])

    def test_metadataChangesKept(self):
        """Only the last KEEP_METADATA_CHANGES metadata writes stay in the index."""
        self.patch(names, "KEEP_METADATA_CHANGES", 3)
        for i in range(5):
            self.store.recordMetadataChange("INBOX", ["/shared/n%d" % (i,)], "demo@example.test")
        kept = self.store._conn.execute("SELECT COUNT(*) FROM meta WHERE key GLOB 'metadata:*'").fetchone()[0]
        self.assertEqual(kept, 3)
