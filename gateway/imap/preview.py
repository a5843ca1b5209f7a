# -*- test-case-name: tests.test_imap_preview -*-
"""
PREVIEW (RFC 8970): a short plain-text preview of a message, made on
demand from its first text part (text/plain preferred, else text/html with
the markup removed), attachments skipped.
"""

import html
import re

from gateway.imap.binary import UnknownTransferEncoding, decodedBody

#: At most this many characters (RFC 8970 3).
PREVIEW_LENGTH = 256

_SPACE = re.compile(r"\s+")
_HIDDEN = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]*>")


def _textParts(entity, depth=0):
    """
    The text/* entities below C{entity} that are not attachments, in order.
    """
    if depth > 20:
        return
    disposition = (entity.header("content-disposition") or b"").strip().lower()
    if disposition.startswith(b"attachment"):
        return
    if entity.parts is not None:
        for part in entity.parts:
            yield from _textParts(part, depth + 1)
    elif entity.maintype == b"text" and entity.subtype in (b"plain", b"html"):
        yield entity


def _decodedText(entity):
    try:
        data = decodedBody(entity)
    except UnknownTransferEncoding:
        return None
    charset = (entity.param(b"charset") or b"utf-8").decode("ascii", "replace")
    try:
        return data.decode(charset)
    except (LookupError, UnicodeDecodeError):
        return data.decode("utf-8", "replace")


def makePreview(root):
    """
    The preview of the message whose L{gateway.imap.mimeparts.Entity} is
    C{root}: white space collapsed, at most L{PREVIEW_LENGTH} characters,
    C{""} when it has no text.
    """
    parts = list(_textParts(root))
    chosen = [p for p in parts if p.subtype == b"plain"] or parts
    for entity in chosen:
        text = _decodedText(entity)
        if text is None:
            continue
        if entity.subtype == b"html":
            text = html.unescape(_TAG.sub(" ", _HIDDEN.sub(" ", text)))
        text = _SPACE.sub(" ", text).strip()
        if text:
            return text[:PREVIEW_LENGTH]
    return ""
