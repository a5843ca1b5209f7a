# -*- test-case-name: tests.test_fuzz_http -*-
"""
Grammar-based fuzzing of the HTTP front-end with C{hypothesis}: requests
built from the site's paths (C{/~name/...}, free/busy, autoconfig) with
hostile segments (C{..} and its encodings, NUL, CR LF, bad UTF-8), methods,
credentials, C{Host} and C{Range} headers and bodies.

Every request must get a well-formed answer that is not a 500, no traceback
in the log, and no file written outside the account's root.  Short by
default; C{GATEWAY_FUZZ=long} runs many more examples.
"""

import base64
import os
import re

from twisted.trial import unittest

try:
    from hypothesis import HealthCheck, example, given, settings
    from hypothesis import strategies as st
except ImportError:
    raise unittest.SkipTest("hypothesis is not installed (pip install '.[test]')")

from tests.http_support import HTTPMixin
from tests.support import PASSWORD

#: Long mode (C{GATEWAY_FUZZ=long}): C{GATEWAY_FUZZ_EXAMPLES} examples (default 5,000) with fresh
#: randomness; by default few, and the same ones every run.
LONG = os.environ.get("GATEWAY_FUZZ", "").lower() == "long"
EXAMPLES = int(os.environ.get("GATEWAY_FUZZ_EXAMPLES", "5000")) if LONG else 100

_SEGMENTS = ["~demo", "~other", "~", "~nobody", "~demo@example.test", "~demo%40example.test", "private", "..",
             "%2e%2e", ".", "%2f", "%00", "%0d%0a", "%0d", "%ff%fe", "freebusy.vfb", "freebusy",
             "demo@example.test.vfb", "nobody.ifb", ".well-known", "autoconfig", "mail", "config-v1.1.xml",
             "a.txt", "sub", "Gr%C3%BC%C3%9Fe.txt", "index.html", ".~gateway-x", "x%5Cy", ""]

_paths = st.builds(
    lambda segments, query: "/" + "/".join(segments) + query,
    st.lists(st.sampled_from(_SEGMENTS), max_size=5),
    st.sampled_from(["", "", "?", "?start=2024-01-01&end=2024-02-01", "?start=x&end=%00", "?a=%ff"]),
)


def _basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode("utf-8")).decode("ascii")


_printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=40)

_authorization = st.sampled_from([
    None, _basic("demo", PASSWORD), _basic("demo", "wrong"), _basic("other", PASSWORD), "Basic !!!notbase64",
    "Basic " + base64.b64encode(b"no colon").decode(), "Bearer abc", "Basic", _basic("demo\x00x", PASSWORD),
])

_headers = st.fixed_dictionaries({}, optional={
    "Authorization": _authorization.filter(lambda v: v is not None),
    "Range": st.one_of(st.sampled_from(["bytes=0-1", "bytes=-5", "bytes=9999-", "bytes=a-b", "bytes=0-1,2-3",
                                        "bytes=5-1", "items=0-1"]), _printable),
    "If-Modified-Since": st.one_of(st.just("Sat, 05 Dec 2026 14:00:00 GMT"), _printable),
    "Content-Type": _printable,
})

_requests = st.tuples(
    st.sampled_from(["GET", "GET", "HEAD", "PUT", "DELETE", "POST", "OPTIONS", "PROPFIND", "get"]),
    _paths,
    _headers,
    st.sampled_from(["example.test", "example.test", "EXAMPLE.TEST:8100", "", "nowhere.invalid", "[::1]"]),
    st.binary(max_size=200),
)

_STATUS = re.compile(rb"\AHTTP/1\.1 ([1-5]\d\d) ")


class HTTPFuzzTests(HTTPMixin, unittest.TestCase):
    def setUp(self):
        HTTPMixin.setUp(self)
        self.writeFile("a.txt", b"public file")
        self.writeFile("sub/index.html", b"<p>index</p>")
        self.writeFile("private/diary.txt", b"dear diary")
        # Open both accounts (their mail stores make index files) first.
        self.others = [self.context.realm.accountFor("other@example.test")]
        self.outside = self._outsideRoot()

    def _outsideRoot(self):
        """
        Every file outside demo's file root, with its size, but the mail
        indexes' SQLite companions (which come and go).
        """
        found = {}
        root = self.files.path
        for dirpath, _dirnames, filenames in os.walk(self.context.config.dataRoot()):
            if dirpath == root or dirpath.startswith(root + os.sep):
                continue
            for name in filenames:
                if name.endswith(("-shm", "-wal", "-journal")):
                    continue
                path = os.path.join(dirpath, name)
                found[path] = os.path.getsize(path)
        return found

    @settings(max_examples=EXAMPLES, derandomize=not LONG, database=None, print_blob=True, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(_requests)
    @example(("PUT", "/~demo/%2e%2e/evil.txt", {"Authorization": _basic("demo", PASSWORD)}, "example.test", b"x"))
    @example(("PUT", "/~demo/dir%0d226", {"Authorization": _basic("demo", PASSWORD)}, "example.test", b"x"))
    @example(("HEAD", "/~demo/missing", {}, "example.test", b""))
    @example(("GET", "/~demo/a.txt", {"Range": "bytes=5-1"}, "example.test", b""))
    @example(("GET", "/~demo/private/diary.txt", {"Authorization": "Basic !!!"}, "example.test", b""))
    def test_anyRequest(self, request):
        """Any request gets a well-formed answer other than 500, no logged traceback, and no write outside the root."""
        method, path, headers, host, body = request
        if method in ("GET", "HEAD", "DELETE", "OPTIONS"):
            body = b""
        transport = self.send(method, path, dict(headers), body=body, host=host)
        raw = transport.value()
        match = _STATUS.match(raw)
        self.assertIsNotNone(match, raw[:200])
        self.assertNotEqual(match.group(1), b"500", raw[:400])
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual(self._outsideRoot(), self.outside)
        if method == "HEAD":
            self.assertEqual(raw.partition(b"\r\n\r\n")[2], b"")
