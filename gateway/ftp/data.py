# -*- test-case-name: tests.test_ftp_e2e -*-
"""
The FTP data channel: passive listeners (PASV/EPSV), active connections
(PORT/EPRT), TLS on the data connection (PROT P, RFC 4217: the server is
always the TLS server), and the two transfer directions.

Downloads read the file in the reactor's thread pool, one chunk at a time,
as a push producer on the data transport (so a slow disk or a slow client
stalls only its own transfer).  Uploads hand an L{UploadStream} to
C{FileStore.writeFile}, which runs in a thread and reads what the reactor
receives; the data transport is paused while too much is queued.  In
C{TYPE A} both directions pass through a L{ConvertingReader}, so line ends
are converted in those threads too.
"""

import os
import queue
import random
import select
import socket

from OpenSSL import SSL
from twisted.internet import defer, protocol, tcp
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IHandshakeListener, IPushProducer, IReadDescriptor
from twisted.internet.threads import deferToThread
from zope.interface import implementer

from gateway.store.maildir import CRLFConverter

#: Bytes read from a file per thread round trip on downloads.
CHUNK = 512 * 1024
#: Bytes read from a data socket at once.
RECEIVE = 256 * 1024
#: Upload flow control: pause the data connection above HIGH queued bytes,
#: resume below LOW.
HIGH = 8 * 1024 * 1024
LOW = 2 * 1024 * 1024
#: Most bytes an upload hands to the writer at once.
GATHER = 1024 * 1024
#: Seconds a protected data connection closed before its TLS handshake
#: waits for the handshake to complete (as C{shell.DATA_TIMEOUT}).
HANDSHAKE_TIMEOUT = 30


def writeNow(transport, data):
    """
    Write C{data} on C{transport}, and send it at once when that is a clear
    TCP connection with nothing queued.

    C{transport.write} only queues: the bytes leave on the reactor's next
    pass, after two C{epoll_ctl} calls to watch the socket for writing and
    to stop watching it.  Most FTP replies, listings and small files are one
    write each, which the socket takes whole.  Whatever it does not take
    (and everything on TLS or other transports) is written as usual, behind
    what was sent.  It reads C{FileDescriptor}'s buffer attributes, one of
    them private (C{_tempDataLen}); a test pins the behaviour.
    """
    if (
        isinstance(transport, tcp.Connection)
        and not transport.TLS
        and transport.connected
        and not transport.disconnecting
        and transport.producer is None
        and not transport.dataBuffer
        and not transport._tempDataLen
    ):
        try:
            sent = transport.socket.send(data)
        except OSError:
            # Full, or broken: write() queues it, and the reactor finds out.
            sent = 0
        data = data[sent:]
    transport.write(data)


class TransferAborted(Exception):
    """
    The data connection went away (ABOR, client gone) during an upload.
    """


@implementer(IHandshakeListener)
class DataProtocol(protocol.Protocol):
    """
    One data connection.  What arrives goes to C{receiver} (a callable), or
    is kept until one is set; C{lost} fires with the reason when the
    connection closes.

    @ivar tls: C{CertificateOptions} to start TLS with as the server, or
        C{None} for a clear data channel.
    @ivar handshakeDone: whether the TLS handshake has completed.
    """

    def __init__(self, tls=None, active=False):
        self.tls = tls
        self.active = active
        self.receiver = None
        self.buffered = []
        self.lost = defer.Deferred()
        self.closed = False
        self.truncated = False
        self.threadBusy = None
        self.threadStop = None
        self.handshakeDone = False
        self._closeAfterHandshake = None

    def connectionMade(self):
        self.transport.setTcpNoDelay(True)
        # Larger reads: fewer trips through the reactor on uploads.
        self.transport.bufferSize = RECEIVE
        if self.tls is not None:
            # On an outgoing (PORT) connection "normal=False" makes us the TLS
            # server, as RFC 4217 requires.
            self.transport.startTLS(self.tls, not self.active)
        connected = self.factory.connected
        if not connected.called:
            connected.callback(self)

    def setReceiver(self, receiver):
        self.receiver = receiver
        buffered, self.buffered = self.buffered, []
        for data in buffered:
            receiver(data)

    def dataReceived(self, data):
        if self.receiver is None:
            self.buffered.append(data)
        else:
            self.receiver(data)

    def handshakeCompleted(self):
        self.handshakeDone = True
        waiting, self._closeAfterHandshake = self._closeAfterHandshake, None
        if waiting is not None and waiting.active():
            waiting.cancel()
            self.close()

    def _handshakeTimedOut(self):
        self._closeAfterHandshake = None
        self.close(abort=True)

    def connectionLost(self, reason):
        waiting, self._closeAfterHandshake = self._closeAfterHandshake, None
        if waiting is not None and waiting.active():
            waiting.cancel()
        self.closed = True
        self.reason = reason
        # On a protected connection only the TLS close_notify ends the data
        # (as vsftpd's strict_ssl_read_eof): a bare TCP close may be a
        # truncation attack or a client that died.  Read now: the TLS layer
        # drops its OpenSSL connection after this call.
        self.truncated = self.tls is not None and not (
            self.transport.getHandle().get_shutdown() & SSL.RECEIVED_SHUTDOWN)
        self.lost.callback(None)

    def close(self, abort=False):
        busy = self.threadBusy
        if busy is not None and not busy.called:
            # A thread is using the socket (sendfile): stop it first, then
            # close, so the descriptor is not closed under it.
            self.threadStop()
            busy.addBoth(lambda _: self.close(abort))
            return
        if not self.closed:
            if abort:
                self.transport.abortConnection()
            elif self.tls is not None and not self.handshakeDone:
                # Nothing was sent (an empty listing or file) and the
                # client's handshake is still under way: Twisted's TLS
                # layer would abort (a reset; lftp then fails with "The
                # TLS connection was non-properly terminated").  Finish the
                # handshake first, then close with close_notify.
                if self._closeAfterHandshake is None:
                    self._closeAfterHandshake = self.transport.reactor.callLater(
                        HANDSHAKE_TIMEOUT, self._handshakeTimedOut)
            else:
                self.transport.loseConnection()


@implementer(IReadDescriptor)
class PassiveListener:
    """
    Accepts the one data connection of a PASV/EPSV, only from the control
    connection's peer (no third-party connections), then stops listening.

    A listening socket the reactor watches (C{addReader}), not a
    C{listenTCP} port: a port takes about 115 microseconds to open and
    close (a C{Port}, a log line each way, a close deferred to the next
    pass), the socket about 20, and every transfer starts with a PASV.

    @ivar port: the port number listened on.
    @ivar connected: fires with the L{DataProtocol}.
    @ivar protocol: the L{DataProtocol} once connected, else C{None}.
    @ivar error: why accepting failed, or C{None}.
    """

    def __init__(self, reactor, listening, peerHost, tls):
        self.reactor = reactor
        self.socket = listening
        self.port = listening.getsockname()[1]
        self.peerHost = peerHost
        self.tls = tls
        self.connected = defer.Deferred()
        self.waiting = False
        self.protocol = None
        self.error = None
        reactor.addReader(self)

    def fileno(self):
        return self.socket.fileno()

    def logPrefix(self):
        return "FTP passive listener"

    def doRead(self):
        try:
            accepted, address = self.socket.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as e:
            # Out of descriptors, say: give up rather than spin.
            self._fail(e)
            return
        with accepted:
            if address[0] != self.peerHost:
                return
            self._close()
            accepted.setblocking(False)
            # The reactor takes a duplicate of the descriptor.
            self.reactor.adoptStreamConnection(accepted.fileno(), accepted.family, self)

    def buildProtocol(self, addr):
        p = self.protocol = DataProtocol(self.tls)
        p.factory = self
        return p

    def connectionLost(self, reason):
        self.socket.close()

    def _close(self):
        if self.socket.fileno() != -1:
            self.reactor.removeReader(self)
            self.socket.close()

    def _fail(self, error):
        self._close()
        self.error = error
        self._settle()

    def _settle(self):
        if self.waiting and self.error is not None and not self.connected.called:
            self.connected.errback(self.error)

    def wait(self):
        """
        The transfer takes the connection.

        @return: L{connected}.
        """
        self.waiting = True
        self._settle()
        return self.connected

    def stop(self):
        self._close()
        if self.waiting and not self.connected.called:
            self.connected.errback(TransferAborted("passive connection withdrawn"))
        elif not self.waiting and self.protocol is not None:
            # Connected, but no transfer ever used it.
            self.protocol.close(abort=True)


class ActiveFactory(protocol.ClientFactory):
    """
    Makes the outgoing data connection of a PORT/EPRT.
    """

    noisy = False

    def __init__(self, tls):
        self.tls = tls
        self.connected = defer.Deferred()

    def buildProtocol(self, addr):
        p = DataProtocol(self.tls, active=True)
        p.factory = self
        return p

    def clientConnectionFailed(self, connector, reason):
        if not self.connected.called:
            self.connected.errback(reason)


def listenPassive(reactor, interface, peerHost, tls, portRange=None):
    """
    Listen for a passive data connection.

    @param portRange: C{(low, high)} or C{None} for any free port.
    @return: the L{PassiveListener}.
    @raise twisted.internet.error.CannotListenError: when no port is free.
    """
    if portRange:
        low, count = portRange[0], portRange[1] - portRange[0] + 1
        # Start at a varying place so consecutive sessions do not all probe
        # the low end of the range.
        start = random.randrange(count)
        numbers = (low + (start + i) % count for i in range(count))
    else:
        numbers = [0]
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    for number in numbers:
        listening = socket.socket(family, socket.SOCK_STREAM)
        try:
            if number:
                # A port of the range still in TIME_WAIT is free.  Not for
                # port 0: there it makes the kernel's search for a free
                # port several times slower when many ports are in
                # TIME_WAIT (as pyftpdlib, which sets it only for a range).
                listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listening.bind((interface, number))
            listening.listen(1)
        except OSError as e:
            listening.close()
            error = e
            continue
        listening.setblocking(False)
        return PassiveListener(reactor, listening, peerHost, tls)
    raise CannotListenError(interface, number, error)


@implementer(IPushProducer)
class FileSender:
    """
    Send a file object over a transport, reading it in a thread one chunk
    ahead of what the transport is sending.

    @ivar sent: bytes written so far.
    """

    def __init__(self, fileObject, transport):
        self.file = fileObject
        self.transport = transport
        self.sent = 0
        self.paused = False
        self.reading = False
        self.pending = None
        self.eof = False
        self.done = defer.Deferred()

    def start(self):
        self.transport.registerProducer(self, True)
        self._fill()
        return self.done

    def _fill(self):
        if self.reading or self.pending is not None or self.eof or self.done.called:
            return
        self.reading = True
        deferToThread(self.file.read, CHUNK).addCallbacks(self._gotChunk, self._failed)

    def _gotChunk(self, data):
        self.reading = False
        if self.done.called:
            return
        if data:
            self.pending = data
        else:
            self.eof = True
        self._pump()

    def _pump(self):
        while not self.paused and self.pending is not None and not self.done.called:
            data, self.pending = self.pending, None
            self.sent += len(data)
            self._fill()
            self.transport.write(data)
        if self.eof and self.pending is None and not self.done.called:
            self.transport.unregisterProducer()
            self.done.callback(self.sent)
        else:
            self._fill()

    def _failed(self, failure):
        self.reading = False
        if not self.done.called:
            self.transport.unregisterProducer()
            self.done.errback(failure)

    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        self.paused = False
        self._pump()

    def stopProducing(self):
        if not self.done.called:
            self.done.errback(TransferAborted("data connection closed"))


class SendfileSender:
    """
    Send a regular file over a clear TCP data connection with
    C{os.sendfile} in a thread (no copies through Python, and the reactor
    stays free).  The reactor neither reads nor writes the socket meanwhile.
    """

    def __init__(self, fileObject, dataProtocol):
        self.file = fileObject
        self.dataProtocol = dataProtocol
        self.transport = dataProtocol.transport
        self.sent = 0
        self.stopped = False
        self.done = defer.Deferred()

    @classmethod
    def usable(cls, fileObject, dataProtocol):
        transport = dataProtocol.transport
        try:
            fileObject.fileno()
        except (OSError, ValueError, AttributeError):
            return False
        return (
            dataProtocol.tls is None
            and hasattr(os, "sendfile")
            and hasattr(transport, "getHandle")
            and not getattr(transport, "TLS", False)
        )

    def start(self):
        self.transport.stopReading()
        self.dataProtocol.threadStop = self.stopProducing
        busy = self.dataProtocol.threadBusy = deferToThread(self._run, self.transport.getHandle().fileno())
        busy.addBoth(self._ended)
        return self.done

    def _run(self, out):
        inp = self.file.fileno()
        offset = self.file.tell()
        while not self.stopped:
            try:
                n = os.sendfile(out, inp, offset, 4 * CHUNK)
            except BlockingIOError:
                select.select([], [out], [], 0.5)
                continue
            if n == 0:
                return
            offset += n
            self.sent += n

    def _ended(self, result):
        if not self.dataProtocol.closed:
            self.transport.startReading()
        if self.done.called:
            return
        if isinstance(result, Exception) or hasattr(result, "trap"):
            self.done.errback(result)
        elif self.stopped:
            self.done.errback(TransferAborted("transfer stopped"))
        else:
            self.done.callback(self.sent)

    def stopProducing(self):
        self.stopped = True


class ASCIIEncoder(CRLFConverter):
    """
    The C{TYPE A} conversion of downloads (RFC 959 section 3.1.1.1): line
    ends go out as CRLF.  A bare LF becomes CRLF; CRLF and lone CRs pass as
    they are (as in vsftpd, so a file that already has CRLF line ends is
    not doubled), also when a CR ends one piece and its LF starts the next:
    the conversion the mail store makes of messages stored with bare LFs.
    """

    def __call__(self, data):
        return self.convert(data)

    def flush(self):
        return b""


class ASCIIDecoder:
    """
    The C{TYPE A} conversion of uploads: CRLF becomes the local LF; a lone
    CR is kept.  A CR that ends one piece is held until the next piece
    shows whether an LF follows; L{flush} gives it back at the end.
    """

    def __init__(self):
        self._heldCR = False

    def __call__(self, data):
        if self._heldCR:
            data = b"\r" + data
        self._heldCR = data[-1:] == b"\r"
        if self._heldCR:
            data = data[:-1]
        return data.replace(b"\r\n", b"\n")

    def flush(self):
        held, self._heldCR = self._heldCR, False
        return b"\r" if held else b""


class ConvertingReader:
    """
    A binary file object whose reads pass through C{convert} (an
    L{ASCIIEncoder} or L{ASCIIDecoder}), in whatever thread reads it.  It
    has no C{fileno}: a converted download is never sent with sendfile.
    """

    def __init__(self, source, convert):
        self._source = source
        self._convert = convert
        self._done = False

    def read(self, size=-1):
        while not self._done:
            data = self._source.read(size)
            if not data:
                self._done = True
                return self._convert.flush()
            data = self._convert(data)
            if data:
                return data
        return b""

    def close(self):
        self._source.close()


_EOF = object()
_ABORT = object()


class UploadStream:
    """
    A binary file object, read in a thread (by C{FileStore.writeFile}), fed
    in the reactor thread with what the data connection receives.

    @param pause: called (in the reactor) when too much is queued.
    @param resume: called (in the reactor) when the queue has drained.
    """

    def __init__(self, reactor, pause, resume):
        self._reactor = reactor
        self._queue = queue.Queue()
        self._pause = pause
        self._resume = resume
        self._queued = 0
        self._paused = False
        self._pending = []
        self._pendingSize = 0
        self.received = 0

    # -- reactor side ----------------------------------------------------

    def feed(self, data):
        # Hand the writer thread large pieces: fewer wake-ups (and GIL
        # hand-overs), fewer writes and quota checks.
        self._pending.append(data)
        self._pendingSize += len(data)
        self.received += len(data)
        self._queued += len(data)
        if self._pendingSize >= GATHER:
            self._flush()
        if not self._paused and self._queued > HIGH:
            self._paused = True
            self._pause()

    def _flush(self):
        if self._pending:
            self._queue.put(b"".join(self._pending))
            self._pending = []
            self._pendingSize = 0

    def finish(self, complete=True):
        """
        The data connection has closed: hand over what is left, then the
        end, or when not C{complete} (a truncated TLS upload) an abort, so
        that the writer keeps the data of an in-place write (APPE, REST)
        but drops a file that would replace another.
        """
        self._flush()
        self._queue.put(_EOF if complete else _ABORT)

    def abort(self):
        """
        The upload was aborted (ABOR, the session ended): hand over what
        arrived (the writer keeps it when asked to), then the abort.
        """
        self.finish(False)

    def _consumed(self, count):
        self._queued -= count
        if self._paused and self._queued < LOW:
            self._paused = False
            self._resume()

    # -- thread side -----------------------------------------------------

    def read(self, size=-1):
        """
        Wait for the next piece (about L{GATHER} bytes, or the rest).
        """
        item = self._queue.get()
        if item is _EOF or item is _ABORT:
            self._queue.put(item)
            if item is _ABORT:
                raise TransferAborted("upload aborted")
            return b""
        self._reactor.callFromThread(self._consumed, len(item))
        return item
