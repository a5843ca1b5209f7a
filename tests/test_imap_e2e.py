# -*- test-case-name: tests.test_imap_e2e -*-
"""
The IMAP server end to end, over loopback, with real clients: imaplib
(STARTTLS and implicit TLS), imapclient, and curl.
"""

import imaplib
import ssl
import subprocess
import threading

from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from gateway.imap import commands_selected
from gateway.imap.server import makeFactory
from tests.support import PASSWORD, makeTestContext, testCertificate

MESSAGE = b"From: a@example.test\r\nTo: demo@example.test\r\nSubject: e2e\r\n\r\nHello there\r\n"


class EndToEndTests(unittest.TestCase):
    def setUp(self):
        self.context = makeTestContext(self, reactor=reactor, clock=reactor, cleartextLogin=False)
        self.factory = makeFactory(self.context)
        plain = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        secure = reactor.listenSSL(0, self.factory, self.context.tls, interface="127.0.0.1")
        self.port = plain.getHost().port
        self.sslPort = secure.getHost().port
        self.addCleanup(plain.stopListening)
        self.addCleanup(secure.stopListening)
        self.addCleanup(self._dropSessions)

    def _dropSessions(self):
        for session in list(self.factory.sessions):
            session.transport.abortConnection()

    def sslContext(self):
        return ssl.create_default_context(cafile=testCertificate()[0])

    def test_imaplibStartTLS(self):
        """imaplib: STARTTLS, LOGIN, LIST, APPEND, SELECT, STORE, EXPUNGE, LOGOUT."""
        def client():
            imap = imaplib.IMAP4("127.0.0.1", self.port)
            self.assertIn("LOGINDISABLED", imap.capabilities)
            self.assertRaises(imaplib.IMAP4.error, imap.login, "demo", PASSWORD)
            imap.starttls(self.sslContext())
            self.assertEqual(imap.login("demo", PASSWORD)[0], "OK")
            typ, data = imap.list()
            self.assertIn(b'(\\HasNoChildren) "/" "INBOX"', data)
            typ, data = imap.append("INBOX", "(\\Flagged)", None, MESSAGE)
            self.assertEqual(typ, "OK")
            typ, data = imap.select("INBOX")
            self.assertEqual(data, [b"1"])
            typ, data = imap.fetch("1", "(FLAGS BODY[HEADER.FIELDS (SUBJECT)])")
            self.assertIn(b"Subject: e2e", data[0][1])
            self.assertIn(b"\\Flagged", data[0][0])
            typ, data = imap.store("1", "+FLAGS", "(\\Deleted)")
            self.assertIn(b"\\Deleted", data[0])
            typ, data = imap.expunge()
            self.assertEqual(data, [b"1"])
            imap.logout()
        return deferToThread(client)

    def test_largeBodyStreamed(self):
        """A body over the streaming threshold arrives intact over TLS (streamed from disk)."""
        streamed = []
        original = commands_selected.streamTo
        self.patch(commands_selected, "streamTo",
                   lambda transport, chunks: (streamed.append(1), original(transport, chunks))[1])
        big = b"Subject: big\r\n\r\n" + b"".join(b"line %07d of a large message\r\n" % (i,) for i in range(30000))

        def client():
            imap = imaplib.IMAP4_SSL("127.0.0.1", self.sslPort, ssl_context=self.sslContext())
            imap.login("demo", PASSWORD)
            imap.append("INBOX", None, None, big)
            imap.select("INBOX")
            typ, data = imap.uid("FETCH", "1", "(BODY[] FLAGS)")
            self.assertEqual(typ, "OK")
            self.assertEqual(data[0][1], big)
            self.assertIn(b"\\Seen", data[1])
            self.assertEqual(imap.noop()[0], "OK")
            imap.logout()
            self.assertEqual(streamed, [1])
        return deferToThread(client)

    def test_imaplibSSL(self):
        """imaplib.IMAP4_SSL logs in on the implicit-TLS port with AUTHENTICATE PLAIN."""
        def client():
            imap = imaplib.IMAP4_SSL("127.0.0.1", self.sslPort, ssl_context=self.sslContext())
            self.assertNotIn("STARTTLS", imap.capabilities)
            typ, _ = imap.authenticate("PLAIN", lambda challenge: b"\0demo\0" + PASSWORD.encode())
            self.assertEqual(typ, "OK")
            self.assertEqual(imap.select("Sent", readonly=True)[0], "OK")
            imap.logout()
        return deferToThread(client)

    def test_imapclient(self):
        """imapclient: login over TLS, folders, append, search and flags in one session."""
        import imapclient

        def client():
            imap = imapclient.IMAPClient("127.0.0.1", port=self.sslPort, ssl=True,
                                         ssl_context=self.sslContext())
            imap.login("demo@example.test", PASSWORD)
            names = [f[2] for f in imap.list_folders()]
            self.assertIn("Deleted Items", names)
            imap.create_folder("Projekt Ä")
            self.assertIn("Projekt Ä", [f[2] for f in imap.list_folders()])
            self.assertEqual(imap.find_special_folder(imapclient.imapclient.TRASH), "Deleted Items")
            imap.append("INBOX", MESSAGE, flags=["$Work"])
            info = imap.select_folder("INBOX")
            self.assertEqual(info[b"EXISTS"], 1)
            self.assertEqual(imap.search(["SUBJECT", "e2e"]), [1])
            fetched = imap.fetch([1], ["ENVELOPE", "FLAGS", "RFC822.SIZE"])
            self.assertEqual(fetched[1][b"ENVELOPE"].subject, b"e2e")
            self.assertEqual(fetched[1][b"RFC822.SIZE"], len(MESSAGE))
            imap.add_flags([1], [imapclient.SEEN])
            imap.move([1], "Projekt Ä")
            self.assertEqual(imap.folder_status("Projekt Ä", ["MESSAGES"])[b"MESSAGES"], 1)
            imap.logout()
        return deferToThread(client)

    def test_curlCramMD5(self):
        """curl --ssl-reqd with AUTH=CRAM-MD5 lists the mailboxes."""
        def client():
            result = subprocess.run(
                ["/usr/bin/curl", "-sS", "--ssl-reqd", "--cacert", testCertificate()[0],
                 "--login-options", "AUTH=CRAM-MD5", "-u", "demo:" + PASSWORD,
                 "imap://127.0.0.1:%d/" % (self.port,)],
                capture_output=True, timeout=20)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn(b'"INBOX"', result.stdout)
            self.assertIn(b'"Deleted Items"', result.stdout)
        return deferToThread(client)

    def test_curlImapsFetch(self):
        """curl imaps:// fetches a message by UID over implicit TLS."""
        account = self.context.realm.accountFor("demo@example.test")
        account.mailStore.getMailbox("INBOX").appendMessage(MESSAGE)

        def client():
            result = subprocess.run(
                ["/usr/bin/curl", "-sS", "--cacert", testCertificate()[0], "-u", "demo:" + PASSWORD,
                 "imaps://127.0.0.1:%d/INBOX;UID=1" % (self.sslPort,)],
                capture_output=True, timeout=20)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stdout, MESSAGE)
        return deferToThread(client)

    def test_twoSessionsAndIdle(self):
        """Two sessions on one mailbox: an append by one reaches the other's IDLE, and EXPUNGE after NOOP."""
        ready = threading.Event()

        def idler():
            imap = imaplib.IMAP4_SSL("127.0.0.1", self.sslPort, ssl_context=self.sslContext())
            imap.login("demo", PASSWORD)
            imap.select("INBOX")
            tag = imap._new_tag()
            imap.send(tag + b" IDLE\r\n")
            self.assertTrue(imap.readline().startswith(b"+ "))
            ready.set()
            imap.sock.settimeout(5)
            line = imap.readline()
            self.assertEqual(line, b"* 1 EXISTS\r\n")
            imap.send(b"DONE\r\n")
            while not line.startswith(tag):
                line = imap.readline()
            self.assertIn(b"OK", line)
            imap.sock.settimeout(None)
            imap.store("1", "+FLAGS", "(\\Deleted)")
            ready.set()
            imap.logout()

        def writer():
            ready.wait(10)
            ready.clear()
            imap = imaplib.IMAP4_SSL("127.0.0.1", self.sslPort, ssl_context=self.sslContext())
            imap.login("demo", PASSWORD)
            imap.append("INBOX", None, None, MESSAGE)
            imap.select("INBOX")
            ready.wait(10)
            imap.expunge()
            imap.logout()

        return deferToThread(lambda: _both(idler, writer))


def _both(first, second):
    errors = []

    def run(f):
        try:
            f()
        except BaseException as e:
            errors.append(e)
    threads = [threading.Thread(target=run, args=(f,)) for f in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    if errors:
        raise errors[0]


