# -*- test-case-name: tests.test_access -*-
"""
The access layer: every protocol gets mailboxes through it.  Given the
viewer (an account address) and a mailbox name it finds the owner, opens
the owner's store and checks the viewer's RFC 4314 rights (L{acl}).

Names, as the viewer sees them::

    INBOX, Work/2024          the viewer's own mailboxes
    ~boss/Calendar            account boss in the viewer's domain
    ~boss@b.test/Calendar     an account of another domain
    ~public/news              the domain's shared folders (an account
                              named C{public}, made with the domain)

The owner has every right on their own mailboxes, which are handed out
unwrapped (no cost).  Another account's mailbox is a L{SharedMailbox}
that checks the viewer's rights on every operation, read again from the
C{dovecot-acl} file when it changes.  A mailbox the viewer has no right to
see (no C{l}, and not the right the operation needs) raises
L{NoSuchMailbox} exactly as a missing one does; one the viewer sees but may
not use this way raises L{PermissionDenied} (as Dovecot does).
"""

import attr
from twisted.internet.defer import fail, maybeDeferred, succeed
from zope.interface import implementer

from gateway.errors import (
    DirectoryError,
    InvalidMailboxName,
    NoSuchMailbox,
    PermissionDenied,
    StoreError,
)
from gateway.interfaces import IMailbox, IMailboxAccess, IViewerAccess
from gateway.store import acl, maildir, properties, userflags
from gateway.store.acl import ALL_RIGHTS

#: The account that holds a domain's public folders (C{~public/...}).
PUBLIC = "public"
#: Prefix of other users' mailbox names.
OTHERS = "~"

_FLAG_RIGHTS = {"\\seen": "s", "\\deleted": "t"}


def flagRight(flag):
    """
    The right that setting or clearing C{flag} needs: C{s} for C{\\Seen},
    C{t} for C{\\Deleted}, C{w} for any other flag or keyword.
    """
    return _FLAG_RIGHTS.get(flag.lower(), "w")


def allowedFlags(flags, rights):
    return [flag for flag in flags if flagRight(flag) in rights]


class Location:
    """
    Where a name points: C{owner} (address) and C{name} (canonical, in
    the owner's store).
    """

    __slots__ = ("owner", "name")

    def __init__(self, owner, name):
        self.owner = owner
        self.name = name

    def __repr__(self):
        return "<Location %s %r>" % (self.owner, self.name)


class ListedMailbox:
    """
    A mailbox as a viewer's LIST shows it: the name the viewer uses, the
    L{IMailboxInfo} fields, and the viewer's rights.
    """

    def __init__(self, name, mailboxClass, specialUse, hasChildren, selectable, rights, exists=True):
        self.name = name
        self.mailboxClass = mailboxClass
        self.specialUse = specialUse
        self.hasChildren = hasChildren
        self.selectable = selectable
        self.rights = rights
        #: C{False} for a level of another account's hierarchy that the
        #: viewer may not see itself (shown C{\\Noselect}).
        self.exists = exists

    def __repr__(self):
        return "<ListedMailbox %r>" % (self.name,)


@implementer(IMailboxAccess)
class MailboxAccess:
    """
    The access layer of one server: opens owners' stores through
    C{accountFor} (the realm's) and keeps the shared index.

    @param accountFor: C{accountFor(address)} -> L{IAccount}, raising
        L{DirectoryError} for an unknown account.
    @param sharedIndex: the L{acl.SharedIndex}.
    @param accounts: a no-argument callable giving C{(address, mail root)}
        of every account, to rebuild a lost shared index; or C{None}.
    """

    def __init__(self, accountFor, sharedIndex, accounts=None):
        self._accountFor = accountFor
        self.sharedIndex = sharedIndex
        self._accounts = accounts
        if accounts is not None and not sharedIndex.exists():
            self.rebuildIndex()

    def rebuildIndex(self):
        """
        Read every account's C{dovecot-acl} files into the shared index.

        @return: the number of shared mailboxes found.
        """
        return self.sharedIndex.rebuild(self._accounts() if self._accounts is not None else [])

    def forViewer(self, viewer):
        return ViewerAccess(self, viewer.lower())

    def storeOf(self, owner):
        """
        The owner's mail store, or L{NoSuchMailbox} for an unknown account.
        """
        try:
            return self._accountFor(owner).mailStore
        except DirectoryError:
            raise NoSuchMailbox(owner) from None

    def aclOf(self, location):
        return acl.readACL(maildir.mailboxPath(self.storeOf(location.owner).path, location.name))

    def rightsOf(self, viewer, location):
        """
        The rights of C{viewer} (an address, or C{None} for someone not
        logged in) on the mailbox at C{location}.
        """
        if viewer is not None and viewer == location.owner:
            return ALL_RIGHTS
        return self.aclOf(location).rightsFor(viewer, location.owner)

    def writeACL(self, location, newACL):
        """
        Store a mailbox's ACL: its C{dovecot-acl}, the shared index and
        the owner's C{dovecot-acl-list}.
        """
        store = self.storeOf(location.owner)
        acl.writeACL(maildir.mailboxPath(store.path, location.name), newACL)
        self.sharedIndex.update(location.owner, location.name, newACL)
        self._writeList(location.owner, store)

    def _writeList(self, owner, store):
        names = [name for name in self.sharedIndex.mailboxesOf(owner)
                 if acl.readACL(maildir.mailboxPath(store.path, name)).lookupShared()]
        acl.writeACLList(store.path, names)

    def forgetACL(self, location):
        """
        A mailbox was deleted: remove its ACL (the folder may stay, for its
        children) and forget it in the index.
        """
        store = self.storeOf(location.owner)
        acl.writeACL(maildir.mailboxPath(store.path, location.name), acl.ACL())
        self.sharedIndex.remove(location.owner, location.name)
        self._writeList(location.owner, store)

    def renamedACL(self, owner, old, new):
        """
        A mailbox was renamed (its folder, with the ACL files of it and its
        children, moved with it): follow in the index.
        """
        self.sharedIndex.rename(owner, old, new)
        self._writeList(owner, self.storeOf(owner))

    def deliveryTarget(self, sender, recipient, mailboxName="INBOX"):
        """
        The mailbox a delivery to C{recipient+mailboxName} goes into: INBOX
        always; another mailbox only when the sender is the recipient or
        has the C{p} right on it (RFC 4314).

        @param sender: the envelope sender address, or C{None}/C{""}.
        @param recipient: the recipient account's address.
        @raise NoSuchMailbox: no such mailbox, or the sender may not post
            into it (the caller delivers to INBOX instead).
        """
        recipient = recipient.lower()
        store = self.storeOf(recipient)
        try:
            name = maildir.canonicalName(mailboxName)
        except InvalidMailboxName:
            raise NoSuchMailbox(mailboxName) from None
        if name != "INBOX":
            rights = self.rightsOf((sender or "").lower() or None, Location(recipient, name))
            if "p" not in rights:
                raise NoSuchMailbox(name)
        return store.getMailbox(name)


def domainOf(address):
    return address.rpartition("@")[2]


@implementer(IViewerAccess)
class ViewerAccess:
    """
    The access layer as one viewer sees it (an account's C{access}).
    """

    def __init__(self, layer, viewer):
        self.layer = layer
        self.viewer = viewer
        self.domain = domainOf(viewer)

    # -- names ------------------------------------------------------------------

    def resolve(self, name):
        """
        @return: the L{Location} of a viewer's name.
        @raise NoSuchMailbox: for a bad or incomplete name.
        """
        if name.startswith(OTHERS):
            owner, _, local = name[1:].partition("/")
            owner = owner.lower()
            if not owner or not local:
                raise NoSuchMailbox(name)
            if "@" not in owner:
                owner = "%s@%s" % (owner, self.domain)
        else:
            owner, local = self.viewer, name
        try:
            local = maildir.canonicalName(local)
        except InvalidMailboxName:
            raise NoSuchMailbox(name) from None
        return Location(owner, local)

    def nameOf(self, location):
        """
        The name the viewer uses for a location.
        """
        if location.owner == self.viewer:
            return location.name
        local, _, domain = location.owner.partition("@")
        return OTHERS + (local if domain == self.domain else location.owner) + "/" + location.name

    def isOwn(self, name):
        return not name.startswith(OTHERS) or self.resolve(name).owner == self.viewer

    # -- rights -----------------------------------------------------------------

    def rights(self, name):
        """
        The viewer's rights on a mailbox (an empty set for a mailbox that
        does not exist or is not shared with the viewer).
        """
        location = self.resolve(name)
        if location.owner == self.viewer:
            return ALL_RIGHTS
        try:
            return self.layer.rightsOf(self.viewer, location)
        except NoSuchMailbox:
            return frozenset()

    def require(self, name, needed):
        """
        Check that the viewer has every right in C{needed} on C{name}.

        @return: the L{Location}.
        @raise NoSuchMailbox: when the viewer may not see the mailbox.
        @raise PermissionDenied: when it may but lacks a right.
        """
        location = self.resolve(name)
        if location.owner == self.viewer:
            return location
        rights = self.layer.rightsOf(self.viewer, location)
        _check(rights, needed, name)
        return location

    # -- mailboxes ----------------------------------------------------------------

    def getMailbox(self, name, needed="r"):
        """
        Open a mailbox for an operation that needs the rights C{needed}.

        @return: the owner's L{IMailbox} for an own mailbox, else a
            L{SharedMailbox}.
        """
        location = self.require(name, needed)
        store = self.layer.storeOf(location.owner)
        mailbox = store.getMailbox(location.name)
        if location.owner == self.viewer:
            return mailbox
        return SharedMailbox(mailbox, self, location)

    def listMailboxes(self):
        """
        Every mailbox the viewer may see: their own, then other accounts'
        mailboxes with C{l} (from the shared index, so no other store is
        opened), with the levels above those as C{\\Noselect}.

        @return: C{list} of L{ListedMailbox}, sorted by name.
        """
        own = self.layer.storeOf(self.viewer)
        result = [ListedMailbox(info.name, info.mailboxClass, info.specialUse, info.hasChildren,
                                info.selectable, ALL_RIGHTS) for info in own.listMailboxes()]
        visible = {}
        for (owner, name), rights in self.layer.sharedIndex.visibleTo(self.viewer).items():
            if "l" in rights:
                visible[self.nameOf(Location(owner, name))] = rights
        parents = set()
        for name in visible:
            parts = name.split("/")
            for i in range(1, len(parts)):
                parents.add("/".join(parts[:i]))
        for name in sorted(set(visible) | parents):
            if name in visible:
                result.append(ListedMailbox(name, "IPF.Note", None, name in parents, True, visible[name]))
            else:
                result.append(ListedMailbox(name, "IPF.Note", None, True, False, frozenset(), exists=False))
        result.sort(key=lambda m: m.name)
        return result

    def createMailbox(self, name, mailboxClass="IPF.Note", specialUse=None):
        """
        Create a mailbox: an own one, or in another account where the
        viewer has C{k} on the parent; a new mailbox of another account
        starts with its parent's ACL (as Dovecot does).
        """
        location, store = self._creatable(name)
        store.createMailbox(location.name, mailboxClass, specialUse)
        self._inheritACL(location)

    def createMailboxLater(self, name, mailboxClass="IPF.Note", specialUse=None):
        """
        L{createMailbox} by the owner's index writer (the rights are read
        here, the ACL inherited once the mailbox is durable).

        @return: a L{Deferred} firing once the new mailbox is durable.
        """
        try:
            location, store = self._creatable(name)
        except Exception:
            return fail()
        d = _laterIn(store, "createMailbox", location.name, mailboxClass, specialUse)
        return d.addCallback(lambda _: self._inheritACL(location))

    def _creatable(self, name):
        """
        The checks of L{createMailbox}.

        @return: the L{Location} and the owner's store.
        """
        location = self.resolve(name)
        store = self.layer.storeOf(location.owner)
        parents = maildir.parentNames(location.name)
        if location.owner != self.viewer:
            if not parents:
                raise PermissionDenied(name)
            parent = Location(location.owner, parents[-1])
            try:
                rights = self.layer.rightsOf(self.viewer, parent)
            except NoSuchMailbox:
                rights = frozenset()
            _check(rights, "k", name)
        return location, store

    def _inheritACL(self, location):
        parents = maildir.parentNames(location.name)
        if parents:
            inherited = self.layer.aclOf(Location(location.owner, parents[-1]))
            if inherited.entries:
                self.layer.writeACL(location, inherited)

    def deleteMailbox(self, name):
        location, store, mailbox = self._deletable(name)
        _deleteWithFlags(store, location.name, mailbox)
        self.layer.forgetACL(location)

    def deleteMailboxLater(self, name):
        """
        L{deleteMailbox} by the owner's index writer (its viewers' private
        flags in the same write); the ACL forgotten once durable.

        @return: a L{Deferred} firing once the deletion is durable.
        """
        try:
            location, store, mailbox = self._deletable(name)
        except Exception:
            return fail()
        d = _writeIn(store, _deleteWithFlags, store, location.name, mailbox)
        return d.addCallback(lambda _: self.layer.forgetACL(location))

    def _deletable(self, name):
        location = self.require(name, "x")
        store = self.layer.storeOf(location.owner)
        try:
            mailbox = store.getMailbox(location.name)
        except NoSuchMailbox:
            mailbox = None  # a \\Noselect level
        return location, store, mailbox

    def renameMailbox(self, oldName, newName):
        old, new = self._renamable(oldName, newName)
        self.layer.storeOf(old.owner).renameMailbox(old.name, new.name)
        self._renamedACL(old, new)

    def renameMailboxLater(self, oldName, newName):
        """
        L{renameMailbox} by the owner's index writer; the ACLs follow once
        it is durable.

        @return: a L{Deferred} firing once the rename is durable.
        """
        try:
            old, new = self._renamable(oldName, newName)
            store = self.layer.storeOf(old.owner)
        except Exception:
            return fail()
        d = _laterIn(store, "renameMailbox", old.name, new.name)
        return d.addCallback(lambda _: self._renamedACL(old, new))

    def _renamedACL(self, old, new):
        if old.name != "INBOX":
            self.layer.renamedACL(old.owner, old.name, new.name)

    def _renamable(self, oldName, newName):
        """
        The checks of L{renameMailbox}.

        @return: the old and new L{Location}s.
        """
        old = self.require(oldName, "x")
        new = self.resolve(newName)
        if new.owner != old.owner:
            raise InvalidMailboxName("a mailbox cannot move to another account")
        if old.owner != self.viewer:
            parents = maildir.parentNames(new.name)
            if not parents:
                raise PermissionDenied(newName)
            try:
                rights = self.layer.rightsOf(self.viewer, Location(new.owner, parents[-1]))
            except NoSuchMailbox:
                rights = frozenset()
            _check(rights, "k", newName)
        return old, new

    # -- subscriptions (kept in the viewer's own store, any name) ----------------

    def subscribe(self, name):
        self.layer.storeOf(self.viewer).subscribe(name)

    def unsubscribe(self, name):
        self.layer.storeOf(self.viewer).unsubscribe(name)

    def subscribeLater(self, name):
        """
        L{subscribe} by the viewer's index writer.

        @return: a L{Deferred} firing once durable.
        """
        try:
            store = self.layer.storeOf(self.viewer)
        except Exception:
            return fail()
        return _laterIn(store, "subscribe", name)

    def unsubscribeLater(self, name):
        """
        L{unsubscribe} by the viewer's index writer.

        @return: a L{Deferred} firing once durable.
        """
        try:
            store = self.layer.storeOf(self.viewer)
        except Exception:
            return fail()
        return _laterIn(store, "unsubscribe", name)

    def subscriptions(self):
        return self.layer.storeOf(self.viewer).subscriptions()

    # -- ACL commands -----------------------------------------------------------

    def _existing(self, name, needed):
        """
        L{require}, and the mailbox must exist (C{NoSuchMailbox} otherwise).
        """
        location = self.require(name, needed)
        self.layer.storeOf(location.owner).getMailbox(location.name)
        return location

    def getACL(self, name):
        """
        The ACL of a mailbox (needs C{a}).

        @return: C{[(identifier, negative, rights)]}, the owner first, as
            IMAP shows them.
        """
        location = self._existing(name, "a")
        entries = [(location.owner, False, ALL_RIGHTS)]
        for identifier, negative, rights in self.layer.aclOf(location).sortedEntries():
            if identifier == acl.OWNER:
                continue
            entries.append((acl.imapIdentifier(identifier), negative, rights))
        return entries

    def setACL(self, name, identifier, rights, mode=""):
        """
        SETACL: set, add (C{"+"}) or remove (C{"-"}) rights of an identifier
        (needs C{a}).

        @raise acl.ACLError: for a bad identifier or right.
        """
        location = self._existing(name, "a")
        key, negative = acl.parseIdentifier(identifier, self.domain)
        parsed = acl.parseRights(rights)
        if key in (acl.OWNER, acl.USER_PREFIX + location.owner):
            if not parsed >= frozenset(acl.STANDARD_RIGHTS) or negative or mode == "-":
                raise acl.ACLError("the owner always has every right")
            return
        current = self.layer.aclOf(location)
        current.change(key, negative, parsed, mode)
        self.layer.writeACL(location, current)

    def deleteACL(self, name, identifier):
        location = self._existing(name, "a")
        key, negative = acl.parseIdentifier(identifier, self.domain)
        current = self.layer.aclOf(location)
        if current.delete(key, negative):
            self.layer.writeACL(location, current)

    def listRights(self, name, identifier):
        """
        LISTRIGHTS (needs C{a}): C{(required, optional)} rights strings.
        """
        location = self._existing(name, "a")
        key, _negative = acl.parseIdentifier(identifier, self.domain)
        if key in (acl.OWNER, acl.USER_PREFIX + location.owner):
            return acl.RIGHTS, []
        return "", list(acl.STANDARD_RIGHTS) + ["c", "d"] + list(acl.SITE_RIGHTS)

    def myRights(self, name):
        """
        MYRIGHTS: the viewer's rights; L{NoSuchMailbox} when the viewer may
        not see the mailbox (no C{l}), as for every other command: rights
        such as C{p} alone (which the MTA's deliveries use) must not tell
        anyone that a mailbox exists.
        """
        location = self.resolve(name)
        rights = self.layer.rightsOf(self.viewer, location)
        if "l" not in rights:
            raise NoSuchMailbox(name)
        self.layer.storeOf(location.owner).getMailbox(location.name)
        return rights


def _deleteWithFlags(store, name, mailbox):
    """
    Delete mailbox C{name} of C{store} with its viewers' private flags
    (C{mailbox}, the open mailbox, or C{None} for a C{\\Noselect} level).
    """
    store.deleteMailbox(name)
    if mailbox is not None:
        userflags.forget(mailbox)


def _laterIn(store, name, *args):
    """
    Call the store's C{nameLater} form where it has one (the index
    writer), else C{name} itself.

    @return: a L{Deferred} firing with the result once durable.
    """
    later = getattr(store, name + "Later", None)
    if later is None:
        return maybeDeferred(getattr(store, name), *args)
    return later(*args)


def _writeIn(store, f, *args):
    """
    Run C{f(*args)} in one write of C{store}'s index writer; at once where
    it has none.

    @return: a L{Deferred} firing with its result once durable.
    """
    write = getattr(store, "_write", None)
    if write is None:
        return maybeDeferred(f, *args)
    return write(lambda conn, group: f(*args))


def _check(rights, needed, name):
    missing = [right for right in needed if right not in rights]
    if not missing:
        return
    if "l" in rights:
        raise PermissionDenied("missing right %s on %s" % ("".join(missing), name))
    raise NoSuchMailbox(name)


@implementer(IMailbox)
class SharedMailbox:
    """
    Another account's mailbox as a viewer uses it: the owner's L{IMailbox}
    (shared, so changes reach every session at once) behind a check of the
    viewer's rights on each operation.  Flags the viewer may not change are
    dropped silently (RFC 4314 4).
    """

    def __init__(self, mailbox, access, location):
        self._mailbox = mailbox
        self._access = access
        self._location = location

    #: What passes to the owner's mailbox unchecked: what a viewer who may
    #: see the mailbox may know of it.  Everything else is a method of this
    #: class that checks rights, or is not there: a new mailbox method is
    #: refused to viewers until it is wrapped here.
    _UNCHECKED = frozenset(["mailboxClass", "specialUse", "uidValidity", "uidNext", "highestModSeq", "uids",
                            "uidSnapshot", "uidState", "claimRecent", "unclaimedRecent", "addListener", "synchronize",
                            "mailboxId"])

    def __getattr__(self, name):
        if name in SharedMailbox._UNCHECKED:
            return getattr(self._mailbox, name)
        if name.startswith("_"):
            # The owner's mailbox's internals, for the store's own helpers
            # that are handed a shared mailbox.
            return getattr(self._mailbox, name)
        raise AttributeError("%s is not available on another account's mailbox" % (name,))

    def __repr__(self):
        return "<SharedMailbox %r of %s>" % (self._location.name, self._location.owner)

    @property
    def owner(self):
        return self._location.owner

    @property
    def name(self):
        return self._access.nameOf(Location(self._location.owner, self._mailbox.name))

    def rights(self):
        return self._access.layer.rightsOf(self._access.viewer,
                                           Location(self._location.owner, self._mailbox.name))

    def _need(self, needed):
        _check(self.rights(), needed, self.name)

    @property
    def _viewer(self):
        return self._access.viewer

    # -- reading, with the viewer's own \\Seen ---------------------------------

    def messages(self, uids, headers=True):
        self._need("r")
        return userflags.personalize(self._mailbox, self._viewer, self._mailbox.messages(uids, headers), own=True)

    def changesSince(self, modseq):
        expunged, changed, highest = self._mailbox.changesSince(modseq)
        return expunged, userflags.personalize(self._mailbox, self._viewer, changed), highest

    def counts(self):
        counts = self._mailbox.counts()
        return attr.evolve(counts, unseen=userflags.unseenCount(self._mailbox, self._viewer))

    def search(self, term, limit=None):
        self._need("r")
        return userflags.search(self._mailbox, self._viewer, term, limit)

    def openMessage(self, uid):
        self._need("r")
        return self._mailbox.openMessage(uid)

    def keywords(self):
        self._need("r")
        return self._mailbox.keywords()

    def saveDates(self, uids):
        self._need("r")
        return self._mailbox.saveDates(uids)

    # -- writing -----------------------------------------------------------------

    def appendMessage(self, source, flags=(), internalDate=None):
        rights = self.rights()
        _check(rights, "i", self.name)
        flags = allowedFlags(flags, rights)
        shared = [flag for flag in flags if flag.lower() != "\\seen"]
        uid = self._mailbox.appendMessage(source, shared, internalDate)
        if len(shared) != len(flags):
            userflags.setSeen(self._mailbox, self._viewer, [uid], "+")
        return uid

    def appendMessageLater(self, source, flags=(), internalDate=None):
        """
        L{appendMessage} off the reactor thread: the file written in the
        thread pool, its row by the owner's index writer.

        @return: a L{Deferred} firing with the new UID once it is durable.
        """
        return self.appendMessagesLater([(source, flags, internalDate)]).addCallback(lambda uids: uids[0])

    def appendMessagesLater(self, messages):
        """
        Several messages, all or none (MULTIAPPEND), as
        L{Mailbox.appendMessagesLater} does for the owner: in one write of
        the owner's index writer, with the viewer's own C{\\Seen}.

        @return: a L{Deferred} firing with their UIDs once durable.
        """
        try:
            rights = self.rights()
            _check(rights, "i", self.name)
        except Exception:
            return fail()
        shared, finish = self._sharedFlags(rights, [flags for _source, flags, _date in messages])
        return self._mailbox.appendMessagesLater(
            [(source, flags, date) for (source, _flags, date), flags in zip(messages, shared, strict=True)],
            finish)

    def _sharedFlags(self, rights, flagLists):
        """
        The flags the viewer may set, split: what goes on the messages, and
        a C{finish(uids)} for L{Mailbox.commitMessagesLater} that sets the
        viewer's own C{\\Seen} where it was asked.

        @return: C{(list of flag lists, finish)}.
        """
        shared, seen = [], []
        for flags in flagLists:
            allowed = allowedFlags(flags, rights)
            shared.append([flag for flag in allowed if flag.lower() != "\\seen"])
            seen.append(len(shared[-1]) != len(allowed))

        def finish(uids):
            mine = [uid for uid, wanted in zip(uids, seen, strict=True) if wanted]
            if mine:
                userflags.setSeen(self._mailbox, self._viewer, mine, "+")
        return shared, finish

    def setFlags(self, uids, flags, mode, unchangedSince=None):
        return self._setFlags(self.rights(), uids, flags, mode, unchangedSince)

    def setFlagsLater(self, uids, flags, mode, unchangedSince=None):
        """
        L{setFlags} by the owner's index writer (the rights are read here,
        on the calling thread).

        @return: a L{Deferred} firing with what L{setFlags} returns once
            the change is durable.
        """
        try:
            rights = self.rights()
        except Exception:
            return fail()
        return self._later(self._setFlags, rights, uids, flags, mode, unchangedSince)

    def _later(self, f, *args):
        """
        Run C{f(*args)} in the owner's store's index writer, in a group
        with the owner's sessions' writes; at once where the owner's
        mailbox has no writer (tests' stores without threads).
        """
        return _laterOn(self._mailbox, f, *args)

    def _setFlags(self, rights, uids, flags, mode, unchangedSince):
        allowed = allowedFlags(flags, rights)
        seen = any(flag.lower() == "\\seen" for flag in allowed)
        allowed = [flag for flag in allowed if flag.lower() != "\\seen"]
        changedUids, failed = set(), []
        if "s" in rights and (seen or mode == "="):
            if unchangedSince is not None:
                keep = {info.uid for info in self._mailbox.messages(uids, headers=False)
                        if info.modseq <= unchangedSince}
                failed = [uid for uid in uids if uid not in keep]
                seenTargets = sorted(keep)
            else:
                seenTargets = uids
            how = "+" if seen and mode != "-" else "-"
            changedUids.update(userflags.setSeen(self._mailbox, self._viewer, seenTargets, how))
        shareable = {"w", "t"} & rights
        if mode != "=" and allowed or mode == "=" and shareable:
            if mode != "=":
                done, skipped = self._mailbox.setFlags(uids, allowed, mode, unchangedSince)
            else:
                done, skipped = self._replaceShared(uids, allowed, rights, unchangedSince)
            changedUids.update(info.uid for info in done)
            failed.extend(u for u in skipped if u not in failed)
        _check(rights, "r", self.name)
        changed = self._mailbox.messages(sorted(changedUids))
        return userflags.personalize(self._mailbox, self._viewer, changed, own=True), failed

    def _replaceShared(self, uids, allowed, rights, unchangedSince):
        """
        STORE FLAGS (replace) of the shared flags: only the kinds the viewer
        may change are replaced, the others stay as they are.
        """
        wanted = {flag.lower() for flag in allowed}
        remove = set()
        for info in self._mailbox.messages(uids, headers=False):
            remove.update(flag for flag in info.flags - userflags.PRIVATE
                          if flagRight(flag) in rights and flag.lower() not in wanted)
        changed, failed = {}, []
        for flagSet, how in ((allowed, "+"), (sorted(remove), "-")):
            if flagSet:
                done, skipped = self._mailbox.setFlags(uids, flagSet, how, unchangedSince)
                changed.update((info.uid, info) for info in done)
                failed.extend(u for u in skipped if u not in failed)
        return list(changed.values()), failed

    def expunge(self, uids=None):
        self._need("e")
        return self._mailbox.expunge(uids)

    def expungeLater(self, uids=None):
        """
        L{expunge} by the owner's index writer.

        @return: a L{Deferred} firing with the expunged UIDs once durable.
        """
        try:
            self._need("e")
        except Exception:
            return fail()
        return self._later(self._mailbox.expunge, uids)

    def copyTo(self, uids, destination):
        return transfer(self, uids, destination, move=False)

    def moveTo(self, uids, destination):
        return transfer(self, uids, destination, move=True)


def hasRight(mailbox, right):
    """
    Does the viewer who opened C{mailbox} have C{right} on it?  (Always
    for an own mailbox.)
    """
    return not isinstance(mailbox, SharedMailbox) or right in mailbox.rights()


def _unwrap(mailbox):
    return mailbox._mailbox if isinstance(mailbox, SharedMailbox) else mailbox


def transferLater(source, uids, destination, move=False):
    """
    L{transfer} so that the reactor does not wait for it: between two own
    mailboxes of one store through the store's index writer.

    @return: a L{Deferred} firing with what L{transfer} returns once the
        copies (and removals) are durable.
    """
    own = not isinstance(source, SharedMailbox) and not isinstance(destination, SharedMailbox)
    if own and getattr(source, "_store", None) is getattr(destination, "_store", None) \
            and hasattr(source, "copyToLater"):
        return source.moveToLater(uids, destination) if move else source.copyToLater(uids, destination)
    rawDestination = _unwrap(destination)
    if not hasattr(rawDestination, "commitMessagesLater") or not hasattr(_unwrap(source), "_store"):
        return maybeDeferred(transfer, source, uids, destination, move)
    return _transferAcross(source, uids, destination, move)


def _transferAcross(source, uids, destination, move):
    """
    L{transfer} into another account's mailbox (or out of one) off the
    reactor thread: the messages are read and written into the
    destination's C{tmp/} in the thread pool, then committed all together
    in one write of the destination owner's index writer (with their
    properties and the viewer's own C{\\Seen}); a MOVE then removes the
    originals by the source owner's writer.  Not atomic across the two
    indexes: a crash between the two commits leaves the copies and the
    originals, never neither.

    @return: a L{Deferred} firing with C{[(sourceUid, destinationUid)]}
        once durable.
    """
    rawSource, rawDestination = _unwrap(source), _unwrap(destination)
    try:
        if isinstance(source, SharedMailbox):
            # A MOVE is COPY, STORE \Deleted and EXPUNGE on the source (R-DEL-2).
            source._need("rte" if move else "r")
        rights = destination.rights() if isinstance(destination, SharedMailbox) else ALL_RIGHTS
        _check(rights, "i", destination.name)
        infos = source.messages(uids, headers=False)
        store = rawDestination._store
        if store.quota is not None and store is not rawSource._store:
            store.quota.check(sum(info.size for info in infos))
    except Exception:
        return fail()
    if not infos:
        return succeed([])

    def prepareAll():
        # One after another, in one thread: a COPY of thousands opens
        # one file at a time.
        ready = []
        carried = properties.properties(rawSource, [info.uid for info in infos])
        try:
            for info in infos:
                try:
                    f = rawSource.openMessage(info.uid)
                except StoreError:
                    continue  # expunged meanwhile
                try:
                    prepared = rawDestination.prepareMessage(f, None, info.internalDate.timestamp())
                finally:
                    f.close()
                ready.append((info, prepared, carried.get(info.uid)))
        except BaseException:
            for _info, prepared, _found in ready:
                prepared.discard()
            raise
        return ready

    def commit(ready):
        if not ready:
            return []
        if isinstance(destination, SharedMailbox):
            flagLists, finishSeen = destination._sharedFlags(rights, [info.flags for info, _p, _f in ready])
        else:
            flagLists, finishSeen = [info.flags for info, _p, _f in ready], None

        def finish(newUids):
            if finishSeen is not None:
                finishSeen(newUids)
            for (_info, _prepared, found), uid in zip(ready, newUids, strict=True):
                properties.putProperties(rawDestination, uid, found)
        pairs = [(prepared, flags) for (_info, prepared, _found), flags in zip(ready, flagLists, strict=True)]
        d = rawDestination.commitMessagesLater(pairs, finish)
        return d.addCallback(lambda newUids: [(info.uid, uid) for (info, _p, _f), uid in
                                              zip(ready, newUids, strict=True)])

    def removeMoved(pairs):
        if not move or not pairs:
            return pairs
        moved = [pair[0] for pair in pairs]

        def remove():
            rawSource.setFlags(moved, ["\\Deleted"], "+")
            rawSource.expunge(moved)
        return _laterOn(rawSource, remove).addCallback(lambda _: pairs)
    d = rawDestination._store._deferToThread(prepareAll)
    return d.addCallback(commit).addCallback(removeMoved)


def _laterOn(mailbox, f, *args):
    """
    Run C{f(*args)} in the index writer of C{mailbox}'s store (a write
    that may make room on a full disk); at once where it has none.

    @return: a L{Deferred} firing with its result once durable.
    """
    write = getattr(getattr(mailbox, "_store", None), "_write", None)
    if write is None:
        return maybeDeferred(f, *args)
    return write(lambda conn, group: f(*args), makesRoom=True)


def transfer(source, uids, destination, move=False):
    """
    COPY or MOVE between any two mailboxes the viewer opened: between two
    own mailboxes the store's own (atomic) copy; otherwise each message is
    appended to the destination (quota charged to its owner, checked for
    the whole set first), with the flags the viewer may set there and the
    internal date, then for a move the originals are expunged.

    @return: C{[(sourceUid, destinationUid)]}.
    """
    if isinstance(source, SharedMailbox):
        # A MOVE is COPY, STORE \Deleted and EXPUNGE on the source (R-DEL-2).
        source._need("rte" if move else "r")
    if isinstance(destination, SharedMailbox):
        destination._need("i")
    rawSource, rawDestination = _unwrap(source), _unwrap(destination)
    sameStore = getattr(rawSource, "_store", None) is getattr(rawDestination, "_store", None)
    if sameStore and not isinstance(source, SharedMailbox) and not isinstance(destination, SharedMailbox):
        if move:
            return rawSource.moveTo(uids, rawDestination)
        return rawSource.copyTo(uids, rawDestination)
    infos = source.messages(uids, headers=False)
    store = getattr(rawDestination, "_store", None)
    if store is not None and store.quota is not None and not sameStore:
        store.quota.check(sum(info.size for info in infos))
    pairs = []
    for info in infos:
        try:
            f = rawSource.openMessage(info.uid)
        except StoreError:
            continue
        try:
            data = f.read()
        finally:
            f.close()
        pairs.append((info.uid, destination.appendMessage(data, info.flags, info.internalDate)))
        properties.copyAcross(rawSource, info.uid, rawDestination, pairs[-1][1])
    if move and pairs:
        moved = [pair[0] for pair in pairs]
        rawSource.setFlags(moved, ["\\Deleted"], "+")
        rawSource.expunge(moved)
    return pairs
