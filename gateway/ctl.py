# -*- test-case-name: tests.test_ctl -*-
"""
C{gatewayctl}: administer domains, accounts and aliases, deliver mail from
an MTA, and prepare a fresh installation.  Changes are written to the data
root and a running server sees them at once.

Exit codes follow sysexits: 0 done, 64 usage error, 65 bad data, 67 unknown
user (deliver), 73 cannot create, 75 temporary failure (deliver), 77 over
quota (deliver), 78 configuration error.
"""

import argparse
import getpass
import os
import sys

from gateway import ctl_acl
from gateway.config import ConfigurationError, defaultConfig, formatSize, loadConfig, parseSize, sampleConfig
from gateway.cred.passwords import HASH_SCHEMES, hashPassword, isKnownScheme, splitScheme
from gateway.directory.filedir import SERVICES, FileDirectory, splitAddress
from gateway.errors import DirectoryError

EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_NOUSER = 67
EX_CANTCREAT = 73
EX_TEMPFAIL = 75
EX_NOPERM = 77
EX_CONFIG = 78

DEMO_DOMAIN = "example.test"
DEMO_ACCOUNT = "demo@example.test"
DEMO_PASSWORD = "demo"
DEFAULT_SCHEME = "SHA512-CRYPT"


class Failure(Exception):
    """
    Stop with a message and an exit code.
    """

    def __init__(self, message, code=EX_DATAERR):
        Exception.__init__(self, message)
        self.code = code


def _yesNo(text):
    value = text.strip().lower()
    if value in ("yes", "true", "on", "1"):
        return True
    if value in ("no", "false", "off", "0"):
        return False
    raise argparse.ArgumentTypeError("expected yes or no, not %r" % (text,))


def _size(text):
    try:
        parseSize(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError("expected a size such as 100M or 2G, not %r" % (text,))
    return text.strip()


def _quota(text):
    if text.strip().lower() == "default":
        return "default"
    return _size(text)


def _services(text):
    names = frozenset(n for n in text.replace(",", " ").lower().split() if n)
    unknown = names - SERVICES
    if unknown:
        raise argparse.ArgumentTypeError(
            "unknown service %s (known: %s)" % (", ".join(sorted(unknown)), ", ".join(sorted(SERVICES)))
        )
    return names


def _scheme(text):
    scheme = text.strip().upper()
    if scheme not in HASH_SCHEMES:
        raise argparse.ArgumentTypeError("unknown scheme %r (known: %s)" % (text, ", ".join(HASH_SCHEMES)))
    return scheme


def _names(values):
    result = []
    for value in values or ():
        result += [n.strip().lower() for n in value.replace(",", " ").split() if n.strip()]
    return tuple(result)


# -- domain ----------------------------------------------------------------


def _domainSettings(args):
    settings = {}
    if args.alias is not None:
        settings["aliases"] = _names(args.alias)
    if args.address is not None:
        settings["addresses"] = _names(args.address)
    if args.cleartext_login is not None:
        settings["cleartextLogin"] = args.cleartext_login
    if args.default_quota is not None:
        settings["defaultQuota"] = parseSize(args.default_quota)
    if args.default_services is not None:
        settings["defaultServices"] = args.default_services
    if getattr(args, "enabled", None) is not None:
        settings["enabled"] = args.enabled
    return settings


def domainAdd(directory, args, out):
    domain = directory.addDomain(args.name, **_domainSettings(args))
    out.write("domain %s added\n" % (domain.name,))


def domainSet(directory, args, out):
    domain = directory.setDomain(args.name, **_domainSettings(args))
    out.write("domain %s changed\n" % (domain.name,))


def domainRemove(directory, args, out):
    directory.removeDomain(args.name)
    out.write("domain %s removed\n" % (args.name.lower(),))


def domainList(directory, args, out):
    for domain in directory.domains():
        out.write(
            "%s%s aliases=%s addresses=%s cleartext_login=%s default_quota=%s%s\n"
            % (
                domain.name,
                " (main)" if domain.name == directory.mainDomain else "",
                ",".join(domain.aliases) or "-",
                ",".join(domain.addresses) or "-",
                "yes" if domain.cleartextLogin else "no",
                formatSize(domain.defaultQuota),
                "" if domain.enabled else " DISABLED",
            )
        )


# -- account ---------------------------------------------------------------


def _password(args, required):
    if args.password is not None:
        plain = args.password
    elif getattr(args, "password_stdin", False):
        plain = sys.stdin.readline().rstrip("\r\n")
    elif required and sys.stdin.isatty():
        plain = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != plain:
            raise Failure("the passwords differ")
    elif required:
        raise Failure("give --password or --password-stdin", EX_USAGE)
    else:
        return None
    if not plain:
        raise Failure("the password is empty")
    return hashPassword(plain, args.scheme)


def _accountSettings(args):
    settings = {}
    if getattr(args, "alias", None) is not None:
        settings["aliases"] = _names(args.alias)
    if getattr(args, "quota", None) is not None:
        settings["quotaSetting"] = args.quota
        settings["quota"] = None if args.quota == "default" else parseSize(args.quota)
    if getattr(args, "services", None) is not None:
        settings["services"] = args.services
    if getattr(args, "timezone", None) is not None:
        _checkTimezone(args.timezone)
        settings["timezone"] = args.timezone
    if getattr(args, "enabled", None) is not None:
        settings["enabled"] = args.enabled
    return settings


def _checkTimezone(name):
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise Failure("unknown time zone %r" % (name,))


def accountAdd(directory, args, out):
    stored = _password(args, required=True)
    record = directory.addAccount(args.name, stored, **_accountSettings(args))
    out.write("account %s added\n" % (record.address,))


def accountSet(directory, args, out):
    record = directory.setAccount(args.name, **_accountSettings(args))
    out.write("account %s changed\n" % (record.address,))


def accountPasswd(directory, args, out):
    stored = _password(args, required=True)
    record = directory.setAccount(args.name, password=stored)
    out.write("password of %s changed\n" % (record.address,))


def accountRemove(directory, args, out):
    directory.removeAccount(args.name)
    out.write("account %s removed\n" % (args.name.lower(),))


def accountList(directory, args, out):
    domains = directory.domains()
    if args.domain:
        domain = directory.getDomain(args.domain)
        if domain is None:
            raise Failure("no such domain: %s" % (args.domain,))
        domains = [domain]
    for domain in domains:
        accounts = os.path.join(directory.dataRoot, "domains", domain.name, "accounts")
        for local in sorted(os.listdir(accounts)) if os.path.isdir(accounts) else ():
            record = directory.getAccount("%s@%s" % (local, domain.name))
            if record is None:
                continue
            out.write(
                "%s scheme=%s aliases=%s services=%s quota=%s%s\n"
                % (
                    record.address,
                    splitScheme(record.password)[0] or "?",
                    ",".join(record.aliases) or "-",
                    ",".join(sorted(record.services)) or "-",
                    formatSize(record.quota),
                    "" if record.enabled else " DISABLED",
                )
            )


# -- alias -----------------------------------------------------------------


def aliasAdd(directory, args, out):
    directory.addRouterRecord(args.alias, args.target)
    out.write("%s now routes to %s\n" % (args.alias.lower(), args.target.lower()))


def aliasRemove(directory, args, out):
    directory.removeRouterRecord(args.alias)
    out.write("router record %s removed\n" % (args.alias.lower(),))


# -- import ----------------------------------------------------------------


def importPasswd(directory, args, out):
    """
    Import a Dovecot passwd-file: C{user:{SCHEME}password:uid:gid:gecos:home:shell:extra}.
    """
    domain = directory.getDomain(args.domain)
    if domain is None:
        raise Failure("no such domain: %s" % (args.domain,))
    try:
        with open(args.file, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise Failure("%s: %s" % (args.file, e.strerror), EX_DATAERR)
    # Check every line before changing anything: a bad line imports nothing.
    entries = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) < 2 or not fields[0]:
            raise Failure("%s:%d: not a passwd-file line" % (args.file, number))
        user, stored = fields[0].strip(), fields[1]
        scheme, _ = splitScheme(stored)
        if scheme is not None and not isKnownScheme(scheme):
            raise Failure("%s:%d: unknown password scheme {%s}" % (args.file, number, scheme))
        address = user if "@" in user else "%s@%s" % (user, domain.name)
        try:
            local, domainName = splitAddress(address)
        except DirectoryError as e:
            raise Failure("%s:%d: %s" % (args.file, number, e))
        # Compare names, not Domain objects: the directory reloads them after
        # every change.
        owner = directory.getDomain(domainName)
        if owner is None or owner.name != domain.name:
            raise Failure("%s:%d: %s is not in domain %s" % (args.file, number, address, domain.name))
        entries.append(("%s@%s" % (local, domain.name), stored))
    added = changed = 0
    for address, stored in entries:
        if directory.getAccount(address) is None:
            directory.addAccount(address, stored)
            added += 1
        else:
            directory.setAccount(address, password=stored)
            changed += 1
    out.write("%d accounts added, %d passwords updated\n" % (added, changed))


# -- deliver, alert ----------------------------------------------------------


def deliverCommand(directory, args, out, config):
    from gateway.cred.realm import GatewayRealm
    from gateway.lmtp.delivery import deliver, findRecipient

    data = sys.stdin.buffer.read() if args.input is None else open(args.input, "rb").read()
    realm = GatewayRealm(directory)
    worst = EX_OK
    for address in args.recipients:
        recipient = findRecipient(directory, address)
        if recipient is None:
            sys.stderr.write("gatewayctl deliver: %s: unknown user\n" % (address,))
            worst = max(worst, EX_NOUSER)
            continue
        result = deliver(realm, recipient, data)
        if result.ok:
            continue
        sys.stderr.write("gatewayctl deliver: %s: %s\n" % (address, result.text))
        worst = max(worst, EX_TEMPFAIL if result.temporary else EX_NOPERM)
    return worst


def alertCommand(directory, args, out):
    text = " ".join(args.text).strip()
    if not text:
        raise Failure("the alert text is empty", EX_USAGE)
    record = directory.resolve(args.account)
    if record is None:
        raise Failure("no such account: %s" % (args.account,), EX_NOUSER)
    directory.addAlert(record.address, text)
    out.write("alert queued for %s\n" % (record.address,))


# -- init-demo, sample-config ------------------------------------------------


def initDemo(directory, args, out, config):
    """
    Prepare a fresh installation: a self-signed certificate if there is none,
    and the demo domain and account if the data root has no domain.
    """
    from gateway.tlscert import makeSelfSigned

    cert, key = config["tls", "certificate"], config["tls", "private_key"]
    if not os.path.exists(cert) and not os.path.exists(key):
        makeSelfSigned(cert, key, hostnames=(config["server", "hostname"], DEMO_DOMAIN))
        out.write("created a self-signed certificate: %s\n" % (cert,))
    if directory.domains():
        return EX_OK
    directory.addDomain(DEMO_DOMAIN)
    directory.addAccount(DEMO_ACCOUNT, hashPassword(DEMO_PASSWORD, "CRAM-MD5"))
    ctl_acl.addPublicAccount(directory, DEMO_DOMAIN)
    out.write(
        "created domain %s with account %s, password %r\n" % (DEMO_DOMAIN, DEMO_ACCOUNT, DEMO_PASSWORD)
    )
    return EX_OK


# -- the parser ----------------------------------------------------------------


def _addDomainOptions(parser, adding):
    parser.add_argument("--alias", action="append", help="domain alias name(s), comma-separated; replaces the list")
    parser.add_argument("--address", action="append", help="local IP address(es) assigned to the domain")
    parser.add_argument("--cleartext-login", type=_yesNo, metavar="yes|no",
                        help="allow clear-text passwords without TLS (default: no)")
    parser.add_argument("--default-quota", type=_size, metavar="SIZE", help="default account quota, e.g. 1G")
    parser.add_argument("--default-services", type=_services, metavar="LIST",
                        help="services new accounts get (imap,pop3,http,ftp,lmtp)")
    if not adding:
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--enable", dest="enabled", action="store_const", const=True)
        group.add_argument("--disable", dest="enabled", action="store_const", const=False)


def _addAccountOptions(parser, adding):
    parser.add_argument("--alias", action="append", help="account alias(es), comma-separated; replaces the list")
    parser.add_argument("--quota", type=_quota, metavar="SIZE",
                        help="storage quota for mail and files (e.g. 500M, unlimited, or default)")
    parser.add_argument("--services", type=_services, metavar="LIST", help="enabled services")
    parser.add_argument("--timezone", metavar="ZONE", help="IANA time zone for calendars, e.g. Europe/Berlin")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--enable", dest="enabled", action="store_const", const=True)
    group.add_argument("--disable", dest="enabled", action="store_const", const=False)


def _addPasswordOptions(parser):
    parser.add_argument("--password", help="the new password (visible to other users of this machine: "
                        "prefer --password-stdin)")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    parser.add_argument("--scheme", type=_scheme, default=DEFAULT_SCHEME,
                        help="password scheme (default %s; CRAM-MD5 allows CRAM-MD5 logins)" % (DEFAULT_SCHEME,))


def makeParser():
    parser = argparse.ArgumentParser(prog="gatewayctl", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--config", "-c", default="etc/gateway.ini", help="configuration file (default %(default)s)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    domain = commands.add_parser("domain", help="add, change, remove and list domains").add_subparsers(
        dest="action", metavar="ACTION")
    domain.required = True
    p = domain.add_parser("add", help="add a domain")
    p.add_argument("name")
    _addDomainOptions(p, True)
    p.set_defaults(run=domainAdd)
    p = domain.add_parser("set", help="change a domain's settings")
    p.add_argument("name")
    _addDomainOptions(p, False)
    p.set_defaults(run=domainSet)
    p = domain.add_parser("remove", help="remove a domain with all its accounts and their data")
    p.add_argument("name")
    p.set_defaults(run=domainRemove)
    p = domain.add_parser("list", help="list domains")
    p.set_defaults(run=domainList)

    account = commands.add_parser("account", help="add, change, remove and list accounts").add_subparsers(
        dest="action", metavar="ACTION")
    account.required = True
    p = account.add_parser("add", help="add an account NAME@DOMAIN")
    p.add_argument("name", metavar="NAME@DOMAIN")
    _addPasswordOptions(p)
    _addAccountOptions(p, True)
    p.set_defaults(run=accountAdd)
    p = account.add_parser("set", help="change an account's settings")
    p.add_argument("name", metavar="NAME@DOMAIN")
    _addAccountOptions(p, False)
    p.set_defaults(run=accountSet)
    p = account.add_parser("passwd", help="set an account's password")
    p.add_argument("name", metavar="NAME@DOMAIN")
    _addPasswordOptions(p)
    p.set_defaults(run=accountPasswd)
    p = account.add_parser("remove", help="remove an account and all its mail and files")
    p.add_argument("name", metavar="NAME@DOMAIN")
    p.set_defaults(run=accountRemove)
    p = account.add_parser("list", help="list accounts")
    p.add_argument("domain", nargs="?")
    p.set_defaults(run=accountList)

    alias = commands.add_parser("alias", help="router records: route an address to an account").add_subparsers(
        dest="action", metavar="ACTION")
    alias.required = True
    p = alias.add_parser("add", help="route ALIAS@DOMAIN to TARGET@DOMAIN (any domain)")
    p.add_argument("alias", metavar="ALIAS@DOMAIN")
    p.add_argument("target", metavar="TARGET@DOMAIN")
    p.set_defaults(run=aliasAdd)
    p = alias.add_parser("remove", help="remove a router record")
    p.add_argument("alias", metavar="ALIAS@DOMAIN")
    p.set_defaults(run=aliasRemove)

    p = commands.add_parser("import-passwd", help="import accounts from a Dovecot passwd-file")
    p.add_argument("file")
    p.add_argument("--domain", required=True, help="domain of names without @domain")
    p.set_defaults(run=importPasswd)

    p = commands.add_parser("deliver", help="deliver a message from standard input (for an MTA)")
    p.add_argument("recipients", nargs="+", metavar="RECIPIENT")
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.set_defaults(run=deliverCommand, needsConfig=True)

    p = commands.add_parser("alert", help="queue an alert shown to the account at its next IMAP login")
    p.add_argument("account")
    p.add_argument("text", nargs="+")
    p.set_defaults(run=alertCommand)

    p = commands.add_parser("init-demo", help="create a certificate and the demo account if missing")
    p.set_defaults(run=initDemo, needsConfig=True)

    ctl_acl.addParser(commands)

    p = commands.add_parser("sample-config", help="print the sample configuration (every option)")
    p.set_defaults(run=None)
    return parser


def main(argv=None, out=None):
    out = out or sys.stdout
    parser = makeParser()
    args = parser.parse_args(argv)
    if args.command == "sample-config":
        out.write(sampleConfig())
        return EX_OK
    try:
        if os.path.exists(args.config) or args.config != "etc/gateway.ini":
            config = loadConfig(args.config)
        else:
            config = defaultConfig()
    except ConfigurationError as e:
        sys.stderr.write("gatewayctl: configuration error: %s\n" % (e,))
        return EX_CONFIG
    dataRoot = config.dataRoot()
    os.makedirs(dataRoot, mode=0o750, exist_ok=True)
    directory = FileDirectory(dataRoot, config["server", "main_domain"])
    try:
        if getattr(args, "needsConfig", False):
            result = args.run(directory, args, out, config)
        else:
            result = args.run(directory, args, out)
    except Failure as e:
        sys.stderr.write("gatewayctl: %s\n" % (e,))
        return e.code
    except DirectoryError as e:
        sys.stderr.write("gatewayctl: %s\n" % (e,))
        return EX_DATAERR
    except OSError as e:
        sys.stderr.write("gatewayctl: %s\n" % (e,))
        return EX_CANTCREAT
    return result or EX_OK


def run():
    sys.exit(main())


if __name__ == "__main__":
    run()
