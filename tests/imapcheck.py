# -*- test-case-name: tests.test_imapcheck -*-
"""
A client-side IMAP protocol checker: a per-session state tracker, over the
response parser of L{tests.imapresponse}, that flags what a server must
never send (RFC 3501, RFC 7162, RFC 4315).  It knows no gateway code, so
it checks any server (the stress test runs it against gateway,
C{bench/imapmix.py} against gateway and Dovecot alike).

A client tells the L{SessionChecker} each command it sends (L{SessionChecker.sent})
and gives it every byte it receives (L{SessionChecker.receive}); the
checker returns the parsed L{Response}s and collects L{Violation}s:

  - framing: every response is C{* ...}, C{+ ...} or a tagged line;
    literals are exactly as long as announced; lists are balanced;
  - tags: one tagged response per command sent, none for unknown tags,
    no C{BAD} for a command the client marked valid (the default), no
    C{NO [SERVERBUG]}, no untagged C{BAD};
  - sequence numbers: C{EXISTS} never decreases, C{EXPUNGE} and C{FETCH}
    name an existing message, C{RECENT} is at most C{EXISTS}, C{SEARCH},
    C{SORT} and C{THREAD} answers are in range; no C{EXPUNGE} while a
    C{FETCH}, C{STORE}, C{SEARCH}, C{SORT} or C{THREAD} (not their C{UID}
    forms) is in progress, nor when no command is (RFC 3501 7.4.1);
  - QRESYNC: C{VANISHED} only once QRESYNC is enabled, under the same
    rules as C{EXPUNGE}, taking its UIDs out of the session;
    C{VANISHED (EARLIER)} only during a C{UID FETCH}, C{SELECT} or
    C{EXAMINE} (RFC 7162 3.2.10);
  - SELECT/EXAMINE: FLAGS, EXISTS, RECENT and UIDVALIDITY before the OK;
    EXAMINE is C{[READ-ONLY]}; PERMANENTFLAGS within FLAGS (and C{\\*});
  - flags: every flag a FETCH shows was announced by the last untagged
    C{FLAGS} (C{\\Recent} aside);
  - UIDs: a message keeps its UID; UIDs ascend with sequence numbers; a
    message present at SELECT has a UID below its UIDNEXT, a new one at
    least that UIDNEXT; an expunged UID never comes back; APPENDUID and
    COPYUID UIDs are above every UID any session had seen when the command
    was sent, and never given twice (with a shared L{Registry});
    UIDVALIDITY does not change (but for a DELETE or RENAME this session
    sends); UIDNEXT and HIGHESTMODSEQ (SELECT and
    STATUS) are above what any session had seen before the command;
  - MODSEQ: a message's never decreases, and changes when its flags do;
  - C{\\Recent}: shown for a message in one read-write session only;
  - CONDSTORE: once a command enabled it, every FETCH response that no
    FETCH command asked for carries MODSEQ (RFC 7162 3.1.4), and UID too
    once QRESYNC is enabled (3.2.4);
  - content: a message's RFC822.SIZE never changes, and its C{BODY[]} is
    that long and the same bytes in every session (with a L{Registry}).
"""

import hashlib
import re

from tests.imapregistry import Registry
from tests.imapresponse import Atom, ParseError, Response, ResponseReader, parseResponse, parseTokens

__all__ = ["Atom", "Response", "Violation", "ResponseReader", "SessionChecker", "Registry",
           "parseResponse", "parseTokens", "ParseError"]

INFINITY = float("inf")

#: Commands during which no EXPUNGE (nor VANISHED) may be sent (RFC 3501
#: 7.4.1; SORT and THREAD answer sequence numbers too, RFC 5256).
NO_EXPUNGE_DURING = frozenset(["FETCH", "STORE", "SEARCH", "SORT", "THREAD"])

#: A command that enables CONDSTORE (RFC 7162 3.1): SELECT/EXAMINE
#: (CONDSTORE), ENABLE CONDSTORE, the MODSEQ item or search key,
#: CHANGEDSINCE, UNCHANGEDSINCE, STATUS HIGHESTMODSEQ.
_CONDSTORE_ENABLING = re.compile(rb"CONDSTORE|MODSEQ|CHANGEDSINCE")

_LITERAL_AT_END = re.compile(rb"~?\{(\d{1,12})\+?\}$")


class Violation:
    """
    One protocol violation.

    @ivar kind: a short category (C{"flags-announced"}, C{"sequence"}...).
    @ivar text: what is wrong.
    @ivar context: the response (start) it was found in.
    """

    def __init__(self, kind, text, context=b""):
        self.kind = kind
        self.text = text
        self.context = context[:300]

    def __repr__(self):
        return "<Violation %s: %s | %r>" % (self.kind, self.text, self.context)



# -- the session checker -----------------------------------------------------------------


class _Command:
    def __init__(self, tag, name, args, expectBad, snapshot):
        self.tag = tag
        self.name = name
        self.args = args
        self.expectBad = expectBad
        self.snapshot = snapshot
        self.seen = set()
        self.closing = False
        self.named = None


class _Facts:
    """
    What one session knows of one mailbox, across its selections.
    """

    def __init__(self):
        self.uidValidity = None
        self.uidNext = 0
        self.highestModseq = 0
        self.maxModseq = 0
        self.modseqs = {}
        self.flags = {}
        self.expunged = set()


def _mailboxName(token):
    if isinstance(token, bytes):
        name = token.decode("utf-8", "replace")
    else:
        name = str(token)
    return "INBOX" if name.upper() == "INBOX" else name


def _number(token):
    if isinstance(token, Atom) and token.isdigit():
        return int(token)
    raise ParseError("expected a number, not %r" % (token,))


def _sequenceNumbers(text, star=None):
    """
    The ranges C{[(lo, hi)]} of a sequence set (C{*} is C{star}).

    @raise ValueError: when malformed, or C{*} is there and C{star} is not given.
    """
    out = []
    for part in str(text).split(","):
        lo, _, hi = part.partition(":")
        lo = star if lo == "*" else int(lo)
        hi = (star if hi == "*" else int(hi)) if hi else lo
        if lo is None or hi is None:
            raise ValueError("* in a set without a largest value")
        if lo > hi:
            lo, hi = hi, lo
        out.append((lo, hi))
    return out


class SessionChecker:
    """
    The state of one IMAP session as the client sees it, and the
    violations found in what the server sent.

    @ivar violations: C{list} of L{Violation} (the first L{KEEP} of each kind).
    @ivar counts: C{{kind: number of violations}}.
    @ivar responses: C{list} of the L{Response}s of the current command
        (cleared by L{sent}).
    """

    #: Violations kept per kind (all are counted in L{counts}).
    KEEP = 20

    def __init__(self, registry=None, name=""):
        self.registry = registry or Registry()
        self.name = name
        self.violations = []
        self._reader = ResponseReader()
        self._outstanding = {}
        self._facts = {}
        self.selected = None
        self.readOnly = False
        self._selecting = None
        self._slots = None
        self._announced = None
        self._permanent = None
        self._selUidNext = 0
        self.condstore = False
        self.qresync = False
        self.closed = False
        self.counts = {}
        self.responses = []

    # -- what the client does ---------------------------------------------------------------

    def sent(self, tag, line, expectBad=False):
        """
        The client sent command C{line} (C{bytes}, without tag and CRLF;
        for a command with literals, its first line) under C{tag}.
        """
        self.responses = []
        tag = tag.decode("ascii") if isinstance(tag, bytes) else tag
        try:
            tokens, _ = parseTokens(_LITERAL_AT_END.sub(b'""', line))
        except ParseError:
            tokens = []
        words = [t for t in tokens]
        name = str(words[0]).upper() if words and isinstance(words[0], Atom) else ""
        args = words[1:]
        if name == "UID" and args:
            name = "UID " + str(args[0]).upper()
            args = args[1:]
        if tag in self._outstanding:
            self._violate("tag", "client reused tag %s" % (tag,), line)
        if _CONDSTORE_ENABLING.search(line.upper()):
            self.condstore = True
        if b"QRESYNC" in line.upper():
            self.qresync = True
        mailbox = self.selected
        if name in ("SELECT", "EXAMINE", "STATUS", "APPEND") and args:
            mailbox = _mailboxName(args[0])
        elif name in ("COPY", "UID COPY", "MOVE", "UID MOVE") and args:
            mailbox = _mailboxName(args[-1])
        snapshot = self.registry.snapshot(mailbox) if mailbox else (0, 0)
        command = _Command(tag, name, args, expectBad, snapshot)
        self._outstanding[tag] = command
        if name in ("SELECT", "EXAMINE"):
            self._deselect()
            self._selecting = command
            self.selected = mailbox
            self.readOnly = name == "EXAMINE"
            self._slots = None
        elif name in ("CLOSE", "UNSELECT"):
            command.closing = True
        elif name in ("COPY", "MOVE", "UID COPY", "UID MOVE") and args:
            command.named = self._named(name, args[0])
        elif name in ("DELETE", "RENAME"):
            # A new mailbox of the name starts again (checked in this
            # session only: others keep what they saw).
            for token in args[:2]:
                self._facts.pop(_mailboxName(token), None)
                self.registry.forget(_mailboxName(token))
        return command

    def sentDone(self):
        """
        The client ended IDLE with C{DONE}.
        """

    def receive(self, data):
        """
        Bytes from the server.

        @return: C{list} of the L{Response}s completed.
        """
        out = []
        for raw in self._reader.feed(data):
            try:
                response = parseResponse(raw)
            except ParseError as e:
                self._violate("framing", "malformed response: %s" % (e,), raw)
                continue
            out.append(response)
            self.responses.append(response)
            try:
                self._handle(response)
            except ParseError as e:
                self._violate("malformed", "%s %s: %s" % (response.kind, response.name, e), raw)
        return out

    def finish(self, connectionLost=True):
        """
        The session ended: every command must have had its tagged response.
        """
        if self.closed:
            return
        self.closed = True
        for tag, command in self._outstanding.items():
            self._violate("tag", "no tagged response for %s %s" % (tag, command.name))
        if self._reader.pending():
            self._violate("framing", "connection ended inside a response")

    @property
    def exists(self):
        return None if self._slots is None else len(self._slots)

    def facts(self, mailbox=None):
        mailbox = mailbox or self.selected
        facts = self._facts.get(mailbox)
        if facts is None:
            facts = self._facts[mailbox] = _Facts()
        return facts

    def uidOf(self, seq):
        """
        The UID of message C{seq} if the session learned it.
        """
        if self._slots is None or not 1 <= seq <= len(self._slots):
            return None
        return self._slots[seq - 1][0]

    # -- internals --------------------------------------------------------------------------

    def _violate(self, kind, text, context=b""):
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.counts[kind] > self.KEEP:
            return
        label = "%s: %s" % (self.name, text) if self.name else text
        self.violations.append(Violation(kind, label, context))

    def _named(self, name, setToken):
        """
        The ranges of UIDs a COPY or MOVE names, or C{None} when the session
        does not know them all.
        """
        try:
            if name.startswith("UID "):
                return _sequenceNumbers(setToken, INFINITY)
            uids = []
            for lo, hi in _sequenceNumbers(setToken, self.exists):
                for seq in range(lo, hi + 1):
                    uid = self.uidOf(seq)
                    if uid is None:
                        return None
                    uids.append((uid, uid))
            return uids
        except (ValueError, TypeError):
            return None

    def _deselect(self):
        self.selected = None
        self._slots = None
        self._announced = None
        self._permanent = None
        self._selecting = None
        self._selUidNext = 0

    def _inProgress(self):
        return list(self._outstanding.values())

    def _handle(self, response):
        if response.kind == "continuation":
            if not self._outstanding:
                self._violate("continuation", "continuation request with no command waiting", response.raw)
            return
        if response.kind == "tagged":
            self._tagged(response)
            return
        if response.code is not None:
            self._code(response)
        handler = getattr(self, "_untagged_" + response.name.replace(".", "_"), None)
        if handler is not None:
            handler(response)

    def _tagged(self, response):
        command = self._outstanding.pop(response.tag, None)
        if command is None:
            self._violate("tag", "tagged response for a tag not in progress", response.raw)
            return
        if response.name == "BAD" and not command.expectBad:
            self._violate("bad", "BAD for a valid %s" % (command.name,), response.raw)
        if response.code == "SERVERBUG":
            self._violate("serverbug", "%s answered [SERVERBUG]" % (command.name,), response.raw)
        if command is self._selecting:
            self._selecting = None
            if response.name != "OK":
                self._deselect()
                return
            missing = [k for k in ("FLAGS", "EXISTS", "RECENT", "UIDVALIDITY") if k not in command.seen]
            if missing:
                self._violate("select", "%s OK without %s" % (command.name, ", ".join(missing)), response.raw)
            if command.name == "EXAMINE" and response.code == "READ-WRITE":
                self._violate("select", "EXAMINE answered [READ-WRITE]", response.raw)
            if response.code == "READ-ONLY":
                self.readOnly = True
            if self._slots is None:
                self._slots = []
        elif command.closing and response.name == "OK":
            self._deselect()
        elif command.name in ("APPEND", "COPY", "UID COPY", "MOVE", "UID MOVE") and response.name == "OK":
            if response.code in ("APPENDUID", "COPYUID"):
                self._assigned(command, response.code, response.codeArgs, response.raw)

    def _assigned(self, command, code, args, raw):
        try:
            validity = _number(args[0])
            uids = []
            for lo, hi in _sequenceNumbers(args[-1]):
                uids.extend(range(lo, hi + 1))
        except (ParseError, ValueError, IndexError):
            self._violate("malformed", "bad %s" % (code,), raw)
            return
        if command.name == "APPEND":
            target = _mailboxName(command.args[0])
            before = command.snapshot[0]
        else:
            target = _mailboxName(command.args[-1])
            before = command.snapshot[0]
        self._validity(target, validity, raw)
        if code == "COPYUID":
            try:
                sources = [u for lo, hi in _sequenceNumbers(args[1]) for u in range(lo, hi + 1)]
            except (ValueError, IndexError):
                sources = []
            if len(sources) != len(uids):
                self._violate("uid", "COPYUID names %d source and %d new UIDs" % (len(sources), len(uids)), raw)
            if command.named is not None:
                outside = [u for u in sources if not any(lo <= u <= hi for lo, hi in command.named)]
                if outside:
                    self._violate("uid", "COPYUID source UIDs %s were not named by the %s"
                                  % (outside[:5], command.name), raw)
        for uid in uids:
            if before is not None and uid <= before:
                self._violate("uid", "%s UID %d not above UID %d already seen in %s"
                              % (code, uid, before, target), raw)
            if not self.registry.assign(target, validity, uid):
                self._violate("uid", "%s UID %d of %s given twice" % (code, uid, target), raw)

    def _validity(self, mailbox, validity, raw):
        facts = self.facts(mailbox)
        if facts.uidValidity is not None and facts.uidValidity != validity:
            self._violate("uidvalidity", "UIDVALIDITY of %s changed from %d to %d"
                          % (mailbox, facts.uidValidity, validity), raw)
        facts.uidValidity = validity
        if not self.registry.same(self.registry.uidValidity, mailbox, validity):
            self._violate("uidvalidity", "UIDVALIDITY of %s differs between sessions" % (mailbox,), raw)

    def _code(self, response):
        code, args = response.code, response.codeArgs
        selecting = self._selecting
        if code == "UIDVALIDITY" and self.selected:
            self._validity(self.selected, _number(args[0]), response.raw)
            if selecting is not None:
                selecting.seen.add("UIDVALIDITY")
        elif code == "UIDNEXT" and self.selected:
            uidNext = _number(args[0])
            facts = self.facts()
            if selecting is not None:
                before = selecting.snapshot[0]
                if uidNext <= before:
                    self._violate("uidnext", "UIDNEXT %d not above UID %d already seen" % (uidNext, before),
                                  response.raw)
                for slot in self._slots or ():
                    if slot[0] is not None and slot[0] >= uidNext:
                        self._violate("uidnext", "UIDNEXT %d not above UID %d" % (uidNext, slot[0]),
                                      response.raw)
                    slot[2] = min(slot[2], uidNext - 1)
                self._selUidNext = uidNext
            if uidNext < facts.uidNext:
                self._violate("uidnext", "UIDNEXT went down from %d to %d" % (facts.uidNext, uidNext),
                              response.raw)
            facts.uidNext = max(facts.uidNext, uidNext)
        elif code == "HIGHESTMODSEQ" and self.selected:
            self._highestModseq(self.selected, _number(args[0]), selecting, response.raw)
        elif code == "COPYUID" and response.kind == "untagged":
            command = self._current("MOVE", "UID MOVE")
            if command is not None:
                self._assigned(command, code, args, response.raw)
        elif code == "PERMANENTFLAGS" and self.selected:
            if not args or not isinstance(args[0], list):
                raise ParseError("PERMANENTFLAGS without a list")
            self._permanent = {str(f).lower() for f in args[0]}
            if self._announced is not None:
                extra = self._permanent - self._announced - {"\\*"}
                if extra:
                    self._violate("permanentflags", "PERMANENTFLAGS %s not in FLAGS" % (sorted(extra),),
                                  response.raw)

    def _highestModseq(self, mailbox, value, command, raw):
        facts = self.facts(mailbox)
        if value < facts.highestModseq:
            self._violate("modseq", "HIGHESTMODSEQ of %s went down from %d to %d"
                          % (mailbox, facts.highestModseq, value), raw)
        if command is not None:
            before = command.snapshot[1]
            if value < before:
                self._violate("modseq", "HIGHESTMODSEQ %d of %s below MODSEQ %d already seen"
                              % (value, mailbox, before), raw)
        facts.highestModseq = max(facts.highestModseq, value)

    def _untagged_BAD(self, response):
        self._violate("bad", "untagged BAD", response.raw)

    def _untagged_FLAGS(self, response):
        if not response.data or not isinstance(response.data[0], list):
            raise ParseError("FLAGS without a list")
        if not self.selected:
            self._violate("state", "FLAGS without a selected mailbox", response.raw)
            return
        self._announced = {str(f).lower() for f in response.data[0]}
        if self._selecting is not None:
            self._selecting.seen.add("FLAGS")

    def _untagged_EXISTS(self, response):
        if not self.selected:
            self._violate("state", "EXISTS without a selected mailbox", response.raw)
            return
        n = response.number
        if self._selecting is not None:
            self._selecting.seen.add("EXISTS")
        if self._slots is None:
            high = self._selUidNext - 1 if self._selUidNext else INFINITY
            self._slots = [[None, 1, high] for _ in range(n)]
            return
        if n < len(self._slots):
            self._violate("sequence", "EXISTS %d below the %d messages known" % (n, len(self._slots)),
                          response.raw)
            return
        low = max(self._selUidNext, 1)
        self._slots.extend([None, low, INFINITY] for _ in range(n - len(self._slots)))

    def _untagged_RECENT(self, response):
        if not self.selected:
            self._violate("state", "RECENT without a selected mailbox", response.raw)
            return
        if self._selecting is not None:
            self._selecting.seen.add("RECENT")
        if self._slots is not None and response.number > len(self._slots):
            self._violate("sequence", "RECENT %d above EXISTS %d" % (response.number, len(self._slots)),
                          response.raw)

    def _untagged_EXPUNGE(self, response):
        if not self.selected or self._slots is None:
            self._violate("state", "EXPUNGE without a selected mailbox", response.raw)
            return
        running = self._inProgress()
        if not running:
            self._violate("expunge-forbidden", "EXPUNGE with no command in progress", response.raw)
        for command in running:
            if command.name in NO_EXPUNGE_DURING:
                self._violate("expunge-forbidden", "EXPUNGE during %s" % (command.name,), response.raw)
        n = response.number
        if not 1 <= n <= len(self._slots):
            self._violate("sequence", "EXPUNGE %d of %d messages" % (n, len(self._slots)), response.raw)
            return
        slot = self._slots.pop(n - 1)
        if slot[0] is not None:
            self.facts().expunged.add(slot[0])

    def _untagged_VANISHED(self, response):
        data = list(response.data)
        earlier = bool(data) and isinstance(data[0], list) and [str(t).upper() for t in data[0]] == ["EARLIER"]
        if earlier:
            data.pop(0)
        if len(data) != 1 or isinstance(data[0], list):
            raise ParseError("VANISHED without one UID set")
        try:
            ranges = _sequenceNumbers(data[0])
        except ValueError:
            raise ParseError("VANISHED UID set %r" % (data[0],)) from None
        if not self.qresync:
            self._violate("state", "VANISHED before QRESYNC was enabled", response.raw)
        if not self.selected or (self._slots is None and not earlier):
            self._violate("state", "VANISHED without a selected mailbox", response.raw)
            return
        if earlier:
            # Messages gone before: nothing the session counts changes.
            if self._current("UID FETCH", "SELECT", "EXAMINE") is None:
                self._violate("state", "VANISHED (EARLIER) with no UID FETCH or SELECT in progress", response.raw)
            return
        running = self._inProgress()
        if not running:
            self._violate("expunge-forbidden", "VANISHED with no command in progress", response.raw)
        for command in running:
            if command.name in NO_EXPUNGE_DURING:
                self._violate("expunge-forbidden", "VANISHED during %s" % (command.name,), response.raw)
        for lo, hi in ranges:
            for uid in range(lo, min(hi, lo + 100000) + 1):
                self._vanish(uid)

    def _vanish(self, uid):
        """
        Take message C{uid} out of the session.  A UID never learnt is one
        of the unknown messages between the known UIDs around it if one may
        have it (VANISHED replaces EXPUNGE: it names messages the session
        has), any of them; else it names none, which is allowed.
        """
        slots = self._slots
        position = None
        for i, slot in enumerate(slots):
            known = slot[0]
            if known == uid:
                position = i
                break
            if known is not None and known > uid:
                break
            if known is None and position is None and slot[1] <= uid <= slot[2]:
                position = i
            elif known is not None:
                position = None
        if position is None:
            return
        slots.pop(position)
        self.facts().expunged.add(uid)
        self.facts().modseqs.pop(uid, None)

    def _learnUid(self, seq, uid, raw):

        slot = self._slots[seq - 1]
        if slot[0] is not None:
            if slot[0] != uid:
                self._violate("uid", "message %d was UID %d, now UID %d" % (seq, slot[0], uid), raw)
            return
        if uid in self.facts().expunged:
            self._violate("uid", "expunged UID %d came back as message %d" % (uid, seq), raw)
        if not slot[1] <= uid <= slot[2]:
            self._violate("uid", "message %d has UID %d, outside %s..%s (UIDNEXT at SELECT)"
                          % (seq, uid, slot[1], slot[2]), raw)
        for i in range(seq - 2, -1, -1):
            known = self._slots[i][0]
            if known is not None:
                if known >= uid:
                    self._violate("uid", "message %d has UID %d, not above message %d's %d"
                                  % (seq, uid, i + 1, known), raw)
                break
        for i in range(seq, len(self._slots)):
            known = self._slots[i][0]
            if known is not None:
                if known <= uid:
                    self._violate("uid", "message %d has UID %d, not below message %d's %d"
                                  % (seq, uid, i + 1, known), raw)
                break
        slot[0] = uid
        self.registry.sawUid(self.selected, uid)

    def _untagged_FETCH(self, response):
        if not self.selected or self._slots is None:
            self._violate("state", "FETCH without a selected mailbox", response.raw)
            return
        seq = response.number
        if not 1 <= seq <= len(self._slots):
            self._violate("sequence", "FETCH for message %d of %d" % (seq, len(self._slots)), response.raw)
            return
        if len(response.data) != 1 or not isinstance(response.data[0], list) or len(response.data[0]) % 2:
            raise ParseError("FETCH data is not a list of pairs")
        items = response.data[0]
        atts = {}
        for i in range(0, len(items), 2):
            if not isinstance(items[i], Atom):
                raise ParseError("FETCH item name %r" % (items[i],))
            atts[items[i].upper()] = items[i + 1]
        raw = response.raw
        if self.condstore and self._current("FETCH", "UID FETCH") is None:
            wanted = {"UID", "MODSEQ"} if self.qresync else {"MODSEQ"}
            if not wanted <= set(atts):
                self._violate("condstore", "FETCH without %s after CONDSTORE was enabled"
                              % (" and ".join(sorted(wanted - set(atts))),), raw)
        if "UID" in atts:
            self._learnUid(seq, _number(atts["UID"]), raw)
        uid = self._slots[seq - 1][0]
        facts = self.facts()
        flags = None
        if "FLAGS" in atts:
            if not isinstance(atts["FLAGS"], list):
                raise ParseError("FLAGS is not a list")
            flags = frozenset(str(f).lower() for f in atts["FLAGS"])
            if "\\recent" in flags and uid is not None and not self.readOnly:
                owner = self.registry.claimRecent((self.selected, facts.uidValidity, uid), self)
                if owner is not self:
                    self._violate("recent", "UID %d is \\Recent here and in %s" % (uid, owner.name), raw)
            flags -= {"\\recent"}
            if self._announced is None:
                self._violate("flags-announced", "FETCH FLAGS before any FLAGS response", raw)
            else:
                unknown = flags - self._announced
                if unknown:
                    self._violate("flags-announced", "FETCH shows %s, not announced in FLAGS %s"
                                  % (sorted(unknown), sorted(self._announced)), raw)
        if "MODSEQ" in atts:
            value = atts["MODSEQ"]
            if not isinstance(value, list) or len(value) != 1:
                raise ParseError("MODSEQ is not (n)")
            modseq = _number(value[0])
            facts.maxModseq = max(facts.maxModseq, modseq)
            self.registry.sawModseq(self.selected, modseq)
            if uid is not None:
                old = facts.modseqs.get(uid)
                if old is not None and modseq < old:
                    self._violate("modseq", "UID %d MODSEQ went down from %d to %d" % (uid, old, modseq), raw)
                facts.modseqs[uid] = max(modseq, old or 0)
                if flags is not None:
                    before = facts.flags.get(uid)
                    if before is not None and before[0] == modseq and before[1] != flags:
                        self._violate("modseq", "UID %d flags changed, MODSEQ %d did not" % (uid, modseq), raw)
                    if before is None or modseq >= before[0]:
                        facts.flags[uid] = (modseq, flags)
        if "ENVELOPE" in atts and (not isinstance(atts["ENVELOPE"], list) or len(atts["ENVELOPE"]) != 10):
            raise ParseError("ENVELOPE is not a list of 10")
        if "BODYSTRUCTURE" in atts and not isinstance(atts["BODYSTRUCTURE"], list):
            raise ParseError("BODYSTRUCTURE is not a list")
        if uid is not None:
            self._content(uid, atts, raw)

    def _content(self, uid, atts, raw):
        if atts.get("BODY[]", b"") is None or atts.get("RFC822", b"") is None:
            return  # an expunged message's NIL items (RFC 2180 4.1.3)
        key = (self.selected, self.facts().uidValidity, uid)
        size = atts.get("RFC822.SIZE")
        if size is not None:
            size = _number(size)
            if not self.registry.same(self.registry.sizes, key, size):
                self._violate("content", "UID %d RFC822.SIZE %d differs from before (%d)"
                              % (uid, size, self.registry.sizes[key]), raw)
        body = atts.get("BODY[]", atts.get("RFC822"))
        if isinstance(body, bytes):
            known = self.registry.sizes.get(key)
            if not self.registry.same(self.registry.sizes, key, len(body)):
                self._violate("content", "UID %d BODY[] of %d octets, RFC822.SIZE %s"
                              % (uid, len(body), known), raw)
            digest = hashlib.sha1(body).digest()
            if not self.registry.same(self.registry.digests, key, digest):
                self._violate("content", "UID %d BODY[] differs from what was sent before" % (uid,), raw)

    def _current(self, *names):
        for command in self._outstanding.values():
            if command.name in names:
                return command
        return None

    def _untagged_SEARCH(self, response, names=("SEARCH", "UID SEARCH")):
        command = self._current(*names)
        if command is None:
            return
        numbers = []
        for token in response.data:
            if isinstance(token, list):
                continue  # (MODSEQ n)
            numbers.append(_number(token))
        self._searchResults(command, numbers, response.raw)

    def _untagged_SORT(self, response):
        self._untagged_SEARCH(response, ("SORT", "UID SORT"))

    def _untagged_THREAD(self, response):
        command = self._current("THREAD", "UID THREAD")
        if command is None:
            return
        numbers = []
        stack = list(response.data)
        while stack:
            token = stack.pop()
            if isinstance(token, list):
                stack.extend(token)
            else:
                numbers.append(_number(token))
        self._searchResults(command, numbers, response.raw)

    def _searchResults(self, command, numbers, raw):
        if self._slots is None:
            self._violate("state", "SEARCH results without a selected mailbox", raw)
            return
        if not command.name.startswith("UID "):
            bad = [n for n in numbers if not 1 <= n <= len(self._slots)]
            if bad:
                self._violate("sequence", "%s found messages %s of %d"
                              % (command.name, bad[:5], len(self._slots)), raw)
        else:
            back = self.facts().expunged.intersection(numbers)
            if back:
                self._violate("uid", "UID SEARCH found expunged UIDs %s" % (sorted(back)[:5],), raw)

    def _untagged_ESEARCH(self, response):
        data = list(response.data)
        command = None
        if data and isinstance(data[0], list):
            correlator = data.pop(0)
            if len(correlator) == 2 and str(correlator[0]).upper() == "TAG":
                tag = correlator[1].decode("ascii", "replace") if isinstance(correlator[1], bytes) else None
                command = self._outstanding.get(tag)
                if command is None:
                    self._violate("tag", "ESEARCH for a tag not in progress", response.raw)
                    return
        if command is None:
            return
        if data and str(data[0]).upper() == "UID":
            data.pop(0)
        numbers = []
        for i in range(0, len(data) - 1, 2):
            name = str(data[i]).upper()
            if name in ("MIN", "MAX"):
                numbers.append(_number(data[i + 1]))
            elif name == "ALL":
                for lo, hi in _sequenceNumbers(data[i + 1]):
                    numbers.extend((lo, hi))
        self._searchResults(command, numbers, response.raw)

    def _untagged_STATUS(self, response):
        if len(response.data) != 2 or not isinstance(response.data[1], list):
            raise ParseError("STATUS is not name (items)")
        mailbox = _mailboxName(response.data[0])
        items = response.data[1]
        values = {str(items[i]).upper(): _number(items[i + 1]) for i in range(0, len(items) - 1, 2)}
        command = self._current("STATUS")
        facts = self.facts(mailbox)
        if "UIDVALIDITY" in values:
            self._validity(mailbox, values["UIDVALIDITY"], response.raw)
        if "UIDNEXT" in values:
            before = command.snapshot[0] if command is not None else 0
            if values["UIDNEXT"] <= before:
                self._violate("uidnext", "STATUS UIDNEXT %d of %s not above UID %d already seen"
                              % (values["UIDNEXT"], mailbox, before), response.raw)
            if values["UIDNEXT"] < facts.uidNext:
                self._violate("uidnext", "UIDNEXT of %s went down from %d to %d"
                              % (mailbox, facts.uidNext, values["UIDNEXT"]), response.raw)
            facts.uidNext = max(facts.uidNext, values["UIDNEXT"])
        if "HIGHESTMODSEQ" in values:
            self._highestModseq(mailbox, values["HIGHESTMODSEQ"], command, response.raw)
