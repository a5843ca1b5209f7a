# -*- test-case-name: tests.test_imap_objectid -*-
"""
Stable message identities (RFC 8474 OBJECTID): a message's EMAILID and
THREADID, kept in the index columns C{messages.emailid} and
C{messages.threadid} (migration 4, L{addColumns}).

Both are derived from the message itself, so an index rebuilt from the
bare Maildir gives every message the ids it had:

  - EMAILID is C{"M"} and 24 hex digits of the SHA-256 of the message's
    CRLF form (as Cyrus derives it from its content GUID).  A COPY or MOVE,
    within an account or to another (which appends the same octets), keeps
    it, as RFC 8474 5.1 asks; two messages with the same octets have the
    same EMAILID, which 5.1 allows (they are the same message).  A REPLACE
    with changed content gives a new one.
  - THREADID is C{"T"} and 24 hex digits of the SHA-256 of the thread's
    root Message-ID: the first of the message's C{References}, else its
    C{In-Reply-To}, else its own C{Message-ID} (RFC 5256's REFERENCES
    algorithm takes the same field as the parent chain).  Messages of one
    conversation share it wherever and in whatever order they arrive; a
    message with none of these fields is a thread of its own (its EMAILID
    with C{"T"}).  Subjects are not compared: a grouping by subject
    depends on which other messages an index holds, so it would not
    survive a rebuild.  Identical messages have the same THREADID (RFC 8474
    5.2).

Rows written before migration 4 have C{NULL} ids: L{objectIds} computes
them on first use, in a thread (EMAILID reads the message file once), and
keeps them.
"""

import hashlib
import re
import sqlite3

from twisted.internet.defer import succeed

from gateway.errors import isStorageFull

#: RFC 8474's objectid: 1*255(ALPHA / DIGIT / "_" / "-").
OBJECTID = re.compile(r"[A-Za-z0-9_-]{1,255}\Z")

_MSG_ID = re.compile(rb"<([^<>]*)>")
_SPACE = re.compile(rb"[ \t\r\n]+")
_FIELD = re.compile(rb"^(message-id|references|in-reply-to)[ \t]*:", re.I | re.M)


def addColumns(conn):
    """
    The index migration step that adds the id columns and their indexes
    (the values of older rows are filled on use, see L{objectIds}).
    """
    columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
    for column in ("emailid", "threadid"):
        if column not in columns:
            conn.execute("ALTER TABLE messages ADD COLUMN %s TEXT" % (column,))
    conn.execute("CREATE INDEX IF NOT EXISTS messages_emailid ON messages (mailbox, emailid)")
    conn.execute("CREATE INDEX IF NOT EXISTS messages_threadid ON messages (mailbox, threadid)")


def emailIdOf(digest):
    """
    The EMAILID of a message whose CRLF form has this SHA-256 (a
    C{hashlib} object, e.g. L{gateway.store.maildir.Measure.digest}).
    """
    return "M" + digest.hexdigest()[:24]


def _field(headers, name):
    """
    The unfolded values of field C{name} (lower case, C{bytes}) in a CRLF
    header block.
    """
    values = []
    for match in _FIELD.finditer(headers):
        if match.group(1).lower() != name:
            continue
        end = match.end()
        while True:
            newline = headers.find(b"\n", end)
            if newline == -1:
                end = len(headers)
                break
            end = newline + 1
            if headers[end:end + 1] not in (b" ", b"\t"):
                break
        values.append(headers[match.end():end])
    return values


def _messageIds(values):
    found = []
    for value in values:
        found.extend(_SPACE.sub(b"", m) for m in _MSG_ID.findall(value) if m.strip())
    return found


def threadRoot(headers):
    """
    The Message-ID (C{bytes}, without angle brackets) of the root of the
    thread of a message with this header block, or C{None}.
    """
    headers = headers or b""
    for name in (b"references", b"in-reply-to", b"message-id"):
        ids = _messageIds(_field(headers, name))
        if ids:
            return ids[0]
    return None


def threadIdOf(headers, emailId):
    """
    The THREADID of a message with this header block and EMAILID.
    """
    root = threadRoot(headers)
    if root is None:
        return "T" + emailId[1:]
    return "T" + hashlib.sha256(root).hexdigest()[:24]


def idsOf(measure):
    """
    C{(emailId, threadId)} of a message being added, from its
    L{gateway.store.maildir.Measure}.
    """
    emailId = emailIdOf(measure.digest)
    return emailId, threadIdOf(measure.headers, emailId)


def digestFile(f):
    """
    The SHA-256 of what the binary file object C{f} reads (a message in its
    CRLF view).
    """
    digest = hashlib.sha256()
    while True:
        chunk = f.read(65536)
        if not chunk:
            return digest
        digest.update(chunk)


def _owner(mailbox):
    """
    The owner's mailbox behind a shared one (the caller checked the
    viewer's rights: reading ids needs C{r}, as any FETCH or SEARCH).
    """
    return getattr(mailbox, "_mailbox", mailbox)


def objectIds(mailbox, uids):
    """
    The ids of C{uids} in C{mailbox} (a L{gateway.store.mailbox.Mailbox}, or
    a shared one).  Rows that have none yet (written before the ids
    existed) get them in the store's thread pool (L{fill}), so a large old
    mailbox does not hold up the reactor while its files are read.

    @return: a C{Deferred} firing with C{{uid: (emailId, threadId)}} for
        the messages that exist.
    """
    mailbox = _owner(mailbox)
    rows = mailbox._select("uid, emailid, threadid", uids)
    result = {uid: (emailId, threadId) for uid, emailId, threadId in rows
              if emailId is not None and threadId is not None}
    lacking = [uid for uid, emailId, threadId in rows if emailId is None or threadId is None]
    if not lacking:
        return succeed(result)
    d = mailbox._store._deferToThread(fill, mailbox, lacking)

    def filled(found):
        result.update(found)
        return result
    return d.addCallback(filled)


def fill(mailbox, uids):
    """
    Give ids to the rows of C{uids} that have none, from their files (read
    once), and keep them unless the disk is full; safe in a worker thread
    (the store gives each thread its own index connection).

    @return: C{{uid: (emailId, threadId)}} of those C{uids} that exist.
    """
    mailbox = _owner(mailbox)
    rows = mailbox._select("uid, emailid, threadid, headers", uids)
    result = {}
    missing = []
    for uid, emailId, threadId, headers in rows:
        if emailId is None or threadId is None:
            try:
                f = mailbox.openMessage(uid)
            except Exception:
                continue  # gone meanwhile
            try:
                emailId = emailIdOf(digestFile(f))
            finally:
                f.close()
            threadId = threadIdOf(headers, emailId)
            missing.append((emailId, threadId, mailbox._id, uid))
        result[uid] = (emailId, threadId)
    if missing:
        from gateway.store import index

        conn = mailbox._conn
        try:
            with index.transaction(conn):
                conn.executemany("UPDATE messages SET emailid = ?, threadid = ? WHERE mailbox = ? AND uid = ?",
                                 missing)
        except sqlite3.Error as e:
            if not isStorageFull(e):
                raise
    return result


def uidsWith(mailbox, column, value):
    """
    The UIDs of the messages of C{mailbox} whose C{column} (C{"emailid"} or
    C{"threadid"}) is C{value}, after giving ids to the rows that lack them
    (SEARCH EMAILID / THREADID, RFC 8474 6).

    @return: a C{Deferred} firing with a C{set} of UIDs.
    """
    if column not in ("emailid", "threadid"):
        raise ValueError("no such id column %r" % (column,))
    mailbox = _owner(mailbox)
    lacking = [row[0] for row in mailbox._conn.execute(
        "SELECT uid FROM messages WHERE mailbox = ? AND (emailid IS NULL OR threadid IS NULL)", (mailbox._id,))]
    d = mailbox._store._deferToThread(fill, mailbox, lacking) if lacking else succeed(None)

    def find(_):
        return {row[0] for row in mailbox._conn.execute(
            "SELECT uid FROM messages WHERE mailbox = ? AND %s = ?" % (column,), (mailbox._id, value))}
    return d.addCallback(find)
