# -*- test-case-name: tests.test_imap_message -*-
"""
FETCH: rendering one message's response (the requested items are parsed
by L{gateway.imap.fetchitems}, whose names are also importable from here).

Two entry points render a message:

  - L{renderFetch} returns C{(bytes, setsSeen)}: the whole parenthesized
    attribute list in memory.  Use it for small messages (and for any
    request that names no body section).
  - L{renderFetchParts} returns C{(chunks, setsSeen)} where C{chunks} is a
    C{list} whose elements are either C{bytes} or a C{(file, offset,
    length)} tuple.  A tuple stands for C{length} bytes of C{file} starting
    at C{offset}; the literal prefix C{{length}\\r\\n} is already in the
    preceding C{bytes} chunk.  Whole-message sections (C{BODY[]},
    C{BODY[TEXT]}, C{RFC822}, C{RFC822.TEXT} and their partials) larger than
    C{streamThreshold} are streamed, and so are the bodies of parts
    (C{BODY[2]}, C{BODY[1.3]<0.65536>}) of a message stored with CRLF
    line ends (which is mapped into memory, not read, to find them).  Each
    tuple has its own file (opened with C{openMessage}), which is not
    necessarily seekable: write the
    chunks in order with L{streamChunks}, a generator of C{bytes} blocks
    that reads each file once and closes it, padding with spaces should the
    file turn out shorter than announced (so the protocol stays in sync).
    A caller that abandons the chunks calls L{closeChunks}.

Sections inside a message (C{BODY[1.2]}, C{BODY[2.HEADER]} ...), BODY and
BODYSTRUCTURE map the message (or read it, when it is stored with bare LFs)
and walk it with L{gateway.imap.mimeparts}; section bytes are exact byte
ranges of the CRLF form of the message, never re-serialized.  FLAGS, UID, RFC822.SIZE,
INTERNALDATE, ENVELOPE, MODSEQ, C{BODY[HEADER]}, C{BODY[HEADER.FIELDS ...]}
and RFC822.HEADER are served from the L{IMessageInfo} alone (unless the
index truncated an over-long header block).
"""

import datetime
import io
import mmap
import os

from gateway.imap import mimeparts
from gateway.imap.binary import decodedBody, literal8
from gateway.imap.fetchitems import (  # noqa: F401 -- re-exported
    FetchItem,
    FetchItems,
    Section,
    parseFetchArguments,
    parseFetchItems,
    parsePreview,
    parseSection,
)
from gateway.imap.format import flagList
from gateway.imap.preview import makePreview
from gateway.store import structures

#: Whole-message sections larger than this are streamed by
#: L{renderFetchParts}.
STREAM_THRESHOLD = 256 * 1024
#: Message files smaller than this are read whole rather than mapped (see
#: L{_mapped}); their parts are then never streamed.
MAP_MINIMUM = 64 * 1024

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# Rendering ------------------------------------------------------------------

def formatInternalDate(when):
    """
    An IMAP C{date-time}: C{" 3-Feb-2024 10:00:00 +0000"} (day padded).
    """
    offset = when.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return "%2d-%s-%04d %02d:%02d:%02d %s%02d%02d" % (
        when.day, _MONTHS[when.month - 1], when.year, when.hour, when.minute, when.second,
        sign, minutes // 60, minutes % 60)


def itemsNeedHeaders(items, registry=None):
    """
    Whether rendering C{items} (L{FetchItem}s) may read C{info.headers}.
    When not, the infos may come from C{IMailbox.messages(uids,
    headers=False)}: every item is an index-only row of C{registry} (a
    L{gateway.imap.registry.FetchRegistry}, C{None} for the standard one).
    """
    registry = _registry(registry)
    return any(item.section is not None or not _indexOnly(registry, item.name) for item in items)


def _registry(registry):
    if registry is None:
        from gateway.imap.registry import defaultRegistries
        return defaultRegistries().fetch
    return registry


def _indexOnly(registry, name):
    row = registry.get(name)
    return row is not None and row.indexOnly


def headersComplete(info):
    """
    Whether C{info.headers} holds the whole header block (the index keeps
    at most a bounded prefix of over-long headers).
    """
    headers = info.headers
    if headers is None:
        # Not read (the row was read without it): the file has it.
        return False
    return headers.endswith(b"\r\n\r\n") or headers == b"\r\n" or len(headers) >= info.size


def filterHeaders(block, names, exclude=False):
    """
    The fields of header block C{block} (which ends at its empty line)
    named (or, with C{exclude}, not named) in C{names}, exactly as they
    appear, followed by the empty line.
    """
    wanted = {n.lower() for n in names}
    if not exclude:
        return b"".join(mimeparts.namedFields(block, tuple(sorted(wanted)))) + b"\r\n"
    kept = [raw for name, raw, _ in mimeparts.splitHeaderFields(block)
            if name and ((name in wanted) != exclude)]
    return b"".join(kept) + b"\r\n"


class _Message:
    """
    Lazy access to one message for rendering: the file is opened only
    when a part of the response needs it, and at most once.
    """

    def __init__(self, info, openMessage, saveDate=None, structures=None):
        self.info = info
        self.saveDate = saveDate
        self.structures = structures
        self._open = openMessage
        self._data = None
        self._root = None

    @property
    def data(self):
        """
        The CRLF form of the message: the file mapped into memory when it
        is stored that way (pages are read as sections need them, and large
        sections are streamed, see L{range}), else read whole.
        """
        if self._data is None:
            f = self._open()
            try:
                self._data = _mapped(f)
                if self._data is None:
                    self._data = f.read()
            finally:
                f.close()
        return self._data

    @property
    def mapped(self):
        return isinstance(self.data, mmap.mmap)

    @property
    def root(self):
        if self._root is None:
            self._root = mimeparts.Entity(self.data, 0, len(self.data))
        return self._root

    def headerBlock(self):
        if headersComplete(self.info):
            return self.info.headers
        return self.root.headerBytes

    def headerFields(self):
        return mimeparts.splitHeaderFields(self.info.headers if headersComplete(self.info)
                                           else self.root.headerBytes)

    def range(self, offset, length, stream):
        """
        C{length} bytes of the message at C{offset}: C{bytes}, or a
        C{(file, offset, length)} tuple when C{stream}.
        """
        if stream:
            return (self._open(), offset, length)
        return self.data[offset:offset + length]


def _mapped(f):
    """
    A read-only map of the real file C{f}, or C{None} (not a plain file,
    as a CRLF view of a file stored with bare LFs is not, empty, or smaller
    than L{MAP_MINIMUM}: reading it costs one C{read} where a map costs
    C{mmap}, C{munmap} and a page fault per page: 13.6 against 20
    microseconds for 8 kB, measured).
    """
    if not isinstance(f, io.BufferedReader):
        return None
    try:
        if os.fstat(f.fileno()).st_size < MAP_MINIMUM:
            return None
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None


def _slice(value, partial):
    if partial is None:
        return value
    start, length = partial
    return value[start:start + length]


def _literal(chunks, value):
    """
    Append C{value} (C{bytes}, C{None} or a stream tuple) to C{chunks} as
    an IMAP string.
    """
    if isinstance(value, tuple):
        chunks.append(b"{%d}\r\n" % (value[2],))
        chunks.append(value)
    elif value is None:
        chunks.append(b"NIL")
    else:
        chunks.append(_literalBytes(value))


def _literalBytes(value):
    return b"{%d}\r\n" % (len(value),) + value


def _wholeRange(message, info, section, partial, threshold):
    """
    Offsets of C{BODY[]} or C{BODY[TEXT]} of the top message without
    parsing it: C{(offset, length, stream)}.
    """
    if section.text == "TEXT":
        start = len(message.headerBlock()) if headersComplete(info) else message.root.bodyStart
    else:
        start = 0
    start, length = _partialRange(start, info.size - start, partial)
    stream = threshold is not None and length > threshold
    return start, length, stream


def _partialRange(start, length, partial):
    """
    C{(offset, length)} of the C{partial} (C{(skip, count)} or C{None}) of
    C{length} bytes at C{start}.
    """
    if partial is not None:
        skip = min(partial[0], length)
        start += skip
        length = min(length - skip, partial[1])
    return start, max(length, 0)


def sectionBytes(info, openMessage, spec, partial=None):
    """
    What C{BODY.PEEK[spec]<partial>} answers for a message, as C{bytes}
    (CATENATE's URL parts).

    @param spec: the section text, e.g. C{"1.2"}, C{"HEADER.FIELDS (TO)"}
        or C{""} for the whole message.
    @param partial: C{(offset, count)}, C{count} C{None} for the rest.
    @raise ValueError: for a malformed section.
    """
    section = parseSection(spec)
    if partial is not None and partial[1] is None:
        partial = (partial[0], info.size)
    message = _Message(info, openMessage)
    if not section.path and section.text in (None, "TEXT"):
        start, length, _stream = _wholeRange(message, info, section, partial, None)
        return bytes(message.data[start:start + length])
    return bytes(_sectionValue(message, section, partial) or b"")


def _sectionValue(message, section, partial, threshold=None):
    """
    The bytes of a nested or header section, C{None} if it does not exist;
    a part's body larger than C{threshold} in a mapped message is a stream
    tuple (see L{renderFetchParts}).
    """
    if not section.path:
        block = message.headerBlock()
        if section.text == "HEADER":
            value = block
        else:
            value = filterHeaders(block, section.fields, section.text == "HEADER.FIELDS.NOT")
        return _slice(value, partial)
    entity = mimeparts.findSection(message.root, section.path)
    if entity is None:
        # Dovecot answers an empty string for a part that does not exist.
        return b""
    if section.text is None:
        if threshold is not None and entity.bodySize > threshold and message.mapped:
            start, length = _partialRange(entity.bodyStart, entity.bodySize, partial)
            return message.range(start, length, stream=True)
        value = entity.body
    elif section.text == "MIME":
        value = entity.headerBytes
    else:
        inner = entity.embedded
        if inner is None:
            value = b""
        elif section.text == "HEADER":
            value = inner.headerBytes
        elif section.text == "TEXT":
            value = inner.body
        else:
            value = filterHeaders(inner.headerBytes, section.fields, section.text == "HEADER.FIELDS.NOT")
    return _slice(value, partial)


def _responseItems(items, modseq, addFlags):
    """
    The items a FETCH response shows, in order: C{UID} first unless
    requested elsewhere, C{FLAGS} appended when C{addFlags} and C{MODSEQ}
    when C{modseq} (unless requested), each response name once.
    """
    names = {item.name for item in items if item.section is None}
    ordered = list(items)
    if "UID" not in names:
        ordered.insert(0, FetchItem("UID"))
    if addFlags and "FLAGS" not in names:
        ordered.append(FetchItem("FLAGS"))
    if modseq and "MODSEQ" not in names:
        ordered.append(FetchItem("MODSEQ"))
    result, emitted = [], set()
    for item in ordered:
        name = item.responseName()
        if name not in emitted:
            emitted.add(name)
            result.append(item)
    return result


#: How each item rendered from the index row alone (without C{info.headers})
#: is rendered: C{(format, value(info, recent))}.
_HEADERLESS_RENDER = {
    "UID": (b"%d", lambda info, recent: info.uid),
    "FLAGS": (b"%s", lambda info, recent: flagList(info.flags, recent)),
    "MODSEQ": (b"(%d)", lambda info, recent: info.modseq),
    "RFC822.SIZE": (b"%d", lambda info, recent: info.size),
    "INTERNALDATE": (b'"%s"', lambda info, recent: formatInternalDate(info.internalDate).encode("ascii")),
}


def _whole(section, partial, threshold):
    def render(parts, message, flags, recent):
        start, length, stream = _wholeRange(message, message.info, section, partial, threshold)
        _literal(parts, message.range(start, length, stream))
    return render


def _inner(section, partial, threshold):
    def render(parts, message, flags, recent):
        _literal(parts, _sectionValue(message, section, partial, threshold))
    return render


class _NeedsMessage(Exception):
    """
    This message's response cannot come from the index row alone (its
    header block was truncated there): use L{FetchPlan.render}.
    """


def _lineValue(item, registry):
    """
    C{(format, value(info, recent))} rendering C{item} from the index row
    alone (L{FetchPlan.line}); C{value} may raise L{_NeedsMessage}.  C{None}
    for items that need more, or that set C{\\Seen}.
    """
    if item.section is None:
        row = registry.get(item.name)
        return None if row is None else row.line
    section = item.section
    if section.path or section.text != "HEADER.FIELDS" or not item.peek:
        return None
    names = tuple(sorted({name.lower() for name in section.fields}))
    partial = item.partial

    def value(info, recent):
        if not headersComplete(info):
            raise _NeedsMessage()
        return _literalBytes(_slice(b"".join(mimeparts.namedFields(info.headers, names)) + b"\r\n", partial))
    return b"%s", value


def _headerless(name):
    form, value = _HEADERLESS_RENDER[name]
    return lambda parts, message, flags, recent: parts.append(form % (value(message.info, recent),))


class _KeptValue:
    """
    The line value (L{FetchPlan.line}) of an item L{_kept} renders: there
    when the message's structures keep it.
    """

    def __init__(self, name):
        self.name = name

    def __call__(self, info, recent):
        raise _NeedsMessage()

    def kept(self, structures, info):
        value = structures.get(info.uid, self.name)
        if value is None:
            raise _NeedsMessage()
        return value


def _kept(name, compute, sibling=None):
    """
    A renderer of an item that depends on the message's content alone
    (ENVELOPE, BODY, BODYSTRUCTURE): C{compute(message)} once per message
    while the message's L{gateway.imap.structcache.MailboxStructures}
    (C{message.structures}, when given) keeps it.

    @param sibling: C{(name, compute)} of an item computed from the same
        parse, kept at the same time: BODY and BODYSTRUCTURE, whose second
        rendering costs a tenth of opening and parsing the message again
        when a client asks for the other later (imaptest asks for either at
        random: 85% of its structure renderings opened the file).
    """
    def render(parts, message, flags, recent):
        structures = message.structures
        if structures is None:
            parts.append(compute(message))
            return
        uid = message.info.uid
        value = structures.get(uid, name)
        if value is None:
            value = compute(message)
            structures.put(uid, name, value)
            if sibling is not None:
                structures.put(uid, sibling[0], sibling[1](message))
        parts.append(value)
    return render


def _bodyStructure(message):
    return mimeparts.renderBodyStructure(message.root, True)


def _body(message):
    return mimeparts.renderBodyStructure(message.root, False)


def computeStructures(data):
    """
    What the index keeps of a message when it is stored (see
    L{gateway.store.structures}): its ENVELOPE, BODYSTRUCTURE and BODY as
    L{_kept} renders them, from C{data}, the message in CRLF form.
    """
    root = mimeparts.Entity(data, 0, len(data))
    return {
        "ENVELOPE": mimeparts.renderEnvelope(mimeparts.splitHeaderFields(root.headerBytes)),
        "BODYSTRUCTURE": mimeparts.renderBodyStructure(root, True),
        "BODY": mimeparts.renderBodyStructure(root, False),
    }


structures.register(computeStructures)


_RENDER = {
    "FLAGS": lambda parts, message, flags, recent: parts.append(flagList(flags, recent)),
    "ENVELOPE": _kept("ENVELOPE", lambda message: mimeparts.renderEnvelope(message.headerFields())),
    "BODYSTRUCTURE": _kept("BODYSTRUCTURE", _bodyStructure, ("BODY", _body)),
    "BODY": _kept("BODY", _body, ("BODYSTRUCTURE", _bodyStructure)),
    "RFC822.HEADER": lambda parts, message, flags, recent: _literal(parts, message.headerBlock()),
    "PREVIEW": lambda parts, message, flags, recent: parts.append(
        mimeparts.imapString(makePreview(message.root))),
    "SAVEDATE": lambda parts, message, flags, recent: parts.append(
        b"NIL" if message.saveDate is None else b'"%s"' % (formatInternalDate(
            datetime.datetime.fromtimestamp(message.saveDate, datetime.timezone.utc)).encode("ascii"),)),
}


def _isWhole(item):
    """
    Whether C{item} is a whole-message range (C{RFC822}, C{RFC822.TEXT},
    C{BODY[]}, C{BODY[TEXT]} and their partials): the items that stream.
    """
    return item.name in ("RFC822", "RFC822.TEXT") or (
        item.name == "BODY" and item.section is not None and not item.section.path
        and item.section.text in (None, "TEXT"))


def _binary(item):
    section, partial, size = item.section, item.partial, item.name == "BINARY.SIZE"

    def render(parts, message, flags, recent):
        if not section.path:
            value = bytes(message.data)
        else:
            entity = mimeparts.findSection(message.root, section.path)
            value = b"" if entity is None else decodedBody(entity)
        if size:
            parts.append(b"%d" % (len(value),))
        else:
            parts.append(literal8(_slice(value, partial)))
    return render


def _renderer(item, threshold, registry, context=None):
    """
    The function that renders one response item: C{render(parts, message,
    flags, recent)} appends the item's value to C{parts}.
    """
    row = registry.get(item.name)
    if row.contextual:
        return row.renderer(item, threshold, context)
    return row.renderer(item, threshold)


def _bodyRenderer(item, threshold):
    """
    BODY: the structure, or a section (C{BODY[...]}, C{BODY.PEEK[...]}).
    """
    if _isWhole(item):
        return _whole(item.section, item.partial, threshold)
    if item.section is not None:
        return _inner(item.section, item.partial, threshold)
    return _RENDER["BODY"]


def _rfc822Renderer(item, threshold):
    """
    RFC822 and RFC822.TEXT: whole-message ranges.
    """
    return _whole(Section((), "TEXT" if item.name == "RFC822.TEXT" else None), item.partial, threshold)


def _fixed(render):
    return lambda item, threshold: render


#: The standard renderers of the items L{_kept} renders, by name: a plan
#: takes such an item's value from the kept structures in L{FetchPlan.line}
#: only while the registry's row is the standard one.
_KEPT_RENDERERS = {
    "ENVELOPE": _fixed(_RENDER["ENVELOPE"]),
    "BODYSTRUCTURE": _fixed(_RENDER["BODYSTRUCTURE"]),
    "BODY": _bodyRenderer,
}


def _keptLineValue(item, registry):
    """
    C{(format, L{_KeptValue})} for an item L{_kept} renders (ENVELOPE,
    BODY, BODYSTRUCTURE) with the standard renderer, else C{None}.
    """
    if item.section is not None or item.name not in _KEPT_RENDERERS:
        return None
    row = registry.get(item.name)
    if row is None or row.renderer is not _KEPT_RENDERERS[item.name]:
        return None
    return b"%s", _KeptValue(item.name)


def registerFetchItems(registry):
    """
    Add the standard FETCH items (RFC 3501/9051, CONDSTORE, BINARY,
    PREVIEW, SAVEDATE) to C{registry}, a
    L{gateway.imap.registry.FetchRegistry}.
    """
    for name in ("UID", "MODSEQ", "RFC822.SIZE", "INTERNALDATE"):
        registry.add(name, _fixed(_headerless(name)), line=_HEADERLESS_RENDER[name])
    registry.add("FLAGS", _fixed(_RENDER["FLAGS"]), line=_HEADERLESS_RENDER["FLAGS"])
    for name in ("ENVELOPE", "BODYSTRUCTURE"):
        registry.add(name, _KEPT_RENDERERS[name])
    for name in ("RFC822.HEADER", "SAVEDATE"):
        registry.add(name, _fixed(_RENDER[name]))
    registry.add("PREVIEW", _fixed(_RENDER["PREVIEW"]), parse=parsePreview)
    registry.add("BODY", _bodyRenderer)
    registry.add("RFC822", _rfc822Renderer)
    registry.add("RFC822.TEXT", _rfc822Renderer)
    registry.add("BINARY", lambda item, threshold: _binary(item))
    registry.add("BINARY.SIZE", lambda item, threshold: _binary(item))


def _compile(items, threshold, registry, context=None):
    """
    C{[(prefix, render)]} for the response items C{items}; C{prefix} is
    the item's name, after the opening parenthesis or a space.
    """
    return [((b" " if i else b"(") + item.responseName().encode("ascii") + b" ",
             _renderer(item, threshold, registry, context))
            for i, item in enumerate(items)]


class FetchPlan:
    """
    The items of one FETCH command, prepared once for all its messages.

    @ivar needsHeaders: whether rendering reads C{info.headers} (see
        L{itemsNeedHeaders}).
    @ivar setsSeen: whether an item implicitly sets C{\\Seen}.
    @ivar needsSaveDate: whether SAVEDATE is asked for: pass each
        message's C{saveDate} to L{render}.
    """

    def __init__(self, items, modseq=False, streamThreshold=STREAM_THRESHOLD, registry=None, context=None):
        """
        @param items: L{FetchItem}s in request order.
        @param modseq: CONDSTORE is enabled: always include MODSEQ.
        @param streamThreshold: stream whole-message sections above this
            size; C{None} never streams.
        @param registry: the L{gateway.imap.registry.FetchRegistry} the
            items were parsed with; C{None} for the standard one.
        @param context: passed to the renderers of contextual rows (the
            session).
        """
        registry = _registry(registry)
        self.needsHeaders = itemsNeedHeaders(items, registry)
        self.needsSaveDate = any(item.name == "SAVEDATE" for item in items)
        #: Whether an item is one L{_kept} renders (pass C{structures}).
        self.needsStructure = any(item.name in _KEPT_RENDERERS and item.section is None for item in items)
        #: The names of those items (what to look for in the index first).
        self.structureNames = frozenset(item.name for item in items
                                        if item.name in _KEPT_RENDERERS and item.section is None)
        #: Whether the header blocks are needed only to render those items
        #: (with the standard renderers): not when their values are kept.
        kept = [_keptLineValue(item, registry) is not None for item in items]
        self.headersForStructuresOnly = any(kept) and self.needsHeaders and not itemsNeedHeaders(
            [item for item, isKept in zip(items, kept, strict=True) if not isKept], registry)
        self.setsSeen = any(item.setsSeen for item in items)
        shown = _responseItems(items, modseq, False)
        # The renderers of the items, for a message that is not one line
        # (L{line}), and for one whose FETCH sets its \Seen: each made the
        # first time a message needs it (a FETCH whose messages are all
        # lines never does; imaptest's random item lists make many plans).
        # The session is kept for that only when an item's renderer takes
        # it: a plan without is kept for the process (fetchplans), and
        # must not hold it.
        self._items = self._itemsWithFlags = None
        session = context if any(getattr(registry.get(item.name), "contextual", False) for item in items) else None
        self._compileShown = lambda: _compile(shown, streamThreshold, registry, session)
        self._compileWithFlags = lambda: _compile(_responseItems(items, modseq, True), streamThreshold, registry,
                                                  session)
        self._streams = streamThreshold is not None and any(
            _isWhole(item) or (item.section is not None and item.section.text is None) for item in items)
        lineValues = [_keptLineValue(item, registry) or _lineValue(item, registry) for item in shown]
        self._format = None
        if None not in lineValues:
            self._format = b"%d FETCH (" + b" ".join(
                item.responseName().encode("ascii") + b" " + form
                for item, (form, _) in zip(shown, lineValues, strict=True)) + b")"
            self._values = [value for _, value in lineValues]
            self._kept = any(isinstance(value, _KeptValue) for value in self._values)
        #: Whether rendering may open a message's file (else every message
        #: is one L{line} of what the index row says).
        self.mayOpen = self._format is None or self._kept

    def line(self, seq, info, recent=False, structures=None):
        """
        The whole untagged response for message C{seq}, without C{"* "}
        and CRLF, when every item comes from the index row alone (flags,
        sizes, dates, C{BODY.PEEK[HEADER.FIELDS ...]} of the message) or
        from what C{structures} keeps of it (ENVELOPE, BODY, BODYSTRUCTURE);
        else C{None}: use L{render}.
        """
        if self._format is None:
            return None
        try:
            if self._kept:
                if structures is None:
                    return None
                return self._format % (seq, *[
                    value.kept(structures, info) if value.__class__ is _KeptValue else value(info, recent)
                    for value in self._values])
            return self._format % (seq, *[value(info, recent) for value in self._values])
        except _NeedsMessage:
            return None

    def render(self, info, openMessage, recent=False, markSeen=False, saveDate=None, structures=None):
        """
        Render the FETCH attribute list of one message as chunks (see the
        module docstring).

        @param info: an L{gateway.interfaces.IMessageInfo}.
        @param openMessage: no-argument callable returning a binary file of
            the CRLF form of the message; called only when needed.
        @param recent: add C{\\Recent} to FLAGS.
        @param markSeen: when an item sets C{\\Seen} and C{info} lacks it,
            show FLAGS with C{\\Seen} (added at the end when FLAGS was not
            requested), as RFC 3501 asks.  A caller that sets C{\\Seen}
            before rendering passes the updated C{info} instead; never pass
            C{True} on a read-only mailbox.
        @param saveDate: the message's save date (POSIX seconds, C{None}
            when not known) for SAVEDATE (RFC 8514).
        @param structures: the L{gateway.imap.structcache.MailboxStructures}
            of the message's mailbox: ENVELOPE, BODY and BODYSTRUCTURE are
            taken from it when kept, and kept there once rendered.
        @return: C{list} of chunks.
        """
        message = _Message(info, openMessage, saveDate, structures)
        flags = info.flags
        items = self._items
        if items is None:
            items = self._items = self._compileShown()
        if self.setsSeen and markSeen and "\\Seen" not in flags:
            flags = frozenset(flags) | {"\\Seen"}
            items = self._itemsWithFlags
            if items is None:
                items = self._itemsWithFlags = self._compileWithFlags()
        parts = []
        for prefix, render in items:
            parts.append(prefix)
            render(parts, message, flags, recent)
        parts.append(b")")
        return _coalesce(parts) if self._streams else [b"".join(parts)]


def renderFetchParts(info, items, openMessage, recent=False, modseq=False, markSeen=False,
                     streamThreshold=STREAM_THRESHOLD):
    """
    Render the FETCH attribute list of one message as chunks: a one-off
    L{FetchPlan}.

    @param items: L{FetchItem}s in request order.  C{UID} is always in the
        response: where requested, else first.
    @return: C{(chunks, setsSeen)}; other arguments as for L{FetchPlan}
        and L{FetchPlan.render}.
    """
    plan = FetchPlan(items, modseq, streamThreshold)
    return plan.render(info, openMessage, recent, markSeen), plan.setsSeen


def _coalesce(chunks):
    """
    Join adjacent C{bytes} chunks.
    """
    result = []
    pending = []
    for chunk in chunks:
        if isinstance(chunk, bytes):
            pending.append(chunk)
        else:
            if pending:
                result.append(b"".join(pending))
                pending = []
            result.append(chunk)
    if pending:
        result.append(b"".join(pending))
    return result


def renderFetch(info, items, openMessage, recent=False, modseq=False, markSeen=False):
    """
    Render the FETCH attribute list of one message in memory, e.g.
    C{(UID 5 FLAGS (\\Seen) RFC822.SIZE 42)}, without C{* n FETCH} and
    without the final CRLF.  Arguments as for L{renderFetchParts}.

    @return: C{(bytes, setsSeen)}.
    """
    chunks, setsSeen = renderFetchParts(info, items, openMessage, recent, modseq, markSeen,
                                        streamThreshold=None)
    return b"".join(chunks), setsSeen


def streamChunks(chunks, blockSize=65536):
    """
    Yield the C{bytes} of rendered chunks in order, reading the stream
    tuples from their files in blocks of at most C{blockSize} and closing
    them.  A file shorter than announced is padded with spaces.
    """
    try:
        for chunk in chunks:
            if isinstance(chunk, bytes):
                yield chunk
                continue
            f, offset, length = chunk
            try:
                _skipTo(f, offset)
                while length > 0:
                    block = f.read(min(blockSize, length))
                    if not block:
                        yield b" " * length
                        break
                    length -= len(block)
                    yield block
            finally:
                f.close()
    finally:
        closeChunks(chunks)


def _skipTo(f, offset):
    seekable = getattr(f, "seekable", None)
    if seekable is not None and seekable():
        f.seek(offset)
        return
    while offset > 0:
        block = f.read(min(offset, 65536))
        if not block:
            return
        offset -= len(block)


def closeChunks(chunks):
    """
    Close the files of any stream tuples in C{chunks}.
    """
    for chunk in chunks:
        if isinstance(chunk, tuple):
            chunk[0].close()
