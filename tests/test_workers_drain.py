# -*- test-case-name: tests.test_workers_drain -*-
"""
Graceful stop (L{gateway.drain}): sessions told to go, commands in flight
answered first, a bounded wait; with StringTransport, and end to end with
imaplib against twistd (one process and two workers).
"""

import poplib

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from gateway import drain
from gateway.interfaces import IDrainable
from tests.support import PASSWORD, makeTestContext

ACCOUNT = "demo@example.test"


class _Session:
    """
    A drainable session whose command in flight ends when the test says.
    """

    def __init__(self, factory, busy=False):
        self.factory = factory
        self.busy = busy
        self.told = []

    def drain(self, reason):
        self.told.append(reason)
        if not self.busy:
            self.close()

    def close(self):
        del self.factory.protocols[self.wrapper]


class _Wrapper:
    def __init__(self, protocol):
        self.wrappedProtocol = protocol


class _Factory:
    def __init__(self):
        self.protocols = {}

    def add(self, busy=False):
        from zope.interface import directlyProvides

        session = _Session(self, busy)
        directlyProvides(session, IDrainable)
        session.wrapper = _Wrapper(session)
        self.protocols[session.wrapper] = 1
        return session


class DrainTests(unittest.TestCase):
    """L{drain.drain} over fake factories and a L{Clock}."""

    def test_interface(self):
        """The IMAP and POP3 sessions provide IDrainable."""
        from gateway.imap.protocol import IMAPServer
        from gateway.pop3.server import POP3Server

        for session in (IMAPServer.__new__(IMAPServer), POP3Server.__new__(POP3Server)):
            self.assertTrue(verifyObject(IDrainable, session))

    def test_nothingOpen(self):
        """With no session the drain is over at once."""
        self.assertEqual(self.successResultOf(drain.drain({"imap": _Factory()}, Clock(), 10)), 0)

    def test_waitsForBusySessions(self):
        """Idle sessions go at once; the drain ends when the busy one has closed."""
        clock, factory = Clock(), _Factory()
        idle, busy = factory.add(), factory.add(busy=True)
        d = drain.drain({"imap": factory, "http": object()}, clock, 10)
        self.assertEqual((idle.told, busy.told), ([drain.REASON], [drain.REASON]))
        self.assertNoResult(d)
        clock.advance(1)
        self.assertNoResult(d)
        busy.close()
        clock.advance(drain.POLL)
        self.assertEqual(self.successResultOf(d), 0)

    def test_bounded(self):
        """A session still busy after the drain time is given up on (and counted)."""
        clock, factory = Clock(), _Factory()
        factory.add(busy=True)
        d = drain.drain({"imap": factory}, clock, 3)
        clock.pump([drain.POLL] * int(3 / drain.POLL + 2))
        self.assertEqual(self.successResultOf(d), 1)


class IMAPDrainTests(unittest.TestCase):
    """IMAPServer.drain with a StringTransport."""

    def session(self):
        from gateway.imap.protocol import COMMANDS, IMAPServer, command

        self.pending = defer.Deferred()
        if "XSLOW" not in COMMANDS:
            command("XSLOW", ["notauth", "auth", "selected"])(lambda session, tag, args: session._slow)
            self.addCleanup(COMMANDS.pop, "XSLOW")
        server = IMAPServer(makeTestContext(self, reactor=Clock()))
        server._slow = self.pending
        transport = StringTransport(hostAddress=IPv4Address("TCP", "127.0.0.1", 143),
                                    peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        server.makeConnection(transport)
        transport.clear()
        return server, transport

    def test_idleSessionGoesAtOnce(self):
        """A session with nothing in flight gets * BYE and its connection ends."""
        server, transport = self.session()
        server.drain("Server shutting down")
        self.assertEqual(transport.value(), b"* BYE Server shutting down\r\n")
        self.assertTrue(transport.disconnecting)

    def test_commandInFlightAnswered(self):
        """A command in flight gets its tagged answer, then BYE; a pipelined command is not run."""
        server, transport = self.session()
        server.dataReceived(b"a1 XSLOW\r\na2 NOOP\r\n")
        server.drain("Server shutting down")
        self.assertEqual(transport.value(), b"")
        self.assertFalse(transport.disconnecting)
        self.pending.callback(None)
        self.assertEqual(transport.value(), b"a1 OK XSLOW completed\r\n* BYE Server shutting down\r\n")
        self.assertTrue(transport.disconnecting)


class POP3DrainTests(unittest.TestCase):
    """POP3Server.drain with a StringTransport."""

    def session(self):
        from gateway.pop3.server import POP3Server

        server = POP3Server(makeTestContext(self), Clock(), 0)
        transport = StringTransport(hostAddress=IPv4Address("TCP", "127.0.0.1", 143),
                                    peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        server.makeConnection(transport)
        transport.clear()
        return server, transport

    def test_idleSessionGoesAtOnce(self):
        """A session with nothing in flight gets -ERR [SYS/TEMP] and its connection ends."""
        server, transport = self.session()
        server.drain("Server shutting down")
        self.assertEqual(transport.value(), b"-ERR [SYS/TEMP] Server shutting down.\r\n")
        self.assertTrue(transport.disconnecting)

    def test_commandInFlightAnswered(self):
        """A command in flight is answered first; then -ERR and the connection ends."""
        server, transport = self.session()
        pending = defer.Deferred()
        server.waitFor(pending)
        server.dataReceived(b"NOOP\r\n")
        server.drain("Server shutting down")
        self.assertEqual(transport.value(), b"")
        server.sendStatus(True, "done")
        pending.callback(None)
        self.assertEqual(transport.value(), b"+OK done\r\n-ERR [SYS/TEMP] Server shutting down.\r\n")
        self.assertTrue(transport.disconnecting)


class DrainEndToEndTests(unittest.TestCase):
    """SIGTERM to twistd gateway with sessions open, with imaplib and poplib."""

    timeout = 180

    def drainWith(self, count):
        from tests.test_workers import Server, clientPort, untagged

        server = Server(self, count=count, extra="drain_seconds = 60", auth="failure_delay = 2")
        idler = server.imap()
        idler.login(ACCOUNT, PASSWORD)
        idler.select("INBOX")
        idler.send(b"I1 IDLE\r\n")
        self.assertTrue(idler.readline().startswith(b"+"))
        popper = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=30)
        self.addCleanup(popper.close)
        popper.user(ACCOUNT)
        popper.pass_(PASSWORD)
        # A login with a wrong password: its answer waits for the failure
        # delay (a timer, the reactor runs meanwhile), so it is in flight.
        writer = server.imap()
        port = clientPort(writer)

        def received():
            return [s["bytes_in"] for s in server.sessions() if s["port"] == port][0]

        before = received()
        line = b'W1 LOGIN "%s" "wrong"\r\n' % (ACCOUNT.encode(),)
        writer.send(line)
        server.waitFor(lambda: received() >= before + len(line), "the LOGIN to arrive")
        server.process.terminate()
        self.assertEqual(untagged(idler, b"BYE"), b"* BYE Server shutting down\r\n")
        self.assertEqual(idler.readline(), b"")
        self.assertEqual(popper.file.readline(), b"-ERR [SYS/TEMP] Server shutting down.\r\n")
        answer = [writer.readline(), writer.readline()]
        self.assertTrue(answer[0].startswith(b"W1 NO [AUTHENTICATIONFAILED]"), answer)
        self.assertEqual(answer[1], b"* BYE Server shutting down\r\n")
        self.assertEqual(writer.readline(), b"")
        server.process.wait(60)
        self.assertIn("every session has ended", server.log())

    def test_oneProcess(self):
        """workers = 1: IDLE and POP3 sessions are told to go; a LOGIN in flight is answered, then BYE."""
        self.drainWith(1)

    def test_twoWorkers(self):
        """workers = 2: the same, each worker draining its own sessions."""
        self.drainWith(2)


class LMTPDrainTests(unittest.TestCase):
    """LMTPServer.drain with a StringTransport."""

    def session(self):
        from gateway.lmtp.server import LMTPServer

        self.pending = []

        def runInThread(f, *args):
            d = defer.Deferred()
            self.pending.append((d, f, args))
            return d

        server = LMTPServer(makeTestContext(self), clock=Clock(), runInThread=runInThread)
        transport = StringTransport()
        server.makeConnection(transport)
        transport.clear()
        return server, transport

    def test_interface(self):
        """The LMTP session provides IDrainable."""
        from gateway.lmtp.server import LMTPServer

        self.assertTrue(verifyObject(IDrainable, LMTPServer.__new__(LMTPServer)))

    def test_betweenTransactions(self):
        """Between transactions the session gets 421 and its connection ends."""
        server, transport = self.session()
        server.drain("Server shutting down")
        self.assertEqual(transport.value(), b"421 4.3.2 Server shutting down, closing\r\n")
        self.assertTrue(transport.disconnecting)

    def test_deliveryInFlight(self):
        """A message being received is delivered and answered first; then 421."""
        server, transport = self.session()
        server.dataReceived(b"LHLO client\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n")
        transport.clear()
        server.drain("Server shutting down")
        self.assertEqual(transport.value(), b"")
        server.dataReceived(b"Subject: x\r\n\r\nbody\r\n.\r\n")
        self.assertTrue(self.pending)
        self.assertEqual(transport.value(), b"")
        while self.pending:
            d, f, args = self.pending.pop(0)
            d.callback(f(*args))
        self.assertEqual(transport.value().splitlines()[-1], b"421 4.3.2 Server shutting down, closing")
        self.assertTrue(transport.value().startswith(b"250 "), transport.value())
        self.assertTrue(transport.disconnecting)


class FTPDrainTests(unittest.TestCase):
    """FTPSession.drain with a StringTransport."""

    def session(self):
        from gateway.ftp.server import makeFactory

        factory = makeFactory(makeTestContext(self))
        factory.clock = Clock()
        session = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 40000))
        transport = StringTransport(hostAddress=IPv4Address("TCP", "192.0.2.1", 21),
                                    peerAddress=IPv4Address("TCP", "192.0.2.7", 40000))
        session.makeConnection(transport)
        transport.clear()
        return session, transport

    def test_interface(self):
        """The FTP session provides IDrainable, and the drain finds it in the factory's own set."""
        from gateway.ftp.server import FTPSession

        self.assertTrue(verifyObject(IDrainable, FTPSession.__new__(FTPSession)))
        session, transport = self.session()
        self.assertEqual([p for p, _ in drain.sessions({"ftp": session.factory})], [session])

    def test_idleSessionGoesAtOnce(self):
        """With nothing under way the session gets 421 and its control connection ends."""
        session, transport = self.session()
        session.drain("Server shutting down")
        self.assertEqual(transport.value(), b"421 Server shutting down, closing the control connection\r\n")
        self.assertTrue(transport.disconnecting)

    def test_commandUnderWayAnswered(self):
        """A command under way (a transfer) is answered first; then 421, and queued commands are not run."""
        session, transport = self.session()
        pending = defer.Deferred()
        session.ftp_NOOP = lambda arg: pending
        session.dataReceived(b"NOOP\r\nSYST\r\n")
        session.drain("Server shutting down")
        self.assertEqual(transport.value(), b"")
        session.reply(226, "Transfer complete")
        pending.callback(None)
        self.assertEqual(transport.value(), b"226 Transfer complete\r\n"
                                            b"421 Server shutting down, closing the control connection\r\n")
        self.assertTrue(transport.disconnecting)
