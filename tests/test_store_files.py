# -*- test-case-name: tests.test_store_files -*-
"""
Tests for L{gateway.store.files}: the one path resolver with hostile input,
atomic and in-place writes, quota and usage accounting.
"""

import errno
import fcntl
import io
import os
import subprocess
import time

from twisted.trial import unittest
from zope.interface.verify import verifyObject

from gateway.errors import InvalidPath, QuotaExceeded
from gateway.interfaces import IFileStore
from gateway.store.files import CHUNK, TEMP_PREFIX, FileStore, normalizeClientPath


class FakeQuota:
    """
    An L{IQuota} over the file store's usage only.
    """

    def __init__(self, limit):
        self._limit = limit
        self.store = None

    def limit(self):
        return self._limit

    def used(self):
        return self.store.usage()

    def check(self, additional):
        if self._limit is not None and self.used() + additional > self._limit:
            raise QuotaExceeded("over quota")


class FailingSource:
    """
    A file-like source that returns C{good} then raises, like an upload whose
    connection is lost.
    """

    def __init__(self, good):
        self._good = io.BytesIO(good)

    def read(self, size):
        chunk = self._good.read(size)
        if not chunk:
            raise ConnectionError("connection lost")
        return chunk


class StoreMixin:
    def setUp(self):
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        self.base = base
        self.outside = os.path.join(base, "outside")
        os.makedirs(self.outside)
        with open(os.path.join(self.outside, "secret"), "wb") as f:
            f.write(b"secret")
        self.rootPath = os.path.join(base, "root")

    def makeStore(self, limit=None):
        quota = FakeQuota(limit) if limit is not None else None
        store = FileStore(self.rootPath, quota=quota)
        if quota is not None:
            quota.store = store
        return store

    def listing(self, folder=None):
        """
        Every file under the root (relative names), temporary files included.
        """
        found = []
        top = folder or self.rootPath
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames + filenames:
                found.append(os.path.relpath(os.path.join(dirpath, name), top))
        return sorted(found)

    def read(self, name):
        with open(os.path.join(self.rootPath, name), "rb") as f:
            return f.read()


class ResolverTests(StoreMixin, unittest.TestCase):
    def setUp(self):
        StoreMixin.setUp(self)
        self.store = self.makeStore()

    def test_interface(self):
        """FileStore provides IFileStore."""
        verifyObject(IFileStore, self.store)

    def test_newStoreHasPrivate(self):
        """A new store creates its root with a C{private/} folder."""
        self.assertTrue(os.path.isdir(os.path.join(self.rootPath, "private")))
        self.assertEqual(self.store.resolve("/private").path, os.path.join(self.rootPath, "private"))

    def test_plainPaths(self):
        """Relative paths join the current folder; C{.} and doubled slashes are ignored."""
        r = self.store.resolve
        self.assertEqual(r("/").path, self.rootPath)
        self.assertEqual(r("a/b").path, os.path.join(self.rootPath, "a", "b"))
        self.assertEqual(r("b", cwd="/a").path, os.path.join(self.rootPath, "a", "b"))
        self.assertEqual(r("./a//b/.").path, os.path.join(self.rootPath, "a", "b"))
        self.assertEqual(r("a/../b").path, os.path.join(self.rootPath, "b"))
        self.assertEqual(r("..", cwd="/a").path, self.rootPath)

    def test_dotDotEscape(self):
        """C{..} that would leave the root is refused, however it is spelled."""
        for path in ("..", "../", "../x", "/..", "/../x", "a/../../b", "a/b/../../../c", "./../outside/secret"):
            self.assertRaises(InvalidPath, self.store.resolve, path)
        self.assertRaises(InvalidPath, self.store.resolve, "../..", cwd="/a")
        self.assertRaises(InvalidPath, self.store.resolve, "..", cwd="/")

    def test_absolutePathsStayInside(self):
        """An absolute client path is relative to the root, never the host file system."""
        for path in ("/etc/passwd", "//etc/passwd", self.outside + "/secret"):
            resolved = self.store.resolve(path)
            self.assertTrue(resolved.path.startswith(self.rootPath + os.sep), path)
            self.assertFalse(resolved.exists())

    def test_nulAndBackslash(self):
        """NUL and backslash are refused anywhere in a path."""
        for path in ("a\x00b", "\x00", "/private/x\x00.txt", "..\\x", "a\\b", "\\"):
            self.assertRaises(InvalidPath, self.store.resolve, path)

    def test_controlCharacters(self):
        """CR, LF, ESC, DEL and every other control character are refused anywhere in a path."""
        for path in ("dir\r226 Injected", "a\nb", "/x/\x1b[2J", "del\x7f", "\x01", "tab\there"):
            self.assertRaises(InvalidPath, self.store.resolve, path)
        self.assertEqual(self.store.resolve("ok name ü").basename(), "ok name ü")

    def test_notText(self):
        """A bytes path is refused (front-ends decode first)."""
        self.assertRaises(InvalidPath, self.store.resolve, b"/a")
        self.assertRaises(InvalidPath, normalizeClientPath, None)

    def test_symlinkFileOutside(self):
        """A link to a file outside the root is refused, also for writing."""
        os.symlink(os.path.join(self.outside, "secret"), os.path.join(self.rootPath, "link"))
        self.assertRaises(InvalidPath, self.store.resolve, "/link")
        self.assertRaises(InvalidPath, self.store.writeFile, "/link", b"overwritten")
        self.assertRaises(InvalidPath, self.store.writeFile, "/link", b"x", append=True)
        with open(os.path.join(self.outside, "secret"), "rb") as f:
            self.assertEqual(f.read(), b"secret")

    def test_symlinkFolderOutside(self):
        """A link to a folder outside the root is refused, and so is anything below it."""
        os.symlink(self.outside, os.path.join(self.rootPath, "out"))
        for path in ("/out", "/out/secret", "/out/new", "out/../out/secret"):
            self.assertRaises(InvalidPath, self.store.resolve, path)
        self.assertRaises(InvalidPath, self.store.writeFile, "/out/new", b"x")
        self.assertFalse(os.path.exists(os.path.join(self.outside, "new")))

    def test_danglingSymlinkOutside(self):
        """A link to a path outside that does not exist yet is refused (no file can be created through it)."""
        os.symlink(os.path.join(self.outside, "later"), os.path.join(self.rootPath, "later"))
        self.assertRaises(InvalidPath, self.store.resolve, "/later")
        self.assertRaises(InvalidPath, self.store.writeFile, "/later", b"x", append=True)
        self.assertFalse(os.path.exists(os.path.join(self.outside, "later")))

    def test_symlinkInsideAllowed(self):
        """Links that stay inside the root are followed."""
        os.makedirs(os.path.join(self.rootPath, "real"))
        with open(os.path.join(self.rootPath, "real", "f"), "wb") as f:
            f.write(b"inside")
        os.symlink("real", os.path.join(self.rootPath, "alias"))
        os.symlink("../real/f", os.path.join(self.rootPath, "private", "f-link"))
        self.assertEqual(self.store.resolve("/alias/f").getContent(), b"inside")
        self.assertEqual(self.store.resolve("/private/f-link").getContent(), b"inside")

    def test_symlinkedParentLeavingRoot(self):
        """A link in the middle of a path, or in the root's own parent chain that leaves it, is refused."""
        os.makedirs(os.path.join(self.outside, "deep"))
        os.symlink(os.path.join(self.outside, "deep"), os.path.join(self.rootPath, "private", "deep"))
        self.assertRaises(InvalidPath, self.store.resolve, "/private/deep/x")
        # A link inside that points at the root's parent, then back down: still outside.
        os.symlink("..", os.path.join(self.rootPath, "up"))
        self.assertRaises(InvalidPath, self.store.resolve, "/up")
        self.assertRaises(InvalidPath, self.store.resolve, "/up/outside/secret")
        self.assertEqual(self.store.resolve("/up/root/private").path,
                         os.path.join(self.rootPath, "up", "root", "private"))

    def test_rootBehindSymlink(self):
        """A store whose root path itself is a link works, and still refuses escapes."""
        os.makedirs(os.path.join(self.base, "real-root"))
        linked = os.path.join(self.base, "linked-root")
        os.symlink(os.path.join(self.base, "real-root"), linked)
        store = FileStore(linked)
        self.assertEqual(store.resolve("/private").path, os.path.join(linked, "private"))
        self.assertRaises(InvalidPath, store.resolve, "/../outside")

    def test_clientPath(self):
        """C{clientPath} turns a resolved path back into the client's absolute path."""
        self.assertEqual(self.store.clientPath(self.store.resolve("/")), "/")
        self.assertEqual(self.store.clientPath(self.store.resolve("a/b", cwd="/x")), "/x/a/b")


class WriteTests(StoreMixin, unittest.TestCase):
    def test_writeBytes(self):
        """writeFile stores bytes and returns the count written."""
        store = self.makeStore()
        self.assertEqual(store.writeFile("/private/a.txt", b"hello"), 5)
        self.assertEqual(self.read("private/a.txt"), b"hello")

    def test_writeStream(self):
        """writeFile reads a file object to its end, over several chunks."""
        store = self.makeStore()
        data = os.urandom(CHUNK * 2 + 123)
        self.assertEqual(store.writeFile("/big", io.BytesIO(data)), len(data))
        self.assertEqual(self.read("big"), data)

    def test_replaceAtomic(self):
        """A replaced file is either the old or the new content; no temporary files are left."""
        store = self.makeStore()
        store.writeFile("/f", b"old content")
        store.writeFile("/f", b"new")
        self.assertEqual(self.read("f"), b"new")
        self.assertEqual(self.listing(), ["f", "private"])

    def test_failureMidStreamKeepsOldFile(self):
        """An upload that fails part-way leaves the old file untouched and no temporary file."""
        store = self.makeStore()
        store.writeFile("/f", b"old content")
        self.assertRaises(ConnectionError, store.writeFile, "/f", FailingSource(b"x" * (CHUNK + 10)))
        self.assertEqual(self.read("f"), b"old content")
        self.assertEqual(self.listing(), ["f", "private"])
        self.assertRaises(ConnectionError, store.writeFile, "/g", FailingSource(b"partial"))
        self.assertEqual(self.listing(), ["f", "private"])

    def test_keepPartialReplaces(self):
        """With keepPartial an upload that breaks off replaces the target with what arrived, and raises the source's error."""
        store = self.makeStore()
        store.writeFile("/f", b"old content")
        part = os.urandom(CHUNK + 10)
        self.assertRaises(ConnectionError, store.writeFile, "/f", FailingSource(part), keepPartial=True)
        self.assertEqual(self.read("f"), part)
        self.assertRaises(ConnectionError, store.writeFile, "/g", FailingSource(b"partial"), keepPartial=True)
        self.assertEqual(self.read("g"), b"partial")
        self.assertEqual(self.listing(), ["f", "g", "private"])
        self.assertEqual(oct(os.stat(os.path.join(self.rootPath, "g")).st_mode & 0o777), oct(0o644))

    def test_keepPartialNothingArrived(self):
        """With keepPartial an upload that breaks off before any byte leaves the old file, or no file."""
        store = self.makeStore()
        store.writeFile("/f", b"old content")
        self.assertRaises(ConnectionError, store.writeFile, "/f", FailingSource(b""), keepPartial=True)
        self.assertRaises(ConnectionError, store.writeFile, "/g", FailingSource(b""), keepPartial=True)
        self.assertEqual(self.read("f"), b"old content")
        self.assertEqual(self.listing(), ["f", "private"])

    def test_append(self):
        """C{append} extends the file, creating it if missing."""
        store = self.makeStore()
        store.writeFile("/log", b"one\n", append=True)
        store.writeFile("/log", io.BytesIO(b"two\n"), append=True)
        self.assertEqual(self.read("log"), b"one\ntwo\n")

    def test_offset(self):
        """An offset write (REST + STOR) keeps the bytes before the offset and replaces the rest."""
        store = self.makeStore()
        store.writeFile("/f", b"0123456789")
        store.writeFile("/f", b"ab", offset=4)
        self.assertEqual(self.read("f"), b"0123ab")
        store.writeFile("/f", b"XY", offset=6)
        self.assertEqual(self.read("f"), b"0123abXY")
        self.assertRaises(InvalidPath, store.writeFile, "/f", b"z", offset=100)
        self.assertEqual(self.read("f"), b"0123abXY")

    def test_refusedTargets(self):
        """The root, a folder, and a file in a missing folder cannot be written."""
        store = self.makeStore()
        self.assertRaises(InvalidPath, store.writeFile, "/", b"x")
        self.assertRaises(InvalidPath, store.writeFile, "/private", b"x")
        self.assertRaises(InvalidPath, store.writeFile, "/nope/f", b"x")
        self.assertRaises(InvalidPath, store.writeFile, "/../f", b"x")
        self.assertEqual(self.listing(), ["private"])

    def test_remove(self):
        """A file or an empty folder is removed; the root cannot be."""
        store = self.makeStore()
        store.writeFile("/f", b"x")
        os.makedirs(os.path.join(self.rootPath, "d"))
        store.remove("/f")
        store.remove("/d")
        self.assertEqual(self.listing(), ["private"])
        self.assertRaises(InvalidPath, store.remove, "/")
        self.assertRaises(InvalidPath, store.remove, "/../outside/secret")


def fillsUp(store, room, code=errno.ENOSPC):
    """
    Make C{store}'s writes fail with C{code} (ENOSPC: disk full) once
    C{room} bytes were written, at the seam every write goes through.
    """
    left = [room]
    write = store._writeChunk

    def writeChunk(f, chunk):
        if len(chunk) > left[0]:
            raise OSError(code, os.strerror(code))
        left[0] -= len(chunk)
        write(f, chunk)

    store._writeChunk = writeChunk


class DiskFullTests(StoreMixin, unittest.TestCase):
    def test_replaceLeavesOldFile(self):
        """A replacing write that meets a full disk (ENOSPC or EDQUOT) raises it and leaves the old file, no temporary file, the usage as it was."""
        for code in (errno.ENOSPC, errno.EDQUOT):
            store = self.makeStore()
            store.writeFile("/f", b"old")
            fillsUp(store, CHUNK, code)
            e = self.assertRaises(OSError, store.writeFile, "/f", io.BytesIO(b"x" * (CHUNK * 3)), keepPartial=True)
            self.assertEqual(e.errno, code)
            self.assertRaises(OSError, store.writeFile, "/new", io.BytesIO(b"x" * (CHUNK * 3)), keepPartial=True)
            self.assertEqual(self.read("f"), b"old")
            self.assertEqual(self.listing(), ["f", "private"])
            self.assertEqual(store.usage(), 3)

    def test_inPlaceRestored(self):
        """An append or offset write that meets a full disk is undone: the old length, or no new file."""
        store = self.makeStore()
        store.writeFile("/f", b"old")
        fillsUp(store, CHUNK)
        self.assertRaises(OSError, store.writeFile, "/f", io.BytesIO(b"x" * (CHUNK * 3)), append=True)
        self.assertRaises(OSError, store.writeFile, "/f", io.BytesIO(b"x" * (CHUNK * 3)), offset=1)
        self.assertRaises(OSError, store.writeFile, "/new", io.BytesIO(b"x" * (CHUNK * 3)), append=True)
        self.assertEqual(self.read("f"), b"old")
        self.assertEqual(self.listing(), ["f", "private"])
        self.assertEqual(store.usage(), 3)
        self.assertEqual(FileStore(self.rootPath).usage(), 3)


def smallFileSystem(testCase, size="1m"):
    """
    Mount a tmpfs of C{size} for the test (unmounted after it), as root
    only: the path, or L{unittest.SkipTest}.
    """
    path = os.path.abspath(testCase.mktemp())
    os.makedirs(path)
    if os.geteuid() != 0:
        raise unittest.SkipTest("mounting a small file system needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % (size,), "tmpfs", path],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        raise unittest.SkipTest("cannot mount a tmpfs here: %s" % (mounted.stderr.strip(),))
    testCase.addCleanup(subprocess.run, ["umount", "-l", path], check=True)
    return path


class RealDiskFullTests(StoreMixin, unittest.TestCase):
    def test_fullFileSystem(self):
        """On a really full file system (a 1 MB tmpfs) replacing, new and in-place writes raise ENOSPC and leave nothing behind."""
        self.rootPath = os.path.join(smallFileSystem(self), "root")
        store = self.makeStore()
        store.writeFile("/f", b"old")
        for kwargs in ({}, {"keepPartial": True}, {"append": True}, {"offset": 3}):
            for name in ("/f", "/new"):
                if name == "/new" and "offset" in kwargs:
                    continue
                e = self.assertRaises(OSError, store.writeFile, name, io.BytesIO(b"x" * (2 * 1024 * 1024)), **kwargs)
                self.assertEqual(e.errno, errno.ENOSPC)
        self.assertEqual(self.read("f"), b"old")
        self.assertEqual(self.listing(), ["f", "private"])
        self.assertEqual(FileStore(self.rootPath).usage(), 3)
        self.assertEqual(store.writeFile("/small", b"fits"), 4)


class QuotaTests(StoreMixin, unittest.TestCase):
    def test_usage(self):
        """Usage counts every file's bytes and follows writes, appends, offsets and removals."""
        store = self.makeStore()
        self.assertEqual(store.usage(), 0)
        store.writeFile("/a", b"x" * 100)
        self.assertEqual(store.usage(), 100)
        store.writeFile("/a", b"x" * 40)
        self.assertEqual(store.usage(), 40)
        store.writeFile("/a", b"y" * 10, append=True)
        self.assertEqual(store.usage(), 50)
        store.writeFile("/a", b"z" * 30, offset=45)
        self.assertEqual(store.usage(), 75)
        store.writeFile("/private/b", io.BytesIO(b"b" * 25))
        self.assertEqual(store.usage(), 100)
        store.remove("/a")
        self.assertEqual(store.usage(), 25)
        # A fresh store (another process) walks the tree and agrees.
        self.assertEqual(FileStore(self.rootPath).usage(), 25)

    def test_bytesRefusedBeforeWrite(self):
        """Bytes that would pass the quota are refused before anything is written."""
        store = self.makeStore(limit=100)
        store.writeFile("/a", b"x" * 60)
        self.assertRaises(QuotaExceeded, store.writeFile, "/b", b"y" * 41)
        self.assertRaises(QuotaExceeded, store.writeFile, "/a", b"y" * 41, append=True)
        self.assertRaises(QuotaExceeded, store.writeFile, "/a", b"y" * 42, offset=59)
        self.assertEqual(self.listing(), ["a", "private"])
        self.assertEqual(self.read("a"), b"x" * 60)
        self.assertEqual(store.usage(), 60)

    def test_replaceCountsOnlyGrowth(self):
        """Replacing a file counts the difference in size, so a file at the limit can be rewritten."""
        store = self.makeStore(limit=100)
        store.writeFile("/a", b"x" * 100)
        store.writeFile("/a", b"y" * 100)
        store.writeFile("/a", io.BytesIO(b"z" * 100))
        self.assertEqual(self.read("a"), b"z" * 100)

    def test_streamRefusedDuringWrite(self):
        """A stream passing the quota is refused and leaves no file and no temporary file."""
        store = self.makeStore(limit=CHUNK + 100)
        self.assertRaises(QuotaExceeded, store.writeFile, "/big", io.BytesIO(b"x" * (CHUNK * 3)))
        self.assertEqual(self.listing(), ["private"])
        self.assertEqual(store.usage(), 0)

    def test_streamRefusedKeepsOldFile(self):
        """A replacing stream passing the quota leaves the old file as it was."""
        store = self.makeStore(limit=CHUNK + 100)
        store.writeFile("/f", b"old")
        self.assertRaises(QuotaExceeded, store.writeFile, "/f", io.BytesIO(b"x" * (CHUNK * 3)))
        self.assertEqual(self.read("f"), b"old")
        self.assertEqual(self.listing(), ["f", "private"])

    def test_appendStreamRefusedLeavesNothing(self):
        """An appending stream passing the quota restores the old length, or leaves no new file."""
        store = self.makeStore(limit=CHUNK + 100)
        store.writeFile("/f", b"old")
        self.assertRaises(QuotaExceeded, store.writeFile, "/f", io.BytesIO(b"x" * (CHUNK * 3)), append=True)
        self.assertEqual(self.read("f"), b"old")
        self.assertRaises(QuotaExceeded, store.writeFile, "/new", io.BytesIO(b"x" * (CHUNK * 3)), append=True)
        self.assertEqual(self.listing(), ["f", "private"])
        self.assertEqual(store.usage(), 3)

    def test_brokenAppendCounted(self):
        """An append that breaks off (the client went away) keeps what arrived, and the usage counts it."""
        class BreaksOff(io.RawIOBase):
            sent = False

            def read(self, n=-1):
                if self.sent:
                    raise ConnectionError("client gone")
                self.sent = True
                return b"x" * 1000

        store = self.makeStore(limit=CHUNK + 100)
        store.writeFile("/f", b"old")
        self.assertRaises(ConnectionError, store.writeFile, "/f", BreaksOff(), append=True)
        self.assertEqual(self.read("f"), b"old" + b"x" * 1000)
        self.assertEqual(store.usage(), 1003)
        self.assertEqual(FileStore(self.rootPath).usage(), 1003)

    def test_keptPartialCounted(self):
        """A kept partial upload counts in the usage, as a fresh walk of the tree does; over the quota nothing is kept."""
        store = self.makeStore(limit=CHUNK * 2)
        store.writeFile("/f", b"old")
        self.assertRaises(ConnectionError, store.writeFile, "/f", FailingSource(b"x" * 1000), keepPartial=True)
        self.assertEqual(store.usage(), 1000)
        self.assertEqual(FileStore(self.rootPath).usage(), 1000)
        self.assertRaises(QuotaExceeded, store.writeFile, "/f", FailingSource(b"y" * (CHUNK * 3)), keepPartial=True)
        self.assertEqual(self.read("f"), b"x" * 1000)
        self.assertEqual(self.listing(), ["f", "private"])
        self.assertEqual(store.usage(), 1000)

    def test_leftoversCleaned(self):
        """Temporary files a crash left (older than a minute, held by no writer) are removed when usage is computed and never counted."""
        os.makedirs(os.path.join(self.rootPath, "sub"))
        stale = [os.path.join(self.rootPath, TEMP_PREFIX + "crashed"),
                 os.path.join(self.rootPath, "sub", TEMP_PREFIX + "also")]
        held = os.path.join(self.rootPath, TEMP_PREFIX + "uploading")
        young = os.path.join(self.rootPath, TEMP_PREFIX + "young")
        old = time.time() - 120
        for path in stale + [held, young]:
            with open(path, "wb") as f:
                f.write(b"x" * 5000)
            if path != young:
                os.utime(path, (old, old))
        with open(os.path.join(self.rootPath, "sub", "kept.txt"), "wb") as f:
            f.write(b"k" * 7)
        holder = open(held, "rb")
        self.addCleanup(holder.close)
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        store = self.makeStore()
        self.assertEqual(store.usage(), 7)
        for path in stale:
            self.assertFalse(os.path.exists(path), path)
        self.assertTrue(os.path.exists(held))
        self.assertTrue(os.path.exists(young))
        holder.close()
        self.assertEqual(FileStore(self.rootPath).usage(), 7)
        self.assertFalse(os.path.exists(held))

    def test_writerHoldsItsTemporaryFile(self):
        """An upload in progress holds a lock on its temporary file, so a cleaning walk (any process) leaves it."""
        store = self.makeStore()
        seen = []

        class Watcher:
            sent = False

            def read(self, size):
                if self.sent:
                    return b""
                self.sent = True
                [name] = [n for n in os.listdir(store.root.path) if n.startswith(TEMP_PREFIX)]
                path = os.path.join(store.root.path, name)
                os.utime(path, (time.time() - 120,) * 2)
                seen.append(FileStore(store.root.path).usage())
                seen.append(os.path.exists(path))
                return b"data"

        store.writeFile("/f", Watcher())
        self.assertEqual(seen, [0, True])
        self.assertEqual(self.read("f"), b"data")

    def test_noTemporaryFilesVisible(self):
        """Temporary files use the TEMP_PREFIX that listings hide, and none survive a write."""
        store = self.makeStore()
        store.writeFile("/private/a", io.BytesIO(b"a" * (CHUNK + 1)))
        self.assertFalse([n for n in self.listing() if os.path.basename(n).startswith(TEMP_PREFIX)])
        self.assertTrue(TEMP_PREFIX.startswith("."))


class DeepTreeTests(unittest.TestCase):
    def test_usageOfDeepTree(self):
        """The usage walk counts a file 1,200 folders deep (os.walk raised RecursionError)."""
        root = self.mktemp()
        folder = root
        for _ in range(1200):
            folder = os.path.join(folder, "d")
            try:
                os.makedirs(folder)
            except OSError:  # PATH_MAX
                break
        with open(os.path.join(folder, "f"), "wb") as f:
            f.write(b"x" * 7)
        from gateway.store import maildir
        self.assertEqual(FileStore(root).usage(), 7)
        self.assertEqual([len(dirs) for _, dirs, _ in maildir.walkTree(os.path.join(root, "d"), maxDepth=2)], [1, 1, 1])
