# -*- test-case-name: tests.test_memtrim -*-
"""
Giving the memory of ended sessions back to the system (L{gateway.memtrim}).
"""

import os
import subprocess
import sys

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial import unittest

from gateway import memtrim
from gateway.admin.monitor import Monitor, NullMonitor
from gateway.service import makeService
from tests.support import makeDataRoot, makeTestConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Wrapper:
    """
    What the monitor registers for a session.
    """

    protocol = "imap"
    bytesIn = bytesOut = 0
    wrappedProtocol = remote = None
    since = 0


class TrimmerTests(unittest.TestCase):
    def setUp(self):
        self.monitor = Monitor()
        self.calls = []
        self.clock = Clock()
        self.timer = memtrim.trimService(self.monitor, self.clock, 30, trim=lambda: self.calls.append(1))
        self.timer.startService()
        self.addCleanup(self.timer.stopService)

    def test_trimsAfterSessionsEnd(self):
        """A session that ended since the last look makes the next tick trim, once."""
        session = Wrapper()
        self.monitor.sessionOpened(session)
        self.clock.advance(30)
        self.assertEqual(self.calls, [])
        self.monitor.sessionClosed(session)
        self.clock.advance(30)
        self.assertEqual(self.calls, [1])
        self.clock.advance(30)
        self.assertEqual(self.calls, [1])

    def test_idleNoTrim(self):
        """With no session ended nothing is trimmed, however long the server runs."""
        self.monitor.sessionOpened(Wrapper())
        self.clock.advance(3000)
        self.assertEqual(self.calls, [])
        self.assertEqual(self.timer.trimmer.trims, 0)

    def test_failureLogged(self):
        """A trim that raises is logged and the timer goes on."""
        def broken():
            self.calls.append(1)
            raise OSError("no")

        self.timer.trimmer.trim = broken
        for _ in range(2):
            session = Wrapper()
            self.monitor.sessionOpened(session)
            self.monitor.sessionClosed(session)
            self.clock.advance(30)
        self.assertEqual(self.calls, [1, 1])
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 2)

    def test_nullMonitor(self):
        """A monitor that counts no sessions never triggers a trim."""
        trimmer = memtrim.SessionTrimmer(NullMonitor(), trim=lambda: self.calls.append(1))
        trimmer()
        self.assertEqual(self.calls, [])


class MallocTrimTests(unittest.TestCase):
    def test_freedMemoryGoesBack(self):
        """Blocks freed under one still in use stay resident until malloc_trim gives them back."""
        if memtrim._LIBC is None:
            raise unittest.SkipTest("this C library has no malloc_trim")
        blocks = [bytearray(64 * 1024) for _ in range(800)]  # 52 MB, under glibc's mmap threshold: the heap
        pin = bytearray(64 * 1024)  # above them: the heap's top cannot shrink on its own
        del blocks
        before = memtrim.residentBytes()
        self.assertTrue(memtrim.mallocTrim())
        after = memtrim.residentBytes()
        self.assertGreater(before - after, 20 * 1024 * 1024)
        self.assertEqual(len(pin), 64 * 1024)


ARENAS_SCRIPT = """
import sys, threading
from gateway import memdebug, memtrim
if sys.argv[1] == "limit":
    assert memtrim.limitArenas(environ={})
def work():
    kept.append([bytearray(2000) for _ in range(200)])
    together.wait()  # every thread alive at once: none hands its arena on
kept = []
together = threading.Barrier(8)
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(memdebug.mappings().get("malloc thread arenas", [0, 0])[0])
"""


class ArenaTests(unittest.TestCase):
    def arenas(self, mode):
        env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
        out = subprocess.run([sys.executable, "-c", ARENAS_SCRIPT, mode], cwd=ROOT, env=env, check=True,
                             capture_output=True, text=True).stdout
        return int(out)

    def test_threadsShareArenas(self):
        """With the limit, eight allocating threads share one arena besides the main heap (without: several)."""
        if memtrim._LIBC is None:
            raise unittest.SkipTest("this C library has no mallopt")
        self.assertGreater(self.arenas("none"), 1)
        self.assertLessEqual(self.arenas("limit"), 1)

    def test_environmentWins(self):
        """MALLOC_ARENA_MAX in the environment is left to glibc."""
        self.assertFalse(memtrim.limitArenas(environ={"MALLOC_ARENA_MAX": "4"}))


class Looked:
    attribute = 1


class TypeCacheTests(unittest.TestCase):
    def test_namesLetGo(self):
        """
        A name made at run time and given to C{getattr} is kept by the
        interpreter's type cache (one reference more) until
        L{memtrim.dropTypeCache} empties it.
        """
        if memtrim._CLEAR_TYPE_CACHE is None:
            raise unittest.SkipTest("this interpreter has no type cache to empty")
        name = "".join(["attr", "ibute"])  # a string of its own, not the interned one
        looked = Looked()
        alone = sys.getrefcount(name)
        getattr(looked, name)
        held = sys.getrefcount(name)
        self.assertTrue(memtrim.dropTypeCache())
        after = sys.getrefcount(name)
        self.assertEqual((held, after), (alone + 1, alone))


class WiringTests(unittest.TestCase):
    def test_serverTrims(self):
        """The running server has a trimmer over its monitor, stopped with it."""
        dataRoot = self.mktemp()
        makeDataRoot(dataRoot)
        overrides = {(name, "enabled"): False for name in ("imap", "pop3", "http", "ftp", "lmtp")}
        top = makeService(makeTestConfig(dataRoot, overrides), reactor)
        top.startService()
        timer = top.trimmer
        self.assertTrue(timer.running)
        self.assertIs(timer.trimmer.monitor, top.context.monitor)
        top.stopService()
        self.assertFalse(timer.running)
        self.assertIsNone(top.trimmer)
