# -*- test-case-name: tests.test_ftp -*-
"""
The FTP control protocol and its factory.

Written on C{LineReceiver} with a command table (L{gateway.ftp.commands})
rather than by subclassing C{twisted.protocols.ftp.FTP}: that class's
commands call a synchronous C{IFTPShell}, decode names as latin-1, and its
data-channel factory cannot start TLS; nearly every method would have been
overridden.  Its good ideas are kept: C{ftp_VERB} methods, one passive
factory per transfer, a producer per download.

Commands that wait (login, file-system work in threads, transfers) hold the
commands that follow until they are answered, so replies stay in order;
only the table's urgent commands (ABOR, STAT, NOOP, QUIT) run during a
transfer.
"""

import collections
import re
import socket
import time

from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import TimeoutMixin
from zope.interface import implementer

from gateway.cred.credentials import LoginContext, PlainCredentials
from gateway.ftp import commands, data
from gateway.ftp.shell import ShellCommands
from gateway.ftp.workers import Workers
from gateway.interfaces import IAccount, IDrainable
from gateway.logging import getLogger

log = getLogger("ftp")

#: Control characters: refused in arguments (a CR inside a name would come
#: back inside a reply, RFC 959's line end) and never sent in a reply.
#: A tab is allowed in neither: no name or command needs one.
_CONTROL = re.compile("[\x00-\x1f\x7f]")

#: Characters of commands held behind a pending one (pipelined) before and
#: after login; past them the client gets 421 and the connection closes.
MAX_PENDING_BEFORE_LOGIN = 16 * 1024
MAX_PENDING = 1024 * 1024

#: Threads for file-system commands: their own pool, so that downloads
#: (C{SendfileSender} holds a reactor thread for a whole transfer) and slow
#: password hashes in the reactor's pool never hold up a LIST or a CWD, and
#: few, since more threads only add GIL hand-overs.
FS_THREADS = 4


@implementer(IDrainable)
class FTPSession(ShellCommands, LineReceiver, TimeoutMixin):
    """
    One FTP control connection.

    @ivar account: the L{IAccount} once logged in, else C{None}.
    @ivar cwd: the current folder, an absolute client path.
    """

    delimiter = b"\n"
    MAX_LENGTH = 8192
    #: The client's IP address, as the factory counts it.
    peerHost = None
    #: Why the server is stopping, once it is (L{drain}).
    _draining = None

    def __init__(self, factory):
        self.factory = factory
        self.context = factory.context
        self.account = None
        self.user = None
        self.cwd = "/"
        self.protectData = False
        self.pbsz = False
        # RFC 959 section 3.1.1.1: ASCII until the client asks for TYPE I
        # (lftp relies on it: "put -a" sends no TYPE A).
        self.binary = False
        self.restOffset = None
        self.renameFrom = None
        self.data = None  # PassiveListener / ("active", host, port) / None
        self.transfer = None  # a running transfer's state, or None
        self._queue = collections.deque()
        self._queued = 0
        self._busy = False
        self._closing = False
        self._loginContext = None
        self._loginDeadline = None

    # -- connection ------------------------------------------------------

    @property
    def secure(self):
        return self.loginContext().secure

    def loginContext(self):
        """
        The connection's L{LoginContext}, made once, and again when TLS
        starts (it changes C{secure}).
        """
        if self._loginContext is None:
            self._loginContext = LoginContext.fromTransport("ftp", self.transport)
        return self._loginContext

    #: When the connection was made (C{time.time()}), and the control
    #: channel's bytes (data connections are not counted): for the session
    #: list and the line logged when the session ends.
    since = None
    bytesIn = bytesOut = 0

    def connectionMade(self):
        self.since = time.time()
        if hasattr(self.transport, "setTcpNoDelay"):
            # Replies are small and often two in a row (150, 226): without
            # this, Nagle and delayed ACKs add 40 ms to each transfer.
            self.transport.setTcpNoDelay(True)
        try:
            # Clients send ABOR as urgent data (ftplib: the final byte);
            # read it in line, or the command never completes.
            self.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
        except Exception:
            pass
        self.callLater = self.factory.clock.callLater
        self.setTimeout(self.factory.idleTimeout or None)
        if self.factory.loginTimeout:
            # A deadline, not an idle timeout: commands do not move it, so
            # a client that never logs in cannot hold a place for long.
            self._loginDeadline = self.callLater(self.factory.loginTimeout, self._loginTimedOut)
        self.reply(220, "%s FTP server ready" % (self.context.hostname,))

    def _loginTimedOut(self):
        self._loginDeadline = None
        if self.account is None and self.transport is not None and not self.transport.disconnecting:
            self.reply(421, "Login timeout: closing the connection")
            self._closing = True
            self.transport.loseConnection()

    def _cancelLoginDeadline(self):
        if self._loginDeadline is not None and self._loginDeadline.active():
            self._loginDeadline.cancel()
        self._loginDeadline = None

    def connectionLost(self, reason):
        self._cancelLoginDeadline()
        self.setTimeout(None)
        self.closeData(abort=True)
        self._logClosed()
        if self.account is not None:
            self.factory.loggedOut(self.account)
            self.account = None
        self.factory.disconnected(self)

    def _logClosed(self):
        """
        The line every protocol logs when a session ends (as the monitor
        does for the wrapped ones), with the control channel's bytes.
        """
        if self.since is None:
            return
        address = getattr(self.account, "address", None)
        try:
            remote = self.transport.getPeer().host
        except Exception:
            remote = "-"
        emit = log.info if address else log.debug
        emit("session closed: protocol=ftp user={user} remote={remote} duration={duration:.1f}s"
             " bytes_in={bytesIn} bytes_out={bytesOut}", user=address or "-", remote=remote,
             duration=time.time() - self.since, bytesIn=self.bytesIn, bytesOut=self.bytesOut)

    def drain(self, reason):
        """
        The server is stopping: C{421} and the control connection ends, now
        if no command or transfer is under way, else once it has been
        answered (a transfer's C{226}).
        """
        if self.transport is None or self.transport.disconnecting or self._draining is not None:
            return
        self._draining = reason
        if not self._busy and self.transfer is None:
            self._goodbye()

    def _goodbye(self):
        self.reply(421, "%s, closing the control connection" % (self._draining,))
        self._closing = True
        self.transport.loseConnection()

    def timeoutConnection(self):
        if self.transfer is not None:
            # A transfer counts as activity.
            self.resetTimeout()
            return
        self.reply(421, "Idle timeout: closing the connection")
        self.transport.loseConnection()

    def reply(self, code, text, lines=None):
        """
        Send a reply; C{lines} makes it a multi-line one.
        """
        out = []
        text = _CONTROL.sub("?", text)
        if lines:
            out.append("%d-%s" % (code, text))
            out.extend(" " + _CONTROL.sub("?", line) for line in lines)
            out.append("%d End" % (code,))
        else:
            out.append("%d %s" % (code, text))
        payload = ("\r\n".join(out) + "\r\n").encode("utf-8", "surrogateescape")
        self.bytesOut += len(payload)
        data.writeNow(self.transport, payload)

    # -- dispatch --------------------------------------------------------

    def lineLengthExceeded(self, line):
        self.reply(500, "Command line too long")
        return None

    def lineReceived(self, line):
        self.bytesIn += len(line) + 1
        self.resetTimeout()
        line = line.rstrip(b"\r").lstrip(b"\xff\xf4\xf2")
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            text = line.decode("utf-8", "surrogateescape")
        if self._busy and not self._urgent(text):
            self._queue.append(text)
            self._queued += len(text)
            if self._queued > (MAX_PENDING if self.account is not None else MAX_PENDING_BEFORE_LOGIN):
                self._queue.clear()
                self._queued = 0
                self.reply(421, "Too many commands sent ahead: closing the connection")
                self._closing = True
                self.transport.loseConnection()
            return
        self._dispatch(text)

    def _urgent(self, text):
        """
        Whether a command runs while another is pending: during a transfer
        every urgent command does, otherwise only ABOR and QUIT.
        """
        verb = text.partition(" ")[0].upper()
        row = commands.COMMANDS.get(verb)
        return row is not None and row.urgent and (self.transfer is not None or verb in ("ABOR", "QUIT"))

    def _dispatch(self, text):
        verb, _, arg = text.partition(" ")
        verb = verb.upper()
        if verb != "PASS":
            log.debug("command {verb} {arg!r}", verb=verb, arg=arg)
        row = commands.COMMANDS.get(verb)
        if row is None:
            self.reply(500, "Unknown command %r" % (verb[:20],))
            return
        if row.auth and self.account is None:
            self.reply(530, "Log in with USER and PASS first")
            return
        if row.arg is True and not arg:
            self.reply(501, "%s needs an argument" % (verb,))
            return
        if row.arg is False and arg and verb not in ("FEAT", "PASV"):
            self.reply(501, "%s takes no argument" % (verb,))
            return
        if verb != "PASS" and _CONTROL.search(arg):
            # A password may hold anything, and is never echoed.
            self.reply(501, "Control characters (CR, LF, NUL...) are not allowed in %s" % (verb,))
            return
        if verb not in ("REST", "RETR", "STOR", "APPE"):
            self.restOffset = None
        if verb != "RNTO" and verb not in ("RNFR",):
            if self.renameFrom is not None and verb not in ("NOOP", "STAT"):
                self.renameFrom = None
        handler = getattr(self, "ftp_" + commands.ALIASES.get(verb, verb))
        try:
            result = handler(arg)
        except Exception:
            log.failure("FTP command {verb} failed", verb=verb)
            self.reply(451, "Internal error")
            return
        if isinstance(result, defer.Deferred) and not result.called and not self._busy:
            self._busy = True
            result.addErrback(self._internalError, verb)
            result.addBoth(self._done)
        elif isinstance(result, defer.Deferred):
            result.addErrback(self._internalError, verb)

    def _internalError(self, failure, verb):
        log.failure("FTP command {verb} failed", failure, verb=verb)
        if self.transport is not None and not self.transport.disconnecting:
            self.reply(451, "Internal error")

    def _done(self, _):
        self._busy = False
        if self._draining is not None and not self._closing and self.transport is not None:
            self._goodbye()
        while self._queue and not self._busy and not self._closing:
            text = self._queue.popleft()
            self._queued -= len(text)
            self._dispatch(text)

    # -- login -----------------------------------------------------------

    def _cleartextRefused(self):
        if self.secure:
            return False
        return not self.context.cleartextAllowed(self.loginContext().localAddress)

    def ftp_USER(self, arg):
        if self.account is not None:
            self.reply(530, "Already logged in")
            return
        if arg.lower() in ("anonymous", "ftp"):
            self.user = None
            self.reply(530, "Anonymous access is not allowed")
            return
        if self._cleartextRefused():
            self.user = None
            self.reply(530, "Clear-text login is not allowed here: use AUTH TLS first")
            return
        self.user = arg
        self.reply(331, "Password required for %s" % (arg,))

    def ftp_PASS(self, arg):
        if self.account is not None:
            self.reply(230, "Already logged in")
            return
        if self.user is None:
            # A USER refused for clear text leaves no user (and the checker
            # refuses clear text by the account's domain as well).
            self.reply(503, "Send USER first")
            return
        user, self.user = self.user, None
        creds = PlainCredentials(user, arg, self.loginContext(), mechanism="USER")
        d = self.context.portal.login(creds, None, IAccount)
        d.addCallbacks(self._loggedIn, self._loginFailed)
        return d

    def _loggedIn(self, result):
        _iface, account, _logout = result
        if self.transport is None or self.transport.disconnected:
            return
        if not self.factory.loggedIn(account):
            self.reply(421, "Too many connections for this account")
            self._closing = True
            self.transport.loseConnection()
            return
        self.account = account
        self.cwd = "/"
        self._cancelLoginDeadline()
        self.reply(230, "Logged in as %s" % (account.address,))
        # Opening the file store: walk it for its usage (once a minute at
        # most), which removes what uploads cut off by a crash left behind.
        self._run(lambda fs: fs.usage()).addErrback(
            lambda failure: log.failure("File store usage of {address}", failure, address=account.address))

    def _loginFailed(self, failure):
        failure.trap(UnauthorizedLogin)
        self.reply(530, "Login incorrect")

    # -- FTPS (RFC 4217) -------------------------------------------------

    def ftp_AUTH(self, arg):
        if arg.upper() not in ("TLS", "TLS-C", "SSL"):
            self.reply(504, "AUTH %s is not supported; use AUTH TLS" % (arg[:20],))
            return
        if self.context.tls is None:
            self.reply(431, "TLS is not configured on this server")
            return
        if self.secure:
            self.reply(503, "TLS is already on")
            return
        self.reply(234, "AUTH TLS successful")
        # Whatever the client sent after AUTH TLS came in clear text, where
        # anyone on the path could have put it (CVE-2011-0411): drop it,
        # both the lines still buffered and those queued behind a command.
        self.clearLineBuffer()
        self._queue.clear()
        self._queued = 0
        self.transport.startTLS(self.context.tls)
        self._loginContext = None
        # RFC 4217 section 4: a new login follows.
        self.user = None

    def ftp_PBSZ(self, arg):
        if not self.secure:
            self.reply(503, "PBSZ needs a protected control channel (AUTH TLS)")
            return
        self.pbsz = True
        self.reply(200, "PBSZ=0")

    def ftp_PROT(self, arg):
        level = arg.upper()
        if not self.secure:
            self.reply(503, "PROT needs a protected control channel (AUTH TLS)")
        elif not self.pbsz:
            self.reply(503, "Send PBSZ first")
        elif level == "P":
            self.protectData = True
            self.reply(200, "Protection level set to P")
        elif level == "C":
            self.protectData = False
            self.reply(200, "Protection level set to C")
        else:
            self.reply(536 if level in ("S", "E") else 504, "PROT %s is not supported" % (level[:5],))

    # -- small commands --------------------------------------------------

    def ftp_QUIT(self, arg):
        self.reply(221, "Goodbye")
        self._closing = True
        self.transport.loseConnection()

    def ftp_NOOP(self, arg):
        self.reply(200, "OK")

    def ftp_SYST(self, arg):
        self.reply(215, "UNIX Type: L8")

    def ftp_FEAT(self, arg):
        self.reply(211, "Features:", commands.featureLines(self.context.tls is not None))

    def ftp_HELP(self, arg):
        if arg:
            row = commands.COMMANDS.get(arg.strip().upper())
            if row is None:
                self.reply(501, "Unknown command %r" % (arg[:20],))
            else:
                self.reply(214, "Syntax: " + row.help)
            return
        self.reply(214, "The following commands are recognized:", commands.helpLines())

    def ftp_OPTS(self, arg):
        words = arg.upper().split()
        if words and words[0] == "UTF8":
            if len(words) == 1 or words[1] == "ON":
                self.reply(200, "UTF-8 is always on")
            else:
                self.reply(504, "UTF-8 cannot be turned off")
        elif words and words[0] == "MLST":
            self.reply(200, "MLST OPTS type;size;modify;perm;")
        else:
            self.reply(501, "Unknown option")

    def ftp_TYPE(self, arg):
        kind = arg.upper().split()
        if kind and kind[0] == "I" or kind == ["L", "8"]:
            self.binary = True
            self.reply(200, "Type set to I")
        elif kind and kind[0] == "A":
            self.binary = False
            self.reply(200, "Type set to A")
        else:
            self.reply(504, "Type %s is not supported" % (arg[:10],))

    def ftp_MODE(self, arg):
        if arg.upper() == "S":
            self.reply(200, "Mode set to S")
        else:
            self.reply(504, "Only stream mode (S) is supported")

    def ftp_STRU(self, arg):
        if arg.upper() == "F":
            self.reply(200, "Structure set to F")
        else:
            self.reply(504, "Only file structure (F) is supported")

    def ftp_REST(self, arg):
        try:
            offset = int(arg)
            if offset < 0:
                raise ValueError()
        except ValueError:
            self.reply(501, "REST needs a byte offset")
            return
        if not self.binary:
            # Offsets in TYPE A would count converted bytes (as pyftpdlib,
            # resuming needs TYPE I).
            self.reply(501, "Resuming needs binary mode: send TYPE I first")
            return
        self.restOffset = offset
        self.reply(350, "Restarting at %d; send RETR, STOR or APPE" % (offset,))

    def ftp_STAT(self, arg):
        if arg:
            if self.account is None:
                self.reply(530, "Log in with USER and PASS first")
                return
            return self.statPath(arg)
        lines = [
            "Connected to %s" % (self.context.hostname,),
            "Logged in as %s" % (self.account.address,) if self.account else "Not logged in",
            "TYPE: %s, STRUcture: File, MODE: Stream" % ("Image" if self.binary else "ASCII",),
            "Control channel: %s; data channel: %s" % (
                "TLS" if self.secure else "clear", "TLS" if self.protectData else "clear"),
        ]
        if self.transfer is not None:
            lines.append("Transfer in progress: %d bytes" % (self.transfer.progress(),))
        self.reply(211, "FTP server status:", lines)


class _Refuser(Protocol):
    """
    Answers C{421} and closes: the server, or the client's address, has too
    many connections.
    """

    def __init__(self, text="Too many connections, try again later"):
        self.text = text

    def connectionMade(self):
        self.transport.write(b"421 %s\r\n" % (self.text.encode("ascii"),))
        self.transport.loseConnection()


class FTPFactory(ServerFactory):
    """
    Builds L{FTPSession}s and keeps the connection counts.

    @ivar clock: C{IReactorTime} for idle timeouts.
    """

    protocol = FTPSession

    def __init__(self, context, clock=None):
        self.context = context
        section = context.config.section("ftp")
        self.idleTimeout = section["idle_timeout"]
        self.maxConnections = section["max_connections"]
        self.maxPerAccount = section["max_connections_per_account"]
        self.maxPerAddress = section["max_connections_per_address"]
        self.loginTimeout = section["login_timeout"]
        self.keepPartialUploads = section["keep_partial_uploads"]
        self.passivePorts = section["passive_ports"]
        self.passiveAddress = section["passive_address"]
        self.clock = clock if clock is not None else context.reactor
        self.sessions = set()
        #: The shared connection counts of worker processes, or C{None}.
        self.counts = None
        self.perAccount = {}
        self.perAddress = {}
        self._pools = {}
        self._dataTLS = None

    def buildProtocol(self, addr):
        """
        A session, or a L{_Refuser} past C{[ftp] max_connections} or
        C{max_connections_per_address}.  (By hand, not with
        C{twisted.protocols.policies}: its C{LimitConnectionsByPeer} indexes
        addresses as tuples, which C{IAddress} objects are not, and closes
        without the C{421} a client can show.)
        """
        host = getattr(addr, "host", None)
        counts = self.counts
        if counts is not None:
            # Worker processes: the limits count every worker's sessions.
            reason = counts.acquire("ftp", host, self.maxConnections, self.maxPerAddress)
            if reason == "total":
                return _Refuser()
            if reason == "address":
                return _Refuser("Too many connections from your address, try again later")
        else:
            if len(self.sessions) >= self.maxConnections:
                return _Refuser()
            if self.maxPerAddress and self.perAddress.get(host, 0) >= self.maxPerAddress:
                return _Refuser("Too many connections from your address, try again later")
        self.perAddress[host] = self.perAddress.get(host, 0) + 1
        p = FTPSession(self)
        p.peerHost = host
        p.counted = counts is not None
        self.sessions.add(p)
        return p

    def disconnected(self, session):
        if session not in self.sessions:
            return
        self.sessions.discard(session)
        if getattr(session, "counted", False) and self.counts is not None:
            self.counts.release("ftp", session.peerHost)
        count = self.perAddress.get(session.peerHost, 0) - 1
        if count > 0:
            self.perAddress[session.peerHost] = count
        else:
            self.perAddress.pop(session.peerHost, None)

    def loggedIn(self, account):
        """
        Count a session of C{account}; C{False} when over the limit.
        """
        count = self.perAccount.get(account.address, 0)
        if self.counts is not None:
            # Worker processes: every worker's sessions of the account count.
            if self.counts.acquire("ftp account", account.address, 0, self.maxPerAccount) is not None:
                return False
        elif self.maxPerAccount and count >= self.maxPerAccount:
            return False
        self.perAccount[account.address] = count + 1
        return True

    def loggedOut(self, account):
        if self.counts is not None:
            self.counts.release("ftp account", account.address)
        count = self.perAccount.get(account.address, 0) - 1
        if count > 0:
            self.perAccount[account.address] = count
        else:
            self.perAccount.pop(account.address, None)

    def forgetDataTLS(self):
        """
        Build the data connections' TLS context again at the next use (a
        reload may have changed the certificate).
        """
        self._dataTLS = None

    def dataTLS(self):
        """
        The TLS context of protected data connections: the C{[tls]}
        certificate, TLS 1.2 (unless C{[tls] minimum_version} is 1.3), no
        session tickets (in TLS 1.2; TLS 1.3 sends them regardless).

        Why not TLS 1.3: after a TLS 1.3 handshake OpenSSL sends two
        NewSessionTicket records.  An uploading lftp (GnuTLS) reads nothing
        until the end; then C{gnutls_bye} sends close_notify, reads one
        record (the first ticket) and lftp closes the socket with the
        second one unread.  The kernel then sends a reset instead of a FIN
        and drops what lftp's socket had not sent yet: the end of the upload
        and the close_notify never arrive (measured on loopback: 983,040 of
        1,000,000 bytes stored, lftp exits 0).  Only
        C{SSL_CTX_set_num_tickets(ctx, 0)} stops the tickets
        (C{OP_NO_TICKET} and the session cache mode do not, in TLS 1.3), and
        pyOpenSSL does not expose it.  A separate context: the shared
        C{context.tls} (the control channel, other protocols) is left alone.
        """
        if self._dataTLS is None and self.context.tls is not None:
            from OpenSSL import SSL

            from gateway.tlscontext import tlsOptions

            options = tlsOptions(self.context.config)
            ctx = options.getContext()
            ctx.set_options(SSL.OP_NO_TICKET)
            ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
            if self.context.config["tls", "minimum_version"] != "1.3":
                ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
            self._dataTLS = options
        return self._dataTLS

    def uploadPool(self):
        """
        The thread pool uploads run in (each holds a thread for the whole
        upload, so they get their own pool, not the reactor's), a
        C{ThreadPool} that grows with the uploads.
        """

        def make():
            from twisted.python.threadpool import ThreadPool

            pool = ThreadPool(0, max(4, self.maxConnections), "gateway-ftp-upload")
            pool.start()
            if getattr(self.context, "idle", None) is not None:
                self.context.idle.registerPool(pool)  # idle threads stop
            return pool

        return self._pool("upload", make)

    def fileSystemPool(self):
        """
        The L{Workers} file-system commands (listings, opening files,
        renames...) run in: L{FS_THREADS} threads, so that a slow disk
        stalls those commands but never the reactor.
        """
        return self._pool("fs", lambda: Workers(self.context.reactor, FS_THREADS, "gateway-ftp-fs"))

    def _pool(self, kind, make):
        pool = self._pools.get(kind)
        if pool is None:
            if not self._pools:
                self.context.reactor.addSystemEventTrigger("during", "shutdown", self.stopThreads)
            pool = self._pools[kind] = make()
        return pool

    def stopThreads(self):
        """
        Abort every transfer and stop the thread pools.
        """
        for session in list(self.sessions):
            session.closeData(abort=True)
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            pool.stop()


def makeFactory(context):
    """
    The FTP front-end's factory, for every C{[ftp] listen} endpoint.
    """
    return FTPFactory(context)
