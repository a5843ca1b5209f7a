# -*- test-case-name: tests.test_ftp -*-
"""
FTP control-protocol behaviour over C{StringTransport}.
"""

import gc
import os
import queue
import socket
import threading
import time
import weakref

from twisted.internet import defer, tcp
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.trial import unittest
from zope.interface import directlyProvides

from gateway.ftp import commands, data
from gateway.ftp.server import FTPSession, makeFactory
from gateway.ftp.workers import Workers
from tests.support import PASSWORD, makeTestContext


class TLSStringTransport(StringTransport):
    """
    A L{StringTransport} that records C{startTLS}.
    """

    tlsStarted = None

    def startTLS(self, contextFactory):
        self.tlsStarted = contextFactory
        directlyProvides(self, ISSLTransport)


class _SyncPool:
    """
    File-system commands run at once.
    """

    def run(self, f, *args):
        return defer.maybeDeferred(f, *args)

    def stop(self):
        pass


class _Connected(data.PassiveListener):
    """
    A passive setup whose data connection C{dp} is already there.
    """

    def __init__(self, dp):
        self.dp = dp
        self.connected = defer.succeed(dp)

    def wait(self):
        return defer.succeed(self.dp)

    def stop(self):
        pass


class _HandshakeTransport(StringTransport):
    """
    A data connection transport with a clock and a TLS handle that saw no
    close_notify.
    """

    def __init__(self, clock):
        StringTransport.__init__(self)
        self.reactor = clock

    def setTcpNoDelay(self, enabled):
        pass

    def startTLS(self, contextFactory, normal=True):
        pass

    def getHandle(self):
        return self

    def get_shutdown(self):
        return 0


class SessionTests(unittest.TestCase):
    def connect(self, cleartextLogin=True, **options):
        if not hasattr(self, "factory") or options or not cleartextLogin:
            self.context = makeTestContext(self, cleartextLogin=cleartextLogin)
            for name, value in options.items():
                self.context.config._values["ftp", name] = value
            self.factory = makeFactory(self.context)
            self.clock = self.factory.clock = Clock()
        session = self.factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 40000))
        transport = TLSStringTransport(
            hostAddress=IPv4Address("TCP", "192.0.2.1", 21), peerAddress=IPv4Address("TCP", "192.0.2.7", 40000)
        )
        session.makeConnection(transport)
        self.assertTrue(transport.value().startswith(b"220 "))
        transport.clear()
        return session, transport

    def send(self, session, transport, line):
        transport.clear()
        session.dataReceived(line.encode("utf-8") + b"\r\n")
        return transport.value().decode("utf-8")

    def login(self, session, transport):
        self.assertTrue(self.send(session, transport, "USER demo").startswith("331"))
        self.assertTrue(self.send(session, transport, "PASS " + PASSWORD).startswith("230"))

    def test_featFromTable(self):
        """FEAT lists UTF8 and every feature the command table names."""
        s, t = self.connect()
        reply = self.send(s, t, "FEAT")
        self.assertTrue(reply.startswith("211-"))
        for row in commands.COMMANDS.values():
            if row.feature:
                self.assertIn(" " + row.feature + "\r\n", reply)
        self.assertIn(" UTF8\r\n", reply)

    def test_help(self):
        """HELP lists every command; HELP VERB gives its syntax; an unknown one gets 501."""
        s, t = self.connect()
        reply = self.send(s, t, "HELP")
        for name in commands.COMMANDS:
            self.assertIn(name, reply)
        self.assertTrue(self.send(s, t, "HELP mlsd").startswith("214 Syntax: MLSD"))
        self.assertTrue(self.send(s, t, "HELP BOGUS").startswith("501"))

    def test_unknownCommandContinues(self):
        """An unknown command gets 500 and the session goes on."""
        s, t = self.connect()
        self.assertTrue(self.send(s, t, "XYZZY now").startswith("500"))
        self.assertEqual(self.send(s, t, "NOOP"), "200 OK\r\n")

    def test_undecodableLine(self):
        """A line that is not UTF-8 gets an error reply, not a disconnect."""
        s, t = self.connect()
        s.dataReceived(b"\xff\xfe\x80 x\r\n")
        self.assertTrue(t.value().startswith(b"500"))
        self.assertFalse(t.disconnecting)

    def test_lineTooLong(self):
        """An over-long command line gets 500 and the session goes on."""
        s, t = self.connect()
        s.dataReceived(b"NOOP " + b"x" * 10000 + b"\r\n")
        self.assertIn(b"500", t.value())
        self.assertFalse(t.disconnecting)

    def test_pendingCommandsBoundedBeforeLogin(self):
        """Before login, commands pipelined behind a pending one are held up to a few KB; past that 421 and the connection closes."""
        s, t = self.connect()
        s._busy = True  # as while a wrong password is being delayed
        s.dataReceived(b"NOOP " + b"x" * 1000 + b"\r\n")
        self.assertFalse(t.disconnecting)
        s.dataReceived(b"".join(b"NOOP " + b"x" * 1000 + b"\r\n" for _ in range(100)))
        self.assertTrue(t.value().startswith(b"421 "), t.value())
        self.assertTrue(t.disconnecting)
        self.assertLessEqual(sum(map(len, s._queue)), 16 * 1024)

    def test_pendingCommandsAfterLogin(self):
        """After login a client may pipeline many commands behind a pending one; they run in order."""
        s, t = self.connect()
        self.login(s, t)
        s._busy = True
        t.clear()
        s.dataReceived(b"NOOP\r\n" * 500)
        self.assertEqual(t.value(), b"")
        s._done(None)
        self.assertEqual(t.value(), b"200 OK\r\n" * 500)

    def test_loginRequired(self):
        """File commands before login get 530."""
        s, t = self.connect()
        for line in ("LIST", "RETR x", "PWD", "PASV", "CWD /"):
            self.assertTrue(self.send(s, t, line).startswith("530"), line)

    def test_anonymousRefused(self):
        """USER anonymous gets 530 and PASS then has no user."""
        s, t = self.connect()
        self.assertTrue(self.send(s, t, "USER anonymous").startswith("530"))
        self.assertTrue(self.send(s, t, "PASS guest@").startswith("503"))

    def test_login(self):
        """USER/PASS with the right password logs in; PWD shows the root."""
        s, t = self.connect()
        self.login(s, t)
        self.assertEqual(s.account.address, "demo@example.test")
        self.assertEqual(self.send(s, t, "PWD"), '257 "/" is the current folder\r\n')

    def test_wrongPassword(self):
        """A wrong password gets 530 and no account."""
        s, t = self.connect()
        self.send(s, t, "USER demo@example.test")
        self.assertTrue(self.send(s, t, "PASS nope").startswith("530"))
        self.assertIsNone(s.account)

    def test_cleartextRefused(self):
        """Where the domain forbids clear-text login, USER without TLS gets 530 pointing to AUTH TLS."""
        s, t = self.connect(cleartextLogin=False)
        reply = self.send(s, t, "USER demo")
        self.assertTrue(reply.startswith("530"))
        self.assertIn("AUTH TLS", reply)

    def test_protectionNeedsTLS(self):
        """PBSZ and PROT need a protected control channel."""
        s, t = self.connect()
        self.assertTrue(self.send(s, t, "PBSZ 0").startswith("503"))
        self.assertTrue(self.send(s, t, "PROT P").startswith("503"))
        self.assertTrue(self.send(s, t, "AUTH GSSAPI").startswith("504"))

    def test_authTLSDiscardsPipelined(self):
        """Commands pipelined after AUTH TLS in the same segment are discarded, not run after the handshake."""
        s, t = self.connect()
        out = self.send(s, t, "AUTH TLS\r\nUSER demo@example.test\r\nPASS " + PASSWORD)
        self.assertEqual(out, "234 AUTH TLS successful\r\n")
        self.assertIs(t.tlsStarted, self.context.tls)
        self.assertIsNone(s.user)
        self.assertIsNone(s.account)
        self.assertEqual(self.send(s, t, "NOOP"), "200 OK\r\n")
        self.assertTrue(self.send(s, t, "PASS " + PASSWORD).startswith("503"))

    def test_authTLSDiscardsQueued(self):
        """Commands queued behind a pending one and behind AUTH TLS are discarded when TLS starts."""
        s, t = self.connect()
        s._busy = True  # as while a login is being checked
        s.dataReceived(("AUTH TLS\r\nUSER demo\r\nPASS %s\r\n" % (PASSWORD,)).encode())
        self.assertEqual(t.value(), b"")
        s._done(None)
        self.assertEqual(t.value(), b"234 AUTH TLS successful\r\n")
        self.assertIsNone(s.account)
        self.assertEqual(list(s._queue), [])

    def test_controlCharactersInArguments(self):
        """A CR, NUL or other control character inside an argument gets 501, creates nothing, and the session goes on."""
        s, t = self.connect()
        self.login(s, t)
        root = s.account.fileStore.root.path
        before = sorted(os.listdir(root))
        for line in ("MKD dir\r226 Injected", "MKD a\x00b", "MKD bell\x07", "RNFR x\x1b[2J", "CWD /\x7f",
                     "STOR evil\rname"):
            reply = self.send(s, t, line)
            self.assertTrue(reply.startswith("501 "), (line, reply))
            self.assertEqual(reply.count("\r\n"), 1, reply)
            self.assertNotIn("Injected", reply)
        self.assertEqual(sorted(os.listdir(root)), before)
        self.assertEqual(self.send(s, t, "NOOP"), "200 OK\r\n")

    def test_controlCharactersBeforeLogin(self):
        """USER with a CR inside gets 501: the name is not echoed into a second reply line."""
        s, t = self.connect()
        reply = self.send(s, t, "USER demo\r230 Logged in")
        self.assertTrue(reply.startswith("501 "), reply)
        self.assertNotIn("230", reply)
        self.assertIsNone(s.user)

    def test_replyNeverCarriesLineBreaks(self):
        """A reply text or line holding CR, LF or NUL (a file name from disk, say) is sent as one line each."""
        s, t = self.connect()
        s.reply(213, "Status of a\r\n226 Injected", ["name\n226 Injected", "x\ry\x00z"])
        lines = t.value().split(b"\r\n")
        self.assertEqual(lines, [b"213-Status of a??226 Injected", b" name?226 Injected", b" x?y?z", b"213 End", b""])

    def test_protectedListingWithoutHandshake(self):
        """A PROT P listing whose client never completes the TLS handshake is cut off after the timeout and answered 426, not 226."""
        s, t = self.connect()
        self.login(s, t)
        self.factory._pools["fs"] = _SyncPool()
        dp = data.DataProtocol(tls=object())
        dp.factory = s.data = _Connected(dp)
        dp.makeConnection(_HandshakeTransport(self.clock))
        out = self.send(s, t, "NLST private")
        self.assertTrue(out.startswith("150 "), out)
        t.clear()
        self.clock.advance(data.HANDSHAKE_TIMEOUT)
        self.assertTrue(dp.transport.disconnected)
        dp.connectionLost(None)
        self.assertTrue(t.value().startswith(b"426 "), t.value())

    def test_portOnlyToClient(self):
        """PORT and EPRT refuse another host (no bounce), privileged ports and bad syntax."""
        s, t = self.connect()
        self.login(s, t)
        self.assertTrue(self.send(s, t, "PORT 198,51,100,1,200,10").startswith("501"))
        self.assertTrue(self.send(s, t, "EPRT |1|198.51.100.1|5000|").startswith("501"))
        self.assertTrue(self.send(s, t, "PORT 192,0,2,7,0,21").startswith("501"))
        self.assertTrue(self.send(s, t, "PORT 1,2,3").startswith("501"))
        self.assertTrue(self.send(s, t, "EPRT |1|192.0.2.7|5000|").startswith("200"))
        self.assertEqual(s.data, ("active", "192.0.2.7", 5000))

    def test_settings(self):
        """TYPE, MODE, STRU, OPTS and REST accept what is supported and refuse the rest."""
        s, t = self.connect()
        self.login(s, t)
        self.assertTrue(self.send(s, t, "TYPE A").startswith("200"))
        self.assertFalse(s.binary)
        self.assertTrue(self.send(s, t, "TYPE I").startswith("200"))
        self.assertTrue(self.send(s, t, "TYPE X").startswith("504"))
        self.assertTrue(self.send(s, t, "MODE B").startswith("504"))
        self.assertTrue(self.send(s, t, "STRU R").startswith("504"))
        self.assertTrue(self.send(s, t, "OPTS UTF8 ON").startswith("200"))
        self.assertTrue(self.send(s, t, "REST abc").startswith("501"))
        self.assertTrue(self.send(s, t, "REST 100").startswith("350"))
        self.assertEqual(s.restOffset, 100)
        self.assertTrue(self.send(s, t, "RNTO x").startswith("503"))

    def test_asciiModeRefusesSizeAndRest(self):
        """A session starts in TYPE A (RFC 959); there SIZE gets 550 and REST 501 (as pyftpdlib); TYPE I allows them."""
        s, t = self.connect()
        self.login(s, t)
        self.assertIn("TYPE: ASCII", self.send(s, t, "STAT"))
        self.assertTrue(self.send(s, t, "SIZE anything").startswith("550 SIZE not allowed"))
        self.assertTrue(self.send(s, t, "REST 10").startswith("501"))
        self.assertIsNone(s.restOffset)
        self.send(s, t, "TYPE I")
        self.assertTrue(self.send(s, t, "REST 10").startswith("350"))

    def test_idleTimeout(self):
        """An idle session gets 421 and is closed after [ftp] idle_timeout seconds."""
        s, t = self.connect(idle_timeout=30)
        self.clock.advance(29)
        self.assertFalse(t.disconnecting)
        self.send(s, t, "NOOP")
        self.clock.advance(29)
        self.assertFalse(t.disconnecting)
        t.clear()
        self.clock.advance(2)
        self.assertTrue(t.value().startswith(b"421"))
        self.assertTrue(t.disconnecting)

    def test_totalLimit(self):
        """Past [ftp] max_connections a new connection gets 421."""
        self.connect(max_connections=1)
        extra = self.factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 40001))
        self.assertNotIsInstance(extra, FTPSession)
        t = StringTransport()
        extra.makeConnection(t)
        self.assertTrue(t.value().startswith(b"421"))
        self.assertTrue(t.disconnecting)

    def test_addressLimit(self):
        """Past [ftp] max_connections_per_address a new connection from that address gets 421; other addresses and a freed place get in."""
        s1, t1 = self.connect(max_connections_per_address=2)
        s2, t2 = self.connect()
        extra = self.factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 40009))
        self.assertNotIsInstance(extra, FTPSession)
        t = StringTransport()
        extra.makeConnection(t)
        self.assertTrue(t.value().startswith(b"421 Too many connections from your address"), t.value())
        self.assertTrue(t.disconnecting)
        self.assertIsInstance(self.factory.buildProtocol(IPv4Address("TCP", "198.51.100.1", 40000)), FTPSession)
        s1.connectionLost(None)
        self.assertIsInstance(self.factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 40010)), FTPSession)

    def test_addressLimitOff(self):
        """[ftp] max_connections_per_address = 0 sets no limit per address."""
        self.connect(max_connections_per_address=0)
        for port in range(50):
            self.assertIsInstance(self.factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 41000 + port)), FTPSession)

    def test_loginTimeout(self):
        """A connection not logged in [ftp] login_timeout seconds after it opened gets 421 and is closed, commands or not."""
        s, t = self.connect(login_timeout=20)
        self.clock.advance(10)
        self.assertEqual(self.send(s, t, "NOOP"), "200 OK\r\n")
        self.send(s, t, "USER demo")
        t.clear()
        self.clock.advance(11)
        self.assertTrue(t.value().startswith(b"421 "), t.value())
        self.assertTrue(t.disconnecting)

    def test_loginTimeoutEndsAtLogin(self):
        """Once logged in, only the idle timeout applies."""
        s, t = self.connect(login_timeout=20, idle_timeout=900)
        self.clock.advance(15)
        self.login(s, t)
        self.clock.advance(100)
        self.assertFalse(t.disconnecting)
        self.clock.advance(801)
        self.assertTrue(t.disconnecting)

    def test_accountLimit(self):
        """Past [ftp] max_connections_per_account a login gets 421; a logout frees the place."""
        s1, t1 = self.connect(max_connections_per_account=1)
        self.login(s1, t1)
        s2, t2 = self.connect()
        self.send(s2, t2, "USER demo.user")
        self.assertTrue(self.send(s2, t2, "PASS " + PASSWORD).startswith("421"))
        s1.connectionLost(None)
        s3, t3 = self.connect()
        self.login(s3, t3)

    def test_quit(self):
        """QUIT answers 221 and closes."""
        s, t = self.connect()
        self.assertTrue(self.send(s, t, "QUIT").startswith("221"))
        self.assertTrue(t.disconnecting)


class _Pieces:
    """
    A file object that hands out the given pieces, one per read.
    """

    def __init__(self, pieces):
        self.pieces = list(pieces)
        self.closed = False

    def read(self, size=-1):
        return self.pieces.pop(0) if self.pieces else b""

    def close(self):
        self.closed = True


class ASCIIConversionTests(unittest.TestCase):
    def convert(self, converter, pieces):
        reader = data.ConvertingReader(_Pieces(pieces), converter)
        out = []
        while True:
            chunk = reader.read(65536)
            if not chunk:
                return b"".join(out)
            out.append(chunk)

    def test_encodeBareLF(self):
        """Downloads in TYPE A turn every bare LF into CRLF."""
        self.assertEqual(self.convert(data.ASCIIEncoder(), [b"a\nb\n\nc"]), b"a\r\nb\r\n\r\nc")

    def test_encodeKeepsCRLFAndLoneCR(self):
        """CRLF is not doubled and a lone CR passes, also when a CR ends one piece and its LF starts the next."""
        pieces = [b"a\r\nb\r", b"\nc\r", b"\r\nd\r", b"e\n"]
        self.assertEqual(self.convert(data.ASCIIEncoder(), pieces), b"a\r\nb\r\nc\r\r\nd\re\r\n")

    def test_encodePieceBoundaries(self):
        """Cut anywhere, the encoded stream is the same as in one piece."""
        text = b"one\ntwo\r\nthree\rfour\r\r\n\n"
        whole = self.convert(data.ASCIIEncoder(), [text])
        for cut in range(1, len(text)):
            self.assertEqual(self.convert(data.ASCIIEncoder(), [text[:cut], text[cut:]]), whole, cut)

    def test_decodeCRLF(self):
        """Uploads in TYPE A turn CRLF into LF and keep lone CRs and bare LFs."""
        self.assertEqual(self.convert(data.ASCIIDecoder(), [b"a\r\nb\rc\nd\r\n"]), b"a\nb\rc\nd\n")

    def test_decodePieceBoundaries(self):
        """A CR at the end of one piece and an LF at the start of the next become one LF; a final CR is kept."""
        self.assertEqual(self.convert(data.ASCIIDecoder(), [b"a\r", b"\nb\r", b"\r", b"\nc\r"]), b"a\nb\r\nc\r")
        text = b"x\r\ny\r\r\nz\r"
        for cut in range(1, len(text)):
            self.assertEqual(self.convert(data.ASCIIDecoder(), [text[:cut], text[cut:]]), b"x\ny\r\nz\r", cut)

    def test_readerCloses(self):
        """Closing the converting reader closes the file under it."""
        source = _Pieces([b"x"])
        data.ConvertingReader(source, data.ASCIIEncoder()).close()
        self.assertTrue(source.closed)


class _ThreadReactor:
    """
    Collects what worker threads hand back with C{callFromThread}.
    """

    def __init__(self):
        self.calls = queue.SimpleQueue()

    def callFromThread(self, f, *args):
        self.calls.put((f, args))

    def runNext(self):
        f, args = self.calls.get(timeout=10)
        f(*args)


class _Held:
    """
    Something a worker is given (a bound method's owner, an argument).
    """

    def __init__(self, gate=None):
        self.gate = gate

    def give(self, other):
        return other

    def giveAfterGate(self, other):
        self.gate.wait(10)
        return other


class _RecordingQueue:
    """
    A workers' queue that keeps a weak reference to every call put in it.
    """

    def __init__(self, queue):
        self.queue = queue
        self.calls = []

    def put(self, call):
        if call is not None:
            self.calls.append(weakref.ref(call))
        self.queue.put(call)

    def get(self):
        return self.queue.get()


class WorkersTests(unittest.TestCase):
    def workers(self, wait):
        self.reactor = _ThreadReactor()
        workers = Workers(self.reactor, 2, "test", wait=wait)
        self.addCleanup(workers.stop)
        return workers

    def test_fastCallAnsweredAtOnce(self):
        """A call that finishes within the wait runs in a worker and has its result, or its exception, when run() returns."""
        workers = self.workers(wait=10)
        main = threading.current_thread()
        done = workers.run(lambda a, b: (a + b, threading.current_thread() is main), 2, 3)
        self.assertEqual(self.successResultOf(done), (5, False))
        self.failureResultOf(workers.run(os.stat, "/nonexistent/gateway-test"), FileNotFoundError)
        self.assertTrue(workers.waiting)

    def test_slowCallAnsweredLater(self):
        """A call still running after the wait answers through callFromThread; run() then stops waiting until a call is fast."""
        # Long enough that the fast call below is fast on a loaded machine.
        workers = self.workers(wait=0.5)
        gate = threading.Event()
        slow = workers.run(gate.wait, 10)
        self.assertNoResult(slow)
        self.assertFalse(workers.waiting)
        gate.set()
        self.reactor.runNext()
        self.assertTrue(self.successResultOf(slow))
        self.assertFalse(workers.waiting)
        fast = workers.run(int, "7")
        if not fast.called:
            self.reactor.runNext()
        self.assertEqual(self.successResultOf(fast), 7)
        self.assertTrue(workers.waiting)

    def test_answeredCallNotKept(self):
        """Once a call is answered, its worker keeps neither its function, its arguments nor its result (after a soak, an idle worker kept the last session's file store, and through its quota the account's closed mail store)."""
        workers = self.workers(wait=10)
        owner, argument = _Held(), _Held()
        refs = [weakref.ref(owner), weakref.ref(argument)]
        self.assertIs(self.successResultOf(workers.run(owner.give, argument)), argument)
        del owner, argument
        gc.collect()
        self.assertEqual([ref() for ref in refs], [None, None])

    def test_answeredCallObjectNotKept(self):
        """Once a call is answered, its worker does not keep the call object itself (with its locks: blocks made during traffic that an idle worker kept in the arenas)."""
        workers = self.workers(wait=10)
        recording = _RecordingQueue(workers._queue)
        workers._queue = recording
        self.assertEqual(self.successResultOf(workers.run(int, "7")), 7)
        gc.collect()
        self.assertEqual([ref() for ref in recording.calls], [None])

    def test_lateCallNotKept(self):
        """A call answered through callFromThread is not kept either, by its worker or by the call."""
        workers = self.workers(wait=0.01)
        gate = threading.Event()
        owner, argument = _Held(gate), _Held()
        refs = [weakref.ref(owner), weakref.ref(argument)]
        late = workers.run(owner.giveAfterGate, argument)
        self.assertNoResult(late)
        gate.set()
        self.reactor.runNext()
        self.assertIs(self.successResultOf(late), argument)
        del owner, argument, late
        gc.collect()
        self.assertEqual([ref() for ref in refs], [None, None])

    def test_stopFinishesQueued(self):
        """stop() lets the queued calls finish, then ends every thread."""
        workers = self.workers(wait=0.01)
        gate = threading.Event()
        results = [workers.run(gate.wait, 10) for _ in range(3)]
        threads = list(workers._threads)
        gate.set()
        workers.stop()
        self.assertFalse(any(thread.is_alive() for thread in threads))
        for _ in results:
            self.reactor.runNext()
        for d in results:
            self.assertTrue(self.successResultOf(d))


class ProtectedCloseTests(unittest.TestCase):
    def connect(self):
        dp = data.DataProtocol(tls=object())
        dp.transport = StringTransport()
        dp.transport.reactor = self.clock = Clock()
        return dp

    def test_closeWaitsForHandshake(self):
        """Closing a PROT P data connection before the client's TLS handshake completes waits for it, then closes cleanly."""
        dp = self.connect()
        dp.close()
        self.assertFalse(dp.transport.disconnecting)
        dp.handshakeCompleted()
        self.assertTrue(dp.transport.disconnecting)
        self.assertFalse(dp.transport.disconnected)  # loseConnection (close_notify), not an abort

    def test_handshakeTimeout(self):
        """A client that never completes the handshake is cut off after HANDSHAKE_TIMEOUT seconds."""
        dp = self.connect()
        dp.close()
        self.clock.advance(data.HANDSHAKE_TIMEOUT - 1)
        self.assertFalse(dp.transport.disconnecting)
        self.clock.advance(1)
        self.assertTrue(dp.transport.disconnected)
        dp.handshakeCompleted()  # too late: nothing more happens

    def test_clearClosesAtOnce(self):
        """A clear data connection closes at once."""
        dp = data.DataProtocol()
        dp.transport = StringTransport()
        dp.close()
        self.assertTrue(dp.transport.disconnecting)


class WriteNowTests(unittest.TestCase):
    def test_sendsAtOnceThenQueuesInOrder(self):
        """On a clear TCP connection writeNow sends at once; what the socket does not take is queued, and later writes go behind it."""
        ours, theirs = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(theirs.close)
        ours.setblocking(False)
        reactor = MemoryReactor()
        connection = tcp.Server(ours, Protocol(), ("192.0.2.7", 40000), None, 1, reactor)
        theirs.settimeout(10)
        data.writeNow(connection, b"220 ready\r\n")
        self.assertEqual(theirs.recv(100), b"220 ready\r\n")
        self.assertNotIn(connection, reactor.getWriters())

        big = os.urandom(4 * 1024 * 1024)
        data.writeNow(connection, big)
        data.writeNow(connection, b"tail")
        self.assertIn(connection, reactor.getWriters())
        received = []
        theirs.setblocking(False)
        while connection in reactor.getWriters() or sum(map(len, received)) < len(big) + 4:
            try:
                received.append(theirs.recv(1024 * 1024))
            except BlockingIOError:
                connection.doWrite()
        self.assertEqual(b"".join(received), big + b"tail")


class SessionClosedLogTests(unittest.TestCase):
    def test_logged(self):
        """An FTP session that ends is logged with its account, duration and control-channel bytes, as the others are."""
        from twisted.logger import globalLogPublisher

        from gateway.ftp.server import FTPSession
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        session = FTPSession.__new__(FTPSession)
        session.since = 100.0
        session.bytesIn, session.bytesOut = 20, 300

        class Account:
            address = "demo@example.test"

        session.account = Account()
        session.transport = StringTransport()
        self.patch(time, "time", lambda: 112.5)
        session._logClosed()
        [event] = [e for e in events if "session closed" in e.get("log_format", "")]
        self.assertEqual((event["user"], event["bytesIn"], event["bytesOut"], event["duration"]),
                         ("demo@example.test", 20, 300, 12.5))
