# -*- test-case-name: tests.test_http -*-
"""
Small, clean HTML pages for errors and redirects, and the plumbing that
finishes a request from a C{Deferred}.  No traceback ever reaches a client.
"""

from html import escape

from twisted.web import http
from twisted.web.server import NOT_DONE_YET

from gateway.logging import getLogger

log = getLogger("http")

_PAGE = (
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n"
    "<body><h1>{title}</h1>\n<p>{detail}</p></body></html>\n"
)


def htmlPage(title, detail):
    """
    @return: a small HTML document, C{bytes}.
    """
    return _PAGE.format(title=escape(title), detail=escape(detail)).encode("utf-8")


def errorPage(request, code, detail=None):
    """
    Set C{code} and the headers of a small HTML error page on C{request}.

    @return: the page, C{bytes} (a render method's return value).
    """
    reason = http.RESPONSES.get(code, b"Error").decode("ascii")
    body = htmlPage("%d %s" % (code, reason), detail or reason + ".")
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"text/html; charset=utf-8")
    request.setHeader(b"content-length", b"%d" % (len(body),))
    return body


def redirect(request, location, code=http.MOVED_PERMANENTLY):
    """
    Redirect to C{location} (C{bytes}, a path or URL).
    """
    request.setHeader(b"location", location)
    return errorPage(request, code, "This page has moved to %s." % (location.decode("latin-1"),))


def finishLater(request, d):
    """
    Finish C{request} when C{d} fires with a body (C{bytes}) or with
    C{NOT_DONE_YET} (something else, such as a file producer, took over).
    A failure is logged and answered with a clean 500 page.

    @return: C{NOT_DONE_YET}, for the render method to return.
    """

    def done(body):
        if body is NOT_DONE_YET or request.finished or getattr(request, "_disconnected", False):
            return
        if body:
            request.write(body)
        request.finish()

    def failed(failure):
        log.failure("HTTP request {uri!r} failed", failure, uri=request.uri)
        if request.finished or getattr(request, "_disconnected", False):
            return
        if request.startedWriting:
            request.loseConnection()
            return
        done(errorPage(request, http.INTERNAL_SERVER_ERROR, "The server could not answer this request."))

    d.addCallback(done).addErrback(failed)
    return NOT_DONE_YET
