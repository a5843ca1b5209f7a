# -*- test-case-name: tests.test_auth_e2e -*-
"""
Every login mechanism, end to end over loopback, for an account made the way
an administrator makes one (C{gatewayctl account add} with the default
configuration): Python's imaplib and poplib, a SCRAM-SHA-256 client written
here (checked against the RFC 7677 example), Thunderbird's order of
preference, and the default choices of curl, mutt (in tmux), mbsync and
fetchmail (the last three skipped with a reason when they are not installed:
C{make tools} installs them as root).
"""

import base64
import hashlib
import hmac
import imaplib
import io
import os
import poplib
import shutil
import ssl
import subprocess
import sys
import time

from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from gateway import ctl
from gateway.config import loadConfig
from gateway.imap.server import makeFactory as imapFactory
from gateway.pop3.server import makeFactory as popFactory
from gateway.service import makeContext
from tests.support import testCertificate

PASSWORD = "correct horse"
ACCOUNT = "admin.made@example.test"
MESSAGE = b"From: a@example.org\r\nTo: admin.made@example.test\r\nSubject: sync me\r\n\r\nbody\r\n"


class ScramClient:
    """
    The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel
    binding: call it with each server challenge (C{bytes}), it returns the
    answer; after the server-final message C{verified} says whether the
    server proved that it knows the password too.
    """

    def __init__(self, username, password, nonce=None):
        self.username = username
        self.password = password.encode("utf-8")
        self.nonce = nonce or base64.b64encode(os.urandom(18)).decode("ascii")
        self.step = 0
        self.verified = False

    def __call__(self, challenge):
        self.step += 1
        if self.step == 1 and not challenge:
            return self.first()
        if self.step == 1 or self.serverSignature is None:
            return self.final(challenge)
        attributes = dict(part.split("=", 1) for part in challenge.decode("ascii").split(","))
        self.verified = hmac.compare_digest(base64.b64decode(attributes["v"]), self.serverSignature)
        return b""

    serverSignature = None

    def first(self):
        name = self.username.replace("=", "=3D").replace(",", "=2C")
        self.firstBare = "n=%s,r=%s" % (name, self.nonce)
        return ("n,," + self.firstBare).encode("utf-8")

    def final(self, serverFirst):
        text = serverFirst.decode("utf-8")
        attributes = dict(part.split("=", 1) for part in text.split(","))
        assert attributes["r"].startswith(self.nonce)
        salt, iterations = base64.b64decode(attributes["s"]), int(attributes["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password, salt, iterations)
        clientKey = hmac.new(salted, b"Client Key", "sha256").digest()
        storedKey = hashlib.sha256(clientKey).digest()
        withoutProof = "c=biws,r=%s" % (attributes["r"],)
        authMessage = ",".join([self.firstBare, text, withoutProof]).encode("utf-8")
        signature = hmac.new(storedKey, authMessage, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(clientKey, signature, strict=True))
        serverKey = hmac.new(salted, b"Server Key", "sha256").digest()
        self.serverSignature = hmac.new(serverKey, authMessage, "sha256").digest()
        return ("%s,p=%s" % (withoutProof, base64.b64encode(proof).decode("ascii"))).encode("utf-8")


def responder(mechanism, username, password):
    """
    A callable answering the server's challenges for C{mechanism}.
    """
    if mechanism == "PLAIN":
        return lambda challenge: b"\0" + username.encode() + b"\0" + password.encode()
    if mechanism == "LOGIN":
        return lambda challenge: (username if challenge.startswith(b"User") else password).encode()
    if mechanism == "CRAM-MD5":
        return lambda challenge: (
            username.encode() + b" " + hmac.new(password.encode(), challenge, "md5").hexdigest().encode()
        )
    if mechanism == "SCRAM-SHA-256":
        return ScramClient(username, password)
    raise ValueError(mechanism)


def popAuthenticate(client, mechanism, answer):
    """
    Run POP3 C{AUTH mechanism} (RFC 5034) on a C{poplib.POP3}.

    @return: the final C{+OK}/C{-ERR} line.
    """
    client._putcmd("AUTH " + mechanism)
    while True:
        line, _ = client._getline()
        if not line.startswith(b"+ ") and line != b"+":
            return line
        challenge = base64.b64decode(line[2:])
        client._putline(base64.b64encode(answer(challenge)))


#: Thunderbird's preference among what a server offers.
THUNDERBIRD_ORDER = ("SCRAM-SHA-256", "CRAM-MD5", "PLAIN", "LOGIN")


class ServerMixin:
    """
    A data root made with gatewayctl (one domain, one account added with
    C{account add}) and a server over it on loopback.
    """

    timeout = 60

    def setUp(self):
        self.base = os.path.abspath(self.mktemp())
        os.makedirs(self.base)
        cert, key = testCertificate()
        self.configPath = os.path.join(self.base, "gateway.ini")
        with open(self.configPath, "w", encoding="utf-8") as f:
            f.write("[server]\ndata_root = %s\n[tls]\ncertificate = %s\nprivate_key = %s\n"
                    % (os.path.join(self.base, "data"), cert, key))
        os.makedirs(os.path.join(self.base, "data"))
        self.gatewayctl("domain", "add", "example.test")
        self.gatewayctl("account", "add", ACCOUNT, "--password-stdin", stdin=PASSWORD + "\n")
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.startServer()

    def gatewayctl(self, *argv, stdin=None):
        out, err = io.StringIO(), io.StringIO()
        self.patch(sys, "stderr", err)
        if stdin is not None:
            self.patch(sys, "stdin", io.StringIO(stdin))
        code = ctl.main(["--config", self.configPath] + list(argv), out=out)
        self.assertEqual(code, 0, err.getvalue())
        return out.getvalue()

    def startServer(self):
        config = loadConfig(self.configPath)
        config._values["auth", "failure_delay"] = 0.0
        self.context = makeContext(config, reactor=reactor, clock=reactor)
        self.ports = {}
        for name, factory in (("imap", imapFactory(self.context)), ("pop3", popFactory(self.context))):
            plain = reactor.listenTCP(0, factory, interface="127.0.0.1")
            secure = reactor.listenSSL(0, factory, self.context.tls, interface="127.0.0.1")
            self.addCleanup(plain.stopListening)
            self.addCleanup(secure.stopListening)
            self.ports[name] = plain.getHost().port
            self.ports[name + "s"] = secure.getHost().port
            if name == "imap":
                self.addCleanup(self._dropSessions, factory)

    def _dropSessions(self, factory):
        for session in list(factory.sessions):
            session.transport.abortConnection()

    def sslContext(self):
        return ssl.create_default_context(cafile=testCertificate()[0])

    def loggedMechanisms(self):
        return [
            e.get("mechanism") for e in self.events
            if e.get("log_namespace") == "gateway.auth" and "authentication succeeded" in e.get("log_format", "")
        ]



class EndToEndTests(ServerMixin, unittest.TestCase):
    """
    Logins over real sockets to IMAP and POP3 for an account made by
    C{gatewayctl account add} under the default C{[auth] mechanisms}.
    """

    def imapLogin(self, mechanism, secure=True, password=PASSWORD):
        """
        Log in with imaplib and C{mechanism}; return C{(result, capabilities, scram client or None)}.
        """
        if secure:
            imap = imaplib.IMAP4_SSL("127.0.0.1", self.ports["imaps"], ssl_context=self.sslContext(), timeout=10)
        else:
            imap = imaplib.IMAP4("127.0.0.1", self.ports["imap"], timeout=10)
        try:
            capabilities = imap.capabilities
            answer = responder(mechanism, ACCOUNT, password)
            try:
                result = imap.authenticate(mechanism, answer)[0]
            except imaplib.IMAP4.error as e:
                result = str(e)
            if result == "OK":
                self.assertEqual(imap.select("INBOX")[0], "OK")
            return result, capabilities, answer if isinstance(answer, ScramClient) else None
        finally:
            imap.shutdown()

    def test_imapEveryMechanism(self):
        """Over IMAPS every mechanism offered (PLAIN, LOGIN, SCRAM-SHA-256, CRAM-MD5) logs in; a wrong password does not."""
        def run():
            results = {}
            for mechanism in ("PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5"):
                result, capabilities, scram = self.imapLogin(mechanism)
                results[mechanism] = result
                self.assertIn("AUTH=" + mechanism, capabilities)
                if scram is not None:
                    self.assertTrue(scram.verified, "the server's SCRAM signature was wrong")
                wrong, _, _ = self.imapLogin(mechanism, password="wrong")
                self.assertIn("AUTHENTICATIONFAILED", wrong)
            return results

        def check(results):
            self.assertEqual(results, dict.fromkeys(results, "OK"))
            self.assertEqual(self.loggedMechanisms(), ["PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5"])

        return deferToThread(run).addCallback(check)

    def test_imapLoginCommandAndCramHelper(self):
        """imaplib's login() over TLS and login_cram_md5() over clear text both work."""
        def run():
            imap = imaplib.IMAP4_SSL("127.0.0.1", self.ports["imaps"], ssl_context=self.sslContext(), timeout=10)
            self.assertEqual(imap.login(ACCOUNT, PASSWORD)[0], "OK")
            imap.logout()
            imap = imaplib.IMAP4("127.0.0.1", self.ports["imap"], timeout=10)
            self.assertIn("LOGINDISABLED", imap.capabilities)
            self.assertEqual(imap.login_cram_md5(ACCOUNT, PASSWORD)[0], "OK")
            imap.logout()

        return deferToThread(run)

    def test_popEveryMechanism(self):
        """POP3: USER/PASS over POP3S, and AUTH with each mechanism (SCRAM and CRAM-MD5 without TLS too)."""
        def run():
            client = poplib.POP3_SSL("127.0.0.1", self.ports["pop3s"], context=self.sslContext(), timeout=10)
            client.user(ACCOUNT)
            self.assertTrue(client.pass_(PASSWORD).startswith(b"+OK"))
            client.quit()
            results = {}
            for mechanism, secure in (("PLAIN", True), ("LOGIN", True), ("SCRAM-SHA-256", True),
                                      ("CRAM-MD5", True), ("SCRAM-SHA-256", False), ("CRAM-MD5", False)):
                if secure:
                    client = poplib.POP3_SSL("127.0.0.1", self.ports["pop3s"], context=self.sslContext(),
                                             timeout=10)
                else:
                    client = poplib.POP3("127.0.0.1", self.ports["pop3"], timeout=10)
                offered = client.capa().get("SASL", [])
                self.assertIn(mechanism, offered)
                answer = responder(mechanism, ACCOUNT, PASSWORD)
                results[mechanism, secure] = popAuthenticate(client, mechanism, answer)
                if isinstance(answer, ScramClient):
                    self.assertTrue(answer.verified)
                client.stat()
                client.quit()
            return results

        def check(results):
            for key, line in results.items():
                self.assertTrue(line.startswith(b"+OK"), (key, line))

        return deferToThread(run).addCallback(check)

    def thunderbird(self, secure):
        """
        Log in as Thunderbird chooses: the first of L{THUNDERBIRD_ORDER} the
        server offers.

        @return: C{(mechanism, result)}.
        """
        if secure:
            imap = imaplib.IMAP4_SSL("127.0.0.1", self.ports["imaps"], ssl_context=self.sslContext(), timeout=10)
        else:
            imap = imaplib.IMAP4("127.0.0.1", self.ports["imap"], timeout=10)
        try:
            offered = [c[5:] for c in imap.capabilities if c.startswith("AUTH=")]
            mechanism = [m for m in THUNDERBIRD_ORDER if m in offered][0]
            return mechanism, imap.authenticate(mechanism, responder(mechanism, ACCOUNT, PASSWORD))[0]
        finally:
            imap.shutdown()

    def test_thunderbirdOrder(self):
        """Thunderbird's order (SCRAM, then CRAM, then PLAIN) logs in, and still does when a domain narrows the list."""
        def run():
            first = (self.thunderbird(True), self.thunderbird(False))
            self.gatewayctl("domain", "set", "example.test", "--mechanisms", "PLAIN,LOGIN,CRAM-MD5")
            second = (self.thunderbird(True), self.thunderbird(False))
            self.gatewayctl("domain", "set", "example.test", "--mechanisms", "PLAIN")
            third = (self.thunderbird(True),)
            refused = self.imapLogin("SCRAM-SHA-256")[0]
            return first, second, third, refused

        def check(result):
            first, second, third, refused = result
            self.assertEqual(first, (("SCRAM-SHA-256", "OK"), ("SCRAM-SHA-256", "OK")))
            self.assertEqual(second, (("CRAM-MD5", "OK"), ("CRAM-MD5", "OK")))
            self.assertEqual(third, (("PLAIN", "OK"),))
            self.assertNotEqual(refused, "OK")

        return deferToThread(run).addCallback(check)

    def curl(self, *args):
        return subprocess.run(
            ["/usr/bin/curl", "-sS", "-v", "--max-time", "20", "--cacert", testCertificate()[0],
             "-u", "%s:%s" % (ACCOUNT, PASSWORD)] + list(args),
            capture_output=True, timeout=30,
        )

    def test_curlDefaults(self):
        """curl with no login options logs in over IMAP, IMAPS, POP3 and POP3S (it picks CRAM-MD5)."""
        if not os.path.exists("/usr/bin/curl"):
            raise unittest.SkipTest("curl is not installed (make tools installs it as root)")

        def run():
            return [
                self.curl("imap://127.0.0.1:%d/" % (self.ports["imap"],)),
                self.curl("imaps://localhost:%d/" % (self.ports["imaps"],)),
                self.curl("pop3://127.0.0.1:%d/" % (self.ports["pop3"],)),
                self.curl("pop3s://localhost:%d/" % (self.ports["pop3s"],)),
            ]

        def check(results):
            for result in results:
                self.assertEqual(result.returncode, 0, result.stderr.decode("utf-8", "replace")[-2000:])
            self.assertIn(b'"INBOX"', results[0].stdout)
            # curl (without libgsasl, as Debian builds it) prefers CRAM-MD5 to PLAIN and LOGIN.
            self.assertEqual(self.loggedMechanisms(), ["CRAM-MD5"] * 4)

        return deferToThread(run).addCallback(check)

    def test_mbsync(self):
        """mbsync with its default authentication (SCRAM-SHA-256) syncs INBOX over IMAPS into a local Maildir."""
        mbsync = shutil.which("mbsync")
        if mbsync is None:
            raise unittest.SkipTest("mbsync is not installed (Debian isync; make tools installs it as root)")
        account = self.context.realm.accountFor(ACCOUNT)
        account.mailStore.getMailbox("INBOX").appendMessage(MESSAGE)
        local = os.path.join(self.base, "mbsync-mail")
        os.makedirs(local)
        rc = os.path.join(self.base, "mbsyncrc")
        with open(rc, "w", encoding="utf-8") as f:
            f.write(
                "IMAPAccount gw\nHost localhost\nPort %d\nUser %s\nPass \"%s\"\nSSLType IMAPS\n"
                "CertificateFile %s\n\nIMAPStore gw-remote\nAccount gw\n\n"
                "MaildirStore gw-local\nPath %s/\nInbox %s/INBOX\n\n"
                "Channel gw\nFar :gw-remote:\nNear :gw-local:\nPatterns INBOX\nCreate Near\nSyncState *\n"
                % (self.ports["imaps"], ACCOUNT, PASSWORD, testCertificate()[0], local, local)
            )

        def run():
            return subprocess.run([mbsync, "-c", rc, "-a"], capture_output=True, timeout=60,
                                  env=dict(os.environ, HOME=self.base))

        def check(result):
            self.assertEqual(result.returncode, 0, (result.stdout + result.stderr).decode("utf-8", "replace"))
            found = []
            for sub in ("new", "cur"):
                folder = os.path.join(local, "INBOX", sub)
                for name in os.listdir(folder):
                    with open(os.path.join(folder, name), "rb") as f:
                        found.append(f.read())
            self.assertEqual(len(found), 1)
            self.assertIn(b"Subject: sync me\n", found[0])
            self.assertTrue(found[0].endswith(b"\n\nbody\n"), found[0])
            # Through Cyrus SASL (libsasl2-modules) mbsync prefers SCRAM-SHA-256.
            self.assertEqual(self.loggedMechanisms(), ["SCRAM-SHA-256"])

        return deferToThread(run).addCallback(check)


    def test_fetchmail(self):
        """fetchmail with its default authentication (CRAM-MD5) fetches INBOX over POP3S and over POP3 without TLS."""
        fetchmail = shutil.which("fetchmail")
        if fetchmail is None:
            raise unittest.SkipTest("fetchmail is not installed (make tools installs it as root)")
        account = self.context.realm.accountFor(ACCOUNT)
        account.mailStore.getMailbox("INBOX").appendMessage(MESSAGE)
        out = os.path.join(self.base, "fetched")

        def rcFile(name, port, options):
            path = os.path.join(self.base, name)
            with open(path, "w", encoding="utf-8") as f:
                f.write(
                    'set no bouncemail\npoll localhost protocol POP3 port %d\n user "%s" there password "%s"'
                    ' is "nobody" here\n %s\n keep\n mda "/bin/sh -c \'cat >> %s\'"\n'
                    % (port, ACCOUNT, PASSWORD, options, out)
                )
            os.chmod(path, 0o600)
            return path

        secure = rcFile("fetchmailrc-ssl", self.ports["pop3s"], "ssl sslcertck sslcertfile %s" % (testCertificate()[0],))
        clear = rcFile("fetchmailrc", self.ports["pop3"], "sslproto ''")

        def run():
            env = dict(os.environ, HOME=self.base, FETCHMAILHOME=self.base)
            return [
                subprocess.run([fetchmail, "-f", rc, "--nosyslog", "--nodetach", "-v", "-a"],
                               capture_output=True, timeout=60, env=env)
                for rc in (secure, clear)
            ]

        def check(results):
            for result in results:
                self.assertEqual(result.returncode, 0, (result.stdout + result.stderr).decode("utf-8", "replace"))
            with open(out, "rb") as f:
                fetched = f.read()
            self.assertEqual(fetched.count(b"Subject: sync me"), 2)
            # fetchmail prefers CRAM-MD5 to USER/PASS when it is offered.
            self.assertEqual(self.loggedMechanisms(), ["CRAM-MD5", "CRAM-MD5"])

        return deferToThread(run).addCallback(check)


    def test_mutt(self):
        """mutt (in tmux) with its default authentication (SCRAM-SHA-256) opens INBOX over IMAPS and lists the message."""
        mutt, tmux = shutil.which("mutt"), shutil.which("tmux")
        if mutt is None or tmux is None:
            raise unittest.SkipTest("mutt or tmux is not installed (make tools installs them as root)")
        account = self.context.realm.accountFor(ACCOUNT)
        account.mailStore.getMailbox("INBOX").appendMessage(MESSAGE)
        rc = os.path.join(self.base, "muttrc")
        with open(rc, "w", encoding="utf-8") as f:
            f.write(
                'set folder="imaps://localhost:%d/"\nset spoolfile="+INBOX"\nset imap_user="%s"\n'
                'set imap_pass="%s"\nset certificate_file="%s"\nset header_cache=""\nset mail_check=0\n'
                'set timeout=0\n'
                % (self.ports["imaps"], ACCOUNT, PASSWORD, testCertificate()[0])
            )
        socket = "gateway-test-%d" % (os.getpid(),)
        env = dict(os.environ, HOME=self.base, TERM="xterm")
        self.addCleanup(subprocess.run, [tmux, "-L", socket, "kill-server"], capture_output=True)

        def run():
            subprocess.run([tmux, "-L", socket, "new-session", "-d", "-x", "160", "-y", "40", mutt, "-n", "-F", rc],
                           check=True, env=env, timeout=30)
            screen = ""
            for _ in range(300):
                screen = subprocess.run([tmux, "-L", socket, "capture-pane", "-p"], capture_output=True,
                                        text=True, env=env, timeout=30).stdout
                if "sync me" in screen:
                    break
                time.sleep(0.1)
            return screen

        def check(screen):
            self.assertIn("sync me", screen)
            # Debian's mutt authenticates through GNU SASL, which prefers SCRAM-SHA-256.
            self.assertEqual(self.loggedMechanisms(), ["SCRAM-SHA-256"], screen)

        return deferToThread(run).addCallback(check)


class ParallelGuessingTests(ServerMixin, unittest.TestCase):
    """
    Issue 16 item 2 over real sockets: after failures from one address,
    parallel connections from it each trying a password all wait their turn,
    the one with the right password too.
    """

    def startServer(self):
        config = loadConfig(self.configPath)
        config._values["auth", "failure_delay"] = 0.05
        config._values["auth", "max_failure_delay"] = 0.05
        config._values["auth", "penalty_after"] = 3
        self.context = makeContext(config, reactor=reactor, clock=reactor)
        factory = imapFactory(self.context)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.addCleanup(self._dropSessions, factory)
        self.port = port.getHost().port

    def login(self, password):
        imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
        try:
            return imap.login_cram_md5(ACCOUNT, password)[0]
        except imaplib.IMAP4.error:
            return "NO"
        finally:
            imap.shutdown()

    def test_parallelGuessesWait(self):
        """After 3 failures, 8 parallel connections (one with the right password) are each held before their answer."""
        import concurrent.futures

        def run():
            before = [self.login("wrong%d" % (i,)) for i in range(3)]
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                during = list(pool.map(self.login, ["guess%d" % (i,) for i in range(7)] + [PASSWORD]))
            return before, during

        def check(result):
            before, during = result
            self.assertEqual(before, ["NO"] * 3)
            self.assertEqual(during, ["NO"] * 7 + ["OK"])
            attempts = [e for e in self.events if e.get("log_namespace") == "gateway.auth" and "waited" in e]
            self.assertEqual(len(attempts), 11)
            waits = [e["waited"] for e in attempts[3:]]
            self.assertTrue(all(w > 0 for w in waits), waits)
            success = [e for e in attempts if "succeeded" in e["log_format"]]
            self.assertGreater(success[0]["waited"], 0)

        return deferToThread(run).addCallback(check)


class ScramClientTests(unittest.TestCase):
    """
    The test's own SCRAM client against the example of RFC 7677 section 3.
    """

    def test_rfc7677(self):
        """With the RFC's nonce, salt and iterations the client sends the RFC's proof and accepts its signature."""
        client = ScramClient("user", "pencil", nonce="rOprNGfwEbeRWgbNEkqO")
        self.assertEqual(client(b""), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        final = client(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
        self.assertEqual(
            final,
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
            b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        )
        self.assertEqual(client(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="), b"")
        self.assertTrue(client.verified)
