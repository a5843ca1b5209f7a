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

    def test_fileLimitRaised(self):
        """Start-up raises the soft open-file limit to the hard one."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        wanted = tap.FILE_LIMIT if hard == resource.RLIM_INFINITY else hard
        self.assertEqual(tap.raiseFileLimit(), wanted)
        self.assertEqual(resource.getrlimit(resource.RLIMIT_NOFILE), (wanted, hard))

