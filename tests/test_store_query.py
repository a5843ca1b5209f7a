"""
Tests for L{gateway.store.query} through L{gateway.store.mailbox.Mailbox.search},
and for the split of IMAP SEARCH programs between the index and matching in
Python (L{gateway.imap.search.SearchProgram.term} and C{rest}).
"""

import datetime

from twisted.trial import unittest

from gateway.imap.search import parseSearch
from gateway.store import query
from gateway.store.mail import MailStore

_DAY = datetime.datetime(2024, 3, 10, tzinfo=datetime.timezone.utc)

#: (flags, size padding, internal date) of the test messages.
_MESSAGES = [
    (["\\Seen"], 10, _DAY - datetime.timedelta(seconds=1)),
    ([], 200, _DAY),
    (["\\Seen", "\\Flagged", "$Work_Item"], 30, _DAY + datetime.timedelta(hours=23, minutes=59)),
    (["\\Deleted", "50%off"], 400, _DAY + datetime.timedelta(days=1)),
    (["\\Answered", "$label"], 5, _DAY + datetime.timedelta(days=3)),
    (["\\Draft", "\\Seen"], 1000, _DAY - datetime.timedelta(days=30)),
]


class SearchTests(unittest.TestCase):
    def setUp(self):
        self.store = MailStore(self.mktemp(), useInotify=False)
        self.addCleanup(self.store.close)
        self.mailbox = self.store.getMailbox("INBOX")
        self.sizes = {}
        for n, (flags, padding, when) in enumerate(_MESSAGES):
            data = b"Subject: message %d\r\n\r\n" % (n,) + b"x" * padding + b"\r\n"
            uid = self.mailbox.appendMessage(data, flags=flags, internalDate=when)
            self.sizes[uid] = len(data)
        self.uids = self.mailbox.uids()

    def found(self, term):
        return [uid for uid, _ in self.mailbox.search(term)]

    def test_flags(self):
        """
        Flags and keywords match whole and without case; C{_} and C{%} in a
        keyword are plain characters.
        """
        u = self.uids
        self.assertEqual(self.found(query.HasFlag("\\Seen")), [u[0], u[2], u[5]])
        self.assertEqual(self.found(query.HasFlag("\\seen")), [u[0], u[2], u[5]])
        self.assertEqual(self.found(query.HasFlag("$work_item")), [u[2]])
        self.assertEqual(self.found(query.HasFlag("$Work")), [])
        self.assertEqual(self.found(query.HasFlag("$Work%")), [])
        self.assertEqual(self.found(query.HasFlag("50%off")), [u[3]])
        self.assertEqual(self.found(query.Not(query.HasFlag("\\Seen"))), [u[1], u[3], u[4]])
        self.assertEqual([uid for uid, _ in self.mailbox.search(query.HasFlag("\\Seen"), limit=2)], [u[0], u[2]])

    def test_sizeDateModSeq(self):
        """Size and arrival bounds are strict where IMAP's are; modseq is at least."""
        u = self.uids
        size = self.sizes[u[1]]
        self.assertEqual(self.found(query.LargerThan(size)), [u[3], u[5]])
        self.assertEqual(self.found(query.SmallerThan(size)), [u[0], u[2], u[4]])
        start = _DAY.timestamp()
        self.assertEqual(self.found(query.ArrivedBefore(start)), [u[0], u[5]])
        self.assertEqual(self.found(query.ArrivedSince(start)), [u[1], u[2], u[3], u[4]])
        modseqs = dict(self.mailbox.search(query.And(())))
        self.mailbox.setFlags([u[1]], ["\\Seen"], "+")
        modseqs.update(self.mailbox.search(query.And(())))
        self.assertGreater(modseqs[u[1]], modseqs[u[5]])
        self.assertEqual(self.found(query.ModSeqAtLeast(modseqs[u[1]])), [u[1]])

    def test_combinations(self):
        """And of nothing is everything, Or of nothing is nothing; they nest."""
        u = self.uids
        self.assertEqual(self.found(query.And(())), u)
        self.assertEqual(self.found(query.Or(())), [])
        seen, flagged = query.HasFlag("\\Seen"), query.HasFlag("\\Flagged")
        self.assertEqual(self.found(query.And((seen, query.Not(flagged)))), [u[0], u[5]])
        self.assertEqual(self.found(query.Or((flagged, query.HasFlag("\\Draft")))), [u[2], u[5]])

    def programResults(self, text):
        """
        The UIDs SEARCH C{text} finds the way the IMAP front-end runs it
        (index first, then the rest message by message), and the UIDs the
        whole program matches when every message is matched in Python.
        """
        program = parseSearch(text)
        infos = {info.uid: info for info in self.mailbox.messages(self.uids)}
        maxSeq, maxUid = len(self.uids), self.uids[-1]
        opener = self.mailbox.openMessage
        everything = [uid for seq, uid in enumerate(self.uids, 1)
                      if program.matches(seq, infos[uid], maxSeq, maxUid, lambda u=uid: opener(u))]
        candidates = self.uids if program.term is None else self.found(program.term)
        split = [uid for uid in candidates if program.rest is None or program.matchesRest(
            self.uids.index(uid) + 1, infos[uid], maxSeq, maxUid, lambda u=uid: opener(u))]
        return split, everything

    def test_programSplit(self):
        """
        Whatever part of a SEARCH program the index answers, the result is
        what matching the whole program message by message gives.
        """
        programs = [
            "ALL", "SEEN", "UNSEEN", "UNSEEN UNDELETED", "FLAGGED", "KEYWORD $WORK_ITEM", "UNKEYWORD $label",
            "ANSWERED", "DRAFT", "DELETED", "NOT SEEN", "OR SEEN DRAFT", "OR (SEEN FLAGGED) DELETED",
            "LARGER 100", "SMALLER 60", "BEFORE 10-Mar-2024", "ON 10-Mar-2024", "SINCE 11-Mar-2024",
            "NOT ON 10-Mar-2024", "SEEN SUBJECT message", "UNSEEN SUBJECT 3", "OR SUBJECT 1 SEEN",
            "NOT (SEEN SUBJECT 2)", "1:3 SEEN", "UID 2:* UNSEEN", "RECENT SEEN", "NEW", "OLD UNSEEN",
            "MODSEQ 3 SEEN", "SEEN BODY xxxx", "SENTBEFORE 1-Jan-2030 SEEN",
        ]
        for text in programs:
            split, everything = self.programResults(text)
            self.assertEqual(split, everything, text)

    def test_termAndRest(self):
        """
        Flag, size, arrival and modseq keys go to the index; header, body,
        sequence and recent keys stay with the front-end.
        """
        program = parseSearch("UNSEEN LARGER 10 SUBJECT x 1:5")
        self.assertIsNotNone(program.term)
        self.assertEqual(len(program.rest.keys), 2)
        self.assertIsNone(parseSearch("UNSEEN OR DELETED BEFORE 1-Jan-2020").rest)
        self.assertIsNone(parseSearch("SUBJECT x").term)
        self.assertIsNone(parseSearch("OR SEEN SUBJECT x").term)
