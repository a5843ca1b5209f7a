# -*- test-case-name: tests.test_limits_shared -*-
"""
Connection limits counted across worker processes
(L{gateway.admin.limits.SharedConnectionCounts}): two factories with
different process ids over one data root stand for two workers.
"""

import os

from twisted.internet.task import Clock
from twisted.trial import unittest

from gateway.admin.limits import MESSAGES, ConnectionPolicy, LimitedFactory, SharedConnectionCounts
from tests import test_limits


class SharedLimitTests(unittest.TestCase):
    """max_connections and max_connections_per_address over two workers."""

    def setUp(self):
        self.dataRoot = os.path.abspath(self.mktemp())
        self.clock = Clock()

    def worker(self, pid, protocol="imap", **limits):
        factory = LimitedFactory(test_limits.RecorderFactory(), ConnectionPolicy(protocol, **limits), self.clock)
        factory.counts = SharedConnectionCounts(self.dataRoot, pid=pid)
        self.addCleanup(factory.counts.close)
        return factory

    connect = test_limits.PolicyTests.connect

    def test_perAddressAcrossWorkers(self):
        """Connections from one address in both workers count together against max_connections_per_address."""
        one, two = self.worker(1, maxPerAddress=2), self.worker(2, maxPerAddress=2)
        first, _ = self.connect(one)
        self.connect(two)
        refused, transport = self.connect(one)
        self.assertEqual(transport.value(), MESSAGES["imap"]["address"])
        self.assertIsNone(refused.wrappedProtocol)
        _, transport = self.connect(two, "192.0.2.2")
        self.assertFalse(transport.disconnecting)
        first.connectionLost(None)
        _, transport = self.connect(two)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(one.counts.open("imap"), 3)

    def test_totalAcrossWorkers(self):
        """max_connections is the server's: the second worker refuses once the first has them all."""
        one, two = self.worker(1, "lmtp", maxConnections=2), self.worker(2, "lmtp", maxConnections=2)
        self.connect(one, "192.0.2.1")
        self.connect(one, "192.0.2.2")
        _, transport = self.connect(two, "192.0.2.3")
        self.assertEqual(transport.value(), MESSAGES["lmtp"]["total"])
        self.assertEqual(two.refused, {"total": 1})

    def test_otherProtocolsApart(self):
        """Each protocol has its own count."""
        imap, pop3 = self.worker(1, "imap", maxConnections=1), self.worker(2, "pop3", maxConnections=1)
        self.connect(imap)
        _, transport = self.connect(pop3)
        self.assertFalse(transport.disconnecting)

    def test_deadWorkerForgotten(self):
        """The connections of a worker that ended stop counting once the parent forgets its process."""
        one, two = self.worker(1, maxConnections=1), self.worker(2, maxConnections=1)
        self.connect(one)
        _, transport = self.connect(two)
        self.assertTrue(transport.disconnecting)
        SharedConnectionCounts(self.dataRoot, pid=0).forgetProcess(1)
        _, transport = self.connect(two)
        self.assertFalse(transport.disconnecting)

    def test_noLimitNoDatabase(self):
        """Without a limit nothing is counted in the database."""
        one = self.worker(1)
        self.connect(one)
        self.assertFalse(os.path.exists(os.path.join(self.dataRoot, "run", SharedConnectionCounts.NAME)))


class SharedFTPLimitTests(unittest.TestCase):
    """FTP, whose factory enforces its own limits, counts with the same shared counts."""

    def test_ftpPerAddressAcrossWorkers(self):
        """[ftp] max_connections_per_address counts sessions in both workers; a closed one frees its place."""
        from twisted.internet.address import IPv4Address
        from twisted.internet.testing import StringTransport

        from gateway.ftp.server import FTPSession, makeFactory
        from tests.support import makeTestContext

        context = makeTestContext(self, overrides={("ftp", "max_connections_per_address"): 2})
        factories = []
        for pid in (1, 2):
            factory = makeFactory(context)
            factory.clock = Clock()
            factory.counts = SharedConnectionCounts(context.config.dataRoot(), pid=pid)
            self.addCleanup(factory.counts.close)
            factories.append(factory)

        def connect(factory):
            session = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 40000))
            session.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.7", 40000)))
            return session

        first = connect(factories[0])
        self.assertIsInstance(connect(factories[1]), FTPSession)
        refused = connect(factories[0])
        self.assertNotIsInstance(refused, FTPSession)
        self.assertTrue(refused.transport.value().startswith(b"421 Too many connections from your address"))
        first.connectionLost(None)
        self.assertIsInstance(connect(factories[0]), FTPSession)

    def test_ftpPerAccountAcrossWorkers(self):
        """[ftp] max_connections_per_account counts the account's sessions in both workers."""
        from gateway.ftp.server import makeFactory
        from tests.support import makeTestContext

        context = makeTestContext(self, overrides={("ftp", "max_connections_per_account"): 1})
        one, two = makeFactory(context), makeFactory(context)
        for pid, factory in ((1, one), (2, two)):
            factory.counts = SharedConnectionCounts(context.config.dataRoot(), pid=pid)
            self.addCleanup(factory.counts.close)
        account = context.realm.accountFor("demo@example.test")
        self.assertTrue(one.loggedIn(account))
        self.assertFalse(two.loggedIn(account))
        one.loggedOut(account)
        self.assertTrue(two.loggedIn(account))
