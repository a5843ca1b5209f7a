# -*- test-case-name: tests.test_imap_acl -*-
"""
The IMAP ACL extension (RFC 4314): GETACL, SETACL, DELETEACL, LISTRIGHTS
and MYRIGHTS, over the access layer (L{gateway.store.access}), which also
enforces the rights on every other command.
"""

from gateway.errors import StoreError
from gateway.imap.commands_mailbox import mailboxArgument, storeError
from gateway.imap.format import quote
from gateway.imap.protocol import AUTH, bad, capability, command, no
from gateway.store.acl import ACLError, formatRights, parseIdentifier, parseRights

capability("ACL")
capability("RIGHTS=texk")


def _call(f, *args):
    try:
        return f(*args)
    except ACLError as e:
        raise no("[CANNOT] %s" % (e,)) from None
    except StoreError as e:
        raise storeError(e) from None


def _later(f, *args):
    """
    Run an access layer call that answers with a L{Deferred} (written off
    the reactor thread), its errors answered as L{_call} answers them.
    """
    return _call(f, *args).addErrback(lambda failure: _call(failure.raiseException)).addCallback(lambda _: None)


def _text(args):
    args.space()
    value = args.astring()
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


_ATOM_SPECIALS = set('(){ %*"\\]')


def _id(text):
    """
    An astring (an atom where possible, as Dovecot sends identifiers and
    rights).
    """
    if text and all(" " < ch < "\x7f" and ch not in _ATOM_SPECIALS for ch in text):
        return text.encode("ascii")
    data = text.encode("utf-8")
    if not data.isascii():
        # A UTF-8 account name (jörg): a literal, which IMAP4rev1 allows
        # where a quoted string must be 7-bit (RFC 6855 3).
        return b"{%d}\r\n%s" % (len(data), data)
    return quote(data)


@command("GETACL", AUTH, capability="ACL")
def do_GETACL(session, tag, args):
    name = mailboxArgument(args)
    args.end()
    entries = _call(session.account.access.getACL, name)
    parts = [b"ACL", session.names.encode(name)]
    for identifier, negative, rights in entries:
        parts.append(_id(("-" if negative else "") + identifier))
        parts.append(_id(formatRights(rights, obsolete=True)))
    session.sendUntagged(b" ".join(parts))


@command("SETACL", AUTH, capability="ACL")
def do_SETACL(session, tag, args):
    name = mailboxArgument(args)
    identifier = _text(args)
    rights = _text(args)
    args.end()
    mode = ""
    if rights[:1] in ("+", "-"):
        mode, rights = rights[0], rights[1:]
    try:
        # RFC 4314 3.1: an unknown right is a syntax error.
        parseIdentifier(identifier, "x")
        parseRights(rights)
    except ACLError as e:
        raise bad(str(e)) from None
    return _later(session.account.access.setACLLater, name, identifier, rights, mode)


@command("DELETEACL", AUTH, capability="ACL")
def do_DELETEACL(session, tag, args):
    name = mailboxArgument(args)
    identifier = _text(args)
    args.end()
    return _later(session.account.access.deleteACLLater, name, identifier)


@command("LISTRIGHTS", AUTH, capability="ACL")
def do_LISTRIGHTS(session, tag, args):
    name = mailboxArgument(args)
    identifier = _text(args)
    args.end()
    required, optional = _call(session.account.access.listRights, name, identifier)
    session.sendUntagged(b" ".join([b"LISTRIGHTS", session.names.encode(name), _id(identifier), _id(required)]
                                   + [letter.encode("ascii") for letter in optional]))


@command("MYRIGHTS", AUTH, capability="ACL")
def do_MYRIGHTS(session, tag, args):
    name = mailboxArgument(args)
    args.end()
    rights = _call(session.account.access.myRights, name)
    session.sendUntagged(b"MYRIGHTS " + session.names.encode(name) + b" "
                         + _id(formatRights(rights, obsolete=True)))
