# -*- test-case-name: tests.test_imap_message -*-
"""
A MIME walker over the exact bytes of a message, and what IMAP builds on
it: ENVELOPE, BODY and BODYSTRUCTURE, and the byte ranges of sections.

The walker never re-serializes: every L{Entity} records offsets into the
CRLF form of the message (what C{IMailbox.openMessage} yields), so a
section is always an exact byte range.  Header values are kept as raw
bytes; 8-bit content becomes an IMAP literal and RFC 2047 words are kept
as they are (clients decode them), so no input can make rendering fail.

Where RFC 3501 leaves room, the output follows Dovecot 2.3 byte for byte
(checked by C{tests.test_imap_message.DovecotReferenceTests}): type and
parameter names keep the case they were written in, C{body-fld-lines}
counts line ends, a part ending in a nested close delimiter keeps that
line's CRLF, a leaf is its own part 1 once, missing parts are empty
strings, and non-encoded RFC 2231 continuations are joined.  Unfolded
header values differ only in whitespace Dovecot drops.
"""

import email.utils
import functools
import re

from gateway import caches

#: Types whose parts default to message/rfc822 (RFC 2046 section 5.1.5).
_DIGEST = b"digest"


_QUOTABLE = re.compile(rb"[\x20\x21\x23-\x5b\x5d-\x7e]*\Z")


def imapString(value):
    """
    An IMAP C{nstring}: C{NIL} for C{None}, a quoted string when the value
    is short printable ASCII without C{"} or C{\\}, otherwise a literal
    C{{n}\\r\\n...} (Dovecot's choice, which no client misreads).

    @type value: C{bytes}, C{str} (encoded as UTF-8) or C{None}
    @rtype: C{bytes}
    """
    if value is None:
        return b"NIL"
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    if len(value) < 1024 and _QUOTABLE.match(value):
        return b'"' + value + b'"'
    return b"{%d}\r\n" % (len(value),) + value


def imapList(items):
    """
    A parenthesized list of already rendered C{bytes} items, or C{NIL}
    when empty.
    """
    if not items:
        return b"NIL"
    return b"(" + b" ".join(items) + b")"


def splitHeaderFields(block):
    """
    Split a header block into fields.

    @param block: C{bytes}, CRLF lines (the terminating blank line, if
        present, is ignored).
    @return: C{list} of C{(lowerName, rawField, value)} where C{rawField}
        is the field's exact bytes including its continuation lines and
        final CRLF, and C{value} the unfolded value (C{bytes}) without
        leading whitespace.
    """
    fields = []
    pos, end = 0, len(block)
    while pos < end:
        nl = block.find(b"\n", pos)
        stop = end if nl == -1 else nl + 1
        line = block[pos:stop]
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t") and fields:
            name, raw, value = fields[-1]
            fields[-1] = (name, raw + line, value + line.rstrip(b"\r\n"))
        else:
            colon = line.find(b":")
            if colon > 0:
                name = line[:colon].strip().lower().decode("latin-1")
                fields.append((name, line, line[colon + 1:].rstrip(b"\r\n")))
            else:
                # Not a header field: keep it so byte ranges stay exact.
                fields.append(("", line, b""))
        pos = stop
    return [(name, raw, value.strip()) for name, raw, value in fields]


@caches.kept
@functools.lru_cache(maxsize=256)
def fieldsPattern(names):
    """
    A pattern matching each field (with its continuation lines) named in
    C{names} in a header block: a name at the start of a line, blanks
    allowed around it as L{splitHeaderFields} allows them (a line that
    starts with a space or tab continues the field before it).  A block
    that itself starts with a space or tab is not for this pattern: see
    L{namedFields}.
    """
    alternation = b"|".join(re.escape(name.encode("ascii", "replace")) for name in names)
    return re.compile(rb"(?m:^)(?:[\r\v\f][ \t\r\v\f]*)?(?:" + alternation
                      + rb")[ \t\r\v\f]*:[^\n]*\n?(?:[ \t][^\n]*\n?)*", re.I)


def namedFields(block, names):
    """
    The raw fields of header block C{block} named in C{names} (lower
    case, a sorted C{tuple}), in order, as L{splitHeaderFields} would find
    them, but without splitting the others.
    """
    if block[:1] in (b" ", b"\t"):
        return [raw for name, raw, _ in splitHeaderFields(block) if name in names]
    return fieldsPattern(names).findall(block)


def fieldValues(block, name):
    """
    The values of the fields named C{name} (lower case) in header block
    C{block}, unfolded and stripped as L{splitHeaderFields} gives them, in
    order.
    """
    values = []
    for raw in namedFields(block, (name,)):
        value = raw[raw.index(b":") + 1:]
        if value.count(b"\n") > 1:
            value = b"".join(line.rstrip(b"\r") for line in value.split(b"\n"))
        values.append(value.strip())
    return values


def headerValue(fields, name):
    """
    The first value of header C{name} (lower case) among C{fields}, or
    C{None}.
    """
    for fieldName, _, value in fields:
        if fieldName == name:
            return value
    return None


def headerEnd(data, start, end):
    """
    Where the body starts in C{data[start:end]}: after the first empty
    line, or C{end} if there is none.
    """
    if data[start:start + 2] == b"\r\n":
        return start + 2
    found = data.find(b"\r\n\r\n", start, end)
    return end if found == -1 else found + 4


# Content-Type and similar structured values ----------------------------

_TSPECIALS = b'()<>@,;:\\"/[]?='


def _skipSpace(value, pos):
    """
    Skip white space and (nested) comments.
    """
    while pos < len(value):
        c = value[pos:pos + 1]
        if c in (b" ", b"\t", b"\r", b"\n"):
            pos += 1
        elif c == b"(":
            depth = 0
            while pos < len(value):
                c = value[pos:pos + 1]
                if c == b"\\":
                    pos += 1
                elif c == b"(":
                    depth += 1
                elif c == b")":
                    depth -= 1
                    if depth == 0:
                        pos += 1
                        break
                pos += 1
        else:
            break
    return pos


def _token(value, pos, stops=_TSPECIALS):
    """
    A token or quoted string at C{pos}: C{(bytes, newPos)}.
    """
    pos = _skipSpace(value, pos)
    if value[pos:pos + 1] == b'"':
        out = bytearray()
        pos += 1
        while pos < len(value):
            c = value[pos:pos + 1]
            if c == b"\\" and pos + 1 < len(value):
                out += value[pos + 1:pos + 2]
                pos += 2
                continue
            if c == b'"':
                pos += 1
                break
            out += c
            pos += 1
        return bytes(out), pos
    start = pos
    while pos < len(value) and value[pos] > 0x20 and value[pos:pos + 1] not in stops:
        pos += 1
    return value[start:pos], pos


def parseParameterized(value):
    """
    Parse C{type/subtype; a=b; c="d"} (or a disposition C{attachment;
    filename=x}) leniently.

    @return: C{(main, sub, params)}; C{main}/C{sub} C{bytes} as written
        (C{sub} C{None} without a slash), C{params} a C{list} of
        C{(name, value)} C{bytes} as written, in order.
    """
    main, pos = _token(value, 0)
    sub = None
    pos = _skipSpace(value, pos)
    if value[pos:pos + 1] == b"/":
        sub, pos = _token(value, pos + 1)
    params = []
    while True:
        pos = _skipSpace(value, pos)
        semi = value.find(b";", pos)
        if semi == -1:
            break
        name, pos = _token(value, semi + 1)
        pos = _skipSpace(value, pos)
        if not name or value[pos:pos + 1] != b"=":
            continue
        val, pos = _token(value, pos + 1, stops=b";")
        params.append((name, val))
    return main, sub, params


# The walker -------------------------------------------------------------

class Entity:
    """
    One MIME entity: a message or a body part, as byte offsets into the
    message data.

    @ivar start: offset of the first header byte.
    @ivar bodyStart: offset of the first body byte (after the empty line).
    @ivar end: offset just past the body.
    @ivar fields: see L{splitHeaderFields}.
    @ivar maintype, subtype: lower-case C{bytes}.
    @ivar rawType, rawSubtype: the same as written.
    @ivar params: content-type parameters, see L{parseParameterized}.
    @ivar parts: child L{Entity}s of a multipart, else C{None}.
    @ivar embedded: the message L{Entity} inside a message/rfc822, else
        C{None}.
    @ivar closeLineEnd: for a multipart (or a message/rfc822 holding one),
        the offset of the CRLF after its close delimiter, else C{None}.
    """

    def __init__(self, data, start, end, defaultType=(b"text", b"plain"), depth=0):
        self.data = data
        self.start = start
        self.end = end
        self.bodyStart = headerEnd(data, start, end)
        self.fields = splitHeaderFields(data[start:self.bodyStart])
        self.parts = None
        self.embedded = None
        self.closeLineEnd = None
        ctype = headerValue(self.fields, "content-type")
        main, sub, params = (None, None, [])
        if ctype is not None:
            main, sub, params = parseParameterized(ctype)
        if not main or not sub:
            main, sub = defaultType
        if main.lower() == b"text" and not any(n.lower() == b"charset" for n, _ in params):
            params = [(b"charset", b"us-ascii")] + params
        # Kept as written for BODYSTRUCTURE (as Dovecot does); compared
        # in lower case.
        self.rawType, self.rawSubtype, self.params = main, sub, params
        main, sub = main.lower(), sub.lower()
        self.maintype, self.subtype = main, sub
        if depth > 50:
            return
        if main == b"multipart":
            boundary = self.param(b"boundary")
            if not boundary:
                # Dovecot's reading: a multipart with no parts.
                self.parts = []
            else:
                childType = (b"message", b"rfc822") if sub == _DIGEST else (b"text", b"plain")
                ranges, self.closeLineEnd = _splitMultipart(data, self.bodyStart, end, boundary)
                self.parts = []
                for s, e in ranges:
                    child = Entity(data, s, e, childType, depth + 1)
                    if child.closeLineEnd == e and data[e:e + 2] == b"\r\n":
                        # As Dovecot does: a part that ends with the close
                        # delimiter of a nested multipart keeps that line's CRLF.
                        child.extend(e + 2)
                    self.parts.append(child)
        elif main == b"message" and sub in (b"rfc822", b"global"):
            self.embedded = Entity(data, self.bodyStart, end, depth=depth + 1)
            self.closeLineEnd = self.embedded.closeLineEnd

    def extend(self, end):
        """
        Move the end of this entity (and of the message it encapsulates).
        """
        self.end = end
        if self.embedded is not None:
            self.embedded.extend(end)

    def param(self, name):
        """
        The value of content-type parameter C{name}, or C{None}.
        """
        for n, v in self.params:
            if n.lower() == name:
                return v
        return None

    def header(self, name):
        return headerValue(self.fields, name)

    @property
    def headerBytes(self):
        return self.data[self.start:self.bodyStart]

    @property
    def body(self):
        return self.data[self.bodyStart:self.end]

    @property
    def bodySize(self):
        return self.end - self.bodyStart

    def messageParts(self):
        """
        The part list of this entity taken as a message: its parts if it
        is a multipart, else itself as part 1.
        """
        if self.parts is not None:
            return self.parts
        return [self]


def _splitMultipart(data, start, end, boundary):
    """
    The C{(start, end)} ranges of the parts of a multipart body; the CRLF
    before each delimiter belongs to the delimiter (RFC 2046).  Jumps from
    one occurrence of the boundary to the next, so a large attachment costs
    a byte search, not a step per line.

    @return: C{(ranges, closeLineEnd)}, the latter the offset of the CRLF
        ending the close delimiter line, or C{None} if there is none.
    """
    delimiter = b"--" + boundary
    ranges = []
    partStart = None
    pos = start
    while pos < end:
        found = data.find(delimiter, pos, end)
        if found == -1:
            break
        if found != start and data[found - 2:found] != b"\r\n":
            pos = found + 1  # not at the start of a line
            continue
        nl = data.find(b"\r\n", found, end)
        lineEnd = end if nl == -1 else nl
        nextPos = end if nl == -1 else nl + 2
        rest = data[found + len(delimiter):lineEnd]
        closing = rest[:2] == b"--"
        if closing:
            rest = rest[2:]
        if not rest.strip(b" \t"):
            if partStart is not None:
                ranges.append((partStart, max(partStart, found - 2)))
            if closing:
                return ranges, lineEnd
            partStart = nextPos
        pos = nextPos
    if partStart is not None:
        ranges.append((partStart, end))
    return ranges, None


def findSection(root, path):
    """
    The entity at a section part number (C{(1, 2)} for C{1.2}), or C{None}.

    Numbering follows Dovecot: a non-multipart entity is its own part 1,
    once (C{BODY[1]} of a single-part message is its body, C{BODY[2.1]} is
    part 2 itself, but C{BODY[1.1]} and C{BODY[2.1.1]} do not exist).
    """
    candidates = root.messageParts()
    viaSelf = root.parts is None
    entity = None
    for number in path:
        if candidates is None or number < 1 or number > len(candidates):
            return None
        entity = candidates[number - 1]
        if entity.parts is not None:
            candidates, viaSelf = entity.parts, False
        elif entity.embedded is not None:
            candidates, viaSelf = entity.embedded.messageParts(), entity.embedded.parts is None
        elif viaSelf:
            candidates = None
        else:
            candidates, viaSelf = [entity], True
    return entity


# ENVELOPE ------------------------------------------------------------

_ADDRESS_TOKEN = re.compile(rb'[ \t\r\n]+|"((?:[^"\\]|\\.)*)"?|<[^>]*>?|[,:;@]|[^ \t\r\n"(<,:;@]+', re.S)
_ESCAPE = re.compile(rb"\\(.)", re.S)


def _addressTokens(value):
    """
    Tokens of an address list: C{(kind, bytes)} with kind one of
    C{"atom"}, C{"quoted"}, C{"comment"}, C{"angle"} or a special
    character.
    """
    tokens = []
    pos, n = 0, len(value)
    match = _ADDRESS_TOKEN.match
    while pos < n:
        if value[pos] == 0x28:  # (
            start = pos
            pos = _skipSpace(value, pos)
            tokens.append(("comment", value[start + 1:pos].rstrip()[:-1].strip()))
            continue
        m = match(value, pos)
        text = m.group()
        pos = m.end()
        first = text[0]
        if first in b" \t\r\n":
            continue
        if first == 0x22:
            tokens.append(("quoted", _ESCAPE.sub(rb"\1", m.group(1))))
        elif first == 0x3C:
            tokens.append(("angle", text[1:-1] if text.endswith(b">") else text[1:]))
        elif text in (b",", b":", b";", b"@"):
            tokens.append((text.decode(), text))
        else:
            tokens.append(("atom", text))
    return tokens


def _splitAddrSpec(spec):
    """
    C{(adl, mailbox, host)} of an addr-spec, possibly with a route.
    """
    spec = spec.strip()
    adl = None
    if spec.startswith(b"@") and b":" in spec:
        adl, spec = spec.split(b":", 1)
    if b"@" in spec:
        mailbox, host = spec.rsplit(b"@", 1)
    else:
        mailbox, host = spec, b""
    mailbox = mailbox.strip()
    if mailbox.startswith(b'"') and mailbox.endswith(b'"') and len(mailbox) > 1:
        mailbox = mailbox[1:-1]
    return adl, mailbox or b"MISSING_MAILBOX", host.strip() or b"MISSING_DOMAIN"


def _mailbox(tokens):
    """
    One address (name, adl, mailbox, host) from its tokens, or C{None}.
    """
    if not tokens:
        return None
    angles = [t for k, t in tokens if k == "angle"]
    if angles:
        phrase = []
        for kind, text in tokens:
            if kind == "angle":
                break
            if kind in ("atom", "quoted"):
                phrase.append(text)
        name = b" ".join(phrase) or None
        adl, mailbox, host = _splitAddrSpec(angles[0])
        return (name, adl, mailbox, host)
    comments = [t for k, t in tokens if k == "comment"]
    spec = b"".join(b'"%s"' % t if k == "quoted" else t for k, t in tokens if k != "comment")
    if not spec:
        return None
    adl, mailbox, host = _splitAddrSpec(spec)
    return (comments[-1] if comments else None, adl, mailbox, host)


def parseAddressList(value):
    """
    Parse an address-list header value leniently into ENVELOPE address
    tuples C{(name, adl, mailbox, host)} of C{bytes}/C{None}, with RFC
    3501 group markers C{(None, None, groupName, None)} ...
    C{(None, None, None, None)}.
    """
    result = []
    current = []
    inGroup = False
    for kind, text in _addressTokens(value):
        if kind == ",":
            addr = _mailbox(current)
            if addr:
                result.append(addr)
            current = []
        elif kind == ":" and not inGroup and not any(k == "angle" for k, _ in current):
            name = b" ".join(t for k, t in current if k in ("atom", "quoted"))
            result.append((None, None, name, None))
            inGroup = True
            current = []
        elif kind == ";" and inGroup:
            addr = _mailbox(current)
            if addr:
                result.append(addr)
            result.append((None, None, None, None))
            inGroup = False
            current = []
        else:
            current.append((kind, text))
    addr = _mailbox(current)
    if addr:
        result.append(addr)
    if inGroup:
        result.append((None, None, None, None))
    return result


def _renderAddresses(value):
    if value is None:
        return b"NIL"
    addresses = parseAddressList(value)
    if not addresses:
        return b"NIL"
    # RFC 3501: env-from = "(" 1*address ")", no space between addresses.
    return b"(" + b"".join(imapList([imapString(p) for p in a]) for a in addresses) + b")"


def renderEnvelope(fields):
    """
    The ENVELOPE of a message from its header fields (L{splitHeaderFields}).

    @rtype: C{bytes}
    """
    get = lambda name: headerValue(fields, name)
    sender = get("from")
    # Sender and Reply-To default to From (most messages have neither):
    # its addresses are parsed once.
    fromAddresses = _renderAddresses(sender)
    senderValue, replyTo = get("sender"), get("reply-to")
    parts = [
        imapString(get("date")),
        imapString(get("subject")),
        fromAddresses,
        _renderAddresses(senderValue) if senderValue else fromAddresses,
        _renderAddresses(replyTo) if replyTo else fromAddresses,
        _renderAddresses(get("to")),
        _renderAddresses(get("cc")),
        _renderAddresses(get("bcc")),
        imapString(get("in-reply-to")),
        imapString(get("message-id")),
    ]
    return b"(" + b" ".join(parts) + b")"


# BODY / BODYSTRUCTURE -------------------------------------------------------

def _lines(entity):
    """
    RFC 3501 C{body-fld-lines}: the number of lines of an entity's body,
    counted as Dovecot does (line ends: a last line without CRLF does not
    count).
    """
    data, start, end = entity.data, entity.bodyStart, entity.end
    if isinstance(data, bytes):
        return data.count(b"\n", start, end)
    # A mapped file: counted a megabyte at a time.
    return sum(data[pos:min(pos + _COUNT_CHUNK, end)].count(b"\n") for pos in range(start, end, _COUNT_CHUNK))


_COUNT_CHUNK = 1 << 20


_CONTINUATION = re.compile(rb"^(.+)\*([0-9]+)$")


def _mergeContinuations(params):
    """
    Join RFC 2231 continuations that are not charset-encoded
    (C{name*0="a"; name*1="b"} is C{name="ab"}), as Dovecot does; encoded
    ones (C{name*=}, C{name*0*=}) are passed on as written.
    """
    merged, pieces = [], {}
    for name, value in params:
        m = _CONTINUATION.match(name)
        if m is None:
            merged.append((name, value))
            continue
        base = m.group(1)
        if base not in pieces:
            pieces[base] = []
            merged.append((base, None))
        pieces[base].append((int(m.group(2)), value))
    return [(n, b"".join(v for _, v in sorted(pieces[n])) if v is None else v) for n, v in merged]


def _params(params):
    return imapList([imapString(n) + b" " + imapString(v) for n, v in _mergeContinuations(params)])


def _extension(entity):
    """
    C{body-fld-dsp body-fld-lang body-fld-loc}.
    """
    disposition = entity.header("content-disposition")
    if disposition is None:
        dsp = b"NIL"
    else:
        kind, _, params = parseParameterized(disposition)
        dsp = b"(" + imapString(kind) + b" " + _params(params) + b")"
    language = entity.header("content-language")
    if language is None:
        lang = b"NIL"
    else:
        tags = [t.strip() for t in language.replace(b"\t", b" ").split(b",") if t.strip()]
        if len(tags) == 1:
            lang = imapString(tags[0])
        else:
            lang = imapList([imapString(t) for t in tags])
    return [dsp, lang, imapString(entity.header("content-location"))]


def renderBodyStructure(entity, extensible=True):
    """
    BODYSTRUCTURE (C{extensible=True}) or BODY of C{entity}.

    @rtype: C{bytes}
    """
    if entity.parts is not None:
        if not entity.parts:
            # A multipart without parts is not representable: describe the
            # body as one empty text part, as other servers do.
            children = [b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0'
                        + (b" NIL NIL NIL NIL" if extensible else b"") + b")"]
        else:
            children = [renderBodyStructure(p, extensible) for p in entity.parts]
        items = [b"".join(children), imapString(entity.rawSubtype)]
        if extensible:
            items.append(_params(entity.params))
            items.extend(_extension(entity))
        return b"(" + b" ".join(items) + b")"
    encoding = entity.header("content-transfer-encoding")
    encoding = encoding.strip().lower() if encoding else b"7bit"
    items = [
        imapString(entity.rawType), imapString(entity.rawSubtype),
        _params(entity.params),
        imapString(entity.header("content-id")),
        imapString(entity.header("content-description")),
        imapString(encoding),
        b"%d" % (entity.bodySize,),
    ]
    if entity.embedded is not None:
        items.append(renderEnvelope(entity.embedded.fields))
        items.append(renderBodyStructure(entity.embedded, extensible))
        items.append(b"%d" % (_lines(entity),))
    elif entity.maintype == b"text":
        items.append(b"%d" % (_lines(entity),))
    if extensible:
        items.append(imapString(entity.header("content-md5")))
        items.extend(_extension(entity))
    return b"(" + b" ".join(items) + b")"


def sentDate(fields):
    """
    The Date header as an aware C{datetime}, or C{None} when missing or
    unparseable.
    """
    value = headerValue(fields, "date")
    if value is None:
        return None
    try:
        return email.utils.parsedate_to_datetime(value.decode("latin-1"))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
