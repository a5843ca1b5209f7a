# -*- test-case-name: tests.test_calendar -*-
"""
The common calendar payload read without C{icalendar}: one plain event
(no recurrence, no override) whose times are dates, floating, UTC or in an
IANA zone, as invitations and appointments nearly always are.

C{icalendar} builds a full object model, about 0.6 ms an event; free/busy
needs a dozen properties of it.  L{readPlainEvent} reads them from the
content lines directly, and gives up (C{None}: parse with C{icalendar})
at anything it does not read exactly as C{icalendar} does: a second event,
a recurrence, a zone that is not an IANA name, a C{DURATION}, an escaped
character in a value it keeps, a repeated property, a line it cannot
split.  The tests compare the two readers' results.  Properties it does
not read are not checked either: a malformed C{PRIORITY}, which makes
C{icalendar} refuse the whole payload, does not hide the event's busy time.
"""

import re
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

#: iTIP methods whose components are not events (RFC 5546 1.4): an
#: attendee's REPLY filed in a calendar must not replace the event it answers.
IGNORED_METHODS = ("REPLY", "REFRESH", "COUNTER", "DECLINECOUNTER")

#: Properties that make an event a series or an override, or that are read
#: only by C{icalendar} here.
_NOT_PLAIN = frozenset(("RRULE", "RDATE", "EXDATE", "EXRULE", "RECURRENCE-ID", "DURATION"))
#: VEVENT properties read, each at most once (C{ATTENDEE} is read apart).
_SINGLE = frozenset(("UID", "DTSTART", "DTEND", "STATUS", "TRANSP", "X-MICROSOFT-CDO-BUSYSTATUS", "SEQUENCE",
                     "DTSTAMP", "LAST-MODIFIED", "SUMMARY", "LOCATION"))
_TEXT = ("UID", "STATUS", "TRANSP", "X-MICROSOFT-CDO-BUSYSTATUS", "SUMMARY", "LOCATION")

_PARAM_VALUE = r'(?:"[^"]*"|[^";:,]*)'
_LINE = re.compile(r'([A-Za-z0-9-]+)((?:;[A-Za-z0-9-]+=%s(?:,%s)*)*):(.*)' % (_PARAM_VALUE, _PARAM_VALUE), re.S)
_PARAM = re.compile(r';([A-Za-z0-9-]+)=(%s(?:,%s)*)' % (_PARAM_VALUE, _PARAM_VALUE))
_TIME = re.compile(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z?))?")
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*")
_INTEGER = re.compile(r"[+-]?\d+")
_METHODS = ("", "REQUEST", "PUBLISH", "ADD", "CANCEL") + IGNORED_METHODS


def attendeeAddress(value):
    """An C{ATTENDEE} value as an address: lower-case, without C{mailto:}."""
    value = str(value).strip()
    if value.lower().startswith("mailto:"):
        value = value[7:]
    return value.lower()


class _Unusual(ValueError):
    """Something L{readPlainEvent} leaves to C{icalendar}."""


#: The parameters read.
_READ_PARAMS = frozenset(("TZID", "VALUE", "PARTSTAT"))


def _params(text):
    """
    The parameters of a content line that are read, names upper-case,
    quotes removed.
    """
    params = {}
    for name, value in _PARAM.findall(text):
        name = name.upper()
        if name not in _READ_PARAMS:
            continue
        if name in params or "," in value:
            raise _Unusual(name)
        params[name] = value[1:-1] if value.startswith('"') else value
    return params


def _zone(name):
    if not _ZONE_NAME.fullmatch(name):
        raise _Unusual(name)
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError) as e:
        raise _Unusual(name) from e


def _time(value, params, zoned=True):
    """
    A C{DATE} or C{DATE-TIME} value as C{icalendar} gives it.

    @param zoned: C{False} for a property that must not have a C{TZID}.
    """
    match = _TIME.fullmatch(value)
    if match is None:
        raise _Unusual(value)
    year, month, day, hour, minute, second, utc = match.groups()
    kind = params.get("VALUE", "").upper()
    tzid = params.get("TZID")
    if hour is None:
        if kind not in ("", "DATE") or tzid is not None:
            raise _Unusual(value)
        return date(int(year), int(month), int(day))
    if kind not in ("", "DATE-TIME") or (tzid is not None and (utc or not zoned)):
        raise _Unusual(value)
    zone = timezone.utc if utc else _zone(tzid) if tzid is not None else None
    return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=zone)


def _stamp(line):
    """C{_stamp} of L{gateway.store.calendar.parse} for a C{DTSTAMP}-like line, or C{''}."""
    if line is None:
        return ""
    return _time(line[1], line[0], zoned=False).isoformat()


def _lines(text):
    """
    The unfolded content lines of C{text}.
    """
    text = text.replace("\r\n", "\n")
    if "\r" in text or "\n\n" in text.rstrip("\n"):
        raise _Unusual("line ends")
    return text.replace("\n ", "").replace("\n\t", "").split("\n")


def readPlainEvent(text):
    """
    The event of a calendar payload holding one plain event (see the
    module's docstring), what L{gateway.store.calendar.parse.parseCalendar}
    would read of it, or C{None} when C{icalendar} has to read it.

    @param text: the payload, C{str}.
    @return: C{list} (empty for an iTIP reply) of one C{(uid, start, end,
        version, traits, details, method)} as L{gateway.store.calendar.parse._Event} has
        them, or C{None}.
    """
    try:
        return _read(_lines(text))
    except (ValueError, OverflowError):  # _Unusual among them
        return None


def _read(lines):
    calendars = events = 0
    depth = 0
    eventDepth = None
    method = None
    found = {}
    attendees = []
    for line in lines:
        if not line:
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise _Unusual(line)
        name, params, value = match.groups()
        name = name.upper()
        if name == "BEGIN":
            depth += 1
            kind = value.upper()
            if kind == "VCALENDAR":
                calendars += 1
            elif kind == "VEVENT":
                events += 1
                eventDepth = depth
        elif name == "END":
            if depth == eventDepth:
                eventDepth = -1
            depth -= 1
        elif depth == 1 and name == "METHOD":
            if method is not None:
                raise _Unusual(name)
            method = value.upper()
        elif depth == eventDepth:
            if name in _NOT_PLAIN:
                raise _Unusual(name)
            if name == "ATTENDEE":
                attendees.append((attendeeAddress(value), _params(params).get("PARTSTAT", "").upper()))
            elif name in _SINGLE:
                if name in found:
                    raise _Unusual(name)
                found[name] = (_params(params), value)
    if calendars != 1 or events != 1 or depth != 0 or (method or "") not in _METHODS:
        raise _Unusual("structure")
    if method in IGNORED_METHODS:
        return []
    if "DTSTART" not in found or any("\\" in found[name][1] for name in _TEXT if name in found):
        raise _Unusual("values")
    sequence = found.get("SEQUENCE")
    if sequence is not None and not _INTEGER.fullmatch(sequence[1]):
        raise _Unusual("SEQUENCE")
    text = {name: found[name][1] if name in found else "" for name in _TEXT}
    start = _time(found["DTSTART"][1], found["DTSTART"][0])
    end = _time(found["DTEND"][1], found["DTEND"][0]) if "DTEND" in found else None
    version = (int(sequence[1]) if sequence is not None else 0, _stamp(found.get("DTSTAMP")),
               _stamp(found.get("LAST-MODIFIED")))
    status = "CANCELLED" if method == "CANCEL" else text["STATUS"].upper()
    traits = (status, text["TRANSP"].upper(), text["X-MICROSOFT-CDO-BUSYSTATUS"].upper(), tuple(attendees))
    details = tuple(found[name][1] if name in found else None for name in ("SUMMARY", "LOCATION"))
    return [(text["UID"] or None, start, end, version, traits, details, method or "")]
