# -*- test-case-name: tests.test_monitor -*-
"""
What is happening: the session registry and the metrics.

  - Sessions are the connections of the wrapped listeners
    (L{gateway.admin.limits.LimitedProtocol}): L{Monitor.sessionOpened} and
    L{Monitor.sessionClosed} keep the registry, and a closed session is
    logged with its duration and byte counts.  FTP's listener is not
    wrapped: its factory's C{sessions} are read when asked
    (L{Monitor.addSessionSource}).  What a session is doing
    (account, selected mailbox, IDLE) is read from the front-end's session
    object when asked: L{describe}.
  - Commands are counted and timed by L{Monitor.command}, the one hook the
    IMAP and POP3 dispatchers call.
  - Logins are counted by L{MonitoredPortal}, which the wiring puts in
    front of the portal every front-end logs in through.
  - Deliveries and quota refusals of LMTP are counted from its log events.

The metrics are C{prometheus-client} objects in a registry of the
monitor's own (several services in one test process stay apart), rendered
in the Prometheus text format by L{Monitor.renderMetrics}.  Their values,
and the monitor's own totals, are kept in slots made in advance
(L{gateway.admin.metricvalues}), and the metrics' children of a command
are all made when it is first counted, or at start-up for the commands
the wiring names (L{Monitor.prepareCommands}): counting during traffic
leaves no object behind among the sessions' short-lived ones.
"""

import bisect
import datetime
import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.python import failure
from zope.interface import implementer

from gateway.admin import metricvalues
from gateway.interfaces import IMonitor
from gateway.logging import getLogger

log = getLogger("sessions")

#: The statuses a command is counted with (L{_status}).
STATUSES = ("OK", "NO", "BAD", "error")

#: The delivery statuses of LMTP (L{Monitor.observeLog}).
DELIVERY_STATUSES = ("delivered", "refused", "failed")

#: Seconds: the command latency histogram's buckets.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _accountOf(session):
    account = getattr(session, "account", None)
    address = getattr(account, "address", None)
    return address if isinstance(address, str) else None


def _mailboxOf(session):
    view = getattr(session, "view", None)
    if view is not None:
        name = getattr(getattr(view, "mailbox", None), "name", None)
        if isinstance(name, str):
            return name
    if getattr(session, "state", None) == "TRANSACTION":
        return "INBOX"  # POP3
    return None


def describe(wrapper, now=None):
    """
    One session as a JSON-ready C{dict}.

    @param wrapper: a L{gateway.admin.limits.LimitedProtocol}.
    """
    session = wrapper.wrappedProtocol
    account = _accountOf(session)
    now = time.time() if now is None else now
    return {
        "protocol": wrapper.protocol,
        "account": account,
        "domain": account.rpartition("@")[2] if account else None,
        "remote": wrapper.remote,
        "port": getattr(wrapper, "remotePort", None),
        "since": _iso(wrapper.since),
        "seconds": round(now - wrapper.since, 1),
        "mailbox": _mailboxOf(session),
        "idle": bool(getattr(session, "idling", False)),
        "xmapi": bool(getattr(session, "xmapi", False)),
        "bytes_in": wrapper.bytesIn,
        "bytes_out": wrapper.bytesOut,
    }


def _iso(timestamp):
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).isoformat(timespec="seconds")


def describeUnwrapped(protocol, session):
    """
    A session of a front-end whose listener is not wrapped (FTP): what its
    session object says (its start, and its control channel's bytes where
    it counts them).
    """
    since = getattr(session, "since", None)
    account = _accountOf(session)
    try:
        peer = session.transport.getPeer()
        remote, port = getattr(peer, "host", None), getattr(peer, "port", None)
    except Exception:
        remote = port = None
    return {
        "protocol": protocol,
        "account": account,
        "domain": account.rpartition("@")[2] if account else None,
        "remote": remote,
        "port": port,
        "since": _iso(since) if since is not None else None,
        "seconds": round(time.time() - since, 1) if since is not None else None,
        "mailbox": None,
        "idle": False,
        "xmapi": False,
        "bytes_in": getattr(session, "bytesIn", None),
        "bytes_out": getattr(session, "bytesOut", None),
    }


def _status(result):
    """
    The status label of a finished command: C{OK}, C{NO}, C{BAD} (IMAP's
    tagged answers) or C{error}, and the answer's text.
    """
    if isinstance(result, failure.Failure):
        result = result.value
    if result is None:
        return "OK", ""
    if isinstance(result, tuple) and len(result) == 2:
        return str(result[0]), str(result[1])
    status = getattr(result, "status", None)
    if isinstance(result, Exception):
        if isinstance(status, str):
            return status, str(getattr(result, "text", ""))
        if isinstance(result, ValueError):
            return "BAD", ""
        return "error", ""
    return "OK", ""


def _slotOf(value):
    """
    C{(array, index)} of a metric value's slot (a
    L{metricvalues.SlotValue}); for another value class (prometheus-client's
    multi-process mode) a stand-in that reads and writes the value.
    """
    if isinstance(value, metricvalues.SlotValue):
        return value._array, value._index
    return _ValueSlot(value), 0


class _ValueSlot:
    """
    A metric value read and written as slot 0 of an array (L{_slotOf}).
    """

    def __init__(self, value):
        self.value = value

    def __getitem__(self, index):
        return self.value.get()

    def __setitem__(self, index, number):
        self.value.set(number)


class _Collector:
    """
    The metrics read at scrape time: sessions open, bytes, limit refusals.
    """

    def __init__(self, monitor):
        self.monitor = monitor

    def describe(self):
        return []

    def collect(self):
        monitor = self.monitor
        open_ = GaugeMetricFamily("gateway_sessions_open", "Connections open now, by protocol and the"
                                  " domain of the account logged in (empty before login).",
                                  labels=["protocol", "domain"])
        counts = {}
        received = dict(monitor.closedBytesIn)
        sent = dict(monitor.closedBytesOut)
        for wrapper in list(monitor.sessions):
            account = _accountOf(wrapper.wrappedProtocol) if wrapper.wrappedProtocol is not None else None
            key = (wrapper.protocol, account.rpartition("@")[2] if account else "")
            counts[key] = counts.get(key, 0) + 1
            received[wrapper.protocol] = received.get(wrapper.protocol, 0) + wrapper.bytesIn
            sent[wrapper.protocol] = sent.get(wrapper.protocol, 0) + wrapper.bytesOut
        for protocol, factory in monitor.sources.items():
            for session in list(factory.sessions):
                account = _accountOf(session)
                key = (protocol, account.rpartition("@")[2] if account else "")
                counts[key] = counts.get(key, 0) + 1
        for protocol in list(monitor.protocols) + list(monitor.sources):
            counts.setdefault((protocol, ""), 0)
        for key, value in sorted(counts.items()):
            open_.add_metric(list(key), value)
        yield open_
        for name, values, text in (
            ("gateway_received_bytes", received, "Octets received from clients."),
            ("gateway_sent_bytes", sent, "Octets sent to clients."),
        ):
            family = CounterMetricFamily(name, text, labels=["protocol"])
            for protocol in monitor.protocols:
                family.add_metric([protocol], values.get(protocol, 0))
            yield family
        connections = CounterMetricFamily("gateway_connections", "Connections accepted.", labels=["protocol"])
        for protocol in monitor.protocols:
            connections.add_metric([protocol], monitor.accepted.get(protocol, 0))
        yield connections
        refused = CounterMetricFamily(
            "gateway_limit_disconnects", "Connections refused or closed by a limit (address: per-address limit,"
            " total: max_connections, login: login_timeout, slow: request_timeout).",
            labels=["protocol", "reason"])
        for protocol, factory in sorted(monitor.protocols.items()):
            for reason in ("address", "total", "login", "slow"):
                refused.add_metric([protocol, reason], factory.refused.get(reason, 0) if factory else 0)
        yield refused


@implementer(IMonitor)
class Monitor:
    """
    The session registry and the metrics of one server.

    @ivar sessions: C{dict} of open L{LimitedProtocol} -> C{None}, oldest
        first.
    @ivar protocols: C{dict} of protocol name -> its L{LimitedFactory}.
    @ivar registry: the C{prometheus_client} registry.
    @ivar accepted: L{metricvalues.Counts} of protocol -> sessions opened.
    @ivar closedBytesIn: L{metricvalues.Counts} of protocol -> bytes
        received in the sessions that ended.
    @ivar closedBytesOut: the same, of bytes sent.
    """

    def __init__(self, clock=time.perf_counter):
        metricvalues.install()
        self._clock = clock
        self.sessions = {}
        self.protocols = {}
        self.sources = {}
        self.accepted = metricvalues.Counts()
        self.closedBytesIn = metricvalues.Counts()
        self.closedBytesOut = metricvalues.Counts()
        self.registry = CollectorRegistry(auto_describe=True)
        self.logins = Counter("gateway_logins", "Login attempts, by protocol, mechanism and result (ok, failed).",
                              ["protocol", "mechanism", "result"], registry=self.registry)
        self.commands = Counter("gateway_commands", "Commands by protocol, name and status (OK, NO, BAD, error).",
                                ["protocol", "command", "status"], registry=self.registry)
        self.latency = Histogram("gateway_command_duration_seconds", "Time from dispatch to completion of a"
                                 " command, by protocol and name.", ["protocol", "command"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.deliveries = Counter("gateway_deliveries", "LMTP deliveries, per recipient, by status"
                                  " (delivered, refused, failed).", ["status"], registry=self.registry)
        self.quotaRefusals = Counter("gateway_quota_refusals", "Writes refused because a storage quota was"
                                     " reached (IMAP APPEND/COPY/MOVE, LMTP delivery).", ["protocol"],
                                     registry=self.registry)
        #: Events other layers count through L{gateway.stats} (they know
        #: nothing of this module): name -> counter.
        self.eventCounters = {
            "index_rescans": Counter("gateway_index_rescans", "Mailbox folders listed again to find changes"
                                     " other programs made, by scope (full, names: only the files inotify named).",
                                     ["scope"], registry=self.registry),
            "freebusy_computations": Counter("gateway_freebusy_computations", "Free/busy documents computed"
                                             " (not answered from the cache).", [], registry=self.registry),
        }
        #: Times other layers measure through L{gateway.stats}: name ->
        #: histogram.
        self.eventTimers = {
            "index_write": Histogram(
                "gateway_index_write_seconds", "The index writer (gateway/store/writer.py), by stage:"
                " 'durable' from a write's submission until it is durable, its group's commit and"
                " folders' fsync (what a STORE, EXPUNGE, APPEND or delivery waits for), per write; 'lock'"
                " waiting for the index's lock (another worker's group), 'held' the group holding it (its"
                " writes and its commit; the folders' fsync follows), per group; 'checkpoint' the"
                " file system's sync that makes the message files the index recorded durable"
                " (gateway/store/redo.py), about once a second while writes come.", ["stage"],
                buckets=LATENCY_BUCKETS, registry=self.registry),
        }
        self.registry.register(_Collector(self))
        self._children = {}
        self._loginChildren = {}
        self._eventChildren = {}
        for status in DELIVERY_STATUSES:
            self.deliveries.labels(status)
        for protocol in ("imap", "lmtp"):
            self.quotaRefusals.labels(protocol)
        for scope in ("full", "names"):
            self.eventCounters["index_rescans"].labels(scope)

    # -- sessions ------------------------------------------------------------

    def addProtocol(self, name, factory):
        """
        Report the sessions of C{factory}'s listeners (a L{LimitedFactory}).
        """
        self.protocols[name] = factory
        factory.monitor = self
        for counts in (self.accepted, self.closedBytesIn, self.closedBytesOut):
            counts.prepare([name])

    def addSessionSource(self, name, factory):
        """
        Report the sessions of a front-end whose listener is not wrapped,
        read from its factory's C{sessions} when asked.
        """
        self.sources[name] = factory

    def sessionOpened(self, wrapper):
        self.sessions[wrapper] = None
        self.accepted.add(wrapper.protocol)

    def sessionClosed(self, wrapper):
        if wrapper not in self.sessions:
            return
        del self.sessions[wrapper]
        self.closedBytesIn.add(wrapper.protocol, wrapper.bytesIn)
        self.closedBytesOut.add(wrapper.protocol, wrapper.bytesOut)
        account = _accountOf(wrapper.wrappedProtocol) if wrapper.wrappedProtocol is not None else None
        emit = log.info if account else log.debug
        emit("session closed: protocol={protocol} user={user} remote={remote} duration={duration:.1f}s"
             " bytes_in={bytesIn} bytes_out={bytesOut}",
             protocol=wrapper.protocol, user=account or "-", remote=wrapper.remote or "-",
             duration=time.time() - wrapper.since, bytesIn=wrapper.bytesIn, bytesOut=wrapper.bytesOut)

    def sessionList(self):
        """
        The open sessions, oldest first, as L{describe} gives them.
        """
        now = time.time()
        result = [describe(wrapper, now) for wrapper in list(self.sessions) if wrapper.wrappedProtocol is not None]
        for name, factory in self.sources.items():
            result.extend(describeUnwrapped(name, session) for session in list(factory.sessions))
        return result

    # -- commands ------------------------------------------------------------

    def command(self, protocol, name, handler, *args):
        start = self._clock()
        try:
            result = handler(*args)
        except Exception as e:
            self._done(protocol, name, start, e)
            raise
        if isinstance(result, defer.Deferred):
            def done(value):
                self._done(protocol, name, start, value)
                return value

            result.addBoth(done)
        else:
            self._done(protocol, name, start, result)
        return result

    def prepareCommands(self, protocol, names):
        """
        Make the metrics' children of the commands C{names} of C{protocol}
        now (at start-up), with every status: see L{_childrenOf}.
        """
        for name in names:
            self._childrenOf(protocol, name, "OK")

    def _childrenOf(self, protocol, name, status):
        """
        Where a command with a status is counted: C{(bounds, buckets,
        total, count)} (see L{_done}), from the latency histogram's and
        the counter's children.  The first time a command is seen, those of
        all its statuses are made (C{labels()} takes a lock and builds a
        key: once per command), so that they are made together, not one
        now and one in the middle of traffic, where they would stay for
        good among short-lived objects.
        """
        children = self._children.get((protocol, name, status))
        if children is None:
            latency = self.latency.labels(protocol, name)
            bounds = list(latency._upper_bounds)
            buckets = [_slotOf(bucket) for bucket in latency._buckets]
            total = _slotOf(latency._sum)
            for each in STATUSES + ((status,) if status not in STATUSES else ()):
                counter = _slotOf(self.commands.labels(protocol, name, each)._value)
                self._children[protocol, name, each] = (bounds, buckets, total, counter)
            children = self._children[protocol, name, status]
        return children

    def _done(self, protocol, name, start, result):
        elapsed = self._clock() - start
        try:
            status, text = _status(result)
            bounds, buckets, total, counter = self._childrenOf(protocol, name, status)
            # Histogram.observe and Counter.inc, less their checks, loop
            # and lock (7.5% of a one-message FETCH's samples): the reactor
            # thread alone counts commands, so nothing updates these
            # slots at the same time.
            values, index = buckets[bisect.bisect_left(bounds, elapsed)]
            values[index] += 1
            values, index = total
            values[index] += elapsed
            values, index = counter
            values[index] += 1
            if "[OVERQUOTA]" in text:
                self.quotaRefusals.labels(protocol).inc()
        except Exception:
            log.failure("counting a command failed")

    # -- logins and deliveries -----------------------------------------------

    def login(self, protocol, mechanism, ok):
        key = (protocol or "-", mechanism or "-")
        children = self._loginChildren.get(key)
        if children is None:
            # Both outcomes at once, as a command's statuses (L{_childrenOf}):
            # the first failure of a kind of login otherwise made its child
            # in the middle of traffic, where it stayed for good.
            children = self._loginChildren[key] = (self.logins.labels(*key, "ok"),
                                                  self.logins.labels(*key, "failed"))
        children[0 if ok else 1].inc()

    def countEvent(self, name, labels):
        """
        A L{gateway.stats} observer: count an event of another layer.
        """
        counter = self.eventCounters.get(name)
        if counter is not None:
            (counter.labels(*(str(labels.get(n, "-")) for n in counter._labelnames))
             if counter._labelnames else counter).inc()

    def measureEvent(self, name, labels, seconds):
        """
        A L{gateway.stats} time observer: record a time another layer
        measured.
        """
        key = (name, *labels.items())
        child = self._eventChildren.get(key)
        if child is None:
            histogram = self.eventTimers.get(name)
            if histogram is None:
                return
            # labels() builds its key and takes a lock each time: once per
            # name and label values (a write's "durable" time is measured
            # on the reactor thread for every write: this method was 2.1%
            # of its samples under imaptest, 0.7% of them in labels()).
            child = histogram.labels(*(str(labels.get(n, "-")) for n in histogram._labelnames))
            self._eventChildren[key] = child
        child.observe(seconds)

    def observeLog(self, event):
        """
        A log observer: count LMTP deliveries from their log events
        (C{to=} with C{uid=} is delivered, with C{reason=} refused, or the
        event's own C{status=}).
        """
        if event.get("log_namespace") != "gateway.lmtp" or "to" not in event:
            return
        status = event.get("status")
        reason = str(event.get("reason", ""))
        if status is None:
            if "uid" in event:
                status = "delivered"
            elif reason:
                status = "refused"
            else:
                return  # not a delivery (an unknown recipient at RCPT, ...)
        else:
            text = str(status).lower()
            if text.startswith(("2", "sent", "deliver", "ok")):
                status = "delivered"
            elif text.startswith("4") or "defer" in text or "temp" in text:
                status = "failed"
            else:
                status = "refused"
        self.deliveries.labels(status).inc()
        if "quota" in reason.lower() or "quota" in str(event.get("status", "")).lower():
            self.quotaRefusals.labels("lmtp").inc()

    def renderMetrics(self):
        """
        The metrics in the Prometheus text format (C{bytes}).
        """
        return generate_latest(self.registry)


class MonitoredPortal:
    """
    The portal every front-end logs in through, counting each login by
    protocol, mechanism and outcome; everything else is the portal's.
    """

    def __init__(self, portal, monitor):
        self._portal = portal
        self._monitor = monitor

    def __getattr__(self, name):
        return getattr(self._portal, name)

    def login(self, credentials, mind, *interfaces):
        context = getattr(credentials, "context", None)
        protocol = getattr(context, "protocol", None)
        mechanism = getattr(credentials, "mechanism", None)
        d = self._portal.login(credentials, mind, *interfaces)

        def succeeded(result):
            self._monitor.login(protocol, mechanism, True)
            return result

        def failed(reason):
            if reason.check(UnauthorizedLogin):
                self._monitor.login(protocol, mechanism, False)
            return reason

        return d.addCallbacks(succeeded, failed)


@implementer(IMonitor)
class NullMonitor:
    """
    A monitor that counts nothing (contexts built without the wiring).
    """

    def command(self, protocol, name, handler, *args):
        return handler(*args)

