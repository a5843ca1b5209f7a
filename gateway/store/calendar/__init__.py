# -*- test-case-name: tests.test_calendar -*-
"""
Free/busy information computed from an account's calendar mailboxes.

Every mailbox of class C{IPF.Appointment} is a calendar.  Its messages are
RFC 5322 messages carrying a C{text/calendar} part (the whole body, or a part
of a multipart message, in any transfer encoding).  L{freeBusy} reads their
C{VEVENT}s and returns one C{VFREEBUSY} (RFC 5545 3.6.4, RFC 4791 7.10) for
a time window:

  - C{RRULE}/C{RDATE}/C{EXDATE} and C{RECURRENCE-ID} overrides are expanded
    per instance in the event's own time zone (as C{recurring-ical-events}
    does it: by it, or for series in IANA zones directly with C{dateutil});
    components with the same C{UID} are merged across messages and
    mailboxes first, so an override may arrive in a message of its own.
  - Dates (all-day events) and floating times are in the account's time
    zone (L{gateway.interfaces.IAccountRecord.timezone}).
  - Free: C{STATUS:CANCELLED}, C{TRANSP:TRANSPARENT},
    C{X-MICROSOFT-CDO-BUSYSTATUS:FREE}, and invitations the owner declined
    (an C{ATTENDEE} that is one of the account's addresses, any alias, with
    C{PARTSTAT=DECLINED}).
  - C{BUSY-UNAVAILABLE}: C{X-MICROSOFT-CDO-BUSYSTATUS:OOF}.
  - C{BUSY-TENTATIVE}: C{STATUS:TENTATIVE}, C{X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE},
    or the owner's C{PARTSTAT=TENTATIVE}.
  - C{BUSY}: everything else (including invitations not yet answered).
  - Messages of iTIP C{METHOD:CANCEL} cancel what they name; replies and
    counter-proposals (C{REPLY}, C{COUNTER}, ...) are not events.  Of
    several copies of one instance (same C{UID} and C{RECURRENCE-ID}) the
    one with the highest C{SEQUENCE}, then C{DTSTAMP}, counts.
  - Periods are in UTC, merged per type, clipped to the window; a stronger
    type (C{BUSY-UNAVAILABLE} > C{BUSY} > C{BUSY-TENTATIVE}) removes the
    time it covers from the weaker ones, so no instant is listed twice.
  - A series that would have more than C{MAX_OCCURRENCES} occurrences in the
    window (C{FREQ=SECONDLY} from a hostile invitation) is skipped with a
    warning.

Everything here is synchronous and reads message files.  A server uses
L{FreeBusyCache.generate}, after L{synchronizeCalendars} so that changes
made by other programs are seen: it looks at the calendar mailboxes' state
on the calling (reactor) thread, answers a cached document at once, and
computes anything else in a thread, so IMAP and POP3 sessions on the same
reactor are not held up.

L{FreeBusyCache} keeps finished documents (valid while no calendar mailbox's
C{highestModSeq} changes), every message's parsed events, and the expanded
instances of each series per window, so a change re-parses only the new
messages and re-expands only the series it touched.  Parsing is the costly
part (about 0.6 ms an event with C{icalendar}), so it is done when a message
is added: the mail store summarizes every message delivered, appended,
copied or moved into a calendar into the account's summary file
(L{summaries.summarizeAdded}).  A request, the first after a restart too,
then reads no message, and parses again only the series near the window
that are not simple (L{series}: zones defined only by a C{VTIMEZONE},
C{RDATE} periods, ranges).  Messages without a summary (put into the
Maildir by another program, or when the file was deleted) are read by the
request.  Either way a message holding one plain event of the common form
is read without C{icalendar} (L{reader}); at a request, one of another
form is only sniffed for its C{UID} and rough times until a window comes
near it (L{sniff}).  See C{bench/freebusy.py}.

The same cache answers XMAPI (C{docs/xmapi.md}) from the same parsed
events and the same expansion: L{FreeBusyCache.instances} and
L{FreeBusyCache.overlapping} (C{FETCH XINSTANCES}, C{SEARCH XOVERLAPS}; in a
thread with L{FreeBusyCache.generateInstances} and
L{FreeBusyCache.generateOverlapping}), L{FreeBusyCache.view} (C{XFREEBUSY}:
the calendars a viewer may see, detailed where allowed; in a thread with
L{FreeBusyCache.generateView}); L{publish} keeps an account's
C{freebusy.vfb} and C{private/freebusy.eml} current in its file store.

Modules: L{parse} (messages to events), L{reader} (the common plain event
without C{icalendar}), L{summaries} (parsed events kept
per mailbox and on disk), L{series} (simple series expanded directly),
L{periods} (events to occurrences and busy periods: the one expansion),
L{instances} (occurrences per message, for XMAPI's C{XINSTANCES} and
C{XOVERLAPS}), L{freebusy} (the document and the cache, which answers the
per-message queries too), L{publish} (the published files); the names
below are re-exported from them.
"""

from gateway.store.calendar.freebusy import (
    PRODID,
    FreeBusyCache,
    calendarMailboxes,
    freeBusy,
    renderFreeBusy,
    synchronizeCalendars,
)
from gateway.store.calendar.instances import FREE, MAX_WINDOW, BadWindow, Instance, checkWindow
from gateway.store.calendar.parse import (
    CALENDAR_CLASS,
    CALENDAR_TYPES,
    calendarParts,
    loadMessage,
    parseCalendar,
    parseMessage,
    sniff,
)
from gateway.store.calendar.periods import (
    BUSY,
    FBTYPES,
    MAX_OCCURRENCES,
    TENTATIVE,
    UNAVAILABLE,
    Occurrence,
    accountZone,
    classify,
    computePeriods,
    estimateOccurrences,
    mergePeriods,
    occurrences,
    overlaps,
    ownerAddresses,
    resolvePeriods,
    spanOf,
    subtractPeriods,
    toUTC,
    utcSpan,
)

__all__ = [
    "FREE", "MAX_WINDOW", "BadWindow", "Instance", "Occurrence", "checkWindow", "occurrences", "overlaps",
    "utcSpan",
    "BUSY", "CALENDAR_CLASS", "CALENDAR_TYPES", "FBTYPES", "MAX_OCCURRENCES", "PRODID", "TENTATIVE",
    "UNAVAILABLE", "FreeBusyCache", "accountZone", "calendarMailboxes", "calendarParts", "classify",
    "computePeriods", "estimateOccurrences", "freeBusy", "loadMessage", "mergePeriods", "ownerAddresses",
    "parseCalendar", "parseMessage", "renderFreeBusy", "resolvePeriods", "sniff", "spanOf",
    "subtractPeriods", "synchronizeCalendars", "toUTC",
]
