#!/usr/bin/env python
"""
HTTP benchmark: requests per second of gateway's HTTP front-end beside
C{twisted.web.static.File} serving the same bytes, in the same run.

    .venv/bin/python bench/http.py [--seconds 5] [--rounds 3] [--connections 50] [--size 16384]
                                   [--client auto|wrk|python] [--events 10000] [--recurring 500]

One process listens with two sites on loopback: gateway's (L{makeFactory})
and a plain C{twisted.web} C{Site(static.File(folder))}.  Both log every
request to a file in the common/combined log format.  The load generator is
C{wrk} when installed (C{apt-get install wrk}), else a concurrent Python
client in a separate process (keep-alive C{http.client}, one thread per
connection).  It measures, each beside the same bytes from C{static.File}:

  - a static file of C{--size} bytes from the account's site (C{/~bench/});
  - the account's generated C{freebusy.vfb} as served from the free/busy
    cache (C{gateway.store.calendar.FreeBusyCache}).

Each case runs C{--rounds} rounds, gateway and C{static.File} taking turns
to go first; the medians and the median of the rounds' ratios are printed
(other load on the machine then hits both sides alike).  Goal (issue 5): at
least 0.8x C{static.File} for both.  Then the free/busy generation timing
(C{bench/freebusy.py}, unless C{--events 0}).  Results with the machine and
date go in C{bench/RESULTS.md}.
"""

import os
import sys

# This file is named like the standard library's http package: take its
# folder off the path before anything imports http.client.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path.insert(0, os.path.dirname(HERE))

import argparse  # noqa: E402
import http.client  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

WORKER = "--client-worker"


# -- the Python load generator (runs in a child process) -----------------------


def clientWorker(host, port, path, seconds, connections):
    """
    Keep-alive GETs of C{path} from C{connections} threads for C{seconds};
    print the number of good answers.
    """
    counts = [0] * connections
    errors = [0]
    deadline = time.monotonic() + seconds

    def run(i):
        connection = http.client.HTTPConnection(host, port, timeout=10)
        while time.monotonic() < deadline:
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                if response.status == 200:
                    counts[i] += 1
                else:
                    errors[0] += 1
            except (OSError, http.client.HTTPException):
                errors[0] += 1
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=10)
        connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(sum(counts), errors[0])


def loadPython(url, seconds, connections):
    match = re.match(r"http://([^:/]+):(\d+)(/.*)", url)
    output = subprocess.run(
        [sys.executable, os.path.abspath(__file__), WORKER, match.group(1), match.group(2), match.group(3),
         str(seconds), str(connections)],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    done, errors = int(output[0]), int(output[1])
    if errors:
        print("    (%d errors)" % (errors,))
    return done / seconds


def loadWrk(url, seconds, connections):
    threads = max(1, min(4, os.cpu_count() or 1))
    output = subprocess.run(
        ["wrk", "-t%d" % (threads,), "-c%d" % (connections,), "-d%ds" % (seconds,), url],
        capture_output=True, text=True, check=True,
    ).stdout
    if "Non-2xx" in output:
        print("    wrk saw non-2xx answers:\n" + output)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


# -- the servers ----------------------------------------------------------------


def rounds(load, ours, peer, count):
    """
    Measure C{ours} and C{peer} in C{count} rounds, taking turns to go first.

    @return: C{(median ours, median peer, [ratio of each round])} in
        requests per second.
    """
    oursRates, peerRates, ratios = [], [], []
    for n in range(count):
        if n % 2:
            peerRate, oursRate = load(peer), load(ours)
        else:
            oursRate, peerRate = load(ours), load(peer)
        oursRates.append(oursRate)
        peerRates.append(peerRate)
        ratios.append(oursRate / peerRate if peerRate else float("nan"))
    return statistics.median(oursRates), statistics.median(peerRates), ratios


def makeServers(reactor, workDir, size):
    """
    Build the data root, gateway's site and the static.File peer; listen.

    @return: C{(ourPort, peerPort, peerFolder)}.
    """
    from twisted.web import server, static

    from gateway.http.server import makeFactory
    from gateway.service import makeContext
    from tests.support import makeDataRoot, makeTestConfig

    dataRoot = os.path.join(workDir, "data")
    directory = makeDataRoot(dataRoot)
    directory.addAccount("bench@example.test", directory.getAccount("demo@example.test").password)
    config = makeTestConfig(dataRoot)
    config._values["http", "access_log"] = os.path.join(workDir, "gateway-access.log")
    context = makeContext(config, reactor=reactor, clock=reactor)
    account = context.realm.accountFor("bench@example.test")

    site = makeFactory(context)

    payload = os.urandom(size)
    account.fileStore.writeFile("/bench.bin", payload)
    peerFolder = os.path.join(workDir, "peer")
    os.makedirs(peerFolder)
    with open(os.path.join(peerFolder, "bench.bin"), "wb") as f:
        f.write(payload)
    peer = server.Site(static.File(peerFolder), logPath=os.path.join(workDir, "peer-access.log"))

    ourPort = reactor.listenTCP(0, site, interface="127.0.0.1", backlog=1024)
    peerPort = reactor.listenTCP(0, peer, interface="127.0.0.1", backlog=1024)
    return ourPort.getHost().port, peerPort.getHost().port, peerFolder


def freeBusyDocument(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", "/~bench/freebusy.vfb")
    response = connection.getresponse()
    body = response.read()
    connection.close()
    if response.status != 200:
        raise SystemExit("freebusy.vfb: HTTP %d %r" % (response.status, body[:200]))
    return body


# -- free/busy generation timing --------------------------------------------------


def generationTiming(events, recurring):
    """
    Free/busy generation for a calendar of C{events} events of which
    C{recurring} recur: C{bench/freebusy.py}, in a process of its own (it
    builds the calendar, then times the first-ever computation, the first
    after a restart, a recomputation, a new window and a cached answer).
    """
    print("free/busy generation (bench/freebusy.py --events %d --recurring %d):" % (events, recurring))
    sys.stdout.flush()
    subprocess.run([sys.executable, os.path.join(HERE, "freebusy.py"), "--events", str(events),
                    "--recurring", str(recurring), "--runs", "3"], check=True)


# -- main -----------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--size", type=int, default=16384, help="bytes of the static file")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--events", type=int, default=10000, help="0 skips the free/busy generation timing")
    parser.add_argument("--recurring", type=int, default=500)
    args = parser.parse_args(argv)

    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    load = loadWrk if client == "wrk" else loadPython

    from twisted.internet import reactor

    workDir = tempfile.mkdtemp(prefix="gateway-bench-http-")
    ourPort, peerPort, peerFolder = makeServers(reactor, workDir, args.size)
    results = {}

    def drive():
        try:
            document = freeBusyDocument(ourPort)
            with open(os.path.join(peerFolder, "freebusy.vfb"), "wb") as f:
                f.write(document)
            cases = [
                ("static file (%d bytes)" % (args.size,),
                 "http://127.0.0.1:%d/~bench/bench.bin" % (ourPort,),
                 "http://127.0.0.1:%d/bench.bin" % (peerPort,)),
                ("cached freebusy.vfb (%d bytes)" % (len(document),),
                 "http://127.0.0.1:%d/~bench/freebusy.vfb" % (ourPort,),
                 "http://127.0.0.1:%d/freebusy.vfb" % (peerPort,)),
            ]
            for name, ours, peer in cases:
                results[name] = rounds(lambda url: load(url, args.seconds, args.connections), ours, peer,
                                       args.rounds)
        except BaseException as e:
            results["error"] = e
        finally:
            reactor.callFromThread(reactor.stop)

    reactor.callWhenRunning(reactor.callInThread, drive)
    reactor.run()

    print("gateway HTTP benchmark, %s, Python %s, %s, client %s, %d connections, %d s per case"
          % (time.strftime("%Y-%m-%d"), platform.python_version(), platform.platform(), client,
             args.connections, args.seconds))
    if "error" in results:
        raise results.pop("error")
    for name, (ours, peer, ratios) in results.items():
        print("  %-34s gateway %9.0f req/s   static.File %9.0f req/s   ratio %.2f (rounds: %s; goal >= 0.80)"
              % (name, ours, peer, statistics.median(ratios), " ".join("%.2f" % (r,) for r in ratios)))
    shutil.rmtree(workDir, ignore_errors=True)
    if args.events:
        generationTiming(args.events, args.recurring)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == WORKER:
        host, port, path, seconds, connections = sys.argv[2:7]
        clientWorker(host, int(port), path, int(seconds), int(connections))
    else:
        main()
