# -*- test-case-name: tests.test_idle -*-
"""
The caches modules keep for the life of the process (a formatted flag
list per distinct set of flags, a decoded flag set per stored text, ACLs
and metadata by file, parsed recurrence rules, listing dates), registered
here so that the idle release can empty them when the server is idle
(L{gateway.idle.CacheDropper}).

They are bounded, but they fill during traffic, one entry at a time, and
each entry is a few small blocks of pymalloc's arenas that were allocated
among the sessions' short-lived objects: after the sessions end, such an
entry keeps its whole arena (a megabyte) from going back to the system.
Emptied while nothing uses them, they refill when traffic comes back.

This module imports nothing, so that any layer can register its caches.
"""

_KEPT = []


def kept(cache, name=None):
    """
    Register C{cache}: a C{dict} or C{set} (emptied with C{clear}, which
    frees its table too), or a C{functools.lru_cache} function (emptied
    with C{cache_clear}).

    @param name: what memory reports call it (by default the function's
        module and name).
    @return: C{cache} (so that it can decorate or wrap the definition).
    """
    if not any(c is cache for _, c in _KEPT):
        _KEPT.append((name or "%s.%s" % (cache.__module__, cache.__qualname__), cache))
    return cache


def _size(cache):
    info = getattr(cache, "cache_info", None)
    return info().currsize if info is not None else len(cache)


def sizes():
    """
    The entries of each registered cache, by its name.

    @return: C{list} of C{(name, entries)}.
    """
    return [(name, _size(cache)) for name, cache in _KEPT]


def dropAll():
    """
    Empty every registered cache.

    @return: how many caches had an entry.
    """
    dropped = 0
    for _, cache in _KEPT:
        if _size(cache):
            dropped += 1
            clear = getattr(cache, "cache_clear", None)
            (clear or cache.clear)()
    return dropped
