"""
Tests for L{gateway.pop3.stream}: dot-stuffing, TOP and the message producer.
"""

import io
import random

from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from gateway.pop3.stream import CHUNK, DotStuffer, MessageProducer, PrefixedReader, TopFilter, stuffWhole


def referenceStuff(message):
    """
    Dot-stuff a whole CRLF message line by line and terminate it.
    """
    lines = message.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)
    return out + b".\r\n"


def stuffInChunks(message, size):
    stuffer = DotStuffer()
    out = b"".join(stuffer.transform(message[i:i + size]) for i in range(0, len(message), size))
    return out + stuffer.end()


class DotStufferTests(unittest.TestCase):
    def test_lineStartsAcrossBoundaries(self):
        """Lines starting with a dot are stuffed whatever the chunk size, including at chunk starts."""
        message = b".first\r\n..second\r\nplain\r\n.\r\n.x\r\nend\r\n"
        for size in range(1, len(message) + 1):
            self.assertEqual(stuffInChunks(message, size), referenceStuff(message), size)

    def test_missingFinalCRLF(self):
        """A message that does not end with CRLF gets one before the terminator."""
        self.assertEqual(stuffInChunks(b"a\r\nb", 1), b"a\r\nb\r\n.\r\n")
        self.assertEqual(stuffInChunks(b"a\r\n.b", 3), b"a\r\n..b\r\n.\r\n")

    def test_emptyMessage(self):
        """An empty message is just the terminator."""
        self.assertEqual(stuffInChunks(b"", 10), b".\r\n")

    def test_randomMessages(self):
        """Random messages full of dots and line ends match the line-by-line reference."""
        rng = random.Random(4)
        for _ in range(50):
            message = bytes(rng.choice(b".\r\nab\xff") for _ in range(rng.randint(0, 300)))
            message = message.replace(b"\r", b"").replace(b"\n", b"\r\n")
            if not message.endswith(b"\r\n"):
                message += b"\r\n"
            self.assertEqual(stuffInChunks(message, rng.randint(1, 20)), referenceStuff(message))


class StuffWholeTests(unittest.TestCase):
    def test_sameAsChunked(self):
        """A message stuffed in one piece gives what chunk-by-chunk stuffing gives, with and without TOP."""
        message = b"Subject: x\r\n\r\n.a\r\nb\r\n..c\r\n.\r\nlast"
        self.assertEqual(stuffWhole(message), stuffInChunks(message, 3))
        self.assertEqual(stuffWhole(message, 2), b"Subject: x\r\n\r\n..a\r\nb\r\n.\r\n")


class PrefixedReaderTests(unittest.TestCase):
    def test_readsAcrossThePrefix(self):
        """Reads give the prefix, then the source, and a read may span both."""
        reader = PrefixedReader(b"abc", io.BytesIO(b"defgh"))
        self.assertEqual([reader.read(2), reader.read(2), reader.read(-1), reader.read(2)], [b"ab", b"cd", b"efgh", b""])
        self.assertEqual(PrefixedReader(b"abc", io.BytesIO(b"de")).read(), b"abcde")


class TopFilterTests(unittest.TestCase):
    message = b"Subject: x\r\nFrom: a\r\n\r\nline1\r\nline2\r\nline3\r\n"

    def top(self, lines, size):
        top = TopFilter(lines)
        return b"".join(top.transform(self.message[i:i + size]) for i in range(0, len(self.message), size))

    def test_headersAndLines(self):
        """TOP n gives the headers, the blank line and n body lines, whatever the chunking."""
        for size in range(1, len(self.message) + 1):
            self.assertEqual(self.top(0, size), b"Subject: x\r\nFrom: a\r\n\r\n", size)
            self.assertEqual(self.top(2, size), b"Subject: x\r\nFrom: a\r\n\r\nline1\r\nline2\r\n", size)
            self.assertEqual(self.top(10, size), self.message, size)


class ProducerTests(unittest.TestCase):
    def test_interface(self):
        """MessageProducer provides IPushProducer."""
        self.assertTrue(verifyObject(IPushProducer, MessageProducer(io.BytesIO(), StringTransport(), Clock())))

    def test_stopProducing(self):
        """stopProducing closes the file and nothing more is written."""
        source = io.BytesIO(b"x" * (CHUNK * 8))
        transport = StringTransport()
        clock = Clock()
        producer = MessageProducer(source, transport, clock)
        producer.start()
        written = len(transport.value())
        self.assertLess(written, CHUNK * 8)
        producer.stopProducing()
        clock.advance(0)
        self.assertTrue(source.closed)
        self.assertEqual(len(transport.value()), written)

    def test_largeMessageWithPauses(self):
        """A message larger than several chunks, with dots at chunk boundaries, streams exactly through pauses."""
        line = b"x" * (CHUNK - 2) + b"\r\n"
        message = (line + b".dot\r\n") * 5 + b".\r\n"
        transport = StringTransport()
        clock = Clock()
        producer = MessageProducer(io.BytesIO(message), transport, clock)
        done = []
        producer.start().addCallback(done.append)
        producer.pauseProducing()
        clock.advance(0)
        while not done:
            producer.resumeProducing()
            producer.pauseProducing()
            clock.advance(0)
        self.assertEqual(transport.value(), referenceStuff(message))
        self.assertIsNone(transport.producer)
