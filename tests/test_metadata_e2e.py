# -*- test-case-name: tests.test_metadata_e2e -*-
"""
METADATA end to end over loopback with plain imaplib (its C{xatom} and
C{_simple_command}, as any client without METADATA support would send
them): entries of an own and of another account's mailbox, CREATE with a
class, LIST-METADATA, then a restart and an index rebuild of the server.
"""

import glob
import imaplib
import os

from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from gateway.imap.server import makeFactory
from gateway.service import makeContext
from gateway.store import maildir
from tests.support import PASSWORD, makeTestContext

CLASS = "/shared/vendor/xmapi/container-class"


def metadata(imap, *args):
    """
    GETMETADATA through imaplib: the tagged status and the METADATA data.
    """
    typ, _ = imap.xatom("GETMETADATA", *args)
    return typ, imap.response("METADATA")[1]


class MetadataEndToEndTests(unittest.TestCase):
    def setUp(self):
        self.context = makeTestContext(self, reactor=reactor, clock=reactor)
        self.addCleanup(self.context.realm.access.sharedIndex.close)
        self.port = self.listen(self.context)

    def listen(self, context):
        factory = makeFactory(context)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)

        def drop():
            for session in list(factory.sessions):
                session.transport.abortConnection()
        self.addCleanup(drop)
        return port.getHost().port

    def client(self, user, port=None):
        imap = imaplib.IMAP4("127.0.0.1", port or self.port)
        imap.login(user, PASSWORD)
        return imap

    def test_imaplib(self):
        """SETMETADATA/GETMETADATA, CREATE (XCLASS), LIST-METADATA and another account's mailbox from imaplib."""
        def run():
            demo, other = self.client("demo"), self.client("other")
            try:
                self.assertIn("METADATA", demo.capabilities)
                self.assertIn("LIST-METADATA", demo.capabilities)
                self.assertEqual(demo.xatom("SETMETADATA", 'INBOX (/private/comment "hello" /shared/comment "all")')[0],
                                 "OK")
                self.assertEqual(metadata(demo, "INBOX", "(/private/comment /shared/comment)"),
                                 ("OK", [b'"INBOX" (/private/comment "hello" /shared/comment "all")']))
                self.assertEqual(demo._simple_command("CREATE", '"Calendar 2" (XCLASS "IPF.Appointment")')[0], "OK")
                typ, data = demo.list('""', '"Cal*" RETURN (METADATA ("%s"))' % (CLASS,))
                self.assertEqual(typ, "OK")
                self.assertEqual(demo.response("METADATA")[1],
                                 [b'"Calendar" (%s "IPF.Appointment")' % (CLASS.encode(),),
                                  b'"Calendar 2" (%s "IPF.Appointment")' % (CLASS.encode(),)])
                typ, data = demo.xatom("SETMETADATA", '"Calendar 2" (%s "IPF.Nothing")' % (CLASS,))
                self.assertEqual(typ, "NO")
                self.assertTrue(data[0].startswith(b"[CANNOT]"), data)
                # Another account's mailbox through the access layer.
                self.assertEqual(demo.xatom("SETACL", "INBOX other lr")[0], "OK")
                self.assertEqual(metadata(other, "~demo/INBOX", "(/shared/comment /private/comment)"),
                                 ("OK", [b'"~demo/INBOX" (/shared/comment "all" /private/comment NIL)']))
                self.assertEqual(other.xatom("SETMETADATA", '~demo/INBOX (/private/comment "other\'s")')[0], "OK")
                typ, data = other.xatom("SETMETADATA", '~demo/INBOX (/shared/comment "mine now")')
                self.assertEqual((typ, data[0][:8]), ("NO", b"[NOPERM]"))
                self.assertEqual(metadata(demo, "INBOX", "/private/comment")[1],
                                 [b'"INBOX" (/private/comment "hello")'])
            finally:
                demo.logout()
                other.logout()
        return deferToThread(run)

    def test_restartAndRebuild(self):
        """Entries and a folder's class survive a new server over the same data root, and an index rebuild."""
        def first():
            demo = self.client("demo")
            demo._simple_command("CREATE", '"Calendar 2" (XCLASS "IPF.Appointment.Birthday")')
            demo.xatom("SETMETADATA", '"Calendar 2" (/shared/comment "birthdays")')
            demo.logout()

        def again(port):
            demo = self.client("demo", port)
            try:
                found = metadata(demo, '"Calendar 2"', "(%s /shared/comment)" % (CLASS,))
            finally:
                demo.logout()
            self.assertEqual(found, ("OK", [b'"Calendar 2" (%s "IPF.Appointment.Birthday" /shared/comment'
                                            b' "birthdays")' % (CLASS.encode(),)]))

        def restart(rebuild):
            store = self.context.realm.accountFor("demo@example.test").mailStore
            store.close()
            if rebuild:
                for path in glob.glob(os.path.join(store.path, maildir.INDEX_NAME) + "*"):
                    os.unlink(path)
            self.context = makeContext(self.context.config, reactor=reactor, clock=reactor)
            self.addCleanup(self.context.realm.access.sharedIndex.close)
            return self.listen(self.context)

        d = deferToThread(first)
        d.addCallback(lambda _: deferToThread(again, restart(False)))
        d.addCallback(lambda _: deferToThread(again, restart(True)))
        return d
