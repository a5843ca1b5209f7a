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
so a store shared by several processes can replace it.
"""

import collections

from zope.interface import implementer

from gateway.interfaces import ILoginDelays

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
