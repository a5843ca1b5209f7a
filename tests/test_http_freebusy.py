# -*- test-case-name: tests.test_http_freebusy -*-
"""
Tests for L{gateway.http.freebusy}: routing of C{freebusy.vfb} and
C{/freebusy/<address>.vfb} to a stub generator, the window, validators.
"""

from datetime import datetime, timedelta, timezone

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from gateway.interfaces import IIdleRelease
from tests.http_support import HTTPMixin, Response, syncThread

UTC = timezone.utc
NOW = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # 29 March 00:30 in Berlin, the day DST starts


class FreeBusyTests(HTTPMixin, TestCase):
    def setUp(self):
        HTTPMixin.setUp(self)
        self.site.resource.freeBusy.now = lambda: NOW

    def test_generated(self):
        """Without a published file, ~account/freebusy.vfb is the generator's document as text/calendar with an ETag."""
        response = self.request("GET", "/~demo/freebusy.vfb")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.body, b"BEGIN:VCALENDAR\r\nX-FOR:demo@example.test\r\nEND:VCALENDAR\r\n")
        self.assertEqual(response.headers["content-type"], "text/calendar; charset=utf-8")
        self.assertEqual(response.headers["content-length"], str(len(response.body)))
        self.assertTrue(response.headers["etag"].startswith('"'))
        address, start, end, url = self.generated[0]
        self.assertEqual(address, "demo@example.test")
        self.assertEqual(url, "http://example.test/~demo/freebusy.vfb")

    def test_cachesLetGo(self):
        """The account and document a request kept are let go by releaseIdle once stale, and registered for it."""
        now = [100.0]
        freeBusy, site = self.site.resource.freeBusy, self.site.resource.personalSite
        freeBusy.monotonic = site.monotonic = lambda: now[0]
        self.assertIn(freeBusy, self.context.idle.releasers)
        self.assertIn(site, self.context.idle.releasers)
        verifyObject(IIdleRelease, freeBusy)
        verifyObject(IIdleRelease, site)
        self.assertEqual(self.request("GET", "/~demo/freebusy.vfb").code, 200)
        site.releaseIdle()
        freeBusy.releaseIdle()
        self.assertEqual((len(site._accounts), len(freeBusy._memo)), (1, 1))
        now[0] += 1
        site.releaseIdle()
        freeBusy.releaseIdle()
        self.assertEqual((site._accounts, freeBusy._memo), ({}, {}))

    def test_defaultWindowUTC(self):
        """The default window starts at the start of today (UTC account) and lasts [http] freebusy_weeks weeks."""
        self.request("GET", "/~demo/freebusy.vfb")
        _, start, end, _ = self.generated[0]
        self.assertEqual(start, datetime(2026, 3, 28, tzinfo=UTC))
        self.assertEqual(end, start + timedelta(weeks=8))
        self.context.config._values["http", "freebusy_weeks"] = 2
        self.request("GET", "/~demo/freebusy.vfb")
        self.assertEqual(self.generated[1][2] - self.generated[1][1], timedelta(weeks=2))

    def test_defaultWindowAccountZone(self):
        """'Today' is the account's day: in Berlin it is already 29 March, which began at 23:00 UTC."""
        self.context.directory.setAccount("demo@example.test", timezone="Europe/Berlin")
        self.request("GET", "/~demo/freebusy.vfb")
        _, start, _, _ = self.generated[0]
        self.assertEqual(start, datetime(2026, 3, 28, 23, 0, tzinfo=UTC))
        self.assertEqual(start.tzinfo, UTC)

    def test_explicitWindow(self):
        """?start=&end= in ISO 8601 choose the window; naive times are in the account's zone."""
        self.context.directory.setAccount("demo@example.test", timezone="Europe/Berlin")
        self.request("GET", "/~demo/freebusy.vfb?start=2026-07-01T00:00:00Z&end=20260702T120000")
        _, start, end, url = self.generated[0]
        self.assertEqual(start, datetime(2026, 7, 1, tzinfo=UTC))
        self.assertEqual(end, datetime(2026, 7, 2, 10, tzinfo=UTC))
        self.assertEqual(url, "http://example.test/~demo/freebusy.vfb")
        self.request("GET", "/~demo/freebusy.vfb?start=2026-07-01")
        _, start, end, _ = self.generated[1]
        self.assertEqual((start, end - start), (datetime(2026, 6, 30, 22, tzinfo=UTC), timedelta(weeks=8)))

    def test_badWindow(self):
        """Unparsable, reversed or huge windows are 400 and the generator is not called."""
        for query in ("start=tomorrow", "start=2026-07-02&end=2026-07-01", "start=2026-01-01&end=2030-01-01",
                      "end=%FF"):
            response = self.request("GET", "/~demo/freebusy.vfb?" + query)
            self.assertEqual(response.code, 400, query)
            self.assertIn(b"free/busy window", response.body)
        self.assertEqual(self.generated, [])

    def test_ifNoneMatch(self):
        """The generated document's ETag gives 304 on If-None-Match."""
        etag = self.request("GET", "/~demo/freebusy.vfb").headers["etag"]
        response = self.request("GET", "/~demo/freebusy.vfb", {"If-None-Match": etag})
        self.assertEqual((response.code, response.body), (304, b""))

    def test_head(self):
        """HEAD of the generated document has its length and no body."""
        response = self.request("HEAD", "/~demo/freebusy.vfb")
        self.assertEqual((response.code, response.body), (200, b""))
        self.assertEqual(response.headers["content-length"], str(len(b"BEGIN:VCALENDAR\r\nX-FOR:demo@example.test\r\nEND:VCALENDAR\r\n")))

    def test_publishedWins(self):
        """A freebusy.vfb the account published is served as a file, on both URLs, without generating."""
        self.writeFile("freebusy.vfb", b"PUBLISHED")
        for path in ("/~demo/freebusy.vfb", "/freebusy/demo@example.test.vfb"):
            response = self.request("GET", path)
            self.assertEqual((response.code, response.body), (200, b"PUBLISHED"), path)
            self.assertEqual(response.headers["content-type"], "text/calendar")
        self.assertEqual(self.generated, [])

    def test_acrossDomains(self):
        """/freebusy/<address>.vfb and .ifb serve any address the realm resolves, aliases included."""
        for path in ("/freebusy/demo@example.test.vfb", "/freebusy/demo.user@example.test.ifb",
                     "/freebusy/other%40example.test.vfb"):
            self.assertEqual(self.request("GET", path, host="unrelated.invalid").code, 200, path)
        self.assertEqual([g[0] for g in self.generated],
                         ["demo@example.test", "demo@example.test", "other@example.test"])
        self.assertEqual(self.generated[1][3], "http://unrelated.invalid/freebusy/demo.user@example.test.ifb")

    def test_unknownAddress(self):
        """Addresses the realm does not resolve, and other names under /freebusy/, are 404."""
        for path in ("/freebusy/nobody@example.test.vfb", "/freebusy/demo@elsewhere.invalid.vfb",
                     "/freebusy/.vfb", "/freebusy/demo@example.test.txt", "/freebusy/a/b.vfb"):
            self.assertEqual(self.request("GET", path).code, 404, path)
        self.assertEqual(self.generated, [])

    def test_deferredGenerator(self):
        """A generator may return a Deferred; the answer waits for it."""
        waiting = Deferred()
        self.site.resource.freeBusy.generate = lambda account, start, end, url: waiting
        transport = self.send("GET", "/~demo/freebusy.vfb")
        self.assertEqual(transport.value(), b"")
        waiting.callback(b"LATER")
        response = Response(transport.value())
        self.assertEqual((response.code, response.body), (200, b"LATER"))

    def test_failingGenerator(self):
        """A failing generator gives a clean 500 and is logged."""

        def broken(account, start, end, url):
            raise RuntimeError("calendar broke")

        self.site.resource.freeBusy.generate = broken
        response = self.request("GET", "/~demo/freebusy.vfb")
        self.assertEqual(response.code, 500)
        self.assertNotIn(b"calendar broke", response.body)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_memo(self):
        """A generated document is reused for a second, then the generator is asked again."""
        clock = [100.0]
        self.site.resource.freeBusy.monotonic = lambda: clock[0]
        self.request("GET", "/~demo/freebusy.vfb")
        clock[0] += 0.5
        self.assertEqual(self.request("GET", "/~demo/freebusy.vfb").code, 200)
        self.assertEqual(len(self.generated), 1)
        clock[0] += 1.0
        self.request("GET", "/~demo/freebusy.vfb")
        self.assertEqual(len(self.generated), 2)

class RealCalendarTests(HTTPMixin, TestCase):
    def test_realGenerator(self):
        """With no stub, gateway.store.calendar's document is served and parses as a VCALENDAR with one VFREEBUSY."""
        from icalendar import Calendar

        self.site.resource.freeBusy.generate = None
        response = self.request("GET", "/~demo/freebusy.vfb?start=2026-07-01T00:00:00Z&end=2026-07-08T00:00:00Z")
        self.assertEqual(response.code, 200)
        calendar = Calendar.from_ical(response.body)
        [component] = calendar.walk("VFREEBUSY")
        self.assertEqual(str(component["URL"]), "http://example.test/~demo/freebusy.vfb")
        self.assertEqual(component.decoded("DTSTART"), datetime(2026, 7, 1, tzinfo=UTC))

    def test_computedInThread(self):
        """The real generator computes a document through runInThread (a thread in a server), not on the reactor."""
        calls = []

        def runInThread(f, *args):
            calls.append(f)
            return syncThread(f, *args)

        publisher = self.site.resource.freeBusy
        publisher.generate, publisher.runInThread = None, runInThread
        self.assertEqual(self.request("GET", "/~demo/freebusy.vfb").code, 200)
        self.assertEqual(len(calls), 1)
