# -*- test-case-name: tests.test_backup -*-
"""
Backups of a running server's data root, and restoring from them.

A backup is a folder tree that mirrors the data root (it can itself serve
as a data root), in a snapshot folder named by its UTC time::

    DEST/20261205T150000Z/backup.json              the manifest: what was taken
    DEST/20261205T150000Z/shared-mailboxes.sqlite  the shared-mailbox index
    DEST/20261205T150000Z/domains/<domain>/domain.ini, router.ini, tls/
    DEST/20261205T150000Z/domains/<domain>/accounts/<name>/account.ini, alerts/, files/
    DEST/20261205T150000Z/domains/<domain>/accounts/<name>/mail/.gateway-index.sqlite
    DEST/20261205T150000Z/domains/<domain>/accounts/<name>/mail/<mailbox>/{cur,new,tmp}, dovecot-acl, ...

It is consistent while the server runs: an account's index is copied first
with SQLite's online backup API (one point in time), then exactly the
message files that copy names are taken (message files never change, only
their names do when flags change: a file renamed meanwhile is found by its
base name and taken under the name the index copy has).  A message expunged
in between is dropped from the copy and counted in the manifest
(C{vanished}).  Message files are hard links to the data root where the
destination is on the same file system (they cost no space, and survive
the message's deletion), else copies; other files are always copied.

An incremental backup (C{--incremental}) compares with the newest complete
snapshot in C{DEST}: what is unchanged since (a message file with the same
base name, another file with the same size and modification time) is a
hard link to that snapshot's copy, so every snapshot stays complete on its
own and removing an old one never breaks a newer one.  A snapshot is
written under a dot-name and renamed into place when complete.

Restoring is L{gateway.restore}.
"""

import datetime
import json
import os
import shutil
import sqlite3
import tarfile
import time

from gateway.errors import GatewayError
from gateway.store import index, maildir, redo

#: The manifest in each snapshot folder.
MANIFEST = "backup.json"
FORMAT = 1
#: Files of an account's mail folder that are never taken: the index (taken
#: with the backup API), SQLite's side files, caches, temporary files.
_SKIPPED_PREFIXES = (maildir.INDEX_NAME, ".gateway-freebusy", ".tmp-", ".gateway-deleting-",
                     ".gateway-import-", ".gateway-journal")
SHARED_INDEX = "shared-mailboxes.sqlite"


class BackupError(GatewayError):
    """
    A backup or restore cannot be done (a message for the administrator).
    """


def snapshotName(now=None):
    """
    @return: the folder name of a snapshot taken at C{now} (POSIX time).
    """
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))


def snapshots(dest):
    """
    @return: the complete snapshots in C{dest}, oldest first (full paths).
    """
    try:
        names = sorted(os.listdir(dest))
    except FileNotFoundError:
        return []
    return [os.path.join(dest, n) for n in names
            if not n.startswith(".") and os.path.isfile(os.path.join(dest, n, MANIFEST))]


def findSnapshot(path):
    """
    C{path} itself when it is a snapshot, else the newest one in it.

    @raise BackupError: when there is none.
    """
    if os.path.isfile(os.path.join(path, MANIFEST)):
        return path
    found = snapshots(path)
    if not found:
        raise BackupError("no backup in %s (no %s)" % (path, MANIFEST))
    return found[-1]


def packSnapshot(snapshot):
    """
    Turn a snapshot folder into C{<snapshot>.tar} (hard links within it are
    stored once) and remove the folder.

    @return: the path of the tar file.
    """
    target = snapshot + ".tar"
    temporary = os.path.join(os.path.dirname(snapshot), "." + os.path.basename(target) + ".partial")
    with tarfile.open(temporary, "w") as archive:
        archive.add(snapshot, arcname=os.path.basename(snapshot))
    with open(temporary, "rb") as f:
        os.fsync(f.fileno())
    os.rename(temporary, target)
    shutil.rmtree(snapshot)
    return target


def _extractFilter(member, path):
    """
    Tar members as the C{data} filter allows them (nothing outside the
    folder, no devices); a symbolic link that points outside (a link an
    account's files held) is left out rather than refused.
    """
    try:
        return tarfile.data_filter(member, path)
    except (tarfile.AbsoluteLinkError, tarfile.LinkOutsideDestinationError):
        return None


def unpackSnapshot(archive, into):
    """
    Extract a snapshot packed by L{packSnapshot} into the folder C{into}.

    @return: the snapshot folder.
    @raise BackupError: when it is not a tar file holding a snapshot.
    """
    try:
        with tarfile.open(archive) as f:
            f.extractall(into, filter=_extractFilter)
    except (tarfile.TarError, OSError) as e:
        raise BackupError("cannot read %s: %s" % (archive, e))
    return findSnapshot(into)


def readManifest(snapshot):
    with open(os.path.join(snapshot, MANIFEST), encoding="utf-8") as f:
        return json.load(f)


def copyDatabase(source, target):
    """
    Copy the SQLite database C{source} to C{target} with SQLite's online
    backup API (a consistent copy while other connections write), as a
    single file (rollback journal, not WAL) that opens read-only anywhere.
    """
    os.makedirs(os.path.dirname(target), exist_ok=True)
    src = sqlite3.connect("file:%s?mode=ro" % (source,), uri=True, timeout=index.BUSY_TIMEOUT_MS / 1000.0)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def locateMessage(folder, base):
    """
    @return: the file of the message C{base} in the Maildir C{folder}, or C{None}.
    """
    for subdir in ("cur", "new"):
        try:
            names = os.listdir(os.path.join(folder, subdir))
        except FileNotFoundError:
            continue
        for name in names:
            if maildir.splitName(name)[0] == base:
                return os.path.join(folder, subdir, name)
    return None


class Backup:
    """
    Write one snapshot of some accounts into C{dest}.

    @param directory: the live L{FileDirectory}.
    @param dest: the backup folder (created if missing).
    @param incremental: link what is unchanged to the newest snapshot.
    """

    def __init__(self, directory, dest, incremental=False, now=None):
        self.directory = directory
        self.dataRoot = directory.dataRoot
        self.dest = os.path.abspath(dest)
        domains = os.path.join(self.dataRoot, "domains") + os.sep
        if (self.dest + os.sep).startswith(domains):
            raise BackupError("%s is inside the data root's domains/: choose a folder outside it" % (dest,))
        os.makedirs(self.dest, exist_ok=True)
        previous = snapshots(self.dest)
        self.previous = previous[-1] if incremental and previous else None
        name = snapshotName(now)
        number = 1
        while os.path.exists(os.path.join(self.dest, name)):
            number += 1
            name = "%s-%d" % (snapshotName(now), number)
        self.name = name
        self.path = os.path.join(self.dest, name)
        self.staging = os.path.join(self.dest, "." + name + ".partial")
        self._linkable = True
        self._previousBases = {}

    # -- files ---------------------------------------------------------------

    def _target(self, relative):
        target = os.path.join(self.staging, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        return target

    def _fromPrevious(self, relative, source):
        """
        Link C{relative} from the previous snapshot when it holds the same
        file (same size and modification time).
        """
        if self.previous is None:
            return False
        old = os.path.join(self.previous, relative)
        try:
            a, b = os.stat(old), os.stat(source)
        except OSError:
            return False
        if a.st_size != b.st_size or int(a.st_mtime) != int(b.st_mtime):
            return False
        try:
            os.link(old, self._target(relative))
        except OSError:
            return False
        return True

    def copyFile(self, relative, counts):
        """
        Copy one file of the data root (not a message), or link it from the
        previous snapshot when it is unchanged.
        """
        source = os.path.join(self.dataRoot, relative)
        if self._fromPrevious(relative, source):
            counts["linked"] += 1
            return
        try:
            # A symbolic link is kept as a link: what it points to is not taken.
            shutil.copy2(source, self._target(relative), follow_symlinks=False)
        except FileNotFoundError:
            return
        counts["taken"] += 1

    def copyTree(self, relative, counts):
        top = os.path.join(self.dataRoot, relative)
        for folder, dirs, files in os.walk(top):
            dirs.sort()
            os.makedirs(os.path.join(self.staging, os.path.relpath(folder, self.dataRoot)), exist_ok=True)
            for name in sorted(files):
                if name.startswith(".~gateway-"):
                    continue  # an FTP upload in progress
                self.copyFile(os.path.relpath(os.path.join(folder, name), self.dataRoot), counts)

    def _previousMessage(self, mailboxRelative, base):
        """
        The previous snapshot's file of the message C{base} in this mailbox.
        """
        if self.previous is None:
            return None
        bases = self._previousBases.get(mailboxRelative)
        if bases is None:
            bases = self._previousBases[mailboxRelative] = {}
            for subdir in ("cur", "new"):
                folder = os.path.join(self.previous, mailboxRelative, subdir)
                for name in os.listdir(folder) if os.path.isdir(folder) else ():
                    bases[maildir.splitName(name)[0]] = os.path.join(folder, name)
        return bases.get(base)

    def takeMessage(self, mailboxRelative, subdir, filename, counts):
        """
        Take one message file under the name the index copy gives it.

        @return: C{False} if it is gone from the data root.
        """
        base = maildir.splitName(filename)[0]
        target = self._target(os.path.join(mailboxRelative, subdir, filename))
        old = self._previousMessage(mailboxRelative, base)
        if old is not None:
            try:
                os.link(old, target)
                counts["linked"] += 1
                return True
            except OSError:
                pass
        folder = os.path.join(self.dataRoot, mailboxRelative)
        source = os.path.join(folder, subdir, filename)
        for _attempt in range(2):
            try:
                self._linkOrCopy(source, target)
                counts["taken"] += 1
                return True
            except FileNotFoundError:
                # Renamed (flags changed) since the index copy: find it by base.
                source = locateMessage(folder, base)
                if source is None:
                    return False
        return False

    def _linkOrCopy(self, source, target):
        if self._linkable:
            try:
                os.link(source, target)
                return
            except FileNotFoundError:
                raise
            except OSError:
                self._linkable = False  # another file system: copies from now on
        shutil.copy2(source, target)

    # -- what is taken -------------------------------------------------------

    def run(self, accounts, domains, everything=False):
        """
        Take C{accounts} (records) and the settings of C{domains} (names).

        @return: the path of the finished snapshot.
        """
        os.makedirs(self.staging, mode=0o700)  # passwords and mail: for the administrator only
        manifest = {
            "format": FORMAT,
            "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "kind": "incremental" if self.previous else "full",
            "previous": os.path.basename(self.previous) if self.previous else None,
            "scope": "all" if everything else "domains" if domains else "accounts",
            "domains": sorted(domains),
            "accounts": {},
        }
        for name in sorted(domains):
            self.copyDomain(name)
        shared = os.path.join(self.dataRoot, SHARED_INDEX)
        if os.path.exists(shared):
            copyDatabase(shared, os.path.join(self.staging, SHARED_INDEX))
        for record in accounts:
            if record.domain.name not in domains:
                self.copyDomain(record.domain.name, settingsOnly=True)
            manifest["accounts"][record.address] = self.backupAccount(record)
        with open(os.path.join(self.staging, MANIFEST), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.rename(self.staging, self.path)
        return self.path

    def copyDomain(self, name, settingsOnly=False):
        counts = {"taken": 0, "linked": 0}
        relative = os.path.join("domains", name)
        for filename in ("domain.ini", "router.ini"):
            self.copyFile(os.path.join(relative, filename), counts)
        if not settingsOnly and os.path.isdir(os.path.join(self.dataRoot, relative, "tls")):
            self.copyTree(os.path.join(relative, "tls"), counts)

    def backupAccount(self, record):
        """
        Take one account: settings, alerts, files, and its mail (index
        first, then the message files it names).

        @return: the account's part of the manifest.
        """
        accountRelative = os.path.relpath(record.path.path, self.dataRoot)
        files = {"taken": 0, "linked": 0}
        self.copyFile(os.path.join(accountRelative, "account.ini"), files)
        for folder in ("alerts", "files"):
            if os.path.isdir(os.path.join(record.path.path, folder)):
                self.copyTree(os.path.join(accountRelative, folder), files)
        mailRelative = os.path.join(accountRelative, "mail")
        result = {"files": files, "mailboxes": {}}
        mailPath = os.path.join(self.dataRoot, mailRelative)
        if not os.path.isdir(mailPath):
            return result
        messages = {"taken": 0, "linked": 0, "vanished": 0}
        result["messages"] = messages
        indexCopy = os.path.join(self.staging, mailRelative, maildir.INDEX_NAME)
        if os.path.exists(os.path.join(mailPath, maildir.INDEX_NAME)):
            copyDatabase(os.path.join(mailPath, maildir.INDEX_NAME), indexCopy)
            # The files the copy names may not be durable yet (the index
            # records them instead, gateway.store.redo): a hard link taken
            # now would keep the inode a replay after a power cut replaces.
            redo.syncFileSystem(mailPath)
            self._takeIndexedMessages(indexCopy, mailRelative, messages, result["mailboxes"])
        self._takeMailFolders(mailPath, mailRelative, files)
        return result

    def _takeIndexedMessages(self, indexCopy, mailRelative, counts, mailboxes):
        conn = sqlite3.connect(indexCopy, isolation_level=None)
        try:
            rows = conn.execute("SELECT id, name, uidvalidity, uidnext, selectable, indexed FROM mailboxes"
                                " ORDER BY name").fetchall()
            vanished = []
            for mailboxId, name, uidValidity, uidNext, selectable, indexed in rows:
                mailboxRelative = os.path.join(mailRelative, *name.split("/"))
                maildir.ensureMaildir(os.path.join(self.staging, mailboxRelative))
                if not selectable:
                    continue
                taken = 0
                for uid, subdir, filename, rawSize in conn.execute(
                        "SELECT uid, subdir, filename, rawsize FROM messages WHERE mailbox = ? ORDER BY uid",
                        (mailboxId,)).fetchall():
                    if self.takeMessage(mailboxRelative, subdir, filename, counts):
                        taken += 1
                    else:
                        vanished.append((mailboxId, uid, rawSize))
                if not indexed:
                    # A Maildir copied in that nobody opened yet: all its files.
                    for subdir in ("new", "cur"):
                        folder = os.path.join(self.dataRoot, mailboxRelative, subdir)
                        for filename in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
                            if not filename.startswith(".") and self.takeMessage(
                                    mailboxRelative, subdir, filename, counts):
                                taken += 1
                mailboxes[name] = {"uidvalidity": uidValidity, "uidnext": uidNext, "messages": taken}
            if vanished:
                conn.execute("BEGIN")
                for mailboxId, uid, rawSize in vanished:
                    conn.execute("DELETE FROM messages WHERE mailbox = ? AND uid = ?", (mailboxId, uid))
                    conn.execute("UPDATE meta SET value = value - ? WHERE key = 'usage'", (rawSize,))
                conn.execute("COMMIT")
                counts["vanished"] += len(vanished)
        finally:
            conn.close()

    def _takeMailFolders(self, mailPath, mailRelative, files):
        """
        The small files beside the Maildirs (ACLs, keywords, uid lists, the
        UIDVALIDITY record), for every folder.
        """
        for folder, dirs, names in os.walk(mailPath):
            dirs[:] = sorted(d for d in dirs if d not in maildir.SUBDIRS and not d.startswith("."))
            relative = os.path.join(mailRelative, os.path.relpath(folder, mailPath))
            for name in sorted(names):
                if name.startswith(_SKIPPED_PREFIXES):
                    continue
                self.copyFile(os.path.normpath(os.path.join(relative, name)), files)
