# -*- test-case-name: tests.test_backup -*-
"""
Tests for backups and restores (L{gateway.backup}, C{gatewayctl backup} and
C{restore}): snapshots taken while the store changes, incremental snapshots,
and restoring accounts, mailboxes and messages into a store that sessions
are using.
"""

import datetime
import io
import json
import os
import shutil
import sqlite3
import tarfile

from twisted.internet.task import Clock
from twisted.trial import unittest

from gateway import backup as backupModule
from gateway import ctl
from gateway.backup import (
    MANIFEST,
    Backup,
    BackupError,
    findSnapshot,
    packSnapshot,
    readManifest,
    unpackSnapshot,
)
from gateway.cred.realm import GatewayRealm
from gateway.errors import NoSuchMailbox, QuotaExceeded
from gateway.restore import Restore
from gateway.store import acl, maildir
from gateway.store.mail import MailStore
from tests.support import PASSWORD, makeDataRoot
from tests.test_ctl import CtlMixin

ADDRESS = "demo@example.test"


def message(number, size=0):
    return (b"From: a@example.org\r\nSubject: message %d\r\nMessage-ID: <%d@example.org>\r\n\r\nbody %d\r\n%s"
            % (number, number, number, b"x" * size))


def when(day):
    return datetime.datetime(2024, 3, day, 12, 0, tzinfo=datetime.timezone.utc)


def state(mailbox):
    """
    C{{subject: (flags, internal date)}} of a mailbox.
    """
    result = {}
    uids = mailbox.uids()
    for info in mailbox.messages(uids):
        subject = [line for line in info.headers.split(b"\r\n") if line.startswith(b"Subject:")][0]
        result[subject] = (frozenset(info.flags), info.internalDate)
    return result


class BackupMixin:
    def setUp(self):
        self.root = self.mktemp()
        self.directory = makeDataRoot(self.root)
        self.clock = Clock()
        self.realm = self.makeRealm()
        self.dest = os.path.abspath(self.mktemp())
        self.account = self.realm.accountFor(ADDRESS)
        self.store = self.account.mailStore
        inbox = self.store.getMailbox("INBOX")
        inbox.appendMessage(message(1), ["\\Seen", "$Important"], when(1))
        inbox.appendMessage(message(2), ["\\Flagged"], when(2))
        inbox.appendMessage(message(3), [], when(3))
        self.store.createMailbox("Archive/2024", "IPF.Note")
        archive = self.store.getMailbox("Archive/2024")
        archive.appendMessage(message(4), ["\\Seen", "\\Answered"], when(4))
        self.account.access.setACL("Archive/2024", "other", "lr", "")
        with open(os.path.join(self.account.path, "files", "index.html"), "wb") as f:
            f.write(b"<p>hello</p>")

    def makeRealm(self):
        realm = GatewayRealm(self.directory, mailStoreFactory=lambda path, quota: MailStore(
            path, quota=quota, reactor=self.clock, useInotify=False))
        self.addCleanup(realm.access.sharedIndex.close)
        return realm

    def backup(self, incremental=False, now=None):
        record = self.directory.getAccount(ADDRESS)
        return Backup(self.directory, self.dest, incremental=incremental, now=now).run([record], [])

    def savedStore(self, snapshot):
        """
        A store over the snapshot's copy of the account (it is a data root).
        """
        path = os.path.join(snapshot, "domains", "example.test", "accounts", "demo", "mail")
        store = MailStore(path, reactor=Clock(), useInotify=False)
        self.addCleanup(store.close)
        return store


class BackupTests(BackupMixin, unittest.TestCase):
    def test_snapshotIsADataRoot(self):
        """A snapshot holds the settings, the index copy, the files and every message with its flags."""
        snapshot = self.backup(now=1733400000)
        self.assertEqual(os.path.basename(snapshot), "20241205T120000Z")
        account = os.path.join(snapshot, "domains", "example.test", "accounts", "demo")
        for relative in ("account.ini", "files/index.html", "mail/Archive/2024/dovecot-acl",
                         "../../domain.ini", "../../../../shared-mailboxes.sqlite"):
            self.assertTrue(os.path.exists(os.path.join(account, relative)), relative)
        manifest = readManifest(snapshot)
        self.assertEqual(manifest["kind"], "full")
        self.assertEqual(manifest["accounts"][ADDRESS]["messages"], {"taken": 4, "linked": 0, "vanished": 0})
        self.assertEqual(manifest["accounts"][ADDRESS]["mailboxes"]["INBOX"]["messages"], 3)
        saved = self.savedStore(snapshot)
        for name in ("INBOX", "Archive/2024"):
            live, copy = self.store.getMailbox(name), saved.getMailbox(name)
            self.assertEqual(state(copy), state(live))
            self.assertEqual((copy.uidValidity, copy.uids()), (live.uidValidity, live.uids()))
        self.assertEqual(saved.getMailbox("INBOX").messages([1])[0].flags, {"\\Seen", "$Important"})

    def test_indexCopyIsOneFile(self):
        """The index copy made with SQLite's backup API is a single file that opens read-only."""
        snapshot = self.backup()
        path = os.path.join(snapshot, "domains/example.test/accounts/demo/mail", maildir.INDEX_NAME)
        self.assertFalse(os.path.exists(path + "-wal"))
        conn = sqlite3.connect("file:%s?mode=ro" % (path,), uri=True)
        self.addCleanup(conn.close)
        self.assertEqual(conn.execute("PRAGMA journal_mode").fetchone()[0], "delete")
        self.assertEqual(conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0], 4)

    def test_messageFilesAreLinks(self):
        """On the same file system message files are hard links to the data root's, other files copies."""
        snapshot = self.backup()
        inbox = maildir.mailboxPath(self.store.path, "INBOX")
        saved = os.path.join(snapshot, "domains/example.test/accounts/demo/mail/INBOX")
        live = {name: os.stat(os.path.join(inbox, "cur", name)).st_ino for name in os.listdir(os.path.join(inbox, "cur"))}
        live.update({name: os.stat(os.path.join(inbox, "new", name)).st_ino
                     for name in os.listdir(os.path.join(inbox, "new"))})
        copied = {}
        for subdir in ("cur", "new"):
            for name in os.listdir(os.path.join(saved, subdir)):
                copied[name] = os.stat(os.path.join(saved, subdir, name)).st_ino
        self.assertEqual(copied, live)
        html = os.path.join(snapshot, "domains/example.test/accounts/demo/files/index.html")
        self.assertNotEqual(os.stat(html).st_ino, os.stat(os.path.join(self.account.path, "files/index.html")).st_ino)

    def test_consistentWhileChanging(self):
        """Changes after the index copy (a flag rename, an expunge, an append) leave the snapshot as the copy says."""
        inbox = self.store.getMailbox("INBOX")
        original = backupModule.copyDatabase

        def copyThenChange(source, target):
            original(source, target)
            if source.endswith(maildir.INDEX_NAME):
                inbox.setFlags([1], ["\\Deleted"], "+")   # renames the file
                inbox.setFlags([2], ["\\Deleted"], "+")
                inbox.expunge([2])                       # removes the file
                inbox.appendMessage(message(9))
        self.patch(backupModule, "copyDatabase", copyThenChange)
        snapshot = self.backup()
        manifest = readManifest(snapshot)
        self.assertEqual(manifest["accounts"][ADDRESS]["messages"]["vanished"], 1)
        saved = self.savedStore(snapshot).getMailbox("INBOX")
        self.assertEqual(saved.uids(), [1, 3])
        self.assertEqual(saved.messages([1])[0].flags, {"\\Seen", "$Important"})
        with saved.openMessage(1) as f:
            self.assertEqual(f.read(), message(1))
        self.assertEqual(self.savedStore(snapshot).usage(), len(message(1)) + len(message(3)) + len(message(4)))

    def test_incremental(self):
        """An incremental snapshot links unchanged messages to the previous one and stays complete alone."""
        first = self.backup(now=1733400000)
        inbox = self.store.getMailbox("INBOX")
        inbox.appendMessage(message(5), [], when(5))
        inbox.setFlags([3], ["\\Seen"], "+")
        second = self.backup(incremental=True, now=1733400060)
        manifest = readManifest(second)
        self.assertEqual((manifest["kind"], manifest["previous"]), ("incremental", os.path.basename(first)))
        self.assertEqual(manifest["accounts"][ADDRESS]["messages"], {"taken": 1, "linked": 4, "vanished": 0})
        self.assertEqual(manifest["accounts"][ADDRESS]["files"]["taken"], 0)
        shutil.rmtree(first)
        saved = self.savedStore(second).getMailbox("INBOX")
        self.assertEqual(state(saved), state(inbox))
        self.assertIn("\\Seen", saved.messages([3])[0].flags)

    def test_private(self):
        """A snapshot is readable by its owner only; a DEST inside the data root's domains/ is refused."""
        snapshot = self.backup()
        self.assertEqual(os.stat(snapshot).st_mode & 0o777, 0o700)
        inside = os.path.join(self.root, "domains", "example.test", "backups")
        self.assertRaises(BackupError, Backup, self.directory, inside)
        self.assertFalse(os.path.exists(inside))

    def test_tarUnpacking(self):
        """A packed snapshot unpacks whole; a link out of it is left out, a member outside the folder refused."""
        files = os.path.join(self.account.path, "files")
        os.symlink("/etc/passwd", os.path.join(files, "link"))
        archive = packSnapshot(self.backup())
        self.assertEqual(os.listdir(self.dest), [os.path.basename(archive)])
        into = self.mktemp()
        snapshot = unpackSnapshot(archive, into)
        saved = self.savedStore(snapshot).getMailbox("INBOX")
        self.assertEqual(state(saved), state(self.store.getMailbox("INBOX")))
        self.assertFalse(os.path.lexists(os.path.join(snapshot, "domains/example.test/accounts/demo/files/link")))
        hostile = os.path.abspath(self.mktemp())
        with tarfile.open(hostile, "w") as f:
            member = tarfile.TarInfo("../escaped")
            f.addfile(member, io.BytesIO(b""))
        self.assertRaises(BackupError, unpackSnapshot, hostile, self.mktemp())

    def test_snapshotNamesAndPartial(self):
        """Two snapshots in one second get distinct names; an unfinished one is never taken as the newest."""
        first = self.backup(now=1733400000)
        second = self.backup(now=1733400000)
        self.assertEqual(os.path.basename(second), "20241205T120000Z-2")
        os.makedirs(os.path.join(self.dest, ".20241205T130000Z.partial"))
        os.makedirs(os.path.join(self.dest, "20241205T140000Z"))  # no manifest: not complete
        self.assertEqual(findSnapshot(self.dest), second)
        self.assertEqual(findSnapshot(first), first)
        self.assertRaises(BackupError, findSnapshot, self.mktemp())


class RestoreTests(BackupMixin, unittest.TestCase):
    def restore(self, snapshot, address=ADDRESS, mailbox=None, uid=None):
        return Restore(snapshot, self.directory, self.realm).restore(address, mailbox, uid)

    def test_restoreIntoOpenMailbox(self):
        """Expunged messages come back with flags, keywords and dates, new UIDs, and an open session is told."""
        snapshot = self.backup()
        inbox = self.store.getMailbox("INBOX")
        before = state(inbox)
        inbox.setFlags([1, 2], ["\\Deleted"], "+")
        inbox.expunge()
        inbox.appendMessage(message(6))  # newer: kept
        calls = []
        inbox.addListener(lambda: calls.append(inbox.uids()))
        counts = self.restore(snapshot)
        self.clock.advance(0)
        self.assertEqual(calls[-1], [3, 4, 5, 6])
        self.assertEqual(counts["restored"], 2)
        self.assertEqual(counts["present"], 2)  # message 3 and Archive's message 4
        now = state(inbox)
        for subject, value in before.items():
            self.assertEqual(now[subject], value)
        self.assertIn(b"Subject: message 6", now)

    def test_restoreTwiceRestoresOnce(self):
        """Restoring again finds every message there and adds nothing."""
        snapshot = self.backup()
        self.store.getMailbox("INBOX").setFlags([1], ["\\Deleted"], "+")
        self.store.getMailbox("INBOX").expunge()
        self.assertEqual(self.restore(snapshot)["restored"], 1)
        counts = self.restore(snapshot)
        self.assertEqual((counts["restored"], counts["present"]), (0, 4))
        self.assertEqual(len(self.store.getMailbox("INBOX").uids()), 3)

    def test_deletedMailboxRecreated(self):
        """A deleted mailbox comes back with its UIDVALIDITY, messages, ACL and subscription; UIDs past the old ones."""
        archive = self.store.getMailbox("Archive/2024")
        uidValidity, uidNext = archive.uidValidity, archive.uidNext()
        self.store.subscribe("Archive/2024")
        snapshot = self.backup()
        self.store.deleteMailbox("Archive/2024")
        self.store.unsubscribe("Archive/2024")
        self.assertRaises(NoSuchMailbox, self.store.getMailbox, "Archive/2024")
        counts = self.restore(snapshot, mailbox="Archive/2024")
        self.assertEqual((counts["restored"], counts["mailboxes created"]), (1, 1))
        archive = self.store.getMailbox("Archive/2024")
        self.assertEqual(archive.uidValidity, uidValidity)
        self.assertEqual(archive.uids(), [uidNext])
        self.assertEqual(archive.messages([uidNext])[0].flags, {"\\Seen", "\\Answered"})
        self.assertIn("Archive/2024", self.store.subscriptions())
        folder = maildir.mailboxPath(self.store.path, "Archive/2024")
        self.assertEqual(acl.readACL(folder).rightsFor("other@example.test", ADDRESS), frozenset("lr"))
        self.assertEqual(self.store.getMailbox("INBOX").uids(), [1, 2, 3])  # only the mailbox asked for

    def test_oneMessage(self):
        """--message UID restores that message only."""
        snapshot = self.backup()
        inbox = self.store.getMailbox("INBOX")
        inbox.setFlags([1, 2, 3], ["\\Deleted"], "+")
        inbox.expunge()
        counts = self.restore(snapshot, mailbox="INBOX", uid=2)
        self.assertEqual(counts["restored"], 1)
        self.assertEqual(list(state(inbox)), [b"Subject: message 2"])
        self.assertRaises(BackupError, self.restore, snapshot, mailbox="INBOX", uid=77)
        self.assertRaises(BackupError, self.restore, snapshot, mailbox="Nope")
        self.assertRaises(BackupError, self.restore, snapshot, address="other@example.test")

    def test_quota(self):
        """Over quota the restore stops at the first message that does not fit; what came back stays."""
        inbox = self.store.getMailbox("INBOX")
        inbox.appendMessage(message(7, size=5000), [], when(7))
        snapshot = self.backup()
        inbox.setFlags(inbox.uids(), ["\\Deleted"], "+")
        inbox.expunge()
        used = self.account.quota.used()
        limit = used + 3 * len(message(1)) + 10  # the three small ones fit, not the big one
        self.directory.setAccount(ADDRESS, quota=limit, quotaSetting=str(limit))
        restore = Restore(snapshot, self.directory, self.realm)
        self.assertRaises(QuotaExceeded, restore.restore, ADDRESS, "INBOX")
        self.assertEqual(restore.counts["restored"], 3)
        self.assertEqual(len(inbox.uids()), 3)

    def test_removedAccount(self):
        """A removed account is created again with its settings, mail and files."""
        self.directory.setAccount(ADDRESS, aliases=("d.emo",))
        password = self.directory.getAccount(ADDRESS).password
        snapshot = self.backup()
        self.store.close()
        self.directory.removeAccount(ADDRESS)
        counts = self.restore(snapshot)
        self.assertEqual(counts["files"], 1)
        record = self.directory.getAccount(ADDRESS)
        self.assertEqual((record.aliases, record.password), (("d.emo",), password))
        self.assertEqual(self.directory.resolve("d.emo@example.test").address, ADDRESS)
        store = self.realm.accountFor(ADDRESS).mailStore
        self.assertEqual(len(store.getMailbox("INBOX").uids()), 3)
        self.assertEqual(len(store.getMailbox("Archive/2024").uids()), 1)
        with open(os.path.join(record.path.path, "files", "index.html"), "rb") as f:
            self.assertEqual(f.read(), b"<p>hello</p>")

    def test_filesQuotaAndLinks(self):
        """Restored files count against the quota one after another; a symbolic link is kept as a link, not followed."""
        files = os.path.join(self.account.path, "files")
        for name in ("a.bin", "b.bin"):
            with open(os.path.join(files, name), "wb") as f:
                f.write(b"x" * 4000)
        secret = os.path.abspath(self.mktemp())
        with open(secret, "wb") as f:
            f.write(b"not the account's")
        os.symlink(secret, os.path.join(files, "link"))
        snapshot = self.backup()
        saved = os.path.join(snapshot, "domains/example.test/accounts/demo/files")
        self.assertEqual(os.readlink(os.path.join(saved, "link")), secret)
        for name in ("a.bin", "b.bin", "link"):
            os.unlink(os.path.join(files, name))
        self.store.getMailbox("INBOX")
        limit = self.account.quota.used() + 6000  # room for one of the two
        self.directory.setAccount(ADDRESS, quota=limit, quotaSetting=str(limit))
        restore = Restore(snapshot, self.directory, self.realm)
        self.assertRaises(QuotaExceeded, restore.restore, ADDRESS)
        self.assertEqual(restore.counts["files"], 1)
        self.assertEqual(sorted(os.listdir(files)), ["a.bin", "index.html", "private"])

    def test_newerFilesKept(self):
        """A file changed since the backup is left as it is; a removed one comes back."""
        snapshot = self.backup()
        os.makedirs(os.path.join(self.account.path, "files", "docs"))
        with open(os.path.join(self.account.path, "files", "index.html"), "wb") as f:
            f.write(b"<p>newer</p>")
        counts = self.restore(snapshot)
        self.assertEqual(counts["files"], 0)
        with open(os.path.join(self.account.path, "files", "index.html"), "rb") as f:
            self.assertEqual(f.read(), b"<p>newer</p>")


class CtlBackupTests(CtlMixin, unittest.TestCase):
    def setUp(self):
        CtlMixin.setUp(self)
        self.ok("domain", "add", "example.test")
        self.ok("domain", "add", "b.test")
        self.ok("account", "add", ADDRESS, "--password", PASSWORD)
        self.ok("account", "add", "boss@b.test", "--password", PASSWORD)
        self.dest = os.path.join(self.base, "backups")
        directory = self.directory()
        realm = GatewayRealm(directory, mailStoreFactory=lambda path, quota: MailStore(
            path, quota=quota, reactor=Clock(), useInotify=False))
        self.addCleanup(realm.access.sharedIndex.close)
        self.account = realm.accountFor(ADDRESS)  # held: its store closes when it goes
        self.store = self.account.mailStore
        self.store.getMailbox("INBOX").appendMessage(message(1), ["\\Seen"], when(1))

    def test_backupAndRestore(self):
        """gatewayctl backup ACCOUNT DEST, then restore DEST ACCOUNT brings a lost message back."""
        out = self.ok("backup", ADDRESS, self.dest)
        self.assertIn("full backup", out)
        self.assertIn("1 messages taken", out)
        inbox = self.store.getMailbox("INBOX")
        inbox.setFlags([1], ["\\Deleted"], "+")
        inbox.expunge()
        out = self.ok("restore", self.dest, ADDRESS)
        self.assertIn("1 messages restored", out)
        self.assertEqual(len(inbox.uids()), 1)
        self.assertEqual(inbox.messages(inbox.uids())[0].flags, {"\\Seen"})

    def test_removedAccountKeepsEveryPasswordForm(self):
        """An account removed with gatewayctl comes back with every stored password form (several lines)."""
        password = self.directory().getAccount(ADDRESS).password
        self.assertGreater(len(password.splitlines()), 1)
        self.ok("backup", ADDRESS, self.dest)
        self.store.close()
        self.ok("account", "remove", ADDRESS, "--yes")
        self.assertIn("1 messages restored", self.ok("restore", self.dest, ADDRESS))
        self.assertEqual(self.directory().getAccount(ADDRESS).password, password)

    def test_tar(self):
        """backup --tar writes one tar file (no folder) that restore reads; --tar with --incremental is refused."""
        out = self.ok("backup", "--tar", ADDRESS, self.dest)
        [name] = os.listdir(self.dest)
        self.assertTrue(name.endswith(".tar"), name)
        self.assertIn(name, out)
        with tarfile.open(os.path.join(self.dest, name)) as archive:
            self.assertIn(name[:-4] + "/" + MANIFEST, archive.getnames())
        inbox = self.store.getMailbox("INBOX")
        inbox.setFlags([1], ["\\Deleted"], "+")
        inbox.expunge()
        self.assertIn("1 messages restored", self.ok("restore", os.path.join(self.dest, name), ADDRESS))
        self.assertEqual(os.listdir(self.dest), [name])  # what was unpacked is gone
        self.assertEqual(inbox.messages(inbox.uids())[0].flags, {"\\Seen"})
        self.assertIn("--tar", self.fails(ctl.EX_USAGE, "backup", "--tar", "--incremental", ADDRESS, self.dest))

    def test_scopes(self):
        """--all takes every account and domain, DOMAIN its accounts, --incremental links to the last."""
        self.ok("backup", "--all", self.dest)
        manifest = readManifest(findSnapshot(self.dest))
        self.assertEqual(sorted(manifest["accounts"]),
                         sorted(record.address for record in self.directory().accounts()))
        self.assertIn("boss@b.test", manifest["accounts"])
        self.assertEqual(manifest["domains"], ["b.test", "example.test"])
        out = self.ok("backup", "--incremental", "b.test", self.dest)
        self.assertIn("incremental backup", out)
        with open(os.path.join(findSnapshot(self.dest), MANIFEST)) as f:
            self.assertEqual(sorted(json.load(f)["accounts"]), ["boss@b.test", "public@b.test"])

    def test_errors(self):
        """Unknown names, no scope, and a SRC without a backup fail with a message and no traceback."""
        self.assertIn("no such account", self.fails(ctl.EX_NOUSER, "backup", "x@example.test", self.dest))
        self.assertIn("no such domain", self.fails(ctl.EX_DATAERR, "backup", "nope.test", self.dest))
        self.assertIn("--all", self.fails(ctl.EX_USAGE, "backup", self.dest))
        self.assertIn("no backup in", self.fails(ctl.EX_DATAERR, "restore", self.dest, ADDRESS))
        self.assertIn("--mailbox", self.fails(ctl.EX_USAGE, "restore", self.dest, ADDRESS, "--message", "1"))
