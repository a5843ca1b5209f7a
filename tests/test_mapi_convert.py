# -*- test-case-name: tests.test_mapi_convert -*-
"""
Tests for L{gateway.mapi.convert}: derived properties (C{docs/xmapi.md}
section 3.3) and items built from properties.
"""

import datetime
import decimal
import email
import zoneinfo

import icalendar
from twisted.trial import unittest

from gateway.mapi import convert
from gateway.mapi.convert import key

UTC = datetime.timezone.utc
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def cal(body, method=None):
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN"]
    if method:
        lines.append("METHOD:" + method)
    lines += body.strip().splitlines() + ["END:VCALENDAR"]
    return icalendar.Calendar.from_ical("\r\n".join(lines) + "\r\n")


EVENT = """
BEGIN:VEVENT
UID:abc-123
DTSTAMP:20261201T000000Z
DTSTART;TZID=Europe/Berlin:20261207T100000
DTEND;TZID=Europe/Berlin:20261207T103000
SUMMARY:Stand-up
LOCATION:Room 2
CLASS:PRIVATE
PRIORITY:1
RRULE:FREQ=WEEKLY;COUNT=3
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:x
TRIGGER:-PT15M
END:VALARM
END:VEVENT
"""


class MailTests(unittest.TestCase):
    def _headers(self, text):
        return email.message_from_string(text)

    def test_subjectAndPrefix(self):
        """Subject is RFC 2047 decoded, split into prefix and normalized subject."""
        values = convert.deriveMail(self._headers("Subject: =?utf-8?q?AW=3A_Gr=C3=BC=C3=9Fe?=\n\n"))
        self.assertEqual(values[key("PidTagSubject")], "AW: Grüße")
        self.assertEqual(values[key("PidTagSubjectPrefix")], "AW: ")
        self.assertEqual(values[key("PidTagNormalizedSubject")], "Grüße")
        self.assertEqual(values[key("PidTagMessageClass")], "IPM.Note")

    def test_addresses(self):
        """Sender and display lists come from From/To/Cc display names."""
        values = convert.deriveMail(self._headers(
            "From: Boss <boss@example.com>\nTo: A <a@x>, b@y\nCc: C <c@z>\n\n"))
        self.assertEqual(values[key("PidTagSenderName")], "Boss")
        self.assertEqual(values[key("PidTagSenderEmailAddress")], "boss@example.com")
        self.assertEqual(values[key("PidTagDisplayTo")], "A; b@y")
        self.assertEqual(values[key("PidTagDisplayCc")], "C")

    def test_importanceAndDates(self):
        """Importance from X-Priority; submit time from Date; size and delivery time given."""
        arrived = datetime.datetime(2026, 12, 1, 8, tzinfo=UTC)
        values = convert.deriveMail(self._headers("X-Priority: 1 (Highest)\nDate: Tue, 1 Dec 2026 09:00:00 +0100\n\n"),
                                    size=1234, internalDate=arrived)
        self.assertEqual(values[key("PidTagImportance")], 2)
        self.assertEqual(values[key("PidTagClientSubmitTime")], datetime.datetime(2026, 12, 1, 8, tzinfo=UTC))
        self.assertEqual(values[key("PidTagMessageSize")], 1234)
        self.assertEqual(values[key("PidTagMessageDeliveryTime")], arrived)

    def test_missingLeftOut(self):
        """A header that is absent gives no property (FETCH answers NIL for it)."""
        values = convert.deriveMail(self._headers("X-Other: 1\n\n"))
        self.assertNotIn(key("PidTagSubject"), values)
        self.assertNotIn(key("PidTagImportance"), values)


class CalendarTests(unittest.TestCase):
    def test_appointment(self):
        """An event's start/end are UTC, with location, recurrence, sensitivity, importance, reminder."""
        values = convert.deriveCalendar(cal(EVENT), BERLIN)
        self.assertEqual(values[key("PidTagMessageClass")], "IPM.Appointment")
        self.assertEqual(values[key("PidLidAppointmentStartWhole")], datetime.datetime(2026, 12, 7, 9, tzinfo=UTC))
        self.assertEqual(values[key("PidLidAppointmentEndWhole")],
                         datetime.datetime(2026, 12, 7, 9, 30, tzinfo=UTC))
        self.assertEqual(values[key("PidLidLocation")], "Room 2")
        self.assertIs(values[key("PidLidRecurring")], True)
        self.assertIs(values[key("PidLidAppointmentSubType")], False)
        self.assertEqual(values[key("PidTagSensitivity")], 2)
        self.assertEqual(values[key("PidTagImportance")], 2)
        self.assertEqual(values[key("PidLidReminderDelta")], 15)
        self.assertIs(values[key("PidLidReminderSet")], True)
        self.assertEqual(values[key("PidLidBusyStatus")], convert.BUSY)

    def test_allDayInAccountZone(self):
        """An all-day event starts at midnight of the account's zone, as UTC."""
        values = convert.deriveCalendar(cal(
            "BEGIN:VEVENT\nUID:d\nDTSTAMP:20260101T000000Z\nDTSTART;VALUE=DATE:20260704\n"
            "DTEND;VALUE=DATE:20260705\nEND:VEVENT"), BERLIN)
        self.assertEqual(values[key("PidLidAppointmentStartWhole")], datetime.datetime(2026, 7, 3, 22, tzinfo=UTC))
        self.assertIs(values[key("PidLidAppointmentSubType")], True)
        self.assertIs(values[key("PidLidReminderSet")], False)

    def test_busyStatus(self):
        """Busy status: CDO wins, then TRANSP, STATUS:CANCELLED and TENTATIVE."""
        def status(extra):
            return convert.deriveCalendar(cal(
                "BEGIN:VEVENT\nUID:s\nDTSTAMP:20260101T000000Z\nDTSTART:20260101T100000Z\n"
                + extra + "END:VEVENT"))[key("PidLidBusyStatus")]
        self.assertEqual(status(""), convert.BUSY)
        self.assertEqual(status("TRANSP:TRANSPARENT\n"), convert.FREE)
        self.assertEqual(status("STATUS:TENTATIVE\n"), convert.TENTATIVE)
        self.assertEqual(status("STATUS:CANCELLED\n"), convert.FREE)
        self.assertEqual(status("TRANSP:TRANSPARENT\nX-MICROSOFT-CDO-BUSYSTATUS:OOF\n"), convert.OOF)

    def test_meetingClasses(self):
        """iTIP methods give meeting classes; REPLY by PARTSTAT."""
        body = ("BEGIN:VEVENT\nUID:m\nDTSTAMP:20260101T000000Z\nDTSTART:20260101T100000Z\n"
                "ATTENDEE;PARTSTAT=DECLINED:mailto:a@x\nEND:VEVENT")
        self.assertEqual(convert.messageClassOf(cal(body, "REQUEST")), "IPM.Schedule.Meeting.Request")
        self.assertEqual(convert.messageClassOf(cal(body, "CANCEL")), "IPM.Schedule.Meeting.Canceled")
        self.assertEqual(convert.messageClassOf(cal(body, "REPLY")), "IPM.Schedule.Meeting.Resp.Neg")
        self.assertEqual(convert.messageClassOf(cal(body, "PUBLISH")), "IPM.Appointment")

    def test_globalObjectId(self):
        """A plain UID is wrapped after the vCal-Uid marker; an encoded global id is kept; clean id zeroes the date."""
        wrapped = convert.globalObjectId("abc-123")
        self.assertTrue(wrapped.startswith(bytes.fromhex("040000008200E00074C5B7101A82E008")))
        self.assertIn(b"vCal-Uid\x01\x00\x00\x00abc-123\x00", wrapped)
        outlook = bytes.fromhex("040000008200E00074C5B7101A82E008" "07EA0C07" + "00" * 16
                                + "10000000" + "11" * 16)
        self.assertEqual(convert.globalObjectId(outlook.hex().upper()), outlook)
        self.assertEqual(convert.cleanGlobalObjectId(outlook)[16:20], bytes(4))

    def test_task(self):
        """A VTODO is IPM.Task with due date, status and percent complete."""
        values = convert.deriveCalendar(cal(
            "BEGIN:VTODO\nUID:t\nDTSTAMP:20260101T000000Z\nSUMMARY:Report\nDUE:20261210T170000Z\n"
            "STATUS:IN-PROCESS\nPERCENT-COMPLETE:40\nEND:VTODO"))
        self.assertEqual(values[key("PidTagMessageClass")], "IPM.Task")
        self.assertEqual(values[key("PidLidTaskDueDate")], datetime.datetime(2026, 12, 10, 17, tzinfo=UTC))
        self.assertEqual(values[key("PidLidTaskStatus")], 1)
        self.assertEqual(values[key("PidLidPercentComplete")], decimal.Decimal("0.4"))
        self.assertIs(values[key("PidLidTaskComplete")], False)

    def test_buildEventRoundTrip(self):
        """An appointment built from properties derives the same properties back."""
        props = {"PidTagSubject": "Review; budget", "PidLidLocation": "Room 1",
                 "PidLidAppointmentStartWhole": datetime.datetime(2026, 12, 8, 14, tzinfo=UTC),
                 "PidLidAppointmentEndWhole": datetime.datetime(2026, 12, 8, 15, tzinfo=UTC),
                 "PidLidBusyStatus": convert.TENTATIVE, "PidTagSensitivity": 2,
                 "PidLidReminderSet": True, "PidLidReminderDelta": 10}
        values = convert.deriveCalendar(icalendar.Calendar.from_ical(convert.buildEvent(props, uid="u1")))
        for name, value in props.items():
            self.assertEqual(values[key(name)], value, name)

    def test_buildTaskRoundTrip(self):
        """A task built from properties derives the same properties back."""
        props = {"PidTagSubject": "Report", "PidLidTaskDueDate": datetime.datetime(2026, 12, 10, tzinfo=UTC),
                 "PidLidTaskComplete": True, "PidLidPercentComplete": decimal.Decimal(1)}
        values = convert.deriveCalendar(icalendar.Calendar.from_ical(convert.buildTask(props, uid="t1")))
        for name, value in props.items():
            self.assertEqual(values[key(name)], value, name)


class ContactTests(unittest.TestCase):
    CARD = ("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann O'Neil\r\nN:O'Neil;Ann;;;\r\nORG:Acme\\; Sons;Sales\r\n"
            "TITLE:CEO\r\nitem1.EMAIL;TYPE=INTERNET:ann@acme.example\r\nEMAIL:ann@home.example\r\n"
            "TEL;TYPE=WORK,VOICE:+49 30 1\r\nTEL;TYPE=CELL:+49 170 2\r\nFBURL:http://x/~ann/freebus\r\n y.vfb\r\n"
            "END:VCARD\r\n")

    def test_contact(self):
        """A vCard gives display name, names, company (escaped ';' kept), e-mails, phones, FBURL (unfolded)."""
        values = convert.deriveContact(self.CARD)
        self.assertEqual(values[key("PidTagMessageClass")], "IPM.Contact")
        self.assertEqual(values[key("PidTagDisplayName")], "Ann O'Neil")
        self.assertEqual(values[key("PidTagSurname")], "O'Neil")
        self.assertEqual(values[key("PidTagGivenName")], "Ann")
        self.assertEqual(values[key("PidTagCompanyName")], "Acme; Sons")
        self.assertEqual(values[key("PidLidEmail1EmailAddress")], "ann@acme.example")
        self.assertEqual(values[key("PidLidEmail2EmailAddress")], "ann@home.example")
        self.assertNotIn(key("PidLidEmail3EmailAddress"), values)
        self.assertEqual(values[key("PidTagBusinessTelephoneNumber")], "+49 30 1")
        self.assertEqual(values[key("PidTagMobileTelephoneNumber")], "+49 170 2")
        self.assertEqual(values[key("PidLidFreeBusyLocation")], "http://x/~ann/freebusy.vfb")

    def test_group(self):
        """A vCard of KIND:group is a distribution list."""
        values = convert.deriveContact(convert.buildContact(
            {"PidTagDisplayName": "Team", "IsGroup": True, "Members": ["a@x"]}))
        self.assertEqual(values[key("PidTagMessageClass")], "IPM.DistList")

    def test_buildContactRoundTrip(self):
        """A contact built from properties derives the same properties back."""
        props = {"PidTagDisplayName": "Bob, Jr.", "PidTagGivenName": "Bob", "PidTagSurname": "Smith; Jr",
                 "PidTagCompanyName": "Acme", "PidLidEmail1EmailAddress": "bob@acme.example",
                 "PidTagHomeTelephoneNumber": "+1 555", "PidLidFreeBusyLocation": "http://x/~bob/freebusy.vfb"}
        values = convert.deriveContact(convert.buildContact(props))
        for name, value in props.items():
            self.assertEqual(values[key(name)], value, name)
