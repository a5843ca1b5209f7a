# -*- test-case-name: tests.test_config -*-
"""
Tests for L{gateway.config}: the one schema, reading and validating a file,
and the sample configuration generated from the schema.
"""

import os

from twisted.trial import unittest

from gateway.config import SCHEMA, defaultConfig, loadConfig, loadConfigOrDefaults, parseSize, sampleConfig
from gateway.errors import ConfigurationError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class SchemaTests(unittest.TestCase):
    def test_defaultsParse(self):
        """Every option's default text parses with the option's own parser."""
        for option in SCHEMA:
            try:
                option.parse(option.default)
            except ValueError as e:
                self.fail("[%s] %s: default %r does not parse: %s" % (option.section, option.name, option.default, e))

    def test_optionsUniqueAndDocumented(self):
        """No option is declared twice and every option has help text."""
        keys = [(o.section, o.name) for o in SCHEMA]
        self.assertEqual(len(keys), len(set(keys)))
        for option in SCHEMA:
            self.assertTrue(option.help.strip(), (option.section, option.name))

    def test_defaultConfig(self):
        """C{defaultConfig} holds every option at its parsed default, paths relative to etc/ of the current folder."""
        config = defaultConfig()
        for option in SCHEMA:
            value = option.parse(option.default)
            if option.path and value not in ("-", ""):
                value = os.path.normpath(os.path.join(os.getcwd(), "etc", value))
            self.assertEqual(config[option.section, option.name], value)
        self.assertEqual(config.dataRoot(), os.path.join(os.getcwd(), "var"))
        self.assertEqual(defaultConfig("/srv/gw/etc/gateway.ini").dataRoot(), "/srv/gw/var")

    def test_outgoingServer(self):
        """[http] autoconfig_outgoing reads HOST:PORT[:STARTTLS|SSL]; SSL by default on 465; bad values are errors."""
        from gateway.config import _outgoing
        self.assertIsNone(_outgoing(""))
        self.assertEqual(_outgoing("smtp.example.test:587"), ("smtp.example.test", 587, "STARTTLS"))
        self.assertEqual(_outgoing("smtp.example.test:465"), ("smtp.example.test", 465, "SSL"))
        self.assertEqual(_outgoing("mx:2525:ssl"), ("mx", 2525, "SSL"))
        for bad in ("smtp", ":25", "h:0", "h:x", "h:25:TLS", "h:25:SSL:x"):
            self.assertRaises(ValueError, _outgoing, bad)

    def test_parseSize(self):
        """Sizes take K/M/G/T suffixes, an optional B, and C{unlimited}."""
        self.assertEqual(parseSize("512000"), 512000)
        self.assertEqual(parseSize("10M"), 10 * 1024**2)
        self.assertEqual(parseSize("1gb"), 1024**3)
        self.assertEqual(parseSize("1.5K"), 1536)
        self.assertIsNone(parseSize("unlimited"))
        self.assertIsNone(parseSize(""))
        self.assertRaises(ValueError, parseSize, "lots")
        self.assertRaises(ValueError, parseSize, "-5M")


class LoadConfigTests(unittest.TestCase):
    def write(self, text):
        path = self.mktemp()
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def assertOneLineError(self, text, *fragments):
        """
        Loading C{text} fails with a one-line message containing every fragment.
        """
        path = self.write(text)
        error = self.assertRaises(ConfigurationError, loadConfig, path)
        message = str(error)
        self.assertNotIn("\n", message)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return message

    def test_relativePaths(self):
        """Relative paths are taken relative to the file's folder, whatever the current folder; others stay."""
        folder = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(folder, "etc"))
        path = os.path.join(folder, "etc", "gw.ini")
        with open(path, "w", encoding="utf-8") as f:
            f.write("[server]\ndata_root = ../data\n[tls]\ncertificate = /abs/cert.pem\nprivate_key = key.pem\n"
                    "[http]\naccess_log = -\n")
        elsewhere = os.path.abspath(self.mktemp())
        os.makedirs(elsewhere)
        self.patch(os, "getcwd", lambda: elsewhere)
        config = loadConfig(path)
        self.assertEqual(config.dataRoot(), os.path.join(folder, "data"))
        self.assertEqual(config["tls", "certificate"], "/abs/cert.pem")
        self.assertEqual(config["tls", "private_key"], os.path.join(folder, "etc", "key.pem"))
        self.assertEqual(config["http", "access_log"], "-")
        self.assertFalse(config.defaulted)

    def test_missingFileOrDefaults(self):
        """A missing file is an error when it was named, the defaults (marked) when it was only the default."""
        missing = os.path.join(os.path.abspath(self.mktemp()), "etc", "gateway.ini")
        error = self.assertRaises(ConfigurationError, loadConfigOrDefaults, missing, True)
        self.assertIn("configuration file not found", str(error))
        config = loadConfigOrDefaults(missing, False)
        self.assertTrue(config.defaulted)
        self.assertEqual(config.dataRoot(), os.path.join(os.path.dirname(os.path.dirname(missing)), "var"))

    def test_emptyFileIsDefaults(self):
        """An empty file gives every default (paths relative to the file's folder)."""
        path = self.write("")
        config = loadConfig(path)
        expected = defaultConfig(path)
        for option in SCHEMA:
            self.assertEqual(config[option.section, option.name], expected[option.section, option.name])
        self.assertEqual(config.dataRoot(), os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(path))),
                                                         "var"))

    def test_values(self):
        """Values of each type are parsed; several listeners per protocol are kept in order."""
        config = loadConfig(self.write(
            "[server]\ndata_root = /srv/gw\n"
            "[imap]\nenabled = no\nlisten = tcp:1\n    tcp:2:interface=::1\nmax_line_length = 8K\n"
            "log_level = debug\n"
            "[ftp]\npassive_ports = 50000-50010\n"
        ))
        self.assertEqual(config["server", "data_root"], "/srv/gw")
        self.assertIs(config["imap", "enabled"], False)
        self.assertEqual(config["imap", "listen"], ("tcp:1", "tcp:2:interface=::1"))
        self.assertEqual(config["imap", "max_line_length"], 8192)
        self.assertEqual(config["imap", "log_level"], "debug")
        self.assertEqual(config["ftp", "passive_ports"], (50000, 50010))

    def test_missingFile(self):
        """A missing file is one line naming the file."""
        path = self.mktemp()
        error = self.assertRaises(ConfigurationError, loadConfig, path)
        self.assertIn(path, str(error))

    def test_unknownSection(self):
        """An unknown section is refused by name."""
        self.assertOneLineError("[imapp]\nenabled = yes\n", "[imapp]", "unknown section")

    def test_unknownOption(self):
        """An unknown option is refused naming its section and name."""
        self.assertOneLineError("[imap]\nlisten_on = tcp:1\n", "[imap]", "listen_on", "unknown option")

    def test_badBool(self):
        """A yes/no option refuses other words, naming [section] option."""
        self.assertOneLineError("[pop3]\nenabled = maybe\n", "[pop3] enabled", "maybe")

    def test_badInt(self):
        """A whole-number option refuses text, naming [section] option."""
        self.assertOneLineError("[imap]\nidle_timeout = soon\n", "[imap] idle_timeout", "soon")

    def test_negativeReleaseIdle(self):
        """[server] release_idle_after takes 0 (never) or more seconds, not fewer."""
        self.assertOneLineError("[server]\nrelease_idle_after = -5\n", "[server] release_idle_after", "-5")
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("[server]\nrelease_idle_after = 0\n")
        self.assertEqual(loadConfig(path)["server", "release_idle_after"], 0)

    def test_badFloat(self):
        """A number option refuses text, naming [section] option."""
        self.assertOneLineError("[auth]\nfailure_delay = x\n", "[auth] failure_delay")

    def test_badSize(self):
        """A size option refuses a non-size and a negative size, naming [section] option."""
        self.assertOneLineError("[lmtp]\nmax_message_size = big\n", "[lmtp] max_message_size", "big")
        self.assertOneLineError("[lmtp]\nmax_message_size = -1M\n", "[lmtp] max_message_size")

    def test_badLevel(self):
        """A log level must be one of the known levels."""
        self.assertOneLineError("[imap]\nlog_level = loud\n", "[imap] log_level", "loud")

    def test_badPortRange(self):
        """A passive port range must be LOW-HIGH within 1..65535, LOW <= HIGH."""
        for text in ("50100-50000", "0-10", "60000-70000", "many", "1-2-3"):
            self.assertOneLineError("[ftp]\npassive_ports = %s\n" % (text,), "[ftp] passive_ports")

    def test_badTLSVersion(self):
        """The minimum TLS version is 1.2 or 1.3."""
        self.assertOneLineError("[tls]\nminimum_version = 1.0\n", "[tls] minimum_version")

    def test_syntaxError(self):
        """A line outside any section is one line naming the file."""
        path = self.write("enabled = yes\n")
        error = self.assertRaises(ConfigurationError, loadConfig, path)
        self.assertNotIn("\n", str(error))
        self.assertIn(path, str(error))

    def test_duplicateOption(self):
        """An option given twice in one section is refused in one line."""
        self.assertOneLineError("[imap]\nenabled = yes\nenabled = no\n", "enabled")


class SampleConfigTests(unittest.TestCase):
    def test_everyOptionWithHelp(self):
        """The sample names every section and option, each preceded by a comment."""
        lines = sampleConfig().splitlines()
        for option in SCHEMA:
            self.assertIn("[%s]" % (option.section,), lines)
        for option in SCHEMA:
            matches = [i for i, line in enumerate(lines) if line.startswith(option.name + " =")]
            self.assertTrue(matches, option.name)
            for i in matches:
                self.assertTrue(lines[i - 1].startswith("# "), lines[i - 1])

    def test_sampleLoadsToDefaults(self):
        """The sample text, read back, gives exactly the defaults."""
        path = self.mktemp()
        with open(path, "w", encoding="utf-8") as f:
            f.write(sampleConfig())
        config = loadConfig(path)
        expected = defaultConfig(path)
        for option in SCHEMA:
            key = (option.section, option.name)
            self.assertEqual(config[key], expected[key], key)

    def test_etcGatewayIniIsTheSample(self):
        """etc/gateway.ini is exactly what C{gatewayctl sample-config} prints (regenerate it if not)."""
        path = os.path.join(ROOT, "etc", "gateway.ini")
        self.assertTrue(os.path.exists(path), "etc/gateway.ini is missing")
        with open(path, encoding="utf-8") as f:
            self.assertEqual(
                f.read(), sampleConfig(),
                "etc/gateway.ini is out of date: .venv/bin/gatewayctl sample-config > etc/gateway.ini",
            )
