# -*- test-case-name: tests.test_delays_shared -*-
"""
L{gateway.cred.delays.SharedLoginDelays}: the login delays of the worker
processes, in one SQLite database.  The checker's delay and penalty tests
run again with it, and two instances with different process ids stand for
two workers.  L{gateway.cred.delays.ThreadedLoginDelays} runs its
transactions in a thread of their own.
"""

import os
import threading

from twisted.cred.error import UnauthorizedLogin
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from gateway.cred.checkers import DirectoryChecker
from gateway.cred.delays import SharedLoginDelays, ThreadedLoginDelays
from gateway.interfaces import ILoginDelays
from tests import test_checkers


def shared(testCase, clock, pid, path=None):
    if path is None:
        path = os.path.join(test_checkers.temporaryFolder(testCase), "run", "login-delays.sqlite")
    delays = SharedLoginDelays(path, clock, 1.0, 15.0, 5, pid=pid)
    testCase.addCleanup(delays.close)
    return delays


class SharedDelayTests(test_checkers.DelayTests):
    """The checker's delay tests, with the delays in the shared database."""

    def setUp(self):
        test_checkers.DelayTests.setUp(self)
        self.checker.delays = shared(self, self.clock, 1)

    def test_bounded(self):
        """Old addresses are forgotten by age, not by count, in the shared database."""
        for i in range(3):
            self.refuse(self.plain("demo", "wrong", remote="203.0.113.%d" % (i,)), 1.0)
        self.clock.advance(test_checkers.delays.FORGET_AFTER)
        self.checker.delays._expire(self.checker.delays._connect(), self.clock.seconds())
        self.assertEqual(self.checker.delays.addresses(), [])

    def test_noDelay(self):
        """failure_delay 0 fails at once."""
        self.checker.delays.failureDelay = 0.0
        self.refuse(self.plain("demo", "wrong"), 0)


class SharedPenaltyTests(test_checkers.PenaltyTests):
    """The checker's penalty tests, with the delays in the shared database."""

    def setUp(self):
        test_checkers.PenaltyTests.setUp(self)
        self.checker.delays = shared(self, self.clock, 1)

    def test_cancelQueued(self):
        """A queued attempt whose client went away leaves no delayed call and is no longer under way."""
        self.fail5()
        d = self.checker.requestAvatarId(self.plain("demo"))
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        d.cancel()
        self.failureResultOf(d, test_checkers.CancelledError)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.checker.delays._inFlight(self.checker.delays._connect(), "198.51.100.7"), {})

    def test_sameCredentialsCountOnce(self):
        """Attempts under way with the same key count as one, in whichever worker they are."""
        clock = Clock()
        one = shared(self, clock, 101)
        two = shared(self, clock, 102, path=one.path)
        self.assertEqual([(one, two)[i % 2].admit("192.0.2.1", b"same") for i in range(20)], [0.0] * 20)
        self.assertEqual([two.admit("192.0.2.1", b"k%d" % (i,)) for i in range(4)], [0.0] * 4)
        self.assertEqual(one.admit("192.0.2.1", b"another"), 1.0)
        self.assertEqual(two.admit("192.0.2.1", b"yet another"), 2.0)
        self.assertEqual(one.admit("192.0.2.1", b"same"), 0.0)
        for i in range(21):
            (one, two)[i % 2].release("192.0.2.1", b"same")
        self.assertEqual(one.admit("192.0.2.1", b"k9"), 3.0)


class TwoWorkerTests(TestCase):
    """Two instances on one database, as two worker processes."""

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1000)
        self.one = shared(self, self.clock, 101)
        self.two = shared(self, self.clock, 102, path=self.one.path)
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def test_interface(self):
        """SharedLoginDelays provides ILoginDelays."""
        self.assertTrue(verifyObject(ILoginDelays, self.one))

    def test_failuresShared(self):
        """Failures counted by one worker delay the next attempt in the other."""
        for expected in (1.0, 2.0, 4.0, 8.0, 15.0):
            self.assertEqual(self.one.admit("192.0.2.1", b"k"), 0.0)
            self.assertEqual(self.one.finish("192.0.2.1", False, False), expected)
            self.one.release("192.0.2.1", b"k")
        self.assertEqual(self.two.failures("192.0.2.1"), 5)
        self.assertEqual(self.two.admit("192.0.2.1", b"right"), 15.0)
        self.assertEqual(self.one.admit("192.0.2.1", b"other"), 30.0)  # queued after it
        self.assertEqual(self.two.finish("192.0.2.1", True, True), 0.0)
        self.assertEqual(self.one.failures("192.0.2.1"), 0)
        self.assertEqual(self.two.failures("192.0.2.2"), 0)

    def test_deadWorkerForgotten(self):
        """Attempts under way in a worker that ended no longer count once the parent forgets its process."""
        for i in range(5):
            self.assertEqual(self.one.admit("192.0.2.1", b"k%d" % (i,)), 0.0)
        self.assertEqual(self.two.admit("192.0.2.1", b"new"), 1.0)
        self.two.release("192.0.2.1", b"new")
        self.two.forgetProcess(101)
        self.assertEqual(self.two.admit("192.0.2.1", b"new"), 0.0)

    def test_brokenDatabaseDelaysNothing(self):
        """A database that cannot be opened lets logins through (undelayed) and logs one error."""
        path = os.path.join(os.path.dirname(self.one.path), "broken.sqlite")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"this is not a database" * 100)
        broken = SharedLoginDelays(path, self.clock, 1.0, 15.0, 5)
        self.addCleanup(broken.close)
        self.assertEqual(broken.admit("192.0.2.1", b"k"), 0.0)
        self.assertEqual(broken.finish("192.0.2.1", False, False), 1.0)
        self.assertEqual(broken.failures("192.0.2.1"), 0)
        self.assertEqual(len([e for e in self.events if e.get("consequence") == "failed logins are not delayed"]), 1)


class ThreadedDelayTests(test_checkers.DirectoryMixin, TestCase):
    """
    L{ThreadedLoginDelays}: the workers' shared delays with their
    transactions in a thread of their own, never on the reactor's, through
    the checker on the real reactor.
    """

    timeout = 30

    def setUp(self):
        test_checkers.DirectoryMixin.setUp(self)
        path = os.path.join(test_checkers.temporaryFolder(self), "run", "login-delays.sqlite")
        self.shared = SharedLoginDelays(path, reactor, 0.05, 1.0, 1, pid=1)
        self.threads = []
        for name in ("admit", "finish", "release", "failures"):
            original = getattr(self.shared, name)

            def recording(*args, _original=original, _name=name):
                self.threads.append((_name, threading.current_thread()))
                return _original(*args)

            setattr(self.shared, name, recording)
        self.threaded = ThreadedLoginDelays(self.shared, reactor)
        self.addCleanup(lambda: self.threaded._pool and self.threaded._pool.stop())
        self.checker = DirectoryChecker(self.directory, test_checkers.makeConfig(failure_delay=0.05), clock=reactor)
        self.checker.delays = self.threaded

    def inFlight(self, remote="198.51.100.7"):
        return self.threaded._call(lambda: self.shared._inFlight(self.shared._connect(), remote))

    @inlineCallbacks
    def test_offTheReactor(self):
        """A failure and a success: every transaction in the one thread, not the reactor's; the count kept."""
        yield self.assertFailure(self.checker.requestAvatarId(self.plain("demo", "wrong")), UnauthorizedLogin)
        self.assertEqual((yield self.checker.failureCount("198.51.100.7")), 1)
        self.assertEqual((yield self.checker.requestAvatarId(self.plain("demo"))), "demo@example.test")
        self.assertEqual((yield self.checker.failureCount("198.51.100.7")), 0)
        names = [name for name, _ in self.threads]
        self.assertEqual(names, ["admit", "finish", "release", "failures", "admit", "finish", "release", "failures"])
        threads = {thread for _, thread in self.threads}
        self.assertEqual(len(threads), 1)
        self.assertIsNot(threads.pop(), threading.main_thread())
        self.assertEqual((yield self.inFlight()), {})

    @inlineCallbacks
    def test_penaltyWaits(self):
        """Past penalty_after, the next attempt waits its turn before it is checked, as in one process."""
        yield self.assertFailure(self.checker.requestAvatarId(self.plain("demo", "wrong")), UnauthorizedLogin)
        started = reactor.seconds()
        self.assertEqual((yield self.checker.requestAvatarId(self.plain("demo"))), "demo@example.test")
        self.assertGreaterEqual(reactor.seconds() - started, 0.04)

    @inlineCallbacks
    def test_cancelledDuringAdmission(self):
        """A client gone while its admission is in the thread: nothing is checked, and it is not left under way."""
        checked = []
        self.patch(self.checker, "_check", lambda *args: checked.append(args))
        d = self.checker.requestAvatarId(self.plain("demo"))
        d.cancel()
        self.failureResultOf(d, test_checkers.CancelledError)
        # Once the admission's answer has reached the reactor (its release is queued then), nothing is under way.
        yield self.threaded._call(lambda: None)
        self.assertEqual((yield self.inFlight()), {})
        self.assertEqual(checked, [])
        self.assertEqual([name for name, _ in self.threads], ["admit", "release"])
