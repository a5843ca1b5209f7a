# -*- test-case-name: tests.test_imap_hostile -*-
"""
Hostile and unlucky input to the IMAP session (issue 16): memory before
login, SEARCH nesting, mailbox-name limits, DELETE of the selected mailbox.
"""

from twisted.trial import unittest

from tests.test_imap_protocol import IMAPTestMixin


class DeleteSelectedTests(IMAPTestMixin, unittest.TestCase):
    """
    DELETE of the selected mailbox (issue 16, item 11).
    """

    def test_deleteSelectedOtherSpelling(self):
        """
        DELETE of the selected mailbox named in another spelling (C{inbox/x}
        for C{INBOX/x}) answers OK, and the session stays, in the
        authenticated state.
        """
        self.login()
        self.assertIn(b"C1 OK", self.send(b"C1 CREATE INBOX/Foo"))
        self.assertIn(b"S1 OK", self.send(b"S1 SELECT INBOX/Foo"))
        out = self.send(b"D1 DELETE inbox/Foo")
        self.assertIn(b"D1 OK", out)
        self.assertNotIn(b"BYE", out)
        self.assertFalse(self.transport.disconnected)
        self.assertIn(b"F1 BAD", self.send(b"F1 FETCH 1 FLAGS"))
        self.assertIn(b"N1 OK", self.send(b"N1 NOOP"))
        self.assertNotIn(b'"INBOX/Foo"', self.send(b'L1 LIST "" *'))

    def test_deleteSelectedWithChildren(self):
        """
        DELETE of the selected mailbox that has children (it becomes
        \\Noselect) answers OK and closes it.
        """
        self.login()
        self.assertIn(b"C1 OK", self.send(b"C1 CREATE Bar/Baz"))
        self.assertIn(b"S1 OK", self.send(b"S1 SELECT Bar"))
        out = self.send(b"D1 DELETE Bar")
        self.assertIn(b"D1 OK", out)
        self.assertNotIn(b"BYE", out)
        self.assertIn(b"F1 BAD", self.send(b"F1 FETCH 1 FLAGS"))

    def test_deleteOtherKeepsSelection(self):
        """
        DELETE of another mailbox leaves the selected one selected.
        """
        self.login()
        self.assertIn(b"C1 OK", self.send(b"C1 CREATE Other"))
        self.assertIn(b"S1 OK", self.send(b"S1 SELECT INBOX"))
        self.assertIn(b"D1 OK", self.send(b"D1 DELETE Other"))
        self.assertIn(b"F1 OK", self.send(b"F1 FETCH 1:* FLAGS"))

    def test_deleteSelectedRefused(self):
        """
        A DELETE of the selected mailbox that fails (INBOX) leaves it
        selected.
        """
        self.login()
        self.assertIn(b"S1 OK", self.send(b"S1 SELECT INBOX"))
        self.assertIn(b"D1 NO", self.send(b"D1 DELETE inbox"))
        self.assertIn(b"F1 OK", self.send(b"F1 FETCH 1:* FLAGS"))
