# -*- test-case-name: tests.test_turnwrites -*-
"""
TCP connections whose writes of one turn of the reactor are sent together
at its end, without asking the reactor whether the socket is writable.

Twisted's connection keeps a write in its buffer and asks the reactor to
say when the socket is writable: two C{epoll_ctl} calls (writable wanted,
then not) and a dispatch of the writable event (through C{callWithLogger})
for every reply, though a reply to a waiting client fits the socket's
buffer nearly always.  L{TurnWritesServer} keeps the same buffer, and the
first write into an empty one has the connection sent by one call that the
reactor makes for all such connections before it next waits
(C{callLater(0)}).  Only what the socket does not take waits for writable
as before.

Sending each write at once instead (as asyncio does) was measured first:
ten reply-waiting NOOP sessions took 6-14% less CPU a command, but
imaptest's pipelined sessions lost 8% (geometric mean of four alternating
rounds, two workers), the replies of several commands no longer sharing a
send.  Here those of one turn still share it.

Whatever Twisted's own path must see goes through it unchanged: a
connection with a producer, or one closing, or after Twisted's
C{startTLS} over OpenSSL (whose writes the TLS layer makes, past this
class).
"""

from twisted.internet import tcp

from gateway.rustlstls import StartTLSOverRustls


class _TurnEnd:
    """
    The connections of one reactor with writes waiting for the end of the
    turn, and the one call that sends them.
    """

    def __init__(self, reactor):
        self._reactor = reactor
        self._waiting = []
        self._call = None

    def add(self, connection):
        self._waiting.append(connection)
        if self._call is None:
            self._call = self._reactor.callLater(0, self._send)

    def _send(self):
        self._call = None
        waiting, self._waiting = self._waiting, []
        for connection in waiting:
            connection._sendWaiting()


_TURN_ENDS = {}


def _turnEnd(reactor):
    turnEnd = _TURN_ENDS.get(reactor)
    if turnEnd is None:
        turnEnd = _TURN_ENDS[reactor] = _TurnEnd(reactor)
    return turnEnd


class TurnWritesServer(StartTLSOverRustls, tcp.Server):
    """
    An accepted TCP connection whose writes are sent at the end of the
    reactor's turn (see the module docstring).  Its C{startTLS} follows
    C{[tls] engine} (L{StartTLSOverRustls}); after TLS over rustls its
    writes are still sent at the turn's end, the TLS layer being above it.
    """

    _waiting = False

    def write(self, data):
        if self.TLS or self.producer is not None or self.disconnecting or self._writeDisconnecting:
            tcp.Server.write(self, data)
            return
        if not isinstance(data, bytes):
            raise TypeError("Data must be bytes")
        if not data or not self.connected or self._writeDisconnected:
            return
        empty = not self._tempDataLen and self.offset == len(self.dataBuffer)
        self._tempDataBuffer.append(data)
        self._tempDataLen += len(data)
        if empty and not self._waiting:
            # Nothing queued, so the reactor is not watching for writable:
            # this turn's end sends it (what was queued before is in the
            # reactor's hands or already waits for the turn's end).
            self._waiting = True
            _turnEnd(self.reactor).add(self)

    def _sendWaiting(self):
        self._waiting = False
        if not self.connected or (not self._tempDataLen and self.offset == len(self.dataBuffer)):
            return
        if self.TLS or self.producer is not None or self.disconnecting or self._writeDisconnecting:
            self.startWriting()
            return
        if self.doWrite() is not None or self._tempDataLen or self.offset < len(self.dataBuffer):
            # The socket took part, or sending failed: the reactor's own
            # path sends the rest, or meets the error again and closes.
            self.startWriting()


def writesAtTurnEnd(port):
    """
    Have the TCP connections that C{port} accepts from now on be
    L{TurnWritesServer}s.  A port of another kind is left as it is.

    @return: C{port}.
    """
    if getattr(port, "transport", None) is tcp.Server:
        port.transport = TurnWritesServer
    return port
