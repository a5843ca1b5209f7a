# -*- test-case-name: tests.test_imapcheck -*-
"""
The pieces the parts of L{tests.imapcheck} share: L{Violation}, what a
session remembers of a command and of a mailbox, and the parsing of
numbers, sequence sets and mailbox names.
"""

import re

from tests.imapresponse import Atom, ParseError

INFINITY = float("inf")

#: Commands during which no EXPUNGE (nor VANISHED) may be sent (RFC 3501
#: 7.4.1; SORT and THREAD answer sequence numbers too, RFC 5256).
NO_EXPUNGE_DURING = frozenset(["FETCH", "STORE", "SEARCH", "SORT", "THREAD"])

#: A command that enables CONDSTORE (RFC 7162 3.1): SELECT/EXAMINE
#: (CONDSTORE), ENABLE CONDSTORE, the MODSEQ item or search key,
#: CHANGEDSINCE, UNCHANGEDSINCE, STATUS HIGHESTMODSEQ.
_CONDSTORE_ENABLING = re.compile(rb"CONDSTORE|MODSEQ|CHANGEDSINCE")

_LITERAL_AT_END = re.compile(rb"~?\{(\d{1,12})\+?\}$")


class Violation:
    """
    One protocol violation.

    @ivar kind: a short category (C{"flags-announced"}, C{"sequence"}...).
    @ivar text: what is wrong.
    @ivar context: the response (start) it was found in.
    """

    def __init__(self, kind, text, context=b""):
        self.kind = kind
        self.text = text
        self.context = context[:300]

    def __repr__(self):
        return "<Violation %s: %s | %r>" % (self.kind, self.text, self.context)



class _Command:
    def __init__(self, tag, name, args, expectBad, snapshot):
        self.tag = tag
        self.name = name
        self.args = args
        self.expectBad = expectBad
        self.snapshot = snapshot
        self.seen = set()
        self.closing = False
        self.named = None


class _Facts:
    """
    What one session knows of one mailbox, across its selections.
    """

    def __init__(self):
        self.uidValidity = None
        self.uidNext = 0
        self.highestModseq = 0
        self.maxModseq = 0
        self.modseqs = {}
        self.flags = {}
        self.expunged = set()


def _mailboxName(token):
    if isinstance(token, bytes):
        name = token.decode("utf-8", "replace")
    else:
        name = str(token)
    return "INBOX" if name.upper() == "INBOX" else name


def _number(token):
    if isinstance(token, Atom) and token.isdigit():
        return int(token)
    raise ParseError("expected a number, not %r" % (token,))


def _sequenceNumbers(text, star=None):
    """
    The ranges C{[(lo, hi)]} of a sequence set (C{*} is C{star}).

    @raise ValueError: when malformed, or C{*} is there and C{star} is not given.
    """
    out = []
    for part in str(text).split(","):
        lo, _, hi = part.partition(":")
        lo = star if lo == "*" else int(lo)
        hi = (star if hi == "*" else int(hi)) if hi else lo
        if lo is None or hi is None:
            raise ValueError("* in a set without a largest value")
        if lo > hi:
            lo, hi = hi, lo
        out.append((lo, hi))
    return out

