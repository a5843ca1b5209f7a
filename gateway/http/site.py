# -*- test-case-name: tests.test_http -*-
"""
The personal web site C{/~account/...}: an account's file storage served
read-only to everyone (except C{private/}), written by its owner with PUT
and DELETE.

Every client path goes through C{fileStore.resolve}, the one resolver; the
result's real location decides whether it is private.  Blocking storage
calls (C{writeFile}, C{remove}) run in a thread.
"""

import errno
import os
import time
from html import escape
from stat import S_ISDIR, S_ISREG
from urllib.parse import quote

from twisted.internet import threads
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.web import http
from zope.interface import implementer

from gateway.errors import InvalidPath, QuotaExceeded
from gateway.http.auth import authenticateOwner
from gateway.http.pages import errorPage, finishLater, htmlPage, log, redirect
from gateway.http.static import serveFile
from gateway.interfaces import IIdleRelease
from gateway.store.files import TEMP_PREFIX

PRIVATE = "private"
FREEBUSY = "freebusy.vfb"

#: Seconds a C{~name} lookup (directory routing and the realm's account) is
#: reused for the same name, Host and local address.
ACCOUNT_CACHE_SECONDS = 1.0

#: Methods the site answers.
METHODS = (b"GET", b"HEAD", b"PUT", b"DELETE")


def lookupAccount(context, request, name):
    """
    The L{gateway.interfaces.IAccount} a C{~name} selects: C{name@domain}
    as given, or C{name} in the domain of the C{Host} header (or of the
    local address).  Aliases apply.

    @return: the account, or C{None} (also for accounts without the C{http}
        service); or a L{Deferred} of the account when its mail store must
        be opened first (off the reactor thread, see
        L{gateway.cred.realm.GatewayRealm.accountOrLater}).
    """
    localAddress = getattr(request.getHost(), "host", None)
    name = name.strip()
    if not name:
        return None
    if "@" in name or "%" in name:
        address = name
    else:
        host = (request.getHeader(b"host") or b"").decode("latin-1")
        domain = context.directory.domainForHost(host, localAddress)
        if domain is None:
            return None
        address = "%s@%s" % (name, domain.name)
    record = context.directory.resolve(address, localAddress)
    if record is None or "http" not in record.services:
        return None
    orLater = getattr(context.realm, "accountOrLater", None)
    if orLater is None:
        return context.realm.accountFor(record.address)
    return orLater(record.address)


def isPrivate(fileStore, filePath):
    """
    Is C{filePath} (from the resolver) the C{private/} folder or inside it?
    Both the path as named and its real location count, so a link cannot
    lead into C{private/}.
    """
    root = fileStore.root.path
    if filePath.path == root:
        return False
    segments = filePath.path[len(root) + 1:].split(os.sep)
    if segments[:1] == [PRIVATE]:
        return True
    # Without links below the root the name is the location (cheaper than
    # a realpath of the whole path on every request).
    path = root
    for segment in segments:
        path = os.path.join(path, segment)
        if os.path.islink(path):
            break
    else:
        return False
    privateRoot = os.path.realpath(os.path.join(fileStore.root.path, PRIVATE))
    real = os.path.realpath(filePath.path)
    return real == privateRoot or real.startswith(privateRoot + os.sep)


def _requestPath(request):
    return request.uri.split(b"?", 1)[0]


def _writeAndClose(fileStore, clientPath, body):
    """
    C{fileStore.writeFile(clientPath, body)}, then close C{body}.
    """
    try:
        return fileStore.writeFile(clientPath, body)
    finally:
        body.close()


@implementer(IIdleRelease)
class PersonalSite:
    """
    Answers requests for C{/~name/...}.

    @ivar context: the L{gateway.service.ServiceContext}.
    @ivar freeBusy: the L{gateway.http.freebusy.FreeBusyPublisher} that
        answers C{freebusy.vfb} when the account has not published one.
    @ivar runInThread: C{f(callable, *args)} returning a C{Deferred}:
        C{deferToThread} (tests pass a synchronous one).
    """

    def __init__(self, context, freeBusy, runInThread=threads.deferToThread, monotonic=time.monotonic):
        self.context = context
        self.freeBusy = freeBusy
        self.runInThread = runInThread
        self.monotonic = monotonic
        self._accounts = {}

    def account(self, request, name):
        """
        L{lookupAccount}, reused for L{ACCOUNT_CACHE_SECONDS}: routing a
        name reads the directory, which is most of a small file's cost.
        """
        key = (name, request.getHeader(b"host"), getattr(request.getHost(), "host", None))
        now = self.monotonic()
        cached = self._accounts.get(key)
        if cached is not None and now - cached[0] < ACCOUNT_CACHE_SECONDS:
            return cached[1]
        account = lookupAccount(self.context, request, name)
        if isinstance(account, Deferred):
            return account.addCallback(self._keep, key, now)
        return self._keep(account, key, now)

    def _keep(self, account, key, now):
        if len(self._accounts) >= 1000:
            self._accounts.clear()
        self._accounts[key] = (now, account)
        return account

    def releaseIdle(self):
        """
        Drop the accounts kept longer than L{ACCOUNT_CACHE_SECONDS} (they
        are looked up again anyway): an entry must not keep its account
        open (L{gateway.interfaces.IIdleRelease}).

        @return: 0: these entries are not worth a collection of their own
            (the realm counts an account that goes with them).
        """
        now = self.monotonic()
        for key in [key for key, (when, _) in self._accounts.items() if now - when >= ACCOUNT_CACHE_SECONDS]:
            del self._accounts[key]
        return 0

    @property
    def listings(self):
        return self.context.config["http", "directory_listings"]

    def render(self, request, name, segments):
        """
        @param name: the account part after C{~}, C{str}.
        @param segments: the decoded path segments after it (C{[]} when the
            request named C{/~name} without a slash).
        """
        if request.method not in METHODS:
            request.setHeader(b"allow", b", ".join(METHODS))
            return errorPage(request, http.NOT_ALLOWED, "This method is not supported here.")
        account = self.account(request, name)
        if isinstance(account, Deferred):
            # Its mail store opens in a thread first.
            return finishLater(request, account.addCallback(lambda account: self._render(request, account, segments)))
        return self._render(request, account, segments)

    def _render(self, request, account, segments):
        """
        L{render} once the account is known (C{None}: no such site).
        """
        if account is None:
            return errorPage(request, http.NOT_FOUND, "There is no such site.")
        if not segments:
            return redirect(request, _requestPath(request) + b"/")
        fileStore = account.fileStore
        try:
            filePath = fileStore.resolve("/" + "/".join(segments))
        except InvalidPath:
            return errorPage(request, http.NOT_FOUND)
        private = isPrivate(fileStore, filePath)
        if request.method in (b"GET", b"HEAD"):
            if not private:
                return self.serve(request, account, filePath)
            return self._asOwner(request, account, lambda: self.serve(request, account, filePath))
        if request.method == b"PUT":
            return self._asOwner(request, account, lambda: self.put(request, account, filePath))
        return self._asOwner(request, account, lambda: self.delete(request, account, filePath))

    def _asOwner(self, request, account, action):
        d = authenticateOwner(self.context, request, account)

        def authenticated(refusal):
            if refusal is not None:
                return refusal
            return action()

        return finishLater(request, d.addCallback(authenticated))

    # -- GET and HEAD ----------------------------------------------------------

    def serve(self, request, account, filePath):
        """
        Answer GET/HEAD for a resolved path: a file, a folder's
        C{index.html} or listing, or the generated free/busy.
        """
        fileStore = account.fileStore
        try:
            stat = os.stat(filePath.path)
        except OSError:
            stat = None
        if stat is not None and S_ISDIR(stat.st_mode):
            if not _requestPath(request).endswith(b"/"):
                return redirect(request, _requestPath(request) + b"/")
            index = filePath.child("index.html")
            try:
                index = fileStore.resolve(fileStore.clientPath(index))
            except InvalidPath:
                return errorPage(request, http.NOT_FOUND)
            if index.isfile():
                return serveFile(request, index)
            if not self.listings:
                return errorPage(request, http.FORBIDDEN, "Folder listings are turned off on this server.")
            return self.listing(request, account, filePath)
        freeBusy = filePath.path == os.path.join(fileStore.root.path, FREEBUSY)
        if stat is not None and S_ISREG(stat.st_mode) and not (freeBusy and self.freeBusy.isGenerated(account)):
            return serveFile(request, filePath, stat)
        if freeBusy:  # not published by the account itself: generated for the window asked
            return self.freeBusy.render(request, account)
        return errorPage(request, http.NOT_FOUND)

    def listing(self, request, account, folder):
        """
        A small HTML listing of C{folder}; hidden names, temporary upload
        files and, for others than the owner, C{private/} are left out.
        """
        fileStore = account.fileStore
        clientPath = fileStore.clientPath(folder)
        owner = getattr(request, "gatewayUser", None) == account.address
        rows = []
        if clientPath != "/":
            rows.append('<li><a href="../">../</a></li>')
        for child in sorted(folder.children(), key=lambda c: c.basename()):
            name = child.basename()
            if name.startswith(".") or name.startswith(TEMP_PREFIX):
                continue
            if clientPath == "/" and name == PRIVATE and not owner:
                continue
            suffix = "/" if child.isdir() else ""
            rows.append('<li><a href="%s%s">%s%s</a></li>' % (
                quote(name), suffix, escape(name), suffix))
        title = "Index of ~%s%s" % (account.address.partition("@")[0], clientPath)
        body = htmlPage(title, "").replace(b"<p></p>", ("<ul>\n%s\n</ul>" % ("\n".join(rows),)).encode("utf-8"))
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return body

    # -- PUT and DELETE --------------------------------------------------------

    def put(self, request, account, filePath):
        """
        Store the request body (twisted.web already holds it in a file) at
        C{filePath}: 201 for a new file, 204 for a replaced one, 507 over
        the quota, 409 when the folder does not exist.
        """
        fileStore = account.fileStore
        clientPath = fileStore.clientPath(filePath)
        if filePath.isdir() or clientPath == "/":
            return errorPage(request, http.CONFLICT, "A folder has this name.")
        if not filePath.parent().isdir():
            return errorPage(request, http.CONFLICT, "The folder for this file does not exist.")
        if getattr(request, "_disconnected", False):
            # Gone while its password was checked: twisted.web has closed
            # (and so deleted) the body; nobody waits for an answer.
            return b""
        existed = filePath.exists()
        # The write takes the body (all of it has arrived): twisted.web
        # closes request.content when the client goes away, and the thread
        # would then read a closed file.
        body, request.content = request.content, None
        body.seek(0)
        d = maybeDeferred(self.runInThread, _writeAndClose, fileStore, clientPath, body)

        def written(size):
            log.info("HTTP PUT {address} {path} ({size} bytes)", address=account.address, path=clientPath, size=size)
            if existed:
                request.setResponseCode(http.NO_CONTENT)
                return b""
            request.setHeader(b"location", _requestPath(request))
            return errorPage(request, http.CREATED, "The file was stored.")

        def failed(failure):
            if failure.check(QuotaExceeded):
                return errorPage(request, http.INSUFFICIENT_STORAGE_SPACE, "The storage quota of this account is full.")
            if failure.check(InvalidPath):
                return errorPage(request, http.CONFLICT, "This file cannot be written here.")
            if failure.check(OSError) and failure.value.errno in (errno.ENOSPC, errno.EDQUOT):
                log.warn("HTTP PUT {address} {path}: the disk is full ({error})", address=account.address,
                         path=clientPath, error=failure.value.strerror)
                return errorPage(request, http.INSUFFICIENT_STORAGE_SPACE, "The server's storage is full.")
            return failure

        return d.addCallbacks(written, failed)

    def delete(self, request, account, filePath):
        """
        Remove a file or an empty folder (not the root or C{private/}):
        204, or 404/409.
        """
        fileStore = account.fileStore
        clientPath = fileStore.clientPath(filePath)
        if clientPath in ("/", "/" + PRIVATE):
            return errorPage(request, http.FORBIDDEN, "This folder cannot be removed.")
        if not filePath.exists():
            return errorPage(request, http.NOT_FOUND)
        if filePath.isdir() and filePath.listdir():
            return errorPage(request, http.CONFLICT, "The folder is not empty.")
        d = maybeDeferred(self.runInThread, fileStore.remove, clientPath)

        def removed(_):
            log.info("HTTP DELETE {address} {path}", address=account.address, path=clientPath)
            request.setResponseCode(http.NO_CONTENT)
            return b""

        def failed(failure):
            failure.trap(InvalidPath, OSError)
            return errorPage(request, http.CONFLICT, "This cannot be removed.")

        return d.addCallbacks(removed, failed)
