# -*- test-case-name: tests.test_imap_search -*-
"""
SEARCH keys: each a L{SearchKey} that matches one message (a
L{gateway.imap.searchtext.Candidate}) and may give the index a
L{gateway.store.query} term to answer it; and L{registerSearchKeys}, the
standard keys as rows of a L{gateway.imap.registry.SearchKeyRegistry}.
"""

import calendar
import datetime
import time

from gateway.imap.sequence import parseSequenceSet
from gateway.store import query

#: A term nesting SQL parentheses deeper than this is matched by the
#: session instead of the index (SQLite's parser overflows at about 30).
MAX_SQL_NESTING = 16

#: The index answers at most this many conditions of a program (L{query.size});
#: the session matches the other keys (SQLite refuses 1,000 in a chain).
MAX_SQL_TERMS = 200

_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True), "UNANSWERED": ("\\Answered", False),
    "DELETED": ("\\Deleted", True), "UNDELETED": ("\\Deleted", False),
    "DRAFT": ("\\Draft", True), "UNDRAFT": ("\\Draft", False),
    "FLAGGED": ("\\Flagged", True), "UNFLAGGED": ("\\Flagged", False),
    "SEEN": ("\\Seen", True), "UNSEEN": ("\\Seen", False),
}

_HEADER_KEYS = {"FROM": "from", "TO": "to", "CC": "cc", "BCC": "bcc", "SUBJECT": "subject"}

class SearchKey:
    """
    A search key: C{match(candidate)} tells whether a message (a
    L{gateway.imap.searchtext.Candidate}) matches; L{storeTerm} lets the index answer it.  An
    extension's keys subclass it and set C{needsHeaders}/C{needsBody}/
    C{needsSaveDate} when C{match} reads those.
    """

    needsBody = False
    needsHeaders = False
    needsSaveDate = False
    #: Whether C{match} changes only when the message does (its flags,
    #: modseq): what a context kept updated needs (RFC 5267 4.3).  Not
    #: for keys that read message numbers, C{*}, the clock, or anything
    #: else; an extension's keys say so when they can be.
    updatable = False

    def storeTerm(self):
        """
        This key as a L{gateway.store.query} term for the index to answer,
        or C{None} when it needs more than the index row (headers, body,
        sequence numbers, this session's C{\\Recent}).
        """
        return None


class _All(SearchKey):
    updatable = True

    def match(self, m):
        return True

    def storeTerm(self):
        return query.And(())


class _Flag(SearchKey):
    updatable = True

    def __init__(self, flag, present):
        self.flag, self.present = flag, present

    def match(self, m):
        return (self.flag in m.info.flags) == self.present

    def storeTerm(self):
        return _presence(query.HasFlag(self.flag), self.present)


class _Keyword(SearchKey):
    updatable = True

    def __init__(self, keyword, present):
        self.keyword, self.present = keyword.lower(), present

    def match(self, m):
        return any(f.lower() == self.keyword for f in m.info.flags) == self.present

    def storeTerm(self):
        return _presence(query.HasFlag(self.keyword), self.present)


class _Recent(SearchKey):
    updatable = True

    def __init__(self, present):
        self.present = present

    def match(self, m):
        return m.recent == self.present


class _New(SearchKey):
    updatable = True

    def match(self, m):
        return m.recent and "\\Seen" not in m.info.flags


class _Not(SearchKey):
    def __init__(self, key):
        self.key = key
        self.updatable = key.updatable
        self.needsBody = key.needsBody
        self.needsHeaders = key.needsHeaders
        self.needsSaveDate = key.needsSaveDate

    def match(self, m):
        return not self.key.match(m)

    def storeTerm(self):
        term = self.key.storeTerm()
        return None if term is None else query.Not(term)


class _Or(SearchKey):
    def __init__(self, a, b):
        self.a, self.b = a, b
        self.updatable = a.updatable and b.updatable
        self.needsBody = a.needsBody or b.needsBody
        self.needsHeaders = a.needsHeaders or b.needsHeaders
        self.needsSaveDate = a.needsSaveDate or b.needsSaveDate

    def match(self, m):
        return self.a.match(m) or self.b.match(m)

    def storeTerm(self):
        a, b = self.a.storeTerm(), self.b.storeTerm()
        return None if a is None or b is None else query.Or((a, b))


class _And(SearchKey):
    def __init__(self, keys):
        self.keys = keys
        self.updatable = all(k.updatable for k in keys)
        self.needsBody = any(k.needsBody for k in keys)
        self.needsHeaders = any(k.needsHeaders for k in keys)
        self.needsSaveDate = any(k.needsSaveDate for k in keys)

    def match(self, m):
        return all(k.match(m) for k in self.keys)

    def storeTerm(self):
        terms = [k.storeTerm() for k in self.keys]
        return None if None in terms else query.And(terms)

    def split(self):
        """
        C{(term, rest)}: the keys the index can answer as one
        L{gateway.store.query} term (or C{None}), and an L{_And} of the
        others (or C{None}).
        """
        terms, rest = [], []
        conditions = 0
        for key in self.keys:
            term = key.storeTerm()
            if term is not None:
                if query.nesting(term) > MAX_SQL_NESTING or conditions + query.size(term) > MAX_SQL_TERMS:
                    term = None
                else:
                    conditions += query.size(term)
            if term is None:
                rest.append(key)
            else:
                terms.append(term)
        return (query.And(terms) if terms else None), (_And(rest) if rest else None)


class _Size(SearchKey):
    updatable = True

    def __init__(self, size, larger):
        self.size, self.larger = size, larger

    def match(self, m):
        return m.info.size > self.size if self.larger else m.info.size < self.size

    def storeTerm(self):
        return query.LargerThan(self.size) if self.larger else query.SmallerThan(self.size)


class _ModSeq(SearchKey):
    updatable = True

    def __init__(self, modseq):
        self.modseq = modseq

    def match(self, m):
        return m.info.modseq >= self.modseq

    def storeTerm(self):
        return query.ModSeqAtLeast(self.modseq)


class _Sequence(SearchKey):
    def __init__(self, sequenceSet, uid):
        self.set, self.uid = sequenceSet, uid
        # Message numbers and * name other messages once the mailbox changes.
        self.updatable = uid and not sequenceSet.hasStar

    def match(self, m):
        if self.uid:
            return self.set.contains(m.info.uid, m.maxUid)
        return self.set.contains(m.seq, m.maxSeq)


class _UidIn(SearchKey):
    """
    C{$} (RFC 5182): the messages of the saved search result.
    """

    updatable = True

    def __init__(self, uids):
        self.uids = uids

    def match(self, m):
        return m.info.uid in self.uids


class _Within(SearchKey):
    """
    OLDER and YOUNGER (RFC 5032): the internal date before, or at or after,
    C{since} (POSIX seconds: now minus the interval).
    """

    def __init__(self, since, older):
        self.since, self.older = since, older

    def match(self, m):
        return (m.info.internalDate.timestamp() < self.since) == self.older

    def storeTerm(self):
        return query.ArrivedBefore(self.since) if self.older else query.ArrivedSince(self.since)


class _SavedDate(SearchKey):
    """
    SAVEDBEFORE, SAVEDON, SAVEDSINCE (RFC 8514): the UTC date of the save
    date, or of the internal date when that is not known.
    """

    updatable = True

    needsSaveDate = True

    def __init__(self, date, op):
        self.date, self.op = date, op

    def match(self, m):
        when = m.saveDate if m.saveDate is not None else m.info.internalDate.timestamp()
        day = datetime.datetime.fromtimestamp(when, datetime.timezone.utc).date()
        if self.op == "BEFORE":
            return day < self.date
        if self.op == "ON":
            return day == self.date
        return day >= self.date

    def storeTerm(self):
        start = calendar.timegm(self.date.timetuple())
        if self.op == "BEFORE":
            return query.SavedBefore(start)
        if self.op == "ON":
            return query.And((query.SavedSince(start), query.SavedBefore(start + 86400)))
        return query.SavedSince(start)


class _Date(SearchKey):
    updatable = True

    def __init__(self, date, op, sent):
        self.date, self.op, self.sent = date, op, sent
        self.needsHeaders = sent

    def match(self, m):
        day = m.sentDay() if self.sent else m.info.internalDate.astimezone(datetime.timezone.utc).date()
        if self.op == "BEFORE":
            return day < self.date
        if self.op == "ON":
            return day == self.date
        return day >= self.date

    def storeTerm(self):
        if self.sent:
            return None
        start = calendar.timegm(self.date.timetuple())
        if self.op == "BEFORE":
            return query.ArrivedBefore(start)
        if self.op == "ON":
            return query.And((query.ArrivedSince(start), query.ArrivedBefore(start + 86400)))
        return query.ArrivedSince(start)


def _presence(term, present):
    return term if present else query.Not(term)


class _Header(SearchKey):
    updatable = True

    needsHeaders = True

    def __init__(self, name, needle):
        self.name, self.needle = name.lower(), needle.casefold()

    def match(self, m):
        values = m.headerValues(self.name)
        if not self.needle:
            return bool(values)
        return any(self.needle in v for v in values)


class _Address(_Header):
    """
    FROM, TO, CC, BCC: the raw (decoded) text, or any address of the field
    read as RFC 5322 does (comments and folding white space removed), as
    C{display name <local@domain>} or C{local@domain}.
    """

    def match(self, m):
        if _Header.match(self, m):
            return True
        return bool(self.needle) and any(self.needle in text for text in m.addressTexts(self.name))


class _Body(SearchKey):
    updatable = True

    needsBody = True
    needsHeaders = True

    def __init__(self, needle, withHeaders):
        self.needle, self.withHeaders = needle.casefold(), withHeaders

    def match(self, m):
        if self.withHeaders and (self.needle in m.headerText() or self.needle in m.partHeaderText()):
            return True
        return self.needle in m.bodyText()


def _modSeq(parser, name):
    if parser.pos < len(parser.tokens) and not parser._isNumber(parser.tokens[parser.pos]):
        parser.string("entry name")
        parser.atom("entry type")
    return _ModSeq(parser.number("mod-sequence"))


def _uid(parser, name):
    uids = parser.atom("UID set")
    if uids == "$":
        return _UidIn(parser.saved)
    return _Sequence(parseSequenceSet(uids), True)


def _within(parser, name):
    seconds = parser.number("interval")
    if not seconds:
        raise ValueError("%s needs a number of seconds above 0" % (name,))
    now = time.time() if parser.now is None else parser.now
    return _Within(now - seconds, name == "OLDER")


def _header(parser, name):
    field = parser.string("header field name")
    return _Header(field, parser.string("search string"))


def registerSearchKeys(registry):
    """
    Add the standard SEARCH keys (RFC 3501/9051, CONDSTORE, WITHIN,
    SEARCHRES, SAVEDATE) to C{registry}, a
    L{gateway.imap.registry.SearchKeyRegistry}.  A row is C{parse(parser,
    name)}: it reads the key's arguments from the L{gateway.imap.search.Parser} and returns a
    key object (a L{SearchKey}: C{match(candidate)}, optional SQL
    C{storeTerm()}).
    """
    add = registry.add
    add("ALL", lambda p, name: _All())
    for flagKey in _FLAG_KEYS:
        add(flagKey, lambda p, name: _Flag(*_FLAG_KEYS[name]))
    for name in ("KEYWORD", "UNKEYWORD"):
        add(name, lambda p, name: _Keyword(p.atom("keyword"), name == "KEYWORD"))
    for name in ("RECENT", "OLD"):
        add(name, lambda p, name: _Recent(name == "RECENT"))
    add("NEW", lambda p, name: _New())
    add("NOT", lambda p, name: _Not(p.nested(p.key)))
    add("OR", lambda p, name: p.nested(lambda: _Or(p.key(), p.key())))
    for name in _HEADER_KEYS:
        add(name, lambda p, name: (_Address if name != "SUBJECT" else _Header)(
            _HEADER_KEYS[name], p.string("search string")))
    add("HEADER", _header)
    for name in ("BODY", "TEXT"):
        add(name, lambda p, name: _Body(p.string("search string"), name == "TEXT"))
    for name in ("BEFORE", "ON", "SINCE"):
        add(name, lambda p, name: _Date(p.date(), name, False))
    for name in ("SENTBEFORE", "SENTON", "SENTSINCE"):
        add(name, lambda p, name: _Date(p.date(), name[4:], True))
    for name in ("SAVEDBEFORE", "SAVEDON", "SAVEDSINCE"):
        add(name, lambda p, name: _SavedDate(p.date(), name[5:]))
    add("SAVEDATESUPPORTED", lambda p, name: _All())  # every mailbox here keeps save dates
    for name in ("LARGER", "SMALLER"):
        add(name, lambda p, name: _Size(p.number("size"), name == "LARGER"))
    add("UID", _uid)
    add("$", lambda p, name: _UidIn(p.saved))
    for name in ("OLDER", "YOUNGER"):
        add(name, _within)
    add("MODSEQ", _modSeq)
