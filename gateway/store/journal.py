# -*- test-case-name: tests.test_store_transfer -*-
"""
Crash recovery of COPY and MOVE (and REPLACE, L{gateway.store.replace}):
a MOVE journals what it is about to do (L{writeJournal}) before its index
transaction; whoever opens the account after a crash finishes or undoes
it (L{recoverJournals}), then clears each mailbox's C{tmp/} of staged
files, putting in place those whose transaction committed
(L{recoverTemporary}).
"""

import json
import os
import time

from gateway.store import index, maildir

#: Next to the index: the journals of MOVEs in progress (L{writeJournal}).
JOURNAL_FOLDER = ".gateway-journal"


def recoverTemporary(conn, mailboxId, path, now=None):
    """
    Clear a mailbox's C{tmp/} of what nobody holds any more (see
    L{maildir.temporaryHeld}): a message staged by a COPY or MOVE whose
    index commit happened is put in place (the process died between its
    commit and its renames), and so is the file of a message whose expunge
    did not commit (L{maildir.setAside}); anything else is removed.  Run this only
    after L{recoverJournals}, which may still need staged files.

    @return: bytes of the files that stay although their ctime is older
        than L{maildir.TMP_GRACE} (held by a live process that is not this
        one), which the account's usage counts.
    """
    now = time.time() if now is None else now
    tmpDir = os.path.join(path, "tmp")
    kept = 0
    for name, st in maildir.temporaryFiles(tmpDir):
        if maildir.temporaryHeld(name, st.st_ctime, now):
            owner = maildir.temporaryOwner(name)
            if now - st.st_ctime >= maildir.TMP_GRACE and (owner is None or owner[0] != os.getpid()):
                kept += st.st_size
            continue
        filePath = os.path.join(tmpDir, name)
        base = maildir.asideBase(name)
        row = conn.execute("SELECT subdir, filename FROM messages WHERE mailbox = ? AND base = ?",
                           (mailboxId, name if base is None else base)).fetchone()
        if row is not None and not os.path.exists(os.path.join(path, row[0], row[1])):
            try:
                os.rename(filePath, os.path.join(path, row[0], row[1]))
                continue
            except FileNotFoundError:
                continue
        maildir.removeQuietly(filePath)
    return kept



def writeJournal(root, entries):
    """
    Record, durably and before its index transaction, what a MOVE is about
    to do, so that whoever finds it after a crash (L{recoverJournals}) can
    finish or undo the part that happens outside the transaction: the
    source files are unlinked inside it, the staged hard links are renamed
    into place after it.

    @param root: the account's mail folder.
    @param entries: C{list} of C{(sourceMailboxId, sourceBase, sourceSubdir,
        sourceFilename, destinationMailboxId, stagedBase)}.
    @return: the journal's path; remove it when the MOVE is complete.
    """
    folder = os.path.join(root, JOURNAL_FOLDER)
    os.makedirs(folder, exist_ok=True)
    # The name says which process owns it (see maildir.temporaryHeld).
    name = "move." + maildir.newBase(0, 0).split(".", 1)[1].split(",", 1)[0]
    path, _ = maildir.writeTemporary(folder, json.dumps(entries).encode("utf-8"))
    target = os.path.join(folder, name)
    os.rename(path, target)
    maildir.fsyncDirectory(folder)
    return target


def recoverJournals(conn, root, now=None):
    """
    Finish or undo the MOVEs whose process died (see L{writeJournal}).  A
    MOVE committed if its source messages are gone from the index: then its
    staged files are put in place and the sources unlinked; otherwise the
    sources it had unlinked are linked back from the staged files.  Run
    before anything that could take a missing source for an expunged
    message or remove staged files (L{recoverTemporary}, the removals of
    L{gateway.store.scan.scanMailbox}, which calls L{recoverJournalsLocked}
    itself).
    """
    checked = time.time() if now is None else now
    # Journals of MOVEs still under way (a live process holds them) need
    # nothing: the index's write lock is taken only for the others.
    if all(maildir.temporaryHeld(name, st.st_ctime, checked)
           for name, st in maildir.temporaryFiles(os.path.join(root, JOURNAL_FOLDER))):
        return
    with index.transaction(conn):
        recoverJournalsLocked(conn, root, now)


def recoverJournalsLocked(conn, root, now=None):
    """
    L{recoverJournals} inside a write transaction.
    """
    folder = os.path.join(root, JOURNAL_FOLDER)
    now = time.time() if now is None else now
    for name, st in maildir.temporaryFiles(folder):
        if maildir.temporaryHeld(name, st.st_ctime, now):
            continue
        path = os.path.join(folder, name)
        try:
            with open(path, "rb") as f:
                entries = json.loads(f.read().decode("utf-8"))
        except (OSError, ValueError):
            entries = []
        for sourceId, sourceBase, subdir, filename, destinationId, stagedBase in entries:
            paths = dict(conn.execute(
                "SELECT id, name FROM mailboxes WHERE id IN (?, ?)", (sourceId, destinationId)).fetchall())
            if sourceId not in paths or destinationId not in paths:
                continue
            sourcePath = os.path.join(maildir.mailboxPath(root, paths[sourceId]), subdir, filename)
            destinationPath = maildir.mailboxPath(root, paths[destinationId])
            staged = os.path.join(destinationPath, "tmp", stagedBase)
            if conn.execute("SELECT 1 FROM messages WHERE mailbox = ? AND base = ?",
                            (sourceId, sourceBase)).fetchone():
                if not os.path.exists(sourcePath) and os.path.exists(staged):
                    os.link(staged, sourcePath)
                maildir.removeQuietly(staged)
                continue
            row = conn.execute("SELECT subdir, filename FROM messages WHERE mailbox = ? AND base = ?",
                               (destinationId, stagedBase)).fetchone()
            if row is not None and os.path.exists(staged):
                os.rename(staged, os.path.join(destinationPath, row[0], row[1]))
            maildir.removeQuietly(staged)
            maildir.removeQuietly(sourcePath)
        maildir.removeQuietly(path)

