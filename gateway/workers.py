# -*- test-case-name: tests.test_workers -*-
"""
Worker processes (C{[server] workers = N}, N > 1).

The parent (L{WorkerParent}, what C{twistd gateway} runs) opens every
listening socket of the enabled protocols but never accepts on them; it
starts N C{twistd gateway --worker K} processes that inherit those sockets
and adopt them (C{IReactorSocket.adoptStreamPort}), so the workers share one
accept queue per listener: whichever worker is free accepts the next
connection, and a worker that dies takes no queued connection with it.
C{ssl:} listeners are adopted with the worker's own TLS context (the same
certificate files); FTP passive data ports are opened by the worker that
has the session, as before.

The parent:

    - restarts a worker that ends, after a pause that doubles (up to
      L{MAX_BACKOFF} seconds) while workers keep dying within
      L{STABLE_AFTER} seconds of their start;
    - replaces a worker that stayed idle and grew (L{gateway.recycle});
    - on SIGTERM (twistd's stop) sends SIGTERM to every worker, each of
      which drains its sessions (L{gateway.drain}), and ends once they
      have (SIGKILL after C{[server] drain_seconds} plus L{STOP_TIMEOUT}
      seconds);
    - passes SIGHUP (reload), SIGUSR1 (log files opened again) and,
      with C{[debug] memory_reports}, SIGUSR2 (memory reports) on;
      when a reload changes the listeners, opens and closes its sockets
      and starts the workers again one by one (each drains its sessions
      first), so that they adopt the new set;
    - writes the workers' log lines into its own log, as one stream, each
      with C{worker K} in its system field;
    - serves the admin listener itself: C{/metrics} adds up the workers'
      metrics, C{/sessions} lists every worker's sessions (with their
      C{worker} number), both asked of the workers over a control pipe.

A worker whose parent goes away (the control pipe closes) stops.  The
worker's side is L{gateway.worker}.
"""

import json
import os
import signal
import sys
import time

from twisted.internet import defer, error, protocol
from twisted.internet.interfaces import IReactorTime
from twisted.logger import LogLevel, globalLogPublisher
from twisted.protocols.basic import NetstringReceiver
from twisted.web import resource, server

from gateway import logging as glog
from gateway.admin.notify import notify, reloading
from gateway.admin.sharedcounts import forgetWorker as forgetWorkerCounts
from gateway.admin.web import INDEX, AdminSite
from gateway.config import ConfigurationError, loadConfig
from gateway.cred.delays import SHARED_PATH, SharedLoginDelays
from gateway.memdebug import memoryReportService
from gateway.recycle import WorkerRecycler
from gateway.service import (
    RESTART_OPTIONS,
    GatewayService,
    _listener,
    _ListenerService,
    checkLogFile,
    enabledListeners,
    makeContext,
)
from gateway.workerload import forgetWorker

log = glog.getLogger("server")

#: The child's file descriptors for the control pipe (parent -> worker,
#: worker -> parent).
CONTROL_IN, CONTROL_OUT = 3, 4
#: The first child file descriptor of the inherited listening sockets.
FIRST_LISTENER_FD = 10
#: Longest pause, in seconds, before a worker that keeps dying is started again.
MAX_BACKOFF = 30.0
#: A worker that ran this many seconds is healthy: the next restart is quick.
STABLE_AFTER = 10.0
#: Seconds the workers get to end after SIGTERM, beyond C{[server]
#: drain_seconds}, before SIGKILL.
STOP_TIMEOUT = 30.0
#: Seconds the admin listener waits for a worker's answer.
ASK_TIMEOUT = 5.0
#: Longest answer of a worker over the control pipe, in bytes (10,000
#: sessions' list is about 3 MB).
MAX_ANSWER = 256 * 1024 * 1024

#: The environment variable that gives the workers the parent's secret.
SECRET_VARIABLE = "GATEWAY_WORKER_SECRET"

#: How a worker's twistd is started: this interpreter, twistd's own main.
_TWISTD = "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()"


def listenerKey(name, description):
    """
    The name of a listener, as C{GatewayService} names its children.
    """
    return "%s %s" % (name, description)


# -- the parent ---------------------------------------------------------------


class _NotAccepting(protocol.ServerFactory):
    """
    The factory of the parent's listeners: never used, the parent does not accept.
    """

    noisy = False

    def buildProtocol(self, addr):
        return None


class _HeldListenerService(_ListenerService):
    """
    A listener the parent opens and the workers accept on: it listens
    (privileged start, so a port below 1024 works under C{--uid}) and then
    stops reading.
    """

    listeningFor = " for the workers"

    def _listening(self, port):
        port.stopReading()
        _ListenerService._listening(self, port)

    def fileno(self):
        return self.port.fileno()


class WorkerParent(GatewayService):
    """
    The parent process of C{workers = N}: the listening sockets, the admin
    listener, and N L{WorkerProcess}.

    @ivar count: how many workers run.
    @ivar workers: worker number (from 1) -> L{WorkerProcess}.
    @ivar restarts: how many times a worker was started again.
    """

    def __init__(self, context, count, configPath=None, spawn=None):
        GatewayService.__init__(self, context)
        self.count = count
        self.configPath = configPath
        self.workers = {}
        self.restarts = 0
        self.secret = os.urandom(32).hex()
        self._spawn = spawn or context.reactor.spawnProcess
        #: The workers that served since the start, until all did.
        self._served = set()
        self.allServed = False
        #: The L{WorkerRecycler}, if idle workers are replaced.
        self.recycler = None

    def workerServing(self, worker):
        """
        Worker C{worker} adopted its listeners.  Workers accept nothing
        until every one of them serves (or L{gateway.worker.ACCEPT_WAIT}
        passed): connections made at the start (clients reconnecting after a
        restart) are shared between all of them, not all taken by the first
        one up for the life of their sessions.  A worker started again later
        accepts at once.
        """
        if self.allServed:
            self._tellAccept(worker)
            return
        self._served.add(worker.number)
        if len(self._served) >= self.count:
            self.allServed = True
            for each in self.workers.values():
                self._tellAccept(each)

    @staticmethod
    def _tellAccept(worker):
        worker.ask("accept").addErrback(lambda failure: None)  # it accepts after ACCEPT_WAIT anyway

    def listeners(self):
        """
        @return: C{list} of the L{_HeldListenerService} children.
        """
        return [child for child in self if isinstance(child, _HeldListenerService)]

    def startService(self):
        GatewayService.startService(self)
        for number in range(1, self.count + 1):
            self.workers[number] = WorkerProcess(self, number)
            self.workers[number].start()

    def stopService(self):
        for child in self.listeners():
            child.stopService()  # the workers still hold theirs until they have drained
        workers = [w for w in self.workers.values()]
        ended = defer.DeferredList([w.stop() for w in workers])
        ended.addCallback(lambda _: GatewayService.stopService(self))
        return ended

    # -- what a worker is started with ---------------------------------------

    def workerCommand(self, number):
        """
        @return: C{(arguments, childFDs)} of worker C{number}.
        """
        args = [sys.executable, "-c", _TWISTD, "--nodaemon", "--pidfile=", "--logfile=-", "gateway"]
        if self.configPath is not None:
            args += ["--config", self.configPath]
        args += ["--worker", str(number)]
        fds = {0: "w", 1: "r", 2: "r", CONTROL_IN: "w", CONTROL_OUT: "r"}
        for index, child in enumerate(self.listeners()):
            fd = FIRST_LISTENER_FD + index
            fds[fd] = child.fileno()
            args += ["--inherit", "%d=%s" % (fd, child.name)]
        return args, fds

    def workerEnded(self, worker, lived):
        """
        Worker C{worker} ended after C{lived} seconds: start it again
        unless the server is stopping.
        """
        self.forgetProcess(worker.lastPid)
        forgetWorker(self.context.config.dataRoot(), worker.number)
        forgetWorkerCounts(self.context.config.dataRoot(), worker.number)
        if worker.replacing and self.running:
            worker.replacing = worker.stopping = False
            worker.start()
            return
        if not self.running or worker.stopping:
            return
        if lived >= STABLE_AFTER:
            worker.quickDeaths = 0
        worker.quickDeaths += 1
        delay = min(0.5 * 2 ** (worker.quickDeaths - 1), MAX_BACKOFF)
        log.warn("worker {number} ended; starting it again in {delay} s", number=worker.number, delay=delay)
        self.restarts += 1
        worker.restart = self.context.reactor.callLater(delay, worker.start)

    def forgetProcess(self, pid):
        """
        What worker C{pid} had under way (login attempts) is no longer (its
        connections: L{gateway.admin.sharedcounts.forgetWorker}).
        """
        if pid is None:
            return
        dataRoot = self.context.config.dataRoot()
        shared = SharedLoginDelays(os.path.join(dataRoot, SHARED_PATH), self.context.reactor, 0, 0, 1)
        try:
            shared.forgetProcess(pid)
        finally:
            shared.close()

    # -- signals -------------------------------------------------------------

    def signalWorkers(self, signum):
        for worker in self.workers.values():
            worker.signal(signum)

    def reload(self):
        """
        SIGHUP: the parent applies the log settings and passes the signal
        on; each worker reloads its configuration.  Listener changes need a
        restart with workers.
        """
        if self.handleSignals:
            notify(reloading())
        try:
            return self._reloadParent()
        finally:
            if self.handleSignals:
                notify(b"READY=1")

    def _reloadParent(self):
        context = self.context
        try:
            config = loadConfig(context.config.path) if context.config.path else context.config
        except ConfigurationError as e:
            log.error("reload: {error}; the running configuration stays", error=str(e))
            return defer.succeed(False)
        try:
            wanted = {listenerKey(n, d): (n, d) for n, d in enabledListeners(config)}
        except ConfigurationError as e:
            log.error("reload: {error}; the running configuration stays", error=str(e))
            return defer.succeed(False)
        glog.configure(config)
        self._reloadLogFile(context.config, config)
        for section, name in RESTART_OPTIONS:
            if context.config[section, name] != config[section, name]:
                log.warn("reload: [{section}] {name} changed: it takes effect when the server is restarted",
                         section=section, name=name)
        context.config = config
        if not self._changeListeners(config, wanted):
            self.signalWorkers(signal.SIGHUP)
            log.info("reload: passed on to the workers")
            return defer.succeed(True)
        log.info("reload: listeners changed: the workers are started again one by one")
        return self.replaceWorkers().addCallback(lambda _: True)

    def _changeListeners(self, config, wanted):
        """
        Open the listeners of C{wanted} (listener name -> C{(protocol,
        endpoint string)}) that are not open, close those no longer wanted
        (the workers that hold them go on accepting on them until they are
        started again).  A listener that cannot be opened is logged and left
        out.

        @return: whether anything changed.
        """
        current = {child.name: child for child in self.listeners()}
        changed = False
        for key, child in current.items():
            if key not in wanted:
                log.info("reload: no longer listening on {listener}", listener=key)
                child.disownServiceParent()
                changed = True
        for key, (name, description) in wanted.items():
            if key in current:
                continue
            held = None
            try:
                child = _listener(name, description, _NotAccepting(), config, self.context)
                held = _HeldListenerService(child.endpoint, child.factory)
                held.setName(child.name)
                held.setServiceParent(self)
            except Exception as e:
                if held is not None and held.parent is self:
                    held.disownServiceParent()
                log.error("reload: cannot listen on {listener}: {error}", listener=key, error=e)
            else:
                changed = True
        return changed

    def replaceWorkers(self):
        """
        Start every worker again, one after the other, so that they get the
        parent's listeners as they are now: each old one drains its
        sessions (as on SIGTERM) while the others serve, and the next is
        replaced once the new one serves.

        @return: a C{Deferred} that fires when all have been replaced.
        """
        d = defer.succeed(None)
        for number in sorted(self.workers):
            d.addCallback(lambda _, worker=self.workers[number]: worker.replace())
        return d

    def reopenLog(self):
        GatewayService.reopenLog(self)
        self.signalWorkers(signal.SIGUSR1)

    # -- admin ---------------------------------------------------------------

    def ask(self, what):
        """
        Ask every running worker C{what} (C{'metrics'} or C{'sessions'}).

        @return: a C{Deferred} firing with C{[(number, answer)]} of the
            workers that answered in time.
        """
        asked = [(number, worker.ask(what)) for number, worker in sorted(self.workers.items())]
        answers = defer.DeferredList([d for _, d in asked], consumeErrors=True)

        def collect(results):
            return [(number, value) for (number, _), (ok, value) in zip(asked, results, strict=True) if ok]

        return answers.addCallback(collect)

    def metrics(self):
        """
        @return: a C{Deferred} firing with the workers' metrics added up (C{bytes}).
        """

        def render(answers):
            text = addMetrics([answer for _, answer in answers])
            running = sum(1 for w in self.workers.values() if w.pid is not None)
            text += ("# HELP gateway_workers Worker processes running.\n# TYPE gateway_workers gauge\n"
                     "gateway_workers %d\n" % (running,))
            text += ("# HELP gateway_workers_answered Workers whose metrics are in this page's sums.\n"
                     "# TYPE gateway_workers_answered gauge\ngateway_workers_answered %d\n" % (len(answers),))
            text += ("# HELP gateway_worker_restarts_total Workers started again after they ended.\n"
                     "# TYPE gateway_worker_restarts_total counter\n"
                     "gateway_worker_restarts_total %d\n" % (self.restarts,))
            replaced = self.recycler.replaced if self.recycler is not None else 0
            text += ("# HELP gateway_workers_replaced_idle_total Idle workers whose memory grew, replaced"
                     " by new ones.\n# TYPE gateway_workers_replaced_idle_total counter\n"
                     "gateway_workers_replaced_idle_total %d\n" % (replaced,))
            return text.encode("utf-8")

        return self.ask("metrics").addCallback(render)

    def sessions(self):
        """
        @return: a C{Deferred} firing with every worker's sessions, each with its C{worker}.
        """

        def merge(answers):
            found = []
            for number, sessions in answers:
                for session in sessions:
                    session["worker"] = number
                    session["pid"] = self.workers[number].pid
                    found.append(session)
            return json.dumps({"sessions": found}, indent=1).encode("utf-8") + b"\n"

        return self.ask("sessions").addCallback(merge)


def addMetrics(texts):
    """
    Add up metrics in the Prometheus text format: samples with the same
    name and labels are summed, each family keeps its C{HELP}/C{TYPE}
    lines, in the order first seen.

    @param texts: C{list} of C{str}.
    @return: C{str}.
    """
    families = {}
    for text in texts:
        current = None
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    current = parts[2]
                    family = families.setdefault(current, ([], {}))
                    if line not in family[0]:
                        family[0].append(line)
                continue
            key, _, value = line.rpartition(" ")
            try:
                number = float(value)
            except ValueError:
                continue
            samples = families.setdefault(current, ([], {}))[1]
            if key.startswith("process_start_time_seconds"):
                samples[key] = min(samples.get(key, number), number)
            else:
                samples[key] = samples.get(key, 0.0) + number
    out = []
    for heads, samples in families.values():
        out.extend(heads)
        out.extend("%s %r" % (key, value) for key, value in samples.items())
    return "\n".join(out) + "\n" if out else ""


class _AskingPage(resource.Resource):
    isLeaf = True

    def __init__(self, contentType, ask):
        resource.Resource.__init__(self)
        self.contentType = contentType
        self._ask = ask

    def render_GET(self, request):
        request.setHeader(b"content-type", self.contentType)
        request.setHeader(b"cache-control", b"no-store")

        def write(body):
            if not request._disconnected:
                request.write(body)
                request.finish()

        def failed(reason):
            log.error("admin: cannot ask the workers: {error}", error=reason.getErrorMessage())
            if not request._disconnected:
                request.setResponseCode(503)
                request.write(b"the workers did not answer\n")
                request.finish()

        self._ask().addCallbacks(write, failed)
        return server.NOT_DONE_YET

    render_HEAD = render_GET


def makeParentAdminFactory(parent, reactor=None):
    """
    The admin site of the parent: the same pages as
    L{gateway.admin.web.makeAdminFactory}, answered by the workers.
    """
    from prometheus_client import CONTENT_TYPE_LATEST

    from gateway.admin.web import _Page

    root = resource.Resource()
    root.putChild(b"", _Page(b"text/plain; charset=utf-8", lambda: INDEX))
    root.putChild(b"metrics", _AskingPage(CONTENT_TYPE_LATEST.encode("ascii"), parent.metrics))
    root.putChild(b"sessions", _AskingPage(b"application/json", parent.sessions))
    return AdminSite(root, reactor=reactor)


class WorkerProcess(protocol.ProcessProtocol):
    """
    One worker as the parent sees it: its process, its log lines, its
    control pipe.

    @ivar number: from 1.
    @ivar pid: its process id while it runs, else C{None}.
    @ivar quickDeaths: how many times in a row it ended soon after starting.
    """

    pid = None
    lastPid = None
    restart = None
    stopping = False
    #: Being started again (L{replace}): when it ends, it starts at once.
    replacing = False

    def __init__(self, parent, number):
        self.parent = parent
        self.number = number
        self.quickDeaths = 0
        self._ended = []
        self._serving = []
        self._questions = {}
        self._nextQuestion = 0

    def start(self):
        self.restart = None
        self._buffers = {1: b"", 2: b""}
        self._control = self._makeControl()
        args, fds = self.parent.workerCommand(self.number)
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)  # the parent tells systemd
        env.pop("LISTEN_FDS", None)
        env.pop("LISTEN_PID", None)
        env["GATEWAY_WORKER"] = str(self.number)
        env[SECRET_VARIABLE] = self.parent.secret
        self.started = time.monotonic()
        self.process = self.parent._spawn(self, args[0], args, env=env, path=os.getcwd(), childFDs=fds)
        self.pid = self.process.pid
        log.info("worker {number} started (pid {pid})", number=self.number, pid=self.pid)

    def _makeControl(self):
        """
        The parser of the worker's answers on its control pipe.
        """
        control = NetstringReceiver()
        # A busy worker's metrics or session list can be megabytes.
        control.MAX_LENGTH = MAX_ANSWER
        control.stringReceived = self._answerReceived
        control.makeConnection(_NullTransport())
        return control

    # -- process events ------------------------------------------------------

    def childDataReceived(self, fd, data):
        if fd == CONTROL_OUT:
            self._control.dataReceived(data)
            return
        if fd not in self._buffers:
            return
        lines = (self._buffers[fd] + data).split(b"\n")
        self._buffers[fd] = lines.pop()
        if len(self._buffers[fd]) > 65536:
            lines.append(self._buffers[fd])
            self._buffers[fd] = b""
        for line in lines:
            self._logLine(line.decode("utf-8", "replace"))

    def _logLine(self, line):
        """
        Log a line of the worker's twistd log (C{TIME [NAMESPACE#LEVEL] TEXT})
        as its event, with the worker's number.
        """
        if not line.strip():
            return
        namespace, level, text = "-", LogLevel.info, line
        head, sep, rest = line.partition(" [")
        system, sep2, after = rest.partition("] ")
        if sep and sep2 and " " not in head:
            text = after
            if "#" in system:
                namespace, _, name = system.rpartition("#")
                try:
                    level = LogLevel.levelWithName(name)
                except Exception:
                    level = LogLevel.info
        globalLogPublisher({
            "log_namespace": namespace, "log_level": level, "log_time": time.time(),
            "log_format": "{text}", "text": text, "worker": self.number,
            "log_system": "worker %d %s#%s" % (self.number, namespace, level.name),
        })

    def processEnded(self, reason):
        for rest in self._buffers.values():
            if rest:
                self._logLine(rest.decode("utf-8", "replace"))
        self._buffers = {1: b"", 2: b""}
        pid, self.pid = self.pid, None
        self.lastPid = pid
        status = reason.value
        if getattr(status, "signal", None):
            how = "by signal %d" % (status.signal,)
        else:
            how = "with exit status %s" % (getattr(status, "exitCode", None),)
        log.info("worker {number} (pid {pid}) ended {how}", number=self.number, pid=pid, how=how)
        for d in list(self._questions.values()):
            d.errback(error.ConnectionLost("worker %d ended" % (self.number,)))
        self._questions = {}
        ended, self._ended = self._ended, []
        for d in ended:
            d.callback(None)
        self.parent.workerEnded(self, time.monotonic() - self.started)

    # -- control -------------------------------------------------------------

    def signal(self, signum):
        if self.pid is not None:
            try:
                self.process.signalProcess(signum)
            except (OSError, error.ProcessExitedAlready):
                pass

    def stop(self):
        """
        SIGTERM, then SIGKILL after L{STOP_TIMEOUT} seconds.

        @return: a C{Deferred} that fires once it ended.
        """
        self.stopping = True
        if self.restart is not None and self.restart.active():
            self.restart.cancel()
        if self.pid is None:
            return defer.succeed(None)
        d = defer.Deferred()
        self._ended.append(d)
        self.signal(signal.SIGTERM)
        clock = self.parent.context.reactor
        if IReactorTime.providedBy(clock):
            drainSeconds = max(0.0, self.parent.context.config["server", "drain_seconds"])
            kill = clock.callLater(drainSeconds + STOP_TIMEOUT, self.signal, signal.SIGKILL)
            d.addBoth(lambda result: kill.active() and kill.cancel() or result)
        return d

    def replace(self):
        """
        Stop this worker (it drains its sessions) and start it again at once.

        @return: a C{Deferred} that fires once the new process serves (or
            after L{STOP_TIMEOUT} seconds more than the drain may take).
        """
        if self.pid is None:
            return defer.succeed(None)
        serving = defer.Deferred()
        self._serving.append(serving)
        self.replacing = True
        self.stop()
        clock = self.parent.context.reactor
        drainSeconds = max(0.0, self.parent.context.config["server", "drain_seconds"])
        timer = clock.callLater(drainSeconds + 2 * STOP_TIMEOUT, self._fireServing)

        def cancel(result):
            if timer.active():
                timer.cancel()
            return result

        return serving.addBoth(cancel)

    def _fireServing(self):
        serving, self._serving = self._serving, []
        for d in serving:
            d.callback(None)

    def ask(self, what):
        """
        @return: a C{Deferred} firing with the worker's answer to C{what}.
        """
        if self.pid is None:
            return defer.fail(error.ConnectionLost("worker %d is not running" % (self.number,)))
        self._nextQuestion += 1
        number = self._nextQuestion
        d = defer.Deferred()
        self._questions[number] = d
        clock = self.parent.context.reactor
        timer = clock.callLater(ASK_TIMEOUT, self._unanswered, number)

        def cancelTimer(result):
            if timer.active():
                timer.cancel()
            return result

        d.addBoth(cancelTimer)
        message = json.dumps({"id": number, "ask": what}).encode("utf-8")
        self.transport.writeToChild(CONTROL_IN, b"%d:%s," % (len(message), message))
        return d

    def _unanswered(self, number):
        d = self._questions.pop(number, None)
        if d is not None:
            d.errback(defer.TimeoutError("worker %d did not answer" % (self.number,)))

    def _answerReceived(self, data):
        try:
            message = json.loads(data)
            if message.get("event") == "serving":
                self._fireServing()
                self.parent.workerServing(self)
                return
            d = self._questions.pop(message["id"])
        except (ValueError, KeyError, TypeError):
            return
        d.callback(message.get("answer"))


class _NullTransport:
    def write(self, data):
        pass

    def loseConnection(self):
        pass


# -- building them ------------------------------------------------------------

def makeParentService(config, reactor=None, checkPorts=True, spawn=None):
    """
    The parent of C{config["server", "workers"]} workers.
    """
    checkLogFile(config)
    context = makeContext(config, reactor)
    path = os.path.abspath(config.path) if config.path else None
    top = WorkerParent(context, config["server", "workers"], path, spawn=spawn)
    listeners = enabledListeners(config)
    if not listeners:
        raise ConfigurationError("[server] workers: no protocol is enabled")
    for name, description in listeners:
        child = _listener(name, description, _NotAccepting(), config, context, checkPorts)
        held = _HeldListenerService(child.endpoint, child.factory)
        held.setName(child.name)
        held.setServiceParent(top)
    if config["admin", "enabled"]:
        admin = makeParentAdminFactory(top, context.reactor)
        top.factories["admin"] = admin
        for description in config["admin", "listen"]:
            child = _listener("admin", description, admin, config, context, checkPorts)
            child.setServiceParent(top)
    memory = memoryReportService(config, context.reactor, passOn=lambda: top.signalWorkers(signal.SIGUSR2))
    if memory is not None:
        memory.setServiceParent(top)
    interval = config["server", "release_idle_after"]
    if config["server", "replace_idle_workers"] and interval > 0:
        growth = 1 + config["server", "replace_growth"] / 100.0
        top.recycler = WorkerRecycler(top, interval, growth, context.reactor)
        top.recycler.setServiceParent(top)
    return top
