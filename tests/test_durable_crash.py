# -*- test-case-name: tests.test_durable_crash -*-
"""
Durable, grouped writes and a crash (issue 14 item 2): twenty clients append
and store flags at once on a server process (L{tests.imapserver}) whose
writes go through the store's index writer, grouped; after 100 acknowledged
commands it is killed with SIGKILL and started again.  Every acknowledged
APPEND is there with its UID and bytes, the one under way whole or absent;
every message has the flags of its last acknowledged STORE (or of the one
under way); the usage is what is on disk; no traceback is logged.

The STOREs use few keywords: a flag change renames the message file (its
flags are in the name) before the index commits, so a crash between the two
leaves the new name beside the old index row, and the scan at the next open
takes the flags from the name.  That is whole while every keyword has a
letter in C{dovecot-keywords} (26 at most); a keyword without one is kept
from the index, so a STORE under way at the crash can come back half
applied (its system flags, the old keywords): a known defect, not tested
here.
"""

import os
import random
import threading

from twisted.internet.task import Clock
from twisted.trial import unittest

from gateway.store.mail import MailStore
from tests.support import makeDataRoot
from tests.test_imap_crash import Append, Workload, _connect, _contents, _diskUsage, _ok, _seed, _Server

CLIENTS = 10  # of each kind
ACKNOWLEDGED = 100
ROUNDS = 3
STORED = "Flags"
#: What the STOREs choose from: few keywords, so that each has a letter in
#: the Maildir file names (see the module's docstring).
CHOICES = ["$A", "$B", "$C", "$D", "\\Flagged", "\\Seen", "\\Answered"]


class _Counted:
    """
    Counts the commands the server acknowledged, across clients; sets
    C{reached} at C{limit}.
    """

    def __init__(self, limit):
        self.lock = threading.Lock()
        self.count = 0
        self.limit = limit
        self.reached = threading.Event()

    def add(self):
        with self.lock:
            self.count += 1
            if self.count >= self.limit:
                self.reached.set()


class CountedAppend(Append):
    def __init__(self, rng, tag, counter):
        Append.__init__(self, rng, tag)
        self.counter = counter

    def step(self, imap):
        Append.step(self, imap)
        self.counter.add()


class StoreOne(Workload):
    """
    STORE FLAGS on one message of its own (UID C{uid} of L{STORED}), a new
    keyword each time.
    """

    def __init__(self, rng, tag, uid, counter, flags=frozenset()):
        """
        @param flags: the flags the message has to begin with.
        """
        Workload.__init__(self, rng, tag)
        self.uid = uid
        self.counter = counter
        self.acked = flags
        self.count = 0
        self.done = 0
        self.selected = False

    def step(self, imap):
        if not self.selected:
            _ok(imap.select(STORED))
            self.selected = True
        self.count += 1
        while True:
            flags = self.rng.sample(CHOICES, self.rng.randrange(1, len(CHOICES)))
            if frozenset(flags) != self.acked:
                break
        self.pending = frozenset(flags)
        _ok(imap.uid("STORE", str(self.uid), "FLAGS.SILENT", "(%s)" % (" ".join(flags),)))
        self.acked, self.pending = self.pending, None
        self.done += 1
        self.counter.add()

    def check(self, test, contents):
        """
        @return: the flags the message has.
        """
        test.assertIn(self.uid, contents)
        flags = frozenset(f for f in contents[self.uid][1] if f != "\\Recent")
        allowed = {self.acked} | ({self.pending} if self.pending is not None else set())
        test.assertIn(flags, allowed, "UID %d has flags %s of no acknowledged STORE (%s)" % (self.uid, sorted(flags), allowed))
        return flags


def seededDataRoot(test, rng):
    """
    A new data root whose demo account has L{CLIENTS} messages in
    L{STORED}, one for each STORE client.

    @return: C{(dataRoot, logFile, mailPath)}.
    """
    dataRoot = os.path.abspath(test.mktemp())
    makeDataRoot(dataRoot)
    logFile = os.path.abspath(test.mktemp()) + ".log"
    mailPath = os.path.join(dataRoot, "domains", "example.test", "accounts", "demo", "mail")
    store = MailStore(mailPath, reactor=Clock(), useInotify=False)
    try:
        _seed(store, STORED, "seed", rng, count=CLIENTS)
    finally:
        store.close()
    return dataRoot, logFile, mailPath


def runUntilKilled(test, dataRoot, logFile, workloads, counter):
    """
    Start the server over C{dataRoot}, run C{workloads} against it, each in
    a thread, and SIGKILL it once C{counter} reached its limit.
    """
    server = _Server(dataRoot, logFile)
    test.addCleanup(server.kill)
    threads = [threading.Thread(target=w.run, args=(server.port,)) for w in workloads]
    for thread in threads:
        thread.start()
    test.assertTrue(counter.reached.wait(120), "only %d commands acknowledged" % (counter.count,))
    server.kill()
    for thread in threads:
        thread.join(60)
        test.assertFalse(thread.is_alive())


def checkAfterRestart(test, dataRoot, logFile, appenders, storers):
    """
    Start the server again and check every workload against what it holds.

    @return: the flags of each STORE client's message.
    """
    server = _Server(dataRoot, logFile)
    test.addCleanup(server.kill)
    imap = _connect(server.port)
    try:
        for workload in appenders:
            workload.check(test, imap)
        contents = _contents(imap, STORED)
        flags = [workload.check(test, contents) for workload in storers]
        imap.logout()
    finally:
        server.kill()
    return flags


class ConcurrentCrashTests(unittest.TestCase):
    timeout = 300

    def test_killDuringConcurrentAppendsAndStores(self):
        """After kill -9 during concurrent APPENDs and STOREs of twenty clients, every acknowledged change is there after a restart, and nothing half-written (three rounds)."""
        dataRoot, logFile, mailPath = seededDataRoot(self, random.Random(14))
        flags = [frozenset()] * CLIENTS
        for round in range(ROUNDS):
            flags = self.crashRound(dataRoot, logFile, mailPath, "r%d" % (round,), flags)

    def crashRound(self, dataRoot, logFile, mailPath, prefix, flags):
        """
        One round: clients, kill, restart, check.

        @param flags: the flags of each STORE client's message to begin with.
        @return: the flags of each STORE client's message at the end.
        """
        counter = _Counted(ACKNOWLEDGED)
        appenders = [CountedAppend(random.Random(prefix + str(n)), "%sa%d" % (prefix, n), counter)
                     for n in range(CLIENTS)]
        storers = [StoreOne(random.Random(prefix + str(100 + n)), "%ss%d" % (prefix, n), n + 1, counter, flags[n])
                   for n in range(CLIENTS)]
        runUntilKilled(self, dataRoot, logFile, appenders + storers, counter)
        self.assertGreaterEqual(counter.count, ACKNOWLEDGED)
        self.assertTrue(any(w.acked for w in appenders))
        self.assertTrue(any(w.done for w in storers))
        flags = checkAfterRestart(self, dataRoot, logFile, appenders, storers)
        store = MailStore(mailPath, reactor=Clock(), useInotify=False)
        try:
            self.assertEqual(store.usage(), _diskUsage(mailPath))
        finally:
            store.close()
        with open(logFile) as f:
            self.assertNotIn("Traceback", f.read())
        return flags
