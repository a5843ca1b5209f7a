# -*- test-case-name: tests.test_imap_listmatch -*-
"""
LIST pattern matching (L{gateway.imap.listmatch}): the same answers as the
regular expression it replaces, in time linear in the pattern whatever
its wildcards (the expression backtracked: C{"%a" * 12 + "b"} against 30
C{a}s took 1.4 s of reactor time, and each more C{%a} several times that).
"""

import re

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial import unittest

from gateway.imap.listmatch import Pattern
from tests.fuzz_support import FUZZ
from tests.test_imap_protocol import IMAPTestMixin


def reference(pattern):
    """
    The regular expression LIST used (fine for short inputs).
    """
    parts = [".*" if ch == "*" else "[^/]*" if ch == "%" else re.escape(ch) for ch in pattern]
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


class PatternTests(unittest.TestCase):
    def test_examples(self):
        """
        * crosses the delimiter, % does not, other characters match
        themselves.
        """
        self.assertTrue(Pattern("*").match("a/b"))
        self.assertFalse(Pattern("%").match("a/b"))
        self.assertTrue(Pattern("%").match(""))
        self.assertTrue(Pattern("a/%").match("a/b"))
        self.assertFalse(Pattern("a/%").match("a/b/c"))
        self.assertTrue(Pattern("a/*").match("a/b/c"))
        self.assertTrue(Pattern("%/%/c").match("a/b/c"))
        self.assertTrue(Pattern("Sent").match("Sent"))
        self.assertFalse(Pattern("Sent").match("sent"))
        self.assertFalse(Pattern("a*b").match("ab/c"))
        self.assertTrue(Pattern("a%*%b").match("a/x/b"))
        self.assertTrue(Pattern("a.b[c]").match("a.b[c]"))
        self.assertFalse(Pattern("a.b").match("axb"))

    def test_adversarial(self):
        """
        Patterns that make a backtracking matcher explode are answered.
        """
        name = "a" * 60
        self.assertFalse(Pattern("%a" * 40 + "b").match(name))
        self.assertFalse(Pattern("*a" * 40 + "b").match(name))
        self.assertTrue(Pattern("%a" * 40).match(name))
        self.assertFalse(Pattern("*a" * 5000).match(name))
        self.assertTrue(Pattern("*" * 5000 + "a").match(name))

    @FUZZ
    @given(pattern=st.text("ab/*%", max_size=10), name=st.text("ab/", max_size=10))
    def test_sameAsRegex(self, pattern, name):
        """
        Random short patterns and names: the same answer as the regex.
        """
        self.assertEqual(Pattern(pattern).match(name), bool(reference(pattern).match(name)),
                         (pattern, name))


class ListTests(IMAPTestMixin, unittest.TestCase):
    def test_adversarialList(self):
        """
        LIST with a backtracking-prone pattern is answered.
        """
        self.login()
        self.assertIn(b"C1 OK", self.send(b"C1 CREATE " + b"a" * 60))
        out = self.send(b'L1 LIST "" "' + b"%a" * 40 + b'b"')
        self.assertEqual(out, b"L1 OK LIST completed\r\n")
        out = self.send(b'L2 LIST "" "' + b"%a" * 40 + b'"')
        self.assertIn(b'"' + b"a" * 60 + b'"', out)
