# -*- test-case-name: tests.test_fuzz_lmtp -*-
"""
Fuzz tests for the LMTP session and the socketmap service, with
C{hypothesis}: sessions built from the LMTP grammar (good and bad commands,
addresses with sub-addresses and control characters, DATA with dot lines,
long lines and missing ends, junk), fed in packets of any size.  Every input
gets well-formed replies, no traceback is logged, the session still answers
afterwards (or said why it ended), and nothing is left in the spool or in a
mailbox's C{tmp/}.

Short by default (derandomized, a few hundred examples in all); set
C{GATEWAY_FUZZ=long} for a long run.
"""

import glob
import os
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.defer import maybeDeferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from gateway.lmtp.server import LMTPServer, spoolFolder
from gateway.lmtp.socketmap import SocketmapServer
from tests.support import makeTestContext

LONG = os.environ.get("GATEWAY_FUZZ") == "long"
FUZZ = settings(
    max_examples=5000 if LONG else 60,
    derandomize=not LONG,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_REPLY = re.compile(rb"^[2-5]\d\d[ -]")

locals_ = st.sampled_from([b"demo", b"Demo.User", b"other", b"nobody", b"demo+Calendar", b"demo+", b"+x", b""])
domains = st.sampled_from([b"example.test", b"EXAMPLE.TEST", b"example.org", b"", b"[127.0.0.1]"])
junk = st.binary(max_size=40)
addresses = st.one_of(
    st.builds(lambda local, d: local + b"@" + d, locals_, domains),
    junk,
    st.builds(lambda a, c: a + c, st.just(b"demo@example.test"), st.sampled_from([b"\n", b"\r", b"\x00", b">"])),
)
params = st.lists(st.sampled_from([b"SIZE=10", b"SIZE=99999999999", b"SIZE=x", b"BODY=8BITMIME", b"X=1", b"="]),
                  max_size=3).map(lambda ps: b"".join(b" " + p for p in ps))
bodyLines = st.lists(
    st.one_of(st.sampled_from([b"", b".", b"..", b".x", b"Subject: fuzz", b"Message-ID: <f@x>", b" folded"]),
              st.binary(max_size=30).map(lambda b: b.replace(b"\r\n", b"")),
              st.sampled_from([5000, 70000]).map(lambda n: b"y" * n)),
    max_size=8,
)


@st.composite
def commands(draw):
    kind = draw(st.sampled_from(["LHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "VRFY", "HELO", "junk", "long",
                                 "message"]))
    if kind == "LHLO":
        return b"LHLO " + draw(st.sampled_from([b"mta.example.org", b"", b"x y"])) + b"\r\n"
    if kind == "MAIL":
        return b"MAIL FROM:<" + draw(addresses) + b">" + draw(params) + b"\r\n"
    if kind == "RCPT":
        return draw(st.sampled_from([b"RCPT TO:<", b"rcpt to: <", b"RCPT TO:"])) + draw(addresses) + b">\r\n"
    if kind == "message":
        # DATA and a message, ended or (at the end of a session) not.
        lines = draw(bodyLines)
        end = draw(st.sampled_from([b".\r\n", b".\r\n", b""]))
        return b"DATA\r\n" + b"".join(line + b"\r\n" for line in lines) + end
    if kind == "junk":
        return draw(junk) + b"\r\n"
    if kind == "long":
        return b"NOOP " + b"z" * draw(st.integers(4000, 9000)) + b"\r\n"
    return kind.encode() + draw(st.sampled_from([b"", b" x"])) + b"\r\n"


@st.composite
def transactions(draw):
    """
    A transaction that may well deliver: LHLO, MAIL, recipients, a message.
    """
    recipients = draw(st.lists(addresses, min_size=1, max_size=3))
    lines = draw(bodyLines)
    return (b"LHLO mta.example.org\r\nMAIL FROM:<" + draw(addresses) + b">" + draw(params) + b"\r\n"
            + b"".join(b"RCPT TO:<" + r + b">\r\n" for r in recipients)
            + b"DATA\r\n" + b"".join(line + b"\r\n" for line in lines) + b".\r\n")


sessions = st.lists(st.one_of(commands(), transactions()), max_size=10).map(b"".join)
packetSizes = st.lists(st.integers(1, 20000), min_size=1, max_size=8)


def packets(data, sizes):
    position, i = 0, 0
    while position < len(data):
        size = sizes[i % len(sizes)]
        yield data[position:position + size]
        position += size
        i += 1


class LMTPFuzzTests(unittest.TestCase):
    def setUp(self):
        self.context = makeTestContext(self)
        self.failures = []

        def observe(event):
            if event.get("log_failure") is not None or event.get("isError"):
                self.failures.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)

    @FUZZ
    @given(sessions, packetSizes)
    def test_session(self, data, sizes):
        """Any session gets well-formed replies, logs no traceback, still answers NOOP (or ended with a
        reason), and leaves nothing in the spool or in tmp/."""
        transport = StringTransport()
        proto = LMTPServer(self.context, clock=Clock(), runInThread=maybeDeferred)
        proto.makeConnection(transport)
        try:
            for packet in packets(data, sizes):
                proto.dataReceived(packet)
                if transport.disconnecting:
                    break
            if proto._data is None and not transport.disconnecting:
                transport.clear()
                proto.dataReceived(b"RSET\r\nNOOP\r\n")
                self.assertEqual(transport.value().splitlines()[-1], b"250 2.0.0 ok")
            lines = transport.value().split(b"\r\n")
        finally:
            proto.connectionLost(None)
        self.assertEqual(lines[-1], b"")
        for line in lines[:-1]:
            self.assertRegex(line, _REPLY)
        self.assertEqual(self.failures, [])
        self.assertEqual(os.listdir(spoolFolder(self.context.config)) if os.path.isdir(
            spoolFolder(self.context.config)) else [], [])
        self.assertEqual(glob.glob(os.path.join(self.context.config.dataRoot(), "domains", "*", "accounts", "*",
                                                "mail", "*", "tmp", "*")), [])


netstrings = st.one_of(
    st.builds(lambda name, key: b"%d:%s %s," % (len(name) + 1 + len(key), name, key),
              st.sampled_from([b"virtual", b"domain", b"VIRTUAL", b"x", b""]),
              st.one_of(addresses, st.sampled_from([b"@example.test", b"example.test", b""]))),
    st.binary(max_size=30),
    st.builds(lambda n, b: b"%d:%s" % (n, b), st.integers(0, 200000), st.binary(max_size=20)),
)


class SocketmapFuzzTests(unittest.TestCase):
    def setUp(self):
        self.context = makeTestContext(self)

    @FUZZ
    @given(st.lists(netstrings, max_size=6).map(b"".join), packetSizes)
    def test_requests(self, data, sizes):
        """Any bytes get netstring replies of the socketmap kinds, or the connection is closed."""
        transport = StringTransport()
        proto = SocketmapServer(self.context.directory, timeout=300, clock=Clock())
        proto.makeConnection(transport)
        for packet in packets(data, sizes):
            proto.dataReceived(packet)
            if transport.disconnecting:
                break
        reply = transport.value()
        while reply:
            length, colon, rest = reply.partition(b":")
            self.assertTrue(colon and length.isdigit(), reply)
            value, reply = rest[:int(length)], rest[int(length):]
            self.assertEqual(reply[:1], b",")
            reply = reply[1:]
            self.assertRegex(value, rb"^(OK .+|NOTFOUND |TEMP .+|PERM .+)$")
        proto.connectionLost(None)
