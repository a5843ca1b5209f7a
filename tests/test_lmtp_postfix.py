# -*- test-case-name: tests.test_lmtp_postfix -*-
"""
End to end with Postfix itself: a private Postfix instance (its own
configuration, queue and data folders in a temporary folder, SMTP on a free
loopback port, no chroot) asks our socketmap service which recipients exist
and delivers to our LMTP listener, exactly as the README tells an admin to
set it up.

Needs Debian's C{postfix} (C{make tools} installs it when run as root) and
root (Postfix's master starts as root and runs its daemons as the
C{postfix} user); skipped otherwise, with the reason.
"""

import glob
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time

from twisted.internet import reactor, task, threads
from twisted.internet.defer import inlineCallbacks
from twisted.trial import unittest

from gateway.lmtp.server import makeFactory as lmtpFactory
from gateway.lmtp.socketmap import makeFactory as socketmapFactory
from tests.support import makeTestContext

POSTFIX = shutil.which("postfix", path="/usr/sbin:/usr/bin:/sbin:/bin")

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
myhostname = mx.example.net
mydomain = example.net
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains =
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtputf8_enable = no
smtpd_peername_lookup = no
virtual_mailbox_domains = socketmap:inet:127.0.0.1:{socketmap}:domain
virtual_mailbox_maps = socketmap:inet:127.0.0.1:{socketmap}:virtual
virtual_transport = lmtp:inet:127.0.0.1:{lmtp}
"""

#: The services a mail hub needs, none chrooted (the queue folder holds no
#: copy of /etc).
MASTER_CF = """\
127.0.0.1:{smtp} inet n - n - - smtpd
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n -  0 cleanup
qmgr       unix  n - n 300 1 qmgr
rewrite    unix  - - n -  - trivial-rewrite
bounce     unix  - - n -  0 bounce
defer      unix  - - n -  0 bounce
trace      unix  - - n -  0 bounce
verify     unix  - - n -  1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -  - proxymap
proxywrite unix  - - n -  1 proxymap
smtp       unix  - - n -  - smtp
relay      unix  - - n -  - smtp
showq      unix  n - n -  - showq
error      unix  - - n -  - error
retry      unix  - - n -  - error
discard    unix  - - n -  - discard
lmtp       unix  - - n -  - lmtp
anvil      unix  - - n -  1 anvil
scache     unix  - - n -  1 scache
postlog    unix-dgram n - n - 1 postlogd
"""

MESSAGE = (
    b"From: sender@example.org\r\nTo: demo@example.test\r\nSubject: through Postfix\r\n"
    b"Message-ID: <postfix-e2e@example.org>\r\n\r\nhello over LMTP\r\n"
)


def freePort():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _running(pid):
    """
    Is process C{pid} alive (a zombie is not)?
    """
    try:
        with open("/proc/%d/stat" % (pid,)) as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


class PrivatePostfix:
    """
    A Postfix instance of its own in C{root}.
    """

    def __init__(self, root, smtp, socketmap, lmtp):
        self.root = root
        self.config = os.path.join(root, "etc")
        os.chmod(root, 0o755)  # the postfix user must reach its queue
        os.mkdir(self.config)
        os.mkdir(os.path.join(root, "queue"), 0o755)
        values = dict(root=root, smtp=smtp, socketmap=socketmap, lmtp=lmtp)
        with open(os.path.join(self.config, "main.cf"), "w") as f:
            f.write(MAIN_CF.format(**values))
        with open(os.path.join(self.config, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(**values))

    def command(self, *args):
        return subprocess.run(
            [POSTFIX, "-c", self.config] + list(args), capture_output=True, text=True, timeout=60,
        )

    def start(self):
        result = self.command("start")
        if result.returncode != 0:
            raise RuntimeError("postfix start failed: %s%s\n%s" % (result.stdout, result.stderr, self.log()))

    def masterPid(self):
        try:
            with open(os.path.join(self.root, "queue", "pid", "master.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        """
        Stop the instance whatever state it is in: C{postfix stop}, then
        SIGKILL to the master and its children if they are still there.
        """
        pid = self.masterPid()
        self.command("stop")
        if pid is None:
            return
        for _ in range(100):
            if not _running(pid):
                return
            time.sleep(0.1)
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except OSError:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def log(self):
        try:
            with open(os.path.join(self.root, "maillog")) as f:
                return f.read()
        except FileNotFoundError:
            return "(no maillog)"


def mailFiles(context, local, mailbox):
    root = os.path.join(context.config.dataRoot(), "domains", "example.test", "accounts", local, "mail", mailbox)
    return sorted(glob.glob(os.path.join(root, "new", "*")) + glob.glob(os.path.join(root, "cur", "*")))


class PostfixTests(unittest.TestCase):
    timeout = 120

    def setUp(self):
        if POSTFIX is None:
            raise unittest.SkipTest("Postfix is not installed (as root, `make tools` installs Debian's postfix)")
        if os.geteuid() != 0:
            raise unittest.SkipTest("a private Postfix instance needs root (its master runs daemons as postfix)")
        self.context = makeTestContext(self, reactor=reactor, clock=reactor)
        lmtp = reactor.listenTCP(0, lmtpFactory(self.context), interface="127.0.0.1")
        self.addCleanup(lmtp.stopListening)
        socketmap = reactor.listenTCP(0, socketmapFactory(self.context), interface="127.0.0.1")
        self.addCleanup(socketmap.stopListening)
        root = tempfile.mkdtemp(prefix="gateway-postfix-")
        self.addCleanup(shutil.rmtree, root, True)
        self.smtpPort = freePort()
        self.postfix = PrivatePostfix(root, self.smtpPort, socketmap.getHost().port, lmtp.getHost().port)
        self.addCleanup(self.postfix.stop)
        self.postfix.start()

    def waitFor(self, condition, what):
        """
        Poll C{condition} on the reactor until it is true; fail naming
        C{what}, with Postfix's log, if it never becomes true.
        """
        d = task.deferLater(reactor, 0, lambda: None)
        deadline = time.monotonic() + 60

        def check(_):
            if condition():
                return None
            if time.monotonic() > deadline:
                self.fail("%s never happened; Postfix's log:\n%s" % (what, self.postfix.log()))
            return task.deferLater(reactor, 0.1, lambda: None).addCallback(check)

        return d.addCallback(check)

    @inlineCallbacks
    def test_postfixDeliversOverLMTP(self):
        """Postfix refuses an unknown recipient at RCPT (550 5.1.1, from our socketmap) and delivers the
        known ones over LMTP: demo into INBOX, demo+Calendar into Calendar, with our envelope headers."""
        port = self.smtpPort

        def send():
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                client.ehlo("client.example.org")
                refused = client.sendmail(
                    "sender@example.org",
                    ["demo@example.test", "demo+Calendar@example.test", "nobody@example.test"],
                    MESSAGE,
                )
                client.mail("sender@example.org")
                unknown = client.rcpt("nobody@example.test")
                client.rset()
                return refused, unknown

        refused, unknown = yield threads.deferToThread(send)
        self.assertEqual(list(refused), ["nobody@example.test"])
        self.assertEqual(refused["nobody@example.test"][0], 550)
        self.assertEqual(unknown[0], 550)
        self.assertIn(b"5.1.1", unknown[1])
        self.assertIn(b"User unknown in virtual mailbox table", unknown[1])

        yield self.waitFor(
            lambda: mailFiles(self.context, "demo", "INBOX") and mailFiles(self.context, "demo", "Calendar"),
            "delivery into INBOX and Calendar",
        )
        [inbox] = mailFiles(self.context, "demo", "INBOX")
        [calendar] = mailFiles(self.context, "demo", "Calendar")
        with open(inbox, "rb") as f:
            inboxCopy = f.read()
        with open(calendar, "rb") as f:
            calendarCopy = f.read()
        self.assertTrue(inboxCopy.startswith(
            b"Return-Path: <sender@example.org>\r\nDelivered-To: demo@example.test\r\nReceived: "))
        self.assertTrue(calendarCopy.startswith(
            b"Return-Path: <sender@example.org>\r\nDelivered-To: demo+Calendar@example.test\r\n"))
        for copy in (inboxCopy, calendarCopy):
            self.assertIn(b"\r\nSubject: through Postfix\r\n", copy)
            self.assertTrue(copy.endswith(b"\r\n\r\nhello over LMTP\r\n"))
        self.assertEqual(mailFiles(self.context, "other", "INBOX"), [])
        yield self.waitFor(lambda: self.postfix.log().count("status=sent") == 2, "two status=sent lines")
