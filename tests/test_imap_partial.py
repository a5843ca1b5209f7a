# -*- test-case-name: tests.test_imap_partial -*-
"""
PARTIAL (RFC 9394): paged SEARCH, SORT and FETCH results.
"""

from twisted.trial import unittest

from gateway.imap.results import parsePartialRange, partialSlice
from tests.test_imap_selected import SelectedTestMixin


class RangeTests(unittest.TestCase):
    def test_ranges(self):
        """A range counts from the first result (1:5) or from the last (-1:-5); ends may come in either order."""
        items = list(range(10, 20))
        self.assertEqual(partialSlice(items, parsePartialRange("1:3")), [10, 11, 12])
        self.assertEqual(partialSlice(items, parsePartialRange("3:1")), [10, 11, 12])
        self.assertEqual(partialSlice(items, parsePartialRange("-1:-3")), [17, 18, 19])
        self.assertEqual(partialSlice(items, parsePartialRange("-3:-1")), [17, 18, 19])
        self.assertEqual(partialSlice(items, parsePartialRange("9:20")), [18, 19])
        self.assertEqual(partialSlice(items, parsePartialRange("11:20")), [])
        self.assertEqual(partialSlice(items, parsePartialRange("-10:-12")), [10])
        for bad in ("0:3", "1:-3", "-1:3", "x", "1", "1:", "-0:-1", "1:99999999999"):
            self.assertRaises(ValueError, parsePartialRange, bad)


class PartialCommandTests(SelectedTestMixin, unittest.TestCase):
    def test_search(self):
        """SEARCH RETURN (PARTIAL ...) answers the page as PARTIAL (range set), NIL when empty, with COUNT."""
        self.selectWith(8)
        self.send(b"a STORE 2 +FLAGS.SILENT (\\Deleted)")
        out = self.send(b"b UID SEARCH RETURN (PARTIAL 1:3) UNDELETED")
        self.assertIn(b'* ESEARCH (TAG "b") UID PARTIAL (1:3 1,3:4)\r\n', out)
        out = self.send(b"c SEARCH RETURN (COUNT PARTIAL -1:-2) UNDELETED")
        self.assertIn(b'* ESEARCH (TAG "c") COUNT 7 PARTIAL (-1:-2 7:8)\r\n', out)
        out = self.send(b"d SEARCH RETURN (PARTIAL 20:30) ALL")
        self.assertIn(b'* ESEARCH (TAG "d") PARTIAL (20:30 NIL)\r\n', out)
        self.assertIn(b"e BAD", self.send(b"e SEARCH RETURN (PARTIAL 0:3) ALL"))
        self.assertIn(b"f BAD", self.send(b"f SEARCH RETURN (PARTIAL) ALL"))
        self.assertIn(b"g BAD", self.send(b"g SEARCH RETURN (ALL PARTIAL 1:2) ALL"))

    def test_sort(self):
        """SORT RETURN (PARTIAL ...) pages the sorted result, in sort order."""
        self.selectWith(5)
        out = self.send(b"a SORT RETURN (PARTIAL 1:2) (REVERSE ARRIVAL) UTF-8 ALL")
        self.assertIn(b'* ESEARCH (TAG "a") PARTIAL (1:2 5,4)\r\n', out)
        out = self.send(b"b SORT RETURN (PARTIAL -1:-2) (REVERSE ARRIVAL) UTF-8 ALL")
        self.assertIn(b'* ESEARCH (TAG "b") PARTIAL (-1:-2 2,1)\r\n', out)

    def test_fetch(self):
        """UID FETCH ... (PARTIAL -1:-2) fetches the last two messages of the set."""
        self.selectWith(5)
        out = self.send(b"a UID FETCH 1:* (FLAGS) (PARTIAL -1:-2)")
        self.assertNotIn(b"* 3 FETCH", out)
        self.assertIn(b"* 4 FETCH (UID 4 FLAGS", out)
        self.assertIn(b"* 5 FETCH (UID 5 FLAGS", out)
        out = self.send(b"b UID FETCH 2:* (FLAGS) (PARTIAL 1:1)")
        self.assertEqual(out.count(b" FETCH ("), 1)
        self.assertIn(b"* 2 FETCH (UID 2 FLAGS", out)

    def test_capability(self):
        """PARTIAL is advertised."""
        self.login()
        self.assertIn(b" PARTIAL", self.send(b"a CAPABILITY").split(b"\r\n")[0])
