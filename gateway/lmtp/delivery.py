# -*- test-case-name: tests.test_lmtp_delivery -*-
"""
Local delivery: route a recipient address through the directory, then store
the message in the account's INBOX (or the mailbox its C{+detail} names).
LMTP and C{gatewayctl deliver} both come here, so they resolve names and
answer failures the same way.

The message is stored byte-exact, as the MTA handed it over, after the
envelope headers LMTP adds (L{envelopeHeaders}); the store's
C{tmp/}-then-rename delivery means a crash leaves the whole message or none.

An LMTP transaction is delivered by a L{Delivery}: one recipient at a time,
the slow part (writing or hard-linking the copy, fsync) in a worker thread
and the quick part (the index) in the reactor thread, so that no protocol
waits while a large message is stored, and each recipient's reply can go
out as soon as its copy is durable.
"""

import os
import re
import socket
import tempfile
import time
from email.parser import BytesHeaderParser
from email.policy import compat32

import attr
from twisted.internet.defer import Deferred, maybeDeferred

from gateway.errors import NoSuchMailbox, QuotaExceeded, isStorageFull
from gateway.logging import getLogger
from gateway.store import maildir

log = getLogger("lmtp")

#: Longest value of a client-given field (sender, Message-ID) in a log line.
MAX_LOGGED = 200
#: Bytes at the start of a message searched for its Message-ID.
MAX_HEADER = 64 * 1024
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")


@attr.s(frozen=True)
class Result:
    """
    The outcome for one recipient.

    @ivar code: SMTP reply code (250, 450, 452, 550, 552, ...).
    @ivar status: enhanced status code (C{"2.0.0"}).
    @ivar text: human-readable text.
    """

    code = attr.ib()
    status = attr.ib()
    text = attr.ib()

    @property
    def ok(self):
        return self.code < 300

    @property
    def temporary(self):
        return 400 <= self.code < 500


@attr.s(frozen=True)
class Recipient:
    """
    Where an address delivers: the account, and the C{+detail} of a
    sub-address (C{None} without one).
    """

    record = attr.ib()
    detail = attr.ib(default=None)


def findRecipient(directory, address):
    """
    The L{Recipient} an address delivers to, or C{None}.  Only full
    addresses are accepted (the MTA always gives one).  A sub-address
    C{user+detail@domain} that is not itself a name delivers to
    C{user@domain}, remembering the detail.
    """
    address = address.strip()
    if "@" not in address:
        return None
    record = directory.resolve(address, None)
    detail = None
    if record is None:
        local, _, domain = address.rpartition("@")
        if "+" not in local:
            return None
        local, detail = local.split("+", 1)
        record = directory.resolve("%s@%s" % (local, domain), None)
    if record is None or "lmtp" not in record.services:
        return None
    return Recipient(record, detail or None)


def _targetMailbox(store, detail):
    """
    The mailbox a detail names, when it exists and is selectable (like
    Dovecot's C{lmtp_save_to_detail_mailbox}); otherwise INBOX.
    """
    if detail:
        for info in store.listMailboxes():
            if info.name.lower() == detail.lower() and info.selectable:
                return info.name
    return "INBOX"


def envelopeHeaders(sender, recipient=None):
    """
    The header lines delivery adds at the top of a copy, as Dovecot's LMTP
    does: C{Return-Path: <sender>}, and C{Delivered-To: recipient} when the
    copy is for one recipient.

    @param sender: the MAIL FROM address (C{""} for the null sender).
    @param recipient: the RCPT TO address, or C{None}.
    @rtype: C{bytes}
    """
    lines = "Return-Path: <%s>\r\n" % (sender,)
    if recipient is not None:
        lines += "Delivered-To: %s\r\n" % (recipient,)
    return lines.encode("utf-8")


def _safe(text):
    """
    A client-given value fit for one field of a log line: no spaces or
    control characters, at most L{MAX_LOGGED} characters.
    """
    text = _UNSAFE.sub("?", text)
    if len(text) > MAX_LOGGED:
        text = text[:MAX_LOGGED] + "..."
    return text


def failureResult(exception, address=""):
    """
    The L{Result} for an exception from storing a copy: 552 over quota,
    452 for a full disk, else 451.
    """
    return _failure(exception, address)[0]


def _failure(exception, address):
    """
    The L{Result} for an exception from storing a copy, and the reason to log.
    """
    if isinstance(exception, QuotaExceeded):
        return Result(552, "5.2.2", "%s is over its storage quota" % (address,)), "quota"
    if isStorageFull(exception):
        return Result(452, "4.3.1", "insufficient system storage"), "disk full"
    return Result(451, "4.3.0", "temporary failure storing the message"), "error"


def _mailboxFor(realm, recipient, sender=None):
    """
    The mailbox a recipient's copy goes to: the one its C{+detail} names
    when it exists and the envelope sender may post into it (the C{p}
    right, through the access layer), else INBOX.

    @return: C{(account, mailbox)}: whoever writes to the mailbox holds the
        account until done, for the realm closes an account's store once
        nothing holds the account (when it is not among those kept idle).
    """
    return _mailboxIn(realm, realm.accountFor(recipient.record.address), recipient, sender)


def _accountLater(realm, recipient):
    """
    A L{Deferred} of the recipient's account, whose mail store (when the
    realm does not hold it yet) opens off the reactor thread
    (L{gateway.cred.realm.GatewayRealm.accountForLater}).
    """
    later = getattr(realm, "accountForLater", None)
    if later is None:
        return maybeDeferred(realm.accountFor, recipient.record.address)
    return later(recipient.record.address)


def _mailboxIn(realm, account, recipient, sender=None):
    """
    L{_mailboxFor} in C{account}, the recipient's.
    """
    address = recipient.record.address
    store = account.mailStore
    name = _targetMailbox(store, recipient.detail)
    if name != "INBOX":
        try:
            return account, realm.access.deliveryTarget(sender, address, name)
        except NoSuchMailbox:
            pass  # no 'p' for this sender: INBOX, as for an unknown detail
    return account, store.getMailbox("INBOX")


def deliver(realm, recipient, data, sender=None):
    """
    Store C{data} in the account of C{recipient}: in the mailbox its
    C{+detail} names if there is one, else in INBOX.  (Synchronous: for
    C{gatewayctl deliver}.)  A first line C{"From sender date"} (an mbox
    envelope line) is dropped.

    @return: a L{Result}; never raises for a delivery problem.
    """
    address = recipient.record.address
    if data.startswith(b"From "):
        # The mbox envelope line Postfix's local(8) puts before a message it
        # gives to a mailbox_command: not part of the message (Dovecot's LDA
        # drops it too).
        data = data[data.find(b"\n") + 1:] if b"\n" in data else b""
    mailbox = None
    try:
        # The account is held (a local) until the message is stored.
        account, mailbox = _mailboxFor(realm, recipient, sender)
        uid = mailbox.appendMessage(data)
    except Exception as e:
        result, reason = _failure(e, address)
        if reason == "error":
            log.failure("delivery failed: to={to}", to=address)
        else:
            log.info("delivery refused: to={to} reason={reason}", to=address, reason=reason)
        return result
    log.info("delivered: to={to} mailbox={mailbox} uid={uid} size={size}",
             to=address, mailbox=mailbox.name, uid=uid, size=len(data))
    return Result(250, "2.0.0", "delivered to %s" % (address,))


class Spool:
    """
    The message of one LMTP transaction, as it arrives: one file in the
    spool folder (in the data root, so that copies can be hard links to it),
    never the whole message in memory.

    The file starts with C{prefix}, the envelope headers when every
    recipient gets the same copy; otherwise each copy is its own envelope
    headers followed by this file.

    @ivar path: the file.
    @ivar size: bytes of the message written so far (without the prefix).
    @ivar measure: the file's L{maildir.Measure}, once L{finish}ed.
    @ivar messageId: the Message-ID header's value (or C{None}), once
        L{finish}ed.
    """

    def __init__(self, folder, prefix=b""):
        os.makedirs(folder, exist_ok=True)
        self.prefix = prefix
        self.size = 0
        self.measure = None
        self.messageId = None
        fd, self.path = tempfile.mkstemp(prefix=_spoolPrefix(), dir=folder)
        self._file = os.fdopen(fd, "wb", buffering=maildir.CHUNK)
        self._file.write(prefix)

    def write(self, data):
        """
        Add bytes of the message.
        """
        self.size += len(data)
        self._file.write(data)

    def finish(self, linked=True):
        """
        Close the file and find its Message-ID; if copies are to be
        C{linked} to it, make it durable and measure it first.  (In a worker
        thread.)
        """
        self._file.flush()
        if linked:
            os.fsync(self._file.fileno())
        self._file.close()
        if linked:
            self.measure = maildir.measureFile(self.path)
        with open(self.path, "rb") as f:
            f.seek(len(self.prefix))
            self.messageId = _messageId(f.read(MAX_HEADER))

    def discard(self):
        if not self._file.closed:
            self._file.close()
        maildir.removeQuietly(self.path)

    def copyFor(self, recipientPrefix):
        """
        A file object reading one recipient's copy: C{recipientPrefix}, then
        the spool file.
        """
        return _Chain(recipientPrefix, open(self.path, "rb"))


#: Spool files of another host (a shared data root) older than this are
#: left-overs of a crash.
SPOOL_MAX_AGE = 36 * 3600


def _spoolPrefix(pid=None):
    """
    The start of this process's spool file names: the host and the
    process, so that L{cleanSpool} can tell whose files are left-overs.
    """
    host = socket.gethostname().replace("-", "_").replace("/", "_") or "localhost"
    return "lmtp-%s-%d-" % (host, os.getpid() if pid is None else pid)


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanSpool(folder, now=None):
    """
    Remove left-overs of a crash from the spool: files of this host whose
    process is gone, and any file older than L{SPOOL_MAX_AGE}.  (The MTA
    has had no reply for those messages and sends them again.)
    """
    now = time.time() if now is None else now
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    host = _spoolPrefix(0)[:-2]
    for name in names:
        path = os.path.join(folder, name)
        pid = name[len(host):].partition("-")[0] if name.startswith(host) else ""
        try:
            if (pid.isdigit() and not _running(int(pid))) or now - os.stat(path).st_mtime > SPOOL_MAX_AGE:
                os.unlink(path)
        except FileNotFoundError:
            pass


def _messageId(head):
    """
    The Message-ID in the start of a message, or C{None}.
    """
    end = head.find(b"\r\n\r\n")
    if end >= 0:
        head = head[:end + 2]
    value = BytesHeaderParser(policy=compat32).parsebytes(head).get("Message-ID")
    if value is None:
        return None
    return " ".join(str(value).split()) or None


class _Chain:
    """
    A binary file object that reads C{head} and then C{rest}.
    """

    def __init__(self, head, rest):
        self._head = head
        self._rest = rest

    def read(self, n=-1):
        if self._head:
            if n is None or n < 0:
                data, self._head = self._head + self._rest.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._rest.read(n)

    def close(self):
        self._rest.close()


class _Abandoned(Exception):
    """
    The connection was lost before a copy was committed.
    """


_ABANDONED = Result(421, "4.4.2", "connection lost before the copy was committed")


class Delivery:
    """
    Delivers one LMTP transaction: one recipient after the other, each
    copy's slow part in a thread, each result passed to C{reply} as soon as
    that copy is durable (so a crash can duplicate only the recipient in
    flight: the MTA got every earlier reply).

    @param realm: the realm (C{accountFor}).
    @param spool: the L{Spool}, complete.
    @param sender: the MAIL FROM address.
    @param recipients: C{[(address as given, L{Recipient}), ...]}.
    @param sharedCopy: do all recipients get the spool file as it is (hard
        links)?  Otherwise each copy is the recipient's envelope headers and
        the spool file.
    @param runInThread: C{f, *args -> Deferred}, running C{f} in a thread.
    @param reply: called with C{(address, L{Result})} per recipient, in order.
    @param commitLater: commit each copy through the store's index writer
        (C{commitMessageLater}: grouped, off the reactor thread); else with
        C{commitMessage} in the reactor thread (tests that step
        C{runInThread}).  Either way a recipient's reply is sent once its
        copy is durable.
    """

    def __init__(self, realm, spool, sender, recipients, sharedCopy, runInThread, reply, commitLater=True):
        self.commitLater = commitLater
        self.realm = realm
        self.spool = spool
        self.sender = sender
        self.recipients = list(recipients)
        self.sharedCopy = sharedCopy
        self.runInThread = runInThread
        self.reply = reply
        self._stopped = False
        self._done = Deferred()

    def start(self):
        """
        @return: a C{Deferred} that fires (with C{None}) when every
            recipient has had its reply, or after L{stop}; the spool is
            removed then.
        """
        d = self.runInThread(self.spool.finish, self.sharedCopy)
        d.addCallbacks(lambda _: self._next(0), self._spoolFailed)
        return self._done

    def stop(self):
        """
        Deliver no further recipient (the connection is gone: the MTA
        will not hear the replies and tries them again).
        """
        self._stopped = True

    def _spoolFailed(self, failure):
        result, reason = _failure(failure.value, "")
        if reason == "error":
            log.failure("spooling the message failed", failure)
        for address, recipient in self.recipients:
            self._log(address, recipient, None, None, result, reason)
            if not self._stopped:
                self.reply(address, result)
        self._finish()

    def _finish(self):
        if not self._done.called:
            self.spool.discard()
            self._done.callback(None)

    def _next(self, i):
        """
        Deliver to recipient C{i} and those after it: a loop while steps
        finish at once (a recipient that fails before its thread, or a
        synchronous runner), so that a thousand recipients make no deep
        recursion.
        """
        while not self._stopped and i < len(self.recipients):
            address, recipient = self.recipients[i]
            d = maybeDeferred(self._prepare, recipient, address)
            d.addCallback(self._commit, address, recipient)
            d.addErrback(lambda f: (None, f))
            d.addCallback(self._stored, i)
            d.addErrback(self._broken)
            i += 1
            # (Not d.called: a Deferred waiting for one returned by a
            # callback has been called, and is not done.)
            done = []
            d.addCallback(done.append)
            if not done:
                d.addCallback(lambda _, i=i: self._next(i))
                return
        self._finish()

    def _broken(self, failure):
        log.failure("LMTP delivery failed", failure)
        self._stopped = True

    def _prepare(self, recipient, address):
        d = _accountLater(self.realm, recipient)
        return d.addCallback(self._prepareIn, recipient, address)

    def _prepareIn(self, account, recipient, address):
        account, mailbox = _mailboxIn(self.realm, account, recipient, self.sender)
        if self.sharedCopy:
            d = self.runInThread(mailbox.prepareMessage, self.spool.path, self.spool.measure)
        else:
            source = self.spool.copyFor(envelopeHeaders(self.sender, address))
            d = self.runInThread(_prepareAndClose, mailbox, source)
        # The account goes along until the commit (see _mailboxFor).
        return d.addCallback(lambda prepared: (account, mailbox, prepared))

    def _commit(self, held, address, recipient):
        account, mailbox, prepared = held
        if self._stopped:
            # Nobody will hear the reply, so the MTA tries this recipient
            # again: committing would make a duplicate.
            prepared.discard()
            raise _Abandoned()
        # The recipient's 250 once its copy is durable; the reactor goes on
        # meanwhile (the store's index writer commits it, grouped).
        if self.commitLater:
            d = maybeDeferred(mailbox.commitMessageLater, prepared)
        else:
            d = maybeDeferred(mailbox.commitMessage, prepared)

        def failed(failure):
            prepared.discard()
            return failure

        def stored(uid, account=account):
            # (The account is held until here: see _mailboxFor.)
            return mailbox.name, (uid, prepared.measure.rawSize)
        return d.addCallbacks(stored, failed)

    def _stored(self, outcome, i):
        address, recipient = self.recipients[i]
        mailboxName, stored = outcome
        if mailboxName is None and stored.check(_Abandoned):
            result = _ABANDONED
            self._log(address, recipient, None, None, result, "connection lost")
        elif mailboxName is None:
            result, reason = _failure(stored.value, recipient.record.address)
            if reason == "error":
                log.failure("delivery failed: to={to}", stored, to=recipient.record.address)
            self._log(address, recipient, None, None, result, reason)
        else:
            uid, size = stored
            result = Result(250, "2.0.0", "delivered to %s" % (recipient.record.address,))
            self._log(address, recipient, mailboxName, (uid, size), result, None)
        if not self._stopped:
            self.reply(address, result)

    def _log(self, address, recipient, mailboxName, stored, result, reason):
        fields = dict(
            sender=_safe(self.sender),
            messageId=_safe(self.spool.messageId or "-"),
            to=recipient.record.address,
            orig="" if address.lower() == recipient.record.address.lower() else " orig_to=" + _safe(address),
            mailbox=_safe(mailboxName or "-"),
            uid=stored[0] if stored else "-",
            size=stored[1] if stored else self.spool.size,
            status="delivered" if result.ok else "deferred" if result.temporary else "bounced",
            reason="" if reason is None else " reason=" + reason.replace(" ", "-"),
            code="%d %s" % (result.code, result.status),
        )
        log.info("delivery: from=<{sender}> message-id={messageId} to={to}{orig} mailbox={mailbox}"
                 " uid={uid} size={size} status={status}{reason} ({code})", **fields)


def _prepareAndClose(mailbox, source):
    try:
        return mailbox.prepareMessage(source)
    finally:
        source.close()
