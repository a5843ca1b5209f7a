# -*- test-case-name: tests.test_directory -*-
"""
Tests for L{gateway.directory.filedir}: login-name resolution as seed 001
("Multihoming", "Routing") describes it, and changes made by another
L{FileDirectory} (as C{gatewayctl} in another process) seen without restart.

The layout follows the seed's sample: main domain C{company.test} on
192.0.0.1, C{client1.test} with the dedicated address 192.0.0.2, and
C{client2.test} on the main address; each has an account C{info}.
"""

import os

from twisted.trial import unittest
from zope.interface.verify import verifyObject

from gateway.directory.filedir import FileDirectory, splitAddress
from gateway.errors import DirectoryError, NoSuchAccount, NoSuchDomain
from gateway.interfaces import IAccountRecord, IDirectory, IDomain

MAIN_IP = "192.0.0.1"
CLIENT1_IP = "192.0.0.2"


class DirectoryMixin:
    def setUp(self):
        self.root = self.mktemp()
        self.directory = FileDirectory(self.root, "company.test")
        d = self.directory
        d.addDomain("company.test", addresses=(MAIN_IP,))
        d.addDomain("client1.test", addresses=(CLIENT1_IP,), aliases=("client1.example",))
        d.addDomain("client2.test")
        for domain in ("company.test", "client1.test", "client2.test"):
            d.addAccount("info@" + domain, "{PLAIN}info-" + domain)

    def other(self):
        """
        A second directory over the same data root, as C{gatewayctl} in
        another process would open it.
        """
        return FileDirectory(self.root, "company.test")

    def resolved(self, name, localAddress=None):
        record = self.directory.resolve(name, localAddress)
        return None if record is None else record.address


class InterfaceTests(DirectoryMixin, unittest.TestCase):
    def test_interfaces(self):
        """The directory, its domains and account records provide their interfaces."""
        verifyObject(IDirectory, self.directory)
        verifyObject(IDomain, self.directory.getDomain("company.test"))
        verifyObject(IAccountRecord, self.directory.getAccount("info@company.test"))

    def test_humanReadableFiles(self):
        """Domains and accounts are kept in INI files under the data root."""
        base = os.path.join(self.root, "domains", "client1.test")
        with open(os.path.join(base, "domain.ini"), encoding="utf-8") as f:
            self.assertIn("client1.example", f.read())
        with open(os.path.join(base, "accounts", "info", "account.ini"), encoding="utf-8") as f:
            self.assertIn("{PLAIN}info-client1.test", f.read())


class FormsAndListingTests(DirectoryMixin, unittest.TestCase):
    def test_accounts(self):
        """accounts() lists every account record, by domain then name, or one domain's."""
        self.directory.addAccount("alice@client2.test", "{PLAIN}a")
        self.assertEqual([r.address for r in self.directory.accounts()],
                         ["info@client1.test", "alice@client2.test", "info@client2.test", "info@company.test"])
        self.assertEqual([r.address for r in self.other().accounts("client2.test")],
                         ["alice@client2.test", "info@client2.test"])
        self.assertEqual(self.directory.accounts("nowhere.test"), [])

    def test_severalForms(self):
        """A password of several forms (one a line) survives the INI file, as another process reads it."""
        stored = "{SHA512-CRYPT}$6$x$y\n{SCRAM-SHA-256}4096,c2FsdA==,AA==,AA==\n{CRAM-MD5}" + "00" * 32
        self.directory.setAccount("info@client1.test", password=stored)
        self.assertEqual(self.other().getAccount("info@client1.test").password, stored)

    def test_domainMechanisms(self):
        """A domain's mechanisms are kept upper-case in domain.ini; none set means every mechanism."""
        self.assertEqual(self.directory.getDomain("client2.test").mechanisms, ())
        self.directory.setDomain("client2.test", mechanisms=("PLAIN", "SCRAM-SHA-256"))
        self.assertEqual(self.other().getDomain("client2.test").mechanisms, ("PLAIN", "SCRAM-SHA-256"))


class MultihomingTests(DirectoryMixin, unittest.TestCase):
    def test_fullNameAt(self):
        """C{user@domain} names that domain whatever address the client connected to."""
        self.assertEqual(self.resolved("info@client2.test", MAIN_IP), "info@client2.test")
        self.assertEqual(self.resolved("info@client2.test", CLIENT1_IP), "info@client2.test")

    def test_fullNamePercent(self):
        """C{user%domain} is the same as C{user@domain} (for mailers that refuse @)."""
        self.assertEqual(self.resolved("info%client2.test", MAIN_IP), "info@client2.test")
        self.assertEqual(self.resolved("info%client1.test", None), "info@client1.test")

    def test_assignedAddress(self):
        """A simple name on an address assigned to a domain belongs to that domain."""
        self.assertEqual(self.resolved("info", CLIENT1_IP), "info@client1.test")

    def test_mainAddress(self):
        """A simple name on the main domain's address belongs to the main domain (the seed's third user)."""
        self.assertEqual(self.resolved("info", MAIN_IP), "info@company.test")

    def test_unassignedAddress(self):
        """A simple name on an address no domain claims, or with no address, belongs to the main domain."""
        self.assertEqual(self.resolved("info", "10.9.8.7"), "info@company.test")
        self.assertEqual(self.resolved("info", None), "info@company.test")

    def test_fullNameHelper(self):
        """C{fullName} composes the full name by the same rules, lower-cased."""
        d = self.directory
        self.assertEqual(d.fullName("Info%Client2.Test", MAIN_IP), "info@client2.test")
        self.assertEqual(d.fullName("INFO", CLIENT1_IP), "info@client1.test")
        self.assertEqual(d.fullName("info", "10.0.0.1"), "info@company.test")

    def test_caseInsensitive(self):
        """Login names and domain names are case-insensitive."""
        self.assertEqual(self.resolved("INFO@Client2.TEST"), "info@client2.test")
        self.assertEqual(self.resolved("Info", CLIENT1_IP), "info@client1.test")

    def test_domainAlias(self):
        """A domain alias resolves to the domain's accounts; the canonical name is returned."""
        self.assertEqual(self.resolved("info@client1.example"), "info@client1.test")
        self.assertEqual(self.resolved("info%CLIENT1.example"), "info@client1.test")
        self.assertEqual(self.directory.getDomain("client1.example").name, "client1.test")

    def test_domainForHost(self):
        """The HTTP Host header names the domain (port and alias allowed); else the local address decides."""
        d = self.directory
        self.assertEqual(d.domainForHost("Client1.Example:8100", MAIN_IP).name, "client1.test")
        self.assertEqual(d.domainForHost("unknown.test", CLIENT1_IP).name, "client1.test")
        self.assertEqual(d.domainForHost(None, None).name, "company.test")


class RoutingTests(DirectoryMixin, unittest.TestCase):
    def test_accountAlias(self):
        """An account alias (john_smith for john) opens the account, in any case."""
        self.directory.addAccount("john@company.test", "{PLAIN}j", aliases=("john_smith",))
        self.assertEqual(self.resolved("john_smith", MAIN_IP), "john@company.test")
        self.assertEqual(self.resolved("John_Smith@company.test"), "john@company.test")
        self.assertEqual(self.resolved("john"), "john@company.test")

    def test_accountAliasOnlyInItsDomain(self):
        """An account alias is not a name in other domains."""
        self.directory.addAccount("john@company.test", "{PLAIN}j", aliases=("john_smith",))
        self.assertIsNone(self.resolved("john_smith@client2.test"))
        self.assertIsNone(self.resolved("john_smith", CLIENT1_IP))

    def test_crossDomainRouterRecord(self):
        """The seed's sample: john moved to client1.test as j.smith; C{john} on the main address opens it."""
        self.directory.addAccount("j.smith@client1.test", "{PLAIN}j")
        self.directory.addRouterRecord("john@company.test", "j.smith@client1.test")
        self.assertEqual(self.resolved("john", MAIN_IP), "j.smith@client1.test")
        self.assertEqual(self.resolved("JOHN@company.test"), "j.smith@client1.test")
        self.assertEqual(self.resolved("john%company.test", CLIENT1_IP), "j.smith@client1.test")
        # On client1's address, plain "john" is john@client1.test, which does not exist.
        self.assertIsNone(self.resolved("john", CLIENT1_IP))

    def test_routerRecordToAlias(self):
        """A router record may point at an account alias or a domain alias."""
        self.directory.addAccount("j.smith@client1.test", "{PLAIN}j", aliases=("jsm",))
        self.directory.addRouterRecord("john@company.test", "jsm@client1.example")
        self.assertEqual(self.resolved("john"), "j.smith@client1.test")

    def test_routerChain(self):
        """Router records are followed through several hops."""
        d = self.directory
        d.addRouterRecord("a@company.test", "b@client2.test")
        d.addRouterRecord("b@client2.test", "info@client1.test")
        self.assertEqual(self.resolved("a"), "info@client1.test")

    def test_routerLoop(self):
        """A router loop fails like an unknown name."""
        d = self.directory
        d.addRouterRecord("a@company.test", "b@client2.test")
        d.addRouterRecord("b@client2.test", "a@company.test")
        self.assertIsNone(self.resolved("a"))
        d.addRouterRecord("self@company.test", "self@company.test")
        self.assertIsNone(self.resolved("self"))

    def test_routerToNowhere(self):
        """A router record to a name that does not exist fails like an unknown name."""
        self.directory.addRouterRecord("gone@company.test", "nobody@client2.test")
        self.assertIsNone(self.resolved("gone"))
        self.directory.addRouterRecord("gone2@company.test", "x@no-such-domain.test")
        self.assertIsNone(self.resolved("gone2"))

    def test_removeRouterRecord(self):
        """A removed router record no longer resolves; removing an absent one is an error."""
        d = self.directory
        d.addRouterRecord("john@company.test", "info@client1.test")
        d.removeRouterRecord("john@company.test")
        self.assertIsNone(self.resolved("john"))
        self.assertRaises(DirectoryError, d.removeRouterRecord, "john@company.test")

    def test_routerRecordOverAccountRefused(self):
        """A router record cannot shadow an existing account or account alias."""
        d = self.directory
        self.assertRaises(DirectoryError, d.addRouterRecord, "info@company.test", "info@client1.test")
        d.addAccount("john@company.test", "{PLAIN}j", aliases=("jj",))
        self.assertRaises(DirectoryError, d.addRouterRecord, "jj@company.test", "info@client1.test")
        self.assertRaises(NoSuchDomain, d.addRouterRecord, "x@nowhere.test", "info@client1.test")
        self.assertRaises(DirectoryError, d.addRouterRecord, "x@company.test", "not an address")


class RefusalTests(DirectoryMixin, unittest.TestCase):
    def test_unknown(self):
        """Unknown accounts and unknown domains resolve to None."""
        self.assertIsNone(self.resolved("nobody"))
        self.assertIsNone(self.resolved("info@nowhere.test"))
        self.assertIsNone(self.resolved("nobody", CLIENT1_IP))

    def test_disabledAccount(self):
        """A disabled account resolves to None, directly and through its alias."""
        d = self.directory
        d.setAccount("info@client2.test", enabled=False, aliases=("help",))
        self.assertIsNone(self.resolved("info@client2.test"))
        self.assertIsNone(self.resolved("help@client2.test"))
        self.assertIsNotNone(self.resolved("info@company.test"))

    def test_disabledDomain(self):
        """Every name in a disabled domain, and a router record into it, resolves to None."""
        d = self.directory
        d.addRouterRecord("john@company.test", "info@client1.test")
        d.setDomain("client1.test", enabled=False)
        self.assertIsNone(self.resolved("info@client1.test"))
        self.assertIsNone(self.resolved("info", CLIENT1_IP))
        self.assertIsNone(self.resolved("info@client1.example"))
        self.assertIsNone(self.resolved("john"))

    def test_hostileNames(self):
        """Path tricks, NUL, control characters and huge names resolve to None without error."""
        for name in (
            "../x", "..", ".", "a/b", "info/../info", "../../etc/passwd", "info\x00", "in\x00fo@company.test",
            "info@../company.test", "info@company.test/..", "info@company.test\x00", "in\r\nfo", "a\\b",
            "x" * 10000, "info@" + "x" * 10000, "@", "", " ", "info@", "@company.test", "info@@company.test",
            "accounts", "domain.ini", "info@domains",
        ):
            self.assertIsNone(self.directory.resolve(name, MAIN_IP), repr(name))
            self.assertIsNone(self.directory.resolve(name, None), repr(name))

    def test_getAccountHostile(self):
        """C{getAccount} refuses names that are not plain local parts."""
        for name in ("../info@company.test", "info@../company.test", "a/b@company.test", "\x00@company.test"):
            self.assertIsNone(self.directory.getAccount(name), repr(name))

    def test_badNamesRefusedOnChange(self):
        """Adding domains, accounts and aliases with invalid names is refused."""
        d = self.directory
        for name in ("../x", "a/b", "x" * 300, "bad domain", "a\x00b"):
            self.assertRaises(DirectoryError, d.addDomain, name)
        for address in ("../x@company.test", "a/b@company.test", "noat", "x" * 65 + "@company.test"):
            self.assertRaises(DirectoryError, d.addAccount, address, "{PLAIN}x")
        self.assertRaises(DirectoryError, d.setAccount, "info@company.test", aliases=("../x",))
        self.assertRaises(DirectoryError, d.addAccount, "new@company.test", "{PLAIN}x", aliases=("a/b",))
        self.assertFalse(os.path.exists(os.path.join(self.root, "domains", "company.test", "accounts", "new")))

    def test_duplicatesRefused(self):
        """A domain, domain alias, account or account alias cannot be created twice."""
        d = self.directory
        self.assertRaises(DirectoryError, d.addDomain, "company.test")
        self.assertRaises(DirectoryError, d.addDomain, "client1.example")
        self.assertRaises(DirectoryError, d.addDomain, "new.test", aliases=("client1.example",))
        self.assertRaises(DirectoryError, d.addAccount, "INFO@company.test", "{PLAIN}x")
        d.addAccount("john@company.test", "{PLAIN}j", aliases=("jj",))
        self.assertRaises(DirectoryError, d.addAccount, "jj@company.test", "{PLAIN}x")
        self.assertRaises(DirectoryError, d.setAccount, "info@company.test", aliases=("jj",))
        self.assertRaises(DirectoryError, d.setAccount, "info@company.test", aliases=("john",))
        self.assertEqual(self.resolved("jj"), "john@company.test")

    def test_splitAddress(self):
        """C{splitAddress} lower-cases, accepts %, and refuses non-addresses."""
        self.assertEqual(splitAddress(" Info%Company.Test "), ("info", "company.test"))
        for bad in ("info", "info@", "@x.test", "a/b@x.test", "a@x/y"):
            self.assertRaises(DirectoryError, splitAddress, bad)

    def test_missingRecords(self):
        """Changing or removing what does not exist raises the matching error."""
        d = self.directory
        self.assertRaises(NoSuchAccount, d.setAccount, "nobody@company.test", enabled=False)
        self.assertRaises(NoSuchAccount, d.removeAccount, "nobody@company.test")
        self.assertRaises(NoSuchDomain, d.addAccount, "x@nowhere.test", "{PLAIN}x")
        self.assertRaises(NoSuchDomain, d.setDomain, "nowhere.test", enabled=False)
        self.assertRaises(DirectoryError, d.removeDomain, "client1.example")
        self.assertIsNotNone(d.getDomain("client1.test"))


class LiveChangeTests(DirectoryMixin, unittest.TestCase):
    """
    A running server's directory sees changes written by another instance.
    """

    def test_passwordChange(self):
        """A password changed elsewhere is the one the next resolve returns."""
        self.assertEqual(self.directory.resolve("info").password, "{PLAIN}info-company.test")
        for n in range(5):
            # Same length each time: the change is not detectable by size.
            self.other().setAccount("info@company.test", password="{PLAIN}new-%d" % (n,))
            self.assertEqual(self.directory.resolve("info").password, "{PLAIN}new-%d" % (n,))

    def test_accountAdded(self):
        """An account added elsewhere resolves at once."""
        self.assertIsNone(self.resolved("bob"))
        self.other().addAccount("bob@company.test", "{PLAIN}b")
        self.assertEqual(self.resolved("bob"), "bob@company.test")

    def test_aliasAdded(self):
        """Account aliases and router records added elsewhere resolve at once."""
        self.assertIsNone(self.resolved("helpdesk"))
        self.assertIsNone(self.resolved("john"))
        other = self.other()
        other.setAccount("info@company.test", aliases=("helpdesk",))
        self.assertEqual(self.resolved("helpdesk"), "info@company.test")
        other.addRouterRecord("john@company.test", "info@client1.test")
        self.assertEqual(self.resolved("john"), "info@client1.test")

    def test_accountRemoved(self):
        """An account removed elsewhere no longer resolves."""
        self.assertIsNotNone(self.resolved("info@client2.test"))
        self.other().removeAccount("info@client2.test")
        self.assertIsNone(self.resolved("info@client2.test"))
        self.assertIsNone(self.directory.getAccount("info@client2.test"))

    def test_accountDisabled(self):
        """An account disabled elsewhere stops resolving; enabling it again brings it back."""
        other = self.other()
        other.setAccount("info@company.test", enabled=False)
        self.assertIsNone(self.resolved("info"))
        other.setAccount("info@company.test", enabled=True)
        self.assertEqual(self.resolved("info"), "info@company.test")

    def test_domainChanges(self):
        """Domains added, re-addressed and removed elsewhere take effect at once."""
        other = self.other()
        other.addDomain("client3.test", addresses=("192.0.0.3",))
        other.addAccount("info@client3.test", "{PLAIN}x")
        self.assertEqual(self.resolved("info", "192.0.0.3"), "info@client3.test")
        other.setDomain("client3.test", addresses=("192.0.0.4",))
        self.assertEqual(self.resolved("info", "192.0.0.3"), "info@company.test")
        self.assertEqual(self.resolved("info", "192.0.0.4"), "info@client3.test")
        other.removeDomain("client3.test")
        self.assertIsNone(self.resolved("info@client3.test"))
        self.assertIsNone(self.directory.getDomain("client3.test"))

    def test_handEditedAccount(self):
        """An account.ini edited by hand (no serial change) is re-read on the next lookup."""
        record = self.directory.resolve("info")
        path = os.path.join(record.path.path, "account.ini")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        with open(path + ".new", "w", encoding="utf-8") as f:
            f.write(text.replace("{PLAIN}info-company.test", "{PLAIN}edited-by-hand-longer"))
        os.rename(path + ".new", path)
        self.assertEqual(self.directory.resolve("info").password, "{PLAIN}edited-by-hand-longer")


class SettingsTests(DirectoryMixin, unittest.TestCase):
    def test_domainRoundTrip(self):
        """Every domain setting written is read back, also by another instance."""
        d = self.directory
        d.addDomain(
            "round.test", aliases=("r1.test", "r2.test"), addresses=("10.0.0.1", "::1"),
            cleartextLogin=True, defaultQuota=5 * 1024**2, defaultServices=frozenset({"imap", "lmtp"}),
        )
        d.setDomain("round.test", enabled=False)
        for directory in (d, self.other()):
            domain = directory.getDomain("round.test")
            self.assertEqual(domain.aliases, ("r1.test", "r2.test"))
            self.assertEqual(domain.addresses, ("10.0.0.1", "::1"))
            self.assertIs(domain.cleartextLogin, True)
            self.assertEqual(domain.defaultQuota, 5 * 1024**2)
            self.assertEqual(domain.defaultServices, frozenset({"imap", "lmtp"}))
            self.assertIs(domain.enabled, False)
        self.assertEqual([x.name for x in self.other().domains()],
                         ["client1.test", "client2.test", "company.test", "round.test"])

    def test_domainDefaults(self):
        """A new domain: no clear-text login, unlimited quota, every service, enabled."""
        domain = self.directory.getDomain("client2.test")
        self.assertEqual(
            (domain.cleartextLogin, domain.defaultQuota, domain.enabled),
            (False, None, True),
        )
        self.assertEqual(domain.defaultServices, frozenset({"imap", "pop3", "http", "ftp", "lmtp"}))

    def test_newAccountGetsDomainServices(self):
        """A new account gets the domain's default services."""
        d = self.directory
        d.setDomain("client2.test", defaultServices=frozenset({"imap"}))
        d.addAccount("bob@client2.test", "{PLAIN}b")
        self.assertEqual(self.other().getAccount("bob@client2.test").services, frozenset({"imap"}))

    def test_accountRoundTrip(self):
        """Every account setting written is read back by another instance."""
        d = self.directory
        d.addAccount("bob@client2.test", "{PLAIN}b", aliases=("robert", "rob"),
                     services=frozenset({"ftp"}), quota=1024, quotaSetting="1K", timezone="Europe/Berlin")
        record = self.other().getAccount("bob@client2.test")
        self.assertEqual(record.address, "bob@client2.test")
        self.assertEqual(record.password, "{PLAIN}b")
        self.assertEqual(record.aliases, ("robert", "rob"))
        self.assertEqual(record.services, frozenset({"ftp"}))
        self.assertEqual(record.quota, 1024)
        self.assertEqual(record.timezone, "Europe/Berlin")
        self.assertTrue(os.path.isdir(os.path.join(record.path.path, "files", "private")))

    def test_quotaDefaultFollowsDomain(self):
        """An account with quota C{default} follows the domain default, also when it changes."""
        d = self.directory
        self.assertIsNone(d.getAccount("info@client2.test").quota)
        self.other().setDomain("client2.test", defaultQuota=10 * 1024**2)
        self.assertEqual(d.getAccount("info@client2.test").quota, 10 * 1024**2)
        self.assertEqual(d.resolve("info@client2.test").quota, 10 * 1024**2)
        d.setAccount("info@client2.test", quota=1024, quotaSetting="1K")
        self.other().setDomain("client2.test", defaultQuota=20 * 1024**2)
        self.assertEqual(d.getAccount("info@client2.test").quota, 1024)
        d.setAccount("info@client2.test", quotaSetting="default")
        self.assertEqual(d.getAccount("info@client2.test").quota, 20 * 1024**2)

    def test_removeDomainRemovesAccounts(self):
        """Removing a domain removes its folder and accounts."""
        d = self.directory
        d.removeDomain("client2.test")
        self.assertFalse(os.path.exists(os.path.join(self.root, "domains", "client2.test")))
        self.assertIsNone(d.getAccount("info@client2.test"))

    def test_alerts(self):
        """C{addAlert} writes one file per alert into the account's alerts folder."""
        d = self.directory
        d.addAlert("info@company.test", "first")
        d.addAlert("info@company.test", "second")
        folder = os.path.join(d.getAccount("info@company.test").path.path, "alerts")
        self.assertEqual(len([n for n in os.listdir(folder) if not n.startswith(".")]), 2)
        self.assertRaises(NoSuchAccount, d.addAlert, "nobody@company.test", "x")
