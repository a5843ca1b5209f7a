# -*- test-case-name: tests.test_lmtp -*-
"""
LMTP (RFC 2033): the protocol over StringTransport, and smtplib.LMTP over
loopback.
"""

import glob
import os
import smtplib

from twisted.internet import reactor, threads
from twisted.internet.defer import maybeDeferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from gateway.lmtp.server import LMTPServer, makeFactory
from tests.support import makeTestContext

MESSAGE = b"From: a@example.org\r\nTo: demo@example.test\r\nSubject: hi\r\n\r\n..dot line\r\nbody \xc3\xa9\r\n"


def inboxFiles(context, local):
    root = os.path.join(context.config.dataRoot(), "domains", "example.test", "accounts", local, "mail", "INBOX")
    return sorted(glob.glob(os.path.join(root, "new", "*")) + glob.glob(os.path.join(root, "cur", "*")))


class ProtocolTests(unittest.TestCase):
    def setUp(self):
        self.context = makeTestContext(self)
        self.transport = StringTransport()
        self.clock = Clock()
        self.proto = LMTPServer(self.context, clock=self.clock, runInThread=maybeDeferred)
        self.proto.makeConnection(self.transport)

    def tearDown(self):
        self.proto.connectionLost(None)

    def send(self, *lines):
        self.transport.clear()
        for line in lines:
            self.proto.dataReceived(line + b"\r\n")
        return self.transport.value().decode("utf-8").splitlines()

    def test_greeting(self):
        """The server greets with 220 and answers LHLO with its extensions."""
        self.assertTrue(self.transport.value().startswith(b"220 "))
        reply = self.send(b"LHLO mta.example.org")
        self.assertEqual(reply[-1][:4], "250 ")
        self.assertIn("250-PIPELINING", reply)
        self.assertIn("250-ENHANCEDSTATUSCODES", reply)

    def test_heloRefused(self):
        """HELO/EHLO are SMTP, not LMTP: 500, and the session goes on."""
        self.assertEqual(self.send(b"EHLO x")[0][:3], "500")
        self.assertEqual(self.send(b"LHLO x")[-1][:3], "250")

    def test_orderEnforced(self):
        """MAIL before LHLO, RCPT before MAIL and DATA without recipients get 503."""
        self.assertEqual(self.send(b"MAIL FROM:<a@b>")[0][:3], "503")
        self.send(b"LHLO x")
        self.assertEqual(self.send(b"RCPT TO:<demo@example.test>")[0][:3], "503")
        self.send(b"MAIL FROM:<a@b>")
        self.assertEqual(self.send(b"DATA")[0][:3], "503")

    def test_perRecipientReplies(self):
        """After DATA there is one reply per accepted recipient, and unknown ones were refused at RCPT."""
        self.send(b"LHLO x", b"MAIL FROM:<a@example.org>")
        self.assertEqual(self.send(b"RCPT TO:<demo@example.test>")[0][:3], "250")
        self.assertEqual(self.send(b"RCPT TO:<nobody@example.test>")[0][:3], "550")
        self.assertEqual(self.send(b"RCPT TO:<Demo.User@EXAMPLE.test>")[0][:3], "250")
        self.assertEqual(self.send(b"RCPT TO:<other+list@example.test>")[0][:3], "250")
        self.assertEqual(self.send(b"DATA")[0][:3], "354")
        body = [b"From: a@example.org", b"", b"..hidden dot", b"x"]
        replies = self.send(*body, b".")
        self.assertEqual([r[:3] for r in replies], ["250", "250", "250"])
        demo = inboxFiles(self.context, "demo")
        other = inboxFiles(self.context, "other")
        self.assertEqual(len(demo), 2)
        self.assertEqual(len(other), 1)
        with open(other[0], "rb") as f:
            self.assertEqual(
                f.read(),
                b"Return-Path: <a@example.org>\r\nDelivered-To: other+list@example.test\r\n"
                b"From: a@example.org\r\n\r\n.hidden dot\r\nx\r\n")

    def test_quotaFailsOneRecipientOnly(self):
        """A recipient over quota gets 552 while the others get the message."""
        self.context.directory.setAccount("other@example.test", quota=10, quotaSetting="10")
        self.send(b"LHLO x", b"MAIL FROM:<a@b>", b"RCPT TO:<other@example.test>", b"RCPT TO:<demo@example.test>")
        self.send(b"DATA")
        replies = self.send(b"Subject: big", b"", b"x" * 100, b".")
        self.assertEqual(replies[0][:9], "552 5.2.2")
        self.assertEqual(replies[1][:3], "250")
        self.assertEqual(inboxFiles(self.context, "other"), [])
        self.assertEqual(len(inboxFiles(self.context, "demo")), 1)

    def test_sizeLimit(self):
        """MAIL with a SIZE over the limit is refused, and so is an over-long DATA, with nothing stored."""
        self.context.config._values["lmtp", "max_message_size"] = 50
        self.proto.connectionLost(None)
        self.proto = LMTPServer(self.context, clock=self.clock, runInThread=maybeDeferred)
        self.proto.makeConnection(self.transport)
        self.send(b"LHLO x")
        self.assertEqual(self.send(b"MAIL FROM:<a@b> SIZE=51")[0][:3], "552")
        self.send(b"MAIL FROM:<a@b> SIZE=10", b"RCPT TO:<demo@example.test>", b"DATA")
        self.assertEqual(self.send(b"x" * 80, b".")[0][:3], "552")
        self.assertEqual(inboxFiles(self.context, "demo"), [])
        self.assertEqual(self.send(b"NOOP")[0][:3], "250")

    def test_detailMailbox(self):
        """user+Calendar@domain delivers into the Calendar mailbox; an unknown detail goes to INBOX."""
        self.send(b"LHLO x", b"MAIL FROM:<a@b>", b"RCPT TO:<demo+calendar@example.test>",
                  b"RCPT TO:<demo+nosuchbox@example.test>", b"DATA")
        replies = self.send(b"Subject: event", b"", b"x", b".")
        self.assertEqual([r[:3] for r in replies], ["250", "250"])
        store = self.context.realm.accountFor("demo@example.test").mailStore
        self.assertEqual(len(store.getMailbox("Calendar").uids()), 1)
        self.assertEqual(len(store.getMailbox("INBOX").uids()), 1)

    def test_structuresKept(self):
        """A delivered message's ENVELOPE and BODYSTRUCTURE are kept in the index with it, as FETCH renders them."""
        from gateway.imap.message import computeStructures

        self.send(b"LHLO x", b"MAIL FROM:<a@b>", b"RCPT TO:<demo@example.test>", b"DATA")
        self.assertEqual(self.send(b"From: a@example.org", b"Subject: kept", b"", b"x", b".")[0][:3], "250")
        inbox = self.context.realm.accountFor("demo@example.test").mailStore.getMailbox("INBOX")
        [uid] = inbox.uids()
        with inbox.openMessage(uid) as f:
            data = f.read()
        self.assertEqual(inbox.storedStructures([uid]), {uid: computeStructures(data)})
        self.assertIn(b'"kept"', inbox.storedStructures([uid])[uid]["ENVELOPE"])

    def test_detailNeedsPostRight(self):
        """+detail delivery by others needs the p right (RFC 4314): without it the copy goes to INBOX; with it, to the mailbox."""
        access = self.context.realm.accountFor("demo@example.test").access
        access.deleteACL("Calendar", "anyone")  # a new account's Calendar grants anyone p
        store = self.context.realm.accountFor("demo@example.test").mailStore

        def deliver(sender):
            self.send(b"LHLO x", b"MAIL FROM:<%s>" % (sender,), b"RCPT TO:<demo+Calendar@example.test>", b"DATA")
            self.assertEqual([r[:3] for r in self.send(b"Subject: x", b"", b"x", b".")], ["250"])
            return len(store.getMailbox("Calendar").uids()), len(store.getMailbox("INBOX").uids())

        self.assertEqual(deliver(b"stranger@else.test"), (0, 1))
        access.setACL("Calendar", "stranger@else.test", "p")
        self.assertEqual(deliver(b"stranger@else.test"), (1, 1))
        self.assertEqual(deliver(b"demo@example.test"), (2, 1))

    def test_rset(self):
        """RSET forgets the sender and recipients."""
        self.send(b"LHLO x", b"MAIL FROM:<a@b>", b"RCPT TO:<demo@example.test>", b"RSET")
        self.assertEqual(self.send(b"DATA")[0][:3], "503")

    def test_idleTimeout(self):
        """An idle session is closed with 421 after the configured timeout."""
        self.clock.advance(self.context.config["lmtp", "timeout"] + 1)
        self.assertIn(b"421 4.4.2", self.transport.value())
        self.assertTrue(self.transport.disconnecting)

    def test_unknownCommand(self):
        """An unknown command gets 500 and the session continues."""
        self.assertEqual(self.send(b"FROB")[0][:3], "500")
        self.assertEqual(self.send(b"QUIT")[0][:3], "221")


class SmtplibTests(unittest.TestCase):
    def setUp(self):
        self.context = makeTestContext(self, reactor=reactor)
        self.port = reactor.listenTCP(0, makeFactory(self.context), interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)

    def test_smtplibLMTP(self):
        """smtplib.LMTP delivers byte-exact after the envelope headers into INBOX and learns of refused recipients."""
        portNumber = self.port.getHost().port

        def client():
            with smtplib.LMTP("127.0.0.1", portNumber) as s:
                return s.sendmail("a@example.org", ["demo@example.test", "nobody@example.test"], MESSAGE)

        def check(refused):
            self.assertEqual(list(refused), ["nobody@example.test"])
            files = inboxFiles(self.context, "demo")
            self.assertEqual(len(files), 1)
            with open(files[0], "rb") as f:
                self.assertEqual(
                    f.read(), b"Return-Path: <a@example.org>\r\nDelivered-To: demo@example.test\r\n" + MESSAGE)

        return threads.deferToThread(client).addCallback(check)
