# -*- test-case-name: tests.test_store_prepare -*-
"""
Delivery (LMTP, C{gatewayctl deliver}): a mailbox that takes a message in
two steps, so that the slow one runs in a worker thread, and local delivery
into accounts.
"""

from zope.interface import Interface

# ---------------------------------------------------------------------------
# Delivery


class IStagedDelivery(Interface):
    """
    A mailbox that takes a message in two steps, so that the slow one can
    run in a worker thread (LMTP): L{gateway.store.mailbox.Mailbox}.
    """

    def prepareMessage(source, measure=None, mtime=None):
        """
        The slow half of C{appendMessage}, safe in a worker thread: the
        message written (or, for a C{str} path, hard-linked) into the
        mailbox's C{tmp/}, durable, not yet visible.

        @return: an object with C{path}, C{measure} and C{discard()}, for
            L{commitMessage}.
        """

    def commitMessage(prepared, flags=()):
        """
        The quick half of C{appendMessage}, in the reactor thread: quota
        check, then the prepared message becomes visible with a new UID.

        @return: the new UID.
        @raise gateway.errors.QuotaExceeded:
        """

    def commitMessageLater(prepared, flags=()):
        """
        C{commitMessage} off the reactor thread, grouped with other
        writes (the store's index writer).

        @return: a C{Deferred} firing with the new UID once the message is
            durable (file, folder, index), or failing as C{commitMessage}
            raises.
        """


class IDeliveryAgent(Interface):
    """
    Local delivery into accounts (LMTP, C{gatewayctl deliver}).
    """

    def deliver(account, source, mailbox="INBOX"):
        """
        @param account: an L{gateway.interfaces.IAccount}.
        @param source: C{bytes}.
        @return: the new UID.
        @raise gateway.errors.QuotaExceeded:
        """
