# -*- test-case-name: tests.test_idle -*-
"""
Letting go of what nobody used for a while (L{gateway.idle}): the
releaser's calls, thread pools that shrink back, and the wiring.
"""

import gc
import threading
import weakref

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.python.threadpool import ThreadPool
from twisted.trial import unittest
from zope.interface import implementer
from zope.interface.verify import verifyObject

from gateway import caches, idle, memdebug, memtrim
from gateway.imap import sort
from gateway.interfaces import IIdleRelease
from gateway.service import makeService
from gateway.store.mail import MailStore
from tests.support import makeDataRoot, makeTestConfig


@implementer(IIdleRelease)
class Holder:
    """
    Lets go of C{n} things at each call.
    """

    def __init__(self, n=0):
        self.n = n
        self.calls = 0

    def releaseIdle(self):
        self.calls += 1
        return self.n

    def describe(self):
        return ["holder: %d" % (self.n,)]


class ReleaserTests(unittest.TestCase):
    def setUp(self):
        self.trims, self.collections, self.forgotten = [], [], []
        self.releaser = idle.IdleReleaser(trim=lambda: self.trims.append(1),
                                          collect=lambda: self.collections.append(1),
                                          forget=lambda: self.forgotten.append(1))

    def test_asksEveryone(self):
        """Each call asks every registered provider once, and counts what they let go."""
        a, b = Holder(2), Holder(1)
        self.releaser.register(a)
        self.releaser.register(b)
        self.releaser.register(a)
        self.assertEqual(self.releaser(), 3)
        self.assertEqual((a.calls, b.calls, self.releaser.released), (1, 1, 3))
        self.assertEqual(self.releaser.describe(), ["holder: 2", "holder: 1"])

    def test_collectsAndTrimsOnlyAfterARelease(self):
        """The collector and malloc_trim run when something was let go, not otherwise."""
        holder = self.releaser.register(Holder(0))
        self.releaser()
        self.assertEqual((self.trims, self.collections), ([], []))
        holder.n = 1
        self.releaser()
        self.assertEqual((self.trims, self.collections), ([1], [1]))

    def test_typeCacheEmptiedOnlyAfterARelease(self):
        """
        The interpreter's type cache (the attribute names it keeps) is
        emptied with each collection after a release, not otherwise.
        """
        holder = self.releaser.register(Holder(0))
        self.releaser()
        self.assertEqual(self.forgotten, [])
        holder.n = 1
        self.releaser()
        self.assertEqual(self.forgotten, [1])

    def test_defaultForgetsTheTypeCache(self):
        self.assertIs(idle.IdleReleaser()._forget, memtrim.dropTypeCache)

    def test_failureLogged(self):
        """A provider that raises is logged and the others are still asked."""
        class Broken:
            def releaseIdle(self):
                raise RuntimeError("no")

        self.releaser.register(Broken())
        after = self.releaser.register(Holder(1))
        self.assertEqual(self.releaser(), 1)
        self.assertEqual(after.calls, 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_followUp(self):
        """With a clock, a release collects and trims at once and FOLLOW_UP seconds later, once."""
        clock = Clock()
        self.releaser.clock = clock
        holder = self.releaser.register(Holder(1))
        self.releaser()
        self.assertEqual(self.trims, [1])
        self.releaser()
        self.assertEqual(self.trims, [1, 1])
        holder.n = 0
        clock.advance(idle.FOLLOW_UP)
        self.assertEqual((self.trims, self.collections), ([1] * 3, [1] * 3))
        self.releaser()
        clock.advance(idle.FOLLOW_UP)
        self.assertEqual(self.trims, [1] * 3)
        holder.n = 1
        self.releaser()
        self.releaser.stop()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_collectsAgainAfterARelease(self):
        """Without a clock, the look after a release collects and trims again: threads told to stop end in between."""
        holder = self.releaser.register(Holder(1))
        self.releaser()
        holder.n = 0
        self.releaser()
        self.assertEqual((self.trims, self.collections), ([1, 1], [1, 1]))
        self.releaser()
        self.assertEqual((self.trims, self.collections), ([1, 1], [1, 1]))

    def test_timer(self):
        """The service asks at its start and every interval; 0 makes no service."""
        holder = self.releaser.register(Holder())
        clock = Clock()
        timer = idle.releaseService(self.releaser, 30, clock)
        timer.startService()
        self.addCleanup(timer.stopService)
        self.assertEqual(holder.calls, 1)
        clock.advance(30)
        clock.advance(30)
        self.assertEqual(holder.calls, 3)
        self.assertIs(self.releaser.clock, clock)
        self.assertIsNone(idle.releaseService(self.releaser, 0, clock))


class PoolTests(unittest.TestCase):
    def setUp(self):
        self.pool = ThreadPool(0, 10, "test-idle")
        self.pool.start()
        self.addCleanup(self.pool.stop)
        self.shrinker = idle.PoolShrinker(self.pool)

    def busy(self, n, f=lambda: None):
        """Run C{f} in C{n} threads of the pool at once, and wait until every one is idle again."""
        together = threading.Barrier(n + 1)
        done = threading.Semaphore(0)

        def work():
            together.wait()
            f()
            done.release()
        for _ in range(n):
            self.pool.callInThread(work)
        together.wait()
        for _ in range(n):
            done.acquire()
        while len(self.pool.waiters) < n:  # each goes back to the idle set after its call
            threading.Event().wait(0.001)

    def test_interface(self):
        """A PoolShrinker provides IIdleRelease."""
        verifyObject(IIdleRelease, self.shrinker)

    def test_idleThreadsStop(self):
        """Threads idle at two looks in a row stop (and leave the pool's list); those busy between stay."""
        self.busy(4)
        self.assertEqual(self.pool.workers, 4)
        self.assertEqual(self.shrinker.releaseIdle(), 0)  # the first look: idle since when?
        self.assertEqual(self.shrinker.releaseIdle(), 4)
        started = list(self.pool.threads)
        for thread in started:
            thread.join()
        self.assertEqual(self.pool.workers, 0)
        self.shrinker.releaseIdle()
        self.assertEqual(self.pool.threads, [])
        self.busy(2)
        self.assertEqual(self.pool.workers, 2)
        self.assertEqual(self.shrinker.releaseIdle(), 0)

    def test_minimumKept(self):
        """The pool's minimum stays, idle or not."""
        self.pool.adjustPoolsize(2, 10)
        self.busy(5)
        self.shrinker.releaseIdle()
        self.assertEqual(self.shrinker.releaseIdle(), 3)

    def test_threadConnectionsClosed(self):
        """A mail store's connections in pool threads are closed when the threads stop (and are collected)."""
        store = MailStore(self.mktemp(), reactor=Clock(), useInotify=False)
        self.addCleanup(store.close)

        def indexPaths():
            return [name for name, _ in memdebug.sqliteConnections() if name == store.indexPath]
        before = len(indexPaths())
        self.busy(3, lambda: store._conn.execute("SELECT COUNT(*) FROM mailboxes").fetchone())
        self.assertEqual(len(indexPaths()), before + 3)
        self.shrinker.releaseIdle()
        self.shrinker.releaseIdle()
        for thread in list(self.pool.threads):
            thread.join()
        gc.collect()  # a connection is in a cycle with its statement cache
        self.assertEqual(len(indexPaths()), before)

    def test_reactorPool(self):
        """The reactor's pool is shrunk once the reactor has one, and not made by asking."""
        class Reactor:
            threadpool = None

        fake = Reactor()
        shrinker = idle.ReactorPoolShrinker(fake)
        self.assertEqual((shrinker.releaseIdle(), shrinker.describe()), (0, []))
        fake.threadpool = self.pool
        self.busy(1)
        shrinker.releaseIdle()
        self.assertEqual(shrinker.releaseIdle(), 1)
        self.assertEqual(shrinker.describe(), ["thread pool test-idle: 0 threads (0 idle), at most 10"])


class CacheTests(unittest.TestCase):
    def setUp(self):
        self.kept = list(caches._KEPT)
        self.addCleanup(self.restore)

    def restore(self):
        """
        The registrations as before, but for the tests' own, with those the
        imports made meanwhile.
        """
        entries = [e for e in caches._KEPT if not e[0].startswith(("test ", "tests."))]
        entries += [e for e in self.kept if not any(c is e[1] for _, c in entries)]
        caches._KEPT[:] = entries

    def test_dropAll(self):
        """dropAll empties every registered dict and lru_cache, frees a dict's grown table, and counts the caches that had entries."""
        import functools
        import sys

        table = caches.kept({}, "test table")
        empty = caches.kept(set(), "test set")

        @caches.kept
        @functools.lru_cache(maxsize=10)
        def double(x):
            return 2 * x

        self.assertIs(caches.kept(table), table)  # once
        table.update((i, str(i)) for i in range(1000))
        double(2)
        grown = sys.getsizeof(table)
        self.assertIn(("test table", 1000), caches.sizes())
        self.assertIn(("tests.test_idle.CacheTests.test_dropAll.<locals>.double", 1), caches.sizes())
        self.assertEqual(sum(1 for _, c in caches._KEPT if c is table), 1)
        for _, cache in self.kept:  # the gateway's own caches may hold entries from other tests
            caches._KEPT.remove((_, cache))
        self.assertEqual(caches.dropAll(), 2)
        self.assertEqual((len(table), len(empty), double.cache_info().currsize), (0, 0, 0))
        self.assertLess(sys.getsizeof(table), grown / 10)
        self.assertEqual(caches.dropAll(), 0)

    def test_gatewayCaches(self):
        """The flag, ACL, metadata, recurrence, header pattern, FTP listing and mailbox name caches are registered."""
        import gateway.ftp.shell  # noqa: F401
        import gateway.imap.parser  # noqa: F401
        import gateway.imap.view  # noqa: F401
        import gateway.store.calendar.periods  # noqa: F401
        import gateway.store.metadata  # noqa: F401

        names = {name for name, _ in caches.sizes()}
        for name in ("gateway.imap.format flag lists", "gateway.store.index flag sets",
                     "gateway.imap.view flags with system flags", "gateway.store.acl ACLs",
                     "gateway.store.metadata entries", "gateway.store.calendar.periods rules",
                     "gateway.imap.mimeparts.fieldsPattern", "gateway.ftp.shell._minuteText",
                     "gateway.imap.parser.encodeMailbox"):
            self.assertIn(name, names)

    def test_flagCachesEmptied(self):
        """The IMAP flag caches filled by formatting and decoding flags are emptied by dropAll."""
        from gateway.imap import format, view
        from gateway.store import index

        format.flagList(frozenset({"$Work", "\\Seen"}), recent=True)
        index.decodeFlags("$Work \\Seen")
        view._withSystemFlags(frozenset({"$Work"}))
        self.assertTrue(format._FLAG_LISTS and index._FLAG_SETS and view._KNOWN)
        caches.dropAll()
        self.assertEqual((format._FLAG_LISTS, index._FLAG_SETS, view._KNOWN), ({}, {}, {}))
        self.assertEqual(format.flagList(frozenset({"\\Seen"})), b"(\\Seen)")


class CacheDropperTests(unittest.TestCase):
    def setUp(self):
        self.activity = [0, 0]
        self.drops = []
        self.dropper = idle.CacheDropper(lambda: tuple(self.activity), drop=lambda: self.drops.append(1) or 3,
                                         sizes=lambda: [("flags", 2), ("acl", 0)])

    def test_interface(self):
        """A CacheDropper provides IIdleRelease."""
        verifyObject(IIdleRelease, self.dropper)

    def test_dropsWhenIdle(self):
        """The caches are emptied at a look when no session was opened since the previous one and none is open."""
        self.assertEqual(self.dropper.releaseIdle(), 0)  # the first look: nothing known of before
        self.assertEqual(self.dropper.releaseIdle(), 3)
        self.assertEqual((len(self.drops), self.dropper.drops), (1, 1))

    def test_keptWhileBusy(self):
        """A session opened since the previous look, or one still open, keeps the caches."""
        self.dropper.releaseIdle()
        self.activity[0] = 5
        self.assertEqual(self.dropper.releaseIdle(), 0)
        self.activity[1] = 1
        self.assertEqual(self.dropper.releaseIdle(), 0)
        self.activity[1] = 0
        self.assertEqual(self.dropper.releaseIdle(), 3)
        self.assertEqual(len(self.drops), 1)

    def test_describe(self):
        """describe names the caches that hold entries."""
        self.assertEqual(self.dropper.describe(), ["module caches: flags 2"])

    def test_monitorActivity(self):
        """monitorActivity counts the sessions a monitor accepted and those open."""
        from gateway.admin.monitor import Monitor

        monitor = Monitor()
        monitor.accepted.add("imap", 3)
        monitor.accepted.add("pop3", 2)
        monitor.sessions[object()] = None
        self.assertEqual(idle.monitorActivity(monitor)(), (5, 1))


class CancelledCallsTests(unittest.TestCase):
    def setUp(self):
        from twisted.internet.selectreactor import SelectReactor

        self.reactor = SelectReactor()
        self.addCleanup(self.reactor.disconnectAll)

    def test_cancelledCallsFreed(self):
        """The reactor's cancelled timed calls are dropped from its queue when the server is idle and freed (a session's 30-minute timeout, cancelled when it closed, stayed queued until due: 39 after a soak), the pending ones kept."""
        dropper = idle.CancelledCallsDropper(self.reactor)
        verifyObject(IIdleRelease, dropper)
        kept = self.reactor.callLater(60, Grown)
        cancelled = [self.reactor.callLater(1800, Grown) for _ in range(3)]
        self.reactor.runUntilCurrent()  # queued, as the running reactor does at its next turn
        for call in cancelled:
            call.cancel()
        refs = [weakref.ref(call) for call in cancelled]
        del call, cancelled
        self.assertEqual(dropper.releaseIdle(), 0)
        gc.collect()
        self.assertEqual([ref() for ref in refs], [None, None, None])
        self.assertEqual(self.reactor.getDelayedCalls(), [kept])
        self.assertEqual(dropper.describe(), ["reactor's timed calls: 1 queued, 0 of them cancelled"])

    def test_withoutQueue(self):
        """A reactor without Twisted's queue of timed calls (a Clock) is left alone."""
        dropper = idle.CancelledCallsDropper(Clock())
        self.assertEqual((dropper.releaseIdle(), dropper.describe()), (0, []))


class Grown:
    pass


class WiringTests(unittest.TestCase):
    def test_serverReleases(self):
        """The server asks its realm, free/busy cache, reactor pool and timed calls, module caches and IMAP sort keys at an interval."""
        dataRoot = self.mktemp()
        makeDataRoot(dataRoot)
        overrides = {(name, "enabled"): False for name in ("imap", "pop3", "http", "ftp", "lmtp")}
        overrides["server", "release_idle_after"] = 45
        top = makeService(makeTestConfig(dataRoot, overrides), reactor)
        context = top.context
        top.factory("imap")  # made as for a listener
        kinds = [type(r) for r in context.idle.releasers]
        self.assertIn(context.realm, context.idle.releasers)
        self.assertIn(context.freeBusyCache, context.idle.releasers)
        self.assertIn(idle.ReactorPoolShrinker, kinds)
        self.assertIn(idle.CancelledCallsDropper, kinds)
        self.assertTrue(any(r is sort.keyCache for r in context.idle.releasers))
        [dropper] = [r for r in context.idle.releasers if isinstance(r, idle.CacheDropper)]
        self.assertEqual(dropper.activity(), (0, 0))
        top.startService()
        timer = top.releaser
        self.assertTrue(timer.running)
        self.assertEqual(timer.step, 45)
        top.stopService()
        self.assertFalse(timer.running)
        self.assertIsNone(top.releaser)

    def test_off(self):
        """release_idle_after = 0 starts no releaser."""
        dataRoot = self.mktemp()
        makeDataRoot(dataRoot)
        overrides = {(name, "enabled"): False for name in ("imap", "pop3", "http", "ftp", "lmtp")}
        overrides["server", "release_idle_after"] = 0
        top = makeService(makeTestConfig(dataRoot, overrides), reactor)
        top.startService()
        self.assertIsNone(top.releaser)
        top.stopService()
