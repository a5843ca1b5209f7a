# -*- test-case-name: tests.test_memdebug -*-
"""
A memory debugging aid, off by default: with C{[debug] memory_reports =
yes} each SIGUSR2 (or a call to L{MemoryReport.write}) writes a report to
the log folder (the folder of C{[server] log_file}, else the working
directory): C{memory-PID-N.txt} with the resident set, what a full
collection and C{malloc_trim(0)} gave back, the resident set by kind of
mapping, pymalloc's arenas (and what lives in the sparsest of them:
L{gateway.memarenas}), and the live objects by type against start-up.
With C{memory_reports = tracemalloc} the server also traces its
allocations from start-up: the report adds the allocations still traced
against start-up (by line and by call stack), and C{memory-PID-N.snapshot}
(for C{tracemalloc.Snapshot.load}) is written beside it; pymalloc cannot
report its arenas while tracemalloc traces.

It tells retention (objects still referenced after their sessions ended)
from allocator high-water (memory the objects gave back that the process
keeps): the first shows as traced bytes and object counts that stay, the
second as resident memory that no traced allocation explains.
"""

import collections
import gc
import os
import signal
import sys
import textwrap
import tracemalloc

from twisted.application import service

from gateway import memarenas
from gateway.logging import getLogger
from gateway.memtrim import mallocTrim, residentBytes

log = getLogger("server")

#: Frames kept for each traced allocation.
FRAMES = 12

#: Lines of each table in a report.
TOP = 30


def typeCounts():
    """
    The objects the collector tracks (the start-up ones L{gc.freeze} set
    aside excluded), counted by type name.
    """
    counts = collections.Counter()
    for o in gc.get_objects():
        kind = type(o)
        counts["%s.%s" % (kind.__module__, kind.__qualname__)] += 1
    return counts


_HEAP_MAX = 64 << 20  # glibc: the heaps of the arenas threads use are aligned on their maximum size


def mappings(path="/proc/self/smaps"):
    """
    The resident set by kind of mapping: the main C{malloc} heap, the heaps
    of the C{malloc} arenas other threads use, thread stacks, other
    anonymous memory (C{pymalloc}'s arenas, which the kernel merges when
    they are adjacent, and large blocks), and files.

    @return: C{dict} of kind -> C{[mappings, resident bytes]}.
    """
    kinds = {}
    kind = None
    guardEnd = None  # where the last inaccessible (guard) mapping ended
    try:
        with open(path) as f:
            for line in f:
                fields = line.split()
                if "-" in fields[0] and len(fields) >= 5:
                    low, high = (int(x, 16) for x in fields[0].split("-"))
                    size, name = high - low, fields[5] if len(fields) > 5 else ""
                    afterGuard, guardEnd = guardEnd == low, high if fields[1].startswith("---") else None
                    if name == "[heap]":
                        kind = "malloc main heap"
                    elif name.startswith("["):
                        kind = "other " + name
                    elif name:
                        kind = "files"
                    elif fields[1].startswith("---"):
                        kind = None
                    elif low % _HEAP_MAX == 0 and size <= _HEAP_MAX:
                        kind = "malloc thread arenas"
                    elif afterGuard and size in (8 << 20, (8 << 20) - 4096):
                        # A stack lies just above its guard page: eight
                        # adjacent pymalloc arenas, which the kernel merges,
                        # are as large.
                        kind = "thread stacks"
                    else:
                        kind = "other anonymous (pymalloc arenas, large blocks)"
                    if kind is not None:
                        kinds.setdefault(kind, [0, 0])[0] += 1
                elif fields[0] == "Rss:" and kind is not None:
                    kinds[kind][1] += int(fields[1]) * 1024
    except OSError:
        pass
    return kinds


def pymallocStats():
    """
    The summary of C{sys._debugmallocstats()} (arenas allocated, bytes in
    allocated and available blocks, unused pools), which it writes to file
    descriptor 2.
    """
    import sys
    import tempfile

    if not hasattr(sys, "_debugmallocstats"):
        return []
    with tempfile.TemporaryFile() as out:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode("ascii", "replace")
    wanted = ("arenas allocated current", "arenas highwater mark", "arenas * ", "bytes in allocated blocks",
              "bytes in available blocks", "unused pools")
    return [line.strip() for line in text.splitlines() if any(w in line for w in wanted)]


def sqliteMemory():
    """
    What SQLite has allocated (its page caches, statements, schemas) now
    and at most since start-up, in bytes, from the library the C{sqlite3}
    module uses; C{None} where it cannot be asked.
    """
    import ctypes
    import ctypes.util
    import sqlite3  # noqa: F401 (the library loaded first, so that ctypes finds that one)

    try:
        lib = ctypes.CDLL(ctypes.util.find_library("sqlite3"))
        current, highwater = ctypes.c_int64(), ctypes.c_int64()
        if lib.sqlite3_status64(0, ctypes.byref(current), ctypes.byref(highwater), 0):  # SQLITE_STATUS_MEMORY_USED
            return None
    except (OSError, AttributeError, TypeError):
        return None
    return current.value, highwater.value


_SQLITE_DBSTATUS = (("page cache", 1), ("schema", 2), ("statements", 3))


def _sqliteLibrary():
    import ctypes
    import ctypes.util
    import sqlite3  # noqa: F401 (the library loaded first, so that ctypes finds that one)

    lib = ctypes.CDLL(ctypes.util.find_library("sqlite3"))
    lib.sqlite3_db_filename.restype = ctypes.c_char_p
    lib.sqlite3_db_filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.sqlite3_db_status.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                                      ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    return lib


def sqliteConnections():
    """
    The open SQLite connections the collector tracks (those made after
    start-up), with what each holds, from SQLite itself
    (C{sqlite3_db_status}): CPython's C{sqlite3.Connection} begins with its
    C{sqlite3 *} after the object header (3.11 to 3.13); elsewhere nothing.

    @return: C{list} of C{(file name, {kind: bytes})}, closed ones left out.
    """
    import ctypes
    import platform
    import sqlite3
    import sys

    if platform.python_implementation() != "CPython" or not (3, 11) <= sys.version_info[:2] <= (3, 13):
        return []
    try:
        lib = _sqliteLibrary()
    except (OSError, AttributeError, TypeError):
        return []
    found = []
    for o in gc.get_objects():
        if not isinstance(o, sqlite3.Connection):
            continue
        db = ctypes.c_void_p.from_address(id(o) + object.__basicsize__).value
        if not db:
            continue  # closed
        name = lib.sqlite3_db_filename(db, b"main")
        sizes = {}
        for kind, op in _SQLITE_DBSTATUS:
            current, highwater = ctypes.c_int(), ctypes.c_int()
            if lib.sqlite3_db_status(db, op, ctypes.byref(current), ctypes.byref(highwater), 0) == 0:
                sizes[kind] = current.value
        found.append(((name or b"").decode("utf-8", "replace"), sizes))
    return found


def threadNames():
    """
    The live threads, counted by name less its number (C{PoolThread-x-3}
    counts as C{PoolThread-x}).
    """
    import re
    import threading

    return collections.Counter(re.sub(r"[-_ ]?\d+$", "", t.name) for t in threading.enumerate())


def delayedCalls(reactor):
    """
    The reactor's pending timed calls, counted by what they call (a
    function's module and name, a method's class and name).
    """
    counts = collections.Counter()
    for call in reactor.getDelayedCalls():
        counts[_callName(call.func)] += 1
    return counts


def _callName(f):
    owner = getattr(f, "__self__", None)
    if owner is not None and not isinstance(owner, type(collections)):
        return "%s.%s" % (type(owner).__qualname__, getattr(f, "__name__", "?"))
    return "%s.%s" % (getattr(f, "__module__", "?"), getattr(f, "__qualname__", repr(f)[:60]))


def spentCalls(types=6):
    """
    The timed calls (Twisted's C{DelayedCall}s) that ran or were cancelled
    and are still alive, counted by what they called (C{cancelled}: a
    cancelled call forgets it), with who holds an example of each (up to
    C{types}): one that ran still holds its function and arguments.
    """
    from twisted.internet.base import DelayedCall

    found = {}
    objects = gc.get_objects()
    for i in range(len(objects)):
        o = objects[i]
        if type(o) is not DelayedCall or not (o.called or o.cancelled):
            continue
        name = "cancelled" if o.cancelled else "ran " + _callName(o.func)
        found.setdefault(name, [0, o])[0] += 1
    o = None
    lines = []
    ours = {id(objects), id(lines), id(found)} | {id(entry) for entry in found.values()}
    for name, (n, example) in sorted(found.items(), key=lambda item: -item[1][0])[:types]:
        lines.append("%d x %s, one held by: %s" % (n, name, referrers(example, ours)))
    del objects
    return sum(n for n, _ in found.values()), lines


def closedButHeld(types=8):
    """
    The objects that say they are closed (a C{closed} attribute set: an
    account's mail store after the idle release closed it) and are still
    alive, counted by type, with who holds an example of each (up to
    C{types} types): something held them past their use.
    """
    found = {}
    objects = gc.get_objects()
    for i in range(len(objects)):
        o = objects[i]
        if getattr(type(o), "closed", None) is not False:
            continue
        try:
            closed = vars(o).get("closed")
        except Exception:
            continue
        if closed is True:
            name = "%s.%s" % (type(o).__module__, type(o).__qualname__)
            entry = found.setdefault(name, [0, o])
            entry[0] += 1
    lines = []
    for name, (n, example) in sorted(found.items())[:types]:
        ours = {id(objects), id(lines), id(found)} | {id(entry) for entry in found.values()}
        lines.append("%d x %s, one held by: %s" % (n, name, referrers(example, ours)))
    del objects
    return lines


def heldLines(describe=None):
    """
    The report's part on what the process holds: threads by name, SQLite
    connections by file, and C{describe()}'s lines (the realm's accounts,
    caches, thread pools: L{gateway.idle.IdleReleaser.describe}).
    """
    lines = ["threads by name:"]
    lines += ["  %4d %s" % (n, name) for name, n in sorted(threadNames().items())]
    connections = sqliteConnections()
    if connections:
        byFile = {}
        for name, sizes in connections:
            entry = byFile.setdefault(os.path.basename(os.path.dirname(name)) + "/" + os.path.basename(name),
                                      [0, collections.Counter()])
            entry[0] += 1
            entry[1].update(sizes)
        total = collections.Counter()
        for _, (_, sizes) in byFile.items():
            total.update(sizes)
        lines += ["", "SQLite connections made since start-up: %d (%s)"
                  % (len(connections), ", ".join("%s %.1f MB" % (k, v / 1e6) for k, v in sorted(total.items())))]
        lines += ["  %4d %-50s %s" % (n, name, ", ".join("%s %.0f kB" % (k, v / 1e3) for k, v in sorted(sizes.items())))
                  for name, (n, sizes) in sorted(byFile.items())]
    if describe is not None:
        lines += ["", "held:"] + ["  " + line for line in describe()]
    closed = closedButHeld()
    if closed:
        lines += ["", "closed and still alive:"] + ["  " + line for line in closed]
    return lines


def _dictOwner(d):
    """
    The object whose C{__dict__} C{d} is, or C{None}.  (A function of its
    own: a comprehension inside L{referrers} would make its loop variable a
    cell, which then showed as a holder of what it walked.)
    """
    for x in gc.get_referrers(d):
        if getattr(x, "__dict__", None) is d:
            return x
    return None


_CO_OPTIMIZED = 0x0001  # a function's frame: its locals are not a namespace dict


def _otherFrames():
    """
    The frames of the threads other than the calling one, with the name of
    the thread and, for a function's frame, its local variables.  (The
    collector does not see what a running frame holds: C{gc.get_referrers}
    never names it.)

    @return: C{dict} of frame id -> C{(frame, thread name, {id of a
        local's value: local's name})}.
    """
    import sys
    import threading

    names = {t.ident: t.name for t in threading.enumerate()}
    frames = {}
    for ident, frame in sys._current_frames().items():
        if ident == threading.get_ident():
            continue
        while frame is not None:
            values = {}
            if frame.f_code.co_flags & _CO_OPTIMIZED:
                # A snapshot the frame keeps (f_locals) until it is asked
                # again: emptied at once, so that the report keeps nothing
                # alive (without a tracer, the frame never reads it back).
                snapshot = frame.f_locals
                values = {id(value): name for name, value in snapshot.items()}
                snapshot.clear()
                del snapshot
            frames[id(frame)] = (frame, names.get(ident, str(ident)), values)
            frame = frame.f_back
    return frames


def _frameName(frame, thread):
    return "frame of %s (%s:%d) in thread %s" % (
        getattr(frame.f_code, "co_qualname", frame.f_code.co_name), os.path.basename(frame.f_code.co_filename),
        frame.f_lineno, thread)


def referrers(o, ignore=frozenset(), depth=3, frames=None):
    """
    Who refers to C{o}: the types of its referrers (a dict as the object
    whose C{__dict__} it is; a tuple or dict with what else it holds; a
    local variable of another thread's frame with the frame's function,
    line and thread), and theirs,
    C{depth} levels up (for memory reports; slow).  The calling thread's
    frames are left out (the caller's own locals).

    @param ignore: C{set} of the ids of the caller's own containers.
    @param frames: L{_otherFrames}'s answer (made when C{None}).
    """
    import sys

    if frames is None:
        frames = _otherFrames()
    refs = gc.get_referrers(o)
    ignore = ignore | {id(refs)}
    found = []
    # (Loops, not comprehensions: a comprehension using o or r would make
    # it a cell, which would then show as a holder of what it holds.)
    for frame, thread, values in frames.values():
        if id(o) in values:
            found.append("local %r of %s" % (values[id(o)], _frameName(frame, thread)))
    for r in refs:
        if id(r) in ignore:
            continue
        if type(r).__name__ == "frame":
            if id(r) in frames and not frames[id(r)][2]:
                found.append(_frameName(r, frames[id(r)][1]))
            continue
        kind = type(r).__module__ + "." + type(r).__qualname__
        if isinstance(r, dict):
            owner = _dictOwner(r)
            if owner is not None:
                kind = "__dict__ of " + type(owner).__module__ + "." + type(owner).__qualname__
                r = owner
            else:
                kind += " [%s]" % (", ".join(repr(k)[:40] for k in list(r)[:4]),)
        elif isinstance(r, tuple):
            kind += " (%s)" % (", ".join(type(x).__qualname__ for x in r[:6]),)
        if depth > 1 and not isinstance(r, type(sys)):
            kind += " <- {%s}" % (referrers(r, ignore | {id(found)}, depth - 1, frames),)
        found.append(kind)
    return "; ".join(found[:6])


class MemoryReport:
    """
    The reports of one process: the first snapshot is taken by L{start}.

    @ivar directory: where reports are written.
    @ivar written: the paths of the text reports written, oldest first.
    @ivar arenas: whether reports map pymalloc's arenas to what lives in
        them (L{gateway.memarenas}: a few seconds in a busy server; not
        while tracemalloc traces).
    @ivar reactor: the reactor whose timed calls are listed (an
        C{IReactorTime}), or C{None}.
    """

    def __init__(self, directory, trace=True, describe=None, arenas=True, reactor=None):
        self.directory = directory
        self.reactor = reactor
        self.arenas = arenas
        self.trace = trace
        self.describe = describe
        self.written = []
        self._first = None
        self._firstTypes = None
        self._firstModules = None
        self._startedTracing = False

    def start(self):
        """
        Count the live objects, and with C{trace} trace allocations (unless
        something already does) and take the first snapshot.
        """
        if self.trace and not tracemalloc.is_tracing():
            tracemalloc.start(FRAMES)
            self._startedTracing = True
        gc.collect()
        self._first = tracemalloc.take_snapshot() if self.trace else None
        self._firstTypes = typeCounts()
        self._firstModules = set(sys.modules)

    def stop(self):
        if self._startedTracing:
            tracemalloc.stop()
            self._startedTracing = False
        self._first = self._firstTypes = self._firstModules = None

    def write(self):
        """
        Collect, trim, and write the next report and snapshot.

        @return: the path of the text report.
        """
        number = len(self.written) + 1
        base = os.path.join(self.directory, "memory-%d-%d" % (os.getpid(), number))
        before = residentBytes()
        unreachable = gc.collect()
        collected = residentBytes()
        trimmed = mallocTrim()
        after = residentBytes()
        tracing = tracemalloc.is_tracing()
        snapshot = tracemalloc.take_snapshot() if tracing else None
        current, peak = tracemalloc.get_traced_memory()
        lines = [
            "memory report %d of process %d" % (number, os.getpid()),
            "resident: %.1f MB; after gc.collect() (%d unreachable objects) %.1f MB;"
            " after malloc_trim(0) (%s) %.1f MB" % (before / 1e6, unreachable, collected / 1e6,
                                                   "gave back" if trimmed else "nothing given back", after / 1e6),
        ]
        if tracing:
            lines.append("traced now: %.1f MB (peak %.1f MB); tracemalloc's own use %.1f MB"
                         % (current / 1e6, peak / 1e6, tracemalloc.get_tracemalloc_memory() / 1e6))
        lines += ["", "resident by mapping (mappings, MB):"]
        lines += ["  %-50s %4d %8.1f" % (kind, n, size / 1e6) for kind, (n, size) in sorted(mappings().items())]
        used = sqliteMemory()
        if used is not None:
            lines += ["", "SQLite: %.1f MB in use (at most %.1f MB)" % (used[0] / 1e6, used[1] / 1e6)]
        lines += [""] + heldLines(self.describe)
        if hasattr(self.reactor, "getDelayedCalls"):
            calls = delayedCalls(self.reactor)
            lines += ["", "timed calls pending: %d" % (sum(calls.values()),)]
            lines += ["  %4d %s" % (n, name) for name, n in calls.most_common(TOP)]
            spent, held = spentCalls()
            if spent:
                lines += ["", "timed calls that ran or were cancelled, still alive: %d" % (spent,)]
                lines += ["  " + line for line in held]
        lines += ["", "pymalloc:"] + (["  " + line for line in pymallocStats()]
                                      or ["  (not available while tracemalloc traces)"])
        if self.arenas and not tracing:
            lines += ["", "pymalloc's arenas, and what lives in the sparsest:"]
            lines += ["  " + line for line in memarenas.arenaReport()]
        if self._first is not None and snapshot is not None:
            diff = snapshot.compare_to(self._first, "lineno")
            lines += ["", "traced since the first snapshot, by line (size now, change, count change):"]
            lines += ["  " + str(s) for s in diff[:TOP]]
            lines += ["", "the %d largest growths by call stack:" % (TOP // 3,)]
            for stat in snapshot.compare_to(self._first, "traceback")[:TOP // 3]:
                lines.append("  %+.1f kB in %+d blocks:" % (stat.size_diff / 1e3, stat.count_diff))
                lines += ["    " + line for line in stat.traceback.format(limit=FRAMES)]
        if self._firstModules is not None:
            # What they made lives as long as the process, in the arenas
            # the traffic of the moment used.
            imported = sorted(set(sys.modules) - self._firstModules)
            lines += ["", "modules imported since start-up: %d" % (len(imported),)]
            lines += textwrap.wrap(" ".join(imported[:200]), 110, initial_indent="  ", subsequent_indent="  ")
        if self._firstTypes is not None:
            now = typeCounts()
            grown = sorted(((now[k] - self._firstTypes.get(k, 0), k) for k in now), reverse=True)
            lines += ["", "objects by type, change since the first snapshot (now):"]
            lines += ["  %+8d %s (%d)" % (n, k, now[k]) for n, k in grown[:TOP] if n]
        if snapshot is not None:
            snapshot.dump(base + ".snapshot")
        path = base + ".txt"
        with open(path + ".tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.rename(path + ".tmp", path)  # complete once it is there (the snapshot is written first)
        self.written.append(path)
        log.info("memory report written to {path}: resident {before:.1f} MB, {after:.1f} MB after collecting and"
                 " trimming", path=path, before=before / 1e6, after=after / 1e6)
        return path


class MemoryReportService(service.Service):
    """
    Takes the first snapshot (and starts tracing) when the server starts;
    SIGUSR2 writes a report (from the reactor thread).  In the parent of
    worker processes, C{passOn} passes the signal on to them.

    @ivar report: the L{MemoryReport}.
    """

    def __init__(self, report, reactor, handleSignal=True, passOn=None):
        self.report = report
        self.reactor = reactor
        self.handleSignal = handleSignal
        self.passOn = passOn
        self._previous = None

    def startService(self):
        service.Service.startService(self)
        self.report.start()
        if self.handleSignal:
            self._previous = signal.signal(signal.SIGUSR2, self._signalled)

    def _signalled(self, signum, frame):
        self.reactor.callFromThread(self.reportNow)

    def reportNow(self):
        """
        Write a report, and ask the worker processes for theirs (C{passOn}).
        """
        try:
            self.report.write()
        finally:
            if self.passOn is not None:
                self.passOn()

    def stopService(self):
        if self._previous is not None:
            signal.signal(signal.SIGUSR2, self._previous)
            self._previous = None
        self.report.stop()
        return service.Service.stopService(self)


def memoryReportService(config, reactor, passOn=None, describe=None):
    """
    The L{MemoryReportService} C{[debug] memory_reports} asks for, or C{None}.

    @param describe: gives lines on what the process holds (accounts,
        caches), or C{None}.
    """
    wanted = config["debug", "memory_reports"]
    if wanted == "no":
        return None
    logFile = config["server", "log_file"]
    directory = os.path.dirname(os.path.abspath(logFile)) if logFile else os.getcwd()
    report = MemoryReport(directory, trace=wanted == "tracemalloc", describe=describe, reactor=reactor)
    return MemoryReportService(report, reactor, passOn=passOn)
