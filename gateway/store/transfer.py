# -*- test-case-name: tests.test_store_transfer -*-
"""
COPY and MOVE between two mailboxes of one account's store, all or nothing
after a crash too (L{transfer}), and the steps the index writer runs after
their commit or when it fails.  Split from L{gateway.store.mailbox}.
"""

import functools
import os
import shutil

from twisted.python import log

from gateway.errors import StoreError
from gateway.store import index, maildir, properties, redo, structures
from gateway.store.journal import writeJournal


def transfer(source, uids, destination, move):
    """
    COPY or MOVE, all or nothing, after a crash too.  Each message is
    first hard-linked into the destination's C{tmp/} under the base
    name it will have there (a MOVE also journals what it does, see
    L{writeJournal}); one index transaction then gives the UIDs
    (and a MOVE unlinks the source files in it); only after the commit
    are the staged files renamed into C{new/} or C{cur/}.  Until then
    no scan can take them for messages, and whoever opens the mailbox
    after a crash finishes a committed transfer or removes the staged
    files of one that never committed (L{gateway.store.journal.recoverTemporary}).

    @raise StoreError: when a message file cannot be staged or a staged
        file is gone at commit time; nothing is copied or moved then.
    """
    if not isinstance(destination, type(source)) or destination._store is not source._store:
        raise StoreError("copy and move work within one account")
    columns = ("uid, subdir, filename, rawsize, flags, internaldate, size, crlf, headers, base, emailid, threadid")
    path, destinationPath = source._path(), destination._path()
    rows = source._select(columns, uids)
    if not rows:
        return []
    if not move:
        source._checkQuota(sum(row[3] for row in rows))
    staged = {}
    placed = []
    unlinked = []
    journal = None
    result = []
    try:
        # Outside the lock: the hard links, and the journal.
        for row in rows:
            base = maildir.newBase(row[3], row[6])
            staged[row[0]] = (base, stage(source, path, row, destinationPath, base))
        # A link shares its source's content, which may not be durable yet
        # (recorded in the index instead, gateway.store.redo): the copy is
        # another message, and no replay would write it back.
        unsynced = redo.unsyncedBases(source._conn, source._id)
        maildir.runTogether(
            [functools.partial(maildir.fsyncDirectory, os.path.join(destinationPath, "tmp"))]
            + [functools.partial(maildir.fsyncFile, staged[row[0]][1]) for row in rows
               if row[9] in unsynced and staged[row[0]][1] is not None])
        if move:
            journal = writeJournal(source._store.path, [
                (source._id, row[9], row[1], row[2], destination._id, staged[row[0]][0]) for row in rows])
        with index.transaction(source._conn):
            try:
                source._row("id")
                destination._row("id")
                current = source._select(columns, [row[0] for row in rows])
                uid = destination._row("uidnext")[0]
                modseq = index.bumpModSeq(source._conn, destination._id)
                moved = []
                for row in current:
                    (sourceUid, subdir, filename, rawSize, flagText, internalDate, size, crlf, headers, _,
                     emailId, threadId) = row
                    base, stagedPath = staged[sourceUid]
                    if stagedPath is None or not os.path.exists(stagedPath):
                        # Another process renamed the file (a flag change)
                        # as it was staged: stage it again from the row
                        # as it is now, under the index lock.
                        stagedPath = stage(source, path, row, destinationPath, base)
                        staged[sourceUid] = (base, stagedPath)
                        if stagedPath is None:
                            raise StoreError(
                                "message UID %d could not be copied: its file is missing" % (sourceUid,))
                        if row[9] in unsynced:
                            maildir.fsyncFile(stagedPath)
                        maildir.fsyncDirectory(os.path.join(destinationPath, "tmp"))
                    newSubdir, name = destination._place(base, index.decodeFlags(flagText), folder=destinationPath)
                    source._conn.execute(
                        "INSERT INTO messages (mailbox, uid, base, subdir, filename, flags, internaldate,"
                        " size, rawsize, crlf, modseq, headers, emailid, threadid)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (destination._id, uid, base, newSubdir, name, flagText, internalDate, size,
                         rawSize, crlf, modseq, headers, emailId, threadId))
                    placed.append((stagedPath, os.path.join(destinationPath, newSubdir, name)))
                    destination._expect((newSubdir, name))
                    result.append((sourceUid, uid))
                    properties.carry(source._conn, source._id, sourceUid, destination._id, uid)
                    structures.carry(source._conn, source._id, sourceUid, destination._id, uid)
                    uid += 1
                    index.addUsage(source._conn, rawSize)
                    if move:
                        moved.append(row)
                source._conn.execute("UPDATE mailboxes SET uidnext = ? WHERE id = ?", (uid, destination._id))
                if moved:
                    for row in moved:
                        sourcePath = os.path.join(path, row[1], row[2])
                        source._expect((row[1], row[2]))
                        try:
                            os.unlink(sourcePath)
                        except FileNotFoundError:
                            continue
                        unlinked.append((staged[row[0]][1], sourcePath))
                    source._removeRows(path, moved, index.bumpModSeq(source._conn, source._id), unlink=False)
                    source._recordFolders()
            except BaseException:
                # Before the rollback lets anybody else look.
                relink(unlinked)
                raise
    except BaseException:
        relink(unlinked)
        cleanTransfer(staged, journal)
        raise
    group = source._store._currentGroup()
    if group is None:
        placeTransferred(placed, destination, path if move else None)
        cleanTransfer(staged, journal)
    else:
        # In the index writer: the files go into place (and the journal
        # away) only once the group committed.
        group.afterCommit(placeTransferred, placed, destination, path if move else None)
        group.afterCommit(cleanTransfer, staged, journal)
        group.ifRolledBack(relink, unlinked)
        group.ifRolledBack(cleanTransfer, staged, journal)
    if result:
        destination._changed()
        if move:
            source._changed()
        source._store._added(destination, result, source=source)
    return result

def placeTransferred(placed, destination, sourcePath=None):
    """
    After a COPY or MOVE committed: rename its staged files into place
    and make the folders durable (the source's too for a MOVE, whose
    folder C{sourcePath} is).
    """
    destinationPath = destination._path()
    for stagedPath, target in placed:
        try:
            os.rename(stagedPath, target)
        except FileNotFoundError:
            # Put in place meanwhile by another process
            # (recoverTemporary), or by a flag change.
            if destination._locate(destinationPath, os.path.basename(stagedPath)) is None:
                log.msg("staged file %s vanished after its COPY/MOVE committed" % (stagedPath,))
    folders = {destinationPath} if sourcePath is None else {destinationPath, sourcePath}
    maildir.fsyncDirectories([os.path.join(folder, sub) for folder in folders for sub in ("new", "cur")])

def cleanTransfer(staged, journal):
    """
    After a COPY or MOVE ended: remove the staged files left (none once
    placed) and the journal.
    """
    for _, stagedPath in staged.values():
        if stagedPath is not None:
            maildir.removeQuietly(stagedPath)
    if journal is not None:
        maildir.removeQuietly(journal)

def relink(unlinked):
    """
    Put back the source files of a MOVE that failed: C{unlinked} is a
    C{list} of C{(stagedPath, sourcePath)}, emptied.
    """
    while unlinked:
        stagedPath, sourcePath = unlinked.pop()
        if os.path.exists(sourcePath):
            continue
        try:
            os.link(stagedPath, sourcePath)
        except OSError:
            log.err(None, "restoring %s after a failed MOVE" % (sourcePath,))

def stage(mailbox, path, row, destinationPath, base):
    """
    Put a copy of a message file into the destination's C{tmp/} under
    C{base}: a hard link, or a real copy where links are not possible.

    @param mailbox: the source mailbox, whose folder is C{path}.
    @return: its path, or C{None} if the message file is not there.
    """
    source = os.path.join(path, row[1], row[2])
    target = os.path.join(destinationPath, "tmp", base)
    if not os.path.exists(source):
        source = mailbox._locate(path, row[9])
        if source is None:
            return None
    try:
        os.link(source, target)
    except FileNotFoundError:
        return None
    except OSError:
        shutil.copyfile(source, target)
        with open(target, "rb") as f:
            os.fsync(f.fileno())
    return target
