# -*- test-case-name: tests.test_store_rescan -*-
"""
Issue 14 item 1: a change this process makes is applied to the index
directly and never makes the store list the Maildir again; an inotify wake
for another program's change costs work for the names it reports, not for
the whole mailbox.
"""

import contextlib
import fcntl
import os
import sqlite3
import sys
import threading

from twisted.internet import reactor, task
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial import unittest

from gateway.errors import NoSuchMailbox
from gateway.store import changes, index, maildir, scan
from gateway.store.watch import sharedINotify
from tests.test_diskfull import sqliteFull
from tests.test_store_mail import CRLF_MESSAGE, LF_MESSAGE, StoreTestMixin


class OwnChangesTests(StoreTestMixin, unittest.TestCase):
    """
    Scans counted (not timed) around bursts of this process's own changes,
    with a session listening as an IMAP session in SELECTED state does.
    """

    timeout = 20

    def setUp(self):
        if not sys.platform.startswith("linux"):
            raise unittest.SkipTest("inotify is Linux only")
        self.scans = []
        original = scan.scanMailbox

        def counting(conn, mailboxId, path, names=None):
            self.scans.append("full" if names is None else len(names))
            return original(conn, mailboxId, path, names)
        self.patch(scan, "scanMailbox", counting)
        self.store = self.makeStore(reactor=reactor)
        self.inbox = self.store.getMailbox("INBOX")

    def settle(self):
        """
        Give the inotify events of what was done so far time to arrive and
        be handled (what must have happened is waited for by L{waitFor}).
        """
        return task.deferLater(reactor, 0.2, lambda: None)

    @inlineCallbacks
    def waitFor(self, condition):
        """
        Synchronize the inbox until C{condition()} holds (the test's
        timeout bounds the wait): however late inotify's events come.
        """
        while True:
            yield self.inbox.synchronize()
            if condition():
                return
            yield task.deferLater(reactor, 0.02, lambda: None)

    @inlineCallbacks
    def selectAndListen(self):
        yield self.inbox.synchronize()
        self.notified = []
        self.addCleanup(self.inbox.addListener(lambda: self.notified.append(1)))
        yield self.inbox.synchronize()
        del self.scans[:]

    @inlineCallbacks
    def test_ownBurstScansNothing(self):
        """APPEND, STORE (flags and keywords), EXPUNGE, COPY and MOVE by this process cause no scan."""
        drafts = self.store.getMailbox("Drafts")
        yield self.selectAndListen()
        uids = []
        for n in range(10):
            uids.append(self.inbox.appendMessage(CRLF_MESSAGE, flags=["\\Seen"] if n % 2 else []))
            yield self.inbox.synchronize()
        self.inbox.setFlags(uids, ["\\Flagged"], "+")
        yield self.inbox.synchronize()
        self.inbox.setFlags(uids[:3], ["Important"], "+")
        self.inbox.setFlags(uids[:5], ["\\Deleted"], "+")
        yield self.inbox.synchronize()
        self.inbox.expunge()
        yield self.inbox.synchronize()
        copied = [pair[1] for pair in self.inbox.copyTo(uids[5:], drafts)]
        drafts.copyTo(copied[:2], self.inbox)
        drafts.moveTo(copied[2:], self.inbox)
        self.inbox.moveTo(self.inbox.uids()[:1], drafts)
        yield self.inbox.synchronize()
        yield self.settle()
        yield self.inbox.synchronize()
        self.assertEqual(self.scans, [])
        self.assertEqual(len(self.inbox.uids()), 9)
        self.assertTrue(self.notified)

    @inlineCallbacks
    def test_externalChangesCostTheirNames(self):
        """
        Files another program drops into new/, renames in cur/ and removes
        are still taken into the index, by scans of the names inotify
        reported, never by listing the folders.
        """
        yield self.selectAndListen()
        uids = [self.inbox.appendMessage(CRLF_MESSAGE, flags=["\\Seen"]) for _ in range(20)]
        yield self.settle()
        start = self.inbox.highestModSeq()
        notified = Deferred()
        self.addCleanup(self.inbox.addListener(lambda: notified.called or notified.callback(None)))
        path = self.inbox._path()
        with open(os.path.join(path, "new", "5000.mutt.host"), "wb") as f:
            f.write(LF_MESSAGE)
        cur = os.path.join(path, "cur")
        rows = dict(self.store._conn.execute(
            "SELECT uid, filename FROM messages WHERE uid IN (?, ?)", uids[:2]).fetchall())
        os.rename(os.path.join(cur, rows[uids[0]]), os.path.join(cur, rows[uids[0]] + "F"))
        os.unlink(os.path.join(cur, rows[uids[1]]))
        yield notified
        yield self.waitFor(lambda: len(self.inbox.uids()) == 20 and uids[1] not in self.inbox.uids()
                           and self.inbox.messages([uids[0]])[0].flags == {"\\Seen", "\\Flagged"})
        self.assertNotIn("full", self.scans)
        self.assertTrue(self.scans, "the names were scanned")
        self.assertLessEqual(sum(self.scans), 10)
        self.assertEqual(len(self.inbox.uids()), 20)
        self.assertEqual(self.inbox.messages([uids[0]])[0].flags, {"\\Seen", "\\Flagged"})
        self.assertNotIn(uids[1], self.inbox.uids())
        expunged, changed, _ = self.inbox.changesSince(start)
        self.assertEqual(expunged, [uids[1]])
        newest = self.inbox.uids()[-1]
        self.assertEqual(self.readAll(self.inbox.openMessage(newest)), LF_MESSAGE.replace(b"\n", b"\r\n"))

    @inlineCallbacks
    def test_notWatchedScansOnce(self):
        """Without a listener the folder mtimes decide: a change by another program is found by one scan."""
        yield self.inbox.synchronize()
        del self.scans[:]
        self.inbox.appendMessage(CRLF_MESSAGE)
        with open(os.path.join(self.inbox._path(), "new", "5001.mutt.host"), "wb") as f:
            f.write(CRLF_MESSAGE)
        yield self.inbox.synchronize()
        self.assertEqual(self.scans, ["full"])
        self.assertEqual(len(self.inbox.uids()), 2)

    @inlineCallbacks
    def test_ownChangesLeaveFoldersTrusted(self):
        """
        After this process's own changes under inotify, the index says its
        folders are in step: another store (process) that is not watching
        needs no scan either.
        """
        yield self.selectAndListen()
        uid = self.inbox.appendMessage(CRLF_MESSAGE)
        self.inbox.setFlags([uid], ["\\Seen"], "+")
        other = self.makeStore(self.mailPath)
        yield other.getMailbox("INBOX").synchronize()
        self.assertEqual(self.scans, [])
        self.assertEqual(other.getMailbox("INBOX").uids(), [uid])

    @inlineCallbacks
    def test_groupRecordsFoldersOnce(self):
        """
        The index writer records a mailbox's folder mtimes once for a group
        of writes, after the last: a store (process) that is not watching
        needs no scan after them.
        """
        from tests.test_store_writer import holdWriter

        yield self.selectAndListen()
        uids = []
        for _ in range(2):
            uids.append((yield self.inbox.appendMessageLater(CRLF_MESSAGE)))
        recorded = []
        original = changes.MailboxChanges._recordFoldersNow

        def recording(mailbox, path=None):
            recorded.append(self.store._writer.inWriter())
            return original(mailbox, path)
        self.patch(changes.MailboxChanges, "_recordFoldersNow", recording)
        groups = self.store._writer.groups
        release, blocked = holdWriter(self, self.store)
        writes = [self.inbox.setFlagsLater(uids[:1], ["\\Seen"], "+"),
                  self.inbox.setFlagsLater(uids[1:], ["$Later"], "+"),
                  self.inbox.appendMessageLater(LF_MESSAGE)]
        release.set()
        yield blocked
        yield writes[0]
        yield writes[1]
        uids.append((yield writes[2]))
        # The held write's group, then one for the three.
        self.assertEqual(self.store._writer.groups, groups + 2)
        self.assertEqual(recorded, [True])
        other = self.makeStore(self.mailPath)
        yield other.getMailbox("INBOX").synchronize()
        self.assertEqual(self.scans, [])
        self.assertEqual(other.getMailbox("INBOX").uids(), uids)

    @inlineCallbacks
    def test_changesRightAfterSelectLeaveFoldersTrusted(self):
        """
        Changes made as soon as a listener is added to an index in step
        (SELECT, then STORE and EXPUNGE at once) leave the folders trusted:
        the next open, unwatched, scans nothing (a QRESYNC SELECT listed
        the whole mailbox).
        """
        uids = [self.inbox.appendMessage(CRLF_MESSAGE) for _ in range(4)]
        yield self.settle()
        yield task.deferLater(reactor, scan.DIRTY_WINDOW_NS / 1e9, lambda: None)
        yield self.inbox.synchronize()
        del self.scans[:]
        remove = self.inbox.addListener(lambda: None)
        self.inbox.setFlags(uids[:2], ["$Run", "\\Deleted"], "+")
        self.inbox.expunge(uids[:1])
        remove()
        yield self.inbox.synchronize()
        self.assertEqual(self.scans, [])
        self.assertEqual(self.inbox.uids(), uids[1:])

    @inlineCallbacks
    def test_manyExternalFilesListedInThread(self):
        """Past _MAX_EVENT_NAMES reported names, the folders are listed (in a thread) instead."""
        self.patch(changes, "_MAX_EVENT_NAMES", 3)
        yield self.selectAndListen()
        for n in range(6):
            with open(os.path.join(self.inbox._path(), "new", "600%d.tool.host" % (n,)), "wb") as f:
                f.write(CRLF_MESSAGE)
        yield self.waitFor(lambda: len(self.inbox.uids()) == 6)
        self.assertIn("full", self.scans)

    @inlineCallbacks
    def test_lostEventsFallBackOnMtimes(self):
        """When inotify says it lost events, the folders are listed again and what changed is found."""
        yield self.selectAndListen()
        self.inbox.appendMessage(CRLF_MESSAGE)
        yield self.settle()
        self.assertTrue(self.inbox._covered)
        sharedINotify(reactor)._overflow()
        yield self.settle()
        with open(os.path.join(self.inbox._path(), "cur", "7000.lost.host:2,S"), "wb") as f:
            f.write(CRLF_MESSAGE)
        yield self.inbox.synchronize()
        self.assertIn("full", self.scans)
        self.assertEqual(len(self.inbox.uids()), 2)


class InconsistentTests(StoreTestMixin, unittest.TestCase):
    """
    Which of the names inotify reported disagree with the index.
    """

    def test_names(self):
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        uids = [inbox.appendMessage(CRLF_MESSAGE) for _ in range(3)]
        kept, renamed, gone = [self.files(inbox, "new")[i] for i in range(3)]
        self.assertEqual(len(uids), 3)
        # Another program renames one (a flag), removes one, drops one in.
        os.rename(os.path.join(inbox._path(), "new", renamed), os.path.join(inbox._path(), "cur", renamed + ":2,S"))
        os.remove(os.path.join(inbox._path(), "new", gone))
        with open(os.path.join(inbox._path(), "new", "4000.mutt.host"), "wb") as f:
            f.write(CRLF_MESSAGE)
        names = [("new", kept), ("new", renamed), ("cur", renamed + ":2,S"), ("new", gone),
                 ("new", "4000.mutt.host"), ("new", ".hidden")]
        self.patch(changes, "_BASES_PER_QUERY", 2)
        self.assertEqual(sorted(inbox._inconsistent(names)),
                         sorted([("new", renamed), ("cur", renamed + ":2,S"), ("new", gone), ("new", "4000.mutt.host")]))


class ScanWritesTests(StoreTestMixin, unittest.TestCase):
    """
    What a scan writes: nothing when the names inotify reported are in the
    index by then (with two workers, most often the other worker's rename
    seen before its commit), and what it does write in turn with the index
    writers of every process (their lock), never racing them for SQLite's.
    """

    def setUp(self):
        self.store = self.makeStore()
        self.inbox = self.store.getMailbox("INBOX")
        self.inbox.appendMessage(CRLF_MESSAGE)
        self.name = self.files(self.inbox, "new")[0]

    def test_agreedNamesWriteNothing(self):
        """
        A targeted scan of names the index already has takes neither the
        writers' lock nor a transaction.
        """
        taken = []
        self.patch(scan.index, "writersTurn", lambda conn: taken.append("lock"))
        self.patch(scan.index, "transaction", lambda conn: taken.append("transaction"))
        self.assertFalse(scan.scanMailbox(self.store._conn, self.inbox._id, self.inbox._path(),
                                          [("new", self.name)]))
        self.assertEqual(taken, [])

    def test_waitsForTheWriters(self):
        """
        A scan that has something to write waits while a writer (here, this
        test) holds the writers' lock, and writes once it is let go.
        """
        with open(os.path.join(self.inbox._path(), "new", "4000.mutt.host"), "wb") as f:
            f.write(CRLF_MESSAGE)
        lock = index.openWritersLock(self.store.indexPath)
        self.addCleanup(os.close, lock)
        fcntl.flock(lock, fcntl.LOCK_EX)
        other = index.connect(self.store.indexPath)
        self.addCleanup(other.close)
        outcome = []
        scanner = threading.Thread(target=lambda: outcome.append(
            scan.scanMailbox(other, self.inbox._id, self.inbox._path(), [("new", "4000.mutt.host")])))
        scanner.start()
        scanner.join(0.5)
        self.assertTrue(scanner.is_alive())
        self.assertEqual(len(self.inbox.uids()), 1)
        fcntl.flock(lock, fcntl.LOCK_UN)
        scanner.join(10)
        self.assertEqual(outcome, [True])
        self.assertEqual(len(self.inbox.uids()), 2)


class RenamedWhileOpenedTests(StoreTestMixin, unittest.TestCase):
    """
    Another process renames a message file (a flag change) between the
    moment the store finds its name and the moment it opens it (the soak's
    C{FETCH} answered C{NO [SERVERBUG]}, FileNotFoundError).
    """

    def test_renamedAgainWhileLocated(self):
        """openMessage looks again when the file it found is renamed before it opens it."""
        from gateway.store.mailbox import Mailbox

        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        uid = inbox.appendMessage(CRLF_MESSAGE)
        [name] = self.allFiles(inbox)
        folder = inbox._path()
        subdir = "cur" if name in self.files(inbox, "cur") else "new"
        # Renamed by another program: the index still names the old file.
        os.rename(os.path.join(folder, subdir, name), os.path.join(folder, "cur", name.split(":")[0] + ":2,S"))
        original = Mailbox._locate
        calls = []

        def locate(self_, path, base):
            calls.append(base)
            if len(calls) == 1:
                # What the listing saw, renamed again before the open.
                return os.path.join(path, "cur", base + ":2,")
            return original(self_, path, base)

        self.patch(Mailbox, "_locate", locate)
        with inbox.openMessage(uid) as f:
            self.assertEqual(self.readAll(f), CRLF_MESSAGE)
        self.assertEqual(len(calls), 2)

    def test_movedFromNewToCurBetweenListings(self):
        """A file that moves from new/ to cur/ (its first flag) while the store lists the folders is still found."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        uid = inbox.appendMessage(CRLF_MESSAGE)
        folder = inbox._path()
        [name] = self.files(inbox, "new")
        base = name.split(":")[0]
        # Renamed by another program: the index names a file that is gone.
        os.rename(os.path.join(folder, "new", name), os.path.join(folder, "new", base + ":2,"))
        listdir = os.listdir
        listed = []

        def listing(path):
            names = listdir(path)
            listed.append(path)
            if len(listed) == 1:
                # Another process flags it just after the first listing.
                os.rename(os.path.join(folder, "new", base + ":2,"), os.path.join(folder, "cur", base + ":2,S"))
            return names
        self.patch(os, "listdir", listing)
        with inbox.openMessage(uid) as f:
            self.assertEqual(self.readAll(f), CRLF_MESSAGE)

    def test_missedByOneListing(self):
        """A listing that misses a file being renamed within cur/ is followed by another look before NoSuchMessage."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        uid = inbox.appendMessage(CRLF_MESSAGE)
        folder = inbox._path()
        [name] = self.allFiles(inbox)
        subdir = "cur" if name in self.files(inbox, "cur") else "new"
        os.rename(os.path.join(folder, subdir, name), os.path.join(folder, "cur", name.split(":")[0] + ":2,S"))
        listdir = os.listdir
        misses = []

        def listing(path):
            names = listdir(path)
            if len(misses) < 2:
                # readdir during a rename in the folder: the entry is missed.
                misses.append(path)
                return [n for n in names if not n.startswith(name.split(":")[0])]
            return names
        self.patch(os, "listdir", listing)
        with inbox.openMessage(uid) as f:
            self.assertEqual(self.readAll(f), CRLF_MESSAGE)

    def test_goneForGood(self):
        """A message whose file is nowhere is NoSuchMessage, not an OSError."""
        from gateway.errors import NoSuchMessage

        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        uid = inbox.appendMessage(CRLF_MESSAGE)
        for name in self.files(inbox, "cur"):
            os.unlink(os.path.join(inbox._path(), "cur", name))
        for name in self.files(inbox, "new"):
            os.unlink(os.path.join(inbox._path(), "new", name))
        self.assertRaises(NoSuchMessage, inbox.openMessage, uid)

    def test_goneAfterTwoListings(self):
        """A file no listing finds is given up after two looks (each lists new/ and cur/), not one per open attempt."""
        from gateway.errors import NoSuchMessage
        from gateway.store.mailbox import Mailbox

        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        uid = inbox.appendMessage(CRLF_MESSAGE)
        for sub in ("cur", "new"):
            for name in self.files(inbox, sub):
                os.unlink(os.path.join(inbox._path(), sub, name))
        original = Mailbox._locate
        calls = []

        def locate(self_, path, base):
            calls.append(base)
            return original(self_, path, base)
        self.patch(Mailbox, "_locate", locate)
        self.assertRaises(NoSuchMessage, inbox.openMessage, uid)
        self.assertEqual(len(calls), 2)


class DeletedMeanwhileTests(StoreTestMixin, unittest.TestCase):
    """
    A scan that runs while its mailbox is deleted (a first open's scan in
    the thread pool, then DELETE by the writer) ends with NoSuchMailbox,
    and the background scan's failure is not logged as an error.
    """

    def test_scanOfDeletedMailbox(self):
        """A mailbox deleted while its folders are listed ends the scan with NoSuchMailbox."""
        store = self.makeStore()
        store.createMailbox("Old")
        mailbox = store.getMailbox("Old")
        mailbox.appendMessage(CRLF_MESSAGE)
        path, mailboxId = mailbox._path(), mailbox._id
        with open(os.path.join(path, "new", "1.other.host"), "wb") as f:
            f.write(CRLF_MESSAGE)
        listing = scan._listDirectory
        deleted = []

        def listAndDelete(*args):
            if not deleted:
                deleted.append(True)
                other = self.makeStore(self.mailPath)
                other.deleteMailbox("Old")
                maildir.ensureMaildir(path)
            return listing(*args)
        self.patch(scan, "_listDirectory", listAndDelete)
        self.assertRaises(NoSuchMailbox, scan.scanMailbox, store._conn, mailboxId, path)
        self.assertEqual(deleted, [True])

    def test_backgroundScanOfDeletedMailbox(self):
        """A background scan that found its mailbox deleted logs one line, no error."""
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        changes.syncFailed(Failure(NoSuchMailbox("mailbox was deleted")), "Old")
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual([e for e in events if e.get("log_failure") is not None], [])

    def test_scanDoesNotMakeDeletedFolderAgain(self):
        """A folder moved away (DELETE) just after the scan saw it is not made again by the scan."""
        store = self.makeStore()
        store.createMailbox("Old")
        mailbox = store.getMailbox("Old")
        path, mailboxId = mailbox._path(), mailbox._id
        aside = path + ".aside"
        isMaildir = maildir.isMaildir

        def seenThenMoved(folder):
            found = isMaildir(folder)
            if found and folder == path:
                os.rename(path, aside)
            return found
        self.patch(scan.maildir, "isMaildir", seenThenMoved)
        self.assertFalse(scan.scanMailbox(store._conn, mailboxId, path))
        self.assertFalse(os.path.exists(path))


class AfterBootTests(StoreTestMixin, unittest.TestCase):
    """
    A power cut between a write group's COMMIT and its folders' fsync can
    leave the index saying what a folder does not hold, next to recorded
    folder mtimes that match it: the first open of the index after the
    machine started has each mailbox's folders listed again.
    """

    timeout = 20

    def setUp(self):
        if scan.bootId() is None:
            raise unittest.SkipTest("no boot identifier here (Linux's %s)" % (scan.BOOT_ID_PATH,))

    def lostRename(self):
        """
        Leave the state such a power cut can: the index has messages 1 and
        2, message 2's file is not in the folder, and the index trusts the
        folders' mtimes as they are.
        """
        store = self.makeStore(reactor=reactor)
        inbox = store.getMailbox("INBOX")
        inbox.appendMessage(CRLF_MESSAGE)
        inbox.appendMessage(LF_MESSAGE)
        path = inbox._path()
        subdir, filename = store._conn.execute(
            "SELECT subdir, filename FROM messages WHERE uid = 2").fetchone()
        os.unlink(os.path.join(path, subdir, filename))
        new, cur = (scan.folderMtime(os.path.join(path, sub)) for sub in ("new", "cur"))
        with index.transaction(store._conn):
            store._conn.execute(
                "UPDATE mailboxes SET newmtime = ?, newsynced = ?, curmtime = ?, cursynced = ? WHERE name = 'INBOX'",
                (new, new + scan.DIRTY_WINDOW_NS, cur, cur + scan.DIRTY_WINDOW_NS))
        store.close()
        return path

    def openedInAnEarlierBoot(self):
        """
        Say in the index that it was last opened in another boot.

        @return: a connection of the test's own to the index.
        """
        conn = index.connect(os.path.join(self.mailPath, maildir.INDEX_NAME))
        self.addCleanup(conn.close)
        with index.transaction(conn):
            conn.execute("UPDATE meta SET value = 'an earlier boot' WHERE key = ?", (scan.BOOT_KEY,))
        return conn

    @inlineCallbacks
    def test_sameBootTrustsFolders(self):
        """
        In the same boot the recorded mtimes are trusted: the index keeps
        the message whose file is gone (what the check below guards against).
        """
        self.lostRename()
        inbox = self.makeStore(self.mailPath, reactor=reactor).getMailbox("INBOX")
        yield inbox.synchronize()
        self.assertEqual(inbox.uids(), [1, 2])

    @inlineCallbacks
    def test_newBootListsFolders(self):
        """
        Opened in a new boot, the index lists the folders: the message whose
        file is gone is expunged, and the boot is recorded, once.
        """
        self.lostRename()
        conn = self.openedInAnEarlierBoot()
        store = self.makeStore(self.mailPath, reactor=reactor)
        self.assertEqual(conn.execute("SELECT value FROM meta WHERE key = ?", (scan.BOOT_KEY,)).fetchone()[0],
                         scan.bootId())
        self.assertFalse(scan.distrustFoldersAfterBoot(conn))
        inbox = store.getMailbox("INBOX")
        yield inbox.synchronize()
        self.assertEqual(inbox.uids(), [1])

    def test_fullDiskStillOpens(self):
        """
        On a full disk the mark is not written and the store still opens
        (its user may be opening it to make room); another error is raised.
        """
        self.lostRename()
        conn = self.openedInAnEarlierBoot()
        errors = [sqliteFull()]

        @contextlib.contextmanager
        def failing(conn):
            raise errors[0]
            yield
        self.patch(scan.index, "transaction", failing)
        self.assertFalse(scan.distrustFoldersAfterBoot(conn))
        self.makeStore(self.mailPath, reactor=reactor).getMailbox("INBOX")
        errors[0] = sqlite3.OperationalError("disk I/O error")
        self.assertRaises(sqlite3.OperationalError, scan.distrustFoldersAfterBoot, conn)


class FolderGoneTests(StoreTestMixin, unittest.TestCase):
    """
    A scan in a pool thread can find a folder gone between its first look
    and its listing (a DELETE or RENAME renames it aside, and back when its
    group does not commit).
    """

    def test_unindexedFolderGone(self):
        """
        The first scan of a mailbox whose C{cur/} is gone by the time its
        mtime is read records nothing (the mailbox stays to be indexed by
        the next scan), and does not fail.
        """
        store = self.makeStore()
        store.createMailbox("Going")
        mailboxId = store.getMailbox("Going")._id
        path = store.getMailbox("Going")._path()
        with index.transaction(store._conn):
            store._conn.execute("UPDATE mailboxes SET indexed = 0, curmtime = 7 WHERE id = ?", (mailboxId,))
        real = scan._stat
        self.patch(scan, "dirtyDirectories", lambda row, folder: [])
        self.patch(scan, "_stat", lambda folder: None if folder.endswith("cur") else real(folder))
        self.assertFalse(scan.scanMailbox(store._conn, mailboxId, path))
        self.assertEqual(store._conn.execute("SELECT indexed, curmtime FROM mailboxes WHERE id = ?",
                                             (mailboxId,)).fetchone(), (0, 7))
