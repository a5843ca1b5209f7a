# -*- test-case-name: tests.test_calendar -*-
"""
Reading calendar messages: the C{VEVENT}s of C{text/calendar} parts, parsed
once per message (L{loadMessage}) and kept per mailbox by
L{gateway.store.calendar.summaries.ParsedMailbox}.

Parsing with C{icalendar} costs about 0.6 ms an event, most of a first
computation.  A message with one plain event of the common form (see
L{gateway.store.calendar.reader}) is therefore read without it, in a tenth
of that.  Another message with one plain event (no recurrence, override,
C{DURATION} or unusual iTIP method; say with an Outlook zone name) is first
only sniffed (L{sniff}) for its C{UID} and rough times, and parsed when a
window comes near it or another message has the same C{UID}, unless it is
summarized when added (C{sniffing=False}).  A series is parsed at once
(its end is needed), but kept with its text and bounds as an L{Unparsed}
too, so that after a restart it is parsed again only when a window comes
near it, and not at all when it is simple (see
L{gateway.store.calendar.series}): then its events are kept as values.
"""

import binascii
import email
import email.policy
import itertools
import json
import quopri
import re
from datetime import datetime, timedelta, timezone

import icalendar
from dateutil.rrule import rrulestr

from gateway.logging import getLogger
from gateway.store.calendar import series
from gateway.store.calendar.reader import IGNORED_METHODS, attendeeAddress, readPlainEvent

log = getLogger("http")

CALENDAR_CLASS = "IPF.Appointment"


def isCalendarClass(mailboxClass):
    """
    Does a mailbox of C{mailboxClass} hold appointments: C{IPF.Appointment}
    or a sub-class of it (C{IPF.Appointment.Birthday}, docs/xmapi.md
    R-CLASS-1)?
    """
    return mailboxClass == CALENDAR_CLASS or (mailboxClass or "").startswith(CALENDAR_CLASS + ".")
CALENDAR_TYPES = ("text/calendar", "application/ics")


_ONE_DAY = timedelta(days=1)

#: Series with more occurrences than this are not bounded (see L{bounds}).
_BOUND_OCCURRENCES = 10000


class _Event:
    """
    What free/busy needs of one C{VEVENT}, extracted once per message.

    @ivar component: the C{icalendar} component (kept for recurring series).
    @ivar recurring: C{True} if it has C{RRULE} or C{RDATE}.
    @ivar recurrenceId: the raw C{RECURRENCE-ID} value, or C{None}.
    @ivar start: raw C{DTSTART} value (C{date}, naive or aware C{datetime}).
    @ivar end: raw C{DTEND} value, or C{None}.
    @ivar duration: C{DURATION} as a C{timedelta}, or C{None}.
    @ivar utc: C{None}, or C{(zone, span)}: the UTC span (see L{gateway.store.calendar.periods.spanOf})
        last computed, and the zone it was computed with.
    @ivar traits: what classification reads, see L{traitsOf}.
    @ivar details: C{(summary, location)}, the C{SUMMARY} and C{LOCATION}
        texts (C{None} when absent), for detailed free/busy and XMAPI's
        derived properties.
    @ivar method: the iTIP C{METHOD} of its calendar, upper case (C{''}
        when none), for XMAPI's message class.
    @ivar fbtype: C{None}, or C{(owner, fbtype)}: the result of L{gateway.store.calendar.periods.classify}
        for the owner addresses it was computed for.
    @ivar rules: the C{RRULE}s as text, C{tuple} of C{str} (empty for a plain event).
    @ivar rdates: the C{RDATE} values, C{tuple} (empty for a plain event).
    @ivar exdates: the C{EXDATE} values, C{tuple} (empty for a plain event).
    @ivar simple: C{True} for a series or override that
        L{gateway.store.calendar.series.expand} can take.
    @ivar expansion: C{None}, or what L{gateway.store.calendar.series.expand}
        keeps of a series' main component between windows.
    @ivar source: C{None}, or the L{Unparsed} whose texts the component is
        parsed from again when it is needed (L{component}) and was not kept.
    """

    __slots__ = ("uid", "_component", "recurring", "recurrenceId", "version", "start", "end", "duration",
                 "traits", "details", "utc", "fbtype", "rules", "rdates", "exdates", "simple", "source", "expansion",
                 "method")

    def __init__(self, component, method=""):
        self._component = component
        self.method = method
        self.source = self.expansion = None
        self.uid = str(component.get("UID", "")) or None
        self.recurring = "RRULE" in component or "RDATE" in component
        rid = component.get("RECURRENCE-ID")
        self.recurrenceId = rid.dt if rid is not None else None
        self.version = (_int(component.get("SEQUENCE")), _stamp(component.get("DTSTAMP")),
                        _stamp(component.get("LAST-MODIFIED")))
        self.start = component["DTSTART"].dt
        self.end, self.duration = _endOf(component)
        self.traits = traitsOf(component)
        self.details = (_text(component, "SUMMARY"), _text(component, "LOCATION"))
        self.utc = None
        self.fbtype = None
        self.rules, self.rdates, self.exdates, self.simple = (), (), (), False
        if not self.plain:
            self.rules = tuple(rule.to_ical().decode() for rule in _listOf(component.get("RRULE")))
            self.rdates, self.exdates = _datesOf(component.get("RDATE")), _datesOf(component.get("EXDATE"))
            self.simple = series.simple(component, self)

    @property
    def component(self):
        """
        The C{icalendar} component, parsed again from the texts of
        L{source} if it was not kept (C{None} for a summarized plain event).
        """
        if self._component is None and self.source is not None:
            key = (self.uid, self.version, _recurrenceKey(self.recurrenceId))
            candidates = [event for text in self.source.texts for event in parseCalendar(text)]
            self._component = next(
                (event.component for event in candidates
                 if (event.uid, event.version, _recurrenceKey(event.recurrenceId)) == key), None)
        return self._component

    @classmethod
    def restored(cls, uid, start, end, duration, version, traits, recurrenceId=None, rules=(), rdates=(),
                 exdates=(), source=None, details=(None, None), method=""):
        """
        An event from its summary, without a component: a plain event (see
        L{plain}), or a L{simple} series or override whose component is
        parsed from the texts of C{source} only if it is needed.
        """
        event = cls.__new__(cls)
        event._component = None
        event.uid, event.recurrenceId, event.version = uid, recurrenceId, version
        event.start, event.end, event.duration, event.traits = start, end, duration, traits
        event.details, event.method = details, method
        event.rules, event.rdates, event.exdates, event.source = rules, rdates, exdates, source
        event.recurring = bool(rules or rdates)
        event.simple = not event.plain
        event.utc = event.fbtype = event.expansion = None
        return event

    @property
    def plain(self):
        """
        C{True} for an event that is neither a series nor an override: its
        summary is all free/busy needs of it.
        """
        return not self.recurring and self.recurrenceId is None


def _listOf(value):
    """A property's values: C{[]}, C{[value]} or the list C{icalendar} gave."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _datesOf(value):
    """The values of C{RDATE} or C{EXDATE} properties, C{tuple}."""
    return tuple(item.dt for prop in _listOf(value) for item in getattr(prop, "dts", ()) or ())


def _recurrenceKey(value):
    """A C{RECURRENCE-ID} as a key: the same for the same instant."""
    if value is None:
        return None
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc).isoformat()
    return value.isoformat()


def traitsOf(component):
    """
    What classifying a component reads of it.

    @return: C{(status, transp, busystatus, attendees)}: the upper-case
        C{STATUS}, C{TRANSP} and C{X-MICROSOFT-CDO-BUSYSTATUS} (C{''} when
        absent), and a C{tuple} of C{(address, partstat)} per C{ATTENDEE},
        the address lower-case without C{mailto:}, the C{PARTSTAT} upper-case.
    """
    attendees = _listOf(component.get("ATTENDEE"))
    return (str(component.get("STATUS", "")).upper(), str(component.get("TRANSP", "")).upper(),
            str(component.get("X-MICROSOFT-CDO-BUSYSTATUS", "")).upper(),
            tuple((attendeeAddress(attendee), str(attendee.params.get("PARTSTAT", "")).upper())
                  for attendee in attendees))


def _text(component, name):
    """A text property's value (the first of several), C{None} when absent."""
    value = component.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else str(value)


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _stamp(prop):
    """A comparable text form of a C{DTSTAMP}-like property ('' if absent)."""
    if prop is None:
        return ""
    value = getattr(prop, "dt", prop)
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _endOf(component):
    """
    @return: C{(end, duration)}: the raw C{DTEND} value or C{None}, and the
        C{DURATION} or C{None}.
    """
    end = component.get("DTEND")
    if end is not None:
        return end.dt, None
    duration = component.get("DURATION")
    if duration is not None and isinstance(duration.dt, timedelta):
        return None, duration.dt
    return None, None


def calendarParts(message):
    """
    The decoded C{text/calendar} (or C{application/ics}) payloads of an
    RFC 5322 message, transfer encoding and charset undone.

    @param message: the message, C{bytes}.
    @return: C{list} of C{str}.
    """
    parts = _singlePart(message)
    return parts if parts is not None else _mimeParts(message)


def _mimeParts(message):
    """L{calendarParts} by the C{email} package's parser, for any message."""
    parsed = email.message_from_bytes(message, policy=email.policy.compat32)
    parts = []
    for part in parsed.walk():
        if part.get_content_type() in CALENDAR_TYPES:
            _addPayload(parts, part.get_payload(decode=True), part.get_content_charset())
    return parts


def _addPayload(parts, payload, charset):
    if payload:
        try:
            parts.append(payload.decode(charset or "utf-8", "replace"))
        except LookupError:
            parts.append(payload.decode("utf-8", "replace"))


_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
#: What the C{email} package's parser takes for a header line.
_HEADER_LINE = re.compile(rb"(?:From |[\x21-\x39\x3b-\x7e]+:)")
_MIME_FIELD = re.compile(rb"^(content-type|content-transfer-encoding):(.*)$", re.M | re.I)
_CONTENT_TYPE = re.compile(rb"^\s*([a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+)\s*(;.*)?$", re.I | re.S)
_CHARSET = re.compile(rb';\s*charset\s*=\s*(?:"([^"\\]*)"|([^\s;"]+))', re.I)
_DECODERS = {b"": bytes, b"7bit": bytes, b"8bit": bytes, b"binary": bytes,
             b"base64": binascii.a2b_base64, b"quoted-printable": quopri.decodestring}


def _singlePart(message):
    """
    L{calendarParts} of a message that is not multipart and whose MIME
    fields are plain (the common case), without the C{email} package's
    parser, which costs more than the rest of reading a one-event message;
    or C{None} for any other message.
    """
    end = _HEADER_END.search(message)
    if end is None or message.startswith((b"\n", b"\r\n")):
        return None
    head = _FOLD.sub(b"", message[:end.start()])
    if not all(_HEADER_LINE.match(line) for line in head.split(b"\n")):
        return None
    fields = {}
    for match in _MIME_FIELD.finditer(head):
        name = match.group(1).lower()
        if name in fields:
            return None
        fields[name] = match.group(2)
    contentType = _CONTENT_TYPE.match(fields.get(b"content-type", b"text/plain"))
    if contentType is None or b"*" in (contentType.group(2) or b""):
        return None
    mimeType = contentType.group(1).lower()
    if mimeType.startswith((b"multipart/", b"message/")):
        return None
    if mimeType.decode("ascii") not in CALENDAR_TYPES:
        return []
    decode = _DECODERS.get(fields.get(b"content-transfer-encoding", b"").strip().lower())
    if decode is None:
        return None
    try:
        payload = decode(message[end.end():])
    except (binascii.Error, ValueError):
        return None
    charset = _CHARSET.search(contentType.group(2) or b"")
    if charset is not None:
        charset = (charset.group(1) or charset.group(2)).decode("ascii", "replace").lower()
    parts = []
    _addPayload(parts, payload, charset)
    return parts


def parseMessage(message):
    """
    The events of one calendar message.

    @param message: the message, C{bytes}.
    @return: C{list} of L{_Event} (C{VTODO}s and other components are left
        out, and so are iTIP replies and counter-proposals; the events of an
        iTIP C{CANCEL} are cancelled).
    @raise ValueError: (or another exception) for a message that cannot be parsed.
    """
    events = []
    for payload in calendarParts(message):
        events.extend(parseCalendar(payload))
    return events


def parseCalendar(text):
    """
    The events of one C{text/calendar} payload, as L{parseMessage} says.

    @param text: C{str}.
    @return: C{list} of L{_Event}.
    """
    events = []
    for calendar in icalendar.Calendar.from_ical(text, multiple=True):
        method = str(calendar.get("METHOD", "")).upper()
        if method in IGNORED_METHODS:
            continue
        for component in calendar.walk("VEVENT"):
            if "DTSTART" not in component:
                continue
            if method == "CANCEL":
                # RFC 5546 3.2.5: a CANCEL removes the event or the
                # instances it names, whatever its STATUS says.
                component["STATUS"] = "CANCELLED"
            events.append(_Event(component, method))
    return events


_SNIFF_BLOCKERS = re.compile(r"^(?:RRULE|RDATE|EXDATE|EXRULE|RECURRENCE-ID|DURATION)[;:]", re.M | re.I)
_SNIFF_TIME = r"^%s(?:;[^:\n]*)?:(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})Z?)?$"
_SNIFF_DTSTART = re.compile(_SNIFF_TIME % "DTSTART", re.M | re.I)
_SNIFF_DTEND = re.compile(_SNIFF_TIME % "DTEND", re.M | re.I)
_SNIFF_UID = re.compile(r"^UID(?:;[^:\n]*)?:(.+)$", re.M | re.I)
_SNIFF_METHOD = re.compile(r"^METHOD(?:;[^:\n]*)?:(.*)$", re.M | re.I)
#: More than any UTC offset (a floating or zoned time is within this of UTC).
_SNIFF_MARGIN = timedelta(hours=26)
#: The bounds of an L{Unparsed} that may be anywhere.
UNBOUNDED = (datetime.min, datetime.max)


class Unparsed:
    """
    The events of one C{UID} in a message, parsed only when needed: a plain
    event only sniffed (see L{sniff}), or a series (with its overrides)
    whose bounds were taken when it was parsed.

    @ivar uid: the events' C{UID} (C{None} for events without one).
    @ivar low: a naive C{datetime} before the start of every instance
        (C{datetime.min} when unknown).
    @ivar high: a naive C{datetime} after the end of every instance
        (C{datetime.max} when unknown).
    @ivar texts: the message's calendar payloads, C{tuple} of C{str} (read
        from their JSON form when first needed, for an item made by
        L{stored}).
    @ivar shared: C{False} when the payloads hold only these events; C{True}
        when they hold others too, and only the series and overrides with
        this C{UID} are these (the plain events are kept apart).
    """

    __slots__ = ("uid", "low", "high", "_texts", "_stored", "shared", "_events")

    def __init__(self, uid, low, high, texts, shared=False, events=None):
        self.uid, self.low, self.high = uid, low, high
        self._texts, self._stored = tuple(texts), None
        self.shared, self._events = shared, events

    @classmethod
    def stored(cls, uid, low, high, texts, index, shared, events):
        """
        An item whose texts are read only when needed.

        @param texts: JSON text of a list of lists of payloads.
        @param index: which of them are this item's.
        """
        item = cls(uid, low, high, (), shared, events)
        item._texts, item._stored = None, (texts, index)
        return item

    @property
    def texts(self):
        if self._texts is None:
            text, index = self._stored
            self._texts, self._stored = tuple(json.loads(text)[index]), None
        return self._texts

    def near(self, start, end):
        """
        May the events touch C{[start, end)} (naive UTC datetimes)?
        """
        return self.high > start and self.low < end

    @property
    def parsed(self):
        """
        Have the events been parsed?
        """
        return self._events is not None

    @property
    def parsedEvents(self):
        """
        The events if they were parsed (or restored from a summary), else
        C{None}.
        """
        return self._events

    def events(self):
        """
        Parse (once).

        @return: C{list} of L{_Event}.
        """
        if self._events is None:
            try:
                events = [event for text in self.texts for event in parseCalendar(text)]
            except Exception:
                log.failure("Skipping unparsable calendar event {uid}", uid=self.uid)
                events = []
            if self.shared:
                events = [event for event in events if not event.plain and event.uid == self.uid]
            self._events = events
        return self._events


def _sniffTime(match):
    year, month, day, hour, minute, second = match.groups()
    if hour is None:
        return datetime(int(year), int(month), int(day)), True
    return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second)), False


def sniff(text):
    """
    An L{Unparsed} for a calendar payload holding one plain event, or
    C{None} when the payload has to be parsed now.
    """
    text = text.replace("\r\n", "\n").replace("\n ", "").replace("\n\t", "")
    upper = text.upper()
    if upper.count("BEGIN:VEVENT") != 1 or upper.count("BEGIN:VCALENDAR") != 1 or _SNIFF_BLOCKERS.search(text):
        return None
    method = _SNIFF_METHOD.search(text)
    if method is not None and method.group(1).strip().upper() not in ("REQUEST", "PUBLISH", "ADD"):
        return None
    block = text[upper.index("BEGIN:VEVENT"):]
    block = block[:block.upper().find("END:VEVENT")]
    starts, ends, uids = (list(pattern.finditer(block)) for pattern in (_SNIFF_DTSTART, _SNIFF_DTEND, _SNIFF_UID))
    if len(starts) != 1 or len(ends) > 1 or len(uids) != 1:
        return None
    try:
        start, isDate = _sniffTime(starts[0])
        end = _sniffTime(ends[0])[0] if ends else start + (_ONE_DAY if isDate else timedelta(0))
    except ValueError:
        return None
    uid = uids[0].group(1).strip()
    if not uid or "\\" in uid:
        return None
    return Unparsed(uid, start - _SNIFF_MARGIN, max(start, end) + _SNIFF_MARGIN, (text,))


def _wall(value):
    """A date or time as a naive C{datetime}: its wall-clock time."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime(value.year, value.month, value.day)


def _lastOccurrence(component, start):
    """
    The wall-clock start of a series' last occurrence, or C{None} when it
    has no end (or one too costly to find).

    @param start: the series' C{DTSTART} as L{_wall} gives it.
    """
    rules = component.get("RRULE")
    if rules is not None and not isinstance(rules, list):
        rules = [rules]
    last = start
    for rule in rules or ():
        if rule.get("UNTIL"):
            last = max(last, _wall(rule["UNTIL"][0]))
            continue
        if not rule.get("COUNT"):
            return None
        try:
            rrule = rrulestr(rule.to_ical().decode("ascii"), dtstart=start)
            occurrences = list(itertools.islice(rrule, _BOUND_OCCURRENCES + 1))
        except Exception:
            return None
        if len(occurrences) > _BOUND_OCCURRENCES:
            return None
        last = max([last] + occurrences)
    rdates = component.get("RDATE")
    for rdate in (rdates if isinstance(rdates, list) else [rdates]) if rdates is not None else ():
        for value in getattr(rdate, "dts", ()) or ():
            if isinstance(value.dt, tuple):
                return None  # a PERIOD: rare enough to stay unbounded
            last = max(last, _wall(value.dt))
    return last


def _length(event):
    if event.end is not None:
        return max(timedelta(0), _wall(event.end) - _wall(event.start))
    if event.duration is not None:
        return abs(event.duration)
    return _ONE_DAY


def bounds(events):
    """
    Naive C{(low, high)} around every instance of C{events} (a series with
    its overrides), wide enough for any time zone; C{(datetime.min,
    datetime.max)} when a series has no end.
    """
    lows, highs = [], []
    for event in events:
        start = _wall(event.start)
        last = _lastOccurrence(event.component, start) if event.recurring else start
        if last is None:
            return UNBOUNDED
        lows.append(start)
        highs.append(last + _length(event))
    try:
        return min(lows) - 2 * _SNIFF_MARGIN, max(highs) + 2 * _SNIFF_MARGIN
    except (OverflowError, ValueError):
        return UNBOUNDED


def loadMessage(message, sniffing=True):
    """
    The events of one calendar message: plain events read or parsed
    (L{_Event}), and an L{Unparsed} per C{UID} for the rest (a sniffed plain
    event, or a series with its overrides, already parsed).

    @param sniffing: C{False} to parse a plain event at once rather than
        sniff it (L{sniff}).
    @return: C{list} of L{_Event} and L{Unparsed}.
    """
    parts = calendarParts(message)
    events = []
    for payload in parts:
        read = readPlainEvent(payload)
        if read is None and sniffing and len(parts) == 1:
            unparsed = sniff(payload)
            if unparsed is not None:
                return [unparsed]
        if read is None:
            events.extend(parseCalendar(payload))
        else:
            events.extend(_Event.restored(uid, start, end, None, version, traits, details=details, method=method)
                          for uid, start, end, version, traits, details, method in read)
    items = [event for event in events if event.plain]
    series = {}
    for event in events:
        if not event.plain:
            series.setdefault(event.uid, []).append(event)
    for uid, group in series.items():
        low, high = bounds(group)
        items.append(Unparsed(uid, low, high, parts, len(series) > 1 or bool(items), group))
    return items
