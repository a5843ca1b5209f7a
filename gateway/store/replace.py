# -*- test-case-name: tests.test_imap_replace -*-
"""
REPLACE (RFC 8508) in the store: a new message is added to a mailbox and
an old one removed, all or nothing, also across a crash; the old message's
stored properties (C{docs/xmapi.md} R-PROP-2, R-OID-2) go to the new one.

Within one account (L{replaceMessage}) it is one index transaction, with
the files handled as a MOVE handles them (L{gateway.store.transfer.
transfer}): the new file waits in the target's C{tmp/} under the base
name its row gets, and is put in place after the commit (or by
L{gateway.store.journal.recoverTemporary} after a crash; removed if the
transaction never committed); the old file is hard-linked into its
mailbox's C{tmp/}, journalled (L{gateway.store.journal.writeJournal}) and
unlinked inside the transaction, so a crash before the commit links it
back (L{gateway.store.journal.recoverJournals}) and one after it removes
it.  Between mailboxes of two accounts (a viewer's own and a shared one)
the message is appended to the target first, then the old one expunged:
nothing is lost, but a crash in between leaves both.
"""

import os

from twisted.python import log

from gateway.errors import NoSuchMessage, StoreError
from gateway.store import index, maildir, objectid, properties, transfer, userflags
from gateway.store.access import SharedMailbox, allowedFlags
from gateway.store.journal import writeJournal
from gateway.store.mailbox import OPEN_ATTEMPTS
from gateway.store.records import normalizeFlags


def replace(source, uid, message, flags, internalDate, destination):
    """
    Replace message C{uid} of C{source} by C{message} in C{destination}
    (the same mailbox or another), checking the viewer's rights when
    either is another account's mailbox: C{t} and C{e} on the source, C{i}
    on the target (RFC 8508 with RFC 4314); flags the viewer may not set
    on the target are dropped, as APPEND drops them.

    @param message: C{bytes} or a binary file object.
    @param internalDate: an aware C{datetime} or C{None}.
    @return: the new message's UID in C{destination}.
    @raise NoSuchMessage: C{uid} is not (any more) in C{source}.
    @raise gateway.errors.QuotaExceeded: the target's owner has no room.
    """
    if isinstance(source, SharedMailbox):
        source._need("te")
    seen = False
    if isinstance(destination, SharedMailbox):
        rights = destination.rights()
        destination._need("i")
        flags = allowedFlags(flags, rights)
        seen = any(flag.lower() == "\\seen" for flag in flags)
        flags = [flag for flag in flags if flag.lower() != "\\seen"]
    rawSource = source._mailbox if isinstance(source, SharedMailbox) else source
    rawDestination = destination._mailbox if isinstance(destination, SharedMailbox) else destination
    if rawSource._store is rawDestination._store:
        mtime = internalDate.timestamp() if internalDate is not None else None
        prepared = rawDestination.prepareMessage(message, mtime=mtime)
        newUid = replaceMessage(rawSource, uid, prepared, flags, rawDestination)
    else:
        if not rawSource.messages([uid], headers=False):
            raise NoSuchMessage(uid)
        newUid = rawDestination.appendMessage(message, flags, internalDate)
        properties.copyAcross(rawSource, uid, rawDestination, newUid)
        rawSource.setFlags([uid], ["\\Deleted"], "+")
        rawSource.expunge([uid])
    if seen:
        userflags.setSeen(rawDestination, destination._viewer, [newUid], "+")
    return newUid


def replaceMessage(source, uid, prepared, flags, destination):
    """
    Within one account: commit a L{gateway.store.mailbox.PreparedMessage}
    of C{destination} as a new message and remove message C{uid} of
    C{source}, in one transaction (see the module's docstring).  The
    prepared file is gone afterwards, whatever happens.

    @return: the new UID.
    @raise NoSuchMessage: C{uid} is not in C{source}; nothing changed.
    @raise gateway.errors.QuotaExceeded: nothing changed.
    """
    if destination._store is not source._store:
        raise StoreError("replace within one account only")
    store = source._store
    flags = normalizeFlags(flags)
    columns = "uid, subdir, filename, rawsize, flags, base"
    path, destinationPath = source._path(), destination._path()
    measure = prepared.measure
    staged = keep = journal = None
    unlinked = []
    placed = None
    committed = False
    try:
        rows = source._select(columns, [uid])
        if not rows:
            raise NoSuchMessage(uid)
        old = rows[0]
        # The old message's octets are freed in the same transaction.
        destination._checkQuota(max(0, measure.rawSize - old[3]))
        mtime = prepared.mtime
        if mtime is None:
            mtime = os.stat(prepared.path).st_mtime
        base = maildir.newBase(measure.rawSize, measure.size)
        staged = os.path.join(destinationPath, "tmp", base)
        os.rename(prepared.path, staged)
        keep = os.path.join(path, "tmp", maildir.newBase(old[3], old[3]))
        oldPath = os.path.join(path, old[1], old[2])
        for _ in range(OPEN_ATTEMPTS):
            try:
                os.link(oldPath, keep)
                break
            except FileNotFoundError:
                # Renamed by another process (a flag change): look again.
                oldPath = source._locate(path, old[5])
                if oldPath is None:
                    raise NoSuchMessage(uid) from None
        else:
            raise NoSuchMessage(uid)
        maildir.fsyncDirectories({os.path.join(destinationPath, "tmp"), os.path.join(path, "tmp")})
        journal = writeJournal(store.path, [
            (source._id, old[5], old[1], old[2], source._id, os.path.basename(keep))])
        conn = source._conn
        with index.transaction(conn):
            try:
                source._row("id")
                destination._row("id")
                current = source._select(columns, [uid])
                if not current:
                    raise NoSuchMessage(uid)
                subdir, name = destination._place(base, flags, folder=destinationPath)
                newUid = destination._row("uidnext")[0]
                modseq = index.bumpModSeq(conn, destination._id)
                conn.execute(
                    "INSERT INTO messages (mailbox, uid, base, subdir, filename, flags, internaldate,"
                    " size, rawsize, crlf, modseq, headers, emailid, threadid)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (destination._id, newUid, base, subdir, name, index.encodeFlags(flags), mtime,
                     measure.size, measure.rawSize, int(measure.needsCRLF), modseq, measure.headers,
                     *objectid.idsOf(measure)))
                conn.execute("UPDATE mailboxes SET uidnext = ? WHERE id = ?", (newUid + 1, destination._id))
                index.addUsage(conn, measure.rawSize)
                placed = os.path.join(destinationPath, subdir, name)
                destination._expect((subdir, name))
                properties.carry(conn, source._id, uid, destination._id, newUid)
                source._expect((old[1], old[2]))
                try:
                    os.unlink(oldPath)
                    unlinked.append((keep, oldPath))
                except FileNotFoundError:
                    pass
                source._removeRows(path, current, index.bumpModSeq(conn, source._id), unlink=False)
                source._recordFolders()
            except BaseException:
                transfer.relink(unlinked)
                raise
        committed = True
    except BaseException:
        transfer.relink(unlinked)
        raise
    finally:
        if committed:
            try:
                os.rename(staged, placed)
            except FileNotFoundError:
                if destination._locate(destinationPath, os.path.basename(staged)) is None:
                    log.msg("staged file %s vanished after its REPLACE committed" % (staged,))
            maildir.fsyncDirectories(
                [os.path.join(folder, sub) for folder in {destinationPath, path} for sub in ("new", "cur")])
        for leftover in (staged, keep, journal, prepared.path):
            if leftover is not None:
                maildir.removeQuietly(leftover)
    destination._changed()
    source._changed()
    store._added(destination, [newUid])
    return newUid
