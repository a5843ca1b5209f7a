# -*- test-case-name: tests.test_imap_utf8 -*-
"""
C{UTF8=ACCEPT} (RFC 6855): after C{ENABLE UTF8=ACCEPT} the session's
mailbox names are UTF-8 (L{gateway.imap.names}), quoted strings may hold
UTF-8 (the tokenizer always took any octet but CR, LF, C{"} and C{\\}),
SEARCH names no CHARSET (3), and APPEND takes a message as C{UTF8
(~{n}...)} (4).

Messages are returned as stored, with or without ENABLE: a message whose
header fields are raw UTF-8 (RFC 6532) reaches a session that did not
enable UTF-8 unchanged, not downgraded (RFC 6855 5 leaves it to the
server; RFC 6857's downgrade is not done).  Its ENVELOPE strings with
8-bit octets are literals, which IMAP4rev1's grammar allows (its quoted
strings are 7-bit).
"""

from gateway.imap.commands_auth import ENABLEABLE
from gateway.imap.parser import IMAPSyntaxError
from gateway.imap.protocol import bad, capability

capability("UTF8=ACCEPT")
ENABLEABLE.add("UTF8=ACCEPT")


def utf8Enabled(session):
    """
    Whether the client sent C{ENABLE UTF8=ACCEPT}.
    """
    return "UTF8=ACCEPT" in session.enabled


def isUTF8Data(args):
    """
    Whether the next APPEND argument is the C{UTF8 (...)} data extension.
    """
    return args.data[args.pos:args.pos + 6].upper() == b"UTF8 ("


def utf8Message(session, args):
    """
    The message of C{UTF8 (~{n}\\r\\n...)} (RFC 6855 4), C{bytes} or a
    file as L{gateway.imap.parser.Arguments.literal} gives it.  Python's
    imaplib sends C{{n}} without the C{~}: taken too.

    @raise Response: C{BAD} when the session did not enable UTF-8.
    """
    if not utf8Enabled(session):
        raise bad("APPEND UTF8 needs ENABLE UTF8=ACCEPT first")
    args.pos += 6
    if args.peek() == b"~":
        args.pos += 1
    message = args.literal()
    if args.peek() != b")":
        if not isinstance(message, bytes):
            message.close()
        raise IMAPSyntaxError("APPEND UTF8 needs one literal in parentheses")
    args.pos += 1
    return message


def checkSearchCharset(session, program):
    """
    RFC 6855 3: a client that enabled UTF-8 must not name a CHARSET in
    SEARCH; the server should answer BAD.
    """
    if program.charset is not None and utf8Enabled(session):
        raise bad("SEARCH CHARSET is not allowed after ENABLE UTF8=ACCEPT")
