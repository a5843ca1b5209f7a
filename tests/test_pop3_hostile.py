# -*- test-case-name: tests.test_pop3_hostile -*-
"""
Hostile input to the POP3 session (issue 16): internal errors are logged
with their traceback a few times per session, then only counted.
"""

from twisted.internet import defer
from twisted.logger import LogLevel
from twisted.trial import unittest

from gateway.logging import LOGGED_FAILURES
from gateway.pop3.server import POP3Server
from tests.fuzz_support import LogWatch
from tests.test_pop3 import SessionMixin


class ErrorLoggingTests(SessionMixin, unittest.TestCase):
    def setUp(self):
        SessionMixin.setUp(self)
        self.logs = LogWatch(self)

        def broken(session, argument):
            raise ZeroDivisionError("boom")
        self.patch(POP3Server, "do_NOOP", broken)

    @defer.inlineCallbacks
    def test_repeatedFailuresRateLimited(self):
        """
        Ten internal errors in one session are each answered -ERR
        [SYS/TEMP]; the first ones are logged with their traceback, and
        the close logs one line counting the others.
        """
        protocol = yield self.login()
        out = yield self.send(protocol, *[b"NOOP"] * 10)
        self.assertEqual(out.count(b"-ERR [SYS/TEMP]"), 10)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), LOGGED_FAILURES)
        protocol.connectionLost()
        summary = [e for e in self.logs.events if "log_failure" not in e and e.get("log_level") == LogLevel.error]
        self.assertEqual(len(summary), 1)
        self.assertEqual(summary[0]["count"], 10 - LOGGED_FAILURES)
