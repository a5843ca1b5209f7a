# -*- test-case-name: tests.test_store_messagerows -*-
"""
The index rows of a selected mailbox's messages, kept in memory for the
sessions that read them again and again.

FETCH, SEARCH and the rest ask their mailbox for the rows of the messages
they answer (L{gateway.store.mailbox.Mailbox.messages} and
C{locatedMessages}): flags, internal date, size, modseq, the header block
and where the file is.  Under imaptest's mix that was the reactor's most
frequent query, about one a command, and a row of thirty messages is thirty
steps of SQLite, at each of which the reactor lets go of the interpreter's
lock and may wait to get it back from the index writer.  Most of the rows
did not change since the last command read them.

L{MessageRows} keeps the rows it read, up to L{MessageRows.LIMIT} a mailbox
and L{MessageRows.BUDGET} a process, while the mailbox has listeners
(sessions that have it selected), and before each
answer brings them up to the mailbox's HIGHESTMODSEQ with the mailbox's
L{gateway.store.changelog.ChangeLog}, which reads each commit's changes
once for every session: a message changed or expunged since is dropped and
read again when asked for.  That is complete because every change to these
columns takes a new modseq: a flag change (the file's new name with it), a
new message, an expunge (an C{expunged} row), another process's change
found by a rescan.  The one exception is a rescan that finds a file moved
with its flags unchanged (another program moved it from C{new/} to
C{cur/}): it records the new name alone, and
L{gateway.store.mailbox.Mailbox.openMessage} finds a file that is not
where a kept row says by its base name, as it does for another process's
rename.  A new UIDVALIDITY, an index whose modseqs went back (rebuilt), a
mailbox deleted or made unselectable (its messages dropped wholesale) or a
gap the change log cannot cover drops every kept row.

Only the reactor thread, outside a transaction, uses the kept rows; writes
in the index writer and reads in other threads ask the index.
"""

import threading
import weakref

from gateway.store import index
from gateway.store.records import MessageInfo

__all__ = ["ROW_COLUMNS", "INFO_WIDTH", "MessageRows", "MessageReads"]

#: UIDs asked for in one C{IN (...)} list at most.
_BATCH = 500

#: The columns of a kept row: L{index.INFO_COLUMNS} then where the file is
#: (what C{locatedMessages} gives C{openMessage}).
ROW_COLUMNS = index.INFO_COLUMNS + ", subdir, filename, crlf, base"
#: How many of them make a L{gateway.store.records.MessageInfo}.
INFO_WIDTH = len(index.INFO_COLUMNS.split(","))


class MessageRows:
    """
    The kept rows of one mailbox, up to date with HIGHESTMODSEQ
    L{version}[1] of UIDVALIDITY L{version}[0].
    """

    #: Rows kept at most for one mailbox; a read of more messages at once
    #: (a client's C{FETCH 1:* (FLAGS)} of a large mailbox) goes to the
    #: index as before, with the columns it needs.
    LIMIT = 1000
    #: Rows kept at most by the whole process (a row is a few hundred
    #: octets to a kilobyte with its header block): past it, a mailbox
    #: keeps no more until others let theirs go.
    BUDGET = 20000
    #: Rows the process keeps now (see L{_count}).
    kept = 0

    def __init__(self):
        self.version = None
        # One dict for the object's life, so that what it holds when the
        # object goes (a mailbox dropped with sessions on it) is counted out.
        self._rows = {}
        weakref.finalize(self, _countOut, self._rows)

    def __len__(self):
        return len(self._rows)

    def clear(self):
        self.version = None
        self._forgetAll()

    def _forgetAll(self):
        _count(-len(self._rows))
        self._rows.clear()

    def rows(self, mailbox, wanted):
        """
        The rows (L{ROW_COLUMNS}) of the messages C{wanted} that exist, in
        UID order: those kept and up to date, the others read (and kept
        while there is room).

        @param mailbox: the L{gateway.store.mailbox.Mailbox} they are of.
        @param wanted: ascending C{list} of distinct UIDs, at most L{LIMIT}.
        """
        state = mailbox._store.mailboxRow(mailbox._id, "uidvalidity, highestmodseq, selectable")
        if state is None or not state[2]:
            self.clear()
            return mailbox._select(ROW_COLUMNS, wanted)
        self._catchUp(mailbox, state[0], state[1])
        kept = self._rows
        missing = [uid for uid in wanted if uid not in kept]
        if not missing:
            return [kept[uid] for uid in wanted]
        read = mailbox._select(ROW_COLUMNS, missing)
        if len(kept) + len(read) <= self.LIMIT and MessageRows.kept + len(read) <= self.BUDGET:
            for row in read:
                kept[row[0]] = row
            _count(len(read))
            return [kept[uid] for uid in wanted if uid in kept]
        found = {row[0]: row for row in read}
        result = []
        for uid in wanted:
            row = kept.get(uid) or found.get(uid)
            if row is not None:
                result.append(row)
        return result

    def _catchUp(self, mailbox, validity, highest):
        """
        Drop what changed between L{version} and C{highest}; everything
        when the change log cannot tell.
        """
        version = self.version
        if version == (validity, highest):
            return
        log = mailbox._changeLog
        changes = None
        if version is not None and version[0] == validity and highest >= version[1]:
            changes = log.since(version[1], validity, highest, mailbox._changesAfter)
        if changes is None:
            # Rows read from now on are of this state or a later one: a
            # later change has a higher modseq, which the next catch-up
            # drops.  The log is asked too, so that it follows from here
            # (it starts keeping changes at the state it is first asked at).
            log.since(highest, validity, highest, mailbox._changesAfter)
            self.version = (validity, highest)
            self._forgetAll()
            return
        expunged, changed, end = changes
        kept = self._rows
        before = len(kept)
        for uid in expunged:
            kept.pop(uid, None)
        for info in changed:
            kept.pop(info.uid, None)
        _count(len(kept) - before)
        self.version = (validity, end)


_countLock = threading.Lock()


def _count(change):
    """
    Add C{change} to L{MessageRows.kept}: in the reactor thread, and in
    whichever thread collects a dropped L{MessageRows}.
    """
    with _countLock:
        MessageRows.kept += change


def _countOut(rows):
    _count(-len(rows))


def _info(row, headers):
    """
    A L{MessageInfo} of a row's first L{INFO_WIDTH} columns; without the
    header block (C{None}) when C{headers} is false.
    """
    return MessageInfo(*row[:INFO_WIDTH]) if headers else MessageInfo(*row[:INFO_WIDTH - 1], headers=None)


class MessageReads:
    """
    The message-reading half of L{gateway.store.mailbox.Mailbox}, which
    provides C{_store}, C{_id}, C{_conn}, C{_path}, C{_listeners},
    C{_messageRows}, C{_changeLog} and C{_changesAfter}.
    """

    def _select(self, columns, uids):
        """
        Rows for C{uids} (in UID order), read from the index; C{uid} must
        be the first column.
        """
        wanted = sorted({int(uid) for uid in uids})
        if not wanted:
            return []
        if len(wanted) > _BATCH:
            rows = self._conn.execute(
                "SELECT %s FROM messages WHERE mailbox = ? AND uid BETWEEN ? AND ? ORDER BY uid"
                % (columns,), (self._id, wanted[0], wanted[-1])).fetchall()
            if wanted[-1] - wanted[0] + 1 != len(wanted):
                keep = set(wanted)
                rows = [row for row in rows if row[0] in keep]
            return rows
        rows = []
        for i in range(0, len(wanted), _BATCH):
            chunk = wanted[i:i + _BATCH]
            rows.extend(self._conn.execute(
                "SELECT %s FROM messages WHERE mailbox = ? AND uid IN (%s) ORDER BY uid"
                % (columns, ",".join("?" * len(chunk))), (self._id, *chunk)).fetchall())
        return rows

    def _rows(self, uids, headers, located):
        """
        The rows of C{uids}: from those kept while sessions have the
        mailbox selected (in the reactor thread, outside a transaction),
        else read, without the header block when C{headers} is false and
        without where the file is when C{located} is false.

        @return: C{(rows, width)}: the location starts at column C{width}.
        """
        wanted = sorted({int(uid) for uid in uids})
        if self._listeners and len(wanted) <= MessageRows.LIMIT \
                and threading.get_ident() == self._store._ownerThread and not self._conn.in_transaction:
            return self._messageRows.rows(self, wanted), INFO_WIDTH
        columns = index.INFO_COLUMNS if headers else index.INFO_COLUMNS_NO_HEADERS
        if located:
            columns += ", subdir, filename, crlf, base"
        return self._select(columns, wanted), INFO_WIDTH if headers else INFO_WIDTH - 1

    def messages(self, uids, headers=True):
        rows, _width = self._rows(uids, headers, located=False)
        return [_info(row, headers) for row in rows]

    def locatedMessages(self, uids, headers=True):
        """
        L{messages}, with where each message's file was when read: for
        FETCH, whose renderers open many of the messages, one query for all
        rather than one per message opened.

        @return: C{(infos, {uid: location})}, a location to give
            L{openMessage} (which looks again when the file has moved since).
        """
        rows, width = self._rows(uids, headers, located=True)
        if not rows:
            return [], {}
        path = self._path()
        infos, locations = [], {}
        for row in rows:
            info = _info(row, headers)
            infos.append(info)
            locations[info.uid] = (path, *row[width:])
        return infos, locations
