# -*- test-case-name: tests.test_http_e2e -*-
"""
End-to-end tests of the HTTP front-end over loopback: C{http.client} and
C{curl}, in the clear and over TLS (an C{ssl:}-style listener).
"""

import base64
import http.client
import os
import shutil
import smtplib
import ssl
import subprocess
from datetime import datetime, timezone
from xml.etree import ElementTree

from twisted.internet import defer, reactor, task
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SkipTest, TestCase

from gateway.http.server import makeFactory
from gateway.lmtp.server import makeFactory as lmtpFactory
from tests.support import PASSWORD, freeBusyPeriods, makeTestContext, testCertificate

CURL = "/usr/bin/curl"
AUTH = {"Authorization": "Basic " + base64.b64encode(("demo:" + PASSWORD).encode()).decode()}
DATA = os.urandom(100_000)


def stubFreeBusy(account, start, end, url):
    """A stand-in for gateway.store.calendar until it lands."""
    return ("BEGIN:VCALENDAR\r\nX-STUB:%s %s\r\nEND:VCALENDAR\r\n" % (account.address, url)).encode()


class EndToEndMixin:
    cleartextLogin = True
    #: The free/busy generator (C{None}: the real one).
    generateFreeBusy = staticmethod(stubFreeBusy)

    def setUp(self):
        self.context = makeTestContext(self, cleartextLogin=self.cleartextLogin, reactor=reactor, clock=reactor)
        self.site = makeFactory(self.context, generateFreeBusy=self.generateFreeBusy)
        self.channels = []
        build = self.site.buildProtocol

        def buildProtocol(addr):
            channel = build(addr)
            self.channels.append(channel)
            return channel

        self.site.buildProtocol = buildProtocol
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.tlsPort = reactor.listenSSL(0, self.site, self.context.tls, interface="127.0.0.1")
        self.addCleanup(self.closeAll)
        files = self.context.realm.accountFor("demo@example.test").fileStore.root
        self.files = files
        files.child("data.bin").setContent(DATA)
        files.child("private").child("diary.txt").setContent(b"dear diary")
        with open(os.path.join(os.path.dirname(files.path), "secret.txt"), "wb") as f:
            f.write(b"top secret")
        os.symlink("/etc/passwd", files.child("passwd").path)

    @defer.inlineCallbacks
    def closeAll(self):
        yield self.port.stopListening()
        yield self.tlsPort.stopListening()
        for channel in self.open():
            channel.transport.abortConnection()
        for _ in range(200):
            if not self.open():
                break
            yield task.deferLater(reactor, 0.01, lambda: None)

    def open(self):
        return [c for c in self.channels if getattr(getattr(c, "transport", None), "connected", False)]

    def connection(self, secure=False):
        if secure:
            context = ssl.create_default_context(cafile=testCertificate()[0])
            return http.client.HTTPSConnection("127.0.0.1", self.tlsPort.getHost().port, context=context, timeout=10)
        return http.client.HTTPConnection("127.0.0.1", self.port.getHost().port, timeout=10)

    def fetch(self, method, path, headers=None, body=None, secure=False):
        """Blocking: one request on a new connection; C{(status, headers, body)}."""
        connection = self.connection(secure)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()

    def curl(self, *args):
        """Blocking: run curl; C{(exit code, stdout)}."""
        if not os.path.exists(CURL):
            raise SkipTest("curl is not installed")
        result = subprocess.run([CURL, "-sS", "--max-time", "20", *args], capture_output=True, timeout=30)
        return result.returncode, result.stdout

    def url(self, path, secure=False):
        if secure:
            return "https://localhost:%d%s" % (self.tlsPort.getHost().port, path)
        return "http://127.0.0.1:%d%s" % (self.port.getHost().port, path)


class HTTPClientTests(EndToEndMixin, TestCase):
    def test_getHeadRangeConditional(self):
        """http.client on one keep-alive connection: GET, HEAD, Range and If-None-Match behave."""

        def client():
            connection = self.connection()
            try:
                connection.request("GET", "/~demo/data.bin")
                response = connection.getresponse()
                self.assertEqual((response.status, response.read()), (200, DATA))
                etag = response.headers["ETag"]
                self.assertEqual(response.headers["Server"], "gateway")
                connection.request("HEAD", "/~demo/data.bin")
                response = connection.getresponse()
                self.assertEqual((response.status, response.read()), (200, b""))
                self.assertEqual(response.headers["Content-Length"], str(len(DATA)))
                connection.request("GET", "/~demo/data.bin", headers={"Range": "bytes=-100"})
                response = connection.getresponse()
                self.assertEqual((response.status, response.read()), (206, DATA[-100:]))
                connection.request("GET", "/~demo/data.bin", headers={"If-None-Match": etag})
                response = connection.getresponse()
                self.assertEqual((response.status, response.read()), (304, b""))
            finally:
                connection.close()

        return deferToThread(client)

    def test_putDeleteOverTLS(self):
        """Over HTTPS the owner PUTs (201, then 204), reads back, and DELETEs a file."""

        def client():
            body = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
            self.assertEqual(self.fetch("PUT", "/~demo/freebusy.vfb", AUTH, body, secure=True)[0], 201)
            self.assertEqual(self.fetch("PUT", "/~demo/freebusy.vfb", AUTH, body, secure=True)[0], 204)
            status, headers, got = self.fetch("GET", "/~demo/freebusy.vfb", secure=True)
            self.assertEqual((status, got, headers["Content-Type"]), (200, body, "text/calendar"))
            self.assertEqual(self.fetch("DELETE", "/~demo/freebusy.vfb", AUTH, secure=True)[0], 204)
            self.assertFalse(self.files.child("freebusy.vfb").exists())

        return deferToThread(client)

    def test_largePut(self):
        """A large PUT body is stored intact (twisted.web spools it to a temporary file)."""
        big = os.urandom(3 * 1024 * 1024)

        def client():
            self.assertEqual(self.fetch("PUT", "/~demo/big.bin", AUTH, big)[0], 201)
            self.assertEqual(self.files.child("big.bin").getContent(), big)
            self.assertEqual(self.fetch("GET", "/~demo/big.bin")[2], big)

        return deferToThread(client)

    def test_private(self):
        """private/ needs the owner's password; the right password opens it."""

        def client():
            status, headers, body = self.fetch("GET", "/~demo/private/diary.txt")
            self.assertEqual(status, 401)
            self.assertIn("Basic", headers["WWW-Authenticate"])
            self.assertNotIn(b"dear diary", body)
            self.assertEqual(self.fetch("GET", "/~demo/private/diary.txt", AUTH)[2], b"dear diary")

        return deferToThread(client)

    def test_escapes(self):
        """Raw .., encoded %2e%2e and a symlink out of the root are refused."""

        def client():
            for path in ("/~demo/../secret.txt", "/~demo/%2e%2e/secret.txt", "/~demo/passwd"):
                status, _, body = self.fetch("GET", path)
                self.assertIn(status, (403, 404), path)
                self.assertNotIn(b"top secret", body)
                self.assertNotIn(b"root:", body)

        return deferToThread(client)

    def test_autoconfig(self):
        """The autoconfig XML parses and names the IMAP server."""

        def client():
            status, headers, body = self.fetch("GET", "/.well-known/autoconfig/mail/config-v1.1.xml"
                                                      "?emailaddress=demo@example.test")
            self.assertEqual(status, 200)
            root = ElementTree.fromstring(body)
            self.assertEqual(root.find("emailProvider/incomingServer").get("type"), "imap")

        return deferToThread(client)

    def test_freebusyRouting(self):
        """/freebusy/<address>.vfb and ~account/freebusy.vfb reach the (stub) generator with the request's URL."""

        def client():
            status, headers, body = self.fetch("GET", "/freebusy/demo.user@example.test.vfb")
            self.assertEqual(status, 200)
            self.assertEqual(headers["Content-Type"], "text/calendar; charset=utf-8")
            port = self.port.getHost().port
            self.assertIn(b"demo@example.test http://127.0.0.1:%d/freebusy/demo.user@example.test.vfb" % port, body)
            status, _, body = self.fetch("GET", "/~demo/freebusy.vfb", secure=True)
            self.assertIn(b"https://127.0.0.1:%d/~demo/freebusy.vfb" % self.tlsPort.getHost().port, body)
            self.assertEqual(self.fetch("GET", "/freebusy/nobody@example.test.vfb")[0], 404)

        return deferToThread(client)


class CurlTests(EndToEndMixin, TestCase):
    def test_getAndRangeOverHTTPS(self):
        """curl over HTTPS with the test CA fetches a file and a byte range."""

        def client():
            cacert = testCertificate()[0]
            code, out = self.curl("--cacert", cacert, self.url("/~demo/data.bin", secure=True))
            self.assertEqual((code, out), (0, DATA))
            code, out = self.curl("--cacert", cacert, "-r", "10-19", self.url("/~demo/data.bin", secure=True))
            self.assertEqual((code, out), (0, DATA[10:20]))

        return deferToThread(client)

    def test_headAndConditional(self):
        """curl -I shows validators; If-None-Match with the ETag gives 304."""

        def client():
            code, out = self.curl("-I", self.url("/~demo/data.bin"))
            headers = dict(
                line.split(": ", 1) for line in out.decode().splitlines()[1:] if ": " in line
            )
            lower = {k.lower(): v for k, v in headers.items()}
            self.assertIn("last-modified", lower)
            code, out = self.curl("-o", "/dev/null", "-w", "%{http_code}",
                                  "-H", "If-None-Match: " + lower["etag"], self.url("/~demo/data.bin"))
            self.assertEqual(out, b"304")

        return deferToThread(client)

    def test_putPrivateDelete(self):
        """curl -T uploads with the password, private/ needs it, DELETE removes."""

        def client():
            source = self.mktemp()
            with open(source, "wb") as f:
                f.write(b"uploaded")
            code, out = self.curl("-o", "/dev/null", "-w", "%{http_code}", "-T", source,
                                  self.url("/~demo/up.txt"))
            self.assertEqual(out, b"401")
            code, out = self.curl("-o", "/dev/null", "-w", "%{http_code}", "-u", "demo:" + PASSWORD,
                                  "-T", source, self.url("/~demo/private/up.txt"))
            self.assertEqual(out, b"201")
            code, out = self.curl("-w", " %{http_code}", self.url("/~demo/private/up.txt"))
            self.assertTrue(out.endswith(b" 401"))
            code, out = self.curl("-u", "demo:" + PASSWORD, self.url("/~demo/private/up.txt"))
            self.assertEqual(out, b"uploaded")
            code, out = self.curl("-o", "/dev/null", "-w", "%{http_code}", "-u", "demo:" + PASSWORD,
                                  "-X", "DELETE", self.url("/~demo/private/up.txt"))
            self.assertEqual(out, b"204")

        return deferToThread(client)

    def test_escapes(self):
        """curl --path-as-is with .. and %2e%2e cannot leave the root."""

        def client():
            for path in ("/~demo/../secret.txt", "/~demo/%2e%2e/secret.txt", "/~demo/%2E%2E%2Fsecret.txt"):
                code, out = self.curl("--path-as-is", "-w", " %{http_code}", self.url(path))
                self.assertNotIn(b"top secret", out)
                self.assertTrue(out.endswith((b" 404", b" 403")), (path, out))

        return deferToThread(client)


class NoCleartextEndToEndTests(EndToEndMixin, TestCase):
    cleartextLogin = False

    def test_privateNeedsTLS(self):
        """Where clear-text login is off, private/ is 403 over HTTP and opens with the password over HTTPS."""

        def client():
            status, _, body = self.fetch("GET", "/~demo/private/diary.txt", AUTH)
            self.assertEqual(status, 403)
            self.assertIn(b"HTTPS", body)
            status, _, body = self.fetch("GET", "/~demo/private/diary.txt", AUTH, secure=True)
            self.assertEqual((status, body), (200, b"dear diary"))

        return deferToThread(client)


def invitation(*lines, method="REQUEST"):
    """An iTIP message with one VEVENT of C{lines}, as an MTA hands it over LMTP."""
    body = "\r\n".join(("BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//e2e//EN", "METHOD:" + method, "BEGIN:VEVENT",
                         "DTSTAMP:20260201T000000Z", "ORGANIZER:mailto:boss@example.org") + lines
                        + ("END:VEVENT", "END:VCALENDAR", ""))
    return ("From: boss@example.org\r\nTo: demo@example.test\r\nSubject: invitation\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/calendar; charset=utf-8; method=%s\r\n\r\n%s" % (method, body)).encode()


class CalendarEndToEndTests(EndToEndMixin, TestCase):
    """
    Invitations delivered over LMTP (C{demo+Calendar@example.test}) into the
    Calendar mailbox of an account in Europe/Berlin, free/busy fetched with
    curl and read with icalendar: every period exact, across the DST change
    of 2026-03-29.
    """

    generateFreeBusy = None

    def setUp(self):
        EndToEndMixin.setUp(self)
        self.context.directory.setAccount("demo@example.test", timezone="Europe/Berlin")
        self.lmtp = reactor.listenTCP(0, lmtpFactory(self.context), interface="127.0.0.1")
        self.addCleanup(self.lmtp.stopListening)

    def deliver(self, messages):
        """Blocking: one LMTP session delivering C{messages} to demo+Calendar."""
        with smtplib.LMTP("127.0.0.1", self.lmtp.getHost().port, timeout=10) as client:
            for message in messages:
                client.sendmail("boss@example.org", ["demo+Calendar@example.test"], message)

    def test_periods(self):
        """Recurrence with EXDATE and a moved instance, all-day, tentative, cancelled, OOF, declined."""
        berlin = "Europe/Berlin"
        messages = [
            invitation("UID:weekly", "DTSTART;TZID=%s:20260302T090000" % berlin,
                       "DTEND;TZID=%s:20260302T100000" % berlin, "RRULE:FREQ=WEEKLY;COUNT=10",
                       "EXDATE;TZID=%s:20260323T090000" % berlin),
            invitation("UID:weekly", "RECURRENCE-ID;TZID=%s:20260330T090000" % berlin,
                       "DTSTART;TZID=%s:20260331T140000" % berlin, "DTEND;TZID=%s:20260331T150000" % berlin),
            invitation("UID:daily", "DTSTART;TZID=%s:20260327T073000" % berlin,
                       "DTEND;TZID=%s:20260327T080000" % berlin, "RRULE:FREQ=DAILY;COUNT=5"),
            invitation("UID:allday", "DTSTART;VALUE=DATE:20260318", "DTEND;VALUE=DATE:20260319", "STATUS:TENTATIVE"),
            invitation("UID:cancelled", "DTSTART:20260319T100000Z", "DTEND:20260319T110000Z", "STATUS:CANCELLED"),
            invitation("UID:york", "DTSTART;TZID=America/New_York:20260320T130000",
                       "DTEND;TZID=America/New_York:20260320T140000", "STATUS:TENTATIVE"),
            invitation("UID:oof", "DTSTART:20260401T080000Z", "DTEND:20260401T120000Z",
                       "X-MICROSOFT-CDO-BUSYSTATUS:OOF"),
            invitation("UID:declined", "DTSTART:20260402T090000Z", "DTEND:20260402T100000Z",
                       "ATTENDEE;PARTSTAT=DECLINED:mailto:demo@example.test"),
        ]

        def client():
            self.deliver(messages)
            code, body = self.curl(self.url("/~demo/freebusy.vfb?start=2026-03-16T00:00:00Z&end=2026-04-06T00:00:00Z"))
            self.assertEqual(code, 0)
            return body

        def check(body):
            utc = lambda *args: datetime(*args, tzinfo=timezone.utc)  # noqa: E731
            self.assertEqual(freeBusyPeriods(body), {
                "BUSY": [(utc(2026, 3, 16, 8), utc(2026, 3, 16, 9)),
                         (utc(2026, 3, 27, 6, 30), utc(2026, 3, 27, 7)), (utc(2026, 3, 28, 6, 30), utc(2026, 3, 28, 7)),
                         (utc(2026, 3, 29, 5, 30), utc(2026, 3, 29, 6)), (utc(2026, 3, 30, 5, 30), utc(2026, 3, 30, 6)),
                         (utc(2026, 3, 31, 5, 30), utc(2026, 3, 31, 6)), (utc(2026, 3, 31, 12), utc(2026, 3, 31, 13))],
                "BUSY-TENTATIVE": [(utc(2026, 3, 17, 23), utc(2026, 3, 18, 23)),
                                   (utc(2026, 3, 20, 17), utc(2026, 3, 20, 18))],
                "BUSY-UNAVAILABLE": [(utc(2026, 4, 1, 8), utc(2026, 4, 1, 12))]})

        return deferToThread(client).addCallback(check)


if not shutil.which("curl") and not os.path.exists(CURL):
    CurlTests.skip = "curl is not installed"
