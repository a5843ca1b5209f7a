# -*- test-case-name: tests.test_calendar -*-
"""
Tests for L{gateway.store.calendar}: free/busy from calendar mailboxes.
"""

import base64
import json
import os
import quopri
import random
import sqlite3
import threading
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import icalendar
from twisted.internet.defer import succeed
from twisted.trial import unittest

from gateway.store import calendar
from gateway.store.calendar import FreeBusyCache, freeBusy, parse, reader, series, summaries
from gateway.store.calendar import periods as calendarPeriods
from tests.support import freeBusyPeriods as periods
from tests.support import makeTestContext

UTC = timezone.utc
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def utc(*args):
    """An aware UTC datetime."""
    return datetime(*args, tzinfo=UTC)


def vevent(uid, *lines):
    """One VEVENT with C{lines} as its properties."""
    return "\r\n".join(("BEGIN:VEVENT", "UID:" + uid, "DTSTAMP:20251201T000000Z") + lines + ("END:VEVENT",))


def vcalendar(*components, method=None):
    """A VCALENDAR text around C{components}, with an iTIP METHOD if given."""
    header = ("BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN")
    if method:
        header += ("METHOD:" + method,)
    return "\r\n".join(header + components + ("END:VCALENDAR", ""))


def message(*components, encoding=None, multipart=False, method=None):
    """
    An RFC 5322 message carrying C{components} in a text/calendar part, in a
    transfer encoding (C{'base64'}, C{'quoted-printable'}) and inside
    multipart/alternative if asked.
    """
    body = vcalendar(*components, method=method).encode("utf-8")
    headers = b"Content-Type: text/calendar; charset=utf-8; method=REQUEST\r\n"
    if encoding == "base64":
        body = base64.encodebytes(body).replace(b"\n", b"\r\n")
        headers += b"Content-Transfer-Encoding: base64\r\n"
    elif encoding == "quoted-printable":
        body = quopri.encodestring(body)
        headers += b"Content-Transfer-Encoding: quoted-printable\r\n"
    if multipart:
        return (b"From: a@example.test\r\nSubject: invite\r\nMIME-Version: 1.0\r\n"
                b"Content-Type: multipart/alternative; boundary=\"XX\"\r\n\r\n"
                b"--XX\r\nContent-Type: text/plain\r\n\r\nYou are invited.\r\n"
                b"--XX\r\n" + headers + b"\r\n" + body + b"\r\n--XX--\r\n")
    return b"From: a@example.test\r\nSubject: invite\r\nMIME-Version: 1.0\r\n" + headers + b"\r\n" + body


class _CalendarTestCase(unittest.TestCase):
    """
    A demo account whose time zone is Europe/Berlin.
    """

    zone = "Europe/Berlin"

    def setUp(self):
        self.context = makeTestContext(self)
        self.context.directory.setAccount("demo@example.test", timezone=self.zone)
        self.account = self.context.realm.accountFor("demo@example.test")
        self.mailbox = self.account.mailStore.getMailbox("Calendar")

    def append(self, *components, **kwargs):
        """Append one calendar message to the Calendar mailbox."""
        return self.mailbox.appendMessage(message(*components, **kwargs))

    def notSummarizedWhenAdded(self):
        """
        Make the mail store leave added messages unsummarized, as messages
        another program put into the Maildir are: for tests of what a
        free/busy request parses.
        """
        self.patch(self.account.mailStore, "_added", lambda mailbox, uids, source=None: None)

    def busy(self, start, end):
        """The periods of the account's free/busy for a window."""
        return periods(freeBusy(self.account, start, end, now=NOW))


class DocumentTests(_CalendarTestCase):
    def test_shape(self):
        """The document is a VCALENDAR 2.0 PUBLISH with one VFREEBUSY carrying organizer, stamp, window and URL."""
        document = freeBusy(self.account, utc(2026, 1, 5), utc(2026, 3, 2), url="http://h/~demo/freebusy.vfb",
                            now=NOW)
        cal = icalendar.Calendar.from_ical(document)
        self.assertEqual(str(cal["VERSION"]), "2.0")
        self.assertEqual(str(cal["METHOD"]), "PUBLISH")
        self.assertIn("PRODID", cal)
        [vfreebusy] = cal.walk("VFREEBUSY")
        self.assertEqual(str(vfreebusy["ORGANIZER"]), "mailto:demo@example.test")
        self.assertEqual(vfreebusy["DTSTAMP"].dt, NOW)
        self.assertEqual(vfreebusy["DTSTART"].dt, utc(2026, 1, 5))
        self.assertEqual(vfreebusy["DTEND"].dt, utc(2026, 3, 2))
        self.assertEqual(str(vfreebusy["URL"]), "http://h/~demo/freebusy.vfb")
        self.assertIn(b"DTSTART:20260105T000000Z\r\n", document)
        self.assertNotIn(b"FREEBUSY", document.replace(b"VFREEBUSY", b""))

    def test_noUrl(self):
        """Without a URL the VFREEBUSY has no URL property; the window is given in UTC."""
        berlin = timezone(timedelta(hours=1))
        document = freeBusy(self.account, datetime(2026, 1, 5, 1, 0, tzinfo=berlin), utc(2026, 1, 6), now=NOW)
        [vfreebusy] = icalendar.Calendar.from_ical(document).walk("VFREEBUSY")
        self.assertNotIn("URL", vfreebusy)
        self.assertIn(b"DTSTART:20260105T000000Z\r\n", document)

    def test_periodSyntax(self):
        """Periods are written as FREEBUSY;FBTYPE=...:start/end in UTC."""
        self.append(vevent("a", "DTSTART:20260105T090000Z", "DTEND:20260105T100000Z"))
        document = freeBusy(self.account, utc(2026, 1, 5), utc(2026, 1, 6), now=NOW)
        self.assertIn(b"\r\nFREEBUSY;FBTYPE=BUSY:20260105T090000Z/20260105T100000Z\r\n", document)

    def test_endBeforeStart(self):
        """A window that ends before it starts is refused."""
        self.assertRaises(ValueError, freeBusy, self.account, utc(2026, 2, 1), utc(2026, 1, 1))


class RecurrenceTests(_CalendarTestCase):
    weekly = ("SUMMARY:weekly", "DTSTART;TZID=Europe/Berlin:20260108T090000",
              "DTEND;TZID=Europe/Berlin:20260108T100000", "RRULE:FREQ=WEEKLY;COUNT=5",
              "EXDATE;TZID=Europe/Berlin:20260115T090000")
    moved = ("RECURRENCE-ID;TZID=Europe/Berlin:20260122T090000",
             "DTSTART;TZID=Europe/Berlin:20260123T140000", "DTEND;TZID=Europe/Berlin:20260123T153000")
    expected = {"BUSY": [(utc(2026, 1, 8, 8), utc(2026, 1, 8, 9)),
                         (utc(2026, 1, 23, 13), utc(2026, 1, 23, 14, 30)),
                         (utc(2026, 1, 29, 8), utc(2026, 1, 29, 9)),
                         (utc(2026, 2, 5, 8), utc(2026, 2, 5, 9))]}

    def test_exdateAndMovedInstance(self):
        """A weekly series loses its EXDATE instance and an override in the same message moves another."""
        self.append(vevent("w1", *self.weekly), vevent("w1", *self.moved))
        self.assertEqual(self.busy(utc(2026, 1, 1), utc(2026, 3, 1)), self.expected)

    def test_overrideInSeparateMessage(self):
        """An override delivered in a message of its own (base64, multipart) moves the instance."""
        self.append(vevent("w1", *self.weekly))
        self.append(vevent("w1", *self.moved), encoding="base64", multipart=True)
        self.assertEqual(self.busy(utc(2026, 1, 1), utc(2026, 3, 1)), self.expected)

    def test_cancelledOverride(self):
        """An override with STATUS:CANCELLED frees that one instance."""
        self.append(vevent("w1", *self.weekly))
        self.append(vevent("w1", "RECURRENCE-ID;TZID=Europe/Berlin:20260129T090000", "STATUS:CANCELLED",
                           "DTSTART;TZID=Europe/Berlin:20260129T090000", "DTEND;TZID=Europe/Berlin:20260129T100000"))
        self.assertEqual(self.busy(utc(2026, 1, 1), utc(2026, 3, 1)),
                         {"BUSY": [(utc(2026, 1, 8, 8), utc(2026, 1, 8, 9)),
                                   (utc(2026, 1, 22, 8), utc(2026, 1, 22, 9)),
                                   (utc(2026, 2, 5, 8), utc(2026, 2, 5, 9))]})

    def test_itipCancelAndReply(self):
        """An iTIP CANCEL of one instance frees it; an attendee's REPLY filed in the calendar changes nothing."""
        self.append(vevent("w1", *self.weekly), vevent("w1", *self.moved), method="REQUEST")
        self.append(vevent("w1", "SEQUENCE:5", "RECURRENCE-ID;TZID=Europe/Berlin:20260129T090000",
                           "DTSTART;TZID=Europe/Berlin:20260129T090000"), method="CANCEL")
        self.append(vevent("w1", "SEQUENCE:9", "DTSTART;TZID=Europe/Berlin:20260108T090000",
                           "ATTENDEE;PARTSTAT=ACCEPTED:mailto:guest@elsewhere.test"), method="REPLY")
        self.assertEqual(self.busy(utc(2026, 1, 1), utc(2026, 3, 1)),
                         {"BUSY": [(utc(2026, 1, 8, 8), utc(2026, 1, 8, 9)),
                                   (utc(2026, 1, 23, 13), utc(2026, 1, 23, 14, 30)),
                                   (utc(2026, 2, 5, 8), utc(2026, 2, 5, 9))]})

    def test_runawaySeriesSkipped(self):
        """A series with far too many occurrences in the window is skipped with a warning, quickly."""
        self.append(vevent("sec", "DTSTART:20260105T110000Z", "DURATION:PT1S", "RRULE:FREQ=SECONDLY"),
                    vevent("min", "DTSTART:20260105T000000Z", "DURATION:PT1M",
                           "RRULE:FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23;"
                           "BYMINUTE=0,5,10,15,20,25,30,35,40,45,50,55"),
                    vevent("ok", "DTSTART:20260105T090000Z", "DURATION:PT1H", "RRULE:FREQ=HOURLY;COUNT=2"))
        self.assertEqual(self.busy(utc(2026, 1, 1), utc(2026, 3, 1)),
                         {"BUSY": [(utc(2026, 1, 5, 9), utc(2026, 1, 5, 11))]})

    def test_estimate(self):
        """Occurrence estimates follow FREQ, INTERVAL, BY-parts, COUNT and RDATE."""
        [weekly] = calendar.parseMessage(message(vevent("w", "DTSTART:20260105T090000Z",
                                                        "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TU",
                                                        "RDATE:20260301T090000Z,20260302T090000Z")))
        self.assertEqual(calendar.estimateOccurrences(weekly.component, timedelta(weeks=8)), (4 + 1) * 2 + 2)
        [counted] = calendar.parseMessage(message(vevent("c", "DTSTART:20260105T090000Z",
                                                         "RRULE:FREQ=SECONDLY;COUNT=10")))
        self.assertEqual(calendar.estimateOccurrences(counted.component, timedelta(weeks=8)), 10)

    def test_rdate(self):
        """RDATE adds instances to a series."""
        self.append(vevent("r", "DTSTART:20260105T100000Z", "DURATION:PT30M",
                           "RDATE:20260107T150000Z,20260109T150000Z"))
        self.assertEqual(self.busy(utc(2026, 1, 1), utc(2026, 2, 1)),
                         {"BUSY": [(utc(2026, 1, 5, 10), utc(2026, 1, 5, 10, 30)),
                                   (utc(2026, 1, 7, 15), utc(2026, 1, 7, 15, 30)),
                                   (utc(2026, 1, 9, 15), utc(2026, 1, 9, 15, 30))]})

    def test_dstSpring(self):
        """A 09:00 Berlin weekly event is 08:00Z before the March DST change and 07:00Z after it."""
        self.append(vevent("d", "DTSTART;TZID=Europe/Berlin:20260316T090000",
                           "DTEND;TZID=Europe/Berlin:20260316T100000", "RRULE:FREQ=WEEKLY"))
        self.assertEqual(self.busy(utc(2026, 3, 16), utc(2026, 4, 7)),
                         {"BUSY": [(utc(2026, 3, 16, 8), utc(2026, 3, 16, 9)),
                                   (utc(2026, 3, 23, 8), utc(2026, 3, 23, 9)),
                                   (utc(2026, 3, 30, 7), utc(2026, 3, 30, 8)),
                                   (utc(2026, 4, 6, 7), utc(2026, 4, 6, 8))]})

    def test_dstAutumnWithVtimezone(self):
        """A series defined by an embedded VTIMEZONE moves back to 08:00Z after the October change."""
        vtimezone = "\r\n".join((
            "BEGIN:VTIMEZONE", "TZID:W. Europe Standard Time",
            "BEGIN:STANDARD", "DTSTART:16010101T030000", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100",
            "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10", "END:STANDARD",
            "BEGIN:DAYLIGHT", "DTSTART:16010101T020000", "TZOFFSETFROM:+0100", "TZOFFSETTO:+0200",
            "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3", "END:DAYLIGHT", "END:VTIMEZONE"))
        self.append(vtimezone, vevent("d", "DTSTART;TZID=W. Europe Standard Time:20261019T090000",
                                      "DTEND;TZID=W. Europe Standard Time:20261019T100000",
                                      "RRULE:FREQ=WEEKLY;COUNT=3"))
        self.assertEqual(self.busy(utc(2026, 10, 1), utc(2026, 11, 1)),
                         {"BUSY": [(utc(2026, 10, 19, 7), utc(2026, 10, 19, 8)),
                                   (utc(2026, 10, 26, 8), utc(2026, 10, 26, 9))]})

    def test_floatingSeriesAcrossDst(self):
        """A floating weekly series follows the account's zone across the DST change."""
        self.append(vevent("f", "DTSTART:20260323T090000", "DTEND:20260323T093000", "RRULE:FREQ=WEEKLY;COUNT=2"))
        self.assertEqual(self.busy(utc(2026, 3, 1), utc(2026, 4, 30)),
                         {"BUSY": [(utc(2026, 3, 23, 8), utc(2026, 3, 23, 8, 30)),
                                   (utc(2026, 3, 30, 7), utc(2026, 3, 30, 7, 30))]})

    def test_latestVersionWins(self):
        """Of two copies of one event the higher SEQUENCE is used."""
        self.append(vevent("v", "SEQUENCE:0", "DTSTART:20260105T090000Z", "DTEND:20260105T100000Z"))
        self.append(vevent("v", "SEQUENCE:1", "DTSTART:20260105T140000Z", "DTEND:20260105T150000Z"))
        self.assertEqual(self.busy(utc(2026, 1, 5), utc(2026, 1, 6)),
                         {"BUSY": [(utc(2026, 1, 5, 14), utc(2026, 1, 5, 15))]})


class TimeTests(_CalendarTestCase):
    def test_allDayInAccountZone(self):
        """An all-day event covers the day from midnight to midnight in the account's zone."""
        self.append(vevent("ad", "DTSTART;VALUE=DATE:20260110", "DTEND;VALUE=DATE:20260111"))
        self.assertEqual(self.busy(utc(2026, 1, 1), utc(2026, 2, 1)),
                         {"BUSY": [(utc(2026, 1, 9, 23), utc(2026, 1, 10, 23))]})

    def test_allDayWithoutEndOverDst(self):
        """A date without DTEND lasts one local day, 23 hours on the day DST starts."""
        self.append(vevent("ad", "DTSTART;VALUE=DATE:20260329"))
        self.assertEqual(self.busy(utc(2026, 3, 1), utc(2026, 4, 1)),
                         {"BUSY": [(utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))]})

    def test_floatingTime(self):
        """A floating time is wall-clock time in the account's zone."""
        self.append(vevent("fl", "DTSTART:20260710T090000", "DTEND:20260710T100000"))
        self.assertEqual(self.busy(utc(2026, 7, 1), utc(2026, 8, 1)),
                         {"BUSY": [(utc(2026, 7, 10, 7), utc(2026, 7, 10, 8))]})

    def test_durationAndZeroLength(self):
        """DURATION gives the end; a date-time without DTEND or DURATION takes no time."""
        self.append(vevent("du", "DTSTART:20260105T090000Z", "DURATION:PT90M"),
                    vevent("zero", "DTSTART:20260106T090000Z"))
        self.assertEqual(self.busy(utc(2026, 1, 1), utc(2026, 2, 1)),
                         {"BUSY": [(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10, 30))]})

    def test_nominalDayDuration(self):
        """A DURATION in days keeps the wall-clock time across a DST change (23 hours that day)."""
        self.append(vevent("nd", "DTSTART;TZID=Europe/Berlin:20260328T120000", "DURATION:P1DT30M"),
                    vevent("ad", "DTSTART;VALUE=DATE:20260310", "DURATION:P2D"))
        self.assertEqual(self.busy(utc(2026, 3, 1), utc(2026, 4, 1)),
                         {"BUSY": [(utc(2026, 3, 9, 23), utc(2026, 3, 11, 23)),
                                   (utc(2026, 3, 28, 11), utc(2026, 3, 29, 10, 30))]})

    def test_clipping(self):
        """Periods that cross the window's edges are cut at them; events outside are left out."""
        self.append(vevent("c1", "DTSTART:20260104T220000Z", "DTEND:20260105T020000Z"),
                    vevent("c2", "DTSTART:20260106T230000Z", "DTEND:20260107T010000Z"),
                    vevent("out", "DTSTART:20260108T090000Z", "DTEND:20260108T100000Z"))
        self.assertEqual(self.busy(utc(2026, 1, 5), utc(2026, 1, 7)),
                         {"BUSY": [(utc(2026, 1, 5), utc(2026, 1, 5, 2)),
                                   (utc(2026, 1, 6, 23), utc(2026, 1, 7))]})

    def test_clippedSeries(self):
        """A long-running series contributes only the instances inside the window."""
        self.append(vevent("daily", "DTSTART:20200101T120000Z", "DTEND:20200101T130000Z", "RRULE:FREQ=DAILY"))
        self.assertEqual(self.busy(utc(2026, 1, 5, 12, 30), utc(2026, 1, 7)),
                         {"BUSY": [(utc(2026, 1, 5, 12, 30), utc(2026, 1, 5, 13)),
                                   (utc(2026, 1, 6, 12), utc(2026, 1, 6, 13))]})


class StatusTests(_CalendarTestCase):
    window = (utc(2026, 1, 5), utc(2026, 1, 6))

    def one(self, *lines):
        """The periods of one event at 09:00-10:00Z with C{lines} added."""
        self.append(vevent("s", "DTSTART:20260105T090000Z", "DTEND:20260105T100000Z", *lines))
        return self.busy(*self.window)

    def test_tentative(self):
        """STATUS:TENTATIVE is BUSY-TENTATIVE."""
        self.assertEqual(self.one("STATUS:TENTATIVE"),
                         {"BUSY-TENTATIVE": [(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10))]})

    def test_confirmed(self):
        """STATUS:CONFIRMED and TRANSP:OPAQUE are BUSY."""
        self.assertEqual(self.one("STATUS:CONFIRMED", "TRANSP:OPAQUE"),
                         {"BUSY": [(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10))]})

    def test_cancelled(self):
        """STATUS:CANCELLED is free."""
        self.assertEqual(self.one("STATUS:CANCELLED"), {})

    def test_transparent(self):
        """TRANSP:TRANSPARENT is free."""
        self.assertEqual(self.one("TRANSP:TRANSPARENT"), {})

    def test_outOfOffice(self):
        """X-MICROSOFT-CDO-BUSYSTATUS:OOF is BUSY-UNAVAILABLE."""
        self.assertEqual(self.one("X-MICROSOFT-CDO-BUSYSTATUS:OOF"),
                         {"BUSY-UNAVAILABLE": [(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10))]})

    def test_cdoFree(self):
        """X-MICROSOFT-CDO-BUSYSTATUS:FREE is free."""
        self.assertEqual(self.one("X-MICROSOFT-CDO-BUSYSTATUS:FREE"), {})

    def test_cdoTentative(self):
        """X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE is BUSY-TENTATIVE."""
        self.assertEqual(self.one("X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE"),
                         {"BUSY-TENTATIVE": [(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10))]})

    def test_declinedByOwnerAlias(self):
        """An invitation the owner declined (under an alias, any case) is free."""
        self.assertEqual(self.one("ORGANIZER:mailto:boss@elsewhere.test",
                                  "ATTENDEE;PARTSTAT=ACCEPTED:mailto:other@example.test",
                                  "ATTENDEE;PARTSTAT=DECLINED:mailto:Demo.User@Example.TEST"), {})

    def test_declinedBySomeoneElse(self):
        """Another attendee's refusal does not free the owner's time."""
        self.assertEqual(self.one("ATTENDEE;PARTSTAT=DECLINED:mailto:other@example.test",
                                  "ATTENDEE;PARTSTAT=ACCEPTED:mailto:demo@example.test"),
                         {"BUSY": [(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10))]})

    def test_ownerTentative(self):
        """The owner's PARTSTAT=TENTATIVE is BUSY-TENTATIVE."""
        self.assertEqual(self.one("ATTENDEE;PARTSTAT=TENTATIVE:mailto:demo@example.test"),
                         {"BUSY-TENTATIVE": [(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10))]})

    def test_todoIgnored(self):
        """VTODOs do not block time."""
        self.append("\r\n".join(("BEGIN:VTODO", "UID:t", "DTSTAMP:20251201T000000Z",
                                 "DTSTART:20260105T090000Z", "DUE:20260105T100000Z", "END:VTODO")))
        self.assertEqual(self.busy(*self.window), {})


class MergeTests(_CalendarTestCase):
    def test_overlapAndTypes(self):
        """Overlapping periods merge per type, and a stronger type's time is not repeated in a weaker one."""
        self.append(vevent("b1", "DTSTART:20260105T090000Z", "DTEND:20260105T110000Z"),
                    vevent("b2", "DTSTART:20260105T100000Z", "DTEND:20260105T120000Z"),
                    vevent("b3", "DTSTART:20260105T120000Z", "DTEND:20260105T123000Z"),
                    vevent("t1", "STATUS:TENTATIVE", "DTSTART:20260105T080000Z", "DTEND:20260105T130000Z"),
                    vevent("o1", "X-MICROSOFT-CDO-BUSYSTATUS:OOF",
                           "DTSTART:20260105T093000Z", "DTEND:20260105T100000Z"))
        self.assertEqual(self.busy(utc(2026, 1, 5), utc(2026, 1, 6)), {
            "BUSY-UNAVAILABLE": [(utc(2026, 1, 5, 9, 30), utc(2026, 1, 5, 10))],
            "BUSY": [(utc(2026, 1, 5, 9), utc(2026, 1, 5, 9, 30)),
                     (utc(2026, 1, 5, 10), utc(2026, 1, 5, 12, 30))],
            "BUSY-TENTATIVE": [(utc(2026, 1, 5, 8), utc(2026, 1, 5, 9)),
                               (utc(2026, 1, 5, 12, 30), utc(2026, 1, 5, 13))],
        })

    def test_subtract(self):
        """subtractPeriods removes covered stretches, splitting a period in two."""
        self.assertEqual(calendar.subtractPeriods([(0, 10), (20, 30)], [(2, 4), (8, 22), (25, 26)]),
                         [(0, 2), (4, 8), (22, 25), (26, 30)])


class SourceTests(_CalendarTestCase):
    def test_encodings(self):
        """Calendar parts are found in quoted-printable bodies and base64 multipart parts."""
        self.append(vevent("q", "SUMMARY:Caf\u00e9 " + "x" * 80, "DTSTART:20260105T090000Z",
                           "DTEND:20260105T100000Z"), encoding="quoted-printable")
        self.append(vevent("b", "DTSTART:20260105T110000Z", "DTEND:20260105T120000Z"),
                    encoding="base64", multipart=True)
        self.assertEqual(self.busy(utc(2026, 1, 5), utc(2026, 1, 6)),
                         {"BUSY": [(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10)),
                                   (utc(2026, 1, 5, 11), utc(2026, 1, 5, 12))]})

    def test_latin1Part(self):
        """A calendar part in another charset is decoded by its charset."""
        body = vcalendar(vevent("l", "SUMMARY:R\u00e9union", "DTSTART:20260105T090000Z",
                                "DTEND:20260105T100000Z")).encode("latin-1")
        self.mailbox.appendMessage(b"Content-Type: text/calendar; charset=iso-8859-1\r\n\r\n" + body)
        self.assertEqual(self.busy(utc(2026, 1, 5), utc(2026, 1, 6)),
                         {"BUSY": [(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10))]})
        [event] = calendar.parseMessage(b"Content-Type: text/calendar; charset=iso-8859-1\r\n\r\n" + body)
        self.assertEqual(str(event.component["SUMMARY"]), "R\u00e9union")

    def test_subfoldersAndOtherClasses(self):
        """Every IPF.Appointment mailbox counts, sub-folders included; other mailboxes do not."""
        store = self.account.mailStore
        store.createMailbox("Calendar/Work", "IPF.Appointment")
        store.getMailbox("Calendar/Work").appendMessage(
            message(vevent("w", "DTSTART:20260105T090000Z", "DTEND:20260105T100000Z")))
        store.getMailbox("INBOX").appendMessage(
            message(vevent("i", "DTSTART:20260105T110000Z", "DTEND:20260105T120000Z")))
        self.assertEqual(self.busy(utc(2026, 1, 5), utc(2026, 1, 6)),
                         {"BUSY": [(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10))]})

    def test_badMessagesSkipped(self):
        """Unparsable calendar data is logged and skipped; the other events still count."""
        self.mailbox.appendMessage(b"Content-Type: text/calendar\r\n\r\nBEGIN:VCALENDAR\r\nthis is not\r\n")
        self.mailbox.appendMessage(b"Subject: just mail\r\n\r\nhello\r\n")
        self.append(vevent("bad", "DTSTART:garbage", "DTEND:20260105T100000Z"))
        self.append(vevent("ok", "DTSTART:20260105T090000Z", "DTEND:20260105T100000Z"))
        self.assertEqual(self.busy(utc(2026, 1, 5), utc(2026, 1, 6)),
                         {"BUSY": [(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10))]})
        self.assertTrue(self.flushLoggedErrors())


class _CountingTestCase(_CalendarTestCase):
    """
    Counts the calendar payloads parsed (C{parsed}) and the messages read
    for free/busy (C{read}).
    """

    window = (utc(2026, 3, 23), utc(2026, 4, 6))

    def setUp(self):
        _CalendarTestCase.setUp(self)
        self.parsed, self.read = [], []
        parseCalendar, readMessage = parse.parseCalendar, summaries._readMessage

        def countingParse(text):
            self.parsed.append(text)
            return parseCalendar(text)

        def countingRead(mailbox, uid):
            self.read.append(uid)
            return readMessage(mailbox, uid)

        self.patch(parse, "parseCalendar", countingParse)
        self.patch(summaries, "_readMessage", countingRead)

    def fill(self):
        """Plain, all-day, floating, declined, day-long across DST, near and far events and series."""
        self.append(vevent("plain", "DTSTART;TZID=Europe/Berlin:20260324T090000",
                           "DTEND;TZID=Europe/Berlin:20260324T100000"))
        self.append(vevent("allday", "DTSTART;VALUE=DATE:20260325", "STATUS:TENTATIVE"))
        self.append(vevent("floating", "DTSTART:20260326T090000", "DTEND:20260326T100000",
                           "X-MICROSOFT-CDO-BUSYSTATUS:OOF"))
        self.append(vevent("declined", "DTSTART:20260327T090000Z", "DTEND:20260327T100000Z",
                           "ATTENDEE;PARTSTAT=DECLINED:mailto:demo.user@example.test"))
        self.append(vevent("dst", "DTSTART;TZID=Europe/Berlin:20260328T003000", "DURATION:P1DT3H"))
        self.append(vevent("far", "DTSTART:20260901T090000Z", "DTEND:20260901T100000Z"))
        self.append(vevent("weekly", "DTSTART;TZID=Europe/Berlin:20260302T150000",
                           "DTEND;TZID=Europe/Berlin:20260302T160000", "RRULE:FREQ=WEEKLY;COUNT=8"))
        self.append(vevent("weekly", "RECURRENCE-ID;TZID=Europe/Berlin:20260330T150000",
                           "DTSTART;TZID=Europe/Berlin:20260331T150000",
                           "DTEND;TZID=Europe/Berlin:20260331T160000"))
        self.append(vevent("ended", "DTSTART:20250101T090000Z", "DTEND:20250101T100000Z",
                           "RRULE:FREQ=DAILY;COUNT=10"))


class CacheTests(_CountingTestCase):
    """
    L{FreeBusyCache} over messages put in as another program would (not
    summarized when added).
    """

    window = (utc(2026, 1, 5), utc(2026, 1, 6))

    def setUp(self):
        _CountingTestCase.setUp(self)
        self.notSummarizedWhenAdded()
        self.cache = FreeBusyCache()

    def test_releaseIdle(self):
        """An account nobody asked about between two releaseIdle calls loses its documents and summary file."""
        self.append(vevent("a", "DTSTART:20260105T090000Z", "DTEND:20260105T100000Z"))
        self.cache.get(self.account, *self.window, now=NOW)
        self.assertEqual(self.cache.releaseIdle(), 0)
        self.cache.get(self.account, *self.window, now=NOW)
        self.assertEqual(self.cache.releaseIdle(), 0)
        self.assertEqual(self.cache.computed, 1)
        summaryFile = self.cache._summaries[self.account.address]
        self.assertEqual(self.cache.releaseIdle(), 1)
        self.assertEqual((self.cache._documents, self.cache._summaries, self.cache._parsed, self.cache._accountLocks),
                         ({}, {}, {}, {}))
        self.assertRaises(sqlite3.ProgrammingError, summaryFile._conn.execute, "SELECT 1")  # closed
        self.assertEqual(self.cache.describe(), ["free/busy cache: 0 documents, 0 answers, parsed events of 0"
                                                 " accounts (0 messages), 0 summary files open"])
        again = self.cache.get(self.account, *self.window, now=NOW)
        self.assertEqual(self.cache.computed, 2)
        self.assertEqual(periods(again), {"BUSY": [(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10))]})

    def test_releaseIdleComputing(self):
        """An idle account whose computation holds its lock is left for the next call, not waited for."""
        self.cache.get(self.account, *self.window, now=NOW)
        self.cache.releaseIdle()
        lock = self.cache._accountLock(self.account.address)
        with lock:
            self.assertEqual(self.cache.releaseIdle(), 0)
        self.assertEqual(len(self.cache._documents), 1)
        self.assertEqual(self.cache.releaseIdle(), 1)
        self.assertEqual(self.cache._documents, {})

    def test_reusedUntilAppend(self):
        """A cached document (with its original DTSTAMP) is served until a message is appended."""
        self.append(vevent("a", "DTSTART:20260105T090000Z", "DTEND:20260105T100000Z"))
        first = self.cache.get(self.account, *self.window, now=NOW)
        second = self.cache.get(self.account, *self.window, now=NOW + timedelta(hours=1))
        self.assertIs(second, first)
        self.assertEqual(self.cache.computed, 1)
        self.append(vevent("b", "DTSTART:20260105T110000Z", "DTEND:20260105T120000Z"))
        third = self.cache.get(self.account, *self.window, now=NOW + timedelta(hours=2))
        self.assertEqual(self.cache.computed, 2)
        self.assertEqual(periods(third), {"BUSY": [(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10)),
                                                   (utc(2026, 1, 5, 11), utc(2026, 1, 5, 12))]})
        [vfreebusy] = icalendar.Calendar.from_ical(third).walk("VFREEBUSY")
        self.assertEqual(vfreebusy["DTSTAMP"].dt, NOW + timedelta(hours=2))
        self.assertEqual(len(self.read), 2)

    def test_parsedOnce(self):
        """After a change only the new message is read, also for another window."""
        for i in range(5):
            self.append(vevent("e%d" % (i,), "DTSTART:2026010%dT090000Z" % (i + 1,),
                               "DTEND:2026010%dT100000Z" % (i + 1,)))
        self.cache.get(self.account, utc(2026, 1, 1), utc(2026, 1, 10))
        self.assertEqual(len(self.read), 5)
        self.append(vevent("new", "DTSTART:20260108T090000Z", "DTEND:20260108T100000Z"))
        document = self.cache.get(self.account, utc(2026, 1, 1), utc(2026, 1, 10))
        self.cache.get(self.account, utc(2026, 1, 2), utc(2026, 1, 10))
        self.assertEqual(len(self.read), 6)
        self.assertEqual(len(periods(document)["BUSY"]), 6)

    def test_expunge(self):
        """An expunged event disappears from the recomputed document."""
        uid = self.append(vevent("a", "DTSTART:20260105T090000Z", "DTEND:20260105T100000Z"))
        self.assertEqual(len(periods(self.cache.get(self.account, *self.window))["BUSY"]), 1)
        self.mailbox.setFlags([uid], ["\\Deleted"], "+")
        self.mailbox.expunge()
        self.assertEqual(periods(self.cache.get(self.account, *self.window)), {})

    def test_newCalendarMailbox(self):
        """Creating a calendar mailbox recomputes the document."""
        self.cache.get(self.account, *self.window)
        self.account.mailStore.createMailbox("Shared Calendar", "IPF.Appointment")
        self.cache.get(self.account, *self.window)
        self.assertEqual(self.cache.computed, 2)

    def test_otherMailboxDoesNotMatter(self):
        """Mail arriving in a non-calendar mailbox leaves the cached document alone."""
        self.cache.get(self.account, *self.window)
        self.account.mailStore.getMailbox("INBOX").appendMessage(b"Subject: hi\r\n\r\nhi\r\n")
        self.cache.get(self.account, *self.window)
        self.assertEqual(self.cache.computed, 1)

    def test_keyedByWindowAndUrl(self):
        """Different windows and URLs are different documents."""
        self.cache.get(self.account, *self.window)
        self.cache.get(self.account, *self.window, url="http://h/a.vfb")
        self.cache.get(self.account, utc(2026, 1, 5), utc(2026, 1, 7))
        self.cache.get(self.account, *self.window, url="http://h/a.vfb")
        self.assertEqual(self.cache.computed, 3)

    def test_maxEntries(self):
        """The least recently used document is dropped beyond maxEntries."""
        cache = FreeBusyCache(maxEntries=2)
        for day in (5, 6, 7, 5):
            cache.get(self.account, utc(2026, 1, day), utc(2026, 1, 8))
        self.assertEqual(cache.computed, 4)

    def test_seriesExpandedOnce(self):
        """A new single event does not expand unchanged series again; a new override re-expands its series."""
        expanded = []
        original = calendarPeriods._instances

        def counting(groups, start, end, seriesCache):
            expanded.append(sorted(group[0].uid for group in groups))
            return original(groups, start, end, seriesCache)

        self.patch(calendarPeriods, "_instances", counting)
        self.append(vevent("w", "DTSTART:20260105T090000Z", "DTEND:20260105T100000Z", "RRULE:FREQ=DAILY;COUNT=3"))
        self.append(vevent("v", "DTSTART:20260105T150000Z", "DTEND:20260105T160000Z", "RRULE:FREQ=DAILY;COUNT=3"))
        window = (utc(2026, 1, 5), utc(2026, 1, 8))
        self.cache.get(self.account, *window)
        self.append(vevent("s", "DTSTART:20260105T120000Z", "DTEND:20260105T130000Z"))
        self.cache.get(self.account, *window)
        self.assertEqual(expanded, [["v", "w"]])
        self.append(vevent("w", "RECURRENCE-ID:20260106T090000Z", "STATUS:CANCELLED",
                           "DTSTART:20260106T090000Z", "DTEND:20260106T100000Z"))
        document = self.cache.get(self.account, *window)
        self.assertEqual(expanded, [["v", "w"], ["w"]])
        self.assertEqual(periods(document)["BUSY"][:4],
                         [(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10)), (utc(2026, 1, 5, 12), utc(2026, 1, 5, 13)),
                          (utc(2026, 1, 5, 15), utc(2026, 1, 5, 16)), (utc(2026, 1, 6, 15), utc(2026, 1, 6, 16))])

    def test_timezoneChange(self):
        """Changing the account's time zone recomputes floating times."""
        self.append(vevent("fl", "DTSTART:20260105T090000", "DTEND:20260105T100000"))
        self.assertEqual(periods(self.cache.get(self.account, *self.window)),
                         {"BUSY": [(utc(2026, 1, 5, 8), utc(2026, 1, 5, 9))]})
        self.context.directory.setAccount("demo@example.test", timezone="UTC")
        self.assertEqual(periods(self.cache.get(self.account, *self.window)),
                         {"BUSY": [(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10))]})


    def test_accountsSideBySide(self):
        """A computation for one account does not wait for another account's."""
        self.context.directory.setAccount("other@example.test")
        other = self.context.realm.accountFor("other@example.test")
        entered, release = threading.Event(), threading.Event()
        compute = calendar.freebusy._compute

        def slow(account, *args):
            if account is self.account:
                entered.set()
                release.wait(10)
            return compute(account, *args)

        self.patch(calendar.freebusy, "_compute", slow)
        blocked = threading.Thread(target=self.cache.get, args=(self.account,) + self.window)
        blocked.start()
        self.addCleanup(blocked.join)
        self.addCleanup(release.set)
        self.assertTrue(entered.wait(10))
        self.assertEqual(periods(self.cache.get(other, *self.window)), {})
        self.assertTrue(blocked.is_alive())

    def test_farEventsNotParsed(self):
        """
        Plain events that need icalendar (here Outlook's zone names) are
        parsed only when a window comes near them.
        """
        self.append(vevent("near", "DTSTART;TZID=W. Europe Standard Time:20260105T100000",
                           "DTEND;TZID=W. Europe Standard Time:20260105T110000"))
        self.append(vevent("far", "DTSTART;TZID=W. Europe Standard Time:20260605T110000",
                           "DTEND;TZID=W. Europe Standard Time:20260605T120000"))
        self.cache.get(self.account, *self.window)
        self.assertEqual(len(self.parsed), 1)
        document = self.cache.get(self.account, utc(2026, 6, 5), utc(2026, 6, 6))
        self.assertEqual(len(self.parsed), 2)
        self.assertEqual(periods(document), {"BUSY": [(utc(2026, 6, 5, 9), utc(2026, 6, 5, 10))]})

    def test_movedAwayVersion(self):
        """An old copy inside the window loses to a newer copy of the same UID moved far outside it."""
        self.append(vevent("m", "SEQUENCE:0", "DTSTART:20260105T090000Z", "DTEND:20260105T100000Z"))
        self.append(vevent("m", "SEQUENCE:1", "DTSTART:20260605T090000Z", "DTEND:20260605T100000Z"))
        self.assertEqual(periods(self.cache.get(self.account, *self.window)), {})


    def test_movedAwayVersionFirst(self):
        """The same, with the newer copy delivered first."""
        self.append(vevent("m", "SEQUENCE:1", "DTSTART:20260605T090000Z", "DTEND:20260605T100000Z"))
        self.append(vevent("m", "SEQUENCE:0", "DTSTART:20260105T090000Z", "DTEND:20260105T100000Z"))
        self.assertEqual(periods(self.cache.get(self.account, *self.window)), {})

    def test_seriesReplacedByPlainVersion(self):
        """A newer plain copy far from the window replaces a series that had instances in it."""
        self.append(vevent("s", "SEQUENCE:0", "DTSTART:20260101T090000Z", "DTEND:20260101T100000Z",
                           "RRULE:FREQ=DAILY;COUNT=10"))
        self.append(vevent("s", "SEQUENCE:1", "DTSTART:20260605T090000Z", "DTEND:20260605T100000Z"))
        self.assertEqual(periods(self.cache.get(self.account, *self.window)), {})

class SummaryTests(_CountingTestCase):
    """
    Parsed events persist in the account's summary file: a new
    L{FreeBusyCache} (a restarted server) parses only what changed.  The
    messages are put in as another program would (not summarized when
    added).
    """

    def setUp(self):
        _CountingTestCase.setUp(self)
        self.notSummarizedWhenAdded()

    def test_restart(self):
        """After a restart the same document comes from the summaries: no message read, nothing parsed."""
        self.fill()
        before = FreeBusyCache().get(self.account, *self.window, now=NOW)
        self.assertEqual(len(self.read), 9)
        del self.parsed[:], self.read[:]
        after = FreeBusyCache().get(self.account, *self.window, now=NOW)
        self.assertEqual(after, before)
        self.assertEqual(self.read, [])
        self.assertEqual(self.parsed, [])  # the series "weekly" and its moved instance were kept as values
        self.assertEqual(periods(after), {
            "BUSY-UNAVAILABLE": [(utc(2026, 3, 26, 8), utc(2026, 3, 26, 9))],
            "BUSY": [(utc(2026, 3, 23, 14), utc(2026, 3, 23, 15)), (utc(2026, 3, 24, 8), utc(2026, 3, 24, 9)),
                     (utc(2026, 3, 27, 23, 30), utc(2026, 3, 29, 2, 30)),
                     (utc(2026, 3, 31, 13), utc(2026, 3, 31, 14))],
            "BUSY-TENTATIVE": [(utc(2026, 3, 24, 23), utc(2026, 3, 25, 23))]})

    def fillSeries(self):
        """
        Series across the March DST changes in Berlin and New York (which
        differ), with EXDATEs (one a date), overrides that move, cancel and
        shorten instances (one in a message of its own, in UTC), RDATEs,
        UNTIL, an all-day and a floating series.
        """
        berlin = "DTSTART;TZID=Europe/Berlin:20260302T090000", "DTEND;TZID=Europe/Berlin:20260302T100000"
        self.append(vevent("berlin", *berlin, "RRULE:FREQ=WEEKLY;BYDAY=MO,TH",
                           "EXDATE;TZID=Europe/Berlin:20260305T090000,20260326T090000",
                           "EXDATE;VALUE=DATE:20260406"),
                    vevent("berlin", "RECURRENCE-ID;TZID=Europe/Berlin:20260330T090000",
                           "DTSTART;TZID=Europe/Berlin:20260331T170000", "DTEND;TZID=Europe/Berlin:20260331T183000"))
        self.append(vevent("berlin", "RECURRENCE-ID:20260312T080000Z", "STATUS:CANCELLED",
                           "DTSTART:20260312T080000Z", "DTEND:20260312T090000Z"), encoding="base64")
        self.append(vevent("berlin", "SEQUENCE:1", "RECURRENCE-ID;TZID=Europe/Berlin:20260319T090000",
                           "DTSTART;TZID=Europe/Berlin:20260319T090000", "DURATION:PT20M", "STATUS:TENTATIVE"))
        self.append(vevent("york", "DTSTART;TZID=America/New_York:20260302T120000", "DURATION:PT45M",
                           "RRULE:FREQ=DAILY;INTERVAL=3;UNTIL=20260410T160000Z",
                           "RDATE;TZID=America/New_York:20260309T230000,20260320T070000",
                           "X-MICROSOFT-CDO-BUSYSTATUS:OOF"))
        self.append(vevent("allday", "DTSTART;VALUE=DATE:20260304", "DTEND;VALUE=DATE:20260305",
                           "RRULE:FREQ=WEEKLY;COUNT=6", "EXDATE;VALUE=DATE:20260318"))
        self.append(vevent("floating", "DTSTART:20260323T233000", "DTEND:20260324T010000",
                           "RRULE:FREQ=DAILY;COUNT=10"))

    def test_seriesAfterRestart(self):
        """After a restart, series with overrides and EXDATEs across DST give the cold document without parsing."""
        self.fillSeries()
        window = (utc(2026, 3, 1), utc(2026, 4, 15))
        cold = freeBusy(self.account, *window, now=NOW)
        self.assertEqual(FreeBusyCache().get(self.account, *window, now=NOW), cold)
        del self.parsed[:], self.read[:]
        self.assertEqual(FreeBusyCache().get(self.account, *window, now=NOW), cold)
        self.assertEqual((self.parsed, self.read), ([], []))
        # Berlin 09:00 is 08:00Z, then 07:00Z from March 29; New York 12:00 is 17:00Z, then 16:00Z from
        # March 8; all-day and floating times are Berlin's.
        self.assertEqual(periods(cold), {
            "BUSY-UNAVAILABLE": [
                (utc(2026, 3, 2, 17), utc(2026, 3, 2, 17, 45)), (utc(2026, 3, 5, 17), utc(2026, 3, 5, 17, 45)),
                (utc(2026, 3, 8, 16), utc(2026, 3, 8, 16, 45)), (utc(2026, 3, 10, 3), utc(2026, 3, 10, 3, 45)),
                (utc(2026, 3, 11, 16), utc(2026, 3, 11, 16, 45)), (utc(2026, 3, 14, 16), utc(2026, 3, 14, 16, 45)),
                (utc(2026, 3, 17, 16), utc(2026, 3, 17, 16, 45)), (utc(2026, 3, 20, 11), utc(2026, 3, 20, 11, 45)),
                (utc(2026, 3, 20, 16), utc(2026, 3, 20, 16, 45)), (utc(2026, 3, 23, 16), utc(2026, 3, 23, 16, 45)),
                (utc(2026, 3, 26, 16), utc(2026, 3, 26, 16, 45)), (utc(2026, 3, 29, 16), utc(2026, 3, 29, 16, 45)),
                (utc(2026, 4, 1, 16), utc(2026, 4, 1, 16, 45)), (utc(2026, 4, 4, 16), utc(2026, 4, 4, 16, 45)),
                (utc(2026, 4, 7, 16), utc(2026, 4, 7, 16, 45)), (utc(2026, 4, 10, 16), utc(2026, 4, 10, 16, 45))],
            "BUSY": [
                (utc(2026, 3, 2, 8), utc(2026, 3, 2, 9)), (utc(2026, 3, 3, 23), utc(2026, 3, 4, 23)),
                (utc(2026, 3, 9, 8), utc(2026, 3, 9, 9)), (utc(2026, 3, 10, 23), utc(2026, 3, 11, 16)),
                (utc(2026, 3, 11, 16, 45), utc(2026, 3, 11, 23)), (utc(2026, 3, 16, 8), utc(2026, 3, 16, 9)),
                (utc(2026, 3, 23, 8), utc(2026, 3, 23, 9)), (utc(2026, 3, 23, 22, 30), utc(2026, 3, 24, 0)),
                (utc(2026, 3, 24, 22, 30), utc(2026, 3, 26, 0)), (utc(2026, 3, 26, 22, 30), utc(2026, 3, 27, 0)),
                (utc(2026, 3, 27, 22, 30), utc(2026, 3, 28, 0)), (utc(2026, 3, 28, 22, 30), utc(2026, 3, 29, 0)),
                (utc(2026, 3, 29, 21, 30), utc(2026, 3, 29, 23)), (utc(2026, 3, 30, 21, 30), utc(2026, 3, 30, 23)),
                (utc(2026, 3, 31, 15), utc(2026, 3, 31, 16, 30)), (utc(2026, 3, 31, 21, 30), utc(2026, 4, 1, 16)),
                (utc(2026, 4, 1, 16, 45), utc(2026, 4, 1, 23)), (utc(2026, 4, 2, 7), utc(2026, 4, 2, 8)),
                (utc(2026, 4, 7, 22), utc(2026, 4, 8, 22)), (utc(2026, 4, 9, 7), utc(2026, 4, 9, 8)),
                (utc(2026, 4, 13, 7), utc(2026, 4, 13, 8))],
            "BUSY-TENTATIVE": [
                (utc(2026, 3, 19, 8), utc(2026, 3, 19, 8, 20))],
        })

    def test_seriesAsRecurringIcalEvents(self):
        """Series expanded directly give the document recurring-ical-events gives for them."""
        self.fillSeries()
        window = (utc(2026, 3, 1), utc(2026, 4, 15))
        direct = freeBusy(self.account, *window, now=NOW)

        def notSimple(group, spanStart, spanStop):
            raise series.NotSimple(group[0].uid)

        self.patch(series, "expand", notSimple)
        self.assertEqual(freeBusy(self.account, *window, now=NOW), direct)

    def test_otherZonesParsedAgain(self):
        """A series in a zone defined only by its VTIMEZONE, or overridden in one, is parsed after a restart."""
        vtimezone = "\r\n".join((
            "BEGIN:VTIMEZONE", "TZID:Custom Zone", "BEGIN:STANDARD", "DTSTART:16010101T000000",
            "TZOFFSETFROM:+0530", "TZOFFSETTO:+0530", "END:STANDARD", "END:VTIMEZONE"))
        self.append(vtimezone, vevent("custom", "DTSTART;TZID=Custom Zone:20260324T090000",
                                      "DTEND;TZID=Custom Zone:20260324T100000", "RRULE:FREQ=DAILY;COUNT=3"))
        self.append(vevent("mixed", "DTSTART:20260323T120000Z", "DTEND:20260323T130000Z",
                           "RRULE:FREQ=DAILY;COUNT=4"))
        self.append(vtimezone, vevent("mixed", "RECURRENCE-ID:20260324T120000Z",
                                      "DTSTART;TZID=Custom Zone:20260324T200000",
                                      "DTEND;TZID=Custom Zone:20260324T203000"))
        before = FreeBusyCache().get(self.account, *self.window, now=NOW)
        del self.parsed[:]
        after = FreeBusyCache().get(self.account, *self.window, now=NOW)
        self.assertEqual(after, before)
        self.assertEqual(len(self.parsed), 3)
        self.assertEqual(periods(after), {"BUSY": [
            (utc(2026, 3, 23, 12), utc(2026, 3, 23, 13)), (utc(2026, 3, 24, 3, 30), utc(2026, 3, 24, 4, 30)),
            (utc(2026, 3, 24, 14, 30), utc(2026, 3, 24, 15)), (utc(2026, 3, 25, 3, 30), utc(2026, 3, 25, 4, 30)),
            (utc(2026, 3, 25, 12), utc(2026, 3, 25, 13)), (utc(2026, 3, 26, 3, 30), utc(2026, 3, 26, 4, 30)),
            (utc(2026, 3, 26, 12), utc(2026, 3, 26, 13))]})

    def test_sniffedSettled(self):
        """A sniffed event parsed for one window is stored as a summary: it is not parsed again after a restart."""
        self.append(vevent("far", "DTSTART;TZID=W. Europe Standard Time:20260901T110000",
                           "DTEND;TZID=W. Europe Standard Time:20260901T120000"))
        september = (utc(2026, 9, 1), utc(2026, 9, 2))
        FreeBusyCache().get(self.account, *self.window, now=NOW)
        self.assertEqual(self.parsed, [])
        FreeBusyCache().get(self.account, *september, now=NOW)
        self.assertEqual(len(self.parsed), 1)
        document = FreeBusyCache().get(self.account, *september, now=NOW)
        self.assertEqual(len(self.parsed), 1)
        self.assertEqual(periods(document), {"BUSY": [(utc(2026, 9, 1, 9), utc(2026, 9, 1, 10))]})

    def test_changedWhileDown(self):
        """Messages replaced or expunged while the server was down are reflected; only new ones are read."""
        old = self.append(vevent("moved", "SEQUENCE:0", "DTSTART:20260324T090000Z", "DTEND:20260324T100000Z"))
        gone = self.append(vevent("gone", "DTSTART:20260325T090000Z", "DTEND:20260325T100000Z"))
        self.append(vevent("kept", "DTSTART:20260326T090000Z", "DTEND:20260326T100000Z"))
        FreeBusyCache().get(self.account, *self.window, now=NOW)
        self.mailbox.setFlags([old, gone], ["\\Deleted"], "+")
        self.mailbox.expunge()
        new = self.append(vevent("moved", "SEQUENCE:1", "DTSTART:20260324T110000Z", "DTEND:20260324T120000Z"))
        del self.read[:]
        document = FreeBusyCache().get(self.account, *self.window, now=NOW)
        self.assertEqual(self.read, [new])
        self.assertEqual(periods(document), {"BUSY": [(utc(2026, 3, 24, 11), utc(2026, 3, 24, 12)),
                                                      (utc(2026, 3, 26, 9), utc(2026, 3, 26, 10))]})
        stored = summaries.SummaryStore.forMailStore(self.account.mailStore)
        self.addCleanup(stored.close)
        self.assertEqual(sorted(stored.load(self.mailbox.uidValidity)), sorted(self.mailbox.uids()))

    def test_deletedCalendar(self):
        """The summaries of a calendar that was deleted are dropped when the account's file is opened."""
        store = self.account.mailStore
        store.createMailbox("Old", "IPF.Appointment")
        uidValidity = store.getMailbox("Old").uidValidity
        store.getMailbox("Old").appendMessage(message(vevent("o", "DTSTART:20260324T090000Z",
                                                             "DTEND:20260324T100000Z")))
        FreeBusyCache().get(self.account, *self.window, now=NOW)
        store.deleteMailbox("Old")
        FreeBusyCache().get(self.account, *self.window, now=NOW)
        stored = summaries.SummaryStore.forMailStore(store)
        self.addCleanup(stored.close)
        self.assertEqual(stored.load(uidValidity), {})

    def test_damagedFile(self):
        """A damaged summary file is replaced, and the document is computed from the messages."""
        self.append(vevent("a", "DTSTART:20260324T090000Z", "DTEND:20260324T100000Z"))
        path = os.path.join(self.account.mailStore.path, summaries.SUMMARY_NAME)
        with open(path, "wb") as f:
            f.write(b"this is not a database" * 100)
        document = FreeBusyCache().get(self.account, *self.window, now=NOW)
        self.assertEqual(periods(document), {"BUSY": [(utc(2026, 3, 24, 9), utc(2026, 3, 24, 10))]})
        self.assertTrue(self.flushLoggedErrors())

    def test_generateInThread(self):
        """generate() computes through runInThread, and answers a cached document without it."""
        calls = []

        def runInThread(f, *args):
            calls.append(f)
            return succeed(f(*args))

        self.append(vevent("a", "DTSTART:20260324T090000Z", "DTEND:20260324T100000Z"))
        cache = FreeBusyCache(runInThread=runInThread)
        first = self.successResultOf(cache.generate(self.account, *self.window, now=NOW))
        second = self.successResultOf(cache.generate(self.account, *self.window, now=NOW))
        self.assertIs(second, first)
        self.assertEqual(len(calls), 1)
        self.assertEqual(periods(first), {"BUSY": [(utc(2026, 3, 24, 9), utc(2026, 3, 24, 10))]})


class DeliverySummaryTests(_CountingTestCase):
    """
    The mail store summarizes a message when it is delivered, appended,
    copied or moved into a calendar mailbox, so that free/busy requests
    (the first one too) read and parse no message.
    """

    def stored(self, mailbox):
        """The summary rows of a mailbox, as a fresh L{summaries.SummaryStore} reads them."""
        store = summaries.SummaryStore.forMailStore(self.account.mailStore)
        self.addCleanup(store.close)
        return store.load(mailbox.uidValidity)

    def test_firstRequest(self):
        """The first request reads no message and parses nothing, and gives the document parsed from the messages."""
        self.fill()
        self.assertEqual(len(self.read), 9)
        del self.parsed[:], self.read[:]
        document = FreeBusyCache().get(self.account, *self.window, now=NOW)
        self.assertEqual((self.parsed, self.read), ([], []))
        self.assertEqual(document, freeBusy(self.account, *self.window, now=NOW))
        self.assertIn((utc(2026, 3, 24, 8), utc(2026, 3, 24, 9)), periods(document)["BUSY"])

    def test_deliveredWhileCached(self):
        """A message delivered after the account's calendars were loaded is taken from its summary."""
        cache = FreeBusyCache()
        self.append(vevent("a", "DTSTART:20260324T090000Z", "DTEND:20260324T100000Z"))
        cache.get(self.account, *self.window, now=NOW)
        self.append(vevent("b", "DTSTART:20260325T090000Z", "DTEND:20260325T100000Z"))
        del self.parsed[:], self.read[:]
        document = cache.get(self.account, *self.window, now=NOW)
        self.assertEqual((self.parsed, self.read), ([], []))
        self.assertEqual(periods(document), {"BUSY": [(utc(2026, 3, 24, 9), utc(2026, 3, 24, 10)),
                                                      (utc(2026, 3, 25, 9), utc(2026, 3, 25, 10))]})

    def test_notACalendar(self):
        """Messages added to other mailboxes are not parsed."""
        inbox = self.account.mailStore.getMailbox("INBOX")
        inbox.appendMessage(message(vevent("a", "DTSTART:20260324T090000Z", "DTEND:20260324T100000Z")))
        self.assertEqual((self.parsed, self.read), ([], []))
        self.assertEqual(self.stored(inbox), {})

    def test_copiedAndMoved(self):
        """An invitation copied from INBOX is read; moved on to another calendar, it keeps its summary."""
        store = self.account.mailStore
        inbox = store.getMailbox("INBOX")
        uid = inbox.appendMessage(message(vevent("a", "DTSTART:20260324T090000Z", "DTEND:20260324T100000Z")))
        [(_, copied)] = inbox.copyTo([uid], self.mailbox)
        self.assertEqual(self.read, [copied])
        store.createMailbox("Team", "IPF.Appointment")
        team = store.getMailbox("Team")
        [(_, moved)] = self.mailbox.moveTo([copied], team)
        self.assertEqual(self.read, [copied])
        self.assertEqual(list(self.stored(team)), [moved])
        del self.read[:]
        document = FreeBusyCache().get(self.account, *self.window, now=NOW)
        self.assertEqual((self.parsed, self.read), ([], []))
        self.assertEqual(periods(document), {"BUSY": [(utc(2026, 3, 24, 9), utc(2026, 3, 24, 10))]})

    def test_unparsable(self):
        """A message that cannot be parsed is stored all the same, and has no events."""
        uid = self.mailbox.appendMessage(message("BEGIN:VEVENT", "DTSTART:garbage", "END:VEVENT"))
        self.assertTrue(self.flushLoggedErrors())
        self.assertEqual(self.mailbox.uids(), [uid])
        self.assertEqual(self.stored(self.mailbox), {uid: []})
        self.assertEqual(periods(FreeBusyCache().get(self.account, *self.window, now=NOW)), {})

    def test_accountsLetGo(self):
        """Beyond maxAccounts the least recently computed account's events are let go, and read again from its file."""
        self.context.directory.setAccount("other@example.test")
        other = self.context.realm.accountFor("other@example.test")
        self.append(vevent("a", "DTSTART:20260324T090000Z", "DTEND:20260324T100000Z"))
        cache = FreeBusyCache(maxAccounts=1)
        cache.get(self.account, *self.window, now=NOW)
        cache.get(other, *self.window, now=NOW)
        self.assertEqual(list(cache._parsed), [other.address])
        self.assertEqual(list(cache._summaries), [other.address])
        del self.read[:]
        document = cache.get(self.account, utc(2026, 3, 24), utc(2026, 3, 25), now=NOW)
        self.assertEqual((self.parsed, self.read), ([], []))
        self.assertEqual(periods(document), {"BUSY": [(utc(2026, 3, 24, 9), utc(2026, 3, 24, 10))]})
        self.assertEqual(list(cache._parsed), [self.account.address])

    def test_messagesLetGo(self):
        """Beyond maxMessages the least recently computed account is let go, but never the last one."""
        self.context.directory.setAccount("other@example.test")
        other = self.context.realm.accountFor("other@example.test")
        for day in (24, 25):
            self.append(vevent("d%d" % (day,), "DTSTART:202603%dT090000Z" % (day,), "DTEND:202603%dT100000Z" % (day,)))
        cache = FreeBusyCache(maxMessages=1)
        cache.get(self.account, *self.window, now=NOW)
        self.assertEqual(list(cache._parsed), [self.account.address])
        other.mailStore.getMailbox("Calendar").appendMessage(
            message(vevent("o", "DTSTART:20260324T090000Z", "DTEND:20260324T100000Z")))
        cache.get(other, *self.window, now=NOW)
        self.assertEqual(list(cache._parsed), [other.address])

    def test_fileDeleted(self):
        """
        When the summary file is deleted while the server runs, the next
        message starts a new one, and the cache reads it from there.
        """
        cache = FreeBusyCache()
        self.append(vevent("a", "DTSTART:20260324T090000Z", "DTEND:20260324T100000Z"))
        cache.get(self.account, *self.window, now=NOW)
        path = os.path.join(self.account.mailStore.path, summaries.SUMMARY_NAME)
        for suffix in ("", "-wal", "-shm"):
            os.remove(path + suffix)
        uid = self.append(vevent("b", "DTSTART:20260325T090000Z", "DTEND:20260325T100000Z"))
        self.assertEqual(list(self.stored(self.mailbox)), [uid])
        del self.read[:]
        document = cache.get(self.account, *self.window, now=NOW)
        self.assertEqual((self.parsed, self.read), ([], []))
        self.assertEqual(periods(document), {"BUSY": [(utc(2026, 3, 24, 9), utc(2026, 3, 24, 10)),
                                                      (utc(2026, 3, 25, 9), utc(2026, 3, 25, 10))]})

    def test_fileBusy(self):
        """While a computation writes the summary file, a message is stored at once and read by the next request."""
        self.append(vevent("a", "DTSTART:20260324T090000Z", "DTEND:20260324T100000Z"))
        writer = sqlite3.connect(os.path.join(self.account.mailStore.path, summaries.SUMMARY_NAME),
                                 isolation_level=None)
        self.addCleanup(writer.close)
        writer.execute("BEGIN IMMEDIATE")
        uid = self.append(vevent("b", "DTSTART:20260325T090000Z", "DTEND:20260325T100000Z"))
        writer.execute("ROLLBACK")
        self.assertNotIn(uid, self.stored(self.mailbox))
        del self.read[:]
        document = FreeBusyCache().get(self.account, *self.window, now=NOW)
        self.assertEqual(self.read, [uid])
        self.assertEqual(periods(document), {"BUSY": [(utc(2026, 3, 24, 9), utc(2026, 3, 24, 10)),
                                                      (utc(2026, 3, 25, 9), utc(2026, 3, 25, 10))]})

    def test_summaryFailure(self):
        """When the summary cannot be written the message is still stored, and a request parses it."""
        def failing(*args):
            raise OSError("disk full")

        self.patch(summaries, "summarizeAdded", failing)
        self.append(vevent("a", "DTSTART:20260324T090000Z", "DTEND:20260324T100000Z"))
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        document = FreeBusyCache().get(self.account, *self.window, now=NOW)
        self.assertEqual(periods(document), {"BUSY": [(utc(2026, 3, 24, 9), utc(2026, 3, 24, 10))]})


class OccurrenceTests(unittest.TestCase):
    def test_publicFallback(self):
        """Occurrences without the expected internals are read through their public as_component."""
        component = icalendar.Event()
        component.add("DTSTART", utc(2026, 1, 5, 9))
        component.add("DURATION", timedelta(hours=1))

        class Occurrence:
            def as_component(self, keep):
                return component

        self.assertEqual(calendarPeriods._occurrenceOf(Occurrence()),
                         (utc(2026, 1, 5, 9), timedelta(hours=1), component, utc(2026, 1, 5, 9)))


class SeriesValueTests(unittest.TestCase):
    def test_timesAsValues(self):
        """Dates, floating times and times in IANA zones are kept as values; other zones are not."""
        berlin = datetime(2026, 3, 29, 3, 30, tzinfo=ZoneInfo("Europe/Berlin"))
        zulu = datetime(2026, 3, 29, 1, tzinfo=ZoneInfo("UTC"))  # as icalendar reads ...Z
        for value in (date(2026, 3, 29), datetime(2026, 3, 29, 2, 30), berlin, zulu):
            self.assertTrue(series.encodable(value), value)
            self.assertEqual(series.decodeTime(json.loads(json.dumps(series.encodeTime(value)))), value)
        restored = series.decodeTime(series.encodeTime(berlin))
        self.assertIs(restored.tzinfo, berlin.tzinfo)
        self.assertFalse(series.encodable(datetime(2026, 3, 29, 3, 30, tzinfo=timezone(timedelta(hours=5)))))
        self.assertFalse(series.encodable(utc(2026, 3, 29, 1)))

    def test_notSimple(self):
        """RDATE periods, ranges and recurring overrides are left to recurring-ical-events."""
        start = ("DTSTART:20260105T090000Z", "DTEND:20260105T100000Z")
        cases = {
            "period": vevent("p", *start, "RDATE;VALUE=PERIOD:20260107T090000Z/PT1H"),
            "range": vevent("r", "RECURRENCE-ID;RANGE=THISANDFUTURE:20260106T090000Z", *start),
            "recurring override": vevent("o", "RECURRENCE-ID:20260106T090000Z", *start, "RRULE:FREQ=DAILY"),
        }
        for name, component in cases.items():
            [event] = calendar.parseMessage(message(component))
            self.assertFalse(event.simple, name)
        [event] = calendar.parseMessage(message(vevent("s", *start, "RRULE:FREQ=DAILY", "EXDATE:20260106T090000Z")))
        self.assertTrue(event.simple)


class SniffTests(unittest.TestCase):
    event = vcalendar("BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:16010101T030000\r\n"
                      "TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE",
                      vevent("some-\r\n uid", "DTSTART;TZID=Europe/Berlin:20260105T090000",
                             "DTEND;VALUE=DATE:20260107"), method="REQUEST")

    def test_plainEvent(self):
        """One plain event is sniffed: its unfolded UID and bounds a day beyond its times."""
        unparsed = calendar.sniff(self.event)
        self.assertEqual(unparsed.uid, "some-uid")
        self.assertTrue(unparsed.near(datetime(2026, 1, 7, 12), datetime(2026, 1, 8)))
        self.assertFalse(unparsed.near(datetime(2026, 1, 8, 3), datetime(2026, 1, 9)))
        self.assertFalse(unparsed.near(datetime(2026, 1, 1), datetime(2026, 1, 4, 6)))
        [event] = unparsed.events()
        self.assertEqual(event.uid, "some-uid")

    def test_parsedNow(self):
        """Series, overrides, durations, replies and several events are not sniffed."""
        for old, new in [("DTSTART;TZID", "RRULE:FREQ=DAILY\r\nDTSTART;TZID"),
                         ("DTSTART;TZID", "RECURRENCE-ID:20260105T080000Z\r\nDTSTART;TZID"),
                         ("DTEND;VALUE=DATE:20260107", "DURATION:PT1H"),
                         ("METHOD:REQUEST", "METHOD:REPLY"),
                         ("END:VEVENT", "END:VEVENT\r\nBEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT"),
                         ("DTSTART;TZID=Europe/Berlin:20260105T090000", "DTSTART:tomorrow")]:
            self.assertIsNone(calendar.sniff(self.event.replace(old, new)), new)


class MimeTests(unittest.TestCase):
    """
    The C{text/calendar} payloads of a message: plain single-part messages
    are read without the C{email} package's parser, with the same result.
    """

    calendar = vcalendar(vevent("m", "DTSTART:20260105T090000Z", "SUMMARY:Caf\u00e9")).encode("utf-8")

    def assertSame(self, data, fast=True):
        """C{calendarParts} equals what the C{email} package gives, by the fast path when C{fast}."""
        expected = parse._mimeParts(data)
        self.assertEqual(parse.calendarParts(data), expected)
        if fast:
            self.assertEqual(parse._singlePart(data), expected)
        else:
            self.assertIsNone(parse._singlePart(data))
        return expected

    def test_plain(self):
        """CRLF or LF, folded and quoted parameters, upper-case types, every simple encoding."""
        latin = self.calendar.decode("utf-8").encode("latin-1")
        cases = [
            b"Subject: x\r\nContent-Type: text/calendar; charset=utf-8; method=REQUEST\r\n\r\n" + self.calendar,
            b"Subject: x\nContent-Type: TEXT/Calendar;\n\tcharset=\"UTF-8\"\n\n" + self.calendar.replace(b"\r\n", b"\n"),
            b"Content-Type: application/ics; charset=ISO-8859-1\r\nContent-Transfer-Encoding: 8BIT\r\n\r\n" + latin,
            b"Content-Type: text/calendar\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(self.calendar).replace(b"\n", b"\r\n"),
            b"Content-Type: text/calendar; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            + quopri.encodestring(self.calendar),
            b"Content-Type: text/calendar; charset=x-unknown\r\n\r\n" + self.calendar,
        ]
        for data in cases:
            [text] = self.assertSame(data)
            self.assertIn("SUMMARY:Caf\u00e9", text)

    def test_notCalendar(self):
        """A message of another type, or without a Content-Type, has no calendar payload."""
        self.assertEqual(self.assertSame(b"Subject: x\r\nContent-Type: text/plain\r\n\r\n" + self.calendar), [])
        self.assertEqual(self.assertSame(b"Subject: x\r\n\r\n" + self.calendar), [])

    def test_others(self):
        """Multipart messages and unusual MIME fields go through the C{email} package."""
        multipart = message(vevent("m", "DTSTART:20260105T090000Z"), multipart=True)
        self.assertEqual(len(self.assertSame(multipart, fast=False)), 1)
        for head in (b"Content-Type: text/calendar; charset*=utf-8''x\r\n",
                     b"Content-Type: text/calendar\r\nContent-Type: text/plain\r\n",
                     b"Content-Type: text/calendar\r\nContent-Transfer-Encoding: base64 (yes)\r\n",
                     b"Content-Type: text/calendar\r\nnot a header line\r\n",
                     b"\r\nContent-Type: text/calendar\r\n",
                     b"Content-Type: text/calendar\r\nContent-Transfer-Encoding: base64\r\n"):
            self.assertSame(head + b"\r\n" + self.calendar, fast=False)


class ReaderTests(unittest.TestCase):
    """
    L{reader.readPlainEvent} reads what icalendar reads, or gives up: a
    randomized comparison over many shapes of plain event.
    """

    zones = ("Europe/Berlin", "America/New_York", "Asia/Kolkata", "\"Europe/Berlin\"", "W. Europe Standard Time",
             "Mars/Olympus_Mons")
    attendees = ("ATTENDEE;PARTSTAT=ACCEPTED:mailto:demo@example.test",
                 "ATTENDEE;CN=\"Doe, John: PhD\";partstat=declined:MAILTO:Demo@Example.test",
                 "ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=\"TENTATIVE\":mailto:other@example.org",
                 "ATTENDEE;DELEGATED-FROM=\"mailto:a@x\",\"mailto:b@x\":mailto:c@example.org",
                 "ATTENDEE:mailto:plain@example.org ",
                 "attendee;partstat=needs-action:mailto:lower@example.org")

    def time(self, rng, name, moment):
        choice = rng.randrange(7)
        if choice == 0:
            return "%s;VALUE=DATE:%s" % (name, moment.strftime("%Y%m%d"))
        if choice == 1:
            return "%s:%s" % (name, moment.strftime("%Y%m%d"))
        if choice == 2:
            return "%s:%s" % (name, moment.strftime("%Y%m%dT%H%M%S"))
        if choice == 3:
            return "%s:%sZ" % (name, moment.strftime("%Y%m%dT%H%M%S"))
        if choice == 4:
            return "%s;VALUE=DATE-TIME;TZID=%s:%s" % (name, rng.choice(self.zones), moment.strftime("%Y%m%dT%H%M%S"))
        return "%s;TZID=%s:%s" % (name, rng.choice(self.zones), moment.strftime("%Y%m%dT%H%M%S"))

    def payload(self, rng):
        start = datetime(2026, 1, 1) + timedelta(days=rng.randrange(300), hours=rng.randrange(24),
                                                 minutes=rng.choice((0, 30)))
        lines = ["UID:" + rng.choice(("uid-%d@example.org" % rng.randrange(1000),) * 6 + ("with\\,comma", "x ", ""))]
        lines.append(self.time(rng, rng.choice(("DTSTART", "dtstart")), start))
        if rng.random() < 0.8:
            lines.append(self.time(rng, "DTEND", start + timedelta(hours=rng.randrange(1, 30))))
        for name, values in (("STATUS", ("CONFIRMED", "TENTATIVE", "cancelled", "CONFIRMED", "TENTATIVE\\;")),
                             ("TRANSP", ("OPAQUE", "TRANSPARENT")),
                             ("X-MICROSOFT-CDO-BUSYSTATUS", ("BUSY", "OOF", "FREE", "tentative")),
                             ("SEQUENCE", ("0", "3", "+2", "x")),
                             ("DTSTAMP", ("20251201T000000Z", "20251201T000000", "20251201")),
                             ("LAST-MODIFIED", ("20251202T101010Z",))):
            if rng.random() < 0.4:
                lines.append("%s:%s" % (name, rng.choice(values)))
        lines.extend(rng.sample(self.attendees, rng.randrange(4)))
        for name, values in (("SUMMARY", ("Stand-up", "Lunch\\, Bob", "Été: plan", "a;b", "")),
                             ("LOCATION", ("Room 2", "Main St. 5\\nBerlin", "\"quoted\""))):
            if rng.random() < 0.5:
                lines.append("%s%s:%s" % (name, rng.choice(("", ";LANGUAGE=en")), rng.choice(values)))
        lines.append("DESCRIPTION:Agenda: one\\, two\\; three\\nfour")
        lines.append("X-ALT-DESC;FMTTYPE=text/html:<p>a: b</p>")
        if rng.random() < 0.1:
            lines.append(rng.choice(("RRULE:FREQ=DAILY;COUNT=3", "DURATION:PT1H", "RECURRENCE-ID:20260105T090000Z",
                                     lines[1], "STATUS:CONFIRMED", "TRANSP:OPAQUE")))
        rng.shuffle(lines)
        if rng.random() < 0.3:
            lines[rng.randrange(len(lines)):0] = [
                "BEGIN:VALARM", "ACTION:EMAIL", "ATTENDEE;PARTSTAT=DECLINED:mailto:demo@example.test",
                "STATUS:CANCELLED", "TRIGGER:-PT15M", "END:VALARM"]
        if rng.random() < 0.3:
            lines = ["\r\n ".join(line[i:i + 20] for i in range(0, len(line), 20)) for line in lines]
        components = ["\r\n".join(["BEGIN:VEVENT"] + lines + ["END:VEVENT"])]
        if rng.random() < 0.3:
            components.insert(0, "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:16010101T030000\r\n"
                                 "TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE")
        if rng.random() < 0.05:
            components.append(vevent("second", "DTSTART:20260105T090000Z"))
        text = vcalendar(*components, method=rng.choice((None, None, "REQUEST", "PUBLISH", "CANCEL", "REPLY",
                                                         "request", "ADD")))
        if rng.random() < 0.3:
            text = text.replace("\r\n", "\n")
        return text

    def test_sameAsIcalendar(self):
        """Whatever the reader reads, icalendar reads the same (as stored in the summaries)."""
        rng = random.Random(11)
        read = 0
        for case in range(600):
            text = self.payload(rng)
            fast = reader.readPlainEvent(text)
            if fast is None:
                continue
            read += 1
            expected = [summaries.encodeItems([event]) for event in parse.parseCalendar(text)]
            got = [summaries.encodeItems([parse._Event.restored(uid, start, end, None, version, traits,
                                                                details=details, method=method)])
                   for uid, start, end, version, traits, details, method in fast]
            self.assertEqual(got, expected, "case %d:\n%s" % (case, text))
        self.assertGreater(read, 250)

    def test_givesUp(self):
        """Series, overrides, durations, zones that are not IANA names and repeated properties are left to icalendar."""
        for lines in (("DTSTART:20260105T090000Z", "RRULE:FREQ=DAILY"),
                      ("DTSTART:20260105T090000Z", "RECURRENCE-ID:20260105T090000Z"),
                      ("DTSTART:20260105T090000Z", "DURATION:PT1H"),
                      ("DTSTART;TZID=W. Europe Standard Time:20260105T090000",),
                      ("DTSTART:20260105T090000Z", "DTSTART:20260106T090000Z"),
                      ("DTSTART:20260105T090000Z", "STATUS:A\\,B"),
                      ("DTEND:20260105T090000Z",)):
            self.assertIsNone(reader.readPlainEvent(vcalendar(vevent("u", *lines))), lines)
        self.assertEqual(reader.readPlainEvent(vcalendar(vevent("u", "DTSTART:20260105T090000Z"), method="REPLY")),
                         [])
