# -*- test-case-name: tests.test_ctl_acl -*-
"""
Tests for C{gatewayctl acl} (L{gateway.ctl_acl}).
"""

import os

from twisted.trial import unittest

from gateway import ctl
from gateway.store import acl
from tests.test_ctl import CtlMixin


class AclCommandTests(CtlMixin, unittest.TestCase):
    def setUp(self):
        CtlMixin.setUp(self)
        self.ok("domain", "add", "example.test")
        self.ok("account", "add", "boss@example.test", "--password", "pw")
        self.ok("account", "add", "assistant@example.test", "--password", "pw")

    def test_setGetDelete(self):
        """acl set/get/delete change and show the ACL as SETACL would, in the dovecot-acl file."""
        out = self.ok("acl", "set", "boss@example.test", "Calendar", "assistant", "lrs")
        self.assertEqual(out, "boss@example.test lrswipkxtea01\nassistant@example.test lrs\n")
        self.ok("acl", "set", "boss@example.test", "Calendar", "assistant", "+w")
        self.ok("acl", "set", "boss@example.test", "Calendar", "--", "-anyone", "r")
        out = self.ok("acl", "get", "boss@example.test", "Calendar")
        self.assertEqual(out, "boss@example.test lrswipkxtea01\nassistant@example.test lrsw\n-anyone r\n")
        folder = os.path.join(self.directory().getAccount("boss@example.test").path.path, "mail", "Calendar")
        self.assertEqual(acl.readACL(folder).rightsFor("assistant@example.test", "boss@example.test"),
                         frozenset("lsw"))
        out = self.ok("acl", "delete", "boss@example.test", "Calendar", "assistant")
        self.assertEqual(out, "boss@example.test lrswipkxtea01\n-anyone r\n")

    def test_errors(self):
        """Unknown accounts, mailboxes and rights fail with a message and no traceback."""
        self.assertIn("no such account", self.fails(ctl.EX_NOUSER, "acl", "get", "x@example.test", "INBOX"))
        self.assertIn("no such mailbox", self.fails(ctl.EX_DATAERR, "acl", "get", "boss@example.test", "Nope"))
        self.assertIn("not a right", self.fails(ctl.EX_DATAERR, "acl", "set", "boss@example.test", "INBOX",
                                                "anyone", "lz"))
        self.assertIn("every right", self.fails(ctl.EX_DATAERR, "acl", "set", "boss@example.test", "INBOX",
                                                "boss", "l"))

    def test_publicAndRebuild(self):
        """domain add makes a disabled public account (acl public makes one where missing); acl rebuild counts the shared mailboxes."""
        self.assertEqual(self.ok("acl", "public", "example.test"), "")
        self.ok("account", "remove", "public@example.test", "--yes")
        self.assertIn("public@example.test added", self.ok("acl", "public", "example.test"))
        record = self.directory().getAccount("public@example.test")
        self.assertFalse(record.enabled)
        self.assertIsNone(self.directory().resolve("public@example.test"))
        self.assertEqual(self.ok("acl", "public", "example.test", "news"), "mailbox ~public/news created\n")
        self.assertEqual(self.ok("acl", "public", "example.test", "news"), "")
        self.ok("acl", "set", "public@example.test", "news", "anyone", "lr")
        self.ok("acl", "set", "boss@example.test", "Calendar", "assistant", "lr")
        self.assertEqual(self.ok("acl", "rebuild"), "2 shared mailboxes\n")
