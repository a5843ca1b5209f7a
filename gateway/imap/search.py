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
"""

import base64
import binascii
import calendar
import datetime
import email.parser
import email.policy
import email.utils
import re
import time

from gateway.imap import mimeparts
from gateway.imap.parser import Arguments, NestingError
from gateway.imap.results import parseReturnOptions
from gateway.imap.sequence import parseSequenceSet
from gateway.store import query

#: Charsets accepted after C{CHARSET}.
SUPPORTED_CHARSETS = ("UTF-8", "US-ASCII")

#: Deepest nesting of a search program: each OR, NOT and parenthesized
#: list is a level.  Deeper programs are refused (BAD) when parsed.
MAX_SEARCH_DEPTH = 100

#: A term nesting SQL parentheses deeper than this is matched by the
#: session instead of the index (SQLite's parser overflows at about 30).
MAX_SQL_NESTING = 16

#: The index answers at most this many conditions of a program (L{query.size});
#: the session matches the other keys (SQLite refuses 1,000 in a chain).
MAX_SQL_TERMS = 200

#: Most search keys in one program (BAD beyond).
MAX_SEARCH_KEYS = 1000

_RETURN_OPTIONS = ("MIN", "MAX", "ALL", "COUNT", "SAVE")

_MONTHS = {m: i + 1 for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}

_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True), "UNANSWERED": ("\\Answered", False),
    "DELETED": ("\\Deleted", True), "UNDELETED": ("\\Deleted", False),
    "DRAFT": ("\\Draft", True), "UNDRAFT": ("\\Draft", False),
    "FLAGGED": ("\\Flagged", True), "UNFLAGGED": ("\\Flagged", False),
    "SEEN": ("\\Seen", True), "UNSEEN": ("\\Seen", False),
}

_HEADER_KEYS = {"FROM": "from", "TO": "to", "CC": "cc", "BCC": "bcc", "SUBJECT": "subject"}


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


# Keys ---------------------------------------------------------------------

class SearchKey:
    """
    A search key: C{match(candidate)} tells whether a message (a
    L{_Candidate}) matches; L{storeTerm} lets the index answer it.  An
    extension's keys subclass it and set C{needsHeaders}/C{needsBody}/
    C{needsSaveDate} when C{match} reads those.
    """

    needsBody = False
    needsHeaders = False
    needsSaveDate = False

    def storeTerm(self):
        """
        This key as a L{gateway.store.query} term for the index to answer,
        or C{None} when it needs more than the index row (headers, body,
        sequence numbers, this session's C{\\Recent}).
        """
        return None


class _All(SearchKey):
    def match(self, m):
        return True

    def storeTerm(self):
        return query.And(())


class _Flag(SearchKey):
    def __init__(self, flag, present):
        self.flag, self.present = flag, present

    def match(self, m):
        return (self.flag in m.info.flags) == self.present

    def storeTerm(self):
        return _presence(query.HasFlag(self.flag), self.present)


class _Keyword(SearchKey):
    def __init__(self, keyword, present):
        self.keyword, self.present = keyword.lower(), present

    def match(self, m):
        return any(f.lower() == self.keyword for f in m.info.flags) == self.present

    def storeTerm(self):
        return _presence(query.HasFlag(self.keyword), self.present)


class _Recent(SearchKey):
    def __init__(self, present):
        self.present = present

    def match(self, m):
        return m.recent == self.present


class _New(SearchKey):
    def match(self, m):
        return m.recent and "\\Seen" not in m.info.flags


class _Not(SearchKey):
    def __init__(self, key):
        self.key = key
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
    def __init__(self, size, larger):
        self.size, self.larger = size, larger

    def match(self, m):
        return m.info.size > self.size if self.larger else m.info.size < self.size

    def storeTerm(self):
        return query.LargerThan(self.size) if self.larger else query.SmallerThan(self.size)


class _ModSeq(SearchKey):
    def __init__(self, modseq):
        self.modseq = modseq

    def match(self, m):
        return m.info.modseq >= self.modseq

    def storeTerm(self):
        return query.ModSeqAtLeast(self.modseq)


class _Sequence(SearchKey):
    def __init__(self, sequenceSet, uid):
        self.set, self.uid = sequenceSet, uid

    def match(self, m):
        if self.uid:
            return self.set.contains(m.info.uid, m.maxUid)
        return self.set.contains(m.seq, m.maxSeq)


class _UidIn(SearchKey):
    """
    C{$} (RFC 5182): the messages of the saved search result.
    """

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
    needsBody = True
    needsHeaders = True

    def __init__(self, needle, withHeaders):
        self.needle, self.withHeaders = needle.casefold(), withHeaders

    def match(self, m):
        if self.withHeaders and (self.needle in m.headerText() or self.needle in m.partHeaderText()):
            return True
        return self.needle in m.bodyText()


# Decoding helpers -------------------------------------------------------------

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)\s+(?==\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)")


def _decodeWord(match):
    charset, encoding, text = match.groups()
    charset = charset.split("*", 1)[0]
    try:
        if encoding in "bB":
            raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        else:
            raw = re.sub(r"=([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)),
                         text.replace("_", " ")).encode("latin-1")
    except (ValueError, UnicodeEncodeError, binascii.Error):
        return match.group(0)
    try:
        return raw.decode(charset, "replace")
    except (LookupError, ValueError):
        return raw.decode("utf-8", "replace")


def decodeHeader(value):
    """
    A header value (C{bytes}) as Unicode with RFC 2047 words decoded;
    raw 8-bit bytes are taken as UTF-8, else Latin-1.  Never raises.
    """
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = value.decode("latin-1")
    if "=?" not in text:
        return text
    text = _BETWEEN_WORDS.sub(r"\1", text)
    return _ENCODED_WORD.sub(_decodeWord, text)


def _searchTexts(data):
    """
    The searchable texts of a whole message, as Dovecot searches them.

    @return: C{(body, headers)}: the decoded content (transfer encoding and
        charset) of every text/* part, including those of attached
        messages; and the decoded header fields of every part and attached
        message below the top level (the top header comes from the index).
        Both case-folded.
    """
    message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(data)
    texts = []
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            texts.append(payload.decode(charset))
        except (LookupError, ValueError):
            texts.append(payload.decode("utf-8", "replace"))
    headers = []
    root = mimeparts.Entity(data, 0, len(data))
    pending = [root.embedded] if root.embedded is not None else list(root.parts or ())
    while pending:
        entity = pending.pop()
        headers.extend(decodeHeader(raw) for _, raw, _ in entity.fields)
        pending.extend(entity.parts or ())
        if entity.embedded is not None:
            pending.append(entity.embedded)
    return "\n".join(texts).casefold(), "\n".join(headers).casefold()


#: The most of a message file read for a header block the index cut.
HEADER_LIMIT = 16 * 1024 * 1024

#: The sent date of a message without a usable Date header (Dovecot's).
_NO_DATE = datetime.date(1970, 1, 1)


class _Candidate:
    """
    One message being matched, with lazily decoded headers and body.
    """

    def __init__(self, seq, info, maxSeq, maxUid, openMessage, recent, saveDate=None):
        self.seq, self.info, self.maxSeq, self.maxUid = seq, info, maxSeq, maxUid
        self.recent = recent
        self.saveDate = saveDate
        self._open = openMessage
        self._fields = None
        self._block = None
        self._body = None

    def headerBlock(self):
        """
        The message's header block: the index's, or read from the file
        when the index kept only part of an over-long one.
        """
        if self._block is None:
            block = self.info.headers
            if not (block.endswith(b"\r\n\r\n") or block == b"\r\n" or len(block) >= self.info.size):
                f = self._open()
                try:
                    data = f.read(HEADER_LIMIT)
                finally:
                    f.close()
                end = data.find(b"\r\n\r\n")
                block = data[:end + 4] if end != -1 else data
            self._block = block
        return self._block

    def fields(self):
        if self._fields is None:
            self._fields = mimeparts.splitHeaderFields(self.headerBlock())
        return self._fields

    def headerValues(self, name):
        return [decodeHeader(v).casefold() for v in mimeparts.fieldValues(self.headerBlock(), name)]

    def addressTexts(self, name):
        """
        The addresses of the fields C{name} as RFC 5322 parses them:
        C{display name <local@domain>} (or C{local@domain}), case-folded.
        """
        values = [decodeHeader(v) for v in mimeparts.fieldValues(self.headerBlock(), name)]
        texts = []
        for display, address in email.utils.getaddresses(values):
            display = decodeHeader(display.encode("utf-8")).strip()
            if display:
                texts.append(("%s <%s>" % (display, address)).casefold())
            elif address:
                texts.append(address.casefold())
        return texts

    def headerText(self):
        return "\n".join(decodeHeader(raw) for _, raw, _ in self.fields()).casefold()

    def data(self):
        """
        The whole message (C{bytes}), read once.
        """
        if getattr(self, "_data", None) is None:
            f = self._open()
            try:
                self._data = f.read()
            finally:
                f.close()
        return self._data

    def _read(self):
        if self._body is None:
            f = self._open()
            try:
                data = f.read()
            finally:
                f.close()
            self._body = _searchTexts(data)
        return self._body

    def bodyText(self):
        return self._read()[0]

    def partHeaderText(self):
        return self._read()[1]

    def sentDay(self):
        when = mimeparts.sentDate(self.fields())
        if when is None:
            return _NO_DATE
        return when.date()


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
        return self.key.match(_Candidate(seq, info, maxSeq, maxUid, openMessage, recent, saveDate))

    def matchesRest(self, seq, info, maxSeq, maxUid, openMessage, recent=False, saveDate=None):
        """
        Like L{matches}, for a message the index found satisfying L{term}:
        only L{rest} is checked.

        @param saveDate: the message's save date (POSIX seconds, or
            C{None}: unknown), needed when C{rest.needsSaveDate}.
        """
        return self.rest.match(_Candidate(seq, info, maxSeq, maxUid, openMessage, recent, saveDate))


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
    name)}: it reads the key's arguments from the L{_Parser} and returns a
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
    return program
