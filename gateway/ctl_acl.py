# -*- test-case-name: tests.test_ctl_acl -*-
"""
C{gatewayctl acl}: read and change mailbox ACLs as the owner would with
SETACL (the same rules, through the access layer), make a domain's
C{public} account, and rebuild the shared-mailbox index.

    gatewayctl acl get ACCOUNT MAILBOX
    gatewayctl acl set ACCOUNT MAILBOX IDENTIFIER [+|-]RIGHTS
    gatewayctl acl delete ACCOUNT MAILBOX IDENTIFIER
    gatewayctl acl public DOMAIN [MAILBOX...]
    gatewayctl acl rebuild
"""

import sys

from gateway.errors import DirectoryError, NoSuchMailbox, StoreError

EX_DATAERR = 65
EX_NOUSER = 67

#: Stored password of the C{public} account: no password matches it (not
#: a SHA-crypt string), and the account is disabled, so nobody logs in as it.
NO_PASSWORD = "{SHA512-CRYPT}!"


class _Failure(Exception):
    def __init__(self, text, code):
        Exception.__init__(self, text)
        self.code = code


def _access(directory, address):
    from gateway.cred.realm import GatewayRealm

    record = directory.getAccount(address.strip().lower()) or directory.resolve(address)
    if record is None:
        raise _Failure("no such account: %s" % (address,), EX_NOUSER)
    realm = GatewayRealm(directory)
    return realm, realm.accountFor(record.address).access


def _rights(rights):
    from gateway.store.acl import formatRights

    return formatRights(rights) or '""'


def aclCommand(directory, args, out):
    """
    Run one C{acl} action; errors become a message and an exit code.
    """
    from gateway.store.acl import ACLError

    try:
        return _ACTIONS[args.action](directory, args, out)
    except _Failure as e:
        sys.stderr.write("gatewayctl: %s\n" % (e,))
        return e.code
    except (ACLError, StoreError, DirectoryError) as e:
        text = str(e) or e.__class__.__name__
        if isinstance(e, NoSuchMailbox):
            text = "no such mailbox: %s" % (args.mailbox,)
        sys.stderr.write("gatewayctl: %s\n" % (text,))
        return EX_DATAERR


def _get(directory, args, out):
    _realm, access = _access(directory, args.account)
    for identifier, negative, rights in access.getACL(args.mailbox):
        out.write("%s%s %s\n" % ("-" if negative else "", identifier, _rights(rights)))


def _set(directory, args, out):
    _realm, access = _access(directory, args.account)
    rights, mode = args.rights, ""
    if rights[:1] in ("+", "-"):
        mode, rights = rights[0], rights[1:]
    access.setACL(args.mailbox, args.identifier, rights, mode)
    _get(directory, args, out)


def _delete(directory, args, out):
    _realm, access = _access(directory, args.account)
    access.deleteACL(args.mailbox, args.identifier)
    _get(directory, args, out)


def addPublicAccount(directory, domainName):
    """
    Make the domain's C{public} account if it has none.

    @return: its address if it was made, else C{None}.
    """
    address = "public@%s" % (domainName,)
    if directory.getAccount(address) is not None:
        return None
    directory.addAccount(address, NO_PASSWORD, enabled=False, services=frozenset())
    return address


def _public(directory, args, out):
    domain = directory.getDomain(args.domain)
    if domain is None:
        raise _Failure("no such domain: %s" % (args.domain,), EX_DATAERR)
    address = addPublicAccount(directory, domain.name)
    if address is not None:
        out.write("account %s added (shared folders ~public/...; nobody logs in as it)\n" % (address,))
    if args.mailboxes:
        _realm, access = _access(directory, "public@%s" % (domain.name,))
        existing = {m.name for m in access.listMailboxes()}
        for name in args.mailboxes:
            if name not in existing:
                access.createMailbox(name)
                out.write("mailbox ~public/%s created\n" % (name,))


def _rebuild(directory, args, out):
    from gateway.cred.realm import GatewayRealm

    count = GatewayRealm(directory).access.rebuildIndex()
    out.write("%d shared mailboxes\n" % (count,))


_ACTIONS = {"get": _get, "set": _set, "delete": _delete, "public": _public, "rebuild": _rebuild}


def addParser(commands):
    """
    Add C{acl} to C{gatewayctl}'s subcommands.
    """
    acl = commands.add_parser("acl", help="mailbox ACLs (RFC 4314 rights, as SETACL)").add_subparsers(
        dest="action", metavar="ACTION")
    acl.required = True
    p = acl.add_parser("get", help="show a mailbox's ACL")
    p.add_argument("account", metavar="ACCOUNT")
    p.add_argument("mailbox", metavar="MAILBOX")
    p.set_defaults(run=aclCommand)
    p = acl.add_parser("set", help="set (or +add / -remove) an identifier's rights, e.g. lrs or +w"
                       " (put -- before a negative identifier)")
    p.add_argument("account", metavar="ACCOUNT")
    p.add_argument("mailbox", metavar="MAILBOX")
    p.add_argument("identifier", metavar="IDENTIFIER", help="anyone, authenticated, NAME[@DOMAIN], -NAME...")
    p.add_argument("rights", metavar="RIGHTS")
    p.set_defaults(run=aclCommand)
    p = acl.add_parser("delete", help="remove an identifier's entry")
    p.add_argument("account", metavar="ACCOUNT")
    p.add_argument("mailbox", metavar="MAILBOX")
    p.add_argument("identifier", metavar="IDENTIFIER")
    p.set_defaults(run=aclCommand)
    p = acl.add_parser("public", help="make the domain's public account (its mailboxes are ~public/...)"
                       " and any MAILBOX missing in it")
    p.add_argument("domain", metavar="DOMAIN")
    p.add_argument("mailboxes", metavar="MAILBOX", nargs="*")
    p.set_defaults(run=aclCommand)
    p = acl.add_parser("rebuild", help="rebuild the shared-mailbox index from the dovecot-acl files")
    p.set_defaults(run=aclCommand)
