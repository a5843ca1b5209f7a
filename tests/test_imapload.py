# -*- test-case-name: tests.test_imapload -*-
"""
C{python -m tests.imapload}: the stress test's mix (select, fetch, store
with keywords, append, expunge, search, sort, thread, idle, QRESYNC in half
the sessions) run by several clients over loopback against the server, every
response checked by L{tests.imapcheck}.
"""

import io
import subprocess
import sys

from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from gateway.imap.server import makeFactory
from tests import imapload
from tests.support import PASSWORD, makeTestContext


class RunnerTests(unittest.TestCase):
    def runMix(self, qresync):
        context = makeTestContext(self, reactor=reactor, clock=reactor)
        factory = makeFactory(context)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.addCleanup(lambda: [s.transport.abortConnection() for s in list(factory.sessions)])
        out = io.StringIO()

        def run():
            return imapload.main([str(port.getHost().port), "demo", PASSWORD, "4", "2"], out, qresync)

        def check(status):
            report = out.getvalue()
            self.assertEqual(status, 0, report)
            self.assertIn("0 violations, 0 wrong answers, 0 errors", report)
            self.assertGreater(int(report.split()[0]), 20, report)
        return deferToThread(run).addCallback(check)

    def test_mixedLoadClean(self):
        """Four clients running the mix for two seconds find no violation; the runner says so and exits 0."""
        return self.runMix(qresync=False)

    def test_mixedLoadQresync(self):
        """As test_mixedLoadClean, half the sessions with QRESYNC enabled (VANISHED, UID in every FETCH)."""
        return self.runMix(qresync=True)


    def test_usage(self):
        """The module runs with python -m (here: no server on the port, so it fails, naming the error)."""
        result = subprocess.run([sys.executable, "-m", "tests.imapload", "1", "demo", "x", "1", "0.1"],
                                capture_output=True, text=True, timeout=60)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("ConnectionRefusedError", result.stderr)
