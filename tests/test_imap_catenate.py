# -*- test-case-name: tests.test_imap_catenate -*-
"""
CATENATE (RFC 4469): APPEND of a message made of literal text and parts of
messages already on the server, named by IMAP URLs (RFC 5092).
"""

from twisted.trial import unittest

from gateway.imap.catenate import parseUrl
from tests.test_imap_selected import SelectedTestMixin

SOURCE = (b"From: a@example.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
          b"--B\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"
          b"--B\r\nContent-Type: text/plain\r\n\r\nsecond part\r\n--B--\r\n")


class UrlTests(unittest.TestCase):
    def test_parse(self):
        """IMAP URLs: mailbox (percent-encoded UTF-8, RFC 5092 3), UIDVALIDITY, UID, SECTION, PARTIAL."""
        self.assertEqual(parseUrl("/INBOX;UIDVALIDITY=785799047/;UID=113330;SECTION=1.5.9"),
                         ("INBOX", 785799047, 113330, "1.5.9", None))
        self.assertEqual(parseUrl("imap://demo@mail.example.test/Entw%C3%BCrfe/;UID=2/;PARTIAL=5.10"),
                         ("Entwürfe", None, 2, None, (5, 10)))
        # RFC 5092 names are UTF-8: "&APw-" is those five characters, not modified UTF-7.
        self.assertEqual(parseUrl("/Entw%26APw-rfe/;UID=2")[0], "Entw&APw-rfe")
        self.assertEqual(parseUrl("/a%20b/;uid=7/;section=HEADER.FIELDS%20(SUBJECT)"),
                         ("a b", None, 7, "HEADER.FIELDS (SUBJECT)", None))
        for bad in ("INBOX;UID=1", "/INBOX", "/INBOX/;UID=0", "/INBOX/;UID=x", "http://x/INBOX/;UID=1",
                    "/INBOX/;UID=1;SECTION=", "/INBOX/;UID=1/;PARTIAL=a", "/Entw%FCrfe/;UID=1"):
            self.assertRaises(ValueError, parseUrl, bad)


class CatenateTests(SelectedTestMixin, unittest.TestCase):
    def setUp(self):
        self.login()
        mailbox = self.session.account.mailStore.getMailbox("INBOX")
        mailbox.appendMessage(SOURCE)
        self.validity = mailbox.uidValidity

    def test_rfcStyle(self):
        """Text and URL parts (a section, a whole message's header) are joined into one new message."""
        self.assertIn(b" CATENATE", self.send(b"a CAPABILITY"))
        header = b"From: b@example.test\r\nSubject: forward\r\n\r\n"
        out = self.send(b'b APPEND Drafts (\\Seen) CATENATE (TEXT {%d+}\r\n%s URL "/INBOX;UIDVALIDITY=%d/;UID=1/;SECTION=2"'
                        b' TEXT {2+}\r\n\r\n URL "/INBOX/;UID=1/;SECTION=HEADER.FIELDS%%20(SUBJECT)")\r\n'
                        % (len(header), header, self.validity))
        self.assertIn(b"b OK [APPENDUID", out)
        drafts = self.session.account.mailStore.getMailbox("Drafts")
        with drafts.openMessage(drafts.uids()[0]) as f:
            self.assertEqual(f.read(), header + b"second part" + b"\r\n" + b"Subject: parts\r\n\r\n")
        self.assertIn("\\Seen", drafts.messages(drafts.uids())[0].flags)

    def test_badUrl(self):
        """A URL to a missing message, a wrong UIDVALIDITY or a missing mailbox is NO [BADURL ...]; nothing is stored."""
        for url in (b"/INBOX/;UID=9", b"/INBOX;UIDVALIDITY=1/;UID=1", b"/Nowhere/;UID=1", b"INBOX;UID=1"):
            out = self.send(b'c APPEND Drafts CATENATE (URL "%s")' % (url,))
            self.assertIn(b'c NO [BADURL "' + url + b'"]', out)
        self.assertIn(b"(MESSAGES 0)", self.send(b"d STATUS Drafts (MESSAGES)"))
        self.assertIn(b"e BAD", self.send(b"e APPEND Drafts CATENATE ()"))
        self.assertIn(b"f BAD", self.send(b"f APPEND Drafts CATENATE (BOGUS x)"))

    def test_nonAsciiMailbox(self):
        """A URL names a non-ASCII mailbox in percent-encoded UTF-8, in a modified UTF-7 session too."""
        self.assertIn(b"a OK", self.send(b"a CREATE Entw&APw-rfe"))
        self.session.account.mailStore.getMailbox("Entw\xfcrfe").appendMessage(SOURCE)
        out = self.send(b'b APPEND Drafts CATENATE (URL "/Entw%C3%BCrfe/;UID=1/;SECTION=1")')
        self.assertIn(b"b OK [APPENDUID", out)
        drafts = self.session.account.mailStore.getMailbox("Drafts")
        with drafts.openMessage(drafts.uids()[0]) as f:
            self.assertEqual(f.read(), b"first part")
        self.assertIn(b'c NO [BADURL', self.send(b'c APPEND Drafts CATENATE (URL "/Entw%26APw-rfe/;UID=1")'))

    def test_missingTargetFirst(self):
        """APPEND CATENATE into a missing mailbox is NO [TRYCREATE] even when a URL is bad (imaptest's catenate, as Dovecot)."""
        out = self.send(b'c APPEND Nowhere CATENATE (TEXT {6+}\r\nhdr: 1 URL "/INBOX;UIDVALIDITY=1/;UID=1")')
        self.assertIn(b"c NO [TRYCREATE]", out)

    def test_tooBig(self):
        """A catenated message over APPENDLIMIT is NO [TOOBIG]."""
        self.session.context.config._values["imap", "max_message_size"] = 50
        out = self.send(b'a APPEND Drafts CATENATE (URL "/INBOX/;UID=1" URL "/INBOX/;UID=1")')
        self.assertIn(b"a NO [TOOBIG]", out)

    def test_multiappend(self):
        """CATENATE combines with MULTIAPPEND: a plain message and a catenated one in one APPEND."""
        out = self.send(b'a APPEND Drafts {3+}\r\nabc CATENATE (URL "/INBOX/;UID=1/;PARTIAL=0.4")\r\n')
        self.assertRegex(out, rb"a OK \[APPENDUID \d+ 1:2\]")
        drafts = self.session.account.mailStore.getMailbox("Drafts")
        with drafts.openMessage(2) as f:
            self.assertEqual(f.read(), b"From")
