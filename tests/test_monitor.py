# -*- test-case-name: tests.test_monitor -*-
"""
Seeing what is happening (issue 15 item 6): the metrics at /metrics, the
session list at /sessions and in C{gatewayctl who}, and the log line of a
closed session.
"""

import io
import json
import os
import smtplib
import socket
import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer, reactor, threads
from twisted.logger import globalLogPublisher
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from gateway import ctl
from gateway.admin.monitor import Monitor, NullMonitor
from gateway.interfaces import IMonitor
from gateway.service import FRONTENDS, makeService
from tests.support import PASSWORD, makeDataRoot, makeTestConfig


def samples(text):
    """
    The samples of a metrics page, parsed by prometheus-client's own
    parser: C{{(name, frozenset(labels.items())): value}}.
    """
    result = {}
    for family in text_string_to_metric_families(text.decode("utf-8")):
        for sample in family.samples:
            result[sample.name, frozenset(sample.labels.items())] = sample.value
    return result


def value(parsed, name, **labels):
    return parsed.get((name, frozenset(labels.items())))


class MonitorTests(unittest.TestCase):
    def test_interface(self):
        """Monitor and NullMonitor provide IMonitor."""
        self.assertTrue(verifyObject(IMonitor, Monitor()))
        self.assertTrue(verifyObject(IMonitor, NullMonitor()))

    def test_commandsCounted(self):
        """Commands are counted by status and timed, whether they answer now, later, or raise."""
        ticks = iter([0.0, 0.002, 1.0, 1.3, 2.0, 2.0, 3.0, 3.0])
        monitor = Monitor(clock=lambda: next(ticks))

        class NoResponse(Exception):
            status, text = "NO", "[OVERQUOTA] Not enough storage"

        self.assertEqual(monitor.command("imap", "NOOP", lambda: None), None)
        d = defer.Deferred()
        self.assertIs(monitor.command("imap", "SELECT", lambda x: d, 1), d)
        d.callback(("NO", "No such mailbox"))

        def raises():
            raise NoResponse()

        self.assertRaises(NoResponse, monitor.command, "imap", "APPEND", raises)
        monitor.command("pop3", "STAT", lambda: None)
        parsed = samples(monitor.renderMetrics())
        self.assertEqual(value(parsed, "gateway_commands_total", protocol="imap", command="NOOP", status="OK"), 1)
        self.assertEqual(value(parsed, "gateway_commands_total", protocol="imap", command="SELECT", status="NO"), 1)
        self.assertEqual(value(parsed, "gateway_commands_total", protocol="imap", command="APPEND", status="NO"), 1)
        self.assertEqual(value(parsed, "gateway_commands_total", protocol="pop3", command="STAT", status="OK"), 1)
        self.assertEqual(value(parsed, "gateway_quota_refusals_total", protocol="imap"), 1)
        self.assertAlmostEqual(
            value(parsed, "gateway_command_duration_seconds_sum", protocol="imap", command="SELECT"), 0.3)
        self.assertEqual(value(parsed, "gateway_command_duration_seconds_bucket",
                               protocol="imap", command="NOOP", le="0.0025"), 1)

    def test_loginsCounted(self):
        """The monitored portal counts logins by protocol, mechanism and outcome, and passes results through."""
        from twisted.cred.error import UnauthorizedLogin

        from gateway.admin.monitor import MonitoredPortal
        from gateway.cred.credentials import LoginContext, PlainCredentials

        class Portal:
            answers = [defer.succeed("avatar"), defer.fail(UnauthorizedLogin("no"))]
            checkers = "the portal's own"

            def login(self, credentials, mind, *interfaces):
                return self.answers.pop(0)

        monitor = Monitor()
        portal = MonitoredPortal(Portal(), monitor)
        context = LoginContext(protocol="pop3", remoteAddress="192.0.2.1", localAddress=None, secure=True)
        credentials = PlainCredentials("a", "b", context, mechanism="PLAIN")
        self.assertEqual(self.successResultOf(portal.login(credentials, None)), "avatar")
        self.failureResultOf(portal.login(credentials, None), UnauthorizedLogin)
        self.assertEqual(portal.checkers, "the portal's own")
        parsed = samples(monitor.renderMetrics())
        self.assertEqual(value(parsed, "gateway_logins_total", protocol="pop3", mechanism="PLAIN", result="ok"), 1)
        self.assertEqual(value(parsed, "gateway_logins_total", protocol="pop3", mechanism="PLAIN", result="failed"),
                         1)

    def test_loginOutcomesMadeTogether(self):
        """
        The first login of a protocol and mechanism makes the counters of
        both outcomes (at 0 for the other), so that a first failure later,
        in the middle of traffic, makes no object that stays.
        """
        monitor = Monitor()
        monitor.login("ftp", "USER", True)
        parsed = samples(monitor.renderMetrics())
        self.assertEqual(value(parsed, "gateway_logins_total", protocol="ftp", mechanism="USER", result="failed"), 0)
        made = list(monitor.logins._metrics)
        monitor.login("ftp", "USER", False)
        self.assertEqual(list(monitor.logins._metrics), made)
        parsed = samples(monitor.renderMetrics())
        self.assertEqual(value(parsed, "gateway_logins_total", protocol="ftp", mechanism="USER", result="failed"), 1)

    def test_deliveriesFromLog(self):
        """LMTP delivery log events are counted by status; a quota refusal also as a quota refusal."""
        monitor = Monitor()
        for event in (
            {"log_namespace": "gateway.lmtp", "to": "a@x", "uid": 3},
            {"log_namespace": "gateway.lmtp", "to": "a@x", "reason": "quota"},
            {"log_namespace": "gateway.lmtp", "to": "a@x"},
            {"log_namespace": "gateway.imap", "to": "a@x", "uid": 3},
            {"log_namespace": "gateway.lmtp", "to": "a@x", "status": "4.3.0 temporary failure"},
        ):
            monitor.observeLog(event)
        parsed = samples(monitor.renderMetrics())
        self.assertEqual(value(parsed, "gateway_deliveries_total", status="delivered"), 1)
        self.assertEqual(value(parsed, "gateway_deliveries_total", status="refused"), 1)
        self.assertEqual(value(parsed, "gateway_deliveries_total", status="failed"), 1)
        self.assertEqual(value(parsed, "gateway_quota_refusals_total", protocol="lmtp"), 1)

    @defer.inlineCallbacks
    def test_indexWriterTimed(self):
        """
        The index writer's times (each write until durable; each group's
        lock wait and hold; each checkpoint's sync) are histograms.
        """
        from gateway import stats
        from gateway.store import redo
        from gateway.store.mail import MailStore

        self.patch(redo, "checkpointer", redo.Checkpointer(automatic=False))
        monitor = Monitor()
        self.addCleanup(stats.observeTimes(monitor.measureEvent))
        store = MailStore(self.mktemp(), reactor=reactor)
        self.addCleanup(store.close)
        inbox = store.getMailbox("INBOX")
        yield inbox.appendMessageLater(b"Subject: one\r\n\r\nbody\r\n")
        yield defer.gatherResults([inbox.setFlagsLater([1], [flag], "+") for flag in ("\\Seen", "\\Flagged")])
        groups = store._writer.groups
        parsed = samples(monitor.renderMetrics())
        self.assertEqual(value(parsed, "gateway_index_write_seconds_count", stage="durable"), 3)
        self.assertEqual(value(parsed, "gateway_index_write_seconds_count", stage="held"), groups)
        self.assertEqual(value(parsed, "gateway_index_write_seconds_count", stage="lock"), groups)
        self.assertGreater(value(parsed, "gateway_index_write_seconds_sum", stage="durable"), 0)
        redo.checkpointer.flush()
        parsed = samples(monitor.renderMetrics())
        self.assertEqual(value(parsed, "gateway_index_write_seconds_count", stage="checkpoint"), 1)

    def test_storeEventsCounted(self):
        """Index rescans (by scope) and free/busy computations, which the store counts through gateway.stats, are counted."""
        from gateway import stats
        from gateway.store.calendar import FreeBusyCache
        from gateway.store.mail import MailStore
        from tests.support import makeTestContext

        monitor = Monitor()
        self.addCleanup(stats.observe(monitor.countEvent))
        store = MailStore(self.mktemp())
        self.addCleanup(store.close)
        inbox = store.getMailbox("INBOX")
        store._scanInThread(inbox._id, inbox._path())
        store._scanInThread(inbox._id, inbox._path(), names=[("new", "x")])
        context = makeTestContext(self)
        account = context.realm.accountFor("demo@example.test")
        from twisted.internet.defer import maybeDeferred
        cache = FreeBusyCache(runInThread=maybeDeferred)
        import datetime
        start = datetime.datetime(2026, 12, 7, tzinfo=datetime.timezone.utc)
        self.successResultOf(cache.generate(account, start, start + datetime.timedelta(days=7)))
        parsed = samples(monitor.renderMetrics())
        self.assertEqual(value(parsed, "gateway_index_rescans_total", scope="full"), 1)
        self.assertEqual(value(parsed, "gateway_index_rescans_total", scope="names"), 1)
        self.assertEqual(value(parsed, "gateway_freebusy_computations_total"), 1)


class AdminListenerTests(unittest.TestCase):
    """The wired server with IMAP, POP3, LMTP and the admin listener on loopback."""

    timeout = 60

    def setUp(self):
        dataRoot = self.mktemp()
        makeDataRoot(dataRoot)
        overrides = {(name, "enabled"): False for name in FRONTENDS}
        for name in ("imap", "pop3", "lmtp", "admin"):
            overrides[name, "enabled"] = True
            overrides[name, "listen"] = ("tcp:0:interface=127.0.0.1",)
        self.config = makeTestConfig(dataRoot, overrides)
        self.top = makeService(self.config, reactor)
        self.top.privilegedStartService()
        self.top.startService()
        self.addCleanup(self.top.stopService)
        self.ports = {child.name.split()[0]: child.port.getHost().port for child in self.top}
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def get(self, path):
        url = "http://127.0.0.1:%d%s" % (self.ports["admin"], path)
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.headers.get("content-type"), response.read()

    def imapSession(self):
        """An IMAP client logged in, INBOX selected, in IDLE."""
        s = socket.create_connection(("127.0.0.1", self.ports["imap"]), timeout=10)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b'a LOGIN demo@example.test "%s"\r\nb SELECT INBOX\r\nc IDLE\r\n' % (PASSWORD.encode(),))
        while not f.readline().startswith(b"+ "):
            pass
        return s, f

    def test_sessionsAndMetrics(self):
        """/sessions lists the IMAP session (account, mailbox, IDLE); /metrics counts it, its login and commands."""

        def run():
            s, f = self.imapSession()
            idle = socket.create_connection(("127.0.0.1", self.ports["pop3"]), timeout=10)
            idle.recv(100)
            try:
                return self.get("/sessions"), self.get("/metrics")
            finally:
                s.sendall(b"DONE\r\nd LOGOUT\r\n")
                f.read()
                s.close()
                idle.close()

        def check(result):
            (jsonType, body), (metricsType, metrics) = result
            self.assertEqual(jsonType, "application/json")
            sessions = json.loads(body)["sessions"]
            imap = [s for s in sessions if s["protocol"] == "imap"]
            self.assertEqual(len(imap), 1, sessions)
            self.assertEqual(imap[0]["account"], "demo@example.test")
            self.assertEqual(imap[0]["domain"], "example.test")
            self.assertEqual(imap[0]["mailbox"], "INBOX")
            self.assertEqual(imap[0]["remote"], "127.0.0.1")
            self.assertIs(imap[0]["idle"], True)
            self.assertIs(imap[0]["xmapi"], False)
            self.assertGreater(imap[0]["bytes_in"], 0)
            pop3 = [s for s in sessions if s["protocol"] == "pop3"]
            self.assertEqual((len(pop3), pop3[0]["account"], pop3[0]["idle"]), (1, None, False))
            self.assertTrue(metricsType.startswith("text/plain; version="), metricsType)
            parsed = samples(metrics)
            self.assertEqual(value(parsed, "gateway_sessions_open", protocol="imap", domain="example.test"), 1)
            self.assertEqual(value(parsed, "gateway_sessions_open", protocol="pop3", domain=""), 1)
            self.assertEqual(value(parsed, "gateway_sessions_open", protocol="lmtp", domain=""), 0)
            self.assertEqual(value(parsed, "gateway_logins_total", protocol="imap", mechanism="LOGIN",
                                   result="ok"), 1)
            self.assertEqual(value(parsed, "gateway_commands_total", protocol="imap", command="LOGIN",
                                   status="OK"), 1)
            self.assertEqual(value(parsed, "gateway_commands_total", protocol="imap", command="SELECT",
                                   status="OK"), 1)
            self.assertEqual(value(parsed, "gateway_command_duration_seconds_count", protocol="imap",
                                   command="SELECT"), 1)
            self.assertGreater(value(parsed, "gateway_received_bytes_total", protocol="imap"), 0)
            self.assertGreater(value(parsed, "gateway_sent_bytes_total", protocol="imap"), 0)
            self.assertEqual(value(parsed, "gateway_connections_total", protocol="imap"), 1)

        return threads.deferToThread(run).addCallback(check)

    def test_ftpSessionsListed(self):
        """FTP sessions (an unwrapped listener) are listed and counted, without start time or byte counts."""
        import ftplib

        config = makeTestConfig(self.config.dataRoot(), {
            ("imap", "enabled"): False, ("pop3", "enabled"): False, ("lmtp", "enabled"): False,
            ("http", "enabled"): False,  # its default listener is the fixed port 8100
            ("ftp", "enabled"): True, ("ftp", "listen"): ("tcp:0:interface=127.0.0.1",),
            ("admin", "enabled"): True, ("admin", "listen"): ("tcp:0:interface=127.0.0.1",),
            ("http", "listen"): ("tcp:0:interface=127.0.0.1",),
        })
        top = makeService(config, reactor)
        top.privilegedStartService()
        top.startService()
        self.addCleanup(top.stopService)
        ports = {child.name.split()[0]: child.port.getHost().port for child in top}

        def run():
            client = ftplib.FTP()
            client.connect("127.0.0.1", ports["ftp"], timeout=10)
            client.login("demo@example.test", PASSWORD)
            try:
                self.ports["admin"] = ports["admin"]
                return self.get("/sessions")[1], self.get("/metrics")[1]
            finally:
                client.quit()

        def check(result):
            sessions = json.loads(result[0])["sessions"]
            self.assertEqual(len(sessions), 1, sessions)
            self.assertEqual((sessions[0]["protocol"], sessions[0]["account"], sessions[0]["remote"]),
                             ("ftp", "demo@example.test", "127.0.0.1"))
            self.assertIsNotNone(sessions[0]["since"])
            self.assertGreater(sessions[0]["bytes_in"], len("USER demo@example.test\r\n"))
            self.assertGreater(sessions[0]["bytes_out"], 0)
            parsed = samples(result[1])
            self.assertEqual(value(parsed, "gateway_sessions_open", protocol="ftp", domain="example.test"), 1)

        return threads.deferToThread(run).addCallback(check)

    def test_closedSessionLogged(self):
        """A logout is logged with the account, duration and byte counts; the counts stay in the metrics."""

        def run():
            s, f = self.imapSession()
            s.sendall(b"DONE\r\nd LOGOUT\r\n")
            f.read()
            s.close()

        def closed():
            return [e for e in self.events if e.get("log_namespace") == "gateway.sessions"]

        @defer.inlineCallbacks
        def go():
            yield threads.deferToThread(run)
            while not closed():
                yield deferLater(0.01)
            [event] = closed()
            self.assertEqual((event["protocol"], event["user"], event["remote"]),
                             ("imap", "demo@example.test", "127.0.0.1"))
            self.assertGreater(event["bytesIn"], 40)
            self.assertGreater(event["bytesOut"], 100)
            self.assertGreaterEqual(event["duration"], 0)
            _, metrics = yield threads.deferToThread(self.get, "/metrics")
            parsed = samples(metrics)
            self.assertEqual(value(parsed, "gateway_received_bytes_total", protocol="imap"), event["bytesIn"])
            self.assertEqual(value(parsed, "gateway_sent_bytes_total", protocol="imap"), event["bytesOut"])

        return go()

    def test_deliveryCounted(self):
        """An LMTP delivery shows in gateway_deliveries_total."""

        def run():
            client = smtplib.LMTP("127.0.0.1", self.ports["lmtp"], timeout=10)
            client.sendmail("a@example.org", ["demo@example.test"], b"Subject: x\r\n\r\nhi\r\n")
            client.quit()
            return self.get("/metrics")

        def check(result):
            parsed = samples(result[1])
            self.assertEqual(value(parsed, "gateway_deliveries_total", status="delivered"), 1)

        return threads.deferToThread(run).addCallback(check)

    def test_who(self):
        """gatewayctl who prints the sessions of the running server, as a table or JSON."""
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write("[server]\ndata_root = %s\n[admin]\nlisten = tcp:%d:interface=127.0.0.1\n"
                    % (os.path.abspath(self.config.dataRoot()), self.ports["admin"]))

        def run():
            s, f = self.imapSession()
            try:
                table, data = io.StringIO(), io.StringIO()
                codes = (ctl.main(["--config", path, "who"], out=table),
                         ctl.main(["--config", path, "who", "--json"], out=data))
                return codes, table.getvalue(), data.getvalue()
            finally:
                s.sendall(b"DONE\r\nd LOGOUT\r\n")
                f.read()
                s.close()

        def check(result):
            codes, table, data = result
            self.assertEqual(codes, (0, 0))
            lines = table.splitlines()
            self.assertEqual(lines[0].split(), ["PROTOCOL", "ACCOUNT", "REMOTE", "SINCE", "MAILBOX", "IDLE", "XMAPI"])
            self.assertEqual(lines[1].split()[:3], ["imap", "demo@example.test", "127.0.0.1"])
            self.assertEqual(lines[1].split()[4:], ["INBOX", "yes", "no"])
            self.assertEqual(json.loads(data)[0]["account"], "demo@example.test")

        return threads.deferToThread(run).addCallback(check)


def deferLater(seconds):
    from twisted.internet import task

    return task.deferLater(reactor, seconds, lambda: None)


class WhoWithoutServerTests(unittest.TestCase):
    def test_noServer(self):
        """gatewayctl who without a server to ask exits 69 (EX_UNAVAILABLE) with a one-line reason."""
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write("[server]\ndata_root = %s\n[admin]\nlisten = tcp:%d:interface=127.0.0.1\n"
                    % (os.path.abspath(self.mktemp()), port))
        errors = io.StringIO()
        self.patch(ctl.sys, "stderr", errors)
        self.assertEqual(ctl.main(["--config", path, "who"], out=io.StringIO()), 69)
        self.assertIn("is the server running?", errors.getvalue())
