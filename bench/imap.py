#!/usr/bin/env python
"""
IMAP benchmark: gateway's IMAP server beside Dovecot 2.3 (imapd, over a copy
of the same Maildir) and Twisted's stock C{twisted.mail.imap4.IMAP4Server}
(over the same messages held in memory), all on loopback, in one run.

    .venv/bin/python bench/imap.py [--messages 50000] [--select-messages 100000]
                                   [--runs 3] [--duration 30] [--quick]

Each server runs in its own process: gateway under C{twistd} with a generated
configuration and an account made with C{gatewayctl}; Dovecot with a generated
C{dovecot.conf}; Twisted's stock server in a child of this script.  The client
is a small raw-socket IMAP client (the same for every server, plain C{tcp:},
C{LOGIN}), so the numbers compare the servers.  Measured (medians of C{--runs}):

  - C{FETCH 1:* (FLAGS UID RFC822.SIZE)}, C{FETCH 1:*
    BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)]}, C{SEARCH UNSEEN} and
    C{SEARCH FROM "xavier"} on an INBOX of C{--messages} messages;
  - C{SELECT} of a mailbox of C{--select-messages} messages, warm (every
    server has selected it once before);
  - C{--clients} concurrent clients looping over a mixed session (LOGIN,
    SELECT, FETCH, FETCH BODY.PEEK[], STORE, APPEND, STORE \\Deleted, EXPUNGE,
    LOGOUT) for C{--duration} seconds: IMAP commands per second.

Ratios are gateway's throughput over the peer's (above 1: gateway is faster).
"""

import argparse
import bisect
import io
import os
import platform
import random
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

DOMAIN = "example.test"
USER = "bench@" + DOMAIN
PASSWORD = "bench-password"
MIXED_MESSAGES = 1000
DATE = "Mon, 1 Jan 2024 12:00:00 +0000"


# ---------------------------------------------------------------------------
# Messages


def makeMessage(n):
    """
    A small message (about 1 KB, CRLF); every 97th is from "xavier", every
    third one is unseen (see L{writeMaildir}).
    """
    sender = (
        "Xavier Example <xavier@example.net>" if n % 97 == 0 else "Sender %d <sender%d@example.org>" % (n, n)
    )
    body = "".join("Line %d of message %d: lorem ipsum dolor sit amet.\r\n" % (i, n) for i in range(14))
    return (
        "From: %s\r\n"
        "To: %s\r\n"
        "Subject: Benchmark message number %d\r\n"
        "Date: %s\r\n"
        "Message-ID: <%d@bench.example.org>\r\n"
        "\r\n"
        "%s" % (sender, USER, n, DATE, n, body)
    ).encode("ascii")


def writeMaildir(folder, count, tag):
    """
    Write C{count} messages straight into C{folder/cur} (no index: the store
    builds it on first open).
    """
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    cur = os.path.join(folder, "cur")
    for n in range(count):
        data = makeMessage(n)
        flags = "" if n % 3 == 0 else "S"
        name = "%d.M%dP%dQ%d.bench,S=%d,W=%d:2,%s" % (
            1700000000 + n,
            n % 1000000,
            tag,
            n,
            len(data),
            len(data),
            flags,
        )
        with open(os.path.join(cur, name), "wb") as f:
            f.write(data)


def readMaildir(folder, limit=None):
    """
    @return: C{[(bytes, flags)]} of the messages in C{folder/cur}, in name
        order (the order written).
    """
    cur = os.path.join(folder, "cur")
    names = sorted(os.listdir(cur))
    if limit is not None:
        names = names[:limit]
    out = []
    for name in names:
        with open(os.path.join(cur, name), "rb") as f:
            data = f.read()
        info = name.rpartition(":2,")[2]
        out.append((data, ["\\Seen"] if "S" in info else []))
    return out


# ---------------------------------------------------------------------------
# Twisted's stock server (run with --serve-twisted MAILROOT LIMIT in a child)


def serveTwisted(mailRoot, limit):
    from twisted.internet import defer
    from twisted.mail import imap4
    from zope.interface import implementer

    class Header(str):
        """
        A header value: C{_formatHeaders} (FETCH) wants C{str}, but the stock
        C{search_FROM} and friends compare it with the C{bytes} query.
        """

        def lower(self):
            return Header(str.lower(self))

        def find(self, sub, *args):
            return str.find(self, sub.decode("latin-1") if isinstance(sub, bytes) else sub, *args)

    @implementer(imap4.IMessage)
    class Message:
        def __init__(self, uid, data, flags):
            self.uid = uid
            self.data = data
            self.flags = list(flags)
            self._headers = None

        def headers(self):
            if self._headers is None:
                head = self.data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
                self._headers = {}
                for line in head.split("\r\n"):
                    name, _, value = line.partition(":")
                    self._headers[name.lower()] = Header(value.strip())
            return self._headers

        def getHeaders(self, negate, *names):
            headers = self.headers()
            names = {n.lower() if isinstance(n, str) else n.decode().lower() for n in names}
            if not names:
                return dict(headers)
            return {k: v for k, v in headers.items() if (k in names) != negate}

        def getBodyFile(self):
            return io.BytesIO(self.data.split(b"\r\n\r\n", 1)[-1])

        def getSize(self):
            return len(self.data)

        def isMultipart(self):
            return False

        def getSubPart(self, part):
            raise IndexError(part)

        def getUID(self):
            return self.uid

        def getFlags(self):
            return self.flags

        def getInternalDate(self):
            return DATE

    @implementer(imap4.IMailbox)
    class Mailbox:
        """
        A minimal in-memory mailbox, shared by every session.
        """

        def __init__(self, messages):
            self.msgs = [Message(i + 1, data, flags) for i, (data, flags) in enumerate(messages)]
            self.nextUID = len(self.msgs) + 1
            self.listeners = []

        def getFlags(self):
            return ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"]

        def getHierarchicalDelimiter(self):
            return "/"

        def getUIDValidity(self):
            return 42

        def getUIDNext(self):
            return self.nextUID

        def getUID(self, message):
            return self.msgs[message - 1].uid

        def getMessageCount(self):
            return len(self.msgs)

        def getRecentCount(self):
            return 0

        def getUnseenCount(self):
            return sum(1 for m in self.msgs if "\\Seen" not in m.flags)

        def isWriteable(self):
            return True

        def destroy(self):
            pass

        def requestStatus(self, names):
            return {
                "MESSAGES": self.getMessageCount(),
                "RECENT": 0,
                "UIDNEXT": self.nextUID,
                "UIDVALIDITY": 42,
                "UNSEEN": self.getUnseenCount(),
            }

        def addListener(self, listener):
            self.listeners.append(listener)

        def removeListener(self, listener):
            self.listeners.remove(listener)

        def addMessage(self, message, flags=(), date=None):
            uid = self.nextUID
            self.nextUID += 1
            self.msgs.append(Message(uid, message.read(), flags))
            return defer.succeed(uid)

        def expunge(self):
            gone = [i + 1 for i, m in enumerate(self.msgs) if "\\Deleted" in m.flags]
            self.msgs = [m for m in self.msgs if "\\Deleted" not in m.flags]
            # Each number as the client sees it after the previous ones went.
            return [seq - k for k, seq in enumerate(gone)]

        def _select(self, messages, uid):
            msgs = self.msgs
            if not msgs:
                return []
            if uid:
                messages.last = msgs[-1].uid
                uids = [m.uid for m in msgs]
                out = []
                for u in messages:
                    i = bisect.bisect_left(uids, u)
                    if i < len(uids) and uids[i] == u:
                        out.append((i + 1, msgs[i]))
                return out
            messages.last = len(msgs)
            return [(i, msgs[i - 1]) for i in messages if 1 <= i <= len(msgs)]

        def fetch(self, messages, uid):
            return self._select(messages, uid)

        def store(self, messages, flags, mode, uid):
            result = {}
            for seq, m in self._select(messages, uid):
                if mode == 0:
                    m.flags = list(flags)
                elif mode > 0:
                    m.flags = m.flags + [f for f in flags if f not in m.flags]
                else:
                    m.flags = [f for f in m.flags if f not in flags]
                result[seq] = m.flags
            return result

    account = imap4.MemoryAccount("bench")
    for name in ("INBOX", "Big", "Mixed"):
        account.addMailbox(
            name, Mailbox(readMaildir(os.path.join(mailRoot, name), limit if name == "INBOX" else None))
        )

    peers.serveStock(imap4.IMAP4Server, imap4.IAccount, lambda: account, USER, PASSWORD)


# ---------------------------------------------------------------------------
# Server processes


def startOurs(tmp, dataRoot, workers=None):
    """
    gateway under twistd, IMAP only on a loopback port.  The data root (with
    its domain and account) must exist.

    @param workers: C{[server] workers}, or C{None} for the default (one
        per CPU).
    """
    port = peers.freePort()
    config = os.path.join(tmp, "gateway.ini")
    with open(config, "w") as f:
        f.write(
            "[server]\ndata_root = %s\n%s[tls]\ncertificate = %s/none.pem\nprivate_key = %s/none.pem\n"
            % (dataRoot, "" if workers is None else "workers = %d\n" % (workers,), tmp, tmp)
        )
        # The admin listener too: its default is a fixed port (8200).
        for name in ("lmtp", "pop3", "http", "ftp", "admin"):
            f.write("[%s]\nenabled = no\n" % (name,))
        # Every client connects from 127.0.0.1: no per-address limit.
        f.write("[imap]\nlisten = tcp:%d:interface=127.0.0.1\nlog_level = warn\nmax_connections_per_address = 0\n"
                % (port,))
    return peers.startGateway(tmp, config, port), port


def makeAccount(tmp, dataRoot, users=(USER,)):
    """
    Create the domain (clear-text login allowed) and the account (or the
    C{users}) with C{gatewayctl}; return the (first) account's mail folder.  The password is stored
    C{{PLAIN}}, as in Dovecot's passdb here, so that logins cost both servers
    the same (gateway's default, C{{SHA512-CRYPT}}, costs milliseconds).
    """
    config = os.path.join(tmp, "gatewayctl.ini")
    with open(config, "w") as f:
        f.write("[server]\ndata_root = %s\n" % (dataRoot,))
    ctl = os.path.join(os.path.dirname(sys.executable), "gatewayctl")
    subprocess.run(
        [ctl, "--config", config, "domain", "add", DOMAIN, "--cleartext-login", "yes"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    for user in users:
        subprocess.run(
            [ctl, "--config", config, "account", "add", user, "--password", PASSWORD, "--scheme", "PLAIN"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return os.path.join(dataRoot, "domains", DOMAIN, "accounts", users[0].split("@")[0], "mail")


def startTwisted(mailRoot, limit):
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve-twisted", mailRoot, str(limit)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    line = child.stdout.readline()
    if not line:
        raise RuntimeError("Twisted's server did not start")
    return child, int(line)


DOVECOT_CONF = """\
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{tmp}/Maildir
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {tmp}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={tmp}/home
}}
protocol imap {{
  mail_max_userip_connections = 1000
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


def startDovecot(mailRoot, tmp):
    """
    Dovecot over a hard-linked copy of our Maildirs (Maildir++ layout), or
    C{None} if not installed.
    """
    if not peers.dovecotImapInstalled():
        return None
    maildir = os.path.join(tmp, "Maildir")
    for name in ("INBOX", "Big", "Mixed"):
        target = maildir if name == "INBOX" else os.path.join(maildir, "." + name)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(target, sub))
        source = os.path.join(mailRoot, name, "cur")
        for file in os.listdir(source):
            # The Mixed folder is changed by both servers: a copy of its own.
            if name == "Mixed":
                shutil.copy(os.path.join(source, file), os.path.join(target, "cur", file))
            else:
                os.link(os.path.join(source, file), os.path.join(target, "cur", file))
    return peers.runDovecot(tmp, DOVECOT_CONF, USER, PASSWORD, [maildir])


def stop(child):
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


# ---------------------------------------------------------------------------
# Client


class IMAPError(Exception):
    pass


class Client:
    """
    A minimal raw-socket IMAP client: reads each answer whole, up to its
    tagged line.
    """

    def __init__(self, port, timeout=600):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.counter = 0
        self.line()

    def line(self):
        while b"\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed")
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def command(self, text, literal=None):
        """
        Send C{text} (and C{literal} after the server's continuation); read
        to the tagged answer.

        @return: the untagged part of the answer (C{bytes}).
        @raise IMAPError: on a C{NO} or C{BAD} answer.
        """
        self.counter += 1
        tag = b"T%d" % (self.counter,)
        if literal is None:
            self.sock.sendall(tag + b" " + text + b"\r\n")
        else:
            self.sock.sendall(tag + b" " + text + b" {%d}\r\n" % (len(literal),))
            line = self.line()
            if not line.startswith(b"+"):
                raise IMAPError("%r -> %r" % (text, line))
            self.sock.sendall(literal + b"\r\n")
        marker = b"\r\n" + tag + b" "
        chunks = []
        window = b"\r\n" + self.buffer
        while True:
            end = window.find(marker)
            if end >= 0:
                stop = window.find(b"\r\n", end + 2)
                if stop >= 0:
                    break
            chunks.append(window[: -len(marker) - 200])
            window = window[-len(marker) - 200 :]
            data = self.sock.recv(1 << 20)
            if not data:
                raise EOFError("connection closed")
            window += data
        status = window[end + 2 : stop]
        chunks.append(window[: end + 2])
        self.buffer = window[stop + 2 :]
        body = b"".join(chunks)[2:]
        if not status.startswith(tag + b" OK"):
            raise IMAPError("%r -> %r" % (text, status))
        return body

    def login(self):
        self.command(b'LOGIN "%s" "%s"' % (USER.encode(), PASSWORD.encode()))

    def logout(self):
        try:
            self.command(b"LOGOUT")
        except (EOFError, OSError):
            pass
        finally:
            self.sock.close()


def timed(client, text):
    start = time.perf_counter()
    answer = client.command(text)
    return time.perf_counter() - start, answer


def searchCount(answer):
    for line in answer.split(b"\r\n"):
        if line.startswith(b"* SEARCH"):
            return len(line.split()) - 2
    return 0


MEASURES = [
    ("FETCH (FLAGS UID RFC822.SIZE)", b"FETCH 1:* (FLAGS UID RFC822.SIZE)"),
    ("FETCH BODY.PEEK[HEADER.FIELDS]", b"FETCH 1:* BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)]"),
    ("SEARCH UNSEEN", b"SEARCH UNSEEN"),
    ('SEARCH FROM "xavier"', b'SEARCH FROM "xavier"'),
]


def benchCommands(port):
    """
    One round: warm SELECT of Big, then the L{MEASURES} on INBOX.

    @return: C{{name: (seconds, count)}}.
    """
    client = Client(port)
    client.login()
    result = {}
    elapsed, answer = timed(client, b"SELECT Big")
    result["SELECT (warm)"] = (elapsed, exists(answer))
    count = exists(client.command(b"SELECT INBOX"))
    for name, text in MEASURES:
        elapsed, answer = timed(client, text)
        if text.startswith(b"FETCH"):
            got = answer.count(b" FETCH (")
            if got != count:
                raise RuntimeError("%s: %d FETCH answers for %d messages" % (name, got, count))
        else:
            got = searchCount(answer)
        result[name] = (elapsed, got)
    client.logout()
    return result


def exists(answer):
    for line in answer.split(b"\r\n"):
        if line.endswith(b" EXISTS"):
            return int(line.split()[1])
    return 0


def mixedSession(port, rng, counts):
    client = Client(port, timeout=60)
    try:
        client.login()
        counts[0] += 1
        total = exists(client.command(b"SELECT Mixed"))
        counts[0] += 1
        client.command(b"FETCH 1:20 (FLAGS UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)])")
        counts[0] += 1
        n = rng.randint(1, max(1, total - 40))
        client.command(b"FETCH %d BODY.PEEK[]" % (n,))
        counts[0] += 1
        client.command(b"STORE %d +FLAGS (\\Seen)" % (n,))
        counts[0] += 1
        client.command(b"APPEND Mixed (\\Seen)", makeMessage(rng.randint(0, 10**6)))
        counts[0] += 1
        client.command(b"STORE 1 +FLAGS.SILENT (\\Deleted)")
        counts[0] += 1
        client.command(b"EXPUNGE")
        counts[0] += 1
        client.command(b"LOGOUT")
        counts[0] += 1
    finally:
        client.sock.close()


def benchMixed(port, clients, duration):
    """
    C{clients} threads loop over L{mixedSession} for C{duration} seconds.

    @return: C{(commands per second, sessions per second, errors)}.
    """
    deadline = time.monotonic() + duration
    results = []

    def worker(seed):
        rng = random.Random(seed)
        counts = [0]
        sessions = errors = 0
        while time.monotonic() < deadline:
            try:
                mixedSession(port, rng, counts)
                sessions += 1
            except (IMAPError, EOFError, OSError):
                errors += 1
        results.append((counts[0], sessions, errors))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    return (
        sum(r[0] for r in results) / elapsed,
        sum(r[1] for r in results) / elapsed,
        sum(r[2] for r in results),
    )


# ---------------------------------------------------------------------------


def main():
    # SIGTERM runs the clean-up (children stopped, temporary folder removed).
    signal.signal(signal.SIGTERM, lambda *args: sys.exit(1))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=50000, help="INBOX size for FETCH and SEARCH")
    parser.add_argument("--select-messages", type=int, default=100000, help="size of the SELECTed mailbox")
    parser.add_argument(
        "--twisted-messages",
        type=int,
        default=None,
        help="INBOX size for Twisted's stock server (default: --messages)",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=30, help="seconds of mixed load per run")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--only", default="ours,twisted,dovecot", help="servers to run (comma-separated)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    options = parser.parse_args()
    if options.quick:
        options.messages, options.select_messages = 2000, 4000
        options.duration, options.runs = 3, 1
        options.twisted_messages = options.twisted_messages or 500
    twistedMessages = min(options.twisted_messages or options.messages, options.messages)
    only = options.only.split(",")

    print(
        "machine: %s, %d CPUs, %s, Python %s"
        % (platform.node(), os.cpu_count(), cpuModel(), platform.python_version())
    )
    print("date: %s UTC" % (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),))
    tmp = tempfile.mkdtemp(prefix="gateway-bench-imap-")
    children = []
    try:
        dataRoot = os.path.join(tmp, "data")
        os.makedirs(dataRoot)
        mailRoot = makeAccount(tmp, dataRoot)
        t0 = time.perf_counter()
        writeMaildir(os.path.join(mailRoot, "INBOX"), options.messages, 1)
        writeMaildir(os.path.join(mailRoot, "Big"), options.select_messages, 2)
        writeMaildir(os.path.join(mailRoot, "Mixed"), min(MIXED_MESSAGES, options.messages), 3)
        print(
            "wrote %d + %d + %d message files in %.1f s"
            % (
                options.messages,
                options.select_messages,
                min(MIXED_MESSAGES, options.messages),
                time.perf_counter() - t0,
            )
        )

        servers = []
        if "dovecot" in only:
            dovecot = startDovecot(mailRoot, os.path.join(tmp, "dovecot"))
            if dovecot is not None:
                children.append(dovecot[0])
                servers.append(("dovecot", dovecot[1]))
        if "twisted" in only:
            t0 = time.perf_counter()
            child, port = startTwisted(mailRoot, twistedMessages)
            children.append(child)
            servers.append(("twisted", port))
            print(
                "twisted: loaded into memory in %.1f s (INBOX of %d)"
                % (time.perf_counter() - t0, twistedMessages)
            )
        if "ours" in only:
            child, port = startOurs(tmp, dataRoot)
            children.append(child)
            servers.append(("ours", port))

        # Warm-up: the first SELECT of each mailbox builds the servers' indexes.
        for kind, port in servers:
            client = Client(port)
            client.login()
            times = []
            for name in (b"INBOX", b"Big", b"Mixed"):
                times.append("%s %.2f s" % (name.decode(), timed(client, b"SELECT " + name)[0]))
            client.logout()
            print("%s: first (cold) SELECT: %s" % (kind, ", ".join(times)))

        results = {}
        for kind, port in servers:
            rounds = [benchCommands(port) for _ in range(options.runs)]
            mixed = [benchMixed(port, options.clients, options.duration) for _ in range(options.runs)]
            row = {}
            for name in rounds[0]:
                seconds = statistics.median(r[name][0] for r in rounds)
                row[name] = (seconds, rounds[0][name][1])
            row["mixed"] = tuple(statistics.median(m[i] for m in mixed) for i in range(3))
            results[kind] = row
            print("%s: done" % (kind,), flush=True)
    finally:
        for child in children:
            stop(child)
        if options.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    report(results, options, twistedMessages)


def cpuModel():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def report(results, options, twistedMessages):
    print(
        "\nmedians of %d runs; INBOX of %d messages (Twisted: %d), SELECT of %d messages, "
        "mixed load: %d clients for %g s"
        % (
            options.runs,
            options.messages,
            twistedMessages,
            options.select_messages,
            options.clients,
            options.duration,
        )
    )
    names = [
        "FETCH (FLAGS UID RFC822.SIZE)",
        "FETCH BODY.PEEK[HEADER.FIELDS]",
        "SEARCH UNSEEN",
        'SEARCH FROM "xavier"',
        "SELECT (warm)",
    ]
    kinds = [k for k in ("ours", "dovecot", "twisted") if k in results]
    print("%-32s" % ("",) + "".join("%24s" % (k,) for k in kinds))
    for name in names:
        cells = []
        for kind in kinds:
            seconds, count = results[kind][name]
            size = (
                options.select_messages
                if name.startswith("SELECT")
                else (twistedMessages if kind == "twisted" else options.messages)
            )
            cells.append("%8.3f s %9.0f msg/s" % (seconds, size / seconds))
            del count
        print("%-32s" % (name,) + "".join("%24s" % (c,) for c in cells))
    print(
        "%-32s" % ("mixed: commands/s (sessions/s)",)
        + "".join("%24s" % ("%.0f (%.1f) err %d" % results[k]["mixed"],) for k in kinds)
    )
    print("hits: " + ", ".join("%s %s" % (k, [results[k][n][1] for n in names[2:4]]) for k in kinds))
    if "ours" not in results:
        return
    print("\nratios, gateway throughput / peer throughput (above 1: gateway faster):")
    for peer in ("dovecot", "twisted"):
        if peer not in results:
            continue
        parts = []
        for name in names:
            ours = results["ours"][name][0]
            theirs = results[peer][name][0]
            if name.startswith("SELECT") or peer != "twisted":
                ratio = theirs / ours
            else:
                ratio = (theirs / twistedMessages) / (ours / options.messages)
            parts.append("%s %.2f" % (name, ratio))
        parts.append("mixed %.2f" % (results["ours"]["mixed"][0] / results[peer]["mixed"][0],))
        print("gateway/%s: %s" % (peer, "; ".join(parts)))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-twisted":
        serveTwisted(sys.argv[2], int(sys.argv[3]))
    else:
        main()
