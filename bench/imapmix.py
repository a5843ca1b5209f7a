#!/usr/bin/env python
"""
Mixed IMAP workload under concurrency (issue 14): gateway beside Dovecot 2.3,
over TLS, on the same messages, in one run.

    .venv/bin/python bench/imapmix.py [--clients 10,50] [--seconds 20]
                                      [--shapes kept,login] [--workers N]
                                      [--messages 1000] [--runs 1]
                                      [--tls-engine openssl|rustls]

Each client loops over the cycle of L{tests.imapload.mixedCycle} (the shape
of the widely used IMAP stress testers): SELECT, LIST, STATUS, FETCH of
flags, envelope and body structure, FETCH BODY.PEEK[], STORE of flags and
keywords, APPEND, STORE \\Deleted and EXPUNGE, all on one shared INBOX.
Two shapes: sessions kept open (C{kept}), and a LOGIN/LOGOUT per cycle
(C{login}).  Every reply goes through the protocol checker
(L{tests.imapcheck}): a command counts as throughput only when it ends OK
with no protocol violation; NO, BAD, violations and wrong bodies count as
failures.

Reported per server, shape and client count: OK operations per second per
command, their total, all answered commands per second (failures
included, for raw speed), failures, the ratio gateway / Dovecot (above 1:
gateway is faster), and server CPU (user + system of the server's whole
process tree) per answered command.

C{--workers N} writes C{[server] workers = N} into gateway's configuration
when this gateway's configuration knows that option (issue 14); until then
it is ignored, and the run says so.

Dovecot (C{apt-get install -y dovecot-imapd}) runs with its defaults over a
copy of the same Maildir; without it only gateway runs.  The clients run
in C{--client-processes} processes of threads, on the same machine.
"""

import argparse
import multiprocessing
import os
import platform
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# bench/ itself must not be on the path: its scripts (http.py) shadow the stdlib.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.insert(0, ROOT)

from bench import peers  # noqa: E402
from bench.imap import stop  # noqa: E402
from tests.imapcheck import Registry  # noqa: E402
from tests.imapload import connector, makeMessage, runLoad  # noqa: E402

DOMAIN = "example.test"
USER = "bench@" + DOMAIN
PASSWORD = "bench-password"
MAILBOXES = ("INBOX", "Archive")
COMMANDS = ["LOGIN", "SELECT", "LIST", "STATUS", "FETCH meta", "FETCH body", "STORE", "APPEND",
            "STORE deleted", "EXPUNGE", "LOGOUT"]


# ---------------------------------------------------------------------------
# Set-up


def writeMaildir(folder, count, tag):
    """
    C{count} messages of L{makeMessage} (each carries its body's digest)
    straight into C{folder/cur}; every third unseen.
    """
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    for n in range(count):
        data = makeMessage(n)
        name = "%d.M%dP%dQ%d.mix,S=%d:2,%s" % (1700000000 + n, n, tag, n, len(data), "" if n % 3 == 0 else "S")
        with open(os.path.join(folder, "cur", name), "wb") as f:
            f.write(data)


def copyMaildir(source, target):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(target, sub), exist_ok=True)
    for name in os.listdir(os.path.join(source, "cur")):
        shutil.copy(os.path.join(source, "cur", name), os.path.join(target, "cur", name))


def makeAccount(tmp, dataRoot):
    """
    The domain and the account (password stored C{{PLAIN}}, as in Dovecot's
    passdb here), made with C{gatewayctl}; return the account's mail folder.
    """
    config = os.path.join(tmp, "gatewayctl.ini")
    with open(config, "w") as f:
        f.write("[server]\ndata_root = %s\n" % (dataRoot,))
    ctl = os.path.join(os.path.dirname(sys.executable), "gatewayctl")
    for args in (["domain", "add", DOMAIN, "--cleartext-login", "yes"],
                 ["account", "add", USER, "--password", PASSWORD, "--scheme", "PLAIN"]):
        subprocess.run([ctl, "--config", config] + args, check=True, stdout=subprocess.DEVNULL)
    return os.path.join(dataRoot, "domains", DOMAIN, "accounts", USER.split("@")[0], "mail")


def workersKnown():
    """
    Whether this gateway's configuration has C{[server] workers}.
    """
    from gateway import config

    return any(o.section == "server" and o.name == "workers" for o in config.SCHEMA)


def startOurs(tmp, dataRoot, cert, key, workers, engine=None):
    """
    gateway under twistd, IMAP over implicit TLS only, on a loopback port;
    over the TLS library C{engine} (C{[tls] engine}) when given, else the
    configuration's default.
    """
    port = peers.freePort()
    config = os.path.join(tmp, "gateway.ini")
    with open(config, "w") as f:
        f.write("[server]\ndata_root = %s\n" % (dataRoot,))
        if workers is not None and workersKnown():
            f.write("workers = %d\n" % (workers,))
        f.write("[tls]\ncertificate = %s\nprivate_key = %s\n" % (cert, key))
        if engine is not None:
            f.write("engine = %s\n" % (engine,))
        for name in ("lmtp", "pop3", "http", "ftp", "admin"):
            f.write("[%s]\nenabled = no\n" % (name,))
        f.write("[imap]\nlisten = ssl:%d:interface=127.0.0.1\nlog_level = warn\nmax_connections = 5000\n"
                "max_connections_per_address = 0\n"
                % (port,))
        f.write("[auth]\nlog_level = warn\n")
    return peers.startGateway(tmp, config, port), port


DOVECOT_CONF = """\
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{tmp}/../cert.pem
ssl_key = <{tmp}/../key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{tmp}/Maildir
mail_fsync = {fsync}
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
  mail_max_userip_connections = 5000
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
"""


def startDovecot(mailRoot, tmp, fsync="optimized"):
    """
    Dovecot over a copy of the Maildirs (Maildir++ layout), or C{None}.

    @param fsync: Dovecot's C{mail_fsync}: C{"optimized"}, its default,
        syncs saved mail only (a flag change or an expunge is not synced);
        C{"always"} syncs every change, as gateway does before its OK.
    """
    if not peers.dovecotImapInstalled():
        return None
    maildir = os.path.join(tmp, "Maildir")
    for name in MAILBOXES:
        copyMaildir(os.path.join(mailRoot, name), maildir if name == "INBOX" else os.path.join(maildir, "." + name))
    return peers.runDovecot(tmp, DOVECOT_CONF.replace("{fsync}", fsync), USER, PASSWORD, [maildir])


# ---------------------------------------------------------------------------
# Measuring


def treeCpu(pid):
    """
    CPU seconds (user + system, with reaped children's) of C{pid} and all
    its descendants.
    """
    tick = os.sysconf("SC_CLK_TCK")
    children = {}
    times = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % (entry,)) as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        times[int(entry)] = sum(int(v) for v in fields[11:15])
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += times.get(p, 0)
        todo.extend(children.get(p, ()))
    return total / tick


def _loadProcess(args):
    """
    One client process: its share of the clients; a summary that pickles.
    """
    port, cafile, clients, seconds, seed, loginPerCycle = args
    context = ssl.create_default_context(cafile=cafile)
    connect = connector(port, Registry(), context)
    counter, checkers, problems, elapsed = runLoad(connect, USER, PASSWORD, clients, seconds, seed=seed,
                                                   loginPerCycle=loginPerCycle)
    counts, examples = {}, []
    for checker in checkers:
        for kind, n in checker.counts.items():
            counts[kind] = counts.get(kind, 0) + n
        examples += [repr(v) for v in checker.violations[:2]]
    return counter.ok, counter.no, counter.errors[:5], counts, examples[:5], problems[:20], elapsed


def measure(pid, port, cafile, clients, seconds, loginPerCycle, processes, seed):
    """
    One timed run of C{clients} clients.

    @return: a C{dict} with C{ok}, C{no}, C{violations}, C{problems},
        C{errors}, C{examples}, C{seconds}, C{cpu}.
    """
    processes = max(1, min(processes, clients))
    shares = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    jobs = [(port, cafile, share, seconds, seed * 100 + i, loginPerCycle) for i, share in enumerate(shares)]
    cpu0 = treeCpu(pid)
    # spawn, not fork: a child forked while one of the pool threads held a
    # lock waited on it for ever.
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        # A client process that dies without a word would leave map()
        # waiting for ever: past the run's time and a margin, give up.
        parts = pool.map_async(_loadProcess, jobs).get(timeout=seconds * 3 + 120)
    cpu = treeCpu(pid) - cpu0
    result = {"ok": {}, "no": {}, "violations": {}, "problems": [], "errors": [], "examples": [],
              "seconds": max(p[6] for p in parts), "cpu": cpu}
    for ok, no, errors, counts, examples, problems, _elapsed in parts:
        for table, into in ((ok, result["ok"]), (no, result["no"]), (counts, result["violations"])):
            for name, n in table.items():
                into[name] = into.get(name, 0) + n
        result["errors"] += errors
        result["examples"] += examples
        result["problems"] += problems
    return result


# ---------------------------------------------------------------------------


def cpuModel():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    signal.signal(signal.SIGTERM, lambda *args: sys.exit(1))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="10,50", help="client counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=20, help="seconds per run")
    parser.add_argument("--shapes", default="kept,login", help="kept (sessions kept open), login (LOGIN per cycle)")
    parser.add_argument("--workers", type=int, default=None, help="gateway's [server] workers (once it exists)")
    parser.add_argument("--messages", type=int, default=1000, help="messages in INBOX at the start")
    parser.add_argument("--runs", type=int, default=1, help="runs of each measurement (medians)")
    parser.add_argument("--client-processes", type=int, default=2, help="processes the clients are spread over")
    parser.add_argument("--only", default="ours,dovecot", help="servers to run (comma-separated)")
    parser.add_argument("--dovecot-fsync", default="optimized", choices=("optimized", "always"),
                        help="Dovecot's mail_fsync: optimized (its default: saved mail only) or always"
                             " (every change, the durability gateway gives every OK)")
    parser.add_argument("--tls-engine", choices=("openssl", "rustls"), default=None,
                        help="gateway's [tls] engine (default: the configuration's default)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    options = parser.parse_args()
    clientCounts = [int(c) for c in options.clients.split(",")]
    shapes = options.shapes.split(",")
    only = options.only.split(",")

    print("machine: %s, %d CPUs, %s, Python %s"
          % (platform.node(), os.cpu_count(), cpuModel(), platform.python_version()))
    print("date: %s UTC" % (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),))
    if options.tls_engine is not None:
        print("gateway [tls] engine: %s" % (options.tls_engine,))
    if options.workers is not None:
        print("gateway workers: %d" % (options.workers,) if workersKnown() else
              "gateway workers: [server] workers is not in this gateway's configuration yet: --workers ignored")
    tmp = tempfile.mkdtemp(prefix="gateway-bench-imapmix-")
    children = []
    results = {}
    try:
        from gateway.tlscert import makeSelfSigned

        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        makeSelfSigned(cert, key)
        os.chmod(key, 0o644)
        dataRoot = os.path.join(tmp, "data")
        os.makedirs(dataRoot)
        mailRoot = makeAccount(tmp, dataRoot)
        writeMaildir(os.path.join(mailRoot, "INBOX"), options.messages, 1)
        writeMaildir(os.path.join(mailRoot, "Archive"), 50, 2)
        servers = []
        if "dovecot" in only:
            dovecot = startDovecot(mailRoot, os.path.join(tmp, "dovecot"), options.dovecot_fsync)
            if dovecot is not None:
                children.append(dovecot[0])
                servers.append(("dovecot", dovecot[0].pid, dovecot[1]))
        if "ours" in only:
            child, port = startOurs(tmp, dataRoot, cert, key, options.workers, options.tls_engine)
            children.append(child)
            servers.append(("ours", child.pid, port))
        for _kind, pid, port in servers:
            # Warm-up: the first SELECT builds the index.
            measure(pid, port, cert, 1, 0.5, False, 1, 0)
        for shape in shapes:
            for clients in clientCounts:
                for run in range(options.runs):
                    for kind, pid, port in servers:
                        try:
                            result = measure(pid, port, cert, clients, options.seconds, shape == "login",
                                             options.client_processes, run + 1)
                        except multiprocessing.TimeoutError:
                            print("%s, %s, %d clients, run %d: a client process died; run again"
                                  % (kind, shape, clients, run + 1), flush=True)
                            result = measure(pid, port, cert, clients, options.seconds, shape == "login",
                                             options.client_processes, run + 1)
                        results.setdefault((shape, clients, kind), []).append(result)
                        print("%s, %s, %d clients, run %d: %.0f ops/s, %d failures, violations %s"
                              % (kind, shape, clients, run + 1, total(result) / result["seconds"],
                                 failures(result), result["violations"] or "none"), flush=True)
    finally:
        for child in children:
            stop(child)
        if options.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report(results, shapes, clientCounts, options)


def total(result):
    return sum(result["ok"].values())


def failures(result):
    return sum(result["no"].values())


def report(results, shapes, clientCounts, options):
    print("\nover TLS, %g s per run, medians of %d run(s); ops/s count commands that ended OK with no "
          "protocol violation" % (options.seconds, options.runs))
    for shape in shapes:
        for clients in clientCounts:
            kinds = [k for k in ("ours", "dovecot") if (shape, clients, k) in results]
            if not kinds:
                continue
            print("\n%s, %d clients" % ("sessions kept open" if shape == "kept" else "LOGIN per cycle", clients))
            print("%-16s" % ("",) + "".join("%22s" % (k,) for k in kinds) + ("%10s" % ("ratio",) if len(kinds) == 2 else ""))
            rows = {}
            for kind in kinds:
                runs = results[(shape, clients, kind)]
                rows[kind] = {name: statistics.median(r["ok"].get(name, 0) / r["seconds"] for r in runs)
                              for name in COMMANDS}
                rows[kind]["total"] = statistics.median(total(r) / r["seconds"] for r in runs)
                rows[kind]["answered"] = statistics.median((total(r) + failures(r)) / r["seconds"] for r in runs)
                rows[kind]["failures"] = statistics.median(failures(r) for r in runs)
                rows[kind]["cpu"] = statistics.median(1000 * r["cpu"] / max(1, total(r) + failures(r))
                                                      for r in runs)
            for name in COMMANDS + ["total", "answered"]:
                if not any(rows[k][name] for k in kinds):
                    continue
                line = "%-16s" % (name,) + "".join("%18.1f/s  " % (rows[k][name],) for k in kinds)
                if len(kinds) == 2 and rows["dovecot"][name]:
                    line += "%10.2f" % (rows["ours"][name] / rows["dovecot"][name],)
                print(line)
            print("%-16s" % ("failures",) + "".join("%20d  " % (rows[k]["failures"],) for k in kinds))
            print("%-16s" % ("CPU ms/answer",) + "".join("%20.2f  " % (rows[k]["cpu"],) for k in kinds))
            for kind in kinds:
                last = results[(shape, clients, kind)][-1]
                if last["violations"] or last["problems"] or last["errors"]:
                    print("  %s: violations %s; problems %s; errors %s; e.g. %s"
                          % (kind, last["violations"], last["problems"][:3], last["errors"][:3],
                             last["examples"][:2]))


if __name__ == "__main__":
    main()
