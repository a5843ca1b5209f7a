# -*- test-case-name: tests.test_mapi_client -*-
"""
Tests for L{gateway.mapi.client}: the XMAPI reference client against
recorded server transcripts written from docs/xmapi.md (so they pass
before the server side exists), over a L{StringTransport}.
"""

import base64
import datetime
import email
import email.header
import hashlib
import hmac

from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from gateway.mapi.client import CommandFailed, XMAPIClient, decodeProperties, itemMessage, xtime
from gateway.mapi.client_agenda import PATH_CLIENT, PATH_XMAPI, expandBody, formatAgenda, readAgenda, weekOf
from gateway.mapi.client_syntax import (
    Atom,
    ResponseSyntaxError,
    formatSequenceSet,
    parse,
    parseSequenceSet,
    splitStatus,
)

UTC = datetime.timezone.utc
START = datetime.datetime(2026, 12, 7, tzinfo=UTC)
END = datetime.datetime(2026, 12, 14, tzinfo=UTC)
GREETING = b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=CRAM-MD5 SASL-IR LITERAL+] gateway ready\r\n"


class TLSStringTransport(StringTransport):
    """
    A L{StringTransport} that records C{startTLS}.
    """

    tlsOptions = None

    def startTLS(self, options):
        self.tlsOptions = options


class SyntaxTests(unittest.TestCase):
    def test_atomsNumbersNil(self):
        """Atoms, numbers and NIL become Atom, int and None; a quoted "NIL" stays a string."""
        self.assertEqual(parse([b'LIST (\\Trash) "/" NIL "NIL" 42']),
                         ["LIST", ["\\Trash"], "/", None, "NIL", 42])
        value = parse([b"FLAGS"])[0]
        self.assertIsInstance(value, Atom)
        self.assertNotIsInstance(parse([b'"FLAGS"'])[0], Atom)

    def test_quotedEscapes(self):
        """Quoted strings unescape backslash and double quote and decode UTF-8."""
        self.assertEqual(parse([b'"a\\"b\\\\c" "\xc3\xa4"']), ['a"b\\c', "\u00e4"])

    def test_nestedLists(self):
        """Parenthesized lists nest (XINSTANCES inside a FETCH)."""
        self.assertEqual(parse([b'3 FETCH (UID 17 XINSTANCES (("a" "b" BUSY NIL)))']),
                         [3, "FETCH", ["UID", 17, "XINSTANCES", [["a", "b", "BUSY", None]]]])

    def test_literals(self):
        """A literal's octets take the place of its {n} marker, also inside a list."""
        pieces = [b'* XFREEBUSY "carol" {5}', b"BEGIN", b" (X {2}", b"\r\n", b")"]
        self.assertEqual(parse(pieces), ["*", "XFREEBUSY", "carol", b"BEGIN", ["X", b"\r\n"]])

    def test_sectionAtom(self):
        """An atom with a [section] keeps its spaces and parentheses (BODY[HEADER.FIELDS (A B)])."""
        self.assertEqual(parse([b"BODY[HEADER.FIELDS (A B)] NIL"]), ["BODY[HEADER.FIELDS (A B)]", None])

    def test_unbalanced(self):
        """Unbalanced parentheses and an unterminated quote are syntax errors."""
        self.assertRaises(ResponseSyntaxError, parse, [b"(a"])
        self.assertRaises(ResponseSyntaxError, parse, [b"a)"])
        self.assertRaises(ResponseSyntaxError, parse, [b'"abc'])

    def test_sequenceSets(self):
        """Sequence sets round-trip: 17,88,203:204."""
        self.assertEqual(parseSequenceSet("17,88,203:204"), [17, 88, 203, 204])
        self.assertEqual(formatSequenceSet([204, 17, 203, 88, 17]), "17,88,203:204")

    def test_statusCode(self):
        """A status text splits into its response code and its text."""
        self.assertEqual(splitStatus(b"[APPENDUID 38 12] done"), (["APPENDUID", 38, 12], "done"))
        self.assertEqual(splitStatus(b"no code"), (None, "no code"))

    def test_xtime(self):
        """Times go out as quoted UTC YYYYMMDDTHHMMSSZ, converted from other zones."""
        zone = datetime.timezone(datetime.timedelta(hours=1))
        self.assertEqual(xtime(datetime.datetime(2026, 12, 7, 10, tzinfo=zone)), b'"20261207T090000Z"')

    def test_decodeProperties(self):
        """XPROPS values are typed by their ids (strings, times, booleans, lists, NIL)."""
        values = decodeProperties(["PidTagSubject", "Stand-up", "PidLidAppointmentStartWhole",
                                   "20261207T090000Z", "PidLidReminderSet", 1,
                                   "PS_PUBLIC_STRINGS/name=Keywords/0x101F", ["Blue", "Travel"],
                                   "PidLidLocation", None])
        self.assertEqual(values, {
            "PidTagSubject": "Stand-up",
            "PidLidAppointmentStartWhole": datetime.datetime(2026, 12, 7, 9, tzinfo=UTC),
            "PidLidReminderSet": True,
            "PS_PUBLIC_STRINGS/name=Keywords/0x101F": ["Blue", "Travel"],
            "PidLidLocation": None})


class ClientTests(unittest.TestCase):
    def setUp(self):
        self.client = XMAPIClient()
        self.transport = TLSStringTransport()
        self.client.makeConnection(self.transport)
        self.client.dataReceived(GREETING)

    def sent(self):
        value = self.transport.value()
        self.transport.clear()
        return value

    def answer(self, data):
        self.client.dataReceived(data)

    def test_greetingCapabilities(self):
        """The greeting's CAPABILITY code fills the capabilities."""
        self.assertTrue(self.client.greeting.called)
        self.assertIn("AUTH=CRAM-MD5", self.client.capabilities)
        self.assertFalse(self.client.speaksXMAPI)

    def test_startTLSAndPlain(self):
        """STARTTLS starts TLS, asks CAPABILITY again, then AUTHENTICATE PLAIN goes with SASL-IR."""
        d = self.client.startTLS("options")
        self.assertEqual(self.sent(), b"X1 STARTTLS\r\n")
        self.answer(b"X1 OK Begin TLS negotiation now\r\n")
        self.assertEqual(self.transport.tlsOptions, "options")
        self.assertEqual(self.sent(), b"X2 CAPABILITY\r\n")
        self.answer(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR XMAPI\r\nX2 OK done\r\n")
        self.successResultOf(d)
        d = self.client.login("assistant@example.com", "secret")
        token = base64.b64encode(b"\0assistant@example.com\0secret")
        self.assertEqual(self.sent(), b"X3 AUTHENTICATE PLAIN " + token + b"\r\n")
        self.answer(b"X3 OK [CAPABILITY IMAP4rev1 ACL METADATA LIST-METADATA XMAPI] Logged in\r\n")
        self.successResultOf(d)
        self.assertTrue(self.client.speaksXMAPI)
        self.assertEqual(self.sent(), b"")

    def test_cramMD5(self):
        """On a clear-text connection that offers it, login answers the CRAM-MD5 challenge."""
        d = self.client.login("demo", "pw")
        self.assertEqual(self.sent(), b"X1 AUTHENTICATE CRAM-MD5\r\n")
        challenge = b"<1.2@example.test>"
        self.answer(b"+ " + base64.b64encode(challenge) + b"\r\n")
        digest = hmac.new(b"pw", challenge, hashlib.md5).hexdigest().encode()
        self.assertEqual(base64.b64decode(self.sent().strip()), b"demo " + digest)
        self.answer(b"X1 OK [CAPABILITY IMAP4rev1] Logged in\r\n")
        self.successResultOf(d)

    def test_loginRefused(self):
        """A tagged NO fails the Deferred with CommandFailed carrying status and code."""
        d = self.client.login("demo", "wrong", mechanism="PLAIN")
        self.sent()
        self.answer(b"X1 NO [AUTHENTICATIONFAILED] Authentication failed\r\n")
        failure = self.failureResultOf(d, CommandFailed)
        self.assertEqual((failure.value.status, failure.value.code), ("NO", ["AUTHENTICATIONFAILED"]))

    def test_listFolders(self):
        """One LIST returns folders with special use, rights, counts and class (docs/xmapi.md 6.2 and 11)."""
        self.client.capabilities.add("LIST-METADATA")
        d = self.client.listFolders()
        self.assertEqual(self.sent(), b'X1 LIST "" "*" RETURN (SPECIAL-USE MYRIGHTS STATUS (MESSAGES UNSEEN'
                                      b' HIGHESTMODSEQ) METADATA (MAXSIZE 1024 ("/shared/vendor/xmapi/'
                                      b'container-class")))\r\n')
        self.answer(b'* LIST () "/" INBOX\r\n'
                    b'* MYRIGHTS INBOX lrswipkxtea01\r\n'
                    b'* STATUS INBOX (MESSAGES 12 UNSEEN 2 HIGHESTMODSEQ 40)\r\n'
                    b'* LIST () "/" Calendar\r\n'
                    b'* STATUS Calendar (MESSAGES 31 UNSEEN 0)\r\n'
                    b'* METADATA Calendar ("/shared/vendor/xmapi/container-class" "IPF.Appointment")\r\n'
                    b'* LIST (\\Trash) "/" "Deleted Items"\r\n'
                    b'* LIST () "/" "~boss/Calendar"\r\n'
                    b'* METADATA "~boss/Calendar" ("/shared/vendor/xmapi/container-class" {15}\r\n'
                    b'IPF.Appointment)\r\n'
                    b'* LIST () "/" "Proj&AMQ-"\r\n'
                    b'X1 OK LIST completed\r\n')
        folders = self.successResultOf(d)
        self.assertEqual([f.name for f in folders], ["INBOX", "Calendar", "Deleted Items", "~boss/Calendar",
                                                     "Proj\u00c4"])
        self.assertEqual([f.folderClass for f in folders],
                         ["IPF.Note", "IPF.Appointment", "IPF.Note", "IPF.Appointment", "IPF.Note"])
        self.assertEqual(folders[0].status, {"MESSAGES": 12, "UNSEEN": 2, "HIGHESTMODSEQ": 40})
        self.assertEqual(folders[0].rights, "lrswipkxtea01")
        self.assertEqual(self.client.specialFolder(folders, "\\Trash"), "Deleted Items")

    def test_overlapsAndInstances(self):
        """A week: UID SEARCH RETURN (ALL) XOVERLAPS then UID FETCH XINSTANCES XPROPS, typed (section 11)."""
        d = self.client.searchOverlaps(START, END)
        self.assertEqual(self.sent(), b'X1 UID SEARCH RETURN (ALL) XOVERLAPS "20261207T000000Z"'
                                      b' "20261214T000000Z"\r\n')
        self.answer(b'* ESEARCH (TAG "X1") UID ALL 17,88,203:204\r\nX1 OK SEARCH completed\r\n')
        uids = self.successResultOf(d)
        self.assertEqual(uids, [17, 88, 203, 204])
        d = self.client.fetchInstances([17, 88], START, END)
        self.assertEqual(self.sent(), b'X2 UID FETCH 17,88 (XINSTANCES ("20261207T000000Z" "20261214T000000Z")'
                                      b' XPROPS ("PidTagSubject" "PidLidLocation"))\r\n')
        self.answer(b'* 3 FETCH (UID 17 XINSTANCES (("20261207T090000Z" "20261207T093000Z" BUSY'
                    b' "20261207T090000Z") ("20261209T090000Z" "20261209T093000Z" BUSY "20261209T090000Z"))'
                    b' XPROPS (PidTagSubject "Stand-up" PidLidLocation "Room 2"))\r\n'
                    b'* 4 FETCH (UID 88 XINSTANCES (("20261208T000000Z" "20261209T000000Z" FREE NIL))'
                    b' XPROPS (PidTagSubject {10}\r\nHoliday \xc3\xa4 PidLidLocation NIL))\r\n'
                    b'X2 OK FETCH completed\r\n')
        result = self.successResultOf(d)
        instances, props = result[17]
        self.assertEqual(instances[1], (datetime.datetime(2026, 12, 9, 9, tzinfo=UTC),
                                        datetime.datetime(2026, 12, 9, 9, 30, tzinfo=UTC), "BUSY",
                                        datetime.datetime(2026, 12, 9, 9, tzinfo=UTC)))
        self.assertEqual(props, {"PidTagSubject": "Stand-up", "PidLidLocation": "Room 2"})
        instances, props = result[88]
        self.assertEqual(instances[0][2:], ("FREE", None))
        self.assertEqual(props, {"PidTagSubject": "Holiday \u00e4", "PidLidLocation": None})

    def test_itemMessage(self):
        """An item is a MIME message: an RFC 2047 subject, the item's type with charset, 8-bit UTF-8 CRLF body."""
        message = itemMessage("BEGIN:VCARD\nFN:J\u00fcrgen\nEND:VCARD", "text/vcard", "J\u00fcrgen")
        parsed = email.message_from_bytes(message)
        self.assertEqual(str(email.header.make_header(email.header.decode_header(parsed["Subject"]))),
                         "J\u00fcrgen")
        self.assertTrue(parsed["Subject"].startswith("=?utf-8?"))
        self.assertEqual(parsed.get_content_type(), "text/vcard")
        self.assertEqual(parsed.get_payload(decode=True), "BEGIN:VCARD\r\nFN:J\u00fcrgen\r\nEND:VCARD\r\n".encode())
        self.assertNotIn(b"\n", message.replace(b"\r\n", b""))

    def test_appendWithSyncLiteral(self):
        """Without LITERAL+, APPEND waits for the continuation before the item's octets."""
        self.client.capabilities.discard("LITERAL+")
        message = itemMessage("BEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\n", "text/vcard", "A")
        d = self.client.append("Contacts", message)
        self.assertEqual(self.sent(), b'X1 APPEND "Contacts" {%d}\r\n' % (len(message),))
        self.answer(b"+ Ready\r\n")
        self.assertEqual(self.sent(), message + b"\r\n")
        self.answer(b"X1 OK [APPENDUID 7 3] APPEND completed\r\n")
        self.assertEqual(self.successResultOf(d), 3)

    def test_createAppointmentLiteralPlus(self):
        """createAppointment APPENDs a text/calendar message built by convert.buildEvent, with LITERAL+."""
        d = self.client.createAppointment({"PidTagSubject": "Review", "PidLidLocation": "Room 1",
                                           "PidLidAppointmentStartWhole": START.replace(hour=9),
                                           "PidLidAppointmentEndWhole": START.replace(hour=10)}, uid="u-1")
        sent = self.sent()
        self.assertTrue(sent.startswith(b'X1 APPEND "Calendar" {'))
        self.assertIn(b"+}\r\n", sent)
        self.assertIn(b"Content-Type: text/calendar; charset=utf-8; method=PUBLISH", sent)
        self.assertIn(b"SUMMARY:Review", sent)
        self.assertIn(b"DTSTART:20261207T090000Z", sent)
        self.answer(b"X1 OK [APPENDUID 7 9] done\r\n")
        self.assertEqual(self.successResultOf(d), 9)

    def test_changeWithReplace(self):
        """A change is UID REPLACE when the server announces REPLACE (RFC 8508)."""
        self.client.capabilities.add("REPLACE")
        d = self.client.changeTask("Tasks", 5, {"PidTagSubject": "Done", "PidLidTaskComplete": True}, uid="t")
        self.assertEqual(self.sent(), b'X1 SELECT "Tasks"\r\n')
        self.answer(b"X1 OK [READ-WRITE] done\r\n")
        sent = self.sent()
        self.assertTrue(sent.startswith(b'X2 UID REPLACE 5 "Tasks" {'))
        self.assertIn(b"STATUS:COMPLETED", sent)
        self.answer(b"* OK [APPENDUID 7 6] Replacement Message ready\r\n* 1 EXPUNGE\r\nX2 OK done\r\n")
        self.assertEqual(self.successResultOf(d), 6)

    def test_changeWithoutReplace(self):
        """Without REPLACE, a change APPENDs the new item then deletes and expunges the old UID."""
        d = self.client.changeContact("Contacts", 5, {"PidTagDisplayName": "Ann"}, uid="c")
        self.answer(b"X1 OK done\r\n")
        self.assertIn(b"FN:Ann", self.sent())
        self.answer(b"X2 OK [APPENDUID 7 6] done\r\n")
        self.assertEqual(self.sent(), b"X3 UID STORE 5 +FLAGS.SILENT (\\Deleted)\r\n")
        self.answer(b"X3 OK done\r\n")
        self.assertEqual(self.sent(), b"X4 UID EXPUNGE 5\r\n")
        self.answer(b"* 1 EXPUNGE\r\nX4 OK done\r\n")
        self.assertEqual(self.successResultOf(d), 6)

    def test_deleteMovesToOwnTrash(self):
        """delete = UID MOVE to the viewer's own \\Trash folder, found by LIST (R-DEL-2)."""
        d = self.client.deleteItem("~boss/Calendar", 17)
        self.assertTrue(self.sent().startswith(b'X1 LIST "" "*" RETURN (SPECIAL-USE'))
        self.answer(b'* LIST (\\Trash) "/" "Papierkorb"\r\nX1 OK done\r\n')
        self.assertEqual(self.sent(), b'X2 SELECT "~boss/Calendar"\r\n')
        self.answer(b"X2 OK done\r\n")
        self.assertEqual(self.sent(), b'X3 UID MOVE 17 "Papierkorb"\r\n')
        self.answer(b"X3 OK done\r\n")
        self.successResultOf(d)

    def test_deleteFromTrashExpunges(self):
        """Deleting an item already in Deleted Items marks it \\Deleted and expunges that UID."""
        d = self.client.deleteItem("Deleted Items", 4, trash="Deleted Items")
        self.assertEqual(self.sent(), b'X1 SELECT "Deleted Items"\r\n')
        self.answer(b"X1 OK done\r\n")
        self.assertEqual(self.sent(), b"X2 UID STORE 4 +FLAGS.SILENT (\\Deleted)\r\n")
        self.answer(b"X2 OK done\r\n")
        self.assertEqual(self.sent(), b"X3 UID EXPUNGE 4\r\n")
        self.answer(b"* 1 EXPUNGE\r\nX3 OK done\r\n")
        self.successResultOf(d)

    def test_setACLAndGetACL(self):
        """SETACL sends identifier and rights; GETACL's pairs come back as a dict."""
        d = self.client.setACL("Calendar", "assistant", "lr0")
        self.assertEqual(self.sent(), b'X1 SETACL "Calendar" "assistant" "lr0"\r\n')
        self.answer(b"X1 OK done\r\n")
        self.successResultOf(d)
        d = self.client.getACL("Calendar")
        self.answer(b'* ACL Calendar demo lrswipkxtea assistant lr0\r\nX2 OK done\r\n')
        self.assertEqual(self.successResultOf(d), {"demo": "lrswipkxtea", "assistant": "lr0"})

    def test_freeBusy(self):
        """XFREEBUSY sends who, window and DETAILED, and returns the literal's VCALENDAR (section 7)."""
        d = self.client.freeBusy("carol@example.org", START, END, detailed=True)
        self.assertEqual(self.sent(), b'X1 XFREEBUSY "carol@example.org" "20261207T000000Z" "20261214T000000Z"'
                                      b' (DETAILED)\r\n')
        body = b"BEGIN:VCALENDAR\r\nMETHOD:PUBLISH\r\nEND:VCALENDAR\r\n"
        self.answer(b'* XFREEBUSY "carol@example.org" {%d}\r\n' % (len(body),) + body + b"\r\nX1 OK done\r\n")
        self.assertEqual(self.successResultOf(d), body.decode())

    def test_storeProperties(self):
        """STORE XPROPS.SILENT with UNCHANGEDSINCE sends typed values (section 4.2's example)."""
        self.client.storeProperties(42, {"PS_PUBLIC_STRINGS/name=Keywords/0x101F": ["Blue", "Travel"],
                                         "PidLidReminderSet": False, "PidLidLocation": None}, unchangedSince=310)
        self.assertEqual(self.sent(), b'X1 UID STORE 42 (UNCHANGEDSINCE 310) XPROPS.SILENT'
                                      b' ("PS_PUBLIC_STRINGS/name=Keywords/0x101F" ("Blue" "Travel")'
                                      b' "PidLidReminderSet" 0 "PidLidLocation" NIL)\r\n')

    def test_commandsQueued(self):
        """Commands asked for together are sent one at a time, in order."""
        first = self.client.command(b"NOOP")
        second = self.client.command(b"CHECK")
        self.assertEqual(self.sent(), b"X1 NOOP\r\n")
        self.answer(b"X1 OK done\r\n")
        self.assertEqual(self.sent(), b"X2 CHECK\r\n")
        self.answer(b"X2 BAD no\r\n")
        self.successResultOf(first)
        self.failureResultOf(second, CommandFailed)

    def test_byteByByte(self):
        """Responses split anywhere, inside literals too, parse as when they arrive whole."""
        d = self.client.freeBusy("~boss", START, END)
        self.sent()
        body = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
        data = b'* XFREEBUSY "~boss" {%d}\r\n' % (len(body),) + body + b"\r\nX1 OK done\r\n"
        for i in range(len(data)):
            self.answer(data[i:i + 1])
        self.assertEqual(self.successResultOf(d), body.decode())

    def test_plainWithoutSASLIR(self):
        """Without SASL-IR, AUTHENTICATE PLAIN sends its token after the server's continuation."""
        self.client.capabilities.discard("SASL-IR")
        d = self.client.login("demo", "pw", mechanism="PLAIN")
        self.assertEqual(self.sent(), b"X1 AUTHENTICATE PLAIN\r\n")
        self.answer(b"+ \r\n")
        self.assertEqual(self.sent(), base64.b64encode(b"\0demo\0pw") + b"\r\n")
        self.answer(b"X1 OK Logged in\r\n")
        self.assertEqual(self.sent(), b"X2 CAPABILITY\r\n")
        self.answer(b"* CAPABILITY IMAP4rev1 XMAPI\r\nX2 OK done\r\n")
        self.successResultOf(d)
        self.assertTrue(self.client.speaksXMAPI)

    def test_emptyResults(self):
        """No match is an ESEARCH without ALL; a non-calendar message answers XINSTANCES () (R-INST-3)."""
        d = self.client.searchOverlaps(START, END)
        self.answer(b'* ESEARCH (TAG "X1") UID\r\nX1 OK done\r\n')
        self.assertEqual(self.successResultOf(d), [])
        d = self.client.fetchInstances([5], START, END, properties=())
        self.assertEqual(self.sent(), b'X1 UID SEARCH RETURN (ALL) XOVERLAPS "20261207T000000Z" "20261214T000000Z"'
                                      b'\r\nX2 UID FETCH 5 (XINSTANCES ("20261207T000000Z" "20261214T000000Z"))\r\n')
        self.answer(b"* 1 FETCH (UID 5 XINSTANCES ())\r\nX2 OK done\r\n")
        self.assertEqual(self.successResultOf(d), {5: ([], {})})

    def test_unparsableResponse(self):
        """A response the client cannot parse fails its command, and the next command still works."""
        d = self.client.command(b"NOOP")
        self.answer(b"* 1 FETCH (UID 1\r\n")
        self.answer(b"X1 OK done\r\n")
        self.failureResultOf(d, ResponseSyntaxError)
        d = self.client.command(b"NOOP")
        self.answer(b"X2 OK done\r\n")
        self.successResultOf(d)

    def test_connectionLostFailsPending(self):
        """A lost connection fails the command in flight and the queued ones."""
        first = self.client.command(b"NOOP")
        second = self.client.command(b"NOOP")
        self.client.connectionLost(Exception("gone"))
        self.failureResultOf(first)
        self.failureResultOf(second)


class AgendaTests(unittest.TestCase):
    def setUp(self):
        self.client = XMAPIClient()
        self.transport = StringTransport()
        self.client.makeConnection(self.transport)
        self.client.dataReceived(GREETING)

    def test_weekOf(self):
        """A week runs from Monday 00:00 UTC for seven days."""
        self.assertEqual(weekOf(datetime.date(2026, 12, 10)), (START, END))

    def test_agendaThroughXMAPI(self):
        """With XMAPI announced the agenda uses XOVERLAPS and XINSTANCES and says so."""
        self.client.capabilities.add("XMAPI")
        d = readAgenda(self.client, START, END, ["~boss/Calendar"])
        self.assertEqual(self.transport.value(), b'X1 EXAMINE "~boss/Calendar"\r\n')
        self.client.dataReceived(b"X1 OK [READ-ONLY] done\r\n")
        self.client.dataReceived(b'* ESEARCH (TAG "X2") UID ALL 17\r\nX2 OK done\r\n')
        self.client.dataReceived(b'* 1 FETCH (UID 17 XINSTANCES (("20261209T090000Z" "20261209T093000Z" BUSY'
                                 b' NIL)) XPROPS (PidTagSubject "Stand-up" PidLidLocation "Room 2"))\r\n'
                                 b"X3 OK done\r\n")
        path, found = self.successResultOf(d)
        self.assertEqual(path, PATH_XMAPI)
        self.assertEqual([(f, o.uid, o.subject, o.location, o.fbtype) for f, o in found],
                         [("~boss/Calendar", 17, "Stand-up", "Room 2", "BUSY")])
        text = formatAgenda(path, found, START, END)
        self.assertIn("Wed 2026-12-09 09:00 - 09:30  BUSY", text)
        self.assertIn("Stand-up @ Room 2  [~boss/Calendar]", text)

    def test_agendaClientSide(self):
        """Without XMAPI the agenda fetches bodies and expands them with recurring-ical-events."""
        body = itemMessage("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:a\r\n"
                           "DTSTAMP:20261201T000000Z\r\nDTSTART:20261130T090000Z\r\nDTEND:20261130T093000Z\r\n"
                           "RRULE:FREQ=DAILY;COUNT=10\r\nEXDATE:20261208T090000Z\r\nSUMMARY:Daily\r\n"
                           "END:VEVENT\r\nEND:VCALENDAR\r\n", "text/calendar", "Daily")
        d = readAgenda(self.client, START, END, ["Calendar"])
        self.client.dataReceived(b"X1 OK done\r\n")
        self.assertIn(b"X2 UID FETCH 1:* (UID BODY.PEEK[])", self.transport.value())
        self.client.dataReceived(b"* 1 FETCH (UID 4 BODY[] {%d}\r\n" % (len(body),) + body + b")\r\nX2 OK done\r\n")
        path, found = self.successResultOf(d)
        self.assertEqual(path, PATH_CLIENT)
        # Nov 30 + 10 days = Dec 9 last; in the week: Dec 7 and Dec 9 (Dec 8 excluded).
        self.assertEqual([o.start.day for _, o in found], [7, 9])

    def test_expandBodyBusyTypes(self):
        """Client-side, a transparent occurrence is FREE and a tentative one BUSY-TENTATIVE, as free/busy says."""
        def event(uid, extra):
            return ("BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20261201T000000Z\r\nDTSTART:20261208T090000Z\r\n"
                    "DTEND:20261208T100000Z\r\n%s\r\nEND:VEVENT\r\n" % (uid, extra))
        body = itemMessage("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n" + event("a", "TRANSP:TRANSPARENT")
                           + event("b", "STATUS:TENTATIVE") + "END:VCALENDAR\r\n", "text/calendar", "x")
        found = expandBody(1, body, START, END)
        self.assertEqual(sorted(o.fbtype for o in found), ["BUSY-TENTATIVE", "FREE"])

    def test_expandBodyIgnoresUnreadable(self):
        """A message without a readable text/calendar part gives no occurrences."""
        self.assertEqual(expandBody(1, b"Subject: x\r\n\r\nhello\r\n", START, END), [])
        self.assertEqual(expandBody(1, itemMessage("garbage", "text/calendar", "x"), START, END), [])
