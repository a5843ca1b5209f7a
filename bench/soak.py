#!/usr/bin/env python
"""
Soak (issue 16): mixed traffic from many clients with a fuzzing client among
them, against one gateway under twistd (every protocol on loopback), for a
fixed time; then: was any traceback logged, and is the server's memory back
near where it started?

    .venv/bin/python bench/soak.py [--minutes 10] [--imap-clients 150] [--other-clients 50]

  - C{--imap-clients} sessions run the checked IMAP mix of
    C{tests.imapload} (every reply checked by C{tests.imapcheck}), half of
    them logging in every cycle;
  - C{--other-clients} loop over LMTP deliveries, POP3 (STAT, LIST, RETR),
    HTTP GETs of the personal site and free/busy, and FTP (LIST, STOR,
    RETR), each checking its replies;
  - one fuzzing client sends random and hostile input (bad lines, huge
    literals, bare LFs, pipelined junk, early disconnects) to every port.

Memory is the server's resident set (C{/proc/PID/status} VmRSS): after
start-up and one warm-up minute of traffic ("started"), and after the
clients stopped and the server had 20 s to settle ("after").  Prints the
counts, the tracebacks found in the server's log, and the ratio.
"""

import argparse
import ftplib
import io
import os
import poplib
import random
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
from tests import imapload  # noqa: E402

PROTOCOLS = ("imap", "pop3", "http", "ftp", "lmtp")


def startServer(tmp, dataRoot):
    ports = {name: peers.freePort() for name in PROTOCOLS}
    config = os.path.join(tmp, "gateway.ini")
    with open(config, "w") as f:
        f.write("[server]\ndata_root = %s\nworkers = 1\n[tls]\ncertificate = %s/none.pem\nprivate_key = %s/none.pem\n"
                "[admin]\nenabled = no\n" % (dataRoot, tmp, tmp))
        for name, port in ports.items():
            f.write("[%s]\nlisten = tcp:%d:interface=127.0.0.1\nmax_connections_per_address = 0\n" % (name, port))
            if name == "ftp":
                # Every client comes from 127.0.0.1, logins without TLS included.
                f.write("passive_ports = 40000-40999\n")
    child = peers.subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "twistd"), "--nodaemon", "--pidfile=", "--logfile",
         os.path.join(tmp, "twistd.log"), "gateway", "--config", config], cwd=tmp)
    for port in ports.values():
        if not peers.waitForPort(port, child):
            raise RuntimeError("gateway did not start; see %s/twistd.log" % (tmp,))
    return child, ports


def rss(pid):
    with open("/proc/%d/status" % (pid,)) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--imap-clients", type=int, default=150)
    parser.add_argument("--other-clients", type=int, default=50)
    options = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="gateway-soak-")
    dataRoot = os.path.join(tmp, "var")
    makeAccount(tmp, dataRoot)
    child, ports = startServer(tmp, dataRoot)
    try:
        registry = imapload.Registry()
        connect = imapload.connector(ports["imap"], registry)
        setup = connect()
        setup.login(USER, PASSWORD)
        setup.command(b"CREATE Archive")
        setup.logout()
        start = rss(child.pid)
        seconds = options.minutes * 60
        deadline = time.monotonic() + seconds
        tally, errors = Tally(), []
        others = [threading.Thread(target=otherClient, args=(i, ports, deadline, random.Random(i), tally, errors))
                  for i in range(options.other_clients)]
        others.append(threading.Thread(target=fuzzClient, args=(ports, deadline, random.Random(99), tally)))
        for t in others:
            t.start()
        warm = {}

        def sample():
            time.sleep(min(60, seconds / 5))
            warm["rss"] = rss(child.pid)
        sampler = threading.Thread(target=sample)
        sampler.start()
        counter, checkers, problems, elapsed = imapload.runLoad(connect, USER, PASSWORD, options.imap_clients,
                                                                seconds, extras=True, qresync=True)
        for t in others + [sampler]:
            t.join()
        peak = rss(child.pid)
        time.sleep(20)
        after = rss(child.pid)
    finally:
        stop(child)
    log = ""
    for name in sorted(os.listdir(tmp)):
        if name.startswith("twistd.log"):  # twistd rotates it every megabyte
            with open(os.path.join(tmp, name), errors="replace") as f:
                log += f.read()
    violations = sum(sum(c.counts.values()) for c in checkers)
    imapCommands = sum(counter.ok.values()) + sum(counter.no.values())
    print("soak: %.1f min, %d IMAP clients (%d commands, %d violations, %d wrong answers, %d errors),"
          " %d other clients, 1 fuzzing client" % (options.minutes, options.imap_clients, imapCommands,
                                                  violations, len(problems), len(counter.errors),
                                                  options.other_clients))
    print("other clients: ok %s; failed %s" % (tally.ok, tally.failed))
    kinds = {}
    for checker in checkers:
        for kind, n in checker.counts.items():
            kinds[kind] = kinds.get(kind, 0) + n
    examples = {}
    for checker in checkers:
        for violation in checker.violations:
            examples.setdefault(violation.kind, violation)
    for kind in sorted(kinds):
        print("  violation %s: %d, e.g. %s | %r" % (kind, kinds[kind], examples[kind].text, examples[kind].context[:160]))
    for text in (errors + counter.errors)[:15]:
        print("  error: %s" % (text,))
    tracebacks = log.count("Traceback")
    print("tracebacks in the server log: %d" % (tracebacks,))
    if tracebacks:
        at = log.find("Traceback")
        print(log[max(0, at - 300):at + 1500])
    base = warm.get("rss", start)
    print("server RSS: at start %.1f MB, after the warm-up %.1f MB, at the end of traffic %.1f MB,"
          " 20 s later %.1f MB: %.2f of the warmed-up size (goal: within 10%%)"
          % (start / 1e6, base / 1e6, peak / 1e6, after / 1e6, after / base))
    print("log and data: %s" % (tmp,))


if __name__ == "__main__":
    main()
