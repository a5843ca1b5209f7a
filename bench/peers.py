"""
What the benchmarks share: loopback ports, starting gateway under twistd,
and starting Dovecot as a peer over a Maildir the benchmark prepared.

Import it as C{from bench import peers} after putting the repository root
(not C{bench/}, whose C{http.py} shadows the standard library) on
C{sys.path}.
"""

import os
import shutil
import socket
import subprocess
import sys
import time


def freePort():
    """
    A TCP port on 127.0.0.1 that was free a moment ago.
    """
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def waitForPort(port, child=None, timeout=60):
    """
    Wait until something accepts connections on C{port}; give up early when
    C{child} (a C{Popen}) exits.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            if child is not None and child.poll() is not None:
                return False
            time.sleep(0.1)
    return False


def startGateway(tmp, config, port):
    """
    gateway under this Python's C{twistd}, in the foreground, with the
    configuration file C{config}, its log in C{tmp/twistd.log}, once it
    accepts connections on C{port}.

    @return: the C{Popen}.
    @raise RuntimeError: when it did not start.
    """
    child = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "twistd"), "--nodaemon", "--pidfile=",
         "--logfile", os.path.join(tmp, "twistd.log"), "gateway", "--config", config],
        cwd=tmp,
    )
    if not waitForPort(port, child):
        raise RuntimeError("gateway did not start; see %s/twistd.log" % (tmp,))
    return child


def dovecotBinary():
    return shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)


def dovecotImapInstalled():
    """
    Whether Dovecot and its IMAP server are installed; says so when not.
    """
    if dovecotBinary() is None or not os.path.exists("/usr/lib/dovecot/imap"):
        print("dovecot: not installed (apt-get install -y dovecot-imapd): skipped")
        return False
    return True


def runDovecot(tmp, confTemplate, user, password, ownedFolders):
    """
    Start Dovecot in the foreground with C{confTemplate} (formatted with
    C{tmp}, C{uid}, C{gid}, C{port}) and a passwd-file at C{tmp/passwd}
    holding C{user}'s C{{PLAIN}} password (C{user} may be a list of users,
    all with that password).  As root, mail processes run as C{nobody}, who
    is given C{ownedFolders}.

    @return: C{(process, port)}, or C{None} when it did not start.
    """
    binary = dovecotBinary()
    os.makedirs(os.path.join(tmp, "home"), exist_ok=True)
    with open(os.path.join(tmp, "passwd"), "w") as f:
        for name in [user] if isinstance(user, str) else user:
            f.write("%s:{PLAIN}%s\n" % (name, password))
    # Dovecot's auth processes run as its unprivileged users.
    for path in (os.path.dirname(tmp), tmp):
        os.chmod(path, 0o755)
    os.chmod(os.path.join(tmp, "passwd"), 0o644)
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        # Dovecot will not run mail processes as root.
        import pwd

        nobody = pwd.getpwnam("nobody")
        uid, gid = nobody.pw_uid, nobody.pw_gid
        for base in list(ownedFolders) + [os.path.join(tmp, "home")]:
            for folder, dirs, files in os.walk(base):
                for name in [folder] + [os.path.join(folder, n) for n in dirs + files]:
                    os.chown(name, uid, gid)
    port = freePort()
    conf = os.path.join(tmp, "dovecot.conf")
    with open(conf, "w") as f:
        f.write(confTemplate.format(tmp=tmp, uid=uid, gid=gid, port=port))
    child = subprocess.Popen([binary, "-F", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if waitForPort(port, child):
        return child, port
    print("dovecot: did not start (see %s/dovecot.log): skipped" % (tmp,))
    child.kill()
    child.wait()
    return None


def serveStock(protocolClass, avatarInterface, makeAvatar, user, password):
    """
    Run one of Twisted's stock servers (C{imap4.IMAP4Server},
    C{pop3.POP3}) on a loopback port: a portal with an in-memory checker for
    C{user}/C{password} whose realm answers with C{makeAvatar()}.  Prints
    the port, then runs the reactor (for a benchmark's child process).
    """
    from twisted.cred import checkers, portal
    from twisted.internet import protocol, reactor
    from zope.interface import implementer

    @implementer(portal.IRealm)
    class Realm:
        def requestAvatar(self, avatarId, mind, *interfaces):
            return avatarInterface, makeAvatar(), lambda: None

    thePortal = portal.Portal(Realm())
    db = checkers.InMemoryUsernamePasswordDatabaseDontUse()
    db.addUser(user.encode(), password.encode())
    thePortal.registerChecker(db)

    class Factory(protocol.ServerFactory):
        def buildProtocol(self, addr):
            p = protocolClass()
            p.portal = thePortal
            p.factory = self
            return p

    port = reactor.listenTCP(0, Factory(), interface="127.0.0.1", backlog=200)
    print(port.getHost().port, flush=True)
    reactor.run()
