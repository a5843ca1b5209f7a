# -*- test-case-name: tests.test_imap_urlauth -*-
"""
URLAUTH (RFC 4467): GENURLAUTH, URLFETCH and RESETKEY with the INTERNAL
mechanism, access identifiers, expiry, revocation, rights of the URL's
user, CATENATE of another account's part (RFC 4469 5), and imaplib over
loopback.
"""

import datetime
import hashlib
import hmac
import imaplib
import os
import re

from twisted.internet.threads import deferToThread
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from gateway.imap.imapurl import parseImapUrl
from gateway.imap.server import makeFactory
from gateway.interfaces import IURLAuthKeys
from gateway.store.urlauthkeys import FILENAME, URLAuthKeys
from tests.support import PASSWORD, LoopbackIMAPMixin
from tests.test_imap_acl import Peer
from tests.test_imap_protocol import IMAPTestMixin

BODY = b"Si vis pacem, para bellum.\r\n"
MESSAGE = (b"From: joe@example.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
           b"--B\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
           b"--B\r\nContent-Type: multipart/alternative; boundary=C\r\n\r\n"
           b"--C\r\nContent-Type: text/plain\r\n\r\nalt\r\n"
           b"--C\r\nContent-Type: text/plain\r\n\r\n" + BODY + b"\r\n--C--\r\n--B--\r\n")

_GENERATED = re.compile(rb'\* GENURLAUTH ((?:"[^"]*" ?)+)\r\n')


def generated(out):
    """
    The URLs of a C{* GENURLAUTH} response.
    """
    match = _GENERATED.search(out)
    assert match is not None, out
    return [url.decode() for url in re.findall(rb'"([^"]*)"', match.group(1))]


class ParseTests(unittest.TestCase):
    def test_rump(self):
        """A rump URL: user, host, access; no mechanism; the rump is the whole URL."""
        url = "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred"
        parsed = parseImapUrl(url)
        self.assertEqual((parsed.user, parsed.host, parsed.mailbox, parsed.uid, parsed.section),
                         ("joe", "example.com", "INBOX", 20, "1.2"))
        self.assertEqual((parsed.access, parsed.mechanism, parsed.token, parsed.rump),
                         ("submit+fred", None, None, url))

    def test_full(self):
        """A full URL: mechanism upper-cased, token, rump without the verifier, EXPIRE as a UTC datetime."""
        rump = "imap://joe@example.com/INBOX/;uid=20/;section=1.2;expire=2005-07-04T10:15:00Z;urlauth=anonymous"
        parsed = parseImapUrl(rump + ":internal:ae354a473744909de610943775f92038")
        self.assertEqual((parsed.access, parsed.mechanism, parsed.token, parsed.rump),
                         ("anonymous", "INTERNAL", "ae354a473744909de610943775f92038", rump))
        self.assertEqual(parsed.expire, datetime.datetime(2005, 7, 4, 10, 15, tzinfo=datetime.timezone.utc))

    def test_bad(self):
        """Bad access identifiers, short tokens, bad EXPIRE and EXPIRE without URLAUTH are refused."""
        for url in ("imap://joe@h/INBOX/;uid=1;urlauth=nobody",
                    "imap://joe@h/INBOX/;uid=1;urlauth=anonymous:internal:abc",
                    "imap://joe@h/INBOX/;uid=1;expire=tomorrow;urlauth=anonymous",
                    "imap://joe@h/INBOX/;uid=1;expire=2005-07-04T10:15:00Z",
                    "imap://joe@h/INBOX/;uid=1;urlauth=user+"):
            self.assertRaises(ValueError, parseImapUrl, url)


class KeyTests(unittest.TestCase):
    def setUp(self):
        self.keys = URLAuthKeys(self.mktemp())
        os.makedirs(os.path.dirname(self.keys.path))

    def test_interface(self):
        """URLAuthKeys provides IURLAuthKeys."""
        self.assertTrue(verifyObject(IURLAuthKeys, self.keys))

    def test_keys(self):
        """A key is made once per mailbox and stamp, read back by a new object, removed by reset."""
        self.assertIsNone(self.keys.key("INBOX", 7))
        key = self.keys.key("INBOX", 7, create=True)
        self.assertEqual(len(key), 32)
        self.assertEqual(URLAuthKeys(os.path.dirname(self.keys.path)).key("INBOX", 7), key)
        self.assertIsNone(self.keys.key("INBOX", 8))
        self.assertNotEqual(self.keys.key("Entwürfe", 7, create=True), key)
        self.keys.reset("INBOX")
        self.assertIsNone(self.keys.key("INBOX", 7))
        self.assertIsNotNone(self.keys.key("Entwürfe", 7))
        self.keys.reset()
        self.assertIsNone(self.keys.key("Entwürfe", 7))

    def test_damagedFile(self):
        """A damaged key file means no keys (every URL fetches NIL), and the next key is written over it."""
        with open(self.keys.path, "wb") as f:
            f.write(b"\xff{not json")
        self.assertIsNone(self.keys.key("INBOX", 1))
        self.assertIsNotNone(self.keys.key("INBOX", 1, create=True))


class URLAuthTests(IMAPTestMixin, unittest.TestCase):
    def setUp(self):
        self.login()
        self.mailbox = self.session.account.mailStore.getMailbox("INBOX")
        self.mailbox.appendMessage(MESSAGE)
        self.other = Peer(self, b"other")

    def genurlauth(self, *urls, session=None):
        send = session.send if session is not None else self.send
        out = send(b"g GENURLAUTH " + b" ".join(b'"%s" INTERNAL' % (url.encode(),) for url in urls))
        self.assertIn(b"g OK GENURLAUTH completed", out)
        return generated(out)

    def urlfetch(self, url, session=None):
        send = session.send if session is not None else self.send
        out = send(b'f URLFETCH "%s"' % (url.encode(),))
        self.assertIn(b"f OK URLFETCH completed", out)
        return out

    def test_capability(self):
        """URLAUTH is announced after login."""
        self.assertIn(b" URLAUTH", self.send(b"a CAPABILITY").split(b"\r\n")[0])

    def test_urlmechOnSelect(self):
        """SELECT and EXAMINE send an untagged OK [URLMECH INTERNAL] (RFC 4467 4), as Cyrus does."""
        self.assertIn(b"* OK [URLMECH INTERNAL]", self.send(b"s SELECT INBOX"))
        self.assertIn(b"* OK [URLMECH INTERNAL]", self.other.send(b"e EXAMINE INBOX"))

    def test_rfcExamples(self):
        """RFC 4467 9: GENURLAUTH of two rump URLs (submit+fred, anonymous), then URLFETCH of the anonymous one."""
        rumps = ["imap://demo@example.com/INBOX/;uid=1/;section=2.2;urlauth=submit+fred",
                 "imap://demo@example.com/INBOX/;uid=1/;section=2.2;urlauth=anonymous"]
        urls = self.genurlauth(*rumps)
        self.assertEqual(len(urls), 2)
        for rump, url in zip(rumps, urls, strict=True):
            self.assertRegex(url, re.escape(rump) + ":INTERNAL:[0-9a-f]{40}$")
        # The token is HMAC-SHA1 of the rump under the mailbox key (RFC 4467 7).
        key = URLAuthKeys(self.session.account.mailStore.path).key("INBOX", self.mailbox.uidValidity)
        self.assertEqual(urls[1].rpartition(":")[2], hmac.new(key, rumps[1].encode(), hashlib.sha1).hexdigest())
        out = self.urlfetch(urls[1])
        self.assertIn(b'* URLFETCH "%s" {%d}\r\n%s\r\n' % (urls[1].encode(), len(BODY), BODY), out)

    def test_resetKey(self):
        """RFC 4467 examples: RESETKEY removes all keys, RESETKEY INBOX answers [URLMECH INTERNAL]; old URLs fetch NIL."""
        url, = self.genurlauth("imap://demo@example.com/INBOX/;uid=1/;section=1;urlauth=authuser")
        self.assertIn(b"{5}\r\nfirst\r\n", self.urlfetch(url))
        self.assertEqual(self.send(b"a31 RESETKEY"), b"a31 OK All keys removed\r\n")
        self.assertIn(b'"%s" NIL\r\n' % (url.encode(),), self.urlfetch(url))
        url, = self.genurlauth("imap://demo@example.com/INBOX/;uid=1/;section=1;urlauth=authuser")
        self.assertIn(b"{5}\r\nfirst", self.urlfetch(url))
        self.assertIn(b"a32 OK [URLMECH INTERNAL]", self.send(b"a32 RESETKEY INBOX"))
        self.assertIn(b" NIL\r\n", self.urlfetch(url))
        self.assertIn(b"a33 OK [URLMECH INTERNAL]", self.send(b"a33 RESETKEY INBOX internal"))
        self.assertIn(b"a34 NO", self.send(b"a34 RESETKEY INBOX XSAMPLE"))
        self.assertIn(b"a35 NO [NONEXISTENT]", self.send(b"a35 RESETKEY Nowhere"))

    def test_keysSurviveRestart(self):
        """Keys are in the account's store: a new server (a new factory and session) still honours a URL."""
        url, = self.genurlauth("imap://demo@example.com/INBOX/;uid=1;urlauth=anonymous")
        self.assertTrue(self.session.account.mailStore.path)
        factory = makeFactory(self.context)
        self.factory = factory
        peer = Peer(self, b"other")
        self.assertIn(b"{%d}\r\n%s" % (len(MESSAGE), MESSAGE), self.urlfetch(url, peer))

        self.assertTrue(os.path.exists(os.path.join(self.session.account.mailStore.path, FILENAME)))

    def test_accessIdentifiers(self):
        """anonymous and authuser fetch for anyone, user+other only for other, submit+ for no IMAP session."""
        base = "imap://demo@example.com/INBOX/;uid=1/;section=1;urlauth="
        anonymous, authuser, userOther, userDemo, submit = self.genurlauth(
            base + "anonymous", base + "authuser", base + "user+other", base + "user+demo", base + "submit+other")
        for url in (anonymous, authuser, userOther):
            self.assertIn(b"{5}\r\nfirst", self.urlfetch(url, self.other))
        self.assertIn(b" NIL\r\n", self.urlfetch(userDemo, self.other))
        self.assertIn(b"{5}\r\nfirst", self.urlfetch(userDemo))
        self.assertIn(b" NIL\r\n", self.urlfetch(userOther))
        self.assertIn(b" NIL\r\n", self.urlfetch(submit, self.other))
        self.assertIn(b" NIL\r\n", self.urlfetch(submit))

    def test_invalidIsNil(self):
        """A changed token, user, part, mechanism or a URL without URLAUTH fetches NIL; the command is OK."""
        url, = self.genurlauth("imap://demo@example.com/INBOX/;uid=1/;section=1;urlauth=anonymous")
        token = url.rpartition(":")[2]
        flipped = url[:-1] + ("0" if url[-1] != "0" else "1")
        for bad in (flipped, url.replace("section=1", "section=2"), url.replace("demo@", "other@"),
                    url.replace(":INTERNAL:", ":XSAMPLE:"), url.replace(";urlauth=anonymous:INTERNAL:" + token, ""),
                    "imap://demo@example.com/INBOX/;uid=1;urlauth=anonymous", "garbage"):
            out = self.urlfetch(bad, self.other)
            self.assertIn(b"* URLFETCH ", out)
            self.assertIn(b" NIL\r\n", out)
        out = self.send(b'f URLFETCH "%s" "garbage"' % (url.encode(),))
        self.assertIn(b'* URLFETCH "%s" {5}\r\nfirst "garbage" NIL\r\n' % (url.encode(),), out)

    def test_nonAsciiMailbox(self):
        """A URL names a non-ASCII mailbox in percent-encoded UTF-8 (RFC 5092 3) for GENURLAUTH and URLFETCH."""
        self.assertIn(b"a OK", self.send(b"a CREATE Entw&APw-rfe"))
        self.session.account.mailStore.getMailbox("Entw\xfcrfe").appendMessage(MESSAGE)
        url, = self.genurlauth("imap://demo@example.com/Entw%C3%BCrfe/;uid=1/;section=1;urlauth=anonymous")
        self.assertIn(b"{5}\r\nfirst", self.urlfetch(url, self.other))
        out = self.send(b'b GENURLAUTH "imap://demo@example.com/Entw%26APw-rfe/;uid=1;urlauth=anonymous" INTERNAL')
        self.assertIn(b"b NO [NONEXISTENT]", out)

    def test_recreatedMailbox(self):
        """A mailbox deleted and made again under its name does not honour the old mailbox's URLs."""
        self.assertIn(b"a OK", self.send(b"a CREATE Work"))
        work = self.session.account.mailStore.getMailbox("Work")
        work.appendMessage(MESSAGE)
        url, = self.genurlauth("imap://demo@example.com/Work/;uid=1/;section=1;urlauth=anonymous")
        self.assertIn(b"{5}\r\nfirst", self.urlfetch(url, self.other))
        self.assertIn(b"b OK", self.send(b"b DELETE Work"))
        self.assertIn(b"c OK", self.send(b"c CREATE Work"))
        self.session.account.mailStore.getMailbox("Work").appendMessage(MESSAGE)
        self.assertIn(b" NIL\r\n", self.urlfetch(url, self.other))

    def test_expire(self):
        """A URL with ;EXPIRE= fetches until that instant, then NIL."""
        url, = self.genurlauth("imap://demo@example.com/INBOX/;uid=1/;section=1;expire=2005-07-04T10:15:00Z;"
                               "urlauth=anonymous")
        self.assertIn(b"{5}\r\nfirst", self.urlfetch(url, self.other))
        self.clock.advance(datetime.datetime(2005, 7, 4, 10, 15, tzinfo=datetime.timezone.utc).timestamp())
        self.assertIn(b" NIL\r\n", self.urlfetch(url, self.other))

    def test_hostileUrls(self):
        """Every prefix and one-octet change of a URLFETCH and a GENURLAUTH gets OK, NO or BAD, never SERVERBUG."""
        url, = self.genurlauth("imap://demo@example.com/INBOX;UIDVALIDITY=%d/;uid=1/;section=2.2;"
                               "expire=2030-01-01T00:00:00Z;urlauth=user+other" % (self.mailbox.uidValidity,))
        lines = [b'f URLFETCH "%s"' % (url.encode(),), b'g GENURLAUTH "%s" INTERNAL' % (url.rpartition(":")[0]
                                                                                        .rpartition(":")[0].encode(),)]
        variants = []
        for line in lines:
            variants.extend(line[:n] for n in range(len(line)))
            for i in range(len(line)):
                for octet in (b"%", b";", b"/", b"\xff", b":", b"0"):
                    variants.append(line[:i] + octet + line[i + 1:])
        for variant in variants:
            out = self.other.send(variant)
            self.assertRegex(out, rb"(^|\n)\S+ (OK|NO|BAD) ", variant)
            self.assertNotIn(b"SERVERBUG", out, variant)
        self.assertIn(b"n OK", self.other.send(b"n NOOP"))
        self.assertGreater(len(variants), 1000)

    def test_genurlauthRefusals(self):
        """GENURLAUTH refuses another user's URL, a full URL, no URLAUTH, a missing mailbox, a bad mechanism."""
        for url, mechanism in ((b"imap://other@example.com/INBOX/;uid=1;urlauth=anonymous", b"INTERNAL"),
                               (b"imap://demo@example.com/INBOX/;uid=1;urlauth=anonymous:internal:" + b"0" * 32,
                                b"INTERNAL"),
                               (b"imap://demo@example.com/INBOX/;uid=1", b"INTERNAL"),
                               (b"/INBOX/;uid=1;urlauth=anonymous", b"INTERNAL"),
                               (b"imap://demo@example.com/Nowhere/;uid=1;urlauth=anonymous", b"INTERNAL"),
                               (b"imap://demo@example.com/INBOX;UIDVALIDITY=1/;uid=1;urlauth=anonymous", b"INTERNAL"),
                               (b"imap://demo@example.com/INBOX/;uid=1;urlauth=anonymous", b"XSAMPLE")):
            out = self.send(b'g GENURLAUTH "%s" %s' % (url, mechanism))
            self.assertNotIn(b"* GENURLAUTH", out)
            self.assertIn(b"g NO", out)
        self.assertIn(b"h BAD", self.send(b"h GENURLAUTH"))
        self.assertIn(b"i BAD", self.send(b'i GENURLAUTH "imap://demo@example.com/INBOX/;uid=1;urlauth=anonymous"'))
        self.assertIn(b"j BAD", self.send(b"j URLFETCH"))
        self.assertIn(b"k OK", self.send(b"k NOOP"))

    def test_ownerRightsChecked(self):
        """A URL to a mailbox shared with its maker fetches while the maker has r there, NIL once r is taken away."""
        self.assertIn(b"a OK", self.send(b"a SETACL INBOX other lr"))
        url, = self.genurlauth("imap://other@example.com/~demo/INBOX/;uid=1/;section=1;urlauth=anonymous",
                               session=self.other)
        self.assertIn(b"{5}\r\nfirst", self.urlfetch(url))
        self.assertIn(b"b OK", self.send(b"b SETACL INBOX other l"))
        self.assertIn(b" NIL\r\n", self.urlfetch(url))

    def test_catenateOtherAccount(self):
        """CATENATE takes a URLAUTH URL to another account's message part (RFC 4469 5); a bad one is NO [BADURL]."""
        url, = self.genurlauth("imap://demo@example.com/INBOX/;uid=1/;section=2.2;urlauth=user+other")
        out = self.other.send(b'c APPEND INBOX CATENATE (TEXT {10+}\r\nSubject: x URL "%s")' % (url.encode(),))
        self.assertIn(b"c OK [APPENDUID", out)
        account = self.other.session.account
        inbox = account.mailStore.getMailbox("INBOX")
        with inbox.openMessage(inbox.uids()[-1]) as f:
            self.assertEqual(f.read(), b"Subject: x" + BODY)
        out = self.other.send(b'd APPEND INBOX CATENATE (URL "%s")' % (url[:-1].encode() + b"x",))
        self.assertIn(b"d NO [BADURL", out)
        plain = "/~demo/INBOX/;uid=1/;section=2.2"  # without URLAUTH: the session's own rights
        self.assertIn(b"e NO [BADURL", self.other.send(b'e APPEND INBOX CATENATE (URL "%s")' % (plain.encode(),)))


class CatenateScopeTests(IMAPTestMixin, unittest.TestCase):
    def setUp(self):
        self.login()
        self.session.account.mailStore.getMailbox("INBOX").appendMessage(MESSAGE)
        self.other = Peer(self, b"other")

    def test_userNamesScope(self):
        """Without URLAUTH, imap://demo@host/INBOX/... names demo's INBOX (RFC 5092 3.1), read with the session's rights."""
        url = b"imap://demo@example.com/INBOX/;UID=1/;SECTION=1"
        self.other.session.account.mailStore.getMailbox("INBOX").appendMessage(b"Subject: own\r\n\r\nmine\r\n")
        self.assertIn(b"a NO [BADURL", self.other.send(b'a APPEND Drafts CATENATE (URL "%s")' % (url,)))
        self.assertIn(b"b OK", self.send(b"b SETACL INBOX other lr"))
        self.assertIn(b"c OK [APPENDUID", self.other.send(b'c APPEND Drafts CATENATE (URL "%s")' % (url,)))
        drafts = self.other.session.account.mailStore.getMailbox("Drafts")
        with drafts.openMessage(drafts.uids()[-1]) as f:
            self.assertEqual(f.read(), b"first")
        own = b"imap://other@example.com/INBOX/;UID=1/;SECTION=TEXT"
        self.assertIn(b"d OK [APPENDUID", self.other.send(b'd APPEND Drafts CATENATE (URL "%s")' % (own,)))
        with drafts.openMessage(drafts.uids()[-1]) as f:
            self.assertEqual(f.read(), b"mine\r\n")


class EndToEndTests(LoopbackIMAPMixin, unittest.TestCase):
    def test_imaplib(self):
        """imaplib: demo makes an anonymous URL for a part of its message, other fetches it, RESETKEY revokes it."""
        self.patch(imaplib, "Commands", dict(imaplib.Commands, GENURLAUTH=("AUTH", "SELECTED"),
                                             URLFETCH=("AUTH", "SELECTED"), RESETKEY=("AUTH", "SELECTED")))

        def client():
            demo = imaplib.IMAP4("127.0.0.1", self.port)
            demo.login("demo", PASSWORD)
            self.assertIn("URLAUTH", demo.capabilities)
            demo.append("INBOX", None, None, MESSAGE)
            typ, data = demo._simple_command(
                "GENURLAUTH", '"imap://demo@example.com/INBOX/;uid=1/;section=2.2;urlauth=anonymous"', "INTERNAL")
            self.assertEqual(typ, "OK")
            url = demo._untagged_response(typ, data, "GENURLAUTH")[1][0].strip(b'"').decode()
            other = imaplib.IMAP4("127.0.0.1", self.port)
            other.login("other", PASSWORD)
            typ, data = other._simple_command("URLFETCH", '"%s"' % (url,))
            typ, data = other._untagged_response(typ, data, "URLFETCH")
            self.assertEqual(data[0][1], BODY)
            self.assertEqual(demo._simple_command("RESETKEY")[0], "OK")
            typ, data = other._simple_command("URLFETCH", '"%s"' % (url,))
            typ, data = other._untagged_response(typ, data, "URLFETCH")
            self.assertTrue(data[0].endswith(b" NIL"))
            other.logout()
            demo.logout()
        return deferToThread(client)
