# -*- test-case-name: tests.test_imap_searchres -*-
"""
SEARCHRES (RFC 5182: RETURN (SAVE) and C{$}) and WITHIN (RFC 5032: OLDER and
YOUNGER), over a L{StringTransport} and with imaplib over loopback.
"""

import datetime
import imaplib
import time

from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from gateway.imap.server import makeFactory
from tests.support import PASSWORD, makeTestContext
from tests.test_imap_selected import SelectedTestMixin


class SearchResTests(SelectedTestMixin, unittest.TestCase):
    def test_rfcExample(self):
        """RFC 5182 3.1: SEARCH RETURN (SAVE) answers no ESEARCH, and FETCH $ uses what it found."""
        self.selectWith(5)
        self.send(b"a STORE 2,4 +FLAGS.SILENT (\\Flagged)")
        self.assertEqual(self.send(b"b SEARCH RETURN (SAVE) FLAGGED"), b"b OK SEARCH completed\r\n")
        out = self.send(b"c FETCH $ (UID)")
        self.assertEqual(out, b"* 2 FETCH (UID 2)\r\n* 4 FETCH (UID 4)\r\nc OK FETCH completed\r\n")
        out = self.send(b"d UID FETCH $ (FLAGS)")
        self.assertIn(b"* 2 FETCH (UID 2 FLAGS", out)
        self.assertNotIn(b"* 1 FETCH", out)

    def test_saveWithOptions(self):
        """SAVE with MIN or MAX keeps only those; with ALL or COUNT every match; the other options still answer."""
        self.selectWith(5)
        out = self.send(b"a SEARCH RETURN (SAVE MIN) 2:4")
        self.assertIn(b'* ESEARCH (TAG "a") MIN 2\r\n', out)
        self.assertIn(b"* SEARCH 2\r\n", self.send(b"b SEARCH $"))
        self.send(b"c UID SEARCH RETURN (MIN MAX SAVE) 2:4")
        self.assertIn(b"* SEARCH 2 4\r\n", self.send(b"d SEARCH $"))
        self.send(b"e SEARCH RETURN (COUNT SAVE) 2:4")
        self.assertIn(b"* SEARCH 2 3 4\r\n", self.send(b"f SEARCH $"))
        self.assertIn(b"* SEARCH 3\r\n", self.send(b"g SEARCH UID $ NOT 2,4"))

    def test_dollarInStoreCopyAndExpunged(self):
        """$ works in STORE, COPY and UID EXPUNGE; expunged messages drop out of it; SELECT empties it."""
        self.selectWith(4)
        self.send(b"a SEARCH RETURN (SAVE) 2:3")
        out = self.send(b"b STORE $ +FLAGS (\\Deleted)")
        self.assertIn(b"* 2 FETCH", out)
        self.assertIn(b"* 3 FETCH", out)
        self.assertRegex(self.send(b"c COPY $ Junk"), rb"c OK \[COPYUID \d+ 2:3 1:2\]")
        self.assertEqual(self.send(b"d UID EXPUNGE $"), b"* 3 EXPUNGE\r\n* 2 EXPUNGE\r\n* 2 RECENT\r\nd OK UID EXPUNGE completed\r\n")
        self.assertEqual(self.send(b"e FETCH $ UID"), b"e OK FETCH completed\r\n")
        self.send(b"f SEARCH RETURN (SAVE) ALL")
        self.send(b"g SELECT INBOX")
        self.assertEqual(self.send(b"h FETCH $ UID"), b"h OK FETCH completed\r\n")

    def test_sortSave(self):
        """SORT RETURN (SAVE) saves the sorted matches (MIN/MAX alone: those) for $."""
        self.selectWith(4)
        self.assertEqual(self.send(b"a SORT RETURN (SAVE) (REVERSE ARRIVAL) UTF-8 2:3"), b"a OK SORT completed\r\n")
        self.assertIn(b"* SEARCH 2 3\r\n", self.send(b"b SEARCH $"))
        out = self.send(b"c UID SORT RETURN (SAVE MIN) (REVERSE ARRIVAL) UTF-8 ALL")
        self.assertIn(b'* ESEARCH (TAG "c") UID MIN 4\r\n', out)
        self.assertIn(b"* SEARCH 4\r\n", self.send(b"d SEARCH $"))

    def test_failedSearchEmpties(self):
        """A SEARCH RETURN (SAVE) that fails leaves $ empty; $ cannot be part of a larger set."""
        self.selectWith(3)
        self.send(b"a SEARCH RETURN (SAVE) ALL")
        self.assertIn(b"b BAD", self.send(b"b SEARCH RETURN (SAVE) FROBNICATE"))
        self.assertIn(b"* SEARCH\r\n", self.send(b"c SEARCH $"))
        self.assertIn(b"d BAD", self.send(b"d FETCH 1,$ UID"))

    def test_capability(self):
        """SEARCHRES and WITHIN are advertised."""
        self.login()
        line = self.send(b"a CAPABILITY").split(b"\r\n")[0] + b" "
        self.assertIn(b" SEARCHRES ", line)
        self.assertIn(b" WITHIN ", line)


class WithinTests(SelectedTestMixin, unittest.TestCase):
    def test_olderYounger(self):
        """OLDER n and YOUNGER n compare the internal date with now minus n seconds."""
        self.login()
        mailbox = self.session.account.mailStore.getMailbox("INBOX")
        now = datetime.datetime.now(datetime.timezone.utc)
        for age in (3 * 86400, 3600, 60):
            mailbox.appendMessage(b"Subject: x\r\n\r\nx\r\n", (), now - datetime.timedelta(seconds=age))
        self.send(b"s SELECT INBOX")
        self.assertIn(b"* SEARCH 1\r\n", self.send(b"a SEARCH OLDER 86400"))
        self.assertIn(b"* SEARCH 2 3\r\n", self.send(b"b SEARCH YOUNGER 86400"))
        self.assertIn(b"* SEARCH 3\r\n", self.send(b"c SEARCH YOUNGER 600"))
        self.assertIn(b"* SEARCH 2\r\n", self.send(b"d SEARCH OLDER 600 YOUNGER 7200"))
        self.assertIn(b"e BAD", self.send(b"e SEARCH OLDER 0"))
        self.assertIn(b"f BAD", self.send(b"f SEARCH YOUNGER x"))


class ImaplibTests(unittest.TestCase):
    def test_searchResAndWithin(self):
        """imaplib over loopback: SEARCH RETURN (SAVE), then UID FETCH $ and SEARCH YOUNGER."""
        context = makeTestContext(self, reactor=reactor, clock=reactor)
        factory = makeFactory(context)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.addCleanup(lambda: [s.transport.abortConnection() for s in list(factory.sessions)])

        def client():
            imap = imaplib.IMAP4("127.0.0.1", port.getHost().port)
            imap.login("demo", PASSWORD)
            old = imaplib.Time2Internaldate(time.time() - 7 * 86400)
            imap.append("INBOX", "(\\Flagged)", old, b"Subject: old\r\n\r\nx\r\n")
            imap.append("INBOX", None, None, b"Subject: new\r\n\r\nx\r\n")
            imap.select("INBOX")
            typ, data = imap._simple_command("SEARCH", "RETURN", "(SAVE)", "FLAGGED")
            self.assertEqual(typ, "OK")
            typ, data = imap.uid("FETCH", "$", "(FLAGS)")
            self.assertEqual(len([d for d in data if d]), 1)
            self.assertIn(b"UID 1 ", data[0])
            typ, data = imap.search(None, "YOUNGER", "3600")
            self.assertEqual(data, [b"2"])
            imap.logout()
        return deferToThread(client)
