# -*- test-case-name: tests.test_store_mail -*-
"""
Maildir on disk: mailbox names and folders, file names and the flags they
carry, atomic delivery, and the CRLF view of a message.

Nothing here knows about the index (L{gateway.store.index}); these are the
small file-system pieces it and L{gateway.store.mail} are built from.

File names follow the Maildir convention with Dovecot's extensions::

    <seconds>.M<usec>P<pid>Q<n>R<random>.<host>,S=<raw size>,W=<CRLF size>:2,<letters>

The part before C{':'} (the I{base}) names a message for its whole life;
the C{':2,'} info carries the standard flag letters C{DFPRST}, sorted.
"""

import concurrent.futures
import functools
import hashlib
import itertools
import os
import re
import socket
import stat
import threading
import time

from gateway import affinity
from gateway.errors import InvalidMailboxName, MailboxNameLimit

#: Standard Maildir flag letters and the IMAP flags they stand for.
LETTER_FLAGS = {
    "D": "\\Draft",
    "F": "\\Flagged",
    "P": "$Forwarded",
    "R": "\\Answered",
    "S": "\\Seen",
    "T": "\\Deleted",
}
FLAG_LETTERS = {flag.lower(): letter for letter, flag in LETTER_FLAGS.items()}

#: Every mailbox folder holds these.
SUBDIRS = ("cur", "new", "tmp")

#: Names in the account's mail folder that are never mailboxes.
INDEX_NAME = ".gateway-index.sqlite"
#: In each mailbox folder: the keywords that file-name letters C{a}-C{z}
#: stand for (Dovecot's file and format).
KEYWORDS_FILE = "dovecot-keywords"

CHUNK = 64 * 1024
#: Headers longer than this are cut in the index (L{IMessageInfo.headers}).
MAX_HEADER = 256 * 1024
#: A file in C{tmp/} named for a process on another host is a left-over
#: once its ctime is this old, in seconds (the Maildir convention).
TMP_MAX_AGE = 36 * 3600
#: A file in C{tmp/} that names no process of ours (another program's) is
#: a left-over once its ctime is this old: every write, link or rename of
#: it moves its ctime, so nobody is writing it any more.
TMP_GRACE = 60

_counter = itertools.count()
_host = (socket.gethostname() or "localhost").replace("/", "\\057").replace(":", "\\072")


# ---------------------------------------------------------------------------
# Mailbox names

#: Most levels in a mailbox name (Dovecot allowed 16 up to 2.2.25); the
#: folder walk that finds mailboxes on disk goes no deeper.
MAX_LEVELS = 32

#: Longest mailbox name in octets (Dovecot's MAILBOX_LIST_NAME_MAX_LENGTH);
#: less where the account's folder is deep, see L{checkNameLimits}.
MAX_NAME_LENGTH = 4096

#: What a message file adds to its mailbox folder's path: C{/cur/} and a
#: file name of up to NAME_MAX.
_FILE_ROOM = len("/cur/") + 255


def canonicalName(name):
    """
    Check a mailbox name and return its canonical form (C{INBOX} in upper
    case, also as the first part of a hierarchy name).

    @param name: C{str}, hierarchy separator C{'/'}.
    @raise InvalidMailboxName: for empty parts, parts named C{cur}, C{new} or
        C{tmp} or starting with C{'.'}, NUL, or parts over 255 bytes.
    """
    if not isinstance(name, str) or not name:
        raise InvalidMailboxName("mailbox name must be a non-empty string")
    if "\x00" in name:
        raise InvalidMailboxName("NUL in mailbox name")
    parts = name.split("/")
    for part in parts:
        if not part:
            raise InvalidMailboxName("empty part in mailbox name %r" % (name,))
        if part in SUBDIRS or part.startswith("."):
            raise InvalidMailboxName("%r is not allowed in a mailbox name" % (part,))
        try:
            encoded = part.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidMailboxName("mailbox name is not valid Unicode")
        if len(encoded) > 255:
            raise MailboxNameLimit("mailbox name part longer than 255 bytes")
    if parts[0].upper() == "INBOX":
        parts[0] = "INBOX"
    return "/".join(parts)


def checkNameLimits(root, name):
    """
    Check that a new mailbox C{name} (canonical) below the mail folder
    C{root} is at most L{MAX_LEVELS} deep, and short enough for the path of
    each of its message files to fit in PATH_MAX.

    @raise MailboxNameLimit: when it is not.
    """
    if name.count("/") >= MAX_LEVELS:
        raise MailboxNameLimit("mailbox name deeper than %d levels" % (MAX_LEVELS,))
    try:
        pathMax = os.pathconf(root, "PC_PATH_MAX")
    except (OSError, ValueError):
        pathMax = 4096
    limit = min(MAX_NAME_LENGTH, pathMax - len(os.fsencode(root)) - 1 - _FILE_ROOM)
    if len(os.fsencode(name)) > limit:
        raise MailboxNameLimit("mailbox name longer than %d octets" % (max(limit, 0),))


def walkTree(root, maxDepth=None):
    """
    Walk the folders under C{root} top-down without recursion (Python 3.11's
    C{os.walk} recurses once a level, so a tree a client made a thousand
    levels deep raised RecursionError), not following symbolic links.

    @param maxDepth: folders deeper than this many levels below C{root}
        are not entered (C{None}: no limit).
    @return: an iterator of C{(folder path, folder names, file names)};
        the caller may remove names from the folder list to prune.
    """
    pending = [(root, 0)]
    while pending:
        folder, depth = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        folders, files = [], []
        for entry in entries:
            try:
                (folders if entry.is_dir(follow_symlinks=False) else files).append(entry.name)
            except OSError:
                continue
        yield folder, folders, files
        if maxDepth is not None and depth >= maxDepth:
            continue
        for name in reversed(folders):
            pending.append((os.path.join(folder, name), depth + 1))


def removeTree(path):
    """
    Remove the folder C{path} and all it holds, however deep (one frame,
    where C{shutil.rmtree} recurses once a level); errors are ignored, as
    with C{ignore_errors}.
    """
    folders, pending = [], [path]
    while pending:
        folder = pending.pop()
        folders.append(folder)
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass
    for folder in reversed(folders):
        try:
            os.rmdir(folder)
        except OSError:
            pass


def parentNames(name):
    """
    @return: the names of C{name}'s ancestors, outermost first.
    """
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def mailboxPath(root, name):
    """
    @return: the folder of mailbox C{name} (canonical) below C{root}.
    """
    return os.path.join(root, *name.split("/"))


def ensureMaildir(path):
    """
    Create C{path} with C{cur/}, C{new/} and C{tmp/} (and any parents).
    """
    for sub in SUBDIRS:
        os.makedirs(os.path.join(path, sub), exist_ok=True)


def completeMaildir(path):
    """
    Create the sub-folders (C{cur/}, C{new/}, C{tmp/}) that the Maildir at
    C{path} lacks, never C{path} itself: a folder another process just
    moved away (a DELETE) is not made again.

    @return: C{False} when C{path} is gone.
    """
    for sub in SUBDIRS:
        try:
            os.mkdir(os.path.join(path, sub))
        except FileExistsError:
            pass
        except FileNotFoundError:
            return False
    return True


def isMaildir(path):
    return os.path.isdir(os.path.join(path, "cur"))


# ---------------------------------------------------------------------------
# File names and flags


def splitName(filename):
    """
    @return: C{(base, info)}; C{info} is the text after C{':'} (C{''} if none).
    """
    base, sep, info = filename.partition(":")
    return base, info


def systemFlagsFromInfo(info):
    """
    @return: C{frozenset} of the IMAP flags the C{':2,'} letters of C{info}
        stand for (unknown letters are ignored).
    """
    if not info.startswith("2,"):
        return frozenset()
    return frozenset(LETTER_FLAGS[c] for c in info[2:] if c in LETTER_FLAGS)


def extraLetters(info):
    """
    @return: the letters of C{info} that are not standard flags (for example
        Dovecot's keyword letters C{a}-C{z}), which a rename keeps.
    """
    if not info.startswith("2,"):
        return ""
    return "".join(c for c in info[2:] if c not in LETTER_FLAGS)


def isSystemFlag(flag):
    return flag.lower() in FLAG_LETTERS


def fileName(base, flags, extra=""):
    """
    The C{cur/} file name for a message with these flags.
    """
    letters = sorted({FLAG_LETTERS[f.lower()] for f in flags if f.lower() in FLAG_LETTERS} | set(extra))
    return base + ":2," + "".join(letters)


def newBase(rawSize, size):
    """
    A new unique base name (unique across hosts, processes and time).
    """
    now = time.time()
    seconds = int(now)
    micros = int((now - seconds) * 1e6)
    return "%d.M%dP%dQ%dR%s.%s,S=%d,W=%d" % (
        seconds, micros, os.getpid(), next(_counter), os.urandom(8).hex(), _host, rawSize, size,
    )


# ---------------------------------------------------------------------------
# CRLF


class CRLFConverter:
    """
    Turn bare LF into CRLF, chunk by chunk, remembering whether the last
    chunk ended in CR (so C{"\\r" + "\\n..."} across a boundary stays one CRLF).
    """

    def __init__(self):
        self._lastCR = False

    def convert(self, chunk):
        if not chunk:
            return chunk
        head = b""
        if self._lastCR and chunk[:1] == b"\n":
            head, chunk = b"\n", chunk[1:]
        self._lastCR = chunk[-1:] == b"\r"
        if b"\n" not in chunk:
            return head + chunk
        if b"\r" not in chunk:
            return head + chunk.replace(b"\n", b"\r\n")
        return head + chunk.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class CRLFReader:
    """
    A read-only binary file object giving the CRLF view of a file, in
    constant memory.
    """

    def __init__(self, raw):
        self._raw = raw
        self._converter = CRLFConverter()
        self._buffer = bytearray()
        self._eof = False
        self._position = 0

    def readable(self):
        return True

    def seekable(self):
        return False

    def tell(self):
        return self._position

    def _fill(self, wanted):
        while not self._eof and (wanted < 0 or len(self._buffer) < wanted):
            chunk = self._raw.read(CHUNK)
            if not chunk:
                self._eof = True
                break
            self._buffer += self._converter.convert(chunk)

    def read(self, n=-1):
        if n is None:
            n = -1
        self._fill(n)
        if n < 0 or n >= len(self._buffer):
            data = bytes(self._buffer)
            self._buffer.clear()
        else:
            data = bytes(self._buffer[:n])
            del self._buffer[:n]
        self._position += len(data)
        return data

    def readline(self, limit=-1):
        while b"\n" not in self._buffer and not self._eof:
            self._fill(len(self._buffer) + CHUNK)
        end = self._buffer.find(b"\n")
        end = len(self._buffer) if end < 0 else end + 1
        if limit is not None and limit >= 0:
            end = min(end, limit)
        return self.read(end)

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def close(self):
        self._raw.close()

    @property
    def closed(self):
        return self._raw.closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Measure:
    """
    Sizes and header block of a message, gathered while its bytes stream
    past once (on delivery, or when indexing a file found on disk).

    @ivar rawSize: bytes as stored.
    @ivar size: bytes with CRLF line ends.
    @ivar needsCRLF: does the file contain a bare LF?
    @ivar headers: the CRLF header block including the empty line that ends
        it (the whole message if it has no empty line), at most L{MAX_HEADER}.
    @ivar digest: the SHA-256 of the CRLF form, for its EMAILID (see
        L{gateway.store.objectid}).
    """

    def __init__(self):
        self.rawSize = 0
        self.size = 0
        self.digest = hashlib.sha256()
        self._converter = CRLFConverter()
        self._head = bytearray()
        self._headDone = False

    def feed(self, chunk):
        self.rawSize += len(chunk)
        converted = self._converter.convert(chunk)
        self.size += len(converted)
        self.digest.update(converted)
        if not self._headDone:
            start = max(0, len(self._head) - 3)
            self._head += converted
            end = self._head.find(b"\r\n\r\n", start)
            if self._head.startswith(b"\r\n"):
                end = -2
            if end != -1:
                del self._head[end + 4:]
                self._headDone = True
            elif len(self._head) > MAX_HEADER:
                del self._head[MAX_HEADER:]
                self._headDone = True

    @property
    def needsCRLF(self):
        return self.size != self.rawSize

    @property
    def headers(self):
        return bytes(self._head)


def measureFile(path):
    """
    @return: a L{Measure} of the file at C{path}.
    """
    measure = Measure()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            measure.feed(chunk)
    return measure


# ---------------------------------------------------------------------------
# Delivery


def fsyncDirectory(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: The threads that fsync a write group's other folders or files while the
#: writer does the first (L{runTogether}); made on first use.
_syncers = None
_syncersLock = threading.Lock()


def fsyncDirectories(paths):
    """
    C{fsync} every folder of C{paths}, at the same time: a journalling file
    system (ext4, XFS) makes every change waiting in its journal durable in
    one commit, and without a journal concurrent syncs share the device's
    cache flushes, so folders synced together cost about one folder's sync,
    where one after the other each waits on its own (2 or 3 folders: 0.5 to
    1.1 ms one after the other, 0.2 ms together, on this project's test
    machines, whose ext4 has no journal).
    Returns once every one is done; raises the first one's error.
    """
    runTogether([functools.partial(fsyncDirectory, path) for path in sorted(paths)])


def runTogether(calls):
    """
    Call every one of C{calls} (no-argument callables that wait for the
    disk: fsyncs), the first in this thread and the others in threads of
    their own at the same time (L{fsyncDirectories} says why).  Returns
    once every one is done; raises the first one's error.
    """
    global _syncers
    if len(calls) < 2:
        for call in calls:
            call()
        return
    with _syncersLock:
        if _syncers is None:
            _syncers = concurrent.futures.ThreadPoolExecutor(3, thread_name_prefix="fsync",
                                                             initializer=affinity.yieldToReactor)
    others = [_syncers.submit(call) for call in calls[1:]]
    error = None
    try:
        calls[0]()
    except OSError as e:
        error = e
    for done in others:
        try:
            done.result()
        except OSError as e:
            error = error or e
    if error is not None:
        raise error


def temporaryName():
    """
    A new name for a file of this process in a C{tmp/} folder: held while
    the process lives (L{temporaryHeld}).
    """
    return "%d.P%dQ%dR%s.%s" % (time.time(), os.getpid(), next(_counter), os.urandom(8).hex(), _host)


#: In the name of a C{tmp/} file that holds an expunged message's file
#: until it is unlinked (L{setAside}); the message's base follows.
ASIDE_MARK = ",expunged="


def setAside(path, filename):
    """
    Move the file of a message being expunged, C{filename} in folder
    C{path}'s sub-folder, into C{path}'s C{tmp/} under a name of this
    process that says which message it was (L{asideBase}): a rename, in
    place of an unlink that costs several times more (it frees the file's
    blocks) while the writers' lock is held.  If the expunge does not
    commit, the file goes back (by the writer, or by
    L{gateway.store.journal.recoverTemporary} after a crash: its index row
    is still there); once it did, the file is unlinked, after the lock.

    @param filename: C{"cur/<name>"} or C{"new/<name>"}.
    @return: the new path, or C{None} when the file was not there.
    """
    aside = os.path.join(path, "tmp", temporaryName() + ASIDE_MARK + splitName(os.path.basename(filename))[0])
    try:
        os.rename(os.path.join(path, filename), aside)
    except FileNotFoundError:
        return None
    return aside


def asideBase(name):
    """
    The base of the expunged message whose file C{tmp/} file C{name} holds
    (L{setAside}), or C{None} for any other file.
    """
    _head, mark, base = name.partition(ASIDE_MARK)
    return base if mark else None


def writeTemporary(tmpDir, source, mtime=None, sync=True):
    """
    Write a message into C{tmpDir}, fsync'd, measuring it on the way.

    @param source: C{bytes} or a binary file object.
    @param mtime: POSIX time to give the file (its internal date), or C{None}.
    @param sync: fsync the file; when false the caller does (L{fsyncFile})
        before the file may count as stored.
    @return: C{(path, measure)}.
    """
    name = temporaryName()
    path = os.path.join(tmpDir, name)
    measure = Measure()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(source, (bytes, bytearray, memoryview)):
                data = bytes(source)
                for i in range(0, len(data), CHUNK):
                    measure.feed(data[i:i + CHUNK])
                f.write(data)
            else:
                while True:
                    chunk = source.read(CHUNK)
                    if not chunk:
                        break
                    measure.feed(chunk)
                    f.write(chunk)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        if mtime is not None:
            os.utime(path, (mtime, mtime))
    except BaseException:
        removeQuietly(path)
        raise
    return path, measure


def fsyncFile(path):
    """
    fsync the file at C{path} (one L{writeTemporary} wrote without).
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def linkTemporary(tmpDir, path):
    """
    Put the file at C{path} (complete and fsync'd) into C{tmpDir}: a hard
    link where the file system allows one, else a copy, fsync'd.

    @return: the path in C{tmpDir}.
    """
    name = temporaryName()
    target = os.path.join(tmpDir, name)
    try:
        os.link(path, target)
    except FileNotFoundError:
        raise
    except OSError:
        try:
            with open(path, "rb") as source, open(target, "xb") as copy:
                while True:
                    chunk = source.read(CHUNK)
                    if not chunk:
                        break
                    copy.write(chunk)
                copy.flush()
                os.fsync(copy.fileno())
        except BaseException:
            removeQuietly(target)
            raise
    return target


def removeQuietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


#: The process and host in our C{tmp/} and message file names.
_OWNER = re.compile(r"P(\d+)Q\d+R[0-9a-f]+\.([^,:]*)")


def temporaryOwner(name):
    """
    @return: C{(pid, host)} of the process that made a C{tmp/} file of
        ours (L{writeTemporary}, or a message base staged there), or
        C{None} for a name in another program's format.
    """
    match = _OWNER.search(name)
    if match is None:
        return None
    return int(match.group(1)), match.group(2)


def processAlive(pid, before=None):
    """
    Is there a process C{pid} on this host (this process always is) that
    was already running at POSIX time C{before}?  A process that started
    later only reuses the number of a process that ended (known where
    C{/proc} tells start times).
    """
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if before is not None:
        # With a minute to spare: a clock set back must not make a live
        # owner look younger than its file.
        started = processStartTime(pid)
        if started is not None and started > before + TMP_GRACE:
            return False
    return True


def processStartTime(pid):
    """
    @return: when process C{pid} started (POSIX time, to about a second),
        or C{None} where C{/proc} does not say.
    """
    try:
        with open("/proc/%d/stat" % (pid,), "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith(b"btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def temporaryHeld(name, ctime, now):
    """
    May a process still be writing, staging or about to rename the C{tmp/}
    file C{name}?  Never decided by mtime, which a delivery sets to the
    message's internal date: a file of ours is held while the process
    named in it lives (on another host: for L{TMP_MAX_AGE} by ctime); a
    file of another program for L{TMP_GRACE} seconds by ctime.
    """
    owner = temporaryOwner(name)
    if owner is None:
        return now - ctime < TMP_GRACE
    pid, host = owner
    if host != _host:
        return now - ctime < TMP_MAX_AGE
    return processAlive(pid, before=ctime)


def temporaryFiles(tmpDir):
    """
    @return: C{list} of C{(name, os.stat_result)} of the plain files in
        C{tmpDir}.
    """
    try:
        names = os.listdir(tmpDir)
    except FileNotFoundError:
        return []
    result = []
    for name in names:
        try:
            st = os.lstat(os.path.join(tmpDir, name))
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode):
            result.append((name, st))
    return result
