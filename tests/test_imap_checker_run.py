# -*- test-case-name: tests.test_imap_checker_run -*-
"""
A short mixed multi-client run over loopback checked by
L{tests.imap_checker} (select, fetch, store with keywords, append,
expunge, search, sort, thread, idle), and the checker's own rules.
"""

from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from gateway.imap.server import makeFactory
from tests import imap_checker
from tests.support import PASSWORD, makeTestContext


class CheckerRuleTests(unittest.TestCase):
    def session(self):
        session = imap_checker.Session.__new__(imap_checker.Session)
        session.name, session.violations = "t", []
        session.exists, session.uids, session.flags, session.modseqs = 0, [], set(), {}
        return session

    def test_rules(self):
        """The checker flags unannounced keywords, EXPUNGE during FETCH, shrinking EXISTS and bad numbers."""
        session = self.session()
        session.check(b"* FLAGS (\\Seen $a)", b"SELECT INBOX", False)
        session.check(b"* 2 EXISTS", b"SELECT INBOX", False)
        session.check(b"* 1 FETCH (UID 4 FLAGS ($a) MODSEQ (5))", b"FETCH 1 FLAGS", True)
        self.assertEqual(session.violations, [])
        session.check(b"* 2 FETCH (UID 6 FLAGS ($b))", b"FETCH 2 FLAGS", True)
        session.check(b"* 1 EXPUNGE", b"FETCH 1 FLAGS", True)
        session.check(b"* 0 EXISTS", b"NOOP", False)
        session.check(b"* 3 FETCH (FLAGS ())", b"NOOP", False)
        session.check(b"* 1 FETCH (UID 6 MODSEQ (1))", b"NOOP", False)
        self.assertEqual(len(session.violations), 5, session.violations)
        self.assertIn("never announced", session.violations[0])
        self.assertIn("EXPUNGE during FETCH", session.violations[1])

    def test_vanished(self):
        """VANISHED takes the UIDs out of the session's map, and is a violation during FETCH."""
        session = self.session()
        session.check(b"* 3 EXISTS", b"SELECT INBOX", False)
        for seq, uid in ((1, 5), (2, 7), (3, 9)):
            session.check(b"* %d FETCH (UID %d)" % (seq, uid), b"FETCH 1:* UID", True)
        session.check(b"* VANISHED 5:7", b"NOOP", False)
        self.assertEqual((session.exists, session.uids, session.violations), (1, [9], []))
        session.check(b"* VANISHED (EARLIER) 1:4", b"UID FETCH", False)
        session.check(b"* VANISHED 9", b"FETCH 1 FLAGS", True)
        self.assertEqual(len(session.violations), 1)
        self.assertIn("VANISHED during FETCH", session.violations[0])


class MixedLoadTests(unittest.TestCase):
    def test_noViolations(self):
        """Four clients doing a random mix for two seconds see no protocol violation."""
        context = makeTestContext(self, reactor=reactor, clock=reactor)
        factory = makeFactory(context)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.addCleanup(lambda: [s.transport.abortConnection() for s in list(factory.sessions)])

        def run():
            return imap_checker.runClients("127.0.0.1", port.getHost().port, "demo", PASSWORD,
                                           clients=4, seconds=2.0)

        def check(result):
            commands, violations = result
            self.assertGreater(commands, 20)
            self.assertEqual(violations, [])
        return deferToThread(run).addCallback(check)
