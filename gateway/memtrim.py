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
"""

import ctypes
import ctypes.util
import os
import sys

from twisted.application.internet import TimerService

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
    return procBytes(pid, "status", "VmRSS:")


def procBytes(pid, name, field):
    """
    The size (in kB there) on the line C{field} of C{/proc/PID/name} (this
    process's when C{pid} is C{None}), in bytes; 0 where there is none.
    """
    try:
        with open("/proc/%s/%s" % (pid or "self", name)) as f:
            for line in f:
                if line.startswith(field):
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


#: The interpreter's call that empties its cache of attribute lookups by type
#: (C{sys._clear_internal_caches} from CPython 3.13, which deprecates
#: C{sys._clear_type_cache}), or C{None}.
_CLEAR_TYPE_CACHE = getattr(sys, "_clear_internal_caches", None) or getattr(sys, "_clear_type_cache", None)


def dropTypeCache():
    """
    Empty the interpreter's cache of attribute lookups by type, so that the
    attribute names it holds are freed.

    CPython remembers the last 4,096 lookups of an attribute on a type
    (C{getattr(session, "ftp_" + verb)}, C{getattr(mailbox, name +
    "Later")}, ...) in slots chosen by the type and the address of the name
    given, and each slot keeps a reference to its name until another lookup
    takes the slot.  A name made at run time, for one command, so stays
    alive after its session ended: after a soak, hundreds of such strings
    made during traffic (297 C{"ftp_..."}, 269 C{"lmtp_..."}, 246 STATUS
    items, 396 C{"...Later"}) were alive, scattered among the freed blocks of
    pymalloc's arenas, each keeping its pool, and with it its arena, from
    going back to the system.  The cache refills at the next lookups.

    @return: C{True} when this interpreter has such a cache to empty.
    """
    if _CLEAR_TYPE_CACHE is None:
        return False
    _CLEAR_TYPE_CACHE()
    return True


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
