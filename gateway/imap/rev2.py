# -*- test-case-name: tests.test_imap_rev2 -*-
"""
IMAP4rev2 (RFC 9051) beside IMAP4rev1: C{ENABLE IMAP4rev2} switches a
session to what RFC 9051 changes (its Appendix E), as Stalwart does.

A session that enabled it:
  - has its mailbox names in UTF-8 (L{gateway.imap.names});
  - sees no C{\\Recent} flag and no C{RECENT} response (SELECT, EXAMINE,
    new mail); it claims no message as recent, so an IMAP4rev1 session
    still sees them recent;
  - gets no C{OK [UNSEEN n]} from SELECT/EXAMINE, and gets an untagged
    LIST of the mailbox instead (RFC 9051 6.3.2);
  - is answered SEARCH with ESEARCH (RFC 9051 6.4.4: SEARCH without RETURN
    is RETURN (ALL));
  - gets the UID in every unsolicited FETCH (RFC 9051 7.5.2);
  - DELETE of a mailbox with children is C{NO [HASCHILDREN]}.
STATUS DELETED (RFC 9051 6.3.11) is answered to every session.

Everything else RFC 9051 folds in (NAMESPACE, UNSELECT, UIDPLUS, ESEARCH,
SEARCHRES, ENABLE, IDLE, SASL-IR, LIST-EXTENDED, LIST-STATUS, MOVE,
LITERAL+ (LITERAL- is a subset), BINARY, SPECIAL-USE, STATUS=SIZE) was
already there for IMAP4rev1 sessions too.
"""

from gateway.imap.commands_auth import ENABLE_HOOKS, ENABLE_SPELLING, ENABLEABLE
from gateway.imap.protocol import capability

#: The ENABLE name (ENABLE compares in upper case).
REV2 = "IMAP4REV2"

ENABLEABLE.add(REV2)
ENABLE_SPELLING[REV2] = "IMAP4rev2"
capability("IMAP4rev2")


def isRev2(session):
    """
    Whether the session enabled IMAP4rev2.
    """
    return REV2 in session.enabled


def _enabled(session):
    """
    ENABLE IMAP4rev2 with a mailbox selected: its \\Recent goes now.
    """
    if session.view is not None:
        session.view.showRecent = False
        session.view.recent = frozenset()


ENABLE_HOOKS[REV2] = _enabled
