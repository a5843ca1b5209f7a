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

from gateway import memarenas, memtrim
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


def block(i):
    """
    A 400-byte string of C{i}: pymalloc's 448-byte blocks, a size class
    little else uses, so that those made fill pools of their own.
    """
    return (b"%d" % (i,)).ljust(400, b"x")


def sparseArenas(testCase):
    """
    Fill pools with short-lived blocks and keep one in 200: most of those
    pools are then empty, in arenas the kept ones hold.  Returns the kept
    blocks (the anchors).
    """
    if not memarenas.pymallocInUse():
        raise unittest.SkipTest("needs 64-bit CPython 3.11 with pymalloc")
    made = [block(i) for i in range(30000)]
    kept = made[::200]
    del made
    return kept


KEPT = [block(i) for i in range(0, 30000, 200)]


class EmptyPoolTests(unittest.TestCase):
    def test_freeChain(self):
        """The empty pools of an arena must form one list through their next pool, ending once."""
        P = memarenas.POOL_SIZE

        def pools(*links):
            return {base: (0, 0, nextpool, 0, 1, 3, 0, 0) for base, nextpool in links}

        self.assertEqual(memarenas._freeChain(pools((P, 3 * P), (3 * P, 2 * P), (2 * P, 0))), [P, 3 * P, 2 * P])
        self.assertEqual(memarenas._freeChain(pools((P, 0))), [P])
        self.assertEqual(memarenas._freeChain({}), [])
        self.assertIsNone(memarenas._freeChain(pools((P, 0), (2 * P, 0))))  # two lists
        self.assertIsNone(memarenas._freeChain(pools((P, 2 * P), (2 * P, P))))  # a loop
        self.assertIsNone(memarenas._freeChain(pools((P, 5 * P), (2 * P, 0))))  # a link elsewhere
        self.assertIsNone(memarenas._freeChain(pools((P, 3 * P), (2 * P, 3 * P), (3 * P, 0))))  # two into one

    def test_emptyPoolsFound(self):
        """The empty pools of sparse arenas are found, each empty by its header, its arena's, in no arena twice."""
        kept = sparseArenas(self)
        pools = memarenas.emptyPools(kept)
        empty = [pool.stillEmpty() for pool in pools]
        self.assertTrue(pools)
        # What was allocated since may have taken a few (the arena pymalloc
        # takes pools from first): those are in use now, by their header.
        self.assertGreater(empty.count(True), len(pools) // 2)
        arenaMap = memarenas.ArenaMap()
        for pool, wasEmpty in zip(pools, empty, strict=True):
            self.assertEqual(pool.address % memarenas.POOL_SIZE, 0)
            header = arenaMap._header(pool.address)
            self.assertEqual(header.arena, pool.arena)
            if not wasEmpty:
                self.assertGreater(header.used, 0)
        self.assertEqual(len({p.address for p in pools}), len(pools))
        self.assertEqual(kept, KEPT)

    def test_noneWithoutPymalloc(self):
        """Where objects do not come from pymalloc, no pool is found."""
        self.patch(memarenas, "pymallocInUse", lambda: False)
        self.assertEqual(memarenas.emptyPools([object()]), [])

    def test_trimGivesBackPages(self):
        """pymallocTrim marks each empty pool to be made anew and drops its pages past the header: they read as zeros."""
        kept = sparseArenas(self)
        pools = memarenas.emptyPools(kept)
        self.assertTrue(pools)
        page = memtrim.mmap.PAGESIZE
        given = memtrim.pymallocTrim(pools)
        # Each pool still empty when its turn came (what the trim itself
        # allocates may take some first).
        self.assertEqual(given % (memarenas.POOL_SIZE - page), 0)
        self.assertTrue(0 < given <= len(pools) * (memarenas.POOL_SIZE - page))
        marked = [pool.address for pool in pools
                  if memtrim.ctypes.c_uint.from_address(pool.address + 36).value == memarenas.DUMMY_SIZE_CLASS]
        self.assertTrue(marked)  # those not taken again since (a pool taken is made anew)
        arenaMap = memarenas.ArenaMap()
        for address in marked[:50]:
            self.assertEqual(memtrim.ctypes.c_uint.from_address(address).value, 0)
            self.assertEqual(memtrim.ctypes.string_at(address + page, 64), bytes(64))
            # The arena map counts it as an empty pool kept.
            header = arenaMap._header(address)
            self.assertEqual((header.used, header.sizeClass, header.capacity), (0, memarenas.DUMMY_SIZE_CLASS, 0))
        # What is made next reuses those pools and is whole.
        again = [block(i) for i in range(30000)]
        self.assertEqual(again, [block(i) for i in range(30000)])
        self.assertEqual(kept, KEPT)

    def test_takenPoolLeftAlone(self):
        """A pool found empty and taken again since (a block in use) is neither marked nor dropped."""
        kept = sparseArenas(self)
        inUse = memarenas.ArenaMap()._header(id(kept[0]) & ~(memarenas.POOL_SIZE - 1))
        self.assertGreater(inUse.used, 0)
        taken = memarenas.EmptyPool(inUse.address, inUse.arena, inUse.sizeClass)
        calls = []
        given = memtrim.pymallocTrim([taken], madvise=lambda start, size, advice: calls.append(start.value) or 0)
        self.assertEqual((given, calls), (0, []))
        self.assertEqual(memtrim.ctypes.c_uint.from_address(inUse.address + 36).value, inUse.sizeClass)
        self.assertEqual(kept, KEPT)

    def test_sparePools(self):
        """The first SPARE_POOLS empty pools of each arena's list, those pymalloc hands out first, are left out."""
        kept = sparseArenas(self)
        self.patch(memarenas, "SPARE_POOLS", 0)
        counts = {}
        every = [p.address for p in memarenas.emptyPools(kept, counts)]
        self.assertTrue(every)
        self.assertEqual(counts.get("spare", 0), 0)
        self.patch(memarenas, "SPARE_POOLS", 10**6)
        counts = {}
        self.assertEqual(memarenas.emptyPools(kept, counts), [])
        self.assertGreater(counts["spare"], 0)
        self.patch(memarenas, "SPARE_POOLS", 2)
        counts = {}
        self.assertTrue(memarenas.emptyPools(kept, counts))
        self.assertTrue(0 < counts["spare"] <= 2 * counts["arenas"])

    def test_giveBack(self):
        """giveBack trims glibc's heaps and pymalloc's empty pools."""
        calls = []
        self.patch(memtrim, "mallocTrim", lambda: calls.append("malloc") or False)
        self.patch(memtrim, "pymallocTrim", lambda counts=None: calls.append("pymalloc") or 4096)
        self.assertTrue(memtrim.giveBack())
        self.assertEqual(calls, ["malloc", "pymalloc"])

    def test_idleReleaseGivesBack(self):
        """The idle release gives memory back through giveBack."""
        from gateway import idle

        self.assertIs(idle.IdleReleaser()._trim, memtrim.giveBack)
