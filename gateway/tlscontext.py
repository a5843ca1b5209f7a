# -*- test-case-name: tests.test_tlscontext -*-
"""
The server's TLS contexts: the C{[tls]} certificate, loaded again on
reload (L{ReloadableTLS}), and a certificate per domain chosen by the name
the client asks for (SNI, L{DomainCertificates}): a domain's
C{domains/<domain>/tls/cert.pem} and C{key.pem} in the data root serve
that domain, its aliases and any name one label below them
(C{imap.example.com} for C{example.com}).

Each connection is a L{LeanConnection}, which gives back what its memory
BIOs grew to (issue 14's idle sessions).
"""

import os

from OpenSSL import SSL
from twisted.internet import ssl
from twisted.internet.interfaces import IOpenSSLContextFactory, IOpenSSLServerConnectionCreator
from zope.interface import implementer

from gateway.errors import ConfigurationError
from gateway.logging import getLogger
from gateway.rustlstls import chooseEngine, rustlsContext

log = getLogger("tls")


def _certificateOptions(certPath, keyPath, minimum, option):
    """
    C{CertificateOptions} for a PEM certificate (chain) and key, with TLS
    C{minimum} (C{'1.2'} or C{'1.3'}) or newer.

    @raise ConfigurationError: naming C{option}, when the files are
        missing or do not match.
    """
    for path in (certPath, keyPath):
        if not os.path.isfile(path):
            raise ConfigurationError("%s: %s: no such file" % (option, path))
    try:
        with open(certPath, "rb") as f:
            certData = f.read()
        with open(keyPath, "rb") as f:
            keyData = f.read()
        cert = ssl.PrivateCertificate.loadPEM(keyData + b"\n" + certData)
    except Exception as e:
        raise ConfigurationError("%s: cannot load %s and %s: %s" % (option, certPath, keyPath, e))
    version = ssl.TLSVersion.TLSv1_3 if minimum == "1.3" else ssl.TLSVersion.TLSv1_2
    # Session tickets (stateless: the server keeps nothing per session) let
    # a client that comes back resume; without them (Twisted's default,
    # with its session cache off) no client could, though TLS 1.3 clients
    # were sent tickets.  Each context has its own ticket key: a reload or
    # another worker process means a full handshake.
    options = ssl.CertificateOptions(
        privateKey=cert.privateKey.original.to_cryptography_key(),
        certificate=cert.original.to_cryptography(),
        raiseMinimumTo=version,
        enableSessionTickets=True,
    )
    # Serve the whole chain if the file holds intermediates.
    options.getContext().use_certificate_chain_file(certPath)
    return options


try:
    from OpenSSL._util import ffi as _ffi
    from OpenSSL._util import lib as _lib

    _BIO_CALLS = (_lib.BIO_new, _lib.BIO_s_mem, _lib.BIO_get_mem_data, _lib.SSL_set_bio)
except (ImportError, AttributeError):  # another pyOpenSSL: connections keep their BIOs
    _BIO_CALLS = None

#: A memory BIO that held more than this many bytes at once since it was
#: made is replaced by a new one as soon as it is empty.
RELEASE_ABOVE = 256


class LeanConnection(SSL.Connection):
    """
    A server connection over memory BIOs (as Twisted's
    C{TLSMemoryBIOProtocol} makes them) that gives back what its BIOs grew
    to.

    OpenSSL's memory BIO never shrinks its buffer (it grows to 4/3 of the
    most it held at once): the one TLS records leave through keeps the size
    of the largest burst written between two reads (the server's TLS 1.3
    flight, 747 bytes with the P-256 test certificate; a large FETCH's 16 kB
    records), the one they arrive through the largest burst received
    (Twisted hands over up to 64 kB at once: an APPEND's literal).  An idle
    session kept that for as long as it stayed.  Live heap per idle TLS 1.3
    connection, 1,000 pyOpenSSL memory-BIO pairs in one process
    (C{bench/tlsidle.py}): after the handshake 23.3 kB, now 22.0; after a
    300 kB download in 16 kB writes 44.0 kB, now 21.8; after a 300 kB
    upload in 64 kB deliveries 108.2 kB, now 21.8.

    Once a BIO held more than L{RELEASE_ABOVE} bytes at once and it is
    empty, a new empty BIO replaces it (C{SSL_set_bio} frees the old one);
    the record layer keeps any partial record in its own buffer, so an
    empty BIO holds nothing the connection still needs.  The receiving BIO
    stays once its end was signalled (L{bio_shutdown}).

    pyOpenSSL does not expose its BIOs: this uses its C{_into_ssl},
    C{_from_ssl} and C{_ssl}, and does nothing where they are missing.
    """

    _intoLargest = _fromLargest = 0
    _ended = False

    def __init__(self, context, socket=None):
        SSL.Connection.__init__(self, context, socket)
        if _BIO_CALLS is None or getattr(self, "_into_ssl", None) is None or getattr(self, "_from_ssl", None) is None:
            self._ended = True

    def bio_write(self, buf):
        written = SSL.Connection.bio_write(self, buf)
        if written > self._intoLargest:
            self._intoLargest = written
        return written

    def bio_read(self, bufsiz):
        try:
            data = SSL.Connection.bio_read(self, bufsiz)
        except SSL.WantReadError:
            self._release()
            raise
        if len(data) > self._fromLargest:
            self._fromLargest = len(data)
        if len(data) < bufsiz:
            self._release()
        return data

    def bio_shutdown(self):
        self._ended = True
        SSL.Connection.bio_shutdown(self)

    def _release(self):
        """
        Replace each BIO that is empty and held more than L{RELEASE_ABOVE}
        bytes at once by a new one.
        """
        if self._ended:
            return
        if self._fromLargest > RELEASE_ABOVE and _lib.BIO_get_mem_data(self._from_ssl, _ffi.NULL) == 0:
            fresh = _lib.BIO_new(_lib.BIO_s_mem())
            if fresh != _ffi.NULL:
                _lib.SSL_set_bio(self._ssl, self._into_ssl, fresh)
                self._from_ssl = fresh
                self._fromLargest = 0
        if self._intoLargest > RELEASE_ABOVE and _lib.BIO_get_mem_data(self._into_ssl, _ffi.NULL) == 0:
            fresh = _lib.BIO_new(_lib.BIO_s_mem())
            if fresh != _ffi.NULL:
                _lib.SSL_set_bio(self._ssl, fresh, self._from_ssl)
                self._into_ssl = fresh
                self._intoLargest = 0


class DomainCertificates:
    """
    Where the certificate of the domain a server name belongs to is:
    C{domains/<domain>/tls/cert.pem} and C{key.pem} in the data root.
    """

    def __init__(self, directory, dataRoot):
        self.directory = directory
        self.dataRoot = dataRoot

    def __call__(self, serverName):
        """
        @return: C{(certPath, keyPath)}, or C{None} when the name belongs
            to no domain or its domain has no certificate.
        """
        name = serverName.lower().rstrip(".")
        domain = self.directory.getDomain(name)
        if domain is None and "." in name:
            domain = self.directory.getDomain(name.partition(".")[2])
        if domain is None:
            return None
        folder = os.path.join(self.dataRoot, "domains", domain.name, "tls")
        cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        if os.path.isfile(cert) and os.path.isfile(key):
            return cert, key
        return None


@implementer(IOpenSSLContextFactory, IOpenSSLServerConnectionCreator)
class ReloadableTLS:
    """
    A TLS context factory whose certificate can be loaded again (on
    reload) without a restart: every new connection (C{ssl:} listeners,
    STARTTLS, STLS, AUTH TLS) asks it for the current context.  With
    C{sni}, a client that names a server gets the certificate of that
    name's domain when it has one (read again when its file changes).

    @ivar options: the current C{CertificateOptions}.
    @ivar engine: C{'openssl'}, or C{'rustls'}: C{ssl:} listeners and
        STARTTLS use rustls then (see L{gateway.rustlstls}); given as
        C{'auto'}, whichever L{chooseEngine} says.
    @ivar rustls: the current rustls context, or C{None}.
    @ivar sni: C{sni(serverName)} -> C{(certPath, keyPath)} or C{None}.
    """

    def __init__(self, certPath, keyPath, minimum, option, sni=None, engine="openssl"):
        self.paths = (certPath, keyPath, minimum, option)
        self.sni = sni
        self.engine = chooseEngine(engine)
        self._domains = {}
        self._rustlsDomains = {}
        self.options = self._load(self.paths)
        self.rustls = rustlsContext(*self.paths) if self.engine == "rustls" else None

    def _load(self, paths):
        options = _certificateOptions(*paths)
        if self.sni is not None:
            options.getContext().set_tlsext_servername_callback(self._serverName)
        return options

    def getContext(self):
        return self.options.getContext()

    def rustlsContext(self, serverName=None):
        """
        The current rustls context (C{engine = 'rustls'}) for a client that
        asks for C{serverName}: its domain's certificate where it has one
        (read again when its files change), else the C{[tls]} one.  For the
        C{ssl:} listeners' L{gateway.rustlstls.RustlsServerFactory}.
        """
        if serverName and self.sni is not None:
            try:
                paths = self.sni(serverName)
                if paths is not None:
                    context = self._domainContext(paths, self._rustlsDomains, rustlsContext)
                    if context is not None:
                        return context
            except Exception:
                log.failure("choosing the certificate for a server name")
        return self.rustls

    def serverConnectionForTLS(self, tlsProtocol):
        """
        A L{LeanConnection} with the current context, for Twisted's TLS
        layer (C{ssl:} listeners and C{startTLS}).
        """
        return LeanConnection(self.getContext(), None)

    def reload(self, certPath=None, keyPath=None, minimum=None):
        """
        Load the certificate again (from new paths, if given).

        @raise ConfigurationError: when it cannot be loaded; the current
            one stays.
        """
        old = self.paths
        paths = (certPath or old[0], keyPath or old[1], minimum or old[2], old[3])
        self.options = self._load(paths)
        if self.engine == "rustls":
            self.rustls = rustlsContext(*paths)
        self.paths = paths
        self._domains = {}
        self._rustlsDomains = {}

    def _serverName(self, connection):
        """
        OpenSSL's server-name callback: switch to the domain's context.
        """
        try:
            name = connection.get_servername()
            if not name:
                return
            paths = self.sni(name.decode("ascii", "replace"))
            if paths is None:
                return
            options = self._domainContext(paths, self._domains, _certificateOptions)
            if options is not None:
                connection.set_context(options.getContext())
        except Exception:
            log.failure("choosing the certificate for a server name")

    def _domainOptions(self, paths):
        return self._domainContext(paths, self._domains, _certificateOptions)

    def _domainContext(self, paths, cache, load):
        """
        C{load(cert, key, minimum, option)} for a domain's files, kept in
        C{cache} until they change; C{None} when they cannot be loaded.
        """
        cert, key = paths
        try:
            stamp = (os.stat(cert).st_mtime_ns, os.stat(key).st_mtime_ns)
        except OSError:
            return None
        cached = cache.get(paths)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            options = load(cert, key, self.paths[2], "domain certificate")
        except ConfigurationError as e:
            # Logged once per change of the files; the default serves.
            log.error("{error}; the [tls] certificate serves instead", error=str(e))
            options = None
        cache[paths] = (stamp, options)
        return options


def tlsOptions(config):
    """
    The server TLS context from the C{[tls]} section: TLS 1.2 or newer.

    @raise ConfigurationError: when the files are missing or do not match.
    """
    return _certificateOptions(
        config["tls", "certificate"], config["tls", "private_key"], config["tls", "minimum_version"],
        "[tls] certificate",
    )
