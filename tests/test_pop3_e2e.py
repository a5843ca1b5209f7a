"""
End-to-end tests of the POP3 front-end with real clients over loopback:
C{poplib} (plain, STLS, POP3S) and C{curl} (C{pop3://}, C{pop3s://}).
"""

import os
import poplib
import ssl
import subprocess

from twisted.internet import defer, reactor, threads
from twisted.trial import unittest

from gateway.pop3.server import makeFactory
from gateway.service import makeService
from tests.support import PASSWORD, makeTestContext, testCertificate

CURL = "/usr/bin/curl"

MESSAGES = [
    b"From: a@example.test\nSubject: dots\n\n.leading dot\n..two\n.\nend\n",
    b"From: b@example.test\r\nSubject: 8bit\r\n\r\ncaf\xc3\xa9 \xff\xfe binary-ish\r\n",
    # In CRLF form the ".dot" lines start exactly at 64 KB and 128 KB, where
    # the server's reads from disk split the message.
    b"Subject: big\n\n" + b"z" * 65518 + b"\n.dot at 64K\n" + b"z" * 65521 + b"\n.dot at 128K\n" + b"." * 20 + b"\n",
]


def crlf(message):
    return message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class EndToEndTests(unittest.TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        self.context = makeTestContext(self, reactor=reactor, clock=reactor)
        self.account = self.context.realm.accountFor("demo@example.test")
        self.mailbox = self.account.mailStore.getMailbox("INBOX")
        self.uids = [self.mailbox.appendMessage(m) for m in MESSAGES]
        yield self.mailbox.synchronize()
        factory = makeFactory(self.context)
        self.plain = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(self.plain.stopListening)
        self.secure = reactor.listenSSL(0, factory, self.context.tls, interface="127.0.0.1")
        self.addCleanup(self.secure.stopListening)
        self.sslContext = ssl.create_default_context(cafile=testCertificate()[0])
        # poplib refuses lines over 2048 bytes; our test messages have longer ones.
        self.patch(poplib, "_MAXLINE", 200000)

    def retrieveAll(self, client):
        client.user("demo@example.test")
        client.pass_(PASSWORD)
        count, size = client.stat()
        bodies = []
        for number in range(1, count + 1):
            response, lines, octets = client.retr(number)
            bodies.append(b"\r\n".join(lines) + b"\r\n")
        uidl = client.uidl()[1]
        return count, bodies, uidl

    def test_poplibPlain(self):
        """poplib retrieves byte-exact copies (dots, 8-bit, > 64 KB) over clear text."""
        def run():
            client = poplib.POP3("127.0.0.1", self.plain.getHost().port, timeout=10)
            try:
                return self.retrieveAll(client)
            finally:
                client.quit()

        def check(result):
            count, bodies, uidl = result
            self.assertEqual(count, 3)
            self.assertEqual(bodies, [crlf(m) for m in MESSAGES])
            self.assertEqual(bodies[2][65536:65543], b".dot at")
            self.assertEqual(bodies[2][131072:131079], b".dot at")
            self.assertEqual(len(uidl), 3)
        return threads.deferToThread(run).addCallback(check)

    def test_poplibSTLS(self):
        """poplib's stls() upgrades the connection, then CAPA drops STLS and retrieval works."""
        def run():
            client = poplib.POP3("127.0.0.1", self.plain.getHost().port, timeout=10)
            try:
                before = client.capa()
                client.stls(self.sslContext)
                after = client.capa()
                return before, after, self.retrieveAll(client)
            finally:
                client.quit()

        def check(result):
            before, after, (count, bodies, uidl) = result
            self.assertIn("STLS", before)
            self.assertNotIn("STLS", after)
            self.assertEqual(bodies, [crlf(m) for m in MESSAGES])
        return threads.deferToThread(run).addCallback(check)

    def test_poplibSSLDeleteVisibleToIMAP(self):
        """Over POP3S, DELE then QUIT expunges the message and the store reports the expunge."""
        before = self.mailbox.highestModSeq()

        def run():
            client = poplib.POP3_SSL("127.0.0.1", self.secure.getHost().port, context=self.sslContext, timeout=10)
            client.user("demo")
            client.pass_(PASSWORD)
            client.dele(2)
            return client.quit()

        def check(result):
            self.assertTrue(result.startswith(b"+OK"))
            self.assertEqual(self.mailbox.uids(), [self.uids[0], self.uids[2]])
            expunged, changed, highest = self.mailbox.changesSince(before)
            self.assertEqual(list(expunged), [self.uids[1]])
            # Written by the store's index writer, off the reactor thread:
            # the \Deleted flag, then the expunge.
            self.assertEqual(self.account.mailStore._writer.written, 2)
        return threads.deferToThread(run).addCallback(check)

    def test_poplibWrongPassword(self):
        """A wrong password is refused with the [AUTH] response code."""
        def run():
            client = poplib.POP3("127.0.0.1", self.plain.getHost().port, timeout=10)
            client.user("demo")
            try:
                client.pass_("nope")
            except poplib.error_proto as e:
                return e.args[0]
            finally:
                client.close()

        return threads.deferToThread(run).addCallback(
            lambda error: self.assertEqual(error, b"-ERR [AUTH] Authentication failed."))

    def curl(self, url, *options):
        def run():
            return subprocess.run(
                [CURL, "-sS", "--max-time", "15", "--cacert", testCertificate()[0],
                 "-u", "demo@example.test:" + PASSWORD] + list(options) + [url],
                capture_output=True,
            )
        return threads.deferToThread(run)

    @defer.inlineCallbacks
    def test_curlPop3CramMD5(self):
        """curl pop3:// with AUTH=CRAM-MD5 lists and retrieves a message byte-exact."""
        if not os.path.exists(CURL):
            raise unittest.SkipTest("no curl")
        port = self.plain.getHost().port
        listing = yield self.curl("pop3://127.0.0.1:%d/" % (port,), "--login-options", "AUTH=CRAM-MD5")
        self.assertEqual(listing.returncode, 0, listing.stderr)
        self.assertEqual(listing.stdout.split(b"\r\n")[0], b"1 %d" % (len(crlf(MESSAGES[0])),))
        message = yield self.curl("pop3://127.0.0.1:%d/1" % (port,), "--login-options", "AUTH=CRAM-MD5")
        self.assertEqual(message.stdout, crlf(MESSAGES[0]))

    @defer.inlineCallbacks
    def test_curlPop3s(self):
        """curl pop3s:// retrieves the large message byte-exact over implicit TLS."""
        if not os.path.exists(CURL):
            raise unittest.SkipTest("no curl")
        port = self.secure.getHost().port
        result = yield self.curl("pop3s://localhost:%d/3" % (port,), "--login-options", "AUTH=CRAM-MD5")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, crlf(MESSAGES[2]))
        result = yield self.curl("pop3s://localhost:%d/2" % (port,))
        self.assertEqual(result.stdout, crlf(MESSAGES[1]))


class WiringTests(unittest.TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def test_makeServiceListens(self):
        """The service wiring listens the POP3 front-end on its configured endpoint."""
        context = makeTestContext(self, reactor=reactor, clock=reactor)
        config = context.config
        for section in ("imap", "http", "ftp", "lmtp"):
            config._values[section, "enabled"] = False
        config._values["pop3", "listen"] = ["tcp:0:interface=127.0.0.1"]
        top = makeService(config, reactor=reactor)
        top.privilegedStartService()
        top.startService()
        self.addCleanup(top.stopService)
        port = list(top)[0].port.getHost().port

        def run():
            client = poplib.POP3("127.0.0.1", port, timeout=10)
            client.user("demo")
            client.pass_(PASSWORD)
            return client.quit()

        result = yield threads.deferToThread(run)
        self.assertTrue(result.startswith(b"+OK Logging out"))
