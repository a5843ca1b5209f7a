# -*- test-case-name: tests.test_lmtp -*-
"""
An LMTP server (RFC 2033) over the directory: LHLO, MAIL, RCPT, DATA with
one reply per accepted recipient, RSET, NOOP, VRFY, QUIT.  Extensions:
PIPELINING, ENHANCEDSTATUSCODES, 8BITMIME, SIZE.

Postfix uses it as C{lmtp:inet:127.0.0.1:2424}.
"""

import os
import re

from twisted.internet import protocol
from twisted.internet.defer import DeferredSemaphore, maybeDeferred
from twisted.internet.threads import deferToThreadPool
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import TimeoutMixin
from zope.interface import implementer

from gateway.interfaces import IDrainable
from gateway.lmtp.data import DotDecoder
from gateway.lmtp.delivery import Delivery, Spool, cleanSpool, envelopeHeaders, failureResult, findRecipient
from gateway.logging import getLogger

log = getLogger("lmtp")

MAX_LINE = 4096
MAX_RECIPIENTS = 1000
#: Delivery steps (writing a copy) of all sessions of a listener that run
#: in the reactor's thread pool at once: the other threads stay free for
#: logins (password hashing) and free/busy, however much mail arrives.
MAX_DELIVERY_THREADS = 4
_PATH = re.compile(rb"^(?:FROM|TO):\s*<([^<>\x00-\x1f\x7f]*)>(.*)$", re.IGNORECASE)


def spoolFolder(config):
    """
    Where LMTP keeps messages while it delivers them: in the data root, so
    that the copies can be hard links.
    """
    return os.path.join(config.dataRoot(), "spool", "lmtp")


def threadRunner(reactor, limit=MAX_DELIVERY_THREADS):
    """
    C{f, *args -> Deferred} running C{f} in C{reactor}'s thread pool, at
    most C{limit} at once (the others wait their turn); a reactor without a
    pool (a C{task.Clock}) runs it at once.
    """
    if not hasattr(reactor, "getThreadPool"):
        return maybeDeferred
    semaphore = DeferredSemaphore(limit)

    def run(f, *args):
        return semaphore.run(deferToThreadPool, reactor, reactor.getThreadPool(), f, *args)

    return run


@implementer(IDrainable)
class LMTPServer(LineReceiver, TimeoutMixin):
    """
    One LMTP session.
    """

    delimiter = b"\r\n"
    MAX_LENGTH = MAX_LINE
    #: Why the server is stopping, once it is (L{drain}).
    _draining = None

    def __init__(self, context, clock=None, runInThread=None, commitLater=None):
        self.context = context
        self.maxSize = context.config["lmtp", "max_message_size"]
        self.timeOut = context.config["lmtp", "timeout"]
        self.deliveredTo = context.config["lmtp", "delivered_to"]
        if clock is not None:
            self.callLater = clock.callLater
        # Commits go to the store's index writer; by default not when a
        # runner is given (tests that step it commit in the reactor thread).
        self.commitLater = runInThread is None if commitLater is None else commitLater
        self.runInThread = runInThread or threadRunner(context.reactor)
        self._reset()
        self.greeted = False
        self._data = None
        self._delivery = None

    def _reset(self):
        self.sender = None
        self.recipients = []

    def connectionMade(self):
        self.setTimeout(self.timeOut)
        self.reply(220, "%s LMTP gateway ready" % (self.context.hostname,))

    def connectionLost(self, reason):
        self.setTimeout(None)
        if self._data is not None:
            self._data.spool.discard()
            self._data = None
        if self._delivery is not None:
            self._delivery.stop()

    def drain(self, reason):
        """
        The server is stopping: C{421} and the connection ends, now between
        transactions, else once the message being received has been
        delivered and every recipient has its reply.
        """
        if self.transport is None or self.transport.disconnecting or self._draining is not None:
            return
        self._draining = reason
        if self._data is None and self._delivery is None:
            self._goodbye()

    def _goodbye(self):
        self.reply(421, "4.3.2 %s, closing" % (self._draining,))
        self.transport.loseConnection()

    def timeoutConnection(self):
        self.reply(421, "4.4.2 idle for too long, closing")
        self.transport.loseConnection()

    def reply(self, code, text, last=True):
        self.sendLine(b"%d%s%s" % (code, b" " if last else b"-", text.encode("utf-8")))

    def replyLines(self, code, lines):
        for i, line in enumerate(lines):
            self.reply(code, line, last=i == len(lines) - 1)

    def lineLengthExceeded(self, line):
        self.reply(500, "5.5.2 line too long")

    def lineReceived(self, line):
        self.resetTimeout()
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
        # Every recipient gets the same copy (hard links to the spool file)
        # when there is one, or when Delivered-To is added only then.
        shared = len(self.recipients) == 1 or self.deliveredTo == "single"
        prefix = b""
        if shared:
            prefix = envelopeHeaders(self.sender, self.recipients[0][0] if len(self.recipients) == 1 else None)
        try:
            spool = Spool(spoolFolder(self.context.config), prefix)
        except OSError as e:
            log.error("cannot spool a message: {error}", error=e)
            result = failureResult(e)
            self.reply(result.code, "%s %s" % (result.status, result.text))
            return
        self._data = _Data(spool, shared)
        self.reply(354, "end data with <CR><LF>.<CR><LF>")
        self.setRawMode()

    def rawDataReceived(self, data):
        self.resetTimeout()
        incoming = self._data
        body, rest = incoming.decoder.feed(data)
        if body and not incoming.tooBig:
            if self.maxSize and incoming.spool.size + len(body) > self.maxSize:
                incoming.tooBig = True  # keep reading, store nothing
                incoming.spool.discard()
            else:
                try:
                    incoming.spool.write(body)
                except OSError as e:
                    incoming.failed = incoming.failed or e
        if rest is None:
            return
        self._data = None
        self.setLineMode()
        self._buffer = rest + self._buffer
        self._finishData(incoming)

    def _finishData(self, incoming):
        sender, recipients = self.sender, self.recipients
        self._reset()
        if incoming.tooBig or incoming.failed is not None:
            incoming.spool.discard()
            if incoming.tooBig:
                code, text = 552, "5.3.4 message larger than %d bytes" % (self.maxSize,)
            else:
                log.error("cannot spool a message: {error}", error=incoming.failed)
                result = failureResult(incoming.failed)
                code, text = result.code, "%s %s" % (result.status, result.text)
            for _ in recipients:
                self.reply(code, text)
            return
        # Commands the client sends meanwhile wait until every recipient has
        # its reply; so does the idle timeout.
        self.pauseProducing()
        self.setTimeout(None)
        self._delivery = Delivery(
            self.context.realm, incoming.spool, sender, recipients, incoming.shared, self.runInThread,
            self._recipientReply, commitLater=self.commitLater,
        )
        self._delivery.start().addCallback(self._delivered)

    def _recipientReply(self, address, result):
        self.reply(result.code, "%s <%s> %s" % (result.status, address, result.text))

    def _delivered(self, ignored):
        self._delivery = None
        if self.transport is None or self.transport.disconnecting:
            return
        if self._draining is not None:
            self._goodbye()
            return
        self.setTimeout(self.timeOut)
        self.resumeProducing()

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


class _Data:
    """
    A message being received: its spool, its decoder, whether it grew too
    big or could not be written.
    """

    def __init__(self, spool, shared):
        self.spool = spool
        self.shared = shared
        self.decoder = DotDecoder()
        self.tooBig = False
        self.failed = None


class LMTPFactory(protocol.ServerFactory):
    def __init__(self, context):
        self.context = context
        self.runInThread = threadRunner(context.reactor)
        # Left-overs of a crash: the MTA has tried those messages again.
        cleanSpool(spoolFolder(context.config))

    def buildProtocol(self, addr):
        p = LMTPServer(self.context, runInThread=self.runInThread, commitLater=True)
        p.factory = self
        return p


def makeFactory(context):
    return LMTPFactory(context)
