# -*- test-case-name: tests.test_imap_snapshot -*-
"""
SELECT, EXAMINE and STATUS read UIDNEXT and the messages from one state of
the index: another process's commit landing between two reads must not make
UIDNEXT count a message that EXISTS (or MESSAGES) does not.
"""

import re

from twisted.internet.task import Clock
from twisted.trial import unittest

from gateway.store.mail import MailStore
from gateway.store.mailbox import Mailbox
from tests.test_imap_mailbox import append
from tests.test_imap_protocol import IMAPTestMixin


class SnapshotTests(IMAPTestMixin, unittest.TestCase):
    def setUp(self):
        self.connect()
        self.login()
        append(self)
        append(self)

    def injectAfter(self, name):
        """
        Make the next call of C{Mailbox.name} be followed by another
        process's APPEND to INBOX (a second store on the same data).
        """
        outside = MailStore(self.session.account.mailStore.path, reactor=Clock(), useInotify=False)
        self.addCleanup(outside.close)
        original = getattr(Mailbox, name)
        done = []

        def wrapper(mailbox, *args, **kwargs):
            result = original(mailbox, *args, **kwargs)
            if not done:
                done.append(True)
                outside.getMailbox("INBOX").appendMessage(b"Subject: between\r\n\r\nx\r\n")
            return result

        self.patch(Mailbox, name, wrapper)
        return done

    def assertConsistentSelect(self, verb):
        done = self.injectAfter("uidState" if hasattr(Mailbox, "uidState") else "uidSnapshot")
        out = self.send(b"s " + verb + b" INBOX")
        self.assertTrue(done, "the other process's APPEND was not injected")
        self.assertIn(b"s OK", out)
        exists = int(re.search(rb"\* (\d+) EXISTS", out).group(1))
        uidNext = int(re.search(rb"\[UIDNEXT (\d+)\]", out).group(1))
        recent = int(re.search(rb"\* (\d+) RECENT", out).group(1))
        self.assertEqual((exists, recent, uidNext), (2, 2, 3))
        # The message that came in between is announced (before the
        # tagged OK or at the next command), not lost.
        for _ in range(3):
            self.clock.advance(1)
        out += self.send(b"n NOOP")
        # ... and is \\Recent in this session (the only one to see it).
        self.assertIn(b"* 3 EXISTS\r\n* 3 RECENT\r\n", out)
        out = self.send(b"f UID FETCH %d:* (UID)" % (uidNext,))
        self.assertIn(b"* 3 FETCH (UID 3)", out)

    def test_select(self):
        """SELECT's UIDNEXT and RECENT are of the same state as its EXISTS when another process appends meanwhile."""
        self.assertConsistentSelect(b"SELECT")

    def test_examine(self):
        """EXAMINE's UIDNEXT and RECENT are of the same state as its EXISTS when another process appends meanwhile."""
        self.assertConsistentSelect(b"EXAMINE")

    def test_status(self):
        """STATUS's UIDNEXT is of the same state as its MESSAGES when another process appends meanwhile."""
        done = self.injectAfter("counts")
        out = self.send(b"a STATUS INBOX (MESSAGES UIDNEXT)")
        self.assertTrue(done, "the other process's APPEND was not injected")
        self.assertIn(b"* STATUS \"INBOX\" (MESSAGES 2 UIDNEXT 3)", out)
        out = self.send(b"b STATUS INBOX (UIDNEXT MESSAGES)")
        self.assertIn(b"* STATUS \"INBOX\" (UIDNEXT 4 MESSAGES 3)", out)
