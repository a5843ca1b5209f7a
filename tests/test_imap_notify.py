# -*- test-case-name: tests.test_imap_notify -*-
"""
NOTIFY (RFC 5465) over a StringTransport: the RFC's examples, the command's
rules (BAD, BADEVENT), events of the selected mailbox and of the others
(STATUS), mailbox names and subscriptions (LIST), shared mailboxes and
rights, IDLE, overflow.
"""

from twisted.trial import unittest

from gateway.imap import notify
from gateway.imap.notify import unsentOctets
from tests.test_imap_acl import Peer
from tests.test_imap_protocol import IMAPTestMixin

MESSAGE = b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: Re: good morning\r\n\r\nHello\r\n"


class NotifyTestMixin(IMAPTestMixin):
    def setUp(self):
        self.login()
        self.peer = Peer(self, b"demo")

    def ok(self, command, session=None):
        tag = command.split(b" ", 1)[0]
        out = (session or self).send(command)
        self.assertIn(tag + b" OK", out)
        return out

    def append(self, mailbox=b"INBOX", message=MESSAGE, session=None):
        out = (session or self.peer).send(b"ap APPEND %s {%d+}\r\n%s\r\n" % (mailbox, len(message), message))
        self.assertIn(b"ap OK [APPENDUID", out)
        return out

    def events(self):
        """
        What the session was told once the store's listeners ran.
        """
        self.clock.advance(0)
        self.clock.advance(0)
        return self.read()

    def lines(self, data):
        return [line for line in data.split(b"\r\n") if line]


class CommandTests(NotifyTestMixin, unittest.TestCase):
    def test_announced(self):
        """NOTIFY is in CAPABILITY after login."""
        self.assertIn(b"NOTIFY", self.send(b"a CAPABILITY").split(b"\r\n")[0].split())

    def test_none(self):
        """NOTIFY NONE is accepted with nothing set, and after a NOTIFY SET it stops the events."""
        self.ok(b"a NOTIFY NONE")
        self.ok(b"b NOTIFY SET (personal (MessageNew MessageExpunge))")
        self.ok(b"c NOTIFY NONE")
        self.assertIsNone(self.session.notify)
        self.append(b"Drafts")
        self.assertEqual(self.events(), b"")

    def test_notBeforeLogin(self):
        """NOTIFY is an authenticated-state command."""
        self.connect()
        self.assertIn(b"a BAD", self.send(b"a NOTIFY NONE"))

    def test_oneMessageEventAlone(self):
        """5: MessageNew, MessageExpunge or FlagChange alone is taken (as Dovecot does); the first STATUS holds what
        each covers (imaptest's notify script)."""
        self.ok(b"c CREATE other", session=self.peer)
        self.append(b"other")
        for events, items in ((b"MessageExpunge", rb"MESSAGES 1 UIDVALIDITY \d+ UNSEEN 1"),
                              (b"MessageNew", rb"MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1"),
                              (b"FlagChange", rb"UIDVALIDITY \d+ UNSEEN 1 HIGHESTMODSEQ \d+")):
            out = self.ok(b"a NOTIFY SET STATUS (mailboxes other (" + events + b"))")
            self.assertRegex(out, rb'^\* STATUS "other" \(' + items + rb"\)\r\na OK", events)

    def test_expungeAloneNotToldOfFlags(self):
        """With MessageExpunge alone, an expunge in a followed mailbox is told, a flag change is not."""
        self.ok(b"c CREATE other", session=self.peer)
        self.append(b"other")
        self.append(b"other")
        self.ok(b"a NOTIFY SET (mailboxes other (MessageExpunge))")
        self.ok(b"s SELECT other", session=self.peer)
        self.ok(b"f STORE 1 +FLAGS (\\Seen)", session=self.peer)
        self.assertEqual(self.events(), b"")
        self.ok(b"d STORE 2 +FLAGS (\\Deleted)", session=self.peer)
        self.ok(b"e EXPUNGE", session=self.peer)
        self.assertRegex(self.events(), rb'^\* STATUS "other" \(MESSAGES 1 UIDVALIDITY \d+ UNSEEN 0\)\r\n$')

    def test_syntax(self):
        """Malformed NOTIFY commands are BAD and the session goes on."""
        for command in (b"a NOTIFY", b"a NOTIFY SET", b"a NOTIFY SET ()", b"a NOTIFY SET (nowhere (MessageNew))",
                        b"a NOTIFY SET (personal ())", b"a NOTIFY SET (personal (MessageNew MessageExpunge)",
                        b"a NOTIFY SET (subtree (MessageNew MessageExpunge))", b"a NOTIFY MAYBE",
                        b"a NOTIFY SET (selected NONE) (selected-delayed NONE)",
                        b"a NOTIFY SET (selected (MessageNew (uid body.peek[header.fields (from)) MessageExpunge))",
                        b"a NOTIFY SET (selected (MessageNew (nosuchitem) MessageExpunge))"):
            self.assertIn(b"a BAD", self.send(command), command)
        self.ok(b"b NOOP")

    def test_nameNotModifiedUTF7(self):
        """A mailbox name that is not modified UTF-7 names no mailbox: NOTIFY SET is OK and follows the others."""
        self.ok(b"a NOTIFY SET (mailboxes (&Jjo!- Drafts) (MessageNew MessageExpunge)) (subtree &- NONE)")
        self.assertEqual(self.session.notify.spec.groups[0].names, ("Drafts",))
        self.append(b"Drafts")
        self.assertIn(b'* STATUS "Drafts" ', self.events())

    def test_mangled(self):
        """Every prefix of a valid NOTIFY SET, and each with one octet changed, gets OK, NO or BAD, never SERVERBUG."""
        valid = (b"NOTIFY SET STATUS (selected-delayed (MessageNew (UID BODY.PEEK[HEADER.FIELDS (FROM)]) MessageExpunge"
                 b' FlagChange)) (subtree ("Lists" ~other) (MailboxName)) (mailboxes INBOX NONE) (inboxes NONE)')
        variants = [valid[:i] for i in range(len(valid))]
        variants += [valid[:i] + bytes([c]) + valid[i + 1:] for i in range(0, len(valid), 3) for c in b'()" \\{'
                     if valid[i] != c]
        self.ok(b"s SELECT INBOX")
        for n, command in enumerate(variants):
            out = self.send(b"t%d " % (n,) + command)
            self.assertRegex(out, rb"(^|\n)t%d (OK|NO|BAD) " % (n,), command)
            self.assertNotIn(b"SERVERBUG", out, command)
        self.assertIn(b"n OK", self.send(b"n NOOP"))

    def test_fetchItemsOnlyForSelected(self):
        """MessageNew's FETCH items are for the selected mailbox only: elsewhere BAD."""
        self.assertIn(b"a BAD", self.send(b"a NOTIFY SET (personal (MessageNew (uid) MessageExpunge))"))

    def test_badEvent(self):
        """3.1: an event this server does not report is NO [BADEVENT (the supported ones)], not BAD."""
        for event in (b"AnnotationChange MessageNew MessageExpunge", b"NoSuchEvent"):
            out = self.send(b"a NOTIFY SET (personal (%s))" % (event,))
            self.assertEqual(out, b"a NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName"
                                  b" SubscriptionChange MailboxMetadataChange ServerMetadataChange)]"
                                  b" Unsupported NOTIFY event\r\n")
        self.assertIsNone(self.session.notify)

    def test_caseInsensitive(self):
        """Filter and event names are case-insensitive."""
        self.ok(b"a NOTIFY SET (PERSONAL (messagenew MESSAGEEXPUNGE flagchange)) (Mailboxes INBOX NONE)")
        self.assertEqual([g.kind for g in self.session.notify.spec.groups], ["PERSONAL", "MAILBOXES"])

    def test_replaces(self):
        """A second NOTIFY SET replaces the first: the first's mailboxes stop reporting."""
        self.ok(b"a NOTIFY SET (mailboxes Drafts (MessageNew MessageExpunge))")
        self.ok(b"b NOTIFY SET (mailboxes Sent (MessageNew MessageExpunge))")
        self.append(b"Drafts")
        self.assertEqual(self.events(), b"")
        self.append(b"Sent")
        self.assertIn(b'* STATUS "Sent" (', self.events())

    def test_unauthenticate(self):
        """UNAUTHENTICATE (RFC 8437) ends NOTIFY: the account's events no longer reach the connection."""
        self.ok(b"a NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))")
        self.ok(b"u UNAUTHENTICATE")
        self.assertIsNone(self.session.notify)
        self.append(b"Drafts")
        self.ok(b"p CREATE Later", self.peer)
        self.assertEqual(self.events(), b"")
        self.assertEqual(self.send(b"n NOOP"), b"n OK NOOP completed\r\n")

    def test_nothingAfterBye(self):
        """LOGOUT: events that waited are not sent after the BYE."""
        self.ok(b"c CREATE misc")
        self.ok(b"a NOTIFY SET (mailboxes misc (MessageNew MessageExpunge))")
        self.session._busy = True
        self.append(b"misc")
        self.events()
        self.session._busy = False
        self.assertEqual(self.send(b"z LOGOUT"), b"* BYE Logging out\r\nz OK LOGOUT completed\r\n")

    def test_logoutStopsListening(self):
        """A session that ends takes its listeners with it."""
        self.ok(b"a NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))")
        store = self.context.realm.accountFor("demo@example.test").mailStore
        inbox = store.getMailbox("INBOX")
        before = len(inbox._listeners)
        self.disconnect()
        self.assertEqual(len(inbox._listeners), before - 1)
        self.assertFalse(store._accountChanges.listening)


class RFCExampleTests(NotifyTestMixin, unittest.TestCase):
    """
    The examples of RFC 5465 (with the verified errata's parentheses).
    """

    def setUp(self):
        NotifyTestMixin.setUp(self)
        self.ok(b"c1 CREATE Lists/Lemonade")
        self.ok(b"c2 CREATE misc")
        self.read()

    def test_setStatus(self):
        """3.1: NOTIFY SET STATUS sends the STATUS of every followed mailbox before its tagged OK."""
        self.append(b"Lists/Lemonade")
        out = self.send(b"a NOTIFY SET STATUS (selected (MessageNew (uid body.peek[header.fields (from to subject)])"
                        b" MessageExpunge)) (subtree Lists (MessageNew MessageExpunge))")
        lines = self.lines(out)
        self.assertEqual(len(lines), 3, out)
        self.assertRegex(lines[0], rb'^\* STATUS "Lists" \(MESSAGES 0 UIDNEXT 1 UIDVALIDITY \d+ UNSEEN 0\)$')
        self.assertRegex(lines[1], rb'^\* STATUS "Lists/Lemonade" \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)$')
        self.assertEqual(lines[2], b"a OK NOTIFY completed")

    def test_selectedMessageNew(self):
        """3.1, 5.2: a message new in the selected mailbox: EXISTS, then FETCH with the items asked, at once."""
        self.ok(b"s SELECT INBOX")
        self.ok(b"a NOTIFY SET (selected (MessageNew (uid body.peek[header.fields (from to subject)])"
                b" MessageExpunge)) (subtree Lists (MessageNew MessageExpunge))")
        self.append(b"INBOX")
        header = b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: Re: good morning\r\n\r\n"
        self.assertEqual(self.events(), b"* 1 EXISTS\r\n* 1 RECENT\r\n* 1 FETCH (UID 1 BODY[HEADER.FIELDS (from to"
                         b" subject)] {%d}\r\n%s)\r\n" % (len(header), header))

    def test_otherMailboxMessageNew(self):
        """5.2: a message new in another followed mailbox: STATUS with MESSAGES and UIDNEXT, at once."""
        self.ok(b"s SELECT INBOX")
        self.ok(b"a NOTIFY SET (selected (MessageNew MessageExpunge)) (subtree Lists (MessageNew MessageExpunge))")
        self.append(b"Lists/Lemonade")
        self.assertRegex(self.events(), rb'^\* STATUS "Lists/Lemonade" \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+'
                                        rb' UNSEEN 1\)\r\n$')
        self.append(b"misc")
        self.assertEqual(self.events(), b"")

    def test_utf8Names(self):
        """A session that enabled UTF8=ACCEPT is told of other mailboxes by their UTF-8 names, others in modified UTF-7."""
        self.ok(b"c CREATE Entw&APw-rfe", session=self.peer)
        self.ok(b"e ENABLE UTF8=ACCEPT")
        self.ok(b"a NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))")
        self.append(b"Entw&APw-rfe")
        self.assertRegex(self.events(), '^\\* STATUS "Entwürfe" \\(MESSAGES 1 '.encode("utf-8"))
        self.ok(b"r RENAME Entw&APw-rfe Gel&APY-scht", session=self.peer)
        self.assertEqual(self.events(), '* LIST (\\HasNoChildren) "/" "Gelöscht" ("OLDNAME" ("Entwürfe"))\r\n'.encode("utf-8"))

    def test_otherMailboxExpunge(self):
        """5.3: messages expunged in another followed mailbox: STATUS, with HIGHESTMODSEQ under CONDSTORE."""
        self.append(b"Lists/Lemonade")
        self.ok(b"e ENABLE CONDSTORE")
        self.ok(b"a NOTIFY SET (subtree Lists (MessageNew MessageExpunge))")
        self.ok(b"p1 SELECT Lists/Lemonade", self.peer)
        self.ok(b"p2 STORE 1 +FLAGS (\\Deleted)", self.peer)
        self.assertEqual(self.events(), b"")  # a flag change is not asked for
        self.ok(b"p3 EXPUNGE", self.peer)
        self.assertRegex(self.events(), rb'^\* STATUS "Lists/Lemonade" \(MESSAGES 0 UIDNEXT 2 UIDVALIDITY \d+'
                                        rb' UNSEEN 0 HIGHESTMODSEQ \d+\)\r\n$')

    def test_selectedFlagChange(self):
        """5.1: a flag change in the selected mailbox: FETCH with UID and FLAGS, at once."""
        self.append(b"INBOX")
        self.ok(b"s SELECT INBOX")
        self.ok(b"a NOTIFY SET (selected (MessageNew MessageExpunge FlagChange))")
        self.ok(b"p1 SELECT INBOX", self.peer)
        self.ok(b"p2 STORE 1 +FLAGS ($Junk)", self.peer)
        out = self.events()
        self.assertIn(b"* FLAGS (", out)
        self.assertIn(b"* 1 FETCH (UID 1 FLAGS (", out)
        self.assertIn(b"$Junk", out.split(b"* 1 FETCH")[1])

    def test_otherFlagChange(self):
        """5.1: a flag change in another followed mailbox: STATUS with UIDVALIDITY and HIGHESTMODSEQ."""
        self.append(b"misc")
        self.ok(b"a NOTIFY SET (mailboxes misc (MessageNew MessageExpunge FlagChange))")
        self.ok(b"p1 SELECT misc", self.peer)
        self.ok(b"p2 STORE 1 +FLAGS (\\Seen)", self.peer)
        self.assertRegex(self.events(), rb'^\* STATUS "misc" \(UIDVALIDITY \d+ UNSEEN 0 HIGHESTMODSEQ \d+\)\r\n$')

    def test_selectedExpunge(self):
        """5.3: an expunge in the selected mailbox with SELECTED: EXPUNGE at once, between commands."""
        self.append(b"INBOX")
        self.append(b"INBOX")
        self.ok(b"s SELECT INBOX")
        self.ok(b"a NOTIFY SET (selected (MessageNew MessageExpunge))")
        self.ok(b"p1 SELECT INBOX", self.peer)
        self.ok(b"p2 STORE 1 +FLAGS.SILENT (\\Deleted)", self.peer)
        self.events()
        self.ok(b"p3 EXPUNGE", self.peer)
        # The expunged message was recent here: the count follows.
        self.assertEqual(self.events(), b"* 1 EXPUNGE\r\n* 1 RECENT\r\n")

    def test_selectedDelayed(self):
        """6.1: with SELECTED-DELAYED an expunge waits for a command that allows it; new messages come at once."""
        self.append(b"INBOX")
        self.ok(b"s SELECT INBOX")
        self.ok(b"a NOTIFY SET (selected-delayed (MessageNew MessageExpunge))")
        self.ok(b"p1 SELECT INBOX", self.peer)
        self.ok(b"p2 STORE 1 +FLAGS.SILENT (\\Deleted)", self.peer)
        self.events()
        self.ok(b"p3 EXPUNGE", self.peer)
        self.assertEqual(self.events(), b"")
        self.append(b"INBOX")
        self.assertIn(b"* 2 EXISTS", self.events())
        out = self.send(b"f FETCH 1 (FLAGS)")
        self.assertNotIn(b"* 1 EXPUNGE", out)
        self.assertIn(b"* 1 EXPUNGE", self.send(b"n NOOP"))

    def test_mailboxName(self):
        """5.4: CREATE, RENAME (with OLDNAME) and DELETE by another session are LIST responses."""
        self.ok(b"a NOTIFY SET (personal (MailboxName))")
        self.ok(b"p1 CREATE Projects", self.peer)
        self.assertEqual(self.events(), b'* LIST (\\HasNoChildren) "/" "Projects"\r\n')
        self.ok(b"p2 RENAME Projects Archive", self.peer)
        self.assertEqual(self.events(), b'* LIST (\\HasNoChildren) "/" "Archive" ("OLDNAME" ("Projects"))\r\n')
        self.ok(b"p3 DELETE Archive", self.peer)
        self.assertEqual(self.events(), b'* LIST (\\NonExistent) "/" "Archive"\r\n')

    def test_mailboxNameFiltered(self):
        """5.4: names outside the filter, or a filter without MailboxName, tell nothing."""
        self.ok(b"a NOTIFY SET (subtree Lists (MailboxName)) (personal (MessageNew MessageExpunge))")
        self.ok(b"p1 CREATE Elsewhere", self.peer)
        self.assertEqual(self.events(), b"")
        self.ok(b"p2 CREATE Lists/IETF", self.peer)
        self.assertEqual(self.events(), b'* LIST (\\HasNoChildren) "/" "Lists/IETF"\r\n')

    def test_subscriptionChange(self):
        """5.5: SUBSCRIBE and UNSUBSCRIBE are LIST responses with and without \\Subscribed."""
        self.ok(b"a NOTIFY SET (personal (SubscriptionChange))")
        self.ok(b"p1 SUBSCRIBE misc", self.peer)
        self.assertEqual(self.events(), b'* LIST (\\HasNoChildren \\Subscribed) "/" "misc"\r\n')
        self.ok(b"p2 UNSUBSCRIBE misc", self.peer)
        self.assertEqual(self.events(), b'* LIST (\\HasNoChildren) "/" "misc"\r\n')

    def test_subscribedFilter(self):
        """6.4: SUBSCRIBED follows the subscriptions as they change."""
        self.ok(b"a NOTIFY SET (subscribed (MessageNew MessageExpunge))")
        self.append(b"misc")
        self.assertEqual(self.events(), b"")
        self.ok(b"p1 SUBSCRIBE misc", self.peer)
        self.events()
        self.append(b"misc")
        self.assertIn(b'* STATUS "misc" (MESSAGES 2 ', self.events())

    def test_personalFollowsNewMailboxes(self):
        """6.2: a mailbox created after NOTIFY SET under PERSONAL is followed too."""
        self.ok(b"a NOTIFY SET (personal (MessageNew MessageExpunge))")
        self.ok(b"p1 CREATE Later", self.peer)
        self.events()
        self.append(b"Later")
        self.assertIn(b'* STATUS "Later" (MESSAGES 1 ', self.events())

    def test_firstGroupWins(self):
        """6: a mailbox named by several filters gets the events of the first (NONE excludes it)."""
        self.ok(b"a NOTIFY SET (mailboxes misc NONE) (personal (MessageNew MessageExpunge))")
        self.append(b"misc")
        self.assertEqual(self.events(), b"")
        self.append(b"Drafts")
        self.assertIn(b'* STATUS "Drafts" ', self.events())

    def test_selectedNotStatus(self):
        """5.2: the selected mailbox never gets STATUS, even when another filter names it."""
        self.ok(b"s SELECT misc")
        self.ok(b"a NOTIFY SET (personal (MessageNew MessageExpunge))")
        self.append(b"misc")
        self.assertNotIn(b"STATUS", self.events())
        self.assertIn(b"* 1 EXISTS", self.send(b"n NOOP"))

    def test_implicitNoop(self):
        """3.1: a NOTIFY SET returns the selected mailbox's waiting changes, like NOOP."""
        self.ok(b"s SELECT INBOX")
        self.append(b"INBOX")
        self.assertIn(b"* 1 EXISTS", self.send(b"a NOTIFY SET (selected NONE)"))

    def test_duringCommand(self):
        """Events that happen while a command runs go out before its tagged response."""
        self.ok(b"a NOTIFY SET (mailboxes misc (MessageNew MessageExpunge))")
        self.session._busy = True
        self.append(b"misc")
        self.assertEqual(self.events(), b"")
        self.session._busy = False
        out = self.send(b"n NOOP")
        self.assertLess(out.index(b'* STATUS "misc"'), out.index(b"n OK"))

    def test_idleWithoutSelectedEvents(self):
        """4: with NOTIFY on and no SELECTED events, IDLE pushes nothing for the selected mailbox; DONE's end tells it."""
        self.ok(b"s SELECT INBOX")
        self.ok(b"a NOTIFY SET (personal (MessageNew MessageExpunge))")
        self.assertEqual(self.send(b"i IDLE"), b"+ idling\r\n")
        self.append(b"INBOX")
        self.assertEqual(self.events(), b"")
        self.assertEqual(self.send(b"DONE"), b"* 1 EXISTS\r\n* 1 RECENT\r\ni OK IDLE terminated\r\n")

    def test_idleInAuthenticatedState(self):
        """4: IDLE without a selected mailbox gets the events as they happen."""
        self.ok(b"a NOTIFY SET (personal (MessageNew MessageExpunge))")
        self.assertEqual(self.send(b"i IDLE"), b"+ idling\r\n")
        self.append(b"Drafts")
        self.assertIn(b'* STATUS "Drafts" (MESSAGES 1 ', self.events())
        self.assertEqual(self.send(b"DONE"), b"i OK IDLE terminated\r\n")


class SharedTests(NotifyTestMixin, unittest.TestCase):
    """
    Other accounts' mailboxes: events only with the rights (RFC 5465 5).
    """

    def setUp(self):
        NotifyTestMixin.setUp(self)
        self.owner = Peer(self, b"other")
        self.ok(b"o1 CREATE Shared", self.owner)
        self.ok(b"o2 CREATE Hidden", self.owner)
        self.ok(b"o3 CREATE Listed", self.owner)
        self.ok(b"o4 SETACL Shared demo lr", self.owner)
        self.ok(b"o5 SETACL Listed demo l", self.owner)

    def test_sharedWithRights(self):
        """A shared mailbox the viewer may list and read reports its new messages."""
        self.ok(b"a NOTIFY SET (subtree ~other (MessageNew MessageExpunge))")
        self.append(b"Shared", session=self.owner)
        self.assertIn(b'* STATUS "~other/Shared" (MESSAGES 1 ', self.events())

    def test_withoutRights(self):
        """A mailbox the viewer may not see reports nothing, named or not."""
        self.ok(b"a NOTIFY SET (mailboxes ~other/Hidden (MessageNew MessageExpunge))")
        self.append(b"Hidden", session=self.owner)
        self.assertEqual(self.events(), b"")

    def test_noAccess(self):
        """3.1: a named mailbox the viewer may list but not read is LIST (\\NoAccess), and reports nothing."""
        out = self.send(b"a NOTIFY SET (mailboxes (~other/Listed ~other/Shared) (MessageNew MessageExpunge))")
        self.assertEqual(self.lines(out), [b'* LIST (\\NoAccess) "/" "~other/Listed"', b"a OK NOTIFY completed"])
        self.append(b"Listed", session=self.owner)
        self.assertEqual(self.events(), b"")

    def test_rightsTakenAway(self):
        """5.9: once the owner takes l or r away, the mailbox reports nothing more."""
        self.ok(b"a NOTIFY SET (subtree ~other (MessageNew MessageExpunge))")
        self.ok(b"o6 SETACL Shared demo l", self.owner)
        self.append(b"Shared", session=self.owner)
        self.assertEqual(self.events(), b"")
        self.ok(b"o7 SETACL Shared demo lr", self.owner)
        self.append(b"Shared", session=self.owner)
        self.assertEqual(self.events(), b"")

    def test_rightsGranted(self):
        """5.9: a mailbox shared after NOTIFY SET is followed once the session looks again (SHARED_REFRESH)."""
        self.ok(b"a NOTIFY SET (subtree ~other (MessageNew MessageExpunge))")
        self.ok(b"o6 SETACL Hidden demo lr", self.owner)
        self.append(b"Hidden", session=self.owner)
        self.assertEqual(self.events(), b"")
        self.clock.advance(notify.SHARED_REFRESH)
        self.append(b"Hidden", session=self.owner)
        self.assertIn(b'* STATUS "~other/Hidden" (MESSAGES 2 ', self.events())

    def test_sharedMailboxNames(self):
        """5.4: the owner's CREATE, RENAME and DELETE of a shared mailbox the viewer sees are LIST responses."""
        self.ok(b"a NOTIFY SET (subtree ~other (MailboxName))")
        self.ok(b"o6 CREATE Shared/Child", self.owner)
        self.assertEqual(self.events(), b'* LIST (\\HasNoChildren) "/" "~other/Shared/Child"\r\n')
        self.ok(b"o7 RENAME Shared/Child Shared/Kid", self.owner)
        self.assertEqual(self.events(),
                         b'* LIST (\\HasNoChildren) "/" "~other/Shared/Kid" ("OLDNAME" ("~other/Shared/Child"))\r\n')
        self.ok(b"o8 DELETE Shared/Kid", self.owner)
        self.assertEqual(self.events(), b'* LIST (\\NonExistent) "/" "~other/Shared/Kid"\r\n')

    def test_hiddenMailboxNames(self):
        """5.4: the owner's changes to mailboxes the viewer may not list tell nothing."""
        self.ok(b"a NOTIFY SET (subtree ~other (MailboxName))")
        self.ok(b"o6 CREATE Private", self.owner)
        self.ok(b"o7 RENAME Hidden Secret", self.owner)
        self.ok(b"o8 DELETE Secret", self.owner)
        self.assertEqual(self.events(), b"")

    def test_personalExcludesShared(self):
        """6.2: PERSONAL does not include other accounts' mailboxes."""
        self.ok(b"a NOTIFY SET (personal (MessageNew MessageExpunge))")
        self.append(b"Shared", session=self.owner)
        self.assertEqual(self.events(), b"")


class MetadataEventTests(NotifyTestMixin, unittest.TestCase):
    """
    MailboxMetadataChange and ServerMetadataChange (RFC 5465 5.6, 5.7).
    """

    def test_mailboxEntry(self):
        """5.6: a mailbox entry set by another session: METADATA naming the mailbox and the entry, no value."""
        self.ok(b"a NOTIFY SET (personal (MailboxMetadataChange))")
        self.ok(b'p SETMETADATA INBOX (/shared/comment "hello")', self.peer)
        self.assertEqual(self.events(), b'* METADATA "INBOX" /shared/comment\r\n')
        self.ok(b"q SETMETADATA INBOX (/shared/comment NIL)", self.peer)
        self.assertEqual(self.events(), b'* METADATA "INBOX" /shared/comment\r\n')

    def test_notAsked(self):
        """5.6: a filter without MailboxMetadataChange, or a mailbox outside the filters, tells nothing."""
        self.ok(b"a NOTIFY SET (mailboxes Drafts (MailboxMetadataChange)) (personal (MessageNew MessageExpunge))")
        self.ok(b'p SETMETADATA INBOX (/shared/comment "hello")', self.peer)
        self.assertEqual(self.events(), b"")
        self.ok(b'q SETMETADATA Drafts (/shared/comment "hello")', self.peer)
        self.assertEqual(self.events(), b'* METADATA "Drafts" /shared/comment\r\n')

    def test_serverEntry(self):
        """5.7: a server entry of the account: METADATA "" with the entry."""
        self.ok(b"a NOTIFY SET (personal (ServerMetadataChange))")
        self.ok(b'p SETMETADATA "" (/private/comment "mine")', self.peer)
        self.assertEqual(self.events(), b'* METADATA "" /private/comment\r\n')

    def test_othersPrivateEntries(self):
        """Another viewer's private entry of a shared mailbox is not told; a shared entry is."""
        owner = Peer(self, b"other")
        self.ok(b"o1 CREATE Shared", owner)
        self.ok(b"o2 SETACL Shared demo lr", owner)
        self.ok(b"a NOTIFY SET (subtree ~other (MailboxMetadataChange))")
        self.ok(b'o3 SETMETADATA Shared (/private/comment "owner only")', owner)
        self.assertEqual(self.events(), b"")
        self.ok(b"o4 SETACL Shared demo lrw", owner)
        self.ok(b'o5 SETMETADATA Shared (/shared/comment "everyone")', owner)
        self.assertEqual(self.events(), b'* METADATA "~other/Shared" /shared/comment\r\n')


class OverflowTests(NotifyTestMixin, unittest.TestCase):
    def test_overflow(self):
        """5.8: more events waiting than the limit: OK [NOTIFICATIONOVERFLOW], then NOTIFY is off."""
        self.patch(notify, "MAX_PENDING", 2)
        self.ok(b"a NOTIFY SET (personal (MessageNew MessageExpunge))")
        self.session._busy = True
        for name in (b"Drafts", b"Sent", b"Junk"):
            self.append(name)
        self.events()
        self.session._busy = False
        out = self.send(b"n NOOP")
        self.assertEqual(out, b"* OK [NOTIFICATIONOVERFLOW] Too many notifications; NOTIFY is now off\r\n"
                              b"n OK NOOP completed\r\n")
        self.assertIsNone(self.session.notify)
        self.append(b"Drafts")
        self.assertEqual(self.events(), b"")

    def test_tooManyMailboxes(self):
        """3.1: a NOTIFY SET naming more mailboxes than the limit is NO [NOTIFICATIONOVERFLOW] and follows none."""
        self.patch(notify, "MAX_MAILBOXES", 3)
        out = self.send(b"a NOTIFY SET (personal (MessageNew MessageExpunge))")
        self.assertEqual(out, b"a NO [NOTIFICATIONOVERFLOW] NOTIFY would follow more than 3 mailboxes\r\n")
        self.assertIsNone(self.session.notify)
        inbox = self.context.realm.accountFor("demo@example.test").mailStore.getMailbox("INBOX")
        self.assertEqual(len(inbox._listeners), 0)
        self.ok(b"b NOTIFY SET (mailboxes (INBOX Drafts) (MessageNew MessageExpunge))")

    def test_failedSetKeepsPrevious(self):
        """A NOTIFY SET refused with NO leaves the previous one in force."""
        self.ok(b"a NOTIFY SET (mailboxes Drafts (MessageNew MessageExpunge))")
        self.patch(notify, "MAX_MAILBOXES", 3)
        self.assertIn(b"b NO [NOTIFICATIONOVERFLOW]", self.send(b"b NOTIFY SET (personal (MessageNew MessageExpunge))"))
        self.append(b"Drafts")
        self.assertIn(b'* STATUS "Drafts" (MESSAGES 1 ', self.events())

    def test_backlog(self):
        """5.8: a client that leaves too much unread overflows at the next event."""
        self.ok(b"a NOTIFY SET (personal (MessageNew MessageExpunge))")
        self.patch(notify, "unsentOctets", lambda transport: notify.MAX_BACKLOG + 1)
        self.append(b"Drafts")
        self.assertEqual(self.events(), b"* OK [NOTIFICATIONOVERFLOW] Too many notifications; NOTIFY is now off\r\n")

    def test_unsentOctets(self):
        """The unread octets are read from the TCP transport, under a TLS layer too."""
        class TCP:
            dataBuffer = b"x" * 10
            _tempDataLen = 5

        class TLS:
            transport = TCP()
        self.assertEqual(unsentOctets(TCP()), 15)
        self.assertEqual(unsentOctets(TLS()), 15)
        self.assertEqual(unsentOctets(object()), 0)

