# -*- test-case-name: tests.test_imap_mailbox -*-
"""
APPEND (UIDPLUS, APPENDLIMIT, MULTIAPPEND, CATENATE, UTF8 and literal8
data): each message written off the reactor thread, the tagged OK once all
are durable.
"""

import datetime
import re

from twisted.internet import defer

from gateway.errors import QuotaExceeded, StoreError
from gateway.imap.binary import base64Parts
from gateway.imap.catenate import catenate
from gateway.imap.commands_mailbox import mailboxArgument, openMailbox, openTarget, storeError
from gateway.imap.format import badFlags
from gateway.imap.parser import IMAPSyntaxError
from gateway.imap.protocol import AUTH, bad, capability, command, no
from gateway.imap.sequence import formatSequenceSet
from gateway.imap.utf8 import isUTF8Data, utf8Message
from gateway.logging import getLogger
from gateway.store.access import SharedMailbox
from gateway.store.writer import callDurably

log = getLogger("imap")


# -- APPEND ------------------------------------------------------------------------------

_MONTHS = {m: i for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)}
_DATE_TIME = re.compile(r"^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$")


def parseDateTime(text):
    """
    An IMAP C{date-time} (C{"17-Jul-1996 02:44:25 -0700"}) as an aware
    C{datetime}.

    @raise IMAPSyntaxError: when malformed.
    """
    match = _DATE_TIME.match(text)
    if match is None or match.group(2).upper() not in _MONTHS:
        raise IMAPSyntaxError("bad date-time")
    day, month, year, hh, mm, ss, sign, zh, zm = match.groups()
    offset = datetime.timedelta(hours=int(zh), minutes=int(zm)) * (-1 if sign == "-" else 1)
    try:
        return datetime.datetime(int(year), _MONTHS[month.upper()], int(day), int(hh), int(mm), int(ss),
                                 tzinfo=datetime.timezone(offset))
    except ValueError:
        raise IMAPSyntaxError("bad date-time") from None


capability("APPENDLIMIT", lambda session: "APPENDLIMIT=%d" % (session.maxMessageSize,))


capability("MULTIAPPEND")


def _appendMessage(session, args):
    """
    One message of APPEND: C{(message, flags, internalDate)}, the message
    C{bytes} or, for a large one, a file; or built by CATENATE (RFC 4469).
    """
    flags = ()
    internalDate = None
    if args.peek() == b"(":
        flags = args.parenList()
        if badFlags(flags) or any(f.lower() == "\\recent" for f in flags):
            raise bad("Bad flag list")
        args.space()
    if args.peek() == b'"':
        internalDate = parseDateTime(args.quoted().decode("latin-1"))
        args.space()
    if args.data[args.pos:args.pos + 9].upper() == b"CATENATE ":
        args.atom()
        args.space()
        message = catenate(args.parenList(), lambda name: openMailbox(session, name, "r"),
                           session.factory and session.factory.urlFetch(session))
        if len(message) > session.maxMessageSize:
            raise no("[TOOBIG] Message larger than the APPENDLIMIT of %d octets" % (session.maxMessageSize,))
        return message, flags, internalDate
    if isUTF8Data(args):
        return utf8Message(session, args), flags, internalDate
    if args.peek() == b"~":
        args.pos += 1  # a literal8 (RFC 3516): binary parts are kept in base64
        message = args.literal()
        return base64Parts(message) if isinstance(message, bytes) else message, flags, internalDate
    return args.literal(), flags, internalDate


@command("APPEND", AUTH)
def do_APPEND(session, tag, args):
    """
    APPEND of one message, or of several (MULTIAPPEND, RFC 3502): all are
    stored or none.  Each is written off the reactor thread
    (L{gateway.store.writer.callDurably}); the tagged OK once all are
    durable.
    """
    name = mailboxArgument(args, new=True)
    messages = []
    try:
        # The target first, as Dovecot: [TRYCREATE] before a CATENATE URL's [BADURL].
        mailbox = openTarget(session, name)
        while True:
            args.space()
            messages.append(_appendMessage(session, args))
            if args.atEnd():
                break
    except BaseException:
        _closeMessages(messages)
        raise
    return _appendAll(mailbox, messages)


@defer.inlineCallbacks
def _appendAll(mailbox, messages):
    uids = []
    try:
        together = getattr(mailbox, "appendMessagesLater", None)
        if together is not None and len(messages) > 1:
            # One commit for all: none is there after a crash unless all are.
            uids = yield together(messages)
        else:
            for message, flags, internalDate in messages:
                uids.append((yield callDurably(mailbox, "appendMessage", message, flags, internalDate)))
    except (StoreError, QuotaExceeded) as e:
        yield _takeBack(mailbox, uids)
        if isinstance(e, QuotaExceeded):
            raise no("[OVERQUOTA] Storage quota exceeded") from None
        raise storeError(e) from None
    finally:
        _closeMessages(messages)
    return ("OK", "[APPENDUID %d %s] APPEND completed" % (mailbox.uidValidity, formatSequenceSet(uids)))


def _closeMessages(messages):
    for message, _flags, _date in messages:
        if not isinstance(message, bytes):
            message.close()


def _takeBack(mailbox, uids):
    """
    Remove the messages a failed MULTIAPPEND stored before it failed (on
    the owner's mailbox itself: a viewer who may insert need not have the
    rights to delete), by the owner's index writer.  (Only for a mailbox
    without C{appendMessagesLater}, which stores all or none.)

    @return: a L{Deferred} firing once they are gone (a failure to remove
        them is logged: the client is told of the APPEND's error).
    """
    if isinstance(mailbox, SharedMailbox):
        mailbox = mailbox._mailbox
    if not uids:
        return defer.succeed(None)
    d = callDurably(mailbox, "setFlags", uids, ["\\Deleted"], "+")
    d.addCallback(lambda _: callDurably(mailbox, "expunge", uids))
    return d.addErrback(lambda failure: log.failure("Taking back the messages of a failed MULTIAPPEND", failure))
