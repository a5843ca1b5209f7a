# -*- test-case-name: tests.test_passwords -*-
"""
Stored password schemes, compatible with Dovecot's passwd-file notation
C{{SCHEME}data}, so accounts can be migrated in both directions.

Schemes that can be verified (and, where marked, made by L{hashPassword}):

    ============== ======== =====================================================
    scheme         hashing  data
    ============== ======== =====================================================
    PLAIN          yes      the password itself (alias C{CLEARTEXT}, C{CLEAR});
                            discouraged
    CRAM-MD5       yes      hex of the HMAC-MD5 precomputed context (alias
                            C{HMAC-MD5}): CRAM-MD5 logins work with no plaintext
                            stored.  Byte order as Dovecot's
                            C{hmac_md5_get_cram_context} writes it: the outer
                            (opad) MD5 state A, B, C, D, then the inner (ipad)
                            state, each word little-endian.
    SHA512-CRYPT   yes      C{$6$[rounds=N$]salt$hash} (glibc crypt, Drepper)
    SHA256-CRYPT   yes      C{$5$[rounds=N$]salt$hash}
    ARGON2ID       yes      C{$argon2id$v=19$m=...,t=...,p=...$salt$hash}
    ARGON2I        yes      C{$argon2i$...}
    SCRAM-SHA-256  yes      C{iterations,base64 salt,base64 StoredKey,base64
                            ServerKey} (RFC 5802/7677 keys, as Dovecot stores them)
    SCRAM-SHA-1    yes      the same with SHA-1
    SSHA512        yes      base64 of SHA-512(password + salt) + salt
    SSHA256        yes      base64 of SHA-256(password + salt) + salt
    SSHA, SMD5     no       salted SHA-1 / MD5, base64
    SHA512, SHA256 no       unsalted digests, base64 (or hex)
    SHA, SHA1      no       unsalted SHA-1, base64 (or hex)
    PLAIN-MD5      no       unsalted MD5, hex (or base64); C{LDAP-MD5} base64
    CRYPT          no       crypt(3) string; only the C{$6$}, C{$5$} and
                            C{$argon2*$} forms are understood
    ============== ======== =====================================================

A stored password without a C{{SCHEME}} prefix is recognised the way
crypt(3) strings are: C{$6$...} is SHA512-CRYPT, C{$5$...} SHA256-CRYPT,
C{$argon2id$...}/C{$argon2i$...} ARGON2ID/ARGON2I.  Any other string starting
with C{$} is an unknown scheme (never matches); a string not starting with
C{$} is taken as C{{PLAIN}}.  An empty stored password never matches
anything, and neither does an unknown scheme.

Passwords are compared as UTF-8 bytes; a C{str} that came from undecodable
bytes (C{errors="surrogateescape"}) gets its original bytes back.  Every
comparison of secret material uses L{hmac.compare_digest}.
"""

import base64
import binascii
import ctypes
import ctypes.util
import hashlib
import hmac
import math
import re
import secrets
import struct

import argon2
import attr

DEFAULT_SCHEME = "SHA512-CRYPT"
SHA_CRYPT_ROUNDS = 5000
SCRAM_ITERATIONS = 4096

_ALIASES = {
    "CLEARTEXT": "PLAIN",
    "CLEAR": "PLAIN",
    "HMAC-MD5": "CRAM-MD5",
    "SHA1": "SHA",
}

# ---------------------------------------------------------------------------
# Splitting {SCHEME}data

_SCHEME_RE = re.compile(r"^\{([A-Za-z0-9._-]+)\}")


def splitScheme(stored):
    """
    Split a stored password into its scheme and data.

    @param stored: C{{SCHEME}data} or a prefix-less string (see the module
        docstring for how those are recognised).
    @return: C{(scheme, data)}: the canonical upper-case scheme name (aliases
        such as C{CLEARTEXT} resolved) and the data after the prefix.
        C{scheme} is C{None} for an empty password.
    """
    stored = stored or ""
    match = _SCHEME_RE.match(stored)
    if match:
        scheme = match.group(1).upper()
        data = stored[match.end():]
        scheme = _ALIASES.get(scheme, scheme)
        if scheme == "CRYPT":
            detected = _cryptScheme(data)
            if detected is not None:
                scheme = detected
        return scheme, data
    if not stored:
        return None, ""
    if stored.startswith("$"):
        return _cryptScheme(stored) or "CRYPT", stored
    return "PLAIN", stored


def _cryptScheme(data):
    if data.startswith("$6$"):
        return "SHA512-CRYPT"
    if data.startswith("$5$"):
        return "SHA256-CRYPT"
    if data.startswith("$argon2id$"):
        return "ARGON2ID"
    if data.startswith("$argon2i$"):
        return "ARGON2I"
    return None


def schemeOf(stored):
    """
    @return: the canonical scheme name of a stored password, or C{None} for
        an empty one.
    """
    return splitScheme(stored)[0]


def canonicalScheme(scheme):
    """
    @return: the canonical name of a scheme name (C{'cleartext'} gives
        C{'PLAIN'}).
    """
    name = scheme.strip().upper()
    return _ALIASES.get(name, name)


def isKnownScheme(scheme):
    """
    @return: C{True} when L{verifyPassword} understands C{scheme}.
    """
    return scheme in _VERIFIERS


def _bytes(text):
    if isinstance(text, bytes):
        return text
    return text.encode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------
# MD5 that can start from a saved state (for the CRAM-MD5 context)

_MASK = 0xFFFFFFFF
_MD5_IV = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)
_MD5_SHIFTS = [7, 12, 17, 22] * 4 + [5, 9, 14, 20] * 4 + [4, 11, 16, 23] * 4 + [6, 10, 15, 21] * 4
_MD5_K = [int(abs(math.sin(i + 1)) * 2**32) & _MASK for i in range(64)]
_MD5_INDEX = (
    list(range(16))
    + [(5 * i + 1) % 16 for i in range(16, 32)]
    + [(3 * i + 5) % 16 for i in range(32, 48)]
    + [(7 * i) % 16 for i in range(48, 64)]
)


def _md5Compress(state, block):
    """
    The MD5 compression function (RFC 1321): one 64-byte C{block} into
    C{state}, a 4-tuple of C{int}.
    """
    x = struct.unpack("<16I", block)
    a, b, c, d = state
    for i in range(64):
        if i < 16:
            f = (b & c) | (~b & d)
        elif i < 32:
            f = (d & b) | (~d & c)
        elif i < 48:
            f = b ^ c ^ d
        else:
            f = c ^ (b | ~d)
        f = (f + a + _MD5_K[i] + x[_MD5_INDEX[i]]) & _MASK
        s = _MD5_SHIFTS[i]
        a, d, c = d, c, b
        b = (b + (((f << s) | (f >> (32 - s))) & _MASK)) & _MASK
    return (
        (state[0] + a) & _MASK,
        (state[1] + b) & _MASK,
        (state[2] + c) & _MASK,
        (state[3] + d) & _MASK,
    )


def _md5Continue(state, data, processed):
    """
    Finish an MD5 whose first C{processed} bytes (a multiple of 64) left it
    in C{state}, over C{data}.

    @return: the 16-byte digest.
    """
    total = processed + len(data)
    message = data + b"\x80" + b"\x00" * ((55 - total) % 64) + struct.pack("<Q", (total * 8) & (2**64 - 1))
    for offset in range(0, len(message), 64):
        state = _md5Compress(state, message[offset:offset + 64])
    return struct.pack("<4I", *state)


def _hmacMD5States(key):
    """
    @return: C{(inner, outer)} MD5 states after the HMAC ipad and opad blocks.
    """
    key = _bytes(key)
    if len(key) > 64:
        key = hashlib.md5(key).digest()
    key = key.ljust(64, b"\x00")
    inner = _md5Compress(_MD5_IV, bytes(k ^ 0x36 for k in key))
    outer = _md5Compress(_MD5_IV, bytes(k ^ 0x5C for k in key))
    return inner, outer


def _cramContextFromPlain(plain):
    inner, outer = _hmacMD5States(plain)
    return struct.pack("<4I", *outer) + struct.pack("<4I", *inner)


def cramMD5Context(stored):
    """
    The 32-byte HMAC-MD5 context CRAM-MD5 needs, from a stored password.

    @return: C{bytes}, or C{None} when the scheme cannot give it (hash-only
        schemes such as C{{SHA512-CRYPT}}) or the data is damaged.
    """
    scheme, data = splitScheme(stored)
    if scheme == "PLAIN":
        return _cramContextFromPlain(data)
    if scheme == "CRAM-MD5":
        try:
            context = bytes.fromhex(data.strip())
        except ValueError:
            return None
        return context if len(context) == 32 else None
    return None


def verifyCramMD5(stored, challenge, responseHex):
    """
    Check a CRAM-MD5 (RFC 2195) response against a stored password.

    @param challenge: the challenge C{bytes} the server sent.
    @param responseHex: the client's hex digest (C{bytes} or C{str}).
    @return: C{True} if it is right; C{False} if not, or when the stored
        scheme cannot do CRAM-MD5 (see L{cramMD5Context}).
    """
    context = cramMD5Context(stored)
    if context is None:
        return False
    outer = struct.unpack("<4I", context[:16])
    inner = struct.unpack("<4I", context[16:])
    digest = _md5Continue(outer, _md5Continue(inner, _bytes(challenge), 64), 64)
    return hmac.compare_digest(digest.hex().encode("ascii"), _bytes(responseHex).strip().lower())


# ---------------------------------------------------------------------------
# SHA-crypt ($5$, $6$), after Ulrich Drepper's specification

_CRYPT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SHA512_ORDER = (
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26), (6, 27, 48),
    (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32), (12, 33, 54), (34, 55, 13),
    (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60), (40, 61, 19), (62, 20, 41),
)
_SHA256_ORDER = (
    (0, 10, 20), (21, 1, 11), (12, 22, 2), (3, 13, 23), (24, 4, 14),
    (15, 25, 5), (6, 16, 26), (27, 7, 17), (18, 28, 8), (9, 19, 29),
)
_SHA_CRYPT = {"$6$": ("sha512", _SHA512_ORDER), "$5$": ("sha256", _SHA256_ORDER)}
_ROUNDS_MIN, _ROUNDS_MAX = 1000, 999999999


def _b64From24(b2, b1, b0, n):
    w = (b2 << 16) | (b1 << 8) | b0
    out = []
    for _ in range(n):
        out.append(_CRYPT_ALPHABET[w & 0x3F])
        w >>= 6
    return "".join(out)


def _repeat(digest, length):
    return (digest * (length // len(digest) + 1))[:length]


def _loadCrypt():
    """
    libxcrypt's C{crypt_rn}, or C{None}: SHA-crypt in C, where a call
    lets go of the GIL (ctypes does), so that a login's 5,000 rounds run
    beside the reactor instead of holding it (5 to 9 ms of Python each).
    """
    name = ctypes.util.find_library("crypt")
    if name is None:
        return None
    try:
        function = ctypes.CDLL(name).crypt_rn
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    function.restype = ctypes.c_char_p
    return function


_CRYPT_RN = _loadCrypt()
#: libxcrypt's C{sizeof(struct crypt_data)}.
_CRYPT_DATA_SIZE = 32768


def shaCrypt(password, setting):
    """
    glibc's SHA-crypt: libxcrypt's where it is there (L{_loadCrypt}),
    else L{pythonShaCrypt}.
    """
    if _CRYPT_RN is not None and setting[:3] in _SHA_CRYPT:
        phrase = _bytes(password)
        if b"\0" not in phrase:
            data = ctypes.create_string_buffer(_CRYPT_DATA_SIZE)
            result = _CRYPT_RN(phrase, setting.encode("utf-8", "surrogateescape"), data, _CRYPT_DATA_SIZE)
            if result is not None and result.startswith(setting[:3].encode("ascii")):
                return result.decode("utf-8", "surrogateescape")
    return pythonShaCrypt(password, setting)


def pythonShaCrypt(password, setting):
    """
    glibc's SHA-crypt, in Python.

    @param setting: C{$6$salt}, C{$6$rounds=N$salt}, or a whole hash (its
        salt and rounds are used); C{$5$...} for SHA-256.
    @return: the crypt string C{$6$[rounds=N$]salt$hash}.
    @raise ValueError: for a setting that is not SHA-crypt.
    """
    prefix = setting[:3]
    if prefix not in _SHA_CRYPT:
        raise ValueError("not a SHA-crypt setting")
    hashName, order = _SHA_CRYPT[prefix]
    rest = setting[3:]
    rounds, customRounds = SHA_CRYPT_ROUNDS, False
    if rest.startswith("rounds="):
        number, dollar, rest = rest[len("rounds="):].partition("$")
        if not dollar or not number.isdigit():
            raise ValueError("bad rounds in SHA-crypt setting")
        rounds = min(max(int(number), _ROUNDS_MIN), _ROUNDS_MAX)
        customRounds = True
    salt = rest.split("$", 1)[0][:16].encode("utf-8", "surrogateescape")
    key = _bytes(password)
    new = lambda data=b"": hashlib.new(hashName, data)  # noqa: E731
    keyLength = len(key)

    b = new(key + salt + key).digest()
    a = new(key + salt)
    a.update(_repeat(b, keyLength))
    i = keyLength
    while i > 0:
        a.update(b if i & 1 else key)
        i >>= 1
    c = a.digest()
    p = _repeat(new(key * keyLength).digest(), keyLength)
    s = _repeat(new(salt * (16 + c[0])).digest(), len(salt))
    for r in range(rounds):
        h = new(p if r & 1 else c)
        if r % 3:
            h.update(s)
        if r % 7:
            h.update(p)
        h.update(c if r & 1 else p)
        c = h.digest()

    encoded = "".join(_b64From24(c[x], c[y], c[z], 4) for x, y, z in order)
    if hashName == "sha512":
        encoded += _b64From24(0, 0, c[63], 2)
    else:
        encoded += _b64From24(0, c[31], c[30], 3)
    head = prefix + ("rounds=%d$" % (rounds,) if customRounds else "")
    return "%s%s$%s" % (head, salt.decode("utf-8", "surrogateescape"), encoded)


def _cryptSalt(length=16):
    return "".join(secrets.choice(_CRYPT_ALPHABET) for _ in range(length))


def _verifyShaCrypt(prefix):
    def verify(data, plain):
        if not data.startswith(prefix):
            return False
        try:
            computed = shaCrypt(plain, data)
        except ValueError:
            return False
        return hmac.compare_digest(_bytes(computed), _bytes(data))

    return verify


def _hashShaCrypt(prefix):
    def make(plain, rounds=None):
        setting = prefix
        if rounds is not None:
            setting += "rounds=%d$" % (rounds,)
        return shaCrypt(plain, setting + _cryptSalt())

    return make


# ---------------------------------------------------------------------------
# Argon2

_argon2Hasher = argon2.PasswordHasher(
    time_cost=3, memory_cost=65536, parallelism=1, hash_len=32, salt_len=16
)


def _verifyArgon2(variant):
    def verify(data, plain):
        if not data.startswith("$%s$" % (variant,)):
            return False
        try:
            return _argon2Hasher.verify(data, _bytes(plain))
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError, ValueError):
            return False

    return verify


def _hashArgon2(variant):
    argonType = argon2.Type.ID if variant == "argon2id" else argon2.Type.I

    def make(plain, rounds=None):
        # parallelism=1: Dovecot verifies with libsodium, which knows no other.
        hasher = argon2.PasswordHasher(
            time_cost=rounds or 3, memory_cost=65536, parallelism=1, hash_len=32, salt_len=16, type=argonType
        )
        return hasher.hash(_bytes(plain))

    return make


# ---------------------------------------------------------------------------
# SCRAM keys


@attr.s(frozen=True, repr=False)
class ScramKeys:
    """
    The keys SCRAM (RFC 5802) needs on the server side.

    @ivar hashName: C{'sha256'} or C{'sha1'}.
    """

    hashName = attr.ib()
    iterations = attr.ib()
    salt = attr.ib()
    storedKey = attr.ib()
    serverKey = attr.ib()

    def __repr__(self):
        return "<ScramKeys %s i=%d>" % (self.hashName, self.iterations)


def scramKeysFromPlain(plain, hashName, salt, iterations=SCRAM_ITERATIONS):
    """
    Derive SCRAM keys from a password (no SASLprep is applied, as Dovecot
    does not apply it either: non-ASCII passwords are used as UTF-8).
    """
    salted = hashlib.pbkdf2_hmac(hashName, _bytes(plain), salt, iterations)
    clientKey = hmac.new(salted, b"Client Key", hashName).digest()
    serverKey = hmac.new(salted, b"Server Key", hashName).digest()
    return ScramKeys(hashName, iterations, salt, hashlib.new(hashName, clientKey).digest(), serverKey)


def parseScramData(data, hashName):
    """
    Parse Dovecot's C{iterations,salt,StoredKey,ServerKey} (base64 parts).

    @return: L{ScramKeys} or C{None} if damaged.
    """
    parts = data.strip().split(",")
    if len(parts) != 4:
        return None
    try:
        iterations = int(parts[0])
        salt, storedKey, serverKey = (base64.b64decode(p, validate=True) for p in parts[1:])
    except (ValueError, binascii.Error):
        return None
    size = hashlib.new(hashName).digest_size
    if iterations < 1 or len(storedKey) != size or len(serverKey) != size or not salt:
        return None
    return ScramKeys(hashName, iterations, salt, storedKey, serverKey)


_SCRAM_SCHEMES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-1": "sha1"}


def scramKeys(stored, hashName, plainSalt=None):
    """
    The SCRAM keys of a stored password.

    @param hashName: C{'sha256'} or C{'sha1'}.
    @param plainSalt: the salt to derive keys with from a C{{PLAIN}}
        password (it must be the same each time for one account); without it
        a plain password gives C{None}.
    @return: L{ScramKeys} or C{None} when the stored scheme cannot do SCRAM
        with that hash.
    """
    scheme, data = splitScheme(stored)
    if scheme == "PLAIN" and plainSalt is not None and data:
        return scramKeysFromPlain(data, hashName, plainSalt)
    if _SCRAM_SCHEMES.get(scheme) == hashName:
        return parseScramData(data, hashName)
    return None


def _verifyScram(hashName):
    def verify(data, plain):
        keys = parseScramData(data, hashName)
        if keys is None:
            return False
        computed = scramKeysFromPlain(plain, hashName, keys.salt, keys.iterations)
        return hmac.compare_digest(computed.storedKey, keys.storedKey)

    return verify


def _hashScram(hashName):
    def make(plain, rounds=None):
        keys = scramKeysFromPlain(plain, hashName, secrets.token_bytes(16), rounds or SCRAM_ITERATIONS)
        return "%d,%s,%s,%s" % (
            keys.iterations,
            base64.b64encode(keys.salt).decode("ascii"),
            base64.b64encode(keys.storedKey).decode("ascii"),
            base64.b64encode(keys.serverKey).decode("ascii"),
        )

    return make


# ---------------------------------------------------------------------------
# Simple digests, salted and not


def _decodeDigest(data, size=None, hexFirst=False):
    """
    Decode base64 or hex digest data as Dovecot accepts it.
    """
    data = data.strip()
    isHex = re.fullmatch(r"[0-9a-fA-F]+", data) is not None and len(data) % 2 == 0
    if isHex and (hexFirst or (size is not None and len(data) == 2 * size)):
        return bytes.fromhex(data)
    try:
        return base64.b64decode(data, validate=True)
    except (ValueError, binascii.Error):
        if isHex:
            return bytes.fromhex(data)
        return None


def _verifyDigest(hashName, salted, hexFirst=False):
    size = hashlib.new(hashName).digest_size

    def verify(data, plain):
        raw = _decodeDigest(data, None if salted else size, hexFirst)
        if raw is None or len(raw) < size or (not salted and len(raw) != size):
            return False
        digest, salt = raw[:size], raw[size:]
        return hmac.compare_digest(hashlib.new(hashName, _bytes(plain) + salt).digest(), digest)

    return verify


def _hashSalted(hashName):
    def make(plain, rounds=None):
        salt = secrets.token_bytes(8)
        return base64.b64encode(hashlib.new(hashName, _bytes(plain) + salt).digest() + salt).decode("ascii")

    return make


def _verifyPlain(data, plain):
    return hmac.compare_digest(_bytes(data), _bytes(plain))


def _verifyCramContext(data, plain):
    context = cramMD5Context("{CRAM-MD5}" + data)
    if context is None:
        return False
    return hmac.compare_digest(context, _cramContextFromPlain(plain))


_VERIFIERS = {
    "PLAIN": _verifyPlain,
    "CRAM-MD5": _verifyCramContext,
    "SHA512-CRYPT": _verifyShaCrypt("$6$"),
    "SHA256-CRYPT": _verifyShaCrypt("$5$"),
    "ARGON2ID": _verifyArgon2("argon2id"),
    "ARGON2I": _verifyArgon2("argon2i"),
    "SCRAM-SHA-256": _verifyScram("sha256"),
    "SCRAM-SHA-1": _verifyScram("sha1"),
    "SSHA512": _verifyDigest("sha512", True),
    "SSHA256": _verifyDigest("sha256", True),
    "SSHA": _verifyDigest("sha1", True),
    "SMD5": _verifyDigest("md5", True),
    "SHA512": _verifyDigest("sha512", False),
    "SHA256": _verifyDigest("sha256", False),
    "SHA": _verifyDigest("sha1", False),
    "PLAIN-MD5": _verifyDigest("md5", False, hexFirst=True),
    "LDAP-MD5": _verifyDigest("md5", False),
}

_HASHERS = {
    "PLAIN": lambda plain, rounds=None: plain,
    "CRAM-MD5": lambda plain, rounds=None: _cramContextFromPlain(plain).hex(),
    "SHA512-CRYPT": _hashShaCrypt("$6$"),
    "SHA256-CRYPT": _hashShaCrypt("$5$"),
    "ARGON2ID": _hashArgon2("argon2id"),
    "ARGON2I": _hashArgon2("argon2i"),
    "SCRAM-SHA-256": _hashScram("sha256"),
    "SCRAM-SHA-1": _hashScram("sha1"),
    "SSHA512": _hashSalted("sha512"),
    "SSHA256": _hashSalted("sha256"),
}

#: Schemes L{hashPassword} can make.
HASH_SCHEMES = tuple(sorted(_HASHERS))
#: Schemes L{verifyPassword} understands.
VERIFY_SCHEMES = tuple(sorted(_VERIFIERS))


def hashPassword(plain, scheme=DEFAULT_SCHEME, rounds=None):
    """
    Make a stored password.

    @param plain: the password, C{str} (or C{bytes}, taken as UTF-8).
    @param scheme: one of L{HASH_SCHEMES} (aliases such as C{CLEARTEXT} too).
    @param rounds: the cost where the scheme has one (SHA-crypt rounds,
        SCRAM iterations, Argon2 time cost); C{None} for the default.
    @return: C{'{SCHEME}data'} (C{str}).
    @raise ValueError: for a scheme that cannot be made.
    """
    name = scheme.upper()
    name = _ALIASES.get(name, name)
    if name not in _HASHERS:
        raise ValueError("cannot make passwords of scheme %s; use one of %s" % (scheme, ", ".join(HASH_SCHEMES)))
    if isinstance(plain, bytes):
        plain = plain.decode("utf-8", "surrogateescape")
    return "{%s}%s" % (name, _HASHERS[name](plain, rounds=rounds))


def verifyPassword(stored, plain):
    """
    Check a plain-text password against a stored one, in constant time for
    the scheme.

    @return: C{True} if it matches; C{False} if not, if C{stored} is empty,
        or if its scheme is unknown (see L{isKnownScheme}).
    """
    scheme, data = splitScheme(stored)
    verifier = _VERIFIERS.get(scheme)
    if verifier is None or not data:
        return False
    if isinstance(plain, bytes):
        plain = plain.decode("utf-8", "surrogateescape")
    return bool(verifier(data, plain))


def isExpensive(stored):
    """
    @return: C{True} when verifying C{stored} costs real CPU time (crypt,
        Argon2, SCRAM), so it had better run outside the reactor thread.
    """
    return schemeOf(stored) in ("SHA512-CRYPT", "SHA256-CRYPT", "ARGON2ID", "ARGON2I", "SCRAM-SHA-256", "SCRAM-SHA-1")
