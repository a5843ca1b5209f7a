# -*- test-case-name: tests.test_imap_urlauth -*-
"""
Mailbox access keys of URLAUTH (RFC 4467 3): one secret per mailbox for
each account, kept in the account's mail root as C{gateway-urlauth}
(JSON, name -> hex key), written to a temporary file, synced and renamed
into place under a lock, so keys survive a restart or a crash and several
processes agree on them.  Knows no IMAP syntax.
"""

import fcntl
import json
import os

FILENAME = "gateway-urlauth"

#: Octets of a new key.
KEY_SIZE = 32


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

    def key(self, name, create=False):
        """
        The key of mailbox C{name} (C{bytes}), made when C{create} and
        there is none; otherwise C{None} when there is none.
        """
        value = self._read().get(name)
        if isinstance(value, str):
            try:
                return bytes.fromhex(value)
            except ValueError:
                pass
        if not create:
            return None

        def make(keys):
            current = keys.get(name)
            if not isinstance(current, str) or len(current) != 2 * KEY_SIZE:
                current = keys[name] = os.urandom(KEY_SIZE).hex()
            return bytes.fromhex(current)
        return self._locked(make)

    def reset(self, name=None):
        """
        Give mailbox C{name} a new key, or (C{None}) remove every key: the
        URLs made with the old ones no longer work.
        """
        def change(keys):
            if name is None:
                keys.clear()
            else:
                keys[name] = os.urandom(KEY_SIZE).hex()
        self._locked(change)
