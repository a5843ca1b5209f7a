# -*- test-case-name: tests.test_service -*-
"""
The one place that wires things: configuration -> directory, realm, portal,
TLS -> one listener service per endpoint string of every enabled protocol.

A front-end is a module with C{makeFactory(context)} taking a
L{ServiceContext} and returning a C{ServerFactory}; L{FRONTENDS} names them.
"""

import importlib
import os
import signal
import socket

import attr
from twisted.application import service
from twisted.internet import defer, endpoints
from twisted.internet.error import ReactorNotRunning
from twisted.internet.interfaces import IReactorTCP
from twisted.logger import globalLogPublisher

from gateway import drain, stats
from gateway import logging as glog
from gateway.admin.limits import ConnectionPolicy, LimitedFactory
from gateway.admin.monitor import Monitor, MonitoredPortal, NullMonitor
from gateway.admin.notify import notify, reloading
from gateway.admin.web import makeAdminFactory
from gateway.config import ConfigurationError, loadConfig
from gateway.cred.checkers import cleartextAllowed
from gateway.cred.portal import makePortal
from gateway.cred.realm import GatewayRealm
from gateway.directory.filedir import FileDirectory
from gateway.idle import (
    CacheDropper,
    CancelledCallsDropper,
    IdleReleaser,
    ReactorPoolShrinker,
    monitorActivity,
    releaseService,
)
from gateway.mapi.folders import folderEntries
from gateway.memdebug import memoryReportService
from gateway.memtrim import trimService
from gateway.rustlstls import RustlsServerEndpoint
from gateway.store import redo
from gateway.store.mail import MailStore
from gateway.store.metadata import Metadata
from gateway.tlscontext import DomainCertificates, ReloadableTLS
from gateway.turnwrites import writesAtTurnEnd

log = glog.getLogger("server")

#: Front-ends whose listeners are not wrapped by L{LimitedFactory}: FTP
#: enforces its own limits and writes straight to its TCP socket.
UNWRAPPED = ("ftp",)

#: protocol section -> module with makeFactory(context)
FRONTENDS = {
    "imap": "gateway.imap.server",
    "pop3": "gateway.pop3.server",
    "http": "gateway.http.server",
    "ftp": "gateway.ftp.server",
    "lmtp": "gateway.lmtp.server",
    "socketmap": "gateway.lmtp.socketmap",
}


def availableFrontends():
    """
    The protocol sections whose front-end module exists in this tree.
    """
    found = []
    for name, module in FRONTENDS.items():
        if importlib.util.find_spec(module) is not None:
            found.append(name)
    return found


@attr.s
class ServiceContext:
    """
    What a front-end's C{makeFactory} gets.

    @ivar config: the L{gateway.config.Config}.
    @ivar directory: the L{gateway.interfaces.IDirectory}.
    @ivar realm: the L{GatewayRealm} (C{realm.accountFor(address)}).
    @ivar portal: the C{Portal} every login goes through.
    @ivar tls: C{CertificateOptions} for STARTTLS/STLS/AUTH TLS, or C{None}
        when no certificate is configured.
    @ivar reactor: the reactor to use.
    @ivar monitor: the L{gateway.interfaces.IMonitor} the front-ends report
        their commands to (C{monitor.command(...)}).
    @ivar metadata: the L{gateway.interfaces.IMetadata} (mailbox and server
        annotations, with the XMAPI folder entries).
    @ivar freeBusyCache: the L{gateway.store.calendar.FreeBusyCache} every
        front-end of the process computes calendar answers with (HTTP
        free/busy, the published files, XMAPI), or C{None} (each makes its
        own).
    @ivar idle: the L{gateway.idle.IdleReleaser} that lets go of what was
        not used for C{[server] release_idle_after} seconds (front-ends
        register their caches and thread pools with it), or C{None}.
    """

    config = attr.ib()
    directory = attr.ib()
    realm = attr.ib()
    portal = attr.ib()
    tls = attr.ib()
    reactor = attr.ib()
    monitor = attr.ib(factory=NullMonitor)
    metadata = attr.ib(default=None)
    freeBusyCache = attr.ib(default=None)
    idle = attr.ib(default=None)

    def cleartextAllowed(self, localAddress):
        """
        May clear-text passwords be used, without TLS, on a connection to
        C{localAddress}?  (The domain of that address decides.)
        """
        return cleartextAllowed(self.directory, localAddress)

    @property
    def hostname(self):
        return self.config["server", "hostname"]


def _splitDescription(description):
    parts, current, escaped = [], "", False
    for char in description:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def makeEndpoint(reactor, description, tls, minimum, option, backlog=50, engine="auto"):
    """
    A server endpoint for one listener string.  C{ssl:} endpoints use the
    C{[tls]} certificate (or their own C{privateKey=}/C{certKey=}, over
    the TLS library C{engine}) with TLS 1.2+, and queue C{backlog}
    connections unless they say C{backlog=}; everything else is Twisted's
    C{serverFromString}.

    @return: C{(endpoint, (interface, port) or None)}; the pair is for the
        pre-start check that the port is free.
    """
    parts = _splitDescription(description)
    kind = parts[0]
    if kind in ("ssl", "tcp"):
        try:
            port = int(parts[1])
        except (IndexError, ValueError):
            raise ConfigurationError("%s: %r: expected %s:PORT[:interface=...]" % (option, description, kind))
        args = {}
        for part in parts[2:]:
            name, eq, value = part.partition("=")
            if not eq:
                raise ConfigurationError("%s: %r: %r is not NAME=VALUE" % (option, description, part))
            args[name] = value
        interface = args.pop("interface", "")
        try:
            backlog = int(args.pop("backlog", backlog))
        except ValueError:
            raise ConfigurationError("%s: %r: backlog is not a number" % (option, description))
        if kind == "ssl":
            if "privateKey" in args:
                key = args.pop("privateKey")
                cert = args.pop("certKey", key)
                contextFactory = ReloadableTLS(cert, key, minimum, option, engine=engine)
            elif tls is None:
                raise ConfigurationError("%s: %r needs a certificate: set [tls] certificate" % (option, description))
            else:
                contextFactory = tls
            if args:
                raise ConfigurationError("%s: %r: unknown argument %s" % (option, description, ", ".join(args)))
            if getattr(contextFactory, "engine", None) == "rustls":
                endpoint = RustlsServerEndpoint(endpoints.TCP4ServerEndpoint(reactor, port, backlog, interface),
                                                contextFactory)
            else:
                endpoint = endpoints.SSL4ServerEndpoint(reactor, port, contextFactory, backlog, interface)
        else:
            if args:
                raise ConfigurationError("%s: %r: unknown argument %s" % (option, description, ", ".join(args)))
            endpoint = endpoints.TCP4ServerEndpoint(reactor, port, backlog, interface)
        return endpoint, (interface, port)
    try:
        return endpoints.serverFromString(reactor, description), None
    except Exception as e:
        raise ConfigurationError("%s: %r: %s" % (option, description, e))


def checkPortFree(interface, port, option, description):
    """
    Bind and release the port, so a port in use stops start-up before
    anything listens.
    """
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((interface, port))
    except OSError as e:
        raise ConfigurationError("%s: %s: cannot listen: %s" % (option, description, e.strerror or e))
    finally:
        s.close()


def makeContext(config, reactor=None, clock=None):
    """
    Build the shared pieces: directory, realm, portal, TLS.
    """
    if reactor is None:
        from twisted.internet import reactor
    glog.configure(config)
    dataRoot = config.dataRoot()
    if not os.path.isdir(dataRoot):
        raise ConfigurationError("[server] data_root: %s: no such folder (run gatewayctl init-demo)" % (dataRoot,))
    directory = FileDirectory(dataRoot, config["server", "main_domain"])
    realm = GatewayRealm(directory, mailStoreFactory=lambda path, quota: MailStore(path, quota=quota, reactor=reactor),
                         reactor=reactor)
    monitor = Monitor()
    portal = MonitoredPortal(makePortal(directory, config, realm, clock=clock), monitor)
    tls = None
    if os.path.exists(config["tls", "certificate"]) or os.path.exists(config["tls", "private_key"]):
        tls = ReloadableTLS(config["tls", "certificate"], config["tls", "private_key"],
                            config["tls", "minimum_version"], "[tls] certificate",
                            sni=DomainCertificates(directory, dataRoot), engine=config["tls", "engine"])
    from gateway.store.calendar import FreeBusyCache

    freeBusyCache = FreeBusyCache()
    idle = IdleReleaser()
    idle.register(realm)
    idle.register(freeBusyCache)
    idle.register(ReactorPoolShrinker(reactor))
    idle.register(CancelledCallsDropper(reactor))
    idle.register(CacheDropper(monitorActivity(monitor)))
    return ServiceContext(config=config, directory=directory, realm=realm, portal=portal, tls=tls, reactor=reactor,
                          monitor=monitor, metadata=Metadata(folderEntries()), freeBusyCache=freeBusyCache, idle=idle)


def publishingService(context):
    """
    The service that keeps the accounts' published free/busy files current
    (L{gateway.store.calendar.publish.sweepService} over the accounts this
    process holds, computed with the context's shared C{freeBusyCache}),
    or C{None} when C{[http]} is off (no personal web sites to publish to).

    In worker mode every worker runs one: an account is held by the worker
    that serves its sessions, the parent holds none, and the files'
    publishing lock (C{mail/.gateway-published.lock}) keeps two processes
    from writing one account's files at once.
    """
    if not context.config["http", "enabled"]:
        return None
    from gateway.store.calendar.publish import FreeBusyFiles, sweepService

    files = FreeBusyFiles(context.freeBusyCache, clock=context.reactor, weeks=context.config["http", "freebusy_weeks"])
    return sweepService(files, context.realm.heldAccounts)


def makeService(config, reactor=None, checkPorts=True):
    """
    One C{MultiService} with a listener for every endpoint string of every
    enabled protocol.

    @raise ConfigurationError: for anything that would stop a listener.
    """
    checkLogFile(config)
    context = makeContext(config, reactor)
    top = GatewayService(context)
    for name, description in enabledListeners(config):
        _listener(name, description, top.factory(name), config, context, checkPorts).setServiceParent(top)
    if config["admin", "enabled"]:
        for description in config["admin", "listen"]:
            _listener("admin", description, top.factory("admin"), config, context, checkPorts).setServiceParent(top)
    publishing = publishingService(context)
    if publishing is not None:
        publishing.setServiceParent(top)
    memory = memoryReportService(config, context.reactor, describe=context.idle.describe)
    if memory is not None:
        memory.setServiceParent(top)
    return top


def enabledListeners(config):
    """
    The listeners of the enabled protocols (not the admin listener).

    @return: C{list} of C{(protocol, endpoint string)}.
    @raise ConfigurationError: for an enabled protocol that cannot listen.
    """
    available = availableFrontends()
    found = []
    for name in FRONTENDS:
        if not config[name, "enabled"]:
            continue
        option = "[%s] listen" % (name,)
        if name not in available:
            raise ConfigurationError("[%s] enabled: this version of gateway has no %s front-end" % (name, name))
        if not config[name, "listen"]:
            raise ConfigurationError("%s: no endpoint given (or set enabled = no)" % (option,))
        for description in config[name, "listen"]:
            found.append((name, description))
    return found


def _listener(name, description, factory, config, context, checkPorts=False):
    """
    The service listening on one endpoint string of C{[name] listen}.
    """
    option = "[%s] listen" % (name,)
    endpoint, address = makeEndpoint(
        context.reactor, description, context.tls, config["tls", "minimum_version"], option,
        config["server", "listen_backlog"], config["tls", "engine"],
    )
    if checkPorts and address is not None and IReactorTCP.providedBy(context.reactor):
        checkPortFree(address[0], address[1], option, description)
    child = _ListenerService(endpoint, factory)
    child.setName("%s %s" % (name, description))
    return child


#: Options a reload cannot apply: they take effect at the next start.
RESTART_OPTIONS = (("server", "data_root"), ("server", "main_domain"), ("server", "workers"),
                   ("server", "cpu_affinity"), ("auth", "checker"), ("tls", "engine"))


#: Settings some front-end factories copy when they are made:
#: attribute -> option of the protocol's section.
_COPIED = {"maxConnections": "max_connections", "idleTimeout": "idle_timeout", "lockSession": "lock_session"}


def _refreshCopies(factory, config, name):
    """
    Give a front-end's factory the new values of the settings it copied
    at start-up (new sessions use them).
    """
    for attribute, option in _COPIED.items():
        if hasattr(factory, attribute) and config.get(name, option) is not None:
            setattr(factory, attribute, config[name, option])


def checkLogFile(config):
    """
    @raise ConfigurationError: when C{[server] log_file} cannot be written.
    """
    path = config["server", "log_file"]
    if path:
        try:
            with open(path, "a"):
                pass
        except OSError as e:
            raise ConfigurationError("[server] log_file: %s: cannot write: %s" % (path, e.strerror or e))


class GatewayService(service.MultiService):
    """
    The whole server: one child per listener.  While it runs, its monitor
    reads the log events it counts (LMTP deliveries), the log file of
    C{[server] log_file} is written, and, when L{handleSignals} is set
    (under twistd), SIGHUP reloads the configuration and SIGUSR1 opens the
    log file again; its L{trimmer} gives the memory of ended sessions back
    to the system (L{gateway.memtrim}), and its L{releaser} lets go of
    what nobody used for a while (L{gateway.idle}).  Its L{affinity}, when
    twistd's plugin set one (L{gateway.tap.keepOnCpu}), keeps the process on
    its CPU (L{gateway.affinity}) from before any of its threads start.

    @ivar context: the L{ServiceContext}.
    @ivar factories: protocol name -> the factory its listeners share.
    """

    handleSignals = False
    logFile = None
    trimmer = None
    releaser = None
    affinity = None

    def __init__(self, context):
        service.MultiService.__init__(self)
        self.context = context
        self.factories = {}
        self._signals = {}

    def factory(self, name):
        """
        The factory of protocol C{name} (or C{'admin'}), made on first use:
        front-ends other than FTP inside their L{LimitedFactory}.
        """
        if name not in self.factories:
            context = self.context
            if name == "admin":
                factory = makeAdminFactory(context.monitor, context.reactor)
            else:
                factory = importlib.import_module(FRONTENDS[name]).makeFactory(context)
                if name not in UNWRAPPED:
                    factory = LimitedFactory(factory, ConnectionPolicy.fromConfig(context.config, name),
                                             context.reactor)
                    context.monitor.addProtocol(name, factory)
                elif hasattr(factory, "sessions"):
                    context.monitor.addSessionSource(name, factory)
            self.factories[name] = factory
        return self.factories[name]

    def startService(self):
        if self.affinity is not None:
            self.affinity.startService()
        globalLogPublisher.addObserver(self.context.monitor.observeLog)
        self._stopCounting = stats.observe(self.context.monitor.countEvent)
        self._stopTiming = stats.observeTimes(self.context.monitor.measureEvent)
        self._startLogFile(self.context.config)
        if self.handleSignals:
            self._installSignals()
        # Memory sessions freed goes back to the system (not a child: the
        # children are the listeners).
        self.trimmer = trimService(self.context.monitor, self.context.reactor)
        if self.trimmer is not None:
            self.trimmer.startService()
        if self.context.idle is not None:
            self.releaser = releaseService(self.context.idle, self.context.config["server", "release_idle_after"],
                                           self.context.reactor)
            if self.releaser is not None:
                self.releaser.startService()
        service.MultiService.startService(self)
        if self.handleSignals:
            # Every listener listens (privilegedStartService): ready.
            self.context.reactor.callWhenRunning(notify, b"READY=1")

    def stopService(self):
        """
        Stop accepting, let the sessions end (L{gateway.drain}: at most
        C{[server] drain_seconds}), then stop everything.
        """
        if self.handleSignals:
            notify(b"STOPPING=1")
        self._restoreSignals()
        for child in list(self):
            if getattr(child, "port", None) is not None:
                child.stopService()  # a listener: no new connections
        d = drain.drain(self.factories, self.context.reactor, max(0.0, self.context.config["server", "drain_seconds"]))
        d.addBoth(lambda _: self._stopEverything())
        return d

    def _stopEverything(self):
        globalLogPublisher.removeObserver(self.context.monitor.observeLog)
        self._stopCounting()
        self._stopTiming()
        if self.trimmer is not None:
            self.trimmer.stopService()
            self.trimmer = None
        if self.releaser is not None:
            self.releaser.stopService()
            self.releaser = None
        if self.logFile is not None:
            self.logFile.stop()
            self.logFile = None
        # What the index writers left unsynced (gateway.store.redo): made
        # durable now rather than replayed after the next boot.
        redo.checkpointer.flush()
        return service.MultiService.stopService(self)

    # -- log file --------------------------------------------------------------

    def _reloadLogFile(self, old, config):
        """
        Open the new C{[server] log_file} when a reload changed it (the
        one in use stays when the new one cannot be written).
        """
        if old["server", "log_file"] == config["server", "log_file"] or not self.running:
            return
        try:
            checkLogFile(config)
        except ConfigurationError as e:
            log.error("reload: {error}; the log file in use stays", error=str(e))
            return
        if self.logFile is not None:
            self.logFile.stop()
            self.logFile = None
        self._startLogFile(config)

    def _startLogFile(self, config):
        path = config["server", "log_file"]
        if path:
            self.logFile = glog.LogFile(path)
            self.logFile.start()

    def reopenLog(self):
        """
        Open the log file and the HTTP access log again by name (SIGUSR1,
        after logrotate).
        """
        files = [self.logFile.file] if self.logFile is not None and self.logFile.file is not None else []
        for factory in self.factories.values():
            access = getattr(getattr(factory, "wrappedFactory", factory), "_accessFile", None)
            if isinstance(access, glog.ReopeningFile):
                files.append(access)
        for f in files:
            try:
                f.reopen()
            except OSError as e:
                log.error("cannot open the log file {path} again: {error}", path=f.path, error=e)
        if files:
            log.info("log files opened again: {paths}", paths=" ".join(f.path for f in files))

    # -- signals -----------------------------------------------------------------

    def _installSignals(self):
        reactor = self.context.reactor

        def hangup(signum, frame):
            reactor.callFromThread(self.reload)

        previousUSR1 = signal.getsignal(signal.SIGUSR1)

        def user1(signum, frame):
            reactor.callFromThread(self.reopenLog)
            if callable(previousUSR1):
                previousUSR1(signum, frame)  # twistd's own --logfile rotation

        for signum, handler in ((signal.SIGHUP, hangup), (signal.SIGUSR1, user1)):
            self._signals[signum] = signal.signal(signum, handler)
        reactor.callWhenRunning(self._installStopSignals)

    def _installStopSignals(self):
        """
        Replace the reactor's SIGTERM and SIGINT handlers by ones that log
        nothing in the handler: the reactor's log "Received SIGTERM" from
        inside it, and a signal that arrives while a log line is being
        written to twistd's log file (whose lock is not re-entrant) then
        waits for that lock forever.  (A worker's parent, which writes every
        worker's lines, was seen to hang so.)  The line is logged from the
        reactor instead.
        """
        if not self.running:
            return
        reactor = self.context.reactor

        def stop(signum, frame):
            reactor.callFromThread(self._stopBySignal, signum)

        for signum in (signal.SIGTERM, signal.SIGINT):
            current = signal.getsignal(signum)
            if getattr(current, "__self__", None) is not None or current is signal.SIG_DFL:
                # Twisted's own (a bound method of its signal handling), or none.
                self._signals.setdefault(signum, current)
                signal.signal(signum, stop)

    def _stopBySignal(self, signum):
        reactor = self.context.reactor
        log.info("received {name}, shutting down", name=signal.Signals(signum).name)
        reactor._exitSignal = signum  # twistd ends by the same signal, as systemd expects
        try:
            reactor.stop()
        except ReactorNotRunning:
            pass  # a second signal while stopping

    def _restoreSignals(self):
        for signum, handler in self._signals.items():
            signal.signal(signum, handler)
        self._signals = {}

    # -- reload ------------------------------------------------------------------

    def reload(self):
        """
        Read the configuration file again and apply what changed without
        dropping a session: log levels and the log file, connection limits,
        TLS certificates, and listeners (those no longer configured stop
        listening; their sessions go on).  A configuration with an error
        changes nothing.

        @return: a C{Deferred} that fires with C{True} once the new
            listeners listen, or C{False} when nothing was changed.
        """
        context = self.context
        old = context.config
        if self.handleSignals:
            notify(reloading())
        d = self._reload(context, old)
        if self.handleSignals:
            def ready(result):
                notify(b"READY=1")
                return result

            d.addBoth(ready)
        return d

    def _reload(self, context, old):
        try:
            if old.path is None:
                raise ConfigurationError("the server was not started from a configuration file")
            config = loadConfig(old.path)
        except ConfigurationError as e:
            log.error("reload: {error}; the running configuration stays", error=str(e))
            return defer.succeed(False)
        glog.configure(config)
        self._reloadLogFile(old, config)
        for name, factory in context.monitor.protocols.items():
            factory.policy = ConnectionPolicy.fromConfig(config, name)
            _refreshCopies(factory.wrappedFactory, config, name)
        ftp = self.factories.get("ftp")
        if ftp is not None:
            # Not wrapped (its own limits, its own data-channel TLS context).
            _refreshCopies(ftp, config, "ftp")
            ftp.maxPerAddress = config["ftp", "max_connections_per_address"]
            ftp.loginTimeout = config["ftp", "login_timeout"]
        self._reloadCertificates(config)
        if ftp is not None:
            ftp.forgetDataTLS()
        for section, name in RESTART_OPTIONS:
            if old[section, name] != config[section, name]:
                log.warn("reload: [{section}] {name} changed: it takes effect when the server is restarted",
                         section=section, name=name)
        context.config = config
        d = self._reloadListeners(config)
        d.addCallback(lambda _: log.info("reload: configuration {path} applied", path=config.path) or True)
        return d

    def _reloadCertificates(self, config):
        context = self.context
        paths = (config["tls", "certificate"], config["tls", "private_key"], config["tls", "minimum_version"])
        try:
            if isinstance(context.tls, ReloadableTLS):
                context.tls.reload(*paths)
            elif context.tls is None and (os.path.exists(paths[0]) or os.path.exists(paths[1])):
                context.tls = ReloadableTLS(*paths, "[tls] certificate",
                                            sni=DomainCertificates(context.directory, config.dataRoot()),
                                            engine=config["tls", "engine"])
        except ConfigurationError as e:
            log.error("reload: {error}; the certificate in use stays", error=str(e))
        for child in self:
            endpoint = getattr(child, "endpoint", None)
            own = getattr(endpoint, "_sslContextFactory", None) or getattr(endpoint, "contextFactory", None)
            if isinstance(own, ReloadableTLS) and own is not context.tls:
                try:
                    own.reload()
                except ConfigurationError as e:
                    log.error("reload: {error}; the certificate in use stays", error=str(e))

    def _reloadListeners(self, config):
        wanted = {}
        for name in list(FRONTENDS) + ["admin"]:
            if config[name, "enabled"]:
                for description in config[name, "listen"]:
                    wanted["%s %s" % (name, description)] = (name, description)
        current = {child.name: child for child in list(self) if isinstance(child, _ListenerService)}
        stopping = []
        for key, child in current.items():
            if key not in wanted:
                log.info("reload: no longer listening on {listener}", listener=key)
                stopping.append(defer.maybeDeferred(child.disownServiceParent))

        def start(_):
            for key, (name, description) in wanted.items():
                if key in current:
                    continue
                child = None
                try:
                    child = _listener(name, description, self.factory(name), config, self.context)
                    child.setServiceParent(self)
                except Exception as e:
                    if child is not None and child.parent is self:
                        child.disownServiceParent()
                    log.error("reload: cannot listen on {listener}: {error}", listener=key, error=e)
                else:
                    log.info("reload: listening on {listener}", listener=key)

        return defer.DeferredList(stopping).addCallback(start)


class _ListenerService(service.Service):
    """
    Listens on one endpoint while running; failure to listen stops start-up.
    """

    def __init__(self, endpoint, factory):
        self.endpoint = endpoint
        self.factory = factory
        self.port = None

    def privilegedStartService(self):
        service.Service.privilegedStartService(self)
        d = self.endpoint.listen(self.factory)
        failures = []
        d.addCallbacks(self._listening, failures.append)
        if failures:
            failures[0].raiseException()

    #: Said after the address in the log line (L{_listening}).
    listeningFor = ""

    def _listening(self, port):
        self.port = writesAtTurnEnd(port)
        host = port.getHost()
        log.info("{listener}: listening on {host}:{port}{suffix}", listener=self.name,
                 host=getattr(host, "host", host), port=getattr(host, "port", ""), suffix=self.listeningFor)

    def stopService(self):
        service.Service.stopService(self)
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()
