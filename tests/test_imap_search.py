# -*- test-case-name: tests.test_imap_search -*-
"""
Tests for L{gateway.imap.search}.
"""

import datetime
import io

from twisted.trial import unittest
from zope.interface import implementer

from gateway.imap.search import SearchCharsetError, decodeHeader, parseSearch, tokenize
from gateway.interfaces import IMessageInfo

HEADERS = (
    b"From: =?utf-8?q?J=C3=B6rg_Schmidt?= <joerg@example.test>\r\n"
    b"To: Bob <bob@example.test>\r\n"
    b"Cc: carol@example.test\r\n"
    b"Bcc: dave@example.test\r\n"
    b"Subject: =?iso-8859-1?q?Gr=FC=DFe?= aus Berlin\r\n"
    b"Date: Sun, 4 Feb 2024 01:30:00 +0100\r\n"
    b"X-Priority: 1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
)
BODY = b"Das Stra=C3=9Fenfest ist am Montag.\r\nBring cake.\r\n"
MESSAGE = HEADERS + BODY


@implementer(IMessageInfo)
class Info:
    def __init__(self, flags=("\\Seen", "\\Flagged", "$Work"), headers=HEADERS, size=None):
        self.uid = 7
        self.flags = frozenset(flags)
        self.internalDate = datetime.datetime(2024, 2, 3, 23, 30, tzinfo=datetime.timezone.utc)
        self.size = len(MESSAGE) if size is None else size
        self.modseq = 9
        self.headers = headers


def opener(data=MESSAGE):
    def openMessage():
        openMessage.calls += 1
        return io.BytesIO(data)
    openMessage.calls = 0
    return openMessage


def matches(query, info=None, recent=False, seq=3, maxSeq=5, maxUid=10, data=MESSAGE):
    program = parseSearch(query)
    return program.matches(seq, info or Info(), maxSeq, maxUid, opener(data), recent=recent)


#: (query, expected) against L{Info}() as message 3 of 5, UID 7, not recent.
KEYS = [
    ("ALL", True),
    ("ANSWERED", False), ("UNANSWERED", True),
    ("DELETED", False), ("UNDELETED", True),
    ("DRAFT", False), ("UNDRAFT", True),
    ("FLAGGED", True), ("UNFLAGGED", False),
    ("SEEN", True), ("UNSEEN", False),
    ("KEYWORD $Work", True), ("KEYWORD $work", True), ("KEYWORD $Other", False),
    ("UNKEYWORD $Work", False), ("UNKEYWORD $Other", True),
    ("RECENT", False), ("OLD", True), ("NEW", False),
    ("FROM jörg", True), ("FROM JOERG@EXAMPLE", True), ("FROM bob", False),
    ("TO bob", True), ("TO carol", False),
    ("CC carol", True), ("CC bob", False),
    ("BCC dave", True), ("BCC carol", False),
    ('SUBJECT "grüsse"', True), ('SUBJECT "GRÜSSE aus"', True), ('SUBJECT "grüse"', False), ('SUBJECT "grüße aus"', True),
    ("SUBJECT berlin", True), ("SUBJECT paris", False),
    ('HEADER X-Priority 1', True), ('HEADER x-priority ""', True), ('HEADER X-Missing ""', False),
    ('HEADER X-Priority 2', False),
    ("BODY straßenfest", True), ("BODY cake", True), ("BODY berlin", False),
    ("TEXT berlin", True), ("TEXT cake", True), ("TEXT nowhere", False),
    ("LARGER 10", True), ("LARGER %d" % (len(MESSAGE),), False),
    ("SMALLER %d" % (len(MESSAGE) + 1,), True), ("SMALLER %d" % (len(MESSAGE),), False),
    # Internal date 3-Feb-2024 23:30 UTC.
    ("ON 3-Feb-2024", True), ("ON 4-Feb-2024", False),
    ("BEFORE 4-Feb-2024", True), ("BEFORE 3-Feb-2024", False),
    ("SINCE 3-Feb-2024", True), ("SINCE 4-Feb-2024", False),
    ('SINCE "03-Feb-2024"', True),
    # Date header 4-Feb-2024 01:30 +0100: the date as written, not converted to UTC.
    ("SENTON 4-Feb-2024", True), ("SENTON 3-Feb-2024", False),
    ("SENTBEFORE 5-Feb-2024", True), ("SENTBEFORE 4-Feb-2024", False),
    ("SENTSINCE 4-Feb-2024", True), ("SENTSINCE 5-Feb-2024", False),
    ("UID 7", True), ("UID 1:6,8:*", False), ("UID 8:*", False), ("UID *", False), ("UID 11:*", False),
    ("3", True), ("1:2,4:*", False), ("*", False), ("2:4", True),
    ("MODSEQ 9", True), ("MODSEQ 10", False), ('MODSEQ "/flags/\\\\draft" all 5', True),
    ("NOT SEEN", False), ("NOT NOT SEEN", True),
    ("OR ANSWERED SEEN", True), ("OR ANSWERED DRAFT", False),
    ("(SEEN FLAGGED)", True), ("(SEEN DRAFT)", False),
    ("SEEN FLAGGED UID 7", True), ("SEEN FLAGGED UID 8", False),
    ("OR (DRAFT SEEN) (FLAGGED KEYWORD $Work)", True),
    ("NOT (OR DRAFT ANSWERED)", True),
    ("seen from JÖRG", True),
]


class KeyTests(unittest.TestCase):
    def test_keys(self):
        """Every RFC 3501 key (and MODSEQ) matches or not as expected against one message."""
        failures = [(query, expected) for query, expected in KEYS if matches(query) != expected]
        self.assertEqual(failures, [])

    def test_recent(self):
        """RECENT, NEW and OLD follow the session's recent flag."""
        unseen = Info(flags=())
        self.assertTrue(matches("RECENT", recent=True))
        self.assertTrue(matches("NEW", info=unseen, recent=True))
        self.assertFalse(matches("NEW", info=unseen, recent=False))
        self.assertFalse(matches("NEW", recent=True))
        self.assertFalse(matches("OLD", recent=True))

    def test_starIsLast(self):
        """* is the last message (or largest UID) of the view."""
        self.assertTrue(matches("*", seq=5, maxSeq=5))
        self.assertTrue(matches("UID *", maxUid=7))
        self.assertTrue(matches("UID 9:*", maxUid=7))

    def test_sentDateFallback(self):
        """Without a usable Date header the SENT keys see 1-Jan-1970, as Dovecot does."""
        for headers in (b"Subject: x\r\nDate: garbage\r\n\r\n", b"Subject: x\r\n\r\n"):
            info = Info(headers=headers)
            self.assertFalse(matches("SENTON 3-Feb-2024", info=info))
            self.assertTrue(matches("SENTON 1-Jan-1970", info=info))
            self.assertTrue(matches("SENTBEFORE 2-Jan-1970", info=info))

    def test_headerKeysDoNotOpen(self):
        """Header, flag, size, date and set keys never open the message file."""
        program = parseSearch("OR FROM jörg (SUBJECT x HEADER X-Priority 1 SENTON 1-Jan-2000) LARGER 1 UID 1:*")
        self.assertFalse(program.needsBody)

        def openMessage():
            self.fail("the message file was opened")
        self.assertTrue(program.matches(1, Info(), 1, 7, openMessage))

    def test_needsHeaders(self):
        """Header, SENT* date, BODY and TEXT keys, also nested, need C{info.headers}; others do not."""
        for query in ["FROM x", "SUBJECT x", "HEADER X-A b", "SENTBEFORE 1-Jan-2020", "BODY x",
                      "TEXT x", "NOT TO x", "OR SEEN CC x", "(SEEN (BCC x))"]:
            self.assertTrue(parseSearch(query).needsHeaders, query)
        for query in ["ALL", "UNSEEN", "NOT SEEN", "OR SEEN LARGER 5", "(UID 1:* BEFORE 1-Jan-2020)"]:
            self.assertFalse(parseSearch(query).needsHeaders, query)

    def test_needsBody(self):
        """BODY and TEXT keys, also nested, need the file; the file is opened once per message."""
        for query in ["BODY x", "TEXT x", "NOT BODY x", "OR SEEN TEXT x", "(SEEN (BODY x))"]:
            self.assertTrue(parseSearch(query).needsBody, query)
        openMessage = opener()
        parseSearch("DRAFT BODY x").matches(1, Info(), 1, 7, openMessage)
        self.assertEqual(openMessage.calls, 0)
        program = parseSearch("OR BODY nothing TEXT nothing2")
        program.matches(1, Info(), 1, 7, openMessage)
        self.assertEqual(openMessage.calls, 1)

    def test_multipartBody(self):
        """BODY finds text in base64 parts of a multipart message, and not in attachment names of headers."""
        data = (b"Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                b"w7xiZXJyYXNjaHVuZw==\r\n--b--\r\n")
        info = Info(headers=data[:data.index(b"\r\n\r\n") + 4], size=len(data))
        self.assertTrue(matches("BODY ÜBERRASCHUNG", info=info, data=data))
        self.assertFalse(matches("BODY subject", info=info, data=data))

    def test_bodyScope(self):
        """BODY searches decoded text parts only; TEXT also searches part and attached-message headers."""
        data = (b"Subject: s\r\nContent-Type: multipart/mixed; boundary=zzbound\r\n\r\n--zzbound\r\n"
                b"Content-Type: text/plain\r\n\r\nvisible\r\n--zzbound\r\n"
                b"Content-Type: application/octet-stream; name=secret.bin\r\n\r\nhidden\r\n--zzbound\r\n"
                b"Content-Type: message/rfc822\r\n\r\nSubject: attached\r\n\r\nnested text\r\n--zzbound--\r\n")
        info = Info(headers=data[:data.index(b"\r\n\r\n") + 4], size=len(data))
        cases = [("BODY visible", True), ("BODY hidden", False), ("BODY zzbound", False),
                 ("BODY \"nested text\"", True), ("BODY attached", False), ("TEXT attached", True),
                 ("TEXT secret.bin", True), ("TEXT hidden", False), ("TEXT s", True)]
        for query, expected in cases:
            self.assertEqual(matches(query, info=info, data=data), expected, query)

    def test_undecodable(self):
        """Headers with undecodable bytes or broken RFC 2047 words never raise."""
        info = Info(headers=b"Subject: \xff\xfe =?bogus?q?x?= =?utf-8?b?!!!?=\r\nFrom: \x80\r\n\r\n")
        self.assertFalse(matches("SUBJECT zzz", info=info))
        self.assertTrue(matches("SUBJECT \u00ff", info=info))
        self.assertEqual(decodeHeader(b"=?utf-8?q?caf=C3=A9?="), "café")
        self.assertEqual(decodeHeader(b"caf\xc3\xa9 =?utf-8?q?x?= end"), "café x end")
        self.assertEqual(decodeHeader(b"a =?utf-8?q?x?= =?UTF-8*en?B?eQ?= b"), "a xy b")
        self.assertEqual(decodeHeader(b"=?nonesuch?q?ok?= =?utf-8?b?!!!?="), "ok=?utf-8?b?!!!?=")


class ParseTests(unittest.TestCase):
    def test_tokens(self):
        """The token form (atoms str, strings bytes, lists list) is the primary input."""
        program = parseSearch(["CHARSET", "UTF-8", "OR", ["SUBJECT", "grüße".encode()], "DRAFT"])
        self.assertEqual(program.charset, "UTF-8")
        self.assertTrue(program.matches(3, Info(), 5, 10, opener()))

    def test_literal(self):
        """Inline literals in the text form are read as strings."""
        self.assertEqual(tokenize(b'SUBJECT {7}\r\ngr\xc3\xbc\xc3\x9fe ALL'), ["SUBJECT", "grüße".encode(), "ALL"])
        self.assertTrue(matches(b"CHARSET UTF-8 SUBJECT {7+}\r\ngr\xc3\xbc\xc3\x9fe"))

    def test_tokenizer(self):
        """Quoted strings with escapes and nested lists tokenize as the core would."""
        self.assertEqual(tokenize('OR (A "b \\"c\\"") ((D))'), ["OR", ["A", b'b "c"'], [["D"]]])

    def test_charset(self):
        """UTF-8 and US-ASCII are accepted in any case; others raise SearchCharsetError."""
        self.assertEqual(parseSearch("charset utf-8 ALL").charset, "UTF-8")
        self.assertEqual(parseSearch('CHARSET "US-ASCII" ALL').charset, "US-ASCII")
        self.assertIsNone(parseSearch("ALL").charset)
        e = self.assertRaises(SearchCharsetError, parseSearch, "CHARSET KOI8-R ALL")
        self.assertEqual(e.charset, "KOI8-R")
        self.assertRaises(SearchCharsetError, parseSearch, "ALL", charset="ISO-8859-1")

    def test_asciiCharset(self):
        """With US-ASCII an 8-bit search string is a syntax error."""
        self.assertRaises(ValueError, parseSearch, b"CHARSET US-ASCII SUBJECT \"gr\xc3\xbc\"")

    def test_return(self):
        """RETURN options are parsed (empty means ALL); without RETURN they are None."""
        self.assertIsNone(parseSearch("ALL").returnOptions)
        self.assertEqual(parseSearch("RETURN (min Max COUNT) ALL").returnOptions, ["MIN", "MAX", "COUNT"])
        self.assertEqual(parseSearch("RETURN () ALL").returnOptions, ["ALL"])
        program = parseSearch("RETURN (ALL) CHARSET UTF-8 SEEN")
        self.assertEqual((program.returnOptions, program.charset), (["ALL"], "UTF-8"))

    def test_invalid(self):
        """Bad programs raise ValueError with a message."""
        for query in ["", "BOGUS", "FROM", "OR SEEN", "NOT", "BEFORE 31-Foo-2024", "BEFORE 2024-02-01",
                      "ON 30-Feb-2024", "LARGER x", "LARGER", "UID", "UID 0", "1:0", "0", "(SEEN",
                      "SEEN)", "()", "RETURN ALL", "RETURN (BOGUS) ALL", "RETURN (SAVED) ALL", "CHARSET", "KEYWORD",
                      "HEADER X", "MODSEQ", "SUBJECT {5}\r\nab", "MODSEQ x"]:
            self.assertRaises(ValueError, parseSearch, query)


class EndToEndTests(unittest.TestCase):
    def test_curlSearch(self):
        """curl over imaps:// runs UID SEARCH CHARSET UTF-8 with header, body and flag keys against real messages."""
        import subprocess

        from twisted.internet import reactor, threads

        from gateway.imap.server import makeFactory
        from tests.support import PASSWORD, makeTestContext, testCertificate

        context = makeTestContext(self, reactor=reactor, clock=reactor)
        port = reactor.listenSSL(0, makeFactory(context), context.tls, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        account = context.realm.accountFor("demo@example.test")
        self.assertIsNotNone(account)
        inbox = account.mailStore.getMailbox("INBOX")
        first = inbox.appendMessage(b"Subject: other\r\n\r\nnothing here\r\n")
        second = inbox.appendMessage(MESSAGE, flags=["\\Flagged"])

        def curl(request):
            return subprocess.run(
                ["/usr/bin/curl", "-s", "--max-time", "20", "--cacert", testCertificate()[0],
                 "--user", "demo@example.test:" + PASSWORD,
                 "imaps://127.0.0.1:%d/INBOX" % (port.getHost().port,), "-X", request],
                capture_output=True, check=False).stdout

        def client():
            return [curl("UID SEARCH CHARSET UTF-8 BODY STRASSENFEST"),
                    curl("UID SEARCH CHARSET UTF-8 SUBJECT \"grüße\" FLAGGED"),
                    curl("UID SEARCH NOT FROM jörg"),
                    curl("UID SEARCH RETURN (COUNT MAX) ALL")]

        def check(outputs):
            self.assertEqual(outputs[:3], [b"* SEARCH %d\r\n" % (second,), b"* SEARCH %d\r\n" % (second,),
                                           b"* SEARCH %d\r\n" % (first,)])
            self.assertIn(b"COUNT 2", outputs[3])
        return threads.deferToThread(client).addCallback(check)
