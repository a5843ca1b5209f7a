# -*- test-case-name: tests.test_backup_e2e -*-
"""
Backup and restore against a running IMAP server: C{gatewayctl backup} and
C{gatewayctl restore} run as separate processes while an imaplib client
uses the mailbox, and the client's IDLE session is told of the restored
messages.
"""

import imaplib
import os
import subprocess
import sys

from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from gateway.backup import findSnapshot, readManifest
from tests.support import PASSWORD, LoopbackIMAPMixin, makeTestContext, testCertificate


def message(number):
    return b"From: a@example.org\r\nSubject: m%d\r\n\r\nbody %d\r\n" % (number, number)


class RunningServerTests(LoopbackIMAPMixin, unittest.TestCase):
    def setUp(self):
        self.serveIMAP(makeTestContext(self, reactor=reactor, clock=reactor))
        self.base = os.path.abspath(self.mktemp())
        os.makedirs(self.base)
        self.config = os.path.join(self.base, "gateway.ini")
        cert, key = testCertificate()
        with open(self.config, "w") as f:
            f.write("[server]\ndata_root = %s\nmain_domain = example.test\n[tls]\ncertificate = %s\n"
                    "private_key = %s\n" % (self.context.directory.dataRoot, cert, key))
        self.dest = os.path.join(self.base, "backups")

    def gatewayctl(self, *argv):
        result = subprocess.run([sys.executable, "-m", "gateway.ctl", "--config", self.config] + list(argv),
                                capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def test_backupAndRestoreWhileServing(self):
        """A backup taken during a session, then a restore the session's IDLE sees as EXISTS, flags intact."""
        def client():
            imap = imaplib.IMAP4("127.0.0.1", self.port)
            imap.login("demo", PASSWORD)
            for number, flags in ((1, "(\\Seen $Work)"), (2, "(\\Flagged)"), (3, None)):
                imap.append("INBOX", flags, None, message(number))
            imap.select("INBOX")
            self.gatewayctl("backup", "demo@example.test", self.dest)
            imap.store("1:2", "+FLAGS", "(\\Deleted)")
            imap.expunge()
            imap.send(b"I IDLE\r\n")
            assert imap.readline().startswith(b"+ ")
            out = self.gatewayctl("restore", self.dest, "demo@example.test", "--mailbox", "INBOX")
            imap.sock.settimeout(20)
            seen = [imap.readline()]
            while seen[-1] != b"* 3 EXISTS\r\n":  # one per restored message, or both at once
                self.assertTrue(seen[-1].endswith((b" EXISTS\r\n", b" RECENT\r\n")) and len(seen) < 6, seen)
                seen.append(imap.readline())
            imap.send(b"DONE\r\n")
            while not imap.readline().startswith(b"I OK"):
                pass
            imap.sock.settimeout(None)
            typ, data = imap.fetch("1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            imap.logout()
            return out, data
        d = deferToThread(client)

        def check(result):
            out, data = result
            self.assertIn("2 messages restored, 1 already there", out)
            got = {}
            for item in data:
                if isinstance(item, tuple):
                    got[item[1].strip()] = item[0]
            self.assertEqual(sorted(got), [b"Subject: m1", b"Subject: m2", b"Subject: m3"])
            self.assertIn(b"UID 4 ", got[b"Subject: m1"])  # a new UID
            self.assertIn(b"\\Seen", got[b"Subject: m1"])
            self.assertIn(b"$Work", got[b"Subject: m1"])
            self.assertIn(b"\\Flagged", got[b"Subject: m2"])
            manifest = readManifest(findSnapshot(self.dest))
            self.assertEqual(manifest["accounts"]["demo@example.test"]["messages"]["taken"], 3)
        return d.addCallback(check)
