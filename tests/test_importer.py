# -*- test-case-name: tests.test_importer -*-
"""
Tests for C{gatewayctl import-maildir} (L{gateway.importer}): Dovecot and
Courier Maildir++ trees made by hand, and one written by Dovecot itself.
"""

import os
import shutil
import subprocess
import tempfile

from twisted.internet.task import Clock
from twisted.trial import unittest

from gateway import ctl
from gateway.importer import decodeName, folderName, importMaildir, readSubscriptions
from gateway.store.mail import MailStore
from tests.support import PASSWORD
from tests.test_ctl import CtlMixin

DAY = 1709553600  # 2024-03-04 12:00 UTC


def writeMessage(folder, subdir, name, subject, mtime):
    path = os.path.join(folder, subdir, name)
    with open(path, "wb") as f:
        f.write(b"From: a@example.org\nSubject: %s\n\nbody\n" % (subject.encode(),))
    os.utime(path, (mtime, mtime))


def makeFolder(path):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub))


def dovecotTree(root):
    """
    A Dovecot Maildir++ tree: INBOX with a uid list (version 3) and
    keywords, C{.Archive.2024}, C{.Entw&APw-rfe} (Entwürfe) with no uid list,
    and a version 2 C{subscriptions} file.
    """
    makeFolder(root)
    writeMessage(root, "cur", "1000.M1P1.host,S=50:2,S", "one", DAY)
    writeMessage(root, "cur", "1001.M1P1.host,S=50:2,FRab", "two", DAY + 60)
    writeMessage(root, "new", "1002.M1P1.host,S=50", "three", DAY + 120)
    with open(os.path.join(root, "dovecot-uidlist"), "w") as f:
        f.write("3 V1234567 N40 Gabcdef\n7 :1000.M1P1.host,S=50\n9 :1001.M1P1.host,S=50\n"
                "12 :1002.M1P1.host,S=50\n")
    with open(os.path.join(root, "dovecot-keywords"), "w") as f:
        f.write("0 $Important\n1 Work\n")
    archive = os.path.join(root, ".Archive.2024")
    makeFolder(archive)
    writeMessage(archive, "cur", "2000.M1P1.host:2,S", "old", DAY - 86400 * 365)
    drafts = os.path.join(root, ".Entw&APw-rfe")
    makeFolder(drafts)
    writeMessage(drafts, "cur", "3000.M1P1.host:2,D", "draft", DAY)
    with open(os.path.join(root, "subscriptions"), "w") as f:
        f.write("V\t2\n\nArchive\t2024\nEntw&APw-rfe\nINBOX\n")


def flagsOf(mailbox):
    """
    C{{uid: (subject, flags, internal date as POSIX time)}}.
    """
    result = {}
    for info in mailbox.messages(mailbox.uids()):
        subject = [line for line in info.headers.split(b"\r\n") if line.startswith(b"Subject:")][0][9:]
        result[info.uid] = (subject.decode(), set(info.flags), int(info.internalDate.timestamp()))
    return result


class NameTests(unittest.TestCase):
    def test_names(self):
        """Maildir++ folder names become mailbox names: dots nest, modified UTF-7 is decoded."""
        self.assertEqual(folderName(".Archive.2024"), "Archive/2024")
        self.assertEqual(folderName(".Entw&APw-rfe"), "Entwürfe")
        self.assertEqual(folderName(".INBOX.Sent"), "Sent")
        self.assertEqual(decodeName("bad&-x&"), "bad&-x&")

    def test_subscriptions(self):
        """Dovecot's version 1 and 2 subscriptions and Courier's courierimapsubscribed are read."""
        root = self.mktemp()
        os.makedirs(root)
        with open(os.path.join(root, "subscriptions"), "w") as f:
            f.write("Archive.2024\nEntw&APw-rfe\n")
        with open(os.path.join(root, "courierimapsubscribed"), "w") as f:
            f.write("INBOX.Sent\nINBOX\n")
        self.assertEqual(readSubscriptions(root), ["Archive/2024", "Entwürfe", "Sent", "INBOX"])


class ImportTests(unittest.TestCase):
    def setUp(self):
        self.src = os.path.abspath(self.mktemp())
        dovecotTree(self.src)
        self.store = MailStore(self.mktemp(), reactor=Clock(), useInotify=False)
        self.addCleanup(self.store.close)

    def test_freshAccount(self):
        """Into new or unused mailboxes: UIDVALIDITY, UIDs, flags, keywords, dates and subscriptions kept."""
        report = importMaildir(self.src, self.store)
        self.assertEqual(report.skipped, [])
        inbox = self.store.getMailbox("INBOX")
        self.assertEqual((inbox.uidValidity, inbox.uidNext()), (1234567, 40))
        self.assertEqual(flagsOf(inbox), {
            7: ("one", {"\\Seen"}, DAY),
            9: ("two", {"\\Flagged", "\\Answered", "$Important", "Work"}, DAY + 60),
            12: ("three", set(), DAY + 120),
        })
        self.assertEqual(list(flagsOf(self.store.getMailbox("Archive/2024")).values()),
                         [("old", {"\\Seen"}, DAY - 86400 * 365)])
        self.assertEqual(list(flagsOf(self.store.getMailbox("Entwürfe")).values()), [("draft", {"\\Draft"}, DAY)])
        listed = {info.name: info.selectable for info in self.store.listMailboxes()}
        self.assertFalse(listed["Archive"])  # a folder, as in the source
        self.assertTrue({"Archive/2024", "Entwürfe", "INBOX"} <= set(self.store.subscriptions()))
        # The source is untouched.
        self.assertTrue(os.path.exists(os.path.join(self.src, "new", "1002.M1P1.host,S=50")))

    def test_againAddsNothing(self):
        """Importing the same tree twice adds nothing the second time."""
        importMaildir(self.src, self.store)
        report = importMaildir(self.src, self.store)
        self.assertEqual(sum(entry[1] for entry in report.mailboxes), 0)
        self.assertEqual(len(self.store.getMailbox("INBOX").uids()), 3)

    def test_intoUsedMailbox(self):
        """Into a mailbox with mail: appended with new UIDs, flags and dates kept, what was there stays."""
        inbox = self.store.getMailbox("INBOX")
        inbox.appendMessage(b"Subject: mine\r\n\r\nx\r\n")
        uidValidity = inbox.uidValidity
        report = importMaildir(self.src, self.store)
        self.assertIn(("INBOX", 3, "appended, new UIDs"), report.mailboxes)
        self.assertEqual(inbox.uidValidity, uidValidity)
        got = flagsOf(inbox)
        self.assertEqual(sorted(got), [1, 2, 3, 4])
        self.assertEqual(got[3], ("two", {"\\Flagged", "\\Answered", "$Important", "Work"}, DAY + 60))

    def test_courier(self):
        """A Courier tree: courierimapuiddb gives UIDs, .INBOX.x names and courierimapsubscribed are read."""
        root = os.path.abspath(self.mktemp())
        makeFolder(root)
        writeMessage(root, "cur", "1.host:2,S", "c1", DAY)
        with open(os.path.join(root, "courierimapuiddb"), "w") as f:
            f.write("1 99 6\n5 1.host\n")
        sent = os.path.join(root, ".INBOX.Sent Items")
        makeFolder(sent)
        writeMessage(sent, "cur", "2.host:2,S", "c2", DAY)
        with open(os.path.join(root, "courierimapsubscribed"), "w") as f:
            f.write("INBOX.Sent Items\n")
        importMaildir(root, self.store)
        inbox = self.store.getMailbox("INBOX")
        self.assertEqual((inbox.uidValidity, inbox.uids()), (99, [5]))
        self.assertEqual(len(self.store.getMailbox("Sent Items").uids()), 1)
        self.assertIn("Sent Items", self.store.subscriptions())

    def test_badNames(self):
        """A folder whose name is not valid here is skipped and reported; the rest is imported."""
        makeFolder(os.path.join(self.src, ".x.cur"))
        report = importMaildir(self.src, self.store)
        self.assertEqual([os.path.basename(path) for path, _ in report.skipped], [".x.cur"])
        self.assertEqual(len(self.store.getMailbox("INBOX").uids()), 3)


class CtlImportTests(CtlMixin, unittest.TestCase):
    def setUp(self):
        CtlMixin.setUp(self)
        self.ok("domain", "add", "example.test")
        self.ok("account", "add", "demo@example.test", "--password", PASSWORD)

    def test_command(self):
        """gatewayctl import-maildir SRC ACCOUNT imports and reports each mailbox."""
        src = os.path.join(self.base, "Maildir")
        dovecotTree(src)
        out = self.ok("import-maildir", src, "demo@example.test")
        self.assertIn("INBOX: 3 messages (UIDs kept)", out)
        self.assertIn("3 mailboxes, 5 messages, 3 subscriptions", out)
        self.assertIn("no such account", self.fails(ctl.EX_NOUSER, "import-maildir", src, "x@example.test"))
        makeFolder(os.path.join(src, ".x.cur"))
        code, out, err = self.ctl("import-maildir", src, "demo@example.test")
        self.assertEqual(code, 1, err)
        self.assertIn("skipped %s: " % (os.path.join(src, ".x.cur"),), out)
        self.assertIn("holds no Maildir", self.fails(ctl.EX_DATAERR, "import-maildir", self.base, "demo@example.test"))


DOVECOT_CONF = "mail_location = maildir:{root}\n"


class DovecotTreeTests(unittest.TestCase):
    """
    A tree written by the Debian Dovecot itself (doveadm), imported.
    """

    def setUp(self):
        self.binary = shutil.which("doveadm") or (
            "/usr/bin/doveadm" if os.path.exists("/usr/bin/doveadm") else None)
        if self.binary is None:
            raise unittest.SkipTest("doveadm (Debian dovecot-core, installed by make tools) is not installed")

    def doveadm(self, base, *argv, stdin=None):
        # Dovecot refuses mail access as root: it runs as nobody, outside
        # the test folder (whose parents are private).
        result = subprocess.run(
            [self.binary, "-c", os.path.join(base, "dovecot.conf"), "-o", "base_dir=" + base,
             "-o", "log_path=/dev/stderr", "-o", "state_dir=" + base, "-o", "mail_uid=%d" % (os.getuid() or 65534),
             "-o", "mail_gid=%d" % (os.getgid() or 65534)] + list(argv),
            input=stdin, capture_output=True, env=dict(os.environ, HOME=base, USER="nobody"))
        if result.returncode != 0 and b"Unknown setting" in result.stderr:
            raise unittest.SkipTest("this doveadm needs another configuration: %r" % (result.stderr[:200],))
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def test_doveadmTree(self):
        """Mailboxes, modified UTF-7 names, UIDs, flags, keywords and subscriptions written by doveadm come over."""
        base = tempfile.mkdtemp(prefix="gateway-dovecot-")
        self.addCleanup(shutil.rmtree, base, True)
        os.chmod(base, 0o777)
        root = os.path.join(base, "Maildir")
        with open(os.path.join(base, "dovecot.conf"), "w") as f:
            f.write(DOVECOT_CONF.format(root=root))
        self.doveadm(base, "mailbox", "create", "Archive.2024", "Entwürfe")
        self.doveadm(base, "mailbox", "subscribe", "Archive.2024", "Entwürfe", "INBOX")
        for number, mailbox in ((1, "INBOX"), (2, "INBOX"), (3, "INBOX"), (4, "Archive.2024"), (5, "Entwürfe")):
            self.doveadm(base, "save", "-m", mailbox,
                         stdin=b"From: a@example.org\nSubject: m%d\n\nbody %d\n" % (number, number))
        self.doveadm(base, "flags", "add", "\\Seen $Important", "mailbox", "INBOX", "uid", "1")
        self.doveadm(base, "flags", "add", "\\Flagged Work", "mailbox", "INBOX", "uid", "3")
        self.doveadm(base, "expunge", "mailbox", "INBOX", "uid", "2")
        status = self.doveadm(base, "-f", "flow", "mailbox", "status", "uidvalidity", "INBOX").decode()
        uidValidity = int(status.split("uidvalidity=")[1].split()[0])
        store = MailStore(self.mktemp(), reactor=Clock(), useInotify=False)
        self.addCleanup(store.close)
        report = importMaildir(root, store)
        self.assertEqual(report.skipped, [])
        inbox = store.getMailbox("INBOX")
        self.assertEqual(inbox.uidValidity, uidValidity)
        got = {uid: (subject, flags) for uid, (subject, flags, _) in flagsOf(inbox).items()}
        self.assertEqual(got, {1: ("m1", {"\\Seen", "$Important"}), 3: ("m3", {"\\Flagged", "Work"})})
        self.assertEqual([v[0] for v in flagsOf(store.getMailbox("Archive/2024")).values()], ["m4"])
        self.assertEqual([v[0] for v in flagsOf(store.getMailbox("Entwürfe")).values()], ["m5"])
        self.assertTrue({"Archive/2024", "Entwürfe", "INBOX"} <= set(store.subscriptions()))
