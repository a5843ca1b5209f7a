# -*- test-case-name: tests.test_mapi_client_e2e -*-
"""
A week's agenda through the XMAPI reference client, so a person can see the
extension work without Outlook:

    gatewayctl agenda ACCOUNT [--week DATE] [--folder NAME]... [--host HOST]
        [--port PORT] [--password-stdin] [--cafile PEM] [--no-tls]
    python -m gateway.mapi.client agenda ACCOUNT ...

When the server announces C{XMAPI} the occurrences come from C{UID SEARCH
XOVERLAPS} and C{FETCH XINSTANCES XPROPS} (the server expands the series);
otherwise the client fetches every calendar body and expands it with
C{recurring-ical-events}.  The output says which path it took.
"""

import argparse
import datetime
import email
import getpass
import sys

from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from gateway.mapi.client import UTC, CommandFailed, Occurrence, XMAPIClient

#: The two ways of reading a window (the first line of the output says which).
PATH_XMAPI = "XMAPI (server-side: UID SEARCH XOVERLAPS + FETCH XINSTANCES)"
PATH_CLIENT = "client-side (FETCH BODY[] + recurring-ical-events: the server does not announce XMAPI)"

EX_OK, EX_USAGE, EX_UNAVAILABLE, EX_NOPERM = 0, 64, 69, 77


def weekOf(day):
    """
    The window C{[Monday 00:00, next Monday 00:00)} UTC of the week holding C{day}.
    """
    monday = day - datetime.timedelta(days=day.weekday())
    start = datetime.datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
    return start, start + datetime.timedelta(days=7)


def isCalendar(folder):
    """
    Whether a listed folder's class is C{IPF.Appointment} or a sub-class.
    """
    cls = folder.folderClass
    return cls == "IPF.Appointment" or cls.startswith("IPF.Appointment.")


@defer.inlineCallbacks
def readAgenda(client, start, end, folders=None):
    """
    Every occurrence in C{[start, end)} in the given calendar folders (by
    default every calendar the store lists), through XMAPI when the server
    announces it, else client-side.

    @return: a L{Deferred} firing with C{(path, [(folder, Occurrence)])},
        sorted by start.
    """
    if folders is None:
        listed = yield client.listFolders()
        folders = [f.name for f in listed if isCalendar(f)]
    found = []
    for name in folders:
        yield client.select(name, readOnly=True)
        if client.speaksXMAPI:
            uids = yield client.searchOverlaps(start, end)
            fetched = yield client.fetchInstances(uids, start, end)
            for uid, (instances, props) in sorted(fetched.items()):
                for begin, finish, fbtype, recurrenceId in instances:
                    found.append((name, Occurrence(uid, begin, finish, fbtype, recurrenceId,
                                                   props.get("PidTagSubject"), props.get("PidLidLocation"))))
        else:
            bodies = yield client.fetchBodies()
            for uid, body in sorted(bodies.items()):
                for occurrence in expandBody(uid, body, start, end):
                    found.append((name, occurrence))
    found.sort(key=lambda pair: (pair[1].start, pair[0], pair[1].uid))
    return (PATH_XMAPI if client.speaksXMAPI else PATH_CLIENT), found


def _fbtype(component):
    if str(component.get("TRANSP", "")).upper() == "TRANSPARENT":
        return "FREE"
    status = str(component.get("STATUS", "")).upper()
    if status == "CANCELLED":
        return "FREE"
    if status == "TENTATIVE":
        return "BUSY-TENTATIVE"
    return "BUSY"


def _utc(value):
    if isinstance(value, datetime.datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.datetime(value.year, value.month, value.day, tzinfo=UTC)


def expandBody(uid, body, start, end):
    """
    The client-side way: the occurrences in C{[start, end)} of the
    C{text/calendar} part of one message, expanded by C{recurring-ical-events}.
    """
    import icalendar
    import recurring_ical_events

    if not body:
        return []
    message = email.message_from_bytes(body)
    occurrences = []
    for part in message.walk():
        if part.get_content_type() != "text/calendar":
            continue
        try:
            calendar = icalendar.Calendar.from_ical(part.get_payload(decode=True))
            events = recurring_ical_events.of(calendar).between(start, end)
        except Exception:  # a body the client cannot read is left out, not fatal
            continue
        for event in events:
            begin = _utc(event["DTSTART"].dt)
            finish = _utc(event["DTEND"].dt) if "DTEND" in event else begin
            recurrence = event.get("RECURRENCE-ID")
            occurrences.append(Occurrence(uid, begin, finish, _fbtype(event),
                                          _utc(recurrence.dt) if recurrence is not None else None,
                                          str(event.get("SUMMARY", "")) or None,
                                          str(event.get("LOCATION", "")) or None))
    return occurrences


def formatAgenda(path, found, start, end):
    """
    The agenda as text: a heading naming the path taken, one line per occurrence.
    """
    lines = ["Agenda %s to %s (UTC), via %s" % (start.strftime("%Y-%m-%d"),
                                                (end - datetime.timedelta(seconds=1)).strftime("%Y-%m-%d"), path)]
    if not found:
        lines.append("  (nothing)")
    for folder, o in found:
        text = "  %s - %s  %-14s %s" % (o.start.strftime("%a %Y-%m-%d %H:%M"), o.end.strftime("%H:%M"),
                                         o.fbtype, o.subject or "(no subject)")
        if o.location:
            text += " @ " + o.location
        lines.append(text + "  [%s]" % (folder,))
    return "\n".join(lines) + "\n"


def _tlsOptions(host, cafile):
    from twisted.internet import ssl

    if cafile:
        with open(cafile, "rb") as f:
            trust = ssl.Certificate.loadPEM(f.read())
        return ssl.optionsForClientTLS(host, trustRoot=trust)
    return ssl.optionsForClientTLS(host)


@defer.inlineCallbacks
def openSession(reactor, host, port, account, password, cafile=None, tls=True):
    """
    Connect, STARTTLS (unless C{tls} is false), and log in.

    @return: a L{Deferred} firing with the logged-in L{XMAPIClient}.
    """
    client = yield connectProtocol(TCP4ClientEndpoint(reactor, host, port), XMAPIClient())
    greeting = yield client.greeting
    if str(greeting[0]).upper() != "OK":
        client.transport.loseConnection()
        raise CommandFailed(str(greeting[0]).upper(), greeting[1], greeting[2])
    if tls:
        yield client.startTLS(_tlsOptions(host, cafile))
    elif not client.capabilities:
        yield client.capability()
    yield client.login(account, password)
    return client


@defer.inlineCallbacks
def agenda(reactor, args, password, out):
    """
    Run C{agenda} with parsed C{args}; write the agenda to C{out}.
    """
    day = datetime.date.fromisoformat(args.week) if args.week else datetime.datetime.now(UTC).date()
    start, end = weekOf(day)
    client = yield openSession(reactor, args.host, args.port, args.account, password,
                               cafile=args.cafile, tls=not args.no_tls)
    try:
        path, found = yield readAgenda(client, start, end, args.folder or None)
        out.write(formatAgenda(path, found, start, end))
    finally:
        try:
            yield client.logout()
        except Exception:
            pass
        client.transport.loseConnection()
    return EX_OK


def addArguments(p):
    p.add_argument("account", metavar="ACCOUNT", help="the account to log in as (name or name@domain)")
    p.add_argument("--week", metavar="DATE", help="a day (YYYY-MM-DD) of the week to show (default: this week)")
    p.add_argument("--folder", action="append", metavar="NAME",
                   help="a calendar to read, such as ~boss/Calendar (repeatable; default: every calendar listed)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=143)
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.add_argument("--cafile", metavar="PEM", help="trust this certificate (a self-signed server's)")
    p.add_argument("--no-tls", action="store_true", help="no STARTTLS (CRAM-MD5 is used when offered)")


def addParser(commands):
    """
    Add C{agenda} to C{gatewayctl}'s subcommands.
    """
    p = commands.add_parser("agenda", help="show a week's agenda through the XMAPI reference client")
    addArguments(p)
    p.set_defaults(run=lambda directory, args, out: runAgenda(args, out), needsDataRoot=False)


def runAgenda(args, out, stdin=None):
    """
    Read the password, run the reactor for one agenda, return an exit code.
    """
    from twisted.internet import reactor

    stdin = stdin or sys.stdin
    password = stdin.readline().rstrip("\r\n") if args.password_stdin else getpass.getpass()
    result = []

    def done(outcome):
        result.append(outcome)
        reactor.stop()

    def failed(failure):
        if failure.check(CommandFailed):
            sys.stderr.write("agenda: the server answered %s\n" % (failure.value,))
            return EX_NOPERM
        sys.stderr.write("agenda: %s\n" % (failure.getErrorMessage(),))
        return EX_UNAVAILABLE

    reactor.callWhenRunning(lambda: agenda(reactor, args, password, out).addErrback(failed).addBoth(done))
    reactor.run()
    return result[0] if result else EX_UNAVAILABLE


def main(argv=None, out=None):
    """
    C{python -m gateway.mapi.client agenda ...}.
    """
    parser = argparse.ArgumentParser(prog="python -m gateway.mapi.client")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    p = commands.add_parser("agenda", help="show a week's agenda")
    addArguments(p)
    args = parser.parse_args(argv)
    return runAgenda(args, out or sys.stdout)
