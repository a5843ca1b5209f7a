# -*- test-case-name: tests.test_limits_shared -*-
"""
The connections open in every worker process of C{[server] workers = N},
by protocol and client address, for the connection limits
(C{max_connections}, C{max_connections_per_address}, FTP's
C{max_connections_per_account}): L{SharedConnectionCounts}.

Each worker writes its own counts into its slot of a shared file,
C{run/connection-counts} under the data root, mapped in memory, and a limit
compares with the sum over the workers' slots.  No lock, no system call:
a worker's slot has one writer, itself, and a reader takes a slot's counts
again when the slot changed while it read them (a sequence number, odd
while its writer writes).

Until session 23 the counts were rows of a SQLite database under
C{run/}, one transaction when a connection opened and one when it closed,
on the reactor's thread.  In a burst of new connections 5% of those
transactions waited 1-10 ms for the other worker's (SQLite's busy wait,
during which the worker's every session waited too), and without them a
burst went 43% faster (C{bench/connect.py}, C{bench/RESULTS.md}).

A slot is a table of C{(key, count)}, the key a 64-bit hash of the
protocol and the address (the protocol's total under the address C{""}),
found by linear probing from the hash.  An entry whose count fell to 0
stays until the table is half full; then the worker writes its table anew
with the counts it has open.  A worker with more distinct addresses open
than fit (L{CAPACITY} / 2) counts the rest in its own limits only (the
other workers do not see them), and says so once.

Two workers that check a limit at the same moment may both take the last
place: the server may then have a connection more than the limit per
other worker, for as long as those connections last.
"""

import hashlib
import struct

from gateway.logging import getLogger
from gateway.runstate import mapRunFile, runPath

log = getLogger("server")

#: The shared file under the data root's run folder.
NAME = "connection-counts"

#: Workers with a slot (as L{gateway.workerload.SLOTS}).
SLOTS = 64

#: Entries of a worker's table: keys it has seen since the table was last
#: written anew; the table is written anew when half are used.
CAPACITY = 32768

_HEADER = struct.Struct("q")  # sequence number (odd while written)
_ENTRY = struct.Struct("Qq")  # key (0: empty), count
SLOT_SIZE = _HEADER.size + CAPACITY * _ENTRY.size

#: How often a reader takes a slot again while its writer writes before
#: it counts that slot as empty.
_RETRIES = 1000


def _key(protocol, remote):
    digest = hashlib.blake2b(("%s\0%s" % (protocol, remote)).encode("utf-8", "surrogateescape"),
                             digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1  # 0 marks an empty entry


def _openMap(dataRoot, create):
    return mapRunFile(dataRoot, NAME, SLOTS * SLOT_SIZE, create)


def _clear(memory, number):
    """Empty worker C{number}'s slot (its writer is not running)."""
    start = (number - 1) * SLOT_SIZE
    (sequence,) = _HEADER.unpack_from(memory, start)
    _HEADER.pack_into(memory, start, sequence | 1)
    memory[start + _HEADER.size:start + SLOT_SIZE] = bytes(SLOT_SIZE - _HEADER.size)
    _HEADER.pack_into(memory, start, (sequence | 1) + 1)


def _entry(start, index):
    """The offset of entry C{index} of the slot at C{start}."""
    return start + _HEADER.size + index * _ENTRY.size


def _place(memory, start, key):
    """The index of the entry for new C{key} in the slot at C{start}: the first empty one from its hash."""
    index = key % CAPACITY
    while _ENTRY.unpack_from(memory, _entry(start, index))[0] != 0:
        index = (index + 1) % CAPACITY
    return index


def forgetWorker(dataRoot, number):
    """
    Worker C{number} ended (the parent): its connections are closed.
    """
    if not 1 <= number <= SLOTS:
        return
    try:
        memory = _openMap(dataRoot, create=False)
    except OSError:
        return  # no worker counted anything yet
    try:
        _clear(memory, number)
    finally:
        memory.close()


class SharedConnectionCounts:
    """
    This worker's connections, counted in its slot, and everyone's, read
    from all the slots.

    @ivar number: this worker's number (1 to C{workers}).
    @ivar workers: how many workers' slots are read.
    """

    def __init__(self, dataRoot, number, workers=None):
        self.number = number
        self.workers = min(SLOTS, max(number, workers or number))
        self._dataRoot = dataRoot
        self._memory = None
        self._mine = {}  # key -> count, what this worker has open
        self._where = {}  # key -> its entry's index in the table
        self._full = False
        self._broken = False

    def _map(self):
        """
        The shared file, mapped; C{None} when it cannot be (said once: the
        limits then count this worker's connections only).
        """
        if self._memory is None and not self._broken:
            try:
                self._memory = _openMap(self._dataRoot, create=True)
            except OSError as e:
                self._broken = True
                log.error("connection counts: {path}: {error}; the connection limits count this worker's"
                          " connections only", path=runPath(self._dataRoot, NAME), error=e)
                return None
            if 1 <= self.number <= SLOTS:
                _clear(self._memory, self.number)  # what a killed predecessor left
        return self._memory

    # -- reading -------------------------------------------------------------

    def _read(self, number, key):
        """The count of C{key} in worker C{number}'s slot."""
        memory = self._map()
        if memory is None:
            return 0
        start = (number - 1) * SLOT_SIZE
        for _ in range(_RETRIES):
            (sequence,) = _HEADER.unpack_from(memory, start)
            if sequence & 1:
                continue
            count = 0
            index = key % CAPACITY
            for _probe in range(CAPACITY):
                found, value = _ENTRY.unpack_from(memory, _entry(start, index))
                if found == key:
                    count = value
                    break
                if found == 0:
                    break
                index = (index + 1) % CAPACITY
            if _HEADER.unpack_from(memory, start)[0] == sequence:
                return count
        return 0

    def _total(self, key):
        total = self._mine.get(key, 0)
        for number in range(1, self.workers + 1):
            if number != self.number:
                total += self._read(number, key)
        return total

    # -- writing -------------------------------------------------------------

    def _write(self, key, count):
        """Publish C{count} for C{key} in this worker's slot."""
        memory = self._map() if 1 <= self.number <= SLOTS else None
        if memory is None:
            return
        start = (self.number - 1) * SLOT_SIZE
        index = self._where.get(key)
        if index is None:
            half = CAPACITY // 2
            # Written anew when a quarter of its keys are closed ones (not
            # for each new key of a worker that has the table's worth open).
            if len(self._where) >= half and len(self._where) - len(self._mine) >= half // 4:
                self._rewrite()
            if len(self._where) >= half:
                if not self._full:
                    self._full = True
                    log.warn("connection counts: more than {n} addresses open in this worker; the others' limits"
                             " no longer count its connections from the rest", n=half)
                return
            self._full = False
            index = self._where[key] = _place(memory, start, key)
        (sequence,) = _HEADER.unpack_from(memory, start)
        _HEADER.pack_into(memory, start, sequence + 1)
        _ENTRY.pack_into(memory, _entry(start, index), key, count)
        _HEADER.pack_into(memory, start, sequence + 2)

    def _rewrite(self):
        """Write this worker's table anew with only the keys it has open."""
        memory = self._map()
        start = (self.number - 1) * SLOT_SIZE
        (sequence,) = _HEADER.unpack_from(memory, start)
        _HEADER.pack_into(memory, start, sequence + 1)
        memory[start + _HEADER.size:start + SLOT_SIZE] = bytes(SLOT_SIZE - _HEADER.size)
        self._where = {}
        for key, count in self._mine.items():
            index = self._where[key] = _place(memory, start, key)
            _ENTRY.pack_into(memory, _entry(start, index), key, count)
        _HEADER.pack_into(memory, start, sequence + 2)

    def _add(self, key, change):
        count = self._mine.get(key, 0) + change
        if count > 0:
            self._mine[key] = count
        else:
            count = 0
            self._mine.pop(key, None)
        self._write(key, count)

    # -- the limits' interface -----------------------------------------------

    @staticmethod
    def _remote(host):
        return "" if host is None else str(host)

    def acquire(self, protocol, host, maxTotal, maxPerAddress):
        """
        Count a new connection unless it is over a limit (0: no limit).

        @return: C{None} when counted, else the reason (C{'total'} or C{'address'}).
        """
        total = _key(protocol, "")
        if maxTotal and self._total(total) >= maxTotal:
            return "total"
        address = None if host is None else _key(protocol, self._remote(host))
        if maxPerAddress and address is not None and self._total(address) >= maxPerAddress:
            return "address"
        self._add(total, 1)
        if address is not None:
            self._add(address, 1)
        return None

    def release(self, protocol, host):
        """
        A connection L{acquire} counted has closed.
        """
        self._add(_key(protocol, ""), -1)
        if host is not None:
            self._add(_key(protocol, self._remote(host)), -1)

    def open(self, protocol):
        """
        @return: the connections of C{protocol} open in every worker.
        """
        return self._total(_key(protocol, ""))

    def close(self):
        if self._memory is not None:
            self._memory.close()
            self._memory = None
