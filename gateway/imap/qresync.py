# -*- test-case-name: tests.test_imap_qresync -*-
"""
QRESYNC (RFC 7162 3.2): quick resynchronisation from what the index keeps
of expunged messages (UID and the modseq of their expunge).

  - ENABLE QRESYNC (which turns CONDSTORE on as well);
  - SELECT/EXAMINE C{(QRESYNC (uidvalidity modseq [known-uids
    [seq-match-data]]))}: after the usual responses, C{VANISHED (EARLIER)}
    for the expunged UIDs and FETCH for the messages changed since;
  - C{UID FETCH ... (CHANGEDSINCE n VANISHED)};
  - VANISHED instead of EXPUNGE (L{gateway.imap.view}), and C{[CLOSED]}
    when SELECT closes a mailbox.

The SELECT parameters are parsed by L{parseSelectParameters} and acted on
by L{afterSelect}, which L{gateway.imap.commands_mailbox} calls.
"""

import attr

from gateway.imap.commands_auth import ENABLEABLE
from gateway.imap.format import flagList
from gateway.imap.protocol import bad, capability
from gateway.imap.sequence import formatSequenceSet, parseSequenceSet

capability("QRESYNC")
ENABLEABLE.add("QRESYNC")


@attr.s(frozen=True)
class QresyncParameters:
    """
    What a client remembers of a mailbox: its UIDVALIDITY, the highest
    modseq it saw, and optionally the UIDs it knows (a L{SequenceSet}).
    """

    uidValidity = attr.ib()
    modseq = attr.ib()
    knownUids = attr.ib(default=None)


def _number(value, what):
    if not isinstance(value, str) or not value.isdigit() or len(value) > 20:
        raise bad("QRESYNC needs %s" % (what,))
    return int(value)


def parseSelectParameters(session, params):
    """
    The parameters of SELECT/EXAMINE: C{CONDSTORE} turns CONDSTORE on;
    C{QRESYNC (...)} (only after ENABLE QRESYNC) gives a
    L{QresyncParameters}.

    @return: the L{QresyncParameters}, or C{None}.
    @raise gateway.imap.protocol.Response: C{BAD} for anything else.
    """
    qresync = None
    i = 0
    while i < len(params):
        name = params[i].upper() if isinstance(params[i], str) else None
        if name == "CONDSTORE":
            session.enabled.add("CONDSTORE")
        elif name == "QRESYNC" and qresync is None:
            if "QRESYNC" not in session.enabled:
                raise bad("ENABLE QRESYNC first")
            i += 1
            if i >= len(params) or not isinstance(params[i], list) or not 2 <= len(params[i]) <= 4:
                raise bad("QRESYNC needs (uidvalidity modseq [known-uids [seq-match-data]])")
            values = params[i]
            uidValidity = _number(values[0], "a UIDVALIDITY")
            modseq = _number(values[1], "a mod-sequence")
            known = None
            if len(values) > 2:
                if not isinstance(values[2], str):
                    raise bad("QRESYNC known UIDs must be a UID set")
                try:
                    known = parseSequenceSet(values[2])
                except ValueError as e:
                    raise bad("bad QRESYNC known UIDs: %s" % (e,)) from None
            if len(values) > 3 and (not isinstance(values[3], list) or len(values[3]) != 2):
                raise bad("QRESYNC sequence match data must be (sequences UIDs)")
            # The match data helps a server that forgets expunges; this one
            # remembers them all, so it is checked for syntax only.
            qresync = QresyncParameters(uidValidity, modseq, known)
        else:
            raise bad("Unsupported SELECT parameters")
        i += 1
    return qresync


def afterSelect(session, view, qresync):
    """
    The responses QRESYNC adds to a SELECT whose UIDVALIDITY the client
    still has: VANISHED (EARLIER) and FETCH of what changed since its
    modseq.
    """
    if qresync is None or qresync.uidValidity != view.mailbox.uidValidity:
        return
    expunged, changed, _highest = view.mailbox.changesSince(qresync.modseq)
    sendVanishedEarlier(session, view, expunged, qresync.knownUids)
    infos = [info for info in changed if info.modseq > qresync.modseq]
    view.announceFlags(session, infos)
    if len(infos) * 16 < len(view.uids):
        # A few changes in a large mailbox: a binary search each beats a
        # walk along the whole view.
        seqs = {info.uid: view.seqOf(info.uid) for info in infos}
    else:
        seqs = view.sequenceNumbers([info.uid for info in infos])
    recent = view.recent
    lines = [b"%d FETCH (UID %d FLAGS %s MODSEQ (%d))" % (
        seqs[info.uid], info.uid, flagList(info.flags, info.uid in recent), info.modseq)
        for info in infos if seqs.get(info.uid) is not None]
    for line in lines:
        session.sendUntagged(line)


def sendVanishedEarlier(session, view, expunged, uidSet=None):
    """
    C{* VANISHED (EARLIER) uids} for the C{expunged} UIDs (of C{uidSet},
    when given) that the session's view no longer holds.
    """
    maxUid = max(view.maxUid(), max(expunged, default=0))
    uids = [uid for uid in expunged if view.seqOf(uid) is None
            and (uidSet is None or uidSet.contains(uid, maxUid))]
    if uids:
        session.sendUntagged(b"VANISHED (EARLIER) " + formatSequenceSet(uids).encode("ascii"))


def fetchVanished(session, uidSet, changedSince):
    """
    UID FETCH's VANISHED modifier: the UIDs of C{uidSet} expunged after
    C{changedSince}.
    """
    view = session.view
    expunged = view.mailbox.changesSince(changedSince)[0]
    sendVanishedEarlier(session, view, expunged, uidSet)
