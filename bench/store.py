#!/usr/bin/env python
"""
Mail store benchmark: index build and open times for a large Maildir.

    .venv/bin/python bench/store.py --messages 100000

Builds a Maildir of small generated messages under C{bench/work/} (kept
between runs; C{--rebuild} makes a new one), then measures, as the median of
C{--runs} runs:

  - cold index build: the index file removed, C{MailStore(...)} +
    C{getMailbox('INBOX')} (which indexes every file synchronously);
  - warm open: a new C{MailStore} on the same folder, C{getMailbox} +
    C{uids()} (target < 0.1 s for 100,000 messages), and C{messages()} of all;
  - the cheap "nothing changed" check and a forced full rescan;
  - append rate through the store (tmp/, fsync, rename, index transaction).

"Cold" means the index is cold; the message files are in the page cache after
the first run.  Results with the machine and date go in C{bench/RESULTS.md}.
"""

import argparse
import os
import platform
import shutil
import statistics
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
# bench/http.py would shadow the standard library's http package.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

from twisted.internet import task  # noqa: E402

from bench import peers  # noqa: E402
from gateway.store import maildir, scan  # noqa: E402
from gateway.store.mail import MailStore  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def makeMessage(n):
    return (
        "From: Sender %d <sender%d@example.org>\r\n"
        "To: user@example.com\r\n"
        "Subject: Benchmark message number %d\r\n"
        "Date: Mon, 1 Jan 2024 12:00:00 +0000\r\n"
        "Message-ID: <%d@bench.example.org>\r\n"
        "\r\n"
        "Hello,\r\n\r\nthis is message %d.\r\n" % (n, n, n, n, n)
    ).encode("ascii")


def buildMaildir(root, count):
    """
    Write C{count} messages straight into C{root/INBOX/cur} (as another
    program would have: no index).
    """
    inbox = os.path.join(root, "INBOX")
    maildir.ensureMaildir(inbox)
    cur = os.path.join(inbox, "cur")
    start = time.time()
    for n in range(count):
        data = makeMessage(n)
        flags = ":2,S" if n % 3 else ":2,"
        name = "%d.M%dP1Q%d.bench,S=%d,W=%d%s" % (1700000000 + n, n % 1000000, n, len(data), len(data), flags)
        with open(os.path.join(cur, name), "wb") as f:
            f.write(data)
    return time.time() - start


def removeIndex(root):
    for suffix in ("", "-wal", "-shm"):
        maildir.removeQuietly(os.path.join(root, maildir.INDEX_NAME + suffix))


def timed(f):
    start = time.perf_counter()
    result = f()
    return time.perf_counter() - start, result


def median(values):
    return statistics.median(values)


def benchColdBuild(root, runs):
    times = []
    for _ in range(runs):
        removeIndex(root)

        def build():
            store = MailStore(root, reactor=task.Clock())
            mailbox = store.getMailbox("INBOX")
            count = len(mailbox.uids())
            store.close()
            return count
        elapsed, count = timed(build)
        times.append(elapsed)
    return median(times), count


def benchWarmOpen(root, runs):
    openTimes, allTimes, count = [], [], 0
    for _ in range(runs):
        def open_():
            store = MailStore(root, reactor=task.Clock())
            mailbox = store.getMailbox("INBOX")
            return store, mailbox, mailbox.uids()
        elapsed, (store, mailbox, uids) = timed(open_)
        openTimes.append(elapsed)
        elapsed, infos = timed(lambda mailbox=mailbox, uids=uids: mailbox.messages(uids))
        allTimes.append(elapsed)
        count = len(infos)
        store.close()
    return median(openTimes), median(allTimes), count


def benchChecks(root, runs):
    store = MailStore(root, reactor=task.Clock())
    mailbox = store.getMailbox("INBOX")
    row = mailbox._row("newmtime, newsynced, curmtime, cursynced")
    cheap = median([timed(lambda: scan.dirtyDirectories(row, mailbox._path()))[0] for _ in range(runs * 10)])
    rescans = []
    for _ in range(runs):
        store._conn.execute("UPDATE mailboxes SET curmtime = 0, newmtime = 0 WHERE id = ?", (mailbox._id,))
        rescans.append(timed(lambda: scan.scanMailbox(store._conn, mailbox._id, mailbox._path()))[0])
    store.close()
    return cheap, median(rescans)


def benchAppend(root, count):
    store = MailStore(root, reactor=task.Clock())
    try:
        store.createMailbox("Append")
    except Exception:
        pass
    mailbox = store.getMailbox("Append")
    data = makeMessage(1) * 20
    elapsed, _ = timed(lambda: [mailbox.appendMessage(data) for _ in range(count)])
    mailbox.setFlags(mailbox.uids(), ["\\Deleted"], "+")
    mailbox.expunge()
    store.close()
    return count / elapsed


LMTP_SENDERS = 4

DOVECOT_CONF = """\
base_dir = {work}/run
state_dir = {work}/state
log_path = {work}/dovecot.log
protocols = lmtp
ssl = no
listen = 127.0.0.1
first_valid_uid = 1
mail_location = maildir:{work}/mail/%n
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={work}/mail/%n
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"""


def _lmtpRate(port, count, recipient):
    """
    Deliver C{count} messages over LMTP with L{LMTP_SENDERS} concurrent
    connections; return messages per second.
    """
    import smtplib
    import threading

    per = count // LMTP_SENDERS
    errors = []

    def sender(n):
        try:
            with smtplib.LMTP("127.0.0.1", port) as s:
                for i in range(per):
                    s.sendmail("bench@example.org", [recipient], makeMessage(n * per + i) * 4)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(LMTP_SENDERS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return per * LMTP_SENDERS / elapsed


def benchLmtpVsDovecot(args):
    """
    LMTP delivery rate with 4 concurrent senders: gateway (twistd, LMTP only,
    a fresh data root) against Dovecot's LMTP (dovecot-lmtpd) on loopback,
    same messages.  Returns C{(gatewayRate, dovecotRate)} in messages per
    second (medians of C{args.runs}), or C{None} when Dovecot is missing.
    """
    import shutil as _shutil
    import subprocess
    import tempfile

    dovecot = _shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)
    if dovecot is None or not os.path.exists("/usr/lib/dovecot/lmtp"):
        print("LMTP: Dovecot's LMTP is not installed (apt-get install dovecot-lmtpd); not compared")
        return None
    work = tempfile.mkdtemp(prefix="gateway-bench-lmtp-")
    processes = []
    try:
        # gateway
        gwPort = peers.freePort()
        dataRoot = os.path.join(work, "gateway")
        config = os.path.join(work, "gateway.ini")
        with open(config, "w") as f:
            f.write("[server]\ndata_root = %s\n[tls]\ncertificate = %s/none.pem\nprivate_key = %s/none.pem\n"
                    % (dataRoot, work, work))
            for name in ("imap", "pop3", "http", "ftp", "admin"):
                f.write("[%s]\nenabled = no\n" % (name,))
            f.write("[lmtp]\nlisten = tcp:%d:interface=127.0.0.1\nlog_level = warn\n" % (gwPort,))
        bindir = os.path.dirname(sys.executable)
        subprocess.run([os.path.join(bindir, "gatewayctl"), "--config", config, "domain", "add", "example.test"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run([os.path.join(bindir, "gatewayctl"), "--config", config, "account", "add",
                        "bench@example.test", "--password", "x"], check=True, stdout=subprocess.DEVNULL)
        processes.append(subprocess.Popen(
            [os.path.join(bindir, "twistd"), "--nodaemon", "--pidfile=", "--logfile", os.path.join(work, "twistd.log"),
             "gateway", "--config", config], cwd=work))
        # Dovecot
        dcPort = peers.freePort()
        for sub in ("run", "state", "mail"):
            os.makedirs(os.path.join(work, "dovecot", sub))
        os.chmod(os.path.join(work, "dovecot", "mail"), 0o777)
        os.chmod(work, 0o755)
        import pwd

        nobody = pwd.getpwnam("nobody")
        dconf = os.path.join(work, "dovecot", "dovecot.conf")
        with open(dconf, "w") as f:
            f.write(DOVECOT_CONF.format(work=os.path.join(work, "dovecot"), port=dcPort,
                                        uid=nobody.pw_uid, gid=nobody.pw_gid))
        processes.append(subprocess.Popen([dovecot, "-F", "-c", dconf]))
        if not (peers.waitForPort(gwPort) and peers.waitForPort(dcPort)):
            print("LMTP: a server did not start; see %s" % (work,))
            return None
        count = args.lmtp_messages
        gwRates, dcRates = [], []
        for _ in range(args.runs):
            gwRates.append(_lmtpRate(gwPort, count, "bench@example.test"))
            dcRates.append(_lmtpRate(dcPort, count, "bench@example.test"))
        return median(gwRates), median(dcRates)
    finally:
        for p in processes:
            p.terminate()
            p.wait(10)
        _shutil.rmtree(work, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--appends", type=int, default=500)
    parser.add_argument("--lmtp-messages", type=int, default=2000, help="messages per LMTP run")
    parser.add_argument("--lmtp-only", action="store_true", help="run only the LMTP comparison")
    parser.add_argument("--work", default=os.path.join(HERE, "work", "store"))
    parser.add_argument("--rebuild", action="store_true", help="make a new Maildir")
    args = parser.parse_args(argv)

    if args.lmtp_only:
        lmtp(args)
        return
    root = os.path.join(args.work, "%d" % (args.messages,), "mail")
    if args.rebuild and os.path.exists(root):
        shutil.rmtree(root)
    print("machine: %s, %s, Python %s, SQLite %s" % (
        platform.node(), platform.processor() or platform.machine(), platform.python_version(),
        __import__("sqlite3").sqlite_version))
    print("date: %s" % (time.strftime("%Y-%m-%d %H:%M:%S"),))
    if not os.path.isdir(os.path.join(root, "INBOX", "cur")):
        elapsed = buildMaildir(root, args.messages)
        print("wrote %d message files in %.1f s" % (args.messages, elapsed))

    cold, count = benchColdBuild(root, args.runs)
    print("cold index build (synchronize from nothing), %d messages: %.3f s  (%.0f msg/s)"
          % (count, cold, count / cold))
    warmOpen, warmAll, count = benchWarmOpen(root, args.runs)
    print("warm open: getMailbox + uids(): %.4f s (target < 0.1 s)" % (warmOpen,))
    print("warm open: messages() of all %d: %.3f s" % (count, warmAll))
    cheap, rescan = benchChecks(root, args.runs)
    print("synchronize, nothing changed (stat new/ and cur/): %.6f s" % (cheap,))
    print("synchronize, full rescan with nothing to do: %.3f s" % (rescan,))
    rate = benchAppend(root, args.appends)
    print("appendMessage (fsync'd), %d x %d bytes: %.0f msg/s" % (args.appends, len(makeMessage(1)) * 20, rate))
    lmtp(args)


def lmtp(args):
    rates = benchLmtpVsDovecot(args)
    if rates is not None:
        gateway, dovecot = rates
        print("LMTP delivery, %d senders: gateway %.0f msg/s, Dovecot %.0f msg/s, ratio %.2f (goal >= 0.5)"
              % (LMTP_SENDERS, gateway, dovecot, gateway / dovecot))


if __name__ == "__main__":
    main()
