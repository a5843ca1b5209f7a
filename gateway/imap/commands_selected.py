# -*- test-case-name: tests.test_imap_selected -*-
"""
Selected-state commands: CHECK, CLOSE, UNSELECT, EXPUNGE (and UIDPLUS's UID
EXPUNGE), SEARCH (with ESEARCH), FETCH, STORE, COPY, MOVE (RFC 6851), their
UID variants, and IDLE (RFC 2177).

The commands that change messages (EXPUNGE, CLOSE, STORE, COPY, MOVE,
FETCH's implicit C{\\Seen}) write through the store's index writer
(L{gateway.store.writer.callDurably}): the reactor goes on meanwhile, and
the responses that report a change, and the tagged OK, are sent once it is
durable.
"""

import functools
import re

from twisted.internet import defer, task
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IPullProducer
from twisted.python.failure import Failure
from zope.interface import implementer

from gateway.errors import NoSuchMessage, PermissionDenied, QuotaExceeded, StoreError
from gateway.imap import context as contextModule
from gateway.imap import fetchplans, structcache
from gateway.imap import search as searchModule
from gateway.imap.binary import UnknownTransferEncoding
from gateway.imap.commands_auth import ENABLEABLE
from gateway.imap.commands_mailbox import nameArgument, openTarget, storeError
from gateway.imap.format import badFlags, flagList
from gateway.imap.parser import IMAPSyntaxError
from gateway.imap.protocol import AUTH, SEL, bad, capability, command, no
from gateway.imap.qresync import fetchVanished
from gateway.imap.results import esearchParts, partialSlice
from gateway.imap.rev2 import isRev2
from gateway.imap.sequence import formatSequenceSet, parseSequenceSet
from gateway.imap.utf8 import checkSearchCharset
from gateway.store.access import hasRight, transferLater
from gateway.store.writer import callDurably

capability("IDLE")
capability("MOVE")
capability("ESEARCH")
capability("CONDSTORE")
capability("SEARCHRES")
capability("WITHIN")
capability("PARTIAL")
capability("BINARY")
capability("PREVIEW")
capability("SAVEDATE")
ENABLEABLE.add("CONDSTORE")

_SEARCH_MODSEQ = re.compile(rb"(?:^|[ (])MODSEQ ", re.I)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

#: Messages read from the index per batch.
BATCH = 500

#: FETCH and SEARCH over more messages than this give the reactor a turn
#: between batches.
COOPERATE_ABOVE = 2000


#: The sequence set C{$}: the saved search result (RFC 5182).
SAVED = "$"


def sequenceArgument(args):
    """
    A sequence set, or L{SAVED} for C{$}.
    """
    args.space()
    text = args.atom()
    if text == SAVED:
        return SAVED
    try:
        return parseSequenceSet(text)
    except ValueError as e:
        raise IMAPSyntaxError("bad sequence set: %s" % (e,)) from None


def targetUids(session, sequenceSet, uid):
    view = session.view
    if sequenceSet is SAVED:
        return view.savedUids()
    if uid:
        return view.uidsForUidSet(sequenceSet)
    if not view.uids and sequenceSet.hasStar:
        return []
    if sequenceSet.highest(len(view.uids)) > len(view.uids):
        raise bad("Invalid message sequence number")
    return view.uidsForSequences(sequenceSet)


def checkWritable(session):
    if session.view.readOnly:
        raise no("[READ-ONLY] The mailbox is open read-only")


def runBatches(session, uids, perBatch):
    """
    Call C{perBatch(uidChunk)} for each batch of C{uids}; large jobs give
    the reactor a turn between batches.

    @return: C{None}, or a C{Deferred} when the job runs cooperatively.
    """
    chunks = (uids[i:i + BATCH] for i in range(0, len(uids), BATCH))
    if len(uids) <= COOPERATE_ABOVE:
        for chunk in chunks:
            perBatch(chunk)
        return None

    def work():
        for chunk in chunks:
            perBatch(chunk)
            session.flush()
            yield None
    cooperator = task.Cooperator(scheduler=lambda f: session.reactor.callLater(0, f))
    return cooperator.cooperate(work()).whenDone().addCallback(lambda _: None)


# -- simple ------------------------------------------------------------------------------


@command("CHECK", SEL)
def do_CHECK(session, tag, args):
    args.end()
    return session.view.mailbox.synchronize().addCallback(lambda _: None)


@command("CLOSE", SEL)
def do_CLOSE(session, tag, args):
    args.end()
    view = session.view
    if view.readOnly:
        session.closeMailbox()
        return None

    def closed(result):
        if isinstance(result, Failure):
            # Without "e" CLOSE expunges nothing (RFC 4314 4).
            result.trap(PermissionDenied)
        if session.view is view:
            session.closeMailbox()
    return callDurably(view.mailbox, "expunge").addBoth(closed)


@command("UNSELECT", SEL, capability="UNSELECT")
def do_UNSELECT(session, tag, args):
    args.end()
    session.closeMailbox()


@command("EXPUNGE", SEL)
def do_EXPUNGE(session, tag, args):
    args.end()
    checkWritable(session)
    return callDurably(session.view.mailbox, "expunge").addCallback(lambda _: None)


@command("UID EXPUNGE", SEL, capability="UIDPLUS")
def do_UID_EXPUNGE(session, tag, args):
    sequenceSet = sequenceArgument(args)
    args.end()
    checkWritable(session)
    uids = targetUids(session, sequenceSet, uid=True)
    if uids:
        return callDurably(session.view.mailbox, "expunge", uids).addCallback(lambda _: None)


# -- FETCH -------------------------------------------------------------------------------


def registries(session):
    """
    The L{gateway.imap.registry.Registries} of C{session}'s factory (the
    standard ones for a session without a factory).
    """
    found = getattr(session.factory, "registries", None)
    if found is None:
        from gateway.imap.registry import defaultRegistries
        found = defaultRegistries()
    return found


def fetchRegistry(session):
    """
    The L{gateway.imap.registry.FetchRegistry} of C{session}'s factory.
    """
    return registries(session).fetch


def _fetch(session, tag, args, uid):
    sequenceSet = sequenceArgument(args)
    text = args.rest().strip()
    try:
        items = fetchplans.fetchPlans.items(text, fetchRegistry(session))
    except ValueError as e:
        # The text may quote the client's items, literals and all: one line.
        raise IMAPSyntaxError("bad FETCH items: %s" % (_CONTROL.sub(" ", str(e)),)) from None
    changedSince = (items.modifiers or {}).get("CHANGEDSINCE")
    vanished = (items.modifiers or {}).get("VANISHED")
    if vanished and (not uid or changedSince is None or "QRESYNC" not in session.enabled):
        raise bad("VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC")
    if changedSince is not None or any(item.name == "MODSEQ" for item in items):
        session.enableCondstore()
    uids = targetUids(session, sequenceSet, uid)
    if vanished and sequenceSet is not SAVED:
        fetchVanished(session, sequenceSet, changedSince)
    partial = (items.modifiers or {}).get("PARTIAL")
    if partial is not None:
        uids = partialSlice(uids, partial)
    return _fetchLoop(session, text, items, uids, changedSince)


@defer.inlineCallbacks
def _fetchLoop(session, itemsText, items, uids, changedSince):
    """
    Render the FETCH responses batch by batch: one write per batch of
    small responses; large bodies are streamed from disk.

    @param itemsText: the items as the client sent them, which C{items}
        were parsed from (what the process's plans are kept by).
    """
    view = session.view
    mailbox = view.mailbox
    writable = not view.readOnly and hasRight(mailbox, "s")
    plan = fetchplans.fetchPlans.plan(itemsText, items, "CONDSTORE" in session.enabled, fetchRegistry(session),
                                      session)
    structures = structcache.structureCache.of(mailbox) if plan.needsStructure else None
    # What the index keeps of the messages' structures (computed when they
    # were stored), for those not kept in memory yet.
    stored = getattr(mailbox, "storedStructures", None) if structures is not None else None
    # Messages another session or process expunged since this session's
    # view was last updated: their data cannot be sent, so the command
    # says so (RFC 5530 EXPUNGEISSUED, as Dovecot does; RFC 2180 4.1).
    expunged = False
    # Items that need an asynchronous answer for a batch first
    # (XINSTANCES): C{item.prepare(session, uids)} returning a Deferred.
    preparations = [item.prepare for item in items if getattr(item, "prepare", None) is not None]
    # The store's own mailboxes read where the files are with the rows,
    # when messages may be opened (see Mailbox.locatedMessages).
    located = getattr(mailbox, "locatedMessages", None) if plan.mayOpen else None
    for start in range(0, len(uids), BATCH):
        chunk = uids[start:start + BATCH]
        headers = plan.needsHeaders
        if structures is not None:
            missing = structures.missing(chunk, plan.structureNames)
            if missing and stored is not None:
                # One read of the index for the messages not kept here yet
                # (keeping them may let go of others: look at all again).
                structures.load(missing, stored)
                missing = structures.missing(chunk, plan.structureNames)
            if not missing and plan.headersForStructuresOnly:
                # What the header blocks were for is kept (a message that
                # loses its meanwhile is rendered from its file: see
                # message.headersComplete).
                headers = False
        if located is not None:
            infos, locations = located(chunk, headers=headers)
        else:
            infos = mailbox.messages(chunk, headers=headers)
        if len(infos) < len(chunk):
            expunged = True
        if changedSince is not None:
            infos = [info for info in infos if info.modseq > changedSince]
        seqs = view.sequenceNumbers(chunk)
        recent = view.recent
        saveDates = mailbox.saveDates(chunk) if plan.needsSaveDate else {}
        for prepare in preparations:
            yield prepare(session, chunk)
        view.announceFlags(session, infos)
        toSee = []
        for info in infos:
            seq = seqs.get(info.uid)
            if seq is None:
                continue
            text = plan.line(seq, info, info.uid in recent, structures)
            if text is not None:
                session.sendUntagged(text)
                continue
            try:
                if located is not None:
                    opener = functools.partial(mailbox.openMessage, info.uid, locations[info.uid])
                else:
                    opener = functools.partial(mailbox.openMessage, info.uid)
                chunks = plan.render(info, opener,
                                     recent=info.uid in recent, markSeen=writable,
                                     saveDate=saveDates.get(info.uid), structures=structures)
            except StoreError:
                expunged = True  # removed from disk meanwhile
                continue
            except UnknownTransferEncoding as e:
                raise no("[UNKNOWN-CTE] Cannot decode a %s part" % (e,)) from None
            if plan.setsSeen and writable and "\\Seen" not in info.flags:
                toSee.append(info.uid)
            head = b"* %d FETCH " % (seq,)
            if len(chunks) == 1 and isinstance(chunks[0], bytes):
                session.sendLine(head + chunks[0])
            else:
                session.flush()
                yield streamTo(session.transport, [head] + chunks + [b"\r\n"])
        if toSee:
            changed, _failed = yield callDurably(mailbox, "setFlags", toSee, ["\\Seen"], "+")
            view.noteOwnChanges(changed)
        if len(uids) > COOPERATE_ABOVE and start + BATCH < len(uids):
            session.flush()
            yield task.deferLater(session.reactor, 0, lambda: None)
    if expunged:
        return ("OK", "[EXPUNGEISSUED] FETCH completed; some messages were expunged meanwhile")


@implementer(IPullProducer)
class _BlockProducer:
    """
    Writes blocks from a generator each time the transport asks for more,
    so that a large body is sent with constant memory.
    """

    def __init__(self, transport, blocks, done):
        self.transport = transport
        self.blocks = blocks
        self.done = done

    def resumeProducing(self):
        try:
            block = next(self.blocks)
        except StopIteration:
            self.transport.unregisterProducer()
            self.done.callback(None)
            return
        except Exception:
            self.transport.unregisterProducer()
            self.done.errback()
            return
        self.transport.write(block)

    def stopProducing(self):
        self.blocks.close()
        if not self.done.called:
            self.done.errback(ConnectionDone("connection closed while streaming"))


def streamTo(transport, chunks):
    """
    Write rendered FETCH chunks (bytes and file ranges) to C{transport}.

    @return: a C{Deferred} that fires when everything was written.
    """
    from gateway.imap.message import streamChunks

    done = defer.Deferred()
    transport.registerProducer(_BlockProducer(transport, streamChunks(chunks), done), False)
    return done


@command("FETCH", SEL, expungeAllowed=False)
def do_FETCH(session, tag, args):
    return _fetch(session, tag, args, uid=False)


@command("UID FETCH", SEL)
def do_UID_FETCH(session, tag, args):
    return _fetch(session, tag, args, uid=True)


# -- STORE -------------------------------------------------------------------------------

_STORE_ITEM = re.compile(r"^([+-]?)([A-Z0-9.]+?)(\.SILENT)?$", re.I)


def _store(session, tag, args, uid):
    sequenceSet = sequenceArgument(args)
    args.space()
    unchangedSince = None
    if args.peek() == b"(":
        modifiers = args.parenList()
        if len(modifiers) != 2 or str(modifiers[0]).upper() != "UNCHANGEDSINCE" \
                or not str(modifiers[1]).isdigit():
            raise bad("Unsupported STORE modifier")
        unchangedSince = int(modifiers[1])
        session.enableCondstore()
        args.space()
    match = _STORE_ITEM.match(args.atom())
    row = None if match is None else registries(session).store.get(match.group(2))
    if row is None or (match.group(1) or "=") not in row.modes:
        raise bad("STORE takes FLAGS, +FLAGS or -FLAGS")
    args.space()
    return row.handler(session, args, uid, sequenceSet, unchangedSince, match.group(1) or "=",
                       bool(match.group(3)))


def storeFlags(session, args, uid, sequenceSet, unchangedSince, mode, silent):
    """
    The FLAGS row of the STORE registry: C{[+-]FLAGS[.SILENT] flags}.
    """
    if args.peek() == b"(":
        flags = args.parenList()
    else:
        flags = [args.atom()]
        while not args.atEnd():
            args.space()
            flags.append(args.atom())
    args.end()
    if badFlags(flags):
        raise bad("Invalid flag %s" % (str(badFlags(flags)[0])[:40],))
    flags = [f for f in flags if f.lower() != "\\recent"]
    checkWritable(session)
    view = session.view
    uids = targetUids(session, sequenceSet, uid)
    mailbox = view.mailbox
    condstore = "CONDSTORE" in session.enabled or unchangedSince is not None
    failedAll = []

    # With QRESYNC the client knows messages by UID (RFC 7162 3.2.4).
    withUid = uid or "QRESYNC" in session.enabled

    def report(chunk, changed, failed):
        view.noteOwnChanges(changed)
        failedAll.extend(failed)
        shown = changed if silent else _afterStore(mailbox, chunk, changed, failed)
        view.announceFlags(session, shown)
        if silent and not condstore:
            return
        for info in shown:
            if info.uid in failed:
                continue
            seq = view.seqOf(info.uid)
            if seq is None:
                continue
            parts = []
            if withUid:
                parts.append(b"UID %d" % (info.uid,))
            if not silent:
                parts.append(b"FLAGS " + flagList(info.flags, info.uid in view.recent))
            if condstore:
                parts.append(b"MODSEQ (%d)" % (info.modseq,))
            session.sendUntagged(b"%d FETCH (%s)" % (seq, b" ".join(parts)))

    @defer.inlineCallbacks
    def run():
        # One durable write per batch; its FETCH responses once it is.
        for start in range(0, len(uids), BATCH):
            chunk = uids[start:start + BATCH]
            changed, failed = yield callDurably(mailbox, "setFlags", chunk, flags, mode, unchangedSince)
            report(chunk, changed, failed)
            session.flush()

    def done(_):
        if failedAll:
            if uid:
                modified = formatSequenceSet(failedAll)
            else:
                modified = formatSequenceSet(view.seqOf(u) for u in failedAll)
            return ("OK", "[MODIFIED %s] Conditional STORE failed for some messages" % (modified,))
        return None
    return run().addCallback(done)


def _afterStore(mailbox, uids, changed, failed):
    """
    The messages C{uids} as a STORE leaves them, for its FETCH responses:
    those it changed as the store gave them back (the state right after
    the change), the others (whose flags were already so) read, without
    their header blocks; in UID order.
    """
    have = {info.uid for info in changed}
    skipped = set(failed)
    rest = [uid for uid in uids if uid not in have and uid not in skipped]
    if not rest:
        return changed
    return sorted(list(changed) + list(mailbox.messages(rest, headers=False)), key=lambda info: info.uid)


@command("STORE", SEL, expungeAllowed=False)
def do_STORE(session, tag, args):
    return _store(session, tag, args, uid=False)


@command("UID STORE", SEL)
def do_UID_STORE(session, tag, args):
    return _store(session, tag, args, uid=True)


# -- COPY / MOVE -------------------------------------------------------------------------


def _transfer(session, tag, args, uid, move):
    sequenceSet = sequenceArgument(args)
    args.space()
    name = nameArgument(args, new=True)
    args.end()
    if move:
        checkWritable(session)
    view = session.view
    uids = targetUids(session, sequenceSet, uid)
    destination = openTarget(session, name)
    if not uids:
        return None
    return transferLater(view.mailbox, uids, destination, move).addCallbacks(
        _transferred, _transferFailed, callbackArgs=(session, destination, move))


def _transferFailed(failure):
    if failure.check(QuotaExceeded):
        raise no("[OVERQUOTA] Storage quota exceeded")
    if failure.check(StoreError):
        raise storeError(failure.value)
    return failure


def _transferred(pairs, session, destination, move):
    if not pairs:
        return None
    code = "[COPYUID %d %s %s]" % (destination.uidValidity, formatSequenceSet(p[0] for p in pairs),
                                   formatSequenceSet(p[1] for p in pairs))
    verb = "MOVE" if move else "COPY"
    if move:
        session.sendUntagged(b"OK " + code.encode("ascii") + b" Moved")
        return ("OK", "%s completed" % (verb,))
    return ("OK", "%s %s completed" % (code, verb))


@command("COPY", SEL)
def do_COPY(session, tag, args):
    return _transfer(session, tag, args, uid=False, move=False)


@command("UID COPY", SEL)
def do_UID_COPY(session, tag, args):
    return _transfer(session, tag, args, uid=True, move=False)


@command("MOVE", SEL, capability="MOVE")
def do_MOVE(session, tag, args):
    return _transfer(session, tag, args, uid=False, move=True)


@command("UID MOVE", SEL, capability="MOVE")
def do_UID_MOVE(session, tag, args):
    return _transfer(session, tag, args, uid=True, move=True)


# -- SEARCH ------------------------------------------------------------------------------


def parseSearchProgram(session, text, charset=None):
    """
    The L{gateway.imap.search.SearchProgram} of a SEARCH-like command's
    search program C{text} (in C{charset} unless it names one); a MODSEQ
    key enables CONDSTORE.

    @return: C{(program, wantsModSeq)}.
    """
    try:
        program = searchModule.parseSearch(text, charset, session.view.saved,
                                           registry=registries(session).search, context=session)
    except searchModule.SearchCharsetError as e:
        raise no("[BADCHARSET (UTF-8 US-ASCII)] %s" % (e,)) from None
    except ValueError as e:
        raise IMAPSyntaxError("bad SEARCH: %s" % (e,)) from None
    wantsModSeq = _SEARCH_MODSEQ.search(text) is not None
    if wantsModSeq:
        session.enableCondstore()
    return program, wantsModSeq


def matchingMessages(session, program):
    """
    The messages of the session's view that match C{program}: the index
    answers what it can, the rest is matched message by message (in
    batches, cooperatively for many).

    @return: a C{Deferred} firing with the ascending C{list} of C{(uid,
        modseq)} that match.
    """
    mailbox = session.view.mailbox
    if not hasRight(mailbox, "r"):
        # Checked here too: ALL and the keys SORT keeps read no message.
        raise PermissionDenied("reading %s" % (mailbox.name,))
    if program.preparations:
        # Keys that need an asynchronous answer first (XOVERLAPS).
        d = defer.succeed(None)
        for prepare in program.preparations:
            d.addCallback(lambda _, prepare=prepare: prepare())
        return d.addCallback(lambda _: _matching(session, program))
    return _matching(session, program)


def _matching(session, program):
    view = session.view
    mailbox = view.mailbox
    maxSeq, maxUid = len(view.uids), view.maxUid()
    if program.matchesAll:
        # ALL: the view's messages, without reading the index (modseqs
        # matter only to a program with a MODSEQ key).
        return defer.succeed([(uid, 0) for uid in view.uids])
    if program.term is None:
        candidates = list(view.uids)
    else:
        hits = mailbox.search(program.term)
        known = view.sequenceNumbers([hit[0] for hit in hits])
        hits = [hit for hit in hits if hit[0] in known]
        if program.rest is None:
            return defer.succeed(hits)
        candidates = [hit[0] for hit in hits]
    found = []

    def batch(chunk):
        seqs = view.sequenceNumbers(chunk)
        saveDates = mailbox.saveDates(chunk) if program.rest.needsSaveDate else {}
        for info in mailbox.messages(chunk, headers=program.rest.needsHeaders):
            seq = seqs.get(info.uid)
            if seq is None:
                continue
            try:
                matched = program.matchesRest(seq, info, maxSeq, maxUid, lambda u=info.uid: mailbox.openMessage(u),
                                              recent=info.uid in view.recent, saveDate=saveDates.get(info.uid))
            except NoSuchMessage:
                # Expunged since the index was read, or being expunged by
                # another process (its file is unlinked before its row
                # goes, in one transaction): the command ends with
                # EXPUNGEISSUED (expungeIssued).
                view.unreadable = True
                continue
            if matched:
                found.append((info.uid, info.modseq))
    d = runBatches(session, candidates, batch)
    if d is None:
        return defer.succeed(found)
    return d.addCallback(lambda _: found)


_SAVES = re.compile(rb"^RETURN \([^)]*\bSAVE\b", re.I)


def _search(session, tag, args, uid):
    text = args.restBytes()
    view = session.view
    try:
        program, wantsModSeq = parseSearchProgram(session, text)
        checkSearchCharset(session, program)
    except Exception:
        if _SAVES.search(text):
            view.saved = frozenset()  # RFC 5182 2.1: a failed SAVE empties $
        raise

    update = program.returnOptions is not None and "UPDATE" in program.returnOptions
    if update:
        contextModule.checkTag(session, tag)

    def done(hits):
        answer(hits)
        if update:
            contextModule.start(session, tag, uid, program, [hit[0] for hit in hits])

    def answer(hits):
        options = program.returnOptions
        if options is not None and set(options) & set(contextModule.RETURN_OPTIONS):
            options = contextModule.resultOptions(options)
        if options is not None and "SAVE" in options:
            options = set(options)
            saved = hits
            if not options & {"ALL", "COUNT"} and options & {"MIN", "MAX"}:
                saved = hits[:1] * ("MIN" in options) + hits[-1:] * ("MAX" in options)
            view.saved = frozenset(hit[0] for hit in saved)
            options.discard("SAVE")
            if not options:
                return None
        if uid:
            found = [hit[0] for hit in hits]
        else:
            seqs = view.sequenceNumbers([hit[0] for hit in hits])
            found = [seqs[hit[0]] for hit in hits]
        if options is None and not isRev2(session):
            suffix = b" (MODSEQ %d)" % (max(hit[1] for hit in hits),) if wantsModSeq and hits else b""
            session.sendUntagged(b"SEARCH" + b"".join(b" %d" % (n,) for n in found) + suffix)
            return None
        # IMAP4rev2: SEARCH without RETURN is RETURN (ALL) (RFC 9051 6.4.4).
        options = set(options or ()) or {"ALL"}
        parts = esearchParts(tag, uid, found, options, program.partial, formatSequenceSet)
        if found and wantsModSeq:
            parts.append(b"MODSEQ %d" % (esearchModSeq(hits, options),))
        session.sendUntagged(b"ESEARCH " + b" ".join(parts))
        return None
    return matchingMessages(session, program).addCallback(done).addCallback(expungeIssued, session, "SEARCH")


def expungeIssued(result, session, name):
    """
    The tagged answer of a SEARCH, SORT or THREAD (C{name}) that found
    C{result}: C{OK [EXPUNGEISSUED]} when a message of the session's view
    was expunged meanwhile (RFC 5530; RFC 2180 4.1), since whether it
    matched could not be told.
    """
    if result is None and session.view is not None and session.view.expungedMeanwhile():
        return ("OK", "[EXPUNGEISSUED] %s completed; some messages were expunged meanwhile" % (name,))
    return result


def esearchModSeq(hits, options):
    """
    The MODSEQ of an ESEARCH response (RFC 7162 3.1.5): the highest
    mod-sequence of the messages it returns, which for MIN and MAX alone
    are those two messages, not every match.

    @param hits: the non-empty ascending C{(uid, modseq)} list found.
    """
    if options & {"ALL", "COUNT", "PARTIAL"}:
        return max(hit[1] for hit in hits)
    returned = []
    if "MIN" in options:
        returned.append(hits[0][1])
    if "MAX" in options:
        returned.append(hits[-1][1])
    return max(returned)


@command("SEARCH", SEL, expungeAllowed=False)
def do_SEARCH(session, tag, args):
    return _search(session, tag, args, uid=False)


@command("UID SEARCH", SEL)
def do_UID_SEARCH(session, tag, args):
    return _search(session, tag, args, uid=True)


# -- IDLE --------------------------------------------------------------------------------


@command("IDLE", AUTH, capability="IDLE")
def do_IDLE(session, tag, args):
    args.end()
    done = defer.Deferred()
    session.idling = True

    def line(text):
        if text.upper() == b"DONE":
            session.idling = False
            done.callback(("OK", "IDLE terminated"))
        else:
            session.sendUntagged(b"BAD Expected DONE")
    session.setLineHandler(line)
    session.sendContinuation(b"idling")
    if session.view is not None:
        def synced(_):
            if session.idling and session.view is not None:
                session.view.sendUpdates(session, expunge=True)
                session.flush()
        session.view.mailbox.synchronize().addCallback(synced)
    return done
