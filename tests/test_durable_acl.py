# -*- test-case-name: tests.test_durable_acl -*-
"""
The sharing side of IMAP commands (SETACL, DELETEACL, and CREATE, DELETE
and RENAME of a shared mailbox): the C{dovecot-acl} and
C{dovecot-acl-list} files and the server's shared index are written off the
reactor thread, and the tagged OK comes once they are (issue 14 item 2).

Another connection holds the shared index's write lock; the reactor
thread's own connection to it gets a short busy timeout, so a write made
there fails at once (rather than after 30 s) and shows up as a wrong
answer or a logged error.
"""

import os
import sqlite3
import threading

from twisted.internet import reactor, task
from twisted.internet.defer import inlineCallbacks
from twisted.trial import unittest

from gateway.store import acl, maildir
from tests.support import holdWriteLock
from tests.test_durable import DurableTestMixin, Session

DEMO = "demo@example.test"
OTHER = "other@example.test"


class SharedIndexHeldTests(DurableTestMixin, unittest.TestCase):
    """
    Each command sent while another connection holds the shared index's
    lock is not answered (another session is) until the lock is let go;
    then it is, and the files and the index say what it did.
    """

    def setUp(self):
        DurableTestMixin.setUp(self)
        self.session = Session(self)
        self.sharedIndex = self.context.realm.access.sharedIndex
        self.addCleanup(self.sharedIndex.close)
        self.sharedIndex.conn.execute("PRAGMA busy_timeout = 50")
        self.threads = []
        for name in ("update", "rename", "remove"):
            self.watch(name)

    def watch(self, name):
        """
        Keep in C{self.threads} the thread that calls the shared index's
        method C{name}.
        """
        original = getattr(self.sharedIndex, name)

        def called(*args, **kwargs):
            self.threads.append(threading.current_thread())
            return original(*args, **kwargs)
        self.patch(self.sharedIndex, name, called)

    def holdIndex(self):
        """
        Take the shared index's write lock with another connection until
        the returned callable is called.
        """
        conn = sqlite3.connect(self.sharedIndex.path, isolation_level=None)
        return holdWriteLock(self, conn, end="COMMIT")

    def done(self, command):
        """
        Send C{command} (tagged with one letter) and wait for its OK.
        """
        self.session.protocol.dataReceived(command + b"\r\n")
        return self.waitFor(self.session, command[:2] + b"OK")

    def known(self, owner, mailbox):
        """
        The rows of the committed shared index for a mailbox.
        """
        conn = sqlite3.connect(self.sharedIndex.path)
        try:
            return conn.execute("SELECT identifier, negative, rights FROM acl WHERE owner = ? AND mailbox = ?"
                                " ORDER BY identifier", (owner, mailbox)).fetchall()
        finally:
            conn.close()

    def aclFile(self, name, store=None):
        store = self.store if store is None else store
        return acl.readACL(maildir.mailboxPath(store.path, name))

    def listFile(self, store=None):
        store = self.store if store is None else store
        try:
            with open(os.path.join(store.path, acl.ACL_LIST_FILE)) as f:
                return f.read().split()
        except FileNotFoundError:
            return []

    @inlineCallbacks
    def heldThenAnswered(self, command, tag):
        """
        Send C{command} while the shared index is held: no answer while
        another session is served; once let go it is answered, and the
        shared index was written off the reactor thread.

        @return: a Deferred firing with the answer.
        """
        other = Session(self)
        release = self.holdIndex()
        self.session.protocol.dataReceived(command + b"\r\n")
        for _ in range(20):
            yield task.deferLater(reactor, 0.005, lambda: None)
        self.assertIn(b"n OK", other.send(b"n NOOP"))
        self.assertNotIn(tag + b" ", self.session.read())
        release()
        out = yield self.waitFor(self.session, tag + b" ")
        self.assertNotEqual(self.threads, [])
        self.assertEqual([thread is threading.main_thread() for thread in self.threads],
                         [False] * len(self.threads))
        return out

    @inlineCallbacks
    def test_setACL(self):
        """SETACL is answered once the ACL file, the list file and the shared index hold the new rights."""
        out = yield self.heldThenAnswered(b"a SETACL Drafts other lr", b"a")
        self.assertIn(b"a OK", out)
        self.assertEqual(self.known(DEMO, "Drafts"), [("user=" + OTHER, 0, "lr")])
        self.assertEqual(self.aclFile("Drafts").rightsFor(OTHER, DEMO), frozenset("lr"))
        self.assertEqual(self.listFile(), ["Drafts"])

    @inlineCallbacks
    def test_deleteACL(self):
        """DELETEACL is answered once the entry is gone from the ACL file, the list file and the shared index."""
        yield self.done(b"s SETACL Drafts other lr")
        out = yield self.heldThenAnswered(b"a DELETEACL Drafts other", b"a")
        self.assertIn(b"a OK", out)
        self.assertEqual(self.known(DEMO, "Drafts"), [])
        self.assertEqual(self.aclFile("Drafts").rightsFor(OTHER, DEMO), frozenset())
        self.assertEqual(self.listFile(), [])

    @inlineCallbacks
    def test_createInherits(self):
        """CREATE below a shared mailbox is answered once the new mailbox's inherited ACL is in the shared index."""
        yield self.done(b"s SETACL Drafts other lr")
        out = yield self.heldThenAnswered(b"a CREATE Drafts/Child", b"a")
        self.assertIn(b"a OK", out)
        self.assertEqual(self.known(DEMO, "Drafts/Child"), [("user=" + OTHER, 0, "lr")])
        self.assertEqual(self.listFile(), ["Drafts", "Drafts/Child"])

    @inlineCallbacks
    def test_delete(self):
        """DELETE of a shared mailbox is answered once the shared index and the list file forgot it."""
        yield self.done(b"c CREATE Old")
        yield self.done(b"s SETACL Old other lr")
        out = yield self.heldThenAnswered(b"a DELETE Old", b"a")
        self.assertIn(b"a OK", out)
        self.assertEqual(self.known(DEMO, "Old"), [])
        self.assertEqual(self.listFile(), [])

    @inlineCallbacks
    def test_rename(self):
        """RENAME of a shared mailbox is answered once the shared index and the list file follow."""
        yield self.done(b"c CREATE Old")
        yield self.done(b"s SETACL Old other lr")
        out = yield self.heldThenAnswered(b"a RENAME Old New", b"a")
        self.assertIn(b"a OK", out)
        self.assertEqual(self.known(DEMO, "Old"), [])
        self.assertEqual(self.known(DEMO, "New"), [("user=" + OTHER, 0, "lr")])
        self.assertEqual(self.listFile(), ["New"])

    @inlineCallbacks
    def test_twoSessions(self):
        """Two sessions' SETACL on one mailbox, sent while the shared index is held, both end in the ACL."""
        other = Session(self)
        release = self.holdIndex()
        self.session.protocol.dataReceived(b"a SETACL Drafts other lr\r\n")
        other.protocol.dataReceived(b"b SETACL Drafts third@example.test lrs\r\n")
        for _ in range(10):
            yield task.deferLater(reactor, 0.005, lambda: None)
        release()
        yield self.waitFor(self.session, b"a OK")
        yield self.waitFor(other, b"b OK")
        self.assertEqual(self.known(DEMO, "Drafts"), [("user=" + OTHER, 0, "lr"),
                                                      ("user=third@example.test", 0, "lrs")])
        self.assertEqual(self.aclFile("Drafts").rightsFor("third@example.test", DEMO), frozenset("lrs"))
        self.assertEqual(self.aclFile("Drafts").rightsFor(OTHER, DEMO), frozenset("lr"))

    @inlineCallbacks
    def test_refused(self):
        """A SETACL the checks refuse is answered at once, and the session goes on."""
        self.assertIn(b"a NO [NONEXISTENT]", self.session.send(b"a SETACL Nothing other lr"))
        self.assertIn(b"b NO [CANNOT]", self.session.send(b"b SETACL Drafts demo lr"))
        self.session.protocol.dataReceived(b"c NOOP\r\n")
        yield self.waitFor(self.session, b"c OK")
        self.assertEqual(self.known(DEMO, "Drafts"), [])

    @inlineCallbacks
    def test_indexFails(self):
        """A SETACL whose shared index write fails gets its NO and leaves the ACL file as it was."""
        yield self.done(b"s SETACL Drafts other lr")

        def update(*args, **kwargs):
            raise sqlite3.OperationalError("disk I/O error")
        self.patch(self.sharedIndex, "update", update)
        self.session.protocol.dataReceived(b"a SETACL Drafts other +w\r\n")
        out = yield self.waitFor(self.session, b"a ")
        self.assertIn(b"a NO", out)
        self.assertEqual(self.aclFile("Drafts").rightsFor(OTHER, DEMO), frozenset("lr"))
        self.assertEqual(self.listFile(), ["Drafts"])
        self.flushLoggedErrors(sqlite3.OperationalError)
