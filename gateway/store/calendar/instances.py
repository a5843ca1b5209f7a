# -*- test-case-name: tests.test_calendar_instances -*-
"""
The occurrences of each message of a calendar mailbox in a window: what
XMAPI's C{FETCH XINSTANCES} lists and C{SEARCH XOVERLAPS} matches
(C{docs/xmapi.md} R-INST-1..4, R-SRCH-4, R-SRCH-6).

They come from the expansion free/busy uses
(L{gateway.store.calendar.periods.occurrences}) over the events the mailbox's
summaries hold, so no body is parsed for a summarized message, and a
message whose bounds are far from the window is not expanded at all.  The
components of one C{UID} are merged within the mailbox first (the latest
version of each instance counts); each occurrence then belongs to the
message holding the component it came from, so an override kept in a
message of its own is that message's occurrence, and the series' message
no longer lists the instance it replaced.

L{gateway.store.calendar.FreeBusyCache.instances} and
L{gateway.store.calendar.FreeBusyCache.overlapping} answer them (and keep
the answer for a window until the mailbox changes).
"""

import collections
from datetime import timedelta
from typing import NamedTuple, Optional

from gateway.store.calendar.periods import _windowUTC, occurrences

#: The busy type of a free occurrence (cancelled, transparent, declined).
FREE = "FREE"

#: The longest window a client may ask for (R-INST-4, R-FB-5).
MAX_WINDOW = timedelta(days=366)


class BadWindow(ValueError):
    """
    A window that ends before it starts, or that is too long (R-INST-4).
    """


class Instance(NamedTuple):
    """
    One occurrence of a message's event, as C{XINSTANCES} lists it.
    """

    #: Aware UTC C{datetime}.
    start: object
    #: Aware UTC C{datetime} (the start for an instant).
    end: object
    #: C{"BUSY"}, C{"BUSY-TENTATIVE"}, C{"BUSY-UNAVAILABLE"} or L{FREE}.
    fbtype: str
    #: The original start of the instance in UTC, C{None} for a single event.
    recurrenceId: Optional[object]


def checkWindow(start, end):
    """
    A client's window in UTC.

    @param start: a C{datetime} (naive means UTC) or C{date}.
    @param end: likewise (exclusive).
    @return: C{(start, end)}, aware UTC C{datetime}s.
    @raise BadWindow: unless C{start < end <= start + MAX_WINDOW}.
    """
    start, end = _windowUTC(start), _windowUTC(end)
    if end <= start:
        raise BadWindow("the window must end after it starts")
    if end - start > MAX_WINDOW:
        raise BadWindow("the window may be at most %d days long" % (MAX_WINDOW.days,))
    return start, end


def byMessage(parsedMailbox, events, start, end, zone, owner, seriesCache=None):
    """
    The occurrences of a mailbox's messages that overlap C{[start, end)}.

    @param parsedMailbox: the mailbox's L{gateway.store.calendar.summaries.ParsedMailbox}.
    @param events: its items, as C{parsedMailbox.update} returned them.
    @param start: aware UTC C{datetime}.
    @param end: aware UTC C{datetime}.
    @param zone: the account's C{tzinfo} (dates and floating times).
    @param owner: the account's addresses (its C{PARTSTAT}).
    @param seriesCache: a L{gateway.store.calendar.periods.SeriesCache} or C{None}.
    @return: C{dict} of UID to a C{tuple} of L{Instance} in start order,
        only for messages with at least one.
    """
    found = occurrences(events, start, end, zone, owner, seriesCache)
    owners = parsedMailbox.owners()
    if any(id(occurrence.event) not in owners for occurrence in found):
        owners = parsedMailbox.owners(refresh=True)  # some were parsed just now
    result = collections.defaultdict(list)
    for occurrence in found:
        uid = owners.get(id(occurrence.event))
        if uid is not None:
            result[uid].append(Instance(occurrence.start, occurrence.end, occurrence.fbtype or FREE,
                                        occurrence.recurrenceId))
    return {uid: tuple(sorted(listed, key=lambda instance: (instance.start, instance.end)))
            for uid, listed in result.items()}
