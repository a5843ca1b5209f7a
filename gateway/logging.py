# -*- test-case-name: tests.test_daemon -*-
"""
Logging: C{twisted.logger}, one namespace per protocol (C{gateway.imap},
C{gateway.pop3}, C{gateway.http}, C{gateway.ftp}, C{gateway.lmtp},
C{gateway.auth}), each with the least severe level set by its section's
C{log_level} option, everything else at C{[server] log_level}.

The levels live in one C{LogLevelFilterPredicate} (L{predicate}).  Loggers
made by L{getLogger} consult it before building an event, so a debug line
in a hot path costs one lookup when debug is off; the log file of
C{[server] log_file} (L{ReopeningFile}) is filtered by it as well, so
Twisted's own events follow C{[server] log_level}.
"""

import io
import os

from twisted.logger import (
    FilteringLogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogPublisher,
    textFileLogObserver,
)

_LEVELS = {
    "debug": LogLevel.debug,
    "info": LogLevel.info,
    "warn": LogLevel.warn,
    "error": LogLevel.error,
    "critical": LogLevel.critical,
}

#: The levels in order, as numbers (comparing two C{LogLevel}s runs Python
#: code; comparing two numbers does not).
_ORDER = {level: number for number, level in enumerate(LogLevel.iterconstants())}


class _Predicate(LogLevelFilterPredicate):
    """
    A C{LogLevelFilterPredicate} that counts its changes (L{version}), so
    that a logger may keep the level it looked up until the next one.
    """

    version = 0

    @property
    def defaultLogLevel(self):
        return self._defaultLogLevel

    @defaultLogLevel.setter
    def defaultLogLevel(self, level):
        self._defaultLogLevel = level
        self.version += 1

    def setLogLevelForNamespace(self, namespace, level):
        LogLevelFilterPredicate.setLogLevelForNamespace(self, namespace, level)
        self.version += 1

    def clearLogLevels(self):
        LogLevelFilterPredicate.clearLogLevels(self)
        self.version += 1


#: The level of every namespace: C{gateway.<section>} from the sections'
#: C{log_level}, the default from C{[server] log_level}.
predicate = _Predicate(defaultLogLevel=LogLevel.info)


class GatewayLogger(Logger):
    """
    A C{Logger} that drops events below its namespace's level in
    L{predicate} before they are built.  The level is looked up again only
    after the predicate changed: the IMAP dispatcher logs every command at
    debug level, and the lookup (a walk of the namespace's parts) and the
    comparison of two C{LogLevel}s were 2.6% of a one-message FETCH.
    """

    _least = (None, None)

    def emit(self, level, format=None, **kwargs):
        version, least = self._least
        if version != predicate.version:
            least = _ORDER[predicate.logLevelForNamespace(self.namespace)]
            self._least = (predicate.version, least)
        if _ORDER[level] < least:
            return
        Logger.emit(self, level, format, **kwargs)


#: Internal errors a session logs with their traceback; later ones in the
#: same session are only counted (a client that makes every command fail
#: cannot fill the log).
LOGGED_FAILURES = 3


class FailureBudget:
    """
    Mixin for a protocol session that logs its internal errors with a
    budget: the first L{LOGGED_FAILURES} with their traceback, then a count
    when the session ends (L{reportFailures}).

    @cvar failureLog: the session's logger.
    @cvar protocolName: how the count's log line names the protocol.
    """

    failures = 0
    failureLog = None
    protocolName = "session"

    def logFailure(self, reason, format, **kwargs):
        self.failures += 1
        if self.failures <= LOGGED_FAILURES:
            self.failureLog.failure(format, reason, **kwargs)

    def reportFailures(self):
        if self.failures > LOGGED_FAILURES:
            self.failureLog.error("{protocol} session ended after {count} more internal errors, not logged one by one",
                                  protocol=self.protocolName, count=self.failures - LOGGED_FAILURES)


def getLogger(protocol):
    """
    The logger of one protocol section (C{'imap'}, C{'auth'}, ...).
    """
    return GatewayLogger(namespace="gateway." + protocol)


def configure(config):
    """
    Set every namespace's level from the configuration (at start-up and
    on reload).
    """
    levels = {"gateway." + section: config.get(section, "log_level") for section in config.sections()}
    predicate.defaultLogLevel = _LEVELS[config["server", "log_level"]]
    predicate.clearLogLevels()  # (which sets the default level)
    for namespace, level in levels.items():
        if level is not None:
            predicate.setLogLevelForNamespace(namespace, _LEVELS[level])


class ReopeningFile(io.TextIOBase):
    """
    An append-only text file that L{reopen} opens again by name: after
    logrotate has renamed it, the next lines go to a new file of the same
    name (SIGUSR1 asks for it).
    """

    def __init__(self, path):
        self.path = path
        self._file = None
        self.reopen()

    def reopen(self):
        """
        Close the file and open C{path} again (creating it, mode 0640).
        """
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        new = open(fd, "a", encoding="utf-8", buffering=1, newline="\n")
        old, self._file = self._file, new
        if old is not None:
            old.close()

    def write(self, text):
        return self._file.write(text)

    def flush(self):
        self._file.flush()

    def close(self):
        if self._file is not None:
            self._file.close()


class LogFile:
    """
    The C{[server] log_file} observer while it is started.
    """

    def __init__(self, path, publisher=globalLogPublisher):
        self.path = path
        self.publisher = publisher
        self.file = None
        self.observer = None

    def start(self):
        self.file = ReopeningFile(self.path)
        self.observer = FilteringLogObserver(textFileLogObserver(self.file), [predicate])
        self.publisher.addObserver(self.observer)

    def reopen(self):
        if self.file is not None:
            self.file.reopen()

    def stop(self):
        if self.observer is not None:
            self.publisher.removeObserver(self.observer)
            self.observer = None
        if self.file is not None:
            self.file.close()
            self.file = None
