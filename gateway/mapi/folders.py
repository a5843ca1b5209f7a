# -*- test-case-name: tests.test_metadata -*-
"""
The folder entries of XMAPI (docs/xmapi.md section 6.1) as METADATA
entries (L{gateway.interfaces.IMetadataEntry}), which the wiring gives to
the METADATA service (L{gateway.store.metadata.Metadata}):

    /shared/vendor/xmapi/container-class   the folder class (R-CLASS-1, -3)
    /shared/vendor/kolab/folder-type       its Kolab type, read-only (R-CLASS-2)
    /private/vendor/xmapi/default          the viewer's default folder of a
                                           class (R-CLASS-5)
"""

from zope.interface import implementer

from gateway.errors import StoreError
from gateway.interfaces import IMetadataEntry
from gateway.mapi.classes import DEFAULT_CLASS, InvalidFolderClass, baseClass, kolabFolderType
from gateway.store.metadata import CLASS_ENTRY, InvalidValue, ReadOnlyEntry

KOLAB_ENTRY = "/shared/vendor/kolab/folder-type"

#: Kolab's folder types of the special-use mail folders.
KOLAB_MAIL_TYPES = {
    "\\Drafts": "mail.drafts",
    "\\Sent": "mail.sentitems",
    "\\Trash": "mail.wastebasket",
    "\\Junk": "mail.junkemail",
}
DEFAULT_ENTRY = "/private/vendor/xmapi/default"

#: The folder of a new account that is the default of each class until the
#: viewer marks another (gateway.store.mail.DEFAULT_MAILBOXES).
BUILT_IN_DEFAULTS = {
    "IPF.Note": "INBOX",
    "IPF.Appointment": "Calendar",
    "IPF.Contact": "Contacts",
    "IPF.Task": "Tasks",
    "IPF.StickyNote": "Notes",
}


def checkClass(value):
    """
    A folder class from an entry value (C{bytes}).

    @raise InvalidValue: for anything but a class of L{FOLDER_CLASSES} or
        a sub-class of one (R-CLASS-1).
    """
    try:
        text = value.decode("ascii")
        baseClass(text)
    except (UnicodeDecodeError, InvalidFolderClass):
        raise InvalidValue("not a folder class: %r" % (value[:80],)) from None
    return text


def folderClass(target):
    """
    The class of the target's mailbox (C{IPF.Note} when it has none).
    """
    return target.store.mailboxClassOf(target.local) or DEFAULT_CLASS


@implementer(IMetadataEntry)
class ContainerClass:
    """
    C{/shared/vendor/xmapi/container-class}: the folder class, kept in the
    index (which LIST, free/busy and delivery read) and in the mailbox's
    metadata file (which an index rebuild reads back).  A folder of class
    C{IPF.Note} with no value stored has no entry (a missing entry means
    C{IPF.Note}).
    """

    name = CLASS_ENTRY

    def get(self, metadata, target):
        if target.isServer:
            return None
        mailboxClass = folderClass(target)
        if mailboxClass == DEFAULT_CLASS and metadata.storedValue(target, self.name) is None:
            return None
        return mailboxClass.encode("ascii")

    def check(self, metadata, target, value):
        if target.isServer:
            raise InvalidValue("the server has no folder class")
        if value is not None:
            checkClass(value)

    def set(self, metadata, target, value):
        mailboxClass = DEFAULT_CLASS if value is None else checkClass(value)
        metadata.storeValue(target, self.name, value)
        target.store.setMailboxClass(target.local, mailboxClass)


@implementer(IMetadataEntry)
class DefaultFolder:
    """
    C{/private/vendor/xmapi/default}: value the class of which this folder
    is the viewer's default.  Marking a folder clears the mark on the
    viewer's other own folders of that class; until the viewer marks one,
    the account's built-in folder of the class (Calendar, Contacts, ...)
    is the default.
    """

    name = DEFAULT_ENTRY

    def _marked(self, metadata, target, base):
        """
        The viewer's own folders marked as default of class C{base}.
        """
        found = []
        for other in metadata.forViewerFolders(target.access):
            value = metadata.storedValue(other, self.name)
            if value is not None and _base(value) == base:
                found.append(other.local)
        return found

    def isDefault(self, metadata, target):
        """
        Is the target the viewer's default folder of its class?
        """
        if target.isServer:
            return False
        base = baseClass(folderClass(target))
        value = metadata.storedValue(target, self.name)
        if value is not None:
            return _base(value) == base
        if not target.isOwn or BUILT_IN_DEFAULTS.get(base) != target.local:
            return False
        return not self._marked(metadata, target, base)

    def get(self, metadata, target):
        if self.isDefault(metadata, target):
            return (metadata.storedValue(target, self.name)
                    or baseClass(folderClass(target)).encode("ascii"))
        return None

    def check(self, metadata, target, value):
        if target.isServer:
            raise InvalidValue("the server is not a folder")
        if value is None:
            return
        if baseClass(checkClass(value)) != baseClass(folderClass(target)):
            raise InvalidValue("the folder's class is %s" % (folderClass(target),))

    def set(self, metadata, target, value):
        if value is not None:
            base = _base(value)
            for other in metadata.forViewerFolders(target.access):
                if other.local == target.local and other.owner == target.owner:
                    continue
                stored = metadata.storedValue(other, self.name)
                if stored is not None and _base(stored) == base:
                    metadata.storeValue(other, self.name, None)
        metadata.storeValue(target, self.name, value)


def _base(value):
    try:
        return baseClass(value.decode("ascii"))
    except (UnicodeDecodeError, InvalidFolderClass):
        return None


@implementer(IMetadataEntry)
class KolabFolderType:
    """
    C{/shared/vendor/kolab/folder-type}: the Kolab type of the folder's
    class (C{event}, C{contact}, ...), with C{.default} on the viewer's
    default folder of that type; mail folders are C{mail}, or Kolab's
    C{mail.inbox}, C{mail.drafts}, C{mail.sentitems}, C{mail.wastebasket},
    C{mail.junkemail}; derived, so read-only (R-CLASS-2).
    """

    name = KOLAB_ENTRY

    def __init__(self, defaults):
        self._defaults = defaults

    def get(self, metadata, target):
        if target.isServer:
            return None
        mailboxClass = folderClass(target)
        try:
            if baseClass(mailboxClass) == DEFAULT_CLASS:
                return self._mailType(target).encode("ascii")
            return kolabFolderType(mailboxClass, self._defaults.isDefault(metadata, target)).encode("ascii")
        except InvalidFolderClass:
            return None

    def _mailType(self, target):
        """
        A mail folder's Kolab type: C{mail}, or Kolab's sub-type for INBOX
        and the special-use folders (C{mail.inbox}, C{mail.sentitems}, ...).
        """
        if target.local == "INBOX":
            return "mail.inbox"
        try:
            specialUse = target.store.getMailbox(target.local).specialUse
        except StoreError:
            specialUse = None
        return KOLAB_MAIL_TYPES.get(specialUse, "mail")

    def check(self, metadata, target, value):
        raise ReadOnlyEntry("%s is derived from %s" % (self.name, CLASS_ENTRY))

    def set(self, metadata, target, value):
        raise ReadOnlyEntry("%s is derived from %s" % (self.name, CLASS_ENTRY))


def folderEntries():
    """
    The XMAPI folder entries, for L{gateway.store.metadata.Metadata}.
    """
    defaults = DefaultFolder()
    return [ContainerClass(), KolabFolderType(defaults), defaults]
