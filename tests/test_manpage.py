# -*- test-case-name: tests.test_manpage -*-
"""
The manual pages (issue 15 item 9): generated from the parsers and the
configuration schema, committed in docs/, and valid roff.
"""

import os
import shutil
import subprocess

from twisted.trial import unittest

from gateway import ctl, manpage
from gateway.config import SCHEMA

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")


def render(path):
    """The page as man shows it, and man's warnings (skipped without man)."""
    if shutil.which("man") is None:
        raise unittest.SkipTest("man is not installed")
    env = dict(os.environ, MANWIDTH="200", LC_ALL="C.UTF-8")
    result = subprocess.run(["man", "--warnings", "-l", path], capture_output=True, text=True, env=env, timeout=60)
    return result.stdout, result.stderr


class ManPageTests(unittest.TestCase):
    def test_committedPagesCurrent(self):
        """docs/ holds what make man generates now (run make man after changing a parser or the schema)."""
        for name, make in manpage.PAGES.items():
            with open(os.path.join(DOCS, name), encoding="utf-8") as f:
                self.assertEqual(f.read(), make(), "docs/%s is out of date: run make man" % (name,))

    def test_gatewayctlCommands(self):
        """gatewayctl(8) shows every command with its usage and its options' help, without epytext markup."""
        text, warnings = render(os.path.join(DOCS, "gatewayctl.8"))
        self.assertEqual(warnings, "")
        self.assertNotIn("C{", text)
        for usage in ("gatewayctl domain add", "gatewayctl account passwd", "gatewayctl alias remove",
                      "gatewayctl deliver", "gatewayctl who", "gatewayctl sample-config"):
            self.assertIn(usage, text)
        self.assertIn("read the password from standard input", text)
        parser = ctl.makeParser()
        commands = [name for name, _, _ in manpage._subcommands(parser)]
        self.assertIn("who", commands)
        for name in commands:
            self.assertIn("gatewayctl " + name, text)

    def test_twistdOptions(self):
        """twistd-gateway(8) lists every configuration option with its default, and the signals."""
        text, warnings = render(os.path.join(DOCS, "twistd-gateway.8"))
        self.assertEqual(warnings, "")
        for option in SCHEMA:
            self.assertIn("%s = " % (option.name,), text)
            self.assertIn("[%s]" % (option.section,), text)
        for signal in ("SIGHUP", "SIGUSR1"):
            self.assertIn(signal, text)

    def test_escaping(self):
        """Text that roff would take for a request or an escape is escaped."""
        self.assertEqual(manpage.escape(".start\n'quote\na\\b -x C{name}"),
                         "\\&.start\n\\&'quote\na\\eb \\-x name")
