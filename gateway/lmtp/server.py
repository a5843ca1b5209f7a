# -*- test-case-name: tests.test_lmtp -*-
"""
An LMTP server (RFC 2033) over the directory: LHLO, MAIL, RCPT, DATA with
one reply per accepted recipient, RSET, NOOP, VRFY, QUIT.  Extensions:
PIPELINING, ENHANCEDSTATUSCODES, 8BITMIME, SIZE.

Postfix uses it as C{lmtp:inet:127.0.0.1:2424}.
"""

import re
import tempfile

from twisted.internet import protocol
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import TimeoutMixin

from gateway.lmtp.delivery import deliver, findRecipient
from gateway.logging import getLogger

log = getLogger("lmtp")

MAX_LINE = 4096
MAX_RECIPIENTS = 1000
_PATH = re.compile(rb"^(?:FROM|TO):\s*<([^<>]*)>(.*)$", re.IGNORECASE)


class LMTPServer(LineReceiver, TimeoutMixin):
    """
    One LMTP session.
    """

    delimiter = b"\r\n"
    MAX_LENGTH = MAX_LINE

    def __init__(self, context, clock=None):
        self.context = context
        self.maxSize = context.config["lmtp", "max_message_size"]
        self.timeOut = context.config["lmtp", "timeout"]
        if clock is not None:
            self.callLater = clock.callLater
        self._reset()
        self.greeted = False
        self._data = None

    def _reset(self):
        self.sender = None
        self.recipients = []

    def connectionMade(self):
        self.setTimeout(self.timeOut)
        self.reply(220, "%s LMTP gateway ready" % (self.context.hostname,))

    def connectionLost(self, reason):
        self.setTimeout(None)
        if self._data is not None:
            self._data[0].close()
            self._data = None

    def timeoutConnection(self):
        self.reply(421, "4.4.2 idle for too long, closing")
        self.transport.loseConnection()

    def reply(self, code, text, last=True):
        self.sendLine(b"%d%s%s" % (code, b" " if last else b"-", text.encode("utf-8")))

    def replyLines(self, code, lines):
        for i, line in enumerate(lines):
            self.reply(code, line, last=i == len(lines) - 1)

    def lineLengthExceeded(self, line):
        if self._data is not None:
            # A long line inside DATA is kept: RFC 5321 limits are the MTA's
            # business, and the message must arrive whole.
            self._dataLine(line)
            return
        self.reply(500, "5.5.2 line too long")

    def lineReceived(self, line):
        self.resetTimeout()
        if self._data is not None:
            self._dataLine(line)
            return
        verb, _, rest = line.partition(b" ")
        handler = getattr(self, "lmtp_" + verb.decode("ascii", "replace").upper(), None)
        if handler is None:
            self.reply(500, "5.5.1 unknown command")
            return
        handler(rest.strip())

    # -- commands --------------------------------------------------------------

    def lmtp_LHLO(self, rest):
        if not rest:
            self.reply(501, "5.5.4 LHLO needs a host name")
            return
        self.greeted = True
        self._reset()
        self.replyLines(250, [
            self.context.hostname,
            "PIPELINING",
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "SIZE %d" % (self.maxSize or 0,),
        ])

    def lmtp_HELO(self, rest):
        self.reply(500, "5.5.1 this is LMTP: use LHLO")

    lmtp_EHLO = lmtp_HELO

    def lmtp_MAIL(self, rest):
        if not self.greeted:
            self.reply(503, "5.5.1 LHLO first")
            return
        if self.sender is not None:
            self.reply(503, "5.5.1 nested MAIL command")
            return
        match = _PATH.match(rest)
        if match is None or not rest.upper().startswith(b"FROM:"):
            self.reply(501, "5.5.4 syntax: MAIL FROM:<address>")
            return
        for param in match.group(2).split():
            name, _, value = param.partition(b"=")
            if name.upper() == b"SIZE" and self.maxSize:
                try:
                    size = int(value)
                except ValueError:
                    self.reply(501, "5.5.4 bad SIZE")
                    return
                if size > self.maxSize:
                    self.reply(552, "5.3.4 message larger than %d bytes" % (self.maxSize,))
                    return
        self.sender = match.group(1).decode("utf-8", "replace")
        self.reply(250, "2.1.0 sender ok")

    def lmtp_RCPT(self, rest):
        if self.sender is None:
            self.reply(503, "5.5.1 MAIL first")
            return
        match = _PATH.match(rest)
        if match is None or not rest.upper().startswith(b"TO:"):
            self.reply(501, "5.5.4 syntax: RCPT TO:<address>")
            return
        if len(self.recipients) >= MAX_RECIPIENTS:
            self.reply(452, "4.5.3 too many recipients")
            return
        address = match.group(1).decode("utf-8", "replace")
        recipient = findRecipient(self.context.directory, address)
        if recipient is None:
            log.info("recipient refused: to={to}", to=address)
            self.reply(550, "5.1.1 <%s> no such user here" % (address,))
            return
        self.recipients.append((address, recipient))
        self.reply(250, "2.1.5 recipient ok")

    def lmtp_DATA(self, rest):
        if self.sender is None:
            self.reply(503, "5.5.1 MAIL first")
            return
        if not self.recipients:
            self.reply(503, "5.5.1 no valid recipients")
            return
        self._data = [tempfile.SpooledTemporaryFile(max_size=1024 * 1024), 0, False]
        self.reply(354, "end data with <CR><LF>.<CR><LF>")

    def _dataLine(self, line):
        spool = self._data
        if line == b".":
            self._data = None
            self._finishData(*spool)
            return
        if line.startswith(b"."):
            line = line[1:]
        spool[1] += len(line) + 2
        if self.maxSize and spool[1] > self.maxSize:
            spool[2] = True  # too big: keep reading, store nothing
            return
        spool[0].write(line + b"\r\n")

    def _finishData(self, spool, size, tooBig):
        try:
            if tooBig:
                for _ in self.recipients:
                    self.reply(552, "5.3.4 message larger than %d bytes" % (self.maxSize,))
                return
            spool.seek(0)
            data = spool.read()
            for address, recipient in self.recipients:
                result = deliver(self.context.realm, recipient, data)
                self.reply(result.code, "%s <%s> %s" % (result.status, address, result.text))
        finally:
            spool.close()
            self._reset()

    def lmtp_RSET(self, rest):
        self._reset()
        self.reply(250, "2.0.0 ok")

    def lmtp_NOOP(self, rest):
        self.reply(250, "2.0.0 ok")

    def lmtp_VRFY(self, rest):
        self.reply(252, "2.5.2 cannot verify, but will try")

    def lmtp_QUIT(self, rest):
        self.reply(221, "2.0.0 bye")
        self.transport.loseConnection()


class LMTPFactory(protocol.ServerFactory):
    def __init__(self, context):
        self.context = context

    def buildProtocol(self, addr):
        p = LMTPServer(self.context)
        p.factory = self
        return p


def makeFactory(context):
    return LMTPFactory(context)
