# -*- test-case-name: tests.test_imap_auth -*-
"""
IMAP authentication: STARTTLS, LOGIN, AUTHENTICATE (PLAIN, LOGIN,
CRAM-MD5, SCRAM-SHA-256) with SASL-IR and cancellation, LOGINDISABLED and
alerts.
"""

import base64
import hashlib
import hmac
import os

from twisted.trial import unittest

from tests.support import PASSWORD
from tests.test_imap_protocol import IMAPTestMixin

B64 = base64.b64encode


class LoginTests(IMAPTestMixin, unittest.TestCase):
    def test_login(self):
        """LOGIN with the right password authenticates and reports the new capabilities."""
        self.connect()
        out = self.send(b'a LOGIN demo "%s"' % (PASSWORD.encode(),))
        self.assertTrue(out.startswith(b"a OK [CAPABILITY IMAP4rev1"), out)
        self.assertNotIn(b"AUTH=", out)
        self.assertEqual(self.session.account.address, "demo@example.test")
        self.assertIn(b"b OK", self.send(b"b SELECT INBOX"))

    def test_loginAlias(self):
        """LOGIN accepts the full address form with % and the alias."""
        self.connect()
        self.assertIn(b"a OK", self.send(b'a LOGIN demo.user%%example.test "%s"' % (PASSWORD.encode(),)))

    def test_loginWrongPassword(self):
        """A wrong password gets NO [AUTHENTICATIONFAILED] and the session stays unauthenticated."""
        self.connect()
        out = self.send(b'a LOGIN demo "wrong"')
        self.assertEqual(out, b"a NO [AUTHENTICATIONFAILED] Authentication failed\r\n")
        self.assertIn(b"b BAD", self.send(b"b SELECT INBOX"))

    def test_loginTwice(self):
        """LOGIN in the authenticated state is BAD."""
        self.login()
        self.assertIn(b"a BAD", self.send(b'a LOGIN demo "%s"' % (PASSWORD.encode(),)))

    def test_loginDisabledRefused(self):
        """Without TLS where clear text is forbidden, LOGIN and AUTHENTICATE PLAIN are refused."""
        self.connect(cleartextLogin=False)
        out = self.send(b'a LOGIN demo "%s"' % (PASSWORD.encode(),))
        self.assertTrue(out.startswith(b"a NO [PRIVACYREQUIRED]"), out)
        out = self.send(b"b AUTHENTICATE PLAIN " + B64(b"\0demo\0" + PASSWORD.encode()))
        self.assertTrue(out.startswith(b"b NO [PRIVACYREQUIRED]"), out)
        self.assertIsNone(self.session.account)

    def test_alerts(self):
        """Pending alerts are shown as [ALERT] right after login, once."""
        self.connect()
        account = self.context.realm.accountFor("demo@example.test")
        os.makedirs(os.path.join(account.path, "alerts"), exist_ok=True)
        with open(os.path.join(account.path, "alerts", "1"), "w") as f:
            f.write("Maintenance tonight")
        out = self.send(b'a LOGIN demo "%s"' % (PASSWORD.encode(),))
        self.assertTrue(out.startswith(b"* OK [ALERT] Maintenance tonight\r\na OK"), out)
        self.assertEqual(account.popAlerts(), [])


class StartTLSTests(IMAPTestMixin, unittest.TestCase):
    def test_startTLS(self):
        """STARTTLS answers OK, starts TLS and makes the session secure."""
        self.connect(cleartextLogin=False)
        out = self.send(b"a STARTTLS")
        self.assertEqual(out, b"a OK Begin TLS negotiation now\r\n")
        self.assertIs(self.transport.tlsStarted, self.context.tls)
        self.assertTrue(self.session.secure)
        caps = self.send(b"b CAPABILITY")
        self.assertNotIn(b"STARTTLS", caps)
        self.assertNotIn(b"LOGINDISABLED", caps)
        self.assertIn(b"c OK", self.send(b'c LOGIN demo "%s"' % (PASSWORD.encode(),)))

    def test_pipelinedDiscarded(self):
        """Commands pipelined after STARTTLS, before the handshake, are discarded."""
        self.connect()
        out = self.send(b'a STARTTLS\r\nb LOGIN demo "%s"\r\n' % (PASSWORD.encode(),))
        self.assertEqual(out, b"a OK Begin TLS negotiation now\r\n")
        self.assertIsNone(self.session.account)

    def test_startTLSTwice(self):
        """STARTTLS on a secure connection is BAD."""
        self.connect(secure=True)
        self.assertIn(b"a BAD", self.send(b"a STARTTLS"))


class AuthenticateTests(IMAPTestMixin, unittest.TestCase):
    def test_plainInitialResponse(self):
        """AUTHENTICATE PLAIN with SASL-IR logs in in one round trip."""
        self.connect()
        out = self.send(b"a AUTHENTICATE PLAIN " + B64(b"\0demo\0" + PASSWORD.encode()))
        self.assertTrue(out.startswith(b"a OK [CAPABILITY"), out)

    def test_plainChallenge(self):
        """AUTHENTICATE PLAIN without an initial response sends an empty challenge."""
        self.connect()
        self.assertEqual(self.send(b"a AUTHENTICATE PLAIN"), b"+ \r\n")
        out = self.send(B64(b"\0demo\0" + PASSWORD.encode()))
        self.assertIn(b"a OK", out)

    def test_plainWrong(self):
        """A wrong password through AUTHENTICATE PLAIN gets NO."""
        self.connect()
        out = self.send(b"a AUTHENTICATE PLAIN " + B64(b"\0demo\0nope"))
        self.assertIn(b"a NO [AUTHENTICATIONFAILED]", out)

    def test_loginMechanism(self):
        """AUTHENTICATE LOGIN asks for the user name and the password."""
        self.connect()
        self.assertTrue(self.send(b"a AUTHENTICATE LOGIN").startswith(b"+ "))
        self.assertTrue(self.send(B64(b"demo")).startswith(b"+ "))
        self.assertIn(b"a OK", self.send(B64(PASSWORD.encode())))

    def test_cramMD5(self):
        """AUTHENTICATE CRAM-MD5 verifies the HMAC of the challenge."""
        self.connect(cleartextLogin=False)
        out = self.send(b"a AUTHENTICATE CRAM-MD5")
        self.assertTrue(out.startswith(b"+ "))
        challenge = base64.b64decode(out[2:].strip())
        digest = hmac.new(PASSWORD.encode(), challenge, hashlib.md5).hexdigest()
        self.assertIn(b"a OK", self.send(B64(b"demo " + digest.encode())))

    def test_cancel(self):
        """A * line cancels the exchange with BAD; the session continues."""
        self.connect()
        self.send(b"a AUTHENTICATE CRAM-MD5")
        self.assertEqual(self.send(b"*"), b"a BAD Authentication cancelled\r\n")
        self.assertIn(b"b OK", self.send(b"b NOOP"))

    def test_badBase64(self):
        """Undecodable base64 gets BAD."""
        self.connect()
        self.send(b"a AUTHENTICATE PLAIN")
        self.assertIn(b"a BAD", self.send(b"!!!"))

    def test_unknownMechanism(self):
        """An unknown mechanism gets BAD."""
        self.connect()
        self.assertIn(b"a BAD Unsupported", self.send(b"a AUTHENTICATE X-NONE"))

    def test_emptyInitialResponse(self):
        """An initial response of = means empty (PLAIN then fails as malformed)."""
        self.connect()
        out = self.send(b"a AUTHENTICATE PLAIN =")
        self.assertIn(b"a BAD", out)


class ScramTests(IMAPTestMixin, unittest.TestCase):
    def test_scram(self):
        """AUTHENTICATE SCRAM-SHA-256 completes with the server-final message and an empty answer."""
        self.connect()
        clientFirstBare = b"n=demo,r=abcdefghijklmnop"
        out = self.send(b"a AUTHENTICATE SCRAM-SHA-256 " + B64(b"n,," + clientFirstBare))
        self.assertTrue(out.startswith(b"+ "), out)
        serverFirst = base64.b64decode(out[2:].strip())
        fields = dict(item.split(b"=", 1) for item in serverFirst.split(b","))
        salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), base64.b64decode(fields[b"s"]),
                                     int(fields[b"i"]))
        clientKey = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        storedKey = hashlib.sha256(clientKey).digest()
        withoutProof = b"c=biws,r=" + fields[b"r"]
        authMessage = clientFirstBare + b"," + serverFirst + b"," + withoutProof
        signature = hmac.new(storedKey, authMessage, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(clientKey, signature, strict=True))
        out = self.send(B64(withoutProof + b",p=" + B64(proof)))
        self.assertTrue(out.startswith(b"+ "), out)
        self.assertTrue(base64.b64decode(out[2:].strip()).startswith(b"v="))
        self.assertIsNone(self.session.account)
        self.assertIn(b"a OK", self.send(b""))
        self.assertEqual(self.session.account.address, "demo@example.test")
