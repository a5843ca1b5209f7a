# -*- test-case-name: tests.test_imap_extensions -*-
"""
UNAUTHENTICATE (RFC 8437): back to the not-authenticated state on the same
connection (TLS stays), so a client can log in as someone else.
"""

from gateway.imap.protocol import AUTH, NOT_AUTHENTICATED, capability, command


@command("UNAUTHENTICATE", AUTH, capability="UNAUTHENTICATE")
def do_UNAUTHENTICATE(session, tag, args):
    """
    Close the mailbox without expunging (as UNSELECT), end the login and
    forget what the client ENABLEd.
    """
    args.end()
    session.closeMailbox()
    if session.notify is not None:
        session.notify.stop()
        session.notify = None
    logout, session._logout = session._logout, None
    session.account = None
    session.enabled = set()
    session.state = NOT_AUTHENTICATED
    if logout is not None:
        logout()


# Announced where it can be used: after login.
capability("UNAUTHENTICATE", lambda session: session.state != NOT_AUTHENTICATED)
