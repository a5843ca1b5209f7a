# -*- test-case-name: tests.test_durable_powercut -*-
"""
One flush a write and a power cut (L{gateway.store.redo}): ten clients
append and ten store flags at once on a server process whose writes go
through the store's index writer; after 100 acknowledged commands it is
killed with SIGKILL.  A power cut is then played on its data: of every
message the index recorded in place of a sync (the rows its checkpointer
had not forgotten yet), an appended file is removed (its octets never
reached the disk) and a renamed one is put back under its name without
flags (its rename was lost), and the index is told it was last opened in
another boot.  Started again, the server has every acknowledged APPEND
with its UID and bytes and every acknowledged STORE's flags.
"""

import os
import random

from twisted.trial import unittest

from gateway.store import index, maildir, scan
from tests.test_durable_crash import (
    CLIENTS,
    CountedAppend,
    StoreOne,
    _Counted,
    checkAfterRestart,
    runUntilKilled,
    seededDataRoot,
)


class PowerCutTests(unittest.TestCase):
    timeout = 300

    def setUp(self):
        if scan.bootId() is None:
            raise unittest.SkipTest("no boot identifier here (Linux's %s)" % (scan.BOOT_ID_PATH,))

    def cut(self, mailPath):
        """
        Take back, on disk, what the index recorded in place of a sync.

        @return: C{(removed, renamed)}: how many files of each kind.
        """
        conn = index.connect(os.path.join(mailPath, maildir.INDEX_NAME))
        try:
            rows = conn.execute(
                "SELECT mailboxes.name, redo.base, redo.octets IS NOT NULL FROM redo"
                " JOIN mailboxes ON mailboxes.id = redo.mailbox ORDER BY redo.id").fetchall()
            removed = renamed = 0
            for name, base, written in rows:
                path = maildir.mailboxPath(mailPath, name)
                for subdir in ("new", "cur"):
                    for filename in os.listdir(os.path.join(path, subdir)):
                        if maildir.splitName(filename)[0] != base:
                            continue
                        if written:
                            os.unlink(os.path.join(path, subdir, filename))
                            removed += 1
                        elif (subdir, filename) != ("new", base):
                            os.rename(os.path.join(path, subdir, filename), os.path.join(path, "new", base))
                            renamed += 1
            with index.transaction(conn):
                conn.execute("UPDATE meta SET value = 'an earlier boot' WHERE key = ?", (scan.BOOT_KEY,))
        finally:
            conn.close()
        return removed, renamed

    def test_powerCutAfterConcurrentAppendsAndStores(self):
        """
        After kill -9 during concurrent APPENDs and STOREs and a power cut
        that took back every change not synced yet, every acknowledged
        change is there after a restart.
        """
        dataRoot, logFile, mailPath = seededDataRoot(self, random.Random(19))
        counter = _Counted(100)
        appenders = [CountedAppend(random.Random("p%d" % (n,)), "pa%d" % (n,), counter) for n in range(CLIENTS)]
        storers = [StoreOne(random.Random("p%d" % (100 + n,)), "ps%d" % (n,), n + 1, counter)
                   for n in range(CLIENTS)]
        runUntilKilled(self, dataRoot, logFile, appenders + storers, counter)
        removed, renamed = self.cut(mailPath)
        self.assertGreater(removed + renamed, 0, "nothing was left unsynced: the test would test nothing")
        checkAfterRestart(self, dataRoot, logFile, appenders, storers)
        with open(logFile) as f:
            self.assertNotIn("Traceback", f.read())
