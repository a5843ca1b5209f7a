# -*- test-case-name: tests.test_store_properties -*-
"""
Stored message properties (C{docs/xmapi.md} R-PROP-2): values kept beside
a message in its mailbox's index, table C{msgprops (mailbox, uid, key,
type, value)}.

The store knows no MAPI: a property is a key text (the caller's normal form
of the identifier), a type number and a JSON-able value.  A row goes when
its message's row goes (a trigger on C{messages}: EXPUNGE, a MOVE's source,
a message file removed behind the index, a deleted mailbox); COPY and MOVE
carry the rows to the new message (L{carry} inside the store's transfer,
L{copyAcross} between accounts).  Setting properties bumps the message's
MODSEQ and honours C{UNCHANGEDSINCE} as a flag change does (RFC 7162).

These functions take an L{gateway.store.mailbox.Mailbox} (or a shared
mailbox, which passes its owner's internals through) and work on its index;
rights are the caller's business.
"""

import json

from gateway.errors import StoreError
from gateway.store import index

#: At most this many stored properties per message (R-PROP-4).
MAX_PROPERTIES = 256
#: At most this many octets of JSON per value (R-PROP-4).
MAX_VALUE_SIZE = 64 * 1024


class PropertyLimitError(StoreError):
    """
    A message would carry too many stored properties, or a value is too
    large (R-PROP-4): nothing was stored.
    """


def addTable(conn):
    """
    The index migration step that adds C{msgprops} and the trigger that
    removes a message's properties with its row.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS msgprops (mailbox INTEGER NOT NULL, uid INTEGER NOT NULL,"
        " key TEXT NOT NULL, type INTEGER NOT NULL, value TEXT NOT NULL, PRIMARY KEY (mailbox, uid, key))")
    conn.execute(
        "CREATE TRIGGER IF NOT EXISTS msgprops_gone AFTER DELETE ON messages BEGIN"
        " DELETE FROM msgprops WHERE mailbox = OLD.mailbox AND uid = OLD.uid; END")


def properties(mailbox, uids):
    """
    The stored properties of C{uids}.

    @return: C{{uid: {key: (type, value)}}}, only for messages that have
        some.
    """
    uids = sorted(set(uids))
    result = {}
    if not uids:
        return result
    rows = mailbox._conn.execute(
        "SELECT uid, key, type, value FROM msgprops WHERE mailbox = ? AND uid BETWEEN ? AND ?",
        (mailbox._id, uids[0], uids[-1]))
    wanted = set(uids)
    for uid, key, propType, value in rows:
        if uid in wanted:
            result.setdefault(uid, {})[key] = (propType, json.loads(value))
    return result


def propertyValues(mailbox, key):
    """
    One stored property of every message of C{mailbox} that has it, in one
    query (a SEARCH that compares it message by message).

    @return: C{{uid: (type, value)}}.
    """
    rows = mailbox._conn.execute("SELECT uid, type, value FROM msgprops WHERE mailbox = ? AND key = ?",
                                 (mailbox._id, key))
    return {uid: (propType, json.loads(value)) for uid, propType, value in rows}


def setProperties(mailbox, uids, changes, unchangedSince=None):
    """
    Set (or, for a value of C{None}, delete) properties of C{uids}, all of
    them or none (R-STORE-1).

    @param changes: C{{key: (type, value) or None}}.
    @param unchangedSince: CONDSTORE's C{UNCHANGEDSINCE}: a message whose
        MODSEQ is above it is left alone and reported as failed.
    @return: C{(changed, failed)}: the UIDs whose properties changed (their
        MODSEQ was bumped) and those that failed the C{UNCHANGEDSINCE}
        test.
    @raise PropertyLimitError: past L{MAX_PROPERTIES} or
        L{MAX_VALUE_SIZE}; nothing is stored.
    """
    encoded = {}
    for key, entry in changes.items():
        if entry is None:
            encoded[key] = None
            continue
        text = json.dumps(entry[1], ensure_ascii=False, separators=(",", ":"))
        if len(text.encode("utf-8")) > MAX_VALUE_SIZE:
            raise PropertyLimitError("the value of %s is larger than %d octets" % (key, MAX_VALUE_SIZE))
        encoded[key] = (entry[0], text)
    conn, mailboxId = mailbox._conn, mailbox._id
    changed, failed = [], []
    with index.transaction(conn):
        present = mailbox._select("uid, modseq", uids)
        current = properties(mailbox, [row[0] for row in present])
        plan = []
        for uid, modseq in present:
            if unchangedSince is not None and modseq > unchangedSince:
                failed.append(uid)
                continue
            old = current.get(uid, {})
            new = dict(old)
            for key, entry in encoded.items():
                if entry is None:
                    new.pop(key, None)
                else:
                    new[key] = (entry[0], json.loads(entry[1]))
            if new == old:
                continue
            if len(new) > MAX_PROPERTIES:
                raise PropertyLimitError("a message carries at most %d stored properties" % (MAX_PROPERTIES,))
            plan.append(uid)
        if plan:
            modseq = index.bumpModSeq(conn, mailboxId)
            for uid in plan:
                for key, entry in encoded.items():
                    if entry is None:
                        conn.execute("DELETE FROM msgprops WHERE mailbox = ? AND uid = ? AND key = ?",
                                     (mailboxId, uid, key))
                    else:
                        conn.execute("INSERT OR REPLACE INTO msgprops (mailbox, uid, key, type, value)"
                                     " VALUES (?, ?, ?, ?, ?)", (mailboxId, uid, key, entry[0], entry[1]))
                conn.execute("UPDATE messages SET modseq = ? WHERE mailbox = ? AND uid = ?",
                             (modseq, mailboxId, uid))
            changed = plan
    if changed:
        mailbox._changed()
    return changed, failed


def carry(conn, sourceId, sourceUid, destinationId, destinationUid):
    """
    Copy a message's stored properties to its copy in the same index
    (inside the store's COPY/MOVE transaction, before a MOVE removes the
    source row).
    """
    conn.execute(
        "INSERT OR REPLACE INTO msgprops (mailbox, uid, key, type, value)"
        " SELECT ?, ?, key, type, value FROM msgprops WHERE mailbox = ? AND uid = ?",
        (destinationId, destinationUid, sourceId, sourceUid))


def copyAcross(source, sourceUid, destination, destinationUid):
    """
    Copy a message's stored properties to its copy in another account's
    index (COPY/MOVE between accounts, which append).
    """
    found = properties(source, [sourceUid]).get(sourceUid)
    if not found:
        return
    conn = destination._conn
    with index.transaction(conn):
        conn.executemany(
            "INSERT OR REPLACE INTO msgprops (mailbox, uid, key, type, value) VALUES (?, ?, ?, ?, ?)",
            [(destination._id, destinationUid, key, propType, json.dumps(value, ensure_ascii=False,
                                                                         separators=(",", ":")))
             for key, (propType, value) in found.items()])
