# -*- test-case-name: tests.test_imap_listmatch -*-
"""
LIST and LSUB patterns (RFC 3501 6.3.8): C{*} matches anything, C{%}
anything but the hierarchy delimiter C{/}, every other character itself.

A regular expression built from a pattern backtracks: C{"%a" * 12 + "b"}
against a name of 30 C{a}s takes more than a second, and each further
C{%a} multiplies that.  L{Pattern} walks the pattern once instead, keeping
the set of positions in the name it can have reached as the bits of an
integer, so a pattern costs time linear in its length whatever its
wildcards.
"""

DELIMITER = "/"

_WILD = ("*", "%")


class Pattern:
    """
    One LIST pattern (the reference already joined to it).

    @ivar tokens: C{"*"}, C{"%"} or a run of literal characters, with runs
        of wildcards collapsed (C{"%*"}, C{"*%"} and C{"**"} are C{"*"}).
    """

    def __init__(self, pattern):
        self.pattern = pattern
        tokens = []
        for ch in pattern:
            last = tokens[-1] if tokens else None
            if ch in _WILD:
                if last in _WILD:
                    if ch == "*":
                        tokens[-1] = "*"
                    continue
                tokens.append(ch)
            elif last is None or last in _WILD:
                tokens.append(ch)
            else:
                tokens[-1] = last + ch
        self.tokens = tokens
        self._literals = sum(len(token) for token in tokens if token not in _WILD)
        self._wild = any(token in _WILD for token in tokens)

    def __repr__(self):
        return "<Pattern %r>" % (self.pattern,)

    def match(self, name):
        """
        Whether the mailbox C{name} matches.
        """
        if not self._wild:
            return name == self.pattern
        if self._literals > len(name):
            return False
        end = len(name)
        everywhere = (1 << (end + 1)) - 1
        masks = {}
        reached = 1  # bit i: the first i characters can be matched so far
        for token in self.tokens:
            if token == "*":
                lowest = reached & -reached
                reached = everywhere & ~(lowest - 1)
            elif token == "%":
                reached = _withinLevels(reached, name)
            else:
                for ch in token:
                    mask = masks.get(ch)
                    if mask is None:
                        mask = masks[ch] = _positions(name, ch)
                    reached = (reached & mask) << 1
                    if not reached:
                        return False
        return bool(reached >> end & 1)


def _positions(name, ch):
    """
    The positions of C{ch} in C{name}, as bits.
    """
    mask = 0
    i = name.find(ch)
    while i >= 0:
        mask |= 1 << i
        i = name.find(ch, i + 1)
    return mask


def _withinLevels(reached, name):
    """
    Every position reachable from one in C{reached} without passing a
    delimiter (what C{%} matches).
    """
    result = 0
    start = 0
    while start <= len(name):
        stop = name.find(DELIMITER, start)
        if stop < 0:
            stop = len(name)
        level = ((1 << (stop + 1)) - 1) & ~((1 << start) - 1)
        inside = reached & level
        if inside:
            result |= level & ~((inside & -inside) - 1)
        start = stop + 1
    return result
