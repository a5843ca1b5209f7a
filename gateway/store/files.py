# -*- test-case-name: tests.test_store_files -*-
"""
An account's file storage: the root FTP sees and the personal web site
serves.  Every client path goes through L{FileStore.resolve}, the one path
resolver; nothing else in gateway turns a client's path into a file name.

The methods here do blocking file-system work: front-ends call them in a
thread (C{deferToThread}) or on small files only.
"""

import errno
import fcntl
import os
import re
import stat
import tempfile
import threading
import time

from twisted.python.filepath import FilePath
from zope.interface import implementer

from gateway.errors import InvalidPath, QuotaExceeded
from gateway.interfaces import IFileStore
from gateway.logging import getLogger
from gateway.store import maildir

log = getLogger("store")

#: Prefix of the temporary files L{FileStore.writeFile} renames into place;
#: listings hide them.
TEMP_PREFIX = ".~gateway-"

#: Characters no name may hold: NUL, the other C0 controls (CR and LF would
#: break a protocol's reply lines, ESC a terminal's listing) and DEL.
_CONTROL = re.compile("[\x00-\x1f\x7f]")

CHUNK = 64 * 1024
#: Seconds after which a temporary file no writer holds is a leftover of a
#: crash (kill -9 during an upload), removed by the next walk of the tree.
LEFTOVER_AGE = 60.0
#: Seconds a computed usage is trusted before the tree is walked again (other
#: processes may have written files).
USAGE_TTL = 60.0


def normalizeClientPath(path, cwd="/"):
    """
    Join a client path to a current folder and normalize it, as a list of
    name segments below the root.

    @param path: C{str} as the client sent it; absolute (C{/a/b}) or relative.
    @param cwd: the client's current folder, absolute.
    @raise InvalidPath: for a control character (NUL, CR, LF...),
        backslash, or C{..} that leaves the root.
    """
    if not isinstance(path, str):
        raise InvalidPath("path must be text")
    if "\\" in path or _CONTROL.search(path):
        raise InvalidPath("invalid character in path")
    if not path.startswith("/"):
        path = cwd.rstrip("/") + "/" + path
    segments = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not segments:
                raise InvalidPath("path leaves the root")
            segments.pop()
            continue
        segments.append(segment)
    return segments


@implementer(IFileStore)
class FileStore:
    """
    @ivar root: C{FilePath} of the storage root (created if missing).
    @ivar quota: the account's L{gateway.interfaces.IQuota}, or C{None}.
    """

    def __init__(self, root, quota=None):
        self.root = FilePath(os.path.abspath(root))
        self.quota = quota
        os.makedirs(os.path.join(self.root.path, "private"), mode=0o700, exist_ok=True)
        self._realRoot = os.path.realpath(self.root.path)
        self._usage = None
        self._usageTime = 0.0
        self._lock = threading.Lock()

    # -- the one resolver ----------------------------------------------------

    def resolve(self, path, cwd="/"):
        """
        Map a client path to a C{FilePath} inside the root.

        Symbolic links are followed only while they stay inside the root; the
        result's real path is checked against the root's real path.

        @raise InvalidPath: see L{normalizeClientPath}, and for links leaving
            the root.
        """
        segments = normalizeClientPath(path, cwd)
        candidate = os.path.join(self.root.path, *segments) if segments else self.root.path
        if self._throughLink(segments):
            real = os.path.realpath(candidate)
            if real != self._realRoot and not real.startswith(self._realRoot + os.sep):
                raise InvalidPath("path leaves the root")
        return FilePath(candidate)

    def _throughLink(self, segments):
        """
        Whether the path of C{segments} below the root passes through a
        symbolic link.  When it does not (the usual case), it cannot leave
        the root: the segments hold no C{..}.  One C{lstat} per segment,
        where C{realpath} would take one per component from C{/}.
        """
        path = self.root.path
        for segment in segments:
            path = os.path.join(path, segment)
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                return False  # missing (or under a file): nothing further is a link
            if stat.S_ISLNK(mode):
                return True
        return False

    def clientPath(self, filePath):
        """
        The client's absolute path (C{/a/b}) of a C{FilePath} under the root.
        """
        if filePath.path == self.root.path:
            return "/"
        return "/" + "/".join(filePath.segmentsFrom(self.root))

    # -- usage and quota -----------------------------------------------------

    def usage(self):
        """
        Bytes of the files, from a walk of the tree at most every
        L{USAGE_TTL} seconds (the first time the store is used).  The walk
        removes the temporary files of uploads a crash cut off and counts no
        temporary file: an upload in progress counts once it is in place.
        """
        with self._lock:
            if self._usage is not None and time.monotonic() - self._usageTime < USAGE_TTL:
                return self._usage
        total = 0
        now = time.time()
        for dirpath, _dirnames, filenames in maildir.walkTree(self.root.path):
            for name in filenames:
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if name.startswith(TEMP_PREFIX):
                    if now - st.st_mtime > LEFTOVER_AGE:
                        _removeLeftover(path)
                    continue
                total += st.st_size
        with self._lock:
            self._usage = total
            self._usageTime = time.monotonic()
        return total

    def _adjustUsage(self, delta):
        with self._lock:
            if self._usage is not None:
                self._usage = max(0, self._usage + delta)

    def _checkQuota(self, additional):
        if self.quota is not None and additional > 0:
            self.quota.check(additional)

    # -- writing -------------------------------------------------------------

    def writeFile(self, path, source, append=False, offset=None, keepPartial=False):
        """
        Write C{source} to the client path C{path}.

        Without C{append}/C{offset} the data goes to a temporary file that is
        renamed over the target only when complete: a reader never sees half a
        file, and a failed upload leaves the old file.  With C{append} or
        C{offset} (FTP APPE, REST+STOR) the file is extended in place.

        @param keepPartial: when reading C{source} raises (the client went
            away, or aborted) after some bytes arrived, rename what arrived
            over the target anyway (so the client can resume), then raise
            that error.  Quota and write errors keep nothing.  In-place
            writes always keep what arrived.

        @raise QuotaExceeded: before anything is written when the size is
            known, or as soon as streamed data passes the limit (then the
            partial data is removed).
        """
        target = self.resolve(path)
        if target.path == self.root.path or target.isdir():
            raise InvalidPath("is a folder")
        parent = target.parent()
        if not parent.isdir():
            raise InvalidPath("no such folder")
        chunks = _chunks(source)
        if isinstance(source, bytes):
            oldSize = target.getsize() if target.exists() else 0
            if append:
                growth = len(source)
            elif offset is not None:
                growth = max(0, offset + len(source) - oldSize)
            else:
                growth = len(source) - oldSize
            self._checkQuota(growth)
        if append or offset is not None:
            return self._writeInPlace(target, chunks, append, offset)
        return self._writeReplace(target, chunks, keepPartial)

    def _writeReplace(self, target, chunks, keepPartial):
        oldSize = target.getsize() if target.exists() else 0
        fd, tmp = tempfile.mkstemp(dir=target.parent().path, prefix=TEMP_PREFIX)
        # Held until closed (or the process dies): a walk in any process
        # leaves the file alone, however long the client pauses.
        fcntl.flock(fd, fcntl.LOCK_EX)
        written = 0
        broken = None
        try:
            with os.fdopen(fd, "wb") as f:
                while True:
                    try:
                        chunk = next(chunks, b"")
                    except Exception as e:
                        # The source broke off: keep what arrived, if asked.
                        if not (keepPartial and written):
                            raise
                        broken = e
                        break
                    if not chunk:
                        break
                    self._checkQuota(written + len(chunk) - oldSize)
                    self._writeChunk(f, chunk)
                    written += len(chunk)
                # Durable before it takes the name, and the name after
                # (FTP's 226 waits for this method).
                f.flush()
                _fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.rename(tmp, target.path)
            _fsyncFolder(target.parent().path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self._adjustUsage(written - oldSize)
        if broken is not None:
            raise broken
        return written

    def _writeInPlace(self, target, chunks, append, offset):
        oldSize = target.getsize() if target.exists() else 0
        start = oldSize if append else offset
        if start > oldSize:
            raise InvalidPath("offset beyond the end of the file")
        existed = target.exists()
        written = 0
        try:
            # Unbuffered: nothing is left in a buffer to be written after an
            # undo, and chunks are large.
            with open(target.path, "r+b" if existed else "wb", buffering=0) as f:
                f.seek(start)
                for chunk in chunks:
                    growth = start + written + len(chunk) - oldSize
                    try:
                        self._checkQuota(growth)
                        self._writeChunk(f, chunk)
                    except (QuotaExceeded, OSError):
                        # Over the quota, or the disk is full: remove what
                        # this upload added (back to the old length, or no
                        # file at all when there was none).  Bytes of the
                        # old file an offset write already overwrote (REST
                        # below its end) stay overwritten, as in vsftpd.
                        _undo(f, target.path, oldSize, existed)
                        raise
                    written += len(chunk)
                if not append and offset is not None:
                    # REST + STOR replaces the rest of the file.
                    f.truncate(start + written)
                _fsync(f.fileno())
            if not existed:
                _fsyncFolder(target.parent().path)
        finally:
            # Also when the upload broke off: what arrived stays (for a
            # resume) and counts.  Not target.getsize(): FilePath caches
            # the stat from before the write.
            try:
                newSize = os.path.getsize(target.path)
            except FileNotFoundError:
                newSize = 0
            self._adjustUsage(newSize - oldSize)
        return written

    def _writeChunk(self, f, chunk):
        """
        Write C{chunk} to the open file C{f}: the seam every write of file
        content goes through (tests make the disk full here).
        """
        view = memoryview(chunk)
        while view:
            view = view[f.write(view):]

    def remove(self, path):
        target = self.resolve(path)
        if target.path == self.root.path:
            raise InvalidPath("cannot remove the root")
        if target.isdir():
            target.remove()
            with self._lock:
                self._usage = None
            return
        size = target.getsize()
        target.remove()
        self._adjustUsage(-size)


def _fsync(fd):
    """
    Make the data of the open file C{fd} durable (a seam for tests).
    """
    os.fsync(fd)


def _fsyncFolder(path):
    """
    Make the entries of folder C{path} durable.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _fsync(fd)
    finally:
        os.close(fd)


def _undo(f, path, oldSize, existed):
    """
    Cut the file C{f} (at C{path}) back to C{oldSize} bytes, or remove it
    when it did not exist; a failure here (the disk is gone) leaves it.
    """
    try:
        f.truncate(oldSize)
        if not existed:
            os.unlink(path)
    except OSError:
        pass


def _removeLeftover(path):
    """
    Remove the temporary file C{path} unless a writer holds it (its lock).

    @return: whether it was removed.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False  # an upload in progress
            raise
        # Still the file we locked (not renamed into place meanwhile)?
        if os.fstat(fd).st_ino != os.lstat(path).st_ino:
            return False
        os.unlink(path)
    except OSError:
        return False
    finally:
        os.close(fd)
    log.info("Removed {path}, an upload a crash cut off", path=path)
    return True


def _chunks(source):
    if isinstance(source, bytes):
        for i in range(0, len(source), CHUNK):
            yield source[i : i + CHUNK]
        return
    while True:
        chunk = source.read(CHUNK)
        if not chunk:
            return
        yield chunk
