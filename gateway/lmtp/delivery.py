# -*- test-case-name: tests.test_lmtp -*-
"""
Local delivery: route a recipient address through the directory, then store
the message in the account's INBOX.  LMTP and C{gatewayctl deliver} both
come here, so they resolve names and answer failures the same way.

The message is stored byte-exact, as the MTA handed it over; the store's
C{tmp/}-then-rename delivery means a crash leaves the whole message or none.
"""

import attr

from gateway.errors import QuotaExceeded
from gateway.logging import getLogger

log = getLogger("lmtp")


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


def deliver(realm, recipient, data):
    """
    Store C{data} in the account of C{recipient}: in the mailbox its
    C{+detail} names if there is one, else in INBOX.

    @return: a L{Result}; never raises for a delivery problem.
    """
    record = recipient.record
    try:
        account = realm.accountFor(record.address)
        store = account.mailStore
        mailbox = store.getMailbox(_targetMailbox(store, recipient.detail))
        uid = mailbox.appendMessage(data)
    except QuotaExceeded:
        log.info("delivery refused: to={to} reason=quota", to=record.address)
        return Result(552, "5.2.2", "%s is over its storage quota" % (record.address,))
    except Exception:
        log.failure("delivery failed: to={to}", to=record.address)
        return Result(451, "4.3.0", "temporary failure storing the message")
    log.info("delivered: to={to} mailbox={mailbox} uid={uid} size={size}",
             to=record.address, mailbox=mailbox.name, uid=uid, size=len(data))
    return Result(250, "2.0.0", "delivered to %s" % (record.address,))
