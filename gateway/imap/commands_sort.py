# -*- test-case-name: tests.test_imap_sort -*-
"""
SORT and UID SORT (RFC 5256, with RFC 5957's DISPLAYFROM/DISPLAYTO and RFC
5267's ESORT RETURN options), THREAD and UID THREAD (RFC 5256
ORDEREDSUBJECT and REFERENCES).

The messages are those a search program matches (as SEARCH finds them);
their sort keys and thread headers come from the index, in batches, never
from the message files.
"""

import array
import hashlib

from twisted.internet import defer

from gateway.errors import StoreError
from gateway.imap import context as contextModule
from gateway.imap import sort as sortModule
from gateway.imap import thread as threadModule
from gateway.imap.commands_selected import expungeIssued, matchingMessages, parseSearchProgram, runBatches
from gateway.imap.message import headersComplete
from gateway.imap.parser import IMAPSyntaxError
from gateway.imap.protocol import SEL, capability, command, no
from gateway.imap.results import esearchParts, formatOrdered, parseReturnOptions
from gateway.imap.search import SUPPORTED_CHARSETS

capability("SORT")
capability("SORT=DISPLAY")
capability("ESORT")
for _name in threadModule.ALGORITHMS:
    capability("THREAD=" + _name)

_ESORT_OPTIONS = ("MIN", "MAX", "ALL", "COUNT", "SAVE") + contextModule.RETURN_OPTIONS


def _charset(args):
    args.space()
    charset = args.astring().decode("ascii", "replace").upper()
    if charset not in SUPPORTED_CHARSETS:
        raise no("[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset %s" % (charset[:20],))
    return charset


def _returnOptions(args):
    """
    ESORT's C{RETURN (...)} if it comes next (C{(None, None)} otherwise):
    a C{set} of upper-case options (C{{"ALL"}} for an empty list) and the
    PARTIAL range or C{None}.
    """
    if args.data[args.pos:args.pos + 7].upper() != b"RETURN ":
        return None, None
    args.atom()
    args.space()
    try:
        options, partial = parseReturnOptions(args.parenList(), _ESORT_OPTIONS)
    except ValueError as e:
        raise IMAPSyntaxError(str(e)) from None
    args.space()
    return set(options), partial


def _program(session, args, charset):
    text = args.restBytes()
    if not text.strip():
        raise IMAPSyntaxError("missing search criteria")
    program, wantsModSeq = parseSearchProgram(session, text, charset)
    if program.returnOptions is not None:
        raise IMAPSyntaxError("RETURN goes before the sort criteria")
    return program, wantsModSeq


def _computeKeys(session, hits, names, compute, needsHeaders):
    """
    Make sure the process's L{sort.keyCache} holds keys C{names} of every
    message of C{hits}: C{compute(name, info)} for those it lacks, read
    from the index in batches.

    @return: C{(caches, d)}: C{{name: {uid: value}}}, and C{None} when
        every key was kept already, or a C{Deferred} that fires when they
        are filled (messages gone from the index meanwhile have none).
    """
    mailbox = session.view.mailbox
    caches = {name: sortModule.keyCache.values(mailbox, name) for name in names}
    missing = None
    for cache in caches.values():
        lacking = [hit[0] for hit in hits if hit[0] not in cache]
        missing = lacking if missing is None else sorted(set(missing).union(lacking))
    if not missing:
        return caches, None

    def batch(chunk):
        for info in mailbox.messages(chunk, headers=needsHeaders):
            if needsHeaders and not headersComplete(info):
                info = _WholeHeader(info, mailbox)
            for name, cache in caches.items():
                cache[info.uid] = compute(name, info)
    d = runBatches(session, missing, batch)
    # Not None: the caller drops the hits expunged before their keys were read.
    return caches, d if d is not None else defer.succeed(None)


#: The most of a message file read for a header block the index cut.
HEADER_LIMIT = 16 * 1024 * 1024


class _WholeHeader:
    """
    An L{gateway.interfaces.IMessageInfo} whose header block the index
    kept only in part (over-long headers): the same, with the whole block
    read from the message file (at most L{HEADER_LIMIT} octets).
    """

    def __init__(self, info, mailbox):
        self.uid, self.flags, self.size, self.modseq = info.uid, info.flags, info.size, info.modseq
        self.internalDate = info.internalDate
        self.headers = info.headers
        try:
            f = mailbox.openMessage(info.uid)
        except StoreError:
            return
        try:
            data = bytearray()
            while len(data) < HEADER_LIMIT:
                block = f.read(65536)
                if not block:
                    break
                start = max(0, len(data) - 3)
                data += block
                end = data.find(b"\r\n\r\n", start)
                if end != -1:
                    del data[end + 4:]
                    break
            self.headers = bytes(data)
        finally:
            f.close()


def _withKeys(session, hits, names, compute, needsHeaders, use):
    """
    C{use(hits, caches, numbers)} once the keys are known, for the hits
    still in the index; C{numbers} maps each UID of the view to its
    sequence number.
    """
    caches, d = _computeKeys(session, hits, names, compute, needsHeaders)

    def ready(_):
        present = hits
        if d is not None:
            present = [hit for hit in hits if all(hit[0] in cache for cache in caches.values())]
        view = session.view
        return use(present, caches, dict(zip(view.uids, range(1, len(view.uids) + 1), strict=True)))
    if d is None:
        return ready(None)
    return d.addCallback(ready)


def _sort(session, tag, args, uid):
    args.space()
    options, partial = _returnOptions(args)
    criteria = args.parenList()
    try:
        criteria = sortModule.parseCriteria(criteria)
    except ValueError as e:
        raise IMAPSyntaxError("bad sort criteria: %s" % (e,)) from None
    charset = _charset(args)
    program, wantsModSeq = _program(session, args, charset)
    needsHeaders = sortModule.needsHeaders(criteria)
    names = {c.key for c in criteria}
    update = options is not None and "UPDATE" in options
    if update:
        contextModule.checkTag(session, tag)
        options = contextModule.resultOptions(options)
    elif options is not None and options & set(contextModule.RETURN_OPTIONS):
        options = contextModule.resultOptions(options)

    def compute(name, info):
        return sortModule.sortKeyValue(sortModule.SortCriterion(name), info)

    def sortRecords(hits, caches, seqs):
        def order(name):
            # Not when the cache let these keys go meanwhile (other mailboxes sorted).
            mailbox = session.view.mailbox
            if sortModule.keyCache.values(mailbox, name) is caches[name]:
                return sortModule.keyCache.order(mailbox, name)
            return None
        uids = sortModule.sortUids([hit[0] for hit in hits], criteria, caches, order)
        numbers = uids if uid else [seqs[uid_] for uid_ in uids]
        if options is None:
            suffix = b" (MODSEQ %d)" % (max(hit[1] for hit in hits),) if wantsModSeq and hits else b""
            session.sendUntagged(b" ".join([b"SORT"] + [b"%d" % (n,) for n in numbers]) + suffix)
            return None
        modseqs = dict(hits)
        answer([(n, modseqs[uid_], None, uid_) for n, uid_ in zip(numbers, uids, strict=True)])
        if update:
            contextModule.start(session, tag, uid, program, uids,
                                order=[([caches[c.key][uid_] for c in criteria], uid_) for uid_ in uids],
                                sortValues=lambda uids: _sortValues(session, uids, criteria, needsHeaders),
                                reverses=[c.reverse for c in criteria])
        return None

    def answer(records):
        """
        The ESORT answer for C{records}: C{(number, modseq, None, uid)} in
        sort order.
        """
        numbers = [r[0] for r in records]
        if "SAVE" in options:
            # RFC 5182 with RFC 5267: MIN/MAX alone save those messages.
            saved = records
            if not options & {"ALL", "COUNT"} and options & {"MIN", "MAX"}:
                saved = records[:1] * ("MIN" in options) + records[-1:] * ("MAX" in options)
            session.view.saved = frozenset(r[3] for r in saved)
            if options == {"SAVE"} and partial is None:
                return None
        parts = esearchParts(tag, uid, numbers, options, partial, formatOrdered)
        if numbers and wantsModSeq:
            returned = records if options & {"ALL", "COUNT", "PARTIAL"} else (
                [records[0]] * ("MIN" in options) + [records[-1]] * ("MAX" in options))
            parts.append(b"MODSEQ %d" % (max(r[1] for r in returned),))
        session.sendUntagged(b"ESEARCH " + b" ".join(parts))
        return None

    d = matchingMessages(session, program)
    d.addCallback(lambda hits: _withKeys(session, hits, names, compute, needsHeaders, sortRecords))
    return d.addCallback(expungeIssued, session, "SORT")


def _sortValues(session, uids, criteria, needsHeaders):
    """
    C{{uid: [value per criterion]}} of the messages C{uids}, read from the
    index now (a context's new messages, L{contextModule.start}).
    """
    mailbox = session.view.mailbox
    values = {}
    for info in mailbox.messages(sorted(uids), headers=needsHeaders):
        if needsHeaders and not headersComplete(info):
            info = _WholeHeader(info, mailbox)
        values[info.uid] = [sortModule.sortKeyValue(sortModule.SortCriterion(c.key), info) for c in criteria]
    return values


@command("SORT", SEL, capability="SORT", expungeAllowed=False)
def do_SORT(session, tag, args):
    return _sort(session, tag, args, uid=False)


@command("UID SORT", SEL, capability="SORT")
def do_UID_SORT(session, tag, args):
    return _sort(session, tag, args, uid=True)


def _thread(session, tag, args, uid):
    args.space()
    algorithm = args.atom().upper()
    if algorithm not in threadModule.ALGORITHMS:
        raise IMAPSyntaxError("unknown threading algorithm")
    charset = _charset(args)
    program, _wantsModSeq = _program(session, args, charset)

    def compute(name, info):
        return threadModule.threadFields(info)

    def done(hits, caches, seqs):
        # A message's thread fields never change while its UID lives: the
        # same messages with the same numbers thread the same way, so the
        # answer is kept beside the keys (as Dovecot keeps a thread index).
        kept = sortModule.keyCache.values(session.view.mailbox, (THREADED, algorithm))
        digest = _threadDigest(hits, uid, seqs)
        text = kept.get(digest)
        if text is None:
            cache = caches["THREAD"]
            messages = [threadModule.ThreadMessage(uid_ if uid else seqs[uid_], seqs[uid_], *cache[uid_])
                        for uid_, _modseq in hits]
            if algorithm == "REFERENCES":
                roots = threadModule.references(messages)
            else:
                roots = threadModule.orderedSubject(messages)
            text = threadModule.formatThreads(roots)
            kept.clear()
            kept[digest] = text
        session.sendUntagged(b"THREAD" + (b" " + text if text else b""))
        return None

    d = matchingMessages(session, program)
    d.addCallback(lambda hits: _withKeys(session, hits, ["THREAD"], compute, True, done))
    return d.addCallback(expungeIssued, session, "THREAD")


#: The name under which the key cache keeps the last THREAD answer of an
#: algorithm (with C{(THREADED, algorithm)}).
THREADED = "THREAD answer"


def _threadDigest(hits, uid, seqs):
    """
    What a THREAD answer depends on besides the algorithm: the messages
    threaded and the numbers they are given (UIDs, or sequence numbers).
    """
    data = array.array("Q", [hit[0] for hit in hits])
    data.append(1 if uid else 0)
    if not uid:
        data.extend(seqs[hit[0]] for hit in hits)
    return hashlib.blake2b(data.tobytes(), digest_size=16).digest()


@command("THREAD", SEL, capability="THREAD=REFERENCES", expungeAllowed=False)
def do_THREAD(session, tag, args):
    return _thread(session, tag, args, uid=False)


@command("UID THREAD", SEL, capability="THREAD=REFERENCES")
def do_UID_THREAD(session, tag, args):
    return _thread(session, tag, args, uid=True)
