#!/usr/bin/env python
"""
The independent check of issue 14: Dovecot's C{imaptest} stress mode against
gateway and against Dovecot 2.3, one after the other on loopback, each over a
fresh data root, with the same messages and the same seed.

    .venv/bin/python bench/imaptest.py [--imaptest PATH] [--seconds 20]
        [--clients 10] [--runs 3] [--shapes open,cycle] [--workers N]
        [--dovecot-fsync optimized|always] [--users N]

Shapes: C{open} keeps each session open (imaptest's C{logout=0}); C{cycle}
logs in and out every cycle (its default); C{checked} adds SEARCH, SORT and
THREAD to the open mix and compares every session's state every second
(C{checkpoint=1}), for its error count.  imaptest's default mix: LIST,
STATUS, SELECT, FETCH of random items (ENVELOPE, BODYSTRUCTURE, headers),
FETCH of bodies, COPY, STORE of flags and keywords, APPEND, STORE \\Deleted
and EXPUNGE, many commands pipelined per cycle, writers and readers on one
INBOX.  It tracks every session's state and prints an error for each reply
that contradicts it; a run with errors is reported as such.  The figure is
the commands completed in the run; the ratio is gateway's over Dovecot's
(medians of C{--runs}).  Beside it, the CPU time the server's processes used
during the run (all of them: gateway's workers, Dovecot's master, login,
auth and imap processes), per command: what tells a server short of CPU
from one that waits.

With C{--users N} (default 1, the issue's shape) the clients log in as N
accounts (C{bench1@...} to C{benchN@...}; imaptest picks one at random for
each client), each with its own INBOX on both servers: the load of many
mailboxes instead of one that every client writes to.

imaptest is not packaged by Debian and is built from source:
C{bench/build-imaptest.sh} (commit 924f619, the newest that builds against
Debian 12's Dovecot 2.3.19 headers).  Without an imaptest binary this script
says so and exits 2.
"""

import argparse
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import imap, peers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
#: imaptest's arguments per shape.
SHAPES = {
    "open": ["logout=0"],
    "cycle": [],
    # SEARCH, SORT and THREAD in the mix, and every second all sessions'
    # states compared (checkpoint): for the errors, not the throughput.
    "checked": ["logout=0", "search=30", "sort=30", "thread=30", "checkpoint=1"],
}
WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
         "sigma tau upsilon phi chi psi omega meeting report draft invoice release notes").split()


def writeMbox(path, count, seed=123):
    """
    An mbox of C{count} messages for imaptest to APPEND from: unique
    Message-IDs (its state tracking needs them), senders, subjects, sizes
    from 1 KB to 60 KB, a few multipart, some replies (for THREAD).
    """
    rng = random.Random(seed)
    ids = []
    with open(path, "w", newline="\n") as f:
        for i in range(count):
            mid = "<%d.%08x@imaptest.example>" % (i, rng.getrandbits(32))
            subject = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5)))
            headers = [
                "From: %s <user%d@example.%s>" % (rng.choice(WORDS).title(), rng.randint(1, 40),
                                                  rng.choice(("org", "com", "net"))),
                "To: user%d@example.org" % (rng.randint(1, 40),),
                "Date: %s, %02d %s 2024 %02d:%02d:%02d +0000" % (
                    rng.choice(("Mon", "Tue", "Wed", "Thu", "Fri")), rng.randint(1, 28),
                    rng.choice(("Jan", "Feb", "Mar", "Apr", "May", "Jun")), rng.randint(0, 23),
                    rng.randint(0, 59), rng.randint(0, 59)),
                "Message-ID: " + mid,
            ]
            if ids and rng.random() < 0.3:
                parent = rng.choice(ids[-50:])
                headers += ["In-Reply-To: " + parent, "References: " + parent]
                subject = "Re: " + subject
            headers.append("Subject: " + subject)
            size = int(rng.paretovariate(1.2) * 1000) if rng.random() < 0.95 else rng.randint(20000, 60000)
            size = min(size, 60000)
            body = []
            while sum(len(line) + 1 for line in body) < size:
                body.append(" ".join(rng.choice(WORDS) for _ in range(12)))
            if rng.random() < 0.1:
                headers += ["MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="b%d"' % (i,)]
                body = (["--b%d" % (i,), "Content-Type: text/plain", ""] + body
                        + ["--b%d" % (i,), "Content-Type: application/octet-stream",
                           "Content-Transfer-Encoding: base64", "",
                           "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "--b%d--" % (i,)])
            ids.append(mid)
            f.write("From imaptest@example.org Mon Jan  1 00:00:00 2024\n")
            f.write("\n".join(headers) + "\n\n")
            for line in body:
                f.write((">" + line if line.startswith("From ") else line) + "\n")
            f.write("\n")


def findImaptest(given):
    for candidate in (given, os.environ.get("IMAPTEST"), os.path.join(HERE, "imaptest", "src", "imaptest"),
                      shutil.which("imaptest")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def parseTotals(text):
    """
    imaptest's totals: C{{command: count}} from the lines after C{Totals:}.
    """
    lines = text.split("Totals:", 1)[1].strip().splitlines()
    names = lines[0].split()
    counts = [int(n) for n in lines[-1].split()[:len(names)]]  # a count per name
    return dict(zip(names, counts, strict=True))


def parseLatencies(text):
    """
    imaptest's average milliseconds a command: it prints them every ten
    seconds (a C{ms/cmd avg} line, the same names as the totals, each the
    average of those ten seconds); the mean of those lines, C{{command:
    ms}}, or C{{}} if it printed none.
    """
    names = text.split("Totals:", 1)[1].strip().splitlines()[0].split()
    windows = [[int(n) for n in line.split()[:len(names)]]
               for line in text.splitlines() if line.rstrip().endswith("ms/cmd avg")]
    if not windows:
        return {}
    return {name: statistics.mean(window[i] for window in windows) for i, name in enumerate(names)}


def startServer(which, tmp, options):
    users = benchUsers(options.users)
    if which == "ours":
        dataRoot = os.path.join(tmp, "data")
        imap.makeAccount(tmp, dataRoot, users)
        return imap.startOurs(tmp, dataRoot, options.workers)
    conf = imap.DOVECOT_CONF.replace("first_valid_uid = 1",
                                     "first_valid_uid = 1\nmail_fsync = %s" % (options.dovecot_fsync,))
    maildirs = [os.path.join(tmp, "Maildir")]
    if len(users) > 1:
        # A Maildir of its own for each account.
        conf = conf.replace("mail_location = maildir:{tmp}/Maildir", "mail_location = maildir:{tmp}/Maildir/%n")
        maildirs = [os.path.join(tmp, "Maildir", user.split("@")[0]) for user in users]
    for maildir in maildirs:
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(maildir, sub))
    started = peers.runDovecot(tmp, conf, users, imap.PASSWORD, [os.path.join(tmp, "Maildir")])
    if started is None:
        raise RuntimeError("Dovecot did not start (make bench-tools installs it)")
    return started


def processTree(pid):
    """
    C{{process id: CPU clock ticks}} of process C{pid} and every process
    under it (a parent's workers), the ticks of the children that ended and
    were waited for included.
    """
    children = {}
    stats = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % (entry,)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the name: state, ppid, ... utime (14th field of the whole
        # line), stime, cutime, cstime.
        stats[int(entry)] = sum(int(n) for n in fields[11:15])
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = {}, [pid]
    while todo:
        current = todo.pop()
        found[current] = stats.get(current, 0)
        todo.extend(children.get(current, ()))
    return found


def treeCpu(pid):
    """
    CPU seconds (user and system) of process C{pid} and every process under
    it, those that ended and were waited for included.
    """
    return sum(processTree(pid).values()) / os.sysconf("SC_CLK_TCK")


#: imaptest's user name template with C{--users N} (C{users=1-N}).
USER_TEMPLATE = imap.USER.replace("@", "%d@", 1)


def benchUsers(count):
    """
    The accounts the clients log in as: L{imap.USER} alone, or C{count}
    numbered ones (C{bench1@...}), as imaptest names them from
    L{USER_TEMPLATE}.
    """
    if count <= 1:
        return [imap.USER]
    return [USER_TEMPLATE % (n,) for n in range(1, count + 1)]


def clientArgs(binary, port, shape, options, mbox):
    """
    imaptest's command line against C{port} (C{options.clients} clients for
    C{options.seconds}, the same seed every time).
    """
    if options.users > 1:
        users = ["user=" + USER_TEMPLATE, "users=1-%d" % (options.users,)]
    else:
        users = ["user=" + imap.USER]
    args = [binary, "host=127.0.0.1", "port=%d" % (port,), *users, "pass=" + imap.PASSWORD,
            "mbox=" + mbox, "clients=%d" % (options.clients,), "secs=%d" % (options.seconds,), "seed=123"]
    return args + SHAPES[shape]


def runOnce(binary, which, shape, options, mbox, top):
    tmp = tempfile.mkdtemp(prefix="%s-" % (which,), dir=top)
    child, port = startServer(which, tmp, options)
    cpu = None
    try:
        before = treeCpu(child.pid)
        env = dict(os.environ, LD_LIBRARY_PATH="/usr/lib/dovecot")
        client = subprocess.Popen(clientArgs(binary, port, shape, options, mbox), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        split = None
        if which == "ours":
            time.sleep(min(3, options.seconds / 2))
            split = connectionsByProcess(port)
        out, _ = client.communicate(timeout=options.seconds + 120)
        cpu = treeCpu(child.pid) - before
        text = out.decode("utf-8", "replace")
    finally:
        imap.stop(child)
        kept = keepServerLog(which, tmp, top)
        shutil.rmtree(tmp, ignore_errors=True)
    errors = [line for line in text.splitlines() if "Error:" in line]
    if kept is not None:
        errors.append("the server logged a traceback: its log is kept in %s" % (kept,))
    return parseTotals(text), parseLatencies(text), errors, cpu, split


def keepServerLog(which, tmp, top):
    """
    gateway's log, kept out of the run's folder when it holds a traceback
    (what a C{NO [SERVERBUG]} that imaptest reports was): the path of the
    copy, or C{None}.
    """
    if which != "ours":
        return None
    path = os.path.join(tmp, "twistd.log")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            if "Traceback" not in f.read():
                return None
    except OSError:
        return None
    kept = tempfile.mkstemp(prefix="gateway-imaptest-", suffix=".log", dir=os.path.dirname(top))[1]
    shutil.copyfile(path, kept)
    return kept


def connectionsByProcess(port):
    """
    How the established connections to C{port} are shared between the
    server's processes (its workers): their counts, largest first, or
    C{None} when C{ss} cannot tell.
    """
    try:
        out = subprocess.run(["ss", "-Htnp", "state", "established", "( sport = :%d )" % (port,)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=10).stdout.decode()
    except (OSError, subprocess.SubprocessError):
        return None
    counts = {}
    for pid in re.findall(r"pid=(\d+)", out):
        counts[pid] = counts.get(pid, 0) + 1
    return sorted(counts.values(), reverse=True) or None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--imaptest", help="the imaptest binary (else $IMAPTEST, bench/imaptest/, PATH)")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shapes", default="open,cycle", help="of %s" % (",".join(SHAPES),))
    parser.add_argument("--messages", type=int, default=1000, help="messages in the mbox imaptest appends from")
    parser.add_argument("--only", default="ours,dovecot")
    parser.add_argument("--users", type=int, default=1,
                        help="accounts the clients log in as, at random (default 1: every client on one INBOX)")
    parser.add_argument("--workers", type=int, default=None, help="gateway's [server] workers (default: one per CPU)")
    parser.add_argument("--dovecot-fsync", default="optimized", choices=("optimized", "always"),
                        help="Dovecot's mail_fsync: optimized (its default: saved mail only) or always"
                             " (every change, the durability gateway gives every OK)")
    options = parser.parse_args()
    binary = findImaptest(options.imaptest)
    if binary is None:
        print("no imaptest binary: build it with bench/build-imaptest.sh, or give --imaptest")
        return 2
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    top = tempfile.mkdtemp(prefix="gateway-bench-imaptest-")
    mbox = os.path.join(top, "stress.mbox")
    writeMbox(mbox, options.messages)
    servers = options.only.split(",")
    print("imaptest %s, %d clients, %d account%s, %d s, %d runs, gateway workers = %s, Dovecot mail_fsync = %s"
          % (binary, options.clients, options.users, "" if options.users == 1 else "s", options.seconds,
             options.runs, "default" if options.workers is None else options.workers, options.dovecot_fsync))
    failed = False
    try:
        for shape in options.shapes.split(","):
            totals = {which: [] for which in servers}
            perCommand = {which: [] for which in servers}
            for run in range(options.runs):
                for which in servers:
                    counts, latencies, errors, cpu, split = runOnce(binary, which, shape, options, mbox, top)
                    total = sum(counts.values())
                    totals[which].append(total)
                    perCommand[which].append(1000 * cpu / max(total, 1))
                    print("%-5s %-7s run %d: %6d commands, server CPU %.1f s (%.3f ms a command)%s  %s%s" % (
                        shape, which, run + 1, total, cpu, perCommand[which][-1],
                        ", clients by worker %s" % ("/".join(map(str, split)),) if split else "",
                        " ".join("%s %d" % kv for kv in counts.items()),
                        "  ERRORS %d" % (len(errors),) if errors else ""), flush=True)
                    if latencies:
                        print("      ms a command: " + " ".join("%s %.0f" % kv for kv in latencies.items()))
                    for line in errors[:5]:
                        print("    " + line)
                    failed = failed or bool(errors)
            medians = {which: statistics.median(values) for which, values in totals.items()}
            line = "%-5s medians: " % (shape,) + ", ".join(
                "%s %d (%.3f ms CPU a command)" % (which, median, statistics.median(perCommand[which]))
                for which, median in medians.items())
            if "ours" in medians and medians.get("dovecot"):
                line += "; ratio gateway/Dovecot %.2f" % (medians["ours"] / medians["dovecot"],)
            print(line, flush=True)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
