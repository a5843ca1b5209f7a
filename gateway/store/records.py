# -*- test-case-name: tests.test_store_mail -*-
"""
What a L{gateway.store.mailbox.Mailbox} hands out and takes: a message's
index row (L{MessageInfo}), a mailbox's counts (L{MailboxCounts}), a
message staged in C{tmp/} (L{PreparedMessage}), and flags in their
canonical spelling (L{normalizeFlags}).
"""

import datetime

import attr
from zope.interface import implementer

from gateway.interfaces import IMessageInfo
from gateway.store import index, maildir

_SYSTEM_FLAGS = {flag.lower(): flag for flag in maildir.LETTER_FLAGS.values()}


def normalizeFlags(flags):
    """
    System flags in their canonical spelling, C{\\Recent} dropped.

    @rtype: C{frozenset}
    """
    result = set()
    for flag in flags:
        lower = flag.lower()
        if lower == "\\recent":
            continue
        result.add(_SYSTEM_FLAGS.get(lower, flag))
    return frozenset(result)


@attr.s
class PreparedMessage:
    """
    A message written into a mailbox's C{tmp/} by L{Mailbox.prepareMessage}
    and not yet committed.  Only L{sync} changes it (L{synced}).

    @ivar path: its file in C{tmp/}.
    @ivar measure: its L{maildir.Measure}.
    @ivar mtime: the internal date given, or C{None} for the file's.
    @ivar synced: whether the file is durable already; else committing it
        fsyncs it first (L{gateway.store.maildir.fsyncFile}).
    @ivar structures: C{{name: bytes}} to keep with the message (see
        L{gateway.store.structures}), or C{None}.
    @ivar octets: the file's content, for a small message written unsynced:
        committed by the index writer, it is recorded in the index in
        place of the file's fsync (L{gateway.store.redo}); else C{None}.
    """

    path = attr.ib()
    measure = attr.ib()
    mtime = attr.ib(default=None)
    synced = attr.ib(default=True)
    structures = attr.ib(default=None)
    octets = attr.ib(default=None, repr=False)

    def sync(self):
        """
        fsync the file, once (one written without, see L{synced}).
        """
        if not self.synced:
            maildir.fsyncFile(self.path)
            self.synced = True

    def discard(self):
        """
        Remove the file (a delivery that will not be committed).
        """
        maildir.removeQuietly(self.path)


@implementer(IMessageInfo)
class MessageInfo:
    __slots__ = ("uid", "flags", "_internalDate", "size", "modseq", "headers")

    def __init__(self, uid, flags, internalDate, size, modseq, headers=b""):
        self.uid = uid
        self.flags = index.decodeFlags(flags)
        self._internalDate = internalDate
        self.size = size
        self.modseq = modseq
        self.headers = headers

    @property
    def internalDate(self):
        return datetime.datetime.fromtimestamp(self._internalDate, datetime.timezone.utc)

    def withFlags(self, flags):
        """
        The same message with other flags (a viewer's own C{\\Seen}, see
        L{gateway.store.userflags}); nothing else is converted.
        """
        copy = MessageInfo.__new__(MessageInfo)
        copy.uid, copy.flags, copy._internalDate = self.uid, flags, self._internalDate
        copy.size, copy.modseq, copy.headers = self.size, self.modseq, self.headers
        return copy

    def __repr__(self):
        return "<MessageInfo uid=%d flags=%s modseq=%d>" % (self.uid, sorted(self.flags), self.modseq)


@attr.s(frozen=True)
class MailboxCounts:
    """
    What L{Mailbox.counts} gives: numbers of messages in all, without
    C{\\Seen}, not yet given C{\\Recent} to a session, the sum of their
    sizes, and the mailbox's UIDNEXT, all of one state of the index.
    """

    messages = attr.ib()
    unseen = attr.ib()
    recent = attr.ib()
    size = attr.ib()
    uidnext = attr.ib()
