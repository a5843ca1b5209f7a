# -*- test-case-name: tests.test_imap_xmapi_calendar -*-
"""
Tests for L{gateway.imap.xmapi_calendar}: FETCH XINSTANCES and SEARCH
XOVERLAPS, and the XFREEBUSY command, as docs/xmapi.md sections 4.3, 5 and 7
say, each named after its rule.
"""

import re

from twisted.internet.defer import maybeDeferred
from twisted.trial import unittest

from gateway.imap import xmapi_calendar
from gateway.store.calendar import FreeBusyCache
from tests.support import freeBusyPeriods
from tests.test_calendar import message, utc, vcalendar, vevent
from tests.test_imap_mailbox import append
from tests.test_imap_selected import SelectedTestMixin
from tests.test_imap_xmapi import CUSTOM

WINDOW = b'"20260302T000000Z" "20260330T000000Z"'

#: A weekly series on Mondays 09:00-10:00 UTC, the second Monday excluded,
#: the third moved to 14:00 and transparent.
SERIES = message(
    vevent("weekly", "DTSTART:20260302T090000Z", "DTEND:20260302T100000Z", "RRULE:FREQ=WEEKLY;COUNT=6",
           "EXDATE:20260309T090000Z", "SUMMARY:Stand-up"),
    vevent("weekly", "RECURRENCE-ID:20260316T090000Z", "DTSTART:20260316T140000Z", "DTEND:20260316T150000Z",
           "TRANSP:TRANSPARENT", "SUMMARY:Stand-up (moved)"))
#: A single tentative event.
SINGLE = message(vevent("one", "DTSTART:20260304T120000Z", "DTEND:20260304T130000Z", "STATUS:TENTATIVE"))
#: An all-day event on Saturday 2026-03-28 (Europe/Berlin is still UTC+1 that day).
ALLDAY = message(vevent("day", "DTSTART;VALUE=DATE:20260328", "DTEND;VALUE=DATE:20260329"))
#: A cancelled event (a free occurrence).
CANCELLED = message(vevent("off", "DTSTART:20260305T090000Z", "DTEND:20260305T100000Z", "STATUS:CANCELLED"))
#: An event far from the window.
FAR = message(vevent("far", "DTSTART:20270105T090000Z", "DTEND:20270105T100000Z"))
MAIL = b"From: a@example.test\r\nSubject: hi\r\n\r\nhello\r\n"


def synchronously(f, *args, **kwargs):
    return maybeDeferred(f, *args, **kwargs)


class CalendarMixin(SelectedTestMixin):
    """
    The demo account (zone Europe/Berlin) with its Calendar selected, the
    engine computing synchronously.
    """

    def connect(self, *args, **kwargs):
        session = SelectedTestMixin.connect(self, *args, **kwargs)
        self.context.directory.setAccount("demo@example.test", timezone="Europe/Berlin")
        self.context.freeBusyCache = FreeBusyCache(runInThread=synchronously)
        return session

    def selectCalendar(self, *messages, mailbox=b"Calendar"):
        self.login()
        for text in messages:
            append(self, mailbox=mailbox, message=text)
        out = self.send(b"s SELECT " + mailbox)
        self.assertIn(b"s OK", out)
        self.mailbox = self.session.view.mailbox


class FetchXinstancesTests(CalendarMixin, unittest.TestCase):
    def test_R_INST_1_series(self):
        """R-INST-1/2: a weekly series lists its occurrences in start order: EXDATE gone, the override moved and FREE."""
        self.selectCalendar(SERIES)
        out = self.send(b"a FETCH 1 (XINSTANCES (" + WINDOW + b"))")
        self.assertIn(b'* 1 FETCH (UID 1 XINSTANCES ('
                      b'("20260302T090000Z" "20260302T100000Z" BUSY "20260302T090000Z") '
                      b'("20260316T140000Z" "20260316T150000Z" FREE "20260316T090000Z") '
                      b'("20260323T090000Z" "20260323T100000Z" BUSY "20260323T090000Z")))\r\n', out)
        self.assertIn(b"a OK", out)

    def test_R_INST_1_singleAndAllDay(self):
        """R-INST-1/2: a single event has NIL recurrence ID and its own busy type; all-day is midnight to midnight in the zone."""
        self.selectCalendar(SINGLE, ALLDAY)
        out = self.send(b"a UID FETCH 1:2 (XINSTANCES (" + WINDOW + b"))")
        self.assertIn(b'* 1 FETCH (UID 1 XINSTANCES (("20260304T120000Z" "20260304T130000Z" BUSY-TENTATIVE NIL)))',
                      out)
        self.assertIn(b'* 2 FETCH (UID 2 XINSTANCES (("20260327T230000Z" "20260328T230000Z" BUSY NIL)))', out)

    def test_R_INST_2_cancelled(self):
        """R-INST-2: a cancelled occurrence is listed FREE; one outside the window not at all."""
        self.selectCalendar(CANCELLED, FAR)
        out = self.send(b"a FETCH 1:2 (XINSTANCES (" + WINDOW + b"))")
        self.assertIn(b'* 1 FETCH (UID 1 XINSTANCES (("20260305T090000Z" "20260305T100000Z" FREE NIL)))', out)
        self.assertIn(b"* 2 FETCH (UID 2 XINSTANCES ())", out)

    def test_R_INST_3(self):
        """R-INST-3: a message that is not a calendar item, and any message of a mail folder, answers XINSTANCES ()."""
        self.selectCalendar(MAIL)
        self.assertIn(b"* 1 FETCH (UID 1 XINSTANCES ())", self.send(b"a FETCH 1 (XINSTANCES (" + WINDOW + b"))"))
        append(self, message=SINGLE)
        self.assertIn(b"b OK", self.send(b"b SELECT INBOX"))
        self.assertIn(b"* 1 FETCH (UID 1 XINSTANCES ())", self.send(b"c FETCH 1 (XINSTANCES (" + WINDOW + b"))"))

    def test_R_INST_4(self):
        """R-INST-4: a window past 366 days, an empty one or a malformed time is BAD, and the session goes on."""
        self.selectCalendar(SINGLE)
        self.assertIn(b"a BAD", self.send(b'a FETCH 1 (XINSTANCES ("20260101T000000Z" "20270103T000000Z"))'))
        self.assertIn(b"b BAD", self.send(b'b FETCH 1 (XINSTANCES ("20260301T000000Z" "20260301T000000Z"))'))
        self.assertIn(b"c BAD", self.send(b'c FETCH 1 (XINSTANCES ("2026-03-01" "20260302T000000Z"))'))
        self.assertIn(b"d BAD", self.send(b"d FETCH 1 (XINSTANCES)"))
        self.assertIn(b"e BAD", self.send(b'e FETCH 1 (XINSTANCES ("20260301T000000Z"))'))
        self.assertIn(b"f OK", self.send(b'f FETCH 1 (XINSTANCES ("20260101T000000Z" "20270102T000000Z"))'))

    def test_withOtherItems(self):
        """XINSTANCES combines with other items (XPROPS, FLAGS) and does not set \\Seen."""
        self.selectCalendar(SINGLE)
        out = self.send(b"a FETCH 1 (FLAGS XINSTANCES (" + WINDOW + b") XPROPS (PidTagSubject))")
        self.assertIn(b'* 1 FETCH (UID 1 FLAGS (\\Recent) XINSTANCES (("20260304T120000Z" "20260304T130000Z" '
                      b'BUSY-TENTATIVE NIL)) XPROPS (PidTagSubject "invite"))', out)
        self.assertNotIn("\\Seen", self.mailbox.messages([1])[0].flags)

    def test_installed(self):
        """The IMAP factory's registries hold XINSTANCES and XOVERLAPS."""
        self.connect()
        self.assertIn("XINSTANCES", self.factory.registries.fetch)
        self.assertIsNotNone(self.factory.registries.search.get("XOVERLAPS"))

    def test_sharedEngine(self):
        """The rows use the service's shared engine (context.freeBusyCache)."""
        self.connect()
        self.assertIs(xmapi_calendar.calendarEngine(self.session), self.context.freeBusyCache)


class SearchXoverlapsTests(CalendarMixin, unittest.TestCase):
    def fill(self):
        # UIDs: 1 series, 2 single, 3 all-day, 4 cancelled, 5 far, 6 mail
        self.selectCalendar(SERIES, SINGLE, ALLDAY, CANCELLED, FAR, MAIL)

    def test_R_SRCH_4(self):
        """R-SRCH-4: the items with an occurrence in the window match, free ones too; far and non-calendar ones not."""
        self.fill()
        out = self.send(b"a UID SEARCH XOVERLAPS " + WINDOW)
        self.assertIn(b"* SEARCH 1 2 3 4\r\n", out)
        self.assertIn(b"a OK", out)
        self.assertIn(b"* SEARCH 2 4\r\n", self.send(b'b SEARCH XOVERLAPS "20260304T000000Z" "20260306T000000Z"'))
        self.assertIn(b"* SEARCH\r\n", self.send(b'c SEARCH XOVERLAPS "20260306T000000Z" "20260308T000000Z"'))

    def test_R_SRCH_5_esearch(self):
        """R-SRCH-5: XOVERLAPS works with ESEARCH RETURN (MIN MAX COUNT ALL) and UID SEARCH."""
        self.fill()
        out = self.send(b"a UID SEARCH RETURN (MIN MAX COUNT ALL) XOVERLAPS " + WINDOW)
        self.assertIn(b'* ESEARCH (TAG "a") UID MIN 1 MAX 4 COUNT 4 ALL 1:4\r\n', out)

    def test_R_SRCH_5_combined(self):
        """R-SRCH-5: XOVERLAPS combines with other keys, OR, NOT and parentheses."""
        self.fill()
        self.send(b"f STORE 2 +FLAGS (\\Flagged)")
        self.assertIn(b"* SEARCH 5 6\r\n", self.send(b"a SEARCH NOT XOVERLAPS " + WINDOW))
        self.assertIn(b"* SEARCH 2\r\n", self.send(b"b SEARCH FLAGGED XOVERLAPS " + WINDOW))
        self.assertIn(b"* SEARCH 2 4 5\r\n", self.send(
            b'c SEARCH OR XOVERLAPS "20260304T000000Z" "20260306T000000Z" (XOVERLAPS "20270101T000000Z" '
            b'"20270201T000000Z")'))
        self.assertIn(b"* SEARCH 1 4\r\n", self.send(b"d SEARCH XOVERLAPS " + WINDOW + b" NOT SUBJECT x 1:4 NOT 2:3"))

    def test_R_SRCH_5_sort(self):
        """R-SRCH-5: SORT takes XOVERLAPS in its search program."""
        self.fill()
        out = self.send(b"a UID SORT (REVERSE ARRIVAL) UTF-8 XOVERLAPS " + WINDOW)
        self.assertIn(b"* SORT 4 3 2 1\r\n", out)

    def test_R_SRCH_6(self):
        """R-SRCH-6: XOVERLAPS reads no message file (summaries answer it)."""
        self.fill()
        opened = []
        mailbox = self.mailbox
        original = mailbox.openMessage
        mailbox.openMessage = lambda uid: opened.append(uid) or original(uid)
        self.context.freeBusyCache = FreeBusyCache(runInThread=synchronously)
        self.assertIn(b"* SEARCH 1 2 3 4\r\n", self.send(b"a SEARCH XOVERLAPS " + WINDOW))
        self.assertEqual(opened, [])

    def test_badWindow(self):
        """R-INST-4 for XOVERLAPS: a bad window is BAD and the session goes on."""
        self.fill()
        self.assertIn(b"a BAD", self.send(b'a SEARCH XOVERLAPS "20260101T000000Z" "20270103T000000Z"'))
        self.assertIn(b"b BAD", self.send(b'b SEARCH XOVERLAPS "20260101T000000Z"'))
        self.assertIn(b"c BAD", self.send(b'c SEARCH XOVERLAPS "x" "y"'))
        self.assertIn(b"d OK", self.send(b"d NOOP"))

    def test_mailFolder(self):
        """R-SRCH-4: in a mail folder nothing matches, even a message carrying an event."""
        self.login()
        append(self, message=SINGLE)
        self.send(b"s SELECT INBOX")
        self.assertIn(b"* SEARCH\r\n", self.send(b"a SEARCH XOVERLAPS " + WINDOW))


class SharedCalendarTests(CalendarMixin, unittest.TestCase):
    def test_ownersZoneAndRights(self):
        """A viewer's XINSTANCES/XOVERLAPS on ~demo/Calendar use the owner's zone; without r it is refused."""
        from tests.test_imap_acl import Peer

        self.selectCalendar(ALLDAY)
        self.send(b"u UNSELECT")
        other = Peer(self, b"other")
        self.assertIn(b"g OK", self.send(b"g SETACL Calendar other lr"))
        self.assertIn(b"a OK", other.send(b"a SELECT ~demo/Calendar"))
        self.assertIn(b'* 1 FETCH (UID 1 XINSTANCES (("20260327T230000Z" "20260328T230000Z" BUSY NIL)))',
                      other.send(b"b FETCH 1 (XINSTANCES (" + WINDOW + b"))"))
        self.assertIn(b"* SEARCH 1\r\n", other.send(b"c SEARCH XOVERLAPS " + WINDOW))
        self.assertIn(b"g OK", self.send(b"g SETACL Calendar other l"))
        out = other.send(b"d SEARCH XOVERLAPS " + WINDOW)
        self.assertIn(b"d NO", out)
        self.assertNotIn(b"* SEARCH 1", out)


class XfreebusyTests(CalendarMixin, unittest.TestCase):
    """
    XFREEBUSY (section 7): demo's Calendar holds a tentative event with a
    summary and location; C{other} asks.
    """

    def setUp(self):
        from tests.test_imap_acl import Peer

        event = message(vevent("one", "DTSTART:20260304T120000Z", "DTEND:20260304T130000Z",
                               "SUMMARY:Budget review", "LOCATION:Room 2"))
        self.selectCalendar(event)
        self.send(b"u UNSELECT")
        self.other = Peer(self, b"other")

    def document(self, out, who=b'"demo"'):
        """The literal of the one XFREEBUSY response in C{out}."""
        match = re.search(rb"\* XFREEBUSY " + re.escape(who) + rb" \{(\d+)\}\r\n", out)
        self.assertIsNotNone(match, out)
        document = out[match.end():match.end() + int(match.group(1))]
        self.assertTrue(out[match.end() + len(document):].startswith(b"\r\n"), out)
        self.assertTrue(document.endswith(b"END:VCALENDAR\r\n"), document)
        return document

    def grant(self, rights):
        self.assertIn(b"g OK", self.send(b"g SETACL Calendar other " + rights))

    def test_R_FB_1(self):
        """R-FB-1: the owner gets the VFREEBUSY of the window (METHOD:PUBLISH, UTC periods), as a literal."""
        out = self.send(b'a XFREEBUSY "demo" ' + WINDOW)
        document = self.document(out)
        self.assertIn(b"METHOD:PUBLISH", document)
        self.assertIn(b"DTSTART:20260302T000000Z", document)
        self.assertEqual(freeBusyPeriods(document), {"BUSY": [(utc(2026, 3, 4, 12), utc(2026, 3, 4, 13))]})
        self.assertIn(b"a OK", out)

    def test_R_FB_2(self):
        """R-FB-2: a viewer sees the times with 0, 1 or r on the calendar, nothing with l alone."""
        self.grant(b"l")
        self.assertEqual(freeBusyPeriods(self.document(self.other.send(b'a XFREEBUSY "demo" ' + WINDOW))), {})
        for rights in (b"l0", b"l1", b"lr"):
            self.grant(rights)
            out = self.other.send(b'a XFREEBUSY "demo" ' + WINDOW)
            self.assertEqual(freeBusyPeriods(self.document(out)),
                             {"BUSY": [(utc(2026, 3, 4, 12), utc(2026, 3, 4, 13))]}, rights)
            self.assertNotIn(b"X-SUMMARY", out)

    def test_R_FB_3(self):
        """R-FB-3: (DETAILED) adds X-SUMMARY/X-LOCATION with right 1 or r, not with 0."""
        self.grant(b"l0")
        self.assertNotIn(b"X-SUMMARY", self.other.send(b'a XFREEBUSY "demo" ' + WINDOW + b" (DETAILED)"))
        for rights in (b"l1", b"lr"):
            self.grant(rights)
            document = self.document(self.other.send(b'a XFREEBUSY "demo" ' + WINDOW + b" (DETAILED)"))
            self.assertIn(b"X-SUMMARY=Budget review", document.replace(b"\r\n ", b""))
            self.assertIn(b"X-LOCATION=Room 2", document.replace(b"\r\n ", b""))

    def test_R_FB_4(self):
        """R-FB-4: an unknown address and an account with nothing visible get the same empty VFREEBUSY."""
        def shape(out, who):
            lines = self.document(out, who).split(b"\r\n")
            return [line for line in lines if not line.startswith((b"DTSTAMP", b"ORGANIZER"))]

        unknown = self.other.send(b'a XFREEBUSY "nobody@example.test" ' + WINDOW)
        hidden = self.other.send(b'b XFREEBUSY "demo@example.test" ' + WINDOW)
        self.assertEqual(shape(unknown, b'"nobody@example.test"'), shape(hidden, b'"demo@example.test"'))
        self.assertNotIn(b"FREEBUSY;", unknown + hidden)
        self.assertIn(b"ORGANIZER:mailto:nobody@example.test", unknown)
        self.assertIn(b"a OK", unknown)

    def test_whoForms(self):
        """xfb-who: "account", "~account" and "account@domain" name the same account; the answer repeats it."""
        self.grant(b"l0")
        for who in (b"demo", b'"~demo"', b'"demo@example.test"', b"DEMO"):
            out = self.other.send(b"a XFREEBUSY " + who + b" " + WINDOW)
            self.assertEqual(len(freeBusyPeriods(self.document(out, who if who.startswith(b'"') else
                                                                b'"%s"' % who))), 1, who)

    def test_R_FB_5(self):
        """R-FB-5: a window past 366 days, a bad time, option or address is BAD, and the session goes on."""
        self.assertIn(b"a BAD", self.send(b'a XFREEBUSY demo "20260101T000000Z" "20270103T000000Z"'))
        self.assertIn(b"b BAD", self.send(b'b XFREEBUSY demo "20260301T000000Z" "20260201T000000Z"'))
        self.assertIn(b"c BAD", self.send(b'c XFREEBUSY demo "2026-03-01" "20260302T000000Z"'))
        self.assertIn(b"d BAD", self.send(b"d XFREEBUSY demo " + WINDOW + b" (SUMMARY)"))
        self.assertIn(b"e BAD", self.send(b'e XFREEBUSY "a b" ' + WINDOW))
        self.assertIn(b"f BAD", self.send(b"f XFREEBUSY demo"))
        self.assertIn(b"g OK", self.send(b"g XFREEBUSY demo " + WINDOW))

    def test_notAuthenticated(self):
        """XFREEBUSY needs a login."""
        self.connect()
        self.assertIn(b"a BAD", self.send(b"a XFREEBUSY demo " + WINDOW))


class GroupwareMarkTests(CalendarMixin, unittest.TestCase):
    def test_R_CAP_2(self):
        """R-CAP-2: a session is marked (the who list's xmapi column) once it uses an XMAPI item, not before."""
        from gateway.admin.monitor import describe

        self.selectCalendar(SINGLE)
        self.send(b"a FETCH 1 (FLAGS BODY.PEEK[HEADER])")
        self.send(b"b SEARCH SUBJECT x")
        self.assertIs(self.session.xmapi, False)
        for command in (b"c FETCH 1 (XINSTANCES (" + WINDOW + b"))", b"d SEARCH XOVERLAPS " + WINDOW,
                        b"e XFREEBUSY demo " + WINDOW, b"f FETCH 1 (XPROPS (PidTagSubject))",
                        b"g SEARCH XPROP PidTagSubject EXISTS", b'h STORE 1 XPROPS.SILENT (' + CUSTOM + b' 7)'):
            self.session.xmapi = False
            self.assertIn(command[:2] + b"OK", self.send(command))
            self.assertIs(self.session.xmapi, True, command)

        class Wrapper:
            wrappedProtocol, protocol, remote, since, bytesIn, bytesOut = self.session, "imap", "127.0.0.1", 0, 0, 0
        self.assertIs(describe(Wrapper)["xmapi"], True)

    def test_R_CAP_2_metadata(self):
        """R-CAP-2: CREATE ... (XCLASS) and METADATA on an XMAPI entry mark the session; other METADATA does not."""
        self.login()
        self.assertIn(b"a OK", self.send(b'a GETMETADATA "" /private/comment'))
        self.assertIn(b"b OK", self.send(b'b SETMETADATA INBOX (/private/comment "x")'))
        self.assertIn(b"c OK", self.send(b'c LIST "" INBOX RETURN (METADATA (/shared/comment))'))
        self.assertIs(self.session.xmapi, False)
        for command in (b'd CREATE "Calendar 2" (XCLASS "IPF.Appointment")',
                        b"e GETMETADATA Calendar /shared/vendor/xmapi/container-class",
                        b"f GETMETADATA (DEPTH infinity) Calendar /shared/vendor",
                        b'g SETMETADATA Calendar (/private/vendor/xmapi/default "IPF.Appointment")',
                        b'h LIST "" "*" RETURN (METADATA (/shared/vendor/xmapi/container-class))'):
            self.session.xmapi = False
            self.assertIn(command[:2] + b"OK", self.send(command))
            self.assertIs(self.session.xmapi, True, command)


#: Calendar items of many forms, for the summary answers of FETCH XPROPS.
VARIED = [SERIES, SINGLE, ALLDAY, CANCELLED, FAR, MAIL,
          message(vevent("cancel", "DTSTART:20260305T090000Z", "DTEND:20260305T100000Z", "SUMMARY:Off"),
                  method="CANCEL"),
          message(vevent("req", "DTSTART;TZID=Europe/Berlin:20260329T013000", "DURATION:PT2H",
                         "SUMMARY:Night, \\; shift", "LOCATION:Hall\\, B", "CLASS:PRIVATE", "PRIORITY:1",
                         "ORGANIZER;CN=Ann:mailto:ann@example.test", "X-MICROSOFT-CDO-BUSYSTATUS:OOF",
                         "BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-PT15M", "END:VALARM"), method="REQUEST"),
          message(vevent("floating", "DTSTART:20260310T090000", "DTEND:20260310T100000", "SUMMARY:",
                         "LOCATION:", "TRANSP:TRANSPARENT")),
          message(vevent("nosummary", "DTSTART;VALUE=DATE:20260311", "DURATION:P2D")),
          message("BEGIN:VTODO\r\nUID:todo\r\nDTSTAMP:20251201T000000Z\r\nSUMMARY:Do\r\nDUE:20260312T000000Z"
                  "\r\nEND:VTODO"),
          message(vevent("weekly", "RECURRENCE-ID:20260323T090000Z", "DTSTART:20260323T110000Z",
                         "DTEND:20260323T120000Z", "SUMMARY:Moved alone")),
          message(vevent("two-a", "DTSTART:20260312T090000Z", "DTEND:20260312T100000Z", "SUMMARY:A"),
                  vevent("two-b", "DTSTART:20260313T090000Z", "DTEND:20260313T100000Z", "SUMMARY:B")),
          message(vevent("sub", "DTSTART:20260314T090000Z", "DTEND:20260314T100000Z", "SUMMARY:Re: Plans",
                         "STATUS:TENTATIVE", "RDATE:20260315T090000Z")),
          message(vevent("multi", "DTSTART:20260316T090000Z", "DTEND:20260316T100000Z", "SUMMARY:Multi"),
                  multipart=True, encoding="base64"),
          b"From: a@example.test\r\nSubject: ics\r\nContent-Type: application/ics\r\n\r\n" + vcalendar(
              vevent("ics", "DTSTART:20260317T090000Z", "DTEND:20260317T100000Z", "SUMMARY:Ics")).encode()]


class FetchXpropsSummaryTests(CalendarMixin, unittest.TestCase):
    """
    R-FETCH-3: FETCH XPROPS answers a summarized calendar item's derived
    properties from its summary, the same values as parsing the message.
    """

    WANTED = (b"PidLidAppointmentStartWhole PidLidAppointmentEndWhole PidTagSubject PidLidLocation "
              b"PidLidBusyStatus PidLidRecurring PidLidAppointmentSubType PidLidGlobalObjectId "
              b"PidLidCleanGlobalObjectId PidTagMessageSize PidTagMessageDeliveryTime PidTagNormalizedSubject "
              b"PidTagSubjectPrefix PidTagDisplayTo PidTagInternetMessageId PidTagMessageClass "
              b"PidTagSensitivity PidTagImportance PidLidReminderDelta PidTagSenderName PidLidTaskDueDate")

    def parsedAnswers(self, wanted):
        """
        The answers of FETCH 1:* XPROPS when every message is parsed.
        """
        from gateway.imap import xmapi

        self.patch(xmapi, "quickProperties", lambda *args: None)
        try:
            return self.send(b"p FETCH 1:* (XPROPS (" + wanted + b"))")
        finally:
            self.patch(xmapi, "quickProperties", self.quick)

    def setUp(self):
        from gateway.imap import xmapi

        self.quick = xmapi.quickProperties
        self.selectCalendar(*VARIED)

    def test_sameAsParsing(self):
        """Every derived property, asked alone and all together, is answered as parsing the message answers it."""
        for wanted in [self.WANTED] + self.WANTED.split():
            fast = self.send(b"f FETCH 1:* (XPROPS (" + wanted + b"))")
            self.assertIn(b"f OK", fast)
            self.assertEqual(fast.replace(b"f OK", b"p OK"), self.parsedAnswers(wanted), wanted)

    def test_noMessageRead(self):
        """Start, end and subject of summarized plain events and simple series are answered without reading a message file."""
        opened = []
        mailbox = self.session.view.mailbox
        real = mailbox.openMessage
        self.patch(mailbox, "openMessage", lambda uid, location=None: opened.append(uid) or real(uid, location))
        out = self.send(b"a FETCH 1:6 (XPROPS (PidLidAppointmentStartWhole PidLidAppointmentEndWhole PidTagSubject))")
        self.assertIn(b"a OK", out)
        self.assertIn(b'* 1 FETCH (UID 1 XPROPS (PidLidAppointmentStartWhole "20260302T090000Z" '
                      b'PidLidAppointmentEndWhole "20260302T100000Z" PidTagSubject "Stand-up"))', out)
        # SINGLE, ALLDAY, CANCELLED and FAR have no SUMMARY: their Subject
        # header answers, from the index, as it does for MAIL.
        self.assertEqual(opened, [])
        out = self.send(b"b FETCH 1:* (XPROPS (PidTagMessageClass PidLidBusyStatus PidLidLocation))")
        self.assertIn(b'* 8 FETCH (UID 8 XPROPS (PidTagMessageClass "IPM.Schedule.Meeting.Request" '
                      b'PidLidBusyStatus 3 PidLidLocation "Hall, B"))', out)
        # The iTIP CANCEL (its own STATUS decides its busy status), the task,
        # the message of two events.
        self.assertEqual(opened, [7, 11, 13])

    def test_durationAcrossDst(self):
        """PidLidAppointmentEndWhole of DTSTART + DURATION:PT2H across the spring DST change is two hours later."""
        out = self.send(b"a FETCH 8 (XPROPS (PidLidAppointmentStartWhole PidLidAppointmentEndWhole))")
        self.assertIn(b'XPROPS (PidLidAppointmentStartWhole "20260329T003000Z" '
                      b'PidLidAppointmentEndWhole "20260329T023000Z")', out)

    def test_allDayInOwnersZone(self):
        """An all-day event starts and ends at midnight of the owner's time zone (Europe/Berlin), summarized or parsed."""
        wanted = b"PidLidAppointmentStartWhole PidLidAppointmentEndWhole"
        expected = (b'* 3 FETCH (UID 3 XPROPS (PidLidAppointmentStartWhole "20260327T230000Z" '
                    b'PidLidAppointmentEndWhole "20260328T230000Z"))')
        self.assertIn(expected, self.send(b"a FETCH 3 (XPROPS (" + wanted + b"))"))
        self.assertIn(expected, self.parsedAnswers(wanted))
        self.assertIn(b"* SEARCH 3\r\n", self.send(b'b SEARCH XPROP PidLidAppointmentStartWhole EQ "20260327T230000Z"'))

    def test_searchSameAsParsing(self):
        """SEARCH XPROP on derived properties finds, from the summaries, what it finds by parsing every message."""
        from gateway.imap import xmapi

        programs = [b'XPROP PidLidAppointmentStartWhole LT "20260310T000000Z"', b"XPROP PidLidBusyStatus EQ 2",
                    b'XPROP PidTagSubject PREFIX "Stand"', b'NOT XPROP PidLidLocation EXISTS',
                    b"XPROP PidLidRecurring EQ 1", b'XPROP PidTagSubject ISUBSTR "re:"',
                    b'XPROP PidTagMessageClass EQ "IPM.Appointment"', b"XPROP PidTagMessageSize GT 300"]
        for program in programs:
            fast = self.send(b"f SEARCH " + program)
            self.patch(xmapi, "quickProperties", lambda *args: None)
            parsed = self.send(b"f SEARCH " + program)
            self.patch(xmapi, "quickProperties", self.quick)
            self.assertIn(b"f OK", fast)
            self.assertEqual(fast, parsed, program)

    def test_searchNoMessageRead(self):
        """SEARCH XPROP on a summarized property reads only the messages the summaries do not describe."""
        opened = []
        mailbox = self.session.view.mailbox
        real = mailbox.openMessage
        self.patch(mailbox, "openMessage", lambda uid, location=None: opened.append(uid) or real(uid, location))
        out = self.send(b'a SEARCH XPROP PidLidAppointmentStartWhole GE "20260310T000000Z"')
        self.assertIn(b"* SEARCH 3 5 8 9 10 12 13 14 15 16\r\n", out)
        # The task (no event) and the message of two events.
        self.assertEqual(opened, [11, 13])

    def test_heldByEngine(self):
        """Once the calendar engine holds the mailbox (after XOVERLAPS), FETCH XPROPS takes the items from it, not from the summary file."""
        from gateway.imap import xmapi

        wanted = b"PidLidAppointmentStartWhole PidTagSubject PidTagMessageClass"
        before = self.send(b"a FETCH 1:* (XPROPS (" + wanted + b"))")
        self.assertIn(b"b OK", self.send(b"b SEARCH XOVERLAPS " + WINDOW))
        read = []
        real = xmapi._summaries
        self.patch(xmapi, "_summaries", lambda owner, mailbox, uids: read.append(list(uids)) or real(
            owner, mailbox, uids))
        after = self.send(b"a FETCH 1:* (XPROPS (" + wanted + b"))")
        self.assertEqual(after, before)
        self.assertEqual(read, [])
