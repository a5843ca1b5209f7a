# -*- test-case-name: tests.test_imap_view -*-
"""
A session's sequence-number view of a shared mailbox (RFC 3501 2.3.1.2).

Each selected session keeps the ascending UID list it has announced; changes
made by anyone (this or other sessions, LMTP, POP3, other processes) are
read with C{mailbox.changesSince(modseq)} and announced as EXPUNGE, EXISTS,
RECENT and FETCH FLAGS responses only where the protocol allows: EXPUNGE
is held back after FETCH, STORE and SEARCH (the expunged message keeps its
sequence number until then).
"""

import bisect

from gateway import caches
from gateway.imap.format import SYSTEM_FLAGS, flagList, formatFlags
from gateway.imap.sequence import formatSequenceSet
from gateway.store.access import SharedMailbox, allowedFlags

_SYSTEM = frozenset(SYSTEM_FLAGS)
_KNOWN = caches.kept({}, "gateway.imap.view flags with system flags")


#: The empty C{frozenset} every view starts with.
_EMPTY = frozenset()


def _withSystemFlags(keywords):
    """
    The system flags and C{keywords}: one object for every session that
    opens a mailbox with the same keywords.
    """
    known = _KNOWN.get(keywords)
    if known is None:
        if len(_KNOWN) >= 1024:
            _KNOWN.clear()
        known = _KNOWN[keywords] = _SYSTEM | keywords
    return known


class MailboxView:
    """
    @ivar mailbox: the shared L{gateway.interfaces.IMailbox}.
    @ivar uids: ascending C{tuple} of the UIDs this session knows; replaced,
        never changed in place.  While the session is in step with the
        mailbox it is the tuple the mailbox shares with every such session
        (L{IMailbox.uidSnapshot}): a large mailbox open in many sessions
        costs its UID list once.
    @ivar recent: C{frozenset} of UIDs that are C{\\Recent} for this
        session: claimed by it, or (read-only) not claimed by anyone when
        it learnt of them.
    @ivar readOnly: C{True} after EXAMINE.
    @ivar saved: C{frozenset} of the UIDs of the saved search result, C{$}
        (RFC 5182); messages expunged since are still in it.
    @ivar openedUidNext: the mailbox's UIDNEXT when the view was made, of
        the same state as the L{uids} it started with (SELECT announces it).
    @ivar knownFlags: C{frozenset} of the flags this session was told of
        in its last untagged FLAGS response (system flags and keywords).
    @ivar contexts: the L{gateway.imap.context.Contexts} kept updated on
        this mailbox (RFC 5267), or C{None}.
    """

    #: A message the command in flight matched against could not be read
    #: (being expunged): see L{expungedMeanwhile}.  A class default, so an
    #: idle session's view holds nothing for it.
    unreadable = False

    contexts = None

    #: C{False} for IMAP4rev2 (RFC 9051 has no \Recent): nothing claimed,
    #: no RECENT sent (set on the instance only then).
    showRecent = True

    def __init__(self, mailbox, readOnly, onChange=None, showRecent=True):
        self.mailbox = mailbox
        self.readOnly = readOnly
        self.modseq, self.openedUidNext, self.uids = mailbox.uidState()
        below = self.openedUidNext
        self.recent = _EMPTY
        if not showRecent:
            self.showRecent = False
        else:
            self.recent = frozenset(mailbox.unclaimedRecent(below) if readOnly else mailbox.claimRecent(below)) or _EMPTY
        self.knownFlags = _withSystemFlags(mailbox.keywords())
        # Immutable and replaced when they change: an idle session shares
        # the empty one (Python makes a new empty frozenset, 216 bytes, at
        # each call).
        self.saved = _EMPTY
        self._pendingExpunge = _EMPTY
        self._own = _EMPTY
        self._removeListener = mailbox.addListener(onChange) if onChange is not None else None

    def close(self):
        if self._removeListener is not None:
            self._removeListener()
            self._removeListener = None

    @property
    def exists(self):
        return len(self.uids)

    def maxUid(self):
        return self.uids[-1] if self.uids else 0

    def seqOf(self, uid):
        """
        The sequence number of C{uid}, or C{None}.
        """
        i = bisect.bisect_left(self.uids, uid)
        if i < len(self.uids) and self.uids[i] == uid:
            return i + 1
        return None

    def sequenceNumbers(self, uids):
        """
        C{{uid: sequence number}} for those of the ascending C{uids} that
        are in the view: one walk along the view instead of a search per
        message.
        """
        result = {}
        if not uids:
            return result
        known = self.uids
        count = len(known)
        i = bisect.bisect_left(known, uids[0])
        for uid in uids:
            while i < count and known[i] < uid:
                i += 1
            if i < count and known[i] == uid:
                result[uid] = i + 1
        return result

    def uidsForSequences(self, sequenceSet):
        """
        The UIDs a message sequence set names (C{*} is the last message).
        """
        uids = self.uids
        result = []
        for lo, hi in sequenceSet.resolve(len(uids)):
            if lo < 1:
                lo = 1
            result.extend(uids[lo - 1:hi])
        return result

    def uidsForUidSet(self, sequenceSet):
        """
        The known UIDs a UID set names (C{*} is the highest UID).
        """
        return sequenceSet.select(self.uids, self.maxUid())

    def sendFlags(self, session):
        """
        Send FLAGS and PERMANENTFLAGS with every flag in L{knownFlags}.
        """
        flags = formatFlags(self.knownFlags)
        session.sendUntagged(b"FLAGS " + flags)
        session.sendUntagged(b"OK [PERMANENTFLAGS " + self._permanentFlags(flags) + b"] Flags permitted")

    def _permanentFlags(self, flags):
        """
        The PERMANENTFLAGS list: none read-only; on another account's
        mailbox only the flags the viewer's rights let it change, C{\\*}
        with C{w} (RFC 4314 4).
        """
        if self.readOnly:
            return b"()"
        if not isinstance(self.mailbox, SharedMailbox):
            return flags[:-1] + b" \\*)"
        rights = self.mailbox.rights()
        allowed = formatFlags(allowedFlags(self.knownFlags, rights))
        if "w" not in rights:
            return allowed
        return allowed[:-1] + (b" \\*)" if len(allowed) > 2 else b"\\*)")

    def announceFlags(self, session, infos):
        """
        Before a response shows the flags of C{infos}: send L{sendFlags}
        when one of them has a keyword this session was not told of yet
        (RFC 3501 7.2.6).
        """
        known = self.knownFlags
        new = None
        for info in infos:
            flags = info.flags
            if flags <= known:
                continue
            new = flags - known if new is None else new | (flags - known)
        if new:
            self.knownFlags = known | new
            self.sendFlags(session)

    def savedUids(self):
        """
        The UIDs of the saved search result still in the view, ascending.
        """
        return [uid for uid in sorted(self.saved) if self.seqOf(uid) is not None]

    def expungedMeanwhile(self):
        """
        Has a message of this view been expunged (by another session or
        process) without the view announcing it yet?  Such a message is
        still in the session's numbering, but its data is gone: a SEARCH
        cannot tell whether it matches, and says so (RFC 5530
        C{EXPUNGEISSUED}, as Dovecot does).  C{unreadable}, set by a
        command that could not read a message it matched against (being
        expunged), counts once.
        """
        if self.unreadable:
            self.unreadable = False
            return True
        if self._pendingExpunge:
            return True
        expunged, _changed, _highest = self.mailbox.changesSince(self.modseq)
        return any(self.seqOf(uid) is not None for uid in expunged)

    def noteOwnChanges(self, infos):
        """
        This session changed these messages and reported them itself: do
        not announce them again as FETCH FLAGS.
        """
        if infos:
            self._own = self._own | {info.modseq for info in infos}

    def sendUpdates(self, session, expunge=True):
        """
        Announce what changed since the last update.
        """
        expunged, changed, highest = self.mailbox.changesSince(self.modseq)
        self.modseq = highest
        if expunged:
            self._pendingExpunge = self._pendingExpunge | set(expunged)
        gone = []
        recentBefore = len(self.recent)
        if expunge and self._pendingExpunge:
            gone = self._sendExpunges(session)
        if changed:
            self.announceFlags(session, changed)
        known = self.maxUid()
        new = sorted(info.uid for info in changed if info.uid > known)
        condstore = "CONDSTORE" in session.enabled
        # With QRESYNC the client knows messages by UID (RFC 7162 3.2.4);
        # IMAP4rev2 too (RFC 9051 7.5.2), and NOTIFY's FlagChange asks for
        # it (RFC 5465 5.1).
        withUid = ("QRESYNC" in session.enabled or "IMAP4REV2" in session.enabled
                   or getattr(session, "notify", None) is not None and "FlagChange" in session.notify.spec.selected)
        for info in changed:
            if info.uid > known or info.modseq in self._own:
                continue
            seq = self.seqOf(info.uid)
            if seq is None:
                continue
            # Numbered as after the EXPUNGEs just sent.
            seq -= bisect.bisect_left(gone, info.uid)
            text = b"%d FETCH (%sFLAGS %s" % (seq, b"UID %d " % (info.uid,) if withUid else b"",
                                               flagList(info.flags, info.uid in self.recent))
            if condstore:
                text += b" MODSEQ (%d)" % (info.modseq,)
            session.sendUntagged(text + b")")
        if gone or new:
            self._update(gone, new)
        if new:
            # Only the messages now in the view: one another process added
            # since is claimed when it comes in.
            below = self.maxUid() + 1
            if self.showRecent and self.readOnly:
                self.recent |= self.mailbox.unclaimedRecent(below) & set(new)
            elif self.showRecent:
                self.recent |= self.mailbox.claimRecent(below)
            session.sendUntagged(b"%d EXISTS" % (len(self.uids),))
            if self.showRecent:
                session.sendUntagged(b"%d RECENT" % (len(self.recent),))
        elif self.showRecent and len(self.recent) != recentBefore:
            # Recent messages expunged: the count the client keeps changed
            # (it cannot tell which expunged messages were recent unless it
            # fetched their flags).
            session.sendUntagged(b"%d RECENT" % (len(self.recent),))
        if self.contexts is not None and changed:
            # After EXISTS: ADDTO's message numbers must be valid.
            self.contexts.changed(session, self, [info.uid for info in changed])
        if self._own:
            self._own = frozenset(m for m in self._own if m > highest)

    def _update(self, gone, new):
        """
        Take out the UIDs C{gone} and add the C{new} ones (both ascending).
        With no expunge held back the result is the mailbox at
        C{self.modseq}: the mailbox's shared tuple when it is of that state.
        """
        if not self._pendingExpunge:
            modseq, shared = self.mailbox.uidSnapshot()
            if modseq == self.modseq:
                self.uids = shared
                return
        if gone:
            removed = set(gone)
            self.uids = tuple(uid for uid in self.uids if uid not in removed)
        self.uids += tuple(new)

    def _sendExpunges(self, session):
        """
        Send EXPUNGE for the held-back expunges that this session knows.

        @return: ascending C{list} of their UIDs (still in L{uids}).
        """
        gone = self._pendingExpunge
        self._pendingExpunge = frozenset()
        known = sorted(uid for uid in gone if self.seqOf(uid) is not None)
        if self.contexts is not None and known:
            # REMOVEFROM goes first, while the message numbers hold.
            self.contexts.expunging(session, self, known)
        if "QRESYNC" in session.enabled:
            if known:
                session.sendUntagged(b"VANISHED " + formatSequenceSet(known).encode("ascii"))
        else:
            for uid in reversed(known):
                session.sendUntagged(b"%d EXPUNGE" % (self.seqOf(uid),))
        self.recent -= gone
        return known
