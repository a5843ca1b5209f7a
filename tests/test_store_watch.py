# -*- test-case-name: tests.test_store_watch -*-
"""
Tests for L{gateway.store.watch}: the process's one inotify descriptor and
the watchers that share it.
"""

import os
import shutil
import sys
import time

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial import unittest

from gateway.store import watch
from gateway.store.watch import ChangeWatcher


class SharedINotifyTests(unittest.TestCase):
    """
    One inotify descriptor serves every watcher of the process: what
    happens to one watched folder must not end the others' watches.
    """

    def setUp(self):
        if not sys.platform.startswith("linux"):
            raise unittest.SkipTest("inotify is Linux only")
        self.root = self.mktemp()
        os.makedirs(self.root)

    def watcher(self, name):
        account = os.path.join(self.root, name)
        mailbox = os.path.join(account, "INBOX")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(mailbox, sub))
        woken = []
        changed = ChangeWatcher(reactor, account, lambda: woken.append(None))
        changed.start()
        self.addCleanup(changed.stop)
        self.assertEqual(changed.mode, "inotify")
        changed.addMailbox(mailbox)
        return changed, mailbox, woken

    def waitFor(self, woken):
        d = Deferred()

        def check():
            if woken:
                d.callback(None)
            else:
                reactor.callLater(0.01, check)

        check()
        return d.addTimeout(8, reactor)

    @inlineCallbacks
    def test_watchedFolderDeleted(self):
        """
        A watched folder removed by another program (a mailbox deleted by
        another process, a Maildir removed by hand) ends its own watch
        only: another account's watcher still hears its changes.
        """
        gone, goneMailbox, _ = self.watcher("gone")
        kept, keptMailbox, woken = self.watcher("kept")
        shutil.rmtree(goneMailbox)
        # Let the reactor read what the kernel reported of the removal.
        pause = Deferred()
        reactor.callLater(0.2, pause.callback, None)
        yield pause
        with open(os.path.join(keptMailbox, "new", "1.host"), "wb") as f:
            f.write(b"Subject: x\r\n\r\n")
        yield self.waitFor(woken)
        notifier = watch.sharedINotify(reactor)._notifier
        self.assertTrue(notifier.wanted)  # read now or after its pause
        self.assertTrue(notifier.connected)
        events, overflowed = kept.takeEvents()
        self.assertEqual(events, {os.path.join(keptMailbox, "new"): {"1.host"}})
        self.assertFalse(overflowed)
        gone.stop()  # its watches ended with the folders: nothing to undo

    @inlineCallbacks
    def test_folderMadeAgain(self):
        """
        A watched mailbox folder removed by another process (its watch
        ended by the kernel), then let go of and made again with the same
        name, is watched again: its changes are heard.
        """
        changed, mailbox, woken = self.watcher("account")
        shutil.rmtree(mailbox)
        pause = Deferred()
        reactor.callLater(0.2, pause.callback, None)
        yield pause
        changed.removeMailbox(mailbox)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(mailbox, sub))
        changed.addMailbox(mailbox)
        changed.takeEvents()
        del woken[:]
        with open(os.path.join(mailbox, "new", "2.host"), "wb") as f:
            f.write(b"Subject: y\r\n\r\n")
        yield self.waitFor(woken)
        self.assertEqual(changed.takeEvents()[0], {os.path.join(mailbox, "new"): {"2.host"}})

    def sleep(self, seconds):
        d = Deferred()
        reactor.callLater(seconds, d.callback, None)
        return d

    @inlineCallbacks
    def test_readPaced(self):
        """
        After a read the descriptor is left unread for L{watch.PACE}
        seconds: events that arrive meanwhile (here, files made in the
        reactor's next turn, as a burst of writes would) are read together
        once that time has passed, not in a wake-up of their own.
        """
        changed, mailbox, woken = self.watcher("paced")
        notifier = watch.sharedINotify(reactor)._notifier
        reads = []
        read = notifier._doRead

        def more():
            for n in range(2, 6):
                with open(os.path.join(mailbox, "new", "%d.host" % (n,)), "wb"):
                    pass

        def recorded(data):
            reads.append((time.monotonic(), data))
            if len(reads) == 1:
                reactor.callLater(0, more)
            read(data)

        notifier._doRead = recorded
        self.addCleanup(setattr, notifier, "_doRead", read)
        with open(os.path.join(mailbox, "new", "1.host"), "wb"):
            pass
        seen = set()
        while len(seen) < 5:
            yield self.waitFor(woken)
            del woken[:]
            seen.update(changed.takeEvents()[0].get(os.path.join(mailbox, "new"), ()))
        self.assertEqual(seen, {"%d.host" % (n,) for n in range(1, 6)})
        self.assertEqual(len(reads), 2)
        self.assertGreaterEqual(reads[1][0] - reads[0][0], watch.PACE)

    @inlineCallbacks
    def test_stoppedWhilePaused(self):
        """
        When the last watch ends between two paced reads, reading does not
        start again when the pause ends; a new watch starts it.
        """
        changed, mailbox, woken = self.watcher("stopped")
        notifier = watch.sharedINotify(reactor)._notifier
        with open(os.path.join(mailbox, "new", "1.host"), "wb"):
            pass
        for _ in range(2000):
            if notifier._resume is not None:
                break
            yield self.sleep(0.001)
        self.assertIsNotNone(notifier._resume)  # between two reads
        changed.stop()
        self.assertIsNone(notifier._resume)
        yield self.sleep(watch.PACE * 2)
        self.assertNotIn(notifier, reactor.getReaders())
        self.watcher("again")
        self.assertIn(notifier, reactor.getReaders())

    def test_overflowParsed(self):
        """
        The kernel's "events were lost" (watch descriptor -1) reaches the
        overflow callbacks, and events split across reads are read whole.
        """
        shared = watch.sharedINotify(reactor)
        lost = []

        def overflowed():
            lost.append(None)

        shared.onOverflow(overflowed)
        self.addCleanup(shared.noOverflow, overflowed)
        heard = []
        shared._paths[424242] = "/nowhere"
        shared._callbacks["/nowhere"] = [lambda path, name, mask: heard.append((path, name, mask))]
        self.addCleanup(shared._paths.pop, 424242)
        self.addCleanup(shared._callbacks.pop, "/nowhere")
        named = watch._EVENT.pack(424242, 0x80, 7, 16) + b"1.host".ljust(16, b"\0")
        overflow = watch._EVENT.pack(-1, 0x4000, 0, 0)
        shared._notifier._doRead(named[:20])
        self.assertEqual(heard, [])
        shared._notifier._doRead(named[20:] + overflow)
        self.assertEqual(heard, [("/nowhere", b"1.host", 0x80)])
        self.assertEqual(lost, [None])
