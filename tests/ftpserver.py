# -*- test-case-name: tests.test_ftp_e2e -*-
"""
An FTP server in its own process, for tests that kill it:
C{python -m tests.ftpserver DATAROOT} serves FTP for the data root (made
with L{tests.support.makeDataRoot} when missing) on a free loopback port,
and prints that port on a line of its own.
"""

import os
import sys

from twisted.internet import reactor

from gateway.ftp.server import makeFactory
from gateway.service import makeContext
from tests.support import makeDataRoot, makeTestConfig


def main(dataRoot):
    if not os.path.isdir(dataRoot):
        makeDataRoot(dataRoot)
    context = makeContext(makeTestConfig(dataRoot), reactor=reactor, clock=reactor)
    port = reactor.listenTCP(0, makeFactory(context), interface="127.0.0.1")
    print(port.getHost().port, flush=True)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1])
