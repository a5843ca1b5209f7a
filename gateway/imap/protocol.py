# -*- test-case-name: tests.test_imap_protocol -*-
"""
The IMAP session: framing (lines and literals, with limits), session states,
dispatch through the command table, and batched response writing.

Commands are rows of L{COMMANDS} (see L{command}); the command modules
(L{gateway.imap.commands_auth}, L{gateway.imap.commands_mailbox},
L{gateway.imap.commands_selected}) add their rows when imported, and
CAPABILITY is generated from the rows and the session's state.
"""

import re
import tempfile

import attr
from twisted.internet import defer
from twisted.internet.protocol import Protocol
from twisted.python import failure
from zope.interface import implementer

from gateway.cred.credentials import LoginContext
from gateway.errors import NoSuchMailbox, PermissionDenied, isStorageFull
from gateway.imap.names import codecFor
from gateway.imap.parser import IMAPSyntaxError, splitCommand, tagOf
from gateway.interfaces import IDrainable
from gateway.logging import FailureBudget, getLogger

log = getLogger("imap")

NOT_AUTHENTICATED = "notauth"
AUTHENTICATED = "auth"
SELECTED = "selected"
LOGOUT = "logout"

ANY = frozenset([NOT_AUTHENTICATED, AUTHENTICATED, SELECTED])
AUTH = frozenset([AUTHENTICATED, SELECTED])
SEL = frozenset([SELECTED])
NOAUTH = frozenset([NOT_AUTHENTICATED])

_LITERAL_MARK = re.compile(rb"\{(\d{1,20})(\+?)\}$")

#: What a continuation handler (AUTHENTICATE, IDLE) gets for a line that
#: was too long to keep: a line every handler refuses.
_OVERLONG = b"\x00"

#: Responses are written in batches of about this many octets.
BATCH_SIZE = 64 * 1024

#: A non-synchronizing literal larger than this many times the limit is
#: not read and discarded: the connection is closed with BYE instead.
DISCARD_FACTOR = 4

#: Before login, the longest command line, and the most octets a command
#: may bring in all (its lines and literals), as Dovecot's imap-login does.
PRELOGIN_LIMIT = 8192

#: Before login, the longest ID command line: RFC 2971's largest list (30
#: pairs of a 30-octet field and a 1024-octet value, quoted) and the verb.
PRELOGIN_ID_LIMIT = 30 * (2 + 30 + 1 + 2 + 1024 + 1) + 256
_ID_COMMAND = re.compile(rb"[^ ]{1,64} ID ", re.IGNORECASE)

#: After login, the most octets of literals one command may keep in memory.
MAX_IN_MEMORY = 1024 * 1024


#: An APPEND literal larger than this is written to a temporary file as it
#: arrives instead of being kept in memory.
SPOOL_ABOVE = 256 * 1024

# The answer to a command that met a full disk (RFC 5530): temporary, the
# session goes on, and reading, flagging and expunging still work.
DISK_FULL = "[UNAVAILABLE] The server's disk is full, try again later"


@attr.s(frozen=True)
class Command:
    """
    One row of the command table.

    @ivar name: the command name (upper case).
    @ivar states: C{frozenset} of states in which it is allowed.
    @ivar handler: C{handler(session, tag, args)} where C{args} is a
        L{gateway.imap.parser.Arguments}; it writes its responses and may
        return a C{Deferred}; it returns the tagged completion as
        C{(status, text)} (or a Deferred of it).
    @ivar capability: the capability it belongs to, or C{None} (core).
    @ivar expungeAllowed: may EXPUNGE responses be sent after it
        (RFC 3501 7.4.1: not after FETCH, STORE and SEARCH).
    """

    name = attr.ib()
    states = attr.ib()
    handler = attr.ib()
    capability = attr.ib(default=None)
    expungeAllowed = attr.ib(default=True)


#: The command table: name -> L{Command}.
COMMANDS = {}

#: Capabilities that are not tied to one command, in order: name ->
#: C{predicate(session)} (C{None}: always).
CAPABILITIES = {}


def command(name, states, capability=None, expungeAllowed=True):
    """
    Decorator that adds a handler as a row of L{COMMANDS}.
    """
    def register(handler):
        COMMANDS[name] = Command(name, frozenset(states), handler, capability, expungeAllowed)
        if capability is not None and capability not in CAPABILITIES:
            CAPABILITIES[capability] = None
        return handler
    return register


def capability(name, predicate=None):
    """
    Announce a capability that is not a command (e.g. C{LITERAL+}).
    """
    CAPABILITIES[name] = predicate


#: Commands whose literal is a message (APPEND; REPLACE, RFC 8508): it may
#: be as large as C{[imap] max_message_size} and goes to a file when large.
MESSAGE_COMMANDS = {"APPEND"}

#: Commands whose over-long literals are refused with a text of their own
#: (with a response code, so answered C{NO}): name ->
#: C{refusal(session)}, e.g. SETMETADATA's C{[METADATA MAXSIZE n]}.
LITERAL_REFUSALS = {}


class Response(Exception):
    """
    Raised by a handler to finish the command with a tagged C{NO} or C{BAD}.
    """

    def __init__(self, status, text):
        Exception.__init__(self, text)
        self.status = status
        self.text = text


def no(text):
    return Response("NO", text)


def bad(text):
    return Response("BAD", text)


@implementer(IDrainable)
class IMAPServer(FailureBudget, Protocol):
    """
    One IMAP connection.

    @ivar state: L{NOT_AUTHENTICATED}, L{AUTHENTICATED}, L{SELECTED} or
        L{LOGOUT}.
    @ivar account: the L{gateway.interfaces.IAccount} after login.
    @ivar view: the L{gateway.imap.view.MailboxView} in the selected state.
    @ivar enabled: C{set} of extensions ENABLEd by the client.
    """

    state = NOT_AUTHENTICATED
    account = None
    view = None
    #: The L{gateway.imap.notify.Notifier} after NOTIFY SET.
    notify = None
    factory = None
    failureLog = log
    protocolName = 'IMAP'
    #: Octets of the command being received that went to a file.
    _spooledSize = 0
    #: Why the server is stopping, once it is (L{drain}).
    _draining = None
    #: Whether the session used an XMAPI item (R-CAP-2, C{gatewayctl who}).
    xmapi = False
    # State of rarer paths (literals, over-long lines, paused reading):
    # class defaults until a session sets them, so that an idle session's
    # attributes stay below the 30 that CPython's shared-key instance
    # dictionaries hold (above, each session has a dictionary of its own,
    # 1.5 kB instead of 0.3).
    _literalRemaining = 0
    _spool = None
    _discardLiteral = None
    _skipLine = None
    _paused = False

    # Read from the configuration rather than copied into each session:
    # below 30 attributes an idle session's attribute dictionary takes a
    # fifth of the memory it takes above.
    maxLineLength = property(lambda self: self.context.config["imap", "max_line_length"])
    maxMessageSize = property(lambda self: self.context.config["imap", "max_message_size"])
    idleTimeout = property(lambda self: self.context.config["imap", "idle_timeout"])
    reactor = property(lambda self: self.context.reactor)
    #: How mailbox names are written: modified UTF-7, or UTF-8 once the
    #: client enabled it (L{gateway.imap.names}).
    names = property(lambda self: codecFor(self.enabled))

    @property
    def lineLimit(self):
        """
        The longest line accepted now: L{PRELOGIN_LIMIT} before login.
        """
        if self.state == NOT_AUTHENTICATED:
            return min(self.maxLineLength, PRELOGIN_LIMIT)
        return self.maxLineLength

    def _limitOf(self, head):
        """
        The longest line accepted for a line beginning with C{head}: an ID
        before login may bring RFC 2971's largest list.
        """
        limit = self.lineLimit
        if (limit < PRELOGIN_ID_LIMIT and self.state == NOT_AUTHENTICATED
                and self._lineHandler is None and not self._command and _ID_COMMAND.match(head)):
            return min(self.maxLineLength, PRELOGIN_ID_LIMIT)
        return limit

    def __init__(self, context):
        self.context = context
        self.enabled = set()
        self.idling = False
        self._buffer = b""
        self._pos = 0
        self._command = []
        self._commandSize = 0
        self._spooled = {}
        self._busy = False
        self._lineHandler = None
        self._out = []
        self._outSize = 0
        self._timeoutCall = None
        self._logout = None
        self.loginContext = None

    # -- connection --------------------------------------------------------------

    def connectionMade(self):
        self.loginContext = LoginContext.fromTransport("imap", self.transport)
        if self.factory is not None and not self.factory.accept(self):
            self.sendLine(b"* BYE Too many connections, try again later")
            self.flush()
            self.transport.loseConnection()
            self.state = LOGOUT
            return
        self.resetTimeout()
        self.sendLine(b"* OK [CAPABILITY " + self.capabilities() + b"] "
                      + self.context.hostname.encode("ascii", "replace") + b" gateway IMAP4rev1 ready")
        self.flush()

    def connectionLost(self, reason):
        self._resetCommand()
        self._buffer, self._pos = b"", 0
        self._out, self._outSize = [], 0
        self.reportFailures()
        if self.factory is not None:
            self.factory.release(self)
        self._cancelTimeout()
        if self.notify is not None:
            self.notify.stop()
            self.notify = None
        self.closeMailbox()
        self.state = LOGOUT
        if self._logout is not None:
            logout, self._logout = self._logout, None
            logout()

    @property
    def secure(self):
        return self.loginContext is not None and self.loginContext.secure

    def cleartextAllowed(self):
        return self.secure or self.context.cleartextAllowed(self.loginContext.localAddress)

    def startTLS(self):
        """
        Start TLS now; anything pipelined after STARTTLS is discarded.
        """
        self._buffer, self._pos = b"", 0
        self.transport.startTLS(self.context.tls)
        self.loginContext = attr.evolve(self.loginContext, secure=True)

    # -- timeouts ----------------------------------------------------------------

    def resetTimeout(self):
        if self.idleTimeout <= 0:
            return
        if self._timeoutCall is not None and self._timeoutCall.active():
            self._timeoutCall.reset(self.idleTimeout)
        else:
            self._timeoutCall = self.reactor.callLater(self.idleTimeout, self.timeoutConnection)

    def _cancelTimeout(self):
        if self._timeoutCall is not None and self._timeoutCall.active():
            self._timeoutCall.cancel()
        self._timeoutCall = None

    def drain(self, reason):
        """
        The server is stopping: C{* BYE reason} and the connection ends,
        now if no command is in flight (IDLE and AUTHENTICATE wait for the
        client: nothing is), else once it has been answered.
        """
        if self.state == LOGOUT or self.transport is None:
            return
        self._draining = reason
        if not self._busy or self._lineHandler is not None:
            self.sendUntagged(b"BYE " + reason.encode("ascii", "replace"))
            self.flush()
            self.state = LOGOUT
            self._buffer, self._pos = b"", 0
            self.transport.loseConnection()

    def timeoutConnection(self):
        self._timeoutCall = None
        self.sendLine(b"* BYE Autologout; idle for too long")
        self.flush()
        self.transport.loseConnection()

    # -- output ------------------------------------------------------------------

    def sendLine(self, line):
        """
        Queue one response line (without CRLF); written by L{flush}.
        """
        self._out.append(line)
        self._out.append(b"\r\n")
        self._outSize += len(line) + 2
        if self._outSize >= BATCH_SIZE:
            self.flush()

    def sendUntagged(self, text):
        self.sendLine(b"* " + text)

    def flush(self):
        """
        Write the queued responses with one C{transport.write}.
        """
        if self._out:
            data = b"".join(self._out)
            self._out = []
            self._outSize = 0
            if self.transport is not None:
                self.transport.write(data)

    def sendContinuation(self, text=b"Ready"):
        self.sendLine(b"+ " + text)
        self.flush()

    def capabilities(self):
        """
        The CAPABILITY list for this session's state, as C{bytes}.
        """
        from gateway.cred.sasl import mechanismNames

        names = ["IMAP4rev1"]
        if self.state == NOT_AUTHENTICATED:
            if not self.secure and self.context.tls is not None:
                names.append("STARTTLS")
            if not self.cleartextAllowed():
                names.append("LOGINDISABLED")
            names += ["AUTH=" + n for n in mechanismNames(
                self.secure, self.cleartextAllowed(), self.context.portal, self.loginContext.localAddress)]
        for name, predicate in CAPABILITIES.items():
            if name in ("STARTTLS", "AUTH", "LOGINDISABLED"):
                continue
            value = True if predicate is None else predicate(self)
            if value is True:
                names.append(name)
            elif value:
                names.append(value)
        return " ".join(names).encode("ascii")

    # -- input -------------------------------------------------------------------

    def bufferedSize(self):
        """
        The octets of client input this session holds: unread input, and
        the parts of a command being received.
        """
        return len(self._buffer) - self._pos + sum(len(part) for part in self._command)

    def dataReceived(self, data):
        if self.state == LOGOUT:
            # After BYE: nothing more is read, nor kept.
            return
        self.resetTimeout()
        if self._pos:
            self._buffer = self._buffer[self._pos:]
            self._pos = 0
        self._buffer += data
        self._process()

    def _process(self):
        """
        Consume complete lines and literals from the buffer.  The buffer is
        walked with an offset (C{_pos}) so that many pipelined commands in
        one packet cost linear time.
        """
        while self._pos < len(self._buffer) and self.state != LOGOUT:
            if self._busy and self._lineHandler is None:
                if len(self._buffer) - self._pos > self.lineLimit and not self._paused:
                    # A long command is running: stop reading until it is done.
                    self._paused = True
                    self.transport.pauseProducing()
                break
            buffer, pos = self._buffer, self._pos
            if self._literalRemaining:
                take = buffer[pos:pos + self._literalRemaining]
                self._pos = pos + len(take)
                self._literalRemaining -= len(take)
                if self._spool is not None:
                    self._spool.write(take)
                    if not self._literalRemaining:
                        self._spool.seek(0)
                        self._spool = None
                elif self._discardLiteral is None:
                    self._command.append(take)
                continue
            end = buffer.find(b"\n", pos)
            if end < 0:
                if len(buffer) - pos > self._limitOf(buffer[pos:pos + 70]):
                    if self._skipLine is None:
                        self._startSkipping(buffer[pos:pos + 200])
                    self._buffer, self._pos = b"", 0
                break
            line = buffer[pos:end]
            self._pos = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if self._skipLine is not None or len(line) > self._limitOf(line[:70]):
                if self._skipLine is None:
                    self._startSkipping(line[:200])
                tag, self._skipLine = self._skipLine, None
                if self._lineHandler is not None:
                    self._lineHandler(_OVERLONG)
                    self.flush()
                else:
                    self._finishCommand(tag, "BAD", "Command line too long")
                continue
            if self._lineHandler is not None:
                self._lineHandler(line)
                self.flush()
                continue
            if self._discardLiteral is not None:
                self._discardRest(line)
                continue
            try:
                self._lineReceived(line)
            except Exception:
                self._lineFailed(line)
        if self._pos and self._pos >= len(self._buffer):
            self._buffer, self._pos = b"", 0
        self.flush()

    def _lineFailed(self, line):
        """
        Reading a command failed (a bug, not the client's doing): answer it
        C{NO [SERVERBUG]}, skipping a literal it announces, and go on.
        """
        tag = tagOf(self._command[0] if self._command else line)
        self._resetCommand()
        self.logFailure(failure.Failure(), "IMAP command could not be read")
        text = "[SERVERBUG] Internal error"
        mark = _LITERAL_MARK.search(line)
        if mark is not None and mark.group(2):
            size = int(mark.group(1))
            if size > self._commandLimit() * DISCARD_FACTOR:
                self._bye(text)
                return
            self._discardLiteral = (tag, text)
            self._literalRemaining = size
            return
        self._finishCommand(tag, "NO", text)

    def _discardRest(self, line):
        """
        A line of a command whose literal was refused: skip it, and any
        further non-synchronizing literal it announces.
        """
        tag, text = self._discardLiteral
        mark = _LITERAL_MARK.search(line)
        if mark is not None and mark.group(2):
            size = int(mark.group(1))
            if size > self._commandLimit() * DISCARD_FACTOR:
                # Neither kept nor skipped: its octets must not be read as
                # commands either.
                self._discardLiteral = None
                self._bye(text)
                return
            self._literalRemaining = size
            return
        self._discardLiteral = None
        self._finishCommand(tag, "NO", text)

    def _startSkipping(self, start):
        """
        An over-long line: discard it through its end, then answer BAD.
        """
        if self._command:
            start = self._command[0]
            self._resetCommand()
        self._skipLine = tagOf(start)

    def _resetCommand(self):
        """
        Forget the command being received, and any literal of it written
        to a file.
        """
        self._command = []
        self._commandSize = self._spooledSize = 0
        for spooled in self._spooled.values():
            spooled.close()
        self._spooled = {}
        self._spool = None

    def _lineReceived(self, line):
        self._command.append(line)
        self._commandSize += len(line)
        mark = _LITERAL_MARK.search(line)
        if mark is None:
            data, spooled = b"".join(self._command), self._spooled
            self._command, self._commandSize, self._spooled = [], 0, {}
            self._spooledSize = 0
            self._dispatch(data, spooled)
            return
        size, nonSync = int(mark.group(1)), bool(mark.group(2))
        tag = tagOf(self._command[0])
        limit, refusal, spool = self._literalLimit(self._command[0])
        toFile = spool and size > SPOOL_ABOVE
        if size <= limit and (
                self._commandSize + size > self._commandLimit()
                # One literal of a command (APPEND's message) may go to a
                # file; the others stay in memory, within MAX_IN_MEMORY.
                or (toFile and self._spooled)
                or (not toFile and self._commandSize - self._spooledSize + size > MAX_IN_MEMORY)):
            limit = -1
            if self.state == NOT_AUTHENTICATED:
                refusal = "Command too long before login (limit %d octets)" % (PRELOGIN_LIMIT,)
            else:
                refusal = "Command too long"
        if size > limit:
            self._resetCommand()
            if not nonSync:
                status = "NO" if refusal.startswith("[") else "BAD"
                self._finishCommand(tag, status, refusal)
                return
            if size > max(limit, self.lineLimit) * DISCARD_FACTOR:
                self._bye(refusal)
                return
            self._discardLiteral = (tag, refusal)
            self._literalRemaining = size
            return
        self._command.append(b"\r\n")
        self._commandSize += size
        self._literalRemaining = size
        if toFile:
            self._spool = tempfile.TemporaryFile(prefix="gateway-append-")
            self._spooled[sum(len(part) for part in self._command)] = self._spool
            self._spooledSize = size
        if not nonSync:
            self.sendContinuation()

    def _bye(self, refusal):
        """
        A non-synchronizing literal too large to skip: BYE saying why, and
        the connection ends.
        """
        self.sendUntagged(b"BYE " + refusal.encode("ascii")
                          + b"; non-synchronizing literal too large to skip")
        self.flush()
        self.state = LOGOUT
        self._buffer, self._pos = b"", 0
        self.transport.loseConnection()

    def _commandLimit(self):
        """
        The most octets one command may bring, lines and literals together.
        """
        if self.state == NOT_AUTHENTICATED:
            return PRELOGIN_LIMIT
        return self.maxMessageSize + self.maxLineLength

    def _literalLimit(self, firstLine):
        """
        The largest literal a command may send, the refusal text, and
        whether a large one is written to a file rather than kept in memory
        (the message of an APPEND or a REPLACE).
        """
        name = ""
        try:
            _tag, name, args = splitCommand(firstLine)
            if name == "UID":
                args.space()
                name = "UID " + args.atom().upper()
        except IMAPSyntaxError:
            pass
        if name in MESSAGE_COMMANDS and self.state != NOT_AUTHENTICATED:
            limit = self.maxMessageSize
            text = "[TOOBIG] Message larger than the APPENDLIMIT of %d octets" % (limit,)
            # A REPLACE frees the old message's octets: the store decides.
            available = self._quotaAvailable() if name == "APPEND" else None
            if available is not None and available < limit:
                return available, "[OVERQUOTA] Not enough storage quota left for this message", True
            return limit, text, True
        refusal = LITERAL_REFUSALS.get(name)
        limit = self.lineLimit
        if refusal is not None and self.state != NOT_AUTHENTICATED:
            return limit, refusal(self), False
        return limit, "Literal too large (limit %d octets)" % (limit,), False

    def _quotaAvailable(self):
        quota = self.account.quota
        limit = quota.limit()
        if limit is None:
            return None
        return max(0, limit - quota.used())

    # -- dispatch ----------------------------------------------------------------

    def _dispatch(self, data, spooled=None):
        try:
            tag, name, args = splitCommand(data, spooled)
        except IMAPSyntaxError as e:
            self._finishCommand(tagOf(data), "BAD", str(e))
            return
        args.names = self.names
        if name == "UID":
            try:
                args.space()
                sub = args.atom().upper()
            except IMAPSyntaxError:
                self._finishCommand(tag, "BAD", "UID needs a command")
                return
            name = "UID " + sub
        log.debug("IMAP {tag} {command}", tag=tag[:40], command=name[:40])
        row = COMMANDS.get(name)
        if row is None:
            self._finishCommand(tag, "BAD", "Unknown command %s" % (name[:40],))
            return
        if self.state not in row.states:
            self._finishCommand(tag, "BAD", "%s is not allowed %s" % (name, _STATE_TEXT[self.state]))
            return
        self._busy = True
        try:
            result = self.context.monitor.command("imap", row.name, row.handler, self, tag, args)
        except Exception:
            self._commandDone(failure.Failure(), tag, row)
            return
        if isinstance(result, defer.Deferred):
            result.addBoth(self._commandDone, tag, row, True)
            result.addErrback(self.logFailure, "IMAP command completion failed")
        else:
            self._commandDone(result, tag, row)

    def _commandDone(self, result, tag, row, later=False):
        self._busy = False
        if self._paused:
            self._paused = False
            self.transport.resumeProducing()
        self._lineHandler = None
        if self.state == LOGOUT and isinstance(result, failure.Failure):
            return
        if isinstance(result, failure.Failure) and result.check(NoSuchMailbox) and self.view is not None:
            self._mailboxGone()
            result = ("NO", "The selected mailbox was deleted")
        if isinstance(result, failure.Failure):
            if result.check(Response):
                status, text = result.value.status, result.value.text
            elif result.check(PermissionDenied):
                status, text = "NO", "[NOPERM] Permission denied"
            elif result.check(IMAPSyntaxError, ValueError):
                status, text = "BAD", str(result.value) or "Syntax error"
            elif isStorageFull(result.value):
                log.warn("IMAP command {command}: the disk is full ({error})", command=row.name,
                         error=result.value)
                status, text = "NO", DISK_FULL
            elif result.check(RecursionError):
                # Input nested deeper than some code can follow: the
                # client's doing, so no traceback.
                log.warn("IMAP command {command} nested too deeply", command=row.name)
                status, text = "BAD", "Command nested too deeply"
            else:
                self.logFailure(result, "IMAP command {command} failed", command=row.name)
                status, text = "NO", "[SERVERBUG] Internal error"
        elif result is None:
            status, text = "OK", "%s completed" % (row.name,)
        else:
            status, text = result
        before = self.view.maxUid() if self.view is not None else 0
        if self.view is not None and self.state == SELECTED and self.transport is not None:
            try:
                self.view.sendUpdates(self, expunge=row.expungeAllowed)
            except NoSuchMailbox:
                self._mailboxGone()
                status, text = "NO", "The selected mailbox was deleted"
            except Exception:
                self.logFailure(failure.Failure(), "IMAP mailbox update failed")
        if self.notify is not None and self.transport is not None and self.state != LOGOUT:
            try:
                self.notify.commandDone(before, row.name)
            except Exception:
                self.logFailure(failure.Failure(), "IMAP NOTIFY update failed")
        if status:
            self._finishCommand(tag, status, text)
        if self._draining is not None and self.state != LOGOUT:
            self.sendUntagged(b"BYE " + self._draining.encode("ascii", "replace"))
            self.state = LOGOUT
        if self.state == LOGOUT or later:
            self.flush()
        if self.state == LOGOUT:
            self.transport.loseConnection()
            return
        if later and self._pos < len(self._buffer) and not self._busy:
            self._process()

    def _finishCommand(self, tag, status, text):
        if isinstance(text, str):
            text = text.encode("utf-8", "replace")
        self.sendLine(tag.encode("latin-1") + b" " + status.encode("ascii") + b" " + text)

    # -- helpers for handlers ---------------------------------------------------

    def setLineHandler(self, handler):
        """
        Send the next lines (continuation responses, IDLE's DONE) to
        C{handler(line)} until the command completes.
        """
        self._lineHandler = handler

    def _mailboxGone(self):
        """
        The selected mailbox was deleted by someone else: the session's
        numbering cannot go on, so the connection ends (as Dovecot does).
        """
        self.sendUntagged(b"BYE The selected mailbox was deleted")
        self.closeMailbox()
        self.state = LOGOUT

    def enableCondstore(self):
        """
        A CONDSTORE-enabling command (RFC 7162 3.1) was used.
        """
        if "CONDSTORE" not in self.enabled:
            self.enabled.add("CONDSTORE")
            if self.view is not None:
                self.sendUntagged(b"OK [HIGHESTMODSEQ %d] CONDSTORE enabled" % (self.view.modseq,))

    def closeMailbox(self):
        if self.view is not None:
            self.view.close()
            self.view = None
        if self.state == SELECTED:
            self.state = AUTHENTICATED


_STATE_TEXT = {
    NOT_AUTHENTICATED: "before login",
    AUTHENTICATED: "without a selected mailbox",
    SELECTED: "with a mailbox selected",
    LOGOUT: "after logout",
}
