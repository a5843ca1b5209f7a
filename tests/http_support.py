"""
Helpers for the HTTP tests: one request through a real C{HTTPChannel} over
a C{StringTransport}, and a parsed response.
"""

import base64

from twisted.internet import _producer_helpers
from twisted.internet.address import IPv4Address
from twisted.internet.defer import maybeDeferred
from twisted.internet.interfaces import INegotiated
from twisted.internet.task import Clock, Cooperator
from twisted.internet.testing import StringTransport
from zope.interface import directlyProvides

from gateway.http.server import makeFactory
from tests.support import PASSWORD, makeTestContext


def syncThread(f, *args):
    """A C{runInThread} that runs the call at once (deterministic tests)."""
    return maybeDeferred(f, *args)


class _Call:
    cancelled = False

    def __init__(self, f):
        self.f = f

    def cancel(self):
        self.cancelled = True


class Steps:
    """A cooperator scheduler run by hand, so file producers finish synchronously."""

    def __init__(self):
        self.calls = []

    def __call__(self, f):
        call = _Call(f)
        self.calls.append(call)
        return call

    def run(self):
        while self.calls:
            call = self.calls.pop(0)
            if not call.cancelled:
                call.f()


class Response:
    """A parsed HTTP/1.1 response: C{code}, C{headers} (lower-case keys), C{body}."""

    def __init__(self, raw):
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        self.code = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            self.headers[name.strip().lower().decode("ascii")] = value.strip().decode("latin-1")
        if self.headers.get("transfer-encoding") == "chunked":
            body, rest = b"", self.body
            while rest:
                size, _, rest = rest.partition(b"\r\n")
                size = int(size, 16)
                if size == 0:
                    break
                body, rest = body + rest[:size], rest[size + 2:]
            self.body = body


def basic(user="demo", password=PASSWORD):
    token = base64.b64encode(("%s:%s" % (user, password)).encode("utf-8")).decode("ascii")
    return {"Authorization": "Basic " + token}


class HTTPMixin:
    """Builds C{self.context} and C{self.site}; C{self.request(...)} sends one request."""

    cleartextLogin = True
    quota = None
    overrides = {}

    def setUp(self):
        self.clock = Clock()
        self.generated = []
        self.context = makeTestContext(
            self, cleartextLogin=self.cleartextLogin, quota=self.quota, reactor=self.clock
        )
        self.context.config._values.update(self.overrides)
        self.site = makeFactory(self.context, generateFreeBusy=self.generate, runInThread=syncThread)
        self.account = self.context.realm.accountFor("demo@example.test")
        self.files = self.account.fileStore.root
        self.steps = Steps()
        self.patch(_producer_helpers, "cooperate", Cooperator(scheduler=self.steps).cooperate)

    def generate(self, account, start, end, url):
        """A stub free/busy generator that records its arguments."""
        self.generated.append((account.address, start, end, url))
        return ("BEGIN:VCALENDAR\r\nX-FOR:%s\r\nEND:VCALENDAR\r\n" % (account.address,)).encode("utf-8")

    def writeFile(self, path, data):
        target = self.files.preauthChild(path)
        target.parent().makedirs(ignoreExistingDirectory=True)
        target.setContent(data)
        return target

    def send(self, method, path, headers=None, body=b"", secure=False, host="example.test"):
        """Send one request; return the C{StringTransport} the answer is written to."""
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8100),
            peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
        )
        if secure:
            directlyProvides(transport, INegotiated)
            transport.setTcpNoDelay = lambda enabled: None
        protocol = self.site.buildProtocol(transport.getPeer())
        protocol.makeConnection(transport)
        lines = ["%s %s HTTP/1.1" % (method, path)]
        allHeaders = {"Host": host, "Connection": "close"}
        if (body or method == "PUT") and "Transfer-Encoding" not in (headers or {}):
            allHeaders["Content-Length"] = str(len(body))
        allHeaders.update(headers or {})
        lines += ["%s: %s" % item for item in allHeaders.items()]
        protocol.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body)
        self.steps.run()
        return transport

    def request(self, method, path, headers=None, body=b"", secure=False, host="example.test"):
        """Send one request; return the parsed L{Response}."""
        transport = self.send(method, path, headers, body, secure, host)
        return Response(transport.value())
