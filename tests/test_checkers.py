# -*- test-case-name: tests.test_checkers -*-
"""
Tests for L{gateway.cred.checkers}, L{gateway.cred.credentials} and
L{gateway.cred.portal}.
"""

import hashlib
import hmac
import os
import re
import shutil
import tempfile

import twisted.test
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import endpoints, protocol, reactor
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import CancelledError, Deferred, inlineCallbacks
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.internet.threads import deferToThreadPool as _deferToThreadPool
from twisted.logger import formatEventAsClassicLogText, globalLogPublisher
from twisted.trial.unittest import TestCase
from zope.interface import directlyProvides
from zope.interface.verify import verifyObject

from gateway.config import SCHEMA, Config
from gateway.cred import checkers, delays, forms, passwords
from gateway.cred.checkers import DirectoryChecker, cleartextAllowed, logSafe
from gateway.cred.credentials import (
    CramMD5Credentials,
    LoginContext,
    PlainCredentials,
    ScramCredentials,
    makeChallenge,
)
from gateway.cred.passwords import hashPassword
from gateway.cred.portal import makePortal
from gateway.cred.realm import GatewayRealm
from gateway.directory.filedir import FileDirectory
from gateway.errors import ConfigurationError
from gateway.interfaces import IAccount, ILoginContext, ILoginDelays

SECRET = "s3cr3t-Pässword"


def makeConfig(**auth):
    """
    The default configuration with some C{[auth]} options replaced.
    """
    values = {(o.section, o.name): o.parse(o.default) for o in SCHEMA}
    for name, value in auth.items():
        values[("auth", name)] = value
    return Config(values)


def temporaryFolder(testCase):
    """
    A fresh folder removed after the test (C{TestCase.mktemp} would put it
    under the current folder when the tests run with pytest).
    """
    path = tempfile.mkdtemp(prefix="gateway-cred-")
    testCase.addCleanup(shutil.rmtree, path, True)
    return path


class DirectoryMixin:
    """
    A data root with two domains:

      - example.test (main domain, clear-text login allowed without TLS):
        demo (SHA512-CRYPT, alias 'dem0'), cram ({CRAM-MD5}), plain ({PLAIN}),
        off (disabled), imaponly (services imap only),
        odd (unknown scheme), nopass (empty password)
      - other.test (assigned 192.0.2.2, alias other-alias.test, clear text
        needs TLS): bob (SHA512-CRYPT); router record robert -> bob
    """

    def setUp(self):
        self.directory = FileDirectory(temporaryFolder(self), "example.test")
        self.directory.addDomain("example.test", cleartextLogin=True)
        self.directory.addDomain(
            "other.test", addresses=("192.0.2.2",), aliases=("other-alias.test",), cleartextLogin=False
        )
        add = self.directory.addAccount
        self.demoHash = hashPassword(SECRET, rounds=1000)
        add("demo@example.test", self.demoHash, aliases=("dem0",))
        add("cram@example.test", hashPassword(SECRET, "CRAM-MD5"))
        add("plain@example.test", "{PLAIN}" + SECRET)
        add("off@example.test", hashPassword(SECRET, rounds=1000), enabled=False)
        add("imaponly@example.test", hashPassword(SECRET, rounds=1000), services=frozenset({"imap"}))
        add("odd@example.test", "{ROT13}" + SECRET)
        add("nopass@example.test", "")
        add("bob@other.test", hashPassword(SECRET, rounds=1000))
        self.directory.addRouterRecord("robert@other.test", "bob@other.test")
        self.clock = Clock()
        self.config = makeConfig(failure_delay=1.0, max_failure_delay=15.0)
        self.checker = DirectoryChecker(self.directory, self.config, clock=self.clock)
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def context(self, protocol="imap", remote="198.51.100.7", local="127.0.0.1", secure=True):
        return LoginContext(protocol, remote, local, secure)

    def plain(self, username, password=SECRET, **kw):
        return PlainCredentials(username, password, self.context(**kw))

    def authLines(self):
        """
        The C{gateway.auth} events, formatted as the text log shows them.
        """
        return [
            formatEventAsClassicLogText(e).rstrip("\n")
            for e in self.events
            if e.get("log_namespace") == "gateway.auth"
        ]

    def succeed(self, credentials):
        """
        Check C{credentials} and return the avatar id, which must come at once.
        """
        return self.successResultOf(self.checker.requestAvatarId(credentials))

    def refuse(self, credentials, delay=1.0):
        """
        Check C{credentials}, which must fail with UnauthorizedLogin exactly
        after C{delay} seconds.
        """
        d = self.checker.requestAvatarId(credentials)
        if delay:
            self.assertNoResult(d)
            self.clock.advance(delay - 0.001)
            self.assertNoResult(d)
            self.clock.advance(0.001)
        failure = self.failureResultOf(d, UnauthorizedLogin)
        return failure

    def lastLine(self):
        return self.authLines()[-1]


class CheckerTests(DirectoryMixin, TestCase):
    """
    Logins by plain password, and what makes them fail.
    """

    def test_interface(self):
        """DirectoryChecker provides ICredentialsChecker and takes the three credential kinds."""
        verifyObject(ICredentialsChecker, self.checker)
        verifyObject(ILoginContext, self.context())

    def test_success(self):
        """The right password gives the canonical address at once."""
        self.assertEqual(self.succeed(self.plain("demo")), "demo@example.test")

    def test_successLogged(self):
        """A success is logged with protocol, name as typed, remote address and mechanism."""
        self.succeed(self.plain("Demo@Example.TEST"))
        self.assertIn(
            "[gateway.auth#info] authentication succeeded: protocol=imap user=Demo@Example.TEST"
            " remote=198.51.100.7 mechanism=PLAIN",
            self.lastLine(),
        )

    def test_names(self):
        """user@domain, user%domain, mixed case, account and domain aliases and router records route."""
        for name, expected in [
            ("demo@example.test", "demo@example.test"),
            ("demo%example.test", "demo@example.test"),
            ("DEMO@EXAMPLE.TEST", "demo@example.test"),
            ("dem0", "demo@example.test"),
            ("bob@other-alias.test", "bob@other.test"),
            ("robert@other.test", "bob@other.test"),
        ]:
            self.assertEqual(self.succeed(self.plain(name)), expected, name)

    def test_localAddressDomain(self):
        """A name without a domain belongs to the domain of the local IP address."""
        self.assertEqual(self.succeed(self.plain("bob", local="192.0.2.2")), "bob@other.test")
        self.refuse(self.plain("bob", local="127.0.0.1"))

    def test_bytes(self):
        """Byte user names and passwords are taken as UTF-8."""
        creds = PlainCredentials(b"demo", SECRET.encode("utf-8"), self.context())
        self.assertEqual(self.succeed(creds), "demo@example.test")

    def test_wrongPassword(self):
        """A wrong password fails after the failure delay, and the log says why."""
        self.refuse(self.plain("demo", "wrong"))
        self.assertIn(
            "authentication failed: protocol=imap user=demo remote=198.51.100.7 mechanism=PLAIN reason=wrong password",
            self.lastLine(),
        )

    def test_unknownLikeWrongPassword(self):
        """Unknown names, disabled accounts and foreign domains fail exactly like a wrong password."""
        results = []
        for name, password in [
            ("demo", "wrong"),
            ("nobody", SECRET),
            ("off", SECRET),
            ("nobody@nowhere.test", SECRET),
            ("bob", SECRET),
        ]:
            self.checker.delays._entries.clear()
            failure = self.refuse(self.plain(name, password), 1.0)
            results.append((failure.type, str(failure.value)))
        self.assertEqual(results, [results[0]] * len(results))

    def test_disabledReason(self):
        """A disabled account is logged as an unknown user (the directory does not say more)."""
        self.refuse(self.plain("off"))
        self.assertIn("user=off remote=198.51.100.7 mechanism=PLAIN reason=unknown user", self.lastLine())

    def test_serviceDisabled(self):
        """An account without the protocol among its services fails; the log names the service."""
        self.assertEqual(self.succeed(self.plain("imaponly")), "imaponly@example.test")
        self.refuse(self.plain("imaponly", protocol="pop3"))
        self.assertIn("protocol=pop3 user=imaponly", self.lastLine())
        self.assertIn("reason=service pop3 disabled", self.lastLine())

    def test_cleartextPolicy(self):
        """Plain passwords without TLS fail where the account's domain forbids clear text."""
        self.refuse(self.plain("bob@other.test", secure=False))
        self.assertIn("reason=cleartext not allowed", self.lastLine())
        self.assertEqual(self.succeed(self.plain("bob@other.test", secure=True)), "bob@other.test")
        self.assertEqual(self.succeed(self.plain("demo", secure=False)), "demo@example.test")

    def test_cleartextAllowed(self):
        """cleartextAllowed answers for the domain of the local address."""
        self.assertTrue(cleartextAllowed(self.directory, "127.0.0.1"))
        self.assertTrue(cleartextAllowed(self.directory, None))
        self.assertFalse(cleartextAllowed(self.directory, "192.0.2.2"))
        self.assertFalse(cleartextAllowed(FileDirectory(temporaryFolder(self), "none.test"), None))

    def test_authzid(self):
        """An authorization identity must be empty or name the same account."""
        creds = PlainCredentials("demo", SECRET, self.context(), authzid="demo@example.test")
        self.assertEqual(self.succeed(creds), "demo@example.test")
        creds = PlainCredentials("demo", SECRET, self.context(), authzid="dem0")
        self.assertEqual(self.succeed(creds), "demo@example.test")
        creds = PlainCredentials("demo", SECRET, self.context(), authzid="plain")
        self.refuse(creds)
        self.assertIn("reason=authorization as plain not allowed", self.lastLine())

    def test_unknownScheme(self):
        """An unknown stored scheme fails, even with its own data as password; the log names it."""
        self.refuse(self.plain("odd", SECRET))
        self.assertIn("reason=unknown password scheme {ROT13}", self.lastLine())
        self.checker.delays._entries.clear()
        self.refuse(self.plain("odd", "{ROT13}" + SECRET))

    def test_noPassword(self):
        """An account with no password cannot log in, not even with an empty one."""
        self.refuse(self.plain("nopass", ""))
        self.assertIn("reason=no password set", self.lastLine())

    def test_argon2(self):
        """{ARGON2ID} accounts log in (synchronously with a Clock)."""
        self.directory.addAccount("argon@example.test", hashPassword(SECRET, "ARGON2ID"))
        self.assertEqual(self.succeed(self.plain("argon")), "argon@example.test")

    def test_hostileNames(self):
        """Names with path characters, control characters or huge lengths fail without a lookup."""
        for name in ("../demo", "demo/../demo", "de\x00mo", "demo\r\n", "x" * 400, "", ".demo"):
            self.checker.delays._entries.clear()
            self.refuse(self.plain(name))
            self.assertIn("reason=malformed user name", self.lastLine())

    def test_noContext(self):
        """Credentials without a login context fail."""
        creds = PlainCredentials("demo", SECRET, None)
        self.refuse(creds)
        self.assertIn("reason=no login context", self.lastLine())


class CramMD5CheckerTests(DirectoryMixin, TestCase):
    """
    CRAM-MD5 logins need a stored scheme that keeps the HMAC context.
    """

    def cram(self, username, password=SECRET, **kw):
        challenge = makeChallenge("mail.example.test")
        digest = hmac.new(password.encode("utf-8"), challenge, "md5").hexdigest()
        return CramMD5Credentials(username, challenge, digest.encode("ascii"), self.context(**kw))

    def test_cramContext(self):
        """A {CRAM-MD5} account logs in with CRAM-MD5, even without TLS where clear text is forbidden."""
        self.assertEqual(self.succeed(self.cram("cram", secure=False)), "cram@example.test")
        self.assertIn("mechanism=CRAM-MD5", self.lastLine())

    def test_plainStored(self):
        """A {PLAIN} account logs in with CRAM-MD5."""
        self.assertEqual(self.succeed(self.cram("plain")), "plain@example.test")

    def test_wrong(self):
        """A wrong CRAM-MD5 digest fails like a wrong password."""
        self.refuse(self.cram("cram", "wrong"))
        self.assertIn("reason=wrong password", self.lastLine())

    def test_hashOnly(self):
        """A {SHA512-CRYPT} account cannot use CRAM-MD5, and the log says why."""
        self.refuse(self.cram("demo"))
        self.assertIn("mechanism=CRAM-MD5 reason=CRAM-MD5 not possible with {SHA512-CRYPT} password", self.lastLine())

    def test_credentialsCheckPassword(self):
        """CramMD5Credentials.checkPassword checks the digest against a plain password."""
        creds = self.cram("x")
        self.assertTrue(creds.checkPassword(SECRET))
        self.assertFalse(creds.checkPassword("other"))
        self.assertNotIn(SECRET, repr(creds))

    def test_unknownUser(self):
        """CRAM-MD5 for an unknown name fails after the delay."""
        self.refuse(self.cram("nobody"))
        self.assertIn("reason=unknown user", self.lastLine())


class FormsCheckerTests(DirectoryMixin, TestCase):
    """
    Accounts whose password is stored in several forms serve every
    mechanism; a domain can narrow the mechanisms; accounts lacking a form
    are logged once when the checker starts.
    """

    def setUp(self):
        DirectoryMixin.setUp(self)
        self.directory.addAccount("all@example.test", forms.makeForms(SECRET))
        self.directory.addDomain("narrow.test", mechanisms=("PLAIN", "SCRAM-SHA-256"))
        self.directory.addAccount("n@narrow.test", forms.makeForms(SECRET, ("PLAIN", "SCRAM-SHA-256")))
        self.checker = DirectoryChecker(self.directory, makeConfig(failure_delay=0.0), clock=self.clock)

    def cram(self, username, password=SECRET):
        challenge = makeChallenge("mail.example.test")
        digest = hmac.new(password.encode("utf-8"), challenge, "md5").hexdigest()
        return CramMD5Credentials(username, challenge, digest.encode("ascii"), self.context())

    def scram(self, username, password=SECRET):
        """
        A SCRAM-SHA-256 proof for C{username} computed from C{password} with
        the salt and iterations the checker hands out.
        """
        keys = self.checker.scramKeys(username, self.context(), "sha256")
        client = passwords.scramKeysFromPlain(password, "sha256", keys.salt, keys.iterations)
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), keys.salt, keys.iterations)
        clientKey = hmac.new(salted, b"Client Key", "sha256").digest()
        authMessage = b"n=x,r=1,r=12,s=AA==,i=4096,c=biws,r=12"
        signature = hmac.new(client.storedKey, authMessage, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(clientKey, signature, strict=True))
        return ScramCredentials(username, "sha256", authMessage, proof, self.context())

    def test_everyMechanism(self):
        """An account whose password was set with makeForms logs in with plain, CRAM-MD5 and SCRAM-SHA-256."""
        self.assertEqual(self.succeed(self.plain("all")), "all@example.test")
        self.assertEqual(self.succeed(self.cram("all")), "all@example.test")
        self.assertEqual(self.succeed(self.scram("all")), "all@example.test")
        for credentials in (self.plain("all", "wrong"), self.cram("all", "wrong"), self.scram("all", "wrong")):
            self.refuse(credentials, delay=0)
            self.assertIn("reason=wrong password", self.lastLine())

    def test_domainNarrows(self):
        """A mechanism the account's domain does not allow is refused, with the reason logged."""
        self.assertEqual(self.succeed(self.scram("n@narrow.test")), "n@narrow.test")
        self.refuse(self.cram("n@narrow.test"), delay=0)
        self.assertIn("reason=mechanism CRAM-MD5 not enabled for narrow.test", self.lastLine())
        self.assertEqual(self.checker.mechanismsFor("127.0.0.1"), ["PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5"])
        self.directory.setDomain("narrow.test", addresses=("192.0.2.9",))
        self.assertEqual(self.checker.mechanismsFor("192.0.2.9"), ["PLAIN", "SCRAM-SHA-256"])

    def test_configuredMechanisms(self):
        """[auth] mechanisms decides what is offered, in its order."""
        checker = DirectoryChecker(self.directory, makeConfig(mechanisms=("CRAM-MD5", "PLAIN")), clock=self.clock)
        self.assertEqual(checker.mechanismsFor(None), ["CRAM-MD5", "PLAIN"])
        self.assertEqual(checker.mechanismsFor("192.0.2.2"), ["CRAM-MD5", "PLAIN"])

    def test_accountMechanisms(self):
        """Disabled accounts need no form; accounts without IMAP and POP3 need only the plain one."""
        self.directory.addAccount("files@example.test", hashPassword(SECRET, rounds=1000),
                                  services=frozenset({"ftp", "http"}))
        self.directory.addAccount("public@example.test", "{SHA512-CRYPT}!", enabled=False, services=frozenset())
        self.directory.addAccount("nologin@example.test", "{SHA512-CRYPT}!", services=frozenset({"lmtp"}))
        get = self.directory.getAccount
        self.assertEqual(checkers.accountMechanisms(get("files@example.test"), forms.KNOWN_MECHANISMS),
                         ["PLAIN", "LOGIN"])
        self.assertEqual(checkers.accountMechanisms(get("public@example.test"), forms.KNOWN_MECHANISMS), [])
        self.assertEqual(checkers.accountMechanisms(get("nologin@example.test"), forms.KNOWN_MECHANISMS), [])
        missing = [record.address for record, names in self.checker.accountsMissingForms()]
        for address in ("files@example.test", "public@example.test", "nologin@example.test", "off@example.test"):
            self.assertNotIn(address, missing)

    def test_missingFormsLoggedOnce(self):
        """Start-up logs each account that cannot use an offered mechanism, with what is stored."""
        warnings = [
            formatEventAsClassicLogText(e) for e in self.events
            if e.get("log_namespace") == "gateway.auth" and "cannot log in with" in e.get("log_format", "")
        ]
        text = "".join(warnings)
        self.assertIn("account demo@example.test cannot log in with SCRAM-SHA-256, CRAM-MD5: its password is"
                      " stored as {SHA512-CRYPT}", text)
        self.assertIn("account cram@example.test cannot log in with SCRAM-SHA-256", text)
        self.assertNotIn("plain@example.test", text)
        self.assertNotIn("all@example.test", text)
        missing = {record.address: names for record, names in self.checker.accountsMissingForms()}
        self.assertNotIn("all@example.test", missing)
        self.assertNotIn("n@narrow.test", missing)
        self.assertEqual(missing["cram@example.test"], ["SCRAM-SHA-256"])
        self.assertEqual(missing["nopass@example.test"], ["PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5"])
        self.assertNotIn("off@example.test", missing)
        self.assertEqual(len(warnings), len(missing))
        before = len(self.events)
        self.succeed(self.plain("demo"))
        self.assertFalse([e for e in self.events[before:] if "cannot log in with" in e.get("log_format", "")])


class DelayTests(DirectoryMixin, TestCase):
    """
    Failure delays grow per remote address and reset after a success.
    """

    def test_growing(self):
        """Delays double per failure from one address, up to max_failure_delay."""
        for delay in (1.0, 2.0, 4.0, 8.0, 15.0, 15.0):
            self.refuse(self.plain("demo", "wrong"), delay)
        self.assertEqual(self.checker.failureCount("198.51.100.7"), 6)

    def test_perAddress(self):
        """Another remote address starts at the first delay."""
        self.refuse(self.plain("demo", "wrong"), 1.0)
        self.refuse(self.plain("demo", "wrong"), 2.0)
        self.refuse(self.plain("demo", "wrong", remote="2001:db8::1"), 1.0)

    def test_reset(self):
        """A success resets the address's delay."""
        self.refuse(self.plain("demo", "wrong"), 1.0)
        self.refuse(self.plain("demo", "wrong"), 2.0)
        self.succeed(self.plain("demo"))
        self.assertEqual(self.checker.failureCount("198.51.100.7"), 0)
        self.refuse(self.plain("demo", "wrong"), 1.0)

    def test_forgotten(self):
        """An address is forgotten 15 minutes after its last failure."""
        self.refuse(self.plain("demo", "wrong"), 1.0)
        self.refuse(self.plain("demo", "wrong"), 2.0)
        self.clock.advance(delays.FORGET_AFTER)
        self.assertEqual(self.checker.failureCount("198.51.100.7"), 0)
        self.refuse(self.plain("demo", "wrong"), 1.0)
        self.assertEqual(len(self.checker.delays.addresses()), 1)

    def test_bounded(self):
        """The table never holds more than MAX_TRACKED_ADDRESSES addresses."""
        self.patch(delays, "MAX_TRACKED_ADDRESSES", 3)
        for i in range(10):
            self.refuse(self.plain("demo", "wrong", remote="203.0.113.%d" % (i,)), 1.0)
        self.assertEqual(self.checker.delays.addresses(), ["203.0.113.7", "203.0.113.8", "203.0.113.9"])

    def test_noDelay(self):
        """failure_delay 0 fails at once."""
        self.checker = DirectoryChecker(self.directory, makeConfig(failure_delay=0.0), clock=self.clock)
        self.refuse(self.plain("demo", "wrong"), 0)

    def test_cancel(self):
        """Cancelling a pending failure removes its delayed call."""
        d = self.checker.requestAvatarId(self.plain("demo", "wrong"))
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class PenaltyTests(DirectoryMixin, TestCase):
    """
    After C{penalty_after} failures (or as many attempts under way) from one
    address, every attempt from it, right or wrong and on any connection,
    waits its turn before it is checked (issue 16 item 2).
    """

    def fail5(self):
        for delay in (1.0, 2.0, 4.0, 8.0, 15.0):
            self.refuse(self.plain("demo", "wrong"), delay)

    def test_interface(self):
        """The checker's delays provide ILoginDelays."""
        self.assertTrue(verifyObject(ILoginDelays, self.checker.delays))

    def test_rightPasswordWaits(self):
        """After 5 failures the right password is answered only after the delay, and then resets it."""
        self.fail5()
        d = self.checker.requestAvatarId(self.plain("demo"))
        self.clock.advance(14.9)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        self.assertEqual(self.successResultOf(d), "demo@example.test")
        self.assertEqual(self.checker.failureCount("198.51.100.7"), 0)
        self.succeed(self.plain("demo"))

    def test_parallelQueued(self):
        """Attempts started at once from a penalised address are answered one delay apart, the right one too."""
        self.fail5()
        attempts = [self.checker.requestAvatarId(self.plain("demo", p)) for p in ("w1", "w2", SECRET)]
        answered = []
        for d in attempts:
            d.addBoth(lambda result, d=d: answered.append((self.clock.seconds(), attempts.index(d))) or result)
            d.addErrback(lambda f: f.trap(UnauthorizedLogin))
        start = self.clock.seconds()
        for _ in range(50):
            self.clock.advance(1.0)
        self.assertEqual([(round(t - start, 6), i) for t, i in answered], [(15.0, 0), (30.0, 1), (45.0, 2)])
        self.assertEqual(self.successResultOf(attempts[2]), "demo@example.test")

    def test_parallelFromFreshAddress(self):
        """Five attempts under way at once from a new address are enough: the sixth waits, the right password too."""
        pending = [self.checker.requestAvatarId(self.plain("demo", "wrong%d" % (i,))) for i in range(5)]
        for d in pending:
            d.addErrback(lambda f: f.trap(UnauthorizedLogin))
        right = self.checker.requestAvatarId(self.plain("demo"))
        self.assertNoResult(right)
        self.clock.advance(14.9)
        self.assertNoResult(right)
        self.clock.advance(0.1)
        self.assertEqual(self.successResultOf(right), "demo@example.test")

    def test_otherAddressUnaffected(self):
        """A penalised address does not slow down another."""
        self.fail5()
        self.assertEqual(self.succeed(self.plain("demo", remote="203.0.113.1")), "demo@example.test")

    def test_cancelQueued(self):
        """A queued attempt whose client went away leaves no delayed call and is no longer under way."""
        self.fail5()
        d = self.checker.requestAvatarId(self.plain("demo"))
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(dict(self.checker.delays._entries["198.51.100.7"].inFlight), {})

    def test_sameCredentialsCountOnce(self):
        """Attempts under way with the same key (a browser's parallel requests) count as one; different ones do not."""
        delays = checkers.MemoryLoginDelays(self.clock, 1.0, 15.0, 5)
        self.assertEqual([delays.admit("192.0.2.1", "same") for _ in range(20)], [0.0] * 20)
        self.assertEqual([delays.admit("192.0.2.1", "k%d" % (i,)) for i in range(4)], [0.0] * 4)
        self.assertEqual(delays.admit("192.0.2.1", "another"), 1.0)
        self.assertEqual(delays.admit("192.0.2.1", "yet another"), 2.0)
        self.assertEqual(delays.admit("192.0.2.1", "same"), 0.0)
        for _ in range(21):
            delays.release("192.0.2.1", "same")
        self.assertEqual(delays.admit("192.0.2.1", "k9"), 3.0)

    def test_attemptKey(self):
        """Plain credentials with the same name and password share a key that does not contain the password."""
        a, b = self.plain("demo"), self.plain("demo")
        key = self.checker._attemptKey(checkers._Attempt(a), a)
        self.assertEqual(key, self.checker._attemptKey(checkers._Attempt(b), b))
        self.assertNotIn(SECRET.encode(), key)
        other = self.plain("demo", "other")
        self.assertNotEqual(key, self.checker._attemptKey(checkers._Attempt(other), other))

    def test_penaltyAfter(self):
        """[auth] penalty_after sets the threshold."""
        self.checker = DirectoryChecker(self.directory, makeConfig(failure_delay=1.0, penalty_after=1),
                                        clock=self.clock)
        self.refuse(self.plain("demo", "wrong"), 1.0)
        d = self.checker.requestAvatarId(self.plain("demo"))
        self.assertNoResult(d)
        self.clock.advance(1.0)
        self.assertEqual(self.successResultOf(d), "demo@example.test")


class EqualWorkTests(DirectoryMixin, TestCase):
    """
    A wrong plain-text password costs the same work whatever the account:
    one hash of the default scheme and cost, in the thread pool.
    """

    def setUp(self):
        DirectoryMixin.setUp(self)
        self.directory.addAccount("std@example.test", hashPassword(SECRET))
        self.checker = DirectoryChecker(self.directory, makeConfig(failure_delay=0.0), clock=reactor)
        self.verified = []
        original = passwords.verifyPassword

        def recording(stored, plain):
            self.verified[-1].append(passwords.schemeOf(stored) + ("" if "rounds=" not in stored else "+rounds"))
            return original(stored, plain)

        self.patch(passwords, "verifyPassword", recording)
        self.threads = []
        self.patch(checkers, "deferToThreadPool", lambda *a: self.threads.append(a) or _deferToThreadPool(*a))

    @inlineCallbacks
    def test_samePath(self):
        """Unknown names, {CRAM-MD5}, {PLAIN} and SHA512-CRYPT accounts each verify one default-cost SHA512-CRYPT hash."""
        for name in ("std", "cram", "plain", "nobody", "odd", "nopass"):
            self.verified.append([])
            yield self.assertFailure(self.checker.requestAvatarId(self.plain(name, "wrong")), UnauthorizedLogin)
        expensive = [[s for s in schemes if s.endswith("CRYPT")] for schemes in self.verified]
        self.assertEqual(expensive, [["SHA512-CRYPT"]] * 6)
        self.assertEqual(self.verified[1], ["SHA512-CRYPT", "CRAM-MD5"])
        self.assertEqual(len(self.threads), 6)


class LogTests(DirectoryMixin, TestCase):
    """
    What the authentication log shows, and what it never shows.
    """

    def test_noPassword(self):
        """No logged event, formatted or raw, contains the password."""
        self.succeed(self.plain("demo"))
        self.refuse(self.plain("demo", SECRET + "x"))
        self.refuse(self.plain("nobody", SECRET + "y"), 2.0)
        self.refuse(self.plain("bob@other.test", SECRET, secure=False), 4.0)
        self.assertEqual(len(self.authLines()), 4)
        for event in self.events:
            self.assertNotIn(SECRET, repr(event))
            self.assertNotIn(SECRET, formatEventAsClassicLogText(event) or "")

    def test_fail2banRegex(self):
        """The module's fail2ban regex finds the remote address of every failure line."""
        docRegex = re.search(r"failregex = (.*)", checkers.__doc__).group(1).strip()
        regex = re.compile(docRegex.replace("<HOST>", r"(?P<host>\S+)"))
        self.refuse(self.plain("demo", "wrong"))
        self.refuse(self.plain("x remote=10.9.9.9 user=y", "wrong", remote="192.0.2.77"), 1.0)
        self.succeed(self.plain("demo", remote="192.0.2.99"))
        hosts = [m.group("host") for m in map(regex.search, self.authLines()) if m]
        self.assertEqual(hosts, ["198.51.100.7", "192.0.2.77"])

    def test_logSafe(self):
        """logSafe escapes white space, backslashes and control characters, and cuts long names."""
        self.assertEqual(logSafe("a b\\c\x00\u2028"), "a\\x20b\\x5cc\\x00\\u2028")
        self.assertEqual(logSafe(b"caf\xe9"), "caf\\udce9")
        self.assertEqual(logSafe("x" * 200), "x" * 128 + "...")


class CredentialsTests(TestCase):
    """
    L{LoginContext} and the credentials classes.
    """

    def test_fromTransport(self):
        """fromTransport takes the IP addresses of peer and host; TLS makes it secure."""
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "192.0.2.2", 143), peerAddress=IPv6Address("TCP", "2001:db8::5", 4000)
        )
        context = LoginContext.fromTransport("imap", transport)
        self.assertEqual(context, LoginContext("imap", "2001:db8::5", "192.0.2.2", False))
        directlyProvides(transport, ISSLTransport)
        self.assertTrue(LoginContext.fromTransport("imap", transport).secure)

    def test_fromTransportNonIP(self):
        """Addresses that are not IP addresses become None."""
        transport = StringTransport(hostAddress=UNIXAddress("/tmp/s"), peerAddress=UNIXAddress(None))
        context = LoginContext.fromTransport("lmtp", transport)
        self.assertEqual((context.remoteAddress, context.localAddress), (None, None))

    def test_plainCredentials(self):
        """PlainCredentials decodes bytes, checks a plain password and hides it in repr."""
        creds = PlainCredentials(b"caf\xc3\xa9", b"p\xff", LoginContext("ftp"))
        self.assertEqual(creds.username, "café")
        self.assertTrue(creds.checkPassword(b"p\xff"))
        self.assertFalse(creds.checkPassword("p"))
        self.assertTrue(creds.cleartext)
        self.assertNotIn("p\\xff", repr(creds))

    def test_challenge(self):
        """makeChallenge gives a fresh RFC 2195 <random.timestamp@host> challenge."""
        challenge = makeChallenge("mail.example.test")
        self.assertRegex(challenge, rb"^<\d+\.\d+@mail\.example\.test>$")
        self.assertNotEqual(challenge, makeChallenge("mail.example.test"))


class _RecordContext(protocol.Protocol):
    """
    Server protocol that records the login context of its connection.
    """

    def connectionMade(self):
        self.factory.contexts.callback(LoginContext.fromTransport("imap", self.transport))
        self.transport.loseConnection()


class RealTransportTests(TestCase):
    """
    L{LoginContext.fromTransport} on real loopback connections.
    """

    @inlineCallbacks
    def test_sslListener(self):
        """A connection to an ssl: listener is secure (its transport provides INegotiated)."""
        pem = os.path.join(os.path.dirname(twisted.test.__file__), "server.pem")
        factory = protocol.Factory.forProtocol(_RecordContext)
        factory.contexts = Deferred()
        server = endpoints.serverFromString(reactor, "ssl:0:interface=127.0.0.1:privateKey=%s" % (pem,))
        port = yield server.listen(factory)
        self.addCleanup(port.stopListening)
        client = endpoints.clientFromString(reactor, "tls:127.0.0.1:%d" % (port.getHost().port,))
        clientProtocol = yield client.connect(protocol.Factory.forProtocol(protocol.Protocol))
        self.addCleanup(clientProtocol.transport.abortConnection)
        context = yield factory.contexts
        self.assertTrue(context.secure)
        self.assertEqual((context.remoteAddress, context.localAddress), ("127.0.0.1", "127.0.0.1"))

    @inlineCallbacks
    def test_tcpListener(self):
        """A plain TCP connection is not secure."""
        factory = protocol.Factory.forProtocol(_RecordContext)
        factory.contexts = Deferred()
        port = yield endpoints.serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
        self.addCleanup(port.stopListening)
        client = endpoints.clientFromString(reactor, "tcp:127.0.0.1:%d" % (port.getHost().port,))
        clientProtocol = yield client.connect(protocol.Factory.forProtocol(protocol.Protocol))
        self.addCleanup(clientProtocol.transport.abortConnection)
        context = yield factory.contexts
        self.assertFalse(context.secure)


class ThreadTests(DirectoryMixin, TestCase):
    """
    With a real reactor, Argon2 verification runs in the thread pool.
    """

    @inlineCallbacks
    def test_argon2InThread(self):
        """An {ARGON2ID} login through the real reactor's thread pool succeeds, a wrong one fails."""
        self.directory.addAccount("argon@example.test", hashPassword(SECRET, "ARGON2ID"))
        checker = DirectoryChecker(self.directory, makeConfig(failure_delay=0.0), clock=reactor)
        calls = []
        self.patch(checkers, "deferToThreadPool", lambda *a: calls.append(a) or _deferToThreadPool(*a))
        avatarId = yield checker.requestAvatarId(self.plain("argon"))
        self.assertEqual(avatarId, "argon@example.test")
        self.assertEqual(len(calls), 1)
        yield self.assertFailure(checker.requestAvatarId(self.plain("argon", "wrong")), UnauthorizedLogin)


class PortalTests(DirectoryMixin, TestCase):
    """
    L{makePortal} builds the configured checker.
    """

    def test_login(self):
        """A portal login gives the account's IAccount avatar."""
        realm = GatewayRealm(self.directory, mailStoreFactory=lambda path, quota: object())
        portal = makePortal(self.directory, self.config, realm, clock=self.clock)
        interface, avatar, logout = self.successResultOf(portal.login(self.plain("demo"), None, IAccount))
        self.assertIs(interface, IAccount)
        self.assertEqual(avatar.address, "demo@example.test")
        d = portal.login(self.plain("demo", "wrong"), None, IAccount)
        self.clock.advance(1.0)
        self.failureResultOf(d, UnauthorizedLogin)

    def test_badName(self):
        """A checker name that cannot be imported is a ConfigurationError naming the option."""
        config = makeConfig(checker="gateway.cred.nosuch.Checker")
        error = self.assertRaises(ConfigurationError, makePortal, self.directory, config, None, clock=self.clock)
        self.assertTrue(str(error).startswith("[auth] checker: "), str(error))

    def test_notAChecker(self):
        """A name that does not build an ICredentialsChecker is a ConfigurationError."""
        for name in ("gateway.cred.realm.AccountQuota", "gateway.cred.checkers.MAX_NAME_LENGTH"):
            config = makeConfig(checker=name)
            error = self.assertRaises(ConfigurationError, makePortal, self.directory, config, None, clock=self.clock)
            self.assertTrue(str(error).startswith("[auth] checker: "), str(error))
