# -*- test-case-name: tests.test_metricvalues -*-
"""
Counters that do not allocate when they count.

A Python C{float} or C{int} is immutable: a counter kept as one is a new
object at every update, made wherever pymalloc has a free block then, and
the last one lives on.  After a busy period the counters' last values sit
in the arenas the sessions' short-lived objects filled, one or a few per
arena, and each keeps its whole arena (a megabyte) from going back to the
system: a soak's arena map found 189 of prometheus-client's floats in one
such arena, and a thousand integers of the per-protocol totals in another.

Here the values live in slots of C{array.array}s made in advance
(L{Slots}): an update reads the slot, adds and writes it back, and the
temporary objects are freed at once.

  - L{SlotValue} is prometheus-client's value class (the C{ValueClass} of
    C{prometheus_client.values}, read when a metric or a labelled child is
    made) with its value in a slot; L{install} puts it in place.
  - L{Counts} is a mapping of name -> integer total (the monitor's
    sessions accepted and bytes by protocol) whose totals are slots.
"""

import array
import threading
from collections.abc import Mapping

import prometheus_client.values

#: Slots in one chunk of L{Slots} (8 bytes each: a chunk of 32 kB, outside
#: pymalloc's arenas, which take blocks of up to 512 bytes only).
CHUNK = 4096


class Slots:
    """
    Numbers kept in the slots of C{array.array}s of one type code, made a
    chunk at a time (the first at construction) and never resized (a
    resize would move every slot, and a slot is known by its array and
    index).

    @ivar typecode: C{'d'} (floats) or C{'q'} (64-bit integers).
    @ivar lock: held while a slot is updated (an update is a read and a
        write, and threads count too).
    """

    def __init__(self, typecode, chunk=CHUNK):
        self.typecode = typecode
        self.chunk = chunk
        self.lock = threading.Lock()
        self.chunks = 0
        self._newChunk()

    def _newChunk(self):
        self._current = array.array(self.typecode, bytes(array.array(self.typecode).itemsize * self.chunk))
        self._used = 0
        self.chunks += 1

    def allocate(self):
        """
        A new slot, holding 0.

        @return: C{(array, index)}.
        """
        with self.lock:
            if self._used == self.chunk:
                self._newChunk()
            index = self._used
            self._used += 1
            return self._current, index


#: The slots of every L{SlotValue} (made with the first chunk at import, so
#: before the server's start-up measure).
FLOATS = Slots("d")


class SlotValue:
    """
    A prometheus-client value (C{prometheus_client.values.MutexValue}'s
    interface) kept in a slot of L{FLOATS}: C{inc} makes no lasting object.
    Exemplars are kept as given (the server sets none).
    """

    __slots__ = ("_array", "_index", "_exemplar")
    _multiprocess = False
    slots = FLOATS

    def __init__(self, typ, metric_name, name, labelnames, labelvalues, help_text, **kwargs):
        self._array, self._index = self.slots.allocate()
        self._exemplar = None

    def inc(self, amount):
        with self.slots.lock:
            self._array[self._index] += amount

    def set(self, value, timestamp=None):
        with self.slots.lock:
            self._array[self._index] = value

    def get(self):
        return self._array[self._index]

    def set_exemplar(self, exemplar):
        self._exemplar = exemplar

    def get_exemplar(self):
        return self._exemplar


def install(values=prometheus_client.values):
    """
    Make L{SlotValue} prometheus-client's value class, for the metrics and
    children made from now on; not in its multi-process mode (whose values
    are in shared files: C{PROMETHEUS_MULTIPROC_DIR}), which is left alone.

    @return: C{True} when L{SlotValue} is the value class.
    """
    if values.ValueClass is values.MutexValue:
        values.ValueClass = SlotValue
    return values.ValueClass is SlotValue


class Counts(Mapping):
    """
    Integer totals by name (a protocol), each in a slot of C{array('q')}:
    read as a C{dict} of name -> total, counted with L{add}.  Names given at
    construction (or to L{prepare}) get their slots then; another gets one
    at its first count.
    """

    def __init__(self, names=(), slots=None):
        self._slots = Slots("q", 64) if slots is None else slots
        self._where = {}
        self.prepare(names)

    def prepare(self, names):
        """
        Give each of C{names} its slot now (at start-up rather than during
        traffic: the slot's key and index live as long as the process).
        """
        for name in names:
            if name not in self._where:
                self._where[name] = self._slots.allocate()

    def add(self, name, amount=1):
        """
        Add C{amount} to the total of C{name}.
        """
        where = self._where.get(name)
        if where is None:
            self.prepare([name])
            where = self._where[name]
        values, index = where
        with self._slots.lock:
            values[index] += amount

    def __getitem__(self, name):
        values, index = self._where[name]
        return values[index]

    def __iter__(self):
        return iter(self._where)

    def __len__(self):
        return len(self._where)

    def __repr__(self):
        return "Counts(%r)" % (dict(self),)
