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


def _candidates(address):
    address = address.strip().lower()
    yield address
    local, at, domain = address.rpartition("@")
    if at and "+" in local:
        # Sub-addressing: user+tag@domain delivers to user@domain.
        yield "%s@%s" % (local.split("+", 1)[0], domain)


def findRecipient(directory, address):
    """
    The account record an address delivers to, or C{None}.  Only full
    addresses are accepted (the MTA always gives one).
    """
    if "@" not in address:
        return None
    for candidate in _candidates(address):
        record = directory.resolve(candidate, None)
        if record is not None:
            return record if "lmtp" in record.services else None
    return None


def deliver(realm, record, data):
    """
    Store C{data} in the INBOX of the account of C{record}.

    @return: a L{Result}; never raises for a delivery problem.
    """
    try:
        account = realm.accountFor(record.address)
        mailbox = account.mailStore.getMailbox("INBOX")
        uid = mailbox.appendMessage(data)
    except QuotaExceeded:
        log.info("delivery refused: to={to} reason=quota", to=record.address)
        return Result(552, "5.2.2", "%s is over its storage quota" % (record.address,))
    except Exception:
        log.failure("delivery failed: to={to}", to=record.address)
        return Result(451, "4.3.0", "temporary failure storing the message")
    log.info("delivered: to={to} uid={uid} size={size}", to=record.address, uid=uid, size=len(data))
    return Result(250, "2.0.0", "delivered to %s" % (record.address,))
