# -*- test-case-name: tests.test_imap_fetchplans -*-
"""
Tests for L{gateway.imap.fetchplans}: FETCH item lists parsed and planned
once per process.
"""

from twisted.trial import unittest
from zope.interface.verify import verifyObject

from gateway.imap import fetchplans
from gateway.imap.message import registerFetchItems
from gateway.imap.registry import FetchRegistry
from gateway.interfaces import IIdleRelease
from tests.test_imap_message import SIMPLE, Info, Unopenable


def standard():
    registry = FetchRegistry()
    registerFetchItems(registry)
    return registry


class FetchPlansTests(unittest.TestCase):
    def test_interface(self):
        """The plans are an IIdleRelease."""
        verifyObject(IIdleRelease, fetchplans.FetchPlans())

    def test_kept(self):
        """The same text with the same registry gives the same items and plan; another text or registry or CONDSTORE state, others."""
        plans, registry = fetchplans.FetchPlans(), standard()
        items = plans.items("(UID FLAGS)", registry)
        self.assertIs(plans.items("(UID FLAGS)", registry), items)
        self.assertIsNot(plans.items("(UID FLAGS)", standard()), items)
        plan = plans.plan("(UID FLAGS)", items, False, registry, None)
        self.assertIs(plans.plan("(UID FLAGS)", items, False, registry, None), plan)
        withModseq = plans.plan("(UID FLAGS)", items, True, registry, None)
        self.assertIsNot(withModseq, plan)
        self.assertEqual(withModseq.line(1, Info(SIMPLE)), b"1 FETCH (UID 5 FLAGS () MODSEQ (9))")
        self.assertEqual(plan.line(1, Info(SIMPLE)), b"1 FETCH (UID 5 FLAGS ())")

    def test_badNotKept(self):
        """A list that does not parse raises each time, and nothing is kept of it."""
        plans = fetchplans.FetchPlans()
        for _ in range(2):
            self.assertRaises(ValueError, plans.items, "(UID BOGUS)", standard())
        self.assertEqual(plans.describe(), ["FETCH plans: 0 item lists, 0 plans"])

    def test_bounded(self):
        """Past its size the least recently used lists go."""
        plans, registry = fetchplans.FetchPlans(size=2), standard()
        first = plans.items("UID", registry)
        plans.items("FLAGS", registry)
        plans.items("UID", registry)
        plans.items("RFC822.SIZE", registry)
        self.assertIs(plans.items("UID", registry), first)
        self.assertEqual(plans.describe(), ["FETCH plans: 2 item lists, 0 plans"])

    def test_contextualNotKept(self):
        """A plan with an item rendered for its session is made again each time, with that session."""
        registry = standard()
        seen = []
        registry.add("XSESSION", lambda item, threshold, context: (
            lambda parts, message, flags, recent: seen.append(context) or parts.append(b"1")), contextual=True)
        plans = fetchplans.FetchPlans()
        items = plans.items("(XSESSION)", registry)
        for session in ("one", "two"):
            plan = plans.plan("(XSESSION)", items, False, registry, session)
            plan.render(Info(SIMPLE), Unopenable(self))
        self.assertEqual(seen, ["one", "two"])

    def test_releaseIdle(self):
        """Lists are let go when none was met between two releaseIdle calls."""
        plans, registry = fetchplans.FetchPlans(), standard()
        plans.items("UID", registry)
        self.assertEqual(plans.releaseIdle(), 0)
        self.assertEqual(plans.releaseIdle(), 1)
        self.assertEqual(plans.describe(), ["FETCH plans: 0 item lists, 0 plans"])
