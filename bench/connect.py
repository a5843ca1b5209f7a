#!/usr/bin/env python
"""
New IMAP connections in a burst (issue 14): how many a second gateway
greets, and how long a client waits for its greeting, beside Dovecot 2.3
in the same run, on loopback; optionally with a gateway worker killed
(C{kill -9}) in the middle of each burst.

    .venv/bin/python bench/connect.py [--connections 3000] [--concurrency 50]
                                      [--shapes close,hold] [--runs 3]
                                      [--workers N] [--kill]
                                      [--client-processes 2]
                                      [--dovecot-login security,performance]

Each burst opens C{--connections} connections, C{--concurrency} at a time,
spread over C{--client-processes} client processes (asyncio), each from
its own loopback address.  A connection counts when its greeting is an
untagged C{OK}: with C{close}, the client then sends C{LOGOUT} and counts
it only when the C{BYE} and the tagged C{OK} come back, and closes; with
C{hold}, it keeps the connection open until the burst is over (as clients
that stay connected do), so each server holds them all at the end.  A
refused, reset or wrong answer is a failure, never throughput.

Reported per server and shape, medians of the runs: connections a second
(counted connections over the burst's time), the greeting's latency (from
C{connect()} to the greeting's line: median, 99th percentile and slowest),
failures, and the ratio gateway / Dovecot of connections a second.

With C{--kill} (gateway with two workers or more) worker 1 is killed once a
quarter of each burst has been counted; the parent starts another, and the
others go on accepting.  The report then gives the slowest greeting and
the 99th percentile of the connections that began after the kill.
A connection begun before the kill that fails may have been the killed
worker's: it is reported as lost, apart; one begun after the kill that
fails is a failure.

gateway runs with its defaults (workers one per CPU unless C{--workers}),
IMAP on a clear-text loopback listener.  Dovecot (C{apt-get install -y
dovecot-imapd}) runs twice, its process and client limits raised above
C{--connections}: with its default login mode ("high-security": a new
login process for each connection), and in the mode its documentation
advises for busy servers ("high-performance": C{service_count = 0}, a login
process per CPU started beforehand); C{--dovecot-login} chooses.
"""

import argparse
import asyncio
import multiprocessing
import os
import platform
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# bench/ itself must not be on the path: its scripts (http.py) shadow the stdlib.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.insert(0, ROOT)

from bench import imap, peers  # noqa: E402
from bench.imapidle import dovecotConf  # noqa: E402


def startOurs(tmp, dataRoot, connections, workers):
    """gateway under twistd, IMAP alone on a clear-text loopback port, room for C{connections}."""
    port = peers.freePort()
    config = os.path.join(tmp, "gateway.ini")
    with open(config, "w") as f:
        f.write("[server]\ndata_root = %s\n%s[tls]\ncertificate = %s/none.pem\nprivate_key = %s/none.pem\n"
                % (dataRoot, "" if workers is None else "workers = %d\n" % (workers,), tmp, tmp))
        for name in ("lmtp", "pop3", "http", "ftp", "admin"):
            f.write("[%s]\nenabled = no\n" % (name,))
        f.write("[imap]\nlisten = tcp:%d:interface=127.0.0.1\nlog_level = warn\nmax_connections = %d\n"
                "max_connections_per_address = 0\n" % (port, connections + 100))
    return peers.startGateway(tmp, config, port), port


#: Dovecot's "high-performance" login mode (its documentation's name):
#: login processes that each serve many connections, one started per CPU
#: before any client comes, instead of a new process for each connection.
PERFORMANCE_LOGIN = """service imap-login {{
  service_count = 0
  process_min_avail = %d
"""


def startDovecot(tmp, connections, login):
    """
    Dovecot with its limits above C{connections}, its login processes in
    C{login} mode (C{security}, its default, or C{performance}), or
    C{None} when it is not installed.
    """
    if not peers.dovecotImapInstalled():
        return None
    maildir = os.path.join(tmp, "Maildir")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(maildir, sub))
    conf = dovecotConf(connections)
    if login == "performance":
        if "service imap-login {{\n" not in conf:
            raise RuntimeError("bench/imap.py's DOVECOT_CONF has no imap-login service block")
        conf = conf.replace("service imap-login {{\n", PERFORMANCE_LOGIN % (os.cpu_count(),), 1)
    return peers.runDovecot(tmp, conf, imap.USER, imap.PASSWORD, [maildir])


def workerPid(parent, number):
    """The pid of gateway's worker C{number} under C{parent}, or C{None}."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % (entry,)) as f:
                ppid = int(f.read().rpartition(")")[2].split()[1])
            if ppid != parent:
                continue
            with open("/proc/%s/cmdline" % (entry,), "rb") as f:
                args = f.read().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"--worker" in args and args[args.index(b"--worker") + 1] == str(number).encode():
            return int(entry)
    return None


# ---------------------------------------------------------------------------
# The clients


#: Linux's IP_BIND_ADDRESS_NO_PORT (Python 3.11 does not name it).
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


async def _open(port, source):
    """
    A connection from loopback address C{source}, its port chosen when it
    connects: bound first, each port would be the address's own, and the
    ports closed connections keep for a minute (TIME_WAIT) would run out
    over a few bursts, the kernel searching longer and longer for a free one
    (the client, not the server, would then set the pace).
    """
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((source, 0))
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)


async def _connection(port, source, shape, timeout, held):
    """
    One connection: C{(seconds to the greeting, when it began)}, or
    C{(error text, when it began)}.
    """
    began = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(_open(port, source), timeout)
        greeting = await asyncio.wait_for(reader.readline(), timeout)
        waited = time.monotonic() - began
        if not greeting.startswith(b"* OK"):
            writer.close()
            return "greeting %r" % (greeting[:40],), began
        if shape == "hold":
            held.append(writer)
            return waited, began
        writer.write(b"a LOGOUT\r\n")
        lines = []
        while not lines or not lines[-1].startswith(b"a "):
            line = await asyncio.wait_for(reader.readline(), timeout)
            if not line:
                break
            lines.append(line)
        writer.close()
        if not (lines and lines[0].startswith(b"* BYE") and lines[-1].startswith(b"a OK")):
            return "LOGOUT answered %r" % (b"".join(lines)[:60],), began
        return waited, began
    except (OSError, asyncio.TimeoutError) as e:
        return "%s: %s" % (type(e).__name__, e), began


async def _burst(port, source, count, concurrency, shape, timeout, counter):
    held = []
    gate = asyncio.Semaphore(concurrency)

    async def gated():
        async with gate:
            result = await _connection(port, source, shape, timeout, held)
        if not isinstance(result[0], str):
            with counter.get_lock():
                counter.value += 1
        return result

    results = await asyncio.gather(*[gated() for _ in range(count)])
    ended = time.monotonic()
    for writer in held:
        writer.close()
    return results, ended


def _clientProcess(args):
    port, source, count, concurrency, shape, timeout, start = args
    delay = start - time.time()
    if delay > 0:
        time.sleep(delay)
    began = time.monotonic()
    results, ended = asyncio.run(_burst(port, source, count, concurrency, shape, timeout, _COUNTER))
    # One monotonic clock for all processes on Linux (CLOCK_MONOTONIC).
    return results, began, ended


_COUNTER = None


def _initClient(counter):
    global _COUNTER
    _COUNTER = counter
    # Not main()'s handler: a pool's terminate() must end its processes.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def burst(pid, port, options, shape, kill):
    """One burst against the server on C{port}; with C{kill}, worker 1 of C{pid} is killed a quarter in."""
    processes = options.client_processes
    counter = multiprocessing.Value("l", 0)
    shares = [options.connections // processes + (1 if n < options.connections % processes else 0)
              for n in range(processes)]
    start = time.time() + 0.5
    killedAt = None
    with multiprocessing.Pool(processes, initializer=_initClient, initargs=(counter,)) as pool:
        pending = pool.map_async(_clientProcess, [
            (port, "127.0.3.%d" % (n + 1,), share, max(1, options.concurrency // processes), shape,
             options.timeout, start) for n, share in enumerate(shares)])
        if kill:
            victim = workerPid(pid, 1)
            if victim is None:
                raise RuntimeError("no worker 1 under pid %d (--kill needs workers = 2 or more)" % (pid,))
            while counter.value < options.connections // 4 and not pending.ready():
                time.sleep(0.001)
            os.kill(victim, signal.SIGKILL)
            killedAt = time.monotonic()
        outcomes = pending.get(options.timeout * 4 + options.connections)
        pool.close()
        pool.join()
    began = min(b for _, b, _ in outcomes)
    ended = max(e for _, _, e in outcomes)
    results = [r for rs, _, _ in outcomes for r in rs]
    good = [r for r in results if not isinstance(r[0], str)]
    errors = [r for r in results if isinstance(r[0], str)]
    # A connection begun before the kill may have been the killed worker's.
    lost = [e for e, b in errors if killedAt is not None and b < killedAt]
    failed = [e for e, b in errors if killedAt is None or b >= killedAt]
    latencies = sorted(w for w, _ in good)
    after = sorted(w for w, b in good if killedAt is not None and b >= killedAt)
    if kill:
        # Wait for the parent to start worker 1 again before the next burst.
        deadline = time.monotonic() + 30
        while workerPid(pid, 1) in (None, victim) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)
    return {
        "seconds": ended - began,
        "counted": len(good),
        "failures": len(failed),
        "lost": len(lost),
        "examples": (failed + lost)[:3],
        "latencies": latencies,
        "after": after,
    }


def percentile(values, fraction):
    return values[min(len(values) - 1, int(len(values) * fraction))] if values else float("nan")


def main():
    signal.signal(signal.SIGTERM, lambda *args: sys.exit(1))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=3000, help="connections a burst")
    parser.add_argument("--concurrency", type=int, default=50, help="connections being opened at once")
    parser.add_argument("--shapes", default="close,hold", help="close (LOGOUT and close), hold (kept open)")
    parser.add_argument("--runs", type=int, default=3, help="bursts of each shape on each server (medians)")
    parser.add_argument("--workers", type=int, default=None, help="gateway's [server] workers (default: its own)")
    parser.add_argument("--kill", action="store_true", help="kill -9 gateway's worker 1 a quarter into each burst")
    parser.add_argument("--client-processes", type=int, default=2, help="client processes sharing a burst")
    parser.add_argument("--timeout", type=float, default=30, help="seconds a client waits for an answer")
    parser.add_argument("--dovecot-login", default="security,performance",
                        help="Dovecot's login modes to run, comma-separated: security (its default, a process"
                             " for each connection), performance (service_count = 0, a process per CPU)")
    parser.add_argument("--only", default="ours,dovecot", help="servers to run (comma-separated)")
    options = parser.parse_args()
    shapes = options.shapes.split(",")
    only = options.only.split(",")
    print("machine: %s, %d CPUs, %s, Python %s"
          % (platform.node(), os.cpu_count(), imap.cpuModel(), platform.python_version()))
    print("date: %s UTC" % (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),))
    print("%d connections a burst, %d at a time, from %d client processes; gateway workers: %s%s"
          % (options.connections, options.concurrency, options.client_processes,
             options.workers if options.workers is not None else "default (%d CPUs)" % (os.cpu_count(),),
             "; worker 1 killed a quarter into each burst" if options.kill else ""), flush=True)
    for n in range(options.client_processes):
        with socket.socket() as s:
            s.bind(("127.0.3.%d" % (n + 1,), 0))  # loopback's whole /8 answers on Linux
    tmp = tempfile.mkdtemp(prefix="gateway-bench-connect-")
    children, servers, results = [], [], {}
    try:
        dataRoot = os.path.join(tmp, "data")
        os.makedirs(dataRoot)
        imap.makeAccount(tmp, dataRoot)
        for login in options.dovecot_login.split(",") if "dovecot" in only else ():
            started = startDovecot(os.path.join(tmp, "dovecot-" + login), options.connections, login)
            if started is not None:
                children.append(started[0])
                servers.append((DOVECOTS[login], started[0].pid, started[1]))
        if "ours" in only:
            os.makedirs(os.path.join(tmp, "ours"))
            child, port = startOurs(os.path.join(tmp, "ours"), dataRoot, options.connections, options.workers)
            children.append(child)
            servers.append(("ours", child.pid, port))
            time.sleep(2)  # the workers start after the parent listens
        for shape in shapes:
            for run in range(options.runs):
                for kind, pid, port in servers:
                    result = burst(pid, port, options, shape, options.kill and kind == "ours")
                    results.setdefault((shape, kind), []).append(result)
                    print("%s, %s, run %d: %d connections in %.2f s (%.0f a second), greeting median %.1f ms, "
                          "p99 %.1f ms, slowest %.1f ms, %d failures%s%s"
                          % (kind, shape, run + 1, result["counted"], result["seconds"],
                             result["counted"] / result["seconds"], 1000 * percentile(result["latencies"], 0.5),
                             1000 * percentile(result["latencies"], 0.99), 1000 * max(result["latencies"] or [0]),
                             result["failures"],
                             "; %d begun before the kill lost; after the kill: p99 %.1f ms, slowest %.1f ms"
                             % (result["lost"], 1000 * percentile(result["after"], 0.99),
                                1000 * max(result["after"] or [0]))
                             if kind == "ours" and options.kill else "",
                             " (%s)" % ("; ".join(result["examples"]),) if result["examples"] else ""),
                          flush=True)
    finally:
        for child in children:
            imap.stop(child)
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, shapes, options)


#: The report's name of each Dovecot login mode.
DOVECOTS = {"security": "dovecot", "performance": "dovecot-perf"}


def report(results, shapes, options):
    print("\nmedians of %d burst(s) of %d connections, %d at a time" % (options.runs, options.connections,
                                                                       options.concurrency))
    for shape in shapes:
        print("\n%s" % ("LOGOUT and close" if shape == "close" else "kept open until the burst ends",))
        rows = {}
        for kind in ["ours"] + list(DOVECOTS.values()):
            runs = results.get((shape, kind))
            if not runs:
                continue
            rows[kind] = row = {
                "rate": statistics.median(r["counted"] / r["seconds"] for r in runs),
                "median": statistics.median(percentile(r["latencies"], 0.5) for r in runs),
                "p99": statistics.median(percentile(r["latencies"], 0.99) for r in runs),
                "slowest": statistics.median(max(r["latencies"] or [0]) for r in runs),
                "failures": sum(r["failures"] for r in runs),
            }
            line = ("%-12s %8.0f connections a second; greeting median %.1f ms, p99 %.1f ms, slowest %.1f ms; "
                    "%d failures" % (kind, row["rate"], 1000 * row["median"], 1000 * row["p99"],
                                     1000 * row["slowest"], row["failures"]))
            if kind == "ours" and options.kill:
                line += "; %d begun before the kill lost" % (sum(r["lost"] for r in runs),)
                line += "; after the kill: p99 %.1f ms, slowest %.1f ms" % (
                    1000 * statistics.median(percentile(r["after"], 0.99) for r in runs),
                    1000 * statistics.median(max(r["after"] or [0]) for r in runs))
            print(line)
        for kind in DOVECOTS.values():
            if "ours" in rows and kind in rows:
                print("ratio gateway / %s, connections a second: %.2f" % (kind, rows["ours"]["rate"] / rows[kind]["rate"]))


if __name__ == "__main__":
    main()
