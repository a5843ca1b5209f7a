# -*- test-case-name: tests.test_imap_utf8 -*-
"""
Mailbox names on the wire, per session: modified UTF-7 (RFC 3501 5.1.3)
for a client that did not ask for more, UTF-8 once it ENABLEd
C{UTF8=ACCEPT} (RFC 6855 3) or C{IMAP4rev2} (RFC 9051 5.1).

The store keeps names as C{str}; a mailbox created by a UTF-8 session as
C{"Été"} is C{"&AMk-t&AOk-"} to a session that did not enable UTF-8, and
the other way round.  In a UTF-8 session C{&} is an ordinary character.

A session holds one codec (C{session.names}); the parser's
L{gateway.imap.parser.Arguments.mailbox} and every response that carries
a mailbox name go through it.
"""

from zope.interface import implementer

from gateway.imap.parser import NotModifiedUTF7, decodeMailbox, encodeMailbox, quote
from gateway.interfaces import IMailboxNameCodec

#: The ENABLE names that switch a session's mailbox names to UTF-8.
UTF8_EXTENSIONS = frozenset(["UTF8=ACCEPT", "IMAP4REV2"])


class NotUTF8(NotModifiedUTF7):
    """
    A mailbox name or pattern from a UTF-8 session that is not UTF-8: no
    mailbox has that name (C{NO}, as for a bad modified UTF-7 name).
    """


@implementer(IMailboxNameCodec)
class ModifiedUTF7Names:
    """
    Names as modified UTF-7, what every IMAP4rev1 client expects.
    """

    utf8 = False

    def decode(self, raw):
        return decodeMailbox(raw)

    def encode(self, name):
        return encodeMailbox(name)


@implementer(IMailboxNameCodec)
class UTF8Names:
    """
    Names as UTF-8 quoted strings (RFC 6855 3, RFC 9051 5.1).
    """

    utf8 = True

    def decode(self, raw):
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise NotUTF8("mailbox name is not valid UTF-8") from None
        if any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 or c in "\u2028\u2029" for c in name):
            # RFC 6855 3, RFC 9051 5.1: no control characters, DEL, line
            # or paragraph separators.
            raise NotUTF8("mailbox name contains control characters")
        if name.upper() == "INBOX":
            return "INBOX"
        return name

    def encode(self, name):
        try:
            data = name.encode("utf-8")
        except UnicodeEncodeError:
            # A name read from the disk that was not UTF-8: its octets.
            data = name.encode("utf-8", "surrogateescape")
        return quote(data)


MUTF7 = ModifiedUTF7Names()
UTF8 = UTF8Names()


def codecFor(enabled):
    """
    The codec for a session that ENABLEd the extensions C{enabled}.
    """
    return UTF8 if enabled & UTF8_EXTENSIONS else MUTF7
