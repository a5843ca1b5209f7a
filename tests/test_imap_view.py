"""
Tests for L{gateway.imap.view}: a session's sequence numbers and the updates
it is sent.
"""

from twisted.internet.task import Clock
from twisted.trial import unittest

from gateway.imap.view import MailboxView
from gateway.store.mail import MailStore

MESSAGE = b"Subject: hello\r\n\r\nbody\r\n"


class FakeSession:
    def __init__(self):
        self.enabled = set()
        self.lines = []

    def sendUntagged(self, text):
        self.lines.append(text)

    def take(self):
        lines, self.lines = self.lines, []
        return lines


class ViewTests(unittest.TestCase):
    def setUp(self):
        self.store = MailStore(self.mktemp(), reactor=Clock(), useInotify=False)
        self.addCleanup(self.store.close)
        self.mailbox = self.store.getMailbox("INBOX")
        for _ in range(5):
            self.mailbox.appendMessage(MESSAGE)
        self.mailbox.claimRecent()  # an earlier session had them

    def view(self):
        view = MailboxView(self.mailbox, readOnly=False)
        self.addCleanup(view.close)
        return view

    def test_sequenceNumbers(self):
        """
        Each known UID maps to its position (from 1); UIDs the view does not
        know are left out, wherever they fall.
        """
        self.mailbox.setFlags([1, 2, 4], ["\\Deleted"], "+")
        self.mailbox.expunge()
        self.mailbox.appendMessage(MESSAGE)
        view = self.view()
        self.assertEqual(view.uids, (3, 5, 6))
        self.assertEqual(view.sequenceNumbers([1, 3, 4, 6, 7]), {3: 1, 6: 3})
        self.assertEqual(view.sequenceNumbers([5]), {5: 2})
        self.assertEqual(view.sequenceNumbers([]), {})
        for uid in view.uids:
            self.assertEqual(view.sequenceNumbers([uid])[uid], view.seqOf(uid))

    def test_sharedWhileInStep(self):
        """
        Sessions in step with the mailbox hold one shared UID tuple, also
        after new messages arrive.
        """
        first, second = self.view(), self.view()
        self.assertIs(first.uids, second.uids)
        uid = self.mailbox.appendMessage(MESSAGE)
        for view in (first, second):
            session = FakeSession()
            view.sendUpdates(session)
            self.assertEqual(session.take()[0], b"6 EXISTS")
        self.assertEqual(first.uids[-1], uid)
        self.assertIs(first.uids, second.uids)

    def test_heldBackExpunge(self):
        """
        While an expunge is held back the session keeps its own numbering
        (flag changes numbered by it); once the EXPUNGEs are sent, flag
        changes and new messages of the same update are numbered as after
        them, and the session shares the mailbox's tuple again.
        """
        view, other = self.view(), self.view()
        self.mailbox.setFlags([2, 3], ["\\Deleted"], "+")
        self.mailbox.expunge()
        self.mailbox.setFlags([4], ["\\Seen"], "+")
        session = FakeSession()
        view.sendUpdates(session, expunge=False)
        self.assertEqual(session.take(), [b"4 FETCH (FLAGS (\\Seen))"])
        self.assertEqual(view.uids, (1, 2, 3, 4, 5))
        self.mailbox.setFlags([5], ["\\Flagged"], "+")
        new = self.mailbox.appendMessage(MESSAGE)
        view.sendUpdates(session)
        self.assertEqual(session.take(), [b"3 EXPUNGE", b"2 EXPUNGE", b"3 FETCH (FLAGS (\\Flagged))",
                                          b"4 EXISTS", b"1 RECENT"])
        self.assertEqual(view.uids, (1, 4, 5, new))
        other.sendUpdates(FakeSession())
        self.assertIs(view.uids, other.uids)
