# -*- test-case-name: tests.test_store_structures -*-
"""
Tests for L{gateway.store.structures}: what the registered functions
compute of a message stored from memory is kept in the index with it, and
goes with it.
"""

import io
import os
import sqlite3

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial import unittest

from gateway.store import index, structures
from tests.test_store_mail import CRLF_MESSAGE, StoreTestMixin


def sizes(data):
    return {"SIZE": b"%d" % (len(data),), "FIRST": data.split(b"\r\n", 1)[0]}


class StructuresTests(StoreTestMixin, unittest.TestCase):
    def setUp(self):
        self.patch(structures, "_computers", [])
        structures.register(sizes)
        structures.register(sizes)
        self.store = self.makeStore()
        self.inbox = self.store.getMailbox("INBOX")

    def test_keptWithTheMessage(self):
        """A message stored from memory has what the functions computed, read back by UID; an expunge removes it."""
        uid = self.inbox.appendMessage(CRLF_MESSAGE)
        other = self.inbox.appendMessage(b"Subject: other\r\n\r\nx\r\n")
        self.assertEqual(self.inbox.storedStructures([uid, other, 99]), {
            uid: sizes(CRLF_MESSAGE), other: sizes(b"Subject: other\r\n\r\nx\r\n")})
        self.inbox.setFlags([uid], ["\\Deleted"], "+")
        self.inbox.expunge()
        self.assertEqual(self.inbox.storedStructures([uid, other]), {other: sizes(b"Subject: other\r\n\r\nx\r\n")})
        rows = self.store._conn.execute("SELECT DISTINCT uid FROM structures").fetchall()
        self.assertEqual(rows, [(other,)])

    def test_carriedByCopyAndMove(self):
        """A copy and a move keep what was kept of their source; the moved source's go with it."""
        uid = self.inbox.appendMessage(CRLF_MESSAGE)
        self.store.createMailbox("Box")
        box = self.store.getMailbox("Box")
        [(_, copied)] = self.inbox.copyTo([uid], box)
        [(_, moved)] = self.inbox.moveTo([uid], box)
        self.assertEqual(box.storedStructures([copied, moved]),
                         {copied: sizes(CRLF_MESSAGE), moved: sizes(CRLF_MESSAGE)})
        self.assertEqual(self.inbox.storedStructures([uid]), {})

    def test_goneWithTheMailbox(self):
        """Deleting a mailbox removes what was kept of its messages."""
        self.store.createMailbox("Box")
        self.store.getMailbox("Box").appendMessage(CRLF_MESSAGE)
        self.store.deleteMailbox("Box")
        self.assertEqual(self.store._conn.execute("SELECT count(*) FROM structures").fetchone()[0], 0)

    def test_notKept(self):
        """A message with bare LFs and one over MAX_BYTES (in memory or in a file) keep nothing; all are stored."""
        big = b"Subject: big\r\n\r\n" + b"x" * structures.MAX_BYTES + b"\r\n"
        uids = [
            self.inbox.appendMessage(b"Subject: lf\n\nbody\n"),
            self.inbox.appendMessage(big),
            self.inbox.appendMessage(io.BytesIO(big)),
        ]
        self.assertEqual(self.inbox.uids(), uids)
        self.assertEqual(self.inbox.storedStructures(uids), {})

    def test_fromFiles(self):
        """A message given as a file, or as the path of a spooled file (a delivery), is read back and kept."""
        spool = os.path.join(self.temporaryFolder(), "spool")
        with open(spool, "wb") as f:
            f.write(CRLF_MESSAGE)
        uids = [
            self.inbox.appendMessage(io.BytesIO(CRLF_MESSAGE)),
            self.inbox.commitMessage(self.inbox.prepareMessage(spool)),
        ]
        self.assertEqual(self.inbox.storedStructures(uids), {uid: sizes(CRLF_MESSAGE) for uid in uids})

    def test_nothingRegistered(self):
        """With no function registered nothing is kept."""
        self.patch(structures, "_computers", [])
        uid = self.inbox.appendMessage(CRLF_MESSAGE)
        self.assertEqual(self.inbox.storedStructures([uid]), {})

    def test_failingFunctionKeepsNothing(self):
        """A function that fails keeps nothing of the message; the message is stored and the failure logged."""
        structures.register(lambda data: 1 / 0)
        uid = self.inbox.appendMessage(CRLF_MESSAGE)
        self.assertEqual(self.inbox.uids(), [uid])
        self.assertEqual(self.inbox.storedStructures([uid]), {})
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    @inlineCallbacks
    def test_keptByTheWriter(self):
        """An APPEND through the index writer keeps them in the same commit as the message's row."""
        store = self.makeStore(reactor=reactor)
        inbox = store.getMailbox("INBOX")
        uid = yield inbox.appendMessageLater(CRLF_MESSAGE)
        self.assertEqual(inbox.storedStructures([uid]), {uid: sizes(CRLF_MESSAGE)})

    def test_olderIndexMigrated(self):
        """An index at the step before this one gets the table, and its messages none kept."""
        path = self.mailPath
        self.store.close()
        conn = sqlite3.connect(self.store.indexPath, isolation_level=None)
        conn.execute("DROP TRIGGER structures_gone")
        conn.execute("DROP TABLE structures")
        conn.execute("PRAGMA user_version = %d" % (index.MIGRATIONS.index(index._addStructures),))
        conn.close()
        store = self.makeStore(path)
        inbox = store.getMailbox("INBOX")
        uid = inbox.appendMessage(CRLF_MESSAGE)
        self.assertEqual(inbox.storedStructures([uid]), {uid: sizes(CRLF_MESSAGE)})
        self.assertEqual(store._conn.execute("PRAGMA user_version").fetchone()[0], index.SCHEMA_VERSION)
