# -*- test-case-name: tests.test_fuzz_ftp -*-
"""
Grammar-based fuzzing of the FTP control protocol with C{hypothesis}:
pipelined command lines built from the command table's verbs and hostile
arguments (paths with C{..}, control characters, long and non-UTF-8 text),
cut into random segments, before and after login.

Every input must get well-framed replies (no line a client could take for
another reply), no traceback in the log, bounded buffers, no file outside
the account's root, and a session that still answers NOOP unless it was
closed.  Short by default; C{GATEWAY_FUZZ=long} runs many more examples.
"""

import os
import queue

from twisted.internet.address import IPv4Address
from twisted.internet.defer import maybeDeferred
from twisted.internet.testing import MemoryReactorClock
from twisted.trial import unittest

try:
    from hypothesis import HealthCheck, example, given, settings
    from hypothesis import strategies as st
except ImportError:
    raise unittest.SkipTest("hypothesis is not installed (pip install '.[test]')")

from gateway.ftp import commands
from gateway.ftp.server import MAX_PENDING, MAX_PENDING_BEFORE_LOGIN, makeFactory
from tests.support import PASSWORD, makeTestContext
from tests.test_ftp import TLSStringTransport

#: Long mode (C{GATEWAY_FUZZ=long}): C{GATEWAY_FUZZ_EXAMPLES} examples (default 5,000) with fresh
#: randomness; by default few, and the same ones every run.
LONG = os.environ.get("GATEWAY_FUZZ", "").lower() == "long"
EXAMPLES = int(os.environ.get("GATEWAY_FUZZ_EXAMPLES", "5000")) if LONG else 150


class _FuzzReactor(MemoryReactorClock):
    """
    A memory reactor whose C{callFromThread} calls are kept for L{drain}:
    data connections never open, timers run by hand.
    """

    def __init__(self):
        MemoryReactorClock.__init__(self)
        self.fromThreads = queue.SimpleQueue()

    def callFromThread(self, f, *args, **kwargs):
        self.fromThreads.put((f, args, kwargs))

    def drain(self):
        while True:
            try:
                f, args, kwargs = self.fromThreads.get_nowait()
            except queue.Empty:
                return
            f(*args, **kwargs)


class _SyncPool:
    """
    File-system commands run at once (deterministic examples).
    """

    def run(self, f, *args):
        return maybeDeferred(f, *args)

    def stop(self):
        pass


_SEGMENTS = ["..", ".", "", "a", "dir", "private", ".~gateway-x", "Grüße", "x\r226 Injected", "\x00", "\\",
             "~", "*", "-la", "sub dir", "\x1b[2J", "a\nb", "%2e%2e"]

_paths = st.builds(
    lambda lead, segments: lead + "/".join(segments),
    st.sampled_from(["", "/", "//", "../"]),
    st.lists(st.sampled_from(_SEGMENTS), max_size=6),
)

_arguments = st.one_of(
    st.just(""),
    _paths,
    _paths,
    st.sampled_from(["dir\r226 Injected", "a\x00b", "x\n230 Logged in", "\x7f", "bell\x07"]),
    st.integers(-5, 2 ** 70).map(str),
    st.sampled_from(["TLS", "SSL", "tls-c", "P", "C", "S", "E", "I", "A", "L 8", "UTF8 ON", "UTF8 OFF", "0",
                     "MLST type;", "|1|192.0.2.7|5000|", "|2|::1|5000|", "|x|", "192,0,2,7,19,137", "1,2,3",
                     "ALL", "demo", "demo@example.test", "anonymous", PASSWORD]),
    st.text(max_size=40),
    st.integers(8000, 9000).map(lambda n: "x" * n),
)

_verbs = st.one_of(
    st.sampled_from(sorted(commands.COMMANDS)),
    st.sampled_from(sorted(commands.COMMANDS)).map(str.lower),
    st.sampled_from(["", "XYZZY", "SITE", "STOU", "ACCT", "\xff\xf4\xf2ABOR", "NOOP\x00"]),
)


def _line(verb, argument, spaced, ending):
    text = verb + (" " + argument if argument or spaced else "")
    return text.encode("utf-8", "surrogateescape") + ending


_commandLines = st.builds(
    _line, _verbs, _arguments, st.booleans(), st.sampled_from([b"\r\n", b"\r\n", b"\n", b"\r\r\n"]))

_lines = st.one_of(_commandLines, _commandLines, _commandLines, st.binary(max_size=60).map(lambda b: b + b"\r\n"))

_scripts = st.builds(
    lambda login, lines, cuts: (login, b"".join(lines), cuts),
    st.booleans(),
    st.lists(_lines, max_size=25),
    st.lists(st.integers(0, 4000), max_size=6),
)


def _checkFraming(test, output):
    """
    Every line of the output is a reply line (C{NNN text} or C{NNN-text})
    or a continuation line starting with a space, ended by CRLF.
    """
    text = output.decode("utf-8", "surrogateescape")
    if not text:
        return
    test.assertTrue(text.endswith("\r\n"), text[-80:])
    for line in text[:-2].split("\r\n"):
        test.assertNotIn("\r", line)
        test.assertNotIn("\n", line)
        if line.startswith(" "):
            continue
        test.assertRegex(line, r"\A[1-5]\d\d[ -]")


class FTPFuzzTests(unittest.TestCase):
    def setUp(self):
        self.reactor = _FuzzReactor()
        self.context = makeTestContext(self, reactor=self.reactor, clock=self.reactor)
        self.factory = makeFactory(self.context)
        self.factory.clock = self.reactor
        self.factory._pools["fs"] = _SyncPool()
        self.account = self.context.realm.accountFor("demo@example.test")
        self.root = self.account.fileStore.root.path
        self.dataRoot = self.context.config.dataRoot()
        self.outside = self._outsideRoot()

    def _outsideRoot(self):
        """
        Every path in the data root but the account's file root.
        """
        found = set()
        for dirpath, dirnames, filenames in os.walk(self.dataRoot):
            if dirpath == self.root or dirpath.startswith(self.root + os.sep):
                continue
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                if path != self.root:
                    found.add(path)
        return found

    def _session(self):
        session = self.factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 40000))
        transport = TLSStringTransport(
            hostAddress=IPv4Address("TCP", "192.0.2.1", 21), peerAddress=IPv4Address("TCP", "192.0.2.7", 40000))
        session.makeConnection(transport)
        return session, transport

    def _feed(self, session, transport, data):
        """
        Deliver C{data}, run what it started, and move what was answered
        to C{self.output}.
        """
        session.dataReceived(data)
        self.reactor.advance(0)
        self.reactor.drain()
        self.output.append(transport.value())
        transport.clear()
        if not transport.disconnecting:
            # (What follows QUIT stays unread until the connection closes.)
            self.assertLessEqual(len(session._buffer), session.MAX_LENGTH + 1)
        limit = MAX_PENDING if session.account is not None else MAX_PENDING_BEFORE_LOGIN
        self.assertLessEqual(session._queued, limit)

    @settings(max_examples=EXAMPLES, derandomize=not LONG, database=None, print_blob=True, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(_scripts)
    @example((False, b"USER demo\r230 Logged in\r\nNOOP\r\n", []))
    @example((True, b"MKD dir\r226 Injected\r\nMKD a\x00b\r\nRNFR x\x1b[2J\r\n", [3, 9]))
    @example((False, b"AUTH TLS\r\nUSER demo\r\nPASS " + PASSWORD.encode() + b"\r\nPWD\r\n", [12]))
    @example((True, b"CWD ../../..\r\nMKD ../escape\r\nRNFR /private\r\nRNTO ../../moved\r\n", []))
    @example((False, b"NOOP " + b"x" * 20000 + b"\r\nNOOP\r\n", [4000, 9000]))
    def test_anyInput(self, script):
        """Any pipelined input, cut anywhere, gets well-framed replies, no logged traceback, no file outside the root, and the session goes on."""
        login, data, cuts = script
        self.output = []
        session, transport = self._session()
        try:
            if login:
                self._feed(session, transport, b"USER demo\r\nPASS " + PASSWORD.encode() + b"\r\n")
            points = sorted({min(cut, len(data)) for cut in cuts} | {0, len(data)})
            for start, end in zip(points, points[1:], strict=False):
                if transport.disconnecting:
                    break
                self._feed(session, transport, data[start:end])
            if not transport.disconnecting and not session._busy:
                self._feed(session, transport, b"NOOP\r\n")
                self.assertTrue(self.output[-1].endswith(b"200 OK\r\n"), self.output[-1][-200:])
            _checkFraming(self, b"".join(self.output))
        finally:
            session.connectionLost(None)
            self.reactor.advance(3600)
            self.reactor.drain()
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual(self._outsideRoot(), self.outside)
        self.assertEqual(self.factory.sessions, set())
        self.assertEqual(self.factory.perAddress, {})
