"""
Shared test fixtures: a data root with a domain and accounts, a
configuration, and the L{ServiceContext} front-ends are built with.
"""

import os
import tempfile

import icalendar
from twisted.internet.task import Clock

from gateway.config import defaultConfig
from gateway.cred.passwords import hashPassword
from gateway.directory.filedir import FileDirectory
from gateway.service import makeContext
from gateway.store.mail import MailStore
from gateway.tlscert import makeSelfSigned

PASSWORD = "s3cret pass"

_CERT = {}


def testCertificate():
    """
    Paths C{(cert, key)} of a self-signed certificate for localhost and
    127.0.0.1, made once per test run.
    """
    if not _CERT:
        folder = tempfile.mkdtemp(prefix="gateway-test-tls-")
        cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        makeSelfSigned(cert, key)
        _CERT["paths"] = (cert, key)
    return _CERT["paths"]


testCertificate.__test__ = False  # a fixture, not a test


def makeDataRoot(path, cleartextLogin=True, quota=None, scheme="PLAIN"):
    """
    A data root at C{path} with domain C{example.test} (main) holding
    C{demo@example.test} (alias C{demo.user}) and C{other@example.test},
    both with password L{PASSWORD}.

    @return: the L{FileDirectory}.
    """
    directory = FileDirectory(path, "example.test")
    directory.addDomain("example.test", cleartextLogin=cleartextLogin)
    for name in ("demo", "other"):
        directory.addAccount(
            "%s@example.test" % (name,), hashPassword(PASSWORD, scheme), quota=quota,
            quotaSetting=str(quota) if quota else "default",
        )
    directory.setAccount("demo@example.test", aliases=("demo.user",))
    return directory


def makeTestConfig(dataRoot, overrides=None):
    """
    The default configuration pointing at C{dataRoot} and the test
    certificate; C{overrides} is a C{dict} of C{("section", "name"): value}.
    """
    config = defaultConfig()
    cert, key = testCertificate()
    config._values["server", "data_root"] = dataRoot
    config._values["tls", "certificate"] = cert
    config._values["tls", "private_key"] = key
    config._values["auth", "failure_delay"] = 0.0
    # No admin listener on its fixed port (tests run side by side).
    config._values["admin", "enabled"] = False
    config._values.update(overrides or {})
    return config


def makeTestContext(testCase, cleartextLogin=True, quota=None, reactor=None, clock=None, overrides=None):
    """
    A L{ServiceContext} over a fresh data root in the test's temporary folder.

    With the default C{clock=None} a L{Clock} is used by the checker, so
    logins complete synchronously (fine for C{StringTransport} tests); pass
    C{clock=reactor} for end-to-end tests over real sockets.  With the
    default C{reactor=None} the realm opens the mail stores of logins at
    once; with a reactor, in its thread pool.
    """
    dataRoot = testCase.mktemp()
    makeDataRoot(dataRoot, cleartextLogin=cleartextLogin, quota=quota)
    config = makeTestConfig(dataRoot, overrides)
    if clock is None:
        clock = Clock()
    context = makeContext(config, reactor=reactor, clock=clock)
    if reactor is None:
        # The mail stores of logins open at once, not in the thread pool.
        context.realm._reactor = None
    return context


def freeBusyPeriods(document):
    """
    The FREEBUSY periods of a document as C{{fbtype: [(start, end), ...]}},
    parsed with icalendar.
    """
    cal = icalendar.Calendar.from_ical(document)
    [vfreebusy] = cal.walk("VFREEBUSY")
    props = vfreebusy.get("FREEBUSY", [])
    if not isinstance(props, list):
        props = [props]
    result = {}
    for prop in props:
        for value in str(prop.to_ical().decode()).split(","):
            parsed = icalendar.vPeriod.from_ical(value)
            result.setdefault(prop.params["FBTYPE"], []).append(parsed)
    for spans in result.values():
        spans.sort()
    return result


class LoopbackIMAPMixin:
    """
    A test case's own IMAP server on a loopback port of the global reactor
    (C{self.port}, C{self.factory}, C{self.context}), for real clients
    (imaplib) run in a thread; its sessions are dropped at the end.
    """

    def setUp(self):
        from twisted.internet import reactor

        self.serveIMAP(makeTestContext(self, reactor=reactor, clock=reactor))

    def serveIMAP(self, context, tls=False):
        """
        Serve IMAP for C{context} on a loopback port of the global reactor
        (implicit TLS with its certificate if C{tls}), until the test ends.
        """
        from twisted.internet import reactor

        from gateway.imap.server import makeFactory

        self.context = context
        self.factory = makeFactory(context)
        if tls:
            port = reactor.listenSSL(0, self.factory, context.tls, interface="127.0.0.1")
        else:
            port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.port = port.getHost().port
        self.addCleanup(port.stopListening)
        self.addCleanup(self._dropSessions)

    def _dropSessions(self):
        for session in list(self.factory.sessions):
            session.transport.abortConnection()


def holdWriteLock(testCase, conn, end="ROLLBACK"):
    """
    Take the write lock of C{conn}'s database (C{BEGIN IMMEDIATE}), as
    another process's writer would, until the returned callable is called
    (at C{testCase}'s cleanup at the latest); it ends the transaction with
    C{end} and closes C{conn}.
    """
    conn.execute("BEGIN IMMEDIATE")
    released = []

    def release():
        if not released:
            released.append(True)
            conn.execute(end)
            conn.close()
    testCase.addCleanup(release)
    return release


def twoStores(testCase):
    """
    Two L{MailStore}s on one new folder, as two worker processes have,
    without inotify; closed at the test's cleanup.
    """
    path = testCase.mktemp()
    stores = []
    for _ in range(2):
        store = MailStore(path, useInotify=False)
        testCase.addCleanup(store.close)
        stores.append(store)
    return stores


def traceStatements(testCase, store, callback):
    """
    Call C{callback} with each statement C{store}'s own connection (the
    reactor thread's) runs, until the test's cleanup.
    """
    store._ownConn.set_trace_callback(callback)
    testCase.addCleanup(store._ownConn.set_trace_callback, None)


def perThread(get, pid="self"):
    """
    C{{thread id: get(thread id)}} for every thread of process C{pid} (this
    one by default), from C{/proc/PID/task}; a thread that ended meanwhile
    is left out.
    """
    result = {}
    for name in os.listdir("/proc/%s/task" % (pid,)):
        try:
            result[int(name)] = get(int(name))
        except ProcessLookupError:
            pass
    return result


def bareParent(test, clock):
    """
    A L{gateway.workers.WorkerParent} without processes, for its decisions
    alone: running, no restarts yet, C{clock} as its reactor and a data root
    of its own (where L{gateway.workerload} marks the workers that ended).
    """
    from twisted.application.service import MultiService

    from gateway import workers

    dataRoot = test.mktemp()

    class Config:
        def dataRoot(self):
            return dataRoot

    class Context:
        reactor = clock
        config = Config()

    parent = workers.WorkerParent.__new__(workers.WorkerParent)
    MultiService.__init__(parent)
    parent.context, parent.restarts, parent.running = Context(), 0, True
    return parent
