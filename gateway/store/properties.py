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

The index can be rebuilt from the Maildir, so every change is also
appended to the mailbox folder's C{gateway-properties} file (L{journal}):
one JSON line C{[base, {key: [type, value]}]} per changed message, its whole
set of properties after the change, keyed by the message file's base name
(which a rebuild keeps, unlike the UID); the last line of a base wins.  A
rebuild reads it back for the files it indexes (L{restore}, called by
L{gateway.store.scan.scanMailbox} on a mailbox's first scan).  The file is
rewritten from the index (L{compact}) when it has grown to twice what it
held when last rewritten; a torn last line (a crash while appending) is
skipped.
"""

import json
import os

from twisted.internet.defer import maybeDeferred

from gateway.errors import StoreError
from gateway.store import index, maildir

#: At most this many stored properties per message (R-PROP-4).
MAX_PROPERTIES = 256
#: At most this many octets of JSON per value (R-PROP-4).
MAX_VALUE_SIZE = 64 * 1024
#: The file in each mailbox folder that keeps its stored properties for a
#: rebuild of the index.
PROPERTIES_FILE = "gateway-properties"
#: The file is rewritten when it is past twice its size when last
#: rewritten and this many octets.
COMPACT_ABOVE = 64 * 1024


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
            journal(conn, mailboxId, plan)
            changed = plan
    if changed:
        mailbox._changed()
    return changed, failed


def setPropertiesLater(mailbox, uids, changes, unchangedSince=None):
    """
    L{setProperties} by the index writer of the mailbox's owner (its
    store's, through the access layer's for another account's mailbox), off
    the reactor thread: the reactor never waits for the index's lock,
    which another worker's group may hold.  Now, where the store has no
    writer.

    @return: a L{Deferred} firing with what L{setProperties} returns once
        the change is durable (or failing with L{PropertyLimitError}).
    """
    write = getattr(getattr(mailbox, "_store", None), "_write", None)
    if write is None:
        return maybeDeferred(setProperties, mailbox, uids, changes, unchangedSince)
    return write(lambda conn, group: setProperties(mailbox, uids, changes, unchangedSince))


def carry(conn, sourceId, sourceUid, destinationId, destinationUid):
    """
    Copy a message's stored properties to its copy in the same index
    (inside the store's COPY/MOVE transaction, before a MOVE removes the
    source row).
    """
    copied = conn.execute(
        "INSERT OR REPLACE INTO msgprops (mailbox, uid, key, type, value)"
        " SELECT ?, ?, key, type, value FROM msgprops WHERE mailbox = ? AND uid = ?",
        (destinationId, destinationUid, sourceId, sourceUid)).rowcount
    if copied:
        journal(conn, destinationId, [destinationUid], sync=False)


def copyAcross(source, sourceUid, destination, destinationUid):
    """
    Copy a message's stored properties to its copy in another account's
    index (COPY/MOVE between accounts, which append).
    """
    putProperties(destination, destinationUid, properties(source, [sourceUid]).get(sourceUid))


def putProperties(destination, destinationUid, found):
    """
    Store properties read from another account's index (L{properties})
    on message C{destinationUid} of C{destination}; nothing for C{None}.
    """
    if not found:
        return
    conn = destination._conn
    with index.transaction(conn):
        conn.executemany(
            "INSERT OR REPLACE INTO msgprops (mailbox, uid, key, type, value) VALUES (?, ?, ?, ?, ?)",
            [(destination._id, destinationUid, key, propType, json.dumps(value, ensure_ascii=False,
                                                                         separators=(",", ":")))
             for key, (propType, value) in found.items()])
        journal(conn, destination._id, [destinationUid])


# -- the file a rebuild reads ------------------------------------------------------------------

def _folder(conn, mailboxId):
    row = conn.execute("SELECT name FROM mailboxes WHERE id = ?", (mailboxId,)).fetchone()
    return None if row is None else maildir.mailboxPath(index.indexRoot(conn), row[0])


def _lines(conn, mailboxId, uids=None):
    """
    The file's lines for some messages (C{None}: every message that has
    properties), as the index has them now.
    """
    if uids is None:
        rows = conn.execute("SELECT m.base, p.key, p.type, p.value FROM msgprops p JOIN messages m"
                            " ON m.mailbox = p.mailbox AND m.uid = p.uid WHERE p.mailbox = ?"
                            " ORDER BY m.uid", (mailboxId,))
        bases = []
    else:
        uids = sorted(set(uids))
        marks = ",".join("?" * len(uids))
        bases = conn.execute("SELECT base FROM messages WHERE mailbox = ? AND uid IN (%s) ORDER BY uid" % (marks,),
                             [mailboxId] + uids).fetchall()
        rows = conn.execute("SELECT m.base, p.key, p.type, p.value FROM msgprops p JOIN messages m"
                            " ON m.mailbox = p.mailbox AND m.uid = p.uid WHERE p.mailbox = ? AND p.uid IN (%s)"
                            % (marks,), [mailboxId] + uids)
    found = {base: {} for (base,) in bases}
    for base, key, propType, value in rows:
        found.setdefault(base, {})[key] = [propType, json.loads(value)]
    return [json.dumps([base, values], ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
            for base, values in found.items()]


def journal(conn, mailboxId, uids, sync=True):
    """
    Append the properties of C{uids} (all of them, as the index has them,
    inside the writer's transaction) to the mailbox folder's file, and
    rewrite the file when it has grown (L{compact}).

    @param sync: C{False} not to wait for the disk (a COPY, which calls
        this once per message: losing its lines costs a rebuild after a
        crash the copied messages' properties, not the originals').
    """
    folder = _folder(conn, mailboxId)
    if folder is None or not os.path.isdir(folder):
        return
    path = os.path.join(folder, PROPERTIES_FILE)
    lines = _lines(conn, mailboxId, uids)
    if not lines:
        return
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        size = None
    if size is None:
        compact(conn, mailboxId)
        return
    with open(path, "ab") as f:
        f.write(b"".join(lines))
        if sync:
            f.flush()
            os.fsync(f.fileno())
    if size > COMPACT_ABOVE and size > 2 * _compactedSize(path):
        compact(conn, mailboxId)


def _compactedSize(path):
    """
    The size the file had when last rewritten (its first line says).
    """
    with open(path, "rb") as f:
        try:
            return int(json.loads(f.readline()).get("compacted", 0))
        except (ValueError, AttributeError):
            return 0


def compact(conn, mailboxId):
    """
    Rewrite the mailbox folder's file from the index (atomically: a new
    file renamed over the old one).
    """
    folder = _folder(conn, mailboxId)
    if folder is None or not os.path.isdir(folder):
        return
    body = b"".join(_lines(conn, mailboxId))
    head = b'{"compacted":%d}\n' % (len(body),)
    path = os.path.join(folder, PROPERTIES_FILE)
    temporary = path + ".new"
    with open(temporary, "wb") as f:
        f.write(head + body)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    maildir.fsyncDirectory(folder)


def readFile(folder):
    """
    The properties the file of a mailbox folder keeps: C{{base: {key:
    (type, value)}}} (bases whose last line has none left out).
    """
    found = {}
    try:
        f = open(os.path.join(folder, PROPERTIES_FILE), "rb")
    except FileNotFoundError:
        return found
    with f:
        for line in f:
            try:
                entry = json.loads(line)
                base, values = entry
                found[base] = {key: (int(propType), value) for key, (propType, value) in values.items()}
            except (ValueError, TypeError, AttributeError):
                continue  # the header line, or a line torn by a crash
    return {base: values for base, values in found.items() if values}


def restore(conn, mailboxId, kept, bases):
    """
    Give messages just indexed by a rebuild the properties the file kept
    (inside the scan's transaction).

    @param kept: what L{readFile} read of the mailbox's folder.
    @param bases: the base names of the messages just indexed.
    """
    wanted = [base for base in bases if base in kept]
    if not wanted:
        return
    rows = []
    for offset in range(0, len(wanted), 500):
        batch = wanted[offset:offset + 500]
        for uid, base in conn.execute("SELECT uid, base FROM messages WHERE mailbox = ? AND base IN (%s)"
                                      % (",".join("?" * len(batch)),), [mailboxId] + batch):
            rows.extend((mailboxId, uid, key, propType, json.dumps(value, ensure_ascii=False,
                                                                    separators=(",", ":")))
                        for key, (propType, value) in kept[base].items())
    conn.executemany("INSERT OR REPLACE INTO msgprops (mailbox, uid, key, type, value) VALUES (?, ?, ?, ?, ?)",
                     rows)
