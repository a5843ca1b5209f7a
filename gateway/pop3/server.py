# -*- test-case-name: tests.test_pop3 -*-
"""
The POP3 server protocol: line framing with pipelining, the command table
(which also drives CAPA and the state checks), idle timeout, connection
limit, and L{makeFactory} for the wiring.

Our own small protocol rather than C{twisted.mail.pop3.POP3}, which was
measured broken on Python 3 (APOP always fails, no STLS, AUTH PLAIN never
answered, CRLF messages sent as CR CR LF, no dot-stuffing across 16 KB
chunk boundaries).  APOP is not offered: it needs a clear-text stored
password; CRAM-MD5 and SCRAM do the same job through SASL.
"""

import attr
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.python.failure import Failure
from zope.interface import implementer

from gateway import logging as glog
from gateway.cred.credentials import LoginContext
from gateway.errors import isStorageFull
from gateway.interfaces import IDrainable
from gateway.logging import FailureBudget
from gateway.pop3.auth import AuthorizationCommands
from gateway.pop3.transaction import TransactionCommands

log = glog.getLogger("pop3")

AUTHORIZATION = "AUTHORIZATION"
TRANSACTION = "TRANSACTION"
UPDATE = "UPDATE"

#: longest line accepted (commands and SASL responses: RFC 5034 allows long ones)
MAX_LINE = 16384

#: pipelined input buffered beyond this pauses reading from the client
MAX_BUFFER = 65536

IMPLEMENTATION = "gateway"



@attr.s(frozen=True)
class Command:
    """
    One row of the command table.

    @ivar name: the command, upper-case C{bytes}.
    @ivar states: the states it is valid in.
    @ivar handler: name of the C{do_*} method; it gets the argument
        C{bytes} (possibly empty) and may return a C{Deferred}, during
        which further input waits.
    @ivar capability: a callable C{(protocol) -> str or None} giving the CAPA
        line this command contributes, or C{None}.
    """

    name = attr.ib()
    states = attr.ib()
    handler = attr.ib()
    capability = attr.ib(default=None)


def _always(text):
    return lambda protocol: text


def _userCapability(protocol):
    if protocol.state == AUTHORIZATION and protocol.cleartextUsable():
        return "USER"
    return None


def _saslCapability(protocol):
    if protocol.state != AUTHORIZATION:
        return None
    names = protocol.mechanisms()
    return "SASL " + " ".join(names) if names else None


def _stlsCapability(protocol):
    if protocol.state == AUTHORIZATION and protocol.canStartTLS():
        return "STLS"
    return None


_BOTH = (AUTHORIZATION, TRANSACTION)

COMMANDS = [
    Command(b"CAPA", _BOTH, "do_CAPA"),
    Command(b"STLS", (AUTHORIZATION,), "do_STLS", _stlsCapability),
    Command(b"USER", (AUTHORIZATION,), "do_USER", _userCapability),
    Command(b"PASS", (AUTHORIZATION,), "do_PASS"),
    Command(b"AUTH", (AUTHORIZATION,), "do_AUTH", _saslCapability),
    Command(b"QUIT", _BOTH, "do_QUIT"),
    Command(b"STAT", (TRANSACTION,), "do_STAT"),
    Command(b"LIST", (TRANSACTION,), "do_LIST"),
    Command(b"RETR", (TRANSACTION,), "do_RETR"),
    Command(b"DELE", (TRANSACTION,), "do_DELE"),
    Command(b"NOOP", (TRANSACTION,), "do_NOOP"),
    Command(b"RSET", (TRANSACTION,), "do_RSET"),
    Command(b"TOP", (TRANSACTION,), "do_TOP", _always("TOP")),
    Command(b"UIDL", (TRANSACTION,), "do_UIDL", _always("UIDL")),
]

#: capabilities that belong to no single command
EXTRA_CAPABILITIES = ["RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "IMPLEMENTATION " + IMPLEMENTATION]

COMMAND_TABLE = {command.name: command for command in COMMANDS}


@implementer(IDrainable)
class POP3Server(FailureBudget, AuthorizationCommands, TransactionCommands, Protocol):
    """
    One POP3 session.

    @ivar state: L{AUTHORIZATION}, L{TRANSACTION} or L{UPDATE}.
    @ivar loginContext: the L{LoginContext} of the connection (renewed
        after STLS).
    """

    state = AUTHORIZATION
    commands = COMMAND_TABLE
    failureLog = log
    #: Why the server is stopping, once it is (L{drain}).
    _draining = None
    protocolName = 'POP3'

    def __init__(self, context, clock, idleTimeout, lockSession=True):
        self.context = context
        self.clock = clock
        self.idleTimeout = idleTimeout
        self.lockSession = lockSession
        self._buffer = b""
        self._busy = False
        self._discarding = False
        self._readingPaused = False
        self._timeoutCall = None
        self._closed = False
        self.loginContext = None
        self.initAuthorization()
        self.initTransaction()

    # -- connection ----------------------------------------------------------

    def connectionMade(self):
        self.loginContext = LoginContext.fromTransport("pop3", self.transport)
        if self.factory is not None and self.factory.overLimit():
            self.sendLine(b"-ERR [SYS/TEMP] Too many connections, try again later.")
            self._closed = True
            self.transport.loseConnection()
            return
        if self.factory is not None:
            self.factory.connectionOpened(self)
        # Each answer is written in one piece per reactor turn: no need for
        # Nagle's algorithm, whose wait for an ACK stalls the last segment
        # of a message behind the client's delayed ACK.
        setNoDelay = getattr(self.transport, "setTcpNoDelay", None)
        if setNoDelay is not None:
            try:
                setNoDelay(True)
            except Exception:
                pass
        self.sendLine(b"+OK POP3 server ready.")
        self.resetTimeout()

    def connectionLost(self, reason=None):
        self._closed = True
        if self._timeoutCall is not None and self._timeoutCall.active():
            self._timeoutCall.cancel()
        self._timeoutCall = None
        self.endTransaction()
        if self.factory is not None:
            self.factory.connectionClosed(self)
        self.reportFailures()

    def logFailure(self, reason, format, **kwargs):
        """
        As L{FailureBudget.logFailure}, but a full disk is no bug: one
        warning line, no traceback (the client still gets
        C{-ERR [SYS/TEMP]}).
        """
        reason = reason if reason is not None else Failure()
        if isStorageFull(reason.value):
            log.warn(format + ": the disk is full ({error})", error=reason.value, **kwargs)
            return
        FailureBudget.logFailure(self, reason, format, **kwargs)

    def sendLine(self, line):
        self.transport.write(line + b"\r\n")

    def sendStatus(self, ok, text):
        """
        Send C{+OK text} or C{-ERR text}; C{text} is C{str}.
        """
        status = b"+OK" if ok else b"-ERR"
        self.sendLine(status + b" " + text.encode("utf-8", "replace") if text else status)

    def sendMultiline(self, first, lines):
        """
        A multi-line response of short generated lines (none starts with C{.}).
        """
        out = [b"+OK " + first.encode("utf-8")]
        out.extend(line.encode("utf-8") for line in lines)
        out.append(b".")
        self.transport.write(b"\r\n".join(out) + b"\r\n")

    # -- idle timeout --------------------------------------------------------

    def resetTimeout(self):
        if self._closed or not self.idleTimeout:
            return
        if self._timeoutCall is not None and self._timeoutCall.active():
            self._timeoutCall.reset(self.idleTimeout)
        else:
            self._timeoutCall = self.clock.callLater(self.idleTimeout, self.timedOut)

    def timedOut(self):
        """
        Close an idle session; pending deletions are not carried out.
        """
        self._timeoutCall = None
        if self._closed:
            return
        if self.producer is not None:
            # A client that stopped reading in the middle of a message: no
            # status line can be sent now, and closing would wait for it.
            self._closed = True
            self.transport.abortConnection()
            return
        self.sendLine(b"-ERR Disconnected for inactivity.")
        self._closed = True
        self.transport.loseConnection()

    def drain(self, reason):
        """
        The server is stopping: C{-ERR [SYS/TEMP] reason} and the
        connection ends, now if no command is in flight, else once it has
        been answered; pending deletions are not carried out.
        """
        if self._closed:
            return
        self._draining = reason
        if not self._busy:
            self._goodbye()

    def _goodbye(self):
        self.sendStatus(False, "[SYS/TEMP] %s." % (self._draining,))
        self._closed = True
        self.transport.loseConnection()

    # -- framing -------------------------------------------------------------

    def dataReceived(self, data):
        if self._closed:
            return
        self.resetTimeout()
        self._buffer += data
        self._processBuffer()

    def _processBuffer(self):
        while not self._busy and not self._closed:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                if len(self._buffer) > MAX_LINE:
                    self._buffer = b""
                    if not self._discarding:
                        self._discarding = True
                        self.lineTooLong()
                break
            line, self._buffer = self._buffer[:newline], self._buffer[newline + 1:]
            if self._discarding:
                self._discarding = False
                continue
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > MAX_LINE:
                self.lineTooLong()
                continue
            self.lineReceived(line)
        if self._busy and len(self._buffer) > MAX_BUFFER and not self._readingPaused:
            self._readingPaused = True
            self.transport.pauseProducing()
        elif not self._busy and self._readingPaused:
            self._readingPaused = False
            self.transport.resumeProducing()

    def lineTooLong(self):
        if self.saslExchange is not None:
            self.saslExchange = None
            self.sendStatus(False, "Authentication failed: response too long.")
        else:
            self.sendStatus(False, "Line too long.")

    def discardBuffer(self):
        """
        Drop input not yet processed (STLS: nothing pipelined before the
        handshake may be acted on).
        """
        self._buffer = b""
        self._discarding = False

    def lineReceived(self, line):
        if self.saslExchange is not None:
            self.saslResponse(line)
            return
        name, _, argument = line.partition(b" ")
        name = name.upper()
        command = self.commands.get(name)
        if command is None:
            self.sendStatus(False, "Unknown command.")
            return
        if self.state not in command.states:
            if self.state == AUTHORIZATION:
                self.sendStatus(False, "Unknown command in AUTHORIZATION state (log in first).")
            else:
                self.sendStatus(False, "Command not valid in this state.")
            return
        try:
            result = self.context.monitor.command("pop3", command.handler[3:], getattr(self, command.handler), argument)
        except Exception:
            self.logFailure(None, "POP3 command {command} failed", command=name.decode("ascii", "replace"))
            self.sendStatus(False, "[SYS/TEMP] Internal error.")
            return
        if result is not None:
            self.waitFor(result)

    def waitFor(self, deferred):
        """
        Hold further input until C{deferred} fires (answers stay in order).
        """
        self._busy = True

        def done(result):
            self._busy = False
            if self._draining is not None and not self._closed:
                self._goodbye()
            if not self._closed:
                self.resetTimeout()
                self._processBuffer()
            return result

        def failed(failure):
            self.logFailure(failure, "POP3 command failed")
            if not self._closed:
                self.sendStatus(False, "[SYS/TEMP] Internal error.")
            return None

        deferred.addErrback(failed)
        deferred.addCallback(done)

    # -- commands shared by states -------------------------------------------

    def capabilities(self):
        """
        @return: C{list} of CAPA lines, from the command table.
        """
        lines = []
        for command in COMMANDS:
            if command.capability is not None:
                line = command.capability(self)
                if line:
                    lines.append(line)
        return lines + EXTRA_CAPABILITIES

    def do_CAPA(self, argument):
        self.sendMultiline("Capability list follows", self.capabilities())

    def do_QUIT(self, argument):
        if self.state != TRANSACTION:
            self._quit((True, "Logging out."))
            return None
        self.state = UPDATE
        return self.update().addCallback(self._quit)

    def _quit(self, answer):
        ok, text = answer
        self.sendStatus(ok, text)
        self._closed = True
        self.transport.loseConnection()


class POP3Factory(ServerFactory):
    """
    Builds L{POP3Server} sessions and counts them for C{max_connections}.
    """

    protocol = POP3Server

    def __init__(self, context, clock=None):
        self.context = context
        self.clock = clock if clock is not None else context.reactor
        config = context.config
        self.idleTimeout = config["pop3", "idle_timeout"]
        self.maxConnections = config["pop3", "max_connections"]
        self.lockSession = config["pop3", "lock_session"]
        self.connections = set()
        prepare = getattr(context.monitor, "prepareCommands", None)
        if prepare is not None:
            # The metrics of every command made now, not during traffic.
            prepare("pop3", [command.handler[3:] for command in COMMANDS])

    def buildProtocol(self, addr):
        protocol = self.protocol(self.context, self.clock, self.idleTimeout, self.lockSession)
        protocol.factory = self
        return protocol

    def overLimit(self):
        """
        Count a new connection; C{True} when it is one too many.
        """
        return len(self.connections) >= self.maxConnections

    def connectionOpened(self, protocol):
        self.connections.add(protocol)

    def connectionClosed(self, protocol):
        self.connections.discard(protocol)


def makeFactory(context):
    """
    The POP3 factory the wiring listens on every C{[pop3] listen} endpoint.

    @param context: the L{gateway.service.ServiceContext}.
    """
    return POP3Factory(context)
