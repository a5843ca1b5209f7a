# -*- test-case-name: tests.test_durable_login -*-
"""
Opening an account's mail store at login (the index's migrations, the
default mailboxes of a new account, the recovery of what a dead process
left) runs in the thread pool, not on the reactor thread: while another
process holds the index's write lock, other sessions are served, the login
is answered once the store is open, and concurrent logins of one account
share the one opening (issue 14 item 2).

Another connection holds the index's write lock (as another process's
writer would); the busy timeout is shortened to 5 s so that the reactor
thread, where it used to wait, gives up within the test's time.
"""

import os
import sqlite3

from twisted.internet import reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from gateway.http.server import makeFactory as makeHTTPFactory
from gateway.lmtp.server import LMTPServer
from gateway.pop3.server import POP3Factory
from gateway.store import index, maildir
from gateway.store.mail import DEFAULT_MAILBOXES, MailStore
from tests.support import PASSWORD, holdWriteLock, makeTestContext
from tests.test_durable import DurableTestMixin, Session
from tests.test_lmtp_delivery import SessionMixin, mailFiles
from tests.test_pop3 import TLSStringTransport

LOGIN = b'L LOGIN demo "%s"' % (PASSWORD.encode(),)


class Bare(Session):
    """
    An IMAP session that has not logged in.
    """

    login = False


class IndexHeldMixin:
    """
    Demo's index made and its write lock held by a connection of the
    test's own (as another process's writer would), before anything
    opened demo's store.
    """

    def demoIndex(self, directory):
        record = directory.getAccount("demo@example.test")
        self.mailPath = os.path.join(record.path.path, "mail")
        self.indexPath = os.path.join(self.mailPath, maildir.INDEX_NAME)

    def holdIndex(self, version=None):
        """
        Make demo's index (no mailboxes yet; at schema C{version} if given)
        and hold its write lock from a connection of the test's own.

        @return: a no-argument callable that lets it go.
        """
        os.makedirs(self.mailPath, exist_ok=True)
        conn = index.connect(self.indexPath)
        if version is not None:
            conn.execute("PRAGMA user_version = %d" % (version,))
        return holdWriteLock(self, conn)


class LoginOpensOffReactorTests(IndexHeldMixin, DurableTestMixin, unittest.TestCase):
    """
    IMAP logins of an account whose store needs opening while its index is
    locked by another connection.
    """

    contextReactor = reactor

    def setUp(self):
        self.patch(index, "BUSY_TIMEOUT_MS", 5000)
        DurableTestMixin.setUp(self)
        self.demoIndex(self.context.directory)

    @inlineCallbacks
    def loginWhileHeld(self, version=None):
        """
        Two sessions log in as demo while the index is held: neither is
        answered while a third session is served; once the lock is let go
        both are.

        @return: a Deferred firing with the two sessions.
        """
        yield task.deferLater(reactor, 0, lambda: None)
        release = self.holdIndex(version)
        first, second = Bare(self), Bare(self)
        self.assertEqual(first.send(LOGIN), b"")
        self.assertEqual(second.send(LOGIN), b"")
        other = Bare(self)
        self.assertIn(b"c OK", other.send(b"c CAPABILITY"))
        yield task.deferLater(reactor, 0.2, lambda: None)
        self.assertEqual(first.read(), b"")
        self.assertEqual(second.read(), b"")
        release()
        yield self.waitFor(first, b"L OK")
        yield self.waitFor(second, b"L OK")
        return first, second

    @inlineCallbacks
    def test_newAccount(self):
        """A new account's default mailboxes are made off the reactor; both logins share the one opening."""
        first, second = yield self.loginWhileHeld()
        self.assertEqual(len(self.stores), 1)
        self.assertIs(first.protocol.account, second.protocol.account)
        self.assertEqual(sorted(self.stores[0].mailboxNames()), sorted(n for n, _, _ in DEFAULT_MAILBOXES))
        self.assertIn(b"s OK", (yield self.waitFor(first, b"s OK", first.send(b"s SELECT INBOX"))))

    @inlineCallbacks
    def test_migration(self):
        """An index at an older schema is brought up to date off the reactor, then the login is answered."""
        yield self.loginWhileHeld(version=index.SCHEMA_VERSION - 1)
        conn = sqlite3.connect(self.indexPath)
        self.addCleanup(conn.close)
        self.assertEqual(conn.execute("PRAGMA user_version").fetchone()[0], index.SCHEMA_VERSION)
        self.assertEqual(len(self.stores), 1)

    @inlineCallbacks
    def test_heldAccountAtOnce(self):
        """Once the account is open, a later login is answered without another opening."""
        yield self.loginWhileHeld()
        third = Bare(self)
        self.assertIn(b"L OK", third.send(LOGIN))
        self.assertEqual(len(self.stores), 1)

    @inlineCallbacks
    def test_corruptIndex(self):
        """An index that is not a database: the login answers as it did on the reactor thread."""
        yield task.deferLater(reactor, 0, lambda: None)
        os.makedirs(self.mailPath, exist_ok=True)
        with open(self.indexPath, "wb") as f:
            f.write(b"this is not a database" * 100)
        session = Bare(self)
        out = yield self.waitFor(session, b"L ", session.send(LOGIN))
        self.assertIn(b"L NO [SERVERBUG]", out)
        self.assertTrue(self.flushLoggedErrors(sqlite3.DatabaseError))
        other = Bare(self)
        self.assertIn(b"c OK", other.send(b"c CAPABILITY"))


class DeliveryOpensOffReactorTests(IndexHeldMixin, SessionMixin, unittest.TestCase):
    """
    An LMTP delivery to an account whose store needs opening while its
    index is locked by another connection.
    """

    timeout = 60

    @inlineCallbacks
    def test_delivery(self):
        """The store opens off the reactor: another session is served meanwhile, and the 250 comes after the release."""
        self.patch(index, "BUSY_TIMEOUT_MS", 5000)
        self.startSession(runInThread=None, reactor=reactor)
        self.context.realm._mailStoreFactory = lambda path, quota: MailStore(path, quota=quota, reactor=reactor,
                                                                             useInotify=False)
        self.demoIndex(self.context.directory)
        yield task.deferLater(reactor, 0, lambda: None)
        release = self.holdIndex()
        self.envelope(b"demo@example.test")
        self.send(b"Subject: x", b"", b"y", b".")
        other = LMTPServer(self.context, clock=self.clock)
        otherTransport = StringTransport()
        other.makeConnection(otherTransport)
        self.addCleanup(other.connectionLost, None)
        yield task.deferLater(reactor, 0.2, lambda: None)
        otherTransport.clear()
        other.dataReceived(b"NOOP\r\n")
        self.assertEqual(otherTransport.value()[:3], b"250")
        self.assertEqual(self.replies(), [])
        release()
        while not self.replies():
            yield task.deferLater(reactor, 0.005, lambda: None)
        self.assertEqual([r[:3] for r in self.replies()], ["250"])
        self.assertEqual(len(mailFiles(self.context, "demo")), 1)
        self.addCleanup(self.context.realm.accountFor("demo@example.test").mailStore.close)


class POP3LoginOpensOffReactorTests(IndexHeldMixin, unittest.TestCase):
    """
    A POP3 login (USER/PASS) of an account whose store needs opening
    while its index is locked by another connection.
    """

    timeout = 60

    def connect(self):
        protocol = self.factory.buildProtocol(None)
        transport = TLSStringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 110), peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        protocol.makeConnection(transport)
        self.addCleanup(lambda: protocol.connectionLost(None) if protocol.transport else None)
        transport.clear()
        return protocol, transport

    @inlineCallbacks
    def test_login(self):
        """Another session is served while the store opens; PASS's +OK comes once it is open."""
        self.patch(index, "BUSY_TIMEOUT_MS", 5000)
        context = makeTestContext(self, reactor=reactor)
        context.realm._mailStoreFactory = lambda path, quota: MailStore(path, quota=quota, reactor=reactor,
                                                                        useInotify=False)
        self.factory = POP3Factory(context, clock=Clock())
        self.demoIndex(context.directory)
        yield task.deferLater(reactor, 0, lambda: None)
        release = self.holdIndex()
        protocol, transport = self.connect()
        protocol.dataReceived(b"USER demo\r\nPASS " + PASSWORD.encode() + b"\r\n")
        other, otherTransport = self.connect()
        other.dataReceived(b"NOOP\r\nCAPA\r\n")
        self.assertIn(b"+OK", otherTransport.value())
        yield task.deferLater(reactor, 0.2, lambda: None)
        self.assertEqual(transport.value(), b"+OK Send your password.\r\n")  # USER's only
        release()
        while transport.value().count(b"\r\n") < 2:
            yield task.deferLater(reactor, 0.005, lambda: None)
        self.assertTrue(transport.value().splitlines()[1].startswith(b"+OK"), transport.value())
        account = context.realm.accountFor("demo@example.test")
        self.addCleanup(account.mailStore.close)
        self.assertIn("INBOX", account.mailStore.mailboxNames())


class WebSiteOpensOffReactorTests(IndexHeldMixin, unittest.TestCase):
    """
    An anonymous request for C{/~demo/...} when demo's store needs opening
    while its index is locked by another connection.
    """

    timeout = 60

    def send(self, path):
        transport = StringTransport(hostAddress=IPv4Address("TCP", "127.0.0.1", 8100),
                                    peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        protocol = self.site.buildProtocol(transport.getPeer())
        protocol.makeConnection(transport)
        protocol.dataReceived(b"GET %s HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n" % (path,))
        return transport

    @inlineCallbacks
    def heldThenServed(self, path, end):
        """
        Request C{path} while demo's index is held: another request is
        answered meanwhile, C{path} once the lock is let go.

        @return: a Deferred firing with the raw response.
        """
        self.patch(index, "BUSY_TIMEOUT_MS", 5000)
        context = makeTestContext(self, reactor=reactor)
        context.realm._mailStoreFactory = lambda path, quota: MailStore(path, quota=quota, reactor=reactor,
                                                                        useInotify=False)
        self.site = makeHTTPFactory(context)
        self.demoIndex(context.directory)
        files = os.path.join(os.path.dirname(self.mailPath), "files")
        os.makedirs(files, exist_ok=True)
        with open(os.path.join(files, "hello.txt"), "wb") as f:
            f.write(b"hello")
        yield task.deferLater(reactor, 0, lambda: None)
        release = self.holdIndex()
        page = self.send(path)
        self.assertIn(b" 404 ", self.send(b"/nothing-here").value())
        yield task.deferLater(reactor, 0.2, lambda: None)
        self.assertEqual(page.value(), b"")
        release()
        while end not in page.value():
            yield task.deferLater(reactor, 0.005, lambda: None)
        self.assertTrue(page.value().startswith(b"HTTP/1.1 200 "), page.value()[:100])
        account = context.realm.accountFor("demo@example.test")
        self.addCleanup(account.mailStore.close)
        return page.value()

    def test_page(self):
        """A page of the personal web site: served once the store is open."""
        return self.heldThenServed(b"/~demo/hello.txt", b"hello")

    @inlineCallbacks
    def test_freeBusy(self):
        """/freebusy/<address>.vfb: generated once the store is open."""
        out = yield self.heldThenServed(b"/freebusy/demo@example.test.vfb", b"END:VCALENDAR")
        self.assertIn(b"BEGIN:VFREEBUSY", out)
