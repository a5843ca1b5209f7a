# -*- test-case-name: tests.test_durable_xprops -*-
"""
XMAPI's C{STORE ... XPROPS} through the owner's index writer: the message
properties are written off the reactor thread, the tagged OK comes once
they are committed, and other sessions are served meanwhile (issue 14
item 2).
"""

import threading

from twisted.internet import reactor, task
from twisted.internet.defer import inlineCallbacks
from twisted.trial import unittest

from gateway.store import properties
from tests.test_durable import DurableTestMixin, Session
from tests.test_durable_metadata import MetadataHeldTestMixin

CUSTOM = b"PS_PUBLIC_STRINGS/name=Level/0x0003"
CUSTOM_STRING = b"PS_PUBLIC_STRINGS/name=Note/0x001F"


class StoreXpropsTests(MetadataHeldTestMixin, unittest.TestCase):
    """
    STORE XPROPS while the index writer is held.
    """

    @inlineCallbacks
    def setUp(self):
        MetadataHeldTestMixin.setUp(self)
        self.written = []
        original = properties.setProperties

        def setProperties(mailbox, uids, changes, unchangedSince=None):
            self.written.append(threading.current_thread())
            return original(mailbox, uids, changes, unchangedSince)
        self.patch(properties, "setProperties", setProperties)
        yield self.appendSome(1)
        self.selecting = yield self.selected()

    @inlineCallbacks
    def test_heldThenAnswered(self):
        """STORE XPROPS waits for the writer (other sessions are served meanwhile), then answers from its commit."""
        other = Session(self)
        release = self.blockWriter(self.store)
        self.selecting.protocol.dataReceived(b"x STORE 1 XPROPS (" + CUSTOM + b" 7)\r\n")
        for _ in range(10):
            yield task.deferLater(reactor, 0.005, lambda: None)
        self.assertIn(b"n OK", other.send(b"n NOOP"))
        self.assertNotIn(b"x ", self.selecting.read())
        self.assertEqual(self.committed("SELECT count(*) FROM msgprops"), [(0,)])
        release.set()
        yield self.blocked
        out = yield self.waitFor(self.selecting, b"x ")
        self.assertIn(b"x OK", out)
        self.assertIn(b"* 1 FETCH (XPROPS (", out)
        self.assertEqual(self.committed("SELECT value FROM msgprops"), [("7",)])
        self.assertEqual([thread is threading.main_thread() for thread in self.written], [False])

    @inlineCallbacks
    def test_limit(self):
        """A value over the size limit is refused with NO [LIMIT] from the writer's answer; nothing is stored."""
        big = b"x" * (properties.MAX_VALUE_SIZE + 10)
        self.selecting.protocol.dataReceived(
            b"x STORE 1 XPROPS (" + CUSTOM_STRING + b" {%d+}\r\n%s)\r\n" % (len(big), big))
        out = yield self.waitFor(self.selecting, b"x ")
        self.assertIn(b"x NO [LIMIT]", out)
        self.assertEqual(self.committed("SELECT count(*) FROM msgprops"), [(0,)])


class LaterTests(DurableTestMixin, unittest.TestCase):
    """
    L{properties.setPropertiesLater} without a writer.
    """

    def test_withoutWriter(self):
        """A mailbox whose store has no writer has its properties set at once."""
        class Mailbox:
            pass
        calls = []
        self.patch(properties, "setProperties", lambda *args: calls.append(args) or ([1], []))
        mailbox = Mailbox()
        self.assertEqual(self.successResultOf(properties.setPropertiesLater(mailbox, [1], {"k": None})), ([1], []))
        self.assertEqual(calls, [(mailbox, [1], {"k": None}, None)])
