# -*- test-case-name: tests.test_ftp_e2e -*-
"""
The FTP commands over the account's file store, and the data-channel
commands.

Every client path goes through C{fileStore.resolve(path, cwd)}; everything
that touches the disk runs in a thread (the C{_fs*} functions below are the
blocking halves).  Names are UTF-8; files whose names start with
C{TEMP_PREFIX} (uploads in progress) are neither listed nor reachable.
"""

import errno
import functools
import os
import stat
import time

from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.internet.threads import deferToThreadPool

from gateway import caches
from gateway.errors import InvalidPath, QuotaExceeded
from gateway.ftp import data
from gateway.store.files import TEMP_PREFIX

#: Seconds to wait for the client to open a data connection.
DATA_TIMEOUT = 30
#: Files up to this size are read whole and sent from memory.
SMALL = 256 * 1024


class Transfer:
    """
    A data transfer in progress.
    """

    def __init__(self, dataProtocol, counter):
        self.dataProtocol = dataProtocol
        self._counter = counter
        self.aborting = False
        self.stream = None

    def progress(self):
        return self._counter()


# -- blocking helpers (run in threads) --------------------------------------


def _checkName(filePath):
    if filePath.basename().startswith(TEMP_PREFIX):
        raise FileNotFoundError(filePath.path)


def _fsResolve(fs, path, cwd):
    target = fs.resolve(path, cwd)
    _checkName(target)
    return target


def _fsChdir(fs, path, cwd):
    target = _fsResolve(fs, path, cwd)
    if not target.isdir():
        raise NotADirectoryError(path)
    return fs.clientPath(target)


def _mode(st):
    return stat.filemode(st.st_mode)


@caches.kept
@functools.lru_cache(maxsize=4096)
def _minuteText(minute, recent):
    t = time.gmtime(minute * 60)
    return time.strftime("%b %d %H:%M" if recent else "%b %d  %Y", t)


def _listTime(mtime, now):
    # Formatted once per minute (a folder's files often share one).
    return _minuteText(int(mtime // 60), not (now - mtime > 180 * 86400 or mtime > now + 86400))


@caches.kept
@functools.lru_cache(maxsize=4096)
def _modifyText(second):
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(second))


def _facts(st, isCurrent=False):
    isDir = stat.S_ISDIR(st.st_mode)
    return "type=%s;size=%d;modify=%s;perm=%s;" % (
        "cdir" if isCurrent else "dir" if isDir else "file",
        st.st_size,
        _modifyText(int(st.st_mtime)),
        "flcdmpe" if isDir else "adfrw",
    )


def _entries(fs, target):
    """
    C{(name, stat)} of a folder's visible entries: no temporary files, no
    links that lead out of the root.

    @raise NotADirectoryError: C{target} is not a folder.
    """
    folder = fs.clientPath(target)
    result = []
    with os.scandir(target.path) as it:
        for entry in it:
            if entry.name.startswith(TEMP_PREFIX):
                continue
            try:
                if entry.is_symlink():
                    fs.resolve(entry.name, folder)
                result.append((entry.name, entry.stat()))
            except (InvalidPath, OSError):
                continue
    result.sort()
    return result


def _fsListing(fs, path, cwd, kind):
    """
    A listing as bytes: C{kind} is C{'LIST'}, C{'NLST'}, C{'MLSD'} or
    C{'STAT'} (LIST lines without the data connection).
    """
    args = [a for a in (path or "").split(" ") if a and not a.startswith("-")] if kind != "MLSD" else [path]
    path = " ".join(args) if kind != "MLSD" else (path or "")
    target = _fsResolve(fs, path or ".", cwd)
    try:
        entries = _entries(fs, target)
    except NotADirectoryError:
        if kind == "MLSD":
            raise
        entries = [(target.basename(), os.stat(target.path))]
    now = time.time()
    if kind == "NLST":
        lines = [name for name, st in entries]
    elif kind == "MLSD":
        lines = ["%s %s" % (_facts(st), name) for name, st in entries]
    else:
        lines = ["%s 1 owner group %13d %s %s" % (_mode(st), st.st_size, _listTime(st.st_mtime, now), name)
                 for name, st in entries]
    if kind == "STAT":
        return lines
    return "".join(line + "\r\n" for line in lines).encode("utf-8", "surrogateescape")


def _fsMlst(fs, path, cwd):
    target = _fsResolve(fs, path or ".", cwd)
    return "%s %s" % (_facts(os.stat(target.path)), fs.clientPath(target))


def _fsOpen(fs, path, cwd, offset, binary):
    """
    A file to download: C{bytes} when it is small, else a file object;
    converted to CRLF line ends unless C{binary} (C{TYPE A}).  Small files
    take four system calls (open, fstat, pread, close): each one in a
    thread hands the GIL to the reactor and back.
    """
    target = _fsResolve(fs, path, cwd)
    fd = os.open(target.path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(path)
        offset = offset or 0
        left = st.st_size - offset
        if left > SMALL:
            os.lseek(fd, offset, os.SEEK_SET)
            f, fd = open(fd, "rb"), None
            return f if binary else data.ConvertingReader(f, data.ASCIIEncoder())
        # Small files go in one piece, without more thread round trips.
        content = os.pread(fd, left, offset) if left > 0 else b""
    finally:
        if fd is not None:
            os.close(fd)
    return content if binary else data.ASCIIEncoder()(content)


def _fsUploadTarget(fs, path, cwd, append, offset):
    target = _fsResolve(fs, path, cwd)
    if target.isdir() or target.path == fs.root.path:
        raise IsADirectoryError(path)
    if not target.parent().isdir():
        raise FileNotFoundError(path)
    if offset and (not target.exists() or target.getsize() < offset):
        raise InvalidPath("restart offset beyond the end of the file")
    return fs.clientPath(target)


def _fsSize(fs, path, cwd):
    target = _fsResolve(fs, path, cwd)
    if target.isdir():
        raise IsADirectoryError(path)
    return target.getsize()


def _fsMdtm(fs, path, cwd):
    target = _fsResolve(fs, path, cwd)
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(os.stat(target.path).st_mtime))


def _fsDele(fs, path, cwd):
    target = _fsResolve(fs, path, cwd)
    if target.isdir():
        raise IsADirectoryError(path)
    fs.remove(fs.clientPath(target))


def _fsMkd(fs, path, cwd):
    target = _fsResolve(fs, path, cwd)
    os.mkdir(target.path)
    return fs.clientPath(target)


def _fsRmd(fs, path, cwd):
    target = _fsResolve(fs, path, cwd)
    if target.path == fs.root.path:
        raise PermissionError("cannot remove the root")
    os.rmdir(target.path)


def _fsRenameFrom(fs, path, cwd):
    target = _fsResolve(fs, path, cwd)
    if target.path == fs.root.path:
        raise PermissionError("cannot rename the root")
    if not os.path.lexists(target.path):
        raise FileNotFoundError(path)
    return fs.clientPath(target)


def _fsRename(fs, source, path, cwd):
    origin = _fsResolve(fs, source, "/")
    target = _fsResolve(fs, path, cwd)
    if target.path == fs.root.path:
        raise PermissionError("cannot rename over the root")
    if target.isdir():
        raise IsADirectoryError(path)
    os.rename(origin.path, target.path)


#: errno values of a full disk (or a full file-system quota of the server).
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _diskFull(failure):
    return failure.check(OSError) is not None and failure.value.errno in DISK_FULL


def _outcome(dp):
    """
    The reply to a download whose data connection C{dp} has closed: on a
    protected one nothing arrived unless the TLS handshake completed.
    """
    if dp.tls is not None and not dp.handshakeDone:
        return 426, "TLS handshake on the data connection not completed: nothing was sent"
    return 226, "Transfer complete"


def _quote(path):
    return '"%s"' % (path.replace('"', '""'),)


class ShellCommands:
    """
    Mixed into L{gateway.ftp.server.FTPSession}: the file-system and data
    channel commands.
    """

    # -- helpers ---------------------------------------------------------

    def _run(self, function, *args):
        return self.factory.fileSystemPool().run(function, self.account.fileStore, *args)

    def _fsError(self, failure, code=550):
        """
        Translate a store or OS error into a reply.
        """
        error = failure.value
        if isinstance(error, QuotaExceeded):
            self.reply(552, "Storage quota exceeded")
        elif _diskFull(failure):
            self._logDiskFull(failure)
            self.reply(552, "Insufficient storage space on the server")
        elif isinstance(error, InvalidPath):
            self.reply(code, "Path not allowed: %s" % (error,))
        elif isinstance(error, FileNotFoundError):
            self.reply(code, "No such file or folder")
        elif isinstance(error, FileExistsError):
            self.reply(code, "File or folder exists")
        elif isinstance(error, IsADirectoryError):
            self.reply(code, "Is a folder")
        elif isinstance(error, NotADirectoryError):
            self.reply(code, "Not a folder")
        elif isinstance(error, OSError):
            self.reply(code, "Failed: %s" % (error.strerror or "file system error",))
        else:
            return failure

    def _simple(self, function, args, success, code=550):
        d = self._run(function, *args)
        d.addCallbacks(success, self._fsError, errbackArgs=(code,))
        return d

    # -- folders ---------------------------------------------------------

    def ftp_PWD(self, arg):
        self.reply(257, "%s is the current folder" % (_quote(self.cwd),))

    def ftp_CWD(self, arg):
        def changed(path):
            self.cwd = path
            self.reply(250, "Folder changed to %s" % (path,))

        return self._simple(_fsChdir, (arg, self.cwd), changed)

    def ftp_CDUP(self, arg):
        return self.ftp_CWD("..")

    def ftp_MKD(self, arg):
        return self._simple(_fsMkd, (arg, self.cwd), lambda p: self.reply(257, "%s created" % (_quote(p),)))

    def ftp_RMD(self, arg):
        return self._simple(_fsRmd, (arg, self.cwd), lambda _: self.reply(250, "Folder removed"))

    # -- files -----------------------------------------------------------

    def ftp_SIZE(self, arg):
        if not self.binary:
            # The size as sent in TYPE A (RFC 3659 section 4) would take
            # converting the whole file: refused, as pyftpdlib and ProFTPD do.
            self.reply(550, "SIZE not allowed in ASCII mode: send TYPE I first")
            return
        return self._simple(_fsSize, (arg, self.cwd), lambda n: self.reply(213, "%d" % (n,)))

    def ftp_MDTM(self, arg):
        return self._simple(_fsMdtm, (arg, self.cwd), lambda t: self.reply(213, t))

    def ftp_DELE(self, arg):
        return self._simple(_fsDele, (arg, self.cwd), lambda _: self.reply(250, "File deleted"))

    def ftp_RNFR(self, arg):
        def ready(path):
            self.renameFrom = path
            self.reply(350, "Ready for RNTO")

        return self._simple(_fsRenameFrom, (arg, self.cwd), ready)

    def ftp_RNTO(self, arg):
        source, self.renameFrom = self.renameFrom, None
        if source is None:
            self.reply(503, "Send RNFR first")
            return
        return self._simple(_fsRename, (source, arg, self.cwd), lambda _: self.reply(250, "Renamed"), 553)

    def ftp_MLST(self, arg):
        return self._simple(_fsMlst, (arg, self.cwd), lambda line: self.reply(250, "Listing", [line]))

    def statPath(self, arg):
        return self._simple(_fsListing, (arg, self.cwd, "STAT"),
                            lambda lines: self.reply(213, "Status of %s:" % (arg,), lines or ["(empty)"]))

    # -- listings and transfers ------------------------------------------

    def _listing(self, arg, kind):
        d = self._run(_fsListing, arg, self.cwd, kind)
        d.addCallback(self._sendData)
        d.addErrback(self._fsError)
        return d

    def ftp_LIST(self, arg):
        return self._listing(arg, "LIST")

    def ftp_NLST(self, arg):
        return self._listing(arg, "NLST")

    def ftp_MLSD(self, arg):
        return self._listing(arg, "MLSD")

    def ftp_RETR(self, arg):
        offset, self.restOffset = self.restOffset, None
        d = self._run(_fsOpen, arg, self.cwd, offset, self.binary)
        d.addCallbacks(self._sendData, self._fsError)
        return d

    def ftp_STOR(self, arg):
        return self._upload(arg, False)

    def ftp_APPE(self, arg):
        return self._upload(arg, True)

    # -- data channel ----------------------------------------------------

    def _tlsForData(self):
        return self.factory.dataTLS() if self.protectData else None

    def _openData(self):
        """
        The data connection the last PASV/EPSV/PORT/EPRT set up.

        @return: a C{Deferred} firing with a L{data.DataProtocol}.
        """
        setup, self.data = self.data, None
        if setup is None:
            return defer.fail(ConnectionError("Use PASV, EPSV, PORT or EPRT first"))
        if isinstance(setup, data.PassiveListener):
            d = setup.wait()
            d.addTimeout(DATA_TIMEOUT, self.factory.clock)

            def timedOut(failure):
                setup.stop()
                return failure

            return d.addErrback(timedOut)
        _, host, port = setup
        factory = data.ActiveFactory(self._tlsForData())
        self.context.reactor.connectTCP(host, port, factory, timeout=DATA_TIMEOUT)
        return factory.connected

    def closeData(self, abort=False):
        """
        Drop the prepared data connection and abort a running transfer.
        """
        if isinstance(self.data, data.PassiveListener):
            self.data.stop()
        self.data = None
        if self.transfer is not None and abort:
            self.transfer.aborting = True
            if self.transfer.stream is not None:
                # Wake the upload's writer thread now, not when the reactor
                # gets round to the closed connection (at shutdown it won't).
                self.transfer.stream.abort()
            self.transfer.dataProtocol.close(abort=True)

    def _noData(self, failure):
        self.reply(425, "Cannot open the data connection")

    def _finishTransfer(self, transfer, code, text):
        if self.transfer is transfer:
            self.transfer = None
        if self.transport is None or self.transport.disconnected:
            return
        if transfer.aborting:
            self.reply(426, "Transfer aborted")
            self.reply(226, "ABOR successful")
        else:
            self.reply(code, text)

    def _sendData(self, fileObject):
        """
        Send a file object, or C{bytes} (a listing, a small file), on the
        data connection, then close both.
        """

        def connected(dp):
            self.reply(150, "Opening %s data connection" % ("TLS" if self.protectData else "clear",))
            if isinstance(fileObject, bytes):
                transfer = self.transfer = Transfer(dp, lambda: len(fileObject))
                data.writeNow(dp.transport, fileObject)
                dp.close()
                return dp.lost.addCallback(lambda _: self._finishTransfer(transfer, *_outcome(dp)))
            if data.SendfileSender.usable(fileObject, dp):
                sender = data.SendfileSender(fileObject, dp)
            else:
                sender = data.FileSender(fileObject, dp.transport)
            transfer = self.transfer = Transfer(dp, lambda: sender.sent)
            dp.lost.addCallback(lambda _: sender.stopProducing())
            done = sender.start()

            def sent(_):
                dp.close()
                return dp.lost.addCallback(lambda _: self._finishTransfer(transfer, *_outcome(dp)))

            def failed(failure):
                dp.close(abort=True)
                self._finishTransfer(transfer, 426, "Transfer failed")

            done.addCallbacks(sent, failed)
            return done

        d = self._openData()
        d.addCallbacks(connected, self._noData)
        d.addBoth(self._closeFile, fileObject)
        return d

    def _closeFile(self, result, fileObject):
        if not isinstance(fileObject, bytes):
            self.factory.fileSystemPool().run(fileObject.close)
        return result

    def _upload(self, arg, append):
        offset, self.restOffset = self.restOffset, None
        if append:
            offset = None
        d = self._run(_fsUploadTarget, arg, self.cwd, append, offset)
        d.addCallbacks(self._receive, self._fsError, callbackArgs=(append, offset), errbackArgs=(553,))
        return d

    def _receive(self, path, append, offset):
        fs = self.account.fileStore
        reactor = self.context.reactor

        def connected(dp):
            self.reply(150, "Opening %s data connection" % ("TLS" if self.protectData else "clear",))
            stream = data.UploadStream(reactor, dp.transport.pauseProducing, dp.transport.resumeProducing)
            transfer = self.transfer = Transfer(dp, lambda: stream.received)
            transfer.stream = stream
            dp.setReceiver(stream.feed)
            dp.lost.addCallback(lambda _: stream.abort() if transfer.aborting else stream.finish(not dp.truncated))
            source = stream if self.binary else data.ConvertingReader(stream, data.ASCIIDecoder())
            written = deferToThreadPool(
                reactor, self.factory.uploadPool(), fs.writeFile, path, source,
                append=append, offset=offset or None, keepPartial=self.factory.keepPartialUploads,
            )

            def stored(_):
                return dp.lost.addCallback(lambda _: self._finishTransfer(transfer, 226, "Transfer complete"))

            def failed(failure):
                # Take (and drop) the rest of the upload, then answer, so the
                # client reads the reply instead of a reset connection.
                dp.setReceiver(lambda _: None)
                dp.transport.resumeProducing()
                if failure.check(QuotaExceeded):
                    code, text = 552, "Storage quota exceeded; nothing was stored"
                elif _diskFull(failure):
                    self._logDiskFull(failure)
                    code, text = 552, "Insufficient storage space on the server; nothing was stored"
                elif failure.check(data.TransferAborted) and dp.truncated:
                    # Never a 226: the client learns (over the protected
                    # control channel) that the file is short; what arrived
                    # was kept for a resume when [ftp] keep_partial_uploads
                    # is on, and by APPE and REST writes.
                    code, text = 426, "Data connection closed without TLS close_notify: upload incomplete"
                elif failure.check(data.TransferAborted):
                    code, text = 426, "Transfer aborted"
                elif failure.check(InvalidPath):
                    code, text = 553, "Cannot store the file: %s" % (failure.getErrorMessage(),)
                elif failure.check(OSError):
                    # The reason, not the server's path or errno.
                    code, text = 553, "Cannot store the file: %s" % (failure.value.strerror or "file system error",)
                else:
                    code, text = 451, "Upload failed"
                    self._logFailure(failure)
                return dp.lost.addCallback(lambda _: self._finishTransfer(transfer, code, text))

            written.addCallbacks(stored, failed)
            return written

        d = self._openData()
        d.addCallbacks(connected, self._noData)
        return d

    def _logFailure(self, failure):
        from gateway.ftp.server import log

        log.failure("FTP upload failed", failure)

    def _logDiskFull(self, failure):
        from gateway.ftp.server import log

        log.warn("FTP: the disk is full ({error}) for {address}", error=failure.value.strerror,
                 address=self.account.address)

    # -- PASV / EPSV / PORT / EPRT / ABOR --------------------------------

    def _listen(self):
        self.closeData()
        context = self.loginContext()
        host, peer = context.localAddress, context.remoteAddress
        try:
            listener = data.listenPassive(
                self.context.reactor, host, peer, self._tlsForData(), self.factory.passivePorts)
        except CannotListenError:
            self.reply(425, "No free port for a passive data connection")
            return None
        self.data = listener
        return listener.port

    def ftp_PASV(self, arg):
        announced = self.factory.passiveAddress or self.loginContext().localAddress
        if ":" in announced:
            self.reply(425, "PASV needs IPv4; use EPSV")
            return
        port = self._listen()
        if port is not None:
            numbers = announced.split(".") + [str(port >> 8), str(port & 0xFF)]
            self.reply(227, "Entering Passive Mode (%s)" % (",".join(numbers),))

    def ftp_EPSV(self, arg):
        if arg and arg.upper() == "ALL":
            self.reply(200, "EPSV ALL accepted")
            return
        port = self._listen()
        if port is not None:
            self.reply(229, "Entering Extended Passive Mode (|||%d|)" % (port,))

    def _active(self, host, port):
        if host != self.loginContext().remoteAddress:
            self.reply(501, "Data connections go only to your own address")
            return
        if not 1024 <= port < 65536:
            self.reply(501, "Refusing a privileged data port")
            return
        self.closeData()
        self.data = ("active", host, port)
        self.reply(200, "Active data connection to %s port %d" % (host, port))

    def ftp_PORT(self, arg):
        try:
            parts = [int(n) for n in arg.split(",")]
            if len(parts) != 6 or not all(0 <= n < 256 for n in parts):
                raise ValueError()
        except ValueError:
            self.reply(501, "PORT needs h1,h2,h3,h4,p1,p2")
            return
        self._active(".".join(str(n) for n in parts[:4]), parts[4] * 256 + parts[5])

    def ftp_EPRT(self, arg):
        try:
            delimiter = arg[0]
            _, proto, host, port, _ = arg.split(delimiter)
            port = int(port)
            if proto not in ("1", "2"):
                self.reply(522, "Network protocol not supported, use (1,2)")
                return
        except (ValueError, IndexError):
            self.reply(501, "EPRT needs |proto|address|port|")
            return
        self._active(host, port)

    def ftp_ABOR(self, arg):
        if self.transfer is not None:
            self.closeData(abort=True)
            return
        self.closeData()
        self.reply(225, "No transfer to abort")
