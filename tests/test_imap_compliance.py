# -*- test-case-name: tests.test_imap_compliance -*-
"""
IMAP compliance defects found by an independent suite (issue 13): keywords
announced in FLAGS before a FETCH shows them, names that are not modified
UTF-7, ESEARCH MODSEQ, LIST-EXTENDED option checks, address SEARCH and
EXAMINE's RECENT.
"""

import re

from twisted.internet.task import Clock
from twisted.trial import unittest

from gateway.store.mail import MailStore
from tests.test_imap_mailbox import append
from tests.test_imap_selected import Other, SelectedTestMixin


def flagsLines(out):
    """
    The flag lists of the untagged FLAGS responses in C{out}, as C{list}s
    of C{bytes}.
    """
    return [line.split() for line in re.findall(rb"^\* FLAGS \(([^)]*)\)\r$", out, re.M)]


class KeywordAnnouncementTests(SelectedTestMixin, unittest.TestCase):
    def assertAnnouncedBefore(self, out, keyword, fetch):
        """
        C{out} has a FLAGS response listing C{keyword}, and it comes before
        the first response that contains C{fetch}.
        """
        match = re.search(rb"^\* FLAGS \([^)]*" + re.escape(keyword) + rb"[ )]", out, re.M)
        self.assertIsNotNone(match, out)
        self.assertLess(match.start(), out.index(fetch), out)

    def test_selectListsKeywordsInUse(self):
        """SELECT lists every keyword in use in FLAGS, and them with \\* in PERMANENTFLAGS."""
        self.login()
        append(self, flags=b"($Label2 \\Seen) ")
        append(self, flags=b"($hello) ")
        out = self.send(b"s SELECT INBOX")
        self.assertIn(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label2 $hello)\r\n", out)
        self.assertIn(b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label2 $hello \\*)]",
                      out)
        out = self.send(b"e EXAMINE INBOX")
        self.assertIn(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label2 $hello)\r\n", out)
        self.assertIn(b"* OK [PERMANENTFLAGS ()]", out)

    def test_storeAnnouncesNewKeyword(self):
        """STORE of a new keyword sends FLAGS with it before the FETCH that shows it, once."""
        self.selectWith(2)
        out = self.send(b"a STORE 1 +FLAGS ($hello)")
        self.assertAnnouncedBefore(out, b"$hello", b"* 1 FETCH")
        self.assertIn(b"OK [PERMANENTFLAGS (", out)
        out = self.send(b"b STORE 2 +FLAGS ($hello)")
        self.assertEqual(flagsLines(out), [])

    def test_nilKeyword(self):
        """The keyword NIL is stored, announced as the flag atom NIL, and fetched."""
        self.selectWith(1)
        out = self.send(b"a STORE 1 +FLAGS (NIL)")
        self.assertEqual(flagsLines(out), [[b"\\Answered", b"\\Flagged", b"\\Deleted", b"\\Seen", b"\\Draft",
                                            b"NIL"]])
        self.assertIn(b"* 1 FETCH (FLAGS (\\Recent NIL))", out)
        self.assertIn(b"FLAGS (\\Recent NIL))", self.send(b"b FETCH 1 FLAGS"))

    def test_appendAnnouncesKeyword(self):
        """APPEND into the selected mailbox with a new keyword announces it with the EXISTS."""
        self.selectWith(1)
        out = append(self, flags=b"($Label2) ")
        self.assertAnnouncedBefore(out, b"$Label2", b"EXISTS")
        self.assertEqual(flagsLines(self.send(b"f FETCH 1:* FLAGS")), [])

    def test_otherSessionsKeyword(self):
        """A keyword set by another session is announced before the FETCH FLAGS that shows it."""
        self.selectWith(1)
        other = Other(self)
        other.send(b"o2 SELECT INBOX")
        other.send(b"o3 STORE 1 +FLAGS.SILENT ($Other)")
        out = self.send(b"a NOOP")
        self.assertAnnouncedBefore(out, b"$Other", b"* 1 FETCH")

    def test_otherProcessKeywordBeforeFetch(self):
        """A keyword set by another process and fetched before any notification is announced first."""
        self.selectWith(1)
        outside = MailStore(self.session.account.mailStore.path, reactor=Clock(), useInotify=False)
        self.addCleanup(outside.close)
        outside.getMailbox("INBOX").setFlags([1], ["$Afar"], "+")
        out = self.send(b"a FETCH 1 (FLAGS)")
        self.assertAnnouncedBefore(out, b"$Afar", b"* 1 FETCH")

    def test_copyInAnnouncesKeyword(self):
        """A message copied in with a new keyword is announced before it is fetched."""
        self.login()
        self.send(b"c CREATE Work")
        append(self, mailbox=b"Work", flags=b"($Copied) ")
        self.send(b"s SELECT INBOX")
        other = Other(self)
        other.send(b"o2 SELECT Work")
        other.send(b"o3 COPY 1 INBOX")
        out = self.send(b"a NOOP")
        self.assertAnnouncedBefore(out, b"$Copied", b"EXISTS")
        self.assertEqual(flagsLines(self.send(b"f FETCH 1:* FLAGS")), [])


class MailboxKeywordsTests(unittest.TestCase):
    def test_keywords(self):
        """IMailbox.keywords lists the keywords in use, and follows later changes (including other processes')."""
        path = self.mktemp()
        store = MailStore(path, reactor=Clock(), useInotify=False)
        self.addCleanup(store.close)
        mailbox = store.getMailbox("INBOX")
        self.assertEqual(mailbox.keywords(), frozenset())
        mailbox.appendMessage(b"Subject: a\r\n\r\nx\r\n", ["\\Seen", "$One"])
        self.assertEqual(mailbox.keywords(), {"$One"})
        outside = MailStore(path, reactor=Clock(), useInotify=False)
        self.addCleanup(outside.close)
        outside.getMailbox("INBOX").setFlags([1], ["$Two", "NIL"], "+")
        self.assertEqual(mailbox.keywords(), {"$One", "$Two", "NIL"})


ODD_NAME = b"!#$&'+,-.0123456789:;<=>?@^_`|[}"


class InvalidNameTests(SelectedTestMixin, unittest.TestCase):
    def test_selectInvalidUTF7(self):
        """SELECT and EXAMINE of a name that is not modified UTF-7 get NO [NONEXISTENT], not BAD."""
        self.login()
        self.assertIn(b"a NO [NONEXISTENT]", self.send(b"a SELECT " + ODD_NAME))
        self.assertIn(b"b NO [NONEXISTENT]", self.send(b"b EXAMINE " + ODD_NAME))
        self.assertIn(b"c NO [NONEXISTENT]", self.send(b"c STATUS " + ODD_NAME + b" (MESSAGES)"))
        self.assertIn(b"d NO [NONEXISTENT]", self.send(b"d DELETE " + ODD_NAME))

    def test_listInvalidUTF7(self):
        """LIST with a pattern that is not modified UTF-7 is OK with no lines; so is such a reference."""
        self.login()
        self.assertEqual(self.send(b'a LIST "" ' + ODD_NAME + b"%*"), b"a OK LIST completed\r\n")
        self.assertEqual(self.send(b'b LIST ' + ODD_NAME + b' *'), b"b OK LIST completed\r\n")
        self.assertEqual(self.send(b'c LIST "" (' + ODD_NAME + b' "&Jjo")'), b"c OK LIST completed\r\n")
        self.assertEqual(self.send(b'd LSUB "" ' + ODD_NAME + b"*"), b"d OK LSUB completed\r\n")

    def test_createInvalidUTF7(self):
        """CREATE, RENAME to, APPEND and COPY to such a name get NO, and nothing is created."""
        self.selectWith(1)
        self.assertIn(b"a NO [CANNOT]", self.send(b"a CREATE " + ODD_NAME))
        self.assertIn(b"b NO [CANNOT]", self.send(b"b RENAME Junk " + ODD_NAME))
        self.assertIn(b"c NO [", self.send(b"c APPEND " + ODD_NAME + b" {3+}\r\nabc"))
        self.assertIn(b"d NO [", self.send(b"d COPY 1 " + ODD_NAME))
        self.assertIn(b"e NO [", self.send(b"e SUBSCRIBE " + ODD_NAME))
        out = self.send(b'f LIST "" *')
        self.assertIn(b'"Junk"', out)
        self.assertNotIn(b"0123456789", out)


class ErrorTextTests(SelectedTestMixin, unittest.TestCase):
    def test_fetchErrorOneLine(self):
        """A FETCH error that quotes a literal of the command stays on the one tagged line."""
        self.selectWith(1)
        out = self.send(b"a FETCH 1:* {3+}\r\nabc")
        self.assertTrue(out.startswith(b"a BAD "), out)
        self.assertEqual(out.count(b"\r\n"), 1, out)
        self.assertIn(b"b OK", self.send(b"b NOOP"))


class EsearchModSeqTests(SelectedTestMixin, unittest.TestCase):
    def test_minMaxModSeq(self):
        """ESEARCH MODSEQ is that of the messages returned: MIN's, MAX's, or the highest of all for ALL/COUNT."""
        self.selectWith(3)
        self.send(b"a STORE 2 +FLAGS.SILENT (\\Flagged)")
        modseqs = {info.uid: info.modseq for info in self.mailbox.messages([1, 2, 3])}
        self.assertLess(modseqs[1], modseqs[2])
        out = self.send(b'b SEARCH RETURN (MIN) 1:3 MODSEQ "/flags/\\\\seen" all 1')
        self.assertIn(b'* ESEARCH (TAG "b") MIN 1 MODSEQ %d\r\n' % (modseqs[1],), out)
        out = self.send(b"c SEARCH RETURN (MAX) 1:2 MODSEQ 1")
        self.assertIn(b'* ESEARCH (TAG "c") MAX 2 MODSEQ %d\r\n' % (modseqs[2],), out)
        out = self.send(b"d SEARCH RETURN (MIN MAX) 1,3 MODSEQ 1")
        self.assertIn(b'* ESEARCH (TAG "d") MIN 1 MAX 3 MODSEQ %d\r\n' % (max(modseqs[1], modseqs[3]),), out)
        out = self.send(b"e UID SEARCH RETURN (MIN COUNT) 1:3 MODSEQ 1")
        self.assertIn(b'* ESEARCH (TAG "e") UID MIN 1 COUNT 3 MODSEQ %d\r\n' % (max(modseqs.values()),), out)


class ListExtendedTests(SelectedTestMixin, unittest.TestCase):
    def test_recursiveMatchNeedsSelection(self):
        """RECURSIVEMATCH with only REMOTE (no other selection option) is BAD (RFC 5258 3)."""
        self.login()
        self.assertIn(b"a BAD", self.send(b'a LIST (RECURSIVEMATCH REMOTE) "" ""'))
        self.assertIn(b"b BAD", self.send(b'b LIST (REMOTE RECURSIVEMATCH) "" "*"'))
        self.assertIn(b"c OK", self.send(b'c LIST (RECURSIVEMATCH SUBSCRIBED REMOTE) "" "*"'))
        self.assertIn(b"d OK", self.send(b'd LIST (REMOTE) "" "*"'))


class ExamineRecentTests(SelectedTestMixin, unittest.TestCase):
    def test_examineCountsRecent(self):
        """EXAMINE reports the recent messages without claiming them: a later SELECT still gets them."""
        self.login()
        append(self)
        append(self)
        out = self.send(b"e EXAMINE INBOX")
        self.assertIn(b"* 2 RECENT\r\n", out)
        self.assertIn(b"FLAGS (\\Recent)", self.send(b"f FETCH 1 FLAGS"))
        self.assertIn(b"* SEARCH 1 2\r\n", self.send(b"g SEARCH RECENT"))
        self.assertIn(b"* 2 RECENT\r\n", self.send(b"s SELECT INBOX"))
        self.assertIn(b"* 0 RECENT\r\n", self.send(b"e2 EXAMINE INBOX"))

    def test_examineSeesNewRecent(self):
        """A message arriving while a mailbox is examined counts as RECENT there, still unclaimed."""
        self.login()
        self.send(b"e EXAMINE INBOX")
        other = Other(self)
        other.send(b"o2 APPEND INBOX {3+}\r\nabc")
        self.assertEqual(self.send(b"a NOOP"), b"* 1 EXISTS\r\n* 1 RECENT\r\na OK NOOP completed\r\n")
        self.assertIn(b"* 1 RECENT\r\n", other.send(b"o3 SELECT INBOX"))


class AddressSearchTests(unittest.TestCase):
    def test_commentsAndFolding(self):
        """FROM/TO/CC/BCC match the address as RFC 5322 reads it (comments and folding out) and the raw text."""
        from gateway.imap.search import parseSearch
        from tests.test_imap_search import Info, opener

        headers = (b"From: <user-from (comment)@ (comment) domain.org>\r\n"
                   b"To: \"Doe, Jane\" (work)\r\n <jane(x)@\r\n example.org>\r\n"
                   b"Cc: =?utf-8?q?J=C3=B6rg?= <joerg @ example.test>\r\n"
                   b"Subject: x\r\n\r\n")
        info = Info(headers=headers)

        def matches(query):
            return parseSearch(query).matches(1, info, 1, 7, opener(headers))
        self.assertTrue(matches("FROM user-from@domain.org"))
        self.assertTrue(matches("FROM domain.org"))
        self.assertTrue(matches('FROM "(comment)"'))
        self.assertFalse(matches("FROM other@domain.org"))
        self.assertTrue(matches("TO jane@example.org"))
        self.assertTrue(matches('TO "Doe, Jane"'))
        self.assertTrue(matches('CC "Jörg <joerg@example.test>"'))
        self.assertTrue(matches("CC joerg@example.test"))
        self.assertFalse(matches("BCC joerg"))


class EndToEndTests(unittest.TestCase):
    def setUp(self):
        from twisted.internet import reactor

        from gateway.imap.server import makeFactory
        from tests.support import makeTestContext

        context = makeTestContext(self, reactor=reactor, clock=reactor)
        self.factory = makeFactory(context)
        port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.port = port.getHost().port
        self.addCleanup(port.stopListening)
        self.addCleanup(lambda: [s.transport.abortConnection() for s in list(self.factory.sessions)])

    def test_imapclient(self):
        """imapclient: EXAMINE counts RECENT, FLAGS lists keywords, odd names get NO, address SEARCH parses comments."""
        import imapclient
        from twisted.internet.threads import deferToThread

        from tests.support import PASSWORD

        def client():
            imap = imapclient.IMAPClient("127.0.0.1", port=self.port, ssl=False)
            imap.login("demo", PASSWORD)
            imap.append("INBOX", b"From: <user-from (comment)@ (comment) domain.org>\r\nSubject: a\r\n\r\nx\r\n",
                        flags=[b"$Label2"])
            imap.append("INBOX", b"Subject: b\r\n\r\nx\r\n")
            info = imap.select_folder("INBOX", readonly=True)
            self.assertEqual(info[b"RECENT"], 2)
            self.assertIn(b"$Label2", info[b"FLAGS"])
            self.assertEqual(imap.search(["FROM", "user-from@domain.org"]), [1])
            imap.close_folder()
            info = imap.select_folder("INBOX")
            self.assertEqual(info[b"RECENT"], 2)
            self.assertIn(b"\\*", info[b"PERMANENTFLAGS"])
            imap.add_flags([2], [b"$hello"])
            self.assertIn(b"$hello", imap.get_flags([2])[2])
            typ, data = imap._imap._simple_command("EXAMINE", ODD_NAME.decode())  # imaplib raises on BAD
            self.assertEqual(typ, "NO")
            imap.logout()
        return deferToThread(client)


class NotModifiedUTF7Tests(unittest.TestCase):
    def test_exception(self):
        """A name that is not modified UTF-7 raises NotModifiedUTF7: a store name error, and a syntax error where uncaught."""
        from gateway.errors import InvalidMailboxName
        from gateway.imap.parser import IMAPSyntaxError, NotModifiedUTF7, decodeMailbox

        self.assertRaises(NotModifiedUTF7, decodeMailbox, b"&Jjo")
        self.assertTrue(issubclass(NotModifiedUTF7, InvalidMailboxName))
        self.assertTrue(issubclass(NotModifiedUTF7, IMAPSyntaxError))


class LongHeaderSearchTests(SelectedTestMixin, unittest.TestCase):
    def test_headerPastIndexCut(self):
        """SEARCH SUBJECT/FROM finds a field that comes after the part of an over-long header the index keeps."""
        import io

        self.login()
        filler = b"X-Filler: " + b"x" * 998 + b"\r\n"
        big = filler * 400 + b"From: <far@example.test>\r\nSubject: needle\r\n\r\nbody\r\n"
        mailbox = self.session.account.mailStore.getMailbox("INBOX")
        mailbox.appendMessage(io.BytesIO(big))
        self.assertLess(len(mailbox.messages([1])[0].headers), len(big) - 10)
        self.send(b"s SELECT INBOX")
        self.assertIn(b"* SEARCH 1\r\n", self.send(b"a SEARCH SUBJECT needle"))
        self.assertIn(b"* SEARCH 1\r\n", self.send(b"b SEARCH FROM far@example.test"))


class SharedPermanentFlagsTests(SelectedTestMixin, unittest.TestCase):
    def test_rights(self):
        """On another account's mailbox PERMANENTFLAGS lists what the viewer's rights let it change."""
        from tests.test_imap_acl import Peer

        self.login()
        append(self, flags=b"($Label2) ")
        other = Peer(self, b"other")
        self.send(b"a SETACL INBOX other lrs")
        out = other.send(b"b SELECT ~demo/INBOX")
        self.assertIn(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label2)", out)
        self.assertIn(b"* OK [PERMANENTFLAGS (\\Seen)]", out)
        self.send(b"c SETACL INBOX other lrswt")
        out = other.send(b"d SELECT ~demo/INBOX")
        self.assertIn(b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label2 \\*)]", out)
        self.send(b"e SETACL INBOX other lrw")
        self.assertIn(b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Draft $Label2 \\*)]",
                      other.send(b"f SELECT ~demo/INBOX"))
        self.send(b"g SETACL INBOX other lr")
        self.assertIn(b"* OK [PERMANENTFLAGS ()]", other.send(b"h SELECT ~demo/INBOX"))
