# -*- test-case-name: tests.test_mapi_client_e2e -*-
"""
The XMAPI reference client (L{gateway.mapi.client}) end to end against a
real gateway on loopback: STARTTLS and login, the one-round-trip LIST,
items it creates read back by plain clients (imaplib, the HTTP free/busy),
sharing with SETACL and C{~boss/Calendar}, and the agenda front.  The
server announces C{XMAPI} (C{[imap] xmapi}, on by default), so the client
takes its XMAPI path.
"""

import argparse
import datetime
import email
import http.client
import imaplib
import io
import poplib
import ssl
import subprocess
import sys

import icalendar
from twisted.internet import defer, reactor
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from gateway import ctl
from gateway.http.server import makeFactory as httpFactory
from gateway.imap.server import makeFactory as imapFactory
from gateway.mapi.client import CommandFailed
from gateway.mapi.client_agenda import PATH_CLIENT, PATH_XMAPI, agenda, openSession, readAgenda, weekOf
from tests.support import PASSWORD, freeBusyPeriods, makeTestContext, testCertificate

UTC = datetime.timezone.utc
START, END = weekOf(datetime.date(2026, 12, 9))
#: A weekly stand-up on Mondays and Wednesdays from the week before, every
#: week's Monday 9:00-9:30 UTC, with one Wednesday left out.
SERIES = {"PidTagSubject": "Stand-up", "PidLidLocation": "Room 2",
          "PidLidAppointmentStartWhole": datetime.datetime(2026, 11, 30, 9, tzinfo=UTC),
          "PidLidAppointmentEndWhole": datetime.datetime(2026, 11, 30, 9, 30, tzinfo=UTC),
          "RRULE": "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=8"}


class ClientEndToEndTests(unittest.TestCase):
    def setUp(self):
        # XMAPI announced ([imap] xmapi, on by default): the client takes the XMAPI path.
        self.context = makeTestContext(self, reactor=reactor, clock=reactor, cleartextLogin=False)
        self.factory = imapFactory(self.context)
        self.site = httpFactory(self.context, generateFreeBusy=None)
        imapPort = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        httpPort = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.port, self.httpPort = imapPort.getHost().port, httpPort.getHost().port
        self.addCleanup(imapPort.stopListening)
        self.addCleanup(httpPort.stopListening)
        self.addCleanup(self._dropSessions)
        self.clients = []

    def _dropSessions(self):
        for client in self.clients:
            if client.transport is not None and client.transport.connected:
                client.transport.abortConnection()
        for session in list(self.factory.sessions):
            session.transport.abortConnection()

    @defer.inlineCallbacks
    def session(self, account="demo@example.test"):
        client = yield openSession(reactor, "127.0.0.1", self.port, account, PASSWORD,
                                   cafile=testCertificate()[0])
        self.clients.append(client)
        return client

    def requireXMAPI(self, client):
        # R-CAP-1 holds, so the server announces XMAPI by default.
        self.assertTrue(client.speaksXMAPI, "the server does not announce XMAPI")

    def imaplibFetch(self, mailbox):
        """
        Every message of C{mailbox} as C{imaplib} reads it (STARTTLS, LOGIN, UID FETCH BODY[]).
        """
        def fetch():
            imap = imaplib.IMAP4("127.0.0.1", self.port)
            try:
                imap.starttls(ssl.create_default_context(cafile=testCertificate()[0]))
                imap.login("demo", PASSWORD)
                imap.select('"%s"' % (mailbox,), readonly=True)
                typ, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
                return [email.message_from_bytes(d[1]) for d in data if isinstance(d, tuple)]
            finally:
                imap.logout()
        return deferToThread(fetch)

    def freeBusyVfb(self, account="demo"):
        def get():
            connection = http.client.HTTPConnection("127.0.0.1", self.httpPort, timeout=30)
            connection.request("GET", "/~%s/freebusy.vfb?start=%s&end=%s" % (
                account, START.strftime("%Y-%m-%dT%H:%M:%SZ"), END.strftime("%Y-%m-%dT%H:%M:%SZ")),
                headers={"Host": "example.test"})
            response = connection.getresponse()
            try:
                return response.status, response.getheader("Content-Type"), response.read()
            finally:
                connection.close()
        return deferToThread(get)

    # -- what main serves today ---------------------------------------------------------

    @defer.inlineCallbacks
    def test_startTLSLoginAndStore(self):
        """After STARTTLS and AUTHENTICATE PLAIN, one LIST gives folders with classes, counts and special use."""
        client = yield self.session()
        self.assertTrue(client.secure)
        folders = yield client.listFolders()
        byName = {f.name: f for f in folders}
        self.assertEqual(byName["Calendar"].folderClass, "IPF.Appointment")
        self.assertEqual(byName["Contacts"].folderClass, "IPF.Contact")
        self.assertEqual(byName["Tasks"].folderClass, "IPF.Task")
        self.assertEqual(byName["INBOX"].folderClass, "IPF.Note")
        self.assertEqual(byName["INBOX"].status["MESSAGES"], 0)
        self.assertIn("r", byName["INBOX"].rights)
        self.assertEqual(client.specialFolder(folders, "\\Trash"), "Deleted Items")
        yield client.logout()

    @defer.inlineCallbacks
    def test_cramMD5WithoutTLS(self):
        """On the clear-text port of a domain without clear-text passwords, the client logs in with CRAM-MD5."""
        client = yield openSession(reactor, "127.0.0.1", self.port, "demo@example.test", PASSWORD, tls=False)
        self.clients.append(client)
        self.assertFalse(client.secure)
        folders = yield client.listFolders(entries=())
        self.assertIn("INBOX", [f.name for f in folders])
        yield client.logout()

    @defer.inlineCallbacks
    def test_wrongPassword(self):
        """A wrong password fails the login with CommandFailed NO."""
        d = openSession(reactor, "127.0.0.1", self.port, "demo@example.test", "wrong", cafile=testCertificate()[0])
        failure = yield self.assertFailure(d, CommandFailed)
        self.assertEqual(failure.status, "NO")

    @defer.inlineCallbacks
    def test_appointmentReadableByPlainClients(self):
        """An appointment series the client APPENDs is an iCalendar message for imaplib and busy in freebusy.vfb."""
        client = yield self.session()
        uid = yield client.createAppointment(SERIES, uid="standup-1")
        self.assertIsInstance(uid, int)
        [message] = yield self.imaplibFetch("Calendar")
        self.assertEqual(message["Subject"], "Stand-up")
        [part] = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
        [event] = icalendar.Calendar.from_ical(part.get_payload(decode=True)).walk("VEVENT")
        self.assertEqual((str(event["UID"]), str(event["SUMMARY"]), str(event["LOCATION"])),
                         ("standup-1", "Stand-up", "Room 2"))
        status, contentType, body = yield self.freeBusyVfb()
        self.assertEqual(status, 200)
        self.assertTrue(contentType.startswith("text/calendar"))
        busy = freeBusyPeriods(body).get("BUSY", [])
        self.assertEqual(busy, [(datetime.datetime(2026, 12, 7, 9, tzinfo=UTC),
                                 datetime.datetime(2026, 12, 7, 9, 30, tzinfo=UTC)),
                                (datetime.datetime(2026, 12, 9, 9, tzinfo=UTC),
                                 datetime.datetime(2026, 12, 9, 9, 30, tzinfo=UTC))])
        path, found = yield readAgenda(client, START, END)
        self.assertEqual(path, PATH_XMAPI if client.speaksXMAPI else PATH_CLIENT)
        self.assertEqual([(o.start.day, o.subject, o.location) for _, o in found],
                         [(7, "Stand-up", "Room 2"), (9, "Stand-up", "Room 2")])

    @defer.inlineCallbacks
    def test_invitationReadByPOP3(self):
        """An appointment the client puts in INBOX is a text/calendar message poplib retrieves over STLS."""
        from gateway.pop3.server import makeFactory as pop3Factory

        pop3Port = reactor.listenTCP(0, pop3Factory(self.context), interface="127.0.0.1")
        self.addCleanup(pop3Port.stopListening)
        client = yield self.session()
        yield client.createAppointment(SERIES, folder="INBOX", uid="standup-1")

        def retrieve():
            pop = poplib.POP3("127.0.0.1", pop3Port.getHost().port, timeout=30)
            try:
                pop.stls(ssl.create_default_context(cafile=testCertificate()[0]))
                pop.user("demo")
                pop.pass_(PASSWORD)
                return b"\r\n".join(pop.retr(1)[1])
            finally:
                pop.quit()
        message = email.message_from_bytes((yield deferToThread(retrieve)))
        self.assertEqual(message.get_content_type(), "text/calendar")
        self.assertIn(b"SUMMARY:Stand-up", message.get_payload(decode=True))

    @defer.inlineCallbacks
    def test_changeAndDeleteAppointment(self):
        """Changing replaces the item (one message, new text); deleting moves it to Deleted Items."""
        client = yield self.session()
        uid = yield client.createAppointment(SERIES, uid="standup-1")
        changed = dict(SERIES, PidTagSubject="Stand-up (moved)", PidLidLocation="Room 3")
        newUid = yield client.changeAppointment("Calendar", uid, changed, uid="standup-1")
        self.assertNotEqual(newUid, uid)
        messages = yield self.imaplibFetch("Calendar")
        self.assertEqual([m["Subject"] for m in messages], ["Stand-up (moved)"])
        yield client.deleteItem("Calendar", newUid)
        self.assertEqual((yield self.imaplibFetch("Calendar")), [])
        trashed = yield self.imaplibFetch("Deleted Items")
        self.assertEqual([m["Subject"] for m in trashed], ["Stand-up (moved)"])
        status, _, body = yield self.freeBusyVfb()
        self.assertEqual(freeBusyPeriods(body).get("BUSY", []), [])

    @defer.inlineCallbacks
    def test_contactAndTask(self):
        """A contact is a text/vcard message and a task a VTODO message; both change and delete."""
        client = yield self.session()
        contact = yield client.createContact({"PidTagDisplayName": "Ann Lee", "PidTagGivenName": "Ann",
                                              "PidTagSurname": "Lee", "PidLidEmail1EmailAddress": "ann@example.org",
                                              "PidTagMobileTelephoneNumber": "+1 555 0100"})
        task = yield client.createTask({"PidTagSubject": "Write report",
                                        "PidLidTaskDueDate": datetime.datetime(2026, 12, 11, 17, tzinfo=UTC)})
        [card] = yield self.imaplibFetch("Contacts")
        [part] = [p for p in card.walk() if p.get_content_type() == "text/vcard"]
        text = part.get_payload(decode=True).decode()
        self.assertIn("FN:Ann Lee", text)
        self.assertIn("EMAIL:ann@example.org", text)
        [todo] = yield self.imaplibFetch("Tasks")
        self.assertIn(b"BEGIN:VTODO", todo.as_bytes())
        newContact = yield client.changeContact("Contacts", contact, {"PidTagDisplayName": "Ann Lee-Gro\u00df"})
        yield client.changeTask("Tasks", task, {"PidTagSubject": "Write report", "PidLidTaskComplete": True})
        [card] = yield self.imaplibFetch("Contacts")
        self.assertIn("FN:Ann Lee-Gro\u00df", card.get_payload(decode=True).decode("utf-8"))
        [todo] = yield self.imaplibFetch("Tasks")
        self.assertIn(b"STATUS:COMPLETED", todo.as_bytes())
        yield client.deleteItem("Contacts", newContact)
        self.assertEqual((yield self.imaplibFetch("Contacts")), [])

    @defer.inlineCallbacks
    def test_assistantOpensBossCalendar(self):
        """The boss grants lr with SETACL; the assistant lists ~boss/Calendar and reads its agenda."""
        boss = yield self.session("other@example.test")
        yield boss.createAppointment(SERIES, uid="boss-1")
        yield boss.setACL("Calendar", "demo", "lr")
        acl = yield boss.getACL("Calendar")
        self.assertEqual(acl.get("demo@example.test", acl.get("demo")), "lr")
        assistant = yield self.session()
        folders = yield assistant.listFolders()
        byName = {f.name: f for f in folders}
        self.assertIn("~other/Calendar", byName)
        self.assertEqual(byName["~other/Calendar"].folderClass, "IPF.Appointment")
        rights = byName["~other/Calendar"].rights
        self.assertTrue({"l", "r"} <= set(rights) and not {"t", "e", "a"} & set(rights), rights)
        path, found = yield readAgenda(assistant, START, END, ["~other/Calendar"])
        self.assertEqual([o.start.day for _, o in found], [7, 9])
        # lr is not enough to delete from the boss's calendar (R-DEL-2 needs t and e).
        failure = yield self.assertFailure(assistant.deleteItem("~other/Calendar", 1), CommandFailed)
        self.assertEqual((failure.status, failure.code), ("NO", ["NOPERM"]))

    @defer.inlineCallbacks
    def test_assistantDeletesIntoOwnTrash(self):
        """With lrte on ~boss/Calendar, deleting moves the item to the assistant's own Deleted Items (R-DEL-2)."""
        boss = yield self.session("other@example.test")
        uid = yield boss.createAppointment(SERIES, uid="boss-1")
        yield boss.setACL("Calendar", "demo", "lrte")
        assistant = yield self.session()
        yield assistant.deleteItem("~other/Calendar", uid)
        trashed = yield self.imaplibFetch("Deleted Items")
        self.assertEqual([m["Subject"] for m in trashed], ["Stand-up"])
        yield boss.select("Calendar", readOnly=True)
        self.assertEqual((yield boss.fetchBodies()), {})

    @defer.inlineCallbacks
    def test_agendaFront(self):
        """The agenda front logs in, names the path it took and lists the week's occurrences."""
        client = yield self.session()
        yield client.createAppointment(SERIES, uid="standup-1")
        out = io.StringIO()
        args = argparse.Namespace(account="demo@example.test", week="2026-12-09", folder=None, host="127.0.0.1",
                                  port=self.port, cafile=testCertificate()[0], no_tls=False)
        code = yield agenda(reactor, args, PASSWORD, out)
        self.assertEqual(code, 0)
        text = out.getvalue()
        self.assertIn("Agenda 2026-12-07 to 2026-12-13 (UTC), via ", text)
        self.assertIn(PATH_XMAPI if client.speaksXMAPI else PATH_CLIENT, text)
        self.assertIn("Mon 2026-12-07 09:00 - 09:30  BUSY           Stand-up @ Room 2  [Calendar]", text)
        self.assertIn("Wed 2026-12-09 09:00 - 09:30", text)

    @defer.inlineCallbacks
    def test_agendaCommandLine(self):
        """python -m gateway.mapi.client agenda, run as a process, reads the password from stdin and prints the week."""
        client = yield self.session()
        yield client.createAppointment(SERIES, uid="standup-1")
        command = [sys.executable, "-m", "gateway.mapi.client", "agenda", "demo@example.test", "--week",
                   "2026-12-09", "--port", str(self.port), "--password-stdin", "--cafile", testCertificate()[0]]
        result = yield deferToThread(subprocess.run, command, input=PASSWORD + "\n", capture_output=True,
                                     text=True, timeout=120)
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        self.assertIn("via " + (PATH_XMAPI if client.speaksXMAPI else PATH_CLIENT), result.stdout)
        self.assertIn("Mon 2026-12-07 09:00 - 09:30", result.stdout)
        result = yield deferToThread(subprocess.run, command, input="wrong\n", capture_output=True,
                                     text=True, timeout=120)
        self.assertEqual(result.returncode, 77)
        self.assertIn("agenda: the server answered NO", result.stderr)
        self.assertNotIn("wrong", result.stderr)

    def test_gatewayctlParser(self):
        """gatewayctl has an agenda subcommand with --week, --host, --port, --password-stdin and --cafile."""
        args = ctl.makeParser().parse_args(["agenda", "demo", "--week", "2026-12-09", "--host", "::1", "--port",
                                            "1143", "--password-stdin", "--cafile", "ca.pem"])
        self.assertEqual((args.account, args.week, args.host, args.port, args.password_stdin, args.cafile),
                         ("demo", "2026-12-09", "::1", 1143, True, "ca.pem"))

    # -- XMAPI (skipped if the server does not announce it) ------------------------------

    @defer.inlineCallbacks
    def test_xmapiOverlapsAgreeWithBodies(self):
        """XOVERLAPS + XINSTANCES give the occurrences that expanding the bodies client-side gives."""
        client = yield self.session()
        self.requireXMAPI(client)
        yield client.createAppointment(SERIES, uid="standup-1")
        yield client.createAppointment(dict(SERIES, RRULE=None, PidTagSubject="Far away",
                                            PidLidAppointmentStartWhole=datetime.datetime(2027, 3, 1, tzinfo=UTC),
                                            PidLidAppointmentEndWhole=datetime.datetime(2027, 3, 2, tzinfo=UTC)))
        yield client.select("Calendar", readOnly=True)
        uids = yield client.searchOverlaps(START, END)
        self.assertEqual(len(uids), 1)
        fetched = yield client.fetchInstances(uids, START, END)
        [(instances, props)] = fetched.values()
        self.assertEqual(props["PidTagSubject"], "Stand-up")
        from gateway.mapi.client_agenda import expandBody

        bodies = yield client.fetchBodies(uids)
        expected = expandBody(uids[0], bodies[uids[0]], START, END)
        self.assertEqual([(i[0], i[1], i[2]) for i in instances], [(o.start, o.end, o.fbtype) for o in expected])

    @defer.inlineCallbacks
    def test_xmapiProperties(self):
        """STORE XPROPS then FETCH XPROPS returns typed stored and derived properties."""
        client = yield self.session()
        self.requireXMAPI(client)
        uid = yield client.createAppointment(SERIES, uid="standup-1")
        yield client.select("Calendar")
        keywords = "PS_PUBLIC_STRINGS/name=Keywords/0x101F"
        yield client.storeProperties(uid, {keywords: ["Blue", "Travel"]})
        values = yield client.fetchProperties([uid], [keywords, "PidLidAppointmentStartWhole", "PidLidRecurring"])
        self.assertEqual(values[uid], {keywords: ["Blue", "Travel"],
                                       "PidLidAppointmentStartWhole": SERIES["PidLidAppointmentStartWhole"],
                                       "PidLidRecurring": True})

    @defer.inlineCallbacks
    def test_xmapiFreeBusyRights(self):
        """XFREEBUSY: the boss's busy times for an assistant with 0, and an empty VFREEBUSY without rights."""
        boss = yield self.session("other@example.test")
        self.requireXMAPI(boss)
        yield boss.createAppointment(SERIES, uid="boss-1")
        assistant = yield self.session()
        text = yield assistant.freeBusy("other@example.test", START, END)
        self.assertEqual(freeBusyPeriods(text.encode()).get("BUSY", []), [])
        yield boss.setACL("Calendar", "demo", "0")
        text = yield assistant.freeBusy("~other", START, END, detailed=True)
        self.assertEqual(len(freeBusyPeriods(text.encode()).get("BUSY", [])), 2)
        self.assertNotIn("Stand-up", text)

