# -*- test-case-name: tests.test_interfaces -*-
"""
The seams of gateway, as zope Interfaces.

Layers (imports point down only)::

    tap.py / service.py        wiring
    imap/ pop3/ http/ ftp/ lmtp/   protocol front-ends
    cred/                      portal, realm, checkers, SASL, password schemes
    directory/                 domains, accounts, routing
    store/                     mail store, file store, calendar
    interfaces.py, errors.py   (this file)

Every implementation says C{@implementer(...)} and a test calls
C{verifyObject} on it.
"""

from zope.interface import Attribute, Interface

# ---------------------------------------------------------------------------
# Directory


class IDomain(Interface):
    """
    A domain's settings, as read from C{domains/<name>/domain.ini}.
    """

    name = Attribute("Canonical (lower-case) domain name, C{str}.")
    aliases = Attribute("C{tuple} of lower-case alias names of this domain.")
    addresses = Attribute("C{tuple} of local IP addresses assigned to this domain.")
    cleartextLogin = Attribute(
        "C{bool}: may clear-text passwords be used on a connection without TLS?"
    )
    defaultQuota = Attribute("Default account storage quota in bytes, or C{None}.")
    defaultServices = Attribute("C{frozenset} of service names new accounts get.")
    enabled = Attribute("C{bool}: a disabled domain refuses every login and delivery.")
    mechanisms = Attribute(
        "C{tuple} of the SASL mechanisms its accounts may use (upper case); empty"
        " for every mechanism of C{[auth] mechanisms}."
    )


class IAccountRecord(Interface):
    """
    An account's settings, as read from C{.../accounts/<local>/account.ini}.
    """

    address = Attribute("Canonical full name C{'local@domain'} (lower-case).")
    localPart = Attribute("C{str}")
    domain = Attribute("The L{IDomain}.")
    password = Attribute(
        "Stored password: one or more forms in C{{SCHEME}}data notation, one"
        " a line (see L{gateway.cred.forms}), C{str}."
    )
    aliases = Attribute("C{tuple} of lower-case local-part aliases.")
    enabled = Attribute("C{bool}")
    services = Attribute("C{frozenset} of enabled service names (imap, pop3, http, ftp, lmtp).")
    quota = Attribute("Storage quota in bytes (mail + files), or C{None} for unlimited.")
    timezone = Attribute("IANA time zone name for floating/all-day calendar times.")
    path = Attribute("C{FilePath} of the account folder.")


class IDirectory(Interface):
    """
    Domains and accounts, and the routing of names to accounts.

    Changes made on disk (e.g. with C{gatewayctl}) are seen by the next call
    without a restart.
    """

    mainDomain = Attribute("Name of the main domain, C{str}.")

    def domains():
        """
        @return: C{list} of L{IDomain}, sorted by name.
        """

    def getDomain(name):
        """
        @param name: a domain name or a domain alias (any case).
        @return: the L{IDomain}, or C{None}.
        """

    def domainForAddress(localAddress):
        """
        The domain a connection to C{localAddress} (an IP string, or C{None})
        belongs to: the domain assigned to that address, else the main domain.

        @return: an L{IDomain} or C{None} when the main domain does not exist.
        """

    def domainForHost(host, localAddress):
        """
        The domain an HTTP C{Host} header selects: a domain or alias name
        selects it; otherwise L{domainForAddress}.
        """

    def fullName(name, localAddress):
        """
        Make a full C{local@domain} name from a login name as seed 001 says:
        C{@} or C{%} make a full name (C{%} becomes C{@}); otherwise the domain
        assigned to C{localAddress}; otherwise the main domain.  Lower-cased.
        """

    def resolve(name, localAddress=None):
        """
        Route a login name or recipient address to an account: L{fullName},
        then domain aliases, account aliases and router records (followed a
        bounded number of times).

        @return: the L{IAccountRecord}, or C{None} for unknown names, names
            that route to a disabled account or domain, or names that do not
            route to a local account.  Callers must not distinguish why.
        """

    def referral(name, localAddress=None):
        """
        Where router records send a login name that is not a local account
        (LOGIN-REFERRALS, RFC 2221): routed as by L{resolve}.

        @return: the C{local@domain} address, in a domain this directory
            does not hold, that a router record sends C{name} to; C{None}
            when C{name} reaches a local account or nothing.
        """

    def getAccount(address):
        """
        @param address: canonical C{local@domain}; no routing is applied.
        @return: the L{IAccountRecord} or C{None}.
        """

    def accounts(domain=None):
        """
        @param domain: a canonical domain name, or C{None} for every domain.
        @return: C{list} of L{IAccountRecord}, by domain then name.
        """


class ILoginDelays(Interface):
    """
    Login delays per remote address (see L{gateway.cred.delays}): the state
    that must be shared by every session of a server, so that parallel
    connections from one address cannot guess faster than one.
    """

    def admit(remote, key):
        """
        An attempt from C{remote} (an IP C{str} or C{None}) starts.

        @param key: a hashable that is equal for attempts with the same
            name and password (so a browser's parallel requests count as
            one attempt under way), and unique otherwise.
        @return: seconds it must wait before it is checked and answered
            (C{0.0} for at once); an attempt that waits has its turn
            reserved, so parallel attempts are spaced out.
        """

    def finish(remote, succeeded, waited):
        """
        The attempt L{admit} let in has been checked.

        @param succeeded: C{bool}.
        @param waited: C{True} when L{admit} made it wait.
        @return: seconds more before a failure is answered (C{0.0} for a
            success).
        """

    def release(remote, key):
        """
        The attempt L{admit} let in has been answered, or abandoned (the
        client went away): it is no longer under way.
        """

    def failures(remote):
        """
        @return: how many failures in a row C{remote} has had (0 once
            forgotten).
        """


# ---------------------------------------------------------------------------
# Accounts, as the realm hands them to protocols


class IAccount(Interface):
    """
    The avatar every protocol gets from the realm after login (and LMTP gets
    for delivery).  One instance per account per process, shared by all its
    sessions, so that in-process change notification is immediate.
    """

    address = Attribute("Canonical C{local@domain}.")
    record = Attribute("The L{IAccountRecord} (re-read from disk on access).")
    mailStore = Attribute("The account's L{IMailStore}.")
    fileStore = Attribute("The account's L{IFileStore}.")
    quota = Attribute("The account's L{IQuota}.")
    access = Attribute(
        "The L{IViewerAccess} through which this account reaches mailboxes"
        " (its own and those other accounts share with it)."
    )

    def popAlerts():
        """
        Remove and return the pending alert texts (C{list} of C{str}), oldest
        first.  Each alert is shown once.
        """


class IQuota(Interface):
    """
    One storage quota covering mail, files and published free/busy.
    """

    def limit():
        """
        @return: the limit in bytes, or C{None} for unlimited.
        """

    def used():
        """
        @return: bytes used by mail and files together.
        """

    def check(additional):
        """
        @raise gateway.errors.QuotaExceeded: if C{additional} more bytes would
            go over the limit.
        """


# ---------------------------------------------------------------------------
# Login context carried by credentials


class ILoginContext(Interface):
    """
    Where a login attempt comes from; carried as C{credentials.context}.
    """

    protocol = Attribute("C{'imap'}, C{'pop3'}, C{'http'}, C{'ftp'} or C{'lmtp'}.")
    remoteAddress = Attribute("Peer IP C{str} (or C{None}).")
    localAddress = Attribute("The local IP C{str} the client connected to (or C{None}).")
    secure = Attribute("C{bool}: is the connection protected by TLS?")


# ---------------------------------------------------------------------------
# Calendars


class ICalendarQueries(Interface):
    """
    Free/busy and per-message occurrences of an account's calendar
    mailboxes (L{gateway.store.calendar.FreeBusyCache}): what
    C{freebusy.vfb} and XMAPI's C{FETCH XINSTANCES}, C{SEARCH XOVERLAPS} and
    C{XFREEBUSY} (C{docs/xmapi.md}) are answered from.  The plain methods
    are synchronous (call them in a thread); the C{generate} ones look at
    the mail store on the calling thread and compute in a thread.  Windows
    are C{datetime}s (naive means UTC), the end exclusive.
    """

    def generate(account, start, end, url=None, now=None):
        """
        The account's free/busy document (every calendar, times only).

        @return: a C{Deferred} firing with the VCALENDAR C{bytes}.
        """

    def generateView(account, calendars, start, end, organizer=None, url=None, now=None):
        """
        The free/busy document from some calendars, detailed where asked
        (C{X-SUMMARY}, C{X-LOCATION}).

        @param calendars: C{dict} of calendar mailbox name to C{True}
            (details) or C{False} (times only); empty gives the empty
            VFREEBUSY.
        @param organizer: the address to name as C{ORGANIZER}.
        @return: a C{Deferred} firing with the VCALENDAR C{bytes}.
        """

    def generateInstances(account, mailbox, uids, start, end):
        """
        The occurrences of some messages of a mailbox in a window.

        @param account: the mailbox's owner (zone, addresses).
        @return: a C{Deferred} firing with a C{dict} of each UID to a C{tuple}
            of L{gateway.store.calendar.Instance} (start, end, busy type,
            recurrence ID) in start order.
        """

    def generateOverlapping(account, mailbox, start, end, uids=None):
        """
        The messages of a mailbox with an occurrence overlapping a window.

        @return: a C{Deferred} firing with a C{set} of UIDs.
        """

    def heldItems(account, mailbox, uids):
        """
        The parsed calendar items of some messages of a mailbox that the
        engine holds in memory already (XMAPI's derived properties), without
        reading or computing anything: call it on any thread.

        @return: C{dict} of UID to the message's items (as the calendar
            summaries give them), for the UIDs it holds.
        """


# ---------------------------------------------------------------------------
# Mail store


class IMailStore(Interface):
    """
    All mailboxes of one account.  Mailbox names are C{str} (Unicode),
    hierarchy separator C{'/'}; C{'INBOX'} is case-insensitive.
    """

    def listMailboxes():
        """
        @return: C{list} of L{IMailboxInfo} for every mailbox, sorted by name.
        """

    def getMailbox(name):
        """
        Open a mailbox (one object per mailbox per process; sessions share it).

        @rtype: L{IMailbox}
        @raise gateway.errors.NoSuchMailbox:
        """

    def createMailbox(name, mailboxClass="IPF.Note", specialUse=None):
        """
        Create a mailbox, and any missing parents (as plain folders of the
        same class).

        @raise gateway.errors.MailboxExists:
        @raise gateway.errors.InvalidMailboxName:
        """

    def deleteMailbox(name):
        """
        Delete a mailbox and its messages.  A mailbox with children loses its
        messages and becomes unselectable (C{\\Noselect}, RFC 3501 6.3.4);
        deleting an unselectable mailbox that has children raises
        L{gateway.errors.MailboxHasChildren}.  INBOX cannot be deleted
        (L{gateway.errors.InvalidMailboxName}).
        """

    def renameMailbox(oldName, newName):
        """
        Rename a mailbox with all its children.  Renaming INBOX moves its
        messages into a new mailbox and leaves INBOX empty (RFC 3501 6.3.5).
        """

    def subscribe(name):
        """Add C{name} to the subscriptions (it need not exist)."""

    def unsubscribe(name):
        """Remove C{name} from the subscriptions."""

    def subscriptions():
        """@return: sorted C{list} of subscribed names."""

    def usage():
        """@return: bytes used by all messages of all mailboxes."""


class IAccountChangeFeed(Interface):
    """
    Account-level changes of a mail store (mailboxes created, deleted,
    renamed; subscriptions), made by this process or another one over the
    same data root (L{gateway.store.names}).
    """

    def addAccountListener(callback):
        """
        Call C{callback(changes)}, C{changes} a C{list} of
        L{gateway.store.names.MailboxNameChange} and
        L{gateway.store.names.SubscriptionChange}, after each change.

        @return: a no-argument callable that removes the listener.
        """


class IMailboxInfo(Interface):
    """
    What LIST needs to know about a mailbox without opening it.
    """

    name = Attribute("C{str}")
    mailboxClass = Attribute("C{'IPF.Note'}, C{'IPF.Appointment'}, C{'IPF.Contact'}, C{'IPF.Task'}, C{'IPF.StickyNote'},"
                             " C{'IPF.Journal'}, or a sub-class of one (C{'IPF.Appointment.Birthday'}).")
    specialUse = Attribute("C{None} or one of C{'\\\\Drafts'}, C{'\\\\Sent'}, C{'\\\\Trash'}, C{'\\\\Junk'}, C{'\\\\Archive'}.")
    hasChildren = Attribute("C{bool}")
    selectable = Attribute("C{bool}")


class IMessageInfo(Interface):
    """
    A message as the index knows it (no file is read to get these).
    """

    uid = Attribute("C{int}")
    flags = Attribute("C{frozenset} of C{str} system flags and keywords (C{'\\\\Seen'}, C{'$Forwarded'}, ...); never C{\\\\Recent}.")
    internalDate = Attribute("Aware UTC C{datetime}.")
    size = Attribute(
        "Size in bytes of the message with CRLF line ends (RFC822.SIZE), which"
        " is what L{IMailbox.openMessage} yields; the file on disk keeps the"
        " bytes exactly as delivered."
    )
    modseq = Attribute("C{int} modification sequence (RFC 7162).")
    headers = Attribute("The raw header block C{bytes} including the blank line that ends it.")


class IMailbox(Interface):
    """
    One mailbox.  Several sessions (and processes) may use it at once; each
    session keeps its own sequence-number view and learns of changes through
    L{changesSince} and L{addListener}.
    """

    name = Attribute("C{str}")
    mailboxClass = Attribute("See L{IMailboxInfo}.")
    specialUse = Attribute("See L{IMailboxInfo}.")
    uidValidity = Attribute("C{int}, never changes for the life of the mailbox.")

    def uidNext():
        """@return: the next UID to be assigned."""

    def mailboxId():
        """
        @return: the mailbox's MAILBOXID (RFC 8474), C{str}: the same for the
            life of the mailbox, across RENAME and index rebuilds.
        """

    def highestModSeq():
        """@return: C{int}"""

    def uids():
        """@return: ascending C{list} of the UIDs present now."""

    def uidSnapshot():
        """
        The UIDs present now, as one consistent reading with the mailbox's
        HIGHESTMODSEQ, shared with every other caller that reads the same
        state (so do not try to change it).

        @return: C{(highestModSeq, uids)}, C{uids} an ascending C{tuple}.
        """

    def uidState():
        """
        L{uidSnapshot} and the mailbox's UIDNEXT, read in one transaction:
        another process's APPEND cannot land between them, so no UID below
        UIDNEXT is missing from C{uids} (what SELECT announces).

        @return: C{(highestModSeq, uidNext, uids)}.
        """

    def messages(uids, headers=True):
        """
        @param uids: iterable of UIDs.
        @param headers: read each message's header block.  With C{False}
            the index does not load it and L{IMessageInfo.headers} is
            C{None}: callers that pass C{False} must use only the uid,
            flags, size, internal date and modseq.
        @return: C{list} of L{IMessageInfo} for those present, in UID order.
        """

    def keywords():
        """
        The keywords (flags without a leading backslash) set on the
        mailbox's messages: at least every one in use now; one that was
        taken off every message may still be in it.

        @return: C{frozenset} of C{str}.
        """

    def saveDates(uids):
        """
        When each message was saved into this mailbox (RFC 8514).

        @return: C{{uid: POSIX seconds or None}} (C{None}: not known) for
            those of C{uids} present.
        """

    def counts():
        """
        The mailbox's numbers, read in one pass of the index: an object with
        C{messages}, C{unseen} (without C{\\Seen}), C{recent} (not yet
        claimed by a session, see L{claimRecent}), C{size} (the sum of
        the messages' sizes) and C{uidnext} (the mailbox's UIDNEXT, of the
        same state).
        """

    def search(term, limit=None):
        """
        The messages that satisfy C{term}, a condition on what the index
        knows (L{gateway.store.query}), found by the index in one pass.

        @param limit: at most this many (the lowest UIDs), or all.
        @return: ascending C{list} of C{(uid, modseq)}.
        """

    def openMessage(uid):
        """
        @return: a binary file object positioned at 0 that reads the message
            with every line ended by CRLF (bare LF on disk becomes CRLF), so
            exactly L{IMessageInfo.size} bytes; it supports C{read(n)} and
            C{close()}.  Reading is streaming: memory stays constant.
        @raise gateway.errors.NoSuchMessage:
        """

    def appendMessage(source, flags=(), internalDate=None):
        """
        Store a message atomically (tmp/, then rename; the index last).
        Quota is checked first.

        @param source: C{bytes}, or a binary file object.
        @return: the new UID.
        @raise gateway.errors.QuotaExceeded:
        """

    def setFlags(uids, flags, mode, unchangedSince=None):
        """
        @param mode: C{'+'} add, C{'-'} remove, C{'='} replace.
        @param unchangedSince: CONDSTORE: skip messages whose modseq is greater.
        @return: C{(changed, failed)}: C{list} of L{IMessageInfo} after the
            change for messages that changed, and C{list} of UIDs skipped
            because of C{unchangedSince}.
        """

    def expunge(uids=None):
        """
        Remove messages flagged C{\\Deleted} (only those among C{uids} if given).

        @return: ascending C{list} of expunged UIDs.
        """

    def copyTo(uids, destination):
        """
        @param destination: another L{IMailbox}.
        @return: C{list} of C{(sourceUid, destinationUid)}.
        @raise gateway.errors.QuotaExceeded:
        """

    def moveTo(uids, destination):
        """
        Like L{copyTo}, then remove the originals (no \\Deleted needed).
        """

    def claimRecent(below=None):
        """
        Take the C{\\Recent} messages for the calling session: returns the
        C{set} of UIDs that arrived since the last claim by any session, so
        exactly one session sees each message as recent.

        @param below: claim only UIDs below this one (the messages the
            session knows of: one that another process adds meanwhile is
            left for the session's next claim).
        """

    def unclaimedRecent(below=None):
        """
        The UIDs L{claimRecent} would return now, without claiming them (what
        a read-only session shows as C{\\Recent}, RFC 3501 6.3.2).
        """

    def changesSince(modseq):
        """
        @return: C{(expunged, changed, highest)}: UIDs expunged after
            C{modseq}, L{IMessageInfo} of present messages whose modseq is
            greater than C{modseq} (new and flag-changed alike), and the
            current highest modseq; shared with other callers that ask the
            same question of the same state, so do not change them.
        """

    def addListener(callback):
        """
        Call C{callback()} (no arguments) soon after any change to this
        mailbox, whether made in this process or another one.

        @return: a no-argument callable that removes the listener.
        """

    def synchronize():
        """
        Bring the index up to date with changes made to the Maildir by other
        programs (a mutt, a copied-in Dovecot Maildir).  Cheap when nothing
        changed; a long rescan runs off the reactor thread.

        @return: a C{Deferred} that fires with C{None} when done.
        """


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
        The L{IMailbox} a delivery to C{recipient} (an address) for
        C{mailboxName} goes into: INBOX always, another mailbox only when
        C{sender} is the recipient or has the C{p} right.

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

        @rtype: L{IMailbox}
        @raise gateway.errors.NoSuchMailbox: missing, or not visible.
        @raise gateway.errors.PermissionDenied: visible, but a right is missing.
        """

    def listMailboxes():
        """
        Every mailbox the viewer may see (own ones and shared ones with
        C{l}), sorted by name; each has the L{IMailboxInfo} fields, a
        C{rights} set and C{exists}.
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

    def subscriptions():
        """@return: sorted C{list} of subscribed names."""

    def getACL(name):
        """@return: C{[(identifier, negative, rights)]} (needs C{a})."""

    def setACL(name, identifier, rights, mode=""):
        """Set, add (C{+}) or remove (C{-}) rights (needs C{a})."""

    def deleteACL(name, identifier):
        """Remove an identifier's entry (needs C{a})."""

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


# ---------------------------------------------------------------------------
# File store


class IFileStore(Interface):
    """
    An account's file storage (FTP's root, and the personal web site).
    Every client path goes through L{resolve}.
    """

    root = Attribute("C{FilePath} of the storage root.")

    def resolve(path, cwd="/"):
        """
        Map a client path (C{str}, C{'/'}-separated; relative paths are taken
        from the client's current folder C{cwd}, a leading C{'/'} means the
        root) to a C{FilePath} inside the root.

        @raise gateway.errors.InvalidPath: for C{..} that leaves the root,
            NUL, backslashes, or symlinks that lead out of the root.
        """

    def usage():
        """@return: bytes used by the files."""

    def remove(path):
        """
        Remove a file, or a folder with everything in it (front-ends that
        must refuse non-empty folders, such as FTP RMD, check first).

        @raise gateway.errors.InvalidPath: for the root.
        """

    def writeFile(path, source, append=False, offset=None, keepPartial=False):
        """
        Write a file atomically within the quota (a temporary file renamed
        into place; with C{append} or C{offset} the file is extended in place).

        @param source: C{bytes} or a binary file object.
        @param keepPartial: when reading C{source} fails after some bytes,
            put what arrived in place anyway (for a resume), then raise.
        @return: the number of bytes written.
        @raise gateway.errors.QuotaExceeded:
        """


# ---------------------------------------------------------------------------
# Delivery


class IStagedDelivery(Interface):
    """
    A mailbox that takes a message in two steps, so that the slow one can
    run in a worker thread (LMTP): L{gateway.store.mailbox.Mailbox}.
    """

    def prepareMessage(source, measure=None, mtime=None):
        """
        The slow half of C{appendMessage}, safe in a worker thread: the
        message written (or, for a C{str} path, hard-linked) into the
        mailbox's C{tmp/}, durable, not yet visible.

        @return: an object with C{path}, C{measure} and C{discard()}, for
            L{commitMessage}.
        """

    def commitMessage(prepared, flags=()):
        """
        The quick half of C{appendMessage}, in the reactor thread: quota
        check, then the prepared message becomes visible with a new UID.

        @return: the new UID.
        @raise gateway.errors.QuotaExceeded:
        """

    def commitMessageLater(prepared, flags=()):
        """
        C{commitMessage} off the reactor thread, grouped with other
        writes (the store's index writer).

        @return: a C{Deferred} firing with the new UID once the message is
            durable (file, folder, index), or failing as C{commitMessage}
            raises.
        """


class IDeliveryAgent(Interface):
    """
    Local delivery into accounts (LMTP, C{gatewayctl deliver}).
    """

    def deliver(account, source, mailbox="INBOX"):
        """
        @param account: an L{IAccount}.
        @param source: C{bytes}.
        @return: the new UID.
        @raise gateway.errors.QuotaExceeded:
        """


# ---------------------------------------------------------------------------
# Operations


class IMonitor(Interface):
    """
    What the front-ends report for the metrics and the session list
    (C{context.monitor}): one hook at command dispatch.  Sessions, bytes
    and logins are seen from the wiring's side (the listener wrapper and
    the portal), so the front-ends need no more.
    """

    def command(protocol, name, handler, *args):
        """
        Run C{handler(*args)} (a command of C{protocol} named C{name}) and
        count it with its duration, when it is done (now, or when the
        C{Deferred} it returns fires).

        @return: what C{handler} returns; what it raises is raised.
        """


class IDrainable(Interface):
    """
    A session that can end cleanly when the server stops (SIGTERM): see
    L{gateway.drain}.
    """

    def drain(reason):
        """
        The server is stopping: end the session now if no command is in
        flight (saying why, as the protocol allows: IMAP C{* BYE}, POP3
        C{-ERR [SYS/TEMP]}, LMTP and FTP C{421}), else once the command in
        flight (an LMTP message being received and delivered, an FTP
        transfer) has been answered.
        A session waiting for the client (IMAP IDLE, AUTHENTICATE) has
        nothing in flight.  Further input is not read.

        @param reason: C{str}, for the client (ASCII).
        """


# ---------------------------------------------------------------------------
# IMAP


class IViewObserver(Interface):
    """
    Told of a selected mailbox's changes as a session's view announces
    them (C{view.contexts}, L{gateway.imap.context.Contexts}): what must
    come before the EXPUNGEs and what after the EXISTS (RFC 5267 4.3).
    """

    def expunging(session, view, uids):
        """
        The ascending C{uids} are about to be announced expunged; they
        still have their message numbers in C{view}.
        """

    def changed(session, view, uids):
        """
        The messages C{uids} arrived or changed (flags, modseq), and the
        view announced them (EXISTS, FETCH).
        """


# ---------------------------------------------------------------------------
# IMAP mailbox names on the wire


class IMailboxNameCodec(Interface):
    """
    How one IMAP session writes mailbox names: modified UTF-7 (RFC 3501
    5.1.3) until the client enables UTF-8 (RFC 6855 C{UTF8=ACCEPT}, RFC
    9051 C{IMAP4rev2}), UTF-8 after.  Names inside the server are C{str}.
    """

    utf8 = Attribute("C{True} when names travel as UTF-8.")

    def decode(raw):
        """
        A mailbox name or LIST pattern from the client as C{str}; INBOX in
        any case becomes C{"INBOX"}.

        @param raw: the astring's C{bytes}.
        @raise gateway.imap.parser.NotModifiedUTF7: when C{raw} is not in
            this codec's encoding (no mailbox has that name).
        """

    def encode(name):
        """
        A mailbox name (C{str}) for a response: a quoted string (or a
        literal for a name that cannot be quoted), as C{bytes}.
        """


# ---------------------------------------------------------------------------
# URLAUTH mailbox access keys


class IURLAuthKeys(Interface):
    """
    The URLAUTH mailbox access keys of one account (RFC 4467 3): a secret
    per mailbox, kept with the mailbox's stamp (its UIDVALIDITY) so that a
    mailbox made again under an old name gets a new key.
    """

    def key(name, stamp, create=False):
        """
        The key (C{bytes}) of mailbox C{name} with stamp C{stamp}; made
        when C{create} and there is none, else C{None} when there is none.
        """

    def reset(name=None):
        """
        Remove the key of mailbox C{name}, or (C{None}) every key.
        """


# ---------------------------------------------------------------------------
# Letting go of idle things (gateway.idle)


class IIdleRelease(Interface):
    """
    Something that holds memory or open files for what may be used again
    (accounts, threads, caches) and can let go of what was not used for a
    while (L{gateway.idle.IdleReleaser} asks every C{[server]
    release_idle_after} seconds).
    """

    def releaseIdle():
        """
        Let go of what was not used since the previous call (the first
        call: since this object was made).

        @return: how many things were let go (C{int}; 0 for none).
        """
