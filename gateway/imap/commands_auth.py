# -*- test-case-name: tests.test_imap_auth -*-
"""
Commands of any state and of the not-authenticated state: CAPABILITY,
NOOP, LOGOUT, ID (RFC 2971), STARTTLS, LOGIN, AUTHENTICATE (with SASL-IR,
RFC 4959) and ENABLE (RFC 5161).
"""

import base64
import binascii
from urllib.parse import quote

from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer

from gateway.cred.checkers import LoginReferral
from gateway.cred.credentials import PlainCredentials
from gateway.cred.sasl import SASLCancelled, SASLError, createMechanism
from gateway.imap.parser import IMAPSyntaxError
from gateway.imap.protocol import (
    ANY,
    AUTH,
    AUTHENTICATED,
    LOGOUT,
    NOAUTH,
    bad,
    capability,
    command,
    log,
    no,
)
from gateway.interfaces import IAccount

capability("LITERAL+")
capability("SASL-IR", lambda session: session.state == "notauth")
capability("ID")
capability("LOGIN-REFERRALS", lambda session: bool(session.context.config.get("auth", "login_referrals", False)))


@command("CAPABILITY", ANY)
def do_CAPABILITY(session, tag, args):
    args.end()
    session.sendUntagged(b"CAPABILITY " + session.capabilities())


@command("NOOP", ANY)
def do_NOOP(session, tag, args):
    args.end()
    if session.view is not None:
        return session.view.mailbox.synchronize().addCallback(lambda _: None)
    return None


@command("LOGOUT", ANY)
def do_LOGOUT(session, tag, args):
    args.end()
    session.sendUntagged(b"BYE Logging out")
    session.closeMailbox()
    session.state = LOGOUT
    return ("OK", "LOGOUT completed")


@command("ID", ANY, capability="ID")
def do_ID(session, tag, args):
    args.space()
    if args.peek() == b"(":
        fields = args.parenList()
        if len(fields) % 2 or len(fields) > 60 or not all(
                isinstance(v, bytes) or v == "NIL" for v in fields):
            raise IMAPSyntaxError("ID takes NIL or a list of string pairs")
    elif args.atom().upper() != "NIL":
        raise IMAPSyntaxError("ID takes NIL or a list of string pairs")
    args.end()
    session.sendUntagged(b'ID ("name" "gateway" "vendor" "gateway")')


@command("STARTTLS", NOAUTH, capability=None)
def do_STARTTLS(session, tag, args):
    args.end()
    if session.secure:
        raise bad("TLS is already active")
    if session.context.tls is None:
        raise bad("TLS is not available")
    session._finishCommand(tag, "OK", "Begin TLS negotiation now")
    session.flush()
    session.startTLS()
    return _NoTagged


class _NoTaggedType(tuple):
    """
    A completion whose tagged response was already sent.
    """


_NoTagged = _NoTaggedType(("", ""))


@command("LOGIN", NOAUTH)
def do_LOGIN(session, tag, args):
    args.space()
    username = args.astring()
    args.space()
    password = args.astring()
    args.end()
    if not session.cleartextAllowed():
        raise no("[PRIVACYREQUIRED] LOGIN is disabled on this connection; use STARTTLS first")
    credentials = PlainCredentials(username, password, session.loginContext, mechanism="LOGIN")
    return _login(session, credentials)


def _login(session, credentials, mechanism=None):
    """
    Log in through the portal; C{Deferred} of the tagged completion.
    """
    d = session.context.portal.login(credentials, None, IAccount)

    def loggedIn(result):
        _iface, account, logout = result
        if session.state == LOGOUT:
            logout()
            return ("NO", "Connection closed")
        final = mechanism.finish(account.address) if mechanism is not None else None
        if final is None:
            return _authenticated(session, account, logout)
        # SCRAM: the server-final message, answered by an empty line.
        waiter = defer.Deferred()
        session.sendContinuation(base64.b64encode(final[1]))

        def lastLine(line):
            session.setLineHandler(None)
            try:
                mechanism.step(_decode(line))
            except (SASLError, IMAPSyntaxError) as e:
                logout()
                waiter.callback(("BAD", "Authentication failed: %s" % (e,)))
                return
            waiter.callback(_authenticated(session, account, logout))
        session.setLineHandler(lastLine)
        return waiter

    def failed(reason):
        reason.trap(UnauthorizedLogin)
        log.info("IMAP login failed from {remote}", remote=session.loginContext.remoteAddress)
        if reason.check(LoginReferral):
            host = reason.value.address.rpartition("@")[2]
            return ("NO", "[REFERRAL %s] Account is on another server: %s" % (referralURL(reason.value.address), host))
        return ("NO", "[AUTHENTICATIONFAILED] Authentication failed")
    return d.addCallbacks(loggedIn, failed)


def referralURL(address):
    """
    The IMAP URL (RFC 5092) of a home server referral (RFC 2221) for
    C{address} (C{local@host}): the whole address is the user name there,
    and C{AUTH=*} keeps clients from trying an anonymous login.
    """
    host = address.rpartition("@")[2]
    return "imap://%s;AUTH=*@%s/" % (quote(address, safe="!$'()*+&=~"), host)


def _authenticated(session, account, logout):
    """
    Enter the authenticated state; the tagged completion.
    """
    session.account = account
    session._logout = logout
    session.state = AUTHENTICATED
    log.info("IMAP login {account} from {remote}", account=account.address,
             remote=session.loginContext.remoteAddress)
    for alert in account.popAlerts():
        session.sendUntagged(b"OK [ALERT] " + alert.replace("\r", " ").replace("\n", " ").encode("utf-8"))
    return ("OK", b"[CAPABILITY " + session.capabilities() + b"] Logged in")


def _decode(line):
    if line == b"*":
        raise SASLCancelled("cancelled")
    try:
        return base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise IMAPSyntaxError("invalid base64 in SASL response") from None


@command("AUTHENTICATE", NOAUTH)
def do_AUTHENTICATE(session, tag, args):
    args.space()
    name = args.atom()
    initial = None
    if not args.atEnd():
        args.space()
        text = args.atom()
        initial = b"" if text == "=" else _decode(text.encode("latin-1"))
    args.end()
    mechanism = createMechanism(name, session.loginContext, session.context.hostname,
                                session.context.portal)
    if mechanism is None:
        raise bad("Unsupported authentication mechanism")
    if mechanism.cleartext and not session.cleartextAllowed():
        raise no("[PRIVACYREQUIRED] Clear-text mechanisms are disabled here; use STARTTLS first")
    done = defer.Deferred()

    def advance(step):
        try:
            kind, value = step()
        except SASLCancelled:
            done.callback(("BAD", "Authentication cancelled"))
            return
        except (SASLError, IMAPSyntaxError) as e:
            done.callback(("BAD", "Authentication failed: %s" % (e,)))
            return
        if kind == "challenge":
            session.setLineHandler(lambda line: advance(lambda: mechanism.step(_decode(line))))
            session.sendContinuation(base64.b64encode(value))
            return
        session.setLineHandler(None)
        _login(session, value, mechanism).chainDeferred(done)

    advance(lambda: mechanism.start(initial))
    return done


@command("ENABLE", AUTH, capability="ENABLE")
def do_ENABLE(session, tag, args):
    names = []
    while not args.atEnd():
        args.space()
        names.append(args.atom().upper())
    if not names:
        raise IMAPSyntaxError("ENABLE needs a capability")
    enabled = [n for n in names if n in ENABLEABLE and n not in session.enabled]
    for name in enabled:
        if name in ("CONDSTORE", "QRESYNC"):  # QRESYNC implies CONDSTORE (RFC 7162 3.2.3)
            session.enableCondstore()
        session.enabled.add(name)
        if name in ENABLE_HOOKS:
            ENABLE_HOOKS[name](session)
    session.sendUntagged(b"ENABLED" + b"".join(b" " + ENABLE_SPELLING.get(n, n).encode("ascii") for n in enabled))


#: Extensions ENABLE can turn on.
ENABLEABLE = set()

#: How ENABLED writes a name that the capability spells in mixed case
#: (C{"IMAP4REV2"}: C{"IMAP4rev2"}, as RFC 9051's examples).
ENABLE_SPELLING = {}

#: What else enabling an extension does: name -> C{hook(session)}, called
#: once it is in C{session.enabled}.
ENABLE_HOOKS = {}

