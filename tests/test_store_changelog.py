"""
Tests for L{gateway.store.changelog}: a mailbox's latest changes kept in
memory, answering as the index would.
"""

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from gateway.store.changelog import ChangeLog
from gateway.store.mail import MailStore
from gateway.store.records import MessageInfo
from tests.support import traceStatements, twoStores

MESSAGE = b"From: a@example.test\r\nSubject: s\r\n\r\nbody\r\n"


def info(uid, modseq, flags=""):
    return MessageInfo(uid, flags, 0, 10, modseq)


class FakeIndex:
    """
    What the index keeps of a mailbox: each message's latest change.
    """

    def __init__(self):
        self.highest = 1
        self.rows = {}
        self.expunged = {}
        self.reads = 0

    def change(self, uid):
        self.highest += 1
        self.rows[uid] = info(uid, self.highest)

    def expunge(self, uid):
        self.highest += 1
        del self.rows[uid]
        self.expunged[uid] = self.highest

    def readAfter(self, modseq):
        self.reads += 1
        return (self.highest,
                [(uid, m) for uid, m in self.expunged.items() if m > modseq],
                sorted((i for i in self.rows.values() if i.modseq > modseq), key=lambda i: i.uid))

    def answer(self, modseq):
        highest, expunged, changed = self.readAfter(modseq)
        return sorted(uid for uid, _ in expunged), [(i.uid, i.modseq) for i in changed], highest


def plain(result):
    if result is None:
        return None
    expunged, changed, highest = result
    return expunged, [(i.uid, i.modseq) for i in changed], highest


class ChangeLogTests(unittest.TestCase):
    def setUp(self):
        self.index = FakeIndex()
        self.log = ChangeLog()

    def since(self, modseq, validity=1):
        return plain(self.log.since(modseq, validity, self.index.highest, self.index.readAfter))

    def test_firstQuestionGoesToTheIndex(self):
        """
        A new log knows nothing below the state it starts at.
        """
        self.index.change(1)
        self.assertIsNone(self.since(1))
        self.assertEqual(self.since(2), ([], [], 2))

    def test_oneReadForEverySession(self):
        """
        After a commit, sessions at several modseqs are answered from one
        read of the index.
        """
        self.since(1)
        self.index.change(1)
        self.index.change(2)
        self.index.expunge(1)
        reads = self.index.reads
        for modseq in (1, 2, 3, 4):
            self.assertEqual(self.since(modseq), self.index.answer(modseq))
        self.assertEqual(self.index.reads - reads, 1 + 4)  # one for the log, four for the check

    def test_supersededChanges(self):
        """
        A message changed twice is reported once, with its latest change;
        one expunged after a change is reported expunged only.
        """
        self.since(1)
        self.index.change(5)
        self.index.change(6)
        self.index.change(5)
        self.index.expunge(6)
        self.assertEqual(self.since(1), ([6], [(5, 4)], 5))
        self.assertEqual(self.since(4), ([6], [], 5))

    def test_newUidValidity(self):
        """
        Another UIDVALIDITY, or modseqs gone back (a rebuilt index), starts
        the log again and leaves the question to the index.
        """
        self.since(1)
        self.index.change(1)
        self.assertIsNotNone(self.since(1))
        self.assertIsNone(self.since(1, validity=2))
        self.index.highest = 1
        self.assertIsNone(self.since(1, validity=2))

    def test_trimmed(self):
        """
        Past L{ChangeLog.LIMIT} changes the oldest half is forgotten: a
        session that far behind is answered by the index; the others still
        from the log.
        """
        self.patch(ChangeLog, "LIMIT", 8)
        self.since(1)
        for uid in range(1, 11):
            self.index.change(uid)
        self.since(1)
        self.assertIsNone(self.since(1))
        self.assertGreater(self.log.start, 1)
        self.assertEqual(self.since(self.log.start), self.index.answer(self.log.start))

    def test_sessionAheadOfTheLog(self):
        """
        A modseq above what the log has read is left to the index.
        """
        self.since(1)
        self.assertIsNone(self.log.since(5, 1, 1, self.index.readAfter))

    @settings(max_examples=200, deadline=None, derandomize=True, database=None)
    @given(st.lists(st.tuples(st.sampled_from(["change", "expunge", "ask"]), st.integers(1, 12)), max_size=60),
           st.integers(2, 16))
    def test_answersAsTheIndex(self, steps, limit):
        """
        Whatever the changes and the questions, every answer the log gives
        is the index's.
        """
        self.patch(ChangeLog, "LIMIT", limit)
        index, log = FakeIndex(), ChangeLog()
        for action, n in steps:
            if action == "change" and n not in index.expunged:
                index.change(n)
            elif action == "expunge" and n in index.rows:
                index.expunge(n)
            else:
                modseq = max(1, index.highest - n)
                answer = plain(log.since(modseq, 1, index.highest, index.readAfter))
                if answer is not None:
                    self.assertEqual(answer, index.answer(modseq))


class MailboxChangesSinceTests(unittest.TestCase):
    """
    L{Mailbox.changesSince} through the log gives what the index says.
    """

    def setUp(self):
        self.store = MailStore(self.mktemp(), useInotify=False)
        self.addCleanup(self.store.close)
        self.inbox = self.store.getMailbox("INBOX")

    def fromIndex(self, modseq):
        highest, expunged, changed = self.inbox._changesAfter(modseq)
        return sorted({uid for uid, _ in expunged}), [(i.uid, i.flags, i.modseq) for i in changed], highest

    def fromMailbox(self, modseq):
        expunged, changed, highest = self.inbox.changesSince(modseq)
        return expunged, [(i.uid, i.flags, i.modseq) for i in changed], highest

    def test_appendFlagExpunge(self):
        start = self.inbox.highestModSeq()
        self.inbox.changesSince(start)
        uids = [self.inbox.appendMessage(MESSAGE) for _ in range(4)]
        self.inbox.setFlags(uids[:2], ["\\Seen"], "+")
        self.inbox.setFlags([uids[3]], ["\\Deleted"], "+")
        self.inbox.expunge()
        highest = self.inbox.highestModSeq()
        for modseq in range(start, highest + 1):
            self.assertEqual(self.fromMailbox(modseq), self.fromIndex(modseq))
        expunged, changed, _ = self.fromMailbox(start)
        self.assertEqual(expunged, [uids[3]])
        self.assertEqual([c[0] for c in changed], uids[:3])
        self.assertIsNotNone(self.inbox._changeLog.end)
        self.assertEqual(self.inbox._changeLog.end, highest)


class UidStateFromTheLogTests(unittest.TestCase):
    """
    L{Mailbox.uidState} brings its UIDs up to date from the change log when
    it can, and gives what the index says.
    """

    def setUp(self):
        self.store, self.other = twoStores(self)
        self.inbox = self.store.getMailbox("INBOX")
        self.statements = []
        traceStatements(self, self.store, self.statements.append)

    def fromIndex(self, mailbox):
        return tuple(row[0] for row in self.store._ownConn.execute(
            "SELECT uid FROM messages WHERE mailbox = ? ORDER BY uid", (mailbox._id,)))

    def test_noStatementOfItsOwn(self):
        """
        After the log read the commits (as every session's changesSince
        makes it), the UIDs take no statement: no expunged UIDs, new UIDs
        or count read again.
        """
        uids = [self.inbox.appendMessage(MESSAGE) for _ in range(3)]
        self.inbox.changesSince(self.inbox.highestModSeq())
        self.inbox.uidState()
        elsewhere = self.other.getMailbox("INBOX")
        added = elsewhere.appendMessage(MESSAGE)
        elsewhere.setFlags([uids[1]], ["\\Deleted"], "+")
        elsewhere.expunge()
        self.inbox.changesSince(self.inbox.highestModSeq() - 3)
        del self.statements[:]
        _modseq, _uidNext, now = self.inbox.uidState()
        self.assertEqual([s for s in self.statements if "uid" in s], [])
        self.assertEqual(now, (uids[0], uids[2], added))
        self.assertEqual(now, self.fromIndex(self.inbox))

    def test_droppedWholesale(self):
        """
        A mailbox deleted while it has children loses its messages with no
        C{expunged} rows: the log cannot tell, and the index is read.
        """
        self.store.createMailbox("Box")
        self.store.createMailbox("Box/Child")
        box = self.store.getMailbox("Box")
        for _ in range(3):
            box.appendMessage(MESSAGE)
        box.changesSince(box.highestModSeq())
        self.assertEqual(len(box.uidState()[2]), 3)
        self.other.deleteMailbox("Box")
        box.changesSince(box.highestModSeq() - 1)
        self.assertEqual(box.uidState()[2], ())

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from(["append", "expunge", "flag", "log"]), st.booleans(),
                              st.integers(0, 7)), max_size=30))
    def test_answersAsTheIndex(self, steps):
        path = self.mktemp()
        stores = [MailStore(path, useInotify=False), MailStore(path, useInotify=False)]
        try:
            inbox = stores[0].getMailbox("INBOX")
            uids = [inbox.appendMessage(MESSAGE) for _ in range(3)]
            inbox.uidState()
            for action, here, n in steps:
                mailbox = stores[0 if here else 1].getMailbox("INBOX")
                if action == "append":
                    uids.append(mailbox.appendMessage(MESSAGE))
                elif action == "flag" and uids:
                    mailbox.setFlags([uids[n % len(uids)]], ["\\Seen"], "+")
                elif action == "expunge" and uids:
                    mailbox.setFlags([uids[n % len(uids)]], ["\\Deleted"], "+")
                    mailbox.expunge()
                elif action == "log":
                    inbox.changesSince(max(1, inbox.highestModSeq() - n))
                expected = tuple(row[0] for row in stores[0]._ownConn.execute(
                    "SELECT uid FROM messages WHERE mailbox = ? ORDER BY uid", (inbox._id,)))
                self.assertEqual(inbox.uidState()[2], expected)
        finally:
            for store in stores:
                store.close()
