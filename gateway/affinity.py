# -*- test-case-name: tests.test_affinity -*-
"""
Each server process kept on one CPU (C{[server] cpu_affinity = auto}, the
default): worker K on the K-th CPU the server may use (in turn when there
are more workers than CPUs), the single process of C{workers = 1} on the
first.  The parent of the workers, which only starts them and relays their
logs, is left where the kernel puts it.

Why: a Python process runs Python code on one CPU at a time (the GIL), but
its threads (the reactor, each account's index writer, the pool threads)
are spread by the kernel over every CPU.  Each time one of them lets go of
the GIL (an SQLite step, an fsync, a socket send) a thread waiting for it on
another CPU is woken, across CPUs (on a virtual machine, through the
hypervisor), thousands of times a second: perf found 37% of the workers'
CPU in the kernel, most of it switching and waking threads, and 7 context
switches an IMAP command.  With the threads of a process on one CPU they
hand the GIL over by an ordinary switch.  Measured with imaptest (10 clients kept open,
2 CPUs, bench/RESULTS.md, session 21): two workers did 34% more commands
over five accounts and 18% more on one INBOX, at 8-17% less CPU a command;
one worker did 35% more on one CPU than spread over two.  nginx offers the
same (C{worker_cpu_affinity auto}).

On that one CPU the reactor's thread comes first: the others (each index
writer, the checkpointer, the fsync helpers) call L{yieldToReactor} as they
start, which makes them C{SCHED_BATCH}.  A thread woken by its queue or by a
finished fsync would otherwise preempt the reactor's thread at once, only
to find the GIL taken and block again: two switches for nothing, at every
write.  As C{SCHED_BATCH} it waits until the reactor's thread blocks or its
turn ends, then finds the GIL free.  Measured (bench/abtest.py, both
workers bound, session 21): 5-6% more commands over five accounts, 4% more
on one INBOX, 4-10% less CPU a command.  While an index writer holds the
writers' lock, which the other workers' writers wait for, it is an ordinary
thread again (L{setYielding}): woken by its commit's fsync it runs at once
and lets go of the lock, rather than when the reactor's thread blocks
(1.046 on one INBOX, 1.022 over five accounts, 6 rounds each).

C{cpu_affinity = off} leaves every thread where the kernel puts it: for a
machine whose other services should share the CPUs freely with the server.
Only Linux (C{sched_setaffinity}) binds; elsewhere the setting does nothing.
"""

import os

from twisted.application import service

from gateway import logging as glog

__all__ = ["AffinityService", "bindProcess", "cpuFor", "setYielding", "yieldToReactor"]

log = glog.getLogger("server")

#: Whether this process was kept on one CPU (L{AffinityService}).
_bound = False


def cpuFor(number, allowed):
    """
    The CPU that server process C{number} (1 for the first worker and for
    the single process) is kept on, of the CPUs C{allowed} (the process's
    affinity at start, as C{os.sched_getaffinity} gives it): the K-th in
    order, round again when there are more workers than CPUs.
    """
    ordered = sorted(allowed)
    return ordered[(number - 1) % len(ordered)]


def bindProcess(cpus):
    """
    Keep every thread of this process (the calling one first, so that what
    it starts from now on inherits it) on C{cpus}.  A thread that ended
    meanwhile is passed over.
    """
    os.sched_setaffinity(0, cpus)
    for name in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(name), cpus)
        except ProcessLookupError:
            pass


def yieldToReactor():
    """
    Called by a thread other than the reactor's as it starts: in a process
    kept on one CPU, make the calling thread C{SCHED_BATCH} (it does not
    preempt the reactor's thread when it wakes).  Elsewhere, or where the
    policy cannot be set, nothing.

    @return: whether the thread is C{SCHED_BATCH} now.
    """
    if not _bound or not hasattr(os, "SCHED_BATCH"):
        return False
    return setYielding(True)


def setYielding(yielding):
    """
    Make the calling thread C{SCHED_BATCH} (C{yielding}) or an ordinary
    thread again, for a while: a thread that L{yieldToReactor} made
    C{SCHED_BATCH} is ordinary while others wait for it (see
    L{gateway.store.writer}).

    @return: whether the policy was set.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH if yielding else os.SCHED_OTHER, os.sched_param(0))
    except OSError:
        return False
    return True


class AffinityService(service.Service):
    """
    Binds the process to its CPU when it starts: the server's
    L{gateway.service.GatewayService} starts it first, before anything of
    it starts a thread (L{gateway.tap.keepOnCpu}).

    @ivar cpu: the CPU bound to, once started; C{None} if none was.
    """

    cpu = None

    def __init__(self, number, setting):
        """
        @param number: the server process's number (see L{cpuFor}).
        @param setting: C{[server] cpu_affinity}: C{"auto"} or C{"off"}.
        """
        self.number = number
        self.setting = setting

    def startService(self):
        service.Service.startService(self)
        if self.setting != "auto" or not hasattr(os, "sched_setaffinity"):
            return
        allowed = os.sched_getaffinity(0)
        if len(allowed) < 2:
            return
        cpu = cpuFor(self.number, allowed)
        try:
            bindProcess({cpu})
        except OSError as e:
            log.warn("could not keep the process on CPU {cpu}: {error}", cpu=cpu, error=e)
            return
        global _bound
        _bound = True
        self.cpu = cpu
        log.info("process {pid} kept on CPU {cpu} ([server] cpu_affinity)", pid=os.getpid(), cpu=cpu)
