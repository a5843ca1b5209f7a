# -*- test-case-name: tests.test_directory -*-
"""
The directory kept in human-readable files under the data root::

    <data_root>/domains/<domain>/domain.ini          settings of a domain
    <data_root>/domains/<domain>/router.ini          router records: alias = target
    <data_root>/domains/<domain>/accounts/<local>/account.ini
    <data_root>/domains/<domain>/accounts/<local>/alerts/   pending alerts
    <data_root>/domains/<domain>/accounts/<local>/mail/     mailboxes
    <data_root>/domains/<domain>/accounts/<local>/files/    file storage

Every change is written to a temporary file renamed into place, then
C{directory.serial} is rewritten; a running server compares that file (one
C{stat}) and the C{account.ini} it reads before it trusts its cache, so
changes made with C{gatewayctl} or by hand take effect without a restart.
"""

import configparser
import os
import re
import tempfile
import time
import unicodedata

import attr
from twisted.python.filepath import FilePath
from zope.interface import implementer

from gateway.config import formatSize, parseSize
from gateway.errors import DirectoryError, NoSuchAccount, NoSuchDomain
from gateway.interfaces import IAccountRecord, IDirectory, IDomain
from gateway.store import maildir

SERVICES = frozenset({"imap", "pop3", "http", "ftp", "lmtp"})
MAX_ROUTING_HOPS = 10

_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# RFC 5322 dot-atom, with RFC 6531's UTF-8 (no C1 controls, no surrogates):
# an account may be jörg@ (IMAP UTF8=ACCEPT logins, RFC 6855).
_LOCAL_RE = re.compile("^[a-z0-9!#$&'*+=?^_`{|}~\u00a0-\ud7ff\ue000-\U0010ffff-]+"
                       "(\\.[a-z0-9!#$&'*+=?^_`{|}~\u00a0-\ud7ff\ue000-\U0010ffff-]+)*$")


def validDomainName(name):
    return bool(_DOMAIN_RE.match(name))


def validLocalPart(name):
    return len(name) <= 64 and bool(_LOCAL_RE.match(name))


def splitAddress(address):
    """
    Split C{local@domain} (or C{local%domain}) into its lower-cased parts.

    @raise DirectoryError: when it is not a valid full name.
    """
    address = unicodedata.normalize("NFC", address.strip().lower().replace("%", "@"))
    local, at, domain = address.rpartition("@")
    if not at or not validLocalPart(local) or not validDomainName(domain):
        raise DirectoryError("not a valid address: %r" % (address,))
    return local, domain


def _names(text):
    return tuple(n.strip().lower() for n in re.split(r"[,\s]+", text or "") if n.strip())


def _readIni(path):
    parser = configparser.ConfigParser(interpolation=None)
    with open(path, encoding="utf-8") as f:
        parser.read_file(f)
    return parser


def writeIni(path, sections):
    """
    Write C{{section: {name: value}}} to C{path} atomically.
    """
    parser = configparser.ConfigParser(interpolation=None)
    for section, values in sections.items():
        parser[section] = {k: str(v) for k, v in values.items()}
    atomicWrite(path, lambda f: parser.write(f), text=True)


def atomicWrite(path, write, text=False, mode=0o600):
    """
    Write a file through a temporary file in the same folder and rename it
    into place, so a reader sees the old or the new content, never a part.
    """
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w" if text else "wb", **({"encoding": "utf-8"} if text else {})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@implementer(IDomain)
@attr.s(frozen=True)
class Domain:
    name = attr.ib()
    aliases = attr.ib(default=())
    addresses = attr.ib(default=())
    cleartextLogin = attr.ib(default=False)
    defaultQuota = attr.ib(default=None)
    defaultServices = attr.ib(default=SERVICES)
    enabled = attr.ib(default=True)
    router = attr.ib(default=attr.Factory(dict))  # alias local part -> target address
    #: SASL mechanisms this domain's accounts may use (upper-case names);
    #: empty for every mechanism of C{[auth] mechanisms}.
    mechanisms = attr.ib(default=())

    def toSections(self):
        return {
            "domain": {
                "aliases": ", ".join(self.aliases),
                "addresses": ", ".join(self.addresses),
                "cleartext_login": "yes" if self.cleartextLogin else "no",
                "default_quota": formatSize(self.defaultQuota),
                "default_services": ", ".join(sorted(self.defaultServices)),
                "enabled": "yes" if self.enabled else "no",
                "mechanisms": ", ".join(self.mechanisms),
            }
        }


@implementer(IAccountRecord)
@attr.s(frozen=True)
class AccountRecord:
    localPart = attr.ib()
    domain = attr.ib()
    password = attr.ib(repr=False)
    aliases = attr.ib(default=())
    enabled = attr.ib(default=True)
    services = attr.ib(default=SERVICES)
    quota = attr.ib(default=None)
    timezone = attr.ib(default="UTC")
    path = attr.ib(default=None, eq=False)
    #: C{"default"} (follow the domain's default quota) or a size text.
    quotaSetting = attr.ib(default="default")

    @property
    def address(self):
        return "%s@%s" % (self.localPart, self.domain.name)

    def toSections(self):
        return {
            "account": {
                "password": self.password,
                "aliases": ", ".join(self.aliases),
                "enabled": "yes" if self.enabled else "no",
                "services": ", ".join(sorted(self.services)),
                "quota": self.quotaSetting,
                "timezone": self.timezone,
            }
        }


def _boolean(parser, section, name, default):
    try:
        return parser.getboolean(section, name, fallback=default)
    except ValueError:
        return default


def _services(text, default):
    if text is None:
        return default
    names = frozenset(_names(text))
    return names & SERVICES


@implementer(IDirectory)
class FileDirectory:
    """
    The directory under C{<dataRoot>/domains}.

    @ivar clock: C{time.time}-like, for tests.
    """

    def __init__(self, dataRoot, mainDomain):
        self.dataRoot = os.path.abspath(dataRoot)
        self.mainDomain = mainDomain.lower()
        self._domainsPath = os.path.join(self.dataRoot, "domains")
        self._serialPath = os.path.join(self.dataRoot, "directory.serial")
        self._serialStamp = None
        self._domains = None
        self._byAlias = {}
        self._byAddress = {}
        self._accounts = {}
        self._accountAliases = {}
        #: How many changes this object made (L{_touch}): what keeps a
        #: record for a while (L{gateway.cred.realm}) reads it again at
        #: once after one.
        self.changes = 0

    # -- cache ---------------------------------------------------------------

    def _stamp(self):
        stamps = []
        for path in (self._serialPath, self._domainsPath):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                stamps.append(None)
            else:
                stamps.append((st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(stamps)

    def _fresh(self):
        stamp = self._stamp()
        if stamp != self._serialStamp or self._domains is None:
            self._load()
            self._serialStamp = stamp

    def _load(self):
        domains = {}
        byAlias = {}
        byAddress = {}
        accountAliases = {}
        try:
            names = sorted(os.listdir(self._domainsPath))
        except FileNotFoundError:
            names = []
        for name in names:
            domain = self._readDomain(name)
            if domain is None:
                continue
            domains[name] = domain
            for alias in domain.aliases:
                byAlias.setdefault(alias, name)
            for address in domain.addresses:
                byAddress.setdefault(address, name)
            aliases = {}
            accounts = os.path.join(self._domainsPath, name, "accounts")
            try:
                locals_ = sorted(os.listdir(accounts))
            except FileNotFoundError:
                locals_ = []
            for local in locals_:
                record = self._readAccount(domain, local)
                if record is None:
                    continue
                for alias in record.aliases:
                    aliases.setdefault(alias, local)
            accountAliases[name] = aliases
        self._domains = domains
        self._byAlias = byAlias
        self._byAddress = byAddress
        self._accountAliases = accountAliases
        self._accounts = {}

    def _readDomain(self, name):
        path = os.path.join(self._domainsPath, name, "domain.ini")
        try:
            parser = _readIni(path)
        except (OSError, configparser.Error, UnicodeDecodeError):
            return None
        get = lambda key, default="": parser.get("domain", key, fallback=default)  # noqa: E731
        router = {}
        routerPath = os.path.join(self._domainsPath, name, "router.ini")
        try:
            routerParser = _readIni(routerPath)
        except FileNotFoundError:
            pass
        except (OSError, configparser.Error, UnicodeDecodeError):
            pass
        else:
            if routerParser.has_section("router"):
                router = {k.lower(): v.strip().lower() for k, v in routerParser.items("router")}
        try:
            quota = parseSize(get("default_quota", "unlimited"))
        except ValueError:
            quota = None
        return Domain(
            name=name,
            aliases=_names(get("aliases")),
            addresses=_names(get("addresses")),
            cleartextLogin=_boolean(parser, "domain", "cleartext_login", False),
            defaultQuota=quota,
            defaultServices=_services(parser.get("domain", "default_services", fallback=None), SERVICES),
            enabled=_boolean(parser, "domain", "enabled", True),
            router=router,
            mechanisms=tuple(n.upper() for n in _names(get("mechanisms"))),
        )

    def _accountPath(self, domain, local):
        return os.path.join(self._domainsPath, domain, "accounts", local)

    def _readAccount(self, domain, local):
        path = os.path.join(self._accountPath(domain.name, local), "account.ini")
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = (domain.name, local)
        cached = self._accounts.get(key)
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if cached is not None and cached[0] == stamp and cached[1].domain is domain:
            return cached[1]
        try:
            parser = _readIni(path)
        except (OSError, configparser.Error, UnicodeDecodeError):
            return None
        get = lambda k, d="": parser.get("account", k, fallback=d)  # noqa: E731
        quotaText = get("quota", "default").strip() or "default"
        try:
            quota = domain.defaultQuota if quotaText == "default" else parseSize(quotaText)
        except ValueError:
            quota = domain.defaultQuota
        record = AccountRecord(
            localPart=local,
            domain=domain,
            password=get("password"),
            aliases=_names(get("aliases")),
            enabled=_boolean(parser, "account", "enabled", True),
            services=_services(parser.get("account", "services", fallback=None), domain.defaultServices),
            quota=quota,
            timezone=get("timezone", "UTC") or "UTC",
            quotaSetting=quotaText,
            path=FilePath(os.path.dirname(path)),
        )
        self._accounts[key] = (stamp, record)
        return record

    # -- IDirectory ----------------------------------------------------------

    def domains(self):
        self._fresh()
        return [self._domains[n] for n in sorted(self._domains)]

    def getDomain(self, name):
        self._fresh()
        name = (name or "").strip().lower().rstrip(".")
        if name in self._domains:
            return self._domains[name]
        canonical = self._byAlias.get(name)
        if canonical is not None:
            return self._domains.get(canonical)
        return None

    def domainForAddress(self, localAddress):
        self._fresh()
        if localAddress is not None:
            name = self._byAddress.get(localAddress)
            if name is not None:
                return self._domains[name]
        return self._domains.get(self.mainDomain)

    def domainForHost(self, host, localAddress):
        if host:
            host = host.strip().lower()
            if host.startswith("["):
                host = host[1:].partition("]")[0]
            elif host.count(":") == 1:
                host = host.partition(":")[0]
            domain = self.getDomain(host)
            if domain is not None:
                return domain
        return self.domainForAddress(localAddress)

    def fullName(self, name, localAddress):
        name = unicodedata.normalize("NFC", name.strip().lower().replace("%", "@"))
        if "@" in name:
            return name
        domain = self.domainForAddress(localAddress)
        return "%s@%s" % (name, domain.name if domain else self.mainDomain)

    def resolve(self, name, localAddress=None):
        return self._route(name, localAddress)[0]

    def referral(self, name, localAddress=None):
        return self._route(name, localAddress)[1]

    def _route(self, name, localAddress):
        """
        Follow C{name} through aliases and router records.

        @return: C{(record, remote)}: the enabled local account it reaches,
            or the address in a domain not held here that a router record
            sends it to (else C{None}).
        """
        self._fresh()
        address = self.fullName(name, localAddress)
        routed = False
        for _ in range(MAX_ROUTING_HOPS):
            local, _, domainName = address.rpartition("@")
            if not validLocalPart(local):
                return None, None
            domain = self.getDomain(domainName)
            if domain is None:
                if routed and validDomainName(domainName):
                    return None, address
                return None, None
            if not domain.enabled:
                return None, None
            record = self._readAccount(domain, local)
            if record is not None:
                return (record if record.enabled else None), None
            target = self._accountAliases.get(domain.name, {}).get(local)
            if target is not None:
                record = self._readAccount(domain, target)
                if record is None or not record.enabled or local not in record.aliases:
                    return None, None
                return record, None
            target = domain.router.get(local)
            if target is None:
                return None, None
            address = target if "@" in target else "%s@%s" % (target, domain.name)
            routed = True
        return None, None

    def accounts(self, domain=None):
        self._fresh()
        names = [domain.lower()] if domain is not None else sorted(self._domains)
        records = []
        for name in names:
            record = self._domains.get(name)
            if record is None:
                continue
            try:
                locals_ = sorted(os.listdir(os.path.join(self._domainsPath, name, "accounts")))
            except OSError:
                continue
            for local in locals_:
                account = self._readAccount(record, local)
                if account is not None:
                    records.append(account)
        return records

    def getAccount(self, address):
        self._fresh()
        local, _, domainName = address.lower().rpartition("@")
        domain = self._domains.get(domainName)
        if domain is None or not validLocalPart(local):
            return None
        return self._readAccount(domain, local)

    # -- changes (gatewayctl) ------------------------------------------------

    def _touch(self):
        atomicWrite(self._serialPath, lambda f: f.write(("%.9f\n" % time.time()).encode()), mode=0o644)
        self._serialStamp = None
        self.changes += 1

    def addDomain(self, name, **settings):
        name = name.strip().lower()
        if not validDomainName(name):
            raise DirectoryError("not a valid domain name: %r" % (name,))
        if self.getDomain(name) is not None:
            raise DirectoryError("domain %s already exists" % (name,))
        domain = Domain(name=name, **settings)
        self._checkDomainNames(domain)
        writeIni(os.path.join(self._domainsPath, name, "domain.ini"), domain.toSections())
        os.makedirs(os.path.join(self._domainsPath, name, "accounts"), exist_ok=True)
        self._touch()
        return domain

    def _checkDomainNames(self, domain):
        for alias in domain.aliases:
            if not validDomainName(alias):
                raise DirectoryError("not a valid domain alias: %r" % (alias,))
            other = self.getDomain(alias)
            if other is not None and other.name != domain.name:
                raise DirectoryError("%s is already a name of domain %s" % (alias, other.name))

    def setDomain(self, name, **changes):
        domain = self._requireDomain(name)
        domain = attr.evolve(domain, **changes)
        self._checkDomainNames(domain)
        writeIni(os.path.join(self._domainsPath, domain.name, "domain.ini"), domain.toSections())
        self._touch()
        return domain

    def removeDomain(self, name):
        domain = self._requireDomain(name)
        if domain.name != name.strip().lower():
            raise DirectoryError("%s is an alias of %s; remove the alias instead" % (name, domain.name))
        _removeFolder(os.path.join(self._domainsPath, domain.name))
        self._touch()

    def _requireDomain(self, name):
        domain = self.getDomain(name)
        if domain is None:
            raise NoSuchDomain("no such domain: %s" % (name,))
        return domain

    def addAccount(self, address, password, **settings):
        local, domainName = splitAddress(address)
        domain = self._requireDomain(domainName)
        if self._readAccount(domain, local) is not None:
            raise DirectoryError("account %s@%s already exists" % (local, domain.name))
        if local in self._accountAliases.get(domain.name, {}) or local in domain.router:
            raise DirectoryError("%s@%s is already an alias" % (local, domain.name))
        settings.setdefault("services", domain.defaultServices)
        record = AccountRecord(localPart=local, domain=domain, password=password, **settings)
        self._checkAccountAliases(record)
        path = self._accountPath(domain.name, local)
        os.makedirs(path, mode=0o700, exist_ok=True)
        for folder in ("alerts", "mail", "files", os.path.join("files", "private")):
            os.makedirs(os.path.join(path, folder), mode=0o700, exist_ok=True)
        writeIni(os.path.join(path, "account.ini"), record.toSections())
        self._touch()
        return self.getAccount(record.address)

    def setAccount(self, address, **changes):
        record = self._requireAccount(address)
        record = attr.evolve(record, **changes)
        self._checkAccountAliases(record)
        writeIni(os.path.join(record.path.path, "account.ini"), record.toSections())
        self._touch()
        return self.getAccount(record.address)

    def _checkAccountAliases(self, record):
        domain = record.domain
        owners = self._accountAliases.get(domain.name, {})
        for alias in record.aliases:
            if not validLocalPart(alias):
                raise DirectoryError("not a valid alias: %r" % (alias,))
            taken = (
                alias == record.localPart
                or self._readAccount(domain, alias) is not None
                or owners.get(alias, record.localPart) != record.localPart
                or alias in domain.router
            )
            if taken:
                raise DirectoryError("%s@%s is already in use" % (alias, domain.name))

    def removeAccount(self, address):
        record = self._requireAccount(address)
        _removeFolder(record.path.path)
        self._touch()

    def _requireAccount(self, address):
        local, domainName = splitAddress(address)
        domain = self._requireDomain(domainName)
        record = self._readAccount(domain, local)
        if record is None:
            raise NoSuchAccount("no such account: %s@%s" % (local, domain.name))
        return record

    def addRouterRecord(self, alias, target):
        """
        Route C{alias} (C{local@domain}) to C{target} (C{local@domain}),
        which may be in another domain.
        """
        local, domainName = splitAddress(alias)
        splitAddress(target)
        domain = self._requireDomain(domainName)
        if self._readAccount(domain, local) is not None:
            raise DirectoryError("%s@%s is an account" % (local, domain.name))
        if local in self._accountAliases.get(domain.name, {}):
            raise DirectoryError("%s@%s is already an account alias" % (local, domain.name))
        router = dict(domain.router)
        router[local] = target.strip().lower().replace("%", "@")
        self._writeRouter(domain, router)

    def removeRouterRecord(self, alias):
        local, domainName = splitAddress(alias)
        domain = self._requireDomain(domainName)
        if local not in domain.router:
            raise DirectoryError("no router record for %s@%s" % (local, domain.name))
        router = dict(domain.router)
        del router[local]
        self._writeRouter(domain, router)

    def _writeRouter(self, domain, router):
        writeIni(os.path.join(self._domainsPath, domain.name, "router.ini"), {"router": router})
        self._touch()

    def addAlert(self, address, text):
        record = self._requireAccount(address)
        folder = os.path.join(record.path.path, "alerts")
        name = "%020d-%d" % (time.time_ns(), os.getpid())
        atomicWrite(os.path.join(folder, name), lambda f: f.write(text.encode("utf-8")))


def _removeFolder(path):
    """
    Remove a domain's or account's folder however deep its mailboxes and
    files go (C{shutil.rmtree} recurses once a level).

    @raise DirectoryError: when something could not be removed.
    """
    maildir.removeTree(path)
    if os.path.lexists(path):
        raise DirectoryError("could not remove all of %s" % (path,))
