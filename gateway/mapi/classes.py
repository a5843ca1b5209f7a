# -*- test-case-name: tests.test_mapi -*-
"""
Folder classes (MAPI C{PidTagContainerClass}) and their Kolab folder types
(C{docs/xmapi.md} section 6.1).
"""

#: The folder classes a folder may have, with the Kolab C{folder-type} each
#: is shown as.  A sub-class (C{IPF.Appointment.Birthday}) behaves as its base.
FOLDER_CLASSES = {
    "IPF.Note": "mail",
    "IPF.Appointment": "event",
    "IPF.Contact": "contact",
    "IPF.Task": "task",
    "IPF.StickyNote": "note",
    "IPF.Journal": "journal",
}

#: The class of a folder that has none recorded.
DEFAULT_CLASS = "IPF.Note"


class InvalidFolderClass(ValueError):
    """
    A value that is not one of L{FOLDER_CLASSES} or a sub-class of one.
    """


def baseClass(folderClass):
    """
    The class of L{FOLDER_CLASSES} that C{folderClass} is or is a sub-class of.

    @param folderClass: C{str}, or C{None} for a folder without a class.
    @raise InvalidFolderClass: for anything else.
    """
    if folderClass is None:
        return DEFAULT_CLASS
    for base in FOLDER_CLASSES:
        if folderClass == base:
            return base
        if folderClass.startswith(base + ".") and _validSuffix(folderClass[len(base) + 1:]):
            return base
    raise InvalidFolderClass("not a folder class: %r" % (folderClass,))


def _validSuffix(suffix):
    parts = suffix.split(".")
    return all(part and all(c.isascii() and (c.isalnum() or c in "_-") for c in part) for part in parts)


def kolabFolderType(folderClass, isDefault=False):
    """
    The Kolab C{/shared/vendor/kolab/folder-type} value of a folder of
    C{folderClass}: C{event}, C{contact}, ... with C{.default} on the
    user's default folder of that type.
    """
    kolab = FOLDER_CLASSES[baseClass(folderClass)]
    return kolab + ".default" if isDefault else kolab


def isCalendarClass(folderClass):
    """
    Does a folder of C{folderClass} hold appointments (and so count in
    free/busy)?
    """
    try:
        return baseClass(folderClass) == "IPF.Appointment"
    except InvalidFolderClass:
        return False
