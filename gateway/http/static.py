# -*- test-case-name: tests.test_http -*-
"""
Streaming a file from an account's storage: content types, validators
(ETag, Last-Modified), conditional requests and byte ranges.

The body is sent by C{twisted.web.static.File}'s producers, so a file is
never read into memory whole; this module adds the entity tag, the
If-None-Match/If-Range rules and gateway's content types.
"""

import email.utils
import math
import os

from twisted.web import http, static

from gateway.http.pages import errorPage

#: Types for extensions the system's mime.types may not know or gets wrong.
OVERRIDES = {
    ".vfb": "text/calendar",
    ".ifb": "text/calendar",
    ".ics": "text/calendar",
    ".vcf": "text/vcard",
    ".txt": "text/plain; charset=utf-8",
}

CONTENT_TYPES = dict(static.loadMimeTypes())
CONTENT_TYPES.update(OVERRIDES)

DEFAULT_TYPE = "application/octet-stream"

#: Every site shares one origin with every other site and with the owners'
#: C{private/} folders and PUT/DELETE: a sandboxed page gets an opaque
#: origin, so its scripts cannot use a visitor's cached Basic credentials
#: to read another site's C{private/} or to change its files.
SANDBOX = b"sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"


def contentType(name):
    """
    The C{Content-Type} of a file name, C{str}.
    """
    return CONTENT_TYPES.get(os.path.splitext(name)[1].lower(), DEFAULT_TYPE)


class _StoredFile(static.File):
    """
    C{static.File} for one resolved file: no content encodings guessed from
    the name (a C{.tar.gz} is served as it is), gateway's types, and the
    C{os.stat} result L{serveFile} took (not a second one).
    """

    contentEncodings = {}
    contentTypes = CONTENT_TYPES

    def __init__(self, path, stat):
        static.File.__init__(self, path, defaultType=DEFAULT_TYPE)
        self._statinfo = stat

    def restat(self, reraise=True):
        if self._statinfo is None:
            static.File.restat(self, reraise)


def entityTag(stat):
    """
    A strong entity tag from a file's C{os.stat} result, C{bytes}.
    """
    return b'"%x-%x-%x"' % (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _ifRangeMatches(value, etag, lastModified):
    value = value.strip()
    if value.startswith(b'"'):
        return value == etag
    if value.startswith(b"W/"):
        return False
    try:
        when = email.utils.parsedate_to_datetime(value.decode("latin-1"))
    except (TypeError, ValueError, IndexError):
        return False
    return int(when.timestamp()) == lastModified


def serveFile(request, filePath, stat=None):
    """
    Answer a GET or HEAD with the file at C{filePath} (a C{FilePath} the
    resolver returned).

    @param stat: C{os.stat(filePath.path)} if the caller took it.
    @return: a body, or C{NOT_DONE_YET} when a producer streams the file.
    """
    if stat is None:
        try:
            stat = os.stat(filePath.path)
        except OSError:
            return errorPage(request, http.NOT_FOUND)
    etag = entityTag(stat)
    lastModified = int(math.ceil(stat.st_mtime))
    headers = request.requestHeaders
    request.setHeader(b"x-content-type-options", b"nosniff")
    request.setHeader(b"content-security-policy", SANDBOX)
    if headers.hasHeader(b"if-none-match"):
        # RFC 9110 13.2.2: If-None-Match wins over If-Modified-Since.
        headers.removeHeader(b"if-modified-since")
        if request.setETag(etag) is http.CACHED:
            request.setLastModified(lastModified)
            return b""
    else:
        request.setETag(etag)
    ifRange = request.getHeader(b"if-range")
    if ifRange is not None and not _ifRangeMatches(ifRange, etag, lastModified):
        headers.removeHeader(b"range")
    resource = _StoredFile(filePath.path, stat)
    resource.type = contentType(filePath.basename())
    resource.encoding = None
    return resource.render_GET(request)
