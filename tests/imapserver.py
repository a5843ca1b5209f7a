# -*- test-case-name: tests.test_imap_stress -*-
"""
An IMAP server in its own process, for tests that load it from many
clients: C{python -m tests.imapserver DATAROOT LOGFILE [CERT KEY]} serves IMAP over
implicit TLS (with CERT and KEY, by default a new test certificate) for the data root (made with
L{tests.support.makeDataRoot} when missing) on a free loopback port,
prints that port on a line of its own, and writes its log to LOGFILE.
"""

import os
import sys

from twisted.internet import reactor
from twisted.logger import globalLogBeginner, textFileLogObserver

from gateway.imap.server import makeFactory
from gateway.service import makeContext
from tests.support import makeDataRoot, makeTestConfig


def main(dataRoot, logFile, cert=None, key=None):
    if not os.path.isdir(dataRoot):
        makeDataRoot(dataRoot)
    globalLogBeginner.beginLoggingTo([textFileLogObserver(open(logFile, "a"))], redirectStandardIO=False)
    overrides = {("tls", "certificate"): cert, ("tls", "private_key"): key} if cert else {}
    context = makeContext(makeTestConfig(dataRoot, overrides), reactor=reactor, clock=reactor)
    port = reactor.listenSSL(0, makeFactory(context), context.tls, interface="127.0.0.1", backlog=100)
    print(port.getHost().port, flush=True)
    reactor.run()


if __name__ == "__main__":
    main(*sys.argv[1:5])
