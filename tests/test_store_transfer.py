# -*- test-case-name: tests.test_store_transfer -*-
"""
COPY and MOVE are all or nothing, after a crash too (issue 16 item 5): a
process running L{gateway.store.mailbox.Mailbox.copyTo} or C{moveTo} is
killed with SIGKILL at chosen and at random points, and a new store on the
same data root must find the destination either as it was or complete, the
source complete unless a MOVE committed, no files left in C{tmp/}, and no
UID given twice.
"""

import os
import random
import signal
import subprocess
import sys
import time

from twisted.trial import unittest

from gateway.store import journal, maildir, scan, transfer
from tests.test_store_mail import StoreTestMixin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The child: open the store, arrange to SIGKILL itself at the K-th call
#: of one os function (or not), say "go", copy or move all of INBOX.
CHILD = r"""
import os, signal, sys
from gateway.store.mail import MailStore

path, mode, point = sys.argv[1:4]
store = MailStore(path)
inbox, dest = store.getMailbox("INBOX"), store.getMailbox("Dest")
uids = inbox.uids()
if point != "none":
    name, count = point.split(":")
    real = getattr(os, name)
    calls = [0]

    def dying(*args, **kwargs):
        calls[0] += 1
        if calls[0] == int(count):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    setattr(os, name, dying)
sys.stdout.write("go\n")
sys.stdout.flush()
(inbox.moveTo if mode == "move" else inbox.copyTo)(uids, dest)
sys.stdout.write("done\n")
"""


class TransferCrashMixin(StoreTestMixin):
    """
    A data root with a big INBOX, a child process that copies or moves it
    and is killed, and the checks after the crash.
    """

    count = 400

    def prepare(self):
        """
        A new data root with C{count} messages in INBOX (half of them
        C{\\Seen}) and an empty Dest.
        """
        store = self.makeStore()
        store.createMailbox("Dest")
        folder = os.path.join(self.mailPath, "INBOX")
        for n in range(self.count):
            letters = "S" if n % 2 else ""
            name = "%d.M%dP1Q%dRfeed.example,S=%d:2,%s" % (1000 + n, n, n, len(self.body(n)), letters)
            with open(os.path.join(folder, "cur", name), "wb") as f:
                f.write(self.body(n))
        store._conn.execute("UPDATE mailboxes SET indexed = 0")
        inbox = store.getMailbox("INBOX")
        self.assertEqual(len(inbox.uids()), self.count)
        self.sourceUids = inbox.uids()
        store.close()

    def body(self, n):
        return b"Subject: message %d\r\n\r\nbody %d\r\n" % (n, n)

    def runChild(self, mode, point, killAfter=None):
        """
        Run the child; with C{killAfter}, SIGKILL it that many seconds after
        it says "go".

        @return: what it wrote (C{"go\\n"} only if it died).
        """
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, self.mailPath, mode, point], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=ROOT), cwd=ROOT)
        self.addCleanup(lambda: child.poll() is None and child.kill())
        first = child.stdout.readline()
        if first != b"go\n":
            self.fail("child did not start: %r" % (child.communicate(timeout=60),))
        started = time.monotonic()
        if killAfter is not None:
            try:
                child.wait(killAfter)
            except subprocess.TimeoutExpired:
                child.send_signal(signal.SIGKILL)
        rest, err = child.communicate(timeout=60)
        self.lastDuration = time.monotonic() - started
        if child.returncode not in (0, -signal.SIGKILL):
            self.fail("child failed: %r" % (err,))
        return (first + rest).decode("ascii")

    def checkAfterCrash(self, mode, output):
        """
        Open the data root again and check all-or-nothing.

        @return: C{True} if the transfer took effect.
        """
        store = self.makeStore(self.mailPath)
        inbox, dest = store.getMailbox("INBOX"), store.getMailbox("Dest")
        self.assertEqual(os.listdir(os.path.join(dest._path(), "tmp")), [])
        self.assertEqual(os.listdir(os.path.join(self.mailPath, journal.JOURNAL_FOLDER))
                         if os.path.isdir(os.path.join(self.mailPath, journal.JOURNAL_FOLDER)) else [], [])
        done = bool(dest.uids())
        if "done" in output:
            self.assertTrue(done, "an acknowledged transfer is present")
        expected = self.count if done else 0
        self.assertEqual(len(dest.uids()), expected)
        self.assertEqual(len(self.allFiles(dest)), expected)
        self.assertEqual(dest.uidNext(), expected + 1)
        sourceLeft = self.count if mode == "copy" or not done else 0
        self.assertEqual(len(inbox.uids()), sourceLeft)
        self.assertEqual(len(self.allFiles(inbox)), sourceLeft)
        # Every message whole, with its flags.
        if done:
            bodies = sorted(self.readAll(dest.openMessage(uid)) for uid in dest.uids())
            self.assertEqual(bodies, sorted(self.body(n) for n in range(self.count)))
            seen = sum(1 for info in dest.messages(dest.uids()) if "\\Seen" in info.flags)
            self.assertEqual(seen, self.count // 2)
        # A full rescan finds nothing the index does not know.
        for box in (inbox, dest):
            store._conn.execute("UPDATE mailboxes SET newmtime = 0, curmtime = 0 WHERE id = ?", (box._id,))
            scan.scanMailbox(store._conn, box._id, box._path())
        self.assertEqual(len(dest.uids()), expected)
        self.assertEqual(len(inbox.uids()), sourceLeft)
        # No UID handed out twice: the next one is new.
        uid = dest.appendMessage(b"Subject: after\r\n\r\n")
        self.assertEqual(uid, expected + 1)
        self.assertEqual(store.usage(), sum(len(self.body(n)) for n in range(self.count))
                         * (1 + (mode == "copy" and done)) + len(b"Subject: after\r\n\r\n"))
        return done



class CrashDuringTransferTests(TransferCrashMixin, unittest.TestCase):
    """
    SIGKILL of a process in the middle of a big COPY or MOVE.
    """

    def test_copyKilledAtEachPhase(self):
        """COPY killed while staging, inside its transaction, or while renaming into place: all or nothing."""
        results = []
        for point in ("link:%d" % (self.count // 2,), "stat:%d" % (self.count + self.count // 2,),
                      "rename:%d" % (self.count // 2,)):
            self.prepare()
            output = self.runChild("copy", point)
            self.assertNotIn("done", output)
            results.append(self.checkAfterCrash("copy", output))
        # Killed before the commit: nothing; after it: everything.
        self.assertEqual(results, [False, False, True])

    def test_moveKilledAtEachPhase(self):
        """MOVE killed while staging, while unlinking sources in its transaction, or after: all or nothing."""
        results = []
        for point in ("link:%d" % (self.count // 2,), "unlink:%d" % (self.count // 2,),
                      "rename:%d" % (self.count // 2 + 1,)):
            self.prepare()
            output = self.runChild("move", point)
            self.assertNotIn("done", output)
            results.append(self.checkAfterCrash("move", output))
        self.assertEqual(results, [False, False, True])

    def test_killedAtRandom(self):
        """COPY and MOVE killed at random moments of their run: each time all or nothing, nothing left."""
        rng = random.Random(os.environ.get("GATEWAY_CRASH_SEED") or None)
        durations = {}
        for mode in ("copy", "move"):
            self.prepare()
            self.assertIn("done", self.runChild(mode, "none"))
            durations[mode] = self.lastDuration
            self.assertTrue(self.checkAfterCrash(mode, "done"))
        for round in range(3):
            mode = ("copy", "move")[round % 2]
            self.prepare()
            output = self.runChild(mode, "none", killAfter=rng.uniform(0, durations[mode]))
            self.checkAfterCrash(mode, output)

    def test_stagedNamesAreOurs(self):
        """A staged file's name is the message's base, which names the process (for liveness checks)."""
        base = maildir.newBase(10, 12)
        self.assertEqual(maildir.temporaryOwner(base), (os.getpid(), maildir._host))


class OpenDuringCrashTests(TransferCrashMixin, unittest.TestCase):
    """
    A store that was already open when the other process died: its scans
    and its first opening of the mailboxes meet the half-done MOVE first.
    """

    def test_moveKilledInTransactionThenScanned(self):
        """A MOVE killed while unlinking sources: another open store's scan and open lose nothing."""
        self.prepare()
        survivor = self.makeStore(self.mailPath)
        inbox = survivor.getMailbox("INBOX")
        output = self.runChild("move", "unlink:%d" % (self.count // 2,))
        self.assertNotIn("done", output)
        survivor._conn.execute("UPDATE mailboxes SET newmtime = 0, curmtime = 0")
        scan.scanMailbox(survivor._conn, inbox._id, inbox._path())
        self.assertEqual(len(inbox.uids()), self.count)
        dest = survivor.getMailbox("Dest")
        self.assertEqual(dest.uids(), [])
        self.assertEqual(len(self.allFiles(inbox)), self.count)
        self.assertFalse(self.checkAfterCrash("move", output))


class RenamedWhileStagedTests(StoreTestMixin, unittest.TestCase):
    """
    A message file renamed by another process (a flag change) just as
    COPY or MOVE stages it: the link finds no file, though the message is
    still there (the two-process stress run's C{NO [SERVERBUG] message UID
    ... could not be copied: its file is missing}).
    """

    def transferWithRace(self, move):
        store = self.makeStore()
        store.createMailbox("Dest")
        inbox = store.getMailbox("INBOX")
        uid = inbox.appendMessage(b"Subject: x\r\n\r\nbody\r\n")
        original = transfer.stage
        missed = []

        def stage(self, *args):
            if not missed:
                # The other process renamed the file between the look and the link.
                missed.append(True)
                return None
            return original(self, *args)

        self.patch(transfer, "stage", stage)
        dest = store.getMailbox("Dest")
        pairs = inbox.moveTo([uid], dest) if move else inbox.copyTo([uid], dest)
        self.assertEqual([source for source, _ in pairs], [uid])
        self.assertEqual(len(dest.uids()), 1)
        self.assertEqual(len(self.allFiles(dest)), 1)
        self.assertEqual(os.listdir(os.path.join(dest._path(), "tmp")), [])
        return inbox

    def test_copy(self):
        """The COPY stages the file again under the index lock and succeeds."""
        inbox = self.transferWithRace(move=False)
        self.assertEqual(len(inbox.uids()), 1)

    def test_move(self):
        """The MOVE does too, and the source is gone."""
        inbox = self.transferWithRace(move=True)
        self.assertEqual(inbox.uids(), [])
        self.assertEqual(self.allFiles(inbox), [])
