# -*- test-case-name: tests.test_store_mail -*-
"""
Noticing changes that other processes make to an account's mail: with
C{inotify} (Linux) on the index's files and the watched mailboxes' C{new/}
and C{cur/}, as Dovecot does for IDLE; elsewhere (or when C{inotify} cannot
be used) with a cheap periodic check.  Either way the watcher only says
"look again"; the store compares HIGHESTMODSEQ and folder mtimes to find out
whether anything changed.
"""

import os

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IReactorFDSet
from twisted.internet.task import LoopingCall
from twisted.python import log
from twisted.python.failure import Failure
from twisted.python.filepath import FilePath

from gateway.store.maildir import INDEX_NAME

#: Seconds between checks when polling.
POLL_INTERVAL = 1.0
#: Seconds to wait after an inotify event, so a burst makes one check.
SETTLE = 0.02

try:
    from twisted.internet import inotify as _inotify
except ImportError:  # not Linux
    _inotify = None


class ChangeWatcher:
    """
    Calls C{onChange()} (no arguments, coalesced) when the account's index
    or a watched mailbox folder may have changed.

    @ivar mode: C{'inotify'} or C{'poll'} once started.
    """

    def __init__(self, reactor, root, onChange, useInotify=True, interval=POLL_INTERVAL):
        self._reactor = reactor
        self._root = root
        self._onChange = onChange
        self._useInotify = useInotify
        self._interval = interval
        self._notifier = None
        self._loop = None
        self._pending = None
        self._folders = {}
        self.mode = None

    @property
    def running(self):
        return self.mode is not None

    def start(self):
        if self.running:
            return
        if self._useInotify and _inotify is not None and IReactorFDSet.providedBy(self._reactor):
            try:
                notifier = _inotify.INotify(reactor=self._reactor)
                notifier.startReading()
                notifier.watch(FilePath(self._root),
                               mask=_inotify.IN_MODIFY | _inotify.IN_CREATE | _inotify.IN_MOVED_TO,
                               callbacks=[self._rootEvent])
            except Exception:
                log.err(None, "inotify unavailable; polling for mail changes")
            else:
                self._notifier = notifier
                self.mode = "inotify"
                for folder in list(self._folders):
                    self._watchFolder(folder)
                return
        self._loop = LoopingCall(self._onChange)
        self._loop.clock = self._reactor
        self._loop.start(self._interval, now=False)
        self.mode = "poll"

    def stop(self):
        if self._notifier is not None:
            # At once (loseConnection would finish on a later reactor turn).
            if self._notifier.connected:
                self._notifier.connectionLost(Failure(ConnectionDone()))
            self._notifier = None
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None
        self.mode = None

    def addMailbox(self, path):
        """
        Watch a mailbox folder's C{new/} and C{cur/} too.
        """
        for sub in ("new", "cur"):
            folder = os.path.join(path, sub)
            self._folders[folder] = self._folders.get(folder, 0) + 1
            if self._folders[folder] == 1 and self._notifier is not None:
                self._watchFolder(folder)

    def removeMailbox(self, path):
        for sub in ("new", "cur"):
            folder = os.path.join(path, sub)
            count = self._folders.get(folder, 0) - 1
            if count > 0:
                self._folders[folder] = count
                continue
            self._folders.pop(folder, None)
            if self._notifier is not None:
                try:
                    self._notifier.ignore(FilePath(folder))
                except KeyError:
                    pass

    def _watchFolder(self, folder):
        try:
            self._notifier.watch(
                FilePath(folder),
                mask=(_inotify.IN_CREATE | _inotify.IN_MOVED_TO | _inotify.IN_MOVED_FROM
                      | _inotify.IN_DELETE),
                callbacks=[self._folderEvent])
        except Exception:
            log.err(None, "cannot watch %s" % (folder,))

    def _rootEvent(self, watch, path, mask):
        name = path.basename()
        if isinstance(name, bytes):
            name = name.decode("utf-8", "surrogateescape")
        if name.startswith(INDEX_NAME):
            self._schedule()

    def _folderEvent(self, watch, path, mask):
        self._schedule()

    def _schedule(self):
        if self._pending is None or not self._pending.active():
            self._pending = self._reactor.callLater(SETTLE, self._fire)

    def _fire(self):
        self._pending = None
        self._onChange()
