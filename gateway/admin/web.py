# -*- test-case-name: tests.test_monitor -*-
"""
The admin HTTP listener (C{[admin] listen}, loopback only by default):

    /metrics     the metrics in the Prometheus text format
    /sessions    the open sessions as JSON (what C{gatewayctl who} shows)

It serves nothing else and logs no request (a scrape every few seconds
would fill the log).
"""

import json

from prometheus_client import CONTENT_TYPE_LATEST
from twisted.web import resource, server

INDEX = b"gateway admin: /metrics (Prometheus text format), /sessions (JSON)\n"


class _Page(resource.Resource):
    isLeaf = True

    def __init__(self, contentType, render):
        resource.Resource.__init__(self)
        self.contentType = contentType
        self._render = render

    def render_GET(self, request):
        request.setHeader(b"content-type", self.contentType)
        request.setHeader(b"cache-control", b"no-store")
        return self._render()

    render_HEAD = render_GET


class AdminSite(server.Site):
    """
    The admin site: no request log, no version in C{Server}.
    """

    displayTracebacks = False
    noisy = False

    def log(self, request):
        pass


def makeAdminFactory(monitor, reactor=None):
    """
    The site of the admin listener for one L{gateway.admin.monitor.Monitor}.
    """

    def sessions():
        return json.dumps({"sessions": monitor.sessionList()}, indent=1).encode("utf-8") + b"\n"

    root = resource.Resource()
    root.putChild(b"", _Page(b"text/plain; charset=utf-8", lambda: INDEX))
    root.putChild(b"metrics", _Page(CONTENT_TYPE_LATEST.encode("ascii"), monitor.renderMetrics))
    root.putChild(b"sessions", _Page(b"application/json", sessions))
    site = AdminSite(root, reactor=reactor)
    site.displayTracebacks = False
    return site
