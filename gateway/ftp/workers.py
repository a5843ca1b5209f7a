# -*- test-case-name: tests.test_ftp -*-
"""
A small fixed pool of threads for the FTP file-system commands.

The file-system work of a command (a listing, the open of a file) runs in
one of these threads, never in the reactor's, so that a slow disk cannot
stall the other sessions.  Two things keep a call cheap when the disk is
fast:

  - Twisted's C{ThreadPool} runs each call through a coordinator, a context
    copy and several locks; these workers take a L{_Call} from a
    C{queue.SimpleQueue} (written in C) and nothing else runs in them.

  - The reactor waits for the call up to L{WAIT} seconds, with the GIL
    released.  A thread that runs while the reactor runs hands the GIL to
    it and back at every system call it makes (a listing makes one per
    entry), a few microseconds of futex calls and context switches each:
    measured, a sixth of an FTP session's server time.  A call that
    finishes in time is answered at once, in the reactor thread, as if it
    had run there; one that does not comes back later through
    C{callFromThread}, and from then on the reactor does not wait, until a
    call is fast again.  A slow disk so holds the reactor at most L{WAIT}
    seconds when it turns slow, and not at all while it stays slow.
"""

import queue
import threading
import time

from twisted.internet import defer
from twisted.python.failure import Failure

#: Seconds the reactor waits for a call before it goes on without it.
WAIT = 0.002

_STOP = None


class _Call:
    """
    One call and its outcome, shared by the reactor and a worker.

    @ivar finished: released by the worker when the outcome is set.
    @ivar mutex: guards C{outcome} and C{deferred}.
    @ivar outcome: C{(True, result)} or C{(False, failure)}, or C{None}.
    @ivar deferred: the C{Deferred} to answer through C{callFromThread},
        set when the reactor went on without the outcome.
    @ivar queued: when the call was queued (C{time.monotonic()}).
    @ivar elapsed: seconds from queueing to the outcome: what the reactor
        would have waited, the time in the queue behind busy workers too.
    """

    def __init__(self, function, args):
        self.function = function
        self.args = args
        self.finished = threading.Lock()
        self.finished.acquire()
        self.mutex = threading.Lock()
        self.outcome = None
        self.deferred = None
        self.queued = time.monotonic()
        self.elapsed = 0.0


def _outcome(call):
    """
    Run C{call}, letting go of its function and arguments.

    @return: C{(True, result)} or C{(False, failure)}.
    """
    function, args = call.function, call.args
    call.function = call.args = None
    try:
        return (True, function(*args))
    except BaseException:
        return (False, Failure())


class Workers:
    """
    C{size} threads that run blocking calls for the reactor.

    @ivar reactor: the C{IReactorThreads} late results go back to.
    @ivar wait: seconds L{run} waits for a call (L{WAIT}).
    @ivar waiting: whether L{run} waits: not after a call that was slow,
        until one is fast again.
    """

    def __init__(self, reactor, size, name, wait=WAIT):
        self.reactor = reactor
        self.wait = wait
        self.waiting = True
        self._queue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name="%s-%d" % (name, i), daemon=True) for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def run(self, function, *args):
        """
        Call C{function(*args)} in a worker.

        @return: a C{Deferred} with the result or the failure: already fired
            when the call finished in time, else firing later in the reactor
            thread.
        """
        call = _Call(function, args)
        self._queue.put(call)
        if self.waiting and not call.finished.acquire(timeout=self.wait):
            self.waiting = False
        d = defer.Deferred()
        with call.mutex:
            if call.outcome is None:
                call.deferred = d
                return d
        self._answer(call, d)
        return d

    def _answer(self, call, d):
        self.waiting = call.elapsed < self.wait
        succeeded, value = call.outcome
        # The worker may hold the call until its next one: it must not keep
        # the result (or, through the Deferred, what its callbacks made).
        call.outcome = call.deferred = None
        if succeeded:
            d.callback(value)
        else:
            d.errback(value)

    def _work(self):
        while True:
            call = self._queue.get()
            if call is _STOP:
                return
            outcome = _outcome(call)
            call.elapsed = time.monotonic() - call.queued
            with call.mutex:
                call.outcome = outcome
                late = call.deferred
            # An idle worker would keep its last call until the next one
            # came, for ever after a busy hour: what it was given (an FTP
            # session's file store, and through its quota the account's
            # stores), its result, and the call's own objects, made during
            # traffic.  Let go of all before the answer is signalled (the
            # reactor holds the call meanwhile; _answer drops the result).
            outcome = None
            finished = call.finished
            if late is not None:
                self.reactor.callFromThread(self._answer, call, late)
            call = late = None
            finished.release()
            finished = None

    def stop(self):
        """
        Let the workers finish what is queued, then end them.
        """
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join()
        self._threads = []
