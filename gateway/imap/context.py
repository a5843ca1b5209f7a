# -*- test-case-name: tests.test_imap_context -*-
"""
Contexts (RFC 5267 section 4): CONTEXT=SEARCH and CONTEXT=SORT.

A SEARCH, UID SEARCH, SORT or UID SORT with the return option C{UPDATE}
leaves a context on the selected mailbox's view: the result it answered,
kept up to date.  When messages arrive, are expunged or change (by this
session, another one, or another process), the view calls
L{Contexts.expunging} before it announces the EXPUNGEs (or VANISHED), so
the C{REMOVEFROM} numbers are still valid, and L{Contexts.changed} after
the EXISTS, so the C{ADDTO} numbers already are (RFC 5267 4.3.3, 4.3.4).
Each context then sends C{* ESEARCH (TAG "t") [UID] REMOVEFROM (...)
ADDTO (...)}: position 0 and the numbers in mailbox order for a SEARCH,
the positions in the sort order for a SORT.

Contexts end with the selected mailbox (they live on its view) or with
C{CANCELUPDATE "t"}.  A session keeps at most L{MAX_CONTEXTS}; past that,
and for a program with a key whose result may change without the message
changing (message numbers, C{*}, OLDER/YOUNGER, keys of extensions that do
not say they can be updated), the command is answered as usual with an
untagged C{NO [NOUPDATE "t"]}.  The return option C{CONTEXT} is a hint that
is accepted and ignored (4.2); PARTIAL (RFC 9394) pages the first answer
and does not limit the updates (4.4).
"""

import bisect

from zope.interface import implementer

from gateway.errors import NoSuchMessage
from gateway.imap.protocol import SEL, bad, capability, command, no
from gateway.imap.results import formatOrdered
from gateway.imap.sequence import formatSequenceSet
from gateway.interfaces import IViewObserver

capability("CONTEXT=SEARCH")
capability("CONTEXT=SORT")

#: The most updating contexts one session keeps on its selected mailbox.
MAX_CONTEXTS = 10

#: From this many changed messages on, a program the index answers whole
#: is asked of the index once rather than matched message by message.
INDEX_AT = 64

#: Return options of SEARCH and SORT this module adds to ESEARCH/ESORT's.
RETURN_OPTIONS = ("CONTEXT", "UPDATE")


def resultOptions(options):
    """
    The return options that shape the answer: C{options} without
    C{CONTEXT} and C{UPDATE}, C{{"ALL"}} when only those were given (as
    C{RETURN ()} means ALL, RFC 4731 3.1: a client asking for updates
    needs the results they update).

    @type options: C{set}
    @rtype: C{set}
    """
    rest = set(options) - set(RETURN_OPTIONS)
    return rest or {"ALL"}


def checkTag(session, tag):
    """
    Refuse an UPDATE whose tag names a context still updated (RFC 5267
    4.3: BAD).
    """
    contexts = getattr(session.view, "contexts", None)
    if contexts is not None and tag in contexts.byTag:
        raise bad("Tag reuse: %s already names an updated context" % (tag[:40],))


class _Order:
    """
    A message's place in a SORT result: its sort values, compared as the
    criteria say (REVERSE ones descending), then its UID (RFC 5256: ties
    in mailbox order).
    """

    __slots__ = ("values", "uid", "reverses")

    def __init__(self, values, uid, reverses):
        self.values, self.uid, self.reverses = values, uid, reverses

    def __lt__(self, other):
        for a, b, reverse in zip(self.values, other.values, self.reverses, strict=True):
            if a != b:
                return a > b if reverse else a < b
        return self.uid < other.uid


class _Context:
    """
    One updated result.

    @ivar tag: the searching command's tag.
    @ivar uid: whether the numbers are UIDs (UID SEARCH, UID SORT).
    @ivar program: the L{gateway.imap.search.SearchProgram}.
    @ivar members: C{set} of the UIDs in the result.
    @ivar order: for a SORT, the C{list} of L{_Order} of the result in
        sort order; C{None} for a SEARCH.
    @ivar sortValues: for a SORT, C{sortValues(uids)} returns C{{uid:
        values}} read from the index.
    """

    def __init__(self, tag, uid, program, uids, order=None, sortValues=None, reverses=()):
        self.tag, self.uid, self.program = tag, uid, program
        self.members = set(uids)
        self.order = order
        self.sortValues = sortValues
        self.reverses = reverses

    def _numbers(self, view, uids):
        if self.uid:
            return list(uids)
        seqs = view.sequenceNumbers(sorted(uids))
        return [seqs[u] for u in uids if u in seqs]

    def _send(self, session, parts):
        if parts:
            head = b'ESEARCH (TAG "' + self.tag.encode("latin-1") + b'")' + (b" UID" if self.uid else b"")
            session.sendUntagged(head + b"".join(b" " + p for p in parts))

    def _removeFrom(self, view, gone):
        """
        The REMOVEFROM item taking the UIDs C{gone} out (C{None}: none of
        them is in the result).
        """
        gone = [u for u in gone if u in self.members]
        if not gone:
            return None
        self.members.difference_update(gone)
        if self.order is None:
            numbers = sorted(self._numbers(view, sorted(gone)))
            return b"REMOVEFROM (0 " + formatSequenceSet(numbers).encode("ascii") + b")"
        goneSet = set(gone)
        positions = [i for i, o in enumerate(self.order) if o.uid in goneSet]
        # Pairs are applied in order: each run starts where it is once the
        # runs before it are gone.
        items, done = [], 0
        for run in _runs(positions):
            uids = [self.order[i].uid for i in run]
            numbers = self._numbers(view, uids)
            items.append(b"%d %s" % (run[0] + 1 - done, formatOrdered(numbers).encode("ascii")))
            done += len(run)
        self.order = [o for o in self.order if o.uid not in goneSet]
        return b"REMOVEFROM (" + b" ".join(items) + b")"

    def _addTo(self, view, new):
        """
        The ADDTO item putting the UIDs C{new} (ascending) in the result.
        """
        if new and self.order is not None:
            values = self.sortValues(new)
            # One expunged since it matched is left for its EXPUNGE.
            new = [u for u in new if u in values]
        if not new:
            return None
        self.members.update(new)
        if self.order is None:
            numbers = self._numbers(view, new)
            return b"ADDTO (0 " + formatSequenceSet(numbers).encode("ascii") + b")"
        for u in new:
            bisect.insort(self.order, _Order(values[u], u, self.reverses))
        newSet = set(new)
        positions = [i for i, o in enumerate(self.order) if o.uid in newSet]
        # Applied in ascending order of their final positions, each run
        # lands where it is in the final order.
        items = []
        for run in _runs(positions):
            numbers = self._numbers(view, [self.order[i].uid for i in run])
            items.append(b"%d %s" % (run[0] + 1, formatOrdered(numbers).encode("ascii")))
        return b"ADDTO (" + b" ".join(items) + b")"

    def expunging(self, session, view, gone):
        """
        Send REMOVEFROM for those of the UIDs C{gone} in the result.
        """
        self._send(session, [p for p in (self._removeFrom(view, gone),) if p])

    def changed(self, session, view, uids):
        """
        Match the messages C{uids} again and send what leaves the result
        (REMOVEFROM) and what comes in (ADDTO), in one ESEARCH.
        """
        matched = set(matchingUids(view, self.program, uids))
        leaving = [u for u in uids if u in self.members and u not in matched]
        coming = sorted(u for u in matched if u not in self.members)
        parts = [self._removeFrom(view, leaving), self._addTo(view, coming)]
        self._send(session, [p for p in parts if p])


def _runs(positions):
    """
    The ascending C{positions} cut into runs of consecutive numbers.
    """
    runs = []
    for p in positions:
        if runs and runs[-1][-1] == p - 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    return runs


def matchingUids(view, program, uids):
    """
    Those of C{uids} (in the view) that C{program} matches now, read from
    the index (and the message files for BODY and TEXT).
    """
    seqs = view.sequenceNumbers(sorted(uids))
    present = sorted(seqs)
    if not present:
        return []
    mailbox = view.mailbox
    if program.matchesAll:
        return present
    if program.rest is None and len(present) >= INDEX_AT:
        # The index answers the whole program: one query instead of
        # reading every changed message (STORE 1:* ...).
        hits = {hit[0] for hit in mailbox.search(program.term)}
        return [u for u in present if u in hits]
    saveDates = mailbox.saveDates(present) if program.key.needsSaveDate else {}
    maxSeq, maxUid = len(view.uids), view.maxUid()
    found = []
    for info in mailbox.messages(present, headers=program.needsHeaders):
        try:
            matched = program.matches(seqs[info.uid], info, maxSeq, maxUid,
                                      lambda u=info.uid: mailbox.openMessage(u),
                                      recent=info.uid in view.recent, saveDate=saveDates.get(info.uid))
        except NoSuchMessage:
            # Expunged since the index was read: its EXPUNGE will follow.
            matched = False
        if matched:
            found.append(info.uid)
    return found


@implementer(IViewObserver)
class Contexts:
    """
    The updated contexts of one selected mailbox (C{view.contexts}).

    @ivar byTag: C{{tag: context}}, in the order they were made.
    """

    def __init__(self):
        self.byTag = {}

    def expunging(self, session, view, gone):
        """
        The UIDs C{gone} (ascending, still numbered in the view) are about
        to be announced expunged: send the REMOVEFROMs first.
        """
        for context in list(self.byTag.values()):
            context.expunging(session, view, gone)

    def changed(self, session, view, uids):
        """
        The messages C{uids} arrived or changed and the view announced
        them: send what each context gains or loses.
        """
        if uids:
            for context in list(self.byTag.values()):
                context.changed(session, view, uids)


def start(session, tag, uid, program, uids, order=None, sortValues=None, reverses=()):
    """
    Keep the result C{uids} of the searching command C{tag} updated, or
    say why not with an untagged C{NO [NOUPDATE "tag"]} (RFC 5267 4.3.1).

    @param order: for a SORT, the result's sort values as C{[(values,
        uid)]} in sort order, with C{sortValues} and C{reverses}.
    """
    view = session.view
    contexts = getattr(view, "contexts", None)
    if not program.updatable:
        return _refuse(session, tag, "Cannot keep this search updated (message numbers, *, or time)")
    if contexts is not None and len(contexts.byTag) >= MAX_CONTEXTS:
        return _refuse(session, tag, "Too many contexts (limit %d)" % (MAX_CONTEXTS,))
    if contexts is None:
        contexts = view.contexts = Contexts()
    if order is not None:
        order = [_Order(values, u, reverses) for values, u in order]
    contexts.byTag[tag] = _Context(tag, uid, program, uids, order, sortValues, reverses)


def _refuse(session, tag, text):
    session.sendUntagged(b'NO [NOUPDATE "' + tag.encode("latin-1") + b'"] ' + text.encode("ascii"))


@command("CANCELUPDATE", SEL, capability="CONTEXT=SEARCH")
def do_CANCELUPDATE(session, tag, args):
    """
    C{CANCELUPDATE "t" ...} (RFC 5267 4.3.5): no more updates for the
    contexts of those tags.
    """
    tags = []
    while True:
        args.space()
        tags.append(args.astring().decode("latin-1"))
        if args.atEnd():
            break
    contexts = getattr(session.view, "contexts", None)
    known = contexts.byTag if contexts is not None else {}
    unknown = [t for t in tags if t not in known]
    if unknown:
        raise no("No updated context has the tag %s" % (unknown[0][:40],))
    for t in tags:
        del known[t]
    return None

