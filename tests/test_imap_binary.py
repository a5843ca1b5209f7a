# -*- test-case-name: tests.test_imap_binary -*-
"""
BINARY (RFC 3516): FETCH BINARY[section], BINARY.PEEK, BINARY.SIZE with the
transfer encoding undone, and APPEND of a literal8 (C{~{n}}).
"""

import base64
import imaplib

from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from gateway.imap.server import makeFactory
from tests.support import PASSWORD, makeTestContext
from tests.test_imap_selected import SelectedTestMixin

IMAGE = bytes(range(256)) * 4
MULTIPART = (
    b"From: a@example.test\r\nSubject: binary\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
    b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"caf=C3=A9 =\r\nau lait\r\n"
    b"--XX\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes(IMAGE).replace(b"\n", b"\r\n") +
    b"--XX\r\nContent-Type: application/x-odd\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n"
    b"--XX--\r\n"
)


class BinaryFetchTests(SelectedTestMixin, unittest.TestCase):
    def setUp(self):
        self.login()
        self.session.account.mailStore.getMailbox("INBOX").appendMessage(MULTIPART)
        self.send(b"s SELECT INBOX")

    def test_decoded(self):
        """BINARY[n] is the part with its base64 or quoted-printable undone; NULs come as a literal8."""
        out = self.send(b"a FETCH 1 (BINARY.PEEK[2])")
        self.assertIn(b"BINARY[2] ~{%d}\r\n" % (len(IMAGE),) + IMAGE + b")", out)
        out = self.send(b"b FETCH 1 (BINARY.PEEK[1])")
        text = "café au lait".encode()
        self.assertIn(b"BINARY[1] {%d}\r\n%s)" % (len(text), text), out)
        self.assertNotIn(b"\\Seen", self.send(b"c FETCH 1 FLAGS"))

    def test_sizeAndPartial(self):
        """BINARY.SIZE[n] is the decoded size; BINARY[n]<o.l> is part of the decoded data; BINARY sets \\Seen."""
        out = self.send(b"a FETCH 1 (BINARY.SIZE[2] BINARY.SIZE[1])")
        self.assertIn(b"BINARY.SIZE[2] %d" % (len(IMAGE),), out)
        self.assertIn(b"BINARY.SIZE[1] %d" % (len("café au lait".encode()),), out)
        out = self.send(b"b FETCH 1 (BINARY[2]<256.3>)")
        self.assertIn(b"BINARY[2]<256> ~{3}\r\n\x00\x01\x02", out)
        self.assertIn(b"\\Seen", out)

    def test_errors(self):
        """An unknown transfer encoding is NO [UNKNOWN-CTE]; a section with HEADER is BAD."""
        self.assertIn(b"a NO [UNKNOWN-CTE]", self.send(b"a FETCH 1 (BINARY.PEEK[3])"))
        self.assertIn(b"b BAD", self.send(b"b FETCH 1 (BINARY[1.HEADER])"))
        self.assertIn(b"c OK", self.send(b"c FETCH 1 (BINARY.PEEK[])"))

    def test_appendLiteral8(self):
        """APPEND with a literal8 stores the octets as sent, NULs included."""
        data = b"Subject: nul\r\n\r\nbefore\x00after\r\n"
        out = self.send(b"a APPEND INBOX ~{%d+}\r\n%s\r\n" % (len(data), data))
        self.assertIn(b"a OK [APPENDUID", out)
        out = self.send(b"b FETCH 2 (BINARY.PEEK[])")
        self.assertIn(b"BINARY[] ~{%d}\r\n%s)" % (len(data), data), out)

    def test_appendBinaryPart(self):
        """A part with Content-Transfer-Encoding: binary that a literal8 brings is kept in base64: BODY[1] has no NUL, BINARY[1] is the octets as sent (imaptest's append-binary)."""
        octets = b"\x00-\xe4\n\r\n\n"
        data = (b"From: user@domain.org\r\nMime-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Transfer-Encoding: binary\r\n\r\n" + octets)
        self.assertIn(b"a OK [APPENDUID", self.send(b"a APPEND INBOX ~{%d+}\r\n%s\r\n" % (len(data), data)))
        out = self.send(b"b FETCH 2 (BODY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[1])")
        self.assertIn(b"BODY[1] {14}\r\n%s\r\n " % (base64.b64encode(octets),), out)
        self.assertIn(b"BINARY.SIZE[1] 7 BINARY[1] ~{7}\r\n%s)" % (octets,), out)
        out = self.send(b"c FETCH 2 (BINARY.PEEK[])")
        self.assertNotIn(b"\x00", out)
        self.assertIn(b"Content-Transfer-Encoding: base64\r\n", out)

    def test_capability(self):
        """BINARY is advertised."""
        self.assertIn(b" BINARY", self.send(b"a CAPABILITY").split(b"\r\n")[0])


QP_BODY = (
    b"hello  \r\nbar=\r\n\r\nfoo\t=\r\nbar\r\nfoo\t \t= \r\n=62\r\nfoo = \t\r\nbar\r\n"
    b"foo =\r\n=62\r\nfoo  \r\nbar=\r\n\r\nfoo_bar\r\n"
)
QP_DECODED = b"hello\r\nbar\r\nfoo\tbar\r\nfoo\t \tb\r\nfoo bar\r\nfoo b\r\nfoo\r\nbar\r\nfoo_bar\r\n"


class QuotedPrintableTests(SelectedTestMixin, unittest.TestCase):
    """
    Quoted-printable as RFC 2045 6.7 decodes it (imaptest's
    C{fetch-binary-mime-qp}).
    """

    def setUp(self):
        self.login()
        self.session.account.mailStore.getMailbox("INBOX").appendMessage(
            b"From: a@example.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
            b"--XX\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            + QP_BODY + b"\r\n--XX--\r\n")
        self.send(b"s SELECT INBOX")

    def test_softBreaksAndTrailingSpace(self):
        """Trailing blanks are dropped and "=" followed by blanks is a soft line break."""
        out = self.send(b"a FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1] BINARY.PEEK[1]<15.10>)")
        self.assertIn(b"BINARY.SIZE[1] %d " % (len(QP_DECODED),), out)
        self.assertIn(b"BINARY[1] {%d}\r\n%s" % (len(QP_DECODED), QP_DECODED), out)
        self.assertIn(b"BINARY[1]<15> {10}\r\n%s" % (QP_DECODED[15:25],), out)


class ImaplibTests(unittest.TestCase):
    def test_binaryFetch(self):
        """imaplib over loopback: FETCH BINARY.PEEK[2] of a base64 part returns the decoded octets."""
        context = makeTestContext(self, reactor=reactor, clock=reactor)
        factory = makeFactory(context)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.addCleanup(lambda: [s.transport.abortConnection() for s in list(factory.sessions)])

        def client():
            imap = imaplib.IMAP4("127.0.0.1", port.getHost().port)
            imap.login("demo", PASSWORD)
            imap.append("INBOX", None, None, MULTIPART)
            imap.select("INBOX")
            typ, data = imap.fetch("1", "(BINARY.PEEK[2])")
            self.assertEqual(typ, "OK")
            self.assertEqual(data[0][1], IMAGE)
            imap.logout()
        return deferToThread(client)
