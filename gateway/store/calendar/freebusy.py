# -*- test-case-name: tests.test_calendar -*-
"""
The free/busy document (L{freeBusy}) and its cache (L{FreeBusyCache}).
"""

import collections
import contextlib
import gc
import re
import threading
from datetime import datetime, timezone

import icalendar
from twisted.internet.defer import gatherResults, succeed
from twisted.internet.threads import deferToThread
from zope.interface import implementer

from gateway import stats
from gateway.interfaces import ICalendarQueries, IIdleRelease
from gateway.store.calendar import instances
from gateway.store.calendar.parse import isCalendarClass
from gateway.store.calendar.periods import (
    FBTYPES,
    SeriesCache,
    _windowUTC,
    accountZone,
    computePeriods,
    mergePeriods,
    occurrences,
    ownerAddresses,
    subtractPeriods,
)
from gateway.store.calendar.summaries import ParsedMailbox, SummaryStore

PRODID = "-//gateway//Free-Busy//EN"


def calendarMailboxes(mailStore):
    """
    @return: the names of every C{IPF.Appointment} mailbox that can be
        opened, sorted.
    """
    return [info.name for info in mailStore.listMailboxes()
            if isCalendarClass(info.mailboxClass) and getattr(info, "selectable", True)]


def synchronizeCalendars(account):
    """
    Pick up changes other programs made to the account's calendar mailboxes.

    @return: a C{Deferred} that fires when every calendar is up to date.
    """
    store = account.mailStore
    return gatherResults([store.getMailbox(name).synchronize()
                          for name in calendarMailboxes(store)], consumeErrors=True)


_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f]")


def _paramText(text):
    """A text as a parameter value: newlines kept (RFC 6868), other control characters as spaces."""
    return _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))


def detailedPeriods(found, start, end, detailed):
    """
    L{gateway.store.calendar.periods.resolvePeriods} for occurrences some
    of which carry their details: periods of one type and the same details
    (or none) are merged; a stronger type removes the time it covers from
    the weaker ones whatever their details.

    @param found: C{list} of L{gateway.store.calendar.periods.Occurrence}.
    @param detailed: C{f(occurrence)}: may its details be shown?
    @return: C{list} of C{(fbtype, [(start, end, details), ...])}, strongest
        first, spans in start order, C{details} C{None} or C{(summary,
        location)}.
    """
    byType = collections.defaultdict(lambda: collections.defaultdict(list))
    for occurrence in found:
        if occurrence.fbtype is None or occurrence.end <= occurrence.start:
            continue
        key = occurrence.event.details if detailed(occurrence) and any(occurrence.event.details) else None
        byType[occurrence.fbtype][key].append((max(occurrence.start, start), min(occurrence.end, end)))
    result, covered = [], []
    for fbtype in FBTYPES:
        listed, merged = [], []
        for key, spans in byType.get(fbtype, {}).items():
            own = mergePeriods(spans)
            merged.extend(own)
            listed.extend((spanStart, spanEnd, key) for spanStart, spanEnd in subtractPeriods(own, covered))
        if listed:
            result.append((fbtype, sorted(listed, key=lambda span: span[:2])))
        covered = mergePeriods(covered + merged)
    return result


def renderFreeBusy(address, start, end, periods, url=None, now=None):
    """
    The C{text/calendar} document.

    @param periods: see L{gateway.store.calendar.periods.resolvePeriods};
        a span may be C{(start, end, details)} too, C{details} being C{None}
        or the C{(summary, location)} to give as C{X-SUMMARY} and
        C{X-LOCATION} parameters (see L{detailedPeriods}).
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
            period = icalendar.vPeriod(span[:2])
            period.params.pop("VALUE", None)  # PERIOD is FREEBUSY's default type
            period.params["FBTYPE"] = fbtype
            summary, location = span[2] if len(span) > 2 and span[2] is not None else ("", "")
            # Parameter values cannot hold control characters; icalendar
            # writes newlines and quotes as RFC 6868 says.
            if summary:
                period.params["X-SUMMARY"] = _paramText(summary)
            if location:
                period.params["X-LOCATION"] = _paramText(location)
            vfreebusy.add("FREEBUSY", period, encode=False)
    calendar.add_component(vfreebusy)
    return calendar.to_ical()


class _Calendars:
    """
    What a computation needs to know of an account, taken where its mail
    store may be used (the reactor thread in a server): the calendar
    mailboxes, the time zone and the owner's addresses.

    @ivar mailboxes: C{list} of C{(name, mailbox, uidValidity, highestModSeq)}.
    """

    def __init__(self, account):
        store = account.mailStore
        self.mailboxes = []
        for name in calendarMailboxes(store):
            mailbox = store.getMailbox(name)
            self.mailboxes.append((name, mailbox, mailbox.uidValidity, mailbox.highestModSeq()))
        self.zone = accountZone(account.record)
        self.owner = ownerAddresses(account.record)
        self.signature = (tuple((name, uidValidity, modseq) for name, _, uidValidity, modseq in self.mailboxes),
                          getattr(account.record, "timezone", None), self.owner)


def _collectEvents(calendars, parsed, summaries=None):
    """
    Every event of every calendar mailbox, using and refreshing C{parsed}
    (mailbox name to L{gateway.store.calendar.summaries.ParsedMailbox}).

    Reads the mail store only through C{uids()} and C{openMessage()}.
    """
    names = {name for name, _, _, _ in calendars.mailboxes}
    for name in [name for name in parsed if name not in names]:
        del parsed[name]
    events = []
    for name, mailbox, uidValidity, _ in calendars.mailboxes:
        entry = parsed.get(name)
        if entry is None or entry.uidValidity != uidValidity:
            entry = parsed[name] = ParsedMailbox(uidValidity, summaries)
        events.extend(entry.update(mailbox, mailbox.uids()))
    return events


@contextlib.contextmanager
def _collectorPaused():
    """
    No garbage collection during a computation: loading a calendar's
    summaries and expanding its series make hundreds of thousands of
    objects, none of them garbage, and the collections their allocation
    set off were a quarter of a first request.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _compute(account, calendars, start, end, url, now, parsed, seriesCache=None, summaries=None):
    start, end = _windowUTC(start), _windowUTC(end)
    if end < start:
        raise ValueError("free/busy window ends before it starts")
    with _collectorPaused():
        events = _collectEvents(calendars, parsed, summaries)
        periods = computePeriods(events, start, end, calendars.zone, calendars.owner, seriesCache)
    for entry in parsed.values():
        entry.settle()
    return renderFreeBusy(account.address, start, end, periods, url=url, now=now)


def freeBusy(account, start, end, url=None, now=None):
    """
    The free/busy document of an account for a window, computed from its
    messages (without a cache, and without reading or writing summaries).

    @param account: an L{gateway.interfaces.IAccount}.
    @param start: start of the window, a C{datetime} (naive means UTC) or C{date}.
    @param end: end of the window (exclusive), likewise.
    @param url: the document's C{URL}, or C{None}.
    @param now: the C{DTSTAMP} (default: the current time).
    @return: a complete C{text/calendar} document, C{bytes}.
    @raise ValueError: if C{end} is before C{start}.
    """
    return _compute(account, _Calendars(account), start, end, url, now, {})


@implementer(ICalendarQueries, IIdleRelease)
class FreeBusyCache:
    """
    Finished free/busy documents and parsed calendar messages.

    A document is reused while the account's set of calendar mailboxes, their
    C{highestModSeq}s, its time zone and its addresses stay the same; its
    C{DTSTAMP} is the time it was computed.  Parsed events are kept per
    account, mailbox and message UID, in memory and in the account's
    L{gateway.store.calendar.summaries.SummaryStore}, so a recomputation,
    also the first one after a restart, parses only new messages.

    The parsed events of at most C{maxAccounts} accounts, and of at most
    C{maxMessages} calendar messages in all (10,000 take about 12 MB), are kept
    (with their summary files open); the least recently computed accounts
    are let go, and read from their summary files again when next needed.
    The account computed last is always kept.

    It also answers XMAPI's per-message queries (L{instances},
    L{overlapping}) from the same parsed events, keeping the last
    C{maxAnswers} answers (a connector searches a week, then fetches that
    week's instances) while their mailbox is unchanged.

    @ivar computed: how many documents or per-message answers were computed
        (not served from cache).
    @ivar runInThread: C{f(callable, *args)} returning a C{Deferred}, for
        L{generate}: C{deferToThread} (tests pass a synchronous one).
    """

    def __init__(self, maxEntries=1000, runInThread=deferToThread, maxAccounts=64, maxMessages=100000,
                 maxAnswers=64):
        self.maxEntries = maxEntries
        self.maxAnswers = maxAnswers
        self.maxAccounts = maxAccounts
        self.maxMessages = maxMessages
        self.runInThread = runInThread
        self._documents = collections.OrderedDict()
        self._recent = collections.OrderedDict()
        self._parsed = {}
        self._series = {}
        self._mailboxSeries = {}
        self._answers = collections.OrderedDict()
        self._summaries = {}
        self._lock = threading.Lock()
        self._accountLocks = {}
        #: The accounts asked about since the last L{releaseIdle}.
        self._used = set()
        self.computed = 0

    def get(self, account, start, end, url=None, now=None):
        """
        Like L{freeBusy}, from the cache when nothing changed.  Safe to call
        from several threads: computations for one account are serialized,
        those for different accounts run side by side (one account's first
        look at thousands of messages holds up no other account).
        """
        return self._document(account, _Calendars(account), start, end, url, now)

    def generate(self, account, start, end, url=None, now=None):
        """
        Like L{get}, computing in a thread (L{runInThread}) when the
        document is not cached, so that the caller's thread (the reactor)
        only looks at the mailboxes' state.

        @return: a C{Deferred} that fires with the document.
        """
        calendars = _Calendars(account)
        key = self._key(account, start, end, url)
        with self._lock:
            cached = self._cached(key, calendars)
        if cached is not None:
            return succeed(cached)
        return self.runInThread(self._document, account, calendars, start, end, url, now)

    def _key(self, account, start, end, url):
        self._used.add(account.address)
        return (account.address, _windowUTC(start), _windowUTC(end), url)

    def _cached(self, key, calendars):
        cached = self._documents.get(key)
        if cached is not None and cached[0] == calendars.signature:
            self._documents.move_to_end(key)
            return cached[1]
        return None

    def _accountLock(self, address):
        """
        The lock serializing one account's computations (L{_lock} guards
        only the dictionaries).
        """
        with self._lock:
            return self._accountLocks.setdefault(address, threading.Lock())

    def _document(self, account, calendars, start, end, url, now):
        key = self._key(account, start, end, url)
        with self._accountLock(account.address):
            with self._lock:
                document = self._cached(key, calendars)
            if document is not None:
                return document
            document = self._compute(account, calendars, key, start, end, url, now)
        # Outside the account's lock: letting go of another account takes its lock.
        self._letGo()
        return document

    def _letGo(self):
        """
        Let go of the parsed events of the accounts beyond L{maxAccounts} or
        L{maxMessages}, least recently computed first.
        """
        while True:
            with self._lock:
                if not self._overLimits():
                    return
                address = next(iter(self._recent))
            self._release(address, onlyIfLeast=True)

    def _overLimits(self):
        """
        Are more accounts' events kept than the limits allow (never counting
        out the last one)?  Call with L{_lock} held.
        """
        return len(self._recent) > 1 and (len(self._recent) > self.maxAccounts
                                          or sum(self._recent.values()) > self.maxMessages)

    def _state(self, account, calendars):
        """
        The parsed mailboxes of an account (C{dict} of mailbox name to
        L{gateway.store.calendar.summaries.ParsedMailbox}) and its summary
        file, opened again if it was replaced.  Call with the account's lock
        held.
        """
        address = account.address
        with self._lock:
            kept = self._summaries.get(address)
            parsed = self._parsed.setdefault(address, {})
        summaries = SummaryStore.reopened(kept, account.mailStore)
        if summaries is not kept:
            summaries.keepOnly([uidValidity for _, _, uidValidity, _ in calendars.mailboxes])
            for entry in parsed.values():
                entry.summaries = summaries
            with self._lock:
                self._summaries[address] = summaries
        return parsed, summaries

    def _computed(self, address, parsed):
        """
        Count an account as just computed (for L{maxAccounts} and
        L{maxMessages}).  Call with L{_lock} held.
        """
        self.computed += 1
        # How many messages' events it keeps, for maxMessages.
        self._recent[address] = sum(len(entry.events) for entry in parsed.values())
        self._recent.move_to_end(address)

    def _compute(self, account, calendars, key, start, end, url, now):
        address = account.address
        parsed, summaries = self._state(account, calendars)
        with self._lock:
            seriesCache = self._series.setdefault(address, SeriesCache())
        document = _compute(account, calendars, start, end, url, now, parsed, seriesCache, summaries)
        stats.count("freebusy_computations")
        with self._lock:
            self._computed(address, parsed)
            self._documents[key] = (calendars.signature, document)
            self._documents.move_to_end(key)
            while len(self._documents) > self.maxEntries:
                self._documents.popitem(last=False)
        return document

    # -- a viewer's free/busy (XMAPI XFREEBUSY) --------------------------------

    def view(self, account, calendars, start, end, organizer=None, url=None, now=None):
        """
        The free/busy document of an account for a viewer (XMAPI
        C{XFREEBUSY}, R-FB-1..4): computed as L{get} computes
        C{freebusy.vfb}, from the calendars the viewer may see only, each
        period with its event's C{SUMMARY} and C{LOCATION} (C{X-SUMMARY},
        C{X-LOCATION}) where the viewer may see them.  Kept until a calendar
        of the account changes.  Synchronous: a server calls it in a thread
        (see L{generateView}).

        @param account: the calendars' owner, an L{gateway.interfaces.IAccount}.
        @param calendars: C{dict} of calendar mailbox name to C{True} for
            details (the viewer has right C{1} and asked C{DETAILED}) or
            C{False} for times only (right C{0}); names that are not
            calendar mailboxes are ignored.  Empty: the empty VFREEBUSY
            (DTSTART and DTEND, no period), as for an account with nothing
            in the window.
        @param start: start of the window, a C{datetime} (naive means UTC).
        @param end: end of the window (exclusive).
        @param organizer: the C{ORGANIZER} address (default: the
            account's); give the address as the viewer wrote it, so that
            the answers for an unknown address (L{renderFreeBusy} with no
            periods) and for an account with nothing visible are alike.
        @return: C{bytes}.
        @raise ValueError: if C{end} is before C{start}.
        """
        return self._view(account, _Calendars(account), dict(calendars), start, end, organizer, url, now)

    def generateView(self, account, calendars, start, end, organizer=None, url=None, now=None):
        """
        L{view} computed in a thread (L{runInThread}) unless cached, the
        mailboxes' state looked at on the calling thread, as L{generate}.

        @return: a C{Deferred} that fires with the document.
        """
        state = _Calendars(account)
        calendars = dict(calendars)
        key = self._viewKey(account, state, calendars, start, end, organizer, url)
        with self._lock:
            cached = self._cached(key, state) if key is not None else None
        if cached is not None:
            return succeed(cached)
        return self.runInThread(self._view, account, state, calendars, start, end, organizer, url, now)

    def _viewKey(self, account, state, calendars, start, end, organizer, url):
        chosen = frozenset((name, bool(calendars[name])) for name, _, _, _ in state.mailboxes if name in calendars)
        if not chosen:
            return None
        self._used.add(account.address)
        return (account.address, _windowUTC(start), _windowUTC(end), url, "view", chosen, organizer)

    def _view(self, account, state, calendars, start, end, organizer, url, now):
        organizer = organizer or account.address
        key = self._viewKey(account, state, calendars, start, end, organizer, url)
        start, end = _windowUTC(start), _windowUTC(end)
        if end < start:
            raise ValueError("free/busy window ends before it starts")
        if key is None:
            return renderFreeBusy(organizer, start, end, [], url=url, now=now)
        address = account.address
        with self._accountLock(address):
            with self._lock:
                document = self._cached(key, state)
            if document is not None:
                return document
            parsed, summaries = self._state(account, state)
            with self._lock:
                seriesCache = self._mailboxSeries.setdefault((address, key[5]), SeriesCache())
            entries, events = {}, []
            with _collectorPaused():
                for name, mailbox, uidValidity, _ in state.mailboxes:
                    if name not in calendars:
                        continue
                    entry = parsed.get(name)
                    if entry is None or entry.uidValidity != uidValidity:
                        entry = parsed[name] = ParsedMailbox(uidValidity, summaries)
                    entries[name] = entry
                    events.extend(entry.update(mailbox, mailbox.uids()))
                found = occurrences(events, start, end, state.zone, state.owner, seriesCache)
                shown = set()
                for name, entry in entries.items():
                    if calendars[name]:
                        owners = entry.owners(refresh=True)
                        shown.update(owners)
                periods = detailedPeriods(found, start, end, lambda occurrence: id(occurrence.event) in shown)
            for entry in entries.values():
                entry.settle()
            document = renderFreeBusy(organizer, start, end, periods, url=url, now=now)
            with self._lock:
                self._computed(address, parsed)
                self._documents[key] = (state.signature, document)
                self._documents.move_to_end(key)
                while len(self._documents) > self.maxEntries:
                    self._documents.popitem(last=False)
        self._letGo()
        return document

    # -- per-message occurrences (XMAPI) ---------------------------------------

    def instances(self, account, mailbox, uids, start, end):
        """
        The occurrences of some messages of a calendar mailbox in a window
        (XMAPI C{FETCH XINSTANCES}, R-INST-1..3).  Synchronous, like L{get}:
        a server calls it in a thread (L{runInThread}), after
        L{synchronizeCalendars}.

        @param account: the mailbox's owner, an L{gateway.interfaces.IAccount}
            (its time zone places dates and floating times, its addresses
            decide C{PARTSTAT}).
        @param mailbox: one of its mailboxes (or an object for one, such as
            a shared mailbox's view: only its C{uidValidity} is read); a
            mailbox that is not of class C{IPF.Appointment} has no calendar
            items.
        @param uids: the messages' UIDs.
        @param start: the window's start, a C{datetime} (naive means UTC); see
            L{gateway.store.calendar.instances.checkWindow} for what a client
            may ask.
        @param end: its end (exclusive).
        @return: C{dict} of each UID of C{uids} to a C{tuple} of
            L{gateway.store.calendar.instances.Instance} in start order (empty
            for a message that has none or is not a calendar item).
        """
        found = self._byMessage(account, mailbox, start, end)
        return {uid: found.get(uid, ()) for uid in uids}

    def overlapping(self, account, mailbox, start, end, uids=None):
        """
        The messages of a calendar mailbox with an occurrence (of any busy
        type) that overlaps a window (XMAPI C{SEARCH XOVERLAPS}, R-SRCH-4),
        from the summaries (R-SRCH-6).  See L{instances} for the arguments.

        @param uids: C{None} for every message, or the UIDs to consider.
        @return: C{set} of UIDs.
        """
        found = self._byMessage(account, mailbox, start, end)
        if uids is None:
            return set(found)
        return {uid for uid in uids if uid in found}

    def generateInstances(self, account, mailbox, uids, start, end):
        """
        L{instances}, computed in a thread (L{runInThread}) unless the
        answer for the window is kept, the mailboxes' state looked at on
        the calling thread (as L{generate} does).

        @return: a C{Deferred} that fires with what L{instances} returns.
        """
        d = self._generateByMessage(account, mailbox, start, end)
        return d.addCallback(lambda found: {uid: found.get(uid, ()) for uid in uids})

    def generateOverlapping(self, account, mailbox, start, end, uids=None):
        """
        L{overlapping} as L{generateInstances} computes.

        @return: a C{Deferred} that fires with what L{overlapping} returns.
        """
        d = self._generateByMessage(account, mailbox, start, end)
        return d.addCallback(lambda found: set(found) if uids is None else {uid for uid in uids if uid in found})

    def heldItems(self, account, mailbox, uids):
        """
        The parsed items of some messages of a calendar mailbox that this
        cache holds (after a free/busy or XMAPI computation), read without
        a lock on the account: a computation in a thread replaces a
        message's items whole, and a message's items never change meaning.

        @return: C{dict} of UID to its items, for the UIDs held.
        """
        with self._lock:
            parsed = self._parsed.get(account.address)
            entries = list(parsed.values()) if parsed else []
        uidValidity = mailbox.uidValidity
        for entry in entries:
            if entry.uidValidity == uidValidity:
                events = entry.events
                found = {}
                for uid in uids:
                    items = events.get(uid)
                    if items is not None:
                        found[uid] = items
                return found
        return {}

    def _generateByMessage(self, account, mailbox, start, end):
        request = self._byMessageRequest(account, mailbox, start, end)
        if request is None:
            return succeed({})
        with self._lock:
            answer = self._answers.get(request[0])
            if answer is not None:
                self._answers.move_to_end(request[0])
                return succeed(answer)
        return self.runInThread(self._byMessage, account, mailbox, start, end, request)

    def _byMessageRequest(self, account, mailbox, start, end):
        """
        What L{_byMessage} needs of the mail store: C{(key, calendars,
        uidValidity, mailbox)}, C{mailbox} being the account's own calendar
        mailbox with the UIDVALIDITY of the one given (which may be another
        object for it, such as a shared mailbox's view), or C{None} when the
        account has no such calendar or the window is empty.
        """
        start, end = _windowUTC(start), _windowUTC(end)
        if end <= start:
            return None
        self._used.add(account.address)
        calendars = _Calendars(account)
        uidValidity = mailbox.uidValidity
        for name, own, ownValidity, modSeq in calendars.mailboxes:
            if ownValidity == uidValidity:
                key = (account.address, name, uidValidity, modSeq, start, end, calendars.signature[1:])
                return key, calendars, uidValidity, own
        return None

    def _byMessage(self, account, mailbox, start, end, request=None):
        """
        L{gateway.store.calendar.instances.byMessage} for a mailbox, kept
        per window until the mailbox changes.

        @param request: what L{_byMessageRequest} gave, if it was called
            already (on the reactor thread).
        """
        if request is None:
            request = self._byMessageRequest(account, mailbox, start, end)
            if request is None:
                return {}
        key, calendars, uidValidity, mailbox = request
        start, end, name, address = key[4], key[5], key[1], key[0]
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
                return answer
        with self._accountLock(address):
            with self._lock:
                answer = self._answers.get(key)  # computed meanwhile by another thread?
            if answer is not None:
                return answer
            parsed, summaries = self._state(account, calendars)
            with self._lock:
                seriesCache = self._mailboxSeries.setdefault((address, name), SeriesCache())
            entry = parsed.get(name)
            if entry is None or entry.uidValidity != uidValidity:
                entry = parsed[name] = ParsedMailbox(uidValidity, summaries)
            with _collectorPaused():
                events = entry.update(mailbox, mailbox.uids())
                answer = instances.byMessage(entry, events, start, end, calendars.zone, calendars.owner,
                                             seriesCache)
            entry.settle()
            with self._lock:
                self._computed(address, parsed)
                self._answers[key] = answer
                while len(self._answers) > self.maxAnswers:
                    self._answers.popitem(last=False)
        self._letGo()
        return answer

    def _release(self, address, onlyIfLeast=False):
        """
        Drop an account's parsed events and close its summary file.

        @param onlyIfLeast: C{True} to do it only if the account is still
            the least recently computed one and the limits are still passed
            (another thread may have computed meanwhile).
        """
        with self._accountLock(address), self._lock:
            if onlyIfLeast and (not self._overLimits() or next(iter(self._recent)) != address):
                return
            self._drop(address)

    def _drop(self, address):
        """
        The work of L{_release}: call with the account's lock and L{_lock}
        held.
        """
        self._recent.pop(address, None)
        self._parsed.pop(address, None)
        self._series.pop(address, None)
        for key in [key for key in self._mailboxSeries if key[0] == address]:
            del self._mailboxSeries[key]
        summaries = self._summaries.pop(address, None)
        if summaries is not None:
            summaries.close()

    def releaseIdle(self):
        """
        Drop everything cached for the accounts nobody asked about since
        the previous call (as L{forget} does), and their locks; an account
        being computed (its lock held: a long first computation) is left
        for the next call, never waited for.

        @return: how many accounts were let go.
        """
        with self._lock:
            known = set(self._recent) | set(self._summaries) | set(self._accountLocks)
            known.update(key[0] for key in self._documents)
            known.update(key[0] for key in self._answers)
            idle = known - self._used
            self._used.clear()
        released = 0
        for address in idle:
            with self._lock:
                lock = self._accountLocks.get(address)
            if lock is not None and not lock.acquire(blocking=False):
                continue
            try:
                with self._lock:
                    self._drop(address)
                    for cache in (self._documents, self._answers):
                        for key in [key for key in cache if key[0] == address]:
                            del cache[key]
                    if self._accountLocks.get(address) is lock and address not in self._used:
                        self._accountLocks.pop(address, None)
            finally:
                if lock is not None:
                    lock.release()
            released += 1
        return released

    def describe(self):
        with self._lock:
            return ["free/busy cache: %d documents, %d answers, parsed events of %d accounts (%d messages),"
                    " %d summary files open" % (len(self._documents), len(self._answers), len(self._recent),
                                               sum(self._recent.values()), len(self._summaries))]

    def forget(self, address):
        """
        Drop everything cached for one account (e.g. when it is deleted).
        """
        self._release(address)
        with self._lock:
            for key in [key for key in self._documents if key[0] == address]:
                del self._documents[key]
            for key in [key for key in self._answers if key[0] == address]:
                del self._answers[key]
