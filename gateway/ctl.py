# -*- test-case-name: tests.test_ctl -*-
"""
C{gatewayctl}: administer domains, accounts and aliases, deliver mail from
an MTA, and prepare a fresh installation.  Changes are written to the data
root and a running server sees them at once.

Exit codes follow sysexits: 0 done, 1 problems found (doctor), 64 usage error, 65 bad data, 67 unknown
user (deliver), 73 cannot create, 75 temporary failure (deliver), 77 over
quota (deliver), 78 configuration error.
"""

import argparse
import getpass
import os
import re
import sys

from gateway import ctl_acl, ctl_backup
from gateway.config import (
    DEFAULT_CONFIG_PATH,
    MECHANISMS,
    ConfigurationError,
    formatSize,
    loadConfigOrDefaults,
    parseSize,
    sampleConfig,
)
from gateway.cred import forms
from gateway.cred.checkers import accountMechanisms, accountsMissingForms
from gateway.cred.passwords import HASH_SCHEMES, isKnownScheme, splitScheme
from gateway.directory.filedir import SERVICES, FileDirectory, splitAddress
from gateway.errors import DirectoryError
from gateway.mapi import client_agenda

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


def _mechanisms(text):
    names = []
    for name in text.replace(",", " ").upper().split():
        if name not in MECHANISMS:
            raise argparse.ArgumentTypeError("unknown mechanism %r (known: %s)" % (name, ", ".join(MECHANISMS)))
        if name not in names:
            names.append(name)
    return tuple(names)


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
    if args.mechanisms is not None:
        settings["mechanisms"] = args.mechanisms
    return settings


def domainAdd(directory, args, out):
    domain = directory.addDomain(args.name, **_domainSettings(args))
    out.write("domain %s added\n" % (domain.name,))
    # Every domain has its ~public/ namespace (an account nobody logs in as).
    if ctl_acl.addPublicAccount(directory, domain.name) is not None:
        out.write("account public@%s added (shared folders ~public/...; nobody logs in as it)\n" % (domain.name,))


def domainSet(directory, args, out):
    domain = directory.setDomain(args.name, **_domainSettings(args))
    out.write("domain %s changed\n" % (domain.name,))


def _confirmed(args, what):
    if not args.yes:
        raise Failure("this removes %s; run the command again with --yes to do it" % (what,), EX_USAGE)


def domainRemove(directory, args, out):
    domain = directory.getDomain(args.name)
    if domain is None:
        raise Failure("no such domain: %s" % (args.name,))
    _confirmed(args, "domain %s with all its accounts, their mail and files" % (domain.name,))
    directory.removeDomain(args.name)
    out.write("domain %s removed\n" % (args.name.lower(),))


def domainList(directory, args, out):
    for domain in directory.domains():
        out.write(
            "%s%s aliases=%s addresses=%s cleartext_login=%s default_quota=%s%s%s\n"
            % (
                domain.name,
                " (main)" if domain.name == directory.mainDomain else "",
                ",".join(domain.aliases) or "-",
                ",".join(domain.addresses) or "-",
                "yes" if domain.cleartextLogin else "no",
                formatSize(domain.defaultQuota),
                " mechanisms=%s" % (",".join(domain.mechanisms),) if domain.mechanisms else "",
                "" if domain.enabled else " DISABLED",
            )
        )


# -- account ---------------------------------------------------------------


def _mechanismsOf(directory, config, address):
    """
    The mechanisms an account's password must serve: C{[auth] mechanisms}
    narrowed by its domain's setting.
    """
    try:
        domain = directory.getDomain(splitAddress(address)[1])
    except DirectoryError:
        domain = None
    return forms.effectiveMechanisms(config["auth", "mechanisms"], domain)


def _password(args, required, mechanisms):
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
    return forms.makeForms(plain, mechanisms, args.scheme)


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


def accountAdd(directory, args, out, config):
    stored = _password(args, True, _mechanismsOf(directory, config, args.name))
    record = directory.addAccount(args.name, stored, **_accountSettings(args))
    out.write("account %s added\n" % (record.address,))


def accountSet(directory, args, out):
    record = directory.setAccount(args.name, **_accountSettings(args))
    out.write("account %s changed\n" % (record.address,))


def accountPasswd(directory, args, out, config):
    stored = _password(args, True, _mechanismsOf(directory, config, args.name))
    record = directory.setAccount(args.name, password=stored)
    out.write("password of %s changed\n" % (record.address,))


def accountRemove(directory, args, out):
    try:
        local, domainName = splitAddress(args.name)
    except DirectoryError as e:
        raise Failure(str(e))
    if directory.getAccount("%s@%s" % (local, domainName)) is None:
        raise Failure("no such account: %s@%s" % (local, domainName))
    _confirmed(args, "account %s@%s with all its mail and files" % (local, domainName))
    directory.removeAccount(args.name)
    out.write("account %s removed\n" % (args.name.lower(),))


def accountShow(directory, args, out, config):
    try:
        record = directory.getAccount("%s@%s" % splitAddress(args.name))
    except DirectoryError:
        record = None
    if record is None:
        record = directory.resolve(args.name)
    if record is None:
        raise Failure("no such account: %s" % (args.name,), EX_NOUSER)
    offered = accountMechanisms(record, config["auth", "mechanisms"])
    missing = forms.missingMechanisms(record.password, offered)
    rows = [
        ("account", record.address),
        ("enabled", "yes" if record.enabled else "no"),
        ("aliases", ", ".join(record.aliases) or "-"),
        ("services", ", ".join(sorted(record.services)) or "-"),
        ("quota", formatSize(record.quota) + ("" if record.quotaSetting != "default" else " (domain default)")),
        ("timezone", record.timezone),
        ("password", ", ".join("{%s}" % (s,) for s in forms.schemes(record.password)) or "none set"),
        ("mechanisms", ", ".join(m for m in offered if m not in missing) or "none"),
    ]
    if missing:
        rows.append(("cannot use", "%s (set the password again to store every form)" % (", ".join(missing),)))
    for name, value in rows:
        out.write("%-11s %s\n" % (name + ":", value))


def doctor(directory, args, out, config):
    """
    Look for problems an administrator should fix: for now, accounts whose
    stored password cannot serve every mechanism their domain offers.
    """
    problems = 0
    for record, missing in accountsMissingForms(directory, config["auth", "mechanisms"]):
        problems += 1
        out.write(
            "%s: cannot log in with %s (password stored as %s); set it again with"
            " gatewayctl account passwd\n"
            % (record.address, ", ".join(missing), ", ".join("{%s}" % (s,) for s in forms.schemes(record.password))
               or "nothing")
        )
    if problems:
        out.write("%d problem%s found\n" % (problems, "" if problems == 1 else "s"))
        return 1
    out.write("no problems found\n")
    return EX_OK


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
                    ",".join(forms.schemes(record.password)) or "-",
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


def importPasswd(directory, args, out, config):
    """
    Import a Dovecot passwd-file: C{user:{SCHEME}password:uid:gid:gecos:home:shell:extra}.
    A C{{PLAIN}} password is stored in every form the mechanisms need (and
    not as plain text); any other is kept as it is, and the mechanisms it
    cannot serve are reported (C{gatewayctl doctor} lists them later).
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
    mechanisms = forms.effectiveMechanisms(config["auth", "mechanisms"], domain)
    lacking = 0
    for address, stored in entries:
        scheme, data = splitScheme(stored)
        if scheme == "PLAIN" and data:
            stored = forms.makeForms(data, mechanisms)
        elif forms.missingMechanisms(stored, mechanisms):
            lacking += 1
            out.write("%s: cannot log in with %s until its password is set again\n"
                      % (address, ", ".join(forms.missingMechanisms(stored, mechanisms))))
        if directory.getAccount(address) is None:
            directory.addAccount(address, stored)
            added += 1
        else:
            directory.setAccount(address, password=stored)
            changed += 1
    out.write("%d accounts added, %d passwords updated\n" % (added, changed))
    if lacking:
        out.write("%d accounts cannot use every mechanism (gatewayctl doctor lists them)\n" % (lacking,))


def exportPasswd(directory, args, out):
    """
    Write a Dovecot passwd-file (C{user@domain:{SCHEME}data::::::}) with one
    stored form of each account: the form for plain mechanisms, or the one
    of C{--scheme}.  Accounts without such a form are named on stderr.
    """
    if args.domain is not None and directory.getDomain(args.domain) is None:
        raise Failure("no such domain: %s" % (args.domain,))
    domain = directory.getDomain(args.domain).name if args.domain is not None else None
    skipped = 0
    for record in directory.accounts(domain):
        stored = record.password
        if stored == ctl_acl.NO_PASSWORD:
            continue  # nobody logs in as it (a domain's public account)
        if args.scheme is None:
            form = forms.plainForm(stored)
        else:
            form = next((f for f in forms.splitForms(stored) if splitScheme(f)[0] == args.scheme), None)
        if form is None:
            skipped += 1
            sys.stderr.write("gatewayctl: %s has no {%s} password; not exported\n"
                             % (record.address, args.scheme or "usable"))
            continue
        if not form.startswith("{"):
            form = "{%s}%s" % splitScheme(form)
        out.write("%s:%s::::::\n" % (record.address, form))
    return EX_DATAERR if skipped else EX_OK


# -- deliver, alert ----------------------------------------------------------


def deliverCommand(directory, args, out, config):
    data = sys.stdin.buffer.read() if args.input is None else open(args.input, "rb").read()
    if not _canWrite(config.dataRoot()):
        # Run by a user who may read the configuration but not write the
        # data root (Postfix runs mailbox_command as the recipient or as
        # nobody): hand the message to the running server over LMTP.
        return _deliverOverLMTP(config, args.sender, args.recipients, data)
    from gateway.cred.realm import GatewayRealm
    from gateway.lmtp.delivery import deliver, findRecipient

    realm = GatewayRealm(directory)
    worst = EX_OK
    for address in args.recipients:
        recipient = findRecipient(directory, address)
        if recipient is None:
            sys.stderr.write("gatewayctl deliver: %s: unknown user\n" % (address,))
            worst = max(worst, EX_NOUSER)
            continue
        result = deliver(realm, recipient, data, sender=args.sender)
        if result.ok:
            continue
        sys.stderr.write("gatewayctl deliver: %s: %s\n" % (address, result.text))
        worst = max(worst, EX_TEMPFAIL if result.temporary else EX_NOPERM)
    return worst


def _canWrite(folder):
    return os.access(folder, os.W_OK | os.X_OK)


def _lmtpAddress(config):
    """
    Where the running server's LMTP listens, from C{[lmtp] listen}: C{(host,
    port)} for a C{tcp:} endpoint, or a socket path for C{unix:}; C{None}.
    """
    if not config["lmtp", "enabled"]:
        return None
    for description in config["lmtp", "listen"]:
        kind, _, rest = description.partition(":")
        parts = rest.split(":")
        options = dict(part.split("=", 1) for part in parts[1:] if "=" in part)
        if kind == "tcp" and parts[0].isdigit():
            return (options.get("interface", "127.0.0.1"), int(parts[0]))
        if kind == "unix" and parts[0]:
            return parts[0]
    return None


def _deliverOverLMTP(config, sender, recipients, data):
    """
    Deliver through the running server's LMTP listener, with the exit codes
    of a direct delivery (67 unknown user, 75 temporary, 77 refused).
    """
    import smtplib

    address = _lmtpAddress(config)
    if address is None:
        sys.stderr.write("gatewayctl deliver: cannot write %s and no [lmtp] tcp: or unix: listener is"
                         " configured to deliver through\n" % (config.dataRoot(),))
        return EX_TEMPFAIL
    if data.startswith(b"From "):
        data = data.split(b"\n", 1)[1] if b"\n" in data else b""
    try:
        if isinstance(address, str):
            client = smtplib.LMTP(address)
        else:
            client = smtplib.LMTP(address[0], address[1])
        with client:
            refused = client.sendmail(sender or "", recipients, data)
    except smtplib.SMTPRecipientsRefused as e:
        refused = e.recipients
    except (OSError, smtplib.SMTPException) as e:
        sys.stderr.write("gatewayctl deliver: the server's LMTP listener: %s\n" % (e,))
        return EX_TEMPFAIL
    worst = EX_OK
    for recipient, (code, text) in sorted(refused.items()):
        sys.stderr.write("gatewayctl deliver: %s: %d %s\n" % (recipient, code, text.decode("utf-8", "replace")))
        worst = max(worst, EX_TEMPFAIL if 400 <= code < 500 else EX_NOUSER if code == 550 else EX_NOPERM)
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
    directory.addAccount(DEMO_ACCOUNT, forms.makeForms(DEMO_PASSWORD, config["auth", "mechanisms"]))
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
    parser.add_argument("--mechanisms", type=_mechanisms, metavar="LIST",
                        help="SASL mechanisms its accounts may use, a subset of [auth] mechanisms"
                        " (e.g. PLAIN,SCRAM-SHA-256); an empty LIST allows them all")
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
                        help="scheme of the form stored for plain logins (default %s); the forms SCRAM-SHA-256"
                        " and CRAM-MD5 need are stored as well when they are enabled" % (DEFAULT_SCHEME,))


def plainText(text):
    """
    Epytext made fit for C{--help}: markup such as C{C{name}} becomes the
    bare text, and each paragraph one line.

    @return: C{list} of paragraphs.
    """
    text = re.sub(r"[A-Z]\{([^{}]*)\}", r"\1", text)
    return [" ".join(paragraph.split()) for paragraph in re.split(r"\n\s*\n", text.strip()) if paragraph.strip()]


def makeParser():
    paragraphs = plainText(__doc__)
    parser = argparse.ArgumentParser(
        prog="gatewayctl", description=" ".join(paragraphs[:-1]), epilog=paragraphs[-1]
    )
    parser.add_argument("--config", "-c", default=None, metavar="FILE",
                        help="configuration file (default %s; relative paths in it are relative to its folder)"
                        % (DEFAULT_CONFIG_PATH,))
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    from gateway.admin.who import addParser as addWhoParser

    addWhoParser(commands)  # gatewayctl who

    domain = commands.add_parser("domain", help="add, change, remove and list domains").add_subparsers(
        dest="action", metavar="ACTION")
    domain.required = True
    p = domain.add_parser("add", help="add a domain")
    p.add_argument("name")
    _addDomainOptions(p, True)
    p.set_defaults(run=domainAdd, createsDataRoot=True)
    p = domain.add_parser("set", help="change a domain's settings")
    p.add_argument("name")
    _addDomainOptions(p, False)
    p.set_defaults(run=domainSet)
    p = domain.add_parser("remove", help="remove a domain with all its accounts and their data")
    p.add_argument("name")
    p.add_argument("--yes", action="store_true", help="really remove it (required)")
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
    p.set_defaults(run=accountAdd, needsConfig=True)
    p = account.add_parser("set", help="change an account's settings")
    p.add_argument("name", metavar="NAME@DOMAIN")
    _addAccountOptions(p, False)
    p.set_defaults(run=accountSet)
    p = account.add_parser("passwd", help="set an account's password")
    p.add_argument("name", metavar="NAME@DOMAIN")
    _addPasswordOptions(p)
    p.set_defaults(run=accountPasswd, needsConfig=True)
    p = account.add_parser("remove", help="remove an account and all its mail and files")
    p.add_argument("name", metavar="NAME@DOMAIN")
    p.add_argument("--yes", action="store_true", help="really remove it (required)")
    p.set_defaults(run=accountRemove)
    p = account.add_parser("show", help="show an account's settings and the login mechanisms it can use")
    p.add_argument("name", metavar="NAME@DOMAIN")
    p.set_defaults(run=accountShow, needsConfig=True)
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
    p.set_defaults(run=importPasswd, needsConfig=True)

    p = commands.add_parser("export-passwd", help="write a Dovecot passwd-file of the accounts to standard output")
    p.add_argument("domain", nargs="?", help="only this domain's accounts")
    p.add_argument("--scheme", type=_scheme, help="export the stored form of this scheme (such as SCRAM-SHA-256,"
                   " which Dovecot serves PLAIN and SCRAM-SHA-256 from) instead of the form for plain logins")
    p.set_defaults(run=exportPasswd)

    p = commands.add_parser("deliver", help="deliver a message from standard input (for an MTA)")
    p.add_argument("recipients", nargs="+", metavar="RECIPIENT")
    p.add_argument("--sender", "-f", default=None,
                   help="the envelope sender (Postfix: -f \"$SENDER\"); +detail delivery into a mailbox"
                        " other than INBOX needs its p right")
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.set_defaults(run=deliverCommand, needsConfig=True)

    p = commands.add_parser("alert", help="queue an alert shown to the account at its next IMAP login")
    p.add_argument("account")
    p.add_argument("text", nargs="+")
    p.set_defaults(run=alertCommand)

    p = commands.add_parser("init-demo", help="create a certificate and the demo account if missing")
    p.set_defaults(run=initDemo, needsConfig=True, createsDataRoot=True)

    p = commands.add_parser("doctor", help="list problems to fix, such as accounts that cannot use every"
                            " login mechanism (exit status 1 when there are some)")
    p.set_defaults(run=doctor, needsConfig=True)

    ctl_acl.addParser(commands)
    ctl_backup.addParser(commands)
    client_agenda.addParser(commands)

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
    given = args.config is not None
    path = args.config if given else DEFAULT_CONFIG_PATH
    try:
        config = loadConfigOrDefaults(path, given)
    except ConfigurationError as e:
        sys.stderr.write("gatewayctl: configuration error: %s\n" % (e,))
        return EX_CONFIG
    dataRoot = config.dataRoot()
    if config.defaulted:
        sys.stderr.write("gatewayctl: no %s here: using the default configuration (data root %s)\n"
                         % (path, dataRoot))
    if getattr(args, "createsDataRoot", False):
        os.makedirs(dataRoot, mode=0o750, exist_ok=True)
    elif getattr(args, "needsDataRoot", True) and not os.path.isdir(dataRoot):
        sys.stderr.write(
            "gatewayctl: the data root %s does not exist: check [server] data_root in %s, or create it"
            " with gatewayctl init-demo or domain add\n" % (dataRoot, os.path.abspath(path))
        )
        return EX_CONFIG
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
