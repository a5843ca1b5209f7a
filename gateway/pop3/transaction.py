# -*- test-case-name: tests.test_pop3 -*-
"""
The TRANSACTION and UPDATE states: STAT, LIST, RETR, TOP, UIDL, DELE,
NOOP, RSET, and the expunge at QUIT.

A session works on a snapshot of the INBOX's UIDs taken at login, so
messages that arrive meanwhile do not change its numbering.  DELE only
marks; at QUIT the marked messages get C{\\Deleted} and are expunged by
UID, so IMAP sessions on the INBOX see them EXPUNGEd and nothing else is
touched.  A message another session removed in the meantime answers
C{-ERR} on RETR/TOP.

Locking: by default one POP3 session per maildrop (C{[pop3] lock_session});
a second gets C{-ERR [IN-USE]}, in whichever worker process it is: the lock
is an C{flock} on C{pop3.lock} in the account's folder, which the kernel
lets go of when the session's process ends, however it ends.  With the lock
off, the snapshot and the UID-based update keep every view consistent:
nothing is lost or removed twice.
"""

import fcntl
import os

from twisted.internet.defer import maybeDeferred, succeed

from gateway import logging as glog
from gateway.errors import NoSuchMessage
from gateway.pop3.stream import SMALL, MessageProducer, PrefixedReader, stuffWhole
from gateway.store.writer import callDurably

log = glog.getLogger("pop3")

#: The lock file's name, in the account's folder (beside C{mail/}).
LOCK_FILE = "pop3.lock"


class MaildropLocked(Exception):
    """
    Another POP3 session, of any process, has the maildrop.
    """


def lockPath(account):
    """
    The lock file of C{account}'s maildrop.
    """
    folder = getattr(account, "path", None) or os.path.dirname(os.path.abspath(account.mailStore.path))
    return os.path.join(folder, LOCK_FILE)


def lockMaildrop(path):
    """
    Take the maildrop lock C{path} (an exclusive C{flock}, never waiting).

    @return: the open file descriptor holding it; closing it lets go.
    @raise MaildropLocked: when another session holds it.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise MaildropLocked(path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def uidl(uidValidity, uid):
    """
    The UIDL of a message: Dovecot's default C{%08Xu%08Xv} (UID then
    UIDVALIDITY, upper-case hex), so it is stable across sessions and
    restarts and names the same message as IMAP's UIDVALIDITY/UID.
    """
    return "%08X%08X" % (uid, uidValidity)


class Maildrop:
    """
    One session's view of an account's INBOX.

    @ivar uids: the UIDs at login; message C{n} is C{uids[n - 1]}.
    @ivar sizes: their sizes (CRLF form, as RETR sends them).
    @ivar deleted: message numbers marked by DELE.
    """

    def __init__(self, account, lock=True):
        self.account = account
        # Through the access layer, like every protocol: always the owner's own INBOX.
        self.mailbox = account.access.getMailbox("INBOX")
        self._lockFD = None
        if lock:
            self._lockFD = lockMaildrop(lockPath(account))
        self.uids = []
        self._sizes = None
        self.deleted = set()

    def open(self):
        """
        Synchronize with outside changes and take the snapshot.

        @return: a C{Deferred}.
        """
        d = maybeDeferred(self.mailbox.synchronize)
        d.addCallback(lambda ignored: self._snapshot())
        return d

    def _snapshot(self):
        self.uids = self.mailbox.uids()
        self.uidValidity = self.mailbox.uidValidity

    @property
    def sizes(self):
        """
        The sizes of the snapshot's messages, read on first use (a login
        that only checks for mail does not read the whole index).  A
        message expunged elsewhere before that counts 0 octets; RETR then
        says it was deleted.
        """
        if self._sizes is None:
            known = {info.uid: info.size for info in self.mailbox.messages(self.uids, headers=False)}
            self._sizes = [known.get(uid, 0) for uid in self.uids]
        return self._sizes

    def close(self):
        """
        Release the lock.
        """
        if self._lockFD is not None:
            fd, self._lockFD = self._lockFD, None
            os.close(fd)

    def stat(self):
        """
        @return: C{(count, octets)} of the messages not marked deleted.
        """
        count = size = 0
        for number, octets in enumerate(self.sizes, 1):
            if number not in self.deleted:
                count += 1
                size += octets
        return count, size

    def number(self, argument):
        """
        Parse a message number.

        @return: the C{int}, or C{None} if it names no (undeleted) message.
        """
        text = argument.strip()
        if not text.isdigit() or len(text) > 10:
            return None
        number = int(text)
        if number < 1 or number > len(self.uids) or number in self.deleted:
            return None
        return number

    def uidl(self, number):
        return uidl(self.uidValidity, self.uids[number - 1])

    def update(self):
        """
        The UPDATE state: flag the marked messages C{\\Deleted} and expunge
        exactly them.

        @return: a L{Deferred} firing with the C{list} of expunged UIDs
            once that is durable (the store's index writer does it: the
            reactor does not wait).
        """
        uids = [self.uids[number - 1] for number in sorted(self.deleted)]
        if not uids:
            return succeed([])
        d = callDurably(self.mailbox, "setFlags", uids, {"\\Deleted"}, "+")
        d.addCallback(lambda _: callDurably(self.mailbox, "expunge", uids))
        return d


class TransactionCommands:
    """
    Mixin of L{gateway.pop3.server.POP3Server}: the TRANSACTION state.
    """

    def initTransaction(self):
        self.maildrop = None
        self.producer = None

    def endTransaction(self):
        """
        The connection is gone: stop streaming, release the maildrop
        (without UPDATE unless QUIT did it).
        """
        if self.producer is not None:
            self.producer.stopProducing()
            self.producer = None
        if self.maildrop is not None:
            self.maildrop.close()
            self.maildrop = None

    def _noSuchMessage(self):
        self.sendStatus(False, "No such message.")

    def do_STAT(self, argument):
        count, size = self.maildrop.stat()
        self.sendStatus(True, "%d %d" % (count, size))

    def do_LIST(self, argument):
        maildrop = self.maildrop
        if argument.strip():
            number = maildrop.number(argument)
            if number is None:
                return self._noSuchMessage()
            self.sendStatus(True, "%d %d" % (number, maildrop.sizes[number - 1]))
            return
        count, size = maildrop.stat()
        lines = ["%d %d" % (number, octets) for number, octets in enumerate(maildrop.sizes, 1)
                 if number not in maildrop.deleted]
        self.sendMultiline("%d messages (%d octets)" % (count, size), lines)

    def do_UIDL(self, argument):
        maildrop = self.maildrop
        if argument.strip():
            number = maildrop.number(argument)
            if number is None:
                return self._noSuchMessage()
            self.sendStatus(True, "%d %s" % (number, maildrop.uidl(number)))
            return
        lines = ["%d %s" % (number, maildrop.uidl(number)) for number in range(1, len(maildrop.uids) + 1)
                 if number not in maildrop.deleted]
        self.sendMultiline("Unique-ID listing follows", lines)

    def do_RETR(self, argument):
        number = self.maildrop.number(argument)
        if number is None:
            return self._noSuchMessage()
        return self._send(number, "%d octets" % (self.maildrop.sizes[number - 1],), None)

    def do_TOP(self, argument):
        parts = argument.split()
        if len(parts) != 2 or not parts[1].isdigit():
            self.sendStatus(False, "Syntax: TOP message lines")
            return
        number = self.maildrop.number(parts[0])
        if number is None:
            return self._noSuchMessage()
        return self._send(number, "Top of message follows", int(parts[1]))

    def _send(self, number, text, topLines):
        try:
            source = self.maildrop.mailbox.openMessage(self.maildrop.uids[number - 1])
            try:
                # One read tells a small message (all of it) from a large one.
                head = source.read(SMALL + 1)
            except BaseException:
                source.close()
                raise
        except NoSuchMessage:
            self.sendStatus(False, "Message %d was deleted by another session." % (number,))
            return None
        except OSError:
            self.logFailure(None, "POP3 cannot read message {number}", number=number)
            self.sendStatus(False, "[SYS/TEMP] Cannot read the message, try again later.")
            return None
        status = b"+OK " + text.encode("ascii") + b"\r\n"
        if len(head) <= SMALL:
            # Small: one write, no producer (memory is bounded by SMALL).
            source.close()
            self.transport.write(status + stuffWhole(head, topLines))
            return None
        self.transport.write(status)
        source = PrefixedReader(head, source)
        self.producer = MessageProducer(source, self.transport, self.clock, topLines, self.resetTimeout)
        d = self.producer.start()

        def sent(result):
            self.producer = None
            return result

        def broken(failure):
            # Headers are out already: the only honest answer is to close.
            self.producer = None
            self.logFailure(failure, "POP3 reading message {number} failed", number=number)
            self._closed = True
            self.transport.loseConnection()

        d.addCallbacks(sent, broken)
        return d

    def do_DELE(self, argument):
        number = self.maildrop.number(argument)
        if number is None:
            return self._noSuchMessage()
        self.maildrop.deleted.add(number)
        self.sendStatus(True, "Message %d deleted." % (number,))

    def do_NOOP(self, argument):
        self.sendStatus(True, "")

    def do_RSET(self, argument):
        self.maildrop.deleted.clear()
        count, size = self.maildrop.stat()
        self.sendStatus(True, "%d messages (%d octets)." % (count, size))

    def update(self):
        """
        QUIT in TRANSACTION: carry out the deletions.

        @return: a L{Deferred} firing with C{(ok, text)} for the answer.
        """
        maildrop, self.maildrop = self.maildrop, None
        marked = len(maildrop.deleted)

        def done(expunged):
            if len(expunged) < marked:
                # Removed by another session meanwhile: still gone, as asked.
                log.info("POP3 UPDATE: {gone} messages were already gone", gone=marked - len(expunged))
            return True, "Logging out, %d messages left." % (len(maildrop.uids) - marked,)

        def failed(failure):
            self.logFailure(failure, "POP3 UPDATE failed for {address}", address=maildrop.account.address)
            return False, "[SYS/TEMP] Some deleted messages were not removed."

        def close(result):
            maildrop.close()
            return result
        d = maybeDeferred(maildrop.update)
        d.addCallbacks(done, failed)
        d.addBoth(close)
        return d
