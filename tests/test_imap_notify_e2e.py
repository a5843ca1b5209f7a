# -*- test-case-name: tests.test_imap_notify_e2e -*-
"""
NOTIFY (RFC 5465) end to end with imaplib over loopback: one session asks
for events and waits (IDLE, NOOP) while another changes other mailboxes;
and the same across two worker processes.
"""

import imaplib
import ssl

from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from tests import test_workers
from tests.support import PASSWORD, LoopbackIMAPMixin, makeTestContext, testCertificate
from tests.test_workers import ACCOUNT, Server, untagged

MESSAGE = b"From: a@example.test\r\nTo: demo@example.test\r\nSubject: notify\r\n\r\nHello\r\n"

imaplib.Commands.setdefault("NOTIFY", ("AUTH", "SELECTED"))
imaplib.Commands.setdefault("SETMETADATA", ("AUTH", "SELECTED"))


def notifySet(client, text):
    """
    Send C{NOTIFY SET text}; the tagged answer's type and the untagged
    responses before it.
    """
    typ, data = client._simple_command("NOTIFY", "SET", text)
    return typ, data


def idle(client):
    """
    Start IDLE: the tag, once the server said it is idling.
    """
    tag = client._new_tag()
    client.send(tag + b" IDLE\r\n")
    line = client.readline()
    assert line.startswith(b"+"), line
    return tag


def done(client, tag):
    client.send(b"DONE\r\n")
    return untagged(client, tag + b" ")


class NotifyEndToEndTests(LoopbackIMAPMixin, unittest.TestCase):
    def setUp(self):
        self.serveIMAP(makeTestContext(self, reactor=reactor, clock=reactor), tls=True)

    def client(self):
        context = ssl.create_default_context(cafile=testCertificate()[0])
        client = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context, timeout=30)
        client.login("demo", PASSWORD)
        return client

    def test_idleGetsStatusOfAnotherFolder(self):
        """A: NOTIFY SET (mailboxes ...) then IDLE; B appends to Calendar: A gets its STATUS at once, then a LIST for B's CREATE."""
        def run():
            a, b = self.client(), self.client()
            typ, _ = notifySet(a, "(mailboxes (Calendar INBOX) (MessageNew MessageExpunge)) (personal (MailboxName))")
            self.assertEqual(typ, "OK")
            tag = idle(a)
            self.assertEqual(b.append("Calendar", None, None, MESSAGE)[0], "OK")
            line = untagged(a, b"STATUS")
            self.assertRegex(line, rb'^\* STATUS "Calendar" \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)\r\n$')
            self.assertEqual(b.create("Projects")[0], "OK")
            self.assertEqual(untagged(a, b"LIST"), b'* LIST (\\HasNoChildren) "/" "Projects"\r\n')
            self.assertTrue(done(a, tag).startswith(tag + b" OK"))
            a.logout()
            b.logout()
        return deferToThread(run)

    def test_noopGetsStatus(self):
        """A: NOTIFY SET STATUS answers the folders' STATUS; after B's APPEND, A's NOOP carries the new STATUS."""
        def run():
            a, b = self.client(), self.client()
            typ, _ = notifySet(a, "STATUS (subtree Calendar (MessageNew MessageExpunge))")
            self.assertEqual(typ, "OK")
            self.assertEqual(len(a.untagged_responses.pop("STATUS")), 1)
            self.assertEqual(b.append("Calendar", None, None, MESSAGE)[0], "OK")
            self.assertEqual(b.append("Drafts", None, None, MESSAGE)[0], "OK")
            statuses = []
            for _ in range(100):
                a.noop()
                statuses += a.untagged_responses.pop("STATUS", [])
                if statuses:
                    break
            self.assertEqual(len(statuses), 1)
            self.assertRegex(statuses[0], rb'^"Calendar" \(MESSAGES 1 UIDNEXT 2 ')
            a.logout()
            b.logout()
        return deferToThread(run)


class NotifyWorkersTests(unittest.TestCase):
    """NOTIFY across two worker processes over one data root."""

    timeout = 180

    sessionOn = test_workers.WorkerEndToEndTests.sessionOn

    def test_anotherWorkersChanges(self):
        """A session in one worker with NOTIFY learns of an APPEND, a CREATE and a SETMETADATA made through the other worker."""
        server = Server(self)
        watcher = server.imap()
        watcher.login(ACCOUNT, PASSWORD)
        typ, _ = notifySet(watcher, "(personal (MessageNew MessageExpunge MailboxName MailboxMetadataChange))")
        self.assertEqual(typ, "OK")
        tag = idle(watcher)
        [entry] = server.waitFor(lambda: [s for s in server.sessions() if s["idle"]], "the IDLE session")

        def make():
            client = server.imap()
            client.login(ACCOUNT, PASSWORD)
            client.noop()
            return client

        writer, _ = self.sessionOn(server, entry["worker"], make)
        self.assertEqual(writer.append("Calendar", None, None, MESSAGE)[0], "OK")
        self.assertRegex(untagged(watcher, b"STATUS"), rb'^\* STATUS "Calendar" \(MESSAGES 1 UIDNEXT 2 ')
        self.assertEqual(writer.create("Elsewhere")[0], "OK")
        self.assertEqual(untagged(watcher, b"LIST"), b'* LIST (\\HasNoChildren) "/" "Elsewhere"\r\n')
        self.assertEqual(writer._simple_command("SETMETADATA", "INBOX", '(/shared/comment "hi")')[0], "OK")
        self.assertEqual(untagged(watcher, b"METADATA"), b'* METADATA "INBOX" /shared/comment\r\n')
        self.assertTrue(done(watcher, tag).startswith(tag + b" OK"))
