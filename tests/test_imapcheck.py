# -*- test-case-name: tests.test_imapcheck -*-
"""
The IMAP protocol checker (L{tests.imapcheck}) fed recorded transcripts:
a well-behaved session gives no violation, and each kind of violation is
found where a server commits it.
"""

from twisted.trial import unittest

from tests.imapcheck import Atom, ParseError, Registry, ResponseReader, SessionChecker, parseTokens

SELECT = [
    ("C", "S1", b"SELECT INBOX"),
    ("S", b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)\r\n"
          b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)] Flags\r\n"
          b"* 3 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 77] UIDs valid\r\n"
          b"* OK [UIDNEXT 10] Predicted\r\n* OK [HIGHESTMODSEQ 20] Highest\r\n"
          b"S1 OK [READ-WRITE] SELECT completed\r\n"),
    ("C", "F1", b"UID FETCH 1:* (UID FLAGS MODSEQ)"),
    ("S", b"* 1 FETCH (UID 4 FLAGS (\\Seen) MODSEQ (5))\r\n* 2 FETCH (UID 7 FLAGS ($Work) MODSEQ (6))\r\n"
          b"* 3 FETCH (UID 9 FLAGS () MODSEQ (20))\r\nF1 OK done\r\n"),
]

BODY = b"Subject: hi\r\n\r\nhello\r\n"


def run(transcript, checker=None, byteByByte=False):
    """
    Feed C{transcript} (C{("C", tag, line)} and C{("S", data)} steps) to a
    checker; return it.
    """
    checker = checker or SessionChecker()
    for step in transcript:
        if step[0] == "C":
            checker.sent(step[1], step[2], expectBad=len(step) > 3 and step[3])
        elif byteByByte:
            for i in range(len(step[1])):
                checker.receive(step[1][i:i + 1])
        else:
            checker.receive(step[1])
    return checker


class ParserTests(unittest.TestCase):
    def test_tokens(self):
        """Atoms (with sections), quoted strings, literals, NIL and nested lists are parsed."""
        tokens, end = parseTokens(b'(UID 5 BODY[HEADER.FIELDS (FROM)]<0> {3}\r\nabc "q\\"x" NIL (a (b)))')
        self.assertEqual(tokens, [["UID", "5", "BODY[HEADER.FIELDS (FROM)]<0>", b"abc", b'q"x', None,
                                   ["a", ["b"]]]])
        self.assertIsInstance(tokens[0][0], Atom)

    def test_badTokens(self):
        """Unbalanced lists, short literals and bad escapes are parse errors."""
        for data in [b"(a", b"{5}\r\nab", b'"a\\b"', b'"abc']:
            self.assertRaises(ParseError, parseTokens, data)

    def test_readerLiterals(self):
        """The reader keeps a literal (with CRLFs in it) inside its response, however the bytes arrive."""
        data = b"* 1 FETCH (BODY[] {%d}\r\n%s)\r\nA OK done\r\n" % (len(BODY), BODY)
        for size in (1, 3, len(data)):
            reader = ResponseReader()
            out = []
            for i in range(0, len(data), size):
                out.extend(reader.feed(data[i:i + size]))
            self.assertEqual(out, [data[:data.index(b")\r\n") + 1], b"A OK done"])


class GoodSessionTests(unittest.TestCase):
    def test_wellBehaved(self):
        """A session that follows the rules, fed whole or byte by byte, gives no violation."""
        transcript = SELECT + [
            ("C", "A1", b"APPEND INBOX ($Work) {%d}" % (len(BODY),)),
            ("S", b"+ Ready\r\n"),
            ("S", b"A1 OK [APPENDUID 77 10] done\r\n"),
            ("C", "N1", b"NOOP"),
            ("S", b"* 4 EXISTS\r\n* 1 RECENT\r\nN1 OK done\r\n"),
            ("C", "F2", b"FETCH 4 (UID RFC822.SIZE BODY.PEEK[] ENVELOPE)"),
            ("S", b"* 4 FETCH (UID 10 RFC822.SIZE %d BODY[] {%d}\r\n%s ENVELOPE "
                  b"(NIL \"hi\" NIL NIL NIL NIL NIL NIL NIL NIL))\r\nF2 OK done\r\n" % (len(BODY), len(BODY), BODY)),
            ("C", "K1", b"STORE 2 +FLAGS ($New)"),
            ("S", b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work $New)\r\n"
                  b"* 2 FETCH (UID 7 FLAGS ($Work $New) MODSEQ (21))\r\nK1 OK done\r\n"),
            ("C", "K2", b"STORE 1 +FLAGS.SILENT (\\Deleted)"),
            ("S", b"K2 OK done\r\n"),
            ("C", "E1", b"EXPUNGE"),
            ("S", b"* 1 EXPUNGE\r\nE1 OK done\r\n"),
            ("C", "U1", b"UID SEARCH ALL"),
            ("S", b"* SEARCH 7 9 10\r\n* 2 EXPUNGE\r\nU1 OK done\r\n"),
            ("C", "Q1", b"SEARCH RETURN (MIN MAX ALL) ALL"),
            ("S", b'* ESEARCH (TAG "Q1") MIN 1 MAX 2 ALL 1:2\r\nQ1 OK done\r\n'),
            ("C", "I1", b"IDLE"),
            ("S", b"+ idling\r\n* 1 EXPUNGE\r\n* 2 EXISTS\r\n"),
            ("S", b"I1 OK IDLE terminated\r\n"),
            ("C", "T1", b"STATUS INBOX (UIDNEXT UIDVALIDITY HIGHESTMODSEQ)"),
            ("S", b"* STATUS INBOX (UIDNEXT 12 UIDVALIDITY 77 HIGHESTMODSEQ 30)\r\nT1 OK done\r\n"),
            ("C", "F3", b"FETCH 1:2 (UID FLAGS MODSEQ)"),
            ("S", b"* 1 FETCH (UID 10 FLAGS ($Work) MODSEQ (25))\r\n* 2 FETCH (UID 11 FLAGS () MODSEQ (26))\r\n"
                  b"F3 OK done\r\n"),
            ("C", "L1", b"LOGOUT"),
            ("S", b"* BYE bye\r\nL1 OK done\r\n"),
        ]
        for byteByByte in (False, True):
            checker = run(transcript, byteByByte=byteByByte)
            checker.finish()
            self.assertEqual(checker.violations, [])
            self.assertEqual(checker.exists, 2)
            self.assertEqual(checker.uidOf(2), 11)

    def test_uidCommandsMayExpunge(self):
        """EXPUNGE during UID FETCH, UID STORE and UID SEARCH is allowed."""
        transcript = SELECT + [
            ("C", "U1", b"UID FETCH 9 (FLAGS)"),
            ("S", b"* 1 EXPUNGE\r\n* 2 FETCH (UID 9 FLAGS ())\r\nU1 OK done\r\n"),
            ("C", "U2", b"UID STORE 9 +FLAGS (\\Seen)"),
            ("S", b"* 1 EXPUNGE\r\n* 1 FETCH (UID 9 FLAGS (\\Seen) MODSEQ (21))\r\nU2 OK done\r\n"),
        ]
        self.assertEqual(run(transcript).violations, [])

    def test_expungedMessageNil(self):
        """NIL items for a message another session expunged (RFC 2180 4.1.3) are no content violation."""
        transcript = SELECT + [
            ("C", "F", b"FETCH 1 (UID RFC822.SIZE BODY.PEEK[])"),
            ("S", b"* 1 FETCH (UID 4 RFC822.SIZE 3 BODY[] {3}\r\nabc)\r\nF OK done\r\n"),
            ("C", "G", b"FETCH 1 (UID RFC822.SIZE BODY.PEEK[])"),
            ("S", b"* 1 FETCH (UID 4 RFC822.SIZE 0 BODY[] NIL)\r\nG OK [EXPUNGEISSUED] gone\r\n")]
        self.assertEqual(run(transcript).violations, [])

    def test_deleteStartsAgain(self):
        """After DELETE and CREATE, a mailbox's new UIDVALIDITY and low UIDs are no violation."""
        transcript = SELECT + [
            ("C", "D", b"DELETE INBOX"), ("S", b"D NO cannot\r\n"),
            ("C", "T", b"STATUS INBOX (UIDVALIDITY UIDNEXT)"),
            ("S", b"* STATUS INBOX (UIDVALIDITY 78 UIDNEXT 1)\r\nT OK done\r\n"),
            ("C", "A", b"APPEND INBOX {3}"), ("S", b"+ go\r\nA OK [APPENDUID 78 1] x\r\n")]
        self.assertEqual(run(transcript).violations, [])

    def test_expectedBad(self):
        """BAD for a command the client marked invalid is no violation."""
        transcript = [("C", "B1", b"FROB", True), ("S", b"B1 BAD Unknown command\r\n")]
        self.assertEqual(run(transcript).violations, [])


class ViolationTests(unittest.TestCase):
    def assertViolation(self, transcript, kind, checker=None, finish=False):
        checker = run(transcript, checker)
        if finish:
            checker.finish()
        kinds = [v.kind for v in checker.violations]
        self.assertIn(kind, kinds, checker.violations)
        return checker

    def test_keywordNotAnnounced(self):
        """A FETCH showing a keyword that no FLAGS response announced (issue 13 defect 1)."""
        self.assertViolation(SELECT + [
            ("C", "K1", b"STORE 1 +FLAGS ($Label2)"),
            ("S", b"* 1 FETCH (FLAGS (\\Seen $Label2))\r\nK1 OK done\r\n")], "flags-announced")

    def test_fetchBeyondExists(self):
        """A FETCH for a message number above EXISTS."""
        self.assertViolation(SELECT + [("C", "N", b"NOOP"), ("S", b"* 4 FETCH (FLAGS ())\r\nN OK done\r\n")],
                             "sequence")

    def test_expungeDuringFetch(self):
        """EXPUNGE while a FETCH, STORE or SEARCH is in progress (RFC 3501 7.4.1)."""
        for line in [b"FETCH 1 (FLAGS)", b"STORE 1 +FLAGS (\\Seen)", b"SEARCH ALL"]:
            self.assertViolation(SELECT + [("C", "X", line), ("S", b"* 1 EXPUNGE\r\nX OK done\r\n")],
                                 "expunge-forbidden")

    def test_expungeWithoutCommand(self):
        """EXPUNGE when no command is in progress."""
        self.assertViolation(SELECT + [("S", b"* 1 EXPUNGE\r\n")], "expunge-forbidden")

    def test_existsDecreases(self):
        """EXISTS that reduces the number of messages."""
        self.assertViolation(SELECT + [("C", "N", b"NOOP"), ("S", b"* 2 EXISTS\r\nN OK done\r\n")], "sequence")

    def test_expungeOutOfRange(self):
        """EXPUNGE of a message number that does not exist."""
        self.assertViolation(SELECT + [("C", "N", b"NOOP"), ("S", b"* 5 EXPUNGE\r\nN OK done\r\n")], "sequence")

    def test_recentAboveExists(self):
        """RECENT above EXISTS."""
        self.assertViolation(SELECT + [("C", "N", b"NOOP"), ("S", b"* 4 RECENT\r\nN OK done\r\n")], "sequence")

    def test_modseqDecreases(self):
        """A message's MODSEQ going down, and flags changing without a new MODSEQ."""
        self.assertViolation(SELECT + [("C", "F", b"FETCH 1 (MODSEQ)"),
                                       ("S", b"* 1 FETCH (MODSEQ (4))\r\nF OK done\r\n")], "modseq")
        self.assertViolation(SELECT + [("C", "F", b"FETCH 1 (FLAGS MODSEQ)"),
                                       ("S", b"* 1 FETCH (FLAGS (\\Seen \\Flagged) MODSEQ (5))\r\nF OK done\r\n")],
                             "modseq")

    def test_highestModseqDecreases(self):
        """HIGHESTMODSEQ at a later SELECT below a MODSEQ already seen."""
        self.assertViolation(SELECT + [
            ("C", "S2", b"SELECT INBOX"),
            ("S", b"* FLAGS ()\r\n* 3 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 77] x\r\n"
                  b"* OK [HIGHESTMODSEQ 19] x\r\nS2 OK [READ-WRITE] done\r\n")], "modseq")

    def test_uidChanges(self):
        """A message number whose UID changes, UIDs out of order, and an expunged UID that comes back."""
        self.assertViolation(SELECT + [("C", "F", b"FETCH 1 (UID)"),
                                       ("S", b"* 1 FETCH (UID 5)\r\nF OK done\r\n")], "uid")
        transcript = [step for step in SELECT if step[0] != "S" or b"UID 4" not in step[1]]
        self.assertViolation(transcript[:2] + [("C", "F", b"FETCH 1:2 (UID)"),
                                               ("S", b"* 2 FETCH (UID 3)\r\n* 1 FETCH (UID 4)\r\nF OK\r\n")], "uid")
        self.assertViolation(SELECT[:2] + [("C", "F", b"FETCH 1 (UID)"), ("S", b"* 1 FETCH (UID 4)\r\nF OK\r\n"),
                                           ("C", "E", b"EXPUNGE"), ("S", b"* 1 EXPUNGE\r\nE OK done\r\n"),
                                           ("C", "F", b"UID FETCH 4 (UID)"),
                                           ("S", b"* 1 FETCH (UID 4)\r\nF OK done\r\n")], "uid")

    def test_newMessageBelowUidNext(self):
        """A message that arrived after SELECT with a UID below that SELECT's UIDNEXT."""
        self.assertViolation(SELECT + [("C", "N", b"NOOP"), ("S", b"* 4 EXISTS\r\nN OK done\r\n"),
                                       ("C", "F", b"FETCH 4 (UID)"),
                                       ("S", b"* 4 FETCH (UID 8)\r\nF OK done\r\n")], "uid")

    def test_appendUidNotIncreasing(self):
        """APPENDUID at or below a UID already seen, or given twice across sessions."""
        self.assertViolation(SELECT + [("C", "A", b"APPEND INBOX {3}"), ("S", b"+ go\r\nA OK [APPENDUID 77 9] x\r\n")],
                             "uid")
        registry = Registry()
        first = run([("C", "A", b"APPEND Other {3}"), ("S", b"+ go\r\nA OK [APPENDUID 5 3] x\r\n")],
                    SessionChecker(registry))
        self.assertEqual(first.violations, [])
        self.assertViolation([("C", "A", b"APPEND Other {3}"), ("S", b"+ go\r\nA OK [APPENDUID 5 3] x\r\n")],
                             "uid", SessionChecker(registry))

    def test_uidNextNotAboveSeen(self):
        """UIDNEXT in SELECT or STATUS at or below a UID already seen."""
        checker = run(SELECT)
        self.assertViolation([("C", "T", b"STATUS INBOX (UIDNEXT)"),
                              ("S", b"* STATUS INBOX (UIDNEXT 9)\r\nT OK done\r\n")], "uidnext", checker)

    def test_uidValidityChanges(self):
        """UIDVALIDITY of a mailbox that changes."""
        self.assertViolation(SELECT + [("C", "T", b"STATUS INBOX (UIDVALIDITY)"),
                                       ("S", b"* STATUS INBOX (UIDVALIDITY 78)\r\nT OK done\r\n")], "uidvalidity")

    def test_tags(self):
        """A command without its tagged response, and a tagged response for no command."""
        self.assertViolation([("C", "A", b"NOOP"), ("S", b"* OK still here\r\n")], "tag", finish=True)
        self.assertViolation([("C", "A", b"NOOP"), ("S", b"B OK done\r\nA OK done\r\n")], "tag")

    def test_badForValidCommand(self):
        """BAD for a command the client considers valid, and an untagged BAD."""
        self.assertViolation([("C", "A", b"SELECT \"!#$&'+,-.0123456789:;<=>?@^_`|[}\""),
                              ("S", b"A BAD Invalid mailbox name\r\n")], "bad")
        self.assertViolation([("C", "A", b"NOOP"), ("S", b"* BAD what?\r\nA OK done\r\n")], "bad")

    def test_serverBug(self):
        """NO [SERVERBUG]."""
        self.assertViolation([("C", "A", b"NOOP"), ("S", b"A NO [SERVERBUG] Internal error\r\n")], "serverbug")

    def test_framing(self):
        """A literal shorter than announced, and a line that is no response."""
        checker = self.assertViolation(SELECT + [
            ("C", "F", b"FETCH 1 BODY[]"),
            ("S", b"* 1 FETCH (BODY[] {10}\r\nabc)\r\nF OK done\r\n")], "framing", finish=True)
        self.assertIn("tag", [v.kind for v in checker.violations])
        self.assertViolation([("C", "A", b"NOOP"), ("S", b"hello\r\nA OK done\r\n")], "framing")

    def test_selectMissingResponses(self):
        """SELECT OK without UIDVALIDITY, and EXAMINE answered READ-WRITE."""
        self.assertViolation([("C", "S", b"SELECT INBOX"),
                              ("S", b"* FLAGS ()\r\n* 0 EXISTS\r\n* 0 RECENT\r\nS OK [READ-WRITE] done\r\n")], "select")
        self.assertViolation([("C", "S", b"EXAMINE INBOX"),
                              ("S", b"* FLAGS ()\r\n* 0 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 1] x\r\n"
                                    b"S OK [READ-WRITE] done\r\n")], "select")

    def test_permanentFlagsOutsideFlags(self):
        """PERMANENTFLAGS naming a keyword that FLAGS did not."""
        self.assertViolation([("C", "S", b"SELECT INBOX"),
                              ("S", b"* FLAGS (\\Seen)\r\n* OK [PERMANENTFLAGS (\\Seen $Junk)] x\r\n")],
                             "permanentflags")

    def test_content(self):
        """RFC822.SIZE that differs from BODY[]'s length, and a body that differs between sessions."""
        self.assertViolation(SELECT + [("C", "F", b"FETCH 1 (RFC822.SIZE BODY.PEEK[])"),
                                       ("S", b"* 1 FETCH (UID 4 RFC822.SIZE 4 BODY[] {3}\r\nabc)\r\nF OK done\r\n")],
                             "content")
        registry = Registry()
        fetch = [("C", "F", b"FETCH 1 (BODY.PEEK[])"), ("S", b"* 1 FETCH (UID 4 BODY[] {3}\r\nabc)\r\nF OK done\r\n")]
        self.assertEqual(run(SELECT + fetch, SessionChecker(registry)).violations, [])
        fetch[1] = ("S", fetch[1][1].replace(b"abc", b"abd"))
        self.assertViolation(SELECT + fetch, "content", SessionChecker(registry))

    def test_searchOutOfRange(self):
        """SEARCH results above EXISTS."""
        self.assertViolation(SELECT + [("C", "Q", b"SEARCH ALL"), ("S", b"* SEARCH 1 4\r\nQ OK done\r\n")],
                             "sequence")

    def test_continuationWithoutCommand(self):
        """A continuation request while no command waits for one."""
        self.assertViolation([("S", b"+ go ahead\r\n")], "continuation")

    def test_copyUidSources(self):
        """COPYUID whose source UIDs are not the messages copied, or not as many as the new ones."""
        self.assertViolation(SELECT + [("C", "C", b"COPY 2 Other"), ("S", b"C OK [COPYUID 5 9 1] done\r\n")], "uid")
        self.assertViolation(SELECT + [("C", "C", b"UID MOVE 7:9 Other"),
                                       ("S", b"* OK [COPYUID 5 7,9 1]\r\n* 2 EXPUNGE\r\n* 2 EXPUNGE\r\nC OK\r\n")],
                             "uid")
        good = run(SELECT + [("C", "C", b"COPY 2:3 Other"), ("S", b"C OK [COPYUID 5 7,9 1:2] done\r\n"),
                             ("C", "M", b"UID MOVE 7:* Other"),
                             ("S", b"* OK [COPYUID 5 7,9 3:4]\r\n* 2 EXPUNGE\r\n* 2 EXPUNGE\r\nM OK\r\n")])
        self.assertEqual(good.violations, [])

    def test_recentTwice(self):
        """A message shown \\Recent in two read-write sessions (but not in a read-only one)."""
        registry = Registry()
        fetch = [("C", "F", b"FETCH 3 (FLAGS)"), ("S", b"* 3 FETCH (FLAGS (\\Recent))\r\nF OK done\r\n")]
        self.assertEqual(run(SELECT + fetch, SessionChecker(registry)).violations, [])
        examine = [(s[0], s[1], s[2].replace(b"SELECT", b"EXAMINE")) if s[0] == "C" else s for s in SELECT]
        examine[1] = ("S", examine[1][1].replace(b"READ-WRITE", b"READ-ONLY"))
        self.assertEqual(run(examine + fetch, SessionChecker(registry)).violations, [])
        self.assertViolation(SELECT + fetch, "recent", SessionChecker(registry))

    def test_condstoreFetchWithoutUid(self):
        """After a CONDSTORE-enabling command, a STORE or unsolicited FETCH without MODSEQ (and UID with QRESYNC)."""
        self.assertViolation(SELECT + [("C", "K", b"STORE 1 +FLAGS (\\Seen)"),
                                       ("S", b"* 1 FETCH (FLAGS (\\Seen))\r\nK OK done\r\n")],
                             "condstore")
        self.assertViolation(SELECT + [("C", "E", b"ENABLE QRESYNC"), ("S", b"* ENABLED QRESYNC\r\nE OK\r\n"),
                                       ("C", "K", b"STORE 1 +FLAGS (\\Seen)"),
                                       ("S", b"* 1 FETCH (FLAGS (\\Seen) MODSEQ (21))\r\nK OK done\r\n")],
                             "condstore")
        good = run(SELECT + [("C", "K", b"STORE 1 +FLAGS (\\Seen)"),
                             ("S", b"* 1 FETCH (UID 4 FLAGS (\\Seen) MODSEQ (21))\r\nK OK done\r\n"),
                             ("C", "F", b"FETCH 1 (FLAGS)"), ("S", b"* 1 FETCH (FLAGS (\\Seen))\r\nF OK done\r\n")])
        self.assertEqual(good.violations, [])
        plain = [("C", "S1", b"SELECT INBOX")] + SELECT[1:2] + [
            ("C", "K", b"STORE 1 +FLAGS (\\Seen)"), ("S", b"* 1 FETCH (FLAGS (\\Seen))\r\nK OK done\r\n")]
        self.assertEqual(run(plain).violations, [])

    def test_counted(self):
        """Every violation is counted; only the first few of a kind are kept."""
        lines = b"".join(b"* 1 FETCH (FLAGS ($K%d))\r\n" % (i,) for i in range(50))
        checker = run(SELECT + [("C", "N", b"FETCH 1 (FLAGS)"), ("S", lines + b"N OK done\r\n")])
        self.assertEqual(checker.counts["flags-announced"], 50)
        self.assertEqual(len(checker.violations), SessionChecker.KEEP)


QRESYNC = [("C", "E", b"ENABLE QRESYNC"), ("S", b"* ENABLED QRESYNC\r\nE OK\r\n")] + SELECT


class QresyncSortThreadTests(unittest.TestCase):
    """
    What the former C{tests/imap_checker.py} knew and this checker
    did not: VANISHED, SORT and THREAD.
    """

    def test_vanishedTakesUids(self):
        """VANISHED takes known UIDs out, and an unknown one from the unknown messages that may hold it."""
        checker = run(QRESYNC + [
            ("C", "N", b"NOOP"), ("S", b"* 4 EXISTS\r\n* VANISHED 7,50\r\nN OK done\r\n"),
            ("C", "X", b"EXPUNGE"), ("S", b"* VANISHED 11\r\nX OK done\r\n"),
            ("C", "U", b"UID FETCH 1:* (UID)"), ("S", b"* VANISHED (EARLIER) 1:3\r\n* 2 FETCH (UID 9)\r\nU OK\r\n")])
        self.assertEqual(checker.violations, [])
        self.assertEqual((checker.exists, checker.uidOf(1), checker.uidOf(2)), (2, 4, 9))

    def test_vanishedForbidden(self):
        """VANISHED during FETCH, STORE, SEARCH, SORT or THREAD, with no command, or before QRESYNC."""
        for line in [b"FETCH 1 (FLAGS)", b"STORE 1 +FLAGS (\\Seen)", b"SEARCH ALL", b"SORT (DATE) UTF-8 ALL",
                     b"THREAD REFERENCES UTF-8 ALL"]:
            checker = run(QRESYNC + [("C", "X", line), ("S", b"* VANISHED 4\r\nX OK done\r\n")])
            self.assertEqual([v.kind for v in checker.violations], ["expunge-forbidden"], line)
        checker = run(QRESYNC + [("S", b"* VANISHED 4\r\n")])
        self.assertEqual([v.kind for v in checker.violations], ["expunge-forbidden"])
        checker = run(SELECT + [("C", "X", b"EXPUNGE"), ("S", b"* VANISHED 4\r\nX OK\r\n")])
        self.assertEqual([v.kind for v in checker.violations], ["state"])
        checker = run(QRESYNC + [("C", "N", b"NOOP"), ("S", b"* VANISHED (EARLIER) 4\r\nN OK\r\n")])
        self.assertEqual([v.kind for v in checker.violations], ["state"])

    def test_sortThreadNumbers(self):
        """SORT and THREAD results name existing messages; their UID forms are not sequence numbers."""
        good = run(SELECT + [("C", "S", b"SORT (DATE) UTF-8 ALL"), ("S", b"* SORT 3 1 2\r\nS OK\r\n"),
                             ("C", "T", b"THREAD REFERENCES UTF-8 ALL"), ("S", b"* THREAD (1)(2 (3))\r\nT OK\r\n"),
                             ("C", "U", b"UID THREAD REFERENCES UTF-8 ALL"), ("S", b"* THREAD (4 7)(9)\r\nU OK\r\n")])
        self.assertEqual(good.violations, [])
        for command, response in [(b"SORT (DATE) UTF-8 ALL", b"* SORT 3 4"),
                                  (b"THREAD REFERENCES UTF-8 ALL", b"* THREAD (1)(2 (5)(3))")]:
            checker = run(SELECT + [("C", "S", command), ("S", response + b"\r\nS OK\r\n")])
            self.assertEqual([v.kind for v in checker.violations], ["sequence"])

    def test_expungeDuringSort(self):
        """EXPUNGE while a SORT or THREAD is in progress, as during SEARCH."""
        for line in [b"SORT (DATE) UTF-8 ALL", b"THREAD REFERENCES UTF-8 ALL"]:
            checker = run(SELECT + [("C", "X", line), ("S", b"* 1 EXPUNGE\r\nX OK done\r\n")])
            self.assertEqual([v.kind for v in checker.violations], ["expunge-forbidden"])


CONTEXT = SELECT + [
    ("C", "C1", b"UID SEARCH RETURN (UPDATE) KEYWORD $Work"),
    ("S", b'* ESEARCH (TAG "C1") UID ALL 7\r\nC1 OK done\r\n'),
]


class ContextTests(unittest.TestCase):
    """
    Search contexts (RFC 5267), IMAP4rev2, NOTIFY and REPLACE.
    """

    def kinds(self, transcript):
        return [v.kind for v in run(transcript).violations]

    def test_contextFollowed(self):
        """ADDTO and REMOVEFROM change the context's result; it ends with the selection."""
        checker = run(CONTEXT + [
            ("C", "N", b"NOOP"),
            ("S", b'* 4 EXISTS\r\n* 1 RECENT\r\n* ESEARCH (TAG "C1") UID ADDTO (0 10)\r\n'
                  b'* ESEARCH (TAG "C1") UID REMOVEFROM (0 7)\r\n* 2 EXPUNGE\r\nN OK\r\n')])
        self.assertEqual(checker.violations, [])
        self.assertEqual(checker.contextResult("C1"), {10})
        run([("C", "U", b"UNSELECT"), ("S", b"U OK\r\n")], checker)
        self.assertIsNone(checker.contextResult("C1"))
        self.assertEqual([v.kind for v in checker.violations], [])

    def test_contextUpdatedBeforeItsTaggedOK(self):
        """An ADDTO or REMOVEFROM sent after the first answer and before the creating command's tagged OK counts
        (the stress run's unexplained mismatches: the checker took it for part of the answer and dropped it)."""
        checker = run(SELECT + [
            ("C", "C1", b"UID SEARCH RETURN (UPDATE) KEYWORD $Work"),
            ("S", b'* ESEARCH (TAG "C1") UID ALL 4,7\r\n* 5 EXISTS\r\n* 1 RECENT\r\n'
                  b'* ESEARCH (TAG "C1") UID REMOVEFROM (0 4) ADDTO (0 12)\r\nC1 OK done\r\n'),
        ])
        self.assertEqual(checker.violations, [])
        self.assertEqual(checker.contextResult("C1"), {7, 12})

    def test_contextWrongUpdates(self):
        """ADDTO of a UID the context has or one expunged, REMOVEFROM of one it has not, an update after CANCELUPDATE."""
        self.assertEqual(self.kinds(CONTEXT + [
            ("C", "N", b"NOOP"), ("S", b'* ESEARCH (TAG "C1") UID ADDTO (0 7)\r\nN OK\r\n')]), ["context"])
        self.assertEqual(self.kinds(CONTEXT + [
            ("C", "N", b"NOOP"), ("S", b'* ESEARCH (TAG "C1") UID REMOVEFROM (0 4)\r\nN OK\r\n')]), ["context"])
        self.assertEqual(self.kinds(CONTEXT + [
            ("C", "N", b"NOOP"), ("S", b'* VANISHED 4\r\n* ESEARCH (TAG "C1") UID ADDTO (0 4)\r\nN OK\r\n')]),
            ["state", "context"])
        self.assertEqual(self.kinds(CONTEXT + [
            ("C", "X", b'CANCELUPDATE "C1"'), ("S", b"X OK\r\n"),
            ("C", "N", b"NOOP"), ("S", b'* ESEARCH (TAG "C1") UID ADDTO (0 4)\r\nN OK\r\n')]), ["tag"])

    def test_contextKeepsExpunged(self):
        """A UID the context has, expunged, must leave it (REMOVEFROM) by the end of the command."""
        self.assertEqual(self.kinds(CONTEXT + [("C", "N", b"NOOP"), ("S", b"* 2 EXPUNGE\r\nN OK\r\n")]), ["context"])
        self.assertEqual(self.kinds(CONTEXT + [("C", "N", b"NOOP"), ("S", b"* 2 EXPUNGE\r\n"
                                                                          b'* ESEARCH (TAG "C1") UID REMOVEFROM (0 7)\r\n'
                                                                          b"N OK\r\n")]), [])
        self.assertEqual(self.kinds(CONTEXT + [("C", "X", b'CANCELUPDATE "C1"'), ("S", b"* 2 EXPUNGE\r\nX OK\r\n")]), [])

    def test_noUpdate(self):
        """NO [NOUPDATE] leaves no context; NOUPDATE for a command that asked none is a violation."""
        checker = run(SELECT + [
            ("C", "C1", b"SEARCH RETURN (UPDATE) 1:2"),
            ("S", b'* ESEARCH (TAG "C1") ALL 1:2\r\n* NO [NOUPDATE "C1"] no\r\nC1 OK\r\n')])
        self.assertEqual(checker.violations, [])
        self.assertIsNone(checker.contextResult("C1"))
        self.assertEqual(self.kinds(SELECT + [("C", "C1", b"SEARCH ALL"),
                                              ("S", b'* NO [NOUPDATE "C1"] no\r\nC1 OK\r\n')]), ["context"])

    def test_messageNumberContext(self):
        """A SEARCH context's ADDTO names existing messages."""
        transcript = SELECT + [("C", "C1", b"SEARCH RETURN (UPDATE) KEYWORD $Work"),
                               ("S", b'* ESEARCH (TAG "C1") ALL 2\r\nC1 OK\r\n'), ("C", "N", b"NOOP")]
        self.assertEqual(self.kinds(transcript + [("S", b'* ESEARCH (TAG "C1") ADDTO (0 3)\r\nN OK\r\n')]), [])
        self.assertEqual(self.kinds(transcript + [("S", b'* ESEARCH (TAG "C1") ADDTO (0 5)\r\nN OK\r\n')]),
                         ["sequence"])

    def test_esearchCorrelator(self):
        """ESEARCH answering a SEARCH carries its tag, and UID exactly for a UID SEARCH."""
        self.assertEqual(self.kinds(SELECT + [("C", "S", b"SEARCH RETURN (ALL) ALL"),
                                              ("S", b"* ESEARCH ALL 1:3\r\nS OK\r\n")]), ["esearch"])
        self.assertEqual(self.kinds(SELECT + [("C", "S", b"SEARCH RETURN (ALL) ALL"),
                                              ("S", b'* ESEARCH (TAG "S") UID ALL 1:3\r\nS OK\r\n')]), ["esearch"])

    def test_rev2(self):
        """After ENABLED IMAP4rev2: SELECT needs no RECENT; RECENT, \\Recent and SEARCH responses are violations."""
        enable = [("C", "E", b"ENABLE IMAP4rev2"), ("S", b"* ENABLED IMAP4rev2\r\nE OK\r\n")]
        select = [("C", "S1", b"SELECT INBOX"),
                  ("S", b"* FLAGS (\\Seen)\r\n* 3 EXISTS\r\n* OK [UIDVALIDITY 77] v\r\nS1 OK [READ-WRITE] done\r\n")]
        self.assertEqual(self.kinds(enable + select + [
            ("C", "S", b"SEARCH ALL"), ("S", b'* ESEARCH (TAG "S") ALL 1:3\r\nS OK\r\n')]), [])
        self.assertEqual(self.kinds(enable + select + [
            ("C", "S", b"SEARCH ALL"), ("S", b"* SEARCH 1 2 3\r\nS OK\r\n")]), ["rev2"])
        self.assertEqual(self.kinds(enable + select + [
            ("C", "N", b"NOOP"), ("S", b"* 4 EXISTS\r\n* 1 RECENT\r\nN OK\r\n")]), ["rev2"])
        self.assertEqual(self.kinds(enable + select + [
            ("C", "F", b"FETCH 1 (FLAGS)"), ("S", b"* 1 FETCH (FLAGS (\\Seen \\Recent))\r\nF OK\r\n")]), ["rev2"])
        self.assertEqual(self.kinds(select), ["select"])

    def test_notifyStatus(self):
        """An unsolicited STATUS needs NOTIFY, and never names the selected mailbox."""
        status = ("S", b"* STATUS Archive (MESSAGES 3 UIDNEXT 9)\r\nN OK\r\n")
        self.assertEqual(self.kinds(SELECT + [("C", "N", b"NOOP"), status]), ["notify"])
        notify = [("C", "T", b"NOTIFY SET (selected (MessageNew MessageExpunge)) (personal (MessageNew MessageExpunge))"),
                  ("S", b"T OK\r\n")]
        self.assertEqual(self.kinds(SELECT + notify + [("C", "N", b"NOOP"), status]), [])
        self.assertEqual(self.kinds(SELECT + notify + [
            ("C", "N", b"NOOP"), ("S", b"* STATUS INBOX (MESSAGES 3)\r\nN OK\r\n")]), ["notify"])
        self.assertEqual(self.kinds(SELECT + notify + [("S", b"* 4 EXISTS\r\n* 3 EXPUNGE\r\n")]), [])
        self.assertEqual(self.kinds(SELECT + notify + [("C", "T", b"NOTIFY NONE"), ("S", b"T OK\r\n"),
                                                      ("C", "N", b"NOOP"), status]), ["notify"])
        personal = [("C", "T", b"NOTIFY SET (personal (MessageNew MessageExpunge))"), ("S", b"T OK\r\n")]
        self.assertEqual(self.kinds(SELECT + personal + [("C", "N", b"NOOP"), status]), [])
        self.assertEqual(self.kinds(SELECT + personal + [("S", b"* 3 EXPUNGE\r\n")]), ["expunge-forbidden"])
        self.assertEqual(self.kinds(SELECT + personal + [
            ("C", "S", b"SELECT INBOX"), ("S", b"* STATUS INBOX (MESSAGES 3)\r\n")]), [])

    def test_replace(self):
        """REPLACE's APPENDUID (untagged, RFC 8508) is checked as APPEND's is."""
        replace = [("C", "R", b"REPLACE 1 INBOX {5}"), ("S", b"+ go\r\n")]
        self.assertEqual(self.kinds(SELECT + replace + [
            ("S", b"* OK [APPENDUID 77 10] ready\r\n* 4 EXISTS\r\n* 1 EXPUNGE\r\nR OK\r\n")]), [])
        self.assertEqual(self.kinds(SELECT + replace + [
            ("S", b"* OK [APPENDUID 77 9] ready\r\n* 1 EXPUNGE\r\nR OK\r\n")]), ["uid"])

    def test_notifyStatusDuringStatus(self):
        """With NOTIFY on, a STATUS during a STATUS command is not held to the command's snapshot."""
        registry = Registry()
        registry.sawUid("Archive", 20)
        notify = [("C", "T", b"NOTIFY SET (personal (MessageNew MessageExpunge))"), ("S", b"T OK\r\n")]
        status = [("C", "S", b"STATUS Archive (UIDNEXT)"),
                  ("S", b"* STATUS Archive (UIDNEXT 15)\r\n* STATUS Archive (UIDNEXT 21)\r\nS OK\r\n")]
        checker = run(SELECT + notify + status, SessionChecker(registry))
        self.assertEqual([v.kind for v in checker.violations], [], checker.violations)
        self.assertEqual([v.kind for v in run(SELECT + status, SessionChecker(registry)).violations], ["uidnext"])
