# -*- test-case-name: tests.test_imap_protocol -*-
"""
Small response formatters shared by the command modules.
"""

from gateway.imap.parser import encodeMailbox, quote

__all__ = ["formatFlags", "encodeMailbox", "quote", "SYSTEM_FLAGS"]

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


def formatFlags(flags):
    """
    A parenthesized flag list, system flags first, as C{bytes}.
    """
    ordered = [f for f in SYSTEM_FLAGS if f in flags] + ["\\Recent"] * ("\\Recent" in flags)
    ordered += sorted(f for f in flags if f not in SYSTEM_FLAGS and f != "\\Recent")
    return b"(" + " ".join(ordered).encode("utf-8", "replace") + b")"


_SYSTEM_LOWER = {f.lower() for f in SYSTEM_FLAGS} | {"\\recent"}


def badFlags(flags):
    """
    The flags of C{flags} that cannot be stored: unknown C{\\} system flags
    and non-atoms.
    """
    return [f for f in flags if not isinstance(f, str)
            or (f.startswith("\\") and f.lower() not in _SYSTEM_LOWER)]
