# -*- test-case-name: tests.test_memtrim -*-
"""
Giving memory back to the system after sessions end.

What sessions allocate and free is kept by the C library's allocator for
reuse: glibc returns free memory at the top of its main heap when it
exceeds a threshold, but not free memory under a block still in use, nor
most of what the heaps of other threads' arenas hold.  Output buffers of
slow clients (up to a megabyte each), message bodies and literals are such
blocks; after a busy period the process then keeps its peak size although
the objects are gone (a 90-second soak: 88.7 MB at the end of traffic,
81.8 MB after one C{malloc_trim(0)}).  L{trimService} calls
C{malloc_trim(0)} now and then when sessions have ended since the last
call; where there is no C{malloc_trim} (another C library) it does
nothing.  L{limitArenas} keeps the threads to two arenas.
L{pymallocTrim} does for Python's own allocator what C{malloc_trim} does
for glibc's: the pages of its empty pools go back to the system;
L{giveBack} does both (the idle release, L{gateway.idle}).
"""

import ctypes
import ctypes.util
import gc
import mmap
import os
import sys
import time

from twisted.application.internet import TimerService

from gateway import memarenas
from gateway.logging import getLogger

log = getLogger("server")

#: Seconds between two looks at whether sessions ended (and a trim).
TRIM_INTERVAL = 30


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def residentBytes(pid=None):
    """
    The resident set of process C{pid} (this one by default) in bytes, from
    C{/proc/PID/status}; 0 where there is no such file.
    """
    try:
        with open("/proc/%s/status" % (pid or "self",)) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def mallocTrim():
    """
    Ask the C library to give the free memory of its heaps back to the
    system (glibc's C{malloc_trim(0)}: the top of every arena, and the free
    pages inside them).

    @return: C{True} when it gave some back, C{False} when there was none or
        this C library has no C{malloc_trim}.
    """
    return bool(_LIBC.malloc_trim(0)) if _LIBC is not None else False


#: C{madvise}'s advice that the pages may be dropped (read as zeros after).
_MADV_DONTNEED = 4


def _madvise():
    """
    The C library's C{madvise}, called with the GIL held (C{ctypes.PyDLL}):
    no other thread allocates while pages are given back; C{None} where
    there is none.
    """
    try:
        libc = ctypes.PyDLL(ctypes.util.find_library("c"))
        madvise = libc.madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return madvise


_MADVISE = _madvise()


def _anchors():
    """
    The objects the collector tracks and what each refers to (numbers,
    strings and tuples, which it does not track): held by the caller, they
    keep the arenas they are in from being freed.
    """
    anchors = gc.get_objects()
    for i in range(len(anchors)):
        anchors.extend(gc.get_referents(anchors[i]))
    return anchors


def pymallocTrim(pools=None, madvise=None, pageSize=None, counts=None):
    """
    Give the system the pages of pymalloc's empty pools, past each pool's
    first page (its header), as C{malloc_trim} does for glibc's heaps.

    pymalloc frees an arena (a megabyte) only when its last block is freed;
    after a busy period the arenas that keep a few long-lived blocks keep
    their empty pools resident too, for reuse (a three-minute soak left 224
    empty pools of 16 KiB, 3.7 MB, in arenas holding 19-270 kB of live
    blocks).  Each empty pool that L{memarenas.emptyPools} finds is marked
    to be made anew when pymalloc next takes it (L{memarenas.EmptyPool.forget}:
    its header and free list are then written again, so nothing in the
    dropped pages is read) and its pages past the header are dropped
    (C{MADV_DONTNEED}): zeros again, and resident again once used.

    Nothing may take such a pool between its check and its pages being
    dropped: each pool is checked empty again just before, without
    allocating in between (the check reads through a view made first;
    C{madvise} is called holding the GIL with arguments made first); the
    other threads are not given the GIL meanwhile (a switch interval of a
    second from a switch made first: the trim waits for a thread that
    holds it then); the collector is off (its finalizers run code); and
    the first pools of each arena's list, those pymalloc hands out first,
    are left out (L{memarenas.SPARE_POOLS}) for what is allocated before
    the loop.  What is left is a signal handler running between a check
    and its C{madvise} and letting another thread take that pool, past the
    spare ones, in that instant.

    @param pools: the L{memarenas.EmptyPool}s (by default those
        L{memarenas.emptyPools} finds; the caller keeps their arenas alive).
    @param counts: see L{memarenas.emptyPools}.
    @return: the bytes given back (0 where pymalloc is not in use or there
        is no C{madvise}).
    """
    madvise = _MADVISE if madvise is None else madvise
    pageSize = mmap.PAGESIZE if pageSize is None else pageSize
    if madvise is None or pageSize >= memarenas.POOL_SIZE:
        return 0
    anchors = _anchors() if pools is None else None  # alive until done: no arena found is freed
    pools = memarenas.emptyPools(anchors, counts) if pools is None else pools
    if not pools:
        return 0
    # What the loop passes to C is made first.
    work = [(pool, ctypes.c_void_p(pool.address + pageSize)) for pool in pools]
    size = ctypes.c_size_t(memarenas.POOL_SIZE - pageSize)
    advice = ctypes.c_int(_MADV_DONTNEED)
    given = 0
    collecting = gc.isenabled()
    interval = sys.getswitchinterval()
    gc.disable()
    sys.setswitchinterval(1.0)
    try:
        time.sleep(0)  # a switch: the threads waiting for the GIL wait a second from now
        for pool, start in work:
            if pool.stillEmpty():
                pool.forget()
                if madvise(start, size, advice) == 0:
                    given += 1
    finally:
        sys.setswitchinterval(interval)
        if collecting:
            gc.enable()
    del anchors
    return given * (memarenas.POOL_SIZE - pageSize)


def giveBack():
    """
    Give back what the allocators keep free: L{mallocTrim}, then
    L{pymallocTrim}.

    @return: C{True} when glibc gave some back or an empty pool was.
    """
    trimmed = mallocTrim()
    began = time.perf_counter()
    counts = {}
    given = pymallocTrim(counts=counts)
    if given:
        log.info("gave back {pools} empty pools of pymalloc ({size:.1f} MB) in {seconds:.3f} s; arenas {counts}",
                 pools=given // (memarenas.POOL_SIZE - mmap.PAGESIZE), size=given / 1e6,
                 seconds=time.perf_counter() - began, counts=counts)
    return bool(given) or trimmed


#: glibc's C{mallopt} parameter for the most arenas (C{M_ARENA_MAX}).
_M_ARENA_MAX = -8

#: The most C{malloc} arenas the server's threads share (L{limitArenas}).
ARENAS = 2


def limitArenas(arenas=ARENAS, environ=None):
    """
    Let the process's threads share at most C{arenas} C{malloc} arenas,
    unless C{MALLOC_ARENA_MAX} in the environment says otherwise (glibc
    reads it at start-up).

    glibc gives a thread that allocates an arena of its own, up to eight
    per CPU, and each keeps what it once held: the thread pools (the
    reactor's, FTP uploads, the index writer) made 15 arenas in a 90-second
    soak.  Python threads take turns (the GIL), so sharing costs little: the
    same soak with two ended at 79.2 MB instead of 83.0 MB (start 73.7 and
    74.8 MB), its peak 81.3 MB instead of 91.2 MB.

    @return: C{True} when the limit was set.
    """
    environ = os.environ if environ is None else environ
    if _LIBC is None or not hasattr(_LIBC, "mallopt") or environ.get("MALLOC_ARENA_MAX"):
        return False
    return bool(_LIBC.mallopt(_M_ARENA_MAX, arenas))


def closedSessions(monitor):
    """
    How many sessions the monitor has seen end (accepted minus open; 0 for
    a monitor that counts none).
    """
    return sum(getattr(monitor, "accepted", {}).values()) - len(getattr(monitor, "sessions", ()))


class SessionTrimmer:
    """
    Trim when sessions have ended since the last look.

    @ivar trims: how many times it trimmed.
    """

    def __init__(self, monitor, trim=mallocTrim):
        self.monitor = monitor
        self.trim = trim
        self.trims = 0
        self._closed = closedSessions(monitor)

    def __call__(self):
        closed = closedSessions(self.monitor)
        if closed == self._closed:
            return
        self._closed = closed
        self.trims += 1
        try:
            self.trim()
        except Exception:
            log.failure("malloc_trim failed")


def trimService(monitor, clock=None, interval=TRIM_INTERVAL, trim=mallocTrim):
    """
    A C{TimerService} that runs a L{SessionTrimmer} every C{interval}
    seconds, or C{None} when this C library cannot trim.
    """
    if trim is mallocTrim and _LIBC is None:
        return None
    trimmer = SessionTrimmer(monitor, trim)
    timer = TimerService(interval, trimmer)
    timer.setName("memory trim")
    timer.trimmer = trimmer
    if clock is not None:
        timer.clock = clock
    return timer
