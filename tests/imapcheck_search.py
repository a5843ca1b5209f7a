# -*- test-case-name: tests.test_imapcheck -*-
"""
Search-like answers checked by L{tests.imapcheck}: SEARCH, SORT, THREAD,
ESEARCH, and STATUS.
"""

from tests.imapcheck_base import ParseError, _mailboxName, _number, _sequenceNumbers


class SearchChecks:
    """
    Mixin of L{tests.imapcheck.SessionChecker}: answers that name
    messages without changing the session's view, and STATUS.
    """

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
        tag = None
        if data and isinstance(data[0], list):
            correlator = data.pop(0)
            if len(correlator) == 2 and str(correlator[0]).upper() == "TAG":
                tag = correlator[1].decode("ascii", "replace") if isinstance(correlator[1], bytes) else None
        uid = bool(data) and str(data[0]).upper() == "UID"
        if uid:
            data.pop(0)
        if tag is None:
            running = self._current("SEARCH", "UID SEARCH", "SORT", "UID SORT")
            if running is not None:
                self._violate("esearch", "ESEARCH without (TAG) during %s" % (running.name,), response.raw)
            return
        command = self._outstanding.get(tag)
        if command is None:
            context = (self.contexts or {}).get(tag)
            if context is None:
                self._violate("tag", "ESEARCH for a tag not in progress", response.raw)
            else:
                self._contextUpdate(context, data, response.raw)
            return
        if command.name.startswith("UID ") != uid:
            self._violate("esearch", "ESEARCH %s UID for a %s" % ("with" if uid else "without", command.name),
                          response.raw)
        context = getattr(command, "context", None)
        if context is not None and data and str(data[0]).upper() in ("ADDTO", "REMOVEFROM"):
            # An update of the context this command made, sent after its
            # first answer and before its tagged OK (a change the end of
            # the command announced): applied like any later one.
            self._contextUpdate(context, data, response.raw)
            return
        numbers = []
        for i in range(0, len(data) - 1, 2):
            name = str(data[i]).upper()
            if name in ("MIN", "MAX"):
                numbers.append(_number(data[i + 1]))
            elif name == "ALL":
                for lo, hi in _sequenceNumbers(data[i + 1]):
                    numbers.extend((lo, hi))
        self._searchResults(command, numbers, response.raw)
        self._contextAnswer(command, data)

    def _untagged_STATUS(self, response):
        if len(response.data) != 2 or not isinstance(response.data[1], list):
            raise ParseError("STATUS is not name (items)")
        mailbox = _mailboxName(response.data[0])
        items = response.data[1]
        values = {str(items[i]).upper(): _number(items[i + 1]) for i in range(0, len(items) - 1, 2)}
        command = self._current("STATUS")
        if command is None:
            self._unsolicitedStatus(mailbox, response.raw)
        elif self.notify:
            # A NOTIFY STATUS sent before the server read the command may
            # come during it: older than the command's snapshot.
            command = None
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
