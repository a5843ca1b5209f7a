# -*- test-case-name: tests.test_imap_fuzz -*-
"""
Random commands built from the pieces of this branch's extensions (SORT,
THREAD, ESEARCH/ESORT options, SEARCHRES, PARTIAL, BINARY, PREVIEW,
QRESYNC, odd mailbox names, literals): every one gets its own tagged
answer on one line, never an internal error.
"""

import random

from twisted.trial import unittest

from tests.support import PASSWORD
from tests.test_imap_selected import SelectedTestMixin

COMMANDS = [b"SORT", b"UID SORT", b"THREAD", b"UID THREAD", b"SEARCH", b"UID SEARCH", b"FETCH", b"UID FETCH",
            b"STORE", b"SELECT", b"EXAMINE", b"LIST", b"APPEND", b"COPY", b"MOVE", b"UID EXPUNGE", b"ENABLE",
            b"UNAUTHENTICATE", b"STATUS", b"CREATE"]
PIECES = [b"(", b")", b"RETURN", b"(SAVE)", b"(PARTIAL -1:-3)", b"(PARTIAL 0:1)", b"(MIN MAX)", b"$", b"1:*", b"*",
          b"0", b"REVERSE", b"(DATE)", b"(REVERSE SUBJECT)", b"UTF-8", b"US-ASCII", b"KOI8", b"ALL", b"REFERENCES",
          b"ORDEREDSUBJECT", b"BINARY[1]", b"BINARY.SIZE[]", b"BINARY.PEEK[1.2]<0.5>", b"PREVIEW", b"(LAZY)",
          b"(CHANGEDSINCE 1 VANISHED)", b"INBOX", b"&Jjo", b'""', b"OLDER", b"YOUNGER", b"5", b"FROM", b"x@y",
          b"(QRESYNC (1 2))", b"QRESYNC", b"CONDSTORE", b"{3+}\r\nabc", b"~{3+}\r\na\x00c", b"(\\Seen)", b"+FLAGS",
          b"(NIL)", b"MODSEQ", b"UID", b"NOT", b"OR", b"(USE (\\Drafts))", b"(MESSAGES SIZE)", b"SAVEDATE",
          b"SAVEDON", b"1-Jan-2020", b"SAVEDATESUPPORTED", b"BINARY.PEEK[]", b"CATENATE", b'(URL "/INBOX/;UID=1")',
          b"(TEXT {1+}\r\nx)", b'URL "/INBOX/;UID=1/;SECTION=1"']


class FuzzTests(SelectedTestMixin, unittest.TestCase):
    def test_randomCommands(self):
        """1,500 random commands: each answered by its own tag on one line, none with an internal error."""
        self.selectWith(3, flags=b"($a) ")
        rnd = random.Random(7)
        for i in range(1500):
            tag = b"f%d" % (i,)
            command = rnd.choice(COMMANDS) + b"".join(b" " + rnd.choice(PIECES) for _ in range(rnd.randint(0, 6)))
            out = self.send(tag + b" " + command)
            last = out.rstrip(b"\r\n").split(b"\r\n")[-1]
            self.assertTrue(last.startswith(tag + b" "), (command, out[-300:]))
            self.assertNotIn(b"SERVERBUG", out, command)
            if self.session.state == "notauth":
                self.send(b'l LOGIN demo "%s"' % (PASSWORD.encode(),))
            if self.session.state != "selected":
                self.send(b"s SELECT INBOX")
