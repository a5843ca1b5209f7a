# -*- test-case-name: tests.test_workers -*-
"""
One worker process of C{[server] workers = N} (see L{gateway.workers}, the
parent): C{twistd gateway --worker K --inherit FD=LISTENER...} adopts the
listening sockets the parent opened, shares the per-server state (login
delays, connection counts) through the data root, and answers the
parent's questions (metrics, sessions) on its control pipe.
"""

import gc
import json
import os
import socket

from twisted.application import service
from twisted.internet import defer, task
from twisted.protocols.basic import NetstringReceiver
from twisted.protocols.tls import TLSMemoryBIOFactory

from gateway import logging as glog
from gateway import recycle
from gateway.admin.limits import LimitedFactory
from gateway.admin.sharedcounts import SharedConnectionCounts
from gateway.cred.delays import SHARED_PATH, MemoryLoginDelays, SharedLoginDelays, ThreadedLoginDelays
from gateway.memdebug import memoryReportService
from gateway.memtrim import mallocTrim, residentBytes
from gateway.service import GatewayService, enabledListeners, makeContext, makeEndpoint, publishingService
from gateway.turnwrites import writesAtTurnEnd
from gateway.workerload import WorkerLoads, shareAccepts
from gateway.workers import CONTROL_IN, CONTROL_OUT, SECRET_VARIABLE, listenerKey

log = glog.getLogger("server")

#: The listeners whose new connections go to the worker with fewest open
#: (L{shareAccepts}): IMAP's sessions last for hours (IDLE); POP3, HTTP,
#: LMTP and FTP sessions are short or few, and a pause would delay them.
SHARED_BY_COUNT = frozenset(["imap"])

#: How long a worker waits for the parent to say every worker serves
#: before it accepts connections anyway (L{WorkerService.accept}).
ACCEPT_WAIT = 5.0


class _AdoptedListenerService(service.Service):
    """
    A worker's listener: the parent's listening socket, adopted.

    @ivar endpoint: the endpoint the listener string describes (for its TLS
        context, which reload renews).
    """

    def __init__(self, fd, endpoint, factory, reactor, loads=None, share=False):
        """
        @param loads: the worker's L{WorkerLoads}: its listener accepts
            nothing until the worker does (L{WorkerService.accept}).
        @param share: leave new connections to workers that have fewer
            (L{shareAccepts}): for long sessions (IMAP), not for short ones,
            which a pause would only delay.
        """
        self.fd = fd
        self.loads = loads
        self.share = share
        self.endpoint = endpoint
        self.factory = factory
        self.reactor = reactor
        self.port = None

    def startService(self):
        service.Service.startService(self)
        factory = self.factory
        contextFactory = getattr(self.endpoint, "_sslContextFactory", None)
        wrap = getattr(self.endpoint, "wrapFactory", None)  # gateway.rustlstls
        if wrap is not None:
            factory = wrap(factory)
        elif contextFactory is not None:
            factory = TLSMemoryBIOFactory(contextFactory, False, factory)
        s = socket.socket(fileno=self.fd)
        family = s.family
        s.detach()
        self.port = writesAtTurnEnd(self.reactor.adoptStreamPort(self.fd, family, factory))
        os.close(self.fd)  # adoptStreamPort works on a copy
        acceptOnePerWake(self.port)
        if self.loads is not None:
            if self.share:
                shareAccepts(self.port, self.loads, self.reactor)
            if not self.loads.accepting:
                self.port.stopReading()

    def accept(self):
        """
        Start accepting (see L{WorkerService.accept}).
        """
        if self.port is not None and self.port.connected:
            self.port.startReading()

    def stopService(self):
        service.Service.stopService(self)
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()


def acceptOnePerWake(port):
    """
    Make C{port} accept one connection each time the reactor finds it
    readable.

    Every worker waits on the same listening socket and every one is woken
    by a new connection; the first to call C{accept} gets it.  Twisted's
    port accepts up to 100 (and more as traffic grows) in one go, so the
    worker that woke first took a whole burst: 8 of imaptest's 10 clients
    went to one of two workers, which then did 80% of the work on one core.
    Taking one at a time lets the other workers, and the least busy first
    (its reactor is back in C{epoll_wait} soonest), take their share.
    """
    doRead = port.doRead

    def doReadOne():
        port.numberAccepts = 1
        return doRead()

    port.doRead = doReadOne


class WorkerService(GatewayService):
    """
    One worker: the listeners it inherited, no admin listener and no log
    file of its own (the parent writes its log lines), and the control
    pipe the parent asks it over.
    """

    def __init__(self, context, number):
        GatewayService.__init__(self, context)
        self.number = number
        self.control = None
        # Its slot is emptied of what a killed predecessor left when first used.
        self.counts = SharedConnectionCounts(context.config.dataRoot(), number, context.config["server", "workers"])
        self.loads = WorkerLoads(context.config.dataRoot(), number, context.config["server", "workers"],
                                 self.openConnections)
        self._publishing = task.LoopingCall(self.loads.publish)
        self._publishing.clock = context.reactor
        self._acceptAnyway = None
        #: Its resident memory when it began to serve, collected and
        #: trimmed (L{gateway.recycle}).
        self.baseResident = 0
        #: Whether it made a connection since it started (set when one is
        #: built: a session can begin and end between two counts of
        #: L{openConnections}).
        self.served = False

    def openConnections(self):
        """
        How many connections this worker has open (every protocol).
        """
        return sum(len(getattr(factory, "protocols", None) or getattr(factory, "sessions", None) or ())
                   for factory in self.factories.values())

    def factory(self, name):
        """
        As L{GatewayService.factory}, the limits counting every worker's
        connections, and every connection built marking the worker as
        L{served}.
        """
        made = name in self.factories
        factory = GatewayService.factory(self, name)
        if not made:
            if isinstance(factory, LimitedFactory) or hasattr(factory, "counts"):
                factory.counts = self.counts  # FTP counts its own sessions, with the same counts
            build = factory.buildProtocol

            def buildProtocol(addr):
                self.served = True
                return build(addr)

            factory.buildProtocol = buildProtocol
        return factory

    def _startLogFile(self, config):
        pass

    def startService(self):
        GatewayService.startService(self)
        from twisted.internet import stdio

        self.control = ControlProtocol(self)
        stdio.StandardIO(self.control, stdin=CONTROL_IN, stdout=CONTROL_OUT, reactor=self.context.reactor)
        # Closed connections reach the other workers' view within a second.
        self._publishing.start(1.0)
        self._acceptAnyway = self.context.reactor.callLater(ACCEPT_WAIT, self.accept)
        # Measured as the idle release leaves a process (collected and
        # trimmed): measured before, what starting left behind made a
        # worker trimmed after its sessions look smaller than at its start.
        gc.collect()
        mallocTrim()
        self.baseResident = residentBytes()
        self.control.tell("serving")
        log.info("worker {number} serving (pid {pid})", number=self.number, pid=os.getpid())

    def accept(self):
        """
        Accept connections: when the parent says every worker serves, or
        L{ACCEPT_WAIT} seconds after this one started.
        """
        if self.loads.accepting:
            return
        self.loads.startAccepting()
        if self._acceptAnyway is not None and self._acceptAnyway.active():
            self._acceptAnyway.cancel()
        for child in self:
            if isinstance(child, _AdoptedListenerService):
                child.accept()

    def stopService(self):
        if self._publishing.running:
            self._publishing.stop()
        self.loads.stopAccepting()
        if self._acceptAnyway is not None and self._acceptAnyway.active():
            self._acceptAnyway.cancel()
        return defer.maybeDeferred(GatewayService.stopService, self).addBoth(self._closeLoads)

    def _closeLoads(self, result):
        self.loads.close()
        return result

    def _reloadListeners(self, config):
        log.info("reload: listeners stay as the parent opened them")
        return defer.succeed(None)


class ControlProtocol(NetstringReceiver):
    """
    The worker's end of the control pipe: answers C{metrics}, C{sessions}
    and C{usage} (L{gateway.recycle}); when the parent goes away the
    worker stops.
    """

    MAX_LENGTH = 65536

    def __init__(self, worker):
        self.worker = worker

    def tell(self, event):
        """
        Tell the parent C{event} (C{'serving'}: the listeners are adopted).
        """
        message = json.dumps({"event": event}).encode("utf-8")
        self.transport.write(b"%d:%s," % (len(message), message))

    def stringReceived(self, data):
        try:
            message = json.loads(data)
            what = message["ask"]
        except (ValueError, KeyError, TypeError):
            return
        if what == "accept":
            self.worker.accept()
            answer = True
        elif what == "metrics":
            answer = self.worker.context.monitor.renderMetrics().decode("utf-8")
        elif what == "sessions":
            answer = self.worker.context.monitor.sessionList()
        elif what == "usage":
            answer = recycle.usage(self.worker)
        else:
            answer = None
        reply = json.dumps({"id": message.get("id"), "answer": answer}).encode("utf-8")
        self.transport.write(b"%d:%s," % (len(reply), reply))

    def connectionLost(self, reason):
        reactor = self.worker.context.reactor
        if reactor.running and self.worker.running:
            log.warn("worker {number}: the parent went away; stopping", number=self.worker.number)
            reactor.stop()


def _checkers(context):
    return [checker for checker in set(getattr(context.portal, "checkers", {}).values())]


def shareLoginState(context, secret):
    """
    Make the login state of a worker's checkers that of the server: the
    failed-login delays in the data root's database (its transactions in a
    thread of their own), and the checker's
    secret (attempt keys, the salts made up for unknown names) the
    parent's, so that every worker answers alike.
    """
    path = os.path.join(context.config.dataRoot(), SHARED_PATH)
    for checker in _checkers(context):
        delays = getattr(checker, "delays", None)
        if isinstance(delays, MemoryLoginDelays):
            checker.delays = ThreadedLoginDelays(
                SharedLoginDelays(path, delays.clock, delays.failureDelay, delays.maxFailureDelay,
                                  delays.penaltyAfter),
                context.reactor)
        if secret and hasattr(checker, "_secret"):
            checker._secret = bytes.fromhex(secret)



def makeWorkerService(config, number, inherited, reactor=None):
    """
    Worker C{number}: the listeners of C{inherited} (listener name -> file
    descriptor), adopted.

    A listener of the configuration that was not inherited (the parent
    could not open it on a reload, and said so) is logged and left out.
    """
    context = makeContext(config, reactor)
    shareLoginState(context, os.environ.get(SECRET_VARIABLE))
    top = WorkerService(context, number)
    for name, description in enabledListeners(config):
        key = listenerKey(name, description)
        if key not in inherited:
            # The parent could not open it on reload (and said so).
            log.error("worker {number}: the parent gave no socket for [{name}] listen {description}",
                      number=number, name=name, description=description)
            continue
        endpoint, _ = makeEndpoint(context.reactor, description, context.tls, config["tls", "minimum_version"],
                                   "[%s] listen" % (name,), config["server", "listen_backlog"],
                                   config["tls", "engine"])
        child = _AdoptedListenerService(inherited[key], endpoint, top.factory(name), context.reactor, top.loads,
                                        share=name in SHARED_BY_COUNT)
        child.setName(key)
        child.setServiceParent(top)
    publishing = publishingService(context)
    if publishing is not None:
        publishing.setServiceParent(top)
    memory = memoryReportService(config, context.reactor, describe=context.idle.describe)
    if memory is not None:
        memory.setServiceParent(top)
    return top
