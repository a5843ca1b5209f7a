# -*- test-case-name: tests.test_durable_metadata -*-
"""
METADATA writes (SETMETADATA, CREATE's XCLASS) through the owner's index
writer: the entry files and the index's record of the change are written
off the reactor thread, the tagged OK comes once they are committed, and
other sessions are served meanwhile (issue 14 item 2).

The reactor thread's own index connection gets a short busy timeout: a
write made there while the writer holds the index's lock fails at once
(rather than after 30 s) and shows up as a logged error or a wrong answer.
"""

import fcntl
import json
import os
import sqlite3
import threading

from twisted.internet import reactor, task
from twisted.internet.defer import inlineCallbacks
from twisted.trial import unittest

from gateway.store import maildir, metadata, names
from gateway.store.metadata import CLASS_ENTRY, METADATA_FILE
from tests.test_durable import DurableTestMixin, Session
from tests.test_store_writer import failingGroup

OTHER = "other@example.test"


class MetadataHeldTestMixin(DurableTestMixin):
    """
    A logged-in session of demo; the threads that record metadata changes
    in an index are kept in C{self.threads}.
    """

    def setUp(self):
        DurableTestMixin.setUp(self)
        self.session = Session(self)
        self.shortBusyTimeout(self.store)
        self.threads = []
        original = names.recordMetadataChange

        def recordMetadataChange(conn, local, entries, viewer):
            self.threads.append(threading.current_thread())
            original(conn, local, entries, viewer)
        self.patch(names, "recordMetadataChange", recordMetadataChange)

    def shortBusyTimeout(self, store):
        """
        The reactor thread's connection to C{store}'s index gives up
        waiting for the write lock after 50 ms.
        """
        store._ownConn.execute("PRAGMA busy_timeout = 50")

    def recorded(self, store=None):
        """
        The metadata changes committed in the index of C{store}:
        C{[(mailbox, entries, viewer)]}.
        """
        conn = sqlite3.connect((self.store if store is None else store).indexPath)
        try:
            rows = conn.execute("SELECT value FROM meta WHERE key GLOB 'metadata:*' ORDER BY key").fetchall()
        finally:
            conn.close()
        return [tuple(json.loads(value)[:3]) for (value,) in rows]

    def entryFile(self, name, store=None):
        store = self.store if store is None else store
        return metadata.readFile(os.path.join(maildir.mailboxPath(store.path, name), METADATA_FILE))

    @inlineCallbacks
    def heldThenAnswered(self, command, tag, store=None):
        """
        Send C{command} while the writer of C{store} (demo's by default)
        is held: no answer while another session is served; once released
        it is answered.

        @return: a Deferred firing with the answer.
        """
        store = self.store if store is None else store
        other = Session(self)
        release = self.blockWriter(store)
        self.session.protocol.dataReceived(command + b"\r\n")
        for _ in range(10):
            yield task.deferLater(reactor, 0.005, lambda: None)
        self.assertIn(b"n OK", other.send(b"n NOOP"))
        self.assertNotIn(tag + b" ", self.session.read())
        self.assertEqual(self.recorded(store), [])
        release.set()
        yield self.blocked
        out = yield self.waitFor(self.session, tag + b" ")
        self.assertNotEqual(self.threads, [])
        self.assertEqual([thread is threading.main_thread() for thread in self.threads],
                         [False] * len(self.threads))
        return out


class SetMetadataTests(MetadataHeldTestMixin, unittest.TestCase):
    """
    SETMETADATA on the viewer's own mailboxes and server entries.
    """

    @inlineCallbacks
    def test_mailboxEntry(self):
        """SETMETADATA of a mailbox entry is answered once the entry and its record are committed by the writer."""
        out = yield self.heldThenAnswered(b'a SETMETADATA Drafts (/shared/comment "kept")', b"a")
        self.assertIn(b"a OK", out)
        self.assertEqual(self.entryFile("Drafts")[0], {"/shared/comment": b"kept"})
        self.assertEqual(self.recorded(), [("Drafts", ["/shared/comment"], "demo@example.test")])

    @inlineCallbacks
    def test_serverEntry(self):
        """SETMETADATA of a private server entry is answered once its record is committed by the writer."""
        out = yield self.heldThenAnswered(b'a SETMETADATA "" (/private/comment "mine")', b"a")
        self.assertIn(b"a OK", out)
        self.assertEqual(self.recorded(), [(None, ["/private/comment"], "demo@example.test")])

    @inlineCallbacks
    def test_folderClass(self):
        """SETMETADATA of the folder class changes the index's class in the writer, then answers."""
        out = yield self.heldThenAnswered(b'a SETMETADATA Drafts (%s "IPF.Journal")' % (CLASS_ENTRY.encode(),), b"a")
        self.assertIn(b"a OK", out)
        self.assertEqual(self.committed("SELECT class FROM mailboxes WHERE name = 'Drafts'"), [("IPF.Journal",)])
        self.assertEqual(self.entryFile("Drafts")[0], {CLASS_ENTRY: b"IPF.Journal"})

    @inlineCallbacks
    def test_refusedAfterChecks(self):
        """A SETMETADATA the checks refuse is answered at once with its NO, nothing written, and the session goes on."""
        out = self.session.send(b'a SETMETADATA Drafts (/shared/vendor/kolab/folder-type "event")')
        self.assertIn(b"a NO [NOPERM]", out)
        out = self.session.send(b'b SETMETADATA Nothing (/shared/comment "x")')
        self.assertIn(b"b NO [NONEXISTENT]", out)
        self.session.protocol.dataReceived(b"c NOOP\r\n")
        yield self.waitFor(self.session, b"c OK")
        self.assertEqual(self.recorded(), [])

    @inlineCallbacks
    def test_listenersToldOnReactor(self):
        """A NOTIFY session hears of another session's SETMETADATA on the reactor thread, once it is committed."""
        watcher = Session(self)
        self.assertIn(b"w OK", watcher.send(b"w NOTIFY SET (personal (MailboxMetadataChange))"))
        self.session.protocol.dataReceived(b'a SETMETADATA Drafts (/shared/comment "told")\r\n')
        yield self.waitFor(self.session, b"a OK")
        seen = yield self.waitFor(watcher, b"* METADATA")
        self.assertIn(b"* METADATA \"Drafts\" /shared/comment", seen)


class CreateClassTests(MetadataHeldTestMixin, unittest.TestCase):
    """
    CREATE ... (XCLASS ...) keeps the class in the new mailbox's entries
    through the writer.
    """

    @inlineCallbacks
    def test_createClass(self):
        """CREATE with XCLASS is answered once the mailbox and its class entry are committed by the writer."""
        out = yield self.heldThenAnswered(b'a CREATE Diary (XCLASS "IPF.Journal")', b"a")
        self.assertIn(b"a OK", out)
        self.assertEqual(self.committed("SELECT class FROM mailboxes WHERE name = 'Diary'"), [("IPF.Journal",)])
        self.assertEqual(self.entryFile("Diary")[0], {CLASS_ENTRY: b"IPF.Journal"})
        self.assertEqual(self.recorded(), [("Diary", [CLASS_ENTRY], "demo@example.test")])


class SharedMetadataTests(MetadataHeldTestMixin, unittest.TestCase):
    """
    SETMETADATA on another account's mailbox goes through that owner's
    writer.
    """

    def setUp(self):
        MetadataHeldTestMixin.setUp(self)
        self.context.realm.accountFor(OTHER).access.setACL("INBOX", "demo@example.test", "lrswi")
        self.otherStore = self.context.realm.accountFor(OTHER).mailStore
        self.shortBusyTimeout(self.otherStore)

    @inlineCallbacks
    def test_otherAccount(self):
        """SETMETADATA on ~other/INBOX is answered once other's writer committed the entry and its record."""
        out = yield self.heldThenAnswered(b'a SETMETADATA ~other/INBOX (/private/note "mine")', b"a",
                                          self.otherStore)
        self.assertIn(b"a OK", out)
        self.assertEqual(self.entryFile("INBOX", self.otherStore)[1],
                         {"demo@example.test": {"/private/note": b"mine"}})
        self.assertEqual(self.recorded(self.otherStore), [("INBOX", ["/private/note"], "demo@example.test")])


class RolledBackTests(MetadataHeldTestMixin, unittest.TestCase):
    """
    A METADATA write whose group does not commit leaves the entry files as
    they were.
    """

    @inlineCallbacks
    def test_groupFails(self):
        """SETMETADATA in a group that does not commit restores the entries it changed and answers NO."""
        service = self.context.metadata
        access = self.context.realm.accountFor("demo@example.test").access
        service.setEntries(access, "Drafts", [("/shared/comment", b"before"), ("/shared/other", b"kept")])
        yield failingGroup(self, self.store, lambda: service.setEntriesLater(
            access, "Drafts", [("/shared/comment", b"after"), ("/shared/new", b"x")]))
        self.assertEqual(self.entryFile("Drafts")[0], {"/shared/comment": b"before", "/shared/other": b"kept"})


class FirstMailboxIdTests(DurableTestMixin, unittest.TestCase):
    """
    A mailbox's first MAILBOXID (its metadata file, written under the
    folder's lock) is written off the reactor thread: while another
    process holds the folder's lock, other sessions are served, and the
    answer comes with the id once it is written.
    """

    def lockFolder(self, name):
        """
        Take the metadata lock of mailbox C{name}'s folder as another
        process would; a thread lets it go when the returned event is set
        (after 5 s at the latest: a reactor that waits for it is not
        stuck for ever).
        """
        folder = maildir.mailboxPath(self.store.path, name)
        self.assertIsNone(metadata.knownMailboxId(folder))
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        release = threading.Event()

        def unlock():
            release.wait(5)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        thread = threading.Thread(target=unlock)
        thread.start()
        self.addCleanup(thread.join)
        self.addCleanup(release.set)
        return release

    @inlineCallbacks
    def heldThenAnswered(self, session, command, tag, mailbox):
        other = Session(self)
        release = self.lockFolder(mailbox)
        self.assertEqual(session.send(command), b"")
        self.assertIn(b"n OK", other.send(b"n NOOP"))
        yield task.deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(session.read(), b"")
        release.set()
        out = yield self.waitFor(session, tag + b" OK")
        mailboxId = metadata.knownMailboxId(maildir.mailboxPath(self.store.path, mailbox))
        self.assertIsNotNone(mailboxId)
        return out, mailboxId.encode("ascii")

    @inlineCallbacks
    def test_status(self):
        """STATUS (MAILBOXID) of a mailbox without an id yet: written off the reactor, then answered."""
        session = Session(self)
        out, mailboxId = yield self.heldThenAnswered(session, b"a STATUS Drafts (MAILBOXID MESSAGES)", b"a", "Drafts")
        self.assertIn(b"* STATUS \"Drafts\" (MAILBOXID (%s) MESSAGES 0)\r\na OK" % (mailboxId,), out)

    @inlineCallbacks
    def test_select(self):
        """SELECT of a mailbox without an id yet answers with its MAILBOXID once written off the reactor."""
        session = Session(self)
        yield self.store.getMailbox("Sent").synchronize()
        out, mailboxId = yield self.heldThenAnswered(session, b"a SELECT Sent", b"a", "Sent")
        self.assertIn(b"* OK [MAILBOXID (%s)] Ok\r\n" % (mailboxId,), out)
        self.assertIn(b"a OK [READ-WRITE] SELECT completed", out)

    @inlineCallbacks
    def test_listStatus(self):
        """LIST ... RETURN (STATUS (MAILBOXID)): the mailboxes without an id get one off the reactor, then LIST answers."""
        session = Session(self)
        out, mailboxId = yield self.heldThenAnswered(
            session, b'a LIST "" "Junk" RETURN (STATUS (MAILBOXID))', b"a", "Junk")
        self.assertIn(b'* STATUS "Junk" (MAILBOXID (%s))\r\na OK' % (mailboxId,), out)
        for name in ("INBOX", "Notes"):
            self.assertIsNotNone(metadata.knownMailboxId(maildir.mailboxPath(self.store.path, name)))
