# -*- test-case-name: tests.test_imap_structcache -*-
"""
The ENVELOPE, BODY and BODYSTRUCTURE of messages, rendered once and kept:
a message's content never changes while its UID lives (only its flags and
file name do), so the second FETCH of its structure, by any session of the
process, neither opens nor parses the file.  Dovecot keeps the same in its
C{dovecot.index.cache}; here it is memory only, bounded, and let go when
idle.

A mailbox takes part by having a C{contentKey}: a hashable value that
names its content for as long as its UIDs keep their meaning (the store's
L{gateway.store.mailbox.Mailbox} gives its account folder, mailbox id and
UIDVALIDITY).  Other mailboxes are rendered every time.
"""

import collections

from zope.interface import implementer

from gateway.interfaces import IIdleRelease

#: What the process keeps at most, counting the rendered values' lengths:
#: the structures of a few thousand messages, the mailboxes clients are
#: fetching from now.  At 8 MB, the ten-minute soak ended 8 MB higher
#: (1.20 of the start against 1.14 without the cache): what a large cache
#: allocates among the sessions' short-lived objects keeps their arenas.
CACHE_BYTES = 1024 * 1024
#: What one kept value costs beyond its length (its dict slots), counted
#: against L{CACHE_BYTES} so that many tiny values cannot grow unseen.
ENTRY_OVERHEAD = 100


class MailboxStructures:
    """
    The kept values of one mailbox's messages (what L{StructureCache.of}
    gives): C{get(uid, name)} and C{put(uid, name, value)} for the FETCH
    renderers (L{gateway.imap.message.FetchPlan.render}).
    """

    def __init__(self, cache):
        self._cache = cache
        self._values = {}
        self.size = 0

    def get(self, uid, name):
        return self._values.get((uid, name))

    def put(self, uid, name, value):
        key = (uid, name)
        if key in self._values:
            return
        self._values[key] = value
        cost = len(value) + ENTRY_OVERHEAD
        self.size += cost
        self._cache._grew(self, cost)

    def missing(self, uids, names):
        """
        Those of C{uids} that lack a kept value of one of C{names}.
        """
        values = self._values
        if len(names) == 1:
            (name,) = names
            return [uid for uid in uids if (uid, name) not in values]
        return [uid for uid in uids if any((uid, name) not in values for name in names)]

    def load(self, uids, read):
        """
        Keep what the index keeps of C{uids}: C{read(uids)} gives C{{uid:
        {name: bytes}}} (the mailbox's C{storedStructures}, see
        L{gateway.store.structures}).
        """
        for uid, kept in read(uids).items():
            for name, value in kept.items():
                self.put(uid, name, value)

    def __len__(self):
        return len(self._values)


@implementer(IIdleRelease)
class StructureCache:
    """
    The kept structures of the last mailboxes fetched from, the least
    recently used let go first when they pass L{limit} bytes in all.
    """

    def __init__(self, limit=CACHE_BYTES):
        self.limit = limit
        self._mailboxes = collections.OrderedDict()
        self._used = set()
        self.size = 0

    def of(self, mailbox):
        """
        The L{MailboxStructures} of C{mailbox}, or C{None} when it has no
        C{contentKey} (its values are then not kept).
        """
        key = getattr(mailbox, "contentKey", None)
        if key is None:
            return None
        self._used.add(key)
        structures = self._mailboxes.get(key)
        if structures is None:
            structures = self._mailboxes[key] = MailboxStructures(self)
        else:
            self._mailboxes.move_to_end(key)
        return structures

    def _grew(self, structures, cost):
        self.size += cost
        if self.size <= self.limit:
            return
        for key in list(self._mailboxes):
            oldest = self._mailboxes[key]
            if oldest is structures:
                continue
            del self._mailboxes[key]
            self._used.discard(key)
            self.size -= oldest.size
            if self.size <= self.limit:
                return
        # The one being filled is all that is left: it starts again.
        self.size -= structures.size
        structures._values = {}
        structures.size = 0

    def releaseIdle(self):
        """
        Let go of the structures of the mailboxes not fetched from since
        the previous call.

        @return: how many mailboxes' structures were let go.
        """
        idle = [key for key in self._mailboxes if key not in self._used]
        for key in idle:
            self.size -= self._mailboxes.pop(key).size
        self._used.clear()
        return len(idle)

    def describe(self):
        return ["message structures: of %d mailboxes, %d values, %d bytes"
                % (len(self._mailboxes), sum(len(s) for s in self._mailboxes.values()), self.size)]


#: The process's L{StructureCache}.
structureCache = StructureCache()
