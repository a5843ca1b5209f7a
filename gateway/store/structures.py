# -*- test-case-name: tests.test_store_structures -*-
"""
A message's rendered structures (IMAP's ENVELOPE, BODY and BODYSTRUCTURE)
kept in the index, computed once when the message is stored.

A message's content never changes while its UID lives, and most clients
ask for its structure soon after it arrives, from each of the user's
devices.  Rendered at the first FETCH, a structure is computed once per
process and kept in memory only (L{gateway.imap.structcache}): with two
workers each message was parsed twice, its file opened twice, and again
after every restart.  Cyrus keeps the same in its C{cyrus.cache}, computed
at append; Dovecot in C{dovecot.index.cache}.

The store knows nothing of IMAP: what to keep is computed by the functions
registered here (L{register}; the IMAP server registers its renderers), from
a message stored in CRLF form, of at most L{MAX_BYTES}, when it is stored
(L{gateway.store.mailbox.Mailbox.prepareMessage}): from the bytes of an
APPEND, at hand; from the file just written of an LMTP delivery, read back
from the page cache in the delivery's thread; a copy or a move within the
account takes its source's (L{carry}).  Other messages (one found in the
Maildir, a larger one) have none kept here and are rendered at their first
FETCH as before.  A message's rows go with its index row (a trigger).

    structures(mailbox, uid, name, value)
"""

from gateway.logging import getLogger

log = getLogger("store")

#: Messages larger than this are not computed at store time (the work is
#: bounded where it runs: the reactor thread, for a small APPEND).
MAX_BYTES = 64 * 1024

#: C{compute(data)} functions returning C{{name: bytes}} for the CRLF
#: message C{data} (L{register}).
_computers = []


def addTable(conn):
    """
    The index migration step that adds C{structures} and the trigger that
    removes a message's with its row.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS structures (mailbox INTEGER NOT NULL, uid INTEGER NOT NULL,"
        " name TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (mailbox, uid, name)) WITHOUT ROWID")
    conn.execute(
        "CREATE TRIGGER IF NOT EXISTS structures_gone AFTER DELETE ON messages BEGIN"
        " DELETE FROM structures WHERE mailbox = OLD.mailbox AND uid = OLD.uid; END")


def register(compute):
    """
    Compute what to keep of each message stored: C{compute(data)} returns
    C{{name: bytes}} for the CRLF message C{data}.
    Registering the same function again changes nothing.
    """
    if compute not in _computers:
        _computers.append(compute)


def compute(source, path, measure):
    """
    What the registered functions keep of a message being stored:
    C{{name: bytes}}, or C{None} when nothing is to be kept (too large, not
    in CRLF form, or no function registered).  A function that fails keeps
    nothing of the message: storing it never fails for this.

    @param source: the message's C{bytes} when it is in memory (an
        APPEND), else anything else: the file at C{path}, just written
        (a delivery's), is read back from the page cache.
    @param measure: the message's L{gateway.store.maildir.Measure}.
    """
    if not _computers or measure.rawSize > MAX_BYTES or measure.needsCRLF:
        return None
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    values = {}
    for each in _computers:
        try:
            values.update(each(data))
        except Exception:
            log.failure("Computing a message's structures failed")
            return None
    return values or None


def store(conn, mailboxId, uid, values):
    """
    Keep C{values} (C{{name: bytes}}) of message C{uid} (inside the write
    transaction that adds its row).
    """
    conn.executemany("INSERT OR REPLACE INTO structures (mailbox, uid, name, value) VALUES (?, ?, ?, ?)",
                     [(mailboxId, uid, name, value) for name, value in values.items()])


def carry(conn, sourceId, sourceUid, destinationId, destinationUid):
    """
    Keep for a message copied or moved what was kept of its source
    (inside the transfer's write transaction; the content is the same).
    """
    conn.execute("INSERT OR REPLACE INTO structures (mailbox, uid, name, value)"
                 " SELECT ?, ?, name, value FROM structures WHERE mailbox = ? AND uid = ?",
                 (destinationId, destinationUid, sourceId, sourceUid))


def read(conn, mailboxId, uids):
    """
    What is kept of C{uids}: C{{uid: {name: bytes}}}, only for messages
    that have some.
    """
    uids = sorted(set(uids))
    result = {}
    if not uids:
        return result
    wanted = set(uids)
    for uid, name, value in conn.execute(
            "SELECT uid, name, value FROM structures WHERE mailbox = ? AND uid BETWEEN ? AND ?",
            (mailboxId, uids[0], uids[-1])):
        if uid in wanted:
            result.setdefault(uid, {})[name] = value
    return result
