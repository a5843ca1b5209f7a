# -*- test-case-name: tests.test_mapi -*-
"""
Tests for L{gateway.mapi}: property identifiers and values
(C{docs/xmapi.md} section 3) and folder classes (section 6.1).
"""

import datetime
import decimal
import uuid

from twisted.trial import unittest

from gateway.mapi import classes, properties
from gateway.mapi.properties import (
    MV_FLAG,
    PT_BINARY,
    PT_BOOLEAN,
    PT_CLSID,
    PT_CURRENCY,
    PT_DOUBLE,
    PT_I8,
    PT_LONG,
    PT_SHORT,
    PT_SYSTIME,
    PT_UNICODE,
    PropertyError,
    PropertyKey,
    fromText,
    parsePropertyId,
    toText,
)

APPOINTMENT = uuid.UUID("00062002-0000-0000-C000-000000000046")


class PropertyIdTests(unittest.TestCase):
    """
    R-ID-1 to R-ID-4: the three ways to write a property.
    """

    def test_tag(self):
        """R-ID: a tag is 0x, the property id and the type."""
        key = parsePropertyId("0x0037001F")
        self.assertEqual((key.propId, key.propType, key.named), (0x0037, PT_UNICODE, False))

    def test_tagCaseInsensitive(self):
        """R-ID-1: hex digits are case-insensitive."""
        self.assertEqual(parsePropertyId("0x0037001f"), parsePropertyId("0x0037001F"))

    def test_namedLid(self):
        """R-ID: a numeric named property is set/LID/type."""
        key = parsePropertyId("PSETID_Appointment/0x8205/0x0003")
        self.assertEqual((key.propSet, key.lid, key.propType), (APPOINTMENT, 0x8205, PT_LONG))

    def test_namedString(self):
        """R-ID: a string named property is set/name=NAME/type, the name's case kept."""
        key = parsePropertyId("PS_PUBLIC_STRINGS/name=Keywords/0x101F")
        self.assertEqual((key.name, key.propType), ("Keywords", PT_UNICODE | MV_FLAG))
        self.assertNotEqual(key, parsePropertyId("PS_PUBLIC_STRINGS/name=keywords/0x101F"))

    def test_setByGuid(self):
        """R-ID-1: a property set written as its GUID is the named set."""
        self.assertEqual(parsePropertyId("{00062002-0000-0000-c000-000000000046}/0x8205/0x0003"),
                         parsePropertyId("psetid_appointment/0x8205/0x0003"))

    def test_canonicalName(self):
        """R-ID-2: a canonical name is the property it names, any case."""
        self.assertEqual(parsePropertyId("PidLidBusyStatus"), parsePropertyId("PSETID_Appointment/0x8205/0x0003"))
        self.assertEqual(parsePropertyId("pidtagsubject"), parsePropertyId("0x0037001F"))

    def test_unknownCanonicalName(self):
        """R-ID-2: an unknown canonical name is an error naming it."""
        e = self.assertRaises(PropertyError, parsePropertyId, "PidTagNoSuchThing")
        self.assertIn("PidTagNoSuchThing", str(e))

    def test_unknownTagAccepted(self):
        """R-ID-2: a well-formed tag nobody knows is accepted."""
        self.assertEqual(parsePropertyId("0x6A010003").propId, 0x6A01)

    def test_namedRangeTagRefused(self):
        """R-ID-3: a tag at 0x8000 or above is refused."""
        self.assertRaises(PropertyError, parsePropertyId, "0x8205000B")

    def test_malformed(self):
        """R-ID: malformed identifiers are errors."""
        for text in ["", "0x0037", "0x0037001G", "NOSET/0x1/0x0003", "PSETID_Appointment/0x8205",
                     "PSETID_Appointment/name=/0x001F", "PSETID_Appointment/0x123456789/0x0003",
                     "0x0037001F ", "0x00370999"]:
            self.assertRaises(PropertyError, parsePropertyId, text)

    def test_textRoundTrip(self):
        """R-ID-4: the normal written form parses back to the same key."""
        for text in ["0x0E080003", "PSETID_Appointment/0x820D/0x0040",
                     "PS_PUBLIC_STRINGS/name=Keywords/0x101F",
                     "{12345678-1234-1234-1234-123456789ABC}/0x0001/0x001F"]:
            key = parsePropertyId(text)
            self.assertEqual(key.text(), text)
            self.assertEqual(parsePropertyId(key.text()), key)

    def test_canonicalText(self):
        """R-ID-4: for '*' the server writes the canonical name where it knows one."""
        self.assertEqual(properties.canonicalText(parsePropertyId("0x0037001F")), "PidTagSubject")
        self.assertEqual(properties.canonicalText(parsePropertyId("0x6a010003")), "0x6A010003")

    def test_tableConsistent(self):
        """Every known property has a unique canonical name and key, and a type the codec handles."""
        names = [p.canonical.lower() for p in properties.PROPERTIES]
        keys = [p.key for p in properties.PROPERTIES]
        self.assertEqual(len(set(names)), len(names))
        self.assertEqual(len(set(keys)), len(keys))
        for p in properties.PROPERTIES:
            self.assertTrue(properties.isKnownType(p.key.propType), p.canonical)

    def test_derived(self):
        """R-PROP-1: the start of an appointment is derived; categories are stored."""
        self.assertTrue(properties.isDerived(parsePropertyId("PidLidAppointmentStartWhole")))
        self.assertFalse(properties.isDerived(parsePropertyId("PidNameKeywords")))
        self.assertFalse(properties.isDerived(parsePropertyId("0x6A010003")))


def key(propType):
    return PropertyKey(propType=propType, propId=0x6A01)


class ValueTests(unittest.TestCase):
    """
    Section 3.2: values typed by the tag.
    """

    def test_integers(self):
        """R-VAL: integers are numbers, negatives quoted, within their type's range."""
        self.assertEqual(fromText(key(PT_LONG), 7), 7)
        self.assertEqual(fromText(key(PT_LONG), "-7"), -7)
        self.assertEqual(toText(key(PT_LONG), -7), "-7")
        self.assertEqual(toText(key(PT_LONG), 7), 7)
        self.assertEqual(fromText(key(PT_I8), 2**40), 2**40)
        self.assertRaises(PropertyError, fromText, key(PT_SHORT), 40000)
        self.assertRaises(PropertyError, fromText, key(PT_LONG), 2**31)
        self.assertRaises(PropertyError, fromText, key(PT_LONG), "seven")

    def test_boolean(self):
        """R-VAL-1: a boolean is 0 or 1, nothing else."""
        self.assertIs(fromText(key(PT_BOOLEAN), 1), True)
        self.assertEqual(toText(key(PT_BOOLEAN), False), 0)
        self.assertRaises(PropertyError, fromText, key(PT_BOOLEAN), 2)
        self.assertRaises(PropertyError, fromText, key(PT_BOOLEAN), "1")

    def test_systime(self):
        """R-VAL-1: a time is quoted UTC YYYYMMDDTHHMMSSZ."""
        value = fromText(key(PT_SYSTIME), "20261207T090000Z")
        self.assertEqual(value, datetime.datetime(2026, 12, 7, 9, tzinfo=datetime.timezone.utc))
        self.assertEqual(toText(key(PT_SYSTIME), value), "20261207T090000Z")
        berlin = datetime.timezone(datetime.timedelta(hours=1))
        self.assertEqual(toText(key(PT_SYSTIME), datetime.datetime(2026, 12, 7, 10, tzinfo=berlin)),
                         "20261207T090000Z")
        for bad in ["20261207T090000", "20261307T090000Z", "2026-12-07T09:00:00Z", 20261207]:
            self.assertRaises(PropertyError, fromText, key(PT_SYSTIME), bad)

    def test_strings(self):
        """R-VAL-3: strings are UTF-8 text, kept as they are."""
        self.assertEqual(fromText(key(PT_UNICODE), "Bespr\u00e9chung"), "Bespr\u00e9chung")
        self.assertRaises(PropertyError, fromText, key(PT_UNICODE), 5)

    def test_binary(self):
        """R-VAL-1: binary is base64; bad base64 is an error."""
        self.assertEqual(fromText(key(PT_BINARY), "AAEC/w=="), b"\x00\x01\x02\xff")
        self.assertEqual(toText(key(PT_BINARY), b"\x00\x01\x02\xff"), "AAEC/w==")
        self.assertRaises(PropertyError, fromText, key(PT_BINARY), "AAEC/w=")
        self.assertRaises(PropertyError, fromText, key(PT_BINARY), "\u00e9")

    def test_decimals(self):
        """R-VAL: floating types are decimals in strings; currency has at most four decimals."""
        self.assertEqual(fromText(key(PT_DOUBLE), "0.5"), decimal.Decimal("0.5"))
        self.assertEqual(toText(key(PT_DOUBLE), decimal.Decimal("0.5")), "0.5")
        self.assertEqual(fromText(key(PT_CURRENCY), "12.3456"), decimal.Decimal("12.3456"))
        self.assertRaises(PropertyError, fromText, key(PT_CURRENCY), "12.34567")
        self.assertRaises(PropertyError, fromText, key(PT_DOUBLE), "NaN")

    def test_clsid(self):
        """R-VAL: a CLSID is a quoted {GUID}."""
        self.assertEqual(toText(key(PT_CLSID), fromText(key(PT_CLSID), "{00062002-0000-0000-c000-000000000046}")),
                         "{00062002-0000-0000-C000-000000000046}")
        self.assertRaises(PropertyError, fromText, key(PT_CLSID), "00062002-0000-0000-C000-000000000046")

    def test_multiValued(self):
        """R-VAL: a multi-valued property takes a list of its base type, and only a list."""
        categories = parsePropertyId("PidNameKeywords")
        self.assertEqual(fromText(categories, ["Blue", "Travel"]), ["Blue", "Travel"])
        self.assertEqual(fromText(categories, []), [])
        self.assertRaises(PropertyError, fromText, categories, "Blue")
        self.assertRaises(PropertyError, fromText, key(PT_LONG), [1])
        self.assertRaises(PropertyError, fromText, key(PT_LONG | MV_FLAG), [1, "x"])

    def test_errorNamesProperty(self):
        """R-VAL-1: the error names the property as the client wrote it."""
        e = self.assertRaises(PropertyError, fromText, parsePropertyId("PidLidReminderSet"), 3, "PidLidReminderSet")
        self.assertIn("PidLidReminderSet", str(e))


class FolderClassTests(unittest.TestCase):
    """
    Section 6.1: folder classes and Kolab types.
    """

    def test_missingIsNote(self):
        """R-CLASS: a folder without a class is IPF.Note, Kolab 'mail'."""
        self.assertEqual(classes.baseClass(None), "IPF.Note")
        self.assertEqual(classes.kolabFolderType(None), "mail")

    def test_subClass(self):
        """R-CLASS-1: a sub-class behaves as its base."""
        self.assertEqual(classes.baseClass("IPF.Appointment.Birthday"), "IPF.Appointment")
        self.assertTrue(classes.isCalendarClass("IPF.Appointment.Birthday"))
        self.assertFalse(classes.isCalendarClass("IPF.Note"))

    def test_invalid(self):
        """R-CLASS-1: anything else is refused."""
        for bad in ["IPF.Appointments", "IPF", "ipf.note", "IPF.Note.", "IPF.Note..x", "IPF.Note.a b", ""]:
            self.assertRaises(classes.InvalidFolderClass, classes.baseClass, bad)
        self.assertFalse(classes.isCalendarClass("IPF.Appointments"))

    def test_kolabTypes(self):
        """R-CLASS-2: Kolab types come from the class, with .default on the default folder."""
        self.assertEqual(classes.kolabFolderType("IPF.Appointment", isDefault=True), "event.default")
        self.assertEqual(classes.kolabFolderType("IPF.Contact"), "contact")
        self.assertEqual(classes.kolabFolderType("IPF.StickyNote"), "note")
        self.assertEqual(classes.kolabFolderType("IPF.Journal"), "journal")
        self.assertEqual(classes.kolabFolderType("IPF.Task"), "task")
