# -*- test-case-name: tests.test_passwords -*-
"""
Tests for L{gateway.cred.passwords}: every scheme round-trips, and hashes
made by Dovecot's C{doveadm pw} (2.3) and the SHA-crypt specification's
vectors verify.
"""

import hashlib
import hmac
import shutil
import subprocess
import warnings

from twisted.trial.unittest import SkipTest, TestCase

from gateway.cred import passwords
from gateway.cred.passwords import (
    HASH_SCHEMES,
    cramMD5Context,
    hashPassword,
    schemeOf,
    shaCrypt,
    splitScheme,
    verifyCramMD5,
    verifyPassword,
)

UMLAUTS = "Grüße, Welt!"

#: Made with C{doveadm pw -s SCHEME -p secret} (Dovecot 2.3.19).
DOVECOT_SECRET = [
    "{CRAM-MD5}cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56",
    "{SHA512-CRYPT}$6$C3wHfy7ET.R41G9k$oRQ/lJsPCufJ7wQQmRrKCuIjq07ViUzRqZjqat02ZhNIKrY2Ss1LrqihIWuu5R4HKGBr.mJfhUUFzBXvBSuqd0",
    "{SHA512-CRYPT}$6$rounds=7000$3KQx3ltKKMpasd5v$7pYEUXg5GdBf5nlAQlr4aDe13d2c/co2LD0n9mzZxxYq8Y1x4LA1Ek6KptsbkeAp/QL3MqmBBKM/nv3uvqLOv.",
    "{SHA256-CRYPT}$5$2rNTFW9Ng.btoC8n$uEjLqtGilVQIqTckJPZze/vTU.eJrJhKv3inYiqPuG6",
    "{SSHA512}6ojbIEO3//1N0lU+uOwlcAeK/sVRH+FG43oT5EcXhC7YbsCyWeSyZEo30WntfjDzPKNpFpy96KI2CV6T7Yp/4dvYVYo=",
    "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$nwtY5jxzAyfWzAUlbuZ32w$rT/67MbI62D7ZhP++vZeRSmgOa/aIk3a78e4PF3R4zQ",
    "{SCRAM-SHA-256}4096,mCbIVRn1uVtpNanvDx6SQg==,01mb3TG31WO+Mat6h8rrIjwomlvhdsFD2of2wrmrDus=,"
    "JbK4szzRVrhC1IgF6CHtGjWQCJNzkVfcKXFSqjdcHJw=",
    "{PLAIN-MD5}5ebe2294ecd0e0f08eab7690d2a6ee69",
]

#: Made with C{doveadm pw -s SCHEME -p 'Grüße, Welt!'}.
DOVECOT_UMLAUTS = [
    "{SCRAM-SHA-1}4096,TAdj7Bn5Tr+r1c/1rwMWKw==,Qw+3MiQJNRwWzLvIqmZ1s8COM+c=,RWJ7IS+ZhEuVlYUuAghD21QOqZo=",
    "{SCRAM-SHA-256}4096,dEXkHSFfbX/crYxb8HJB2g==,eKCA/cdonKrG6Fvy4AKuA+RcoGkHKJ6vEeRTLW7gK/Q=,"
    "xYnlT0pJJ/U4kkeE9PCta8Qli1QKjHr7qff1ECwtZyU=",
    "{SSHA256}u196El0waJ/tbn3jUo8EW4NSkLCnpaatKiU9ZVMdwRYZZSzn",
    "{SHA512}2vHOMClB6s7XXpDyI4Mrc5Y0Iwmimny6Zi3PpBzYGFeoFfEeop+pTo++JoHaowdDJQ+ou5TwbY6OZW2vcRzjrg==",
    "{SHA256}i2LP6D1dEkDU29rYQhUcjutl7rMCq0NjrWDSwlI+eog=",
    "{SMD5}J05VCpW21M9XdH/9q428Ywo2M60=",
    "{SSHA}jngoeZT7DOp0RH83qJ72ZD3KkFzmToEA",
    "{SHA}efseLYW1s804iFUQNAWcTZYiIeU=",
    "{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$hDn6BFR5eVyLGNSrvM0oRA$Sxc3m7kSVDHUB83+pzxlo2ddtP9mlvugCV0+qJvEQNQ",
    "{PLAIN-MD5}585d91120fec72370c0b9ed1a2fbff95",
    "{LDAP-MD5}WF2REg/scjcMC57Rovv/lQ==",
    "{SHA512-CRYPT}$6$7lI58xQJdP9bX6if$dY2Yg6NDei6xLx0eVUyFGqxjtGjRtvtjj.H4O4xAIeXZAL8mPt/wvVOwQNKjkKUW5Qun2R3nd/dSZS6zpxqhN/",
    "{CRAM-MD5}15aa0d26d71e9ef5fb90d9dc91bbf0df9dcf4f0ddfc47f96d216f0d21e9a689a",
]

#: Ulrich Drepper, "Unix crypt using SHA-256 and SHA-512", test vectors.
SHA_CRYPT_SPEC = [
    ("$5$saltstring", "Hello world!", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"),
    (
        "$5$rounds=10000$saltstringsaltstring",
        "Hello world!",
        "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA",
    ),
    (
        "$5$rounds=10$roundstoolow",
        "the minimum number is still observed",
        "$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC",
    ),
    (
        "$6$saltstring",
        "Hello world!",
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
    ),
    (
        "$6$rounds=10000$saltstringsaltstring",
        "Hello world!",
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/"
        "YTBmSK6H9qs/y3RnOaw5v.",
    ),
    (
        "$6$rounds=1400$anotherlongsaltstring",
        "a very much longer text to encrypt.  This one even stretches over morethan one line.",
        "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJE"
        "iDwGqd8p4ur1",
    ),
    (
        "$6$rounds=10$roundstoolow",
        "the minimum number is still observed",
        "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpB"
        "YYBaHHrsX.",
    ),
]


class KnownVectorTests(TestCase):
    """
    Hashes made elsewhere verify, and wrong passwords do not.
    """

    def test_dovecotSecret(self):
        """Hashes doveadm made of 'secret' verify, and 'Secret' does not."""
        for stored in DOVECOT_SECRET:
            self.assertTrue(verifyPassword(stored, "secret"), stored)
            self.assertFalse(verifyPassword(stored, "Secret"), stored)

    def test_dovecotNonASCII(self):
        """Hashes doveadm made of a non-ASCII password verify (UTF-8 bytes)."""
        for stored in DOVECOT_UMLAUTS:
            self.assertTrue(verifyPassword(stored, UMLAUTS), stored)
            self.assertTrue(verifyPassword(stored, UMLAUTS.encode("utf-8")), stored)
            self.assertFalse(verifyPassword(stored, "Grüsse, Welt!"), stored)

    def test_shaCryptSpecification(self):
        """SHA-crypt gives the specification's results, rounds clamped to 1000."""
        for setting, password, expected in SHA_CRYPT_SPEC:
            self.assertEqual(shaCrypt(password, setting), expected)
            self.assertTrue(verifyPassword(expected, password))

    def test_shaCryptAgainstCryptModule(self):
        """SHA-crypt agrees with the C library's crypt(3), where Python still has it."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                import crypt
            except ImportError:
                raise SkipTest("no crypt module")
        for setting in ("$6$abcdefgh", "$5$x", "$6$rounds=2000$0123456789abcdefXYZ", "$6$"):
            for password in ("", "a", "x" * 70, UMLAUTS, "p" * 200):
                self.assertEqual(shaCrypt(password, setting), crypt.crypt(password, setting))

    def test_shaCryptInCAndPython(self):
        """libxcrypt's SHA-crypt and the Python one give the same hashes (the C one is used where it is there)."""
        from gateway.cred import passwords
        if passwords._CRYPT_RN is None:
            raise SkipTest("no libxcrypt crypt_rn")
        for setting in ("$6$abcdefgh", "$5$x", "$6$rounds=2000$0123456789abcdefXYZ", "$6$", "$5$rounds=999$s",
                        "$6$saltsalt$Ywq3fL0VnmtY4SpJ2ZGpcqWTR0LCJ4KuwYtvuqk7cHzp1d1xrGCXjUT6DVLy6cFDrAvMhRM1pEj7wqt1EIK8A1"):
            for password in ("", "a", "x" * 70, UMLAUTS, "p" * 200, b"\xff\xfe".decode("utf-8", "surrogateescape")):
                self.assertEqual(shaCrypt(password, setting), passwords.pythonShaCrypt(password, setting),
                                 (setting, password))
        self.assertEqual(shaCrypt("a\0b", "$6$abc"), passwords.pythonShaCrypt("a\0b", "$6$abc"))

    def test_cramMD5Dovecot(self):
        """{CRAM-MD5} contexts equal doveadm's for empty, short and >64-byte passwords."""
        self.assertEqual(
            hashPassword("", "CRAM-MD5"),
            "{CRAM-MD5}00747cf2ffaf11c5ea4a64979c3901fc1d20dee13f480bb598f7d8575b23e61b",
        )
        self.assertEqual(
            hashPassword("secret", "CRAM-MD5"),
            "{CRAM-MD5}cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56",
        )
        longPassword = "pässwörd-long-enough-to-exceed-sixty-four-bytes-of-key-material-for-hmac-xx"
        self.assertEqual(
            hashPassword(longPassword, "CRAM-MD5"),
            "{CRAM-MD5}8c70b41be8c284c6dd7d372fa882f79c111dd298e2fd83171b4ffea81b5496eb",
        )

    def test_md5FromState(self):
        """The pure-Python MD5 equals hashlib's from the start state, for every padding case."""
        for length in (0, 1, 55, 56, 63, 64, 65, 119, 120, 200):
            data = bytes(range(256))[:length] if length <= 256 else b""
            self.assertEqual(passwords._md5Continue(passwords._MD5_IV, data, 0), hashlib.md5(data).digest())


class RoundTripTests(TestCase):
    """
    Every scheme L{hashPassword} makes verifies with L{verifyPassword}.
    """

    def test_everyScheme(self):
        """Each hashable scheme verifies its own password and refuses another."""
        for scheme in HASH_SCHEMES:
            for password in ("secret", UMLAUTS):
                stored = hashPassword(password, scheme)
                self.assertTrue(stored.startswith("{%s}" % (scheme,)), stored)
                self.assertTrue(verifyPassword(stored, password), stored)
                self.assertFalse(verifyPassword(stored, password + "x"), stored)

    def test_defaultScheme(self):
        """The default scheme is SHA512-CRYPT with a 16-character salt."""
        stored = hashPassword("secret")
        self.assertTrue(stored.startswith("{SHA512-CRYPT}$6$"))
        self.assertEqual(len(stored.split("$")[2]), 16)

    def test_rounds(self):
        """A rounds argument shows in SHA-crypt and SCRAM hashes."""
        self.assertIn("$rounds=6000$", hashPassword("x", "SHA512-CRYPT", rounds=6000))
        self.assertTrue(hashPassword("x", "SCRAM-SHA-256", rounds=5000).startswith("{SCRAM-SHA-256}5000,"))

    def test_saltsDiffer(self):
        """Two hashes of one password differ (random salts)."""
        self.assertNotEqual(hashPassword("secret"), hashPassword("secret"))

    def test_aliases(self):
        """CLEARTEXT makes {PLAIN}; {CLEARTEXT} and {CLEAR} verify like {PLAIN}."""
        self.assertEqual(hashPassword("secret", "CLEARTEXT"), "{PLAIN}secret")
        self.assertTrue(verifyPassword("{CLEARTEXT}secret", "secret"))
        self.assertTrue(verifyPassword("{clear}secret", "secret"))

    def test_unknownHashScheme(self):
        """hashPassword refuses a scheme it cannot make."""
        self.assertRaises(ValueError, hashPassword, "secret", "DES-CRYPT")

    def test_surrogateEscapedPassword(self):
        """A password from undecodable bytes is compared as those bytes."""
        raw = b"caf\xe9"
        stored = hashPassword(raw, "SSHA512")
        self.assertTrue(verifyPassword(stored, raw))
        self.assertTrue(verifyPassword(stored, raw.decode("utf-8", "surrogateescape")))
        self.assertFalse(verifyPassword(stored, "café"))


class SchemeDetectionTests(TestCase):
    """
    How stored strings without, or with odd, prefixes are read.
    """

    def test_noPrefixPlain(self):
        """A string without {SCHEME} that does not start with $ is plain text."""
        self.assertEqual(splitScheme("secret"), ("PLAIN", "secret"))
        self.assertTrue(verifyPassword("secret", "secret"))

    def test_noPrefixCrypt(self):
        """$6$ and $5$ strings without a prefix are SHA-crypt; $argon2id$ is ARGON2ID."""
        sha512 = SHA_CRYPT_SPEC[3][2]
        self.assertEqual(schemeOf(sha512), "SHA512-CRYPT")
        self.assertTrue(verifyPassword(sha512, "Hello world!"))
        self.assertEqual(schemeOf(SHA_CRYPT_SPEC[0][2]), "SHA256-CRYPT")
        self.assertEqual(schemeOf(DOVECOT_SECRET[5][len("{ARGON2ID}"):]), "ARGON2ID")

    def test_cryptScheme(self):
        """{CRYPT} with a $6$ string is SHA512-CRYPT."""
        self.assertTrue(verifyPassword("{CRYPT}" + SHA_CRYPT_SPEC[3][2], "Hello world!"))

    def test_unknownDollar(self):
        """An unknown crypt string ($1$ MD5-crypt) never matches."""
        self.assertEqual(schemeOf("$1$abc$def"), "CRYPT")
        self.assertFalse(verifyPassword("$1$abc$def", "$1$abc$def"))

    def test_unknownScheme(self):
        """An unknown {SCHEME} never matches, not even its own data."""
        self.assertFalse(passwords.isKnownScheme("ROT13"))
        self.assertFalse(verifyPassword("{ROT13}frperg", "frperg"))
        self.assertFalse(verifyPassword("{ROT13}frperg", "{ROT13}frperg"))

    def test_empty(self):
        """An empty stored password, or an empty {PLAIN}, matches nothing."""
        self.assertEqual(schemeOf(""), None)
        self.assertFalse(verifyPassword("", ""))
        self.assertFalse(verifyPassword(None, ""))
        self.assertFalse(verifyPassword("{PLAIN}", ""))

    def test_damaged(self):
        """Damaged data fails without an exception."""
        for stored in (
            "{SHA512-CRYPT}$6$rounds=x$salt$hash",
            "{SHA512-CRYPT}nonsense",
            "{ARGON2ID}$argon2id$broken",
            "{SCRAM-SHA-256}4096,!!,x,y",
            "{SSHA512}%%%",
            "{CRAM-MD5}zz",
            "{SHA256}abc",
        ):
            self.assertFalse(verifyPassword(stored, "secret"), stored)


class CramMD5Tests(TestCase):
    """
    CRAM-MD5 responses checked against stored contexts.
    """

    challenge = b"<1896.697170952@postoffice.reston.mci.net>"

    def response(self, password):
        return hmac.new(password.encode("utf-8"), self.challenge, "md5").hexdigest()

    def test_rfc2195(self):
        """The RFC 2195 example response verifies against {PLAIN} and {CRAM-MD5}."""
        expected = "b913a602c7eda7a495b4e6e7334d3890"
        self.assertEqual(self.response("tanstaaftanstaaf"), expected)
        for stored in ("{PLAIN}tanstaaftanstaaf", hashPassword("tanstaaftanstaaf", "CRAM-MD5")):
            self.assertTrue(verifyCramMD5(stored, self.challenge, expected))
            self.assertTrue(verifyCramMD5(stored, self.challenge, expected.upper().encode()))
            self.assertFalse(verifyCramMD5(stored, self.challenge, "0" * 32))
            self.assertFalse(verifyCramMD5(stored, self.challenge + b"x", expected))

    def test_dovecotContext(self):
        """A doveadm {CRAM-MD5} context verifies a response computed with hmac."""
        self.assertTrue(verifyCramMD5(DOVECOT_SECRET[0], self.challenge, self.response("secret")))
        self.assertTrue(verifyCramMD5(DOVECOT_UMLAUTS[-1], self.challenge, self.response(UMLAUTS)))

    def test_longChallenge(self):
        """Challenges longer than one block work."""
        challenge = b"<" + b"9" * 300 + b"@host>"
        response = hmac.new(b"secret", challenge, "md5").hexdigest()
        self.assertTrue(verifyCramMD5(DOVECOT_SECRET[0], challenge, response))

    def test_hashOnly(self):
        """Hash-only schemes give no context and refuse CRAM-MD5."""
        for stored in (DOVECOT_SECRET[1], DOVECOT_SECRET[5], "{SSHA512}abc", "", "{ROT13}x"):
            self.assertIsNone(cramMD5Context(stored))
            self.assertFalse(verifyCramMD5(stored, self.challenge, self.response("secret")))

    def test_contextFromPlain(self):
        """The context of {PLAIN} equals the stored {CRAM-MD5} one."""
        self.assertEqual(cramMD5Context("{PLAIN}secret").hex(), DOVECOT_SECRET[0][len("{CRAM-MD5}"):])


class ScramKeyTests(TestCase):
    """
    SCRAM keys from stored passwords.
    """

    def test_dovecotKeys(self):
        """doveadm's {SCRAM-SHA-256} keys equal keys derived from the password and its salt."""
        keys = passwords.scramKeys(DOVECOT_SECRET[6], "sha256")
        derived = passwords.scramKeysFromPlain("secret", "sha256", keys.salt, keys.iterations)
        self.assertEqual((keys.storedKey, keys.serverKey), (derived.storedKey, derived.serverKey))
        self.assertNotIn("secret", repr(keys))

    def test_plainNeedsSalt(self):
        """{PLAIN} gives keys only with a salt; other hash names and schemes give none."""
        self.assertIsNone(passwords.scramKeys("{PLAIN}secret", "sha256"))
        self.assertIsNotNone(passwords.scramKeys("{PLAIN}secret", "sha256", plainSalt=b"salt"))
        self.assertIsNone(passwords.scramKeys(DOVECOT_SECRET[6], "sha1"))
        self.assertIsNone(passwords.scramKeys(DOVECOT_SECRET[1], "sha256", plainSalt=b"salt"))


class DoveadmTests(TestCase):
    """
    Dovecot itself verifies our hashes (only where doveadm is installed).
    """

    def test_doveadmVerifies(self):
        """doveadm pw -t accepts every hash we make."""
        doveadm = shutil.which("doveadm")
        if doveadm is None:
            raise SkipTest("doveadm is not installed")
        for scheme in HASH_SCHEMES:
            stored = hashPassword(UMLAUTS, scheme)
            result = subprocess.run(
                [doveadm, "pw", "-t", stored, "-p", UMLAUTS], capture_output=True, text=True, timeout=30
            )
            self.assertIn("(verified)", result.stdout + result.stderr, stored)
