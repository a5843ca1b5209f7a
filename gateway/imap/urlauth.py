# -*- test-case-name: tests.test_imap_urlauth -*-
"""
URLAUTH (RFC 4467): URLs that carry their own authorization to a message
or part, so that another user (or anyone) may fetch it without rights on
the mailbox.

    - C{GENURLAUTH url INTERNAL ...}: a rump URL (C{imap://user@host/
      mailbox/;UID=n[/;SECTION=s][;EXPIRE=t];URLAUTH=access}) whose user
      is the session's gets C{:INTERNAL:token}, the token being the
      HMAC-SHA1 (RFC 2104) of the rump under the mailbox access key
      (RFC 4467 7), 40 hex digits.
    - C{URLFETCH url ...}: C{* URLFETCH url data} with the part's octets,
      or C{NIL} for a URL that is not valid, expired, revoked, not for
      this session, or names something the URL's user may no longer read
      (C{r} on the mailbox, checked through the access layer as that user
      now); the answer never says which.
    - C{RESETKEY [mailbox [mechanism ...]]}: the key of one mailbox, or of
      every mailbox, is removed (every URL made with it stops working; the
      next GENURLAUTH makes a new one).

Access identifiers: C{anonymous} and C{authuser} (any logged-in session,
which URLFETCH needs anyway), C{user+name} (only the session of that
account), C{submit+name}: only for a submission server acting for
C{name}; gateway has none, so such a URL is made but fetches C{NIL} from
any IMAP session.  A user name without C{@} is in the domain of the session
that reads the URL.  Keys are kept per account and mailbox
(L{gateway.store.urlauthkeys}); C{INTERNAL} is the one mechanism.

CATENATE (RFC 4469 5) takes URLAUTH URLs through L{fetchUrl}: a part of
another account's mailbox when its owner granted it.
"""

import datetime
import hashlib
import hmac

from gateway.errors import StoreError
from gateway.imap.commands_mailbox import nameArgument, storeError
from gateway.imap.imapurl import parseImapUrl
from gateway.imap.message import sectionBytes
from gateway.imap.parser import quote
from gateway.imap.protocol import AUTH, capability, command, no
from gateway.store.urlauthkeys import URLAuthKeys

MECHANISMS = ("INTERNAL",)

capability("URLAUTH")


def _owner(user, domain):
    user = user.lower()
    return user if "@" in user else "%s@%s" % (user, domain)


def _domain(address):
    return address.rpartition("@")[2]


def _keyOf(layer, owner, mailbox, create=False):
    """
    The access key of C{owner}'s mailbox C{mailbox} (an L{IMailbox} opened
    as C{owner}), or C{None}.
    """
    access = layer.forViewer(owner)
    name = access.nameOf(access.resolve(mailbox.name))
    return URLAuthKeys(layer.storeOf(owner).path).key(name, mailbox.uidValidity, create)


def token(key, rump):
    """
    The C{INTERNAL} token of a rump URL: HMAC-SHA1, lower-case hex.
    """
    return hmac.new(key, rump.encode("utf-8"), hashlib.sha1).hexdigest()


def _readMessage(mailbox, parsed):
    """
    The part a URL names in C{mailbox}, or C{None}.
    """
    if parsed.uidValidity is not None and parsed.uidValidity != mailbox.uidValidity:
        return None
    infos = mailbox.messages([parsed.uid])
    if not infos:
        return None
    return sectionBytes(infos[0], lambda: mailbox.openMessage(parsed.uid), parsed.section or "", parsed.partial)


def fetchUrl(session, url):
    """
    The octets a URLAUTH URL grants to C{session}, or C{None} when it
    grants nothing (for any reason: the caller does not say which).
    """
    account = session.account
    try:
        parsed = parseImapUrl(url)
        if parsed.user is None or parsed.mechanism not in MECHANISMS:
            return None
        if parsed.expire is not None:
            now = datetime.datetime.fromtimestamp(session.reactor.seconds(), datetime.timezone.utc)
            if now >= parsed.expire:
                return None
        domain = _domain(account.address)
        kind, _, name = parsed.access.partition("+")
        if kind == "submit":
            return None
        if kind == "user" and _owner(name, domain) != account.address:
            return None
        layer = account.access.layer
        owner = _owner(parsed.user, domain)
        # The maker's rights now (r), as if the maker fetched it.
        mailbox = layer.forViewer(owner).getMailbox(parsed.mailbox, "r")
        key = _keyOf(layer, owner, mailbox)
        if key is None or not hmac.compare_digest(token(key, parsed.rump), parsed.token):
            return None
        return _readMessage(mailbox, parsed)
    except (ValueError, StoreError):
        return None


@command("GENURLAUTH", AUTH, capability="URLAUTH")
def do_GENURLAUTH(session, tag, args):
    pairs = []
    while True:
        args.space()
        url = args.astring()
        args.space()
        pairs.append((url, args.atom()))
        if args.atEnd():
            break
    args.end()
    account = session.account
    results = []
    for raw, mechanism in pairs:
        if mechanism.upper() not in MECHANISMS:
            raise no("Unsupported URLAUTH mechanism %s" % (mechanism[:30],))
        try:
            url = raw.decode("utf-8")
            parsed = parseImapUrl(url)
        except ValueError:
            raise no("Not a valid URLAUTH rump URL") from None
        if parsed.user is None or parsed.rump is None or parsed.mechanism is not None or parsed.rump != url:
            raise no("Not a valid URLAUTH rump URL")
        if _owner(parsed.user, _domain(account.address)) != account.address:
            raise no("The URL's user is not the session's")
        try:
            mailbox = account.access.getMailbox(parsed.mailbox, "r")
            if parsed.uidValidity is not None and parsed.uidValidity != mailbox.uidValidity:
                raise no("UIDVALIDITY does not match")
            key = _keyOf(account.access.layer, account.address, mailbox, create=True)
        except StoreError as e:
            raise storeError(e) from None
        results.append(quote("%s:INTERNAL:%s" % (url, token(key, url))))
    session.sendUntagged(b"GENURLAUTH " + b" ".join(results))
    return ("OK", "GENURLAUTH completed")


@command("URLFETCH", AUTH, capability="URLAUTH")
def do_URLFETCH(session, tag, args):
    urls = []
    while True:
        args.space()
        urls.append(args.astring())
        if args.atEnd():
            break
    args.end()
    parts = []
    for raw in urls:
        try:
            url = raw.decode("utf-8")
        except UnicodeDecodeError:
            data = None
        else:
            data = fetchUrl(session, url)
        parts.append(quote(raw) + b" " + (b"NIL" if data is None else b"{%d}\r\n%s" % (len(data), data)))
    session.sendUntagged(b"URLFETCH " + b" ".join(parts))
    return ("OK", "URLFETCH completed")


@command("RESETKEY", AUTH, capability="URLAUTH")
def do_RESETKEY(session, tag, args):
    account = session.account
    keys = URLAuthKeys(account.access.layer.storeOf(account.address).path)
    if args.atEnd():
        keys.reset()
        return ("OK", "All keys removed")
    args.space()
    name = nameArgument(args)
    while not args.atEnd():
        args.space()
        mechanism = args.atom()
        if mechanism.upper() not in MECHANISMS:
            raise no("Unsupported URLAUTH mechanism %s" % (mechanism[:30],))
    args.end()
    try:
        mailbox = account.access.getMailbox(name, "r")
        access = account.access
        keys.reset(access.nameOf(access.resolve(mailbox.name)))
    except StoreError as e:
        raise storeError(e) from None
    return ("OK", "[URLMECH INTERNAL] Key reset")

