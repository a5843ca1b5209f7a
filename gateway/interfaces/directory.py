# -*- test-case-name: tests.test_directory -*-
"""
The directory and accounts: domains and account records, login delays, the
account avatar the realm hands every protocol, its quota, and where a login
comes from.
"""

from zope.interface import Attribute, Interface

# ---------------------------------------------------------------------------
# Directory


class IDomain(Interface):
    """
    A domain's settings, as read from C{domains/<name>/domain.ini}.
    """

    name = Attribute("Canonical (lower-case) domain name, C{str}.")
    aliases = Attribute("C{tuple} of lower-case alias names of this domain.")
    addresses = Attribute("C{tuple} of local IP addresses assigned to this domain.")
    cleartextLogin = Attribute(
        "C{bool}: may clear-text passwords be used on a connection without TLS?"
    )
    defaultQuota = Attribute("Default account storage quota in bytes, or C{None}.")
    defaultServices = Attribute("C{frozenset} of service names new accounts get.")
    enabled = Attribute("C{bool}: a disabled domain refuses every login and delivery.")
    mechanisms = Attribute(
        "C{tuple} of the SASL mechanisms its accounts may use (upper case); empty"
        " for every mechanism of C{[auth] mechanisms}."
    )


class IAccountRecord(Interface):
    """
    An account's settings, as read from C{.../accounts/<local>/account.ini}.
    """

    address = Attribute("Canonical full name C{'local@domain'} (lower-case).")
    localPart = Attribute("C{str}")
    domain = Attribute("The L{IDomain}.")
    password = Attribute(
        "Stored password: one or more forms in C{{SCHEME}}data notation, one"
        " a line (see L{gateway.cred.forms}), C{str}."
    )
    aliases = Attribute("C{tuple} of lower-case local-part aliases.")
    enabled = Attribute("C{bool}")
    services = Attribute("C{frozenset} of enabled service names (imap, pop3, http, ftp, lmtp).")
    quota = Attribute("Storage quota in bytes (mail + files), or C{None} for unlimited.")
    timezone = Attribute("IANA time zone name for floating/all-day calendar times.")
    path = Attribute("C{FilePath} of the account folder.")


class IDirectory(Interface):
    """
    Domains and accounts, and the routing of names to accounts.

    Changes made on disk (e.g. with C{gatewayctl}) are seen by the next call
    without a restart.
    """

    mainDomain = Attribute("Name of the main domain, C{str}.")

    def domains():
        """
        @return: C{list} of L{IDomain}, sorted by name.
        """

    def getDomain(name):
        """
        @param name: a domain name or a domain alias (any case).
        @return: the L{IDomain}, or C{None}.
        """

    def domainForAddress(localAddress):
        """
        The domain a connection to C{localAddress} (an IP string, or C{None})
        belongs to: the domain assigned to that address, else the main domain.

        @return: an L{IDomain} or C{None} when the main domain does not exist.
        """

    def domainForHost(host, localAddress):
        """
        The domain an HTTP C{Host} header selects: a domain or alias name
        selects it; otherwise L{domainForAddress}.
        """

    def fullName(name, localAddress):
        """
        Make a full C{local@domain} name from a login name as seed 001 says:
        C{@} or C{%} make a full name (C{%} becomes C{@}); otherwise the domain
        assigned to C{localAddress}; otherwise the main domain.  Lower-cased.
        """

    def resolve(name, localAddress=None):
        """
        Route a login name or recipient address to an account: L{fullName},
        then domain aliases, account aliases and router records (followed a
        bounded number of times).

        @return: the L{IAccountRecord}, or C{None} for unknown names, names
            that route to a disabled account or domain, or names that do not
            route to a local account.  Callers must not distinguish why.
        """

    def referral(name, localAddress=None):
        """
        Where router records send a login name that is not a local account
        (LOGIN-REFERRALS, RFC 2221): routed as by L{resolve}.

        @return: the C{local@domain} address, in a domain this directory
            does not hold, that a router record sends C{name} to; C{None}
            when C{name} reaches a local account or nothing.
        """

    def getAccount(address):
        """
        @param address: canonical C{local@domain}; no routing is applied.
        @return: the L{IAccountRecord} or C{None}.
        """

    def accounts(domain=None):
        """
        @param domain: a canonical domain name, or C{None} for every domain.
        @return: C{list} of L{IAccountRecord}, by domain then name.
        """


class ILoginDelays(Interface):
    """
    Login delays per remote address (see L{gateway.cred.delays}): the state
    that must be shared by every session of a server, so that parallel
    connections from one address cannot guess faster than one.

    C{admit}, C{finish} and C{failures} may return a C{Deferred} of their
    result (L{gateway.cred.delays.ThreadedLoginDelays}).
    """

    def admit(remote, key):
        """
        An attempt from C{remote} (an IP C{str} or C{None}) starts.

        @param key: a hashable that is equal for attempts with the same
            name and password (so a browser's parallel requests count as
            one attempt under way), and unique otherwise.
        @return: seconds it must wait before it is checked and answered
            (C{0.0} for at once); an attempt that waits has its turn
            reserved, so parallel attempts are spaced out.
        """

    def finish(remote, succeeded, waited):
        """
        The attempt L{admit} let in has been checked.

        @param succeeded: C{bool}.
        @param waited: C{True} when L{admit} made it wait.
        @return: seconds more before a failure is answered (C{0.0} for a
            success).
        """

    def release(remote, key):
        """
        The attempt L{admit} let in has been answered, or abandoned (the
        client went away): it is no longer under way.
        """

    def failures(remote):
        """
        @return: how many failures in a row C{remote} has had (0 once
            forgotten).
        """


# ---------------------------------------------------------------------------
# Accounts, as the realm hands them to protocols


class IAccount(Interface):
    """
    The avatar every protocol gets from the realm after login (and LMTP gets
    for delivery).  One instance per account per process, shared by all its
    sessions, so that in-process change notification is immediate.
    """

    address = Attribute("Canonical C{local@domain}.")
    record = Attribute("The L{IAccountRecord} (re-read from disk on access).")
    mailStore = Attribute("The account's L{gateway.interfaces.IMailStore}.")
    fileStore = Attribute("The account's L{gateway.interfaces.IFileStore}.")
    quota = Attribute("The account's L{IQuota}.")
    access = Attribute(
        "The L{gateway.interfaces.IViewerAccess} through which this account reaches"
        " mailboxes (its own and those other accounts share with it)."
    )

    def popAlerts():
        """
        Remove and return the pending alert texts (C{list} of C{str}), oldest
        first.  Each alert is shown once.
        """


class IQuota(Interface):
    """
    One storage quota covering mail, files and published free/busy.
    """

    def limit():
        """
        @return: the limit in bytes, or C{None} for unlimited.
        """

    def used():
        """
        @return: bytes used by mail and files together.
        """

    def check(additional):
        """
        @raise gateway.errors.QuotaExceeded: if C{additional} more bytes would
            go over the limit.
        """


# ---------------------------------------------------------------------------
# Login context carried by credentials


class ILoginContext(Interface):
    """
    Where a login attempt comes from; carried as C{credentials.context}.
    """

    protocol = Attribute("C{'imap'}, C{'pop3'}, C{'http'}, C{'ftp'} or C{'lmtp'}.")
    remoteAddress = Attribute("Peer IP C{str} (or C{None}).")
    localAddress = Attribute("The local IP C{str} the client connected to (or C{None}).")
    secure = Attribute("C{bool}: is the connection protected by TLS?")
