"""
Tests for L{gateway.imap.view}: a session's sequence numbers.
"""

from twisted.trial import unittest

from gateway.imap.view import MailboxView


class FakeMailbox:
    def __init__(self, uids):
        self._uids = uids

    def highestModSeq(self):
        return 1

    def uids(self):
        return list(self._uids)


class SequenceNumberTests(unittest.TestCase):
    def test_sequenceNumbers(self):
        """
        Each known UID maps to its position (from 1); UIDs the view does not
        know are left out, wherever they fall.
        """
        view = MailboxView(FakeMailbox([3, 5, 9, 10, 40]), readOnly=True)
        self.assertEqual(view.sequenceNumbers([1, 3, 4, 9, 10, 41]), {3: 1, 9: 3, 10: 4})
        self.assertEqual(view.sequenceNumbers([40]), {40: 5})
        self.assertEqual(view.sequenceNumbers([]), {})
        for uid in (3, 5, 9, 10, 40):
            self.assertEqual(view.sequenceNumbers([uid])[uid], view.seqOf(uid))
