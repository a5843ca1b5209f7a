# -*- test-case-name: tests.test_imap_search -*-
"""
SEARCH: parsing the search program and matching messages against it.

The primary entry takes the core's parsed tokens (atoms as C{str},
quoted strings and literals as C{bytes}, parenthesized lists as Python
C{list}s): C{parseSearch(["CHARSET", "UTF-8", "SUBJECT", b"caf\\xc3\\xa9"])}.
For convenience C{parseSearch(text)} tokenizes a C{str}/C{bytes} first
(with inline C{{n}\\r\\n} literals).

A L{SearchProgram} matches one message at a time from its
L{gateway.interfaces.IMessageInfo}; only BODY and TEXT keys read the
message (L{SearchProgram.needsBody}), header keys use C{info.headers}
with RFC 2047 words decoded; all string comparisons are case-insensitive
substring tests on Unicode text.  BODY searches the decoded content of
text/* parts (attachments of other types and MIME structure are not
searched); TEXT adds every header, of parts and attached messages too.
Dates follow RFC 3501: BEFORE, ON and SINCE compare the date of the
internal date in UTC (the server's zone); the SENT* keys compare the date
written in the Date header (in its own zone), 1-Jan-1970 when it is
missing or unparseable.  These choices match Dovecot 2.3.

This module reads the program (L{parseSearch}); the keys and their SQL
terms are in L{gateway.imap.searchkeys}, the decoded texts they compare
in L{gateway.imap.searchtext}.
"""

import datetime
import re

from gateway.imap.parser import Arguments, NestingError
from gateway.imap.results import parseReturnOptions
from gateway.imap.searchkeys import (  # noqa: F401 (names of this module's API)
    MAX_SQL_NESTING,
    MAX_SQL_TERMS,
    SearchKey,
    _All,
    _And,
    _Sequence,
    registerSearchKeys,
)
from gateway.imap.searchtext import HEADER_LIMIT, Candidate, decodeHeader  # noqa: F401
from gateway.imap.sequence import parseSequenceSet

#: Charsets accepted after C{CHARSET}.
SUPPORTED_CHARSETS = ("UTF-8", "US-ASCII")

#: Deepest nesting of a search program: each OR, NOT and parenthesized
#: list is a level.  Deeper programs are refused (BAD) when parsed.
MAX_SEARCH_DEPTH = 100

#: Most search keys in one program (BAD beyond).
MAX_SEARCH_KEYS = 1000

#: ESEARCH (RFC 4731), SEARCHRES (RFC 5182) and CONTEXT=SEARCH (RFC 5267)
#: return options; PARTIAL is read by L{parseReturnOptions}.
_RETURN_OPTIONS = ("MIN", "MAX", "ALL", "COUNT", "SAVE", "CONTEXT", "UPDATE")

_MONTHS = {m: i + 1 for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}


def _tooDeep():
    return ValueError("search program nested too deeply (limit %d levels)" % (MAX_SEARCH_DEPTH,))


class SearchCharsetError(ValueError):
    """
    The CHARSET named is not supported: answer C{NO [BADCHARSET (UTF-8
    US-ASCII)]}.  A subclass of C{ValueError}: catch it first.

    @ivar charset: the name given.
    """

    def __init__(self, charset):
        ValueError.__init__(self, "unsupported charset %s" % (charset,))
        self.charset = charset


# Tokenizing the text form -------------------------------------------------


def tokenize(text):
    """
    Tokens of a SEARCH argument text in the form the core produces: the
    command tokenizer's (L{Arguments.values}), lists nested up to
    L{MAX_SEARCH_DEPTH}.

    @type text: C{str} or C{bytes} (inline literals C{{n}\\r\\n...} allowed)
    @raise ValueError: on bad syntax, or nesting too deep.
    """
    if isinstance(text, str):
        text = text.encode("utf-8")
    try:
        return Arguments(text, maxDepth=MAX_SEARCH_DEPTH).values()
    except NestingError:
        raise _tooDeep() from None


# The program ------------------------------------------------------------------

class SearchProgram:
    """
    A parsed SEARCH.

    @ivar returnOptions: C{None} (plain SEARCH) or the C{list} of upper-case
        ESEARCH return options (C{["ALL"]} for C{RETURN ()}).
    @ivar charset: the charset named, upper case, or C{None}.
    @ivar partial: the L{parsePartialRange} of a C{PARTIAL} return option,
        or C{None}.
    @ivar needsBody: whether matching reads message files.
    @ivar needsHeaders: whether matching reads C{info.headers}; when not,
        candidates may come from C{IMailbox.messages(uids, headers=False)}.
    @ivar term: what the index can answer of the program, as one
        L{gateway.store.query} term for C{IMailbox.search}, or C{None}.
    @ivar rest: what remains to match message by message with
        L{matchesRest} once C{term} holds, or C{None} when C{term} says it
        all.
    """

    partial = None
    #: What must run before matching: no-argument callables returning a
    #: C{Deferred}, that keys of an extension which need an asynchronous
    #: answer (XMAPI's C{XOVERLAPS}) add with L{_Parser.prepareWith}.
    preparations = ()

    def __init__(self, key, returnOptions, charset):
        self.key = key
        self.returnOptions = returnOptions
        self.charset = charset
        self.needsBody = key.needsBody
        self.needsHeaders = key.needsHeaders
        #: Whether a context can keep the result updated (RFC 5267 4.3):
        #: every key's match changes only with the message, and no
        #: preparation runs first.
        self.updatable = key.updatable
        self.term, self.rest = (key if isinstance(key, _And) else _And([key])).split()
        keys = key.keys if isinstance(key, _And) else [key]
        #: Whether every message matches (C{ALL}).
        self.matchesAll = all(isinstance(k, _All) for k in keys)

    def matches(self, seq, info, maxSeq, maxUid, openMessage, recent=False, saveDate=None):
        """
        Whether message number C{seq} described by C{info} matches.

        @param maxSeq: messages in the session's view (for C{*}).
        @param maxUid: the largest UID in the view (for C{UID ...*}).
        @param openMessage: no-argument callable returning the message's
            CRLF file; called only by BODY and TEXT keys.
        @param recent: whether the message is C{\\Recent} in this session.
        """
        return self.key.match(Candidate(seq, info, maxSeq, maxUid, openMessage, recent, saveDate))

    def matchesRest(self, seq, info, maxSeq, maxUid, openMessage, recent=False, saveDate=None):
        """
        Like L{matches}, for a message the index found satisfying L{term}:
        only L{rest} is checked.

        @param saveDate: the message's save date (POSIX seconds, or
            C{None}: unknown), needed when C{rest.needsSaveDate}.
        """
        return self.rest.match(Candidate(seq, info, maxSeq, maxUid, openMessage, recent, saveDate))


class _Parser:
    """
    Reads a search program; each key's arguments are read by its row of
    C{registry}, C{parse(parser, name)}, with L{next}, L{atom},
    L{string}, L{number}, L{date} and, for nested keys, L{key} inside
    L{nested}.
    """

    def __init__(self, tokens, charset, saved=frozenset(), now=None, registry=None, context=None):
        self.registry = registry
        #: The session searching (for keys that read its mailbox), or C{None}.
        self.context = context
        self.tokens = tokens
        self.pos = 0
        self.charset = charset
        self.saved = saved
        self.now = now
        self.depth = 0
        self.count = 0
        self.preparations = []

    def prepareWith(self, prepare):
        """
        Have C{prepare()} (returning a C{Deferred}) run before the program
        is matched (L{SearchProgram.preparations}).
        """
        self.preparations.append(prepare)

    def nested(self, parse, *args):
        """
        C{parse(*args)} one level deeper (an OR, a NOT, a list).

        @raise ValueError: past L{MAX_SEARCH_DEPTH}.
        """
        if self.depth >= MAX_SEARCH_DEPTH:
            raise _tooDeep()
        self.depth += 1
        result = parse(*args)
        self.depth -= 1
        return result

    def next(self, what):
        if self.pos >= len(self.tokens):
            raise ValueError("missing %s in search program" % (what,))
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def atom(self, what):
        token = self.next(what)
        if isinstance(token, bytes):
            token = token.decode("ascii", "replace")
        if not isinstance(token, str):
            raise ValueError("expected %s, got a list" % (what,))
        return token

    def string(self, what):
        token = self.next(what)
        if isinstance(token, list):
            raise ValueError("expected %s, got a list" % (what,))
        if isinstance(token, str):
            # An atom: the tokenizer read its octets as Latin-1.
            try:
                token = token.encode("latin-1")
            except UnicodeEncodeError:
                return token
        codec = "ascii" if self.charset == "US-ASCII" else "utf-8"
        try:
            return token.decode(codec)
        except UnicodeDecodeError:
            raise ValueError("search string is not valid %s" % (self.charset or "UTF-8",))

    def number(self, what):
        token = self.atom(what)
        if not token.isdigit() or not token.isascii() or len(token) > 20:
            raise ValueError("invalid %s %r" % (what, token[:20]))
        return int(token)

    def date(self):
        token = self.string("date")
        m = re.fullmatch(r"(\d{1,2})-([A-Za-z]{3})-(\d{4})", token.strip())
        if m is None or m.group(2).lower() not in _MONTHS:
            raise ValueError("invalid date %r (expected e.g. 1-Feb-1994)" % (token[:30],))
        try:
            return datetime.date(int(m.group(3)), _MONTHS[m.group(2).lower()], int(m.group(1)))
        except ValueError:
            raise ValueError("invalid date %r" % (token[:30],))

    def keys(self, tokens):
        saved = self.tokens, self.pos
        self.tokens, self.pos = tokens, 0
        keys = []
        while self.pos < len(self.tokens):
            keys.append(self.key())
        self.tokens, self.pos = saved
        if not keys:
            raise ValueError("empty search key list")
        return keys[0] if len(keys) == 1 else _And(keys)

    def key(self):
        self.count += 1
        if self.count > MAX_SEARCH_KEYS:
            raise ValueError("search program too long (limit %d keys)" % (MAX_SEARCH_KEYS,))
        token = self.next("search key")
        if isinstance(token, list):
            return self.nested(self.keys, token)
        if isinstance(token, bytes):
            token = token.decode("ascii", "replace")
        name = token.upper()
        row = self.registry.get(name)
        if row is not None:
            return row(self, name)
        if name[:1].isdigit() or name[:1] == "*":
            return _Sequence(parseSequenceSet(token), False)
        raise ValueError("unknown search key %s" % (token[:40],))

    @staticmethod
    def _isNumber(token):
        return isinstance(token, str) and token.isdigit()


def parseSearch(tokens, charset=None, saved=frozenset(), now=None, registry=None, context=None):
    """
    Parse the arguments of SEARCH / UID SEARCH.

    @param tokens: the core's tokens (see the module docstring), or the
        raw argument text (C{str}/C{bytes}).
    @param charset: the charset to assume when the command names none.
    @param saved: the UIDs C{$} stands for (RFC 5182).
    @param now: POSIX seconds OLDER and YOUNGER count back from (default:
        the current time).
    @param registry: the L{gateway.imap.registry.SearchKeyRegistry} naming
        the keys; C{None} for the standard keys.
    @param context: the searching session, for keys that need it
        (C{parser.context}).
    @rtype: L{SearchProgram}
    @raise SearchCharsetError: for a charset other than UTF-8 or US-ASCII.
    @raise ValueError: on bad syntax (answer BAD).
    """
    if isinstance(tokens, (str, bytes)):
        tokens = tokenize(tokens)
    tokens = list(tokens)
    pos = 0
    returnOptions = None

    def word(i):
        token = tokens[i] if i < len(tokens) else None
        if isinstance(token, bytes):
            token = token.decode("ascii", "replace")
        return token.upper() if isinstance(token, str) else None

    partial = None
    if word(pos) == "RETURN":
        if pos + 1 >= len(tokens) or not isinstance(tokens[pos + 1], list):
            raise ValueError("RETURN needs a parenthesized list of options")
        returnOptions, partial = parseReturnOptions(tokens[pos + 1], _RETURN_OPTIONS)
        pos += 2
    if word(pos) == "CHARSET":
        if pos + 1 >= len(tokens) or isinstance(tokens[pos + 1], list):
            raise ValueError("CHARSET needs a charset name")
        charset = tokens[pos + 1]
        pos += 2
    if isinstance(charset, bytes):
        charset = charset.decode("ascii", "replace")
    if charset is not None:
        charset = charset.upper()
        if charset not in SUPPORTED_CHARSETS:
            raise SearchCharsetError(charset)
    if registry is None:
        from gateway.imap.registry import defaultRegistries
        registry = defaultRegistries().search
    parser = _Parser(tokens[pos:], charset, saved, now, registry, context)
    key = parser.keys(tokens[pos:])
    program = SearchProgram(key, returnOptions, charset)
    program.partial = partial
    program.preparations = tuple(parser.preparations)
    if program.preparations:
        program.updatable = False
    return program
