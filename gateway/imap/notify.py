# -*- test-case-name: tests.test_imap_notify -*-
"""
NOTIFY (RFC 5465): a session says which events it wants for which
mailboxes, and learns of them as they happen, between commands as well as
during IDLE.

C{NOTIFY SET [STATUS] (filter events) ...} parses into a
L{gateway.imap.notifyspec.NotifySpec};
the session's L{Notifier} then listens:

  - on the selected mailbox (C{SELECTED}, C{SELECTED-DELAYED}) through the
    view's listener: EXISTS, FETCH (UID and FLAGS, and the MessageNew FETCH
    items the client asked for), EXPUNGE at once for C{SELECTED}, at the
    next command that allows it for C{SELECTED-DELAYED};
  - on every other mailbox a filter names (C{INBOXES}, which is C{PERSONAL}
    here as RFC 5465 6.3 allows, C{PERSONAL}, C{SUBSCRIBED}, C{SUBTREE},
    C{MAILBOXES}) that the viewer may C{l}ist and C{r}ead, own or shared,
    with the mailbox's own listener: STATUS responses;
  - on the account's mailbox list and subscriptions, and on the stores of
    the accounts whose C{~owner/...} mailboxes a filter names, through the
    stores' account-level feed (L{gateway.interfaces.IAccountChangeFeed}):
    LIST responses (MailboxName with C{OLDNAME} for a rename,
    C{\\NonExistent} for a deletion; SubscriptionChange) and METADATA
    written by other processes;
  - on the METADATA service (L{gateway.interfaces.IMetadata.addListener}):
    METADATA responses naming the entries written in this process.

The stores' listeners hear other processes' changes too (inotify or the
periodic check), so a change made through another worker reaches the
session the same way.  A mailbox that matches several filters gets the
events of the first one.  Rights are checked when NOTIFY SET runs, before
each STATUS of another account's mailbox (a right taken away stops its
events) and every L{SHARED_REFRESH} seconds (a mailbox shared later starts
them).  Events that arrive while a command runs wait for its end and go out
before its tagged response; when more pile up than L{MAX_PENDING}, or the
client leaves more than L{MAX_BACKLOG} octets unread, the session gets
C{* OK [NOTIFICATIONOVERFLOW]} and NOTIFY is off (RFC 5465 5.8), as after
C{NOTIFY NONE}.  AnnotationChange is refused with C{NO [BADEVENT]} (there
is no ANNOTATE); a session's own changes to other mailboxes are reported
to it too (RFC 5465 5 says SHOULD omit them).
"""

import bisect

import attr

from gateway.errors import StoreError
from gateway.imap.notifyspec import MESSAGE_EVENTS, METADATA_EVENTS, parseNotify
from gateway.imap.protocol import AUTH, command, no
from gateway.logging import getLogger
from gateway.store.access import Location, SharedMailbox
from gateway.store.metadata import MetadataChange
from gateway.store.names import MailboxNameChange, SubscriptionChange

log = getLogger("imap")

#: Events that wait (a command is running) past this many: overflow.
MAX_PENDING = 1000
#: Octets the client left unread past which it is too far behind: overflow.
MAX_BACKLOG = 1024 * 1024
#: NOTIFY SET that would follow more mailboxes than this is refused with
#: C{NO [NOTIFICATIONOVERFLOW]} (RFC 5465 3.1): each costs a listener, its
#: folders' inotify watches and a count per change.
MAX_MAILBOXES = 1000
#: Seconds between looks at which other accounts' mailboxes a session's
#: filters name (rights granted, shared mailboxes created or deleted).
SHARED_REFRESH = 60.0

#: Commands whose own new messages in the selected mailbox get no MessageNew
#: FETCH (RFC 5465 5.2: the client knows what it added).
_ADDING = frozenset(["APPEND", "COPY", "UID COPY", "MOVE", "UID MOVE"])


# -- the session's notifier -----------------------------------------------------------


def _unwrap(mailbox):
    return mailbox._mailbox if isinstance(mailbox, SharedMailbox) else mailbox


def unsentOctets(transport):
    """
    The octets written to C{transport} that the peer has not taken yet,
    as far as the transport (or the one under a TLS layer) says.
    """
    seen = 0
    while transport is not None and seen < 4:
        if hasattr(transport, "dataBuffer"):
            return len(transport.dataBuffer) + getattr(transport, "_tempDataLen", 0)
        transport = getattr(transport, "transport", None)
        seen += 1
    return 0


_STATUS_ORDER = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ")


class _Watched:
    """
    A non-selected mailbox the session follows: its group, its mailbox,
    the state last told, and the listener's remover.
    """

    __slots__ = ("group", "mailbox", "state", "remove")

    def __init__(self, group, mailbox, state, remove):
        self.group = group
        self.mailbox = mailbox
        self.state = state
        self.remove = remove


class Notifier:
    """
    One session's NOTIFY state (C{session.notify}).

    @ivar spec: the L{gateway.imap.notifyspec.NotifySpec}.
    """

    def __init__(self, session, spec):
        self.session = session
        self.spec = spec
        self._watched = {}
        self._dirty = set()
        self._lists = []
        self._overflowed = False
        self._stopped = False
        self._removeAccount = None
        self._removeMetadata = None
        self._refreshCall = None
        self._removeShared = []
        self._lastListed = self._seenBefore = frozenset()

    # -- set-up --------------------------------------------------------------------

    def start(self):
        """
        Start listening; with the STATUS indicator, send the STATUS of every
        mailbox followed (RFC 5465 3.1).  Names given to SUBTREE and
        MAILBOXES that the viewer may list but not read get C{LIST
        (\\NoAccess)}.

        @raise gateway.imap.protocol.Response: C{NO [NOTIFICATIONOVERFLOW]}
            when the filters name more than L{MAX_MAILBOXES} mailboxes
            (nothing is followed then).
        """
        access = self.session.account.access
        listed = self._refresh()
        if len(self._watched) > MAX_MAILBOXES:
            self.stop()
            raise no("[NOTIFICATIONOVERFLOW] NOTIFY would follow more than %d mailboxes" % (MAX_MAILBOXES,))
        for group in self.spec.groups:
            for name in group.names:
                info = listed.get(name)
                if info is not None and info.exists and "r" not in info.rights:
                    self.session.sendUntagged(b'LIST (\\NoAccess) "/" ' + self.session.names.encode(name))
        if self.spec.status:
            for name in sorted(self._watched):
                self._sendStatus(name, self._watched[name], force=True)
        feed = getattr(self.session.account, "mailStore", None)
        if feed is not None and hasattr(feed, "addAccountListener") and access is not None:
            self._removeAccount = feed.addAccountListener(self._accountChanged)
        metadata = getattr(self.session.context, "metadata", None)
        if metadata is not None and self.spec.usedEvents() & METADATA_EVENTS:
            self._removeMetadata = metadata.addListener(self._accountChanged)
        if self.spec.mayNameShared():
            self._refreshCall = self.session.reactor.callLater(SHARED_REFRESH, self._refreshShared)
        for owner in self._sharedOwners():
            try:
                store = access.layer.storeOf(owner)
            except StoreError:
                continue
            if hasattr(store, "addAccountListener"):
                self._removeShared.append(store.addAccountListener(
                    lambda changes, owner=owner: self._sharedChanged(owner, changes)))

    def _sharedOwners(self):
        """
        The other accounts whose mailboxes the filters name (C{~owner}).
        """
        access = self.session.account.access
        owners = set()
        for group in self.spec.groups:
            for name in group.names:
                if name.startswith("~"):
                    owner = name[1:].partition("/")[0].lower()
                    if owner and "@" not in owner:
                        owner = "%s@%s" % (owner, access.domain)
                    if owner and owner != access.viewer:
                        owners.add(owner)
        return sorted(owners)

    def _sharedChanged(self, owner, changes):
        """
        Another account's mailboxes changed (its store's feed): the same
        events, with the names the viewer uses.
        """
        access = self.session.account.access
        translated = []
        for change in changes:
            if isinstance(change, MailboxNameChange):
                translated.append(MailboxNameChange(
                    access.nameOf(Location(owner, change.name)),
                    access.nameOf(Location(owner, change.oldName)) if change.oldName else None))
            elif isinstance(change, MetadataChange) and change.owner is None:
                translated.append(attr.evolve(change, owner=owner))
        if translated:
            self._accountChanged(translated)

    def _refreshShared(self):
        """
        Other accounts change their mailboxes and ACLs in their own stores:
        look again now and then at what the filters name (RFC 5465 5.9:
        monitoring starts when the viewer gains the rights).
        """
        self._refreshCall = None
        if self._stopped:
            return
        try:
            self._refresh()
        except Exception:
            log.failure("NOTIFY could not look at the shared mailboxes again")
        self._refreshCall = self.session.reactor.callLater(SHARED_REFRESH, self._refreshShared)

    def stop(self):
        """
        Stop listening (NOTIFY NONE, a new NOTIFY SET, overflow, logout).
        """
        self._stopped = True
        for watched in self._watched.values():
            watched.remove()
        self._watched = {}
        self._dirty.clear()
        self._lists = []
        self._stopFeeds()

    def _stopFeeds(self):
        if self._refreshCall is not None and self._refreshCall.active():
            self._refreshCall.cancel()
        self._refreshCall = None
        if self._removeAccount is not None:
            self._removeAccount()
            self._removeAccount = None
        if self._removeMetadata is not None:
            self._removeMetadata()
            self._removeMetadata = None
        removers, self._removeShared = self._removeShared, []
        for remove in removers:
            remove()

    def _refresh(self):
        """
        Follow the mailboxes the filters name now: listeners on new ones,
        none on those no longer named.

        @return: C{{name: ListedMailbox}} of what the viewer may list.
        """
        access = self.session.account.access
        listed = {info.name: info for info in access.listMailboxes()}
        self._seenBefore, self._lastListed = self._lastListed, frozenset(listed)
        subscribed = set(access.subscriptions()) if self.spec.wantsSubscriptions() else set()
        wanted = {}
        for name, info in listed.items():
            if not info.selectable or not info.exists or "r" not in info.rights or "l" not in info.rights:
                continue
            group = self.spec.groupFor(name, subscribed)
            if group is not None and group.events & set(MESSAGE_EVENTS):
                wanted[name] = group
        for name in list(self._watched):
            if name not in wanted:
                self._watched.pop(name).remove()
                self._dirty.discard(name)
        for name, group in wanted.items():
            watched = self._watched.get(name)
            if watched is not None:
                watched.group = group
                continue
            try:
                mailbox = access.getMailbox(name, "r")
                state = self._state(mailbox)
            except StoreError:
                continue
            remove = mailbox.addListener(lambda name=name: self._mailboxChanged(name))
            self._watched[name] = _Watched(group, mailbox, state, remove)
        return listed

    # -- events ----------------------------------------------------------------------

    def _canWrite(self):
        session = self.session
        if session.account is None:
            # Logged out (UNAUTHENTICATE): nothing more for this account.
            self.stop()
            return False
        return session.transport is not None and (session.idling or not session._busy)

    def _mailboxChanged(self, name):
        if self._stopped or name not in self._watched:
            return
        self._dirty.add(name)
        self._deliver()

    def _accountChanged(self, changes):
        """
        Mailbox names or subscriptions changed (a C{list}), or metadata
        entries (a L{MetadataChange}).
        """
        if self._stopped:
            return
        if isinstance(changes, MetadataChange):
            self._lists.append(changes)
        else:
            self._lists.extend(changes)
        self._deliver()

    def selectedChanged(self):
        """
        The selected mailbox changed: tell the client now when it asked
        for the selected mailbox's events and no command is running.

        With NOTIFY on and no events asked for the selected mailbox, nothing
        is pushed, during IDLE either (RFC 5465 4): the mailbox's changes
        come at the end of the next command, as RFC 3501 has them.

        @return: C{False} when the session should go on as without NOTIFY.
        """
        session = self.session
        if self._stopped or session.view is None:
            return False
        if not self.spec.selected:
            return True
        if self._canWrite():
            before = session.view.maxUid()
            session.view.sendUpdates(session, expunge=session.idling or not self.spec.delayed)
            self._fetchNew(before)
            session.flush()
        return True

    def commandDone(self, before, name):
        """
        A command ends (its updates of the selected mailbox were sent):
        MessageNew's FETCH for messages new since C{before} (the highest
        UID before them), and the events that waited.
        """
        if self._stopped:
            return
        if self.session.view is not None and name not in _ADDING:
            self._fetchNew(before)
        self._deliver(flush=False)

    def _deliver(self, flush=True):
        """
        Send what waits when the session may (else it waits for the end of
        the running command); overflow when too much waits.
        """
        if self._stopped:
            return
        session = self.session
        if (len(self._dirty) + len(self._lists) > MAX_PENDING
                or unsentOctets(session.transport) > MAX_BACKLOG):
            self._overflow()
        if not self._canWrite():
            return
        if self._overflowed:
            self._overflowed = False
            session.sendUntagged(b"OK [NOTIFICATIONOVERFLOW] Too many notifications; NOTIFY is now off")
            self.stop()
            if session.notify is self:
                session.notify = None
        else:
            if self._lists:
                changes, self._lists = self._lists, []
                self._sendLists(changes)
            if self._dirty:
                dirty, self._dirty = sorted(self._dirty), set()
                for name in dirty:
                    watched = self._watched.get(name)
                    if watched is not None:
                        self._sendStatus(name, watched)
        if flush:
            session.flush()

    def _overflow(self):
        log.info("IMAP NOTIFY overflow for {user}", user=getattr(self.session.account, "address", None))
        for watched in self._watched.values():
            watched.remove()
        self._watched = {}
        self._dirty.clear()
        self._lists = []
        self._stopFeeds()
        self._overflowed = True

    # -- responses ---------------------------------------------------------------------

    def _isSelected(self, mailbox):
        view = self.session.view
        return view is not None and _unwrap(view.mailbox) is _unwrap(mailbox)

    @staticmethod
    def _state(mailbox):
        counts = mailbox.counts()
        return (mailbox.uidValidity, counts.messages, counts.uidnext, mailbox.highestModSeq(), counts.unseen)

    def _sendStatus(self, name, watched, force=False):
        """
        The STATUS of a followed mailbox when it changed in a way its
        events cover (RFC 5465 5.1-5.3); never of the selected mailbox.
        """
        from gateway.imap.commands_mailbox import _statusList

        if self._isSelected(watched.mailbox):
            return
        if name.startswith("~") and not {"l", "r"} <= set(self.session.account.access.rights(name)):
            # The owner took a right away (RFC 5465 5.9): no more events.
            self._watched.pop(name).remove()
            return
        try:
            state = self._state(watched.mailbox)
        except StoreError:
            return
        old, watched.state = watched.state, state
        events = watched.group.events
        if force:
            items = self._statusItems(events)
        elif old[:3] != state[:3] and events & {"MessageNew", "MessageExpunge"}:
            items = self._statusItems(events - {"FlagChange"})
        elif old != state and "FlagChange" in events:
            items = self._statusItems({"FlagChange"})
        else:
            return
        self.session.sendUntagged(b"STATUS " + self.session.names.encode(name) + b" "
                                  + _statusList(self.session, watched.mailbox, items))

    def _statusItems(self, events):
        """
        The STATUS items that tell of C{events} (RFC 5465 5.2, 5.3, 5.1):
        MessageNew the counts and next UID, MessageExpunge the count,
        FlagChange the unseen count and the mod-sequence; HIGHESTMODSEQ
        also whenever CONDSTORE is on.
        """
        wanted = set()
        if "MessageNew" in events:
            wanted |= {"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN"}
        if "MessageExpunge" in events:
            wanted |= {"MESSAGES", "UIDVALIDITY", "UNSEEN"}
        if "FlagChange" in events:
            wanted |= {"UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ"}
        if self.session.enabled & {"CONDSTORE", "QRESYNC"}:
            wanted.add("HIGHESTMODSEQ")
        return [item for item in _STATUS_ORDER if item in wanted]

    def _sendLists(self, changes):
        """
        LIST responses for mailbox name and subscription changes that a
        filter with the matching event names (RFC 5465 5.4, 5.5); the
        followed mailboxes are looked at again (a new mailbox may be one).
        """
        access = self.session.account.access
        if any(not isinstance(change, MetadataChange) for change in changes):
            listed = self._refresh()
            before = self._seenBefore
        else:
            listed = {info.name: info for info in access.listMailboxes()}
            before = frozenset(listed)
        subscribed = set(access.subscriptions())
        for change in changes:
            if isinstance(change, MetadataChange):
                self._sendMetadata(change, listed, subscribed)
                continue
            if isinstance(change, MailboxNameChange):
                event, names = "MailboxName", [change.name] + ([change.oldName] if change.oldName else [])
            elif isinstance(change, SubscriptionChange):
                event, names = "SubscriptionChange", [change.name]
            else:
                continue
            if not any(self._wants(event, name, subscribed | {change.name}) for name in names):
                continue
            if change.name.startswith("~") and change.name not in listed and not set(names) & before:
                # Another account's mailbox the viewer neither sees nor saw.
                continue
            info = listed.get(change.name)
            attributes = []
            if info is None:
                attributes.append("\\NonExistent")
            else:
                if not info.selectable:
                    attributes.append("\\Noselect")
                attributes.append("\\HasChildren" if info.hasChildren else "\\HasNoChildren")
            if change.name in subscribed:
                attributes.append("\\Subscribed")
            line = b"LIST (" + " ".join(attributes).encode("ascii") + b') "/" ' + self.session.names.encode(change.name)
            if getattr(change, "oldName", None):
                line += b' ("OLDNAME" (' + self.session.names.encode(change.oldName) + b"))"
            self.session.sendUntagged(line)

    def _sendMetadata(self, change, listed, subscribed):
        """
        An unsolicited METADATA response naming the changed entries the
        viewer sees (RFC 5465 5.6, 5.7; RFC 5464 4.4.2).
        """
        access = self.session.account.access
        entries = change.visibleTo(access.viewer)
        if not entries:
            return
        if change.owner is None:
            # From the viewer's own store's feed: another process wrote it.
            change = attr.evolve(change, owner=access.viewer)
        if change.local is None:
            if change.owner != access.viewer or "ServerMetadataChange" not in self.spec.usedEvents():
                return
            name = ""
        else:
            name = access.nameOf(Location(change.owner, change.local))
            info = listed.get(name)
            if info is None or "l" not in info.rights or "r" not in info.rights:
                return
            if not self._wants("MailboxMetadataChange", name, subscribed):
                return
        from gateway.imap.commands_metadata import formatEntry

        self.session.sendUntagged(b"METADATA " + self.session.names.encode(name) + b" "
                                  + b" ".join(formatEntry(entry) for entry in entries))

    def _wants(self, event, name, subscribed):
        group = self.spec.groupFor(name, subscribed)
        return group is not None and event in group.events

    def _fetchNew(self, before):
        """
        MessageNew's FETCH items for the selected mailbox's messages above
        UID C{before} (RFC 5465 5.2).
        """
        from gateway.imap.commands_selected import fetchRegistry
        from gateway.imap.message import FetchPlan, parseFetchItems, streamChunks

        session = self.session
        view = session.view
        if self.spec.fetchItems is None or "MessageNew" not in self.spec.selected or view is None:
            return
        start = bisect.bisect_right(view.uids, before)
        uids = list(view.uids[start:])
        if not uids:
            return
        registry = fetchRegistry(session)
        items = parseFetchItems(self.spec.fetchItems, registry)
        plan = FetchPlan(items, modseq="CONDSTORE" in session.enabled, streamThreshold=None,
                         registry=registry, context=session)
        mailbox = view.mailbox
        infos = mailbox.messages(uids, headers=plan.needsHeaders)
        view.announceFlags(session, infos)
        saveDates = mailbox.saveDates(uids) if plan.needsSaveDate else {}
        for info in infos:
            seq = view.seqOf(info.uid)
            if seq is None:
                continue
            recent = info.uid in view.recent
            text = plan.line(seq, info, recent)
            if text is None:
                try:
                    chunks = plan.render(info, lambda u=info.uid: mailbox.openMessage(u), recent=recent,
                                         markSeen=False, saveDate=saveDates.get(info.uid))
                except (StoreError, ValueError):
                    continue
                text = b"%d FETCH " % (seq,) + b"".join(streamChunks(chunks))
            session.sendUntagged(text)


# -- the command ---------------------------------------------------------------------------


@command("NOTIFY", AUTH, capability="NOTIFY")
def do_NOTIFY(session, tag, args):
    from gateway.imap.commands_selected import fetchRegistry

    spec = parseNotify(args, fetchRegistry(session))
    notifier = None
    if spec is not None:
        # Started before the old one stops: a NOTIFY SET that fails leaves
        # the previous one as it was.
        notifier = Notifier(session, spec)
        notifier.start()
    if session.notify is not None:
        session.notify.stop()
    session.notify = notifier
    return ("OK", "NOTIFY completed")

