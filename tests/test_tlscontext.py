# -*- test-case-name: tests.test_tlscontext -*-
"""
Per-domain TLS certificates chosen by SNI (issue 15 item 5), on ssl:
listeners and after STARTTLS; what an idle TLS connection keeps (issue 14).
"""

import imaplib
import os
import shutil
import socket
import ssl
import subprocess

from OpenSSL import SSL
from twisted.internet import defer, reactor, threads
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from gateway.service import FRONTENDS, makeService
from gateway.tlscert import makeSelfSigned
from gateway.tlscontext import DomainCertificates, LeanConnection, ReloadableTLS
from tests.support import PASSWORD, makeDataRoot, makeTestConfig, testCertificate


def der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def serverCertificate(port, serverName, cafile=None):
    """The certificate an ssl: listener presents to a client naming C{serverName}."""
    client = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
    if cafile is None:
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with client.wrap_socket(s, server_hostname=serverName) as t:
            return t.getpeercert(binary_form=True)


class SNITests(unittest.TestCase):
    timeout = 60

    def setUp(self):
        self.dataRoot = os.path.abspath(self.mktemp())
        directory = makeDataRoot(self.dataRoot)
        directory.addDomain("other.test")
        directory.setDomain("other.test", aliases=("mail.other.example",))
        folder = os.path.join(self.dataRoot, "domains", "other.test", "tls")
        os.makedirs(folder)
        self.cert, self.key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        makeSelfSigned(self.cert, self.key, hostnames=("other.test", "imap.other.test", "mail.other.example"))
        self.directory = directory
        overrides = {(name, "enabled"): False for name in FRONTENDS}
        overrides["imap", "enabled"] = True
        overrides["imap", "listen"] = ("tcp:0:interface=127.0.0.1", "ssl:0:interface=127.0.0.1")
        self.top = makeService(makeTestConfig(self.dataRoot, overrides), reactor)
        self.top.privilegedStartService()
        self.top.startService()
        self.addCleanup(self.top.stopService)
        self.ports = {child.name.split()[1].split(":")[0]: child.port.getHost().port for child in self.top}

    def test_lookup(self):
        """A domain, its alias and a name one label below them find the domain's files; others find none."""
        find = DomainCertificates(self.directory, self.dataRoot)
        for name in ("other.test", "IMAP.other.test.", "mail.other.example", "x.mail.other.example"):
            self.assertEqual(find(name), (self.cert, self.key), name)
        for name in ("example.test", "localhost", "a.b.other.test", "nothing"):
            self.assertIsNone(find(name), name)

    @defer.inlineCallbacks
    def test_sslListener(self):
        """On an ssl: listener each name gets its domain's certificate (verified by the client); others the default."""
        port = self.ports["ssl"]
        got = yield threads.deferToThread(serverCertificate, port, "imap.other.test", self.cert)
        self.assertEqual(got, der(self.cert))
        got = yield threads.deferToThread(serverCertificate, port, "mail.other.example", self.cert)
        self.assertEqual(got, der(self.cert))
        got = yield threads.deferToThread(serverCertificate, port, "localhost", testCertificate()[0])
        self.assertEqual(got, der(testCertificate()[0]))
        got = yield threads.deferToThread(serverCertificate, port, "example.test")
        self.assertEqual(got, der(testCertificate()[0]))

    @defer.inlineCallbacks
    def test_startTLS(self):
        """imaplib's STARTTLS to imap.other.test validates against that domain's certificate and logs in."""
        port = self.ports["tcp"]

        def run():
            client = imaplib.IMAP4("127.0.0.1", port, timeout=10)
            tls = ssl.create_default_context(cafile=self.cert)
            client.host = "imap.other.test"  # the name imaplib sends (SNI) and checks
            client.starttls(tls)
            peer = client.sock.getpeercert(binary_form=True)
            client.login("demo@example.test", PASSWORD)
            client.logout()
            return peer

        self.assertEqual((yield threads.deferToThread(run)), der(self.cert))

    @defer.inlineCallbacks
    def test_replacedFileServed(self):
        """A domain certificate replaced on disk is served to the next connection, without a reload."""
        port = self.ports["ssl"]
        first = yield threads.deferToThread(serverCertificate, port, "other.test")
        makeSelfSigned(self.cert, self.key, hostnames=("other.test",))
        os.utime(self.cert, ns=(1, 1))  # a different stamp even within the same clock tick
        second = yield threads.deferToThread(serverCertificate, port, "other.test")
        self.assertNotEqual(first, second)
        self.assertEqual(second, der(self.cert))

    @defer.inlineCallbacks
    def test_brokenDomainFileFallsBack(self):
        """A domain certificate that cannot be loaded leaves the default certificate serving that name."""
        with open(self.cert, "w") as f:
            f.write("broken\n")
        got = yield threads.deferToThread(serverCertificate, self.ports["ssl"], "other.test")
        self.assertEqual(got, der(testCertificate()[0]))
        self.flushLoggedErrors()


class IdleMemoryTests(unittest.TestCase):
    """What an idle TLS connection keeps."""

    def test_releaseBuffers(self):
        """Server contexts (the [tls] certificate and a domain's) free an idle connection's buffers."""
        from OpenSSL import SSL

        from gateway.tlscontext import ReloadableTLS

        cert, key = testCertificate()
        tls = ReloadableTLS(cert, key, "1.2", "[tls] certificate")
        self.assertTrue(tls.getContext().set_mode(0) & SSL.MODE_RELEASE_BUFFERS)
        tls.reload()
        self.assertTrue(tls.getContext().set_mode(0) & SSL.MODE_RELEASE_BUFFERS)
        domain = tls._domainOptions((cert, key))
        self.assertTrue(domain.getContext().set_mode(0) & SSL.MODE_RELEASE_BUFFERS)


class MemoryPair:
    """
    A server connection from C{tls.serverConnectionForTLS} and a Python
    C{ssl} client (as asyncio's and imaplib's) over memory BIOs, with the
    bytes moved between them by hand as Twisted's TLS layer moves them
    (C{bio_read} of up to 32 kB).
    """

    def __init__(self, tls, maximum=None, session=None, context=None):
        cert = testCertificate()[0]
        self.server = tls.serverConnectionForTLS(None)
        self.server.set_accept_state()
        if context is None:
            context = ssl.create_default_context(cafile=cert)
            if maximum is not None:
                context.maximum_version = maximum
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.client = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost", session=session)
        self.bios = self.currentBIOs()
        self.received = b""

    def currentBIOs(self):
        """
        The server's BIOs (pyOpenSSL's C{cdata} objects: a replacement is a
        new one even when C{malloc} gives it the freed one's address).
        """
        return self.server._into_ssl, self.server._from_ssl

    def toServer(self, data=None):
        """Hand the server what the client sent (or C{data}); run its side."""
        data = self.outgoing.read() if data is None else data
        if data:
            self.server.bio_write(data)
        try:
            self.server.do_handshake()
            while True:
                self.received += self.server.recv(2**15)
        except SSL.WantReadError:
            pass
        self.toClient()

    def toClient(self):
        """Hand the client what the server sent."""
        while True:
            try:
                data = self.server.bio_read(2**15)
            except SSL.WantReadError:
                return
            self.incoming.write(data)

    def handshake(self):
        while True:
            try:
                self.client.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.toServer()
        self.toServer()  # the client's Finished, then the tickets

    def clientRead(self):
        data = b""
        while True:
            try:
                data += self.client.read(2**16)
            except ssl.SSLWantReadError:
                return data


class LeanConnectionTests(unittest.TestCase):
    """
    Connections give back what their memory BIOs grew to, and keep every
    byte (issue 14: idle TLS sessions).
    """

    def setUp(self):
        self.tls = ReloadableTLS(*testCertificate(), "1.2", "[tls] certificate")

    def test_connectionCreator(self):
        """The TLS context factory makes Twisted's server connections itself, each a LeanConnection."""
        verifyObject(IOpenSSLServerConnectionCreator, self.tls)
        connection = self.tls.serverConnectionForTLS(None)
        self.assertIsInstance(connection, LeanConnection)
        self.assertIs(connection.get_context(), self.tls.getContext())

    def test_handshakeReplacesBuffers(self):
        """A handshake's flights over 256 bytes leave new BIOs: both in TLS 1.3, the server's in TLS 1.2."""
        pair = MemoryPair(self.tls)
        pair.handshake()
        self.assertEqual(pair.client.version(), "TLSv1.3")
        self.assertIsNot(pair.currentBIOs()[0], pair.bios[0])
        self.assertIsNot(pair.currentBIOs()[1], pair.bios[1])
        pair = MemoryPair(self.tls, ssl.TLSVersion.TLSv1_2)
        pair.handshake()
        self.assertEqual(pair.client.version(), "TLSv1.2")
        self.assertIsNot(pair.currentBIOs()[1], pair.bios[1])

    def test_smallTrafficKeepsBuffers(self):
        """Lines of a few bytes each way leave the BIOs in place (no new BIO per command)."""
        pair = MemoryPair(self.tls)
        pair.handshake()
        into, out = pair.currentBIOs()
        for n in range(3):
            pair.client.write(b"a%d NOOP\r\n" % (n,))
            pair.toServer()
            pair.server.send(b"a%d OK NOOP done\r\n" % (n,))
            pair.toClient()
            self.assertEqual(pair.clientRead(), b"a%d OK NOOP done\r\n" % (n,))
        self.assertEqual(pair.received, b"a0 NOOP\r\na1 NOOP\r\na2 NOOP\r\n")
        self.assertIs(pair.currentBIOs()[0], into)
        self.assertIs(pair.currentBIOs()[1], out)

    def test_largeTransfersIntact(self):
        """300 kB each way, in 16 kB records and 64 kB deliveries, arrive whole across the replacements."""
        pair = MemoryPair(self.tls)
        pair.handshake()
        upload = os.urandom(300000)
        pair.client.write(upload)
        sent = pair.outgoing.read()
        for start in range(0, len(sent), 65536):
            pair.toServer(sent[start:start + 65536])
        self.assertEqual(pair.received, upload)
        download = os.urandom(300000)
        for start in range(0, len(download), 2**14):
            pair.server.send(download[start:start + 2**14])
            pair.toClient()
        self.assertEqual(pair.clientRead(), download)

    def test_partialRecordKept(self):
        """A record split across deliveries, the BIO emptied and replaced between its halves, arrives whole."""
        pair = MemoryPair(self.tls)
        pair.handshake()
        pair.client.write(b"x" * 5000)
        record = pair.outgoing.read()
        before = pair.currentBIOs()[0]
        pair.toServer(record[:2000])
        self.assertEqual(pair.received, b"")
        self.assertIsNot(pair.currentBIOs()[0], before)
        pair.toServer(record[2000:])
        self.assertEqual(pair.received, b"x" * 5000)

    def test_resumption(self):
        """A TLS 1.3 and a TLS 1.2 client given their earlier session resume it (a session ticket)."""
        for maximum in (None, ssl.TLSVersion.TLSv1_2):
            first = MemoryPair(self.tls, maximum)
            first.handshake()
            first.server.send(b"* OK ready\r\n")
            first.toClient()
            first.clientRead()  # a TLS 1.3 client reads its tickets with the data
            second = MemoryPair(self.tls, session=first.client.session, context=first.client.context)
            second.handshake()
            self.assertTrue(second.client.session_reused, maximum)
            self.assertEqual(second.client.version(), "TLSv1.2" if maximum else "TLSv1.3")

    def test_closeNotify(self):
        """After replacements the server's TLS shutdown reaches the client as a clean close."""
        pair = MemoryPair(self.tls)
        pair.handshake()
        pair.server.send(b"* BYE" + b"." * 2000 + b"\r\n")
        pair.toClient()
        pair.clientRead()
        pair.server.shutdown()
        pair.toClient()
        self.assertEqual(pair.client.read(10), b"")
        pair.client.unwrap()  # SSLWantReadError unless the server's close_notify arrived

    def test_endOfInputKept(self):
        """Once the end of input is signalled the receiving BIO stays, so the server sees the end."""
        pair = MemoryPair(self.tls)
        pair.handshake()
        pair.client.write(b"y" * 3000)
        pair.server.bio_write(pair.outgoing.read())
        pair.server.bio_shutdown()
        into = pair.currentBIOs()[0]
        self.assertEqual(pair.server.recv(5000), b"y" * 3000)
        self.assertRaises(SSL.WantReadError, pair.server.bio_read, 100)
        self.assertIs(pair.currentBIOs()[0], into)
        self.assertRaises(SSL.SysCallError, pair.server.recv, 10)


def serveIMAPOverSSL(test, dataRoot, engine):
    """
    Start the server over C{dataRoot} with IMAP alone, on an ssl: listener
    of the TLS engine C{engine}, until C{test} ends.

    @return: its port.
    """
    overrides = {(name, "enabled"): False for name in FRONTENDS}
    overrides["imap", "enabled"] = True
    overrides["imap", "listen"] = ("ssl:0:interface=127.0.0.1",)
    overrides["tls", "engine"] = engine
    top = makeService(makeTestConfig(dataRoot, overrides), reactor)
    top.privilegedStartService()
    top.startService()
    test.addCleanup(top.stopService)
    return list(top)[0].port.getHost().port


class SSLListenerMixin:
    """
    Real clients over an ssl: listener of the TLS engine C{engine}
    (C{[tls] engine}).
    """

    engine = "openssl"
    timeout = 60

    def setUp(self):
        self.dataRoot = os.path.abspath(self.mktemp())
        makeDataRoot(self.dataRoot)
        self.port = serveIMAPOverSSL(self, self.dataRoot, self.engine)

    @defer.inlineCallbacks
    def test_appendFetch(self):
        """imaplib over TLS 1.3 appends a 400 kB message, fetches it back byte for byte and NOOPs after."""
        body = b"".join(b"line %06d %s\r\n" % (n, os.urandom(24).hex().encode()) for n in range(6000))
        message = b"From: a@example.test\r\nSubject: big\r\n\r\n" + body

        def run():
            tls = ssl.create_default_context(cafile=testCertificate()[0])
            client = imaplib.IMAP4_SSL("localhost", self.port, ssl_context=tls, timeout=20)
            try:
                client.login("demo@example.test", PASSWORD)
                client.append("INBOX", None, None, message)
                client.select("INBOX")
                typ, data = client.fetch("1", "(BODY.PEEK[])")
                fetched = data[0][1]
                noop = client.noop()[0]
                return fetched, noop, client.sock.version()
            finally:
                client.logout()

        fetched, noop, version = yield threads.deferToThread(run)
        self.assertEqual(fetched, message)
        self.assertEqual(noop, "OK")
        self.assertEqual(version, "TLSv1.3")


class SSLListenerTests(SSLListenerMixin, unittest.TestCase):
    """Real clients over an ssl: listener of the default engine (OpenSSL)."""

    @defer.inlineCallbacks
    def test_resumption(self):
        """openssl s_client saves its session (-sess_out) and resumes it on its next connection (-sess_in)."""
        if shutil.which("openssl") is None:
            raise unittest.SkipTest("no openssl command (Debian package openssl)")
        saved = os.path.abspath(self.mktemp())
        cafile = testCertificate()[0]

        def connect(*args):
            command = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % (self.port,), "-servername",
                       "localhost", "-CAfile", cafile, "-verify_return_error", "-ign_eof"] + list(args)
            # LOGOUT after the greeting: the server closes, s_client has read the tickets by then.
            return subprocess.run(command, input=b"a LOGOUT\r\n", capture_output=True, timeout=30).stdout

        first = yield threads.deferToThread(connect, "-sess_out", saved)
        self.assertIn(b"* OK", first)
        self.assertIn(b"\nNew, TLSv1.3", first)
        second = yield threads.deferToThread(connect, "-sess_in", saved)
        self.assertIn(b"* OK", second)
        self.assertIn(b"\nReused, TLSv1.3", second)
