# -*- test-case-name: tests.test_ftp_e2e -*-
"""
End-to-end FTP and FTPS with real clients (C{ftplib}, C{curl}) over
loopback.
"""

import ftplib
import io
import os
import socket
import ssl
import subprocess
import sys
import time

from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from gateway.ftp import data
from gateway.ftp.server import makeFactory
from gateway.store.files import TEMP_PREFIX, FileStore
from tests.support import PASSWORD, makeTestContext, testCertificate
from tests.test_store_files import fillsUp

NAME = "Grüße – 日本語 ✓.txt"
CURL = "/usr/bin/curl"
LFTP = "/usr/bin/lftp"


def runLftp(port, script):
    """
    Run lftp's C{script} against the server on C{port} as demo, in a
    thread: a C{Deferred} of the C{subprocess.CompletedProcess}.
    """
    return deferToThread(
        subprocess.run, [LFTP, "-u", "demo," + PASSWORD, "-e", script, "ftp://127.0.0.1:%d" % (port,)],
        capture_output=True, timeout=30)


class _Server:
    """
    Serve FTP on loopback for one test.
    """

    def serve(self, implicit=False, **kwargs):
        self.context = makeTestContext(self, reactor=reactor, clock=reactor, **kwargs)
        self.factory = makeFactory(self.context)
        if implicit:
            self.listener = reactor.listenSSL(0, self.factory, self.context.tls, interface="127.0.0.1")
        else:
            self.listener = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.addCleanup(self.listener.stopListening)
        self.addCleanup(self.factory.stopThreads)
        self.port = self.listener.getHost().port
        self.account = self.context.realm.accountFor("demo@example.test")
        self.root = self.account.fileStore.root.path
        return self.port

    def client(self, tls=False):
        if tls:
            ctx = ssl.create_default_context(cafile=testCertificate()[0])
            ftp = ftplib.FTP_TLS(context=ctx, timeout=10, encoding="utf-8")
        else:
            ftp = ftplib.FTP(timeout=10, encoding="utf-8")
        ftp.connect("127.0.0.1", self.port)
        return ftp


def _waitReceived(ftp, count):
    """
    Ask STAT (answered during a transfer) until the server has received
    C{count} bytes of the running transfer.
    """
    for _ in range(1000):
        if "Transfer in progress: %d bytes" % (count,) in ftp.sendcmd("STAT"):
            return
        time.sleep(0.01)
    raise AssertionError("the server never received %d bytes" % (count,))


def _interruptedStor(ftp, name, payload):
    """
    Send C{payload} on a STOR of C{name}, wait until the server has it,
    then ABOR: C{(first reply, second reply)}.
    """
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("STOR " + name)
    conn.sendall(payload)
    _waitReceived(ftp, len(payload))
    first = ftp.abort()
    conn.close()
    return first, ftp.voidresp()


def _retr(ftp, name, rest=None):
    out = io.BytesIO()
    ftp.retrbinary("RETR " + name, out.write, rest=rest)
    return out.getvalue()


class PlainFTPTests(_Server, unittest.TestCase):
    def test_uploadListRenameDownloadUTF8(self):
        """ftplib stores, lists (MLSD, NLST, LIST), renames and fetches a UTF-8 name byte-exact; the store sees it."""
        self.serve()
        payload = os.urandom(300000)

        def session():
            ftp = self.client()
            ftp.login("demo.user", PASSWORD)
            ftp.sendcmd("OPTS UTF8 ON")
            self.assertIn("UTF8", ftp.sendcmd("FEAT"))
            ftp.mkd("sub dir")
            ftp.cwd("sub dir")
            ftp.storbinary("STOR " + NAME, io.BytesIO(payload))
            facts = dict(ftp.mlsd())
            self.assertEqual(facts[NAME]["type"], "file")
            self.assertEqual(int(facts[NAME]["size"]), len(payload))
            self.assertEqual(ftp.nlst(), [NAME])
            lines = []
            ftp.retrlines("LIST", lines.append)
            self.assertTrue(lines[0].endswith(NAME))
            # retrlines left TYPE A, where SIZE is refused.
            ftp.voidcmd("TYPE I")
            self.assertEqual(ftp.size(NAME), len(payload))
            ftp.rename(NAME, "é " + NAME)
            self.assertEqual(ftp.pwd(), "/sub dir")
            got = _retr(ftp, "/sub dir/é " + NAME)
            ftp.quit()
            return got

        def check(got):
            self.assertEqual(got, payload)
            with open(os.path.join(self.root, "sub dir", "é " + NAME), "rb") as f:
                self.assertEqual(f.read(), payload)
            self.assertFalse(os.path.exists(os.path.join(self.root, "sub dir", NAME)))

        return deferToThread(session).addCallback(check)

    def test_resumeBothDirections(self):
        """REST+STOR and APPE complete a partial upload, REST+RETR resumes a download."""
        self.serve()
        payload = os.urandom(200000)

        def session():
            ftp = self.client()
            ftp.login("demo@example.test", PASSWORD)
            ftp.storbinary("STOR part.bin", io.BytesIO(payload[:50000]))
            ftp.storbinary("STOR part.bin", io.BytesIO(payload[50000:120000]), rest=50000)
            ftp.storbinary("APPE part.bin", io.BytesIO(payload[120000:]))
            tail = _retr(ftp, "part.bin", rest=150000)
            whole = _retr(ftp, "part.bin")
            ftp.quit()
            return tail, whole

        def check(result):
            tail, whole = result
            self.assertEqual(whole, payload)
            self.assertEqual(tail, payload[150000:])

        return deferToThread(session).addCallback(check)

    def test_asciiMode(self):
        """ftplib's storlines stores LF line ends; RETR in TYPE A sends CRLF, for small and large files."""
        self.serve()
        small = b"first\nsecond\r\nthird\n"
        large = b"".join(b"line %d\n" % (i,) for i in range(60000))

        def rawRetr(ftp, name):
            ftp.voidcmd("TYPE A")
            with ftp.transfercmd("RETR " + name) as conn:
                got = b"".join(iter(lambda: conn.recv(65536), b""))
            ftp.voidresp()
            return got

        def session():
            ftp = self.client()
            ftp.login("demo", PASSWORD)
            ftp.storlines("STOR lines.txt", io.BytesIO(small))
            with open(os.path.join(self.root, "big.txt"), "wb") as f:
                f.write(large)
            lines = []
            ftp.retrlines("RETR big.txt", lines.append)
            got = rawRetr(ftp, "lines.txt"), rawRetr(ftp, "big.txt"), lines
            ftp.quit()
            return got

        def check(result):
            gotSmall, gotLarge, lines = result
            with open(os.path.join(self.root, "lines.txt"), "rb") as f:
                self.assertEqual(f.read(), b"first\nsecond\nthird\n")
            self.assertEqual(gotSmall, b"first\r\nsecond\r\nthird\r\n")
            self.assertEqual(gotLarge, large.replace(b"\n", b"\r\n"))
            self.assertEqual(lines, large.decode("ascii").splitlines())

        return deferToThread(session).addCallback(check)

    def test_lftpAsciiTransfers(self):
        """lftp's put -a and get -a (which rely on TYPE A being the default) round-trip LF line ends."""
        if not os.path.exists(LFTP):
            raise unittest.SkipTest("lftp is not installed")
        port = self.serve()
        work = self.mktemp()
        os.mkdir(work)
        text = b"one\ntwo\nthree\n" * 1000
        with open(os.path.join(work, "notes.txt"), "wb") as f:
            f.write(text)
        script = "; ".join([
            "set ftp:ssl-allow no", "set net:max-retries 1",
            "lcd '%s'" % (work,), "put -a notes.txt", "get -a notes.txt -o back.txt", "quit",
        ])

        def check(result):
            self.assertEqual(result.returncode, 0, result.stderr)
            for path in (os.path.join(self.root, "notes.txt"), os.path.join(work, "back.txt")):
                with open(path, "rb") as f:
                    self.assertEqual(f.read(), text, path)

        return runLftp(port, script).addCallback(check)

    def test_activeMode(self):
        """PORT/EPRT transfers work to the client's own address."""
        self.serve()

        def session():
            ftp = self.client()
            ftp.login("demo", PASSWORD)
            ftp.set_pasv(False)
            ftp.storbinary("STOR active.txt", io.BytesIO(b"active data\n"))
            got = _retr(ftp, "active.txt")
            ftp.quit()
            return got

        return deferToThread(session).addCallback(self.assertEqual, b"active data\n")

    def test_passivePortRange(self):
        """PASV and EPSV listen on ports of [ftp] passive_ports, and transfers go through them."""
        low = 20000 + os.getpid() % 30000
        self.serve(overrides={("ftp", "passive_ports"): (low, low + 4)})

        def session():
            ftp = self.client()
            ftp.login("demo", PASSWORD)
            ports = [ftp.makepasv()[1] for _ in range(3)]
            ftp.sendcmd("EPSV")
            ftp.storbinary("STOR ranged.txt", io.BytesIO(b"through the range"))
            got = _retr(ftp, "ranged.txt")
            ftp.quit()
            return ports, got

        def check(result):
            ports, got = result
            for port in ports:
                self.assertTrue(low <= port <= low + 4, port)
            self.assertEqual(got, b"through the range")

        return deferToThread(session).addCallback(check)

    def test_passiveOnlyFromPeer(self):
        """A passive listener drops connections from any host but the control connection's peer, and keeps waiting."""
        listener = data.listenPassive(reactor, "127.0.0.1", "192.0.2.7", None)
        self.addCleanup(listener.stop)

        def connect():
            with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as s:
                return s.recv(10)

        def check(got):
            self.assertEqual(got, b"")
            self.assertIsNone(listener.protocol)
            self.assertFalse(listener.connected.called)
            listener.stop()
            self.assertRaises(ConnectionRefusedError, socket.create_connection, ("127.0.0.1", listener.port))

        return deferToThread(connect).addCallback(check)

    def test_escapesRefused(self):
        """C{..} above the root and a symlink leading outside fail with 550; the symlink is not listed."""
        self.serve()
        outside = self.mktemp()
        os.mkdir(outside)
        with open(os.path.join(outside, "secret.txt"), "wb") as f:
            f.write(b"secret")
        os.symlink(os.path.abspath(outside), os.path.join(self.root, "escape"))
        os.symlink(os.path.abspath(os.path.join(outside, "secret.txt")), os.path.join(self.root, "s.txt"))

        def session():
            ftp = self.client()
            ftp.login("demo", PASSWORD)
            for call in (
                lambda: ftp.cwd(".."),
                lambda: ftp.cwd("escape"),
                lambda: _retr(ftp, "../../secret.txt"),
                lambda: _retr(ftp, "s.txt"),
                lambda: _retr(ftp, "escape/secret.txt"),
                lambda: ftp.storbinary("STOR escape/new.txt", io.BytesIO(b"x")),
            ):
                with self.assertRaises(ftplib.error_perm) as caught:
                    call()
                self.assertTrue(str(caught.exception).startswith("55"), str(caught.exception))
            names = ftp.nlst()
            self.assertEqual(ftp.pwd(), "/")
            ftp.quit()
            return names

        def check(names):
            self.assertNotIn("escape", names)
            self.assertNotIn("s.txt", names)
            self.assertFalse(os.path.exists(os.path.join(outside, "new.txt")))

        return deferToThread(session).addCallback(check)

    def test_overQuota(self):
        """STOR or APPE over the quota gets 552 and leaves no partial data, no temporary file."""
        self.serve(quota=100000)

        def session():
            ftp = self.client()
            ftp.login("demo", PASSWORD)
            with self.assertRaises(ftplib.error_perm) as caught:
                ftp.storbinary("STOR big.bin", io.BytesIO(os.urandom(400000)))
            self.assertTrue(str(caught.exception).startswith("552"))
            ftp.storbinary("STOR small.bin", io.BytesIO(b"fits"))
            with self.assertRaises(ftplib.error_perm) as caught:
                ftp.storbinary("APPE small.bin", io.BytesIO(os.urandom(400000)))
            self.assertTrue(str(caught.exception).startswith("552"))
            ftp.quit()

        def check(_):
            self.assertEqual(sorted(os.listdir(self.root)), ["private", "small.bin"])
            with open(os.path.join(self.root, "small.bin"), "rb") as f:
                self.assertEqual(f.read(), b"fits")

        return deferToThread(session).addCallback(check)

    def test_abortAndHiddenTemporaryFiles(self):
        """ABOR stops a download (426 then 226) and the session goes on; upload temporaries are not listed."""
        self.serve()
        with open(os.path.join(self.root, "big.bin"), "wb") as f:
            f.write(os.urandom(20 * 1024 * 1024))
        with open(os.path.join(self.root, TEMP_PREFIX + "partial"), "wb") as f:
            f.write(b"half")

        def session():
            ftp = self.client()
            ftp.login("demo", PASSWORD)
            conn = ftp.transfercmd("RETR big.bin")
            conn.recv(1024)
            first = ftp.abort()
            conn.close()
            second = ftp.voidresp()
            names = ftp.nlst()
            with self.assertRaises(ftplib.error_perm):
                _retr(ftp, TEMP_PREFIX + "partial")
            ftp.quit()
            return first, second, names

        def check(result):
            first, second, names = result
            self.assertTrue(first.startswith("426"), first)
            self.assertTrue(second.startswith("226"), second)
            self.assertEqual(sorted(names), ["big.bin", "private"])

        return deferToThread(session).addCallback(check)

    def test_interruptedUploadKept(self):
        """An aborted STOR keeps what arrived under the target name, counted in the quota; REST+STOR and curl -C - resume it."""
        self.serve()
        payload = os.urandom(300000)
        with open(os.path.join(self.root, "old.bin"), "wb") as f:
            f.write(b"the old version")
        source = os.path.join(self.mktemp())
        with open(source, "wb") as f:
            f.write(payload)

        def session():
            ftp = self.client()
            ftp.login("demo", PASSWORD)
            replies = _interruptedStor(ftp, "new.bin", payload[:100000])
            replies += _interruptedStor(ftp, "old.bin", payload[:120000])
            sizes = ftp.size("new.bin"), ftp.size("old.bin")
            ftp.storbinary("STOR new.bin", io.BytesIO(payload[100000:]), rest=100000)
            ftp.quit()
            curl = subprocess.run([CURL, "-sS", "--user", "demo:" + PASSWORD, "-C", "-", "-T", source,
                                   "ftp://127.0.0.1:%d/old.bin" % (self.port,)], capture_output=True, timeout=20)
            return replies, sizes, curl

        def check(result):
            replies, sizes, curl = result
            self.assertEqual([r[:3] for r in replies], ["426", "226", "426", "226"])
            self.assertEqual(sizes, (100000, 120000))
            self.assertEqual(curl.returncode, 0, curl.stderr)
            for name in ("new.bin", "old.bin"):
                with open(os.path.join(self.root, name), "rb") as f:
                    self.assertEqual(f.read(), payload, name)
            self.assertEqual(sorted(os.listdir(self.root)), ["new.bin", "old.bin", "private"])
            self.assertEqual(self.account.fileStore.usage(), 2 * len(payload))

        return deferToThread(session).addCallback(check)

    def test_interruptedUploadAllOrNothing(self):
        """With [ftp] keep_partial_uploads off an aborted STOR leaves the old file, or none, and nothing counted."""
        self.serve(overrides={("ftp", "keep_partial_uploads"): False})
        with open(os.path.join(self.root, "old.bin"), "wb") as f:
            f.write(b"the old version")

        def session():
            ftp = self.client()
            ftp.login("demo", PASSWORD)
            replies = _interruptedStor(ftp, "new.bin", os.urandom(100000))
            replies += _interruptedStor(ftp, "old.bin", os.urandom(100000))
            ftp.quit()
            return replies

        def check(replies):
            self.assertEqual([r[:3] for r in replies], ["426", "226", "426", "226"])
            self.assertEqual(sorted(os.listdir(self.root)), ["old.bin", "private"])
            with open(os.path.join(self.root, "old.bin"), "rb") as f:
                self.assertEqual(f.read(), b"the old version")
            self.assertEqual(self.account.fileStore.usage(), len(b"the old version"))

        return deferToThread(session).addCallback(check)

    def test_killedUploadLeftoverCleaned(self):
        """An upload cut by kill -9 leaves a hidden temporary file; once a minute old, the next login removes it and the usage counts only what is visible."""
        dataRoot = os.path.abspath(self.mktemp())
        root = os.path.join(dataRoot, "domains", "example.test", "accounts", "demo", "files")

        def start():
            server = subprocess.Popen([sys.executable, "-m", "tests.ftpserver", dataRoot], stdout=subprocess.PIPE,
                                      cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            self.addCleanup(server.stdout.close)
            self.addCleanup(server.wait)
            self.addCleanup(server.kill)
            return server, int(server.stdout.readline())

        def leftovers():
            return [n for n in os.listdir(root) if n.startswith(TEMP_PREFIX)]

        def session():
            server, self.port = start()
            ftp = self.client()
            ftp.login("demo", PASSWORD)
            ftp.storbinary("STOR kept.bin", io.BytesIO(b"k" * 1000))
            ftp.voidcmd("TYPE I")
            conn = ftp.transfercmd("STOR cut.bin")
            conn.sendall(os.urandom(2 * 1024 * 1024))
            _waitReceived(ftp, 2 * 1024 * 1024)
            server.kill()
            server.wait()
            conn.close()
            ftp.close()
            [leftover] = leftovers()
            self.assertGreater(os.path.getsize(os.path.join(root, leftover)), 0)
            # A minute later (the leftover's clock moved back instead):
            old = time.time() - 120
            os.utime(os.path.join(root, leftover), (old, old))
            server, self.port = start()
            ftp = self.client()
            ftp.login("demo", PASSWORD)
            for _ in range(1000):
                if not leftovers():
                    break
                time.sleep(0.01)
            names = ftp.nlst()
            ftp.quit()
            return names

        def check(names):
            self.assertEqual(leftovers(), [])
            self.assertEqual(sorted(names), ["kept.bin", "private"])
            self.assertEqual(FileStore(root).usage(), 1000)

        return deferToThread(session).addCallback(check)

    def test_diskFull(self):
        """STOR, APPE and REST+STOR meeting a full disk get 552 with a clean text, keep nothing they wrote, and the session goes on."""
        self.serve()
        with open(os.path.join(self.root, "old.bin"), "wb") as f:
            f.write(b"old")
        fillsUp(self.account.fileStore, 100000)

        def session():
            ftp = self.client()
            ftp.login("demo", PASSWORD)
            ftp.voidcmd("TYPE I")
            errors = []
            for command, rest in (("STOR new.bin", None), ("STOR old.bin", None), ("APPE old.bin", None),
                                  ("STOR old.bin", 1)):
                with self.assertRaises(ftplib.error_perm) as caught:
                    ftp.storbinary(command, io.BytesIO(os.urandom(400000)), rest=rest)
                errors.append(str(caught.exception))
            reply = ftp.voidcmd("NOOP")
            ftp.quit()
            return errors, reply

        def check(result):
            errors, reply = result
            for error in errors:
                self.assertTrue(error.startswith("552 "), error)
                self.assertNotIn("Errno", error)
            self.assertEqual(reply, "200 OK")
            self.assertEqual(sorted(os.listdir(self.root)), ["old.bin", "private"])
            with open(os.path.join(self.root, "old.bin"), "rb") as f:
                self.assertEqual(f.read(), b"old")
            self.assertEqual(FileStore(self.root).usage(), 3)

        return deferToThread(session).addCallback(check)

    def test_addressLimit(self):
        """The connection past [ftp] max_connections_per_address from one address gets 421 before any login; a freed place is taken again."""
        self.serve(overrides={("ftp", "max_connections_per_address"): 3})

        def session():
            clients = [self.client() for _ in range(3)]
            with self.assertRaises(ftplib.error_temp) as caught:
                self.client()
            clients.pop().quit()
            for _ in range(1000):
                if len(self.factory.sessions) < 3:
                    break
                time.sleep(0.01)
            again = self.client()
            again.login("demo", PASSWORD)
            for ftp in clients + [again]:
                ftp.quit()
            return str(caught.exception)

        def check(error):
            self.assertTrue(error.startswith("421 Too many connections from your address"), error)

        return deferToThread(session).addCallback(check)

    def test_anonymousRefused(self):
        """Anonymous login is refused."""
        self.serve()

        def session():
            ftp = self.client()
            with self.assertRaises(ftplib.error_perm) as caught:
                ftp.login()
            self.assertTrue(str(caught.exception).startswith("530"))
            with self.assertRaises(ftplib.error_perm):
                ftp.login("demo", "wrong")
            ftp.quit()

        return deferToThread(session)

    def test_cleartextRefused(self):
        """Without TLS the domain's clear-text policy refuses USER with a hint; after AUTH TLS login works."""
        self.serve(cleartextLogin=False)

        def session():
            ftp = self.client()
            with self.assertRaises(ftplib.error_perm) as caught:
                ftp.login("demo", PASSWORD)
            self.assertIn("AUTH TLS", str(caught.exception))
            ftp.close()
            ftps = self.client(tls=True)
            ftps.login("demo", PASSWORD)
            ftps.prot_p()
            ftps.storbinary("STOR tls.txt", io.BytesIO(b"over tls"))
            got = _retr(ftps, "tls.txt")
            ftps.quit()
            return got

        return deferToThread(session).addCallback(self.assertEqual, b"over tls")


class FTPSTests(_Server, unittest.TestCase):
    def test_protectedDataChannel(self):
        """FTP_TLS with PROT P uploads, lists with MLSD and downloads a UTF-8 name byte-exact."""
        self.serve()
        payload = os.urandom(1000000)

        def session():
            ftp = self.client(tls=True)
            ftp.login("demo", PASSWORD)
            ftp.prot_p()
            ftp.storbinary("STOR " + NAME, io.BytesIO(payload))
            facts = dict(ftp.mlsd())
            got = _retr(ftp, NAME)
            ftp.quit()
            return facts, got

        def check(result):
            facts, got = result
            self.assertEqual(int(facts[NAME]["size"]), len(payload))
            self.assertEqual(got, payload)

        return deferToThread(session).addCallback(check)

    def test_authTLSInjectionDiscarded(self):
        """USER/PASS sent in clear text in AUTH TLS's segment are not run over TLS (CVE-2011-0411): NOOP gets the first reply."""
        self.serve()

        def session():
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw:
                stream = raw.makefile("rb")
                self.assertTrue(stream.readline().startswith(b"220"))
                raw.sendall(b"AUTH TLS\r\nUSER demo@example.test\r\nPASS %s\r\n" % (PASSWORD.encode(),))
                self.assertTrue(stream.readline().startswith(b"234"))
                ctx = ssl.create_default_context(cafile=testCertificate()[0])
                with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(b"NOOP\r\nQUIT\r\n")
                    return b"".join(iter(lambda: tls.recv(4096), b""))

        def check(replies):
            self.assertEqual(replies.split(b"\r\n")[:2], [b"200 OK", b"221 Goodbye"], replies)

        return deferToThread(session).addCallback(check)

    def test_dataChannelVersions(self):
        """The data channel is capped to TLS 1.2 (lftp loses upload tails over 1.3) unless [tls] minimum_version is 1.3."""

        def versions():
            ftp = self.client(tls=True)
            ftp.login("demo", PASSWORD)
            ftp.prot_p()
            ftp.voidcmd("TYPE I")
            with ftp.transfercmd("NLST") as conn:
                version = conn.version()
                conn.recv(1024)
            ftp.voidresp()
            control = ftp.sock.version()
            ftp.quit()
            return control, version

        self.serve()
        d = deferToThread(versions)
        d.addCallback(self.assertEqual, ("TLSv1.3", "TLSv1.2"))

        def strict(_):
            self.serve(overrides={("tls", "minimum_version"): "1.3"})
            return deferToThread(versions)

        d.addCallback(strict)
        d.addCallback(self.assertEqual, ("TLSv1.3", "TLSv1.3"))
        return d

    def test_protectedActiveMode(self):
        """With PROT P and PORT the server still acts as the TLS server on the data connection."""
        self.serve()

        def session():
            ftp = self.client(tls=True)
            ftp.login("demo", PASSWORD)
            ftp.prot_p()
            ftp.set_pasv(False)
            ftp.storbinary("STOR active-tls.txt", io.BytesIO(b"active tls"))
            got = _retr(ftp, "active-tls.txt")
            ftp.quit()
            return got

        return deferToThread(session).addCallback(self.assertEqual, b"active tls")

    def test_truncatedProtectedUpload(self):
        """A PROT P upload that ends without TLS close_notify gets 426 and, as any cut upload, keeps what arrived."""
        return self._truncatedUpload(True, b"new, but cut short")

    def test_truncatedProtectedUploadAllOrNothing(self):
        """With [ftp] keep_partial_uploads off a truncated PROT P STOR gets 426 and keeps the old file; APPE keeps what arrived."""
        return self._truncatedUpload(False, b"old content")

    def _truncatedUpload(self, keepPartial, expected):
        self.serve(overrides={("ftp", "keep_partial_uploads"): keepPartial})
        with open(os.path.join(self.root, "kept.txt"), "wb") as f:
            f.write(b"old content")

        def truncated(ftp, command):
            # A TCP close without close_notify, as an attacker's forged FIN
            # or a client that crashed.
            conn = ftp.transfercmd(command)
            conn.sendall(b"new, but cut short")
            conn.close()
            return self.assertRaises(ftplib.error_temp, ftp.voidresp)

        def session():
            ftp = self.client(tls=True)
            ftp.login("demo", PASSWORD)
            ftp.prot_p()
            ftp.voidcmd("TYPE I")
            errors = [truncated(ftp, "STOR kept.txt"), truncated(ftp, "APPE appended.txt")]
            ftp.storbinary("STOR whole.txt", io.BytesIO(b"complete"))
            ftp.quit()
            return errors

        def check(errors):
            for error in errors:
                self.assertTrue(str(error).startswith("426 "), error)
            for name, content in [("kept.txt", expected), ("appended.txt", b"new, but cut short"),
                                  ("whole.txt", b"complete")]:
                with open(os.path.join(self.root, name), "rb") as f:
                    self.assertEqual(f.read(), content, name)

        return deferToThread(session).addCallback(check)

    def test_lftpProtectedUploadComplete(self):
        """lftp (GnuTLS) uploads over PROT P arrive whole, resume with put -c, and download byte-exact."""
        if not os.path.exists(LFTP):
            raise unittest.SkipTest("lftp is not installed")
        port = self.serve()
        work = self.mktemp()
        os.mkdir(work)
        payload = os.urandom(1000000)
        source = os.path.join(work, "Grüße.bin")
        with open(source, "wb") as f:
            f.write(payload)
        with open(os.path.join(self.root, "resume.bin"), "wb") as f:
            f.write(payload[:300000])
        back = os.path.join(work, "back.bin")
        script = "; ".join([
            "set ssl:ca-file %s" % (testCertificate()[0],),
            "set ftp:ssl-force yes", "set ftp:ssl-protect-data yes",
            "put '%s'" % (source,),
            "put -c '%s' -o resume.bin" % (source,),
            "mv Grüße.bin Ü.bin",
            "get Ü.bin -o '%s'" % (back,),
            "quit",
        ])

        def check(result):
            self.assertEqual(result.returncode, 0, result.stderr)
            for name in ("Ü.bin", "resume.bin"):
                with open(os.path.join(self.root, name), "rb") as f:
                    self.assertEqual(f.read(), payload, name)
            with open(back, "rb") as f:
                self.assertEqual(f.read(), payload)

        return runLftp(port, script).addCallback(check)

    def test_lftpEmptyProtectedTransfers(self):
        """lftp over PROT P lists an empty folder, fetches a zero-byte file and mirrors up a tree with empty folders and files, without a TLS error."""
        if not os.path.exists(LFTP):
            raise unittest.SkipTest("lftp is not installed")
        port = self.serve()
        work = self.mktemp()
        tree = os.path.join(work, "tree")
        for folder in ("tree/empty", "tree/sub/deeper", "tree/sub/also-empty"):
            os.makedirs(os.path.join(work, folder))
        for name, content in [("zero.txt", b""), ("sub/deeper/zero.bin", b""), ("sub/one.txt", b"1")]:
            with open(os.path.join(tree, name), "wb") as f:
                f.write(content)
        os.mkdir(os.path.join(self.root, "nothing-here"))
        with open(os.path.join(self.root, "empty.bin"), "wb"):
            pass
        script = "; ".join([
            "set ssl:ca-file %s" % (testCertificate()[0],),
            "set ftp:ssl-force yes", "set ftp:ssl-protect-data yes", "set net:max-retries 1",
            "cls -l nothing-here", "ls nothing-here",
            "get empty.bin -o '%s'" % (os.path.join(work, "got.bin"),),
            "mirror -R '%s' tree" % (tree,),
            "quit",
        ])

        def check(result):
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertNotIn(b"non-properly terminated", result.stderr)
            self.assertEqual(os.path.getsize(os.path.join(work, "got.bin")), 0)
            for folder in ("empty", "sub/deeper", "sub/also-empty"):
                self.assertTrue(os.path.isdir(os.path.join(self.root, "tree", folder)), folder)
            for name, content in [("zero.txt", b""), ("sub/deeper/zero.bin", b""), ("sub/one.txt", b"1")]:
                with open(os.path.join(self.root, "tree", name), "rb") as f:
                    self.assertEqual(f.read(), content, name)

        return runLftp(port, script).addCallback(check)

    def _curl(self, *args):
        cmd = [CURL, "-sS", "--cacert", testCertificate()[0], "--user", "demo:" + PASSWORD] + list(args)
        return subprocess.run(cmd, capture_output=True, timeout=20)

    def test_curlExplicitTLS(self):
        """curl --ssl-reqd uploads, lists and downloads a UTF-8 name over explicit FTPS."""
        port = self.serve()
        source = os.path.join(self.mktemp())
        payload = os.urandom(100000)
        with open(source, "wb") as f:
            f.write(payload)
        base = "ftp://127.0.0.1:%d/" % (port,)
        quoted = "Gr%C3%BC%C3%9Fe.bin"

        def session():
            up = self._curl("--ssl-reqd", "-T", source, base + quoted)
            self.assertEqual(up.returncode, 0, up.stderr)
            listing = self._curl("--ssl-reqd", base)
            down = self._curl("--ssl-reqd", base + quoted)
            return listing, down

        def check(result):
            listing, down = result
            self.assertIn("Grüße.bin".encode(), listing.stdout)
            self.assertEqual(down.stdout, payload)
            self.assertTrue(os.path.exists(os.path.join(self.root, "Grüße.bin")))

        return deferToThread(session).addCallback(check)

    def test_curlImplicitTLS(self):
        """curl ftps:// talks to an implicit-TLS listener."""
        port = self.serve(implicit=True)

        def run():
            cmd = [CURL, "-sS", "--cacert", testCertificate()[0], "--user", "demo:" + PASSWORD,
                   "-T", "-", "ftps://127.0.0.1:%d/implicit.txt" % (port,)]
            up = subprocess.run(cmd, input=b"hello", capture_output=True, timeout=20)
            self.assertEqual(up.returncode, 0, up.stderr)
            down = self._curl("ftps://127.0.0.1:%d/implicit.txt" % (port,))
            return down.stdout

        return deferToThread(run).addCallback(self.assertEqual, b"hello")
