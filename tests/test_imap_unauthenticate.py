# -*- test-case-name: tests.test_imap_unauthenticate -*-
"""
UNAUTHENTICATE (RFC 8437) and the STATUS=SIZE capability (RFC 8438).
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
