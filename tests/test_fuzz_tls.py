# -*- test-case-name: tests.test_fuzz_tls -*-
"""
Fuzzing the TLS front door over rustls (C{[tls] engine = auto}, the
default) with C{hypothesis}: a real client's ClientHello mutated (bytes
changed, cut, inserted) and split into random segments, and a completed
handshake followed by application-data records with bytes changed.

Every input must leave the connection either waiting for more or closed,
with no exception out of the wrapper and nothing logged as a failure; the
protocol behind it never gets a byte the client did not send, and never a
byte before the handshake is done.  The ClientHello parser (L{serverName})
never raises.  Short by default; C{GATEWAY_FUZZ=long} runs many more.
"""

import itertools
import os
import ssl

from twisted.trial import unittest

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:
    raise unittest.SkipTest("hypothesis is not installed (pip install '.[test]')")

from gateway import rustlstls
from tests.test_rustlstls import Connection, skipNoRustls

LONG = os.environ.get("GATEWAY_FUZZ", "").lower() == "long"
EXAMPLES = int(os.environ.get("GATEWAY_FUZZ_EXAMPLES", "3000")) if LONG else 150
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def clientHello(maximum=None):
    """A fresh connection (not fed yet) and the ClientHello its client sends."""
    c = Connection(maximum)
    try:
        c.client.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return c, c.outgoing.read()


#: Edits to a byte string: (kind, position as a fraction of the length, bytes).
edits = st.lists(st.tuples(st.sampled_from(("set", "insert", "delete", "cut")),
                           st.floats(min_value=0, max_value=1), st.binary(min_size=1, max_size=8)),
                 max_size=6)


def edited(data, changes):
    data = bytearray(data)
    for kind, where, chunk in changes:
        at = min(int(where * len(data)), max(0, len(data) - 1))
        if kind == "set":
            data[at:at + len(chunk)] = chunk
        elif kind == "insert":
            data[at:at] = chunk
        elif kind == "delete":
            del data[at:at + len(chunk)]
        else:
            del data[at:]
    return bytes(data)


def segments(data, cuts):
    """C{data} split at the fractions C{cuts}."""
    points = sorted({int(c * len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


class TLSFuzzTests(unittest.TestCase):
    skip = skipNoRustls

    def assertSettled(self, c):
        """The connection is closed or still open, the protocol heard nothing before the handshake, nothing logged."""
        self.assertEqual(self.flushLoggedErrors(), [])
        if c.server._waiting is not None:
            self.assertEqual(c.protocol.received, b"")

    @SETTINGS
    @given(changes=edits, cuts=st.lists(st.floats(min_value=0, max_value=1), max_size=5),
           tail=st.binary(max_size=64), tls12=st.booleans())
    def test_mutatedClientHello(self, changes, cuts, tail, tls12):
        """A ClientHello changed and split anyhow leaves the connection waiting or closed, without an exception."""
        c, hello = clientHello(ssl.TLSVersion.TLSv1_2 if tls12 else None)
        for part in segments(edited(hello, changes) + tail, cuts):
            if c.transport.disconnecting or c.transport.disconnected:
                break
            c.server.dataReceived(part)
        self.assertSettled(c)

    @SETTINGS
    @given(changes=edits.filter(bool), cuts=st.lists(st.floats(min_value=0, max_value=1), max_size=5))
    def test_corruptedRecords(self, changes, cuts):
        """After the handshake, records with bytes changed reach the protocol as nothing it was not sent."""
        c = Connection()
        c.pump()
        sent = b"a LOGIN user password\r\n" * 20 + b"b NOOP\r\n"
        c.client.write(sent)
        records = c.outgoing.read()
        damaged = edited(records, changes)
        for part in segments(damaged, cuts):
            if c.transport.disconnecting or c.transport.disconnected:
                break
            c.server.dataReceived(part)
        self.assertSettled(c)
        received = c.protocol.received
        self.assertTrue(sent.startswith(received), received[:80])
        if damaged != records and received == sent:
            # Only a change past the records' end (more bytes after them) can leave every byte intact.
            self.assertTrue(damaged.startswith(records))

    @SETTINGS
    @given(data=st.binary(max_size=600))
    def test_serverNameNeverRaises(self, data):
        """The ClientHello parser answers a name, None or Ellipsis for any bytes."""
        name = rustlstls.serverName(data)
        self.assertTrue(name is None or name is Ellipsis or isinstance(name, str))

    @SETTINGS
    @given(changes=edits)
    def test_serverNameOfMutatedHello(self, changes):
        """A real ClientHello changed anyhow still parses to a name, None or Ellipsis."""
        hello = clientHello()[1]
        self.assertEqual(rustlstls.serverName(hello), "localhost")
        name = rustlstls.serverName(edited(hello, changes))
        self.assertTrue(name is None or name is Ellipsis or isinstance(name, str))
