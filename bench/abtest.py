#!/usr/bin/env python
"""
Two versions of gateway side by side under imaptest, at the same time: for
telling whether a change makes the server faster, on a machine whose speed
drifts.

    .venv/bin/python bench/abtest.py A B [--workers 1] [--rounds 4]
        [--seconds 20] [--clients 10] [--shape open] [--alone]

C{A} and C{B} are source trees (a checkout, a worktree) or git revisions of
this repository (checked out into temporary worktrees, removed at the end).
Each round starts both servers, each over a fresh data root, and runs one
imaptest (C{bench/imaptest.py}'s shapes, same seed, same messages) against
each, both at once; it prints the commands each completed, their CPU a
command, and B's count over A's.  The last line is the median ratio.

With C{--alone} each round runs A and B one after the other instead, each
alone with its imaptest (the order alternating): the setting of the
benchmark itself.  Use it for two workers a side: side by side, four
worker processes on two CPUs, a change that made each worker 8% cheaper
showed 0.985, where alone, pair by pair, it did 8-15% more commands (run
after run of the same code moved less within a pair than between pairs).

Why at once: on the 2-vCPU machines of this project the same code's
imaptest figure moved by up to 30-40% between runs minutes apart, so runs
one after the other cannot show a change of a few percent.  Run side by
side, both versions meet the same drift and share the CPUs; A against A
gave ratios of 0.975-1.005 with one worker a side.  With two workers a side
the server started first did 5-10% more than the same code started second,
so rounds alternate which starts first (the line says), and the figure to
read is over an even number of rounds: the geometric mean, where a pair of
rounds cancels the order (the median of two clusters is whichever middle
values fall).  What the ratio measures is therefore how much
more work a version gets done out of the same, contended, CPUs: a change in
CPU a command.  It says nothing of either against Dovecot
(C{bench/imaptest.py} does), and two servers at once is not a load a
benchmark claims anything about: record ratios from here as A/B results,
not as throughput.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import imap, imaptest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sourceTree(given, top, made):
    """
    The source tree of C{given}: itself when it is a directory with the
    package, else a temporary worktree of the git revision it names.
    """
    if os.path.isdir(os.path.join(given, "gateway")):
        return os.path.abspath(given)
    path = os.path.join(top, "tree-%d" % (len(made),))
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", "-q", path, given], check=True)
    made.append(path)
    return path


def startIn(tree, tmp, options):
    """
    gateway from C{tree} (its package first on the path) over a new data
    root in C{tmp}.
    """
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = tree
    try:
        return imaptest.startServer("ours", tmp, options)
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved


def runImaptest(binary, port, options, mbox, out):
    env = dict(os.environ, LD_LIBRARY_PATH="/usr/lib/dovecot")
    out.append(subprocess.run(imaptest.clientArgs(binary, port, options.shape, options, mbox), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=options.seconds + 120).stdout.decode("utf-8", "replace"))


def oneRound(binary, trees, options, mbox, top, swap=False):
    """
    Both servers under load at once: C{[(commands, CPU a command in ms,
    error lines)]} in the order of C{trees}.

    @param swap: start the second tree's server and client first (with
        two workers a side, the one started first did 5-10% more in
        rounds of the same code against itself: rounds alternate).
    """
    if swap:
        return oneRound(binary, trees[::-1], options, mbox, top)[::-1]
    started = []
    try:
        for tree in trees:
            tmp = tempfile.mkdtemp(prefix="ab-", dir=top)
            started.append((tmp,) + startIn(tree, tmp, options))
        before = [imaptest.treeCpu(child.pid) for _tmp, child, _port in started]
        outputs = [[] for _ in started]
        clients = [threading.Thread(target=runImaptest, args=(binary, port, options, mbox, out))
                   for (_tmp, _child, port), out in zip(started, outputs, strict=True)]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        cpu = [imaptest.treeCpu(child.pid) - was for (_tmp, child, _port), was in zip(started, before, strict=True)]
    finally:
        kept = []
        for tmp, child, _port in started:
            imap.stop(child)
            kept.append(imaptest.keepServerLog("ours", tmp, top))
            shutil.rmtree(tmp, ignore_errors=True)
    results = []
    for out, used, log in zip(outputs, cpu, kept, strict=True):
        text = out[0] if out else ""
        commands = sum(imaptest.parseTotals(text).values()) if "Totals:" in text else 0
        errors = [line for line in text.splitlines() if "Error:" in line]
        if log is not None:
            errors.append("the server logged a traceback: its log is kept in %s" % (log,))
        results.append((commands, used * 1000 / commands if commands else None, errors))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="source tree or git revision (the base)")
    parser.add_argument("b", help="source tree or git revision (the change)")
    parser.add_argument("--imaptest", help="the imaptest binary (else $IMAPTEST, bench/imaptest/, PATH)")
    parser.add_argument("--workers", type=int, default=1, help="each server's [server] workers")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--shape", default="open", choices=sorted(imaptest.SHAPES))
    parser.add_argument("--users", type=int, default=1, help="accounts the clients log in as (see imaptest.py)")
    parser.add_argument("--alone", action="store_true",
                        help="run A and B one after the other, each alone, in pairs (the order alternating)"
                             " instead of side by side: for two workers a side")
    options = parser.parse_args()
    binary = imaptest.findImaptest(options.imaptest)
    if binary is None:
        print("imaptest not found: build it with bench/build-imaptest.sh", file=sys.stderr)
        return 2
    top = tempfile.mkdtemp(prefix="abtest-")
    made = []
    try:
        trees = [sourceTree(given, top, made) for given in (options.a, options.b)]
        mbox = os.path.join(top, "mbox")
        imaptest.writeMbox(mbox, options.messages)
        print("A = %s\nB = %s\nworkers %d, %d clients, shape %s, %d s a round"
              % (options.a, options.b, options.workers, options.clients, options.shape, options.seconds))
        ratios = []
        for n in range(options.rounds):
            swap = n % 2 == 1
            if options.alone:
                order = trees[::-1] if swap else trees
                (first,), (second,) = [oneRound(binary, [tree], options, mbox, top) for tree in order]
                (ca, ma, ea), (cb, mb, eb) = (second, first) if swap else (first, second)
            else:
                (ca, ma, ea), (cb, mb, eb) = oneRound(binary, trees, options, mbox, top, swap)
            if ea or eb or not ca or not cb:
                print("round %d: A %d commands, %d errors; B %d commands, %d errors: not counted"
                      % (n + 1, ca, len(ea), cb, len(eb)))
                for which, lines in (("A", ea), ("B", eb)):
                    for line in lines[:5]:
                        print("  %s: %s" % (which, line.strip()))
                continue
            ratios.append(cb / ca)
            print("round %d (%s first): A %d (%.3f ms CPU a command)  B %d (%.3f ms)  B/A %.3f"
                  % (n + 1, "B" if swap else "A", ca, ma, cb, mb, cb / ca), flush=True)
        if ratios:
            print("median B/A over %d rounds: %.3f; geometric mean %.3f" % (
                len(ratios), statistics.median(ratios), statistics.geometric_mean(ratios)))
        return 0 if ratios else 1
    finally:
        for path in made:
            subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", path], check=False)
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
