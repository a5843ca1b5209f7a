# -*- test-case-name: tests.test_store_query -*-
"""
Conditions on what the index knows of a message (flags, size, arrival
time, modseq), for L{gateway.interfaces.IMailbox.search}: the index
answers them in one query instead of the caller matching message by
message.  A protocol translates what it can of its own search language into
these terms and matches the rest itself (IMAP: L{gateway.imap.search}).

Each term turns itself into an SQL condition on the C{messages} table of
L{gateway.store.index}: C{term.sql()} is C{(text, params)}.
"""

import attr


@attr.s(frozen=True)
class HasFlag:
    """
    The message has flag or keyword C{flag} (compared without case).
    """

    flag = attr.ib()

    def sql(self):
        return "instr(lower(' ' || flags || ' '), ?) > 0", [" %s " % (self.flag.lower(),)]


@attr.s(frozen=True)
class _Comparison:
    """
    A column of the index compared with C{value}.
    """

    value = attr.ib()
    column = operator = None

    def sql(self):
        return "%s %s ?" % (self.column, self.operator), [self.value]


class LargerThan(_Comparison):
    """
    Its size (of the CRLF form) is above C{value}.
    """

    column, operator = "size", ">"


class SmallerThan(_Comparison):
    column, operator = "size", "<"


class ArrivedBefore(_Comparison):
    """
    Its internal date is before C{value} (POSIX seconds).
    """

    column, operator = "internaldate", "<"


class ArrivedSince(_Comparison):
    """
    Its internal date is at or after C{value} (POSIX seconds).
    """

    column, operator = "internaldate", ">="


#: The save date of a message (the time its Maildir name starts with),
#: else its internal date.
_SAVEDATE = ("(CASE WHEN base GLOB '[0-9]*.*' AND instr(base, '.') BETWEEN 2 AND 12"
             " THEN CAST(substr(base, 1, instr(base, '.') - 1) AS INTEGER) ELSE internaldate END)")


class SavedBefore(_Comparison):
    """
    It was saved into the mailbox before C{value} (POSIX seconds); a
    message of unknown save date counts by its internal date.
    """

    column, operator = _SAVEDATE, "<"


class SavedSince(_Comparison):
    column, operator = _SAVEDATE, ">="


class ModSeqAtLeast(_Comparison):
    column, operator = "modseq", ">="


@attr.s(frozen=True)
class Not:
    term = attr.ib()

    def sql(self):
        term, negate = self.term, True
        while isinstance(term, Not):
            term, negate = term.term, not negate
        text, params = term.sql()
        return ("NOT (%s)" % (text,) if negate else text), params


def _flatten(kind, terms):
    """
    C{terms}, with the terms of those that are C{kind} in their place (an
    OR of ORs is one OR), so that a chain nests no parentheses in SQL.
    """
    flat, pending = [], list(reversed(terms))
    while pending:
        term = pending.pop()
        if isinstance(term, kind):
            pending.extend(reversed(term.terms))
        else:
            flat.append(term)
    return flat


def nesting(term):
    """
    How deeply the SQL of C{term} nests parentheses (SQLite's parser
    refuses a few dozen levels).
    """
    deepest = level = 0
    for c in term.sql()[0]:
        if c == "(":
            level += 1
            deepest = max(deepest, level)
        elif c == ")":
            level -= 1
    return deepest


def size(term):
    """
    How many conditions the SQL of C{term} joins: SQLite's expression tree
    grows one level deeper with each of a chain, and it refuses 1,000.
    """
    text = term.sql()[0]
    return text.count(" AND ") + text.count(" OR ") + 1


def _combine(kind, joiner, terms, empty):
    terms = _flatten(kind, terms)
    if not terms:
        return empty, []
    if len(terms) == 1:
        return terms[0].sql()
    texts, params = [], []
    for term in terms:
        text, more = term.sql()
        texts.append("(%s)" % (text,))
        params.extend(more)
    return joiner.join(texts), params


@attr.s(frozen=True)
class And:
    """
    Every one of C{terms} holds (true when there are none).
    """

    terms = attr.ib(converter=tuple)

    def sql(self):
        return _combine(And, " AND ", self.terms, "1")


@attr.s(frozen=True)
class Or:
    """
    At least one of C{terms} holds.
    """

    terms = attr.ib(converter=tuple)

    def sql(self):
        return _combine(Or, " OR ", self.terms, "0")

