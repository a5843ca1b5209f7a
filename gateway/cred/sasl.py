# -*- test-case-name: tests.test_sasl -*-
"""
Server-side SASL mechanisms (RFC 4422) for IMAP AUTHENTICATE and POP3 AUTH:
C{PLAIN} (RFC 4616), C{LOGIN}, C{CRAM-MD5} (RFC 2195) and C{SCRAM-SHA-256}
(RFC 5802, RFC 7677; without channel binding).

The mechanisms see raw C{bytes}: base64, line syntax and the client's
C{*} (cancel) are the front-end's business.  How a front-end drives one::

    mechanism = createMechanism(name, context, hostname, portal=portal)
    if mechanism is None: ... "unknown mechanism" (BAD / -ERR)
    try:
        kind, value = mechanism.start(initialResponse)   # bytes, or None if the client sent none
        while kind == "challenge":
            ... send "+ " + base64(value); read a line
            ... a "*" line: raise SASLCancelled  (answer BAD / -ERR)
            kind, value = mechanism.step(base64decode(line))   # bad base64: BAD / -ERR
    except SASLError:
        ... BAD / -ERR (malformed client data)
    # kind == "done": value is the credentials object
    avatarId = ... the checker's answer from portal.login(value, None, IAccount) (failure: NO / -ERR)
    final = mechanism.finish(avatarId)
    if final is not None:           # SCRAM: ("challenge", server-final message)
        ... send "+ " + base64(final[1]); read a line (the client answers with an empty line)
        mechanism.step(base64decode(line))   # -> ("done", None); SASLError if not empty
    ... OK / +OK

Only C{finish} of SCRAM returns something; every other mechanism returns
C{None}, so a front-end may call it unconditionally.  SCRAM needs the
account's salt before the client's proof arrives, so it is only available
when C{portal} (the L{twisted.cred.portal.Portal} the front-end logs in
with) has a checker for L{IScramCredentials} that offers C{scramKeys}, as
L{gateway.cred.checkers.DirectoryChecker} does; L{mechanismNames} lists it
only then.

Which mechanisms are offered, and in which order, is the portal checker's
policy (C{mechanismsFor(localAddress)}: C{[auth] mechanisms} narrowed by the
domain of the local address); L{createMechanism} refuses the others.

Clear-text mechanisms (C{PLAIN}, C{LOGIN}: C{mechanism.cleartext} is
C{True}) should be offered only when L{mechanismNames} lists them; the
checker refuses them anyway where the domain's policy forbids them.
"""

import base64
import binascii
import hmac
import os
import re

from gateway.cred.credentials import (
    CramMD5Credentials,
    IScramCredentials,
    PlainCredentials,
    ScramCredentials,
    makeChallenge,
)

#: Longest client message a mechanism accepts.
MAX_RESPONSE = 8192


class SASLError(Exception):
    """
    The client sent something the mechanism cannot accept (the front-end
    answers C{BAD} / C{-ERR}).
    """


class SASLCancelled(SASLError):
    """
    The client cancelled the exchange with C{*}.
    """


def _checkLength(data):
    if data is None:
        raise SASLError("a response is required")
    if len(data) > MAX_RESPONSE:
        raise SASLError("response too long")
    return bytes(data)


class Mechanism:
    """
    Base of the server-side mechanisms.

    @ivar name: the SASL name.
    @ivar cleartext: C{True} when the password crosses the connection.
    @ivar context: the L{gateway.cred.credentials.LoginContext}.
    """

    name = None
    cleartext = False

    def __init__(self, context, hostname):
        self.context = context
        self.hostname = hostname
        self._state = "new"

    def start(self, initialResponse=None):
        """
        @param initialResponse: the client's initial response (C{bytes},
            C{b""} for an empty one), or C{None} if it sent none.
        @return: C{("challenge", bytes)} or C{("done", credentials)}.
        @raise SASLError: for malformed client data.
        """
        if self._state != "new":
            raise SASLError("exchange already started")
        return self._start(initialResponse)

    def step(self, response):
        """
        @param response: the client's decoded answer to the last challenge.
        @return: C{("challenge", bytes)} or C{("done", credentials)}.
        @raise SASLError: for malformed client data, or a response when none
            is expected.
        """
        if self._state in ("new", "done"):
            raise SASLError("no response expected")
        return self._step(_checkLength(response))

    def finish(self, avatarId):
        """
        Called after a successful login.

        @return: C{None} when the exchange is over; C{("challenge", bytes)}
            when the server has a last message (SCRAM's server-final), to
            be sent as a challenge whose (empty) answer goes to L{step}.
        """
        self._state = "done"
        return None

    def _done(self, credentials):
        self._state = "done"
        return ("done", credentials)


class PlainMechanism(Mechanism):
    """
    C{PLAIN} (RFC 4616): C{authzid NUL authcid NUL password}.  An authzid
    other than the empty one or the login's own name fails the login.
    """

    name = "PLAIN"
    cleartext = True

    def _start(self, initialResponse):
        if initialResponse is None:
            self._state = "wait"
            return ("challenge", b"")
        return self._parse(_checkLength(initialResponse))

    def _step(self, response):
        return self._parse(response)

    def _parse(self, message):
        self._state = "done"
        parts = message.split(b"\x00")
        if len(parts) != 3:
            raise SASLError("malformed PLAIN message")
        authzid, authcid, password = parts
        if not authcid:
            raise SASLError("empty user name")
        return self._done(PlainCredentials(authcid, password, self.context, mechanism=self.name, authzid=authzid))


class LoginMechanism(Mechanism):
    """
    C{LOGIN} (draft-murchison-sasl-login): C{Username:}, then C{Password:}.
    An initial response, if any, is the user name.
    """

    name = "LOGIN"
    cleartext = True

    def _start(self, initialResponse):
        if initialResponse:
            self._username = _checkLength(initialResponse)
            self._state = "password"
            return ("challenge", b"Password:")
        self._state = "username"
        return ("challenge", b"Username:")

    def _step(self, response):
        if self._state == "username":
            if not response:
                raise SASLError("empty user name")
            self._username = response
            self._state = "password"
            return ("challenge", b"Password:")
        return self._done(PlainCredentials(self._username, response, self.context, mechanism=self.name))


_HEX_DIGEST = re.compile(rb"^[0-9a-fA-F]{32}$")


class CramMD5Mechanism(Mechanism):
    """
    C{CRAM-MD5} (RFC 2195): the server sends a challenge, the client
    answers C{username SP hex-digest}.
    """

    name = "CRAM-MD5"

    def _start(self, initialResponse):
        if initialResponse:
            raise SASLError("CRAM-MD5 takes no initial response")
        self.challenge = makeChallenge(self.hostname)
        self._state = "response"
        return ("challenge", self.challenge)

    def _step(self, response):
        username, space, digest = response.rpartition(b" ")
        if not space or not username or not _HEX_DIGEST.match(digest):
            raise SASLError("malformed CRAM-MD5 response")
        return self._done(CramMD5Credentials(username, self.challenge, digest.lower(), self.context))


_EXTENSION = re.compile(r"^[A-Za-z]=")
_PRINTABLE_NONCE = re.compile(r"^[\x21-\x2b\x2d-\x7e]+$")


def _saslname(text):
    """
    Decode an RFC 5802 C{saslname} (C{=2C} is a comma, C{=3D} an equals sign).
    """
    if re.search(r"=(?!2C|3D)", text):
        raise SASLError("malformed SCRAM name")
    return text.replace("=2C", ",").replace("=3D", "=")


class ScramMechanism(Mechanism):
    """
    C{SCRAM-SHA-256} (RFC 7677), without channel binding: the C{-PLUS}
    variant is not offered, so a client flag C{y} is accepted and C{p=} is
    refused.

    @ivar keySource: an object with C{scramKeys(username, context,
        hashName)} returning L{gateway.cred.passwords.ScramKeys}.
    """

    hashName = "sha256"
    name = "SCRAM-SHA-256"

    def __init__(self, context, hostname, keySource):
        Mechanism.__init__(self, context, hostname)
        self.keySource = keySource

    def _start(self, initialResponse):
        if not initialResponse:
            self._state = "client-first"
            return ("challenge", b"")
        return self._clientFirst(_checkLength(initialResponse))

    def _step(self, response):
        if self._state == "client-first":
            return self._clientFirst(response)
        if self._state == "client-final":
            return self._clientFinal(response)
        if self._state == "server-final":
            if response:
                raise SASLError("the client must answer the server-final message with nothing")
            return self._done(None)
        raise SASLError("no response expected")

    def _decode(self, data):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise SASLError("SCRAM messages are UTF-8")

    def _clientFirst(self, data):
        text = self._decode(data)
        parts = text.split(",", 2)
        if len(parts) != 3:
            raise SASLError("malformed SCRAM client-first message")
        flag, authzidPart, bare = parts
        if flag.startswith("p="):
            raise SASLError("channel binding is not supported")
        if flag not in ("n", "y"):
            raise SASLError("malformed SCRAM channel-binding flag")
        authzid = ""
        if authzidPart:
            if not authzidPart.startswith("a="):
                raise SASLError("malformed SCRAM authzid")
            authzid = _saslname(authzidPart[2:])
        attributes = bare.split(",")
        if len(attributes) < 2 or not attributes[0].startswith("n=") or not attributes[1].startswith("r="):
            raise SASLError("malformed SCRAM client-first message")
        if not all(_EXTENSION.match(extension) for extension in attributes[2:]):
            raise SASLError("malformed SCRAM extension")
        username = _saslname(attributes[0][2:])
        clientNonce = attributes[1][2:]
        if not username or not _PRINTABLE_NONCE.match(clientNonce):
            raise SASLError("malformed SCRAM client-first message")
        keys = self.keySource.scramKeys(username, self.context, self.hashName)
        self._keys = keys
        self._gs2Header = ("%s,%s," % (flag, authzidPart)).encode("utf-8")
        self._username = username
        self._authzid = authzid
        self._nonce = clientNonce + self.makeNonce()
        self._clientFirstBare = bare.encode("utf-8")
        self._serverFirst = ("r=%s,s=%s,i=%d" % (
            self._nonce, base64.b64encode(keys.salt).decode("ascii"), keys.iterations
        )).encode("ascii")
        self._state = "client-final"
        return ("challenge", self._serverFirst)

    def makeNonce(self):
        """
        @return: the server's part of the nonce, C{str} (printable, no comma).
        """
        return base64.b64encode(os.urandom(18)).decode("ascii")

    def _clientFinal(self, data):
        text = self._decode(data)
        withoutProof, separator, proofText = text.rpartition(",p=")
        if not separator:
            raise SASLError("malformed SCRAM client-final message")
        attributes = withoutProof.split(",")
        if len(attributes) < 2 or not attributes[0].startswith("c=") or not attributes[1].startswith("r="):
            raise SASLError("malformed SCRAM client-final message")
        try:
            binding = base64.b64decode(attributes[0][2:], validate=True)
            proof = base64.b64decode(proofText, validate=True)
        except (ValueError, binascii.Error):
            raise SASLError("malformed SCRAM base64")
        if binding != self._gs2Header:
            raise SASLError("SCRAM channel binding does not match")
        if not hmac.compare_digest(attributes[1][2:].encode("utf-8"), self._nonce.encode("ascii")):
            raise SASLError("SCRAM nonce does not match")
        self._authMessage = b",".join([self._clientFirstBare, self._serverFirst, withoutProof.encode("utf-8")])
        self._state = "proof"
        credentials = ScramCredentials(
            self._username,
            self.hashName,
            self._authMessage,
            proof,
            self.context,
            authzid=self._authzid,
            mechanism=self.name,
        )
        return ("done", credentials)

    def finish(self, avatarId):
        if self._state != "proof":
            return Mechanism.finish(self, avatarId)
        signature = hmac.new(self._keys.serverKey, self._authMessage, self.hashName).digest()
        self._state = "server-final"
        return ("challenge", b"v=" + base64.b64encode(signature))


def _keySource(portal):
    if portal is None:
        return None
    checker = getattr(portal, "checkers", {}).get(IScramCredentials)
    if checker is None or not callable(getattr(checker, "scramKeys", None)):
        return None
    return checker


_SIMPLE = {
    "PLAIN": PlainMechanism,
    "LOGIN": LoginMechanism,
    "CRAM-MD5": CramMD5Mechanism,
}


def _policy(portal):
    """
    The portal's checker when it says which mechanisms to offer
    (C{mechanismsFor(localAddress)}), else C{None}.
    """
    if portal is None:
        return None
    for checker in getattr(portal, "checkers", {}).values():
        if callable(getattr(checker, "mechanismsFor", None)):
            return checker
    return None


def _offered(portal, localAddress):
    policy = _policy(portal)
    if policy is None:
        return list(DEFAULT_ORDER)
    return [name for name in policy.mechanismsFor(localAddress) if name in DEFAULT_ORDER]


#: Mechanisms offered when the portal's checker sets no policy.
DEFAULT_ORDER = ("PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5")


def mechanismNames(secure, cleartextAllowed, portal=None, localAddress=None):
    """
    The mechanisms to announce (IMAP C{AUTH=}, POP3 C{SASL}).

    @param secure: is the connection protected by TLS?
    @param cleartextAllowed: may clear-text passwords be used without TLS
        here (L{gateway.cred.checkers.cleartextAllowed})?
    @param portal: the portal logins go through.  When its checker has
        C{mechanismsFor(localAddress)} (as
        L{gateway.cred.checkers.DirectoryChecker} does: C{[auth]
        mechanisms} narrowed by the domain of C{localAddress}), that list
        and its order are used; C{SCRAM-SHA-256} is listed only when the
        portal can serve it.
    @param localAddress: the local IP address the client connected to.
    @return: C{list} of C{str}, e.g. C{['PLAIN', 'LOGIN', 'SCRAM-SHA-256',
        'CRAM-MD5']}; C{PLAIN} and C{LOGIN} are left out when neither
        C{secure} nor C{cleartextAllowed}.
    """
    names = []
    for name in _offered(portal, localAddress):
        if name in ("PLAIN", "LOGIN") and not (secure or cleartextAllowed):
            continue
        if name == "SCRAM-SHA-256" and _keySource(portal) is None:
            continue
        names.append(name)
    return names


def createMechanism(name, context, hostname, portal=None):
    """
    A fresh server-side mechanism for one exchange.

    @param name: the SASL name the client asked for (any case).
    @param context: the L{gateway.cred.credentials.LoginContext}.
    @param hostname: the server's name (CRAM-MD5 challenges).
    @param portal: needed for C{SCRAM-SHA-256} (see the module docstring);
        a mechanism its checker does not offer on C{context.localAddress}
        (see L{mechanismNames}) is unavailable.
    @return: the mechanism, or C{None} for an unknown or unavailable name.
    """
    name = (name.decode("ascii", "replace") if isinstance(name, bytes) else name).upper()
    if name not in _offered(portal, getattr(context, "localAddress", None)):
        return None
    if name in _SIMPLE:
        return _SIMPLE[name](context, hostname)
    if name == "SCRAM-SHA-256":
        source = _keySource(portal)
        if source is not None:
            return ScramMechanism(context, hostname, source)
    return None
