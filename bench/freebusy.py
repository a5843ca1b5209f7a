#!/usr/bin/env python
"""
Free/busy benchmark: generation time for a calendar of 10,000 events of
which 500 recur (issue 5's goal: under 0.5 s).

    .venv/bin/python bench/freebusy.py [--events 10000] [--recurring 500] [--runs 5]

Builds a throw-away account (in a temporary folder) whose Calendar mailbox
holds one message per event: single events spread over a year around the
window, weekly and daily series in Europe/Berlin (some with EXDATEs, every
tenth with a moved instance in a message of its own), a few all-day,
tentative, cancelled and out-of-office events.  Then prints, as the median of
C{--runs} runs, for an 8-week window, each with a L{FreeBusyCache} (which
keeps the account's summaries in C{mail/.gateway-freebusy.sqlite}):

  - first request: a new cache (a server just started) over the summaries
    the mail store wrote as the messages were appended (as it does for LMTP
    delivery, IMAP APPEND, COPY and MOVE); reads no message and parses
    nothing (the series are kept as values and expanded directly);
  - rebuild: the same with the summary file deleted, as for messages that
    another program put into the Maildir: reads every message, sniffs plain
    events, parses those near the window and every series, writes the
    summaries;
  - recompute after one new event: only the new message is read;
  - new window: a window one day later than the last (parsed events kept,
    every series expanded anew): the generation time proper;
  - cached: nothing changed;
  - the part of a request that stays on the reactor thread with
    C{FreeBusyCache.generate} (looking at the mailboxes' state); everything
    else runs in a thread;
  - peer: the same events handed all at once to C{recurring-ical-events}
    (the obvious implementation), from already parsed components, against
    which the new-window time is given as a ratio.

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

import icalendar  # noqa: E402
import recurring_ical_events  # noqa: E402
from twisted.internet.task import Clock  # noqa: E402

from gateway.service import makeContext  # noqa: E402
from gateway.store.calendar import FreeBusyCache, freebusy, parse, summaries  # noqa: E402
from tests.support import makeDataRoot, makeTestConfig  # noqa: E402

UTC = timezone.utc
WINDOW_START = datetime(2026, 3, 2, tzinfo=UTC)
WINDOW_END = WINDOW_START + timedelta(weeks=8)


def wrap(*lines):
    body = "\r\n".join(("BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//EN", "METHOD:REQUEST")
                       + lines + ("END:VCALENDAR", ""))
    return ("From: organizer@example.org\r\nTo: demo@example.test\r\nSubject: invitation\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/calendar; charset=utf-8; method=REQUEST\r\n\r\n"
            + body).encode("utf-8")


def event(uid, *lines):
    return ("BEGIN:VEVENT", "UID:" + uid, "DTSTAMP:20260101T000000Z", "SUMMARY:Event " + uid,
            "ORGANIZER:mailto:organizer@example.org",
            "ATTENDEE;PARTSTAT=ACCEPTED:mailto:demo@example.test") + lines + ("END:VEVENT",)


def local(when):
    return when.strftime("%Y%m%dT%H%M%S")


def makeMessages(events, recurring, rng, endless=False):
    """
    @param endless: leave every fourth series without an end (no C{COUNT}),
        so that bounds cannot exclude it (C{bench/xmapi_calendar.py}).
    @return: C{list} of message C{bytes}, one event (or override) each.
    """
    messages = []
    base = datetime(2025, 9, 1, 0, 0)
    extras = ["", "STATUS:TENTATIVE", "STATUS:CANCELLED", "X-MICROSOFT-CDO-BUSYSTATUS:OOF",
              "TRANSP:TRANSPARENT"]
    for n in range(events - recurring):
        start = base + timedelta(days=rng.randrange(365), hours=rng.randrange(7, 19))
        extra = extras[n % 25] if n % 25 < len(extras) else ""
        if n % 50 == 7:
            lines = ("DTSTART;VALUE=DATE:" + start.strftime("%Y%m%d"),)
        else:
            lines = ("DTSTART;TZID=Europe/Berlin:" + local(start),
                     "DTEND;TZID=Europe/Berlin:" + local(start + timedelta(minutes=rng.choice((30, 60, 90)))))
        messages.append(wrap(*event("single-%d" % (n,), *(lines + ((extra,) if extra else ())))))
    for n in range(recurring):
        start = base + timedelta(days=rng.randrange(180), hours=rng.randrange(7, 19))
        freq = "DAILY;INTERVAL=3" if n % 5 == 0 else "WEEKLY"
        count = "" if endless and n % 4 == 0 else ";COUNT=%d" % (rng.randrange(20, 80),)
        lines = ["DTSTART;TZID=Europe/Berlin:" + local(start),
                 "DTEND;TZID=Europe/Berlin:" + local(start + timedelta(hours=1)),
                 "RRULE:FREQ=%s%s" % (freq, count)]
        if n % 3 == 0:
            lines.append("EXDATE;TZID=Europe/Berlin:" + local(start + timedelta(weeks=2)))
        uid = "series-%d" % (n,)
        messages.append(wrap(*event(uid, *lines)))
        if n % 10 == 1:
            moved = start + timedelta(weeks=3)
            messages.append(wrap(*event(uid, "RECURRENCE-ID;TZID=Europe/Berlin:" + local(moved),
                                        "DTSTART;TZID=Europe/Berlin:" + local(moved + timedelta(hours=2)),
                                        "DTEND;TZID=Europe/Berlin:" + local(moved + timedelta(hours=3)))))
    rng.shuffle(messages)
    return messages


def median(f, runs, prepare=None):
    """
    The median time of C{runs} calls of C{f}, and its last result; each
    call after C{prepare()} when given (not timed).
    """
    times = []
    result = None
    for _ in range(runs):
        if prepare is not None:
            prepare()
        t = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def peer(components):
    """The obvious implementation: every event through recurring-ical-events."""
    cal = icalendar.Calendar()
    for component in components:
        cal.add_component(component)
    busy = []
    for instance in recurring_ical_events.of(cal, skip_bad_series=True).between(WINDOW_START, WINDOW_END):
        busy.append(instance["DTSTART"].dt)
    return busy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--recurring", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=5)
    options = parser.parse_args(argv)

    folder = tempfile.mkdtemp(prefix="gateway-bench-freebusy-")
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
        print("machine: %s, Python %s, %s" % (platform.node(), platform.python_version(),
                                              datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")))
        built = time.perf_counter() - t
        print("calendar: %d events (%d recurring) in %d messages, appended in %.1f s (%.2f ms each, summaries"
              " included); window %s..%s" % (options.events, options.recurring, len(messages), built,
                                             1000 * built / len(messages), WINDOW_START.date(), WINDOW_END.date()))

        summaryPath = os.path.join(account.mailStore.path, summaries.SUMMARY_NAME)

        # Each run is a server's first request: the garbage of the run before
        # (a whole cache) is collected first, as a new process has none.
        first, document = median(lambda: FreeBusyCache().get(account, WINDOW_START, WINDOW_END, now=WINDOW_START),
                                 options.runs, prepare=gc.collect)
        print("first request (summarized on delivery; or after a restart): %8.3f s  goal < 0.5 s: %s"
              "  (%d bytes, %d periods)" % (first, "met" if first < 0.5 else "NOT met", len(document),
                                            document.count(b"\nFREEBUSY")))

        def rebuild():
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(summaryPath + suffix):
                    os.remove(summaryPath + suffix)
            return FreeBusyCache().get(account, WINDOW_START, WINDOW_END, now=WINDOW_START)

        cold, again = median(rebuild, max(1, options.runs // 2), prepare=gc.collect)
        print("rebuild, summary file deleted (read, sniff, parse near):     %8.3f s%s"
              % (cold, "" if again == document else "  DIFFERENT DOCUMENT"))

        cache = FreeBusyCache()
        cache.get(account, WINDOW_START, WINDOW_END)
        counter = [0]

        def recompute():
            counter[0] += 1
            mailbox.appendMessage(wrap(*event("extra-%d" % (counter[0],),
                                              "DTSTART:20260310T%02d0000Z" % (counter[0] % 10 + 6,),
                                              "DTEND:20260310T%02d3000Z" % (counter[0] % 10 + 6,))))
            t = time.perf_counter()
            cache.get(account, WINDOW_START, WINDOW_END)
            return time.perf_counter() - t

        warm = statistics.median([recompute() for _ in range(options.runs)])
        print("recompute after one new event:                               %8.3f s  goal < 0.5 s: %s"
              % (warm, "met" if warm < 0.5 else "NOT met"))

        shift = [0]

        def newWindow():
            shift[0] += 1
            start = WINDOW_START + timedelta(days=shift[0])
            return cache.get(account, start, start + (WINDOW_END - WINDOW_START))

        fresh, _ = median(newWindow, options.runs)
        print("new window (parsed events kept, series expanded anew):       %8.3f s  goal < 0.5 s: %s"
              % (fresh, "met" if fresh < 0.5 else "NOT met"))

        cached, _ = median(lambda: cache.get(account, WINDOW_START, WINDOW_END), options.runs * 20)
        print("cached document:                                             %8.6f s" % (cached,))
        onReactor, _ = median(lambda: freebusy._Calendars(account), options.runs * 20)
        print("on the reactor thread per request (mailboxes' state):        %8.6f s" % (onReactor,))

        items = [item for entry in cache._parsed[account.address].values()
                 for loaded in entry.events.values() for item in loaded]
        unparsed = sum(1 for item in items if isinstance(item, parse.Unparsed) and not item.parsed)
        print("items never parsed (far from every window asked for): %d of %d" % (unparsed, len(items)))
        components = [event.component for message in makeMessages(options.events, options.recurring,
                                                                   random.Random(options.seed))
                      for event in parse.parseMessage(message)]
        peerTime, _ = median(lambda: peer(components), options.runs)
        print("peer: all events via recurring-ical-events (parsed): %8.3f s; new window is %.1fx faster"
              % (peerTime, peerTime / fresh))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
