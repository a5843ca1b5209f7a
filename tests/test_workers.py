# -*- test-case-name: tests.test_workers -*-
"""
Worker processes: C{[server] workers = 2} under twistd, with real clients
over loopback, and the pieces of L{gateway.workers} alone.
"""

import ftplib
import http.client
import imaplib
import io
import json
import os
import poplib
import re
import signal
import smtplib
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

from twisted.application.service import MultiService
from twisted.internet.error import ReactorNotRunning
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial import unittest

from gateway import tap, worker, workers
from gateway.config import loadConfig
from tests.support import PASSWORD, bareParent, makeDataRoot, perThread, testCertificate

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
ACCOUNT = "demo@example.test"
MESSAGE = b"From: a@example.test\r\nTo: demo@example.test\r\nSubject: %s\r\n\r\nbody\r\n"


def writeConfig(path, dataRoot, count, extra="", imapExtra="", auth="failure_delay = 0"):
    cert, key = testCertificate()
    with open(path, "w") as f:
        f.write(
            "[server]\ndata_root = %s\nworkers = %d\nlog_file = %s\n%s\n"
            "[tls]\ncertificate = %s\nprivate_key = %s\n[auth]\n%s\n"
            "[imap]\nlisten = tcp:0:interface=127.0.0.1\n    ssl:0:interface=127.0.0.1\n%s\n"
            "[pop3]\nlisten = tcp:0:interface=127.0.0.1\n[lmtp]\nlisten = tcp:0:interface=127.0.0.1\n"
            "[http]\nlisten = tcp:0:interface=127.0.0.1\n[ftp]\nlisten = tcp:0:interface=127.0.0.1\n"
            "[admin]\nlisten = tcp:0:interface=127.0.0.1\n"
            % (dataRoot, count, os.path.join(os.path.dirname(path), "gateway.log"), extra, cert, key, auth, imapExtra)
        )


class Server:
    """
    C{twistd gateway} with workers, in a child process, and what its log says.
    """

    def __init__(self, testCase, count=2, extra="", imapExtra="", auth="failure_delay = 0"):
        self.testCase = testCase
        self.folder = os.path.abspath(testCase.mktemp())
        os.makedirs(self.folder)
        self.dataRoot = os.path.join(self.folder, "data")
        makeDataRoot(self.dataRoot)
        self.configPath = os.path.join(self.folder, "gateway.ini")
        self.logPath = os.path.join(self.folder, "gateway.log")
        writeConfig(self.configPath, self.dataRoot, count, extra, imapExtra, auth)
        self.process = subprocess.Popen(
            [TWISTD, "--nodaemon", "--pidfile=", "--logfile", os.path.join(self.folder, "twistd.log"),
             "gateway", "--config", self.configPath],
            cwd=self.folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        testCase.addCleanup(self.stop)
        self.ports = {}
        for name in ("imap tcp", "imap ssl", "pop3 tcp", "http tcp", "ftp tcp", "lmtp tcp", "admin tcp"):
            match = self.waitForLog(r"\[gateway\.server#info\] %s:0:interface=127\.0\.0\.1: listening on "
                                    r"127\.0\.0\.1:(\d+)" % (name,))
            self.ports[name.split()[0] + ("s" if name.endswith("ssl") else "")] = int(match.group(1))
        for number in range(1, count + 1 if count > 1 else 1):
            self.waitForLog(r"\[worker %d gateway\.server#info\] worker %d serving" % (number, number))

    def workerPid(self, number):
        """
        The process id of worker C{number} now.
        """
        return int(re.findall(r"worker %d serving \(pid (\d+)\)" % (number,), self.log())[-1])

    def log(self):
        try:
            with open(os.path.join(self.folder, "twistd.log"), encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def waitFor(self, predicate, what, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.process.poll() is not None:
                self.testCase.fail("twistd ended (%s) while waiting for %s" % (self.process.returncode, what))
            time.sleep(0.05)
        self.testCase.fail("timed out waiting for %s; log:\n%s" % (what, self.log()[-3000:]))

    def waitForLog(self, pattern, count=1):
        def found():
            matches = list(re.finditer(pattern, self.log()))
            return matches[count - 1] if len(matches) >= count else None

        return self.waitFor(found, "the log line %r" % (pattern,))

    def admin(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.ports["admin"], path), timeout=30) as r:
            return r.read().decode("utf-8")

    def sessions(self):
        return json.loads(self.admin("/sessions"))["sessions"]

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()  # its workers stop when it is gone
                self.process.wait(60)
                self.testCase.fail("twistd did not stop on SIGTERM")

    def imap(self):
        client = imaplib.IMAP4("127.0.0.1", self.ports["imap"], timeout=30)
        self.testCase.addCleanup(_quietly, client.shutdown)
        return client


def processCpus(pid):
    """
    The distinct sets of CPUs the threads of process C{pid} may run on.
    """
    return set(map(frozenset, perThread(os.sched_getaffinity, pid).values()))


def clientPort(client):
    """
    The local port of an imaplib or poplib client's connection.
    """
    return client.sock.getsockname()[1]


def untagged(client, kind):
    """
    The next untagged C{kind} response (C{* 1 RECENT} and such are passed over).
    """
    while True:
        line = client.readline()
        if not line or kind in line:
            return line


def _quietly(f, *args):
    try:
        f(*args)
    except Exception:
        pass


class WorkerEndToEndTests(unittest.TestCase):
    """Two workers under one twistd parent, over one data root."""

    timeout = 180

    def sessionOn(self, server, otherThan, make):
        """
        A session made by C{make()} (which must get an answer from the
        server) in a worker other than C{otherThan}: that worker is stopped
        (SIGSTOP) meanwhile, so the other one accepts.  (Left to the kernel,
        the worker that wakes first accepts, and on a loaded machine that was
        one worker 30 times in a row.)

        @return: C{(client, worker number)}, the number checked in /sessions.
        """
        pid = server.workerPid(otherThan)
        os.kill(pid, signal.SIGSTOP)
        try:
            client = make()
        finally:
            os.kill(pid, signal.SIGCONT)
        port = clientPort(client)
        [entry] = server.waitFor(lambda: [s for s in server.sessions() if s["port"] == port], "the new session")
        self.assertNotEqual(entry["worker"], otherThan)
        return client, entry["worker"]

    def test_idleSeesAnotherWorkersChange(self):
        """IDLE in one worker sees an APPEND made through the other worker, and an LMTP delivery."""
        server = Server(self)
        idler = server.imap()
        idler.login(ACCOUNT, PASSWORD)
        idler.select("INBOX")
        idler.send(b"I1 IDLE\r\n")
        self.assertTrue(idler.readline().startswith(b"+"))
        [entry] = server.waitFor(lambda: [s for s in server.sessions() if s["idle"]], "the IDLE session")
        idleWorker = entry["worker"]

        def make():
            client = server.imap()
            client.login(ACCOUNT, PASSWORD)
            client.noop()
            return client

        writer, writerWorker = self.sessionOn(server, idleWorker, make)
        self.assertNotEqual(writerWorker, idleWorker)
        typ, data = writer.append("INBOX", None, None, MESSAGE % b"through the other worker")
        self.assertEqual(typ, "OK")
        # Waits for the event; the socket's timeout (30 s) only stops a hung test.
        self.assertEqual(untagged(idler, b"EXISTS"), b"* 1 EXISTS\r\n")
        with smtplib.LMTP("127.0.0.1", server.ports["lmtp"], timeout=30) as lmtp:
            lmtp.sendmail("a@example.test", [ACCOUNT], MESSAGE % b"delivered")
        self.assertEqual(untagged(idler, b"EXISTS"), b"* 2 EXISTS\r\n")
        idler.send(b"DONE\r\n")
        self.assertTrue(untagged(idler, b"I1 ").startswith(b"I1 OK"))

    def test_pop3LockAcrossWorkers(self):
        """A POP3 session in one worker holds the maildrop: a login through the other worker gets [IN-USE]."""
        server = Server(self)
        first = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=30)
        self.addCleanup(_quietly, first.quit)
        first.user(ACCOUNT)
        first.pass_(PASSWORD)
        [entry] = server.waitFor(lambda: [s for s in server.sessions() if s["protocol"] == "pop3"], "the session")

        def make():
            return poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=30)

        second, worker = self.sessionOn(server, entry["worker"], make)
        self.addCleanup(_quietly, second.quit)
        second.user(ACCOUNT)
        e = self.assertRaises(poplib.error_proto, second.pass_, PASSWORD)
        self.assertIn(b"[IN-USE]", e.args[0])
        first.quit()
        third, _ = self.sessionOn(server, entry["worker"], make)
        self.addCleanup(_quietly, third.quit)
        third.user(ACCOUNT)
        self.assertTrue(third.pass_(PASSWORD).startswith(b"+OK"))

    def test_killedWorkerReplaced(self):
        """A worker killed in the middle of an APPEND is started again; the message is not half there."""
        server = Server(self)
        client = server.imap()
        client.login(ACCOUNT, PASSWORD)
        client.send(b"A1 APPEND INBOX {%d}\r\n" % (len(MESSAGE % b"half") + 1000,))
        self.assertTrue(client.readline().startswith(b"+"))
        client.send(MESSAGE % b"half")
        [entry] = server.waitFor(
            lambda: [s for s in server.sessions() if s["account"] == ACCOUNT and s["bytes_in"] > 100],
            "the appending session")
        os.kill(entry["pid"], signal.SIGKILL)
        self.assertEqual(client.readline(), b"")  # the connection went with the worker
        number = entry["worker"]
        server.waitForLog(r"\[worker %d gateway\.server#info\] worker %d serving" % (number, number), count=2)
        self.assertIn("gateway_worker_restarts_total 1", server.admin("/metrics"))
        self.assertEqual(len({s["pid"] for s in server.sessions()} - {entry["pid"]}), len(server.sessions()))
        for _ in range(4):  # whichever worker each lands on
            other = server.imap()
            other.login(ACCOUNT, PASSWORD)
            typ, data = other.select("INBOX")
            self.assertEqual((typ, data), ("OK", [b"0"]))
            other.logout()

    def test_loginFailuresShared(self):
        """Failed logins through either worker count for the address in the one database of the data root."""
        server = Server(self)
        first = server.imap()
        [entry] = server.waitFor(lambda: [s for s in server.sessions() if s["protocol"] == "imap"], "the session")
        second, _ = self.sessionOn(server, entry["worker"], server.imap)
        for client in (first, second):
            self.assertRaises(imaplib.IMAP4.error, client.login, ACCOUNT, "wrong")
        path = os.path.join(server.dataRoot, "run", "login-delays.sqlite")
        with sqlite3.connect(path) as db:
            self.assertEqual(db.execute("SELECT failures FROM addresses WHERE remote = '127.0.0.1'").fetchall(),
                             [(2,)])
        second.login(ACCOUNT, PASSWORD)

        def failures():
            with sqlite3.connect(path) as db:
                return db.execute("SELECT failures FROM addresses WHERE failures > 0").fetchall()

        # A success resets the count (and forgets the address), in the delays' own thread: not before the
        # answer, but before anything else that worker records.
        server.waitFor(lambda: failures() == [], "the success to reset the count")

    def test_perAddressLimitAcrossWorkers(self):
        """max_connections_per_address counts the connections of both workers: the third is refused."""
        server = Server(self, imapExtra="max_connections_per_address = 2")
        first = server.imap()
        [entry] = server.waitFor(lambda: [s for s in server.sessions() if s["protocol"] == "imap"], "the session")
        self.sessionOn(server, entry["worker"], server.imap)
        e = self.assertRaises(imaplib.IMAP4.error, server.imap)
        self.assertIn("Too many connections from your address", str(e))
        first.logout()
        server.waitFor(lambda: len(server.sessions()) == 1, "the first session to end")
        server.imap().logout()

    def test_freeBusyAcrossWorkers(self):
        """An event added through IMAP changes the free/busy document each worker serves, though both had it cached."""
        server = Server(self)
        path = "/~demo/freebusy.vfb?start=2026-07-01T00:00:00Z&end=2026-07-08T00:00:00Z"

        def make():
            connection = http.client.HTTPConnection("127.0.0.1", server.ports["http"], timeout=30)
            self.addCleanup(connection.close)
            connection.request("GET", "/", headers={"Host": "example.test"})
            connection.getresponse().read()
            return connection

        def freeBusy(connection):
            connection.request("GET", path, headers={"Host": "example.test"})
            response = connection.getresponse()
            self.assertEqual(response.status, 200)
            return [line for line in response.read().decode("utf-8").splitlines() if line.startswith("FREEBUSY")]

        first = make()
        [entry] = server.waitFor(lambda: [s for s in server.sessions() if s["protocol"] == "http"], "the session")
        second, _ = self.sessionOn(server, entry["worker"], make)
        self.assertEqual((freeBusy(first), freeBusy(second)), ([], []))
        event = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:w1\r\n"
                 "DTSTAMP:20260101T000000Z\r\nDTSTART:20260702T100000Z\r\nDTEND:20260702T110000Z\r\n"
                 "SUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
        imap = server.imap()
        imap.login(ACCOUNT, PASSWORD)
        typ, _ = imap.append("Calendar", None, None, (
            "From: demo@example.test\r\nSubject: x\r\nContent-Type: text/calendar; charset=utf-8\r\n\r\n"
            + event).encode("utf-8"))
        self.assertEqual(typ, "OK")
        busy = ["FREEBUSY;FBTYPE=BUSY:20260702T100000Z/20260702T110000Z"]
        # Each worker reuses a document for up to a second (MEMO_SECONDS), as one process does.
        for connection in (first, second):
            server.waitFor(lambda connection=connection: freeBusy(connection) == busy, "the event in free/busy")

    def test_ftpAndTLSInBothWorkers(self):
        """FTP with passive data connections, and the ssl: IMAP listener, work in both workers."""
        server = Server(self)

        def ftp():
            client = ftplib.FTP()
            client.connect("127.0.0.1", server.ports["ftp"], timeout=30)
            self.addCleanup(_quietly, client.close)
            return client

        first = ftp()
        [entry] = server.waitFor(lambda: [s for s in server.sessions() if s["protocol"] == "ftp"], "the session")
        second, _ = self.sessionOn(server, entry["worker"], ftp)
        for client in (first, second):
            client.login(ACCOUNT, PASSWORD)
        first.storbinary("STOR shared.txt", io.BytesIO(b"through one worker\n"))
        got = io.BytesIO()
        second.retrbinary("RETR shared.txt", got.write)
        self.assertEqual(got.getvalue(), b"through one worker\n")

        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE

        def imaps():
            client = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=context, timeout=30)
            self.addCleanup(_quietly, client.shutdown)
            return client

        one = imaps()
        [entry] = server.waitFor(lambda: [s for s in server.sessions() if s["port"] == clientPort(one)], "session")
        two, _ = self.sessionOn(server, entry["worker"], imaps)
        for client in (one, two):
            self.assertEqual(client.login(ACCOUNT, PASSWORD)[0], "OK")

    def test_killDuringWrites(self):
        """A worker killed during 100 concurrent APPENDs and LMTP deliveries: every acknowledged message is there, none half."""
        server = Server(self)
        pids = {int(n): int(p) for n, p in re.findall(r"worker (\d) serving \(pid (\d+)\)", server.log())}
        acknowledged, lock = [], threading.Lock()
        body = b"".join(b"line %04d of a message that takes some time to send\r\n" % (i,) for i in range(400))

        def message(subject):
            return (b"From: a@example.test\r\nTo: demo@example.test\r\nSubject: %s\r\n\r\n%send %s\r\n"
                    % (subject, body, subject))

        def appender(name):
            client = None
            for i in range(25):
                subject = b"%s-%d" % (name, i)
                try:
                    if client is None:
                        client = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=30)
                        client.login(ACCOUNT, PASSWORD)
                    if client.append("INBOX", None, None, message(subject))[0] == "OK":
                        with lock:
                            acknowledged.append(subject)
                except (OSError, imaplib.IMAP4.error):
                    client = None  # its worker was killed: a new connection
            _quietly(client.logout) if client is not None else None

        def deliverer(name):
            for i in range(25):
                subject = b"%s-%d" % (name, i)
                try:
                    with smtplib.LMTP("127.0.0.1", server.ports["lmtp"], timeout=30) as lmtp:
                        lmtp.sendmail("a@example.test", [ACCOUNT], message(subject))
                    with lock:
                        acknowledged.append(subject)
                except (OSError, smtplib.SMTPException):
                    pass

        threads = [threading.Thread(target=appender, args=(b"imap%d" % (i,),)) for i in range(2)]
        threads += [threading.Thread(target=deliverer, args=(b"lmtp%d" % (i,),)) for i in range(2)]
        for thread in threads:
            thread.start()
        server.waitFor(lambda: len(acknowledged) >= 4, "some acknowledged writes")
        os.kill(pids[1], signal.SIGKILL)
        for thread in threads:
            thread.join(120)
        server.waitForLog(r"\[worker 1 gateway\.server#info\] worker 1 serving", count=2)
        client = server.imap()
        client.login(ACCOUNT, PASSWORD)
        client.select("INBOX", readonly=True)
        typ, data = client.fetch("1:*", "(BODY.PEEK[])")
        self.assertEqual(typ, "OK")
        found = [part[1] for part in data if isinstance(part, tuple)]
        subjects = [re.search(rb"Subject: (\S+)", m).group(1) for m in found]
        for text, subject in zip(found, subjects, strict=True):
            # Whole: as sent (LMTP may put trace headers such as Return-Path before it).
            self.assertTrue(text.replace(b"\r\n", b"\n").endswith(message(subject).replace(b"\r\n", b"\n")),
                            subject)
        self.assertEqual(sorted(set(acknowledged) - set(subjects)), [])
        self.assertEqual(len(subjects), len(set(subjects)))
        self.assertGreater(len(acknowledged), 4)

    def test_signals(self):
        """SIGHUP reaches every worker; SIGTERM ends the workers and then the parent."""
        server = Server(self)
        pids = [int(m) for m in re.findall(r"worker \d serving \(pid (\d+)\)", server.log())]
        self.assertEqual(len(pids), 2)
        server.process.send_signal(signal.SIGHUP)
        for number in (1, 2):
            server.waitForLog(r"\[worker %d gateway\.server#info\] reload: configuration" % (number,))
        self.assertIn("[gateway.server#info] reload: passed on to the workers", server.log())
        client = server.imap()
        client.login(ACCOUNT, PASSWORD)
        client.logout()
        server.process.terminate()
        server.process.wait(60)
        for pid in pids:
            self.assertRaises(ProcessLookupError, os.kill, pid, 0)
        for pid in pids:
            self.assertIn("(pid %d) ended by signal 15" % (pid,), server.log())

    def test_parentKilled(self):
        """Workers whose parent was killed (SIGKILL) stop: nothing keeps serving without it."""
        server = Server(self)
        pids = [int(m) for m in re.findall(r"worker \d serving \(pid (\d+)\)", server.log())]
        for pid in pids:  # should this test fail, no worker is left running
            self.addCleanup(_quietly, os.kill, pid, signal.SIGKILL)
        server.process.kill()
        server.process.wait(60)

        def gone(pid):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            # A zombie (its parent, init, has not reaped it yet) has ended too.
            with open("/proc/%d/stat" % (pid,)) as f:
                return f.read().rpartition(")")[2].split()[0] == "Z"

        deadline = time.monotonic() + 30
        while not all(gone(pid) for pid in pids):
            self.assertLess(time.monotonic(), deadline, "the workers did not stop")
            time.sleep(0.05)

    def test_keptOnTheirCpus(self):
        """
        cpu_affinity = auto (the default): every thread of worker K, the
        index writer that an APPEND started included, runs on the K-th CPU;
        the parent stays where the kernel puts it.
        """
        allowed = os.sched_getaffinity(0)
        if len(allowed) < 2:
            raise unittest.SkipTest("this process may use one CPU only: the workers have no choice")
        server = Server(self)
        for _ in range(2):  # whichever worker each lands on
            client = server.imap()
            client.login(ACCOUNT, PASSWORD)
            self.assertEqual(client.append("INBOX", None, None, MESSAGE % b"written")[0], "OK")
            client.logout()
        for number in (1, 2):
            self.assertEqual(processCpus(server.workerPid(number)), {frozenset({sorted(allowed)[number - 1]})})
        # The reactor's thread comes first on its CPU: the index writers
        # (an APPEND started one, in one worker or both) are SCHED_BATCH.
        policies = [perThread(os.sched_getscheduler, server.workerPid(number)) for number in (1, 2)]
        self.assertEqual([p[pid] for p, pid in zip(policies, map(server.workerPid, (1, 2)), strict=True)],
                         [os.SCHED_OTHER, os.SCHED_OTHER])
        self.assertIn(os.SCHED_BATCH, [policy for p in policies for policy in p.values()])
        self.assertEqual(os.sched_getaffinity(server.process.pid), allowed)
        server.waitForLog(r"\[worker 2 gateway\.server#info\] process \d+ kept on CPU %d" % (sorted(allowed)[1],))

    def test_singleProcessKeptOnFirstCpu(self):
        """With workers = 1 the one process (its threads) runs on the first CPU it may use."""
        allowed = os.sched_getaffinity(0)
        if len(allowed) < 2:
            raise unittest.SkipTest("this process may use one CPU only: the server has no choice")
        server = Server(self, count=1)
        client = server.imap()
        client.login(ACCOUNT, PASSWORD)
        self.assertEqual(client.append("INBOX", None, None, MESSAGE % b"written")[0], "OK")
        self.assertEqual(processCpus(server.process.pid), {frozenset({min(allowed)})})

    def test_metricsAddedUp(self):
        """/metrics adds up the workers' counters; /sessions lists every worker's sessions."""
        server = Server(self)
        clients = []
        for _ in range(6):
            client = server.imap()
            client.login(ACCOUNT, PASSWORD)
            clients.append(client)
        sessions = server.waitFor(lambda: [s for s in server.sessions() if s["account"] == ACCOUNT], "sessions")
        self.assertEqual(len(sessions), 6)
        from gateway.admin.who import formatSessions

        lines = formatSessions(sessions).splitlines()
        self.assertEqual(lines[0].split()[-1], "WORKER")
        self.assertLessEqual({line.split()[-1] for line in lines[1:]}, {"1", "2"})
        metrics = server.admin("/metrics")
        self.assertIn("gateway_workers 2", metrics)
        self.assertIn("gateway_workers_answered 2", metrics)
        [line] = [x for x in metrics.splitlines() if x.startswith("gateway_sessions_open{")
                  and 'protocol="imap"' in x and 'domain="example.test"' in x]
        self.assertEqual(float(line.split()[-1]), 6.0)


class WorkersOneTests(unittest.TestCase):
    """workers = 1 is the single process of before; the option's parsing."""

    def makeService(self, count):
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        makeDataRoot(os.path.join(folder, "data"))
        path = os.path.join(folder, "gateway.ini")
        writeConfig(path, os.path.join(folder, "data"), count)
        self.patch(tap, "raiseFileLimit", lambda: None)
        self.patch(tap.gc, "freeze", lambda: None)
        options = tap.Options()
        options.parseOptions(["--config", path])
        return tap.makeService(options)

    def test_oneWorkerIsOneProcess(self):
        """With workers = 1, twistd gateway builds the single-process service (no parent, no worker)."""
        top = self.makeService(1)
        self.assertNotIsInstance(top, workers.WorkerParent)
        self.assertNotIsInstance(top, worker.WorkerService)
        self.assertIn("imap", top.factories)

    def test_twoWorkersMakeTheParent(self):
        """With workers = 2 the parent holds one listener per endpoint and starts two workers."""
        top = self.makeService(2)
        self.assertIsInstance(top, workers.WorkerParent)
        self.assertEqual(top.count, 2)
        self.assertEqual(sorted(child.name for child in top.listeners()),
                         sorted(["imap tcp:0:interface=127.0.0.1", "imap ssl:0:interface=127.0.0.1",
                                 "http tcp:0:interface=127.0.0.1", "ftp tcp:0:interface=127.0.0.1",
                                 "pop3 tcp:0:interface=127.0.0.1", "lmtp tcp:0:interface=127.0.0.1"]))

    def test_defaultIsCPUCount(self):
        """workers = auto (the default) is the number of CPUs."""
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        path = os.path.join(folder, "gateway.ini")
        with open(path, "w") as f:
            f.write("[server]\ndata_root = .\n")
        self.assertEqual(loadConfig(path)["server", "workers"], max(1, os.cpu_count() or 1))

    def test_badWorkers(self):
        """workers = 0 (or not a number) stops start-up with an error naming the option."""
        from gateway.config import ConfigurationError

        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        path = os.path.join(folder, "gateway.ini")
        for value in ("0", "many"):
            with open(path, "w") as f:
                f.write("[server]\ndata_root = .\nworkers = %s\n" % (value,))
            e = self.assertRaises(ConfigurationError, loadConfig, path)
            self.assertIn("workers", str(e))

    def test_inheritOption(self):
        """--worker and --inherit are parsed into the worker number and listener -> descriptor."""
        options = tap.Options()
        options.parseOptions(["--worker", "2", "--inherit", "10=imap tcp:143", "--inherit", "11=pop3 ssl:995"])
        self.assertEqual(options["worker"], 2)
        self.assertEqual(options["inherit"], {"imap tcp:143": 10, "pop3 ssl:995": 11})


class AddMetricsTests(unittest.TestCase):
    """Adding up the workers' metrics."""

    def test_sumsSamplesKeepsFamilies(self):
        """Samples with equal names and labels are summed, under their family's HELP and TYPE lines."""
        one = ('# HELP a_total A.\n# TYPE a_total counter\na_total{p="imap"} 2.0\na_total{p="pop3"} 1.0\n'
               "# HELP b B.\n# TYPE b gauge\nb 5.0\n")
        two = '# HELP a_total A.\n# TYPE a_total counter\na_total{p="imap"} 3.0\n# HELP b B.\n# TYPE b gauge\nb 1.0\n'
        self.assertEqual(workers.addMetrics([one, two]), (
            '# HELP a_total A.\n# TYPE a_total counter\na_total{p="imap"} 5.0\na_total{p="pop3"} 1.0\n'
            "# HELP b B.\n# TYPE b gauge\nb 6.0\n"))


class LogLineTests(unittest.TestCase):
    """A worker's log lines in the parent's log."""

    def test_lineBecomesEvent(self):
        """A twistd log line of worker 2 is logged again with its namespace, level and worker number."""
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        worker = workers.WorkerProcess(None, 2)
        worker._buffers = {1: b"", 2: b""}
        worker.childDataReceived(1, b"2026-01-01T00:00:00+0000 [gateway.imap#warn] a {brace}\nrest")
        [event] = [e for e in events if e.get("worker") == 2]
        self.assertEqual((event["log_namespace"], event["log_level"], event["text"]),
                         ("gateway.imap", LogLevel.warn, "a {brace}"))
        self.assertEqual(event["log_system"], "worker 2 gateway.imap#warn")
        self.assertEqual(worker._buffers[1], b"rest")


class ParentTests(unittest.TestCase):
    """The parent without processes: restarts with backoff."""

    def test_backoff(self):
        """A worker that keeps dying quickly is started again after 0.5, 1, 2... seconds; a long-lived one at once."""
        from twisted.internet.task import Clock

        clock = Clock()
        parent = bareParent(self, clock)
        started = []

        class Worker:
            number = 1
            quickDeaths = 0
            lastPid = None
            stopping = False
            replacing = False

            def start(self):
                started.append(clock.seconds())

        worker = Worker()
        delays = []
        for lived in (1, 1, 1, workers.STABLE_AFTER):
            parent.workerEnded(worker, lived)
            delays.append(worker.restart.getTime() - clock.seconds())
            clock.advance(100)
        self.assertEqual(delays, [0.5, 1.0, 2.0, 0.5])
        self.assertEqual(len(started), 4)
        self.assertEqual(parent.restarts, 4)

    def test_endedWorkerLeftOut(self):
        """The slot of a worker that ended says it accepts nothing: the others no longer leave connections to it."""
        from twisted.internet.task import Clock

        from gateway import workerload

        parent = bareParent(self, Clock())
        dataRoot = parent.context.config.dataRoot()
        loads = {}
        for number, count in ((1, 5), (2, 3)):
            loads[number] = workerload.WorkerLoads(dataRoot, number, 2, lambda count=count: count)
            loads[number].startAccepting()
            self.addCleanup(loads[number].close)
        self.assertEqual(loads[1].othersHaveFewer(), 3)

        class Worker:
            number = 2
            lastPid = None
            stopping = True
            replacing = False

        parent.workerEnded(Worker(), 10)
        self.assertIsNone(loads[1].othersHaveFewer())


class StopSignalTests(unittest.TestCase):
    """SIGTERM and SIGINT under twistd: nothing is logged inside the signal handler."""

    def test_handlerDefersToReactor(self):
        """The SIGTERM handler only asks the reactor to stop; the reactor logs the signal and stops by it."""
        from gateway.service import GatewayService

        calls, events = [], []

        class Reactor:
            running = True

            def callFromThread(self, f, *args):
                calls.append((f, args))

            def stop(self):
                if "stop" in calls:
                    raise ReactorNotRunning()
                calls.append("stop")

        class Context:
            reactor = Reactor()

        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        top = GatewayService.__new__(GatewayService)
        MultiService.__init__(top)
        top.context, top._signals, top.running = Context(), {}, True
        previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
        for s, handler in previous.items():
            self.addCleanup(signal.signal, s, handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        top._installStopSignals()
        handler = signal.getsignal(signal.SIGTERM)
        self.assertNotEqual(handler, signal.SIG_DFL)
        handler(signal.SIGTERM, None)
        self.assertEqual(events, [])
        [(f, args)] = calls
        f(*args)
        self.assertEqual(calls[-1], "stop")
        f(*args)  # a second SIGTERM while stopping is no error
        self.assertEqual(calls.count("stop"), 1)
        self.assertEqual(Context.reactor._exitSignal, signal.SIGTERM)
        self.assertIn("received SIGTERM", [e.get("log_format", "").replace("{name}", e.get("name", "")).split(",")[0]
                                           for e in events][0])
        top._restoreSignals()
        self.assertEqual(signal.getsignal(signal.SIGTERM), signal.SIG_DFL)


class ControlPipeTests(unittest.TestCase):
    """The parent's end of a worker's control pipe."""

    def test_largeAnswer(self):
        """A worker's answer of several megabytes (a busy server's sessions) reaches the question."""
        from twisted.internet.task import Clock

        class Context:
            reactor = Clock()

        class Parent:
            context = Context()

        written = []

        class Transport:
            def writeToChild(self, fd, data):
                written.append((fd, data))

        worker = workers.WorkerProcess(Parent(), 1)
        worker.pid = 123
        worker.transport = Transport()
        worker._control = worker._makeControl()
        d = worker.ask("sessions")
        [(fd, question)] = written
        self.assertEqual(fd, workers.CONTROL_IN)
        answer = [{"protocol": "imap", "remote": "192.0.2.%d" % (i % 250,)} for i in range(60000)]
        reply = json.dumps({"id": 1, "answer": answer}).encode("utf-8")
        self.assertGreater(len(reply), 2000000)
        data = b"%d:%s," % (len(reply), reply)
        for i in range(0, len(data), 65536):
            worker.childDataReceived(workers.CONTROL_OUT, data[i:i + 65536])
        self.assertEqual(len(self.successResultOf(d)), 60000)


class AcceptOnePerWakeTests(unittest.TestCase):
    """
    A worker takes one connection each time the shared listening socket
    wakes it, so the other workers get their share of a burst.
    """

    def test_oneConnectionPerRead(self):
        """Three clients waiting: one read of the port accepts one of them, the next read the next."""
        import socket as socketModule

        from twisted.internet import protocol, reactor

        listener = socketModule.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(10)
        listener.setblocking(False)
        built = []

        class Factory(protocol.ServerFactory):
            def buildProtocol(self, addr):
                built.append(addr)
                return None  # refused: nothing to clean up

        port = reactor.adoptStreamPort(listener.fileno(), socketModule.AF_INET, Factory())
        listener.close()
        self.addCleanup(port.stopListening)
        port.stopReading()  # read by hand below, not by the reactor
        worker.acceptOnePerWake(port)
        clients = [socketModule.create_connection(port.socket.getsockname()) for _ in range(3)]
        for client in clients:
            self.addCleanup(client.close)
        port.doRead()
        self.assertEqual(len(built), 1)
        port.doRead()
        self.assertEqual(len(built), 2)
