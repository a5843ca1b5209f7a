# -*- test-case-name: tests.test_imapcheck -*-
"""
Per-message checks of L{tests.imapcheck}: FLAGS, EXISTS, RECENT,
EXPUNGE, VANISHED and FETCH (sequence numbers, UIDs, flags, MODSEQ,
content).
"""

import hashlib

from tests.imapcheck_base import INFINITY, NO_EXPUNGE_DURING, Atom, ParseError, _number, _sequenceNumbers


class MessageChecks:
    """
    Mixin of L{tests.imapcheck.SessionChecker}: the untagged responses
    that tell the session about its messages.
    """

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
        if not running and not self.notifySelected:
            self._violate("expunge-forbidden", "EXPUNGE with no command in progress", response.raw)
        for command in running:
            if command.name in NO_EXPUNGE_DURING:
                self._violate("expunge-forbidden", "EXPUNGE during %s" % (command.name,), response.raw)
        n = response.number
        if not 1 <= n <= len(self._slots):
            self._violate("sequence", "EXPUNGE %d of %d messages" % (n, len(self._slots)), response.raw)
            return
        response.expunged = [self._uidRange(n - 1)]
        slot = self._slots.pop(n - 1)
        if slot[0] is not None:
            self.facts().expunged.add(slot[0])
            self._contextGone(slot[0])

    def _uidRange(self, index):
        """
        The C{(lo, hi)} range the UID of the message at C{index} (from 0)
        lies in: the UID itself once learnt, else between the learnt UIDs
        of the messages around it, within what UIDNEXT said.
        """
        slot = self._slots[index]
        if slot[0] is not None:
            return slot[0], slot[0]
        lo, hi = slot[1], slot[2]
        below = next((s[0] for s in reversed(self._slots[:index]) if s[0] is not None), None)
        above = next((s[0] for s in self._slots[index + 1:] if s[0] is not None), None)
        return max(lo, below + 1) if below is not None else lo, min(hi, above - 1) if above is not None else hi

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
        if not running and not self.notifySelected:
            self._violate("expunge-forbidden", "VANISHED with no command in progress", response.raw)
        for command in running:
            if command.name in NO_EXPUNGE_DURING:
                self._violate("expunge-forbidden", "VANISHED during %s" % (command.name,), response.raw)
        response.expunged = ranges
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
        self._contextGone(uid)
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
            if self.rev2 and "\\recent" in flags:
                self._violate("rev2", "\\Recent shown after IMAP4rev2 was enabled", raw)
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

