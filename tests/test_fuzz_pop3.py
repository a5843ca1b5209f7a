# -*- test-case-name: tests.test_fuzz_pop3 -*-
"""
Grammar-based fuzzing of the POP3 session (issue 16): commands from the
protocol's table with well- and ill-formed arguments, SASL exchanges, and
stray octets, fed over a C{StringTransport} in packets of various sizes.
Every answer must be a POP3 status line (or the lines of a multi-line
answer), no traceback may be logged, the session must go on (or end after
a final status), and what it buffers before login stays bounded.

Short and derandomized by default; C{GATEWAY_FUZZ=long} runs many more
random examples (see L{tests.fuzz_support}).
"""

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.trial import unittest

from gateway.pop3.server import AUTHORIZATION, MAX_BUFFER, POP3Factory
from gateway.store.mail import MailStore
from tests.fuzz_support import FUZZ, LogWatch, chunked, chunkSizes, specialBytes
from tests.support import PASSWORD, makeTestContext
from tests.test_pop3 import MESSAGES, TLSStringTransport

# -- grammar ------------------------------------------------------------------------

numbers = st.one_of(st.integers(0, 5), st.integers(-5, 2 ** 70)).map(lambda n: b"%d" % (n,))
words = st.one_of(numbers, st.text("abcdefXYZ@.%-_", min_size=1, max_size=10).map(str.encode), specialBytes)
saslLines = st.one_of(
    st.sampled_from([b"*", b"=", b"AGRlbW8AZGVtbw==", b"ZGVtbw==", b"AGRlbW8Ad3Jvbmc=", b"!!!", b""]),
    specialBytes)

commands = st.one_of(
    st.tuples(st.sampled_from([b"USER", b"user", b"PASS"]), words).map(b" ".join),
    st.just(b"USER demo\r\nPASS " + PASSWORD.encode()),
    st.tuples(st.sampled_from([b"AUTH PLAIN", b"AUTH LOGIN", b"AUTH CRAM-MD5", b"AUTH SCRAM-SHA-256",
                               b"AUTH BOGUS", b"AUTH", b"AUTH PLAIN =", b"AUTH PLAIN AGRlbW8AZGVtbw==",
                               b"AUTH PLAIN !!"]),
              st.lists(saslLines, max_size=3)).map(lambda p: b"\r\n".join([p[0]] + p[1])),
    st.tuples(st.sampled_from([b"LIST", b"UIDL", b"RETR", b"DELE", b"TOP", b"STAT", b"NOOP", b"RSET"]),
              st.lists(numbers, max_size=3)).map(lambda p: b" ".join([p[0]] + p[1])),
    st.tuples(st.sampled_from([b"TOP", b"RETR", b"LIST"]), words, words).map(b" ".join),
    st.sampled_from([b"CAPA", b"STLS", b"NOOP", b"RSET", b"STAT", b"QUIT", b"APOP demo 0123", b"", b" ",
                     b"capa", b"LIST ", b"RETR  1", b"TOP 1", b"XTND XMIT"]),
    st.integers(16000, 70000).map(lambda n: b"NOOP " + b"x" * n),
    specialBytes,
)
prologues = st.sampled_from(["none", "login"])


class POP3FuzzTests(unittest.TestCase):
    """
    Random well- and ill-formed POP3 commands against one session each.
    """

    def setUp(self):
        self.logs = LogWatch(self)
        self.clock = Clock()
        self.context = makeTestContext(self, cleartextLogin=True, reactor=self.clock)
        # Mail stores on the test clock: synchronous rescans.
        self.context.realm._mailStoreFactory = lambda path, quota: MailStore(
            path, quota=quota, reactor=self.clock, useInotify=False)
        mailbox = self.context.realm.accountFor("demo@example.test").mailStore.getMailbox("INBOX")
        for message in MESSAGES[:2]:
            mailbox.appendMessage(message)
        self.factory = POP3Factory(self.context, clock=self.clock)

    def connect(self, prologue):
        self.session = self.factory.buildProtocol(None)
        self.transport = TLSStringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 110), peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        self.session.makeConnection(self.transport)
        if prologue == "login":
            self.session.dataReceived(b"USER demo\r\nPASS " + PASSWORD.encode() + b"\r\n")
            self.settle()
            self.assertIn(b"+OK Logged in", self.transport.value())
        self.transport.clear()

    def settle(self):
        for _ in range(50):
            self.clock.advance(0)
            if not self.session._busy and self.session.producer is None:
                break
            self.clock.advance(0.1)

    def closed(self):
        return self.session._closed or self.transport.disconnecting

    def feed(self, data, chunkSize):
        for piece in chunked(data, chunkSize):
            for _ in range(100):
                if self.transport.producerState != "paused":
                    break
                self.clock.advance(0.1)
            if self.closed():
                return
            self.session.dataReceived(piece)
            if self.session.state == AUTHORIZATION:
                self.assertLessEqual(len(self.session._buffer), MAX_BUFFER + len(piece))
            self.settle()

    def check(self):
        out = self.transport.value()
        self.assertTrue(out == b"" or out.startswith((b"+OK", b"-ERR", b"+ ")), out[:200])
        if not self.closed():
            self.transport.clear()
            self.feed(b"\r\n*\r\nCAPA\r\n", 0)
            self.settle()
            after = self.transport.value()
            self.assertIn(b"+OK Capability list follows\r\n", after)
            self.assertTrue(after.endswith(b"\r\n.\r\n"), after[-200:])
        else:
            self.assertTrue(out.endswith(b"\r\n"), out[-200:])
        self.assertEqual(self.logs.failures(), [])
        self.assertEqual(self.flushLoggedErrors(), [])
        self.session.connectionLost(None)
        self.settle()

    @FUZZ
    @given(prologue=prologues, lines=st.lists(commands, min_size=1, max_size=8), chunkSize=chunkSizes)
    def test_commands(self, prologue, lines, chunkSize):
        """
        Grammar-built POP3 commands get status answers, log no traceback,
        and leave a session that answers CAPA or ended.
        """
        self.connect(prologue)
        self.feed(b"".join(line + b"\r\n" for line in lines), chunkSize)
        self.check()
