# -*- test-case-name: tests.test_http_freebusy -*-
"""
Free/busy over HTTP: the generated C{freebusy.vfb} of an account (when it
has not published its own file), and C{/freebusy/<address>.vfb} (or
C{.ifb}) for any address the realm resolves.

The document itself comes from L{gateway.store.calendar} (C{FreeBusyCache}
when it exists, else C{freeBusy}); L{FreeBusyPublisher} takes any
C{generate(account, start, end, url)} instead, for tests.
"""

import hashlib
import time as _time
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.parser import isoparse
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.threads import deferToThread
from twisted.web import http
from zope.interface import implementer

from gateway.cred.credentials import LoginContext
from gateway.http.pages import errorPage, finishLater
from gateway.http.static import serveFile
from gateway.interfaces import IIdleRelease

CONTENT_TYPE = b"text/calendar; charset=utf-8"
#: Longest window a client may ask for.
MAX_WINDOW = timedelta(days=732)
#: Seconds a generated document is reused for the same account, window and
#: URL before the generator (and its cache check) is asked again.
MEMO_SECONDS = 1.0


class BadWindow(ValueError):
    """
    The C{start}/C{end} query arguments are not usable.
    """


def accountZone(account):
    """
    The account's time zone (for "today" and floating times), UTC when it
    is unknown.
    """
    record = account.record
    try:
        return ZoneInfo(getattr(record, "timezone", None) or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def _parseTime(text, zone):
    try:
        value = isoparse(text)
    except (ValueError, OverflowError):
        raise BadWindow("%r is not an ISO 8601 date or time" % (text,))
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(timezone.utc)


def window(args, zone, weeks, now):
    """
    The free/busy window a request asks for.

    @param args: C{request.args}.
    @param zone: the account's C{tzinfo}; naive times and "today" are in it.
    @param weeks: length of the default window.
    @param now: aware C{datetime}.
    @return: C{(start, end)}, aware UTC datetimes.
    @raise BadWindow: for unparsable arguments or an empty or huge window.
    """

    def argument(name):
        values = args.get(name)
        if not values:
            return None
        try:
            return values[0].decode("ascii").strip() or None
        except UnicodeDecodeError:
            raise BadWindow("%s is not ISO 8601" % (name.decode("ascii"),))

    startText, endText = argument(b"start"), argument(b"end")
    if startText is None:
        today = now.astimezone(zone).date()
        start = datetime.combine(today, time(0), tzinfo=zone).astimezone(timezone.utc)
    else:
        start = _parseTime(startText, zone)
    end = start + timedelta(weeks=weeks) if endText is None else _parseTime(endText, zone)
    if end <= start:
        raise BadWindow("end must be after start")
    if end - start > MAX_WINDOW:
        raise BadWindow("the window may be at most %d days long" % (MAX_WINDOW.days,))
    return start, end


def defaultGenerator(runInThread=deferToThread, cache=None):
    """
    The generator of L{gateway.store.calendar}: pick up changes other
    programs made to the calendar mailboxes, then take the document from a
    L{FreeBusyCache}, which computes it in a thread when a calendar changed
    (parsing only new messages, see L{gateway.store.calendar.summaries}),
    so that other sessions on the reactor are not held up.

    @param runInThread: C{f(callable, *args)} returning a C{Deferred}, for
        a cache made here.
    @param cache: the L{FreeBusyCache} to use (the service's shared one), or
        C{None} for a new one.
    @return: C{generate(account, start, end, url)} returning a C{Deferred}.
    """
    from gateway.store.calendar import FreeBusyCache, synchronizeCalendars

    if cache is None:
        cache = FreeBusyCache(runInThread=runInThread)

    def generate(account, start, end, url):
        d = synchronizeCalendars(account)
        d.addCallback(lambda _: cache.generate(account, start, end, url=url))
        return d

    return generate


def requestURL(request, path=None):
    """
    The absolute URL of C{request} (without its query), C{str}.
    """
    secure = LoginContext.fromTransport("http", request.transport).secure
    host = (request.getHeader(b"host") or b"").decode("latin-1") or request.getRequestHostname().decode("latin-1")
    if path is None:
        path = request.uri.split(b"?", 1)[0].decode("latin-1")
    return "%s://%s%s" % ("https" if secure else "http", host, path)


@implementer(IIdleRelease)
class FreeBusyPublisher:
    """
    Answers free/busy requests.

    @ivar generate: C{generate(account, start, end, url)} returning the
        VCALENDAR C{bytes} or a C{Deferred} of them; C{None} means
        L{defaultGenerator}, made at the first request.
    @ivar now: C{now()} returning an aware C{datetime} (tests pass one).
    @ivar monotonic: the clock of the L{MEMO_SECONDS} memo.
    @ivar runInThread: how L{defaultGenerator} computes documents
        (C{deferToThread}; tests pass a synchronous one).
    """

    def __init__(self, context, generate=None, now=None, monotonic=_time.monotonic, runInThread=deferToThread):
        self.context = context
        self.generate = generate
        self.runInThread = runInThread
        self.now = now or (lambda: datetime.now(timezone.utc))
        self.monotonic = monotonic
        self._memo = {}

    def renderAddress(self, request, address):
        """
        C{/freebusy/<address>.vfb}: the account's published file, or its
        generated document; 404 for names the realm does not resolve.
        """
        localAddress = getattr(request.getHost(), "host", None)
        record = self.context.directory.resolve(address, localAddress) if address else None
        if record is None or "http" not in record.services:
            return errorPage(request, http.NOT_FOUND, "There is no free/busy information for this address.")
        orLater = getattr(self.context.realm, "accountOrLater", None)
        account = self.context.realm.accountFor(record.address) if orLater is None else orLater(record.address)
        if isinstance(account, Deferred):
            # Its mail store opens in a thread first.
            return finishLater(request, account.addCallback(lambda account: self._renderFor(request, account)))
        return self._renderFor(request, account)

    def _renderFor(self, request, account):
        """
        L{renderAddress} once the account is known.
        """
        published = account.fileStore.resolve("/freebusy.vfb")
        if published.isfile() and not self.isGenerated(account):
            return serveFile(request, published)
        return self.render(request, account)

    def isGenerated(self, account):
        """
        Is the account's C{freebusy.vfb} the file the server keeps current
        (L{gateway.store.calendar.publish}) rather than one the account
        published?  Then requests are still answered by the generator, for
        the window they ask.
        """
        from gateway.store.calendar.publish import PUBLIC, isGenerated

        return isGenerated(account, PUBLIC)

    def generator(self):
        """
        L{generate}, made the first time: L{defaultGenerator} over the
        service's shared cache (C{context.freeBusyCache}), which computes in
        threads; a publisher given its own C{runInThread} (tests:
        synchronous) gets a cache of its own.
        """
        if self.generate is None:
            shared = getattr(self.context, "freeBusyCache", None) if self.runInThread is deferToThread else None
            self.generate = defaultGenerator(self.runInThread, shared)
        return self.generate

    def render(self, request, account):
        """
        The generated document for C{account}, with an entity tag.
        """
        generate = self.generator()
        # What the window and the URL are made of, so that a memo hit needs
        # neither the account's time zone nor the URL worked out (a new
        # time zone counts after at most MEMO_SECONDS).
        weeks = self.context.config["http", "freebusy_weeks"]
        key = (account.address, request.uri, request.getHeader(b"host"), request.isSecure(), weeks)
        memo = self._memo.get(key)
        if memo is not None and self.monotonic() - memo[0] < MEMO_SECONDS:
            return self._answer(request, memo[1], memo[2])
        try:
            start, end = window(request.args, accountZone(account), weeks, self.now())
        except BadWindow as e:
            return errorPage(request, http.BAD_REQUEST, "Bad free/busy window: %s." % (e,))
        d = maybeDeferred(generate, account, start, end, requestURL(request))

        def generated(document):
            if isinstance(document, str):
                document = document.encode("utf-8")
            etag = b'"%s"' % (hashlib.sha256(document).hexdigest()[:32].encode("ascii"),)
            if len(self._memo) >= 1000:
                self._memo.clear()
            self._memo[key] = (self.monotonic(), document, etag)
            return self._answer(request, document, etag)

        return finishLater(request, d.addCallback(generated))

    def releaseIdle(self):
        """
        Drop the documents kept longer than L{MEMO_SECONDS} (they are made
        again anyway; L{gateway.interfaces.IIdleRelease}).

        @return: 0: a few documents are not worth a collection of their
            own.
        """
        now = self.monotonic()
        for key in [key for key, memo in self._memo.items() if now - memo[0] >= MEMO_SECONDS]:
            del self._memo[key]
        return 0

    def _answer(self, request, document, etag):
        request.setHeader(b"content-type", CONTENT_TYPE)
        request.setHeader(b"cache-control", b"no-cache")
        if request.setETag(etag) is http.CACHED:
            return b""
        request.setHeader(b"content-length", b"%d" % (len(document),))
        return document
