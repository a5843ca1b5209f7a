# -*- test-case-name: tests.test_lmtp_socketmap -*-
"""
Postfix's socketmap lookup protocol (C{socketmap_table(5)}), so that Postfix
knows which addresses exist and refuses the others at SMTP RCPT time instead
of accepting them and bouncing later (backscatter).

Each request is a netstring C{"<name> <key>"}; each reply a netstring
C{"OK <value>"}, C{"NOTFOUND "}, C{"TEMP <reason>"} or C{"PERM <reason>"}.
The maps:

  - C{virtual}: does the address receive mail here (the account, an account
    alias, a router record or a domain alias leading to an account with the
    C{lmtp} service; C{user+detail@domain} too)?  The value is the account's
    address.  For C{virtual_mailbox_maps}.
  - C{domain}: is the domain (or domain alias) one of ours?  For
    C{virtual_mailbox_domains}.

Postfix::

    virtual_mailbox_domains = socketmap:inet:127.0.0.1:2425:domain
    virtual_mailbox_maps = socketmap:inet:127.0.0.1:2425:virtual
    virtual_transport = lmtp:inet:127.0.0.1:2424
"""

from twisted.internet import protocol
from twisted.protocols.basic import NetstringReceiver
from twisted.protocols.policies import TimeoutMixin

from gateway.lmtp.delivery import findRecipient
from gateway.logging import getLogger

log = getLogger("socketmap")

#: Longest request accepted (Postfix sends one name and one key).
MAX_REQUEST = 10000


def _virtual(directory, key):
    if "@" not in key or key.startswith("@"):
        return None  # Postfix also asks for "@domain" (a catch-all) and "user"
    recipient = findRecipient(directory, key)
    return recipient.record.address if recipient is not None else None


def _domain(directory, key):
    domain = directory.getDomain(key)
    if domain is None or not domain.enabled:
        return None
    return domain.name


#: map name -> function(directory, key) returning a value or C{None}.
MAPS = {
    "virtual": _virtual,
    "domain": _domain,
}


def lookup(directory, request):
    """
    The reply to one request.

    @param request: C{"<name> <key>"} as C{str}.
    @return: the reply as C{str} (C{"OK value"}, C{"NOTFOUND "}, ...).
    """
    name, space, key = request.partition(" ")
    if not space or not key.strip():
        return "PERM expected a map name and a key"
    find = MAPS.get(name)
    if find is None:
        return "PERM no such map: %s" % (name[:100],)
    try:
        value = find(directory, key.strip())
    except Exception:
        log.failure("socketmap lookup failed: {name}", name=name)
        return "TEMP lookup failed"
    if value is None:
        return "NOTFOUND "
    return "OK " + value


class SocketmapServer(NetstringReceiver, TimeoutMixin):
    """
    One connection from Postfix: any number of requests, each answered in
    turn.  A request that is not a netstring closes the connection (that is
    what the protocol allows).
    """

    MAX_LENGTH = MAX_REQUEST

    def __init__(self, directory, timeout=None, clock=None):
        self.directory = directory
        self.timeOut = timeout
        if clock is not None:
            self.callLater = clock.callLater

    def connectionMade(self):
        self.setTimeout(self.timeOut)

    def connectionLost(self, reason):
        self.setTimeout(None)

    def stringReceived(self, string):
        self.resetTimeout()
        try:
            request = string.decode("utf-8")
        except UnicodeDecodeError:
            self.sendString(b"PERM request is not UTF-8")
            return
        reply = lookup(self.directory, request)
        log.debug("socketmap {request}: {reply}", request=request[:200], reply=reply[:200])
        self.sendString(reply.encode("utf-8"))

    def timeoutConnection(self):
        self.transport.loseConnection()


class SocketmapFactory(protocol.ServerFactory):
    def __init__(self, context):
        self.context = context

    def buildProtocol(self, addr):
        p = SocketmapServer(self.context.directory, self.context.config["socketmap", "timeout"])
        p.factory = self
        return p


def makeFactory(context):
    return SocketmapFactory(context)
