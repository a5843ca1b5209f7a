# -*- test-case-name: tests.test_store_names -*-
"""
Account-level changes of one mail store, for whoever follows them (IMAP
NOTIFY's MailboxName and SubscriptionChange events): mailboxes created,
deleted or renamed, and subscriptions added or removed, by this process or
by another one over the same data root.

How: every such change of L{gateway.store.mail.MailStore} bumps a
generation counter in the index (meta key C{names}) in its own
transaction.  While something listens, L{AccountChanges} keeps a snapshot
of the mailbox rows (id, name, selectable) and of the subscriptions, and
compares it with the index when this process made a change (on the next
reactor turn) or when the store's change watcher says another process
committed to the index and the counter moved.  Mailbox ids survive RENAME,
so a rename is told as one change with its old name, also when another
process made it.

Metadata entries (L{gateway.store.metadata}) live in files, not in the
index: their writer also records each write in the index
(L{recordMetadataChange}, meta keys C{metadata:<generation>}, the last
L{KEEP_METADATA_CHANGES} kept) with its process id, so that other
processes tell their listeners (this process's own writes reach them
through the METADATA service's listeners).
"""

import json
import os

import attr
from twisted.python import log

from gateway.store.metadata import MetadataChange

#: The meta key of the generation counter.
GENERATION_KEY = "names"
#: Metadata writes remembered in the index for other processes.
KEEP_METADATA_CHANGES = 200


def _processId():
    return os.getpid()


@attr.s(frozen=True)
class MailboxNameChange:
    """
    A mailbox appeared, went, was renamed, or became (un)selectable.

    @ivar name: its name now (for a deleted one: the name it had).
    @ivar oldName: the name it had before a rename, else C{None}.
    """

    name = attr.ib()
    oldName = attr.ib(default=None)


@attr.s(frozen=True)
class SubscriptionChange:
    """
    A name was subscribed (C{subscribed} true) or unsubscribed.
    """

    name = attr.ib()
    subscribed = attr.ib()


def bumpGeneration(conn):
    """
    Count one account-level change; call inside the change's transaction.
    """
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, COALESCE("
                 "(SELECT value FROM meta WHERE key = ?), 0) + 1)", (GENERATION_KEY, GENERATION_KEY))


def recordMetadataChange(conn, local, entries, viewer):
    """
    Record that metadata entries were written (inside a transaction): a
    generation of its own, with what changed and by which process.
    """
    bumpGeneration(conn)
    number = generation(conn)
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                 ("metadata:%d" % (number,), json.dumps([local, list(entries), viewer, _processId()])))
    conn.execute("DELETE FROM meta WHERE key GLOB 'metadata:*' AND CAST(substr(key, 10) AS INTEGER) <= ?",
                 (number - KEEP_METADATA_CHANGES,))


def metadataChangesSince(conn, number):
    """
    The metadata writes other processes recorded after generation
    C{number}, oldest first, as L{MetadataChange}s without an owner.
    """
    rows = conn.execute("SELECT CAST(substr(key, 10) AS INTEGER), value FROM meta"
                        " WHERE key GLOB 'metadata:*' AND CAST(substr(key, 10) AS INTEGER) > ?"
                        " ORDER BY 1", (number,)).fetchall()
    changes = []
    for _number, value in rows:
        try:
            local, entries, viewer, pid = json.loads(value)
        except (TypeError, ValueError):
            continue
        if pid != _processId():
            changes.append(MetadataChange(None, local, tuple(entries), viewer))
    return changes


def generation(conn):
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (GENERATION_KEY,)).fetchone()
    return row[0] if row else 0


class AccountChanges:
    """
    The listeners of one store's account-level changes and the snapshot
    they are compared with.

    @param store: the L{gateway.store.mail.MailStore} (its C{_conn} and
        C{_reactor} are used).
    """

    def __init__(self, store):
        self._store = store
        self._listeners = []
        self._call = None
        self._generation = None
        self._mailboxes = {}
        self._subscriptions = frozenset()

    @property
    def listening(self):
        return bool(self._listeners)

    def addListener(self, callback):
        """
        Call C{callback(changes)} with a C{list} of L{MailboxNameChange}
        and L{SubscriptionChange} after each account-level change.

        @return: a no-argument callable that removes the listener.
        """
        if not self._listeners:
            self._generation, self._mailboxes, self._subscriptions = self._read()
        self._listeners.append(callback)

        def remove():
            if callback in self._listeners:
                self._listeners.remove(callback)
            if not self._listeners and self._call is not None and self._call.active():
                self._call.cancel()
        return remove

    def _read(self):
        conn = self._store._conn
        mailboxes = {row[0]: (row[1], bool(row[2]))
                     for row in conn.execute("SELECT id, name, selectable FROM mailboxes")}
        subscriptions = frozenset(row[0] for row in conn.execute("SELECT name FROM subscriptions"))
        return generation(conn), mailboxes, subscriptions

    def changed(self):
        """
        This process made a change: compare on the next reactor turn
        (several changes in one turn make one comparison).
        """
        if self._listeners and (self._call is None or not self._call.active()):
            self._call = self._store._reactor.callLater(0, self.check)

    def poll(self):
        """
        Another process may have committed to the index: compare when the
        generation counter moved.
        """
        if self._listeners and generation(self._store._conn) != self._generation:
            self.check()

    def check(self):
        """
        Compare the index with the snapshot and tell the listeners what
        changed.
        """
        self._call = None
        if not self._listeners:
            return
        gen, mailboxes, subscriptions = self._read()
        changes = diff(self._mailboxes, mailboxes, self._subscriptions, subscriptions)
        if gen != self._generation and self._generation is not None:
            changes += metadataChangesSince(self._store._conn, self._generation)
        self._generation, self._mailboxes, self._subscriptions = gen, mailboxes, subscriptions
        if not changes:
            return
        for callback in list(self._listeners):
            try:
                callback(changes)
            except Exception:
                log.err(None, "account change listener failed")


def diff(oldMailboxes, newMailboxes, oldSubscriptions, newSubscriptions):
    """
    The changes between two snapshots.

    @param oldMailboxes: C{{mailbox id: (name, selectable)}} before.
    @param newMailboxes: the same, after.
    @return: C{list} of L{MailboxNameChange} (sorted by name) then
        L{SubscriptionChange} (sorted by name).
    """
    changes = []
    for mailboxId in set(oldMailboxes) | set(newMailboxes):
        old, new = oldMailboxes.get(mailboxId), newMailboxes.get(mailboxId)
        if old == new:
            continue
        if old is None:
            changes.append(MailboxNameChange(new[0]))
        elif new is None:
            changes.append(MailboxNameChange(old[0]))
        elif old[0] != new[0]:
            changes.append(MailboxNameChange(new[0], old[0]))
        else:
            changes.append(MailboxNameChange(new[0]))
    changes.sort(key=lambda change: change.name)
    for name in sorted(oldSubscriptions ^ newSubscriptions):
        changes.append(SubscriptionChange(name, name in newSubscriptions))
    return changes
