# -*- test-case-name: tests.test_imap_xmapi -*-
"""
XMAPI (C{docs/xmapi.md}) message items: C{FETCH XPROPS} (section 4.1) and
C{STORE XPROPS} / C{XPROPS.SILENT} (section 4.2), C{SEARCH XPROP}, rows that
L{install} adds to an IMAP factory's registries, with the calendar rows of
L{gateway.imap.xmapi_calendar} (C{FETCH XINSTANCES}, C{SEARCH XOVERLAPS}).

The MAPI meaning (identifiers, types, derived properties) is
L{gateway.mapi}; stored properties are L{gateway.store.properties}; this
module is the syntax.

The capability C{XMAPI} is announced only when C{[imap] xmapi} is on (default
off): R-CAP-1 asks for the whole of C{docs/xmapi.md}, and section 12 there
says what is missing.
"""

import email
import email.policy
import re
import sqlite3

import attr
import icalendar
from twisted.internet.defer import inlineCallbacks, succeed

from gateway.imap import mimeparts, xmapi_calendar
from gateway.imap.commands_selected import checkWritable, targetUids
from gateway.imap.fetchitems import FetchItem
from gateway.imap.message import headersComplete
from gateway.imap.parser import Arguments, IMAPSyntaxError
from gateway.imap.protocol import LITERAL_REFUSALS, bad, capability, no
from gateway.imap.search import SearchKey
from gateway.imap.sequence import formatSequenceSet
from gateway.mapi import convert
from gateway.mapi.properties import (
    _INTEGER_RANGES,
    MV_FLAG,
    PT_BINARY,
    PT_BOOLEAN,
    PT_CLSID,
    PT_STRING8,
    PT_SYSTIME,
    PT_UNICODE,
    PropertyError,
    canonicalText,
    fromText,
    isDerived,
    parsePropertyId,
    toText,
)
from gateway.store import properties as stored
from gateway.store.access import hasRight
from gateway.store.calendar.parse import CALENDAR_TYPES, Unparsed, isCalendarClass
from gateway.store.calendar.periods import accountZone
from gateway.store.calendar.summaries import SummaryStore

capability("XMAPI", lambda session: bool(session.context.config["imap", "xmapi"]))


def _storeLiteralRefusal(session):
    """
    A STORE literal longer than a command may carry is a property value
    past R-PROP-4's limit (flags are never literals): C{NO [LIMIT]}.
    """
    return "[LIMIT] A property value is at most %d octets" % (stored.MAX_VALUE_SIZE,)


LITERAL_REFUSALS["STORE"] = LITERAL_REFUSALS["UID STORE"] = _storeLiteralRefusal

#: An identifier that can be written as an atom in a response.
_ATOM_ID = re.compile(r"[A-Za-z0-9_./=+-]+\Z")


def install(registries):
    """
    Add the XMAPI rows to C{registries} (a
    L{gateway.imap.registry.Registries}).
    """
    registries.fetch.add("XPROPS", _xpropsRenderer, parse=parseFetchXprops, contextual=True)
    registries.store.add("XPROPS", storeXprops, modes="=")
    registries.search.add("XPROP", parseSearchXprop)
    xmapi_calendar.install(registries)


# -- identifiers and values on the wire -----------------------------------------------------

def _idText(token):
    """
    The text of an C{xprop-id} token (an atom C{str} or a string C{bytes}).
    """
    if isinstance(token, list):
        raise ValueError("expected a property identifier, got a list")
    if isinstance(token, bytes):
        try:
            return token.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError("a property identifier is ASCII") from None
    return token


def parseIds(tokens):
    """
    C{[(text, PropertyKey)]} for the identifier tokens of a request.

    @raise ValueError: a malformed or unknown identifier (R-ID-2, R-ID-3).
    """
    result = []
    for token in tokens:
        text = _idText(token)
        try:
            result.append((text, parsePropertyId(text)))
        except PropertyError as e:
            raise ValueError(str(e)) from None
    return result


def formatId(text):
    """
    An identifier as a response writes it (an atom where it can be).
    """
    if _ATOM_ID.match(text):
        return text.encode("ascii")
    return mimeparts.imapString(text)


def rawValue(token):
    """
    The neutral form of a value token for L{gateway.mapi.properties.fromText}:
    C{int} for a number, C{str} for a string, C{list} for a list, C{None}
    for C{NIL}.

    @raise ValueError: an atom that is neither a number nor C{NIL}, or a
        string that is not UTF-8.
    """
    if isinstance(token, list):
        return [_single(item) for item in token]
    if isinstance(token, str) and token.upper() == "NIL":
        return None
    return _single(token)


def _single(token):
    if isinstance(token, list):
        raise ValueError("a list inside a list value")
    if isinstance(token, bytes):
        try:
            return token.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("a string value is UTF-8") from None
    if token.isdigit() and token.isascii():
        return int(token)
    raise ValueError("%r is not a number, a string or a list" % (token[:40],))


def formatValue(value):
    """
    A neutral value (L{gateway.mapi.properties.toText}) as IMAP: a number,
    a string, a list, or C{NIL}.
    """
    if value is None:
        return b"NIL"
    if isinstance(value, list):
        return b"(" + b" ".join(formatValue(item) for item in value) + b")"
    if isinstance(value, bool):
        return b"%d" % (int(value),)
    if isinstance(value, int):
        return b"%d" % (value,)
    return mimeparts.imapString(value)


# -- FETCH XPROPS ----------------------------------------------------------------------------

def _closing(text, pos):
    """
    The index of the C{)} that closes the list opening at C{text[pos]}
    (quoted strings skipped).
    """
    depth, i, quoted = 0, pos, False
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError("missing ) after XPROPS")


class XpropsItem(FetchItem):
    """
    C{XPROPS (ids)} or C{XPROPS (*)}: the identifiers, and what L{prepare}
    reads for the batch being rendered, one query each (R-FETCH-3): the
    stored properties, and the calendar summaries of a calendar's items
    (those the calendar engine holds in memory taken from it).

    @ivar xprops: C{[(text, PropertyKey)]}, or C{None} for C{*}.
    """

    def __init__(self, xprops):
        FetchItem.__init__(self, "XPROPS")
        self.xprops = xprops
        self.stored = {}
        self.summaries = {}

    def __eq__(self, other):
        return isinstance(other, XpropsItem) and self.xprops == other.xprops

    def prepare(self, session, uids):
        """
        Read the stored properties and the summaries of C{uids}.

        @return: a C{Deferred} that fires when they are read.
        """
        mailbox = session.view.mailbox
        wanted = self.xprops
        if wanted is None or any(not isDerived(key) for _, key in wanted):
            self.stored = stored.properties(mailbox, uids)
        if wanted is None or not isCalendarClass(mailbox.mailboxClass) or not any(
                key in _SUMMARY_KEYS for _, key in wanted):
            self.summaries = {}
        else:
            owner = xmapi_calendar.ownerAccount(session, mailbox)
            self.summaries = xmapi_calendar.calendarEngine(session).heldItems(owner, mailbox, uids)
            missing = [uid for uid in uids if uid not in self.summaries]
            if missing:
                self.summaries.update(_summaries(owner, mailbox, missing))
        return succeed(None)


def _summaries(owner, mailbox, uids):
    """
    The calendar summaries of some messages of a calendar (C{{uid:
    items}}, those without one left out), or C{{}} when they cannot be read
    now (the messages are then parsed).
    """
    try:
        # On the reactor thread: a file another writer holds (the engine
        # emptying an old format, say) is not waited for long.
        summaries = SummaryStore.forMailStore(owner.mailStore, timeout=0.5)
    except sqlite3.Error:
        return {}
    try:
        return summaries.loadPlain(mailbox.uidValidity, uids)
    except sqlite3.Error:
        return {}
    finally:
        summaries.close()


def parseFetchXprops(text, pos):
    """
    C{XPROPS (id ...)} or C{XPROPS (*)}: the FETCH registry's parser, giving
    an L{XpropsItem}.
    """
    if not text.startswith(" (", pos):
        raise ValueError("XPROPS needs a list of property identifiers")
    close = _closing(text, pos + 1)
    try:
        tokens = Arguments(text[pos + 2:close].encode("latin-1")).values()
    except IMAPSyntaxError as e:
        raise ValueError("XPROPS: %s" % (e,)) from None
    if tokens == ["*"]:
        return XpropsItem(None), close + 1
    if not tokens:
        raise ValueError("XPROPS needs a property identifier or *")
    return XpropsItem(parseIds(tokens)), close + 1


def deriveProperties(data, info, mailboxClass, zone=convert.UTC):
    """
    The derived properties of a message (C{docs/xmapi.md} section 3.3):
    from its header fields, and from its first C{text/calendar} (or
    C{application/ics}, as the calendar store reads) or C{text/vcard} part.

    @param data: the message (bytes-like).
    @param zone: the time zone of the mailbox's owner (dates and floating
        times are in it).
    @return: C{dict} of L{PropertyKey} to value.
    """
    message = email.message_from_bytes(bytes(data), policy=email.policy.compat32)
    values = convert.deriveMail(message, info.size, info.internalDate)
    for part in message.walk():
        contentType = part.get_content_type()
        if contentType in CALENDAR_TYPES:
            try:
                calendar = icalendar.Calendar.from_ical(part.get_payload(decode=True) or b"")
                values.update(convert.deriveCalendar(calendar, zone))
            except Exception:  # noqa: BLE001 -- a client's bad iCalendar: the mail properties stand
                pass
            break
        if contentType in _ITEM_TYPES:
            payload = part.get_payload(decode=True) or b""
            values.update(convert.deriveContact(payload.decode("utf-8", "replace")))
            break
    if _isStickyNotes(mailboxClass):
        values[convert.key("PidTagMessageClass")] = "IPM.StickyNote"
    return values


def _isStickyNotes(mailboxClass):
    return (mailboxClass or "").split(".")[:2] == ["IPF", "StickyNote"]


#: The content types whose part L{deriveProperties} reads as the item.
_ITEM_TYPES = ("text/vcard", "text/x-vcard", "text/directory")
#: The derived properties of the index row.
_INFO_KEYS = {convert.key("PidTagMessageSize"), convert.key("PidTagMessageDeliveryTime")}
#: The derived properties of the header fields (L{convert.deriveMail}).
_MAIL_KEYS = {convert.key(name) for name, _ in convert.MAIL_TABLE} | {
    convert.key("PidTagSubjectPrefix"), convert.key("PidTagNormalizedSubject"), convert.key("PidTagMessageClass")}
#: Those an appointment's VEVENT does not change (L{convert.EVENT_TABLE}).
_EVENT_MAIL_KEYS = _MAIL_KEYS - {convert.key(name) for name, _ in convert.EVENT_TABLE} - {
    convert.key("PidTagMessageClass")}
#: The derived properties a calendar summary answers: key -> canonical name.
_SUMMARY_KEYS = {convert.key(name): name for name in convert.SUMMARIZED_EVENT_NAMES}


def _summarizedEvent(items):
    """
    The event whose properties a calendar message's summary items give (as
    L{convert.deriveCalendar} picks its master component), or C{None} when
    the summary does not say (several events, several UIDs, a series kept
    as text only, no event).
    """
    if len(items) != 1:
        return None
    item = items[0]
    if not isinstance(item, Unparsed):
        return item
    events = item.parsedEvents
    if not events or item.shared:
        return None
    masters = [event for event in events if event.recurrenceId is None]
    if len(masters) > 1:
        return None
    return masters[0] if masters else events[0]


#: Where L{quickProperties} finds a requested property (L{_sources}).
_STORED, _SIZE, _DELIVERY, _SUMMARY, _EVENT_MAIL, _HEADERS = range(6)


def _sources(wanted):
    """
    C{[(prefix, source, name, key)]} for the requested C{[(text, key)]}:
    the response's C{id SP}, where the value comes from (one of
    L{_STORED}, L{_SIZE}, L{_DELIVERY}, L{_SUMMARY} with the canonical
    C{name}, L{_EVENT_MAIL}: the header fields, also for an appointment,
    L{_HEADERS}: the header fields of a message that is no calendar item),
    and the key.  Made once per FETCH, so that no message hashes a key.
    """
    sources = []
    for text, key in wanted:
        name = None
        if not isDerived(key):
            source, name = _STORED, key.text()
        elif key == _SIZE_KEY:
            source = _SIZE
        elif key == _DELIVERY_KEY:
            source = _DELIVERY
        elif key in _SUMMARY_KEYS:
            source, name = _SUMMARY, _SUMMARY_KEYS[key]
        elif key in _EVENT_MAIL_KEYS:
            source = _EVENT_MAIL
        else:
            source = _HEADERS
        sources.append((formatId(text) + b" ", source, name, key))
    return sources


def quickProperties(info, items, sources, mailboxClass, zone=convert.UTC):
    """
    Derived properties of a message without reading it (R-FETCH-3): from
    its calendar summary and its index row (size, dates, header block).

    @param info: the message's L{gateway.interfaces.IMessageInfo}, with
        its header block.
    @param items: the message's calendar summary items (C{None} when it
        has no summary).
    @param sources: what L{_sources} made of the request.
    @param zone: as for L{deriveProperties}.
    @return: the value of each source in order (C{None} for a property
        the message does not have, and for a stored one), or C{None} when
        they cannot all be answered so (parse the message:
        L{deriveProperties}).
    """
    event = None
    if items:
        event = _summarizedEvent(items)
        if event is None:
            return None
    values = []
    mail = None
    for _, source, name, key in sources:
        if source == _STORED:
            value = None
        elif source == _SIZE:
            value = min(info.size, 2**31 - 1)
        elif source == _DELIVERY:
            value = info.internalDate.astimezone(convert.UTC)
        else:
            value = convert.FROM_HEADERS
            if event is not None:
                if source == _SUMMARY:
                    value = convert.deriveSummarizedEvent(event, name, zone)
                    if value is convert.UNKNOWN:
                        return None
                elif source != _EVENT_MAIL:
                    return None
            if value is convert.FROM_HEADERS:
                if mail is None:
                    mail = _headerProperties(info, event is None, mailboxClass)
                    if mail is None:
                        return None
                value = mail.get(key)
        values.append(value)
    return values


_SIZE_KEY = convert.key("PidTagMessageSize")
_DELIVERY_KEY = convert.key("PidTagMessageDeliveryTime")

def _headerProperties(info, whole, mailboxClass):
    """
    The derived properties of a message's header fields, from the index's
    header block; C{None} when the index does not hold the whole block, or
    (with C{whole}: they are all of the message's derived properties) when
    the message may hold an item part (multipart, or a calendar or vCard
    type).
    """
    if not headersComplete(info):
        return None
    headers = email.message_from_bytes(bytes(info.headers), policy=email.policy.compat32)
    if whole:
        contentType = headers.get_content_type()
        if headers.get_content_maintype() in ("multipart", "message") or contentType in CALENDAR_TYPES \
                or contentType in _ITEM_TYPES:
            return None
    values = convert.deriveMail(headers, info.size, info.internalDate)
    if _isStickyNotes(mailboxClass):
        values[convert.key("PidTagMessageClass")] = "IPM.StickyNote"
    return values


def _formatDerived(key, value):
    """
    A derived value on the wire (C{NIL} for C{None}); times without
    C{strftime}, the most common and the costliest to write.
    """
    if value is None:
        return b"NIL"
    if key.propType == PT_SYSTIME:
        value = value.astimezone(convert.UTC)
        return b'"%04d%02d%02dT%02d%02d%02dZ"' % (value.year, value.month, value.day, value.hour, value.minute,
                                                value.second)
    return formatValue(toText(key, value))


def _xpropsRenderer(item, threshold, session):
    xmapi_calendar.markGroupware(session)
    mailbox = session.view.mailbox
    mailboxClass = mailbox.mailboxClass
    zone = accountZone(xmapi_calendar.ownerAccount(session, mailbox).record)
    wanted = item.xprops
    if wanted is None:
        def renderAll(parts, message, flags, recent):
            info = message.info
            derived = deriveProperties(message.data, info, mailboxClass, zone)
            pairs = [(canonicalText(key), toText(key, value)) for key, value in derived.items()]
            for keyText, (_, value) in sorted(item.stored.get(info.uid, {}).items()):
                key = parsePropertyId(keyText)
                if key not in derived:
                    pairs.append((canonicalText(key), value))
            parts.append(b"(" + b" ".join(formatId(text) + b" " + formatValue(value) for text, value in pairs)
                         + b")")
        return renderAll
    sources = _sources(wanted)
    parseAll = [(prefix, key) for prefix, _, _, key in sources]

    def render(parts, message, flags, recent):
        info = message.info
        own = item.stored.get(info.uid)
        values = quickProperties(info, item.summaries.get(info.uid), sources, mailboxClass, zone)
        if values is None:
            derived = deriveProperties(message.data, info, mailboxClass, zone)
            values = [derived.get(key) for _, key in parseAll]
        shown = []
        for (prefix, source, name, key), value in zip(sources, values, strict=True):
            if source == _STORED:
                entry = own.get(name) if own else None
                shown.append(prefix + formatValue(None if entry is None else entry[1]))
            else:
                shown.append(prefix + _formatDerived(key, value))
        parts.append(b"(" + b" ".join(shown) + b")")
    return render


# -- STORE XPROPS ----------------------------------------------------------------------------

def parsePairs(tokens):
    """
    C{{PropertyKey: (text, value)}} for the C{xprop-pair}s of a STORE,
    values checked against their types (R-VAL-1); C{None} deletes.

    @raise ValueError: a malformed identifier or a mistyped value.
    """
    if not tokens or len(tokens) % 2:
        raise ValueError("XPROPS takes pairs of a property identifier and a value")
    changes = {}
    for idToken, valueToken in zip(tokens[::2], tokens[1::2], strict=True):
        [(text, key)] = parseIds([idToken])
        raw = rawValue(valueToken)
        if raw is None:
            changes[key] = (text, None)
            continue
        try:
            changes[key] = (text, fromText(key, raw, text))
        except PropertyError as e:
            raise ValueError(str(e)) from None
    return changes


@inlineCallbacks
def storeXprops(session, args, uid, sequenceSet, unchangedSince, mode, silent):
    """
    The XPROPS row of the STORE registry (R-STORE-1..3, R-PROP-1..4).
    """
    xmapi_calendar.markGroupware(session)
    if args.peek() != b"(":
        raise bad("XPROPS takes a parenthesized list of pairs")
    tokens = args.parenList()
    args.end()
    try:
        changes = parsePairs(tokens)
    except ValueError as e:
        raise bad("XPROPS: %s" % (e,)) from None
    derived = [text for key, (text, _) in changes.items() if isDerived(key)]
    if derived:
        raise no("[CANNOT] %s is derived from the message; replace the message to change it" % (derived[0],))
    checkWritable(session)
    view = session.view
    mailbox = view.mailbox
    if not hasRight(mailbox, "w"):
        raise no("[NOPERM] storing properties needs the w right")
    uids = targetUids(session, sequenceSet, uid)
    values = {key.text(): None if value is None else (key.propType, toText(key, value))
              for key, (text, value) in changes.items()}
    try:
        changed, failed = yield stored.setPropertiesLater(mailbox, uids, values, unchangedSince)
    except stored.PropertyLimitError as e:
        raise no("[LIMIT] %s" % (e,)) from None
    infos = mailbox.messages(changed, headers=False) if changed else []
    view.noteOwnChanges(infos)
    condstore = "CONDSTORE" in session.enabled or unchangedSince is not None
    if not silent or condstore:
        shown = b" ".join(formatId(text) + b" " + formatValue(None if value is None else toText(key, value))
                          for key, (text, value) in changes.items())
        for info in infos:
            seq = view.seqOf(info.uid)
            if seq is None:
                continue
            parts = []
            if uid or "QRESYNC" in session.enabled:  # RFC 7162 3.2.4
                parts.append(b"UID %d" % (info.uid,))
            if not silent:
                parts.append(b"XPROPS (" + shown + b")")
            if condstore:
                parts.append(b"MODSEQ (%d)" % (info.modseq,))
            session.sendUntagged(b"%d FETCH (%s)" % (seq, b" ".join(parts)))
    if failed:
        if uid:
            modified = formatSequenceSet(failed)
        else:
            modified = formatSequenceSet(view.seqOf(u) for u in failed)
        return ("OK", "[MODIFIED %s] Conditional STORE failed for some messages" % (modified,))
    return None


# -- SEARCH XPROP ----------------------------------------------------------------------------

_OPERATORS = ("EQ", "NE", "LT", "LE", "GT", "GE", "EXISTS", "PREFIX", "SUBSTR", "IPREFIX", "ISUBSTR",
              "BITSET", "BITCLEAR")
_STRING_OPERATORS = ("PREFIX", "SUBSTR", "IPREFIX", "ISUBSTR")


def _compare(op, have, want):
    """
    One value against the key's (R-SRCH-2); C{have} and C{want} are of the
    property's base type.
    """
    if op == "EQ":
        return have == want
    if op == "NE":
        return have != want
    if op in ("LT", "LE", "GT", "GE"):
        try:
            return {"LT": have < want, "LE": have <= want, "GT": have > want, "GE": have >= want}[op]
        except TypeError:
            return False
    if op == "PREFIX":
        return have.startswith(want)
    if op == "SUBSTR":
        return want in have
    if op == "IPREFIX":
        return have.casefold().startswith(want.casefold())
    if op == "ISUBSTR":
        return want.casefold() in have.casefold()
    if op == "BITSET":
        return have & want == want
    return have & want == 0  # BITCLEAR


#: The SQL condition on one value C{{v}} of a stored property (a value of
#: C{json_each}: a list's items, or the value itself), and how many times
#: it takes the parameter, per operator.
_SQL_CONDITIONS = {"EQ": ("{v} = ?", 1), "NE": ("{v} != ?", 1), "LT": ("{v} < ?", 1), "LE": ("{v} <= ?", 1),
                   "GT": ("{v} > ?", 1), "GE": ("{v} >= ?", 1),
                   "PREFIX": ("substr({v}, 1, length(?)) = ?", 2), "SUBSTR": ("instr({v}, ?) > 0", 1),
                   "BITSET": ("({v} & ?) = ?", 2), "BITCLEAR": ("({v} & ?) = 0", 1)}


def _sqlValue(key, op, value):
    """
    C{(column expression, parameter)} comparing a stored value of C{key}'s
    base type in SQL exactly as L{_compare} compares it, or C{None} where
    SQL cannot (case folding, decimal numbers).
    """
    if op not in _SQL_CONDITIONS:
        return None
    base = key.propType & ~MV_FLAG
    if base in _INTEGER_RANGES:
        # toText keeps negative integers as strings.
        return "CAST(j.value AS INTEGER)", value
    if base == PT_BOOLEAN:
        return "j.value", int(value)
    if base in (PT_UNICODE, PT_STRING8, PT_SYSTIME):
        # Text compares by code point in SQLite's BINARY collation, as in
        # Python; times are "YYYYMMDDTHHMMSSZ", in time order.
        return "j.value", toText(attr.evolve(key, propType=base), value)
    if base in (PT_BINARY, PT_CLSID) and op in ("EQ", "NE"):
        return "j.value", toText(attr.evolve(key, propType=base), value)  # one spelling per value
    return None


class _StoredTerm:
    """
    A L{gateway.store.query} term for C{XPROP} on a stored property: the
    index finds the messages in one query (a sub-select of C{msgprops}).
    """

    def __init__(self, mailboxId, keyText, condition=None, params=()):
        self.mailboxId, self.keyText = mailboxId, keyText
        self.condition, self.params = condition, list(params)

    def sql(self):
        if self.condition is None:
            return ("uid IN (SELECT p.uid FROM msgprops p WHERE p.mailbox = ? AND p.key = ?)",
                    [self.mailboxId, self.keyText])
        return ("uid IN (SELECT p.uid FROM msgprops p, json_each(p.value) j WHERE p.mailbox = ? AND p.key = ?"
                " AND %s)" % (self.condition,), [self.mailboxId, self.keyText] + self.params)


class XpropKey(SearchKey):
    """
    C{XPROP id op [value]} (R-SRCH-1 to R-SRCH-3): a stored property is a
    term of the index's query (L{storeTerm}), or read for every message in
    one query when SQL cannot compare it; a derived one comes from the
    calendar summaries and the index's header block where they hold it
    (read for the mailbox at the first message), else from the message.
    """

    def __init__(self, key, op, value, mailbox, mailboxClass, zone=convert.UTC, session=None):
        self.key, self.op, self.value = key, op, value
        self.mailbox, self.mailboxClass, self.zone = mailbox, mailboxClass, zone
        self.session = session
        self.derived = isDerived(key)
        self.needsHeaders = self.derived
        self._stored = None
        self._summaries = None
        self._sources = _sources([("", key)])

    def storeTerm(self):
        if self.derived or self.mailbox is None:
            return None
        mailboxId, keyText = self.mailbox._id, self.key.text()
        if self.op == "EXISTS":
            return _StoredTerm(mailboxId, keyText)
        found = _sqlValue(self.key, self.op, self.value)
        if found is None:
            return None
        column, param = found
        condition, count = _SQL_CONDITIONS[self.op]
        return _StoredTerm(mailboxId, keyText, condition.format(v=column), [param] * count)

    def _derived(self, m):
        """
        The derived value of message C{m}, or C{None}.
        """
        if self._summaries is None:
            self._summaries = {}
            mailbox = self.mailbox
            if self.session is not None and self.key in _SUMMARY_KEYS and isCalendarClass(self.mailboxClass):
                self._summaries = _summaries(xmapi_calendar.ownerAccount(self.session, mailbox), mailbox,
                                             mailbox.uids())
        values = quickProperties(m.info, self._summaries.get(m.info.uid), self._sources, self.mailboxClass,
                                 self.zone)
        if values is not None:
            return values[0]
        return deriveProperties(m.data(), m.info, self.mailboxClass, self.zone).get(self.key)

    def _values(self, m):
        if self.derived:
            value = self._derived(m)
            if value is None:
                return None
        else:
            if self._stored is None:
                self._stored = stored.propertyValues(self.mailbox, self.key.text())
            entry = self._stored.get(m.info.uid)
            if entry is None:
                return None
            value = fromText(self.key, entry[1])
        if self.key.propType & MV_FLAG:
            return list(value)
        return [value]

    def match(self, m):
        values = self._values(m)
        if values is None:
            return False
        if self.op == "EXISTS":
            return True
        return any(_compare(self.op, have, self.value) for have in values)


def parseSearchXprop(parser, name):
    """
    The SEARCH registry's parser of C{XPROP}.
    """
    text = _idText(parser.next("property identifier"))
    try:
        key = parsePropertyId(text)
    except PropertyError as e:
        raise ValueError(str(e)) from None
    op = parser.atom("XPROP operator").upper()
    if op not in _OPERATORS:
        raise ValueError("unknown XPROP operator %s" % (op[:20],))
    base = key.propType & ~MV_FLAG
    if op in _STRING_OPERATORS and base not in (PT_UNICODE, PT_STRING8):
        raise ValueError("%s compares strings; %s is not a string property" % (op, text))
    if op in ("BITSET", "BITCLEAR") and base not in _INTEGER_RANGES:
        raise ValueError("%s takes an integer property; %s is not one" % (op, text))
    value = None
    if op != "EXISTS":
        token = parser.next("XPROP value")
        try:
            raw = rawValue(token)
            if raw is None or isinstance(raw, list):
                raise ValueError("%s: XPROP compares with one value" % (text,))
            value = fromText(attr.evolve(key, propType=base), raw, text)
        except PropertyError as e:
            raise ValueError(str(e)) from None
    context = parser.context
    mailbox = context.view.mailbox if context is not None else None
    xmapi_calendar.markGroupware(context)
    zone = convert.UTC
    if mailbox is not None and isDerived(key):
        zone = accountZone(xmapi_calendar.ownerAccount(context, mailbox).record)
    return XpropKey(key, op, value, mailbox, getattr(mailbox, "mailboxClass", None), zone, context)
