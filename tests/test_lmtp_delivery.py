# -*- test-case-name: tests.test_lmtp_delivery -*-
"""
LMTP delivery: the DATA decoder, envelope headers, the per-recipient log
line, replies sent per recipient as each copy becomes durable, delivery off
the reactor thread.
"""

import errno
import glob
import os
import random
import subprocess
import sys
import threading

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest

from gateway.errors import NoSuchAccount
from gateway.lmtp import data, delivery
from gateway.lmtp.data import DotDecoder
from gateway.lmtp.delivery import deliver, findRecipient
from gateway.lmtp.server import MAX_RECIPIENTS, LMTPServer, makeFactory, spoolFolder, threadRunner
from gateway.store.mailbox import Mailbox
from tests.support import makeTestContext


def mailFiles(context, local, mailbox="INBOX"):
    root = os.path.join(context.config.dataRoot(), "domains", "example.test", "accounts", local, "mail", mailbox)
    return sorted(glob.glob(os.path.join(root, "new", "*")) + glob.glob(os.path.join(root, "cur", "*")))


def readFile(path):
    with open(path, "rb") as f:
        return f.read()


def stuff(message):
    """
    The DATA stream a client sends for C{message} (CRLF lines).
    """
    lines = message.split(b"\r\n")
    if lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines) + b".\r\n"


def decodeInChunks(stream, sizes):
    decoder = DotDecoder()
    out, rest, position = [], None, 0
    while rest is None:
        size = next(sizes)
        body, rest = decoder.feed(stream[position:position + size])
        position += size
        out.append(body)
    return b"".join(out), rest + stream[position:]


class DotDecoderTests(unittest.TestCase):
    def test_wholeStream(self):
        """A stream in one piece: dots removed at line starts only, the end found, what follows returned."""
        stream = b".hidden\r\na.b\r\n..two\r\n\r\n.\r\nQUIT\r\n"
        body, rest = DotDecoder().feed(stream)
        self.assertEqual(body, b"hidden\r\na.b\r\n.two\r\n\r\n")
        self.assertEqual(rest, b"QUIT\r\n")

    def test_emptyMessage(self):
        """A message that is only the end line is empty."""
        self.assertEqual(DotDecoder().feed(b".\r\nNOOP\r\n"), (b"", b"NOOP\r\n"))

    def test_endSplitAnywhere(self):
        """The end line and stuffed dots are found however the stream is cut into chunks."""
        rng = random.Random(5)
        message = b"".join(
            rng.choice([b".", b"..", b"x", b"\r", b"\n", b"\r\n", b"\r\n.", b"ab"]) for _ in range(3000)
        )
        message = message.replace(b"\r\n", b"\n").replace(b"\r", b"").replace(b"\n", b"\r\n") + b"\r\n"
        stream = stuff(message) + b"RSET\r\n"
        for seed in range(30):
            rng = random.Random(seed)
            sizes = (rng.randint(1, 40) for _ in iter(int, 1))
            self.assertEqual(decodeInChunks(stream, sizes), (message, b"RSET\r\n"), seed)

    def test_longLines(self):
        """Lines longer than what is kept between chunks arrive whole, and memory held stays bounded."""
        self.patch(data, "MAX_PENDING", 100)
        message = b"a" * 1000 + b"\r\n." + b"b" * 999 + b"\r\n" + b"." * 500 + b"\r\n"
        stream = stuff(message)
        for size in (1, 7, 64, 99, 100, 101, 333):
            decoder = DotDecoder()
            out, rest, position = [], None, 0
            while rest is None:
                body, rest = decoder.feed(stream[position:position + size])
                position += size
                out.append(body)
                self.assertLessEqual(len(decoder._pending), 100 + size)
            self.assertEqual(b"".join(out), message, size)

    def test_bareLineFeedsKept(self):
        """A bare LF is part of a line, not a line end: "\\n.\\r\\n" does not end the message."""
        body, rest = DotDecoder().feed(b"a\n.\r\nb\r\n.\r\n")
        self.assertEqual((body, rest), (b"a\n.\r\nb\r\n", b""))


class SessionMixin:
    """
    One LMTP session over a StringTransport.
    """

    def startSession(self, runInThread=maybeDeferred, overrides=None, reactor=None):
        self.context = makeTestContext(self, overrides=overrides, reactor=reactor)
        self.transport = StringTransport()
        self.clock = Clock()
        self.proto = LMTPServer(self.context, clock=self.clock, runInThread=runInThread)
        self.proto.makeConnection(self.transport)
        self.addCleanup(lambda: self.proto.connectionLost(None) if self.proto.transport else None)

    def send(self, *lines):
        self.transport.clear()
        for line in lines:
            self.proto.dataReceived(line + b"\r\n")
        return self.replies()

    def replies(self):
        return self.transport.value().decode("utf-8").splitlines()

    def envelope(self, *recipients, sender=b"a@example.org"):
        self.send(b"LHLO mta.example.org", b"MAIL FROM:<" + sender + b">")
        for rcpt in recipients:
            self.assertEqual(self.send(b"RCPT TO:<" + rcpt + b">")[0][:3], "250")
        self.assertEqual(self.send(b"DATA")[0][:3], "354")

    def logLines(self):
        events = []
        observer = events.append
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        return lambda: [formatEvent(e) for e in events if e.get("log_namespace") == "gateway.lmtp"]


class EnvelopeHeaderTests(SessionMixin, unittest.TestCase):
    def test_oneRecipient(self):
        """One recipient: the copy starts with Return-Path and Delivered-To, then the message byte-exact."""
        self.startSession()
        self.envelope(b"demo+Calendar@example.test")
        self.assertEqual(self.send(b"Subject: x", b"", b"body", b".")[0][:3], "250")
        [path] = mailFiles(self.context, "demo", "Calendar")
        self.assertEqual(
            readFile(path),
            b"Return-Path: <a@example.org>\r\nDelivered-To: demo+Calendar@example.test\r\n"
            b"Subject: x\r\n\r\nbody\r\n",
        )

    def test_nullSender(self):
        """A bounce (MAIL FROM:<>) gets Return-Path: <>."""
        self.startSession()
        self.envelope(b"demo@example.test", sender=b"")
        self.send(b"Subject: bounce", b"", b"x", b".")
        [path] = mailFiles(self.context, "demo")
        self.assertTrue(readFile(path).startswith(b"Return-Path: <>\r\nDelivered-To: demo@example.test\r\n"))

    def test_everyCopyItsRecipient(self):
        """By default each recipient's copy names that recipient in Delivered-To."""
        self.startSession()
        self.envelope(b"demo@example.test", b"other@example.test")
        self.assertEqual([r[:3] for r in self.send(b"Subject: x", b"", b"y", b".")], ["250", "250"])
        [demo], [other] = mailFiles(self.context, "demo"), mailFiles(self.context, "other")
        self.assertIn(b"\r\nDelivered-To: demo@example.test\r\nSubject: x", readFile(demo))
        self.assertIn(b"\r\nDelivered-To: other@example.test\r\nSubject: x", readFile(other))

    def test_singleSharesOneFile(self):
        """With delivered_to = single, copies of a many-recipient message are hard links of one file
        with Return-Path only (as Dovecot does)."""
        self.startSession(overrides={("lmtp", "delivered_to"): "single"})
        self.envelope(b"demo@example.test", b"other@example.test", b"demo+Calendar@example.test")
        self.assertEqual([r[:3] for r in self.send(b"Subject: x", b"", b"y", b".")], ["250"] * 3)
        paths = mailFiles(self.context, "demo") + mailFiles(self.context, "other")
        paths += mailFiles(self.context, "demo", "Calendar")
        self.assertEqual(len(paths), 3)
        self.assertEqual({os.stat(p).st_ino for p in paths}, {os.stat(paths[0]).st_ino})
        self.assertEqual(readFile(paths[0]), b"Return-Path: <a@example.org>\r\nSubject: x\r\n\r\ny\r\n")
        store = self.context.realm.accountFor("other@example.test").mailStore
        [info] = store.getMailbox("INBOX").messages(store.getMailbox("INBOX").uids())
        self.assertEqual(info.size, len(readFile(paths[0])))

    def test_controlCharactersRefused(self):
        """An address with a control character (it would end the added header) gets 501; nothing changes."""
        self.startSession()
        self.send(b"LHLO x")
        self.assertEqual(self.send(b"MAIL FROM:<a@b\nX-Injected: 1>")[0][:3], "501")
        self.send(b"MAIL FROM:<a@b>")
        self.assertEqual(self.send(b"RCPT TO:<demo@example.test\rX: y>")[0][:3], "501")
        self.assertEqual(self.send(b"RCPT TO:<demo@example.test>")[0][:3], "250")


class LogTests(SessionMixin, unittest.TestCase):
    def test_logLinePerRecipient(self):
        """Each recipient gets one log line with sender, Message-ID, account, mailbox, UID, size and status."""
        lines = self.logLines()
        self.startSession()
        self.context.directory.setAccount("other@example.test", quota=10, quotaSetting="10")
        self.envelope(b"Demo.User@example.test", b"other@example.test")
        replies = self.send(b"Message-ID:", b" <folded@example.org>", b"Subject: x", b"", b"y" * 40, b".")
        self.assertEqual([r[:3] for r in replies], ["250", "552"])
        [path] = mailFiles(self.context, "demo")
        size = len(readFile(path))
        messageSize = len(b"Message-ID:\r\n <folded@example.org>\r\nSubject: x\r\n\r\n" + b"y" * 40 + b"\r\n")
        delivered = [line for line in lines() if line.startswith("delivery:")]
        self.assertEqual(delivered, [
            "delivery: from=<a@example.org> message-id=<folded@example.org> to=demo@example.test"
            " orig_to=Demo.User@example.test mailbox=INBOX uid=1 size=%d status=delivered (250 2.0.0)" % (size,),
            "delivery: from=<a@example.org> message-id=<folded@example.org> to=other@example.test mailbox=-"
            " uid=- size=%d status=bounced reason=quota (552 5.2.2)" % (messageSize,),
        ])

    def test_clientValuesCannotForgeFields(self):
        """A sender or Message-ID with spaces is logged as one field, without its spaces."""
        lines = self.logLines()
        self.startSession()
        self.envelope(b"demo@example.test", sender=b"x status=delivered")
        self.send(b"Message-ID: <a b> to=root", b"", b"y", b".")
        [line] = [line for line in lines() if line.startswith("delivery:")]
        self.assertIn("from=<x?status=delivered> message-id=<a?b>?to=root to=demo@example.test ", line)


class PerRecipientTests(SessionMixin, unittest.TestCase):
    """
    Delivery runs its slow steps through a runner the test controls.
    """

    def setUp(self):
        self.steps = []
        self.startSession(runInThread=self.runLater)

    def runLater(self, f, *args):
        d = Deferred()
        self.steps.append((f, args, d))
        return d

    def runStep(self):
        f, args, d = self.steps.pop(0)
        d.callback(f(*args))

    def test_replyAsEachCopyIsStored(self):
        """Each recipient's reply goes out as soon as its copy is stored, before the next copy is written."""
        self.envelope(b"demo@example.test", b"other@example.test")
        self.assertEqual(self.send(b"Subject: x", b"", b"y", b".", b"NOOP"), [])
        self.runStep()  # spool fsync'd and measured
        self.assertEqual(self.replies(), [])
        self.runStep()  # demo's copy
        self.assertEqual([r[:14] for r in self.replies()], ["250 2.0.0 <dem"])
        self.assertEqual(len(mailFiles(self.context, "demo")), 1)
        self.assertEqual(mailFiles(self.context, "other"), [])
        self.runStep()  # other's copy; then the pipelined NOOP is answered
        self.assertEqual([r[:14] for r in self.replies()], ["250 2.0.0 <dem", "250 2.0.0 <oth", "250 2.0.0 ok"])
        self.assertEqual(self.steps, [])
        self.assertEqual(os.listdir(spoolFolder(self.context.config)), [])

    def test_connectionLostMidway(self):
        """A connection lost while a copy is written: that copy is thrown away, later recipients get
        nothing (the MTA tries them again), and the spool is removed."""
        self.envelope(b"demo@example.test", b"other@example.test", b"demo+Calendar@example.test")
        self.send(b"Subject: x", b"", b"y", b".")
        self.runStep()
        self.runStep()  # demo stored and answered; other's copy is being written
        self.proto.connectionLost(None)
        self.proto.transport = None
        self.runStep()
        self.assertEqual(self.steps, [])  # the third copy never started
        self.assertEqual(len(mailFiles(self.context, "demo")), 1)
        self.assertEqual(mailFiles(self.context, "other"), [])
        self.assertEqual(mailFiles(self.context, "demo", "Calendar"), [])
        account = os.path.join(self.context.config.dataRoot(), "domains", "example.test", "accounts", "other")
        self.assertEqual(os.listdir(os.path.join(account, "mail", "INBOX", "tmp")), [])
        self.assertEqual(os.listdir(spoolFolder(self.context.config)), [])

    def test_idleTimeoutWaitsForDelivery(self):
        """The idle timeout does not close a session whose delivery is still running."""
        self.envelope(b"demo@example.test")
        self.send(b"Subject: x", b"", b"y", b".")
        self.clock.advance(self.context.config["lmtp", "timeout"] + 1)
        self.assertFalse(self.transport.disconnecting)
        self.runStep()
        self.runStep()
        self.assertEqual(self.replies()[0][:3], "250")


class FailureTests(SessionMixin, unittest.TestCase):
    def test_diskFull(self):
        """A full disk while a copy is written answers that recipient 452 4.3.1, the others get theirs."""
        original = Mailbox.prepareMessage
        self.startSession()

        def prepare(mailbox, source, *args, **kwargs):
            if "/other/" in mailbox._store.path:
                raise OSError(errno.ENOSPC, "No space left on device")
            return original(mailbox, source, *args, **kwargs)

        self.patch(Mailbox, "prepareMessage", prepare)
        self.envelope(b"other@example.test", b"demo@example.test")
        replies = self.send(b"Subject: x", b"", b"y", b".")
        self.assertEqual([r[:9] for r in replies], ["452 4.3.1", "250 2.0.0"])
        self.assertEqual(self.send(b"NOOP")[0][:3], "250")

    def test_spoolDiskFull(self):
        """A full disk while the message arrives answers every recipient 452 4.3.1; the session goes on."""
        self.startSession()
        self.envelope(b"demo@example.test", b"other@example.test")

        def full(data):
            raise OSError(errno.ENOSPC, "No space left on device")

        self.patch(self.proto._data.spool, "write", full)
        self.assertEqual([r[:9] for r in self.send(b"Subject: x", b"", b"y", b".")], ["452 4.3.1"] * 2)
        self.assertEqual(os.listdir(spoolFolder(self.context.config)), [])
        self.assertEqual(self.send(b"NOOP")[0][:3], "250")

    def test_manyRecipientsFailingAtOnce(self):
        """A thousand recipients whose delivery fails before any thread is used all get their reply
        (no deep recursion)."""
        self.startSession()
        self.envelope(*[b"demo@example.test"] * MAX_RECIPIENTS)

        def gone(address):
            raise NoSuchAccount(address)

        self.patch(self.context.realm, "accountFor", gone)
        replies = self.send(b"Subject: x", b"", b"y", b".")
        self.assertEqual(len(replies), MAX_RECIPIENTS)
        self.assertEqual({r[:9] for r in replies}, {"451 4.3.0"})
        self.flushLoggedErrors(NoSuchAccount)

    def test_longLineInData(self):
        """A line longer than a command line may be, inside DATA, is part of the message, and the end
        line in the same segment is still seen."""
        self.startSession()
        self.envelope(b"demo@example.test")
        self.transport.clear()
        self.proto.dataReceived(b"Subject: x\r\n\r\n" + b"z" * 10000 + b"\r\n.\r\nNOOP\r\n")
        self.assertEqual([r[:3] for r in self.replies()], ["250", "250"])
        [path] = mailFiles(self.context, "demo")
        self.assertTrue(readFile(path).endswith(b"\r\n\r\n" + b"z" * 10000 + b"\r\n"))

    def test_spoolLeftoversRemoved(self):
        """When the LMTP listener starts, spool files of a process of this host that is gone, and any
        older than 36 hours, are removed; those of live processes stay."""
        self.startSession()
        folder = spoolFolder(self.context.config)
        os.makedirs(folder, exist_ok=True)
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
        names = {
            "dead": delivery._spoolPrefix(int(gone.stdout)) + "a",
            "mine": delivery._spoolPrefix() + "b",
            "other": "lmtp-otherhost-1-c",
            "old": "lmtp-otherhost-1-d",
        }
        for name in names.values():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(b"x")
        os.utime(os.path.join(folder, names["old"]), (1, 1))
        makeFactory(self.context)
        self.assertEqual(sorted(os.listdir(folder)), sorted([names["mine"], names["other"]]))


class ReactorTests(SessionMixin, unittest.TestCase):
    def test_otherSessionsServedDuringDelivery(self):
        """While a copy is written (in a thread), another session's command is answered, and the first
        recipient's reply is out before the second copy starts."""
        self.startSession(runInThread=None, reactor=reactor)
        events = []
        original = Mailbox.prepareMessage
        answered = threading.Event()
        transport = self.transport
        other = LMTPServer(self.context, clock=self.clock)
        otherTransport = StringTransport()
        other.makeConnection(otherTransport)
        self.addCleanup(other.connectionLost, None)

        def otherSession():
            otherTransport.clear()
            other.dataReceived(b"NOOP\r\n")
            events.append(("other session answered", otherTransport.value()[:3]))
            answered.set()

        def prepare(mailbox, source, *args, **kwargs):
            who = "demo" if "/demo/" in mailbox._store.path else "other"
            events.append(("copy starts", who, transport.value().count(b"250 2.0.0 <")))
            if who == "demo":
                # The other session's command goes to the reactor; this copy
                # waits until it is answered (the wait's limit is a safety
                # net: the order of events is what the test checks).
                reactor.callFromThread(otherSession)
                answered.wait(10)
            result = original(mailbox, source, *args, **kwargs)
            events.append(("copy written", who))
            return result

        self.patch(Mailbox, "prepareMessage", prepare)
        finished = Deferred()
        delivered = self.proto._delivered
        self.proto._delivered = lambda result: (delivered(result), finished.callback(None))
        self.envelope(b"demo@example.test", b"other@example.test")
        self.send(b"Subject: x", b"", b"y", b".")

        def check(_):
            self.assertEqual(events, [
                ("copy starts", "demo", 0),
                ("other session answered", b"250"),
                ("copy written", "demo"),
                ("copy starts", "other", 1),
                ("copy written", "other"),
            ])
            self.assertEqual([r[:3] for r in self.replies()], ["250", "250"])

        return finished.addCallback(check)


class DeliverTests(unittest.TestCase):
    def test_mboxEnvelopeLineDropped(self):
        """deliver() (gatewayctl deliver, Postfix's mailbox_command) drops a leading mbox "From " line."""
        context = makeTestContext(self)
        recipient = findRecipient(context.directory, "demo@example.test")
        message = b"Delivered-To: demo@example.test\nReturn-Path: <a@b>\nSubject: x\n\nFrom here\n"
        self.assertTrue(deliver(context.realm, recipient, b"From a@b  Sat Dec  5 14:00:00 2026\n" + message).ok)
        self.assertTrue(deliver(context.realm, recipient, b"From: a@b\n\nx\n").ok)
        first, second = mailFiles(context, "demo")
        contents = sorted([readFile(first), readFile(second)])
        self.assertEqual(contents, sorted([message, b"From: a@b\n\nx\n"]))


class AccountHeldTests(SessionMixin, unittest.TestCase):
    """
    A delivery holds the account it writes to: with no idle accounts kept
    (C{realm.keepIdle = 0}) nothing else does, and letting it go closes its
    store under the delivery.
    """

    def test_lmtpSession(self):
        """An LMTP delivery with keepIdle 0 stores the message and answers 250."""
        self.startSession()
        self.context.realm.keepIdle = 0
        self.envelope(b"demo@example.test", b"demo+Calendar@example.test")
        self.assertEqual([r[:3] for r in self.send(b"Subject: x", b"", b"y", b".")], ["250", "250"])
        self.assertEqual(len(mailFiles(self.context, "demo")), 1)
        self.assertEqual(len(mailFiles(self.context, "demo", "Calendar")), 1)

    def test_deliverFunction(self):
        """deliver() (gatewayctl deliver) with keepIdle 0 stores the message."""
        context = makeTestContext(self)
        context.realm.keepIdle = 0
        recipient = findRecipient(context.directory, "demo@example.test")
        self.assertTrue(deliver(context.realm, recipient, b"From: a@b\n\nx\n").ok)
        self.assertEqual(len(mailFiles(context, "demo")), 1)


class ThreadLimitTests(unittest.TestCase):
    def test_atMostLimitAtOnce(self):
        """The delivery runner keeps at most its limit of steps in the reactor's thread pool at once."""
        run = threadRunner(reactor, limit=2)
        lock = threading.Lock()
        state = {"running": 0, "most": 0}
        released = threading.Event()

        def step():
            with lock:
                state["running"] += 1
                state["most"] = max(state["most"], state["running"])
                if state["most"] == 2:
                    released.set()
            released.wait(10)  # a safety net; the count is what is checked
            with lock:
                state["running"] -= 1

        def check(_):
            self.assertEqual(state["most"], 2)

        return gatherResults([run(step) for _ in range(6)]).addCallback(check)
