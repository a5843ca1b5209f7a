# -*- test-case-name: tests.test_pop3 -*-
"""
The AUTHORIZATION state: STLS (RFC 2595), USER/PASS (RFC 1939) and AUTH
(RFC 5034) through the shared SASL mechanisms and the one portal, then
opening the maildrop.

Response codes (RFC 2449, RFC 3206): C{[AUTH]} for refused credentials and
for clear-text logins the domain forbids without TLS, C{[SYS/TEMP]} when the
store fails, C{[IN-USE]} when the maildrop is locked by another session.
"""

import base64
import binascii

from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import maybeDeferred

from gateway import logging as glog
from gateway.cred.credentials import LoginContext, PlainCredentials
from gateway.cred.sasl import SASLError, createMechanism, mechanismNames
from gateway.interfaces import IAccount
from gateway.pop3.transaction import Maildrop, MaildropLocked

log = glog.getLogger("pop3")

CLEARTEXT_REFUSED = "[AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."
AUTH_FAILED = "[AUTH] Authentication failed."


def _decode64(line):
    """
    Decode a client's base64 SASL line (C{=} is an empty response).

    @raise SASLError: for bad base64.
    """
    if line == b"=":
        return b""
    try:
        return base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise SASLError("invalid base64")


class AuthorizationCommands:
    """
    Mixin of L{gateway.pop3.server.POP3Server}: the AUTHORIZATION state.

    @ivar saslExchange: the running SASL mechanism, or C{None}; while set,
        every input line is a SASL response.
    """

    def initAuthorization(self):
        self.username = None
        self.saslExchange = None
        self.saslAccount = None
        self.account = None

    # -- what is offered -----------------------------------------------------

    def cleartextUsable(self):
        """
        May a clear-text password be sent on this connection now?
        """
        context = self.loginContext
        return context.secure or self.context.cleartextAllowed(context.localAddress)

    def canStartTLS(self):
        return self.context.tls is not None and not self.loginContext.secure

    def mechanisms(self):
        return mechanismNames(
            self.loginContext.secure,
            self.context.cleartextAllowed(self.loginContext.localAddress),
            self.context.portal,
            self.loginContext.localAddress,
        )

    # -- STLS ----------------------------------------------------------------

    def do_STLS(self, argument):
        if not self.canStartTLS():
            if self.loginContext.secure:
                self.sendStatus(False, "TLS is already active.")
            else:
                self.sendStatus(False, "TLS is not available.")
            return
        self.sendStatus(True, "Begin TLS negotiation now.")
        self.discardBuffer()
        self.username = None
        self.transport.startTLS(self.context.tls)
        self.loginContext = LoginContext.fromTransport("pop3", self.transport)

    # -- USER / PASS ---------------------------------------------------------

    def do_USER(self, argument):
        if not self.cleartextUsable():
            self.sendStatus(False, CLEARTEXT_REFUSED)
            return
        if not argument.strip():
            self.sendStatus(False, "USER needs a user name.")
            return
        self.username = argument.strip()
        self.sendStatus(True, "Send your password.")

    def do_PASS(self, argument):
        if not self.cleartextUsable():
            self.sendStatus(False, CLEARTEXT_REFUSED)
            return
        if self.username is None:
            self.sendStatus(False, "Send USER first.")
            return
        username, self.username = self.username, None
        credentials = PlainCredentials(username, argument, self.loginContext, mechanism="USER")
        return self.login(credentials)

    # -- AUTH ----------------------------------------------------------------

    def do_AUTH(self, argument):
        parts = argument.split()
        if not parts:
            # The pre-RFC 5034 form many clients probe with.
            self.sendMultiline("Supported mechanisms follow", self.mechanisms())
            return
        if len(parts) > 2:
            self.sendStatus(False, "Syntax: AUTH mechanism [initial-response]")
            return
        name = parts[0].upper().decode("ascii", "replace")
        if name not in self.mechanisms():
            mechanism = createMechanism(name, self.loginContext, self.context.hostname, self.context.portal)
            if mechanism is not None and mechanism.cleartext:
                self.sendStatus(False, CLEARTEXT_REFUSED)
            else:
                self.sendStatus(False, "Unsupported authentication mechanism.")
            return
        mechanism = createMechanism(name, self.loginContext, self.context.hostname, self.context.portal)
        initial = None
        try:
            if len(parts) == 2:
                initial = _decode64(parts[1])
            kind, value = mechanism.start(initial)
        except SASLError as e:
            self.sendStatus(False, "Authentication failed: %s." % (e,))
            return
        return self._saslNext(mechanism, kind, value)

    def _saslNext(self, mechanism, kind, value):
        if kind == "challenge":
            self.saslExchange = mechanism
            self.sendLine(b"+ " + base64.b64encode(value))
            return None
        self.saslExchange = None
        return self.login(value, mechanism)

    def saslResponse(self, line):
        """
        A line of the running SASL exchange (C{*} cancels it).
        """
        mechanism, self.saslExchange = self.saslExchange, None
        if line.strip() == b"*":
            self.saslAccount = None
            self.sendStatus(False, "Authentication cancelled.")
            return
        account, self.saslAccount = self.saslAccount, None
        try:
            kind, value = mechanism.step(_decode64(line.strip()))
        except SASLError as e:
            self.sendStatus(False, "Authentication failed: %s." % (e,))
            return
        if account is not None:
            # The (empty) answer to SCRAM's server-final message.
            result = self._loggedIn(account)
        else:
            result = self._saslNext(mechanism, kind, value)
        if result is not None:
            self.waitFor(result)

    # -- login ---------------------------------------------------------------

    def login(self, credentials, mechanism=None):
        """
        Log in through the portal, then open the maildrop.

        @return: a C{Deferred} that fires when the answer was sent.
        """
        d = maybeDeferred(self.context.portal.login, credentials, None, IAccount)

        def succeeded(result):
            interface, account, logout = result
            if self._closed:
                return None
            if mechanism is not None:
                final = mechanism.finish(account.address)
                if final is not None:
                    self.saslAccount = account
                    self.saslExchange = mechanism
                    self.sendLine(b"+ " + base64.b64encode(final[1]))
                    return None
            return self._loggedIn(account)

        def failed(failure):
            if self._closed:
                return None
            if failure.check(UnauthorizedLogin):
                self.sendStatus(False, AUTH_FAILED)
            else:
                log.failure("POP3 login failed", failure)
                self.sendStatus(False, "[SYS/TEMP] Temporary server error, try again later.")
            return None

        d.addCallbacks(succeeded, failed)
        return d

    def _loggedIn(self, account):
        """
        Lock and snapshot the INBOX; enter TRANSACTION.
        """
        try:
            maildrop = Maildrop(account, lock=self.lockSession)
        except MaildropLocked:
            self.sendStatus(False, "[IN-USE] Mailbox is locked by another POP3 session.")
            return None
        except Exception:
            log.failure("POP3 cannot open the INBOX of {address}", address=account.address)
            self.sendStatus(False, "[SYS/TEMP] Cannot open the mailbox, try again later.")
            return None
        d = maildrop.open()

        def opened(ignored):
            if self._closed:
                maildrop.close()
                return
            self.account = account
            self.maildrop = maildrop
            self.state = "TRANSACTION"
            log.info("POP3 login: {address} messages={count}", address=account.address, count=len(maildrop.uids))
            self.sendStatus(True, "Logged in.")

        def notOpened(failure):
            maildrop.close()
            log.failure("POP3 cannot read the INBOX of {address}", failure, address=account.address)
            if not self._closed:
                self.sendStatus(False, "[SYS/TEMP] Cannot open the mailbox, try again later.")

        d.addCallbacks(opened, notOpened)
        return d
