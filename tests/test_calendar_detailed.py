# -*- test-case-name: tests.test_calendar_detailed -*-
"""
Tests for L{gateway.store.calendar.FreeBusyCache.view}: free/busy of an
account from the calendars a viewer may see, detailed where allowed
(XMAPI C{XFREEBUSY}, docs/xmapi.md R-FB-1..4).
"""

import icalendar

from gateway.store.calendar import FreeBusyCache
from tests.support import freeBusyPeriods
from tests.test_calendar import NOW, _CountingTestCase, message, utc, vevent

WINDOW = (utc(2026, 3, 23), utc(2026, 3, 30))


def details(document):
    """
    The FREEBUSY properties of a document as C{(fbtype, start, end,
    X-SUMMARY, X-LOCATION)}, absent parameters as C{None}.
    """
    [vfreebusy] = icalendar.Calendar.from_ical(document).walk("VFREEBUSY")
    props = vfreebusy.get("FREEBUSY", [])
    props = props if isinstance(props, list) else [props]
    found = []
    for prop in props:
        for value in prop.to_ical().decode().split(","):
            start, end = icalendar.vPeriod.from_ical(value)
            found.append((prop.params["FBTYPE"], start, end, prop.params.get("X-SUMMARY"),
                          prop.params.get("X-LOCATION")))
    return sorted(found, key=lambda item: (item[1], item[0]))


class ViewTests(_CountingTestCase):
    """
    The demo account's Calendar and a second calendar, C{Work}.
    """

    def setUp(self):
        _CountingTestCase.setUp(self)
        store = self.account.mailStore
        store.createMailbox("Work", "IPF.Appointment")
        self.work = store.getMailbox("Work")
        self.cache = FreeBusyCache()
        self.append(vevent("a", "DTSTART:20260323T090000Z", "DTEND:20260323T100000Z", "SUMMARY:Stand-up",
                           "LOCATION:Room 2"))
        self.append(vevent("b", "DTSTART:20260324T090000Z", "DTEND:20260324T110000Z", "STATUS:TENTATIVE",
                           "SUMMARY:Lunch\\, maybe", "LOCATION:Café \"Zum Löwen\"\\; Main St. 5\\nBerlin"))
        self.work.appendMessage(message(vevent("w", "DTSTART;TZID=Europe/Berlin:20260325T140000",
                                               "DTEND;TZID=Europe/Berlin:20260325T150000", "SUMMARY:Review",
                                               "RRULE:FREQ=DAILY;COUNT=2")))

    def view(self, calendars, organizer=None, cache=None):
        return (cache or self.cache).view(self.account, calendars, *WINDOW, organizer=organizer, now=NOW)

    def test_detailed(self):
        """R-FB-3: with right 1 and DETAILED every period carries its event's SUMMARY and LOCATION."""
        self.assertEqual(details(self.view({"Calendar": True, "Work": True})), [
            ("BUSY", utc(2026, 3, 23, 9), utc(2026, 3, 23, 10), "Stand-up", "Room 2"),
            ("BUSY-TENTATIVE", utc(2026, 3, 24, 9), utc(2026, 3, 24, 11), "Lunch, maybe",
             "Café \"Zum Löwen\"; Main St. 5\nBerlin"),
            ("BUSY", utc(2026, 3, 25, 13), utc(2026, 3, 25, 14), "Review", None),
            ("BUSY", utc(2026, 3, 26, 13), utc(2026, 3, 26, 14), "Review", None)])

    def test_timesOnly(self):
        """R-FB-1/3: without details, every calendar chosen gives the document freebusy.vfb gives."""
        view = self.view({"Calendar": False, "Work": False})
        self.assertNotIn(b"X-SUMMARY", view)
        self.assertEqual(view, self.cache.get(self.account, *WINDOW, now=NOW))

    def test_someCalendars(self):
        """R-FB-2: a calendar the caller leaves out contributes nothing; details only where allowed."""
        self.assertEqual(details(self.view({"Work": True})), [
            ("BUSY", utc(2026, 3, 25, 13), utc(2026, 3, 25, 14), "Review", None),
            ("BUSY", utc(2026, 3, 26, 13), utc(2026, 3, 26, 14), "Review", None)])
        self.assertEqual([item[3] for item in details(self.view({"Calendar": False, "Work": True}))],
                         [None, None, "Review", "Review"])

    def test_nothingVisible(self):
        """R-FB-4: no visible calendar gives the empty VFREEBUSY an account with nothing in the window gives."""
        empty = self.view({}, organizer="nobody@example.test")
        self.assertEqual(freeBusyPeriods(empty), {})
        [vfreebusy] = icalendar.Calendar.from_ical(empty).walk("VFREEBUSY")
        self.assertEqual((vfreebusy["DTSTART"].dt, vfreebusy["DTEND"].dt), WINDOW)
        store = self.account.mailStore
        store.createMailbox("Empty", "IPF.Appointment")
        self.assertEqual(self.view({"Empty": True}, organizer="nobody@example.test"), empty)
        self.assertEqual(self.view({"No such calendar": True}, organizer="nobody@example.test"), empty)

    def test_strongerTypeWins(self):
        """R-FB-1: a busy event removes the time it covers from a tentative one, details kept on both."""
        self.append(vevent("c", "DTSTART:20260324T100000Z", "DTEND:20260324T120000Z", "SUMMARY:Call"))
        self.assertEqual(details(self.view({"Calendar": True}))[1:3], [
            ("BUSY-TENTATIVE", utc(2026, 3, 24, 9), utc(2026, 3, 24, 10), "Lunch, maybe",
             "Café \"Zum Löwen\"; Main St. 5\nBerlin"),
            ("BUSY", utc(2026, 3, 24, 10), utc(2026, 3, 24, 12), "Call", None)])

    def test_afterRestart(self):
        """The summaries keep SUMMARY and LOCATION: a new cache gives the same detailed document unparsed."""
        before = self.view({"Calendar": True, "Work": True})
        del self.parsed[:], self.read[:]
        self.assertEqual(self.view({"Calendar": True, "Work": True}, cache=FreeBusyCache()), before)
        self.assertEqual((self.read, self.parsed), ([], []))

    def test_cachedUntilChange(self):
        """A view is computed once per window and calendars until a chosen calendar changes."""
        first = self.view({"Calendar": True})
        computed = self.cache.computed
        self.assertIs(self.view({"Calendar": True}), first)
        self.assertEqual(self.cache.computed, computed)
        self.append(vevent("n", "DTSTART:20260327T090000Z", "DTEND:20260327T100000Z", "SUMMARY:New"))
        self.assertIn("New", [item[3] for item in details(self.view({"Calendar": True}))])
