# -*- test-case-name: tests.test_store_folders -*-
"""
Which mailbox folders an account has on disk (L{FolderListing}): the
mailbox list is brought in line with them before every LIST, so that a
Maildir copied in by another program shows up, and one removed goes.

The folders are walked again only when one of those walked last time
changed since (its modification time or inode): a folder created, removed
or renamed, or a C{cur/} made in one, changes the folder it is in.  Under
imaptest's mix the walk was 2.3% of a worker's time, and most of a LIST's.
"""

import os
import time

from gateway.errors import InvalidMailboxName
from gateway.store import maildir

#: A walk that saw a folder changed this recently (seconds) is not kept:
#: file systems stamp changes with a coarse clock (ext4: a jiffy; others up
#: to two seconds), so a later change in the same tick would leave the
#: stamp as it was.
RACY_SECONDS = 2.0


def _stamp(folder):
    """
    C{(mtime in ns, inode)} of C{folder}, or C{None} when it is gone.
    """
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ino)


def walkMailboxes(root):
    """
    Walk the mailbox folders under C{root}.

    @return: C{({name: isMaildir}, [every folder walked])}.
    """
    found = {}
    walked = []
    for top, dirs, _files in os.walk(root):
        walked.append(top)
        dirs[:] = sorted(d for d in dirs if d not in maildir.SUBDIRS and not d.startswith("."))
        if top == root:
            continue
        relative = os.path.relpath(top, root).replace(os.sep, "/")
        if relative.count("/") + 1 >= maildir.MAX_LEVELS:
            # No deeper: a tree made by another program may be deeper
            # than os.walk can recurse.
            dirs[:] = []
        try:
            name = maildir.canonicalName(relative)
        except InvalidMailboxName:
            dirs[:] = []
            continue
        if name != relative:
            continue
        found[name] = maildir.isMaildir(top)
    return found, walked


class FolderListing:
    """
    The mailbox folders under an account's folder, walked again only when
    they may have changed.

    @ivar walks: how many times the folders were walked (for tests).
    """

    def __init__(self, root, clock=time.time):
        self.root = root
        self._clock = clock
        self._kept = None
        self.walks = 0

    def mailboxes(self):
        """
        @return: C{{name: isMaildir}} for the folders on disk (a new
            C{dict}).
        """
        kept = self._kept
        if kept is not None and all(_stamp(folder) == stamp for folder, stamp in kept[0]):
            return dict(kept[1])
        started = self._clock()
        found, walked = walkMailboxes(self.root)
        self.walks += 1
        stamps = [(folder, _stamp(folder)) for folder in walked]
        racy = any(stamp is None or stamp[0] >= (started - RACY_SECONDS) * 1e9 for _folder, stamp in stamps)
        self._kept = None if racy else (stamps, found)
        return dict(found)
