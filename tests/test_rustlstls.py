# -*- test-case-name: tests.test_rustlstls -*-
"""
TLS over rustls (C{[tls] engine = rustls}, issue 14's idle sessions): the
wrapper over a C{StringTransport}, real clients over an C{ssl:} listener,
and STARTTLS, STLS and AUTH TLS over rustls.
"""

import ftplib
import imaplib
import io
import os
import poplib
import socket
import ssl
import subprocess

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
from gateway.tlscert import makeSelfSigned
from gateway.tlscontext import ReloadableTLS
from tests.support import PASSWORD, makeDataRoot, makeTestConfig, testCertificate
from tests.test_tlscontext import SSLListenerMixin, der, serveIMAPOverSSL, serverCertificate

CURL = "/usr/bin/curl"
LFTP = "/usr/bin/lftp"

skipNoRustls = "the rtls package is not installed (pip install rtls)" if rustlstls.rtls is None else None


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
        self.connectClient(maximum)

    def connectClient(self, maximum=None):
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


class StartedConnection(Connection):
    """
    A clear-text connection over a StringTransport whose protocol said
    "begin TLS" and started TLS over rustls (L{rustlstls.startTLS}), and a
    Python ssl client over memory BIOs.

    @ivar clear: what the connection sent in clear text.
    """

    def __init__(self):
        self.tls = ReloadableTLS(*testCertificate(), "1.2", "[tls] certificate", engine="rustls")
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 2))
        self.recorder = Recorder()
        self.transport.protocol = self.recorder
        self.recorder.makeConnection(self.transport)
        self.recorder.transport.write(b"a OK Begin TLS now\r\n")
        rustlstls.startTLS(self.transport, self.tls.rustlsContext)
        self.server = self.transport.protocol
        self.clear = self.transport.value()
        self.transport.clear()
        self.connectClient()

    @property
    def protocol(self):
        return self.recorder


class StartTLSTests(unittest.TestCase):
    """TLS over rustls started on a connection whose protocol is running."""

    skip = skipNoRustls

    def test_clearTextThenTLS(self):
        """What was written before goes out in clear; the protocol's next write waits for the handshake, then is encrypted."""
        c = StartedConnection()
        self.assertEqual(c.clear, b"* OK ready\r\na OK Begin TLS now\r\n")
        self.assertIs(c.recorder.transport, c.server)
        self.assertIs(c.server.wrappedProtocol, c.recorder)
        self.assertTrue(ISSLTransport.providedBy(c.recorder.transport))
        c.recorder.transport.write(b"* CAPABILITY IMAP4rev1\r\n")
        self.assertEqual(c.transport.value(), b"")
        c.pump()
        self.assertEqual(c.client.version(), "TLSv1.3")
        self.assertEqual(c.clientRead(), b"* CAPABILITY IMAP4rev1\r\n")
        self.assertNotIn(b"CAPABILITY", c.transport.value())

    def test_bothWays(self):
        """After the handshake the protocol receives what the client sends, and its LOGOUT closes with close_notify."""
        c = StartedConnection()
        c.pump()
        c.client.write(b"a LOGIN demo secret\r\na LOGOUT\r\n")
        c.pump()
        self.assertEqual(c.recorder.received, b"a LOGIN demo secret\r\na LOGOUT\r\n")
        self.assertEqual(c.clientRead(), b"* BYE\r\n")
        self.assertTrue(c.transport.disconnecting)
        c.client.unwrap()

    def test_engineChooses(self):
        """A connection's startTLS goes over rustls with the rustls engine's factory as the TLS server, else to Twisted's."""

        class TCP(StringTransport):
            def startTLS(self, contextFactory, normal=True):
                self.started = (contextFactory, normal)

        class Connection(rustlstls.StartTLSOverRustls, TCP):
            pass

        rustls = ReloadableTLS(*testCertificate(), "1.2", "[tls] certificate", engine="rustls")
        openssl = ReloadableTLS(*testCertificate(), "1.2", "[tls] certificate")
        for factory, normal in ((openssl, True), (rustls, False)):
            connection = Connection()
            connection.protocol = protocol = Recorder()
            protocol.makeConnection(connection)
            connection.startTLS(factory, normal)
            self.assertEqual(connection.started, (factory, normal))
            self.assertIs(connection.protocol, protocol)
        connection = Connection()
        connection.protocol = protocol = Recorder()
        protocol.makeConnection(connection)
        connection.startTLS(rustls)
        self.assertFalse(hasattr(connection, "started"))
        self.assertIsInstance(connection.protocol, rustlstls.RustlsServerProtocol)
        self.assertIs(protocol.transport, connection.protocol)


def clientHello(name="localhost", **options):
    """The ClientHello a Python ssl client sends, asking for C{name} (C{None}: no name)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    for key, value in options.items():
        setattr(context, key, value)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname=name)
    try:
        client.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


class ServerNameTests(unittest.TestCase):
    """Reading the server name from a ClientHello, which no length in it is trusted for."""

    def test_name(self):
        """The name a TLS 1.3 and a TLS 1.2 client ask for, in lower case."""
        self.assertEqual(rustlstls.serverName(clientHello("IMAP.Other.test")), "imap.other.test")
        hello = clientHello("mail.example.test", maximum_version=ssl.TLSVersion.TLSv1_2)
        self.assertEqual(rustlstls.serverName(hello), "mail.example.test")

    def test_noName(self):
        """A ClientHello without the extension (an IP address as the host) names nothing."""
        self.assertIsNone(rustlstls.serverName(clientHello(None)))

    def test_moreNeeded(self):
        """Every proper prefix of a ClientHello asks for more; the whole one gives the name."""
        hello = clientHello("other.test")
        for end in range(len(hello)):
            self.assertIs(rustlstls.serverName(hello[:end]), Ellipsis, end)
        self.assertEqual(rustlstls.serverName(hello + b"more"), "other.test")

    def test_splitAcrossRecords(self):
        """A ClientHello in two handshake records (as TLS allows) still gives the name."""
        hello = clientHello("other.test")
        body = hello[5:]
        records = b"".join(b"\x16\x03\x01" + len(part).to_bytes(2, "big") + part for part in (body[:40], body[40:]))
        self.assertEqual(rustlstls.serverName(records), "other.test")

    def test_notAClientHello(self):
        """Clear text, another record type, a zero length and a name that is no host name give no name."""
        self.assertIsNone(rustlstls.serverName(b"a LOGIN user password\r\n"))
        self.assertIsNone(rustlstls.serverName(b"\x17\x03\x03\x00\x05hello"))
        self.assertIsNone(rustlstls.serverName(b"\x16\x03\x01\x00\x00"))
        hello = bytearray(clientHello("aaaa.test"))
        at = bytes(hello).index(b"aaaa.test")
        for byte in (0xE9, 0x7F, ord("/")):
            hello[at] = byte
            self.assertIsNone(rustlstls.serverName(bytes(hello)))

    def test_lengthsBeyondTheData(self):
        """Any length inside a ClientHello made larger than what follows gives no name, never an exception."""
        hello = clientHello("other.test")
        for at in range(9, len(hello)):
            for value in (0xFF, 0x7F):
                changed = bytearray(hello)
                changed[at] = value
                self.assertIn(rustlstls.serverName(bytes(changed)), (None, Ellipsis, "other.test"), at)


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

    def test_helloByteByByte(self):
        """A ClientHello that arrives a byte at a time is read whole before TLS begins; the greeting follows."""
        c = Connection()
        try:
            c.client.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = c.outgoing.read()
        for n in range(len(hello)):
            c.server.dataReceived(hello[n:n + 1])
        c.incoming.write(c.transport.value())
        c.transport.clear()
        c.pump()
        self.assertEqual(c.clientRead(), b"* OK ready\r\n")

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

    def test_closeBeforeHandshake(self):
        """Closed before the handshake, a connection sends its waiting greeting after it, then close_notify, then closes."""
        c = Connection()
        c.protocol.transport.loseConnection()
        self.assertFalse(c.transport.disconnecting)  # the greeting waits for the handshake
        self.assertTrue(c.server.disconnecting)
        c.pump()
        self.assertEqual(c.clientRead(), b"* OK ready\r\n")
        self.assertTrue(c.transport.disconnecting)
        c.client.unwrap()

    def test_writeAfterLost(self):
        """What the protocol writes after the connection was lost is dropped, not kept."""
        c = Connection()
        c.pump()
        transport = c.protocol.transport
        c.transport.clear()
        c.server.connectionLost(None)
        transport.write(b"* 1 EXISTS\r\n")
        transport.loseConnection()
        self.assertIsNone(c.server._waiting)
        self.assertEqual(c.transport.value(), b"")

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


class RustlsSNITests(unittest.TestCase):
    """Per-domain certificates over an ssl: listener of the rustls engine."""

    skip = skipNoRustls
    timeout = 60

    def setUp(self):
        self.dataRoot = os.path.abspath(self.mktemp())
        directory = makeDataRoot(self.dataRoot)
        directory.addDomain("other.test")
        folder = os.path.join(self.dataRoot, "domains", "other.test", "tls")
        os.makedirs(folder)
        self.cert, self.key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        makeSelfSigned(self.cert, self.key, hostnames=("other.test", "imap.other.test"))
        self.port = serveIMAPOverSSL(self, self.dataRoot, "rustls")

    @defer.inlineCallbacks
    def test_domainCertificate(self):
        """A client naming the domain's server gets its certificate; one naming another, the [tls] one."""
        got = yield threads.deferToThread(serverCertificate, self.port, "imap.other.test", self.cert)
        self.assertEqual(got, der(self.cert))
        got = yield threads.deferToThread(serverCertificate, self.port, "localhost", testCertificate()[0])
        self.assertEqual(got, der(testCertificate()[0]))

    @defer.inlineCallbacks
    def test_brokenDomainFileFallsBack(self):
        """A domain certificate that cannot be loaded leaves the [tls] certificate serving that name."""
        with open(self.cert, "w") as f:
            f.write("broken\n")
        got = yield threads.deferToThread(serverCertificate, self.port, "other.test")
        self.assertEqual(got, der(testCertificate()[0]))


class RustlsListenerTests(SSLListenerMixin, unittest.TestCase):
    """imaplib over an ssl: listener of the rustls engine."""

    skip = skipNoRustls
    engine = "rustls"


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
        endpoint = rustlstls.RustlsServerEndpoint(None, tls)
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


class ReloadTests(unittest.TestCase):
    """A reload and the engine."""

    skip = skipNoRustls
    timeout = 60

    @defer.inlineCallbacks
    def test_engineNeedsRestart(self):
        """A reload that changes [tls] engine says it takes a restart; a new certificate still reaches rustls."""
        from twisted.logger import globalLogPublisher

        from gateway.config import loadConfig

        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        dataRoot = os.path.join(folder, "data")
        makeDataRoot(dataRoot)
        cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        makeSelfSigned(cert, key)
        path = os.path.join(folder, "gateway.ini")
        with open(path, "w") as f:
            f.write("[server]\ndata_root = %s\nworkers = 1\n[tls]\ncertificate = %s\nprivate_key = %s\n"
                    "engine = rustls\n[pop3]\nenabled = no\n[http]\nenabled = no\n[ftp]\nenabled = no\n"
                    "[lmtp]\nenabled = no\n[admin]\nenabled = no\n[imap]\nlisten = ssl:0:interface=127.0.0.1\n"
                    % (dataRoot, cert, key))
        top = makeService(loadConfig(path), reactor)
        top.privilegedStartService()
        top.startService()
        self.addCleanup(top.stopService)
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        port = [child for child in top if child.port is not None][0].port.getHost().port
        first = yield threads.deferToThread(serverCertificate, port, "localhost", cert)
        self.assertEqual(first, der(cert))
        makeSelfSigned(cert, key)
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("engine = rustls", "engine = openssl"))
        self.assertIs((yield top.reload()), True)
        warned = [e for e in events if e.get("name") == "engine" and "restarted" in e.get("log_format", "")]
        self.assertEqual(len(warned), 1)
        second = yield threads.deferToThread(serverCertificate, port, "localhost", cert)
        self.assertEqual(second, der(cert))
        self.assertNotEqual(first, second)


class StartTLSClientTests(unittest.TestCase):
    """
    imaplib's STARTTLS, poplib's STLS and ftplib's AUTH TLS, curl and lftp
    against the server with C{[tls] engine = rustls}: the session goes on
    over rustls (checked on the server's own connections); FTP's data
    connections stay on OpenSSL.
    """

    skip = skipNoRustls
    timeout = 60
    engine = "rustls"
    #: The class of a session's transport once TLS has started.
    transport = "RustlsServerProtocol"

    def setUp(self):
        dataRoot = os.path.abspath(self.mktemp())
        makeDataRoot(dataRoot)
        overrides = {(name, "enabled"): False for name in FRONTENDS}
        for name in ("imap", "pop3", "ftp"):
            overrides[name, "enabled"] = True
            overrides[name, "listen"] = ("tcp:0:interface=127.0.0.1",)
        overrides["tls", "engine"] = self.engine
        self.top = makeService(makeTestConfig(dataRoot, overrides), reactor)
        self.top.privilegedStartService()
        self.top.startService()
        # The FTP module's threads stop at the reactor's shutdown, which a test does not reach.
        self.addCleanup(self.top.factories["ftp"].stopThreads)
        self.addCleanup(self.top.stopService)
        self.ports = {child.name.split()[0]: child.port.getHost().port for child in self.top if child.name}
        self.tls = ssl.create_default_context(cafile=testCertificate()[0])

    def serverTransports(self, name):
        """Run in the reactor: the class names of protocol C{name}'s sessions' transports."""
        factory = self.top.factories[name]
        if name == "ftp":
            return [type(session.transport).__name__ for session in factory.sessions]
        return [type(session.transport).__name__ for session in factory.protocols]

    @defer.inlineCallbacks
    def test_imap(self):
        """STARTTLS, LOGIN, APPEND and FETCH of a 300 kB message byte for byte, over rustls."""
        message = b"Subject: big\r\n\r\n" + b"".join(b"%s\r\n" % (os.urandom(30).hex().encode(),)
                                                        for n in range(5000))

        def run():
            client = imaplib.IMAP4("127.0.0.1", self.ports["imap"], timeout=20)
            try:
                client.starttls(self.tls)
                client.login("demo@example.test", PASSWORD)
                transports = threads.blockingCallFromThread(reactor, self.serverTransports, "imap")
                client.append("INBOX", None, None, message)
                client.select("INBOX")
                fetched = client.fetch("1", "(BODY.PEEK[])")[1][0][1]
                return transports, fetched, client.sock.version()
            finally:
                client.logout()

        transports, fetched, version = yield threads.deferToThread(run)
        self.assertEqual(transports, [self.transport])
        self.assertEqual(fetched, message)
        self.assertEqual(version, "TLSv1.3")

    @defer.inlineCallbacks
    def test_pop3(self):
        """STLS, then USER/PASS and STAT over rustls."""

        def run():
            client = poplib.POP3("127.0.0.1", self.ports["pop3"], timeout=20)
            try:
                client.stls(self.tls)
                client.user("demo@example.test")
                client.pass_(PASSWORD)
                transports = threads.blockingCallFromThread(reactor, self.serverTransports, "pop3")
                return transports, client.stat(), client.sock.version()
            finally:
                client.quit()

        transports, stat, version = yield threads.deferToThread(run)
        self.assertEqual(transports, [self.transport])
        self.assertEqual(stat, (0, 0))
        self.assertEqual(version, "TLSv1.3")

    @defer.inlineCallbacks
    def test_ftp(self):
        """AUTH TLS over rustls, then with PROT P a file stored, listed and read back over OpenSSL data connections."""
        content = os.urandom(200000)

        def run():
            client = ftplib.FTP_TLS(context=self.tls, timeout=20)
            client.connect("127.0.0.1", self.ports["ftp"])
            try:
                client.login("demo@example.test", PASSWORD)
                client.prot_p()
                transports = threads.blockingCallFromThread(reactor, self.serverTransports, "ftp")
                client.storbinary("STOR blob.bin", io.BytesIO(content))
                names = client.nlst()
                got = io.BytesIO()
                client.retrbinary("RETR blob.bin", got.write)
                return transports, names, got.getvalue(), client.sock.version()
            finally:
                client.quit()

        transports, names, got, version = yield threads.deferToThread(run)
        self.assertEqual(transports, [self.transport])
        self.assertIn("blob.bin", names)
        self.assertEqual(got, content)
        self.assertEqual(version, "TLSv1.3")

    def countStarts(self):
        """The connections that start TLS over rustls from now on, by the class of their protocol."""
        started = []
        original = rustlstls.startTLS

        def counting(connection, context):
            started.append(type(connection.protocol).__name__)
            original(connection, context)

        self.patch(rustlstls, "startTLS", counting)
        return started

    @defer.inlineCallbacks
    def test_curl(self):
        """curl (OpenSSL) appends and lists over IMAP STARTTLS, then reads the message back over POP3 STLS."""
        if not os.path.exists(CURL):
            raise unittest.SkipTest("curl is not installed")
        started = self.countStarts()
        message = os.path.abspath(self.mktemp())
        with open(message, "wb") as f:
            f.write(b"From: a@example.test\r\nSubject: over rustls\r\n\r\n" + b"x" * 5000 + b"\r\n")

        def curl(url, *args):
            return subprocess.run([CURL, "-sS", "--ssl-reqd", "--cacert", testCertificate()[0],
                                   "-u", "demo@example.test:" + PASSWORD] + list(args) + [url],
                                  capture_output=True, timeout=20)

        imap = "imap://127.0.0.1:%d/" % (self.ports["imap"],)
        appended = yield threads.deferToThread(curl, imap + "INBOX", "-T", message)
        self.assertEqual(appended.returncode, 0, appended.stderr)
        listed = yield threads.deferToThread(curl, imap)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn(b'"INBOX"', listed.stdout)
        retrieved = yield threads.deferToThread(curl, "pop3://127.0.0.1:%d/1" % (self.ports["pop3"],))
        self.assertEqual(retrieved.returncode, 0, retrieved.stderr)
        with open(message, "rb") as f:
            self.assertEqual(retrieved.stdout, f.read())
        self.assertEqual(started, ["LimitedProtocol"] * 3 if self.engine == "rustls" else [])

    @defer.inlineCallbacks
    def test_lftp(self):
        """lftp (GnuTLS) over AUTH TLS with protected data: a 1 MB upload and its download arrive whole."""
        if not os.path.exists(LFTP):
            raise unittest.SkipTest("lftp is not installed")
        started = self.countStarts()
        work = os.path.abspath(self.mktemp())
        os.mkdir(work)
        payload = os.urandom(1000000)
        with open(os.path.join(work, "up.bin"), "wb") as f:
            f.write(payload)
        script = "; ".join([
            "set ssl:ca-file %s" % (testCertificate()[0],),
            "set ftp:ssl-force yes", "set ftp:ssl-protect-data yes",
            "put '%s' -o up.bin" % (os.path.join(work, "up.bin"),),
            "get up.bin -o '%s'" % (os.path.join(work, "back.bin"),),
            "quit",
        ])
        result = yield threads.deferToThread(
            subprocess.run, [LFTP, "-u", "demo@example.test," + PASSWORD, "-e", script,
                             "ftp://127.0.0.1:%d" % (self.ports["ftp"],)], capture_output=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(os.path.join(work, "back.bin"), "rb") as f:
            self.assertEqual(f.read(), payload)
        self.assertEqual(started, ["FTPSession"] if self.engine == "rustls" else [])


class StartTLSOverOpenSSLClientTests(StartTLSClientTests):
    """
    The same clients with C{[tls] engine = openssl}: rustls is never
    called, and Twisted's TLS over OpenSSL works inside the TCP connection,
    which stays the session's transport.
    """

    skip = None
    engine = "openssl"
    transport = "TurnWritesServer"
