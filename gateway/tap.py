# -*- test-case-name: tests.test_tap -*-
"""
The twistd plugin's options and service: C{twistd -n gateway --config FILE}.
"""

import gc
import sys

from twisted.python import usage

from gateway.config import DEFAULT_CONFIG_PATH, ConfigurationError, loadConfigOrDefaults

#: sysexits EX_CONFIG
EX_CONFIG = 78


class Options(usage.Options):
    synopsis = "[--config FILE]"
    longdesc = (
        "Serve IMAP, POP3, HTTP, FTP and LMTP over one Account/Domain realm. "
        "Every setting is in the configuration file (see etc/gateway.ini)."
    )
    optParameters = [
        ["config", "c", None,
         "Configuration file (default %s; relative paths in it are relative to its folder)." % (DEFAULT_CONFIG_PATH,)],
    ]

    def __init__(self):
        usage.Options.__init__(self)
        self["inherit"] = {}
        self["worker"] = None

    def opt_worker(self, value):
        """
        (Started by the parent process with [server] workers > 1.) Serve as worker number N.
        """
        if not value.isdigit() or int(value) < 1:
            raise usage.UsageError("--worker: expected a number from 1, got %r" % (value,))
        self["worker"] = int(value)

    def opt_inherit(self, value):
        """
        (Started by the parent process.) FD=LISTENER: adopt listening socket FD for LISTENER.
        """
        fd, sep, name = value.partition("=")
        if not sep or not fd.isdigit():
            raise usage.UsageError("--inherit: expected FD=LISTENER, got %r" % (value,))
        self["inherit"][name] = int(fd)


def makeService(options, reactor=None):
    """
    Build the gateway service from the configuration file.  A configuration
    that cannot work stops start-up with one line naming the option and the
    problem, and exit status 78 (EX_CONFIG), before anything listens.
    """
    from gateway.service import makeService as _makeService

    given = options["config"] is not None
    path = options["config"] if given else DEFAULT_CONFIG_PATH
    try:
        config = loadConfigOrDefaults(path, given)
        if config.defaulted:
            from gateway.logging import getLogger

            getLogger("server").info(
                "no configuration file at {path}: using the defaults (data root {dataRoot})",
                path=path, dataRoot=config.dataRoot(),
            )
        if options["worker"] is not None:
            from gateway.worker import makeWorkerService

            top = makeWorkerService(config, options["worker"], options["inherit"], reactor)
            keepOnCpu(top, options["worker"], config)
        elif config["server", "workers"] > 1:
            from gateway.workers import makeParentService

            top = makeParentService(config, reactor)
        else:
            top = _makeService(config, reactor)
            keepOnCpu(top, 1, config)
        top.handleSignals = True  # SIGHUP reloads, SIGUSR1 reopens the log file
    except ConfigurationError as e:
        sys.stderr.write("gateway: configuration error: %s\n" % (e,))
        sys.stderr.flush()
        raise SystemExit(EX_CONFIG)
    # What start-up made (modules, the configuration, the wiring) lives as
    # long as the process: out of the collector's sight, so that its full
    # collections, which large caches of parsed data trigger, stay short.
    gc.freeze()
    raiseFileLimit()
    from gateway.memtrim import limitArenas

    limitArenas()
    return top


def keepOnCpu(top, number, config):
    """
    Keep server process C{number} on its CPU (L{gateway.affinity}) once
    C{top} (a L{gateway.service.GatewayService}) starts.
    """
    from gateway.affinity import AffinityService

    top.affinity = AffinityService(number, config["server", "cpu_affinity"])


#: The open-file limit asked for when the hard limit is unlimited.
FILE_LIMIT = 65536


def raiseFileLimit():
    """
    Raise the soft limit on open files to the hard one: every session and
    every account in use holds files (a mail index is three), and the usual
    soft limit of 1024 would refuse connections at a few hundred users.

    @return: the soft limit now in force.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = FILE_LIMIT if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft
