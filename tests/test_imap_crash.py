# -*- test-case-name: tests.test_imap_crash -*-
"""
IMAP and a crash (issue 16): the server (a subprocess, L{tests.imapserver})
is killed with SIGKILL at a random moment of a stream of APPEND, COPY, MOVE,
EXPUNGE or STORE 1:* commands, then started again.  Every change the client
was told of (a tagged OK) is there; the one under way is there whole or not
at all (COPY and MOVE all or nothing); UIDs are never used twice; the usage
the quota counts is what is on disk.  One round of each command by default;
C{GATEWAY_FUZZ=long} runs many.
"""

import imaplib
import os
import random
import re
import ssl
import subprocess
import sys
import threading
import time

from twisted.internet.task import Clock
from twisted.trial import unittest

from gateway.store.mail import MailStore
from tests.support import PASSWORD, makeDataRoot

LONG = os.environ.get("GATEWAY_FUZZ", "").lower() == "long"
ROUNDS = 8 if LONG else 1
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDED = 30
LINE = b"0123456789" * 7 + b"abcd\r\n"


def message(subject, rng):
    """
    A message with C{Subject: subject} and a body of a random size.
    """
    return b"Subject: %s\r\n\r\n" % (subject.encode("ascii"),) + LINE * rng.randrange(1, 600)


class _Server:
    """
    The IMAP server process over C{dataRoot}; C{port} once it listens.
    """

    def __init__(self, dataRoot, logFile):
        self.process = subprocess.Popen([sys.executable, "-m", "tests.imapserver", dataRoot, logFile],
                                        stdout=subprocess.PIPE, cwd=HERE)
        self.port = int(self.process.stdout.readline())

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process.stdout.close()


def _connect(port):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    imap = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context, timeout=30)
    imap.login("demo", PASSWORD)
    return imap


def _ok(response):
    typ, data = response
    if typ != "OK":
        raise AssertionError("IMAP answered %s %r" % (typ, data))
    return data


_UID = re.compile(rb"UID (\d+)")
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_SUBJECT = re.compile(rb"Subject: ([^\r\n]*)")


def _contents(imap, name):
    """
    C{{uid: (subject, flags, body)}} of every message in mailbox C{name},
    or C{None} when there is no such mailbox.
    """
    typ, data = imap.select('"%s"' % (name,), readonly=True)
    if typ != "OK":
        return None
    found = {}
    typ, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
    _ok((typ, data))
    for item in data:
        if not isinstance(item, tuple):
            continue
        uid = int(_UID.search(item[0]).group(1))
        flags = frozenset(_FLAGS.search(item[0]).group(1).decode().split())
        subject = _SUBJECT.search(item[1]).group(1).decode()
        found[uid] = (subject, flags, item[1])
    return found


class Workload:
    """
    One kind of command, run until the server dies.  C{acked} is what the
    client was told; C{pending} the command under way when it died.
    """

    def __init__(self, rng, tag):
        self.rng = rng
        self.tag = tag
        self.pending = None

    def seed(self, store):
        """
        Put what the workload starts from in C{store} (the server is down).
        """

    def run(self, port):
        imap = None
        try:
            imap = _connect(port)
            while True:
                self.step(imap)
        except (OSError, EOFError, imaplib.IMAP4.abort, ssl.SSLError):
            return
        finally:
            if imap is not None:
                try:
                    imap.shutdown()
                except Exception:
                    pass


def _seed(store, name, tag, rng, count=SEEDED):
    store.createMailbox(name)
    mailbox = store.getMailbox(name)
    bodies = {}
    for i in range(count):
        subject = "%s-%d" % (tag, i)
        data = message(subject, rng)
        mailbox.appendMessage(data)
        bodies[subject] = data
    return bodies


class Append(Workload):
    def __init__(self, rng, tag):
        Workload.__init__(self, rng, tag)
        self.acked = {}  # subject -> (uid, bytes)
        self.count = 0

    def step(self, imap):
        subject = "%s-%d" % (self.tag, self.count)
        self.count += 1
        data = message(subject, self.rng)
        self.pending = (subject, data)
        answer = _ok(imap.append("INBOX", None, None, data))
        uid = int(re.search(rb"APPENDUID \d+ (\d+)", answer[0]).group(1))
        self.acked[subject] = (uid, data)
        self.pending = None

    def check(self, test, imap):
        inbox = _contents(imap, "INBOX")
        mine = {uid: entry for uid, entry in inbox.items() if entry[0].startswith(self.tag + "-")}
        bySubject = {}
        for uid, (subject, _flags, body) in mine.items():
            test.assertNotIn(subject, bySubject, "%s stored twice" % (subject,))
            bySubject[subject] = (uid, body)
        for subject, (uid, data) in self.acked.items():
            test.assertEqual(bySubject.get(subject), (uid, data), "acknowledged %s lost or changed" % (subject,))
        extra = set(bySubject) - set(self.acked)
        if self.pending is not None and self.pending[0] in extra:
            test.assertEqual(bySubject[self.pending[0]][1], self.pending[1], "the APPEND under way is cut")
            extra.discard(self.pending[0])
        test.assertEqual(extra, set(), "messages nobody appended")
        return {"INBOX": max([uid for uid, _ in self.acked.values()] + list(inbox), default=0)}


class Copy(Workload):
    def seed(self, store):
        self.source = "C%s" % (self.tag,)
        self.bodies = _seed(store, self.source, self.tag, self.rng)
        self.acked = []
        self.created = []
        self.count = 0

    def step(self, imap):
        name = "%s/copy%d" % (self.source, self.count)
        self.count += 1
        self.pending = name
        self.created.append(name)
        _ok(imap.create(name))
        _ok(imap.select(self.source))
        _ok(imap.uid("COPY", "1:*", name))
        self.acked.append(name)
        self.pending = None

    def check(self, test, imap):
        expected = sorted(self.bodies.items())
        test.assertEqual(sorted((s, b) for s, f, b in _contents(imap, self.source).values()), expected)
        seen = {}
        for name in self.created:
            contents = _contents(imap, name)
            if name in self.acked:
                test.assertIsNotNone(contents, name)
            if contents is None:
                continue
            got = sorted((s, b) for s, f, b in contents.values())
            if name in self.acked or got:
                test.assertEqual(got, expected, "COPY into %s not all or nothing: %d of %d"
                                 % (name, len(got), len(expected)))
            seen[name] = max(contents, default=0)
        return seen


class Move(Workload):
    def seed(self, store):
        self.names = ["MA%s" % (self.tag,), "MB%s" % (self.tag,)]
        self.bodies = _seed(store, self.names[0], self.tag, self.rng)
        store.createMailbox(self.names[1])
        self.at = 0  # where the client was told the messages are

    def step(self, imap):
        source, destination = self.names[self.at], self.names[1 - self.at]
        _ok(imap.select(source))
        self.pending = True
        _ok(imap.uid("MOVE", "1:*", destination))
        self.at = 1 - self.at
        self.pending = None

    def check(self, test, imap):
        expected = sorted(self.bodies.items())
        contents = [_contents(imap, name) for name in self.names]
        got = [sorted((s, b) for s, f, b in c.values()) for c in contents]
        places = [i for i in (0, 1) if got[i]]
        test.assertEqual(len(places), 1, "MOVE not all or nothing: %d and %d messages" % tuple(map(len, got)))
        test.assertEqual(got[places[0]], expected)
        if self.pending is None:
            test.assertEqual(places[0], self.at, "an acknowledged MOVE undone")
        self.at = places[0]
        return {name: max(c, default=0) for name, c in zip(self.names, contents, strict=True)}


class Expunge(Workload):
    def seed(self, store):
        self.name = "E%s" % (self.tag,)
        self.bodies = _seed(store, self.name, self.tag, self.rng)
        self.gone = set()
        self.pending = set()

    def step(self, imap):
        _ok(imap.select(self.name))
        uids = sorted(int(u) for u in _ok(imap.uid("SEARCH", "ALL"))[0].split())
        if not uids:
            raise EOFError()
        batch = self.rng.sample(uids, min(len(uids), self.rng.randrange(1, 4)))
        self.pending = set(batch)
        _ok(imap.uid("STORE", ",".join(map(str, batch)), "+FLAGS.SILENT", "(\\Deleted)"))
        _ok(imap.expunge())
        self.gone |= self.pending
        self.pending = set()

    def check(self, test, imap):
        contents = _contents(imap, self.name)
        for uid in self.gone:
            test.assertNotIn(uid, contents, "an acknowledged EXPUNGE undone")
        for uid in set(range(1, SEEDED + 1)) - self.gone - self.pending:
            test.assertIn(uid, contents, "a message never deleted is gone")
            test.assertNotIn("\\Deleted", contents[uid][1])
        for subject, _flags, body in contents.values():
            test.assertEqual(body, self.bodies[subject])
        self.gone |= self.pending - set(contents)
        return {self.name: SEEDED}


class Store(Workload):
    def seed(self, store):
        self.name = "S%s" % (self.tag,)
        _seed(store, self.name, self.tag, self.rng)
        self.acked = frozenset()
        self.count = 0

    def step(self, imap):
        _ok(imap.select(self.name))
        self.count += 1
        flags = ["$K%d" % (self.count,)] + self.rng.sample(["\\Flagged", "\\Seen", "\\Answered"],
                                                           self.rng.randrange(0, 3))
        self.pending = frozenset(flags)
        _ok(imap.uid("STORE", "1:*", "FLAGS.SILENT", "(%s)" % (" ".join(flags),)))
        self.acked, self.pending = self.pending, None

    def check(self, test, imap):
        contents = _contents(imap, self.name)
        test.assertEqual(len(contents), SEEDED)
        allowed = {self.acked} | ({self.pending} if self.pending is not None else set())
        for uid, (_subject, flags, _body) in contents.items():
            flags = frozenset(f for f in flags if f != "\\Recent")
            test.assertIn(flags, allowed, "UID %d has flags of no STORE" % (uid,))
        return {self.name: SEEDED}


KINDS = [Append, Copy, Move, Expunge, Store]


def _diskUsage(mailPath):
    """
    The octets of every message file (and what stays in C{tmp/}) under the
    account's mail folder.
    """
    total = 0
    for folder, _dirs, files in os.walk(mailPath):
        if os.path.basename(folder) in ("new", "cur", "tmp"):
            total += sum(os.path.getsize(os.path.join(folder, name)) for name in files)
    return total


class CrashTests(unittest.TestCase):
    timeout = 600 if LONG else 120

    def test_killDuringCommands(self):
        """After kill -9 at a random moment of APPEND, COPY, MOVE, EXPUNGE or STORE 1:* and a restart, every acknowledged change is there, the one under way whole or absent, UIDs are not used twice and the usage is what is on disk."""
        dataRoot = os.path.abspath(self.mktemp())
        makeDataRoot(dataRoot)
        logFile = os.path.join(os.path.abspath(self.mktemp()) + ".log")
        mailPath = os.path.join(dataRoot, "domains", "example.test", "accounts", "demo", "mail")
        highest = {}
        for round in range(ROUNDS):
            for number, kind in enumerate(KINDS):
                rng = random.Random(round * len(KINDS) + number)
                workload = kind(rng, "r%dk%d" % (round, number))
                store = MailStore(mailPath, reactor=Clock(), useInotify=False)
                try:
                    workload.seed(store)
                finally:
                    store.close()
                server = _Server(dataRoot, logFile)
                self.addCleanup(server.kill)
                client = threading.Thread(target=workload.run, args=(server.port,))
                client.start()
                time.sleep(rng.uniform(0.1, 0.8))
                server.kill()
                client.join(60)
                self.assertFalse(client.is_alive())
                self._check(dataRoot, logFile, mailPath, workload, highest)

    def _check(self, dataRoot, logFile, mailPath, workload, highest):
        server = _Server(dataRoot, logFile)
        self.addCleanup(server.kill)
        imap = _connect(server.port)
        try:
            seen = workload.check(self, imap)
            for name, uid in seen.items():
                highest[name] = max(highest.get(name, 0), uid)
            # UIDs are never used twice: a new message gets a UID above
            # every one the mailbox ever showed.
            for name, uid in highest.items():
                if _contents(imap, name) is None:
                    continue
                answer = _ok(imap.append('"%s"' % (name,), None, None, b"Subject: probe\r\n\r\nx\r\n"))
                probe = int(re.search(rb"APPENDUID \d+ (\d+)", answer[0]).group(1))
                self.assertGreater(probe, uid, "UID %d used again in %s" % (probe, name))
                highest[name] = probe
            imap.logout()
        finally:
            server.kill()
        store = MailStore(mailPath, reactor=Clock(), useInotify=False)
        try:
            self.assertEqual(store.usage(), _diskUsage(mailPath))
        finally:
            store.close()
        with open(logFile) as f:
            log = f.read()
        self.assertNotIn("Traceback", log)
