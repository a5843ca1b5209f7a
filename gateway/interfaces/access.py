# -*- test-case-name: tests.test_access -*-
"""
The access layer every protocol opens mailboxes through (sharing, RFC 4314
ACLs) and mailbox and server annotations (METADATA, RFC 5464).
"""

from zope.interface import Attribute, Interface

# ---------------------------------------------------------------------------
# Access layer (sharing, RFC 4314 ACLs)


class IMailboxAccess(Interface):
    """
    The access layer of a server: every protocol gets mailboxes through it,
    so one ACL check covers IMAP, POP3, LMTP and what comes later.
    """

    def forViewer(viewer):
        """
        @param viewer: the address of the account that asks.
        @rtype: L{IViewerAccess}
        """

    def rightsOf(viewer, location):
        """
        The rights (a C{frozenset} of RFC 4314 letters) of C{viewer} (an
        address, or C{None}) on the mailbox at C{location}.
        """

    def deliveryTarget(sender, recipient, mailboxName="INBOX"):
        """
        The L{gateway.interfaces.IMailbox} a delivery to C{recipient} (an
        address) for C{mailboxName} goes into: INBOX always, another mailbox
        only when C{sender} is the recipient or has the C{p} right.

        @raise gateway.errors.NoSuchMailbox: otherwise (deliver to INBOX).
        """

    def rebuildIndex():
        """
        Read every C{dovecot-acl} file into the shared index again.

        @return: the number of shared mailboxes.
        """


class IViewerAccess(Interface):
    """
    The mailboxes one account may reach: its own (every right) and other
    accounts' (C{~account/name}, C{~account@domain/name}, C{~public/name})
    with the rights their ACLs give it.
    """

    viewer = Attribute("The viewer's address.")

    def resolve(name):
        """
        @return: the location (C{owner}, C{name}) a viewer's name points to.
        @raise gateway.errors.NoSuchMailbox:
        """

    def nameOf(location):
        """The name the viewer uses for a location."""

    def rights(name):
        """The viewer's rights on C{name} (empty when none or missing)."""

    def getMailbox(name, needed="r"):
        """
        Open a mailbox for an operation that needs the rights C{needed};
        the result checks the viewer's rights on each operation.

        @rtype: L{gateway.interfaces.IMailbox}
        @raise gateway.errors.NoSuchMailbox: missing, or not visible.
        @raise gateway.errors.PermissionDenied: visible, but a right is missing.
        """

    def listMailboxes():
        """
        Every mailbox the viewer may see (own ones and shared ones with
        C{l}), sorted by name; each has the
        L{gateway.interfaces.IMailboxInfo} fields, a C{rights} set and
        C{exists}.
        """

    def createMailbox(name, mailboxClass="IPF.Note", specialUse=None):
        """Create a mailbox (C{k} on the parent in another account)."""

    def deleteMailbox(name):
        """Delete a mailbox and its ACL (needs C{x})."""

    def renameMailbox(oldName, newName):
        """Rename within one account, carrying the ACLs (C{x}, and C{k})."""

    def subscribe(name):
        """Subscribe to any name, own or shared."""

    def unsubscribe(name):
        """Remove a subscription."""

    def createMailboxLater(name, mailboxClass="IPF.Note", specialUse=None):
        """
        L{createMailbox} through the owner's index writer (off the reactor
        thread); so are C{deleteMailboxLater}, C{renameMailboxLater},
        C{subscribeLater} and C{unsubscribeLater}.

        @return: a L{Deferred} firing once the change is durable, failing
            with what the synchronous form raises.
        """

    def deleteMailboxLater(name):
        """L{deleteMailbox} off the reactor thread: a L{Deferred}."""

    def renameMailboxLater(oldName, newName):
        """L{renameMailbox} off the reactor thread: a L{Deferred}."""

    def subscribeLater(name):
        """L{subscribe} off the reactor thread: a L{Deferred}."""

    def unsubscribeLater(name):
        """L{unsubscribe} off the reactor thread: a L{Deferred}."""

    def subscriptions():
        """@return: sorted C{list} of subscribed names."""

    def getACL(name):
        """@return: C{[(identifier, negative, rights)]} (needs C{a})."""

    def setACL(name, identifier, rights, mode=""):
        """Set, add (C{+}) or remove (C{-}) rights (needs C{a})."""

    def deleteACL(name, identifier):
        """Remove an identifier's entry (needs C{a})."""

    def setACLLater(name, identifier, rights, mode=""):
        """
        L{setACL} with the ACL files and the shared index written off the
        reactor thread; so is C{deleteACLLater}.

        @return: a L{Deferred} firing once they are written, failing with
            what the synchronous form raises.
        """

    def deleteACLLater(name, identifier):
        """L{deleteACL} off the reactor thread: a L{Deferred}."""

    def listRights(name, identifier):
        """@return: C{(required, optional)} (needs C{a})."""

    def myRights(name):
        """The viewer's rights; L{gateway.errors.NoSuchMailbox} when none."""


class IMetadata(Interface):
    """
    Mailbox and server annotations (RFC 5464), read and written for a viewer
    through their L{IViewerAccess}; C{""} names the server.
    """

    def getEntries(access, name, entryNames, depth="0", maxSize=None, missing=True):
        """
        @return: C{(pairs, longest)}: C{[(entry, bytes or None)]} and the
            size of the longest value left out by C{maxSize}.
        """

    def setEntries(access, name, pairs):
        """
        Set (C{bytes}) or remove (C{None}) entries, all or none.
        """

    def setEntriesLater(access, name, pairs):
        """
        L{setEntries} through the index writer of the mailbox's owner (off
        the reactor thread).

        @return: a L{Deferred} firing once the entries are durable, failing
            with what L{setEntries} raises.
        """

    def addListener(callback):
        """
        Call C{callback(change)} with a
        L{gateway.store.metadata.MetadataChange} after entries are written
        in this process (IMAP NOTIFY's metadata events).

        @return: a no-argument callable that removes the listener.
        """


class IMetadataEntry(Interface):
    """
    A special METADATA entry (computed, or checked when set) that the wiring
    gives to L{IMetadata}.
    """

    name = Attribute("The entry name, lower case (C{'/shared/vendor/xmapi/container-class'}).")

    def get(metadata, target):
        """
        @param target: a L{gateway.store.metadata.Target}.
        @return: the value (C{bytes}) for the target's viewer, or C{None}.
        """

    def check(metadata, target, value):
        """
        May C{value} (C{bytes} or C{None} to remove) be set?  Raises
        L{gateway.store.metadata.ReadOnlyEntry} or
        L{gateway.store.metadata.InvalidValue} if not; changes nothing.
        """

    def set(metadata, target, value):
        """
        Set a value that L{check} accepted.
        """
