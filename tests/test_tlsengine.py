# -*- test-case-name: tests.test_tlsengine -*-
"""
Which TLS library serves (C{[tls] engine}): C{auto}, the default, is
rustls when the rtls package is installed, else OpenSSL; an C{ssl:}
listener with a certificate of its own follows the engine, and a reload
gives it its new certificate either way.
"""

import os
import socket
import ssl

from twisted.internet import defer, reactor, threads
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from gateway import rustlstls
from gateway.config import loadConfig
from gateway.service import FRONTENDS, makeEndpoint, makeService
from gateway.tlscert import makeSelfSigned
from gateway.tlscontext import ReloadableTLS
from tests.support import makeDataRoot, makeTestConfig, testCertificate
from tests.test_tlscontext import der, serverCertificate

skipNoRustls = "the rtls package is not installed (pip install rtls)" if rustlstls.rtls is None else None


def startIMAP(test, dataRoot, listen, engine=None):
    """
    The server over C{dataRoot} with IMAP alone on C{listen}, C{[tls]
    engine} left at its default unless given, until C{test} ends.
    """
    overrides = {(name, "enabled"): False for name in FRONTENDS}
    overrides["imap", "enabled"] = True
    overrides["imap", "listen"] = (listen,)
    if engine is not None:
        overrides["tls", "engine"] = engine
    top = makeService(makeTestConfig(dataRoot, overrides), reactor)
    top.privilegedStartService()
    top.startService()
    test.addCleanup(top.stopService)
    return top


def cbcOnlyClient(port):
    """
    A TLS 1.2 client that offers only a CBC cipher suite (as some old
    clients do) against C{port}: the version it got, or the error.
    """
    client = ssl.create_default_context(cafile=testCertificate()[0])
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    client.set_ciphers("ECDHE-ECDSA-AES128-SHA")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            with client.wrap_socket(s, server_hostname="localhost") as t:
                return t.version(), t.cipher()[0], t.recv(100)[:4]
    except (ssl.SSLError, ConnectionError) as e:
        return e


class EngineChoiceTests(unittest.TestCase):
    """C{auto} and what it chooses."""

    def setUp(self):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def warnings(self):
        return [e for e in self.events if e.get("log_format", "").startswith("[tls] engine = auto")]

    def test_defaultIsAuto(self):
        """The configuration's default engine is auto, in a file that does not name one too."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("[tls]\nminimum_version = 1.2\n")
        self.assertEqual(loadConfig(path)["tls", "engine"], "auto")

    def test_autoIsRustls(self):
        """With rtls installed, auto is rustls, and nothing is logged about it."""
        if skipNoRustls:
            raise unittest.SkipTest(skipNoRustls)
        tls = ReloadableTLS(*testCertificate(), "1.2", "[tls] certificate", engine="auto")
        self.assertEqual(tls.engine, "rustls")
        self.assertIsNotNone(tls.rustls)
        self.assertEqual(self.warnings(), [])

    def test_autoWithoutRtls(self):
        """Without rtls, auto is OpenSSL and says so once; its ssl: listeners are Twisted's."""
        self.patch(rustlstls, "rtls", None)
        tls = ReloadableTLS(*testCertificate(), "1.2", "[tls] certificate", engine="auto")
        self.assertEqual(tls.engine, "openssl")
        self.assertIsNone(tls.rustls)
        self.assertEqual(len(self.warnings()), 1)
        endpoint, _ = makeEndpoint(reactor, "ssl:0:interface=127.0.0.1", tls, "1.2", "[imap] listen")
        self.assertNotIsInstance(endpoint, rustlstls.RustlsServerEndpoint)

    def test_explicitEngines(self):
        """openssl and rustls are what they say, whether rtls is there or not for openssl."""
        tls = ReloadableTLS(*testCertificate(), "1.2", "[tls] certificate", engine="openssl")
        self.assertEqual((tls.engine, tls.rustls), ("openssl", None))
        if skipNoRustls is None:
            tls = ReloadableTLS(*testCertificate(), "1.2", "[tls] certificate", engine="rustls")
            self.assertEqual(tls.engine, "rustls")
        self.assertEqual(self.warnings(), [])


class DefaultEngineServesTests(unittest.TestCase):
    """A real client against the server with the default configuration."""

    skip = skipNoRustls
    timeout = 60

    def setUp(self):
        self.dataRoot = os.path.abspath(self.mktemp())
        makeDataRoot(self.dataRoot)

    @defer.inlineCallbacks
    def test_sslListenerOverRustls(self):
        """The default's ssl: listener is rustls: it refuses a client that offers only CBC ciphers."""
        top = startIMAP(self, self.dataRoot, "ssl:0:interface=127.0.0.1")
        child = list(top)[0]
        self.assertIsInstance(child.endpoint, rustlstls.RustlsServerEndpoint)
        refused = yield threads.deferToThread(cbcOnlyClient, child.port.getHost().port)
        self.assertIsInstance(refused, (ssl.SSLError, ConnectionError))

    @defer.inlineCallbacks
    def test_opensslServesOldClients(self):
        """engine = openssl serves the client that offers only CBC ciphers, which rustls refuses."""
        top = startIMAP(self, self.dataRoot, "ssl:0:interface=127.0.0.1", engine="openssl")
        got = yield threads.deferToThread(cbcOnlyClient, list(top)[0].port.getHost().port)
        self.assertEqual(got, ("TLSv1.2", "ECDHE-ECDSA-AES128-SHA", b"* OK"))


class OwnCertificateTests(unittest.TestCase):
    """An ssl: listener with its own privateKey= and certKey=."""

    timeout = 60

    def setUp(self):
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        self.dataRoot = os.path.join(folder, "data")
        makeDataRoot(self.dataRoot)
        self.cert, self.key = os.path.join(folder, "own-cert.pem"), os.path.join(folder, "own-key.pem")
        makeSelfSigned(self.cert, self.key)
        self.listen = "ssl:0:interface=127.0.0.1:privateKey=%s:certKey=%s" % (self.key, self.cert)

    def test_followsEngine(self):
        """Its endpoint is of the engine the configuration names."""
        endpoint, _ = makeEndpoint(reactor, self.listen, None, "1.2", "[imap] listen", engine="openssl")
        self.assertNotIsInstance(endpoint, rustlstls.RustlsServerEndpoint)
        if skipNoRustls:
            return
        endpoint, _ = makeEndpoint(reactor, self.listen, None, "1.2", "[imap] listen", engine="rustls")
        self.assertIsInstance(endpoint, rustlstls.RustlsServerEndpoint)
        self.assertEqual(endpoint.contextFactory.paths[:2], (self.cert, self.key))

    @defer.inlineCallbacks
    def reloaded(self, engine):
        """A reload after its files changed serves the new certificate."""
        cert, key = testCertificate()
        path = os.path.join(os.path.dirname(self.dataRoot), "gateway.ini")
        with open(path, "w") as f:
            f.write("[server]\ndata_root = %s\nworkers = 1\n[tls]\ncertificate = %s\nprivate_key = %s\n"
                    "engine = %s\n[imap]\nlisten = %s\n" % (self.dataRoot, cert, key, engine, self.listen))
            for name in list(FRONTENDS) + ["admin"]:
                if name != "imap":
                    f.write("[%s]\nenabled = no\n" % (name,))
        top = makeService(loadConfig(path), reactor)
        top.privilegedStartService()
        top.startService()
        self.addCleanup(top.stopService)
        port = list(top)[0].port.getHost().port
        first = yield threads.deferToThread(serverCertificate, port, "localhost", self.cert)
        self.assertEqual(first, der(self.cert))
        makeSelfSigned(self.cert, self.key)
        self.assertIs((yield top.reload()), True)
        second = yield threads.deferToThread(serverCertificate, port, "localhost", self.cert)
        self.assertEqual(second, der(self.cert))
        self.assertNotEqual(first, second)

    def test_reloadedOverRustls(self):
        """Over rustls, a reload gives the listener its new certificate."""
        if skipNoRustls:
            raise unittest.SkipTest(skipNoRustls)
        return self.reloaded("rustls")

    def test_reloadedOverOpenSSL(self):
        """Over OpenSSL, a reload gives the listener its new certificate."""
        return self.reloaded("openssl")
