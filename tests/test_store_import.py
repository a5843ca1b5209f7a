# -*- test-case-name: tests.test_store_import -*-
"""
Issue 16 item 11: a Maildir copied in by another tool is indexed off the
reactor thread.
"""

import os
import threading

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial import unittest

from gateway.store import maildir
from tests.test_store_mail import StoreTestMixin


class FirstOpenTests(StoreTestMixin, unittest.TestCase):
    """
    The first open of a large Maildir nobody indexed yet.
    """

    @inlineCallbacks
    def test_firstOpenScansInThread(self):
        """
        getMailbox and synchronize of a copied-in Maildir read none of its
        files on the reactor thread (the work there does not grow with the
        mailbox), and synchronize fires once every file is indexed.
        """
        store = self.makeStore(reactor=reactor)
        folder = os.path.join(self.mailPath, "Imported")
        maildir.ensureMaildir(folder)
        count = 300
        for n in range(count):
            with open(os.path.join(folder, "cur", "%d.i%d.host:2,S" % (1000 + n, n)), "wb") as f:
                f.write(b"Subject: %d\r\n\r\nbody\r\n" % (n,))
        readers = []
        measure = maildir.measureFile

        def recording(path):
            readers.append(threading.get_ident())
            return measure(path)
        self.patch(maildir, "measureFile", recording)
        reactorThread = threading.get_ident()
        mailbox = store.getMailbox("Imported")
        yield mailbox.synchronize()
        self.assertEqual(len(readers), count)
        self.assertEqual(readers.count(reactorThread), 0, "files read on the reactor thread")
        self.assertEqual(mailbox.uids(), list(range(1, count + 1)))
        self.assertEqual(mailbox.messages([1])[0].flags, {"\\Seen"})
