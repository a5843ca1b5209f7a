# -*- test-case-name: tests.test_imap_urlauth -*-
"""
IMAP URLs naming one message or part (RFC 5092), as CATENATE (RFC 4469)
and URLAUTH (RFC 4467) read them: L{parseImapUrl}.

The mailbox of a URL is its name in UTF-8, percent-encoded (RFC 5092 3:
C{Entw%C3%BCrfe}), whatever the encoding of the session that sends it; the
name is the one the URL's user (or, for a relative URL, the session) sees.
"""

import datetime
import re
import urllib.parse

import attr

_AUTHORITY = re.compile(r"imap://([^/]*)", re.I)
_NUMBER = re.compile(r"[1-9][0-9]{0,9}\Z")
_PARTIAL = re.compile(r"[0-9]{1,10}(\.[1-9][0-9]{0,9})?\Z")
_URLAUTH = re.compile(r";URLAUTH=", re.I)
_VERIFIER = re.compile(r"([A-Za-z0-9+._-]+):([0-9A-Fa-f]{32,})\Z")
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})\Z",
                       re.I)


@attr.s(frozen=True)
class ImapUrl:
    """
    A parsed IMAP message URL.

    @ivar user: the URL's user (C{iuserinfo} without C{;AUTH=}), or C{None}.
    @ivar host: the C{host[:port]} of an absolute URL, or C{None}.
    @ivar mailbox: the mailbox name (C{str}).
    @ivar uidValidity: C{int} or C{None}.
    @ivar uid: C{int}.
    @ivar section: the section text or C{None}.
    @ivar partial: C{(offset, count or None)} or C{None}.
    @ivar expire: an aware C{datetime} (C{;EXPIRE=}) or C{None}.
    @ivar access: the URLAUTH access identifier (C{"anonymous"},
        C{"authuser"}, C{"user+fred"}, C{"submit+fred"}) or C{None}.
    @ivar mechanism: the URLAUTH mechanism, upper case, or C{None} for a
        rump URL (GENURLAUTH's argument).
    @ivar token: the authorization token, lower-case hex, or C{None}.
    @ivar rump: the URL up to and including C{;URLAUTH=access} (what the
        token authorizes), or C{None}.
    """

    user = attr.ib()
    host = attr.ib()
    mailbox = attr.ib()
    uidValidity = attr.ib()
    uid = attr.ib()
    section = attr.ib(default=None)
    partial = attr.ib(default=None)
    expire = attr.ib(default=None)
    access = attr.ib(default=None)
    mechanism = attr.ib(default=None)
    token = attr.ib(default=None)
    rump = attr.ib(default=None)


def _unquote(text):
    """
    Percent-decode C{text} as UTF-8 (RFC 5092 3).

    @raise ValueError: not UTF-8, or control characters.
    """
    value = urllib.parse.unquote_to_bytes(text).decode("utf-8")
    if any(ord(c) < 0x20 or ord(c) == 0x7f for c in value):
        raise ValueError("control characters in the URL")
    return value


def _access(text):
    lowered = text.lower()
    if lowered in ("anonymous", "authuser"):
        return lowered
    for prefix in ("submit+", "user+"):
        if lowered.startswith(prefix) and len(text) > len(prefix):
            return prefix + _unquote(text[len(prefix):])
    raise ValueError("bad URLAUTH access identifier")


def _expire(text):
    if not _DATETIME.match(text):
        raise ValueError("bad EXPIRE date-time")
    value = datetime.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    return value


def parseImapUrl(url):
    """
    Parse an IMAP URL naming one message (or part of it), absolute
    (C{imap://user@host/...}) or relative (C{/mailbox/;UID=n}), with
    optional C{;EXPIRE=} and C{;URLAUTH=access[:mechanism:token]}.

    @return: an L{ImapUrl}.
    @raise ValueError: when C{url} does not name one message.
    """
    user = host = None
    match = _AUTHORITY.match(url)
    if match:
        userinfo, at, host = match.group(1).rpartition("@")
        if at:
            userinfo = re.split(";auth=", userinfo, flags=re.I)[0]
            user = _unquote(userinfo) if userinfo else None
        path = url[match.end():]
    else:
        path = url
    if not path.startswith("/"):
        raise ValueError("not an IMAP message URL")
    access = mechanism = token = rump = None
    found = list(_URLAUTH.finditer(path))
    if found:
        start = found[-1]
        accessText, colon, verifier = path[start.end():].partition(":")
        access = _access(accessText)
        if colon:
            proof = _VERIFIER.match(verifier)
            if proof is None:
                raise ValueError("bad URLAUTH verifier")
            mechanism, token = proof.group(1).upper(), proof.group(2).lower()
        rump = url[:len(url) - len(path) + start.end() + len(accessText)]
        path = path[:start.start()]
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
    mailbox = _unquote(box)
    if mailbox.upper() == "INBOX":
        mailbox = "INBOX"
    uid = section = partial = expire = None
    for number, item in enumerate(rest.split("/;")):
        for param in item.split(";"):
            key, _, value = param.partition("=")
            key = key.upper()
            if key == "UID" and number == 0 and uid is None and _NUMBER.match(value):
                uid = int(value)
            elif key == "SECTION" and section is None and value:
                section = urllib.parse.unquote(value)
            elif key == "PARTIAL" and partial is None and _PARTIAL.match(value):
                offset, _, count = value.partition(".")
                partial = (int(offset), int(count) if count else None)
            elif key == "EXPIRE" and rump is not None and expire is None:
                expire = _expire(value)
            else:
                raise ValueError("bad URL part %r" % (param[:30],))
    if uid is None:
        raise ValueError("the URL names no UID")
    return ImapUrl(user, host, mailbox, uidValidity, uid, section, partial, expire, access, mechanism, token, rump)
