# -*- test-case-name: tests.test_rustlstls -*-
"""
Implicit TLS over rustls (C{[tls] engine = rustls}, issue 14's idle
sessions): the wrapper over a C{StringTransport}, and real clients over an
C{ssl:} listener.
"""

import imaplib
import os
import socket
import ssl

from twisted.internet import defer, reactor, threads
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import ISSLTransport, IStreamServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from gateway import rustlstls
from gateway.errors import ConfigurationError
from gateway.service import FRONTENDS, makeEndpoint, makeService
from gateway.tlscontext import ReloadableTLS
from tests.support import PASSWORD, makeDataRoot, makeTestConfig, testCertificate

skipNoRustls = "the rtls package is not installed (pip install gateway[rustls])" if rustlstls.rtls is None else None


class Recorder(Protocol):
    """Keeps what it received and whether its transport said it was TLS."""

    def connectionMade(self):
        self.received = b""
        self.secure = ISSLTransport.providedBy(self.transport)
        self.lost = None
        self.transport.write(b"* OK ready\r\n")

    def dataReceived(self, data):
        self.received += data
        if data.endswith(b"LOGOUT\r\n"):
            self.transport.write(b"* BYE\r\n")
            self.transport.loseConnection()

    def connectionLost(self, reason):
        self.lost = reason


class Connection:
    """The wrapper over a StringTransport, and a Python ssl client over memory BIOs."""

    def __init__(self, maximum=None, tls=None):
        if tls is None:
            tls = ReloadableTLS(*testCertificate(), "1.2", "[tls] certificate", engine="rustls")
        self.tls = tls
        self.factory = rustlstls.RustlsServerFactory(tls.rustlsContext, Factory.forProtocol(Recorder))
        self.server = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 2))
        self.server.makeConnection(self.transport)
        context = ssl.create_default_context(cafile=testCertificate()[0])
        if maximum is not None:
            context.maximum_version = maximum
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.client = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")

    @property
    def protocol(self):
        return self.server.wrappedProtocol

    def pump(self):
        """Move bytes both ways until neither side has more."""
        while True:
            try:
                self.client.do_handshake()
            except ssl.SSLWantReadError:
                pass
            sent, received = self.outgoing.read(), self.transport.value()
            self.transport.clear()
            if received:
                self.incoming.write(received)
            if sent:
                self.server.dataReceived(sent)
            if not sent and not received:
                return

    def clientRead(self):
        data = b""
        while True:
            try:
                chunk = self.client.read(65536)
            except ssl.SSLWantReadError:
                return data
            if not chunk:
                return data
            data += chunk


class RustlsProtocolTests(unittest.TestCase):
    """The TLS wrapper over rustls."""

    skip = skipNoRustls

    def test_greetingAfterHandshake(self):
        """The protocol's greeting, written before the handshake, reaches a TLS 1.3 and a TLS 1.2 client after it."""
        for maximum, version in ((None, "TLSv1.3"), (ssl.TLSVersion.TLSv1_2, "TLSv1.2")):
            c = Connection(maximum)
            self.assertEqual(c.transport.value(), b"")  # nothing in clear text
            c.pump()
            self.assertEqual(c.client.version(), version)
            self.assertEqual(c.clientRead(), b"* OK ready\r\n")

    def test_minimumVersion(self):
        """With minimum_version 1.3 a TLS 1.2 client's handshake fails and the connection ends."""
        tls = ReloadableTLS(*testCertificate(), "1.3", "[tls] certificate", engine="rustls")
        c = Connection(ssl.TLSVersion.TLSv1_2, tls=tls)
        self.assertRaises(ssl.SSLError, c.pump)
        self.assertTrue(c.transport.disconnecting or c.transport.disconnected)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_transportIsSecure(self):
        """The wrapped protocol's transport provides ISSLTransport (LOGIN is allowed over it)."""
        c = Connection()
        self.assertTrue(c.protocol.secure)

    def test_largeBothWays(self):
        """300 kB from the client and 300 kB to it arrive whole."""
        c = Connection()
        c.pump()
        c.clientRead()
        upload, download = os.urandom(300000), os.urandom(300000)
        c.client.write(upload)
        c.pump()
        self.assertEqual(c.protocol.received, upload)
        c.protocol.transport.write(download)
        c.pump()
        self.assertEqual(c.clientRead(), download)

    def test_closeNotify(self):
        """loseConnection sends what waits, then close_notify, then closes the TCP connection."""
        c = Connection()
        c.pump()
        c.clientRead()
        c.client.write(b"a LOGOUT\r\n")
        c.pump()
        self.assertEqual(c.clientRead(), b"* BYE\r\n")
        self.assertTrue(c.transport.disconnecting)
        self.assertEqual(c.client.read(10), b"")
        c.client.unwrap()  # SSLWantReadError unless the server's close_notify arrived

    def test_garbage(self):
        """Bytes that are not TLS end the connection, with one line logged and no traceback."""
        c = Connection()
        c.server.dataReceived(b"a LOGIN user password\r\n")
        self.assertTrue(c.transport.disconnected or c.transport.disconnecting)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_endpoint(self):
        """An ssl: listener of the rustls engine is a rustls endpoint; of the openssl engine, Twisted's."""
        tls = ReloadableTLS(*testCertificate(), "1.2", "[tls] certificate", engine="rustls")
        endpoint, _ = makeEndpoint(reactor, "ssl:0:interface=127.0.0.1", tls, "1.2", "[imap] listen")
        self.assertIsInstance(endpoint, rustlstls.RustlsServerEndpoint)
        verifyObject(IStreamServerEndpoint, endpoint)
        tls = ReloadableTLS(*testCertificate(), "1.2", "[tls] certificate")
        endpoint, _ = makeEndpoint(reactor, "ssl:0:interface=127.0.0.1", tls, "1.2", "[imap] listen")
        self.assertNotIsInstance(endpoint, rustlstls.RustlsServerEndpoint)

    def test_badFiles(self):
        """A certificate rustls cannot load is a configuration error naming the option."""
        cert, key = testCertificate()
        error = self.assertRaises(ConfigurationError, rustlstls.rustlsContext, key, key, "1.2", "[tls] certificate")
        self.assertIn("[tls] certificate", str(error))


class RustlsListenerTests(unittest.TestCase):
    """imaplib over an ssl: listener of the rustls engine."""

    skip = skipNoRustls
    timeout = 60

    def setUp(self):
        self.dataRoot = os.path.abspath(self.mktemp())
        makeDataRoot(self.dataRoot)
        overrides = {(name, "enabled"): False for name in FRONTENDS}
        overrides["imap", "enabled"] = True
        overrides["imap", "listen"] = ("ssl:0:interface=127.0.0.1",)
        overrides["tls", "engine"] = "rustls"
        self.top = makeService(makeTestConfig(self.dataRoot, overrides), reactor)
        self.top.privilegedStartService()
        self.top.startService()
        self.addCleanup(self.top.stopService)
        self.port = list(self.top)[0].port.getHost().port

    @defer.inlineCallbacks
    def test_appendFetch(self):
        """imaplib logs in over TLS 1.3, appends a 400 kB message, fetches it back byte for byte, logs out."""
        body = b"".join(b"line %06d %s\r\n" % (n, os.urandom(24).hex().encode()) for n in range(6000))
        message = b"From: a@example.test\r\nSubject: big\r\n\r\n" + body

        def run():
            tls = ssl.create_default_context(cafile=testCertificate()[0])
            client = imaplib.IMAP4_SSL("localhost", self.port, ssl_context=tls, timeout=20)
            try:
                version = client.sock.version()
                client.login("demo@example.test", PASSWORD)
                client.append("INBOX", None, None, message)
                client.select("INBOX")
                fetched = client.fetch("1", "(BODY.PEEK[])")[1][0][1]
                return fetched, version
            finally:
                client.logout()

        fetched, version = yield threads.deferToThread(run)
        self.assertEqual(fetched, message)
        self.assertEqual(version, "TLSv1.3")


class WorkerListenerTests(unittest.TestCase):
    """A worker's adopted ssl: socket of the rustls engine speaks TLS."""

    skip = skipNoRustls
    timeout = 30

    @defer.inlineCallbacks
    def test_adoptedSocket(self):
        """A client of the socket a worker adopted gets the greeting over TLS (rustls), not in clear text."""
        from gateway.worker import _AdoptedListenerService

        listening = socket.socket()
        listening.bind(("127.0.0.1", 0))
        listening.listen(5)
        port = listening.getsockname()[1]
        tls = ReloadableTLS(*testCertificate(), "1.2", "[tls] certificate", engine="rustls")
        endpoint = rustlstls.RustlsServerEndpoint(None, tls.rustlsContext)
        listener = _AdoptedListenerService(os.dup(listening.fileno()), endpoint, Factory.forProtocol(Recorder),
                                           reactor)
        listening.close()
        listener.startService()
        self.addCleanup(listener.stopService)

        def greeting():
            context = ssl.create_default_context(cafile=testCertificate()[0])
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                with context.wrap_socket(s, server_hostname="localhost") as t:
                    return t.recv(100), t.version()

        data, version = yield threads.deferToThread(greeting)
        self.assertEqual(data, b"* OK ready\r\n")
        self.assertEqual(version, "TLSv1.3")
