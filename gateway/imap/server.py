# -*- test-case-name: tests.test_imap_protocol -*-
"""
The IMAP factory the wiring listens with: L{makeFactory}.
"""

from twisted.internet.protocol import ServerFactory

from gateway.imap import (  # noqa: F401 -- table rows
    commands_acl,
    commands_append,
    commands_auth,
    commands_mailbox,
    commands_metadata,
    commands_quota,
    commands_replace,
    commands_selected,
    commands_sort,
    commands_unauthenticate,
    notify,
    objectid,
    sort,
    urlauth,
    xmapi,
)
from gateway.imap.fetchplans import fetchPlans
from gateway.imap.protocol import COMMANDS, IMAPServer
from gateway.imap.registry import Registries
from gateway.imap.structcache import structureCache


class IMAPFactory(ServerFactory):
    """
    Builds L{IMAPServer} sessions and enforces C{[imap] max_connections}.

    @ivar sessions: C{set} of the connected sessions.
    @ivar registries: the L{Registries} (FETCH items ...) of its sessions;
        an extension adds its rows here.
    """

    protocol = IMAPServer

    def __init__(self, context):
        self.context = context
        self.maxConnections = context.config["imap", "max_connections"]
        self.sessions = set()
        self.registries = Registries()
        objectid.install(self.registries)
        xmapi.install(self.registries)
        if getattr(context, "idle", None) is not None:
            context.idle.register(sort.keyCache)
            context.idle.register(structureCache)
            context.idle.register(fetchPlans)
        prepare = getattr(context.monitor, "prepareCommands", None)
        if prepare is not None:
            # The metrics of every command made now, not during traffic.
            prepare("imap", sorted({row.name for row in COMMANDS.values()}))

    def buildProtocol(self, addr):
        session = self.protocol(self.context)
        session.factory = self
        return session

    def urlFetch(self, session):
        """
        What CATENATE reads a URLAUTH URL with for C{session} (RFC 4469 5):
        C{read(url)} gives the octets the URL grants, or C{None}.
        """
        return lambda url: urlauth.fetchUrl(session, url)

    def accept(self, session):
        """
        Count a new connection; C{False} when over the limit.
        """
        if len(self.sessions) >= self.maxConnections:
            return False
        self.sessions.add(session)
        return True

    def release(self, session):
        self.sessions.discard(session)


def makeFactory(context):
    """
    The IMAP front-end's factory for one L{gateway.service.ServiceContext}.
    """
    return IMAPFactory(context)
