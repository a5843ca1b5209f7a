"""
Protocol-neutral errors.  Front-ends translate them into their own replies
(IMAP C{NO [OVERQUOTA]}, FTP C{552}, HTTP C{507}, LMTP C{552 5.2.2}, ...).
"""

import errno
import sqlite3


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


class MailboxNameLimit(InvalidMailboxName):
    """
    A mailbox name is too deep or too long (IMAP C{NO [LIMIT]}).
    """


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


class StorageFull(StoreError):
    """
    The file system holding the data is full (C{ENOSPC}, C{EDQUOT}, or
    SQLite's C{SQLITE_FULL}): a temporary condition, not the account's
    quota (IMAP C{NO [UNAVAILABLE]}, POP3 C{-ERR [SYS/TEMP]}, LMTP C{452
    4.3.1}).
    """


_FULL_ERRNOS = frozenset((errno.ENOSPC, errno.EDQUOT))

# sqlite3.SQLITE_FULL (the constant is in the module from Python 3.11).
_SQLITE_FULL = 13


def isStorageFull(exception):
    """
    Whether C{exception} says the disk is full: L{StorageFull}, an
    C{OSError} with C{ENOSPC} or C{EDQUOT}, or an C{sqlite3} error with
    the code C{SQLITE_FULL} ("database or disk is full").
    """
    if isinstance(exception, StorageFull):
        return True
    if isinstance(exception, OSError):
        return exception.errno in _FULL_ERRNOS
    if isinstance(exception, sqlite3.Error):
        code = getattr(exception, "sqlite_errorcode", None)
        if code is not None:
            return code & 0xff == _SQLITE_FULL
        return "database or disk is full" in str(exception)
    return False
