# -*- test-case-name: tests.test_store_mail -*-
"""
An account's mail: Maildir folders (one per mailbox, hierarchy separator
C{'/'} as folders, e.g. C{mail/Archive/2024/{cur,new,tmp}}) and one SQLite
index per account (L{gateway.store.index}).

Every public method is synchronous and touches only the index, except
L{Mailbox.openMessage} (opens one file), L{Mailbox.appendMessage} (writes
one), L{Mailbox.appendMessageLater} (writes it in a thread and its index row
through the store's index writer, L{gateway.store.writer}) and
L{Mailbox.synchronize} (a rescan runs in a thread).  The first time
L{MailStore.getMailbox} opens a mailbox that has no index yet (a Maildir
copied in from elsewhere), it starts indexing it in a thread: until
L{Mailbox.synchronize} fires, the mailbox may look incomplete.  A message
added to a calendar mailbox (C{IPF.Appointment}) is also parsed for
free/busy, and its summary written
(L{gateway.store.calendar.summaries.summarizeAdded}).

Creating, deleting, renaming and subscribing (synchronous and through the
index writer) are in L{gateway.store.manage}.

Changes made through this store are announced to the mailbox's listeners on
the next reactor turn; changes by other processes are noticed by a
L{ChangeWatcher} (inotify, or a one-second check) while a mailbox has
listeners.
"""

import functools
import os
import sqlite3
import threading

from twisted.internet.defer import maybeDeferred, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.python import threadable
from zope.interface import implementer

from gateway import stats
from gateway.errors import (
    InvalidMailboxName,
    NoSuchMailbox,
    StoreError,
)
from gateway.interfaces import IAccountChangeFeed, IMailboxInfo, IMailStore
from gateway.logging import getLogger
from gateway.store import (
    acl,
    changes,
    folders,
    index,
    journal,
    maildir,
    metadata,
    names,
    recent,
    redo,
    rowcache,
    scan,
    writer,
)
from gateway.store.mailbox import Mailbox
from gateway.store.manage import DELETING_PREFIX, MailboxManagement, isMailboxClass
from gateway.store.manage import MAILBOX_CLASSES as MAILBOX_CLASSES
from gateway.store.manage import SPECIAL_USES as SPECIAL_USES
from gateway.store.watch import ChangeWatcher

log = getLogger("store")

#: How long adding a message to a calendar waits for the free/busy summary
#: file when a computation is writing to it, in seconds.
SUMMARY_WAIT = 0.05


#: What a new account gets: C{(name, class, special use)}, all subscribed.
DEFAULT_MAILBOXES = (
    ("INBOX", "IPF.Note", None),
    ("Drafts", "IPF.Note", "\\Drafts"),
    ("Sent", "IPF.Note", "\\Sent"),
    ("Deleted Items", "IPF.Note", "\\Trash"),
    ("Junk", "IPF.Note", "\\Junk"),
    ("Calendar", "IPF.Appointment", None),
    ("Contacts", "IPF.Contact", None),
    ("Tasks", "IPF.Task", None),
    ("Notes", "IPF.StickyNote", None),
)




#: The ACLs default mailboxes start with (C{dovecot-acl} text).  Anyone may
#: post into Calendar: the MTA delivers invitations sent to
#: C{name+Calendar@domain} there only with the C{p} right (RFC 4314), as
#: Cyrus does for C{+detail} delivery; the owner can take it away.
DEFAULT_ACLS = {"Calendar": "anyone p\n"}

#: What L{MailStore.listMailboxes} reads of every mailbox.
_LIST_ROWS = "SELECT name, class, specialuse, selectable FROM mailboxes ORDER BY name"


def _inReactorThread():
    """
    Is the calling thread the reactor's (before any reactor ran: the main
    thread)?
    """
    if threadable.ioThread is None:
        return threading.current_thread() is threading.main_thread()
    return threadable.isInIOThread()


@implementer(IMailboxInfo)
class MailboxInfo:
    def __init__(self, name, mailboxClass, specialUse, hasChildren, selectable):
        self.name = name
        self.mailboxClass = mailboxClass
        self.specialUse = specialUse
        self.hasChildren = hasChildren
        self.selectable = selectable

    def __repr__(self):
        return "<MailboxInfo %r>" % (self.name,)


def _countTemporary(conn, mailboxId, key, kept):
    """
    Record in the index what stays in a mailbox's C{tmp/} (meta key
    C{key}: C{tmp:<mailbox id>}), which the account's usage counts, unless
    the mailbox was deleted meanwhile.
    """
    if kept and conn.execute("SELECT 1 FROM mailboxes WHERE id = ?", (mailboxId,)).fetchone():
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, kept))
    else:
        conn.execute("DELETE FROM meta WHERE key = ?", (key,))


def _usage(conn):
    # The messages, and what stays in tmp/ folders (_recoverTemporary).
    return conn.execute(
        "SELECT COALESCE(SUM(value), 0) FROM meta WHERE key = 'usage' OR key GLOB 'tmp:*'").fetchone()[0]


def indexedUsage(indexPath):
    """
    L{MailStore.usage} of the account whose index is at C{indexPath},
    without its store: read through a connection of its own.
    """
    conn = index.connect(indexPath)
    try:
        return _usage(conn)
    finally:
        conn.close()


@implementer(IMailStore, IAccountChangeFeed)
class MailStore(MailboxManagement):
    """
    All mailboxes of one account.

    @param path: the account's C{mail/} folder (created if missing).
    @param quota: an L{IQuota} or C{None}.
    @param reactor: for notifications and threads (the global one if C{None}).
    @param useInotify: C{False} to always poll for other processes' changes.
    @ivar closed: C{True} once L{close} ran: the realm then builds the
        account again rather than hand this store out.
    """

    closed = False

    def __init__(self, path, quota=None, reactor=None, useInotify=True):
        if reactor is None:
            from twisted.internet import reactor
        #: Opened outside the reactor's thread (the realm opens an
        #: account's store in the thread pool at login): the opening may
        #: wait for the index's lock, and writes at once rather than
        #: through the index writer.  See L{handOver}.
        self._mayWait = not _inReactorThread()
        self.path = os.path.abspath(path)
        self.quota = quota
        self._reactor = reactor
        self._useInotify = useInotify
        os.makedirs(self.path, exist_ok=True)
        self.indexPath = os.path.join(self.path, maildir.INDEX_NAME)
        self._ownerThread = threading.get_ident()
        self._ownConn = index.connect(self.indexPath)
        self._mailboxRows = rowcache.MailboxRows(self._ownConn, rowcache.IndexStamp(self.indexPath))
        index.keepReserve(self.indexPath)
        self._threadConns = threading.local()
        self.recentClaims = recent.RecentClaims(self.indexPath)
        self._mailboxes = {}
        self._summaries = None
        self._summariesLock = threading.Lock()
        self._watcher = None
        self._watched = set()
        self._writer = None
        self._discovering = False
        #: The group of a write run by writer.runNow (see _currentGroup).
        self.current = None
        self._accountChanges = None
        self._folders = folders.FolderListing(self.path)
        self._removeDeleting()
        if self._conn.execute("SELECT COUNT(*) FROM mailboxes").fetchone()[0] == 0:
            self._initialize()
        journal.recoverJournals(self._conn, self.path)
        scan.distrustFoldersAfterBoot(self._conn, root=self.path)
        self._recovered = set()
        for mailboxId, name in self._conn.execute("SELECT id, name FROM mailboxes WHERE selectable").fetchall():
            self._recoverTemporary(mailboxId, maildir.mailboxPath(self.path, name))
        self._mayWait = False

    def handOver(self):
        """
        The store was opened in another thread (the realm's opening in the
        thread pool, which may wait for another process's lock on the
        index): from now on the calling thread (the reactor's) is the one
        whose connection is the store's own (see L{_conn}).  Call before
        anything else uses the store.
        """
        self._ownerThread = threading.get_ident()

    @property
    def _conn(self):
        """
        The index connection for the calling thread: the store's own in the
        thread that made it (the reactor's), else one per thread, so that a
        computation in a worker thread (free/busy) never runs inside a
        transaction of the reactor thread, or the reverse.
        """
        if threading.get_ident() == self._ownerThread:
            return self._ownConn
        conn = getattr(self._threadConns, "conn", None)
        if conn is None:
            conn = self._threadConns.conn = index.connect(self.indexPath)
        return conn

    def mailboxRow(self, mailboxId, columns):
        """
        The C{columns} of mailbox C{mailboxId}'s row in the index (C{None}
        if it has none): in the reactor thread from L{rowcache.MailboxRows}
        while nobody committed since they were read.
        """
        if threading.get_ident() == self._ownerThread:
            return self._mailboxRows.row(mailboxId, columns)
        return self._conn.execute("SELECT %s FROM mailboxes WHERE id = ?" % (columns,), (mailboxId,)).fetchone()

    def indexStamp(self):
        """
        In the reactor thread, the index's stamp now (see
        L{rowcache.MailboxRows.stamp}): an answer read under it stands while
        it does.  C{None} elsewhere, or when no answer may be kept.
        """
        if threading.get_ident() == self._ownerThread:
            return self._mailboxRows.stamp()
        return None

    def _mailboxNamed(self, name):
        """
        C{(id, selectable, indexed)} of the mailbox called C{name} in the
        index, or C{None}; in the reactor thread as L{mailboxRow}.
        """
        if threading.get_ident() == self._ownerThread:
            return self._mailboxRows.named(name)
        return self._conn.execute(rowcache.NAMED, (name,)).fetchone()

    # -- setup ---------------------------------------------------------------

    def _initialize(self):
        """
        A new account (or a lost index): register the folders found on disk
        and create the default mailboxes.
        """
        with index.transaction(self._conn):
            if self._conn.execute("SELECT COUNT(*) FROM mailboxes").fetchone()[0]:
                return
            for name, mailboxClass, specialUse in DEFAULT_MAILBOXES:
                mailboxClass = self._storedClass(name) or mailboxClass
                self._insertMailbox(name, mailboxClass, specialUse)
                self._conn.execute("INSERT OR IGNORE INTO subscriptions (name) VALUES (?)", (name,))
                folder = maildir.mailboxPath(self.path, name)
                maildir.ensureMaildir(folder)
                if name in DEFAULT_ACLS and not os.path.exists(acl.aclPath(folder)):
                    acl.writeACL(folder, acl.ACL.fromText(DEFAULT_ACLS[name]))
        self._discover()

    def _removeDeleting(self):
        for name in os.listdir(self.path):
            if name.startswith(DELETING_PREFIX):
                maildir.removeTree(os.path.join(self.path, name))

    def _insertMailbox(self, name, mailboxClass="IPF.Note", specialUse=None, selectable=True, indexed=False):
        uidValidity = index.newUidValidity(self._conn)
        cursor = self._conn.execute(
            "INSERT INTO mailboxes (name, uidvalidity, class, specialuse, selectable, indexed)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (name, uidValidity, mailboxClass, specialUse, int(selectable), int(indexed)))
        return cursor.lastrowid

    def _diskMailboxes(self):
        """
        @return: C{{name: isMaildir}} for the folders on disk.
        """
        return self._folders.mailboxes()

    def _discover(self, known=None):
        """
        Bring the mailbox list in line with the folders on disk: register
        Maildirs copied in by other programs (indexed on first open), forget
        mailboxes whose folder was removed.  On the thread of a running
        reactor it never waits for the index's lock: when a writer holds
        it (this process's group, another worker's, another program), the
        index writer registers the change and the index answers as it
        stands meanwhile (a folder whose CREATE or DELETE is being
        committed is listed as the committed index says).

        @param known: the names of the index's mailboxes, read by the
            caller just now, or C{None} to read them.
        @return: whether the folders and the index differed.
        """
        disk, added, gone = self._differences(known)
        if not added and not gone:
            return False
        if (self._mayWait or threading.get_ident() != self._ownerThread or self._conn.in_transaction
                or not getattr(self._reactor, "running", False)):
            with index.transaction(self._conn):
                self._register(disk, added, gone)
            return True
        previous = self._conn.execute("PRAGMA busy_timeout").fetchone()[0]
        self._conn.execute("PRAGMA busy_timeout = 0")
        try:
            with index.transaction(self._conn):
                self._register(disk, added, gone)
        except sqlite3.OperationalError as e:
            if getattr(e, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY:
                raise
            self._discoverLater()
        finally:
            self._conn.execute("PRAGMA busy_timeout = %d" % (previous,))
        return True

    def _discoverLater(self):
        """
        L{_discover} by the index writer (once at a time).
        """
        if self._discovering:
            return
        self._discovering = True

        def register(conn, group):
            disk, added, gone = self._differences()
            self._register(disk, added, gone)

        def done(result):
            self._discovering = False
            return result
        self._write(register).addBoth(done).addErrback(
            lambda failure: log.failure("Registering the mailbox folders failed", failure))

    def _differences(self, known=None):
        """
        @param known: the names of the index's mailboxes (any iterable), or
            C{None} to read them.
        @return: C{(disk, added, gone)}: the folders on disk (see
            L{_diskMailboxes}), and the names the index lacks and those
            it has that are not on disk.
        """
        disk = self._diskMailboxes()
        if known is None:
            known = [row[0] for row in self._conn.execute("SELECT name FROM mailboxes")]
        known = dict.fromkeys(known)
        added = [name for name in disk if name not in known]
        gone = [name for name in known if name not in disk and name != "INBOX"]
        return disk, added, gone

    def _register(self, disk, added, gone):
        """
        Inside a transaction: what L{_discover} found, checked again.
        """
        for name in gone:
            if os.path.isdir(maildir.mailboxPath(self.path, name)):
                continue
            self._dropMailboxRows(name)
        for name in sorted(added):
            if self._conn.execute("SELECT 1 FROM mailboxes WHERE name = ?", (name,)).fetchone():
                continue
            parent = maildir.parentNames(name)
            mailboxClass = "IPF.Note"
            if parent:
                row = self._conn.execute("SELECT class FROM mailboxes WHERE name = ?",
                                         (parent[-1],)).fetchone()
                mailboxClass = row[0] if row else mailboxClass
            default = [d for d in DEFAULT_MAILBOXES if d[0] == name]
            specialUse = None
            if default:
                mailboxClass, specialUse = default[0][1], default[0][2]
            mailboxClass = self._storedClass(name) or mailboxClass
            self._insertMailbox(name, mailboxClass, specialUse, selectable=disk[name])

    def _storedClass(self, name):
        """
        The class kept in the mailbox's metadata file (what SETMETADATA or
        CREATE ... (XCLASS) set), which survives an index rebuild.
        """
        return metadata.storedClass(maildir.mailboxPath(self.path, name), metadata.CLASS_ENTRY)

    def _dropMailboxRows(self, name):
        row = self._conn.execute("SELECT id FROM mailboxes WHERE name = ?", (name,)).fetchone()
        if row is None:
            return
        mailboxId = row[0]
        used = self._conn.execute("SELECT COALESCE(SUM(rawsize), 0) FROM messages WHERE mailbox = ?",
                                  (mailboxId,)).fetchone()[0]
        index.addUsage(self._conn, -used)
        self._conn.execute("DELETE FROM messages WHERE mailbox = ?", (mailboxId,))
        self._conn.execute("DELETE FROM expunged WHERE mailbox = ?", (mailboxId,))
        self._conn.execute("DELETE FROM mailboxes WHERE id = ?", (mailboxId,))
        self._conn.execute("DELETE FROM meta WHERE key = ?", ("tmp:%d" % (mailboxId,),))
        self._forgetMailbox(mailboxId)

    def _forgetMailbox(self, mailboxId):
        """
        Mailbox C{mailboxId} was deleted: its L{Mailbox} (if open) is told
        so and dropped; in the index writer, on the reactor thread once
        the deletion is durable.
        """
        group = self._currentGroup()
        if group is not None:
            group.onReactor(self._forgetMailbox, mailboxId)
            return
        mailbox = self._mailboxes.pop(mailboxId, None)
        if mailbox is not None:
            mailbox._forget()

    # -- IMailStore ----------------------------------------------------------

    def listMailboxes(self):
        # The index's rows are read first, and their names compared with
        # the folders: read again only if that registered or forgot one.
        rows = self._conn.execute(_LIST_ROWS).fetchall()
        if self._discover(row[0] for row in rows):
            rows = self._conn.execute(_LIST_ROWS).fetchall()
        names = [row[0] for row in rows]
        parents = set()
        for name in names:
            parents.update(maildir.parentNames(name))
        return [MailboxInfo(name, mailboxClass, specialUse, name in parents, bool(selectable))
                for name, mailboxClass, specialUse, selectable in rows]

    def getMailbox(self, name):
        try:
            name = maildir.canonicalName(name)
        except InvalidMailboxName:
            raise NoSuchMailbox(name)
        row = self._mailboxNamed(name)
        if row is None:
            if not maildir.isMaildir(maildir.mailboxPath(self.path, name)):
                raise NoSuchMailbox(name)
            self._discover()
            row = self._mailboxNamed(name)
            if row is None:
                raise NoSuchMailbox(name)
        mailboxId, selectable, indexed = row
        if not selectable:
            raise NoSuchMailbox(name)
        mailbox = self._mailboxes.get(mailboxId)
        if mailbox is None:
            if mailboxId not in self._recovered:
                self._recoverTemporary(mailboxId, maildir.mailboxPath(self.path, name))
            mailbox = self._mailboxes[mailboxId] = Mailbox(self, mailboxId)
        if not indexed and not mailbox._scanning:
            # First open of a Maildir nobody indexed yet (copied in by
            # another tool): indexed in the thread pool; synchronize()
            # fires when it is done.
            mailbox.synchronize().addErrback(changes.syncFailed, name)
        return mailbox

    def _recoverTemporary(self, mailboxId, path):
        """
        When the store opens (for every mailbox) or first opens a mailbox
        it did not know then: clear its C{tmp/} of left-overs
        (L{journal.recoverTemporary}) and count in the usage what stays there
        (meta key C{tmp:<mailbox id>}).
        """
        self._recovered.add(mailboxId)
        journal.recoverJournals(self._conn, self.path)
        kept = journal.recoverTemporary(self._conn, mailboxId, path)
        key = "tmp:%d" % (mailboxId,)
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if (row[0] if row else 0) != kept and self._mayWait:
            # Opening in the thread pool: at once.
            with index.transaction(self._conn):
                _countTemporary(self._conn, mailboxId, key, kept)
        elif (row[0] if row else 0) != kept:
            # By the index writer (at once without threads): the reactor
            # does not wait for the index's lock to count a few octets.
            self._write(lambda conn, group: _countTemporary(conn, mailboxId, key, kept)).addErrback(
                lambda failure: log.failure("Counting what stays in a tmp/ folder failed", failure))

    def hasMailbox(self, name):
        """
        Is there a mailbox C{name}, selectable or not (a C{\\Noselect}
        level has entries too)?
        """
        try:
            name = maildir.canonicalName(name)
        except InvalidMailboxName:
            return False
        if self._conn.execute("SELECT 1 FROM mailboxes WHERE name = ?", (name,)).fetchone():
            return True
        try:
            self.getMailbox(name)  # a Maildir another program made
        except NoSuchMailbox:
            return False
        return True

    def mailboxNames(self):
        """
        The names of the mailboxes the index knows, sorted (no look at the
        folders, unlike L{listMailboxes}).
        """
        return [row[0] for row in self._conn.execute("SELECT name FROM mailboxes ORDER BY name")]

    def mailboxClassOf(self, name):
        """
        The class of mailbox C{name} (canonical), or C{None} when there is
        no such mailbox.
        """
        row = self._conn.execute("SELECT class FROM mailboxes WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def setMailboxClass(self, name, mailboxClass):
        """
        Change the class of mailbox C{name} in the index (the caller keeps
        it in the mailbox's metadata file too, for rebuilds).
        """
        if not isMailboxClass(mailboxClass):
            raise StoreError("unknown mailbox class %r" % (mailboxClass,))
        with index.transaction(self._conn):
            if not self._conn.execute("UPDATE mailboxes SET class = ? WHERE name = ?",
                                      (mailboxClass, name)).rowcount:
                raise NoSuchMailbox(name)

    def assignMailboxIdsLater(self):
        """
        Give every selectable mailbox that has no MAILBOXID yet one
        (L{metadata.mailboxId}), in the thread pool: then LIST ... RETURN
        (STATUS (MAILBOXID)) writes none on the reactor thread.  A mailbox
        that cannot get one now (a full disk, a folder gone) is left out.

        @return: a L{Deferred} firing with C{None} when done.
        """
        folders = [maildir.mailboxPath(self.path, name)
                   for (name,) in self._conn.execute("SELECT name FROM mailboxes WHERE selectable")]
        missing = [folder for folder in folders if metadata.knownMailboxId(folder) is None]
        if not missing:
            return succeed(None)

        def assign():
            for folder in missing:
                try:
                    metadata.mailboxId(folder)
                except OSError:
                    pass  # answered (or refused) as before, when asked
        return self._deferToThread(assign)

    def subscriptions(self):
        return [row[0] for row in self._conn.execute("SELECT name FROM subscriptions ORDER BY name")]

    def usage(self):
        return _usage(self._conn)

    def usageReader(self):
        """
        A callable that gives what L{usage} gives without this store (for
        a quota that outlives it: L{gateway.cred.realm.AccountQuota}).
        """
        return functools.partial(indexedUsage, self.indexPath)

    # -- other ---------------------------------------------------------------

    def close(self):
        """
        Stop watching and close the index (for tests and shutdown).
        """
        self.closed = True
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._summaries is not None:
            self._summaries.close()
            self._summaries = None
        for mailbox in self._mailboxes.values():
            if mailbox._notifyCall is not None and mailbox._notifyCall.active():
                mailbox._notifyCall.cancel()
        if self._accountChanges is not None and self._accountChanges._call is not None \
                and self._accountChanges._call.active():
            self._accountChanges._call.cancel()
        self.recentClaims.close()
        # Before the connection: the stamp maps SQLite's wal-index.
        self._mailboxRows.close()
        self._ownConn.close()
        # The pool threads' connections: closed as each is let go (a thread
        # may be using its own right now: never closed from here).
        self._threadConns = threading.local()

    def _added(self, mailbox, uids, source=None):
        """
        Messages were added to C{mailbox}: when it is a calendar, summarize
        them for free/busy now (see
        L{gateway.store.calendar.summaries.summarizeAdded}, which says what
        C{uids} and C{source} are), so that no free/busy request has to parse
        them.  The summaries are a cache: a failure is logged, and the
        message is parsed when free/busy needs it.
        """
        from gateway.store.calendar import summaries
        from gateway.store.calendar.parse import isCalendarClass

        group = self._currentGroup()
        if group is not None:
            # In the index writer: once the messages are durable, on the
            # reactor thread.
            group.onReactor(self._added, mailbox, uids, source)
            return
        try:
            if not isCalendarClass(mailbox.mailboxClass):
                return
            with self._summariesLock:
                self._summaries = summaries.SummaryStore.reopened(self._summaries, self, timeout=SUMMARY_WAIT)
                summaries.summarizeAdded(self._summaries, mailbox, uids, source)
        except sqlite3.OperationalError as e:
            # Busy (a free/busy computation is writing): not worth holding
            # up the reactor for; the request parses these messages.
            log.info("Calendar messages left unsummarized in {mailbox}: {error}", mailbox=mailbox.name, error=e)
        except Exception:
            log.failure("Summarizing calendar messages for free/busy failed")

    def _write(self, write, makesRoom=False, before=None):
        """
        Run C{write(conn, group)} in the index writer's next group (see
        L{gateway.store.writer}); a reactor without threads (a
        C{task.Clock} in tests) runs it at once in a transaction of its own.

        @param makesRoom: see L{writer.IndexWriter.submit}.
        @param before: see L{writer.IndexWriter.submit}; C{write} must do
            what it does, if not done yet (without threads it is not
            called).
        @return: a L{Deferred} firing with its result once it is durable.
        """
        if not hasattr(self._reactor, "callFromThread") or not hasattr(self._reactor, "getThreadPool"):
            if makesRoom:
                return maybeDeferred(index.roomPermitting, self._conn, writer.runNow, self._conn, write, self)
            return maybeDeferred(writer.runNow, self._conn, write, self)
        if self._writer is None:
            # Its connection is the store's own for its thread: the store's
            # methods a write calls read inside the group's transaction.
            self._writer = writer.IndexWriter(self.indexPath, self._reactor, connect=lambda: self._conn)
            # Rows a process left (killed, or closed before its checkpoint):
            # what they name was done before they committed.
            left = redo.newest(self._conn)
            if left is not None:
                redo.checkpointer.note(self.indexPath, left)
        return self._writer.submit(write, makesRoom, before)

    def _currentGroup(self):
        """
        The L{writer.WriteGroup} being written when called from the index
        writer's thread (or inside L{writer.runNow} in the reactor thread,
        with a reactor without threads), else C{None}.
        """
        if self._writer is not None and self._writer.inWriter():
            return self._writer.current
        if self.current is not None and threading.get_ident() == self._ownerThread:
            return self.current
        return None

    def _unsyncedGroup(self):
        """
        The L{writer.WriteGroup} being written when called from the index
        writer's thread, else C{None}: a write there may leave the message
        files it changes unsynced, recorded in the index
        (L{gateway.store.redo}); elsewhere, or where no replay could be
        made (L{redo.usable}), it syncs them (L{_syncFolder}).
        """
        if self._writer is not None and self._writer.inWriter() and redo.usable():
            return self._writer.current
        return None

    def _syncFolder(self, path):
        """
        Make the entries of folder C{path} durable: with the index writer's
        group (once for all its writes) when called from it, else now.
        """
        group = self._currentGroup()
        if group is None:
            maildir.fsyncDirectory(path)
        else:
            group.syncFolder(path)

    def _scanInThread(self, mailboxId, path, names=None):
        stats.count("index_rescans", scope="full" if names is None else "names")
        conn = index.connect(self.indexPath)
        try:
            return scan.scanMailbox(conn, mailboxId, path, names)
        finally:
            conn.close()

    def _deferToThread(self, f, *args):
        """
        Run C{f} in the reactor's thread pool; a reactor without one (a
        C{task.Clock} in tests) runs it at once.
        """
        if not hasattr(self._reactor, "getThreadPool"):
            return maybeDeferred(f, *args)
        return deferToThreadPool(self._reactor, self._reactor.getThreadPool(), f, *args)

    def _startWatching(self, mailbox):
        if self._watcher is None:
            self._watcher = ChangeWatcher(self._reactor, self.path, self._checkExternal,
                                          useInotify=self._useInotify)
        self._watched.add(mailbox)
        self._watcher.addMailbox(mailbox._path())
        self._watcher.start()

    def _stopWatching(self, mailbox, path):
        self._watched.discard(mailbox)
        if self._watcher is None:
            return
        self._watcher.removeMailbox(path)
        if not self._watched and not self._accountListening():
            self._watcher.stop()

    # -- account-level changes (gateway.store.names) ---------------------------

    def addAccountListener(self, callback):
        """
        Call C{callback(changes)} after mailboxes are created, deleted or
        renamed and after subscriptions change, here or in another process
        (see L{gateway.store.names}).

        @return: a no-argument callable that removes the listener.
        """
        if self._accountChanges is None:
            self._accountChanges = names.AccountChanges(self)
        remove = self._accountChanges.addListener(callback)
        if self._watcher is None:
            self._watcher = ChangeWatcher(self._reactor, self.path, self._checkExternal,
                                          useInotify=self._useInotify)
        self._watcher.start()

        def stop():
            remove()
            if self._watcher is not None and not self._watched and not self._accountListening():
                self._watcher.stop()
        return stop

    def recordMetadataChange(self, local, entries, viewer):
        """
        Metadata entries of mailbox C{local} (C{None}: the account's
        server entries) were written: tell other processes' account
        listeners (L{gateway.store.names.recordMetadataChange}).
        """
        with index.transaction(self._conn):
            names.recordMetadataChange(self._conn, local, entries, viewer)

    def inUse(self):
        """
        Does a session use this store beyond its account (a mailbox with
        listeners: selected here or as another account's shared mailbox,
        whose session holds only this store; or account listeners)?  The
        realm keeps such an account however long it is idle.
        """
        return bool(self._watched) or self._accountListening()

    def _accountListening(self):
        return self._accountChanges is not None and self._accountChanges.listening

    def _accountChanged(self):
        group = self._currentGroup()
        if group is not None:
            # In the index writer: once the change is durable.
            group.onReactor(self._accountChanged)
            return
        if self._accountChanges is not None:
            self._accountChanges.changed()

    def _watchedSince(self, mailbox):
        """
        @return: since when inotify reports every change to C{mailbox}'s
            folders (L{ChangeWatcher.watchedSince}), or C{None}.
        """
        if self._watcher is None or mailbox not in self._watched or mailbox._watchedPath is None:
            return None
        return self._watcher.watchedSince(mailbox._watchedPath)

    def _checkExternal(self):
        events, overflowed = self._watcher.takeEvents() if self._watcher is not None else ({}, False)
        if self._accountChanges is not None:
            self._accountChanges.poll()
        for mailbox in list(self._watched):
            names = []
            for sub in ("new", "cur"):
                for name in events.get(os.path.join(mailbox._watchedPath, sub), ()):
                    names.append((sub, name))
            mailbox._poll(names, overflowed)
