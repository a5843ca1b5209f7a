# -*- test-case-name: tests.test_imap_registry -*-
"""
The IMAP registries an extension adds rows to: FETCH items
(L{FetchRegistry}), STORE items (L{StoreRegistry}), SEARCH keys
(L{SearchKeyRegistry}).  The tables belong to a L{Registries} object that
the IMAP factory owns (L{gateway.imap.server.IMAPFactory.registries}), filled
with the standard rows by L{Registries.__init__}; an extension is a module
with a function that adds its rows to the factory's registries, so nothing
is registered by importing a module.
"""


class FetchItemRow:
    """
    One FETCH item of a L{FetchRegistry}.

    @ivar name: the item's name, upper case (C{"RFC822.SIZE"}).
    @ivar renderer: C{renderer(item, threshold)} returns the function that
        renders one message's value, C{render(parts, message, flags,
        recent)} appending C{bytes} (or stream chunks) to C{parts}; see
        L{gateway.imap.message.FetchPlan}.
    @ivar line: C{None}, or C{(format, value(info, recent))} when the item
        renders from the index row alone (no header block, no message
        file): such an item is I{index-only}.
    @ivar parse: C{None}, or C{parse(text, pos)} returning C{(FetchItem,
        newPos)} for an item that takes arguments after its name
        (C{text[pos]} is just past the name); C{None} when the name alone
        is the item.
    @ivar contextual: the renderer is called C{renderer(item, threshold,
        context)} with the plan's context (the FETCH command's session).
    """

    def __init__(self, name, renderer, line=None, parse=None, contextual=False):
        self.name = name
        self.renderer = renderer
        self.line = line
        self.parse = parse
        self.contextual = contextual

    @property
    def indexOnly(self):
        """
        Whether the item renders from the index row alone.
        """
        return self.line is not None


class FetchRegistry:
    """
    The FETCH items a session understands: name -> L{FetchItemRow}.
    """

    def __init__(self):
        self._rows = {}

    def add(self, name, renderer, line=None, parse=None, contextual=False):
        """
        Register a FETCH item (see L{FetchItemRow} for the arguments).

        @raise ValueError: C{name} is already registered.
        """
        name = name.upper()
        if name in self._rows:
            raise ValueError("FETCH item %s is already registered" % (name,))
        self._rows[name] = FetchItemRow(name, renderer, line, parse, contextual)

    def get(self, name):
        """
        The L{FetchItemRow} named C{name}, or C{None}.
        """
        return self._rows.get(name.upper())

    def __contains__(self, name):
        return name.upper() in self._rows

    def names(self):
        """
        The registered names, sorted.
        """
        return sorted(self._rows)


class StoreItemRow:
    """
    One STORE item of a L{StoreRegistry}.

    @ivar name: the item's name, upper case, without sign or C{.SILENT}
        (C{"FLAGS"}).
    @ivar handler: C{handler(session, args, uid, sequenceSet,
        unchangedSince, mode, silent)} reads the item's value from C{args}
        (a L{gateway.imap.parser.Arguments} just past the item name and its
        space) and carries out the STORE like a command handler (returning
        its result or a Deferred of it); C{mode} is C{"+"}, C{"-"} or
        C{"="}, C{silent} whether C{.SILENT} was given, C{unchangedSince}
        the CONDSTORE modifier or C{None}.
    @ivar modes: the signs the item takes, a C{str} of C{"+-="}.
    """

    def __init__(self, name, handler, modes="+-="):
        self.name = name
        self.handler = handler
        self.modes = modes


class StoreRegistry:
    """
    The STORE items a session understands: name -> L{StoreItemRow}.
    """

    def __init__(self):
        self._rows = {}

    def add(self, name, handler, modes="+-="):
        """
        Register a STORE item (see L{StoreItemRow} for the arguments).

        @raise ValueError: C{name} is already registered.
        """
        name = name.upper()
        if name in self._rows:
            raise ValueError("STORE item %s is already registered" % (name,))
        self._rows[name] = StoreItemRow(name, handler, modes)

    def get(self, name):
        """
        The L{StoreItemRow} named C{name}, or C{None}.
        """
        return self._rows.get(name.upper())

    def names(self):
        """
        The registered names, sorted.
        """
        return sorted(self._rows)


class SearchKeyRegistry:
    """
    The SEARCH keys a session understands: name -> C{parse(parser, name)},
    which reads the key's arguments with the parser
    (L{gateway.imap.search._Parser}) and returns a
    L{gateway.imap.search.SearchKey} (a match function and an optional SQL
    term, C{storeTerm()}).
    """

    def __init__(self):
        self._rows = {}

    def add(self, name, parse):
        """
        Register a SEARCH key.

        @raise ValueError: C{name} is already registered.
        """
        name = name.upper()
        if name in self._rows:
            raise ValueError("SEARCH key %s is already registered" % (name,))
        self._rows[name] = parse

    def get(self, name):
        """
        The parser of the key named C{name}, or C{None}.
        """
        return self._rows.get(name.upper())

    def names(self):
        """
        The registered names, sorted.
        """
        return sorted(self._rows)


class Registries:
    """
    The tables of one IMAP factory, holding the standard rows.

    @ivar fetch: the L{FetchRegistry}.
    @ivar store: the L{StoreRegistry}.
    @ivar search: the L{SearchKeyRegistry}.
    """

    def __init__(self):
        from gateway.imap.commands_selected import storeFlags
        from gateway.imap.message import registerFetchItems
        from gateway.imap.search import registerSearchKeys

        self.fetch = FetchRegistry()
        registerFetchItems(self.fetch)
        self.store = StoreRegistry()
        self.store.add("FLAGS", storeFlags)
        self.search = SearchKeyRegistry()
        registerSearchKeys(self.search)


_default = None


def defaultRegistries():
    """
    A shared L{Registries} holding only the standard rows, for callers
    without a factory (the module-level helpers and unit tests).
    """
    global _default
    if _default is None:
        _default = Registries()
    return _default
