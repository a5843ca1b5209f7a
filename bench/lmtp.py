#!/usr/bin/env python
"""
LMTP delivery rate: gateway's LMTP server beside Dovecot 2.3's (lmtp, with
its defaults) on loopback, in one run (issue 14).

    .venv/bin/python bench/lmtp.py [--clients 10] [--seconds 20] [--runs 3]
                                   [--workers 1,2] [--size 4096]

C{--clients} concurrent LMTP connections (each a thread of this script, the
way an MTA's delivery agents are) loop for C{--seconds}: C{MAIL FROM},
C{RCPT TO} (one recipient out of ten accounts, every fifth message three),
C{DATA} of a message of about C{--size} bytes, each client waiting for each
reply and checking it (C{250} for every command and one C{250} per
recipient after the data; anything else is a failure, not throughput).
After every run the messages in each recipient's Maildir are counted and
must equal the deliveries acknowledged: an acknowledged message that is
missing, or one more than acknowledged, stops the benchmark.

Reported: recipient deliveries per second (median of C{--runs}), the ratio
gateway / Dovecot (above 1: gateway faster), and server CPU (user +
system of the server's process tree) per delivery; gateway once per
C{--workers} count.  Dovecot (C{apt-get install -y dovecot-lmtpd}) runs
with its defaults (C{mail_fsync = optimized}: it fsyncs each delivered
file, as gateway does); without it only gateway runs.
"""

import argparse
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# bench/ itself must not be on the path: its scripts (http.py) shadow the stdlib.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.insert(0, ROOT)

from bench import peers  # noqa: E402
from bench.imap import cpuModel, stop  # noqa: E402
from bench.imapmix import treeCpu  # noqa: E402

DOMAIN = "example.test"
RECIPIENTS = ["rcpt%d@%s" % (i, DOMAIN) for i in range(10)]
PASSWORD = "bench-password"


class LMTPError(Exception):
    pass


class Client:
    """
    A raw-socket LMTP client that waits for every reply and checks it.
    """

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")
        self.expect(b"220")
        self.command(b"LHLO bench.example.org")

    def reply(self):
        """
        @return: the last line of one (possibly multi-line) reply.
        """
        while True:
            line = self.file.readline()
            if not line:
                raise EOFError("connection closed")
            if line[3:4] != b"-":
                return line.rstrip(b"\r\n")

    def expect(self, code):
        line = self.reply()
        if not line.startswith(code):
            raise LMTPError(line.decode("ascii", "replace"))
        return line

    def command(self, text, code=b"250"):
        self.sock.sendall(text + b"\r\n")
        return self.expect(code)

    def deliver(self, recipients, data):
        """
        One transaction; raises unless every recipient got C{250}.
        """
        self.command(b"MAIL FROM:<sender@example.org>")
        for address in recipients:
            self.command(b"RCPT TO:<%s>" % (address.encode(),))
        self.command(b"DATA", b"354")
        self.sock.sendall(data + b".\r\n")
        for _ in recipients:
            self.expect(b"250")

    def close(self):
        try:
            self.command(b"QUIT", b"221")
        except (OSError, EOFError, LMTPError):
            pass
        self.sock.close()


def makeMessage(client, n, size):
    head = (
        "From: Sender <sender@example.org>\r\n"
        "To: Someone <rcpt@example.test>\r\n"
        "Subject: Delivery %d of client %d\r\n"
        "Date: Mon, 1 Jan 2024 12:00:00 +0000\r\n"
        "Message-ID: <%d.%d@bench.example.org>\r\n\r\n" % (n, client, n, client)
    )
    line = "lorem ipsum dolor sit amet, consectetur adipiscing elit %d.\r\n" % (n,)
    body = line * max(1, (size - len(head)) // len(line))
    return (head + body).encode("ascii")


def load(port, clients, seconds, size, delivered):
    """
    C{clients} threads delivering for C{seconds}.

    @param delivered: C{{address: count}}, incremented by acknowledged
        deliveries.
    @return: C{(deliveries, failures, first errors, elapsed)}.
    """
    lock = threading.Lock()
    totals = {"ok": 0, "failed": 0, "errors": []}
    deadline = time.monotonic() + seconds

    def worker(index):
        ok = failed = 0
        errors = []
        client = Client(port)
        n = 0
        try:
            while time.monotonic() < deadline:
                n += 1
                count = 3 if n % 5 == 0 else 1
                recipients = [RECIPIENTS[(index + n + k) % len(RECIPIENTS)] for k in range(count)]
                try:
                    client.deliver(recipients, makeMessage(index, n, size))
                except LMTPError as e:
                    failed += 1
                    errors.append(str(e))
                    client.command(b"RSET")
                    continue
                ok += count
                with lock:
                    for address in recipients:
                        delivered[address] = delivered.get(address, 0) + 1
        finally:
            client.close()
        with lock:
            totals["ok"] += ok
            totals["failed"] += failed
            totals["errors"] += errors[:3]

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return totals["ok"], totals["failed"], totals["errors"][:5], time.monotonic() - started


def countMessages(folder):
    return sum(
        len(os.listdir(os.path.join(folder, sub)))
        for sub in ("new", "cur")
        if os.path.isdir(os.path.join(folder, sub))
    )


# ---------------------------------------------------------------------------
# Servers


def startOurs(tmp, workers):
    """
    A data root with the ten accounts and gateway under twistd, LMTP only.

    @return: C{(process, port, {address: INBOX folder})}.
    """
    base = os.path.join(tmp, "gateway-%d" % (workers,))
    dataRoot = os.path.join(base, "data")
    os.makedirs(dataRoot)
    config = os.path.join(base, "gateway.ini")
    port = peers.freePort()
    with open(config, "w") as f:
        f.write("[server]\ndata_root = %s\nworkers = %d\n" % (dataRoot, workers))
        f.write("[tls]\ncertificate = %s/none.pem\nprivate_key = %s/none.pem\n" % (base, base))
        for name in ("imap", "pop3", "http", "ftp", "admin"):
            f.write("[%s]\nenabled = no\n" % (name,))
        f.write(
            "[lmtp]\nlisten = tcp:%d:interface=127.0.0.1\nlog_level = warn\nmax_connections_per_address = 0\n"
            % (port,)
        )
    ctl = os.path.join(os.path.dirname(sys.executable), "gatewayctl")
    subprocess.run([ctl, "--config", config, "domain", "add", DOMAIN], check=True, stdout=subprocess.DEVNULL)
    for address in RECIPIENTS:
        subprocess.run(
            [ctl, "--config", config, "account", "add", address, "--password", PASSWORD, "--scheme", "PLAIN"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    child = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "twistd"),
            "--nodaemon",
            "--pidfile=",
            "--logfile",
            os.path.join(base, "twistd.log"),
            "gateway",
            "--config",
            config,
        ],
        cwd=base,
    )
    if not peers.waitForPort(port, child):
        raise RuntimeError("gateway did not start; see %s/twistd.log" % (base,))
    folders = {
        a: os.path.join(dataRoot, "domains", DOMAIN, "accounts", a.split("@")[0], "mail", "INBOX")
        for a in RECIPIENTS
    }
    return child, port, folders


DOVECOT_CONF = """\
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
mail_location = maildir:~/Maildir
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {tmp}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={tmp}/home/%n allow_all_users=yes
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"""


def startDovecot(tmp):
    """
    Dovecot's LMTP, or C{None} when not installed.

    @return: C{(process, port, {address: INBOX folder})} or C{None}.
    """
    if peers.dovecotBinary() is None or not os.path.exists("/usr/lib/dovecot/lmtp"):
        print("dovecot: LMTP not installed (apt-get install -y dovecot-lmtpd): skipped")
        return None
    base = os.path.join(tmp, "dovecot")
    homes = [os.path.join(base, "home", a.split("@")[0]) for a in RECIPIENTS]
    for home in homes:
        os.makedirs(home)
    started = peers.runDovecot(base, DOVECOT_CONF, RECIPIENTS[0], PASSWORD, homes)
    if started is None:
        return None
    return started + ({a: os.path.join(h, "Maildir") for a, h in zip(RECIPIENTS, homes, strict=True)},)


def run(kind, server, options, results):
    child, port, folders = server
    delivered = {}
    # Warm-up: the first delivery to each account opens its index.
    client = Client(port)
    for address in RECIPIENTS:
        client.deliver([address], makeMessage(999, 0, options.size))
        delivered[address] = delivered.get(address, 0) + 1
    client.close()
    for n in range(options.runs):
        cpu0 = treeCpu(child.pid)
        ok, failed, errors, elapsed = load(port, options.clients, options.seconds, options.size, delivered)
        cpu = treeCpu(child.pid) - cpu0
        for address, folder in folders.items():
            have = countMessages(folder)
            if have != delivered.get(address, 0):
                raise AssertionError(
                    "%s: %s holds %d messages, %d were acknowledged"
                    % (kind, address, have, delivered.get(address, 0))
                )
        results.setdefault(kind, []).append((ok / elapsed, failed, 1000 * cpu / max(1, ok)))
        print(
            "%s run %d: %.0f deliveries/s, %d failures%s, %.2f ms CPU per delivery; every acknowledged "
            "message present"
            % (
                kind,
                n + 1,
                ok / elapsed,
                failed,
                " (%s)" % (errors,) if errors else "",
                1000 * cpu / max(1, ok),
            ),
            flush=True,
        )


def main():
    signal.signal(signal.SIGTERM, lambda *args: sys.exit(1))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", default="1,2", help="gateway [server] workers counts, comma-separated")
    parser.add_argument("--size", type=int, default=4096, help="message size in bytes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    options = parser.parse_args()
    print(
        "machine: %s, %d CPUs, %s, Python %s"
        % (platform.node(), os.cpu_count(), cpuModel(), platform.python_version())
    )
    print("date: %s UTC" % (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),))
    tmp = tempfile.mkdtemp(prefix="gateway-bench-lmtp-")
    results = {}
    try:
        dovecot = startDovecot(tmp)
        if dovecot is not None:
            try:
                run("dovecot", dovecot, options, results)
            finally:
                stop(dovecot[0])
        for workers in [int(w) for w in options.workers.split(",")]:
            ours = startOurs(tmp, workers)
            try:
                run("gateway, workers = %d" % (workers,), ours, options, results)
            finally:
                stop(ours[0])
    finally:
        if options.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(
        "\n%d clients, %g s per run, messages of %d bytes, medians of %d runs"
        % (options.clients, options.seconds, options.size, options.runs)
    )
    for kind, rows in results.items():
        rate = statistics.median(r[0] for r in rows)
        line = "%-22s %8.0f deliveries/s  %6.2f ms CPU each  failures %d" % (
            kind,
            rate,
            statistics.median(r[2] for r in rows),
            sum(r[1] for r in rows),
        )
        if "dovecot" in results and kind != "dovecot":
            line += "  ratio %.2f" % (rate / statistics.median(r[0] for r in results["dovecot"]),)
        print(line)


if __name__ == "__main__":
    main()
