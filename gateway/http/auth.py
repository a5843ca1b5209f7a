# -*- test-case-name: tests.test_http -*-
"""
HTTP Basic authentication of a site's owner through the shared portal.
"""

import base64
import binascii

from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import succeed
from twisted.web import http

from gateway.cred.credentials import LoginContext, PlainCredentials
from gateway.http.pages import errorPage, log
from gateway.interfaces import IAccount


def basicCredentials(request):
    """
    The user name and password of an C{Authorization: Basic} header.

    @return: C{(username, password)} as C{bytes}, or C{None}.
    """
    header = request.getHeader(b"authorization")
    if not header:
        return None
    scheme, _, data = header.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    return user, password


def challenge(request, realmName, detail="This page needs the owner's name and password."):
    """
    A 401 answer asking for Basic credentials for C{realmName} (C{str}).
    """
    quoted = realmName.replace("\\", "").replace('"', "")
    request.setHeader(b"www-authenticate", ('Basic realm="%s", charset="UTF-8"' % (quoted,)).encode("utf-8"))
    return errorPage(request, http.UNAUTHORIZED, detail)


def authenticateOwner(context, request, account):
    """
    Check that the request carries the password of C{account}'s owner.

    Over clear text where the domain does not allow clear-text passwords the
    request is refused with 403 before any password is asked for.

    @return: a C{Deferred} firing with C{None} when the owner is logged in
        (C{request.gatewayUser} is then set), or with the body of a 401/403
        answer already set up on C{request}.
    """
    loginContext = LoginContext.fromTransport("http", request.transport)
    if not loginContext.secure and not context.cleartextAllowed(loginContext.localAddress):
        return succeed(errorPage(
            request, http.FORBIDDEN,
            "This page needs a password, and this server accepts passwords only over HTTPS."
            " Use an https:// address.",
        ))
    realmName = "~" + account.address
    pair = basicCredentials(request)
    if pair is None:
        return succeed(challenge(request, realmName))
    credentials = PlainCredentials(pair[0], pair[1], loginContext, mechanism="BASIC")
    d = context.portal.login(credentials, None, IAccount)

    def loggedIn(result):
        _interface, avatar, logout = result
        logout()
        if avatar.address != account.address:
            return errorPage(request, http.FORBIDDEN, "Only the owner of this site may do this.")
        request.gatewayUser = avatar.address
        return None

    def refused(failure):
        if not failure.check(UnauthorizedLogin):
            log.failure("HTTP login failed", failure)
        return challenge(request, realmName, "The name or password is not right.")

    return d.addCallbacks(loggedIn, refused)
