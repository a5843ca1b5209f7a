# -*- test-case-name: tests.test_tap -*-
"""
The twistd plugin, as an administrator starts it.
"""

import os
import resource
import subprocess
import sys

from twisted.trial import unittest

from gateway import tap

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


def twistd(*args, cwd=None):
    return subprocess.run([TWISTD, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


class PluginTests(unittest.TestCase):
    def test_pluginListed(self):
        """twistd --help lists the gateway plugin."""
        result = twistd("--help")
        self.assertEqual(result.returncode, 0)
        self.assertIn("gateway", result.stdout)

    def test_brokenConfigurationExits(self):
        """A broken configuration stops twistd with exit status 78 and one line naming the option."""
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        path = os.path.join(folder, "bad.ini")
        with open(path, "w") as f:
            f.write("[imap]\nidle_timeout = soon\n")
        result = twistd("--nodaemon", "--pidfile=", "gateway", "--config", path, cwd=folder)
        self.assertEqual(result.returncode, 78)
        errors = [line for line in result.stderr.splitlines() if line.strip()]
        self.assertEqual(len(errors), 1, result.stderr)
        self.assertIn("[imap] idle_timeout", errors[0])

    def test_missingNamedConfigExits(self):
        """A --config that does not exist stops twistd with exit status 78 naming the file."""
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        result = twistd("--nodaemon", "--pidfile=", "gateway", "--config", "missing.ini", cwd=folder)
        self.assertEqual(result.returncode, 78)
        self.assertIn("missing.ini: configuration file not found", result.stderr)

    def test_defaultsAnnounced(self):
        """Without --config and without etc/gateway.ini the defaults are used, announced in one log line."""
        from twisted.application.service import MultiService
        from twisted.logger import globalLogPublisher

        import gateway.service
        import gateway.workers

        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(folder)
        made = []
        self.patch(gateway.service, "makeService", lambda config, reactor: made.append(config) or MultiService())
        # The default is a worker per CPU: the parent's service is made then.
        self.patch(gateway.workers, "makeParentService", lambda config, reactor: made.append(config) or MultiService())
        self.patch(tap, "raiseFileLimit", lambda: None)
        self.patch(tap.gc, "freeze", lambda: None)
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        options = tap.Options()
        options.parseOptions([])
        tap.makeService(options)
        [config] = made
        self.assertTrue(config.defaulted)
        self.assertEqual(config.dataRoot(), os.path.join(folder, "var"))
        lines = [e for e in events if "using the defaults" in e.get("log_format", "")]
        self.assertEqual(len(lines), 1)
        self.assertEqual(lines[0]["dataRoot"], os.path.join(folder, "var"))

    def test_fileLimitRaised(self):
        """Start-up raises the soft open-file limit to the hard one."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        wanted = tap.FILE_LIMIT if hard == resource.RLIM_INFINITY else hard
        self.assertEqual(tap.raiseFileLimit(), wanted)
        self.assertEqual(resource.getrlimit(resource.RLIMIT_NOFILE), (wanted, hard))

