# -*- test-case-name: tests.test_tlscontext -*-
"""
Per-domain TLS certificates chosen by SNI (issue 15 item 5), on ssl:
listeners and after STARTTLS.
"""

import imaplib
import os
import socket
import ssl

from twisted.internet import defer, reactor, threads
from twisted.trial import unittest

from gateway.service import FRONTENDS, makeService
from gateway.tlscert import makeSelfSigned
from gateway.tlscontext import DomainCertificates
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
