# -*- test-case-name: tests.test_metadata -*-
"""
Mailbox and server annotations (RFC 5464 METADATA): storage, entry-name
rules, limits and rights, protocol-neutral.

Where entries live::

    mail/<mailbox folder>/gateway-metadata   a mailbox's entries
    mail/.gateway-metadata                   the account's private server
                                             entries

Each file is JSON: C{{"shared": {name: value}, "private": {viewer:
{name: value}}, "mailboxid": id}} (the mailbox's RFC 8474 MAILBOXID,
L{mailboxId}), written atomically (a temporary file renamed into place)
under an exclusive lock on its folder, so entries survive a restart and an
index rebuild, move with RENAME (the folder moves) and go with DELETE (the
folder goes; a mailbox that keeps its children loses the file, see
L{forget}).  Values are octets: a value that is UTF-8 is stored as a JSON
string, any other as C{{"base64": ...}}.  Names are case-insensitive and
kept in lower case.

Why files rather than index rows: the index can be rebuilt from the Maildir
at any time, and entries (the folder class among them) must survive that;
a file per folder also follows RENAME and DELETE with no bookkeeping.  A
read costs one C{stat} while the file is unchanged (parsed files are kept
by size, mtime and inode), which keeps LIST ... RETURN (METADATA) cheap.

Rights (RFC 5464 3.3 with the ACL extension: "users can only set and
retrieve private or shared mailbox annotations on a mailbox on which they
have the C{l} right and any one of the C{r}, C{s}, C{w}, C{i}, or C{p}
rights"): reading any entry and writing a C{/private} entry need exactly
that; writing a C{/shared} entry, which every viewer sees, needs C{l} and
C{w} (a restriction the RFC's "can only" allows).  A mailbox the viewer may
not see answers as a missing one (L{NoSuchMailbox}).  Another account's
mailbox is found and checked through the access layer
(L{gateway.interfaces.IViewerAccess}); private entries belong to the viewer.

Special entries (the folder class and its Kolab type, computed or checked
values) are objects given to L{Metadata} by the wiring
(L{gateway.interfaces.IMetadataEntry}); every other entry is stored as it
is.
"""

import base64
import fcntl
import json
import os
import threading

import attr
from twisted.internet.defer import fail, maybeDeferred
from twisted.python import log
from zope.interface import implementer

from gateway import caches
from gateway.errors import NoSuchMailbox, PermissionDenied
from gateway.interfaces import IMetadata
from gateway.store import maildir

#: In each mailbox folder.
METADATA_FILE = "gateway-metadata"
#: In the account's mail folder: private server entries.
SERVER_FILE = ".gateway-metadata"

#: Largest value accepted, in octets (RFC 5464 asks for at least 1024).
MAX_VALUE_SIZE = 64 * 1024
#: Most entries of one mailbox one viewer may have: the shared ones and
#: their own private ones (RFC 5464 asks for at least 10).
MAX_ENTRIES = 100

#: Longest entry name, in characters.
MAX_NAME_LENGTH = 1024
#: Most octets of names and values one metadata file may hold (all viewers'
#: entries together), so that a mailbox shared with many viewers cannot be
#: made slow to list.
MAX_FILE_SIZE = 4 * 1024 * 1024

#: Rights of which one, with C{l}, lets a viewer read entries and write
#: private ones (RFC 5464 3.3).
READ_RIGHTS = "rswip"

SHARED = "/shared"
PRIVATE = "/private"

#: The entry holding a mailbox's class (docs/xmapi.md 6.1), which the
#: store reads back from the file when it rebuilds its index.
CLASS_ENTRY = "/shared/vendor/xmapi/container-class"


class MetadataError(Exception):
    """
    Base of the errors a SETMETADATA or GETMETADATA can meet.
    """


class InvalidEntryName(MetadataError):
    """
    Not an entry name (RFC 5464 3.2): IMAP answers C{BAD}.
    """


class ValueTooLarge(MetadataError):
    """
    A value longer than L{Metadata.maxValueSize} (C{NO [METADATA MAXSIZE n]}).
    """

    def __init__(self, limit):
        MetadataError.__init__(self, "value larger than %d octets" % (limit,))
        self.limit = limit


class TooManyEntries(MetadataError):
    """
    A new entry past L{Metadata.maxEntries} (C{NO [METADATA TOOMANY]}).
    """


class ReadOnlyEntry(MetadataError):
    """
    A computed entry no client may set (C{NO [NOPERM]}).
    """


class InvalidValue(MetadataError):
    """
    A special entry refused the value (C{NO [CANNOT]}).
    """


def checkEntryName(name, setting=False):
    """
    Check an entry name (RFC 5464 3.2) and return it in lower case.

    @param name: C{str} or C{bytes}.
    @param setting: C{True} for a name to set: it must then name an entry
        (C{/shared/x}: two components at least, four under C{vendor}); a
        name to get may be a prefix (C{/shared}) that DEPTH extends.
    @raise InvalidEntryName: otherwise.
    """
    if isinstance(name, bytes):
        try:
            name = name.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidEntryName("entry names are ASCII") from None
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidEntryName("entry names are at most %d characters" % (MAX_NAME_LENGTH,))
    if not name or any(ch < " " or ch > "~" for ch in name):
        raise InvalidEntryName("entry names are printable ASCII")
    if "*" in name or "%" in name:
        raise InvalidEntryName("entry names cannot contain * or %")
    if "//" in name or name.endswith("/"):
        raise InvalidEntryName("entry names cannot contain // or end with /")
    name = name.lower()
    parts = name.split("/")[1:]
    if not name.startswith("/") or parts[0] not in ("shared", "private"):
        raise InvalidEntryName("entry names start with /shared or /private")
    if setting and (len(parts) < 2 or parts[1] == "vendor" and len(parts) < 4):
        raise InvalidEntryName("%s is not an entry that can be set" % (name,))
    return name


def isShared(name):
    return name == SHARED or name.startswith(SHARED + "/")


def below(name, prefix, depth):
    """
    Is entry C{name} C{prefix} itself or below it within C{depth}
    (C{"0"}, C{"1"} or C{"infinity"}, RFC 5464 4.2.2)?
    """
    if name == prefix:
        return True
    if depth == "0" or not name.startswith(prefix + "/"):
        return False
    return depth == "infinity" or "/" not in name[len(prefix) + 1:]


# -- files -------------------------------------------------------------------------

_cache = caches.kept({}, "gateway.store.metadata entries")


def _decodeValue(value):
    if isinstance(value, dict):
        return base64.b64decode(value.get("base64", ""))
    return value.encode("utf-8")


def _encodeValue(value):
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode("ascii")}


def _load(path):
    """
    C{(shared, private, mailboxId)} of a metadata file (see L{readFile}),
    kept in memory while the file's size, mtime and inode stay the same.
    """
    try:
        st = os.stat(path)
    except OSError:
        _cache.pop(path, None)
        return {}, {}, None
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    cached = _cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
        shared = {name: _decodeValue(value) for name, value in data.get("shared", {}).items()}
        private = {viewer: {name: _decodeValue(value) for name, value in entries.items()}
                   for viewer, entries in data.get("private", {}).items()}
        mailboxId = data.get("mailboxid")
        if mailboxId is not None and not isinstance(mailboxId, str):
            mailboxId = None
    except (OSError, ValueError, AttributeError, TypeError):
        return {}, {}, None
    if len(_cache) > 10000:
        _cache.clear()
    _cache[path] = (stamp, (shared, private, mailboxId))
    return shared, private, mailboxId


def readFile(path):
    """
    The entries stored in a metadata file: C{(shared, private)} where
    C{shared} is C{{name: bytes}} and C{private} C{{viewer: {name:
    bytes}}}; empty when there is no file (or it cannot be read).
    """
    return _load(path)[:2]


_KEEP = object()


def writeFile(path, shared, private, mailboxId=_KEEP):
    """
    Store entries (as L{readFile} gives them) atomically, with the
    mailbox's MAILBOXID (by default the one the file has); nothing to keep
    removes the file.
    """
    if mailboxId is _KEEP:
        mailboxId = _load(path)[2]
    _cache.pop(path, None)
    private = {viewer: entries for viewer, entries in private.items() if entries}
    if not shared and not private and mailboxId is None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    data = {"shared": {name: _encodeValue(value) for name, value in sorted(shared.items())},
            "private": {viewer: {name: _encodeValue(value) for name, value in sorted(entries.items())}
                        for viewer, entries in sorted(private.items())}}
    if mailboxId is not None:
        data["mailboxid"] = mailboxId
    temporary = "%s.%d.tmp" % (path, os.getpid())
    try:
        with open(temporary, "wb") as f:
            f.write(json.dumps(data, indent=1, ensure_ascii=False).encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        # A full disk: nothing half-written stays behind.
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def knownMailboxId(mailboxFolder):
    """
    The mailbox's MAILBOXID if it has one already (see L{mailboxId}), else
    C{None}: never writes.
    """
    return _load(os.path.join(mailboxFolder, METADATA_FILE))[2]


def mailboxId(mailboxFolder):
    """
    The mailbox's MAILBOXID (RFC 8474): kept in its metadata file, so it
    follows RENAME and survives an index rebuild; a mailbox that has none
    yet (made before, or by another program) gets one now.  DELETE removes
    it with the file, so a new mailbox of the same name has a new one.
    """
    path = os.path.join(mailboxFolder, METADATA_FILE)
    found = _load(path)[2]
    if found is not None:
        return found
    with _FolderLock(mailboxFolder):
        shared, private, found = _load(path)
        if found is None:
            found = "M" + os.urandom(12).hex()
            writeFile(path, shared, private, found)
    return found


def _size(shared, private):
    entries = list(shared.items()) + [item for mine in private.values() for item in mine.items()]
    return sum(len(name) + len(value) for name, value in entries)


class _FolderLock:
    """
    An exclusive C{flock} on a folder while its metadata file is read,
    changed and written (other processes serve the same data root).
    """

    def __init__(self, folder):
        self._folder = folder
        self._fd = None

    def __enter__(self):
        self._fd = os.open(self._folder, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def storedClass(mailboxFolder, name):
    """
    The value stored for the shared entry C{name} (the folder class) in a
    mailbox folder, as C{str}, or C{None}: for the store, which reads the
    class from here when it rebuilds its index.
    """
    value = readFile(os.path.join(mailboxFolder, METADATA_FILE))[0].get(name)
    if value is None:
        return None
    return value.decode("ascii", "replace")


def copyEntries(fromFolder, toFolder):
    """
    Give a new mailbox a copy of another's entries (RENAME INBOX, RFC 5464
    4.1: INBOX keeps its own), not its MAILBOXID.
    """
    shared, private = readFile(os.path.join(fromFolder, METADATA_FILE))
    if shared or private:
        writeFile(os.path.join(toFolder, METADATA_FILE), shared, private, None)


def forget(mailboxFolder):
    """
    A mailbox was deleted but its folder stays (it has children): remove
    its entries and its MAILBOXID.
    """
    writeFile(os.path.join(mailboxFolder, METADATA_FILE), {}, {}, None)


# -- the service ----------------------------------------------------------------------


@attr.s(frozen=True)
class MetadataChange:
    """
    Entries of a mailbox (or of an account's server entries) were written.

    @ivar owner: the owner's address.
    @ivar local: the mailbox's name in the owner's store, C{None} for the
        server entries.
    @ivar entries: the entry names (lower case).
    @ivar viewer: who wrote them: the only one who sees the C{/private}
        ones.
    """

    owner = attr.ib()
    local = attr.ib()
    entries = attr.ib()
    viewer = attr.ib()

    def visibleTo(self, viewer):
        """
        The entries C{viewer} sees: shared ones, and private ones of its own.
        """
        return [entry for entry in self.entries if isShared(entry) or viewer == self.viewer]


class Target:
    """
    What an entry is read or written on, as special entries see it.

    @ivar access: the viewer's L{gateway.interfaces.IViewerAccess}.
    @ivar viewer: the viewer's address.
    @ivar name: the mailbox name as the viewer gave it (C{""} for the
        server).
    @ivar owner: the owner's address (the viewer's for the server).
    @ivar local: the mailbox's canonical name in the owner's store, or
        C{None} for the server.
    @ivar store: the owner's L{gateway.interfaces.IMailStore}.
    @ivar path: the metadata file.
    """

    def __init__(self, access, name, owner, local, store, path):
        self.access = access
        self.viewer = access.viewer
        self.name = name
        self.owner = owner
        self.local = local
        self.store = store
        self.path = path

    @property
    def isServer(self):
        return self.local is None

    @property
    def isOwn(self):
        return self.owner == self.viewer

    def stored(self):
        """
        C{(shared, mine)}: the stored shared entries and the viewer's
        private ones.
        """
        shared, private = readFile(self.path)
        return shared, private.get(self.viewer, {})


def _putBack(target, previous):
    """
    Put entries of a target back to the values they had (C{{entry: bytes
    or None}}), leaving the others as they are.
    """
    with _FolderLock(os.path.dirname(target.path)):
        shared, private = readFile(target.path)
        shared, private = dict(shared), {viewer: dict(entries) for viewer, entries in private.items()}
        mine = private.setdefault(target.viewer, {})
        for entry, value in previous.items():
            scope = shared if isShared(entry) else mine
            if value is None:
                scope.pop(entry, None)
            else:
                scope[entry] = value
        writeFile(target.path, shared, private)


class _Batch:
    """
    What the entries written in one write of an index writer
    (L{Metadata.setEntriesLater}) leave to do: fsync their folders once
    the group committed, tell the listeners, or put the entries back if it
    does not commit.

    @ivar changes: C{[(target, entry names)]} to tell the listeners of.
    """

    def __init__(self, group):
        self._group = group
        self._restores = []
        self.changes = []

    def wrote(self, target, previous, entries):
        """
        The entries C{entries} of C{target} were written, over the values
        C{previous} (C{{entry: bytes or None}}).
        """
        folder = os.path.dirname(target.path)
        if self._group is None:
            maildir.fsyncDirectory(folder)
        else:
            self._group.syncFolder(folder)
        self._restores.append((target, previous))
        self.changes.append((target, entries))

    def undo(self):
        """
        Put back what was written, the last write first.
        """
        for target, previous in reversed(self._restores):
            try:
                _putBack(target, previous)
            except Exception:
                log.err(None, "putting back metadata entries failed")
        del self._restores[:]


@implementer(IMetadata)
class Metadata:
    """
    The METADATA service of a server: one object, built by the wiring with
    the special entries.

    @param entries: L{gateway.interfaces.IMetadataEntry} providers.
    """

    def __init__(self, entries=(), maxValueSize=MAX_VALUE_SIZE, maxEntries=MAX_ENTRIES):
        self.entries = {entry.name: entry for entry in entries}
        self.maxValueSize = maxValueSize
        self.maxEntries = maxEntries
        self._listeners = []
        #: C{batch}: the L{_Batch} of the write the calling thread runs
        #: (L{setEntriesLater}), if any.
        self._running = threading.local()

    # -- listeners ---------------------------------------------------------------

    def addListener(self, callback):
        """
        Call C{callback(change)} with a L{MetadataChange} after entries are
        written through this object (in this process: the files of other
        processes' writes are not watched).

        @return: a no-argument callable that removes the listener.
        """
        self._listeners.append(callback)

        def remove():
            if callback in self._listeners:
                self._listeners.remove(callback)
        return remove

    def _changed(self, target, entryNames):
        if not self._listeners:
            return
        change = MetadataChange(target.owner, target.local, tuple(entryNames), target.viewer)
        for callback in list(self._listeners):
            try:
                callback(change)
            except Exception:
                log.err(None, "metadata listener failed")

    # -- targets and rights --------------------------------------------------

    def target(self, access, name, writing=None):
        """
        Find a mailbox (or the server, for C{""}) and check the viewer's
        rights for reading (C{writing=None}) or writing entries of a scope
        (C{writing=SHARED} or C{PRIVATE}).

        @raise NoSuchMailbox: missing, or not visible to the viewer.
        @raise PermissionDenied: visible, but a right is missing.
        """
        if name == "":
            store = access.layer.storeOf(access.viewer)
            return Target(access, "", access.viewer, None, store, os.path.join(store.path, SERVER_FILE))
        location = access.resolve(name)
        rights = access.rights(name)
        if "l" not in rights:
            raise NoSuchMailbox(name)
        store = access.layer.storeOf(location.owner)
        if not store.hasMailbox(location.name):
            raise NoSuchMailbox(name)
        if not any(right in rights for right in READ_RIGHTS):
            raise PermissionDenied("missing right r on %s" % (name,))
        if writing == SHARED and "w" not in rights:
            raise PermissionDenied("missing right w on %s" % (name,))
        folder = maildir.mailboxPath(store.path, location.name)
        return Target(access, name, location.owner, location.name, store, os.path.join(folder, METADATA_FILE))

    # -- reading ---------------------------------------------------------------

    def getEntries(self, access, name, entryNames, depth="0", maxSize=None, missing=True):
        """
        GETMETADATA: the values of entries of a mailbox (or of the server
        for C{name == ""}).

        @param entryNames: names as the client gave them (checked here).
        @param depth: C{"0"}, C{"1"} or C{"infinity"}.
        @param maxSize: leave out values longer than this (and report the
            longest left out), or C{None}.
        @param missing: list a requested name that has no value (and,
            with DEPTH, nothing below it) with C{None}; with C{False} it is
            left out.
        @return: C{(pairs, longest)}: C{[(name, value or None)]} in the
            order asked (each name as the client spelled it, entries below
            it in lower case, sorted), and the size of the longest value
            left out by C{maxSize} (C{0} when none).
        @raise InvalidEntryName: for a bad name.
        """
        checked = [(checkEntryName(entry), entry) for entry in entryNames]
        target = self.target(access, name)
        values = self._values(target, [lower for lower, _ in checked], depth)
        pairs, seen, longest = [], set(), 0
        for lower, spelled in checked:
            found = [(key, values[key]) for key in sorted(values) if below(key, lower, depth)]
            if missing and not found and lower not in seen:
                pairs.append((spelled, None))
                seen.add(lower)
            for key, value in found:
                if key in seen:
                    continue
                seen.add(key)
                if maxSize is not None and len(value) > maxSize:
                    longest = max(longest, len(value))
                    continue
                pairs.append((spelled if key == lower else key, value))
        return pairs, longest

    def _values(self, target, prefixes, depth):
        """
        The entries of a target the viewer sees: stored shared ones, the
        viewer's private ones, and the special entries that have a value
        (computed only when one of C{prefixes} asks for them at C{depth}).
        """
        shared, mine = target.stored()
        values = dict(shared)
        values.update(mine)
        for entryName, entry in self.entries.items():
            values.pop(entryName, None)
            if not any(below(entryName, prefix, depth) for prefix in prefixes):
                continue
            value = entry.get(self, target)
            if value is not None:
                values[entryName] = value
        return values

    def storedValue(self, target, entryName):
        """
        The stored value of an entry of a target (shared, or the viewer's
        private one), special entries left aside: for those entries.
        """
        shared, mine = target.stored()
        return (shared if isShared(entryName) else mine).get(entryName)

    # -- writing ---------------------------------------------------------------

    def setEntries(self, access, name, pairs):
        """
        SETMETADATA: set (or, for a C{None} value, remove) entries, all or
        none, in the calling thread (for C{gatewayctl} and tests; a
        client's command uses L{setEntriesLater}).

        @param pairs: C{[(entry name, bytes or None)]}.
        @raise InvalidEntryName: for a bad name.
        @raise ValueTooLarge, TooManyEntries, ReadOnlyEntry, InvalidValue:
            and nothing is changed.
        @raise PermissionDenied: C{/shared} server entries are set by the
            administrator only.
        """
        target, plain, special = self._checked(access, name, pairs)
        self._apply(target, plain, special)

    def setEntriesLater(self, access, name, pairs):
        """
        L{setEntries} by the index writer of the target's owner: the
        checks here, the entry files and the index's record of the change
        (and a class change) in one write of the writer, off the reactor
        thread; the listeners are told on the reactor once it is durable.
        If the write does not commit, the entries it changed are put back.

        @return: a L{Deferred} firing once the change is durable, failing
            with what L{setEntries} raises.
        """
        try:
            target, plain, special = self._checked(access, name, pairs)
        except Exception:
            return fail()
        return self._later(target, lambda: self._apply(target, plain, special))

    def _checked(self, access, name, pairs):
        """
        The checks of L{setEntries}.

        @return: the L{Target}, the plain C{(entry, value)} pairs and the
            special ones.
        """
        checked = [(checkEntryName(entry, setting=True), value) for entry, value in pairs]
        for _entry, value in checked:
            if value is not None and len(value) > self.maxValueSize:
                raise ValueTooLarge(self.maxValueSize)
        writing = SHARED if any(isShared(entry) for entry, _ in checked) else PRIVATE
        target = self.target(access, name, writing)
        if target.isServer and writing == SHARED:
            raise PermissionDenied("shared server entries are set by the administrator")
        special = [(entry, value) for entry, value in checked if entry in self.entries]
        plain = [(entry, value) for entry, value in checked if entry not in self.entries]
        for entry, value in special:
            self.entries[entry].check(self, target, value)
        return target, plain, special

    def _apply(self, target, plain, special):
        if plain:
            self._store(target, plain)
        for entry, value in special:
            self.entries[entry].set(self, target, value)

    def _later(self, target, apply):
        """
        Run C{apply()} in one write of the index writer of C{target}'s
        store (at once for a store without one): what it stores (L{_store})
        joins that write (see L{_Batch}).

        @return: a L{Deferred} firing once the write is durable, after the
            listeners were told of the entries it wrote.
        """
        def write(conn, group):
            batch = self._running.batch = _Batch(group)
            if group is not None:
                group.ifRolledBack(batch.undo)
            try:
                apply()
            except BaseException:
                if group is None:
                    batch.undo()
                raise
            finally:
                self._running.batch = None
            return batch.changes

        def told(changes):
            for changed, entries in changes:
                self._changed(changed, entries)
        submit = getattr(target.store, "_write", None)
        d = maybeDeferred(write, None, None) if submit is None else submit(write)
        return d.addCallback(told)

    def _store(self, target, pairs):
        """
        Write plain entries of a target under the folder lock, after
        checking the entry count; in a write of L{_later}, with it.
        """
        batch = getattr(self._running, "batch", None)
        folder = os.path.dirname(target.path)
        with _FolderLock(folder):
            shared, private = readFile(target.path)
            shared, private = dict(shared), {viewer: dict(entries) for viewer, entries in private.items()}
            mine = private.setdefault(target.viewer, {})
            before = len(shared) + len(mine)
            previous = {}
            for entry, value in pairs:
                scope = shared if isShared(entry) else mine
                previous.setdefault(entry, scope.get(entry))
                if value is None:
                    scope.pop(entry, None)
                else:
                    scope[entry] = value
            after = len(shared) + len(mine)
            if after > self.maxEntries and after > before:
                raise TooManyEntries("at most %d entries per mailbox" % (self.maxEntries,))
            if any(value is not None for _, value in pairs) and _size(shared, private) > MAX_FILE_SIZE:
                raise TooManyEntries("the mailbox's entries are at their size limit")
            writeFile(target.path, shared, private)
        entries = [entry for entry, _value in pairs]
        if batch is not None:
            batch.wrote(target, previous, entries)
        record = getattr(target.store, "recordMetadataChange", None)
        if record is not None:
            try:
                record(target.local, entries, target.viewer)
            except Exception:
                # The entries are written; only other processes' NOTIFY
                # sessions miss this change.
                log.err(None, "recording a metadata change for other processes failed")
        if batch is None:
            self._changed(target, entries)

    def recordClass(self, access, name, mailboxClass):
        """
        A mailbox was just created with a class (CREATE ... (XCLASS ...)):
        keep it in its metadata file, so an index rebuild keeps it.  The
        creator needed no right but C{k}, so none is checked here.
        """
        self.storeValue(self._classTarget(access, name), CLASS_ENTRY, mailboxClass.encode("ascii"))

    def recordClassLater(self, access, name, mailboxClass):
        """
        L{recordClass} by the index writer of the mailbox's owner.

        @return: a L{Deferred} firing once it is durable.
        """
        try:
            target = self._classTarget(access, name)
        except Exception:
            return fail()
        return self._later(target, lambda: self.storeValue(target, CLASS_ENTRY, mailboxClass.encode("ascii")))

    def _classTarget(self, access, name):
        location = access.resolve(name)
        store = access.layer.storeOf(location.owner)
        folder = maildir.mailboxPath(store.path, location.name)
        return Target(access, name, location.owner, location.name, store, os.path.join(folder, METADATA_FILE))

    def storeValue(self, target, entryName, value):
        """
        Store one entry as it is (for special entries that keep a value).
        """
        self._store(target, [(entryName, value)])

    def forViewerFolders(self, access):
        """
        The viewer's own mailboxes as targets (for special entries that
        look across folders, such as the default folder of a class).
        """
        store = access.layer.storeOf(access.viewer)
        for name in store.mailboxNames():
            folder = maildir.mailboxPath(store.path, name)
            yield Target(access, name, access.viewer, name, store, os.path.join(folder, METADATA_FILE))
