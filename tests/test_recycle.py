# -*- test-case-name: tests.test_recycle -*-
"""
Tests for L{gateway.recycle}: idle workers whose memory grew are replaced.
"""

import json
import socket

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from gateway import worker
from gateway.recycle import WorkerRecycler

MB = 1000 * 1000


class FakeWorker:
    def __init__(self):
        self.replacing = None

    def replace(self):
        self.replacing = defer.Deferred()
        return self.replacing


class FakeParent:
    """
    Workers that answer C{usage} with what the test set in L{usages}.
    """

    def __init__(self, count=2):
        self.workers = {number: FakeWorker() for number in range(1, count + 1)}
        self.usages = {}
        self.asked = 0

    def ask(self, what):
        assert what == "usage"
        self.asked += 1
        return defer.succeed(sorted(self.usages.items()))


def usage(connections, rss, base=80 * MB, served=True):
    return {"connections": connections, "served": served, "rss": rss, "base": base}


class RecyclerTests(unittest.TestCase):
    def setUp(self):
        self.clock = Clock()
        self.parent = FakeParent()
        self.recycler = WorkerRecycler(self.parent, 60, 1.1, self.clock)
        self.recycler.startService()
        self.addCleanup(self.recycler.stopService)

    def look(self, **usages):
        self.parent.usages = {int(name[1:]): value for name, value in usages.items()}
        self.clock.advance(60)

    def replaced(self):
        return [number for number, w in sorted(self.parent.workers.items()) if w.replacing is not None]

    def test_idleTwiceAndGrown(self):
        """A worker with no connection at two looks in a row, grown by more than the factor, is replaced."""
        self.look(w1=usage(0, 95 * MB), w2=usage(3, 120 * MB))
        self.assertEqual(self.replaced(), [])
        self.look(w1=usage(0, 95 * MB), w2=usage(0, 120 * MB))
        self.assertEqual(self.replaced(), [1])
        self.assertEqual(self.recycler.replaced, 1)

    def test_neverServed(self):
        """A worker that has had no connection since it started is kept, whatever its memory."""
        for _ in range(3):
            self.look(w1=usage(0, 95 * MB, served=False))
        self.assertEqual(self.replaced(), [])

    def test_notGrown(self):
        """An idle worker within the factor of its start is kept."""
        for _ in range(3):
            self.look(w1=usage(0, 88 * MB), w2=usage(0, 80 * MB))
        self.assertEqual(self.replaced(), [])

    def test_busyBetween(self):
        """A worker that had a connection at the look between is not idle twice in a row."""
        self.look(w1=usage(0, 95 * MB))
        self.look(w1=usage(1, 95 * MB))
        self.look(w1=usage(0, 95 * MB))
        self.assertEqual(self.replaced(), [])
        self.look(w1=usage(0, 95 * MB))
        self.assertEqual(self.replaced(), [1])

    def test_oneAtATime(self):
        """One worker is replaced at a time: no look is made until the new one serves."""
        self.look(w1=usage(0, 95 * MB), w2=usage(0, 95 * MB))
        self.look(w1=usage(0, 95 * MB), w2=usage(0, 95 * MB))
        self.assertEqual(self.replaced(), [1])
        asked = self.parent.asked
        self.clock.advance(60)
        self.assertEqual(self.parent.asked, asked)
        self.parent.workers[1].replacing.callback(None)
        self.look(w1=usage(0, 80 * MB), w2=usage(0, 95 * MB))
        self.assertEqual(self.replaced(), [1, 2])

    def test_badAnswersSkipped(self):
        """A worker that did not answer, or answered nonsense, is left alone."""
        self.look(w1=None, w2={"connections": 0})
        self.look(w1=None, w2={"connections": 0})
        self.assertEqual(self.replaced(), [])


class UsageTests(unittest.TestCase):
    def test_workerAnswersUsage(self):
        """A worker answers the parent's usage question with its connections, memory and memory at the start."""

        class Worker:
            baseResident = 70 * MB
            served = True

            def openConnections(self):
                return 4

        control = worker.ControlProtocol(Worker())
        transport = StringTransport()
        control.makeConnection(transport)
        question = json.dumps({"id": 7, "ask": "usage"}).encode()
        control.dataReceived(b"%d:%s," % (len(question), question))
        length, _, rest = transport.value().partition(b":")
        answer = json.loads(rest[:int(length)])
        self.assertEqual(answer["id"], 7)
        self.assertEqual(answer["answer"]["connections"], 4)
        self.assertEqual(answer["answer"]["base"], 70 * MB)
        self.assertIs(answer["answer"]["served"], True)
        self.assertGreater(answer["answer"]["rss"], 0)

    def test_shortSessionCounts(self):
        """
        A connection counts as served when it is made, not only if it was
        still open when the worker last counted its connections (once a
        second): a session shorter than that made the worker look as if it
        had never served, and it was never replaced.
        """
        from twisted.internet import reactor
        from twisted.internet.address import IPv4Address

        from gateway.workers import listenerKey
        from tests.test_service import lmtpOnlyConfig

        config = lmtpOnlyConfig(self, "tcp:0:interface=127.0.0.1")
        held = socket.socket()
        self.addCleanup(held.close)
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        top = worker.makeWorkerService(config, 1, {listenerKey("lmtp", config["lmtp", "listen"][0]): held.fileno()},
                                       reactor)
        self.assertFalse(top.served)
        protocol = top.factory("lmtp").buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        protocol.makeConnection(StringTransport())
        protocol.connectionLost(None)
        self.assertEqual(top.openConnections(), 0)
        self.assertTrue(top.served)


class EndToEndTests(unittest.TestCase):
    """Two workers under one twistd parent: an idle worker that grew is replaced, and nothing is refused."""

    timeout = 120

    def test_idleWorkerReplaced(self):
        """
        After a session, the worker that served it grew (what a first login
        imports, an APPEND's writer thread and connections); once it has had
        no connection for two looks it is replaced by a new process, and
        logins go on being served.  (A login and SELECT alone once left a
        worker's resident size where it began, in a CI run.)
        """
        from tests.test_workers import ACCOUNT, PASSWORD, Server

        server = Server(self, extra="release_idle_after = 1\nreplace_growth = 0")
        client = server.imap()
        client.login(ACCOUNT, PASSWORD)
        [entry] = server.waitFor(lambda: [s for s in server.sessions() if s["account"] == ACCOUNT], "the session")
        self.assertEqual(client.select("INBOX")[0], "OK")
        self.assertEqual(client.append("INBOX", None, None, b"Subject: grow\r\n\r\nx\r\n")[0], "OK")
        self.assertEqual(client.fetch("1", "(ENVELOPE BODYSTRUCTURE)")[0], "OK")
        client.logout()
        number = entry["worker"]
        server.waitForLog(r"\[worker %d gateway\.server#info\] worker %d serving" % (number, number), count=2)
        self.assertRegex(server.log(), r"worker %d idle at [\d.]+ MB, [\d.]+ times its [\d.]+ MB at the start"
                         % (number,))
        self.assertNotEqual(server.workerPid(number), entry["pid"])
        replaced = [line for line in server.admin("/metrics").splitlines()
                    if line.startswith("gateway_workers_replaced_idle_total ")]
        self.assertGreaterEqual(float(replaced[0].split()[1]), 1)
        for _ in range(4):
            other = server.imap()
            other.login(ACCOUNT, PASSWORD)
            self.assertEqual(other.select("INBOX")[0], "OK")
            other.logout()
