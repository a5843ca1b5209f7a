# -*- test-case-name: tests.test_imap_sequence -*-
"""
IMAP sequence sets (RFC 3501 C{sequence-set}, RFC 9051 section 9) parsed
and evaluated in linear time.

A L{SequenceSet} keeps the ranges as written, with C{None} standing for
C{*}; L{SequenceSet.resolve} turns them into sorted, merged C{(lo, hi)}
ranges once the largest value (the message count or the largest UID) is
known.  Nothing here ever expands a range into its members, so C{1:4294967295}
costs as much as C{1}.

Semantics the caller decides (they differ between sequence numbers and
UIDs): values above C{maxValue} are kept in the resolved ranges (C{UID 5:*}
with a largest UID of 3 resolves to C{[(3, 5)]}, which contains UID 3 as
RFC 3501 requires); a command on sequence numbers should reject a set
whose L{SequenceSet.highest} exceeds the message count.  With C{maxValue}
0 (an empty mailbox) L{SequenceSet.resolve} returns C{[]}.
"""

import bisect

#: The largest value RFC 3501 allows (C{nz-number} is a 32-bit unsigned).
MAX_NUMBER = 4294967295

_DIGITS = frozenset("0123456789")


def _number(text, whole):
    """
    One C{seq-number}: C{*} (returned as C{None}) or an C{nz-number}.

    @raise ValueError: on anything else.
    """
    if text == "*":
        return None
    if not text or text[0] == "0" or not _DIGITS.issuperset(text) or len(text) > 10:
        raise ValueError("invalid sequence number %r in sequence set %r" % (text[:20], whole[:40]))
    value = int(text)
    if value > MAX_NUMBER:
        raise ValueError("sequence number %s out of range" % (text,))
    return value


class SequenceSet:
    """
    A parsed sequence set.

    @ivar ranges: C{list} of C{(a, b)} as written; C{None} means C{*}, and
        C{a} may be larger than C{b}.
    """

    def __init__(self, ranges):
        self.ranges = list(ranges)
        self._cache = None

    def __repr__(self):
        return "<SequenceSet %s>" % (formatRanges(self.ranges),)

    def __eq__(self, other):
        if not isinstance(other, SequenceSet):
            return NotImplemented
        return self.ranges == other.ranges

    @property
    def hasStar(self):
        """
        Whether C{*} occurs in the set.
        """
        return any(a is None or b is None for a, b in self.ranges)

    def highest(self, maxValue):
        """
        The largest value the set names once C{*} is C{maxValue}
        (0 for an empty set).
        """
        best = 0
        for a, b in self.ranges:
            for v in (a, b):
                v = maxValue if v is None else v
                if v > best:
                    best = v
        return best

    def resolve(self, maxValue):
        """
        Sorted, merged, non-overlapping ranges with C{*} replaced by
        C{maxValue}.

        @param maxValue: the message count (sequence numbers) or the
            largest UID in use.
        @return: C{list} of C{(lo, hi)} with C{lo <= hi}; C{[]} when
            C{maxValue} is 0.
        """
        if self._cache is not None and self._cache[0] == maxValue:
            return self._cache[1]
        if maxValue <= 0:
            merged = []
        else:
            spans = []
            for a, b in self.ranges:
                a = maxValue if a is None else a
                b = maxValue if b is None else b
                if a > b:
                    a, b = b, a
                spans.append((a, b))
            spans.sort()
            merged = []
            for lo, hi in spans:
                if merged and lo <= merged[-1][1] + 1:
                    if hi > merged[-1][1]:
                        merged[-1] = (merged[-1][0], hi)
                else:
                    merged.append((lo, hi))
        self._cache = (maxValue, merged, [lo for lo, hi in merged])
        return merged

    def select(self, sortedValues, maxValue):
        """
        The members of C{sortedValues} (ascending) that the set contains,
        by one linear merge of both sorted sequences.

        @return: C{list}, in the order of C{sortedValues}.
        """
        ranges = self.resolve(maxValue)
        result = []
        if not ranges:
            return result
        i, count = 0, len(ranges)
        lo, hi = ranges[0]
        for value in sortedValues:
            while value > hi:
                i += 1
                if i == count:
                    return result
                lo, hi = ranges[i]
            if value >= lo:
                result.append(value)
        return result

    def contains(self, n, maxValue):
        """
        Whether C{n} is in the set (binary search over the resolved ranges).
        """
        ranges = self.resolve(maxValue)
        starts = self._cache[2]
        i = bisect.bisect_right(starts, n) - 1
        return i >= 0 and ranges[i][1] >= n

    def __iter__(self):
        raise TypeError("a SequenceSet is not iterable: use resolve() or select()")


def parseSequenceSet(text):
    """
    Parse an IMAP C{sequence-set} such as C{1:3,7,9:*} in time linear in
    its length.

    @type text: C{str} (or ASCII C{bytes})
    @rtype: L{SequenceSet}
    @raise ValueError: on C{0}, empty parts, junk, or numbers above 2**32-1.
    """
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    if not text:
        raise ValueError("empty sequence set")
    ranges = []
    for part in text.split(","):
        if not part:
            raise ValueError("empty element in sequence set %r" % (text[:40],))
        colon = part.find(":")
        if colon == -1:
            value = _number(part, text)
            ranges.append((value, value))
        else:
            ranges.append((_number(part[:colon], text), _number(part[colon + 1:], text)))
    return SequenceSet(ranges)


def formatRanges(ranges):
    """
    Format C{(a, b)} ranges (C{None} for C{*}) as sequence-set text.
    """
    parts = []
    for a, b in ranges:
        a = "*" if a is None else str(a)
        b = "*" if b is None else str(b)
        parts.append(a if a == b else "%s:%s" % (a, b))
    return ",".join(parts)


def formatSequenceSet(values):
    """
    The compact sequence-set text of an iterable of positive C{int}s:
    C{[1, 2, 3, 7]} gives C{"1:3,7"}.  Duplicates and order do not matter.

    @return: C{str} (empty for no values).
    """
    ordered = sorted(set(values))
    ranges = []
    for value in ordered:
        if ranges and value == ranges[-1][1] + 1:
            ranges[-1][1] = value
        else:
            ranges.append([value, value])
    return formatRanges(ranges)
