# -*- test-case-name: tests.test_imap_selected -*-
"""
IMAP selected-state commands (STORE, COPY, MOVE, EXPUNGE, UID EXPUNGE,
CLOSE, IDLE, FETCH, SEARCH) and how changes reach other sessions.
"""

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from gateway.errors import NoSuchMessage
from gateway.store.mail import MailStore
from tests.support import PASSWORD
from tests.test_imap_mailbox import append
from tests.test_imap_protocol import IMAPTestMixin


class Other:
    """
    A second session on the same factory (same account objects).
    """

    def __init__(self, test):
        self.transport = StringTransport()
        self.session = test.factory.buildProtocol(None)
        self.session.makeConnection(self.transport)
        test.addCleanup(self.session.connectionLost, None)
        self.send(b'o1 LOGIN demo "%s"' % (PASSWORD.encode(),))

    def send(self, data):
        self.transport.clear()
        self.session.dataReceived(data + b"\r\n")
        return self.read()

    def read(self):
        data = self.transport.value()
        self.transport.clear()
        return data


class SelectedTestMixin(IMAPTestMixin):
    def selectWith(self, count, flags=b""):
        self.login()
        for _ in range(count):
            append(self, flags=flags)
        out = self.send(b"s SELECT INBOX")
        self.assertIn(b"s OK", out)
        self.mailbox = self.session.view.mailbox


class StoreTests(SelectedTestMixin, unittest.TestCase):
    def test_store(self):
        """STORE +FLAGS answers FETCH FLAGS with the new flags (and \\Recent)."""
        self.selectWith(2)
        out = self.send(b"a STORE 1:2 +FLAGS (\\Flagged)")
        self.assertIn(b"* 1 FETCH (FLAGS (\\Flagged \\Recent))\r\n", out)
        self.assertIn(b"* 2 FETCH (FLAGS (\\Flagged \\Recent))\r\n", out)
        self.assertIn(b"a OK STORE completed", out)
        self.assertEqual(self.mailbox.messages([1])[0].flags, {"\\Flagged"})

    def test_storeAnswersFromItsWrite(self):
        """
        A STORE's FETCH responses show the messages it changed as its write
        gave them back, without reading them again; those it left as they
        were (the flag already set) are read, without their header blocks.
        """
        self.selectWith(3)
        self.send(b"a STORE 2 +FLAGS.SILENT (\\Flagged)")
        reads = []
        messages = self.mailbox.messages

        def counted(uids, headers=True):
            reads.append((list(uids), headers))
            return messages(uids, headers=headers)
        self.patch(self.mailbox, "messages", counted)
        out = self.send(b"b STORE 1,3 +FLAGS (\\Seen)")
        self.assertIn(b"* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n* 3 FETCH (FLAGS (\\Seen \\Recent))\r\n", out)
        self.assertEqual(reads, [])
        out = self.send(b"c STORE 1:3 +FLAGS (\\Flagged)")
        self.assertIn(b"* 1 FETCH (FLAGS (\\Flagged \\Seen \\Recent))\r\n"
                      b"* 2 FETCH (FLAGS (\\Flagged \\Recent))\r\n"
                      b"* 3 FETCH (FLAGS (\\Flagged \\Seen \\Recent))\r\n", out)
        self.assertEqual(reads, [([2], False)])

    def test_storeSilent(self):
        """STORE -FLAGS.SILENT sends no FETCH, and the change is not echoed later."""
        self.selectWith(1, flags=b"(\\Seen) ")
        self.assertEqual(self.send(b"a STORE 1 -FLAGS.SILENT (\\Seen)"), b"a OK STORE completed\r\n")
        self.assertEqual(self.send(b"b NOOP"), b"b OK NOOP completed\r\n")
        self.assertEqual(self.mailbox.messages([1])[0].flags, frozenset())

    def test_uidStore(self):
        """UID STORE includes the UID and replaces flags with FLAGS."""
        self.selectWith(2)
        out = self.send(b"a UID STORE 2 FLAGS ($Work \\Seen)")
        self.assertIn(b"* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent $Work))", out)

    def test_storeBad(self):
        """Bad sequence numbers and bad STORE items get BAD."""
        self.selectWith(1)
        self.assertIn(b"a BAD", self.send(b"a STORE 5 +FLAGS (\\Seen)"))
        self.assertIn(b"b BAD", self.send(b"b STORE x +FLAGS (\\Seen)"))
        self.assertIn(b"c BAD", self.send(b"c STORE 1 FOO (\\Seen)"))
        self.assertIn(b"d BAD Invalid flag \\Bogus", self.send(b"d STORE 1 +FLAGS (\\Bogus)"))

    def test_batchedWrites(self):
        """Responses for many messages go out in a few transport writes, not one per message."""
        self.login()
        mailbox = self.session.account.mailStore.getMailbox("INBOX")
        for _ in range(120):
            mailbox.appendMessage(b"Subject: x\r\n\r\nx\r\n")
        self.send(b"s SELECT INBOX")
        writes = []
        original = self.transport.write
        self.transport.write = lambda data: (writes.append(data), original(data))
        out = self.send(b"a STORE 1:* +FLAGS (\\Seen)")
        self.assertEqual(out.count(b" FETCH "), 120)
        self.assertLessEqual(len(writes), 2)

    def test_storeEmptyMailbox(self):
        """On an empty mailbox 1:* names nothing (OK) while 1 is BAD."""
        self.selectWith(0)
        self.assertEqual(self.send(b"a STORE 1:* +FLAGS (\\Seen)"), b"a OK STORE completed\r\n")
        self.assertIn(b"b BAD", self.send(b"b STORE 1 +FLAGS (\\Seen)"))


class ExpungeTests(SelectedTestMixin, unittest.TestCase):
    def test_expunge(self):
        """EXPUNGE removes \\Deleted messages with EXPUNGE responses that keep numbers right."""
        self.selectWith(4)
        self.send(b"a STORE 2,3 +FLAGS.SILENT (\\Deleted)")
        out = self.send(b"b EXPUNGE")
        # Two recent messages gone: the RECENT count follows.
        self.assertEqual(out, b"* 3 EXPUNGE\r\n* 2 EXPUNGE\r\n* 2 RECENT\r\nb OK EXPUNGE completed\r\n")
        self.assertEqual(self.session.view.uids, (1, 4))

    def test_uidExpunge(self):
        """UID EXPUNGE removes only the named \\Deleted messages."""
        self.selectWith(3)
        self.send(b"a STORE 1:3 +FLAGS.SILENT (\\Deleted)")
        out = self.send(b"b UID EXPUNGE 2")
        self.assertEqual(out, b"* 2 EXPUNGE\r\n* 2 RECENT\r\nb OK UID EXPUNGE completed\r\n")
        self.assertEqual(self.mailbox.uids(), [1, 3])


class TransferTests(SelectedTestMixin, unittest.TestCase):
    def test_copy(self):
        """COPY answers COPYUID and copies to the destination."""
        self.selectWith(2)
        out = self.send(b"a COPY 1:2 Junk")
        self.assertRegex(out, rb"a OK \[COPYUID \d+ 1:2 1:2\] COPY completed")
        self.assertIn(b"(MESSAGES 2)", self.send(b"b STATUS Junk (MESSAGES)"))

    def test_copyMissing(self):
        """COPY to a missing mailbox gets NO [TRYCREATE]."""
        self.selectWith(1)
        self.assertIn(b"a NO [TRYCREATE]", self.send(b"a COPY 1 Nope"))

    def test_move(self):
        """MOVE sends COPYUID untagged, then EXPUNGE, then OK."""
        self.selectWith(3)
        out = self.send(b"a UID MOVE 2 Junk")
        self.assertRegex(out, rb"^\* OK \[COPYUID \d+ 2 1\] Moved\r\n\* 2 EXPUNGE\r\n\* 2 RECENT\r\na OK MOVE completed\r\n$")
        self.assertEqual(self.mailbox.uids(), [1, 3])


class MultiSessionTests(SelectedTestMixin, unittest.TestCase):
    def test_existsSeenByOther(self):
        """A message appended by one session reaches another as EXISTS/RECENT on NOOP."""
        self.selectWith(1)
        other = Other(self)
        other.send(b"o2 APPEND INBOX {3+}\r\nabc")
        out = self.send(b"a NOOP")
        self.assertEqual(out, b"* 2 EXISTS\r\n* 2 RECENT\r\na OK NOOP completed\r\n")

    def test_flagsSeenByOther(self):
        """Flag changes by another session arrive as FETCH FLAGS."""
        self.selectWith(1)
        other = Other(self)
        other.send(b"o2 SELECT INBOX")
        other.send(b"o3 STORE 1 +FLAGS.SILENT (\\Answered)")
        self.assertIn(b"* 1 FETCH (FLAGS (\\Answered \\Recent))", self.send(b"a NOOP"))

    def test_expungeHeldDuringStore(self):
        """An EXPUNGE by another session is not announced after STORE, but after NOOP."""
        self.selectWith(2)
        other = Other(self)
        other.send(b"o2 SELECT INBOX")
        other.send(b"o3 STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.assertIn(b"* 1 EXPUNGE", other.send(b"o4 EXPUNGE"))
        out = self.send(b"a STORE 2 +FLAGS (\\Seen)")
        self.assertNotIn(b"EXPUNGE", out)
        self.assertIn(b"* 2 FETCH", out)
        self.assertEqual(self.send(b"b NOOP"), b"* 1 EXPUNGE\r\n* 1 RECENT\r\nb OK NOOP completed\r\n")

    def test_fetchOfExpungedSaysSo(self):
        """A FETCH naming a message another session expunged sends the others and answers OK [EXPUNGEISSUED] (RFC 5530)."""
        self.selectWith(3)
        other = Other(self)
        other.send(b"o2 SELECT INBOX")
        other.send(b"o3 STORE 2 +FLAGS.SILENT (\\Deleted)")
        other.send(b"o4 EXPUNGE")
        out = self.send(b"a FETCH 1:3 (UID)")
        self.assertIn(b"* 1 FETCH (UID 1)", out)
        self.assertIn(b"* 3 FETCH (UID 3)", out)
        self.assertNotIn(b" EXPUNGE\r\n", out)
        self.assertIn(b"a OK [EXPUNGEISSUED]", out)
        self.assertEqual(self.send(b"b NOOP"), b"* 2 EXPUNGE\r\n* 2 RECENT\r\nb OK NOOP completed\r\n")
        self.assertEqual(self.send(b"c FETCH 1:2 (UID)"), b"* 1 FETCH (UID 1)\r\n* 2 FETCH (UID 3)\r\nc OK FETCH completed\r\n")

    def test_searchWithExpungedSaysSo(self):
        """SEARCH, SORT and THREAD while another session's expunge is not yet announced answer OK [EXPUNGEISSUED] (as Dovecot; imaptest counts it missing otherwise)."""
        self.selectWith(3)
        self.assertEqual(self.send(b"a SEARCH ALL"), b"* SEARCH 1 2 3\r\na OK SEARCH completed\r\n")
        other = Other(self)
        other.send(b"o2 SELECT INBOX")
        other.send(b"o3 STORE 2 +FLAGS.SILENT (\\Deleted)")
        other.send(b"o4 EXPUNGE")
        out = self.send(b"b SEARCH SMALLER 100000")
        self.assertIn(b"* SEARCH 1 3\r\n", out)
        self.assertIn(b"b OK [EXPUNGEISSUED]", out)
        self.assertIn(b"c OK [EXPUNGEISSUED]", self.send(b"c SORT (ARRIVAL) US-ASCII ALL"))
        self.assertIn(b"d OK [EXPUNGEISSUED]", self.send(b"d THREAD REFERENCES US-ASCII ALL"))
        self.assertEqual(self.send(b"e NOOP"), b"* 2 EXPUNGE\r\n* 2 RECENT\r\ne OK NOOP completed\r\n")
        self.assertEqual(self.send(b"f SEARCH SMALLER 100000"), b"* SEARCH 1 2\r\nf OK SEARCH completed\r\n")

    def test_searchOfMessageBeingExpunged(self):
        """A body SEARCH that cannot read a message (its file unlinked by an expunge not yet committed) answers OK [EXPUNGEISSUED], not SERVERBUG."""
        self.selectWith(3)
        view = self.session.view
        opened = self.mailbox.openMessage

        def openMessage(uid):
            if uid == 2:
                raise NoSuchMessage(uid)
            return opened(uid)
        view.mailbox.openMessage = openMessage
        out = self.send(b"a SEARCH BODY a")
        self.assertIn(b"a OK [EXPUNGEISSUED]", out)
        del view.mailbox.openMessage
        self.assertTrue(self.send(b"b SEARCH BODY a").endswith(b"b OK SEARCH completed\r\n"))

    def test_idleOtherProcess(self):
        """A message added through another store object on the same data (another process) reaches IDLE."""
        self.selectWith(1)
        self.send(b"a IDLE")
        path = self.session.account.mailStore.path
        outside = MailStore(path, reactor=Clock(), useInotify=False)
        self.addCleanup(outside.close)
        outside.getMailbox("INBOX").appendMessage(b"Subject: from afar\r\n\r\nx\r\n")
        for _ in range(3):
            self.clock.advance(1)
        self.assertEqual(self.read(), b"* 2 EXISTS\r\n* 2 RECENT\r\n")
        self.assertEqual(self.send(b"DONE"), b"a OK IDLE terminated\r\n")

    def test_selectedMailboxDeleted(self):
        """When another session deletes the selected mailbox, the next command ends the session with BYE."""
        self.login()
        self.send(b"a CREATE Work")
        self.send(b"b SELECT Work")
        other = Other(self)
        self.assertIn(b"OK", other.send(b"o2 DELETE Work"))
        out = self.send(b"c NOOP")
        self.assertIn(b"* BYE The selected mailbox was deleted", out)
        self.assertTrue(self.transport.disconnecting)

    def test_idle(self):
        """During IDLE another session's append arrives at once; IDLE ends only on DONE."""
        self.selectWith(1)
        self.assertEqual(self.send(b"a IDLE"), b"+ idling\r\n")
        other = Other(self)
        other.send(b"o2 APPEND INBOX {3+}\r\nabc")
        self.clock.advance(0)
        self.assertEqual(self.read(), b"* 2 EXISTS\r\n* 2 RECENT\r\n")
        self.assertEqual(self.send(b"NOOP"), b"* BAD Expected DONE\r\n")
        self.assertEqual(self.send(b"DONE"), b"a OK IDLE terminated\r\n")


class FetchTests(SelectedTestMixin, unittest.TestCase):
    def test_fetchFlagsUid(self):
        """FETCH of FLAGS and UID renders each message; UID FETCH adds UID."""
        self.selectWith(2)
        out = self.send(b"a FETCH 1:* (FLAGS UID)")
        self.assertIn(b"* 1 FETCH (", out)
        self.assertIn(b"* 2 FETCH (", out)
        self.assertIn(b"UID 2", out)
        out = self.send(b"b UID FETCH 2 FLAGS")
        self.assertIn(b"UID 2", out)
        self.assertNotIn(b"* 1 FETCH", out)

    def test_fetchBodySetsSeen(self):
        """FETCH BODY[] sets \\Seen and reports FLAGS; BODY.PEEK[] does not."""
        self.selectWith(2)
        out = self.send(b"a FETCH 1 BODY.PEEK[]")
        self.assertIn(b"Hello", out)
        self.assertNotIn("\\Seen", self.mailbox.messages([1])[0].flags)
        out = self.send(b"b FETCH 2 BODY[]")
        self.assertIn(b"\\Seen", out)
        self.assertIn("\\Seen", self.mailbox.messages([2])[0].flags)

    def test_search(self):
        """SEARCH and UID SEARCH find messages by flag."""
        self.selectWith(3)
        self.send(b"a STORE 2 +FLAGS.SILENT (\\Flagged)")
        self.assertIn(b"* SEARCH 2\r\n", self.send(b"b SEARCH FLAGGED"))
        self.assertIn(b"* SEARCH 1 3\r\n", self.send(b"c UID SEARCH UNFLAGGED"))

    def test_searchLiteralUTF8(self):
        """SEARCH CHARSET UTF-8 with a literal matches a non-ASCII subject; unknown charsets get BADCHARSET."""
        self.login()
        mailbox = self.session.account.mailStore.getMailbox("INBOX")
        mailbox.appendMessage(b"Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\nx\r\n")
        mailbox.appendMessage(b"Subject: tea\r\n\r\nx\r\n")
        self.send(b"s SELECT INBOX")
        word = "café".encode()
        out = self.send(b"a SEARCH CHARSET UTF-8 SUBJECT {%d+}\r\n%s" % (len(word), word))
        self.assertIn(b"* SEARCH 1\r\n", out)
        self.assertIn(b"b NO [BADCHARSET", self.send(b"b SEARCH CHARSET KOI8-R ALL"))
        self.assertIn(b"c BAD", self.send(b"c SEARCH FROBNICATE"))

    def test_expungeHeldDuringFetch(self):
        """An EXPUNGE by another session is not announced after FETCH, but after UID FETCH."""
        self.selectWith(2)
        other = Other(self)
        other.send(b"o2 SELECT INBOX")
        other.send(b"o3 STORE 1 +FLAGS.SILENT (\\Deleted)")
        other.send(b"o4 EXPUNGE")
        out = self.send(b"a FETCH 1:* UID")
        self.assertNotIn(b" EXPUNGE\r\n", out)
        self.assertIn(b"* 2 FETCH (UID 2)", out)
        self.assertIn(b"a OK [EXPUNGEISSUED]", out)
        out = self.send(b"b UID FETCH 1:* UID")
        self.assertIn(b"* 1 EXPUNGE", out)

    def test_fetchBad(self):
        """Malformed FETCH items get BAD and the session continues."""
        self.selectWith(1)
        self.assertIn(b"a BAD", self.send(b"a FETCH 1 (FLAGS"))
        self.assertIn(b"b BAD", self.send(b"b FETCH 1 BODY[99.x]"))
        self.assertIn(b"c OK", self.send(b"c FETCH 1 FAST"))

    def test_esearch(self):
        """SEARCH RETURN (MIN COUNT) answers ESEARCH."""
        self.selectWith(3)
        out = self.send(b"a SEARCH RETURN (MIN COUNT) ALL")
        self.assertIn(b'* ESEARCH (TAG "a") MIN 1 COUNT 3', out)


class CondstoreTests(SelectedTestMixin, unittest.TestCase):
    def test_enableAndSelect(self):
        """ENABLE CONDSTORE is answered ENABLED, and SELECT then reports HIGHESTMODSEQ."""
        self.login()
        self.assertIn(b"* ENABLED CONDSTORE", self.send(b"a ENABLE CONDSTORE"))
        self.assertRegex(self.send(b"b SELECT INBOX"), rb"\* OK \[HIGHESTMODSEQ \d+\]")

    def test_changedSince(self):
        """FETCH (CHANGEDSINCE n) returns only messages changed after n, with MODSEQ."""
        self.selectWith(3)
        modseq = self.mailbox.highestModSeq()
        self.send(b"a STORE 2 +FLAGS.SILENT (\\Flagged)")
        out = self.send(b"b FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % (modseq,))
        self.assertIn(b"* 2 FETCH (", out)
        self.assertIn(b"MODSEQ (", out)
        self.assertNotIn(b"* 1 FETCH", out)
        self.assertNotIn(b"* 3 FETCH", out)

    def test_unchangedSince(self):
        """STORE (UNCHANGEDSINCE n) skips messages changed after n and reports them as MODIFIED."""
        self.selectWith(2)
        modseq = self.mailbox.highestModSeq()
        self.send(b"a STORE 2 +FLAGS.SILENT (\\Flagged)")
        out = self.send(b"b STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % (modseq,))
        self.assertIn(b"b OK [MODIFIED 2]", out)
        self.assertIn("\\Seen", self.mailbox.messages([1])[0].flags)
        self.assertNotIn("\\Seen", self.mailbox.messages([2])[0].flags)

    def test_searchModSeq(self):
        """SEARCH MODSEQ adds the highest mod-sequence of the matches."""
        self.selectWith(2)
        modseq = self.mailbox.highestModSeq()
        self.send(b"a STORE 1 +FLAGS.SILENT (\\Flagged)")
        out = self.send(b"b SEARCH MODSEQ %d" % (modseq + 1,))
        self.assertIn(b"* SEARCH 1 (MODSEQ %d)" % (self.mailbox.highestModSeq(),), out)
