# -*- test-case-name: tests.test_checkers -*-
"""
The portal every protocol logs in through: the realm composed with the one
checker the configuration names (C{[auth] checker}).
"""

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.portal import Portal
from twisted.python.reflect import namedAny

from gateway.errors import ConfigurationError


def loadChecker(name, directory, config, clock=None):
    """
    Build the checker class named by the dotted C{name} as
    C{cls(directory, config, clock=clock)}.

    @raise ConfigurationError: when the name cannot be imported, or what it
        names does not build an C{ICredentialsChecker}.
    """
    try:
        factory = namedAny(name)
    except Exception as e:
        raise ConfigurationError("[auth] checker: cannot import %r: %s" % (name, e))
    if not callable(factory):
        raise ConfigurationError("[auth] checker: %r is not a class" % (name,))
    try:
        checker = factory(directory, config, clock=clock)
    except Exception as e:
        raise ConfigurationError("[auth] checker: %r cannot be built: %s" % (name, e))
    if not ICredentialsChecker.providedBy(checker):
        raise ConfigurationError("[auth] checker: %r is not an ICredentialsChecker" % (name,))
    return checker


def makePortal(directory, config, realm, clock=None):
    """
    @param directory: the L{gateway.interfaces.IDirectory}.
    @param config: the L{gateway.config.Config}.
    @param realm: the realm (L{gateway.cred.realm.GatewayRealm}).
    @param clock: the C{IReactorTime} failure delays use (default: the
        reactor).
    @return: a L{Portal} with the configured checker.
    @raise ConfigurationError: for a bad C{[auth] checker}.
    """
    checker = loadChecker(config["auth", "checker"], directory, config, clock=clock)
    return Portal(realm, [checker])
