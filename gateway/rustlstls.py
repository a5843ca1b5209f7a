# -*- test-case-name: tests.test_rustlstls -*-
"""
TLS over rustls, the C{rtls} package, in place of OpenSSL: C{ssl:}
listeners, STARTTLS, STLS and AUTH TLS with C{[tls] engine = rustls}, or
C{auto} (the default) when C{rtls} is installed.

What an idle TLS connection costs the server, 1,000 held in one process
(C{bench/tlsidle.py}, C heap in use per connection): OpenSSL 4.0.3 through
pyOpenSSL 21.9 kB (16.5 kB of it allocated by C{SSL_new} before any byte is
exchanged: the connection, 6.1 kB, and its two record layers, 8.8 kB);
rustls 0.23 through C{rtls} 7.8 kB, and still 7.8 kB after a 300 kB
download.  Issue 14's goal, 10,000 idle TLS sessions under 20 kB each, is
out of reach over OpenSSL, whose connection alone takes 21.9 kB; over
rustls a session in IDLE takes about 15 kB (C{bench/imapidle.py --tls}).

rustls does not tell which server name a client asks for: the wrapper
reads it from the ClientHello (L{serverName}) and begins TLS with that
name's domain certificate (L{gateway.tlscontext.DomainCertificates}).

STARTTLS, STLS and AUTH TLS start TLS over rustls as well
(L{StartTLSOverRustls}, the connections of gateway's listeners).

What rustls does not do here: FTP data connections (their C{startTLS} is
on connections of the FTP module's own ports) stay on OpenSSL; TLS 1.2
offers only ECDHE with AES-GCM or ChaCha20 (no CBC, no RSA key exchange);
sessions are not resumed (C{rtls} builds a server configuration, with its
own session cache, for each connection, and has no ticket key to set).
C{engine = openssl} is there for clients that need those.
"""

from twisted.internet.interfaces import IHandshakeListener, ISSLTransport, IStreamServerEndpoint
from twisted.internet.protocol import Protocol
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from zope.interface import directlyProvides, implementer, providedBy

from gateway.errors import ConfigurationError
from gateway.logging import getLogger

log = getLogger("tls")

try:
    import rtls
except ImportError:  # a requirement of gateway's, but [tls] engine = openssl works without it
    rtls = None

#: Plain text handed to rustls at once (a 16 kB record each).
CHUNK = 2**14


def chooseEngine(engine):
    """
    The TLS library C{[tls] engine} stands for: C{'rustls'} or C{'openssl'}.
    C{'auto'} (the default) is rustls when C{rtls} is installed (it is one
    of gateway's requirements), else OpenSSL, and says so.
    """
    if engine != "auto":
        return engine
    if rtls is None:
        log.warn("[tls] engine = auto: the rtls package is not installed; TLS over OpenSSL")
        return "openssl"
    return "rustls"


def rustlsContext(certPath, keyPath, minimum, option):
    """
    A rustls server context for a PEM certificate (chain) and key, TLS
    C{minimum} (C{'1.2'} or C{'1.3'}) or newer.

    @raise ConfigurationError: naming C{option}, when C{rtls} is not
        installed or the files cannot be loaded.
    """
    if rtls is None:
        raise ConfigurationError("%s: [tls] engine = rustls needs the rtls package (pip install rtls)"
                                 % (option,))
    context = rtls.SSLContext(rtls.PROTOCOL_TLS_SERVER)
    context.minimum_version = rtls.TLSVersion.TLSv1_3 if minimum == "1.3" else rtls.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certPath, keyPath)
    except Exception as e:
        raise ConfigurationError("%s: rustls cannot load %s and %s: %s" % (option, certPath, keyPath, e))
    return context


#: Bytes of a ClientHello read for its server name before giving up (and
#: letting rustls answer whatever it is): a record's most, and a header.
HELLO_LIMIT = 2**14 + 5


_HOSTNAME_BYTES = b"abcdefghijklmnopqrstuvwxyz0123456789.-_"


def serverName(data):
    """
    The server name (SNI) a TLS ClientHello at the start of C{data} asks
    for, read without trusting a length.

    @return: C{str} (a host name in lower case), C{None} when the
        ClientHello names none (or something else than a host name) or
        C{data} is no ClientHello, or C{Ellipsis} when C{data} is the start
        of one and more is needed.
    """
    hello = bytearray()
    at = 0
    # The handshake message, from as many handshake records as it spans.
    while True:
        if len(data) < at + 5:
            return Ellipsis
        if data[at] != 22 or data[at + 1] != 3:
            return None
        length = int.from_bytes(data[at + 3:at + 5], "big")
        if not 0 < length <= 2**14:
            return None
        if len(data) < at + 5 + length:
            return Ellipsis
        hello += data[at + 5:at + 5 + length]
        at += 5 + length
        if len(hello) >= 4:
            if hello[0] != 1:
                return None
            size = int.from_bytes(hello[1:4], "big")
            if len(hello) >= 4 + size:
                break
    body = memoryview(hello)[4:4 + size]

    def skip(offset, width):
        if offset + width > len(body):
            raise ValueError
        return offset + width + int.from_bytes(body[offset:offset + width], "big")

    try:
        offset = skip(2 + 32, 1)  # version, random, session id
        offset = skip(offset, 2)  # cipher suites
        offset = skip(offset, 1)  # compression methods
        if offset == len(body):
            return None  # no extensions
        end = skip(offset, 2)
        if end > len(body):
            return None
        offset += 2
        while offset + 4 <= end:
            kind = int.from_bytes(body[offset:offset + 2], "big")
            following = skip(offset + 2, 2)
            if following > end:
                return None
            if kind == 0:  # server_name: a list of (type, name)
                item = offset + 6
                while item + 3 <= following:
                    nameEnd = item + 3 + int.from_bytes(body[item + 1:item + 3], "big")
                    if nameEnd > following:
                        return None
                    if body[item] == 0:
                        name = bytes(body[item + 3:nameEnd]).lower()
                        if not name or name.strip(_HOSTNAME_BYTES):
                            return None  # not a host name
                        return name.decode("ascii")
                    item = nameEnd
                return None
            offset = following
    except ValueError:
        return None
    return None


class RustlsServerProtocol(ProtocolWrapper):
    """
    The server end of a TLS connection over rustls, between the TCP
    transport and the protocol it wraps, which sees a transport providing
    C{ISSLTransport}.  What the protocol writes before the handshake is done
    waits for it; a TLS error from the client ends the connection (logged
    as one line, no traceback).
    """

    _tls = None
    _waiting = None
    _closing = False

    _hello = None

    def makeConnection(self, transport):
        self.startOn(transport)
        self.wrappedProtocol.makeConnection(self)

    def startOn(self, transport):
        """
        Wait for a ClientHello on C{transport}: the start of an C{ssl:}
        connection, or of TLS on a connection whose protocol is already
        running (L{startTLS}).
        """
        self._hello = bytearray()  # until the ClientHello has said which name it is for
        self._waiting = []
        directlyProvides(self, providedBy(transport), ISSLTransport)
        Protocol.makeConnection(self, transport)
        self.factory.registerProtocol(self)

    def _start(self, name):
        """
        Begin TLS with the context for server name C{name} (or C{None}).
        """
        context = self.factory.context(name)
        self._incoming, self._outgoing = rtls.MemoryBIO(), rtls.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)

    def _flush(self):
        data = self._outgoing.read()
        if data:
            self.transport.write(data)

    def _failed(self, error):
        log.info("TLS error from {peer}: {error}", peer=self.transport.getPeer(), error=str(error))
        self._flush()
        self.transport.abortConnection()

    def dataReceived(self, data):
        if self._hello is not None:
            self._hello += data
            name = serverName(self._hello)
            if name is Ellipsis and len(self._hello) < HELLO_LIMIT:
                return
            data, self._hello = bytes(self._hello), None
            self._start(None if name is Ellipsis else name)
        if self._tls is None:
            return
        self._incoming.write(data)
        if self._waiting is not None:
            try:
                self._tls.do_handshake()
            except rtls.SSLWantReadError:
                self._flush()
                return
            except rtls.SSLError as e:
                self._failed(e)
                return
            self._flush()
            waiting, self._waiting = self._waiting, None
            if IHandshakeListener.providedBy(self.wrappedProtocol):
                self.wrappedProtocol.handshakeCompleted()
            for chunk in waiting:
                self.write(chunk)
            if self._closing:
                self.disconnecting = False
                self.loseConnection()
                return
        while self._tls is not None:
            try:
                data = self._tls.read(65536)
            except rtls.SSLWantReadError:
                break
            except rtls.SSLZeroReturnError:
                self._flush()
                self.transport.loseConnection()  # the client's close_notify
                return
            except rtls.SSLError as e:
                self._failed(e)
                return
            if not data:
                break
            self.wrappedProtocol.dataReceived(data)
        if self._tls is not None:
            self._flush()

    def write(self, data):
        if not data:
            return
        if self._waiting is not None:
            self._waiting.append(bytes(data))
            return
        if self._tls is None:
            return  # lost
        view = memoryview(data)
        try:
            for start in range(0, len(view), CHUNK):
                self._tls.write(view[start:start + CHUNK])
                self._flush()
        except rtls.SSLError as e:
            self._failed(e)

    def writeSequence(self, data):
        self.write(b"".join(data))

    def loseConnection(self):
        """
        Send what waits, then close_notify, then close.  Before the
        handshake: once it is done if something waits to be sent (as
        Twisted's TLS does), else at once.
        """
        if self.disconnecting:
            return
        self.disconnecting = True
        if self._waiting is not None:
            if self._waiting:
                self._closing = True  # after the handshake
                return
            self.transport.loseConnection()
            return
        if self._tls is None:
            return
        try:
            self._tls.unwrap()
        except rtls.SSLError:
            pass  # close_notify sent; the client's is not awaited
        self._flush()
        self.transport.loseConnection()

    def abortConnection(self):
        self.transport.abortConnection()

    def getPeerCertificate(self):
        return None  # client certificates are not asked for

    def negotiatedProtocol(self):
        return None

    def connectionLost(self, reason):
        self._tls = self._incoming = self._outgoing = self._hello = self._waiting = None  # nothing more is sent
        ProtocolWrapper.connectionLost(self, reason)


class RustlsServerFactory(WrappingFactory):
    """
    Wraps C{wrappedFactory}'s connections in TLS over rustls;
    C{context(serverName)} gives the current rustls context for the name a
    client asks for (or C{None}; a reload renews them).
    """

    protocol = RustlsServerProtocol
    noisy = False

    def __init__(self, context, wrappedFactory):
        WrappingFactory.__init__(self, wrappedFactory)
        self.context = context

    def logPrefix(self):
        return "%s (TLS)" % (WrappingFactory.logPrefix(self),)


class _Started:
    """
    The factory of a connection that started TLS (L{startTLS}): its
    context, and no registry of connections.
    """

    __slots__ = ("context",)

    def __init__(self, context):
        self.context = context

    def registerProtocol(self, protocol):
        pass

    def unregisterProtocol(self, protocol):
        pass


def startTLS(connection, context):
    """
    Start TLS over rustls on TCP C{connection} (STARTTLS, STLS, AUTH TLS):
    a L{RustlsServerProtocol} goes between it and its protocol, which
    writes through it from now on.  What the protocol wrote before (its
    "begin TLS" reply) is already in the connection's buffer and goes out
    first, in clear text; what it writes until the handshake is done waits
    for it.

    @param context: C{context(serverName)} -> the current rustls context.
    """
    protocol = connection.protocol
    tls = RustlsServerProtocol(_Started(context), protocol)
    tls.startOn(connection)
    connection.protocol = tls
    protocol.transport = tls


class StartTLSOverRustls:
    """
    Mixed into a TCP server connection: C{startTLS} with a context factory
    of the rustls engine (C{[tls] engine = rustls}) starts TLS over rustls
    (L{startTLS}); with any other, Twisted's over OpenSSL.  A connection
    that is the TLS client (an FTP data connection of PORT) stays on OpenSSL.
    """

    def startTLS(self, contextFactory, normal=True):
        if normal and getattr(contextFactory, "engine", None) == "rustls":
            startTLS(self, contextFactory.rustlsContext)
        else:
            super().startTLS(contextFactory, normal)


@implementer(IStreamServerEndpoint)
class RustlsServerEndpoint:
    """
    A TCP server endpoint whose connections speak TLS over rustls.

    @ivar tcp: the TCP endpoint.
    @ivar contextFactory: the L{gateway.tlscontext.ReloadableTLS} of the
        rustls engine that gives its contexts (and that a reload renews).
    """

    def __init__(self, tcp, contextFactory):
        self.tcp = tcp
        self.contextFactory = contextFactory

    @property
    def context(self):
        """C{context(serverName)} -> the current rustls context."""
        return self.contextFactory.rustlsContext

    def wrapFactory(self, factory):
        """C{factory} with its connections wrapped in TLS (workers wrap the sockets they adopt with it)."""
        return RustlsServerFactory(self.context, factory)

    def listen(self, factory):
        return self.tcp.listen(self.wrapFactory(factory))
