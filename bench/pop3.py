#!/usr/bin/env python
"""
POP3 benchmark: login rate and RETR throughput of gateway's POP3 server
beside Twisted's stock C{twisted.mail.pop3.POP3} (over the same INBOX
through a minimal adapter) and Dovecot's pop3 (if C{dovecot} is installed,
over a copy of the same Maildir), all on loopback, in one run.

Each server runs in its own process; the client is a small raw-socket POP3
client (the same for every server), so the numbers compare the servers.

    .venv/bin/python bench/pop3.py [--messages 2000] [--logins 300] [--rounds 3]
"""

import argparse
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# bench/ itself must not be on the path: its scripts (http.py) shadow the stdlib.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path.insert(0, ROOT)

from bench import peers  # noqa: E402

USER = "demo@example.test"


# ---------------------------------------------------------------------------
# Servers (run with --serve KIND DATAROOT in a child process)


def _context(dataRoot):
    from twisted.internet import reactor

    from gateway.service import makeContext
    from tests.support import makeTestConfig

    config = makeTestConfig(dataRoot)
    return makeContext(config, reactor=reactor, clock=reactor)


def serveOurs(dataRoot):
    from twisted.internet import reactor

    from gateway.pop3.server import makeFactory

    factory = makeFactory(_context(dataRoot))
    port = reactor.listenTCP(0, factory, interface="127.0.0.1", backlog=200)
    print(port.getHost().port, flush=True)
    reactor.run()


def serveTwisted(dataRoot):
    from twisted.mail import pop3
    from zope.interface import implementer

    from tests.support import PASSWORD

    context = _context(dataRoot)

    @implementer(pop3.IMailbox)
    class Adapter:
        """Twisted's IMailbox over our INBOX (a snapshot at login)."""

        def __init__(self, mailbox):
            self.mailbox = mailbox
            infos = mailbox.messages(mailbox.uids())
            self.uids = [i.uid for i in infos]
            self.sizes = [i.size for i in infos]
            self.deleted = set()

        def listMessages(self, index=None):
            if index is None:
                return [0 if i in self.deleted else s for i, s in enumerate(self.sizes)]
            return self.sizes[index]

        def getMessage(self, index):
            return self.mailbox.openMessage(self.uids[index])

        def getUidl(self, index):
            return "%08X%08X" % (self.uids[index], self.mailbox.uidValidity)

        def deleteMessage(self, index):
            self.deleted.add(index)

        def undeleteMessages(self):
            self.deleted.clear()

        def sync(self):
            pass

    inbox = context.realm.accountFor(USER).mailStore.getMailbox("INBOX")
    peers.serveStock(pop3.POP3, pop3.IMailbox, lambda: Adapter(inbox), USER, PASSWORD)


def startChild(kind, dataRoot):
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve", kind, dataRoot],
        stdout=subprocess.PIPE, cwd=ROOT,
    )
    port = int(child.stdout.readline())
    return child, port


DOVECOT_CONF = """\
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{tmp}/Maildir
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {tmp}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={tmp}/home
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""


def startDovecot(inbox, password, tmp):
    """
    Dovecot over a copy of the INBOX Maildir, or C{None} if not installed.
    """
    if peers.dovecotBinary() is None:
        print("dovecot: not installed (apt-get install -y dovecot-pop3d): skipped")
        return None
    maildir = os.path.join(tmp, "Maildir")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(maildir, sub))
    for sub in ("cur", "new"):
        for name in os.listdir(os.path.join(inbox, sub)):
            shutil.copy(os.path.join(inbox, sub, name), os.path.join(maildir, "cur", name))
    return peers.runDovecot(tmp, DOVECOT_CONF, USER, password, [maildir])


# ---------------------------------------------------------------------------
# Client


class Client:
    """
    A minimal raw-socket POP3 client.
    """

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.line()

    def line(self):
        while b"\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed")
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def command(self, text):
        self.sock.sendall(text + b"\r\n")
        line = self.line()
        if not line.startswith(b"+OK"):
            raise RuntimeError("%r -> %r" % (text, line))
        return line

    def multiline(self, text):
        """
        Send a command with a multi-line answer; read to its end.

        @return: the octets received (about).
        """
        self.command(text)
        window = b"\r\n" + self.buffer
        octets = 0
        while True:
            end = window.find(b"\r\n.\r\n")
            if end >= 0:
                self.buffer = window[end + 5:]
                return octets + end
            octets += len(window) - 4
            data = self.sock.recv(262144)
            if not data:
                raise EOFError("connection closed")
            window = window[-4:] + data

    def login(self, password):
        self.command(b"USER " + USER.encode())
        self.command(b"PASS " + password.encode())

    def quit(self):
        self.sock.sendall(b"QUIT\r\n")
        try:
            self.line()
        finally:
            self.sock.close()


def benchLogins(port, password, count):
    times = []
    start = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        client = Client(port)
        client.login(password)
        client.quit()
        times.append(time.perf_counter() - t0)
    return count / (time.perf_counter() - start), statistics.median(times)


def benchRetr(port, password, count):
    """
    RETR messages 1 to C{count} in one session.

    @return: C{(messages per second, MB per second)}.
    """
    client = Client(port)
    client.login(password)
    start = time.perf_counter()
    octets = 0
    for number in range(1, count + 1):
        octets += client.multiline(b"RETR %d" % (number,))
    elapsed = time.perf_counter() - start
    client.quit()
    return count / elapsed, octets / elapsed / 1e6


# ---------------------------------------------------------------------------


def makeMessages(count, seed=1):
    rng = random.Random(seed)
    for i in range(count):
        roll = rng.random()
        size = 2000 if roll < 0.7 else 20000 if roll < 0.95 else 200000
        lines = []
        length = 0
        while length < size:
            line = "".join(rng.choice("abcdefghij .,") for _ in range(rng.randint(0, 76)))
            if rng.random() < 0.02:
                line = "." + line
            lines.append(line)
            length += len(line) + 1
        yield ("From: bench@example.test\nTo: %s\nSubject: message %d\n\n%s\n" % (
            USER, i, "\n".join(lines))).encode()


def main():
    # SIGTERM runs the clean-up (children killed, temporary folder removed).
    signal.signal(signal.SIGTERM, lambda *args: sys.exit(1))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--logins", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stock-retr", type=int, default=300,
                        help="messages Twisted's stock server retrieves per round (it is slow)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    options = parser.parse_args()

    from gateway.store import maildir
    from gateway.store.mail import MailStore
    from tests.support import PASSWORD, makeDataRoot

    tmp = tempfile.mkdtemp(prefix="gateway-bench-pop3-")
    try:
        dataRoot = os.path.join(tmp, "data")
        directory = makeDataRoot(dataRoot)
        account = directory.getAccount(USER)
        mailPath = os.path.join(account.path.path, "mail")
        store = MailStore(mailPath, useInotify=False)
        inbox = store.getMailbox("INBOX")
        t0 = time.perf_counter()
        total = 0
        for message in makeMessages(options.messages):
            inbox.appendMessage(message)
            total += len(message)
        print("%d messages, %.1f MB, stored in %.1f s" % (
            options.messages, total / 1e6, time.perf_counter() - t0))
        inboxPath = maildir.mailboxPath(store.path, "INBOX")
        store.close()

        servers = []
        for kind in ("ours", "twisted"):
            child, port = startChild(kind, dataRoot)
            servers.append((kind, child, port))
        dovecot = startDovecot(inboxPath, PASSWORD, os.path.join(tmp, "dovecot"))
        if dovecot is not None:
            servers.append(("dovecot",) + dovecot)

        results = {}
        logins = {kind: [] for kind, _child, _port in servers}
        retrs = {kind: [] for kind, _child, _port in servers}
        try:
            # Rounds take turns between the servers, so that load from
            # elsewhere on the machine falls on all of them alike.
            for _ in range(options.rounds):
                for kind, _child, port in servers:
                    logins[kind].append(benchLogins(port, PASSWORD, options.logins))
                    count = min(options.messages, options.stock_retr) if kind == "twisted" else options.messages
                    retrs[kind].append(benchRetr(port, PASSWORD, count))
            for kind in logins:
                results[kind] = (
                    statistics.median(r[0] for r in logins[kind]),
                    statistics.median(r[1] for r in logins[kind]) * 1000,
                    statistics.median(r[0] for r in retrs[kind]),
                    statistics.median(r[1] for r in retrs[kind]),
                )
        finally:
            for _kind, child, _port in servers:
                child.terminate()
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()

        print("\nmedians of %d rounds (%d logins, RETR of %d messages per round; %d for twisted)" % (
            options.rounds, options.logins, options.messages, min(options.messages, options.stock_retr)))
        print("%-8s %12s %12s %12s %10s" % ("server", "logins/s", "login ms", "RETR msg/s", "MB/s"))
        for kind, (rate, latency, messages, mbps) in results.items():
            print("%-8s %12.0f %12.2f %12.0f %10.1f" % (kind, rate, latency, messages, mbps))
        ours = results["ours"]
        for peer in ("twisted", "dovecot"):
            if peer in results:
                theirs = results[peer]
                print("ours/%s: logins %.2f, RETR %.2f" % (peer, ours[0] / theirs[0], ours[3] / theirs[3]))
    finally:
        if options.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        {"ours": serveOurs, "twisted": serveTwisted}[sys.argv[2]](sys.argv[3])
    else:
        main()
