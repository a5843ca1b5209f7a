#!/usr/bin/env python
"""
IMAP idle-session benchmark: server memory per authenticated IDLE session,
and how fast a delivery reaches every idling session, for gateway beside
Dovecot 2.3 (imapd) in the same run, on loopback.

    .venv/bin/python bench/imapidle.py [--sessions 2000] [--messages 300]
                                       [--runs 3] [--profile] [--quick]
                                       [--tls [--starttls]]
                                       [--tls-engine auto|openssl|rustls]
                                       [--workers N] [--clients P]
                                       [--addresses K]

The issue 14 goal, 10,000 TLS sessions in IDLE under 20 KB each (with the
default C{[tls] engine = auto}: rustls when the rtls package is installed;
C{--tls-engine openssl} for OpenSSL):

    .venv/bin/python bench/imapidle.py --only ours --tls --sessions 10000 \
        --workers 2 --clients 4 --addresses 8 --runs 3 [--tls-engine openssl]

Each server runs in its own process over the same Maildir INBOX: gateway
under C{twistd} (started through this script, see L{serveGateway}) with an
account made by C{gatewayctl}; Dovecot with a generated C{dovecot.conf}
whose connection limits are raised to C{--sessions}.  All sessions log in
to one account (the multi-access case).  C{--clients} asyncio client
processes (this script with C{--client-process}) share the sockets, each
connecting from its own loopback addresses (C{127.0.1.K}, C{--addresses}
of them in all, so that ten thousand connections do not run out of one
address's ephemeral ports); each session runs C{LOGIN}, C{SELECT INBOX},
C{IDLE} and waits for the continuation.  Every session must reach IDLE, or
the run fails.  With C{--tls} gateway listens with implicit TLS only
(C{ssl:}, a self-signed certificate) and Dovecot is not run (its
configuration here is clear-text); with C{--starttls} as well, it listens
in clear text and each session begins with STARTTLS.  With C{--workers N} gateway runs N
worker processes under its parent, and its memory is the sum over the
parent and the workers.

The open-file limit: this script raises its soft limit to the hard one
(the client processes and the servers inherit it) and stops if that is
too low for the sessions; gateway raises its own soft limit to the hard
one at start too.

Memory is read from C{/proc}: after a warm-up session (indexes built,
account opened) and again with all sessions idling; the difference divided
by the number of sessions is the cost of one session.  For gateway (one
process) that is its RSS, PSS and USS (private pages, from
C{smaps_rollup}).  For Dovecot it is the sum over the master and all its
descendant processes (one C{imap} process per session; C{imap-login}
processes exit after a clear-text login), where the sum of RSS counts
shared library pages once per process and PSS shares them out.

Then one message is delivered into the shared INBOX (gateway: over LMTP;
Dovecot: C{dovecot-lda}; C{--delivery maildir}: a file renamed into
C{new/} for both) and the time from the start of the delivery until each
session has read its C{EXISTS} is taken: median and maximum over the
sessions.  Finally every session ends IDLE with C{DONE} and logs out.

C{--profile} adds a gateway round under C{tracemalloc} (snapshots taken on
C{SIGUSR2} by this script's launcher, not by gateway) and prints the lines
that allocate the most per session.
"""

import argparse
import asyncio
import linecache
import os
import platform
import resource
import shutil
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# bench/ itself must not be on the path: its scripts (http.py) shadow the stdlib.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.insert(0, ROOT)

from bench import imap, peers  # noqa: E402
from bench.imap import PASSWORD, USER, cpuModel, makeAccount, makeMessage, stop, writeMaildir  # noqa: E402

#: Environment variables of the gateway launcher: the number of frames
#: C{tracemalloc} keeps (not set: no tracing), and where snapshots go.
TRACE_FRAMES = "GATEWAY_BENCH_TRACEMALLOC"
TRACE_PREFIX = "GATEWAY_BENCH_SNAPSHOT"

#: Seconds given to the servers to settle before memory is read.
SETTLE = 2.0

DOVECOT_LDA = "/usr/lib/dovecot/dovecot-lda"


# ---------------------------------------------------------------------------
# gateway, under twistd, through a launcher that can trace allocations


def serveGateway(argv):
    """
    Run C{twistd argv} in this process.  With C{$GATEWAY_BENCH_TRACEMALLOC}
    set, allocations are traced and each C{SIGUSR2} writes a snapshot to
    C{$GATEWAY_BENCH_SNAPSHOT.<n>}.
    """
    frames = os.environ.get(TRACE_FRAMES)
    if frames:
        tracemalloc.start(int(frames))
        prefix = os.environ[TRACE_PREFIX]
        taken = []

        def dump(signum, frame):
            path = "%s.%d" % (prefix, len(taken))
            taken.append(path)
            tracemalloc.take_snapshot().dump(path + ".tmp")
            os.rename(path + ".tmp", path)

        signal.signal(signal.SIGUSR2, dump)
    from twisted.scripts.twistd import run

    sys.argv = ["twistd"] + argv
    run()


def engineNamed(engine):
    """C{engine} as the report names it: what C{auto} stands for here too."""
    if engine != "auto":
        return engine
    import importlib.util

    return "auto: %s" % ("rustls" if importlib.util.find_spec("rtls") else "openssl",)


def startGateway(tmp, dataRoot, sessions, frames=None, tls=None, workers=1, engine="auto", starttls=False):
    """
    gateway with IMAP and LMTP on loopback ports, room for C{sessions}
    connections, traced with C{frames} frames if given; with C{tls}
    (C{(certPath, keyPath)}) IMAP listens with implicit TLS only (in clear
    text for STARTTLS with C{starttls}), over the TLS library C{engine}
    (C{[tls] engine}); with C{workers} above 1, that many worker processes
    serve.

    @return: C{(process, imapPort, lmtpPort)}.
    """
    imapPort, lmtpPort = peers.freePort(), peers.freePort()
    config = os.path.join(tmp, "gateway.ini")
    cert, key = tls if tls else ("%s/none.pem" % (tmp,), "%s/none.pem" % (tmp,))
    with open(config, "w") as f:
        f.write("[server]\ndata_root = %s\nworkers = %d\n[tls]\ncertificate = %s\nprivate_key = %s\nengine = %s\n"
                % (dataRoot, workers, cert, key, engine))
        # The admin listener's default port is fixed (8200): off, as another
        # server on the machine may have it.
        for name in ("pop3", "http", "ftp", "admin"):
            f.write("[%s]\nenabled = no\n" % (name,))
        f.write(
            "[imap]\nlisten = %s:%d:interface=127.0.0.1\nlog_level = warn\nmax_connections = %d\n"
            "max_connections_per_address = 0\n"
            % ("ssl" if tls and not starttls else "tcp", imapPort, max(5000, sessions + 100))
        )
        f.write("[lmtp]\nlisten = tcp:%d:interface=127.0.0.1\nlog_level = warn\nmax_connections_per_address = 0\n"
                % (lmtpPort,))
        f.write("[auth]\nlog_level = warn\n")
    env = dict(os.environ)
    if frames:
        env[TRACE_FRAMES] = str(frames)
        env[TRACE_PREFIX] = os.path.join(tmp, "snapshot")
    args = ["--nodaemon", "--pidfile=", "--logfile", os.path.join(tmp, "twistd.log"), "gateway", "--config", config]
    child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve-gateway"] + args, cwd=tmp, env=env)
    for port in (imapPort, lmtpPort):
        if not peers.waitForPort(port, child):
            stop(child)
            raise RuntimeError("gateway did not start; see %s/twistd.log" % (tmp,))
    if workers > 1:
        waitForWorkers(os.path.join(tmp, "twistd.log"), workers, child)
    return child, imapPort, lmtpPort


def waitForWorkers(logPath, count, child, timeout=120):
    """
    Wait until the log says that C{count} workers serve.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.poll() is None:
        with open(logPath, errors="replace") as f:
            if sum(1 for line in f if " serving (pid " in line) >= count:
                return
        time.sleep(0.2)
    stop(child)
    raise RuntimeError("the workers of gateway did not start; see %s" % (logPath,))


def takeSnapshot(child, tmp, number):
    """
    Ask the traced gateway C{child} for its snapshot number C{number}.
    """
    path = os.path.join(tmp, "snapshot.%d" % (number,))
    child.send_signal(signal.SIGUSR2)
    deadline = time.monotonic() + 120
    while not os.path.exists(path):
        if time.monotonic() > deadline or child.poll() is not None:
            raise RuntimeError("gateway wrote no snapshot %s" % (path,))
        time.sleep(0.1)
    return tracemalloc.Snapshot.load(path)


def deliverLMTP(port):
    """
    One message to the account over LMTP (blocking: run it in a thread).
    """
    client = smtplib.LMTP("127.0.0.1", port)
    try:
        client.sendmail("sender@example.org", [USER], makeMessage(999999))
    finally:
        client.quit()


# ---------------------------------------------------------------------------
# Dovecot, with room for many sessions


#: Added to L{bench.imap.DOVECOT_CONF} (whose C{@LIMIT@} is a number above
#: the session count): room for every session, and IDLE's check for changes
#: every second where a session gets no inotify instance.
DOVECOT_LIMITS = """\
default_process_limit = @LIMIT@
default_client_limit = @LIMIT@
mailbox_idle_check_interval = 1 secs
service imap {{
  process_limit = @LIMIT@
}}
"""


def dovecotConf(sessions):
    """
    L{bench.imap}'s Dovecot configuration template with the limits raised
    above C{sessions}.
    """
    userip = "mail_max_userip_connections = 1000"
    if userip not in imap.DOVECOT_CONF:
        raise RuntimeError("bench/imap.py's DOVECOT_CONF no longer sets %r" % (userip,))
    conf = imap.DOVECOT_CONF.replace(userip, "mail_max_userip_connections = @LIMIT@") + DOVECOT_LIMITS
    return conf.replace("@LIMIT@", str(sessions + 100))


def startDovecot(mailRoot, tmp, sessions):
    """
    Dovecot over a hard-linked copy of our INBOX, with process and client
    limits raised above C{sessions}, or C{None} if it is not installed.

    @return: C{(process, port, configPath)} or C{None}.
    """
    if not peers.dovecotImapInstalled():
        return None
    maildir = os.path.join(tmp, "Maildir")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(maildir, sub))
    source = os.path.join(mailRoot, "INBOX", "cur")
    for name in os.listdir(source):
        os.link(os.path.join(source, name), os.path.join(maildir, "cur", name))
    started = peers.runDovecot(tmp, dovecotConf(sessions), USER, PASSWORD, [maildir])
    if started is None:
        return None
    return started + (os.path.join(tmp, "dovecot.conf"),)


def deliverMaildir(folder):
    """
    One message written to C{folder/tmp} and renamed into C{folder/new}, as
    an MDA does.
    """
    name = "%d.M%dP%d.bench-delivery" % (time.time(), time.monotonic_ns() % 1000000, os.getpid())
    path = os.path.join(folder, "tmp", name)
    with open(path, "wb") as f:
        f.write(makeMessage(999999))
    stat = os.stat(folder)
    os.chown(path, stat.st_uid, stat.st_gid)
    os.rename(path, os.path.join(folder, "new", name))


# ---------------------------------------------------------------------------
# Memory, from /proc


def processMemory(pid):
    """
    @return: C{{'rss': kB, 'pss': kB, 'uss': kB}} of one process.
    """
    values = {}
    with open("/proc/%d/smaps_rollup" % (pid,)) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                values[parts[0].rstrip(":")] = int(parts[1])
    return {
        "rss": values["Rss"],
        "pss": values["Pss"],
        "uss": values["Private_Clean"] + values["Private_Dirty"],
    }


def processTree(root):
    """
    @return: C{{pid: name}} of C{root} and all its descendants.
    """
    parents, names = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % (entry,)) as f:
                stat = f.read()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(rest[1])
        names[int(entry)] = name
    tree = {root: names.get(root, "?")}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree[pid] = names[pid]
                grew = True
    return tree


def treeMemory(root):
    """
    The memory of C{root} and its descendants, summed.

    @return: C{(totals, {name: count})} with C{totals} as from
        L{processMemory}.
    """
    totals = {"rss": 0, "pss": 0, "uss": 0}
    counts = {}
    for pid, name in processTree(root).items():
        try:
            memory = processMemory(pid)
        except (OSError, KeyError):
            continue  # exited meanwhile
        for key in totals:
            totals[key] += memory[key]
        counts[name] = counts.get(name, 0) + 1
    return totals, counts


# ---------------------------------------------------------------------------
# The client: one asyncio process holding every session


class SessionError(Exception):
    pass


class IdleSession:
    """
    One connection that logs in, selects INBOX and idles.

    @ivar existsAt: C{time.monotonic()} when the EXISTS of the delivery was
        read, or C{None}.
    """

    def __init__(self):
        self.reader = self.writer = None
        self.counter = 0
        self.existsAt = None

    async def line(self):
        data = await self.reader.readline()
        if not data.endswith(b"\n"):
            raise SessionError("connection closed")
        return data.rstrip(b"\r\n")

    async def command(self, text):
        """
        Send C{text}; read to its tagged answer, which must be OK.

        @return: the untagged lines.
        """
        self.counter += 1
        tag = b"T%d" % (self.counter,)
        self.writer.write(tag + b" " + text + b"\r\n")
        lines = []
        while True:
            line = await self.line()
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise SessionError("%r -> %r" % (text, line))
                return lines
            lines.append(line)

    async def start(self, port, tls=None, source=None, starttls=False):
        """
        Connect (from address C{source}, over TLS with the C{ssl.SSLContext}
        C{tls}: from the start, or after STARTTLS with C{starttls}), LOGIN,
        SELECT INBOX, IDLE; return once the server has sent the IDLE
        continuation.
        """
        self.reader, self.writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=None if starttls else tls, local_addr=(source, 0) if source else None)
        greeting = await self.line()
        if not greeting.startswith(b"* OK"):
            raise SessionError("greeting %r" % (greeting,))
        if starttls:
            await self.command(b"STARTTLS")
            await self.writer.start_tls(tls, server_hostname="127.0.0.1")
        await self.command(b'LOGIN "%s" "%s"' % (USER.encode(), PASSWORD.encode()))
        await self.command(b"SELECT INBOX")
        self.counter += 1
        self.writer.write(b"T%d IDLE\r\n" % (self.counter,))
        while True:
            line = await self.line()
            if line.startswith(b"+"):
                return
            if line.startswith(b"T"):
                raise SessionError("IDLE -> %r" % (line,))

    async def awaitExists(self):
        """
        Read until an C{EXISTS} arrives; note when.
        """
        while True:
            line = await self.line()
            if line.startswith(b"* ") and line.endswith(b" EXISTS"):
                self.existsAt = time.monotonic()
                return

    async def finish(self):
        """
        C{DONE}, then C{LOGOUT}, then close.
        """
        tag = b"T%d" % (self.counter,)
        self.writer.write(b"DONE\r\n")
        while not (await self.line()).startswith(tag + b" OK"):
            pass
        await self.command(b"LOGOUT")
        self.writer.close()


async def openSessions(port, count, concurrency, tls=None, sources=(None,), starttls=False):
    """
    Start C{count} sessions, at most C{concurrency} logging in at once,
    from the addresses C{sources} in turn (over TLS with C{tls}, begun by
    STARTTLS with C{starttls}).

    @return: C{(sessions, seconds)}.
    @raise SessionError: unless every session reached IDLE.
    """
    gate = asyncio.Semaphore(concurrency)
    sessions = [IdleSession() for _ in range(count)]

    async def one(session, source):
        async with gate:
            await asyncio.wait_for(session.start(port, tls, source, starttls), 300)

    started = time.monotonic()
    results = await asyncio.gather(*[one(s, sources[i % len(sources)]) for i, s in enumerate(sessions)],
                                   return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        for session in sessions:
            if session.writer is not None:
                session.writer.close()
        raise SessionError(
            "only %d of %d sessions reached IDLE; first errors: %s"
            % (count - len(failed), count, "; ".join(repr(e) for e in failed[:3]))
        )
    return sessions, time.monotonic() - started


async def finishSessions(sessions):
    """
    L{IdleSession.finish} for all at once.

    @return: how many failed.
    """
    results = await asyncio.gather(*[asyncio.wait_for(s.finish(), 120) for s in sessions], return_exceptions=True)
    return sum(1 for r in results if isinstance(r, BaseException))


# ---------------------------------------------------------------------------
# Client processes: this script with --client-process, driven over its
# standard input and output, one line each way per step:
#   (started)   -> "ready SECONDS" or "failed TEXT"
#   "watch"     -> "watching"              (every session reads for its EXISTS)
#   "collect T" -> "exists T1 T2 ..."      (time.monotonic() of each EXISTS read
#                                           within T seconds; the clock is the
#                                           system's, the same in every process)
#   "finish"    -> "finished ERRORS"       (DONE and LOGOUT), then it exits


def clientProcess(argv):
    """
    The client process: C{PORT COUNT CONCURRENCY CAFILE SOURCES} (C{CAFILE}
    C{-} for clear text, C{starttls:CAFILE} for STARTTLS, C{SOURCES}
    comma-separated addresses).
    """
    port, count, concurrency, cafile, sources = argv
    tls = None
    starttls = cafile.startswith("starttls:")
    if cafile != "-":
        import ssl

        tls = ssl.create_default_context(cafile=cafile[len("starttls:"):] if starttls else cafile)
    asyncio.run(_client(int(port), int(count), int(concurrency), tls, sources.split(","), starttls))


async def _client(port, count, concurrency, tls, sources, starttls=False):
    loop = asyncio.get_running_loop()

    async def ask():
        return (await loop.run_in_executor(None, sys.stdin.readline)).split()

    def say(text):
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    try:
        sessions, seconds = await openSessions(port, count, concurrency, tls, sources, starttls)
    except SessionError as e:
        say("failed %s" % (str(e).replace("\n", " "),))
        return
    say("ready %.3f" % (seconds,))
    waiting = []
    while True:
        words = await ask()
        if not words or words[0] == "finish":
            for task in waiting:
                task.cancel()
            say("finished %d" % (await finishSessions(sessions),))
            return
        if words[0] == "watch":
            waiting = [asyncio.ensure_future(s.awaitExists()) for s in sessions]
            say("watching")
        elif words[0] == "collect":
            if waiting:
                await asyncio.wait(waiting, timeout=float(words[1]))
            say("exists " + " ".join("%.6f" % (s.existsAt,) for s in sessions if s.existsAt is not None))


class Clients:
    """
    C{processes} client processes holding C{count} sessions between them.
    """

    def __init__(self, port, count, processes, concurrency, cafile=None, addresses=1):
        processes = max(1, min(processes, count))
        self.children = []
        for number in range(processes):
            share = count // processes + (1 if number < count % processes else 0)
            sources = [clientAddress(a) for a in range(addresses) if a % processes == number] or [
                clientAddress(number % max(1, addresses))]
            self.children.append(subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--client-process", str(port), str(share),
                 str(max(1, concurrency // processes)), cafile or "-", ",".join(sources)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1))

    def _all(self, command=None):
        if command is not None:
            for child in self.children:
                child.stdin.write(command + "\n")
                child.stdin.flush()
        answers = []
        for child in self.children:
            line = child.stdout.readline().split(None, 1)
            if not line:
                raise SessionError("a client process ended (%s)" % (child.wait(),))
            if line[0] == "failed":
                self.close()
                raise SessionError(line[1] if len(line) > 1 else "a client process failed")
            answers.append(line[1] if len(line) > 1 else "")
        return answers

    def opened(self):
        """
        @return: the seconds the slowest process took to open its sessions.
        """
        return max(float(a) for a in self._all())

    def watch(self):
        self._all("watch")

    def collect(self, timeout):
        """
        @return: C{list} of C{time.monotonic()} when each EXISTS was read.
        """
        return [float(t) for a in self._all("collect %f" % (timeout,)) for t in a.split()]

    def finish(self):
        """
        @return: how many sessions failed to end cleanly.
        """
        errors = sum(int(a) for a in self._all("finish"))
        self.close()
        return errors

    def close(self):
        for child in self.children:
            if child.poll() is None:
                try:
                    child.stdin.close()
                except OSError:
                    pass
                try:
                    child.wait(120)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()


def clientAddress(number):
    """
    The loopback address client processes connect from: C{127.0.1.N+1}.
    """
    return "127.0.1.%d" % (number % 254 + 1,)


def measureRound(port, options, readMemory, deliver, cafile=None):
    """
    Warm-up sessions, memory, C{options.sessions} idling sessions, memory,
    one delivery, C{DONE} and C{LOGOUT} for all.

    @return: C{dict} with C{before}, C{after} (from C{readMemory()}),
        C{opening}, C{delays}, C{delivery}, C{finishErrors}.
    """
    warmCount = max(1, 2 * getattr(options, "workers", 1))
    warm = Clients(port, warmCount, 1, warmCount, cafile, 1)
    warm.opened()
    warm.finish()
    time.sleep(SETTLE)
    before = readMemory()
    clients = Clients(port, options.sessions, options.clients, options.concurrency, cafile, options.addresses)
    try:
        opening = clients.opened()
        time.sleep(SETTLE)
        after = readMemory()
        clients.watch()
        started = time.monotonic()
        deliver()
        delivered = time.monotonic() - started
        delays = [t - started for t in clients.collect(options.timeout)]
        finishErrors = clients.finish()
    finally:
        clients.close()
    return {
        "before": before,
        "after": after,
        "opening": opening,
        "delays": delays,
        "delivery": delivered,
        "finishErrors": finishErrors,
    }


# ---------------------------------------------------------------------------
# Rounds


def runProcess(*argv, stdin):
    """
    Run C{argv} with C{stdin} as its input; raise if it fails.
    """
    child = subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if child.returncode:
        raise RuntimeError("%s exited with %d: %s" % (argv[0], child.returncode, child.stderr.decode(errors="replace")))


def gatewayRound(tmp, dataRoot, mailRoot, options, frames=None, tls=None):
    """
    A fresh gateway and one L{measureRound}; with C{frames}, traced, and
    the result has the two snapshots as C{snapshots}; with C{tls}
    (C{(certPath, keyPath)}), over implicit TLS (STARTTLS with
    C{options.starttls}).
    """
    os.makedirs(tmp)
    workers = 1 if frames else options.workers
    child, port, lmtpPort = startGateway(tmp, dataRoot, options.sessions, frames, tls, workers, options.tls_engine,
                                         options.starttls)
    snapshots = []

    def readMemory():
        if frames:
            snapshots.append(takeSnapshot(child, tmp, len(snapshots)))
        if workers > 1:
            return treeMemory(child.pid)[0]  # the parent and its workers
        return processMemory(child.pid)

    if options.delivery == "maildir":
        def deliver():
            deliverMaildir(os.path.join(mailRoot, "INBOX"))
    else:
        def deliver():
            deliverLMTP(lmtpPort)
    try:
        cafile = None
        if tls:
            cafile = ("starttls:" if options.starttls else "") + tls[0]
        result = measureRound(port, options, readMemory, deliver, cafile)
    finally:
        stop(child)
    result["snapshots"] = snapshots
    return result


def dovecotRound(tmp, mailRoot, options):
    """
    A fresh Dovecot and one L{measureRound}, or C{None} if it cannot run.
    """
    started = startDovecot(mailRoot, tmp, options.sessions)
    if started is None:
        return None
    child, port, conf = started
    maildir = os.path.join(tmp, "Maildir")
    if options.delivery == "maildir" or not os.path.exists(DOVECOT_LDA):
        def deliver():
            deliverMaildir(maildir)
    else:
        message = makeMessage(999999)

        def deliver():
            runProcess(DOVECOT_LDA, "-c", conf, "-d", USER, "-f", "sender@example.org", stdin=message)

    try:
        result = measureRound(port, options, lambda: treeMemory(child.pid), deliver)
    finally:
        stop(child)
    result["inotifyRefused"] = logCount(os.path.join(tmp, "dovecot.log"), "Inotify instance limit")
    before, beforeCounts = result["before"]
    after, afterCounts = result["after"]
    result.update(before=before, after=after, processes=(beforeCounts, afterCounts))
    return result


def logCount(path, text):
    """
    How many lines of the file at C{path} contain C{text}.
    """
    with open(path, errors="replace") as f:
        return sum(1 for line in f if text in line)


def perSession(result, key, count):
    """
    kB per session of one memory measure.
    """
    return (result["after"][key] - result["before"][key]) / count


def describe(kind, result, count):
    fan = result["delays"]
    print(
        "%s: opened %d sessions in %.1f s; per session RSS %.1f kB, PSS %.1f kB, USS %.1f kB;"
        " EXISTS to %d/%d sessions, median %.3f s, max %s (delivery took %.3f s); %d errors at LOGOUT"
        % (
            kind,
            count,
            result["opening"],
            perSession(result, "rss", count),
            perSession(result, "pss", count),
            perSession(result, "uss", count),
            len(fan),
            count,
            statistics.median(fan) if fan else float("nan"),
            "%.3f s" % (max(fan),) if fan else "-",
            result["delivery"],
            result["finishErrors"],
        ),
        flush=True,
    )
    if "processes" in result:
        print("  dovecot processes before: %s; with sessions: %s" % result["processes"])
        print("  dovecot log lines 'Inotify instance limit ... exceeded' (those sessions poll every second): %d"
              % (result["inotifyRefused"],))


# ---------------------------------------------------------------------------
# Profile


def profile(snapshots, count, top):
    """
    Print the source lines whose allocations grew most between the two
    snapshots, per session, and the call chains of the largest.
    """
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen *>")]
    before, after = (s.filter_traces(ignore) for s in snapshots)
    stats = after.compare_to(before, "lineno")
    total = sum(s.size_diff for s in stats)
    print("\ntracemalloc: %.1f kB traced per session; top allocators (bytes and blocks per session):" % (
        total / count / 1024,))
    for stat in stats[:top]:
        frame = stat.traceback[0]
        print("  %8.0f B %6.1f blocks  %s:%d  %s" % (
            stat.size_diff / count, stat.count_diff / count, shortPath(frame.filename), frame.lineno,
            linecache.getline(frame.filename, frame.lineno).strip()[:60]))
    print("\ncall chains of the largest (innermost last, gateway and Twisted frames):")
    for stat in after.compare_to(before, "traceback")[: max(1, top // 3)]:
        print("  %8.0f B per session" % (stat.size_diff / count,))
        for frame in stat.traceback:
            if "site-packages" in frame.filename and "twisted" not in frame.filename:
                continue
            print("      %s:%d" % (shortPath(frame.filename), frame.lineno))


def shortPath(path):
    for marker in ("/gateway/", "/twisted/", "/lib/python"):
        if marker in path:
            return path[path.index(marker) + 1 :]
    return path


# ---------------------------------------------------------------------------


def raiseFileLimit(sessions):
    """
    Raise this process's (and so the servers' and the client processes')
    open-file limit to the hard limit; exit if that is too low for
    C{sessions}.

    @return: C{(soft, hard)} now.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < sessions + 200:
        raise SystemExit("RLIMIT_NOFILE %d is too low for %d sessions" % (hard, sessions))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def main():
    # SIGTERM runs the clean-up (children stopped, temporary folder removed).
    signal.signal(signal.SIGTERM, lambda *args: sys.exit(1))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=2000, help="idling sessions per server")
    parser.add_argument("--messages", type=int, default=300, help="messages in INBOX")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50, help="sessions logging in at once")
    parser.add_argument("--delivery", choices=("native", "maildir"), default="native",
                        help="native: LMTP to gateway, dovecot-lda to Dovecot; maildir: a file into new/")
    parser.add_argument("--timeout", type=float, default=30, help="seconds to wait for the EXISTS")
    parser.add_argument("--profile", action="store_true", help="add a gateway round under tracemalloc")
    parser.add_argument("--frames", type=int, default=12, help="frames tracemalloc keeps with --profile")
    parser.add_argument("--profile-sessions", type=int, default=500,
                        help="sessions of the traced round (tracing makes logins slow)")
    parser.add_argument("--top", type=int, default=25, help="lines shown by --profile")
    parser.add_argument("--only", default="ours,dovecot", help="servers to run (comma-separated)")
    parser.add_argument("--quick", action="store_true", help="200 sessions, one run: a smoke run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--tls", action="store_true", help="gateway over implicit TLS (no Dovecot round)")
    parser.add_argument("--starttls", action="store_true",
                        help="with --tls: gateway listens in clear text and each session begins with STARTTLS")
    parser.add_argument("--tls-engine", choices=("auto", "openssl", "rustls"), default="auto",
                        help="gateway's [tls] engine with --tls (auto, its default: rustls when the rtls"
                             " package is installed)")
    parser.add_argument("--workers", type=int, default=1, help="gateway's [server] workers")
    parser.add_argument("--clients", type=int, default=1, help="client processes sharing the sessions")
    parser.add_argument("--addresses", type=int, default=1,
                        help="loopback addresses the clients connect from (127.0.1.1 and on)")
    options = parser.parse_args()
    if options.quick:
        options.sessions, options.runs = 200, 1
    only = options.only.split(",")
    if options.tls and "dovecot" in only:
        only.remove("dovecot")
    limit = raiseFileLimit(options.sessions)

    print(
        "machine: %s, %d CPUs, %s, Python %s"
        % (platform.node(), os.cpu_count(), cpuModel(), platform.python_version())
    )
    print("date: %s UTC" % (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),))
    print("%d sessions on one account, INBOX of %d messages, delivery: %s" % (
        options.sessions, options.messages, options.delivery))
    print("gateway: %s, workers = %d; %d client processes from %d addresses; open files limit (soft, hard): %s"
          % ("%s (%s)" % ("STARTTLS" if options.starttls else "implicit TLS", engineNamed(options.tls_engine))
             if options.tls else "clear text", options.workers,
             options.clients, options.addresses, limit))
    tmp = tempfile.mkdtemp(prefix="gateway-bench-imapidle-")
    results = {"ours": [], "dovecot": []}
    try:
        dataRoot = os.path.join(tmp, "data")
        os.makedirs(dataRoot)
        mailRoot = makeAccount(tmp, dataRoot)
        writeMaildir(os.path.join(mailRoot, "INBOX"), options.messages, 1)
        tls = None
        if options.tls:
            from gateway.tlscert import makeSelfSigned

            tls = (os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem"))
            makeSelfSigned(*tls)
        for run in range(options.runs):
            if "ours" in only:
                result = gatewayRound(os.path.join(tmp, "ours%d" % (run,)), dataRoot, mailRoot, options, tls=tls)
                describe("ours", result, options.sessions)
                results["ours"].append(result)
            if "dovecot" in only:
                result = dovecotRound(os.path.join(tmp, "dovecot%d" % (run,)), mailRoot, options)
                if result is not None:
                    describe("dovecot", result, options.sessions)
                    results["dovecot"].append(result)
        if options.profile:
            traced = argparse.Namespace(**dict(vars(options), sessions=options.profile_sessions))
            result = gatewayRound(os.path.join(tmp, "profile"), dataRoot, mailRoot, traced, options.frames, tls)
            describe("ours, traced", result, traced.sessions)
            profile(result["snapshots"], traced.sessions, options.top)
    finally:
        if options.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report(results, options)


def report(results, options):
    count = options.sessions
    kinds = [k for k in ("ours", "dovecot") if results[k]]
    print("\nmedians of %d runs, %d idling sessions:" % (options.runs, count))
    print("%-34s" % ("",) + "".join("%14s" % (k,) for k in kinds))
    medians = {}
    for key in ("rss", "pss", "uss"):
        medians[key] = {k: statistics.median(perSession(r, key, count) for r in results[k]) for k in kinds}
        print("%-34s" % ("%s per session (kB)" % (key.upper(),),)
              + "".join("%14.1f" % (medians[key][k],) for k in kinds))
    for name, pick in (("EXISTS fan-out, median (s)", statistics.median), ("EXISTS fan-out, max (s)", max)):
        cells = []
        for kind in kinds:
            values = [pick(r["delays"]) for r in results[kind] if r["delays"]]
            cells.append("%14.3f" % (statistics.median(values),) if values else "%14s" % ("-",))
        print("%-34s" % (name,) + "".join(cells))
    print("%-34s" % ("sessions that got the EXISTS (min)",)
          + "".join("%14d" % (min(len(r["delays"]) for r in results[k]),) for k in kinds))
    if len(kinds) == 2:
        print("\nratios, Dovecot / gateway memory per session (above 1: gateway smaller): "
              + "; ".join("%s %.2f" % (key.upper(), medians[key]["dovecot"] / medians[key]["ours"])
                          for key in ("rss", "pss", "uss")))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-gateway":
        serveGateway(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "--client-process":
        clientProcess(sys.argv[2:])
    else:
        main()
