# -*- test-case-name: tests.test_imap_urlauth -*-
"""
Mailbox access keys of URLAUTH (RFC 4467 3): one secret per mailbox for
each account, kept in the account's mail root as C{gateway-urlauth}
(JSON, name -> C{[hex key, stamp]}), written to a temporary file, synced and renamed
into place under a lock, so keys survive a restart or a crash and several
processes agree on them.  Knows no IMAP syntax.

A key belongs to one mailbox, not to a name: it is kept with the
mailbox's stamp (its UIDVALIDITY), so a mailbox deleted and made again
under the same name does not honour the URLs of the old one.
"""

import fcntl
import json
import os

from zope.interface import implementer

from gateway.interfaces import IURLAuthKeys

FILENAME = "gateway-urlauth"

#: Octets of a new key.
KEY_SIZE = 32


@implementer(IURLAuthKeys)
class URLAuthKeys:
    """
    The access keys of one account.

    @param root: the account's mail store folder.
    """

    def __init__(self, root):
        self.path = os.path.join(root, FILENAME)

    def _read(self):
        try:
            with open(self.path, "rb") as f:
                data = json.loads(f.read().decode("utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, keys):
        temporary = "%s.%d.tmp" % (self.path, os.getpid())
        with open(temporary, "wb") as f:
            f.write(json.dumps(keys, sort_keys=True).encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, self.path)

    def _locked(self, change):
        with open(self.path + ".lock", "ab") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                keys = self._read()
                result = change(keys)
                self._write(keys)
                return result
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def key(self, name, stamp, create=False):
        """
        The key of mailbox C{name} whose stamp is C{stamp} (C{bytes}), made
        when C{create} and there is none for that stamp; otherwise C{None}
        when there is none.
        """
        found = _valid(self._read().get(name), stamp)
        if found is not None or not create:
            return found

        def make(keys):
            current = _valid(keys.get(name), stamp)
            if current is None:
                current = os.urandom(KEY_SIZE)
                keys[name] = [current.hex(), stamp]
            return current
        return self._locked(make)

    def reset(self, name=None):
        """
        Remove the key of mailbox C{name}, or (C{None}) every key: the URLs
        made with the old ones no longer work, and the next GENURLAUTH
        makes a new key.
        """
        def change(keys):
            if name is None:
                keys.clear()
            else:
                keys.pop(name, None)
        self._locked(change)


def _valid(entry, stamp):
    """
    The key of a file entry if it is for C{stamp}, else C{None}.
    """
    if not isinstance(entry, list) or len(entry) != 2 or entry[1] != stamp or not isinstance(entry[0], str):
        return None
    try:
        key = bytes.fromhex(entry[0])
    except ValueError:
        return None
    return key if len(key) == KEY_SIZE else None
