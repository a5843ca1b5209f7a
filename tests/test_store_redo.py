"""
The index as the journal of the message files (L{gateway.store.redo}):
what the index writer records in place of the files' and folders' fsync,
the checkpoint that forgets it once the file system is synced, and the
replay after a new boot.
"""

import os
import sqlite3

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial import unittest

from gateway.store import index, mailbox, maildir, redo, scan, writer
from tests.test_store_mail import CRLF_MESSAGE, StoreTestMixin

SMALL = b"From: a@example.org\r\nSubject: small\r\n\r\nx\r\n"


class RedoMixin(StoreTestMixin):
    """
    A store whose writes go through its index writer (the reactor's
    threads), and a checkpointer that checkpoints only when told.
    """

    timeout = 30

    def setUp(self):
        self.checkpoints = redo.Checkpointer(automatic=False)
        self.patch(redo, "checkpointer", self.checkpoints)
        self.store = self.makeStore(reactor=reactor)
        self.inbox = self.store.getMailbox("INBOX")

    def rows(self):
        return self.store._conn.execute("SELECT id, mailbox, base, octets FROM redo ORDER BY id").fetchall()

    def fileOf(self, uid, store=None):
        store = self.store if store is None else store
        subdir, filename = store._conn.execute(
            "SELECT subdir, filename FROM messages WHERE uid = ?", (uid,)).fetchone()
        return os.path.join(self.inbox._path(), subdir, filename)


class RecordTests(RedoMixin, unittest.TestCase):
    """
    Writes through the index writer that change message files record
    them in the index, and wait for no fsync of files or folders.
    """

    def setUp(self):
        RedoMixin.setUp(self)
        self.fileSyncs, self.folderSyncs = [], []
        realFile, realFolders = maildir.fsyncFile, writer.maildir.fsyncDirectories

        def fsyncFile(path):
            self.fileSyncs.append(path)
            realFile(path)

        def fsyncDirectories(paths):
            self.folderSyncs.extend(paths)
            realFolders(paths)
        self.patch(maildir, "fsyncFile", fsyncFile)
        self.patch(writer.maildir, "fsyncDirectories", fsyncDirectories)

    @inlineCallbacks
    def test_smallAppend(self):
        """
        A small APPEND's octets are committed with its row, and neither its
        file nor its folder is fsync'd; the checkpointer is told of the row.
        """
        uid = yield self.inbox.appendMessageLater(SMALL)
        base = maildir.splitName(os.path.basename(self.fileOf(uid)))[0]
        [(rowId, mailboxId, recorded, octets)] = self.rows()
        self.assertEqual((mailboxId, recorded, octets), (self.inbox._id, base, SMALL))
        self.assertEqual((self.fileSyncs, self.folderSyncs), ([], []))
        self.assertEqual(self.checkpoints._pending, {self.store.indexPath: rowId})

    @inlineCallbacks
    def test_noBootIdentifier(self):
        """
        Where the first open after a new boot cannot be told (no boot
        identifier), nothing would replay the rows: writes sync as before.
        """
        self.patch(redo, "_usable", False)
        uid = yield self.inbox.appendMessageLater(SMALL)
        yield self.inbox.setFlagsLater([uid], ["\\Seen"], "+")
        self.assertEqual(self.rows(), [])
        self.assertEqual(len(self.fileSyncs), 1)
        self.assertEqual(len(self.folderSyncs), 3)

    @inlineCallbacks
    def test_largeAppendSynced(self):
        """
        A large APPEND (written and fsync'd in the thread pool) records
        nothing: its folder is fsync'd before the reply, as before.
        """
        large = b"Subject: large\r\n\r\n" + b"y" * mailbox.INLINE_APPEND + b"\r\n"
        uid = yield self.inbox.appendMessageLater(large)
        self.assertEqual(self.rows(), [])
        self.assertEqual(self.folderSyncs, [os.path.dirname(self.fileOf(uid))])

    @inlineCallbacks
    def test_flagRename(self):
        """A STORE that renames a file records its base, and fsyncs no folder."""
        uid = yield self.inbox.appendMessageLater(SMALL)
        base = maildir.splitName(os.path.basename(self.fileOf(uid)))[0]
        yield self.inbox.setFlagsLater([uid], ["\\Seen"], "+")
        self.assertEqual([row[2:] for row in self.rows()], [(base, SMALL), (base, None)])
        self.assertEqual((self.fileSyncs, self.folderSyncs), ([], []))

    @inlineCallbacks
    def test_expunge(self):
        """An EXPUNGE records the bases of the messages it removed, and fsyncs no folder."""
        uids = []
        for _ in range(2):
            uids.append((yield self.inbox.appendMessageLater(SMALL)))
        bases = [maildir.splitName(os.path.basename(self.fileOf(uid)))[0] for uid in uids]
        yield self.inbox.setFlagsLater(uids, ["\\Deleted"], "+")
        before = len(self.rows())
        self.assertEqual((yield self.inbox.expungeLater()), uids)
        self.assertEqual(sorted(row[2] for row in self.rows()[before:]), sorted(bases))
        self.assertEqual(self.folderSyncs, [])

    @inlineCallbacks
    def test_checkpointForgets(self):
        """
        A checkpoint syncs the file system, then deletes the rows committed
        before it began, and only those.
        """
        synced = []
        realSync = redo.syncFileSystem

        def syncFileSystem(path):
            synced.append(path)
            realSync(path)
        self.patch(redo, "syncFileSystem", syncFileSystem)
        yield self.inbox.appendMessageLater(SMALL)
        pending = dict(self.checkpoints._pending)
        self.checkpoints._pending.clear()
        later = yield self.inbox.appendMessageLater(SMALL)
        self.checkpoints._pending.clear()
        self.checkpoints._pending.update(pending)
        self.checkpoints.flush()
        self.assertEqual(synced, [self.store.path])
        self.assertEqual([row[3] for row in self.rows()], [SMALL])
        self.assertEqual(self.rows()[0][0], redo.newest(self.store._conn))
        self.assertEqual(self.checkpoints._pending, {})
        self.assertEqual(self.readAll(self.inbox.openMessage(later)), SMALL)

    @inlineCallbacks
    def test_accountGoneMeanwhile(self):
        """
        An index removed between the sync and the forgetting of its rows (its
        account deleted) is not a failure to log; one still there is.
        """
        yield self.inbox.appendMessageLater(SMALL)

        def gone(indexPath, upTo):
            os.rename(indexPath, indexPath + ".away")
            raise sqlite3.OperationalError("unable to open database file")
        self.patch(redo, "_forgetIn", gone)
        self.checkpoints.flush()
        self.assertEqual(self.flushLoggedErrors(), [])
        os.rename(self.store.indexPath + ".away", self.store.indexPath)

        def failing(indexPath, upTo):
            raise sqlite3.OperationalError("disk I/O error")
        self.patch(redo, "_forgetIn", failing)
        self.checkpoints.note(self.store.indexPath, 1)
        self.checkpoints.flush()
        self.assertEqual(len(self.flushLoggedErrors(sqlite3.OperationalError)), 1)

    @inlineCallbacks
    def test_diskFullWaits(self):
        """
        Forgetting rows on a full disk (SQLite needs room in its log to delete)
        logs one warning line, no traceback, and the rows stay for a later pass.
        """
        from twisted.logger import LogLevel, globalLogPublisher

        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        yield self.inbox.appendMessageLater(SMALL)

        def full(indexPath, upTo):
            raise sqlite3.OperationalError("database or disk is full")
        self.patch(redo, "_forgetIn", full)
        self.checkpoints.flush()
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual(len(self.rows()), 1)
        [warning] = [e for e in events if e.get("log_namespace") == "gateway.store" and "redo" in e.get("log_format", "")]
        self.assertEqual(warning["log_level"], LogLevel.warn)
        self.assertIsNone(warning.get("log_failure"))

    @inlineCallbacks
    def test_failedSyncKeepsRows(self):
        """A checkpoint whose sync fails (an I/O error) keeps the rows."""
        def failing(path):
            raise OSError(5, "Input/output error")
        self.patch(redo, "syncFileSystem", failing)
        yield self.inbox.appendMessageLater(SMALL)
        self.checkpoints.flush()
        self.assertEqual(len(self.rows()), 1)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    @inlineCallbacks
    def test_leftRowsNoted(self):
        """
        Rows another process left (killed before its checkpoint) are given
        to the checkpointer when the store first writes.
        """
        conn = index.connect(self.store.indexPath)
        self.addCleanup(conn.close)
        with index.transaction(conn):
            left = redo.record(conn, self.inbox._id, "left-behind")
        store = self.makeStore(self.mailPath, reactor=reactor)
        self.checkpoints._pending.clear()
        yield store.getMailbox("INBOX").appendMessageLater(SMALL)
        self.assertEqual(self.checkpoints._pending, {store.indexPath: left + 1})
        self.checkpoints.flush()
        self.assertEqual(redo.newest(conn), None)


class ReplayTests(RedoMixin, unittest.TestCase):
    """
    Opened for the first time in a new boot, the index makes the files its
    rows name what it says, before any folder is listed: what a power cut
    took back of an acknowledged change comes back.
    """

    def setUp(self):
        if scan.bootId() is None:
            raise unittest.SkipTest("no boot identifier here (Linux's %s)" % (scan.BOOT_ID_PATH,))
        RedoMixin.setUp(self)

    def reopen(self, newBoot=True):
        """
        Close the store and open it again, as the first open of a new boot
        when C{newBoot}.
        """
        self.store.close()
        if newBoot:
            conn = index.connect(self.store.indexPath)
            with index.transaction(conn):
                conn.execute("UPDATE meta SET value = 'an earlier boot' WHERE key = ?", (scan.BOOT_KEY,))
            conn.close()
        self.store = self.makeStore(self.mailPath, reactor=reactor)
        self.inbox = self.store.getMailbox("INBOX")

    @inlineCallbacks
    def test_lostAppendWrittenBack(self):
        """
        An acknowledged APPEND whose file did not survive is written back
        from the index, with its internal date, under its UID.
        """
        uid = yield self.inbox.appendMessageLater(SMALL)
        path = self.fileOf(uid)
        mtime = os.stat(path).st_mtime
        os.unlink(path)
        self.reopen()
        with open(path, "rb") as f:
            self.assertEqual(f.read(), SMALL)
        self.assertEqual(os.stat(path).st_mtime, mtime)
        self.assertEqual(self.rows(), [])
        yield self.inbox.synchronize()
        self.assertEqual(self.inbox.uids(), [uid])

    @inlineCallbacks
    def test_emptyFileWrittenAgain(self):
        """A file that survived without its content is written again."""
        uid = yield self.inbox.appendMessageLater(SMALL)
        with open(self.fileOf(uid), "wb"):
            pass
        self.reopen()
        self.assertEqual(self.readAll(self.inbox.openMessage(uid)), SMALL)

    @inlineCallbacks
    def test_lostFlagRename(self):
        """
        An acknowledged STORE whose rename did not survive is renamed again:
        the flags are the index's, not the old name's.
        """
        uid = yield self.inbox.appendMessageLater(SMALL)
        old = self.fileOf(uid)
        yield self.inbox.setFlagsLater([uid], ["\\Seen", "\\Flagged"], "+")
        new = self.fileOf(uid)
        self.assertNotEqual(old, new)
        os.rename(new, old)
        self.reopen()
        self.assertTrue(os.path.exists(new))
        self.assertFalse(os.path.exists(old))
        yield self.inbox.synchronize()
        [info] = self.inbox.messages([uid])
        self.assertEqual(info.flags, {"\\Seen", "\\Flagged"})

    @inlineCallbacks
    def test_lostExpunge(self):
        """
        An acknowledged EXPUNGE whose move did not survive is done again:
        the file does not come back as a new message.
        """
        uids = []
        for _ in range(2):
            uids.append((yield self.inbox.appendMessageLater(SMALL)))
        yield self.inbox.setFlagsLater([uids[1]], ["\\Deleted"], "+")
        gone = self.fileOf(uids[1])
        yield self.inbox.expungeLater()
        with open(gone, "wb") as f:
            f.write(SMALL)
        self.reopen()
        self.assertFalse(os.path.exists(gone))
        yield self.inbox.synchronize()
        self.assertEqual(self.inbox.uids(), [uids[0]])

    @inlineCallbacks
    def test_sameBootNoReplay(self):
        """
        Within one boot (a killed process) nothing is replayed: the kernel
        had every change; the rows are left to the next checkpoint.
        """
        uid = yield self.inbox.appendMessageLater(SMALL)
        path = self.fileOf(uid)
        os.unlink(path)
        self.reopen(newBoot=False)
        self.assertFalse(os.path.exists(path))
        self.assertEqual(len(self.rows()), 1)

    @inlineCallbacks
    def test_failureLoggedAndOpens(self):
        """
        A file the replay cannot write is logged, and the account opens
        with the others replayed.
        """
        first = yield self.inbox.appendMessageLater(SMALL)
        second = yield self.inbox.appendMessageLater(CRLF_MESSAGE)
        paths = [self.fileOf(first), self.fileOf(second)]
        for path in paths:
            os.unlink(path)
        realWrite = maildir.writeTemporary

        def writeTemporary(tmpDir, source, *args):
            if source == SMALL:
                raise PermissionError(13, "Permission denied")
            return realWrite(tmpDir, source, *args)
        self.patch(maildir, "writeTemporary", writeTemporary)
        self.reopen()
        self.assertEqual(len(self.flushLoggedErrors(PermissionError)), 1)
        self.assertFalse(os.path.exists(paths[0]))
        self.assertEqual(self.readAll(self.inbox.openMessage(second)), CRLF_MESSAGE)
        self.assertEqual(self.rows(), [])

    @inlineCallbacks
    def test_deletedMailbox(self):
        """Rows of a mailbox deleted since are dropped."""
        self.store.createMailbox("Gone")
        gone = self.store.getMailbox("Gone")
        yield gone.appendMessageLater(CRLF_MESSAGE)
        self.store.deleteMailbox("Gone")
        self.reopen()
        self.assertEqual(self.rows(), [])
        self.assertNotIn("Gone", self.store.mailboxNames())


class TransferTests(RedoMixin, unittest.TestCase):
    """
    A COPY's hard link shares its source's content: when that content is
    recorded in the index and not yet known durable, the link is fsync'd
    before the copy is committed (no replay would write the copy back).
    """

    def setUp(self):
        RedoMixin.setUp(self)
        self.store.createMailbox("Copies")
        self.copies = self.store.getMailbox("Copies")
        self.fileSyncs = []
        realFile = maildir.fsyncFile

        def fsyncFile(path):
            self.fileSyncs.append(os.path.dirname(path))
            realFile(path)
        self.patch(maildir, "fsyncFile", fsyncFile)

    @inlineCallbacks
    def test_unsyncedSourceSynced(self):
        """A message appended since the last checkpoint has its copy's link fsync'd."""
        uid = yield self.inbox.appendMessageLater(SMALL)
        yield self.inbox.copyToLater([uid], self.copies)
        self.assertEqual(self.fileSyncs, [os.path.join(self.copies._path(), "tmp")])
        [copied] = self.copies.uids()
        self.assertEqual(self.readAll(self.copies.openMessage(copied)), SMALL)

    @inlineCallbacks
    def test_checkpointedSourceNotSynced(self):
        """Once checkpointed, a copy waits for no file's fsync."""
        uid = yield self.inbox.appendMessageLater(SMALL)
        self.checkpoints.flush()
        yield self.inbox.copyToLater([uid], self.copies)
        self.assertEqual(self.fileSyncs, [])
