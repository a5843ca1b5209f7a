# -*- test-case-name: tests.test_imap_catenate -*-
"""
CATENATE (RFC 4469): an APPEND message built from literal text and parts
of messages already on this server, named by IMAP URLs (RFC 5092).

A URL names a message of a mailbox the session may read (C{r}), checked
through the same access as FETCH; its part is what C{BODY.PEEK[section]
<partial>} would answer.  A URL with an authority (C{imap://user@host/...})
is taken to name this server: the path decides, as for a relative URL.
"""

import re
import urllib.parse

from gateway.errors import StoreError
from gateway.imap.message import sectionBytes
from gateway.imap.parser import decodeMailbox
from gateway.imap.protocol import bad, capability, no

capability("CATENATE")

_AUTHORITY = re.compile(r"imap://[^/]*", re.I)
_NUMBER = re.compile(r"[1-9][0-9]{0,9}\Z")


def parseUrl(url):
    """
    The parts of an IMAP message URL: C{(mailbox, uidValidity or None,
    uid, section or None, partial or None)}, C{partial} being C{(offset,
    count or None)}.

    @raise ValueError: when C{url} does not name one message.
    """
    match = _AUTHORITY.match(url)
    path = url[match.end():] if match else url
    if not path.startswith("/"):
        raise ValueError("not an IMAP message URL")
    box, sep, rest = path[1:].partition("/;")
    if not sep or not box:
        raise ValueError("the URL names no message")
    uidValidity = None
    if ";" in box:
        box, _, param = box.partition(";")
        key, _, value = param.partition("=")
        if key.upper() != "UIDVALIDITY" or not _NUMBER.match(value):
            raise ValueError("bad UIDVALIDITY")
        uidValidity = int(value)
    mailbox = decodeMailbox(urllib.parse.unquote_to_bytes(box))
    uid = section = partial = None
    for number, item in enumerate(rest.split("/;")):
        for param in item.split(";"):
            key, _, value = param.partition("=")
            key = key.upper()
            if key == "UID" and number == 0 and uid is None and _NUMBER.match(value):
                uid = int(value)
            elif key == "SECTION" and section is None and value:
                section = urllib.parse.unquote(value)
            elif key == "PARTIAL" and partial is None and re.match(r"[0-9]{1,10}(\.[1-9][0-9]{0,9})?\Z", value):
                offset, _, count = value.partition(".")
                partial = (int(offset), int(count) if count else None)
            else:
                raise ValueError("bad URL part %r" % (param[:30],))
    if uid is None:
        raise ValueError("the URL names no UID")
    return mailbox, uidValidity, uid, section, partial


def catenate(parts, openSource):
    """
    The message a CATENATE list makes.

    @param parts: the parsed list: C{TEXT} followed by C{bytes} (or a file
        of a large literal), C{URL} followed by the URL.
    @param openSource: C{openSource(name)} opens a mailbox for reading
        with the session's rights (raising L{StoreError}).
    @return: C{bytes}.
    @raise gateway.imap.protocol.Response: C{BAD} for a malformed list,
        C{NO [BADURL "url"]} for a URL that names nothing readable.
    """
    if not parts or len(parts) % 2:
        raise bad("CATENATE needs TEXT and URL parts")
    pieces = []
    for kind, value in zip(parts[::2], parts[1::2], strict=True):
        kind = kind.upper() if isinstance(kind, str) else None
        if kind == "TEXT" and not isinstance(value, (str, list)):
            if not isinstance(value, bytes):
                try:
                    value = value.read()
                finally:
                    value.close()
            pieces.append(value)
        elif kind == "URL" and isinstance(value, (str, bytes)):
            url = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            pieces.append(_urlPart(url, openSource))
        else:
            raise bad("CATENATE parts are TEXT literal or URL url")
    return b"".join(pieces)


def _urlPart(url, openSource):
    refused = no('[BADURL "%s"] The URL names no message you may read' % (url.replace('"', "%22")[:200],))
    try:
        name, uidValidity, uid, section, partial = parseUrl(url)
        mailbox = openSource(name)
        if uidValidity is not None and uidValidity != mailbox.uidValidity:
            raise refused
        infos = mailbox.messages([uid])
        if not infos:
            raise refused
        return sectionBytes(infos[0], lambda: mailbox.openMessage(uid), section or "", partial)
    except (ValueError, StoreError):
        raise refused from None
