# -*- test-case-name: tests.test_imap_xmapi_calendar -*-
"""
XMAPI (C{docs/xmapi.md}) calendar queries over IMAP: C{FETCH XINSTANCES}
(section 4.3) and C{SEARCH XOVERLAPS} (R-SRCH-4 to R-SRCH-6), rows that
L{install} adds to an IMAP factory's registries, and the C{XFREEBUSY}
command (section 7, R-FB-1 to R-FB-5).

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

import json
import re
from datetime import datetime, timezone

from twisted.internet.defer import succeed

from gateway.imap import mimeparts
from gateway.imap.fetchitems import FetchItem
from gateway.imap.parser import Arguments, IMAPSyntaxError
from gateway.imap.protocol import AUTH, bad, command
from gateway.imap.search import SearchKey
from gateway.store.access import Location, domainOf
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


def markGroupware(session):
    """
    Mark C{session} as a groupware session (R-CAP-2): it used an XMAPI item,
    and the session list (C{gatewayctl who}, the admin C{/sessions}) says
    so in its C{xmapi} column.
    """
    if session is not None:
        session.xmapi = True


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
    markGroupware(session)
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

    def storeTerm(self):
        """
        Membership of L{uids} as a term of the index's query (its SQL is
        built when the search runs, after L{prepare}).
        """
        return _UidSetTerm(self)


class _UidSetTerm:
    """
    A L{gateway.store.query} term: the UID is one of C{key.uids}, read when
    the term's SQL is built (one parameter, a JSON list, whatever its size).
    """

    def __init__(self, key):
        self.key = key

    def sql(self):
        return "uid IN (SELECT value FROM json_each(?))", [json.dumps(sorted(self.key.uids))]


def parseSearchXoverlaps(parser, name):
    """
    The SEARCH registry's parser of C{XOVERLAPS}.
    """
    start, end = parseWindow(parser.next("XOVERLAPS start"), parser.next("XOVERLAPS end"))
    markGroupware(parser.context)
    key = XoverlapsKey(parser.context, start, end)
    if parser.context is not None:
        parser.prepareWith(key.prepare)
    return key


# -- XFREEBUSY -------------------------------------------------------------------------------

#: An address a viewer may ask about (no space, quote, control character).
_ADDRESS = re.compile(r"[^\s\"\\()@]+(@[^\s\"\\()@]+)?\Z")

#: The rights that let a viewer see a calendar's free/busy times, and its details.
_TIMES_RIGHTS = frozenset("01r")
_DETAIL_RIGHTS = frozenset("1r")


def viewedCalendars(viewer, owner, detailed):
    """
    The calendars of C{owner} that C{viewer} may see free/busy of (R-FB-2),
    for L{gateway.interfaces.ICalendarQueries.generateView}.

    @param viewer: the asking L{gateway.interfaces.IAccount}.
    @param owner: the calendars' account.
    @param detailed: whether C{(DETAILED)} was asked (R-FB-3).
    @return: C{dict} of calendar name to whether its details are given.
    """
    from gateway.store.calendar import calendarMailboxes

    found = {}
    for name in calendarMailboxes(owner.mailStore):
        if owner.address == viewer.address:
            rights = _DETAIL_RIGHTS
        else:
            access = viewer.access
            rights = access.rights(access.nameOf(Location(owner.address, name)))
        if rights & _TIMES_RIGHTS:
            found[name] = bool(detailed and rights & _DETAIL_RIGHTS)
    return found


@command("XFREEBUSY", AUTH)
def do_XFREEBUSY(session, tag, args):
    """
    C{XFREEBUSY who "start" "end" [(DETAILED)]}: the VFREEBUSY of an account
    over the calendars the viewer has C{0}, C{1} or C{r} on, as a literal.
    """
    markGroupware(session)
    args.space()
    raw = args.astring()
    args.space()
    startToken = args.astring()
    args.space()
    endToken = args.astring()
    detailed = False
    if not args.atEnd():
        args.space()
        options = args.parenList()
        if [str(o).upper() if isinstance(o, str) else o for o in options] != ["DETAILED"]:
            raise bad("XFREEBUSY takes the option (DETAILED) only")
        detailed = True
    args.end()
    try:
        start, end = parseWindow(startToken, endToken)
    except ValueError as e:
        raise bad("XFREEBUSY: %s" % (e,)) from None
    try:
        who = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad("XFREEBUSY: the address is UTF-8") from None
    name = who[1:] if who.startswith("~") else who
    if not _ADDRESS.match(name):
        raise bad("XFREEBUSY: %r is not an account name or address" % (who[:80],))
    viewer = session.account
    address = (name if "@" in name else "%s@%s" % (name, domainOf(viewer.address))).lower()
    record = session.context.directory.resolve(address)
    if record is None:
        d = succeed(_emptyDocument(address, start, end))
    else:
        owner = session.context.realm.accountFor(record.address)
        d = _ownerView(session, viewer, owner, address, start, end, detailed)

    def answer(document):
        session.sendUntagged(b"XFREEBUSY %s {%d}\r\n%s" % (mimeparts.imapString(who), len(document), document))
    return d.addCallback(answer)


def _emptyDocument(address, start, end):
    """
    The answer for an unknown address (R-FB-4): no period, as for an
    account with nothing visible.
    """
    from gateway.store.calendar import renderFreeBusy

    return renderFreeBusy(address, start, end, [])


def _ownerView(session, viewer, owner, address, start, end, detailed):
    from gateway.store.calendar import synchronizeCalendars

    d = synchronizeCalendars(owner)
    d.addCallback(lambda _: calendarEngine(session).generateView(
        owner, viewedCalendars(viewer, owner, detailed), start, end, organizer=address))
    return d
