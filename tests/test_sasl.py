# -*- test-case-name: tests.test_sasl -*-
"""
Tests for L{gateway.cred.sasl}: the mechanism state machines, and whole
exchanges checked by the L{DirectoryChecker}.
"""

import base64
import hashlib
import hmac

from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.trial.unittest import TestCase

from gateway import config
from gateway.cred import sasl
from gateway.cred.checkers import verifyScramProof
from gateway.cred.credentials import CramMD5Credentials, IScramCredentials, LoginContext, PlainCredentials
from gateway.cred.passwords import hashPassword, scramKeysFromPlain
from gateway.cred.sasl import SASLCancelled, SASLError, createMechanism, mechanismNames
from tests.test_checkers import SECRET, DirectoryMixin

HOST = "mail.example.test"
RFC7677_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")


def context(secure=True):
    return LoginContext("imap", "198.51.100.7", "127.0.0.1", secure)


class NamesTests(TestCase):
    """
    Which mechanisms are announced and created.
    """

    def test_secure(self):
        """With TLS every password mechanism is listed."""
        self.assertEqual(mechanismNames(True, False), ["PLAIN", "LOGIN", "CRAM-MD5"])
        self.assertEqual(sasl.DEFAULT_ORDER, config.MECHANISMS)

    def test_cleartextAllowed(self):
        """Without TLS, PLAIN and LOGIN are listed only where clear text is allowed."""
        self.assertEqual(mechanismNames(False, True), ["PLAIN", "LOGIN", "CRAM-MD5"])
        self.assertEqual(mechanismNames(False, False), ["CRAM-MD5"])

    def test_scramNeedsPortal(self):
        """SCRAM-SHA-256 is listed and created only with a portal whose checker gives SCRAM keys."""
        self.assertIsNone(createMechanism("SCRAM-SHA-256", context(), HOST))
        self.assertNotIn("SCRAM-SHA-256", mechanismNames(True, True, portal=Portal(None, [])))
        portal = Portal(None, [KeySource()])
        self.assertEqual(mechanismNames(False, False, portal=portal), ["SCRAM-SHA-256", "CRAM-MD5"])
        self.assertIsInstance(createMechanism("scram-sha-256", context(), HOST, portal=portal), sasl.ScramMechanism)

    def test_policy(self):
        """A checker's mechanismsFor decides the list, its order, and what can be created."""

        class Narrow(KeySource):
            def mechanismsFor(self, localAddress):
                self.asked = localAddress
                return ["CRAM-MD5", "PLAIN"]

        checker = Narrow()
        portal = Portal(None, [checker])
        self.assertEqual(mechanismNames(True, True, portal=portal, localAddress="192.0.2.1"), ["CRAM-MD5", "PLAIN"])
        self.assertEqual(checker.asked, "192.0.2.1")
        self.assertEqual(mechanismNames(False, False, portal=portal), ["CRAM-MD5"])
        self.assertIsNone(createMechanism("SCRAM-SHA-256", context(), HOST, portal=portal))
        self.assertIsNone(createMechanism("LOGIN", context(), HOST, portal=portal))
        self.assertIsInstance(createMechanism("cram-md5", context(), HOST, portal=portal), sasl.CramMD5Mechanism)

    def test_create(self):
        """createMechanism is case-insensitive, takes bytes, and gives None for unknown names."""
        for name in ("plain", b"PLAIN", "Login", "CRAM-MD5"):
            mechanism = createMechanism(name, context(), HOST)
            self.assertEqual(mechanism.name, (name.decode() if isinstance(name, bytes) else name).upper())
        self.assertTrue(createMechanism("PLAIN", context(), HOST).cleartext)
        self.assertTrue(createMechanism("LOGIN", context(), HOST).cleartext)
        self.assertFalse(createMechanism("CRAM-MD5", context(), HOST).cleartext)
        self.assertIsNone(createMechanism("GSSAPI", context(), HOST))
        self.assertIsNone(createMechanism("", context(), HOST))

    def test_cancelledIsSASLError(self):
        """SASLCancelled is a SASLError, so one handler answers both."""
        self.assertTrue(issubclass(SASLCancelled, SASLError))


class PlainTests(TestCase):
    """
    PLAIN (RFC 4616).
    """

    def test_initialResponse(self):
        """An initial response completes the exchange at once."""
        mechanism = createMechanism("PLAIN", context(), HOST)
        kind, creds = mechanism.start(b"\x00demo\x00secret")
        self.assertEqual(kind, "done")
        self.assertIsInstance(creds, PlainCredentials)
        self.assertEqual((creds.username, creds.password, creds.authzid), ("demo", "secret", ""))
        self.assertEqual(creds.mechanism, "PLAIN")
        self.assertIs(creds.context, mechanism.context)
        self.assertIsNone(mechanism.finish("demo@example.test"))

    def test_challenge(self):
        """Without an initial response the server sends an empty challenge first."""
        mechanism = createMechanism("PLAIN", context(), HOST)
        self.assertEqual(mechanism.start(None), ("challenge", b""))
        kind, creds = mechanism.step(b"demo\x00demo\x00p\xc3\xa4ss")
        self.assertEqual((kind, creds.username, creds.password, creds.authzid), ("done", "demo", "päss", "demo"))

    def test_malformed(self):
        """Messages without exactly two NULs, or with an empty user name, are SASLErrors."""
        for message in (b"", b"demo secret", b"\x00demo", b"a\x00b\x00c\x00d", b"\x00\x00secret"):
            mechanism = createMechanism("PLAIN", context(), HOST)
            self.assertRaises(SASLError, mechanism.start, message)

    def test_stepAfterDone(self):
        """A response after the end, or before the start, is a SASLError."""
        mechanism = createMechanism("PLAIN", context(), HOST)
        self.assertRaises(SASLError, mechanism.step, b"\x00a\x00b")
        mechanism.start(b"\x00a\x00b")
        self.assertRaises(SASLError, mechanism.step, b"\x00a\x00b")
        self.assertRaises(SASLError, mechanism.start, b"\x00a\x00b")

    def test_tooLong(self):
        """An oversized response is a SASLError."""
        mechanism = createMechanism("PLAIN", context(), HOST)
        self.assertRaises(SASLError, mechanism.start, b"\x00a\x00" + b"x" * sasl.MAX_RESPONSE)


class LoginTests(TestCase):
    """
    LOGIN.
    """

    def test_exchange(self):
        """LOGIN asks Username: then Password:."""
        mechanism = createMechanism("LOGIN", context(), HOST)
        self.assertEqual(mechanism.start(None), ("challenge", b"Username:"))
        self.assertEqual(mechanism.step(b"demo"), ("challenge", b"Password:"))
        kind, creds = mechanism.step(b"secret")
        self.assertEqual((kind, creds.username, creds.password, creds.mechanism), ("done", "demo", "secret", "LOGIN"))

    def test_initialResponse(self):
        """An initial response is the user name; an empty one is no response."""
        mechanism = createMechanism("LOGIN", context(), HOST)
        self.assertEqual(mechanism.start(b"demo"), ("challenge", b"Password:"))
        self.assertEqual(mechanism.step(b"secret")[1].username, "demo")
        self.assertEqual(createMechanism("LOGIN", context(), HOST).start(b""), ("challenge", b"Username:"))

    def test_emptyUser(self):
        """An empty user name is a SASLError."""
        mechanism = createMechanism("LOGIN", context(), HOST)
        mechanism.start(None)
        self.assertRaises(SASLError, mechanism.step, b"")


class CramMD5Tests(TestCase):
    """
    CRAM-MD5 (RFC 2195).
    """

    def test_exchange(self):
        """The server sends an RFC 2195 challenge; 'user digest' gives CramMD5Credentials."""
        mechanism = createMechanism("CRAM-MD5", context(), HOST)
        kind, challenge = mechanism.start(None)
        self.assertEqual(kind, "challenge")
        self.assertRegex(challenge, rb"^<\d+\.\d+@mail\.example\.test>$")
        digest = hmac.new(b"secret", challenge, "md5").hexdigest().upper().encode()
        kind, creds = mechanism.step(b"demo user " + digest)
        self.assertIsInstance(creds, CramMD5Credentials)
        self.assertEqual((creds.username, creds.challenge, creds.response), ("demo user", challenge, digest.lower()))
        self.assertTrue(creds.checkPassword("secret"))

    def test_noInitialResponse(self):
        """CRAM-MD5 refuses an initial response (an empty one is none)."""
        self.assertRaises(SASLError, createMechanism("CRAM-MD5", context(), HOST).start, b"demo")
        self.assertEqual(createMechanism("CRAM-MD5", context(), HOST).start(b"")[0], "challenge")

    def test_malformed(self):
        """A response without a user name or a 32-digit hex digest is a SASLError."""
        for response in (b"", b"demo", b" " + b"a" * 32, b"demo " + b"a" * 31, b"demo " + b"g" * 32, b"demo " + b"a" * 33):
            mechanism = createMechanism("CRAM-MD5", context(), HOST)
            mechanism.start(None)
            self.assertRaises(SASLError, mechanism.step, response)


class KeySource:
    """
    A checker stand-in that gives SCRAM keys for one password and salt.
    """

    credentialInterfaces = (IScramCredentials,)

    def __init__(self, password="pencil", salt=RFC7677_SALT):
        self.keys = scramKeysFromPlain(password, "sha256", salt, 4096)
        self.asked = []

    def scramKeys(self, username, context, hashName):
        self.asked.append((username, hashName))
        return self.keys

    def requestAvatarId(self, credentials):
        raise NotImplementedError()


def scramClient(mechanism, username, password, clientNonce="rOprNGfwEbeRWgbNEkqO", authzid=""):
    """
    Run the client side of SCRAM-SHA-256 against C{mechanism}.

    @return: C{(credentials, expected server-final message)}.
    """
    gs2 = "n,%s," % ("a=" + authzid if authzid else "",)
    bare = "n=%s,r=%s" % (username.replace("=", "=3D").replace(",", "=2C"), clientNonce)
    kind, serverFirst = mechanism.start((gs2 + bare).encode())
    assert kind == "challenge"
    attributes = dict(item.split("=", 1) for item in serverFirst.decode().split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attributes["s"]), int(attributes["i"]))
    clientKey = hmac.new(salted, b"Client Key", "sha256").digest()
    withoutProof = "c=%s,r=%s" % (base64.b64encode(gs2.encode()).decode(), attributes["r"])
    authMessage = ",".join([bare, serverFirst.decode(), withoutProof]).encode()
    signature = hmac.new(hashlib.sha256(clientKey).digest(), authMessage, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(clientKey, signature, strict=True))
    kind, creds = mechanism.step(("%s,p=%s" % (withoutProof, base64.b64encode(proof).decode())).encode())
    assert kind == "done"
    serverKey = hmac.new(salted, b"Server Key", "sha256").digest()
    return creds, b"v=" + base64.b64encode(hmac.new(serverKey, authMessage, "sha256").digest())


class ScramTests(TestCase):
    """
    SCRAM-SHA-256 (RFC 5802, RFC 7677) message handling.
    """

    def mechanism(self, source=None):
        self.source = source or KeySource()
        return sasl.ScramMechanism(context(), HOST, self.source)

    def test_rfc7677Example(self):
        """The exchange of RFC 7677 section 3 gives its proof and server signature."""
        mechanism = self.mechanism()
        mechanism.makeNonce = lambda: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
        self.assertEqual(
            mechanism.start(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"),
            ("challenge", b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
        )
        kind, creds = mechanism.step(
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
            b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        )
        self.assertEqual((kind, creds.username, creds.hashName, creds.mechanism), ("done", "user", "sha256", "SCRAM-SHA-256"))
        self.assertTrue(verifyScramProof(self.source.keys, creds.authMessage, creds.clientProof))
        self.assertEqual(
            mechanism.finish("user@example.test"),
            ("challenge", b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
        )
        self.assertEqual(mechanism.step(b""), ("done", None))

    def test_emptyChallengeFirst(self):
        """Without an initial response the server asks with an empty challenge."""
        mechanism = self.mechanism()
        self.assertEqual(mechanism.start(None), ("challenge", b""))
        creds, serverFinal = scramClient(_Restarted(mechanism), "user", "pencil")
        self.assertTrue(verifyScramProof(self.source.keys, creds.authMessage, creds.clientProof))
        self.assertEqual(mechanism.finish("x"), ("challenge", serverFinal))

    def test_wrongPassword(self):
        """A proof made with another password does not verify."""
        creds, _ = scramClient(self.mechanism(), "user", "pen")
        self.assertFalse(verifyScramProof(self.source.keys, creds.authMessage, creds.clientProof))

    def test_saslname(self):
        """=2C and =3D in names decode; another = escape is a SASLError."""
        creds, _ = scramClient(self.mechanism(), "a,b=c", "pencil", authzid="x=2Cy")
        self.assertEqual((creds.username, creds.authzid), ("a,b=c", "x,y"))
        self.assertEqual(self.source.asked, [("a,b=c", "sha256")])
        self.assertRaises(SASLError, self.mechanism().start, b"n,,n=a=ZZ,r=abc")

    def test_serverFinalAnswer(self):
        """Anything but an empty answer to the server-final message is a SASLError."""
        mechanism = self.mechanism()
        scramClient(mechanism, "user", "pencil")
        mechanism.finish("x")
        self.assertRaises(SASLError, mechanism.step, b"junk")

    def test_malformedFirst(self):
        """Channel binding, mandatory extensions and broken client-first messages are SASLErrors."""
        for message in (
            b"p=tls-unique,,n=user,r=abc",
            b"x,,n=user,r=abc",
            b"n,,m=ext,n=user,r=abc",
            b"n,,n=user",
            b"n,,n=,r=abc",
            b"n,,n=user,r=a,b",
            b"n,b=x,n=user,r=abc",
            b"n,,n=user,r=",
            b"n,,n=\xff,r=abc",
            b"n=user,r=abc",
        ):
            self.assertRaises(SASLError, self.mechanism().start, message)

    def test_yFlag(self):
        """The 'y' flag (client could bind, server does not offer it) is accepted."""
        mechanism = self.mechanism()
        self.assertEqual(mechanism.start(b"y,,n=user,r=abc")[0], "challenge")

    def test_malformedFinal(self):
        """A wrong nonce, wrong channel binding, no proof or bad base64 is a SASLError."""
        for final in (
            "c=biws,r={nonce}x,p=AAAA",
            "c=eSws,r={nonce},p=AAAA",
            "c=biws,r={nonce}",
            "c=biws,r={nonce},p=!!!",
            "r={nonce},c=biws,p=AAAA",
        ):
            mechanism = self.mechanism()
            serverFirst = mechanism.start(b"n,,n=user,r=abc")[1].decode()
            nonce = serverFirst.split(",")[0][2:]
            self.assertRaises(SASLError, mechanism.step, final.format(nonce=nonce).encode())


class _Restarted:
    """
    Lets L{scramClient} drive a mechanism that was already started with no
    initial response: its C{start} becomes the first C{step}.
    """

    def __init__(self, mechanism):
        self._mechanism = mechanism

    def start(self, message):
        return self._mechanism.step(message)

    def step(self, message):
        return self._mechanism.step(message)


class ExchangeTests(DirectoryMixin, TestCase):
    """
    Whole SASL exchanges checked by the directory checker.
    """

    def setUp(self):
        DirectoryMixin.setUp(self)
        self.directory.addAccount("scram@example.test", hashPassword(SECRET, "SCRAM-SHA-256"))
        self.portal = Portal(None, [self.checker])

    def test_plainAuthzidMismatch(self):
        """PLAIN with another account as authzid fails the login; the own name passes."""
        mechanism = createMechanism("PLAIN", self.context(), HOST)
        creds = mechanism.start(("plain@example.test\x00demo\x00" + SECRET).encode())[1]
        self.refuse(creds)
        self.assertIn("reason=authorization as plain@example.test not allowed", self.lastLine())
        mechanism = createMechanism("PLAIN", self.context(), HOST)
        creds = mechanism.start(("demo\x00demo\x00" + SECRET).encode())[1]
        self.assertEqual(self.succeed(creds), "demo@example.test")

    def test_login(self):
        """LOGIN gives credentials the checker accepts; the log names the mechanism."""
        mechanism = createMechanism("LOGIN", self.context(), HOST)
        mechanism.start(None)
        mechanism.step(b"demo")
        creds = mechanism.step(SECRET.encode())[1]
        self.assertEqual(self.succeed(creds), "demo@example.test")
        self.assertIn("mechanism=LOGIN", self.lastLine())

    def test_cramMD5(self):
        """CRAM-MD5 against a {CRAM-MD5} account succeeds; against {SHA512-CRYPT} it fails."""
        for name, succeeds in (("cram", True), ("demo", False)):
            mechanism = createMechanism("CRAM-MD5", self.context(), HOST)
            challenge = mechanism.start(None)[1]
            digest = hmac.new(SECRET.encode(), challenge, "md5").hexdigest().encode()
            creds = mechanism.step(name.encode() + b" " + digest)[1]
            if succeeds:
                self.assertEqual(self.succeed(creds), "cram@example.test")
            else:
                self.refuse(creds)
                self.assertIn("reason=CRAM-MD5 not possible with {SHA512-CRYPT} password", self.lastLine())

    def scram(self, username, password=SECRET):
        mechanism = createMechanism("SCRAM-SHA-256", self.context(), HOST, portal=self.portal)
        creds, serverFinal = scramClient(mechanism, username, password)
        return mechanism, creds, serverFinal

    def test_scramStoredKeys(self):
        """SCRAM-SHA-256 with a {SCRAM-SHA-256} account succeeds and ends with the right server signature."""
        mechanism, creds, serverFinal = self.scram("scram")
        avatarId = self.succeed(creds)
        self.assertEqual(avatarId, "scram@example.test")
        self.assertIn("mechanism=SCRAM-SHA-256", self.lastLine())
        self.assertEqual(mechanism.finish(avatarId), ("challenge", serverFinal))
        self.assertEqual(mechanism.step(b""), ("done", None))

    def test_scramPlain(self):
        """SCRAM-SHA-256 works with a {PLAIN} account too."""
        mechanism, creds, serverFinal = self.scram("plain")
        self.assertEqual(self.succeed(creds), "plain@example.test")
        self.assertEqual(mechanism.finish("plain@example.test"), ("challenge", serverFinal))

    def test_scramWrongPassword(self):
        """A wrong SCRAM proof fails after the delay."""
        _, creds, _ = self.scram("scram", "wrong")
        self.refuse(creds)
        self.assertIn("reason=wrong password", self.lastLine())

    def test_scramHashOnly(self):
        """SCRAM with a {SHA512-CRYPT} account fails, and the log says why."""
        _, creds, _ = self.scram("demo")
        self.refuse(creds)
        self.assertIn("reason=SCRAM-SHA-256 not possible with {SHA512-CRYPT} password", self.lastLine())

    def test_scramUnknownUser(self):
        """An unknown name gets a salt that stays the same, and fails like a wrong password."""
        salts = []
        for _ in range(2):
            mechanism = createMechanism("SCRAM-SHA-256", self.context(), HOST, portal=self.portal)
            salts.append(mechanism.start(b"n,,n=nobody,r=abc")[1].split(b",")[1])
        self.assertEqual(salts[0], salts[1])
        _, creds, _ = self.scram("nobody")
        self.refuse(creds)
        self.assertIn("reason=unknown user", self.lastLine())

    def test_scramService(self):
        """SCRAM obeys the service rule like every mechanism."""
        _, creds, _ = self.scram("scram")
        creds.context = self.context(protocol="ftp")
        self.directory.setAccount("scram@example.test", services=frozenset({"imap"}))
        self.refuse(creds)
        self.assertIn("reason=service ftp disabled", self.lastLine())

    def test_unauthorizedIsTheOnlyFailure(self):
        """Every failure kind is the same UnauthorizedLogin."""
        _, creds, _ = self.scram("nobody")
        failure = self.refuse(creds)
        self.assertIs(failure.type, UnauthorizedLogin)
