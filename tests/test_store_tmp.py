# -*- test-case-name: tests.test_store_tmp -*-
"""
Tests for the C{tmp/} folders of L{gateway.store.mail}: files being written
(by this process or another one) are never taken away, left-overs of dead
processes are cleaned when a store opens a mailbox, and what stays counts.
"""

import datetime
import os
import subprocess
import sys
import time

from twisted.trial import unittest

from gateway.errors import StoreError
from gateway.store import index, maildir, scan, transfer
from tests.test_store_mail import CRLF_MESSAGE, StoreTestMixin
from tests.test_store_writer import failingGroup

OLD = datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


def deadPid():
    """
    The id of a process that has ended.
    """
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


class TemporaryRaceTests(StoreTestMixin, unittest.TestCase):
    """
    Issue 14 item 0: two processes on one data root; one's scan must not
    delete what the other is staging in C{tmp/}.
    """

    def rescanFromOther(self, other, name):
        """
        Make C{name} look changed on disk and let C{other} (another store on
        the same data root) scan it, as another process's inotify wake does.
        """
        box = other.getMailbox(name)
        other._conn.execute("UPDATE mailboxes SET newmtime = 0, curmtime = 0 WHERE id = ?", (box._id,))
        scan.scanMailbox(other._conn, box._id, box._path())

    def test_copyOfOldMessagesSurvivesOtherScan(self):
        """COPY of messages with an old INTERNALDATE keeps every copy while another store scans the target."""
        store = self.makeStore()
        other = self.makeStore(self.mailPath)
        inbox = store.getMailbox("INBOX")
        uids = [inbox.appendMessage(CRLF_MESSAGE, internalDate=OLD) for _ in range(5)]
        target = store.getMailbox("Drafts")
        stage = transfer.stage

        def stageThenScan(self_, *args):
            staged = stage(self_, *args)
            self.rescanFromOther(other, "Drafts")
            return staged
        self.patch(transfer, "stage", stageThenScan)
        pairs = inbox.copyTo(uids, target)
        self.assertEqual([p[0] for p in pairs], uids)
        self.assertEqual(len(target.uids()), 5)
        for _, uid in pairs:
            self.assertEqual(self.readAll(target.openMessage(uid)), CRLF_MESSAGE)
        self.assertEqual(os.listdir(os.path.join(target._path(), "tmp")), [])

    def test_appendOldMessageSurvivesOtherScan(self):
        """APPEND with an old INTERNALDATE succeeds while another store scans the mailbox."""
        store = self.makeStore()
        other = self.makeStore(self.mailPath)
        inbox = store.getMailbox("INBOX")
        write = maildir.writeTemporary

        def writeThenScan(*args, **kwargs):
            result = write(*args, **kwargs)
            self.rescanFromOther(other, "INBOX")
            return result
        self.patch(maildir, "writeTemporary", writeThenScan)
        uid = inbox.appendMessage(CRLF_MESSAGE, internalDate=OLD)
        self.assertEqual(self.readAll(inbox.openMessage(uid)), CRLF_MESSAGE)
        self.assertEqual(inbox.messages([uid])[0].internalDate, OLD)

    def test_lostStagedFileStagedAgain(self):
        """A COPY whose staged file vanished (another program cleaned tmp/) stages it again under the index lock:
        every copy is there, each with its bytes, and nothing is left in tmp/."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        uids = [inbox.appendMessage(CRLF_MESSAGE) for _ in range(3)]
        target = store.getMailbox("Drafts")
        stage = transfer.stage
        staged = []

        def stageAndLose(self_, *args):
            path = stage(self_, *args)
            staged.append(path)
            if len(staged) == 2:
                os.unlink(path)
            return path
        self.patch(transfer, "stage", stageAndLose)
        self.assertEqual(inbox.copyTo(uids, target), [(1, 1), (2, 2), (3, 3)])
        self.assertEqual(len(staged), 4)
        self.assertEqual(target.uids(), [1, 2, 3])
        for uid in target.uids():
            self.assertEqual(self.readAll(target.openMessage(uid)), CRLF_MESSAGE)
        self.assertEqual(os.listdir(os.path.join(target._path(), "tmp")), [])
        self.assertEqual(store.usage(), 6 * len(CRLF_MESSAGE))

    def test_lostStagedFileAndSourceFailsTheCopy(self):
        """A COPY whose staged file vanished and whose source is gone too fails and leaves the target as it was."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        uids = [inbox.appendMessage(CRLF_MESSAGE) for _ in range(3)]
        target = store.getMailbox("Drafts")
        stage = transfer.stage
        staged = []

        def stageAndLose(self_, *args):
            path = stage(self_, *args)
            staged.append(path)
            if len(staged) == 2:
                os.unlink(path)
                os.unlink(os.path.join(inbox._path(), args[1][1], args[1][2]))
            return path
        self.patch(transfer, "stage", stageAndLose)
        self.assertRaises(StoreError, inbox.copyTo, uids, target)
        self.assertEqual(target.uids(), [])
        self.assertEqual(target.uidNext(), 1)
        self.assertEqual(self.allFiles(target), [])
        self.assertEqual(os.listdir(os.path.join(target._path(), "tmp")), [])

    def test_lostMoveSourceFailsTheMove(self):
        """A MOVE whose source file another program removed fails and moves nothing."""
        store = self.makeStore()
        inbox = store.getMailbox("INBOX")
        uids = [inbox.appendMessage(CRLF_MESSAGE, flags=["\\Seen"]) for _ in range(3)]
        target = store.getMailbox("Drafts")
        os.unlink(os.path.join(inbox._path(), "cur", self.files(inbox)[1]))
        self.assertRaises(StoreError, inbox.moveTo, uids, target)
        self.assertEqual(target.uids(), [])
        self.assertEqual(len(self.files(inbox)), 2)
        self.assertEqual(inbox.uids(), uids)


class TemporaryCleaningTests(StoreTestMixin, unittest.TestCase):
    """
    Issue 16 item 9: left-overs in C{tmp/} are removed when a store opens the
    mailbox; files another live process may be writing stay, and count.
    """

    def leave(self, name, data=b"x" * 100):
        tmp = os.path.join(self.mailPath, "INBOX", "tmp")
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(data)
        return os.path.join(tmp, name)

    def test_deadProcessLeftoverRemovedAtOpen(self):
        """A file written by a process that has ended is removed when a store opens the mailbox."""
        self.makeStore().close()
        pid = deadPid()
        path = self.leave("%d.P%dQ1R00ff.%s" % (time.time(), pid, maildir._host))
        self.makeStore(self.mailPath).getMailbox("INBOX")
        self.assertFalse(os.path.exists(path))

    def test_liveProcessFileStays(self):
        """A file named for a live process (here: this one, another store) stays, however old its mtime."""
        store = self.makeStore()
        path = self.leave("%d.P%dQ1R00ff.%s" % (time.time(), os.getppid(), maildir._host))
        os.utime(path, (0, 0))
        other = self.makeStore(self.mailPath)
        other.getMailbox("INBOX")
        self.assertTrue(os.path.exists(path))
        self.assertEqual(store.usage(), 0, "a file being written is not counted yet")

    def test_foreignFileByAge(self):
        """A file another program left is removed once its ctime is a minute old, and not before."""
        self.makeStore().close()
        path = self.leave("1234.foreign.host")
        self.makeStore(self.mailPath).getMailbox("INBOX")
        self.assertTrue(os.path.exists(path))
        later = time.time() + 2 * maildir.TMP_GRACE
        self.patch(time, "time", lambda: later)
        self.makeStore(self.mailPath).getMailbox("INBOX")
        self.assertFalse(os.path.exists(path))

    def test_whatStaysIsCounted(self):
        """A file older than a minute that a live process still names stays and counts in the usage."""
        store = self.makeStore()
        store.getMailbox("INBOX").appendMessage(CRLF_MESSAGE)
        self.leave("%d.P%dQ1R00ff.%s" % (time.time(), os.getppid(), maildir._host), b"y" * 1000)
        later = time.time() + 2 * maildir.TMP_GRACE
        self.patch(time, "time", lambda: later)
        other = self.makeStore(self.mailPath)
        other.getMailbox("INBOX")
        self.assertEqual(other.usage(), len(CRLF_MESSAGE) + 1000)
        self.assertEqual(store.usage(), len(CRLF_MESSAGE) + 1000)


#: Another process: open the store again and again, each time opening the
#: mailboxes (which cleans their tmp/) and scanning them as if they had
#: changed, until told to stop on standard input.
SCANNER = r"""
import os, select, sys
from gateway.store import index, scan
from gateway.store.mail import MailStore

rounds = 0
sys.stdout.write("ready\n")
sys.stdout.flush()
while not select.select([sys.stdin], [], [], 0)[0]:
    store = MailStore(sys.argv[1])
    for name in ("INBOX", "Dest"):
        box = store.getMailbox(name)
        with index.transaction(store._conn):
            store._conn.execute("UPDATE mailboxes SET newmtime = 0, curmtime = 0 WHERE id = ?", (box._id,))
        scan.scanMailbox(store._conn, box._id, box._path())
    store.close()
    rounds += 1
sys.stdout.write("%d\n" % (rounds,))
"""


class TwoProcessTests(StoreTestMixin, unittest.TestCase):
    """
    Issue 14 item 0 with a real second process.
    """

    def test_everyAcknowledgedCopyPresent(self):
        """COPY and APPEND of old-dated messages while another process reopens and rescans: nothing lost."""
        store = self.makeStore()
        store.createMailbox("Dest")
        inbox, dest = store.getMailbox("INBOX"), store.getMailbox("Dest")
        uids = [inbox.appendMessage(b"Subject: %d\r\n\r\nold\r\n" % (n,), internalDate=OLD) for n in range(20)]
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        child = subprocess.Popen([sys.executable, "-c", SCANNER, self.mailPath], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=root), cwd=root)
        self.addCleanup(lambda: child.poll() is None and child.kill())
        self.assertEqual(child.stdout.readline(), b"ready\n")
        copied = appended = 0
        for _ in range(15):
            copied += len(inbox.copyTo(uids, dest))
            inbox.appendMessage(b"Subject: more\r\n\r\nold\r\n", internalDate=OLD)
            appended += 1
        out, _ = child.communicate(b"stop\n", timeout=60)
        self.assertGreater(int(out), 0)
        self.assertEqual(copied, 15 * 20)
        self.assertEqual(len(dest.uids()), copied)
        self.assertEqual(len(self.allFiles(dest)), copied)
        self.assertEqual(len(inbox.uids()), 20 + appended)
        for uid in dest.uids()[::37]:
            self.assertIn(b"old", self.readAll(dest.openMessage(uid)))
        self.assertEqual(os.listdir(os.path.join(dest._path(), "tmp")), [])


class OwnerTests(unittest.TestCase):
    """
    Who holds a tmp/ file.
    """

    def test_reusedPidDoesNotHold(self):
        """A file older than the live process whose number it carries is not that process's."""
        pid = os.getppid()
        started = maildir.processStartTime(pid)
        if started is None:
            raise unittest.SkipTest("no process start times here")
        name = "%d.P%dQ1R00ff.%s" % (started, pid, maildir._host)
        self.assertTrue(maildir.temporaryHeld(name, started + 1, time.time()))
        self.assertTrue(maildir.temporaryHeld(name, started - 10, time.time()), "a minute to spare")
        self.assertFalse(maildir.temporaryHeld(name, started - 2 * maildir.TMP_GRACE, time.time()))
        self.assertFalse(maildir.temporaryHeld("1.P%dQ1R00ff.%s" % (deadPid(), maildir._host), 0, time.time()))
        self.assertTrue(maildir.temporaryHeld("1.P1Q1R00ff.elsewhere", time.time() - 3600, time.time()))
        self.assertFalse(maildir.temporaryHeld("1.P1Q1R00ff.elsewhere", 0, time.time()))


class AccountOpenTests(StoreTestMixin, unittest.TestCase):
    """
    Opening an account's store cleans every mailbox's tmp/, opened or not.
    """

    def test_unopenedMailboxCleanedAndCounted(self):
        """A dead process's file in a mailbox nobody opens is removed, a live one's counted, at store open."""
        self.makeStore().close()
        junk = os.path.join(self.mailPath, "Junk", "tmp")
        dead = os.path.join(junk, "%d.P%dQ1R00ff.%s" % (time.time(), deadPid(), maildir._host))
        live = os.path.join(junk, "%d.P%dQ2R00ff.%s" % (time.time(), os.getppid(), maildir._host))
        for path in (dead, live):
            with open(path, "wb") as f:
                f.write(b"z" * 500)
        later = time.time() + 2 * maildir.TMP_GRACE
        self.patch(time, "time", lambda: later)
        store = self.makeStore(self.mailPath)
        self.assertFalse(os.path.exists(dead))
        self.assertTrue(os.path.exists(live))
        self.assertEqual(store.usage(), 500)


class ExpungeAsideTests(StoreTestMixin, unittest.TestCase):
    """
    An expunge through the index writer moves the file into C{tmp/} in the
    group (L{maildir.setAside}) and unlinks it after the writers' lock:
    the file never comes back unless the expunge did not commit.
    """

    timeout = 30

    def setUp(self):
        from twisted.internet import reactor
        self.store = self.makeStore(reactor=reactor)
        self.inbox = self.store.getMailbox("INBOX")
        for n in range(3):
            self.inbox.appendMessage(b"Subject: %d\r\n\r\nbody\r\n" % (n,), flags=["\\Deleted"] if n else [])
        self.tmp = os.path.join(self.inbox._path(), "tmp")

    def test_expungedFileGone(self):
        """After an expunge through the writer, the files are gone from cur/ and, once the writer moved on, from tmp/."""
        d = self.inbox.expungeLater()

        def expunged(uids):
            self.assertEqual(uids, [2, 3])
            self.assertEqual(len(self.allFiles(self.inbox)), 1)
            # The next group begins after the last one's clean-up.
            return self.inbox.setFlagsLater([1], ["\\Seen"], "+")

        def cleaned(_):
            self.assertEqual(os.listdir(self.tmp), [])
            self.assertEqual(self.inbox.uids(), [1])
        return d.addCallback(expunged).addCallback(cleaned)

    def test_rolledBack(self):
        """An expunge whose group cannot commit leaves each file where it was, under its name."""
        before = self.allFiles(self.inbox)
        d = failingGroup(self, self.store, self.inbox.expungeLater)

        def failed(_):
            self.assertEqual(self.allFiles(self.inbox), before)
            self.assertEqual(os.listdir(self.tmp), [])
            self.assertEqual(self.inbox.uids(), [1, 2, 3])
        return d.addCallback(failed)

    def test_foldersNotSynced(self):
        """
        An expunge whose group committed but whose folder could not be
        synced fails (its client is not told it is durable), but it is
        done: the messages are gone from the index and their files from
        the folders.
        """
        def failingSync(paths):
            raise OSError(5, "I/O error")
        self.patch(maildir, "fsyncDirectories", failingSync)
        d = self.assertFailure(self.inbox.expungeLater(), OSError)

        def failed(_):
            self.flushLoggedErrors(OSError)
            self.assertEqual(self.inbox.uids(), [1])
            self.assertEqual(len(self.allFiles(self.inbox)), 1)
            # The set-aside files are unlinked after the group, as usual.
            return self.inbox.setFlagsLater([1], ["\\Seen"], "+").addErrback(lambda f: f.trap(OSError))

        def cleaned(_):
            self.flushLoggedErrors(OSError)
            self.assertEqual(os.listdir(self.tmp), [])
        return d.addCallback(failed).addCallback(cleaned)

    def crashedAside(self, uid):
        """
        What a process killed inside an expunge's group leaves: the file of
        message C{uid} set aside under the dead process's name.
        """
        subdir, filename = self.store._conn.execute(
            "SELECT subdir, filename FROM messages WHERE uid = ?", (uid,)).fetchone()
        name = "%d.P%dQ1R00ff.%s%s%s" % (time.time(), deadPid(), maildir._host, maildir.ASIDE_MARK,
                                         maildir.splitName(filename)[0])
        os.rename(os.path.join(self.inbox._path(), subdir, filename), os.path.join(self.tmp, name))
        return os.path.join(self.inbox._path(), subdir, filename)

    def test_uncommittedRestoredAtOpen(self):
        """A file set aside by a process that died before its expunge committed is put back when a store opens."""
        place = self.crashedAside(2)
        self.makeStore(self.mailPath).getMailbox("INBOX")
        self.assertTrue(os.path.exists(place))
        self.assertEqual(os.listdir(self.tmp), [])

    def test_committedRemovedAtOpen(self):
        """A file set aside by a process that died after its expunge committed is removed when a store opens."""
        place = self.crashedAside(2)
        with index.transaction(self.store._conn):
            self.store._conn.execute("DELETE FROM messages WHERE uid = 2")
        self.makeStore(self.mailPath).getMailbox("INBOX")
        self.assertFalse(os.path.exists(place))
        self.assertEqual(os.listdir(self.tmp), [])

    def test_liveWriterAsideStays(self):
        """A file this (live) process set aside is left alone by another store's recovery, row or not."""
        base, subdir, filename = self.store._conn.execute(
            "SELECT base, subdir, filename FROM messages WHERE uid = 2").fetchone()
        aside = maildir.setAside(self.inbox._path(), os.path.join(subdir, filename))
        self.assertEqual(maildir.asideBase(os.path.basename(aside)), base)
        self.makeStore(self.mailPath).getMailbox("INBOX")
        self.assertTrue(os.path.exists(aside))
