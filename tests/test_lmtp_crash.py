# -*- test-case-name: tests.test_lmtp_crash -*-
"""
LMTP and a crash: the server (a subprocess) is killed with SIGKILL in the
middle of a delivery to twenty recipients, once three copies are stored.
The MTA will try again every recipient it has no reply for, so at most one
copy (the one in flight) may be there without its reply, and every copy that
is there is whole.
"""

import glob
import os
import signal
import socket
import subprocess
import sys
import time

from twisted.internet.task import Clock
from twisted.trial import unittest

from gateway.store.mail import MailStore
from tests.support import makeDataRoot

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SERVER = """
import sys
from twisted.internet import reactor
from gateway.lmtp.server import makeFactory
from gateway.service import makeContext
from tests.support import makeTestConfig

context = makeContext(makeTestConfig(sys.argv[1]), reactor=reactor, clock=reactor)
port = reactor.listenTCP(0, makeFactory(context), interface="127.0.0.1")
print(port.getHost().port, flush=True)
reactor.run()
"""

RECIPIENTS = 20
LINE = b"0123456789" * 7 + b"abcd\r\n"
MESSAGE = b"Subject: crash\r\nMessage-ID: <crash@example.org>\r\n\r\n" + LINE * (1024 * 1024 // len(LINE))


class CrashTests(unittest.TestCase):
    timeout = 120

    def setUp(self):
        self.dataRoot = os.path.abspath(self.mktemp())
        makeDataRoot(self.dataRoot)
        self.server = subprocess.Popen(
            [sys.executable, "-c", SERVER, self.dataRoot], cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )
        self.addCleanup(self._stop)
        self.port = int(self.server.stdout.readline())

    def _stop(self):
        if self.server.poll() is None:
            self.server.kill()
        self.server.wait()
        self.server.stdout.close()

    def inbox(self):
        folder = os.path.join(self.dataRoot, "domains", "example.test", "accounts", "demo", "mail", "INBOX")
        return glob.glob(os.path.join(folder, "new", "*")) + glob.glob(os.path.join(folder, "cur", "*"))

    def test_killedMidDelivery(self):
        """Killed once three copies are in the mailbox: every copy there was answered to the MTA, but for
        at most one (the copy in flight); each is whole; the index agrees after a restart."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as s:
            replies = s.makefile("rb")
            replies.readline()
            s.sendall(b"LHLO mta.example.org\r\nMAIL FROM:<a@example.org>\r\n"
                      + b"RCPT TO:<demo@example.test>\r\n" * RECIPIENTS + b"DATA\r\n")
            line = replies.readline()
            while line[3:4] == b"-":
                line = replies.readline()
            for _ in range(RECIPIENTS + 1):
                self.assertEqual(replies.readline()[:3], b"250")
            self.assertEqual(replies.readline()[:3], b"354")
            s.sendall(MESSAGE + b".\r\n")
            deadline = time.monotonic() + 60
            while len(self.inbox()) < 3 and time.monotonic() < deadline:
                time.sleep(0.001)
            self.server.send_signal(signal.SIGKILL)
            self.server.wait()
            # What the server wrote before it died still reaches the MTA.
            answered = 0
            for line in iter(replies.readline, b""):
                self.assertEqual(line[:4], b"250 ")
                answered += 1
        copies = self.inbox()
        self.assertGreaterEqual(len(copies), 3)
        self.assertIn(len(copies) - answered, (0, 1))
        expected = b"Return-Path: <a@example.org>\r\nDelivered-To: demo@example.test\r\n" + MESSAGE
        for path in copies:
            with open(path, "rb") as f:
                self.assertEqual(f.read(), expected)
        store = MailStore(
            os.path.join(self.dataRoot, "domains", "example.test", "accounts", "demo", "mail"),
            reactor=Clock(), useInotify=False,
        )
        self.addCleanup(store.close)
        mailbox = store.getMailbox("INBOX")
        if len(mailbox.uids()) != len(copies):
            # The copy in flight was renamed but its index row not
            # committed: a rescan finds it, as it finds any file put there.
            self.successResultOf(mailbox.synchronize())
        self.assertEqual(len(mailbox.uids()), len(copies))
