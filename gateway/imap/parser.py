# -*- test-case-name: tests.test_imap_parser -*-
"""
The IMAP tokenizer.

A command arrives from L{gateway.imap.protocol} as one C{bytes} buffer in
which every literal is already in place (C{{n}\\r\\n} followed by its n
octets).  L{Arguments} walks that buffer on demand: handlers ask for the
argument kinds their grammar needs; commands with a grammar of their own
take every remaining token at once with L{Arguments.values} (SEARCH keys,
through L{gateway.imap.search.tokenize}) or the raw remainder with
L{Arguments.rest} (FETCH items).

Token convention: atoms are C{str}; quoted strings and literals are
C{bytes}; parenthesized lists are Python C{list}; NIL is the atom C{"NIL"}.
"""

import functools
import re

import twisted.mail.imap4  # noqa: F401 -- registers the imap4-utf-7 codec

from gateway import caches
from gateway.errors import InvalidMailboxName

_ATOM_END = b" ()\r\n{\"%*]\x7f" + bytes(range(0, 32))
_ATOM = re.compile(rb"[^ ()\r\n{\"\x00-\x1f\x7f]+")
_LITERAL = re.compile(rb"\{(\d{1,20})(\+?)\}\r\n")
_TAG = re.compile(rb"[^ (){\"%*+\\\x00-\x1f\x7f]+")

#: Greatest nesting depth of parenthesized lists.
MAX_DEPTH = 32


class IMAPSyntaxError(ValueError):
    """
    The command does not follow the grammar (answered with C{BAD}).
    """


class NestingError(IMAPSyntaxError):
    """
    Parenthesized lists nest deeper than the L{Arguments} allow.
    """


class NotModifiedUTF7(IMAPSyntaxError, InvalidMailboxName):
    """
    A mailbox name or pattern is a valid astring but not modified UTF-7
    (RFC 3501 5.1.3): no mailbox has that name, so commands answer C{NO}
    (a pattern matches nothing), not C{BAD}.  Also an L{IMAPSyntaxError}
    so that a command that does not catch it still answers as before
    (C{BAD}) rather than with an internal error.
    """


class Arguments:
    """
    A cursor over the arguments of one command.

    @ivar data: the command's C{bytes} (after the command name).
    @ivar pos: the index of the next unread octet.
    @ivar spooled: C{{offset: file}} for literals the session wrote to a
        file instead of C{data} (a large APPEND): C{data} holds only their
        C{{n}\\r\\n} prefix, and C{offset} is where their bytes would start.
    @ivar maxDepth: how deeply parenthesized lists may nest.
    @ivar names: the session's L{gateway.interfaces.IMailboxNameCodec}
        (C{None}: modified UTF-7).
    """

    names = None

    def __init__(self, data, pos=0, spooled=None, maxDepth=MAX_DEPTH):
        self.data = data
        self.pos = pos
        self.spooled = spooled or {}
        self.maxDepth = maxDepth

    # -- low level -------------------------------------------------------------

    def atEnd(self):
        return self.pos >= len(self.data)

    def peek(self):
        return self.data[self.pos:self.pos + 1]

    def space(self):
        """
        Consume the single space that separates arguments.
        """
        if self.data[self.pos:self.pos + 1] != b" ":
            raise IMAPSyntaxError("missing argument" if self.atEnd() else "expected a space")
        self.pos += 1

    def end(self):
        """
        Check that every argument was read.
        """
        if not self.atEnd():
            raise IMAPSyntaxError("unexpected extra arguments")

    def rest(self):
        """
        The unread remainder as C{str} (latin-1), consumed; the leading
        space is dropped.
        """
        if self.peek() == b" ":
            self.pos += 1
        text = self.data[self.pos:].decode("latin-1")
        self.pos = len(self.data)
        return text

    def restBytes(self):
        """
        Like L{rest}, as C{bytes} (literals stay inline).
        """
        if self.peek() == b" ":
            self.pos += 1
        data = self.data[self.pos:]
        self.pos = len(self.data)
        return data

    # -- tokens ------------------------------------------------------------------

    def atom(self):
        """
        An atom (C{str}); C{[...]} sections are kept inside the atom.
        """
        match = _ATOM.match(self.data, self.pos)
        if match is None:
            raise IMAPSyntaxError("expected an atom")
        self.pos = match.end()
        return match.group().decode("latin-1")

    def quoted(self):
        data = self.data
        if data[self.pos:self.pos + 1] != b'"':
            raise IMAPSyntaxError("expected a quoted string")
        out = bytearray()
        i = self.pos + 1
        while True:
            j = i
            while j < len(data) and data[j] not in b'"\\\r\n':
                j += 1
            out += data[i:j]
            if j >= len(data) or data[j] in b"\r\n":
                raise IMAPSyntaxError("unterminated quoted string")
            if data[j] == 0x22:
                self.pos = j + 1
                return bytes(out)
            escaped = data[j + 1:j + 2]
            if escaped not in (b'"', b"\\"):
                raise IMAPSyntaxError("bad escape in quoted string")
            out += escaped
            i = j + 2

    def literal(self):
        match = _LITERAL.match(self.data, self.pos)
        if match is None:
            raise IMAPSyntaxError("expected a literal")
        size = int(match.group(1))
        start = match.end()
        spooled = self.spooled.get(start)
        if spooled is not None:
            self.pos = start
            return spooled
        if start + size > len(self.data):
            raise IMAPSyntaxError("truncated literal")
        self.pos = start + size
        return self.data[start:self.pos]

    def string(self):
        """
        A quoted string or literal (C{bytes}).
        """
        first = self.peek()
        if first == b'"':
            return self.quoted()
        if first == b"{":
            value = self.literal()
            if not isinstance(value, bytes):
                # Written to a file: only APPEND's message may be that large.
                raise IMAPSyntaxError("string too long")
            return value
        raise IMAPSyntaxError("expected a string")

    def astring(self):
        """
        An atom or string, as C{bytes}.
        """
        if self.peek() in (b'"', b"{"):
            return self.string()
        match = _ATOM.match(self.data, self.pos)
        if match is None:
            raise IMAPSyntaxError("expected an atom or string")
        self.pos = match.end()
        return match.group()

    def listMailbox(self):
        """
        A LIST pattern: like astring but also C{%} and C{*}.
        """
        if self.peek() in (b'"', b"{"):
            return self.string()
        match = _ATOM.match(self.data, self.pos)
        if match is None:
            raise IMAPSyntaxError("expected a mailbox pattern")
        self.pos = match.end()
        return match.group()

    def mailbox(self):
        """
        A mailbox name, decoded from modified UTF-7 or, in a session that
        enabled UTF-8, from UTF-8 (C{str}); INBOX in any case becomes
        C{"INBOX"}.

        @raise NotModifiedUTF7: for a name that is not in the session's
            encoding (after the name was read: the cursor is past it).
        """
        return self.decodeName(self.astring())

    def decodeName(self, raw):
        """
        A mailbox name or pattern read as an astring, decoded as the
        session writes names (see L{mailbox}).
        """
        if self.names is not None:
            return self.names.decode(raw)
        return decodeMailbox(raw)

    def value(self, depth=0):
        """
        Any token: atom, string, or a parenthesized list of tokens.
        """
        first = self.peek()
        if first == b"(":
            return self.parenList(depth)
        if first in (b'"', b"{"):
            return self.string()
        return self.atom()

    def parenList(self, depth=0):
        """
        A parenthesized list of tokens (C{list}).
        """
        if depth >= self.maxDepth:
            raise NestingError("lists nested too deeply")
        if self.peek() != b"(":
            raise IMAPSyntaxError("expected a list")
        self.pos += 1
        items = []
        while True:
            if self.peek() == b")":
                self.pos += 1
                return items
            if self.atEnd():
                raise IMAPSyntaxError("unterminated list")
            if items:
                self.space()
            items.append(self.value(depth + 1))

    def values(self):
        """
        Every remaining token (L{value}s), as a C{list}; runs of spaces
        between and after them are tolerated.
        """
        items = []
        while True:
            while self.peek() == b" ":
                self.pos += 1
            if self.atEnd():
                return items
            if self.peek() == b")":
                raise IMAPSyntaxError("unbalanced )")
            items.append(self.value())


def splitCommand(data, spooled=None):
    """
    Split a command into C{(tag, name, Arguments)}; C{spooled} as for
    L{Arguments}.

    @raise IMAPSyntaxError: without a usable tag the tag is C{"*"}.
    """
    match = _TAG.match(data)
    if match is None or data[match.end():match.end() + 1] != b" ":
        raise IMAPSyntaxError("missing tag or command")
    tag = match.group().decode("latin-1")
    args = Arguments(data, match.end() + 1, spooled)
    try:
        name = args.atom().upper()
    except IMAPSyntaxError:
        raise IMAPSyntaxError("missing command") from None
    return tag, name, args


def tagOf(data):
    """
    The tag of a (possibly malformed) command line, or C{"*"}.
    """
    match = _TAG.match(data)
    return match.group().decode("latin-1") if match else "*"


#: A modified UTF-7 name without a shift: printable US-ASCII but C{&}, each
#: character itself (RFC 3501 5.1.3).
_PLAIN_NAME = re.compile(rb"[\x20-\x25\x27-\x7e]*")


def decodeMailbox(raw):
    """
    A mailbox name from the wire (modified UTF-7) as C{str}.

    @raise NotModifiedUTF7: when C{raw} is not modified UTF-7.
    """
    if _PLAIN_NAME.fullmatch(raw):
        # Most names: no need of Twisted's codec (twice, to check).
        name = raw.decode("ascii")
    else:
        name = _decodeShifted(raw)
    if name.upper() == "INBOX":
        return "INBOX"
    return name


def _decodeShifted(raw):
    try:
        name = raw.decode("imap4-utf-7")
        valid = name.encode("imap4-utf-7") == raw
    except (UnicodeError, ValueError):
        valid = False
    if not valid:
        raise NotModifiedUTF7("mailbox name is not valid modified UTF-7")
    return name


@caches.kept
@functools.lru_cache(maxsize=1024)
def encodeMailbox(name):
    """
    A mailbox name for the wire: modified UTF-7, quoted (kept for the
    names met last: every LIST encodes every name, and Twisted's codec
    costs 1.7% of a worker's time under imaptest's mix).
    """
    return quote(name.encode("imap4-utf-7"))


def quote(value):
    """
    A quoted string or, for values that cannot be quoted, a literal.
    """
    if isinstance(value, str):
        value = value.encode("utf-8")
    if b"\r" in value or b"\n" in value or b"\x00" in value or len(value) > 1000:
        return b"{%d}\r\n%s" % (len(value), value)
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
