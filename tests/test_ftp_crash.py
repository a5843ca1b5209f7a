# -*- test-case-name: tests.test_ftp_crash -*-
"""
Crash tests: the FTP server (L{tests.ftpserver}, its own process) is killed
with SIGKILL at a random moment of a stream of uploads, then started again
on the same data root, and what the files hold is checked against what the
client was told.  A few rounds by default; C{GATEWAY_FUZZ=long} runs many.
"""

import ftplib
import io
import os
import random
import subprocess
import sys
import threading
import time

from twisted.trial import unittest

from gateway.store.files import TEMP_PREFIX, FileStore
from tests.support import PASSWORD

ROUNDS = 30 if os.environ.get("GATEWAY_FUZZ", "").lower() == "long" else 3
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ["a.bin", "b.bin", "c.bin", "d.bin"]


class _Server:
    """
    The server process over C{dataRoot}; C{port} once it listens.
    """

    def __init__(self, dataRoot):
        self.process = subprocess.Popen([sys.executable, "-m", "tests.ftpserver", dataRoot],
                                        stdout=subprocess.PIPE, cwd=HERE)
        self.port = int(self.process.stdout.readline())

    def kill(self):
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()


def _client(port):
    ftp = ftplib.FTP(timeout=10)
    ftp.connect("127.0.0.1", port)
    ftp.login("demo", PASSWORD)
    ftp.voidcmd("TYPE I")
    return ftp


def _uploads(port, rng, model, pending):
    """
    Upload until the server dies: STOR of new and existing files, APPE,
    and REST+STOR from a file's end.  C{model} holds each file's content as
    acknowledged (226); C{pending} the operation under way.
    """
    ftp = None
    try:
        ftp = _client(port)
        while True:
            name = rng.choice(NAMES)
            kind = rng.choice(["STOR", "STOR", "APPE", "REST"])
            payload = rng.randbytes(rng.randrange(1, 1500000))
            old = model.get(name)
            if kind != "STOR" and old is None:
                kind = "STOR"
            pending[:] = [name, kind, old, payload]
            if kind == "STOR":
                ftp.storbinary("STOR " + name, io.BytesIO(payload))
                model[name] = payload
            elif kind == "APPE":
                ftp.storbinary("APPE " + name, io.BytesIO(payload))
                model[name] = old + payload
            else:
                ftp.storbinary("STOR " + name, io.BytesIO(payload), rest=len(old))
                model[name] = old + payload
            del pending[:]
    except (OSError, EOFError, ftplib.Error):
        return
    finally:
        if ftp is not None:
            ftp.close()


def _read(path):
    """
    The content of the file at C{path}, or C{None} when there is none.
    """
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


class CrashTests(unittest.TestCase):
    def test_killDuringUploads(self):
        """After kill -9 at a random moment and a restart, acknowledged uploads are whole, a cut one is old, new or (in place) old plus a prefix, and no temporary file stays or counts."""
        dataRoot = os.path.abspath(self.mktemp())
        root = os.path.join(dataRoot, "domains", "example.test", "accounts", "demo", "files")
        model = {}
        for round in range(ROUNDS):
            rng = random.Random(round)
            server = _Server(dataRoot)
            self.addCleanup(server.process.kill)
            pending = []
            client = threading.Thread(target=_uploads, args=(server.port, rng, model, pending))
            client.start()
            time.sleep(rng.uniform(0.05, 0.6))
            server.kill()
            client.join(30)
            self.assertFalse(client.is_alive())
            self._check(root, model, pending)
            # The cut upload's temporary file, a minute later: the next
            # login removes it.
            old = time.time() - 120
            leftovers = [n for n in os.listdir(root) if n.startswith(TEMP_PREFIX)]
            for name in leftovers:
                os.utime(os.path.join(root, name), (old, old))
            server = _Server(dataRoot)
            self.addCleanup(server.process.kill)
            _client(server.port).quit()
            for _ in range(1000):
                if not [n for n in os.listdir(root) if n.startswith(TEMP_PREFIX)]:
                    break
                time.sleep(0.01)
            server.kill()
            names = sorted(n for n in os.listdir(root) if n != "private")
            self.assertTrue(set(model) <= set(names) <= set(model) | set(pending[:1]), (names, list(model)))
            self.assertEqual(FileStore(root).usage(), sum(os.path.getsize(os.path.join(root, n)) for n in names))
            # What is on disk is what the next round starts from.
            for name in names:
                model[name] = _read(os.path.join(root, name))

    def _check(self, root, model, pending):
        cut = pending[0] if pending else None
        for name in NAMES:
            content = _read(os.path.join(root, name))
            if name != cut:
                self.assertEqual(content, model.get(name), name)
                continue
            _, kind, old, payload = pending
            if kind == "STOR":
                # The rename is atomic: the old file (or none), or the new one
                # when the 226 was lost with the server.
                self.assertIn(content, (old, payload), name)
            else:
                # In place: the old bytes, then some prefix of the new.
                self.assertIsNotNone(content, name)
                self.assertEqual(content[:len(old)], old, name)
                self.assertEqual(content[len(old):], payload[:len(content) - len(old)], name)
