# -*- test-case-name: tests.test_importer -*-
"""
Import a Dovecot or Courier Maildir++ tree into an account's mail store.

Maildir++ keeps INBOX in the root folder (C{cur/ new/ tmp/}) and every other
mailbox in a folder of the root named C{.} plus its name, the hierarchy
separated by dots and each part in modified UTF-7 (C{.Archive.2024},
C{.Entw&APw-rfe} for C{Entwürfe}).  Beside the messages, Dovecot keeps
C{dovecot-uidlist} (UIDVALIDITY and the UID of each file),
C{dovecot-keywords} (the keyword each letter C{a}..C{z} in file names
stands for) and C{subscriptions}; Courier keeps C{courierimapuiddb} (the
same format as Dovecot's first uid list) and C{courierimapsubscribed}.

Where the target mailbox is new, or empty with no UID ever given out, the
folder is copied in whole and the store indexes it with the UIDVALIDITY and
UIDs of the uid list (L{gateway.store.scan.scanMailbox} honours it), so
clients that cached the old server's mailboxes keep their caches.  Otherwise
each message is appended with its flags, keywords and internal date (the
file's modification time, as both servers keep it) and gets a new UID; a
message already there (same size, headers and internal date) is skipped, so
running the import again adds nothing.
"""

import datetime
import os
import shutil
import time

import twisted.mail.imap4  # noqa: F401 -- registers the imap4-utf-7 codec

from gateway.errors import InvalidMailboxName, NoSuchMailbox
from gateway.restore import indexNow, liveKeys, messageKey
from gateway.store import maildir, scan

STAGING_PREFIX = ".gateway-import-"


class ImportError_(Exception):
    """
    The source cannot be imported (a message for the administrator).
    """


def decodeName(part):
    """
    A modified UTF-7 name part as text (left as it is when it is not valid).
    """
    if "&" not in part:
        return part
    try:
        raw = part.encode("ascii")
        text = raw.decode("imap4-utf-7")
        if text.encode("imap4-utf-7") == raw:
            return text
    except (UnicodeError, ValueError):
        pass
    return part


def folderName(entry):
    """
    The mailbox name of the Maildir++ folder C{entry} (C{'.A.B'}): C{'A/B'}.
    """
    parts = [decodeName(p) for p in entry[1:].split(".")]
    if len(parts) > 1 and parts[0].upper() == "INBOX" and entry[1:6].upper() == "INBOX":
        # Courier's namespace prefix: .INBOX.Sent is Sent.
        parts = parts[1:]
    return "/".join(parts)


def folders(src):
    """
    @return: C{[(mailbox name, folder path)]} of the Maildir++ tree, INBOX
        first; names that are not valid here come with C{None} as name and
        the reason as path's companion (C{(None, path, reason)}).
    """
    found = []
    if maildir.isMaildir(src):
        found.append(("INBOX", src, None))
    for entry in sorted(os.listdir(src)):
        path = os.path.join(src, entry)
        if not entry.startswith(".") or entry in (".", "..") or not maildir.isMaildir(path):
            continue
        name = folderName(entry)
        try:
            found.append((maildir.canonicalName(name), path, None))
        except InvalidMailboxName as e:
            found.append((None, path, str(e)))
    return found


def readSubscriptions(src):
    """
    Subscribed names from Dovecot's C{subscriptions} (version 1: one name a
    line, hierarchy by C{.}; version 2: a C{V\\t2} header, hierarchy by tab)
    and Courier's C{courierimapsubscribed} (C{INBOX.} prefixed).
    """
    names = []
    for filename in ("subscriptions", "courierimapsubscribed"):
        try:
            with open(os.path.join(src, filename), encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        separator = "."
        if lines and lines[0].startswith("V\t"):
            separator, lines = "\t", lines[1:]
        for line in lines:
            line = line.strip("\r\n")
            if not line.strip():
                continue
            parts = [decodeName(p) for p in line.split(separator)]
            if len(parts) > 1 and parts[0].upper() == "INBOX":
                parts = parts[1:]
            try:
                names.append(maildir.canonicalName("/".join(parts)))
            except InvalidMailboxName:
                continue
    return names


class ImportReport:
    def __init__(self):
        self.mailboxes = []  # (name, messages, how)
        self.skipped = []  # (folder, reason)
        self.subscribed = 0

    def lines(self):
        result = ["%s: %d messages (%s)" % entry for entry in self.mailboxes]
        result += ["skipped %s: %s" % entry for entry in self.skipped]
        result.append("%d mailboxes, %d messages, %d subscriptions" % (
            len(self.mailboxes), sum(e[1] for e in self.mailboxes), self.subscribed))
        return result


def _uidList(folder):
    for filename in ("dovecot-uidlist", "courierimapuiddb"):
        path = os.path.join(folder, filename)
        if scan.readDovecotUidList(path) is not None:
            return path
    return None


def _messageFiles(folder):
    for subdir in ("new", "cur"):
        path = os.path.join(folder, subdir)
        for name in sorted(os.listdir(path)) if os.path.isdir(path) else ():
            if not name.startswith("."):
                yield subdir, name


def _fresh(store, name):
    """
    Whether C{name} is new, or empty with no UID ever handed out (so its
    UIDVALIDITY may still be chosen).

    @return: C{None} (not fresh), C{"new"} or C{"empty"}.
    """
    try:
        mailbox = store.getMailbox(name)
    except NoSuchMailbox:
        return None if os.path.exists(maildir.mailboxPath(store.path, name)) else "new"
    if mailbox.uidNext() == 1 and not mailbox.uids():
        return "empty"
    return None


def _stage(store, folder):
    """
    Copy a source Maildir (messages, uid list, keywords) into a hidden
    folder of the store, where no scan sees it half done.
    """
    staging = os.path.join(store.path, STAGING_PREFIX + os.urandom(6).hex())
    maildir.ensureMaildir(staging)
    for subdir, name in _messageFiles(folder):
        shutil.copy2(os.path.join(folder, subdir, name), os.path.join(staging, subdir, name))
    uidList = _uidList(folder)
    if uidList is not None:
        shutil.copy2(uidList, os.path.join(staging, "dovecot-uidlist"))
    if os.path.exists(os.path.join(folder, "dovecot-keywords")):
        shutil.copy2(os.path.join(folder, "dovecot-keywords"), os.path.join(staging, "dovecot-keywords"))
    return staging


def _importWhole(store, name, folder, how):
    """
    Put the folder in place and let the store index it with its uid list.
    """
    staging = _stage(store, folder)
    target = maildir.mailboxPath(store.path, name)
    try:
        if how == "new":
            # Parents that are no mailbox of their own are folders only
            # (listed \Noselect), as in the source tree.
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.rename(staging, target)
        else:
            aside = os.path.join(store.path, STAGING_PREFIX + os.urandom(6).hex())
            os.rename(target, aside)
            os.rename(staging, target)
            # Children of the mailbox are folders inside it: move them back.
            for entry in os.listdir(aside):
                if entry not in maildir.SUBDIRS and os.path.isdir(os.path.join(aside, entry)):
                    os.rename(os.path.join(aside, entry), os.path.join(target, entry))
                elif entry not in maildir.SUBDIRS and not os.path.exists(os.path.join(target, entry)):
                    os.rename(os.path.join(aside, entry), os.path.join(target, entry))
            shutil.rmtree(aside, ignore_errors=True)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)
    store.listMailboxes()  # registers a new folder (not indexed yet)
    indexNow(store, name, fresh=True)
    return len(store.getMailbox(name).uids())


def _importAppending(store, name, folder):
    """
    Append each message (new UIDs), skipping those already there.
    """
    try:
        mailbox = store.getMailbox(name)
    except NoSuchMailbox:
        store.createMailbox(name)
        mailbox = store.getMailbox(name)
    indexNow(store, name)
    present = liveKeys(mailbox)
    keywords = scan.readDovecotKeywords(os.path.join(folder, "dovecot-keywords"))
    uidList = _uidList(folder)
    order = scan.readDovecotUidList(uidList)[2] if uidList else {}
    files = sorted(_messageFiles(folder), key=lambda e: (order.get(maildir.splitName(e[1])[0], 1 << 40), e[1]))
    added = 0
    for subdir, filename in files:
        path = os.path.join(folder, subdir, filename)
        measure = maildir.measureFile(path)
        mtime = os.stat(path).st_mtime
        key = messageKey(measure.size, measure.headers, mtime)
        if key in present:
            continue
        info = maildir.splitName(filename)[1]
        flags = set(maildir.systemFlagsFromInfo(info))
        flags |= {keywords[c] for c in maildir.extraLetters(info) if c in keywords}
        with open(path, "rb") as f:
            mailbox.appendMessage(f, flags, datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc))
        present.add(key)
        added += 1
    return added


def _removeStale(store, age=3600):
    """
    Remove staging folders an interrupted import left (an hour old).
    """
    for entry in os.listdir(store.path):
        path = os.path.join(store.path, entry)
        if entry.startswith(STAGING_PREFIX) and os.stat(path).st_mtime < time.time() - age:
            shutil.rmtree(path, ignore_errors=True)


def importMaildir(src, store):
    """
    Import the Maildir++ tree C{src} into C{store} (an account's
    L{gateway.store.mail.MailStore}).

    @return: an L{ImportReport}.
    @raise ImportError_: when C{src} is not a Maildir++ tree.
    """
    src = os.path.abspath(src)
    if not os.path.isdir(src):
        raise ImportError_("%s is not a folder" % (src,))
    found = folders(src)
    if not found:
        raise ImportError_("%s holds no Maildir (no cur/ in it or in its .Folders)" % (src,))
    _removeStale(store)
    report = ImportReport()
    for name, folder, reason in found:
        if name is None:
            report.skipped.append((folder, reason))
            continue
        how = _fresh(store, name)
        if how is not None:
            count = _importWhole(store, name, folder, how)
            kept = "UIDs kept" if _uidList(folder) else "new mailbox"
            report.mailboxes.append((name, count, kept))
        else:
            count = _importAppending(store, name, folder)
            report.mailboxes.append((name, count, "appended, new UIDs"))
    existing = {info.name for info in store.listMailboxes()}
    for name in readSubscriptions(src):
        if name in existing:
            store.subscribe(name)
            report.subscribed += 1
    return report
