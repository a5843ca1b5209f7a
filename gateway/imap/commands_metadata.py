# -*- test-case-name: tests.test_imap_metadata -*-
"""
The IMAP METADATA extension (RFC 5464: GETMETADATA, SETMETADATA),
LIST-METADATA (RFC 9590: C{LIST ... RETURN (METADATA (...))}) and the
XMAPI create-param C{XCLASS} (docs/xmapi.md R-CLASS-4), over the METADATA
service the wiring builds (C{context.metadata},
L{gateway.store.metadata.Metadata}), which checks rights through the access
layer.

C{METADATA} is announced, not C{METADATA-SERVER}: a server announcing
C{METADATA} supports both server and mailbox entries (RFC 5464 1).
Private entries are supported, so C{[METADATA NOPRIVATE]} is never
answered.  Unsolicited METADATA responses (which need ENABLE METADATA) are
not sent.
"""

import re

from gateway.errors import StoreError
from gateway.imap.commands_mailbox import CREATE_PARAMS, LIST_RETURN_EXTENSIONS, mailboxArgument, storeError
from gateway.imap.format import encodeMailbox, quote
from gateway.imap.parser import IMAPSyntaxError
from gateway.imap.protocol import AUTH, LITERAL_REFUSALS, bad, capability, command, no
from gateway.imap.xmapi_calendar import markGroupware
from gateway.mapi.folders import checkClass
from gateway.store.metadata import (
    InvalidEntryName,
    InvalidValue,
    ReadOnlyEntry,
    TooManyEntries,
    ValueTooLarge,
    checkEntryName,
)

capability("METADATA")
capability("LIST-METADATA")

_DEPTHS = ("0", "1", "INFINITY")
_ATOM = re.compile(r"[!#-'+-Z^-z|~]+\Z")


def _metadata(session):
    metadata = session.context.metadata
    if metadata is None:
        raise no("[UNAVAILABLE] METADATA is not configured")
    return metadata


def _call(f, *args):
    """
    Run a METADATA service call, answering its errors as RFC 5464 and
    docs/xmapi.md section 10 say.
    """
    try:
        return f(*args)
    except InvalidEntryName as e:
        raise bad(str(e)) from None
    except ValueTooLarge as e:
        raise no("[METADATA MAXSIZE %d] %s" % (e.limit, e)) from None
    except TooManyEntries as e:
        raise no("[METADATA TOOMANY] %s" % (e,)) from None
    except ReadOnlyEntry as e:
        raise no("[NOPERM] %s" % (e,)) from None
    except InvalidValue as e:
        raise no("[CANNOT] %s" % (e,)) from None
    except StoreError as e:
        raise storeError(e) from None


def _later(f, *args):
    """
    Run a METADATA service call that answers with a L{Deferred} (a write
    by the index writer), its errors answered as L{_call} answers them.
    """
    return _call(f, *args).addErrback(lambda failure: _call(failure.raiseException))


#: The entries of XMAPI (docs/xmapi.md section 6.1): a session that uses
#: them, or C{CREATE ... (XCLASS)}, is a groupware session (R-CAP-2).
_XMAPI_ENTRIES = ("/shared/vendor/xmapi/", "/private/vendor/xmapi/")


def _markXmapi(session, names, depth="0"):
    """
    Mark C{session} as a groupware session (R-CAP-2) when C{names} name an
    XMAPI entry, or (with C{depth}) a prefix of one.
    """
    for name in names:
        name = name.lower().rstrip("/") + "/"
        if name.startswith(_XMAPI_ENTRIES) or (depth != "0" and any(
                entry.startswith(name) for entry in _XMAPI_ENTRIES)):
            markGroupware(session)
            return


def _entryText(token):
    if isinstance(token, list):
        raise IMAPSyntaxError("expected an entry name")
    return token.decode("latin-1") if isinstance(token, bytes) else token


def _entries(args):
    """
    C{entries}: one entry, or a parenthesized list of them.
    """
    if args.peek() == b"(":
        names = [_entryText(token) for token in args.parenList()]
        if not names:
            raise IMAPSyntaxError("expected an entry name")
        return names
    return [_entryText(args.astring())]


def _options(tokens):
    """
    GETMETADATA options: C{MAXSIZE n}, C{DEPTH 0/1/infinity}.

    @return: C{(maxSize, depth)}.
    """
    maxSize, depth = None, "0"
    if len(tokens) % 2:
        raise bad("GETMETADATA options come in pairs")
    for label, value in zip(tokens[0::2], tokens[1::2], strict=True):
        label = str(label).upper()
        if isinstance(value, list):
            raise bad("Bad GETMETADATA option %s" % (label[:20],))
        value = value.decode("latin-1") if isinstance(value, bytes) else value
        if label == "MAXSIZE" and value.isdigit() and len(value) < 20:
            maxSize = int(value)
        elif label == "DEPTH" and value.upper() in _DEPTHS:
            depth = value.lower()
        else:
            raise bad("Bad GETMETADATA option %s" % (label[:20],))
    return maxSize, depth


def formatEntry(name):
    return name.encode("ascii") if _ATOM.match(name) else quote(name.encode("ascii"))


def formatValue(value):
    """
    An entry value: NIL, a quoted string, a literal, or a C{literal8} for
    octets a literal cannot hold (NUL).
    """
    if value is None:
        return b"NIL"
    if b"\x00" in value:
        return b"~{%d}\r\n%s" % (len(value), value)
    return quote(value)


def metadataResponse(name, pairs, names=None):
    """
    C{METADATA mailbox (entry value ...)} (RFC 5464 4.4.1), the name
    written by the L{gateway.interfaces.IMailboxNameCodec} C{names}
    (C{None}: modified UTF-7).
    """
    body = b" ".join(formatEntry(entry) + b" " + formatValue(value) for entry, value in pairs)
    return b"METADATA " + (names.encode(name) if names is not None else encodeMailbox(name)) + b" (" + body + b")"


@command("GETMETADATA", AUTH, capability="METADATA")
def do_GETMETADATA(session, tag, args):
    args.space()
    maxSize, depth = None, "0"
    if args.peek() == b"(":
        maxSize, depth = _options(args.parenList())
        args.space()
    name = args.mailbox()
    args.space()
    names = _entries(args)
    if not args.atEnd():
        # The RFC's own examples put the options after the mailbox name
        # (RFC 5464 4.2.1, 4.2.2); clients copied them, so both orders work.
        args.space()
        maxSize, depth = _options(names)
        names = _entries(args)
    args.end()
    _markXmapi(session, names, depth)
    pairs, longest = _call(_metadata(session).getEntries, session.account.access, name, names, depth, maxSize)
    if pairs:
        session.sendUntagged(metadataResponse(name, pairs, session.names))
    if longest:
        return ("OK", "[METADATA LONGENTRIES %d] GETMETADATA completed" % (longest,))
    return None


def _entryValues(args):
    """
    C{entry-values}: C{"(" entry SP value *(SP entry SP value) ")"}, where a
    value is NIL, a string, or a C{literal8} (C{~{n}}).
    """
    if args.peek() != b"(":
        raise IMAPSyntaxError("expected a list of entries and values")
    args.pos += 1
    pairs = []
    while True:
        if pairs:
            if args.peek() == b")":
                args.pos += 1
                return pairs
            args.space()
        entry = _entryText(args.astring())
        args.space()
        if args.data[args.pos:args.pos + 2] == b"~{":
            args.pos += 1
            value = args.literal()
        elif args.peek() in (b'"', b"{"):
            value = args.string()
        else:
            if args.atom().upper() != "NIL":
                raise IMAPSyntaxError("expected a string or NIL")
            value = None
        pairs.append((entry, value))


def _literalRefusal(session):
    """
    A SETMETADATA value longer than a command may carry: the RFC 5464 4.3
    answer, naming the largest value the session can send.
    """
    limit = session.maxLineLength
    if session.context.metadata is not None:
        limit = min(limit, session.context.metadata.maxValueSize)
    return "[METADATA MAXSIZE %d] Value too large" % (limit,)


LITERAL_REFUSALS["SETMETADATA"] = _literalRefusal


@command("SETMETADATA", AUTH, capability="METADATA")
def do_SETMETADATA(session, tag, args):
    name = mailboxArgument(args)
    args.space()
    pairs = _entryValues(args)
    args.end()
    _markXmapi(session, [entry for entry, _ in pairs])
    return _later(_metadata(session).setEntriesLater, session.account.access, name, pairs).addCallback(
        lambda _: None)


# -- LIST ... RETURN (METADATA (...)), RFC 9590 -----------------------------------------


class _ListMetadata:
    """
    The C{METADATA} return option of LIST: C{METADATA ([MAXSIZE n] entries)}
    (the C{GETMETADATA} options and entries in one list; C{(MAXSIZE n)
    (entries)} is taken too).  A mailbox the viewer may not read entries of
    gets no METADATA response (RFC 9590 3), nor does one that has none of
    the entries asked for.
    """

    def parse(self, value):
        if not isinstance(value, list) or not value:
            raise bad("METADATA needs a list of entries")
        tokens = list(value)
        if len(tokens) == 2 and isinstance(tokens[0], list):
            maxSize, depth = _options(tokens.pop(0))
        else:
            options = []
            while len(tokens) > 1 and not isinstance(tokens[0], list) \
                    and str(tokens[0]).upper() in ("MAXSIZE", "DEPTH"):
                options += [tokens.pop(0), tokens.pop(0)]
            maxSize, depth = _options(options)
        if len(tokens) == 1 and isinstance(tokens[0], list):
            tokens = tokens[0]
        if not tokens:
            raise bad("METADATA needs entries")
        names = [_entryText(token) for token in tokens]
        try:
            for entry in names:
                checkEntryName(entry)
        except InvalidEntryName as e:
            raise bad(str(e)) from None
        return {"names": names, "maxSize": maxSize, "depth": depth, "longest": 0}

    def render(self, session, name, info, state):
        _markXmapi(session, state["names"], state["depth"])
        metadata = session.context.metadata
        if metadata is None:
            return
        try:
            pairs, longest = metadata.getEntries(session.account.access, name, state["names"], state["depth"],
                                                 state["maxSize"], False)
        except StoreError:
            return
        state["longest"] = max(state["longest"], longest)
        if pairs:
            session.sendUntagged(metadataResponse(name, pairs, session.names))

    def done(self, state):
        if state["longest"]:
            return "[METADATA LONGENTRIES %d] LIST completed" % (state["longest"],)
        return None


LIST_RETURN_EXTENSIONS["METADATA"] = _ListMetadata()


# -- CREATE ... (XCLASS "IPF.Appointment"), docs/xmapi.md R-CLASS-4 --------------------


def _xclass(session, value):
    markGroupware(session)
    raw = value if isinstance(value, bytes) else value.encode("latin-1")
    try:
        mailboxClass = checkClass(raw)
    except InvalidValue as e:
        raise no("[CANNOT] %s" % (e,)) from None

    def record(session, name):
        metadata = session.context.metadata
        if metadata is not None:
            return _later(metadata.recordClassLater, session.account.access, name, mailboxClass)
        return None

    return mailboxClass, record


CREATE_PARAMS["XCLASS"] = _xclass
