#!/usr/bin/env python
"""
Sharing benchmark (issue 11): what the access layer costs.

    .venv/bin/python bench/sharing.py [--messages 50000] [--accounts 100]
                                      [--mailboxes 10] [--runs 5]

One gateway under twistd, IMAP only.  Measured, medians of C{--runs}:

  - C{FETCH 1:* (FLAGS UID RFC822.SIZE)} on a mailbox of C{--messages}
    messages, by its owner (C{SELECT Shared}) and by a viewer it is shared
    with (C{SELECT ~owner/Shared}, rights C{lrs}); the ratio is the viewer's
    throughput over the owner's (goal: at least 0.95);
  - C{LIST "" "*"} for a viewer to whom C{--accounts} accounts share
    C{--mailboxes} mailboxes each (goal: under 50 ms);
  - as a check, every answer is parsed: the FETCH must list every message
    with its UID, and the LIST every shared mailbox.
"""

import argparse
import os
import re
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.insert(0, ROOT)

from bench.imap import DOMAIN, PASSWORD, USER, Client, makeAccount, startOurs, stop, writeMaildir  # noqa: E402

VIEWER = "viewer@" + DOMAIN


def prepare(tmp, dataRoot, options):
    """
    The owner with C{--messages} messages in C{Shared}, the viewer, and
    C{--accounts} more accounts sharing C{--mailboxes} mailboxes each with
    the viewer; all through gateway's own API, as C{gatewayctl} would.
    """
    from gateway.cred.passwords import hashPassword
    from gateway.cred.realm import GatewayRealm
    from gateway.directory.filedir import FileDirectory

    mail = makeAccount(tmp, dataRoot)
    writeMaildir(os.path.join(mail, "Shared"), options.messages, 1)
    directory = FileDirectory(dataRoot, DOMAIN)
    directory.addAccount(VIEWER, hashPassword(PASSWORD, "PLAIN"))
    realm = GatewayRealm(directory)
    owner = realm.accountFor(USER)
    owner.mailStore.getMailbox("Shared")
    owner.access.setACL("Shared", VIEWER, "lrs")
    for n in range(options.accounts):
        address = "sharer%03d@%s" % (n, DOMAIN)
        directory.addAccount(address, hashPassword("x", "PLAIN"))
        access = realm.accountFor(address).access
        for m in range(options.mailboxes):
            name = "Folder%02d" % (m,)
            access.createMailbox(name)
            access.setACL(name, VIEWER, "lr")
    for account in (realm.accountFor(a) for a in [USER]):
        account.mailStore.close()


def login(port, user):
    client = Client(port)
    client.command(b'LOGIN "%s" "%s"' % (user.encode(), PASSWORD.encode()))
    return client


_UID = re.compile(rb"^\* \d+ FETCH \(.*UID (\d+)", re.M)


def fetchAll(client, mailbox, expected):
    client.command(b'SELECT "%s"' % (mailbox.encode(),))
    start = time.perf_counter()
    answer = client.command(b"FETCH 1:* (FLAGS UID RFC822.SIZE)")
    elapsed = time.perf_counter() - start
    uids = _UID.findall(answer)
    if len(uids) != expected or len(set(uids)) != expected:
        raise AssertionError("FETCH of %s listed %d messages, expected %d" % (mailbox, len(uids), expected))
    client.command(b"UNSELECT")
    return elapsed


def listAll(client, expected):
    start = time.perf_counter()
    answer = client.command(b'LIST "" "*"')
    elapsed = time.perf_counter() - start
    shared = [line for line in answer.split(b"\r\n") if b'"~sharer' in line or b" ~sharer" in line]
    if len(shared) < expected:
        raise AssertionError("LIST showed %d shared mailboxes, expected at least %d" % (len(shared), expected))
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=50000)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--mailboxes", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="gateway-bench-sharing-")
    dataRoot = os.path.join(tmp, "var")
    print("preparing %d messages, %d accounts x %d shared mailboxes..."
          % (options.messages, options.accounts, options.mailboxes), flush=True)
    prepare(tmp, dataRoot, options)
    child, port = startOurs(tmp, dataRoot)
    try:
        owner, viewer = login(port, USER), login(port, VIEWER)
        # Warm both: the first SELECT indexes the Maildir.
        fetchAll(owner, "Shared", options.messages)
        fetchAll(viewer, "~bench/Shared", options.messages)
        ownTimes, viewerTimes, listTimes = [], [], []
        for _ in range(options.runs):
            ownTimes.append(fetchAll(owner, "Shared", options.messages))
            viewerTimes.append(fetchAll(viewer, "~bench/Shared", options.messages))
            listTimes.append(listAll(viewer, options.accounts * options.mailboxes))
        owner.logout()
        viewer.logout()
    finally:
        stop(child)
    own, view, lst = (statistics.median(t) for t in (ownTimes, viewerTimes, listTimes))
    print("FETCH 1:* (FLAGS UID RFC822.SIZE), %d messages: owner %.3f s, viewer %.3f s; viewer/owner"
          " throughput ratio %.2f (goal >= 0.95)" % (options.messages, own, view, own / view))
    print('LIST "" "*" seeing %d accounts x %d shared mailboxes: %.1f ms (goal < 50 ms)'
          % (options.accounts, options.mailboxes, lst * 1000))
    print("runs: owner %s; viewer %s; list %s" % (
        ", ".join("%.3f" % t for t in ownTimes), ", ".join("%.3f" % t for t in viewerTimes),
        ", ".join("%.1f" % (t * 1000) for t in listTimes)))


if __name__ == "__main__":
    main()
