# -*- test-case-name: tests.test_store_keywords -*-
"""
Issue 16 item 11: keywords are kept where Maildir tools keep them (the
C{dovecot-keywords} file and letters in file names, as Dovecot does), so a
rebuilt index (and a Dovecot) gets them back.
"""

import os

from twisted.trial import unittest

from gateway.store import maildir, scan
from tests.test_store_mail import CRLF_MESSAGE, StoreTestMixin


class KeywordFileTests(StoreTestMixin, unittest.TestCase):
    """
    Keywords in C{dovecot-keywords} and file-name letters.
    """

    def keywordFile(self, mailbox):
        with open(os.path.join(mailbox._path(), "dovecot-keywords")) as f:
            return f.read()

    def rebuild(self, store):
        store.close()
        for suffix in ("", "-wal", "-shm"):
            maildir.removeQuietly(os.path.join(self.mailPath, maildir.INDEX_NAME + suffix))
        return self.makeStore(self.mailPath)

    def test_keywordsSurviveRebuild(self):
        """Keywords given at APPEND and by STORE come back when the index is rebuilt from the Maildir."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        first = inbox.appendMessage(CRLF_MESSAGE, flags=["$Junk", "\\Seen"])
        second = inbox.appendMessage(CRLF_MESSAGE, flags=["Important"])
        inbox.setFlags([first], ["Work"], "+")
        inbox.setFlags([second], ["$Junk"], "+")
        inbox.setFlags([second], ["Important"], "-")
        self.assertEqual(self.keywordFile(inbox), "0 $Junk\n1 Important\n2 Work\n")
        self.assertEqual(sorted(maildir.splitName(name)[1] for name in self.allFiles(inbox)),
                         ["2,Sac", "2,a"])
        store = self.rebuild(store)
        inbox = store.getMailbox("INBOX")
        infos = inbox.messages(inbox.uids())
        self.assertEqual(sorted(sorted(info.flags) for info in infos),
                         [["$Junk"], ["$Junk", "Work", "\\Seen"]])

    def test_copyUsesDestinationLetters(self):
        """A copy carries its keywords under the destination's own letters."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        drafts = store.getMailbox("Drafts")
        drafts.appendMessage(CRLF_MESSAGE, flags=["Other"])
        uid = inbox.appendMessage(CRLF_MESSAGE, flags=["Mine"])
        [(_, copied)] = inbox.copyTo([uid], drafts)
        self.assertEqual(self.keywordFile(drafts), "0 Other\n1 Mine\n")
        self.assertEqual(drafts.messages([copied])[0].flags, {"Mine"})
        self.assertEqual(sorted(maildir.splitName(name)[1] for name in self.allFiles(drafts)), ["2,a", "2,b"])

    def test_letterRemovedElsewhereDropsKeyword(self):
        """A keyword letter another program removes from a file name is dropped from the index."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        uid = inbox.appendMessage(CRLF_MESSAGE, flags=["Important", "\\Seen"])
        [name] = self.files(inbox)
        cur = os.path.join(inbox._path(), "cur")
        os.rename(os.path.join(cur, name), os.path.join(cur, name.replace(":2,Sa", ":2,S")))
        store._conn.execute("UPDATE mailboxes SET newmtime = 0, curmtime = 0")
        scan.scanMailbox(store._conn, inbox._id, inbox._path())
        self.assertEqual(inbox.messages([uid])[0].flags, {"\\Seen"})

    def test_lastFlagRemovedStaysInCur(self):
        """Removing the last flag renames the file to an empty info in cur/, and a keyword-only message is in cur/."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        uid = inbox.appendMessage(CRLF_MESSAGE, flags=["\\Seen"])
        inbox.setFlags([uid], ["\\Seen"], "-")
        self.assertEqual([maildir.splitName(name)[1] for name in self.files(inbox)], ["2,"])
        other = inbox.appendMessage(CRLF_MESSAGE, flags=["Later"])
        self.assertEqual(self.files(inbox, "new"), [])
        inbox.setFlags([other], ["Later"], "-")
        self.assertEqual(sorted(maildir.splitName(name)[1] for name in self.files(inbox)), ["2,", "2,"])
