# -*- test-case-name: tests.test_calendar -*-
"""
Occurrences and busy periods: classifying events, converting their times to
UTC, expanding series (directly with L{gateway.store.calendar.series} when
they are simple, with C{recurring-ical-events} otherwise) into the
L{Occurrence}s that overlap a window (L{occurrences}: the one expansion,
behind free/busy and XMAPI's per-message instances alike), merging and
clipping periods (L{computePeriods}).
"""

import collections
from datetime import datetime, timedelta, timezone
from typing import NamedTuple, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events

from gateway import caches
from gateway.logging import getLogger
from gateway.store.calendar import series as directSeries
from gateway.store.calendar.parse import _ONE_DAY, Unparsed, _endOf, _Event, _recurrenceKey, traitsOf

log = getLogger("http")

BUSY = "BUSY"
TENTATIVE = "BUSY-TENTATIVE"
UNAVAILABLE = "BUSY-UNAVAILABLE"

#: Free/busy types, strongest first.
FBTYPES = (UNAVAILABLE, BUSY, TENTATIVE)

#: How far beyond the window recurring events are expanded before exact
#: clipping, so that floating and all-day instances in any zone are found.
_SLACK = timedelta(days=2)

#: Series expected to have more occurrences than this in a window (say
#: C{FREQ=SECONDLY} in an invitation from outside) are left out, with a
#: warning, rather than tie the server up expanding them.
MAX_OCCURRENCES = 5000

#: Length of one C{FREQ} step, for L{estimateOccurrences}.
_FREQ_SECONDS = {"SECONDLY": 1, "MINUTELY": 60, "HOURLY": 3600, "DAILY": 86400,
                 "WEEKLY": 7 * 86400, "MONTHLY": 28 * 86400, "YEARLY": 365 * 86400}



def _parseNear(items, start, end):
    """
    Replace the L{gateway.store.calendar.parse.Unparsed} among C{items} that may matter for a window
    (near it, or sharing a C{UID} with another item) by their events.

    @return: C{list} of L{gateway.store.calendar.parse._Event}.
    """
    events, unparsed = [], []
    for item in items:
        (unparsed if isinstance(item, Unparsed) else events).append(item)
    if not unparsed:
        return events
    # How many items have each UID, a parsed event counting as one (a
    # Counter rather than thousands of lists: this runs over every item).
    shared = collections.Counter(item.uid for item in unparsed)
    shared.update({event.uid for event in events})
    start, end = start.replace(tzinfo=None) - _SLACK, end.replace(tzinfo=None) + _SLACK
    for item in unparsed:
        if shared[item.uid] > 1 or item.near(start, end):
            events.extend(item.events())
    return events


# ---------------------------------------------------------------------------
# Classification and time conversion


def ownerAddresses(record):
    """
    Every address of an account: its local part and aliases at its domain
    and the domain's aliases, lower-case.

    @param record: an L{gateway.interfaces.IAccountRecord}.
    @return: C{frozenset} of C{str}.
    """
    locals_ = [record.localPart] + list(getattr(record, "aliases", ()) or ())
    domain = record.domain
    domains = [domain.name] + list(getattr(domain, "aliases", ()) or ())
    addresses = {record.address.lower()}
    for local in locals_:
        for name in domains:
            addresses.add(("%s@%s" % (local, name)).lower())
    return frozenset(addresses)


def classify(component, owner):
    """
    The free/busy type of one event instance.

    @param component: a C{VEVENT}.
    @param owner: C{frozenset} of the owner's lower-case addresses.
    @return: one of L{FBTYPES}, or C{None} for free time.
    """
    return classifyTraits(traitsOf(component), owner)


def classifyTraits(traits, owner):
    """
    L{classify} for what L{gateway.store.calendar.parse.traitsOf} read of a
    component.
    """
    status, transp, cdo, attendees = traits
    if status == "CANCELLED" or transp == "TRANSPARENT" or cdo == "FREE":
        return None
    partstat = next((partstat for address, partstat in attendees if address in owner), None)
    if partstat == "DECLINED":
        return None
    if cdo == "OOF":
        return UNAVAILABLE
    if status == "TENTATIVE" or cdo == "TENTATIVE" or partstat == "TENTATIVE":
        return TENTATIVE
    return BUSY


def toUTC(value, zone):
    """
    An iCalendar time as an aware UTC C{datetime}: dates are midnight and
    naive (floating) times are wall-clock time in C{zone}.
    """
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(timezone.utc)


def utcSpan(start, end, duration, zone):
    """
    The UTC span of an event, an instant kept as such.

    A C{DURATION}'s days are nominal (same wall-clock time on another day,
    whatever the DST changes in between), the rest exact (RFC 5545 3.3.6).
    Without C{DTEND} and C{DURATION} a date lasts one day and a date-time
    no time at all (RFC 5545 3.6.1).

    @return: C{(start, end)} with C{end == start} for an instant, or
        C{None} when it ends before it starts.
    """
    if end is None:
        if duration is not None:
            days = timedelta(days=duration.days)
            return _ordered(toUTC(start, zone), toUTC(start + days, zone) + (duration - days))
        if isinstance(start, datetime):
            start = toUTC(start, zone)
            return (start, start)
        end = start + _ONE_DAY
    return _ordered(toUTC(start, zone), toUTC(end, zone))


def _ordered(start, end):
    return None if end < start else (start, end)


def spanOf(start, end, duration, zone):
    """
    The UTC period of an event (see L{utcSpan}).

    @return: C{(start, end)}, or C{None} when it takes no time.
    """
    span = utcSpan(start, end, duration, zone)
    return span if span is not None and span[1] > span[0] else None


def overlaps(span, start, end):
    """
    Does an event's UTC span overlap C{[start, end)} by the rule of RFC 4791
    9.9: a period when it starts before C{end} and ends after C{start}, an
    instant when it is in C{[start, end)}?
    """
    spanStart, spanEnd = span
    return spanStart < end and (spanEnd > start or spanStart >= start)


def accountZone(record):
    """
    The account's time zone (UTC when it is unset or unknown).
    """
    name = getattr(record, "timezone", None) or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warn("Unknown time zone {zone!r} for {address}; using UTC",
                 zone=name, address=record.address)
        return timezone.utc


# ---------------------------------------------------------------------------
# Periods


def mergePeriods(periods):
    """
    Merge overlapping or touching periods.

    @param periods: iterable of C{(start, end)}.
    @return: sorted C{list} of disjoint C{(start, end)}.
    """
    merged = []
    for start, end in sorted(periods):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def subtractPeriods(periods, covered):
    """
    Remove C{covered} from C{periods} (both sorted, disjoint lists).

    @return: sorted C{list} of what is left of C{periods}.
    """
    result = []
    i = 0
    for start, end in periods:
        while i < len(covered) and covered[i][1] <= start:
            i += 1
        j = i
        while start < end and j < len(covered) and covered[j][0] < end:
            cStart, cEnd = covered[j]
            if cStart > start:
                result.append((start, cStart))
            start = max(start, cEnd)
            j += 1
        if start < end:
            result.append((start, end))
    return result


def resolvePeriods(byType):
    """
    Merge each type's periods and give each instant only its strongest type.

    @param byType: C{dict} of FBTYPE to iterable of C{(start, end)}.
    @return: C{list} of C{(fbtype, [(start, end), ...])} strongest first,
        leaving out types with no periods.
    """
    result = []
    covered = []
    for fbtype in FBTYPES:
        merged = mergePeriods(byType.get(fbtype, ()))
        own = subtractPeriods(merged, covered)
        if own:
            result.append((fbtype, own))
        covered = mergePeriods(covered + merged)
    return result


# ---------------------------------------------------------------------------
# Computation


def _windowUTC(value):
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).replace(microsecond=0)


def _latest(events):
    return max(events, key=lambda event: event.version)


class _SpanQuery(recurring_ical_events.CalendarQuery):
    """
    A query whose results are C{(start, end, component, recurrence ID)} of
    each occurrence (see L{_occurrenceOf}), C{component} being the series'
    or override's own C{VEVENT}, instead of a fresh copy of the component
    per occurrence (which costs most of the time for thousands of
    occurrences).
    """

    def _occurrences_to_components(self, occurrences):
        return [_occurrenceOf(occurrence) for occurrence in occurrences]


def _occurrenceOf(occurrence):
    """
    C{(start, end or duration, component, recurrence ID)} of an occurrence
    C{recurring-ical-events} gave: the recurrence ID is the instance's
    original start, the override's C{RECURRENCE-ID} for an override, its
    start moved back for an instance that a C{RANGE=THISANDFUTURE} override
    moved.
    """
    try:
        adapter = occurrence._adapter
        start, end, component = occurrence.start, occurrence.end, adapter._component
    except AttributeError:
        # A recurring-ical-events whose internals changed: the public way.
        component = occurrence.as_component(False)
        end, duration = _endOf(component)
        start = component["DTSTART"].dt
        rid = component.get("RECURRENCE-ID")
        return start, end if end is not None else duration, component, start if rid is None else rid.dt
    rid = component.get("RECURRENCE-ID")
    if rid is None:
        return start, end, component, start
    if adapter.this_and_future:
        try:
            return start, end, component, start - adapter.move_recurrences_by
        except (TypeError, ValueError):
            pass
    return start, end, component, rid.dt


def _query(groups):
    calendar = icalendar.Calendar()
    for group in groups:
        for event in group:
            if event.component is not None:  # not a summarized plain event
                calendar.add_component(event.component)
    return recurring_ical_events.of(calendar, skip_bad_series=True, calendar_query=_SpanQuery)


class SeriesCache:
    """
    What L{occurrences} keeps of series between calls for one account (or
    one set of mailboxes): their occurrences per block of L{BLOCK} (the
    last L{_KEPT_BLOCKS} blocks used), so that another window over the same
    blocks expands nothing (a client's week view moved by a day, a new
    free/busy window), and the C{recurring-ical-events} query of the last
    series expanded together, which a new block over the same series reuses
    (building it is about a third of an expansion).

    @ivar blocks: C{OrderedDict} of C{(block number, zone, owner)} to
        C{frozenset(group)} to the L{Occurrence}s of that series overlapping
        the block.
    """

    def __init__(self):
        self.blocks = collections.OrderedDict()
        self._query = (None, None)

    def query(self, groups):
        """
        The query over C{groups}, built again only when they changed.
        """
        key = frozenset(frozenset(group) for group in groups)
        if self._query[0] != key:
            self._query = (key, _query(groups))
        return self._query[1]

    def block(self, key):
        """
        The occurrences kept for a block, C{dict} (made empty when new).
        """
        kept = self.blocks.get(key)
        if kept is None:
            kept = self.blocks[key] = {}
            while len(self.blocks) > _KEPT_BLOCKS:
                self.blocks.popitem(last=False)
        else:
            self.blocks.move_to_end(key)
        return kept


#: The length of the blocks series are expanded and kept by (see
#: L{SeriesCache}), and the start of block 0.
BLOCK = timedelta(days=28)
_BLOCK_EPOCH = datetime(2000, 1, 3, tzinfo=timezone.utc)
#: How many blocks a L{SeriesCache} keeps: about two and a half years.
_KEPT_BLOCKS = 32


def _blockNumbers(start, end):
    """
    The numbers of the blocks that C{[start, end)} touches.
    """
    first = (start - _BLOCK_EPOCH) // BLOCK
    last = -((_BLOCK_EPOCH - end) // BLOCK) - 1  # the block holding the last instant before end
    return range(first, max(first, last) + 1)


def _blockStart(number):
    return _BLOCK_EPOCH + number * BLOCK


def _seriesOccurrences(series, start, end, zone, owner, seriesCache):
    """
    The occurrences of C{series} overlapping C{[start, end)}, from the
    blocks C{seriesCache} keeps, expanding (all at once) the series some
    block lacks.

    @return: C{list} of L{Occurrence}.
    """
    numbers = _blockNumbers(start, end)
    kept = [seriesCache.block((number, zone, owner)) for number in numbers]
    missing = [group for group in series if any(frozenset(group) not in block for block in kept)]
    if missing:
        # Series changed (a new override makes a new group): forget the
        # old groups' occurrences in these blocks.
        current = {frozenset(group) for group in series}
        for block in kept:
            for key in [key for key in block if key not in current]:
                del block[key]
        low = min(number for number, block in zip(numbers, kept, strict=True)
                  if any(frozenset(group) not in block for group in missing))
        high = max(number for number, block in zip(numbers, kept, strict=True)
                   if any(frozenset(group) not in block for group in missing))
        expanded = _expandSeries(missing, _blockStart(low), _blockStart(high + 1), zone, owner, seriesCache)
        for key, found in expanded.items():
            for number in range(low, high + 1):
                blockStart, blockEnd = _blockStart(number), _blockStart(number + 1)
                kept[number - numbers.start][key] = [occurrence for occurrence in found
                                                     if overlaps(occurrence[:2], blockStart, blockEnd)]
    result = []
    for group in series:
        key = frozenset(group)
        if len(kept) == 1:
            result.extend(occurrence for occurrence in kept[0].get(key, ())
                          if overlaps(occurrence[:2], start, end))
            continue
        seen = set()
        for block in kept:
            for occurrence in block.get(key, ()):
                if occurrence not in seen and overlaps(occurrence[:2], start, end):
                    seen.add(occurrence)
                    result.append(occurrence)
    return result


def _instances(groups, start, end, seriesCache=None):
    """
    The occurrences of some series around a window: those
    L{gateway.store.calendar.series.expand} takes directly, the rest with
    one C{recurring-ical-events} query.

    @param groups: C{list} of series, each a C{list} of L{gateway.store.calendar.parse._Event}.
    @param seriesCache: a L{SeriesCache} whose query to use, or C{None}.
    @return: C{list} of C{(start, end or duration, source, recurrence ID)},
        C{source} being an L{gateway.store.calendar.parse._Event} or a
        component.
    """
    spanStart, spanStop = start - _SLACK, end + _SLACK
    instances = []
    rest = []
    for group in groups:
        if not all(event.simple for event in group):
            rest.append(group)
            continue
        try:
            instances.extend(directSeries.expand(group, spanStart, spanStop))
        except directSeries.NotSimple:
            rest.append(group)
        except Exception:
            log.failure("Expanding recurring event {uid} directly failed; using recurring-ical-events",
                        uid=group[0].uid)
            rest.append(group)
    if rest:
        query = seriesCache.query(rest) if seriesCache is not None else _query(rest)
        instances.extend(query.between(spanStart, spanStop))
    return instances


def estimateOccurrences(component, length):
    """
    An upper estimate of how many occurrences a component's C{RRULE}s and
    C{RDATE}s give in a stretch of time, without expanding them.

    @param length: a C{timedelta}.
    @return: C{int}
    """
    return _estimate(component.get("RRULE"), component.get("RDATE"), length)


def _estimateEvent(event, length):
    """L{estimateOccurrences} for an L{gateway.store.calendar.parse._Event}."""
    key = (event.rules, length)
    estimate = _estimates.get(key)
    if estimate is None:
        if len(_estimates) >= _KEPT_RULES:
            _estimates.clear()
        estimate = _estimates[key] = _estimate([_ruleParts(rule) for rule in event.rules], None, length)
    return estimate + len(event.rdates)


#: L{_estimate} of rules for a length of time, kept (at most L{_KEPT_RULES}).
_estimates = caches.kept({}, "gateway.store.calendar.periods estimates")


#: Rule texts split by L{_ruleParts}, kept (at most L{_KEPT_RULES}).
_splitRules = caches.kept({}, "gateway.store.calendar.periods rules")
_KEPT_RULES = 10000


def _ruleParts(rule):
    """An C{RRULE} text as C{dict} of part name to C{list} of values."""
    parts = _splitRules.get(rule)
    if parts is None:
        if len(_splitRules) >= _KEPT_RULES:
            _splitRules.clear()
        parts = _splitRules[rule] = {name.upper(): value.split(",")
                                     for name, _, value in (part.partition("=") for part in rule.split(";"))}
    return parts


def _estimate(rules, rdates, length):
    total = 0
    if rules is not None and not isinstance(rules, list):
        rules = [rules]
    for rule in rules or ():
        try:
            step = _FREQ_SECONDS[str(rule.get("FREQ", ["DAILY"])[0]).upper()]
            step *= max(1, int(rule.get("INTERVAL", [1])[0]))
        except (KeyError, ValueError, TypeError, IndexError):
            continue  # recurring-ical-events will skip (or survive) it
        count = length.total_seconds() // step + 1
        for part in ("BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO"):
            count *= max(1, len(rule.get(part, ())))
        if "COUNT" in rule:
            try:
                count = min(count, int(rule["COUNT"][0]))
            except (ValueError, TypeError, IndexError):
                pass
        total += int(count)
    if rdates is not None:
        for rdate in rdates if isinstance(rdates, list) else [rdates]:
            total += len(getattr(rdate, "dts", ()) or ())
    return total


def _expandSeries(groups, start, end, zone, owner, seriesCache=None):
    """
    Expand series within a window: all of them with one query, or one by
    one if that fails, skipping (and logging) those that cannot be expanded.

    @param groups: C{list} of series, each a C{list} of L{gateway.store.calendar.parse._Event} sharing
        one C{UID} (or a single event without one).
    @return: C{dict} of C{frozenset(group)} to C{list} of L{Occurrence}.
    """
    results = {frozenset(group): [] for group in groups}
    # Occurrences share their series' or override's event or component:
    # classify each once (icalendar's property access is not cheap).
    types = {}
    byUid = {group[0].uid: frozenset(group) for group in groups if group[0].uid is not None}
    batches = [[group for group in groups if group[0].uid is not None]]
    batches.extend([group] for group in groups if group[0].uid is None)
    for batch in batches:
        if not batch:
            continue
        try:
            instances = _instances(batch, start, end, seriesCache)
        except Exception:
            if len(batch) == 1:
                log.failure("Skipping recurring event {uid}", uid=batch[0][0].uid)
            else:
                log.failure("Expanding {count} recurring events together failed; retrying one by one",
                            count=len(batch))
                batches.extend([group] for group in batch)
            continue
        # The event each component of the query came from.
        ofComponent = {id(event._component): event for group in batch for event in group
                       if event._component is not None}
        for instanceStart, instanceEnd, source, rid in instances:
            described = types.get(id(source))
            if described is None:
                described = types[id(source)] = _describe(source, owner, ofComponent)
            uid, fbtype, event = described
            key = frozenset(batch[0]) if len(batch) == 1 else byUid.get(uid)
            if key is None or event is None:
                continue
            duration = None
            if isinstance(instanceEnd, timedelta):
                instanceEnd, duration = None, instanceEnd
            span = utcSpan(instanceStart, instanceEnd, duration, zone)
            if span is not None and overlaps(span, start, end):
                results[key].append(Occurrence(span[0], span[1], fbtype, toUTC(rid, zone), event))
    return results


def _describe(source, owner, ofComponent):
    """
    C{(uid, fbtype, event)} of what an occurrence came from: an
    L{gateway.store.calendar.parse._Event} or a component (of the event
    C{ofComponent} maps its C{id} to).
    """
    if isinstance(source, _Event):
        return source.uid, classifyTraits(source.traits, owner), source
    return str(source.get("UID", "")), classify(source, owner), ofComponent.get(id(source))


class Occurrence(NamedTuple):
    """
    One occurrence of an event in a window (see L{occurrences}).
    """

    #: Its start, an aware UTC C{datetime}.
    start: datetime
    #: Its end, likewise; the start for an instant.
    end: datetime
    #: One of L{FBTYPES}, or C{None} for free time (cancelled, transparent,
    #: declined...).
    fbtype: Optional[str]
    #: Its recurrence ID (original start) in UTC, C{None} for an event
    #: that is not part of a series.
    recurrenceId: Optional[datetime]
    #: The L{gateway.store.calendar.parse._Event} (series, override or
    #: single event) it comes from.
    event: _Event


def occurrences(events, start, end, zone, owner, seriesCache=None):
    """
    Every occurrence of C{events} that overlaps C{[start, end)} by the rule
    of RFC 4791 9.9 (see L{overlaps}), free ones included: the one
    expansion behind free/busy (L{computePeriods}) and per-message
    instances (L{gateway.store.calendar.instances}).

    Single events are checked against the window directly (their UTC span
    is computed once per time zone and kept); only series are expanded,
    directly (L{gateway.store.calendar.series}) or with
    C{recurring-ical-events}.  Components with one C{UID} are merged (the
    latest version of each instance counts) before expansion.

    @param events: iterable of L{gateway.store.calendar.parse._Event} (and
        L{gateway.store.calendar.parse.Unparsed}, parsed only when near the window).
    @param start: aware UTC C{datetime}.
    @param end: aware UTC C{datetime}.
    @param zone: C{tzinfo} for dates and floating times.
    @param owner: C{frozenset} of the owner's addresses.
    @param seriesCache: C{None}, or a L{SeriesCache} (kept by the caller
        between calls), so that unchanged series are not expanded again.
    @return: C{list} of L{Occurrence}, in no particular order.
    """
    byUid = collections.defaultdict(list)
    anonymous = []
    for event in _parseNear(events, start, end):
        if event.uid is None:
            anonymous.append(event)
        else:
            byUid[event.uid].append(event)

    found = []

    def single(event):
        cached = event.utc
        if cached is not None and cached[0] is zone:
            span = cached[1]
        else:
            try:
                span = utcSpan(event.start, event.end, event.duration, zone)
            except Exception:
                log.failure("Skipping event {uid} with bad times", uid=event.uid)
                span = None
            event.utc = (zone, span)
        if span is None or span[0] >= end or (span[1] <= start and span[0] < start):
            return
        if event.fbtype is None or event.fbtype[0] != owner:
            event.fbtype = (owner, classifyTraits(event.traits, owner))
        rid = event.recurrenceId
        found.append(Occurrence(span[0], span[1], event.fbtype[1], None if rid is None else toUTC(rid, zone), event))

    series = []
    for event in anonymous:
        if event.recurring:
            if _estimateEvent(event, end - start + 2 * _SLACK) <= MAX_OCCURRENCES:
                series.append([event])
        else:
            single(event)
    for group in byUid.values():
        if len(group) == 1 and not group[0].recurring and group[0].recurrenceId is None:
            single(group[0])
            continue
        # Keep the latest version of each instance (same UID and RECURRENCE-ID).
        versions = collections.defaultdict(list)
        for event in group:
            versions[_recurrenceKey(event.recurrenceId)].append(event)
        group = [_latest(candidates) for candidates in versions.values()]
        if any(event.recurring for event in group):
            estimate = max(_estimateEvent(event, end - start + 2 * _SLACK)
                           for event in group if event.recurring)
            if estimate > MAX_OCCURRENCES:
                log.warn("Skipping recurring event {uid}: about {estimate} occurrences in the window",
                         uid=group[0].uid, estimate=estimate)
                continue
            series.append(group)
        else:
            # No series to override: each remaining component stands alone.
            for event in group:
                single(event)

    if seriesCache is None:
        for instances in _expandSeries(series, start, end, zone, owner).values():
            found.extend(instances)
    elif series:
        found.extend(_seriesOccurrences(series, start, end, zone, owner, seriesCache))
    return found


def computePeriods(events, start, end, zone, owner, seriesCache=None):
    """
    The busy periods of C{events} within C{[start, end)}: their busy
    L{occurrences}, clipped to the window and resolved by type.

    @param events: see L{occurrences}.
    @return: see L{resolvePeriods}.
    """
    byType = collections.defaultdict(list)
    for occurrence in occurrences(events, start, end, zone, owner, seriesCache):
        if occurrence.fbtype is not None and occurrence.end > occurrence.start:
            byType[occurrence.fbtype].append((max(occurrence.start, start), min(occurrence.end, end)))
    return resolvePeriods(byType)
