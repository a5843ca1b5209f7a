"""
Tests for L{gateway.store.messagerows}: the rows of a selected mailbox's
messages kept in memory, answering as the index would.
"""

import gc
import os

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from gateway.store import index, messagerows
from gateway.store.mail import MailStore
from tests.support import traceStatements, twoStores

MESSAGE = b"From: a@example.test\r\nSubject: s\r\n\r\nbody %d\r\n"


def summary(infos):
    return [(i.uid, i.flags, i.modseq, i.size) for i in infos]


class KeptRowsTests(unittest.TestCase):
    """
    A mailbox with a listener (a session that has it selected) keeps the
    rows it read; what another store (another process) changes is seen.
    """

    def setUp(self):
        self.store, self.other = twoStores(self)
        self.inbox = self.store.getMailbox("INBOX")
        self.uids = [self.inbox.appendMessage(MESSAGE % (n,)) for n in range(5)]
        self.removeListener = self.inbox.addListener(lambda: None)
        self.addCleanup(self.removeListener)
        self.reads = []
        traceStatements(self, self.store, self.traced)

    def traced(self, statement):
        # Rows read for messages() or locatedMessages(), kept or not.
        if statement.startswith("SELECT uid, flags, internaldate, size, modseq") and "uid IN" in statement:
            self.reads.append(statement)

    def fromIndex(self, uids):
        """
        What the index says of C{uids}, read without the kept rows.
        """
        rows = self.inbox._select(messagerows.ROW_COLUMNS, uids)
        return [(r[0], index.decodeFlags(r[1]), r[4], r[3]) for r in rows]

    def test_readOnce(self):
        """
        A second read of unchanged messages asks the index nothing.
        """
        first = summary(self.inbox.messages(self.uids))
        self.assertEqual(len(self.reads), 1)
        self.assertEqual(summary(self.inbox.messages(self.uids)), first)
        infos, locations = self.inbox.locatedMessages(self.uids[1:3])
        self.assertEqual(summary(infos), first[1:3])
        self.assertEqual(len(self.reads), 1)
        with self.inbox.openMessage(self.uids[2], locations[self.uids[2]]) as f:
            self.assertIn(b"body 2", f.read())

    def test_ownChange(self):
        """
        After a flag change through the same store the changed message is
        read again, with its file's new name; the others are not.
        """
        self.inbox.messages(self.uids)
        self.inbox.setFlags([self.uids[1]], ["\\Seen"], "+")
        infos, locations = self.inbox.locatedMessages(self.uids)
        self.assertEqual([i.flags for i in infos][1], frozenset(["\\Seen"]))
        self.assertEqual(len(self.reads), 2)
        self.assertIn(str(self.uids[1]), self.reads[1])
        self.assertNotIn(str(self.uids[0]) + ",", self.reads[1])
        self.assertTrue(locations[self.uids[1]][2].endswith(":2,S"))
        with self.inbox.openMessage(self.uids[1], locations[self.uids[1]]) as f:
            self.assertIn(b"body 1", f.read())

    def test_changedElsewhere(self):
        """
        Another store's flag change and expunge are seen at the next read.
        """
        self.inbox.messages(self.uids)
        elsewhere = self.other.getMailbox("INBOX")
        elsewhere.setFlags([self.uids[0]], ["\\Flagged"], "+")
        elsewhere.setFlags([self.uids[3]], ["\\Deleted"], "+")
        elsewhere.expunge()
        infos = self.inbox.messages(self.uids)
        self.assertEqual(summary(infos), [(u, f, m, s) for u, f, m, s in self.fromIndex(self.uids)])
        self.assertNotIn(self.uids[3], [i.uid for i in infos])
        self.assertEqual(infos[0].flags, frozenset(["\\Flagged"]))

    def test_appendedElsewhere(self):
        """
        A message another store added is read when asked for.
        """
        self.inbox.messages(self.uids)
        uid = self.other.getMailbox("INBOX").appendMessage(MESSAGE % (9,))
        infos, locations = self.inbox.locatedMessages(self.uids + [uid])
        self.assertEqual(infos[-1].uid, uid)
        with self.inbox.openMessage(uid, locations[uid]) as f:
            self.assertIn(b"body 9", f.read())

    def test_movedWithFlagsUnchanged(self):
        """
        A file another program moved from C{new/} to C{cur/} keeps its
        flags, so its row keeps its modseq: the kept location is stale, and
        opening finds the file by its base name.
        """
        infos, locations = self.inbox.locatedMessages(self.uids)
        path, subdir, filename = locations[self.uids[4]][:3]
        self.assertEqual(subdir, "new")
        os.rename(os.path.join(path, "new", filename), os.path.join(path, "cur", filename + ":2,"))
        _infos, again = self.inbox.locatedMessages(self.uids)
        with self.inbox.openMessage(self.uids[4], again[self.uids[4]]) as f:
            self.assertIn(b"body 4", f.read())

    def test_keptOnlyWhileSelected(self):
        """
        Without listeners nothing is kept; the last listener's going drops
        what was.
        """
        self.inbox.messages(self.uids)
        self.assertEqual(len(self.inbox._messageRows), len(self.uids))
        self.removeListener()
        self.assertEqual(len(self.inbox._messageRows), 0)
        self.inbox.messages(self.uids)
        self.inbox.messages(self.uids)
        self.assertEqual(len(self.inbox._messageRows), 0)
        self.assertEqual(len(self.reads), 3)

    def test_largeReadGoesToTheIndex(self):
        """
        A read of more than L{messagerows.MessageRows.LIMIT} messages at once
        goes to the index as before, with the columns it needs, and keeps
        nothing.
        """
        self.patch(messagerows.MessageRows, "LIMIT", 3)
        infos = self.inbox.messages(self.uids, headers=False)
        self.assertEqual([i.uid for i in infos], self.uids)
        self.assertEqual([i.headers for i in infos], [None] * len(self.uids))
        self.assertTrue(self.reads[-1].startswith("SELECT uid, flags, internaldate, size, modseq FROM"))
        self.assertEqual(len(self.inbox._messageRows), 0)

    def test_mailboxLimit(self):
        """
        Past L{messagerows.MessageRows.LIMIT} rows kept for the mailbox, the
        rest are read each time and answered all the same.
        """
        self.patch(messagerows.MessageRows, "LIMIT", 3)
        self.inbox.messages(self.uids[:2])
        infos = self.inbox.messages(self.uids[2:])
        self.assertEqual([i.uid for i in infos], self.uids[2:])
        self.assertEqual(len(self.inbox._messageRows), 2)
        self.assertEqual(summary(self.inbox.messages(self.uids[2:])), summary(infos))
        self.assertEqual(len(self.reads), 3)

    def test_processBudget(self):
        """
        The process keeps at most L{messagerows.MessageRows.BUDGET} rows,
        and counts out what a mailbox lets go, or a mailbox object dropped
        with its rows.
        """
        start = messagerows.MessageRows.kept
        self.patch(messagerows.MessageRows, "BUDGET", start + 2)
        self.inbox.messages(self.uids[:2])
        self.assertEqual(messagerows.MessageRows.kept, start + 2)
        self.assertEqual([i.uid for i in self.inbox.messages(self.uids)], self.uids)
        self.assertEqual(len(self.inbox._messageRows), 2)
        self.removeListener()
        self.assertEqual(messagerows.MessageRows.kept, start)
        rows = messagerows.MessageRows()
        self.inbox.addListener(lambda: None)
        self.inbox._messageRows = rows
        self.inbox.messages(self.uids[:2])
        self.assertEqual(messagerows.MessageRows.kept, start + 2)
        self.inbox._messageRows = messagerows.MessageRows()
        del rows
        gc.collect()
        self.assertEqual(messagerows.MessageRows.kept, start)

    def test_droppedWholesale(self):
        """
        A mailbox deleted while it has children keeps its name, unselectable,
        and loses its messages at once (no C{expunged} rows): nothing kept
        is answered for it.
        """
        self.store.createMailbox("Box")
        self.store.createMailbox("Box/Child")
        box = self.store.getMailbox("Box")
        uids = [box.appendMessage(MESSAGE % (n,)) for n in range(3)]
        self.addCleanup(box.addListener(lambda: None))
        self.assertEqual(len(box.messages(uids)), 3)
        self.other.deleteMailbox("Box")
        self.assertEqual(box.messages(uids), [])

    def test_newUidValidity(self):
        """
        The kept rows are of one UIDVALIDITY.
        """
        self.inbox.messages(self.uids)
        rows = self.inbox._messageRows
        self.assertEqual(rows.version[0], self.inbox.uidValidity)
        rows.version = (rows.version[0] - 1, rows.version[1])
        self.inbox.messages(self.uids)
        self.assertEqual(len(self.reads), 2)
        self.assertEqual(rows.version[0], self.inbox.uidValidity)


class AnswersAsTheIndexTests(unittest.TestCase):
    """
    Whatever two stores do to a mailbox, the kept rows answer what the
    index says.
    """

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from(["append", "flag", "unflag", "expunge", "read"]),
                              st.booleans(), st.integers(0, 7)), max_size=30))
    def test_answersAsTheIndex(self, steps):
        path = self.mktemp()
        stores = [MailStore(path, useInotify=False), MailStore(path, useInotify=False)]
        try:
            inbox = stores[0].getMailbox("INBOX")
            remove = inbox.addListener(lambda: None)
            uids = [inbox.appendMessage(MESSAGE % (n,)) for n in range(3)]
            for action, here, n in steps:
                mailbox = stores[0 if here else 1].getMailbox("INBOX")
                if action == "append":
                    uids.append(mailbox.appendMessage(MESSAGE % (n,)))
                elif action in ("flag", "unflag"):
                    mailbox.setFlags([uids[n % len(uids)]], ["\\Seen", "$Kw%d" % (n,)],
                                     "+" if action == "flag" else "-")
                elif action == "expunge":
                    mailbox.setFlags([uids[n % len(uids)]], ["\\Deleted"], "+")
                    mailbox.expunge()
                wanted = uids[n % len(uids):]
                expected = inbox._select(messagerows.ROW_COLUMNS, wanted)
                infos, locations = inbox.locatedMessages(wanted)
                self.assertEqual([(i.uid, i.flags, i.modseq, i.size, i.headers) for i in infos],
                                 [(r[0], index.decodeFlags(r[1]), r[4], r[3], r[5]) for r in expected])
                self.assertEqual([locations[r[0]][1:] for r in expected], [tuple(r[6:]) for r in expected])
            remove()
        finally:
            for store in stores:
                store.close()
