# -*- test-case-name: tests.test_fuzz_imap -*-
"""
What the protocol fuzz tests share: the C{hypothesis} settings (short and
derandomized by default; C{GATEWAY_FUZZ=long} for a nightly-style run),
grammar pieces common to the protocols, and a log watcher that fails on
any logged traceback.

Long mode: C{GATEWAY_FUZZ=long} runs C{GATEWAY_FUZZ_EXAMPLES} examples per
test (default 5,000) with fresh randomness each run; a failure prints the
C{@reproduce_failure} blob that replays it.
"""

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from twisted.logger import globalLogPublisher

LONG = os.environ.get("GATEWAY_FUZZ", "").lower() == "long"

#: The settings every fuzz test runs with.
FUZZ = settings(
    max_examples=int(os.environ.get("GATEWAY_FUZZ_EXAMPLES", "5000")) if LONG else 100,
    derandomize=not LONG,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)

#: Sizes a literal may claim: mostly its own, sometimes a lie, sometimes far
#: beyond every limit (then never followed by data).
HUGE_SIZES = (10 ** 9, 2 ** 40, 10 ** 19)


def chunked(data, size):
    """
    C{data} cut into pieces of C{size} octets (one piece when C{size} is 0).
    """
    if not size:
        return [data]
    return [data[i:i + size] for i in range(0, len(data), size)]


#: How input is cut into packets: at once, or in pieces of some size.
chunkSizes = st.sampled_from([0, 0, 1, 7, 100, 1500, 16384])

#: Arbitrary octets, weighted towards the ones protocols care about.
specialBytes = st.binary(max_size=40) | st.lists(
    st.sampled_from([b"\r", b"\n", b"\r\n", b"\x00", b" ", b"(", b")", b"{", b"}", b'"', b"\\",
                     b"*", b"%", b"+", b"\xff", b"\xc3\xa9", b"a", b"1", b"=", b"-"]),
    max_size=30).map(b"".join)


class LogWatch:
    """
    Collects every log event while a test runs; L{failures} are the events
    that carry a traceback (C{log_failure}).
    """

    def __init__(self, test):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        test.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def failures(self):
        return [event for event in self.events if "log_failure" in event]

    def clear(self):
        del self.events[:]
