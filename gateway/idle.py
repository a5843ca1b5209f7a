# -*- test-case-name: tests.test_idle -*-
"""
Letting go of what nobody uses.

A busy period fills things that are bounded but never emptied: the realm
keeps the accounts recently asked for (each with its mail index open: a
SQLite connection with its page cache, and one more in every pool thread
that touched it), the thread pools keep every thread they started (its
stack, and its SQLite connections), the sort keys and free/busy caches keep
their entries.  After the clients leave, the process stays at its busy
size (a 90-second soak of 55 clients: 75.5 MB at the start, 86.9 MB after
they left, SQLite 2.4 MB against 5.9 MB, 10 threads against 21).

Every C{interval} seconds (C{[server] release_idle_after}), the
L{IdleReleaser} asks each registered L{gateway.interfaces.IIdleRelease}
to let go of what was not used since the previous look: something idle is
so released between one and two intervals after its last use.  When
anything was released, the interpreter's type cache is emptied (the
attribute names it keeps: L{gateway.memtrim.dropTypeCache}), and a full
collection (a SQLite connection is in a cycle with its statement cache,
and an account's objects hold cycles) and C{malloc_trim(0)} give the
memory back to the system, then and
L{FOLLOW_UP} seconds later (threads told to stop end in between, and drop
their connections then).
"""

import gc
import heapq

from twisted.application.internet import TimerService
from zope.interface import implementer

from gateway import caches
from gateway.interfaces import IIdleRelease
from gateway.logging import getLogger
from gateway.memtrim import dropTypeCache, mallocTrim

log = getLogger("server")

#: Seconds between two looks (the default of C{[server] release_idle_after}):
#: longer than a webmail's refresh (Roundcube's is a minute, each a new
#: login), so that an account polled every minute stays open with its sort
#: keys, and short enough that an idle server is back to its size in two.
INTERVAL = 60

#: Seconds after a release when the collection and trim are made again.
FOLLOW_UP = 2


@implementer(IIdleRelease)
class PoolShrinker:
    """
    Stops the threads of a Twisted C{ThreadPool} that stayed idle: those idle
    at this look and the previous one, beyond the pool's C{min}.  A thread
    that ends drops what it held for itself (its stack, and the SQLite
    connections kept per thread in C{threading.local}s).

    @ivar pool: the C{twisted.python.threadpool.ThreadPool}.
    """

    def __init__(self, pool):
        self.pool = pool
        self._idle = 0

    def releaseIdle(self):
        pool = self.pool
        if not pool.started:
            self._idle = 0
            return 0
        idle = len(pool.waiters)
        surplus = max(0, min(idle, self._idle, pool.workers - pool.min))
        for _ in range(surplus):
            pool.stopAWorker()
        self._idle = idle - surplus
        # The pool lists every thread it ever started (for stop's joins):
        # the ended ones leave it one by one (the pool may add one meanwhile).
        for thread in [t for t in pool.threads if not t.is_alive()]:
            pool.threads.remove(thread)
        return surplus

    def describe(self):
        pool = self.pool
        return ["thread pool %s: %d threads (%d idle), at most %d"
                % (pool.name, pool.workers, len(pool.waiters), pool.max)]


class ReactorPoolShrinker(PoolShrinker):
    """
    A L{PoolShrinker} of the reactor's thread pool, once it has one (it is
    made on first use).
    """

    def __init__(self, reactor):
        PoolShrinker.__init__(self, None)
        self.reactor = reactor

    @property
    def pool(self):
        return getattr(self.reactor, "threadpool", None)

    @pool.setter
    def pool(self, value):
        pass

    def releaseIdle(self):
        return PoolShrinker.releaseIdle(self) if self.pool is not None else 0

    def describe(self):
        return PoolShrinker.describe(self) if self.pool is not None else []


@implementer(IIdleRelease)
class CacheDropper:
    """
    Empties the module caches (L{gateway.caches}) when the server was idle
    since the previous look: no session open now, none opened in between.

    @ivar activity: gives C{(sessions opened so far, sessions open now)}.
    @ivar drops: how many times the caches were emptied.
    """

    def __init__(self, activity, drop=caches.dropAll, sizes=caches.sizes):
        self.activity = activity
        self.drops = 0
        self._drop = drop
        self._sizes = sizes
        self._opened = None

    def releaseIdle(self):
        opened, open = self.activity()
        idle = open == 0 and opened == self._opened
        self._opened = opened
        if not idle:
            return 0
        dropped = self._drop()
        if dropped:
            self.drops += 1
        return dropped

    def describe(self):
        held = [(name, n) for name, n in self._sizes() if n]
        return ["module caches: %s" % (", ".join("%s %d" % (name, n) for name, n in held) or "empty",)]


@implementer(IIdleRelease)
class CancelledCallsDropper:
    """
    Drops the cancelled calls from the reactor's queue of timed calls.

    A cancelled C{DelayedCall} stays in the queue until its time comes:
    Twisted rebuilds the queue without them only when more than 50 are
    cancelled and they are more than half of it.  A session's timeout (30
    minutes for IMAP) is cancelled when the session ends, so after a busy
    period up to 50 of them, made during traffic among short-lived
    objects, stay for up to half an hour (39 after a soak), keeping their
    arenas.  Each look rebuilds the queue as Twisted does; a reactor
    without Twisted's queue (a C{task.Clock}) is left alone.
    """

    def __init__(self, reactor):
        self.reactor = reactor

    def _queue(self):
        queue = getattr(self.reactor, "_pendingTimedCalls", None)
        return queue if isinstance(queue, list) and hasattr(self.reactor, "_cancellations") else None

    def releaseIdle(self):
        """
        @return: 0: a few small objects, not worth a collection of their
            own (they are in no cycle: freed at once).
        """
        queue = self._queue()
        if queue is not None and any(call.cancelled for call in queue):
            # As ReactorBase.runUntilCurrent does (this runs in one of the
            # reactor's timed calls, whose loop reads the queue afresh).
            self.reactor._pendingTimedCalls = [call for call in queue if not call.cancelled]
            heapq.heapify(self.reactor._pendingTimedCalls)
            self.reactor._cancellations = 0
        return 0

    def describe(self):
        queue = self._queue()
        if queue is None:
            return []
        return ["reactor's timed calls: %d queued, %d of them cancelled"
                % (len(queue), sum(1 for call in queue if call.cancelled))]


def monitorActivity(monitor):
    """
    C{(sessions opened so far, sessions open now)} of a
    L{gateway.admin.monitor.Monitor}, for L{CacheDropper}.
    """
    return lambda: (sum(monitor.accepted.values()), len(monitor.sessions))


class IdleReleaser:
    """
    Asks the registered L{IIdleRelease} providers to let go of what was not
    used since the previous call, then empties the type cache, collects and
    trims when anything was released.

    @ivar releasers: the registered providers, in registration order.
    @ivar released: how many things were let go in all.
    @ivar clock: the C{IReactorTime} of the follow-up collection, or
        C{None} (then the next look makes it).
    """

    def __init__(self, trim=mallocTrim, collect=gc.collect, clock=None, forget=dropTypeCache):
        self.releasers = []
        self.released = 0
        self.clock = clock
        self._releasedBefore = False
        self._followUp = None
        self._trim = trim
        self._collect = collect
        self._forget = forget

    def register(self, releaser):
        """
        Ask C{releaser} (an L{IIdleRelease}) at every look; registering one
        twice asks it once.

        @return: C{releaser}.
        """
        if not any(r is releaser for r in self.releasers):
            self.releasers.append(releaser)
        return releaser

    def registerPool(self, pool):
        """
        Register a L{PoolShrinker} for the C{ThreadPool} C{pool} (once).
        """
        for r in self.releasers:
            if isinstance(r, PoolShrinker) and r.pool is pool:
                return r
        return self.register(PoolShrinker(pool))

    def __call__(self):
        released = 0
        for releaser in list(self.releasers):
            try:
                released += releaser.releaseIdle() or 0
            except Exception:
                log.failure("Releasing what {releaser!r} held failed", releaser=releaser)
        # Threads told to stop end after this look, and what they held is
        # freed by a collection (a SQLite connection is in a cycle with its
        # statement cache): collect and trim again a little later (without a
        # clock: at the next look).
        if released or (self._releasedBefore and self.clock is None):
            self.released += released
            self._giveBack()
        self._releasedBefore = bool(released)
        if released and self.clock is not None and self._followUp is None:
            self._followUp = self.clock.callLater(FOLLOW_UP, self._followedUp)
        return released

    def _giveBack(self):
        # The attribute names the interpreter's type cache keeps (made during
        # traffic, they pin their arenas) first: they are in no cycle.
        self._forget()
        self._collect()
        self._trim()

    def _followedUp(self):
        self._followUp = None
        self._giveBack()

    def stop(self):
        """
        Cancel the follow-up collection, if one is due.
        """
        if self._followUp is not None:
            if self._followUp.active():
                self._followUp.cancel()
            self._followUp = None

    def describe(self):
        """
        What each provider holds now, as text lines (for memory reports).
        """
        lines = []
        for releaser in self.releasers:
            describe = getattr(releaser, "describe", None)
            if describe is not None:
                try:
                    lines += describe()
                except Exception as e:
                    lines.append("%r: %r" % (releaser, e))
        return lines


def releaseService(releaser, interval=INTERVAL, clock=None):
    """
    A C{TimerService} that calls C{releaser} every C{interval} seconds, the
    first time at the start, or C{None} when C{interval} is 0 (never
    release).
    """
    if not interval:
        return None
    timer = _ReleaseTimer(interval, releaser)
    timer.setName("idle release")
    if clock is not None:
        timer.clock = clock
    return timer


class _ReleaseTimer(TimerService):
    """
    The releaser's timer, whose clock the follow-ups use too.
    """

    def startService(self):
        self.call[0].clock = self.clock
        return TimerService.startService(self)

    def stopService(self):
        self.call[0].stop()
        return TimerService.stopService(self)
