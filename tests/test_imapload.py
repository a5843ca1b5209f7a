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



class ScriptedServer:
    """
    A socket stand-in for L{imapload.CheckedClient}: each command line
    sent gets the next scripted answer, whose C{{tag}} is the command's
    tag and C{{ctx}} the tag of the last C{RETURN (UPDATE)} command; a
    C{NOOP} or C{UID FETCH} the script does not expect next gets a plain
    OK.
    """

    def __init__(self, script):
        self.script = list(script)
        self.pending = b"* OK ready\r\n"
        self.context = b""

    def sendall(self, data):
        line = data.split(b"\r\n", 1)[0]
        tag, _, command = line.partition(b" ")
        if b"RETURN (UPDATE)" in command:
            self.context = tag
        if self.script and command.startswith(self.script[0][0]):
            reply = self.script.pop(0)[1]
        elif command.startswith((b"NOOP", b"UID FETCH")):
            reply = b"{tag} OK done\r\n"
        else:
            raise AssertionError("unscripted command %r" % (command,))
        self.pending += reply.replace(b"{tag}", tag).replace(b"{ctx}", self.context)

    def recv(self, size):
        out, self.pending = self.pending, b""
        return out

    def close(self):
        pass


class _NoIdle:
    """An rng for L{imapload._contextEnd} that never chooses IDLE."""

    def random(self):
        return 0.9


#: SELECT, the UIDs of its three messages, a context of KEYWORD $Ctx1
#: holding UID 774, and a STORE that brings UID 804 into it.
CONTEXT_SETUP = [
    (b"SELECT INBOX", b"* FLAGS (\\Deleted \\Seen $Ctx1)\r\n"
                      b"* OK [PERMANENTFLAGS (\\Deleted \\Seen $Ctx1 \\*)] ok\r\n"
                      b"* 3 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 805] ok\r\n"
                      b"{tag} OK [READ-WRITE] SELECT completed\r\n"),
    (b"UID FETCH 1:* (UID FLAGS)", b"* 1 FETCH (UID 774 FLAGS ($Ctx1))\r\n* 2 FETCH (UID 777 FLAGS ())\r\n"
                                   b"* 3 FETCH (UID 804 FLAGS ())\r\n{tag} OK done\r\n"),
    (b"UID SEARCH RETURN (UPDATE) KEYWORD $Ctx1", b'* ESEARCH (TAG "{tag}") UID ALL 774\r\n{tag} OK done\r\n'),
    (b"STORE 3 +FLAGS ($Ctx1)", b'* 3 FETCH (UID 804 FLAGS ($Ctx1))\r\n* ESEARCH (TAG "{ctx}") UID ADDTO (0 804)\r\n'
                                b"{tag} OK done\r\n"),
]


class ContextEndTests(unittest.TestCase):
    """
    L{imapload._contextEnd} compares a context's result with a fresh
    search: the changes announced at the end of that search (after its
    answer) are not held against the server; anything else is.
    """

    def contextEnd(self, fresh, qresync=False, setup=CONTEXT_SETUP):
        """
        Run C{setup}, then L{imapload._contextEnd} with C{fresh} as the
        answer of its C{UID SEARCH KEYWORD $Ctx1}.

        @return: the texts of the client's problems and of the checker's
            violations.
        """
        if qresync:
            setup = [(b"ENABLE QRESYNC", b"* ENABLED QRESYNC\r\n{tag} OK done\r\n")] + setup
        server = ScriptedServer(setup + [(b"UID SEARCH KEYWORD $Ctx1", fresh), (b"CANCELUPDATE", b"{tag} OK done\r\n")])
        client = imapload.CheckedClient(0, imapload.SessionChecker(imapload.Registry(), "s"), sock=server)
        for line, _reply in setup:
            client.ok(line)
        tag = server.context.decode()
        self.assertEqual(client.checker.contextResult(tag), {774, 804})
        self.counter = imapload.Counter()
        imapload._contextEnd(client, _NoIdle(), self.counter, tag, "$Ctx1")
        self.assertEqual(server.script, [])
        return [text for _kind, text in client.problems], [v.text for v in client.checker.violations]

    def test_expungedDuringFreshSearch(self):
        """A UID the fresh search found, then taken out (REMOVEFROM) and expunged at its end, is no problem."""
        problems, violations = self.contextEnd(b"* SEARCH 774 804\r\n* ESEARCH (TAG \"{ctx}\") UID REMOVEFROM (0 804)\r\n"
                                               b"* 3 EXPUNGE\r\n{tag} OK done\r\n")
        self.assertEqual((problems, violations), ([], []))
        self.assertEqual(self.counter.ok.get("SEARCH fresh, changed meanwhile"), 1)

    def test_vanishedDuringFreshSearch(self):
        """As test_expungedDuringFreshSearch, with QRESYNC: the message goes as VANISHED."""
        problems, violations = self.contextEnd(b"* SEARCH 774 804\r\n* ESEARCH (TAG \"{ctx}\") UID REMOVEFROM (0 804)\r\n"
                                               b"* VANISHED 804\r\n{tag} OK done\r\n", qresync=True)
        self.assertEqual((problems, violations), ([], []))

    def test_expungedUnlearnt(self):
        """An EXPUNGE of a message whose UID the session never learnt explains a UID in the range it lay in."""
        setup = CONTEXT_SETUP[:1] + [
            (b"UID FETCH 1:* (UID FLAGS)", b"* 1 FETCH (UID 774 FLAGS ($Ctx1))\r\n* 2 FETCH (UID 777 FLAGS ())\r\n"
                                           b"{tag} OK done\r\n"),
            CONTEXT_SETUP[2],
            (b"STORE 3 +FLAGS ($Ctx1)", b'* 3 FETCH (FLAGS ($Ctx1))\r\n* ESEARCH (TAG "{ctx}") UID ADDTO (0 804)\r\n'
                                        b"{tag} OK done\r\n")]
        fresh = b'* SEARCH 774 804\r\n* ESEARCH (TAG "{ctx}") UID REMOVEFROM (0 804)\r\n* 3 EXPUNGE\r\n{tag} OK done\r\n'
        self.assertEqual(self.contextEnd(fresh, setup=setup), ([], []))
        # Not one below the range: UID 777 is message 2.
        fresh = b"* SEARCH 774 777 804\r\n* ESEARCH (TAG \"{ctx}\") UID REMOVEFROM (0 804)\r\n* 3 EXPUNGE\r\n{tag} OK done\r\n"
        problems, violations = self.contextEnd(fresh, setup=setup)
        self.assertIn("found missing [777]", problems[0])

    def test_arrivedDuringFreshSearch(self):
        """A message that came in after the fresh answer (EXISTS, then ADDTO of a new UID) is no problem."""
        problems, violations = self.contextEnd(b"* SEARCH 774 804\r\n* 4 EXISTS\r\n* 0 RECENT\r\n"
                                               b"* ESEARCH (TAG \"{ctx}\") UID ADDTO (0 900)\r\n{tag} OK done\r\n")
        self.assertEqual((problems, violations), ([], []))

    def test_missedAddTo(self):
        """A UID the fresh search finds that the context never gained, with nothing announced about it, is a problem."""
        problems, violations = self.contextEnd(b"* SEARCH 774 777 804\r\n{tag} OK done\r\n")
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("no extra; a fresh UID SEARCH found missing [777]", problems[0])

    def test_extraNotArrived(self):
        """A UID the context holds that the fresh search does not find is a problem, even with an ADDTO after EXISTS, when the session knew that UID before."""
        problems, violations = self.contextEnd(b"* SEARCH 774\r\n* 4 EXISTS\r\n* 0 RECENT\r\n{tag} OK done\r\n")
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("holds extra [804]; a fresh UID SEARCH found no missing", problems[0])
        problems, violations = self.contextEnd(b"* SEARCH 774 804\r\n* 4 EXISTS\r\n* 0 RECENT\r\n"
                                               b"* ESEARCH (TAG \"{ctx}\") UID ADDTO (0 777)\r\n{tag} OK done\r\n")
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("holds extra [777]", problems[0])

    def test_expungedWithoutRemoveFrom(self):
        """A UID of the context expunged without its REMOVEFROM is still a violation of the checker."""
        problems, violations = self.contextEnd(b"* SEARCH 774 804\r\n* 3 EXPUNGE\r\n{tag} OK done\r\n")
        self.assertEqual(problems, [])
        self.assertEqual(len(violations), 1, violations)
        self.assertIn("UIDs [804] expunged, still in context", violations[0])
