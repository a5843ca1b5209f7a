# -*- test-case-name: tests.test_limits -*-
"""
Connection limits on every listener (issue 16 item 10): per-address and
total limits, the login timeout, the minimum data rate, HTTP's idle
timeout and the listen backlog.
"""

import shutil
import socket
import subprocess

from twisted.internet import reactor, threads
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial import unittest
from zope.interface import directlyProvides

from gateway.admin.limits import MESSAGES, ConnectionPolicy, LimitedFactory
from gateway.service import FRONTENDS, makeEndpoint, makeService
from gateway.store.mail import MailStore
from tests.support import PASSWORD, makeDataRoot, makeTestConfig, makeTestContext


class Recorder(Protocol):
    """A protocol that keeps what it receives, and logs in on b'LOGIN\\n'."""

    account = None

    def __init__(self):
        self.received = b""
        self.lost = False

    def dataReceived(self, data):
        self.received += data
        if b"LOGIN\n" in self.received:
            self.account = "someone"

    def connectionLost(self, reason):
        self.lost = True


class RecorderFactory(ServerFactory):
    protocol = Recorder


def peer(host="192.0.2.1", port=40000):
    return IPv4Address("TCP", host, port)


class PolicyTests(unittest.TestCase):
    """The wrapper over a recording protocol, on a test clock."""

    def factory(self, protocol="imap", **limits):
        self.clock = Clock()
        return LimitedFactory(RecorderFactory(), ConnectionPolicy(protocol, **limits), self.clock)

    def connect(self, factory, host="192.0.2.1"):
        wrapper = factory.buildProtocol(peer(host))
        transport = StringTransport(peerAddress=peer(host))
        wrapper.makeConnection(transport)
        return wrapper, transport

    def test_perAddress(self):
        """Past max_connections_per_address a connection from that address gets the protocol's refusal; others still get in."""
        factory = self.factory(maxPerAddress=2)
        first, _ = self.connect(factory)
        self.connect(factory)
        refused, transport = self.connect(factory)
        self.assertEqual(transport.value(), MESSAGES["imap"]["address"])
        self.assertTrue(transport.disconnecting)
        self.assertIsNone(refused.wrappedProtocol)
        other, transport = self.connect(factory, "192.0.2.2")
        self.assertFalse(transport.disconnecting)
        first.connectionLost(None)
        again, transport = self.connect(factory)
        self.assertEqual(transport.value(), b"")
        self.assertFalse(transport.disconnecting)
        self.assertEqual(factory.refused, {"address": 1})

    def test_total(self):
        """Past max_connections any new connection is refused, whatever its address."""
        factory = self.factory(protocol="lmtp", maxConnections=1)
        self.connect(factory, "192.0.2.1")
        _, transport = self.connect(factory, "192.0.2.2")
        self.assertEqual(transport.value(), b"421 4.3.2 Too many connections, try again later\r\n")
        self.assertTrue(transport.disconnecting)

    def test_perAddressCountsFreed(self):
        """Closed connections leave no count behind for their address."""
        factory = self.factory(maxPerAddress=5)
        wrappers = [self.connect(factory)[0] for _ in range(3)]
        self.assertEqual(factory.perAddress, {"192.0.2.1": 3})
        for wrapper in wrappers:
            wrapper.connectionLost(None)
        self.assertEqual(factory.perAddress, {})
        self.assertEqual(factory.protocols, {})

    def test_loginTimeout(self):
        """A client that has not logged in within login_timeout is told so and disconnected."""
        factory = self.factory(protocol="pop3", loginTimeout=60)
        wrapper, transport = self.connect(factory)
        self.clock.advance(59)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(1)
        self.assertEqual(transport.value(), MESSAGES["pop3"]["login"])
        self.assertTrue(transport.disconnecting)

    def test_loggedInKeepsConnection(self):
        """A client that logged in in time is not touched by the login timeout."""
        factory = self.factory(loginTimeout=60)
        wrapper, transport = self.connect(factory)
        wrapper.dataReceived(b"LOGIN\n")
        self.clock.advance(600)
        self.assertFalse(transport.disconnecting)
        wrapper.connectionLost(None)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_dribble(self):
        """A line arriving a byte every 10 seconds is cut off at request_timeout plus its bytes / min_data_rate."""
        factory = self.factory(requestTimeout=20, minDataRate=500)
        wrapper, transport = self.connect(factory)
        for byte in b"a NOO":
            wrapper.dataReceived(bytes([byte]))
            self.clock.advance(10)
            if transport.disconnecting:
                break
        self.assertEqual(self.clock.seconds(), 30)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), MESSAGES["imap"]["slow"])
        self.assertEqual(factory.refused, {"slow": 1})

    def test_steadyUpload(self):
        """Input arriving faster than min_data_rate may take longer than request_timeout."""
        factory = self.factory(requestTimeout=20, minDataRate=500)
        wrapper, transport = self.connect(factory)
        wrapper.dataReceived(b"a APPEND INBOX {100000+}\r\n")
        for _ in range(100):
            wrapper.dataReceived(b"x" * 999 + b"\r")
            self.clock.advance(1)
        self.assertFalse(transport.disconnecting)
        wrapper.dataReceived(b"\n")
        self.clock.advance(3600)
        self.assertFalse(transport.disconnecting)

    def test_completeLinesIdle(self):
        """A client idle after complete lines is left to the protocol's own idle timeout."""
        factory = self.factory(requestTimeout=20, minDataRate=500)
        wrapper, transport = self.connect(factory)
        wrapper.dataReceived(b"a IDLE\r\n")
        self.clock.advance(3600)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_pausedReading(self):
        """While the server has stopped reading, a half-sent request is not the client's fault."""
        factory = self.factory(requestTimeout=20, minDataRate=500)
        wrapper, transport = self.connect(factory)
        wrapper.dataReceived(b"a APP")
        wrapper.wrappedProtocol.transport.pauseProducing()
        self.clock.advance(100)
        self.assertFalse(transport.disconnecting)
        wrapper.wrappedProtocol.transport.resumeProducing()
        wrapper.dataReceived(b"E")
        self.clock.advance(21)
        self.assertTrue(transport.disconnecting)

    def test_httpNoAnswerInsideResponse(self):
        """An HTTP client too slow while a response is being written gets no 408 in the middle of it."""
        factory = self.factory(protocol="http", requestTimeout=20, minDataRate=500)
        wrapper, transport = self.connect(factory)
        wrapper.dataReceived(b"GET / HTTP/1.1\r\nHost: x")
        wrapper.wrappedProtocol.transport.write(b"HTTP/1.1 200 OK\r\n")
        self.clock.advance(30)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"HTTP/1.1 200 OK\r\n")

    def test_disconnectingFromTransport(self):
        """The wrapper says it is disconnecting whenever the real transport is (also after abortConnection)."""
        factory = self.factory()
        wrapper, transport = self.connect(factory)
        self.assertFalse(wrapper.wrappedProtocol.transport.disconnecting)
        transport.disconnecting = True
        self.assertTrue(wrapper.wrappedProtocol.transport.disconnecting)

    def test_bytesCounted(self):
        """The wrapper counts the octets each way."""
        factory = self.factory()
        wrapper, transport = self.connect(factory)
        wrapper.dataReceived(b"12345")
        wrapper.wrappedProtocol.transport.write(b"abc")
        wrapper.wrappedProtocol.transport.writeSequence([b"de", b"f"])
        self.assertEqual((wrapper.bytesIn, wrapper.bytesOut), (5, 6))
        self.assertEqual(transport.value(), b"abcdef")

    def test_startTLSMarksWrapper(self):
        """After startTLS the wrapper provides ISSLTransport as the real transport does (POP3 STLS relies on it)."""

        class TLSTransport(StringTransport):
            def startTLS(self, context):
                directlyProvides(self, ISSLTransport)

        factory = self.factory()
        wrapper = factory.buildProtocol(peer())
        wrapper.makeConnection(TLSTransport())
        self.assertFalse(ISSLTransport.providedBy(wrapper))
        wrapper.startTLS(None)
        self.assertTrue(ISSLTransport.providedBy(wrapper))

    def test_fromConfig(self):
        """The policy of each wrapped protocol comes from its section; absent options are off."""
        config = makeTestConfig(self.mktemp())
        imap = ConnectionPolicy.fromConfig(config, "imap")
        self.assertEqual((imap.maxConnections, imap.maxPerAddress, imap.loginTimeout), (5000, 50, 60))
        self.assertEqual((imap.requestTimeout, imap.minDataRate, imap.idleTimeout), (20, 500, 0))
        http = ConnectionPolicy.fromConfig(config, "http")
        self.assertEqual((http.maxConnections, http.loginTimeout, http.idleTimeout), (2000, 0, 60))


class FrontEndTests(unittest.TestCase):
    """The wrapper around the real front-ends, over StringTransport."""

    def setUp(self):
        self.clock = Clock()
        self.context = makeTestContext(self, reactor=self.clock)
        self.context.realm._mailStoreFactory = lambda path, quota: MailStore(
            path, quota=quota, reactor=self.clock, useInotify=False)

    def wrap(self, name):
        import importlib

        factory = importlib.import_module(FRONTENDS[name]).makeFactory(self.context)
        return LimitedFactory(factory, ConnectionPolicy.fromConfig(self.context.config, name), self.clock)

    def connect(self, factory):
        wrapper = factory.buildProtocol(peer())
        transport = StringTransport(peerAddress=peer(), hostAddress=IPv4Address("TCP", "127.0.0.1", 143))
        wrapper.makeConnection(transport)
        return wrapper, transport

    def test_imapLoginTimeout(self):
        """An IMAP client that does not log in gets BYE after login_timeout; one that logs in stays."""
        factory = self.wrap("imap")
        idle, idleTransport = self.connect(factory)
        user, userTransport = self.connect(factory)
        user.dataReceived(b'a LOGIN demo@example.test "%s"\r\n' % PASSWORD.encode())
        self.assertIn(b"a OK", userTransport.value())
        self.clock.advance(60)
        self.assertTrue(idleTransport.value().endswith(b"* BYE Not logged in in time, closing\r\n"))
        self.assertTrue(idleTransport.disconnecting)
        self.assertFalse(userTransport.disconnecting)
        for wrapper in (idle, user):
            wrapper.connectionLost(None)

    def test_pop3PerAddress(self):
        """The 21st POP3 connection from one address gets -ERR [SYS/TEMP]."""
        factory = self.wrap("pop3")
        sessions = [self.connect(factory) for _ in range(20)]
        self.assertTrue(all(t.value().startswith(b"+OK") for _, t in sessions))
        _, transport = self.connect(factory)
        self.assertTrue(transport.value().startswith(b"-ERR [SYS/TEMP] Too many connections from your address"))
        for wrapper, _ in sessions:
            wrapper.connectionLost(None)

    def test_httpIdleTimeout(self):
        """HTTP connections are closed after [http] idle_timeout between requests, not Twisted's twelve hours."""
        factory = self.wrap("http")
        wrapper, transport = self.connect(factory)
        wrapper.dataReceived(b"GET /nothing HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertIn(b"404", transport.value())
        self.clock.advance(59)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(2)
        self.assertTrue(transport.disconnecting or transport.connected is False)

    def test_httpDribbledHeaders(self):
        """Request headers dribbled a byte every 10 seconds get 408 and the connection closes."""
        factory = self.wrap("http")
        wrapper, transport = self.connect(factory)
        for byte in b"GET / HTTP/1.1\r\nHost: lo":
            wrapper.dataReceived(bytes([byte]))
            self.clock.advance(10)
            if transport.disconnecting:
                break
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 408 Request Timeout"))
        self.assertTrue(transport.disconnecting)

    def test_lmtpPerAddress(self):
        """LMTP past its per-address limit answers 421 4.3.2."""
        self.context.config._values["lmtp", "max_connections_per_address"] = 1
        factory = self.wrap("lmtp")
        first, t1 = self.connect(factory)
        _, t2 = self.connect(factory)
        self.assertTrue(t1.value().startswith(b"220 "))
        self.assertTrue(t2.value().startswith(b"421 4.3.2"))
        first.connectionLost(None)


class WiredTests(unittest.TestCase):
    """The limits as makeService wires them, over loopback."""

    def test_perAddressOverLoopback(self):
        """Every listener of a protocol shares its per-address limit; a refused IMAP client reads BYE."""
        dataRoot = self.mktemp()
        makeDataRoot(dataRoot)
        overrides = {(name, "enabled"): False for name in FRONTENDS}
        overrides["imap", "enabled"] = True
        overrides["imap", "listen"] = ("tcp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1:backlog=10")
        overrides["imap", "max_connections_per_address"] = 2
        top = makeService(makeTestConfig(dataRoot, overrides), reactor)
        top.privilegedStartService()
        top.startService()
        self.addCleanup(top.stopService)
        ports = [child.port.getHost().port for child in top]

        def connect():
            sockets, greetings = [], []
            for port in ports + ports[:1]:
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                sockets.append(s)
                greetings.append(s.recv(200))
            for s in sockets:
                s.close()
            return greetings

        def check(greetings):
            self.assertTrue(greetings[0].startswith(b"* OK"))
            self.assertTrue(greetings[1].startswith(b"* OK"))
            self.assertEqual(greetings[2], MESSAGES["imap"]["address"])

        return threads.deferToThread(connect).addCallback(check)

    def test_listeningBacklog(self):
        """The kernel queue of a wired listener is [server] listen_backlog long (as ss shows it, capped by somaxconn)."""
        if shutil.which("ss") is None:
            raise unittest.SkipTest("ss (iproute2) is not installed")
        dataRoot = self.mktemp()
        makeDataRoot(dataRoot)
        overrides = {(name, "enabled"): False for name in FRONTENDS}
        overrides["lmtp", "enabled"] = True
        overrides["lmtp", "listen"] = ("tcp:0:interface=127.0.0.1",)
        overrides["server", "listen_backlog"] = 777
        top = makeService(makeTestConfig(dataRoot, overrides), reactor)
        top.privilegedStartService()
        top.startService()
        self.addCleanup(top.stopService)
        port = list(top)[0].port.getHost().port
        out = subprocess.run(["ss", "-ltnH", "sport = :%d" % (port,)], capture_output=True, text=True, timeout=30)
        with open("/proc/sys/net/core/somaxconn") as f:
            somaxconn = int(f.read())
        [line] = out.stdout.splitlines()
        self.assertEqual(int(line.split()[2]), min(777, somaxconn))

    def test_backlogFromConfig(self):
        """Listeners queue [server] listen_backlog connections unless their endpoint string says backlog=."""
        endpoint, _ = makeEndpoint(reactor, "tcp:0:interface=127.0.0.1", None, "1.2", "[imap] listen", 1024)
        self.assertEqual(endpoint._backlog, 1024)
        endpoint, _ = makeEndpoint(reactor, "tcp:0:backlog=7", None, "1.2", "[imap] listen", 1024)
        self.assertEqual(endpoint._backlog, 7)
        config = makeTestConfig(self.mktemp())
        self.assertEqual(config["server", "listen_backlog"], 1024)

    def test_clientsThroughWrapper(self):
        """imaplib and poplib after STARTTLS/STLS (plain login only over TLS), http.client and smtplib.LMTP work through the wrapper."""
        import http.client
        import imaplib
        import poplib
        import smtplib
        import ssl

        from tests.support import testCertificate

        dataRoot = self.mktemp()
        makeDataRoot(dataRoot, cleartextLogin=False)
        overrides = {(name, "enabled"): False for name in FRONTENDS}
        for name in ("imap", "pop3", "http", "lmtp"):
            overrides[name, "enabled"] = True
            overrides[name, "listen"] = ("tcp:0:interface=127.0.0.1",)
        top = makeService(makeTestConfig(dataRoot, overrides), reactor)
        top.privilegedStartService()
        top.startService()
        self.addCleanup(top.stopService)
        ports = {child.name.split()[0]: child.port.getHost().port
                 for child in top if child.name != "free/busy files"}  # not a listener
        tls = ssl.create_default_context(cafile=testCertificate()[0])

        def run():
            results = {}
            lmtp = smtplib.LMTP("127.0.0.1", ports["lmtp"], timeout=10)
            results["lmtp"] = lmtp.sendmail("a@example.org", ["demo@example.test"], b"Subject: x\r\n\r\nhi\r\n")
            lmtp.quit()
            imap = imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=10)
            imap.starttls(tls)
            imap.login("demo@example.test", PASSWORD)
            results["imap"] = imap.select("INBOX")
            imap.logout()
            pop = poplib.POP3("127.0.0.1", ports["pop3"], timeout=10)
            pop.stls(tls)
            pop.user("demo@example.test")
            pop.pass_(PASSWORD)
            results["pop3"] = pop.stat()
            pop.quit()
            web = http.client.HTTPConnection("127.0.0.1", ports["http"], timeout=10)
            web.request("GET", "/nothing-here")
            results["http"] = web.getresponse().status
            web.close()
            return results

        def check(results):
            self.assertEqual(results["lmtp"], {})
            self.assertEqual(results["imap"], ("OK", [b"1"]))
            self.assertEqual(results["pop3"][0], 1)
            self.assertEqual(results["http"], 404)

        return threads.deferToThread(run).addCallback(check)

    def test_timeoutsOverLoopback(self):
        """On the reactor's clock an IMAP client that never logs in reads BYE and a half-sent HTTP request 408."""
        dataRoot = self.mktemp()
        makeDataRoot(dataRoot)
        overrides = {(name, "enabled"): False for name in FRONTENDS}
        for name in ("imap", "http"):
            overrides[name, "enabled"] = True
            overrides[name, "listen"] = ("tcp:0:interface=127.0.0.1",)
        overrides["imap", "login_timeout"] = 1
        overrides["http", "request_timeout"] = 1
        top = makeService(makeTestConfig(dataRoot, overrides), reactor)
        top.privilegedStartService()
        top.startService()
        self.addCleanup(top.stopService)
        ports = {child.name.split()[0]: child.port.getHost().port
                 for child in top if child.name != "free/busy files"}  # not a listener

        def readAll(s):
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return data
                data += chunk

        def run():
            imap = socket.create_connection(("127.0.0.1", ports["imap"]), timeout=30)
            web = socket.create_connection(("127.0.0.1", ports["http"]), timeout=30)
            web.sendall(b"GET / HTTP/1.1\r\nHost: loc")
            try:
                return readAll(imap), readAll(web)
            finally:
                imap.close()
                web.close()

        def check(result):
            imap, web = result
            self.assertTrue(imap.startswith(b"* OK"))
            self.assertTrue(imap.endswith(MESSAGES["imap"]["login"]), imap)
            self.assertEqual(web, MESSAGES["http"]["slow"])

        return threads.deferToThread(run).addCallback(check)
