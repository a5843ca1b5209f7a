# -*- test-case-name: tests.test_imap_qresync -*-
"""
QRESYNC (RFC 7162 3.2): ENABLE QRESYNC, SELECT/EXAMINE with QRESYNC
parameters, VANISHED instead of EXPUNGE, UID FETCH (CHANGEDSINCE n
VANISHED), and the CLOSED response code; over a L{StringTransport} and
with imaplib over loopback.
"""

import imaplib
import re

from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from gateway.imap.server import makeFactory
from tests.support import PASSWORD, makeTestContext
from tests.test_imap_mailbox import append
from tests.test_imap_selected import Other, SelectedTestMixin


class QresyncTests(SelectedTestMixin, unittest.TestCase):
    def prepare(self, count=6):
        """
        C{count} messages in INBOX; returns (uidvalidity, modseq) as a
        client would remember them.
        """
        self.login()
        for _ in range(count):
            append(self)
        mailbox = self.session.account.mailStore.getMailbox("INBOX")
        return mailbox.uidValidity, mailbox.highestModSeq()

    def changeElsewhere(self):
        """
        Another session flags message 2 and expunges UIDs 3 and 5.
        """
        other = Other(self)
        other.send(b"o2 SELECT INBOX")
        other.send(b"o3 STORE 2 +FLAGS.SILENT ($Seen2)")
        other.send(b"o4 STORE 3,5 +FLAGS.SILENT (\\Deleted)")
        other.send(b"o5 EXPUNGE")
        other.send(b"o6 LOGOUT")

    def test_enable(self):
        """ENABLE QRESYNC answers ENABLED QRESYNC and turns CONDSTORE on; QRESYNC is advertised."""
        self.login()
        self.assertIn(b" QRESYNC", self.send(b"a CAPABILITY"))
        self.assertIn(b"* ENABLED QRESYNC\r\n", self.send(b"b ENABLE QRESYNC"))
        self.assertIn("CONDSTORE", self.session.enabled)
        self.assertRegex(self.send(b"c SELECT INBOX"), rb"\* OK \[HIGHESTMODSEQ \d+\]")

    def test_selectQresync(self):
        """SELECT (QRESYNC (uidvalidity modseq)) reports VANISHED (EARLIER) and FETCHes what changed since."""
        uidValidity, modseq = self.prepare()
        self.changeElsewhere()
        self.send(b"e ENABLE QRESYNC")
        out = self.send(b"s SELECT INBOX (QRESYNC (%d %d))" % (uidValidity, modseq))
        self.assertIn(b"* 4 EXISTS\r\n", out)
        self.assertIn(b"* VANISHED (EARLIER) 3,5\r\n", out)
        self.assertRegex(out, rb"\* 2 FETCH \(UID 2 FLAGS \(\$Seen2\) MODSEQ \(\d+\)\)\r\n")
        self.assertNotIn(b"* 1 FETCH", out)
        self.assertLess(out.index(b"* FLAGS ("), out.index(b"* 2 FETCH"))
        self.assertTrue(out.endswith(b"s OK [READ-WRITE] SELECT completed\r\n"))

    def test_fewChangesInLargerMailbox(self):
        """A few changes among many messages are FETCHed with their sequence numbers after the expunged ones."""
        uidValidity, modseq = self.prepare(40)
        self.changeElsewhere()
        other = Other(self)
        other.send(b"o2 SELECT INBOX")
        other.send(b"o3 UID STORE 30 +FLAGS.SILENT ($Late)")
        other.send(b"o4 LOGOUT")
        self.send(b"e ENABLE QRESYNC")
        out = self.send(b"s SELECT INBOX (QRESYNC (%d %d))" % (uidValidity, modseq))
        self.assertIn(b"* VANISHED (EARLIER) 3,5\r\n", out)
        self.assertRegex(out, rb"\* 2 FETCH \(UID 2 FLAGS \(\$Seen2\) MODSEQ \(\d+\)\)\r\n")
        self.assertRegex(out, rb"\* 28 FETCH \(UID 30 FLAGS \(\$Late\) MODSEQ \(\d+\)\)\r\n")
        self.assertEqual(len(re.findall(rb"FETCH", out)), 2)

    def test_knownUidsAndWrongValidity(self):
        """Known UIDs limit VANISHED; another UIDVALIDITY means a plain SELECT."""
        uidValidity, modseq = self.prepare()
        self.changeElsewhere()
        self.send(b"e ENABLE QRESYNC")
        out = self.send(b"s EXAMINE INBOX (QRESYNC (%d %d 1:4 (1,3 1,3)))" % (uidValidity, modseq))
        self.assertIn(b"* VANISHED (EARLIER) 3\r\n", out)
        out = self.send(b"t SELECT INBOX (QRESYNC (%d %d))" % (uidValidity + 1, modseq))
        self.assertNotIn(b"VANISHED", out)
        self.assertNotIn(b"FETCH", out)

    def test_closedAndVanished(self):
        """A reselect says [CLOSED]; with QRESYNC expunges are announced as VANISHED."""
        self.prepare(4)
        self.send(b"e ENABLE QRESYNC")
        self.send(b"s SELECT INBOX")
        out = self.send(b"t SELECT INBOX")
        self.assertTrue(out.startswith(b"* OK [CLOSED]"), out)
        self.send(b"a STORE 2:3 +FLAGS.SILENT (\\Deleted)")
        self.assertEqual(self.send(b"b EXPUNGE"), b"* VANISHED 2:3\r\nb OK EXPUNGE completed\r\n")

    def test_uidFetchVanished(self):
        """UID FETCH (CHANGEDSINCE n VANISHED) reports expunged UIDs of the set first; VANISHED needs QRESYNC and UID."""
        uidValidity, modseq = self.prepare()
        self.send(b"e ENABLE QRESYNC")
        self.send(b"s SELECT INBOX")
        self.changeElsewhere()
        self.assertIn(b"* VANISHED 3,5\r\n", self.send(b"n NOOP"))
        out = self.send(b"a UID FETCH 1:4 (FLAGS) (CHANGEDSINCE %d VANISHED)" % (modseq,))
        self.assertIn(b"* VANISHED (EARLIER) 3\r\n", out)
        self.assertRegex(out, rb"\* 2 FETCH \(UID 2 FLAGS \(\\Recent \$Seen2\) MODSEQ \(\d+\)\)")
        self.assertIn(b"b BAD", self.send(b"b FETCH 1:2 (FLAGS) (CHANGEDSINCE %d VANISHED)" % (modseq,)))
        self.assertIn(b"c BAD", self.send(b"c UID FETCH 1:2 (FLAGS) (VANISHED)"))

    def test_needsEnable(self):
        """SELECT with QRESYNC parameters before ENABLE QRESYNC is BAD."""
        uidValidity, modseq = self.prepare(1)
        self.assertIn(b"s BAD", self.send(b"s SELECT INBOX (QRESYNC (%d %d))" % (uidValidity, modseq)))
        self.assertIn(b"t BAD", self.send(b"t SELECT INBOX (QRESYNC (%d))" % (uidValidity,)))


class QresyncFetchUidTests(SelectedTestMixin, unittest.TestCase):
    """
    Once QRESYNC is enabled, FETCH responses no FETCH asked for carry UID
    as well as MODSEQ (RFC 7162 3.2.4): the client tracks messages by UID.
    """

    def setUp(self):
        self.login()
        append(self)
        append(self)
        self.send(b"e ENABLE QRESYNC")
        self.send(b"s SELECT INBOX")

    def test_otherSessionsChange(self):
        """Another session's flag change reaches the QRESYNC session as FETCH with UID, FLAGS and MODSEQ."""
        other = Other(self)
        other.send(b"o2 SELECT INBOX")
        other.send(b"o3 STORE 2 +FLAGS (\\Seen)")
        self.clock.advance(0)
        out = self.send(b"n NOOP")
        self.assertTrue(re.search(rb"\* 2 FETCH \(UID 2 FLAGS \(\\Seen \\Recent\) MODSEQ \(\d+\)\)\r\n", out), out)

    def test_store(self):
        """STORE's own FETCH responses carry UID once QRESYNC is enabled."""
        out = self.send(b"a STORE 1 +FLAGS (\\Flagged)")
        self.assertTrue(re.search(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Flagged \\Recent\) MODSEQ \(\d+\)\)\r\n", out), out)



class ImaplibTests(unittest.TestCase):
    def test_resync(self):
        """imaplib over loopback: a client resynchronises with SELECT (QRESYNC ...) after changes it missed."""
        context = makeTestContext(self, reactor=reactor, clock=reactor)
        factory = makeFactory(context)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.addCleanup(lambda: [s.transport.abortConnection() for s in list(factory.sessions)])

        def client():
            imap = imaplib.IMAP4("127.0.0.1", port.getHost().port)
            imap.login("demo", PASSWORD)
            for i in range(3):
                imap.append("INBOX", None, None, b"Subject: %d\r\n\r\nx\r\n" % (i,))
            imap._simple_command("ENABLE", "QRESYNC")
            imap.select("INBOX")
            validity = int(imap.untagged_responses["UIDVALIDITY"][-1])
            modseq = int(imap.untagged_responses["HIGHESTMODSEQ"][-1])
            imap.store("1", "+FLAGS", "(\\Deleted)")
            imap.expunge()
            imap.store("1", "+FLAGS", "(\\Seen)")
            imap.close()
            typ, _ = imap._simple_command("SELECT", "INBOX", "(QRESYNC (%d %d))" % (validity, modseq))
            self.assertEqual(typ, "OK")
            self.assertEqual(imap.untagged_responses.get("VANISHED")[-1], b"(EARLIER) 1")
            fetches = imap.untagged_responses.get("FETCH")
            self.assertEqual(len(fetches), 1)
            self.assertTrue(re.match(rb"1 \(UID 2 FLAGS \(\\Seen\) MODSEQ \(\d+\)\)", fetches[0]), fetches)
            imap.logout()
        return deferToThread(client)
