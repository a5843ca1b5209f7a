# -*- test-case-name: tests.test_imap_referrals -*-
"""
LOGIN-REFERRALS (RFC 2221): a login name that a router record sends to
another host (C{alias = name@host.example}, a domain this server does not
hold) gets C{NO [REFERRAL imap://...]} from LOGIN and AUTHENTICATE, when
C{[auth] login_referrals} is on.  That host's passwords are not known here,
so the answer cannot wait for a verified password (RFC 2221 6): it is off
by default, comes after the same delay as a wrong password and counts as a
failure for the client's address.
"""

import base64
import imaplib

from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from gateway.imap.server import makeFactory
from gateway.interfaces import IDirectory
from tests.support import PASSWORD, makeTestContext
from tests.test_imap_protocol import IMAPTestMixin

REFERRAL = b"[REFERRAL imap://jsm%40remote.example;AUTH=*@remote.example/]"
ON = {("auth", "login_referrals"): True}


class DirectoryReferralTests(IMAPTestMixin, unittest.TestCase):
    def setUp(self):
        self.connect()
        self.directory = self.context.directory
        self.directory.addRouterRecord("john@example.test", "jsm@remote.example")
        self.directory.addRouterRecord("local@example.test", "demo@example.test")
        self.directory.addRouterRecord("hop@example.test", "john@example.test")

    def test_referral(self):
        """A name routed (directly or over several records) to a domain not held here gives that address."""
        self.assertTrue(IDirectory.providedBy(self.directory))
        self.assertEqual(self.directory.referral("john@example.test"), "jsm@remote.example")
        self.assertEqual(self.directory.referral("John%example.test"), "jsm@remote.example")
        self.assertEqual(self.directory.referral("hop@example.test"), "jsm@remote.example")
        self.assertIsNone(self.directory.resolve("john@example.test"))

    def test_noReferral(self):
        """Accounts, names routed to local accounts, unknown names and unknown domains give none."""
        for name in ["demo", "demo@example.test", "local@example.test", "nobody@example.test",
                     "someone@remote.example", "x@@y"]:
            self.assertIsNone(self.directory.referral(name), name)


class LoginReferralTests(IMAPTestMixin, unittest.TestCase):
    def connectWith(self, config):
        self.connect(config=config)
        self.context.directory.addRouterRecord("john@example.test", "jsm@remote.example")

    def test_capability(self):
        """LOGIN-REFERRALS is advertised only when referrals are on."""
        self.connectWith(ON)
        self.assertIn(b" LOGIN-REFERRALS", self.send(b"c CAPABILITY"))
        self.connectWith({})
        self.assertNotIn(b"LOGIN-REFERRALS", self.send(b"c CAPABILITY"))

    def test_login(self):
        """LOGIN of a name routed to another host answers NO [REFERRAL ...]; the session stays unauthenticated."""
        self.connectWith(ON)
        out = self.send(b'a LOGIN john "whatever"')
        self.assertEqual(out, b"a NO " + REFERRAL + b" Account is on another server: remote.example\r\n")
        self.assertIsNone(self.session.account)
        self.assertIn(b"b OK", self.send(b'b LOGIN demo "%s"' % (PASSWORD.encode(),)))

    def test_authenticate(self):
        """AUTHENTICATE PLAIN of such a name answers NO [REFERRAL ...] as well."""
        self.connectWith(ON)
        out = self.send(b"a AUTHENTICATE PLAIN " + base64.b64encode(b"\0john@example.test\0whatever"))
        self.assertEqual(out, b"a NO " + REFERRAL + b" Account is on another server: remote.example\r\n")

    def test_countsAsFailure(self):
        """A referral counts as a failed login of the client's address (probing names costs what guessing does)."""
        self.connectWith(ON)
        checker = self.context.portal.checkers[next(iter(self.context.portal.checkers))]
        remote = self.session.loginContext.remoteAddress
        before = checker.failureCount(remote)
        self.send(b'a LOGIN john "whatever"')
        self.assertEqual(checker.failureCount(remote), before + 1)

    def test_off(self):
        """With referrals off (the default) such a name fails like a wrong password."""
        self.connectWith({})
        self.assertEqual(self.send(b'a LOGIN john "whatever"'),
                         b"a NO [AUTHENTICATIONFAILED] Authentication failed\r\n")

    def test_localNamesUnchanged(self):
        """With referrals on, a local account's wrong password and an unknown name still fail plainly."""
        self.connectWith(ON)
        for name in [b"demo", b"nobody"]:
            self.assertEqual(self.send(b'a LOGIN %s "wrong"' % (name,)),
                             b"a NO [AUTHENTICATIONFAILED] Authentication failed\r\n")


class ImaplibReferralTests(unittest.TestCase):
    def test_imaplib(self):
        """imaplib over loopback: LOGIN of a routed name fails with the referral in the server's text."""
        context = makeTestContext(self, reactor=reactor, clock=reactor, overrides=ON)
        context.directory.addRouterRecord("john@example.test", "jsm@remote.example")
        factory = makeFactory(context)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.addCleanup(lambda: [s.transport.abortConnection() for s in list(factory.sessions)])

        def client():
            imap = imaplib.IMAP4("127.0.0.1", port.getHost().port)
            self.assertIn("LOGIN-REFERRALS", imap.capabilities)
            with self.assertRaises(imaplib.IMAP4.error) as caught:
                imap.login("john", "whatever")
            self.assertIn(REFERRAL.decode(), str(caught.exception))
            imap.login("demo", PASSWORD)
            imap.logout()
        return deferToThread(client)
