# -*- test-case-name: tests.test_imap_metadata -*-
"""
METADATA (RFC 5464), LIST-METADATA (RFC 9590) and the XMAPI folder entries
(docs/xmapi.md section 6: R-CLASS-1..5, R-LIST-1) over a StringTransport:
the RFC's examples, the entry-name rules, limits, rights, and the folder
class seen by the store.
"""

import re

from twisted.trial import unittest

from gateway.store.calendar.freebusy import calendarMailboxes
from tests.test_imap_acl import Peer
from tests.test_imap_protocol import IMAPTestMixin

CLASS = b"/shared/vendor/xmapi/container-class"
KOLAB = b"/shared/vendor/kolab/folder-type"
DEFAULT = b"/private/vendor/xmapi/default"


class MetadataTestMixin(IMAPTestMixin):
    def setUp(self):
        self.login()

    def ok(self, command):
        tag = command.split(b" ", 1)[0]
        out = self.send(command)
        self.assertIn(tag + b" OK", out)
        return out

    def store(self, address="demo@example.test"):
        return self.context.realm.accountFor(address).mailStore


class CapabilityTests(MetadataTestMixin, unittest.TestCase):
    def test_announced(self):
        """METADATA and LIST-METADATA are announced; METADATA-SERVER is not (METADATA implies it)."""
        caps = self.send(b"a CAPABILITY").split(b"\r\n")[0].split()
        self.assertIn(b"METADATA", caps)
        self.assertIn(b"LIST-METADATA", caps)
        self.assertNotIn(b"METADATA-SERVER", caps)

    def test_notBeforeLogin(self):
        """GETMETADATA is an authenticated-state command."""
        self.connect()
        self.assertIn(b"a BAD", self.send(b'a GETMETADATA "" /shared/comment'))


class RFC5464ExampleTests(MetadataTestMixin, unittest.TestCase):
    """
    The examples of RFC 5464 section 4, in order.
    """

    def test_serverEntry(self):
        """4.2: GETMETADATA "" /shared/comment answers a METADATA response for the server ("" mailbox)."""
        self.assertEqual(self.send(b'a GETMETADATA "" /shared/comment'),
                         b'* METADATA "" (/shared/comment NIL)\r\na OK GETMETADATA completed\r\n')

    def test_privateComment(self):
        """4.2: GETMETADATA "INBOX" /private/comment returns the viewer's comment."""
        self.ok(b'a SETMETADATA INBOX (/private/comment "My own comment")')
        self.assertEqual(self.send(b'b GETMETADATA "INBOX" /private/comment'),
                         b'* METADATA "INBOX" (/private/comment "My own comment")\r\nb OK GETMETADATA completed\r\n')

    def test_entryList(self):
        """4.2: a list of entries is answered in one METADATA response, in the order asked."""
        self.ok(b'a SETMETADATA INBOX (/private/comment "My own comment" /shared/comment "Shared comment")')
        self.assertIn(b'* METADATA "INBOX" (/shared/comment "Shared comment" /private/comment "My own comment")',
                      self.send(b'b GETMETADATA "INBOX" (/shared/comment /private/comment)'))

    def test_maxSize(self):
        """4.2.1, R-META-5: MAXSIZE leaves out longer values and the tagged OK says the longest's size."""
        self.ok(b'a SETMETADATA INBOX (/private/comment "My own comment" /shared/comment {2199+}\r\n'
                + b"x" * 2199 + b")")
        self.assertEqual(self.send(b'b GETMETADATA "INBOX" (MAXSIZE 1024) (/shared/comment /private/comment)'),
                         b'* METADATA "INBOX" (/private/comment "My own comment")\r\n'
                         b'b OK [METADATA LONGENTRIES 2199] GETMETADATA completed\r\n')

    def test_depth(self):
        """4.2.2: DEPTH 1 returns the entries immediately below, not deeper ones; infinity all."""
        self.ok(b'a SETMETADATA INBOX (/private/filters/values/small "SMALLER 5000"'
                b' /private/filters/values/boss "FROM \\"boss@example.com\\""'
                b' /private/filters/values/boss/deeper "x")')
        out = self.send(b'b GETMETADATA "INBOX" (DEPTH 1) (/private/filters/values)')
        self.assertIn(b'* METADATA "INBOX" (/private/filters/values/boss "FROM \\"boss@example.com\\""'
                      b' /private/filters/values/small "SMALLER 5000")', out)
        self.assertNotIn(b"deeper", out)
        self.assertIn(b"deeper", self.send(b'c GETMETADATA (DEPTH infinity) INBOX /private'))
        self.assertNotIn(b"small", self.send(b'd GETMETADATA (DEPTH 0) INBOX /private/filters/values'))

    def test_multilineLiteral(self):
        """4.3: a value sent as a literal keeps its CRLF line ends."""
        self.session.dataReceived(b"a SETMETADATA INBOX (/private/comment {35}\r\n")
        self.assertEqual(self.read(), b"+ Ready\r\n")
        self.assertIn(b"a OK", self.send(b"My new comment across\r\ntwo lines.\r\n)"))
        self.assertIn(b"{35}\r\nMy new comment across\r\ntwo lines.\r\n)",
                      self.send(b"b GETMETADATA INBOX /private/comment"))

    def test_nilRemoves(self):
        """4.3, R-META-5: NIL removes an entry, which then answers NIL."""
        self.ok(b'a SETMETADATA INBOX (/private/comment "x")')
        self.ok(b"b SETMETADATA INBOX (/private/comment NIL)")
        self.assertIn(b"(/private/comment NIL)", self.send(b"c GETMETADATA INBOX /private/comment"))

    def test_tooMany(self):
        """4.3, R-META-4: a new entry past the limit answers NO [METADATA TOOMANY] and sets nothing; changing one is fine."""
        self.context.metadata.maxEntries = 2
        self.ok(b'a SETMETADATA INBOX (/private/a "1" /shared/b "2")')
        self.assertEqual(self.send(b'b SETMETADATA INBOX (/private/c "3")')[:24], b"b NO [METADATA TOOMANY] ")
        self.ok(b'c SETMETADATA INBOX (/private/a "changed")')
        self.assertIn(b"(/private/c NIL)", self.send(b"d GETMETADATA INBOX /private/c"))

    def test_maxSizeOnSet(self):
        """4.3, R-META-4: a value over the limit answers NO [METADATA MAXSIZE n] and sets no entry of the command."""
        self.context.metadata.maxValueSize = 1024
        out = self.send(b'a SETMETADATA INBOX (/private/a "1" /private/big {1025+}\r\n' + b"x" * 1025 + b")")
        self.assertTrue(out.startswith(b"a NO [METADATA MAXSIZE 1024] "), out)
        self.assertIn(b"(/private/a NIL)", self.send(b"b GETMETADATA INBOX /private/a"))
        self.ok(b'c SETMETADATA INBOX (/private/big {1024+}\r\n' + b"x" * 1024 + b")")

    def test_maxSizeOfLiteral(self):
        """4.3, R-META-4: a value longer than a command line may be is refused the same way, before it is sent."""
        self.session.dataReceived(b"a SETMETADATA INBOX (/private/big {65537}\r\n")
        self.assertEqual(self.read(), b"a NO [METADATA MAXSIZE 65536] Value too large\r\n")
        self.ok(b"b NOOP")

    def test_literal8(self):
        """5, R-META-4: a value may be a literal8 (~{n}) holding any octet, returned as one."""
        self.ok(b"a SETMETADATA INBOX (/private/bin ~{3+}\r\na\x00b)")
        self.assertIn(b"(/private/bin ~{3}\r\na\x00b)", self.send(b"b GETMETADATA INBOX /private/bin"))


class EntryNameTests(MetadataTestMixin, unittest.TestCase):
    """
    RFC 5464 3.2: invalid entry names answer BAD in any command.
    """

    BAD_NAMES = [b"/shared/a*b", b"/shared/a%", b"/shared//a", b"/shared/a/", b"/other/a",
                 b"shared/a", b'"/shared/\x01"', b"/shared/vendor/x", b"/shared"]

    def test_setBad(self):
        """R-META-1: wildcards, //, a trailing /, another prefix, control characters, short vendor names: BAD."""
        for name in self.BAD_NAMES:
            self.assertIn(b"a BAD", self.send(b'a SETMETADATA INBOX (' + name + b' "v")'), name)

    def test_getBad(self):
        """R-META-1: GETMETADATA refuses the same names, except a prefix (/shared) to extend with DEPTH."""
        for name in self.BAD_NAMES[:-2]:
            self.assertIn(b"a BAD", self.send(b"a GETMETADATA INBOX " + name), name)
        self.ok(b"b GETMETADATA (DEPTH infinity) INBOX /shared")

    def test_caseInsensitive(self):
        """R-META-1: entry names are case-insensitive: set in one case, found in another."""
        self.ok(b'a SETMETADATA INBOX (/Private/Comment "x")')
        self.assertIn(b'(/PRIVATE/COMMENT "x")', self.send(b"b GETMETADATA INBOX /PRIVATE/COMMENT"))

    def test_badOptions(self):
        """An unknown GETMETADATA option or DEPTH value is BAD; the session goes on."""
        self.assertIn(b"a BAD", self.send(b"a GETMETADATA (DEPTH 2) INBOX /shared/comment"))
        self.assertIn(b"b BAD", self.send(b"b GETMETADATA (COLOR 1) INBOX /shared/comment"))
        self.assertIn(b"c BAD", self.send(b"c SETMETADATA INBOX (/shared/comment)"))
        self.ok(b"d NOOP")


class ServerEntryTests(MetadataTestMixin, unittest.TestCase):
    def test_privateServerEntries(self):
        """R-META-2: private server entries belong to the viewer; shared ones are the administrator's (NO [NOPERM])."""
        self.ok(b'a SETMETADATA "" (/private/vendor/test/theme "dark")')
        self.assertIn(b'* METADATA "" (/private/vendor/test/theme "dark")',
                      self.send(b'b GETMETADATA "" /private/vendor/test/theme'))
        self.assertIn(b"c NO [NOPERM]", self.send(b'c SETMETADATA "" (/shared/comment "x")'))
        other = Peer(self, b"other")
        self.assertIn(b"(/private/vendor/test/theme NIL)", other.send(b'd GETMETADATA "" /private/vendor/test/theme'))


class RightsTests(MetadataTestMixin, unittest.TestCase):
    """
    RFC 5464 3.3 with ACL: l and one of r s w i p to read and to write
    private entries; writing shared entries needs l and w as well.
    """

    def setUp(self):
        MetadataTestMixin.setUp(self)
        self.other = Peer(self, b"other")
        self.ok(b'a SETMETADATA Notes (/shared/comment "team notes" /private/comment "owner only")')

    def grant(self, rights):
        self.ok(b"g SETACL Notes other " + (rights or b'""'))

    def test_readWithAnyOfRswip(self):
        """R-META-3: l with any one of r, s, w, i, p reads the shared entries, never the owner's private ones."""
        for right in b"rswip":
            self.grant(b"l" + bytes([right]))
            out = self.other.send(b"x GETMETADATA ~demo/Notes (/shared/comment /private/comment)")
            self.assertIn(b'(/shared/comment "team notes" /private/comment NIL)', out, right)

    def test_lookupOnlyIsNoPerm(self):
        """R-META-3: l alone: NO [NOPERM]; nothing at all: the same answer as a missing mailbox."""
        self.grant(b"lk")
        self.assertIn(b"x NO [NOPERM]", self.other.send(b"x GETMETADATA ~demo/Notes /shared/comment"))
        self.grant(b"r")
        hidden = self.other.send(b"x GETMETADATA ~demo/Notes /shared/comment")
        missing = self.other.send(b"x GETMETADATA ~demo/Nowhere /shared/comment")
        self.assertEqual(hidden, missing)
        self.assertIn(b"x NO [NONEXISTENT]", hidden)

    def test_privateEntriesPerViewer(self):
        """R-META-3: a viewer with l r sets their own private entry; the owner's stays as it was."""
        self.grant(b"lr")
        self.assertIn(b"x OK", self.other.send(b'x SETMETADATA ~demo/Notes (/private/comment "mine")'))
        self.assertIn(b'(/private/comment "mine")', self.other.send(b"y GETMETADATA ~demo/Notes /private/comment"))
        self.assertIn(b'(/private/comment "owner only")', self.send(b"z GETMETADATA Notes /private/comment"))

    def test_sharedNeedsW(self):
        """R-META-3: writing a shared entry: NO [NOPERM] with l r, allowed with l w."""
        self.grant(b"lr")
        self.assertIn(b"x NO [NOPERM]", self.other.send(b'x SETMETADATA ~demo/Notes (/shared/comment "new")'))
        self.grant(b"lw")
        self.assertIn(b"y OK", self.other.send(b'y SETMETADATA ~demo/Notes (/shared/comment "new")'))
        self.assertIn(b'(/shared/comment "new")', self.send(b"z GETMETADATA Notes /shared/comment"))

    def test_missingMailbox(self):
        """An own mailbox that does not exist: NO [NONEXISTENT]."""
        self.assertIn(b"x NO [NONEXISTENT]", self.send(b"x GETMETADATA Nowhere /shared/comment"))
        self.assertIn(b"y NO [NONEXISTENT]", self.send(b'y SETMETADATA Nowhere (/shared/comment "x")'))


class FolderClassTests(MetadataTestMixin, unittest.TestCase):
    """
    docs/xmapi.md 6.1: the folder class and its Kolab type as entries.
    """

    def test_defaultsCarryClasses(self):
        """The default mailboxes have their classes; INBOX (IPF.Note, nothing stored) has no entry."""
        for name, value in ((b"Calendar", b"IPF.Appointment"), (b"Contacts", b"IPF.Contact"),
                            (b"Tasks", b"IPF.Task"), (b"Notes", b"IPF.StickyNote")):
            self.assertIn(CLASS + b' "' + value + b'"', self.send(b"a GETMETADATA " + name + b" " + CLASS))
        self.assertIn(CLASS + b" NIL", self.send(b"b GETMETADATA INBOX " + CLASS))

    def test_rClass1_validAndSubClass(self):
        """R-CLASS-1: a class or sub-class is stored in the index (a sub-calendar counts in free/busy)."""
        self.ok(b'a CREATE Birthdays')
        self.ok(b'b SETMETADATA Birthdays (' + CLASS + b' "IPF.Appointment.Birthday")')
        self.assertEqual(self.store().mailboxClassOf("Birthdays"), "IPF.Appointment.Birthday")
        self.assertIn("Birthdays", calendarMailboxes(self.store()))
        self.ok(b'c SETMETADATA Birthdays (' + CLASS + b' "IPF.Journal")')
        self.assertEqual(self.store().mailboxClassOf("Birthdays"), "IPF.Journal")
        self.ok(b'd SETMETADATA Birthdays (' + CLASS + b' NIL)')
        self.assertEqual(self.store().mailboxClassOf("Birthdays"), "IPF.Note")

    def test_rClass1_invalid(self):
        """R-CLASS-1: anything else is NO [CANNOT], and no other entry of the command is set."""
        for value in (b"IPF.Foo", b"IPM.Note", b"IPF.Appointment.", b"ipf.note"):
            out = self.send(b'a SETMETADATA Calendar (/shared/comment "x" ' + CLASS + b' "' + value + b'")')
            self.assertIn(b"a NO [CANNOT]", out, value)
        self.assertEqual(self.store().mailboxClassOf("Calendar"), "IPF.Appointment")
        self.assertIn(b"(/shared/comment NIL)", self.send(b"b GETMETADATA Calendar /shared/comment"))

    def test_rClass2_kolabDerivedReadOnly(self):
        """R-CLASS-2: the Kolab folder-type follows the class, .default on the default folder; setting it is NO [NOPERM]."""
        self.assertIn(KOLAB + b' "event.default"', self.send(b"a GETMETADATA Calendar " + KOLAB))
        self.assertIn(KOLAB + b' "mail.inbox"', self.send(b"b GETMETADATA INBOX " + KOLAB))
        self.assertIn(KOLAB + b' "mail.sentitems"', self.send(b"c GETMETADATA Sent " + KOLAB))
        self.ok(b'd CREATE Tasks2 (XCLASS "IPF.Task")')
        self.assertIn(KOLAB + b' "task"', self.send(b"e GETMETADATA Tasks2 " + KOLAB))
        self.assertIn(b"f NO [NOPERM]", self.send(b'f SETMETADATA Tasks2 (' + KOLAB + b' "event")'))

    def test_rClass3_rights(self):
        """R-CLASS-3: another viewer reads the class with l r, changes it only with w (and may change it)."""
        other = Peer(self, b"other")
        self.ok(b"a SETACL Calendar other lr")
        self.assertIn(CLASS + b' "IPF.Appointment"', other.send(b"x GETMETADATA ~demo/Calendar " + CLASS))
        self.assertIn(b"y NO [NOPERM]", other.send(b'y SETMETADATA ~demo/Calendar (' + CLASS + b' "IPF.Note")'))
        self.ok(b"b SETACL Calendar other lrw")
        self.assertIn(b"z OK", other.send(b'z SETMETADATA ~demo/Calendar (' + CLASS + b' "IPF.Note")'))
        self.assertEqual(self.store().mailboxClassOf("Calendar"), "IPF.Note")

    def test_rClass4_createWithClass(self):
        """R-CLASS-4: CREATE with XCLASS (and with USE too); an invalid class creates nothing."""
        self.ok(b'a CREATE "Calendar 2" (XCLASS "IPF.Appointment")')
        self.assertEqual(self.store().mailboxClassOf("Calendar 2"), "IPF.Appointment")
        self.ok(b'b CREATE Archive2 (USE (\\Archive) XCLASS "IPF.Note")')
        self.assertIn(b"\\Archive", self.send(b'c LIST "" Archive2 RETURN (SPECIAL-USE)'))
        self.assertIn(b"d NO [CANNOT]", self.send(b'd CREATE Bad (XCLASS "IPF.Nope")'))
        self.assertNotIn(b'"Bad"', self.send(b'e LIST "" "*"'))
        self.assertIn(b"f BAD", self.send(b'f CREATE Bad2 (XCLASS)'))

    def test_rClass5_defaultFolder(self):
        """R-CLASS-5: marking a folder the default clears the viewer's other default of that class."""
        self.assertIn(DEFAULT + b' "IPF.Appointment"', self.send(b"a GETMETADATA Calendar " + DEFAULT))
        self.ok(b'b CREATE Work (XCLASS "IPF.Appointment")')
        self.ok(b'c SETMETADATA Work (' + DEFAULT + b' "IPF.Appointment")')
        self.assertIn(DEFAULT + b" NIL", self.send(b"d GETMETADATA Calendar " + DEFAULT))
        self.assertIn(KOLAB + b' "event"', self.send(b"e GETMETADATA Calendar " + KOLAB))
        self.assertIn(KOLAB + b' "event.default"', self.send(b"f GETMETADATA Work " + KOLAB))
        self.ok(b'g SETMETADATA Calendar (' + DEFAULT + b' "IPF.Appointment")')
        self.assertIn(DEFAULT + b" NIL", self.send(b"h GETMETADATA Work " + DEFAULT))
        self.assertIn(b"i NO [CANNOT]", self.send(b'i SETMETADATA Work (' + DEFAULT + b' "IPF.Contact")'))
        other = Peer(self, b"other")
        self.assertIn(DEFAULT + b' "IPF.Appointment"', other.send(b"j GETMETADATA Calendar " + DEFAULT))


class ListMetadataTests(MetadataTestMixin, unittest.TestCase):
    """
    RFC 9590 and docs/xmapi.md R-LIST-1.
    """

    def test_afterEachList(self):
        """R-LIST-1: each LIST line is followed by its STATUS and METADATA; a folder without the entries gets none."""
        out = self.send(b'a LIST "" "*" RETURN (STATUS (MESSAGES) METADATA (("' + CLASS + b'")))')
        self.assertIn(b'* LIST (\\HasNoChildren) "/" "Calendar"\r\n* STATUS "Calendar" (MESSAGES 0)\r\n'
                      b'* METADATA "Calendar" (' + CLASS + b' "IPF.Appointment")\r\n', out)
        self.assertIn(b'* STATUS "INBOX" (MESSAGES 0)\r\n* LIST', out)
        self.assertTrue(out.endswith(b"a OK LIST completed\r\n"))

    def test_forms(self):
        """R-LIST-1: METADATA takes one entry, a list, MAXSIZE before them, or (MAXSIZE n) (entries)."""
        for option in (b"METADATA (" + CLASS + b")", b"METADATA ((" + CLASS + b" /shared/comment))",
                       b"METADATA (MAXSIZE 100 (" + CLASS + b"))", b"METADATA ((MAXSIZE 100) (" + CLASS + b"))"):
            out = self.send(b'a LIST "" Tasks RETURN (' + option + b")")
            self.assertIn(b'* METADATA "Tasks" (' + CLASS + b' "IPF.Task")', out, option)
        self.assertIn(b"b BAD", self.send(b'b LIST "" Tasks RETURN (METADATA)'))
        self.assertIn(b"c BAD", self.send(b'c LIST "" Tasks RETURN (METADATA (/shared/a*))'))

    def test_longEntries(self):
        """R-LIST-1: MAXSIZE leaves out long values and the tagged OK carries METADATA LONGENTRIES."""
        self.ok(b'a SETMETADATA Tasks (/shared/comment "a long comment")')
        out = self.send(b'b LIST "" Tasks RETURN (METADATA (MAXSIZE 5 (/shared/comment)))')
        self.assertNotIn(b"* METADATA", out)
        self.assertIn(b"b OK [METADATA LONGENTRIES 14]", out)

    def test_noMetadataWithoutReadRights(self):
        """R-LIST-1: a shared folder listed with l only gets no METADATA; with l r it does."""
        # A new Calendar lets anyone post (p), which RFC 5464 3.3 counts for reading entries.
        self.ok(b"z DELETEACL Calendar anyone")
        self.ok(b"a SETACL Calendar other l")
        other = Peer(self, b"other")
        command = b'x LIST "" "~demo/*" RETURN (METADATA (' + CLASS + b"))"
        out = other.send(command)
        self.assertIn(b'"~demo/Calendar"', out)
        self.assertNotIn(b"* METADATA", out)
        self.ok(b"b SETACL Calendar other lr")
        self.assertIn(b'* METADATA "~demo/Calendar" (' + CLASS + b' "IPF.Appointment")', other.send(command))


class MailboxIdTests(MetadataTestMixin, unittest.TestCase):
    """
    R-LIST-2: MAILBOXID (RFC 8474) as STATUS item, SELECT and CREATE
    response code.
    """

    def mailboxId(self, name, peer=None):
        out = (peer.send if peer else self.send)(b"s STATUS " + name + b" (MAILBOXID MESSAGES)")
        match = re.search(rb"\(MAILBOXID \(([A-Za-z0-9_-]{1,255})\) MESSAGES 0\)", out)
        self.assertIsNotNone(match, out)
        return match.group(1)

    def test_stableAndReported(self):
        """STATUS answers the same id each time; SELECT and LIST-STATUS report it too; mailboxes differ."""
        first = self.mailboxId(b"INBOX")
        self.assertEqual(self.mailboxId(b"INBOX"), first)
        self.assertNotEqual(self.mailboxId(b"Calendar"), first)
        self.assertIn(b"* OK [MAILBOXID (" + first + b")]", self.send(b"a SELECT INBOX"))
        self.assertIn(b'* STATUS "INBOX" (MAILBOXID (' + first + b"))",
                      self.send(b'b LIST "" INBOX RETURN (STATUS (MAILBOXID))'))

    def test_createRenameDelete(self):
        """RENAME keeps the id; a mailbox created again after DELETE has a new one."""
        self.ok(b"a CREATE Box")
        created = self.mailboxId(b"Box")
        self.ok(b"b RENAME Box Moved")
        self.assertEqual(self.mailboxId(b"Moved"), created)
        self.ok(b"c DELETE Moved")
        self.ok(b"d CREATE Moved")
        self.assertNotEqual(self.mailboxId(b"Moved"), created)

    def test_sameForEveryViewer(self):
        """Another account sharing the mailbox sees the same id; entries set later do not change it."""
        own = self.mailboxId(b"Notes")
        self.ok(b"a SETACL Notes other lr")
        self.ok(b'b SETMETADATA Notes (/shared/comment "x")')
        self.ok(b"c SETMETADATA Notes (/shared/comment NIL)")
        self.assertEqual(self.mailboxId(b"~demo/Notes", Peer(self, b"other")), own)
