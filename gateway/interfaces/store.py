# -*- test-case-name: tests.test_store_mail -*-
"""
The stores below the protocols: an account's mail store and its mailboxes,
the calendar queries that free/busy and XMAPI are answered from, and the
file store.
"""

from zope.interface import Attribute, Interface

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

    def createMailboxLater(name, mailboxClass="IPF.Note", specialUse=None):
        """
        L{createMailbox} off the reactor thread (the index writer).  So
        are C{deleteMailboxLater(name)}, C{renameMailboxLater(oldName,
        newName)}, C{subscribeLater(name)} and C{unsubscribeLater(name)}.

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

    def mailboxIdLater():
        """
        @return: a L{Deferred} firing with L{mailboxId}, whose first
            writing (a mailbox that has none yet) is done off the reactor
            thread.
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
