# -*- test-case-name: tests.test_imap_objectid -*-
"""
Tests for OBJECTID (RFC 8474): the FETCH items and SEARCH keys EMAILID and
THREADID (L{gateway.imap.objectid}), the ids the store keeps
(L{gateway.store.objectid}: stable across restart, index rebuild, COPY and
MOVE), and CREATE's C{[MAILBOXID]}; docs/xmapi.md R-OID-1 and R-LIST-2.
"""

import imaplib
import os
import re
import sqlite3

from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from gateway.store import index, maildir, objectid
from tests.support import PASSWORD, LoopbackIMAPMixin
from tests.test_imap_acl import Peer
from tests.test_imap_mailbox import append
from tests.test_imap_selected import SelectedTestMixin
from tests.test_store_mail import StoreTestMixin

ROOT = (b"From: Ann <ann@example.com>\r\nSubject: Plans\r\nMessage-ID: <root@example.com>\r\n"
        b"\r\nShall we?\r\n")
REPLY = (b"From: Bob <bob@example.com>\r\nSubject: Re: Plans\r\nMessage-ID: <reply@example.com>\r\n"
         b"In-Reply-To: <root@example.com>\r\nReferences: <root@example.com>\r\n\r\nYes.\r\n")
DEEP = (b"From: Ann <ann@example.com>\r\nSubject: Re: Plans\r\nMessage-ID: <deep@example.com>\r\n"
        b"In-Reply-To: <reply@example.com>\r\nReferences: <root@example.com>\r\n <reply@example.com>\r\n"
        b"\r\nGood.\r\n")
OTHER = (b"From: Carol <carol@example.com>\r\nSubject: Plans\r\nMessage-ID: <other@example.com>\r\n"
         b"\r\nUnrelated.\r\n")
BARE = b"From: Dan <dan@example.com>\r\nSubject: no ids\r\n\r\nNothing.\r\n"

_EMAILID = re.compile(rb"EMAILID \((M[0-9a-f]{24})\)")
_THREADID = re.compile(rb"THREADID \((T[0-9a-f]{24})\)")


def ids(out, pattern):
    """
    The ids in a FETCH answer, in response order.
    """
    return [m.decode("ascii") for m in pattern.findall(out)]


class ObjectIdMixin(SelectedTestMixin):
    def selectMessages(self, *messages, mailbox=b"INBOX"):
        self.login()
        for message in messages:
            append(self, mailbox=mailbox, message=message)
        out = self.send(b"s SELECT " + mailbox)
        self.assertIn(b"s OK", out)
        self.mailbox = self.session.view.mailbox

    def emailIds(self, sequenceSet=b"1:*", command=b"FETCH"):
        out = self.send(b"e " + command + b" " + sequenceSet + b" (EMAILID)")
        self.assertIn(b"e OK", out)
        return ids(out, _EMAILID)

    def threadIds(self, sequenceSet=b"1:*"):
        out = self.send(b"t FETCH " + sequenceSet + b" (THREADID)")
        self.assertIn(b"t OK", out)
        return ids(out, _THREADID)


class FetchTests(ObjectIdMixin, unittest.TestCase):
    def test_capability(self):
        """OBJECTID is announced."""
        self.login()
        self.assertIn(b" OBJECTID", self.send(b"c CAPABILITY"))

    def test_emailIdSyntax(self):
        """FETCH EMAILID answers EMAILID (objectid) as RFC 8474 5.1's example (with UID, as every FETCH here); two messages have two ids."""
        self.selectMessages(ROOT, OTHER)
        out = self.send(b"a FETCH 1:2 (EMAILID)")
        self.assertRegex(out, rb"\* 1 FETCH \(UID 1 EMAILID \(M[0-9a-f]{24}\)\)\r\n"
                              rb"\* 2 FETCH \(UID 2 EMAILID \(M[0-9a-f]{24}\)\)")
        first, second = ids(out, _EMAILID)
        self.assertNotEqual(first, second)
        self.assertTrue(objectid.OBJECTID.match(first))

    def test_emailIdIsContent(self):
        """The EMAILID is derived from the octets: the same message appended twice has one, a changed one another."""
        self.selectMessages(ROOT, ROOT, ROOT.replace(b"Shall we?", b"Shall we not?"))
        first, second, third = self.emailIds()
        self.assertEqual(first, second)
        self.assertNotEqual(first, third)

    def test_withOtherItems(self):
        """EMAILID and THREADID go with other items and with UID FETCH."""
        self.selectMessages(ROOT)
        out = self.send(b"a UID FETCH 1 (FLAGS EMAILID THREADID RFC822.SIZE)")
        self.assertRegex(out, rb"\* 1 FETCH \(UID 1 FLAGS \(\\Recent\) EMAILID \(M[0-9a-f]{24}\) "
                              rb"THREADID \(T[0-9a-f]{24}\) RFC822.SIZE %d\)" % (len(ROOT),))

    def test_threadIdReferences(self):
        """THREADID: a reply and a reply to it share the root's THREADID; an unrelated message has its own."""
        self.selectMessages(ROOT, REPLY, DEEP, OTHER)
        root, reply, deep, other = self.threadIds()
        self.assertEqual(root, reply)
        self.assertEqual(root, deep)
        self.assertNotEqual(root, other)

    def test_threadIdOrder(self):
        """THREADID does not depend on arrival order: a reply stored before its parent joins its thread."""
        self.selectMessages(DEEP, ROOT, REPLY)
        self.assertEqual(len(set(self.threadIds())), 1)

    def test_threadIdInReplyTo(self):
        """Without References, In-Reply-To names the parent."""
        reply = REPLY.replace(b"References: <root@example.com>\r\n", b"")
        self.selectMessages(ROOT, reply)
        self.assertEqual(len(set(self.threadIds())), 1)

    def test_threadIdWithoutIds(self):
        """A message without Message-ID, References or In-Reply-To is a thread of its own, named after its EMAILID."""
        self.selectMessages(BARE)
        [emailId] = self.emailIds()
        self.assertEqual(self.threadIds(), ["T" + emailId[1:]])

    def test_copyKeepsIds(self):
        """R-OID-1, RFC 8474 5.1: COPY keeps EMAILID and THREADID (the RFC's example: the copy in foo has the id)."""
        self.selectMessages(ROOT, REPLY)
        emailIds, threadIds = self.emailIds(), self.threadIds()
        self.assertIn(b"c OK", self.send(b"c CREATE foo"))
        self.assertIn(b"d OK [COPYUID", self.send(b"d COPY 2 foo"))
        self.assertIn(b"s OK", self.send(b"s SELECT foo"))
        self.assertEqual(self.emailIds(), emailIds[1:])
        self.assertEqual(self.threadIds(), threadIds[1:])

    def test_moveKeepsIds(self):
        """R-OID-1: MOVE keeps EMAILID and THREADID."""
        self.selectMessages(ROOT, OTHER)
        emailIds, threadIds = self.emailIds(), self.threadIds()
        self.assertIn(b"d OK", self.send(b"d MOVE 1:2 Drafts"))
        self.assertIn(b"s OK", self.send(b"s SELECT Drafts"))
        self.assertEqual(self.emailIds(), emailIds)
        self.assertEqual(self.threadIds(), threadIds)

    def test_olderRowsFilled(self):
        """A message indexed before the ids existed (NULL columns) gets the same ids on first FETCH, and keeps them."""
        self.selectMessages(ROOT, REPLY)
        emailIds, threadIds = self.emailIds(), self.threadIds()
        conn = self.mailbox._conn
        with index.transaction(conn):
            conn.execute("UPDATE messages SET emailid = NULL, threadid = NULL")
        self.assertEqual(self.emailIds(), emailIds)
        self.assertEqual(self.threadIds(), threadIds)
        self.assertEqual(conn.execute("SELECT count(*) FROM messages WHERE emailid IS NULL").fetchone()[0], 0)

    def test_sharedMailbox(self):
        """A viewer of another account's mailbox sees the owner's ids; a COPY to the viewer's own mailbox keeps them."""
        self.selectMessages(ROOT, mailbox=b"Calendar")
        emailIds, threadIds = self.emailIds(), self.threadIds()
        self.assertIn(b"g OK", self.send(b"g SETACL Calendar other lr"))
        other = Peer(self, b"other")
        self.assertIn(b"a OK", other.send(b"a SELECT ~demo/Calendar"))
        self.assertEqual(ids(other.send(b"b FETCH 1 (EMAILID)"), _EMAILID), emailIds)
        self.assertIn(b"c OK [COPYUID", other.send(b"c COPY 1 INBOX"))
        self.assertIn(b"d OK", other.send(b"d SELECT INBOX"))
        out = other.send(b"e FETCH 1 (EMAILID THREADID)")
        self.assertEqual((ids(out, _EMAILID), ids(out, _THREADID)), (emailIds, threadIds))


class SearchTests(ObjectIdMixin, unittest.TestCase):
    def test_searchEmailId(self):
        """RFC 8474 6: SEARCH EMAILID finds the messages with that id (both copies of one message)."""
        self.selectMessages(ROOT, OTHER, ROOT)
        first = self.emailIds()[0]
        self.assertIn(b"* SEARCH 1 3\r\n", self.send(b"a SEARCH EMAILID " + first.encode()))
        self.assertIn(b"* SEARCH 3\r\n", self.send(b"b UID SEARCH EMAILID " + first.encode() + b" UID 2:*"))

    def test_searchThreadId(self):
        """RFC 8474 6: SEARCH THREADID finds a thread's messages; with NOT and OR, and ESEARCH."""
        self.selectMessages(ROOT, OTHER, REPLY)
        threads = self.threadIds()
        self.assertIn(b"* SEARCH 1 3\r\n", self.send(b"a SEARCH THREADID " + threads[0].encode()))
        self.assertIn(b"* SEARCH 2\r\n", self.send(b"b SEARCH NOT THREADID " + threads[0].encode()))
        out = self.send(b"c SEARCH RETURN (COUNT) OR THREADID %s THREADID %s"
                        % (threads[0].encode(), threads[1].encode()))
        self.assertIn(b"COUNT 3", out)

    def test_searchUnknownId(self):
        """An id no message has matches nothing; a malformed one is BAD."""
        self.selectMessages(ROOT)
        self.assertIn(b"* SEARCH\r\n", self.send(b"a SEARCH EMAILID Mnothere"))
        self.assertIn(b"b BAD", self.send(b"b SEARCH EMAILID M.bad"))
        self.assertIn(b"c BAD", self.send(b"c SEARCH THREADID"))

    def test_searchOlderRows(self):
        """SEARCH EMAILID finds messages indexed before the ids existed."""
        self.selectMessages(ROOT)
        first = self.emailIds()[0]
        conn = self.mailbox._conn
        with index.transaction(conn):
            conn.execute("UPDATE messages SET emailid = NULL, threadid = NULL")
        self.assertIn(b"* SEARCH 1\r\n", self.send(b"a SEARCH EMAILID " + first.encode()))


class MailboxIdTests(ObjectIdMixin, unittest.TestCase):
    def test_createAnswersMailboxId(self):
        """RFC 8474 4, R-LIST-2: CREATE answers OK [MAILBOXID (id)], the id STATUS and SELECT give."""
        self.login()
        out = self.send(b"c CREATE foo")
        match = re.search(rb"c OK \[MAILBOXID \(([A-Za-z0-9_-]+)\)\] CREATE completed", out)
        self.assertIsNotNone(match, out)
        self.assertIn(b"MAILBOXID (%s)" % (match.group(1),), self.send(b"s STATUS foo (MAILBOXID)"))
        self.assertIn(b"OK [MAILBOXID (%s)]" % (match.group(1),), self.send(b"t SELECT foo"))

    def test_createAgainNewId(self):
        """R-LIST-2: a mailbox created again after DELETE has a new MAILBOXID."""
        self.login()
        first = re.search(rb"MAILBOXID \((\S+)\)", self.send(b"c CREATE foo")).group(1)
        self.assertIn(b"d OK", self.send(b"d DELETE foo"))
        second = re.search(rb"MAILBOXID \((\S+)\)", self.send(b"e CREATE foo")).group(1)
        self.assertNotEqual(first, second)


class StoreIdTests(StoreTestMixin, unittest.TestCase):
    def test_restartAndRebuild(self):
        """The ids survive a restart and an index rebuilt from the bare Maildir (and a Maildir copied in)."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        uids = [inbox.appendMessage(m) for m in (ROOT, REPLY, BARE)]
        before = sorted(self.successResultOf(objectid.objectIds(inbox, uids)).values())
        self.assertEqual(len(set(before)), 3)
        store.close()
        store = self.makeStore(self.mailPath)
        inbox = store.getMailbox("INBOX")
        self.assertEqual(sorted(self.successResultOf(objectid.objectIds(inbox, inbox.uids())).values()), before)
        store.close()
        for suffix in ("", "-wal", "-shm"):
            maildir.removeQuietly(os.path.join(self.mailPath, maildir.INDEX_NAME + suffix))
        store = self.makeStore(self.mailPath)
        inbox = store.getMailbox("INBOX")
        rows = inbox._conn.execute("SELECT emailid, threadid FROM messages WHERE mailbox = ?", (inbox._id,))
        self.assertEqual(sorted(rows), before)

    def test_lineEnds(self):
        """A message stored with bare LF has the EMAILID of its CRLF form (as a COPY to another account appends it)."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        lf, crlf = inbox.appendMessage(ROOT.replace(b"\r\n", b"\n")), inbox.appendMessage(ROOT)
        found = self.successResultOf(objectid.objectIds(inbox, [lf, crlf]))
        self.assertEqual(found[lf], found[crlf])

    def test_migration(self):
        """Migration 4 adds the id columns to an index at version 3, whose rows keep NULL ids until used."""
        path = self.mktemp()
        conn = sqlite3.connect(path, isolation_level=None)
        index.migrate(conn, index.MIGRATIONS[:3])
        conn.execute("INSERT INTO mailboxes (name, uidvalidity) VALUES ('INBOX', 1)")
        conn.execute("INSERT INTO messages (mailbox, uid, base, subdir, filename, internaldate, size, rawsize,"
                     " modseq) VALUES (1, 1, 'b', 'cur', 'b:2,', 0, 1, 1, 1)")
        conn.close()
        conn = index.connect(path)
        self.assertEqual(conn.execute("PRAGMA user_version").fetchone()[0], index.SCHEMA_VERSION)
        self.assertEqual(conn.execute("SELECT emailid, threadid FROM messages").fetchall(), [(None, None)])
        names = {row[1] for row in conn.execute("PRAGMA index_list(messages)")}
        self.assertTrue({"messages_emailid", "messages_threadid"} <= names)


class EndToEndTests(LoopbackIMAPMixin, unittest.TestCase):
    def test_imaplib(self):
        """imaplib: CREATE answers a MAILBOXID; FETCH EMAILID THREADID; COPY keeps them; SEARCH EMAILID finds the copy; older rows get the same ids."""
        def client():
            imap = imaplib.IMAP4("127.0.0.1", self.port)
            self.assertIn("OBJECTID", imap.capabilities)
            imap.login("demo", PASSWORD)
            typ, data = imap.create("Archive")
            self.assertEqual(typ, "OK")
            self.assertRegex(data[0], rb"\[MAILBOXID \([A-Za-z0-9_-]+\)\]")
            imap.append("INBOX", None, None, ROOT)
            imap.append("INBOX", None, None, REPLY)
            imap.select("INBOX")
            typ, data = imap.fetch("1:2", "(EMAILID THREADID)")
            self.assertEqual(typ, "OK")
            emailIds = ids(b" ".join(data), _EMAILID)
            threadIds = ids(b" ".join(data), _THREADID)
            self.assertEqual(len(set(emailIds)), 2)
            self.assertEqual(len(set(threadIds)), 1)
            self.assertEqual(imap.copy("2", "Archive")[0], "OK")
            imap.select("Archive")
            typ, data = imap.search(None, "EMAILID", emailIds[1])
            self.assertEqual(data, [b"1"])
            typ, data = imap.fetch("1", "(EMAILID THREADID)")
            self.assertEqual(ids(data[0], _EMAILID), emailIds[1:])
            self.assertEqual(ids(data[0], _THREADID), threadIds[1:])
            # Rows from before the ids existed: filled in the store's threads.
            conn = sqlite3.connect(indexPath, timeout=30)
            with conn:
                conn.execute("UPDATE messages SET emailid = NULL, threadid = NULL")
            conn.close()
            imap.select("INBOX")
            typ, data = imap.fetch("1:2", "(EMAILID THREADID)")
            self.assertEqual(ids(b" ".join(data), _EMAILID), emailIds)
            self.assertEqual(ids(b" ".join(data), _THREADID), threadIds)
            imap.logout()
        indexPath = self.context.realm.accountFor("demo@example.test").mailStore.indexPath
        return deferToThread(client)
