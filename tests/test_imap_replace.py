# -*- test-case-name: tests.test_imap_replace -*-
"""
Tests for REPLACE and UID REPLACE (RFC 8508; L{gateway.imap.commands_replace}
over L{gateway.store.replace}): the answers of the RFC's example, the
errors, rights (RFC 4314), quota, CATENATE and BINARY literals, QRESYNC,
what docs/xmapi.md R-OID-2 and R-PROP-2 say of ids and stored properties,
and all-or-nothing across a crash (a child process SIGKILLed at each
phase).
"""

import os
import re
import signal
import subprocess
import sys

from twisted.trial import unittest

from gateway.errors import StoreError
from gateway.store import journal, scan
from tests.test_imap_acl import Peer
from tests.test_imap_mailbox import append
from tests.test_imap_selected import SelectedTestMixin
from tests.test_store_mail import StoreTestMixin

OLD = b"From: Ann <ann@example.com>\r\nSubject: Draft\r\nMessage-ID: <d1@example.com>\r\n\r\nFirst try.\r\n"
NEW = b"From: Ann <ann@example.com>\r\nSubject: Draft\r\nMessage-ID: <d1@example.com>\r\n\r\nSecond try!\r\n"
OTHER = b"From: Bob <bob@example.com>\r\nSubject: Other\r\n\r\nStays.\r\n"
KEYWORDS = b'"PS_PUBLIC_STRINGS/name=Keywords/0x101F"'
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def literal(message):
    """
    A message as the last argument of a command, with the CRLF that ends it.
    """
    return b"{%d+}\r\n%s\r\n" % (len(message), message)


class ReplaceMixin(SelectedTestMixin):
    def selectMessages(self, *messages, mailbox=b"INBOX", **kwargs):
        self.login(**kwargs)
        for message in messages:
            append(self, mailbox=mailbox, message=message)
        out = self.send(b"s SELECT " + mailbox)
        self.assertIn(b"s OK", out)
        self.mailbox = self.session.view.mailbox

    def bodies(self, mailbox=None):
        mailbox = mailbox or self.mailbox
        result = []
        for uid in mailbox.uids():
            f = mailbox.openMessage(uid)
            try:
                result.append(f.read())
            finally:
                f.close()
        return result


class ReplaceTests(ReplaceMixin, unittest.TestCase):
    def test_capability(self):
        """REPLACE is announced."""
        self.login()
        self.assertIn(b" REPLACE", self.send(b"c CAPABILITY"))

    def test_rfcExample(self):
        """RFC 8508 3.3's example: APPENDUID, EXPUNGE and EXISTS, then OK; the new message has the flags given."""
        self.selectMessages(OTHER, OLD, mailbox=b"Drafts")
        validity = self.mailbox.uidValidity
        out = self.send(b"a REPLACE 2 Drafts (\\Seen \\Draft) " + literal(NEW))
        # The RFC's example sends EXISTS first; any order that keeps the
        # numbers right is IMAP (RFC 3501 7).
        self.assertEqual(out, b"* OK [APPENDUID %d 3] Replacement Message ready\r\n"
                              b"* 2 EXPUNGE\r\n* 2 EXISTS\r\n* 2 RECENT\r\na OK REPLACE completed\r\n" % (validity,))
        self.assertEqual(self.mailbox.uids(), [1, 3])
        self.assertEqual(self.bodies(), [OTHER, NEW])
        self.assertEqual(self.mailbox.messages([3])[0].flags, {"\\Seen", "\\Draft"})
        self.assertIn(b"* 2 FETCH (UID 3 FLAGS (\\Seen \\Draft \\Recent))", self.send(b"f FETCH 2 FLAGS"))

    def test_uidReplaceOtherMailbox(self):
        """UID REPLACE into another mailbox: APPENDUID names the target's UIDVALIDITY; the old message is expunged."""
        self.selectMessages(OTHER, OLD)
        drafts = self.session.account.mailStore.getMailbox("Drafts")
        out = self.send(b'a UID REPLACE 2 Drafts "05-Dec-2026 10:00:00 +0000" ' + literal(NEW))
        self.assertIn(b"* OK [APPENDUID %d 1] Replacement Message ready\r\n" % (drafts.uidValidity,), out)
        self.assertIn(b"* 2 EXPUNGE\r\n", out)
        self.assertNotIn(b"EXISTS", out)
        self.assertIn(b"a OK REPLACE completed", out)
        self.assertEqual(self.bodies(), [OTHER])
        self.assertEqual(self.bodies(drafts), [NEW])
        self.assertEqual(drafts.messages([1])[0].internalDate.isoformat(), "2026-12-05T10:00:00+00:00")

    def test_errorsChangeNothing(self):
        """A bad number is BAD, an unknown UID or a missing target NO ([TRYCREATE]), EXAMINE NO [READ-ONLY]; nothing changes."""
        self.selectMessages(OLD)
        self.assertIn(b"a BAD", self.send(b"a REPLACE 2 INBOX " + literal(NEW)))
        self.assertIn(b"b BAD", self.send(b"b REPLACE 0 INBOX " + literal(NEW)))
        self.assertIn(b"c NO", self.send(b"c UID REPLACE 7 INBOX " + literal(NEW)))
        self.assertIn(b"d NO [TRYCREATE]", self.send(b"d REPLACE 1 Nowhere " + literal(NEW)))
        self.assertIn(b"e BAD", self.send(b"e REPLACE 1 INBOX (\\Bogus) " + literal(NEW)))
        self.assertIn(b"x OK", self.send(b"x EXAMINE INBOX"))
        self.assertIn(b"f NO [READ-ONLY]", self.send(b"f REPLACE 1 INBOX " + literal(NEW)))
        self.assertEqual(self.bodies(), [OLD])
        self.assertEqual(os.listdir(os.path.join(self.mailbox._path(), "tmp")), [])

    def test_notSelected(self):
        """REPLACE needs a selected mailbox."""
        self.login()
        self.assertIn(b"a BAD", self.send(b"a REPLACE 1 INBOX " + literal(NEW)))

    def test_star(self):
        """REPLACE * names the last message."""
        self.selectMessages(OTHER, OLD)
        self.assertIn(b"a OK", self.send(b"a REPLACE * INBOX " + literal(NEW)))
        self.assertEqual(self.bodies(), [OTHER, NEW])

    def test_catenate(self):
        """REPLACE takes CATENATE (RFC 4469) as APPEND does: the new message may be built from the old one."""
        self.selectMessages(OLD)
        out = self.send(b'a REPLACE 1 INBOX CATENATE (URL "/INBOX;UIDVALIDITY=%d/;UID=1/;SECTION=HEADER" TEXT {11+}\r\n'
                        b"Third try\r\n)\r\n" % (self.mailbox.uidValidity,))
        self.assertIn(b"a OK REPLACE completed", out)
        [body] = self.bodies()
        self.assertTrue(body.endswith(b"\r\n\r\nThird try\r\n"), body)
        self.assertIn(b"Subject: Draft", body)

    def test_binaryLiteral(self):
        """REPLACE takes a literal8 (RFC 3516) as APPEND does."""
        self.selectMessages(OLD)
        self.assertIn(b"a OK", self.send(b"a REPLACE 1 INBOX ~" + literal(NEW)))
        self.assertEqual(self.bodies(), [NEW])

    def test_largeLiteral(self):
        """A message past the line limit is taken by REPLACE and UID REPLACE (the APPEND limit applies, and its file spool), not by other commands."""
        self.selectMessages(OLD)
        big = NEW + b"x" * 200000 + b"\r\n"
        self.assertIn(b"a OK", self.send(b"a REPLACE 1 INBOX " + literal(big)))
        self.assertEqual(self.bodies(), [big])
        bigger = big + b"y" * 1000 + b"\r\n"
        self.assertIn(b"b OK", self.send(b"b UID REPLACE 2 INBOX " + literal(bigger)))
        self.assertEqual(self.bodies(), [bigger])
        self.assertIn(b"c NO Literal too large", self.send(b"c NOOP " + literal(big)))

    def test_qresync(self):
        """With QRESYNC enabled the old message is reported by VANISHED."""
        self.selectMessages(OLD)
        self.send(b"e ENABLE QRESYNC")
        out = self.send(b"a REPLACE 1 INBOX " + literal(NEW))
        self.assertIn(b"* VANISHED 1\r\n", out)
        self.assertNotIn(b"EXPUNGE", out)

    def test_otherSessionSees(self):
        """Another session with the mailbox selected learns of the new message and the expunge."""
        self.selectMessages(OLD)
        other = Peer(self, b"demo")
        other.send(b"o SELECT INBOX")
        self.send(b"a REPLACE 1 INBOX " + literal(NEW))
        self.clock.advance(0)
        out = other.send(b"n NOOP")
        self.assertIn(b"* 1 EXPUNGE", out)
        self.assertIn(b"EXISTS", out)

    def test_R_OID_2(self):
        """R-OID-2: the new message has a new UID and a new EMAILID; its THREADID is its conversation's."""
        self.selectMessages(OLD)
        before = self.send(b"f FETCH 1 (EMAILID THREADID)")
        self.send(b"a REPLACE 1 INBOX " + literal(NEW))
        after = self.send(b"g FETCH 1 (EMAILID THREADID)")
        self.assertIn(b"UID 2", after)
        emailId = re.compile(rb"EMAILID \((\S+)\)")
        threadId = re.compile(rb"THREADID \((\S+)\)")
        self.assertNotEqual(emailId.search(before).group(1), emailId.search(after).group(1))
        self.assertEqual(threadId.search(before).group(1), threadId.search(after).group(1))

    def test_R_PROP_2(self):
        """R-OID-2, R-PROP-2: the stored properties of the replaced message are the new message's (also in another mailbox)."""
        self.selectMessages(OLD)
        self.assertIn(b"x OK", self.send(b"x STORE 1 XPROPS.SILENT (" + KEYWORDS + b' ("Blue"))'))
        self.send(b"a REPLACE 1 INBOX " + literal(NEW))
        self.assertIn(b'XPROPS (PS_PUBLIC_STRINGS/name=Keywords/0x101F ("Blue"))',
                      self.send(b"b FETCH 1 (XPROPS (" + KEYWORDS + b"))"))
        self.send(b"c REPLACE 1 Drafts " + literal(OLD))
        self.send(b"s SELECT Drafts")
        self.assertIn(b'("Blue")', self.send(b"d FETCH 1 (XPROPS (" + KEYWORDS + b"))"))
        conn = self.mailbox._conn
        self.assertEqual(conn.execute("SELECT count(*) FROM msgprops").fetchone()[0], 1)

    def test_quota(self):
        """At a full quota a message replaced by one as large is taken (the old one's octets are freed); a larger one is OVERQUOTA and nothing changes."""
        self.selectMessages(OLD, quota=len(OLD) + 4)
        self.assertIn(b"a OK", self.send(b"a REPLACE 1 INBOX " + literal(OLD.replace(b"First", b"Fifth"))))
        out = self.send(b"b REPLACE 1 INBOX " + literal(OLD + b"0123456789\r\n"))
        self.assertIn(b"b NO [OVERQUOTA]", out)
        self.assertEqual(self.bodies(), [OLD.replace(b"First", b"Fifth")])
        self.assertEqual(os.listdir(os.path.join(self.mailbox._path(), "tmp")), [])

    def test_failureInTransaction(self):
        """A failure inside the transaction changes nothing: the old message, its file and its properties stay."""
        self.selectMessages(OLD)
        self.send(b"x STORE 1 XPROPS.SILENT (" + KEYWORDS + b' ("Blue"))')
        from gateway.store import properties

        def broken(*args):
            raise StoreError("cannot carry")
        self.patch(properties, "carry", broken)
        out = self.send(b"a REPLACE 1 INBOX " + literal(NEW))
        self.assertIn(b"a NO [SERVERBUG] cannot carry", out)
        self.assertNotIn(b"EXPUNGE", out)
        self.assertEqual(self.mailbox.uids(), [1])
        self.assertEqual(self.bodies(), [OLD])
        self.assertEqual(len(os.listdir(os.path.join(self.mailbox._path(), "cur")))
                         + len(os.listdir(os.path.join(self.mailbox._path(), "new"))), 1)
        self.assertEqual(os.listdir(os.path.join(self.mailbox._path(), "tmp")), [])
        self.assertEqual(self.mailbox.uidNext(), 2)
        self.assertEqual(properties.properties(self.mailbox, [1]), {1: {"PS_PUBLIC_STRINGS/name=Keywords/0x101F":
                                                                        (0x101F, ["Blue"])}})


    def test_oldFileRenamedAsItIsKept(self):
        """The old message's file renamed by another process (a flag change) just before REPLACE links it aside:
        REPLACE looks for it again and succeeds (the two-process stress run's FileNotFoundError)."""
        from gateway.store import replace

        self.selectMessages(OLD)
        original = os.link
        failed = []

        def link(source, target, *args, **kwargs):
            if not failed and target.startswith(os.path.join(self.mailbox._path(), "tmp")):
                failed.append(source)
                raise FileNotFoundError(source)
            return original(source, target, *args, **kwargs)
        self.patch(replace.os, "link", link)
        out = self.send(b"a REPLACE 1 INBOX " + literal(NEW))
        self.assertIn(b"a OK REPLACE completed", out)
        self.assertEqual(len(failed), 1)
        self.assertEqual(self.bodies(), [NEW])
        self.assertEqual(os.listdir(os.path.join(self.mailbox._path(), "tmp")), [])

class SharedReplaceTests(ReplaceMixin, unittest.TestCase):
    """
    RFC 8508 with RFC 4314: REPLACE needs t and e on the source, i on the
    target (docs/xmapi.md section 8).
    """

    def setUp(self):
        self.selectMessages(OLD, mailbox=b"Calendar")
        self.other = Peer(self, b"other")

    def grant(self, rights):
        self.assertIn(b"g OK", self.send(b"g SETACL Calendar other " + rights))

    def test_rights(self):
        """Without t and e on the source, or without i on the target, NO [NOPERM] and nothing changes; with lrites it works."""
        for rights in (b"lri", b"lrte", b"lrie"):
            self.grant(rights)
            self.other.send(b"a SELECT ~demo/Calendar")
            out = self.other.send(b"b REPLACE 1 ~demo/Calendar " + literal(NEW))
            self.assertIn(b"b NO [NOPERM]", out)
            self.assertEqual(self.bodies(), [OLD])
        self.grant(b"lrites")
        self.other.send(b"a SELECT ~demo/Calendar")
        out = self.other.send(b"c REPLACE 1 ~demo/Calendar (\\Seen \\Flagged) " + literal(NEW))
        self.assertIn(b"* 1 EXPUNGE", out)
        self.assertIn(b"c OK REPLACE completed", out)
        self.assertEqual(self.bodies(), [NEW])
        # Without w the \\Flagged is dropped; \\Seen is the viewer's own.
        self.assertEqual(self.mailbox.messages(self.mailbox.uids())[0].flags, frozenset())
        self.assertIn(b"FLAGS (\\Seen", self.other.send(b"d FETCH 1 FLAGS"))

    def test_acrossAccounts(self):
        """A REPLACE from another account's mailbox into the viewer's own adds it there and expunges the original."""
        self.grant(b"lrte")
        self.other.send(b"a SELECT ~demo/Calendar")
        out = self.other.send(b"b REPLACE 1 INBOX " + literal(NEW))
        self.assertIn(b"* OK [APPENDUID", out)
        self.assertIn(b"b OK REPLACE completed", out)
        self.assertEqual(self.bodies(), [])
        self.other.send(b"c SELECT INBOX")
        self.assertIn(b"Second try!", self.other.send(b"d FETCH 1 BODY.PEEK[TEXT]"))


#: The child: open the store, arrange to SIGKILL itself at the K-th call of
#: one os function, say "go", replace INBOX's message 2 (into INBOX or Dest).
CHILD = r"""
import os, signal, sys
from gateway.store.mail import MailStore
from gateway.store.replace import replaceMessage

path, target, point = sys.argv[1:4]
store = MailStore(path)
inbox = store.getMailbox("INBOX")
dest = store.getMailbox(target)
prepared = dest.prepareMessage(b"Subject: new\r\n\r\nnew body\r\n")
name, count = point.split(":")
real = getattr(os, name)
calls = [0]

def dying(*args, **kwargs):
    calls[0] += 1
    if calls[0] == int(count):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
setattr(os, name, dying)
sys.stdout.write("go\n")
sys.stdout.flush()
replaceMessage(inbox, 2, prepared, ["\\Seen"], dest)
sys.stdout.write("done\n")
"""


class CrashTests(StoreTestMixin, unittest.TestCase):
    """
    REPLACE is all or nothing across a crash: a process killed (SIGKILL)
    before its transaction, inside it (unlinking the old file) or after it
    (putting the new file in place) leaves, for the next store on the data
    root, either the old message or the new one, never both or neither,
    and nothing in C{tmp/} or the journal folder.
    """

    def prepare(self):
        store = self.makeStore()
        store.createMailbox("Dest")
        inbox = store.getMailbox("INBOX")
        for n in range(3):
            inbox.appendMessage(b"Subject: old %d\r\n\r\nold body %d\r\n" % (n, n))
        store.close()

    def crash(self, target, point):
        child = subprocess.Popen([sys.executable, "-c", CHILD, self.mailPath, target, point],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=dict(os.environ, PYTHONPATH=ROOT), cwd=ROOT)
        self.addCleanup(lambda: child.poll() is None and child.kill())
        out, err = child.communicate(timeout=60)
        self.assertEqual(child.returncode, -signal.SIGKILL, err)
        self.assertEqual(out, b"go\n")

    def check(self, target):
        """
        @return: whether the replace took effect.
        """
        store = self.makeStore(self.mailPath)
        inbox, dest = store.getMailbox("INBOX"), store.getMailbox(target)
        for box in {inbox, dest}:
            self.assertEqual(os.listdir(os.path.join(box._path(), "tmp")), [])
        journals = os.path.join(self.mailPath, journal.JOURNAL_FOLDER)
        self.assertEqual(os.listdir(journals) if os.path.isdir(journals) else [], [])
        for box in {inbox, dest}:
            store._conn.execute("UPDATE mailboxes SET newmtime = 0, curmtime = 0 WHERE id = ?", (box._id,))
            scan.scanMailbox(store._conn, box._id, box._path())

        def read(box):
            result = []
            for uid in box.uids():
                f = box.openMessage(uid)
                result.append(f.read())
                f.close()
            return result
        done = 2 not in inbox.uids()
        olds = [b"Subject: old %d\r\n\r\nold body %d\r\n" % (n, n) for n in range(3)]
        new = b"Subject: new\r\n\r\nnew body\r\n"
        if done:
            if target == "INBOX":
                self.assertEqual(read(inbox), [olds[0], olds[2], new])
            else:
                self.assertEqual((read(inbox), read(dest)), ([olds[0], olds[2]], [new]))
        else:
            self.assertEqual(read(inbox), olds)
            if target != "INBOX":
                self.assertEqual(read(dest), [])
        for box in {inbox, dest}:
            self.assertEqual(len(self.allFiles(box)), len(box.uids()))
        self.assertEqual(store.usage(), sum(len(b) for b in read(inbox) + (read(dest) if dest is not inbox else [])))
        return done

    def test_killedAtEachPhase(self):
        """Killed staging the new file, writing the journal, unlinking the old file in the transaction, or placing the new file after it: all or nothing."""
        for target in ("INBOX", "Dest"):
            results = []
            for point in ("rename:1", "rename:2", "unlink:1", "rename:3"):
                self.prepare()
                self.crash(target, point)
                results.append(self.check(target))
            self.assertEqual(results, [False, False, False, True], target)
