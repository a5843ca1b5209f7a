# -*- test-case-name: tests.test_workerload -*-
"""
Tests for L{gateway.workerload}: new connections go to the worker that has
fewest open.
"""

import os
import socket

from twisted.internet import protocol, reactor, task
from twisted.trial import unittest

from gateway import worker, workerload


class WorkerLoadsTests(unittest.TestCase):
    """
    L{workerload.WorkerLoads}: each worker's open connections in a shared
    file.
    """

    def setUp(self):
        self.dataRoot = self.mktemp()
        self.open = {1: 0, 2: 0, 3: 0}

    def loads(self, number, count=3):
        loads = workerload.WorkerLoads(self.dataRoot, number, count, lambda: self.open[number])
        self.addCleanup(loads.close)
        loads.startAccepting()
        return loads

    def test_fewerElsewhere(self):
        """A worker with more connections than another sees that one has fewer; the one with fewest does not."""
        first, second, third = self.loads(1), self.loads(2), self.loads(3)
        self.open.update({1: 3, 2: 1, 3: 2})
        second.publish()
        third.publish()
        self.assertEqual(first.othersHaveFewer(), 3)
        self.assertEqual(third.othersHaveFewer(), 4)
        self.assertIsNone(second.othersHaveFewer())

    def test_equal(self):
        """Workers with as many connections as one another each accept."""
        first, second = self.loads(1, 2), self.loads(2, 2)
        self.open.update({1: 2, 2: 2})
        second.publish()
        self.assertIsNone(first.othersHaveFewer())
        self.assertIsNone(second.othersHaveFewer())

    def test_ownCountPublished(self):
        """Asking publishes this worker's count first: the others see it at once."""
        first, second = self.loads(1, 2), self.loads(2, 2)
        self.open.update({1: 0, 2: 0})
        second.publish()
        self.open[1] = 4
        self.assertEqual(first.othersHaveFewer(), 0)
        self.assertIsNone(second.othersHaveFewer())
        self.open[2] = 5
        self.assertEqual(second.othersHaveFewer(), 4)

    def test_slack(self):
        """Past 31 connections in all, a worker may be ahead of another by a 32nd of them and still accept."""
        first, second = self.loads(1, 2), self.loads(2, 2)
        self.open.update({1: 16, 2: 15})
        second.publish()
        self.assertEqual(first.othersHaveFewer(), 15, "31 in all: no slack")
        self.open[1] = 17
        self.open[2] = 16
        second.publish()
        self.assertIsNone(first.othersHaveFewer(), "33 in all: 1 of slack")
        self.open[1] = 18
        self.assertEqual(first.othersHaveFewer(), 16)
        self.open.update({1: 1560, 2: 1470})
        second.publish()
        self.assertIsNone(first.othersHaveFewer(), "3,030 in all: 94 of slack")
        self.open[1] = 1570
        self.assertEqual(first.othersHaveFewer(), 1470)

    def test_notAcceptingLeftOut(self):
        """A worker that does not accept yet, or no longer, or ended, is not one to leave connections to."""
        first, second = self.loads(1, 2), self.loads(2, 2)
        self.open.update({1: 5, 2: 3})
        second.publish()
        self.assertEqual(first.othersHaveFewer(), 3)
        second.stopAccepting()
        self.assertIsNone(first.othersHaveFewer())
        second.startAccepting()
        self.assertEqual(first.othersHaveFewer(), 3)
        workerload.forgetWorker(self.dataRoot, 2)
        self.assertIsNone(first.othersHaveFewer())
        second.publish()
        second.close()
        self.assertIsNone(first.othersHaveFewer(), "closed")
        third = workerload.WorkerLoads(self.dataRoot, 2, 2, lambda: 0)
        self.addCleanup(third.close)
        self.assertIsNone(first.othersHaveFewer(), "started, not accepting yet")

    def test_oneWorker(self):
        """A single worker never waits for others."""
        self.open[1] = 10
        self.assertIsNone(self.loads(1, 1).othersHaveFewer())

    def test_onlyConfiguredWorkers(self):
        """Slots past the number of workers (a worker of an earlier configuration) are not compared."""
        third = self.loads(3, 3)
        self.open.update({1: 5, 2: 5, 3: 0})
        third.publish()
        first = self.loads(1, 2)
        self.loads(2, 2).publish()
        self.assertIsNone(first.othersHaveFewer())


class _Refusing(protocol.ServerFactory):
    def __init__(self):
        self.built = []

    def buildProtocol(self, addr):
        self.built.append(addr)
        return None  # refused: nothing to clean up


class _Loads:
    """
    What L{workerload.shareAccepts} asks: the others' total while one of
    them has fewer, else C{None}.
    """

    def __init__(self, others):
        self.others = others
        self.published = 0

    def othersHaveFewer(self):
        return self.others

    def publish(self):
        self.published += 1



class ShareAcceptsTests(unittest.TestCase):
    """
    L{workerload.shareAccepts}: a worker with more connections than another
    leaves a new one to the others for a moment, then takes it.
    """

    def setUp(self):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(10)
        listener.setblocking(False)
        self.factory = _Refusing()
        self.port = reactor.adoptStreamPort(listener.fileno(), socket.AF_INET, self.factory)
        listener.close()
        self.addCleanup(lambda: self.port.connected and self.port.stopListening())
        self.port.stopReading()  # read by hand below, not by the reactor
        worker.acceptOnePerWake(self.port)
        self.clock = task.Clock()
        for _ in range(2):
            client = socket.create_connection(self.port.socket.getsockname())
            self.addCleanup(client.close)

    def reading(self):
        return self.port in reactor.getReaders()

    def test_leastLoadedAccepts(self):
        """A worker no other has fewer connections than accepts at once, and publishes its new count."""
        loads = _Loads(None)
        workerload.shareAccepts(self.port, loads, self.clock)
        self.port.doRead()
        self.assertEqual(len(self.factory.built), 1)
        self.assertEqual(loads.published, 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_busierWorkerWaits(self):
        """A busier worker stops reading and looks again every poll: still waiting while the others take connections."""
        loads = _Loads(3)
        workerload.shareAccepts(self.port, loads, self.clock, pause=0.005, poll=0.001)
        self.port.startReading()
        self.port.doRead()
        self.assertEqual(self.factory.built, [])
        self.assertFalse(self.reading())
        for others in range(4, 14):
            loads.others = others  # one of them took a connection meanwhile
            self.clock.advance(0.001)
            self.assertFalse(self.reading())
        self.assertEqual(self.factory.built, [])

    def test_caughtUp(self):
        """A worker reads again at the first look after no other has fewer, and accepts."""
        loads = _Loads(3)
        workerload.shareAccepts(self.port, loads, self.clock, pause=0.005, poll=0.001)
        self.port.doRead()
        self.clock.advance(0.001)
        self.assertFalse(self.reading())
        loads.others = None
        self.clock.advance(0.001)
        self.assertTrue(self.reading())
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.port.stopReading()
        self.port.doRead()
        self.assertEqual(len(self.factory.built), 1)

    def test_stuckOthers(self):
        """When the others took nothing for a pause, the busier worker takes the next connection, and only that one."""
        loads = _Loads(3)
        workerload.shareAccepts(self.port, loads, self.clock, pause=0.005, poll=0.001)
        self.port.doRead()
        for _ in range(4):
            self.clock.advance(0.001)
            self.assertFalse(self.reading())
        self.clock.advance(0.001)
        self.assertTrue(self.reading())
        self.port.stopReading()
        self.port.doRead()
        self.assertEqual(len(self.factory.built), 1)
        self.port.doRead()
        self.assertEqual(len(self.factory.built), 1, "the next one is left to the others again")

    def test_nothingWaitingAfterPause(self):
        """After a pause in which the others took nothing, with no connection waiting any more, the next one is still left to them."""
        readable, writable = os.pipe()
        self.addCleanup(os.close, readable)
        self.addCleanup(os.close, writable)
        port = _Backlog([])
        port.fileno = lambda: readable  # nothing to read: no connection waits
        loads = _Loads(3)
        workerload.shareAccepts(port, loads, self.clock, pause=0.005, poll=0.001)
        port.doRead()
        self.assertFalse(port.reading)
        self.clock.advance(0.001)
        for _ in range(5):
            self.clock.advance(0.001)
        self.assertTrue(port.reading)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        port.doRead()
        self.assertEqual(port.opened, [])
        self.assertFalse(port.reading)

    def test_closedDuringPause(self):
        """A port that stopped listening during the pause is not read again."""
        loads = _Loads(3)
        workerload.shareAccepts(self.port, loads, self.clock)
        self.port.doRead()

        def stopped(_):
            self.clock.advance(workerload.PAUSE)
            self.assertFalse(self.reading())
            self.assertEqual(self.clock.getDelayedCalls(), [])
        return self.port.stopListening().addCallback(stopped)


class _Backlog:
    """
    A worker's listening port on a socket that always has a connection
    waiting (a burst of clients): each read accepts one.
    """

    def __init__(self, opened):
        self.opened = opened
        self.connected = True
        self.reading = True

    def doRead(self):
        self.opened.append(1)

    def startReading(self):
        self.reading = True

    def stopReading(self):
        self.reading = False


class BurstTests(unittest.TestCase):
    """
    Two workers sharing a burst of new connections through the shared
    file: one of them always accepts, and they end up even.
    """

    def setUp(self):
        dataRoot = self.mktemp()
        self.clock = task.Clock()
        self.opened = {1: [], 2: []}
        self.ports = {}
        for number in (1, 2):
            loads = workerload.WorkerLoads(dataRoot, number, 2, lambda n=number: len(self.opened[n]))
            self.addCleanup(loads.close)
            loads.startAccepting()
            self.ports[number] = _Backlog(self.opened[number])
            workerload.shareAccepts(self.ports[number], loads, self.clock)

    def offer(self):
        """
        A waiting connection: the first worker wins every race it runs in,
        and one it leaves goes to the other at once.

        @return: whether a worker took it.
        """
        before = len(self.opened[1]) + len(self.opened[2])
        for port in self.ports.values():
            if port.reading:
                port.doRead()
                if len(self.opened[1]) + len(self.opened[2]) > before:
                    return True
        return False

    def test_noPauseOfBoth(self):
        """Each millisecond a reading worker accepts one: 1,000 in 1,000 ms, split within the slack."""
        neither = 0
        for _ in range(1000):
            if not self.offer():
                neither += 1
            self.clock.advance(0.001)
        self.assertEqual(neither, 0)
        self.assertEqual(len(self.opened[1]) + len(self.opened[2]), 1000)
        self.assertLessEqual(abs(len(self.opened[1]) - len(self.opened[2])), 1000 // workerload.SLACK + 1)

    def test_tenClientsEvenly(self):
        """Ten clients at once go five and five, within a few polls, though the first worker wins every race."""
        waiting = 10
        while waiting:
            if self.offer():
                waiting -= 1
            self.clock.advance(0.0001)
        self.assertEqual((len(self.opened[1]), len(self.opened[2])), (5, 5))
        self.assertLess(self.clock.seconds(), 10 * workerload.POLL)


class FirstAcceptTests(unittest.TestCase):
    """
    At the start, workers accept nothing until every one serves: the
    parent tells them (L{workers.WorkerParent.workerServing}).
    """

    def parent(self, count):
        from twisted.application.service import MultiService

        from gateway import workers

        parent = workers.WorkerParent.__new__(workers.WorkerParent)
        MultiService.__init__(parent)
        parent.count = count
        parent._served = set()
        parent.allServed = False
        parent.workers = {}
        for number in range(1, count + 1):
            parent.workers[number] = _Worker(number)
        return parent

    def test_waitForAll(self):
        """The first workers to serve are told to accept only once the last one serves."""
        parent = self.parent(3)
        parent.workerServing(parent.workers[1])
        parent.workerServing(parent.workers[3])
        self.assertEqual([w.asked for w in parent.workers.values()], [[], [], []])
        parent.workerServing(parent.workers[2])
        self.assertEqual([w.asked for w in parent.workers.values()], [["accept"]] * 3)

    def test_restartedAcceptsAtOnce(self):
        """A worker started again after the start is told to accept as soon as it serves."""
        parent = self.parent(2)
        for each in parent.workers.values():
            parent.workerServing(each)
        parent.workerServing(parent.workers[2])
        self.assertEqual(parent.workers[2].asked, ["accept", "accept"])
        self.assertEqual(parent.workers[1].asked, ["accept"])

    def test_heldListener(self):
        """A worker's adopted listener reads nothing until the worker accepts."""
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(10)
        loads = _Loads(None)
        loads.accepting = False
        child = worker._AdoptedListenerService(listener.detach(), object(), _Refusing(), reactor, loads)
        child.startService()
        self.addCleanup(child.stopService)
        self.assertNotIn(child.port, reactor.getReaders())
        child.accept()
        self.assertIn(child.port, reactor.getReaders())

    def test_shareOnlyWhereAsked(self):
        """A listener not shared by count (short sessions) accepts although another worker has fewer; a shared one waits."""
        built = {}
        for share in (False, True):
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(10)
            factory = _Refusing()
            loads = _Loads(3)
            loads.accepting = True
            child = worker._AdoptedListenerService(listener.detach(), object(), factory, reactor, loads, share)
            child.startService()
            self.addCleanup(child.stopService)
            child.port.stopReading()  # read by hand below, not by the reactor
            client = socket.create_connection(child.port.socket.getsockname())
            self.addCleanup(client.close)
            child.port.doRead()
            built[share] = len(factory.built)
        self.assertEqual(built, {False: 1, True: 0})
        self.assertEqual(worker.SHARED_BY_COUNT, frozenset(["imap"]))
        return task.deferLater(reactor, 2 * workerload.PAUSE, lambda: None)  # the shared one's pause ends

    def test_controlAccept(self):
        """The parent's 'accept' on the control pipe makes the worker accept, and is answered."""
        import json

        accepted = []

        class Worker:
            def accept(self):
                accepted.append(True)

        written = []

        class Transport:
            def write(self, data):
                written.append(data)
        control = worker.ControlProtocol(Worker())
        control.transport = Transport()
        control.stringReceived(json.dumps({"id": 7, "ask": "accept"}).encode("utf-8"))
        self.assertEqual(accepted, [True])
        self.assertEqual(json.loads(written[0].split(b":", 1)[1][:-1]), {"id": 7, "answer": True})


class _Worker:
    def __init__(self, number):
        self.number = number
        self.asked = []

    def ask(self, what):
        from twisted.internet import defer

        self.asked.append(what)
        return defer.succeed(None)
