# -*- test-case-name: tests.test_store_folders -*-
"""
Tests for L{gateway.store.folders}: the mailbox folders on disk, walked
again only when they may have changed.
"""

import os
import shutil
import time

from twisted.trial import unittest

from gateway.store import folders


def makeMaildir(path):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub))


class FolderListingTests(unittest.TestCase):
    def setUp(self):
        self.root = self.mktemp()
        makeMaildir(self.root)
        makeMaildir(os.path.join(self.root, "Work"))
        makeMaildir(os.path.join(self.root, "Work", "Projects"))
        os.makedirs(os.path.join(self.root, "Plain"))
        self.age()

    def age(self, seconds=100):
        """
        Date every folder C{seconds} back, as if nothing changed lately
        (a walk is then kept, and a change now shows in the stamps).
        """
        then = time.time() - seconds
        for top, _dirs, _files in os.walk(self.root):
            os.utime(top, (then, then))

    def listing(self):
        return folders.FolderListing(self.root)

    def test_found(self):
        """Every folder is found with whether it is a Maildir; cur/new/tmp and dot-folders are not mailboxes."""
        os.makedirs(os.path.join(self.root, ".hidden"))
        self.assertEqual(self.listing().mailboxes(),
                         {"Work": True, "Work/Projects": True, "Plain": False})

    def test_kept(self):
        """With nothing changed, the folders are walked once."""
        listing = self.listing()
        first = listing.mailboxes()
        first["Gone"] = True
        self.assertEqual(listing.mailboxes(), {"Work": True, "Work/Projects": True, "Plain": False})
        self.assertEqual(listing.walks, 1)

    def test_created(self):
        """A folder created anywhere in the tree, even deep, is found at the next call."""
        listing = self.listing()
        listing.mailboxes()
        makeMaildir(os.path.join(self.root, "Work", "Projects", "New"))
        self.assertIn("Work/Projects/New", listing.mailboxes())
        makeMaildir(os.path.join(self.root, "Top"))
        self.assertIn("Top", listing.mailboxes())
        self.assertEqual(listing.walks, 3)

    def test_removedAndRenamed(self):
        """A folder removed or renamed is seen at the next call."""
        listing = self.listing()
        listing.mailboxes()
        shutil.rmtree(os.path.join(self.root, "Work", "Projects"))
        self.assertNotIn("Work/Projects", listing.mailboxes())
        os.rename(os.path.join(self.root, "Work"), os.path.join(self.root, "Job"))
        self.assertEqual(listing.mailboxes(), {"Job": True, "Plain": False})

    def test_becomesMaildir(self):
        """A folder given a cur/ becomes a Maildir at the next call."""
        listing = self.listing()
        listing.mailboxes()
        os.makedirs(os.path.join(self.root, "Plain", "cur"))
        self.assertTrue(listing.mailboxes()["Plain"])

    def test_racy(self):
        """A walk that saw a folder changed within the last RACY_SECONDS is not kept."""
        self.age(folders.RACY_SECONDS / 2)
        listing = self.listing()
        listing.mailboxes()
        listing.mailboxes()
        self.assertEqual(listing.walks, 2)
        self.age(folders.RACY_SECONDS + 1)
        listing.mailboxes()
        listing.mailboxes()
        self.assertEqual(listing.walks, 3)
