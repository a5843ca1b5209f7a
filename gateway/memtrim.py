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
nothing.
"""

import ctypes
import ctypes.util

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
