# -*- test-case-name: tests.test_lmtp_socketmap -*-
"""
The Postfix socketmap lookup service: netstring requests over
StringTransport, and the wired listener over loopback.
"""

import socket

from twisted.internet import reactor, threads
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from gateway.lmtp.socketmap import SocketmapServer
from gateway.service import FRONTENDS, makeService
from tests.support import makeTestContext


def netstring(text):
    data = text.encode("utf-8") if isinstance(text, str) else text
    return b"%d:%s," % (len(data), data)


class LookupTests(unittest.TestCase):
    def setUp(self):
        self.context = makeTestContext(self)
        self.directory = self.context.directory
        self.clock = Clock()
        self.transport = StringTransport()
        self.proto = SocketmapServer(self.directory, timeout=300, clock=self.clock)
        self.proto.makeConnection(self.transport)

    def ask(self, *requests):
        self.transport.clear()
        self.proto.dataReceived(b"".join(netstring(r) for r in requests))
        return self.transport.value()

    def test_accountsAndAliases(self):
        """Accounts, account aliases, router records and domain aliases are found; the value is the account."""
        self.directory.setDomain("example.test", aliases=("mail.example.test",))
        self.directory.addRouterRecord("john@example.test", "other@example.test")
        for key, value in [
            ("demo@example.test", "demo@example.test"),
            ("DEMO@Example.TEST", "demo@example.test"),
            ("demo.user@example.test", "demo@example.test"),
            ("john@example.test", "other@example.test"),
            ("other@mail.example.test", "other@example.test"),
        ]:
            self.assertEqual(self.ask("virtual " + key), netstring("OK " + value), key)

    def test_detail(self):
        """user+detail@domain is found when user@domain is, whatever the detail."""
        self.assertEqual(self.ask("virtual demo+Calendar@example.test"), netstring("OK demo@example.test"))
        self.assertEqual(self.ask("virtual nobody+x@example.test"), netstring("NOTFOUND "))

    def test_unknown(self):
        """Unknown addresses, other domains, disabled accounts, accounts without lmtp and Postfix's
        partial keys (@domain, a bare local part) are NOTFOUND."""
        self.directory.addAccount("off@example.test", "{PLAIN}x", enabled=False)
        self.directory.addAccount("nolmtp@example.test", "{PLAIN}x", services=frozenset({"imap"}))
        for key in ("nobody@example.test", "demo@example.org", "off@example.test", "nolmtp@example.test",
                    "@example.test", "demo", "a@b@example.test"):
            self.assertEqual(self.ask("virtual " + key), netstring("NOTFOUND "), key)

    def test_domains(self):
        """The domain map knows our domains and their aliases."""
        self.directory.setDomain("example.test", aliases=("mail.example.test",))
        self.assertEqual(self.ask("domain example.test"), netstring("OK example.test"))
        self.assertEqual(self.ask("domain MAIL.example.test"), netstring("OK example.test"))
        self.assertEqual(self.ask("domain example.org"), netstring("NOTFOUND "))

    def test_severalRequests(self):
        """Requests sent together, even split mid-netstring, are answered in order on one connection."""
        stream = netstring("virtual demo@example.test") + netstring("virtual nobody@example.test")
        self.transport.clear()
        for i in range(len(stream)):
            self.proto.dataReceived(stream[i:i + 1])
        self.assertEqual(self.transport.value(), netstring("OK demo@example.test") + netstring("NOTFOUND "))
        self.assertFalse(self.transport.disconnecting)

    def test_badRequests(self):
        """An unknown map or a request without a key gets PERM, and the connection goes on."""
        self.assertEqual(self.ask("aliases demo@example.test"), netstring("PERM no such map: aliases"))
        self.assertEqual(self.ask("virtual"), netstring("PERM expected a map name and a key"))
        self.assertEqual(self.ask(b"virtual \xff@x"), netstring("PERM request is not UTF-8"))
        self.assertEqual(self.ask("virtual demo@example.test"), netstring("OK demo@example.test"))

    def test_notNetstring(self):
        """Bytes that are not a netstring, or a request over the size limit, close the connection."""
        self.proto.dataReceived(b"virtual demo@example.test\n")
        self.assertTrue(self.transport.disconnecting)
        transport = StringTransport()
        proto = SocketmapServer(self.directory, timeout=300, clock=self.clock)
        proto.makeConnection(transport)
        proto.dataReceived(b"100000:virtual ")
        self.assertTrue(transport.disconnecting)

    def test_lookupError(self):
        """A directory failure answers TEMP (Postfix then defers, it does not bounce)."""
        def broken(name, localAddress=None):
            raise OSError("directory unreadable")

        self.patch(self.directory, "resolve", broken)
        self.assertEqual(self.ask("virtual demo@example.test"), netstring("TEMP lookup failed"))
        self.flushLoggedErrors(OSError)

    def test_idleTimeout(self):
        """An idle connection is closed after the configured timeout."""
        self.clock.advance(299)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(2)
        self.assertTrue(self.transport.disconnecting)


class WiringTests(unittest.TestCase):
    def test_listener(self):
        """[socketmap] enabled = yes starts a listener on [socketmap] listen that answers over TCP."""
        context = makeTestContext(self, reactor=reactor, clock=reactor)
        config = context.config
        for name in FRONTENDS:
            config._values[name, "enabled"] = False
        config._values["socketmap", "enabled"] = True
        config._values["socketmap", "listen"] = ["tcp:0:interface=127.0.0.1"]
        top = makeService(config, reactor=reactor)
        top.privilegedStartService()
        top.startService()
        self.addCleanup(top.stopService)
        [listener] = list(top)
        port = listener.port.getHost().port

        def ask():
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(netstring("virtual demo+x@example.test") + netstring("domain nowhere.example"))
                received = b""
                while received.count(b",") < 2:
                    chunk = s.recv(1000)
                    if not chunk:
                        break
                    received += chunk
                return received

        def check(received):
            self.assertEqual(received, netstring("OK demo@example.test") + netstring("NOTFOUND "))

        return threads.deferToThread(ask).addCallback(check)
