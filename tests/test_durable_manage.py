# -*- test-case-name: tests.test_durable_manage -*-
"""
IMAP mailbox management (CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE)
through the account's index writer: the tagged OK only once the change is
committed, other sessions served meanwhile.
"""

from twisted.internet import reactor, task
from twisted.internet.defer import inlineCallbacks
from twisted.trial import unittest

from tests.test_durable import DurableTestMixin, Session


class AnsweredWhenDurableTests(DurableTestMixin, unittest.TestCase):
    """
    Each command sent while the writer is held is not answered until it is
    released, and its change is not committed before.
    """

    @inlineCallbacks
    def check(self, command, sql, before, after, setup=None):
        """
        @param sql: a query of the committed index whose rows are C{before}
            while the writer is held and C{after} once the command is
            answered.
        """
        session = Session(self)
        if setup is not None:
            session.protocol.dataReceived(setup + b"\r\n")
            yield self.waitFor(session, b"b OK")
        other = Session(self)
        release = self.blockWriter()
        session.protocol.dataReceived(command + b"\r\n")
        for _ in range(10):
            yield task.deferLater(reactor, 0.005, lambda: None)
        self.assertIn(b"n OK", other.send(b"n NOOP"))
        self.assertEqual(session.read(), b"")
        self.assertEqual(self.committed(sql), before)
        release.set()
        yield self.blocked
        out = yield self.waitFor(session, b"a OK")
        self.assertEqual(self.committed(sql), after)
        return out

    @inlineCallbacks
    def test_create(self):
        """CREATE is answered, with its MAILBOXID, once the new mailbox is committed."""
        out = yield self.check(b"a CREATE Work", "SELECT name FROM mailboxes WHERE name = 'Work'", [], [("Work",)])
        self.assertRegex(out, rb"a OK \[MAILBOXID \([^)]+\)\] CREATE completed")

    @inlineCallbacks
    def test_delete(self):
        """DELETE is answered once the mailbox's removal is committed."""
        yield self.check(b"a DELETE Old", "SELECT name FROM mailboxes WHERE name = 'Old'", [("Old",)], [],
                         setup=b"b CREATE Old")

    @inlineCallbacks
    def test_rename(self):
        """RENAME is answered once the new name is committed."""
        yield self.check(b"a RENAME Old New", "SELECT name FROM mailboxes WHERE name IN ('Old', 'New')",
                         [("Old",)], [("New",)], setup=b"b CREATE Old")

    @inlineCallbacks
    def test_subscribe(self):
        """SUBSCRIBE is answered once the subscription is committed."""
        yield self.check(b"a SUBSCRIBE Elsewhere", "SELECT name FROM subscriptions WHERE name = 'Elsewhere'",
                         [], [("Elsewhere",)])

    @inlineCallbacks
    def test_unsubscribe(self):
        """UNSUBSCRIBE is answered once the removal is committed."""
        yield self.check(b"a UNSUBSCRIBE Drafts", "SELECT name FROM subscriptions WHERE name = 'Drafts'",
                         [("Drafts",)], [])

    @inlineCallbacks
    def test_errorAfterWriter(self):
        """A CREATE that the writer refuses (the mailbox exists) gets its tagged NO, and the session goes on."""
        session = Session(self)
        out = session.send(b"a CREATE Drafts")
        out += yield self.waitFor(session, b"a NO")
        self.assertIn(b"a NO [ALREADYEXISTS]", out)
        session.protocol.dataReceived(b"c NOOP\r\n")
        yield self.waitFor(session, b"c OK")


class ListenersToldTests(DurableTestMixin, unittest.TestCase):
    """
    The account listeners hear of changes the writer made.
    """

    timeout = 20

    @inlineCallbacks
    def test_notifyMailboxName(self):
        """A NOTIFY session hears of another session's CREATE, RENAME and DELETE, each once it is committed."""
        watcher = Session(self)
        self.assertIn(b"w OK", watcher.send(b"w NOTIFY SET (personal (MailboxName))"))
        session = Session(self)
        seen = b""
        for tag, command, event in ((b"a", b"CREATE Work", b'* LIST (\\HasNoChildren) "/" "Work"'),
                                    (b"b", b"RENAME Work Play", b'"Play" ("OLDNAME" ("Work"))'),
                                    (b"c", b"DELETE Play", b'* LIST (\\NonExistent) "/" "Play"')):
            session.protocol.dataReceived(tag + b" " + command + b"\r\n")
            yield self.waitFor(session, tag + b" OK")
            seen = yield self.waitFor(watcher, event, seen)
        self.assertEqual(seen.count(b"* LIST"), 3, seen)
