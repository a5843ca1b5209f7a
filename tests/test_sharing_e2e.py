# -*- test-case-name: tests.test_sharing_e2e -*-
"""
Sharing end to end over loopback with real clients: three accounts in two
domains, imaplib sending the ACL commands, imapclient's getacl/setacl, and
curl reading another account's mailbox.  The table says, for each right,
which command it governs: granted it works, taken away the command gets
C{NO [NOPERM]} (or, for C{STORE}, the flag is dropped).
"""

import imaplib
import os
import subprocess

from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from gateway.cred.passwords import hashPassword
from gateway.ctl_acl import addPublicAccount
from gateway.store import userflags
from tests.support import PASSWORD, LoopbackIMAPMixin, makeTestContext

MESSAGE = b"From: boss@b.test\r\nSubject: shared\r\n\r\nHello\r\n"
BOX = "~boss@b.test/Shared"


class Client:
    """
    An imaplib session that sends commands as written (the ACL commands
    raw) and returns the untagged lines and the tagged one.
    """

    def __init__(self, port, user):
        self.imap = imaplib.IMAP4("127.0.0.1", port)
        self.imap.login(user, PASSWORD)
        self.count = 0

    def run(self, text, literal=None):
        self.count += 1
        tag = b"T%d" % (self.count,)
        line = tag + b" " + text.encode("utf-8")
        if literal is not None:
            line += b" {%d+}\r\n" % (len(literal),) + literal
        self.imap.send(line + b"\r\n")
        untagged = []
        while True:
            response = self.imap.readline()
            if response.startswith(tag + b" "):
                return untagged, response[len(tag) + 1:].rstrip()
            untagged.append(response.rstrip())

    def ok(self, text, literal=None):
        untagged, tagged = self.run(text, literal)
        assert tagged.startswith(b"OK"), (text, tagged)
        return untagged

    def close(self):
        try:
            self.imap.logout()
        except Exception:
            pass


def _selectStore(flag):
    def command(viewer):
        viewer.ok("SELECT " + BOX)
        untagged, tagged = viewer.run("STORE 1 +FLAGS (%s)" % (flag,))
        assert tagged.startswith(b"OK"), tagged
        flags = b" ".join(untagged)
        viewer.ok("UNSELECT")
        return flag.encode() in flags
    return command


def _tagged(text, literal=None, select=False, prepare=None):
    def command(viewer):
        if select:
            viewer.ok("SELECT " + BOX)
        _, tagged = viewer.run(text, literal)
        if select:
            viewer.run("UNSELECT")
        if tagged.startswith(b"OK"):
            return True
        assert tagged.startswith(b"NO [NOPERM]"), (text, tagged)
        return False
    return command


def _listed(viewer):
    untagged = viewer.ok('LIST "" "%s"' % (BOX,))
    return any(BOX.encode() in line for line in untagged)


#: right, the rights the viewer has anyway, the owner's preparation, the
#: command (True: allowed).
TABLE = [
    ("l", "", None, _listed),
    ("r", "l", None, _tagged("STATUS %s (MESSAGES)" % (BOX,))),
    ("r", "l", None, _tagged("EXAMINE %s" % (BOX,))),
    ("s", "lr", "unflag \\Seen", _selectStore("\\Seen")),
    ("w", "lr", "unflag $Work", _selectStore("$Work")),
    ("t", "lr", "unflag \\Deleted", _selectStore("\\Deleted")),
    ("i", "l", None, _tagged("APPEND %s" % (BOX,), b"Subject: x\r\n\r\nx\r\n")),
    ("k", "l", "delete Shared/Child", _tagged("CREATE %s/Child" % (BOX,))),
    ("x", "l", "create Shared/Gone", _tagged("DELETE %s/Gone" % (BOX,))),
    ("e", "lrt", "flag \\Deleted", _tagged("EXPUNGE", select=True)),
    ("a", "l", None, _tagged("GETACL %s" % (BOX,))),
    ("a", "l", None, _tagged("SETACL %s other@example.test l" % (BOX,))),
]


class SharingEndToEndTests(LoopbackIMAPMixin, unittest.TestCase):
    def setUp(self):
        self.context = makeTestContext(self, reactor=reactor, clock=reactor)
        directory = self.context.directory
        directory.addDomain("b.test", cleartextLogin=True)
        directory.addAccount("boss@b.test", hashPassword(PASSWORD, "PLAIN"))
        addPublicAccount(directory, "example.test")
        self.realm = self.context.realm
        self.addCleanup(self.realm.access.sharedIndex.close)
        boss = self.realm.accountFor("boss@b.test")
        boss.mailStore.createMailbox("Shared")
        self.shared = boss.mailStore.getMailbox("Shared")
        self.serveIMAP(self.context)

    def _prepare(self, step):
        """
        The owner's preparation before a phase of a row (done in the store:
        the owner's own client is not what is tested).
        """
        store = self.realm.accountFor("boss@b.test").mailStore
        if not self.shared.uids():
            self.shared.appendMessage(MESSAGE)
        uid = self.shared.uids()[0]
        if step is None:
            return
        verb, _, arg = step.partition(" ")
        if verb == "unflag":
            self.shared.setFlags([uid], [arg], "-")
            userflags.setSeen(self.shared, "demo@example.test", [uid], "-")
        elif verb == "flag":
            self.shared.setFlags([uid], [arg], "+")
        elif verb == "delete":
            if arg in [info.name for info in store.listMailboxes()]:
                store.deleteMailbox(arg)
        elif verb == "create":
            if arg not in [info.name for info in store.listMailboxes()]:
                store.createMailbox(arg)

    def test_rightsTable(self):
        """Each right granted alone allows exactly its commands; taken away they are refused."""
        results = []

        def client():
            owner = Client(self.port, "boss@b.test")
            viewer = Client(self.port, "demo")
            try:
                for right, base, step, command in TABLE:
                    for granted in (True, False):
                        rights = base + right if granted else base
                        owner.ok('SETACL Shared demo@example.test "%s"' % (rights,))
                        self._prepare(step)
                        if right == "x":
                            owner.ok('SETACL Shared/Gone demo@example.test "%s"' % (rights,))
                        results.append((right, granted, command(viewer)))
            finally:
                owner.close()
                viewer.close()
        d = deferToThread(client)

        def check(_):
            wrong = [(right, granted, got) for right, granted, got in results if got != granted]
            self.assertEqual(wrong, [])
            self.assertEqual(len(results), 2 * len(TABLE))
        return d.addCallback(check)

    def test_identifiersCombine(self):
        """authenticated and a negative entry combine (RFC 4314 2); ~public; a hidden box looks missing."""
        public = self.realm.accountFor("public@example.test")
        public.mailStore.createMailbox("news")
        public.access.setACL("news", "anyone", "lr")

        def client():
            owner = Client(self.port, "boss@b.test")
            owner.ok("SETACL Shared authenticated lr")
            owner.ok("SETACL Shared -other@example.test r")
            demo, other = Client(self.port, "demo"), Client(self.port, "other")
            try:
                demo.ok("STATUS %s (MESSAGES)" % (BOX,))
                self.assertEqual(other.run("STATUS %s (MESSAGES)" % (BOX,))[1][:11], b"NO [NOPERM]")
                self.assertIn(b'* MYRIGHTS "~boss@b.test/Shared" l',
                              other.ok("MYRIGHTS %s" % (BOX,)))
                demo.ok("STATUS ~public/news (MESSAGES)")
                self.assertIn(b'* NAMESPACE (("" "/")) (("~" "/")) (("~public/" "/"))', demo.ok("NAMESPACE"))
                owner.ok("DELETEACL Shared authenticated")
                hidden = other.run("SELECT %s" % (BOX,))
                missing = other.run("SELECT ~boss@b.test/Nothing")
                self.assertEqual(hidden, missing)
            finally:
                for c in (owner, demo, other):
                    c.close()
        return deferToThread(client)

    def test_imapclientAndPrivateSeen(self):
        """imapclient setacl/getacl; the viewer's \\Seen leaves the owner's message unseen."""
        import imapclient
        self.shared.appendMessage(MESSAGE)

        def client():
            owner = imapclient.IMAPClient("127.0.0.1", port=self.port, ssl=False)
            owner.login("boss@b.test", PASSWORD)
            owner.setacl("Shared", "demo@example.test", "lrs")
            acl = dict(owner.getacl("Shared"))
            self.assertEqual(acl[b"demo@example.test"], b"lrs")
            viewer = imapclient.IMAPClient("127.0.0.1", port=self.port, ssl=False)
            viewer.login("demo@example.test", PASSWORD)
            self.assertIn(BOX, [f[2] for f in viewer.list_folders("", "~*")])
            viewer.select_folder(BOX)
            viewer.fetch([1], ["BODY[]"])
            self.assertIn(b"\\Seen", viewer.get_flags([1])[1])
            self.assertEqual(owner.folder_status("Shared", ["UNSEEN"])[b"UNSEEN"], 1)
            viewer.logout()
            owner.logout()
        return deferToThread(client)

    def test_curlForeignFetch(self):
        """curl SELECTs and FETCHes a message of a mailbox another account shares."""
        if not os.path.exists("/usr/bin/curl"):
            raise unittest.SkipTest("curl is not installed")
        other = self.realm.accountFor("other@example.test")
        other.mailStore.getMailbox("Notes").appendMessage(MESSAGE)
        other.access.setACL("Notes", "demo", "lr")

        def client():
            result = subprocess.run(
                ["/usr/bin/curl", "-sS", "-u", "demo:" + PASSWORD,
                 "imap://127.0.0.1:%d/~other/Notes;UID=1" % (self.port,)],
                capture_output=True, timeout=20)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stdout, MESSAGE)
            result = subprocess.run(
                ["/usr/bin/curl", "-sS", "-u", "other:" + PASSWORD,
                 "imap://127.0.0.1:%d/~demo/INBOX;UID=1" % (self.port,)],
                capture_output=True, timeout=20)
            self.assertNotEqual(result.returncode, 0)
        return deferToThread(client)

    def test_idleAcrossAccounts(self):
        """An append by the owner reaches the viewer's IDLE session on the shared mailbox."""
        self.realm.accountFor("boss@b.test").access.setACL("Shared", "demo@example.test", "lr")

        def client():
            viewer = Client(self.port, "demo")
            viewer.ok("SELECT " + BOX)
            viewer.imap.send(b"I IDLE\r\n")
            assert viewer.imap.readline().startswith(b"+ ")
            owner = Client(self.port, "boss@b.test")
            owner.ok("APPEND Shared", MESSAGE)
            viewer.imap.sock.settimeout(10)
            self.assertEqual(viewer.imap.readline(), b"* 1 EXISTS\r\n")
            viewer.imap.send(b"DONE\r\n")
            viewer.imap.sock.settimeout(None)
            owner.close()
            viewer.close()
        return deferToThread(client)

    def test_overQuotaNamesNothing(self):
        """COPY into a shared mailbox over its owner's quota: NO [OVERQUOTA] naming no account."""
        self.context.directory.setAccount("boss@b.test", quota=len(MESSAGE) * 3, quotaSetting="100")
        self.realm.accountFor("boss@b.test").access.setACL("Shared", "demo@example.test", "lri")
        demo = self.realm.accountFor("demo@example.test")
        for _ in range(4):
            demo.mailStore.getMailbox("INBOX").appendMessage(MESSAGE)

        def client():
            viewer = Client(self.port, "demo")
            viewer.ok("SELECT INBOX")
            _, tagged = viewer.run("COPY 1:4 " + BOX)
            self.assertEqual(tagged, b"NO [OVERQUOTA] Storage quota exceeded")
            viewer.ok("COPY 1 " + BOX)
            viewer.close()
        return deferToThread(client)
