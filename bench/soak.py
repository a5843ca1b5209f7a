#!/usr/bin/env python
"""
Soak (issue 16): mixed traffic from many clients with a fuzzing client among
them, against one gateway under twistd (every protocol on loopback), for a
fixed time; then: was any traceback logged, and is the server's memory back
near where it started?

    .venv/bin/python bench/soak.py [--minutes 10] [--imap-clients 150] [--other-clients 50]
                                   [--client-processes 6] [--release-idle-after 60] [--settle S]
                                   [--memory-reports yes|tracemalloc] [--workers N|auto]

  - C{--imap-clients} sessions run the checked IMAP mix of
    C{tests.imapload} (every reply checked by C{tests.imapcheck}), half of
    them logging in every cycle;
  - C{--other-clients} loop over LMTP deliveries, POP3 (STAT, LIST, RETR),
    HTTP GETs of the personal site and free/busy, and FTP (LIST, STOR,
    RETR), each checking its replies;
  - one fuzzing client sends random and hostile input (bad lines, huge
    literals, bare LFs, pipelined junk, early disconnects) to every port.

The clients are spread over C{--client-processes} forked processes (the
fuzzing client in the first), so that the clients' side keeps reading: one
process of 200 threads saturated a core and left the server holding up to
1 MB of unsent output per session.

The server runs with its default workers (one per CPU) unless C{--workers}
says otherwise.  Memory is the server's resident set (C{/proc/PID/status}
VmRSS) with one process, or with workers the proportional sets of the parent and its workers
added up (whichever workers run at the time: the parent replaces an idle
worker that grew, L{gateway.recycle}): at the
start (after one pass of every kind of client, so that the code and the
account's index are loaded), after a warm-up minute, its peak (sampled
every second), at the end of traffic, and after the clients left and the
server had C{--settle} seconds; the goal is the last within 10% of the
start.  The server lets go of what nobody used for C{--release-idle-after}
seconds (its C{[server] release_idle_after}, default 60: the account's open
index, pool threads, caches), between one and two such periods after the
last use, and gives the memory back then: C{--settle} is by default two
periods and ten seconds (130 s), what an admin watching the server after a
busy hour would wait.  With C{--memory-reports} the server writes a memory report
(C{[debug] memory_reports}, L{gateway.memdebug}) at the start, at the end
of traffic and after settling: what is still referenced (retention)
against what the allocator keeps; C{tracemalloc} also traces every
allocation (slower; its own memory counts in the resident set).  Prints the
counts, the tracebacks found in the server's log, and the ratios.
"""

import argparse
import ftplib
import io
import multiprocessing
import os
import poplib
import random
import signal
import smtplib
import socket
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.insert(0, ROOT)

import http.client  # noqa: E402 (after bench/ left the path: its http.py)

from bench import peers  # noqa: E402
from bench.imap import PASSWORD, USER, makeAccount, stop  # noqa: E402
from bench.imaptest import processTree, treeCpu  # noqa: E402
from gateway.memtrim import procBytes  # noqa: E402
from tests import imapload  # noqa: E402

PROTOCOLS = ("imap", "pop3", "http", "ftp", "lmtp")


def startServer(tmp, dataRoot, memoryReports=None, releaseIdleAfter=None, workers=1):
    ports = {name: peers.freePort() for name in PROTOCOLS}
    config = os.path.join(tmp, "gateway.ini")
    with open(config, "w") as f:
        f.write("[server]\ndata_root = %s\nworkers = %s\n" % (dataRoot, workers))
        if releaseIdleAfter is not None:
            f.write("release_idle_after = %d\n" % (releaseIdleAfter,))
        f.write("[tls]\ncertificate = %s/none.pem\nprivate_key = %s/none.pem\n[admin]\nenabled = no\n" % (tmp, tmp))
        for name, port in ports.items():
            f.write("[%s]\nlisten = tcp:%d:interface=127.0.0.1\nmax_connections_per_address = 0\n" % (name, port))
            if name == "ftp":
                # Every client comes from 127.0.0.1, logins without TLS included.
                f.write("passive_ports = 40000-40999\n")
                # Every client logs in to one account (the default of 10 answers 421 beyond).
                f.write("max_connections_per_account = 1000\n")
        if memoryReports:
            f.write("[debug]\nmemory_reports = %s\n" % (memoryReports,))
    child = peers.subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "twistd"), "--nodaemon", "--pidfile=", "--logfile",
         os.path.join(tmp, "twistd.log"), "gateway", "--config", config], cwd=tmp)
    for port in ports.values():
        if not peers.waitForPort(port, child):
            raise RuntimeError("gateway did not start; see %s/twistd.log" % (tmp,))
    return child, ports


def keepMappings(pid, tmp, when):
    """
    Copy the server's C{/proc/PID/smaps} to C{tmp}/smaps-C{when}; return
    its resident set by kind of mapping (L{gateway.memdebug.mappings}).
    """
    from gateway.memdebug import mappings
    path = os.path.join(tmp, "smaps-%s" % (when,))
    try:
        with open("/proc/%d/smaps" % (pid,)) as f, open(path, "w") as out:
            out.write(f.read())
    except OSError:
        return {}
    return mappings(path)


def rss(pid):
    return procBytes(pid, "status", "VmRSS:")


def pss(pid):
    """
    The proportional set of process C{pid} (C{/proc/PID/smaps_rollup}): its
    share of pages it has in common with others, so that the sum over a
    parent and its workers counts the libraries they all map once.
    """
    return procBytes(pid, "smaps_rollup", "Pss:")


def serverMemory(pid):
    """
    The server's memory: the resident set of its one process, or with
    workers the proportional sets of the parent and its workers added up.
    """
    processes = list(processTree(pid))
    if len(processes) == 1:
        return rss(pid)
    return sum(pss(each) for each in processes)


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = {}
        self.failed = {}

    def add(self, kind, ok):
        with self.lock:
            table = self.ok if ok else self.failed
            table[kind] = table.get(kind, 0) + 1


def otherClient(number, ports, deadline, rng, tally, errors):
    user, local = USER, USER.split("@")[0]
    while time.monotonic() < deadline:
        kind = rng.choice(["lmtp", "pop3", "http", "ftp"])
        try:
            if kind == "lmtp":
                body = (b"Subject: soak %d\r\n\r\n" % (rng.randrange(10**9),)
                        + (b"x" * 70 + b"\r\n") * rng.randrange(1, 300))
                with smtplib.LMTP("127.0.0.1", ports["lmtp"]) as c:
                    refused = c.sendmail("soak@example.org", [user], body)
                tally.add(kind, not refused)
            elif kind == "pop3":
                c = poplib.POP3("127.0.0.1", ports["pop3"], timeout=60)
                c.user(user)
                c.pass_(PASSWORD)
                count, _ = c.stat()
                if count:
                    c.retr(rng.randrange(1, count + 1))
                c.quit()
                tally.add(kind, True)
            elif kind == "http":
                c = http.client.HTTPConnection("127.0.0.1", ports["http"], timeout=60)
                path = rng.choice(["/~%s/" % local, "/~%s/freebusy.vfb" % local, "/~nobody/x"])
                c.request("GET", path)
                response = c.getresponse()
                response.read()
                c.close()
                # 403: a site folder without index.html (listings are off by default).
                tally.add(kind, response.status in (200, 403, 404))
                if response.status not in (200, 403, 404) and len(errors) < 50:
                    errors.append("http %s: %d" % (path, response.status))
            else:
                c = ftplib.FTP()
                c.connect("127.0.0.1", ports["ftp"], timeout=60)
                c.login(user, PASSWORD)
                data = os.urandom(rng.randrange(1, 200000))
                name = "soak-%d-%d.bin" % (number, rng.randrange(5))  # each client its own files
                c.storbinary("STOR " + name, io.BytesIO(data))
                back = io.BytesIO()
                c.retrbinary("RETR " + name, back.write)
                c.nlst()
                c.quit()
                tally.add(kind, back.getvalue() == data)
                if back.getvalue() != data and len(errors) < 50:
                    errors.append("ftp: %s read back %d bytes of %d" % (name, len(back.getvalue()), len(data)))
        except poplib.error_proto as e:
            # Another POP3 session of the account holds the mailbox: [IN-USE] is an answer.
            # IN-USE: another POP3 session holds the mailbox; a message an IMAP
            # client expunged meanwhile: both are answers, not failures.
            answered = "IN-USE" in str(e) or "deleted by another session" in str(e)
            tally.add(kind, answered)
            if not answered and len(errors) < 50:
                errors.append("pop3: %s" % (e,))
        except Exception as e:
            tally.add(kind, False)
            if len(errors) < 50:
                errors.append("%s: %r" % (kind, e))


JUNK = [
    b"\r\n", b"\n", b"A" * 70000 + b"\r\n", b"a1 LOGIN {99999999}\r\n", b"a2 FETCH 1:* (BODY[\r\n",
    b"a3 SEARCH " + b"NOT " * 500 + b"ALL\r\n", b"\x00\xff\xfe garbage\r\n", b"a4 APPEND INBOX {5+}\r\nab",
    b"USER x\r\nPASS y\r\nRETR 1\r\n", b"GET /" + b"../" * 200 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"LHLO x\r\nMAIL FROM:<a>\r\nRCPT TO:<" + b"b" * 5000 + b">\r\nDATA\r\n", b"AUTH TLS\r\nUSER x\r\n",
    b"a5 IDLE\r\n", b"STAT\r\n" * 200, b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\nxx",
]


def fuzzClient(ports, deadline, rng, tally):
    while time.monotonic() < deadline:
        port = ports[rng.choice(PROTOCOLS)]
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            for _ in range(rng.randrange(1, 6)):
                if rng.random() < 0.3:
                    s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000))))
                else:
                    s.sendall(rng.choice(JUNK))
                try:
                    s.recv(65536)
                except socket.timeout:
                    pass
            s.close()
            tally.add("fuzz", True)
        except OSError:
            tally.add("fuzz", True)  # the server may close on junk: that is an answer


def _clientProcess(job):
    """
    One client process: its share of the IMAP clients (threads of
    L{imapload.runLoad}) and of the other clients, and the fuzzing client
    when C{fuzz}; a summary that pickles.
    """
    number, port, ports, imapClients, otherNumbers, fuzz, deadline = job
    tally, errors = Tally(), []
    threads = [threading.Thread(target=otherClient, args=(i, ports, deadline, random.Random(i), tally, errors))
               for i in otherNumbers]
    if fuzz:
        threads.append(threading.Thread(target=fuzzClient, args=(ports, deadline, random.Random(99), tally)))
    for t in threads:
        t.start()
    counter, checkers, problems = imapload.Counter(), [], []
    if imapClients:
        connect = imapload.connector(port, imapload.Registry())
        counter, checkers, problems, _elapsed = imapload.runLoad(
            connect, USER, PASSWORD, imapClients, max(0, deadline - time.monotonic()), seed=number,
            extras=True, qresync=True)
    for t in threads:
        t.join()
    counts, examples = {}, {}
    for checker in checkers:
        for kind, n in checker.counts.items():
            counts[kind] = counts.get(kind, 0) + n
        for violation in checker.violations:
            examples.setdefault(violation.kind, "%s | %r" % (violation.text, violation.context[:160]))
    return {"ok": counter.ok, "no": counter.no, "violations": counts, "examples": examples,
            "problems": [str(p) for p in problems[:20]], "wrong": len(problems),
            "errors": (errors + counter.errors)[:20], "errorCount": len(errors) + len(counter.errors),
            "tallyOk": tally.ok, "tallyFailed": tally.failed}


def runClients(ports, imapClients, otherClients, processes, seconds):
    """
    Spread the clients over C{processes} client processes (forked), so that
    the clients' side never starves (one process of 200 threads saturated a
    core and stopped reading); return their summaries added up.
    """
    processes = max(1, processes)
    deadline = time.monotonic() + seconds  # CLOCK_MONOTONIC: the same in every process
    jobs = []
    for i in range(processes):
        share = imapClients // processes + (1 if i < imapClients % processes else 0)
        jobs.append((i, ports["imap"], ports, share, list(range(i, otherClients, processes)), i == 0, deadline))
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        parts = pool.map(_clientProcess, jobs)
    total = {"ok": {}, "no": {}, "violations": {}, "examples": {}, "problems": [], "wrong": 0, "errors": [],
             "errorCount": 0, "tallyOk": {}, "tallyFailed": {}}
    for part in parts:
        for key in ("ok", "no", "violations", "tallyOk", "tallyFailed"):
            for name, n in part[key].items():
                total[key][name] = total[key].get(name, 0) + n
        for kind, example in part["examples"].items():
            total["examples"].setdefault(kind, example)
        for key in ("problems", "errors"):
            total[key] += part[key]
        for key in ("wrong", "errorCount"):
            total[key] += part[key]
    return total


def memoryReport(child, tmp, reports):
    """
    With C{--memory-reports}: ask the server for a memory report (SIGUSR2) and
    wait for it; return its first lines.
    """
    if reports is None:
        return ""
    os.kill(child.pid, signal.SIGUSR2)
    path = os.path.join(tmp, "memory-%d-%d.txt" % (child.pid, len(reports) + 1))
    for _ in range(600):
        if os.path.exists(path):  # written whole (renamed into place)
            break
        time.sleep(0.5)
    reports.append(path)
    with open(path) as f:
        return "".join(f.readlines()[1:3])


def warmUp(ports):
    """
    One pass of every kind of client, so that what the server loads once (its
    code, the account's index) is in the measure of where it starts.
    """
    registry = imapload.Registry()
    connect = imapload.connector(ports["imap"], registry)
    setup = connect()
    setup.login(USER, PASSWORD)
    setup.command(b"CREATE Archive")
    setup.logout()
    imapload.runLoad(connect, USER, PASSWORD, 1, 3, extras=True, qresync=True)
    tally, errors = Tally(), []
    otherClient(10**6, ports, time.monotonic() + 3, random.Random(7), tally, errors)
    fuzzClient(ports, time.monotonic() + 1, random.Random(7), tally)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--imap-clients", type=int, default=150)
    parser.add_argument("--other-clients", type=int, default=50)
    parser.add_argument("--client-processes", type=int, default=6,
                        help="processes the clients are spread over (the fuzzing client is in the first)")
    parser.add_argument("--release-idle-after", type=int, default=60,
                        help="the server's [server] release_idle_after: seconds after which it lets go of what"
                             " nobody used (0: never)")
    parser.add_argument("--settle", type=float, default=None,
                        help="seconds the server gets after the clients left (default: two idle-release periods"
                             " and 10 s, or 40 s without release)")
    parser.add_argument("--workers", default="auto",
                        help="the server's [server] workers (default: its default, one per CPU; with more than 1,"
                             " the memory is the parent's and the workers' proportional sets added up)")
    parser.add_argument("--memory-reports", choices=["yes", "tracemalloc"], default=None,
                        help="run the server with [debug] memory_reports and have it write a memory report"
                             " (SIGUSR2) at the start, at the end of traffic and after settling")
    options = parser.parse_args()
    if options.settle is None:
        options.settle = 2 * options.release_idle_after + 10 if options.release_idle_after else 40
    tmp = tempfile.mkdtemp(prefix="gateway-soak-")
    dataRoot = os.path.join(tmp, "var")
    makeAccount(tmp, dataRoot)
    child, ports = startServer(tmp, dataRoot, options.memory_reports, options.release_idle_after, options.workers)
    memory = (lambda: serverMemory(child.pid))
    reports = [] if options.memory_reports else None
    notes = {}
    try:
        warmUp(ports)
        time.sleep(2)
        processes = len(processTree(child.pid))
        start = memory()
        parts = {"start": keepMappings(child.pid, tmp, "start")}
        cpuStart = treeCpu(child.pid)
        notes["start"] = memoryReport(child, tmp, reports)
        seconds = options.minutes * 60
        warm, peak = {}, {"rss": 0}
        stopSampling = threading.Event()

        def sample():
            began = time.monotonic()
            while not stopSampling.wait(1):
                now = memory()
                peak["rss"] = max(peak["rss"], now)
                if "rss" not in warm and time.monotonic() - began >= min(60, seconds / 5):
                    warm["rss"] = now
        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            total = runClients(ports, options.imap_clients, options.other_clients, options.client_processes,
                               seconds)
        finally:
            stopSampling.set()
            sampler.join()
        end = memory()
        cpu = treeCpu(child.pid) - cpuStart
        parts["end"] = keepMappings(child.pid, tmp, "end")
        notes["end"] = memoryReport(child, tmp, reports)
        time.sleep(options.settle)
        after = memory()
        parts["after"] = keepMappings(child.pid, tmp, "after")
        notes["after"] = memoryReport(child, tmp, reports)
    finally:
        stop(child)
    log = ""
    for name in sorted(os.listdir(tmp)):
        if name.startswith("twistd.log"):  # twistd rotates it every megabyte
            with open(os.path.join(tmp, name), errors="replace") as f:
                log += f.read()
    imapCommands = sum(total["ok"].values()) + sum(total["no"].values())
    print("soak: %.1f min, %d IMAP clients (%d commands, %d violations, %d wrong answers, %d errors),"
          " %d other clients, 1 fuzzing client, over %d client processes"
          % (options.minutes, options.imap_clients, imapCommands, sum(total["violations"].values()),
             total["wrong"], total["errorCount"], options.other_clients, options.client_processes))
    print("other clients: ok %s; failed %s" % (total["tallyOk"], total["tallyFailed"]))
    print("server CPU during traffic: %.1f s, %.3f ms an IMAP command (every protocol's work included)"
          % (cpu, 1000 * cpu / max(1, imapCommands)))
    for kind in sorted(total["violations"]):
        print("  violation %s: %d, e.g. %s" % (kind, total["violations"][kind], total["examples"][kind]))
    for text in (total["problems"] + total["errors"])[:15]:
        print("  error: %s" % (text,))
    tracebacks = log.count("Traceback")
    print("tracebacks in the server log: %d" % (tracebacks,))
    if tracebacks:
        at = log.find("Traceback")
        print(log[max(0, at - 300):at + 1500])
    base = warm.get("rss", start)
    ratio = after / start
    print("server %s: at start %.1f MB, after the warm-up minute %.1f MB, peak %.1f MB, at the end of traffic"
          " %.1f MB, %g s later %.1f MB" % ("RSS" if processes == 1 else
                                            "PSS (parent and %d workers)" % (processes - 1,), start / 1e6, base / 1e6, max(peak["rss"], end) / 1e6, end / 1e6,
                                            options.settle, after / 1e6))
    print("memory after the clients left: %.2f of the start (%.2f of the warm-up minute): goal (within 10%% of"
          " the start) %s" % (ratio, after / base, "MET" if ratio <= 1.10 else "NOT MET"))
    print("server%s RSS by kind of mapping (MB: start, end of traffic, after; copies of smaps in the log folder):"
          % ("" if processes == 1 else "'s parent process"))
    for kind in sorted(set().union(*(p.keys() for p in parts.values()))):
        print("  %-50s %s" % (kind, ", ".join("%.1f" % (parts[w].get(kind, [0, 0])[1] / 1e6,)
                                               for w in ("start", "end", "after"))))
    if reports is not None:
        for when, path in zip(("start", "end of traffic", "after settling"), reports, strict=False):
            print("memory report at %s: %s\n%s" % (when, path, notes[when.split()[0]]), end="")
        if options.memory_reports == "tracemalloc":
            print("(RSS figures include tracemalloc's own memory)")
    print("log and data: %s" % (tmp,))


if __name__ == "__main__":
    main()
