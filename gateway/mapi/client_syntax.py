# -*- test-case-name: tests.test_mapi_client -*-
"""
IMAP response syntax for the XMAPI reference client: a tokenizer for
responses that may carry literals, nested lists, C{NIL} and quoted strings,
and the quoting of command arguments.

A response arrives as I{pieces}: its text lines, each but the last ending
with a literal's C{{n}}, and the literals' octets between them.  L{parse}
turns them into Python values: an L{Atom} (a C{str}) for atoms, C{int} for
numbers, C{None} for C{NIL}, C{str} for quoted strings, C{bytes} for
literals, and C{list} for parenthesized lists.
"""

import re

import twisted.mail.imap4  # noqa: F401 (registers the imap4-utf-7 codec)


class Atom(str):
    """
    An IMAP atom (or a flag, or an atom with a C{[section]}), as opposed to
    a quoted string with the same text.
    """


class ResponseSyntaxError(ValueError):
    """
    A server response this client cannot parse.
    """


_LITERAL_END = re.compile(rb"~?\{(\d+)\+?\}\Z")
_ATOM_STOP = b' ()"\r\n{'


def literalLength(line):
    """
    The length a line announces for the literal after it, or C{None}.
    """
    match = _LITERAL_END.search(line)
    return int(match.group(1)) if match else None


def parse(pieces):
    """
    Parse a response's pieces into a list of values.

    @param pieces: C{list} alternating C{bytes} text and C{bytes} literal
        octets, text first and last.
    @return: C{list} of values (see the module docstring).
    @raise ResponseSyntaxError: on unbalanced parentheses or a bad quote.
    """
    stack = [[]]
    for index in range(0, len(pieces), 2):
        text = pieces[index]
        literal = pieces[index + 1] if index + 1 < len(pieces) else None
        if literal is not None:
            match = _LITERAL_END.search(text)
            text = text[:match.start()]
        _tokenize(text, stack)
        if literal is not None:
            stack[-1].append(literal)
    if len(stack) != 1:
        raise ResponseSyntaxError("unbalanced parentheses")
    return stack[0]


def _tokenize(text, stack):
    pos, length = 0, len(text)
    while pos < length:
        char = text[pos:pos + 1]
        if char == b" ":
            pos += 1
        elif char == b"(":
            stack.append([])
            pos += 1
        elif char == b")":
            if len(stack) == 1:
                raise ResponseSyntaxError("unbalanced parentheses")
            done = stack.pop()
            stack[-1].append(done)
            pos += 1
        elif char == b'"':
            value, pos = _quoted(text, pos + 1)
            stack[-1].append(value)
        else:
            end = pos
            depth = 0
            while end < length:
                c = text[end:end + 1]
                if c == b"[":
                    depth += 1
                elif c == b"]":
                    depth -= 1
                elif depth <= 0 and c in _ATOM_STOP:
                    break
                end += 1
            if end == pos:
                raise ResponseSyntaxError("unexpected %r" % (char,))
            stack[-1].append(_atom(text[pos:end]))
            pos = end


def _quoted(text, pos):
    out = bytearray()
    while pos < len(text):
        c = text[pos]
        if c == 0x5C and pos + 1 < len(text):
            out.append(text[pos + 1])
            pos += 2
        elif c == 0x22:
            return out.decode("utf-8", "replace"), pos + 1
        else:
            out.append(c)
            pos += 1
    raise ResponseSyntaxError("unterminated quoted string")


def _atom(raw):
    text = raw.decode("utf-8", "replace")
    if text.isdigit():
        return int(text)
    if text.upper() == "NIL":
        return None
    return Atom(text)


_SAFE = re.compile(r'[\x20-\x7e]*\Z')


def quote(value):
    """
    An IMAP string for C{value}: a quoted string when it can hold it, else
    a literal marker (the caller sends literals, see L{Literal}).

    @param value: C{str} or C{bytes}.
    @return: C{bytes}, or a L{Literal} for text a quoted string cannot hold.
    """
    if isinstance(value, bytes):
        return Literal(value)
    if _SAFE.match(value) and len(value) < 1024:
        return b'"' + value.replace("\\", "\\\\").replace('"', '\\"').encode("ascii") + b'"'
    return Literal(value.encode("utf-8"))


def mailbox(name):
    """
    A mailbox name as an IMAP astring in modified UTF-7 (RFC 3501 5.1.3).
    """
    return quote(name.encode("imap4-utf-7").decode("ascii"))


def decodeMailbox(value):
    """
    A mailbox name from a response (modified UTF-7) as text.
    """
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    try:
        return value.encode("ascii").decode("imap4-utf-7")
    except (UnicodeError, ValueError):
        return value


class Literal:
    """
    Octets a command sends as a literal.
    """

    def __init__(self, data):
        self.data = data

    def __repr__(self):
        return "Literal(%d octets)" % (len(self.data),)


def parseSequenceSet(text):
    """
    The numbers of a sequence set such as C{1:3,7} (no C{*}).
    """
    numbers = []
    for part in str(text).split(","):
        if ":" in part:
            low, high = sorted(int(n) for n in part.split(":"))
            numbers.extend(range(low, high + 1))
        elif part:
            numbers.append(int(part))
    return numbers


def formatSequenceSet(numbers):
    """
    A compact sequence set (C{1:3,7}) for C{numbers}.
    """
    numbers = sorted(set(numbers))
    runs = []
    for n in numbers:
        if runs and runs[-1][1] == n - 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ",".join(str(a) if a == b else "%d:%d" % (a, b) for a, b in runs)


_CODE = re.compile(rb"\A\[([^\]]*)\]\s?")


def splitStatus(text):
    """
    Split the text after C{OK}/C{NO}/C{BAD} into its response code (a
    parsed list, or C{None}) and its human text.
    """
    match = _CODE.match(text)
    if match is None:
        return None, text.decode("utf-8", "replace")
    try:
        code = parse([match.group(1)])
    except ResponseSyntaxError:
        code = [Atom(match.group(1).decode("utf-8", "replace"))]
    return code, text[match.end():].decode("utf-8", "replace")
