# -*- test-case-name: tests.test_backup -*-
"""
C{gatewayctl backup}, C{restore} and C{import-maildir}: snapshots of a
running server's data, bringing data back, and moving a Dovecot or Courier
Maildir++ tree into an account.

    gatewayctl backup [--incremental|--tar] [ACCOUNT|DOMAIN|--all] DEST
    gatewayctl restore SRC ACCOUNT [--mailbox NAME [--message UID]]
    gatewayctl import-maildir SRC ACCOUNT
"""

import os
import shutil
import sys
import tempfile

from gateway.errors import DirectoryError, QuotaExceeded, StoreError

EX_USAGE = 64
EX_DATAERR = 65
EX_NOUSER = 67
EX_NOPERM = 77


def _fail(text, code):
    sys.stderr.write("gatewayctl: %s\n" % (text,))
    return code


def _account(directory, address):
    record = directory.getAccount(address.strip().lower()) or directory.resolve(address)
    return record


def backupCommand(directory, args, out):
    """
    Take a snapshot of one account, one domain or everything.
    """
    from gateway.backup import Backup, BackupError

    if args.all == (args.what is not None):
        return _fail("name an ACCOUNT or a DOMAIN, or give --all", EX_USAGE)
    if args.tar and args.incremental:
        return _fail("--incremental needs the previous snapshot as a folder: not with --tar", EX_USAGE)
    if args.all:
        domains = [d.name for d in directory.domains()]
        accounts = directory.accounts()
    elif "@" in args.what:
        record = _account(directory, args.what)
        if record is None:
            return _fail("no such account: %s" % (args.what,), EX_NOUSER)
        domains, accounts = [], [record]
    else:
        domain = directory.getDomain(args.what)
        if domain is None:
            return _fail("no such domain: %s" % (args.what,), EX_DATAERR)
        domains, accounts = [domain.name], directory.accounts(domain.name)
    try:
        backup = Backup(directory, args.dest, incremental=args.incremental)
        path = backup.run(accounts, domains, everything=args.all)
    except BackupError as e:
        return _fail(str(e), EX_DATAERR)
    from gateway.backup import packSnapshot, readManifest

    manifest = readManifest(path)
    if args.tar:
        path = packSnapshot(path)
    taken = sum(a.get("messages", {}).get("taken", 0) for a in manifest["accounts"].values())
    linked = sum(a.get("messages", {}).get("linked", 0) for a in manifest["accounts"].values())
    out.write("%s backup %s: %d accounts, %d messages taken, %d unchanged since %s\n"
              % (manifest["kind"], path, len(manifest["accounts"]), taken, linked,
                 manifest["previous"] or "-"))


def restoreCommand(directory, args, out):
    """
    Bring back an account, a mailbox or a message from a snapshot.
    """
    from gateway.backup import BackupError, findSnapshot, unpackSnapshot
    from gateway.cred.realm import GatewayRealm
    from gateway.restore import Restore

    if args.message is not None and args.mailbox is None:
        return _fail("--message needs --mailbox", EX_USAGE)
    unpacked = None
    try:
        if os.path.isfile(args.src):
            unpacked = tempfile.mkdtemp(prefix=".gateway-restore-", dir=os.path.dirname(os.path.abspath(args.src)))
            snapshot = unpackSnapshot(args.src, unpacked)
        else:
            snapshot = findSnapshot(args.src)
        restore = Restore(snapshot, directory, GatewayRealm(directory))
        try:
            restore.restore(args.account, args.mailbox, args.message)
        finally:
            _report(out, args.src if unpacked else snapshot, restore.counts)
    except QuotaExceeded as e:
        return _fail("stopped: %s (what was restored stays)" % (e,), EX_NOPERM)
    except (BackupError, StoreError, DirectoryError) as e:
        return _fail(str(e) or e.__class__.__name__, EX_DATAERR)
    finally:
        if unpacked is not None:
            shutil.rmtree(unpacked, ignore_errors=True)


def _report(out, snapshot, counts):
    out.write("from %s: %d messages restored, %d already there, %d mailboxes created, %d files restored\n"
              % (snapshot, counts["restored"], counts["present"], counts["mailboxes created"], counts["files"]))


def importCommand(directory, args, out):
    """
    Import a Dovecot or Courier Maildir++ tree into an account.
    """
    from gateway.cred.realm import GatewayRealm
    from gateway.importer import ImportError_, importMaildir

    record = _account(directory, args.account)
    if record is None:
        return _fail("no such account: %s" % (args.account,), EX_NOUSER)
    account = GatewayRealm(directory).accountFor(record.address)
    try:
        report = importMaildir(args.src, account.mailStore)
    except QuotaExceeded as e:
        return _fail("stopped: %s (what was imported stays)" % (e,), EX_NOPERM)
    except (ImportError_, StoreError) as e:
        return _fail(str(e), EX_DATAERR)
    for line in report.lines():
        out.write(line + "\n")
    return 1 if report.skipped else 0


def addParser(commands):
    """
    Add C{backup}, C{restore} and C{import-maildir} to C{gatewayctl}'s subcommands.
    """
    p = commands.add_parser("backup", help="write a snapshot of an account, a domain or everything into DEST"
                            " (a folder tree like the data root, with a manifest backup.json)")
    p.add_argument("what", metavar="ACCOUNT|DOMAIN", nargs="?")
    p.add_argument("dest", metavar="DEST")
    p.add_argument("--all", action="store_true", help="every domain and account")
    p.add_argument("--incremental", action="store_true",
                   help="link what is unchanged to the newest snapshot in DEST (each stays complete)")
    p.add_argument("--tar", action="store_true", help="write DEST/<time>.tar instead of the folder (full only)")
    p.set_defaults(run=backupCommand)
    p = commands.add_parser("restore", help="bring back an account, a mailbox or a message from a snapshot"
                            " (messages already there are kept; restored ones get new UIDs)")
    p.add_argument("src", metavar="SRC", help="a snapshot folder, a DEST (its newest snapshot), or a snapshot's .tar")
    p.add_argument("account", metavar="ACCOUNT")
    p.add_argument("--mailbox", metavar="NAME", help="only this mailbox")
    p.add_argument("--message", metavar="UID", type=int, help="only the message with this UID in the backup")
    p.set_defaults(run=restoreCommand)
    p = commands.add_parser("import-maildir", help="import a Dovecot or Courier Maildir++ tree (.A.B folders)"
                            " into an account, keeping UIDs where the target mailbox is new")
    p.add_argument("src", metavar="SRC", help="the Maildir++ root (its cur/ new/ are INBOX)")
    p.add_argument("account", metavar="ACCOUNT")
    p.set_defaults(run=importCommand)
