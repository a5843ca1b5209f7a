# -*- test-case-name: tests.test_turnwrites -*-
"""
Tests for L{gateway.turnwrites}: accepted TCP connections whose writes of
one turn of the reactor are sent together at its end, in order and with
producers as Twisted's connections do.
"""

import select
import socket
import ssl

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IPullProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.threads import deferToThread
from twisted.trial import unittest
from zope.interface import implementer

from gateway.tlscontext import ReloadableTLS
from gateway.turnwrites import TurnWritesServer, writesAtTurnEnd
from tests.support import testCertificate


class _Server(Protocol):
    def connectionMade(self):
        self.factory.connected.callback(self)


class TurnWritesTests(unittest.TestCase):
    def setUp(self):
        factory = Factory.forProtocol(_Server)
        factory.connected = Deferred()
        self.port = writesAtTurnEnd(reactor.listenTCP(0, factory, interface="127.0.0.1"))
        self.addCleanup(self.port.stopListening)
        self.factory = factory

    @inlineCallbacks
    def connect(self):
        client = socket.create_connection(("127.0.0.1", self.port.getHost().port))
        self.addCleanup(client.close)
        server = yield self.factory.connected
        self.addCleanup(server.transport.abortConnection)
        return client, server

    def readAll(self, client):
        """
        Read until the server closes, in a thread.
        """
        def read():
            parts = []
            while True:
                data = client.recv(1 << 20)
                if not data:
                    return b"".join(parts)
                parts.append(data)

        return deferToThread(read)

    def turn(self):
        """
        A Deferred that fires in the reactor's next turn (after the calls
        already asked for it).
        """
        d = Deferred()
        reactor.callLater(0, d.callback, None)
        return d

    @inlineCallbacks
    def test_sentAtTurnEnd(self):
        """
        A write is sent by the end of the reactor's turn, without the
        connection asking the reactor whether it is writable.
        """
        client, server = yield self.connect()
        self.assertIsInstance(server.transport, TurnWritesServer)
        server.transport.write(b"* OK ready\r\n")
        self.assertNotIn(server.transport, reactor.getWriters())
        yield self.turn()
        self.assertNotIn(server.transport, reactor.getWriters())
        readable, _, _ = select.select([client], [], [], 5)
        self.assertEqual(readable, [client])
        self.assertEqual(client.recv(100), b"* OK ready\r\n")

    @inlineCallbacks
    def test_oneSendPerTurn(self):
        """
        The writes of one turn (the replies of several pipelined commands)
        share one send.
        """
        client, server = yield self.connect()
        transport = server.transport
        sends = []
        send = transport.writeSomeData

        def counted(data):
            sends.append(bytes(data))
            return send(data)

        transport.writeSomeData = counted
        for n in range(3):
            transport.write(b"a%d OK done\r\n" % (n,))
        yield self.turn()
        self.assertEqual(sends, [b"a0 OK done\r\na1 OK done\r\na2 OK done\r\n"])

    @inlineCallbacks
    def test_inOrderPastTheSocketBuffer(self):
        """
        Writes larger than the socket takes at once arrive whole and in
        order: what the socket did not take is buffered, and later writes
        queue behind it.
        """
        client, server = yield self.connect()
        server.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        reading = self.readAll(client)
        parts = [b"a" * (3 << 20), b"b" * 10, b"c" * 100000, b"d"]
        for part in parts:
            server.transport.write(part)
        yield self.turn()
        self.assertIn(server.transport, reactor.getWriters())  # the rest waits for writable
        server.transport.write(b"e")
        server.transport.loseConnection()
        received = yield reading
        self.assertEqual(received, b"".join(parts) + b"e")

    @inlineCallbacks
    def test_pullProducer(self):
        """
        A pull producer is asked for more each time what it wrote was sent,
        until it is done.
        """
        client, server = yield self.connect()
        reading = self.readAll(client)
        blocks = [bytes([65 + n]) * 200000 for n in range(5)]
        transport = server.transport

        @implementer(IPullProducer)
        class Blocks:
            def resumeProducing(self):
                if blocks:
                    transport.write(blocks.pop(0))
                else:
                    transport.unregisterProducer()
                    transport.loseConnection()

            def stopProducing(self):
                pass

        expected = b"".join(blocks)
        transport.write(b"first ")
        transport.registerProducer(Blocks(), False)
        received = yield reading
        self.assertEqual(received, b"first " + expected)

    @inlineCallbacks
    def test_startTLS(self):
        """
        After C{startTLS} what is written is encrypted: it goes through the
        TLS layer, not straight to the socket.
        """
        client, server = yield self.connect()
        server.transport.write(b"go\r\n")
        yield self.turn()
        self.assertEqual(select.select([client], [], [], 5)[0], [client])
        self.assertEqual(client.recv(100), b"go\r\n")
        server.transport.startTLS(ReloadableTLS(*testCertificate(), "TLSv1.2", "[tls] certificate"))
        server.transport.write(b"secret\r\n")

        def handshake():
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            wrapped = context.wrap_socket(client)
            self.addCleanup(wrapped.close)
            return wrapped.recv(100)

        self.assertEqual((yield deferToThread(handshake)), b"secret\r\n")

    @inlineCallbacks
    def test_peerGone(self):
        """
        A write to a peer that reset the connection ends it as Twisted's
        own connection does: connectionLost, nothing raised to the writer.
        """
        client, server = yield self.connect()
        lost = Deferred()
        server.connectionLost = lambda reason: lost.callback(reason.value)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        client.close()
        pause = Deferred()
        reactor.callLater(0.05, pause.callback, None)
        yield pause
        for _ in range(3):
            server.transport.write(b"x" * 1000)
        reason = yield lost
        self.assertIsInstance(reason, (ConnectionLost, ConnectionDone))
