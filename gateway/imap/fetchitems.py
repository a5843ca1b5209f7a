# -*- test-case-name: tests.test_imap_message -*-
"""
FETCH: parsing the requested items (L{parseFetchArguments}) into
L{FetchItem}s with their L{Section}s, partial ranges and modifiers
(CHANGEDSINCE, VANISHED, PARTIAL); L{gateway.imap.message} renders them.
"""

from gateway.imap.results import parsePartialRange

_MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}

_SECTION_TEXTS = ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME")


class Section:
    """
    A C{section} of C{BODY[section]}.

    @ivar path: C{tuple} of part numbers (empty for the whole message).
    @ivar text: C{None}, or one of C{HEADER}, C{HEADER.FIELDS},
        C{HEADER.FIELDS.NOT}, C{TEXT}, C{MIME}.
    @ivar fields: C{tuple} of header names (as requested) for
        C{HEADER.FIELDS(.NOT)}.
    """

    def __init__(self, path=(), text=None, fields=()):
        self.path = tuple(path)
        self.text = text
        self.fields = tuple(fields)

    def __eq__(self, other):
        return (isinstance(other, Section)
                and (self.path, self.text, self.fields) == (other.path, other.text, other.fields))

    def __repr__(self):
        return "<Section %s>" % (self.format(),)

    def format(self):
        """
        The section spec as a response shows it: C{1.2.HEADER.FIELDS (FROM)}.
        """
        parts = [str(n) for n in self.path]
        if self.text:
            parts.append(self.text)
        spec = ".".join(parts)
        if self.text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            spec += " (" + " ".join(self.fields) + ")"
        return spec


class FetchItem:
    """
    One FETCH data item.

    @ivar name: upper-case item name (C{BODY} also for C{BODY[...]} and
        C{BODY.PEEK[...]}).
    @ivar section: a L{Section} for C{BODY[...]}, else C{None}.
    @ivar peek: C{True} for C{BODY.PEEK[...]}.
    @ivar partial: C{(start, length)} or C{None}.
    """

    def __init__(self, name, section=None, peek=False, partial=None):
        self.name = name
        self.section = section
        self.peek = peek
        self.partial = partial

    def __eq__(self, other):
        return (isinstance(other, FetchItem) and (self.name, self.section, self.peek, self.partial)
                == (other.name, other.section, other.peek, other.partial))

    def __repr__(self):
        return "<FetchItem %s>" % (self.responseName(),)

    @property
    def setsSeen(self):
        """
        Whether fetching this item implicitly sets C{\\Seen}.
        """
        if self.name in ("RFC822", "RFC822.TEXT"):
            return True
        return self.section is not None and not self.peek and self.name != "BINARY.SIZE"

    def responseName(self):
        """
        The item's name in the response: C{BODY[1.MIME]<0>}, C{UID}, ...
        """
        if self.section is None:
            return self.name
        name = "%s[%s]" % ("BODY" if self.name == "BODY" else self.name, self.section.format())
        if self.partial is not None:
            name += "<%d>" % (self.partial[0],)
        return name


class FetchItems(list):
    """
    The C{list} of L{FetchItem}s of a FETCH command.

    @ivar modifiers: C{dict} of FETCH modifiers, e.g. C{{"CHANGEDSINCE":
        12345}}, C{{"VANISHED": True}} or C{{"PARTIAL": (True, 1, 50)}}
        (RFC 9394, see L{gateway.imap.results.parsePartialRange}).
    """

    modifiers = None


# Parsing --------------------------------------------------------------------

def _number(text, what):
    if not text.isdigit() or not text.isascii() or len(text) > 20:
        raise ValueError("invalid %s %r" % (what, text[:20]))
    return int(text)


def parseSection(spec):
    """
    Parse the text between the brackets of C{BODY[...]}.
    """
    spec = spec.strip()
    fields = ()
    paren = spec.find("(")
    if paren != -1:
        if not spec.endswith(")"):
            raise ValueError("unterminated header list in section [%s]" % (spec,))
        fields = tuple(spec[paren + 1:-1].split())
        spec = spec[:paren].rstrip()
        if not fields:
            raise ValueError("empty header list in section")
        for field in fields:
            if not field.isascii() or any(c in field for c in ':()[]"{}\\') or not field.isprintable():
                raise ValueError("invalid header field name %r" % (field[:40],))
    if not spec:
        if fields:
            raise ValueError("header list without HEADER.FIELDS")
        return Section()
    path = []
    parts = spec.split(".")
    i = 0
    while i < len(parts) and parts[i].isdigit():
        number = _number(parts[i], "section part")
        if number == 0:
            raise ValueError("section part numbers start at 1")
        path.append(number)
        i += 1
    text = ".".join(parts[i:]).upper() or None
    if text is not None and text not in _SECTION_TEXTS:
        raise ValueError("invalid section [%s]" % (spec,))
    if text == "MIME" and not path:
        raise ValueError("MIME needs a part number")
    if (text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT")) != bool(fields):
        raise ValueError("HEADER.FIELDS needs a parenthesized list of field names")
    return Section(path, text, fields)


#: The BINARY items (RFC 3516): request name -> item name.
_BINARY_NAMES = {"BINARY": "BINARY", "BINARY.PEEK": "BINARY", "BINARY.SIZE": "BINARY.SIZE"}


def _parseBinarySection(spec):
    """
    The section of C{BINARY[...]}: part numbers only (RFC 3516).
    """
    spec = spec.strip()
    path = [_number(part, "section part") for part in spec.split(".")] if spec else []
    if 0 in path:
        raise ValueError("section part numbers start at 1")
    return Section(path)


def parsePreview(text, pos):
    """
    The PREVIEW item's parser (a L{gateway.imap.registry.FetchItemRow}
    C{parse}): RFC 8970's modifier LAZY is read (answering at once is
    allowed anyway); anything else is left to be read as FETCH modifiers.
    """
    if text.startswith(" (", pos):
        close = text.find(")", pos)
        words = text[pos + 2:close].split() if close != -1 else []
        if words and all(m.upper() == "LAZY" for m in words):
            return FetchItem("PREVIEW"), close + 1
    return FetchItem("PREVIEW"), pos


def _readItem(text, pos, registry):
    """
    One item at C{text[pos]}: C{(FetchItem or macro name, newPos)}.  Items
    without a section are the rows of C{registry} (a
    L{gateway.imap.registry.FetchRegistry}).
    """
    start = pos
    while pos < len(text) and text[pos] not in " ()[<":
        pos += 1
    name = text[start:pos].upper()
    if not name:
        raise ValueError("missing fetch item at %r" % (text[start:start + 20],))
    if name in _BINARY_NAMES and (pos >= len(text) or text[pos] != "["):
        raise ValueError("%s needs a section" % (name,))
    if pos < len(text) and text[pos] == "[":
        if name not in ("BODY", "BODY.PEEK") and name not in _BINARY_NAMES:
            raise ValueError("%s takes no section" % (name,))
        close = text.find("]", pos)
        if close == -1:
            raise ValueError("missing ] in fetch item")
        if name in _BINARY_NAMES:
            section = _parseBinarySection(text[pos + 1:close])
        else:
            section = parseSection(text[pos + 1:close])
        pos = close + 1
        partial = None
        if pos < len(text) and text[pos] == "<":
            close = text.find(">", pos)
            if close == -1:
                raise ValueError("missing > in partial fetch")
            numbers = text[pos + 1:close].split(".")
            if len(numbers) != 2:
                raise ValueError("partial fetch must be <start.length>")
            partial = (_number(numbers[0], "partial start"), _number(numbers[1], "partial length"))
            if partial[1] == 0:
                raise ValueError("partial length must not be 0")
            pos = close + 1
        if name in _BINARY_NAMES:
            if name == "BINARY.SIZE" and partial is not None:
                raise ValueError("BINARY.SIZE takes no partial range")
            return FetchItem(_BINARY_NAMES[name], section, name == "BINARY.PEEK", partial), pos
        return FetchItem("BODY", section, name == "BODY.PEEK", partial), pos
    row = registry.get(name)
    if row is not None:
        if row.parse is not None:
            return row.parse(text, pos)
        return FetchItem(name), pos
    if name in _MACROS:
        return name, pos
    raise ValueError("unknown fetch item %s" % (name[:40],))


def _skip(text, pos):
    while pos < len(text) and text[pos] == " ":
        pos += 1
    return pos


def _parseModifiers(text):
    text = text.strip()
    if not (text.startswith("(") and text.endswith(")")):
        raise ValueError("unexpected text after fetch items: %r" % (text[:40],))
    words = text[1:-1].split()
    modifiers = {}
    i = 0
    while i < len(words):
        word = words[i].upper()
        if word == "CHANGEDSINCE":
            if i + 1 >= len(words):
                raise ValueError("CHANGEDSINCE needs a mod-sequence")
            modifiers[word] = _number(words[i + 1], "mod-sequence")
            i += 2
        elif word == "VANISHED":
            modifiers[word] = True
            i += 1
        elif word == "PARTIAL":
            if i + 1 >= len(words):
                raise ValueError("PARTIAL needs a range")
            modifiers[word] = parsePartialRange(words[i + 1])
            i += 2
        else:
            raise ValueError("unknown fetch modifier %s" % (word[:40],))
    if not modifiers:
        raise ValueError("empty fetch modifier list")
    return modifiers


def parseFetchArguments(text, registry=None):
    """
    Parse what follows the sequence set of FETCH / UID FETCH.

    @param text: e.g. C{"FAST"}, C{"(FLAGS BODY.PEEK[HEADER])"} or
        C{"(FLAGS) (CHANGEDSINCE 12345)"}.
    @param registry: the L{gateway.imap.registry.FetchRegistry} naming the
        items; C{None} for the standard items.
    @return: C{(items, modifiers)}: a L{FetchItems} list (also carrying
        C{.modifiers}) and a C{dict}.
    @raise ValueError: with a message for a BAD reply.
    """
    if registry is None:
        from gateway.imap.registry import defaultRegistries
        registry = defaultRegistries().fetch
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    text = text.strip()
    items = FetchItems()
    if not text:
        raise ValueError("missing fetch items")
    if text.startswith("("):
        pos = 1
        while True:
            pos = _skip(text, pos)
            if pos >= len(text):
                raise ValueError("missing ) in fetch item list")
            if text[pos] == ")":
                pos += 1
                break
            item, pos = _readItem(text, pos, registry)
            if isinstance(item, str):
                raise ValueError("%s is not allowed inside a list" % (item,))
            items.append(item)
            if pos < len(text) and text[pos] not in " )":
                raise ValueError("junk after fetch item: %r" % (text[pos:pos + 20],))
        if not items:
            raise ValueError("empty fetch item list")
    else:
        item, pos = _readItem(text, 0, registry)
        if isinstance(item, str):
            items.extend(FetchItem(name) for name in _MACROS[item])
        else:
            items.append(item)
    rest = text[pos:].strip()
    items.modifiers = _parseModifiers(rest) if rest else {}
    return items, items.modifiers


def parseFetchItems(text, registry=None):
    """
    Like L{parseFetchArguments}, returning the items only (a L{FetchItems}
    whose C{.modifiers} holds the modifiers).
    """
    return parseFetchArguments(text, registry)[0]
