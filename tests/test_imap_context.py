# -*- test-case-name: tests.test_imap_context -*-
"""
CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 section 4): the CONTEXT hint,
SEARCH/SORT RETURN (UPDATE) with ADDTO and REMOVEFROM, NOUPDATE,
CANCELUPDATE, and PARTIAL beside them.
"""

import imaplib
import random
import re

from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from gateway.imap import context
from gateway.imap import search as searchModule
from gateway.interfaces import IViewObserver
from gateway.store.mail import MailStore
from tests.support import PASSWORD, LoopbackIMAPMixin
from tests.test_imap_acl import Peer
from tests.test_imap_mailbox import append
from tests.test_imap_selected import SelectedTestMixin
from tests.test_imap_sort import message


def esearch(out):
    """
    The untagged ESEARCH lines of C{out}.
    """
    return [line for line in out.split(b"\r\n") if line.startswith(b"* ESEARCH")]


class ContextTestMixin(SelectedTestMixin):
    def peer(self):
        """
        A second session of the same account with INBOX selected.
        """
        peer = Peer(self, b"demo")
        self.assertIn(b"S OK", peer.send(b"S SELECT INBOX"))
        return peer

    def add(self, *subjects, flags=()):
        """
        Deliver messages with C{subjects} straight to the store (as LMTP
        or another process would).
        """
        for subject in subjects:
            self.mailbox.appendMessage(message(subject), flags)


class ContextSearchTests(ContextTestMixin, unittest.TestCase):
    def test_capabilities(self):
        """CONTEXT=SEARCH and CONTEXT=SORT are announced with ESEARCH and ESORT."""
        self.login()
        caps = self.send(b"a CAPABILITY").split(b"\r\n")[0].split()
        for name in (b"CONTEXT=SEARCH", b"CONTEXT=SORT", b"ESEARCH", b"ESORT"):
            self.assertIn(name, caps)

    def test_interface(self):
        """A session's contexts provide IViewObserver."""
        self.selectWith(1)
        self.send(b"B01 UID SEARCH RETURN (UPDATE) ALL")
        verifyObject(IViewObserver, self.session.view.contexts)

    def test_contextHint(self):
        """RFC 5267 4.2: RETURN (CONTEXT COUNT) is a hint; the answer is the COUNT."""
        self.selectWith(3)
        self.send(b"x STORE 2 +FLAGS ($Junk)")
        out = self.send(b"A01 SEARCH RETURN (CONTEXT COUNT) UNDELETED UNKEYWORD $Junk")
        self.assertIn(b'* ESEARCH (TAG "A01") COUNT 2\r\nA01 OK', out)
        out = self.send(b"A02 SEARCH RETURN (CONTEXT) ALL")
        self.assertIn(b'* ESEARCH (TAG "A02") ALL 1:3\r\n', out)

    def test_updateAddTo(self):
        """RFC 5267 4.3/4.3.3: UID SEARCH RETURN (UPDATE COUNT) answers COUNT, then ADDTO (0 uids) when messages come to match."""
        self.selectWith(3)
        out = self.send(b"B01 UID SEARCH RETURN (UPDATE COUNT) DELETED KEYWORD $Junk")
        self.assertIn(b'* ESEARCH (TAG "B01") UID COUNT 0\r\nB01 OK', out)
        peer = self.peer()
        peer.send(b"P STORE 2:3 +FLAGS (\\Deleted $Junk)")
        out = self.send(b"n NOOP")
        self.assertIn(b'* ESEARCH (TAG "B01") UID ADDTO (0 2:3)\r\n', out)
        # Nothing more to say the next time.
        self.assertEqual(esearch(self.send(b"n2 NOOP")), [])

    def test_updateOnlyImpliesAll(self):
        """RETURN (UPDATE) alone answers ALL, the result the updates change."""
        self.selectWith(3)
        out = self.send(b"B01 UID SEARCH RETURN (UPDATE) ALL")
        self.assertIn(b'* ESEARCH (TAG "B01") UID ALL 1:3\r\n', out)

    def test_removeFromBeforeExpunge(self):
        """RFC 5267 4.3.4: REMOVEFROM (0 uid) comes before the EXPUNGE of the message."""
        self.selectWith(4)
        self.send(b"x STORE 2:3 +FLAGS (\\Deleted)")
        self.send(b"B01 UID SEARCH RETURN (UPDATE) DELETED")
        peer = self.peer()
        peer.send(b"P UID EXPUNGE 3")
        out = self.send(b"n NOOP")
        self.assertIn(b'* ESEARCH (TAG "B01") UID REMOVEFROM (0 3)\r\n* 3 EXPUNGE\r\n', out)

    def test_expungedWhileSearching(self):
        """A fresh UID SEARCH answers a message expunged while it ran; the context's REMOVEFROM and the EXPUNGE follow in the same command."""
        self.selectWith(3)
        self.send(b"x STORE 2 +FLAGS ($Ctx)")
        self.assertIn(b'* ESEARCH (TAG "B01") UID ALL 2\r\n', self.send(b"B01 UID SEARCH RETURN (UPDATE) KEYWORD $Ctx"))
        peer = self.peer()
        peer.send(b"P STORE 2 +FLAGS.SILENT (\\Deleted)")
        self.send(b"n NOOP")
        found = self.mailbox.search

        def search(term, limit=None):
            # Another session's EXPUNGE lands between the search and the
            # end of the command (as the stress test's did).
            hits = found(term, limit)
            peer.send(b"P UID EXPUNGE 2")
            return hits
        self.patch(self.mailbox, "search", search)
        out = self.send(b"f UID SEARCH KEYWORD $Ctx")
        self.assertEqual(out.split(b"\r\n")[:3],
                         [b"* SEARCH 2", b'* ESEARCH (TAG "B01") UID REMOVEFROM (0 2)', b"* 2 EXPUNGE"])
        self.assertIn(b"\r\nf OK", out)

    def test_otherProcessInIdle(self):
        """Another process's append and expunge reach a context in IDLE: ADDTO after EXISTS, REMOVEFROM before EXPUNGE."""
        self.selectWith(2)
        self.send(b"B01 UID SEARCH RETURN (UPDATE) SUBJECT afar")
        self.assertEqual(self.send(b"a IDLE"), b"+ idling\r\n")
        outside = MailStore(self.session.account.mailStore.path, reactor=Clock(), useInotify=False)
        self.addCleanup(outside.close)
        inbox = outside.getMailbox("INBOX")
        inbox.appendMessage(b"Subject: from afar\r\n\r\nx\r\n")
        for _ in range(3):
            self.clock.advance(1)
        self.assertEqual(self.read(), b'* 3 EXISTS\r\n* 3 RECENT\r\n* ESEARCH (TAG "B01") UID ADDTO (0 3)\r\n')
        inbox.setFlags([3], {"\\Deleted"}, "+")
        inbox.expunge()
        for _ in range(3):
            self.clock.advance(1)
        self.assertEqual(self.read(), b'* ESEARCH (TAG "B01") UID REMOVEFROM (0 3)\r\n* 3 EXPUNGE\r\n* 2 RECENT\r\n')
        self.assertEqual(self.send(b"DONE"), b"a OK IDLE terminated\r\n")

    def test_messageNumbers(self):
        """A SEARCH (not UID) context: REMOVEFROM with the number before the EXPUNGE, ADDTO with the number after EXISTS."""
        self.selectWith(4)
        self.send(b"c SEARCH RETURN (UPDATE) UNSEEN")
        self.send(b"x STORE 3 +FLAGS (\\Deleted)")
        out = self.send(b"y EXPUNGE")
        self.assertIn(b'* ESEARCH (TAG "c") REMOVEFROM (0 3)\r\n* 3 EXPUNGE\r\n', out)
        self.add("new")
        out = self.send(b"n NOOP")
        self.assertIn(b"* 4 EXISTS\r\n", out)
        self.assertLess(out.index(b"* 4 EXISTS"), out.index(b'* ESEARCH (TAG "c") ADDTO (0 4)\r\n'))

    def test_flagChanges(self):
        """This session's own STORE moves messages out of and into the result: REMOVEFROM and ADDTO after its FETCH."""
        self.selectWith(3)
        self.send(b"t UID SEARCH RETURN (UPDATE) UNSEEN")
        out = self.send(b"s STORE 1:2 +FLAGS (\\Seen)")
        self.assertIn(b'* ESEARCH (TAG "t") UID REMOVEFROM (0 1:2)\r\ns OK', out)
        out = self.send(b"s2 STORE 1 -FLAGS (\\Seen)")
        self.assertIn(b'* ESEARCH (TAG "t") UID ADDTO (0 1)\r\n', out)
        # A change that leaves the result as it was says nothing.
        self.assertEqual(esearch(self.send(b"s3 STORE 3 +FLAGS (\\Flagged)")), [])

    def test_removeAndAddInOneResponse(self):
        """One change that takes a message out and brings another in is one ESEARCH: REMOVEFROM, then ADDTO."""
        self.selectWith(3)
        self.send(b"t UID SEARCH RETURN (UPDATE) FLAGGED")
        self.send(b"s STORE 1 +FLAGS (\\Flagged)")
        peer = self.peer()
        peer.send(b"P STORE 1 -FLAGS (\\Flagged)")
        peer.send(b"P STORE 3 +FLAGS (\\Flagged)")
        out = self.send(b"n NOOP")
        self.assertIn(b'* ESEARCH (TAG "t") UID REMOVEFROM (0 1) ADDTO (0 3)\r\n', out)

    def test_minStillUpdatesAll(self):
        """RFC 5267 4.3: UPDATE MIN tells about every change to the result, not only the minimum."""
        self.selectWith(3)
        out = self.send(b"m UID SEARCH RETURN (UPDATE MIN) ALL")
        self.assertIn(b'* ESEARCH (TAG "m") UID MIN 1\r\n', out)
        self.add("a", "b")
        self.assertIn(b'* ESEARCH (TAG "m") UID ADDTO (0 4:5)\r\n', self.send(b"n NOOP"))

    def test_partialAndUpdate(self):
        """RFC 5267 4.4 / RFC 9394: PARTIAL pages the first answer; the updates cover every match."""
        self.selectWith(6)
        out = self.send(b"p UID SEARCH RETURN (UPDATE PARTIAL 1:2) UNFLAGGED")
        self.assertIn(b'* ESEARCH (TAG "p") UID PARTIAL (1:2 1:2)\r\n', out)
        out = self.send(b"s STORE 5 +FLAGS.SILENT (\\Flagged)")
        self.assertIn(b'* ESEARCH (TAG "p") UID REMOVEFROM (0 5)\r\n', out)
        out = self.send(b"q SEARCH RETURN (CONTEXT PARTIAL 2:3) ALL")
        self.assertIn(b'* ESEARCH (TAG "q") PARTIAL (2:3 2:3)\r\n', out)

    def test_tagReuse(self):
        """RFC 5267 4.3: UPDATE with the tag of a context still updated is BAD; after CANCELUPDATE the tag is free."""
        self.selectWith(2)
        self.send(b"B01 UID SEARCH RETURN (UPDATE) ALL")
        out = self.send(b"B01 UID SEARCH RETURN (UPDATE) DELETED")
        self.assertIn(b"B01 BAD Tag reuse", out)
        self.assertEqual(esearch(out), [])
        # Without UPDATE the tag is an ordinary (if unwise) tag.
        self.assertIn(b"B01 OK", self.send(b"B01 UID SEARCH RETURN (COUNT) ALL"))
        self.assertIn(b"c OK", self.send(b'c CANCELUPDATE "B01"'))
        self.assertIn(b"B01 OK", self.send(b"B01 UID SEARCH RETURN (UPDATE) DELETED"))

    def test_cancelUpdate(self):
        """RFC 5267 4.3.5: after CANCELUPDATE "B01" the context gets no more updates; the others still do."""
        self.selectWith(2)
        self.send(b"B01 UID SEARCH RETURN (UPDATE) ALL")
        self.send(b"B02 UID SEARCH RETURN (UPDATE) ALL")
        self.send(b"B03 UID SEARCH RETURN (UPDATE) ALL")
        self.assertEqual(self.send(b'B04 CANCELUPDATE "B01"'), b"B04 OK CANCELUPDATE completed\r\n")
        self.assertIn(b"B05 OK", self.send(b'B05 CANCELUPDATE "B02" B03'))
        self.send(b"B06 UID SEARCH RETURN (UPDATE) ALL")
        self.add("x")
        self.assertEqual(esearch(self.send(b"n NOOP")), [b'* ESEARCH (TAG "B06") UID ADDTO (0 3)'])

    def test_cancelUpdateErrors(self):
        """CANCELUPDATE of an unknown tag is NO, without a tag BAD, and outside the selected state BAD."""
        self.login()
        self.assertIn(b"a BAD", self.send(b'a CANCELUPDATE "x"'))
        self.send(b"s SELECT INBOX")
        self.assertIn(b"b NO", self.send(b'b CANCELUPDATE "nope"'))
        self.assertIn(b"c BAD", self.send(b"c CANCELUPDATE"))
        self.assertIn(b"d BAD", self.send(b"d CANCELUPDATE (x)"))
        self.assertIn(b"e OK", self.send(b"e NOOP"))

    def test_tooManyContexts(self):
        """RFC 5267 4.3.1: past the limit the answer comes as asked, then * NO [NOUPDATE "B02"], then OK."""
        self.patch(context, "MAX_CONTEXTS", 1)
        self.selectWith(2)
        self.send(b"x STORE 1 +FLAGS (\\Deleted)")
        self.assertIn(b"B01 OK", self.send(b"B01 UID SEARCH RETURN (UPDATE COUNT) DELETED KEYWORD $Junk"))
        out = self.send(b"B02 UID SEARCH RETURN (UPDATE COUNT) DELETED")
        self.assertTrue(re.search(
            rb'\* ESEARCH \(TAG "B02"\) UID COUNT 1\r\n\* NO \[NOUPDATE "B02"\] [^\r]*\r\nB02 OK', out), out)
        self.add("x", flags=("\\Deleted",))
        self.assertEqual(esearch(self.send(b"n NOOP")), [])

    def test_keysNotUpdatable(self):
        """Message numbers, *, and OLDER/YOUNGER cannot be kept updated: NO [NOUPDATE] with the answer."""
        self.selectWith(3)
        for i, program in enumerate((b"1:2", b"UID 2:*", b"OLDER 60", b"OR SEEN NOT 2")):
            tag = b"k%d" % (i,)
            out = self.send(tag + b" UID SEARCH RETURN (UPDATE COUNT) " + program)
            self.assertIn(b'* NO [NOUPDATE "' + tag + b'"]', out)
            self.assertIn(b'* ESEARCH (TAG "' + tag + b'") UID COUNT', out)
            self.assertIn(tag + b" OK", out)
        out = self.send(b"u UID SEARCH RETURN (UPDATE COUNT) UID 1:2 SEEN")
        self.assertNotIn(b"NOUPDATE", out)

    def test_endsWithTheMailbox(self):
        """Contexts end when the mailbox is no longer selected (SELECT again, UNSELECT)."""
        self.selectWith(2)
        self.send(b"B01 UID SEARCH RETURN (UPDATE) ALL")
        self.send(b"s SELECT INBOX")
        self.add("x")
        self.assertEqual(esearch(self.send(b"n NOOP")), [])
        self.assertIn(b"B01 OK", self.send(b"B01 UID SEARCH RETURN (UPDATE) ALL"))
        self.send(b"u UNSELECT")
        self.assertIn(b"c BAD", self.send(b'c CANCELUPDATE "B01"'))

    def test_qresyncVanished(self):
        """With QRESYNC the REMOVEFROM comes before VANISHED."""
        self.login()
        self.send(b"e ENABLE QRESYNC")
        for _ in range(3):
            append(self)
        self.send(b"s SELECT INBOX")
        self.send(b"B01 UID SEARCH RETURN (UPDATE) ALL")
        self.send(b"x STORE 2 +FLAGS.SILENT (\\Deleted)")
        out = self.send(b"y EXPUNGE")
        self.assertIn(b'* ESEARCH (TAG "B01") UID REMOVEFROM (0 2)\r\n* VANISHED 2\r\n', out)


class MatchingTests(ContextTestMixin, unittest.TestCase):
    def test_indexAnswersManyChanges(self):
        """Many changed messages and a program the index answers: one index query, no message read."""
        self.patch(context, "INDEX_AT", 3)
        self.selectWith(4)
        self.send(b"s STORE 2 +FLAGS (\\Flagged)")
        view = self.session.view
        self.patch(self.mailbox, "messages", lambda *a, **kw: self.fail("messages read"))
        program = searchModule.parseSearch("UNFLAGGED LARGER 1")
        self.assertIsNone(program.rest)
        self.assertEqual(context.matchingUids(view, program, [1, 2, 3, 4, 9]), [1, 3, 4])
        self.assertEqual(context.matchingUids(view, searchModule.parseSearch("ALL"), [4, 2, 9]), [2, 4])

    def test_fewChangesMatchedOneByOne(self):
        """Below the threshold, and for keys the index cannot answer, messages are matched one by one."""
        self.selectWith(4)
        self.send(b"s STORE 2 +FLAGS (\\Flagged)")
        view = self.session.view
        self.patch(self.mailbox, "search", lambda *a, **kw: self.fail("index searched"))
        program = searchModule.parseSearch("UNFLAGGED")
        self.assertEqual(context.matchingUids(view, program, [1, 2, 3]), [1, 3])
        self.assertEqual(context.matchingUids(view, searchModule.parseSearch("RECENT FLAGGED"), [1, 2]), [2])


class ContextSortTests(ContextTestMixin, unittest.TestCase):
    def fill(self, *subjects):
        self.login()
        self.mailbox = self.session.account.mailStore.getMailbox("INBOX")
        self.add(*subjects)
        self.send(b"s SELECT INBOX")

    def test_addToPositions(self):
        """RFC 5267 4.3.3: new messages sorting first are one pair at position 1, in sort order (ADDTO (1 3:5))."""
        self.fill("d", "e")
        out = self.send(b"C01 UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 ALL")
        self.assertIn(b'* ESEARCH (TAG "C01") UID ALL 1:2\r\n', out)
        self.add("a", "b", "c")
        self.assertIn(b'* ESEARCH (TAG "C01") UID ADDTO (1 3:5)\r\n', self.send(b"n NOOP"))
        # Apart: each run at its final position.
        self.add("bb", "z")
        self.assertIn(b'* ESEARCH (TAG "C01") UID ADDTO (3 6 7 7)\r\n', self.send(b"n NOOP"))

    def test_removeFromPositions(self):
        """RFC 5267 4.3.4: REMOVEFROM gives the position of each run as the pairs before it leave it."""
        self.fill("e", "a", "d", "b", "c")  # sorted: a(2) b(4) c(5) d(3) e(1)
        self.send(b"C01 UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 UNDELETED")
        out = self.send(b"x STORE 4:5 +FLAGS (\\Deleted)")  # UIDs 4 (b), 5 (c)
        self.assertIn(b'* ESEARCH (TAG "C01") UID REMOVEFROM (2 4:5)\r\n', out)
        out = self.send(b"y STORE 1 +FLAGS (\\Deleted)")  # UID 1 (e), now third: a d e
        self.assertIn(b'* ESEARCH (TAG "C01") UID REMOVEFROM (3 1)\r\n', out)

    def test_removeFromRuns(self):
        """Expunged messages leave a SORT context as runs: REMOVEFROM (2 4:5 3 1) before the EXPUNGEs."""
        self.fill("e", "a", "d", "b", "c")  # sorted: a(2) b(4) c(5) d(3) e(1)
        self.send(b"C01 UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 ALL")
        self.send(b"x STORE 1,4:5 +FLAGS.SILENT (\\Deleted)")
        out = self.send(b"y EXPUNGE")
        self.assertIn(b'* ESEARCH (TAG "C01") UID REMOVEFROM (2 4:5 3 1)\r\n* 5 EXPUNGE\r\n', out)

    def test_reverseAndTies(self):
        """A REVERSE sort context places new messages as SORT would: ties in mailbox order."""
        self.fill("b", "a")
        self.send(b"C01 SORT RETURN (UPDATE ALL) (REVERSE SUBJECT) UTF-8 ALL")
        self.add("b", "c")
        self.assertIn(b'* ESEARCH (TAG "C01") ADDTO (1 4 3 3)\r\n', self.send(b"n NOOP"))
        out = self.send(b"C02 SORT RETURN (ALL) (REVERSE SUBJECT) UTF-8 ALL")
        self.assertIn(b'* ESEARCH (TAG "C02") ALL 4,1,3,2\r\n', out)

    def test_sortNoUpdate(self):
        """SORT RETURN (UPDATE) over message numbers is answered with NO [NOUPDATE]."""
        self.fill("a", "b")
        out = self.send(b"C01 SORT RETURN (UPDATE COUNT) (SUBJECT) UTF-8 1")
        self.assertIn(b'* ESEARCH (TAG "C01") COUNT 1\r\n* NO [NOUPDATE "C01"]', out)


class ContextEndToEndTests(LoopbackIMAPMixin, unittest.TestCase):
    def test_twoSessions(self):
        """imaplib: one session appends, the other gets ADDTO on NOOP and in IDLE, then REMOVEFROM before EXPUNGE."""
        def client():
            watcher = imaplib.IMAP4("127.0.0.1", self.port)
            writer = imaplib.IMAP4("127.0.0.1", self.port)
            for imap in (watcher, writer):
                imap.login("demo", PASSWORD)
                imap.select("INBOX")
            self.assertIn("CONTEXT=SEARCH", watcher.capabilities)
            watcher.sock.settimeout(30)
            search = watcher._command("UID", "SEARCH", "RETURN", "(UPDATE)", "SUBJECT", "hello")
            self.assertEqual(watcher._command_complete("UID", search)[0], "OK")
            head = b'(TAG "' + search + b'") UID '
            # Nothing matches yet: an ESEARCH with no ALL.
            self.assertEqual(watcher.untagged_responses.pop("ESEARCH"), [head.rstrip()])
            writer.append("INBOX", None, None, b"Subject: hello\r\n\r\nbody\r\n")
            writer.append("INBOX", None, None, b"Subject: other\r\n\r\nbody\r\n")
            watcher.noop()
            self.assertEqual(watcher.untagged_responses.pop("ESEARCH"), [head + b"ADDTO (0 1)"])
            # In IDLE the update comes by itself, after the EXISTS.
            idle = watcher._new_tag()
            watcher.send(idle + b" IDLE\r\n")
            self.assertTrue(watcher.readline().startswith(b"+"))
            writer.append("INBOX", None, None, b"Subject: hello again\r\n\r\nbody\r\n")
            lines = []
            while not lines or not lines[-1].startswith(b"* ESEARCH"):
                lines.append(watcher.readline())
            self.assertEqual(lines[-1], b"* ESEARCH " + head + b"ADDTO (0 3)\r\n")
            self.assertIn(b"* 3 EXISTS\r\n", lines)
            watcher.send(b"DONE\r\n")
            while not watcher.readline().startswith(idle + b" OK"):
                pass
            writer.store("1", "+FLAGS", "(\\Deleted)")
            writer.expunge()
            watcher.noop()
            self.assertEqual(watcher.untagged_responses.pop("ESEARCH"), [head + b"REMOVEFROM (0 1)"])
            for imap in (watcher, writer):
                imap.logout()
        return deferToThread(client)


def _expand(text):
    """
    The numbers of a sequence set, in the order written (ESORT's
    order-keeping sets).
    """
    numbers = []
    for part in text.split(b","):
        lo, _, hi = part.partition(b":")
        lo, hi = int(lo), int(hi or lo)
        numbers.extend(range(lo, hi + 1) if lo <= hi else range(lo, hi - 1, -1))
    return numbers


class ClientContext:
    """
    What a client keeps of a context: the result list, changed by ADDTO,
    REMOVEFROM and (for message numbers) EXPUNGE as RFC 5267 4.3 says.
    """

    def __init__(self, test, tag, numbers, uid):
        self.test, self.tag, self.items, self.uid = test, tag, list(numbers), uid

    def apply(self, line):
        if line.startswith(b'* ESEARCH (TAG "%s")' % (self.tag,)):
            for name, payload in re.findall(rb"(ADDTO|REMOVEFROM) \(([^)]*)\)", line):
                words = payload.split()
                for i in range(0, len(words), 2):
                    position, numbers = int(words[i]), _expand(words[i + 1])
                    if name == b"ADDTO":
                        at = len(self.items) if position == 0 else position - 1
                        self.items[at:at] = numbers
                        if position == 0:
                            self.items.sort()
                    elif position == 0:
                        for n in numbers:
                            self.items.remove(n)
                    else:
                        self.test.assertEqual(self.items[position - 1:position - 1 + len(numbers)], numbers)
                        del self.items[position - 1:position - 1 + len(numbers)]
        match = re.fullmatch(rb"\* (\d+) EXPUNGE", line)
        if match and not self.uid:
            n = int(match.group(1))
            self.test.assertNotIn(n, self.items, "REMOVEFROM must come before the EXPUNGE")
            self.items = [m - 1 if m > n else m for m in self.items]


class ContextConsistencyTests(ContextTestMixin, unittest.TestCase):
    def test_randomChanges(self):
        """Through random appends, flag changes and expunges (own and another session's), every context kept by its updates equals a fresh SEARCH or SORT."""
        rng = random.Random(5267)

        def some(exists):
            return b",".join(b"%d" % (n,) for n in rng.sample(range(1, exists + 1), min(exists, rng.randint(1, 3))))
        self.selectWith(0)
        peer = self.peer()
        commands = {
            b"u1": b"UID SEARCH RETURN (UPDATE) FLAGGED",
            b"u2": b"SEARCH RETURN (UPDATE) FLAGGED",
            b"u3": b"UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 UNFLAGGED",
            b"u4": b"SORT RETURN (UPDATE) (REVERSE SUBJECT ARRIVAL) UTF-8 UNFLAGGED",
        }
        clients = {}
        for _ in range(6):
            self.add(rng.choice("abc"))
        self.send(b"n NOOP")
        for tag, text in commands.items():
            out = self.send(tag + b" " + text)
            match = re.search(rb"ALL (\S+)", out)
            clients[tag] = ClientContext(self, tag, _expand(match.group(1)) if match else [], b"UID" in text[:4])
        for step in range(80):
            actor = rng.choice((self, peer))
            exists = len(self.session.view.uids)
            op = rng.random()
            out = b""
            if op < 0.3 or exists < 3:
                for _ in range(rng.randint(1, 3)):
                    self.add(rng.choice("abcd"), flags=rng.choice(((), ("\\Flagged",))))
            elif op < 0.75:
                out += actor.send(b"x STORE %s %sFLAGS (\\Flagged)" % (some(exists), rng.choice((b"+", b"-"))))
            else:
                out += actor.send(b"x STORE %s +FLAGS.SILENT (\\Deleted)" % (some(exists),))
                out += actor.send(b"y EXPUNGE")
            if actor is peer:
                out = b""
                if rng.random() < 0.5:
                    # EXPUNGE held back by a SEARCH: REMOVEFROM waits with it.
                    out += self.send(b"h SEARCH ALL")
                    self.assertNotIn(b" EXPUNGE\r\n", out)
            out += self.send(b"n NOOP")
            for line in out.split(b"\r\n"):
                for client in clients.values():
                    client.apply(line)
            for tag, text in commands.items():
                fresh = self.send(b"f " + text.replace(b"UPDATE", b"ALL"))
                match = re.search(rb"ALL (\S+)", fresh)
                self.assertEqual(clients[tag].items, _expand(match.group(1)) if match else [],
                                 "step %d, context %s" % (step, tag))
