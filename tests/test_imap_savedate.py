# -*- test-case-name: tests.test_imap_savedate -*-
"""
SAVEDATE (RFC 8514): when a message was saved into its mailbox (by
delivery, APPEND, COPY or MOVE), as FETCH SAVEDATE and the SAVEDBEFORE,
SAVEDON, SAVEDSINCE and SAVEDATESUPPORTED search keys.
"""

import datetime
import os
import re

from twisted.trial import unittest

from gateway.store import maildir
from tests.test_imap_selected import SelectedTestMixin


class SaveDateTests(SelectedTestMixin, unittest.TestCase):
    def setUp(self):
        self.login()
        self.mailbox = self.session.account.mailStore.getMailbox("INBOX")
        old = datetime.datetime(2001, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc)
        self.mailbox.appendMessage(b"Subject: a\r\n\r\nx\r\n", (), old)
        self.mailbox.appendMessage(b"Subject: b\r\n\r\nx\r\n", (), old)
        self.send(b"s SELECT INBOX")
        self.today = datetime.datetime.now(datetime.timezone.utc).strftime("%d-%b-%Y").encode()

    def test_fetch(self):
        """FETCH SAVEDATE is when the message was stored here, not its internal date."""
        self.assertIn(b" SAVEDATE", self.send(b"a CAPABILITY"))
        out = self.send(b"b FETCH 1 (SAVEDATE INTERNALDATE)")
        self.assertIn(b'INTERNALDATE " 3-Feb-2001 04:05:06 +0000"', out)
        saved = re.search(rb'SAVEDATE "([^"]+)"', out).group(1)
        self.assertEqual(datetime.datetime.strptime(saved.decode().strip(), "%d-%b-%Y %H:%M:%S %z").date(),
                         datetime.datetime.now(datetime.timezone.utc).date())

    def test_copyIsSavedNow(self):
        """A message copied keeps its internal date and gets a new save date."""
        self.send(b"c COPY 1 Junk")
        self.send(b"s SELECT Junk")
        out = self.send(b"f FETCH 1 (SAVEDATE INTERNALDATE)")
        self.assertIn(b'INTERNALDATE " 3-Feb-2001', out)
        self.assertNotIn(b'SAVEDATE " 3-Feb-2001', out)

    def test_unknownSaveDate(self):
        """A file put there by another program with a name that is not a time has SAVEDATE NIL."""
        path = os.path.join(self.mailbox._path(), "cur", "oddname:2,")
        with open(path, "wb") as f:
            f.write(b"Subject: odd\r\n\r\nx\r\n")
        self.send(b"n NOOP")  # rescans the folder
        self.assertIn(b"SAVEDATE NIL", self.send(b"f FETCH 3 SAVEDATE"))

    def test_search(self):
        """SAVEDON/SAVEDSINCE/SAVEDBEFORE compare the save date; SAVEDATESUPPORTED matches everything here."""
        self.assertIn(b"* SEARCH 1 2\r\n", self.send(b"a SEARCH SAVEDON " + self.today))
        self.assertIn(b"* SEARCH 1 2\r\n", self.send(b"b SEARCH SAVEDSINCE 1-Jan-2020"))
        self.assertIn(b"* SEARCH\r\n", self.send(b"c SEARCH SAVEDBEFORE 1-Jan-2020"))
        self.assertIn(b"* SEARCH 1 2\r\n", self.send(b"d SEARCH SAVEDATESUPPORTED"))
        self.assertIn(b"* SEARCH 2\r\n", self.send(b'e SEARCH OR SAVEDBEFORE 1-Jan-2020 SUBJECT b'))
        self.assertIn(b"* SEARCH\r\n", self.send(b"f SEARCH ON " + self.today))

    def test_saveDates(self):
        """IMailbox.saveDates reads the time at the front of the Maildir name."""
        dates = self.mailbox.saveDates([1, 2, 99])
        self.assertEqual(sorted(dates), [1, 2])
        base = self.mailbox._conn.execute("SELECT base FROM messages WHERE uid = 1").fetchone()[0]
        self.assertEqual(dates[1], int(maildir.splitName(base)[0].split(".")[0]))
