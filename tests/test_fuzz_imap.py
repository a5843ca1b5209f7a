# -*- test-case-name: tests.test_fuzz_imap -*-
"""
Grammar-based fuzzing of the IMAP session (issue 16): commands built from
the protocol's grammar (tags, atoms, quoted strings, literals, sequence
sets, nested lists, search programs, FETCH items, mailbox names), some
well-formed and some not, fed over a C{StringTransport} in packets of
various sizes.  Every input must get answers that are IMAP responses, no
traceback may be logged, the session must go on (or end with a BYE
saying why), and what it buffers before login stays within the pre-login
limit.

Short and derandomized by default; C{GATEWAY_FUZZ=long} runs many more
random examples (see L{tests.fuzz_support}).
"""

import re

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial import unittest

from gateway.imap.protocol import COMMANDS, LOGOUT, MAX_IN_MEMORY, NOT_AUTHENTICATED, PRELOGIN_LIMIT
from tests.fuzz_support import FUZZ, HUGE_SIZES, LogWatch, chunked, chunkSizes, specialBytes
from tests.support import PASSWORD
from tests.test_imap_protocol import IMAPTestMixin

# -- grammar ------------------------------------------------------------------------

_ATOM_ALPHABET = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '(){ %*"\\]')

atoms = st.text(_ATOM_ALPHABET, min_size=1, max_size=12).map(str.encode)
keywords = st.sampled_from([b"NIL", b"INBOX", b"ALL", b"FAST", b"FULL", b"UTF-8", b"CONDSTORE"])
numbers = st.one_of(st.integers(0, 20), st.integers(0, 2 ** 70)).map(lambda n: b"%d" % (n,))


def _quote(data):
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


quoted = st.one_of(
    st.binary(max_size=30).map(_quote),
    specialBytes.map(lambda data: b'"' + data + b'"'),  # unescaped, maybe broken
)


@st.composite
def literals(draw, content=specialBytes):
    data = draw(content)
    size = draw(st.sampled_from([len(data)] * 6 + [max(len(data) - 1, 0), len(data) + 1, 0]
                                + list(HUGE_SIZES)))
    plus = draw(st.sampled_from([b"+", b"+", b""]))
    if size in HUGE_SIZES:
        return b"{%d%s}\r\n" % (size, plus)
    return b"{%d%s}\r\n%s" % (size, plus, data)


#: Literals past the line limit, or large enough to be written to a file.
bigLiterals = st.sampled_from([70000, 300000]).map(lambda n: b"{%d+}\r\n%s" % (n, b"x" * n))
strings = st.one_of(quoted, literals(), quoted, literals(), quoted, literals(), bigLiterals)
astrings = st.one_of(atoms, keywords, strings)
sequenceNumbers = st.one_of(numbers, st.just(b"*"))
sequenceSets = st.lists(
    st.one_of(sequenceNumbers, st.tuples(sequenceNumbers, sequenceNumbers).map(b":".join)),
    min_size=1, max_size=5).map(b",".join) | st.sampled_from([b"1:*", b"*", b"0", b"1,,2", b"4294967296", b"$"])

values = st.recursive(
    st.one_of(atoms, keywords, strings, numbers),
    lambda inner: st.lists(inner, max_size=4).map(lambda items: b"(" + b" ".join(items) + b")"),
    max_leaves=12)
deepParens = st.integers(1, 400).map(lambda n: b"(" * n + b"x" + b")" * n)

mailboxes = st.one_of(
    st.sampled_from([b"INBOX", b"inbox", b"Sent", b'"Deleted Items"', b"Calendar", b"Fuzz", b"Fuzz/Sub",
                     b"&AOk-t&AOk-", b"&ZZZ", b"&-", b'""', b"a/b/c", b"/lead", b"trail/", b"x//y",
                     b"cur", b".hidden", b"a/tmp/b", b"*", b"%"]),
    astrings,
    st.integers(1, 60).map(lambda n: b"/".join([b"d"] * n)),
    st.tuples(st.sampled_from([b"%a", b"*a", b"%d/", b"*/"]), st.integers(1, 60)).map(
        lambda p: b'"' + p[0] * p[1] + b'b"'),
)
flags = st.lists(st.sampled_from([b"\\Seen", b"\\Deleted", b"\\Flagged", b"\\Answered", b"\\Draft",
                                  b"\\Recent", b"\\Bogus", b"$Junk", b"kw", b"\\*", b"(", b"\\"]),
                 max_size=4).map(lambda items: b"(" + b" ".join(items) + b")")
dates = st.sampled_from([b"1-Feb-1994", b"31-Dec-1999", b'"4-Jul-2004"', b"1-Jan-2030", b"30-Feb-2020",
                         b"1-Foo-2000", b"99-Jan-99999", b"0-Jan-0", b"x"])
dateTimes = st.sampled_from([b'"01-Feb-1994 10:00:00 +0000"', b'" 1-Feb-1994 25:61:61 +9999"', b'"junk"'])

_SIMPLE_KEYS = [b"ALL", b"ANSWERED", b"DELETED", b"DRAFT", b"FLAGGED", b"NEW", b"OLD", b"RECENT",
                b"SEEN", b"UNANSWERED", b"UNDELETED", b"UNDRAFT", b"UNFLAGGED", b"UNSEEN"]

smallSets = st.sampled_from([b"1", b"1:*", b"*", b"2:3", b"1,3", b"4294967295", b"0"])
searchLeaves = st.one_of(
    st.sampled_from(_SIMPLE_KEYS),
    st.tuples(st.sampled_from([b"BEFORE", b"ON", b"SINCE", b"SENTBEFORE", b"SENTON", b"SENTSINCE"]),
              dates).map(b" ".join),
    st.tuples(st.sampled_from([b"FROM", b"TO", b"SUBJECT", b"BODY", b"TEXT"]),
              st.sampled_from([b"a", b'"hello"', b'""', b"{1+}\r\nb"])).map(b" ".join),
    st.tuples(st.sampled_from([b"UID", b"LARGER", b"SMALLER"]), smallSets).map(b" ".join),
    smallSets,
    st.tuples(st.sampled_from([b"KEYWORD", b"UNKEYWORD"]), atoms).map(b" ".join),
    st.tuples(st.sampled_from([b"LARGER", b"SMALLER", b"MODSEQ"]), numbers).map(b" ".join),
    st.tuples(st.sampled_from([b"BEFORE", b"ON", b"SINCE", b"SENTBEFORE", b"SENTON", b"SENTSINCE"]),
              dates).map(b" ".join),
    st.tuples(st.sampled_from([b"FROM", b"TO", b"CC", b"BCC", b"SUBJECT", b"BODY", b"TEXT"]),
              astrings).map(b" ".join),
    st.tuples(st.just(b"HEADER"), astrings, astrings).map(b" ".join),
    st.tuples(st.just(b"UID"), sequenceSets).map(b" ".join),
    sequenceSets,
    atoms,
)
searchKeys = st.recursive(
    searchLeaves,
    lambda inner: st.one_of(
        inner.map(lambda k: b"NOT " + k),
        st.tuples(inner, inner).map(lambda ks: b"OR " + b" ".join(ks)),
        st.lists(inner, min_size=1, max_size=4).map(lambda ks: b"(" + b" ".join(ks) + b")"),
    ),
    max_leaves=25)
deepSearch = st.tuples(st.sampled_from([b"NOT ", b"OR ALL ", b"(", b"OR (SEEN) NOT "]),
                       st.integers(1, 300)).map(lambda p: p[0] * p[1] + b"SEEN" + (b")" * p[1] if p[0] == b"(" else b""))
searchPrograms = st.tuples(
    st.sampled_from([b""] * 6 + [b"RETURN () ", b"RETURN (MIN MAX COUNT ALL) ", b"RETURN (BOGUS) ", b"RETURN "]),
    st.sampled_from([b""] * 6 + [b"CHARSET UTF-8 ", b"CHARSET US-ASCII ", b"CHARSET KOI8-R ", b"CHARSET "]),
    st.one_of(st.lists(searchKeys, min_size=1, max_size=3).map(b" ".join),
              st.lists(searchKeys, min_size=1, max_size=3).map(b" ".join), deepSearch, values,
              st.tuples(st.sampled_from([b"SEEN", b"KEYWORD x", b"(SEEN UNSEEN)", b"OR SEEN NOT DRAFT"]),
                        st.integers(1, 1200)).map(lambda p: b" ".join([p[0]] * p[1]))),
).map(b"".join)

fetchAtoms = st.one_of(st.sampled_from([
    b"FLAGS", b"UID", b"RFC822.SIZE", b"INTERNALDATE", b"ENVELOPE", b"BODYSTRUCTURE", b"BODY", b"BODY[]",
    b"BODY.PEEK[HEADER.FIELDS (From To)]", b"BODY[HEADER.FIELDS.NOT (Subject)]", b"BODY[1.2.MIME]<0.10>",
    b"BODY[TEXT]<5.0>", b"BODY[1]", b"BODY[0]", b"BODY[HEADER", b"BODY[]<4294967296.1>", b"RFC822",
    b"RFC822.HEADER", b"RFC822.TEXT", b"FAST", b"ALL", b"FULL", b"MODSEQ", b"BINARY[1]", b"BINARY.SIZE[]",
    b"BODY[1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1]"]), atoms)
fetchItems = st.one_of(
    fetchAtoms,
    st.lists(fetchAtoms, max_size=5).map(lambda items: b"(" + b" ".join(items) + b")"),
    st.tuples(st.lists(fetchAtoms, min_size=1, max_size=3).map(lambda items: b"(" + b" ".join(items) + b")"),
              st.sampled_from([b"(CHANGEDSINCE 1)", b"(CHANGEDSINCE x)", b"(VANISHED)", b"("])).map(b" ".join),
)
messages = st.one_of(
    st.just(b"Subject: fuzz\r\nFrom: a@b.example\r\n\r\nbody\r\n"),
    st.binary(max_size=200),
    st.just(b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\n"
            b"Subject: in\r\n\r\n--x--\r\n"),
)


def _uid(command):
    return st.sampled_from([b"", b"UID "]).map(lambda prefix: prefix + command)


def _join(*parts):
    return st.tuples(*parts).map(b" ".join)


commands = st.one_of(
    _join(st.just(b"LOGIN"), astrings, astrings),
    _join(st.just(b"AUTHENTICATE"), st.sampled_from([b"PLAIN", b"LOGIN", b"CRAM-MD5", b"SCRAM-SHA-256",
                                                      b"BOGUS", b"PLAIN ="])),
    st.tuples(st.sampled_from([b"AUTHENTICATE PLAIN", b"AUTHENTICATE LOGIN", b"AUTHENTICATE CRAM-MD5"]),
              st.lists(st.one_of(st.sampled_from([b"*", b"=", b"ZGVtbw==", b"AGRlbW8AZGVtbw==", b"!!"]),
                                 specialBytes), max_size=3)).map(lambda p: b"\r\n".join([p[0]] + p[1])),
    _join(st.sampled_from([b"SELECT", b"EXAMINE", b"CREATE", b"DELETE", b"SUBSCRIBE", b"UNSUBSCRIBE",
                           b"GETQUOTAROOT"]), mailboxes),
    _join(st.sampled_from([b"SELECT", b"EXAMINE"]), mailboxes, st.sampled_from([b"(CONDSTORE)", b"(QRESYNC)", b"("])),
    _join(st.just(b"CREATE"), mailboxes, st.sampled_from([b"(USE (\\Drafts))", b"(USE ())", b"(X)"])),
    _join(st.just(b"RENAME"), mailboxes, mailboxes),
    _join(st.sampled_from([b"LIST", b"LSUB"]), mailboxes, mailboxes),
    _join(st.just(b"LIST"), st.sampled_from([b"(SUBSCRIBED)", b"(RECURSIVEMATCH)", b"(REMOTE SUBSCRIBED)", b"()"]),
          mailboxes, st.one_of(mailboxes, st.just(b'("*" "%")')),
          st.sampled_from([b"", b"RETURN (CHILDREN)", b"RETURN (STATUS (MESSAGES UNSEEN))", b"RETURN (STATUS)"])),
    _join(st.just(b"STATUS"), mailboxes,
          st.sampled_from([b"(MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT SIZE HIGHESTMODSEQ)", b"()", b"(BOGUS)"])),
    _join(st.just(b"APPEND"), mailboxes, flags, dateTimes, literals(messages)),
    _join(st.just(b"APPEND"), mailboxes, literals(messages)),
    _join(_uid(b"FETCH"), sequenceSets, fetchItems),
    _join(_uid(b"STORE"), sequenceSets,
          st.sampled_from([b"FLAGS", b"+FLAGS", b"-FLAGS.SILENT", b"+FLAGS.SILENT", b"BOGUS",
                           b"(UNCHANGEDSINCE 1) +FLAGS"]), flags),
    _join(_uid(b"SEARCH"), searchPrograms),
    _join(_uid(b"COPY"), sequenceSets, mailboxes),
    _join(_uid(b"MOVE"), sequenceSets, mailboxes),
    _join(st.just(b"UID EXPUNGE"), sequenceSets),
    st.sampled_from([b"EXPUNGE", b"CLOSE", b"UNSELECT", b"CHECK", b"NOOP", b"CAPABILITY", b"NAMESPACE",
                     b"ID NIL", b'ID ("name" "fuzz")', b"ENABLE CONDSTORE", b"ENABLE", b"IDLE\r\nDONE",
                     b"IDLE\r\nNOPE", b"GETQUOTA \"\"", b"SETQUOTA \"\" (STORAGE 1)", b"STARTTLS", b"UID",
                     b"UID BOGUS", b"LOGOUT"]),
    _join(st.sampled_from(sorted(name.encode() for name in COMMANDS)), st.lists(values, max_size=4).map(b" ".join)),
    _join(st.sampled_from([b"SEARCH", b"FETCH 1", b"ID", b"LIST"]), deepParens),
    specialBytes,
)
tags = st.one_of(st.integers(0, 99).map(lambda n: b"t%d" % (n,)), atoms,
                 st.sampled_from([b"", b"*", b"+", b"(", b"{1}", b"t\x00"]))
prologues = st.sampled_from(["none", "login", "select"])


# -- the checks ---------------------------------------------------------------------

_RESPONSE = re.compile(rb"(\* |\+( |$)|[^ ]+ (OK|NO|BAD)( |$))")
_LITERAL_END = re.compile(rb"\{(\d+)\}$")


def responseLines(data):
    """
    The response lines of C{data}, literals of responses skipped.

    @raise AssertionError: for output that is not a sequence of complete
        responses.
    """
    lines, pos = [], 0
    while pos < len(data):
        start = pos
        while True:
            end = data.find(b"\r\n", pos)
            assert end >= 0, "unterminated response %r" % (data[start:start + 200],)
            mark = _LITERAL_END.search(data, pos, end)
            if mark is None:
                break
            pos = end + 2 + int(mark.group(1))
        lines.append(data[start:end])
        pos = end + 2
    return lines


class IMAPFuzzTests(IMAPTestMixin, unittest.TestCase):
    """
    Random well- and ill-formed IMAP commands against one session each.
    """

    def setUp(self):
        self.logs = LogWatch(self)
        self.connect()
        self.firstSession = self.session

    def newSession(self, prologue):
        self.session = self.factory.buildProtocol(None)
        self.transport = type(self.transport)()
        self.session.makeConnection(self.transport)
        self.read()
        if prologue != "none":
            self.assertIn(b"p1 OK", self.send(b'p1 LOGIN demo "%s"' % (PASSWORD.encode(),)))
            if b"MESSAGES 0" in self.send(b"p2 STATUS INBOX (MESSAGES)"):
                self.send(b"p2 APPEND INBOX {17+}\r\nSubject: hello\r\n\r\n\r\n")
        if prologue == "select":
            self.assertIn(b"p3 OK", self.send(b"p3 SELECT INBOX"))

    def feed(self, data, chunkSize):
        """
        Feed C{data} as packets, as a transport would: nothing while the
        session has paused reading.
        """
        for piece in chunked(data, chunkSize):
            for _ in range(100):
                if self.transport.producerState != "paused":
                    break
                self.clock.advance(0.1)
            if self.session.state == LOGOUT or self.transport.disconnecting:
                return
            self.session.dataReceived(piece)
            if self.session.state == NOT_AUTHENTICATED:
                self.assertLessEqual(self.session.bufferedSize(), 2 * PRELOGIN_LIMIT + len(piece))
            else:
                self.assertLessEqual(self.session.bufferedSize(),
                                     MAX_IN_MEMORY + 2 * self.session.lineLimit + len(piece))

    def finish(self):
        """
        Check the session can still be talked to (or said BYE), then close it.
        """
        for _ in range(10):
            self.clock.advance(0.5)
        if not (self.session.state == LOGOUT or self.transport.disconnecting):
            remaining = self.session._literalRemaining
            self.feed(b"x" * remaining + b"\r\n*\r\nDONE\r\nzz9 NOOP\r\n", 0)
            for _ in range(10):
                self.clock.advance(0.5)
        out = self.read()
        self.output += out
        for line in responseLines(self.output):
            self.assertTrue(_RESPONSE.match(line), "not a response: %r" % (line[:200],))
        if self.session.state == LOGOUT or self.transport.disconnecting:
            self.assertIn(b"* BYE", self.output)
        else:
            self.assertRegex(out, rb"zz9 (OK|BAD) ")
        self.assertEqual(self.logs.failures(), [])
        self.assertEqual(self.flushLoggedErrors(), [])
        self.session.connectionLost(None)
        self.assertEqual(self.session.bufferedSize(), 0)

    @FUZZ
    @given(prologue=prologues, tagged=st.lists(st.tuples(tags, commands), min_size=1, max_size=8),
           chunkSize=chunkSizes)
    def test_commands(self, prologue, tagged, chunkSize):
        """
        Grammar-built commands get IMAP responses, log no traceback, and
        leave a session that answers or said BYE.
        """
        self.newSession(prologue)
        data = b"".join(tag + b" " + command + b"\r\n" for tag, command in tagged)
        self.output = b""
        self.feed(data, chunkSize)
        self.output += self.read()
        self.finish()

    @FUZZ
    @given(data=st.lists(st.one_of(specialBytes, literals(), values, deepParens), max_size=10).map(b"".join),
           chunkSize=chunkSizes)
    def test_bytesBeforeLogin(self, data, chunkSize):
        """
        Arbitrary bytes before login: answers are IMAP responses and the
        session buffers no more than the pre-login limit allows.
        """
        self.newSession("none")
        self.output = b""
        self.feed(data, chunkSize)
        self.output += self.read()
        self.finish()
