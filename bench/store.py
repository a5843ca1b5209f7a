#!/usr/bin/env python
"""
Mail store benchmark: index build and open times for a large Maildir.

    .venv/bin/python bench/store.py --messages 100000

Builds a Maildir of small generated messages under C{bench/work/} (kept
between runs; C{--rebuild} makes a new one), then measures, as the median of
C{--runs} runs:

  - cold index build: the index file removed, C{MailStore(...)} +
    C{getMailbox('INBOX')} (which indexes every file synchronously);
  - warm open: a new C{MailStore} on the same folder, C{getMailbox} +
    C{uids()} (target < 0.1 s for 100,000 messages), and C{messages()} of all;
  - the cheap "nothing changed" check and a forced full rescan;
  - append rate through the store (tmp/, fsync, rename, index transaction).

"Cold" means the index is cold; the message files are in the page cache after
the first run.  Results with the machine and date go in C{bench/RESULTS.md}.
"""

import argparse
import os
import platform
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import task  # noqa: E402

from gateway.store import index, maildir  # noqa: E402
from gateway.store.mail import MailStore  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def makeMessage(n):
    return (
        "From: Sender %d <sender%d@example.org>\r\n"
        "To: user@example.com\r\n"
        "Subject: Benchmark message number %d\r\n"
        "Date: Mon, 1 Jan 2024 12:00:00 +0000\r\n"
        "Message-ID: <%d@bench.example.org>\r\n"
        "\r\n"
        "Hello,\r\n\r\nthis is message %d.\r\n" % (n, n, n, n, n)
    ).encode("ascii")


def buildMaildir(root, count):
    """
    Write C{count} messages straight into C{root/INBOX/cur} (as another
    program would have: no index).
    """
    inbox = os.path.join(root, "INBOX")
    maildir.ensureMaildir(inbox)
    cur = os.path.join(inbox, "cur")
    start = time.time()
    for n in range(count):
        data = makeMessage(n)
        flags = ":2,S" if n % 3 else ":2,"
        name = "%d.M%dP1Q%d.bench,S=%d,W=%d%s" % (1700000000 + n, n % 1000000, n, len(data), len(data), flags)
        with open(os.path.join(cur, name), "wb") as f:
            f.write(data)
    return time.time() - start


def removeIndex(root):
    for suffix in ("", "-wal", "-shm"):
        maildir.removeQuietly(os.path.join(root, maildir.INDEX_NAME + suffix))


def timed(f):
    start = time.perf_counter()
    result = f()
    return time.perf_counter() - start, result


def median(values):
    return statistics.median(values)


def benchColdBuild(root, runs):
    times = []
    for _ in range(runs):
        removeIndex(root)

        def build():
            store = MailStore(root, reactor=task.Clock())
            mailbox = store.getMailbox("INBOX")
            count = len(mailbox.uids())
            store.close()
            return count
        elapsed, count = timed(build)
        times.append(elapsed)
    return median(times), count


def benchWarmOpen(root, runs):
    openTimes, allTimes, count = [], [], 0
    for _ in range(runs):
        def open_():
            store = MailStore(root, reactor=task.Clock())
            mailbox = store.getMailbox("INBOX")
            return store, mailbox, mailbox.uids()
        elapsed, (store, mailbox, uids) = timed(open_)
        openTimes.append(elapsed)
        elapsed, infos = timed(lambda mailbox=mailbox, uids=uids: mailbox.messages(uids))
        allTimes.append(elapsed)
        count = len(infos)
        store.close()
    return median(openTimes), median(allTimes), count


def benchChecks(root, runs):
    store = MailStore(root, reactor=task.Clock())
    mailbox = store.getMailbox("INBOX")
    row = mailbox._row("newmtime, newsynced, curmtime, cursynced")
    cheap = median([timed(lambda: index.dirtyDirectories(row, mailbox._path()))[0] for _ in range(runs * 10)])
    rescans = []
    for _ in range(runs):
        store._conn.execute("UPDATE mailboxes SET curmtime = 0, newmtime = 0 WHERE id = ?", (mailbox._id,))
        rescans.append(timed(lambda: index.scanMailbox(store._conn, mailbox._id, mailbox._path()))[0])
    store.close()
    return cheap, median(rescans)


def benchAppend(root, count):
    store = MailStore(root, reactor=task.Clock())
    try:
        store.createMailbox("Append")
    except Exception:
        pass
    mailbox = store.getMailbox("Append")
    data = makeMessage(1) * 20
    elapsed, _ = timed(lambda: [mailbox.appendMessage(data) for _ in range(count)])
    mailbox.setFlags(mailbox.uids(), ["\\Deleted"], "+")
    mailbox.expunge()
    store.close()
    return count / elapsed


def benchLmtpVsDovecot(args):
    """
    PLACEHOLDER for the lead: LMTP delivery rate of gateway vs Dovecot's
    LMTP on the same machine, same messages, as a ratio.  Not implemented
    here; it returns C{None} and no numbers are printed for it.
    """
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--appends", type=int, default=500)
    parser.add_argument("--work", default=os.path.join(HERE, "work", "store"))
    parser.add_argument("--rebuild", action="store_true", help="make a new Maildir")
    args = parser.parse_args(argv)

    root = os.path.join(args.work, "%d" % (args.messages,), "mail")
    if args.rebuild and os.path.exists(root):
        shutil.rmtree(root)
    print("machine: %s, %s, Python %s, SQLite %s" % (
        platform.node(), platform.processor() or platform.machine(), platform.python_version(),
        __import__("sqlite3").sqlite_version))
    print("date: %s" % (time.strftime("%Y-%m-%d %H:%M:%S"),))
    if not os.path.isdir(os.path.join(root, "INBOX", "cur")):
        elapsed = buildMaildir(root, args.messages)
        print("wrote %d message files in %.1f s" % (args.messages, elapsed))

    cold, count = benchColdBuild(root, args.runs)
    print("cold index build (synchronize from nothing), %d messages: %.3f s  (%.0f msg/s)"
          % (count, cold, count / cold))
    warmOpen, warmAll, count = benchWarmOpen(root, args.runs)
    print("warm open: getMailbox + uids(): %.4f s (target < 0.1 s)" % (warmOpen,))
    print("warm open: messages() of all %d: %.3f s" % (count, warmAll))
    cheap, rescan = benchChecks(root, args.runs)
    print("synchronize, nothing changed (stat new/ and cur/): %.6f s" % (cheap,))
    print("synchronize, full rescan with nothing to do: %.3f s" % (rescan,))
    rate = benchAppend(root, args.appends)
    print("appendMessage (fsync'd), %d x %d bytes: %.0f msg/s" % (args.appends, len(makeMessage(1)) * 20, rate))
    ratio = benchLmtpVsDovecot(args)
    if ratio is None:
        print("LMTP delivery rate vs Dovecot: not measured (placeholder, see benchLmtpVsDovecot)")
    else:
        print("LMTP delivery rate vs Dovecot: %.2f" % (ratio,))


if __name__ == "__main__":
    main()
