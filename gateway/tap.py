# -*- test-case-name: tests.test_tap -*-
"""
The twistd plugin's options and service: C{twistd -n gateway --config FILE}.
"""

import gc
import sys

from twisted.python import usage

from gateway.config import ConfigurationError, loadConfig

#: sysexits EX_CONFIG
EX_CONFIG = 78


class Options(usage.Options):
    synopsis = "[--config FILE]"
    longdesc = (
        "Serve IMAP, POP3, HTTP, FTP and LMTP over one Account/Domain realm. "
        "Every setting is in the configuration file (see etc/gateway.ini)."
    )
    optParameters = [
        ["config", "c", "etc/gateway.ini", "Configuration file."],
    ]


def makeService(options, reactor=None):
    """
    Build the gateway service from the configuration file.  A configuration
    that cannot work stops start-up with one line naming the option and the
    problem, and exit status 78 (EX_CONFIG), before anything listens.
    """
    from gateway.service import makeService as _makeService

    try:
        config = loadConfig(options["config"])
        top = _makeService(config, reactor)
    except ConfigurationError as e:
        sys.stderr.write("gateway: configuration error: %s\n" % (e,))
        sys.stderr.flush()
        raise SystemExit(EX_CONFIG)
    # What start-up made (modules, the configuration, the wiring) lives as
    # long as the process: out of the collector's sight, so that its full
    # collections, which large caches of parsed data trigger, stay short.
    gc.freeze()
    return top
