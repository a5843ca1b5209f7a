# -*- test-case-name: tests.test_backup -*-
"""
Restoring from a backup (L{gateway.backup}) into a running server, and what
restore and import (L{gateway.importer}) share: when two messages are the
same, and indexing a folder now.
"""

import datetime
import hashlib
import os
import shutil
import sqlite3

from gateway.backup import BackupError, locateMessage
from gateway.directory.filedir import FileDirectory
from gateway.errors import MailboxExists, NoSuchMailbox, StoreError
from gateway.store import index, maildir, scan


def messageKey(size, headers, internalDate):
    """
    What makes two messages the same for restore and import: the size, the
    header block and the internal date (whole seconds).
    """
    return (int(size), hashlib.sha256(bytes(headers or b"")).hexdigest(), int(internalDate))


def liveKeys(mailbox):
    """
    @return: the L{messageKey}s of the messages in a store mailbox.
    """
    keys = set()
    uids = mailbox.uids()
    for i in range(0, len(uids), 500):
        for info in mailbox.messages(uids[i:i + 500]):
            keys.add(messageKey(info.size, info.headers, info.internalDate.timestamp()))
    return keys


def indexNow(store, name, fresh=False):
    """
    Bring a mailbox's index in step with its folder now, in this thread
    (the store indexes a folder copied in when it is first opened, in its
    thread pool, and C{gatewayctl} runs no reactor).

    @param fresh: first mark the mailbox not indexed if it never gave out a
        UID, so that the scan takes the UIDVALIDITY and UIDs of a
        C{dovecot-uidlist} in the folder.
    """
    conn = index.connect(store.indexPath)
    try:
        if fresh:
            with index.transaction(conn):
                conn.execute(
                    "UPDATE mailboxes SET indexed = 0, newmtime = 0, curmtime = 0 WHERE name = ? AND uidnext = 1"
                    " AND NOT EXISTS (SELECT 1 FROM messages WHERE messages.mailbox = mailboxes.id)", (name,))
        row = conn.execute("SELECT id FROM mailboxes WHERE name = ?", (name,)).fetchone()
        if row is not None:
            scan.scanMailbox(conn, row[0], maildir.mailboxPath(store.path, name))
    finally:
        conn.close()


class Restore:
    """
    Bring back an account, one mailbox or one message from a snapshot into
    a (possibly running) server, without clobbering newer data:

      - messages are appended through the account's store (the running
        server's sessions see them: C{EXISTS}), with their flags, keywords
        and internal dates, and get new UIDs;
      - a message that is already in the mailbox (same size, headers and
        internal date) is left alone, so restoring twice restores once;
      - a mailbox that no longer exists is created with its class and
        special use, its ACL file, and the UIDVALIDITY it had (restored
        messages get UIDs from the backed-up UIDNEXT on, never one the
        backup knew for another message);
      - a missing account is created with its backed-up settings
        (password, aliases, services, quota), and files missing from its
        file storage are copied back (files present are newer: kept);
      - the quota applies: the first message or file that does not fit
        stops the restore (what came back stays) with L{QuotaExceeded}.

    @param snapshot: the snapshot folder.
    @param directory: the live L{FileDirectory}.
    @param realm: the live realm (C{accountFor}, C{access}).
    """

    def __init__(self, snapshot, directory, realm):
        self.snapshot = snapshot
        self.directory = directory
        self.realm = realm
        self.saved = FileDirectory(snapshot, directory.mainDomain)
        self.counts = {"restored": 0, "present": 0, "mailboxes created": 0, "files": 0}
        self._aclRestored = False

    def restore(self, address, mailbox=None, uid=None):
        """
        @return: C{self.counts}.
        @raise BackupError: when the backup lacks what was asked for.
        @raise QuotaExceeded: when the account's quota stopped the restore.
        """
        saved = self.saved.getAccount(address.strip().lower())
        if saved is None:
            raise BackupError("%s is not in the backup %s" % (address, self.snapshot))
        if self.directory.getAccount(saved.address) is None:
            self._recreateAccount(saved)
        account = self.realm.accountFor(saved.address)
        indexPath = os.path.join(saved.path.path, "mail", maildir.INDEX_NAME)
        if not os.path.exists(indexPath):
            raise BackupError("the backup of %s holds no mail index" % (saved.address,))
        conn = sqlite3.connect("file:%s?mode=ro" % (indexPath,), uri=True)
        try:
            rows = conn.execute("SELECT id, name, uidvalidity, uidnext, class, specialuse FROM mailboxes"
                                " WHERE selectable = 1 ORDER BY name").fetchall()
            subscribed = {row[0] for row in conn.execute("SELECT name FROM subscriptions")}
            if mailbox is not None:
                wanted = maildir.canonicalName(mailbox)
                rows = [row for row in rows if row[1] == wanted]
                if not rows:
                    raise BackupError("no mailbox %s in the backup of %s" % (mailbox, saved.address))
            for row in rows:
                self._restoreMailbox(conn, saved, account, row, uid, row[1] in subscribed)
        finally:
            conn.close()
            if self._aclRestored:
                self.realm.access.rebuildIndex()
        if mailbox is None:
            self._restoreFiles(saved, account)
        return self.counts

    def _recreateAccount(self, saved):
        domain = saved.domain
        if self.directory.getDomain(domain.name) is None:
            self.directory.addDomain(
                domain.name, aliases=domain.aliases, addresses=domain.addresses,
                cleartextLogin=domain.cleartextLogin, defaultQuota=domain.defaultQuota,
                defaultServices=domain.defaultServices, enabled=domain.enabled, mechanisms=domain.mechanisms)
        self.directory.addAccount(
            saved.address, saved.password, aliases=saved.aliases, enabled=saved.enabled,
            services=saved.services, quota=saved.quota, quotaSetting=saved.quotaSetting,
            timezone=saved.timezone)

    def _restoreMailbox(self, conn, saved, account, row, uid, subscribed):
        mailboxId, name, uidValidity, uidNext, mailboxClass, specialUse = row
        store = account.mailStore
        savedFolder = os.path.join(saved.path.path, "mail", *name.split("/"))
        try:
            live = store.getMailbox(name)
            indexNow(store, name)  # files another program put there count as present
        except NoSuchMailbox:
            live = self._createMailbox(store, name, mailboxClass, specialUse, uidValidity, uidNext, savedFolder)
            if subscribed:
                store.subscribe(name)
        present = liveKeys(live)
        query = "SELECT uid, subdir, filename, flags, internaldate, size, headers FROM messages WHERE mailbox = ?"
        params = (mailboxId,)
        if uid is not None:
            query += " AND uid = ?"
            params += (uid,)
            if conn.execute(query, params).fetchone() is None:
                raise BackupError("no message with UID %d in %s in the backup" % (uid, name))
        for savedUid, subdir, filename, flags, internalDate, size, headers in conn.execute(
                query + " ORDER BY uid", params).fetchall():
            key = messageKey(size, headers, internalDate)
            if key in present:
                self.counts["present"] += 1
                continue
            path = os.path.join(savedFolder, subdir, filename)
            if not os.path.exists(path):
                path = locateMessage(savedFolder, maildir.splitName(filename)[0])
                if path is None:
                    raise BackupError("message file of UID %d in %s is missing from the backup" % (savedUid, name))
            with open(path, "rb") as f:
                live.appendMessage(f, index.decodeFlags(flags), datetime.datetime.fromtimestamp(
                    internalDate, datetime.timezone.utc))
            present.add(key)
            self.counts["restored"] += 1

    def _createMailbox(self, store, name, mailboxClass, specialUse, uidValidity, uidNext, savedFolder):
        try:
            store.createMailbox(name, mailboxClass, specialUse)
        except MailboxExists:
            pass
        except StoreError:
            store.createMailbox(name)
        # Recreated from nothing: the UIDVALIDITY it had, and UIDs after the
        # backed-up ones (only while nothing was put in it meanwhile).
        conn = index.connect(store.indexPath)
        try:
            with index.transaction(conn):
                conn.execute("UPDATE mailboxes SET uidvalidity = ?, uidnext = MAX(uidnext, ?)"
                             " WHERE name = ? AND uidnext = 1", (uidValidity, uidNext, name))
        finally:
            conn.close()
        acl = os.path.join(savedFolder, "dovecot-acl")
        target = os.path.join(maildir.mailboxPath(store.path, name), "dovecot-acl")
        if os.path.exists(acl) and not os.path.exists(target):
            shutil.copy2(acl, target)
            self._aclRestored = True
        self.counts["mailboxes created"] += 1
        return store.getMailbox(name)

    def _restoreFiles(self, saved, account):
        top = os.path.join(saved.path.path, "files")
        live = os.path.join(account.path, "files")
        added = 0  # the file store counts its usage from a walk made now and then
        for folder, dirs, names in os.walk(top):
            dirs.sort()
            relative = os.path.relpath(folder, top)
            for name in sorted(names):
                target = os.path.normpath(os.path.join(live, relative, name))
                source = os.path.join(folder, name)
                if os.path.lexists(target) or os.path.islink(source):
                    continue
                size = os.path.getsize(source)
                account.quota.check(added + size)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                temporary = os.path.join(os.path.dirname(target), ".restore-tmp-" + name)
                shutil.copy2(source, temporary)
                os.rename(temporary, target)
                added += size
                self.counts["files"] += 1
