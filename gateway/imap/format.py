# -*- test-case-name: tests.test_imap_protocol -*-
"""
Small response formatters shared by the command modules.
"""

from gateway import caches
from gateway.imap.parser import encodeMailbox, quote

__all__ = ["formatFlags", "flagList", "encodeMailbox", "quote", "SYSTEM_FLAGS"]

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


def formatFlags(flags):
    """
    A parenthesized flag list, system flags first, as C{bytes}.
    """
    ordered = [f for f in SYSTEM_FLAGS if f in flags] + ["\\Recent"] * ("\\Recent" in flags)
    ordered += sorted(f for f in flags if f not in SYSTEM_FLAGS and f != "\\Recent")
    return b"(" + " ".join(ordered).encode("utf-8", "replace") + b")"


_FLAG_LISTS = caches.kept({}, "gateway.imap.format flag lists")


def flagList(flags, recent=False):
    """
    L{formatFlags} of C{flags} (a C{frozenset}, or a C{set}), with
    C{\\Recent} added when C{recent}; remembered per distinct value, since
    a mailbox has few distinct flag combinations.
    """
    key = (frozenset(flags), recent)
    text = _FLAG_LISTS.get(key)
    if text is None:
        if len(_FLAG_LISTS) >= 4096:
            _FLAG_LISTS.clear()
        text = _FLAG_LISTS[key] = formatFlags(key[0] | {"\\Recent"} if recent else key[0])
    return text


_SYSTEM_LOWER = {f.lower() for f in SYSTEM_FLAGS} | {"\\recent"}


def badFlags(flags):
    """
    The flags of C{flags} that cannot be stored: unknown C{\\} system flags
    and non-atoms.
    """
    return [f for f in flags if not isinstance(f, str)
            or (f.startswith("\\") and f.lower() not in _SYSTEM_LOWER)]
