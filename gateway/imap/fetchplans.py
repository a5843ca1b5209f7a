# -*- test-case-name: tests.test_imap_fetchplans -*-
"""
FETCH item lists parsed and planned once per process: a client sends the
same few lists again and again (imaptest's mix: five forms of a body FETCH
and a few dozen of a range FETCH), and parsing a list and compiling its
L{gateway.imap.message.FetchPlan} took 60 microseconds of a 220 microsecond
FETCH of one body.

A plan whose items have a contextual renderer (given the session) is made
for each command, never kept.
"""

import collections

from zope.interface import implementer

from gateway.imap.message import FetchPlan, parseFetchItems
from gateway.interfaces import IIdleRelease

#: The lists kept at most.
KEPT = 256


@implementer(IIdleRelease)
class FetchPlans:
    """
    The last FETCH item lists met, parsed and planned.
    """

    def __init__(self, size=KEPT):
        self.size = size
        self._items = collections.OrderedDict()
        self._plans = collections.OrderedDict()
        self._used = False

    def _remember(self, kept, key, value):
        kept[key] = value
        while len(kept) > self.size:
            kept.popitem(last=False)

    def items(self, text, registry):
        """
        L{parseFetchItems} of C{text} with C{registry}: the caller must not
        change what it gets.

        @raise ValueError: as L{parseFetchItems} (not kept).
        """
        self._used = True
        key = (registry, text)
        items = self._items.get(key)
        if items is None:
            items = parseFetchItems(text, registry)
            self._remember(self._items, key, items)
        else:
            self._items.move_to_end(key)
        return items

    def plan(self, text, items, modseq, registry, context):
        """
        The L{FetchPlan} of C{items} (parsed from C{text} by L{items}).
        """
        key = (registry, text, modseq)
        plan = self._plans.get(key)
        if plan is not None:
            self._plans.move_to_end(key)
            return plan
        plan = FetchPlan(items, modseq=modseq, registry=registry, context=context)
        if not any(getattr(registry.get(item.name), "contextual", False) for item in items):
            self._remember(self._plans, key, plan)
        return plan

    def releaseIdle(self):
        """
        Let go of every list when none was met since the previous call.

        @return: how many lists were let go.
        """
        if self._used:
            self._used = False
            return 0
        count = len(self._items) + len(self._plans)
        self._items.clear()
        self._plans.clear()
        return count

    def describe(self):
        return ["FETCH plans: %d item lists, %d plans" % (len(self._items), len(self._plans))]


#: The process's L{FetchPlans}.
fetchPlans = FetchPlans()
