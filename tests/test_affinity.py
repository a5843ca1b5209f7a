# -*- test-case-name: tests.test_affinity -*-
"""
L{gateway.affinity}: each server process kept on one CPU
(C{[server] cpu_affinity}).  The binding is tried on this process's own
threads and undone after each test; two workers under twistd are in
L{tests.test_workers}.
"""

import fcntl
import os
import threading

from twisted.trial import unittest

from gateway import affinity, tap
from gateway.config import ConfigurationError, loadConfig
from gateway.service import GatewayService
from tests.support import makeDataRoot, perThread
from tests.test_workers import writeConfig

CAN_BIND = hasattr(os, "sched_setaffinity") and os.path.isdir("/proc/self/task")


def threadCpus():
    """
    C{{thread id: the CPUs it may run on}} for every thread of this process.
    """
    return perThread(os.sched_getaffinity)


class BoundTestCase(unittest.TestCase):
    """
    Each test may bind this process's threads: what they were allowed is
    given back at its end (for the threads still there).
    """

    def setUp(self):
        if not CAN_BIND:
            raise unittest.SkipTest("no sched_setaffinity or /proc/self/task here: nothing is bound")
        self.allowed = os.sched_getaffinity(0)
        self.patch(affinity, "_bound", False)  # what a test's binding sets, put back
        before = threadCpus()

        def restore():
            for tid, cpus in before.items():
                try:
                    os.sched_setaffinity(tid, cpus)
                except ProcessLookupError:
                    pass

        self.addCleanup(restore)

    def needTwoCpus(self):
        if len(self.allowed) < 2:
            raise unittest.SkipTest("this process may use one CPU only: there is no choice to test")


class CpuForTests(unittest.TestCase):
    """The CPU a process number gets."""

    def test_inOrder(self):
        """Worker K gets the K-th allowed CPU in numeric order, whatever order the set has."""
        allowed = {7, 2, 5}
        self.assertEqual([affinity.cpuFor(n, allowed) for n in (1, 2, 3)], [2, 5, 7])

    def test_moreWorkersThanCpus(self):
        """With more workers than CPUs they go round again: 4 workers on 2 CPUs share two each."""
        self.assertEqual([affinity.cpuFor(n, {0, 1}) for n in (1, 2, 3, 4)], [0, 1, 0, 1])


class BindProcessTests(BoundTestCase):
    """L{affinity.bindProcess} binds every thread, and what starts later."""

    def test_everyThreadAndLaterOnes(self):
        """A thread already running is bound too, and one started afterwards inherits the binding."""
        self.needTwoCpus()
        cpu = max(self.allowed)
        started, stop = threading.Event(), threading.Event()
        seen = {}

        def run(key):
            seen[key] = threading.get_native_id()
            started.set()
            stop.wait(30)

        before = threading.Thread(target=run, args=("before",))
        after = threading.Thread(target=run, args=("after",))
        before.start()
        try:
            started.wait(30)
            affinity.bindProcess({cpu})
            started.clear()
            after.start()
            started.wait(30)
            cpus = threadCpus()
        finally:
            stop.set()
            before.join(30)
            if after.ident is not None:
                after.join(30)
        self.assertEqual(cpus[seen["before"]], {cpu})
        self.assertEqual(cpus[seen["after"]], {cpu})
        self.assertEqual(set(map(frozenset, cpus.values())), {frozenset({cpu})})


class AffinityServiceTests(BoundTestCase):
    """The service binds when it starts, as the setting says."""

    def test_autoBindsToItsCpu(self):
        """cpu_affinity = auto: process 2 is kept on the second allowed CPU, and says so."""
        self.needTwoCpus()
        service = affinity.AffinityService(2, "auto")
        service.startService()
        expected = sorted(self.allowed)[1]
        self.assertEqual(service.cpu, expected)
        self.assertEqual(os.sched_getaffinity(0), {expected})
        self.assertEqual(set(map(frozenset, threadCpus().values())), {frozenset({expected})})

    def test_offLeavesThreads(self):
        """cpu_affinity = off binds nothing."""
        service = affinity.AffinityService(1, "off")
        service.startService()
        self.assertIsNone(service.cpu)
        self.assertEqual(os.sched_getaffinity(0), self.allowed)

    def test_oneCpuAllowed(self):
        """A process allowed one CPU only (a cpuset, taskset) is left as it is."""
        only = min(self.allowed)
        os.sched_setaffinity(0, {only})
        service = affinity.AffinityService(2, "auto")
        service.startService()
        self.assertIsNone(service.cpu)
        self.assertEqual(os.sched_getaffinity(0), {only})

    def test_refusedIsLogged(self):
        """A refused binding (EPERM, EINVAL) is a warning; the server starts all the same."""
        self.needTwoCpus()

        def refuse(cpus):
            raise PermissionError(1, "Operation not permitted")

        self.patch(affinity, "bindProcess", refuse)
        events = []
        from twisted.logger import globalLogPublisher

        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        service = affinity.AffinityService(1, "auto")
        service.startService()
        self.assertIsNone(service.cpu)
        self.assertEqual([e["cpu"] for e in events if "could not keep" in e.get("log_format", "")],
                         [sorted(self.allowed)[0]])


def policyInThread(call):
    """
    Run C{call} in a new thread; its return value and the thread's
    scheduling policy after it.
    """
    result = []

    def run():
        returned = call()
        result.append((returned, os.sched_getscheduler(0)))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    return result[0]


class YieldToReactorTests(BoundTestCase):
    """The threads other than the reactor's give way to it in a bound process."""

    def setUp(self):
        BoundTestCase.setUp(self)
        if not hasattr(os, "SCHED_BATCH"):
            raise unittest.SkipTest("no SCHED_BATCH here")

    def test_boundProcess(self):
        """Once the process is bound, a thread that calls it is SCHED_BATCH; the calling test's thread is not touched."""
        self.needTwoCpus()
        affinity.AffinityService(1, "auto").startService()
        self.assertEqual(policyInThread(affinity.yieldToReactor), (True, os.SCHED_BATCH))
        self.assertEqual(os.sched_getscheduler(0), os.SCHED_OTHER)

    def test_notBound(self):
        """With cpu_affinity = off (nothing bound) threads keep the default policy."""
        affinity.AffinityService(1, "off").startService()
        self.assertEqual(policyInThread(affinity.yieldToReactor), (False, os.SCHED_OTHER))

    def test_indexWriterYields(self):
        """The index writer's thread calls it as it starts."""
        from twisted.internet import reactor

        from gateway.store.writer import IndexWriter

        called = []
        self.patch(affinity, "yieldToReactor", lambda: called.append(threading.current_thread().name))
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        IndexWriter(os.path.join(folder, "index.sqlite"), reactor).close()
        self.assertEqual(called, ["index-writer"])


class WriterPolicyTests(BoundTestCase):
    """The index writer, SCHED_BATCH, is an ordinary thread while it holds the writers' lock."""

    def test_setYielding(self):
        """setYielding(True) makes the calling thread SCHED_BATCH, setYielding(False) ordinary again."""
        if not hasattr(os, "SCHED_BATCH"):
            raise unittest.SkipTest("no SCHED_BATCH here")

        def both():
            first = (affinity.setYielding(True), os.sched_getscheduler(0))
            return first, affinity.setYielding(False)

        (first, second), policy = policyInThread(both)
        self.assertEqual((first, second, policy), ((True, os.SCHED_BATCH), True, os.SCHED_OTHER))

    def test_ordinaryWhileLocked(self):
        """
        A writer that yields is made ordinary before it takes the writers'
        lock and yields again once it let go (the lock is free then): its
        group's writes run in between.
        """
        from twisted.internet import reactor

        from gateway.store import index
        from gateway.store.writer import IndexWriter

        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        path = os.path.join(folder, "index.sqlite")
        events = []

        def lockFree():
            fd = index.openWritersLock(path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
                return True
            finally:
                os.close(fd)

        def record(yielding):
            events.append((yielding, lockFree()))
            return True

        self.patch(affinity, "yieldToReactor", lambda: True)
        self.patch(affinity, "setYielding", record)
        writer = IndexWriter(path, reactor)

        def write(conn, group):
            events.append(("write", lockFree()))
            return "written"

        d = writer.submit(write)

        def check(result):
            writer.close()
            self.assertEqual(result, "written")
            self.assertEqual(events, [(False, True), ("write", False), (True, True)])

        return d.addCallback(check)

    def test_notYieldingUntouched(self):
        """A writer that does not yield (cpu_affinity = off) never changes its policy."""
        from twisted.internet import reactor

        from gateway.store.writer import IndexWriter

        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        calls = []
        self.patch(affinity, "yieldToReactor", lambda: False)
        self.patch(affinity, "setYielding", calls.append)
        writer = IndexWriter(os.path.join(folder, "index.sqlite"), reactor)
        d = writer.submit(lambda conn, group: None)

        def check(_):
            writer.close()
            self.assertEqual(calls, [])

        return d.addCallback(check)


class SettingTests(unittest.TestCase):
    """[server] cpu_affinity, and where twistd's plugin uses it."""

    def config(self, text):
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        path = os.path.join(folder, "gateway.ini")
        with open(path, "w") as f:
            f.write("[server]\ndata_root = data\n" + text)
        return path

    def test_defaultAuto(self):
        self.assertEqual(loadConfig(self.config(""))["server", "cpu_affinity"], "auto")

    def test_off(self):
        self.assertEqual(loadConfig(self.config("cpu_affinity = Off\n"))["server", "cpu_affinity"], "off")

    def test_bad(self):
        """Anything but auto or off stops start-up naming the option."""
        e = self.assertRaises(ConfigurationError, loadConfig, self.config("cpu_affinity = 0,1\n"))
        self.assertIn("cpu_affinity", str(e))

    def makeService(self, workers, *arguments):
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        makeDataRoot(os.path.join(folder, "data"))
        path = os.path.join(folder, "gateway.ini")
        writeConfig(path, os.path.join(folder, "data"), workers, extra="cpu_affinity = auto")
        self.patch(tap, "raiseFileLimit", lambda: None)
        self.patch(tap.gc, "freeze", lambda: None)
        options = tap.Options()
        options.parseOptions(["--config", path] + list(arguments))
        return tap.makeService(options)

    def test_singleProcessIsNumberOne(self):
        """With workers = 1 the one process is kept on the first CPU (number 1); nothing binds before it starts."""
        top = self.makeService(1)
        self.assertIsInstance(top, GatewayService)
        self.assertEqual((top.affinity.number, top.affinity.setting), (1, "auto"))
        self.assertFalse(top.affinity.running)

    def test_workerHasItsNumber(self):
        """A worker (--worker 2) is kept on its own CPU; the parent of workers is not bound."""
        top = self.makeService(2, "--worker", "2")
        self.assertEqual(top.affinity.number, 2)
        parent = self.makeService(2)
        self.assertIsNone(getattr(parent, "affinity", None))
