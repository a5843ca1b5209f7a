# -*- test-case-name: tests.test_memdebug -*-
"""
The memory debugging aid: C{[debug] tracemalloc} and its SIGUSR2 reports.
"""

import os
import signal
import sys
import threading
import tracemalloc
import weakref

from twisted.trial import unittest

from gateway import memdebug
from gateway.service import makeService
from tests.support import makeDataRoot, makeTestConfig


class Grown:
    """
    What a test keeps between two snapshots, to be found in the report.
    """


class FakeReactor:
    def __init__(self):
        self.calls = []

    def callFromThread(self, f, *args):
        self.calls.append((f, args))


class MemoryReportTests(unittest.TestCase):
    def makeReport(self):
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        report = memdebug.MemoryReport(folder)
        report.start()
        self.addCleanup(report.stop)
        return report

    def test_reportNamesWhatGrew(self):
        """A report names the objects kept since the first snapshot, by type and by the line that made them."""
        report = self.makeReport()
        kept = [Grown() for _ in range(3000)]
        path = report.write()
        with open(path) as f:
            text = f.read()
        self.assertIn("resident:", text)
        self.assertIn("test_memdebug.Grown (", text)
        self.assertIn("test_memdebug.py:%d" % (self.test_reportNamesWhatGrew.__code__.co_firstlineno + 3,), text)
        self.assertEqual(len(kept), 3000)

    def test_heldThings(self):
        """A report lists threads by name, open SQLite connections with what each holds, and what describe() says."""
        import sqlite3
        import threading

        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        report = memdebug.MemoryReport(folder, trace=False, describe=lambda: ["realm: 7 accounts"], arenas=False)
        report.start()
        self.addCleanup(report.stop)
        conn = sqlite3.connect(os.path.join(folder, "held.sqlite"))
        self.addCleanup(conn.close)
        conn.execute("CREATE TABLE t (x)")
        conn.execute("SELECT * FROM t").fetchall()
        closed = sqlite3.connect(os.path.join(folder, "closed.sqlite"))
        closed.close()
        stop = threading.Event()
        thread = threading.Thread(target=stop.wait, name="held-thread-3")
        thread.start()
        try:
            with open(report.write()) as f:
                text = f.read()
        finally:
            stop.set()
            thread.join()
        self.assertIn("1 held-thread\n", text)
        [line] = [line for line in text.splitlines() if "held.sqlite" in line]
        self.assertRegex(line, r"1 .*/held.sqlite +page cache [1-9]\d* kB, schema \d+ kB, statements [1-9]\d* kB")
        self.assertNotIn("closed.sqlite", text)
        self.assertIn("held:\n  realm: 7 accounts\n", text)

    def test_timedCalls(self):
        """A report counts the reactor's pending timed calls by what they call."""
        from twisted.internet import task

        clock = task.Clock()
        clock.callLater(5, Grown)
        clock.callLater(9, Grown)
        clock.callLater(1, self.fail)
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        report = memdebug.MemoryReport(folder, trace=False, arenas=False, reactor=clock)
        with open(report.write()) as f:
            text = f.read()
        self.assertIn("timed calls pending: 3\n     2 tests.test_memdebug.Grown\n"
                      "     1 MemoryReportTests.fail\n", text)

    def test_spentTimedCalls(self):
        """A report names the timed calls that ran or were cancelled and are still alive, by what they called, with their holders."""
        from twisted.internet import task

        clock = task.Clock()
        holder = {"ran": clock.callLater(1, Grown), "cancelled": clock.callLater(2, Grown)}
        holder["cancelled"].cancel()
        clock.advance(1)
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        report = memdebug.MemoryReport(folder, trace=False, arenas=False, reactor=clock)
        with open(report.write()) as f:
            text = f.read()
        self.assertIn("\ntimed calls that ran or were cancelled, still alive: ", text)
        self.assertIn("  1 x ran tests.test_memdebug.Grown, one held by: builtins.dict ['ran', 'cancelled']", text)
        self.assertRegex(text, r"\n  \d+ x cancelled, one held by: ")
        self.assertEqual(len(holder), 2)

    def test_modulesImported(self):
        """A report names the modules imported since the first snapshot (what they make lives as long as the process)."""
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        with open(os.path.join(folder, "gateway_probe_imported_late.py"), "w") as f:
            f.write("VALUE = 1\n")
        report = memdebug.MemoryReport(folder, trace=False, arenas=False)
        report.start()
        self.addCleanup(report.stop)
        sys.path.insert(0, folder)
        self.addCleanup(sys.path.remove, folder)
        self.addCleanup(sys.modules.pop, "gateway_probe_imported_late", None)
        __import__("gateway_probe_imported_late")
        with open(report.write()) as f:
            text = f.read()
        self.assertIn("\nmodules imported since start-up: 1\n  gateway_probe_imported_late\n", text)

    def test_closedButHeld(self):
        """A report names the objects that say they are closed and are still held, with their holders."""

        class Store:
            closed = False

        open_, closed = Store(), Store()
        closed.closed = True
        holder = {"kept": closed}
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        report = memdebug.MemoryReport(folder, trace=False, arenas=False)
        with open(report.write()) as f:
            text = f.read()
        self.assertIn("closed and still alive:\n", text)
        [line] = [line for line in text.splitlines() if "test_closedButHeld.<locals>.Store" in line]
        self.assertIn("  1 x tests.test_memdebug.MemoryReportTests.test_closedButHeld.<locals>.Store, one held by: ", line)
        self.assertIn("builtins.dict ['kept']", line)
        self.assertTrue(open_ and holder)

    def test_referrers(self):
        """referrers names what holds an object: a dict with its keys, a tuple with its items, an object."""
        kept = Grown()
        cache = {("key", 1): (1.5, kept)}
        owner = Grown()
        owner.attribute = kept
        text = memdebug.referrers(kept, depth=2)
        self.assertIn("builtins.tuple (float, Grown) <- {builtins.dict [('key', 1)]", text)
        self.assertIn("tests.test_memdebug.Grown", text.replace("(float, Grown)", ""))
        self.assertEqual((len(cache), owner.attribute), (1, kept))

    def test_referrersWalkLeavesNoCells(self):
        """referrers does not name the cells of its own walk as holders (reports showed 'builtins.cell' beside every real holder)."""
        kept = Grown()
        cache = {("key", 1): (1.5, kept)}
        text = memdebug.referrers(kept, depth=3)
        self.assertIn("builtins.tuple (float, Grown) <- {builtins.dict [('key', 1)]", text)
        self.assertNotIn("builtins.cell", text)
        self.assertEqual(len(cache), 1)

    def test_referrersNameOtherThreadsFrames(self):
        """referrers names another thread's frame that holds an object (an idle worker's last call), with the thread, and leaves out the caller's own frames."""
        box = [Grown()]
        kept = weakref.ref(box[0])
        holding, done = threading.Event(), threading.Event()

        def holdIt():
            held = box.pop()
            holding.set()
            done.wait(10)
            return held

        thread = threading.Thread(target=holdIt, name="holder-7")
        thread.start()
        self.addCleanup(thread.join)
        self.addCleanup(done.set)
        self.assertTrue(holding.wait(10))
        mine = kept()
        text = memdebug.referrers(mine, depth=2)
        self.assertIn("frame of MemoryReportTests.test_referrersNameOtherThreadsFrames.<locals>.holdIt"
                      " (test_memdebug.py:", text)
        self.assertIn(") in thread holder-7", text)
        self.assertNotIn("frame of MemoryReportTests.test_referrersNameOtherThreadsFrames (", text)

    def test_snapshotBeside(self):
        """Each report has a tracemalloc snapshot beside it, numbered, that loads."""
        report = self.makeReport()
        first, second = report.write(), report.write()
        self.assertEqual([os.path.basename(first), os.path.basename(second)],
                         ["memory-%d-1.txt" % (os.getpid(),), "memory-%d-2.txt" % (os.getpid(),)])
        snapshot = tracemalloc.Snapshot.load(second[:-len(".txt")] + ".snapshot")
        self.assertTrue(snapshot.traces)

    def test_stopEndsTracing(self):
        """Stopping ends the tracing the report started."""
        report = self.makeReport()
        self.assertTrue(tracemalloc.is_tracing())
        report.stop()
        self.assertFalse(tracemalloc.is_tracing())

    def test_mallocTrim(self):
        """malloc_trim answers a boolean (glibc) and never raises."""
        self.assertIn(memdebug.mallocTrim(), (True, False))


class ServiceTests(unittest.TestCase):
    def config(self, overrides=None):
        dataRoot = self.mktemp()
        makeDataRoot(dataRoot)
        values = {(name, "enabled"): False for name in ("imap", "pop3", "http", "ftp", "lmtp")}
        values.update(overrides or {})
        return makeTestConfig(dataRoot, values)

    def test_offByDefault(self):
        """Without [debug] memory_reports the server has no memory report service."""
        self.assertIsNone(memdebug.memoryReportService(self.config(), FakeReactor()))
        top = makeService(self.config(), FakeReactor())
        self.assertFalse([s for s in top if isinstance(s, memdebug.MemoryReportService)])

    def test_wired(self):
        """[debug] memory_reports = tracemalloc adds a tracing service; reports go beside [server] log_file."""
        logFile = os.path.abspath(os.path.join(self.mktemp(), "gateway.log"))
        os.makedirs(os.path.dirname(logFile))
        config = self.config({("debug", "memory_reports"): "tracemalloc", ("server", "log_file"): logFile})
        top = makeService(config, FakeReactor())
        [memory] = [s for s in top if isinstance(s, memdebug.MemoryReportService)]
        self.assertEqual(memory.report.directory, os.path.dirname(logFile))
        self.assertTrue(memory.report.trace)

    def test_withoutTracing(self):
        """[debug] memory_reports = yes reports without tracing: pymalloc's arenas and their map, no snapshot."""
        self.patch(memdebug.memarenas, "arenaReport", lambda: ["7 arenas (the map)"])
        config = self.config({("debug", "memory_reports"): "yes"})
        report = memdebug.memoryReportService(config, FakeReactor()).report
        self.assertFalse(report.trace)
        report.directory = os.path.abspath(self.mktemp())
        os.makedirs(report.directory)
        report.start()
        self.addCleanup(report.stop)
        self.assertFalse(tracemalloc.is_tracing())
        path = report.write()
        with open(path) as f:
            text = f.read()
        self.assertIn("arenas allocated current", text)
        self.assertIn("pymalloc's arenas, and what lives in the sparsest:\n  7 arenas (the map)\n", text)
        self.assertIn("objects by type", text)
        self.assertEqual(os.listdir(report.directory), [os.path.basename(path)])

    def test_parentPassesOn(self):
        """With workers, the parent writes its report and passes SIGUSR2 on to its workers."""
        from gateway import workers

        config = self.config({("debug", "memory_reports"): "yes", ("server", "workers"): 2,
                              ("imap", "enabled"): True, ("imap", "listen"): ["tcp:0:interface=127.0.0.1"]})
        self.patch(memdebug.memarenas, "arenaReport", lambda: [])
        top = workers.makeParentService(config, FakeReactor(), checkPorts=False, spawn=lambda *a, **k: None)
        [memory] = [s for s in top if isinstance(s, memdebug.MemoryReportService)]
        signalled = []
        top.signalWorkers = signalled.append
        memory.report.directory = os.path.abspath(self.mktemp())
        os.makedirs(memory.report.directory)
        memory.reportNow()
        self.assertEqual(signalled, [signal.SIGUSR2])
        self.assertEqual(len(memory.report.written), 1)

    def test_signal(self):
        """SIGUSR2 asks the reactor thread for a report; stopping restores the previous handler."""
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        reactor = FakeReactor()
        before = signal.getsignal(signal.SIGUSR2)
        memory = memdebug.MemoryReportService(memdebug.MemoryReport(folder), reactor)
        memory.startService()
        self.addCleanup(lambda: memory.running and memory.stopService())
        os.kill(os.getpid(), signal.SIGUSR2)
        self.assertEqual(reactor.calls, [(memory.reportNow, ())])
        memory.stopService()
        self.assertIs(signal.getsignal(signal.SIGUSR2), before)


class MeasureTests(unittest.TestCase):
    def test_mappings(self):
        """The resident set by mapping names this process's files and main heap, with sizes that add up."""
        kinds = memdebug.mappings()
        self.assertIn("files", kinds)
        self.assertIn("malloc main heap", kinds)
        total = sum(size for _n, size in kinds.values())
        self.assertGreater(total, 0)
        self.assertLessEqual(total, memdebug.residentBytes() * 1.05)

    def test_stacksAreAboveTheirGuard(self):
        """
        An anonymous mapping of a thread stack's size is a stack only just
        above a guard page: eight adjacent pymalloc arenas, merged by the
        kernel into one mapping of 8 MiB, are other anonymous memory (a
        soak's 8 MB of arenas were counted as stacks).
        """
        smaps = self.mktemp()
        with open(smaps, "w") as f:
            f.write("7f0000000000-7f0000001000 ---p 00000000 00:00 0 \nRss:                   0 kB\n"
                    "7f0000001000-7f0000801000 rw-p 00000000 00:00 0 \nRss:                  12 kB\n"
                    "7f0000801000-7f0001001000 rw-p 00000000 00:00 0 \nRss:                8192 kB\n")
        kinds = memdebug.mappings(smaps)
        self.assertEqual(kinds["thread stacks"], [1, 12 * 1024])
        self.assertEqual(kinds["other anonymous (pymalloc arenas, large blocks)"], [1, 8192 * 1024])

    def test_sqliteMemory(self):
        """SQLite's memory in use grows with a connection's cache and is never above its high-water mark."""
        import sqlite3

        before = memdebug.sqliteMemory()
        if before is None:
            raise unittest.SkipTest("the SQLite library cannot be asked")
        conn = sqlite3.connect(":memory:")
        conn.execute("CREATE TABLE t (x)")
        conn.executemany("INSERT INTO t VALUES (?)", [("x" * 100,)] * 5000)
        used, highwater = memdebug.sqliteMemory()
        self.assertGreater(used, before[0] + 400000)
        self.assertGreaterEqual(highwater, used)
        conn.close()

    def test_pymallocStats(self):
        """pymalloc's summary is read from what it writes to descriptor 2."""
        self.assertTrue(any("arenas allocated current" in line for line in memdebug.pymallocStats()))
