# -*- test-case-name: tests.test_calendar_publish -*-
"""
The free/busy files the server keeps in an account's file store (seed
C{000}, C{docs/xmapi.md} R-FB-6):

  - C{/freebusy.vfb}, at the top of the personal site: the public
    VFREEBUSY (times only, from every calendar), as
    L{gateway.store.calendar.FreeBusyCache.get} computes it;
  - C{/private/freebusy.eml}: an RFC 5322 message holding the detailed
    VFREEBUSY (each period with its event's summary and location), as
    L{gateway.store.calendar.FreeBusyCache.view} computes it.

Both cover L{FreeBusyFiles.weeks} weeks from midnight today in the
account's time zone.  They are written with
L{gateway.store.files.FileStore.writeFile} (a reader never sees half a
file; they count in the account's quota: a full quota leaves the old file
and is logged), some seconds after the account's calendars last changed
(L{FreeBusyFiles.changed}, debounced), in a thread; or when a periodic
L{FreeBusyFiles.sweep} finds them out of date (a calendar changed or a new
day began).

Ours and theirs: the server records the identity (inode, size,
modification time) of each file it wrote in the account's
C{mail/.gateway-published.json}, beside its other caches.  A file at
either path whose identity is not the recorded one was put there by
someone else (an FTP or HTTP upload by the account, which always makes a
new file): it wins and is never overwritten, until the account deletes
it.  No marker inside the file decides, so a file the account copies from
ours and uploads again is its own as well.  L{FreeBusyFiles.isGenerated}
tells the web site which C{freebusy.vfb} is ours (it keeps generating
that one per request, for the window asked).
"""

import contextlib
import email.generator  # noqa: F401 (message.as_bytes() imports it: at start-up, not mid-traffic)
import email.utils
import fcntl
import json
import os
from datetime import datetime, time, timedelta, timezone
from email.mime.text import MIMEText

from twisted.application.internet import TimerService
from twisted.internet.threads import deferToThread

from gateway.errors import QuotaExceeded
from gateway.logging import getLogger
from gateway.store.calendar.freebusy import _Calendars, calendarMailboxes
from gateway.store.calendar.periods import accountZone

log = getLogger("http")

#: The public file's client path.
PUBLIC = "/freebusy.vfb"
#: The detailed file's client path.
PRIVATE = "/private/freebusy.eml"
#: The record of what the server wrote, in the account's mail folder.
STATE_NAME = ".gateway-published.json"
#: Seconds after the last change of a calendar before the files are written.
DELAY = 10.0
#: Seconds between two sweeps of a server (see L{FreeBusyFiles.sweep}).
SWEEP_INTERVAL = 60.0


def _identity(path):
    """C{[inode, size, mtime_ns]} of a file, or C{None} when it is not one."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return [info.st_ino, info.st_size, info.st_mtime_ns]


def freeBusyMessage(account, document, now):
    """
    The message C{private/freebusy.eml} holds.

    @param document: the detailed VCALENDAR, C{bytes}.
    @return: C{bytes}.
    """
    message = MIMEText(document.decode("utf-8"), "calendar", "utf-8")
    message.set_param("method", "PUBLISH")
    message["From"] = account.address
    message["To"] = account.address
    message["Subject"] = "Free/busy information"
    message["Date"] = email.utils.format_datetime(now)
    message["Message-ID"] = email.utils.make_msgid("freebusy", account.address.rpartition("@")[2] or None)
    message["X-Gateway-Generated"] = "free/busy"
    return message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _statePath(account):
    return os.path.join(account.mailStore.path, STATE_NAME)


def _loadState(account):
    try:
        with open(_statePath(account)) as f:
            state = json.load(f)
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


@contextlib.contextmanager
def _locked(account):
    """
    Hold the account's publishing lock (C{mail/.gateway-published.lock}),
    so that two processes serving one data root do not write the files and
    their record at once (one's record of the other's file would make the
    server's file look like the account's).
    """
    fd = os.open(_statePath(account)[:-len(".json")] + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _saveState(account, state):
    path = _statePath(account)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, path)


def isGenerated(account, path):
    """
    Is the file at a client path of the account's file store the one the
    server wrote (see the module's docstring)?

    @param path: L{PUBLIC} or L{PRIVATE}.
    @return: C{False} also when there is no file.
    """
    identity = _identity(account.fileStore.resolve(path).path)
    return identity is not None and _loadState(account).get(path) == identity


class FreeBusyFiles:
    """
    Keeps the published free/busy files of accounts current.

    @ivar cache: the L{gateway.store.calendar.FreeBusyCache} that computes.
    @ivar clock: C{callLater} provider for the debounce.
    @ivar runInThread: C{f(callable, *args)} returning a C{Deferred}.
    @ivar delay: seconds of quiet before writing (L{DELAY}).
    @ivar weeks: how many weeks the files cover.
    @ivar now: C{now()} returning an aware C{datetime}.
    @ivar published: how many times files were written (for tests).
    """

    def __init__(self, cache, clock=None, runInThread=deferToThread, delay=DELAY, weeks=8, now=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.cache = cache
        self.clock = clock
        self.runInThread = runInThread
        self.delay = delay
        self.weeks = weeks
        self.now = now or (lambda: datetime.now(timezone.utc))
        self.published = 0
        self._pending = {}
        self._running = {}

    # -- ours or theirs --------------------------------------------------------

    def isGenerated(self, account, path):
        """
        See L{isGenerated}.
        """
        return isGenerated(account, path)

    def _theirs(self, account, path, state):
        """Is there a file at C{path} that the server did not write?"""
        identity = _identity(account.fileStore.resolve(path).path)
        return identity is not None and state.get(path) != identity

    # -- writing ---------------------------------------------------------------

    def window(self, account):
        """
        The files' window: from midnight today in the account's zone,
        L{weeks} weeks long, in UTC.
        """
        zone = accountZone(account.record)
        today = self.now().astimezone(zone).date()
        start = datetime.combine(today, time(0), tzinfo=zone).astimezone(timezone.utc)
        return start, start + timedelta(weeks=self.weeks)

    def publish(self, account):
        """
        Write both files now (synchronously; a server calls it in a thread
        through L{changed}), leaving alone each one the account put there
        itself.

        @return: C{list} of the client paths written.
        """
        with _locked(account):
            return self._publish(account)

    def _publish(self, account):
        now = self.now()
        start, end = self.window(account)
        state = _loadState(account)
        wanted = [path for path in (PUBLIC, PRIVATE) if not self._theirs(account, path, state)]
        written = []
        for path in wanted:
            if path == PUBLIC:
                data = self.cache.get(account, start, end, now=now)
            else:
                calendars = {name: True for name in calendarMailboxes(account.mailStore)}
                data = freeBusyMessage(account, self.cache.view(account, calendars, start, end, now=now), now)
            # Checked again just before writing: an upload may have come meanwhile.
            if self._theirs(account, path, state):
                continue
            try:
                account.fileStore.writeFile(path, data)
            except QuotaExceeded:
                log.warn("Free/busy file {path} of {address} not updated: over quota", path=path,
                         address=account.address)
                continue
            state[path] = _identity(account.fileStore.resolve(path).path)
            written.append(path)
        state["signature"] = self._signature(account, start)
        _saveState(account, state)
        if written:
            self.published += 1
        return written

    def _signature(self, account, start):
        """
        What the files depend on, as JSON: the calendars' state (names,
        UIDVALIDITY, HIGHESTMODSEQ), the account's zone and addresses, and
        the window's start (a new day moves it).
        """
        mailboxes, zone, owner = _Calendars(account).signature
        return [[list(mailbox) for mailbox in mailboxes], zone, sorted(owner), start.isoformat(), self.weeks]

    def due(self, account):
        """
        Are the account's files out of date: did a calendar change, or the
        day begin, since they were last written?
        """
        return _loadState(account).get("signature") != self._signature(account, self.window(account)[0])

    def sweep(self, accounts):
        """
        Write the files of each account that is L{due} (synchronously: call
        it in a thread, say every minute from a C{TimerService}, over the
        accounts the server holds): this catches changes the server made
        and the change of day, without watching any mailbox.

        @param accounts: iterable of L{gateway.interfaces.IAccount}; those
            without the C{http} service (no personal web site) are left out.
        @return: C{list} of the addresses whose files were looked at again.
        """
        done = []
        for account in accounts:
            if "http" not in (getattr(account.record, "services", None) or ()):
                continue  # no personal web site
            try:
                if self.due(account):
                    self.publish(account)
                    done.append(account.address)
            except Exception:
                log.failure("Writing the free/busy files of {address} failed", address=account.address)
        return done

    # -- when calendars change -------------------------------------------------

    def changed(self, account):
        """
        An account's calendars changed: write its files L{delay} seconds
        after the last such call, in a thread (one at a time per account; a
        change while writing writes again afterwards).
        """
        address = account.address
        pending = self._pending.get(address)
        if pending is not None and pending.active():
            pending.reset(self.delay)
            return
        self._pending[address] = self.clock.callLater(self.delay, self._write, account)

    def _write(self, account):
        address = account.address
        self._pending.pop(address, None)
        if address in self._running:
            self._running[address] = True  # again when this one is done
            return
        self._running[address] = False
        d = self.runInThread(self.publish, account)

        def failed(failure):
            log.failure("Writing the free/busy files of {address} failed", failure, address=address)

        def done(_):
            again = self._running.pop(address, False)
            if again:
                self.changed(account)

        d.addErrback(failed)
        d.addBoth(done)
        return d

    def watch(self, account):
        """
        Call L{changed} whenever one of the account's calendar mailboxes
        (as they are now) changes, in this process or another.

        @return: a callable that stops watching.
        """
        store = account.mailStore
        removers = [store.getMailbox(name).addListener(lambda: self.changed(account))
                    for name in calendarMailboxes(store)]

        def stop():
            for remove in removers:
                remove()
            pending = self._pending.pop(account.address, None)
            if pending is not None and pending.active():
                pending.cancel()

        return stop


def sweepService(files, accounts, runInThread=deferToThread, interval=SWEEP_INTERVAL):
    """
    A service that calls L{FreeBusyFiles.sweep} every C{interval} seconds in
    a thread, a sweep starting only when the last one is done; a failing
    sweep is logged and the next one comes as usual.  While C{accounts()}
    is empty no thread is asked.

    @param files: a L{FreeBusyFiles}.
    @param accounts: C{accounts()} returning the accounts to sweep (say
        those the realm holds), called on the reactor thread.
    @return: a C{twisted.application.internet.TimerService}; its C{clock}
        may be replaced before it starts (tests).
    """

    def sweep():
        held = list(accounts())
        if not held:
            # Nothing to sweep: no thread.  An idle server's realm holds no
            # account, and a pool thread started every minute for nothing
            # (the last ones having been let go at the idle release) put its
            # objects in the holes the sessions left in pymalloc's arenas,
            # keeping them.
            return None
        d = runInThread(files.sweep, held)
        d.addErrback(lambda failure: log.failure("Sweeping the free/busy files failed", failure))
        return d

    timer = TimerService(interval, sweep)
    timer.setName("free/busy files")
    return timer
