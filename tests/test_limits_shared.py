# -*- test-case-name: tests.test_limits_shared -*-
"""
Connection limits counted across worker processes
(L{gateway.admin.sharedcounts.SharedConnectionCounts}): two factories with
different worker numbers over one data root stand for two workers, and a
real second process for the shared memory.
"""

import os
import signal
import subprocess
import sys

from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from gateway.admin import sharedcounts
from gateway.admin.limits import MESSAGES, ConnectionPolicy, LimitedFactory
from gateway.admin.sharedcounts import SharedConnectionCounts, forgetWorker
from tests import test_limits


class SharedLimitTests(unittest.TestCase):
    """max_connections and max_connections_per_address over two workers."""

    def setUp(self):
        self.dataRoot = os.path.abspath(self.mktemp())
        self.clock = Clock()

    def worker(self, number, protocol="imap", **limits):
        factory = LimitedFactory(test_limits.RecorderFactory(), ConnectionPolicy(protocol, **limits), self.clock)
        factory.counts = SharedConnectionCounts(self.dataRoot, number, 2)
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
        """The connections of a worker that ended stop counting once the parent forgets it."""
        one, two = self.worker(1, maxConnections=1), self.worker(2, maxConnections=1)
        self.connect(one)
        _, transport = self.connect(two)
        self.assertTrue(transport.disconnecting)
        forgetWorker(self.dataRoot, 1)
        _, transport = self.connect(two)
        self.assertFalse(transport.disconnecting)

    def test_replacementStartsEmpty(self):
        """A worker started in a killed one's place (the parent did not forget it) empties its slot."""
        one = self.worker(1, maxConnections=2)
        self.connect(one)
        self.connect(one)
        self.assertEqual(self.worker(2).counts.open("imap"), 2)
        replacement = self.worker(1, maxConnections=2)
        self.assertEqual(replacement.counts.open("imap"), 0)
        self.assertEqual(self.worker(2).counts.open("imap"), 0)

    def test_fileUnusable(self):
        """A shared file that cannot be made: said once; each worker's limits count its own connections."""
        os.makedirs(self.dataRoot)
        with open(os.path.join(self.dataRoot, "run"), "w") as f:
            f.write("not a folder\n")
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        one, two = self.worker(1, maxConnections=1), self.worker(2, maxConnections=1)
        self.connect(one)
        _, transport = self.connect(one)
        self.assertEqual(transport.value(), MESSAGES["imap"]["total"])
        _, transport = self.connect(two)
        self.assertFalse(transport.disconnecting)
        errors = [e for e in events if e.get("log_format", "").startswith("connection counts:")]
        self.assertEqual([e["log_level"].name for e in errors], ["error", "error"])  # one a worker
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_noLimitNoFile(self):
        """Without a limit nothing is counted in the shared file."""
        one = self.worker(1)
        self.connect(one)
        self.assertFalse(os.path.exists(os.path.join(self.dataRoot, "run", sharedcounts.NAME)))

    def smallTables(self, capacity):
        self.patch(sharedcounts, "CAPACITY", capacity)
        self.patch(sharedcounts, "SLOT_SIZE", sharedcounts._HEADER.size + capacity * sharedcounts._ENTRY.size)

    def test_tableWrittenAnew(self):
        """Addresses come and go past what the table holds: it is written anew, and every count stays right."""
        self.smallTables(8)
        one, two = self.worker(1, maxPerAddress=2), self.worker(2, maxPerAddress=2)
        kept = [self.connect(one, "192.0.2.1")[0], self.connect(one, "192.0.2.2")[0]]
        for n in range(10, 40):
            p, _ = self.connect(one, "192.0.2.%d" % (n,))
            p.connectionLost(None)
        self.assertEqual(two.counts.open("imap"), 2)
        self.connect(two, "192.0.2.1")
        _, transport = self.connect(two, "192.0.2.1")
        self.assertEqual(transport.value(), MESSAGES["imap"]["address"])
        kept[0].connectionLost(None)
        self.assertEqual(two.counts.open("imap"), 2)
        _, transport = self.connect(two, "192.0.2.1")
        self.assertFalse(transport.disconnecting)

    def test_tableFull(self):
        """More addresses open than the table holds: said once; the total and the first addresses still count."""
        self.smallTables(8)
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        one, two = self.worker(1, maxPerAddress=1), self.worker(2, maxPerAddress=1)
        for n in range(1, 8):
            self.connect(one, "192.0.2.%d" % (n,))
        full = [e for e in events if "addresses open in this worker" in e.get("log_format", "")]
        self.assertEqual(len(full), 1)
        self.assertEqual(two.counts.open("imap"), 7)
        _, transport = self.connect(two, "192.0.2.1")
        self.assertEqual(transport.value(), MESSAGES["imap"]["address"])

    def test_slotBeingWritten(self):
        """A slot whose writer stopped in the middle of a write (odd sequence) counts as empty until forgotten."""
        one, two = self.worker(1, maxConnections=1), self.worker(2, maxConnections=1)
        self.connect(one)
        memory = one.counts._map()
        (sequence,) = sharedcounts._HEADER.unpack_from(memory, 0)
        sharedcounts._HEADER.pack_into(memory, 0, sequence + 1)
        self.assertEqual(two.counts.open("imap"), 0)
        sharedcounts._HEADER.pack_into(memory, 0, sequence + 2)
        self.assertEqual(two.counts.open("imap"), 1)


#: A second worker in its own process: counts three IMAP connections from
#: one address, says so, and waits to be killed.
_OTHER_WORKER = """
import sys
from gateway.admin.sharedcounts import SharedConnectionCounts
counts = SharedConnectionCounts(sys.argv[1], 2, 2)
for _ in range(3):
    assert counts.acquire("imap", "192.0.2.9", 0, 0) is None
print("counted", flush=True)
sys.stdin.read()
"""


class OtherProcessTests(unittest.TestCase):
    """The counts of a worker in another process, through the shared memory."""

    def test_otherProcess(self):
        """Another process's connections count against the limits here; once it is killed and forgotten, not."""
        dataRoot = os.path.abspath(self.mktemp())
        here = LimitedFactory(test_limits.RecorderFactory(), ConnectionPolicy("imap", maxPerAddress=4), Clock())
        here.counts = SharedConnectionCounts(dataRoot, 1, 2)
        self.addCleanup(here.counts.close)
        other = subprocess.Popen([sys.executable, "-c", _OTHER_WORKER, dataRoot], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, cwd=os.path.dirname(os.path.dirname(__file__)))
        self.addCleanup(other.wait)
        self.addCleanup(other.stdin.close)
        self.assertEqual(other.stdout.readline(), b"counted\n")
        self.assertEqual(here.counts.open("imap"), 3)
        test_limits.PolicyTests.connect(self, here, "192.0.2.9")
        _, transport = test_limits.PolicyTests.connect(self, here, "192.0.2.9")
        self.assertEqual(transport.value(), MESSAGES["imap"]["address"])
        other.send_signal(signal.SIGKILL)
        other.wait()
        self.assertEqual(here.counts.open("imap"), 4)  # still counted: the parent has not forgotten it
        forgetWorker(dataRoot, 2)
        self.assertEqual(here.counts.open("imap"), 1)
        _, transport = test_limits.PolicyTests.connect(self, here, "192.0.2.9")
        self.assertFalse(transport.disconnecting)


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
        for number in (1, 2):
            factory = makeFactory(context)
            factory.clock = Clock()
            factory.counts = SharedConnectionCounts(context.config.dataRoot(), number, 2)
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
        for number, factory in ((1, one), (2, two)):
            factory.counts = SharedConnectionCounts(context.config.dataRoot(), number, 2)
            self.addCleanup(factory.counts.close)
        account = context.realm.accountFor("demo@example.test")
        self.assertTrue(one.loggedIn(account))
        self.assertFalse(two.loggedIn(account))
        one.loggedOut(account)
        self.assertTrue(two.loggedIn(account))
