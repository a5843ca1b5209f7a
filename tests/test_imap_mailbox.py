# -*- test-case-name: tests.test_imap_mailbox -*-
"""
IMAP authenticated-state commands: LIST/LSUB, CREATE/DELETE/RENAME,
SUBSCRIBE, STATUS, NAMESPACE, SELECT/EXAMINE, APPEND and QUOTA.
"""

from twisted.trial import unittest

from gateway.imap import protocol
from gateway.imap.commands_append import parseDateTime
from gateway.imap.commands_mailbox import patternRegex
from tests.test_imap_protocol import IMAPTestMixin

MESSAGE = b"From: a@example.test\r\nSubject: hi\r\n\r\nHello\r\n"


def append(test, mailbox=b"INBOX", message=MESSAGE, flags=b""):
    out = test.send(b"ap APPEND %s %s{%d+}\r\n%s\r\n" % (mailbox, flags, len(message), message))
    test.assertIn(b"ap OK [APPENDUID", out)
    return out


class ListTests(IMAPTestMixin, unittest.TestCase):
    def test_listAll(self):
        """LIST "" * lists every mailbox with child and special-use attributes."""
        self.login()
        out = self.send(b'a LIST "" *')
        self.assertIn(b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n', out)
        self.assertIn(b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"\r\n', out)
        self.assertIn(b'"Calendar"', out)
        self.assertTrue(out.endswith(b"a OK LIST completed\r\n"))

    def test_listDelimiter(self):
        """LIST "" "" gives the hierarchy delimiter."""
        self.login()
        self.assertIn(b'* LIST (\\Noselect) "/" ""', self.send(b'a LIST "" ""'))

    def test_percentWildcard(self):
        """% does not match the hierarchy delimiter; children show \\HasChildren."""
        self.login()
        self.send(b"a CREATE Work/Projects")
        out = self.send(b'b LIST "" %')
        self.assertIn(b'(\\HasChildren) "/" "Work"', out)
        self.assertNotIn(b"Projects", out)
        out = self.send(b'c LIST Work/ %')
        self.assertIn(b'"Work/Projects"', out)

    def test_listUTF7(self):
        """Names are listed in modified UTF-7."""
        self.login()
        self.assertIn(b"OK", self.send(b"a CREATE Entw&APw-rfe"))
        self.assertIn(b'"Entw&APw-rfe"', self.send(b'b LIST "" Entw*'))

    def test_lsubAndSubscribe(self):
        """SUBSCRIBE and UNSUBSCRIBE change what LSUB lists."""
        self.login()
        self.send(b"a CREATE Lists")
        self.assertNotIn(b'"Lists"', self.send(b'b LSUB "" *'))
        self.send(b"c SUBSCRIBE Lists")
        self.assertIn(b'* LSUB (\\HasNoChildren) "/" "Lists"', self.send(b'd LSUB "" *'))
        self.send(b"e UNSUBSCRIBE Lists")
        self.assertNotIn(b'"Lists"', self.send(b'f LSUB "" *'))

    def test_subscribedChildren(self):
        """LSUB % shows a parent of a subscribed child as \\Noselect; RECURSIVEMATCH gives CHILDINFO."""
        self.login()
        self.send(b"a CREATE Top/Sub")
        self.send(b"b SUBSCRIBE Top/Sub")
        self.assertIn(b'* LSUB (\\Noselect \\HasChildren) "/" "Top"', self.send(b'c LSUB "" %'))
        out = self.send(b'd LIST (SUBSCRIBED RECURSIVEMATCH) "" %')
        self.assertIn(b'* LIST (\\HasChildren) "/" "Top" ("CHILDINFO" ("SUBSCRIBED"))', out)
        self.assertNotIn(b"Top/Sub", out)

    def test_listExtended(self):
        """LIST-EXTENDED: (SPECIAL-USE) selects special-use mailboxes, RETURN (STATUS) adds STATUS."""
        self.login()
        out = self.send(b'a LIST (SPECIAL-USE) "" * RETURN (STATUS (MESSAGES UIDNEXT))')
        self.assertIn(b'\\Trash) "/" "Deleted Items"', out)
        self.assertNotIn(b'"INBOX"', out)
        self.assertIn(b'* STATUS "Sent" (MESSAGES 0 UIDNEXT 1)', out)

    def test_listSubscribedReturn(self):
        """LIST (SUBSCRIBED) marks \\Subscribed; multiple patterns are accepted."""
        self.login()
        out = self.send(b'a LIST (SUBSCRIBED) "" (INBOX Sent)')
        self.assertIn(b'\\Subscribed) "/" "INBOX"', out)
        self.assertIn(b'"Sent"', out)
        self.assertNotIn(b'"Junk"', out)

    def test_listBad(self):
        """Unknown LIST options get BAD."""
        self.login()
        self.assertIn(b"a BAD", self.send(b'a LIST (FOO) "" *'))

    def test_patternRegex(self):
        """INBOX matches in any case; * crosses the delimiter, % does not."""
        self.assertTrue(patternRegex("", "inbox").match("INBOX"))
        self.assertTrue(patternRegex("", "*").match("a/b"))
        self.assertFalse(patternRegex("", "%").match("a/b"))


class ManageTests(IMAPTestMixin, unittest.TestCase):
    def test_createDeleteRename(self):
        """CREATE, RENAME and DELETE manage mailboxes; errors carry response codes."""
        self.login()
        self.assertIn(b"a OK", self.send(b"a CREATE Old"))
        self.assertIn(b"b NO [ALREADYEXISTS]", self.send(b"b CREATE Old"))
        self.assertIn(b"c OK", self.send(b"c RENAME Old New"))
        self.assertIn(b"d NO [NONEXISTENT]", self.send(b"d DELETE Old"))
        self.assertIn(b"e OK", self.send(b"e DELETE New"))
        self.assertNotIn(b'"New"', self.send(b'f LIST "" *'))
        self.assertIn(b"g NO", self.send(b"g DELETE INBOX"))
        self.assertIn(b"h NO", self.send(b"h CREATE inbox"))

    def test_createBadNames(self):
        """CREATE refuses wildcards, empty levels and names that are not modified UTF-7 with NO [CANNOT]."""
        self.login()
        self.assertIn(b"a NO [CANNOT]", self.send(b'a CREATE "a*b"'))
        self.assertIn(b"b NO [CANNOT]", self.send(b'b CREATE "a//b"'))
        self.assertIn(b"c NO [CANNOT]", self.send(b"c CREATE &Jjo"))

    def test_appendToSelected(self):
        """APPEND into the selected mailbox is announced with EXISTS before the tagged OK."""
        self.login()
        self.send(b"a SELECT INBOX")
        out = append(self)
        self.assertTrue(out.startswith(b"* 1 EXISTS\r\n* 1 RECENT\r\nap OK [APPENDUID"), out)

    def test_renameInbox(self):
        """Renaming INBOX moves its messages and leaves INBOX empty."""
        self.login()
        append(self)
        self.assertIn(b"a OK", self.send(b"a RENAME INBOX Saved"))
        self.assertIn(b"(MESSAGES 0)", self.send(b"b STATUS INBOX (MESSAGES)"))
        self.assertIn(b"(MESSAGES 1)", self.send(b"c STATUS Saved (MESSAGES)"))

    def test_status(self):
        """STATUS reports counts; unknown items are BAD; unknown mailboxes NO."""
        self.login()
        append(self)
        append(self, flags=b"(\\Seen) ")
        out = self.send(b"a STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY SIZE)")
        self.assertRegex(out, rb'\* STATUS "INBOX" \(MESSAGES 2 UNSEEN 1 UIDNEXT 3 UIDVALIDITY \d+ SIZE %d\)'
                         % (2 * len(MESSAGE),))
        self.assertIn(b"b BAD", self.send(b"b STATUS INBOX (FOO)"))
        self.assertIn(b"c NO [NONEXISTENT]", self.send(b"c STATUS Nope (MESSAGES)"))

    def test_statusRecent(self):
        """
        STATUS RECENT counts the messages no session has been told of yet;
        once a session selects the mailbox they are its own recent ones.
        """
        self.login()
        append(self, mailbox=b"Sent")
        append(self, mailbox=b"Sent")
        self.assertIn(b"(RECENT 2 MESSAGES 2)", self.send(b"a STATUS Sent (RECENT MESSAGES)"))
        self.assertIn(b"* 2 RECENT", self.send(b"b SELECT Sent"))
        self.assertIn(b"(RECENT 2)", self.send(b"c STATUS Sent (RECENT)"))
        self.send(b"d SELECT INBOX")
        self.assertIn(b"(RECENT 0)", self.send(b"e STATUS Sent (RECENT)"))

    def test_namespace(self):
        """NAMESPACE announces personal "", other users "~" and shared "~public/", / as delimiter."""
        self.login()
        self.assertIn(b'* NAMESPACE (("" "/")) (("~" "/")) (("~public/" "/"))', self.send(b"a NAMESPACE"))

    def test_quota(self):
        """GETQUOTAROOT and GETQUOTA report the account's storage in KiB."""
        self.login(quota=10 * 1024 * 1024)
        out = self.send(b"a GETQUOTAROOT INBOX")
        self.assertIn(b'* QUOTAROOT "INBOX" ""', out)
        self.assertIn(b'* QUOTA "" (STORAGE 0 10240)', out)
        self.assertIn(b'* QUOTA "" (STORAGE', self.send(b'b GETQUOTA ""'))
        self.assertIn(b"c NO", self.send(b"c SETQUOTA \"\" (STORAGE 1)"))


class AppendTests(IMAPTestMixin, unittest.TestCase):
    def test_append(self):
        """APPEND stores the message with flags and date and answers APPENDUID."""
        self.login()
        out = self.send(b'a APPEND INBOX (\\Seen $Work) "05-Jan-2024 10:00:00 +0100" {%d}' % (len(MESSAGE),))
        self.assertEqual(out, b"+ Ready\r\n")
        out = self.send(MESSAGE + b"\r\n")
        self.assertRegex(out, rb"a OK \[APPENDUID \d+ 1\] APPEND completed")
        mailbox = self.session.account.mailStore.getMailbox("INBOX")
        info = mailbox.messages([1])[0]
        self.assertEqual(info.flags, {"\\Seen", "$Work"})
        self.assertEqual(info.internalDate.isoformat(), "2024-01-05T09:00:00+00:00")

    def test_largeAppendSpooled(self):
        """
        The message of a large APPEND goes to a temporary file as it
        arrives, not into memory, and is stored byte for byte; the file is
        closed once the command is done.
        """
        self.login()
        body = b"".join(b"line %07d of a large message\r\n" % (i,) for i in range(20000))
        message = b"Subject: large\r\n\r\n" + body
        self.assertGreater(len(message), protocol.SPOOL_ABOVE)
        self.assertEqual(self.send(b"a APPEND INBOX {%d}" % (len(message),)), b"+ Ready\r\n")
        half = len(message) // 2
        self.session.dataReceived(message[:half])
        self.assertLess(sum(len(part) for part in self.session._command), 1000)
        spooled = list(self.session._spooled.values())
        self.assertEqual(len(spooled), 1)
        self.session.dataReceived(message[half:])
        out = self.send(b"\r\n")
        self.assertRegex(out, rb"a OK \[APPENDUID \d+ 1\] APPEND completed")
        self.assertTrue(spooled[0].closed)
        mailbox = self.session.account.mailStore.getMailbox("INBOX")
        with mailbox.openMessage(1) as f:
            self.assertEqual(f.read(), message)

    def test_appendMissingMailbox(self):
        """APPEND to a missing mailbox gets NO [TRYCREATE]."""
        self.login()
        out = self.send(b"a APPEND Nope {3+}\r\nabc")
        self.assertIn(b"a NO [TRYCREATE]", out)

    def test_appendBadDate(self):
        """A malformed date-time gets BAD."""
        self.login()
        self.assertIn(b"a BAD", self.send(b'a APPEND INBOX "yesterday" {3+}\r\nabc'))

    def test_parseDateTime(self):
        """date-time with a space-padded day parses with its zone."""
        self.assertEqual(parseDateTime(" 7-Feb-2020 01:02:03 -0500").isoformat(), "2020-02-07T01:02:03-05:00")


class SelectTests(IMAPTestMixin, unittest.TestCase):
    def test_select(self):
        """SELECT gives FLAGS, EXISTS, RECENT, UNSEEN, PERMANENTFLAGS, UIDVALIDITY, UIDNEXT, READ-WRITE."""
        self.login()
        append(self, flags=b"(\\Seen) ")
        append(self)
        out = self.send(b"a SELECT INBOX")
        self.assertIn(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n", out)
        self.assertIn(b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]", out)
        self.assertIn(b"* 2 EXISTS\r\n", out)
        self.assertIn(b"* 2 RECENT\r\n", out)
        self.assertIn(b"* OK [UNSEEN 2]", out)
        self.assertRegex(out, rb"\* OK \[UIDVALIDITY \d+\]")
        self.assertIn(b"* OK [UIDNEXT 3]", out)
        self.assertIn(b"a OK [READ-WRITE] SELECT completed", out)

    def test_recentOnce(self):
        """\\Recent is given to exactly one session: a second SELECT sees RECENT 0."""
        self.login()
        append(self)
        self.assertIn(b"* 1 RECENT", self.send(b"a SELECT INBOX"))
        self.assertIn(b"* 0 RECENT", self.send(b"b SELECT INBOX"))

    def test_examine(self):
        """EXAMINE is READ-ONLY and refuses STORE and EXPUNGE."""
        self.login()
        append(self)
        out = self.send(b"a EXAMINE INBOX")
        self.assertIn(b"a OK [READ-ONLY] EXAMINE completed", out)
        self.assertIn(b"* OK [PERMANENTFLAGS ()]", out)
        self.assertIn(b"b NO [READ-ONLY]", self.send(b"b STORE 1 +FLAGS (\\Deleted)"))
        self.assertIn(b"c NO [READ-ONLY]", self.send(b"c EXPUNGE"))

    def test_selectMissing(self):
        """SELECT of a missing mailbox gets NO and leaves no mailbox selected."""
        self.login()
        self.send(b"a SELECT INBOX")
        self.assertIn(b"b NO [NONEXISTENT]", self.send(b"b SELECT Nope"))
        self.assertIn(b"c BAD", self.send(b"c CHECK"))

    def test_selectNonMail(self):
        """Non-mail mailboxes (Calendar) are selectable."""
        self.login()
        self.assertIn(b"a OK [READ-WRITE]", self.send(b"a SELECT Calendar"))

    def test_unselectAndClose(self):
        """UNSELECT keeps \\Deleted messages; CLOSE expunges them silently."""
        self.login()
        append(self, flags=b"(\\Deleted) ")
        self.send(b"a SELECT INBOX")
        self.assertEqual(self.send(b"b UNSELECT"), b"b OK UNSELECT completed\r\n")
        self.send(b"c SELECT INBOX")
        self.assertEqual(self.send(b"d CLOSE"), b"d OK CLOSE completed\r\n")
        self.assertIn(b"(MESSAGES 0)", self.send(b"e STATUS INBOX (MESSAGES)"))
