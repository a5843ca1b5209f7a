# -*- test-case-name: tests.test_store_mail -*-
"""
Noticing changes that other processes make to an account's mail: with
C{inotify} (Linux) on the index's commit signal and the watched mailboxes' C{new/}
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
import struct
import time

from twisted.internet.interfaces import IReactorFDSet
from twisted.internet.main import CONNECTION_DONE, CONNECTION_LOST
from twisted.internet.task import LoopingCall
from twisted.python import log
from twisted.python.filepath import FilePath

from gateway.store.index import COMMIT_SIGNAL_SUFFIX
from gateway.store.maildir import INDEX_NAME

#: Seconds between checks when polling.
POLL_INTERVAL = 1.0
#: Seconds to wait after an inotify event, so a burst makes one check.
SETTLE = 0.02
#: Seconds the shared inotify descriptor is left unread after each read
#: (see L{_Reader}): events arriving meanwhile wait in the kernel's queue and
#: are read together.  Less than L{SETTLE}, so a change is noticed no later.
PACE = 0.01
#: The most octets read from the descriptor in one read, and the most reads
#: in one wake-up (a burst of a few thousand events is read at once).
READ_SIZE = 65536
READS_A_WAKE = 16

try:
    from twisted.internet import inotify as _inotify
except ImportError:  # not Linux
    _inotify = None


if _inotify is not None:
    class _Reader(_inotify.INotify):
        """
        Twisted's L{INotify}, read more cheaply and more safely for a
        descriptor that the whole process shares:

          - each event goes to C{dispatch(wd, name, mask)} with the name as
            the kernel gave it, instead of a L{FilePath} made, checked and
            passed around per event (under imaptest's mix every command
            renames or writes a file in a watched folder: 17,814 events in
            20 s, a FilePath and three calls each);
          - a watched folder that is removed (C{IN_IGNORED} follows its
            C{IN_DELETE_SELF}) ends that watch only, where L{INotify} closes
            the descriptor, and with it every other watch of the process;
          - after each wake-up it reads everything queued, then leaves the
            descriptor unread for L{PACE} seconds.  Most events are the
            process's own: each write renames a file and signals its
            commit, and with workers every process hears every other's.
            Read as they come, each woke the reactor in the middle of the
            write that caused it, to take the interpreter's lock from the
            index writer and hand it back (under imaptest's kept-open mix,
            twice a flag change); the watchers wait L{SETTLE} before they
            look anyway.

        Use L{want} to start and stop reading.
        """

        def __init__(self, reactor, dispatch, pace=PACE):
            _inotify.INotify.__init__(self, reactor=reactor)
            self._dispatchEvent = dispatch
            self._pace = pace
            self._wanted = False
            self._resume = None

        @property
        def wanted(self):
            """
            Is the descriptor read (now, or once the pause after a read ends)?
            """
            return self._wanted

        def want(self, wanted):
            """
            Read the descriptor (paced), or stop reading it.
            """
            self._wanted = wanted
            if wanted:
                if self._resume is None:
                    self.startReading()
                return
            self.stopReading()
            if self._resume is not None:
                self._resume.cancel()
                self._resume = None

        def doRead(self):
            for _ in range(READS_A_WAKE):
                try:
                    data = os.read(self._fd, READ_SIZE)
                except BlockingIOError:
                    break
                except OSError:
                    return CONNECTION_LOST
                if not data:
                    return CONNECTION_DONE
                self._doRead(data)
            if self._pace and self._wanted:
                self.stopReading()
                self._resume = self.reactor.callLater(self._pace, self._resumeReading)
            return None

        def _resumeReading(self):
            self._resume = None
            if self._wanted:
                self.startReading()

        def _doRead(self, in_):
            data = self._buffer + in_ if self._buffer else in_
            offset, end = 0, len(data)
            while end - offset >= _EVENT.size:
                wd, mask, _cookie, size = _EVENT.unpack_from(data, offset)
                start = offset + _EVENT.size
                if end - start < size:
                    break
                name = data[start:start + size].rstrip(b"\0")
                offset = start + size
                if mask & _inotify.IN_IGNORED:
                    # The kernel ended the watch (its folder is gone).
                    watched = self._watchpoints.pop(wd, None)
                    if watched is not None:
                        self._watchpaths.pop(watched.path, None)
                self._dispatchEvent(wd, name, mask)
            self._buffer = data[offset:]


class SharedINotify:
    """
    One inotify descriptor for a reactor, shared by every L{ChangeWatcher}
    of the process: each path is watched once and its events go to every
    callback registered for it, as C{callback(path, name, mask)} (C{name}
    the C{bytes} the kernel gave, empty for an event of the folder itself).
    Get it with L{sharedINotify}.  It is read only while something is
    watched, and never closed (see the module docstring).
    """

    def __init__(self, reactor):
        self._notifier = _Reader(reactor, self._dispatch)
        self._callbacks = {}
        self._paths = {}  # watch descriptor -> path
        self._wds = {}  # path -> its current watch descriptor
        self._overflowCallbacks = []

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
        Call C{callback(path, name, mask)} for events on C{path} (a
        C{str}).  C{mask} must be the same for every callback of a path.
        """
        callbacks = self._callbacks.get(path)
        if callbacks is None or path not in self._wds:
            # New, or its folder was removed and made again since.
            wd = self._notifier.watch(FilePath(path), mask=mask)
            self._paths[wd] = path
            self._wds[path] = wd
            if not self._callbacks:
                self._notifier.want(True)
            if callbacks is None:
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
            wd = self._wds.pop(path, None)
            if wd is not None:
                self._paths.pop(wd, None)
            try:
                self._notifier.ignore(FilePath(path))
            except (KeyError, _inotify.INotifyError):
                pass  # its folder is gone: the kernel ended the watch
            if not self._callbacks:
                self._notifier.want(False)

    def _dispatch(self, wd, name, mask):
        path = self._paths.get(wd)
        if path is None:
            if mask & _inotify.IN_Q_OVERFLOW:
                self._overflow()
            return
        if mask & _inotify.IN_IGNORED:
            del self._paths[wd]
            if self._wds.get(path) == wd:
                del self._wds[path]
        for callback in list(self._callbacks.get(path, ())):
            callback(path, name, mask)


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


#: An inotify event's header: watch descriptor, mask, cookie, name length.
_EVENT = struct.Struct("=iIII")
#: The names in the account's folder whose events mean "look again": the
#: index made anew (a rebuild, a restore) and its commit signal.
_ROOT_NAMES = frozenset((INDEX_NAME, INDEX_NAME + COMMIT_SIGNAL_SUFFIX))
_ROOT_MASK = _FOLDER_MASK = 0
if _inotify is not None:
    # Every commit to the index is followed by a write and close of its
    # commit signal (L{gateway.store.index.signalCommit}): watching closes,
    # not modifications, leaves out the write-ahead log's page writes and
    # the Recent claims' (several events a command under load, each a
    # FilePath and a callback to the reactor before it was dropped).
    _ROOT_MASK = _inotify.IN_CLOSE_WRITE | _inotify.IN_CREATE | _inotify.IN_MOVED_TO
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

    def _rootEvent(self, path, name, mask):
        if name.decode("utf-8", "surrogateescape") in _ROOT_NAMES:
            self._schedule()

    def _folderEvent(self, folder, name, mask):
        if name and folder in self._folders:
            self._events.setdefault(folder, set()).add(name.decode("utf-8", "surrogateescape"))
        self._schedule()

    def _schedule(self):
        if self._pending is None or not self._pending.active():
            self._pending = self._reactor.callLater(SETTLE, self._fire)

    def _fire(self):
        self._pending = None
        self._onChange()
