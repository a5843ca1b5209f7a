# -*- test-case-name: tests.test_imap_catenate -*-
"""
CATENATE (RFC 4469): an APPEND message built from literal text and parts
of messages already on this server, named by IMAP URLs (RFC 5092).

A URL names a message of a mailbox the session may read (C{r}), checked
through the same access as FETCH; its part is what C{BODY.PEEK[section]
<partial>} would answer.  A URL with an authority (C{imap://user@host/...})
is taken to name this server; its user decides whose mailbox the path
names (L{scopedName}), the session's rights whether it may be read.
"""

from gateway.errors import StoreError
from gateway.imap.imapurl import parseImapUrl
from gateway.imap.message import sectionBytes
from gateway.imap.protocol import bad, capability, no

capability("CATENATE")


def parseUrl(url):
    """
    The parts of an IMAP message URL: C{(mailbox, uidValidity or None,
    uid, section or None, partial or None)}, C{partial} being C{(offset,
    count or None)}; the mailbox is UTF-8, percent-encoded (RFC 5092 3).

    @raise ValueError: when C{url} does not name one message.
    """
    parsed = parseImapUrl(url)
    return parsed.mailbox, parsed.uidValidity, parsed.uid, parsed.section, parsed.partial


def scopedName(parsed):
    """
    The name, as the session sees it, of the mailbox of a URL: a URL with
    a user names that user's mailbox (RFC 5092 3.1), C{~user/name}, which
    is the session's own when the user is the session's; a name that is
    already another account's (C{~boss/...}) stays as it is.

    @raise ValueError: for a user that cannot be an account's name.
    """
    if parsed.user is None or parsed.mailbox.startswith("~"):
        return parsed.mailbox
    if "/" in parsed.user or not parsed.user.strip():
        raise ValueError("not a user name")
    return "~%s/%s" % (parsed.user, parsed.mailbox)


def catenate(parts, openSource, authorized=None):
    """
    The message a CATENATE list makes.

    @param parts: the parsed list: C{TEXT} followed by C{bytes} (or a file
        of a large literal), C{URL} followed by the URL.
    @param openSource: C{openSource(name)} opens a mailbox for reading
        with the session's rights (raising L{StoreError}).
    @param authorized: C{authorized(url)} gives the octets a URLAUTH URL
        (RFC 4467, C{;URLAUTH=}) grants, or C{None}; such a URL may name
        another account's mailbox (RFC 4469 5).  C{None}: no URLAUTH.
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
            pieces.append(_urlPart(url, openSource, authorized))
        else:
            raise bad("CATENATE parts are TEXT literal or URL url")
    return b"".join(pieces)


def _urlPart(url, openSource, authorized=None):
    refused = no('[BADURL "%s"] The URL names no message you may read' % (url.replace('"', "%22")[:200],))
    try:
        parsed = parseImapUrl(url)
        if parsed.access is not None:
            data = authorized(url) if authorized is not None else None
            if data is None:
                raise refused
            return data
        name, uidValidity, uid, section, partial = (
            scopedName(parsed), parsed.uidValidity, parsed.uid, parsed.section, parsed.partial)
        mailbox = openSource(name)
        if uidValidity is not None and uidValidity != mailbox.uidValidity:
            raise refused
        infos = mailbox.messages([uid])
        if not infos:
            raise refused
        return sectionBytes(infos[0], lambda: mailbox.openMessage(uid), section or "", partial)
    except (ValueError, StoreError):
        raise refused from None
