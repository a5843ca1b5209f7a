# -*- test-case-name: tests.test_imapcheck -*-
"""
Checks of L{tests.imapcheck} for what a session switches on: search
contexts kept up to date (RFC 5267 C{RETURN (UPDATE)}), IMAP4rev2 (RFC
9051) and NOTIFY (RFC 5465).

  - contexts: a C{UID SEARCH} or C{SEARCH RETURN (UPDATE)} answered OK
    without C{NO [NOUPDATE]} keeps its result, which each C{ESEARCH (TAG
    "t") ADDTO/REMOVEFROM} then changes; ADDTO never names a UID the
    result has or one expunged, REMOVEFROM only one it has, and the numbers
    of a SEARCH context are in range; updates stop when the mailbox is
    no longer selected or after C{CANCELUPDATE};
  - IMAP4rev2: once C{* ENABLED IMAP4rev2} came, no C{RECENT}, no
    C{\\Recent} flag and no C{SEARCH} response (ESEARCH instead), and a
    SELECT need not carry RECENT;
  - ESEARCH answering a command carries its C{(TAG "t")} (RFC 4731);
  - NOTIFY: an untagged STATUS with no STATUS or LIST command running
    comes only with NOTIFY set, and never for the selected mailbox (RFC
    5465 5.1: its changes come as EXISTS, EXPUNGE and FETCH).
"""

from tests.imapcheck_base import ParseError, _number, _sequenceNumbers

#: The commands whose RETURN (UPDATE) leaves a context.
CONTEXT_COMMANDS = ("SEARCH", "UID SEARCH", "SORT", "UID SORT")


class Context:
    """
    One search context kept up to date.

    @ivar uid: whether it holds UIDs (a UID SEARCH) or message numbers.
    @ivar result: C{set} of the UIDs (or numbers) in it.
    @ivar noUpdate: the server said C{NO [NOUPDATE]} for it.
    """

    def __init__(self, tag, uid):
        self.tag = tag
        self.uid = uid
        self.result = set()
        self.noUpdate = False
        self.gone = set()


def _returnsUpdate(args):
    """
    Whether SEARCH/SORT arguments start with C{RETURN (... UPDATE ...)}.
    """
    return (len(args) >= 2 and str(args[0]).upper() == "RETURN" and isinstance(args[1], list)
            and any(str(option).upper() == "UPDATE" for option in args[1]))


def _pairs(value):
    """
    The C{(position, [(lo, hi)])} pairs of an ADDTO or REMOVEFROM list.
    """
    if not isinstance(value, list) or not value or len(value) % 2:
        raise ParseError("ADDTO/REMOVEFROM is not (position set ...)")
    out = []
    for i in range(0, len(value), 2):
        try:
            out.append((_number(value[i]), _sequenceNumbers(value[i + 1])))
        except ValueError:
            raise ParseError("ADDTO/REMOVEFROM set %r" % (value[i + 1],)) from None
    return out


class ContextChecks:
    """
    Mixin of L{tests.imapcheck.SessionChecker}: contexts, IMAP4rev2 and
    NOTIFY.

    @ivar contexts: C{{tag: L{Context}}} of the contexts being updated.
    @ivar rev2: whether the server said IMAP4rev2 is enabled.
    @ivar notify: whether a NOTIFY SET is in force.
    @ivar notifySelected: whether it asks for the selected mailbox's
        events at once (C{SELECTED}, not C{SELECTED-DELAYED}): EXPUNGE may
        then come with no command in progress.
    """

    contexts = None
    rev2 = False
    notify = False
    notifySelected = False

    def contextResult(self, tag):
        """
        The result context C{tag} holds now, or C{None} if it is not updated.
        """
        context = (self.contexts or {}).get(tag)
        return None if context is None else set(context.result)

    def _contextSent(self, command):
        if command.name in CONTEXT_COMMANDS and _returnsUpdate(command.args):
            command.context = Context(command.tag, command.name.startswith("UID "))
        elif command.name == "NOTIFY" and command.args:
            on = str(command.args[0]).upper() == "SET"
            selected = on and any(isinstance(t, list) and t and str(t[0]).upper() == "SELECTED"
                                  for t in command.args[1:])
            command.notify = (on, selected)

    def _contextGone(self, uid):
        """
        Message C{uid} was expunged: a UID context that has it must take it
        out (REMOVEFROM) by the end of the command.
        """
        for context in (self.contexts or {}).values():
            if context.uid and uid in context.result:
                context.gone.add(uid)

    def _contextTagged(self, command, response):
        if command.name == "CANCELUPDATE" and response.name == "OK":
            # Its contexts end with it: what it saw expunged needs no REMOVEFROM.
            for token in command.args:
                tag = token.decode("ascii", "replace") if isinstance(token, bytes) else str(token)
                (self.contexts or {}).pop(tag, None)
        for context in (self.contexts or {}).values():
            late = context.gone & context.result
            if late:
                self._violate("context", "UIDs %s expunged, still in context %s at the end of %s"
                              % (sorted(late)[:5], context.tag, command.name), response.raw)
                context.result -= late
            context.gone.clear()
        if response.name != "OK":
            return
        context = getattr(command, "context", None)
        if context is not None and not context.noUpdate:
            if self.contexts is None:
                self.contexts = {}
            self.contexts[command.tag] = context
        notify = getattr(command, "notify", None)
        if notify is not None:
            self.notify, self.notifySelected = notify

    def _contextsEnd(self):
        self.contexts = None

    def _noUpdate(self, response):
        """
        An untagged C{NO [NOUPDATE "t"]}: that command leaves no context.
        """
        tag = response.codeArgs[0] if response.codeArgs else None
        tag = tag.decode("ascii", "replace") if isinstance(tag, bytes) else None
        command = self._outstanding.get(tag)
        if command is None or getattr(command, "context", None) is None:
            self._violate("context", "NOUPDATE for %r, no RETURN (UPDATE) in progress" % (tag,), response.raw)
            return
        command.context.noUpdate = True

    def _contextUpdate(self, context, data, raw):
        """
        C{* ESEARCH (TAG "t") [UID] ADDTO (...) REMOVEFROM (...)} for an
        updated context: C{data} is what follows the correlator and UID.
        """
        if len(data) % 2:
            raise ParseError("ESEARCH update is not name value pairs")
        for i in range(0, len(data), 2):
            name = str(data[i]).upper()
            if name not in ("ADDTO", "REMOVEFROM"):
                self._violate("context", "update of context %s with %s" % (context.tag, name), raw)
                continue
            for _position, ranges in _pairs(data[i + 1]):
                numbers = [n for lo, hi in ranges for n in range(lo, min(hi, lo + 100000) + 1)]
                if not context.uid:
                    self._searchResults(_UPDATE, numbers, raw)
                    # Numbers shift with every EXPUNGE: only the UID
                    # contexts keep a result to compare.
                    continue
                if name == "ADDTO":
                    have = context.result.intersection(numbers)
                    if have:
                        self._violate("context", "ADDTO of context %s names UIDs %s it has"
                                      % (context.tag, sorted(have)[:5]), raw)
                    gone = self.facts().expunged.intersection(numbers)
                    if gone:
                        self._violate("context", "ADDTO of context %s names expunged UIDs %s"
                                      % (context.tag, sorted(gone)[:5]), raw)
                    context.result.update(numbers)
                else:
                    missing = set(numbers) - context.result
                    if missing:
                        self._violate("context", "REMOVEFROM of context %s names UIDs %s it has not"
                                      % (context.tag, sorted(missing)[:5]), raw)
                    context.result.difference_update(numbers)

    def _contextAnswer(self, command, data):
        """
        The first answer of a RETURN (UPDATE) command: its ALL is the
        context's result.
        """
        context = getattr(command, "context", None)
        if context is None:
            return
        for i in range(0, len(data) - 1, 2):
            if str(data[i]).upper() == "ALL":
                context.result = {n for lo, hi in _sequenceNumbers(data[i + 1])
                                  for n in range(lo, min(hi, lo + 100000) + 1)}

    def _untagged_ENABLED(self, response):
        if self._current("ENABLE") is None:
            self._violate("state", "ENABLED with no ENABLE in progress", response.raw)
        if any(str(token).upper() == "IMAP4REV2" for token in response.data):
            self.rev2 = True

    def _rev2Untagged(self, response):
        """
        What an IMAP4rev2 session must not be sent.
        """
        if response.name in ("RECENT", "SEARCH"):
            self._violate("rev2", "%s response after IMAP4rev2 was enabled" % (response.name,), response.raw)

    def _unsolicitedStatus(self, mailbox, raw):
        if self._current("STATUS", "LIST", "NOTIFY") is not None:
            return
        if not self.notify:
            self._violate("notify", "STATUS of %s with no STATUS, LIST or NOTIFY" % (mailbox,), raw)
        elif mailbox == self.selected and self._selecting is None:
            # (While a SELECT is on its way, a STATUS the server sent
            # before it read it may still come.)
            self._violate("notify", "NOTIFY STATUS of the selected mailbox %s" % (mailbox,), raw)


class _Update:
    """
    What L{SearchChecks._searchResults} is given for a message-number
    context's update.
    """
    name = "SEARCH (update)"


_UPDATE = _Update()
