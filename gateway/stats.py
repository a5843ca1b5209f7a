# -*- test-case-name: tests.test_monitor -*-
"""
Events the lower layers count for monitoring (index rescans, free/busy
computations), and the times they measure (the index writer's), without
knowing who counts them: the admin listener's monitor
(L{gateway.admin.monitor}) observes them while the server runs.
Observers are called in the thread the event happens in.
"""

_observers = []
_timers = []


def observe(callback):
    """
    Call C{callback(name, labels)} for every counted event.

    @return: a function that stops the observation.
    """
    _observers.append(callback)
    return lambda: _observers.remove(callback) if callback in _observers else None


def count(name, **labels):
    """
    Count one event C{name} (e.g. C{"index_rescans"}) with C{labels}.
    """
    for callback in list(_observers):
        callback(name, labels)


def observeTimes(callback):
    """
    Call C{callback(name, labels, seconds)} for every measured time.

    @return: a function that stops the observation.
    """
    _timers.append(callback)
    return lambda: _timers.remove(callback) if callback in _timers else None


def measure(name, seconds, **labels):
    """
    Report that C{name} (e.g. C{"index_write"}) took C{seconds}, with
    C{labels}.
    """
    for callback in list(_timers):
        callback(name, labels, seconds)


def measuring():
    """
    Is anyone observing times?  (Spares the clock readings when not.)
    """
    return bool(_timers)
