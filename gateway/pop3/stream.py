# -*- test-case-name: tests.test_pop3_stream -*-
"""
Sending a message as a POP3 multi-line response (RFC 1939 section 3): every
line that starts with C{.} gets one more C{.}, the body ends with CRLF, and
C{.CRLF} terminates it.  The message is read from disk in chunks and pushed
to the transport as an C{IPushProducer}, so memory stays constant whatever
the message size; line starts are tracked across chunk boundaries.
"""

import re

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

#: bytes read from the message file at a time
CHUNK = 65536

#: bytes written in one reactor turn before yielding to other connections
TURN = 4 * CHUNK


#: messages up to this size are read and sent in one piece
SMALL = CHUNK

#: a line that starts with C{.} (C{re.sub} is about three times faster than
#: C{bytes.replace} for this two-byte pattern, whose last byte is common in text)
_DOT_LINE = re.compile(rb"\n\.")


def stuffWhole(message, topLines=None):
    """
    The whole response body for a message read at once: dot-stuffed and
    terminated (after L{TopFilter} if C{topLines} is given).
    """
    if topLines is not None:
        message = TopFilter(topLines).transform(message)
    stuffer = DotStuffer()
    return stuffer.transform(message) + stuffer.end()


class PrefixedReader:
    """
    A file object that reads C{prefix} (already read from C{source}), then
    the rest of C{source}.
    """

    def __init__(self, prefix, source):
        self._prefix = prefix
        self._source = source

    def read(self, n=-1):
        """
        @return: C{n} bytes (fewer only at the end; all that is left if C{n}
            is negative), from the prefix and then from the source.
        """
        if not self._prefix:
            return self._source.read(n)
        if n is None or n < 0:
            data, self._prefix = self._prefix, b""
            return data + self._source.read()
        data, self._prefix = self._prefix[:n], self._prefix[n:]
        if len(data) < n:
            data += self._source.read(n - len(data))
        return data

    def close(self):
        self._source.close()


class DotStuffer:
    """
    The byte-stuffing transform of RFC 1939, fed chunk by chunk.

    The input is the CRLF form of a message (L{gateway.interfaces.IMailbox.openMessage});
    a line starts after every LF.
    """

    def __init__(self):
        self._atLineStart = True
        self._tail = b""

    def transform(self, data):
        """
        @param data: the next chunk of the message.
        @return: the chunk, dot-stuffed.
        """
        if not data:
            return data
        out = _DOT_LINE.sub(b"\n..", data)
        if self._atLineStart and data[:1] == b".":
            out = b"." + out
        self._atLineStart = data[-1:] == b"\n"
        self._tail = (self._tail + data[-2:])[-2:]
        return out

    def end(self):
        """
        @return: what terminates the response: a CRLF if the message did not
            end with one, then C{.CRLF}.
        """
        if self._tail == b"\r\n" or (self._atLineStart and not self._tail):
            return b".\r\n"
        return b"\r\n.\r\n"


class TopFilter:
    """
    The C{TOP} transform: the header block, the blank line after it, and at
    most C{lines} lines of the body.
    """

    def __init__(self, lines):
        self.lines = lines
        self.done = False
        self._inBody = False
        self._bodyLines = 0
        self._lineLength = 0
        self._lastByte = b""

    def transform(self, data):
        """
        @return: the part of C{data} that belongs in the answer.
        """
        if self.done:
            return b""
        position = 0
        while True:
            if self._inBody and self._bodyLines >= self.lines:
                self.done = True
                return data[:position]
            newline = data.find(b"\n", position)
            if newline < 0:
                self._lineLength += len(data) - position
                if len(data) > position:
                    self._lastByte = data[-1:]
                return data
            length = self._lineLength + newline - position
            before = data[newline - 1:newline] if newline > position else self._lastByte
            self._lineLength = 0
            self._lastByte = b"\n"
            if self._inBody:
                self._bodyLines += 1
            elif length == 0 or (length == 1 and before == b"\r"):
                self._inBody = True
            position = newline + 1


@implementer(IPushProducer)
class MessageProducer:
    """
    Push one message file to a transport through the transforms, then the
    terminator.

    @ivar deferred: fires with C{None} when all was written (the file is
        closed), or errbacks if reading failed.
    """

    def __init__(self, source, transport, clock, topLines=None, onProgress=None):
        """
        @param source: binary file object (closed when done).
        @param clock: C{IReactorTime} used to yield between turns.
        @param topLines: C{None} for the whole message, or the C{TOP} count.
        @param onProgress: called (no arguments) after each turn, e.g. to
            reset an idle timeout.
        """
        self.source = source
        self.transport = transport
        self.clock = clock
        self.stuffer = DotStuffer()
        self.top = TopFilter(topLines) if topLines is not None else None
        self.onProgress = onProgress
        self.deferred = Deferred()
        self._paused = False
        self._finished = False
        self._scheduled = None

    def start(self):
        """
        Register with the transport and start writing.

        @return: L{deferred}.
        """
        self.transport.registerProducer(self, True)
        self._produce()
        return self.deferred

    def _produce(self):
        self._scheduled = None
        written = 0
        while not self._paused and not self._finished:
            try:
                chunk = self.source.read(CHUNK)
            except Exception:
                self._finish(failed=True)
                return
            if chunk and self.top is not None:
                chunk = self.top.transform(chunk)
                if self.top.done and not chunk:
                    chunk = b""
                    eof = True
                else:
                    eof = self.top.done
            else:
                eof = not chunk
            if chunk:
                self.transport.write(self.stuffer.transform(chunk))
                written += len(chunk)
            if eof:
                self.transport.write(self.stuffer.end())
                self._finish()
                return
            if written >= TURN and not self._paused:
                self._scheduled = self.clock.callLater(0, self._produce)
                break
        if self.onProgress is not None:
            self.onProgress()

    def _finish(self, failed=False):
        self._finished = True
        try:
            self.source.close()
        except Exception:
            pass
        self.transport.unregisterProducer()
        if failed:
            from twisted.python.failure import Failure

            self.deferred.errback(Failure())
        else:
            self.deferred.callback(None)

    def pauseProducing(self):
        self._paused = True
        if self._scheduled is not None and self._scheduled.active():
            self._scheduled.cancel()
            self._scheduled = None

    def resumeProducing(self):
        if self._finished or not self._paused:
            return
        self._paused = False
        if self._scheduled is None:
            self._produce()

    def stopProducing(self):
        """
        The connection went away: stop and close the file.
        """
        if self._scheduled is not None and self._scheduled.active():
            self._scheduled.cancel()
        self._scheduled = None
        if not self._finished:
            self._finished = True
            try:
                self.source.close()
            except Exception:
                pass
