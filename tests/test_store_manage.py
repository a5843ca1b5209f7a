# -*- test-case-name: tests.test_store_manage -*-
"""
Tests for L{gateway.store.manage}: the C{*Later} forms of CREATE, DELETE,
RENAME, SUBSCRIBE and UNSUBSCRIBE are written by the store's index writer
thread, not the reactor's; the account listeners are told once they are
durable, and a group that does not commit leaves the folders as they were.
"""

import os

from twisted.internet import reactor, task
from twisted.internet.defer import inlineCallbacks
from twisted.trial import unittest

from gateway.errors import MailboxExists, NoSuchMailbox
from gateway.store import maildir, names
from gateway.store.names import MailboxNameChange, SubscriptionChange
from tests.test_store_mail import StoreTestMixin
from tests.test_store_writer import failingGroup

MESSAGE = b"Subject: kept\r\n\r\nbody\r\n"


class LaterTests(StoreTestMixin, unittest.TestCase):
    """
    Each C{*Later} form on a store whose reactor has threads.
    """

    timeout = 30

    def setUp(self):
        self.store = self.makeStore(reactor=reactor)
        self.inWriter = []
        original = names.bumpGeneration

        def bumpGeneration(conn):
            writer = self.store._writer
            self.inWriter.append(writer is not None and writer.inWriter())
            original(conn)
        self.patch(names, "bumpGeneration", bumpGeneration)

    def path(self, name):
        return maildir.mailboxPath(self.store.path, name)

    @inlineCallbacks
    def test_create(self):
        """createMailboxLater makes the mailbox and its parent in the writer thread."""
        yield self.store.createMailboxLater("Work/2024", "IPF.Note", "\\Archive")
        self.assertEqual(self.inWriter, [True])
        self.assertIn("Work/2024", self.store.mailboxNames())
        self.assertIn("Work", self.store.mailboxNames())
        self.assertTrue(maildir.isMaildir(self.path("Work/2024")))
        self.assertEqual(self.store.getMailbox("Work/2024").specialUse, "\\Archive")

    @inlineCallbacks
    def test_createExisting(self):
        """createMailboxLater of an existing mailbox fails with MailboxExists."""
        yield self.assertFailure(self.store.createMailboxLater("Drafts"), MailboxExists)

    @inlineCallbacks
    def test_createRegistersCopiedIn(self):
        """createMailboxLater of a Maildir another program made fails with MailboxExists but keeps it registered."""
        maildir.ensureMaildir(self.path("Copied"))
        yield self.assertFailure(self.store.createMailboxLater("Copied"), MailboxExists)
        self.assertIn("Copied", self.store.mailboxNames())

    @inlineCallbacks
    def test_delete(self):
        """deleteMailboxLater removes the mailbox in the writer thread; the open Mailbox learns it on the reactor."""
        self.store.createMailbox("Old")
        mailbox = self.store.getMailbox("Old")
        mailbox.appendMessage(MESSAGE)
        del self.inWriter[:]
        yield self.store.deleteMailboxLater("Old")
        self.assertEqual(self.inWriter, [True])
        self.assertNotIn("Old", self.store.mailboxNames())
        self.assertFalse(os.path.exists(self.path("Old")))
        self.assertRaises(NoSuchMailbox, lambda: mailbox.name)
        self.assertEqual(self.store.usage(), 0)

    @inlineCallbacks
    def test_deleteMissing(self):
        """deleteMailboxLater of a mailbox that is not there fails with NoSuchMailbox."""
        yield self.assertFailure(self.store.deleteMailboxLater("Nothing"), NoSuchMailbox)

    @inlineCallbacks
    def test_rename(self):
        """renameMailboxLater renames a mailbox and its children in the writer thread."""
        self.store.createMailbox("A/B")
        del self.inWriter[:]
        yield self.store.renameMailboxLater("A", "C")
        self.assertEqual(self.inWriter, [True])
        names = self.store.mailboxNames()
        self.assertIn("C/B", names)
        self.assertNotIn("A", names)
        self.assertTrue(maildir.isMaildir(self.path("C/B")))
        self.assertFalse(os.path.exists(self.path("A")))

    @inlineCallbacks
    def test_renameInbox(self):
        """renameMailboxLater of INBOX moves its messages into the new mailbox, by the writer, and leaves INBOX empty."""
        inbox = self.store.getMailbox("INBOX")
        inbox.appendMessage(MESSAGE)
        written = 0 if self.store._writer is None else self.store._writer.written
        yield self.store.renameMailboxLater("INBOX", "Old")
        self.assertEqual(self.inWriter, [True])
        self.assertEqual(self.store._writer.written, written + 2)
        self.assertEqual(inbox.uids(), [])
        self.assertEqual(len(self.store.getMailbox("Old").uids()), 1)

    @inlineCallbacks
    def test_subscriptions(self):
        """subscribeLater and unsubscribeLater change the subscriptions in the writer thread."""
        yield self.store.subscribeLater("Elsewhere")
        yield self.store.unsubscribeLater("Drafts")
        self.assertEqual(self.inWriter, [True, True])
        subscribed = self.store.subscriptions()
        self.assertIn("Elsewhere", subscribed)
        self.assertNotIn("Drafts", subscribed)

    @inlineCallbacks
    def test_listenersTold(self):
        """The account listeners hear of changes made by the writer, once they are durable."""
        heard = []
        self.addCleanup(self.store.addAccountListener(heard.extend))
        yield self.store.createMailboxLater("New")
        yield self.store.subscribeLater("New")
        yield self.store.renameMailboxLater("New", "Newer")
        yield self.store.deleteMailboxLater("Newer")
        yield task.deferLater(reactor, 0, lambda: None)
        self.assertEqual(heard, [MailboxNameChange("New"), SubscriptionChange("New", True),
                                 MailboxNameChange("Newer", "New"), MailboxNameChange("Newer")])

    def failingGroup(self, submit):
        return failingGroup(self, self.store, submit)

    @inlineCallbacks
    def test_deleteGroupFails(self):
        """A DELETE whose group does not commit leaves the mailbox, its folder and its messages."""
        self.store.createMailbox("Kept")
        uid = self.store.getMailbox("Kept").appendMessage(MESSAGE)
        yield self.failingGroup(lambda: self.store.deleteMailboxLater("Kept"))
        self.assertIn("Kept", self.store.mailboxNames())
        self.assertEqual(self.readAll(self.store.getMailbox("Kept").openMessage(uid)), MESSAGE)
        self.assertEqual([name for name in os.listdir(self.store.path) if name.startswith(".gateway-deleting-")], [])

    @inlineCallbacks
    def test_renameGroupFails(self):
        """A RENAME whose group does not commit leaves the folder under its old name."""
        self.store.createMailbox("Stay")
        yield self.failingGroup(lambda: self.store.renameMailboxLater("Stay", "Moved"))
        self.assertIn("Stay", self.store.mailboxNames())
        self.assertTrue(maildir.isMaildir(self.path("Stay")))
        self.assertFalse(os.path.exists(self.path("Moved")))
