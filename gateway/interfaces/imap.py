# -*- test-case-name: tests.test_imap_context -*-
"""
Seams of the IMAP front-end: observers of a session's view, the mailbox
name codec of a session, and URLAUTH access keys.
"""

from zope.interface import Attribute, Interface

# ---------------------------------------------------------------------------
# IMAP


class IViewObserver(Interface):
    """
    Told of a selected mailbox's changes as a session's view announces
    them (C{view.contexts}, L{gateway.imap.context.Contexts}): what must
    come before the EXPUNGEs and what after the EXISTS (RFC 5267 4.3).
    """

    def expunging(session, view, uids):
        """
        The ascending C{uids} are about to be announced expunged; they
        still have their message numbers in C{view}.
        """

    def changed(session, view, uids):
        """
        The messages C{uids} arrived or changed (flags, modseq), and the
        view announced them (EXISTS, FETCH).
        """


# ---------------------------------------------------------------------------
# IMAP mailbox names on the wire


class IMailboxNameCodec(Interface):
    """
    How one IMAP session writes mailbox names: modified UTF-7 (RFC 3501
    5.1.3) until the client enables UTF-8 (RFC 6855 C{UTF8=ACCEPT}, RFC
    9051 C{IMAP4rev2}), UTF-8 after.  Names inside the server are C{str}.
    """

    utf8 = Attribute("C{True} when names travel as UTF-8.")

    def decode(raw):
        """
        A mailbox name or LIST pattern from the client as C{str}; INBOX in
        any case becomes C{"INBOX"}.

        @param raw: the astring's C{bytes}.
        @raise gateway.imap.parser.NotModifiedUTF7: when C{raw} is not in
            this codec's encoding (no mailbox has that name).
        """

    def encode(name):
        """
        A mailbox name (C{str}) for a response: a quoted string (or a
        literal for a name that cannot be quoted), as C{bytes}.
        """


# ---------------------------------------------------------------------------
# URLAUTH mailbox access keys


class IURLAuthKeys(Interface):
    """
    The URLAUTH mailbox access keys of one account (RFC 4467 3): a secret
    per mailbox, kept with the mailbox's stamp (its UIDVALIDITY) so that a
    mailbox made again under an old name gets a new key.
    """

    def key(name, stamp, create=False):
        """
        The key (C{bytes}) of mailbox C{name} with stamp C{stamp}; made
        when C{create} and there is none, else C{None} when there is none.
        """

    def reset(name=None):
        """
        Remove the key of mailbox C{name}, or (C{None}) every key.
        """
