# -*- test-case-name: tests.test_imap_stress -*-
"""
A mixed IMAP workload whose every reply is checked: a blocking IMAP client
(L{CheckedClient}, plain or TLS) that feeds all it receives to a
L{tests.imapcheck.SessionChecker}, self-verifying messages, and the cycle
of commands the stress test (L{tests.test_imap_stress}) and the benchmark
(C{bench/imapmix.py}) run, against any server.  It knows no gateway code.

One cycle (L{mixedCycle}) is the shape of the widely used IMAP stress
testers: SELECT, LIST, STATUS, FETCH of flags, envelope and body
structure, FETCH BODY.PEEK[] (the body is checked against the digest the
message carries), STORE of flags and keywords, APPEND, STORE \\Deleted and
EXPUNGE; with C{extras}, also CONDSTORE FETCH (MODSEQ), SEARCH, UID SEARCH,
SORT, THREAD, UID STORE, NOOP and a short IDLE.

C{python -m tests.imapload PORT USER PASSWORD [CLIENTS] [SECONDS]} runs the
stress test's mix (half the sessions with QRESYNC enabled) against a
server listening on 127.0.0.1 without TLS, and prints what the checker
found (see L{main}).

C{GATEWAY_IMAPLOAD_TRANSCRIPT=N} (a debug switch) makes every client keep
the last C{N} lines it sent and received; a context result found wrong
(L{_contextEnd}) then carries them, so the updates the server sent before
can be read.
"""

import collections
import hashlib
import os
import random
import socket
import ssl
import sys
import threading
import time

from tests.imapcheck import Registry, SessionChecker
from tests.imapcheck_context import _pairs

KEYWORDS = ["$Label1", "$Label2", "$Work", "$Todo", "Project_X"]
SYSTEM = ["\\Seen", "\\Flagged", "\\Answered", "\\Draft"]

_DIGEST_HEADER = b"X-Body-SHA1: "

#: Lines of its session each client keeps (L{CheckedClient.transcript}).
TRANSCRIPT = int(os.environ.get("GATEWAY_IMAPLOAD_TRANSCRIPT") or 0)


class IMAPError(Exception):
    """
    A command that did not end with OK (or the connection went away).
    """


def makeMessage(n, rng=None, large=False):
    """
    A small message (0.5-4 KB, CRLF; C{large}: about 300 KB) that carries
    the SHA-1 of its body in an C{X-Body-SHA1} header; every fifth is
    multipart.
    """
    rng = rng or random.Random(n)
    lines = "".join("Line %d of message %d: %s\r\n" % (i, n, "lorem ipsum dolor sit amet " * rng.randint(1, 3))
                    for i in range(rng.randint(4, 40) if not large else 5000))
    if n % 5 == 0:
        body = ("--b%d\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n%s\r\n"
                "--b%d\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n<p>%s</p>\r\n--b%d--\r\n"
                % (n, lines, n, lines[:200], n)).encode("ascii")
        ctype = b'Content-Type: multipart/alternative; boundary="b%d"\r\nMIME-Version: 1.0\r\n' % (n,)
    else:
        body = lines.encode("ascii")
        ctype = b"Content-Type: text/plain; charset=us-ascii\r\n"
    head = (b"From: Sender %d <sender%d@example.org>\r\nTo: demo@example.test\r\n"
            b"Subject: Mixed load message %d\r\nDate: Mon, 1 Jan 2024 12:00:00 +0000\r\n"
            b"Message-ID: <%d.%d@load.example.org>\r\n" % (n, n % 97, n, n, rng.randint(0, 10**9)))
    return head + ctype + _DIGEST_HEADER + hashlib.sha1(body).hexdigest().encode("ascii") + b"\r\n\r\n" + body


def bodyIntact(message):
    """
    Whether a message made by L{makeMessage} still matches its digest
    (other messages: C{True}).
    """
    head, sep, body = message.partition(b"\r\n\r\n")
    start = head.find(_DIGEST_HEADER)
    if start < 0:
        return True
    digest = head[start + len(_DIGEST_HEADER):start + len(_DIGEST_HEADER) + 40]
    return bool(sep) and hashlib.sha1(body).hexdigest().encode("ascii") == digest


class CheckedClient:
    """
    A blocking IMAP client whose every received byte goes through a
    L{SessionChecker}.

    @ivar checker: the L{SessionChecker}.
    @ivar problems: C{list} of C{(kind, text)}: wrong answers the workload
        found beyond the checker's: C{"body"} (a body failing its digest),
        C{"fetch-missing"} (FETCH answered OK, without C{[EXPUNGEISSUED]},
        and without the data of a message it named).
    @ivar transcript: the last lines sent (C{"C: "}) and received
        (C{"S: "}), with C{transcript} lines kept (L{TRANSCRIPT} by
        default); C{None} when none are.
    """

    def __init__(self, port, checker, tlsContext=None, host="127.0.0.1", timeout=60, transcript=None, sock=None):
        """
        @param sock: a connected socket (or stand-in) to use instead of
            connecting to C{port}.
        """
        if sock is None:
            sock = socket.create_connection((host, port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tlsContext is not None:
                sock = tlsContext.wrap_socket(sock, server_hostname=host)
        self.sock = sock
        self.checker = checker
        self.counter = 0
        self.problems = []
        self._pending = []
        keep = TRANSCRIPT if transcript is None else transcript
        self.transcript = collections.deque(maxlen=keep) if keep else None
        greeting = self._next()
        if greeting.kind != "untagged" or greeting.name not in ("OK", "PREAUTH"):
            raise IMAPError("greeting %r" % (greeting.raw[:100],))

    def _next(self):
        """
        The next response (reading as needed).
        """
        while not self._pending:
            data = self.sock.recv(1 << 18)
            if not data:
                self.checker.finish()
                raise IMAPError("connection closed")
            self._received(data)
            self._pending.extend(self.checker.receive(data))
        return self._pending.pop(0)

    def _received(self, data):
        if self.transcript is not None:
            self.transcript.extend("S: " + line.decode("latin-1")[:300] for line in data.splitlines())

    def _send(self, data):
        if self.transcript is not None:
            self.transcript.extend("C: " + line.decode("latin-1")[:300] for line in data.splitlines())
        self.sock.sendall(data)

    def lastLines(self):
        """
        The transcript kept, one line each (empty when none is kept).
        """
        return "\n".join(self.transcript or ())

    def command(self, line, literal=None, expectBad=False):
        """
        Send C{line} (and C{literal} after the continuation) and read to
        its tagged response.

        @return: C{(tagged response, untagged responses)}.
        """
        self.counter += 1
        tag = b"c%d" % (self.counter,)
        if literal is not None:
            line += b" {%d}" % (len(literal),)
        self.checker.sent(tag, line, expectBad)
        self._send(tag + b" " + line + b"\r\n")
        untagged = []
        if literal is not None:
            while True:
                response = self._next()
                if response.kind == "continuation":
                    if self.transcript is not None:
                        self.transcript.append("C: (literal of %d bytes)" % (len(literal),))
                    self.sock.sendall(literal + b"\r\n")
                    break
                if response.kind == "tagged":
                    return response, untagged
                untagged.append(response)
        while True:
            response = self._next()
            if response.kind == "tagged" and response.tag == tag.decode():
                return response, untagged
            if response.kind == "untagged":
                untagged.append(response)

    def ok(self, line, literal=None):
        """
        L{command}, raising L{IMAPError} unless it ends with OK.
        """
        tagged, untagged = self.command(line, literal)
        if tagged.name != "OK":
            raise IMAPError("%s -> %s" % (line[:60].decode("latin-1"), tagged.raw[:120].decode("latin-1")))
        return tagged, untagged

    def idle(self, seconds):
        """
        IDLE for C{seconds}, then DONE.

        @return: the untagged responses received meanwhile.
        """
        self.counter += 1
        tag = b"c%d" % (self.counter,)
        self.checker.sent(tag, b"IDLE")
        self._send(tag + b" IDLE\r\n")
        untagged = []
        response = self._next()
        while response.kind == "untagged":
            # Unsolicited responses (NOTIFY's) may come before the "+".
            untagged.append(response)
            response = self._next()
        if response.kind != "continuation":
            raise IMAPError("IDLE -> %r" % (response.raw[:100],))
        deadline = time.monotonic() + seconds
        timeout = self.sock.gettimeout()
        try:
            while not self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.sock.settimeout(left)
                try:
                    data = self.sock.recv(1 << 18)
                except (socket.timeout, ssl.SSLError):
                    break
                if not data:
                    self.checker.finish()
                    raise IMAPError("connection closed during IDLE")
                self._received(data)
                self._pending.extend(self.checker.receive(data))
                untagged.extend(r for r in self._pending if r.kind == "untagged")
                self._pending = [r for r in self._pending if r.kind != "untagged"]
        finally:
            self.sock.settimeout(timeout)
        self.checker.sentDone()
        self._send(b"DONE\r\n")
        while True:
            response = self._next()
            if response.kind == "tagged" and response.tag == tag.decode():
                if response.name != "OK":
                    raise IMAPError("IDLE ended %r" % (response.raw[:100],))
                return untagged
            untagged.append(response)

    def login(self, user, password):
        self.ok(b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))

    def logout(self):
        try:
            self.command(b"LOGOUT")
        except (IMAPError, OSError):
            pass
        self.close()

    def close(self):
        self.checker.finish()
        try:
            self.sock.close()
        except OSError:
            pass


def _fetchItems(untagged):
    """
    C{{seq: {ITEM: value}}} of the FETCH responses among C{untagged}.
    """
    out = {}
    for response in untagged:
        if response.name == "FETCH" and response.data and isinstance(response.data[0], list):
            items = response.data[0]
            atts = out.setdefault(response.number, {})
            for i in range(0, len(items) - 1, 2):
                atts[str(items[i]).upper()] = items[i + 1]
    return out


class Counter:
    """
    Per-command results of a run, shared by its clients: C{ok[name]},
    C{no[name]} (answered NO), and C{seconds[name]}.  Thread-safe.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.ok = {}
        self.no = {}
        self.errors = []

    def add(self, name, ok=True):
        table = self.ok if ok else self.no
        with self._lock:
            table[name] = table.get(name, 0) + 1

    def error(self, text):
        with self._lock:
            if len(self.errors) < 50:
                self.errors.append(text)
        with self._lock:
            self.no["(errors)"] = self.no.get("(errors)", 0) + 1


def _run(client, counter, name, line, literal=None):
    """
    One command counted under C{name}: OK counts when no new violation
    came with it, NO and violations count as failures.

    @return: C{(tagged, untagged)}.
    """
    before = sum(client.checker.counts.values())
    tagged, untagged = client.command(line, literal)
    good = tagged.name == "OK" and sum(client.checker.counts.values()) == before
    counter.add(name, good)
    return tagged, untagged


def mixedCycle(client, rng, counter, mailbox="INBOX", other="Archive", extras=False, serial=None,
               oldDates=False, role=None):
    """
    One cycle of the mixed workload on C{mailbox} (which must exist, as
    must C{other}); results go to C{counter}.  With C{oldDates}, a third of
    the APPENDs give an INTERNALDATE of 2024, as migrated messages have.
    With C{role} C{"context"}, the end of the cycle runs with a search
    context kept up to date (see L{_contextStart}).
    """
    tagged, _ = _run(client, counter, "SELECT", b'SELECT "%s"' % (mailbox.encode(),))
    if tagged.name != "OK":
        return
    _run(client, counter, "LIST", b'LIST "" "*"')
    _run(client, counter, "STATUS", b'STATUS "%s" (MESSAGES UIDNEXT UNSEEN)' % (other.encode(),))
    exists = client.checker.exists or 0
    if exists:
        lo = rng.randint(1, exists)
        hi = min(exists, lo + 9)
        tagged, untagged = _run(client, counter, "FETCH meta",
                                b"FETCH %d:%d (UID FLAGS ENVELOPE BODYSTRUCTURE)" % (lo, hi))
        # A message another session expunged may be left out with OK
        # [EXPUNGEISSUED] (RFC 5530), or given NIL items (RFC 2180 4.1.3).
        if tagged.name == "OK" and tagged.code != "EXPUNGEISSUED":
            got = _fetchItems(untagged)
            missing = [n for n in range(lo, hi + 1) if not {"UID", "FLAGS", "ENVELOPE", "BODYSTRUCTURE"} <= set(got.get(n, {}))]
            if missing:
                client.problems.append(("fetch-missing", "FETCH %d:%d OK without the items of %s: %r"
                                        % (lo, hi, missing[:5], tagged.raw[:100])))
        n = rng.randint(1, exists)
        tagged, untagged = _run(client, counter, "FETCH body", b"FETCH %d (UID RFC822.SIZE BODY.PEEK[])" % (n,))
        if tagged.name == "OK" and tagged.code != "EXPUNGEISSUED":
            body = _fetchItems(untagged).get(n, {}).get("BODY[]", False)
            if body is False:
                client.problems.append(("fetch-missing", "FETCH %d BODY.PEEK[] OK without the body: %r"
                                        % (n, tagged.raw[:100])))
            elif body is not None and not bodyIntact(body):
                client.problems.append(("body", "FETCH %d BODY.PEEK[]: body does not match its digest" % (n,)))
        n = rng.randint(1, exists)
        flags = rng.sample(SYSTEM[1:], 1) + rng.sample(KEYWORDS, rng.randint(1, 2))
        sign = rng.choice([b"+", b"+", b"-"])
        # Its FETCH FLAGS are not checked against the flags stored: another
        # session's change may come between (and Dovecot leaves out
        # messages whose flags did not change: "normally", RFC 3501 6.4.6).
        _run(client, counter, "STORE", b"STORE %d %sFLAGS (%s)" % (n, sign, " ".join(flags).encode()))
    if extras:
        _extras(client, rng, counter)
    context = _contextStart(client, rng, counter) if role == "context" else None
    serial = serial if serial is not None else rng.randint(0, 10**9)
    flags = " ".join(rng.sample(SYSTEM[:2] + KEYWORDS, rng.randint(0, 3))).encode()
    if context is not None and rng.random() < 0.5:
        flags = b" ".join([flags, context[1].encode()]).strip()
    date = b' "01-Jan-2024 12:00:00 +0000"' if oldDates and rng.random() < 0.33 else b""
    # With extras, one in 15 is large enough to be streamed from disk.
    large = extras and rng.random() < 1 / 15
    _run(client, counter, "APPEND", b'APPEND "%s" (%s)%s' % (mailbox.encode(), flags, date),
         makeMessage(serial, rng, large))
    exists = client.checker.exists or 0
    if exists > 20:
        n = rng.randint(1, exists)
        _run(client, counter, "STORE deleted", b"STORE %d +FLAGS.SILENT (\\Deleted)" % (n,))
        _run(client, counter, "EXPUNGE", b"EXPUNGE")
    if context is not None:
        _contextEnd(client, rng, counter, *context)


def _contextStart(client, rng, counter):
    """
    Keep a search context up to date (RFC 5267): C{UID SEARCH RETURN
    (UPDATE)} for a keyword only this client sets, then STOREs that set
    and clear it on random messages.

    @return: C{(tag, keyword)}, or C{None} when the context was not made.
    """
    keyword = "$Ctx%d" % (id(client) % 10000,)
    tagged, _ = _run(client, counter, "SEARCH context", b"UID SEARCH RETURN (UPDATE) KEYWORD %s" % (keyword.encode(),))
    tag = tagged.tag
    if tagged.name != "OK" or client.checker.contextResult(tag) is None:
        return None
    for _ in range(rng.randint(1, 4)):
        exists = client.checker.exists or 0
        if exists:
            sign = rng.choice([b"+", b"+", b"-"])
            _run(client, counter, "STORE context", b"STORE %d %sFLAGS (%s)" % (rng.randint(1, exists), sign,
                                                                               keyword.encode()))
    return tag, keyword


def _contextEnd(client, rng, counter, tag, keyword):
    """
    The context's result, as its ADDTO and REMOVEFROM updates made it,
    must equal a fresh C{UID SEARCH} of its key, but for what changed while
    that search ran (see L{_unexplained}); then C{CANCELUPDATE}.
    """
    if rng.random() < 0.3:
        try:
            client.idle(rng.uniform(0.05, 0.3))
            counter.add("IDLE")
        except IMAPError:
            counter.add("IDLE", False)
    _run(client, counter, "NOOP", b"NOOP")
    knownBefore = client.checker.highestKnownUid()
    tagged, untagged = _run(client, counter, "SEARCH fresh", b"UID SEARCH KEYWORD %s" % (keyword.encode(),))
    kept = client.checker.contextResult(tag)
    fresh, after = _searchAnswer(untagged)
    if tagged.name == "OK" and kept is not None and fresh is not None:
        missing, extra = _unexplained(fresh, kept, after, tag, knownBefore)
        if fresh != kept and not (missing or extra):
            counter.add("SEARCH fresh, changed meanwhile")
        if missing or extra:
            # Once more after a NOOP: whether updates came late, or never.
            _run(client, counter, "NOOP", b"NOOP")
            later = client.checker.contextResult(tag)
            # What the messages in one and not the other carry now (none:
            # gone from the store, their expunge not yet announced).
            differ = sorted(missing | extra)[:10]
            _tagged, fetched = client.command(b"UID FETCH %s (UID FLAGS)" % (",".join(map(str, differ)).encode(),))
            carry = {}
            for atts in _fetchItems(fetched).values():
                if "UID" in atts and isinstance(atts.get("FLAGS"), list):
                    carry[int(atts["UID"])] = keyword.lower() in (str(f).lower() for f in atts["FLAGS"])
            client.problems.append(("context-result", "context %s of KEYWORD %s holds %s; a fresh UID SEARCH found %s"
                                    " (no expunge or arrival announced after its answer explains them);"
                                    " after one more NOOP the context %s; UID FETCH FLAGS of those: %s"
                                    % (tag, keyword, _short(extra, "extra"), _short(missing, "missing"),
                                       "holds %s" % (sorted(later)[:10],) if later is not None else "is gone",
                                       ", ".join("%d %s" % (u, {True: "has it", False: "has it not"}.get(
                                           carry.get(u), "not returned")) for u in differ))
                                    + ("\nthe session's last lines:\n" + client.lastLines()
                                       if client.transcript else "")))
    _run(client, counter, "CANCELUPDATE", b'CANCELUPDATE "%s"' % (tag.encode(),))


def _unexplained(fresh, kept, after, tag, knownBefore):
    """
    What a context's result C{kept} and a fresh search's answer C{fresh}
    differ in that the responses C{after} the answer (to the end of the
    search command) do not explain.

    The answer is the mailbox when the search ran; the context's updates
    for what changed meanwhile are unsolicited responses (RFC 5267 4.3)
    that come after it, with the EXPUNGEs (or VANISHED) and EXISTS at the
    end of the command.  So a UID the answer has and the result lacks is
    explained when it was expunged after the answer (it leaves the
    mailbox, and so the result: through a REMOVEFROM before its EXPUNGE if
    the result had it, which the checker verifies when it knows the UID);
    a UID the result has and the answer lacks, when it came in after the
    answer: an ADDTO after an EXISTS, of a UID above every one the session
    knew before the search (C{knownBefore}).

    @return: C{(missing, extra)}: C{set}s of the UIDs unexplained.
    """
    gone, added, arrived = [], set(), False
    for response in after:
        if response.name in ("EXPUNGE", "VANISHED"):
            gone.extend(response.expunged)
        elif response.name == "EXISTS":
            arrived = True
        elif response.name == "ESEARCH" and arrived:
            added |= _contextAdded(response, tag)
    missing = {u for u in fresh - kept if not any(lo <= u <= hi for lo, hi in gone)}
    extra = {u for u in kept - fresh if not (u in added and u > knownBefore)}
    return missing, extra


def _contextAdded(response, tag):
    """
    The UIDs an C{ESEARCH (TAG "tag") UID ... ADDTO (...)} update puts in
    (none for another response).
    """
    correlator, items = _esearchItems(response)
    added = set()
    if correlator == tag:
        for name, value in items:
            if name == "ADDTO":
                added |= {n for _position, ranges in _pairs(value) for lo, hi in ranges
                          for n in range(lo, min(hi, lo + 100000) + 1)}
    return added


def _esearchItems(response):
    """
    The tag an C{ESEARCH} response correlates to (C{None}: none) and its
    C{(NAME, value)} items, without C{UID}; C{(None, [])} for another
    response.
    """
    if response.name != "ESEARCH":
        return None, []
    data = list(response.data)
    tag = None
    if data and isinstance(data[0], list):
        correlator = data.pop(0)
        if len(correlator) == 2 and str(correlator[0]).upper() == "TAG" and isinstance(correlator[1], bytes):
            tag = correlator[1].decode("ascii", "replace")
    if data and str(data[0]).upper() == "UID":
        data.pop(0)
    return tag, [(str(data[i]).upper(), data[i + 1]) for i in range(0, len(data) - 1, 2)]


def _short(uids, label):
    return "%s %s" % (label, sorted(uids)[:10]) if uids else "no %s" % (label,)


def _searchAnswer(untagged):
    """
    The UIDs (or numbers) of a SEARCH answer among C{untagged}: its
    C{SEARCH} response, or the C{ALL} of its ESEARCH (IMAP4rev2).

    @return: C{(answer, responses after it)}; C{(None, [])} when there is
        no answer.
    """
    for i, response in enumerate(untagged):
        if response.name == "SEARCH":
            return {int(t) for t in response.data if not isinstance(t, list)}, untagged[i + 1:]
        _tag, items = _esearchItems(response)
        if response.name == "ESEARCH" and not {name for name, _ in items} & {"ADDTO", "REMOVEFROM"}:
            # (Not a context's update.)
            for name, value in items:
                if name == "ALL":
                    return {n for part in str(value).split(",") for n in _range(part)}, untagged[i + 1:]
            return set(), untagged[i + 1:]
    return None, []


def _range(part):
    lo, _, hi = part.partition(":")
    lo, hi = int(lo), int(hi or lo)
    return range(min(lo, hi), max(lo, hi) + 1)


def _extras(client, rng, counter):
    """
    The stress test's additions: CONDSTORE (MODSEQ, CHANGEDSINCE,
    UNCHANGEDSINCE, SELECT ... (CONDSTORE)), SEARCH, ESEARCH, UID STORE,
    UID EXPUNGE, COPY and MOVE to the other mailbox and back, EXAMINE, NOOP
    and IDLE.
    """
    exists = client.checker.exists or 0
    if exists:
        lo = rng.randint(1, exists)
        _run(client, counter, "FETCH modseq", b"FETCH %d:* (UID FLAGS MODSEQ)" % (lo,))
        _run(client, counter, "UID STORE",
             b"UID STORE %d:* +FLAGS (%s)" % (rng.randint(1, 200), rng.choice(KEYWORDS).encode()))
    _run(client, counter, "SEARCH", b"SEARCH KEYWORD %s" % (rng.choice(KEYWORDS).encode(),))
    _run(client, counter, "UID SEARCH", b"UID SEARCH UNSEEN")
    _run(client, counter, "ESEARCH", b"SEARCH RETURN (MIN MAX COUNT) UNSEEN")
    _run(client, counter, "SORT", b"SORT (REVERSE DATE) UTF-8 ALL")
    _run(client, counter, "THREAD", b"THREAD REFERENCES UTF-8 ALL")
    _run(client, counter, "NOOP", b"NOOP")
    facts = client.checker.facts()
    exists = client.checker.exists or 0
    if exists and facts.highestModseq:
        _run(client, counter, "FETCH changedsince",
             b"FETCH 1:* (UID FLAGS) (CHANGEDSINCE %d)" % (max(1, facts.highestModseq - 5),))
    if exists:
        n = rng.randint(1, exists)
        uid = client.checker.uidOf(n)
        modseq = facts.modseqs.get(uid, 1) if uid is not None else 1
        _run(client, counter, "STORE unchangedsince",
             b"STORE %d (UNCHANGEDSINCE %d) +FLAGS (%s)" % (n, modseq, rng.choice(KEYWORDS).encode()))
        if uid is not None and exists > 20:
            _run(client, counter, "UID STORE deleted", b"UID STORE %d +FLAGS.SILENT (\\Deleted)" % (uid,))
            _run(client, counter, "UID EXPUNGE", b"UID EXPUNGE %d" % (uid,))
    exists = client.checker.exists or 0
    if exists and rng.random() < 0.1:
        _run(client, counter, "REPLACE", b"REPLACE %d %s" % (rng.randint(1, exists), (client.checker.selected
                                                                                     or "INBOX").encode()),
             makeMessage(rng.randint(0, 10**9), rng))
    r = rng.random()
    exists = client.checker.exists or 0
    mailbox = client.checker.selected
    if exists and r < 0.3:
        _run(client, counter, "COPY", b"COPY %d Archive" % (rng.randint(1, exists),))
    elif exists and r < 0.45:
        _run(client, counter, "MOVE", b"MOVE %d Archive" % (rng.randint(1, exists),))
    elif r < 0.6 and mailbox:
        # Messages go back from Archive, so that it stays small.
        tagged, _ = _run(client, counter, "SELECT", b"SELECT Archive (CONDSTORE)")
        if tagged.name == "OK":
            if (client.checker.exists or 0) > 5:
                _run(client, counter, "UID MOVE", b'UID MOVE 1:%d "%s"' % (rng.randint(1, 200), mailbox.encode()))
            if client.checker.exists:
                # "1:*" in an empty mailbox is BAD for Dovecot.
                _run(client, counter, "FETCH modseq", b"FETCH 1:* (UID FLAGS MODSEQ)")
        _run(client, counter, "SELECT", b'SELECT "%s" (CONDSTORE)' % (mailbox.encode(),))
    elif r < 0.7:
        _run(client, counter, "EXAMINE", b"EXAMINE Archive")
        if client.checker.exists:
            _run(client, counter, "FETCH meta", b"FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER])")
        _run(client, counter, "SELECT", b'SELECT "%s"' % (mailbox.encode(),))
    if rng.random() < 0.2:
        try:
            client.idle(rng.uniform(0.05, 0.4))
            counter.add("IDLE")
        except IMAPError:
            counter.add("IDLE", False)


#: What a session with a role sends after LOGIN (see L{sessionLoop}).
ROLE_SETUP = {
    "rev2": [b"ENABLE IMAP4rev2"],
    # Not the selected mailbox's events: pushed between commands, an
    # EXPUNGE or an old mailbox's FETCH crosses the next command on the
    # wire (RFC 5465 5.1), and no client can check them.
    "notify": [b"NOTIFY SET (personal (MessageNew MessageExpunge))"],
    "context": [],
}


def sessionLoop(connect, user, password, rng, counter, deadline, loginPerCycle=False, qresync=False,
                role=None, **cycleArgs):
    """
    Cycles until C{deadline} (C{time.monotonic()}): one session for all, or a
    LOGIN/LOGOUT per cycle.  C{connect()} returns a new L{CheckedClient}.
    With C{qresync}, half the sessions ENABLE QRESYNC after LOGIN (so they
    get VANISHED instead of EXPUNGE).  A C{role} (a key of L{ROLE_SETUP})
    makes the session also ENABLE IMAP4rev2 (C{"rev2"}: ESEARCH answers,
    no RECENT), set NOTIFY (C{"notify"}: STATUS of other mailboxes, and
    IDLE more often) or keep a search context in every cycle
    (C{"context"}, see L{mixedCycle}).

    @return: C{list} of the clients used (their checkers hold the findings).
    """
    clients = []
    client = None
    while time.monotonic() < deadline:
        try:
            if client is None:
                client = connect()
                clients.append(client)
                client.login(user, password)
                counter.add("LOGIN")
                if qresync and rng.random() < 0.5:
                    client.ok(b"ENABLE QRESYNC")
                for line in ROLE_SETUP.get(role, ()):
                    client.ok(line)
                    counter.add(line.split()[0].decode() + " " + role)
            mixedCycle(client, rng, counter, role=role, **cycleArgs)
            if role == "notify":
                try:
                    client.idle(rng.uniform(0.05, 0.5))
                    counter.add("IDLE")
                except IMAPError:
                    counter.add("IDLE", False)
            if loginPerCycle:
                client.ok(b"LOGOUT")
                counter.add("LOGOUT")
                client.close()
                client = None
        except (IMAPError, OSError) as e:
            counter.error("%s: %s" % (type(e).__name__, e))
            if client is not None:
                client.close()
            client = None
    if client is not None:
        client.logout()
    return clients


def runLoad(connect, user, password, clients, seconds, seed=0, loginPerCycle=False, roles=(), **cycleArgs):
    """
    C{clients} threads run L{sessionLoop} for C{seconds}, the first ones
    with the C{roles} given (in order), the others with none.

    @return: C{(counter, checkers, problems, elapsed seconds)}.
    """
    counter = Counter()
    deadline = time.monotonic() + seconds
    used = []

    def worker(i):
        rng = random.Random(seed * 1000 + i)
        role = roles[i] if i < len(roles) else None
        used.extend(sessionLoop(connect, user, password, rng, counter, deadline, loginPerCycle, role=role,
                                **cycleArgs))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    problems = [p for c in used for p in c.problems]
    return counter, [c.checker for c in used], problems, elapsed


def connector(port, registry=None, tlsContext=None, timeout=60):
    """
    A C{connect()} for L{sessionLoop}: new L{CheckedClient}s whose
    checkers share C{registry}.
    """
    registry = registry if registry is not None else Registry()
    names = iter(range(1, 1 << 30))
    lock = threading.Lock()

    def connect():
        with lock:
            name = "session %d" % (next(names),)
        return CheckedClient(port, SessionChecker(registry, name), tlsContext, timeout=timeout)
    return connect


def main(argv, out=sys.stdout, qresync=True):
    """
    C{python -m tests.imapload PORT USER PASSWORD [CLIENTS] [SECONDS]}:
    C{CLIENTS} (10) sessions run the stress test's mix (L{mixedCycle} with
    extras, QRESYNC in half of them unless C{qresync} is false) on INBOX
    and Archive (created if missing) for C{SECONDS} (300) against
    127.0.0.1:PORT without TLS.

    @return: the exit status: 0 when no violation, wrong answer or error
        was found.
    """
    port, user, password = int(argv[0]), argv[1], argv[2]
    clients = int(argv[3]) if len(argv) > 3 else 10
    seconds = float(argv[4]) if len(argv) > 4 else 300.0
    registry = Registry()
    connect = connector(port, registry)
    setup = connect()
    setup.login(user, password)
    setup.command(b"CREATE Archive")
    setup.logout()
    counter, checkers, problems, elapsed = runLoad(connect, user, password, clients, seconds,
                                                   extras=True, qresync=qresync)
    counts, examples = {}, {}
    for checker in checkers:
        for kind, n in checker.counts.items():
            counts[kind] = counts.get(kind, 0) + n
        for violation in checker.violations:
            examples.setdefault(violation.kind, violation)
    commands = sum(counter.ok.values()) + sum(counter.no.values())
    out.write("%d commands by %d clients in %.1f s; %d violations, %d wrong answers, %d errors\n"
              % (commands, clients, elapsed, sum(counts.values()), len(problems), len(counter.errors)))
    for kind in sorted(counts):
        example = examples[kind]
        out.write("  %s: %d, e.g. %s | %r\n" % (kind, counts[kind], example.text, example.context[:120]))
    for kind, text in problems[:20]:
        out.write("  %s: %s\n" % (kind, text))
    for text in counter.errors[:20]:
        out.write("  error: %s\n" % (text,))
    return 1 if counts or problems or counter.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
