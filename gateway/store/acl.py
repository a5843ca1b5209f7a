# -*- test-case-name: tests.test_acl -*-
"""
Mailbox access control lists (RFC 4314): the rights algebra, the ACL of one
mailbox as Dovecot's C{dovecot-acl} file (its C{vfile} backend, so a data
root moves to Dovecot and back with its sharing intact), and the shared
index that answers "which mailboxes of which accounts may viewer V see" in
one query.

The rights are the RFC 4314 letters C{lrswipkxtea}.  RFC 2086's C{c} and
C{d} are accepted and mapped as RFC 4314 2.1.1 says for servers that use
C{d} for DELETE (C{RIGHTS=texk}): C{c} is C{k}, C{d} is C{x}, C{t} and
C{e}; answers add C{c} when C{k} is present and C{d} when C{x} is.

An ACL file holds one entry per line, an identifier then the rights in
Dovecot's letter order::

    owner lrwstipekxa
    user=assistant@example.com lrs
    anyone l
    authenticated lr
    -user=intern@example.com w

A leading C{-} makes a negative entry (rights taken away, RFC 4314 2).
Lines that cannot be read (a hand-edited file) are skipped and logged.
"""

import os
import sqlite3
import threading

from gateway import caches, sqlitewal
from gateway.errors import GatewayError
from gateway.logging import getLogger
from gateway.store import index, maildir, rowcache, writer

log = getLogger("store")

#: The rights RFC 4314 defines, in its order.
STANDARD_RIGHTS = "lrswipkxtea"
#: Site-defined rights (RFC 4314 2.1 leaves the digits to servers): C{0}
#: free/busy times and C{1} free/busy with summaries, for XMAPI
#: (docs/xmapi.md, "Rights").  Dovecot keeps them as named rights
#: (C{user=x@y lr:0 1}).
SITE_RIGHTS = "01"
#: Every right, in the order answers to clients use.
RIGHTS = STANDARD_RIGHTS + SITE_RIGHTS
ALL_RIGHTS = frozenset(RIGHTS)
#: Dovecot's order in C{dovecot-acl} (its C{acl_letter_map}).
FILE_ORDER = "lrwstipekxa"
#: RFC 2086 rights and what they stand for (RFC 4314 2.1.1).
OBSOLETE = {"c": "k", "d": "xte"}

ACL_FILE = "dovecot-acl"
#: In the account's mail root: the mailboxes that other identifiers may
#: look up, one name a line (Dovecot's C{dovecot-acl-list}).
ACL_LIST_FILE = "dovecot-acl-list"

ANYONE = "anyone"
AUTHENTICATED = "authenticated"
OWNER = "owner"
USER_PREFIX = "user="


class ACLError(GatewayError):
    """
    An identifier or a rights string is not valid.
    """


def parseRights(text):
    """
    Rights letters as a C{frozenset} (C{c} and C{d} mapped).

    @raise ACLError: for a letter that is not a right.
    """
    rights = set()
    for letter in text:
        if letter in OBSOLETE:
            rights.update(OBSOLETE[letter])
        elif letter in ALL_RIGHTS:
            rights.add(letter)
        else:
            raise ACLError("%r is not a right" % (letter,))
    return frozenset(rights)


def formatRights(rights, order=RIGHTS, obsolete=False):
    """
    Rights as letters in C{order}; with C{obsolete}, C{c} and C{d} are
    added as RFC 4314 2.1.1 asks of answers to clients.
    """
    text = "".join(letter for letter in order if letter in rights)
    if obsolete:
        if "k" in rights:
            text += "c"
        if "x" in rights:
            text += "d"
    return text


def parseIdentifier(text, viewerDomain):
    """
    An IMAP identifier (C{anyone}, C{authenticated}, C{owner},
    C{account@domain}, or a bare account name, which means the viewer's
    domain), with an optional leading C{-}.

    @return: C{(identifier, negative)}, the identifier as the ACL file
        writes it (C{"user=account@domain"}).
    @raise ACLError: for an empty or unusable identifier.
    """
    negative = text.startswith("-")
    if negative:
        text = text[1:]
    name = text.strip().lower()
    if not name or any(ch.isspace() or ch in '"\\\x00' for ch in name):
        raise ACLError("not a valid identifier")
    if name in (ANYONE, AUTHENTICATED, OWNER):
        return name, negative
    if name.startswith(USER_PREFIX):
        name = name[len(USER_PREFIX):]
    if "@" not in name:
        name = "%s@%s" % (name, viewerDomain)
    local, _, domain = name.partition("@")
    if not local or not domain or "@" in domain:
        raise ACLError("not a valid identifier")
    return USER_PREFIX + name, negative


def imapIdentifier(identifier, negative=False):
    """
    The identifier as IMAP shows it (C{user=} dropped).
    """
    if identifier.startswith(USER_PREFIX):
        identifier = identifier[len(USER_PREFIX):]
    return ("-" if negative else "") + identifier


def matches(identifier, viewer, owner):
    """
    Does C{identifier} name C{viewer} (an address, or C{None} for an
    anonymous user) on a mailbox of C{owner}?
    """
    if identifier == ANYONE:
        return True
    if identifier == AUTHENTICATED:
        return viewer is not None
    if identifier == OWNER:
        return viewer is not None and viewer == owner
    return viewer is not None and identifier == USER_PREFIX + viewer


class ACL:
    """
    The ACL of one mailbox: C{{(identifier, negative): rights}}.
    """

    def __init__(self, entries=None):
        self.entries = dict(entries or {})

    def __eq__(self, other):
        return isinstance(other, ACL) and self.entries == other.entries

    def __repr__(self):
        return "<ACL %r>" % (self.entries,)

    def rightsFor(self, viewer, owner):
        """
        The rights of C{viewer} (RFC 4314 2: the union of the positive
        entries that match, minus the union of the negative ones); the
        owner always has every right, so no ACL locks them out.

        @rtype: C{frozenset}
        """
        if viewer is not None and viewer == owner:
            return ALL_RIGHTS
        granted, denied = set(), set()
        for (identifier, negative), rights in self.entries.items():
            if matches(identifier, viewer, owner):
                (denied if negative else granted).update(rights)
        return frozenset(granted - denied)

    def change(self, identifier, negative, rights, mode=""):
        """
        Set (C{mode} C{""}), add (C{"+"}) or remove (C{"-"}) rights of an
        entry; an entry left without rights is removed (RFC 4314 3.1).
        """
        key = (identifier, negative)
        old = self.entries.get(key, frozenset())
        new = old | rights if mode == "+" else old - rights if mode == "-" else frozenset(rights)
        if new:
            self.entries[key] = frozenset(new)
        else:
            self.entries.pop(key, None)

    def delete(self, identifier, negative):
        return self.entries.pop((identifier, negative), None) is not None

    def shared(self):
        """
        Does any entry besides C{owner} give a right?
        """
        return any(not negative and identifier != OWNER and rights
                   for (identifier, negative), rights in self.entries.items())

    def lookupShared(self):
        return any(not negative and identifier != OWNER and "l" in rights
                   for (identifier, negative), rights in self.entries.items())

    def sortedEntries(self):
        """
        C{[(identifier, negative, rights)]}: owner first, then the others
        by name, each positive entry before its negative one.
        """
        def key(item):
            (identifier, negative), _ = item
            kind = 0 if identifier == OWNER else 1 if identifier.startswith(USER_PREFIX) else 2
            return (kind, identifier, negative)
        return [(identifier, negative, rights)
                for (identifier, negative), rights in sorted(self.entries.items(), key=key)]

    # -- the dovecot-acl file --------------------------------------------------

    def toText(self):
        """
        The C{dovecot-acl} text, C{owner} always given every right (the
        owner has them here anyway, and Dovecot then agrees).
        """
        entries = dict(self.entries)
        entries[(OWNER, False)] = frozenset(STANDARD_RIGHTS)
        entries.pop((OWNER, True), None)
        lines = []
        for identifier, negative, rights in ACL(entries).sortedEntries():
            text = formatRights(rights, FILE_ORDER)
            site = formatRights(rights, SITE_RIGHTS)
            if site:
                text += ":" + " ".join(site)
            lines.append(("-" if negative else "") + identifier + " " + text)
        return "\n".join(lines) + "\n"

    @classmethod
    def fromText(cls, text, source="dovecot-acl"):
        """
        Read C{dovecot-acl} text; bad lines are logged and skipped.
        """
        acl = cls()
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                identifier, negative, rights = _parseLine(line)
            except ACLError as e:
                log.warn("{source}:{line}: ignored ({error})", source=source, line=number, error=e)
                continue
            key = (identifier, negative)
            acl.entries[key] = acl.entries.get(key, frozenset()) | rights
        return acl


def _parseLine(line):
    if line.startswith('"'):
        raise ACLError("quoted identifiers are not supported")
    identifier, _, rest = line.partition(" ")
    negative = identifier.startswith("-")
    if negative:
        identifier = identifier[1:]
    rest, _, named = rest.strip().partition(":")
    rights = set(name for name in named.replace(",", " ").split() if name in SITE_RIGHTS)
    if identifier not in (ANYONE, AUTHENTICATED, OWNER) and not (
            identifier.startswith(USER_PREFIX) and len(identifier) > len(USER_PREFIX)):
        raise ACLError("unknown identifier %r" % (identifier[:60],))
    if identifier.startswith(USER_PREFIX):
        identifier = identifier.lower()
    for letter in rest:
        if letter in STANDARD_RIGHTS:
            rights.add(letter)
        elif letter in OBSOLETE:
            rights.update(OBSOLETE[letter])
        elif not letter.isspace():
            raise ACLError("unknown right %r" % (letter,))
    return identifier, negative, frozenset(rights)


def aclPath(mailboxFolder):
    return os.path.join(mailboxFolder, ACL_FILE)


_cache = caches.kept({}, "gateway.store.acl ACLs")


def readACL(mailboxFolder):
    """
    The ACL stored in a mailbox folder (empty when it has no file).  Kept
    in memory while the file's size, mtime and inode stay the same, so an
    access check costs one C{stat}.
    """
    path = aclPath(mailboxFolder)
    try:
        st = os.stat(path)
    except OSError:
        _cache.pop(path, None)
        return ACL()
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    cached = _cache.get(path)
    if cached is not None and cached[0] == stamp:
        return ACL(cached[1].entries)
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ACL()
    acl = ACL.fromText(text, path)
    if len(_cache) > 10000:
        _cache.clear()
    _cache[path] = (stamp, acl)
    return ACL(acl.entries)


def _atomicWrite(path, data):
    temporary = "%s.%d.tmp" % (path, os.getpid())
    with open(temporary, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def writeACL(mailboxFolder, acl):
    """
    Store C{acl} in the folder's C{dovecot-acl} (a temporary file renamed
    into place); an ACL with no entry besides the owner removes the file.
    """
    path = aclPath(mailboxFolder)
    _cache.pop(path, None)
    if not any(identifier != OWNER for identifier, _ in acl.entries):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    _atomicWrite(path, acl.toText().encode("utf-8"))


def writeACLList(mailRoot, names):
    """
    Write Dovecot's C{dovecot-acl-list} (the mailboxes others may look up).
    """
    path = os.path.join(mailRoot, ACL_LIST_FILE)
    if not names:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    _atomicWrite(path, "".join(name + "\n" for name in sorted(names)).encode("utf-8"))


class SharedIndex:
    """
    Which mailboxes of which accounts have entries for others: a cache of
    the C{dovecot-acl} files in one SQLite file at the data root, so that
    LIST of other users' mailboxes asks one query instead of reading every
    account.  Rebuilt from the files (L{rebuild}) when missing.
    """

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS acl (owner TEXT NOT NULL, mailbox TEXT NOT NULL,"
        " identifier TEXT NOT NULL, negative INTEGER NOT NULL, rights TEXT NOT NULL,"
        " PRIMARY KEY (owner, mailbox, identifier, negative))",
        "CREATE INDEX IF NOT EXISTS acl_identifier ON acl (identifier)",
    )

    def __init__(self, path):
        #: The SQLite file, or C{None} for one in memory.
        self.path = path
        self._conn = None
        self._writeConn = None
        self._writing = threading.Lock()
        self._cursor = None
        self._cursorThread = None
        #: The wal-index header of L{conn}'s file (L{rowcache.IndexStamp}),
        #: and C{(its bytes, {viewer: visibleTo's answer})} read under them.
        self._stamp = None
        self._visible = (None, {})

    def _connect(self):
        if self.path is not None:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        conn = sqlite3.connect(self.path or ":memory:", isolation_level=None, timeout=30, check_same_thread=False)
        sqlitewal.useWal(conn)
        for statement in self.SCHEMA:
            conn.execute(statement)
        return conn

    @property
    def conn(self):
        """
        The connection of the reactor thread (reads; and writes in memory).
        """
        if self._conn is None:
            self._conn = self._connect()
            if self.path is not None:
                self._stamp = rowcache.IndexStamp(self.path)
        return self._conn

    def _read(self, sql, parameters):
        """
        The rows of a query on L{conn}.  The thread that reads first (the
        reactor's) reads through one cursor, kept: a connection keeps a
        weak reference to every cursor it made (CPython drops the dead
        ones at every 200th), and those of this process-long connection,
        made during traffic wherever pymalloc had room, stayed in the
        arenas after the sessions ended.  Other threads make a cursor per
        read.
        """
        conn = self.conn
        if self._cursor is None:
            self._cursor, self._cursorThread = conn.cursor(), threading.get_ident()
        if self._cursorThread != threading.get_ident():
            return conn.execute(sql, parameters).fetchall()
        return self._cursor.execute(sql, parameters).fetchall()

    def exists(self):
        return self.path is None or os.path.exists(self.path)

    def close(self):
        with self._writing:
            self._cursor = self._cursorThread = None
            if self._stamp is not None:
                self._stamp.close()
                self._stamp = None
            self._visible = (None, {})
            for conn in (self._conn, self._writeConn):
                if conn is not None:
                    conn.close()
            self._conn = self._writeConn = None

    def runWrite(self, write):
        """
        Run C{write(conn, group)} in one transaction of a connection of its
        own (the same in memory), in the calling thread, one write at a
        time, as L{writer.runNow} does: the folders C{group} was given are
        fsync'd after the commit (before this returns), what it was given
        to undo runs if the write does not commit.  A thread other than the
        reactor's waits here for another process's lock.

        @return: what C{write} returned.
        """
        with self._writing:
            if self.path is None:
                conn = self.conn
            else:
                if self._writeConn is None:
                    self._writeConn = self._connect()
                conn = self._writeConn
            return writer.runNow(conn, write)

    def update(self, owner, mailbox, acl, conn=None):
        """
        Record the ACL of one mailbox (replacing what was known of it).

        @param conn: the connection whose transaction this joins (the
            reactor thread's by default).
        """
        with index.transaction(self.conn if conn is None else conn) as conn:
            conn.execute("DELETE FROM acl WHERE owner = ? AND mailbox = ?", (owner, mailbox))
            if acl.lookupShared():
                conn.executemany(
                    "INSERT INTO acl (owner, mailbox, identifier, negative, rights) VALUES (?, ?, ?, ?, ?)",
                    [(owner, mailbox, identifier, int(negative), formatRights(rights))
                     for (identifier, negative), rights in acl.entries.items() if identifier != OWNER])

    def known(self, owner, mailbox):
        """
        The ACL the index holds for a mailbox.
        """
        rows = self._read("SELECT identifier, negative, rights FROM acl WHERE owner = ? AND mailbox = ?",
                          (owner, mailbox))
        return ACL({(i, bool(n)): frozenset(r) for i, n, r in rows})

    def rename(self, owner, old, new, conn=None):
        low, high = old + "/", old + "0"
        with index.transaction(self.conn if conn is None else conn) as conn:
            conn.execute("DELETE FROM acl WHERE owner = ? AND (mailbox = ? OR (mailbox > ? AND mailbox < ?))",
                         (owner, new, new + "/", new + "0"))
            conn.execute("UPDATE acl SET mailbox = ? || substr(mailbox, ?) WHERE owner = ?"
                         " AND (mailbox = ? OR (mailbox > ? AND mailbox < ?))",
                         (new, len(old) + 1, owner, old, low, high))

    def remove(self, owner, mailbox=None, conn=None):
        """
        Forget a mailbox (or, with C{mailbox=None}, every mailbox of C{owner}).
        """
        conn = self.conn if conn is None else conn
        if mailbox is None:
            conn.execute("DELETE FROM acl WHERE owner = ?", (owner,))
        else:
            conn.execute("DELETE FROM acl WHERE owner = ? AND mailbox = ?", (owner, mailbox))

    def mailboxesOf(self, owner, conn=None):
        """
        The names of C{owner}'s mailboxes that have entries for others.
        """
        query = "SELECT DISTINCT mailbox FROM acl WHERE owner = ? ORDER BY mailbox"
        rows = self._read(query, (owner,)) if conn is None else conn.execute(query, (owner,))
        return [row[0] for row in rows]

    def visibleTo(self, viewer):
        """
        The other accounts' mailboxes C{viewer} has rights on.

        Every LIST asks: the answer is kept while nobody commits to the
        index (its wal-index header, as for an account's mailbox rows).

        @return: C{{(owner, mailbox): rights}} (rights not empty).
        """
        conn = self.conn
        stamp = self._stamp.read() if self._stamp is not None else None
        kept, answers = self._visible
        if stamp is not None and stamp == kept and viewer in answers:
            return dict(answers[viewer])
        result = self._visibleTo(viewer)
        if stamp is not None and not conn.in_transaction:
            if stamp != kept:
                answers = {}
                self._visible = (stamp, answers)
            answers[viewer] = result
        return dict(result)

    def _visibleTo(self, viewer):
        rows = self._read(
            "SELECT a.owner, a.mailbox, a.identifier, a.negative, a.rights FROM acl a"
            " JOIN (SELECT DISTINCT owner, mailbox FROM acl WHERE negative = 0 AND identifier IN (?, ?, ?)) s"
            " ON a.owner = s.owner AND a.mailbox = s.mailbox",
            (ANYONE, AUTHENTICATED, USER_PREFIX + viewer))
        acls = {}
        for owner, mailbox, identifier, negative, rights in rows:
            acls.setdefault((owner, mailbox), ACL()).entries[(identifier, bool(negative))] = frozenset(rights)
        result = {}
        for (owner, mailbox), acl in acls.items():
            if owner == viewer:
                continue
            rights = acl.rightsFor(viewer, owner)
            if rights:
                result[owner, mailbox] = rights
        return result

    def rebuild(self, accounts):
        """
        Read every C{dovecot-acl} file again.

        @param accounts: iterable of C{(owner address, mail root path)}.
        @return: the number of mailboxes with entries for others.
        """
        found = []
        for owner, mailRoot in accounts:
            for top, dirs, files in maildir.walkTree(mailRoot, maxDepth=maildir.MAX_LEVELS):
                dirs[:] = [d for d in dirs if d not in ("cur", "new", "tmp") and not d.startswith(".")]
                if ACL_FILE in files and top != mailRoot:
                    name = os.path.relpath(top, mailRoot).replace(os.sep, "/")
                    acl = readACL(top)
                    if acl.lookupShared():
                        found.append((owner, name, acl))
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM acl")
            for owner, name, acl in found:
                conn.executemany(
                    "INSERT OR REPLACE INTO acl (owner, mailbox, identifier, negative, rights)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [(owner, name, identifier, int(negative), formatRights(rights))
                     for (identifier, negative), rights in acl.entries.items() if identifier != OWNER])
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return len(found)
