# -*- test-case-name: tests.test_monitor -*-
"""
C{gatewayctl who}: the sessions of the running server, read from the
admin listener's C{/sessions}.
"""

import json
import urllib.request

#: sysexits EX_UNAVAILABLE: the server cannot be asked.
EX_UNAVAILABLE = 69


class WhoError(Exception):
    """
    The admin listener cannot be reached; the text says why.
    """


def adminURL(config):
    """
    The base URL of the first C{tcp:} endpoint of C{[admin] listen}.

    @raise WhoError: when the admin listener is off or has no C{tcp:}
        endpoint.
    """
    if not config["admin", "enabled"]:
        raise WhoError("[admin] enabled is no: the server has no admin listener")
    for description in config["admin", "listen"]:
        parts = description.split(":")
        if parts[0] == "tcp" and len(parts) > 1:
            args = dict(part.partition("=")[::2] for part in parts[2:])
            host = args.get("interface") or "127.0.0.1"
            if host in ("0.0.0.0", "::"):
                host = "127.0.0.1"
            if ":" in host:
                host = "[%s]" % (host,)
            return "http://%s:%s" % (host, parts[1])
    raise WhoError("[admin] listen has no tcp: endpoint to ask")


def fetchSessions(config, timeout=10):
    url = adminURL(config) + "/sessions"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read().decode("utf-8"))["sessions"]
    except (OSError, ValueError, KeyError) as e:
        raise WhoError("%s: %s (is the server running?)" % (url, getattr(e, "reason", None) or e))


COLUMNS = ("protocol", "account", "remote", "since", "mailbox", "idle", "xmapi")


def formatSessions(sessions):
    """
    The sessions as a table, one per line; with worker processes, a
    C{WORKER} column says which one has each session.
    """
    workers = any("worker" in s for s in sessions)
    rows = [("PROTOCOL", "ACCOUNT", "REMOTE", "SINCE", "MAILBOX", "IDLE", "XMAPI") + (("WORKER",) if workers else ())]
    for s in sessions:
        rows.append((
            s["protocol"], s["account"] or "-", s["remote"] or "-", s["since"] or "-", s["mailbox"] or "-",
            "yes" if s["idle"] else "no", "yes" if s["xmapi"] else "no",
        ) + ((str(s.get("worker", "-")),) if workers else ()))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n" for row in rows
    )


def addParser(commands):
    """
    Add C{who} to C{gatewayctl}'s sub-commands.
    """
    p = commands.add_parser("who", help="list the sessions of the running server (from its admin listener)")
    p.add_argument("--json", action="store_true", help="print the sessions as JSON")
    # It asks the running server, so it works where the data root is not readable.
    p.set_defaults(run=whoCommand, needsConfig=True, needsDataRoot=False)


def whoCommand(directory, args, out, config):
    """
    C{gatewayctl who [--json]}.
    """
    from gateway.ctl import Failure

    try:
        sessions = fetchSessions(config)
    except WhoError as e:
        raise Failure(str(e), EX_UNAVAILABLE)
    if args.json:
        out.write(json.dumps(sessions, indent=1) + "\n")
    else:
        out.write(formatSessions(sessions))
