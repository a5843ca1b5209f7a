# -*- test-case-name: tests.test_imap_notify -*-
"""
The NOTIFY command's arguments (RFC 5465 3.1, 8): C{NOTIFY NONE} or
C{NOTIFY SET [STATUS] (filter events) ...} parsed into a L{NotifySpec},
with the RFC's rules (BAD) and the events this server reports
(C{NO [BADEVENT]}); L{gateway.imap.notify} follows what it asks for.
"""

import attr

from gateway.imap.parser import IMAPSyntaxError, NotModifiedUTF7
from gateway.imap.protocol import no

MESSAGE_EVENTS = ("MessageNew", "MessageExpunge", "FlagChange", "AnnotationChange")
MAILBOX_EVENTS = ("MailboxName", "SubscriptionChange", "MailboxMetadataChange", "ServerMetadataChange")
#: The events this server can report, in the order BADEVENT lists them.
SUPPORTED_EVENTS = ("MessageNew", "MessageExpunge", "FlagChange", "MailboxName", "SubscriptionChange",
                    "MailboxMetadataChange", "ServerMetadataChange")
METADATA_EVENTS = frozenset(["MailboxMetadataChange", "ServerMetadataChange"])

_EVENT_NAMES = {name.upper(): name for name in MESSAGE_EVENTS + MAILBOX_EVENTS}
_FILTERS = ("SELECTED", "SELECTED-DELAYED", "INBOXES", "PERSONAL", "SUBSCRIBED", "SUBTREE", "MAILBOXES")


@attr.s(frozen=True)
class EventGroup:
    """
    One C{(filter events)} of NOTIFY SET.

    @ivar kind: the filter, upper case (C{"PERSONAL"}, C{"SUBTREE"} ...).
    @ivar names: the mailbox names of C{SUBTREE} and C{MAILBOXES}.
    @ivar events: C{frozenset} of event names (empty for C{NONE}).
    """

    kind = attr.ib()
    names = attr.ib(default=())
    events = attr.ib(default=frozenset())

    def matches(self, name, subscribed):
        """
        Does this filter name mailbox C{name} (not the selected one)?
        """
        if self.kind in ("PERSONAL", "INBOXES"):
            return not name.startswith("~")
        if self.kind == "SUBSCRIBED":
            return name in subscribed
        if self.kind == "SUBTREE":
            return any(name == top or name.startswith(top + "/") for top in self.names)
        if self.kind == "MAILBOXES":
            return name in self.names
        return False


@attr.s
class NotifySpec:
    """
    What one NOTIFY SET asked for.

    @ivar status: the STATUS indicator was given.
    @ivar selected: the events for the selected mailbox (C{frozenset}).
    @ivar delayed: C{SELECTED-DELAYED} rather than C{SELECTED}.
    @ivar fetchItems: the text of MessageNew's FETCH items for the selected
        mailbox, or C{None}.
    @ivar groups: the other L{EventGroup}s, in order.
    """

    status = attr.ib(default=False)
    selected = attr.ib(default=frozenset())
    delayed = attr.ib(default=False)
    fetchItems = attr.ib(default=None)
    groups = attr.ib(factory=list)

    def groupFor(self, name, subscribed):
        """
        The first group whose filter names C{name}, or C{None}.
        """
        for group in self.groups:
            if group.matches(name, subscribed):
                return group
        return None

    def usedEvents(self):
        used = set(self.selected)
        for group in self.groups:
            used |= group.events
        return used

    def wantsSubscriptions(self):
        return any(group.kind == "SUBSCRIBED" for group in self.groups)

    def mayNameShared(self):
        """
        Can a filter name another account's mailbox (C{SUBSCRIBED}, or a
        C{~owner/...} name)?
        """
        return any(group.kind == "SUBSCRIBED" or any(name.startswith("~") for name in group.names)
                   for group in self.groups)


# -- parsing -----------------------------------------------------------------------------


def _span(data, pos):
    """
    The end of the parenthesized list starting at C{data[pos]}, skipping
    quoted strings and the brackets of FETCH sections.
    """
    depth, i, quoted = 0, pos, False
    while i < len(data):
        c = data[i:i + 1]
        if quoted:
            if c == b"\\":
                i += 1
            elif c == b'"':
                quoted = False
        elif c == b'"':
            quoted = True
        elif c in (b"(", b"["):
            depth += 1
        elif c in (b")", b"]"):
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise IMAPSyntaxError("unterminated list")


def _mailboxes(args):
    """
    C{one-or-more-mailbox}: a name or a parenthesized list of names; a name
    that is not modified UTF-7 names no mailbox and is left out.
    """
    if args.peek() != b"(":
        return tuple(_mailbox(args))
    args.pos += 1
    names, count = [], 0
    while True:
        if args.peek() == b")" and count:
            args.pos += 1
            return tuple(names)
        if count:
            args.space()
        names += _mailbox(args)
        count += 1


def _mailbox(args):
    try:
        return [args.mailbox()]
    except NotModifiedUTF7:
        return []


def _events(args, selected):
    """
    C{events}: NONE or a parenthesized list of event names; for the
    selected mailbox MessageNew may carry FETCH items.

    @return: C{(events, fetch items text or None, unknown names)}.
    """
    if args.peek() != b"(":
        if args.atom().upper() != "NONE":
            raise IMAPSyntaxError("expected an event list or NONE")
        return frozenset(), None, []
    args.pos += 1
    events, unknown, fetchItems = set(), [], None
    while True:
        if args.peek() == b")":
            if not events and not unknown:
                raise IMAPSyntaxError("empty event list")
            args.pos += 1
            break
        if events or unknown:
            args.space()
        word = args.atom()
        name = _EVENT_NAMES.get(word.upper())
        if name is None:
            unknown.append(word)
            continue
        events.add(name)
        if name == "MessageNew" and args.data[args.pos:args.pos + 2] == b" (":
            if not selected:
                raise IMAPSyntaxError("MessageNew FETCH items are for the selected mailbox only")
            start = args.pos + 1
            end = _span(args.data, start)
            fetchItems = args.data[start:end].decode("latin-1")
            args.pos = end
    # RFC 5465 5 asks the client for MessageNew and MessageExpunge together,
    # and for both with FlagChange; like Dovecot (and what imaptest's
    # compliance script expects) one alone is taken, and the STATUS sent is
    # made of what the events named cover (Notifier._statusItems).
    return frozenset(events), fetchItems, unknown


def parseNotify(args, fetchRegistry=None):
    """
    The arguments of NOTIFY.

    @return: a L{NotifySpec}, or C{None} for C{NOTIFY NONE}.
    @raise IMAPSyntaxError: for a BAD answer.
    @raise gateway.imap.protocol.Response: C{NO [BADEVENT (...)]} for an
        event this server does not report.
    """
    from gateway.imap.message import parseFetchItems

    args.space()
    verb = args.atom().upper()
    if verb == "NONE":
        args.end()
        return None
    if verb != "SET":
        raise IMAPSyntaxError("NOTIFY needs SET or NONE")
    spec = NotifySpec()
    args.space()
    if args.peek() != b"(":
        if args.atom().upper() != "STATUS":
            raise IMAPSyntaxError("expected STATUS or an event group")
        spec.status = True
        args.space()
    unknown = []
    seenSelected = False
    while True:
        if args.peek() != b"(":
            raise IMAPSyntaxError("expected an event group")
        args.pos += 1
        kind = args.atom().upper()
        if kind not in _FILTERS:
            raise IMAPSyntaxError("unknown mailbox filter %s" % (kind[:30],))
        args.space()
        names = ()
        if kind in ("SUBTREE", "MAILBOXES"):
            names = _mailboxes(args)
            args.space()
        selected = kind in ("SELECTED", "SELECTED-DELAYED")
        events, fetchItems, badNames = _events(args, selected)
        unknown += badNames
        if args.peek() != b")":
            raise IMAPSyntaxError("expected ) after the events")
        args.pos += 1
        if selected:
            if seenSelected:
                raise IMAPSyntaxError("SELECTED given twice")
            seenSelected = True
            spec.selected, spec.delayed = events, kind == "SELECTED-DELAYED"
            if fetchItems is not None:
                try:
                    parseFetchItems(fetchItems, fetchRegistry)
                except ValueError as e:
                    raise IMAPSyntaxError("bad MessageNew FETCH items: %s" % (e,)) from None
                spec.fetchItems = fetchItems
        else:
            spec.groups.append(EventGroup(kind, names, events))
        if args.atEnd():
            break
        args.space()
    unsupported = (spec.usedEvents() - set(SUPPORTED_EVENTS)) or unknown
    if unsupported:
        raise no("[BADEVENT (%s)] Unsupported NOTIFY event" % (" ".join(SUPPORTED_EVENTS),))
    return spec
