# -*- test-case-name: tests.test_imap_sequence -*-
"""
Tests for L{gateway.imap.sequence}.
"""

from twisted.trial import unittest

from gateway.imap.sequence import SequenceSet, formatSequenceSet, parseSequenceSet


def _reference(text, maxValue):
    """
    The members of a sequence set by brute force, for comparison.
    """
    members = set()
    for part in text.split(","):
        ends = [maxValue if p == "*" else int(p) for p in part.split(":")]
        lo, hi = min(ends), max(ends)
        members.update(range(lo, hi + 1))
    return members


class ParseTests(unittest.TestCase):
    def test_valid(self):
        """Single numbers, ranges, reversed ranges and * parse into the ranges as written."""
        cases = [
            ("1", [(1, 1)]),
            ("1:3,7", [(1, 3), (7, 7)]),
            ("5:2", [(5, 2)]),
            ("*", [(None, None)]),
            ("3:*", [(3, None)]),
            ("*:4,4294967295", [(None, 4), (4294967295, 4294967295)]),
        ]
        for text, ranges in cases:
            self.assertEqual(parseSequenceSet(text).ranges, ranges, text)

    def test_bytes(self):
        """ASCII bytes are accepted like text."""
        self.assertEqual(parseSequenceSet(b"2:4").ranges, [(2, 4)])

    def test_invalid(self):
        """Zero, empty parts, junk, leading zeros and numbers above 2**32-1 raise ValueError."""
        for text in ["", "0", "1,,2", ",1", "1,", "1:", ":2", "a", "1:2:3", "1 2", "01", "-1",
                     "4294967296", "1:0", "**", "1.5", "\u0661"]:
            self.assertRaises(ValueError, parseSequenceSet, text)

    def test_hasStar(self):
        """hasStar tells whether * occurs."""
        self.assertTrue(parseSequenceSet("1,4:*").hasStar)
        self.assertFalse(parseSequenceSet("1,4:6").hasStar)

    def test_highest(self):
        """highest gives the largest value named with * as the maximum."""
        self.assertEqual(parseSequenceSet("3,9:2").highest(5), 9)
        self.assertEqual(parseSequenceSet("3,*").highest(5), 5)

    def test_large(self):
        """A 64 KB set parses and resolves to the same members as a brute-force reference."""
        small = ",".join("%d:%d" % (i * 3 + 1, i * 3 + 2) for i in range(50)) + ",160:*,7"
        self.assertEqual(set(parseSequenceSet(small).select(range(1, 201), 200)), _reference(small, 200))
        parts, length, i = [], 0, 1
        while length < 65536:
            part = "%d" % (i,) if i % 2 else "%d:%d" % (i, i + 1)
            parts.append(part)
            length += len(part) + 1
            i += 3
        big = ",".join(parts)
        self.assertGreaterEqual(len(big), 65536)
        sequenceSet = parseSequenceSet(big)
        maxValue = i + 10
        self.assertEqual(set(sequenceSet.select(range(1, maxValue + 1), maxValue)), _reference(big, maxValue))


class ResolveTests(unittest.TestCase):
    def test_mergeAndSort(self):
        """resolve sorts, merges overlapping and adjacent ranges, and replaces * with maxValue."""
        self.assertEqual(parseSequenceSet("9,1:3,4,7:*,2").resolve(8), [(1, 4), (7, 9)])

    def test_reversed(self):
        """A range written high:low is the same as low:high."""
        self.assertEqual(parseSequenceSet("5:2").resolve(10), [(2, 5)])

    def test_starBelow(self):
        """n:* with n above maxValue still contains maxValue (RFC 3501 UID semantics)."""
        self.assertEqual(parseSequenceSet("5:*").resolve(3), [(3, 5)])

    def test_empty(self):
        """With maxValue 0 the resolved ranges are empty."""
        self.assertEqual(parseSequenceSet("1:*").resolve(0), [])
        self.assertEqual(parseSequenceSet("1:*").select([1, 2], 0), [])
        self.assertFalse(parseSequenceSet("*").contains(0, 0))

    def test_resolveCacheFollowsMax(self):
        """Resolving again with another maxValue gives the new ranges."""
        s = parseSequenceSet("2:*")
        self.assertEqual(s.resolve(4), [(2, 4)])
        self.assertEqual(s.resolve(6), [(2, 6)])

    def test_select(self):
        """select keeps the sorted values contained in the set, in order."""
        s = parseSequenceSet("2:4,10,20:*")
        self.assertEqual(s.select([1, 2, 3, 5, 10, 11, 19, 20, 25], 22), [2, 3, 10, 20])

    def test_contains(self):
        """contains answers membership by range, including * and its edges."""
        s = parseSequenceSet("2:4,10,20:*")
        expected = {2, 3, 4, 10, 20, 21, 22}
        for n in range(0, 30):
            self.assertEqual(s.contains(n, 22), n in expected, n)

    def test_equality(self):
        """Two sets parsed from the same text are equal."""
        self.assertEqual(parseSequenceSet("1:3"), SequenceSet([(1, 3)]))
        self.assertNotEqual(parseSequenceSet("1:3"), parseSequenceSet("1:4"))

    def test_notIterable(self):
        """Iterating a set directly is refused (it could be huge)."""
        self.assertRaises(TypeError, list, parseSequenceSet("1:4294967295"))


class FormatTests(unittest.TestCase):
    def test_format(self):
        """formatSequenceSet compacts values into ranges, ignoring order and duplicates."""
        cases = [
            ([], ""),
            ([5], "5"),
            ([1, 2, 3, 7], "1:3,7"),
            ([9, 8, 7, 7, 1, 3], "1,3,7:9"),
            (iter([4, 5]), "4:5"),
        ]
        for values, text in cases:
            self.assertEqual(formatSequenceSet(values), text)

    def test_roundTrip(self):
        """Formatting what a set selects and parsing it again selects the same values."""
        values = [1, 2, 3, 8, 9, 15, 40, 41, 42, 43]
        again = parseSequenceSet(formatSequenceSet(values))
        self.assertEqual(again.select(range(1, 50), 49), values)
