# -*- test-case-name: tests.test_realm -*-
"""
The one realm: after a checker has named an account (its avatar id is the
canonical C{local@domain}), every protocol gets the same L{Account} object
for it, so sessions of IMAP, POP3, FTP, HTTP and LMTP delivery share the
account's stores and see each other's changes at once.
"""

import collections
import os
import time
import weakref

from twisted.cred.portal import IRealm
from twisted.internet.defer import Deferred, DeferredSemaphore, maybeDeferred, succeed
from twisted.internet.threads import deferToThreadPool
from zope.interface import implementer

from gateway.errors import NoSuchAccount, QuotaExceeded
from gateway.interfaces import IAccount, IIdleRelease, IQuota
from gateway.logging import getLogger
from gateway.store.access import MailboxAccess
from gateway.store.acl import SharedIndex
from gateway.store.files import FileStore

log = getLogger("auth")

#: The index of shared mailboxes, in the data root.
SHARED_INDEX = "shared-mailboxes.sqlite"

#: How many mail stores the realm opens at once in the reactor's thread
#: pool (L{GatewayRealm.accountForLater}): an opening may wait up to the
#: index's busy timeout for another process's lock, and the pool's other
#: threads are kept for the work of sessions already logged in (message
#: files, rescans).
OPENING_THREADS = 3

#: How long what the realm read of an account is trusted before it is read
#: again, in seconds: the account folder's identity (L{GatewayRealm}) and
#: the quota's limit (L{AccountQuota}), which commands ask for all the time
#: (every APPEND, STATUS, SELECT, LIST), each a C{stat} or three.  A change
#: made through the directory object the realm uses is seen at once; one
#: made by another process (gatewayctl) or by hand within this time.
RECHECK_AFTER = 1.0

#: The clock of L{RECHECK_AFTER} (for tests).
_monotonic = time.monotonic


def _readAt(directory):
    """
    When something is read from C{directory}: C{(the count of changes it
    made (C{FileDirectory.changes}), monotonic time)}.
    """
    return getattr(directory, "changes", None), _monotonic()


def _stillTrusted(directory, readAt):
    """
    Whether what was read at C{readAt} (L{_readAt}) stands: the directory
    made no change since and L{RECHECK_AFTER} has not passed.  Never for a
    directory that does not count its changes.
    """
    changes = getattr(directory, "changes", None)
    return (readAt is not None and changes is not None and readAt[0] == changes
            and _monotonic() - readAt[1] < RECHECK_AFTER)


@implementer(IQuota)
class AccountQuota:
    """
    The account's storage quota, covering mail and files together.
    """

    def __init__(self, directory, address):
        self._directory = directory
        self._address = address
        self._mailStore = None
        self._mailUsage = None
        self._fileStore = None
        #: C{(L{_readAt}, limit)} of the last read.
        self._limitRead = None

    def cover(self, mailStore, fileStore):
        """
        Count the usage of these stores (the account's, once they exist).

        The quota does not keep the account alive, nor its mail store
        (each store holds the quota, and a session may hold the file store
        alone): once the realm let the account go, the mail store goes
        with its mailboxes, and its usage is read from its index
        (C{mailStore.usageReader()}).
        """
        reader = getattr(mailStore, "usageReader", None)
        if reader is None:
            self._mailStore, self._mailUsage = (lambda: mailStore), None
        else:
            self._mailStore, self._mailUsage = weakref.ref(mailStore), reader()
        self._fileStore = fileStore

    def limit(self):
        read = self._limitRead
        if read is not None and _stillTrusted(self._directory, read[0]):
            return read[1]
        readAt = _readAt(self._directory)
        record = self._directory.getAccount(self._address)
        limit = record.quota if record is not None else None
        self._limitRead = (readAt, limit)
        return limit

    def used(self):
        if self._fileStore is None:
            return 0
        mailStore = self._mailStore()
        mail = mailStore.usage() if mailStore is not None else self._mailUsage()
        return mail + self._fileStore.usage()

    def check(self, additional):
        limit = self.limit()
        if limit is None or additional <= 0:
            return
        if self.used() + additional > limit:
            raise QuotaExceeded("storage quota of %d bytes exceeded" % (limit,))


@implementer(IAccount)
class Account:
    """
    An account as the protocols see it after login.
    """

    #: Its L{gateway.interfaces.IViewerAccess}, set by the realm.
    access = None

    def __init__(self, directory, address, mailStoreFactory, opened=None):
        """
        @param mailStoreFactory: makes the mail store, C{factory(path,
            quota=quota)}.
        @param opened: C{(mail store, quota)} made already by
            L{GatewayRealm.accountForLater} (in a thread), or C{None} to call
            C{mailStoreFactory} now.
        """
        self._directory = directory
        self.address = address
        record = directory.getAccount(address)
        if record is None:
            raise NoSuchAccount(address)
        self.path = record.path.path
        #: identity of the account folder: a removed and re-created account
        #: with the same name is a new account.
        self.folderId = _folderId(self.path)
        #: When C{folderId} was last found to be the folder's (L{_readAt};
        #: see L{GatewayRealm._held}).
        self.folderChecked = _readAt(directory)
        if opened is None:
            self.quota = AccountQuota(directory, address)
            mailStore = mailStoreFactory(os.path.join(self.path, "mail"), quota=self.quota)
        else:
            mailStore, self.quota = opened
        self.fileStore = FileStore(os.path.join(self.path, "files"), quota=self.quota)
        self.mailStore = mailStore
        self.quota.cover(self.mailStore, self.fileStore)

    @property
    def record(self):
        return self._directory.getAccount(self.address)

    def popAlerts(self):
        folder = os.path.join(self.path, "alerts")
        try:
            names = sorted(n for n in os.listdir(folder) if not n.startswith("."))
        except FileNotFoundError:
            return []
        alerts = []
        for name in names:
            path = os.path.join(folder, name)
            try:
                with open(path, "rb") as f:
                    text = f.read().decode("utf-8", "replace").strip()
                os.unlink(path)
            except FileNotFoundError:
                continue  # another session showed it
            if text:
                alerts.append(text)
        return alerts


def _canonical(address):
    if isinstance(address, bytes):
        address = address.decode("utf-8")
    return address.lower()


def _folderId(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _defaultMailStoreFactory(path, quota):
    from gateway.store.mail import MailStore

    return MailStore(path, quota=quota)


def _closeStore(mailStore):
    close = getattr(mailStore, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            log.failure("Closing the mail store {path} failed", path=getattr(mailStore, "path", None))


def _inUse(mailStore):
    inUse = getattr(mailStore, "inUse", None)
    return inUse is not None and inUse()


@implementer(IRealm, IIdleRelease)
class GatewayRealm:
    """
    Builds the L{Account} for an avatar id: one object per account while
    anything uses it.

    An account's stores hold open files (the mail index: three per
    account), so the realm does not keep every account that ever logged in:
    it keeps the C{keepIdle} most recently asked for, and any other that a
    session, a delivery or a request still holds.  An account nothing holds
    any more is closed when the garbage collector frees it, and built
    afresh when next asked for.  L{releaseIdle} lets go of the kept
    accounts nobody asked for since its previous call.

    @ivar directory: the L{gateway.interfaces.IDirectory}.
    """

    def __init__(self, directory, mailStoreFactory=_defaultMailStoreFactory, keepIdle=256, reactor=None):
        """
        @param reactor: the reactor whose thread pool opens the mail stores
            of logins (L{accountForLater}); C{None} (or one without a
            thread pool, a C{task.Clock}) opens them at once, in the
            calling thread.
        """
        self.directory = directory
        self._mailStoreFactory = mailStoreFactory
        self._reactor = reactor
        #: The accounts whose mail store is being opened in a thread:
        #: C{{address: [Deferred of each waiting login]}}.
        self._opening = {}
        self._openingThreads = DeferredSemaphore(OPENING_THREADS)
        self.keepIdle = keepIdle
        self._accounts = weakref.WeakValueDictionary()
        self._recent = collections.OrderedDict()
        #: The addresses asked for since the last L{releaseIdle}.
        self._used = set()
        dataRoot = getattr(directory, "dataRoot", None)
        #: The access layer (L{gateway.interfaces.IMailboxAccess}): other
        #: accounts' stores are opened through L{accountFor}.
        self.access = MailboxAccess(
            self.accountFor,
            SharedIndex(os.path.join(dataRoot, SHARED_INDEX) if dataRoot else None),
            self._mailRoots if dataRoot else None)

    def _mailRoots(self):
        """
        C{(address, mail folder)} of every account, from the directory's
        folders (for rebuilding the shared index).
        """
        domains = os.path.join(self.directory.dataRoot, "domains")
        for domain in sorted(os.listdir(domains)) if os.path.isdir(domains) else ():
            accounts = os.path.join(domains, domain, "accounts")
            for local in sorted(os.listdir(accounts)) if os.path.isdir(accounts) else ():
                mail = os.path.join(accounts, local, "mail")
                if os.path.isdir(mail):
                    yield "%s@%s" % (local, domain), mail

    def accountFor(self, address):
        """
        The shared L{Account} of a canonical address, its mail store opened
        in the calling thread if it is not held already (see
        L{accountForLater}).

        @raise NoSuchAccount: when the directory has no such account.
        """
        address = _canonical(address)
        account = self._held(address)
        if account is None:
            account = self._adopt(address, Account(self.directory, address, self._mailStoreFactory))
        return self._keep(address, account)

    def accountForLater(self, address):
        """
        The shared L{Account} of a canonical address, without waiting on
        the calling (reactor) thread: an account not held yet has its mail
        store opened in the reactor's thread pool, where its index's
        migrations, the default mailboxes of a new account and the recovery
        of what a dead process left may wait for another process's lock on
        the index or for the disk.  Concurrent calls for one account share
        the one opening.

        @return: a L{Deferred} firing with the L{Account}, or failing with
            L{NoSuchAccount} or what opening the store raised.
        """
        address = _canonical(address)
        account = self._held(address)
        if account is not None:
            return succeed(self._keep(address, account))
        if not hasattr(self._reactor, "getThreadPool"):
            return maybeDeferred(self.accountFor, address)
        d = Deferred()
        waiting = self._opening.get(address)
        if waiting is not None:
            waiting.append(d)
            return d
        self._opening[address] = [d]
        maybeDeferred(self._open, address).addBoth(self._opened, address)
        return d

    def accountOrLater(self, address):
        """
        The shared L{Account} of a canonical address, at once when the
        realm holds it (or opens stores in the calling thread), else a
        L{Deferred} of it (L{accountForLater}): for callers that answer
        at once when they can (a web page).

        @raise NoSuchAccount: (or the L{Deferred} fails with it) when the
            directory has no such account.
        """
        address = _canonical(address)
        account = self._held(address)
        if account is not None:
            return self._keep(address, account)
        if not hasattr(self._reactor, "getThreadPool"):
            return self.accountFor(address)
        return self.accountForLater(address)

    def _open(self, address):
        """
        Open the mail store of C{address} in the thread pool.

        @return: a L{Deferred} firing with the L{Account} (not yet adopted).
        """
        record = self.directory.getAccount(address)
        if record is None:
            raise NoSuchAccount(address)
        quota = AccountQuota(self.directory, address)
        d = self._openingThreads.run(deferToThreadPool, self._reactor, self._reactor.getThreadPool(),
                                     self._mailStoreFactory, os.path.join(record.path.path, "mail"), quota=quota)

        def opened(mailStore):
            handOver = getattr(mailStore, "handOver", None)
            if handOver is not None:
                handOver()
            try:
                return Account(self.directory, address, self._mailStoreFactory, opened=(mailStore, quota))
            except BaseException:
                _closeStore(mailStore)  # the account went meanwhile
                raise
        return d.addCallback(opened)

    def _opened(self, result, address):
        """
        The opening of C{address}'s store ended with C{result} (an
        L{Account} or a L{Failure}): every login that waits for it gets
        the account (the one built meanwhile by L{accountFor}, if any) or
        the failure.
        """
        waiting = self._opening.pop(address)
        if isinstance(result, Account):
            held = self._held(address)
            if held is not None:
                # accountFor opened it meanwhile (a delivery): that one is
                # shared.
                _closeStore(result.mailStore)
                result = held
            else:
                result = self._adopt(address, result)
            result = self._keep(address, result)
        for d in waiting:
            if isinstance(result, Account):
                d.callback(result)
            else:
                d.errback(result)

    def _held(self, address):
        """
        The L{Account} of C{address} built before and still good, or
        C{None}.
        """
        account = self._accounts.get(address)
        if account is None or account.folderId is None or getattr(account.mailStore, "closed", False):
            return None
        if not _stillTrusted(self.directory, account.folderChecked):
            readAt = _readAt(self.directory)
            if account.folderId != _folderId(account.path):
                return None
            account.folderChecked = readAt
        return account

    def _adopt(self, address, account):
        """
        Make C{account} the shared one of C{address} (closing the store of
        the one it replaces).
        """
        replaced = self._accounts.get(address)
        if replaced is not None and replaced is not account:
            _closeStore(replaced.mailStore)
        account.access = self.access.forViewer(address)
        weakref.finalize(account, _closeStore, account.mailStore)
        self._accounts[address] = account
        return account

    def _keep(self, address, account):
        """
        Count C{account} as asked for now (see L{releaseIdle}).
        """
        self._recent[address] = account
        self._recent.move_to_end(address)
        self._used.add(address)
        while len(self._recent) > self.keepIdle:
            self._used.discard(self._recent.popitem(last=False)[0])
        return account

    def heldAccounts(self):
        """
        The accounts built and not yet let go (held by a session, a
        delivery or a request, or among the C{keepIdle} recently used).

        @return: C{list} of L{Account}.
        """
        return list(self._accounts.values())

    def releaseIdle(self):
        """
        Stop keeping the accounts nobody asked for since the previous call:
        each is closed once nothing else holds it (a session, a delivery).
        An account whose store is in use (C{mailStore.inUse()}: a session
        has one of its mailboxes selected, perhaps through the access layer,
        holding the store but not the account) stays kept.

        @return: how many accounts were let go.
        """
        idle = [address for address, account in self._recent.items()
                if address not in self._used and not _inUse(account.mailStore)]
        for address in idle:
            del self._recent[address]
        self._used.clear()
        return len(idle)

    def describe(self):
        """
        The accounts held, as text lines (for memory reports): for those
        not kept as recently used, what holds them.
        """
        from gateway.memdebug import referrers

        held = self.heldAccounts()
        lines = ["realm: %d accounts held (%d kept as recently used): %s"
                 % (len(held), len(self._recent), ", ".join(sorted(a.address for a in held)[:10]))]
        for account in held:
            if account.address not in self._recent and len(lines) < 10:
                lines.append("  %s held by: %s" % (account.address, referrers(account, {id(held), id(lines)})))
        return lines

    def requestAvatar(self, avatarId, mind, *interfaces):
        if IAccount not in interfaces:
            raise NotImplementedError("gateway offers IAccount avatars only")
        if not hasattr(self._reactor, "getThreadPool"):
            return IAccount, self.accountFor(avatarId), lambda: None
        # The login is answered once the store is open (in a thread).
        return self.accountForLater(avatarId).addCallback(lambda account: (IAccount, account, lambda: None))
