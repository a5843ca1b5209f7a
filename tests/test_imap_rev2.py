# -*- test-case-name: tests.test_imap_rev2 -*-
"""
IMAP4rev2 (RFC 9051) beside IMAP4rev1: what ENABLE IMAP4rev2 changes in a
session, and RFC 9051 Appendix E's changes from RFC 3501 one by one
against the server.
"""

import imaplib
import re

from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from tests.support import PASSWORD, LoopbackIMAPMixin
from tests.test_imap_acl import Peer
from tests.test_imap_protocol import IMAPTestMixin, TLSStringTransport

MESSAGE = b"From: a@example.test\r\nTo: demo@example.test\r\nSubject: rev2\r\n\r\nHello\r\n"


class Rev2Mixin(IMAPTestMixin):
    def enable(self):
        out = self.send(b"e ENABLE IMAP4rev2")
        self.assertIn(b"* ENABLED IMAP4rev2\r\ne OK", out)

    def append(self, mailbox=b"INBOX", flags=b""):
        out = self.send(b"ap APPEND %s %s{%d+}\r\n%s\r\n" % (mailbox, flags, len(MESSAGE), MESSAGE))
        self.assertIn(b"ap OK", out)
        return out

    def other(self):
        """
        A second session of the same server, logged in as demo: a function
        that sends it a command and returns its answer.
        """
        transport = TLSStringTransport()
        session = self.factory.buildProtocol(None)
        session.makeConnection(transport)
        self.addCleanup(lambda: transport.disconnected or session.connectionLost(None))

        def send(data):
            transport.clear()
            session.dataReceived(data + b"\r\n")
            return transport.value()
        self.assertIn(b"L OK", send(b'L LOGIN demo "%s"' % (PASSWORD.encode(),)))
        return send


class EnableTests(Rev2Mixin, unittest.TestCase):
    def test_capability(self):
        """IMAP4rev2 is announced beside IMAP4rev1, before and after login."""
        self.connect()
        self.assertIn(b"IMAP4rev1 ", self.greeting)
        self.assertIn(b" IMAP4rev2", self.greeting)
        out = self.login()
        self.assertIn(b" IMAP4rev2", out)
        self.assertIn(b" IMAP4rev2", self.send(b"c CAPABILITY"))

    def test_rev1Unchanged(self):
        """A session that does not enable IMAP4rev2 keeps RECENT, UNSEEN, SEARCH and modified UTF-7."""
        self.login()
        self.append()
        out = self.send(b"s SELECT INBOX")
        self.assertIn(b"* 1 RECENT\r\n", out)
        self.assertIn(b"* OK [UNSEEN 1]", out)
        self.assertNotIn(b"* LIST", out)
        self.assertIn(b"* SEARCH 1\r\n", self.send(b"f SEARCH ALL"))
        self.assertIn(b"\\Recent", self.send(b"g FETCH 1 FLAGS"))


class SelectTests(Rev2Mixin, unittest.TestCase):
    def test_select(self):
        """SELECT after ENABLE IMAP4rev2: FLAGS, EXISTS, LIST, UIDVALIDITY, UIDNEXT; no RECENT, no UNSEEN, no \\Recent (RFC 9051 6.3.2)."""
        self.login()
        self.append()
        self.enable()
        out = self.send(b"s SELECT INBOX")
        self.assertIn(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n", out)
        self.assertIn(b"* 1 EXISTS\r\n", out)
        self.assertIn(b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n', out)
        self.assertIn(b"* OK [UIDVALIDITY ", out)
        self.assertIn(b"* OK [UIDNEXT 2]", out)
        self.assertIn(b"* OK [PERMANENTFLAGS ", out)
        self.assertNotIn(b"RECENT", out)
        self.assertNotIn(b"UNSEEN", out)
        self.assertNotIn(b"\\Recent", out)
        self.assertIn(b"* 1 FETCH (UID 1 FLAGS ())\r\n", self.send(b"f FETCH 1 FLAGS"))

    def test_notClaimed(self):
        """A rev2 session claims no \\Recent: an IMAP4rev1 session selecting afterwards still sees the message recent."""
        self.login()
        self.append()
        self.enable()
        self.send(b"s SELECT INBOX")
        self.assertIn(b"* 1 RECENT\r\n", self.other()(b"s SELECT INBOX"))

    def test_examine(self):
        """EXAMINE after ENABLE IMAP4rev2 lists the mailbox and says nothing of RECENT."""
        self.login()
        self.append(b"Sent")
        self.enable()
        out = self.send(b"x EXAMINE Sent")
        self.assertIn(b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"\r\n', out)
        self.assertNotIn(b"RECENT", out)
        self.assertIn(b"x OK [READ-ONLY]", out)

    def test_selectUTF8(self):
        """ENABLE IMAP4rev2 implies UTF-8 mailbox names (RFC 9051 5.1); SELECT's LIST gives the UTF-8 name."""
        self.login()
        self.enable()
        self.assertIn(b"c OK", self.send(b'c CREATE "Entw\xc3\xbcrfe"'))
        out = self.send(b'x SELECT "Entw\xc3\xbcrfe"')
        self.assertIn(b'* LIST (\\HasNoChildren) "/" "Entw\xc3\xbcrfe"\r\n', out)
        self.assertIn(b'"Entw&APw-rfe"', self.other()(b'l LIST "" Entw*'))

    def test_selectShared(self):
        """SELECT of another account's mailbox in a rev2 session lists it under its shared name."""
        self.login()
        self.send(b"a SETACL Calendar other lrs")
        other = Peer(self, b"other")
        other.send(b"e ENABLE IMAP4rev2")
        out = other.send(b"s SELECT ~demo/Calendar")
        self.assertIn(b'* LIST (\\HasNoChildren) "/" "~demo/Calendar"\r\n', out)
        self.assertIn(b"s OK [READ-WRITE]", out)

    def test_newMail(self):
        """New mail reaches a rev2 session as EXISTS without RECENT, and its FETCH shows no \\Recent."""
        self.login()
        self.enable()
        self.send(b"s SELECT INBOX")
        self.other()(b"ap APPEND INBOX {%d+}\r\n%s" % (len(MESSAGE), MESSAGE))
        out = self.send(b"n NOOP")
        self.assertIn(b"* 1 EXISTS\r\n", out)
        self.assertNotIn(b"RECENT", out)
        self.assertNotIn(b"\\Recent", self.send(b"f FETCH 1 FLAGS"))

    def test_enableWhileSelected(self):
        """ENABLE IMAP4rev2 with a mailbox selected drops \\Recent from then on."""
        self.login()
        self.append()
        self.send(b"s SELECT INBOX")
        self.assertIn(b"\\Recent", self.send(b"f FETCH 1 FLAGS"))
        self.enable()
        self.assertNotIn(b"\\Recent", self.send(b"g FETCH 1 FLAGS"))
        out = self.append()
        self.assertIn(b"* 2 EXISTS\r\n", out)
        self.assertNotIn(b"RECENT", out)

    def test_unsolicitedFetchHasUID(self):
        """A flag change by another session reaches a rev2 session as FETCH with UID (RFC 9051 7.5.2)."""
        self.login()
        self.append()
        self.enable()
        self.send(b"s SELECT INBOX")
        other = self.other()
        other(b"s SELECT INBOX")
        other(b"t STORE 1 +FLAGS (\\Flagged)")
        self.assertIn(b"* 1 FETCH (UID 1 FLAGS (\\Flagged))\r\n", self.send(b"n NOOP"))


class SearchTests(Rev2Mixin, unittest.TestCase):
    def setUp(self):
        self.login()
        self.append()
        self.append(flags=b"(\\Seen) ")
        self.enable()
        self.send(b"s SELECT INBOX")

    def test_searchIsESEARCH(self):
        """SEARCH is answered with ESEARCH ALL (RFC 9051 6.4.4), never an untagged SEARCH."""
        out = self.send(b"a SEARCH ALL")
        self.assertEqual(out, b'* ESEARCH (TAG "a") ALL 1:2\r\na OK SEARCH completed\r\n')
        out = self.send(b"b UID SEARCH SEEN")
        self.assertEqual(out, b'* ESEARCH (TAG "b") UID ALL 2\r\nb OK UID SEARCH completed\r\n')

    def test_searchNothing(self):
        """A SEARCH that matches nothing is an ESEARCH with only its tag."""
        self.assertEqual(self.send(b"a SEARCH DRAFT"), b'* ESEARCH (TAG "a")\r\na OK SEARCH completed\r\n')

    def test_uidSearchNothingAndEmptyReturn(self):
        """UID SEARCH matching nothing is ESEARCH with the UID indicator; RETURN () means ALL."""
        self.assertEqual(self.send(b"a UID SEARCH DRAFT"), b'* ESEARCH (TAG "a") UID\r\na OK UID SEARCH completed\r\n')
        self.assertIn(b'* ESEARCH (TAG "b") ALL 1:2\r\n', self.send(b"b SEARCH RETURN () ALL"))

    def test_searchReturn(self):
        """RETURN options still choose what ESEARCH gives; CHARSET UTF-8 is allowed in IMAP4rev2."""
        self.assertIn(b'* ESEARCH (TAG "a") COUNT 2\r\n', self.send(b"a SEARCH RETURN (COUNT) ALL"))
        self.assertIn(b'* ESEARCH (TAG "c") ALL 1', self.send(b'c SEARCH CHARSET UTF-8 SUBJECT "rev2" UNSEEN'))

    def test_searchResult(self):
        """SEARCHRES (folded into IMAP4rev2): RETURN (SAVE) then FETCH $."""
        self.assertEqual(self.send(b"a SEARCH RETURN (SAVE) SEEN"), b"a OK SEARCH completed\r\n")
        self.assertIn(b"* 2 FETCH (UID 2)", self.send(b"b FETCH $ UID"))


class MailboxTests(Rev2Mixin, unittest.TestCase):
    def test_statusDeleted(self):
        """STATUS DELETED counts the messages with \\Deleted (RFC 9051 6.3.11), for rev1 and rev2 sessions."""
        self.login()
        self.append(flags=b"(\\Deleted) ")
        self.append()
        self.assertIn(b'* STATUS "INBOX" (DELETED 1 MESSAGES 2)', self.send(b"a STATUS INBOX (DELETED MESSAGES)"))
        self.enable()
        self.assertIn(b'* STATUS "INBOX" (DELETED 1 SIZE ', self.send(b"b STATUS INBOX (DELETED SIZE)"))

    def test_listStatusDeleted(self):
        """LIST-STATUS (folded in) returns STATUS with DELETED."""
        self.login()
        self.enable()
        self.append(flags=b"(\\Deleted) ")
        out = self.send(b'l LIST "" INBOX RETURN (STATUS (MESSAGES DELETED))')
        self.assertIn(b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n', out)
        self.assertIn(b'* STATUS "INBOX" (MESSAGES 1 DELETED 1)\r\n', out)

    def test_nonExistentSubscribed(self):
        """LIST (SUBSCRIBED) shows a subscribed mailbox that is gone as \\NonExistent \\Subscribed."""
        self.login()
        self.enable()
        self.send(b"c CREATE Gone")
        self.send(b"u SUBSCRIBE Gone")
        self.send(b"d DELETE Gone")
        out = self.send(b'l LIST (SUBSCRIBED) "" *')
        self.assertIn(b'* LIST (\\NonExistent \\Subscribed) "/" "Gone"\r\n', out)

    def test_deleteHasChildren(self):
        """DELETE of a \\Noselect mailbox with children is NO [HASCHILDREN] in IMAP4rev2, [INUSE] in IMAP4rev1."""
        self.login()
        self.send(b"c CREATE a/b")
        self.assertIn(b"d OK", self.send(b"d DELETE a"))
        self.assertIn(b"e NO [INUSE]", self.send(b"e DELETE a"))
        self.enable()
        self.assertIn(b"f NO [HASCHILDREN]", self.send(b"f DELETE a"))

    def test_createExistsAndTryCreate(self):
        """CREATE of an existing name is NO [ALREADYEXISTS]; COPY/MOVE to a missing one NO [TRYCREATE] (Appendix E 8)."""
        self.login()
        self.enable()
        self.append()
        self.assertIn(b"c NO [ALREADYEXISTS]", self.send(b"c CREATE INBOX"))
        self.send(b"s SELECT INBOX")
        self.assertIn(b"m NO [TRYCREATE]", self.send(b"m MOVE 1 Nowhere"))
        self.assertIn(b"k NO [TRYCREATE]", self.send(b"k COPY 1 Nowhere"))
        self.assertIn(b"n OK", self.send(b"n NOOP"))

    def test_moveCopyUid(self):
        """MOVE (folded in) answers COPYUID and the moved message vanishes as EXPUNGE."""
        self.login()
        self.enable()
        self.send(b"c CREATE Archive")
        self.append()
        self.send(b"s SELECT INBOX")
        out = self.send(b"m MOVE 1 Archive")
        self.assertTrue(re.search(rb"\* OK \[COPYUID \d+ 1 1\]", out), out)
        self.assertIn(b"* 1 EXPUNGE\r\n", out)

    def test_uidExpungeUnselect(self):
        """UID EXPUNGE and UNSELECT (both folded in) work in a rev2 session."""
        self.login()
        self.enable()
        self.append(flags=b"(\\Deleted) ")
        self.append(flags=b"(\\Deleted) ")
        self.send(b"s SELECT INBOX")
        out = self.send(b"x UID EXPUNGE 2")
        self.assertIn(b"* 2 EXPUNGE\r\nx OK", out)
        self.assertIn(b"u OK", self.send(b"u UNSELECT"))
        self.assertIn(b"(MESSAGES 1)", self.send(b"t STATUS INBOX (MESSAGES)"))

    def test_namespace(self):
        """NAMESPACE (folded in) answers the personal, other users' and shared namespaces."""
        self.login()
        self.enable()
        self.assertIn(b'* NAMESPACE (("" "/")) (("~" "/")) (("~public/" "/"))', self.send(b"n NAMESPACE"))

    def test_binaryFetch(self):
        """FETCH BINARY[] and BINARY.SIZE[] (the FETCH side of RFC 3516, folded in)."""
        self.login()
        self.enable()
        self.append()
        self.send(b"s SELECT INBOX")
        out = self.send(b"f FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])")
        self.assertIn(b"BINARY.SIZE[1] 7", out)
        self.assertIn(b"BINARY[1] {7}\r\nHello\r\n", out)

    def test_lsubStillWorks(self):
        """LSUB, deprecated by IMAP4rev2, still answers."""
        self.login()
        self.send(b"c CREATE Kept")
        self.send(b"u SUBSCRIBE Kept")
        self.assertIn(b'* LSUB (\\HasNoChildren) "/" "Kept"', self.send(b'l LSUB "" K*'))

    def test_foldedCapabilities(self):
        """Every extension RFC 9051 folds in is announced (LITERAL+ covers LITERAL-)."""
        self.login()
        out = self.send(b"c CAPABILITY")
        for name in (b"NAMESPACE", b"UNSELECT", b"UIDPLUS", b"ESEARCH", b"SEARCHRES", b"ENABLE", b"IDLE",
                     b"LIST-EXTENDED", b"LIST-STATUS", b"MOVE", b"LITERAL+", b"BINARY", b"SPECIAL-USE",
                     b"STATUS=SIZE", b"APPENDLIMIT="):
            self.assertIn(b" " + name, out)
        self.connect()
        self.assertIn(b" SASL-IR", self.greeting)


class ClarificationTests(Rev2Mixin, unittest.TestCase):
    def test_rfc2231Continuations(self):
        """Parameter value continuations are joined in BODYSTRUCTURE (Appendix E 5, RFC 2231)."""
        self.login()
        self.enable()
        message = (b"From: a@example.test\r\nSubject: x\r\nContent-Type: text/plain; charset=us-ascii;\r\n"
                   b' name*0="long-"; name*1="name.txt"\r\n\r\nHello\r\n')
        self.send(b"ap APPEND INBOX {%d+}\r\n%s\r\n" % (len(message), message))
        self.send(b"s SELECT INBOX")
        self.assertIn(b'"name" "long-name.txt"', self.send(b"f FETCH 1 BODYSTRUCTURE"))

    def test_substringKeys(self):
        """SUBJECT, FROM and BODY match substrings, KEYWORD matches whole keywords only (Appendix E 4)."""
        self.login()
        self.enable()
        self.append(flags=b"($Forwarded) ")
        self.send(b"s SELECT INBOX")
        self.assertIn(b'* ESEARCH (TAG "a") ALL 1', self.send(b"a SEARCH SUBJECT ev FROM xample BODY ell"))
        self.assertEqual(self.send(b"b SEARCH KEYWORD $Forward"), b'* ESEARCH (TAG "b")\r\nb OK SEARCH completed\r\n')
        self.assertIn(b'* ESEARCH (TAG "c") ALL 1', self.send(b"c SEARCH KEYWORD $Forwarded"))


class ImaplibRev2Tests(LoopbackIMAPMixin, unittest.TestCase):
    def test_imaplib(self):
        """imaplib over loopback: ENABLE IMAP4rev2, APPEND, SELECT without RECENT, SEARCH answered as ESEARCH."""
        def client():
            imap = imaplib.IMAP4("127.0.0.1", self.port)
            self.assertIn("IMAP4REV2", imap.capabilities)
            imap.login("demo", PASSWORD)
            self.assertEqual(imap.enable("IMAP4rev2")[0], "OK")
            self.assertEqual(imap.append("INBOX", None, None, MESSAGE)[0], "OK")
            typ, data = imap.select("INBOX")
            self.assertEqual((typ, data), ("OK", [b"1"]))
            self.assertEqual(imap.response("RECENT"), ("RECENT", [None]))
            typ, data = imap.search(None, "ALL")
            self.assertEqual(data, [None])
            [esearch] = imap.response("ESEARCH")[1]
            self.assertRegex(esearch, rb'^\(TAG "[^"]+"\) ALL 1$')
            imap.logout()
        return deferToThread(client)
