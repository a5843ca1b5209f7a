"""
Tests for L{gateway.store.rowcache}: the mailboxes' rows kept while nobody
commits to the index.
"""

import os
import sqlite3
import subprocess
import sys

from twisted.internet.defer import inlineCallbacks
from twisted.trial import unittest

from gateway.store import index, rowcache
from gateway.store.mail import MailStore

MESSAGE = b"From: a@example.test\r\nSubject: s\r\n\r\nbody\r\n"


class MailboxRowsTests(unittest.TestCase):
    def setUp(self):
        self.path = os.path.join(self.mktemp() + "-index", "index.sqlite")
        os.makedirs(os.path.dirname(self.path))
        self.conn = index.connect(self.path)
        self.conn.execute("INSERT INTO mailboxes (id, name, uidvalidity, uidnext, highestmodseq) "
                          "VALUES (1, 'INBOX', 7, 1, 1)")
        self.rows = rowcache.MailboxRows(self.conn, rowcache.IndexStamp(self.path))
        self.addCleanup(self.conn.close)
        self.addCleanup(self.rows.close)
        self.selects = []
        self.conn.set_trace_callback(
            lambda sql: self.selects.append(sql) if sql.startswith("SELECT") else None)

    def otherConnection(self):
        other = sqlite3.connect(self.path, isolation_level=None)
        self.addCleanup(other.close)
        return other

    def test_readOnceWhileNobodyCommits(self):
        """
        The row is read once; the other columns asked for later come from it.
        """
        self.assertEqual(self.rows.row(1, "uidnext"), (1,))
        self.assertEqual(self.rows.row(1, "uidvalidity, highestmodseq, uidnext"), (7, 1, 1))
        self.assertEqual(self.rows.row(1, "name"), ("INBOX",))
        self.assertEqual(len(self.selects), 1)

    def test_commitByAnotherConnection(self):
        """
        A commit through another connection is seen at the next read.
        """
        self.assertEqual(self.rows.row(1, "uidnext"), (1,))
        self.otherConnection().execute("UPDATE mailboxes SET uidnext = 5 WHERE id = 1")
        self.assertEqual(self.rows.row(1, "uidnext"), (5,))

    def test_commitByAnotherProcess(self):
        """
        A commit by another process, which shares the wal-index only through
        the file, is seen at the next read.
        """
        self.assertEqual(self.rows.row(1, "highestmodseq"), (1,))
        subprocess.check_call([sys.executable, "-c", (
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "c.execute('UPDATE mailboxes SET highestmodseq = 9 WHERE id = 1')"), self.path])
        self.assertEqual(self.rows.row(1, "highestmodseq"), (9,))

    def test_ownCommit(self):
        """
        A write through the same connection is seen once committed.
        """
        self.assertEqual(self.rows.row(1, "name"), ("INBOX",))
        with index.transaction(self.conn):
            self.conn.execute("UPDATE mailboxes SET name = 'Renamed' WHERE id = 1")
            self.assertEqual(self.rows.row(1, "name"), ("Renamed",))
        self.assertEqual(self.rows.row(1, "name"), ("Renamed",))

    def test_snapshotNeitherUsesNorFillsTheCache(self):
        """
        Inside a read transaction the row is the snapshot's, and what the
        snapshot saw is not kept for after it, when another connection has
        committed meanwhile.
        """
        self.assertEqual(self.rows.row(1, "uidnext"), (1,))
        with index.snapshot(self.conn):
            self.conn.execute("SELECT 1 FROM mailboxes").fetchall()
            self.otherConnection().execute("UPDATE mailboxes SET uidnext = 3 WHERE id = 1")
            self.assertEqual(self.rows.row(1, "uidnext"), (1,))
        self.assertEqual(self.rows.row(1, "uidnext"), (3,))

    def test_byName(self):
        """
        A mailbox looked up by name is read once while nobody commits; one
        created or renamed meanwhile is found once committed; inside a
        transaction the lookup is the transaction's and is not kept.
        """
        self.assertEqual(self.rows.named("INBOX")[0], 1)
        self.assertIsNone(self.rows.named("Later"))
        self.assertEqual(self.rows.named("INBOX")[0], 1)
        self.assertIsNone(self.rows.named("Later"))
        self.assertEqual(len(self.selects), 2)
        self.otherConnection().execute(
            "INSERT INTO mailboxes (id, name, uidvalidity, uidnext, highestmodseq) VALUES (2, 'Later', 8, 1, 1)")
        self.assertEqual(self.rows.named("Later")[0], 2)
        with index.transaction(self.conn):
            self.conn.execute("UPDATE mailboxes SET name = 'Renamed' WHERE id = 2")
            self.assertEqual(self.rows.named("Renamed")[0], 2)
            self.assertIsNone(self.rows.named("Later"))
        self.assertIsNone(self.rows.named("Later"))
        self.assertEqual(self.rows.named("Renamed")[0], 2)

    def test_deletedMailbox(self):
        """
        A mailbox whose row was deleted has none.
        """
        self.assertEqual(self.rows.row(1, "uidnext"), (1,))
        self.otherConnection().execute("DELETE FROM mailboxes WHERE id = 1")
        self.assertIsNone(self.rows.row(1, "uidnext"))
        self.assertIsNone(self.rows.row(2, "uidnext"))

    def test_withoutWriteAheadLog(self):
        """
        An index in another journal mode has no wal-index: every row is
        read from it.
        """
        path = os.path.join(self.mktemp(), "plain.sqlite")
        os.makedirs(os.path.dirname(path))
        conn = sqlite3.connect(path, isolation_level=None)
        self.addCleanup(conn.close)
        conn.execute("CREATE TABLE mailboxes (id INTEGER PRIMARY KEY, uidnext INTEGER)")
        conn.execute("INSERT INTO mailboxes VALUES (1, 1)")
        stamp = rowcache.IndexStamp(path)
        self.assertIsNone(stamp.read())
        rows = rowcache.MailboxRows(conn, stamp)
        selects = []
        conn.set_trace_callback(selects.append)
        self.assertEqual(rows.row(1, "uidnext"), (1,))
        self.assertEqual(rows.row(1, "uidnext"), (1,))
        self.assertEqual(len(selects), 2)


#: Tries, in another process, to lock the byte of the wal-index that every
#: connection holds a shared lock on while it has the index open (SQLite's
#: unix VFS: UNIX_SHM_DMS, byte 128 of the -shm file).
PROBE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)
except OSError:
    print("held")
else:
    print("free")
"""


class IndexStampTests(unittest.TestCase):
    def setUp(self):
        self.path = os.path.join(self.mktemp() + "-index", "index.sqlite")
        os.makedirs(os.path.dirname(self.path))
        self.conn = index.connect(self.path)
        self.addCleanup(self.conn.close)

    def probe(self):
        return subprocess.check_output([sys.executable, "-c", PROBE, self.path + "-shm"]).strip()

    def test_sqliteLocksKept(self):
        """
        Mapping the header and letting it go leaves SQLite's locks on the
        wal-index held: other processes still see the connection.  (The
        first version opened and closed the file, which let them go.)
        """
        self.assertEqual(self.probe(), b"held")
        stamp = rowcache.IndexStamp(self.path)
        self.assertIsNotNone(stamp.read())
        stamp.close()
        self.assertIsNone(stamp.read())
        self.assertEqual(self.probe(), b"held")

    def test_commitChangesTheStamp(self):
        stamp = rowcache.IndexStamp(self.path)
        self.addCleanup(stamp.close)
        before = stamp.read()
        self.assertEqual(stamp.read(), before)
        self.conn.execute("INSERT INTO meta (key, value) VALUES ('x', 1)")
        self.assertNotEqual(stamp.read(), before)

    def test_openDescriptor(self):
        """
        The descriptor found is SQLite's, of the file asked for; a file
        the process has not open has none.
        """
        fd = rowcache.openDescriptor(self.path + "-shm")
        self.assertIsNotNone(fd)
        self.assertEqual(os.fstat(fd).st_ino, os.stat(self.path + "-shm").st_ino)
        self.assertIsNone(rowcache.openDescriptor(__file__))


class MailStoreRowsTests(unittest.TestCase):
    """
    Two stores on one folder, as two worker processes have: what one
    commits the other's mailbox sees.
    """

    def setUp(self):
        path = self.mktemp()
        self.first = MailStore(path, useInotify=False)
        self.addCleanup(self.first.close)
        self.second = MailStore(path, useInotify=False)
        self.addCleanup(self.second.close)

    @inlineCallbacks
    def test_expungeSeesTheOthersDeleted(self):
        """
        An EXPUNGE that found no \\Deleted message answers the next one at
        once while nobody commits, and looks again after the other store
        flagged one.
        """
        inbox = self.first.getMailbox("INBOX")
        uid = inbox.appendMessage(MESSAGE)
        looks = []
        real = inbox._deletedRows
        self.patch(inbox, "_deletedRows", lambda *a, **k: looks.append(a) or real(*a, **k))
        self.assertEqual((yield inbox.expungeLater()), [])
        self.assertEqual((yield inbox.expungeLater()), [])
        self.assertEqual(len(looks), 1)
        self.second.getMailbox("INBOX").setFlags([uid], ["\\Deleted"], "+")
        self.assertEqual((yield inbox.expungeLater()), [uid])
        self.assertEqual(inbox.uids(), [])

    def test_appendAndRenameSeenByTheOther(self):
        inbox = self.second.getMailbox("INBOX")
        before = inbox.uidNext()
        self.first.getMailbox("INBOX").appendMessage(MESSAGE)
        self.assertEqual(inbox.uidNext(), before + 1)
        self.first.createMailbox("Old")
        old = self.second.getMailbox("Old")
        self.assertEqual(old.name, "Old")
        self.first.renameMailbox("Old", "New")
        self.assertEqual(old.name, "New")


def mappingsOf(path, inode=None):
    """
    The permissions of each of this process's mappings of the file at
    C{path}, or of the file of inode C{inode} (from C{/proc/self/maps}: a
    file removed since it was mapped is still mapped).
    """
    wanted = os.stat(path).st_ino if inode is None else inode
    found = []
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 6 and int(fields[4]) == wanted:
                found.append(fields[1])
    return found


class MappingReleasedTests(unittest.TestCase):
    """
    A mapping left behind after a store closes keeps its pages resident (they
    count in the resident set) although no descriptor of the file is open.
    """

    if not os.path.exists("/proc/self/maps"):
        skip = "no /proc/self/maps"

    def test_storeCloseUnmapsTheWalIndex(self):
        """
        While a store is open the process maps its wal-index twice (SQLite's
        own shared mapping and the stamp's read-only page); once it closed,
        neither is left (SQLite removes the file when its last connection
        closes: a mapping would keep its pages, of a file nobody sees).
        """
        store = MailStore(self.mktemp(), useInotify=False)
        self.addCleanup(store.close)
        store.getMailbox("INBOX").appendMessage(MESSAGE)
        shm = store.indexPath + "-shm"
        inode = os.stat(shm).st_ino
        maps = mappingsOf(shm, inode)
        self.assertIn("r--s", maps)
        self.assertIn("rw-s", maps)
        store.close()
        self.assertEqual(mappingsOf(shm, inode), [])

    def test_stampCloseUnmaps(self):
        path = os.path.join(self.mktemp() + "-index", "index.sqlite")
        os.makedirs(os.path.dirname(path))
        conn = index.connect(path)
        self.addCleanup(conn.close)
        before = mappingsOf(path + "-shm")
        stamp = rowcache.IndexStamp(path)
        self.assertEqual(len(mappingsOf(path + "-shm")), len(before) + 1)
        stamp.close()
        self.assertEqual(mappingsOf(path + "-shm"), before)
