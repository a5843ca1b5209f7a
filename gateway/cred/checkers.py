# -*- test-case-name: tests.test_checkers -*-
"""
The one credentials checker: every protocol's logins are checked here
against the directory, failures are delayed and every attempt is logged.

Rules, in the order they are applied:

    1. The login name is routed with C{directory.resolve(name,
       context.localAddress)} (C{user@domain}, C{user%domain}, the domain of
       the local IP address, domain and account aliases).  An unknown name, a
       disabled account or domain and a name that does not route to a local
       account fail exactly like a wrong password (same delay, same error,
       comparable work); but with C{[auth] login_referrals}, a name that a
       router record sends to a domain not held here fails with
       L{LoginReferral} naming that address (still after the same delay and
       work, and counted as a failure).
    2. A SASL mechanism other than PLAIN and LOGIN must be enabled for the
       account's domain (C{[auth] mechanisms}, narrowed by the domain's
       C{mechanisms}); the front-ends offer only those of the domain of the
       local address (L{DirectoryChecker.mechanismsFor}).
    3. The account must have C{context.protocol} among its services.
    4. Clear-text credentials on a connection without TLS fail when the
       account's domain does not allow clear-text login (the front-ends
       refuse them earlier; this is defence in depth).
    5. A SASL authorization identity must be empty or name the same account.
    6. The password must match one of the stored forms (see
       L{gateway.cred.forms}): plain passwords the form for plain mechanisms,
       CRAM-MD5 a C{{CRAM-MD5}} (or C{{PLAIN}}) form, SCRAM-SHA-256 a
       C{{SCRAM-SHA-256}} (or C{{PLAIN}}) form.

Accounts whose stored forms cannot serve every mechanism their domain offers
are logged once, when the checker is made (at start-up).

A failed attempt is answered after a delay that grows per remote address:
C{failure_delay * 2 ** (n - 1)} for the C{n}th failure in a row, at most
C{max_failure_delay}.  Once an address has C{[auth] penalty_after}
failures, or as many attempts under way at once, every further attempt
from it (the right password too, on any connection) waits its turn before
it is checked; see L{gateway.cred.delays}, whose state the checker reaches
only through L{gateway.interfaces.ILoginDelays} (C{checker.delays}).

Every plain-text password check does the work of one hash of the default
scheme, whether the name is unknown, the account has an expensive hash, or
only a cheap form such as C{{CRAM-MD5}} (then a dummy hash is checked too),
so the time taken does not tell them apart.

Log lines (namespace C{gateway.auth}, level info) name the login as typed,
never a password; characters that are not printable, white space and
backslashes in the name are escaped as C{\\xNN}, so a name cannot forge a
C{remote=} field::

    authentication succeeded: protocol=imap user=demo@example.test remote=127.0.0.1 mechanism=PLAIN
    authentication failed: protocol=imap user=demo@example.test remote=127.0.0.1 mechanism=PLAIN reason=wrong password

A fail2ban filter (C{filter.d/gateway.conf}) for the default text log::

    [Definition]
    failregex = \\[gateway\\.auth#\\w+\\] authentication failed: protocol=\\S+ user=\\S* remote=<HOST>
    ignoreregex =

Verifying an Argon2 password takes tens of milliseconds, so it runs in the
reactor's thread pool when the C{clock} is a real reactor; with a
L{twisted.internet.task.Clock} (tests) every check is synchronous.
"""

import hashlib
import hmac
import os

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernameHashedPassword, IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool
from zope.interface import implementer

from gateway.cred import forms, passwords
from gateway.cred.credentials import IScramCredentials, LoginContext
from gateway.cred.delays import MemoryLoginDelays
from gateway.cred.forms import KNOWN_MECHANISMS
from gateway.interfaces import ILoginContext
from gateway.logging import getLogger

authLog = getLogger("auth")

#: Longest login name looked up at all.
MAX_NAME_LENGTH = 320
#: Most accounts lacking a password form logged one by one at start-up.
MAX_REPORTED = 100


#: Services logged in to with SASL mechanisms; the others take plain passwords.
SASL_SERVICES = frozenset({"imap", "pop3"})
PLAIN_SERVICES = frozenset({"ftp", "http"})


def accountMechanisms(record, mechanisms):
    """
    The mechanisms an account may log in with: its domain's (C{[auth]
    mechanisms} narrowed by the domain), for IMAP and POP3; only the plain
    ones when it has neither; none when it is disabled or has no service one
    logs in to.

    @param mechanisms: C{[auth] mechanisms}.
    @return: C{list} of names.
    """
    if not record.enabled:
        return []
    offered = forms.effectiveMechanisms(mechanisms, record.domain)
    if record.services & SASL_SERVICES:
        return offered
    if record.services & PLAIN_SERVICES:
        return [m for m in offered if m in forms.CLEARTEXT_MECHANISMS] or ["PLAIN"]
    return []


def accountsMissingForms(directory, mechanisms):
    """
    @param mechanisms: C{[auth] mechanisms}.
    @return: C{list} of C{(record, [mechanism, ...])} for the accounts of
        C{directory} that cannot use some of the mechanisms they may log in
        with (L{accountMechanisms}).
    """
    result = []
    for record in directory.accounts():
        missing = forms.missingMechanisms(record.password, accountMechanisms(record, mechanisms))
        if missing:
            result.append((record, missing))
    return result


def cleartextAllowed(directory, localAddress):
    """
    May clear-text passwords be used without TLS on a connection to
    C{localAddress}?  The answer of the domain assigned to that address (or
    the main domain), for C{LOGINDISABLED}/C{CAPA} decisions before login.

    @return: C{bool}
    """
    domain = directory.domainForAddress(localAddress)
    return bool(domain is not None and domain.cleartextLogin)


def logSafe(text, limit=128):
    """
    A user-supplied string made safe for a one-line, space-separated log
    field: white space, backslashes and unprintable characters become
    C{\\xNN}/C{\\uNNNN}, and it is cut at C{limit} characters.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    text = str(text)
    cut = len(text) > limit
    out = []
    for ch in text[:limit]:
        if ch == "\\" or ch.isspace() or not ch.isprintable():
            code = ord(ch)
            out.append("\\x%02x" % code if code < 0x100 else "\\u%04x" % code)
        else:
            out.append(ch)
    return "".join(out) + ("..." if cut else "")


def _acceptableName(name):
    """
    Refuse login names no directory should ever be asked about (path
    characters, control characters, absurd lengths).
    """
    if not name or len(name) > MAX_NAME_LENGTH:
        return False
    if "/" in name or "\\" in name or ".." in name or name.startswith("."):
        return False
    return all(ch.isprintable() and not ch.isspace() for ch in name)


_dummies = {}


def _dummyStored():
    """
    A stored password of the default scheme (and cost) that matches nothing
    anyone types: plain passwords of unknown names, and of accounts that
    have only a cheap form, are also checked against it, so that every
    check costs the same.
    """
    if "plain" not in _dummies:
        _dummies["plain"] = passwords.hashPassword(os.urandom(16).hex())
    return _dummies["plain"]


_DUMMY_CRAM = "{CRAM-MD5}" + "00" * 32


def verifyScramProof(keys, authMessage, clientProof):
    """
    Check a SCRAM ClientProof (RFC 5802 section 3).

    @param keys: the account's L{passwords.ScramKeys}.
    @return: C{bool}
    """
    signature = hmac.new(keys.storedKey, authMessage, keys.hashName).digest()
    if len(clientProof) != len(signature):
        return False
    clientKey = bytes(a ^ b for a, b in zip(clientProof, signature, strict=True))
    return hmac.compare_digest(hashlib.new(keys.hashName, clientKey).digest(), keys.storedKey)


class _Attempt:
    """
    What one login attempt turned out to be, for the decision and the log.
    """

    def __init__(self, credentials):
        context = getattr(credentials, "context", None)
        self.hasContext = ILoginContext.providedBy(context)
        self.context = context if self.hasContext else LoginContext("unknown")
        username = getattr(credentials, "username", "") or ""
        if isinstance(username, bytes):
            username = username.decode("utf-8", "surrogateescape")
        self.username = username
        self.mechanism = getattr(credentials, "mechanism", None) or type(credentials).__name__
        self.record = None
        self.reason = None
        #: seconds the attempt waited for its turn before it was checked
        self.wait = 0.0
        self.waited = False
        self.verify = lambda: False
        self.expensive = False
        #: the address elsewhere a router record sends the name to (when
        #: referrals are on)
        self.referral = None

    def refuse(self, reason):
        if self.reason is None:
            self.reason = reason


class LoginReferral(UnauthorizedLogin):
    """
    The login name is routed to another host (RFC 2221): C{address} is the
    C{local@domain} there.  Front-ends that know no referrals treat it as
    the failure it is.
    """

    def __init__(self, address):
        UnauthorizedLogin.__init__(self, "account is on another server")
        self.address = address


@implementer(ICredentialsChecker)
class DirectoryChecker:
    """
    Checks every kind of gateway credentials against an L{IDirectory}.

    @ivar directory: the L{gateway.interfaces.IDirectory}.
    @ivar failureDelay: seconds the first failure is delayed.
    @ivar maxFailureDelay: the longest delay.
    @ivar clock: an C{IReactorTime} (and, for a real reactor,
        C{IReactorThreads}).
    """

    credentialInterfaces = (IUsernamePassword, IUsernameHashedPassword, IScramCredentials)

    def __init__(self, directory, config, clock=None):
        """
        @param config: the L{gateway.config.Config}; C{[auth] failure_delay}
            and C{max_failure_delay} are read.
        @param clock: defaults to the global reactor.
        """
        if clock is None:
            from twisted.internet import reactor as clock
        self.directory = directory
        self.clock = clock
        # An instance attribute: a Logger as a class attribute would rename
        # its namespace after the class.
        self.log = authLog
        self.failureDelay = float(config["auth", "failure_delay"])
        self.maxFailureDelay = float(config["auth", "max_failure_delay"])
        #: The L{ILoginDelays}: per process by default (replace it with a
        #: shared one to make the delays hold across processes).
        self.config = config
        self.delays = MemoryLoginDelays(
            clock, self.failureDelay, self.maxFailureDelay, config.get("auth", "penalty_after", 5)
        )
        self.mechanisms = tuple(config.get("auth", "mechanisms", KNOWN_MECHANISMS))
        self._secret = os.urandom(32)
        self.reportMissingForms()

    # -- mechanisms ------------------------------------------------------------

    def domainMechanisms(self, domain):
        """
        @return: C{list} of the mechanisms accounts of C{domain} may use
            (C{[auth] mechanisms} narrowed by the domain's setting).
        """
        return forms.effectiveMechanisms(self.mechanisms, domain)

    def mechanismsFor(self, localAddress):
        """
        The mechanisms to offer on a connection to C{localAddress}, before
        the client has named an account: those of the domain assigned to
        that address (or the main domain).

        @return: C{list} of names, in the configured order.
        """
        return self.domainMechanisms(self.directory.domainForAddress(localAddress))

    def accountsMissingForms(self):
        """
        The accounts whose stored password cannot serve every mechanism
        their domain offers (imported from elsewhere, or set before a
        mechanism was enabled).

        @return: C{list} of C{(record, [mechanism, ...])}.
        """
        return accountsMissingForms(self.directory, self.mechanisms)

    def reportMissingForms(self):
        """
        Log, once (at start-up), each account that cannot use a mechanism
        that is offered to it.
        """
        try:
            missing = self.accountsMissingForms()
        except Exception:
            self.log.failure("listing accounts whose passwords lack a form")
            return
        for record, mechanisms in missing[:MAX_REPORTED]:
            self.log.warn(
                "account {address} cannot log in with {mechanisms}: its password is stored as {schemes};"
                " set it again (gatewayctl account passwd) to store every form",
                address=record.address,
                mechanisms=", ".join(mechanisms),
                schemes=", ".join("{%s}" % (s,) for s in forms.schemes(record.password)) or "nothing",
            )
        if len(missing) > MAX_REPORTED:
            self.log.warn(
                "{count} more accounts lack a password form (gatewayctl doctor lists them)",
                count=len(missing) - MAX_REPORTED,
            )

    def _plainVerifier(self, usable, password):
        """
        The check of a plain-text password against the form C{usable} (or
        C{None} when there is none).  It always does the work of one
        expensive hash: C{usable} itself when it is one, otherwise a dummy
        hash of the default scheme as well (unknown names, C{{CRAM-MD5}}
        or C{{PLAIN}} only accounts), so the time taken tells nothing.
        """
        costly = usable if usable is not None and passwords.isExpensive(usable) else _dummyStored()

        def verify():
            matched = passwords.verifyPassword(costly, password)
            if costly is not usable:
                matched = usable is not None and passwords.verifyPassword(usable, password)
            return matched

        return verify

    # -- ICredentialsChecker -------------------------------------------------

    def requestAvatarId(self, credentials):
        """
        @return: a C{Deferred} firing with the canonical C{'local@domain'} of
            the account, or failing with L{UnauthorizedLogin} after the
            failure delay.  From a penalised address (see
            L{gateway.cred.delays}) the attempt first waits its turn, whatever
            its outcome.
        """
        attempt = _Attempt(credentials)
        remote = attempt.context.remoteAddress
        attempt.key = self._attemptKey(attempt, credentials)
        # What the attempt waits on now: its turn (a delayed call) or its
        # check (a Deferred); nothing while its admission is under way.
        pending = []
        cancelled = []

        def cancel(d):
            cancelled.append(True)
            if pending and not isinstance(pending[0], Deferred) and pending[0].active():
                pending[0].cancel()
                self.delays.release(remote, attempt.key)
            elif pending and isinstance(pending[0], Deferred):
                pending[0].cancel()

        def start():
            checked = self._check(attempt, credentials)
            pending[:] = [checked]
            checked.chainDeferred(result)

        def admitted(wait):
            if cancelled:
                self.delays.release(remote, attempt.key)  # the client went away meanwhile
                return
            attempt.waited = wait > 0
            attempt.wait = wait
            if attempt.waited:
                pending[:] = [self.clock.callLater(wait, start)]
            else:
                start()

        def notAdmitted(failure):
            self.log.failure("admitting a login attempt", failure)
            admitted(0.0)

        result = Deferred(cancel)
        # At once in one process; in a thread with worker processes (the
        # shared delays' transactions: gateway.cred.delays.ThreadedLoginDelays).
        maybeDeferred(self.delays.admit, remote, attempt.key).addCallbacks(admitted, notAdmitted)
        return result

    def _attemptKey(self, attempt, credentials):
        """
        What makes attempts the same for L{ILoginDelays}: the name and the
        plain-text password (as an HMAC under this checker's secret, never
        the password itself); an attempt of another kind is unique.
        """
        password = getattr(credentials, "password", None) if IUsernamePassword.providedBy(credentials) else None
        if password is None:
            return attempt
        material = "%s\0%s" % (attempt.username, password)
        return hmac.new(self._secret, material.encode("utf-8", "surrogateescape"), "sha256").digest()

    def _check(self, attempt, credentials):
        try:
            self._prepare(attempt, credentials)
        except Exception:
            self.log.failure("checking credentials for {user}", user=logSafe(attempt.username))
            attempt.refuse("internal error")
            attempt.verify = lambda: False
            attempt.expensive = False
        d = self._run(attempt)
        d.addCallback(self._decide, attempt)

        def answered(result):
            # Whatever happened (answered, failed, cancelled), the attempt is
            # no longer under way.
            self.delays.release(attempt.context.remoteAddress, attempt.key)
            return result

        return d.addBoth(answered)

    # -- steps ---------------------------------------------------------------

    def _prepare(self, attempt, credentials):
        """
        Route the name, apply the policy, and set C{attempt.verify} to the
        password check (real, or comparable dummy work).
        """
        if not attempt.hasContext:
            attempt.refuse("no login context")
        elif not _acceptableName(attempt.username):
            attempt.refuse("malformed user name")
        else:
            attempt.record = self.directory.resolve(attempt.username, attempt.context.localAddress)
            if attempt.record is None and self.config.get("auth", "login_referrals", False):
                attempt.referral = self.directory.referral(attempt.username, attempt.context.localAddress)
                if attempt.referral is not None:
                    attempt.refuse("referred to %s" % (logSafe(attempt.referral),))
            if attempt.record is None:
                attempt.refuse("unknown user")
        record = attempt.record
        if (
            record is not None
            and attempt.mechanism in KNOWN_MECHANISMS
            and attempt.mechanism not in forms.CLEARTEXT_MECHANISMS
            and attempt.mechanism not in self.domainMechanisms(record.domain)
        ):
            attempt.refuse("mechanism %s not enabled for %s" % (attempt.mechanism, record.domain.name))
        stored = record.password if record is not None else None
        storedSchemes = ",".join("{%s}" % (name,) for name in forms.schemes(stored)) or "no"

        if IScramCredentials.providedBy(credentials):
            keys = None
            if record is not None:
                keys = self._recordScramKeys(record, credentials.hashName)
                if keys is None:
                    attempt.refuse("%s not possible with %s password" % (attempt.mechanism, storedSchemes))
            if keys is None:
                keys = self._fakeScramKeys(attempt.username, credentials.hashName)
            attempt.verify = lambda: verifyScramProof(keys, credentials.authMessage, credentials.clientProof)
        elif (
            IUsernameHashedPassword.providedBy(credentials)
            and hasattr(credentials, "challenge")
            and hasattr(credentials, "response")
        ):
            usable = forms.cramForm(stored) if record is not None else None
            if record is not None and usable is None:
                attempt.refuse("%s not possible with %s password" % (attempt.mechanism, storedSchemes))
            if usable is None:
                usable = _DUMMY_CRAM
            attempt.verify = lambda: passwords.verifyCramMD5(usable, credentials.challenge, credentials.response)
        elif IUsernamePassword.providedBy(credentials):
            usable = None
            if record is not None:
                usable = forms.plainForm(stored)
                if not forms.splitForms(stored):
                    attempt.refuse("no password set")
                elif usable is None:
                    attempt.refuse("unknown password scheme %s" % (storedSchemes,))
            attempt.verify = self._plainVerifier(usable, credentials.password)
            attempt.expensive = True
        else:
            attempt.refuse("unsupported credentials %s" % (type(credentials).__name__,))

        if record is None or attempt.reason is not None:
            return
        protocol = attempt.context.protocol
        if protocol not in record.services:
            attempt.refuse("service %s disabled" % (protocol,))
        elif getattr(credentials, "cleartext", False) and not attempt.context.secure and not record.domain.cleartextLogin:
            attempt.refuse("cleartext not allowed")
        else:
            authzid = getattr(credentials, "authzid", "") or ""
            if authzid and authzid != attempt.username:
                other = self.directory.resolve(authzid, attempt.context.localAddress) if _acceptableName(authzid) else None
                if other is None or other.address != record.address:
                    attempt.refuse("authorization as %s not allowed" % (logSafe(authzid),))

    def _run(self, attempt):
        """
        Verify, in the thread pool when it is expensive (every plain-text
        password check is).
        """
        if attempt.expensive and IReactorThreads.providedBy(self.clock):
            d = deferToThreadPool(self.clock, self.clock.getThreadPool(), attempt.verify)
        else:
            d = maybeDeferred(attempt.verify)

        def broken(failure):
            self.log.failure("verifying the password of {user}", failure, user=logSafe(attempt.username))
            attempt.refuse("internal error")
            return False

        return d.addErrback(broken)

    def _decide(self, matched, attempt):
        if attempt.reason is None and not matched:
            attempt.reason = "wrong password"
        remote = attempt.context.remoteAddress
        fields = dict(
            protocol=logSafe(attempt.context.protocol),
            user=logSafe(attempt.username),
            remote=logSafe(remote) if remote else "-",
            mechanism=logSafe(attempt.mechanism),
        )
        if attempt.reason is None:
            maybeDeferred(self.delays.finish, remote, True, attempt.waited).addErrback(
                lambda failure: self.log.failure("recording a login's success", failure))
            self.log.info(
                "authentication succeeded: protocol={protocol} user={user} remote={remote} mechanism={mechanism}",
                address=attempt.record.address,
                waited=attempt.wait,
                **fields,
            )
            return attempt.record.address
        self.log.info(
            "authentication failed: protocol={protocol} user={user} remote={remote} mechanism={mechanism}"
            " reason={reason}",
            reason=attempt.reason,
            waited=attempt.wait,
            **fields,
        )

        def notRecorded(failure):
            self.log.failure("recording a login's failure", failure)
            return self.delays.delayFor(1)

        d = maybeDeferred(self.delays.finish, remote, False, attempt.waited)
        return d.addErrback(notRecorded).addCallback(self._delayedFailure, attempt.referral)

    # -- delays --------------------------------------------------------------

    def delayFor(self, count):
        """
        @return: the delay for the C{count}th failure in a row.
        """
        return self.delays.delayFor(count)

    def failureCount(self, remote):
        """
        @return: how many failures in a row C{remote} has had (0 if forgotten;
            a C{Deferred} of it with the workers' shared delays).
        """
        return self.delays.failures(remote)

    def _delayedFailure(self, delay, referral=None):
        error = LoginReferral(referral) if referral is not None else UnauthorizedLogin("authentication failed")
        if delay <= 0:
            return fail(error)
        calls = []

        def cancel(d):
            if calls and calls[0].active():
                calls[0].cancel()

        d = Deferred(cancel)
        calls.append(self.clock.callLater(delay, d.errback, error))
        return d

    # -- SCRAM ---------------------------------------------------------------

    def _plainSalt(self, kind, hashName, name):
        data = ("%s:%s:%s" % (kind, hashName, name.lower())).encode("utf-8", "surrogateescape")
        return hmac.new(self._secret, data, "sha256").digest()[:16]

    def _recordScramKeys(self, record, hashName):
        form = forms.scramForm(record.password, hashName)
        if form is None:
            return None
        return passwords.scramKeys(form, hashName, plainSalt=self._plainSalt("plain", hashName, record.address))

    def _fakeScramKeys(self, username, hashName):
        size = hashlib.new(hashName).digest_size
        return passwords.ScramKeys(
            hashName,
            passwords.SCRAM_ITERATIONS,
            self._plainSalt("fake", hashName, username),
            os.urandom(size),
            os.urandom(size),
        )

    def scramKeys(self, username, context, hashName):
        """
        The keys a SCRAM exchange for C{username} uses (the salt and the
        iteration count go to the client in the server-first message).
        Names that cannot log in with SCRAM get made-up keys with a salt that
        stays the same for the name, so the answer does not tell whether
        the account exists.

        @return: L{passwords.ScramKeys}
        """
        record = None
        if _acceptableName(username):
            record = self.directory.resolve(username, getattr(context, "localAddress", None))
        keys = self._recordScramKeys(record, hashName) if record is not None else None
        return keys if keys is not None else self._fakeScramKeys(username, hashName)
