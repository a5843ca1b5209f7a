# -*- test-case-name: tests.test_lmtp_delivery -*-
"""
The DATA stream of SMTP and LMTP (RFC 5321 section 4.5.2): the message ends
at a line holding only C{"."}, and a line that begins with C{"."} had one
more added by the client.

L{DotDecoder} undoes that on chunks as they arrive, without splitting the
message into lines (a 45 MB message is a few hundred C{bytes.find} and
C{bytes.replace} calls, not half a million line callbacks), and keeps at
most L{MAX_PENDING} bytes between chunks whatever the line lengths.
"""

#: Bytes of an unfinished line kept back between chunks at most.
MAX_PENDING = 64 * 1024

_END = b"\r\n.\r\n"


class DotDecoder:
    """
    Decodes one DATA stream, chunk by chunk.

    @ivar done: has the end of the message been seen?
    """

    def __init__(self):
        self._pending = b""
        self._atLineStart = True
        self.done = False

    def feed(self, data):
        """
        Take the next chunk of the stream.

        @return: C{(body, rest)}: the message bytes this chunk completes
            (dot-stuffing removed, line ends kept), and C{None}, or, once
            the end is seen, the bytes that came after it (the next
            commands).
        """
        if self.done:
            raise ValueError("the message has ended")
        buf = self._pending + data
        self._pending = b""
        atLineStart = self._atLineStart
        rest = None
        if atLineStart and buf[:3] == b".\r\n":
            chunk, rest = b"", buf[3:]
        else:
            end = buf.find(_END)
            if end >= 0:
                chunk, rest = buf[:end + 2], buf[end + len(_END):]
            else:
                cut = buf.rfind(b"\r\n")
                cut = cut + 2 if cut >= 0 else 0
                if len(buf) - cut <= MAX_PENDING:
                    # Whole lines now; the unfinished one waits.
                    chunk, self._pending = buf[:cut], buf[cut:]
                    if cut:
                        self._atLineStart = True
                else:
                    # A very long line: pass on all but its last bytes.  No
                    # CRLF is among the last MAX_PENDING bytes, so nothing
                    # that matters (CRLF ".") spans the cut.
                    chunk, self._pending = buf[:-4], buf[-4:]
                    self._atLineStart = False
        if rest is not None:
            self.done = True
        return _unstuff(chunk, atLineStart), rest


def _unstuff(chunk, atLineStart):
    if atLineStart and chunk[:1] == b".":
        chunk = chunk[1:]
    if b"\r\n." in chunk:
        chunk = chunk.replace(b"\r\n.", b"\r\n")
    return chunk
