# -*- test-case-name: tests.test_imap_message -*-
"""
Tests for L{gateway.imap.message} and L{gateway.imap.mimeparts}: FETCH
item parsing and rendering.
"""

import datetime
import io
import random
import re

from imapclient.response_parser import parse_fetch_response
from twisted.trial import unittest
from zope.interface import implementer
from zope.interface.verify import verifyObject

from gateway.imap import mimeparts
from gateway.imap.message import (
    FetchItem,
    FetchPlan,
    Section,
    closeChunks,
    filterHeaders,
    formatInternalDate,
    itemsNeedHeaders,
    parseFetchArguments,
    parseFetchItems,
    renderFetch,
    renderFetchParts,
    streamChunks,
)
from gateway.interfaces import IAccount, IMessageInfo
from tests.support import makeTestContext

SIMPLE = (
    b"From: Alice Example <alice@example.test>\r\n"
    b"To: bob@example.test\r\n"
    b"Subject: Hello there\r\n"
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
    b"Message-ID: <1@example.test>\r\n"
    b"\r\n"
    b"Hello, world!\r\n"
    b"Second line\r\n"
)

MIXED = (
    b"From: a@example.test\r\n"
    b"Subject: mixed\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
    b"This is a preamble.\r\n"
    b"--outer\r\n"
    b"Content-Type: multipart/alternative; boundary=inner\r\n"
    b"\r\n"
    b"--inner\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Caf=C3=A9\r\n"
    b"--inner\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<p>Caf\xc3\xa9</p>\r\n"
    b"--inner--\r\n"
    b"--outer\r\n"
    b'Content-Type: application/pdf; name="report.pdf"\r\n'
    b"Content-Disposition: attachment; filename=report.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-ID: <pdf@example.test>\r\n"
    b"Content-Description: The report\r\n"
    b"Content-Language: en, de\r\n"
    b"Content-Location: http://example.test/r.pdf\r\n"
    b"\r\n"
    b"JVBERi0xLjQK\r\n"
    b"--outer--\r\n"
    b"epilogue\r\n"
)

FORWARD = (
    b"From: a@example.test\r\n"
    b"Subject: fwd\r\n"
    b"Content-Type: multipart/mixed; boundary=b1\r\n"
    b"\r\n"
    b"--b1\r\n"
    b"\r\n"
    b"See below.\r\n"
    b"--b1\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"From: c@example.test\r\n"
    b"Subject: inner\r\n"
    b"Content-Type: multipart/mixed; boundary=b2\r\n"
    b"\r\n"
    b"--b2\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"inner one\r\n"
    b"--b2\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"inner two\r\n"
    b"--b2--\r\n"
    b"--b1--\r\n"
)

INTERNATIONAL = (
    b"From: =?utf-8?q?J=C3=B6rg?= <joerg@example.test>\r\n"
    b"To: \"M\xc3\xbcller, Hans\" <hans@example.test>, undisclosed:;\r\n"
    b"Subject: Gr\xfc\xdfe \xff\r\n"
    b"Cc: friends: x@example.test, (comment) y@example.test (Why Not);\r\n"
    b"\r\n"
    b"body\r\n"
)


#: More shapes: RFC 2231 parameters and case, a single-part message/rfc822,
#: a digest without close delimiter, a multipart without boundary, an
#: empty body, groups and odd addresses.
EXTRA = [
    b'From: a@example.test\r\nSubject: one\r\nContent-Type: Multipart/Mixed; Boundary="X"\r\n\r\n--X\r\nContent-Type: TEXT/Plain; CHARSET=ISO-8859-1; format=flowed\r\n\r\nhi\r\n--X\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\nFrom: "Q\\"uote" <q@example.test>\r\nSubject: inner single\r\nReply-To: r@example.test\r\n\r\nline1\r\nline2\r\n--X\r\nContent-Type: application/octet-stream; name*=utf-8\'\'caf%C3%A9.txt\r\nContent-Disposition: attachment; filename*0="a"; filename*1="b.txt"\r\n\r\nxyz\r\n--X--\r\n',
    b'Subject: digest\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: d1\r\n\r\nfirst\r\n--d\r\nContent-Type: text/plain\r\n\r\nsecond\r\n',
    b'Subject: nob\r\nContent-Type: multipart/mixed\r\n\r\nstuff\r\n',
    b'Subject: empty\r\n\r\n',
    b'From: <>\r\nTo: A Group: a@b.test, "B" <b@c.test>;, c@d.test\r\nCc: =?iso-8859-1?q?Andr=E9?= <andre@x.test>\r\nSender: s@x.test\r\nIn-Reply-To: <x@y>\r\nSubject: folded\r\n subject\r\n\r\nx',
]

REFERENCE_QUERY = '(BODYSTRUCTURE BODY ENVELOPE BODY.PEEK[1] BODY.PEEK[2] BODY.PEEK[2.1] BODY.PEEK[1.MIME] BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[2.1.1] BODY.PEEK[3] BODY.PEEK[1.1] BODY.PEEK[3.MIME] BODY.PEEK[1.2] BODY.PEEK[5])'

#: Dovecot 2.3.19.1's answers (imap, Maildir) to L{REFERENCE_QUERY} for
#: SIMPLE, MIXED, FORWARD, INTERNATIONAL and then EXTRA, in order.
DOVECOT = [
    b'(BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 28 2 NIL NIL NIL NIL) BODY ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 28 2) ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "Hello there" (("Alice Example" NIL "alice" "example.test")) (("Alice Example" NIL "alice" "example.test")) (("Alice Example" NIL "alice" "example.test")) ((NIL NIL "bob" "example.test")) NIL NIL NIL "<1@example.test>") BODY[1] {28}\r\nHello, world!\r\nSecond line\r\n BODY[2] {0}\r\n BODY[2.1] {0}\r\n BODY[1.MIME] {156}\r\nFrom: Alice Example <alice@example.test>\r\nTo: bob@example.test\r\nSubject: Hello there\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <1@example.test>\r\n\r\n BODY[2.HEADER] {0}\r\n BODY[2.TEXT] {0}\r\n BODY[2.1.1] {0}\r\n BODY[3] {0}\r\n BODY[1.1] {0}\r\n BODY[3.MIME] {0}\r\n BODY[1.2] {0}\r\n BODY[5] {0}\r\n)',
    b'(BODYSTRUCTURE ((("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 9 0 NIL NIL NIL NIL)("text" "html" ("charset" "utf-8") NIL NIL "7bit" 12 0 NIL NIL NIL NIL) "alternative" ("boundary" "inner") NIL NIL NIL)("application" "pdf" ("name" "report.pdf") "<pdf@example.test>" "The report" "base64" 12 NIL ("attachment" ("filename" "report.pdf")) ("en" "de") "http://example.test/r.pdf") "mixed" ("boundary" "outer") NIL NIL NIL) BODY ((("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 9 0)("text" "html" ("charset" "utf-8") NIL NIL "7bit" 12 0) "alternative")("application" "pdf" ("name" "report.pdf") "<pdf@example.test>" "The report" "base64" 12) "mixed") ENVELOPE (NIL "mixed" ((NIL NIL "a" "example.test")) ((NIL NIL "a" "example.test")) ((NIL NIL "a" "example.test")) NIL NIL NIL NIL NIL) BODY[1] {184}\r\n--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9\r\n--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Caf\xc3\xa9</p>\r\n--inner--\r\n BODY[2] {12}\r\nJVBERi0xLjQK BODY[2.1] {12}\r\nJVBERi0xLjQK BODY[1.MIME] {55}\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n BODY[2.HEADER] {0}\r\n BODY[2.TEXT] {0}\r\n BODY[2.1.1] {0}\r\n BODY[3] {0}\r\n BODY[1.1] {9}\r\nCaf=C3=A9 BODY[3.MIME] {0}\r\n BODY[1.2] {12}\r\n<p>Caf\xc3\xa9</p> BODY[5] {0}\r\n)',
    b'(BODYSTRUCTURE (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 0 NIL NIL NIL NIL)("message" "rfc822" NIL NIL NIL "7bit" 182 (NIL "inner" ((NIL NIL "c" "example.test")) ((NIL NIL "c" "example.test")) ((NIL NIL "c" "example.test")) NIL NIL NIL NIL NIL) (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 9 0 NIL NIL NIL NIL)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 9 0 NIL NIL NIL NIL) "mixed" ("boundary" "b2") NIL NIL NIL) 13 NIL NIL NIL NIL) "mixed" ("boundary" "b1") NIL NIL NIL) BODY (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 0)("message" "rfc822" NIL NIL NIL "7bit" 182 (NIL "inner" ((NIL NIL "c" "example.test")) ((NIL NIL "c" "example.test")) ((NIL NIL "c" "example.test")) NIL NIL NIL NIL NIL) (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 9 0)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 9 0) "mixed") 13) "mixed") ENVELOPE (NIL "fwd" ((NIL NIL "a" "example.test")) ((NIL NIL "a" "example.test")) ((NIL NIL "a" "example.test")) NIL NIL NIL NIL NIL) BODY[1] {10}\r\nSee below. BODY[2] {182}\r\nFrom: c@example.test\r\nSubject: inner\r\nContent-Type: multipart/mixed; boundary=b2\r\n\r\n--b2\r\nContent-Type: text/plain\r\n\r\ninner one\r\n--b2\r\nContent-Type: text/plain\r\n\r\ninner two\r\n--b2--\r\n BODY[2.1] {9}\r\ninner one BODY[1.MIME] {2}\r\n\r\n BODY[2.HEADER] {84}\r\nFrom: c@example.test\r\nSubject: inner\r\nContent-Type: multipart/mixed; boundary=b2\r\n\r\n BODY[2.TEXT] {98}\r\n--b2\r\nContent-Type: text/plain\r\n\r\ninner one\r\n--b2\r\nContent-Type: text/plain\r\n\r\ninner two\r\n--b2--\r\n BODY[2.1.1] {9}\r\ninner one BODY[3] {0}\r\n BODY[1.1] {10}\r\nSee below. BODY[3.MIME] {0}\r\n BODY[1.2] {0}\r\n BODY[5] {0}\r\n)',
    b'(BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1 NIL NIL NIL NIL) BODY ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1) ENVELOPE (NIL {7}\r\nGr\xfc\xdfe \xff (("=?utf-8?q?J=C3=B6rg?=" NIL "joerg" "example.test")) (("=?utf-8?q?J=C3=B6rg?=" NIL "joerg" "example.test")) (("=?utf-8?q?J=C3=B6rg?=" NIL "joerg" "example.test")) (({13}\r\nM\xc3\xbcller, Hans NIL "hans" "example.test")(NIL NIL "undisclosed" NIL)(NIL NIL NIL NIL)) ((NIL NIL "friends" NIL)(NIL NIL "x" "example.test")("Why Not" NIL "y" "example.test")(NIL NIL NIL NIL)) NIL NIL NIL) BODY[1] {6}\r\nbody\r\n BODY[2] {0}\r\n BODY[2.1] {0}\r\n BODY[1.MIME] {192}\r\nFrom: =?utf-8?q?J=C3=B6rg?= <joerg@example.test>\r\nTo: "M\xc3\xbcller, Hans" <hans@example.test>, undisclosed:;\r\nSubject: Gr\xfc\xdfe \xff\r\nCc: friends: x@example.test, (comment) y@example.test (Why Not);\r\n\r\n BODY[2.HEADER] {0}\r\n BODY[2.TEXT] {0}\r\n BODY[2.1.1] {0}\r\n BODY[3] {0}\r\n BODY[1.1] {0}\r\n BODY[3.MIME] {0}\r\n BODY[1.2] {0}\r\n BODY[5] {0}\r\n)',
    b'(BODYSTRUCTURE (("TEXT" "Plain" ("CHARSET" "ISO-8859-1" "format" "flowed") NIL NIL "7bit" 2 0 NIL NIL NIL NIL)("message" "rfc822" NIL NIL NIL "7bit" 97 (NIL "inner single" (({6}\r\nQ"uote NIL "q" "example.test")) (({6}\r\nQ"uote NIL "q" "example.test")) ((NIL NIL "r" "example.test")) NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 12 1 NIL NIL NIL NIL) 5 NIL ("inline" NIL) NIL NIL)("application" "octet-stream" ("name*" "utf-8\'\'caf%C3%A9.txt") NIL NIL "7bit" 3 NIL ("attachment" ("filename" "ab.txt")) NIL NIL) "Mixed" ("Boundary" "X") NIL NIL NIL) BODY (("TEXT" "Plain" ("CHARSET" "ISO-8859-1" "format" "flowed") NIL NIL "7bit" 2 0)("message" "rfc822" NIL NIL NIL "7bit" 97 (NIL "inner single" (({6}\r\nQ"uote NIL "q" "example.test")) (({6}\r\nQ"uote NIL "q" "example.test")) ((NIL NIL "r" "example.test")) NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 12 1) 5)("application" "octet-stream" ("name*" "utf-8\'\'caf%C3%A9.txt") NIL NIL "7bit" 3) "Mixed") ENVELOPE (NIL "one" ((NIL NIL "a" "example.test")) ((NIL NIL "a" "example.test")) ((NIL NIL "a" "example.test")) NIL NIL NIL NIL NIL) BODY[1] {2}\r\nhi BODY[2] {97}\r\nFrom: "Q\\"uote" <q@example.test>\r\nSubject: inner single\r\nReply-To: r@example.test\r\n\r\nline1\r\nline2 BODY[2.1] {12}\r\nline1\r\nline2 BODY[1.MIME] {63}\r\nContent-Type: TEXT/Plain; CHARSET=ISO-8859-1; format=flowed\r\n\r\n BODY[2.HEADER] {85}\r\nFrom: "Q\\"uote" <q@example.test>\r\nSubject: inner single\r\nReply-To: r@example.test\r\n\r\n BODY[2.TEXT] {12}\r\nline1\r\nline2 BODY[2.1.1] {0}\r\n BODY[3] {3}\r\nxyz BODY[1.1] {2}\r\nhi BODY[3.MIME] {139}\r\nContent-Type: application/octet-stream; name*=utf-8\'\'caf%C3%A9.txt\r\nContent-Disposition: attachment; filename*0="a"; filename*1="b.txt"\r\n\r\n BODY[1.2] {0}\r\n BODY[5] {0}\r\n)',
    b'(BODYSTRUCTURE (("message" "rfc822" NIL NIL NIL "7bit" 20 (NIL "d1" NIL NIL NIL NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 0 NIL NIL NIL NIL) 2 NIL NIL NIL NIL)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 8 1 NIL NIL NIL NIL) "digest" ("boundary" "d") NIL NIL NIL) BODY (("message" "rfc822" NIL NIL NIL "7bit" 20 (NIL "d1" NIL NIL NIL NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 0) 2)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 8 1) "digest") ENVELOPE (NIL "digest" NIL NIL NIL NIL NIL NIL NIL NIL) BODY[1] {20}\r\nSubject: d1\r\n\r\nfirst BODY[2] {8}\r\nsecond\r\n BODY[2.1] {8}\r\nsecond\r\n BODY[1.MIME] {2}\r\n\r\n BODY[2.HEADER] {0}\r\n BODY[2.TEXT] {0}\r\n BODY[2.1.1] {0}\r\n BODY[3] {0}\r\n BODY[1.1] {5}\r\nfirst BODY[3.MIME] {0}\r\n BODY[1.2] {0}\r\n BODY[5] {0}\r\n)',
    b'(BODYSTRUCTURE (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed" NIL NIL NIL NIL) BODY (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed") ENVELOPE (NIL "nob" NIL NIL NIL NIL NIL NIL NIL NIL) BODY[1] {0}\r\n BODY[2] {0}\r\n BODY[2.1] {0}\r\n BODY[1.MIME] {0}\r\n BODY[2.HEADER] {0}\r\n BODY[2.TEXT] {0}\r\n BODY[2.1.1] {0}\r\n BODY[3] {0}\r\n BODY[1.1] {0}\r\n BODY[3.MIME] {0}\r\n BODY[1.2] {0}\r\n BODY[5] {0}\r\n)',
    b'(BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) BODY ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) ENVELOPE (NIL "empty" NIL NIL NIL NIL NIL NIL NIL NIL) BODY[1] {0}\r\n BODY[2] {0}\r\n BODY[2.1] {0}\r\n BODY[1.MIME] {18}\r\nSubject: empty\r\n\r\n BODY[2.HEADER] {0}\r\n BODY[2.TEXT] {0}\r\n BODY[2.1.1] {0}\r\n BODY[3] {0}\r\n BODY[1.1] {0}\r\n BODY[3.MIME] {0}\r\n BODY[1.2] {0}\r\n BODY[5] {0}\r\n)',
    b'(BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0 NIL NIL NIL NIL) BODY ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0) ENVELOPE (NIL {14}\r\nfolded subject ((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")) ((NIL NIL "s" "x.test")) ((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")) ((NIL NIL "A Group" NIL)(NIL NIL "a" "b.test")("B" NIL "b" "c.test")(NIL NIL NIL NIL)(NIL NIL "c" "d.test")) (("=?iso-8859-1?q?Andr=E9?=" NIL "andre" "x.test")) NIL "<x@y>" NIL) BODY[1] {1}\r\nx BODY[2] {0}\r\n BODY[2.1] {0}\r\n BODY[1.MIME] {172}\r\nFrom: <>\r\nTo: A Group: a@b.test, "B" <b@c.test>;, c@d.test\r\nCc: =?iso-8859-1?q?Andr=E9?= <andre@x.test>\r\nSender: s@x.test\r\nIn-Reply-To: <x@y>\r\nSubject: folded\r\n subject\r\n\r\n BODY[2.HEADER] {0}\r\n BODY[2.TEXT] {0}\r\n BODY[2.1.1] {0}\r\n BODY[3] {0}\r\n BODY[1.1] {0}\r\n BODY[3.MIME] {0}\r\n BODY[1.2] {0}\r\n BODY[5] {0}\r\n)',
]


@implementer(IMessageInfo)
class Info:
    """
    An L{IMessageInfo} for a message in memory.
    """

    def __init__(self, data, uid=5, flags=(), modseq=9):
        self.uid = uid
        self.flags = frozenset(flags)
        self.internalDate = datetime.datetime(2024, 2, 3, 9, 5, 7, tzinfo=datetime.timezone.utc)
        self.size = len(data)
        self.modseq = modseq
        end = data.find(b"\r\n\r\n")
        if data.startswith(b"\r\n"):
            self.headers = b"\r\n"
        else:
            self.headers = data if end == -1 else data[:end + 4]


def opener(data):
    """
    An openMessage callable for C{data} that counts its calls.
    """
    def openMessage():
        openMessage.calls += 1
        return io.BytesIO(data)
    openMessage.calls = 0
    return openMessage


class Unopenable:
    """
    An openMessage that fails the test when called.
    """

    def __init__(self, testCase):
        self.testCase = testCase

    def __call__(self):
        self.testCase.fail("the message file was opened")


def parseResponse(data, seq=1):
    """
    Parse rendered FETCH data with imapclient's parser (which wants
    literals split out as imaplib delivers them).

    @return: the C{dict} of attributes.
    """
    pieces = []
    current = b"%d " % (seq,)
    pos = 0
    literal = re.compile(rb"\{(\d+)\}\r\n")
    while True:
        m = literal.search(data, pos)
        if m is None:
            break
        size = int(m.group(1))
        pieces.append((current + data[pos:m.start()] + b"{%d}" % (size,), data[m.end():m.end() + size]))
        current = b""
        pos = m.end() + size
    pieces.append(current + data[pos:])
    return parse_fetch_response(pieces, uid_is_key=False)[seq]


def render(testCase, data, text, **kw):
    items = parseFetchItems(text)
    result, seen = renderFetch(Info(data, **kw.pop("infoArgs", {})), items, opener(data), **kw)
    return result


class ParseFetchTests(unittest.TestCase):
    def test_macros(self):
        """ALL, FAST and FULL expand to their RFC 3501 items."""
        names = lambda text: [i.name for i in parseFetchItems(text)]
        self.assertEqual(names("FAST"), ["FLAGS", "INTERNALDATE", "RFC822.SIZE"])
        self.assertEqual(names("all"), ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"])
        self.assertEqual(names("FULL"), ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"])

    def test_itemsNeedHeaders(self):
        """Only UID, FLAGS, MODSEQ, RFC822.SIZE and INTERNALDATE render without the header block."""
        for text in ["(FLAGS UID RFC822.SIZE)", "FAST", "(MODSEQ INTERNALDATE)"]:
            self.assertFalse(itemsNeedHeaders(parseFetchItems(text)), text)
        for text in ["ALL", "ENVELOPE", "BODY.PEEK[HEADER.FIELDS (FROM)]", "RFC822.HEADER",
                     "(FLAGS BODY[TEXT])", "BODYSTRUCTURE", "BODY", "RFC822"]:
            self.assertTrue(itemsNeedHeaders(parseFetchItems(text)), text)

    def test_simpleItems(self):
        """Every simple item parses, alone or in a list, in request order."""
        text = "(ENVELOPE FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT BODY BODYSTRUCTURE UID MODSEQ)"
        self.assertEqual([i.name for i in parseFetchItems(text)], text[1:-1].split())
        self.assertEqual(parseFetchItems("uid"), [FetchItem("UID")])

    def test_sections(self):
        """Section specs parse into part paths, texts, field lists, PEEK and partials."""
        cases = [
            ("BODY[]", Section(), False, None),
            ("BODY.PEEK[HEADER]", Section((), "HEADER"), True, None),
            ("body[header.fields (From Subject)]", Section((), "HEADER.FIELDS", ("From", "Subject")), False, None),
            ("BODY[1.2.MIME]<0.1024>", Section((1, 2), "MIME"), False, (0, 1024)),
            ("BODY[3.HEADER.FIELDS.NOT (X-A)]", Section((3,), "HEADER.FIELDS.NOT", ("X-A",)), False, None),
            ("BODY.PEEK[2.TEXT]<10.5>", Section((2,), "TEXT"), True, (10, 5)),
            ("BODY[4]", Section((4,)), False, None),
        ]
        for text, section, peek, partial in cases:
            [item] = parseFetchItems(text)
            self.assertEqual((item.section, item.peek, item.partial), (section, peek, partial), text)

    def test_mixedList(self):
        """A list mixes simple items and sections, keeping the order."""
        items = parseFetchItems("(BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)] FLAGS BODY[1.2.MIME]<0.1024>)")
        self.assertEqual([i.responseName() for i in items],
                         ["BODY[HEADER.FIELDS (FROM SUBJECT DATE)]", "FLAGS", "BODY[1.2.MIME]<0>"])

    def test_modifiers(self):
        """The CHANGEDSINCE modifier is returned by parseFetchArguments and kept on the item list."""
        items, modifiers = parseFetchArguments("(FLAGS) (CHANGEDSINCE 12345)")
        self.assertEqual(modifiers, {"CHANGEDSINCE": 12345})
        self.assertEqual(items, [FetchItem("FLAGS")])
        self.assertEqual(parseFetchItems("FLAGS (changedsince 7 VANISHED)").modifiers,
                         {"CHANGEDSINCE": 7, "VANISHED": True})
        self.assertEqual(parseFetchItems("FLAGS").modifiers, {})

    def test_setsSeen(self):
        """Only non-PEEK body sections, RFC822 and RFC822.TEXT set \\Seen."""
        cases = {"BODY[]": True, "BODY.PEEK[]": False, "RFC822": True, "RFC822.TEXT": True,
                 "RFC822.HEADER": False, "BODY": False, "BODYSTRUCTURE": False, "BODY[1.MIME]": True}
        for text, expected in cases.items():
            self.assertEqual(parseFetchItems(text)[0].setsSeen, expected, text)

    def test_invalid(self):
        """Malformed requests raise ValueError with a message."""
        for text in ["", "()", "(FLAGS", "FLAGS)", "BOGUS", "(FLAGS FAST)", "BODY[", "BODY[1.0]",
                     "BODY[MIME]", "BODY[HEADER.FIELDS]", "BODY[HEADER.FIELDS ()]", "BODY[TEXT (A)]",
                     "BODY[FOO]", "BODY[]<1>", "BODY[]<a.b>", "BODY[]<0.0>", "BODY[]<0.5", "UID[]",
                     "FLAGS junk", "FLAGS (CHANGEDSINCE)", "FLAGS (CHANGEDSINCE x)", "FLAGS (BOGUS 1)",
                     "(FLAGS)x", "BODY[HEADER.FIELDS (A:B)]"]:
            e = self.assertRaises(ValueError, parseFetchItems, text)
            self.assertTrue(str(e), text)


class RenderTests(unittest.TestCase):
    def test_simpleEnvelopeAndStructure(self):
        """ENVELOPE and BODYSTRUCTURE of a simple message are exact."""
        result = render(self, SIMPLE, "(ENVELOPE BODYSTRUCTURE BODY)")
        self.assertEqual(
            result,
            b'(UID 5 ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "Hello there" '
            b'(("Alice Example" NIL "alice" "example.test")) (("Alice Example" NIL "alice" "example.test")) '
            b'(("Alice Example" NIL "alice" "example.test")) ((NIL NIL "bob" "example.test")) NIL NIL NIL '
            b'"<1@example.test>") '
            b'BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 28 2 NIL NIL NIL NIL) '
            b'BODY ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 28 2))')
        parsed = parseResponse(result)
        self.assertEqual(parsed[b"ENVELOPE"].subject, b"Hello there")

    def test_multipartStructure(self):
        """BODYSTRUCTURE of multipart/alternative inside multipart/mixed with an attachment is exact."""
        result = render(self, MIXED, "BODYSTRUCTURE")
        self.assertEqual(
            result,
            b'(UID 5 BODYSTRUCTURE ((("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 9 0 '
            b'NIL NIL NIL NIL)("text" "html" ("charset" "utf-8") NIL NIL "7bit" 12 0 NIL NIL NIL NIL)'
            b' "alternative" ("boundary" "inner") NIL NIL NIL)'
            b'("application" "pdf" ("name" "report.pdf") "<pdf@example.test>" "The report" '
            b'"base64" 12 NIL ("attachment" ("filename" "report.pdf")) ("en" "de") '
            b'"http://example.test/r.pdf") "mixed" ("boundary" "outer") NIL NIL NIL))')
        structure = parseResponse(result)[b"BODYSTRUCTURE"]
        self.assertTrue(structure.is_multipart)
        self.assertEqual(structure[1], b"mixed")

    def test_messageRfc822Structure(self):
        """A message/rfc822 part carries envelope, body structure and line count of the inner message."""
        result = render(self, FORWARD, "(BODY BODYSTRUCTURE)")
        # As in Dovecot, the part keeps the CRLF after the nested close delimiter.
        inner = FORWARD[FORWARD.index(b"From: c@"):FORWARD.index(b"--b1--")]
        self.assertIn(
            b'("message" "rfc822" NIL NIL NIL "7bit" %d (NIL "inner" ((NIL NIL "c" "example.test")) '
            b'((NIL NIL "c" "example.test")) ((NIL NIL "c" "example.test")) NIL NIL NIL NIL NIL) '
            b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 9 0)("text" "plain" ("charset" "us-ascii") '
            b'NIL NIL "7bit" 9 0) "mixed") %d)' % (len(inner), inner.count(b"\n")), result)
        parsed = parseResponse(result)
        self.assertEqual(parsed[b"BODY"][1], b"mixed")

    def test_eightBitHeaders(self):
        """8-bit header bytes go out as literals with the raw bytes; RFC 2047 words are kept as they are."""
        result = render(self, INTERNATIONAL, "ENVELOPE")
        self.assertIn(b"(NIL {7}\r\nGr\xfc\xdfe \xff ", result)
        self.assertIn(b'(("=?utf-8?q?J=C3=B6rg?=" NIL "joerg" "example.test"))', result)
        self.assertIn(b'(({13}\r\nM\xc3\xbcller, Hans NIL "hans" "example.test")(NIL NIL "undisclosed" NIL)'
                      b'(NIL NIL NIL NIL))', result)
        self.assertIn(b'((NIL NIL "friends" NIL)(NIL NIL "x" "example.test")'
                      b'("Why Not" NIL "y" "example.test")(NIL NIL NIL NIL))', result)
        envelope = parseResponse(result)[b"ENVELOPE"]
        self.assertEqual(envelope.subject, b"Gr\xfc\xdfe \xff")
        self.assertEqual(envelope.to[0].name, "Müller, Hans".encode("utf-8"))

    def test_missingHeaders(self):
        """A message without headers has an all-NIL envelope and a default text/plain structure."""
        data = b"\r\njust a body\r\n"
        result = render(self, data, "(ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER] BODY.PEEK[TEXT])")
        self.assertEqual(result,
                         b'(UID 5 ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) BODYSTRUCTURE '
                         b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 13 1 NIL NIL NIL NIL) '
                         b'BODY[HEADER] {2}\r\n\r\n BODY[TEXT] {13}\r\njust a body\r\n)')

    def test_simpleAttributes(self):
        """FLAGS, UID, RFC822.SIZE, INTERNALDATE and MODSEQ come from the info without opening the file."""
        info = Info(SIMPLE, flags=["$Label", "\\Seen", "\\Answered"])
        result, seen = renderFetch(info, parseFetchItems("(FLAGS RFC822.SIZE INTERNALDATE MODSEQ UID)"),
                                   Unopenable(self), recent=True)
        self.assertEqual(result, b'(FLAGS (\\Answered \\Seen \\Recent $Label) RFC822.SIZE %d '
                                 b'INTERNALDATE " 3-Feb-2024 09:05:07 +0000" MODSEQ (9) UID 5)' % (len(SIMPLE),))
        self.assertFalse(seen)
        parsed = parseResponse(result)
        self.assertEqual(parsed[b"INTERNALDATE"].day, 3)

    def test_planLineMatchesRender(self):
        """
        For index-only items a plan renders the whole response line at once,
        byte for byte what the general renderer gives; with header or body
        items it has no line.
        """
        info = Info(SIMPLE, flags=["$Label", "\\Flagged"])
        for text in ["(FLAGS UID RFC822.SIZE)", "FAST", "(MODSEQ INTERNALDATE UID FLAGS)", "UID",
                     "(UID BODY.PEEK[HEADER.FIELDS (Subject FROM)])", "BODY.PEEK[HEADER.FIELDS (DATE)]<3.9>"]:
            for modseq in (False, True):
                for recent in (False, True):
                    plan = FetchPlan(parseFetchItems(text), modseq)
                    expected = b"12 FETCH " + b"".join(plan.render(info, Unopenable(self), recent))
                    self.assertEqual(plan.line(12, info, recent), expected, (text, modseq, recent))
        for text in ["(FLAGS ENVELOPE)", "BODY[HEADER.FIELDS (FROM)]", "BODY.PEEK[1.HEADER.FIELDS (FROM)]"]:
            self.assertIsNone(FetchPlan(parseFetchItems(text)).line(1, info), text)
        truncated = Info(SIMPLE)
        truncated.headers = SIMPLE[:20]
        self.assertIsNone(FetchPlan(parseFetchItems("BODY.PEEK[HEADER.FIELDS (FROM)]")).line(1, truncated))

    def test_uidFirstAndModseq(self):
        """UID leads when not requested; with CONDSTORE on, MODSEQ is added at the end."""
        result, _ = renderFetch(Info(SIMPLE), parseFetchItems("FLAGS"), Unopenable(self), modseq=True)
        self.assertEqual(result, b"(UID 5 FLAGS () MODSEQ (9))")

    def test_filterHeaders(self):
        """
        Named fields are kept whole (continuation lines too) in their order,
        names compared without case and allowing blanks before the colon;
        a name that only starts or ends like a wanted one is not kept.
        """
        block = (b"From: a@example.org\r\nX-From: no\r\nFrom-Alias: no\r\nSubject : Hello\r\n"
                 b"\tthere\r\nTo: b@example.org\r\nfrom: second\r\n\r\n")
        self.assertEqual(filterHeaders(block, ["SUBJECT", "From"]),
                         b"From: a@example.org\r\nSubject : Hello\r\n\tthere\r\nfrom: second\r\n\r\n")
        self.assertEqual(filterHeaders(block, ["from", "subject", "x-from", "from-alias"], exclude=True),
                         b"To: b@example.org\r\n\r\n")
        self.assertEqual(filterHeaders(b"\r\n", ["from"]), b"\r\n")

    def test_headerFieldsWithoutFile(self):
        """HEADER.FIELDS, HEADER.FIELDS.NOT, HEADER, RFC822.HEADER and ENVELOPE are served from info.headers."""
        data = SIMPLE.replace(b"Subject: Hello there\r\n", b"Subject: Hello\r\n there\r\n")
        items = parseFetchItems("(BODY.PEEK[HEADER.FIELDS (subject DATE)] BODY.PEEK[HEADER.FIELDS.NOT "
                                "(FROM To Date Message-ID)] RFC822.HEADER ENVELOPE)")
        result, seen = renderFetch(Info(data), items, Unopenable(self))
        self.assertFalse(seen)
        self.assertIn(b"BODY[HEADER.FIELDS (subject DATE)] {64}\r\nSubject: Hello\r\n there\r\n"
                      b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\n", result)
        self.assertIn(b"BODY[HEADER.FIELDS.NOT (FROM To Date Message-ID)] {26}\r\nSubject: Hello\r\n there\r\n\r\n",
                      result)
        self.assertIn(b"RFC822.HEADER {%d}\r\n%s" % (len(Info(data).headers), Info(data).headers), result)
        self.assertIn(b'"Hello there"', result)

    def test_sectionRanges(self):
        """Each section is the exact byte range of the message, for parts, MIME headers and nested messages."""
        data = MIXED
        cases = {
            "BODY[1]": data[data.index(b"--inner\r\nContent-Type: text/plain"):data.index(b"--outer\r\nContent-Type: app")],
            "BODY[1.1]": b"Caf=C3=A9",
            "BODY[1.2]": b"<p>Caf\xc3\xa9</p>",
            "BODY[1.1.MIME]": b"Content-Type: text/plain; charset=utf-8\r\n"
                              b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
            "BODY[2]": b"JVBERi0xLjQK",
            "BODY[HEADER]": data[:data.index(b"\r\n\r\n") + 4],
            "BODY[TEXT]": data[data.index(b"\r\n\r\n") + 4:],
            "BODY[]": data,
        }
        for text, expected in cases.items():
            result = render(self, data, "BODY.PEEK" + text[4:])
            self.assertEqual(parseResponse(result)[text.encode()], expected, text)
        data = FORWARD
        inner = data[data.index(b"From: c@"):data.index(b"--b1--")]
        cases = {
            "BODY[1]": b"See below.",
            "BODY[1.MIME]": b"\r\n",
            "BODY[2]": inner,
            "BODY[2.HEADER]": inner[:inner.index(b"\r\n\r\n") + 4],
            "BODY[2.TEXT]": inner[inner.index(b"\r\n\r\n") + 4:],
            "BODY[2.1]": b"inner one",
            "BODY[2.2]": b"inner two",
            "BODY[2.2.MIME]": b"Content-Type: text/plain\r\n\r\n",
            "BODY[2.HEADER.FIELDS (SUBJECT)]": b"Subject: inner\r\n\r\n",
        }
        for text, expected in cases.items():
            result = render(self, data, text)
            self.assertEqual(parseResponse(result)[text.encode()], expected, text)

    def test_singlePart(self):
        """Part 1 of a non-multipart message is its body; a missing part is empty (as in Dovecot)."""
        self.assertEqual(render(self, SIMPLE, "BODY.PEEK[1]"),
                         b"(UID 5 BODY[1] {28}\r\nHello, world!\r\nSecond line\r\n)")
        self.assertEqual(render(self, SIMPLE, "BODY.PEEK[2]"), b"(UID 5 BODY[2] {0}\r\n)")
        self.assertEqual(render(self, MIXED, "BODY.PEEK[1.3.1]"), b"(UID 5 BODY[1.3.1] {0}\r\n)")
        self.assertEqual(render(self, MIXED, "BODY.PEEK[2.HEADER]"), b"(UID 5 BODY[2.HEADER] {0}\r\n)")

    def test_partial(self):
        """Partial fetches slice the section, answer with the origin only, and give "" beyond the end."""
        self.assertEqual(render(self, SIMPLE, "BODY.PEEK[]<0.10>"), b"(UID 5 BODY[]<0> {10}\r\nFrom: Alic)")
        self.assertEqual(render(self, SIMPLE, "BODY.PEEK[TEXT]<7.100>"),
                         b"(UID 5 BODY[TEXT]<7> {21}\r\nworld!\r\nSecond line\r\n)")
        self.assertEqual(render(self, SIMPLE, "BODY.PEEK[]<100000.10>"), b"(UID 5 BODY[]<100000> {0}\r\n)")
        self.assertEqual(render(self, MIXED, "BODY.PEEK[1.2]<3.3>"), b"(UID 5 BODY[1.2]<3> {3}\r\nCaf)")
        self.assertEqual(render(self, SIMPLE, "BODY.PEEK[HEADER.FIELDS (TO)]<2.4>"),
                         b"(UID 5 BODY[HEADER.FIELDS (TO)]<2> {4}\r\n: bo)")

    def test_implicitSeen(self):
        """A non-PEEK body fetch reports setsSeen; with markSeen it also shows \\Seen in FLAGS."""
        info = Info(SIMPLE)
        result, seen = renderFetch(info, parseFetchItems("RFC822.TEXT"), opener(SIMPLE), markSeen=True)
        self.assertTrue(seen)
        self.assertEqual(result, b"(UID 5 RFC822.TEXT {28}\r\nHello, world!\r\nSecond line\r\n FLAGS (\\Seen))")
        result, seen = renderFetch(info, parseFetchItems("(FLAGS BODY[HEADER])"), opener(SIMPLE), markSeen=True)
        self.assertTrue(result.startswith(b"(UID 5 FLAGS (\\Seen) "))
        result, seen = renderFetch(info, parseFetchItems("(FLAGS BODY[HEADER])"), opener(SIMPLE))
        self.assertTrue(seen)
        self.assertTrue(result.startswith(b"(UID 5 FLAGS () "))
        result, seen = renderFetch(Info(SIMPLE, flags=["\\Seen"]), parseFetchItems("RFC822"), opener(SIMPLE))
        self.assertEqual(result, b"(UID 5 RFC822 {%d}\r\n%s)" % (len(SIMPLE), SIMPLE))

    def test_opensOnce(self):
        """Several sections of one message open its file once."""
        openMessage = opener(MIXED)
        renderFetch(Info(MIXED), parseFetchItems("(BODYSTRUCTURE BODY[1.1] BODY[2] BODY[])"), openMessage)
        self.assertEqual(openMessage.calls, 1)

    def test_quoting(self):
        """Printable ASCII is quoted; quotes, backslashes, CR/LF and 8-bit force a literal (as in Dovecot)."""
        self.assertEqual(mimeparts.imapString(b"a b"), b'"a b"')
        self.assertEqual(mimeparts.imapString(b'a"b\\c'), b'{5}\r\na"b\\c')
        self.assertEqual(mimeparts.imapString(b"a\r\nb"), b"{4}\r\na\r\nb")
        self.assertEqual(mimeparts.imapString(None), b"NIL")
        self.assertEqual(mimeparts.imapString("é"), b"{2}\r\n\xc3\xa9")

    def test_addresses(self):
        """Address lists parse names, routes, comments, groups and missing parts leniently."""
        cases = [
            (b'"Doe, John" <john@x.test>', [(b"Doe, John", None, b"john", b"x.test")]),
            (b"<@r1,@r2:a@b.test>", [(None, b"@r1,@r2", b"a", b"b.test")]),
            (b"a@b.test (Name), c", [(b"Name", None, b"a", b"b.test"), (None, None, b"c", b"MISSING_DOMAIN")]),
            (b"Undisclosed recipients:;", [(None, None, b"Undisclosed recipients", None), (None, None, None, None)]),
            (b"john . doe @ x.test", [(None, None, b"john.doe", b"x.test")]),
            (b'"quoted local"@x.test', [(None, None, b"quoted local", b"x.test")]),
            (b"", []),
            (b'"a\\\\" <x@y>, "esc\\"q" <q@x>', [(b"a\\", None, b"x", b"y"), (b'esc"q', None, b"q", b"x")]),
            (b'"" <e@x>', [(None, None, b"e", b"x")]),
        ]
        for value, expected in cases:
            self.assertEqual(mimeparts.parseAddressList(value), expected, value)

    def test_internalDate(self):
        """Internal dates have a space-padded day and a numeric zone."""
        when = datetime.datetime(2024, 12, 25, 23, 0, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=-5)))
        self.assertEqual(formatInternalDate(when), "25-Dec-2024 23:00:01 -0500")

    def test_garbage(self):
        """Broken MIME (no closing boundary, bad content type, binary junk) renders without error and parses."""
        data = (b"Content-Type: multipart/mixed; boundary=zz\r\nSubject: \x00\x80(\r\nFrom: <>, @, \"\r\n\r\n"
                b"--zz\r\nContent-Type: ;;;=\r\n\r\nx\r\n--zz\r\nContent-Type: message/rfc822\r\n\r\n"
                b"--zz\r\nContent-Type: text/plain; charset=\"unterminated\r\n\r\n\xff\xfe")
        result = render(self, data, "(ENVELOPE BODYSTRUCTURE BODY BODY.PEEK[1] BODY.PEEK[3.MIME])")
        self.assertIsInstance(parseResponse(result), dict)


class StreamTests(unittest.TestCase):
    def test_streamsLargeBody(self):
        """Whole-message sections above the threshold become file tuples that streamChunks writes exactly."""
        body = b"".join(b"line %06d\r\n" % (i,) for i in range(5000))
        data = SIMPLE.split(b"\r\n\r\n")[0] + b"\r\n\r\n" + body
        openMessage = opener(data)
        items = parseFetchItems("(UID BODY.PEEK[] BODY.PEEK[TEXT]<10.20000> RFC822.SIZE)")
        chunks, seen = renderFetchParts(Info(data), items, openMessage, streamThreshold=1000)
        tuples = [c for c in chunks if isinstance(c, tuple)]
        self.assertEqual([(offset, length) for _, offset, length in tuples],
                         [(0, len(data)), (len(Info(data).headers) + 10, 20000)])
        self.assertEqual(openMessage.calls, 2)
        streamed = b"".join(streamChunks(chunks, blockSize=4096))
        expected, _ = renderFetch(Info(data), items, opener(data))
        self.assertEqual(streamed, expected)
        self.assertTrue(all(t[0].closed for t in tuples))

    def test_streamsLargePartOfMappedFile(self):
        """
        A message file stored with CRLF line ends is mapped, not read: the
        body of a large part (whole or partial) is streamed from the file,
        small ones are inline, and the bytes are those of the in-memory
        rendering.
        """
        attachment = b"".join(b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo%06d\r\n" % (i,) for i in range(3000))
        data = (b"From: a@example.test\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
                b"--b1\r\nContent-Type: text/plain\r\n\r\nsee --b1 attached\r\n--b1x\r\n"
                b"--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + attachment + b"\r\n--b1--\r\n")
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(data)
        items = parseFetchItems("(BODY.PEEK[1] BODY.PEEK[2] BODY.PEEK[2]<100.5000> BODYSTRUCTURE)")
        chunks, _ = renderFetchParts(Info(data), items, lambda: open(path, "rb"), streamThreshold=1000)
        start = data.index(attachment)
        self.assertEqual([chunk[1:] for chunk in chunks if isinstance(chunk, tuple)],
                         [(start, len(attachment)), (start + 100, 5000)])
        expected, _ = renderFetch(Info(data), items, opener(data))
        self.assertEqual(b"".join(streamChunks(chunks)), expected)
        self.assertTrue(expected.startswith(b"(UID 5 BODY[1] {24}\r\nsee --b1 attached\r\n--b1x BODY[2] "))
        self.assertTrue(expected.endswith(b'("application" "octet-stream" NIL NIL NIL "base64" %d NIL NIL NIL NIL)'
                                          b' "mixed" ("boundary" "b1") NIL NIL NIL))' % (len(attachment),)))

    def test_smallFileRead(self):
        """
        A message file smaller than MAP_MINIMUM is read whole, a larger one
        mapped (only a mapped file's large parts are streamed).
        """
        from gateway.imap import message

        for size, mapped in ((message.MAP_MINIMUM - 1, False), (message.MAP_MINIMUM, True)):
            path = self.mktemp()
            with open(path, "wb") as f:
                f.write(b"x" * size)
            with open(path, "rb") as f:
                found = message._mapped(f)
            self.assertEqual(found is not None, mapped, size)
            if found is not None:
                self.assertEqual(len(found), size)
                found.close()

    def test_shortFilePadded(self):
        """A file shorter than announced is padded so the literal length stays right."""
        data = SIMPLE + b"x" * 2000
        chunks, _ = renderFetchParts(Info(data), parseFetchItems("BODY.PEEK[]"), opener(SIMPLE), streamThreshold=10)
        streamed = b"".join(streamChunks(chunks))
        self.assertEqual(len(streamed), len(b"(UID 5 BODY[] {%d}\r\n)" % (len(data),)) + len(data))
        self.assertTrue(streamed.endswith(b" " * 2000 + b")"))

    def test_closeChunks(self):
        """closeChunks closes the files of abandoned chunks."""
        chunks, _ = renderFetchParts(Info(SIMPLE), parseFetchItems("RFC822"), opener(SIMPLE), streamThreshold=1)
        closeChunks(chunks)
        self.assertTrue(chunks[1][0].closed)


class StoreTests(unittest.TestCase):
    def test_withMailStore(self):
        """Rendering works on the mail store's own message infos and files, bare-LF messages included."""
        context = makeTestContext(self)
        results = []
        from gateway.cred.credentials import LoginContext, PlainCredentials
        from tests.support import PASSWORD
        creds = PlainCredentials("demo@example.test", PASSWORD, LoginContext("imap", "127.0.0.1", "127.0.0.1", True))
        context.portal.login(creds, None, IAccount).addCallback(results.append)
        account = results[0][1]
        inbox = account.mailStore.getMailbox("INBOX")
        uid = inbox.appendMessage(MIXED.replace(b"\r\n", b"\n"), flags=["\\Flagged"])
        [info] = inbox.messages([uid])
        verifyObject(IMessageInfo, info)
        items = parseFetchItems("(FLAGS RFC822.SIZE BODYSTRUCTURE BODY.PEEK[1.2] BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        result, _ = renderFetch(info, items, lambda: inbox.openMessage(uid))
        parsed = parseResponse(result)
        self.assertEqual(parsed[b"RFC822.SIZE"], len(MIXED))
        self.assertEqual(parsed[b"BODY[1.2]"], b"<p>Caf\xc3\xa9</p>")
        self.assertEqual(parsed[b"BODY[HEADER.FIELDS (SUBJECT)]"], b"Subject: mixed\r\n\r\n")
        self.assertEqual(parsed[b"FLAGS"], (b"\\Flagged",))
        expected = render(self, MIXED, "BODYSTRUCTURE", infoArgs={"uid": uid})
        self.assertEqual(parsed[b"BODYSTRUCTURE"], parseResponse(expected)[b"BODYSTRUCTURE"])


class EndToEndTests(unittest.TestCase):
    def test_imapclientOverTLS(self):
        """imapclient over implicit TLS fetches the structure, envelope and exact sections of a multipart message."""
        import ssl

        from twisted.internet import reactor, threads

        from gateway.imap.server import makeFactory
        from gateway.store.mailbox import Mailbox
        from tests.support import PASSWORD, testCertificate

        context = makeTestContext(self, reactor=reactor, clock=reactor)
        port = reactor.listenSSL(0, makeFactory(context), context.tls, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        # FETCH reads where the files are with the rows (one query for the
        # batch), not once more per message opened.
        opened = []
        realOpen = Mailbox.openMessage
        self.patch(Mailbox, "openMessage",
                   lambda mailbox, uid, location=None: opened.append(location) or realOpen(mailbox, uid, location))

        def client():
            import imapclient
            c = imapclient.IMAPClient("127.0.0.1", port=port.getHost().port, ssl=True, timeout=20,
                                      ssl_context=ssl.create_default_context(cafile=testCertificate()[0]))
            try:
                c.login("demo@example.test", PASSWORD)
                c.append("INBOX", FORWARD)
                c.append("INBOX", MIXED)
                c.select_folder("INBOX")
                uids = c.search("ALL")
                return c.fetch(uids, ["BODYSTRUCTURE", "ENVELOPE", "BODY.PEEK[2.1]", "BODY.PEEK[1.2]",
                                      "BODY.PEEK[HEADER.FIELDS (SUBJECT)]", "FLAGS"])
            finally:
                c.logout()

        def check(result):
            forward, mixed = (result[uid] for uid in sorted(result))
            self.assertEqual(forward[b"BODY[2.1]"], b"inner one")
            self.assertEqual(mixed[b"BODY[1.2]"], b"<p>Caf\xc3\xa9</p>")
            self.assertEqual(mixed[b"BODY[HEADER.FIELDS (SUBJECT)]"], b"Subject: mixed\r\n\r\n")
            self.assertEqual(mixed[b"ENVELOPE"].subject, b"mixed")
            structure = mixed[b"BODYSTRUCTURE"]
            self.assertEqual((structure[1], structure[0][1][0], structure[0][1][6]), (b"mixed", b"application", 12))
            self.assertNotIn(b"\\Seen", mixed[b"FLAGS"])
            self.assertTrue(opened)
            self.assertNotIn(None, opened)
        return threads.deferToThread(client).addCallback(check)


class DovecotReferenceTests(unittest.TestCase):
    def test_sameAsDovecot(self):
        """BODYSTRUCTURE, BODY, ENVELOPE and sections equal Dovecot's answers byte for byte."""
        messages = [SIMPLE, MIXED, FORWARD, INTERNATIONAL] + EXTRA
        self.assertEqual(len(messages), len(DOVECOT))
        for number, (data, expected) in enumerate(zip(messages, DOVECOT, strict=True), 1):
            result = render(self, data, REFERENCE_QUERY).replace(b"(UID 5 ", b"(", 1)
            if number == len(messages):
                # Dovecot sends an unfolded header as a literal; the value is the same.
                self.assertEqual(parseResponse(result), parseResponse(expected))
                self.assertIn(b'"folded subject"', result)
            else:
                self.assertEqual(result, expected, "message %d" % (number,))


class RobustnessTests(unittest.TestCase):
    def test_mutatedMessages(self):
        """Randomly damaged messages (fixed seed) render and search without error, and the output parses."""
        import random

        from gateway.imap.search import parseSearch

        messages = [SIMPLE, MIXED, FORWARD, INTERNATIONAL] + EXTRA
        inserts = [b"--outer\r\n", b"--b1--\r\n", b"\r\n\r\n", b"Content-Type: message/rfc822\r\n",
                   b"Content-Type: multipart/mixed; boundary=b1\r\n", b"=?utf-8?b?", b"=?x?q?=FF?= "]
        program = parseSearch("OR TEXT foo (BODY bar SENTSINCE 1-Jan-2000 FROM x)")
        rnd = random.Random(7)
        for _ in range(300):
            data = bytearray(rnd.choice(messages))
            for _ in range(rnd.randint(1, 6)):
                pos = rnd.randrange(len(data) or 1)
                op = rnd.random()
                if op < 0.4 and data:
                    data[pos] = rnd.choice(b'\r\n-:;"()<>@,=\\\x00\xff ')
                elif op < 0.7:
                    del data[pos:pos + rnd.randint(1, 20)]
                else:
                    data[pos:pos] = rnd.choice(inserts)
            data = bytes(data).replace(b"\r\n", b"\n").replace(b"\r", b"").replace(b"\n", b"\r\n")
            result = render(self, data, REFERENCE_QUERY)
            self.assertIn(b"BODYSTRUCTURE", parseResponse(result))
            program.matches(1, Info(data), 1, 1, opener(data))


class HeaderFieldTests(unittest.TestCase):
    """
    The two ways of reading fields out of a header block agree: splitting
    all of them (L{mimeparts.splitHeaderFields}) and picking the named ones
    with one pattern (L{mimeparts.fieldValues}, L{filterHeaders}).
    """

    def test_agreeOnOddBlocks(self):
        """
        On header blocks made of pieces that stress the syntax (folding,
        blanks around names, bare LF and CR, lines without a colon), both
        give the same values and the same raw fields, in order.
        """
        rng = random.Random(3501)
        pieces = [b"From", b"from", b"Subject", b": ", b":", b" ", b"\t", b"x", b"\r\n", b"\n", b"\r",
                  b"\xc3\xa9", b"X-From"]
        for _ in range(3000):
            block = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 16)))
            # One empty line, at the end, as in every header block.
            block = re.sub(rb"\r?\n(?=\r?\n)", b"\r\nx", block.lstrip(b"\r\n"))
            block += b"\r\n" if block.endswith(b"\n") else b"\r\n\r\n"
            fields = mimeparts.splitHeaderFields(block)
            for name in ("from", "subject"):
                self.assertEqual(mimeparts.fieldValues(block, name),
                                 [value for n, _, value in fields if n == name], block)
            self.assertEqual(filterHeaders(block, ["FROM", "Subject"]),
                             b"".join(raw for n, raw, _ in fields if n in ("from", "subject")) + b"\r\n", block)
