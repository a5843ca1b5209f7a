"""
The shared fixtures build a working context.
"""

from twisted.trial import unittest

from gateway.cred.credentials import LoginContext, PlainCredentials
from gateway.interfaces import IAccount
from tests.support import PASSWORD, makeTestContext


class ContextTests(unittest.TestCase):
    def test_loginThroughPortal(self):
        """A context's portal logs the demo account in by its alias and yields the shared account."""
        context = makeTestContext(self)
        creds = PlainCredentials("demo.user", PASSWORD, LoginContext("imap", "127.0.0.1", "127.0.0.1", True))
        results = []
        context.portal.login(creds, None, IAccount).addCallback(results.append)
        iface, account, logout = results[0]
        self.assertEqual(account.address, "demo@example.test")
        self.assertIs(account, context.realm.accountFor("demo@example.test"))
        self.assertIn("INBOX", [m.name for m in account.mailStore.listMailboxes()])
        self.assertIsNotNone(context.tls)
