# -*- test-case-name: tests.test_service -*-
"""
The one place that wires things: configuration -> directory, realm, portal,
TLS -> one listener service per endpoint string of every enabled protocol.

A front-end is a module with C{makeFactory(context)} taking a
L{ServiceContext} and returning a C{ServerFactory}; L{FRONTENDS} names them.
"""

import importlib
import os
import socket

import attr
from twisted.application import service
from twisted.internet import endpoints, ssl
from twisted.internet.interfaces import IReactorTCP

from gateway import logging as glog
from gateway.config import ConfigurationError
from gateway.cred.checkers import cleartextAllowed
from gateway.cred.portal import makePortal
from gateway.cred.realm import GatewayRealm
from gateway.directory.filedir import FileDirectory
from gateway.store.mail import MailStore

#: protocol section -> module with makeFactory(context)
FRONTENDS = {
    "imap": "gateway.imap.server",
    "pop3": "gateway.pop3.server",
    "http": "gateway.http.server",
    "ftp": "gateway.ftp.server",
    "lmtp": "gateway.lmtp.server",
}


def availableFrontends():
    """
    The protocol sections whose front-end module exists in this tree.
    """
    found = []
    for name, module in FRONTENDS.items():
        if importlib.util.find_spec(module) is not None:
            found.append(name)
    return found


@attr.s
class ServiceContext:
    """
    What a front-end's C{makeFactory} gets.

    @ivar config: the L{gateway.config.Config}.
    @ivar directory: the L{gateway.interfaces.IDirectory}.
    @ivar realm: the L{GatewayRealm} (C{realm.accountFor(address)}).
    @ivar portal: the C{Portal} every login goes through.
    @ivar tls: C{CertificateOptions} for STARTTLS/STLS/AUTH TLS, or C{None}
        when no certificate is configured.
    @ivar reactor: the reactor to use.
    """

    config = attr.ib()
    directory = attr.ib()
    realm = attr.ib()
    portal = attr.ib()
    tls = attr.ib()
    reactor = attr.ib()

    def cleartextAllowed(self, localAddress):
        """
        May clear-text passwords be used, without TLS, on a connection to
        C{localAddress}?  (The domain of that address decides.)
        """
        return cleartextAllowed(self.directory, localAddress)

    @property
    def hostname(self):
        return self.config["server", "hostname"]


def tlsOptions(config):
    """
    The server TLS context from the C{[tls]} section: TLS 1.2 or newer.

    @raise ConfigurationError: when the files are missing or do not match.
    """
    return _certificateOptions(
        config["tls", "certificate"], config["tls", "private_key"], config["tls", "minimum_version"],
        "[tls] certificate",
    )


def _certificateOptions(certPath, keyPath, minimum, option):
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


def _splitDescription(description):
    parts, current, escaped = [], "", False
    for char in description:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def makeEndpoint(reactor, description, tls, minimum, option):
    """
    A server endpoint for one listener string.  C{ssl:} endpoints use the
    C{[tls]} certificate (or their own C{privateKey=}/C{certKey=}) with TLS
    1.2+; everything else is Twisted's C{serverFromString}.

    @return: C{(endpoint, (interface, port) or None)}; the pair is for the
        pre-start check that the port is free.
    """
    parts = _splitDescription(description)
    kind = parts[0]
    if kind in ("ssl", "tcp"):
        try:
            port = int(parts[1])
        except (IndexError, ValueError):
            raise ConfigurationError("%s: %r: expected %s:PORT[:interface=...]" % (option, description, kind))
        args = {}
        for part in parts[2:]:
            name, eq, value = part.partition("=")
            if not eq:
                raise ConfigurationError("%s: %r: %r is not NAME=VALUE" % (option, description, part))
            args[name] = value
        interface = args.pop("interface", "")
        backlog = int(args.pop("backlog", 50))
        if kind == "ssl":
            if "privateKey" in args:
                key = args.pop("privateKey")
                cert = args.pop("certKey", key)
                contextFactory = _certificateOptions(cert, key, minimum, option)
            elif tls is None:
                raise ConfigurationError("%s: %r needs a certificate: set [tls] certificate" % (option, description))
            else:
                contextFactory = tls
            if args:
                raise ConfigurationError("%s: %r: unknown argument %s" % (option, description, ", ".join(args)))
            endpoint = endpoints.SSL4ServerEndpoint(reactor, port, contextFactory, backlog, interface)
        else:
            if args:
                raise ConfigurationError("%s: %r: unknown argument %s" % (option, description, ", ".join(args)))
            endpoint = endpoints.TCP4ServerEndpoint(reactor, port, backlog, interface)
        return endpoint, (interface, port)
    try:
        return endpoints.serverFromString(reactor, description), None
    except Exception as e:
        raise ConfigurationError("%s: %r: %s" % (option, description, e))


def checkPortFree(interface, port, option, description):
    """
    Bind and release the port, so a port in use stops start-up before
    anything listens.
    """
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((interface, port))
    except OSError as e:
        raise ConfigurationError("%s: %s: cannot listen: %s" % (option, description, e.strerror or e))
    finally:
        s.close()


def makeContext(config, reactor=None, clock=None):
    """
    Build the shared pieces: directory, realm, portal, TLS.
    """
    if reactor is None:
        from twisted.internet import reactor
    glog.configure(config)
    dataRoot = config.dataRoot()
    if not os.path.isdir(dataRoot):
        raise ConfigurationError("[server] data_root: %s: no such folder (run gatewayctl init-demo)" % (dataRoot,))
    directory = FileDirectory(dataRoot, config["server", "main_domain"])
    realm = GatewayRealm(directory, mailStoreFactory=lambda path, quota: MailStore(path, quota=quota, reactor=reactor))
    portal = makePortal(directory, config, realm, clock=clock)
    tls = None
    if os.path.exists(config["tls", "certificate"]) or os.path.exists(config["tls", "private_key"]):
        tls = tlsOptions(config)
    return ServiceContext(config=config, directory=directory, realm=realm, portal=portal, tls=tls, reactor=reactor)


def makeService(config, reactor=None, checkPorts=True):
    """
    One C{MultiService} with a listener for every endpoint string of every
    enabled protocol.

    @raise ConfigurationError: for anything that would stop a listener.
    """
    context = makeContext(config, reactor)
    reactor = context.reactor
    top = service.MultiService()
    top.context = context
    available = availableFrontends()
    for name in FRONTENDS:
        if not config[name, "enabled"]:
            continue
        option = "[%s] listen" % (name,)
        if name not in available:
            raise ConfigurationError("[%s] enabled: this version of gateway has no %s front-end" % (name, name))
        if not config[name, "listen"]:
            raise ConfigurationError("%s: no endpoint given (or set enabled = no)" % (option,))
        module = importlib.import_module(FRONTENDS[name])
        factory = module.makeFactory(context)
        for description in config[name, "listen"]:
            endpoint, address = makeEndpoint(
                reactor, description, context.tls, config["tls", "minimum_version"], option
            )
            if checkPorts and address is not None and IReactorTCP.providedBy(reactor):
                checkPortFree(address[0], address[1], option, description)
            child = _ListenerService(endpoint, factory)
            child.setName("%s %s" % (name, description))
            child.setServiceParent(top)
    return top


class _ListenerService(service.Service):
    """
    Listens on one endpoint while running; failure to listen stops start-up.
    """

    def __init__(self, endpoint, factory):
        self.endpoint = endpoint
        self.factory = factory
        self.port = None

    def privilegedStartService(self):
        service.Service.privilegedStartService(self)
        d = self.endpoint.listen(self.factory)
        failures = []
        d.addCallbacks(self._listening, failures.append)
        if failures:
            failures[0].raiseException()

    def _listening(self, port):
        self.port = port

    def stopService(self):
        service.Service.stopService(self)
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()
