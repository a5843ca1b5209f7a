# -*- test-case-name: tests.test_interfaces -*-
"""
The seams of gateway, as zope Interfaces: import every one from here
(C{from gateway.interfaces import IMailbox}); the modules of this package
only group them by concern.

Layers (imports point down only)::

    tap.py / service.py        wiring
    imap/ pop3/ http/ ftp/ lmtp/   protocol front-ends
    cred/                      portal, realm, checkers, SASL, password schemes
    directory/                 domains, accounts, routing
    store/                     mail store, file store, calendar
    interfaces/, errors.py     (this package)

The modules::

    directory.py    domains, account records, login delays, the account
                    avatar, its quota, the login context
    store.py        mail store and mailboxes, calendar queries, file store
    access.py       the access layer (sharing, ACLs) and METADATA
    delivery.py     staged delivery, the delivery agent
    operations.py   the monitor's hook, draining sessions, letting go of
                    what is idle
    imap.py         IMAP view observers, mailbox name codec, URLAUTH keys

Every implementation says C{@implementer(...)} and a test calls
C{verifyObject} on it.
"""

from gateway.interfaces.access import IMailboxAccess, IMetadata, IMetadataEntry, IViewerAccess
from gateway.interfaces.delivery import IDeliveryAgent, IStagedDelivery
from gateway.interfaces.directory import (
    IAccount,
    IAccountRecord,
    IDirectory,
    IDomain,
    ILoginContext,
    ILoginDelays,
    IQuota,
)
from gateway.interfaces.imap import IMailboxNameCodec, IURLAuthKeys, IViewObserver
from gateway.interfaces.operations import IDrainable, IIdleRelease, IMonitor
from gateway.interfaces.store import (
    IAccountChangeFeed,
    ICalendarQueries,
    IFileStore,
    IMailbox,
    IMailboxInfo,
    IMailStore,
    IMessageInfo,
)

__all__ = [
    "IAccount",
    "IAccountChangeFeed",
    "IAccountRecord",
    "ICalendarQueries",
    "IDeliveryAgent",
    "IDirectory",
    "IDomain",
    "IDrainable",
    "IIdleRelease",
    "IFileStore",
    "ILoginContext",
    "ILoginDelays",
    "IMailStore",
    "IMailbox",
    "IMailboxAccess",
    "IMailboxInfo",
    "IMailboxNameCodec",
    "IMessageInfo",
    "IMetadata",
    "IMetadataEntry",
    "IMonitor",
    "IQuota",
    "IStagedDelivery",
    "IURLAuthKeys",
    "IViewObserver",
    "IViewerAccess",
]
