# -*- test-case-name: tests.test_imap_structcache -*-
"""
Tests for L{gateway.imap.structcache}: the ENVELOPE, BODY and BODYSTRUCTURE
of a message are rendered once and kept, by mailbox and UIDVALIDITY.
"""

from twisted.trial import unittest
from zope.interface.verify import verifyObject

from gateway.imap import mimeparts, structcache
from gateway.imap.message import FetchPlan, computeStructures, parseFetchItems, registerFetchItems
from gateway.imap.registry import FetchRegistry
from gateway.interfaces import IIdleRelease
from gateway.store.mailbox import Mailbox
from tests.support import PASSWORD
from tests.test_imap_message import FORWARD, INTERNATIONAL, MIXED, SIMPLE, Info, Unopenable, opener
from tests.test_imap_protocol import IMAPTestMixin


class Keyed:
    """
    A mailbox as the cache sees it: only a C{contentKey}.
    """

    def __init__(self, key):
        self.contentKey = key


class StructureCacheTests(unittest.TestCase):
    def test_interface(self):
        """The cache is an IIdleRelease."""
        verifyObject(IIdleRelease, structcache.StructureCache())

    def test_keptByMailbox(self):
        """A value put for a mailbox's UID is got back through any object with the same content key, not another's."""
        cache = structcache.StructureCache()
        cache.of(Keyed(("a", 1, 7))).put(3, "ENVELOPE", b"(x)")
        self.assertEqual(cache.of(Keyed(("a", 1, 7))).get(3, "ENVELOPE"), b"(x)")
        self.assertIsNone(cache.of(Keyed(("a", 1, 7))).get(3, "BODY"))
        self.assertIsNone(cache.of(Keyed(("a", 1, 8))).get(3, "ENVELOPE"))

    def test_noContentKey(self):
        """A mailbox without a content key has nothing kept."""
        self.assertIsNone(structcache.StructureCache().of(object()))

    def test_limit(self):
        """Past the limit the least recently used mailbox's values go; a mailbox alone past it starts again."""
        cost = 10 + structcache.ENTRY_OVERHEAD
        cache = structcache.StructureCache(limit=3 * cost)
        first, second = cache.of(Keyed("first")), cache.of(Keyed("second"))
        first.put(1, "BODY", b"0123456789")
        second.put(1, "BODY", b"0123456789")
        cache.of(Keyed("first"))
        second.put(2, "BODY", b"0123456789")
        self.assertEqual(cache.size, 3 * cost)
        # The one being filled stays, though not the last used.
        second.put(3, "BODY", b"0123456789")
        self.assertIsNone(cache.of(Keyed("first")).get(1, "BODY"))
        self.assertEqual(cache.of(Keyed("second")).get(3, "BODY"), b"0123456789")
        self.assertEqual(cache.size, 3 * cost)
        lone = structcache.StructureCache(limit=cost)
        only = lone.of(Keyed("only"))
        only.put(1, "BODY", b"0123456789")
        only.put(2, "BODY", b"0123456789")
        self.assertEqual((len(only), lone.size), (0, 0))

    def test_releaseIdle(self):
        """The values of a mailbox not fetched from between two releaseIdle calls are let go."""
        cache = structcache.StructureCache()
        cache.of(Keyed("used")).put(1, "BODY", b"x")
        cache.of(Keyed("idle")).put(1, "BODY", b"yy")
        self.assertEqual(cache.releaseIdle(), 0)
        cache.of(Keyed("used"))
        self.assertEqual(cache.releaseIdle(), 1)
        self.assertEqual(cache.size, 1 + structcache.ENTRY_OVERHEAD)
        self.assertEqual(cache.of(Keyed("used")).get(1, "BODY"), b"x")
        self.assertIsNone(cache.of(Keyed("idle")).get(1, "BODY"))


class RenderTests(unittest.TestCase):
    def test_keptRendering(self):
        """A second rendering with the mailbox's structures gives the same bytes without opening the file."""
        structures = structcache.StructureCache().of(Keyed("m"))
        plan = FetchPlan(parseFetchItems("(UID ENVELOPE BODY BODYSTRUCTURE)"))
        self.assertTrue(plan.needsStructure)
        info = Info(MIXED)
        openMessage = opener(MIXED)
        first = plan.render(info, openMessage, structures=structures)
        self.assertEqual(openMessage.calls, 1)
        self.assertEqual(plan.render(info, Unopenable(self), structures=structures), first)
        self.assertEqual(plan.render(info, opener(MIXED)), first)

    def test_siblingKept(self):
        """
        BODY and BODYSTRUCTURE come from one parse: rendering either keeps
        both, so a later FETCH of the other neither opens nor parses the
        file, and gives the bytes a fresh rendering gives.
        """
        for first, second in (("BODY", "BODYSTRUCTURE"), ("BODYSTRUCTURE", "BODY")):
            structures = structcache.StructureCache().of(Keyed("m"))
            info = Info(MIXED)
            FetchPlan(parseFetchItems("(%s)" % (first,))).render(info, opener(MIXED), structures=structures)
            plan = FetchPlan(parseFetchItems("(UID %s)" % (second,)))
            self.assertEqual(plan.render(info, Unopenable(self), structures=structures),
                             plan.render(info, opener(MIXED)))
            self.assertIsNotNone(plan.line(1, info, structures=structures))

    def test_lineFromKept(self):
        """Once kept, a plan of kept and index-row items makes the whole line, byte for byte what rendering gives."""
        structures = structcache.StructureCache().of(Keyed("m"))
        plan = FetchPlan(parseFetchItems("(UID FLAGS ENVELOPE BODY BODYSTRUCTURE RFC822.SIZE)"))
        info = Info(MIXED, flags=["\\Seen"])
        self.assertIsNone(plan.line(3, info, structures=structures))
        rendered = plan.render(info, opener(MIXED), structures=structures)
        self.assertIsNone(plan.line(3, info))
        self.assertEqual(plan.line(3, info, structures=structures), b"3 FETCH " + b"".join(rendered))
        self.assertIsNone(FetchPlan(parseFetchItems("(ENVELOPE BODY[1])")).line(3, info, structures=structures))

    def test_replacedRowNotKept(self):
        """An item whose registry row an extension replaced is rendered by it, never taken from what is kept."""
        class Replacing(FetchRegistry):
            def add(self, name, renderer, **kwargs):
                if name == "ENVELOPE":
                    renderer = lambda item, threshold: lambda parts, message, flags, recent: parts.append(b"X")
                FetchRegistry.add(self, name, renderer, **kwargs)
        registry = Replacing()
        registerFetchItems(registry)
        structures = structcache.StructureCache().of(Keyed("m"))
        structures.put(5, "ENVELOPE", b"(kept)")
        plan = FetchPlan(parseFetchItems("(UID ENVELOPE)", registry), registry=registry)
        self.assertIsNone(plan.line(1, Info(SIMPLE), structures=structures))
        self.assertEqual(b"".join(plan.render(Info(SIMPLE), Unopenable(self), structures=structures)),
                         b"(UID 5 ENVELOPE X)")

    def test_computedAtStoreAsRendered(self):
        """What the index keeps of a message stored from memory is byte for byte what FETCH renders from its file."""
        for data in (SIMPLE, MIXED, FORWARD, INTERNATIONAL, b"Subject: only a header\r\n", b"\r\nno header\r\n",
                     b"From: a@example.org\r\nTo: group: x@example.org;\r\nCc: =?utf-8?q?=C3=A9?= <c@d>\r\n\r\nx\r\n"):
            kept = structcache.StructureCache().of(Keyed("m"))
            FetchPlan(parseFetchItems("(ENVELOPE BODYSTRUCTURE)")).render(Info(data), opener(data), structures=kept)
            computed = computeStructures(data)
            self.assertEqual(sorted(computed), ["BODY", "BODYSTRUCTURE", "ENVELOPE"])
            self.assertEqual({name: kept.get(5, name) for name in computed}, computed, data)

    def test_missingAndLoad(self):
        """missing names the UIDs lacking a value of one of the names; load keeps what the index gives."""
        structures = structcache.StructureCache().of(Keyed("m"))
        structures.put(1, "ENVELOPE", b"(one)")
        structures.put(2, "BODY", b"(b)")
        self.assertEqual(structures.missing([1, 2, 3], {"ENVELOPE"}), [2, 3])
        self.assertEqual(structures.missing([1, 2, 3], {"ENVELOPE", "BODY"}), [1, 2, 3])
        self.assertEqual(structures.missing([1], {"ENVELOPE"}), [])
        asked = []

        def read(uids):
            asked.append(list(uids))
            return {2: {"ENVELOPE": b"(two)", "BODY": b"(b)"}}
        structures.load([2, 3], read)
        self.assertEqual(asked, [[2, 3]])
        self.assertEqual(structures.get(2, "ENVELOPE"), b"(two)")
        self.assertEqual(structures.missing([1, 2, 3], {"ENVELOPE"}), [3])

    def test_headersNotRead(self):
        """A message whose row was read without its header block renders from its file what it would with it."""
        plan = FetchPlan(parseFetchItems("(UID ENVELOPE BODY.PEEK[HEADER.FIELDS (Subject)] RFC822.HEADER)"))
        bare = Info(MIXED)
        bare.headers = None
        self.assertIsNone(plan.line(1, bare))
        self.assertEqual(plan.render(bare, opener(MIXED)), plan.render(Info(MIXED), opener(MIXED)))

    def test_sectionsNotKept(self):
        """BODY[...] sections are not structure items: a plan of them needs no structures."""
        self.assertFalse(FetchPlan(parseFetchItems("(UID BODY.PEEK[1] FLAGS)")).needsStructure)


class SessionTests(IMAPTestMixin, unittest.TestCase):
    def setUp(self):
        self.patch(structcache, "structureCache", structcache.StructureCache())
        self.rendered = []
        original = mimeparts.renderBodyStructure
        self.patch(mimeparts, "renderBodyStructure",
                   lambda entity, extended: self.rendered.append(extended) or original(entity, extended))

    def append(self, mailbox, message):
        out = self.send(b"A APPEND %s {%d+}\r\n%s\r\n" % (mailbox, len(message), message))
        self.assertIn(b"A OK", out)

    def test_secondFetchKept(self):
        """A second FETCH BODYSTRUCTURE of a message, from any session, renders nothing again."""
        self.login()
        self.append(b"INBOX", MIXED)
        self.assertIn(b"S OK", self.send(b"S SELECT INBOX"))
        first = self.send(b"F FETCH 1 BODYSTRUCTURE")
        self.assertIn(b"\"mixed\"", first)
        rendered = len(self.rendered)
        self.assertGreater(rendered, 0)
        self.assertEqual(self.send(b"G FETCH 1 BODYSTRUCTURE").replace(b"G OK", b"F OK"), first)
        other = self.factory.buildProtocol(None)
        transport = type(self.transport)()
        other.makeConnection(transport)
        other.dataReceived(b'L LOGIN demo "%s"\r\nS EXAMINE INBOX\r\nF FETCH 1 BODYSTRUCTURE\r\n'
                           % (PASSWORD.encode(),))
        self.assertIn(first.split(b"\r\n")[0], transport.value())
        self.assertEqual(len(self.rendered), rendered)
        other.connectionLost(None)

    def test_anotherProcessReadsTheIndex(self):
        """
        A process that has nothing in memory of a message appended elsewhere
        (another worker) takes its structures from the index: no rendering,
        and the bytes a rendering from the file gives.
        """
        self.login()
        messages = (MIXED, SIMPLE, FORWARD, INTERNATIONAL, b"Subject: only a header\r\n")
        for message in messages:
            self.append(b"INBOX", message)
        self.assertIn(b"S OK", self.send(b"S SELECT INBOX"))
        self.patch(structcache, "structureCache", structcache.StructureCache())
        del self.rendered[:]
        stored = self.send(b"F FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY)")
        self.assertEqual(self.rendered, [])
        self.assertIn(b"\"mixed\"", stored)
        self.assertEqual(stored.count(b" FETCH ("), len(messages))
        self.patch(structcache, "structureCache", structcache.StructureCache())
        self.patch(Mailbox, "storedStructures", lambda mailbox, uids: {})
        self.assertEqual(self.send(b"F FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY)"), stored)
        self.assertEqual(set(self.rendered), {False, True})

    def test_keptNeedNoHeaders(self):
        """
        Once every message's structures asked for are kept, their rows are
        read without the header blocks; an item that needs the headers
        still reads them, and a message whose values are not all kept too.
        """
        self.login()
        self.append(b"INBOX", MIXED)
        self.append(b"INBOX", SIMPLE)
        self.assertIn(b"S OK", self.send(b"S SELECT INBOX"))
        asked = []
        real = Mailbox.locatedMessages

        def located(mailbox, uids, headers=True):
            asked.append(headers)
            return real(mailbox, uids, headers=headers)
        self.patch(Mailbox, "locatedMessages", located)
        self.assertIn(b"\"mixed\"", self.send(b"F FETCH 1:2 (UID ENVELOPE BODYSTRUCTURE)"))
        self.assertIn(b"Message-ID", self.send(b"G FETCH 1:2 (ENVELOPE BODY.PEEK[HEADER.FIELDS (Message-ID)])"))
        self.patch(structcache, "structureCache", structcache.StructureCache())
        self.patch(Mailbox, "storedStructures", lambda mailbox, uids: {})
        out = self.send(b"H FETCH 1:2 (UID ENVELOPE)")
        self.assertEqual(asked, [False, True, True])
        self.assertEqual(out.count(b"ENVELOPE ("), 2)

    def test_keptLetGoMeanwhile(self):
        """
        Values read from the index into a cache too small for them leave
        the FETCH's answers as they are.
        """
        self.login()
        self.append(b"INBOX", MIXED)
        self.append(b"INBOX", SIMPLE)
        self.assertIn(b"S OK", self.send(b"S SELECT INBOX"))
        expected = self.send(b"F FETCH 1:2 (UID ENVELOPE)")
        envelope = computeStructures(SIMPLE)["ENVELOPE"]
        self.patch(structcache, "structureCache",
                   structcache.StructureCache(limit=len(envelope) + structcache.ENTRY_OVERHEAD))
        self.assertIn(b"E OK", self.send(b"E FETCH 1 (UID ENVELOPE)"))
        self.assertEqual(self.send(b"F FETCH 1:2 (UID ENVELOPE)"), expected)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_newMailboxSameName(self):
        """A mailbox deleted and created again under the same name shows its new message's structure, not the old one's."""
        self.login()
        self.assertIn(b"C OK", self.send(b"C CREATE Box"))
        self.append(b"Box", MIXED)
        self.assertIn(b"S OK", self.send(b"S SELECT Box"))
        self.assertIn(b"\"mixed\"", self.send(b"F FETCH 1 BODYSTRUCTURE"))
        self.assertIn(b"U OK", self.send(b"U UNSELECT"))
        self.assertIn(b"D OK", self.send(b"D DELETE Box"))
        self.assertIn(b"C OK", self.send(b"C CREATE Box"))
        self.append(b"Box", SIMPLE)
        self.assertIn(b"S OK", self.send(b"S SELECT Box"))
        out = self.send(b"F FETCH 1 BODYSTRUCTURE")
        self.assertIn(b'("text" "plain"', out.lower())
        self.assertNotIn(b"\"mixed\"", out)
