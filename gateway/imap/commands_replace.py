# -*- test-case-name: tests.test_imap_replace -*-
"""
REPLACE and UID REPLACE (RFC 8508): save a changed message in one
command.  The new message is added to the target mailbox (the selected one
or another) and the old one expunged from the selected mailbox, all or
nothing (L{gateway.store.replace}); the answer is C{* OK [APPENDUID ...]},
then the EXISTS and EXPUNGE (or VANISHED) responses of the change, then
the tagged OK.  The message is given as APPEND gives it: flags, date,
literal, C{literal8} (BINARY) or CATENATE.
"""

from gateway.errors import NoSuchMessage, QuotaExceeded, StoreError
from gateway.imap.commands_append import _appendMessage
from gateway.imap.commands_mailbox import nameArgument, openTarget, storeError
from gateway.imap.commands_selected import checkWritable
from gateway.imap.protocol import MESSAGE_COMMANDS, SEL, bad, command, no
from gateway.store.replace import replace

MESSAGE_COMMANDS.update(("REPLACE", "UID REPLACE"))


def _oldUid(session, text, uid):
    """
    The UID of the message a REPLACE names by C{seq-number} (C{*} is the
    last) or, for UID REPLACE, by UID.
    """
    view = session.view
    if text == "*":
        if not view.uids:
            raise no("No message to replace")
        return view.uids[-1]
    if not text.isdigit() or not text.isascii() or int(text) == 0 or len(text) > 10:
        raise bad("Invalid message %s %s" % ("UID" if uid else "sequence number", text[:20]))
    number = int(text)
    if uid:
        if view.seqOf(number) is None:
            raise no("No message with UID %d" % (number,))
        return number
    if number > len(view.uids):
        raise bad("Invalid message sequence number")
    return view.uids[number - 1]


def _replace(session, tag, args, uid):
    args.space()
    text = args.atom()
    args.space()
    name = nameArgument(args, new=True)
    args.space()
    message, flags, internalDate = _appendMessage(session, args)
    try:
        args.end()
        checkWritable(session)
        oldUid = _oldUid(session, text, uid)
        destination = openTarget(session, name)
        try:
            newUid = replace(session.view.mailbox, oldUid, message, flags, internalDate, destination)
        except NoSuchMessage:
            raise no("[EXPUNGEISSUED] The message was expunged meanwhile") from None
        except QuotaExceeded:
            raise no("[OVERQUOTA] Storage quota exceeded") from None
        except StoreError as e:
            raise storeError(e) from None
    finally:
        if not isinstance(message, bytes):
            message.close()
    session.sendUntagged(b"OK [APPENDUID %d %d] Replacement Message ready" % (destination.uidValidity, newUid))
    return ("OK", "REPLACE completed")


@command("REPLACE", SEL, capability="REPLACE")
def do_REPLACE(session, tag, args):
    return _replace(session, tag, args, uid=False)


@command("UID REPLACE", SEL, capability="REPLACE")
def do_UID_REPLACE(session, tag, args):
    return _replace(session, tag, args, uid=True)
