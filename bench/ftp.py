"""
FTP benchmark: gateway's FTP server beside pyftpdlib and Twisted's stock
FTP server, all serving the same folder, each in its own process, measured
in the same run with the same ftplib client.

    .venv/bin/python bench/ftp.py [--size-mb 100] [--clients 50] [--rounds 3]

Prints the median of each measurement and the ratio gateway / peer (higher
is better for gateway on every line).  Every account compares plain-text
passwords: gateway's is stored as {PLAIN}, as pyftpdlib's DummyAuthorizer
and Twisted's in-memory checker keep theirs (gateway's default
{SHA512-CRYPT} would add several milliseconds of hashing to each login).
"STOR MB/s" uploads a new file, "STOR over MB/s" the same file again, over
the first (see storThroughput).  "sessions/s" is wall-clock and moves with the load of the machine; "session
CPU ms" is the server process's CPU time per session (its threads' time on
a CPU, from /proc), which other processes on the machine disturb less.
"""

import os
import sys

# bench/ holds http.py and friends: keep this folder off the import path so
# they do not shadow the standard library.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path.insert(0, os.path.dirname(HERE))

import argparse  # noqa: E402
import ftplib  # noqa: E402
import io  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from bench import peers  # noqa: E402

USER, PASSWORD = "demo", "s3cret pass"
SERVERS = ("gateway", "pyftpdlib", "twisted")
#: measure -> whether a higher value is better (the ratio is inverted when not)
MEASURES = {"RETR MB/s": True, "STOR MB/s": True, "STOR over MB/s": True, "sessions/s": True,
            "session CPU ms": False}


# -- servers (each run in a child process) -----------------------------------


def serveGateway(port, dataRoot):
    from twisted.internet import reactor

    from gateway.ftp.server import makeFactory
    from gateway.service import makeContext
    from tests.support import makeTestConfig

    config = makeTestConfig(dataRoot)
    config._values["ftp", "max_connections_per_account"] = 10000
    config._values["ftp", "max_connections"] = 10000
    config._values["ftp", "max_connections_per_address"] = 0
    config._values["server", "log_level"] = "warn"
    context = makeContext(config, reactor=reactor, clock=reactor)
    reactor.suggestThreadPoolSize(20)
    reactor.listenTCP(port, makeFactory(context), backlog=512, interface="127.0.0.1")
    reactor.run()


def servePyftpdlib(port, folder):
    import logging

    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    logging.basicConfig(level=logging.WARNING)
    authorizer = DummyAuthorizer()
    authorizer.add_user(USER, PASSWORD, folder, perm="elradfmwMT")
    FTPHandler.authorizer = authorizer
    server = FTPServer(("127.0.0.1", port), FTPHandler)
    server.max_cons = 10000
    server.serve_forever()


def serveTwisted(port, folder):
    from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
    from twisted.cred.portal import Portal
    from twisted.internet import reactor
    from twisted.protocols import ftp
    from twisted.python.filepath import FilePath

    class Realm(ftp.BaseFTPRealm):
        def getHomeDirectory(self, avatarId):
            return FilePath(folder)

    checker = InMemoryUsernamePasswordDatabaseDontUse()
    checker.addUser(USER, PASSWORD)
    checker.addUser(USER.encode(), PASSWORD.encode())
    factory = ftp.FTPFactory(Portal(Realm(folder), [checker]))
    factory.allowAnonymous = False
    reactor.listenTCP(port, factory, backlog=512, interface="127.0.0.1")
    reactor.run()


# -- client measurements -----------------------------------------------------


def _login(port):
    ftp = ftplib.FTP(timeout=60)
    ftp.connect("127.0.0.1", port)
    ftp.login(USER, PASSWORD)
    return ftp


class _Zeros(io.RawIOBase):
    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def read(self, n=-1):
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


def retrThroughput(port, size):
    ftp = _login(port)
    got = [0]
    start = time.perf_counter()
    ftp.retrbinary("RETR big.bin", lambda chunk: got.__setitem__(0, got[0] + len(chunk)), blocksize=256 * 1024)
    elapsed = time.perf_counter() - start
    ftp.quit()
    assert got[0] == size, got[0]
    return size / elapsed / 1e6


def storThroughput(port, size, name, new=True):
    """
    MB/s of one upload: of a new file, or (C{new} false) over the file of
    that name, which gateway replaces atomically (a new file renamed over
    the old, which ext4 makes write the data out first) and pyftpdlib and
    Twisted truncate and overwrite in place.
    """
    ftp = _login(port)
    if new:
        try:
            ftp.delete(name)
        except ftplib.error_perm:
            pass
        ftp.quit()
        os.sync()
        ftp = _login(port)
    start = time.perf_counter()
    ftp.storbinary("STOR " + name, _Zeros(size), blocksize=256 * 1024)
    elapsed = time.perf_counter() - start
    ftp.quit()
    return size / elapsed / 1e6


def cpuSeconds(pid):
    """
    CPU seconds of process C{pid}'s threads, from each one's
    C{/proc/PID/task/TID/schedstat} (nanoseconds: C{/proc/PID/stat} counts
    in clock ticks, 10 ms, a fifth of a millisecond per session of a
    50-client round).  Threads that have ended are not counted; none of the
    servers ends one during a run.
    """
    total = 0
    for task in os.listdir("/proc/%d/task" % (pid,)):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, task)) as f:
                total += int(f.read().split()[0])
        except OSError:
            continue  # ended meanwhile
    return total / 1e9


def concurrentSessions(port, clients):
    errors = []
    barrier = threading.Barrier(clients)

    def one():
        try:
            barrier.wait()
            ftp = _login(port)
            ftp.retrlines("LIST", lambda line: None)
            ftp.retrbinary("RETR small.txt", lambda chunk: None)
            ftp.quit()
        except Exception as e:  # noqa: BLE001 - counted and reported
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        print("  %d errors, e.g. %r" % (len(errors), errors[0]))
    return (clients - len(errors)) / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", nargs=3, metavar=("KIND", "PORT", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        kind, port, path = args.serve
        {"gateway": serveGateway, "pyftpdlib": servePyftpdlib, "twisted": serveTwisted}[kind](int(port), path)
        return

    from tests.support import makeDataRoot

    work = tempfile.mkdtemp(prefix="gateway-bench-ftp-")
    dataRoot = os.path.join(work, "data")
    directory = makeDataRoot(dataRoot, scheme="PLAIN")
    folder = os.path.join(directory.getAccount("demo@example.test").path.path, "files")
    os.makedirs(folder, exist_ok=True)
    size = args.size_mb * 1024 * 1024
    with open(os.path.join(folder, "big.bin"), "wb") as f:
        for _ in range(args.size_mb):
            f.write(os.urandom(1024 * 1024))
    with open(os.path.join(folder, "small.txt"), "wb") as f:
        f.write(b"small file\n" * 100)
    for i in range(20):
        with open(os.path.join(folder, "listed-%02d.txt" % (i,)), "wb") as f:
            f.write(b"x" * i)

    processes = {}
    ports = {}
    try:
        for kind in SERVERS:
            ports[kind] = peers.freePort()
            path = dataRoot if kind == "gateway" else folder
            processes[kind] = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--serve", kind, str(ports[kind]), path],
                cwd=os.path.dirname(HERE),
            )
        for kind in SERVERS:
            if not peers.waitForPort(ports[kind], timeout=10):
                raise RuntimeError("server on port %d did not start" % (ports[kind],))

        results = {kind: {measure: [] for measure in MEASURES} for kind in SERVERS}
        for r in range(args.rounds):
            for kind in SERVERS:
                # Each measurement starts with the uploads before it on
                # disk, so that their write-back does not run during it.
                os.sync()
                results[kind]["RETR MB/s"].append(retrThroughput(ports[kind], size))
                os.sync()
                results[kind]["STOR MB/s"].append(storThroughput(ports[kind], size, "up-%s.bin" % (kind,)))
                os.sync()
                results[kind]["STOR over MB/s"].append(
                    storThroughput(ports[kind], size, "up-%s.bin" % (kind,), new=False))
                os.sync()
                before = cpuSeconds(processes[kind].pid)
                results[kind]["sessions/s"].append(concurrentSessions(ports[kind], args.clients))
                used = cpuSeconds(processes[kind].pid) - before
                results[kind]["session CPU ms"].append(used * 1000 / args.clients)
            print("round %d done" % (r + 1,), flush=True)
    finally:
        for p in processes.values():
            p.terminate()
        for p in processes.values():
            p.wait()
        # The files are a few hundred megabytes.
        shutil.rmtree(work, ignore_errors=True)

    print()
    print("FTP benchmark: %d MB file, %d concurrent clients, median of %d rounds" % (
        args.size_mb, args.clients, args.rounds))
    print("%-15s %10s %12s %12s %12s %12s" % (
        "measure", "gateway", "pyftpdlib", "twisted", "gw/pyftpd", "gw/twisted"))
    for measure, higherIsBetter in MEASURES.items():
        m = {kind: statistics.median(results[kind][measure]) for kind in SERVERS}
        ratios = [m["gateway"] / m[peer] if higherIsBetter else m[peer] / m["gateway"] for peer in SERVERS[1:]]
        print("%-15s %10.1f %12.1f %12.1f %11.2fx %11.2fx" % (
            (measure, m["gateway"], m["pyftpdlib"], m["twisted"]) + tuple(ratios)))


if __name__ == "__main__":
    main()
