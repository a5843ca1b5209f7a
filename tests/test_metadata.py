# -*- test-case-name: tests.test_metadata -*-
"""
The METADATA service (L{gateway.store.metadata}) and the XMAPI folder
entries (L{gateway.mapi.folders}) below the protocol: interfaces, wiring,
the files entries live in, and what survives a restart, an index rebuild,
RENAME and DELETE.
"""

import glob
import os

from twisted.internet.task import Clock
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from gateway.interfaces import IMetadata, IMetadataEntry
from gateway.mapi.folders import DEFAULT_ENTRY, KOLAB_ENTRY, folderEntries
from gateway.service import makeContext
from gateway.store import maildir, metadata
from gateway.store.calendar.freebusy import freeBusy
from gateway.store.mail import MailStore
from gateway.store.metadata import CLASS_ENTRY
from tests.support import freeBusyPeriods, makeTestContext
from tests.test_calendar import message, utc, vevent

DEMO = "demo@example.test"


def _storeFactory(clock):
    return lambda path, quota: MailStore(path, quota=quota, reactor=clock, useInotify=False)


class EntryNameTests(unittest.TestCase):
    def test_rules(self):
        """R-META-1, RFC 5464 3.2: prefix, no wildcards, no //, no trailing /, printable ASCII; lower-cased."""
        self.assertEqual(metadata.checkEntryName(b"/Shared/Comment"), "/shared/comment")
        self.assertEqual(metadata.checkEntryName("/private/vendor/x/y", setting=True), "/private/vendor/x/y")
        for name in ("/shared/a*", "/shared/%", "/shared//a", "/shared/a/", "/public/a", "shared/a",
                     "/shared/\x7f", "/shared/\x00", "/shared/\xe9", "", "/"):
            self.assertRaises(metadata.InvalidEntryName, metadata.checkEntryName, name)
        for name in ("/shared", "/private/vendor", "/shared/vendor/x"):
            metadata.checkEntryName(name)
            self.assertRaises(metadata.InvalidEntryName, metadata.checkEntryName, name, True)

    def test_nameLength(self):
        """Entry names are at most 1024 characters."""
        metadata.checkEntryName("/shared/" + "a" * (metadata.MAX_NAME_LENGTH - 8))
        self.assertRaises(metadata.InvalidEntryName, metadata.checkEntryName,
                          "/shared/" + "a" * (metadata.MAX_NAME_LENGTH - 7))

    def test_below(self):
        """DEPTH 0, 1 and infinity as RFC 5464 4.2.2 says."""
        self.assertTrue(metadata.below("/a/b", "/a/b", "0"))
        self.assertFalse(metadata.below("/a/b/c", "/a/b", "0"))
        self.assertTrue(metadata.below("/a/b/c", "/a/b", "1"))
        self.assertFalse(metadata.below("/a/b/c/d", "/a/b", "1"))
        self.assertTrue(metadata.below("/a/b/c/d", "/a/b", "infinity"))
        self.assertFalse(metadata.below("/a/bc", "/a/b", "infinity"))


class ServiceTests(unittest.TestCase):
    def setUp(self):
        self.clock = Clock()
        self.context = makeTestContext(self, reactor=self.clock)
        self.context.realm._mailStoreFactory = _storeFactory(self.clock)
        self.service = self.context.metadata

    def access(self, address=DEMO):
        return self.context.realm.accountFor(address).access

    def store(self, address=DEMO):
        return self.context.realm.accountFor(address).mailStore

    def get(self, name, entry, context=None):
        service = (context or self.context).metadata
        access = (context or self.context).realm.accountFor(DEMO).access
        return dict(service.getEntries(access, name, [entry])[0])[entry]

    def reopen(self, rebuild=False):
        """
        A new server process over the same data root (optionally after the
        account's index file was lost).
        """
        store = self.store()
        store.close()
        if rebuild:
            for path in glob.glob(os.path.join(store.path, maildir.INDEX_NAME) + "*"):
                os.unlink(path)
        context = makeContext(self.context.config, reactor=self.clock, clock=self.clock)
        context.realm._mailStoreFactory = _storeFactory(self.clock)
        self.addCleanup(lambda: context.realm.accountFor(DEMO).mailStore.close())
        return context

    def test_interfaces(self):
        """The service provides IMetadata and each folder entry IMetadataEntry."""
        verifyObject(IMetadata, metadata.Metadata())
        for entry in folderEntries():
            verifyObject(IMetadataEntry, entry)

    def test_wiring(self):
        """makeContext builds the service with the three XMAPI folder entries."""
        self.assertEqual(sorted(self.service.entries), sorted([CLASS_ENTRY, KOLAB_ENTRY, DEFAULT_ENTRY]))

    def test_fileFormat(self):
        """Entries live in the folder's gateway-metadata file: UTF-8 as text, other octets as base64."""
        self.service.setEntries(self.access(), "INBOX", [("/shared/comment", "caf\xe9".encode()),
                                                         ("/private/bin", b"\xff\x00")])
        path = os.path.join(self.store().path, "INBOX", metadata.METADATA_FILE)
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
        self.assertIn('"/shared/comment": "caf\xe9"', text)
        self.assertIn('"base64": "/wA="', text)
        self.assertEqual(self.get("INBOX", "/private/bin"), b"\xff\x00")
        self.service.setEntries(self.access(), "INBOX", [("/shared/comment", None), ("/private/bin", None)])
        self.assertFalse(os.path.exists(path))

    def test_restart(self):
        """R-META-2: entries and a changed class are there for a new server over the same data root."""
        self.service.setEntries(self.access(), "Notes", [("/shared/comment", b"kept"),
                                                         (CLASS_ENTRY, b"IPF.Journal")])
        context = self.reopen()
        self.assertEqual(self.get("Notes", "/shared/comment", context), b"kept")
        self.assertEqual(context.realm.accountFor(DEMO).mailStore.mailboxClassOf("Notes"), "IPF.Journal")

    def test_indexRebuild(self):
        """R-META-2: a lost index is rebuilt with the classes set by SETMETADATA and CREATE (XCLASS) and the entries."""
        access = self.access()
        access.createMailbox("Team/Birthdays", "IPF.Appointment.Birthday")
        self.service.recordClass(access, "Team/Birthdays", "IPF.Appointment.Birthday")
        self.service.setEntries(access, "Calendar", [(CLASS_ENTRY, b"IPF.Task"), ("/private/comment", b"x")])
        context = self.reopen(rebuild=True)
        store = context.realm.accountFor(DEMO).mailStore
        self.assertEqual(store.mailboxClassOf("Team/Birthdays"), "IPF.Appointment.Birthday")
        self.assertEqual(store.mailboxClassOf("Calendar"), "IPF.Task")
        self.assertEqual(store.mailboxClassOf("Contacts"), "IPF.Contact")
        self.assertEqual(self.get("Calendar", "/private/comment", context), b"x")

    def test_renameCarries(self):
        """R-META-2: RENAME moves a mailbox's entries, and its children's, to the new name."""
        access = self.access()
        access.createMailbox("Old/Child")
        self.service.setEntries(access, "Old", [("/shared/comment", b"parent")])
        self.service.setEntries(access, "Old/Child", [("/private/comment", b"child")])
        access.renameMailbox("Old", "New")
        self.assertEqual(self.get("New", "/shared/comment"), b"parent")
        self.assertEqual(self.get("New/Child", "/private/comment"), b"child")

    def test_renameInboxCopies(self):
        """R-META-2, RFC 5464 4.1: RENAME INBOX gives the new mailbox a copy of INBOX's entries; INBOX keeps them."""
        access = self.access()
        self.service.setEntries(access, "INBOX", [("/shared/comment", b"inbox")])
        access.renameMailbox("INBOX", "Old Mail")
        self.assertEqual(self.get("Old Mail", "/shared/comment"), b"inbox")
        self.assertEqual(self.get("INBOX", "/shared/comment"), b"inbox")

    def test_deleteRemoves(self):
        """R-META-2: DELETE removes the entries, also of a mailbox that stays as \\Noselect for its children; a new mailbox of that name starts empty."""
        access = self.access()
        access.createMailbox("Box/Child")
        access.createMailbox("Leaf")
        self.service.setEntries(access, "Box", [("/shared/comment", b"box")])
        self.service.setEntries(access, "Leaf", [("/shared/comment", b"leaf")])
        access.deleteMailbox("Box")
        access.deleteMailbox("Leaf")
        self.assertIsNone(self.get("Box", "/shared/comment"))
        # RFC 5464 4.1: a \Noselect mailbox may have entries too.
        self.service.setEntries(access, "Box", [("/shared/comment", b"noselect")])
        self.assertEqual(self.get("Box", "/shared/comment"), b"noselect")
        access.createMailbox("Leaf")
        self.assertIsNone(self.get("Leaf", "/shared/comment"))

    def test_fileSizeLimit(self):
        """R-META-4: a mailbox's file holds at most MAX_FILE_SIZE octets of entries (TooManyEntries past it); removing still works."""
        self.patch(metadata, "MAX_FILE_SIZE", 100)
        access = self.access()
        self.service.setEntries(access, "INBOX", [("/shared/a", b"x" * 80)])
        self.assertRaises(metadata.TooManyEntries, self.service.setEntries, access, "INBOX",
                          [("/private/b", b"y" * 30)])
        self.assertIsNone(self.get("INBOX", "/private/b"))
        self.service.setEntries(access, "INBOX", [("/shared/a", None)])
        self.assertIsNone(self.get("INBOX", "/shared/a"))

    def test_classChangeReachesFreeBusy(self):
        """R-CLASS-1, R-CLASS-3: a folder set to a sub-class of IPF.Appointment counts in free/busy; set back, it does not."""
        account = self.context.realm.accountFor(DEMO)
        account.access.createMailbox("Birthdays")
        account.mailStore.getMailbox("Birthdays").appendMessage(
            message(vevent("b1", "DTSTART:20261207T090000Z", "DTEND:20261207T100000Z")))
        window = (utc(2026, 12, 7), utc(2026, 12, 8))
        self.assertEqual(freeBusyPeriods(freeBusy(account, *window)), {})
        self.service.setEntries(account.access, "Birthdays", [(CLASS_ENTRY, b"IPF.Appointment.Birthday")])
        self.assertEqual(freeBusyPeriods(freeBusy(account, *window)),
                         {"BUSY": [(utc(2026, 12, 7, 9), utc(2026, 12, 7, 10))]})
        self.service.setEntries(account.access, "Birthdays", [(CLASS_ENTRY, b"IPF.Note")])
        self.assertEqual(freeBusyPeriods(freeBusy(account, *window)), {})

    def test_privateIsPerViewer(self):
        """R-META-2: private entries of one mailbox are kept apart per viewer."""
        self.store().getMailbox("Notes")
        self.access().setACL("Notes", "other", "lr")
        other = self.access("other@example.test")
        self.service.setEntries(other, "~demo/Notes", [("/private/comment", b"other's")])
        self.service.setEntries(self.access(), "Notes", [("/private/comment", b"demo's")])
        self.assertEqual(dict(self.service.getEntries(other, "~demo/Notes", ["/private/comment"])[0]),
                         {"/private/comment": b"other's"})
        self.assertEqual(self.get("Notes", "/private/comment"), b"demo's")

    def test_mailboxIdSurvives(self):
        """R-LIST-2: the MAILBOXID survives an index rebuild; RENAME INBOX leaves INBOX its own and the new mailbox a new one."""
        store = self.store()
        inbox = store.getMailbox("INBOX").mailboxId()
        calendar = store.getMailbox("Calendar").mailboxId()
        context = self.reopen(rebuild=True)
        self.assertEqual(context.realm.accountFor(DEMO).mailStore.getMailbox("Calendar").mailboxId(), calendar)
        access = context.realm.accountFor(DEMO).access
        access.renameMailbox("INBOX", "Old Mail")
        store = context.realm.accountFor(DEMO).mailStore
        self.assertEqual(store.getMailbox("INBOX").mailboxId(), inbox)
        self.assertNotIn(store.getMailbox("Old Mail").mailboxId(), (inbox, calendar))
