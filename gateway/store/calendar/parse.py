# -*- test-case-name: tests.test_calendar -*-
"""
Reading calendar messages: the C{VEVENT}s of C{text/calendar} parts, parsed
once per message and kept per mailbox by L{ParsedMailbox}.

Parsing with C{icalendar} costs about 0.6 ms an event, most of a first
computation.  A message with one plain event (no recurrence, override,
C{DURATION} or unusual iTIP method) is therefore first only sniffed
(L{sniff}) for its C{UID} and rough times, and parsed when a window comes
near it or another message has the same C{UID}.
"""

import email
import email.policy
import re
from datetime import datetime, timedelta

import icalendar

from gateway.logging import getLogger

log = getLogger("http")

CALENDAR_CLASS = "IPF.Appointment"
CALENDAR_TYPES = ("text/calendar", "application/ics")

#: iTIP methods whose components are not events (RFC 5546 1.4): an
#: attendee's REPLY filed in a calendar must not replace the event it answers.
IGNORED_METHODS = ("REPLY", "REFRESH", "COUNTER", "DECLINECOUNTER")

_ONE_DAY = timedelta(days=1)


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
    @ivar fbtype: C{None}, or C{(owner, fbtype)}: the result of L{gateway.store.calendar.periods.classify}
        for the owner addresses it was computed for.
    """

    __slots__ = ("uid", "component", "recurring", "recurrenceId", "version",
                 "start", "end", "duration", "utc", "fbtype")

    def __init__(self, component):
        self.component = component
        self.uid = str(component.get("UID", "")) or None
        self.recurring = "RRULE" in component or "RDATE" in component
        rid = component.get("RECURRENCE-ID")
        self.recurrenceId = rid.dt if rid is not None else None
        self.version = (_int(component.get("SEQUENCE")), _stamp(component.get("DTSTAMP")),
                        _stamp(component.get("LAST-MODIFIED")))
        self.start = component["DTSTART"].dt
        self.end, self.duration = _endOf(component)
        self.utc = None
        self.fbtype = None


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
    parsed = email.message_from_bytes(message, policy=email.policy.compat32)
    parts = []
    for part in parsed.walk():
        if part.get_content_type() in CALENDAR_TYPES:
            payload = part.get_payload(decode=True)
            if payload:
                charset = part.get_content_charset() or "utf-8"
                try:
                    parts.append(payload.decode(charset, "replace"))
                except LookupError:
                    parts.append(payload.decode("utf-8", "replace"))
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
            events.append(_Event(component))
    return events


_SNIFF_BLOCKERS = re.compile(r"^(?:RRULE|RDATE|EXDATE|EXRULE|RECURRENCE-ID|DURATION)[;:]", re.M | re.I)
_SNIFF_TIME = r"^%s(?:;[^:\n]*)?:(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})Z?)?$"
_SNIFF_DTSTART = re.compile(_SNIFF_TIME % "DTSTART", re.M | re.I)
_SNIFF_DTEND = re.compile(_SNIFF_TIME % "DTEND", re.M | re.I)
_SNIFF_UID = re.compile(r"^UID(?:;[^:\n]*)?:(.+)$", re.M | re.I)
_SNIFF_METHOD = re.compile(r"^METHOD(?:;[^:\n]*)?:(.*)$", re.M | re.I)
#: More than any UTC offset (a floating or zoned time is within this of UTC).
_SNIFF_MARGIN = timedelta(hours=26)


class Unparsed:
    """
    A message with one plain event, not parsed yet (see L{sniff}).

    @ivar uid: the event's C{UID}.
    @ivar low: a naive UTC C{datetime} before the event's start.
    @ivar high: a naive UTC C{datetime} after its end.
    """

    __slots__ = ("uid", "low", "high", "_text", "_events")

    def __init__(self, uid, low, high, text):
        self.uid, self.low, self.high = uid, low, high
        self._text = text
        self._events = None

    def near(self, start, end):
        """
        May the event touch C{[start, end)} (naive UTC datetimes)?
        """
        return self.high > start and self.low < end

    def events(self):
        """
        Parse (once).

        @return: C{list} of L{_Event}.
        """
        if self._events is None:
            try:
                self._events = parseCalendar(self._text)
            except Exception:
                log.failure("Skipping unparsable calendar event {uid}", uid=self.uid)
                self._events = []
            self._text = None
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
    return Unparsed(uid, start - _SNIFF_MARGIN, max(start, end) + _SNIFF_MARGIN, text)


def loadMessage(message):
    """
    The events of one calendar message, or an L{Unparsed} standing for it.

    @return: C{list} of L{_Event} and L{Unparsed}.
    """
    parts = calendarParts(message)
    if len(parts) == 1:
        unparsed = sniff(parts[0])
        if unparsed is not None:
            return [unparsed]
    events = []
    for payload in parts:
        events.extend(parseCalendar(payload))
    return events


def _readMessage(mailbox, uid):
    f = mailbox.openMessage(uid)
    try:
        return f.read()
    finally:
        f.close()


class ParsedMailbox:
    """
    The parsed events of one calendar mailbox, by UID.
    """

    def __init__(self, uidValidity):
        self.uidValidity = uidValidity
        self.events = {}

    def update(self, mailbox):
        """
        Parse the messages not seen yet, forget the expunged ones.

        @return: the events of all present messages, C{list} of L{_Event}
            and L{Unparsed}.
        """
        present = mailbox.uids()
        keep = set(present)
        for uid in [uid for uid in self.events if uid not in keep]:
            del self.events[uid]
        result = []
        for uid in present:
            events = self.events.get(uid)
            if events is None:
                try:
                    events = loadMessage(_readMessage(mailbox, uid))
                except Exception:
                    log.failure("Skipping unparsable calendar message {uid} in {mailbox}",
                                uid=uid, mailbox=mailbox.name)
                    events = []
                self.events[uid] = events
            result.extend(events)
        return result
