# -*- test-case-name: tests.test_checkers -*-
"""
The credentials every front-end hands to the portal, and the login context
(protocol, addresses, TLS) they carry to the checker.

Every credentials object has C{username} (C{str}, as typed), C{context} (an
L{ILoginContext}), C{mechanism} (a name for the log: C{'PLAIN'}, C{'LOGIN'},
C{'USER'}, C{'BASIC'}, C{'CRAM-MD5'}, ...) and C{cleartext} (C{True} when the
password crossed the connection in the clear).  None of them shows a secret
in its C{repr}.
"""

import hmac
import secrets
import time

import attr
from twisted.cred.credentials import IUsernameHashedPassword, IUsernamePassword
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import INegotiated, ISSLTransport
from zope.interface import Attribute, Interface, implementer

from gateway.interfaces import ILoginContext


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value


def _bytes(value):
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    return value


def _host(address):
    if isinstance(address, (IPv4Address, IPv6Address)):
        return address.host
    return None


@implementer(ILoginContext)
@attr.s(frozen=True)
class LoginContext:
    """
    Where a login attempt comes from.

    @ivar protocol: C{'imap'}, C{'pop3'}, C{'http'}, C{'ftp'} or C{'lmtp'}.
    @ivar remoteAddress: the peer's IP C{str}, or C{None}.
    @ivar localAddress: the local IP C{str} the client connected to, or C{None}.
    @ivar secure: C{True} when the connection is protected by TLS.
    """

    protocol = attr.ib()
    remoteAddress = attr.ib(default=None)
    localAddress = attr.ib(default=None)
    secure = attr.ib(default=False)

    @classmethod
    def fromTransport(cls, protocol, transport):
        """
        Build the context of a connection.

        @param transport: an C{ITransport}; C{getPeer()}/C{getHost()} give the
            addresses (only IP addresses count).  It is C{secure} when it
            provides C{ISSLTransport} (what C{startTLS} marks a TCP transport
            with) or C{INegotiated} (what the TLS wrapper of C{ssl:}
            listeners provides: it does not provide C{ISSLTransport}).
        """
        try:
            remote = _host(transport.getPeer())
        except Exception:
            remote = None
        try:
            local = _host(transport.getHost())
        except Exception:
            local = None
        return cls(
            protocol=protocol,
            remoteAddress=remote,
            localAddress=local,
            secure=ISSLTransport.providedBy(transport) or INegotiated.providedBy(transport),
        )


@implementer(IUsernamePassword)
class PlainCredentials:
    """
    A user name and a clear-text password (IMAP LOGIN, AUTHENTICATE PLAIN and
    LOGIN, POP3 USER/PASS and AUTH PLAIN, FTP USER/PASS, HTTP Basic).

    @ivar authzid: the SASL authorization identity (C{str}, empty when none
        was asked for); the checker accepts only an empty one or one that
        names the same account.
    """

    cleartext = True

    def __init__(self, username, password, context, mechanism="PLAIN", authzid=""):
        """
        @param username: C{str} or C{bytes} (UTF-8; undecodable bytes are kept
            with C{surrogateescape}).
        @param password: C{str} or C{bytes}, likewise.
        @param context: the L{LoginContext}.
        """
        self.username = _text(username)
        self.password = _text(password)
        self.context = context
        self.mechanism = mechanism
        self.authzid = _text(authzid or "")

    def checkPassword(self, password):
        """
        Compare with a plain-text stored password, in constant time.
        """
        return hmac.compare_digest(_bytes(self.password), _bytes(password))

    def __repr__(self):
        return "<PlainCredentials %r %s>" % (self.username, self.mechanism)


@implementer(IUsernameHashedPassword)
class CramMD5Credentials:
    """
    A CRAM-MD5 (RFC 2195) answer: the challenge the server sent and the
    client's hex HMAC-MD5 digest of it.
    """

    cleartext = False
    mechanism = "CRAM-MD5"
    authzid = ""

    def __init__(self, username, challenge, response, context):
        """
        @param challenge: C{bytes} as sent (see L{makeChallenge}).
        @param response: the lower-case hex digest the client sent, C{bytes}
            (C{str} is accepted).
        """
        self.username = _text(username)
        self.challenge = _bytes(challenge)
        self.response = _bytes(response).strip().lower()
        self.context = context

    def checkPassword(self, password):
        """
        Check the response against a plain-text password.
        """
        digest = hmac.new(_bytes(password), self.challenge, "md5").hexdigest().encode("ascii")
        return hmac.compare_digest(digest, self.response)

    def __repr__(self):
        return "<CramMD5Credentials %r>" % (self.username,)


class IScramCredentials(Interface):
    """
    A SCRAM (RFC 5802) client proof; see L{gateway.cred.sasl}.  The checker
    verifies C{clientProof} over C{authMessage} with the account's stored key.
    """

    username = Attribute("The authentication identity as typed, C{str}.")
    authzid = Attribute("The authorization identity, C{str} (empty for none).")
    hashName = Attribute("C{'sha256'} or C{'sha1'}.")
    authMessage = Attribute("The RFC 5802 AuthMessage, C{bytes}.")
    clientProof = Attribute("The decoded ClientProof, C{bytes}.")
    context = Attribute("The L{ILoginContext}.")


@implementer(IScramCredentials)
class ScramCredentials:
    """
    The end of a SCRAM exchange, for the checker.

    @ivar hashName: C{'sha256'} (SCRAM-SHA-256) or C{'sha1'}.
    @ivar authMessage: the RFC 5802 AuthMessage C{bytes}.
    @ivar clientProof: the decoded proof C{bytes}.
    """

    cleartext = False

    def __init__(self, username, hashName, authMessage, clientProof, context, authzid="", mechanism=None):
        self.username = _text(username)
        self.hashName = hashName
        self.authMessage = authMessage
        self.clientProof = clientProof
        self.context = context
        self.authzid = _text(authzid or "")
        self.mechanism = mechanism or "SCRAM-%s" % ({"sha256": "SHA-256", "sha1": "SHA-1"}[hashName],)

    def __repr__(self):
        return "<ScramCredentials %r %s>" % (self.username, self.mechanism)


def makeChallenge(hostname):
    """
    A CRAM-MD5 challenge in RFC 2195 form, C{<random.timestamp@hostname>}.

    @return: C{bytes}.
    """
    return ("<%d.%d@%s>" % (secrets.randbits(63), int(time.time()), hostname)).encode(
        "ascii", "replace"
    )
