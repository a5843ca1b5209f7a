# -*- test-case-name: tests.test_limits -*-
"""
Connection limits for a protocol's listeners, applied by wrapping its
factory (C{twisted.protocols.policies.WrappingFactory}), so that the
front-ends need no code of their own:

  - at most C{max_connections} connections at once, and at most
    C{max_connections_per_address} from one client address;
  - C{login_timeout}: seconds from connecting to logging in (IMAP, POP3);
  - C{request_timeout} and C{min_data_rate}: input that has begun to
    arrive (a line, a literal, a request's headers or body) must be
    complete within C{request_timeout} seconds plus one second for every
    C{min_data_rate} bytes that came (Apache's mod_reqtimeout counts so,
    with an upper bound); a client that sends a byte every few seconds is
    disconnected;
  - C{idle_timeout} for HTTP, whose own default is twelve hours.

A refused or disconnected client gets its protocol's answer (IMAP
C{* BYE}, POP3 C{-ERR}, HTTP 503 or 408, LMTP 421) before the connection
closes.  Input counts as complete when it ends with a line feed: every
protocol here ends its commands with one, and a server that stops reading
(C{pauseProducing}) stops the clock.

The wrapper is also the session's record (protocol, remote address, start,
byte counts) for L{gateway.admin.monitor}.

With worker processes, the connections are counted across all of them
(L{gateway.admin.sharedcounts.SharedConnectionCounts}, given to each
factory as C{counts}).
"""

import time

import attr
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from zope.interface import directlyProvides, providedBy

from gateway.admin.sharedcounts import SharedConnectionCounts  # noqa: F401 (the factories' counts)
from gateway.logging import getLogger

log = getLogger("limits")

_HTTP_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\nServer: gateway\r\nConnection: close\r\nRetry-After: 10\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s"
)


def _http(status, text):
    text = text + b"\n"
    head = _HTTP_503.replace(b"503 Service Unavailable", status)
    if not status.startswith(b"503"):
        head = head.replace(b"Retry-After: 10\r\n", b"")
    return head % (len(text), text)


#: What a client is told before the connection closes: protocol ->
#: reason -> bytes.  C{address}: too many connections from its address;
#: C{total}: too many connections; C{login}: not logged in in time;
#: C{slow}: input arriving too slowly.
MESSAGES = {
    "imap": {
        "address": b"* BYE [UNAVAILABLE] Too many connections from your address, try again later\r\n",
        "total": b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n",
        "login": b"* BYE Not logged in in time, closing\r\n",
        "slow": b"* BYE Command arriving too slowly, closing\r\n",
    },
    "pop3": {
        "address": b"-ERR [SYS/TEMP] Too many connections from your address, try again later.\r\n",
        "total": b"-ERR [SYS/TEMP] Too many connections, try again later.\r\n",
        "login": b"-ERR Not logged in in time, closing.\r\n",
        "slow": b"-ERR Command arriving too slowly, closing.\r\n",
    },
    "http": {
        "address": _http(b"503 Service Unavailable", b"Too many connections from your address, try again later."),
        "total": _http(b"503 Service Unavailable", b"Too many connections, try again later."),
        "slow": _http(b"408 Request Timeout", b"The request arrived too slowly."),
    },
    "lmtp": {
        "address": b"421 4.3.2 Too many connections from your address, try again later\r\n",
        "total": b"421 4.3.2 Too many connections, try again later\r\n",
        "slow": b"421 4.4.2 Command arriving too slowly, closing\r\n",
    },
}

_REASONS = {
    "address": "too many connections from the address",
    "total": "too many connections",
    "login": "not logged in in time",
    "slow": "input arriving too slowly",
}


@attr.s(frozen=True)
class ConnectionPolicy:
    """
    The limits of one protocol's listeners; 0 turns a limit off.

    @ivar protocol: the configuration section (C{'imap'}, ...).
    """

    protocol = attr.ib()
    maxConnections = attr.ib(default=0)
    maxPerAddress = attr.ib(default=0)
    loginTimeout = attr.ib(default=0)
    requestTimeout = attr.ib(default=0)
    minDataRate = attr.ib(default=0)
    idleTimeout = attr.ib(default=0)

    @classmethod
    def fromConfig(cls, config, protocol):
        """
        The policy of the section C{protocol}; options it lacks are off.
        """

        def get(name):
            return config.get(protocol, name) or 0

        return cls(
            protocol=protocol,
            maxConnections=get("max_connections"),
            maxPerAddress=get("max_connections_per_address"),
            loginTimeout=get("login_timeout"),
            requestTimeout=get("request_timeout"),
            minDataRate=get("min_data_rate"),
            idleTimeout=get("idle_timeout") if protocol == "http" else 0,
        )

    def message(self, reason):
        return MESSAGES.get(self.protocol, {}).get(reason, b"")


def _host(address):
    return getattr(address, "host", None)


def _port(address):
    return getattr(address, "port", None)


class _Refused(ProtocolWrapper):
    """
    A connection over a limit: its answer is written and the connection
    closed; the protocol it would have spoken is never built.
    """

    def __init__(self, factory, reason):
        self.factory = factory
        self.reason = reason
        self.wrappedProtocol = None

    def makeConnection(self, transport):
        self.transport = transport
        self.connected = 1
        message = self.factory.policy.message(self.reason)
        if message:
            transport.write(message)
        transport.loseConnection()

    def dataReceived(self, data):
        pass

    def connectionLost(self, reason):
        pass


class LimitedProtocol(ProtocolWrapper):
    """
    One connection through a L{LimitedFactory}: enforces the timeouts and
    counts bytes.

    @ivar remote: the client's address (a C{str}), or C{None}.
    @ivar remotePort: the client's port (an C{int}), or C{None}.
    @ivar since: when it connected (seconds since the epoch).
    @ivar bytesIn: octets received.
    @ivar bytesOut: octets written.
    """

    _partialSince = None
    _partialBytes = 0
    _writtenSince = 0
    _timer = None
    _loginTimer = None
    _closing = False

    remotePort = None

    def __init__(self, factory, wrappedProtocol, remote, remotePort=None):
        ProtocolWrapper.__init__(self, factory, wrappedProtocol)
        self.remote = remote
        self.remotePort = remotePort
        self.since = time.time()
        self.bytesIn = 0
        self.bytesOut = 0

    @property
    def protocol(self):
        return self.factory.policy.protocol

    def makeConnection(self, transport):
        policy = self.factory.policy
        if policy.loginTimeout:
            self._loginTimer = self.factory.clock.callLater(policy.loginTimeout, self._loginTimedOut)
        ProtocolWrapper.makeConnection(self, transport)

    # -- transport, as the wrapped protocol sees it ---------------------------

    def write(self, data):
        self.bytesOut += len(data)
        self.transport.write(data)

    def writeSequence(self, data):
        data = list(data)
        self.bytesOut += sum(len(part) for part in data)
        self.transport.writeSequence(data)

    @property
    def disconnecting(self):
        # The real transport's: it also knows of abortConnection().
        return bool(getattr(self.transport, "disconnecting", False))

    def loseConnection(self):
        self.transport.loseConnection()

    def startTLS(self, *args, **kwargs):
        """
        Start TLS on the real transport, and say so as it does (a
        C{LoginContext} made afterwards sees C{ISSLTransport}).
        """
        result = self.transport.startTLS(*args, **kwargs)
        directlyProvides(self, providedBy(self.transport))
        return result

    def pauseProducing(self):
        # The server stopped reading: what the client has not sent yet is
        # not its fault.
        self._partialSince = None
        self.transport.pauseProducing()

    def resumeProducing(self):
        self.transport.resumeProducing()

    # -- input ---------------------------------------------------------------

    def dataReceived(self, data):
        self.bytesIn += len(data)
        if self.factory.policy.requestTimeout:
            if data.endswith(b"\n"):
                self._partialSince = None
            elif self._partialSince is None:
                self._partialSince = self.factory.clock.seconds()
                self._partialBytes = len(data)
                self._writtenSince = self.bytesOut
                if self._timer is None:
                    self._timer = self.factory.clock.callLater(
                        self.factory.policy.requestTimeout, self._checkRate)
            else:
                self._partialBytes += len(data)
        self.wrappedProtocol.dataReceived(data)

    def _deadline(self):
        policy = self.factory.policy
        extra = self._partialBytes / policy.minDataRate if policy.minDataRate else 0
        return self._partialSince + policy.requestTimeout + extra

    def _checkRate(self):
        self._timer = None
        if self._partialSince is None or self._closing:
            return
        now = self.factory.clock.seconds()
        deadline = self._deadline()
        if now < deadline:
            self._timer = self.factory.clock.callLater(deadline - now, self._checkRate)
            return
        # A protocol answer goes out only between responses (an HTTP
        # response half written gets no 408 in its middle).
        self._close("slow", message=self.bytesOut == self._writtenSince or self.protocol != "http")

    def _loginTimedOut(self):
        self._loginTimer = None
        if self._closing or self.loggedIn():
            return
        self._close("login")

    def loggedIn(self):
        """
        Has the client logged in?  (The wrapped session's C{account}.)
        """
        return getattr(self.wrappedProtocol, "account", None) is not None

    def _close(self, reason, message=True):
        self._closing = True
        log.info("{protocol}: closing the connection from {remote}: {reason}",
                 protocol=self.protocol, remote=self.remote, reason=_REASONS[reason])
        self.factory.closed(reason)
        if message:
            text = self.factory.policy.message(reason)
            if text:
                self.write(text)
        self.loseConnection()

    def connectionLost(self, reason):
        for name in ("_timer", "_loginTimer"):
            call = getattr(self, name)
            if call is not None:
                setattr(self, name, None)
                if call.active():
                    call.cancel()
        self._closing = True
        self.factory.released(self)
        ProtocolWrapper.connectionLost(self, reason)


class LimitedFactory(WrappingFactory):
    """
    Wraps a protocol's factory with a L{ConnectionPolicy}.

    @ivar perAddress: C{dict} of client address -> connections open.
    @ivar refused: C{dict} of reason -> connections refused or closed by
        a limit (for the metrics).
    @ivar monitor: an object with C{sessionOpened(session)} and
        C{sessionClosed(session)}, or C{None}.
    @ivar counts: the L{SharedConnectionCounts} of a server with worker
        processes (its limits then count every worker's connections), or
        C{None}.
    """

    counts = None

    protocol = LimitedProtocol
    noisy = False

    def __init__(self, wrappedFactory, policy, clock, monitor=None):
        WrappingFactory.__init__(self, wrappedFactory)
        self.policy = policy
        self.clock = clock
        self.monitor = monitor
        self.perAddress = {}
        self.refused = {}

    def buildProtocol(self, addr):
        policy = self.policy
        host = _host(addr)
        shared = self.counts is not None and bool(policy.maxConnections or policy.maxPerAddress)
        if shared:
            reason = self.counts.acquire(policy.protocol, host, policy.maxConnections, policy.maxPerAddress)
            if reason is not None:
                return self._refuse(reason, host)
        else:
            if policy.maxConnections and len(self.protocols) >= policy.maxConnections:
                return self._refuse("total", host)
            if policy.maxPerAddress and host is not None and self.perAddress.get(host, 0) >= policy.maxPerAddress:
                return self._refuse("address", host)
        wrapped = self.wrappedFactory.buildProtocol(addr)
        if wrapped is None:
            if shared:
                self.counts.release(policy.protocol, host)
            return None
        if host is not None:
            self.perAddress[host] = self.perAddress.get(host, 0) + 1
        if policy.idleTimeout and hasattr(wrapped, "timeOut"):
            wrapped.timeOut = policy.idleTimeout
        p = self.protocol(self, wrapped, host, _port(addr))
        p.counted = policy.protocol if shared else None
        return p

    def _refuse(self, reason, host):
        count = self.closed(reason)
        if count & (count - 1) == 0:
            # The 1st, 2nd, 4th, 8th... refusal: a flood is logged, not copied.
            log.warn("{protocol}: refused a connection from {remote}: {reason} ({count} refused so far)",
                     protocol=self.policy.protocol, remote=host, reason=_REASONS[reason], count=count)
        return _Refused(self, reason)

    def closed(self, reason):
        """
        Count a connection refused or closed by a limit.

        @return: how many so far for that reason.
        """
        self.refused[reason] = self.refused.get(reason, 0) + 1
        return self.refused[reason]

    def registerProtocol(self, p):
        WrappingFactory.registerProtocol(self, p)
        if self.monitor is not None:
            self.monitor.sessionOpened(p)

    def released(self, p):
        host = p.remote
        if getattr(p, "counted", None) is not None and self.counts is not None:
            self.counts.release(p.counted, host)
            p.counted = None
        if host is not None:
            left = self.perAddress.get(host, 1) - 1
            if left > 0:
                self.perAddress[host] = left
            else:
                self.perAddress.pop(host, None)
        if self.monitor is not None:
            self.monitor.sessionClosed(p)
