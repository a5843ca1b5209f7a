# -*- test-case-name: tests.test_workers_reload -*-
"""
SIGHUP with C{[server] workers = 2}: listener changes take effect (the
parent opens and closes its sockets, the workers are started again one by
one), end to end with imaplib against twistd.
"""

import imaplib
import signal
import socket

from twisted.trial import unittest

from tests.support import PASSWORD
from tests.test_workers import ACCOUNT, Server, _quietly, untagged


class ListenerReloadTests(unittest.TestCase):
    """Listeners added and removed by a reload, with workers."""

    timeout = 240

    def test_listenersChangeOnReload(self):
        """A new address listens, a removed listener closes, old ones serve on; a replaced worker's session gets BYE."""
        server = Server(self, count=2, extra="drain_seconds = 5")
        before = server.imap()
        before.login(ACCOUNT, PASSWORD)
        pop3Port = server.ports["pop3"]
        with open(server.configPath) as f:
            text = f.read()
        changed = text.replace("[pop3]\nlisten = tcp:0:interface=127.0.0.1\n", "[pop3]\nenabled = no\n").replace(
            "    ssl:0:interface=127.0.0.1\n", "    ssl:0:interface=127.0.0.1\n    tcp:0:interface=127.0.0.2\n")
        self.assertNotEqual(changed.count("127.0.0.2"), text.count("127.0.0.2"))
        self.assertIn("[pop3]\nenabled = no", changed)
        with open(server.configPath, "w") as f:
            f.write(changed)
        server.process.send_signal(signal.SIGHUP)
        match = server.waitForLog(r"imap tcp:0:interface=127\.0\.0\.2: listening on 127\.0\.0\.2:(\d+) for the workers")
        for number in (1, 2):
            server.waitForLog(r"\[worker %d gateway\.server#info\] worker %d serving" % (number, number), count=2)
        self.assertIn("reload: listeners changed", server.log())
        self.assertIn("reload: no longer listening on pop3 tcp:0:interface=127.0.0.1", server.log())
        self.assertEqual(untagged(before, b"BYE"), b"* BYE Server shutting down\r\n")
        added = imaplib.IMAP4("127.0.0.2", int(match.group(1)), timeout=30)
        self.addCleanup(_quietly, added.shutdown)
        self.assertEqual(added.login(ACCOUNT, PASSWORD)[0], "OK")
        kept = server.imap()
        self.assertEqual(kept.login(ACCOUNT, PASSWORD)[0], "OK")
        self.assertRaises(ConnectionRefusedError, socket.create_connection, ("127.0.0.1", pop3Port), 10)

    def test_unchangedListenersKeepWorkers(self):
        """A reload that changes no listener passes SIGHUP on: the workers stay the same processes."""
        server = Server(self, count=2)
        pids = [server.workerPid(1), server.workerPid(2)]
        server.process.send_signal(signal.SIGHUP)
        for number in (1, 2):
            server.waitForLog(r"\[worker %d gateway\.server#info\] reload: configuration" % (number,))
        self.assertEqual([server.workerPid(1), server.workerPid(2)], pids)
        self.assertNotIn("listeners changed", server.log())


class ReplaceTests(unittest.TestCase):
    """The parent's side of starting a worker again, without processes."""

    def test_replacedWorkerStartsAtOnce(self):
        """A worker being replaced that ends is started again at once, not counted as a restart."""
        from twisted.internet.task import Clock

        from tests.support import bareParent

        parent = bareParent(self, Clock())
        started = []

        class Worker:
            number = 1
            quickDeaths = 0
            lastPid = None
            restart = None
            stopping = True
            replacing = True

            def start(self):
                started.append(True)

        worker = Worker()
        parent.workerEnded(worker, 1)
        self.assertEqual((started, worker.replacing, worker.stopping, parent.restarts), ([True], False, False, 0))
        self.assertIsNone(worker.restart)
