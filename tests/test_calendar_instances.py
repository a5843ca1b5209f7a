# -*- test-case-name: tests.test_calendar_instances -*-
"""
Tests for L{gateway.store.calendar.instances}: the per-message occurrences
behind XMAPI's C{FETCH XINSTANCES} and C{SEARCH XOVERLAPS} (docs/xmapi.md
4.3 and 5), answered by L{gateway.store.calendar.FreeBusyCache}.
"""

from datetime import timedelta

from twisted.internet.defer import succeed
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from gateway.interfaces import ICalendarQueries
from gateway.store.calendar import FreeBusyCache, parse, series
from gateway.store.calendar import periods as calendarPeriods
from gateway.store.calendar.instances import FREE, BadWindow, Instance, checkWindow
from tests.support import freeBusyPeriods
from tests.test_calendar import _CountingTestCase, message, utc, vevent

BERLIN_START = ("DTSTART;TZID=Europe/Berlin:20260323T090000", "DTEND;TZID=Europe/Berlin:20260323T100000")


class _InstancesTestCase(_CountingTestCase):
    """
    A Calendar mailbox (account zone Europe/Berlin) and a cache answering
    per-message queries over it.
    """

    window = (utc(2026, 3, 23), utc(2026, 4, 6))

    def setUp(self):
        _CountingTestCase.setUp(self)
        self.cache = FreeBusyCache()

    def instances(self, uids, start=None, end=None):
        """L{FreeBusyCache.instances} for the Calendar mailbox."""
        start, end = (start, end) if start is not None else self.window
        return self.cache.instances(self.account, self.mailbox, uids, start, end)

    def overlapping(self, start=None, end=None, uids=None):
        """L{FreeBusyCache.overlapping} for the Calendar mailbox."""
        start, end = (start, end) if start is not None else self.window
        return self.cache.overlapping(self.account, self.mailbox, start, end, uids)


class InstanceTests(_InstancesTestCase):
    def test_singleEvent(self):
        """R-INST-1: a single event in the window is one occurrence with NIL recurrence ID, in UTC."""
        uid = self.append(vevent("a", *BERLIN_START))
        self.assertEqual(self.instances([uid]),
                         {uid: (Instance(utc(2026, 3, 23, 8), utc(2026, 3, 23, 9), "BUSY", None),)})

    def test_outsideWindow(self):
        """R-INST-1: an event outside the window has no occurrence (an empty tuple)."""
        uid = self.append(vevent("a", "DTSTART:20260501T090000Z", "DTEND:20260501T100000Z"))
        self.assertEqual(self.instances([uid]), {uid: ()})

    def test_seriesAcrossDst(self):
        """R-INST-1: a daily series in Berlin keeps its wall-clock time across the DST change, in start order."""
        uid = self.append(vevent("d", *BERLIN_START, "RRULE:FREQ=DAILY;COUNT=14"))
        found = self.instances([uid], utc(2026, 3, 27), utc(2026, 3, 31))[uid]
        self.assertEqual([(i.start, i.end, i.fbtype, i.recurrenceId) for i in found], [
            (utc(2026, 3, 27, 8), utc(2026, 3, 27, 9), "BUSY", utc(2026, 3, 27, 8)),
            (utc(2026, 3, 28, 8), utc(2026, 3, 28, 9), "BUSY", utc(2026, 3, 28, 8)),
            (utc(2026, 3, 29, 7), utc(2026, 3, 29, 8), "BUSY", utc(2026, 3, 29, 7)),
            (utc(2026, 3, 30, 7), utc(2026, 3, 30, 8), "BUSY", utc(2026, 3, 30, 7))])

    def test_exdateAndOverrides(self):
        """R-INST-1/2: EXDATE removes an instance; a moved override keeps its recurrence ID; its own TRANSP decides."""
        uid = self.append(
            vevent("d", *BERLIN_START, "RRULE:FREQ=DAILY;COUNT=4", "EXDATE;TZID=Europe/Berlin:20260324T090000"),
            vevent("d", "RECURRENCE-ID;TZID=Europe/Berlin:20260325T090000", "TRANSP:TRANSPARENT",
                   "DTSTART;TZID=Europe/Berlin:20260325T140000", "DTEND;TZID=Europe/Berlin:20260325T150000"))
        self.assertEqual(self.instances([uid])[uid], (
            Instance(utc(2026, 3, 23, 8), utc(2026, 3, 23, 9), "BUSY", utc(2026, 3, 23, 8)),
            Instance(utc(2026, 3, 25, 13), utc(2026, 3, 25, 14), FREE, utc(2026, 3, 25, 8)),
            Instance(utc(2026, 3, 26, 8), utc(2026, 3, 26, 9), "BUSY", utc(2026, 3, 26, 8))))

    def test_overrideTypes(self):
        """R-INST-2: cancelled and declined occurrences are FREE; tentative, OOF ones have their own types."""
        uid = self.append(
            vevent("d", *BERLIN_START, "RRULE:FREQ=DAILY;COUNT=5"),
            vevent("d", "RECURRENCE-ID;TZID=Europe/Berlin:20260324T090000", "STATUS:CANCELLED",
                   "DTSTART;TZID=Europe/Berlin:20260324T090000", "DTEND;TZID=Europe/Berlin:20260324T100000"),
            vevent("d", "RECURRENCE-ID;TZID=Europe/Berlin:20260325T090000",
                   "ATTENDEE;PARTSTAT=DECLINED:mailto:demo@example.test",
                   "DTSTART;TZID=Europe/Berlin:20260325T090000", "DTEND;TZID=Europe/Berlin:20260325T100000"),
            vevent("d", "RECURRENCE-ID;TZID=Europe/Berlin:20260326T090000",
                   "ATTENDEE;PARTSTAT=TENTATIVE:mailto:demo@example.test",
                   "DTSTART;TZID=Europe/Berlin:20260326T090000", "DTEND;TZID=Europe/Berlin:20260326T100000"),
            vevent("d", "RECURRENCE-ID;TZID=Europe/Berlin:20260327T090000", "X-MICROSOFT-CDO-BUSYSTATUS:OOF",
                   "DTSTART;TZID=Europe/Berlin:20260327T090000", "DTEND;TZID=Europe/Berlin:20260327T100000"))
        self.assertEqual([i.fbtype for i in self.instances([uid])[uid]],
                         ["BUSY", FREE, FREE, "BUSY-TENTATIVE", "BUSY-UNAVAILABLE"])

    def test_overrideInOtherMessage(self):
        """R-INST-1: an override in a message of its own is that message's occurrence, not the series'."""
        series = self.append(vevent("d", *BERLIN_START, "RRULE:FREQ=DAILY;COUNT=3"))
        moved = self.append(vevent("d", "RECURRENCE-ID;TZID=Europe/Berlin:20260324T090000",
                                   "DTSTART;TZID=Europe/Berlin:20260324T120000",
                                   "DTEND;TZID=Europe/Berlin:20260324T130000"))
        found = self.instances([series, moved])
        self.assertEqual([i.start for i in found[series]], [utc(2026, 3, 23, 8), utc(2026, 3, 25, 8)])
        self.assertEqual(found[moved], (Instance(utc(2026, 3, 24, 11), utc(2026, 3, 24, 12), "BUSY",
                                                 utc(2026, 3, 24, 8)),))

    def test_thisAndFuture(self):
        """R-INST-1: a RANGE=THISANDFUTURE override moves the later instances, which keep their own recurrence IDs."""
        uid = self.append(
            vevent("d", *BERLIN_START, "RRULE:FREQ=DAILY;COUNT=4"),
            vevent("d", "RECURRENCE-ID;RANGE=THISANDFUTURE;TZID=Europe/Berlin:20260325T090000",
                   "DTSTART;TZID=Europe/Berlin:20260325T110000", "DTEND;TZID=Europe/Berlin:20260325T113000",
                   "STATUS:TENTATIVE"))
        self.assertEqual(self.instances([uid])[uid], (
            Instance(utc(2026, 3, 23, 8), utc(2026, 3, 23, 9), "BUSY", utc(2026, 3, 23, 8)),
            Instance(utc(2026, 3, 24, 8), utc(2026, 3, 24, 9), "BUSY", utc(2026, 3, 24, 8)),
            Instance(utc(2026, 3, 25, 10), utc(2026, 3, 25, 10, 30), "BUSY-TENTATIVE", utc(2026, 3, 25, 8)),
            Instance(utc(2026, 3, 26, 10), utc(2026, 3, 26, 10, 30), "BUSY-TENTATIVE", utc(2026, 3, 26, 8))))

    def test_allDay(self):
        """R-INST-1: all-day occurrences start and end at midnight of the account's zone, also across DST."""
        uid = self.append(vevent("w", "DTSTART;VALUE=DATE:20260328", "DTEND;VALUE=DATE:20260330",
                                 "RRULE:FREQ=WEEKLY;COUNT=2"))
        self.assertEqual(self.instances([uid])[uid], (
            Instance(utc(2026, 3, 27, 23), utc(2026, 3, 29, 22), "BUSY", utc(2026, 3, 27, 23)),
            Instance(utc(2026, 4, 3, 22), utc(2026, 4, 5, 22), "BUSY", utc(2026, 4, 3, 22))))

    def test_overlapRules(self):
        """R-INST-1: RFC 4791 9.9: periods touching the window are out; an instant at its start is in, at its end out."""
        touching = self.append(vevent("t", "DTSTART:20260322T230000Z", "DTEND:20260323T000000Z"))
        atStart = self.append(vevent("s", "DTSTART:20260323T000000Z"))
        atEnd = self.append(vevent("e", "DTSTART:20260406T000000Z"))
        inside = self.append(vevent("i", "DTSTART:20260324T000000Z", "DURATION:PT0S"))
        found = self.instances([touching, atStart, atEnd, inside])
        self.assertEqual(found[touching], ())
        self.assertEqual(found[atStart], (Instance(utc(2026, 3, 23), utc(2026, 3, 23), "BUSY", None),))
        self.assertEqual(found[atEnd], ())
        self.assertEqual(found[inside], (Instance(utc(2026, 3, 24), utc(2026, 3, 24), "BUSY", None),))

    def test_notCalendarItems(self):
        """R-INST-3: a message without an event, an unknown UID, and any message of a mail folder answer ()."""
        text = self.mailbox.appendMessage(b"From: a@example.test\r\nSubject: hi\r\n\r\nhello\r\n")
        self.assertEqual(self.instances([text, 999]), {text: (), 999: ()})
        inbox = self.account.mailStore.getMailbox("INBOX")
        uid = inbox.appendMessage(message(vevent("a", *BERLIN_START)))
        self.assertEqual(self.cache.instances(self.account, inbox, [uid], *self.window), {uid: ()})
        self.assertEqual(self.cache.overlapping(self.account, inbox, *self.window), set())

    def test_summarized(self):
        """R-FETCH-3/R-SRCH-6: messages summarized when added are answered without reading or parsing a body."""
        self.fill()
        del self.parsed[:], self.read[:]
        found = FreeBusyCache().instances(self.account, self.mailbox, self.mailbox.uids(), *self.window)
        self.assertEqual(sum(len(found[uid]) for uid in found), 7)
        self.assertEqual((self.read, self.parsed), ([], []))

    def test_sameAsFreeBusy(self):
        """One implementation: the busy instances, merged, are the account's free/busy periods."""
        self.fill()
        found = self.instances(self.mailbox.uids())
        spans = sorted((max(i.start, self.window[0]), min(i.end, self.window[1]))
                       for uid in found for i in found[uid] if i.fbtype != FREE)
        busy = freeBusyPeriods(self.cache.get(self.account, *self.window))
        self.assertEqual(sorted(span for typed in busy.values() for span in typed), spans)

    def test_changes(self):
        """A new message, and an expunged one, change the answer of the same window."""
        first = self.append(vevent("a", *BERLIN_START))
        self.assertEqual(self.overlapping(), {first})
        second = self.append(vevent("b", "DTSTART:20260401T090000Z", "DTEND:20260401T100000Z"))
        self.assertEqual(self.overlapping(), {first, second})
        self.mailbox.setFlags([first], ["\\Deleted"], "+")
        self.mailbox.expunge()
        self.assertEqual(self.overlapping(), {second})


class OverlapTests(_InstancesTestCase):
    def test_overlapping(self):
        """R-SRCH-4: the UIDs with any occurrence in the window, free ones too; far and non-calendar ones not."""
        self.fill()
        uids = self.mailbox.uids()
        text = self.mailbox.appendMessage(b"From: a@example.test\r\nSubject: hi\r\n\r\nhello\r\n")
        cancelled = self.append(vevent("c", "DTSTART:20260401T090000Z", "DTEND:20260401T100000Z",
                                       "STATUS:CANCELLED"))
        found = self.overlapping()
        # fill(): plain, allday, floating, declined, dst, far, weekly, weekly override, ended
        self.assertEqual(found, {uids[0], uids[1], uids[2], uids[3], uids[4], uids[6], uids[7], cancelled})
        self.assertNotIn(text, found)
        self.assertEqual(self.overlapping(uids=[uids[0], uids[5], cancelled]), {uids[0], cancelled})

    def test_farSeriesNotParsed(self):
        """R-SRCH-6: an unsummarized series far from the window is excluded by its bounds, not parsed again."""
        self.notSummarizedWhenAdded()
        self.append(vevent("old", "DTSTART:20250101T090000Z", "DTEND:20250101T100000Z", "RRULE:FREQ=DAILY;COUNT=5"))
        self.cache.overlapping(self.account, self.mailbox, *self.window)
        del self.parsed[:]
        self.assertEqual(FreeBusyCache().overlapping(self.account, self.mailbox, *self.window), set())
        self.assertEqual(self.parsed, [])


class WindowTests(unittest.TestCase):
    def test_checkWindow(self):
        """R-INST-4: the end must be after the start and the window at most 366 days long."""
        start = utc(2026, 1, 1)
        self.assertEqual(checkWindow(start, start + timedelta(days=366)), (start, start + timedelta(days=366)))
        for end in (start, start - timedelta(1), start + timedelta(days=366, seconds=1)):
            self.assertRaises(BadWindow, checkWindow, start, end)


class KeptStartsTests(unittest.TestCase):
    """
    L{gateway.store.calendar.series} keeps a series' rule and the starts it
    gave between windows.
    """

    def events(self, *lines):
        [item] = parse.loadMessage(message(vevent("d", *lines)), sniffing=False)
        return item.events()

    def test_parsedOnce(self):
        """A second window neither parses the rule again nor differs from a fresh expansion."""
        calls = []
        rrulestr = series.rrulestr
        self.patch(series, "rrulestr", lambda *a, **k: calls.append(a) or rrulestr(*a, **k))
        lines = ("DTSTART;TZID=Europe/Berlin:20250105T090000", "DTEND;TZID=Europe/Berlin:20250105T100000",
                 "RRULE:FREQ=DAILY")
        kept = self.events(*lines)
        for day in (1, 20, 3):
            start = utc(2026, 3, day)
            got = series.expand(kept, start, start + timedelta(days=7))
            fresh = series.expand(self.events(*lines), start, start + timedelta(days=7))
            self.assertEqual([(s, e, rid) for s, e, _, rid in got], [(s, e, rid) for s, e, _, rid in fresh])
            self.assertEqual(len(got), 7)
        self.assertEqual(len(calls), 4)  # once for the kept series, once per fresh one

    def test_tooManyStarts(self):
        """A rule with more starts than are kept is walked by dateutil each time, with the same result."""
        lines = ("DTSTART:20260101T000000Z", "DTEND:20260101T000100Z", "RRULE:FREQ=HOURLY")
        window = (utc(2026, 3, 1), utc(2026, 3, 2))
        expected = series.expand(self.events(*lines), *window)
        self.patch(series, "KEPT_STARTS", 10)
        events = self.events(*lines)
        self.assertEqual(series.expand(events, *window), [(s, e, events[0], rid) for s, e, _, rid in expected])
        self.assertEqual(events[0].expansion._starts, [None])


class GenerateTests(_InstancesTestCase):
    """
    The C{Deferred} forms, computing in L{FreeBusyCache.runInThread}.
    """

    def setUp(self):
        _InstancesTestCase.setUp(self)
        self.threaded = []

        def runInThread(f, *args):
            self.threaded.append(f)
            return succeed(f(*args))

        self.cache = FreeBusyCache(runInThread=runInThread)

    def test_inThreadThenKept(self):
        """The first answer for a window is computed in the thread; the same window again is answered at once."""
        uid = self.append(vevent("a", *BERLIN_START))
        other = self.append(vevent("b", "DTSTART:20260501T090000Z", "DTEND:20260501T100000Z"))
        found = self.successResultOf(self.cache.generateOverlapping(self.account, self.mailbox, *self.window))
        self.assertEqual((found, len(self.threaded)), ({uid}, 1))
        instances = self.successResultOf(
            self.cache.generateInstances(self.account, self.mailbox, [uid, other], *self.window))
        self.assertEqual(instances, {uid: (Instance(utc(2026, 3, 23, 8), utc(2026, 3, 23, 9), "BUSY", None),),
                                     other: ()})
        self.assertEqual(len(self.threaded), 1)
        self.assertEqual(self.successResultOf(self.cache.generateOverlapping(
            self.account, self.mailbox, *self.window, uids=[other])), set())

    def test_notCalendar(self):
        """A mail folder answers at once, with nothing, without a thread."""
        inbox = self.account.mailStore.getMailbox("INBOX")
        self.assertEqual(self.successResultOf(self.cache.generateOverlapping(self.account, inbox, *self.window)),
                         set())
        self.assertEqual(self.threaded, [])


class InterfaceTests(unittest.TestCase):
    def test_interface(self):
        """FreeBusyCache provides ICalendarQueries."""
        self.assertTrue(verifyObject(ICalendarQueries, FreeBusyCache()))


class BlockTests(_InstancesTestCase):
    """
    Series' occurrences are kept per block of 28 days
    (L{gateway.store.calendar.periods.SeriesCache}).
    """

    def test_acrossBlockBoundary(self):
        """An occurrence spanning two blocks is listed once, in windows over either block or both."""
        boundary = calendarPeriods._blockStart(calendarPeriods._blockNumbers(utc(2026, 3, 10), utc(2026, 3, 11))[0] + 1)
        start = boundary - timedelta(hours=1)
        uid = self.append(vevent("d", "DTSTART:" + start.strftime("%Y%m%dT%H%M%SZ"), "DURATION:PT2H",
                                 "RRULE:FREQ=DAILY;COUNT=3"))
        spanning = Instance(start, start + timedelta(hours=2), "BUSY", start)
        for window in ((boundary - timedelta(days=2), boundary + timedelta(days=2)),
                       (boundary - timedelta(days=1), boundary), (boundary, boundary + timedelta(hours=1))):
            self.assertEqual(self.instances([uid], *window)[uid][0], spanning, window)
        self.assertEqual(len(self.instances([uid], boundary - timedelta(days=2), boundary + timedelta(days=5))[uid]), 3)

    def test_movedWindowNotExpanded(self):
        """A window moved by a day within the blocks already kept expands no series again."""
        expanded = []
        original = calendarPeriods._instances

        def counting(groups, start, end, seriesCache):
            expanded.append(len(groups))
            return original(groups, start, end, seriesCache)

        self.patch(calendarPeriods, "_instances", counting)
        uid = self.append(vevent("d", "DTSTART;TZID=Europe/Berlin:20260105T090000",
                                 "DTEND;TZID=Europe/Berlin:20260105T100000", "RRULE:FREQ=DAILY"))
        block = calendarPeriods._blockStart(calendarPeriods._blockNumbers(utc(2026, 3, 25), utc(2026, 3, 26))[0])
        first = self.instances([uid], block + timedelta(days=1), block + timedelta(days=8))[uid]
        moved = self.instances([uid], block + timedelta(days=2), block + timedelta(days=9))[uid]
        self.assertEqual(first[1:], moved[:-1])
        self.assertEqual(len(moved), 7)
        self.assertEqual(len(expanded), 1)


class SharedViewTests(_InstancesTestCase):
    def test_viewOfMailbox(self):
        """Another object for the calendar (a shared mailbox's view, named as the viewer sees it) gets the same answers from the same parsed events."""
        uid = self.append(vevent("a", *BERLIN_START))
        self.assertEqual(self.overlapping(), {uid})

        class View:
            name = "~demo/Calendar"
            uidValidity = self.mailbox.uidValidity

        del self.parsed[:], self.read[:]
        self.assertEqual(self.cache.overlapping(self.account, View(), utc(2026, 3, 22), utc(2026, 3, 24)), {uid})
        self.assertEqual((self.read, self.parsed), ([], []))
        self.assertEqual(list(self.cache._parsed[self.account.address]), ["Calendar"])
