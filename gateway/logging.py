# -*- test-case-name: tests.test_service -*-
"""
Logging: C{twisted.logger}, one namespace per protocol (C{gateway.imap},
C{gateway.pop3}, C{gateway.http}, C{gateway.ftp}, C{gateway.lmtp},
C{gateway.auth}), each with the least severe level set by its section's
C{log_level} option.

Use L{getLogger}: events below the level of their namespace are dropped
before they are formatted.
"""

from twisted.logger import Logger, LogLevel

_LEVELS = {
    "debug": LogLevel.debug,
    "info": LogLevel.info,
    "warn": LogLevel.warn,
    "error": LogLevel.error,
    "critical": LogLevel.critical,
}

#: namespace -> least severe LogLevel emitted
_thresholds = {}
_default = [LogLevel.info]


class GatewayLogger(Logger):
    """
    A C{Logger} that drops events below its namespace's configured level.
    """

    def emit(self, level, format=None, **kwargs):
        threshold = _thresholds.get(self.namespace, _default[0])
        if level < threshold:
            return
        Logger.emit(self, level, format, **kwargs)


def getLogger(protocol):
    """
    The logger of one protocol section (C{'imap'}, C{'auth'}, ...).
    """
    return GatewayLogger(namespace="gateway." + protocol)


def configure(config):
    """
    Set every namespace's level from the configuration.
    """
    _default[0] = _LEVELS[config["server", "log_level"]]
    for section in config.sections():
        level = config.get(section, "log_level")
        if level is not None:
            _thresholds["gateway." + section] = _LEVELS[level]
