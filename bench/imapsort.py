#!/usr/bin/env python
"""
SORT, THREAD and QRESYNC benchmark: gateway's IMAP server beside Dovecot 2.3
(imapd, over a copy of the same Maildir) on loopback, in one run.

    .venv/bin/python bench/imapsort.py [--messages 50000] [--runs 3]
                                       [--changes 1000] [--quick]

The INBOX holds C{--messages} messages with distinct dates (not in arrival
order), subjects of threads of one to nine messages (C{Re:} and C{Fwd:}
prefixes, References and In-Reply-To chains) and From names from a list of
a thousand.  Measured, medians of C{--runs} after one warm-up (Dovecot fills
its cache of sort fields on the first SORT; gateway builds its index on the
first SELECT and its cache of sort keys on the first SORT), and the warm-up
itself (C{first ...}: one run, what a client waits for the first time):

  - C{SORT (ARRIVAL)}, C{SORT (DATE)}, C{SORT (REVERSE DATE)}, C{SORT
    (SUBJECT)}, C{SORT (FROM)} over C{ALL};
  - C{THREAD REFERENCES} over C{ALL};
  - a QRESYNC resynchronisation: another session changes the flags of
    C{--changes} messages and expunges C{--changes} others, then C{SELECT
    INBOX (QRESYNC (uidvalidity modseq))} from the modseq before the
    changes.  Each run changes other messages.

Every answer is checked: a SORT answer must be a permutation of every
message, equal to the one the other server gave where RFC 5256 fixes the
order (every key here: ties are broken by sequence number), and in the
key's order by the test's own knowledge of the messages; a THREAD answer
must hold every message once and as many threads as the other server's;
a resynchronisation must report exactly the expunged UIDs in VANISHED
(EARLIER) and a FETCH for each changed message.  A wrong answer stops the
run.  Ratios are gateway's speed over Dovecot's (above 1: gateway faster).
"""

import argparse
import os
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# bench/ itself must not be on the path: its scripts (http.py) shadow the stdlib.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.insert(0, ROOT)

from bench import imap  # noqa: E402

BASE = 1577836800  # 2020-01-01 00:00:00 UTC
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
WORDS = (
    "budget report meeting invoice travel plan release review lunch quarterly design draft server "
    "backup schedule offsite contract renewal hiring party notes agenda"
).split()
SORTS = [
    ("SORT (ARRIVAL)", b"SORT (ARRIVAL) UTF-8 ALL"),
    ("SORT (DATE)", b"SORT (DATE) UTF-8 ALL"),
    ("SORT (REVERSE DATE)", b"SORT (REVERSE DATE) UTF-8 ALL"),
    ("SORT (SUBJECT)", b"SORT (SUBJECT) UTF-8 ALL"),
    ("SORT (FROM)", b"SORT (FROM) UTF-8 ALL"),
]


def rfc2822(when):
    t = time.gmtime(when)
    return "%s, %d %s %d %02d:%02d:%02d +0000" % (
        DAYS[t.tm_wday],
        t.tm_mday,
        MONTHS[t.tm_mon - 1],
        t.tm_year,
        t.tm_hour,
        t.tm_min,
        t.tm_sec,
    )


def makeMessages(count, seed=5256):
    """
    @return: C{[(bytes, facts)]} in arrival order; C{facts} holds what the
        check needs: C{date} (seconds), C{subject} (base subject), C{from}
        (the From address's local part, lower case).
    """
    rng = random.Random(seed)
    seconds = rng.sample(range(count * 50), count)
    names = ["%s%d" % (rng.choice(WORDS), i) for i in range(1000)]
    out = []
    n = 0
    thread = 0
    while n < count:
        thread += 1
        topic = "%s %s %d" % (rng.choice(WORDS).capitalize(), rng.choice(WORDS), thread)
        ids = []
        for k in range(min(rng.randint(1, 9), count - n)):
            sender = rng.choice(names)
            when = BASE + seconds[n]
            mid = "<%d.%d@bench.example.org>" % (thread, k)
            prefix = "" if k == 0 else rng.choice(("Re: ", "RE: ", "Fwd: ", "Re: Re: "))
            headers = [
                "From: %s <%s@example.org>" % (sender.capitalize(), sender),
                "To: %s" % (imap.USER,),
                "Subject: %s%s" % (prefix, topic),
                "Date: %s" % (rfc2822(when),),
                "Message-ID: %s" % (mid,),
            ]
            if ids:
                headers.append("In-Reply-To: %s" % (ids[-1],))
                headers.append("References: %s" % (" ".join(ids[-5:]),))
            body = "Message %d of thread %d.\r\n" % (k, thread)
            data = ("\r\n".join(headers) + "\r\n\r\n" + body).encode("ascii")
            out.append((data, {"date": when, "subject": topic.lower(), "from": sender.lower()}))
            ids.append(mid)
            n += 1
    return out


def writeFolder(folder, messages, tag):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    for n, (data, _) in enumerate(messages):
        # Names sort in arrival order: both servers number them that way.
        name = "%d.M%06dP%dQ%d.bench,S=%d:2," % (1700000000 + n, n, tag, n, len(data))
        with open(os.path.join(folder, "cur", name), "wb") as f:
            f.write(data)


def numbers(answer, keyword):
    for line in answer.split(b"\r\n"):
        if line.startswith(b"* " + keyword):
            return [int(x) for x in line.split()[2:]]
    raise AssertionError("no %s response" % (keyword.decode(),))


def expectedOrder(name, facts):
    """
    The sequence numbers in the order RFC 5256 gives for C{name}, from the
    messages' own facts (ties: sequence number).
    """
    seqs = range(1, len(facts) + 1)
    if name == "SORT (ARRIVAL)":
        return list(seqs)
    if name == "SORT (DATE)":
        return sorted(seqs, key=lambda s: (facts[s - 1]["date"], s))
    if name == "SORT (REVERSE DATE)":
        return sorted(seqs, key=lambda s: (-facts[s - 1]["date"], -s))
    if name == "SORT (SUBJECT)":
        return sorted(seqs, key=lambda s: (facts[s - 1]["subject"], s))
    return sorted(seqs, key=lambda s: (facts[s - 1]["from"], s))


def threadShape(answer):
    """
    @return: (the number of top-level threads, the sorted list of message
        numbers) of a THREAD answer.
    """
    line = next(x for x in answer.split(b"\r\n") if x.startswith(b"* THREAD"))
    body = line[len(b"* THREAD") :]
    depth = tops = 0
    for ch in body:
        if ch == ord("("):
            if depth == 0:
                tops += 1
            depth += 1
        elif ch == ord(")"):
            depth -= 1
    return tops, sorted(int(x) for x in re.findall(rb"\d+", body))


def timed(client, text):
    start = time.perf_counter()
    answer = client.command(text)
    return time.perf_counter() - start, answer


def status(answer, name):
    match = re.search(rb"\[" + name + rb" (\d+)\]", answer)
    if match is None:
        raise AssertionError("no %s in %r" % (name.decode(), answer[:300]))
    return int(match.group(1))


def uidSet(uids):
    return b",".join(b"%d" % (u,) for u in sorted(uids))


def resync(port, run, changes, state):
    """
    One QRESYNC round on C{port}: remember the state, change C{changes}
    messages' flags and expunge C{changes} others from a second session,
    then time the resynchronising SELECT and check its answer.

    @param state: C{{"uids": [uids still there]}}, updated.
    @return: seconds of the SELECT.
    """
    reader = imap.Client(port)
    reader.login()
    reader.command(b"ENABLE QRESYNC")
    answer = reader.command(b"SELECT INBOX")
    validity = status(answer, b"UIDVALIDITY")
    modseq = status(answer, b"HIGHESTMODSEQ")
    reader.command(b"CLOSE")
    rng = random.Random(run)
    picked = rng.sample(state["uids"], 2 * changes)
    flagged, expunged = picked[:changes], picked[changes:]
    writer = imap.Client(port)
    writer.login()
    writer.command(b"SELECT INBOX")
    writer.command(b"UID STORE %s +FLAGS.SILENT ($Run%d)" % (uidSet(flagged), run))
    writer.command(b"UID STORE %s +FLAGS.SILENT (\\Deleted)" % (uidSet(expunged),))
    writer.command(b"UID EXPUNGE %s" % (uidSet(expunged),))
    writer.logout()
    elapsed, answer = timed(reader, b"SELECT INBOX (QRESYNC (%d %d))" % (validity, modseq))
    reader.logout()
    gone = set(expunged)
    state["uids"] = [u for u in state["uids"] if u not in gone]
    vanished = set()
    for line in answer.split(b"\r\n"):
        if line.startswith(b"* VANISHED (EARLIER) "):
            for part in line.split()[3].split(b","):
                low, _, high = part.partition(b":")
                vanished.update(range(int(low), int(high or low) + 1))
    if vanished != gone:
        raise AssertionError(
            "VANISHED reported %d UIDs, %d expunged, %d in common"
            % (len(vanished), len(gone), len(vanished & gone))
        )
    fetched = {int(m) for m in re.findall(rb"\* \d+ FETCH \([^\r]*?UID (\d+)", answer)}
    if not set(flagged) <= fetched:
        raise AssertionError(
            "%d of %d changed messages were not reported" % (len(set(flagged) - fetched), changes)
        )
    return elapsed


def benchServer(port, facts, options, state, other):
    """
    Warm up, then C{--runs} rounds of every measure on C{port}.

    @param other: the other server's answers (C{{name: value}}) to compare
        with, or C{{}} for the first server; filled with this one's.
    @return: C{{name: [seconds]}}.
    """
    client = imap.Client(port)
    client.login()
    count = imap.exists(client.command(b"SELECT INBOX"))
    if count != len(facts):
        raise AssertionError("INBOX holds %d messages, not %d" % (count, len(facts)))
    times = {}
    for name, text in SORTS:
        # The first of each: both servers read the key from every message
        # then (Dovecot fills its cache; gateway its key cache).
        elapsed, answer = timed(client, text)
        if numbers(answer, b"SORT") != expectedOrder(name, facts):
            raise AssertionError("%s: wrong order" % (name,))
        times["first " + name] = [elapsed]
        times[name] = []
        for _ in range(options.runs):
            elapsed, answer = timed(client, text)
            got = numbers(answer, b"SORT")
            if got != expectedOrder(name, facts):
                raise AssertionError("%s: wrong order (first 10: %r)" % (name, got[:10]))
            other.setdefault(name, got)
            times[name].append(elapsed)
    elapsed, _ = timed(client, b"THREAD REFERENCES UTF-8 ALL")
    times["first THREAD REFERENCES"] = [elapsed]
    times["THREAD REFERENCES"] = []
    for _ in range(options.runs):
        elapsed, answer = timed(client, b"THREAD REFERENCES UTF-8 ALL")
        tops, seqs = threadShape(answer)
        if seqs != list(range(1, count + 1)):
            raise AssertionError("THREAD: %d messages, not every one once" % (len(seqs),))
        if other.setdefault("threads", tops) != tops:
            raise AssertionError("THREAD: %d threads, the other server %d" % (tops, other["threads"]))
        times["THREAD REFERENCES"].append(elapsed)
    client.logout()
    name = "QRESYNC SELECT (%d changed, %d expunged)" % (options.changes, options.changes)
    times[name] = [resync(port, run, options.changes, state) for run in range(options.runs)]
    return times


def main():
    signal.signal(signal.SIGTERM, lambda *args: sys.exit(1))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=50000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    options = parser.parse_args()
    if options.quick:
        options.messages, options.runs, options.changes = 2000, 1, 100
    print("machine: %s, %d CPUs, %s" % (os.uname().nodename, os.cpu_count(), imap.cpuModel()))
    print("date: %s UTC" % (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),))
    tmp = tempfile.mkdtemp(prefix="gateway-bench-sort-")
    children = []
    try:
        dataRoot = os.path.join(tmp, "data")
        os.makedirs(dataRoot)
        mailRoot = imap.makeAccount(tmp, dataRoot)
        messages = makeMessages(options.messages)
        facts = [f for _, f in messages]
        writeFolder(os.path.join(mailRoot, "INBOX"), messages, 1)
        # bench/imap.py's Dovecot copies these two as well.
        writeFolder(os.path.join(mailRoot, "Big"), messages[:10], 2)
        writeFolder(os.path.join(mailRoot, "Mixed"), messages[:10], 3)
        servers = []
        dovecot = imap.startDovecot(mailRoot, os.path.join(tmp, "dovecot"))
        if dovecot is None:
            print("Dovecot (dovecot-imapd) is not installed: `make tools` as root installs it")
        else:
            children.append(dovecot[0])
            servers.append(("dovecot", dovecot[1]))
        child, port = imap.startOurs(tmp, dataRoot)
        children.append(child)
        servers.append(("ours", port))
        answers = {}
        results = {}
        for kind, port in servers:
            t0 = time.perf_counter()
            client = imap.Client(port)
            client.login()
            client.command(b"SELECT INBOX")
            client.logout()
            print("%s: first SELECT %.2f s" % (kind, time.perf_counter() - t0), flush=True)
            state = {"uids": list(range(1, options.messages + 1))}
            results[kind] = benchServer(port, facts, options, state, answers)
    finally:
        for child in children:
            imap.stop(child)
        if options.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(
        "\nmedians of %d runs, INBOX of %d messages; every answer checked" % (options.runs, options.messages)
    )
    kinds = [k for k in ("ours", "dovecot") if k in results]
    print(
        "%-44s" % ("",)
        + "".join("%14s" % (k,) for k in kinds)
        + ("%10s" % ("ratio",) if len(kinds) == 2 else "")
    )
    for name in results["ours"]:
        cells = [statistics.median(results[k][name]) for k in kinds]
        line = "%-44s" % (name,) + "".join("%12.1f ms" % (c * 1000,) for c in cells)
        if len(kinds) == 2:
            line += "%10.2f" % (cells[1] / cells[0],)
        print(line)
    if len(kinds) == 2:
        print("ratio: Dovecot's time over gateway's (above 1: gateway faster)")


if __name__ == "__main__":
    main()
