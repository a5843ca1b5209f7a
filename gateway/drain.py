# -*- test-case-name: tests.test_workers_drain -*-
"""
Graceful stop (SIGTERM): the server stops accepting, tells every session
that can end cleanly (L{gateway.interfaces.IDrainable}: IMAP, POP3, LMTP,
FTP) to go, lets the commands in flight finish and be answered, and waits
for those sessions to close, at most C{[server] drain_seconds}; whatever
is left then (and every connection of the other protocols: HTTP, the
admin listener) is closed as the process ends.  A single process and each
worker process drain alike.
"""

from twisted.internet import defer

from gateway.interfaces import IDrainable
from gateway.logging import getLogger

log = getLogger("server")

#: What the clients are told.
REASON = "Server shutting down"

#: Seconds between two looks at the sessions left.
POLL = 0.05


def sessions(factories):
    """
    The open sessions of C{factories} (protocol name -> factory: a
    L{gateway.admin.limits.LimitedFactory}, whose C{protocols} are the
    wrappers, or a factory with a C{sessions} set of its own, as FTP's).

    @return: C{list} of C{(protocol, isOpen)}: the protocol (unwrapped)
        and a function telling whether its connection is still open.
    """
    found = []
    for factory in factories.values():
        container = getattr(factory, "protocols", None)
        if not isinstance(container, dict):
            container = getattr(factory, "sessions", None)
            if not isinstance(container, set):
                continue
        for key in list(container):
            protocol = getattr(key, "wrappedProtocol", key)
            if protocol is not None:
                found.append((protocol, lambda key=key, container=container: key in container))
    return found


def drain(factories, clock, seconds, reason=REASON):
    """
    Tell every L{IDrainable} session of C{factories} to go, and wait for
    them to close.

    @param clock: an C{IReactorTime}.
    @param seconds: the most to wait.
    @return: a C{Deferred} firing with the number of sessions still open
        when the wait ended (0: all went in time).
    """
    told = [(p, isOpen) for p, isOpen in sessions(factories) if IDrainable.providedBy(p)]
    if not told:
        return defer.succeed(0)
    log.info("stopping: telling {count} sessions to go, waiting at most {seconds} s for them",
             count=len(told), seconds=seconds)
    for session, _ in told:
        try:
            session.drain(reason)
        except Exception:
            log.failure("telling a session to go")
    done = defer.Deferred()
    deadline = clock.seconds() + seconds

    def look():
        left = [p for p, isOpen in told if isOpen()]
        if not left or clock.seconds() >= deadline:
            if left:
                log.warn("stopping: {count} sessions still busy after {seconds} s are closed",
                         count=len(left), seconds=seconds)
            else:
                log.info("stopping: every session has ended")
            done.callback(len(left))
            return
        clock.callLater(min(POLL, max(0.0, deadline - clock.seconds())), look)

    look()
    return done
