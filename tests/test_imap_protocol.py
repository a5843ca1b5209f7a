# -*- test-case-name: tests.test_imap_protocol -*-
"""
The IMAP core: framing, literals, limits, dispatch, CAPABILITY, NOOP,
LOGOUT, ID, autologout and the factory.
"""

from twisted.internet.interfaces import ISSLTransport
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial import unittest
from zope.interface import directlyProvides

from gateway.imap.parser import Arguments, IMAPSyntaxError, NotModifiedUTF7, decodeMailbox, encodeMailbox
from gateway.imap.server import makeFactory
from gateway.store.mail import MailStore
from tests.support import PASSWORD, makeTestContext


class TLSStringTransport(StringTransport):
    """
    A L{StringTransport} that records C{startTLS}.
    """

    tlsStarted = None

    def startTLS(self, contextFactory):
        self.tlsStarted = contextFactory
        directlyProvides(self, ISSLTransport)


class IMAPTestMixin:
    """
    A session over a L{StringTransport}, driven by L{send}.
    """

    def connect(self, cleartextLogin=True, quota=None, secure=False, config=None):
        self.clock = Clock()
        self.context = makeTestContext(self, cleartextLogin=cleartextLogin, quota=quota, reactor=self.clock)
        # Mail stores on the test clock: synchronous rescans, clock-driven notifications.
        self.context.realm._mailStoreFactory = lambda path, quota: MailStore(
            path, quota=quota, reactor=self.clock, useInotify=False)
        for (section, name), value in (config or {}).items():
            self.context.config._values[section, name] = value
        self.factory = makeFactory(self.context)
        self.session = self.factory.buildProtocol(None)
        self.transport = TLSStringTransport()
        if secure:
            directlyProvides(self.transport, ISSLTransport)
        self.session.makeConnection(self.transport)
        self.greeting = self.read()
        self.addCleanup(self.disconnect)
        return self.session

    def disconnect(self):
        if self.session.transport is not None and not self.transport.disconnected:
            self.transport.loseConnection()
            self.session.connectionLost(None)

    def read(self):
        data = self.transport.value()
        self.transport.clear()
        return data

    def send(self, data):
        """
        Send C{data} (C{bytes}; CRLF added when missing) and return what the
        server answered.
        """
        if not data.endswith(b"\n"):
            data += b"\r\n"
        self.session.dataReceived(data)
        return self.read()

    def login(self, **kwargs):
        self.connect(**kwargs)
        out = self.send(b'L1 LOGIN demo "%s"' % (PASSWORD.encode(),))
        self.assertIn(b"L1 OK", out)
        return out


class FramingTests(IMAPTestMixin, unittest.TestCase):
    def test_greeting(self):
        """The greeting is an untagged OK carrying the capabilities."""
        self.connect()
        self.assertTrue(self.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 "))
        self.assertTrue(self.greeting.endswith(b"\r\n"))

    def test_capability(self):
        """CAPABILITY lists STARTTLS, SASL mechanisms and the extensions before login."""
        self.connect()
        out = self.send(b"a CAPABILITY")
        caps = out.split(b"\r\n")[0].split()
        for name in (b"IMAP4rev1", b"STARTTLS", b"AUTH=PLAIN", b"AUTH=CRAM-MD5", b"LITERAL+",
                     b"SASL-IR", b"IDLE", b"UIDPLUS", b"MOVE", b"APPENDLIMIT=52428800"):
            self.assertIn(name, caps)
        self.assertNotIn(b"LOGINDISABLED", caps)
        self.assertTrue(out.endswith(b"a OK CAPABILITY completed\r\n"))

    def test_loginDisabled(self):
        """Without TLS where the domain forbids clear text, LOGINDISABLED is announced and PLAIN is not."""
        self.connect(cleartextLogin=False)
        caps = self.send(b"a CAPABILITY").split(b"\r\n")[0].split()
        self.assertIn(b"LOGINDISABLED", caps)
        self.assertNotIn(b"AUTH=PLAIN", caps)
        self.assertIn(b"AUTH=CRAM-MD5", caps)

    def test_capabilityOverTLS(self):
        """Over TLS neither STARTTLS nor LOGINDISABLED is announced."""
        self.connect(cleartextLogin=False, secure=True)
        caps = self.send(b"a CAPABILITY").split(b"\r\n")[0].split()
        self.assertNotIn(b"STARTTLS", caps)
        self.assertNotIn(b"LOGINDISABLED", caps)
        self.assertIn(b"AUTH=PLAIN", caps)

    def test_noopAndUnknown(self):
        """NOOP succeeds; an unknown command gets BAD and the session continues."""
        self.connect()
        self.assertEqual(self.send(b"a NOOP"), b"a OK NOOP completed\r\n")
        self.assertEqual(self.send(b"b FROB x"), b"b BAD Unknown command FROB\r\n")
        self.assertEqual(self.send(b"c noop"), b"c OK NOOP completed\r\n")

    def test_missingCommand(self):
        """A line with only a tag, or an empty line, gets BAD."""
        self.connect()
        self.assertIn(b"BAD", self.send(b"abc"))
        self.assertIn(b"BAD", self.send(b""))
        self.assertIn(b"OK", self.send(b"d NOOP"))

    def test_wrongState(self):
        """Selected-state commands are refused before login with BAD."""
        self.connect()
        self.assertIn(b"a BAD FETCH is not allowed before login", self.send(b"a FETCH 1 FLAGS"))
        self.assertIn(b"b BAD", self.send(b"b SELECT INBOX"))

    def test_extraArguments(self):
        """Arguments after a command that takes none get BAD."""
        self.connect()
        self.assertIn(b"a BAD", self.send(b"a NOOP extra"))

    def test_pipelined(self):
        """Several commands in one packet are answered in order."""
        self.connect()
        out = self.send(b"a NOOP\r\nb NOOP\r\nc NOOP\r\n")
        self.assertEqual(out, b"a OK NOOP completed\r\nb OK NOOP completed\r\nc OK NOOP completed\r\n")

    def test_lineSplitAcrossPackets(self):
        """A command that arrives in pieces is answered once complete."""
        self.connect()
        self.session.dataReceived(b"a NO")
        self.assertEqual(self.read(), b"")
        self.assertEqual(self.send(b"OP\r\n"), b"a OK NOOP completed\r\n")

    def test_logout(self):
        """LOGOUT answers BYE then OK and closes the connection."""
        self.connect()
        out = self.send(b"a LOGOUT")
        self.assertEqual(out, b"* BYE Logging out\r\na OK LOGOUT completed\r\n")
        self.assertTrue(self.transport.disconnecting)

    def test_id(self):
        """ID answers with the server's identification, with NIL or a list of pairs."""
        self.connect()
        self.assertIn(b'* ID ("name" "gateway"', self.send(b"a ID NIL"))
        self.assertIn(b"b OK", self.send(b'b ID ("name" "test" "version" "1")'))
        self.assertIn(b"c BAD", self.send(b'c ID ("name")'))

    def test_synchronizingLiteral(self):
        """A {n} literal gets a continuation, and the command completes after its octets."""
        self.login()
        out = self.send(b"a CREATE {4}")
        self.assertEqual(out, b"+ Ready\r\n")
        self.assertRegex(self.send(b"Test"), rb"\Aa OK \[MAILBOXID \(\S+\)\] CREATE completed\r\n\Z")
        self.assertIn("Test", [m.name for m in self.session.account.mailStore.listMailboxes()])

    def test_nonSynchronizingLiteral(self):
        """A {n+} literal needs no continuation."""
        self.login()
        out = self.send(b"a CREATE {5+}\r\nTest2\r\n")
        self.assertRegex(out, rb"\Aa OK \[MAILBOXID \(\S+\)\] CREATE completed\r\n\Z")

    def test_literalCRLFInside(self):
        """A literal may contain CRLF and arrive in several packets."""
        self.connect()
        self.assertEqual(self.send(b'a ID ("k" {4}'), b"+ Ready\r\n")
        self.session.dataReceived(b"a\r")
        self.assertEqual(self.read(), b"")
        out = self.send(b"\nb)\r\n")
        self.assertIn(b"a OK ID completed", out)

    def test_overlongLine(self):
        """A line over max_line_length gets BAD and the session continues."""
        self.connect(config={("imap", "max_line_length"): 100})
        out = self.send(b"t1 NOOP " + b"x" * 200)
        self.assertEqual(out, b"t1 BAD Command line too long\r\n")
        self.assertIn(b"t2 OK", self.send(b"t2 NOOP"))

    def test_overlongLineInPieces(self):
        """An over-long line arriving in pieces is discarded through its end, then BAD."""
        self.connect(config={("imap", "max_line_length"): 100})
        self.session.dataReceived(b"t1 NOOP " + b"x" * 150)
        self.session.dataReceived(b"y" * 150)
        self.assertEqual(self.read(), b"")
        self.assertEqual(self.send(b"zz\r\nt2 NOOP\r\n"), b"t1 BAD Command line too long\r\nt2 OK NOOP completed\r\n")

    def test_oversizedLiteralRefused(self):
        """An oversized {n} literal is refused without a continuation; the session continues."""
        self.connect(config={("imap", "max_line_length"): 100})
        out = self.send(b"a LOGIN {500}")
        self.assertTrue(out.startswith(b"a BAD Literal too large"), out)
        self.assertNotIn(b"+ Ready", out)
        self.assertIn(b"b OK", self.send(b"b NOOP"))

    def test_oversizedNonSyncLiteralDiscarded(self):
        """An oversized {n+} literal is read and discarded, then refused; the session continues."""
        self.connect(config={("imap", "max_line_length"): 100})
        out = self.send(b"a LOGIN {200+}\r\n" + b"z" * 200 + b" x\r\nb NOOP\r\n")
        self.assertEqual(out, b"a NO Literal too large (limit 100 octets)\r\nb OK NOOP completed\r\n")

    def test_refusedLiteralWithSecondLiteral(self):
        """After a refused {n+} literal, a further {n+} literal on the same command is skipped too."""
        self.connect(config={("imap", "max_line_length"): 100})
        out = self.send(b"a LOGIN {200+}\r\n" + b"z" * 200 + b" {3+}\r\nabc\r\nb NOOP\r\n")
        self.assertEqual(out, b"a NO Literal too large (limit 100 octets)\r\nb OK NOOP completed\r\n")

    def test_manyPipelined(self):
        """Twenty thousand pipelined commands in one packet are all answered (linear buffer walk)."""
        self.connect()
        out = self.send(b"".join(b"t%d NOOP\r\n" % (i,) for i in range(20000)))
        self.assertEqual(out.count(b" OK NOOP completed\r\n"), 20000)
        self.assertTrue(out.endswith(b"t19999 OK NOOP completed\r\n"))

    def test_hugeNonSyncLiteralBye(self):
        """A {n+} literal far over the limit closes the connection with a BYE that says why."""
        self.connect(config={("imap", "max_line_length"): 100})
        out = self.send(b"a LOGIN {100000+}")
        self.assertIn(b"* BYE Literal too large", out)
        self.assertTrue(self.transport.disconnecting)

    def test_appendTooBig(self):
        """APPEND over max_message_size gets NO [TOOBIG] before the literal is read."""
        self.login(config={("imap", "max_message_size"): 1000})
        out = self.send(b"a APPEND INBOX {2000}")
        self.assertTrue(out.startswith(b"a NO [TOOBIG]"), out)
        self.assertIn(b"b OK", self.send(b"b NOOP"))

    def test_appendOverQuota(self):
        """APPEND over the remaining quota gets NO [OVERQUOTA] before the literal is read."""
        self.login(quota=5000)
        out = self.send(b"a APPEND INBOX {6000}")
        self.assertTrue(out.startswith(b"a NO [OVERQUOTA]"), out)

    def test_autologout(self):
        """After idle_timeout seconds of silence the session says BYE and closes."""
        self.connect(config={("imap", "idle_timeout"): 60})
        self.clock.advance(59)
        self.send(b"a NOOP")
        self.clock.advance(59)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(2)
        self.assertIn(b"* BYE Autologout", self.read())
        self.assertTrue(self.transport.disconnecting)

    def test_maxConnections(self):
        """Connections over max_connections get BYE and are closed."""
        self.connect(config={("imap", "max_connections"): 1})
        second = self.factory.buildProtocol(None)
        transport = StringTransport()
        second.makeConnection(transport)
        self.assertTrue(transport.value().startswith(b"* BYE"))
        self.assertTrue(transport.disconnecting)


class ParserTests(unittest.TestCase):
    def test_quoted(self):
        """Quoted strings honour \\\\ and \\" escapes and give bytes."""
        args = Arguments(b'"a\\"b\\\\c" rest')
        self.assertEqual(args.string(), b'a"b\\c')
        self.assertEqual(args.rest(), "rest")

    def test_badEscape(self):
        """Other escapes in quoted strings are syntax errors."""
        self.assertRaises(IMAPSyntaxError, Arguments(b'"a\\nb"').string)

    def test_literal(self):
        """A literal in the buffer gives its octets."""
        args = Arguments(b"{5}\r\na\r\nbc x")
        self.assertEqual(args.astring(), b"a\r\nbc")

    def test_nestedList(self):
        """Lists nest and mix atoms, strings and NIL."""
        args = Arguments(b'(a "b" (c NIL) {1}\r\nd)')
        self.assertEqual(args.parenList(), ["a", b"b", ["c", "NIL"], b"d"])

    def test_deepList(self):
        """Absurdly deep nesting is a syntax error, not a crash."""
        self.assertRaises(IMAPSyntaxError, Arguments(b"(" * 100 + b")" * 100).parenList)

    def test_mailboxNames(self):
        """Mailbox names are modified UTF-7 on the wire; INBOX is case-insensitive."""
        self.assertEqual(decodeMailbox(b"Entw&APw-rfe"), "Entwürfe")
        self.assertEqual(encodeMailbox("Entwürfe"), b'"Entw&APw-rfe"')
        self.assertEqual(decodeMailbox(b"inbox"), "INBOX")

    def test_plainNamesAsTheCodecSays(self):
        """
        Names without a shift are decoded without Twisted's codec, with its
        answer: each byte, between two letters, decodes to what the codec
        decodes and encodes back to it, or is refused.
        """
        for byte in range(256):
            raw = b"a" + bytes([byte]) + b"b"
            try:
                name = raw.decode("imap4-utf-7")
                expected = name if name.encode("imap4-utf-7") == raw else None
            except (UnicodeError, ValueError):
                expected = None
            if expected is None:
                self.assertRaises(NotModifiedUTF7, decodeMailbox, raw)
            else:
                self.assertEqual(decodeMailbox(raw), expected)
        self.assertEqual(decodeMailbox(b"A &- B"), "A & B")
        self.assertRaises(NotModifiedUTF7, decodeMailbox, b"A & B")
