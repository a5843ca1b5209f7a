# -*- test-case-name: tests.test_daemon -*-
"""
Running as a service (issue 15 item 5): SIGHUP reloads the configuration
without dropping sessions, the log file is opened again on SIGUSR1 (after
logrotate), and levels come from one LogLevelFilterPredicate.
"""

import grp
import os
import pwd
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from twisted.internet import defer, reactor, threads
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial import unittest

from gateway import logging as glog
from gateway.config import loadConfig
from gateway.service import makeService
from gateway.tlscert import makeSelfSigned
from tests.support import PASSWORD, makeDataRoot, makeTestConfig, testCertificate

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


def writeConfig(path, dataRoot, cert, key, imapListen, extra=""):
    with open(path, "w") as f:
        f.write(
            "[server]\ndata_root = %s\nworkers = 1\n%s\n[tls]\ncertificate = %s\nprivate_key = %s\n"
            "[auth]\nfailure_delay = 0\n"
            "[pop3]\nenabled = no\n[http]\nenabled = no\n[ftp]\nenabled = no\n"
            "[lmtp]\nenabled = no\n[admin]\nenabled = no\n[imap]\nlisten = %s\n"
            % (dataRoot, extra, cert, key, "\n    ".join(imapListen))
        )


def certificateOf(port):
    """The DER certificate an ssl: listener on C{port} presents."""
    client = ssl.create_default_context()
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with client.wrap_socket(s) as t:
            return t.getpeercert(binary_form=True)


class ReloadTests(unittest.TestCase):
    """GatewayService.reload in this process, over loopback."""

    timeout = 60

    def setUp(self):
        self.folder = os.path.abspath(self.mktemp())
        os.makedirs(self.folder)
        self.dataRoot = os.path.join(self.folder, "data")
        makeDataRoot(self.dataRoot)
        self.cert, self.key = os.path.join(self.folder, "cert.pem"), os.path.join(self.folder, "key.pem")
        makeSelfSigned(self.cert, self.key)
        self.path = os.path.join(self.folder, "gateway.ini")
        self.write(["tcp:0:interface=127.0.0.1", "ssl:0:interface=127.0.0.1"])
        self.top = makeService(loadConfig(self.path), reactor)
        self.top.privilegedStartService()
        self.top.startService()
        self.addCleanup(self.top.stopService)
        self.addCleanup(glog.configure, makeTestConfig(self.folder))
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def write(self, listen, extra=""):
        writeConfig(self.path, self.dataRoot, self.cert, self.key, listen, extra)

    def ports(self):
        return {child.name: child.port.getHost().port for child in self.top if child.port is not None}

    def login(self, port):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b'a LOGIN demo@example.test "%s"\r\n' % (PASSWORD.encode(),))
        self.assertTrue(f.readline().startswith(b"a OK"))
        return s, f

    @defer.inlineCallbacks
    def test_listenersChangeSessionsStay(self):
        """A listener removed from the file stops listening, a new one listens, and a session on the old one goes on."""
        port = self.ports()["imap tcp:0:interface=127.0.0.1"]
        s, f = yield threads.deferToThread(self.login, port)
        self.write(["tcp:0:interface=127.0.0.1:backlog=5", "ssl:0:interface=127.0.0.1"])
        result = yield self.top.reload()
        self.assertIs(result, True)
        ports = self.ports()
        self.assertEqual(sorted(ports), ["imap ssl:0:interface=127.0.0.1", "imap tcp:0:interface=127.0.0.1:backlog=5"])

        def after():
            s.sendall(b"b NOOP\r\n")
            noop = f.readline()
            refused = None
            try:
                socket.create_connection(("127.0.0.1", port), timeout=10).close()
            except ConnectionRefusedError as e:
                refused = e
            greeting = socket.create_connection(("127.0.0.1", ports["imap tcp:0:interface=127.0.0.1:backlog=5"]),
                                                timeout=10).recv(100)
            s.sendall(b"c LOGOUT\r\n")
            f.read()
            s.close()
            return noop, refused, greeting

        noop, refused, greeting = yield threads.deferToThread(after)
        self.assertTrue(noop.startswith(b"b OK"), noop)
        self.assertIsNotNone(refused)
        self.assertTrue(greeting.startswith(b"* OK"))

    @defer.inlineCallbacks
    def test_levelsAndLimits(self):
        """A reload applies new log levels and connection limits, to loggers made before it too."""
        logger = glog.getLogger("imap")
        logger.debug("before")
        factory = self.top.factories["imap"]
        self.assertEqual(factory.policy.maxPerAddress, 50)
        with open(self.path, "a") as f:
            f.write("log_level = debug\nmax_connections_per_address = 3\n")
        self.assertIs((yield self.top.reload()), True)
        logger.debug("after")
        seen = [e["log_format"] for e in self.events if e.get("log_namespace") == "gateway.imap"]
        self.assertEqual(seen, ["after"])
        self.assertEqual(factory.policy.maxPerAddress, 3)
        self.assertEqual(self.top.context.config["imap", "log_level"], "debug")

    @defer.inlineCallbacks
    def test_copiedSettingsRefreshed(self):
        """Settings the IMAP factory copied at start-up (max_connections) take their new values on reload."""
        inner = self.top.factories["imap"].wrappedFactory
        self.assertEqual(inner.maxConnections, 5000)
        with open(self.path, "a") as f:
            f.write("max_connections = 7\n")
        self.assertIs((yield self.top.reload()), True)
        self.assertEqual(inner.maxConnections, 7)
        self.assertEqual(self.top.factories["imap"].policy.maxConnections, 7)

    @defer.inlineCallbacks
    def test_ftpLimitsAndDataCertificate(self):
        """FTP's own limits and its data connections' TLS context (built apart from [tls]'s) follow a reload."""
        ftp = self.top.factory("ftp")
        first = ftp.dataTLS()
        self.assertIs(ftp.dataTLS(), first)
        self.assertEqual((ftp.maxPerAddress, ftp.loginTimeout), (10, 60))
        with open(self.path) as f:
            text = f.read()
        with open(self.path, "w") as f:
            f.write(text.replace("[ftp]\nenabled = no\n",
                                 "[ftp]\nenabled = no\nmax_connections_per_address = 4\nlogin_timeout = 9\n"))
        makeSelfSigned(self.cert, self.key)
        self.assertIs((yield self.top.reload()), True)
        self.assertEqual((ftp.maxPerAddress, ftp.loginTimeout), (4, 9))
        second = ftp.dataTLS()
        self.assertIsNot(second, first)
        from cryptography import x509
        with open(self.cert, "rb") as f:
            wanted = x509.load_pem_x509_certificate(f.read())
        served = second.certificate
        served = served if isinstance(served, x509.Certificate) else served.to_cryptography()
        self.assertEqual(served, wanted)

    @defer.inlineCallbacks
    def test_unwritableLogFile(self):
        """A log file that cannot be written stops start-up with one line, and is refused by a reload."""
        from gateway.config import ConfigurationError

        missing = os.path.join(self.folder, "no-such-folder", "gateway.log")
        self.write(["tcp:0:interface=127.0.0.1"], "log_file = %s" % (missing,))
        e = self.assertRaises(ConfigurationError, makeService, loadConfig(self.path), reactor)
        self.assertIn("[server] log_file", str(e))
        yield self.top.reload()
        self.assertTrue(any("the log file in use stays" in ev.get("log_format", "") for ev in self.events))

    @defer.inlineCallbacks
    def test_brokenFileChangesNothing(self):
        """A configuration file with an error is logged and nothing changes."""
        before = self.top.context.config
        with open(self.path, "a") as f:
            f.write("idle_timeout = soon\n")
        self.assertIs((yield self.top.reload()), False)
        self.assertIs(self.top.context.config, before)
        errors = [e for e in self.events if e.get("log_level") == LogLevel.error]
        self.assertEqual(len(errors), 1)
        self.assertIn("[imap] idle_timeout", errors[0]["error"])

    @defer.inlineCallbacks
    def test_certificateReloaded(self):
        """A certificate replaced on disk is served to new TLS connections after a reload."""
        port = self.ports()["imap ssl:0:interface=127.0.0.1"]
        first = yield threads.deferToThread(certificateOf, port)
        makeSelfSigned(self.cert, self.key)
        self.assertEqual((yield threads.deferToThread(certificateOf, port)), first)
        self.assertIs((yield self.top.reload()), True)
        second = yield threads.deferToThread(certificateOf, port)
        self.assertNotEqual(second, first)
        with open(self.cert, "rb") as f:
            self.assertEqual(ssl.PEM_cert_to_DER_cert(f.read().decode("ascii")), second)

    @defer.inlineCallbacks
    def test_brokenCertificateKept(self):
        """A certificate file that cannot be loaded leaves the one in use."""
        port = self.ports()["imap ssl:0:interface=127.0.0.1"]
        first = yield threads.deferToThread(certificateOf, port)
        with open(self.cert, "w") as f:
            f.write("not a certificate\n")
        yield self.top.reload()
        self.assertEqual((yield threads.deferToThread(certificateOf, port)), first)
        self.assertTrue(any("the certificate in use stays" in e.get("log_format", "") for e in self.events))


class AccessLogTests(unittest.TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def test_accessLogReopened(self):
        """After the HTTP access log is renamed, reopenLog (SIGUSR1) sends the next requests to a new file."""
        import http.client

        from gateway.service import FRONTENDS

        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        dataRoot = os.path.join(folder, "data")
        makeDataRoot(dataRoot)
        access = os.path.join(folder, "access.log")
        overrides = {(name, "enabled"): False for name in FRONTENDS}
        overrides["http", "enabled"] = True
        overrides["http", "listen"] = ("tcp:0:interface=127.0.0.1",)
        overrides["http", "access_log"] = access
        top = makeService(makeTestConfig(dataRoot, overrides), reactor)
        top.privilegedStartService()
        top.startService()
        self.addCleanup(top.stopService)
        port = list(top)[0].port.getHost().port

        def get(path):
            client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            client.request("GET", path)
            client.getresponse().read()
            client.close()

        yield threads.deferToThread(get, "/first")
        os.rename(access, access + ".1")
        top.reopenLog()
        yield threads.deferToThread(get, "/second")
        with open(access + ".1") as old, open(access) as new:
            self.assertEqual(('"GET /first' in old.read(), '"GET /second' in new.read()), (True, True))


class LogFileTests(unittest.TestCase):
    def test_reopenAfterRename(self):
        """After the file is renamed (logrotate), reopen() writes the next lines to a new file of the same name."""
        path = os.path.abspath(self.mktemp())
        f = glog.ReopeningFile(path)
        f.write("first\n")
        os.rename(path, path + ".1")
        f.write("second\n")
        f.reopen()
        f.write("third\n")
        f.close()
        with open(path + ".1") as old, open(path) as new:
            self.assertEqual((old.read(), new.read()), ("first\nsecond\n", "third\n"))

    def test_filteredByLevels(self):
        """The log file gets events at or above their section's level, Twisted's own at [server] log_level."""
        from twisted.logger import Logger, LogPublisher

        config = makeTestConfig(self.mktemp())
        config._values["server", "log_level"] = "warn"
        config._values["imap", "log_level"] = "debug"
        config._values["pop3", "log_level"] = "warn"
        glog.configure(config)
        self.addCleanup(glog.configure, makeTestConfig(self.mktemp()))
        path = os.path.abspath(self.mktemp())
        publisher = LogPublisher()
        logFile = glog.LogFile(path, publisher)
        logFile.start()
        Logger(namespace="twisted.web", observer=publisher).info("twisted info")
        Logger(namespace="twisted.web", observer=publisher).warn("twisted warn")
        Logger(namespace="gateway.imap", observer=publisher).debug("imap debug")
        Logger(namespace="gateway.pop3", observer=publisher).info("pop3 info")
        logFile.stop()
        with open(path) as f:
            text = f.read()
        self.assertNotIn("twisted info", text)
        self.assertNotIn("pop3 info", text)
        self.assertIn("twisted warn", text)
        self.assertIn("imap debug", text)

    def test_loggerFollowsLevelChanges(self):
        """A logger that looked its level up once still follows every later change of the levels."""
        from twisted.logger import LogLevel, LogPublisher

        events = []
        publisher = LogPublisher(events.append)
        logger = glog.GatewayLogger(namespace="gateway.imap", observer=publisher)
        self.addCleanup(glog.predicate.clearLogLevels)
        logger.debug("one")
        glog.predicate.setLogLevelForNamespace("gateway.imap", LogLevel.debug)
        logger.debug("two")
        glog.predicate.clearLogLevels()
        logger.debug("three")
        logger.info("four")
        self.assertEqual([e["log_format"] for e in events], ["two", "four"])


def freePort():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class SignalTests(unittest.TestCase):
    """twistd itself: SIGHUP and SIGUSR1 as an administrator (or systemd, logrotate) sends them."""

    timeout = 120

    def test_hangupAndLogRotation(self):
        """SIGHUP reloads without ending the process or a session; SIGUSR1 reopens the log file after a rename."""
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        dataRoot = os.path.join(folder, "data")
        makeDataRoot(dataRoot)
        cert, key = testCertificate()
        port = freePort()
        path = os.path.join(folder, "gateway.ini")
        logPath = os.path.join(folder, "gateway.log")
        writeConfig(path, dataRoot, cert, key, ["tcp:%d:interface=127.0.0.1" % (port,)], "log_file = %s" % logPath)
        child = subprocess.Popen(
            [TWISTD, "--nodaemon", "--pidfile=", "--logfile", os.path.join(folder, "twistd.log"),
             "gateway", "--config", path],
            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

        def stop():
            if child.poll() is None:
                child.terminate()
                child.wait(30)

        self.addCleanup(stop)

        def waitFor(predicate, what):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if predicate():
                    return
                if child.poll() is not None:
                    self.fail("twistd ended (%s) while waiting for %s" % (child.returncode, what))
                time.sleep(0.05)
            self.fail("timed out waiting for " + what)

        def logHas(text, name=logPath):
            try:
                with open(name) as f:
                    return text in f.read()
            except FileNotFoundError:
                return False

        def run():
            def connects():
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    return True
                except OSError:
                    return False

            waitFor(connects, "the IMAP listener")
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            f = s.makefile("rb")
            f.readline()
            s.sendall(b'a LOGIN demo@example.test "%s"\r\n' % (PASSWORD.encode(),))
            login = f.readline()
            child.send_signal(signal.SIGHUP)
            waitFor(lambda: logHas("reload: configuration"), "the reload in the log file")
            s.sendall(b"b NOOP\r\n")
            noop = f.readline()
            os.rename(logPath, logPath + ".1")
            child.send_signal(signal.SIGUSR1)
            waitFor(lambda: os.path.exists(logPath), "the log file opened again")
            child.send_signal(signal.SIGHUP)
            waitFor(lambda: logHas("reload: configuration"), "the second reload in the new log file")
            s.sendall(b"c LOGOUT\r\n")
            f.read()
            s.close()
            return login, noop

        login, noop = run()
        self.assertTrue(login.startswith(b"a OK"), login)
        self.assertTrue(noop.startswith(b"b OK"), noop)
        self.assertIsNone(child.poll())
        with open(logPath + ".1") as f:
            rotated = f.read()
        self.assertIn("authentication succeeded", rotated)
        self.assertEqual(rotated.count("reload: configuration"), 1)


class NotifyTests(unittest.TestCase):
    timeout = 120

    def test_readinessProtocol(self):
        """Under twistd with $NOTIFY_SOCKET: READY=1 once listening, RELOADING=1 and READY=1 on SIGHUP, STOPPING=1."""
        folder = tempfile.mkdtemp(prefix="gateway-test-notify-")  # a short path for the socket
        self.addCleanup(shutil.rmtree, folder, True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(os.path.join(folder, "notify"))
        sock.settimeout(30)
        self.addCleanup(sock.close)
        dataRoot = os.path.join(folder, "data")
        makeDataRoot(dataRoot)
        cert, key = testCertificate()
        port = freePort()
        path = os.path.join(folder, "gateway.ini")
        writeConfig(path, dataRoot, cert, key, ["tcp:%d:interface=127.0.0.1" % (port,)])
        env = dict(os.environ, NOTIFY_SOCKET=os.path.join(folder, "notify"))
        child = subprocess.Popen(
            [TWISTD, "--nodaemon", "--pidfile=", "--logfile", os.path.join(folder, "twistd.log"),
             "gateway", "--config", path],
            cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

        def stop():
            if child.poll() is None:
                child.kill()
                child.wait(30)

        self.addCleanup(stop)
        self.assertEqual(sock.recv(100), b"READY=1")
        greeting = socket.create_connection(("127.0.0.1", port), timeout=10).recv(100)
        self.assertTrue(greeting.startswith(b"* OK"))
        child.send_signal(signal.SIGHUP)
        self.assertTrue(sock.recv(100).startswith(b"RELOADING=1\nMONOTONIC_USEC="))
        self.assertEqual(sock.recv(100), b"READY=1")
        child.terminate()
        self.assertEqual(sock.recv(100), b"STOPPING=1")
        # twistd ends by the signal it stopped for, as systemd expects of SIGTERM.
        self.assertIn(child.wait(30), (0, -signal.SIGTERM))


class LogrotateTests(unittest.TestCase):
    timeout = 120

    def test_rotationWithRunningServer(self):
        """etc/gateway.logrotate rotates a running server's log files; after its SIGUSR1 the server writes new ones."""
        logrotate = shutil.which("logrotate")
        if logrotate is None:
            raise unittest.SkipTest("logrotate is not installed (make tools installs it as root)")
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        dataRoot = os.path.join(folder, "data")
        makeDataRoot(dataRoot)
        cert, key = testCertificate()
        port = freePort()
        path = os.path.join(folder, "gateway.ini")
        logPath = os.path.join(folder, "gateway.log")
        writeConfig(path, dataRoot, cert, key, ["tcp:%d:interface=127.0.0.1" % (port,)], "log_file = %s" % logPath)
        child = subprocess.Popen(
            [TWISTD, "--nodaemon", "--pidfile=", "--logfile", os.path.join(folder, "twistd.log"),
             "gateway", "--config", path],
            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

        def stop():
            if child.poll() is None:
                child.terminate()
                child.wait(30)

        self.addCleanup(stop)

        def waitFor(predicate, what):
            deadline = time.monotonic() + 30
            while not predicate():
                if child.poll() is not None or time.monotonic() > deadline:
                    self.fail("waiting for " + what)
                time.sleep(0.05)

        def logHas(text, name):
            try:
                with open(name) as f:
                    return text in f.read()
            except FileNotFoundError:
                return False

        def login():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    f = s.makefile("rb")
                    f.readline()
                    s.sendall(b'a LOGIN demo@example.test "%s"\r\nb LOGOUT\r\n' % (PASSWORD.encode(),))
                    f.read()
                return True
            except OSError:
                return False

        waitFor(login, "a login")
        waitFor(lambda: logHas("authentication succeeded", logPath), "the login in the log file")
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        with open(os.path.join(root, "etc", "gateway.logrotate")) as f:
            conf = f.read()
        user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
        conf = (conf.replace("/var/log/gateway", folder).replace("gateway gateway", "%s %s" % (user, group))
                .replace("systemctl kill --signal=USR1 --kill-whom=main gateway.service", "kill -USR1 %d" % child.pid))
        confPath = os.path.join(folder, "logrotate.conf")
        with open(confPath, "w") as f:
            f.write(conf)
        os.chmod(confPath, 0o644)
        result = subprocess.run([logrotate, "--force", "--state", os.path.join(folder, "state"), confPath],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        waitFor(lambda: logHas("log files opened again", logPath), "the server's answer to logrotate's SIGUSR1")
        child.send_signal(signal.SIGHUP)
        waitFor(lambda: logHas("reload: configuration", logPath), "the reload in the new log file")
        self.assertFalse(logHas("reload: configuration", logPath + ".1"))
        self.assertTrue(logHas("authentication succeeded", logPath + ".1"))


class SystemdUnitTests(unittest.TestCase):
    def test_unitVerifies(self):
        """etc/gateway.service passes systemd-analyze verify without a warning (with /opt/gateway as this tree)."""
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            raise unittest.SkipTest("systemd-analyze is not installed (make tools installs systemd as root)")
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        with open(os.path.join(root, "etc", "gateway.service")) as f:
            unit = f.read()
        self.assertIn("ExecReload=/bin/kill -HUP $MAINPID", unit)
        self.assertIn("LimitNOFILE=", unit)
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        path = os.path.join(folder, "gateway.service")
        with open(path, "w") as f:
            f.write(unit.replace("/opt/gateway", root))
        result = subprocess.run([analyze, "verify", path], capture_output=True, text=True, timeout=60)
        self.assertEqual((result.returncode, result.stderr, result.stdout), (0, "", ""))


def freePrivilegedPort():
    for port in random.sample(range(700, 1000), 300):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise unittest.SkipTest("no free port below 1024")


class PrivilegeTests(unittest.TestCase):
    timeout = 120

    def test_uidAfterBinding(self):
        """twistd --uid/--gid binds a port below 1024 as root, then serves as the unprivileged user."""
        if os.getuid() != 0:
            raise unittest.SkipTest("binding a port below 1024 needs root")
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            raise unittest.SkipTest("no user nobody")
        # Outside the test's own folder, whose parents the user cannot enter.
        folder = tempfile.mkdtemp(prefix="gateway-test-uid-")
        self.addCleanup(shutil.rmtree, folder, True)
        os.chmod(folder, 0o755)
        dataRoot = os.path.join(folder, "data")
        makeDataRoot(dataRoot)
        for base, dirs, files in os.walk(dataRoot):
            for name in [base] + [os.path.join(base, n) for n in dirs + files]:
                os.chown(name, nobody.pw_uid, nobody.pw_gid)
        cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        makeSelfSigned(cert, key)
        port = freePrivilegedPort()
        path = os.path.join(folder, "gateway.ini")
        writeConfig(path, dataRoot, cert, key, ["tcp:%d:interface=127.0.0.1" % (port,)])
        child = subprocess.Popen(
            [TWISTD, "--nodaemon", "--pidfile=", "--logfile", os.path.join(folder, "twistd.log"),
             "--uid", str(nobody.pw_uid), "--gid", str(nobody.pw_gid), "gateway", "--config", path],
            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

        def stop():
            if child.poll() is None:
                child.terminate()
                child.wait(30)

        self.addCleanup(stop)
        deadline = time.monotonic() + 30
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except OSError:
                if child.poll() is not None or time.monotonic() > deadline:
                    with open(os.path.join(folder, "twistd.log")) as f:
                        self.fail("twistd did not listen: " + f.read()[-2000:])
                time.sleep(0.05)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b'a LOGIN demo@example.test "%s"\r\nb SELECT INBOX\r\nc LOGOUT\r\n' % (PASSWORD.encode(),))
        answers = f.read()
        s.close()
        self.assertIn(b"a OK", answers)
        self.assertIn(b"b OK", answers)
        with open("/proc/%d/status" % (child.pid,)) as status:
            ids = dict(line.split(":", 1) for line in status.read().splitlines() if line.startswith(("Uid", "Gid")))
        self.assertEqual(ids["Uid"].split()[:2], [str(nobody.pw_uid)] * 2)
        self.assertEqual(ids["Gid"].split()[:2], [str(nobody.pw_gid)] * 2)
