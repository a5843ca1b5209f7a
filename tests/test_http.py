# -*- test-case-name: tests.test_http -*-
"""
Tests for L{gateway.http}: the personal web site, autoconfiguration,
errors and logging, over a C{StringTransport}.
"""

import errno
import os
from xml.etree import ElementTree

from twisted.trial.unittest import TestCase
from twisted.web.http import datetimeToString

from gateway.http import server
from gateway.http.static import contentType
from tests.http_support import HTTPMixin, Response, basic
from tests.test_store_files import fillsUp


class StaticTests(HTTPMixin, TestCase):
    def setUp(self):
        HTTPMixin.setUp(self)
        self.data = bytes(range(256)) * 40
        self.writeFile("pub/data.bin", self.data)

    def test_getFile(self):
        """A file of the account's storage is served whole with its size, type and validators."""
        response = self.request("GET", "/~demo/pub/data.bin")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.body, self.data)
        self.assertEqual(response.headers["content-length"], str(len(self.data)))
        self.assertEqual(response.headers["content-type"], "application/octet-stream")
        self.assertTrue(response.headers["etag"].startswith('"'))
        self.assertIn("last-modified", response.headers)
        self.assertEqual(response.headers["server"], "gateway")
        self.assertEqual(response.headers["x-content-type-options"], "nosniff")
        self.assertTrue(response.headers["content-security-policy"].startswith("sandbox "))
        self.assertNotIn("allow-same-origin", response.headers["content-security-policy"])

    def test_head(self):
        """HEAD gives the headers of GET and no body."""
        response = self.request("HEAD", "/~demo/pub/data.bin")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.body, b"")
        self.assertEqual(response.headers["content-length"], str(len(self.data)))

    def test_aliasAndFullName(self):
        """The account alias and the ~local@domain form select the same site."""
        for path in ("/~demo.user/pub/data.bin", "/~demo@example.test/pub/data.bin", "/~DEMO/pub/data.bin"):
            self.assertEqual(self.request("GET", path).body, self.data, path)

    def test_unknownHostUsesMainDomain(self):
        """A Host that names no domain falls back to the domain of the address (the main one)."""
        self.assertEqual(self.request("GET", "/~demo/pub/data.bin", host="other.invalid:8100").code, 200)

    def test_unknownAccount(self):
        """An account the directory does not know gives a clean 404 page."""
        response = self.request("GET", "/~nobody/x")
        self.assertEqual(response.code, 404)
        self.assertIn(b"<h1>404 Not Found</h1>", response.body)
        self.assertNotIn(b"Traceback", response.body)

    def test_accountLookupReused(self):
        """A ~name lookup is reused for a second only: a disabled account's site is gone after that."""
        clock = [100.0]
        self.site.resource.personalSite.monotonic = lambda: clock[0]
        self.assertEqual(self.request("GET", "/~demo/pub/data.bin").code, 200)
        self.context.directory.setAccount("demo@example.test", enabled=False)
        clock[0] += 0.5
        self.assertEqual(self.request("GET", "/~demo/pub/data.bin").code, 200)
        clock[0] += 1.0
        self.assertEqual(self.request("GET", "/~demo/pub/data.bin").code, 404)

    def test_missingFile(self):
        """A missing file is 404."""
        self.assertEqual(self.request("GET", "/~demo/pub/none.txt").code, 404)

    def test_otherPaths(self):
        """Paths that are neither a site, free/busy nor autoconfig are 404."""
        for path in ("/", "/favicon.ico", "/freebusy/", "/mail/other.xml"):
            self.assertEqual(self.request("GET", path).code, 404, path)

    def test_ifNoneMatch(self):
        """If-None-Match with the file's ETag gives 304 without a body; another tag gives 200."""
        etag = self.request("HEAD", "/~demo/pub/data.bin").headers["etag"]
        response = self.request("GET", "/~demo/pub/data.bin", {"If-None-Match": etag})
        self.assertEqual(response.code, 304)
        self.assertEqual(response.body, b"")
        self.assertEqual(self.request("GET", "/~demo/pub/data.bin", {"If-None-Match": '"other"'}).code, 200)

    def test_ifNoneMatchBeatsIfModifiedSince(self):
        """A non-matching If-None-Match wins over a matching If-Modified-Since."""
        response = self.request("GET", "/~demo/pub/data.bin", {
            "If-None-Match": '"other"', "If-Modified-Since": datetimeToString(2**31).decode("ascii")})
        self.assertEqual(response.code, 200)

    def test_ifModifiedSince(self):
        """If-Modified-Since at or after the modification time gives 304; before it, 200."""
        path = self.files.preauthChild("pub/data.bin").path
        os.utime(path, (1_000_000_000, 1_000_000_000))
        later = datetimeToString(1_000_000_000).decode("ascii")
        earlier = datetimeToString(999_999_000).decode("ascii")
        self.assertEqual(self.request("GET", "/~demo/pub/data.bin", {"If-Modified-Since": later}).code, 304)
        self.assertEqual(self.request("GET", "/~demo/pub/data.bin", {"If-Modified-Since": earlier}).code, 200)

    def test_range(self):
        """A satisfiable Range gives 206 with exactly those bytes and a Content-Range."""
        response = self.request("GET", "/~demo/pub/data.bin", {"Range": "bytes=10-19"})
        self.assertEqual(response.code, 206)
        self.assertEqual(response.body, self.data[10:20])
        self.assertEqual(response.headers["content-range"], "bytes 10-19/%d" % (len(self.data),))

    def test_multipleRanges(self):
        """Several ranges come back as multipart/byteranges with each part's bytes."""
        response = self.request("GET", "/~demo/pub/data.bin", {"Range": "bytes=0-1,100-102"})
        self.assertEqual(response.code, 206)
        self.assertTrue(response.headers["content-type"].startswith("multipart/byteranges"))
        self.assertIn(b"\r\n\r\n" + self.data[0:2] + b"\r\n", response.body)
        self.assertIn(b"\r\n\r\n" + self.data[100:103] + b"\r\n", response.body)

    def test_rangeUnsatisfiable(self):
        """A Range beyond the end of the file gives 416."""
        response = self.request("GET", "/~demo/pub/data.bin", {"Range": "bytes=999999-"})
        self.assertEqual(response.code, 416)
        self.assertEqual(response.headers["content-range"], "bytes */%d" % (len(self.data),))

    def test_ifRange(self):
        """If-Range with the current ETag or date honours Range; a stale one gives the whole file."""
        head = self.request("HEAD", "/~demo/pub/data.bin").headers
        for validator in (head["etag"], head["last-modified"]):
            response = self.request("GET", "/~demo/pub/data.bin", {"Range": "bytes=0-3", "If-Range": validator})
            self.assertEqual((response.code, response.body), (206, self.data[:4]), validator)
        for stale in ('"stale"', "Sat, 01 Jan 2000 00:00:00 GMT", 'W/"x"'):
            response = self.request("GET", "/~demo/pub/data.bin", {"Range": "bytes=0-3", "If-Range": stale})
            self.assertEqual((response.code, len(response.body)), (200, len(self.data)), stale)

    def test_contentTypes(self):
        """Calendar files are text/calendar; known extensions use the system's types."""
        self.assertEqual(contentType("freebusy.vfb"), "text/calendar")
        self.assertEqual(contentType("x.IFB"), "text/calendar")
        self.assertEqual(contentType("x.ics"), "text/calendar")
        self.assertEqual(contentType("a.html"), "text/html")
        self.assertEqual(contentType("archive.tar.gz"), "application/gzip")
        self.writeFile("cal.ics", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
        response = self.request("GET", "/~demo/cal.ics")
        self.assertEqual(response.headers["content-type"], "text/calendar")
        self.assertNotIn("content-encoding", response.headers)

    def test_folderIndex(self):
        """A folder serves its index.html; without the slash it redirects to it."""
        self.writeFile("index.html", b"<p>home</p>")
        self.assertEqual(self.request("GET", "/~demo/").body, b"<p>home</p>")
        response = self.request("GET", "/~demo")
        self.assertEqual(response.code, 301)
        self.assertEqual(response.headers["location"], "/~demo/")
        response = self.request("GET", "/~demo/pub")
        self.assertEqual((response.code, response.headers["location"]), (301, "/~demo/pub/"))

    def test_noListingByDefault(self):
        """A folder without index.html is 403 when listings are off."""
        response = self.request("GET", "/~demo/pub/")
        self.assertEqual(response.code, 403)
        self.assertNotIn(b"data.bin", response.body)

    def test_escapes(self):
        """Paths that leave the root, encoded or not, are refused (404)."""
        outside = os.path.join(os.path.dirname(self.files.path), "secret.txt")
        with open(outside, "wb") as f:
            f.write(b"secret")
        for path in ("/~demo/../secret.txt", "/~demo/%2e%2e/secret.txt", "/~demo/pub/%2e%2e/%2e%2e/secret.txt",
                     "/~demo/..%2fsecret.txt", "/~demo/%2e%2e%5csecret.txt", "/~demo/a%00b"):
            response = self.request("GET", path)
            self.assertEqual(response.code, 404, path)
            self.assertNotIn(b"secret", response.body.replace(b"secret.txt", b""))

    def test_symlinkEscape(self):
        """A symbolic link that leads out of the root is refused."""
        os.symlink("/etc", self.files.child("etc").path)
        os.symlink("/etc/passwd", self.files.child("passwd").path)
        self.assertEqual(self.request("GET", "/~demo/etc/passwd").code, 404)
        self.assertEqual(self.request("GET", "/~demo/passwd").code, 404)

    def test_dotDotInsideRoot(self):
        """A .. that stays inside the root is normalized and cannot reach private/ anonymously."""
        self.writeFile("private/diary.txt", b"dear diary")
        self.assertEqual(self.request("GET", "/~demo/pub/../pub/data.bin").body, self.data)
        response = self.request("GET", "/~demo/pub/%2e%2e/private/diary.txt")
        self.assertEqual(response.code, 401)
        self.assertNotIn(b"dear diary", response.body)

    def test_badMethod(self):
        """Unsupported methods get 405 with an Allow header."""
        response = self.request("POST", "/~demo/pub/data.bin", body=b"x")
        self.assertEqual(response.code, 405)
        self.assertIn("PUT", response.headers["allow"])
        self.assertEqual(self.request("PUT", "/mail/config-v1.1.xml", body=b"x").code, 405)


class ListingTests(HTTPMixin, TestCase):
    overrides = {("http", "directory_listings"): True}

    def test_listing(self):
        """With listings on, a folder lists its files, links escaped, hiding dot files and private/."""
        self.writeFile("a <b>.txt", b"x")
        self.writeFile(".hidden", b"x")
        self.writeFile("sub/c.txt", b"x")
        response = self.request("GET", "/~demo/")
        self.assertEqual(response.code, 200)
        self.assertIn(b'<a href="a%20%3Cb%3E.txt">a &lt;b&gt;.txt</a>', response.body)
        self.assertIn(b'href="sub/"', response.body)
        self.assertNotIn(b"hidden", response.body)
        self.assertNotIn(b"private", response.body)


class PrivateTests(HTTPMixin, TestCase):
    def setUp(self):
        HTTPMixin.setUp(self)
        self.writeFile("private/diary.txt", b"dear diary")

    def test_anonymous(self):
        """private/ without credentials gets a 401 Basic challenge, not the file."""
        response = self.request("GET", "/~demo/private/diary.txt")
        self.assertEqual(response.code, 401)
        self.assertIn('Basic realm="~demo@example.test"', response.headers["www-authenticate"])
        self.assertNotIn(b"dear diary", response.body)

    def test_headAnonymous(self):
        """HEAD of a private file without credentials is 401 with no body."""
        response = self.request("HEAD", "/~demo/private/diary.txt")
        self.assertEqual((response.code, response.body), (401, b""))

    def test_owner(self):
        """The owner's password opens private/."""
        response = self.request("GET", "/~demo/private/diary.txt", basic())
        self.assertEqual((response.code, response.body), (200, b"dear diary"))

    def test_ownerByAlias(self):
        """The owner may log in by an alias."""
        self.assertEqual(self.request("GET", "/~demo/private/diary.txt", basic("demo.user")).code, 200)

    def test_wrongPassword(self):
        """A wrong password is 401 again."""
        self.assertEqual(self.request("GET", "/~demo/private/diary.txt", basic(password="nope")).code, 401)

    def test_garbledHeader(self):
        """An Authorization header that is not valid Basic is treated as none."""
        for value in ("Basic !!!", "Basic " + "ZGVtbw==", "Bearer abc"):
            response = self.request("GET", "/~demo/private/diary.txt", {"Authorization": value})
            self.assertEqual(response.code, 401, value)

    def test_otherAccount(self):
        """Another account's valid password is 403 on this site."""
        self.assertEqual(self.request("GET", "/~demo/private/diary.txt", basic("other")).code, 403)

    def test_folderItself(self):
        """The private/ folder itself needs the password too."""
        self.assertEqual(self.request("GET", "/~demo/private/").code, 401)
        self.assertEqual(self.request("GET", "/~demo/private").code, 401)

    def test_linkIntoPrivate(self):
        """A symbolic link to private/ does not open it anonymously."""
        os.symlink("private", self.files.child("open").path)
        self.assertEqual(self.request("GET", "/~demo/open/diary.txt").code, 401)


class NoCleartextTests(HTTPMixin, TestCase):
    cleartextLogin = False

    def setUp(self):
        HTTPMixin.setUp(self)
        self.writeFile("private/diary.txt", b"dear diary")

    def test_refusedInClear(self):
        """Where clear-text login is off, private/ over plain HTTP is 403 with an explanation, even with the password."""
        for headers in ({}, basic()):
            response = self.request("GET", "/~demo/private/diary.txt", headers)
            self.assertEqual(response.code, 403)
            self.assertIn(b"HTTPS", response.body)
            self.assertNotIn("www-authenticate", response.headers)

    def test_allowedOverTLS(self):
        """Over TLS the challenge is offered and the password works."""
        self.assertEqual(self.request("GET", "/~demo/private/diary.txt", secure=True).code, 401)
        response = self.request("GET", "/~demo/private/diary.txt", basic(), secure=True)
        self.assertEqual((response.code, response.body), (200, b"dear diary"))

    def test_publicStillServed(self):
        """Public files need no password, even in the clear."""
        self.writeFile("pub.txt", b"hello")
        self.assertEqual(self.request("GET", "/~demo/pub.txt").code, 200)


class WriteTests(HTTPMixin, TestCase):
    def test_putNew(self):
        """PUT by the owner stores a new file: 201, then it is served."""
        response = self.request("PUT", "/~demo/freebusy.vfb", basic(), body=b"BEGIN:VCALENDAR\r\n")
        self.assertEqual(response.code, 201)
        self.assertEqual(self.files.child("freebusy.vfb").getContent(), b"BEGIN:VCALENDAR\r\n")
        response = self.request("GET", "/~demo/freebusy.vfb")
        self.assertEqual(response.body, b"BEGIN:VCALENDAR\r\n")
        self.assertEqual(response.headers["content-type"], "text/calendar")

    def test_putReplace(self):
        """PUT over an existing file replaces it with 204."""
        self.writeFile("a.txt", b"old")
        self.assertEqual(self.request("PUT", "/~demo/a.txt", basic(), body=b"new").code, 204)
        self.assertEqual(self.files.child("a.txt").getContent(), b"new")

    def test_putNeedsOwner(self):
        """PUT without the owner's password is refused and writes nothing."""
        self.assertEqual(self.request("PUT", "/~demo/a.txt", body=b"x").code, 401)
        self.assertEqual(self.request("PUT", "/~demo/a.txt", basic("other"), body=b"x").code, 403)
        self.assertFalse(self.files.child("a.txt").exists())

    def test_putMissingFolder(self):
        """PUT into a folder that does not exist is 409; onto a folder too."""
        self.assertEqual(self.request("PUT", "/~demo/no/a.txt", basic(), body=b"x").code, 409)
        self.assertEqual(self.request("PUT", "/~demo/private", basic(), body=b"x").code, 409)

    def test_putEscape(self):
        """PUT cannot write outside the root."""
        self.assertEqual(self.request("PUT", "/~demo/%2e%2e/evil.txt", basic(), body=b"x").code, 404)
        self.assertFalse(os.path.exists(os.path.join(os.path.dirname(self.files.path), "evil.txt")))

    def test_putDiskFull(self):
        """A PUT that meets a full disk (ENOSPC, EDQUOT) is 507 and leaves the old file, no temporary file."""
        self.writeFile("a.txt", b"old")
        for code in (errno.ENOSPC, errno.EDQUOT):
            fillsUp(self.account.fileStore, 10, code)
            for path in ("/~demo/a.txt", "/~demo/new.txt"):
                response = self.request("PUT", path, basic(), body=b"x" * 100)
                self.assertEqual(response.code, 507, path)
                self.assertNotIn(b"Errno", response.body)
        self.assertEqual(sorted(os.listdir(self.files.path)), ["a.txt", "private"])
        self.assertEqual(self.files.child("a.txt").getContent(), b"old")

    def test_putClientGoneDuringWrite(self):
        """A client that resets its connection while its PUT body is being written logs no error (was 'ValueError: read of closed file' at critical) and the complete body is stored."""
        from twisted.internet.defer import Deferred, maybeDeferred
        from twisted.internet.error import ConnectionLost
        from twisted.internet.testing import StringTransport
        from twisted.python.failure import Failure

        calls = []

        def later(f, *args):
            d = Deferred()
            calls.append((d, f, args))
            return d

        self.site.resource.personalSite.runInThread = later
        body = os.urandom(300000)  # twisted.web spools it to a temporary file
        transport = StringTransport()
        channel = self.site.buildProtocol(None)
        channel.makeConnection(transport)
        head = "PUT /~demo/big.bin HTTP/1.1\r\nHost: example.test\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n"
        channel.dataReceived((head % (basic()["Authorization"], len(body))).encode() + body)
        [(d, f, args)] = calls
        channel.connectionLost(Failure(ConnectionLost("Connection reset by peer")))
        maybeDeferred(f, *args).chainDeferred(d)
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual(self.files.child("big.bin").getContent(), body)

    def test_putClientGoneDuringLogin(self):
        """A client that resets its connection while its PUT's password is checked logs no error and nothing is stored."""
        from twisted.internet.defer import Deferred
        from twisted.internet.error import ConnectionLost
        from twisted.internet.testing import StringTransport
        from twisted.python.failure import Failure

        portal = self.context.portal
        pending = []

        def login(*args):
            d = Deferred()
            pending.append((d, args))
            return d

        self.patch(portal, "login", login)
        body = os.urandom(300000)
        transport = StringTransport()
        channel = self.site.buildProtocol(None)
        channel.makeConnection(transport)
        head = "PUT /~demo/big.bin HTTP/1.1\r\nHost: example.test\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n"
        channel.dataReceived((head % (basic()["Authorization"], len(body))).encode() + body)
        [(d, args)] = pending
        channel.connectionLost(Failure(ConnectionLost("Connection reset by peer")))
        self.patch(portal, "login", type(portal).login.__get__(portal))
        portal.login(*args).chainDeferred(d)
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertFalse(self.files.child("big.bin").exists())

    def test_delete(self):
        """DELETE by the owner removes a file (204); then it is 404."""
        self.writeFile("a.txt", b"x")
        self.assertEqual(self.request("DELETE", "/~demo/a.txt", basic()).code, 204)
        self.assertFalse(self.files.child("a.txt").exists())
        self.assertEqual(self.request("DELETE", "/~demo/a.txt", basic()).code, 404)

    def test_deleteRefusals(self):
        """DELETE needs the owner, keeps non-empty folders, the root and private/."""
        self.writeFile("sub/a.txt", b"x")
        self.assertEqual(self.request("DELETE", "/~demo/sub/a.txt").code, 401)
        self.assertEqual(self.request("DELETE", "/~demo/sub", basic()).code, 409)
        self.assertEqual(self.request("DELETE", "/~demo/private", basic()).code, 403)
        self.assertEqual(self.request("DELETE", "/~demo/", basic()).code, 403)
        self.assertTrue(self.files.child("sub").child("a.txt").exists())


class QuotaTests(HTTPMixin, TestCase):
    quota = 4096

    def test_overQuota(self):
        """A PUT that would pass the storage quota is 507 and leaves nothing behind."""
        response = self.request("PUT", "/~demo/big.bin", basic(), body=b"x" * 8192)
        self.assertEqual(response.code, 507)
        self.assertFalse(self.files.child("big.bin").exists())
        self.assertEqual([n for n in os.listdir(self.files.path) if n != "private"], [])

    def test_withinQuota(self):
        """A PUT within the quota is stored."""
        self.assertEqual(self.request("PUT", "/~demo/small.bin", basic(), body=b"x" * 100).code, 201)


class UploadLimitTests(HTTPMixin, TestCase):
    def setUp(self):
        HTTPMixin.setUp(self)
        self.site.maxUploadSize = 1000

    def test_contentLength(self):
        """A body announced larger than max_upload_size gets 413 and the connection closes; nothing is stored."""
        transport = self.send("PUT", "/~demo/big.bin", basic(), body=b"x" * 1001)
        response = Response(transport.value())
        self.assertEqual(response.code, 413)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value().count(b"HTTP/1.1"), 1)
        self.assertFalse(self.files.child("big.bin").exists())

    def test_chunked(self):
        """A chunked body that grows past the limit is cut off with 413."""
        chunk = b"%x\r\n%s\r\n" % (600, b"y" * 600)
        transport = self.send("PUT", "/~demo/big.bin", dict(basic(), **{"Transfer-Encoding": "chunked"}),
                              body=chunk * 2 + b"0\r\n\r\n")
        self.assertEqual(Response(transport.value()).code, 413)
        self.assertFalse(self.files.child("big.bin").exists())

    def test_withinLimit(self):
        """A body within the limit is stored."""
        self.assertEqual(self.request("PUT", "/~demo/ok.bin", basic(), body=b"x" * 1000).code, 201)

    def test_configured(self):
        """makeFactory takes the limit from [http] max_upload_size (100M by default)."""
        self.assertEqual(server.makeFactory(self.context).maxUploadSize, 100 * 1024 * 1024)


class AutoconfigTests(HTTPMixin, TestCase):
    def parse(self, path, **kw):
        response = self.request("GET", path, **kw)
        self.assertEqual(response.code, 200)
        self.assertTrue(response.headers["content-type"].startswith("application/xml"))
        return ElementTree.fromstring(response.body)

    def servers(self, root):
        return [(s.get("type"), s.findtext("hostname"), s.findtext("port"), s.findtext("socketType"))
                for s in root.iter("incomingServer")]

    def test_wellKnown(self):
        """The well-known autoconfig URL lists IMAP and POP3 with SSL and STARTTLS ports from the configuration."""
        root = self.parse("/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=demo%40example.test")
        self.assertEqual(root.tag, "clientConfig")
        self.assertEqual(root.find("emailProvider").findtext("domain"), "example.test")
        self.assertEqual(self.servers(root), [
            ("imap", "localhost", "1993", "SSL"), ("imap", "localhost", "1143", "STARTTLS"),
            ("pop3", "localhost", "1995", "SSL"), ("pop3", "localhost", "1110", "STARTTLS"),
        ])
        self.assertEqual(root.find("emailProvider/incomingServer").findtext("username"), "%EMAILADDRESS%")
        self.assertIsNone(root.find("emailProvider/outgoingServer"))

    def test_mailPathAndHost(self):
        """/mail/config-v1.1.xml without an address uses the Host's domain."""
        root = self.parse("/mail/config-v1.1.xml", host="autoconfig.other.invalid")
        self.assertEqual(root.find("emailProvider").get("id"), "example.test")

    def test_unknownDomain(self):
        """An address in a domain this server does not have is 404."""
        response = self.request("GET", "/mail/config-v1.1.xml?emailaddress=a%40elsewhere.invalid")
        self.assertEqual(response.code, 404)


class AutoconfigOptionsTests(AutoconfigTests):
    overrides = {
        ("pop3", "enabled"): False,
        ("imap", "listen"): ["tcp:143", "unix:/tmp/x.sock"],
        ("server", "hostname"): "mail.example.test",
    }

    def test_outgoing(self):
        """[http] autoconfig_outgoing names the SMTP submission server."""
        self.context.config._values["http", "autoconfig_outgoing"] = ("smtp.example.test", 587, "STARTTLS")
        root = self.parse("/.well-known/autoconfig/mail/config-v1.1.xml")
        server = root.find("emailProvider/outgoingServer")
        self.assertEqual((server.get("type"), server.findtext("hostname"), server.findtext("port"),
                          server.findtext("socketType"), server.findtext("username")),
                         ("smtp", "smtp.example.test", "587", "STARTTLS", "%EMAILADDRESS%"))

    def test_wellKnown(self):
        """Only enabled protocols are listed, with the configured host name; non-TCP listeners are left out."""
        root = self.parse("/.well-known/autoconfig/mail/config-v1.1.xml")
        self.assertEqual(self.servers(root), [("imap", "mail.example.test", "143", "STARTTLS")])


class LogTests(HTTPMixin, TestCase):
    def test_commonLogFormat(self):
        """With an access_log file, each request is a common-log-format line with the logged-in user and no password."""
        path = self.mktemp()
        self.site.accessLog = path
        self.site.startFactory()
        self.addCleanup(self.site.stopFactory)
        self.writeFile("private/a.txt", b"12345")
        self.request("GET", "/~demo/private/a.txt", basic())
        self.request("GET", '/~demo/x"y')
        with open(path) as f:
            lines = f.read().splitlines()
        self.assertRegex(lines[0], r'^127\.0\.0\.1 - demo@example\.test \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] '
                                   r'"GET /~demo/private/a\.txt HTTP/1\.1" 200 5$')
        self.assertRegex(lines[1], r'^127\.0\.0\.1 - - \[.*\] "GET /~demo/x\\x22y HTTP/1\.1" 404 \d+$')
        self.assertNotIn("s3cret", "".join(lines))

    def test_unwritableLog(self):
        """An access_log that cannot be written stops start-up with a message naming the option."""
        from gateway.errors import ConfigurationError

        self.context.config._values["http", "access_log"] = "/nonexistent-folder/access.log"
        error = self.assertRaises(ConfigurationError, server.makeFactory, self.context)
        self.assertIn("[http] access_log", str(error))

    def test_noTraceback(self):
        """A failing resource gives a clean 500 page, without a traceback."""

        def broken(request, account):
            raise RuntimeError("boom")

        self.site.resource.personalSite.serve = lambda request, account, path: broken(request, account)
        response = self.request("GET", "/~demo/x")
        self.assertEqual(response.code, 500)
        self.assertNotIn(b"boom", response.body)
        self.assertNotIn(b"Traceback", response.body)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_headOfMissingPage(self):
        """HEAD of a 404 answers the headers only, with no Twisted warning about a body in the log."""
        from twisted.logger import globalLogPublisher

        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        for path in ("/nothing", "/~demo/missing.txt", "/~nobody/"):
            transport = self.send("HEAD", path)
            head, _, rest = transport.value().partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 404 "), head)
            self.assertIn(b"content-length: ", head.lower())
            self.assertEqual(rest, b"")
        warnings = [e for e in events if "HEAD request" in (e.get("log_format") or "")]
        self.assertEqual(warnings, [])

    def test_serverHeader(self):
        """The Server header names no version."""
        self.assertEqual(self.request("GET", "/nothing").headers["server"], server.SERVER_NAME.decode())


class LoggerTests(HTTPMixin, TestCase):
    def test_accessLogThroughLogger(self):
        """With access_log '-', the common-log line goes to the gateway.http logger."""
        from twisted.logger import globalLogPublisher

        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        self.request("GET", "/nothing/here")
        lines = [e["line"] for e in events if e.get("log_namespace") == "gateway.http" and "line" in e]
        self.assertEqual(len(lines), 1)
        self.assertIn('"GET /nothing/here HTTP/1.1" 404', lines[0])


class WiringTests(TestCase):
    def test_serviceListensHTTP(self):
        """service.makeService builds one listener per [http] listen endpoint with gateway's site."""
        from gateway.service import makeService
        from tests.support import makeTestContext

        context = makeTestContext(self)
        config = context.config
        for name in ("imap", "pop3", "ftp", "lmtp"):
            config._values[name, "enabled"] = False
        config._values["http", "listen"] = ["tcp:0:interface=127.0.0.1", "ssl:0:interface=127.0.0.1"]
        top = makeService(config, checkPorts=False)
        children = [s for s in top if s.name.startswith("http ")]
        self.assertEqual([s.name for s in children],
                         ["http tcp:0:interface=127.0.0.1", "http ssl:0:interface=127.0.0.1"])
        self.assertIsInstance(children[0].factory.wrappedFactory, server.GatewaySite)  # inside the limits
