# -*- test-case-name: tests.test_calendar_agreement -*-
"""
XINSTANCES and XOVERLAPS (L{gateway.store.calendar.FreeBusyCache.instances}
and C{overlapping}) agree with C{recurring-ical-events} on a generated
calendar for 200 random windows (issue 12's "Done when").
"""

import random
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from gateway.store.calendar import FREE, FreeBusyCache, parse
from tests.test_calendar import _CalendarTestCase, vevent

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
#: Every generated event lies around the March 2026 DST changes of Berlin
#: (29 March) and New York (8 March).
EPOCH = datetime(2026, 2, 1)
SLACK = timedelta(days=3)


def stamp(value, tzid=None):
    """A DTSTART-like property's text for a naive wall-clock time."""
    if tzid is None:
        return ":" + value.strftime("%Y%m%dT%H%M%S")
    if tzid == "UTC":
        return ":" + value.strftime("%Y%m%dT%H%M%SZ")
    return ";TZID=%s:%s" % (tzid, value.strftime("%Y%m%dT%H%M%S"))


def day(value):
    return ";VALUE=DATE:" + value.strftime("%Y%m%d")


def generate(rng):
    """
    Messages of one calendar, each with its own UID: series in Berlin, New
    York, UTC and floating time (daily, weekly, with COUNT, UNTIL or no end,
    RDATEs), EXDATEs, overrides that move, cancel, free or make tentative
    an instance, a RANGE=THISANDFUTURE override, all-day series and events,
    instants of a series and a single one, and single events.

    @return: C{(list of message texts, {uid: shift of its ranged override})}.
    """
    messages, ranged = [], {}
    for n in range(14):
        uid = "series-%d" % (n,)
        tzid = ("Europe/Berlin", "Europe/Berlin", "America/New_York", "UTC", None)[n % 5]
        start = EPOCH + timedelta(days=rng.randrange(40), hours=rng.randrange(6, 20), minutes=rng.choice((0, 30)))
        length = timedelta(minutes=rng.choice((30, 60, 90, 600)))
        freq = rng.choice(("DAILY", "WEEKLY", "WEEKLY;BYDAY=MO,WE,FR", "DAILY;INTERVAL=2"))
        end = rng.choice((";COUNT=%d" % (rng.randrange(5, 40),), "", ";UNTIL=20260420T000000Z"))
        lines = ["DTSTART" + stamp(start, tzid), "DTEND" + stamp(start + length, tzid), "RRULE:FREQ=" + freq + end]
        step = timedelta(days=1 if freq.startswith("DAILY") else 7) * (2 if "INTERVAL" in freq else 1)
        if "BYDAY" in freq:
            step = timedelta(days=7)
            start = start - timedelta(days=start.weekday())  # a Monday, so the rule's days are its instances
            lines[0:2] = ["DTSTART" + stamp(start, tzid), "DTEND" + stamp(start + length, tzid)]
        if n % 4 == 1:
            lines.append("RDATE" + stamp(start + timedelta(days=3, hours=1), tzid))
        components = []
        instances = [start + step * k for k in range(1, 5)]
        if n % 3 == 0:
            lines.append("EXDATE" + stamp(instances[0], tzid))
        for k, change in enumerate(rng.sample(("moved", "cancelled", "free", "tentative", None), 3)):
            if change is None:
                continue
            rid = instances[k + 1]
            newStart = rid + timedelta(hours=2) if change == "moved" else rid
            extra = {"moved": (), "cancelled": ("STATUS:CANCELLED",), "free": ("TRANSP:TRANSPARENT",),
                     "tentative": ("STATUS:TENTATIVE",)}[change]
            components.append(vevent(uid, "RECURRENCE-ID" + stamp(rid, tzid), "DTSTART" + stamp(newStart, tzid),
                                     "DTEND" + stamp(newStart + length, tzid), *extra))
        if n == 4 or n == 9:
            rid = start + step * 6
            shift = timedelta(hours=3)
            ranged[uid] = (rid, shift)
            components.append(vevent(uid, "RECURRENCE-ID;RANGE=THISANDFUTURE" + stamp(rid, tzid),
                                     "DTSTART" + stamp(rid + shift, tzid),
                                     "DTEND" + stamp(rid + shift + length, tzid), "STATUS:TENTATIVE"))
        messages.append([vevent(uid, *lines)] + components)
    # Instants on the hour, where windows start and end.
    messages.append([vevent("series-instants", "DTSTART:20260201T000000Z", "RRULE:FREQ=HOURLY;INTERVAL=7;COUNT=100")])
    for n in range(3):
        uid = "allday-series-%d" % (n,)
        first = (EPOCH + timedelta(days=rng.randrange(40))).date()
        messages.append([vevent(uid, "DTSTART" + day(first), "DTEND" + day(first + timedelta(days=1 + n % 2)),
                                "RRULE:FREQ=WEEKLY;COUNT=%d" % (rng.randrange(4, 12),),
                                "EXDATE" + day(first + timedelta(weeks=2)))])
    for n in range(6):
        uid = "allday-%d" % (n,)
        first = (EPOCH + timedelta(days=rng.randrange(60))).date()
        lines = ["DTSTART" + day(first)]
        if n % 2:
            lines.append("DTEND" + day(first + timedelta(days=rng.randrange(1, 4))))
        messages.append([vevent(uid, *lines)])
    for n in range(10):
        uid = "single-%d" % (n,)
        tzid = ("Europe/Berlin", "UTC", None, "America/New_York")[n % 4]
        start = EPOCH + timedelta(days=rng.randrange(60), hours=rng.randrange(24))
        lines = ["DTSTART" + stamp(start, tzid)]
        if n != 3:
            lines.append("DTEND" + stamp(start + timedelta(minutes=rng.choice((15, 60, 300))), tzid))
        if n % 5 == 2:
            lines.append("STATUS:TENTATIVE")
        messages.append([vevent(uid, *lines)])
    return messages, ranged


def toUTC(value, zone):
    """A time recurring-ical-events gave, in UTC (dates and floating times in C{zone})."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def overlap(start, end, windowStart, windowEnd):
    """RFC 4791 9.9, written out: a period overlaps when it starts before the end and ends after the start; an instant when it is in [start, end)."""
    if end > start:
        return windowStart < end and windowEnd > start
    return windowStart <= start < windowEnd


def fbtype(component):
    """The busy type the test expects of an occurrence's component."""
    if str(component.get("STATUS", "")) == "CANCELLED" or str(component.get("TRANSP", "")) == "TRANSPARENT":
        return FREE
    return "BUSY-TENTATIVE" if str(component.get("STATUS", "")) == "TENTATIVE" else "BUSY"


class AgreementTests(_CalendarTestCase):
    """
    The generated calendar in the account's Calendar (zone Europe/Berlin).
    """

    def expected(self, query, ranged, start, end):
        """
        What recurring-ical-events gives for a window, per UID: C{(start,
        end, fbtype, recurrence ID)} of each occurrence in it, sorted.
        """
        found = {}
        for component in query.between(start - SLACK, end + SLACK):
            uid = str(component["UID"])
            dtstart = component["DTSTART"].dt
            if "DTEND" in component:
                dtend = component["DTEND"].dt
            elif isinstance(dtstart, datetime):
                dtend = dtstart
            else:
                dtend = dtstart + timedelta(days=1)
            occurrenceStart, occurrenceEnd = toUTC(dtstart, BERLIN), toUTC(dtend, BERLIN)
            if not overlap(occurrenceStart, occurrenceEnd, start, end):
                continue
            if not uid.startswith(("series", "allday-series")):
                rid = None
            elif component["RECURRENCE-ID"].params.get("RANGE") == "THISANDFUTURE":
                rid = occurrenceStart - ranged[uid][1]
            else:
                rid = toUTC(component["RECURRENCE-ID"].dt, BERLIN)
            found.setdefault(uid, []).append((occurrenceStart, occurrenceEnd, fbtype(component), rid))
        return {uid: sorted(listed, key=lambda i: (i[0], i[1])) for uid, listed in found.items()}

    def test_randomWindows(self):
        """XINSTANCES and XOVERLAPS agree with recurring-ical-events on 200 random windows (seed 12)."""
        rng = random.Random(12)
        messages, ranged = generate(rng)
        calendar = icalendar.Calendar()
        uidOf = {}
        for components in messages:
            text = "\r\n".join(("BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN") + tuple(components)
                               + ("END:VCALENDAR", ""))
            for event in parse.parseCalendar(text):
                calendar.add_component(event.component)
            uid = self.mailbox.appendMessage(
                b"Subject: e\r\nContent-Type: text/calendar; charset=utf-8\r\n\r\n" + text.encode("utf-8"))
            uidOf[components[0].split("\r\n")[1][4:]] = uid
        query = recurring_ical_events.of(calendar)
        cache = FreeBusyCache()
        everything = self.mailbox.uids()
        compared = occurrences = 0
        for _ in range(200):
            start = datetime(2026, 1, 25, tzinfo=UTC) + timedelta(hours=rng.randrange(24 * 100))
            end = start + timedelta(hours=rng.choice((1, 2, 24, 24 * 7, 24 * rng.randrange(1, 60))))
            expected = self.expected(query, ranged, start, end)
            got = cache.instances(self.account, self.mailbox, everything, start, end)
            for name, uid in uidOf.items():
                self.assertEqual([tuple(i) for i in got[uid]], expected.get(name, []),
                                 "%s in %s..%s" % (name, start, end))
                occurrences += len(got[uid])
            self.assertEqual(cache.overlapping(self.account, self.mailbox, start, end),
                             {uidOf[name] for name in expected})
            compared += 1
        self.assertEqual(compared, 200)
        self.assertGreater(occurrences, 1000)  # the windows did hold occurrences
