# -*- test-case-name: tests.test_checkers -*-
"""
Login delays per remote address, kept in this process's memory.

Rules (L{MemoryLoginDelays}):

    - The C{n}th failure in a row from an address is answered after
      C{failure_delay * 2 ** (n - 1)} seconds, at most C{max_failure_delay}.
    - Once an address has C{penalty_after} failures, or that many different
      attempts under way at once (parallel connections; an attempt is under
      way until it is answered, a failure's delay included; attempts with
      the same name and password, such as a browser's parallel requests,
      count once), every further attempt from
      it waits its turn B{before} it is checked, whatever its outcome (the
      right password too): the attempts are queued one after the other, each
      C{delayFor(failures)} seconds after the previous one, so parallel
      connections guess no faster than one connection.
    - A success resets the address's failure count (attempts already queued
      keep their turn); an address is forgotten C{FORGET_AFTER} seconds after
      its last failure, and at most C{MAX_TRACKED_ADDRESSES} are kept.

The checker sees this state only through L{gateway.interfaces.ILoginDelays},
so a store shared by several processes replaces it when the server runs
worker processes: L{SharedLoginDelays}, the same rules in a small SQLite
database under the data root, used from a thread of its own
(L{ThreadedLoginDelays}).
"""

import collections
import os

from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from gateway.interfaces import ILoginDelays
from gateway.logging import getLogger
from gateway.runstate import RunDatabase

log = getLogger("auth")

#: Seconds after its last failure that an address's failure count is forgotten.
FORGET_AFTER = 15 * 60.0
#: Most remote addresses remembered at once.
MAX_TRACKED_ADDRESSES = 10000


class _Entry:
    __slots__ = ("failures", "last", "inFlight", "nextSlot")

    def __init__(self, now):
        self.failures = 0
        self.last = now
        #: key -> how many attempts with that key are under way
        self.inFlight = collections.Counter()
        self.nextSlot = 0.0


@implementer(ILoginDelays)
class MemoryLoginDelays:
    """
    L{ILoginDelays} for one process.

    @ivar clock: an C{IReactorTime}.
    """

    def __init__(self, clock, failureDelay, maxFailureDelay, penaltyAfter):
        self.clock = clock
        self.failureDelay = float(failureDelay)
        self.maxFailureDelay = float(maxFailureDelay)
        self.penaltyAfter = max(1, int(penaltyAfter))
        self._entries = collections.OrderedDict()

    def delayFor(self, count):
        """
        @return: the delay for the C{count}th failure in a row.
        """
        if count <= 0 or self.failureDelay <= 0:
            return 0.0
        return min(self.failureDelay * 2 ** min(count - 1, 64), self.maxFailureDelay)

    def _expire(self, now):
        entries = self._entries
        while entries:
            oldest, entry = next(iter(entries.items()))
            if entry.inFlight or now - entry.last < FORGET_AFTER or entry.nextSlot > now:
                break
            del entries[oldest]

    def _entry(self, remote, now):
        entry = self._entries.pop(remote, None)
        if entry is None:
            entry = _Entry(now)
        elif not entry.inFlight and now - entry.last >= FORGET_AFTER:
            entry.failures = 0
        self._entries[remote] = entry
        while len(self._entries) > MAX_TRACKED_ADDRESSES:
            self._entries.popitem(last=False)
        return entry

    # -- ILoginDelays ----------------------------------------------------------

    def admit(self, remote, key):
        now = self.clock.seconds()
        self._expire(now)
        entry = self._entry(remote, now)
        penalised = entry.failures >= self.penaltyAfter or (
            key not in entry.inFlight and len(entry.inFlight) >= self.penaltyAfter
        )
        entry.inFlight[key] += 1
        if not penalised or self.failureDelay <= 0:
            return 0.0
        slot = max(now, entry.nextSlot) + self.delayFor(max(entry.failures, 1))
        entry.nextSlot = slot
        return slot - now

    def finish(self, remote, succeeded, waited):
        now = self.clock.seconds()
        entry = self._entry(remote, now)
        if succeeded:
            entry.failures = 0
            return 0.0
        entry.failures += 1
        entry.last = now
        return 0.0 if waited else self.delayFor(entry.failures)

    def release(self, remote, key):
        now = self.clock.seconds()
        entry = self._entries.get(remote)
        if entry is None:
            return
        entry.inFlight[key] -= 1
        if entry.inFlight[key] <= 0:
            del entry.inFlight[key]
        if not entry.inFlight and not entry.failures and entry.nextSlot <= now:
            del self._entries[remote]

    def failures(self, remote):
        entry = self._entries.get(remote)
        if entry is None or (not entry.inFlight and self.clock.seconds() - entry.last >= FORGET_AFTER):
            return 0
        return entry.failures

    def addresses(self):
        """
        @return: C{list} of the addresses remembered, oldest activity first.
        """
        return list(self._entries)


@implementer(ILoginDelays)
class SharedLoginDelays:
    """
    L{ILoginDelays} shared by the worker processes of one server: the same
    rules as L{MemoryLoginDelays}, kept in a small SQLite database (C{path},
    under the data root's C{run/} folder), so that parallel connections
    that land on different workers still guess no faster than one.

    Each call is one short transaction on the calling thread (the state is
    a few rows per address; it is not durable: C{synchronous=OFF}, a power
    cut may forget failures, as a restart of one process does).  Attempts
    under way are counted per process id: the parent forgets those of a
    worker that ended (L{forgetProcess}).  A database that cannot be used
    delays nothing and says so in the log, rather than refusing every login.

    @ivar clock: an C{IReactorTime}; its C{seconds()} must be the wall
        clock (as the reactor's is) so that processes agree.
    """

    #: Forget old addresses every this many calls.
    EXPIRE_EVERY = 256

    def __init__(self, path, clock, failureDelay, maxFailureDelay, penaltyAfter, pid=None):
        self.path = path
        self.clock = clock
        self.failureDelay = float(failureDelay)
        self.maxFailureDelay = float(maxFailureDelay)
        self.penaltyAfter = max(1, int(penaltyAfter))
        self.pid = os.getpid() if pid is None else pid
        self._calls = 0
        self._database = RunDatabase(path, "login delays", "failed logins are not delayed")
        self._database.schema = _SCHEMA

    delayFor = MemoryLoginDelays.delayFor

    def _connect(self):
        return self._database._connect()

    def _transaction(self, work, default):
        """
        Run C{work(db, now)} in one transaction.

        @return: its result, or C{default} when the database cannot be used.
        """

        def run(db):
            result = work(db, self.clock.seconds())
            self._calls += 1
            if self._calls % self.EXPIRE_EVERY == 0:
                self._expire(db, self.clock.seconds())
            return result

        return self._database.transaction(run, default)

    @staticmethod
    def _remote(remote):
        return "" if remote is None else str(remote)

    @staticmethod
    def _key(key):
        return key.hex() if isinstance(key, bytes) else repr(key)

    def _inFlight(self, db, remote):
        return dict(db.execute("SELECT key, SUM(count) FROM inflight WHERE remote = ? GROUP BY key", (remote,)))

    def _entry(self, db, remote, now):
        """
        C{[failures, last, nextSlot]} of C{remote}, forgotten failures
        reset, created when missing.
        """
        row = db.execute("SELECT failures, last, nextSlot FROM addresses WHERE remote = ?", (remote,)).fetchone()
        if row is None:
            db.execute("INSERT INTO addresses (remote, failures, last, nextSlot) VALUES (?, 0, ?, 0)", (remote, now))
            return [0, now, 0.0]
        entry = list(row)
        if now - entry[1] >= FORGET_AFTER and entry[0] and not self._inFlight(db, remote):
            entry[0] = 0
        return entry

    def _store(self, db, remote, entry):
        db.execute("UPDATE addresses SET failures = ?, last = ?, nextSlot = ? WHERE remote = ?",
                   (entry[0], entry[1], entry[2], remote))

    def _expire(self, db, now):
        db.execute("DELETE FROM addresses WHERE last <= ? AND nextSlot <= ? AND remote NOT IN"
                   " (SELECT remote FROM inflight)", (now - FORGET_AFTER, now))

    # -- ILoginDelays ----------------------------------------------------------

    def admit(self, remote, key):
        remote, key = self._remote(remote), self._key(key)

        def work(db, now):
            entry = self._entry(db, remote, now)
            inFlight = self._inFlight(db, remote)
            penalised = entry[0] >= self.penaltyAfter or (key not in inFlight and len(inFlight) >= self.penaltyAfter)
            db.execute("INSERT INTO inflight (remote, key, pid, count) VALUES (?, ?, ?, 1)"
                       " ON CONFLICT (remote, key, pid) DO UPDATE SET count = count + 1", (remote, key, self.pid))
            if not penalised or self.failureDelay <= 0:
                self._store(db, remote, entry)
                return 0.0
            slot = max(now, entry[2]) + self.delayFor(max(entry[0], 1))
            entry[2] = slot
            self._store(db, remote, entry)
            return slot - now

        return self._transaction(work, 0.0)

    def finish(self, remote, succeeded, waited):
        remote = self._remote(remote)

        def work(db, now):
            entry = self._entry(db, remote, now)
            if succeeded:
                entry[0] = 0
                self._store(db, remote, entry)
                return 0.0
            entry[0] += 1
            entry[1] = now
            self._store(db, remote, entry)
            return 0.0 if waited else self.delayFor(entry[0])

        return self._transaction(work, 0.0 if succeeded else self.delayFor(1))

    def release(self, remote, key):
        remote, key = self._remote(remote), self._key(key)

        def work(db, now):
            db.execute("UPDATE inflight SET count = count - 1 WHERE remote = ? AND key = ? AND pid = ?",
                       (remote, key, self.pid))
            db.execute("DELETE FROM inflight WHERE count <= 0")
            db.execute("DELETE FROM addresses WHERE remote = ? AND failures = 0 AND nextSlot <= ? AND remote NOT IN"
                       " (SELECT remote FROM inflight)", (remote, now))

        self._transaction(work, None)

    def failures(self, remote):
        remote = self._remote(remote)

        def work(db, now):
            row = db.execute("SELECT failures, last FROM addresses WHERE remote = ?", (remote,)).fetchone()
            if row is None or (now - row[1] >= FORGET_AFTER and not self._inFlight(db, remote)):
                return 0
            return row[0]

        return self._transaction(work, 0)

    def addresses(self):
        """
        @return: C{list} of the addresses remembered, oldest activity first.
        """
        return self._transaction(
            lambda db, now: [r for (r,) in db.execute("SELECT remote FROM addresses ORDER BY last")], [])

    def forgetProcess(self, pid):
        """
        Process C{pid} ended: its attempts are no longer under way.
        """
        self._transaction(lambda db, now: db.execute("DELETE FROM inflight WHERE pid = ?", (pid,)), None)

    def close(self):
        self._database.close()


@implementer(ILoginDelays)
class ThreadedLoginDelays:
    """
    L{SharedLoginDelays} with its transactions in a thread of their own,
    not on the reactor's: SQLite's wait for another worker's transaction
    (3% of them waited 1-10 ms with two workers under imaptest's LOGIN per
    cycle, C{bench/RESULTS.md}, session 23) then holds up no session.

    One thread, so the calls run in the order they were made (an attempt's
    C{admit}, C{finish} and C{release}); C{admit}, C{finish} and
    C{failures} return C{Deferred}s, C{release} returns at once.

    @ivar delays: the L{SharedLoginDelays}, used from that thread only.
    """

    def __init__(self, delays, reactor):
        self.delays = delays
        self.reactor = reactor
        self._pool = None

    def _call(self, f, *args):
        if self._pool is None:
            self._pool = ThreadPool(1, 1, "login delays")
            self._pool.start()
            self.reactor.addSystemEventTrigger("during", "shutdown", self._pool.stop)
        return deferToThreadPool(self.reactor, self._pool, f, *args)

    def delayFor(self, count):
        return self.delays.delayFor(count)

    def admit(self, remote, key):
        return self._call(self.delays.admit, remote, key)

    def finish(self, remote, succeeded, waited):
        return self._call(self.delays.finish, remote, succeeded, waited)

    def release(self, remote, key):
        self._call(self.delays.release, remote, key).addErrback(
            lambda failure: log.failure("releasing a login attempt", failure))

    def failures(self, remote):
        return self._call(self.delays.failures, remote)

    def addresses(self):
        """A C{Deferred} firing with L{SharedLoginDelays.addresses}."""
        return self._call(self.delays.addresses)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS addresses (
    remote TEXT PRIMARY KEY, failures INTEGER NOT NULL, last REAL NOT NULL, nextSlot REAL NOT NULL);
CREATE TABLE IF NOT EXISTS inflight (
    remote TEXT NOT NULL, key TEXT NOT NULL, pid INTEGER NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (remote, key, pid));
"""

#: The database of L{SharedLoginDelays}, under the data root.
SHARED_PATH = os.path.join("run", "login-delays.sqlite")
