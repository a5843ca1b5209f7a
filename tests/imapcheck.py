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
    that long and the same bytes in every session (with a L{Registry});
  - search contexts (RFC 5267), IMAP4rev2 and NOTIFY: see
    L{tests.imapcheck_context}.

The checks live by concern in L{tests.imapcheck_uids} (response codes and
assigned UIDs), L{tests.imapcheck_messages} (EXISTS, EXPUNGE, VANISHED,
FETCH...), L{tests.imapcheck_search} (SEARCH, SORT, THREAD, ESEARCH,
STATUS) and L{tests.imapcheck_context}, mixins of L{SessionChecker}.
"""

from tests.imapcheck_base import (
    _CONDSTORE_ENABLING,
    _LITERAL_AT_END,
    INFINITY,
    NO_EXPUNGE_DURING,
    Violation,
    _Command,
    _Facts,
    _mailboxName,
    _sequenceNumbers,
)
from tests.imapcheck_context import ContextChecks
from tests.imapcheck_messages import MessageChecks
from tests.imapcheck_search import SearchChecks
from tests.imapcheck_uids import UidChecks
from tests.imapregistry import Registry
from tests.imapresponse import Atom, ParseError, Response, ResponseReader, parseResponse, parseTokens

__all__ = ["Atom", "Response", "Violation", "ResponseReader", "SessionChecker", "Registry",
           "parseResponse", "parseTokens", "ParseError", "INFINITY", "NO_EXPUNGE_DURING"]


class SessionChecker(MessageChecks, SearchChecks, UidChecks, ContextChecks):
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
        elif name in ("REPLACE", "UID REPLACE") and len(args) > 1:
            mailbox = _mailboxName(args[1])
        snapshot = self.registry.snapshot(mailbox) if mailbox else (0, 0)
        command = _Command(tag, name, args, expectBad, snapshot)
        self._outstanding[tag] = command
        self._contextSent(command)
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

    def highestKnownUid(self):
        """
        The highest UID of a message the session has and learnt the UID
        of (0: none).
        """
        return max((slot[0] for slot in self._slots or () if slot[0] is not None), default=0)

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
        self._contextsEnd()

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
        if self.rev2:
            self._rev2Untagged(response)
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
        self._contextTagged(command, response)
        if command is self._selecting:
            self._selecting = None
            if response.name != "OK":
                self._deselect()
                return
            wanted = ("FLAGS", "EXISTS", "UIDVALIDITY") if self.rev2 else ("FLAGS", "EXISTS", "RECENT", "UIDVALIDITY")
            missing = [k for k in wanted if k not in command.seen]
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

