"""
A protocol checker for mixed multi-client IMAP runs (issue 13): each
client tracks what its session was told (message count, sequence-to-UID
map, flags announced, modseqs) and records every response that breaks
RFC 3501/7162 rules:

  - EXISTS never shrinks; EXPUNGE and FETCH name existing numbers;
  - no EXPUNGE (or VANISHED, for the half of the clients that ENABLE
    QRESYNC) in the responses of FETCH, STORE or SEARCH (non-UID);
  - a FETCH never shows a keyword not announced in a FLAGS response;
  - UIDs ascend with sequence numbers and a message's MODSEQ never
    decreases;
  - SEARCH/SORT numbers exist.

Run a load against a server with L{runClients}; C{python -m
tests.imap_checker PORT USER PASSWORD [CLIENTS] [SECONDS]} does it from a
shell.
"""

import random
import re
import socket
import sys
import threading
import time

_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")
_FETCH = re.compile(rb"^\* (\d+) FETCH \((.*)\)$", re.S)
_NUMBER_RESPONSE = re.compile(rb"^\* (\d+) (EXISTS|EXPUNGE|RECENT)$")
_FLAGS = re.compile(rb"^\* FLAGS \(([^)]*)\)$")
_FETCH_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_FETCH_UID = re.compile(rb"UID (\d+)")
_FETCH_MODSEQ = re.compile(rb"MODSEQ \((\d+)\)")


def _uidSet(text):
    """
    The UIDs of a sequence set without C{*}.
    """
    uids = []
    for part in text.decode("ascii").split(","):
        low, _, high = part.partition(":")
        low, high = int(low), int(high or low)
        uids.extend(range(min(low, high), max(low, high) + 1))
    return uids


class Session:
    """
    One client connection and the state the server told it.

    @ivar violations: C{list} of C{str}, each a rule broken.
    """

    def __init__(self, host, port, name="c"):
        self.sock = socket.create_connection((host, port), timeout=30)
        self.file = self.sock.makefile("rb")
        self.name = name
        self.counter = 0
        self.violations = []
        self.exists = 0
        self.uids = []
        self.flags = set()
        self.modseqs = {}
        self.selected = False
        self.readLine()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def readLine(self):
        """
        One response with its literals inline (as C{bytes}, CRLF removed).
        """
        line = self.file.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        while True:
            match = _LITERAL.search(line)
            if match is None:
                return line.rstrip(b"\r\n")
            line = line + self.file.read(int(match.group(1))) + self.file.readline()

    def violation(self, text, command):
        self.violations.append("%s: %s (after %s)" % (self.name, text, command[:60]))

    def command(self, text, until=None):
        """
        Send C{text} (C{bytes}), check every response, return them and the
        tagged status.
        """
        self.counter += 1
        tag = b"%s%d" % (self.name.encode(), self.counter)
        self.sock.sendall(tag + b" " + text + b"\r\n")
        return self.collect(tag, text)

    def collect(self, tag, text):
        responses = []
        verb = text.split(b" ", 1)[0].upper()
        noExpunge = verb in (b"FETCH", b"STORE", b"SEARCH", b"SORT", b"THREAD")
        while True:
            line = self.readLine()
            if line.startswith(tag + b" "):
                status = line.split(b" ", 2)[1]
                return responses, status
            responses.append(line)
            self.check(line, text, noExpunge)

    def check(self, line, command, noExpunge):
        command = command.decode("latin-1")
        match = _FLAGS.match(line)
        if match:
            self.flags = set(match.group(1).split())
            return
        match = _NUMBER_RESPONSE.match(line)
        if match:
            number, kind = int(match.group(1)), match.group(2)
            if kind == b"EXISTS":
                if number < self.exists:
                    self.violation("EXISTS %d after %d without EXPUNGE" % (number, self.exists), command)
                self.uids.extend([None] * (number - self.exists))
                self.exists = number
            elif kind == b"EXPUNGE":
                if noExpunge:
                    self.violation("EXPUNGE during %s" % (command.split()[0],), command)
                if not 1 <= number <= self.exists:
                    self.violation("EXPUNGE %d of %d messages" % (number, self.exists), command)
                else:
                    uid = self.uids.pop(number - 1)
                    self.modseqs.pop(uid, None)
                    self.exists -= 1
            elif number > self.exists:
                self.violation("RECENT %d above EXISTS %d" % (number, self.exists), command)
            return
        match = _FETCH.match(line)
        if match:
            self.checkFetch(int(match.group(1)), match.group(2), command)
            return
        if line.startswith(b"* VANISHED ") and not line.startswith(b"* VANISHED (EARLIER)"):
            if noExpunge:
                self.violation("VANISHED during %s" % (command.split()[0],), command)
            for uid in _uidSet(line[len(b"* VANISHED "):]):
                if uid in self.uids:
                    self.uids.remove(uid)
                elif None in self.uids:
                    # A UID this client never fetched: where it was is
                    # unknown, so the sequence map is forgotten.
                    self.uids = [None] * (len(self.uids) - 1)
                else:
                    continue  # RFC 7162 3.2.10: a UID that does not exist may be named
                self.modseqs.pop(uid, None)
                self.exists -= 1
            return
        if line.startswith((b"* SEARCH", b"* SORT")):
            numbers = [int(n) for n in re.findall(rb"\d+", line.split(b"(MODSEQ")[0])]
            if not command.upper().startswith("UID") and any(n > self.exists or n < 1 for n in numbers):
                self.violation("%s names a message beyond %d" % (line[:40], self.exists), command)

    def checkFetch(self, seq, body, command):
        if not 1 <= seq <= self.exists:
            self.violation("FETCH %d of %d messages" % (seq, self.exists), command)
            return
        flags = _FETCH_FLAGS.search(body)
        if flags:
            unknown = {f for f in flags.group(1).split() if not f.startswith(b"\\")} - self.flags
            if unknown:
                self.violation("FETCH shows keywords never announced: %s" % (sorted(unknown),), command)
        uid = _FETCH_UID.search(body)
        if uid:
            uid = int(uid.group(1))
            old = self.uids[seq - 1]
            if old is not None and old != uid:
                self.violation("message %d was UID %d, now %d" % (seq, old, uid), command)
            before = [u for u in self.uids[:seq - 1] if u is not None]
            after = [u for u in self.uids[seq:] if u is not None]
            if (before and before[-1] >= uid) or (after and after[0] <= uid):
                self.violation("UID %d out of order at %d" % (uid, seq), command)
            self.uids[seq - 1] = uid
            modseq = _FETCH_MODSEQ.search(body)
            if modseq:
                modseq = int(modseq.group(1))
                if modseq < self.modseqs.get(uid, 0):
                    self.violation("MODSEQ of UID %d went down" % (uid,), command)
                self.modseqs[uid] = modseq

    def idle(self, seconds):
        self.counter += 1
        tag = b"%s%d" % (self.name.encode(), self.counter)
        self.sock.sendall(tag + b" IDLE\r\n")
        line = self.readLine()
        while not line.startswith(b"+"):
            self.check(line, b"IDLE", False)
            line = self.readLine()
        time.sleep(seconds)
        self.sock.sendall(b"DONE\r\n")
        return self.collect(tag, b"IDLE")


_MESSAGE = b"Subject: stress\r\n\r\nbody\r\n"

KEYWORDS = [b"$Label1", b"$Label2", b"$hello", b"NIL", b"Work", b"$Junk"]


def randomCommand(session, rnd):
    """
    One command of the mixed load, or C{None} for IDLE.
    """
    n = max(session.exists, 1)
    seq = b"%d" % (rnd.randint(1, n),) if session.exists else b"1:*"
    word = rnd.choice(KEYWORDS)
    choices = [
        b"FETCH 1:* (FLAGS UID)",
        b"UID FETCH 1:* (FLAGS MODSEQ)",
        b"STORE %s +FLAGS (%s)" % (seq, word),
        b"STORE %s -FLAGS (%s)" % (seq, word),
        b"UID STORE 1:* +FLAGS.SILENT (%s)" % (word,),
        b"APPEND INBOX (%s) {%d+}\r\n%s" % (word, len(_MESSAGE), _MESSAGE),
        b"STORE %s +FLAGS.SILENT (\\Deleted)" % (seq,),
        b"EXPUNGE",
        b"SEARCH KEYWORD %s" % (word,),
        b"SORT (REVERSE DATE) UTF-8 ALL",
        b"THREAD REFERENCES UTF-8 ALL",
        b"NOOP",
        None,
    ]
    return rnd.choice(choices)


def runClient(host, port, user, password, name, until, seed, results):
    rnd = random.Random(seed)
    session = Session(host, port, name)
    try:
        session.command(b'LOGIN %s "%s"' % (user.encode(), password.encode()))
        session.command(b"ENABLE QRESYNC" if rnd.random() < 0.5 else b"ENABLE CONDSTORE")
        session.command(b"SELECT INBOX")
        count = 0
        while time.time() < until:
            text = randomCommand(session, rnd)
            if text is None:
                session.idle(rnd.random() * 0.05)
            else:
                _, status = session.command(text)
                if status not in (b"OK", b"NO"):
                    session.violation("%s answered %s" % (text[:40], status), text.decode("latin-1"))
            count += 1
        session.command(b"LOGOUT")
        results.append((count, session.violations))
    except Exception as e:
        results.append((0, ["%s: %r" % (name, e)] + session.violations))
    finally:
        session.close()


def runClients(host, port, user, password, clients=10, seconds=300.0, seed=0):
    """
    Run C{clients} mixed-load clients for C{seconds}.

    @return: C{(commands, violations)}.
    """
    until = time.time() + seconds
    results = []
    threads = [threading.Thread(target=runClient,
                                args=(host, port, user, password, "c%d" % (i,), until, seed + i, results))
               for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(r[0] for r in results), [v for r in results for v in r[1]]


if __name__ == "__main__":
    port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    clients = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 300.0
    commands, violations = runClients("127.0.0.1", port, user, password, clients, seconds)
    print("%d commands, %d violations" % (commands, len(violations)))
    for v in violations[:50]:
        print(v)
    sys.exit(1 if violations else 0)
