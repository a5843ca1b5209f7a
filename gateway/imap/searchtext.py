# -*- test-case-name: tests.test_imap_search -*-
"""
The texts SEARCH compares: header values with RFC 2047 words decoded
(L{decodeHeader}, also used by SORT and THREAD), the decoded text parts
and inner headers of a whole message, and L{Candidate}, one message being
matched with its headers and body read lazily.
"""

import base64
import binascii
import datetime
import email.parser
import email.policy
import email.utils
import re

from gateway.imap import mimeparts

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


class Candidate:
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
