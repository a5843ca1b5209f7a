# -*- test-case-name: tests.test_imap_acl -*-
"""
IMAP sharing: the ACL commands (RFC 4314), rights enforced on the other
commands with C{NO [NOPERM]}, other users' namespace in LIST/LSUB and
NAMESPACE, RETURN (MYRIGHTS), and live changes between accounts.
"""

from twisted.trial import unittest

from tests.support import PASSWORD
from tests.test_imap_mailbox import MESSAGE, append
from tests.test_imap_protocol import IMAPTestMixin, TLSStringTransport


class Peer:
    """
    A second session on the same factory (another account).
    """

    def __init__(self, test, user):
        self.session = test.factory.buildProtocol(None)
        self.transport = TLSStringTransport()
        self.session.makeConnection(self.transport)
        self.transport.clear()
        out = self.send(b'P LOGIN %s "%s"' % (user, PASSWORD.encode()))
        test.assertIn(b"P OK", out)
        test.addCleanup(self.close)

    def send(self, data):
        if not data.endswith(b"\n"):
            data += b"\r\n"
        self.session.dataReceived(data)
        out = self.transport.value()
        self.transport.clear()
        return out

    def read(self):
        out = self.transport.value()
        self.transport.clear()
        return out

    def close(self):
        if not self.transport.disconnected:
            self.transport.loseConnection()
            self.session.connectionLost(None)


class ACLCommandTests(IMAPTestMixin, unittest.TestCase):
    def setUp(self):
        self.login()
        self.other = Peer(self, b"other")

    def test_capability(self):
        """ACL and RIGHTS=texk are announced."""
        caps = self.send(b"a CAPABILITY").split(b"\r\n")[0].split()
        self.assertIn(b"ACL", caps)
        self.assertIn(b"RIGHTS=texk", caps)

    def test_setGetMyRights(self):
        """SETACL (bare name = own domain), GETACL, MYRIGHTS and LISTRIGHTS on an own mailbox."""
        self.assertIn(b"a OK", self.send(b"a SETACL Calendar other lrs"))
        out = self.send(b"b GETACL Calendar")
        self.assertIn(b'* ACL "Calendar" demo@example.test lrswipkxtea01cd other@example.test lrs', out)
        self.assertIn(b"c OK", self.send(b"c SETACL Calendar other@example.test +wc"))
        self.assertIn(b"other@example.test lrswkc", self.send(b"d GETACL Calendar"))
        self.assertIn(b"e OK", self.send(b"e SETACL Calendar other -wk"))
        self.assertIn(b"other@example.test lrs", self.send(b"f GETACL Calendar"))
        self.assertIn(b'* MYRIGHTS "Calendar" lrswipkxtea01cd', self.send(b"g MYRIGHTS Calendar"))
        out = self.send(b"h LISTRIGHTS Calendar other")
        self.assertIn(b'* LISTRIGHTS "Calendar" other "" l r s w i p k x t e a c d 0 1', out)
        out = self.other.send(b"i MYRIGHTS ~demo/Calendar")
        self.assertIn(b'* MYRIGHTS "~demo/Calendar" lrs', out)
        self.assertIn(b"j OK", self.send(b"j DELETEACL Calendar other"))
        self.assertIn(b"k NO [NONEXISTENT]", self.other.send(b"k MYRIGHTS ~demo/Calendar"))

    def test_badRightsAndOwner(self):
        """An unknown right is BAD; the owner's rights cannot be changed; a foreign GETACL needs a."""
        self.assertIn(b"a BAD", self.send(b"a SETACL Calendar other lrz"))
        self.assertIn(b"b NO [CANNOT]", self.send(b"b SETACL Calendar demo l"))
        self.send(b"c SETACL Calendar other lr")
        self.assertIn(b"d NO [NOPERM]", self.other.send(b"d GETACL ~demo/Calendar"))
        self.assertIn(b"e NO [NOPERM]", self.other.send(b"e SETACL ~demo/Calendar other lra"))
        self.assertIn(b"f NO [NONEXISTENT]", self.send(b"f GETACL Nowhere"))

    def test_invisibleLikeMissing(self):
        """A mailbox shared without l or r answers exactly like one that does not exist."""
        for command in (b"SELECT %s", b"STATUS %s (MESSAGES)", b"GETACL %s", b"MYRIGHTS %s",
                        b"DELETE %s", b"EXAMINE %s"):
            hidden = self.other.send(b"x " + command % (b"~demo/Calendar",))
            missing = self.other.send(b"x " + command % (b"~demo/Nothing",))
            self.assertEqual(hidden, missing)
            self.assertIn(b"x NO [NONEXISTENT]", hidden)
        self.assertEqual(self.other.send(b"y APPEND ~demo/Calendar {1+}\r\nx"),
                         self.other.send(b"y APPEND ~demo/Nothing {1+}\r\nx"))

    def test_namespaceAndList(self):
        """LIST "" "~%" lists the sharing accounts, "~*" the shared mailboxes with l; RETURN (MYRIGHTS)."""
        self.send(b"a SETACL Calendar other lr")
        self.send(b"b SETACL Sent other r")
        out = self.other.send(b'c LIST "" "~%"')
        self.assertIn(b'* LIST (\\Noselect \\HasChildren) "/" "~demo"', out)
        out = self.other.send(b'd LIST "" "~*"')
        self.assertIn(b'"~demo/Calendar"', out)
        self.assertNotIn(b'"~demo/Sent"', out)
        out = self.other.send(b'e LIST "" "~demo/%" RETURN (MYRIGHTS)')
        self.assertIn(b'* LIST (\\HasNoChildren) "/" "~demo/Calendar"\r\n* MYRIGHTS "~demo/Calendar" lr', out)
        out = self.other.send(b'f LIST "" "*"')
        self.assertIn(b'"INBOX"', out)
        self.assertIn(b'"~demo/Calendar"', out)

    def test_subscribeForeign(self):
        """SUBSCRIBE takes a shared name; LSUB and LIST (SUBSCRIBED) show it."""
        self.send(b"a SETACL Calendar other lr")
        self.assertIn(b"b OK", self.other.send(b"b SUBSCRIBE ~demo/Calendar"))
        self.assertIn(b'* LSUB (\\HasNoChildren) "/" "~demo/Calendar"', self.other.send(b'c LSUB "" "*"'))
        out = self.other.send(b'd LIST (SUBSCRIBED) "" "~*"')
        self.assertIn(b'"~demo/Calendar"', out)
        self.assertIn(b"\\Subscribed", out)


class EnforcementTests(IMAPTestMixin, unittest.TestCase):
    """
    Each right governs its commands: granted alone it allows them, missing
    it gives NO [NOPERM] (the mailbox being visible with l).
    """

    def setUp(self):
        self.login()
        append(self, b"Calendar", MESSAGE)
        self.other = Peer(self, b"other")

    def grant(self, rights):
        self.assertIn(b"g OK", self.send(b"g SETACL Calendar other " + rights))

    def test_selectNeedsRead(self):
        """SELECT and STATUS need r; with l alone they are NOPERM."""
        self.grant(b"l")
        self.assertIn(b"a NO [NOPERM]", self.other.send(b"a SELECT ~demo/Calendar"))
        self.assertIn(b"b NO [NOPERM]", self.other.send(b"b STATUS ~demo/Calendar (MESSAGES)"))
        self.grant(b"lr")
        self.assertIn(b"c OK [READ-WRITE]", self.other.send(b"c SELECT ~demo/Calendar"))
        self.assertIn(b"* 1 FETCH", self.other.send(b"d FETCH 1 (FLAGS BODY.PEEK[])"))

    def test_storeDropsFlags(self):
        """STORE sets only the flags the rights allow: s for \\Seen, t for \\Deleted, w for others."""
        self.grant(b"lrs")
        self.other.send(b"a SELECT ~demo/Calendar")
        out = self.other.send(b"b STORE 1 +FLAGS (\\Seen \\Flagged \\Deleted $Work)")
        self.assertIn(b"* 1 FETCH (FLAGS (\\Seen \\Recent))", out)
        self.assertIn(b"b OK", out)
        self.grant(b"lrwt")
        out = self.other.send(b"c STORE 1 FLAGS (\\Flagged \\Deleted)")
        self.assertIn(b"* 1 FETCH (FLAGS (\\Flagged \\Deleted \\Seen \\Recent))", out)

    def test_expungeNeedsE(self):
        """EXPUNGE needs e: NOPERM without it, and the message stays."""
        self.grant(b"lrt")
        self.other.send(b"a SELECT ~demo/Calendar")
        self.other.send(b"b STORE 1 +FLAGS (\\Deleted)")
        self.assertIn(b"c NO [NOPERM]", self.other.send(b"c EXPUNGE"))
        self.assertIn(b"d OK", self.other.send(b"d CLOSE"))
        self.assertIn(b"(MESSAGES 1)", self.send(b"e STATUS Calendar (MESSAGES)"))
        self.grant(b"lrte")
        self.other.send(b"f SELECT ~demo/Calendar")
        out = self.other.send(b"h EXPUNGE")
        self.assertIn(b"* 1 EXPUNGE", out)

    def test_appendAndCopyNeedInsert(self):
        """APPEND and the target of COPY need i."""
        self.grant(b"lr")
        self.assertIn(b"a NO [NOPERM]", self.other.send(b"a APPEND ~demo/Calendar {5+}\r\nHi\r\n\r\n"))
        self.other.send(b"b SELECT INBOX")
        self.assertIn(b"c OK", self.other.send(b"c APPEND INBOX {5+}\r\nHi\r\n\r\n"))
        self.assertIn(b"d NO [NOPERM]", self.other.send(b"d COPY 1 ~demo/Calendar"))
        self.grant(b"lri")
        self.assertIn(b"e OK", self.other.send(b"e APPEND ~demo/Calendar {5+}\r\nHi\r\n\r\n"))
        self.assertIn(b"f OK [COPYUID", self.other.send(b"f COPY 1 ~demo/Calendar"))
        self.assertIn(b"(MESSAGES 3)", self.send(b"g STATUS Calendar (MESSAGES)"))

    def test_moveNeedsExpungeOnSource(self):
        """MOVE out of a shared mailbox needs t and e there (docs/xmapi.md R-DEL-2); COPY needs only r."""
        self.grant(b"lr")
        self.other.send(b"a SELECT ~demo/Calendar")
        self.assertIn(b"b OK [COPYUID", self.other.send(b"b COPY 1 INBOX"))
        self.assertIn(b"c NO [NOPERM]", self.other.send(b"c MOVE 1 INBOX"))
        self.grant(b"lrte")
        out = self.other.send(b"d MOVE 1 INBOX")
        self.assertIn(b"* 1 EXPUNGE", out)
        self.assertIn(b"(MESSAGES 0)", self.send(b"e STATUS Calendar (MESSAGES)"))

    def test_createDeleteRename(self):
        """CREATE of a child needs k on the parent; DELETE and RENAME need x."""
        self.grant(b"lr")
        self.assertIn(b"a NO [NOPERM]", self.other.send(b"a CREATE ~demo/Calendar/Sub"))
        self.grant(b"lrk")
        self.assertIn(b"b OK", self.other.send(b"b CREATE ~demo/Calendar/Sub"))
        self.assertIn(b"c NO [NOPERM]", self.other.send(b"c DELETE ~demo/Calendar/Sub"))
        self.assertIn(b"d OK", self.send(b"d SETACL Calendar/Sub other lrx"))
        self.assertIn(b"e OK", self.other.send(b"e RENAME ~demo/Calendar/Sub ~demo/Calendar/Renamed"))
        self.assertIn(b"f OK", self.other.send(b"f DELETE ~demo/Calendar/Renamed"))
        self.assertNotIn(b"Renamed", self.send(b'g LIST "" "*"'))

    def test_liveChanges(self):
        """A change by the owner reaches the viewer's IDLE session on the shared mailbox."""
        self.grant(b"lr")
        self.other.send(b"a SELECT ~demo/Calendar")
        self.assertIn(b"+ idling", self.other.send(b"b IDLE"))
        append(self, b"Calendar", MESSAGE)
        self.clock.advance(0)
        self.assertIn(b"* 2 EXISTS", self.other.read())
        self.send(b"s SELECT Calendar")
        self.send(b"t STORE 1 +FLAGS (\\Flagged)")
        self.clock.advance(0)
        self.assertIn(b"* 1 FETCH (FLAGS (\\Flagged \\Recent))", self.other.read())
        self.assertIn(b"b OK", self.other.send(b"DONE"))


class PrivateSeenTests(IMAPTestMixin, unittest.TestCase):
    def setUp(self):
        self.login()
        append(self, b"INBOX", MESSAGE)
        self.send(b"a SETACL INBOX other lrs")
        self.other = Peer(self, b"other")

    def test_viewerSeenIsPrivate(self):
        """A viewer's FETCH BODY[] sets their own \\Seen; the owner's message stays unseen."""
        self.other.send(b"b SELECT ~demo/INBOX")
        out = self.other.send(b"c FETCH 1 (BODY[])")
        self.assertIn(b"\\Seen", out)
        self.assertIn(b"FLAGS (\\Seen", self.other.send(b"d FETCH 1 (FLAGS)"))
        self.assertIn(b'* STATUS "~demo/INBOX" (UNSEEN 0)', self.other.send(b"e STATUS ~demo/INBOX (UNSEEN)"))
        self.assertIn(b"* SEARCH 1", self.other.send(b"f SEARCH SEEN"))
        self.assertIn(b'* STATUS "INBOX" (UNSEEN 1)', self.send(b"g STATUS INBOX (UNSEEN)"))
        self.send(b"h EXAMINE INBOX")
        self.assertIn(b"FLAGS ())", self.send(b"i FETCH 1 (FLAGS)"))

    def test_viewerSeenReachesOwnSessions(self):
        """A viewer's \\Seen set in one session reaches their other session as FETCH FLAGS; the owner's stays unseen."""
        second = Peer(self, b"other")
        self.other.send(b"b SELECT ~demo/INBOX")
        second.send(b"b SELECT ~demo/INBOX")
        self.send(b"c SELECT INBOX")
        self.other.send(b"d STORE 1 +FLAGS (\\Seen)")
        self.assertIn(b"* 1 FETCH (FLAGS (\\Seen", second.send(b"e NOOP"))
        out = self.send(b"f NOOP")
        self.assertNotIn(b"\\Seen", out)
        self.assertIn(b"FLAGS ()", self.send(b"g FETCH 1 (FLAGS)"))

    def test_noSeenWithoutS(self):
        """A viewer without s reading a body is not told it is \\Seen, and nothing is stored."""
        self.send(b"a SETACL INBOX other lr")
        self.other.send(b"b SELECT ~demo/INBOX")
        out = self.other.send(b"c FETCH 1 (BODY[] FLAGS)")
        self.assertIn(b"Hello", out)
        self.assertNotIn(b"\\Seen", out)
        self.assertNotIn(b"\\Seen", self.other.send(b"d FETCH 1 (FLAGS)"))

    def test_readRevoked(self):
        """Taking r away from a viewer with the mailbox selected refuses FETCH and SEARCH at once."""
        self.send(b"a SETACL INBOX other lr")
        self.other.send(b"b SELECT ~demo/INBOX")
        self.send(b"c SETACL INBOX other l")
        self.assertIn(b"d NO [NOPERM]", self.other.send(b"d FETCH 1 (FLAGS)"))
        self.assertIn(b"e NO [NOPERM]", self.other.send(b"e SEARCH ALL"))
        self.assertIn(b"f OK", self.other.send(b"f NOOP"))
