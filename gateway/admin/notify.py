# -*- test-case-name: tests.test_daemon -*-
"""
systemd's readiness protocol (C{Type=notify}), without a library: a
datagram with C{READY=1}, C{RELOADING=1} or C{STOPPING=1} to the socket
systemd names in C{$NOTIFY_SOCKET}.  Outside systemd it does nothing.
"""

import os
import socket
import time


def notify(state, environ=None):
    """
    Tell systemd C{state} (C{bytes} such as C{b"READY=1"}).

    @return: C{True} when it was sent.
    """
    environ = os.environ if environ is None else environ
    path = environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]  # an abstract socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(path)
            s.sendall(state)
        return True
    except OSError:
        return False


def reloading():
    """
    C{RELOADING=1} with the C{MONOTONIC_USEC} systemd 253 and later ask for.
    """
    return b"RELOADING=1\nMONOTONIC_USEC=%d" % (time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000,)
