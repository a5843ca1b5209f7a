# -*- test-case-name: tests.test_imap_sort -*-
"""
SORT, SORT=DISPLAY, ESORT (RFC 5256, 5957, 5267) and THREAD=ORDEREDSUBJECT,
THREAD=REFERENCES (RFC 5256): the keys and algorithms, the commands over a
L{StringTransport}, and imapclient's sort() and thread() over loopback.
"""

import datetime
import io

from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from gateway.imap import sort, thread
from gateway.interfaces import IIdleRelease
from tests.support import PASSWORD, LoopbackIMAPMixin, makeTestContext
from tests.test_imap_acl import Peer
from tests.test_imap_mailbox import MESSAGE, append
from tests.test_imap_protocol import IMAPTestMixin
from tests.test_imap_selected import SelectedTestMixin


def message(subject="x", date=None, sender="a@example.test", to="b@example.test", cc=None,
            messageId=None, references=None, inReplyTo=None, body=b"body\r\n"):
    lines = ["Subject: " + subject, "From: " + sender, "To: " + to]
    if cc:
        lines.append("Cc: " + cc)
    if date:
        lines.append("Date: " + date)
    if messageId:
        lines.append("Message-ID: <%s>" % (messageId,))
    if references:
        lines.append("References: " + " ".join("<%s>" % (r,) for r in references))
    if inReplyTo:
        lines.append("In-Reply-To: <%s>" % (inReplyTo,))
    return "\r\n".join(lines).encode("utf-8") + b"\r\n\r\n" + body


def day(n, hour=12):
    """
    An RFC 5322 date on day C{n} of March 2000.
    """
    return "%s, %d Mar 2000 %02d:00:00 +0000" % (
        ("Wed", "Thu", "Fri", "Sat", "Sun", "Mon", "Tue")[(n - 1) % 7], n, hour)


class BaseSubjectTests(unittest.TestCase):
    def test_baseSubject(self):
        """The base subject drops reply/forward markers, blobs, (fwd) trailers and [fwd: ...] wrappers."""
        cases = [
            ("Re: hello", "hello", True),
            ("RE: [list] Re[2]: Fwd: hello (fwd)", "hello", True),
            ("[fwd: Re: hello]", "hello", True),
            ("[list] hello", "hello", False),
            ("[list]", "[list]", False),
            ("  Re:   Re :hi", "hi", True),
            ("Fw: [x] [y] test  (fwd) (FWD) ", "test", True),
            ("hello\t  world", "hello world", False),
            ("Antwort: x", "Antwort: x", False),
            ("", "", False),
        ]
        for subject, base, marked in cases:
            self.assertEqual(sort.baseSubject(subject), (base, marked), subject)

    def test_criteria(self):
        """Sort criteria: known keys, REVERSE applies to one key; bad lists raise ValueError."""
        criteria = sort.parseCriteria(["REVERSE", "date", "SUBJECT"])
        self.assertEqual([(c.key, c.reverse) for c in criteria], [("DATE", True), ("SUBJECT", False)])
        for bad in ([], ["REVERSE"], ["NAME"], ["REVERSE", "REVERSE", "DATE"], [["DATE"]]):
            self.assertRaises(ValueError, sort.parseCriteria, bad)


class _Mailbox:
    uidValidity = 7


class KeyOrderTests(unittest.TestCase):
    def test_orderFollowsNewKeys(self):
        """KeyCache.order lists every kept UID by (value, uid), and takes in keys added since, above or below."""
        cache = sort.KeyCache()
        mailbox = _Mailbox()
        values = cache.values(mailbox, "SUBJECT")
        values.update({1: "b", 2: "a", 3: "b", 5: "a"})
        self.assertEqual(cache.order(mailbox, "SUBJECT"), [2, 5, 1, 3])
        values.update({7: "a", 6: "a", 9: "0"})
        self.assertEqual(cache.order(mailbox, "SUBJECT"), [9, 2, 5, 6, 7, 1, 3])
        values[4] = "a"
        self.assertEqual(cache.order(mailbox, "SUBJECT"), [9, 2, 4, 5, 6, 7, 1, 3])

    def test_releaseIdle(self):
        """The keys of a mailbox not sorted between two releaseIdle calls are let go; a sorted one's stay."""
        cache = sort.KeyCache()
        verifyObject(IIdleRelease, cache)
        idle, busy = _Mailbox(), _Mailbox()
        cache.values(idle, "DATE")[1] = 5
        cache.values(busy, "DATE")[1] = 6
        self.assertEqual(cache.releaseIdle(), 0)
        self.assertEqual(cache.values(busy, "DATE"), {1: 6})
        self.assertEqual(cache.describe(), ["sort keys: of 2 mailboxes, 2 values"])
        self.assertEqual(cache.releaseIdle(), 1)
        self.assertEqual(cache.values(busy, "DATE"), {1: 6})
        self.assertEqual(cache.values(idle, "DATE"), {})

    def test_sortUidsAgreesWithStableSorts(self):
        """sortUids through the kept order gives what stable sorts of the UIDs give, REVERSE ties in mailbox order."""
        import random
        rng = random.Random(5256)
        cache = sort.KeyCache()
        mailbox = _Mailbox()
        allUids = list(range(1, 400))
        values = {}
        for name in ("DATE", "SUBJECT"):
            values[name] = cache.values(mailbox, name)
            values[name].update({uid: rng.choice("abcde") if name == "SUBJECT" else rng.randint(1, 9)
                                 for uid in allUids})
        for criteria in (["DATE"], ["REVERSE", "DATE"], ["SUBJECT"], ["REVERSE", "SUBJECT"],
                         ["SUBJECT", "REVERSE", "DATE"]):
            parsed = sort.parseCriteria(criteria)
            for uids in (allUids, allUids[::3], allUids[:5]):
                expected = sorted(uids, key=lambda u: tuple(
                    (-1 if c.reverse else 1) * (ord(values[c.key][u]) if c.key == "SUBJECT" else values[c.key][u])
                    for c in parsed) + (u,))
                got = sort.sortUids(uids, parsed, values, lambda name: cache.order(mailbox, name))
                self.assertEqual(got, expected, (criteria, len(uids)))


class SortCommandTests(SelectedTestMixin, unittest.TestCase):
    def fill(self, messages):
        self.login()
        mailbox = self.session.account.mailStore.getMailbox("INBOX")
        for i, data in enumerate(messages):
            mailbox.appendMessage(data, (), datetime.datetime(2001, 1, 1 + (i * 7) % 28, tzinfo=datetime.timezone.utc))
        self.send(b"s SELECT INBOX")
        self.mailbox = mailbox

    def test_rfcExamples(self):
        """RFC 5256's SORT examples: (SUBJECT REVERSE DATE) gives 5 3 4 1 2; nothing found is an empty SORT."""
        self.fill([
            message("Re: c", day(5)), message("c", day(4)), message("b", day(3)),
            message("[list] b", day(2)), message("a", day(1)),
        ])
        out = self.send(b"a SORT (SUBJECT REVERSE DATE) UTF-8 ALL")
        self.assertIn(b"* SORT 5 3 4 1 2\r\na OK SORT completed\r\n", out)
        out = self.send(b'b SORT (SUBJECT) US-ASCII TEXT "not in mailbox"')
        self.assertIn(b"* SORT\r\nb OK SORT completed\r\n", out)

    def test_keys(self):
        """ARRIVAL, DATE, SIZE, FROM, TO, CC, DISPLAYFROM, DISPLAYTO and REVERSE sort as RFC 5256/5957 say."""
        self.fill([
            message("one", day(3), sender="Zed <alice@example.test>", to="carol@example.test",
                    cc="bob@x.test", body=b"x" * 300),
            message("two", day(1), sender="bob@example.test", to="Al <zack@example.test>", body=b"x"),
            message("three", None, sender="Carl <Carl@example.test>", to="BOB@example.test",
                    body=b"x" * 100),
        ])
        self.assertIn(b"* SORT 1 2 3\r\n", self.send(b"a SORT (ARRIVAL) UTF-8 ALL"))
        # Message 3 has no Date: its internal date (2001) counts.
        self.assertIn(b"* SORT 2 1 3\r\n", self.send(b"b SORT (DATE) UTF-8 ALL"))
        self.assertIn(b"* SORT 2 3 1\r\n", self.send(b"c SORT (SIZE) UTF-8 ALL"))
        self.assertIn(b"* SORT 1 3 2\r\n", self.send(b"d SORT (REVERSE SIZE) UTF-8 ALL"))
        self.assertIn(b"* SORT 1 2 3\r\n", self.send(b"e SORT (FROM) UTF-8 ALL"))
        self.assertIn(b"* SORT 3 1 2\r\n", self.send(b"f SORT (TO) UTF-8 ALL"))
        self.assertIn(b"* SORT 2 3 1\r\n", self.send(b"g SORT (CC) UTF-8 ALL"))
        self.assertIn(b"* SORT 2 3 1\r\n", self.send(b"h SORT (DISPLAYFROM) UTF-8 ALL"))
        self.assertIn(b"* SORT 2 3 1\r\n", self.send(b"i SORT (DISPLAYTO) UTF-8 ALL"))
        self.assertIn(b"* SORT 1 3 2\r\n", self.send(b"j UID SORT (SUBJECT) UTF-8 ALL"))
        self.assertIn(b"* SORT 1 3\r\n", self.send(b"k SORT (ARRIVAL) UTF-8 LARGER 140"))

    def test_groupAddresses(self):
        """A group sorts by its name, the first address of the envelope (imaptest's sort-addresses, sort-display-to)."""
        self.fill([
            message("1", to="foo bar <a@b.c>", cc="user2@domain2.org (foo bar)"),
            message("2", to="b@c.d", cc="user2: blah@domain1.org;"),
            message("3", to="a: xx@xx.org, yy@yy.org;", cc="user1@domain1.org"),
            message("4", to="z: aa@aa.org, bb@bb.org;"),
            message("5", to="empty:;"),
        ])
        self.assertIn(b"* SORT 4 5 3 1 2\r\n", self.send(b"a SORT (CC) US-ASCII ALL"))
        self.assertIn(b"* SORT 3 2 5 1 4\r\n", self.send(b"b SORT (DISPLAYTO) US-ASCII ALL"))
        self.assertIn(b"* SORT 1 3 2 5 4\r\n", self.send(b"c SORT (TO) US-ASCII ALL"))

    def test_truncatedHeaders(self):
        """A header block longer than the index keeps is read from the message file for its keys."""
        filler = b"X-Filler: " + b"x" * 998 + b"\r\n"
        big = filler * 400 + b"Subject: zzz\r\nMessage-ID: <big@x>\r\n\r\nbody\r\n"
        # From a file, as a large APPEND arrives: the index keeps 256 KB of its header.
        self.fill([message("mmm"), io.BytesIO(big), message("Re: aaa", references=["big@x"], messageId="r@x")])
        self.assertLess(len(self.mailbox.messages([2])[0].headers), len(big) - 10)
        self.assertIn(b"* SORT 3 1 2\r\n", self.send(b"a SORT (SUBJECT) UTF-8 ALL"))
        self.assertIn(b"* THREAD (1)(2 3)\r\n", self.send(b"b THREAD REFERENCES UTF-8 ALL"))

    def test_unicodeCasemap(self):
        """Subjects compare with i;unicode-casemap: accents decomposed, case ignored."""
        self.fill([message("zebra"), message("=?utf-8?q?=C3=89clair?="), message("eclair"), message("Ecl")])
        self.assertIn(b"* SORT 4 3 2 1\r\n", self.send(b"a SORT (SUBJECT) UTF-8 ALL"))

    def test_messageGoneBeforeItsKeys(self):
        """A message the index no longer has when its keys are read is left out of SORT and THREAD, no error."""
        self.fill([message("b"), message("c"), message("a")])
        original = self.mailbox.messages
        self.patch(self.mailbox, "messages", lambda uids, headers=True: [
            info for info in original(uids, headers) if info.uid != 2])
        self.assertIn(b"* SORT 3 1\r\na OK", self.send(b"a SORT (SUBJECT) UTF-8 ALL"))
        self.assertIn(b"* THREAD (1)(3)\r\nb OK", self.send(b"b THREAD ORDEREDSUBJECT UTF-8 ALL"))

    def test_keysLetGoWhileSorting(self):
        """A SORT whose kept keys the cache lets go before it sorts (other mailboxes sorted) still sorts them all."""
        self.fill([message("b"), message("c"), message("a")])
        cache = sort.KeyCache(size=1)
        self.patch(sort, "keyCache", cache)
        real = sort.sortUids

        def evictFirst(*args):
            cache.values(_Mailbox(), "SUBJECT")  # another mailbox sorted meanwhile
            return real(*args)
        self.patch(sort, "sortUids", evictFirst)
        self.assertIn(b"* SORT 3 1 2\r\n", self.send(b"a SORT (SUBJECT) UTF-8 ALL"))

    def test_tiesKeepMailboxOrder(self):
        """Messages equal on every key stay in mailbox order, also under REVERSE."""
        self.fill([message("same", day(1))] * 3)
        self.assertIn(b"* SORT 1 2 3\r\n", self.send(b"a SORT (REVERSE SUBJECT) UTF-8 ALL"))

    def test_keysKeptBetweenSorts(self):
        """A second SORT reads no header block again; a message added since is read and sorted in."""
        self.fill([message("b"), message("a")])
        self.assertIn(b"* SORT 2 1\r\n", self.send(b"a SORT (SUBJECT) UTF-8 ALL"))
        reads = []
        original = self.mailbox.messages
        self.patch(self.mailbox, "messages", lambda uids, headers=True: (reads.append(list(uids)),
                                                                          original(uids, headers))[1])
        self.assertIn(b"* SORT 2 1\r\n", self.send(b"b SORT (SUBJECT) UTF-8 ALL"))
        self.assertEqual(reads, [])
        self.mailbox.appendMessage(message("0"))
        self.send(b"n NOOP")
        self.assertIn(b"* SORT 3 2 1\r\n", self.send(b"c SORT (SUBJECT) UTF-8 ALL"))
        self.assertEqual(reads, [[3]])

    def test_errors(self):
        """Bad criteria or search keys are BAD, an unknown charset is NO [BADCHARSET], and the session goes on."""
        self.fill([message("a")])
        self.assertIn(b"a BAD", self.send(b"a SORT (NAME) UTF-8 ALL"))
        self.assertIn(b"b BAD", self.send(b"b SORT () UTF-8 ALL"))
        self.assertIn(b"c BAD", self.send(b"c SORT (DATE) UTF-8"))
        self.assertIn(b"d BAD", self.send(b"d SORT (DATE) UTF-8 FROBNICATE"))
        self.assertIn(b"e NO [BADCHARSET", self.send(b"e SORT (DATE) KOI8-R ALL"))
        self.assertIn(b"f BAD", self.send(b"f THREAD LONGEST UTF-8 ALL"))
        self.assertIn(b"f2 BAD", self.send(b"f2 SORT (DATE) UTF-8 RETURN (ALL) ALL"))
        self.assertIn(b"g OK", self.send(b"g SORT (DATE) UTF-8 ALL"))

    def test_capabilities(self):
        """SORT, SORT=DISPLAY, ESORT and both THREAD algorithms are advertised."""
        self.login()
        out = self.send(b"a CAPABILITY")
        for name in (b"SORT", b"SORT=DISPLAY", b"ESORT", b"THREAD=ORDEREDSUBJECT", b"THREAD=REFERENCES"):
            self.assertIn(b" " + name + b" ", out.split(b"\r\n")[0] + b" ")

    def test_esort(self):
        """SORT RETURN (RFC 5267): MIN/MAX in sort order, COUNT, ALL as an order-keeping set, UID."""
        self.fill([message("c"), message("a"), message("b"), message("d"), message("e")])
        out = self.send(b"a SORT RETURN (MIN MAX COUNT) (SUBJECT) UTF-8 ALL")
        self.assertIn(b'* ESEARCH (TAG "a") MIN 2 MAX 5 COUNT 5\r\n', out)
        out = self.send(b"b UID SORT RETURN (ALL) (SUBJECT) UTF-8 ALL")
        self.assertIn(b'* ESEARCH (TAG "b") UID ALL 2:3,1,4:5\r\n', out)
        out = self.send(b"c SORT RETURN () (REVERSE SUBJECT) UTF-8 ALL")
        self.assertIn(b'* ESEARCH (TAG "c") ALL 5,4,1,3,2\r\n', out)
        out = self.send(b"d SORT RETURN (COUNT) (SUBJECT) UTF-8 SUBJECT nothing")
        self.assertIn(b'* ESEARCH (TAG "d") COUNT 0\r\n', out)


class ThreadTests(SelectedTestMixin, unittest.TestCase):
    fill = SortCommandTests.fill

    def test_references(self):
        """THREAD REFERENCES builds RFC 5256's example shape (3 6 (4 23)(44 7 96)), here numbered 1..7."""
        self.fill([
            message("topic", day(1), messageId="m3"),
            message("Re: topic", day(2), messageId="m6", references=["m3"]),
            message("Re: topic", day(3), messageId="m4", references=["m3", "m6"]),
            message("Re: topic", day(4), messageId="m44", inReplyTo="m6"),
            message("Re: topic", day(5), messageId="m23", references=["m3", "m6", "m4"]),
            message("Re: topic", day(6), messageId="m7", references=["m6", "m44"]),
            message("Re: topic", day(7), messageId="m96", references=["m44", "m7"]),
        ])
        out = self.send(b"a THREAD REFERENCES UTF-8 ALL")
        self.assertIn(b"* THREAD (1 2 (3 5)(4 6 7))\r\na OK THREAD completed\r\n", out)

    def test_answerKeptUntilTheMessagesChange(self):
        """A THREAD over the same messages with the same numbers answers what it answered, without threading again;
        a new message, an expunge, another search program or UID THREAD thread anew."""
        from gateway.imap import thread as threadModule

        self.fill([
            message("topic", day(1), messageId="m1"),
            message("Re: topic", day(2), messageId="m2", references=["m1"]),
            message("other", day(3), messageId="m3"),
        ])
        calls = []
        original = threadModule.references
        self.patch(threadModule, "references", lambda messages: calls.append(len(messages)) or original(messages))
        self.assertIn(b"* THREAD (1 2)(3)\r\n", self.send(b"a THREAD REFERENCES UTF-8 ALL"))
        self.assertIn(b"* THREAD (1 2)(3)\r\n", self.send(b"b THREAD REFERENCES UTF-8 ALL"))
        self.assertEqual(calls, [3])
        self.assertIn(b"* THREAD (1 2)(3)\r\n", self.send(b"c UID THREAD REFERENCES UTF-8 ALL"))
        self.assertIn(b"* THREAD (1 2)\r\n", self.send(b"d THREAD REFERENCES UTF-8 SUBJECT topic"))
        self.assertEqual(calls, [3, 3, 2])
        self.mailbox.appendMessage(message("Re: other", day(4), messageId="m4", references=["m3"]))
        self.send(b"n NOOP")
        self.assertIn(b"* THREAD (1 2)(3 4)\r\n", self.send(b"e THREAD REFERENCES UTF-8 ALL"))
        self.send(b"f STORE 1 +FLAGS (\\Deleted)")
        self.send(b"g EXPUNGE")
        self.assertIn(b"* THREAD (1)(2 3)\r\n", self.send(b"h THREAD REFERENCES UTF-8 ALL"))
        self.assertEqual(calls, [3, 3, 2, 4, 3])

    def test_referencesDummyAndSubjects(self):
        """Children of a missing parent share a dummy ((a)(b)); roots with one base subject are gathered."""
        self.fill([
            message("lost", day(1), messageId="a", references=["gone"]),
            message("other", day(2), messageId="b"),
            message("lost", day(3), messageId="c", references=["gone"]),
            message("Re: other", day(4), messageId="d"),
            message("Re: other", day(5), messageId="e", references=["nowhere"]),
        ])
        out = self.send(b"a THREAD REFERENCES UTF-8 ALL")
        self.assertIn(b"* THREAD ((1)(3))(2 (4)(5))\r\n", out)

    def test_referencesLoopBreaksOldParent(self):
        """When a message's last reference would make a loop, its old parent link is still broken (RFC 5256 1.C, imaptest's thread)."""
        self.fill([
            message("", day(3), messageId="a@b"),
            message("", day(1), messageId="b@b", references=["a@b", "c@b"]),
            message("", day(2), messageId="c@b", references=["b@b"]),
        ])
        out = self.send(b"a THREAD REFERENCES US-ASCII ALL")
        self.assertIn(b"* THREAD (3 2)(1)\r\n", out)

    def test_referencesLoopAndDuplicates(self):
        """Reference loops and duplicate Message-IDs do not lose or repeat messages."""
        self.fill([
            message("x", day(1), messageId="p", references=["q"]),
            message("y", day(2), messageId="q", references=["p"]),
            message("z", day(3), messageId="p"),
            message("w", day(4)),
        ])
        out = self.send(b"a THREAD REFERENCES UTF-8 ALL")
        line = out.split(b"\r\n")[0]
        numbers = sorted(int(n) for n in line[len(b"* THREAD "):].replace(b"(", b" ").replace(b")", b" ").split())
        self.assertEqual(numbers, [1, 2, 3, 4])

    def test_orderedSubject(self):
        """THREAD ORDEREDSUBJECT groups by base subject, the first by date the parent of the rest."""
        self.fill([
            message("b", day(2)), message("Re: a", day(3)), message("a", day(1)),
            message("c", day(4)), message("Fwd: a", day(5)), message("Re: c", day(6)),
        ])
        out = self.send(b"a THREAD ORDEREDSUBJECT UTF-8 ALL")
        self.assertIn(b"* THREAD (3 (2)(5))(1)(4 6)\r\n", out)
        out = self.send(b'b UID THREAD ORDEREDSUBJECT US-ASCII TEXT "gewp"')
        self.assertIn(b"* THREAD\r\nb OK", out)

    def test_format(self):
        """The thread list: one child chains, several are nested lists, a dummy has no number."""
        def node(number, *children):
            n = thread.Node(thread.ThreadMessage(number, number, 0, "") if number else None)
            for child in children:
                n.addChild(child)
            return n
        roots = [node(3, node(6, node(4, node(23)), node(44, node(7, node(96))))), node(None, node(1), node(2))]
        self.assertEqual(thread.formatThreads(roots), b"(3 6 (4 23)(44 7 96))((1)(2))")


class ImapClientTests(LoopbackIMAPMixin, unittest.TestCase):
    def setUp(self):
        self.serveIMAP(makeTestContext(self, reactor=reactor, clock=reactor))

    def test_imapclientSortThread(self):
        """imapclient's sort() and thread() over loopback."""
        import imapclient

        messages = [
            message("beta", day(2), messageId="1"),
            message("Re: beta", day(3), messageId="2", references=["1"]),
            message("alpha", day(1), messageId="3"),
        ]

        def client():
            imap = imapclient.IMAPClient("127.0.0.1", port=self.port, ssl=False)
            imap.login("demo", PASSWORD)
            for data in messages:
                imap.append("INBOX", data)
            imap.select_folder("INBOX")
            self.assertTrue(imap.has_capability("SORT"))
            self.assertEqual(imap.sort(["SUBJECT"]), [3, 1, 2])
            self.assertEqual(imap.sort(["REVERSE", "DATE"], ["SUBJECT", "beta"]), [2, 1])
            self.assertEqual(imap.thread("REFERENCES"), ((3,), (1, 2)))
            self.assertEqual(imap.thread("ORDEREDSUBJECT"), ((3,), (1, 2)))
            imap.logout()
        return deferToThread(client)


class SharedMailboxTests(IMAPTestMixin, unittest.TestCase):
    """
    SORT, THREAD and the new FETCH items on another account's mailbox go
    through the access layer's rights.
    """

    def setUp(self):
        self.login()
        append(self, b"INBOX", MESSAGE)
        self.send(b"a SETACL INBOX other lr")
        self.other = Peer(self, b"other")

    def test_readRevoked(self):
        """A viewer sorts and threads with r; without it (even with keys kept) SORT and THREAD are NO [NOPERM]."""
        self.other.send(b"b SELECT ~demo/INBOX")
        self.assertIn(b"* SORT 1\r\n", self.other.send(b"c SORT (SUBJECT) UTF-8 ALL"))
        self.assertIn(b"SAVEDATE", self.other.send(b"c2 FETCH 1 (SAVEDATE PREVIEW)"))
        self.send(b"d SETACL INBOX other l")
        self.assertIn(b"e NO [NOPERM]", self.other.send(b"e SORT (SUBJECT) UTF-8 ALL"))
        self.assertIn(b"f NO [NOPERM]", self.other.send(b"f THREAD REFERENCES UTF-8 ALL"))
        self.assertIn(b"g OK", self.other.send(b"g NOOP"))
