# -*- test-case-name: tests.test_durable_access -*-
"""
IMAP writes into another account's mailbox (the access layer,
L{gateway.store.access}) go through that account's index writer: the tagged
OK only once the change is committed there, and the reactor serves other
sessions meanwhile.
"""


from twisted.internet import reactor, task
from twisted.internet.defer import inlineCallbacks
from twisted.trial import unittest

from tests.test_durable import MESSAGE, DurableTestMixin, Session

OTHER = "other@example.test"


class SharedTargetTests(DurableTestMixin, unittest.TestCase):
    """
    APPEND, COPY and MOVE by demo into other's INBOX, shared with demo.
    """

    @inlineCallbacks
    def setUp(self):
        DurableTestMixin.setUp(self)
        yield self.appendSome(2)
        self.context.realm.accountFor(OTHER).access.setACL("INBOX", "demo@example.test", "lrswite")
        self.otherStore = self.context.realm.accountFor(OTHER).mailStore

    def otherUids(self):
        return self.otherStore.getMailbox("INBOX").uids()

    @inlineCallbacks
    def heldThenAnswered(self, session, command, tag):
        """
        Send C{command} while other's writer is held: no answer, and
        nothing in other's INBOX, while another session is served; once
        released it is answered.
        """
        release = self.blockWriter(self.otherStore)
        other = Session(self)
        session.protocol.dataReceived(command + b"\r\n")
        for _ in range(20):
            yield task.deferLater(reactor, 0.005, lambda: None)
        self.assertIn(b"n OK", other.send(b"n NOOP"))
        self.assertNotIn(tag + b" ", session.read())
        self.assertEqual(self.otherUids(), [])
        release.set()
        yield self.blocked
        out = yield self.waitFor(session, tag + b" OK")
        return out

    @inlineCallbacks
    def test_append(self):
        """APPEND into another account's mailbox is answered once that account's writer committed it."""
        session = Session(self)
        out = yield self.heldThenAnswered(
            session, b"a APPEND ~other/INBOX (\\Seen) {%d+}\r\n%s" % (len(MESSAGE), MESSAGE), b"a")
        self.assertRegex(out, rb"a OK \[APPENDUID \d+ 1\] APPEND completed")
        self.assertEqual(self.otherUids(), [1])

    @inlineCallbacks
    def test_multiappend(self):
        """A MULTIAPPEND into another account's mailbox: all messages in one write of its writer, then the OK."""
        session = Session(self)
        out = yield self.heldThenAnswered(
            session, b"a APPEND ~other/INBOX {%d+}\r\n%s {%d+}\r\n%s" % (len(MESSAGE), MESSAGE, len(MESSAGE), MESSAGE),
            b"a")
        self.assertRegex(out, rb"a OK \[APPENDUID \d+ 1:2\] APPEND completed")
        self.assertEqual(self.otherUids(), [1, 2])
        self.assertEqual(self.otherStore._writer.written, 2)  # the held write, and the two messages

    @inlineCallbacks
    def test_copy(self):
        """COPY into another account's mailbox is answered, with COPYUID, once that account's writer committed it."""
        session = yield self.selected()
        out = yield self.heldThenAnswered(session, b"a COPY 1:2 ~other/INBOX", b"a")
        self.assertRegex(out, rb"a OK \[COPYUID \d+ 1:2 1:2\] COPY completed")
        self.assertEqual(self.otherUids(), [1, 2])

    @inlineCallbacks
    def test_move(self):
        """MOVE into another account's mailbox: the copies committed there, the originals gone, then the OK."""
        session = yield self.selected()
        out = yield self.heldThenAnswered(session, b"a MOVE 1 ~other/INBOX", b"a")
        self.assertRegex(out, rb"^\* OK \[COPYUID \d+ 1 1\] Moved\r\n\* 1 EXPUNGE\r\n")
        self.assertEqual(self.otherUids(), [1])
        self.assertEqual(self.committed("SELECT uid FROM messages m JOIN mailboxes b ON b.id = m.mailbox"
                                        " WHERE b.name = 'INBOX'"), [(2,)])
