# -*- test-case-name: tests.test_imapcheck -*-
"""
IMAP responses as a client reads them: L{ResponseReader} cuts the byte
stream into whole responses (a literal's octets, CRLFs included, stay in
their response), L{parseResponse} parses one into a L{Response} (tag or
C{*} or C{+}, number, name, response code, data tokens), L{parseTokens}
parses response data (atoms with their C{[...]} sections, quoted strings,
literals, NIL, nested lists).  Used by L{tests.imapcheck}; knows no gateway
code.
"""

import re

__all__ = ["Atom", "ParseError", "Response", "ResponseReader", "parseResponse", "parseTokens"]

_LITERAL_AT_END = re.compile(rb"~?\{(\d{1,12})\+?\}$")
_TAG = re.compile(rb"^[\x21\x23-\x24\x26-\x27\x2c-\x5b\x5d-\x7a\x7c-\x7e]+$")


class ParseError(ValueError):
    pass


class Atom(str):
    """
    An atom of a response (C{NIL} is C{None}, strings and literals are
    C{bytes}, lists are C{list}).
    """



class Response:
    """
    One parsed server response.

    @ivar kind: C{"tagged"}, C{"untagged"} or C{"continuation"}.
    @ivar tag: the tag (C{str}) of a tagged response.
    @ivar number: the number of C{* n EXISTS}-style responses, or C{None}.
    @ivar name: upper-case response name (C{OK}, C{FETCH}, C{EXISTS}...).
    @ivar code: upper-case response code name, or C{None}.
    @ivar codeArgs: the code's tokens.
    @ivar data: the tokens after the name (status responses: none).
    @ivar text: the human-readable text of a status response (C{bytes}).
    @ivar raw: the whole response as received, literals included.
    @ivar expunged: of an C{EXPUNGE} or C{VANISHED} the checker took in,
        the C{(lo, hi)} UID ranges it took out of the session (of an
        C{EXPUNGE} of a message whose UID was not learnt, the range that
        UID lay in).
    """

    expunged = ()

    def __init__(self, kind, raw):
        self.kind = kind
        self.raw = raw
        self.tag = None
        self.number = None
        self.name = None
        self.code = None
        self.codeArgs = []
        self.data = []
        self.text = b""

    def __repr__(self):
        return "<Response %s %r>" % (self.kind, self.raw[:80])


# -- framing ---------------------------------------------------------------------------


class ResponseReader:
    """
    Cuts a byte stream into whole responses: up to a CRLF that does not
    end a literal announcement, with each C{{n}} literal's octets included.
    """

    def __init__(self):
        self._buffer = b""
        self._scan = 0

    def feed(self, data):
        """
        @return: C{list} of the complete responses (C{bytes}, without the
            final CRLF) that C{data} finished.
        """
        self._buffer += data
        out = []
        buf = self._buffer
        start = 0
        pos = self._scan
        while True:
            end = buf.find(b"\r\n", pos)
            if end < 0:
                break
            match = _LITERAL_AT_END.search(buf, max(pos, end - 16), end)
            if match is not None and match.end() == end:
                after = end + 2 + int(match.group(1))
                if after > len(buf):
                    # Wait for the literal; rescan its announcement later.
                    pos = end - (match.end() - match.start())
                    break
                pos = after
                continue
            out.append(buf[start:end])
            start = pos = end + 2
        self._buffer = buf[start:]
        self._scan = max(0, pos - start)
        return out

    def pending(self):
        return len(self._buffer)


_ATOM_STOP = frozenset(b" ()\"{\r\n")
_ATOM_STOP_CODE = _ATOM_STOP | {ord("]")}


def parseTokens(data, pos=0, inCode=False):
    """
    Tokens of C{data[pos:]}: L{Atom}s, C{bytes} (quoted strings and
    literals), C{None} (NIL) and nested C{list}s.  An atom's C{[...]} part
    (C{BODY[HEADER.FIELDS (FROM)]}) is kept whole.

    @return: C{(tokens, pos)}; stops at an unmatched C{)} (or C{]} in a code).
    @raise ParseError: on malformed data.
    """
    tokens = []
    n = len(data)
    stop = _ATOM_STOP_CODE if inCode else _ATOM_STOP
    while pos < n:
        c = data[pos]
        if c == 0x20:
            pos += 1
        elif c == 0x28:  # (
            inner, pos = parseTokens(data, pos + 1, inCode)
            if pos >= n or data[pos] != 0x29:
                raise ParseError("unbalanced parenthesis")
            tokens.append(inner)
            pos += 1
        elif c == 0x29 or (inCode and c == 0x5D):
            return tokens, pos
        elif c == 0x22:  # "
            out = bytearray()
            pos += 1
            while True:
                if pos >= n:
                    raise ParseError("unterminated quoted string")
                ch = data[pos]
                if ch == 0x5C:
                    if pos + 1 >= n or data[pos + 1] not in b'"\\':
                        raise ParseError("bad escape in quoted string")
                    out.append(data[pos + 1])
                    pos += 2
                elif ch == 0x22:
                    pos += 1
                    break
                elif ch in b"\r\n":
                    raise ParseError("CR or LF in a quoted string")
                else:
                    out.append(ch)
                    pos += 1
            tokens.append(bytes(out))
        elif c == 0x7B or (c == 0x7E and data[pos + 1:pos + 2] == b"{"):  # { or ~{
            match = re.compile(rb"~?\{(\d+)\}\r\n").match(data, pos)
            if match is None:
                raise ParseError("bad literal announcement")
            size = int(match.group(1))
            start = match.end()
            if start + size > n:
                raise ParseError("literal shorter than announced")
            tokens.append(data[start:start + size])
            pos = start + size
        elif c in b"\r\n":
            raise ParseError("CR or LF outside a literal")
        else:
            start = pos
            while pos < n and data[pos] not in stop:
                if data[pos] == 0x5B and not inCode:  # [ ... ] inside an atom
                    depth = 0
                    while pos < n:
                        if data[pos] == 0x5B:
                            depth += 1
                        elif data[pos] == 0x5D:
                            depth -= 1
                            if depth == 0:
                                break
                        elif data[pos] in b"\r\n":
                            raise ParseError("CR or LF in a section")
                        pos += 1
                    if pos >= n:
                        raise ParseError("unterminated [ in an atom")
                pos += 1
            word = data[start:pos].decode("latin-1")
            tokens.append(None if word.upper() == "NIL" else Atom(word))
    return tokens, pos


_STATUS_NAMES = frozenset(["OK", "NO", "BAD", "BYE", "PREAUTH"])


def _parseStatus(response, data, pos):
    """
    The rest of a status response: an optional C{[CODE args]}, then text.
    """
    if data[pos:pos + 1] == b"[":
        close = _codeEnd(data, pos)
        inner, _ = parseTokens(data[pos + 1:close], 0, inCode=True)
        if not inner or not isinstance(inner[0], Atom):
            raise ParseError("empty response code")
        response.code = inner[0].upper()
        response.codeArgs = inner[1:]
        pos = close + 1
        if data[pos:pos + 1] == b" ":
            pos += 1
    response.text = data[pos:]


def _codeEnd(data, pos):
    """
    The index of the C{]} closing the response code opened at C{pos}
    (skipping quoted strings and nested parentheses).
    """
    i = pos + 1
    inQuote = False
    while i < len(data):
        ch = data[i]
        if inQuote:
            if ch == 0x5C:
                i += 1
            elif ch == 0x22:
                inQuote = False
        elif ch == 0x22:
            inQuote = True
        elif ch == 0x5D:
            return i
        i += 1
    raise ParseError("unterminated response code")


_NUMBER = re.compile(rb"(\d+) ")
_NAME = re.compile(rb"[A-Za-z0-9.\-]+")


def parseResponse(raw):
    """
    Parse one response (as cut by L{ResponseReader}).

    @raise ParseError: when it is not a well-formed response.
    """
    if raw.startswith(b"+"):
        response = Response("continuation", raw)
        response.text = raw[2:]
        return response
    first, space, _ = raw.partition(b" ")
    if not space:
        raise ParseError("response without a space after its tag")
    if first == b"*":
        response = Response("untagged", raw)
    elif _TAG.match(first):
        response = Response("tagged", raw)
        response.tag = first.decode("ascii")
    else:
        raise ParseError("line is not *, + or a tag")
    pos = len(first) + 1
    if response.kind == "untagged":
        match = _NUMBER.match(raw, pos)
        if match is not None:
            response.number = int(match.group(1))
            pos = match.end()
    match = _NAME.match(raw, pos)
    if match is None:
        raise ParseError("no response name")
    response.name = match.group().upper().decode("ascii")
    pos = match.end()
    if raw[pos:pos + 1] == b" ":
        pos += 1
    elif pos != len(raw):
        raise ParseError("no space after the response name")
    if response.kind == "tagged" and response.name not in ("OK", "NO", "BAD"):
        raise ParseError("tagged response that is not OK, NO or BAD")
    if response.name in _STATUS_NAMES:
        _parseStatus(response, raw, pos)
    else:
        tokens, end = parseTokens(raw, pos)
        if end != len(raw):
            raise ParseError("unbalanced parenthesis")
        response.data = tokens
    return response
