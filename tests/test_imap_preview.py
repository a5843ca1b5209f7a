# -*- test-case-name: tests.test_imap_preview -*-
"""
PREVIEW (RFC 8970).
"""

from twisted.trial import unittest

from gateway.imap.mimeparts import Entity
from gateway.imap.preview import makePreview
from tests.test_imap_selected import SelectedTestMixin


def preview(data):
    return makePreview(Entity(data, 0, len(data)))


class MakePreviewTests(unittest.TestCase):
    def test_plain(self):
        """The text of a plain message, white space collapsed, cut at 256 characters."""
        self.assertEqual(preview(b"Subject: x\r\n\r\n  Hello\r\n\r\n  world\t!\r\n"), "Hello world !")
        long = preview(b"Subject: x\r\n\r\n" + "é".encode() * 1000)
        self.assertEqual(long, "é" * 256)

    def test_multipart(self):
        """text/plain is preferred over text/html, attachments are skipped, encodings undone."""
        data = (b"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
                b"--B\r\nContent-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nnot this\r\n"
                b"--B\r\nContent-Type: multipart/alternative; boundary=C\r\n\r\n"
                b"--C\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n"
                b"--C\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                b"Y2Fmw6kgZ2zDp2U=\r\n"
                b"--C--\r\n--B--\r\n")
        self.assertEqual(preview(data), "café glçe")

    def test_html(self):
        """An HTML-only message loses its markup, scripts and styles; entities are decoded."""
        data = (b"Content-Type: text/html\r\n\r\n<html><head><style>p{}</style></head>"
                b"<body><script>x()</script><p>Fish &amp; chips</p></body></html>\r\n")
        self.assertEqual(preview(data), "Fish & chips")
        self.assertEqual(preview(b"Content-Type: image/png\r\n\r\nxx\r\n"), "")


class PreviewFetchTests(SelectedTestMixin, unittest.TestCase):
    def test_fetch(self):
        """FETCH PREVIEW and PREVIEW (LAZY) answer the preview; PREVIEW is advertised and sets no \\Seen."""
        self.login()
        self.assertIn(b" PREVIEW", self.send(b"a CAPABILITY").split(b"\r\n")[0])
        mailbox = self.session.account.mailStore.getMailbox("INBOX")
        mailbox.appendMessage(b"Subject: x\r\n\r\nSee you at noon.\r\n")
        mailbox.appendMessage("Subject: y\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nÀ bientôt\r\n".encode())
        self.send(b"s SELECT INBOX")
        out = self.send(b"b FETCH 1 (PREVIEW)")
        self.assertIn(b'PREVIEW "See you at noon.")', out)
        out = self.send(b"c FETCH 2 (FLAGS PREVIEW (LAZY) UID)")
        text = "À bientôt".encode()
        self.assertIn(b"PREVIEW {%d}\r\n%s UID 2)" % (len(text), text), out)
        self.assertNotIn(b"\\Seen", self.send(b"d FETCH 1:2 FLAGS"))
        self.assertIn(b"e BAD", self.send(b"e FETCH 1 (PREVIEW (EAGER))"))
        self.assertIn(b'PREVIEW "See you at noon."', self.send(b"f FETCH 1 PREVIEW (LAZY)"))
        self.assertIn(b"MODSEQ", self.send(b"g FETCH 1 PREVIEW (CHANGEDSINCE 1)"))
