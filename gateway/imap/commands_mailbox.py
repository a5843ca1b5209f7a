# -*- test-case-name: tests.test_imap_mailbox -*-
"""
Authenticated-state commands: SELECT, EXAMINE, CREATE, DELETE, RENAME,
SUBSCRIBE, UNSUBSCRIBE, LIST (with LIST-EXTENDED, LIST-STATUS, SPECIAL-USE,
CHILDREN), LSUB, STATUS and NAMESPACE.  APPEND is in
L{gateway.imap.commands_append}, QUOTA in L{gateway.imap.commands_quota}
(QUOTA's capabilities are still announced here, in the order clients saw).
"""


from twisted.internet import defer

from gateway.errors import (
    InvalidMailboxName,
    MailboxExists,
    MailboxHasChildren,
    MailboxNameLimit,
    NoSuchMailbox,
    PermissionDenied,
    QuotaExceeded,
    StoreError,
    isStorageFull,
)
from gateway.imap.listmatch import Pattern
from gateway.imap.parser import IMAPSyntaxError, NotModifiedUTF7
from gateway.imap.protocol import (
    AUTH,
    DISK_FULL,
    SELECTED,
    bad,
    capability,
    command,
    no,
)
from gateway.imap.qresync import afterSelect, parseSelectParameters
from gateway.imap.rev2 import isRev2
from gateway.imap.view import MailboxView
from gateway.logging import getLogger
from gateway.store import query
from gateway.store.acl import formatRights
from gateway.store.mail import SPECIAL_USES

DELIMITER = "/"

log = getLogger("imap")

capability("NAMESPACE")
capability("UNSELECT")
capability("UIDPLUS")
capability("CHILDREN")
capability("LIST-EXTENDED")
capability("LIST-STATUS")
capability("SPECIAL-USE")
capability("QUOTA")
capability("QUOTA=RES-STORAGE")
capability("STATUS=SIZE")
capability("CREATE-SPECIAL-USE")

_SPECIAL_USES = {use.lower(): use for use in SPECIAL_USES}


def storeError(error):
    """
    The tagged C{NO} for a store exception.
    """
    if isinstance(error, NoSuchMailbox):
        return no("[NONEXISTENT] No such mailbox")
    if isinstance(error, PermissionDenied):
        return no("[NOPERM] Permission denied")
    if isinstance(error, MailboxExists):
        return no("[ALREADYEXISTS] Mailbox already exists")
    if isinstance(error, MailboxHasChildren):
        return no("[INUSE] Mailbox has children")
    if isinstance(error, MailboxNameLimit):
        return no("[LIMIT] %s" % (error,))
    if isinstance(error, InvalidMailboxName):
        return no("[CANNOT] %s" % (error,))
    if isinstance(error, QuotaExceeded):
        return no("[OVERQUOTA] Storage quota exceeded")
    if isStorageFull(error):
        return no(DISK_FULL)
    return no("[SERVERBUG] %s" % (error,))


def openTarget(session, name):
    """
    The mailbox a message is put into (APPEND, COPY, MOVE): C{NO
    [TRYCREATE]} when it does not exist.
    """
    try:
        return openMailbox(session, name, "i")
    except NoSuchMailbox:
        raise no("[TRYCREATE] No such mailbox") from None
    except StoreError as e:
        raise storeError(e) from None


def checkNewName(name):
    """
    Refuse names a new mailbox cannot have (empty, wildcards, empty levels).
    """
    if not name:
        raise no("[CANNOT] Empty mailbox name")
    if "*" in name or "%" in name or DELIMITER * 2 in name or name.startswith(DELIMITER):
        raise no("[CANNOT] Mailbox names cannot contain wildcards or empty levels")


def openMailbox(session, name, rights="r"):
    """
    Open a mailbox for a command through the access layer: an own mailbox,
    or another account's, checking the viewer's rights on each operation.

    @raise gateway.errors.StoreError: as C{getMailbox} does.
    """
    return session.account.access.getMailbox(name, rights)


def mailboxArgument(args, new=False):
    args.space()
    return nameArgument(args, new)


def nameArgument(args, new=False):
    """
    A mailbox name argument: a name that is not modified UTF-7 names no
    mailbox, so the command gets C{NO [NONEXISTENT]}, or C{NO [CANNOT]}
    when C{new} (the name of a mailbox to create or put messages in).
    """
    try:
        return args.mailbox()
    except NotModifiedUTF7:
        raise no(("[CANNOT] " if new else "[NONEXISTENT] ") + "Mailbox name is not valid %s" % (
            "UTF-8" if args.names is not None and args.names.utf8 else "modified UTF-7")) from None


# -- SELECT / EXAMINE ------------------------------------------------------------


def _select(session, tag, args, readOnly):
    name = mailboxArgument(args)
    qresync = None
    if not args.atEnd():
        args.space()
        qresync = parseSelectParameters(session, args.parenList())
    args.end()
    if session.view is not None:
        # RFC 7162 3.2.11 (as Dovecot: to every client, QRESYNC enabled or not)
        session.sendUntagged(b"OK [CLOSED] Previous mailbox closed")
    session.closeMailbox()
    try:
        mailbox = openMailbox(session, name, "r")
    except StoreError as e:
        raise storeError(e) from None
    d = mailbox.synchronize()
    d.addCallback(lambda _: _mailboxIdLater(mailbox))
    d.addCallback(lambda mailboxId: _selected(session, mailbox, readOnly, qresync, name, mailboxId))
    return d


def _mailboxIdLater(mailbox):
    """
    The mailbox's MAILBOXID, written off the reactor thread when it has
    none yet (L{gateway.interfaces.IMailbox.mailboxIdLater}); C{None} on a
    full disk (the mailbox gets one when there is room).

    @return: a L{Deferred}.
    """
    later = getattr(mailbox, "mailboxIdLater", None)
    d = later() if later is not None else defer.maybeDeferred(mailbox.mailboxId)

    def full(failure):
        failure.trap(OSError)
        if not isStorageFull(failure.value):
            return failure
        return None
    return d.addErrback(full)


def _selected(session, mailbox, readOnly, qresync=None, name=None, mailboxId=None):
    rev2 = isRev2(session)
    view = MailboxView(mailbox, readOnly, lambda: _mailboxChanged(session), showRecent=not rev2)
    session.view = view
    session.state = SELECTED
    view.sendFlags(session)
    session.sendUntagged(b"%d EXISTS" % (view.exists,))
    if rev2:
        # RFC 9051 6.3.2: LIST instead of RECENT and UNSEEN.
        _list(session, "LIST", "", [name], set(), set(), None, False)
    else:
        session.sendUntagged(b"%d RECENT" % (len(view.recent),))
        unseen = _firstUnseen(view)
        if unseen is not None:
            session.sendUntagged(b"OK [UNSEEN %d] First unseen message" % (unseen,))
    session.sendUntagged(b"OK [UIDVALIDITY %d] UIDs valid" % (mailbox.uidValidity,))
    session.sendUntagged(b"OK [UIDNEXT %d] Predicted next UID" % (view.openedUidNext,))
    if mailboxId is not None:
        # (None: a mailbox without an id yet gets one when the disk has room.)
        session.sendUntagged(b"OK [MAILBOXID (%s)] Ok" % (mailboxId.encode("ascii"),))
    session.sendUntagged(b"OK [URLMECH INTERNAL] Ok")  # RFC 4467 (gateway.imap.urlauth)
    if "CONDSTORE" in session.enabled:
        session.sendUntagged(b"OK [HIGHESTMODSEQ %d] Highest" % (view.modseq,))
    afterSelect(session, view, qresync)
    verb = "EXAMINE" if readOnly else "SELECT"
    return ("OK", "[%s] %s completed" % ("READ-ONLY" if readOnly else "READ-WRITE", verb))


def _firstUnseen(view):
    hits = view.mailbox.search(query.Not(query.HasFlag("\\Seen")), limit=1)
    return view.seqOf(hits[0][0]) if hits else None


def _mailboxChanged(session):
    """
    The selected mailbox changed: announce it at once during IDLE.
    """
    if session.notify is not None and session.notify.selectedChanged():
        return
    if session.idling and session.view is not None:
        session.view.sendUpdates(session, expunge=True)
        session.flush()


@command("SELECT", AUTH)
def do_SELECT(session, tag, args):
    return _select(session, tag, args, readOnly=False)


@command("EXAMINE", AUTH)
def do_EXAMINE(session, tag, args):
    return _select(session, tag, args, readOnly=True)


# -- CREATE / DELETE / RENAME / SUBSCRIBE --------------------------------------------


def _storeFailed(failure):
    """
    The errback of a store call's L{Deferred}: the tagged C{NO} for a store
    error.
    """
    if failure.check(StoreError):
        raise storeError(failure.value)
    return failure


def _later(f, *a):
    """
    Call a store write's C{*Later} form (the change goes through the
    index writer, off the reactor thread).

    @return: its L{Deferred}, failing with the tagged C{NO} for a store
        error.
    """
    return f(*a).addErrback(_storeFailed)


#: CREATE parameters (RFC 4466 create-param) that other modules add:
#: name -> C{prepare(session, value)} returning C{(mailboxClass or None,
#: after(session, name) or None)}; it raises a L{Response} to refuse;
#: C{after} may return a L{Deferred} that the tagged OK waits for.
CREATE_PARAMS = {}


@command("CREATE", AUTH)
def do_CREATE(session, tag, args):
    name = mailboxArgument(args, new=True)
    useAttrs = None
    mailboxClass, after = "IPF.Note", []
    if not args.atEnd():
        args.space()
        params = args.parenList()
        if len(params) % 2:
            raise bad("Unsupported CREATE parameters")
        for label, value in zip(params[0::2], params[1::2], strict=True):
            label = str(label).upper()
            if label == "USE" and isinstance(value, list):
                useAttrs = value
            elif label in CREATE_PARAMS and not isinstance(value, list):
                chosen, then = CREATE_PARAMS[label](session, value)
                mailboxClass = chosen or mailboxClass
                if then is not None:
                    after.append(then)
            else:
                raise bad("Unsupported CREATE parameters")
    args.end()
    name = name.rstrip(DELIMITER)
    checkNewName(name)
    specialUse = None
    if useAttrs:
        if len(useAttrs) != 1:
            raise no("[USEATTR] Only one special use per mailbox")
        specialUse = _SPECIAL_USES.get(str(useAttrs[0]).lower())
        if specialUse is None:
            raise no("[USEATTR] Unsupported special use %s" % (str(useAttrs[0])[:30],))
    if name == "INBOX":
        raise no("[ALREADYEXISTS] INBOX always exists")
    d = _later(session.account.access.createMailboxLater, name, mailboxClass, specialUse)
    for then in after:
        d.addCallback(lambda _, then=then: then(session, name))
    return d.addCallback(lambda _: _created(session, name))


def _created(session, name):
    """
    CREATE's mailbox is durable, and what its parameters do after: the
    tagged OK.
    """
    # RFC 8474 4: the new mailbox's MAILBOXID (none on a full disk, which
    # the mailbox gets when it is next opened).
    try:
        mailbox = openMailbox(session, name, "")
    except StoreError:
        return None

    def answer(mailboxId):
        if mailboxId is None:
            return None
        return ("OK", "[MAILBOXID (%s)] CREATE completed" % (mailboxId,))

    def failed(failure):
        failure.trap(OSError, StoreError)
        return None
    return _mailboxIdLater(mailbox).addCallbacks(answer, failed)


@command("DELETE", AUTH)
def do_DELETE(session, tag, args):
    name = mailboxArgument(args)
    args.end()

    def failed(failure):
        if failure.check(MailboxHasChildren):
            raise no("[HASCHILDREN] Mailbox has children" if isRev2(session) else "[INUSE] Mailbox has children")
        return _storeFailed(failure)
    d = session.account.access.deleteMailboxLater(name)
    return d.addCallbacks(lambda _: _deleted(session), failed)


def _deleted(session):
    """
    DELETE's deletion is durable: leave the selected mailbox if it was it.
    """
    if session.view is not None:
        try:
            session.view.mailbox.name  # noqa: B018 -- raises when it was deleted
        except NoSuchMailbox:
            # The selected mailbox, whatever spelling named it: the session
            # goes back to the authenticated state (Dovecot answers OK too,
            # then disconnects).
            session.closeMailbox()


@command("RENAME", AUTH)
def do_RENAME(session, tag, args):
    old = mailboxArgument(args)
    new = mailboxArgument(args, new=True).rstrip(DELIMITER)
    args.end()
    checkNewName(new)
    return _later(session.account.access.renameMailboxLater, old, new).addCallback(lambda _: None)


@command("SUBSCRIBE", AUTH)
def do_SUBSCRIBE(session, tag, args):
    name = mailboxArgument(args, new=True)
    args.end()
    return _later(session.account.access.subscribeLater, name).addCallback(lambda _: None)


@command("UNSUBSCRIBE", AUTH)
def do_UNSUBSCRIBE(session, tag, args):
    name = mailboxArgument(args)
    args.end()
    return _later(session.account.access.unsubscribeLater, name).addCallback(lambda _: None)


@command("NAMESPACE", AUTH, capability="NAMESPACE")
def do_NAMESPACE(session, tag, args):
    args.end()
    # Personal, other users (~account/...), shared (~public/..., RFC 2342).
    session.sendUntagged(b'NAMESPACE (("" "/")) (("~" "/")) (("~public/" "/"))')


# -- LIST / LSUB ---------------------------------------------------------------------


def patternRegex(reference, pattern):
    """
    The matcher (C{.match(name)}) for a LIST reference and pattern
    (C{str}): C{*} matches anything, C{%} anything but the delimiter; INBOX
    is matched in any case.  Not a regular expression: those backtrack
    (see L{gateway.imap.listmatch}).
    """
    full = reference + pattern if not pattern.startswith(DELIMITER) or not reference else reference + pattern
    if full[:5].upper() == "INBOX" and (len(full) == 5 or full[5] in (DELIMITER, "*", "%")):
        full = "INBOX" + full[5:]
    return Pattern(full)


_LIST_SELECT = {"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"}
_LIST_RETURN = {"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS", "MYRIGHTS"}

#: LIST return options that take an argument, added by other modules
#: (RFC 9590 METADATA): name -> an object with C{parse(value)} (the
#: option's argument, raising L{Response} or L{IMAPSyntaxError}) returning
#: a state, C{render(session, name, info, state)} called after each listed
#: mailbox's own responses, and C{done(state)} giving the tagged OK's text
#: (or C{None}).
LIST_RETURN_EXTENSIONS = {}


def _reference(args):
    """
    A LIST reference name, or C{None} when it is not modified UTF-7 (then
    nothing matches).
    """
    try:
        return args.mailbox()
    except NotModifiedUTF7:
        return None


def _patterns(args):
    if args.peek() == b"(":
        values = args.parenList()
        if not values or not all(isinstance(v, (str, bytes)) for v in values):
            raise IMAPSyntaxError("bad mailbox pattern list")
        raw = [v if isinstance(v, bytes) else v.encode("latin-1") for v in values]
    else:
        raw = [args.listMailbox()]
    patterns = []
    for r in raw:
        try:
            patterns.append(args.decodeName(r) if r.upper() != b"INBOX" else "INBOX")
        except NotModifiedUTF7:
            patterns.append(None)  # matches nothing
    return patterns


@command("LIST", AUTH)
def do_LIST(session, tag, args):
    args.space()
    selection = set()
    extended = False
    if args.peek() == b"(":
        extended = True
        selection = {str(v).upper() for v in args.parenList()}
        if not selection <= _LIST_SELECT:
            raise bad("Unknown LIST selection option")
        if "RECURSIVEMATCH" in selection and not selection - {"RECURSIVEMATCH", "REMOTE"}:
            raise bad("RECURSIVEMATCH needs another selection option")
        args.space()
    reference = _reference(args)
    args.space()
    patterns = _patterns(args)
    returns, statusItems, extensions = set(), None, {}
    if not args.atEnd():
        args.space()
        if args.atom().upper() != "RETURN":
            raise bad("Expected RETURN")
        args.space()
        options = args.parenList()
        i = 0
        while i < len(options):
            option = str(options[i]).upper() if not isinstance(options[i], list) else ""
            if option in LIST_RETURN_EXTENSIONS:
                i += 1
                extensions[option] = LIST_RETURN_EXTENSIONS[option].parse(
                    options[i] if i < len(options) else None)
                i += 1
                continue
            if option not in _LIST_RETURN:
                raise bad("Unknown LIST return option")
            if option == "STATUS":
                i += 1
                if i >= len(options) or not isinstance(options[i], list):
                    raise bad("STATUS needs a list of items")
                statusItems = [str(v).upper() for v in options[i]]
                _checkStatusItems(statusItems)
            returns.add(option)
            i += 1
        extended = True
    args.end()
    if patterns == [""]:
        session.sendUntagged(b'LIST (\\Noselect) "/" ""')
        return None

    def answer(_=None):
        _list(session, "LIST", reference, patterns, selection, returns, statusItems, extended, extensions)
        for option, state in extensions.items():
            text = LIST_RETURN_EXTENSIONS[option].done(state)
            if text:
                return ("OK", text)
        return None
    assign = getattr(session.account.mailStore, "assignMailboxIdsLater", None)
    if statusItems and "MAILBOXID" in statusItems and assign is not None:
        # The account's mailboxes that have no MAILBOXID yet get one off
        # the reactor thread first.
        return assign().addCallback(answer)
    return answer()


@command("LSUB", AUTH)
def do_LSUB(session, tag, args):
    args.space()
    reference = _reference(args)
    args.space()
    patterns = _patterns(args)
    args.end()
    _list(session, "LSUB", reference, patterns, {"SUBSCRIBED"}, set(), None, False)


def _list(session, verb, reference, patterns, selection, returns, statusItems, extended, extensions=None):
    access = session.account.access
    regexes = [patternRegex(reference, p) for p in patterns if p is not None and reference is not None]
    infos = {info.name: info for info in access.listMailboxes()}
    subscribed = set(access.subscriptions()) if (
        "SUBSCRIBED" in selection or "SUBSCRIBED" in returns) else set()
    extra = {}
    if "SUBSCRIBED" in selection:
        names = set()
        for name in subscribed:
            if any(r.match(name) for r in regexes):
                names.add(name)
                continue
            # A subscribed child under a matching parent (RFC 3501 6.3.9,
            # RFC 5258 RECURSIVEMATCH).
            parts = name.split(DELIMITER)
            for i in range(len(parts) - 1, 0, -1):
                parent = DELIMITER.join(parts[:i])
                if any(r.match(parent) for r in regexes):
                    if verb == "LSUB":
                        extra.setdefault(parent, "noselect")
                    elif "RECURSIVEMATCH" in selection:
                        extra[parent] = "childinfo"
                    break
        names = sorted(names | set(extra))
    else:
        names = sorted(name for name in infos if any(r.match(name) for r in regexes))
    for name in names:
        info = infos.get(name)
        attributes = []
        if name in extra and name not in subscribed:
            if verb == "LSUB":
                attributes.append("\\Noselect")
            elif info is None:
                attributes.append("\\NonExistent")
        elif info is None:
            if verb == "LSUB":
                continue
            attributes.append("\\NonExistent")
        if info is not None:
            if "SPECIAL-USE" in selection and not info.specialUse:
                continue
            if not info.exists and verb == "LSUB" and name not in subscribed and name not in extra:
                continue
            if not info.selectable and "\\Noselect" not in attributes:
                attributes.append("\\Noselect")
            attributes.append("\\HasChildren" if info.hasChildren else "\\HasNoChildren")
            if info.specialUse and (not extended or "SPECIAL-USE" in returns
                                    or "SPECIAL-USE" in selection):
                attributes.append(info.specialUse)
        if name in subscribed and verb == "LIST":
            attributes.append("\\Subscribed")
        line = (verb.encode("ascii") + b" (" + " ".join(attributes).encode("ascii")
                + b') "/" ' + session.names.encode(name))
        if extra.get(name) == "childinfo":
            line += b' ("CHILDINFO" ("SUBSCRIBED"))'
        session.sendUntagged(line)
        if "MYRIGHTS" in returns and info is not None and info.exists:
            session.sendUntagged(b"MYRIGHTS " + session.names.encode(name) + b" "
                                 + (formatRights(info.rights, obsolete=True).encode("ascii") or b'""'))
        if statusItems and info is not None and info.selectable:
            try:
                mailbox = openMailbox(session, name, "r")
            except StoreError:
                mailbox = None
            if mailbox is not None:
                session.sendUntagged(b"STATUS " + session.names.encode(name) + b" "
                                     + _statusList(session, mailbox, statusItems))
        for option, state in (extensions or {}).items():
            if info is not None and info.exists:
                LIST_RETURN_EXTENSIONS[option].render(session, name, info, state)


# -- STATUS ----------------------------------------------------------------------------

_STATUS_ITEMS = ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ", "SIZE", "MAILBOXID",
                 "DELETED")


def _checkStatusItems(items):
    for item in items:
        if item not in _STATUS_ITEMS:
            raise bad("Unknown STATUS item %s" % (item[:20],))


def _statusList(session, mailbox, items, mailboxId=None):
    """
    The parenthesized STATUS values of C{items} for C{mailbox}
    (C{mailboxId}: its MAILBOXID if known, else read, or written here
    when it has none yet).
    """
    counts = mailbox.counts() if {"MESSAGES", "RECENT", "UNSEEN", "SIZE"} & set(items) else None
    values = []
    for item in items:
        if item == "RECENT" and session.view is not None and session.view.mailbox is mailbox:
            value = len(session.view.recent)
        elif item in ("MESSAGES", "RECENT", "UNSEEN", "SIZE"):
            value = getattr(counts, item.lower())
        elif item == "UIDNEXT":
            # Of the same state as the counts when they are asked too.
            value = counts.uidnext if counts is not None else mailbox.uidNext()
        elif item == "UIDVALIDITY":
            value = mailbox.uidValidity
        elif item == "MAILBOXID":
            if mailboxId is None:
                mailboxId = mailbox.mailboxId()
            values.append(b"MAILBOXID (%s)" % (mailboxId.encode("ascii"),))
            continue
        elif item == "DELETED":
            # RFC 9051 6.3.11: the messages with \Deleted (as the viewer sees them).
            value = len(mailbox.search(query.HasFlag("\\Deleted")))
        else:
            value = mailbox.highestModSeq()
        values.append(b"%s %d" % (item.encode("ascii"), value))
    return b"(" + b" ".join(values) + b")"


@command("STATUS", AUTH)
def do_STATUS(session, tag, args):
    name = mailboxArgument(args)
    args.space()
    items = [str(v).upper() for v in args.parenList()]
    args.end()
    if not items:
        raise bad("STATUS needs items")
    _checkStatusItems(items)
    try:
        mailbox = openMailbox(session, name, "r")
    except StoreError as e:
        raise storeError(e) from None
    if "MAILBOXID" not in items:
        session.sendUntagged(b"STATUS " + session.names.encode(name) + b" " + _statusList(session, mailbox, items))
        return None

    def status(mailboxId):
        session.sendUntagged(b"STATUS " + session.names.encode(name) + b" "
                             + _statusList(session, mailbox, items, mailboxId))
    later = getattr(mailbox, "mailboxIdLater", None)
    d = later() if later is not None else defer.maybeDeferred(mailbox.mailboxId)
    return d.addCallback(status)
