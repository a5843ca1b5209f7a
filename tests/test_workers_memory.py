# -*- test-case-name: tests.test_workers_memory -*-
"""
What an idle IMAP session keeps in memory (issue 14: 10,000 idle TLS
sessions under 20 kB each): its Python objects, with StringTransport.
"""

import platform
import sys

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from gateway.imap.protocol import IMAPServer
from gateway.imap.server import makeFactory
from tests.support import PASSWORD, makeTestContext


class IdleSessionMemoryTests(unittest.TestCase):
    """An idle session's own objects."""

    def setUp(self):
        if platform.python_implementation() != "CPython":
            raise unittest.SkipTest("CPython's dictionaries are measured")

        class Session(IMAPServer):
            """A class of its own: its shared dictionary keys start empty."""

        self.factory = makeFactory(makeTestContext(self, reactor=Clock()))
        self.factory.protocol = Session

    def connect(self):
        session = self.factory.buildProtocol(None)
        transport = StringTransport(hostAddress=IPv4Address("TCP", "127.0.0.1", 143),
                                    peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        session.makeConnection(transport)
        return session, transport

    def test_idleSessionSharesDictionaryKeys(self):
        """After sessions took the rarer paths, one in IDLE keeps a small shared-key attribute dictionary."""
        other, transport = self.connect()
        other.dataReceived(b"a LOGIN {17}\r\n")
        other.dataReceived(b"demo@example.test {%d}\r\n%s\r\n" % (len(PASSWORD), PASSWORD.encode()))
        other.dataReceived(b"b " + b"x" * 9000 + b"\r\n")
        other.dataReceived(b"c SELECT INBOX\r\nd IDLE\r\nDONE\r\ne LOGOUT\r\n")
        self.assertIn(b"e OK", transport.value())
        other.connectionLost(None)
        session, transport = self.connect()
        session.dataReceived(b'a LOGIN demo@example.test "%s"\r\nb SELECT INBOX\r\nc IDLE\r\n' % (PASSWORD.encode(),))
        self.assertTrue(transport.value().endswith(b"+ idling\r\n"), transport.value()[-200:])
        # 296 bytes while CPython shares the keys of the class's instances
        # (fewer than 30 of them); 1,584 once it cannot.
        self.assertLess(sys.getsizeof(vars(session)), 1000, sorted(vars(session)))

    def test_emptySetsShared(self):
        """The empty sets of an idle session's mailbox view are one object, not one per session."""
        views = []
        for _ in range(2):
            session, transport = self.connect()
            session.dataReceived(b'a LOGIN demo@example.test "%s"\r\nb SELECT INBOX\r\n' % (PASSWORD.encode(),))
            views.append(session.view)
        first, second = views
        for name in ("recent", "saved", "_pendingExpunge", "_own"):
            self.assertIs(getattr(first, name), getattr(second, name), name)
