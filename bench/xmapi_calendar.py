#!/usr/bin/env python
"""
XMAPI calendar benchmark (issue 12): C{SEARCH XOVERLAPS} and C{FETCH
XINSTANCES} for a one-week window on a Calendar of 10,000 items of which
500 recur, at the store level (what the IMAP commands will call), against
the client-side way.

    .venv/bin/python bench/xmapi_calendar.py [--events 10000] [--recurring 500] [--runs 5]

Builds a throw-away account (in a temporary folder) whose Calendar mailbox
holds one message per event, as C{bench/freebusy.py} does (single events
spread over a year, weekly and daily series in Europe/Berlin with EXDATEs
and moved instances in messages of their own), except that every fourth
series has no end (no C{COUNT}), so that bounds cannot exclude it.  Then
prints the median of C{--runs} runs of:

  - XOVERLAPS, first request: a new L{FreeBusyCache} (a server just
    started) over the summaries the mail store wrote as the messages were
    appended;
  - XOVERLAPS, a day later: the parsed events kept, the window one day
    later than the last (a week view moved by a day: the series'
    occurrences are kept per 28-day block, so little is expanded again);
  - XOVERLAPS, far window: the window 70 days further each time (every
    series near it expanded anew, over the two blocks it touches);
  - XINSTANCES of the matching UIDs for the same window as the search just
    before it (the connector's flow: the answer is kept per window);
  - XINSTANCES, new window, without a search before it;
  - the client-side way (the issue's peer): read every message's body (as
    C{FETCH 1:* BODY[]} would hand it over, without the IMAP framing),
    parse it with C{icalendar} and expand it with C{recurring-ical-events}
    for the week; the UIDs it finds are checked against XOVERLAPS'.

Results with the machine and date go in C{bench/RESULTS.md}.
"""

import argparse
import gc
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

# bench/http.py would shadow the standard library's http package (which
# Twisted imports) if this script's own folder stayed first on the path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import importlib.util  # noqa: E402

import icalendar  # noqa: E402
import recurring_ical_events  # noqa: E402
from twisted.internet.task import Clock  # noqa: E402

from gateway.service import makeContext  # noqa: E402
from gateway.store.calendar import FreeBusyCache, parse  # noqa: E402
from tests.support import makeDataRoot, makeTestConfig  # noqa: E402

# The messages are made as bench/freebusy.py makes them.
_spec = importlib.util.spec_from_file_location("bench_freebusy", os.path.join(_HERE, "freebusy.py"))
_freebusy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_freebusy)

UTC = timezone.utc
WEEK_START = datetime(2026, 3, 2, tzinfo=UTC)
WEEK = timedelta(weeks=1)
GOAL = 0.05


def makeMessages(events, recurring, rng):
    return _freebusy.makeMessages(events, recurring, rng, endless=True)


median = _freebusy.median


def clientSide(mailbox, start, end):
    """
    The client-side way: every body, parsed and expanded for the window.

    @return: C{set} of the UIDs with an occurrence in it.
    """
    found = set()
    for uid in mailbox.uids():
        f = mailbox.openMessage(uid)
        try:
            data = f.read()
        finally:
            f.close()
        calendar = icalendar.Calendar()
        for payload in parse.calendarParts(data):
            for component in icalendar.Calendar.from_ical(payload).walk("VEVENT"):
                calendar.add_component(component)
        if recurring_ical_events.of(calendar, skip_bad_series=True).between(start, end):
            found.add(uid)
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--recurring", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=12)
    options = parser.parse_args(argv)

    folder = tempfile.mkdtemp(prefix="gateway-bench-xmapi-")
    try:
        makeDataRoot(os.path.join(folder, "data"))
        context = makeContext(makeTestConfig(os.path.join(folder, "data")), clock=Clock())
        context.directory.setAccount("demo@example.test", timezone="Europe/Berlin")
        account = context.realm.accountFor("demo@example.test")
        mailbox = account.mailStore.getMailbox("Calendar")
        messages = makeMessages(options.events, options.recurring, random.Random(options.seed))
        t = time.perf_counter()
        for data in messages:
            mailbox.appendMessage(data)
        built = time.perf_counter() - t
        print("machine: %s, Python %s, %s" % (platform.node(), platform.python_version(),
                                              datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")))
        print("calendar: %d events (%d recurring, a quarter without end) in %d messages, appended in %.1f s;"
              " window %s + 1 week" % (options.events, options.recurring, len(messages), built, WEEK_START.date()))

        week = (WEEK_START, WEEK_START + WEEK)
        first, found = median(lambda: FreeBusyCache().overlapping(account, mailbox, *week), options.runs,
                              prepare=gc.collect)
        print("XOVERLAPS, first request (from the summaries):   %8.4f s  (%d UIDs)" % (first, len(found)))

        cache = FreeBusyCache()
        cache.overlapping(account, mailbox, *week)
        shift = [0]

        def nextWeek():
            shift[0] += 1
            start = WEEK_START + timedelta(days=shift[0])
            return start, start + WEEK

        def search():
            return cache.overlapping(account, mailbox, *nextWeek())

        fresh, _ = median(search, options.runs)
        print("XOVERLAPS, window a day later (blocks kept):     %8.4f s  goal < %.3f s: %s"
              % (fresh, GOAL, "met" if fresh < GOAL else "NOT met"))

        jump = [0]

        def farSearch():
            jump[0] += 1
            start = WEEK_START + timedelta(days=400 + 70 * jump[0])
            return cache.overlapping(account, mailbox, start, start + WEEK)

        far, _ = median(farSearch, options.runs)
        print("XOVERLAPS, far window (series expanded anew):    %8.4f s  goal < %.3f s: %s"
              % (far, GOAL, "met" if far < GOAL else "NOT met"))

        def searchThenFetch():
            window = nextWeek()
            uids = cache.overlapping(account, mailbox, *window)
            t = time.perf_counter()
            cache.instances(account, mailbox, uids, *window)
            return time.perf_counter() - t

        fetch = statistics.median([searchThenFetch() for _ in range(options.runs)])
        print("XINSTANCES of the matches, after the search:     %8.4f s  goal < %.3f s: %s"
              % (fetch, GOAL, "met" if fetch < GOAL else "NOT met"))

        def fetchOnly():
            window = nextWeek()
            return cache.instances(account, mailbox, mailbox.uids(), *window)

        fetchNew, _ = median(fetchOnly, options.runs)
        print("XINSTANCES 1:*, new window (no search before):   %8.4f s  goal < %.3f s: %s"
              % (fetchNew, GOAL, "met" if fetchNew < GOAL else "NOT met"))

        peerTime, peerFound = median(lambda: clientSide(mailbox, *week), max(1, options.runs // 2))
        agree = "agrees" if peerFound == found else "DIFFERS (%d UIDs)" % (len(peerFound),)
        print("client side: every body + recurring-ical-events:  %8.4f s  (%s); XOVERLAPS new window %.0fx faster,"
              " XINSTANCES new window %.0fx faster; XOVERLAPS far window %.0fx faster"
              % (peerTime, agree, peerTime / fresh, peerTime / fetchNew, peerTime / far))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
