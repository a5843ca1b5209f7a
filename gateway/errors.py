"""
Protocol-neutral errors.  Front-ends translate them into their own replies
(IMAP C{NO [OVERQUOTA]}, FTP C{552}, HTTP C{507}, LMTP C{552 5.2.2}, ...).
"""


class GatewayError(Exception):
    """
    Base of every error a front-end may translate for a client.
    """


class ConfigurationError(GatewayError):
    """
    The configuration is not usable.  C{str()} is one line naming the option
    and the problem.
    """


class DirectoryError(GatewayError):
    """
    A directory change cannot be made (bad name, exists, does not exist).
    """


class NoSuchAccount(DirectoryError):
    pass


class NoSuchDomain(DirectoryError):
    pass


class QuotaExceeded(GatewayError):
    """
    The operation would take the account over its storage quota.
    """


class StoreError(GatewayError):
    pass


class NoSuchMailbox(StoreError):
    pass


class MailboxExists(StoreError):
    pass


class MailboxHasChildren(StoreError):
    pass


class InvalidMailboxName(StoreError):
    pass


class NoSuchMessage(StoreError):
    pass


class PermissionDenied(StoreError):
    """
    The viewer may see the mailbox but lacks a right the operation needs
    (IMAP C{NO [NOPERM]}).  A mailbox the viewer may not see raises
    L{NoSuchMailbox} instead, exactly as a missing one does.
    """


class InvalidPath(StoreError):
    """
    A client path is refused: it leaves the root, contains NUL, or is
    otherwise not acceptable.
    """
