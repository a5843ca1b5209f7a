# -*- test-case-name: tests.test_store_prepare -*-
"""
The two halves of appending a message: L{Mailbox.prepareMessage} (the slow
part, safe in a thread) and L{Mailbox.commitMessage} (the index).
"""

import os

from twisted.trial import unittest
from zope.interface.verify import verifyObject

from gateway.errors import QuotaExceeded
from gateway.interfaces import IStagedDelivery
from tests.support import makeTestContext


class PrepareCommitTests(unittest.TestCase):
    def setUp(self):
        self.context = makeTestContext(self)
        self.store = self.context.realm.accountFor("demo@example.test").mailStore
        self.mailbox = self.store.getMailbox("INBOX")

    def test_interface(self):
        """A store mailbox provides IStagedDelivery (as well as IMailbox)."""
        self.assertTrue(verifyObject(IStagedDelivery, self.mailbox))

    def test_invisibleUntilCommitted(self):
        """A prepared message is in tmp/ only; commit gives it a UID and the index its sizes."""
        prepared = self.mailbox.prepareMessage(b"Subject: a\nb\n")
        self.assertEqual(self.mailbox.uids(), [])
        self.assertTrue(prepared.path.startswith(os.path.join(self.mailbox._path(), "tmp")))
        uid = self.mailbox.commitMessage(prepared, flags=["\\Seen"])
        [info] = self.mailbox.messages([uid])
        self.assertEqual((info.size, sorted(info.flags)), (15, ["\\Seen"]))
        self.assertFalse(os.path.exists(prepared.path))

    def test_linkFromPath(self):
        """A file given by path is hard-linked, not copied."""
        source = os.path.join(self.context.config.dataRoot(), "message")
        with open(source, "wb") as f:
            f.write(b"Subject: linked\r\n\r\nx\r\n")
        uid = self.mailbox.commitMessage(self.mailbox.prepareMessage(source))
        self.assertEqual(os.stat(source).st_nlink, 2)
        with self.mailbox.openMessage(uid) as f:
            self.assertEqual(f.read(), b"Subject: linked\r\n\r\nx\r\n")

    def test_quotaAtCommit(self):
        """Commit checks the quota and removes the prepared file when it refuses."""
        self.context.directory.setAccount("demo@example.test", quota=10, quotaSetting="10")
        prepared = self.mailbox.prepareMessage(b"x" * 100)
        self.assertRaises(QuotaExceeded, self.mailbox.commitMessage, prepared)
        self.assertFalse(os.path.exists(prepared.path))
        self.assertEqual(self.mailbox.uids(), [])

    def test_copyWhereNoLink(self):
        """Where a hard link is refused (another file system), the file is copied whole instead."""
        source = os.path.join(self.context.config.dataRoot(), "message")
        with open(source, "wb") as f:
            f.write(b"Subject: copied\r\n\r\n" + b"x" * 200000 + b"\r\n")

        def noLink(src, dst):
            raise OSError(18, "Invalid cross-device link")

        self.patch(os, "link", noLink)
        uid = self.mailbox.commitMessage(self.mailbox.prepareMessage(source))
        self.assertEqual(os.stat(source).st_nlink, 1)
        with self.mailbox.openMessage(uid) as f:
            self.assertEqual(f.read(), b"Subject: copied\r\n\r\n" + b"x" * 200000 + b"\r\n")
