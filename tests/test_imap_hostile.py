# -*- test-case-name: tests.test_imap_hostile -*-
"""
Hostile and unlucky input to the IMAP session (issue 16): memory before
login, SEARCH nesting, mailbox-name limits, DELETE of the selected mailbox.
"""

import gc
import imaplib
import os
import socket
import tracemalloc

from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial import unittest

from gateway.imap import protocol
from gateway.imap.protocol import ANY, COMMANDS, MAX_IN_MEMORY, PRELOGIN_LIMIT, Command
from gateway.imap.search import MAX_SEARCH_DEPTH, MAX_SEARCH_KEYS
from gateway.store.maildir import MAX_LEVELS
from tests.support import PASSWORD, LoopbackIMAPMixin, makeTestContext
from tests.test_imap_protocol import IMAPTestMixin


class PreLoginLimitTests(IMAPTestMixin, unittest.TestCase):
    """
    Before login nothing larger than L{PRELOGIN_LIMIT} is accepted per
    command (issue 16, item 3).
    """

    def _traced(self, f):
        """
        Run C{f()} with tracemalloc on: C{(peak growth, growth kept)} in octets.
        """
        gc.collect()
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            f()
            gc.collect()
            current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return peak - start, current - start

    def test_literalFloodBeforeLogin(self):
        """
        C{P1 LOGIN {65536+}} followed by 700 more 64 KiB literals: BYE at the
        first literal, and the session buffers none of the 44 MB, during or
        after the connection.
        """
        self.connect()
        chunk = b"x" * 65536 + b" {65536+}\r\n"

        def attack():
            self.session.dataReceived(b"P1 LOGIN {65536+}\r\n")
            for _ in range(700):
                self.session.dataReceived(chunk)
            self.disconnect()

        peak, kept = self._traced(attack)
        out = self.read()
        self.assertIn(b"* BYE", out)
        self.assertTrue(self.transport.disconnecting)
        self.assertLess(peak, 1024 * 1024)
        self.assertLess(kept, 64 * 1024)
        self.assertEqual(self.session.bufferedSize(), 0)

    def test_smallLiteralsAddingUp(self):
        """
        Literals each under the limit but together over it are refused with a
        tagged answer, skipped without being kept, and the session goes on.
        """
        self.connect()
        piece = b"y" * 4000

        def attack():
            self.session.dataReceived(b"P1 LOGIN {4000+}\r\n")
            for _ in range(300):
                self.session.dataReceived(piece + b" {4000+}\r\n")
                self.assertLess(self.session.bufferedSize(), 2 * PRELOGIN_LIMIT)
            self.session.dataReceived(piece + b"\r\n")

        peak, kept = self._traced(attack)
        out = self.read()
        self.assertEqual(out, b"P1 NO Command too long before login (limit %d octets)\r\n"
                         % (PRELOGIN_LIMIT,))
        self.assertLess(peak, 1024 * 1024)
        self.assertIn(b"N1 OK", self.send(b"N1 NOOP"))

    def test_longLineBeforeLogin(self):
        """
        A command line longer than the pre-login limit gets BAD and the
        session goes on.
        """
        self.connect()
        out = self.send(b'P1 LOGIN demo "' + b"p" * (PRELOGIN_LIMIT + 100) + b'"')
        self.assertEqual(out, b"P1 BAD Command line too long\r\n")
        self.assertIn(b"N1 OK", self.send(b"N1 NOOP"))

    def test_largestIdBeforeLogin(self):
        """
        An ID with the largest list RFC 2971 allows (30 pairs of 30-octet
        fields and 1024-octet values, as imaptest's C{id} test sends) is
        answered before login; a longer line still gets BAD.
        """
        self.connect()
        pairs = b" ".join(b'"%s" "%s"' % (b"f%029d" % (i,), b"v" * 1024) for i in range(30))
        out = self.send(b"P1 ID (" + pairs + b")")
        self.assertIn(b"* ID (", out)
        self.assertIn(b"P1 OK", out)
        out = self.send(b"P2 ID (" + pairs + b' "x" "' + b"y" * PRELOGIN_LIMIT + b'")')
        self.assertEqual(out, b"P2 BAD Command line too long\r\n")
        self.assertIn(b"N1 OK", self.send(b"N1 NOOP"))

    def test_syncLiteralBeforeLogin(self):
        """
        A synchronizing literal over the pre-login limit is refused without
        a continuation.
        """
        self.connect()
        out = self.send(b"P1 LOGIN {%d}" % (PRELOGIN_LIMIT + 1,))
        self.assertTrue(out.startswith(b"P1 BAD Literal too large"), out)
        self.assertNotIn(b"+ ", out)

    def test_smallLiteralLoginWorks(self):
        """
        A LOGIN with literals within the pre-login limit logs in.
        """
        self.connect()
        out = self.send(b"P1 LOGIN {4+}\r\ndemo {%d+}\r\n%s" % (len(PASSWORD), PASSWORD.encode()))
        self.assertIn(b"P1 OK", out)

    def test_limitsAfterLogin(self):
        """
        After login the configured limits apply again: a 20,000-octet
        line is parsed.
        """
        self.login()
        out = self.send(b"N1 NOOP " + b"x" * 20000)
        self.assertEqual(out, b"N1 BAD unexpected extra arguments\r\n")
        out = self.send(b"N2 ID ({20000+}\r\n" + b"z" * 20000 + b" NIL)")
        self.assertIn(b"N2 OK", out)

    def test_longSaslResponse(self):
        """
        An AUTHENTICATE response longer than the pre-login limit fails the
        exchange under the command's own tag, whole or in pieces.
        """
        self.connect()
        for pieces in ([b"A" * (PRELOGIN_LIMIT + 10) + b"\r\n"],
                       [b"A" * (PRELOGIN_LIMIT + 10), b"A" * 100, b"A\r\n"]):
            self.assertTrue(self.send(b"a AUTHENTICATE PLAIN").startswith(b"+"))
            for piece in pieces:
                self.session.dataReceived(piece)
            out = self.read()
            self.assertTrue(out.startswith(b"a BAD Authentication failed"), out)
            self.assertIn(b"N1 OK", self.send(b"N1 NOOP"))

    def test_inputAfterByeIgnored(self):
        """
        Input that arrives after the session said BYE is dropped, not
        buffered.
        """
        self.connect()
        self.session.dataReceived(b"P1 LOGIN {1000000+}\r\n")
        self.assertIn(b"* BYE", self.read())
        self.session.dataReceived(b"z" * 100000)
        self.assertEqual(self.session.bufferedSize(), 0)


class EndToEndTests(LoopbackIMAPMixin, unittest.TestCase):
    """
    The limits over loopback, with a raw socket and imaplib.
    """

    def setUp(self):
        self.serveIMAP(makeTestContext(self, reactor=reactor, clock=reactor, cleartextLogin=True))

    def test_literalFloodBye(self):
        """
        A client announcing a 64 KiB non-synchronizing literal before login
        reads a BYE saying why, then the end of the connection.
        """
        def client():
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
                received = b""
                while b"\r\n" not in received:
                    received += sock.recv(4096)
                sock.sendall(b"P1 LOGIN {65536+}\r\n")
                received = b""
                while True:
                    data = sock.recv(4096)
                    if not data:
                        return received
                    received += data

        def check(received):
            self.assertTrue(received.startswith(b"* BYE Literal too large"), received)
        return deferToThread(client).addCallback(check)

    def test_deepSearchImaplib(self):
        """
        imaplib: a SEARCH nested past the limit is refused with BAD, and the
        session goes on.
        """
        def client():
            imap = imaplib.IMAP4("127.0.0.1", self.port)
            imap.login("demo", PASSWORD)
            imap.select("INBOX")
            with self.assertRaises(imaplib.IMAP4.error) as caught:
                imap.search(None, "(" * 500 + "SEEN" + ")" * 500)
            self.assertIn("nested too deeply", str(caught.exception))
            self.assertEqual(imap.search(None, "NOT " * 50 + "SEEN")[0], "OK")
            self.assertEqual(imap.noop()[0], "OK")
            imap.logout()
        return deferToThread(client)


class DeleteSelectedTests(IMAPTestMixin, unittest.TestCase):
    """
    DELETE of the selected mailbox (issue 16, item 11).
    """

    def test_deleteSelectedOtherSpelling(self):
        """
        DELETE of the selected mailbox named in another spelling (C{inbox/x}
        for C{INBOX/x}) answers OK, and the session stays, in the
        authenticated state.
        """
        self.login()
        self.assertIn(b"C1 OK", self.send(b"C1 CREATE INBOX/Foo"))
        self.assertIn(b"S1 OK", self.send(b"S1 SELECT INBOX/Foo"))
        out = self.send(b"D1 DELETE inbox/Foo")
        self.assertIn(b"D1 OK", out)
        self.assertNotIn(b"BYE", out)
        self.assertFalse(self.transport.disconnected)
        self.assertIn(b"F1 BAD", self.send(b"F1 FETCH 1 FLAGS"))
        self.assertIn(b"N1 OK", self.send(b"N1 NOOP"))
        self.assertNotIn(b'"INBOX/Foo"', self.send(b'L1 LIST "" *'))

    def test_deleteSelectedWithChildren(self):
        """
        DELETE of the selected mailbox that has children (it becomes
        \\Noselect) answers OK and closes it.
        """
        self.login()
        self.assertIn(b"C1 OK", self.send(b"C1 CREATE Bar/Baz"))
        self.assertIn(b"S1 OK", self.send(b"S1 SELECT Bar"))
        out = self.send(b"D1 DELETE Bar")
        self.assertIn(b"D1 OK", out)
        self.assertNotIn(b"BYE", out)
        self.assertIn(b"F1 BAD", self.send(b"F1 FETCH 1 FLAGS"))

    def test_deleteOtherKeepsSelection(self):
        """
        DELETE of another mailbox leaves the selected one selected.
        """
        self.login()
        self.assertIn(b"C1 OK", self.send(b"C1 CREATE Other"))
        self.assertIn(b"S1 OK", self.send(b"S1 SELECT INBOX"))
        self.assertIn(b"D1 OK", self.send(b"D1 DELETE Other"))
        self.assertIn(b"F1 OK", self.send(b"F1 FETCH 1:* FLAGS"))

    def test_deleteSelectedRefused(self):
        """
        A DELETE of the selected mailbox that fails (INBOX) leaves it
        selected.
        """
        self.login()
        self.assertIn(b"S1 OK", self.send(b"S1 SELECT INBOX"))
        self.assertIn(b"D1 NO", self.send(b"D1 DELETE inbox"))
        self.assertIn(b"F1 OK", self.send(b"F1 FETCH 1:* FLAGS"))


class AuthenticatedLimitTests(IMAPTestMixin, unittest.TestCase):
    """
    After login: what one command may keep in memory.
    """

    def test_manyLiteralsAfterLogin(self):
        """
        Literals each within the line limit but together over
        MAX_IN_MEMORY are refused, skipped without being kept, and the
        session goes on.
        """
        self.login()
        piece = b"z" * 60000
        self.session.dataReceived(b"a ID ({60000+}\r\n")
        for _ in range(40):
            self.session.dataReceived(piece + b" {60000+}\r\n")
            self.assertLess(self.session.bufferedSize(), MAX_IN_MEMORY + 2 * 65536)
        self.session.dataReceived(piece + b")\r\n")
        self.assertEqual(self.read(), b"a NO Command too long\r\n")
        self.assertIn(b"N1 OK", self.send(b"N1 NOOP"))

    def test_appendNameInLargeLiteral(self):
        """
        An APPEND whose mailbox name is a literal large enough to be
        written to a file gets BAD, without a traceback.
        """
        self.login()
        out = self.send(b"a APPEND {300000+}\r\n" + b"x" * 300000 + b" {5+}\r\nhello\r\n")
        self.assertTrue(out.startswith(b"a BAD"), out[:200])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_appendMessages(self):
        """
        APPEND of messages kept in memory and written to a file both work.
        """
        self.login()
        for size in (1000, 200000, 1200000):
            message = b"Subject: big\r\n\r\n" + b"b" * size + b"\r\n"
            out = self.send(b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(message), message))
            self.assertIn(b"a OK [APPENDUID", out)


class SearchNestingTests(IMAPTestMixin, unittest.TestCase):
    """
    Deeply nested SEARCH programs (issue 16, item 6): bounded at parse time,
    and whatever is accepted runs within SQLite's limits.
    """

    def setUp(self):
        self.login()
        for i, flags in enumerate((b"(\\Seen)", b"()", b"(\\Seen \\Flagged)", b"()")):
            message = b"Subject: m%d\r\n\r\nbody\r\n" % (i,)
            out = self.send(b"A%d APPEND INBOX %s {%d+}\r\n%s\r\n" % (i, flags, len(message), message))
            self.assertIn(b"A%d OK" % (i,), out)
        self.assertIn(b"S1 OK", self.send(b"S1 SELECT INBOX"))
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def search(self, program):
        out = self.send(b"T1 SEARCH " + program.encode("ascii"))
        self.assertFalse([e for e in self.events if "log_failure" in e])
        return out

    def test_orAllChain(self):
        """
        C{OR ALL} thirty times (an SQLite parser stack overflow before)
        finds every message.
        """
        out = self.search("OR ALL " * 30 + "ALL")
        self.assertEqual(out, b"* SEARCH 1 2 3 4\r\nT1 OK SEARCH completed\r\n")

    def test_notChain(self):
        """
        C{NOT} fifty times finds the messages the key finds (an even number
        of NOTs).
        """
        out = self.search("NOT " * 50 + "SEEN")
        self.assertEqual(out, b"* SEARCH 1 3\r\nT1 OK SEARCH completed\r\n")
        out = self.search("NOT " * 51 + "SEEN")
        self.assertEqual(out, b"* SEARCH 2 4\r\nT1 OK SEARCH completed\r\n")

    def test_alternatingAtTheLimit(self):
        """
        Nesting that alternates OR, NOT and parenthesized lists up to the
        limit is answered correctly, whether the index or the session
        matches it.
        """
        depth = MAX_SEARCH_DEPTH
        shapes = {
            "OR UNSEEN NOT " * (depth // 2) + "FLAGGED": b"2 3 4",
            "NOT OR FLAGGED " * (depth // 2) + "UNSEEN": b"2 4",
            "(SEEN OR DELETED " * (depth // 2) + "FLAGGED" + ")" * (depth // 2): b"3",
            "NOT (SEEN NOT " * (depth // 4) + "FLAGGED" + ")" * (depth // 4): b"2 3 4",
            "OR OR " * (depth // 2) + "FLAGGED " * depth + "DELETED": b"3",
        }
        for program, expected in shapes.items():
            out = self.search(program)
            self.assertEqual(out, b"* SEARCH " + expected + b"\r\nT1 OK SEARCH completed\r\n",
                             program[:40])

    def test_tooDeep(self):
        """
        Nesting past the limit is refused with BAD saying why, by OR, NOT or
        parentheses (500 parentheses raised RecursionError before).
        """
        for program in ("OR ALL " * 200 + "ALL", "NOT " * 300 + "SEEN",
                        "(" * 500 + "SEEN" + ")" * 500, "(" * 5000):
            out = self.search(program)
            self.assertEqual(out, b"T1 BAD bad SEARCH: search program nested too deeply"
                             b" (limit %d levels)\r\n" % (MAX_SEARCH_DEPTH,), program[:20])
        self.assertIn(b"N1 OK", self.send(b"N1 NOOP"))

    def test_manyKeys(self):
        """
        Up to MAX_SEARCH_KEYS keys, flat or in lists, are answered (SQLite
        refused an expression of 1,000 conditions); more get BAD.
        """
        keys = " ".join(["SEEN"] * (MAX_SEARCH_KEYS - 5))
        half = " ".join(["SEEN"] * (MAX_SEARCH_KEYS // 2 - 5))
        programs = {
            keys: b"1 3",
            "(%s)" % (keys,): b"1 3",
            "NOT (%s)" % (keys,): b"2 4",
            "OR UNSEEN (%s)" % (keys,): b"1 2 3 4",
            "OR (%s) (FLAGGED %s)" % (half, half): b"1 3",
        }
        for program, expected in programs.items():
            self.assertEqual(self.search(program), b"* SEARCH " + expected + b"\r\nT1 OK SEARCH completed\r\n",
                             program[:20])
        out = self.search(" ".join(["SEEN"] * (MAX_SEARCH_KEYS + 1)))
        self.assertEqual(out, b"T1 BAD bad SEARCH: search program too long (limit %d keys)\r\n"
                         % (MAX_SEARCH_KEYS,))

    def test_pipelinedDeepSearches(self):
        """
        Two hundred pipelined deep SEARCH commands are each refused, and
        nothing is logged above info level.
        """
        program = b"T SEARCH " + b"(" * 500 + b"SEEN" + b")" * 500 + b"\r\n"
        out = self.send(program * 200)
        self.assertEqual(out.count(b"T BAD "), 200)
        self.assertEqual([e for e in self.events if e.get("log_level", LogLevel.info) > LogLevel.info], [])


class ErrorLoggingTests(IMAPTestMixin, unittest.TestCase):
    """
    Internal errors are logged with a traceback a few times per session,
    then counted (issue 16, item 6).
    """

    def setUp(self):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def failWith(self, exception):
        def handler(session, tag, args):
            raise exception

        COMMANDS["XFAIL"] = Command("XFAIL", ANY, handler)
        self.addCleanup(COMMANDS.pop, "XFAIL")

    def test_repeatedFailuresRateLimited(self):
        """
        Ten internal errors in one session: each is answered NO
        [SERVERBUG], the first three are logged with their traceback, and
        the close logs one line counting the others.
        """
        self.failWith(ZeroDivisionError("boom"))
        self.connect()
        out = self.send(b"".join(b"x%d XFAIL\r\n" % (i,) for i in range(10)))
        self.assertEqual(out.count(b"NO [SERVERBUG]"), 10)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 3)
        self.assertIn(b"N1 OK", self.send(b"N1 NOOP"))
        self.disconnect()
        summary = [e for e in self.events if "log_failure" not in e and e.get("log_level") == LogLevel.error]
        self.assertEqual(len(summary), 1)
        self.assertEqual(summary[0]["count"], 7)

    def test_failuresCountedPerSession(self):
        """
        Another session logs its own first failures.
        """
        self.failWith(ZeroDivisionError("boom"))
        self.connect()
        self.send(b"".join(b"x%d XFAIL\r\n" % (i,) for i in range(5)))
        self.disconnect()
        self.connect()
        self.send(b"y XFAIL")
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 4)

    def test_framingFailure(self):
        """
        An internal error while a command is read (before any handler runs)
        is answered NO [SERVERBUG] under its tag, and the session goes on.
        """
        def broken(data, spooled=None):
            raise ZeroDivisionError("boom")

        self.connect()
        self.patch(protocol, "splitCommand", broken)
        out = self.send(b"a NOOP\r\nb LOGIN {3+}\r\nabc {2+}\r\nde\r\n")
        self.assertEqual(out, b"a NO [SERVERBUG] Internal error\r\nb NO [SERVERBUG] Internal error\r\n")
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 2)
        self.assertFalse(self.transport.disconnecting)

    def test_recursionErrorNoTraceback(self):
        """
        A RecursionError (input nested deeper than the server can follow)
        is answered BAD, and logged as one line without traceback.
        """
        self.failWith(RecursionError("maximum recursion depth exceeded"))
        self.connect()
        out = self.send(b"x XFAIL")
        self.assertEqual(out, b"x BAD Command nested too deeply\r\n")
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual([e for e in self.events if "log_failure" in e], [])


def _removeTree(top):
    """
    Remove a folder tree of any depth without recursion.
    """
    for folder, _dirs, files in _walkUp(top):
        for name in files:
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)


def _walkUp(top):
    """
    C{(folder, dirs, files)} deepest first, without recursion.
    """
    pending, seen = [top], []
    while pending:
        folder = pending.pop()
        entries = list(os.scandir(folder))
        dirs = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
        seen.append((folder, dirs, [e.name for e in entries if not e.is_dir(follow_symlinks=False)]))
        pending.extend(dirs)
    return reversed(seen)


class MailboxNameLimitTests(IMAPTestMixin, unittest.TestCase):
    """
    Mailbox names are limited in depth and length (issue 16, item 7), and
    LIST copes with deep trees already on disk.
    """

    def setUp(self):
        self.login()
        self.mailRoot = self.session.account.mailStore.path

    def folders(self):
        found = set()
        for folder, _dirs, _files in os.walk(self.mailRoot):
            found.add(os.path.relpath(folder, self.mailRoot))
        return found

    def test_tooDeep(self):
        """
        A 980-level name gets NO [LIMIT] and creates nothing; LIST still
        works.
        """
        before = self.folders()
        out = self.send(b'C1 CREATE "' + b"/".join([b"c"] * 980) + b'"')
        self.assertTrue(out.startswith(b"C1 NO [LIMIT]"), out)
        self.assertEqual(self.folders(), before)
        self.assertIn(b"L1 OK", self.send(b'L1 LIST "" *'))

    def test_depthLimit(self):
        """
        A name of MAX_LEVELS levels is created, one more level is refused.
        """
        name = b"/".join([b"d"] * MAX_LEVELS)
        self.assertIn(b"C1 OK", self.send(b'C1 CREATE "' + name + b'"'))
        self.assertTrue(self.send(b'C2 CREATE "' + name + b'/d"').startswith(b"C2 NO [LIMIT]"))

    def test_longerThanPathMax(self):
        """
        A name longer than PATH_MAX (levels of 250 octets) gets NO [LIMIT]
        and leaves no folder behind.
        """
        before = self.folders()
        name = b"/".join([b"n" * 250] * 20)
        out = self.send(b'C1 CREATE "' + name + b'"')
        self.assertTrue(out.startswith(b"C1 NO [LIMIT]"), out)
        self.assertEqual(self.folders(), before)

    def test_lengthLimit(self):
        """
        A name whose message files would not fit in PATH_MAX is refused; a
        long one that fits is created.
        """
        self.assertIn(b"C1 OK", self.send(b'C1 CREATE "' + b"/".join([b"m" * 200] * 5) + b'"'))
        out = self.send(b'C2 CREATE "' + b"/".join([b"m" * 250] * 16) + b'"')
        self.assertTrue(out.startswith(b"C2 NO [LIMIT]"), out)

    def test_renameChildrenTooDeep(self):
        """
        RENAME that would take a child past the depth limit gets NO [LIMIT]
        and moves nothing.
        """
        self.assertIn(b"C1 OK", self.send(b"C1 CREATE a/b/c/d"))
        target = b"/".join([b"t"] * (MAX_LEVELS - 2))
        out = self.send(b'R1 RENAME a "' + target + b'"')
        self.assertTrue(out.startswith(b"R1 NO [LIMIT]"), out)
        self.assertIn(b'"a/b/c/d"', self.send(b'L1 LIST "" *'))

    def test_listDeepTreeOnDisk(self):
        """
        A 980-level folder tree put on disk by another program does not
        break LIST (RecursionError before), nor after its top is deleted.
        """
        folder = self.mailRoot
        for _ in range(980):
            folder = os.path.join(folder, "c")
            os.mkdir(folder)
        self.addCleanup(_removeTree, os.path.join(self.mailRoot, "c"))
        out = self.send(b'L1 LIST "" *')
        self.assertTrue(out.endswith(b"L1 OK LIST completed\r\n"), out[-200:])
        self.assertIn(b'"c"', out)
        self.assertNotIn(b'"' + b"/".join([b"c"] * (MAX_LEVELS + 1)) + b'"', out)
        self.send(b"D1 DELETE c")
        out = self.send(b'L2 LIST "" *')
        self.assertTrue(out.endswith(b"L2 OK LIST completed\r\n"), out[-200:])

    def test_deepLeftoverRemovedAtOpen(self):
        """
        A 980-level folder left half-deleted by a crash is removed when the
        account's store opens (shutil.rmtree raised RecursionError).
        """
        folder = top = os.path.join(self.mailRoot, ".gateway-deleting-0123")
        os.mkdir(top)
        for _ in range(980):
            folder = os.path.join(folder, "c")
            os.mkdir(folder)
        store = self.session.account.mailStore
        reopened = type(store)(store.path, reactor=self.clock, useInotify=False)
        self.addCleanup(reopened.close)
        self.assertFalse(os.path.exists(top))

    def test_deleteDeepTreeOnDisk(self):
        """
        DELETE of the deepest listed mailbox of a 980-level tree on disk
        removes the whole tree below it, and the account opens again.
        """
        folder = self.mailRoot
        for _ in range(980):
            folder = os.path.join(folder, "c")
            os.mkdir(folder)
        self.addCleanup(_removeTree, os.path.join(self.mailRoot, "c"))
        self.send(b'L1 LIST "" *')
        deepest = b"/".join([b"c"] * MAX_LEVELS)
        out = self.send(b'D1 DELETE "' + deepest + b'"')
        self.assertEqual(out, b"D1 OK DELETE completed\r\n")
        self.assertFalse(os.path.exists(os.path.join(self.mailRoot, *(["c"] * MAX_LEVELS))))
        self.assertEqual([name for name in os.listdir(self.mailRoot) if name.startswith(".gateway-deleting")], [])
        store = self.session.account.mailStore
        reopened = type(store)(store.path, reactor=self.clock, useInotify=False)
        self.addCleanup(reopened.close)
        self.assertIn("c", [info.name for info in reopened.listMailboxes()])
