# -*- test-case-name: tests.test_durable_multiappend -*-
"""
The take-back of a failed MULTIAPPEND (RFC 3502) into a mailbox that cannot
store all messages in one write: the messages stored before the failure are
removed by the index writer, and the tagged NO comes once they are gone.
"""

from twisted.internet.defer import inlineCallbacks
from twisted.trial import unittest

from gateway.errors import StoreError
from gateway.store.mailbox import Mailbox
from tests.test_durable import MESSAGE, DurableTestMixin, Session


class TakeBackTests(DurableTestMixin, unittest.TestCase):
    @inlineCallbacks
    def test_takenBackByTheWriter(self):
        """The first message of a MULTIAPPEND whose second fails is expunged in the writer thread before the NO."""
        self.patch(Mailbox, "appendMessagesLater", None)  # one message at a time
        commits = []
        commitMessage = Mailbox.commitMessage

        def failSecond(mailbox, prepared, flags=()):
            commits.append(prepared)
            if len(commits) == 2:
                prepared.discard()
                raise StoreError("refused")
            return commitMessage(mailbox, prepared, flags)
        self.patch(Mailbox, "commitMessage", failSecond)
        expunges = []
        expunge = Mailbox.expunge

        def recordExpunge(mailbox, uids=None):
            expunges.append(self.store._writer.inWriter())
            return expunge(mailbox, uids)
        self.patch(Mailbox, "expunge", recordExpunge)
        session = Session(self)
        session.protocol.dataReceived(b"a APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s\r\n"
                                      % (len(MESSAGE), MESSAGE, len(MESSAGE), MESSAGE))
        out = yield self.waitFor(session, b"a NO")
        self.assertIn(b"a NO [SERVERBUG] refused", out)
        self.assertEqual(expunges, [True])
        self.assertEqual(self.committed("SELECT COUNT(*) FROM messages"), [(0,)])
        self.assertEqual(self.committed("SELECT uid FROM expunged"), [(1,)])
