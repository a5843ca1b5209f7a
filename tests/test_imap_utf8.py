# -*- test-case-name: tests.test_imap_utf8 -*-
"""
UTF8=ACCEPT (RFC 6855): the per-session mailbox-name codec, ENABLE, UTF-8
names in both directions, APPEND's C{UTF8 (~{n})}, SEARCH without
CHARSET, 8-bit headers, a UTF-8 user name, and imaplib's UTF-8 mode.
"""

import base64
import imaplib

from twisted.internet.threads import deferToThread
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from gateway.cred.passwords import hashPassword
from gateway.imap.names import MUTF7, UTF8, NotUTF8, codecFor
from gateway.imap.parser import NotModifiedUTF7
from gateway.interfaces import IMailboxNameCodec
from tests.support import PASSWORD, LoopbackIMAPMixin
from tests.test_imap_protocol import IMAPTestMixin, TLSStringTransport

CAFE = "Café".encode("utf-8")
UTF8_MESSAGE = ("From: Jörg <jörg@exämple.test>\r\nTo: demo@example.test\r\n"
                "Subject: Grüße aus Köln\r\n\r\nHallo\r\n").encode("utf-8")


class CodecTests(unittest.TestCase):
    def test_interfaces(self):
        """Both codecs provide IMailboxNameCodec."""
        self.assertTrue(verifyObject(IMailboxNameCodec, MUTF7))
        self.assertTrue(verifyObject(IMailboxNameCodec, UTF8))

    def test_choice(self):
        """UTF8=ACCEPT or IMAP4rev2 enabled selects the UTF-8 codec; anything else modified UTF-7."""
        self.assertIs(codecFor(set()), MUTF7)
        self.assertIs(codecFor({"CONDSTORE"}), MUTF7)
        self.assertIs(codecFor({"UTF8=ACCEPT"}), UTF8)
        self.assertIs(codecFor({"IMAP4REV2", "CONDSTORE"}), UTF8)

    def test_sameMailbox(self):
        """One name reads the same from modified UTF-7 and from UTF-8."""
        self.assertEqual(MUTF7.decode(b"Caf&AOk-"), "Café")
        self.assertEqual(UTF8.decode(CAFE), "Café")
        self.assertEqual(MUTF7.encode("Café"), b'"Caf&AOk-"')
        self.assertEqual(UTF8.encode("Café"), b'"' + CAFE + b'"')

    def test_ampersand(self):
        """In UTF-8 an & is an ordinary character, not a modified UTF-7 shift."""
        self.assertEqual(UTF8.decode(b"Caf&AOk-"), "Caf&AOk-")
        self.assertEqual(MUTF7.encode("Caf&AOk-"), b'"Caf&-AOk-"')
        self.assertEqual(UTF8.encode("A&B"), b'"A&B"')

    def test_inbox(self):
        """INBOX in any case is INBOX in both codecs."""
        self.assertEqual(UTF8.decode(b"iNbOx"), "INBOX")
        self.assertEqual(MUTF7.decode(b"inbox"), "INBOX")

    def test_badUTF8(self):
        """Octets that are not UTF-8, or control characters, name no mailbox (NotUTF8, a NotModifiedUTF7)."""
        self.assertRaises(NotUTF8, UTF8.decode, b"Caf\xe9")
        self.assertRaises(NotModifiedUTF7, UTF8.decode, b"a\xc3")
        self.assertRaises(NotUTF8, UTF8.decode, "a\u0085b".encode("utf-8"))
        self.assertRaises(NotUTF8, UTF8.decode, "a\u2028b".encode("utf-8"))
        self.assertRaises(NotUTF8, UTF8.decode, b"a\x7fb")
        self.assertRaises(NotModifiedUTF7, MUTF7.decode, CAFE)


class UTF8AcceptTests(IMAPTestMixin, unittest.TestCase):
    def enable(self):
        out = self.send(b"e ENABLE UTF8=ACCEPT")
        self.assertIn(b"* ENABLED UTF8=ACCEPT\r\ne OK", out)

    def test_capability(self):
        """UTF8=ACCEPT is announced, and ENABLE turns it on once."""
        self.login()
        self.assertIn(b" UTF8=ACCEPT", self.send(b"c CAPABILITY"))
        self.enable()
        self.assertIn(b"* ENABLED\r\n", self.send(b"e2 ENABLE UTF8=ACCEPT"))

    def other(self):
        """
        A second session of the same server, logged in as demo: a function
        that sends it a command and returns its answer.
        """
        transport = TLSStringTransport()
        session = self.factory.buildProtocol(None)
        session.makeConnection(transport)
        self.addCleanup(lambda: transport.disconnected or session.connectionLost(None))

        def send(data):
            transport.clear()
            session.dataReceived(data + b"\r\n")
            return transport.value()
        self.assertIn(b"L OK", send(b'L LOGIN demo "%s"' % (PASSWORD.encode(),)))
        return send

    def test_createUTF8ListModifiedUTF7Elsewhere(self):
        """A mailbox created with a UTF-8 name is listed in UTF-8 here and in modified UTF-7 to a session that did not enable it."""
        self.login()
        self.enable()
        self.assertIn(b"a OK", self.send(b'a CREATE "' + CAFE + b'/D\xc3\xa9j\xc3\xa0"'))
        out = self.send(b'b LIST "" "Caf*"')
        self.assertIn(b'* LIST (\\HasChildren) "/" "' + CAFE + b'"\r\n', out)
        self.assertIn(b'"/" "' + CAFE + b'/D\xc3\xa9j\xc3\xa0"\r\n', out)
        self.assertNotIn(b"&", out)
        other = self.other()
        out = other(b'b LIST "" "Caf*"')
        self.assertIn(b'"/" "Caf&AOk-"\r\n', out)
        self.assertIn(b'"/" "Caf&AOk-/D&AOk-j&AOA-"\r\n', out)
        self.assertIn(b"c OK [READ-WRITE]", other(b'c SELECT "Caf&AOk-/D&AOk-j&AOA-"'))

    def test_modifiedUTF7NameAfterEnable(self):
        """After ENABLE a modified UTF-7 spelling is a literal name: SELECT of it finds nothing, CREATE makes a name with &."""
        self.login()
        self.assertIn(b"a OK", self.send(b'a CREATE "Caf&AOk-"'))
        self.enable()
        self.assertIn(b"b OK", self.send(b'b SELECT "' + CAFE + b'"'))
        self.assertIn(b"c NO [NONEXISTENT]", self.send(b'c STATUS "Caf&AOk-" (MESSAGES)'))
        self.assertIn(b"d OK", self.send(b'd CREATE "A&B"'))
        self.assertIn(b'"/" "A&B"\r\n', self.send(b'e LIST "" "A*"'))

    def test_statusSelectUTF8(self):
        """SELECT, STATUS and LIST-STATUS take and give UTF-8 names after ENABLE."""
        self.login()
        self.enable()
        self.send(b'a CREATE "' + CAFE + b'"')
        self.assertIn(b"* STATUS \"" + CAFE + b"\" (MESSAGES 0)", self.send(b'b STATUS "' + CAFE + b'" (MESSAGES)'))
        out = self.send(b'c LIST "" "' + CAFE + b'" RETURN (STATUS (UIDNEXT))')
        self.assertIn(b'* STATUS "' + CAFE + b'" (UIDNEXT 1)', out)
        self.assertIn(b"d OK [READ-WRITE]", self.send(b'd SELECT "' + CAFE + b'"'))
        self.assertIn(b"* MYRIGHTS \"" + CAFE + b"\"", self.send(b'e MYRIGHTS "' + CAFE + b'"'))

    def test_badUTF8Name(self):
        """A name that is not UTF-8 after ENABLE is NO (NONEXISTENT or CANNOT), not BAD, and the session goes on."""
        self.login()
        self.enable()
        self.assertIn(b"a NO [NONEXISTENT]", self.send(b'a SELECT "Caf\xe9"'))
        self.assertIn(b"b NO [CANNOT]", self.send(b'b CREATE "Caf\xe9"'))
        self.assertEqual(self.send(b'c LIST "" "Caf\xe9*"'), b"c OK LIST completed\r\n")
        self.assertIn(b"d OK", self.send(b"d NOOP"))

    def test_utf8WithoutEnable(self):
        """Without ENABLE raw UTF-8 is not a modified UTF-7 name: NO [CANNOT], as before."""
        self.login()
        self.assertIn(b"a NO [CANNOT]", self.send(b'a CREATE "' + CAFE + b'"'))

    def test_appendUTF8Literal(self):
        """APPEND with UTF8 (~{n}) stores the message as sent (RFC 6855 4), and BODY[] and ENVELOPE return it as stored."""
        self.login()
        self.enable()
        out = self.send(b"a APPEND INBOX UTF8 (~{%d+}\r\n%s)" % (len(UTF8_MESSAGE), UTF8_MESSAGE))
        self.assertIn(b"a OK [APPENDUID", out)
        self.send(b"b SELECT INBOX")
        out = self.send(b"c FETCH 1 (BODY.PEEK[] ENVELOPE)")
        self.assertIn(UTF8_MESSAGE, out)
        self.assertIn("Grüße aus Köln".encode("utf-8"), out)

    def test_appendUTF8Synchronizing(self):
        """APPEND UTF8 with a synchronizing literal and flags works (a continuation is sent)."""
        self.login()
        self.enable()
        out = self.send(b"a APPEND INBOX (\\Seen) UTF8 (~{%d}" % (len(UTF8_MESSAGE),))
        self.assertEqual(out, b"+ Ready\r\n")
        self.assertIn(b"a OK [APPENDUID", self.send(UTF8_MESSAGE + b")"))

    def test_appendUTF8NotEnabled(self):
        """APPEND UTF8 without ENABLE UTF8=ACCEPT is BAD and nothing is stored."""
        self.login()
        out = self.send(b"a APPEND INBOX UTF8 (~{%d+}\r\n%s)" % (len(UTF8_MESSAGE), UTF8_MESSAGE))
        self.assertIn(b"a BAD", out)
        self.assertIn(b"(MESSAGES 0)", self.send(b"b STATUS INBOX (MESSAGES)"))

    def test_appendUTF8Unclosed(self):
        """APPEND UTF8 without its closing parenthesis is BAD."""
        self.login()
        self.enable()
        self.assertIn(b"a BAD", self.send(b"a APPEND INBOX UTF8 (~{3+}\r\nabc"))
        self.assertIn(b"(MESSAGES 0)", self.send(b"b STATUS INBOX (MESSAGES)"))

    def test_8bitHeadersNotEnabled(self):
        """A message with raw UTF-8 headers is returned as stored to a session that did not enable UTF-8 (not downgraded)."""
        self.login()
        self.assertIn(b"a OK", self.send(b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(UTF8_MESSAGE), UTF8_MESSAGE)))
        self.send(b"b SELECT INBOX")
        out = self.send(b"c FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertIn("Subject: Grüße aus Köln".encode("utf-8"), out)
        # ENVELOPE strings with 8-bit octets are literals, which IMAP4rev1
        # allows (quoted strings are 7-bit there).
        subject = "Grüße aus Köln".encode("utf-8")
        out = self.send(b"d FETCH 1 ENVELOPE")
        self.assertIn(b"{%d}\r\n%s" % (len(subject), subject), out)
        self.assertIn(b"{5}\r\nj\xc3\xb6rg {13}\r\nex\xc3\xa4mple.test", out)

    def test_searchCharsetRefused(self):
        """After ENABLE UTF8=ACCEPT, SEARCH with CHARSET is BAD (RFC 6855 3); without CHARSET UTF-8 text matches."""
        self.login()
        self.assertIn(b"a OK", self.send(b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(UTF8_MESSAGE), UTF8_MESSAGE)))
        self.enable()
        self.send(b"b SELECT INBOX")
        self.assertIn(b"c BAD", self.send(b'c SEARCH CHARSET UTF-8 SUBJECT "K\xc3\xb6ln"'))
        self.assertIn(b"* SEARCH 1\r\nd OK", self.send(b'd SEARCH SUBJECT "K\xc3\xb6ln"'))
        self.assertIn(b"* SEARCH\r\ne OK", self.send(b'e SEARCH SUBJECT "K\xc3\xb6lner"'))

    def test_searchCharsetWithoutEnable(self):
        """Without ENABLE, SEARCH CHARSET UTF-8 is still accepted."""
        self.login()
        self.assertIn(b"a OK", self.send(b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(UTF8_MESSAGE), UTF8_MESSAGE)))
        self.send(b"b SELECT INBOX")
        self.assertIn(b"* SEARCH 1\r\nc OK", self.send(b'c SEARCH CHARSET UTF-8 SUBJECT "K\xc3\xb6ln"'))

    def test_renameAndDeleteUTF8(self):
        """RENAME and DELETE take UTF-8 names after ENABLE."""
        self.login()
        self.enable()
        self.send(b'a CREATE "' + CAFE + b'"')
        self.assertIn(b"b OK", self.send(b'b RENAME "' + CAFE + b'" "Th\xc3\xa9"'))
        self.assertIn(b'"/" "Th\xc3\xa9"', self.send(b'c LIST "" *'))
        self.assertIn(b"d OK", self.send(b'd DELETE "Th\xc3\xa9"'))

    def test_loginUTF8UserName(self):
        """LOGIN of a UTF-8 user name (a quoted UTF-8 string) authenticates that account."""
        self.connect()
        self.context.directory.addAccount("jörg@example.test", hashPassword(PASSWORD, "PLAIN"))
        out = self.send(b'a LOGIN "j\xc3\xb6rg" "%s"' % (PASSWORD.encode(),))
        self.assertIn(b"a OK", out)
        self.assertEqual(self.session.account.address, "jörg@example.test")

    def test_aclUTF8Identifier(self):
        """SETACL for a UTF-8 account name works, and GETACL sends that identifier as a literal (7-bit quoted strings)."""
        self.connect()
        self.context.directory.addAccount("jörg@example.test", hashPassword(PASSWORD, "PLAIN"))
        self.assertIn(b"L OK", self.send(b'L LOGIN demo "%s"' % (PASSWORD.encode(),)))
        self.assertIn(b"a OK", self.send(b'a SETACL Calendar "j\xc3\xb6rg" lr'))
        self.assertIn(b" {18}\r\nj\xc3\xb6rg@example.test lr", self.send(b"b GETACL Calendar"))

    def test_authenticateUTF8UserName(self):
        """AUTHENTICATE PLAIN of a UTF-8 user name authenticates that account."""
        self.connect()
        self.context.directory.addAccount("jörg@example.test", hashPassword(PASSWORD, "PLAIN"))
        token = base64.b64encode(b"\0j\xc3\xb6rg@example.test\0" + PASSWORD.encode())
        self.assertIn(b"a OK", self.send(b"a AUTHENTICATE PLAIN " + token))


class ImaplibUTF8Tests(LoopbackIMAPMixin, unittest.TestCase):
    def test_imaplibUTF8Mode(self):
        """imaplib: ENABLE UTF8=ACCEPT, CREATE/SELECT a UTF-8 name, APPEND (its UTF8 form), SEARCH, FETCH."""
        def client():
            imap = imaplib.IMAP4("127.0.0.1", self.port)
            imap.login("demo", PASSWORD)
            typ, data = imap.enable("UTF8=ACCEPT")
            self.assertEqual(typ, "OK")
            self.assertTrue(imap.utf8_enabled)
            self.assertEqual(imap.create('"Grüße"')[0], "OK")
            typ, data = imap.list('""', '"Gr*"')
            self.assertEqual(data, ['(\\HasNoChildren) "/" "Grüße"'.encode("utf-8")])
            # imaplib's append() in UTF-8 mode puts "UTF8 (" and ")" inside
            # its literal instead of around it (Python 3.11 and later), so
            # the RFC 6855 form is sent by hand.
            tag = imap._new_tag()
            imap.send(tag + b' APPEND "Gr\xc3\xbc\xc3\x9fe" UTF8 (~{%d+}\r\n%s)\r\n'
                      % (len(UTF8_MESSAGE), UTF8_MESSAGE))
            self.assertEqual(imap._command_complete("APPEND", tag)[0], "OK")
            typ, data = imap.select('"Grüße"')
            self.assertEqual((typ, data), ("OK", [b"1"]))
            typ, data = imap.search(None, "SUBJECT", '"Köln"')
            self.assertEqual(data, [b"1"])
            typ, data = imap.fetch("1", "(BODY.PEEK[])")
            self.assertEqual(data[0][1], UTF8_MESSAGE)
            imap.logout()
        return deferToThread(client)
