#!/usr/bin/env python
"""
What an idle server-side TLS connection costs, part by part: C{--count}
connections held in one process, each a server connection over memory BIOs
(as Twisted's TLS layer holds it) that did a handshake with a Python C{ssl}
client (as asyncio's and imaplib's) and exchanged an IMAP greeting, a
LOGIN and an IDLE; the client is dropped, the server connection kept.

    .venv/bin/python bench/tlsidle.py [--count 1000]

For each configuration it prints the C heap in use per connection
(glibc's C{mallinfo2}: what is live, whatever the allocator keeps) and the
resident set per connection after C{malloc_trim(0)}.  The server side is
gateway's own context (L{gateway.tlscontext.ReloadableTLS}, a P-256
self-signed certificate): pyOpenSSL over the OpenSSL that C{cryptography}
links in; then Python's C{ssl} module as the server (the system's OpenSSL),
and rustls through the C{rtls} package (C{[tls] engine = rustls}) when it
is installed.  Memory only: nothing here is timed.
"""

import argparse
import ctypes
import gc
import os
import ssl
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.insert(0, os.path.dirname(HERE))

import OpenSSL  # noqa: E402
from OpenSSL import SSL  # noqa: E402

from gateway.tlscert import makeSelfSigned  # noqa: E402
from gateway.tlscontext import LeanConnection, ReloadableTLS  # noqa: E402

_LIBC = ctypes.CDLL("libc.so.6")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


_LIBC.mallinfo2.restype = _Mallinfo2


def heapInUse():
    """Bytes the C heap has handed out and not had back (small and mmapped blocks)."""
    gc.collect()
    info = _LIBC.mallinfo2()
    return info.uordblks + info.hblkhd


def resident():
    """The resident set in bytes, after giving free heap memory back."""
    gc.collect()
    _LIBC.malloc_trim(0)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# ---------------------------------------------------------------------------
# pyOpenSSL servers


class PyOpenSSLPair:
    """
    A server connection made by C{make(context)} and a Python C{ssl} client,
    bytes moved by hand as Twisted moves them (C{bio_read} of up to 32 kB).
    """

    def __init__(self, make, context, client):
        self.server = make(context)
        self.server.set_accept_state()
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.client = client.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")

    def pump(self):
        moved = True
        while moved:
            moved = False
            try:
                self.client.do_handshake()
            except ssl.SSLWantReadError:
                pass
            data = self.outgoing.read()
            if data:
                self.server.bio_write(data)
                moved = True
            try:
                self.server.do_handshake()
            except SSL.WantReadError:
                pass
            while True:
                try:
                    data = self.server.bio_read(2**15)
                except SSL.WantReadError:
                    break
                self.incoming.write(data)
                moved = True

    def serverReads(self):
        data = b""
        try:
            while True:
                data += self.server.recv(2**15)
        except SSL.WantReadError:
            return data

    def clientReads(self):
        data = b""
        try:
            while True:
                data += self.client.read(2**16)
        except ssl.SSLWantReadError:
            return data

    def idle(self):
        """Handshake, greeting, LOGIN, IDLE."""
        self.pump()
        for command, answer in ((None, b"* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n"),
                                (b"a LOGIN user password\r\n", b"a OK LOGIN completed\r\n"),
                                (b"b IDLE\r\n", b"+ idling\r\n")):
            if command:
                self.client.write(command)
                self.pump()
                self.serverReads()
            self.server.send(answer)
            self.pump()
            self.clientReads()

    def download(self, size=300000):
        """C{size} bytes to the client in 16 kB writes (a large FETCH)."""
        data = b"x" * 2**14
        for _ in range(size // len(data)):
            self.server.send(data)
            self.pump()
            self.clientReads()

    def upload(self, size=300000):
        """C{size} bytes from the client in 64 kB deliveries (an APPEND's literal)."""
        self.client.write(b"y" * size)
        sent = self.outgoing.read()
        for start in range(0, len(sent), 65536):
            self.server.bio_write(sent[start:start + 65536])
            self.serverReads()
            self.pump()


def measure(count, one):
    """
    @return: C{(heap, resident)} bytes per object C{one()} returns, kept
        C{count} at once.
    """
    for _ in range(20):
        one()
    heap, rss = heapInUse(), resident()
    kept = [one() for _ in range(count)]
    heap, rss = heapInUse() - heap, resident() - rss
    del kept
    return heap / count, rss / count


def pyOpenSSLRows(tls, certPath):
    client = ssl.create_default_context(cafile=certPath)
    plain = lambda context: SSL.Connection(context, None)  # noqa: E731  Twisted's own
    lean = lambda context: LeanConnection(context, None)  # noqa: E731  gateway's
    client12 = ssl.create_default_context(cafile=certPath)
    client12.maximum_version = ssl.TLSVersion.TLSv1_2

    def connection(make, context=None, after=(), clientContext=client):
        def one():
            pair = PyOpenSSLPair(make, context or tls.getContext(), clientContext)
            pair.idle()
            for step in after:
                getattr(pair, step)()
            return pair.server
        return one

    def suites(names):
        from OpenSSL._util import lib  # pyOpenSSL has no set_ciphersuites

        context = ReloadableTLS(*tls.paths).getContext()
        lib.SSL_CTX_set_ciphersuites(context._context, names)
        return context

    def newOnly():
        connection = SSL.Connection(tls.getContext(), None)
        connection.set_accept_state()
        return connection

    return [
        ("SSL_new only (no handshake)", newOnly),
        ("idle, TLS 1.3, Connection (Twisted's)", connection(plain)),
        ("idle, TLS 1.3, LeanConnection (gateway's)", connection(lean)),
        ("idle, TLS 1.2, Connection", connection(plain, clientContext=client12)),
        ("idle, TLS 1.2, LeanConnection", connection(lean, clientContext=client12)),
        ("idle after a 300 kB download, Connection", connection(plain, after=("download",))),
        ("idle after a 300 kB download, LeanConnection", connection(lean, after=("download",))),
        ("idle after a 300 kB upload, Connection", connection(plain, after=("upload",))),
        ("idle after a 300 kB upload, LeanConnection", connection(lean, after=("upload",))),
        ("idle, TLS 1.3 AES-128-GCM, LeanConnection", connection(lean, suites(b"TLS_AES_128_GCM_SHA256"))),
        ("idle, TLS 1.3 CHACHA20, LeanConnection", connection(lean, suites(b"TLS_CHACHA20_POLY1305_SHA256"))),
    ]


# ---------------------------------------------------------------------------
# Python's ssl and rustls (the rtls package, gateway's [tls] engine = rustls)
# as the server: both have the ssl module's SSLObject interface


def sslObjectRows(module, name, certPath, keyPath):
    """
    Rows for a server made by C{module} (C{ssl} or C{rtls}) with its own
    C{MemoryBIO}s, against a Python C{ssl} client.
    """
    server = module.SSLContext(module.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(certPath, keyPath)
    client = ssl.create_default_context(cafile=certPath)

    def newOnly():
        return server.wrap_bio(module.MemoryBIO(), module.MemoryBIO(), server_side=True)

    def connection(download=0):
        def one():
            serverIn, serverOut = module.MemoryBIO(), module.MemoryBIO()
            clientIn, clientOut = ssl.MemoryBIO(), ssl.MemoryBIO()
            s = server.wrap_bio(serverIn, serverOut, server_side=True)
            c = client.wrap_bio(clientIn, clientOut, server_hostname="localhost")

            def pump():
                moved = True
                while moved:
                    moved = False
                    for end, wants in ((c, ssl.SSLWantReadError), (s, module.SSLWantReadError)):
                        try:
                            end.do_handshake()
                        except wants:
                            pass
                    for source, target in ((clientOut, serverIn), (serverOut, clientIn)):
                        data = source.read()
                        if data:
                            target.write(data)
                            moved = True

            def clientReads():
                try:
                    while c.read(65536):
                        pass
                except ssl.SSLWantReadError:
                    pass

            pump()
            s.write(b"* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n")
            pump()
            clientReads()
            c.write(b"a LOGIN user password\r\n")
            pump()
            s.read(1000)
            for _ in range(download // 2**14):
                s.write(b"x" * 2**14)
                pump()
                clientReads()
            return s, serverIn, serverOut

        return one

    return [
        ("%s server: wrap_bio only (no handshake)" % (name,), newOnly),
        ("%s server: idle, TLS 1.3" % (name,), connection()),
        ("%s server: idle after a 300 kB download" % (name,), connection(300000)),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="connections held at once")
    options = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="gateway-bench-tlsidle-")
    certPath, keyPath = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    makeSelfSigned(certPath, keyPath)
    tls = ReloadableTLS(certPath, keyPath, "1.2", "[tls] certificate")
    print("pyOpenSSL %s over %s; Python ssl over %s; %d connections held" % (
        OpenSSL.__version__, SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode(), ssl.OPENSSL_VERSION, options.count))
    print("%-62s %10s %10s" % ("per connection", "heap (kB)", "RSS (kB)"))
    rows = pyOpenSSLRows(tls, certPath) + sslObjectRows(ssl, "Python ssl", certPath, keyPath)
    try:
        import rtls
    except ImportError:
        print("(no rtls package: no rustls rows)")
    else:
        rows += sslObjectRows(rtls, "rustls (rtls %s)" % (rtls.__version__,), certPath, keyPath)
    for label, one in rows:
        heap, rss = measure(options.count, one)
        print("%-62s %10.2f %10.2f" % (label, heap / 1024, rss / 1024), flush=True)


if __name__ == "__main__":
    main()
