# -*- test-case-name: tests.test_imapcheck -*-
"""
What the sessions of one checked run share (L{tests.imapcheck}): the
highest UID and MODSEQ seen per mailbox, the UIDs servers assigned, each
message's size and digest, each mailbox's UIDVALIDITY, who holds each
C{\\Recent} message.
"""

import threading


class Registry:
    """
    What every session of one run has seen, for checks across sessions:
    the highest UID and MODSEQ seen per mailbox, UIDs given by APPENDUID
    and COPYUID, each message's size and content digest, each mailbox's
    UIDVALIDITY.  Thread-safe.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.maxUid = {}
        self.maxModseq = {}
        self.assigned = {}
        self.sizes = {}
        self.digests = {}
        self.uidValidity = {}
        self.recent = {}

    def snapshot(self, mailbox):
        with self._lock:
            return self.maxUid.get(mailbox, 0), self.maxModseq.get(mailbox, 0)

    def forget(self, mailbox):
        """
        C{mailbox} is deleted or renamed: its UIDs, MODSEQs and UIDVALIDITY
        may start again.
        """
        with self._lock:
            for table in (self.maxUid, self.maxModseq, self.uidValidity):
                table.pop(mailbox, None)

    def sawUid(self, mailbox, uid):
        with self._lock:
            if uid > self.maxUid.get(mailbox, 0):
                self.maxUid[mailbox] = uid

    def sawModseq(self, mailbox, modseq):
        with self._lock:
            if modseq > self.maxModseq.get(mailbox, 0):
                self.maxModseq[mailbox] = modseq

    def assign(self, mailbox, validity, uid):
        """
        @return: C{False} if C{uid} was given before.
        """
        with self._lock:
            given = self.assigned.setdefault((mailbox, validity), set())
            if uid in given:
                return False
            given.add(uid)
            if uid > self.maxUid.get(mailbox, 0):
                self.maxUid[mailbox] = uid
            return True

    def claimRecent(self, key, session):
        """
        C{session} (read-write) shows message C{key} as C{\\Recent}.

        @return: the session that showed it first.
        """
        with self._lock:
            return self.recent.setdefault(key, session)

    def same(self, table, key, value):
        """
        Record C{value} for C{key} in C{table}; C{False} if another was
        recorded before.
        """
        with self._lock:
            old = table.setdefault(key, value)
            return old == value
