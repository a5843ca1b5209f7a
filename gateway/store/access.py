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
(L{gateway.store.shared}) that checks the viewer's rights on every operation, read again from the
C{dovecot-acl} file when it changes.  A mailbox the viewer has no right to
see (no C{l}, and not the right the operation needs) raises
L{NoSuchMailbox} exactly as a missing one does; one the viewer sees but may
not use this way raises L{PermissionDenied} (as Dovecot does).
"""

import os

from twisted.internet.defer import fail, maybeDeferred, succeed
from zope.interface import implementer

from gateway.errors import (
    DirectoryError,
    InvalidMailboxName,
    NoSuchMailbox,
    PermissionDenied,
)
from gateway.interfaces import IMailboxAccess, IViewerAccess
from gateway.store import acl, maildir, userflags
from gateway.store.acl import ALL_RIGHTS
from gateway.store.shared import Location as Location
from gateway.store.shared import SharedMailbox as SharedMailbox
from gateway.store.shared import allowedFlags as allowedFlags
from gateway.store.shared import check as _check
from gateway.store.shared import flagRight as flagRight
from gateway.store.shared import hasRight as hasRight
from gateway.store.shared import transfer as transfer
from gateway.store.shared import transferLater as transferLater
from gateway.store.writer import callDurably

#: The account that holds a domain's public folders (C{~public/...}).
PUBLIC = "public"
#: Prefix of other users' mailbox names.
OTHERS = "~"


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

    # -- the sharing side of changes: ACL files and the shared index ----------
    #
    # Each is one write of the shared index (SharedIndex.runWrite): in the
    # calling thread (gatewayctl, tests), or in the thread pool of the
    # owner's store (the *Later forms, for clients' commands), so that the
    # reactor never waits for another process's lock on the shared index.

    def writeACL(self, location, newACL):
        """
        Store a mailbox's ACL: its C{dovecot-acl}, the shared index and
        the owner's C{dovecot-acl-list}.
        """
        self.changeACL(location, lambda current: newACL)

    def changeACL(self, location, change):
        """
        Change a mailbox's ACL: C{change(current)} gives the new L{acl.ACL}
        (or C{None}: nothing to write), read and written in one write of
        the shared index, so that two changes do not lose one another.

        @return: C{True} if something was written.
        """
        return self._sharing(False, location.owner, self._changeACL, location, change)

    def changeACLLater(self, location, change):
        """
        L{changeACL} off the reactor thread.

        @return: a L{Deferred} firing once it is written.
        """
        return self._sharing(True, location.owner, self._changeACL, location, change)

    def forgetACL(self, location):
        """
        A mailbox was deleted: remove its ACL (the folder may stay, for its
        children) and forget it in the index.
        """
        self._sharing(False, location.owner, self._forgetACL, location)

    def forgetACLLater(self, location):
        """
        L{forgetACL} off the reactor thread.

        @return: a L{Deferred} firing once it is written.
        """
        return self._sharing(True, location.owner, self._forgetACL, location)

    def renamedACL(self, owner, old, new):
        """
        A mailbox was renamed (its folder, with the ACL files of it and its
        children, moved with it): follow in the index.
        """
        self._sharing(False, owner, self._renamedACL, owner, old, new)

    def renamedACLLater(self, owner, old, new):
        """
        L{renamedACL} off the reactor thread.

        @return: a L{Deferred} firing once it is written.
        """
        return self._sharing(True, owner, self._renamedACL, owner, old, new)

    def _sharing(self, later, owner, f, *args):
        """
        Run C{f(conn, group, store, *args)} (C{store} the owner's) in one
        write of the shared index: at once, or (C{later}) in the thread
        pool of the owner's store.

        @return: what C{f} returned, or (C{later}) a L{Deferred} of it.
        """
        try:
            store = self.storeOf(owner)
        except Exception:
            if later:
                return fail()
            raise

        def write(conn, group):
            return f(conn, group, store, *args)
        if not later:
            return self.sharedIndex.runWrite(write)
        run = getattr(store, "_deferToThread", None)
        if run is None or self.sharedIndex.path is None:
            # In memory (tests): one connection, the reactor thread's.
            return maybeDeferred(self.sharedIndex.runWrite, write)
        return run(self.sharedIndex.runWrite, write)

    def _changeACL(self, conn, group, store, location, change):
        folder = maildir.mailboxPath(store.path, location.name)
        current = acl.readACL(folder)
        new = change(acl.ACL(current.entries))
        if new is None:
            return False
        _writeACLFile(group, folder, new, current)
        self.sharedIndex.update(location.owner, location.name, new, conn)
        self._writeList(conn, group, location.owner, store)
        return True

    def _forgetACL(self, conn, group, store, location):
        folder = maildir.mailboxPath(store.path, location.name)
        _writeACLFile(group, folder, acl.ACL(), acl.readACL(folder))
        self.sharedIndex.remove(location.owner, location.name, conn)
        self._writeList(conn, group, location.owner, store)

    def _renamedACL(self, conn, group, store, owner, old, new):
        self.sharedIndex.rename(owner, old, new, conn)
        self._writeList(conn, group, owner, store)

    def _writeList(self, conn, group, owner, store):
        """
        Write the owner's C{dovecot-acl-list} from the shared index (as
        C{conn} reads it); written again from the committed index if the
        write does not commit.
        """
        def names():
            return [name for name in self.sharedIndex.mailboxesOf(owner, conn)
                    if acl.readACL(maildir.mailboxPath(store.path, name)).lookupShared()]
        acl.writeACLList(store.path, names())
        group.syncFolder(store.path)
        group.ifRolledBack(lambda: acl.writeACLList(store.path, names()))

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
        d = callDurably(store, "createMailbox", location.name, mailboxClass, specialUse)
        return d.addCallback(lambda _: self._inheritACL(location, later=True))

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

    def _inheritACL(self, location, later=False):
        """
        A new mailbox takes its parent's ACL; with C{later}, off the
        reactor thread (L{MailboxAccess.changeACLLater}).

        @return: with C{later}, a L{Deferred} firing once it is written.
        """
        parents = maildir.parentNames(location.name)
        if parents:
            inherited = self.layer.aclOf(Location(location.owner, parents[-1]))
            if inherited.entries:
                if later:
                    return self.layer.changeACLLater(location, lambda current: inherited)
                self.layer.writeACL(location, inherited)
        return succeed(None) if later else None

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
        return d.addCallback(lambda _: self.layer.forgetACLLater(location))

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
        d = callDurably(store, "renameMailbox", old.name, new.name)
        return d.addCallback(lambda _: self._renamedACL(old, new, later=True))

    def _renamedACL(self, old, new, later=False):
        """
        The ACLs follow a RENAME; with C{later}, off the reactor thread.

        @return: with C{later}, a L{Deferred} firing once they did.
        """
        if old.name == "INBOX":
            return succeed(None) if later else None
        if later:
            return self.layer.renamedACLLater(old.owner, old.name, new.name)
        self.layer.renamedACL(old.owner, old.name, new.name)
        return None

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
        return self._ownLater("subscribe", name)

    def unsubscribeLater(self, name):
        """
        L{unsubscribe} by the viewer's index writer.

        @return: a L{Deferred} firing once durable.
        """
        return self._ownLater("unsubscribe", name)

    def _ownLater(self, name, *args):
        """
        The write C{name} of the viewer's own store, by its index writer.
        """
        try:
            store = self.layer.storeOf(self.viewer)
        except Exception:
            return fail()
        return callDurably(store, name, *args)

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
        location, change = self._setting(name, identifier, rights, mode)
        if change is not None:
            self.layer.changeACL(location, change)

    def setACLLater(self, name, identifier, rights, mode=""):
        """
        L{setACL} with the ACL files and the shared index written off the
        reactor thread (the checks here).

        @return: a L{Deferred} firing once they are written.
        """
        try:
            location, change = self._setting(name, identifier, rights, mode)
        except Exception:
            return fail()
        if change is None:
            return succeed(None)
        return self.layer.changeACLLater(location, change)

    def _setting(self, name, identifier, rights, mode):
        """
        The checks of L{setACL}.

        @return: the L{Location} and the change for
            L{MailboxAccess.changeACL} (C{None}: nothing to change).
        """
        location = self._existing(name, "a")
        key, negative = acl.parseIdentifier(identifier, self.domain)
        parsed = acl.parseRights(rights)
        if key in (acl.OWNER, acl.USER_PREFIX + location.owner):
            if not parsed >= frozenset(acl.STANDARD_RIGHTS) or negative or mode == "-":
                raise acl.ACLError("the owner always has every right")
            return location, None

        def change(current):
            current.change(key, negative, parsed, mode)
            return current
        return location, change

    def deleteACL(self, name, identifier):
        self.layer.changeACL(*self._deleting(name, identifier))

    def deleteACLLater(self, name, identifier):
        """
        L{deleteACL} with the ACL files and the shared index written off
        the reactor thread (the checks here).

        @return: a L{Deferred} firing once they are written.
        """
        try:
            location, change = self._deleting(name, identifier)
        except Exception:
            return fail()
        return self.layer.changeACLLater(location, change)

    def _deleting(self, name, identifier):
        location = self._existing(name, "a")
        key, negative = acl.parseIdentifier(identifier, self.domain)

        def change(current):
            return current if current.delete(key, negative) else None
        return location, change

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


def _writeACLFile(group, folder, new, old):
    """
    Write a mailbox's C{dovecot-acl} (L{acl.writeACL}) in a write of the
    shared index: C{old} written back if the write does not commit.
    """
    acl.writeACL(folder, new)
    group.ifRolledBack(acl.writeACL, folder, old)
    if os.path.isdir(folder):
        group.syncFolder(folder)


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
