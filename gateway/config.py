# -*- test-case-name: tests.test_config -*-
"""
The one configuration schema: every option with its section, type, default
and help text.  Reading a file, the sample C{etc/gateway.ini} and the
validation messages all come from L{SCHEMA}.

Listeners are Twisted server endpoint strings, several per protocol, one per
line or separated by spaces (C{tcp:1143:interface=127.0.0.1}); C{ssl:}
endpoints take the certificate of the C{[tls]} section unless they name their
own C{privateKey}/C{certKey}.
"""

import configparser
import os
import textwrap

import attr

from gateway.errors import ConfigurationError

LOG_LEVELS = ("debug", "info", "warn", "error", "critical")


def _bool(text):
    value = text.strip().lower()
    if value in ("1", "yes", "true", "on"):
        return True
    if value in ("0", "no", "false", "off"):
        return False
    raise ValueError("expected yes or no, not %r" % (text,))


def _int(text):
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError("expected a whole number, not %r" % (text,))


def _nonNegativeInt(text):
    value = _int(text)
    if value < 0:
        raise ValueError("expected 0 or more, not %r" % (text,))
    return value


def _float(text):
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError("expected a number, not %r" % (text,))


def _nonNegativeFloat(text):
    value = _float(text)
    if value < 0:
        raise ValueError("expected 0 or more, not %r" % (text,))
    return value


#: SASL mechanisms C{[auth] mechanisms} may name (gateway.cred.forms knows
#: what each needs stored).
MECHANISMS = ("PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5")


def _mechanisms(text):
    names = []
    for name in text.replace(",", " ").upper().split():
        if name not in MECHANISMS:
            raise ValueError("unknown mechanism %r (known: %s)" % (name, ", ".join(MECHANISMS)))
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError("name at least one mechanism")
    return tuple(names)


def _str(text):
    return text.strip()


def _list(text):
    return tuple(text.split())


_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parseSize(text):
    """
    Parse a byte size such as C{10M}, C{1G}, C{512000}; C{unlimited} or an
    empty value is C{None}.
    """
    value = text.strip().upper().removesuffix("B")
    if value in ("", "UNLIMITED", "NONE"):
        return None
    unit = value[-1] if value[-1] in _SIZE_UNITS else ""
    number = value[: len(value) - len(unit)]
    try:
        result = int(float(number) * _SIZE_UNITS[unit])
    except (ValueError, OverflowError):
        raise ValueError("expected a size such as 100M or 2G, not %r" % (text,))
    if result < 0:
        raise ValueError("a size cannot be negative: %r" % (text,))
    return result


def formatSize(value):
    if value is None:
        return "unlimited"
    for unit in ("T", "G", "M", "K"):
        if value and value % _SIZE_UNITS[unit] == 0:
            return "%d%s" % (value // _SIZE_UNITS[unit], unit)
    return str(value)


def _workers(text):
    """
    C{auto}: one worker per CPU; otherwise a number from 1 (one process).
    """
    text = text.strip().lower()
    if text == "auto":
        return max(1, os.cpu_count() or 1)
    value = int(text)
    if value < 1:
        raise ValueError("expected auto or a number from 1")
    return value


def _level(text):
    value = text.strip().lower()
    if value not in LOG_LEVELS:
        raise ValueError("expected one of %s, not %r" % (", ".join(LOG_LEVELS), text))
    return value


def _choice(*values):
    def parse(text):
        value = text.strip().lower()
        if value not in values:
            raise ValueError("expected one of %s, not %r" % (", ".join(values), text))
        return value

    return parse


def _tlsVersion(text):
    value = text.strip()
    if value not in ("1.2", "1.3"):
        raise ValueError("expected 1.2 or 1.3, not %r" % (text,))
    return value


def _outgoing(text):
    """
    C{HOST:PORT[:STARTTLS|SSL]} (the default socket type: STARTTLS, or SSL
    on port 465), or nothing.

    @return: C{(host, port, socketType)} or C{None}.
    """
    value = text.strip()
    if not value:
        return None
    parts = value.split(":")
    if len(parts) not in (2, 3) or not parts[0]:
        raise ValueError("expected HOST:PORT[:STARTTLS|SSL], not %r" % (text,))
    try:
        port = int(parts[1])
    except ValueError:
        raise ValueError("not a port number: %r" % (parts[1],)) from None
    if not 0 < port < 65536:
        raise ValueError("not a port number: %r" % (parts[1],))
    socketType = parts[2].upper() if len(parts) == 3 else ("SSL" if port == 465 else "STARTTLS")
    if socketType not in ("STARTTLS", "SSL"):
        raise ValueError("socket type must be STARTTLS or SSL, not %r" % (parts[2],))
    return (parts[0], port, socketType)


def _portRange(text):
    value = text.strip()
    if not value:
        return None
    try:
        low, high = (int(part) for part in value.split("-"))
    except ValueError:
        raise ValueError("expected a range such as 50000-50100, not %r" % (text,))
    if not 0 < low <= high < 65536:
        raise ValueError("not a valid port range: %r" % (text,))
    return (low, high)


@attr.s(frozen=True)
class Option:
    section = attr.ib()
    name = attr.ib()
    parse = attr.ib()
    default = attr.ib()  # the text as written in the file
    help = attr.ib()
    #: A file or folder: a relative value is taken relative to the folder
    #: of the configuration file (C{-} stays as it is).
    path = attr.ib(default=False)


#: Where C{twistd gateway} and C{gatewayctl} look for the configuration
#: when C{--config} is not given.
DEFAULT_CONFIG_PATH = "etc/gateway.ini"


def _protocol(name, listen, description):
    return [
        Option(name, "enabled", _bool, "yes", "Serve %s at all." % (description,)),
        Option(
            name,
            "listen",
            _list,
            listen,
            "Where %s listens: Twisted endpoint strings, one per line." % (description,),
        ),
        Option(
            name, "log_level", _level, "info",
            "Least severe %s event to log (debug, info, warn, error)." % (description,),
        ),
    ] + _limits(name, description.split(" (")[0])


#: The connection limits service.py enforces for a protocol's listeners
#: (L{gateway.admin.limits}): section -> C{[(option, default)]}; help in L{_LIMIT_HELP}.
_LIMITS = {
    "imap": [("max_connections_per_address", "50"), ("login_timeout", "60"),
             ("request_timeout", "20"), ("min_data_rate", "500")],
    "pop3": [("max_connections_per_address", "20"), ("login_timeout", "60"),
             ("request_timeout", "20"), ("min_data_rate", "500")],
    "http": [("max_connections", "2000"), ("max_connections_per_address", "50"), ("idle_timeout", "60"),
             ("request_timeout", "20"), ("min_data_rate", "500")],
    "lmtp": [("max_connections", "200"), ("max_connections_per_address", "100"),
             ("request_timeout", "60"), ("min_data_rate", "500")],
}

_LIMIT_HELP = {
    "max_connections": "Most %s connections at once.",
    "max_connections_per_address": "Most %s connections at once from one client address; 0: no limit.",
    "login_timeout": "Seconds from connecting to logging in that %s clients have; 0: no limit.",
    "idle_timeout": "Seconds an idle %s connection is kept between requests.",
    "request_timeout": "Seconds that %s commands, literals or requests that have begun to arrive may take,"
                       " plus one second for every min_data_rate bytes; a slower client is disconnected"
                       " (0: no limit).",
    "min_data_rate": "Bytes per second that extend request_timeout for %s input still arriving.",
}


def _limits(name, description):
    return [Option(name, option, _int, default, _LIMIT_HELP[option] % (description,))
            for option, default in _LIMITS.get(name, ())]


SCHEMA = [
    Option("server", "data_root", _str, "../var",
           "Folder that holds every domain, account, mailbox and file. Relative"
           " paths in this file are relative to the folder this file is in.",
           path=True),
    Option("server", "main_domain", _str, "example.test",
           "The main domain: login names without a domain that come in on an"
           " address no domain is assigned to belong to it."),
    Option("server", "log_file", _str, "",
           "File the server log is written to, besides twistd's own log (empty: none); SIGUSR1"
           " opens it again by name, after logrotate has moved it.", path=True),
    Option("server", "listen_backlog", _int, "1024",
           "Connections the kernel queues on each listener before the server accepts them"
           " (an endpoint's own backlog= wins; the kernel caps it at net.core.somaxconn)."),
    Option("server", "workers", _workers, "auto",
           "Worker processes serving the listeners, over one data root: auto is one per CPU,"
           " 1 keeps everything in one process.  A parent process owns the listening sockets,"
           " restarts a worker that dies and passes signals on (see Workers in the README)."),
    Option("server", "cpu_affinity", _choice("auto", "off"), "auto",
           "auto keeps each worker (or the single process) on one of the CPUs the server may use,"
           " worker K on the K-th: a Python process runs Python on one CPU at a time, and its threads"
           " spread over several spend their time handing the interpreter lock across CPUs (on 2"
           " CPUs imaptest got a third more IMAP commands done with auto).  off leaves every thread"
           " where the kernel puts it.  Linux only; takes effect at restart."),
    Option("server", "drain_seconds", _float, "10",
           "On SIGTERM, seconds the IMAP, POP3, LMTP and FTP sessions get to end: each is told to"
           " go (IMAP * BYE, POP3 -ERR, LMTP and FTP 421) once the command it has in flight is"
           " answered (an LMTP message once delivered, an FTP transfer once done); those still open"
           " then are closed.  The same in every worker process."),
    Option("server", "release_idle_after", _nonNegativeInt, "60",
           "Seconds after which what nobody used is let go: an account's open mail index (and its"
           " writer thread) when no session, delivery or request holds the account, pool threads,"
           " sort keys, kept message structures, FETCH plans and free/busy caches; something idle"
           " goes between one and two such periods"
           " after its last use, and the memory back to the system.  0 keeps them (until the limits"
           " of each are reached)."),
    Option("server", "replace_idle_workers", _bool, "yes",
           "With more than one worker: a worker that had no connection for two periods of"
           " release_idle_after and whose memory grew by more than replace_growth percent since it"
           " started is replaced by a new process (the parent keeps the listening sockets: nothing"
           " is refused meanwhile).  A Python process keeps part of the memory a busy period took;"
           " a new one starts small."),
    Option("server", "replace_growth", _nonNegativeFloat, "10",
           "Percent by which an idle worker's memory must have grown to be replaced (see"
           " replace_idle_workers)."),
    Option("server", "hostname", _str, "localhost",
           "Name this server gives itself in greetings and client autoconfiguration."),
    Option("server", "log_level", _level, "info",
           "Least severe event to log for everything that has no level of its own."),
    Option("tls", "certificate", _str, "../var/tls/cert.pem",
           "PEM certificate (chain) for STARTTLS, STLS, AUTH TLS and ssl: listeners.", path=True),
    Option("tls", "private_key", _str, "../var/tls/key.pem",
           "PEM private key of that certificate.", path=True),
    Option("tls", "minimum_version", _tlsVersion, "1.2",
           "Oldest TLS version accepted: 1.2 or 1.3."),
    Option("tls", "engine", _choice("auto", "rustls", "openssl"), "auto",
           "TLS library of the ssl: listeners and of STARTTLS, STLS and AUTH TLS: rustls (the rtls"
           " package: an idle connection takes 8 kB of memory instead of 22; TLS 1.2 only with"
           " ECDHE and AES-GCM or ChaCha20; no TLS session resumption), openssl (also the CBC"
           " ciphers some old clients need, and resumed sessions), or auto: rustls when rtls is"
           " installed, as it is with gateway, else openssl.  FTP data connections use OpenSSL"
           " either way."),
    Option("auth", "checker", _str, "gateway.cred.checkers.DirectoryChecker",
           "Credentials checker class (dotted name); it is built with the"
           " directory and this configuration."),
    Option("auth", "mechanisms", _mechanisms, "PLAIN LOGIN SCRAM-SHA-256 CRAM-MD5",
           "SASL mechanisms offered, in this order (PLAIN, LOGIN, SCRAM-SHA-256,"
           " CRAM-MD5).  Setting a password stores every form these need; a domain"
           " can narrow the list (gatewayctl domain set D --mechanisms ...)."),
    Option("auth", "failure_delay", _float, "1.0",
           "Seconds the answer to a failed login is delayed; it doubles with"
           " each further failure from the same address."),
    Option("auth", "max_failure_delay", _float, "15.0",
           "Longest delay, in seconds, after repeated failures."),
    Option("auth", "penalty_after", _int, "5",
           "Failures from one address (or logins from it under way at once) after which every further"
           " login from it, right or wrong and on any connection, waits its turn before it is checked:"
           " one after the other, each the failure delay after the previous one."),
    Option("auth", "log_level", _level, "info",
           "Least severe authentication event to log (logins are logged at info)."),
    Option("auth", "login_referrals", _bool, "no",
           "Answer an IMAP login of a name that a router record sends to another host (alias ="
           " name@host.example, a domain not held here) with NO [REFERRAL imap://...] (RFC 2221),"
           " after the delay of a failure.  That host's passwords are not known here, so the answer"
           " tells whoever tries that the name is routed there: leave it off where router records"
           " are not public knowledge."),
    Option("admin", "enabled", _bool, "yes",
           "Serve the admin listener: /metrics (Prometheus text format) and /sessions (JSON, for gatewayctl who)."),
    Option("admin", "listen", _list, "tcp:8200:interface=127.0.0.1",
           "Where the admin listener listens: Twisted endpoint strings. It has no authentication:"
           " keep it on loopback or a private network."),
] + _protocol(
    "imap", "tcp:1143:interface=127.0.0.1 ssl:1993:interface=127.0.0.1", "IMAP"
) + [
    Option("imap", "idle_timeout", _int, "1800",
           "Seconds of inactivity after which an IMAP session is logged out (RFC 3501: at least 1800)."),
    Option("imap", "max_line_length", parseSize, "64K",
           "Longest command line accepted; longer lines get BAD."),
    Option("imap", "max_message_size", parseSize, "50M",
           "Largest message APPEND accepts (advertised as APPENDLIMIT)."),
    Option("imap", "max_connections", _int, "5000", "Most IMAP connections at once."),
    Option("imap", "xmapi", _bool, "yes",
           "Announce the XMAPI capability (docs/xmapi.md), with which a groupware connector takes its XMAPI"
           " path; no hides it (the commands are served either way)."),
] + _protocol(
    "pop3", "tcp:1110:interface=127.0.0.1 ssl:1995:interface=127.0.0.1", "POP3"
) + [
    Option("pop3", "idle_timeout", _int, "600", "Seconds of inactivity after which a POP3 session is closed."),
    Option("pop3", "max_connections", _int, "1000", "Most POP3 connections at once."),
    Option("pop3", "lock_session", _bool, "yes",
           "Allow one POP3 session per mailbox at a time in this process; a second one gets -ERR [IN-USE]."),
] + _protocol(
    "http", "tcp:8100:interface=127.0.0.1 ssl:9100:interface=127.0.0.1",
    "HTTP (personal web sites, free/busy, autoconfiguration)",
) + [
    Option("http", "directory_listings", _bool, "no",
           "List a folder's files when it has no index.html."),
    Option("http", "freebusy_weeks", _int, "8",
           "Length, in weeks from the start of today, of the default free/busy window."),
    Option("http", "access_log", _str, "-",
           "File for the request log in common log format; - logs through the server log.", path=True),
    Option("http", "autoconfig_outgoing", _outgoing, "",
           "The outgoing (SMTP submission) server mail clients are told of by autoconfiguration, as"
           " HOST:PORT[:STARTTLS|SSL] (empty: none is named; clients then ask their user)."),
    Option("http", "max_upload_size", parseSize, "100M",
           "Largest request body (a PUT) accepted; a larger one is refused with 413 before"
           " it is stored anywhere (unlimited: no limit but the storage quota)."),
] + _protocol("ftp", "tcp:2121:interface=127.0.0.1", "FTP and FTPS") + [
    Option("ftp", "passive_ports", _portRange, "",
           "Port range for passive data connections, such as 50000-50100; empty takes any free port."),
    Option("ftp", "passive_address", _str, "",
           "Address announced in PASV replies (for servers behind NAT); empty announces the local address."),
    Option("ftp", "idle_timeout", _int, "900", "Seconds of inactivity after which an FTP session is closed."),
    Option("ftp", "max_connections", _int, "200", "Most FTP connections at once."),
    Option("ftp", "max_connections_per_account", _int, "10", "Most FTP sessions one account may have at once."),
    Option("ftp", "max_connections_per_address", _int, "10",
           "Most FTP connections from one client address at once (0: no limit), so that one host cannot "
           "take every place of max_connections."),
    Option("ftp", "login_timeout", _int, "60",
           "Seconds a new FTP connection has to log in, however busy it keeps; then it is closed (0: no limit "
           "but idle_timeout)."),
    Option("ftp", "keep_partial_uploads", _bool, "yes",
           "Keep what arrived of an upload that was cut off (ABOR, a lost connection, a protected one closed "
           "without TLS close_notify) under the file's name, counted in the quota, so the client can resume "
           "it with REST (lftp put -c, curl -C -), as vsftpd and pyftpdlib do; the reply is still 426.  "
           "no: such an upload leaves the old file as it was (APPE and REST writes keep what arrived either way)."),
] + _protocol(
    "lmtp", "tcp:2424:interface=127.0.0.1", "LMTP delivery (for the MTA)"
) + [
    Option("lmtp", "max_message_size", parseSize, "50M",
           "Largest message LMTP accepts (SIZE extension)."),
    Option("lmtp", "timeout", _int, "300", "Seconds an idle LMTP connection is kept."),
    Option("lmtp", "delivered_to", _choice("always", "single"), "always",
           "always: every delivered copy starts with Return-Path and a Delivered-To header naming its"
           " recipient (each copy is written on its own); single: Delivered-To only when a transaction"
           " has one recipient, as Dovecot does, so that all recipients share one file (hard links)."),
    Option("socketmap", "enabled", _bool, "no",
           "Answer Postfix socketmap lookups (maps virtual and domain), so that Postfix refuses"
           " unknown recipients at RCPT time."),
    Option("socketmap", "listen", _list, "tcp:2425:interface=127.0.0.1",
           "Where the socketmap service listens: Twisted endpoint strings, one per line (keep it private)."),
    Option("socketmap", "log_level", _level, "info",
           "Least severe socketmap event to log (each lookup is logged at debug)."),
    Option("socketmap", "timeout", _int, "300", "Seconds an idle socketmap connection is kept."),
    Option("debug", "memory_reports", _choice("no", "yes", "tracemalloc"), "no",
           "yes: each SIGUSR2 writes a memory report (memory-PID-N.txt: the resident set by kind of mapping,"
           " pymalloc's arenas, live objects by type against start-up) beside [server] log_file, or in the"
           " working folder without one; tracemalloc: also trace every allocation from start-up (slower, more"
           " memory) and report what grew, by line and call stack, with a tracemalloc snapshot."),
]


def _resolve(option, value, folder):
    if option.path and isinstance(value, str) and value and value != "-" and folder is not None:
        return os.path.normpath(os.path.join(folder, os.path.expanduser(value)))
    return value


def defaultConfig(path=DEFAULT_CONFIG_PATH):
    """
    The configuration every option at its default, relative paths taken
    relative to the folder of C{path} (as if that file held the defaults;
    C{None} leaves them relative).
    """
    folder = os.path.dirname(os.path.abspath(path)) if path is not None else None
    return Config({(o.section, o.name): _resolve(o, o.parse(o.default), folder) for o in SCHEMA})


def loadConfigOrDefaults(path, given):
    """
    The configuration for a command line: the file at C{path}, or, when
    C{--config} was not C{given} and there is no file there, the defaults
    (with C{defaulted} set, for the caller to announce in one log line).

    @param given: C{True} when the user named C{path} (a missing file is an
        error then).
    @raise ConfigurationError: see L{loadConfig}.
    """
    if not given and not os.path.exists(path):
        config = defaultConfig(path)
        config.defaulted = True
        return config
    return loadConfig(path)


class Config:
    """
    Parsed configuration: C{config['imap', 'listen']}, or
    C{config.section('imap')} for a dict of one section.
    """

    #: C{True} when no file was read (see L{loadConfigOrDefaults}).
    defaulted = False

    def __init__(self, values, path=None):
        self._values = values
        self.path = path

    def __getitem__(self, key):
        return self._values[key]

    def get(self, section, name, default=None):
        return self._values.get((section, name), default)

    def section(self, name):
        return {k[1]: v for k, v in self._values.items() if k[0] == name}

    def sections(self):
        seen = []
        for option in SCHEMA:
            if option.section not in seen:
                seen.append(option.section)
        return seen

    def dataRoot(self):
        """
        The data root as an absolute path.
        """
        return os.path.abspath(self["server", "data_root"])


def loadConfig(path):
    """
    Read and validate a configuration file.

    @raise ConfigurationError: with one line naming the option and the problem.
    """
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except FileNotFoundError:
        raise ConfigurationError("%s: configuration file not found" % (path,))
    except (configparser.Error, UnicodeDecodeError) as e:
        message = str(e).splitlines()[0]
        raise ConfigurationError("%s: %s" % (path, message))
    known = {(o.section, o.name): o for o in SCHEMA}
    knownSections = {o.section for o in SCHEMA}
    folder = os.path.dirname(os.path.abspath(path))
    values = {key: _resolve(o, o.parse(o.default), folder) for key, o in known.items()}
    for section in parser.sections():
        if section not in knownSections:
            raise ConfigurationError("%s: unknown section [%s]" % (path, section))
        for name, text in parser.items(section):
            option = known.get((section, name))
            if option is None:
                raise ConfigurationError("%s: [%s] unknown option %r" % (path, section, name))
            try:
                values[section, name] = _resolve(option, option.parse(text), folder)
            except ValueError as e:
                raise ConfigurationError("%s: [%s] %s: %s" % (path, section, name, e))
    return Config(values, path)


def sampleConfig():
    """
    The text of C{etc/gateway.ini}: every option at its default, with its help.
    """
    lines = [
        "# gateway configuration.  Every option is shown at its default value.",
        "# Generated from gateway/config.py (gatewayctl sample-config); edit freely.",
    ]
    section = None
    for option in SCHEMA:
        if option.section != section:
            section = option.section
            lines += ["", "[%s]" % (section,)]
        lines += ["# " + line for line in textwrap.wrap(option.help, 76)]
        default = option.default
        if option.parse is _list and len(default.split()) > 1:
            default = "\n    ".join([""] + default.split())
        lines.append(("%s = %s" % (option.name, default)).replace(" \n", "\n").rstrip(" "))
    return "\n".join(lines) + "\n"
