# -*- test-case-name: tests.test_monitor -*-
"""
Operations: what the front-ends report for the metrics and the session
list, sessions that end cleanly when the server stops, and what lets go of
what is idle.
"""

from zope.interface import Interface

# ---------------------------------------------------------------------------
# Operations


class IMonitor(Interface):
    """
    What the front-ends report for the metrics and the session list
    (C{context.monitor}): one hook at command dispatch.  Sessions, bytes
    and logins are seen from the wiring's side (the listener wrapper and
    the portal), so the front-ends need no more.
    """

    def command(protocol, name, handler, *args):
        """
        Run C{handler(*args)} (a command of C{protocol} named C{name}) and
        count it with its duration, when it is done (now, or when the
        C{Deferred} it returns fires).

        @return: what C{handler} returns; what it raises is raised.
        """


class IDrainable(Interface):
    """
    A session that can end cleanly when the server stops (SIGTERM): see
    L{gateway.drain}.
    """

    def drain(reason):
        """
        The server is stopping: end the session now if no command is in
        flight (saying why, as the protocol allows: IMAP C{* BYE}, POP3
        C{-ERR [SYS/TEMP]}, LMTP and FTP C{421}), else once the command in
        flight (an LMTP message being received and delivered, an FTP
        transfer) has been answered.
        A session waiting for the client (IMAP IDLE, AUTHENTICATE) has
        nothing in flight.  Further input is not read.

        @param reason: C{str}, for the client (ASCII).
        """


class IIdleRelease(Interface):
    """
    Something that holds memory or open files for what may be used again
    (accounts, threads, caches) and can let go of what was not used for a
    while (L{gateway.idle.IdleReleaser} asks every C{[server]
    release_idle_after} seconds).
    """

    def releaseIdle():
        """
        Let go of what was not used since the previous call (the first
        call: since this object was made).

        @return: how many things were let go (C{int}; 0 for none).
        """
