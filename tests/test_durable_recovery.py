# -*- test-case-name: tests.test_durable_recovery -*-
"""
The recovery at the first open of a mailbox the store did not know when it
opened (L{gateway.store.mail.MailStore._recoverTemporary}) does not take
the index's write lock on the reactor thread: the MOVE journals live
processes still hold need no recovery, and what C{tmp/} keeps is counted
in the usage by the index writer (issue 14 item 2).

The store's index writer is held in a write (it has the index's lock) and
the reactor thread's connection gets a short busy timeout: taking the lock
there fails at once rather than after 30 s.
"""

import os

from twisted.internet import reactor, task
from twisted.internet.defer import inlineCallbacks
from twisted.trial import unittest

from gateway.errors import NoSuchMailbox
from gateway.store import journal, maildir
from tests.test_store_mail import StoreTestMixin
from tests.test_store_writer import holdWriter


class FirstOpenTests(StoreTestMixin, unittest.TestCase):
    """
    C{getMailbox} of a mailbox created after the store opened, while the
    writer holds the index.
    """

    timeout = 30

    def setUp(self):
        self.store = self.makeStore(reactor=reactor)
        self.store.createMailbox("New")
        self.store._ownConn.execute("PRAGMA busy_timeout = 50")

    def holdWriter(self):
        """
        Hold the store's index writer in a write until the returned event
        is set.
        """
        release, self.blocked = holdWriter(self, self.store, 20)
        return release

    @inlineCallbacks
    def test_heldJournal(self):
        """A MOVE journal of a live process (this one) does not make the first open take the index's lock."""
        path = journal.writeJournal(self.store.path, [])
        release = self.holdWriter()
        mailbox = self.store.getMailbox("New")
        release.set()
        yield self.blocked
        self.assertEqual(mailbox.name, "New")
        self.assertTrue(os.path.exists(path))

    @inlineCallbacks
    def test_keptTemporary(self):
        """Old tmp/ files another live process holds are counted in the usage by the writer, not on the reactor thread."""
        self.patch(maildir, "TMP_GRACE", 0)
        held = maildir.newBase(0, 0).replace("P%d" % (os.getpid(),), "P%d" % (os.getppid(),), 1)
        with open(os.path.join(maildir.mailboxPath(self.store.path, "New"), "tmp", held), "wb") as f:
            f.write(b"x" * 100)
        release = self.holdWriter()
        self.store.getMailbox("New")
        self.assertEqual(self.store.usage(), 0)
        release.set()
        yield self.blocked
        yield self.store._write(lambda conn, group: None)
        self.assertEqual(self.store.usage(), 100)


class DiscoverTests(StoreTestMixin, unittest.TestCase):
    """
    The mailbox list's look at the folders (C{_discover}) while the index
    writer holds the index: a Maildir another program copied in, or one
    it removed, is registered by the writer, and the reactor thread does
    not wait.
    """

    timeout = 30

    def setUp(self):
        self.store = self.makeStore(reactor=reactor)
        self.store.createMailbox("Removed")
        self.store._ownConn.execute("PRAGMA busy_timeout = 50")

    holdWriter = FirstOpenTests.holdWriter

    @inlineCallbacks
    def running(self):
        """
        Let the reactor run (a test's first lines run before it does).
        """
        yield task.deferLater(reactor, 0, lambda: None)
        self.assertTrue(reactor.running)

    @inlineCallbacks
    def test_listWhileHeld(self):
        """LIST while the index is held answers from the index; the writer then registers the folders' changes."""
        yield self.running()
        maildir.ensureMaildir(maildir.mailboxPath(self.store.path, "Copied"))
        maildir.removeTree(maildir.mailboxPath(self.store.path, "Removed"))
        release = self.holdWriter()
        listed = [info.name for info in self.store.listMailboxes()]
        self.assertIn("Removed", listed)
        self.assertNotIn("Copied", listed)
        release.set()
        yield self.blocked
        yield self.store._write(lambda conn, group: None)
        listed = [info.name for info in self.store.listMailboxes()]
        self.assertIn("Copied", listed)
        self.assertNotIn("Removed", listed)

    @inlineCallbacks
    def test_openWhileHeld(self):
        """Opening a copied-in Maildir while the index is held says it is not there yet; once registered it opens."""
        yield self.running()
        maildir.ensureMaildir(maildir.mailboxPath(self.store.path, "Copied"))
        release = self.holdWriter()
        self.assertRaises(NoSuchMailbox, self.store.getMailbox, "Copied")
        release.set()
        yield self.blocked
        yield self.store._write(lambda conn, group: None)
        self.assertEqual(self.store.getMailbox("Copied").name, "Copied")

    def test_registersAtOnce(self):
        """With the index free, LIST registers a copied-in Maildir at once, as before."""
        maildir.ensureMaildir(maildir.mailboxPath(self.store.path, "Copied"))
        self.assertIn("Copied", [info.name for info in self.store.listMailboxes()])
        self.assertIn("Copied", self.store.mailboxNames())
