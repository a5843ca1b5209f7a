# -*- test-case-name: tests.test_acl -*-
"""
Tests for L{gateway.store.acl}: RFC 4314 rights, identifiers, evaluation,
the C{dovecot-acl} file and the shared index.
"""

import gc
import os
import shutil
import subprocess
import tempfile
import textwrap
import weakref

from twisted.trial import unittest

from gateway.store import acl
from gateway.store.acl import ACL, ACLError, SharedIndex, parseIdentifier, parseRights


class RightsTests(unittest.TestCase):
    def test_parse(self):
        """Rights letters parse to a set; c means k and d means x, t and e (RFC 4314 2.1.1)."""
        self.assertEqual(parseRights("lrs"), frozenset("lrs"))
        self.assertEqual(parseRights("c"), frozenset("k"))
        self.assertEqual(parseRights("d"), frozenset("xte"))
        self.assertEqual(parseRights(""), frozenset())
        self.assertEqual(parseRights("r01"), frozenset("r01"))

    def test_unknownLetter(self):
        """A letter that is no right is refused."""
        self.assertRaises(ACLError, parseRights, "lrz")
        self.assertRaises(ACLError, parseRights, "l2")

    def test_format(self):
        """Rights are written in RFC order for clients (with c and d) and Dovecot's order for files."""
        rights = parseRights("akxlr")
        self.assertEqual(acl.formatRights(rights), "lrkxa")
        self.assertEqual(acl.formatRights(rights, obsolete=True), "lrkxacd")
        self.assertEqual(acl.formatRights(acl.ALL_RIGHTS, acl.FILE_ORDER), "lrwstipekxa")


class IdentifierTests(unittest.TestCase):
    def test_kinds(self):
        """anyone, authenticated, full and bare names (viewer's domain), negative with '-'."""
        self.assertEqual(parseIdentifier("anyone", "a.test"), ("anyone", False))
        self.assertEqual(parseIdentifier("Authenticated", "a.test"), ("authenticated", False))
        self.assertEqual(parseIdentifier("Bob@B.test", "a.test"), ("user=bob@b.test", False))
        self.assertEqual(parseIdentifier("bob", "a.test"), ("user=bob@a.test", False))
        self.assertEqual(parseIdentifier("-bob", "a.test"), ("user=bob@a.test", True))

    def test_bad(self):
        """Empty names and names with spaces or quotes are refused."""
        for text in ("", "-", "a b", 'x"y', "@x", "x@"):
            self.assertRaises(ACLError, parseIdentifier, text, "a.test")

    def test_imapIdentifier(self):
        """IMAP shows identifiers without user=, negative ones with '-'."""
        self.assertEqual(acl.imapIdentifier("user=bob@a.test", True), "-bob@a.test")
        self.assertEqual(acl.imapIdentifier("anyone"), "anyone")


class EvaluationTests(unittest.TestCase):
    OWNER = "boss@a.test"

    def test_unionMinusNegative(self):
        """Rights are the union of matching positive entries minus the union of negative ones."""
        a = ACL({("anyone", False): frozenset("l"), ("authenticated", False): frozenset("r"),
                 ("user=bob@a.test", False): frozenset("lrsw"), ("user=bob@a.test", True): frozenset("w"),
                 ("anyone", True): frozenset("s")})
        self.assertEqual(a.rightsFor("bob@a.test", self.OWNER), frozenset("lr"))
        self.assertEqual(a.rightsFor("carol@b.test", self.OWNER), frozenset("lr"))
        self.assertEqual(a.rightsFor(None, self.OWNER), frozenset("l"))

    def test_negativeWithoutPositive(self):
        """A negative entry alone takes away what another identifier gave."""
        a = ACL({("anyone", False): frozenset("lr"), ("user=bob@a.test", True): frozenset("r")})
        self.assertEqual(a.rightsFor("bob@a.test", self.OWNER), frozenset("l"))
        self.assertEqual(a.rightsFor("eve@a.test", self.OWNER), frozenset("lr"))

    def test_ownerHasEverything(self):
        """The owner has every right whatever the ACL says."""
        a = ACL({("anyone", True): acl.ALL_RIGHTS, ("owner", False): frozenset("l")})
        self.assertEqual(a.rightsFor(self.OWNER, self.OWNER), acl.ALL_RIGHTS)

    def test_change(self):
        """SETACL semantics: replace, add with +, remove with -; an entry left empty goes."""
        a = ACL()
        a.change("user=bob@a.test", False, frozenset("lr"))
        a.change("user=bob@a.test", False, frozenset("s"), "+")
        self.assertEqual(a.entries[("user=bob@a.test", False)], frozenset("lrs"))
        a.change("user=bob@a.test", False, frozenset("lrs"), "-")
        self.assertEqual(a.entries, {})


class FileTests(unittest.TestCase):
    def setUp(self):
        self.folder = self.mktemp()
        os.makedirs(self.folder)

    def test_roundTrip(self):
        """An ACL written to dovecot-acl reads back equal, in Dovecot's format with an owner line."""
        a = ACL({("user=bob@a.test", False): frozenset("lrs"), ("anyone", False): frozenset("l"),
                 ("user=eve@a.test", True): frozenset("w"), ("authenticated", False): frozenset("lr")})
        acl.writeACL(self.folder, a)
        with open(os.path.join(self.folder, "dovecot-acl")) as f:
            text = f.read()
        self.assertEqual(text, "owner lrwstipekxa\nuser=bob@a.test lrs\n-user=eve@a.test w\n"
                               "anyone l\nauthenticated lr\n")
        read = acl.readACL(self.folder)
        self.assertEqual(read.entries.pop(("owner", False)), frozenset(acl.STANDARD_RIGHTS))
        self.assertEqual(read, a)
        self.assertEqual([n for n in os.listdir(self.folder) if n.endswith(".tmp")], [])

    def test_siteRights(self):
        """The site rights 0 and 1 are written as Dovecot's named rights and read back."""
        a = ACL({("user=bob@a.test", False): parseRights("lr01")})
        acl.writeACL(self.folder, a)
        with open(os.path.join(self.folder, "dovecot-acl")) as f:
            self.assertIn("user=bob@a.test lr:0 1\n", f.read())
        self.assertEqual(acl.readACL(self.folder).entries[("user=bob@a.test", False)], frozenset("lr01"))

    def test_emptyRemovesFile(self):
        """An ACL with nothing for others removes the file."""
        acl.writeACL(self.folder, ACL({("anyone", False): frozenset("l")}))
        acl.writeACL(self.folder, ACL())
        self.assertFalse(os.path.exists(os.path.join(self.folder, "dovecot-acl")))
        self.assertEqual(acl.readACL(self.folder), ACL())

    def test_handEditedBadLines(self):
        """A hand-edited file is used; its bad lines are ignored and logged."""
        with open(os.path.join(self.folder, "dovecot-acl"), "w") as f:
            f.write(textwrap.dedent("""\
                # comment
                user=Bob@a.test lr
                group=staff lr
                anyone lz
                authenticated l

                -user=bob@a.test r
                """))
        logged = []
        from twisted.logger import globalLogPublisher
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        read = acl.readACL(self.folder)
        self.assertEqual(read.rightsFor("bob@a.test", "boss@a.test"), frozenset("l"))
        self.assertEqual(read.rightsFor("eve@a.test", "boss@a.test"), frozenset("l"))
        self.assertEqual(len([e for e in logged if "ignored" in e.get("log_format", "")]), 2)

    def test_rereadAfterChange(self):
        """A file changed on disk is read again."""
        acl.writeACL(self.folder, ACL({("anyone", False): frozenset("l")}))
        self.assertEqual(acl.readACL(self.folder).rightsFor("x@a.test", "o@a.test"), frozenset("l"))
        with open(os.path.join(self.folder, "dovecot-acl"), "w") as f:
            f.write("anyone lrs\nauthenticated lrswi\n")
        self.assertEqual(acl.readACL(self.folder).rightsFor("x@a.test", "o@a.test"), frozenset("lrswi"))


class SharedIndexTests(unittest.TestCase):
    def setUp(self):
        self.index = SharedIndex(os.path.join(self.mktemp(), "shared.sqlite"))
        self.addCleanup(self.index.close)

    def test_visibleTo(self):
        """visibleTo finds mailboxes shared by user name, anyone or authenticated, rights evaluated."""
        self.index.update("boss@a.test", "Calendar", ACL({("user=asst@a.test", False): frozenset("lrs")}))
        self.index.update("sales@a.test", "processed", ACL({("authenticated", False): frozenset("lr"),
                                                            ("user=asst@a.test", True): frozenset("lr")}))
        self.index.update("public@a.test", "news", ACL({("anyone", False): frozenset("lr")}))
        self.assertEqual(self.index.visibleTo("asst@a.test"), {
            ("boss@a.test", "Calendar"): frozenset("lrs"),
            ("public@a.test", "news"): frozenset("lr")})
        self.assertEqual(set(self.index.visibleTo("eve@b.test")),
                         {("sales@a.test", "processed"), ("public@a.test", "news")})

    def test_visibleToKeptUntilACommit(self):
        """
        visibleTo's answer is kept while nobody commits to the index (LIST
        asks it every time), and read again after a commit, this process's
        or another's (a second SharedIndex on the file).
        """
        self.index.update("public@a.test", "news", ACL({("anyone", False): frozenset("lr")}))
        statements = []
        self.index.conn.set_trace_callback(statements.append)
        self.addCleanup(self.index.conn.set_trace_callback, None)
        expected = {("public@a.test", "news"): frozenset("lr")}
        self.assertEqual(self.index.visibleTo("asst@a.test"), expected)
        self.index.visibleTo("asst@a.test")["changed by a caller"] = frozenset()
        self.assertEqual(self.index.visibleTo("asst@a.test"), expected)
        self.assertEqual(len(statements), 1)
        other = SharedIndex(self.index.path)
        self.addCleanup(other.close)
        other.update("boss@a.test", "Calendar", ACL({("user=asst@a.test", False): frozenset("lrs")}))
        expected[("boss@a.test", "Calendar")] = frozenset("lrs")
        self.assertEqual(self.index.visibleTo("asst@a.test"), expected)
        self.index.remove("public@a.test", "news")
        del expected[("public@a.test", "news")]
        self.assertEqual(self.index.visibleTo("asst@a.test"), expected)

    def test_readsMakeNoCursorEach(self):
        """The reactor thread's reads (LIST's visibleTo) go through one cursor: a connection keeps a weak reference to every cursor it made (pruned every 200th), and after a soak that of the process-long shared index held ~200, made during traffic, in the sparse arenas."""
        self.index.update("public@a.test", "news", ACL({("anyone", False): frozenset("lr")}))
        for _ in range(40):
            self.assertEqual(self.index.visibleTo("asst@a.test"), {("public@a.test", "news"): frozenset("lr")})
            self.assertEqual(self.index.mailboxesOf("public@a.test"), ["news"])
            self.assertEqual(self.index.known("public@a.test", "news").rightsFor("x@a.test", "public@a.test"),
                             frozenset("lr"))
        cursorLists = [x for x in gc.get_referents(self.index.conn)
                       if type(x) is list and x and all(type(r) is weakref.ReferenceType for r in x)]
        self.assertLess(max(len(x) for x in cursorLists), 20)
        self.index.close()
        self.assertEqual(self.index.mailboxesOf("public@a.test"), ["news"])

    def test_renameAndRemove(self):
        """Renaming carries a mailbox's and its children's entries; removing forgets them."""
        shared = ACL({("anyone", False): frozenset("l")})
        self.index.update("o@a.test", "Work", shared)
        self.index.update("o@a.test", "Work/Sub", shared)
        self.index.update("o@a.test", "Workshop", shared)
        self.index.rename("o@a.test", "Work", "Old")
        self.assertEqual(self.index.mailboxesOf("o@a.test"), ["Old", "Old/Sub", "Workshop"])
        self.index.remove("o@a.test", "Old")
        self.assertEqual(self.index.mailboxesOf("o@a.test"), ["Old/Sub", "Workshop"])

    def test_runWrite(self):
        """runWrite commits a write in a connection of its own, readable from the index's own connection."""
        shared = ACL({("anyone", False): frozenset("l")})
        self.assertEqual(self.index.runWrite(
            lambda conn, group: self.index.update("o@a.test", "Work", shared, conn) or "done"), "done")
        self.assertEqual(self.index.mailboxesOf("o@a.test"), ["Work"])
        self.assertIsNot(self.index._writeConn, self.index.conn)

    def test_runWriteFails(self):
        """A write that raises leaves the index as it was, and what it gave to undo runs."""
        undone = []

        def write(conn, group):
            self.index.update("o@a.test", "Work", ACL({("anyone", False): frozenset("l")}), conn)
            group.ifRolledBack(undone.append, "undone")
            raise ValueError("no")
        self.assertRaises(ValueError, self.index.runWrite, write)
        self.assertEqual(self.index.mailboxesOf("o@a.test"), [])
        self.assertEqual(undone, ["undone"])

    def test_rebuild(self):
        """rebuild reads every dovecot-acl file of the accounts given."""
        root = self.mktemp()
        for name in ("INBOX", "Calendar", "Work/Sub"):
            os.makedirs(os.path.join(root, *name.split("/"), "cur"))
        acl.writeACL(os.path.join(root, "Calendar"), ACL({("user=asst@a.test", False): frozenset("lr")}))
        acl.writeACL(os.path.join(root, "Work", "Sub"), ACL({("anyone", False): frozenset("l")}))
        self.assertEqual(self.index.rebuild([("boss@a.test", root)]), 2)
        self.assertEqual(self.index.mailboxesOf("boss@a.test"), ["Calendar", "Work/Sub"])


DOVECOT_CONF_23 = """\
mail_location = maildir:{root}:LAYOUT=fs:INBOX={root}/INBOX
mail_plugins = acl
plugin {{
  acl = vfile
}}
"""


class DovecotTests(unittest.TestCase):
    """
    Dovecot's own C{doveadm acl get} reads what we write.
    """

    def setUp(self):
        self.doveadm = shutil.which("doveadm") or (
            "/usr/bin/doveadm" if os.path.exists("/usr/bin/doveadm") else None)
        if self.doveadm is None:
            raise unittest.SkipTest("doveadm (Debian dovecot-core) is not installed")

    def test_doveadmReadsOurFile(self):
        """doveadm acl get (vfile backend, fs layout) shows the entries we wrote."""
        # Dovecot refuses mail access as root, so the tree is read as nobody:
        # outside the test folder, whose parents are private.
        base = tempfile.mkdtemp(prefix="gateway-dovecot-")
        self.addCleanup(shutil.rmtree, base, True)
        os.chmod(base, 0o777)
        root = os.path.join(base, "mail")
        for name in ("INBOX", "Calendar"):
            os.makedirs(os.path.join(root, name, "cur"))
            os.makedirs(os.path.join(root, name, "new"))
            os.makedirs(os.path.join(root, name, "tmp"))
        acl.writeACL(os.path.join(root, "Calendar"), ACL({
            ("user=asst@a.test", False): frozenset("lrs0"), ("anyone", False): frozenset("l"),
            ("user=eve@a.test", True): frozenset("r")}))
        conf = os.path.join(base, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(DOVECOT_CONF_23.format(root=root))
        for top, _dirs, files in os.walk(base):
            os.chmod(top, 0o777)
            for name in files:
                os.chmod(os.path.join(top, name), 0o666)
        result = subprocess.run(
            [self.doveadm, "-c", conf, "-o", "base_dir=" + base, "-o", "log_path=/dev/stderr",
             "-o", "state_dir=" + base, "-o", "mail_uid=65534", "-o", "mail_gid=65534",
             "acl", "get", "Calendar"],
            capture_output=True, text=True, env=dict(os.environ, HOME=base, USER="nobody"))
        if result.returncode != 0 and ("Unknown setting" in result.stderr or "obsolete" in result.stderr):
            raise unittest.SkipTest("this doveadm needs another configuration: " + result.stderr.strip()[:200])
        self.assertEqual(result.returncode, 0, result.stderr)
        got = {}
        for line in result.stdout.splitlines()[1:]:
            if line.strip():
                identifier, *rights = line.split()
                got[identifier] = set(rights)
        self.assertEqual(got.get("user=asst@a.test"), {"lookup", "read", "write-seen", "0"}, result.stdout)
        self.assertEqual(got.get("user=eve@a.test"), {"-read"}, result.stdout)
        self.assertEqual(got.get("anyone"), {"lookup"}, result.stdout)
        self.assertEqual(len(got.get("owner", ())), 11, result.stdout)
