# -*- test-case-name: tests.test_imap_xmapi_calendar -*-
"""
XMAPI (C{docs/xmapi.md}) calendar queries over IMAP: C{FETCH XINSTANCES}
(section 4.3) and C{SEARCH XOVERLAPS} (R-SRCH-4 to R-SRCH-6), rows that
L{install} adds to an IMAP factory's registries.

Both are answered by the calendar engine
(L{gateway.interfaces.ICalendarQueries}, the service's shared
L{gateway.store.calendar.FreeBusyCache}) from the calendar summaries, for
the account that owns the selected mailbox.  The engine answers with a
C{Deferred}, so each row has a step that runs before the messages are
matched or rendered: C{XOVERLAPS} computes the set of overlapping UIDs
before the search (L{gateway.imap.search._Parser.prepareWith}), then
matches by membership; C{XINSTANCES} gets the instances of each batch's
UIDs before the batch is rendered (C{item.prepare}, see
L{gateway.imap.commands_selected._fetchLoop}).
"""

import re
from datetime import datetime, timezone

from gateway.imap.fetchitems import FetchItem
from gateway.imap.parser import Arguments, IMAPSyntaxError
from gateway.imap.search import SearchKey
from gateway.store.calendar.instances import checkWindow
from gateway.store.calendar.periods import _windowUTC

#: C{xtime}: a UTC date-time in the basic format of RFC 5545.
_XTIME = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z\Z")

#: The engine of sessions whose context has none (a fallback; the service
#: shares one, C{context.freeBusyCache}).
_fallback = None


def install(registries):
    """
    Add the rows of this module to C{registries} (a
    L{gateway.imap.registry.Registries}).
    """
    registries.fetch.add("XINSTANCES", _xinstancesRenderer, parse=parseFetchXinstances, contextual=True)
    registries.search.add("XOVERLAPS", parseSearchXoverlaps)


# -- shared ----------------------------------------------------------------------------------

def parseTime(token):
    """
    An C{xtime} token (a string, C{bytes}, or an atom C{str}) as an aware
    UTC C{datetime}.

    @raise ValueError: anything else.
    """
    if isinstance(token, list):
        raise ValueError("expected a time, got a list")
    if isinstance(token, bytes):
        token = token.decode("ascii", "replace")
    match = _XTIME.match(token)
    if match is None:
        raise ValueError("%r is not a UTC time (YYYYMMDDTHHMMSSZ)" % (token[:40],))
    try:
        return datetime(*map(int, match.groups()), tzinfo=timezone.utc)
    except ValueError:
        raise ValueError("%r is not a valid time" % (token[:40],)) from None


def parseWindow(startToken, endToken):
    """
    A client's window (R-INST-4, R-FB-5): C{(start, end)} in UTC.

    @raise ValueError: a malformed time, or a window that is empty or
        longer than 366 days (L{gateway.store.calendar.instances.BadWindow}).
    """
    return checkWindow(parseTime(startToken), parseTime(endToken))


def formatTime(value):
    """
    A C{datetime} (or C{date}) as a quoted C{xtime}.
    """
    return _windowUTC(value).strftime('"%Y%m%dT%H%M%SZ"').encode("ascii")


def calendarEngine(session):
    """
    The L{gateway.interfaces.ICalendarQueries} of C{session}: its
    service's shared cache.
    """
    global _fallback
    engine = getattr(session.context, "freeBusyCache", None)
    if engine is None:
        if _fallback is None:
            from gateway.store.calendar import FreeBusyCache
            _fallback = FreeBusyCache()
        engine = _fallback
    return engine


def ownerAccount(session, mailbox):
    """
    The account that owns C{mailbox}: the session's own, or the owner of
    another account's mailbox the session opened (its calendar, time zone
    and addresses decide the answers).
    """
    owner = getattr(mailbox, "owner", None)
    account = session.account
    if owner is None or owner == account.address:
        return account
    return session.context.realm.accountFor(owner)


# -- FETCH XINSTANCES ------------------------------------------------------------------------

class XinstancesItem(FetchItem):
    """
    C{XINSTANCES ("start" "end")}: the window, and the instances of the
    batch being rendered (L{prepare} fills them).
    """

    def __init__(self, start, end):
        FetchItem.__init__(self, "XINSTANCES")
        self.start, self.end = start, end
        self.instances = {}

    def __eq__(self, other):
        return isinstance(other, XinstancesItem) and (self.start, self.end) == (other.start, other.end)

    def prepare(self, session, uids):
        """
        Get the instances of C{uids} in the window from the engine.

        @return: a C{Deferred} that fires when L{instances} holds them.
        """
        mailbox = session.view.mailbox
        d = calendarEngine(session).generateInstances(ownerAccount(session, mailbox), mailbox, uids,
                                                      self.start, self.end)

        def got(found):
            self.instances = found
        return d.addCallback(got)


def parseFetchXinstances(text, pos):
    """
    C{XINSTANCES ("start" "end")}: the FETCH registry's parser.
    """
    match = re.compile(r' \(([^()]*)\)').match(text, pos)
    if match is None:
        raise ValueError('XINSTANCES needs a window ("start" "end")')
    try:
        tokens = Arguments(match.group(1).encode("latin-1")).values()
    except IMAPSyntaxError as e:
        raise ValueError("XINSTANCES: %s" % (e,)) from None
    if len(tokens) != 2:
        raise ValueError('XINSTANCES needs a window ("start" "end")')
    try:
        start, end = parseWindow(*tokens)
    except ValueError as e:
        raise ValueError("XINSTANCES: %s" % (e,)) from None
    return XinstancesItem(start, end), match.end()


def formatInstance(instance):
    """
    One C{xinstance}: C{("start" "end" FBTYPE "recurrence-id")}, C{NIL}
    for a single event's recurrence ID.
    """
    recurrence = b"NIL" if instance.recurrenceId is None else formatTime(instance.recurrenceId)
    return b"(%s %s %s %s)" % (formatTime(instance.start), formatTime(instance.end),
                               instance.fbtype.encode("ascii"), recurrence)


def _xinstancesRenderer(item, threshold, session):
    def render(parts, message, flags, recent):
        found = item.instances.get(message.info.uid, ())
        parts.append(b"(" + b" ".join(formatInstance(instance) for instance in found) + b")")
    return render


# -- SEARCH XOVERLAPS ------------------------------------------------------------------------

class XoverlapsKey(SearchKey):
    """
    C{XOVERLAPS "start" "end"} (R-SRCH-4): the messages with an occurrence
    overlapping the window, whatever its busy type, from the summaries
    (R-SRCH-6); L{prepare} asks the engine for them before the search.
    """

    def __init__(self, session, start, end):
        self.session = session
        self.start, self.end = start, end
        self.uids = frozenset()

    def prepare(self):
        """
        Get the overlapping UIDs of the selected mailbox.

        @return: a C{Deferred} that fires when L{uids} holds them.
        """
        session = self.session
        mailbox = session.view.mailbox
        d = calendarEngine(session).generateOverlapping(ownerAccount(session, mailbox), mailbox,
                                                        self.start, self.end)

        def got(found):
            self.uids = frozenset(found)
        return d.addCallback(got)

    def match(self, m):
        return m.info.uid in self.uids


def parseSearchXoverlaps(parser, name):
    """
    The SEARCH registry's parser of C{XOVERLAPS}.
    """
    start, end = parseWindow(parser.next("XOVERLAPS start"), parser.next("XOVERLAPS end"))
    key = XoverlapsKey(parser.context, start, end)
    if parser.context is not None:
        parser.prepareWith(key.prepare)
    return key
