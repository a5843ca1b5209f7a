# -*- test-case-name: tests.test_calendar -*-
"""
Series expanded with C{dateutil} directly, and their recurrence kept as
values, so that neither C{icalendar} nor C{recurring-ical-events} is needed
for the common case.

Building a C{recurring-ical-events} query and walking its occurrences costs
about as much as parsing the series, and both were most of the first
computation after a restart.  An event is L{simple} when all its times are
dates, floating times or times in IANA zones, its C{RDATE}s are not
periods, and it is not an override with a range or recurrence of its own:
such a series (with its overrides) is expanded by L{expand} exactly as
C{recurring-ical-events} (3.8) does it (C{Series.between}: the same rule
strings, the same C{dateutil} rules in the same zone, the same
C{RECURRENCE-ID} and C{EXDATE} matching, with its own helpers; the tests
compare the two), and its
events are kept in the summary file with their times as values
(L{encodeTime}).  Anything else, and a series L{expand} gives up on, goes
through C{recurring-ical-events}.
"""

import bisect
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from icalendar.prop import vDDDTypes
from recurring_ical_events.util import (
    compare_greater,
    convert_to_date,
    convert_to_datetime,
    get_any,
    is_date,
    make_comparable,
    to_recurrence_ids,
)

#: Most starts of one rule kept (see L{_Rules._startsUpTo}): a daily
#: series of 13 years, or a weekly one of 96.
KEPT_STARTS = 5000


class NotSimple(ValueError):
    """
    A series that L{expand} leaves to C{recurring-ical-events}.
    """


# ---------------------------------------------------------------------------
# Times as values


def _zoneKey(value):
    """
    The IANA name of an aware time's zone, or C{None} if its zone is not
    one that C{ZoneInfo} gives back identically from the name.
    """
    zone = value.tzinfo
    key = getattr(zone, "key", None)
    if not isinstance(zone, ZoneInfo) or not key:
        return None
    try:
        return key if ZoneInfo(key) is zone else None
    except (KeyError, ValueError):
        return None


def encodable(value):
    """
    Can L{encodeTime} keep C{value} without losing anything?
    """
    if isinstance(value, datetime):
        return not value.fold and (value.tzinfo is None or _zoneKey(value) is not None)
    return isinstance(value, date)


def encodeTime(value):
    """
    A date, a floating time or a time in an IANA zone as JSON: C{None}, an
    ISO 8601 C{str}, or C{[wall-clock time, zone name]}.
    """
    if value is None or not isinstance(value, datetime) or value.tzinfo is None:
        return None if value is None else value.isoformat()
    return [value.replace(tzinfo=None).isoformat(), _zoneKey(value)]


def decodeTime(value):
    """
    The time L{encodeTime} gave C{value} for.
    """
    if value is None:
        return None
    if isinstance(value, list):
        return datetime.fromisoformat(value[0]).replace(tzinfo=ZoneInfo(value[1]))
    if len(value) == 10:
        return date.fromisoformat(value)
    return datetime.fromisoformat(value)


def simple(component, event):
    """
    Can L{expand} take C{event} (a L{gateway.store.calendar.parse._Event}
    of C{component}, a series or an override)?
    """
    rid = component.get("RECURRENCE-ID")
    if rid is not None and (rid.params.get("RANGE") or "RRULE" in component or "RDATE" in component
                            or "EXDATE" in component):
        return False
    if "DURATION" in component and "DTEND" not in component and event.duration is None:
        return False
    if any("COUNT=-" in rule for rule in event.rules) or event.recurring != bool(event.rules or event.rdates):
        return False
    times = (event.start, event.end, event.recurrenceId) + event.rdates + event.exdates
    return all(value is None or encodable(value) for value in times)


# ---------------------------------------------------------------------------
# Expansion, as recurring_ical_events.series.rrule.Series does it


def _rawEnd(event):
    """
    The end of a component as C{recurring-ical-events} reads it (its
    C{EventAdapter.raw_end}).
    """
    start, duration = event.start, event.duration
    if event.end is not None:
        return event.end
    if duration is not None:
        if duration.seconds != 0 and is_date(start):
            start = convert_to_datetime(start, None)
        return start + duration
    return start + timedelta(days=1) if is_date(start) else start


def _span(event):
    """
    C{(start, end)} of a component as C{recurring-ical-events} reads them
    (its C{ComponentAdapter.span}).
    """
    start, end = make_comparable((event.start, _rawEnd(event)))
    return (end, start) if start > end else (start, end)


def _until(rule):
    """The C{UNTIL} of a rule string, as C{recurring-ical-events} finds it."""
    parts = rule.split(";UNTIL=")
    if len(parts) == 1:
        return None
    if len(parts) != 2:
        raise NotSimple(rule)
    return vDDDTypes.from_ical(parts[1].split(";", 1)[0])


class _Rules:
    """
    The occurrences of a series' main component: its rules, C{RDATE}s and
    C{DTSTART}, in the zone of its first aware time.  Made once per main
    component (kept as its C{expansion}), with the starts its rules gave.
    """

    def __init__(self, core):
        self.start, self.end = _span(core)
        self.duration = self.end - self.start
        self.allDay = not isinstance(self.start, datetime) and not isinstance(self.end, datetime)
        self.exdateIds = set()
        self.exdateDays = set()
        for exdate in core.exdates:
            self.exdateIds.update(to_recurrence_ids(exdate))
            if is_date(exdate):
                self.exdateDays.add(exdate)
        values = (self.start, self.end) + core.exdates + core.rdates
        self.zone = next((value.tzinfo for value in values
                          if isinstance(value, datetime) and value.tzinfo is not None), None)
        start = convert_to_datetime(self.start, self.zone)
        self.exdateIds.update(convert_to_datetime(exdate, self.zone) for exdate in core.exdates)
        self.rules = []
        lastUntil = None
        for text in set(core.rules):
            try:
                rule = rrulestr(text, dtstart=start)
            except ValueError as e:  # UNTIL of another kind than DTSTART
                raise NotSimple(text) from e
            until = _until(text)
            self.rules.append((rule, until))
            if until and (not lastUntil or compare_greater(until, lastUntil)):
                lastUntil = until
        self._starts = [[[], iter(rule)] for rule, _ in self.rules]
        # An rruleset of RDATEs and DTSTART, as a sorted list.
        dates = {convert_to_datetime(rdate, self.zone) for rdate in core.rdates}
        if not lastUntil or not compare_greater(start, lastUntil):
            dates.add(start)
        self.dates = sorted(dates)

    def between(self, spanStart, spanStop):
        """
        The starts of the occurrences from C{spanStart} less a duration to
        C{spanStop}, both included.
        """
        low = convert_to_datetime(spanStart - self.duration, self.zone)
        high = convert_to_datetime(spanStop, self.zone)
        for start in self.dates:
            if low <= start <= high:
                yield start
        for index, (rule, until) in enumerate(self.rules):
            starts = self._startsUpTo(index, high)
            if starts is None:
                found = rule.between(low, high, inc=True)
            else:
                found = starts[bisect.bisect_left(starts, low):bisect.bisect_right(starts, high)]
            for start in found:
                if until is None or not compare_greater(start, until):
                    yield start

    def _startsUpTo(self, index, high):
        """
        The starts a rule gives, from the first to one after C{high} (or
        all of them), kept between calls so that another window neither
        parses the rule again nor walks it from C{DTSTART} again; C{None}
        for a rule with too many (then C{rrule.between} walks it).
        """
        kept = self._starts[index]
        if kept is None:
            return None
        starts, iterator = kept
        while iterator is not None and (not starts or starts[-1] <= high):
            if len(starts) >= KEPT_STARTS:
                self._starts[index] = None
                return None
            start = next(iterator, None)
            if start is None:
                kept[1] = iterator = None
            else:
                starts.append(start)
        return starts

    def excluded(self, start, ids):
        return convert_to_date(start) in self.exdateDays or bool(self.exdateIds.intersection(ids))


def _modifications(group):
    """
    The main component of a series and its overrides by recurrence ID.

    @raise NotSimple: when there is no main component, or two overrides
        claim one instance (C{recurring-ical-events} would pick by
        C{SEQUENCE}).
    """
    core = None
    modifications = {}
    for event in group:
        if event.recurrenceId is None:
            if core is not None:
                raise NotSimple(event.uid)
            core = event
            continue
        for rid in to_recurrence_ids(event.recurrenceId):
            if modifications.setdefault(rid, event) is not event:
                raise NotSimple(event.uid)
    if core is None:
        raise NotSimple(group[0].uid)
    return core, modifications


def expand(group, spanStart, spanStop):
    """
    The occurrences of one series in a span, as C{recurring-ical-events}
    gives them, and perhaps a few more outside the span: its final check
    (C{is_in_span}) is left out, as callers clip to a narrower window.

    @param group: the series' L{gateway.store.calendar.parse._Event}s (its
        main component and overrides, one per instance, all L{simple}).
    @param spanStart: aware C{datetime}.
    @param spanStop: aware C{datetime}.
    @return: C{list} of C{(start, end, event, recurrence ID)}, the
        recurrence ID being the original start of the instance (an
        override's C{RECURRENCE-ID}).
    @raise NotSimple: for a series to leave to C{recurring-ical-events}.
    """
    core, modifications = _modifications(group)
    rules = core.expansion
    if rules is None:
        rules = core.expansion = _Rules(core)
    occurrences = []
    returnedStarts, returnedModifications = set(), set()
    # Without overrides and EXDATEs an occurrence's recurrence IDs are not needed.
    plain = not modifications and not rules.exdateIds
    for start in rules.between(spanStart, spanStop):
        if start in returnedStarts:
            continue
        if plain:
            event = core
        else:
            ids = to_recurrence_ids(start)
            if rules.excluded(start, ids):
                continue
            event = get_any(modifications, ids, core)
        if event is core:
            returnedStarts.add(start)
            end = start + rules.duration
            if rules.allDay:
                start, end = convert_to_date(start), convert_to_date(end)
            rid = start
        elif event in returnedModifications:
            continue
        else:
            returnedModifications.add(event)
            start, end = _span(event)
            rid = event.recurrenceId
        occurrences.append((start, end, event, rid))
    for event in set(modifications.values()) - returnedModifications:
        if not rules.exdateIds.intersection(to_recurrence_ids(event.recurrenceId)):
            occurrences.append(_span(event) + (event, event.recurrenceId))
    return occurrences
