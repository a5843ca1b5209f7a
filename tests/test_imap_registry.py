# -*- test-case-name: tests.test_imap_registry -*-
"""
Tests for L{gateway.imap.registry}: FETCH items as rows of a table the IMAP
factory owns.
"""

from twisted.trial import unittest

from gateway.imap.fetchitems import FetchItem
from gateway.imap.message import FetchPlan, itemsNeedHeaders, parseFetchItems
from gateway.imap.registry import FetchRegistry, Registries, defaultRegistries
from gateway.imap.search import SearchKey, parseSearch
from tests.test_imap_message import SIMPLE, Info, Unopenable, opener
from tests.test_imap_selected import SelectedTestMixin

#: Every FETCH item name of RFC 3501/9051 and the extensions the server had
#: before the registry (the rows the standard table must hold).
STANDARD = ["BINARY", "BINARY.SIZE", "BODY", "BODYSTRUCTURE", "ENVELOPE", "FLAGS", "INTERNALDATE",
            "MODSEQ", "PREVIEW", "RFC822", "RFC822.HEADER", "RFC822.SIZE", "RFC822.TEXT", "SAVEDATE", "UID"]


def _sizeTwice(item, threshold):
    """
    A test item's renderer: twice the message size, read from the message.
    """
    return lambda parts, message, flags, recent: parts.append(b"%d" % (2 * len(bytes(message.data)),))


def _parseTagged(text, pos):
    """
    A test item's parser: C{XTAG (word)}, the word kept on the item.
    """
    if not text.startswith(" (", pos):
        raise ValueError("XTAG needs (word)")
    close = text.index(")", pos)
    item = FetchItem("XTAG")
    item.word = text[pos + 2:close]
    return item, close + 1


def _withTestItems(registry):
    registry.add("XDOUBLE", _sizeTwice)
    registry.add("XINDEX", lambda item, threshold: (lambda parts, message, flags, recent: parts.append(
        b"%d" % (message.info.uid * 10,))), line=(b"%d", lambda info, recent: info.uid * 10))
    registry.add("XTAG", lambda item, threshold: (lambda parts, message, flags, recent: parts.append(
        item.word.encode("ascii"))), parse=_parseTagged)
    return registry


class FetchRegistryTests(unittest.TestCase):
    def test_standardRows(self):
        """The standard registry holds exactly the FETCH items the server had before."""
        self.assertEqual(Registries().fetch.names(), STANDARD)

    def test_duplicate(self):
        """Registering a name twice is refused, whatever its case."""
        registry = FetchRegistry()
        registry.add("XDOUBLE", _sizeTwice)
        self.assertRaises(ValueError, registry.add, "xdouble", _sizeTwice)

    def test_unknownElsewhere(self):
        """An item added to one registry is unknown to the standard one and to another factory's."""
        registry = _withTestItems(Registries().fetch)
        self.assertEqual([item.name for item in parseFetchItems("(UID XDOUBLE)", registry)], ["UID", "XDOUBLE"])
        self.assertRaises(ValueError, parseFetchItems, "(UID XDOUBLE)")
        self.assertRaises(ValueError, parseFetchItems, "(UID XDOUBLE)", Registries().fetch)
        self.assertNotIn("XDOUBLE", defaultRegistries().fetch)

    def test_parseArguments(self):
        """A row with a parser reads its own arguments, and the items after them are read too."""
        registry = _withTestItems(Registries().fetch)
        items = parseFetchItems("(XTAG (hello) FLAGS)", registry)
        self.assertEqual([item.name for item in items], ["XTAG", "FLAGS"])
        self.assertEqual(items[0].word, "hello")
        self.assertRaises(ValueError, parseFetchItems, "(XTAG FLAGS)", registry)

    def test_renderNeedsMessage(self):
        """A row without a line value needs the headers and renders from the message."""
        registry = _withTestItems(Registries().fetch)
        items = parseFetchItems("(XDOUBLE)", registry)
        self.assertTrue(itemsNeedHeaders(items, registry))
        plan = FetchPlan(items, registry=registry)
        self.assertIsNone(plan.line(1, Info(SIMPLE)))
        self.assertEqual(b"".join(plan.render(Info(SIMPLE), opener(SIMPLE))),
                         b"(UID 5 XDOUBLE %d)" % (2 * len(SIMPLE),))

    def test_renderIndexOnly(self):
        """A row with a line value is index-only: the line is built without opening the message."""
        registry = _withTestItems(Registries().fetch)
        items = parseFetchItems("(XINDEX FLAGS)", registry)
        self.assertFalse(itemsNeedHeaders(items, registry))
        plan = FetchPlan(items, registry=registry)
        self.assertEqual(plan.line(4, Info(SIMPLE)), b"4 FETCH (UID 5 XINDEX 50 FLAGS ())")
        self.assertEqual(b"".join(plan.render(Info(SIMPLE), Unopenable(self))), b"(UID 5 XINDEX 50 FLAGS ())")


class FactoryRegistryTests(SelectedTestMixin, unittest.TestCase):
    def test_factoryOwnsRegistries(self):
        """Each IMAP factory has its own registries with the standard rows."""
        self.connect()
        first = self.factory.registries
        self.connect()
        self.assertIsNot(self.factory.registries, first)
        self.assertEqual(Registries().fetch.names(), STANDARD)
        self.assertEqual(self.factory.registries.fetch.names(), sorted(STANDARD + ["EMAILID", "THREADID", "XINSTANCES", "XPROPS"]))

    def test_fetchExtensionItem(self):
        """An item added to the factory's registry is answered by FETCH; another factory answers BAD."""
        self.selectWith(1)
        _withTestItems(self.factory.registries.fetch)
        out = self.send(b"a FETCH 1 (XTAG (hi) XDOUBLE)")
        size = self.mailbox.messages([1])[0].size
        self.assertIn(b"* 1 FETCH (UID 1 XTAG hi XDOUBLE %d)\r\n" % (2 * size,), out)
        self.assertIn(b"a OK", out)
        self.selectWith(1)
        self.assertIn(b"b BAD", self.send(b"b FETCH 1 (XTAG (hi))"))


def _storeNote(session, args, uid, sequenceSet, unchangedSince, mode, silent):
    """
    A test STORE item: C{XNOTE word} answers with what it read.
    """
    word = args.atom()
    args.end()
    return ("OK", "noted %s mode %s silent %s" % (word, mode, silent))


class StoreRegistryTests(SelectedTestMixin, unittest.TestCase):
    def test_standardRows(self):
        """The standard STORE registry holds FLAGS only, with all three modes."""
        registries = Registries()
        self.assertEqual(registries.store.names(), ["FLAGS"])
        self.assertEqual(registries.store.get("flags").modes, "+-=")
        self.assertRaises(ValueError, registries.store.add, "Flags", _storeNote)

    def test_storeExtensionItem(self):
        """A STORE item added to the factory's registry gets its value, mode and .SILENT; FLAGS still works."""
        self.selectWith(1)
        self.factory.registries.store.add("XNOTE", _storeNote, modes="=")
        self.assertEqual(self.send(b"a STORE 1 XNOTE.SILENT hello"), b"a OK noted hello mode = silent True\r\n")
        self.assertEqual(self.send(b"b UID STORE 1 XNOTE hi"), b"b OK noted hi mode = silent False\r\n")
        self.assertIn(b"c BAD STORE takes FLAGS", self.send(b"c STORE 1 +XNOTE hi"))
        self.assertIn(b"* 1 FETCH (FLAGS (\\Flagged \\Recent))", self.send(b"d STORE 1 +FLAGS (\\Flagged)"))

    def test_storeUnknownElsewhere(self):
        """A STORE item unknown to the factory's registry answers BAD and the session goes on."""
        self.selectWith(1)
        self.assertIn(b"a BAD STORE takes FLAGS", self.send(b"a STORE 1 XNOTE hello"))
        self.assertIn(b"b OK", self.send(b"b NOOP"))


class _UidBelow(SearchKey):
    """
    A test SEARCH key: C{XUIDBELOW n}, matched message by message.
    """

    def __init__(self, limit):
        self.limit = limit

    def match(self, m):
        return m.info.uid < self.limit


class SearchRegistryTests(SelectedTestMixin, unittest.TestCase):
    def test_standardRows(self):
        """The standard SEARCH registry holds every key the parser knew, and a key is registered once."""
        names = Registries().search.names()
        for name in ("ALL", "ANSWERED", "OR", "NOT", "HEADER", "BODY", "TEXT", "UID", "$", "MODSEQ", "OLDER",
                     "YOUNGER", "SAVEDBEFORE", "SAVEDATESUPPORTED", "SENTON", "LARGER", "KEYWORD", "NEW"):
            self.assertIn(name, names)
        self.assertRaises(ValueError, Registries().search.add, "all", lambda parser, name: None)

    def test_parseWithRegistry(self):
        """A key added to a registry is parsed with its arguments, inside NOT and OR too; unknown elsewhere."""
        registry = Registries().search
        registry.add("XUIDBELOW", lambda parser, name: _UidBelow(parser.number("limit")))
        program = parseSearch("OR XUIDBELOW 3 NOT XUIDBELOW 9 FLAGGED", registry=registry)
        # FLAGGED goes to the index; the extension keys (no storeTerm) are matched message by message.
        self.assertIsNotNone(program.term)
        self.assertIsNotNone(program.rest)
        self.assertEqual(program.rest.keys[0].a.limit, 3)
        self.assertEqual(program.rest.keys[0].b.key.limit, 9)
        self.assertRaises(ValueError, parseSearch, "XUIDBELOW 3")
        self.assertRaises(ValueError, parseSearch, "XUIDBELOW x", registry=registry)

    def test_searchExtensionKey(self):
        """SEARCH answers a key added to the factory's registry, with ESEARCH; another factory answers BAD."""
        self.selectWith(4)
        self.factory.registries.search.add("XUIDBELOW", lambda parser, name: _UidBelow(parser.number("limit")))
        self.assertIn(b"* SEARCH 1 2\r\n", self.send(b"a UID SEARCH XUIDBELOW 3"))
        self.assertIn(b"* ESEARCH (TAG \"b\") UID COUNT 1\r\n",
                      self.send(b"b UID SEARCH RETURN (COUNT) XUIDBELOW 3 NOT UID 1"))
        self.selectWith(1)
        self.assertIn(b"c BAD", self.send(b"c SEARCH XUIDBELOW 3"))
