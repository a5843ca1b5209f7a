# -*- test-case-name: tests.test_store_changelog -*-
"""
A mailbox's latest changes, kept in memory so that the sessions that have it
selected learn what changed without each asking the index.

After every command each session asks its mailbox what changed above the
modseq it last saw (L{gateway.store.mailbox.Mailbox.changesSince}): the
messages expunged and the messages whose row changed.  Each session has its
own modseq, so after a commit five sessions on one mailbox asked five
questions of the index, each in a read transaction of five statements.
L{ChangeLog} reads what was committed above the highest modseq it has seen,
once for all of them, and answers every session whose modseq is within what
it keeps (the last L{ChangeLog.LIMIT} changes); an older modseq, a new
UIDVALIDITY or an index whose modseqs went back (rebuilt) is answered by
the index as before.

It answers what the index would: a message's latest change is all that the
index keeps of it (its row's modseq, or its C{expunged} row's), and so is all
the log keeps; modseqs are given under the index's write lock, so a commit
never adds a change below one already committed.
"""

import bisect

__all__ = ["ChangeLog"]


class ChangeLog:
    """
    The changes of one mailbox above L{start} (exclusive) up to L{end}
    (inclusive).
    """

    #: How many changes are kept (each a message's info, headers included).
    LIMIT = 256

    def __init__(self):
        self._validity = None
        self.start = self.end = None
        #: uid -> (modseq, MessageInfo, or None once expunged)
        self._latest = {}
        #: the modseqs of L{_entries}, ascending, for bisect
        self._modseqs = []
        #: (modseq, uid) in the order read, some superseded by a later one
        self._entries = []

    def since(self, modseq, validity, highest, readAfter):
        """
        What changed above C{modseq}, as C{(expunged UIDs, changed
        MessageInfos, highest modseq)}, both in UID order; C{None} when the
        log cannot tell and the index must be asked.

        @param validity: the mailbox's UIDVALIDITY now.
        @param highest: its HIGHESTMODSEQ now (read outside a transaction,
            perhaps from L{gateway.store.rowcache}).
        @param readAfter: a callable taking a modseq and returning, read in
            one transaction, C{(highest, [(uid, modseq) expunged above it],
            [MessageInfo changed above it])}.
        """
        if validity != self._validity or self.end is None or highest < self.end:
            self._restart(validity, highest)
            return None
        if highest > self.end:
            self._read(readAfter)
        if modseq < self.start or modseq > self.end:
            return None
        expunged, changed = [], []
        latest = self._latest
        for entryModseq, uid in self._entries[bisect.bisect_right(self._modseqs, modseq):]:
            last = latest.get(uid)
            if last is None or last[0] != entryModseq:
                continue  # superseded by a later change of the same message
            if last[1] is None:
                expunged.append(uid)
            else:
                changed.append(last[1])
        expunged.sort()
        changed.sort(key=lambda info: info.uid)
        return expunged, changed, self.end

    def _restart(self, validity, highest):
        """
        Keep nothing: complete from the state at C{highest} on.
        """
        self._validity = validity
        self.start = self.end = highest
        self._latest = {}
        self._modseqs = []
        self._entries = []

    def _read(self, readAfter):
        highest, expunged, changed = readAfter(self.end)
        if highest < self.end:
            self._restart(self._validity, highest)
            return
        read = [(modseq, uid, None) for uid, modseq in expunged]
        read.extend((info.modseq, info.uid, info) for info in changed)
        read.sort(key=lambda entry: entry[0])
        for modseq, uid, info in read:
            self._latest[uid] = (modseq, info)
            self._modseqs.append(modseq)
            self._entries.append((modseq, uid))
        self.end = highest
        while len(self._entries) > self.LIMIT:
            self._trim()

    def _trim(self):
        """
        Forget the older half: the log then starts at the modseq of the
        last change it forgot.
        """
        cut = self._modseqs[len(self._modseqs) // 2]
        keep = bisect.bisect_right(self._modseqs, cut)
        for modseq, uid in self._entries[:keep]:
            if self._latest.get(uid, (None,))[0] == modseq:
                del self._latest[uid]
        del self._entries[:keep]
        del self._modseqs[:keep]
        self.start = cut
