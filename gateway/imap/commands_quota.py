# -*- test-case-name: tests.test_imap_mailbox -*-
"""
QUOTA (RFC 9208): the account's storage limit, one root named C{""}, set
by the administrator only.
"""

from gateway.imap.commands_mailbox import mailboxArgument
from gateway.imap.protocol import AUTH, command, no

# -- QUOTA ---------------------------------------------------------------------------------


def _quotaResponse(session):
    quota = session.account.quota
    limit = quota.limit()
    if limit is None:
        return b'QUOTA "" ()'
    return b'QUOTA "" (STORAGE %d %d)' % (quota.used() // 1024, limit // 1024)


@command("GETQUOTAROOT", AUTH, capability="QUOTA")
def do_GETQUOTAROOT(session, tag, args):
    name = mailboxArgument(args)
    args.end()
    session.sendUntagged(b"QUOTAROOT " + session.names.encode(name) + b' ""')
    session.sendUntagged(_quotaResponse(session))


@command("GETQUOTA", AUTH, capability="QUOTA")
def do_GETQUOTA(session, tag, args):
    args.space()
    root = args.astring()
    args.end()
    if root != b"":
        raise no("[NONEXISTENT] No such quota root")
    session.sendUntagged(_quotaResponse(session))


@command("SETQUOTA", AUTH, capability="QUOTA")
def do_SETQUOTA(session, tag, args):
    args.rest()
    raise no("[NOPERM] Quotas are set by the administrator")
