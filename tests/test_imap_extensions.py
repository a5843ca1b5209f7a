# -*- test-case-name: tests.test_imap_extensions -*-
"""
Smaller IMAP extensions: UNAUTHENTICATE (RFC 8437), STATUS=SIZE (RFC 8438),
CREATE-SPECIAL-USE (RFC 6154) and MULTIAPPEND (RFC 3502).
"""

from twisted.trial import unittest

from tests.support import PASSWORD
from tests.test_imap_mailbox import MESSAGE, append
from tests.test_imap_protocol import IMAPTestMixin


class UnauthenticateTests(IMAPTestMixin, unittest.TestCase):
    def test_unauthenticate(self):
        """UNAUTHENTICATE closes the mailbox, forgets the login and ENABLEd extensions; LOGIN works again."""
        self.connect()
        self.assertNotIn(b"UNAUTHENTICATE", self.send(b"a CAPABILITY"))
        self.send(b'b LOGIN demo "%s"' % (PASSWORD.encode(),))
        self.assertIn(b" UNAUTHENTICATE", self.send(b"c CAPABILITY"))
        self.send(b"d ENABLE CONDSTORE")
        self.send(b"e SELECT INBOX")
        self.assertEqual(self.send(b"f UNAUTHENTICATE"), b"f OK UNAUTHENTICATE completed\r\n")
        self.assertIsNone(self.session.view)
        self.assertIsNone(self.session.account)
        self.assertEqual(self.session.enabled, set())
        self.assertIn(b"g BAD", self.send(b"g SELECT INBOX"))
        self.assertIn(b"h BAD", self.send(b"h UNAUTHENTICATE"))
        self.assertNotIn(b"UNAUTHENTICATE", self.send(b"i CAPABILITY"))
        self.assertIn(b"j OK", self.send(b'j LOGIN other "%s"' % (PASSWORD.encode(),)))
        self.assertEqual(self.session.account.address, "other@example.test")
        out = self.send(b"k SELECT INBOX")
        self.assertNotIn(b"HIGHESTMODSEQ", out)

    def test_unauthenticateKeepsMessages(self):
        """UNAUTHENTICATE does not expunge \\Deleted messages (unlike CLOSE)."""
        self.login()
        append(self)
        self.send(b"s SELECT INBOX")
        self.send(b"a STORE 1 +FLAGS (\\Deleted)")
        self.assertIn(b"b OK", self.send(b"b UNAUTHENTICATE"))
        self.assertIn(b"c OK", self.send(b'c LOGIN demo "%s"' % (PASSWORD.encode(),)))
        self.assertIn(b"(MESSAGES 1)", self.send(b"d STATUS INBOX (MESSAGES)"))


class StatusSizeTests(IMAPTestMixin, unittest.TestCase):
    def test_statusSize(self):
        """STATUS=SIZE is advertised and STATUS SIZE is the sum of the messages' RFC822.SIZE."""
        self.login()
        self.assertIn(b" STATUS=SIZE", self.send(b"a CAPABILITY"))
        append(self)
        append(self)
        self.assertIn(b"(MESSAGES 2 SIZE %d)" % (2 * len(MESSAGE),), self.send(b"b STATUS INBOX (MESSAGES SIZE)"))


class CreateSpecialUseTests(IMAPTestMixin, unittest.TestCase):
    def test_createSpecialUse(self):
        """CREATE-SPECIAL-USE (RFC 6154 3): CREATE name (USE (\\Drafts)) makes a \\Drafts mailbox; unknown uses get NO [USEATTR]."""
        self.login()
        self.assertIn(b" CREATE-SPECIAL-USE", self.send(b"a CAPABILITY"))
        self.assertIn(b"b OK", self.send(b"b CREATE Entw&APw-rfe (USE (\\drafts))"))
        self.assertIn(b'* LIST (\\HasNoChildren \\Drafts) "/" "Entw&APw-rfe"',
                      self.send(b'c LIST "" Entw&APw-rfe'))
        self.assertIn(b"d NO [USEATTR]", self.send(b"d CREATE Odd (USE (\\Bogus))"))
        self.assertIn(b"e NO [USEATTR]", self.send(b"e CREATE Two (USE (\\Sent \\Junk))"))
        self.assertNotIn(b'"Odd"', self.send(b'f LIST "" *'))


class MultiAppendTests(IMAPTestMixin, unittest.TestCase):
    def test_multiappend(self):
        """MULTIAPPEND (RFC 3502): several messages in one APPEND, answered with a UID set."""
        self.login()
        self.assertIn(b" MULTIAPPEND", self.send(b"a CAPABILITY"))
        out = self.send(b"b APPEND INBOX (\\Seen) {%d+}\r\n%s (\\Flagged $Work) \" 1-Feb-2024 10:00:00 +0100\" {%d+}\r\n%s"
                        b" {%d+}\r\n%s\r\n" % (len(MESSAGE), MESSAGE, len(MESSAGE), MESSAGE, len(MESSAGE), MESSAGE))
        self.assertRegex(out, rb"b OK \[APPENDUID \d+ 1:3\] APPEND completed")
        self.send(b"s SELECT INBOX")
        out = self.send(b"c FETCH 1:3 (FLAGS INTERNALDATE)")
        self.assertIn(b"\\Seen", out.split(b"\r\n")[0])
        self.assertIn(b'$Work) INTERNALDATE " 1-Feb-2024 09:00:00 +0000"', out)

    def test_allOrNothing(self):
        """When one message of a MULTIAPPEND cannot be stored, none is."""
        self.login(quota=len(MESSAGE) * 2 + 10)
        out = self.send(b"a APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s {%d+}\r\n%s\r\n" % (
            len(MESSAGE), MESSAGE, len(MESSAGE), MESSAGE, len(MESSAGE), MESSAGE))
        self.assertIn(b"a NO [OVERQUOTA]", out)
        self.assertIn(b"(MESSAGES 0)", self.send(b"b STATUS INBOX (MESSAGES)"))
        self.assertIn(b"c BAD", self.send(b"c APPEND INBOX {3+}\r\nabc (\\Bogus) {3+}\r\nabc\r\n"))
        self.assertIn(b"(MESSAGES 0)", self.send(b"d STATUS INBOX (MESSAGES)"))
