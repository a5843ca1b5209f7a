# -*- test-case-name: tests.test_recycle -*-
"""
Idle workers that grew are replaced by fresh ones (C{[server]
replace_idle_workers}, with C{workers} > 1).

A Python process does not give back all the memory a busy period took,
even after it let go of everything (L{gateway.idle}): the interpreter's
allocator keeps an arena of 1 MiB as long as one object in it lives, and
what lives on after the traffic (timers made anew every minute, a thread's
objects, an import's) sits in the arenas the traffic filled.  After a
ten-minute soak of 200 clients one process stayed at 1.15 times its size
at the start, of which about a hundred small objects kept some 8 MB of
arenas (bench/RESULTS.md, sessions 10 and 11).  Dovecot does not meet
this problem: its imap processes end with their sessions.

So the parent looks at its workers every C{[server] release_idle_after}
seconds (L{WorkerRecycler}).  A worker that served connections since it
started, had none at two looks in a row (the idle release has let go of
what it held by then), and whose resident memory grew by more than
C{[server] replace_growth} percent since it began to serve, is replaced:
stopped as on SIGTERM (it has no session to drain) and started again at
once (L{gateway.workers.WorkerProcess.replace}).  The
listening sockets stay open in the parent, so a connection made meanwhile
waits in the accept queue or goes to another worker: nothing is refused.
One worker at a time is replaced.
"""

from twisted.application import service
from twisted.internet import task

from gateway.logging import getLogger
from gateway.memtrim import residentBytes

log = getLogger("server")


def usage(worker):
    """
    A worker's answer to the parent's C{usage} question (see
    L{gateway.worker.ControlProtocol}).

    @param worker: the L{gateway.worker.WorkerService}.
    """
    return {"connections": worker.openConnections(), "served": worker.served, "rss": residentBytes(),
            "base": worker.baseResident}


class WorkerRecycler(service.Service):
    """
    Replaces the idle workers of a L{gateway.workers.WorkerParent} whose
    memory grew (see the module's docstring).

    @ivar replaced: how many workers were replaced so far.
    """

    def __init__(self, server, interval, growth, clock):
        """
        @param server: the L{gateway.workers.WorkerParent} (C{ask},
            C{workers}).
        @param interval: seconds between two looks.
        @param growth: the factor (C{1.1} for 10%) by which an idle
            worker's memory must have grown to be replaced.
        """
        self.server = server
        self.interval = interval
        self.growth = growth
        self.replaced = 0
        #: The workers (numbers) that had served and had no connection at
        #: the last look.
        self._idleBefore = frozenset()
        #: The replacement under way (a Deferred), if any.
        self._replacing = None
        self._loop = task.LoopingCall(self.look)
        self._loop.clock = clock

    def startService(self):
        service.Service.startService(self)
        self._loop.start(self.interval, now=False)

    def stopService(self):
        service.Service.stopService(self)
        if self._loop.running:
            self._loop.stop()

    def look(self):
        """
        Ask every worker its usage and replace one that was idle at this
        look and the previous one and grew.

        @return: a C{Deferred} that fires once the look is done (not the
            replacement).
        """
        if self._replacing is not None:
            return None
        return self.server.ask("usage").addCallback(self._looked).addErrback(
            lambda failure: log.failure("Looking at the workers' memory failed", failure))

    def _looked(self, answers):
        idle = {}
        for number, answer in answers:
            try:
                if answer["connections"] == 0 and answer["served"]:
                    idle[number] = (int(answer["rss"]), int(answer["base"]))
            except (KeyError, TypeError, ValueError):
                continue
        before, self._idleBefore = self._idleBefore, frozenset(idle)
        for number in sorted(idle):
            rss, base = idle[number]
            if number not in before or not base or rss <= base * self.growth:
                continue
            worker = self.server.workers.get(number)
            if worker is None or self._replacing is not None or not self.running:
                continue
            log.info("worker {number} idle at {rss} MB, {growth} times its {base} MB at the start: starting"
                     " a new one", number=number, rss="%.1f" % (rss / 1e6,), base="%.1f" % (base / 1e6,),
                     growth="%.2f" % (rss / base,))
            self.replaced += 1
            self._idleBefore = self._idleBefore - {number}
            self._replacing = worker.replace()
            self._replacing.addBoth(self._done)

    def _done(self, result):
        self._replacing = None
        return None
