"""
Tests for the POP3 protocol (L{gateway.pop3.server}) over C{StringTransport}.
"""

import base64
import hashlib
import hmac

from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.trial import unittest
from zope.interface import directlyProvides

from gateway.errors import StoreError
from gateway.pop3.server import POP3Factory, makeFactory
from gateway.pop3.stream import CHUNK, SMALL
from gateway.pop3.transaction import uidl
from tests.support import PASSWORD, makeTestContext

MESSAGES = [
    b"Subject: one\n\nHello\n.dotted line\n..two dots\n",
    b"Subject: two\r\nX-8bit: caf\xc3\xa9 \xff\r\n\r\nbody \xe9\r\n.\r\nlast\r\n",
    # CRLF form: a "." line starts exactly at each chunk boundary.
    b"Subject: three\n\n" + b"y" * (CHUNK - 20) + b"\n" + (b".\n" + b"y" * (CHUNK - 5) + b"\n") * 3,
]


def crlf(message):
    return message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def sent(message):
    """
    What RETR carries for C{message}: its CRLF form, with a CRLF added if it
    does not end with one.
    """
    message = crlf(message)
    return message if message.endswith(b"\r\n") else message + b"\r\n"


def aroundSmall():
    """
    Messages whose CRLF form is about L{SMALL} octets (the limit between one
    read and streaming), stored with CRLF and with LF line ends, where a line
    starting with C{.} begins exactly at octet L{SMALL}, some cut so that
    they have no final line end or end in a lone C{.}.
    """
    head = b"Subject: edge\r\nX-8bit: \xe9\xff\r\n\r\n"
    text = head + b"a" * (SMALL - len(head) - 2) + b"\r\n" + b".x\r\n" * 8
    messages = [text[:size] for size in (SMALL - 2, SMALL, SMALL + 1, SMALL + 2, SMALL + 4, SMALL + 8)]
    lines = text.replace(b"\r\n", b"\n")
    cut = SMALL - text[:SMALL].count(b"\n")
    return messages + [lines[:size] for size in (cut - 1, cut, cut + 1, cut + 3)]


def unstuff(response):
    """
    The message from a multi-line response body (without the +OK line).
    """
    assert response.endswith(b"\r\n.\r\n") or response == b".\r\n", response[-20:]
    body = response[:-3]
    lines = body.split(b"\r\n")
    return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)


class TLSStringTransport(StringTransport):
    """
    A C{StringTransport} that records C{startTLS} and then says it is secure.
    """

    tlsStarted = None

    def startTLS(self, contextFactory):
        self.tlsStarted = contextFactory
        directlyProvides(self, ISSLTransport)


class SessionMixin:
    cleartextLogin = True
    overrides = {}

    def setUp(self):
        self.context = makeTestContext(self, cleartextLogin=self.cleartextLogin)
        # makeTestContext cannot take ("section", "name") keys as keywords.
        self.context.config._values.update(self.overrides)
        self.account = self.context.realm.accountFor("demo@example.test")
        self.mailbox = self.account.mailStore.getMailbox("INBOX")
        self.clock = Clock()
        self.factory = POP3Factory(self.context, clock=self.clock)

    @defer.inlineCallbacks
    def addMessages(self, messages=MESSAGES):
        uids = [self.mailbox.appendMessage(message) for message in messages]
        yield self.mailbox.synchronize()
        return uids

    def connect(self, secure=False):
        protocol = self.factory.buildProtocol(None)
        transport = TLSStringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 110), peerAddress=IPv4Address("TCP", "127.0.0.1", 40000)
        )
        if secure:
            directlyProvides(transport, ISSLTransport)
        protocol.makeConnection(transport)
        self.assertEqual(transport.value(), b"+OK POP3 server ready.\r\n")
        transport.clear()
        return protocol, transport

    @defer.inlineCallbacks
    def send(self, protocol, *lines):
        """
        Send lines (in one write) and return all output once the session
        is idle again.
        """
        protocol.transport.clear()
        protocol.dataReceived(b"".join(line + b"\r\n" for line in lines))
        for _ in range(2000):
            self.clock.advance(0)
            if not protocol._busy:
                break
            yield deferLater(reactor, 0.005, lambda: None)
        return protocol.transport.value()

    @defer.inlineCallbacks
    def login(self, protocol=None):
        if protocol is None:
            protocol, transport = self.connect()
        out = yield self.send(protocol, b"USER demo", b"PASS " + PASSWORD.encode())
        self.assertIn(b"+OK Logged in", out)
        return protocol


class AuthorizationTests(SessionMixin, unittest.TestCase):
    def test_capaBeforeLogin(self):
        """CAPA on a clear-text connection lists STLS, USER, every mechanism and the extensions."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"CAPA\r\n")
        lines = transport.value().split(b"\r\n")
        self.assertEqual(lines[0], b"+OK Capability list follows")
        for capability in (b"STLS", b"USER", b"TOP", b"UIDL", b"RESP-CODES", b"AUTH-RESP-CODE",
                           b"PIPELINING", b"IMPLEMENTATION gateway"):
            self.assertIn(capability, lines)
        sasl = [line for line in lines if line.startswith(b"SASL ")][0].split()
        self.assertEqual(sasl[1:], [b"PLAIN", b"LOGIN", b"SCRAM-SHA-256", b"CRAM-MD5"])
        self.assertEqual(lines[-2:], [b".", b""])

    def test_capaSecureHasNoSTLS(self):
        """On a TLS connection CAPA does not offer STLS and STLS is refused."""
        protocol, transport = self.connect(secure=True)
        protocol.dataReceived(b"CAPA\r\nSTLS\r\n")
        self.assertNotIn(b"STLS\r\n", transport.value())
        self.assertTrue(transport.value().endswith(b"-ERR TLS is already active.\r\n"))

    @defer.inlineCallbacks
    def test_userPass(self):
        """USER and PASS (with a space in the password) log in and report the maildrop."""
        yield self.addMessages()
        protocol, transport = self.connect()
        out = yield self.send(protocol, b"USER demo.user", b"PASS " + PASSWORD.encode(), b"STAT")
        self.assertEqual(out.split(b"\r\n")[1:3], [b"+OK Logged in.", b"+OK 3 %d" % (
            sum(len(crlf(m)) for m in MESSAGES),)])

    @defer.inlineCallbacks
    def test_wrongPassword(self):
        """A wrong password gets -ERR [AUTH] and the session may try again."""
        protocol, transport = self.connect()
        out = yield self.send(protocol, b"USER demo", b"PASS wrong")
        self.assertEqual(out, b"+OK Send your password.\r\n-ERR [AUTH] Authentication failed.\r\n")
        out = yield self.send(protocol, b"USER demo", b"PASS " + PASSWORD.encode())
        self.assertIn(b"+OK Logged in", out)

    def test_passWithoutUser(self):
        """PASS before USER is an error."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"PASS x\r\n")
        self.assertEqual(transport.value(), b"-ERR Send USER first.\r\n")

    @defer.inlineCallbacks
    def test_authPlainInitialResponse(self):
        """AUTH PLAIN with an initial response logs in."""
        protocol, transport = self.connect()
        token = base64.b64encode(b"\x00demo@example.test\x00" + PASSWORD.encode())
        out = yield self.send(protocol, b"AUTH PLAIN " + token)
        self.assertTrue(out.startswith(b"+OK Logged in"))

    @defer.inlineCallbacks
    def test_authPlainContinuation(self):
        """AUTH PLAIN without an initial response sends an empty challenge and takes the answer."""
        protocol, transport = self.connect()
        out = yield self.send(protocol, b"AUTH PLAIN")
        self.assertEqual(out, b"+ \r\n")
        out = yield self.send(protocol, base64.b64encode(b"\x00demo\x00wrong"))
        self.assertEqual(out, b"-ERR [AUTH] Authentication failed.\r\n")

    @defer.inlineCallbacks
    def test_authLogin(self):
        """AUTH LOGIN asks for the user name and the password."""
        protocol, transport = self.connect()
        out = yield self.send(protocol, b"AUTH LOGIN")
        self.assertEqual(out, b"+ " + base64.b64encode(b"Username:") + b"\r\n")
        out = yield self.send(protocol, base64.b64encode(b"demo"))
        self.assertEqual(out, b"+ " + base64.b64encode(b"Password:") + b"\r\n")
        out = yield self.send(protocol, base64.b64encode(PASSWORD.encode()))
        self.assertTrue(out.startswith(b"+OK Logged in"))

    @defer.inlineCallbacks
    def test_authCramMD5(self):
        """AUTH CRAM-MD5 logs in with the HMAC of the challenge."""
        protocol, transport = self.connect()
        out = yield self.send(protocol, b"AUTH CRAM-MD5")
        challenge = base64.b64decode(out[2:].strip())
        digest = hmac.new(PASSWORD.encode(), challenge, "md5").hexdigest().encode()
        out = yield self.send(protocol, base64.b64encode(b"demo " + digest))
        self.assertTrue(out.startswith(b"+OK Logged in"))

    @defer.inlineCallbacks
    def test_authScram(self):
        """AUTH SCRAM-SHA-256 logs in after the server-final message is answered with an empty line."""
        protocol, transport = self.connect()
        bare = "n=demo,r=clientnonce"
        out = yield self.send(protocol, b"AUTH SCRAM-SHA-256 " + base64.b64encode(b"n,," + bare.encode()))
        serverFirst = base64.b64decode(out[2:].strip()).decode()
        attributes = dict(item.split("=", 1) for item in serverFirst.split(","))
        salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), base64.b64decode(attributes["s"]),
                                     int(attributes["i"]))
        clientKey = hmac.new(salted, b"Client Key", "sha256").digest()
        withoutProof = "c=biws,r=" + attributes["r"]
        authMessage = ",".join([bare, serverFirst, withoutProof]).encode()
        signature = hmac.new(hashlib.sha256(clientKey).digest(), authMessage, "sha256").digest()
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(clientKey, signature, strict=True))).decode()
        out = yield self.send(protocol, base64.b64encode(("%s,p=%s" % (withoutProof, proof)).encode()))
        serverKey = hmac.new(salted, b"Server Key", "sha256").digest()
        expected = b"v=" + base64.b64encode(hmac.new(serverKey, authMessage, "sha256").digest())
        self.assertEqual(out, b"+ " + base64.b64encode(expected) + b"\r\n")
        out = yield self.send(protocol, b"")
        self.assertTrue(out.startswith(b"+OK Logged in"), out)

    @defer.inlineCallbacks
    def test_authCancel(self):
        """A '*' line cancels AUTH with -ERR and the session goes on."""
        protocol, transport = self.connect()
        yield self.send(protocol, b"AUTH LOGIN")
        out = yield self.send(protocol, b"*", b"NOOP")
        self.assertEqual(out, b"-ERR Authentication cancelled.\r\n"
                              b"-ERR Unknown command in AUTHORIZATION state (log in first).\r\n")

    @defer.inlineCallbacks
    def test_authBadBase64(self):
        """Bad base64 in an AUTH exchange gets -ERR."""
        protocol, transport = self.connect()
        yield self.send(protocol, b"AUTH PLAIN")
        out = yield self.send(protocol, b"!!!")
        self.assertTrue(out.startswith(b"-ERR Authentication failed"))

    def test_authUnknownMechanism(self):
        """An unknown mechanism is refused."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"AUTH KERBEROS_V4\r\n")
        self.assertEqual(transport.value(), b"-ERR Unsupported authentication mechanism.\r\n")

    def test_authList(self):
        """AUTH without arguments lists the mechanisms."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"AUTH\r\n")
        self.assertTrue(transport.value().startswith(b"+OK Supported mechanisms follow\r\nPLAIN\r\nLOGIN\r\n"))

    @defer.inlineCallbacks
    def test_storeError(self):
        """A store failure at login answers -ERR [SYS/TEMP]."""
        def broken(name):
            raise StoreError("disk on fire")
        self.patch(self.account.mailStore, "getMailbox", broken)
        protocol, transport = self.connect()
        out = yield self.send(protocol, b"USER demo", b"PASS " + PASSWORD.encode())
        self.assertIn(b"-ERR [SYS/TEMP]", out)
        self.flushLoggedErrors(StoreError)

    def test_stlsDiscardsPipelined(self):
        """STLS starts TLS and drops commands pipelined behind it; CAPA then drops STLS."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"STLS\r\nUSER demo\r\n")
        self.assertEqual(transport.value(), b"+OK Begin TLS negotiation now.\r\n")
        self.assertIs(transport.tlsStarted, self.context.tls)
        transport.clear()
        protocol.dataReceived(b"CAPA\r\n")
        self.assertNotIn(b"STLS", transport.value())
        self.assertTrue(protocol.loginContext.secure)

    def test_unknownAndWrongState(self):
        """Unknown commands and transaction commands before login get -ERR; the session continues."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"FOO\r\nSTAT\r\nCAPA\r\n")
        out = transport.value()
        self.assertTrue(out.startswith(b"-ERR Unknown command.\r\n-ERR Unknown command in AUTHORIZATION"))
        self.assertIn(b"+OK Capability list follows", out)

    def test_lineTooLong(self):
        """An over-long line gets -ERR and the next command is answered."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"X" * 20000)
        protocol.dataReceived(b"Y" * 20000 + b"\r\nQUIT\r\n")
        self.assertEqual(transport.value(), b"-ERR Line too long.\r\n+OK Logging out.\r\n")


class CleartextRefusedTests(SessionMixin, unittest.TestCase):
    cleartextLogin = False

    def test_capa(self):
        """Without TLS where the domain forbids clear text, CAPA offers neither USER nor PLAIN/LOGIN."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"CAPA\r\n")
        out = transport.value()
        self.assertNotIn(b"USER", out)
        self.assertIn(b"SASL SCRAM-SHA-256 CRAM-MD5\r\n", out)
        self.assertIn(b"STLS", out)

    def test_refused(self):
        """USER, PASS and AUTH PLAIN are refused with -ERR [AUTH] on clear text."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"USER demo\r\nPASS x\r\nAUTH PLAIN\r\n")
        refusal = b"-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n"
        self.assertEqual(transport.value(), refusal * 3)

    @defer.inlineCallbacks
    def test_allowedOverTLS(self):
        """After TLS the same USER/PASS login succeeds."""
        protocol, transport = self.connect(secure=True)
        yield self.login(protocol)


class TransactionTests(SessionMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def test_capaAfterLogin(self):
        """After login CAPA no longer offers USER, SASL or STLS."""
        protocol = yield self.login()
        out = yield self.send(protocol, b"CAPA")
        self.assertIn(b"\r\nTOP\r\n", out)
        for gone in (b"USER", b"SASL", b"STLS"):
            self.assertNotIn(gone, out)

    @defer.inlineCallbacks
    def test_statListUidl(self):
        """STAT, LIST and UIDL describe the snapshot; UIDL comes from UIDVALIDITY and UID."""
        uids = yield self.addMessages()
        protocol = yield self.login()
        sizes = [len(crlf(m)) for m in MESSAGES]
        out = yield self.send(protocol, b"STAT", b"LIST 2", b"UIDL 3", b"LIST")
        expected = [b"+OK 3 %d" % (sum(sizes),), b"+OK 2 %d" % (sizes[1],),
                    b"+OK 3 " + uidl(self.mailbox.uidValidity, uids[2]).encode(),
                    b"+OK 3 messages (%d octets)" % (sum(sizes),)]
        expected += [b"%d %d" % (n, s) for n, s in enumerate(sizes, 1)] + [b".", b""]
        self.assertEqual(out.split(b"\r\n"), expected)
        self.assertEqual(uidl(0x1234, 5), "0000000500001234")

    @defer.inlineCallbacks
    def test_uidlStableAcrossSessions(self):
        """Two sessions see the same UIDL listing."""
        yield self.addMessages()
        listings = []
        for _ in range(2):
            protocol = yield self.login()
            listings.append((yield self.send(protocol, b"UIDL", b"QUIT")))
        self.assertEqual(listings[0], listings[1])
        self.assertEqual(len(set(listings[0].split(b"\r\n")[1:4])), 3)

    @defer.inlineCallbacks
    def test_retrByteExact(self):
        """RETR sends every message byte-exact in CRLF form, dot-stuffed and terminated."""
        yield self.addMessages()
        protocol = yield self.login()
        for number, message in enumerate(MESSAGES, 1):
            out = yield self.send(protocol, b"RETR %d" % (number,))
            first, _, rest = out.partition(b"\r\n")
            self.assertEqual(first, b"+OK %d octets" % (len(crlf(message)),))
            self.assertEqual(unstuff(rest), crlf(message))
        self.assertEqual(crlf(MESSAGES[2])[CHUNK:CHUNK + 3], b".\r\n")
        self.assertEqual(crlf(MESSAGES[2])[2 * CHUNK:2 * CHUNK + 3], b".\r\n")

    @defer.inlineCallbacks
    def test_retrAroundSmall(self):
        """Messages just below and above the one-read limit, with and without a final line end, come out byte-exact."""
        messages = aroundSmall()
        yield self.addMessages(messages)
        protocol = yield self.login()
        for number, message in enumerate(messages, 1):
            out = yield self.send(protocol, b"RETR %d" % (number,))
            first, _, rest = out.partition(b"\r\n")
            self.assertEqual(first, b"+OK %d octets" % (len(crlf(message)),))
            self.assertEqual(unstuff(rest), sent(message), number)

    @defer.inlineCallbacks
    def test_topLargeMessage(self):
        """TOP of a streamed (large) message stops after the asked lines; TOP with more lines than the body sends it all."""
        yield self.addMessages()
        protocol = yield self.login()
        out = yield self.send(protocol, b"TOP 3 2", b"TOP 3 100")
        body = crlf(MESSAGES[2]).split(b"\r\n")
        stuffed = [b"." + line if line.startswith(b".") else line for line in body[:-1]]
        self.assertEqual(out, b"+OK Top of message follows\r\n" + b"\r\n".join(stuffed[:4]) + b"\r\n.\r\n"
                              b"+OK Top of message follows\r\n" + b"\r\n".join(stuffed) + b"\r\n.\r\n")

    @defer.inlineCallbacks
    def test_top(self):
        """TOP gives the headers and the asked number of body lines."""
        yield self.addMessages()
        protocol = yield self.login()
        out = yield self.send(protocol, b"TOP 1 0", b"TOP 1 2", b"TOP 1", b"TOP 9 1")
        self.assertEqual(out, b"+OK Top of message follows\r\nSubject: one\r\n\r\n.\r\n"
                              b"+OK Top of message follows\r\nSubject: one\r\n\r\nHello\r\n..dotted line\r\n.\r\n"
                              b"-ERR Syntax: TOP message lines\r\n-ERR No such message.\r\n")

    @defer.inlineCallbacks
    def test_pipelining(self):
        """Pipelined commands, RETR included, are answered in order."""
        yield self.addMessages()
        protocol, transport = self.connect()
        out = yield self.send(protocol, b"USER demo", b"PASS " + PASSWORD.encode(), b"RETR 3", b"RETR 1", b"STAT")
        lines = out.split(b"\r\n")
        self.assertTrue(lines[1].startswith(b"+OK Logged in"))
        self.assertEqual(lines[2], b"+OK %d octets" % (len(crlf(MESSAGES[2])),))
        self.assertTrue(lines[-2].startswith(b"+OK 3 "))
        self.assertIn(b"\r\n.\r\n+OK %d octets\r\nSubject: one" % (len(crlf(MESSAGES[0])),), out)

    @defer.inlineCallbacks
    def test_deleRsetQuit(self):
        """DELE marks, RSET unmarks, and QUIT expunges exactly the marked messages (visible to IMAP)."""
        uids = yield self.addMessages()
        before = self.mailbox.highestModSeq()
        protocol = yield self.login()
        out = yield self.send(protocol, b"DELE 1", b"DELE 1", b"LIST 1", b"RSET", b"DELE 2", b"STAT")
        self.assertEqual(out.split(b"\r\n")[:4], [
            b"+OK Message 1 deleted.", b"-ERR No such message.", b"-ERR No such message.", b"+OK 3 messages (%d octets)."
            % (sum(len(crlf(m)) for m in MESSAGES),)])
        self.assertEqual(self.mailbox.uids(), uids)
        out = yield self.send(protocol, b"QUIT")
        self.assertEqual(out, b"+OK Logging out, 2 messages left.\r\n")
        self.assertTrue(protocol.transport.disconnecting)
        self.assertEqual(self.mailbox.uids(), [uids[0], uids[2]])
        expunged, changed, highest = self.mailbox.changesSince(before)
        self.assertEqual(list(expunged), [uids[1]])

    @defer.inlineCallbacks
    def test_noQuitNoUpdate(self):
        """A session that ends without QUIT deletes nothing."""
        uids = yield self.addMessages()
        protocol = yield self.login()
        yield self.send(protocol, b"DELE 1")
        protocol.connectionLost()
        self.assertEqual(self.mailbox.uids(), uids)

    @defer.inlineCallbacks
    def test_newMessageKeepsNumbering(self):
        """A message arriving during the session does not change its numbering."""
        yield self.addMessages()
        protocol = yield self.login()
        self.mailbox.appendMessage(b"Subject: late\n\nx\n")
        out = yield self.send(protocol, b"STAT", b"LIST 4")
        self.assertTrue(out.startswith(b"+OK 3 "))
        self.assertIn(b"-ERR No such message.", out)

    @defer.inlineCallbacks
    def test_expungedElsewhere(self):
        """RETR of a message another session expunged answers -ERR; QUIT still succeeds."""
        uids = yield self.addMessages()
        protocol = yield self.login()
        self.mailbox.setFlags([uids[0]], {"\\Deleted"}, "+")
        self.mailbox.expunge([uids[0]])
        out = yield self.send(protocol, b"RETR 1", b"DELE 1", b"QUIT")
        self.assertEqual(out, b"-ERR Message 1 was deleted by another session.\r\n"
                              b"+OK Message 1 deleted.\r\n+OK Logging out, 2 messages left.\r\n")
        self.assertEqual(self.mailbox.uids(), uids[1:])

    @defer.inlineCallbacks
    def test_inUse(self):
        """A second session on the same maildrop gets -ERR [IN-USE] until the first one ends."""
        first = yield self.login()
        protocol, transport = self.connect()
        out = yield self.send(protocol, b"USER demo", b"PASS " + PASSWORD.encode())
        self.assertIn(b"-ERR [IN-USE]", out)
        yield self.send(first, b"QUIT")
        yield self.login(protocol)

    @defer.inlineCallbacks
    def test_idleTimeout(self):
        """An idle session is closed after idle_timeout seconds and deletes nothing."""
        uids = yield self.addMessages()
        protocol = yield self.login()
        yield self.send(protocol, b"DELE 1")
        self.clock.advance(599)
        self.assertFalse(protocol.transport.disconnecting)
        self.clock.advance(1)
        self.assertTrue(protocol.transport.value().endswith(b"-ERR Disconnected for inactivity.\r\n"))
        self.assertTrue(protocol.transport.disconnecting)
        protocol.connectionLost()
        self.assertEqual(self.mailbox.uids(), uids)

    @defer.inlineCallbacks
    def test_idleTimeoutMidMessage(self):
        """A client that stops reading in the middle of RETR is cut off after idle_timeout."""
        yield self.addMessages()
        protocol = yield self.login()
        protocol.transport.clear()
        protocol.dataReceived(b"RETR 3\r\n")
        protocol.producer.pauseProducing()
        self.assertTrue(protocol._busy)
        self.clock.advance(600)
        self.assertTrue(protocol.transport.disconnected)
        self.assertNotIn(b"-ERR", protocol.transport.value())


class LimitTests(SessionMixin, unittest.TestCase):
    overrides = {("pop3", "max_connections"): 2}

    def test_maxConnections(self):
        """A connection beyond max_connections is refused with [SYS/TEMP]; a slot frees on close."""
        first, _ = self.connect()
        self.connect()
        protocol = self.factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertEqual(transport.value(), b"-ERR [SYS/TEMP] Too many connections, try again later.\r\n")
        self.assertTrue(transport.disconnecting)
        first.connectionLost()
        self.connect()

    def test_makeFactory(self):
        """makeFactory reads the [pop3] section."""
        factory = makeFactory(self.context)
        self.assertEqual((factory.maxConnections, factory.idleTimeout), (2, 600))
