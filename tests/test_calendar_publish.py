# -*- test-case-name: tests.test_calendar_publish -*-
"""
Tests for L{gateway.store.calendar.publish}: the free/busy files the server
keeps in an account's file store (docs/xmapi.md R-FB-6).
"""

import email
import os
import subprocess
import sys
from datetime import timedelta

import icalendar
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial import unittest

from gateway.errors import QuotaExceeded
from gateway.store.calendar import FreeBusyCache
from gateway.store.calendar.publish import PRIVATE, PUBLIC, FreeBusyFiles, sweepService
from tests.http_support import HTTPMixin
from tests.support import freeBusyPeriods, makeTestContext
from tests.test_calendar import NOW, _CalendarTestCase, utc, vevent


def synchronously(f, *args):
    return succeed(f(*args))


class PublishTests(_CalendarTestCase):
    """
    The demo account (zone Europe/Berlin) with one event on 2026-01-05 and
    the files' clock at L{NOW} (2026-01-01 12:00 UTC).
    """

    def setUp(self):
        _CalendarTestCase.setUp(self)
        self.clock = Clock()
        self.files = FreeBusyFiles(FreeBusyCache(runInThread=synchronously), clock=self.clock,
                                   runInThread=synchronously, delay=10, weeks=2, now=lambda: NOW)
        self.append(vevent("a", "DTSTART:20260105T090000Z", "DTEND:20260105T100000Z", "SUMMARY:Planning",
                           "LOCATION:Room 2"))
        self.store = self.account.fileStore

    def read(self, path):
        return self.store.resolve(path).getContent()

    def detailed(self):
        """The VFREEBUSY inside private/freebusy.eml."""
        message = email.message_from_bytes(self.read(PRIVATE))
        self.assertEqual(message.get_content_type(), "text/calendar")
        self.assertEqual(message.get_param("method"), "PUBLISH")
        return message.get_payload(decode=True)

    def test_published(self):
        """Both files are written: times only in freebusy.vfb, summaries and locations in private/freebusy.eml."""
        self.assertEqual(self.files.publish(self.account), [PUBLIC, PRIVATE])
        public = self.read(PUBLIC)
        self.assertEqual(freeBusyPeriods(public), {"BUSY": [(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10))]})
        self.assertNotIn(b"Planning", public)
        [vfreebusy] = icalendar.Calendar.from_ical(public).walk("VFREEBUSY")
        # From midnight today in Berlin, two weeks.
        self.assertEqual((vfreebusy["DTSTART"].dt, vfreebusy["DTEND"].dt),
                         (utc(2025, 12, 31, 23), utc(2025, 12, 31, 23) + timedelta(weeks=2)))
        [vfreebusy] = icalendar.Calendar.from_ical(self.detailed()).walk("VFREEBUSY")
        params = vfreebusy["FREEBUSY"].params
        self.assertEqual((params["X-SUMMARY"], params["X-LOCATION"]), ("Planning", "Room 2"))
        self.assertTrue(self.files.isGenerated(self.account, PUBLIC))
        self.assertTrue(self.files.isGenerated(self.account, PRIVATE))

    def test_quotaCounted(self):
        """Both files count in the account's usage."""
        before = self.store.usage()
        self.files.publish(self.account)
        self.store._usage = None  # walk again
        self.assertEqual(self.store.usage() - before, len(self.read(PUBLIC)) + len(self.read(PRIVATE)))

    def test_ourFilesUpdated(self):
        """The server's own files are rewritten when the calendar changed."""
        self.files.publish(self.account)
        self.append(vevent("b", "DTSTART:20260106T090000Z", "DTEND:20260106T100000Z", "SUMMARY:Review"))
        self.assertEqual(self.files.publish(self.account), [PUBLIC, PRIVATE])
        self.assertEqual(len(freeBusyPeriods(self.read(PUBLIC))["BUSY"]), 2)
        self.assertIn(b"Review", self.detailed())

    def test_theirsWins(self):
        """A file the account uploaded at either path is never overwritten, until it deletes it."""
        self.files.publish(self.account)
        self.store.writeFile(PUBLIC, b"BEGIN:VCALENDAR\r\nmine\r\nEND:VCALENDAR\r\n")
        self.assertFalse(self.files.isGenerated(self.account, PUBLIC))
        self.assertEqual(self.files.publish(self.account), [PRIVATE])
        self.assertEqual(self.read(PUBLIC), b"BEGIN:VCALENDAR\r\nmine\r\nEND:VCALENDAR\r\n")
        self.store.writeFile(PRIVATE, b"Subject: mine\r\n\r\n")
        self.assertEqual(self.files.publish(self.account), [])
        self.assertEqual(self.read(PRIVATE), b"Subject: mine\r\n\r\n")
        self.store.remove(PUBLIC)
        self.assertEqual(self.files.publish(self.account), [PUBLIC])
        self.assertTrue(self.files.isGenerated(self.account, PUBLIC))

    def test_sameBytesUploadedAreTheirs(self):
        """A copy of the server's file uploaded again is the account's own (no marker inside decides)."""
        self.files.publish(self.account)
        self.store.writeFile(PUBLIC, self.read(PUBLIC))
        self.assertFalse(self.files.isGenerated(self.account, PUBLIC))

    def test_uploadedBeforeFirstPublish(self):
        """A file there before the server ever wrote one is the account's."""
        self.store.writeFile(PUBLIC, b"mine")
        self.assertEqual(self.files.publish(self.account), [PRIVATE])
        self.assertEqual(self.read(PUBLIC), b"mine")

    def test_overQuota(self):
        """Over quota: nothing is written or left half-written, the old files stay, nothing raises."""
        self.files.publish(self.account)
        old = self.read(PUBLIC), self.read(PRIVATE)
        self.append(vevent("b", "DTSTART:20260106T090000Z", "DTEND:20260106T100000Z", "SUMMARY:" + "x" * 5000))
        self.patch(self.store, "_checkQuota", self._failQuota)
        self.assertEqual(self.files.publish(self.account), [])
        self.assertEqual((self.read(PUBLIC), self.read(PRIVATE)), old)
        self.assertEqual(sorted(os.listdir(self.store.root.path)), ["freebusy.vfb", "private"])
        self.flushLoggedErrors()

    def _failQuota(self, additional):
        if additional > 0:
            raise QuotaExceeded("over quota")

    def test_debounced(self):
        """Changes write the files once, the delay after the last change."""
        for _ in range(3):
            self.files.changed(self.account)
            self.clock.advance(6)
        self.assertFalse(self.store.resolve(PUBLIC).exists())
        self.clock.advance(4)
        self.assertTrue(self.files.isGenerated(self.account, PUBLIC))
        self.assertEqual(self.files.published, 1)
        self.clock.advance(60)
        self.assertEqual(self.files.published, 1)

    def test_changeWhileWriting(self):
        """A change while the files are being written writes them again afterwards."""
        started = []
        self._later = Deferred()
        self.files.runInThread = lambda f, *args: started.append((f, args)) or self._later
        self.files.changed(self.account)
        self.clock.advance(10)
        self.files.changed(self.account)
        self.clock.advance(10)
        self.assertEqual(len(started), 1)
        self._later.callback(None)
        self.clock.advance(10)
        self.assertEqual(len(started), 2)

    def test_watch(self):
        """Watching an account's calendars turns their change notifications into debounced writes."""
        stop = self.files.watch(self.account)
        [listener] = self.mailbox._listeners
        listener()
        self.clock.advance(10)
        self.assertTrue(self.files.isGenerated(self.account, PUBLIC))
        stop()
        self.assertEqual(self.mailbox._listeners, [])


class WebSiteTests(HTTPMixin, unittest.TestCase):
    """
    The web site with the server's own C{freebusy.vfb} in the file store.
    """

    def test_oursStillGenerated(self):
        """The server's own freebusy.vfb does not stop generation for the window asked, on both URLs."""
        files = FreeBusyFiles(FreeBusyCache(runInThread=synchronously), clock=Clock(), runInThread=synchronously,
                              now=lambda: NOW)
        files.publish(self.account)
        self.assertTrue(files.isGenerated(self.account, PUBLIC))
        for path in ("/~demo/freebusy.vfb", "/freebusy/demo@example.test.vfb"):
            response = self.request("GET", path + "?start=20260701T000000Z&end=20260702T000000Z")
            self.assertEqual(response.body, b"BEGIN:VCALENDAR\r\nX-FOR:demo@example.test\r\nEND:VCALENDAR\r\n")
        self.assertEqual(len(self.generated), 2)

    def test_theirsServed(self):
        """A freebusy.vfb the account uploaded over the server's is served as it is."""
        files = FreeBusyFiles(FreeBusyCache(runInThread=synchronously), clock=Clock(), runInThread=synchronously,
                              now=lambda: NOW)
        files.publish(self.account)
        self.account.fileStore.writeFile(PUBLIC, b"MINE")
        self.assertEqual(self.request("GET", "/~demo/freebusy.vfb").body, b"MINE")
        self.assertEqual(self.generated, [])


class SweepTests(_CalendarTestCase):
    """
    L{FreeBusyFiles.sweep}: files out of date are written again.
    """

    def setUp(self):
        _CalendarTestCase.setUp(self)
        self.now = NOW
        self.files = FreeBusyFiles(FreeBusyCache(runInThread=synchronously), clock=Clock(),
                                   runInThread=synchronously, now=lambda: self.now)
        self.append(vevent("a", "DTSTART:20260105T090000Z", "DTEND:20260105T100000Z"))
        self.context.directory.setAccount("other@example.test")
        self.other = self.context.realm.accountFor("other@example.test")

    def test_due(self):
        """Files are due when never written, after a calendar change and when a new day begins, not otherwise."""
        self.assertTrue(self.files.due(self.account))
        self.assertEqual(self.files.sweep([self.account, self.other]), ["demo@example.test", "other@example.test"])
        self.assertFalse(self.files.due(self.account))
        self.assertEqual(self.files.sweep([self.account, self.other]), [])
        self.append(vevent("b", "DTSTART:20260106T090000Z", "DTEND:20260106T100000Z"))
        self.assertEqual(self.files.sweep([self.account, self.other]), ["demo@example.test"])
        self.now = NOW + timedelta(hours=11)  # 2 January in Berlin, still 1 January for other (UTC)
        self.assertEqual(self.files.sweep([self.account, self.other]), ["demo@example.test"])
        self.now = NOW + timedelta(hours=13)
        self.assertEqual(self.files.sweep([self.account, self.other]), ["other@example.test"])
        self.assertEqual(len(freeBusyPeriods(self.account.fileStore.resolve(PUBLIC).getContent())["BUSY"]), 2)

    def test_theirsNotRetried(self):
        """An account whose files are both its own is not looked at again until something changes."""
        self.account.fileStore.writeFile(PUBLIC, b"mine")
        self.account.fileStore.writeFile(PRIVATE, b"mine")
        self.assertEqual(self.files.sweep([self.account]), ["demo@example.test"])
        self.assertEqual(self.files.sweep([self.account]), [])
        self.assertEqual(self.account.fileStore.resolve(PUBLIC).getContent(), b"mine")

    def test_onlyWithWebSite(self):
        """Accounts without the http service (no personal web site) get no files."""
        self.context.directory.setAccount("other@example.test", services=frozenset(["imap", "ftp"]))
        other = self.context.realm.accountFor("other@example.test")
        self.assertEqual(self.files.sweep([other]), [])
        self.assertFalse(other.fileStore.resolve(PUBLIC).exists())

    def test_failureLogged(self):
        """One account failing does not stop the others."""
        self.patch(self.files, "publish", lambda account: 1 / 0 if account is self.account else [])
        self.assertEqual(self.files.sweep([self.account, self.other]), ["other@example.test"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)


class SweepServiceTests(_CalendarTestCase):
    def test_sweeps(self):
        """The service sweeps the accounts it is given at start and then every interval, one sweep at a time."""
        clock = Clock()
        swept, pending = [], []

        class Files:
            def sweep(self, accounts):
                swept.append(accounts)

        def runInThread(f, *args):
            f(*args)
            pending.append(Deferred())
            return pending[-1]

        timer = sweepService(Files(), lambda: [self.account], runInThread=runInThread, interval=60)
        timer.clock = clock
        timer.startService()
        self.addCleanup(timer.stopService)
        self.addCleanup(lambda: [d.callback(None) for d in pending if not d.called])
        self.assertEqual(swept, [[self.account]])
        clock.advance(120)
        self.assertEqual(len(swept), 1)  # the first sweep is still running
        pending[0].errback(ZeroDivisionError())
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        clock.advance(60)
        self.assertEqual(len(swept), 2)
        self.assertEqual(timer.name, "free/busy files")


    def test_noThreadWithoutAccounts(self):
        """
        While no account is held (an idle server), no thread is asked for:
        a pool thread started for nothing after the sessions left kept the
        arenas its objects went to.
        """
        clock = Clock()
        held, calls = [], []

        class Files:
            def sweep(self, accounts):
                return []

        def runInThread(f, *args):
            calls.append(args)
            return succeed(f(*args))

        timer = sweepService(Files(), lambda: held, runInThread=runInThread, interval=60)
        timer.clock = clock
        timer.startService()
        self.addCleanup(timer.stopService)
        clock.advance(60)
        self.assertEqual(calls, [])
        held.append(self.account)
        clock.advance(60)
        self.assertEqual(calls, [([self.account],)])


class HeldAccountsTests(unittest.TestCase):
    def test_heldAccounts(self):
        """The realm lists the accounts it holds, what a server sweeps (sweepService(files, realm.heldAccounts))."""
        context = makeTestContext(self)
        self.assertEqual(context.realm.heldAccounts(), [])
        account = context.realm.accountFor("demo@example.test")
        self.assertEqual(context.realm.heldAccounts(), [account])


class StartUpImportTests(unittest.TestCase):
    def test_generatorImportedWithModule(self):
        """Importing the module (at start-up) imports email.generator, which message.as_bytes() would import at the first publication: in the middle of traffic, where what an import makes stays for good among short-lived objects (issue 16's soak: its memory report named it)."""
        code = "import sys, gateway.store.calendar.publish; print('email.generator' in sys.modules)"
        output = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
        self.assertEqual(output.strip(), b"True")
