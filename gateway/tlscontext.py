# -*- test-case-name: tests.test_tlscontext -*-
"""
The server's TLS contexts: the C{[tls]} certificate, loaded again on
reload (L{ReloadableTLS}), and a certificate per domain chosen by the name
the client asks for (SNI, L{DomainCertificates}): a domain's
C{domains/<domain>/tls/cert.pem} and C{key.pem} in the data root serve
that domain, its aliases and any name one label below them
(C{imap.example.com} for C{example.com}).
"""

import os

from twisted.internet import ssl
from twisted.internet.interfaces import IOpenSSLContextFactory
from zope.interface import implementer

from gateway.errors import ConfigurationError
from gateway.logging import getLogger

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
    options = ssl.CertificateOptions(
        privateKey=cert.privateKey.original.to_cryptography_key(),
        certificate=cert.original.to_cryptography(),
        raiseMinimumTo=version,
    )
    # Serve the whole chain if the file holds intermediates.
    options.getContext().use_certificate_chain_file(certPath)
    return options


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


@implementer(IOpenSSLContextFactory)
class ReloadableTLS:
    """
    A TLS context factory whose certificate can be loaded again (on
    reload) without a restart: every new connection (C{ssl:} listeners,
    STARTTLS, STLS, AUTH TLS) asks it for the current context.  With
    C{sni}, a client that names a server gets the certificate of that
    name's domain when it has one (read again when its file changes).

    @ivar options: the current C{CertificateOptions}.
    @ivar sni: C{sni(serverName)} -> C{(certPath, keyPath)} or C{None}.
    """

    def __init__(self, certPath, keyPath, minimum, option, sni=None):
        self.paths = (certPath, keyPath, minimum, option)
        self.sni = sni
        self._domains = {}
        self.options = self._load(self.paths)

    def _load(self, paths):
        options = _certificateOptions(*paths)
        if self.sni is not None:
            options.getContext().set_tlsext_servername_callback(self._serverName)
        return options

    def getContext(self):
        return self.options.getContext()

    def reload(self, certPath=None, keyPath=None, minimum=None):
        """
        Load the certificate again (from new paths, if given).

        @raise ConfigurationError: when it cannot be loaded; the current
            one stays.
        """
        old = self.paths
        paths = (certPath or old[0], keyPath or old[1], minimum or old[2], old[3])
        self.options = self._load(paths)
        self.paths = paths
        self._domains = {}

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
            options = self._domainOptions(paths)
            if options is not None:
                connection.set_context(options.getContext())
        except Exception:
            log.failure("choosing the certificate for a server name")

    def _domainOptions(self, paths):
        cert, key = paths
        try:
            stamp = (os.stat(cert).st_mtime_ns, os.stat(key).st_mtime_ns)
        except OSError:
            return None
        cached = self._domains.get(paths)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            options = _certificateOptions(cert, key, self.paths[2], "domain certificate")
        except ConfigurationError as e:
            # Logged once per change of the files; the default serves.
            log.error("{error}; the [tls] certificate serves instead", error=str(e))
            options = None
        self._domains[paths] = (stamp, options)
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
