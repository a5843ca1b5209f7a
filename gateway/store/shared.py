# -*- test-case-name: tests.test_access -*-
"""
Another account's mailbox as a viewer uses it (L{SharedMailbox}, which
checks the viewer's RFC 4314 rights on every operation), and COPY/MOVE
between any two mailboxes a viewer opened (L{transfer}, L{transferLater}).
Split from L{gateway.store.access}, which hands these mailboxes out.
"""

import attr
from twisted.internet.defer import fail, maybeDeferred, succeed
from zope.interface import implementer

from gateway.errors import NoSuchMailbox, PermissionDenied, StoreError
from gateway.interfaces import IMailbox
from gateway.store import properties, userflags
from gateway.store.acl import ALL_RIGHTS

_FLAG_RIGHTS = {"\\seen": "s", "\\deleted": "t"}


def flagRight(flag):
    """
    The right that setting or clearing C{flag} needs: C{s} for C{\\Seen},
    C{t} for C{\\Deleted}, C{w} for any other flag or keyword.
    """
    return _FLAG_RIGHTS.get(flag.lower(), "w")


def allowedFlags(flags, rights):
    return [flag for flag in flags if flagRight(flag) in rights]


class Location:
    """
    Where a name points: C{owner} (address) and C{name} (canonical, in
    the owner's store).
    """

    __slots__ = ("owner", "name")

    def __init__(self, owner, name):
        self.owner = owner
        self.name = name

    def __repr__(self):
        return "<Location %s %r>" % (self.owner, self.name)


def check(rights, needed, name):
    """
    Raise unless C{rights} hold every right in C{needed}: L{PermissionDenied}
    when the viewer may see mailbox C{name} (C{l}), else L{NoSuchMailbox}.
    """
    missing = [right for right in needed if right not in rights]
    if not missing:
        return
    if "l" in rights:
        raise PermissionDenied("missing right %s on %s" % ("".join(missing), name))
    raise NoSuchMailbox(name)


@implementer(IMailbox)
class SharedMailbox:
    """
    Another account's mailbox as a viewer uses it: the owner's L{IMailbox}
    (shared, so changes reach every session at once) behind a check of the
    viewer's rights on each operation.  Flags the viewer may not change are
    dropped silently (RFC 4314 4).
    """

    def __init__(self, mailbox, access, location):
        self._mailbox = mailbox
        self._access = access
        self._location = location

    #: What passes to the owner's mailbox unchecked: what a viewer who may
    #: see the mailbox may know of it.  Everything else is a method of this
    #: class that checks rights, or is not there: a new mailbox method is
    #: refused to viewers until it is wrapped here.
    _UNCHECKED = frozenset(["mailboxClass", "specialUse", "uidValidity", "uidNext", "highestModSeq", "uids",
                            "uidSnapshot", "uidState", "claimRecent", "unclaimedRecent", "addListener", "synchronize",
                            "mailboxId", "mailboxIdLater", "contentKey"])

    def __getattr__(self, name):
        if name in SharedMailbox._UNCHECKED:
            return getattr(self._mailbox, name)
        if name.startswith("_"):
            # The owner's mailbox's internals, for the store's own helpers
            # that are handed a shared mailbox.
            return getattr(self._mailbox, name)
        raise AttributeError("%s is not available on another account's mailbox" % (name,))

    def __repr__(self):
        return "<SharedMailbox %r of %s>" % (self._location.name, self._location.owner)

    @property
    def owner(self):
        return self._location.owner

    @property
    def name(self):
        return self._access.nameOf(Location(self._location.owner, self._mailbox.name))

    def rights(self):
        return self._access.layer.rightsOf(self._access.viewer,
                                           Location(self._location.owner, self._mailbox.name))

    def _need(self, needed):
        check(self.rights(), needed, self.name)

    @property
    def _viewer(self):
        return self._access.viewer

    # -- reading, with the viewer's own \\Seen ---------------------------------

    def messages(self, uids, headers=True):
        self._need("r")
        return userflags.personalize(self._mailbox, self._viewer, self._mailbox.messages(uids, headers), own=True)

    def changesSince(self, modseq):
        expunged, changed, highest = self._mailbox.changesSince(modseq)
        return expunged, userflags.personalize(self._mailbox, self._viewer, changed), highest

    def counts(self):
        counts = self._mailbox.counts()
        return attr.evolve(counts, unseen=userflags.unseenCount(self._mailbox, self._viewer))

    def search(self, term, limit=None):
        self._need("r")
        return userflags.search(self._mailbox, self._viewer, term, limit)

    def openMessage(self, uid):
        self._need("r")
        return self._mailbox.openMessage(uid)

    def keywords(self):
        self._need("r")
        return self._mailbox.keywords()

    def saveDates(self, uids):
        self._need("r")
        return self._mailbox.saveDates(uids)

    def storedStructures(self, uids):
        self._need("r")
        return self._mailbox.storedStructures(uids)

    # -- writing -----------------------------------------------------------------

    def appendMessage(self, source, flags=(), internalDate=None):
        rights = self.rights()
        check(rights, "i", self.name)
        flags = allowedFlags(flags, rights)
        shared = [flag for flag in flags if flag.lower() != "\\seen"]
        uid = self._mailbox.appendMessage(source, shared, internalDate)
        if len(shared) != len(flags):
            userflags.setSeen(self._mailbox, self._viewer, [uid], "+")
        return uid

    def appendMessageLater(self, source, flags=(), internalDate=None):
        """
        L{appendMessage} off the reactor thread: the file written in the
        thread pool, its row by the owner's index writer.

        @return: a L{Deferred} firing with the new UID once it is durable.
        """
        return self.appendMessagesLater([(source, flags, internalDate)]).addCallback(lambda uids: uids[0])

    def appendMessagesLater(self, messages):
        """
        Several messages, all or none (MULTIAPPEND), as
        L{Mailbox.appendMessagesLater} does for the owner: in one write of
        the owner's index writer, with the viewer's own C{\\Seen}.

        @return: a L{Deferred} firing with their UIDs once durable.
        """
        try:
            rights = self.rights()
            check(rights, "i", self.name)
        except Exception:
            return fail()
        shared, finish = self._sharedFlags(rights, [flags for _source, flags, _date in messages])
        return self._mailbox.appendMessagesLater(
            [(source, flags, date) for (source, _flags, date), flags in zip(messages, shared, strict=True)],
            finish)

    def _sharedFlags(self, rights, flagLists):
        """
        The flags the viewer may set, split: what goes on the messages, and
        a C{finish(uids)} for L{Mailbox.commitMessagesLater} that sets the
        viewer's own C{\\Seen} where it was asked.

        @return: C{(list of flag lists, finish)}.
        """
        shared, seen = [], []
        for flags in flagLists:
            allowed = allowedFlags(flags, rights)
            shared.append([flag for flag in allowed if flag.lower() != "\\seen"])
            seen.append(len(shared[-1]) != len(allowed))

        def finish(uids):
            mine = [uid for uid, wanted in zip(uids, seen, strict=True) if wanted]
            if mine:
                userflags.setSeen(self._mailbox, self._viewer, mine, "+")
        return shared, finish

    def setFlags(self, uids, flags, mode, unchangedSince=None):
        return self._setFlags(self.rights(), uids, flags, mode, unchangedSince)

    def setFlagsLater(self, uids, flags, mode, unchangedSince=None):
        """
        L{setFlags} by the owner's index writer (the rights are read here,
        on the calling thread).

        @return: a L{Deferred} firing with what L{setFlags} returns once
            the change is durable.
        """
        try:
            rights = self.rights()
        except Exception:
            return fail()
        return self._later(self._setFlags, rights, uids, flags, mode, unchangedSince)

    def _later(self, f, *args):
        """
        Run C{f(*args)} in the owner's store's index writer, in a group
        with the owner's sessions' writes; at once where the owner's
        mailbox has no writer (tests' stores without threads).
        """
        return _laterOn(self._mailbox, f, *args)

    def _setFlags(self, rights, uids, flags, mode, unchangedSince):
        allowed = allowedFlags(flags, rights)
        seen = any(flag.lower() == "\\seen" for flag in allowed)
        allowed = [flag for flag in allowed if flag.lower() != "\\seen"]
        changedUids, failed = set(), []
        if "s" in rights and (seen or mode == "="):
            if unchangedSince is not None:
                keep = {info.uid for info in self._mailbox.messages(uids, headers=False)
                        if info.modseq <= unchangedSince}
                failed = [uid for uid in uids if uid not in keep]
                seenTargets = sorted(keep)
            else:
                seenTargets = uids
            how = "+" if seen and mode != "-" else "-"
            changedUids.update(userflags.setSeen(self._mailbox, self._viewer, seenTargets, how))
        shareable = {"w", "t"} & rights
        if mode != "=" and allowed or mode == "=" and shareable:
            if mode != "=":
                done, skipped = self._mailbox.setFlags(uids, allowed, mode, unchangedSince)
            else:
                done, skipped = self._replaceShared(uids, allowed, rights, unchangedSince)
            changedUids.update(info.uid for info in done)
            failed.extend(u for u in skipped if u not in failed)
        check(rights, "r", self.name)
        changed = self._mailbox.messages(sorted(changedUids))
        return userflags.personalize(self._mailbox, self._viewer, changed, own=True), failed

    def _replaceShared(self, uids, allowed, rights, unchangedSince):
        """
        STORE FLAGS (replace) of the shared flags: only the kinds the viewer
        may change are replaced, the others stay as they are.
        """
        wanted = {flag.lower() for flag in allowed}
        remove = set()
        for info in self._mailbox.messages(uids, headers=False):
            remove.update(flag for flag in info.flags - userflags.PRIVATE
                          if flagRight(flag) in rights and flag.lower() not in wanted)
        changed, failed = {}, []
        for flagSet, how in ((allowed, "+"), (sorted(remove), "-")):
            if flagSet:
                done, skipped = self._mailbox.setFlags(uids, flagSet, how, unchangedSince)
                changed.update((info.uid, info) for info in done)
                failed.extend(u for u in skipped if u not in failed)
        return list(changed.values()), failed

    def expunge(self, uids=None):
        self._need("e")
        return self._mailbox.expunge(uids)

    def expungeLater(self, uids=None):
        """
        L{expunge} by the owner's index writer.

        @return: a L{Deferred} firing with the expunged UIDs once durable.
        """
        try:
            self._need("e")
        except Exception:
            return fail()
        return self._later(self._mailbox.expunge, uids)

    def copyTo(self, uids, destination):
        return transfer(self, uids, destination, move=False)

    def moveTo(self, uids, destination):
        return transfer(self, uids, destination, move=True)


def hasRight(mailbox, right):
    """
    Does the viewer who opened C{mailbox} have C{right} on it?  (Always
    for an own mailbox.)
    """
    return not isinstance(mailbox, SharedMailbox) or right in mailbox.rights()


def _unwrap(mailbox):
    return mailbox._mailbox if isinstance(mailbox, SharedMailbox) else mailbox


def transferLater(source, uids, destination, move=False):
    """
    L{transfer} so that the reactor does not wait for it: between two own
    mailboxes of one store through the store's index writer.

    @return: a L{Deferred} firing with what L{transfer} returns once the
        copies (and removals) are durable.
    """
    own = not isinstance(source, SharedMailbox) and not isinstance(destination, SharedMailbox)
    if own and getattr(source, "_store", None) is getattr(destination, "_store", None) \
            and hasattr(source, "copyToLater"):
        return source.moveToLater(uids, destination) if move else source.copyToLater(uids, destination)
    rawDestination = _unwrap(destination)
    if not hasattr(rawDestination, "commitMessagesLater") or not hasattr(_unwrap(source), "_store"):
        return maybeDeferred(transfer, source, uids, destination, move)
    return _transferAcross(source, uids, destination, move)


def _transferAcross(source, uids, destination, move):
    """
    L{transfer} into another account's mailbox (or out of one) off the
    reactor thread: the messages are read and written into the
    destination's C{tmp/} in the thread pool, then committed all together
    in one write of the destination owner's index writer (with their
    properties and the viewer's own C{\\Seen}); a MOVE then removes the
    originals by the source owner's writer.  Not atomic across the two
    indexes: a crash between the two commits leaves the copies and the
    originals, never neither.

    @return: a L{Deferred} firing with C{[(sourceUid, destinationUid)]}
        once durable.
    """
    rawSource, rawDestination = _unwrap(source), _unwrap(destination)
    try:
        if isinstance(source, SharedMailbox):
            # A MOVE is COPY, STORE \Deleted and EXPUNGE on the source (R-DEL-2).
            source._need("rte" if move else "r")
        rights = destination.rights() if isinstance(destination, SharedMailbox) else ALL_RIGHTS
        check(rights, "i", destination.name)
        infos = source.messages(uids, headers=False)
        store = rawDestination._store
        if store.quota is not None and store is not rawSource._store:
            store.quota.check(sum(info.size for info in infos))
    except Exception:
        return fail()
    if not infos:
        return succeed([])

    def prepareAll():
        # One after another, in one thread: a COPY of thousands opens
        # one file at a time.
        ready = []
        carried = properties.properties(rawSource, [info.uid for info in infos])
        try:
            for info in infos:
                try:
                    f = rawSource.openMessage(info.uid)
                except StoreError:
                    continue  # expunged meanwhile
                try:
                    prepared = rawDestination.prepareMessage(f, None, info.internalDate.timestamp())
                finally:
                    f.close()
                ready.append((info, prepared, carried.get(info.uid)))
        except BaseException:
            for _info, prepared, _found in ready:
                prepared.discard()
            raise
        return ready

    def commit(ready):
        if not ready:
            return []
        if isinstance(destination, SharedMailbox):
            flagLists, finishSeen = destination._sharedFlags(rights, [info.flags for info, _p, _f in ready])
        else:
            flagLists, finishSeen = [info.flags for info, _p, _f in ready], None

        def finish(newUids):
            if finishSeen is not None:
                finishSeen(newUids)
            for (_info, _prepared, found), uid in zip(ready, newUids, strict=True):
                properties.putProperties(rawDestination, uid, found)
        pairs = [(prepared, flags) for (_info, prepared, _found), flags in zip(ready, flagLists, strict=True)]
        d = rawDestination.commitMessagesLater(pairs, finish)
        return d.addCallback(lambda newUids: [(info.uid, uid) for (info, _p, _f), uid in
                                              zip(ready, newUids, strict=True)])

    def removeMoved(pairs):
        if not move or not pairs:
            return pairs
        moved = [pair[0] for pair in pairs]

        def remove():
            rawSource.setFlags(moved, ["\\Deleted"], "+")
            rawSource.expunge(moved)
        return _laterOn(rawSource, remove).addCallback(lambda _: pairs)
    d = rawDestination._store._deferToThread(prepareAll)
    return d.addCallback(commit).addCallback(removeMoved)


def _laterOn(mailbox, f, *args):
    """
    Run C{f(*args)} in the index writer of C{mailbox}'s store (a write
    that may make room on a full disk); at once where it has none.

    @return: a L{Deferred} firing with its result once durable.
    """
    write = getattr(getattr(mailbox, "_store", None), "_write", None)
    if write is None:
        return maybeDeferred(f, *args)
    return write(lambda conn, group: f(*args), makesRoom=True)


def transfer(source, uids, destination, move=False):
    """
    COPY or MOVE between any two mailboxes the viewer opened: between two
    own mailboxes the store's own (atomic) copy; otherwise each message is
    appended to the destination (quota charged to its owner, checked for
    the whole set first), with the flags the viewer may set there and the
    internal date, then for a move the originals are expunged.

    @return: C{[(sourceUid, destinationUid)]}.
    """
    if isinstance(source, SharedMailbox):
        # A MOVE is COPY, STORE \Deleted and EXPUNGE on the source (R-DEL-2).
        source._need("rte" if move else "r")
    if isinstance(destination, SharedMailbox):
        destination._need("i")
    rawSource, rawDestination = _unwrap(source), _unwrap(destination)
    sameStore = getattr(rawSource, "_store", None) is getattr(rawDestination, "_store", None)
    if sameStore and not isinstance(source, SharedMailbox) and not isinstance(destination, SharedMailbox):
        if move:
            return rawSource.moveTo(uids, rawDestination)
        return rawSource.copyTo(uids, rawDestination)
    infos = source.messages(uids, headers=False)
    store = getattr(rawDestination, "_store", None)
    if store is not None and store.quota is not None and not sameStore:
        store.quota.check(sum(info.size for info in infos))
    pairs = []
    for info in infos:
        try:
            f = rawSource.openMessage(info.uid)
        except StoreError:
            continue
        try:
            data = f.read()
        finally:
            f.close()
        pairs.append((info.uid, destination.appendMessage(data, info.flags, info.internalDate)))
        properties.copyAcross(rawSource, info.uid, rawDestination, pairs[-1][1])
    if move and pairs:
        moved = [pair[0] for pair in pairs]
        rawSource.setFlags(moved, ["\\Deleted"], "+")
        rawSource.expunge(moved)
    return pairs
