# -*- test-case-name: tests.test_imap_parser -*-
"""
The IMAP tokenizer (L{gateway.imap.parser.Arguments}) as the commands with
a grammar of their own (SEARCH) use it: a whole argument list at once.
"""

from twisted.trial import unittest

from gateway.imap import search
from gateway.imap.parser import MAX_DEPTH, Arguments, IMAPSyntaxError, NestingError


class ValuesTests(unittest.TestCase):
    def test_values(self):
        """
        values() reads every remaining token: atoms as str, strings as
        bytes, lists as lists.
        """
        args = Arguments(b'OR (A "b \\"c\\"") ((D)) {3}\r\nx y NIL')
        self.assertEqual(args.values(), ["OR", ["A", b'b "c"'], [["D"]], b"x y", "NIL"])
        self.assertTrue(args.atEnd())

    def test_extraSpaces(self):
        """
        Runs of spaces between and after tokens are tolerated (clients send
        them in SEARCH); other white space is not.
        """
        self.assertEqual(Arguments(b"A  (B C)  D ").values(), ["A", ["B", "C"], "D"])
        self.assertRaises(IMAPSyntaxError, Arguments(b"A\tB").values)
        self.assertRaises(IMAPSyntaxError, Arguments(b"A\r\nB").values)

    def test_empty(self):
        """
        No tokens: an empty list.
        """
        self.assertEqual(Arguments(b"").values(), [])

    def test_unbalanced(self):
        """
        Unbalanced parentheses are syntax errors.
        """
        self.assertRaises(IMAPSyntaxError, Arguments(b"(A").values)
        self.assertRaises(IMAPSyntaxError, Arguments(b"A)").values)

    def test_depth(self):
        """
        Lists nest as deep as asked, and no deeper (NestingError).
        """
        deep = b"(" * (MAX_DEPTH + 5) + b")" * (MAX_DEPTH + 5)
        self.assertRaises(NestingError, Arguments(deep).values)
        self.assertEqual(len(Arguments(deep, maxDepth=MAX_DEPTH + 5).values()), 1)
        self.assertRaises(NestingError, Arguments(b"(" * 100000).values)

    def test_searchUsesIt(self):
        """
        The SEARCH tokenizer is this one: the same tokens, 8-bit atoms read
        as UTF-8 by the search parser.
        """
        text = b'OR (A "b") ((D)) {3}\r\nx y'
        self.assertEqual(search.tokenize(text), Arguments(text).values())
        program = search.parseSearch("SUBJECT j\u00f6rg")
        self.assertEqual(program.key.needle, "j\u00f6rg")
