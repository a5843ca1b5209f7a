# -*- test-case-name: tests.test_memarenas -*-
"""
What pins pymalloc's arenas: a map of CPython's small-object allocator
(blocks of at most 512 bytes, in pools of 16 KiB, in arenas of 1 MiB, on
64-bit CPython 3.10 to 3.12) to the live objects in it, for memory reports.

An arena goes back to the system only when its last block is freed: after a
busy period, an arena that keeps a few long-lived blocks among thousands the
sessions freed keeps its megabyte (fragmentation).  L{arenaMap} finds the
blocks it can name: the objects the collector tracks, what they refer to
(strings, numbers, tuples: untracked objects), and the out-of-line tables of
dicts, lists and sets (a dict's keys table, a list's item array, a set's
hash table).  Each address is mapped to its pool (the address rounded down
to 16 KiB), whose header gives the pool's arena (its index), its size class
and how many blocks it has in use.  The sparsest arenas are then listed
with what lives in them.

The pool header is read with C{ctypes}: only at an address inside an
anonymous mapping of the process (C{/proc/self/maps}) and only when the
header is plausible, so that a large object (from C{malloc}) or a static
one (in the interpreter's data) is left out, not misread.
"""

import bisect
import collections
import ctypes
import gc
import platform
import sys

_CODE = type(compile("", "", "exec"))
#: pymalloc's pool and arena sizes on 64-bit CPython 3.10 to 3.12.
POOL_SIZE = 16 << 10
ARENA_SIZE = 1 << 20

#: The largest block pymalloc serves; a block's size is (size class + 1) * 16.
SMALL_REQUEST_THRESHOLD = 512
ALIGNMENT = 16

#: Size of the pool header, rounded up to the alignment (POOL_OVERHEAD).
_POOL_OVERHEAD = 48

#: Offsets in the C structures read (CPython 3.11, 64-bit).
_DICT_KEYS = 32  # PyDictObject.ma_keys
_LIST_ITEMS = 24  # PyListObject.ob_item
_LIST_ALLOCATED = 32  # PyListObject.allocated
_SET_MASK = 32  # PySetObject.mask
_SET_TABLE = 40  # PySetObject.table


def supported():
    """
    Whether this interpreter's layout is the one this module reads (64-bit
    CPython 3.11, pymalloc on).
    """
    return (platform.python_implementation() == "CPython" and sys.version_info[:2] == (3, 11)
            and sys.maxsize > 2**32 and hasattr(sys, "_debugmallocstats"))


def anonymousMappings(path="/proc/self/maps"):
    """
    The readable anonymous mappings of this process (no file, no
    C{[heap]}-style name), merged, as sorted C{(low, high)} pairs.
    """
    found = []
    try:
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) > 5 or not fields[1].startswith("r"):
                    continue
                low, high = (int(x, 16) for x in fields[0].split("-"))
                if found and found[-1][1] == low:
                    found[-1] = (found[-1][0], high)
                else:
                    found.append((low, high))
    except OSError:
        return []
    return found


class _Pool:
    __slots__ = ("address", "arena", "sizeClass", "used")

    def __init__(self, address, arena, sizeClass, used):
        self.address = address
        self.arena = arena
        self.sizeClass = sizeClass
        self.used = used

    @property
    def blockSize(self):
        return (self.sizeClass + 1) * ALIGNMENT

    @property
    def capacity(self):
        return (POOL_SIZE - _POOL_OVERHEAD) // self.blockSize


class ArenaMap:
    """
    The pools and arenas the live blocks found are in.

    @ivar pools: C{dict} of pool address -> L{_Pool}.
    @ivar arenas: C{dict} of arena index -> C{list} of its L{_Pool}s seen.
    """

    def __init__(self, mappings=None):
        self._mappings = anonymousMappings() if mappings is None else mappings
        self._lows = [low for low, _ in self._mappings]
        self.pools = {}
        self.arenas = collections.defaultdict(list)

    def _readable(self, address, size):
        i = bisect.bisect_right(self._lows, address) - 1
        return i >= 0 and address + size <= self._mappings[i][1]

    def _header(self, base):
        """
        The plausible pool header at C{base}, or C{None}.
        """
        if not self._readable(base, _POOL_OVERHEAD):
            return None
        used = ctypes.c_uint.from_address(base).value
        arena = ctypes.c_uint.from_address(base + 32).value
        sizeClass = ctypes.c_uint.from_address(base + 36).value
        if sizeClass >= SMALL_REQUEST_THRESHOLD // ALIGNMENT or arena >= 1 << 20:
            return None
        if used > (POOL_SIZE - _POOL_OVERHEAD) // ((sizeClass + 1) * ALIGNMENT):
            return None
        return _Pool(base, arena, sizeClass, used)

    def pool(self, address, size=1):
        """
        The pool the block of C{size} bytes at C{address} is in, or C{None}
        when it is not a pymalloc block.
        """
        if size > SMALL_REQUEST_THRESHOLD or not address:
            return None
        base = address & ~(POOL_SIZE - 1)
        pool = self.pools.get(base)
        if pool is None:
            if address - base < _POOL_OVERHEAD:
                return None
            pool = self._header(base)
            if pool is None or not pool.used:
                return None
            self.pools[base] = pool
            self.arenas[pool.arena].append(pool)
        return pool if size <= pool.blockSize else None

    def complete(self):
        """
        Add the pools of each arena where no live block was found: those
        with its index in their header, within an arena's size of those
        found (the empty pools it keeps included).
        """
        for arena, pools in list(self.arenas.items()):
            low = min(p.address for p in pools)
            high = max(p.address for p in pools)
            for base in range(high - ARENA_SIZE + POOL_SIZE, low + ARENA_SIZE, POOL_SIZE):
                if base in self.pools:
                    continue
                pool = self._header(base)
                if pool is not None and pool.arena == arena and (pool.used or pool.sizeClass or arena):
                    self.pools[base] = pool
                    pools.append(pool)

    def used(self, arena):
        """
        The bytes in use in the pools of C{arena} that were seen (blocks in
        use times their size).
        """
        return sum(p.used * p.blockSize for p in self.arenas[arena])

    def free(self, arena):
        """
        The bytes free in the pools of C{arena} that hold a block, and the
        empty pools it keeps.
        """
        pools = self.arenas[arena]
        return (sum((p.capacity - p.used) * p.blockSize for p in pools if p.used),
                sum(1 for p in pools if not p.used))


class _Visited:
    """
    The objects a walk has met: a bit per 16-byte slot of each pymalloc
    pool (in one C{bytearray}, which C{malloc} holds: the walk's own marks
    do not fill the arenas it maps), and a set of the other objects' ids
    (few: the large and static ones).
    """

    def __init__(self, arenaMap):
        self.arenaMap = arenaMap
        self.slots = {}  # pool address -> offset in bits
        self.bits = bytearray()
        self.others = set()

    def add(self, o):
        """
        Mark C{o}; C{True} when it was already.
        """
        address = id(o)
        pool = self.arenaMap.pool(address, objectSize(o))
        if pool is None:
            if address in self.others:
                return True
            self.others.add(address)
            return False
        offset = self.slots.get(pool.address)
        if offset is None:
            offset = self.slots[pool.address] = len(self.bits)
            self.bits.extend(bytes(POOL_SIZE // ALIGNMENT // 8))
        slot = (address - pool.address) // ALIGNMENT
        byte, bit = offset + (slot >> 3), 1 << (slot & 7)
        if self.bits[byte] & bit:
            return True
        self.bits[byte] |= bit
        return False


class _Walk:
    """
    An iterator over every object reachable from what the collector tracks
    and from the modules, once each, its own state and C{exclude}'s
    objects (and what only they refer to) left out.
    """

    def __init__(self, arenaMap, exclude=()):
        self.visited = _Visited(arenaMap)
        self.stack = None
        for o in (self, self.__dict__, self.visited, self.visited.__dict__, self.visited.slots, self.visited.others,
                  self.visited.bits, arenaMap) + tuple(exclude):
            self.visited.add(o)
            if type(o) is ArenaMap:  # its state, its pools (the collector tracks them) and their addresses
                for x in (o.__dict__, o.pools, o.arenas, o._mappings, o._lows):
                    self.visited.add(x)
                for pool in list(o.pools.values()):
                    self.visited.add(pool)
                    self.visited.add(pool.address)
                for pools in list(o.arenas.values()):
                    self.visited.add(pools)

    def __iter__(self):
        return self

    def __next__(self):
        if self.stack is None:
            self.stack = gc.get_objects()
            self.stack.append(sys.modules)
        stack, visited = self.stack, self.visited
        while stack:
            o = stack.pop()
            if visited.add(o):
                continue
            stack.extend(gc.get_referents(o))
            if type(o) is _CODE:  # not a container the collector traverses: what it holds
                stack.extend((o.co_consts, o.co_names, o.co_filename, o.co_name, o.co_qualname, o.co_linetable,
                              o.co_exceptiontable))
            return o
        raise StopIteration


def reachableObjects(arenaMap=None, exclude=()):
    """
    Every object reachable from what the collector tracks and from the
    modules (the start-up ones L{gc.freeze} set aside included), once each,
    the objects in C{exclude} (and what only they refer to) left out.

    @return: an iterator of objects.
    """
    return _Walk(ArenaMap() if arenaMap is None else arenaMap, exclude)


_HAVE_GC = 1 << 14  # Py_TPFLAGS_HAVE_GC: the collector's header is before the object
_MANAGED_DICT = 1 << 4  # Py_TPFLAGS_MANAGED_DICT (3.11): two more pointers before it


def objectSize(o):
    """
    The bytes of C{o}'s own block: for an object of variable size (a
    string, a number, a tuple, bytes) C{sys.getsizeof} (which counts the
    collector's header); for the others their type's size with the headers
    before the object, not the tables C{sys.getsizeof} adds (a dict's keys,
    a list's items: separate blocks, L{innerBlocks}).  The same object has
    the same size however much its tables grow.
    """
    kind = type(o)
    if kind.__itemsize__ or issubclass(kind, str):
        try:
            return sys.getsizeof(o)
        except Exception:
            return SMALL_REQUEST_THRESHOLD + 1
    flags = kind.__flags__
    return kind.__basicsize__ + (16 if flags & _HAVE_GC else 0) + (16 if flags & _MANAGED_DICT else 0)


def innerBlocks(o):
    """
    The out-of-line tables of C{o} that pymalloc may hold, as C{(address,
    size, kind)}: a dict's keys table, a list's item array, a set's hash
    table (a small set's is inside the object).
    """
    kind = type(o)
    address = id(o)
    try:
        if kind is dict or isinstance(o, dict):
            keys = ctypes.c_void_p.from_address(address + _DICT_KEYS).value
            if keys:
                # Its size is not read here: the pool's size class bounds it.
                return [(keys, 1, "keys table of a dict of %d items" % (len(o),))]
        elif kind is list or isinstance(o, list):
            items = ctypes.c_void_p.from_address(address + _LIST_ITEMS).value
            allocated = ctypes.c_ssize_t.from_address(address + _LIST_ALLOCATED).value
            if items and 0 < allocated:
                return [(items, allocated * 8, "item array of a list of %d (room for %d)" % (len(o), allocated))]
        elif kind in (set, frozenset) or isinstance(o, (set, frozenset)):
            table = ctypes.c_void_p.from_address(address + _SET_TABLE).value
            mask = ctypes.c_ssize_t.from_address(address + _SET_MASK).value
            if table and not address <= table < address + sys.getsizeof(o):
                return [(table, (mask + 1) * 16, "hash table of a set of %d (room for %d)" % (len(o), mask + 1))]
    except (ValueError, OverflowError, TypeError):
        pass
    return []


def _blocks(o):
    yield id(o), objectSize(o), None
    yield from innerBlocks(o)


def _describe(o):
    kind = type(o)
    name = "%s.%s" % (kind.__module__, kind.__qualname__)
    try:
        text = repr(o) if kind in (str, bytes, int, float, tuple) else object.__repr__(o)
    except Exception:
        text = "?"
    return name, text[:60]


def _freeBlocks(pool):
    """
    The addresses of the free blocks of C{pool} (its free list) and the
    offset up to which its blocks were ever carved.
    """
    free = set()
    block = ctypes.c_void_p.from_address(pool.address + 8).value
    while block and len(free) <= pool.capacity and pool.address < block < pool.address + POOL_SIZE:
        free.add(block)
        block = ctypes.c_void_p.from_address(block).value
    return free, ctypes.c_uint.from_address(pool.address + 40).value


def unnamedBlocks(pool, named, typeIds):
    """
    What the blocks in use of C{pool} that the walk did not meet look like:
    an object whose type is known (where its header is: after the
    collector's header and the managed-dict pointers, or at the start), a
    free list's object (reference count 0: a tuple, float or dict the
    interpreter keeps for reuse), or bytes that are not an object.

    @param named: the addresses the walk met, as a C{set}-like.
    @param typeIds: the ids of the types known.
    @return: C{list} of (description, first 16 bytes, or the C{repr} of a
        live string or number).
    """
    free, carved = _freeBlocks(pool)
    found = []
    for offset in range(_POOL_OVERHEAD, min(carved, POOL_SIZE - pool.blockSize + 1), pool.blockSize):
        block = pool.address + offset
        if block in free or any(block + h in named for h in (0, 16, 32) if h < pool.blockSize):
            continue
        what = None
        head = ctypes.string_at(block, 16)
        for h in (0, 16, 32):
            if h + 16 > pool.blockSize:
                break
            refs = ctypes.c_ssize_t.from_address(block + h).value
            kind = ctypes.c_void_p.from_address(block + h + 8).value
            if kind in typeIds and 0 <= refs < 1 << 40:
                what = typeIds[kind] + (" (reference count 0: a free list's)" if refs == 0 else "")
                if refs and h == 0 and typeIds[kind] in _VALUE_TYPES:
                    # A live string or number: its value says more than its bytes.
                    head = repr(ctypes.cast(block, ctypes.py_object).value)[:70]
                break
        found.append((what or "not an object", head))
    return found


#: The types whose value L{unnamedBlocks} shows (immutable, no references).
_VALUE_TYPES = frozenset(["builtins.str", "builtins.bytes", "builtins.int", "builtins.float"])


def arenaReport(sparsest=6, perArena=20, referrersOf=4, objects=reachableObjects):
    """
    Lines on the arenas: how full each is, and for the C{sparsest} arenas
    what lives in them (by type and size, with an example of each, and who
    refers to the examples of the C{referrersOf} largest groups).

    The map itself allocates little from pymalloc (its marks are in one
    C{bytearray}; what lives in the sparsest arenas is counted, not listed),
    so that it leaves the arenas as it found them.

    @param objects: gives the objects to map, given the L{ArenaMap} and the
        objects to leave out (called twice).
    """
    if not supported():
        return ["(the arena map needs 64-bit CPython 3.11 with pymalloc)"]
    from gateway.memdebug import referrers

    arenaMap = ArenaMap()
    counts = {}  # arena -> Counter of (type name, inner block kind, block size)
    examples = {}  # arena -> {that key: (object, description)}
    typeIds = {}  # id of a type -> its name
    named = set()  # the addresses of the blocks named in the sparsest arenas
    ours = [arenaMap, arenaMap.__dict__, arenaMap.pools, arenaMap.arenas, counts, examples, typeIds, named]
    ours.append(ours)
    try:
        found = 0
        for o in objects(arenaMap, exclude=ours):  # first: the pools, and so the arenas and their use
            if type(o) is _Pool:
                continue
            found += 1
            if isinstance(o, type):
                typeIds[id(o)] = "%s.%s" % (o.__module__, o.__qualname__)
            for address, size, _ in _blocks(o):
                arenaMap.pool(address, size)
        arenaMap.complete()
        arenas = sorted(arenaMap.arenas, key=arenaMap.used)
        for arena in arenas[:sparsest]:
            counts[arena], examples[arena] = collections.Counter(), {}
        ours += [arenas] + list(counts.values()) + list(examples.values())
        for o in objects(arenaMap, exclude=ours):  # then what lives in the sparsest
            if type(o) is _Pool:
                continue
            for address, size, what in _blocks(o):
                pool = arenaMap.pool(address, size)
                if pool is not None and pool.arena in counts:
                    key = (type(o), what and what.split(" of ")[0], pool.blockSize)
                    counts[pool.arena][key] += 1
                    named.add(address)
                    if key not in examples[pool.arena]:
                        examples[pool.arena][key] = (o, what)
        usedPools = sum(1 for p in arenaMap.pools.values() if p.used)
        lines = ["%d objects walked; %d arenas with a live block, %d pools in use in them, %.1f MB in use,"
                 " %.1f MB free in those pools, %d empty pools kept"
                 % (found, len(arenas), usedPools, sum(map(arenaMap.used, arenas)) / 1e6,
                    sum(arenaMap.free(a)[0] for a in arenas) / 1e6, sum(arenaMap.free(a)[1] for a in arenas)),
                 "kB in use by arena (index:kB), emptiest first:"]
        lines.append("  " + " ".join("%d:%d" % (a, arenaMap.used(a) // 1000) for a in arenas))
        ignore = {id(x) for x in ours} | {id(x) for e in examples.values() for x in e.values()}
        for arena in arenas[:sparsest]:
            pools = arenaMap.arenas[arena]
            free, empty = arenaMap.free(arena)
            sizes = collections.Counter()
            for p in pools:
                if p.used:
                    sizes[p.blockSize] += p.used
            lines += ["", "arena %d: %d blocks in use (%.1f kB) in %d pools (%s), %.1f kB free in them, %d empty"
                      " pools; %d blocks named:"
                      % (arena, sum(p.used for p in pools), arenaMap.used(arena) / 1e3,
                         sum(1 for p in pools if p.used),
                         ", ".join("%d x %d B" % (n, size) for size, n in sorted(sizes.items())), free / 1e3,
                         empty, sum(counts[arena].values()))]
            for rank, ((kind, what, size), n) in enumerate(counts[arena].most_common(perArena)):
                o, detail = examples[arena][(kind, what, size)]
                lines.append("  %5d x %3d B %s%s.%s: %s" % (n, size, ("%s of " % (what,)) if what else "",
                                                          kind.__module__, kind.__qualname__,
                                                          detail if detail else _describe(o)[1]))
                if rank < referrersOf:  # who holds the example of the largest groups
                    lines.append("          <- %s" % (referrers(o, ignore=ignore, depth=2),))
            unnamed = collections.Counter()
            sample = {}
            for p in pools:
                if p.used:
                    for what, head in unnamedBlocks(p, named, typeIds):
                        unnamed[(what, p.blockSize)] += 1
                        sample.setdefault((what, p.blockSize), head)
            lines.append("  blocks in use the walk did not meet: %d" % (sum(unnamed.values()),))
            for (what, size), n in unnamed.most_common(perArena // 2):
                head = sample[(what, size)]
                lines.append("  %5d x %3d B %s (%s)" % (n, size, what, head if isinstance(head, str) else head.hex(" ", 8)))
        return lines
    finally:  # no cycle through what was found
        for container in (arenaMap.pools, arenaMap.arenas, counts, examples, typeIds, named):
            container.clear()
        del ours[:]
