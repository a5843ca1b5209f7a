# -*- test-case-name: tests.test_ftp -*-
"""
The FTP command table, in the style of pyftpdlib's C{proto_cmds}: one row
per command says whether it needs a login, whether it takes an argument,
and its help text.  The table drives dispatch, C{HELP} and C{FEAT}.
"""

import attr


@attr.s(frozen=True)
class Command:
    """
    @ivar name: the command verb, upper case.
    @ivar auth: needs a logged-in session.
    @ivar arg: C{True} (required), C{False} (none allowed) or C{None}
        (optional).
    @ivar help: syntax and one-line description for C{HELP}.
    @ivar feature: the C{FEAT} line this command adds, or C{None}.
    @ivar urgent: may run while a transfer is in progress (others wait).
    """

    name = attr.ib()
    auth = attr.ib()
    arg = attr.ib()
    help = attr.ib()
    feature = attr.ib(default=None)
    urgent = attr.ib(default=False)


_ROWS = [
    Command("ABOR", True, False, "ABOR (abort the data transfer)", urgent=True),
    Command("APPE", True, True, "APPE <SP> file-name (append data to a file)"),
    Command("AUTH", False, True, "AUTH <SP> TLS (protect the control channel)", feature="AUTH TLS"),
    Command("CDUP", True, False, "CDUP (go to the parent folder)"),
    Command("CWD", True, True, "CWD <SP> folder (change the current folder)", feature="TVFS"),
    Command("DELE", True, True, "DELE <SP> file-name (delete a file)"),
    Command("EPRT", True, True, "EPRT <SP> |proto|ip|port| (active data connection)"),
    Command("EPSV", True, None, "EPSV (extended passive data connection)", feature="EPSV"),
    Command("FEAT", False, False, "FEAT (list the extensions)"),
    Command("HELP", False, None, "HELP [<SP> command] (show help)"),
    Command("LIST", True, None, "LIST [<SP> path] (list a folder, ls -l style)"),
    Command("MDTM", True, True, "MDTM <SP> file-name (modification time)", feature="MDTM"),
    Command("MKD", True, True, "MKD <SP> folder (make a folder)"),
    Command("MLSD", True, None, "MLSD [<SP> folder] (machine listing of a folder)",
            feature="MLST type*;size*;modify*;perm*;"),
    Command("MLST", True, None, "MLST [<SP> path] (machine facts of one path)"),
    Command("MODE", True, True, "MODE <SP> S (transfer mode; only stream)"),
    Command("NLST", True, None, "NLST [<SP> path] (list names)"),
    Command("NOOP", False, False, "NOOP (do nothing)", urgent=True),
    Command("OPTS", False, True, "OPTS <SP> UTF8 ON (options)"),
    Command("PASS", False, None, "PASS <SP> password (log in)"),
    Command("PASV", True, False, "PASV (passive data connection)"),
    Command("PBSZ", False, True, "PBSZ <SP> 0 (protection buffer size)", feature="PBSZ"),
    Command("PORT", True, True, "PORT <SP> h1,h2,h3,h4,p1,p2 (active data connection)"),
    Command("PROT", False, True, "PROT <SP> P|C (data channel protection)", feature="PROT"),
    Command("PWD", True, False, "PWD (print the current folder)"),
    Command("QUIT", False, False, "QUIT (log out and close)", urgent=True),
    Command("REST", True, True, "REST <SP> offset (restart a transfer)", feature="REST STREAM"),
    Command("RETR", True, True, "RETR <SP> file-name (download a file)"),
    Command("RMD", True, True, "RMD <SP> folder (remove an empty folder)"),
    Command("RNFR", True, True, "RNFR <SP> file-name (rename from)"),
    Command("RNTO", True, True, "RNTO <SP> file-name (rename to)"),
    Command("SIZE", True, True, "SIZE <SP> file-name (size in bytes)", feature="SIZE"),
    Command("STAT", False, None, "STAT [<SP> path] (status, or a listing over the control)", urgent=True),
    Command("STOR", True, True, "STOR <SP> file-name (upload a file)"),
    Command("STRU", True, True, "STRU <SP> F (file structure; only file)"),
    Command("SYST", False, False, "SYST (system type)"),
    Command("TYPE", True, True, "TYPE <SP> A|I (data type)"),
    Command("USER", False, True, "USER <SP> name (log in)"),
    Command("XCUP", True, False, "XCUP (same as CDUP)"),
    Command("XCWD", True, True, "XCWD <SP> folder (same as CWD)"),
    Command("XMKD", True, True, "XMKD <SP> folder (same as MKD)"),
    Command("XPWD", True, False, "XPWD (same as PWD)"),
    Command("XRMD", True, True, "XRMD <SP> folder (same as RMD)"),
]

#: verb -> L{Command}
COMMANDS = {row.name: row for row in _ROWS}

#: Commands answered by the handler of another.
ALIASES = {"XCUP": "CDUP", "XCWD": "CWD", "XMKD": "MKD", "XPWD": "PWD", "XRMD": "RMD"}


def featureLines(tlsAvailable):
    """
    The C{FEAT} reply's feature lines, from the table, plus C{UTF8}.
    """
    lines = []
    for row in _ROWS:
        if row.feature is None:
            continue
        if not tlsAvailable and row.name in ("AUTH", "PBSZ", "PROT"):
            continue
        lines.append(row.feature)
    lines.append("UTF8")
    return sorted(lines)


def helpLines():
    """
    The C{HELP} reply's body: the verbs, eight to a line.
    """
    names = sorted(COMMANDS)
    return [" ".join("%-5s" % n for n in names[i : i + 8]).rstrip() for i in range(0, len(names), 8)]
