# -*- test-case-name: tests.test_http -*-
"""
The HTTP front-end's entry point, L{makeFactory}: a C{twisted.web} C{Site}
whose one resource dispatches on the path::

    /~name/...                              the personal web site (site.py)
    /~name/freebusy.vfb                     published file, else generated (freebusy.py)
    /freebusy/<address>.vfb, .ifb           free/busy for any address the realm resolves
    /.well-known/autoconfig/mail/config-v1.1.xml, /mail/config-v1.1.xml
                                            mail-client autoconfiguration (autoconfig.py)

Everything else is a clean 404.  Requests are logged in the common log
format to C{[http] access_log}, or through the C{gateway.http} logger when
it is C{-}.  The C{Server} header names no version, and no traceback is
ever sent.
"""

import io
import re
import time

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.web import http, resource, server

from gateway.errors import ConfigurationError
from gateway.http.autoconfig import renderAutoconfig
from gateway.http.freebusy import FreeBusyPublisher
from gateway.http.pages import errorPage, htmlPage, log
from gateway.http.site import PersonalSite
from gateway.logging import ReopeningFile

SERVER_NAME = b"gateway"

AUTOCONFIG_PATHS = (
    [".well-known", "autoconfig", "mail", "config-v1.1.xml"],
    ["mail", "config-v1.1.xml"],
)
FREEBUSY_SUFFIXES = (".vfb", ".ifb")


class GatewayRequest(server.Request):
    """
    A request that says only C{Server: gateway} and answers failures with a
    clean page.
    """

    gatewayUser = None
    _refused = False
    _received = 0

    def _limit(self):
        return getattr(getattr(self.channel, "site", None), "maxUploadSize", None)

    def gotLength(self, length):
        """
        Refuse a body larger than C{[http] max_upload_size} before
        twisted.web spools it to a temporary file.
        """
        limit = self._limit()
        if limit is not None and length is not None and length > limit:
            self._tooLarge()
            return
        server.Request.gotLength(self, length)

    def handleContentChunk(self, data):
        if self._refused:
            return
        self._received += len(data)
        limit = self._limit()
        if limit is not None and self._received > limit:
            self._tooLarge()
            return
        server.Request.handleContentChunk(self, data)

    def _tooLarge(self):
        self._refused = True
        if self.content is not None:
            self.content.close()
        self.content = io.BytesIO()
        body = htmlPage("413 Content Too Large", "The request body is larger than this server accepts.")
        transport = self.channel.transport
        transport.write(
            b"HTTP/1.1 413 Content Too Large\r\nServer: %s\r\nContent-Type: text/html; charset=utf-8\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (SERVER_NAME, len(body), body)
        )
        transport.loseConnection()

    def requestReceived(self, command, path, version):
        if self._refused:
            return
        server.Request.requestReceived(self, command, path, version)

    def render(self, resrc):
        self.setHeader(b"server", SERVER_NAME)
        if self.method == b"HEAD":
            resrc = _HeadOnly(resrc)
        server.Request.render(self, resrc)

    def processingFailed(self, reason):
        log.failure("HTTP request {uri!r} failed", reason, uri=self.uri)
        if self.finished or self.startedWriting:
            if not self.finished:
                self.loseConnection()
            return reason
        body = errorPage(self, http.INTERNAL_SERVER_ERROR, "The server could not answer this request.")
        self.write(body)
        self.finish()
        return reason


class _HeadOnly:
    """
    A resource's answer to HEAD: what it renders for GET, headers only.
    Pages rendered at once (errors, small files) keep their
    C{Content-Length} without the body, so twisted.web has no body to
    "eat" with a warning in the log.
    """

    def __init__(self, resrc):
        self.resrc = resrc

    def render(self, request):
        body = self.resrc.render(request)
        if isinstance(body, bytes) and body:
            if not request.responseHeaders.hasHeader(b"content-length"):
                request.setHeader(b"content-length", b"%d" % (len(body),))
            return b""
        return body


class RootResource(resource.Resource):
    """
    The one resource: dispatch on the decoded path segments.
    """

    isLeaf = True

    def __init__(self, context, personalSite, freeBusy):
        resource.Resource.__init__(self)
        self.context = context
        self.personalSite = personalSite
        self.freeBusy = freeBusy

    def render(self, request):
        try:
            segments = [segment.decode("utf-8") for segment in request.postpath]
        except UnicodeDecodeError:
            return errorPage(request, http.NOT_FOUND)
        first = segments[0] if segments else ""
        if first.startswith("~"):
            return self.personalSite.render(request, first[1:], segments[1:])
        if request.method not in (b"GET", b"HEAD"):
            request.setHeader(b"allow", b"GET, HEAD")
            return errorPage(request, http.NOT_ALLOWED, "This method is not supported here.")
        if segments in AUTOCONFIG_PATHS:
            return renderAutoconfig(self.context, request)
        if first == "freebusy" and len(segments) == 2 and segments[1].endswith(FREEBUSY_SUFFIXES):
            return self.freeBusy.renderAddress(request, segments[1][:-4])
        return errorPage(request, http.NOT_FOUND)


#: What L{_escape} leaves alone: printable ASCII but the quote and backslash.
_PLAIN_LOG_TEXT = re.compile(r'[ !#-\[\]-~]*\Z')


def _escape(value):
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if _PLAIN_LOG_TEXT.match(value):
        return value  # the usual case, without a look at every character
    return "".join(
        c if " " <= c < "\x7f" and c not in '"\\' else "\\x%02x" % (ord(c),) if ord(c) < 256 else "?"
        for c in value
    )


def commonLogLine(timestamp, request):
    """
    One request in the common log format
    (C{host ident user [time] "request line" status bytes}).
    """
    client = request.getClientAddress()
    host = client.host if isinstance(client, (IPv4Address, IPv6Address)) else "-"
    user = _escape(getattr(request, "gatewayUser", None) or "-")
    line = "%s %s %s" % (_escape(request.method), _escape(request.uri), _escape(request.clientproto))
    return '%s - %s %s "%s" %d %s' % (
        host, user, timestamp, line, request.code, request.sentLength or "-",
    )


class GatewaySite(server.Site):
    """
    The site: L{GatewayRequest}s, the common log format, no tracebacks.

    @ivar accessLog: the C{[http] access_log} path, or C{-} for the
        server log.
    @ivar maxUploadSize: the largest request body accepted, or C{None}.
    """

    requestFactory = GatewayRequest
    displayTracebacks = False

    def __init__(self, root, accessLog="-", reactor=None, maxUploadSize=None):
        server.Site.__init__(self, root, reactor=reactor)
        self.accessLog = accessLog
        self.maxUploadSize = maxUploadSize
        self._accessFile = None

    def startFactory(self):
        server.Site.startFactory(self)
        if self.accessLog != "-" and self._accessFile is None:
            self._accessFile = ReopeningFile(self.accessLog)  # SIGUSR1 opens it again (logrotate)

    def stopFactory(self):
        server.Site.stopFactory(self)
        if self._accessFile is not None:
            self._accessFile.close()
            self._accessFile = None

    def log(self, request):
        timestamp = self._logDateTime or http.datetimeToLogString(time.time())
        line = commonLogLine(timestamp, request)
        if self._accessFile is not None:
            self._accessFile.write(line + "\n")
        else:
            log.info("{line}", line=line)


def makeFactory(context, generateFreeBusy=None, runInThread=None):
    """
    The HTTP front-end for the listeners of C{[http] listen}.

    @param context: the L{gateway.service.ServiceContext}.
    @param generateFreeBusy: C{generate(account, start, end, url)} for the
        free/busy documents; the default is L{gateway.store.calendar}'s.
    @param runInThread: how blocking storage calls and free/busy
        computations are run (default C{deferToThread}).
    @rtype: L{GatewaySite}
    @raise ConfigurationError: when the access log cannot be written.
    """
    accessLog = context.config["http", "access_log"]
    if accessLog != "-":
        try:
            open(accessLog, "a").close()
        except OSError as e:
            raise ConfigurationError("[http] access_log: %s: cannot write: %s" % (accessLog, e.strerror or e))
    kwargs = {} if runInThread is None else {"runInThread": runInThread}
    freeBusy = FreeBusyPublisher(context, generateFreeBusy, **kwargs)
    personalSite = PersonalSite(context, freeBusy, **kwargs)
    if getattr(context, "idle", None) is not None:
        context.idle.register(freeBusy)
        context.idle.register(personalSite)  # its cache must not keep accounts open
    root = RootResource(context, personalSite, freeBusy)
    return GatewaySite(root, accessLog, reactor=context.reactor,
                       maxUploadSize=context.config["http", "max_upload_size"])
