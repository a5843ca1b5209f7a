# -*- test-case-name: tests.test_metricvalues -*-
"""
Counters that keep their values in slots made in advance
(L{gateway.admin.metricvalues}), and the monitor's use of them: counting
leaves no new object behind.
"""

import array
import types

import prometheus_client.values
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from twisted.trial import unittest

from gateway.admin import metricvalues
from gateway.admin.metricvalues import Counts, Slots, SlotValue
from gateway.admin.monitor import LATENCY_BUCKETS, STATUSES, Monitor
from tests.test_monitor import samples, value


class SlotsTests(unittest.TestCase):
    def test_allocate(self):
        """Slots hands out the slots of one array in turn, then a new array once it is full."""
        slots = Slots("q", chunk=2)
        first, second, third = slots.allocate(), slots.allocate(), slots.allocate()
        self.assertIsInstance(first[0], array.array)
        self.assertIs(first[0], second[0])
        self.assertEqual((first[1], second[1]), (0, 1))
        self.assertIsNot(third[0], first[0])
        self.assertEqual(third[1], 0)
        self.assertEqual(slots.chunks, 2)
        self.assertEqual(list(first[0]), [0, 0])


class SlotValueTests(unittest.TestCase):
    def test_valueInSlot(self):
        """inc and set write the value into the value's array slot; get reads it back."""
        v = SlotValue("counter", "n", "n_total", (), (), "doc")
        v.inc(2.5)
        v.inc(1)
        self.assertEqual(v._array[v._index], 3.5)
        self.assertEqual(v.get(), 3.5)
        v.set(7)
        self.assertEqual(v._array[v._index], 7.0)
        self.assertFalse(hasattr(v, "__dict__"))

    def test_exemplar(self):
        """An exemplar set is given back."""
        v = SlotValue("counter", "n", "n_total", (), (), "doc")
        self.assertIsNone(v.get_exemplar())
        v.set_exemplar("e")
        self.assertEqual(v.get_exemplar(), "e")

    def test_install(self):
        """install makes SlotValue the value class, unless prometheus-client is in multi-process mode."""
        plain = types.SimpleNamespace(MutexValue=prometheus_client.values.MutexValue,
                                      ValueClass=prometheus_client.values.MutexValue)
        self.assertTrue(metricvalues.install(plain))
        self.assertIs(plain.ValueClass, SlotValue)
        shared = object()
        multi = types.SimpleNamespace(MutexValue=prometheus_client.values.MutexValue, ValueClass=shared)
        self.assertFalse(metricvalues.install(multi))
        self.assertIs(multi.ValueClass, shared)


class CountsTests(unittest.TestCase):
    def test_counts(self):
        """Counts reads as a dict of totals, each kept in an array slot; a new name gets a slot at its first count."""
        counts = Counts(["imap"])
        self.assertEqual(dict(counts), {"imap": 0})
        counts.add("imap")
        counts.add("imap", 10**12)
        counts.add("pop3", 3)
        self.assertEqual(dict(counts), {"imap": 10**12 + 1, "pop3": 3})
        self.assertEqual(sum(counts.values()), 10**12 + 4)
        values, index = counts._where["imap"]
        self.assertEqual(values[index], 10**12 + 1)
        self.assertEqual(counts.get("ftp", 0), 0)
        self.assertIn("Counts(", repr(counts))


class MonitorValuesTests(unittest.TestCase):
    def test_prometheusValuesInSlots(self):
        """The monitor's metrics keep their values in slots: a command's count is in its child's slot."""
        monitor = Monitor(clock=lambda: 0.0)
        monitor.command("imap", "NOOP", lambda: None)
        child = monitor.commands.labels("imap", "NOOP", "OK")
        self.assertIsInstance(child._value, SlotValue)
        self.assertEqual(child._value._array[child._value._index], 1.0)

    def test_countedAsObserveWould(self):
        """A command's time lands in the bucket, sum and count that prometheus-client's observe gives."""
        times = [0.0, 0.0004, 0.001, 0.003, 0.01, 0.0100001, 2.0, 31.0, 0.2]
        clock = iter(t for elapsed in times for t in (0.0, elapsed))
        monitor = Monitor(clock=lambda: next(clock))
        for _ in times:
            monitor.command("imap", "NOOP", lambda: None)
        registry = CollectorRegistry()
        reference = Histogram("gateway_command_duration_seconds", "", ["protocol", "command"],
                              buckets=LATENCY_BUCKETS, registry=registry)
        for elapsed in times:
            reference.labels("imap", "NOOP").observe(elapsed)
        def durations(text):
            return {(name, dict(labels).get("le")): number for (name, labels), number in samples(text).items()
                    if name.startswith("gateway_command_duration_seconds") and not name.endswith("_created")
                    and ("command", "NOOP") in labels}

        ours = durations(monitor.renderMetrics())
        theirs = durations(generate_latest(registry))
        self.assertEqual(ours, theirs)
        self.assertEqual(ours["gateway_command_duration_seconds_bucket", "0.01"], 5)
        self.assertEqual(value(samples(monitor.renderMetrics()), "gateway_commands_total", protocol="imap",
                               command="NOOP", status="OK"), len(times))

    def test_countedWithoutSlots(self):
        """With another value class (prometheus-client's multi-process mode) commands are still counted."""
        self.patch(prometheus_client.values, "ValueClass", prometheus_client.values.MutexValue)
        self.patch(metricvalues, "install", lambda values=None: False)
        monitor = Monitor(clock=lambda: 0.0)
        monitor.command("imap", "NOOP", lambda: None)
        monitor.command("imap", "NOOP", lambda: None)
        parsed = samples(monitor.renderMetrics())
        self.assertEqual(value(parsed, "gateway_commands_total", protocol="imap", command="NOOP", status="OK"), 2)
        self.assertEqual(value(parsed, "gateway_command_duration_seconds_bucket", protocol="imap", command="NOOP",
                               le="0.001"), 2)

    def test_statusesMadeTogether(self):
        """The first count of a command makes its children of every status at once; later counts make none."""
        monitor = Monitor(clock=lambda: 0.0)
        monitor.command("imap", "NOOP", lambda: None)
        made = {key for key in monitor._children if key[:2] == ("imap", "NOOP")}
        self.assertEqual(made, {("imap", "NOOP", status) for status in STATUSES})
        children = dict(monitor._children)
        monitor.command("imap", "NOOP", lambda: ("NO", "no"))
        monitor.command("imap", "NOOP", lambda: ("PREAUTH", "odd"))
        self.assertEqual({k: v for k, v in monitor._children.items() if k in children}, children)
        parsed = samples(monitor.renderMetrics())
        self.assertEqual(value(parsed, "gateway_commands_total", protocol="imap", command="NOOP", status="BAD"), 0)
        self.assertEqual(value(parsed, "gateway_commands_total", protocol="imap", command="NOOP", status="NO"), 1)
        self.assertEqual(value(parsed, "gateway_commands_total", protocol="imap", command="NOOP", status="PREAUTH"), 1)

    def test_prepareCommands(self):
        """prepareCommands makes the children of the commands named before any is counted."""
        monitor = Monitor()
        monitor.prepareCommands("pop3", ["STAT", "RETR"])
        parsed = samples(monitor.renderMetrics())
        for name in ("STAT", "RETR"):
            for status in STATUSES:
                self.assertEqual(value(parsed, "gateway_commands_total", protocol="pop3", command=name,
                                       status=status), 0)
            self.assertEqual(value(parsed, "gateway_command_duration_seconds_count", protocol="pop3",
                                   command=name), 0)

    def test_sessionTotalsInSlots(self):
        """Sessions accepted and the bytes of closed sessions are counted in array slots, by protocol."""

        class Factory:
            refused = {}

        class Wrapper:
            protocol = "imap"
            bytesIn, bytesOut = 10, 2000
            wrappedProtocol = None
            remote = "127.0.0.1"
            since = 0.0

        monitor = Monitor()
        monitor.addProtocol("imap", Factory())
        self.assertEqual(dict(monitor.accepted), {"imap": 0})
        wrapper = Wrapper()
        monitor.sessionOpened(wrapper)
        monitor.sessionClosed(wrapper)
        self.assertEqual(monitor.accepted["imap"], 1)
        values, index = monitor.closedBytesOut._where["imap"]
        self.assertEqual(values[index], 2000)
        parsed = samples(monitor.renderMetrics())
        self.assertEqual(value(parsed, "gateway_received_bytes_total", protocol="imap"), 10)
        self.assertEqual(value(parsed, "gateway_sent_bytes_total", protocol="imap"), 2000)
        self.assertEqual(value(parsed, "gateway_connections_total", protocol="imap"), 1)


class FrontEndTests(unittest.TestCase):
    def test_imapAndPop3Prepare(self):
        """The IMAP and POP3 factories have the monitor make their commands' metrics when they are made."""
        from gateway.imap.server import makeFactory as imapFactory
        from gateway.pop3.server import makeFactory as pop3Factory
        from tests.support import makeTestContext

        context = makeTestContext(self)
        context.monitor = Monitor()
        imapFactory(context)
        pop3Factory(context)
        for key in (("imap", "UID FETCH", "OK"), ("imap", "LOGIN", "NO"), ("pop3", "RETR", "BAD")):
            self.assertIn(key, context.monitor._children)
