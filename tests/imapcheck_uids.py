# -*- test-case-name: tests.test_imapcheck -*-
"""
UID, UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ checks of L{tests.imapcheck}:
APPENDUID and COPYUID, and the response codes of SELECT.
"""

from tests.imapcheck_base import ParseError, _mailboxName, _number, _sequenceNumbers


class UidChecks:
    """
    Mixin of L{tests.imapcheck.SessionChecker}: response codes and the
    UIDs a server assigns.
    """

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
        elif command.name in ("REPLACE", "UID REPLACE"):
            target = _mailboxName(command.args[1])
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
        elif code == "NOUPDATE" and response.kind == "untagged":
            self._noUpdate(response)
        elif code == "APPENDUID" and response.kind == "untagged":
            command = self._current("REPLACE", "UID REPLACE")
            if command is not None:
                self._assigned(command, code, args, response.raw)
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

