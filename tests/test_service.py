# -*- test-case-name: tests.test_service -*-
"""
Wiring: configuration -> listeners; TLS settings; per-protocol log levels.
"""

import socket
import ssl

from twisted.internet import reactor, threads
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial import unittest

from gateway import logging as glog
from gateway.config import ConfigurationError
from gateway.service import FRONTENDS, makeService
from tests.support import makeDataRoot, makeTestConfig, testCertificate


def freePort():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def lmtpOnlyConfig(testCase, *listen):
    dataRoot = testCase.mktemp()
    makeDataRoot(dataRoot)
    overrides = {(name, "enabled"): False for name in FRONTENDS}
    overrides["lmtp", "enabled"] = True
    overrides["lmtp", "listen"] = listen
    return makeTestConfig(dataRoot, overrides)


def greeting(port, tlsContext=None):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        if tlsContext is not None:
            with tlsContext.wrap_socket(s, server_hostname="localhost") as t:
                return t.recv(100)
        return s.recv(100)


class WiringTests(unittest.TestCase):
    def startService(self, config):
        top = makeService(config, reactor)
        top.privilegedStartService()
        top.startService()
        self.addCleanup(top.stopService)
        return top

    def test_everyEndpointListens(self):
        """Each endpoint string of an enabled protocol gets a listener, clear and implicit TLS alike."""
        plain, secure = freePort(), freePort()
        config = lmtpOnlyConfig(
            self, "tcp:%d:interface=127.0.0.1" % plain, "ssl:%d:interface=127.0.0.1" % secure
        )
        top = self.startService(config)
        self.assertEqual(len(list(top)), 2)
        client = ssl.create_default_context(cafile=testCertificate()[0])

        def connect():
            return greeting(plain), greeting(secure, client)

        def check(result):
            self.assertTrue(result[0].startswith(b"220 "))
            self.assertTrue(result[1].startswith(b"220 "))

        return threads.deferToThread(connect).addCallback(check)

    def test_tlsMinimumVersion(self):
        """The TLS context refuses SSLv3, TLS 1.0 and 1.1 (and 1.2 when the minimum is 1.3); TLS 1.2 works."""
        from OpenSSL import SSL

        from gateway.tlscontext import tlsOptions

        config = lmtpOnlyConfig(self, "tcp:0")
        options = tlsOptions(config).getContext().set_options(0)
        for flag in (SSL.OP_NO_SSLv3, SSL.OP_NO_TLSv1, SSL.OP_NO_TLSv1_1):
            self.assertTrue(options & flag)
        self.assertFalse(options & SSL.OP_NO_TLSv1_2)
        config._values["tls", "minimum_version"] = "1.3"
        self.assertTrue(tlsOptions(config).getContext().set_options(0) & SSL.OP_NO_TLSv1_2)

        secure = freePort()
        self.startService(lmtpOnlyConfig(self, "ssl:%d:interface=127.0.0.1" % secure))
        client = ssl.create_default_context(cafile=testCertificate()[0])
        client.maximum_version = ssl.TLSVersion.TLSv1_2

        def connect():
            with socket.create_connection(("127.0.0.1", secure), timeout=5) as s:
                with client.wrap_socket(s, server_hostname="localhost") as t:
                    return t.version(), t.recv(100)

        def check(result):
            self.assertEqual(result[0], "TLSv1.2")
            self.assertTrue(result[1].startswith(b"220 "))

        return threads.deferToThread(connect).addCallback(check)

    def test_disabledProtocolAbsent(self):
        """A protocol switched off gets no listener at all."""
        config = lmtpOnlyConfig(self, "tcp:0:interface=127.0.0.1")
        config._values["lmtp", "enabled"] = False
        self.assertEqual(list(makeService(config, reactor)), [])

    def test_portInUse(self):
        """A port in use stops start-up with the option and the problem named, before anything listens."""
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        self.addCleanup(busy.close)
        config = lmtpOnlyConfig(self, "tcp:%d:interface=127.0.0.1" % busy.getsockname()[1])
        e = self.assertRaises(ConfigurationError, makeService, config, reactor)
        self.assertIn("[lmtp] listen", str(e))
        self.assertIn("in use", str(e))

    def test_badEndpoints(self):
        """Malformed endpoint strings are configuration errors naming the option."""
        for description in ("tcp:notaport", "ssl:1:privateKey=/nonexistent.pem", "frob:1", "tcp:1:color=red"):
            config = lmtpOnlyConfig(self, description)
            e = self.assertRaises(ConfigurationError, makeService, config, reactor, checkPorts=False)
            self.assertIn("[lmtp] listen", str(e), description)

    def test_sslNeedsCertificate(self):
        """An ssl: listener without any certificate is refused at start-up."""
        config = lmtpOnlyConfig(self, "ssl:0:interface=127.0.0.1")
        config._values["tls", "certificate"] = self.mktemp()
        config._values["tls", "private_key"] = self.mktemp()
        e = self.assertRaises(ConfigurationError, makeService, config, reactor)
        self.assertIn("[tls] certificate", str(e))

    def test_missingDataRoot(self):
        """A data root that does not exist is a configuration error that says what to do."""
        config = lmtpOnlyConfig(self, "tcp:0")
        config._values["server", "data_root"] = self.mktemp()
        e = self.assertRaises(ConfigurationError, makeService, config, reactor)
        self.assertIn("[server] data_root", str(e))


class LogLevelTests(unittest.TestCase):
    def test_levelPerProtocol(self):
        """Events below a protocol's configured level are dropped; other protocols keep theirs."""
        config = lmtpOnlyConfig(self, "tcp:0")
        config._values["lmtp", "log_level"] = "warn"
        config._values["imap", "log_level"] = "debug"
        glog.configure(config)
        self.addCleanup(glog.configure, makeTestConfig(self.mktemp()))
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        glog.getLogger("lmtp").info("lmtp info")
        glog.getLogger("lmtp").warn("lmtp warn")
        glog.getLogger("imap").debug("imap debug")
        seen = [(e["log_namespace"], e["log_level"]) for e in events if e.get("log_namespace", "").startswith("gateway.")]
        self.assertEqual(seen, [("gateway.lmtp", LogLevel.warn), ("gateway.imap", LogLevel.debug)])


class FreeBusyWiringTests(unittest.TestCase):
    """
    One L{FreeBusyCache} per process, shared by HTTP free/busy and the
    published files, which a service keeps current when C{[http]} is on.
    """

    def httpConfig(self, enabled=True):
        config = lmtpOnlyConfig(self, "tcp:0:interface=127.0.0.1")
        config._values["http", "enabled"] = enabled
        config._values["http", "listen"] = ["tcp:0:interface=127.0.0.1"]
        config._values["http", "freebusy_weeks"] = 3
        return config

    def test_publishingChildWithHTTP(self):
        """With [http] on the top service has a free/busy files child using the shared cache and the weeks option."""
        from gateway.store.calendar import FreeBusyCache

        top = makeService(self.httpConfig(), reactor, checkPorts=False)
        timer = top.getServiceNamed("free/busy files")
        self.assertIsInstance(top.context.freeBusyCache, FreeBusyCache)
        sweep = timer.call[0]
        files = [cell.cell_contents for cell in sweep.__closure__ if hasattr(cell.cell_contents, "sweep")][0]
        self.assertIs(files.cache, top.context.freeBusyCache)
        self.assertEqual(files.weeks, 3)

    def test_noPublishingWithoutHTTP(self):
        """With [http] off there is no free/busy files service."""
        top = makeService(self.httpConfig(enabled=False), reactor, checkPorts=False)
        self.assertNotIn("free/busy files", [child.name for child in top])

    def test_sweepPublishesHeldAccounts(self):
        """A sweep writes the published files of the accounts the realm holds."""
        from gateway.store.calendar.publish import PUBLIC

        top = makeService(self.httpConfig(), reactor, checkPorts=False)
        account = top.context.realm.accountFor("demo@example.test")
        self.assertFalse(account.fileStore.resolve(PUBLIC).isfile())
        d = top.getServiceNamed("free/busy files").call[0]()
        d.addCallback(lambda _: self.assertTrue(account.fileStore.resolve(PUBLIC).isfile()))
        return d

    def test_httpUsesSharedCache(self):
        """The HTTP free/busy publisher computes with the service's shared cache."""
        from gateway.http.freebusy import FreeBusyPublisher

        top = makeService(self.httpConfig(), reactor, checkPorts=False)
        publisher = FreeBusyPublisher(top.context)
        generate = publisher.generator()
        cache = [cell.cell_contents for cell in generate.__closure__ if hasattr(cell.cell_contents, "generate")][0]
        self.assertIs(cache, top.context.freeBusyCache)

    def test_workerPublishes(self):
        """A worker process (gateway.worker) has its own free/busy files service over its shared cache."""
        from gateway.worker import makeWorkerService
        from gateway.workers import listenerKey

        config = self.httpConfig()
        config._values["lmtp", "enabled"] = False
        held = socket.socket()
        self.addCleanup(held.close)
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        key = listenerKey("http", config["http", "listen"][0])
        top = makeWorkerService(config, 1, {key: held.fileno()}, reactor)
        sweep = top.getServiceNamed("free/busy files").call[0]
        files = [cell.cell_contents for cell in sweep.__closure__ if hasattr(cell.cell_contents, "sweep")][0]
        self.assertIs(files.cache, top.context.freeBusyCache)
