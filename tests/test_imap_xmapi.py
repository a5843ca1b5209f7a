# -*- test-case-name: tests.test_imap_xmapi -*-
"""
Tests for L{gateway.imap.xmapi}: FETCH XPROPS and STORE XPROPS as
docs/xmapi.md sections 3 and 4.1-4.2 say, each named after its rule.
"""

import re

from twisted.trial import unittest

from gateway.imap.registry import Registries
from gateway.store import properties
from tests.test_imap_mailbox import append
from tests.test_imap_selected import SelectedTestMixin

MAIL = (b"From: Ann Example <ann@example.com>\r\nTo: Bob <bob@example.com>\r\nSubject: Re: Budget\r\n"
        b"Date: Tue, 3 Dec 2024 10:00:00 +0000\r\nMessage-ID: <m1@example.com>\r\n\r\nHello\r\n")
EVENT = (b"From: Ann <ann@example.com>\r\nSubject: Review\r\nContent-Type: text/calendar; charset=utf-8\r\n\r\n"
         b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:ev1@example.com\r\n"
         b"DTSTAMP:20241201T000000Z\r\nDTSTART:20241203T100000Z\r\nDTEND:20241203T110000Z\r\n"
         b"SUMMARY:Review\r\nLOCATION:Room 1\r\nTRANSP:OPAQUE\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
KEYWORDS = b'"PS_PUBLIC_STRINGS/name=Keywords/0x101F"'
CUSTOM = b"PS_PUBLIC_STRINGS/name=Level/0x0003"
CUSTOM_STRING = b"PS_PUBLIC_STRINGS/name=Note/0x001F"


class XpropsMixin(SelectedTestMixin):
    def selectMessages(self, *messages):
        self.login()
        for message in messages:
            append(self, message=message)
        out = self.send(b"s SELECT INBOX")
        self.assertIn(b"s OK", out)
        self.mailbox = self.session.view.mailbox

    def stored(self, uid=1):
        return properties.properties(self.mailbox, [uid]).get(uid, {})


class FetchXpropsTests(XpropsMixin, unittest.TestCase):
    def test_R_FETCH_1(self):
        """R-FETCH-1, R-ID-4: every requested id is answered as the client wrote it, NIL for a missing one."""
        self.selectMessages(MAIL)
        out = self.send(b"a FETCH 1 (XPROPS (PidTagSubject 0x0037001f " + KEYWORDS + b" pidtagmessageclass))")
        self.assertIn(b'* 1 FETCH (UID 1 XPROPS (PidTagSubject "Re: Budget" 0x0037001f "Re: Budget" '
                      b'PS_PUBLIC_STRINGS/name=Keywords/0x101F NIL pidtagmessageclass "IPM.Note"))\r\n', out)
        self.assertIn(b"a OK", out)

    def test_R_FETCH_2(self):
        """R-FETCH-2: XPROPS (*) lists the derived and stored properties, canonical names where known, no NIL."""
        self.selectMessages(MAIL)
        self.send(b"s STORE 1 XPROPS.SILENT (" + KEYWORDS + b' ("Blue") ' + CUSTOM + b" 7)")
        out = self.send(b"a FETCH 1 (XPROPS (*))")
        self.assertIn(b'PidTagMessageClass "IPM.Note"', out)
        self.assertIn(b'PidTagNormalizedSubject "Budget"', out)
        self.assertIn(b'PidNameKeywords ("Blue")', out)
        self.assertIn(CUSTOM + b" 7", out)
        self.assertNotIn(b"NIL", out)

    def test_R_FETCH_calendar(self):
        """R-FETCH-1: a calendar item answers its start, end, location and busy status from its VEVENT."""
        self.selectMessages(EVENT)
        out = self.send(b"a FETCH 1 (XPROPS (PidLidAppointmentStartWhole PidLidAppointmentEndWhole "
                        b"PidLidLocation PidLidBusyStatus PidTagMessageClass PidTagSubject))")
        self.assertIn(b'XPROPS (PidLidAppointmentStartWhole "20241203T100000Z" PidLidAppointmentEndWhole '
                      b'"20241203T110000Z" PidLidLocation "Room 1" PidLidBusyStatus 2 '
                      b'PidTagMessageClass "IPM.Appointment" PidTagSubject "Review")', out)

    def test_storedOnlyReadsNoMessage(self):
        """FETCH XPROPS of stored properties only (and of size and delivery time) reads no message file."""
        self.selectMessages(MAIL, MAIL)
        self.send(b"s STORE 1 XPROPS.SILENT (" + CUSTOM + b" 7)")
        opened = []
        real = self.mailbox.openMessage
        self.patch(self.mailbox, "openMessage", lambda uid, location=None: opened.append(uid) or real(uid, location))
        out = self.send(b"a FETCH 1:2 (XPROPS (" + CUSTOM + b" PidTagMessageSize))")
        self.assertIn(b"* 1 FETCH (UID 1 XPROPS (" + CUSTOM + b" 7 PidTagMessageSize %d))" % (len(MAIL),), out)
        self.assertIn(b"* 2 FETCH (UID 2 XPROPS (" + CUSTOM + b" NIL PidTagMessageSize %d))" % (len(MAIL),), out)
        self.assertEqual(opened, [])

    def test_R_FETCH_4(self):
        """R-FETCH-4: FETCH XPROPS does not set \\Seen."""
        self.selectMessages(MAIL)
        self.send(b"a FETCH 1 (XPROPS (PidTagSubject))")
        self.assertNotIn("\\Seen", self.mailbox.messages([1])[0].flags)
        self.assertNotIn(b"\\Seen", self.send(b"b FETCH 1 FLAGS"))

    def test_R_ID_2(self):
        """R-ID-2: an unknown canonical name is BAD; an unknown but well-formed tag is accepted (NIL)."""
        self.selectMessages(MAIL)
        self.assertIn(b"a BAD", self.send(b"a FETCH 1 (XPROPS (PidTagNoSuchThing))"))
        self.assertIn(b"* 1 FETCH (UID 1 XPROPS (0x6F01001F NIL))", self.send(b"b FETCH 1 (XPROPS (0x6F01001F))"))

    def test_R_ID_3(self):
        """R-ID-3: a tag in the named range (0x8000 and above) is BAD, and the session goes on."""
        self.selectMessages(MAIL)
        self.assertIn(b"a BAD", self.send(b"a FETCH 1 (XPROPS (0x82050003))"))
        self.assertIn(b"b OK", self.send(b"b NOOP"))

    def test_R_ID_1(self):
        """R-ID-1: a property-set GUID and its name denote one property."""
        self.selectMessages(MAIL)
        self.send(b"s STORE 1 XPROPS.SILENT (" + KEYWORDS + b' ("Blue"))')
        out = self.send(b'a FETCH 1 (XPROPS ("{00020329-0000-0000-C000-000000000046}/name=Keywords/0x101f"))')
        self.assertIn(b'XPROPS ("{00020329-0000-0000-C000-000000000046}/name=Keywords/0x101f" ("Blue"))', out)

    def test_fetchXpropsGrammar(self):
        """fetch-att XPROPS: a missing or empty list is BAD."""
        self.selectMessages(MAIL)
        self.assertIn(b"a BAD", self.send(b"a FETCH 1 XPROPS"))
        self.assertIn(b"b BAD", self.send(b"b FETCH 1 (XPROPS ())"))
        self.assertIn(b"c BAD", self.send(b"c FETCH 1 (XPROPS (PidTagSubject)"))

    def test_installed(self):
        """The IMAP factory installs XPROPS in its registries; the standard registries stay without it."""
        self.connect()
        self.assertIn("XPROPS", self.factory.registries.fetch)
        self.assertIsNotNone(self.factory.registries.store.get("XPROPS"))
        self.assertNotIn("XPROPS", Registries().fetch)

    def test_R_CAP_1(self):
        """R-CAP-1: XMAPI is announced by default (before and after login) with every capability it promises."""
        self.connect()
        self.assertIn(b" XMAPI", self.send(b"a CAPABILITY"))
        self.login()
        caps = self.send(b"b CAPABILITY").split(b"\r\n")[0].split()
        for name in (b"XMAPI", b"METADATA", b"LIST-METADATA", b"OBJECTID", b"REPLACE", b"CONDSTORE", b"ESEARCH",
                     b"ACL", b"SPECIAL-USE", b"LIST-EXTENDED", b"LIST-STATUS"):
            self.assertIn(name, caps)

    def test_capabilityOption(self):
        """[imap] xmapi = no hides XMAPI (before and after login); the commands are still served."""
        self.connect(config={("imap", "xmapi"): False})
        self.assertNotIn(b" XMAPI", self.send(b"a CAPABILITY"))
        self.assertNotIn(b" XMAPI", self.login(config={("imap", "xmapi"): False}))
        self.assertNotIn(b" XMAPI", self.send(b"b CAPABILITY"))
        self.send(b"s SELECT INBOX")
        self.assertIn(b"c OK", self.send(b"c SEARCH XPROP PidTagSubject EXISTS"))


class StoreXpropsTests(XpropsMixin, unittest.TestCase):
    def test_R_STORE_1(self):
        """R-STORE-1, R-VAL-1: one mistyped value makes the whole STORE BAD, naming it; nothing is stored."""
        self.selectMessages(MAIL)
        out = self.send(b"a STORE 1 XPROPS (" + KEYWORDS + b' ("Blue") ' + CUSTOM + b' "x")')
        self.assertIn(b"a BAD", out)
        self.assertIn(b"name=Level", out)
        self.assertEqual(self.stored(), {})
        self.assertIn(b"b OK", self.send(b"b NOOP"))

    def test_R_STORE_2(self):
        """R-STORE-2: XPROPS answers FETCH with the stored values; .SILENT answers none."""
        self.selectMessages(MAIL, MAIL)
        out = self.send(b"a STORE 1:2 XPROPS (" + KEYWORDS + b' ("Blue" "Travel") ' + CUSTOM + b' "-3")')
        self.assertIn(b'* 1 FETCH (XPROPS (PS_PUBLIC_STRINGS/name=Keywords/0x101F ("Blue" "Travel") '
                      + CUSTOM + b' "-3"))\r\n', out)
        self.assertIn(b"* 2 FETCH (XPROPS (", out)
        self.assertIn(b"a OK", out)
        self.assertEqual(self.send(b"b UID STORE 1 XPROPS.SILENT (" + CUSTOM + b" 4)"), b"b OK UID STORE completed\r\n")
        self.assertEqual(self.stored()["PS_PUBLIC_STRINGS/name=Level/0x0003"], (3, 4))

    def test_R_STORE_2_condstore(self):
        """R-STORE-2: with CONDSTORE, the answer carries MODSEQ, also for .SILENT."""
        self.selectMessages(MAIL)
        self.send(b"e ENABLE CONDSTORE")
        out = self.send(b"a UID STORE 1 XPROPS.SILENT (" + CUSTOM + b" 4)")
        modseq = self.mailbox.messages([1])[0].modseq
        self.assertIn(b"* 1 FETCH (UID 1 MODSEQ (%d))\r\n" % (modseq,), out)

    def test_R_STORE_3(self):
        """R-STORE-3: a read-only (EXAMINEd) mailbox refuses STORE XPROPS with NO and stores nothing."""
        self.selectMessages(MAIL)
        self.send(b"x EXAMINE INBOX")
        self.assertIn(b"a NO", self.send(b"a STORE 1 XPROPS (" + CUSTOM + b" 4)"))
        self.assertEqual(self.stored(), {})

    def test_R_PROP_1(self):
        """R-PROP-1, R-PROP-3: storing a derived property is NO [CANNOT] and stores nothing of the command."""
        self.selectMessages(MAIL)
        out = self.send(b'a STORE 1 XPROPS (' + CUSTOM + b' 4 PidTagSubject "New")')
        self.assertIn(b"a NO [CANNOT] PidTagSubject", out)
        self.assertEqual(self.stored(), {})

    def test_R_PROP_2_modseq(self):
        """R-PROP-2: STORE XPROPS bumps MODSEQ; a stale UNCHANGEDSINCE answers [MODIFIED] and keeps the value."""
        self.selectMessages(MAIL)
        before = self.mailbox.messages([1])[0].modseq
        self.send(b"a STORE 1 XPROPS.SILENT (" + CUSTOM + b" 1)")
        after = self.mailbox.messages([1])[0].modseq
        self.assertGreater(after, before)
        out = self.send(b"b STORE 1 (UNCHANGEDSINCE %d) XPROPS (" % (before,) + CUSTOM + b" 2)")
        self.assertIn(b"b OK [MODIFIED 1]", out)
        self.assertEqual(self.stored()["PS_PUBLIC_STRINGS/name=Level/0x0003"], (3, 1))
        out = self.send(b"c STORE 1 (UNCHANGEDSINCE %d) XPROPS (" % (after,) + CUSTOM + b" 2)")
        self.assertNotIn(b"MODIFIED", out)
        self.assertEqual(self.stored()["PS_PUBLIC_STRINGS/name=Level/0x0003"], (3, 2))

    def test_R_PROP_2_copyExpunge(self):
        """R-PROP-2: COPY and MOVE carry stored properties; EXPUNGE removes them."""
        self.selectMessages(MAIL)
        self.send(b"a STORE 1 XPROPS.SILENT (" + KEYWORDS + b' ("Blue"))')
        self.assertIn(b"b OK", self.send(b"b COPY 1 Notes"))
        self.assertIn(b"c OK", self.send(b"c MOVE 1 Drafts"))
        self.send(b"d SELECT Notes")
        self.assertIn(b'XPROPS (PidNameKeywords ("Blue"))', self.send(b"e FETCH 1 (XPROPS (PidNameKeywords))"))
        self.send(b"f SELECT Drafts")
        self.assertIn(b'XPROPS (PidNameKeywords ("Blue"))', self.send(b"g FETCH 1 (XPROPS (PidNameKeywords))"))
        self.send(b"h STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.send(b"i EXPUNGE")
        conn = self.session.view.mailbox._conn
        self.assertEqual(conn.execute("SELECT count(*) FROM msgprops WHERE mailbox = ?",
                                      (self.session.view.mailbox._id,)).fetchone()[0], 0)

    def test_R_PROP_2_indexRebuilt(self):
        """R-PROP-2: stored properties are FETCHed back after the index is deleted and rebuilt from the Maildir."""
        import os

        from gateway.store import maildir

        self.selectMessages(MAIL, MAIL2)
        self.send(b"a STORE 1:2 XPROPS.SILENT (" + KEYWORDS + b' ("Blue") ' + CUSTOM + b" 5)")
        self.send(b"b STORE 2 XPROPS.SILENT (" + CUSTOM + b" NIL)")
        self.send(b"c LOGOUT")
        self.disconnect()
        realm = self.context.realm
        store = realm.accountFor("demo@example.test").mailStore
        store.close()
        for suffix in ("", "-wal", "-shm"):
            maildir.removeQuietly(os.path.join(store.path, maildir.INDEX_NAME + suffix))
        realm._accounts.clear()
        realm._recent.clear()
        from tests.test_imap_protocol import PASSWORD, TLSStringTransport

        self.session = self.factory.buildProtocol(None)
        self.transport = TLSStringTransport()
        self.session.makeConnection(self.transport)
        self.assertIn(b"L2 OK", self.send(b'L2 LOGIN demo "%s"' % (PASSWORD.encode(),)))
        self.assertIn(b"* 2 EXISTS", self.send(b"d SELECT INBOX"))
        out = self.send(b"e FETCH 1:2 (XPROPS (PidTagSubject " + KEYWORDS + b" " + CUSTOM + b"))")
        self.assertIn(b'* 1 FETCH (UID 1 XPROPS (PidTagSubject "Re: Budget" ' + KEYWORDS.strip(b'"')
                      + b' ("Blue") ' + CUSTOM + b" 5))", out)
        self.assertIn(b'* 2 FETCH (UID 2 XPROPS (PidTagSubject "Travel plans" ' + KEYWORDS.strip(b'"')
                      + b' ("Blue") ' + CUSTOM + b" NIL))", out)

    def test_R_PROP_4(self):
        """R-PROP-4: more than 256 stored properties on a message answers NO [LIMIT] and stores nothing."""
        self.selectMessages(MAIL)
        pairs = b" ".join(b"0x%04X0003 1" % (0x6800 + n,) for n in range(1, 258))
        out = self.send(b"a STORE 1 XPROPS (" + pairs + b")")
        self.assertIn(b"a NO [LIMIT]", out)
        self.assertEqual(self.stored(), {})
        self.assertIn(b"b OK", self.send(b"b STORE 1 XPROPS (" + pairs[:pairs.rindex(b" 0x")] + b")"))
        self.assertEqual(len(self.stored()), 256)

    def test_R_PROP_4_valueSize(self):
        """R-PROP-4: a value past 64 KiB answers NO [LIMIT], also when it is a literal the core refuses unread."""
        self.selectMessages(MAIL)
        for size in (64 * 1024 + 1, 200 * 1024):
            value = b"x" * size
            # The client waits for the continuation it does not get.
            out = self.send(b"a STORE 1 XPROPS (" + CUSTOM_STRING + b" {%d}" % (size,))
            self.assertTrue(out.startswith(b"a NO [LIMIT]"), out)
            del value
            self.assertEqual(self.stored(), {})
        self.assertIn(b"b OK", self.send(b"b NOOP"))

    def test_R_VAL_2(self):
        """R-VAL-2: NIL deletes a property; deleting a missing one is no error."""
        self.selectMessages(MAIL)
        self.send(b"a STORE 1 XPROPS.SILENT (" + CUSTOM + b" 1)")
        self.assertIn(b"b OK", self.send(b"b STORE 1 XPROPS.SILENT (" + CUSTOM + b" NIL 0x6F01001F NIL)"))
        self.assertEqual(self.stored(), {})
        self.assertIn(CUSTOM + b" NIL", self.send(b"c FETCH 1 (XPROPS (" + CUSTOM + b"))"))

    def test_storeXpropsGrammar(self):
        """store-att-flags XPROPS: no sign, pairs in a list; anything else is BAD."""
        self.selectMessages(MAIL)
        for text in (b"+XPROPS (" + CUSTOM + b" 1)", b"XPROPS " + CUSTOM + b" 1", b"XPROPS (" + CUSTOM + b")",
                     b"XPROPS ()", b"XPROPS (" + CUSTOM + b" 1) junk", b"XPROPS (" + CUSTOM + b" abc)"):
            out = self.send(b"a STORE 1 " + text)
            self.assertTrue(re.search(rb"^a BAD ", out, re.M), (text, out))
        self.assertEqual(self.stored(), {})


class DeletedItemsTests(XpropsMixin, unittest.TestCase):
    def setUp(self):
        from tests.test_imap_acl import Peer

        self.login()
        append(self, b"Calendar", EVENT)
        self.send(b"s SELECT Calendar")
        self.send(b"p STORE 1 XPROPS.SILENT (" + KEYWORDS + b' ("Blue"))')
        self.send(b"u UNSELECT")
        self.other = Peer(self, b"other")

    def grant(self, rights):
        self.assertIn(b"g OK", self.send(b"g SETACL Calendar other " + rights))

    def test_R_DEL_2(self):
        """R-DEL-2: MOVE from a foreign calendar to one's own Deleted Items needs r, t and e on the source."""
        for rights in (b"lre", b"lrt"):
            self.grant(rights)
            self.other.send(b"a SELECT ~demo/Calendar")
            self.assertIn(b"b NO [NOPERM]", self.other.send(b'b MOVE 1 "Deleted Items"'), rights)
        self.assertIn(b"(MESSAGES 1)", self.send(b"c STATUS Calendar (MESSAGES)"))
        self.grant(b"lrte")
        self.other.send(b"d SELECT ~demo/Calendar")
        out = self.other.send(b'e MOVE 1 "Deleted Items"')
        self.assertIn(b"* 1 EXPUNGE", out)
        self.assertIn(b"e OK", out)
        self.assertIn(b"(MESSAGES 0)", self.send(b"f STATUS Calendar (MESSAGES)"))
        self.assertIn(b"(MESSAGES 1)", self.other.send(b'g STATUS "Deleted Items" (MESSAGES)'))

    def test_R_PROP_2_acrossAccounts(self):
        """R-PROP-2: a MOVE into another account's folder carries the stored properties."""
        self.grant(b"lrte")
        self.other.send(b"a SELECT ~demo/Calendar")
        self.other.send(b'b MOVE 1 "Deleted Items"')
        self.other.send(b'c SELECT "Deleted Items"')
        self.assertIn(b'XPROPS (PidNameKeywords ("Blue"))', self.other.send(b"d FETCH 1 (XPROPS (PidNameKeywords))"))

    def test_R_STORE_3_rights(self):
        """R-STORE-3: STORE XPROPS on another account's folder needs w (NO [NOPERM] without it, nothing stored)."""
        self.grant(b"lrst")
        self.other.send(b"a SELECT ~demo/Calendar")
        self.assertIn(b"b NO [NOPERM]", self.other.send(b"b STORE 1 XPROPS (" + CUSTOM + b" 5)"))
        self.grant(b"lrw")
        self.other.send(b"c SELECT ~demo/Calendar")
        self.assertIn(b"d OK", self.other.send(b"d STORE 1 XPROPS (" + CUSTOM + b" 5)"))
        self.send(b"e SELECT Calendar")
        self.assertIn(CUSTOM + b" 5", self.send(b"f FETCH 1 (XPROPS (" + CUSTOM + b"))"))


MAIL2 = MAIL.replace(b"Subject: Re: Budget", b"Subject: Travel plans")


class SearchXpropTests(XpropsMixin, unittest.TestCase):
    def setUp(self):
        self.selectMessages(MAIL, MAIL2, MAIL)
        self.send(b"a STORE 1 XPROPS.SILENT (" + CUSTOM + b" 5 " + KEYWORDS + b' ("Blue" "Travel"))')
        self.send(b"b STORE 2 XPROPS.SILENT (" + CUSTOM + b' "-2" ' + KEYWORDS + b' ("Red"))')

    def search(self, text):
        out = self.send(b"s SEARCH " + text)
        self.assertIn(b"s OK", out)
        return out.split(b"\r\n")[0]

    def test_R_SRCH_1(self):
        """R-SRCH-1: EXISTS takes no value; the other operators take one typed by the property, else BAD."""
        self.assertEqual(self.search(b"XPROP " + CUSTOM + b" EXISTS"), b"* SEARCH 1 2")
        for text in (b"XPROP " + CUSTOM + b' EQ "x"', b"XPROP " + CUSTOM + b" EQ", b"XPROP " + CUSTOM + b" LIKE 1",
                     b"XPROP PidTagNoSuchThing EQ 1", b"XPROP " + CUSTOM + b" PREFIX 1",
                     b"XPROP PidTagSubject BITSET 1"):
            self.assertIn(b"x BAD", self.send(b"x SEARCH " + text), text)
        self.assertIn(b"y OK", self.send(b"y NOOP"))

    def test_R_SRCH_2(self):
        """R-SRCH-2: numbers compare by value (signed), strings by prefix/substring, I- ones case-folded, bits."""
        self.assertEqual(self.search(b"XPROP " + CUSTOM + b" GT 0"), b"* SEARCH 1")
        self.assertEqual(self.search(b"XPROP " + CUSTOM + b' LT "-1"'), b"* SEARCH 2")
        self.assertEqual(self.search(b"XPROP " + CUSTOM + b" NE 5"), b"* SEARCH 2")
        self.assertEqual(self.search(b"XPROP " + CUSTOM + b" BITSET 5"), b"* SEARCH 1")
        self.assertEqual(self.search(b"XPROP " + CUSTOM + b" BITCLEAR 1"), b"* SEARCH 2")
        self.assertEqual(self.search(b'XPROP PidTagSubject PREFIX "Re:"'), b"* SEARCH 1 3")
        self.assertEqual(self.search(b'XPROP PidTagSubject SUBSTR "travel"'), b"* SEARCH")
        self.assertEqual(self.search(b'XPROP PidTagSubject ISUBSTR "TRAVEL"'), b"* SEARCH 2")
        self.assertEqual(self.search(b'XPROP PidTagNormalizedSubject EQ "Budget"'), b"* SEARCH 1 3")

    def test_R_SRCH_2_missing(self):
        """R-SRCH-2: a message without the property matches no operator; NOT XPROP id EXISTS finds it."""
        self.assertEqual(self.search(b"XPROP " + CUSTOM + b" NE 99"), b"* SEARCH 1 2")
        self.assertEqual(self.search(b"NOT XPROP " + CUSTOM + b" EXISTS"), b"* SEARCH 3")

    def test_R_SRCH_3(self):
        """R-SRCH-3: on a multi-valued property an operator holds when it holds for any value."""
        self.assertEqual(self.search(KEYWORDS.join([b"XPROP ", b' EQ "Travel"'])), b"* SEARCH 1")
        self.assertEqual(self.search(KEYWORDS.join([b"XPROP ", b' IPREFIX "r"'])), b"* SEARCH 2")

    def test_R_SRCH_5(self):
        """R-SRCH-5: XPROP combines with OR, NOT, other keys and ESEARCH, under UID SEARCH too."""
        self.assertEqual(self.search(b"OR XPROP " + CUSTOM + b" EQ 5 XPROP PidTagSubject PREFIX \"Travel\""),
                         b"* SEARCH 1 2")
        self.assertEqual(self.search(b"UID 2:3 NOT XPROP " + CUSTOM + b" GE 0"), b"* SEARCH 2 3")
        out = self.send(b"e UID SEARCH RETURN (MIN MAX COUNT ALL) XPROP " + CUSTOM + b" EXISTS")
        self.assertIn(b'* ESEARCH (TAG "e") UID MIN 1 MAX 2 COUNT 2 ALL 1:2\r\n', out)


class SearchXpropTermTests(XpropsMixin, unittest.TestCase):
    """
    SEARCH XPROP on stored properties is answered by the index: one query
    per SEARCH, the same answer as matching message by message.
    """

    DATE = b"PS_PUBLIC_STRINGS/name=Due/0x0040"
    FLAG = b"PS_PUBLIC_STRINGS/name=Done/0x000B"
    BLOB = b"PS_PUBLIC_STRINGS/name=Blob/0x0102"
    RATIO = b"PS_PUBLIC_STRINGS/name=Ratio/0x0005"

    def setUp(self):
        self.selectMessages(*[MAIL] * 6)
        values = [b'5 %s ("Blue" "Travel") %s "20260301T100000Z" %s 1 %s "AAE=" %s "0.5"',
                  b'"-2" %s ("Red") %s "20260302T100000Z" %s 0 %s "AAI=" %s "0.50"',
                  b'7 %s ("blue" "\xc3\x89t\xc3\xa9") %s "20250101T000000Z" %s 1 %s "AAE=" %s "2"',
                  b'0 %s () %s "20270101T000000Z" %s 0 %s "" %s "-1"',
                  b'"-9223372036854775808" %s ("") %s "20260301T100000Z" %s 1 %s "AAE=" %s "0"']
        for uid, text in enumerate(values, 1):
            pairs = text % (KEYWORDS, self.DATE, self.FLAG, self.BLOB, self.RATIO)
            self.assertIn(b"s OK", self.send(b"s STORE %d XPROPS.SILENT (%s %s)" % (uid, CUSTOM.replace(
                b"0x0003", b"0x0014"), pairs)))

    def program(self, text):
        from gateway.imap.commands_selected import parseSearchProgram

        return parseSearchProgram(self.session, text)[0]

    def bothWays(self, text):
        """
        The UIDs SEARCH answers through the index, and those the keys
        match message by message.
        """
        out = self.send(b"s UID SEARCH " + text)
        self.assertIn(b"s OK", out)
        viaIndex = [int(n) for n in out.split(b"\r\n")[0].split()[2:]]
        program = self.program(text)
        infos = self.mailbox.messages(self.mailbox.uids())
        byMessage = [info.uid for i, info in enumerate(infos, 1)
                     if program.matches(i, info, len(infos), infos[-1].uid, lambda: None)]
        return viaIndex, byMessage

    def test_sameAnswers(self):
        """Every operator on every stored type gives the same UIDs from the index as message by message."""
        big = CUSTOM.replace(b"0x0003", b"0x0014")
        cases = [(big, op, value) for op in ("EQ", "NE", "LT", "LE", "GT", "GE")
                 for value in (b"5", b'"-2"', b"0", b'"-9223372036854775808"')]
        cases += [(big, op, b"5") for op in ("BITSET", "BITCLEAR")] + [(big, "BITSET", b"2")]
        cases += [(KEYWORDS, op, value) for op in ("EQ", "NE", "LT", "GE", "PREFIX", "SUBSTR", "IPREFIX", "ISUBSTR")
                  for value in (b'"Blue"', b'"b"', b'""', b'"\xc3\xa9"', b'"\xc3\x89T"')]
        cases += [(self.DATE, op, value) for op in ("EQ", "NE", "LT", "GE")
                  for value in (b'"20260301T100000Z"', b'"20260302T000000Z"')]
        cases += [(self.FLAG, op, value) for op in ("EQ", "NE", "GT") for value in (b"0", b"1")]
        cases += [(self.BLOB, op, b'"AAE="') for op in ("EQ", "NE")]
        cases += [(self.RATIO, op, b'"0.5"') for op in ("EQ", "NE", "LT", "GE")]
        for key, op, value in cases:
            text = b"XPROP %s %s %s" % (key, op.encode(), value)
            viaIndex, byMessage = self.bothWays(text)
            self.assertEqual(viaIndex, byMessage, text)
            notIndex, notMessage = self.bothWays(b"NOT " + text)
            self.assertEqual(notIndex, notMessage, text)
        for key in (big, KEYWORDS, self.DATE, self.FLAG, self.BLOB, self.RATIO):
            self.assertEqual(self.bothWays(b"XPROP %s EXISTS" % (key,)), ([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]))

    def test_sqlTerm(self):
        """XPROP on a stored property (but not on a derived one) and XOVERLAPS are terms of the index query."""
        self.assertIsNone(self.program(b"XPROP " + CUSTOM + b" EQ 5").rest)
        self.assertIsNone(self.program(KEYWORDS.join([b"XPROP ", b' SUBSTR "x"'])).rest)
        self.assertIsNone(self.program(b'XOVERLAPS "20260302T000000Z" "20260330T000000Z"').rest)
        self.assertIsNotNone(self.program(b'XPROP PidTagSubject EQ "x"').rest)

    def test_oneQuery(self):
        """A SEARCH XPROP reads the stored properties in one query, whatever the number of messages."""
        statements = []
        self.mailbox._conn.set_trace_callback(statements.append)
        self.addCleanup(self.mailbox._conn.set_trace_callback, None)
        for text in (b"XPROP " + CUSTOM + b" EQ 5", b'XPROP ' + self.RATIO + b' EQ "0.5"',
                     b"OR XPROP " + CUSTOM + b" EQ 5 XPROP PidTagSubject EXISTS"):
            del statements[:]
            self.assertIn(b"s OK", self.send(b"s SEARCH " + text))
            self.assertEqual(len([s for s in statements if "msgprops" in s]), 1, (text, statements))
