# -*- test-case-name: tests.test_release -*-
"""
A session that ends leaves nothing behind: its protocol object, its
account and the monitor's entry are released (the soak of issue 16 found
the server's memory kept after its clients left; these keep it so).
"""

import gc
import weakref

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial import unittest

from gateway.service import GatewayService
from tests.support import PASSWORD, makeTestContext


class ReleaseTests(unittest.TestCase):
    def setUp(self):
        self.clock = Clock()
        self.context = makeTestContext(self, reactor=self.clock)
        self.top = GatewayService(self.context)

    def session(self, name, lines):
        """
        A session of protocol C{name} over a C{StringTransport} that is sent
        C{lines} and then loses its connection.

        @return: weak references to its protocol and its wrapper, and what
            it was answered.
        """
        factory = self.top.factory(name)
        wrapper = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        wrapper.makeConnection(transport)
        for line in lines:
            wrapper.dataReceived(line)
            self.clock.advance(0)
        refs = weakref.ref(wrapper.wrappedProtocol), weakref.ref(wrapper)
        self.assertEqual(len(self.context.monitor.sessions), 1)
        wrapper.connectionLost(Failure(ConnectionError("gone")))
        self.clock.advance(0)
        answered = transport.value()
        del wrapper, transport, factory
        return refs, answered

    def assertReleased(self, refs):
        gc.collect()
        self.assertEqual([ref() for ref in refs], [None, None])
        self.assertEqual(self.context.monitor.sessions, {})

    def test_imap(self):
        """An IMAP session that logged in, selected and fetched is released when its connection is lost."""
        refs, answered = self.session("imap", [
            b'a LOGIN demo@example.test "' + PASSWORD.encode() + b'"\r\n', b"b SELECT INBOX\r\n",
            b"c FETCH 1:* (FLAGS)\r\n", b"d IDLE\r\n"])
        self.assertIn(b"b OK", answered)
        self.assertReleased(refs)

    def test_pop3(self):
        """A POP3 session that logged in is released when its connection is lost."""
        refs, answered = self.session("pop3", [
            b"USER demo@example.test\r\n", b"PASS " + PASSWORD.encode() + b"\r\n", b"STAT\r\n"])
        self.assertIn(b"+OK 0 0", answered)
        self.assertReleased(refs)

    def test_lmtp(self):
        """An LMTP session that delivered is released when its connection is lost."""
        refs, answered = self.session("lmtp", [
            b"LHLO x\r\n", b"MAIL FROM:<a@example.org>\r\n", b"RCPT TO:<demo@example.test>\r\n", b"DATA\r\n",
            b"Subject: hi\r\n\r\nbody\r\n.\r\n"])
        self.assertIn(b"250 2.", answered.split(b"DATA")[-1] if b"DATA" in answered else answered)
        self.assertReleased(refs)

    def test_httpAccountLetGo(self):
        """An account only the personal web site looked up is let go by two idle looks, its mail store freed: the site's account cache keeps it no longer than the realm does."""
        site = self.top.factory("http").wrappedFactory.resource.personalSite
        now = [100.0]
        site.monotonic = lambda: now[0]
        refs, answered = self.session("http", [b"GET /~demo/missing.txt HTTP/1.1\r\nHost: example.test\r\n\r\n"])
        self.assertIn(b"HTTP/1.1 404 ", answered)
        self.assertReleased(refs)
        [account] = self.context.realm.heldAccounts()
        store = weakref.ref(account.mailStore)
        del account
        now[0] += 0.5  # looked up half a second before the look: the site keeps it, and so does the realm
        self.context.idle()
        self.assertEqual(len(self.context.realm.heldAccounts()), 1)
        now[0] += 60
        self.context.idle()
        gc.collect()
        self.assertEqual((self.context.realm.heldAccounts(), store()), ([], None))
