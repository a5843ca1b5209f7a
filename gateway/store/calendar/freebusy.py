# -*- test-case-name: tests.test_calendar -*-
"""
The free/busy document (L{freeBusy}) and its cache (L{FreeBusyCache}).
"""

import collections
import threading
from datetime import datetime, timezone

import icalendar
from twisted.internet.defer import gatherResults

from gateway.store.calendar.parse import CALENDAR_CLASS, ParsedMailbox
from gateway.store.calendar.periods import _windowUTC, accountZone, computePeriods, ownerAddresses

PRODID = "-//gateway//Free-Busy//EN"


def calendarMailboxes(mailStore):
    """
    @return: the names of every C{IPF.Appointment} mailbox that can be
        opened, sorted.
    """
    return [info.name for info in mailStore.listMailboxes()
            if info.mailboxClass == CALENDAR_CLASS and getattr(info, "selectable", True)]


def synchronizeCalendars(account):
    """
    Pick up changes other programs made to the account's calendar mailboxes.

    @return: a C{Deferred} that fires when every calendar is up to date.
    """
    store = account.mailStore
    return gatherResults([store.getMailbox(name).synchronize()
                          for name in calendarMailboxes(store)], consumeErrors=True)


def renderFreeBusy(address, start, end, periods, url=None, now=None):
    """
    The C{text/calendar} document.

    @param periods: see L{gateway.store.calendar.periods.resolvePeriods}.
    @return: C{bytes}.
    """
    if now is None:
        now = datetime.now(timezone.utc)
    calendar = icalendar.Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    calendar.add("METHOD", "PUBLISH")
    vfreebusy = icalendar.FreeBusy()
    organizer = icalendar.vCalAddress("mailto:" + address)
    vfreebusy.add("ORGANIZER", organizer)
    vfreebusy.add("DTSTAMP", _windowUTC(now))
    vfreebusy.add("DTSTART", start)
    vfreebusy.add("DTEND", end)
    if url:
        vfreebusy.add("URL", url)
    for fbtype, spans in periods:
        for span in spans:
            period = icalendar.vPeriod(span)
            period.params.pop("VALUE", None)  # PERIOD is FREEBUSY's default type
            period.params["FBTYPE"] = fbtype
            vfreebusy.add("FREEBUSY", period, encode=False)
    calendar.add_component(vfreebusy)
    return calendar.to_ical()


def _collectEvents(account, parsed):
    """
    Every event of every calendar mailbox, using and refreshing C{parsed}
    (mailbox name to L{gateway.store.calendar.parse.ParsedMailbox}).
    """
    store = account.mailStore
    names = calendarMailboxes(store)
    for name in [name for name in parsed if name not in names]:
        del parsed[name]
    events = []
    for name in names:
        mailbox = store.getMailbox(name)
        entry = parsed.get(name)
        if entry is None or entry.uidValidity != mailbox.uidValidity:
            entry = parsed[name] = ParsedMailbox(mailbox.uidValidity)
        events.extend(entry.update(mailbox))
    return events


def _compute(account, start, end, url, now, parsed, seriesCache=None):
    start, end = _windowUTC(start), _windowUTC(end)
    if end < start:
        raise ValueError("free/busy window ends before it starts")
    record = account.record
    events = _collectEvents(account, parsed)
    periods = computePeriods(events, start, end, accountZone(record), ownerAddresses(record),
                             seriesCache)
    return renderFreeBusy(account.address, start, end, periods, url=url, now=now)


def freeBusy(account, start, end, url=None, now=None):
    """
    The free/busy document of an account for a window.

    @param account: an L{gateway.interfaces.IAccount}.
    @param start: start of the window, a C{datetime} (naive means UTC) or C{date}.
    @param end: end of the window (exclusive), likewise.
    @param url: the document's C{URL}, or C{None}.
    @param now: the C{DTSTAMP} (default: the current time).
    @return: a complete C{text/calendar} document, C{bytes}.
    @raise ValueError: if C{end} is before C{start}.
    """
    return _compute(account, start, end, url, now, {})


class FreeBusyCache:
    """
    Finished free/busy documents and parsed calendar messages.

    A document is reused while the account's set of calendar mailboxes, their
    C{highestModSeq}s, its time zone and its addresses stay the same; its
    C{DTSTAMP} is the time it was computed.  Parsed events are kept per
    account, mailbox and message UID, so a recomputation parses only new
    messages.

    @ivar computed: how many documents were computed (not served from cache).
    """

    def __init__(self, maxEntries=1000):
        self.maxEntries = maxEntries
        self._documents = collections.OrderedDict()
        self._parsed = {}
        self._series = {}
        self._lock = threading.Lock()
        self.computed = 0

    def _signature(self, account):
        store = account.mailStore
        record = account.record
        state = []
        for name in calendarMailboxes(store):
            mailbox = store.getMailbox(name)
            state.append((name, mailbox.uidValidity, mailbox.highestModSeq()))
        return (tuple(state), getattr(record, "timezone", None), ownerAddresses(record))

    def get(self, account, start, end, url=None, now=None):
        """
        Like L{freeBusy}, from the cache when nothing changed.  Safe to call
        from several threads (calls are serialized).
        """
        with self._lock:
            return self._get(account, start, end, url, now)

    def _get(self, account, start, end, url, now):
        key = (account.address, _windowUTC(start), _windowUTC(end), url)
        signature = self._signature(account)
        cached = self._documents.get(key)
        if cached is not None and cached[0] == signature:
            self._documents.move_to_end(key)
            return cached[1]
        parsed = self._parsed.setdefault(account.address, {})
        seriesCache = self._series.setdefault(account.address, collections.OrderedDict())
        document = _compute(account, start, end, url, now, parsed, seriesCache)
        self.computed += 1
        self._documents[key] = (signature, document)
        self._documents.move_to_end(key)
        while len(self._documents) > self.maxEntries:
            self._documents.popitem(last=False)
        return document

    def forget(self, address):
        """
        Drop everything cached for one account (e.g. when it is deleted).
        """
        with self._lock:
            self._parsed.pop(address, None)
            self._series.pop(address, None)
            for key in [key for key in self._documents if key[0] == address]:
                del self._documents[key]
