# -*- test-case-name: tests.test_ctl -*-
"""
Tests for L{gateway.ctl}, the C{gatewayctl} command: mostly run in-process
through L{gateway.ctl.main}, a few through the installed console script.
"""

import hashlib
import hmac
import io
import os
import shutil
import subprocess
import sys

from twisted.trial import unittest

from gateway import ctl
from gateway.config import sampleConfig
from gateway.cred import forms
from gateway.cred.passwords import hashPassword, verifyCramMD5, verifyPassword
from gateway.directory.filedir import FileDirectory

MESSAGE = (
    b"From: sender@example.org\r\nTo: demo@example.test\r\nSubject: byte exact\r\n\r\n"
    b"CRLF line\r\nbare LF line\n8bit \xe9\xff\x00 bytes\r\n.\r\n..dot\r\nno final newline"
)


def consoleScript():
    """
    The installed C{gatewayctl} next to this interpreter (the virtualenv's).
    """
    path = os.path.join(os.path.dirname(sys.executable), "gatewayctl")
    if os.path.exists(path):
        return path
    return shutil.which("gatewayctl")


class CtlMixin:
    def setUp(self):
        self.base = os.path.abspath(self.mktemp())
        os.makedirs(self.base)
        self.dataRoot = os.path.join(self.base, "data")
        self.config = os.path.join(self.base, "gateway.ini")
        self.writeConfig()

    def writeConfig(self, extra=""):
        with open(self.config, "w", encoding="utf-8") as f:
            f.write(
                "[server]\ndata_root = %s\nmain_domain = example.test\n"
                "[tls]\ncertificate = %s\nprivate_key = %s\n%s"
                % (self.dataRoot, os.path.join(self.base, "tls", "cert.pem"),
                   os.path.join(self.base, "tls", "key.pem"), extra)
            )

    def ctl(self, *argv, stdin=None):
        """
        Run C{gatewayctl --config FILE argv...} in-process.

        @return: C{(exit code, stdout text, stderr text)}.
        """
        out, err = io.StringIO(), io.StringIO()
        self.patch(sys, "stderr", err)
        if stdin is not None:
            self.patch(sys, "stdin", stdin)
        try:
            code = ctl.main(["--config", self.config] + list(argv), out=out)
        except SystemExit as e:
            code = e.code
        return code, out.getvalue(), err.getvalue()

    def ok(self, *argv, **kw):
        code, out, err = self.ctl(*argv, **kw)
        self.assertEqual(code, 0, err)
        return out

    def fails(self, code, *argv, **kw):
        """
        Run a command that must fail with C{code} and one clear stderr message.
        """
        got, out, err = self.ctl(*argv, **kw)
        self.assertEqual(got, code, (out, err))
        self.assertTrue(err.strip(), "no message on stderr")
        self.assertNotIn("Traceback", err)
        return err

    def directory(self):
        return FileDirectory(self.dataRoot, "example.test")

    def inbox(self, address):
        """
        The files in C{address}'s INBOX Maildir: C{{name: content}} over new/ and cur/.
        """
        record = self.directory().getAccount(address)
        found = {}
        for sub in ("new", "cur"):
            folder = os.path.join(record.path.path, "mail", "INBOX", sub)
            for name in os.listdir(folder) if os.path.isdir(folder) else ():
                with open(os.path.join(folder, name), "rb") as f:
                    found[sub + "/" + name] = f.read()
        return found


class DomainTests(CtlMixin, unittest.TestCase):
    def test_addListSetRemove(self):
        """domain add, set, list and remove change the directory and say so."""
        self.assertIn("domain example.test added", self.ok("domain", "add", "Example.Test"))
        self.ok("domain", "add", "client1.test", "--alias", "client1.example,c1.example",
                "--address", "192.0.0.2", "--cleartext-login", "yes", "--default-quota", "1G",
                "--default-services", "imap,pop3")
        domain = self.directory().getDomain("c1.example")
        self.assertEqual(domain.name, "client1.test")
        self.assertEqual(domain.aliases, ("client1.example", "c1.example"))
        self.assertEqual(domain.addresses, ("192.0.0.2",))
        self.assertIs(domain.cleartextLogin, True)
        self.assertEqual(domain.defaultQuota, 1024**3)
        self.assertEqual(domain.defaultServices, frozenset({"imap", "pop3"}))

        self.ok("domain", "set", "client1.test", "--disable", "--cleartext-login", "no", "--default-quota",
                "unlimited")
        domain = self.directory().getDomain("client1.test")
        self.assertEqual((domain.enabled, domain.cleartextLogin, domain.defaultQuota), (False, False, None))
        self.assertEqual(domain.aliases, ("client1.example", "c1.example"))

        listing = self.ok("domain", "list").splitlines()
        self.assertEqual(len(listing), 2)
        self.assertTrue(listing[0].startswith("client1.test "), listing)
        self.assertIn("DISABLED", listing[0])
        self.assertIn("client1.example,c1.example", listing[0])
        self.assertTrue(listing[1].startswith("example.test (main)"), listing)

        self.assertIn("run the command again with --yes",
                      self.fails(ctl.EX_USAGE, "domain", "remove", "client1.test"))
        self.assertIsNotNone(self.directory().getDomain("client1.test"))
        self.ok("domain", "remove", "client1.test", "--yes")
        self.assertIsNone(self.directory().getDomain("client1.test"))
        self.assertEqual(len(self.ok("domain", "list").splitlines()), 1)

    def test_badInput(self):
        """Bad domain names, duplicates, unknown domains and bad option values fail clearly."""
        self.ok("domain", "add", "example.test")
        self.assertIn("already exists", self.fails(ctl.EX_DATAERR, "domain", "add", "example.test"))
        self.assertIn("valid domain", self.fails(ctl.EX_DATAERR, "domain", "add", "../etc"))
        self.assertIn("no such domain", self.fails(ctl.EX_DATAERR, "domain", "remove", "nowhere.test"))
        self.assertIn("no such domain", self.fails(ctl.EX_DATAERR, "domain", "set", "nowhere.test", "--disable"))
        self.assertIn("--cleartext-login", self.fails(2, "domain", "set", "example.test", "--cleartext-login",
                                                      "maybe"))
        self.assertIn("--default-quota", self.fails(2, "domain", "add", "x.test", "--default-quota", "lots"))
        self.assertIn("--default-quota", self.fails(2, "domain", "add", "x.test", "--default-quota", "inf"))
        self.assertIn("unknown service", self.fails(2, "domain", "add", "x.test", "--default-services", "smtp"))
        self.assertIsNone(self.directory().getDomain("x.test"))


class AccountTests(CtlMixin, unittest.TestCase):
    def setUp(self):
        CtlMixin.setUp(self)
        self.ok("domain", "add", "example.test", "--default-quota", "50M")

    def test_addHashesPassword(self):
        """account add stores the password hashed with SHA512-CRYPT by default, never in clear."""
        self.assertIn("account demo@example.test added",
                      self.ok("account", "add", "Demo@Example.Test", "--password", "pa ss"))
        record = self.directory().getAccount("demo@example.test")
        self.assertTrue(record.password.startswith("{SHA512-CRYPT}$6$"), record.password)
        self.assertEqual(forms.schemes(record.password), ["SHA512-CRYPT", "SCRAM-SHA-256", "CRAM-MD5"])
        self.assertTrue(forms.verifyPlain(record.password, "pa ss"))
        self.assertFalse(forms.verifyPlain(record.password, "wrong"))
        for form in forms.splitForms(record.password):
            self.assertTrue(verifyPassword(form, "pa ss"), form)
        with open(os.path.join(record.path.path, "account.ini"), encoding="utf-8") as f:
            self.assertNotIn("pa ss", f.read())

    def test_cramScheme(self):
        """--scheme CRAM-MD5 stores the CRAM-MD5 context first (and SCRAM keys beside it), not twice."""
        self.ok("account", "add", "demo@example.test", "--password", "pw", "--scheme", "cram-md5")
        stored = self.directory().getAccount("demo@example.test").password
        self.assertEqual(forms.schemes(stored), ["CRAM-MD5", "SCRAM-SHA-256"])
        challenge = b"<1.2@example.test>"
        response = hmac.new(b"pw", challenge, hashlib.md5).hexdigest()
        self.assertTrue(verifyCramMD5(forms.cramForm(stored), challenge, response))
        self.assertTrue(forms.verifyPlain(stored, "pw"))

    def test_passwordStdin(self):
        """--password-stdin reads one line from standard input."""
        self.ok("account", "add", "demo@example.test", "--password-stdin", stdin=io.StringIO("from stdin\n"))
        self.assertTrue(forms.verifyPlain(self.directory().getAccount("demo@example.test").password, "from stdin"))

    def test_passwd(self):
        """account passwd replaces the password (and scheme); the old one stops working."""
        self.ok("account", "add", "demo@example.test", "--password", "old")
        self.assertIn("password of demo@example.test changed",
                      self.ok("account", "passwd", "demo@example.test", "--password", "new", "--scheme", "PLAIN"))
        stored = self.directory().getAccount("demo@example.test").password
        self.assertTrue(stored.startswith("{PLAIN}"), stored)
        self.assertTrue(verifyPassword(stored, "new"))
        self.assertFalse(verifyPassword(stored, "old"))

    def test_setAndList(self):
        """account set changes aliases, quota, services, time zone and state; list shows them."""
        self.ok("account", "add", "demo@example.test", "--password", "pw", "--alias", "d1,d2")
        self.ok("account", "set", "demo@example.test", "--quota", "10M", "--services", "imap, ftp",
                "--timezone", "Europe/Berlin", "--disable")
        record = self.directory().getAccount("demo@example.test")
        self.assertEqual(record.aliases, ("d1", "d2"))
        self.assertEqual(record.quota, 10 * 1024**2)
        self.assertEqual(record.services, frozenset({"imap", "ftp"}))
        self.assertEqual(record.timezone, "Europe/Berlin")
        self.assertIs(record.enabled, False)
        lines = self.ok("account", "list").splitlines()
        self.assertEqual(lines, [
            "demo@example.test scheme=SHA512-CRYPT,SCRAM-SHA-256,CRAM-MD5 aliases=d1,d2 services=ftp,imap"
            " quota=10M DISABLED",
            # Made with the domain, for ~public/ (nobody logs in as it).
            "public@example.test scheme=SHA512-CRYPT aliases=- services=- quota=50M DISABLED"])
        self.assertEqual(self.ok("account", "list", "example.test").splitlines(), lines)
        self.ok("account", "set", "demo@example.test", "--enable", "--quota", "default")
        record = self.directory().getAccount("demo@example.test")
        self.assertIs(record.enabled, True)
        self.assertEqual(record.quota, 50 * 1024**2)

    def test_remove(self):
        """account remove refuses without --yes, and with it deletes the account and its folder."""
        self.ok("account", "add", "demo@example.test", "--password", "pw")
        path = self.directory().getAccount("demo@example.test").path.path
        err = self.fails(ctl.EX_USAGE, "account", "remove", "demo@example.test")
        self.assertIn("this removes account demo@example.test with all its mail and files; run the command again"
                      " with --yes", err)
        self.assertTrue(os.path.isdir(path))
        self.ok("account", "remove", "demo@example.test", "--yes")
        self.assertIsNone(self.directory().getAccount("demo@example.test"))
        self.assertFalse(os.path.exists(path))
        self.assertNotIn("demo@", self.ok("account", "list"))

    def test_badInput(self):
        """Bad names, unknown domains, duplicates, empty or missing passwords fail clearly."""
        self.ok("account", "add", "demo@example.test", "--password", "pw")
        self.assertIn("already exists", self.fails(ctl.EX_DATAERR, "account", "add", "demo@example.test",
                                                   "--password", "x"))
        self.assertIn("no such domain", self.fails(ctl.EX_DATAERR, "account", "add", "x@nowhere.test",
                                                   "--password", "x"))
        self.assertIn("valid address", self.fails(ctl.EX_DATAERR, "account", "add", "noat", "--password", "x"))
        self.assertIn("valid address", self.fails(ctl.EX_DATAERR, "account", "add", "../x@example.test",
                                                  "--password", "x"))
        self.assertIn("empty", self.fails(ctl.EX_DATAERR, "account", "add", "x@example.test", "--password", ""))
        self.assertIn("--password", self.fails(ctl.EX_USAGE, "account", "add", "x@example.test",
                                               stdin=io.StringIO("")))
        self.assertIn("no such account", self.fails(ctl.EX_DATAERR, "account", "passwd", "x@example.test",
                                                    "--password", "x"))
        self.assertIn("no such account", self.fails(ctl.EX_DATAERR, "account", "remove", "x@example.test"))
        self.assertIn("time zone", self.fails(ctl.EX_DATAERR, "account", "set", "demo@example.test",
                                              "--timezone", "Mars/Olympus"))
        self.assertIn("valid alias", self.fails(ctl.EX_DATAERR, "account", "set", "demo@example.test",
                                                "--alias", "a/b"))
        self.assertIn("--scheme", self.fails(2, "account", "passwd", "demo@example.test", "--password", "x",
                                             "--scheme", "ROT13"))
        self.assertIn("no such domain", self.fails(ctl.EX_DATAERR, "account", "list", "nowhere.test"))
        self.assertEqual(self.ok("account", "list").count("\n"), 2)  # demo and public


class AliasTests(CtlMixin, unittest.TestCase):
    def setUp(self):
        CtlMixin.setUp(self)
        self.ok("domain", "add", "company.test")
        self.ok("domain", "add", "client1.test")
        self.ok("account", "add", "j.smith@client1.test", "--password", "pw")

    def test_crossDomainAlias(self):
        """alias add makes a router record to another domain; alias remove takes it away."""
        out = self.ok("alias", "add", "John@company.test", "j.smith@client1.test")
        self.assertIn("john@company.test now routes to j.smith@client1.test", out)
        self.assertEqual(self.directory().resolve("john@company.test").address, "j.smith@client1.test")
        self.assertEqual(self.directory().getDomain("company.test").router, {"john": "j.smith@client1.test"})
        self.ok("alias", "remove", "john@company.test")
        self.assertIsNone(self.directory().resolve("john@company.test"))

    def test_badInput(self):
        """Aliases over accounts, unknown domains and absent records fail clearly."""
        self.assertIn("is an account", self.fails(ctl.EX_DATAERR, "alias", "add", "j.smith@client1.test",
                                                  "x@company.test"))
        self.assertIn("no such domain", self.fails(ctl.EX_DATAERR, "alias", "add", "a@nowhere.test",
                                                   "j.smith@client1.test"))
        self.assertIn("valid address", self.fails(ctl.EX_DATAERR, "alias", "add", "a@company.test", "nobody"))
        self.assertIn("no router record", self.fails(ctl.EX_DATAERR, "alias", "remove", "a@company.test"))


class MechanismTests(CtlMixin, unittest.TestCase):
    """
    Password forms for the configured mechanisms, account show and doctor.
    """

    def setUp(self):
        CtlMixin.setUp(self)
        self.ok("domain", "add", "example.test")

    def test_domainNarrows(self):
        """domain set --mechanisms narrows what new passwords of the domain store; domain list shows it."""
        self.ok("domain", "add", "strict.test", "--mechanisms", "plain,scram-sha-256")
        self.assertIn("mechanisms=PLAIN,SCRAM-SHA-256", self.ok("domain", "list"))
        self.ok("account", "add", "a@strict.test", "--password", "pw")
        stored = self.directory().getAccount("a@strict.test").password
        self.assertEqual(forms.schemes(stored), ["SHA512-CRYPT", "SCRAM-SHA-256"])
        self.ok("domain", "set", "strict.test", "--mechanisms", "")
        self.assertNotIn("mechanisms=", self.ok("domain", "list"))
        self.assertIn("unknown mechanism", self.fails(2, "domain", "set", "strict.test",
                                                      "--mechanisms", "GSSAPI"))

    def test_configuredMechanisms(self):
        """[auth] mechanisms decides the forms account add stores."""
        self.writeConfig("[auth]\nmechanisms = PLAIN LOGIN\n")
        self.ok("account", "add", "a@example.test", "--password", "pw")
        self.assertEqual(forms.schemes(self.directory().getAccount("a@example.test").password), ["SHA512-CRYPT"])

    def test_show(self):
        """account show lists the settings, stored forms and usable mechanisms, never a secret."""
        self.ok("account", "add", "a@example.test", "--password", "pw", "--alias", "al")
        out = self.ok("account", "show", "al@example.test")
        self.assertIn("account:    a@example.test\n", out)
        self.assertIn("password:   {SHA512-CRYPT}, {SCRAM-SHA-256}, {CRAM-MD5}\n", out)
        self.assertIn("mechanisms: PLAIN, LOGIN, SCRAM-SHA-256, CRAM-MD5\n", out)
        self.assertNotIn("cannot use", out)
        self.assertNotIn("$6$", out)
        self.fails(ctl.EX_NOUSER, "account", "show", "nobody@example.test")

    def test_showMissing(self):
        """account show names the mechanisms an imported hash cannot serve."""
        self.directory().addAccount("old@example.test", hashPassword("pw", "SHA512-CRYPT"))
        out = self.ok("account", "show", "old@example.test")
        self.assertIn("mechanisms: PLAIN, LOGIN\n", out)
        self.assertIn("cannot use: SCRAM-SHA-256, CRAM-MD5 (set the password again", out)
        self.ok("account", "set", "old@example.test", "--disable")
        out = self.ok("account", "show", "old@example.test")
        self.assertIn("enabled:    no\n", out)
        self.assertIn("mechanisms: none\n", out)
        self.assertNotIn("cannot use", out)

    def test_doctor(self):
        """doctor lists the accounts lacking a form (exit 1) until their passwords are set again (exit 0)."""
        self.ok("account", "add", "good@example.test", "--password", "pw")
        self.assertEqual(self.ok("doctor"), "no problems found\n")
        self.directory().addAccount("old@example.test", hashPassword("pw", "CRAM-MD5"))
        code, out, err = self.ctl("doctor")
        self.assertEqual(code, 1, err)
        self.assertEqual(out, "old@example.test: cannot log in with SCRAM-SHA-256 (password stored as {CRAM-MD5});"
                              " set it again with gatewayctl account passwd\n1 problem found\n")
        self.ok("account", "passwd", "old@example.test", "--password", "pw")
        self.assertEqual(self.ok("doctor"), "no problems found\n")


class ImportPasswdTests(CtlMixin, unittest.TestCase):
    def setUp(self):
        CtlMixin.setUp(self)
        self.ok("domain", "add", "example.test", "--alias", "mail.example.test")
        self.ok("domain", "add", "other.test")
        self.crypt = hashPassword("secret", "SHA512-CRYPT")

    def passwdFile(self, text):
        path = os.path.join(self.base, "passwd")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_import(self):
        """A Dovecot passwd-file is imported: comments and blanks skipped, hashes kept, {PLAIN} stored in every form."""
        path = self.passwdFile(
            "# Dovecot passwd-file\n"
            "\n"
            "plain:{PLAIN}x::::::\n"
            "full@example.test:%s:1000:1000::/home/u::\n"
            "  # indented comment\n"
            "viaalias@mail.example.test:{PLAIN}y:::::\n" % (self.crypt,)
        )
        out = self.ok("import-passwd", path, "--domain", "example.test")
        self.assertIn("3 accounts added, 0 passwords updated", out)
        self.assertIn("full@example.test: cannot log in with SCRAM-SHA-256, CRAM-MD5 until", out)
        self.assertIn("1 accounts cannot use every mechanism", out)
        d = self.directory()
        plain = d.getAccount("plain@example.test").password
        self.assertEqual(forms.schemes(plain), ["SHA512-CRYPT", "SCRAM-SHA-256", "CRAM-MD5"])
        self.assertTrue(forms.verifyPlain(plain, "x"))
        self.assertEqual(d.getAccount("full@example.test").password, self.crypt)
        self.assertTrue(verifyPassword(d.getAccount("full@example.test").password, "secret"))
        self.assertTrue(forms.verifyPlain(d.getAccount("viaalias@example.test").password, "y"))

    def test_reimportUpdates(self):
        """Importing again updates the passwords of existing accounts."""
        self.ok("import-passwd", self.passwdFile("plain:{PLAIN}x::::::\n"), "--domain", "example.test")
        out = self.ok("import-passwd", self.passwdFile("plain:{PLAIN}changed::::::\n"), "--domain", "example.test")
        self.assertIn("0 accounts added, 1 passwords updated", out)
        stored = self.directory().getAccount("plain@example.test").password
        self.assertTrue(forms.verifyPlain(stored, "changed"))
        self.assertFalse(forms.verifyPlain(stored, "x"))

    def test_exportRoundTrip(self):
        """export-passwd writes a passwd-file with the chosen form that import-passwd reads back."""
        self.ok("account", "add", "a@example.test", "--password", "pa")
        self.ok("account", "add", "b@example.test", "--password", "pb", "--scheme", "ARGON2ID")
        lines = self.ok("export-passwd", "example.test").splitlines()
        self.assertEqual([line.split(":")[0] for line in lines], ["a@example.test", "b@example.test"])
        self.assertTrue(lines[0].split(":", 1)[1].startswith("{SHA512-CRYPT}$6$"))
        self.assertTrue(lines[1].split(":", 1)[1].startswith("{ARGON2ID}$argon2id$"))
        scram = self.ok("export-passwd", "--scheme", "SCRAM-SHA-256").splitlines()
        self.assertEqual(len(scram), 2)
        self.ok("domain", "add", "copy.test")
        path = self.passwdFile("\n".join(line.replace("@example.test", "@copy.test") for line in scram) + "\n")
        self.assertIn("2 accounts added", self.ok("import-passwd", path, "--domain", "copy.test"))
        stored = self.directory().getAccount("a@copy.test").password
        self.assertEqual(forms.schemes(stored), ["SCRAM-SHA-256"])
        self.assertTrue(forms.verifyPlain(stored, "pa"))
        self.directory().addAccount("c@example.test", hashPassword("pc", "SHA256-CRYPT"))
        code, out, err = self.ctl("export-passwd", "--scheme", "CRAM-MD5")
        self.assertEqual(code, ctl.EX_DATAERR)
        self.assertEqual(len(out.splitlines()), 2)
        self.assertIn("c@example.test has no {CRAM-MD5} password", err)

    def test_badLine(self):
        """A bad line fails with its line number and imports nothing."""
        path = self.passwdFile("# c\ngood:{PLAIN}x::::::\nno-colon-here\n")
        err = self.fails(ctl.EX_DATAERR, "import-passwd", path, "--domain", "example.test")
        self.assertIn("passwd:3:", err)
        self.assertIsNone(self.directory().getAccount("good@example.test"))

    def test_badContent(self):
        """Unknown schemes, invalid names and names in another domain are refused by line."""
        for text, fragment in (
            ("a:{ROT13}x::::::\n", "passwd:1: unknown password scheme"),
            ("ok:{PLAIN}x\n../x:{PLAIN}x::::::\n", "passwd:2:"),
            ("a@other.test:{PLAIN}x::::::\n", "not in domain example.test"),
        ):
            err = self.fails(ctl.EX_DATAERR, "import-passwd", self.passwdFile(text), "--domain", "example.test")
            self.assertIn(fragment, err)
        self.assertEqual([line.split()[0] for line in self.ok("account", "list").splitlines()],
                         ["public@example.test", "public@other.test"])

    def test_missingFileOrDomain(self):
        """A missing file or unknown domain fails clearly."""
        self.assertIn("no such domain", self.fails(ctl.EX_DATAERR, "import-passwd", self.passwdFile(""),
                                                   "--domain", "nowhere.test"))
        self.assertIn("nofile", self.fails(ctl.EX_DATAERR, "import-passwd", os.path.join(self.base, "nofile"),
                                           "--domain", "example.test"))


class DeliverTests(CtlMixin, unittest.TestCase):
    def setUp(self):
        CtlMixin.setUp(self)
        self.ok("domain", "add", "example.test")
        self.ok("account", "add", "demo@example.test", "--password", "pw", "--alias", "demo.user")
        self.ok("account", "add", "small@example.test", "--password", "pw", "--quota", "100")
        self.message = os.path.join(self.base, "message")
        with open(self.message, "wb") as f:
            f.write(MESSAGE)

    def deliver(self, *recipients):
        return self.ctl("deliver", "--input", self.message, *recipients)

    def test_delivered(self):
        """A delivered message is stored byte-exact in the INBOX Maildir (new/ or cur/)."""
        code, out, err = self.deliver("demo@example.test")
        self.assertEqual(code, 0, err)
        self.assertEqual(list(self.inbox("demo@example.test").values()), [MESSAGE])

    def test_aliasRecipient(self):
        """Recipients are resolved with account aliases and sub-addresses, case-insensitively."""
        self.assertEqual(self.deliver("Demo.User@EXAMPLE.test", "demo+tag@example.test")[0], 0)
        self.assertEqual(list(self.inbox("demo@example.test").values()), [MESSAGE, MESSAGE])

    def test_unknownUser(self):
        """An unknown recipient exits 67 (EX_NOUSER) and says which one."""
        code, out, err = self.deliver("nobody@example.test")
        self.assertEqual(code, 67)
        self.assertIn("nobody@example.test", err)

    def test_overQuota(self):
        """A recipient over its quota exits 77 and nothing is stored."""
        code, out, err = self.deliver("small@example.test")
        self.assertEqual(code, 77)
        self.assertIn("quota", err)
        self.assertEqual(self.inbox("small@example.test"), {})

    def test_mixedRecipients(self):
        """One failing recipient does not stop delivery to the others; the exit code reports the failure."""
        code, out, err = self.deliver("nobody@example.test", "demo@example.test")
        self.assertEqual(code, 67)
        self.assertEqual(list(self.inbox("demo@example.test").values()), [MESSAGE])
        code, out, err = self.deliver("small@example.test", "demo@example.test")
        self.assertEqual(code, 77)
        self.assertEqual(len(self.inbox("demo@example.test")), 2)

    def test_senderNeedsPostRight(self):
        """deliver +Calendar files into Calendar only for a sender with p (--sender); without it, INBOX."""
        self.ok("acl", "delete", "demo@example.test", "Calendar", "anyone")
        self.assertEqual(self.deliver("demo+Calendar@example.test")[0], 0)
        self.assertEqual(len(self.inbox("demo@example.test")), 1)
        self.ok("acl", "set", "demo@example.test", "Calendar", "boss@example.org", "p")
        self.assertEqual(self.ctl("deliver", "--input", self.message, "-f", "boss@example.org",
                                  "demo+Calendar@example.test")[0], 0)
        self.assertEqual(len(self.inbox("demo@example.test")), 1)
        record = self.directory().getAccount("demo@example.test")
        self.assertEqual(len(os.listdir(os.path.join(record.path.path, "mail", "Calendar", "new"))), 1)

    def test_withoutWriteAccessOverLMTP(self):
        """A user who may not write the data root delivers through the running server's LMTP listener, with the same exit codes."""
        from twisted.internet import reactor
        from twisted.internet.threads import deferToThread

        from gateway.config import loadConfig
        from gateway.lmtp.server import makeFactory
        from gateway.service import makeContext

        context = makeContext(loadConfig(self.config), reactor=reactor, clock=reactor)
        port = reactor.listenTCP(0, makeFactory(context), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.writeConfig("[lmtp]\nlisten = tcp:%d:interface=127.0.0.1\n" % (port.getHost().port,))
        self.patch(ctl, "_canWrite", lambda folder: False)
        d = deferToThread(self.deliver, "demo@example.test", "nobody@example.test")

        def delivered(result):
            code, out, err = result
            self.assertEqual(code, 67, err)
            self.assertIn("nobody@example.test: 550", err)
            [stored] = self.inbox("demo@example.test").values()
            # LMTP carries lines (CRLF), so the bare LF does not survive; the rest does.
            self.assertIn(b"Delivered-To: demo@example.test\r\n", stored)
            self.assertIn(b"Subject: byte exact\r\n\r\nCRLF line\r\n", stored)
            self.assertIn(b"8bit \xe9\xff\x00 bytes\r\n.\r\n..dot\r\nno final newline", stored)
        return d.addCallback(delivered)

    def test_lmtpServiceOff(self):
        """An account without the lmtp service does not receive mail (unknown user)."""
        self.ok("account", "set", "demo@example.test", "--services", "imap")
        self.assertEqual(self.deliver("demo@example.test")[0], 67)

    def test_deliverThroughConsoleScript(self):
        """The console script reads the message from standard input and stores it byte-exact."""
        result = subprocess.run(
            [consoleScript(), "--config", self.config, "deliver", "demo@example.test"],
            input=MESSAGE, capture_output=True, timeout=30,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(list(self.inbox("demo@example.test").values()), [MESSAGE])
        result = subprocess.run(
            [consoleScript(), "--config", self.config, "deliver", "nobody@example.test"],
            input=MESSAGE, capture_output=True, timeout=30,
        )
        self.assertEqual(result.returncode, 67)
        self.assertIn(b"nobody@example.test", result.stderr)


class PathTests(CtlMixin, unittest.TestCase):
    """
    Relative paths in the configuration are relative to its folder, so
    gatewayctl works from any directory, and it never makes an empty data
    root by mistake (issue 15 item 2).
    """

    def setUp(self):
        CtlMixin.setUp(self)
        with open(self.config, "w", encoding="utf-8") as f:
            f.write("[server]\ndata_root = data\n[tls]\ncertificate = tls/cert.pem\nprivate_key = tls/key.pem\n")
        self.elsewhere = os.path.abspath(self.mktemp())
        os.makedirs(self.elsewhere)

    def elsewhereRun(self, *argv, **kw):
        return subprocess.run([consoleScript(), *argv], capture_output=True, timeout=30, cwd=self.elsewhere, **kw)

    def test_deliverFromElsewhere(self):
        """gatewayctl -c /abs/gateway.ini deliver, run from another folder (as Postfix does), finds the account."""
        self.assertEqual(self.elsewhereRun("-c", self.config, "init-demo").returncode, 0)
        self.assertTrue(os.path.exists(os.path.join(self.base, "tls", "cert.pem")))
        result = self.elsewhereRun("-c", self.config, "deliver", "demo@example.test", input=MESSAGE)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(list(self.inbox("demo@example.test").values()), [MESSAGE])
        self.assertEqual(os.listdir(self.elsewhere), [])

    def test_missingDataRootNotCreated(self):
        """With no data root, deliver fails with EX_CONFIG naming it, and creates nothing anywhere."""
        result = self.elsewhereRun("-c", self.config, "deliver", "demo@example.test", input=MESSAGE)
        self.assertEqual(result.returncode, ctl.EX_CONFIG)
        self.assertIn(self.dataRoot.encode(), result.stderr)
        self.assertFalse(os.path.exists(self.dataRoot))
        self.assertEqual(os.listdir(self.elsewhere), [])

    def test_missingConfigGiven(self):
        """A --config that does not exist is an error, even at the default name."""
        for path in ("nowhere.ini", "etc/gateway.ini"):
            result = self.elsewhereRun("-c", path, "account", "list")
            self.assertEqual(result.returncode, ctl.EX_CONFIG)
            self.assertIn(b"configuration file not found", result.stderr)
        self.assertEqual(os.listdir(self.elsewhere), [])

    def test_defaultsAnnounced(self):
        """Without --config and without etc/gateway.ini the defaults are used and said so in one line."""
        os.makedirs(os.path.join(self.elsewhere, "var"))
        result = self.elsewhereRun("account", "list")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(
            result.stderr.decode(),
            "gatewayctl: no etc/gateway.ini here: using the default configuration (data root %s/var)\n"
            % (self.elsewhere,),
        )

    def test_defaultConfigFound(self):
        """Without --config, etc/gateway.ini of the current folder is read, its paths relative to etc/."""
        os.makedirs(os.path.join(self.elsewhere, "etc"))
        with open(os.path.join(self.elsewhere, "etc", "gateway.ini"), "w", encoding="utf-8") as f:
            f.write(sampleConfig())
        result = self.elsewhereRun("domain", "add", "example.test")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, b"")
        self.assertTrue(os.path.exists(os.path.join(self.elsewhere, "var", "domains", "example.test", "domain.ini")))


class AlertTests(CtlMixin, unittest.TestCase):
    def setUp(self):
        CtlMixin.setUp(self)
        self.ok("domain", "add", "example.test")
        self.ok("account", "add", "demo@example.test", "--password", "pw", "--alias", "demo.user")

    def test_alert(self):
        """alert queues the text (words joined) for the account, found through its alias."""
        self.assertIn("alert queued for demo@example.test",
                      self.ok("alert", "demo.user@example.test", "Maintenance", "tonight"))
        folder = os.path.join(self.directory().getAccount("demo@example.test").path.path, "alerts")
        names = [n for n in os.listdir(folder) if not n.startswith(".")]
        self.assertEqual(len(names), 1)
        with open(os.path.join(folder, names[0]), encoding="utf-8") as f:
            self.assertEqual(f.read(), "Maintenance tonight")

    def test_badInput(self):
        """An unknown account exits 67; empty text is a usage error."""
        self.assertIn("no such account", self.fails(ctl.EX_NOUSER, "alert", "nobody@example.test", "hi"))
        self.assertIn("empty", self.fails(ctl.EX_USAGE, "alert", "demo@example.test", " "))


class InitDemoTests(CtlMixin, unittest.TestCase):
    def test_freshDataRoot(self):
        """On an empty data root init-demo creates the certificate, the demo domain and account."""
        out = self.ok("init-demo")
        self.assertIn("certificate", out)
        self.assertIn("demo@example.test", out)
        cert = os.path.join(self.base, "tls", "cert.pem")
        self.assertTrue(os.path.exists(cert))
        self.assertTrue(os.path.exists(os.path.join(self.base, "tls", "key.pem")))
        record = self.directory().getAccount("demo@example.test")
        self.assertTrue(forms.verifyPlain(record.password, ctl.DEMO_PASSWORD))
        self.assertEqual(forms.missingMechanisms(record.password, forms.KNOWN_MECHANISMS), [])

    def test_runTwice(self):
        """A second init-demo changes nothing: same certificate, same account."""
        self.ok("init-demo")
        cert = os.path.join(self.base, "tls", "cert.pem")
        with open(cert, "rb") as f:
            before = f.read()
        self.ok("account", "passwd", "demo@example.test", "--password", "changed")
        self.assertEqual(self.ok("init-demo"), "")
        with open(cert, "rb") as f:
            self.assertEqual(f.read(), before)
        self.assertTrue(forms.verifyPlain(self.directory().getAccount("demo@example.test").password, "changed"))

    def test_existingDomain(self):
        """A data root that already has a domain gets no demo domain."""
        self.ok("domain", "add", "real.test")
        out = self.ok("init-demo")
        self.assertNotIn("demo", out)
        self.assertEqual([d.name for d in self.directory().domains()], ["real.test"])


class GeneralTests(CtlMixin, unittest.TestCase):
    COMMANDS = [
        [], ["domain"], ["domain", "add"], ["domain", "set"], ["domain", "remove"], ["domain", "list"],
        ["account"], ["account", "add"], ["account", "set"], ["account", "passwd"], ["account", "remove"],
        ["account", "list"], ["account", "show"], ["alias"], ["alias", "add"], ["alias", "remove"],
        ["import-passwd"], ["export-passwd"], ["deliver"], ["alert"], ["init-demo"], ["doctor"], ["sample-config"],
    ]

    def test_helpPlainText(self):
        """--help shows whole sentences without epytext markup, and the exit codes."""
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        self.assertRaises(SystemExit, ctl.main, ["--help"])
        text = out.getvalue()
        self.assertNotRegex(text, r"[A-Z]\{")
        self.assertIn("gatewayctl: administer domains,", text)
        self.assertIn("a running server sees them at once.", " ".join(text.split()))
        self.assertIn("78 configuration error.", " ".join(text.split()))

    def test_helpEverywhere(self):
        """--help on every command and subcommand prints usage and exits 0."""
        for command in self.COMMANDS:
            out = io.StringIO()
            self.patch(sys, "stdout", out)
            exc = self.assertRaises(SystemExit, ctl.main, command + ["--help"])
            self.assertEqual(exc.code, 0, command)
            self.assertIn("usage: gatewayctl", out.getvalue())

    def test_helpConsoleScript(self):
        """The installed console script answers --help for a subcommand."""
        result = subprocess.run([consoleScript(), "account", "add", "--help"],
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("--scheme", result.stdout)

    def test_noCommand(self):
        """No command, or an unknown one, is a usage error on stderr."""
        self.assertEqual(self.ctl()[0], 2)
        code, out, err = self.ctl("frobnicate")
        self.assertEqual(code, 2)
        self.assertIn("invalid choice", err)

    def test_badConfig(self):
        """A bad configuration file exits 78 with one line naming the option."""
        self.writeConfig("[imap]\nbogus = 1\n")
        err = self.fails(ctl.EX_CONFIG, "domain", "list")
        self.assertIn("[imap]", err)
        self.assertIn("bogus", err)
        self.assertEqual(err.count("\n"), 1)
        self.config = os.path.join(self.base, "missing.ini")
        self.assertIn("not found", self.fails(ctl.EX_CONFIG, "domain", "list"))

    def test_sampleConfig(self):
        """sample-config prints the sample configuration."""
        self.assertEqual(self.ok("sample-config"), sampleConfig())
