# -*- test-case-name: tests.test_workerload -*-
"""
Sharing new connections evenly between the workers of C{[server] workers =
N} (L{gateway.worker}).

Every worker waits on the listening sockets the parent opened, and the
first to call C{accept} gets the connection.  Even one connection a wake
(L{gateway.worker.acceptOnePerWake}), imaptest's 10 clients went 6 and 4
(or 7 and 3) to two workers: the one with more does more of the work on
one core while the other core waits, and a run's result depended on how
its clients happened to fall (41,000 to 61,000 commands in 20 s for the
same run).  IMAP sessions last, so the split stays for their life.

Each worker writes how many connections it has open into its slot of a
small shared file (C{run/worker-connections} under the data root: 8 bytes
a worker, mapped in memory: no system call to read or write it).  Before
it accepts, a worker that has more than another one lets that one take the
connection: it stops reading that listener and looks again every L{POLL}
seconds, reading again as soon as no other has fewer, and taking the next
connection itself when one still waits after the others took none for
L{PAUSE} seconds (so a worker that is stuck delays a connection by one
pause).

A worker that does not accept (not yet, no longer, or ended: the parent
marks the slot of a worker that ended) has C{-1} in its slot, and the
others do not leave connections to it.  Before, the slot of a worker
killed in a burst kept its last count, and its replacement's said 0 before
it accepted: the other worker left them connections, and greetings waited
up to 1.1 s.

Until session 22 a worker that had more stopped reading for the whole
pause, even once the others had caught up.  In a burst of clients the two
workers of two CPUs then took turns getting ahead and were both stopped
most of the time: 155 new connections a second when each stayed open,
against 11,000 with one worker, and every greeting 0.3 s late
(C{bench/RESULTS.md}).
"""

import os
import select
import struct

from gateway.runstate import mapRunFile, runPath

#: The shared file under the data root's run folder.
NAME = "worker-connections"

#: Workers with a slot (more share nothing).
SLOTS = 64

#: How long the others may take no connection while one waits before a
#: worker that has more takes it itself (5 ms was too short for a worker
#: busy with the logins of a burst of clients: 6 and 4 in 1 of 3 runs, 5
#: and 5 in 4 of 4 with 25 ms).
PAUSE = 0.025

#: How often a worker that leaves new connections to the others looks
#: whether they caught up.
POLL = 0.001

#: How far ahead of another a worker may be and still accept: the workers'
#: connections in all divided by this (so none up to 31 connections: ten
#: clients split five and five; 3% of thousands, so that in a burst each
#: worker takes many in a row before it leaves the next to the other).
SLACK = 32

#: The count in the slot of a worker that does not accept connections.
ABSENT = -1


class WorkerLoads:
    """
    The open connections of each worker, in a file every worker maps.

    @ivar number: this worker's number (1 to C{count}).
    @ivar count: how many workers there are.
    """

    def __init__(self, dataRoot, number, count, openConnections):
        """
        @param openConnections: returns how many connections this worker
            has open now.
        """
        self.number = number
        self.count = min(count, SLOTS)
        #: Does this worker accept connections yet (see
        #: L{gateway.worker.WorkerService.accept})?
        self.accepting = False
        self._open = openConnections
        self._map = None
        if number > SLOTS:
            return
        self._map = mapRunFile(dataRoot, NAME, SLOTS * 8)
        self.publish()

    def publish(self):
        """
        Write this worker's open connections into its slot (L{ABSENT} while
        it does not accept).

        @return: that number.
        """
        mine = self._open()
        if self._map is not None:
            struct.pack_into("q", self._map, (self.number - 1) * 8, mine if self.accepting else ABSENT)
        return mine

    def startAccepting(self):
        """
        This worker accepts connections from now on: its count is in its slot.
        """
        self.accepting = True
        self.publish()

    def stopAccepting(self):
        """
        This worker accepts no more connections: the others take them all.
        """
        self.accepting = False
        self.publish()

    def othersHaveFewer(self):
        """
        Has another worker that accepts fewer connections open than this
        one, by more than the slack (L{SLACK})?  (Publishes this one's
        first.)

        @return: C{None} if not, else what the others have open in all (to
            tell whether they took connections since).
        """
        mine = self.publish()
        if self._map is None or self.count < 2:
            return None
        counts = struct.unpack_from("%dq" % (self.count,), self._map)
        others = [n for k, n in enumerate(counts) if k != self.number - 1 and n != ABSENT]
        if not others:
            return None
        slack = (sum(others) + mine) // SLACK
        return sum(others) if min(others) < mine - slack else None

    def close(self):
        if self._map is not None:
            self.stopAccepting()
            self._map.close()
            self._map = None


def forgetWorker(dataRoot, number):
    """
    Mark worker C{number}'s slot L{ABSENT} (the parent, when the worker
    ended): the others no longer leave connections to it.
    """
    if not 1 <= number <= SLOTS:
        return
    try:
        fd = os.open(runPath(dataRoot, NAME), os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return  # no worker made the file yet
    try:
        os.pwrite(fd, struct.pack("q", ABSENT), (number - 1) * 8)
    finally:
        os.close(fd)


def shareAccepts(port, loads, clock, pause=PAUSE, poll=POLL):
    """
    Make C{port} (a listening port that accepts one connection a read: see
    L{gateway.worker.acceptOnePerWake}) leave new connections to the other
    workers while one of them has fewer open than this one
    (L{WorkerLoads.othersHaveFewer}): it stops reading, looks again every
    C{poll} seconds, reads again once none has fewer, and takes the next
    connection itself when one is waiting and the others took none for
    C{pause} seconds (stuck).
    """
    doRead = port.doRead
    # What the others had open when they last took a connection, and when
    # this worker saw it; whether it takes the next connection whatever
    # the others have.
    state = {"others": None, "since": None, "takeNext": False}

    def look():
        if not port.connected:
            return
        others = loads.othersHaveFewer()
        now = clock.seconds()
        if others is None:
            port.startReading()  # they caught up
            return
        if others != state["others"]:
            state["others"], state["since"] = others, now  # they are taking connections
        elif now - state["since"] >= pause:
            # They took none for a pause: the next one is this worker's if
            # one is waiting now (they are stuck), else the next to come
            # is theirs to take again.
            state["takeNext"] = _waiting(port)
            port.startReading()
            return
        clock.callLater(poll, look)

    def doReadShared():
        if not state["takeNext"]:
            others = loads.othersHaveFewer()
            if others is not None:
                port.stopReading()
                state["others"], state["since"] = others, clock.seconds()
                clock.callLater(poll, look)
                return None
        state["takeNext"] = False
        result = doRead()
        loads.publish()
        return result

    port.doRead = doReadShared


def _waiting(port):
    """
    Is a connection waiting to be accepted on C{port}?  (C{True} for a
    port without a socket.)
    """
    try:
        fd = port.fileno()
    except AttributeError:
        return True
    try:
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):
        return True
