# -*- test-case-name: tests.test_calendar -*-
"""
Parsed calendar messages, kept per mailbox in memory (L{ParsedMailbox}) and
per account on disk (L{SummaryStore}).  The mail store writes a message's
row when it is added to a calendar (L{summarizeAdded}), so that free/busy
requests, the first after a restart too, parse only messages that other
programs put into the Maildir.

The summaries live next to the account's mail index, in
C{mail/.gateway-freebusy.sqlite} (WAL mode, shared by every process that
serves the account).  Rows are keyed by UIDVALIDITY and UID: UIDVALIDITY is
never reused within an account, so a renamed mailbox keeps its rows and a
recreated one starts afresh.  The file is a cache: it can be deleted at any
time (it is rebuilt from the messages), and it is rebuilt when its format
changes.

A row holds a JSON list of the message's items, and apart from them (read
only when an item is parsed) a JSON list of the texts the items are parsed
from, each a list of the calendar payloads of the message:

  - C{["p", uid, start, end, duration, version, traits, details]}: a plain event
    (see L{gateway.store.calendar.parse._Event.plain}), all free/busy needs
    of it, no parsing needed;
  - C{["u", uid, low, high, texts, shared, events]} (C{texts} an index into
    the row's texts): an
    L{gateway.store.calendar.parse.Unparsed}: a sniffed plain event or a
    series, parsed again only when a window comes near its bounds; or,
    when C{events} is not C{null}, a series whose events are all simple
    (see L{gateway.store.calendar.series}), kept as
    C{[uid, start, end, duration, version, traits, recurrenceId, rules, rdates, exdates, details, method]}
    with their times as values, so that it is never parsed again.
"""

import json
import os
import sqlite3
from datetime import datetime, timedelta, timezone

from gateway import sqlitewal
from gateway.logging import getLogger
from gateway.store import index
from gateway.store.calendar import series
from gateway.store.calendar.parse import UNBOUNDED, Unparsed, _Event, loadMessage

log = getLogger("http")

SUMMARY_NAME = ".gateway-freebusy.sqlite"
#: Bump when the row format changes: older files are emptied.  3: events
#: keep their SUMMARY and LOCATION (detailed free/busy).  4: a missing
#: SUMMARY or LOCATION is null, not an empty text (XMAPI's derived
#: properties tell them apart), and events keep their iTIP METHOD.
FORMAT_VERSION = 4

#: Most UIDs in one C{IN (...)} (SQLite allows 999 parameters at least),
#: and most rows written in one transaction.
_BATCH = 500

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    uidvalidity INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    items TEXT NOT NULL,
    texts TEXT,
    PRIMARY KEY (uidvalidity, uid)
) WITHOUT ROWID
"""


# ---------------------------------------------------------------------------
# Rows


def _encodeTime(value):
    """
    A C{DTSTART}/C{DTEND} value as text: a date, a floating time, or an
    aware time converted to UTC (the instant is all that matters of it).
    """
    if value is None:
        return None
    if isinstance(value, datetime) and value.tzinfo is not None and value.utcoffset() is not None:
        value = value.astimezone(timezone.utc)
    return value.isoformat()


def _encodeEvent(event):
    start, end, duration = event.start, event.end, event.duration
    if duration is not None and isinstance(start, datetime) and start.tzinfo is not None:
        # The nominal days of a DURATION are the event's own zone's days,
        # the rest is exact (see periods.spanOf): settled here, while that
        # zone is known.
        days = timedelta(days=duration.days)
        end, duration = (start + days).astimezone(timezone.utc) + (duration - days), None
    return ["p", event.uid, _encodeTime(start), _encodeTime(end),
            None if duration is None else [duration.days, duration.seconds],
            event.version, event.traits, list(event.details), event.method]


def _decodeTraits(traits):
    status, transp, cdo, attendees = traits
    return (status, transp, cdo, tuple(tuple(attendee) for attendee in attendees))


def _decodeDuration(duration):
    return None if duration is None else timedelta(*duration)


def _decodeEvent(uid, start, end, duration, version, traits, details, method=""):
    return _Event.restored(uid, series.decodeTime(start), series.decodeTime(end), _decodeDuration(duration),
                           tuple(version), _decodeTraits(traits), details=tuple(details), method=method)


def _encodeSeries(events):
    """
    The events of a parsed series as values, or C{None} unless all are
    simple (see L{gateway.store.calendar.series.simple}).
    """
    if not events or not all(event.simple for event in events):
        return None
    encode = series.encodeTime
    return [[event.uid, encode(event.start), encode(event.end),
             None if event.duration is None else [event.duration.days, event.duration.seconds],
             event.version, event.traits, encode(event.recurrenceId), list(event.rules),
             [encode(value) for value in event.rdates], [encode(value) for value in event.exdates],
             list(event.details), event.method]
            for event in events]


def _decodeSeries(rows):
    decode = series.decodeTime
    return [_Event.restored(uid, decode(start), decode(end), _decodeDuration(duration), tuple(version),
                            _decodeTraits(traits), decode(recurrenceId), tuple(rules),
                            tuple(decode(value) for value in rdates),
                            tuple(decode(value) for value in exdates), details=tuple(details), method=method)
            for uid, start, end, duration, version, traits, recurrenceId, rules, rdates, exdates, details, method
            in rows]


def _encodeBound(value):
    return None if value in UNBOUNDED else value.isoformat()


def _json(value):
    return json.dumps(value, separators=(",", ":"))


def encodeItems(items):
    """
    A message's items (L{_Event}s of plain events and
    L{gateway.store.calendar.parse.Unparsed}) as the two texts of a row.

    @return: C{(items, texts)}, C{texts} C{None} when there are none.
    """
    rows, texts = [], []
    for item in items:
        if isinstance(item, Unparsed):
            if item.texts not in texts:
                texts.append(item.texts)
            rows.append(["u", item.uid, _encodeBound(item.low), _encodeBound(item.high),
                         texts.index(item.texts), item.shared, _encodeSeries(item.parsedEvents)])
        else:
            rows.append(_encodeEvent(item))
    return _json(rows), _json(texts) if texts else None


def decodeItems(rows, texts):
    """
    The items of a row written by L{encodeItems}.

    @param rows: its items, decoded from JSON.
    @param texts: its texts, the JSON text.
    """
    items = []
    for row in rows:
        if row[0] == "u":
            _, uid, low, high, index, shared, events = row
            item = Unparsed.stored(uid, UNBOUNDED[0] if low is None else datetime.fromisoformat(low),
                                   UNBOUNDED[1] if high is None else datetime.fromisoformat(high), texts, index,
                                   shared, None if events is None else _decodeSeries(events))
            for event in item.parsedEvents or ():
                event.source = item
            items.append(item)
        else:
            items.append(_decodeEvent(*row[1:]))
    return items


class PlainSummary:
    """
    What a summary row keeps of a plain event, as the attributes of an
    L{_Event} that describe it (for XMAPI's derived properties, which need
    no more of it).
    """

    __slots__ = ("uid", "start", "end", "duration", "traits", "details", "method")
    recurring = False
    recurrenceId = None

    def __init__(self, row):
        _, self.uid, start, end, duration, _, self.traits, self.details, self.method = row
        self.start, self.end = series.decodeTime(start), series.decodeTime(end)
        self.duration = _decodeDuration(duration)


# ---------------------------------------------------------------------------
# The file


class SummaryStore:
    """
    The summaries of one account's calendar messages (see the module's
    docstring).  Not thread safe: L{gateway.store.calendar.FreeBusyCache}
    serializes its use.
    """

    def __init__(self, path, timeout=index.BUSY_TIMEOUT_MS / 1000.0):
        self.path = path
        self._conn = self._open(timeout)
        self._inode = os.stat(path).st_ino

    def current(self):
        """
        Is this still the account's file (not deleted or replaced since it
        was opened)?
        """
        try:
            return os.stat(self.path).st_ino == self._inode
        except FileNotFoundError:
            return False

    def _open(self, timeout):
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=timeout, check_same_thread=False)
        sqlitewal.useWal(conn)
        # A cache: losing the last writes in a power failure only costs parsing.
        conn.execute("PRAGMA synchronous = NORMAL")
        if conn.execute("PRAGMA user_version").fetchone()[0] != FORMAT_VERSION:
            with index.transaction(conn):
                conn.execute("DROP TABLE IF EXISTS messages")
                conn.execute(SCHEMA)
                conn.execute("PRAGMA user_version = %d" % (FORMAT_VERSION,))
        return conn

    @classmethod
    def forMailStore(cls, mailStore, **kwargs):
        """
        The store next to a L{gateway.store.mail.MailStore}'s index; a
        damaged file is replaced by an empty one.

        @param kwargs: for the constructor.
        """
        path = os.path.join(mailStore.path, SUMMARY_NAME)
        try:
            return cls(path, **kwargs)
        except sqlite3.OperationalError:
            raise  # busy, say: not damaged
        except sqlite3.DatabaseError:
            log.failure("Replacing damaged free/busy summaries {path}", path=path)
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.remove(path + suffix)
                except FileNotFoundError:
                    pass
            return cls(path, **kwargs)

    @classmethod
    def reopened(cls, store, mailStore, **kwargs):
        """
        The summaries next to a mail store's index: C{store} while it is
        still that file (see L{current}), else a newly opened one (C{store},
        if any, closed), so that nothing keeps writing to a file an
        administrator deleted.

        @param store: a L{SummaryStore} or C{None}.
        @param kwargs: for the constructor.
        """
        if store is not None:
            if store.current():
                return store
            store.close()
        return cls.forMailStore(mailStore, **kwargs)

    def load(self, uidValidity):
        """
        @return: C{dict} of UID to the items of that message.
        """
        rows = self._conn.execute("SELECT uid, items, texts FROM messages WHERE uidvalidity = ?",
                                  (uidValidity,)).fetchall()
        # One JSON document for every row's items: far cheaper than one each.
        items = json.loads("[%s]" % (",".join(row[1] for row in rows),))
        return {uid: decodeItems(decoded, texts)
                for (uid, _, texts), decoded in zip(rows, items, strict=True)}

    def save(self, uidValidity, messages):
        """
        Store (or replace) the items of some messages.

        @param messages: C{dict} of UID to items.
        """
        rows = [(uidValidity, uid) + encodeItems(items) for uid, items in messages.items()]
        # In batches, so that a rebuild does not hold the file's write lock
        # long (the mail store writes rows as messages arrive).
        for offset in range(0, len(rows), _BATCH):
            with index.transaction(self._conn):
                self._conn.executemany(
                    "INSERT OR REPLACE INTO messages (uidvalidity, uid, items, texts) VALUES (?, ?, ?, ?)",
                    rows[offset:offset + _BATCH])

    def loadSome(self, uidValidity, uids):
        """
        Like L{load}, for some messages only (those without a row are left
        out).
        """
        found = {}
        uids = list(uids)
        for offset in range(0, len(uids), _BATCH):
            batch = uids[offset:offset + _BATCH]
            rows = self._conn.execute(
                "SELECT uid, items, texts FROM messages WHERE uidvalidity = ? AND uid IN (%s)"
                % (",".join("?" * len(batch)),), [uidValidity] + batch).fetchall()
            for uid, items, texts in rows:
                found[uid] = decodeItems(json.loads(items), texts)
        return found

    def loadPlain(self, uidValidity, uids):
        """
        Like L{loadSome}, quicker for messages of one plain event: theirs is
        a L{PlainSummary} (not an L{_Event}), read without decoding the rest
        of the row.
        """
        found = {}
        uids = list(uids)
        for offset in range(0, len(uids), _BATCH):
            batch = uids[offset:offset + _BATCH]
            rows = self._conn.execute(
                "SELECT uid, items, texts FROM messages WHERE uidvalidity = ? AND uid IN (%s)"
                % (",".join("?" * len(batch)),), [uidValidity] + batch).fetchall()
            # One JSON document for every row's items: far cheaper than one each.
            decoded = json.loads("[%s]" % (",".join(row[1] for row in rows),))
            for (uid, _, texts), items in zip(rows, decoded, strict=True):
                if len(items) == 1 and items[0][0] == "p":
                    found[uid] = [PlainSummary(items[0])]
                else:
                    found[uid] = decodeItems(items, texts)
        return found

    def copy(self, sourceValidity, targetValidity, pairs):
        """
        Give copied messages the rows of their originals.

        @param pairs: C{(source UID, target UID)} pairs.
        @return: the target UIDs whose original had no row, C{list}.
        """
        missing = []
        with index.transaction(self._conn):
            for sourceUid, targetUid in pairs:
                copied = self._conn.execute(
                    "INSERT OR REPLACE INTO messages (uidvalidity, uid, items, texts)"
                    " SELECT ?, ?, items, texts FROM messages WHERE uidvalidity = ? AND uid = ?",
                    (targetValidity, targetUid, sourceValidity, sourceUid)).rowcount
                if not copied:
                    missing.append(targetUid)
        return missing

    def delete(self, uidValidity, uids):
        """
        Forget expunged messages.
        """
        if uids:
            with index.transaction(self._conn):
                self._conn.executemany("DELETE FROM messages WHERE uidvalidity = ? AND uid = ?",
                                       [(uidValidity, uid) for uid in uids])

    def keepOnly(self, uidValidities):
        """
        Forget the messages of every mailbox whose UIDVALIDITY is not among
        C{uidValidities} (deleted mailboxes, or ones no longer calendars).
        """
        uidValidities = sorted(uidValidities)
        with index.transaction(self._conn):
            self._conn.execute("DELETE FROM messages WHERE uidvalidity NOT IN (%s)"
                               % (",".join("?" * len(uidValidities)),), uidValidities)

    def close(self):
        self._conn.close()


# ---------------------------------------------------------------------------
# One mailbox in memory


def _readMessage(mailbox, uid):
    f = mailbox.openMessage(uid)
    try:
        return f.read()
    finally:
        f.close()


def _loadMessage(mailbox, uid, sniffing):
    """
    The items of one message (see L{gateway.store.calendar.parse.loadMessage}),
    none for one that cannot be read or parsed (it is logged).
    """
    try:
        return loadMessage(_readMessage(mailbox, uid), sniffing)
    except Exception:
        log.failure("Skipping unparsable calendar message {uid} in {mailbox}", uid=uid, mailbox=mailbox.name)
        return []


def summarizeAdded(summaries, mailbox, uids, source=None):
    """
    Store the items of messages just added to a calendar mailbox, every
    event parsed, so that no free/busy request has to read them: the mail
    store calls this when a message is delivered, appended, copied or moved
    into a calendar.

    @param summaries: the account's L{SummaryStore}.
    @param uids: the new messages' UIDs; or, with C{source}, C{(source UID,
        new UID)} pairs of messages copied or moved from C{source}.
    @param source: the mailbox they were copied from, or C{None}: a
        copy takes its original's row when it has one.
    """
    if source is not None:
        uids = summaries.copy(source.uidValidity, mailbox.uidValidity, uids)
    summaries.save(mailbox.uidValidity, {uid: _loadMessage(mailbox, uid, sniffing=False) for uid in uids})


class ParsedMailbox:
    """
    The parsed events of one calendar mailbox, by UID, loaded from and
    saved to a L{SummaryStore}.

    @ivar events: C{dict} of UID to the message's items.
    """

    def __init__(self, uidValidity, summaries=None):
        self.uidValidity = uidValidity
        self.summaries = summaries
        self.events = summaries.load(uidValidity) if summaries is not None else {}
        self._sniffed = {uid for uid, items in self.events.items() if _sniffed(items)}
        self._owners = None

    def owners(self, refresh=False):
        """
        Which message each event (plain, or parsed from an
        L{gateway.store.calendar.parse.Unparsed}) is in, kept until the
        messages change.

        @param refresh: C{True} to look again (events were parsed since).
        @return: C{dict} of C{id(event)} to UID.
        """
        if self._owners is None or refresh:
            owners = {}
            for uid, items in self.events.items():
                for item in items:
                    if isinstance(item, Unparsed):
                        for event in item.parsedEvents or ():
                            owners[id(event)] = uid
                    else:
                        owners[id(item)] = uid
            self._owners = owners
        return self._owners

    def update(self, mailbox, uids):
        """
        Take the messages not seen yet from the summaries (where the store
        put them when they were added) or parse them, and forget the
        expunged ones.

        @param uids: the mailbox's UIDs, as C{mailbox.uids()} gave them.
        @return: the events of all present messages, C{list} of L{_Event}
            and L{gateway.store.calendar.parse.Unparsed}.
        """
        keep = set(uids)
        gone = [uid for uid in self.events if uid not in keep]
        for uid in gone:
            del self.events[uid]
        self._sniffed.difference_update(gone)
        unseen = [uid for uid in uids if uid not in self.events]
        stored = self.summaries.loadSome(self.uidValidity, unseen) if unseen and self.summaries is not None else {}
        new = {uid: _loadMessage(mailbox, uid, sniffing=True) for uid in unseen if uid not in stored}
        if gone or unseen:
            self._owners = None
        for added in (stored, new):
            self.events.update(added)
            self._sniffed.update(uid for uid, items in added.items() if _sniffed(items))
        if self.summaries is not None:
            self.summaries.delete(self.uidValidity, gone)
            self.summaries.save(self.uidValidity, new)
        return [item for uid in uids for item in self.events[uid]]

    def settle(self):
        """
        Replace sniffed events that a computation parsed by their summaries,
        in memory and on disk, so that they are not parsed again.
        """
        settled = {}
        for uid in list(self._sniffed):
            items = self.events[uid]
            if not all(item.parsed for item in items if isinstance(item, Unparsed)):
                continue
            self._sniffed.discard(uid)
            events = [event for item in items
                      for event in (item.events() if isinstance(item, Unparsed) else [item])]
            if all(event.plain for event in events):
                self.events[uid] = settled[uid] = events
                self._owners = None
        if self.summaries is not None:
            self.summaries.save(self.uidValidity, settled)


def _sniffed(items):
    """Do C{items} hold a plain event that was only sniffed?"""
    return any(isinstance(item, Unparsed) and not item.parsed for item in items)
