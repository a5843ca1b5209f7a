# -*- test-case-name: tests.test_store_manage -*-
"""
Mailbox management of an account's L{gateway.store.mail.MailStore}:
CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE, each in a synchronous
form (ctl, tests, the other front-ends) and a C{*Later} form that the index
writer (L{gateway.store.writer}) runs off the reactor thread, its
L{Deferred} firing once the change is durable.  Split from
L{gateway.store.mail}.

Run by the writer, a change tells the account listeners
(L{gateway.store.names}) and drops a deleted mailbox's L{Mailbox} on the
reactor thread once it is durable, renames a folder it moved back if the
group does not commit, and removes a deleted mailbox's folder in the thread
pool afterwards.
"""

import os

from twisted.internet.defer import maybeDeferred

from gateway.errors import InvalidMailboxName, MailboxExists, MailboxHasChildren, NoSuchMailbox, StoreError
from gateway.store import index, maildir, metadata, names, properties

MAILBOX_CLASSES = ("IPF.Note", "IPF.Appointment", "IPF.Contact", "IPF.Task", "IPF.StickyNote", "IPF.Journal")
SPECIAL_USES = ("\\Drafts", "\\Sent", "\\Trash", "\\Junk", "\\Archive", "\\All", "\\Flagged")

#: Prefix of a folder being deleted (renamed out of the way first).
DELETING_PREFIX = ".gateway-deleting-"


def isMailboxClass(mailboxClass):
    """
    Is C{mailboxClass} one of L{MAILBOX_CLASSES} or a sub-class of one
    (C{IPF.Appointment.Birthday})?  (Which sub-class names are valid is
    for L{gateway.mapi.classes}; the store only keeps them.)
    """
    return any(mailboxClass == base or mailboxClass.startswith(base + ".") for base in MAILBOX_CLASSES)


def _childRange(name):
    """
    SQL range bounds matching the names below C{name} (C{'/'} + 1 is C{'0'}).
    """
    return name + "/", name + "0"


def _removeTrees(folders):
    for folder in folders:
        maildir.removeTree(folder)


class MailboxManagement:
    """
    The mailbox management methods of L{gateway.store.mail.MailStore}
    (which provides C{_conn}, C{_write}, C{_currentGroup},
    C{_accountChanged}, C{_insertMailbox}, C{_dropMailboxRows},
    C{_forgetMailbox}, C{_deferToThread} and C{getMailbox}).
    """

    def createMailbox(self, name, mailboxClass="IPF.Note", specialUse=None):
        if self._createMailbox(name, mailboxClass, specialUse):
            raise MailboxExists(name)

    def createMailboxLater(self, name, mailboxClass="IPF.Note", specialUse=None):
        """
        L{createMailbox} by the index writer.

        @return: a L{Deferred} firing once the new mailbox is durable.
        """
        def created(existed):
            if existed:
                raise MailboxExists(name)
        return self._write(lambda conn, group: self._createMailbox(name, mailboxClass, specialUse)).addCallback(
            created)

    def _createMailbox(self, name, mailboxClass, specialUse):
        """
        L{createMailbox}, but for a Maildir another program made, which it
        registers, it returns C{True} rather than raise L{MailboxExists}
        (so that the registration is kept by the index writer, which undoes
        a write that raises).
        """
        name = maildir.canonicalName(name)
        maildir.checkNameLimits(self.path, name)
        if not isMailboxClass(mailboxClass):
            raise StoreError("unknown mailbox class %r" % (mailboxClass,))
        if specialUse is not None and specialUse not in SPECIAL_USES:
            raise StoreError("unknown special use %r" % (specialUse,))
        path = maildir.mailboxPath(self.path, name)
        with index.transaction(self._conn):
            row = self._conn.execute("SELECT id, selectable FROM mailboxes WHERE name = ?",
                                     (name,)).fetchone()
            if row is not None and row[1]:
                raise MailboxExists(name)
            names.bumpGeneration(self._conn)
            if row is None and maildir.isMaildir(path):
                self._insertMailbox(name, mailboxClass, specialUse)
                raiseExists = True
            else:
                raiseExists = False
                self._createParents(name, mailboxClass)
                if row is not None:
                    # An unselectable folder becomes a mailbox again.
                    self._conn.execute(
                        "UPDATE mailboxes SET selectable = 1, uidvalidity = ?, class = ?, specialuse = ?,"
                        " indexed = 0 WHERE id = ?",
                        (index.newUidValidity(self._conn), mailboxClass, specialUse, row[0]))
                else:
                    self._insertMailbox(name, mailboxClass, specialUse)
                maildir.ensureMaildir(path)
        self._accountChanged()
        return raiseExists

    def _createParents(self, name, mailboxClass):
        for parent in maildir.parentNames(name):
            if not self._conn.execute("SELECT 1 FROM mailboxes WHERE name = ?", (parent,)).fetchone():
                self._insertMailbox(parent, mailboxClass)
                maildir.ensureMaildir(maildir.mailboxPath(self.path, parent))

    def deleteMailbox(self, name):
        name = maildir.canonicalName(name)
        if name == "INBOX":
            raise InvalidMailboxName("INBOX cannot be deleted")
        path = maildir.mailboxPath(self.path, name)
        low, high = _childRange(name)
        trash = []
        with index.transaction(self._conn):
            row = self._conn.execute("SELECT id, selectable FROM mailboxes WHERE name = ?",
                                     (name,)).fetchone()
            if row is None:
                raise NoSuchMailbox(name)
            mailboxId, selectable = row
            names.bumpGeneration(self._conn)
            hasChildren = self._conn.execute(
                "SELECT 1 FROM mailboxes WHERE name > ? AND name < ? LIMIT 1", (low, high)).fetchone()
            if hasChildren:
                if not selectable:
                    raise MailboxHasChildren(name)
                used = self._conn.execute(
                    "SELECT COALESCE(SUM(rawsize), 0) FROM messages WHERE mailbox = ?",
                    (mailboxId,)).fetchone()[0]
                index.addUsage(self._conn, -used)
                self._conn.execute("DELETE FROM messages WHERE mailbox = ?", (mailboxId,))
                self._conn.execute("DELETE FROM expunged WHERE mailbox = ?", (mailboxId,))
                self._conn.execute("UPDATE mailboxes SET selectable = 0 WHERE id = ?", (mailboxId,))
                index.bumpModSeq(self._conn, mailboxId)  # its messages are gone (see Mailbox.uids)
                for sub in maildir.SUBDIRS:
                    trash.append(self._moveAside(os.path.join(path, sub)))
                metadata.forget(path)
                maildir.removeQuietly(os.path.join(path, properties.PROPERTIES_FILE))
                self._forgetMailbox(mailboxId)
            else:
                self._dropMailboxRows(name)
                trash.append(self._moveAside(path))
        self._accountChanged()
        trash = [folder for folder in trash if folder is not None]
        group = self._currentGroup()
        if group is None:
            _removeTrees(trash)
        else:
            # In the index writer: removed once the deletion is durable,
            # in the thread pool (a large mailbox takes a while, and the
            # writer holds the account's other writes meanwhile).
            group.onReactor(self._deferToThread, _removeTrees, trash)

    def deleteMailboxLater(self, name):
        """
        L{deleteMailbox} by the index writer.

        @return: a L{Deferred} firing once the deletion is durable.
        """
        return self._write(lambda conn, group: self.deleteMailbox(name))

    def _moveAside(self, folder):
        """
        Rename a folder out of the way (atomically) before removing it; in
        the index writer, renamed back if the group does not commit.
        """
        target = os.path.join(self.path, DELETING_PREFIX + os.urandom(8).hex())
        try:
            os.rename(folder, target)
        except FileNotFoundError:
            return None
        group = self._currentGroup()
        if group is not None:
            group.ifRolledBack(os.rename, target, folder)
        return target

    def renameMailbox(self, oldName, newName):
        oldName = maildir.canonicalName(oldName)
        newName = maildir.canonicalName(newName)
        if newName == oldName or newName.startswith(oldName + "/"):
            raise InvalidMailboxName("cannot rename %r to %r" % (oldName, newName))
        maildir.checkNameLimits(self.path, newName)
        for (child,) in self._conn.execute("SELECT name FROM mailboxes WHERE name > ? AND name < ?",
                                           _childRange(oldName)).fetchall():
            maildir.checkNameLimits(self.path, newName + child[len(oldName):])
        if oldName == "INBOX":
            return self._renameInbox(newName)
        oldPath = maildir.mailboxPath(self.path, oldName)
        newPath = maildir.mailboxPath(self.path, newName)
        low, high = _childRange(oldName)
        with index.transaction(self._conn):
            row = self._conn.execute("SELECT class FROM mailboxes WHERE name = ?", (oldName,)).fetchone()
            if row is None:
                raise NoSuchMailbox(oldName)
            if self._conn.execute("SELECT 1 FROM mailboxes WHERE name = ?", (newName,)).fetchone() \
                    or os.path.exists(newPath):
                raise MailboxExists(newName)
            names.bumpGeneration(self._conn)
            self._createParents(newName, row[0])
            os.makedirs(os.path.dirname(newPath), exist_ok=True)
            os.rename(oldPath, newPath)
            group = self._currentGroup()
            if group is not None:
                group.ifRolledBack(os.rename, newPath, oldPath)
            try:
                rows = self._conn.execute(
                    "SELECT id, name FROM mailboxes WHERE name = ? OR (name > ? AND name < ?)"
                    " ORDER BY name DESC", (oldName, low, high)).fetchall()
                for mailboxId, name in rows:
                    self._conn.execute("UPDATE mailboxes SET name = ? WHERE id = ?",
                                       (newName + name[len(oldName):], mailboxId))
            except BaseException:
                os.rename(newPath, oldPath)
                raise
        self._accountChanged()

    def renameMailboxLater(self, oldName, newName):
        """
        L{renameMailbox} by the index writer.  Renaming INBOX is two writes
        (the new mailbox, then the move of INBOX's messages into it), as
        L{renameMailbox} makes two transactions of it.

        @return: a L{Deferred} firing once the rename is durable.
        """
        try:
            inbox = maildir.canonicalName(oldName) == "INBOX"
        except InvalidMailboxName:
            inbox = False
        if not inbox:
            return self._write(lambda conn, group: self.renameMailbox(oldName, newName))

        def created(_):
            newCanonical = maildir.canonicalName(newName)
            metadata.copyEntries(maildir.mailboxPath(self.path, "INBOX"),
                                 maildir.mailboxPath(self.path, newCanonical))
            inbox = self.getMailbox("INBOX")
            return inbox.moveToLater(inbox.uids(), self.getMailbox(newCanonical))
        d = maybeDeferred(self._checkRename, oldName, newName)
        d.addCallback(lambda _: self.createMailboxLater(newName))
        return d.addCallback(created).addCallback(lambda _: None)

    def _checkRename(self, oldName, newName):
        """
        What L{renameMailbox} refuses before it changes anything.
        """
        oldName = maildir.canonicalName(oldName)
        newName = maildir.canonicalName(newName)
        if newName == oldName or newName.startswith(oldName + "/"):
            raise InvalidMailboxName("cannot rename %r to %r" % (oldName, newName))
        maildir.checkNameLimits(self.path, newName)

    def _renameInbox(self, newName):
        inbox = self.getMailbox("INBOX")
        self.createMailbox(newName)
        # RFC 5464 4.1: the new mailbox gets a copy of INBOX's entries.
        metadata.copyEntries(maildir.mailboxPath(self.path, "INBOX"), maildir.mailboxPath(self.path, newName))
        target = self.getMailbox(newName)
        inbox.moveTo(inbox.uids(), target)

    def subscribe(self, name):
        name = maildir.canonicalName(name)
        with index.transaction(self._conn):
            self._conn.execute("INSERT OR IGNORE INTO subscriptions (name) VALUES (?)", (name,))
            names.bumpGeneration(self._conn)
        self._accountChanged()

    def subscribeLater(self, name):
        """
        L{subscribe} by the index writer.

        @return: a L{Deferred} firing once the subscription is durable.
        """
        return self._write(lambda conn, group: self.subscribe(name))

    def unsubscribeLater(self, name):
        """
        L{unsubscribe} by the index writer.

        @return: a L{Deferred} firing once the change is durable.
        """
        return self._write(lambda conn, group: self.unsubscribe(name))

    def unsubscribe(self, name):
        name = maildir.canonicalName(name)
        with index.transaction(self._conn):
            self._conn.execute("DELETE FROM subscriptions WHERE name = ?", (name,))
            names.bumpGeneration(self._conn)
        self._accountChanged()
