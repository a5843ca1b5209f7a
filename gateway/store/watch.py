# -*- test-case-name: tests.test_store_mail -*-
"""
Noticing changes that other processes make to an account's mail: with
C{inotify} (Linux) on the index's files and the watched mailboxes' C{new/}
and C{cur/}, as Dovecot does for IDLE; elsewhere (or when C{inotify} cannot
be used) with a cheap periodic check.  Either way the watcher only says
"look again"; the store compares HIGHESTMODSEQ and folder mtimes to find out
whether anything changed.

With inotify the watcher also keeps the names of the files that changed in
each watched folder (L{ChangeWatcher.takeEvents}), so that the store can
look at those names only instead of listing the folders again, and skip
the names it changed itself.

All watchers of a process share one inotify descriptor (L{SharedINotify}):
closing an inotify descriptor waits for the kernel's RCU grace period (8 to
30 ms measured here, blocking the reactor), and a user may open only
C{fs.inotify.max_user_instances} (128 by default) of them, while watches
are cheap to add and remove and plentiful.
"""

import os
import time

from twisted.internet.interfaces import IReactorFDSet
from twisted.internet.task import LoopingCall
from twisted.python import log
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


class SharedINotify:
    """
    One inotify descriptor for a reactor, shared by every L{ChangeWatcher}
    of the process: each path is watched once and its events go to every
    callback registered for it.  Get it with L{sharedINotify}.  It is read
    only while something is watched, and never closed (see the module
    docstring).
    """

    def __init__(self, reactor):
        self._notifier = _inotify.INotify(reactor=reactor)
        self._callbacks = {}
        self._overflowCallbacks = []
        # The kernel reports a full event queue with watch descriptor -1,
        # which INotify drops as unknown: give it a watch point of its own.
        self._notifier._watchpoints[_OVERFLOW_WD] = _inotify._Watch(
            FilePath("/"), callbacks=[lambda watch, where, events: self._overflow()])

    def onOverflow(self, callback):
        """
        Call C{callback()} when events were lost (the kernel's queue was
        full); L{noOverflow} undoes it.
        """
        self._overflowCallbacks.append(callback)

    def noOverflow(self, callback):
        if callback in self._overflowCallbacks:
            self._overflowCallbacks.remove(callback)

    def _overflow(self):
        for callback in list(self._overflowCallbacks):
            callback()

    def watch(self, path, mask, callback):
        """
        Call C{callback(path, mask)} for events on C{path} (a C{str}).
        C{mask} must be the same for every callback of a path.
        """
        callbacks = self._callbacks.get(path)
        if callbacks is None:
            self._notifier.watch(FilePath(path), mask=mask,
                                 callbacks=[lambda watch, where, events: self._dispatch(path, where, events)])
            if not self._callbacks:
                self._notifier.startReading()
            callbacks = self._callbacks[path] = []
        callbacks.append(callback)

    def unwatch(self, path, callback):
        """
        Undo one L{watch} of C{path} with C{callback}.
        """
        callbacks = self._callbacks.get(path, [])
        if callback in callbacks:
            callbacks.remove(callback)
        if not callbacks and self._callbacks.pop(path, None) is not None:
            try:
                self._notifier.ignore(FilePath(path))
            except KeyError:
                pass
            if not self._callbacks:
                self._notifier.stopReading()

    def _dispatch(self, path, where, events):
        for callback in list(self._callbacks.get(path, ())):
            callback(where, events)


_SHARED = {}


def sharedINotify(reactor):
    """
    The L{SharedINotify} of C{reactor}, made on first use.

    @raise Exception: whatever inotify raises when it cannot be used.
    """
    shared = _SHARED.get(reactor)
    if shared is None:
        shared = _SHARED[reactor] = SharedINotify(reactor)
    return shared


_OVERFLOW_WD = 0xFFFFFFFF
_ROOT_MASK = _FOLDER_MASK = 0
if _inotify is not None:
    _ROOT_MASK = _inotify.IN_MODIFY | _inotify.IN_CREATE | _inotify.IN_MOVED_TO
    _FOLDER_MASK = _inotify.IN_CREATE | _inotify.IN_MOVED_TO | _inotify.IN_MOVED_FROM | _inotify.IN_DELETE


class ChangeWatcher:
    """
    Calls C{onChange()} (no arguments, coalesced) when the account's index
    or a watched mailbox folder may have changed.

    @ivar mode: C{'inotify'} or C{'poll'} once started.
    @ivar overflowed: C{True} once inotify lost events; the names given by
        L{takeEvents} are then incomplete (reset by L{takeEvents}).
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
        self._since = {}
        self._events = {}
        self.overflowed = False
        self.mode = None

    @property
    def running(self):
        return self.mode is not None

    def start(self):
        if self.running:
            return
        if self._useInotify and _inotify is not None and IReactorFDSet.providedBy(self._reactor):
            try:
                notifier = sharedINotify(self._reactor)
                notifier.watch(self._root, _ROOT_MASK, self._rootEvent)
            except Exception:
                log.err(None, "inotify unavailable; polling for mail changes")
            else:
                self._notifier = notifier
                notifier.onOverflow(self._overflowed)
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
            self._notifier.unwatch(self._root, self._rootEvent)
            for folder in self._folders:
                self._notifier.unwatch(folder, self._folderEvent)
            self._notifier.noOverflow(self._overflowed)
            self._notifier = None
            self._since.clear()
            self._events.clear()
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
            self._since.pop(folder, None)
            self._events.pop(folder, None)
            if self._notifier is not None:
                self._notifier.unwatch(folder, self._folderEvent)

    def _watchFolder(self, folder):
        try:
            self._notifier.watch(folder, _FOLDER_MASK, self._folderEvent)
        except Exception:
            log.err(None, "cannot watch %s" % (folder,))
        else:
            self._since[folder] = time.time_ns()

    def watchedSince(self, path):
        """
        @return: since when (C{time.time_ns()}) inotify has been reporting
            every change in the C{new/} and C{cur/} of the mailbox folder
            C{path}, or C{None} if it is not.
        """
        since = [self._since.get(os.path.join(path, sub)) for sub in ("new", "cur")]
        if None in since or self._notifier is None:
            return None
        return max(since)

    def takeEvents(self):
        """
        @return: C{({folder: set of file names}, overflowed)}: what inotify
            reported since the last call.
        """
        events, self._events = self._events, {}
        overflowed, self.overflowed = self.overflowed, False
        return events, overflowed

    def _overflowed(self):
        self.overflowed = True
        self._schedule()

    def _rootEvent(self, path, mask):
        name = path.basename()
        if isinstance(name, bytes):
            name = name.decode("utf-8", "surrogateescape")
        if name.startswith(INDEX_NAME):
            self._schedule()

    def _folderEvent(self, path, mask):
        folder, name = path.dirname(), path.basename()
        if isinstance(name, bytes):
            folder = folder.decode("utf-8", "surrogateescape")
            name = name.decode("utf-8", "surrogateescape")
        if folder in self._folders:
            self._events.setdefault(folder, set()).add(name)
        self._schedule()

    def _schedule(self):
        if self._pending is None or not self._pending.active():
            self._pending = self._reactor.callLater(SETTLE, self._fire)

    def _fire(self):
        self._pending = None
        self._onChange()
