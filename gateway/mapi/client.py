# -*- test-case-name: tests.test_mapi_client -*-
"""
The XMAPI reference client (docs/xmapi.md): a small asynchronous Twisted
client that does what the seed's MAPI connector does over the ordinary
IMAP port.  It logs in after STARTTLS with C{AUTHENTICATE PLAIN} (or
C{CRAM-MD5} on a clear-text connection), opens the store with one C{LIST},
reads a week of appointments with C{XOVERLAPS} and C{XINSTANCES}, creates,
changes and deletes appointments, contacts and tasks (items built by
L{gateway.mapi.convert}), sets folder permissions with C{SETACL}, opens
other accounts' folders (C{~boss/Calendar}) and asks for free/busy.

Every method returns a L{Deferred}; commands are sent one at a time, in
the order they were asked for.  A tagged C{NO} or C{BAD} fails the
Deferred with L{CommandFailed}.

    python -m gateway.mapi.client agenda ACCOUNT [--week DATE] ...

shows a week's agenda (see L{gateway.mapi.client_agenda}).
"""

import base64
import datetime
import email.header
import email.utils
import hashlib
import hmac
from collections import deque

from twisted.internet import defer
from twisted.protocols.basic import LineReceiver

from gateway.mapi import convert
from gateway.mapi.client_syntax import (
    Atom,
    Literal,
    ResponseSyntaxError,
    decodeMailbox,
    formatSequenceSet,
    literalLength,
    mailbox,
    parse,
    parseSequenceSet,
    quote,
    splitStatus,
)
from gateway.mapi.properties import fromText, parsePropertyId, toText

UTC = datetime.timezone.utc

#: The folder-class METADATA entry (docs/xmapi.md 6.1).
CLASS_ENTRY = "/shared/vendor/xmapi/container-class"


class CommandFailed(Exception):
    """
    A command answered C{NO} or C{BAD}.

    @ivar status: C{"NO"} or C{"BAD"}.
    @ivar code: the response code as a parsed list, or C{None}.
    @ivar text: the human text.
    """

    def __init__(self, status, code, text):
        Exception.__init__(self, "%s %s%s" % (status, "[%s] " % (" ".join(map(str, code)),) if code else "",
                                               text))
        self.status, self.code, self.text = status, code, text


class Response:
    """
    The outcome of one command: its untagged responses and its tagged OK.

    @ivar untagged: C{list} of parsed untagged responses (each a C{list}
        without the C{*}; status responses as C{[Atom("OK"), code, text]}).
    @ivar code: the tagged OK's response code (a C{list}) or C{None}.
    @ivar text: the tagged OK's text.
    """

    def __init__(self, untagged, code, text):
        self.untagged, self.code, self.text = untagged, code, text

    def named(self, name):
        """
        The untagged responses whose keyword (after an optional number) is
        C{name}.
        """
        found = []
        for item in self.untagged:
            if item and isinstance(item[0], str) and item[0].upper() == name:
                found.append(item[1:])
            elif len(item) > 1 and isinstance(item[0], int) and str(item[1]).upper() == name:
                found.append([item[0]] + item[2:])
        return found


class Folder:
    """
    One folder of the store as L{XMAPIClient.listFolders} found it.
    """

    def __init__(self, name, attributes, delimiter):
        self.name = name
        self.attributes = [a.lower() for a in attributes]
        self.delimiter = delimiter
        self.status = {}
        self.metadata = {}
        self.rights = None

    @property
    def folderClass(self):
        """The folder's class (a missing entry means C{IPF.Note})."""
        value = self.metadata.get(CLASS_ENTRY)
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        return value or "IPF.Note"

    def __repr__(self):
        return "<Folder %r %s %r>" % (self.name, self.folderClass, self.status)


class Occurrence:
    """
    One occurrence of an appointment in a window.
    """

    def __init__(self, uid, start, end, fbtype, recurrenceId, subject=None, location=None):
        self.uid, self.start, self.end, self.fbtype = uid, start, end, fbtype
        self.recurrenceId, self.subject, self.location = recurrenceId, subject, location

    def __repr__(self):
        return "<Occurrence %s %s-%s %s %r>" % (self.uid, self.start, self.end, self.fbtype, self.subject)


def xtime(value):
    """
    A C{datetime} as XMAPI's quoted UTC time (C{"YYYYMMDDTHHMMSSZ"}).
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return b'"' + value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ").encode("ascii") + b'"'


def parseXtime(text):
    """
    XMAPI's UTC time as an aware C{datetime}.
    """
    return datetime.datetime.strptime(str(text), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def itemMessage(body, contentType, subject, sender="xmapi-client@localhost"):
    """
    An RFC 5322 message carrying one groupware item, readable by any mail
    client: C{text/calendar} for events and tasks, C{text/vcard} for contacts.

    @param body: the item's text (C{str}).
    @return: the message as C{bytes} with CRLF line ends.
    """
    method = "; method=PUBLISH" if contentType == "text/calendar" else ""
    if subject and not subject.isascii():
        subject = email.header.Header(subject, "utf-8").encode()
    headers = [
        "From: %s" % (sender,),
        "Subject: %s" % (subject or "",),
        "Date: %s" % (email.utils.formatdate(localtime=False),),
        "Message-ID: %s" % (email.utils.make_msgid("xmapi"),),
        "MIME-Version: 1.0",
        "Content-Type: %s; charset=utf-8%s" % (contentType, method),
        "Content-Transfer-Encoding: 8bit",
    ]
    text = body.replace("\r\n", "\n").replace("\n", "\r\n")
    if not text.endswith("\r\n"):
        text += "\r\n"
    return ("\r\n".join(headers) + "\r\n\r\n" + text).encode("utf-8")


class XMAPIClient(LineReceiver):
    """
    An IMAP client protocol with the XMAPI commands.

    @ivar capabilities: the server's capabilities (upper case), updated from
        the greeting, C{CAPABILITY} responses and response codes.
    @ivar greeting: a L{Deferred} that fires when the server greets.
    """

    delimiter = b"\r\n"
    MAX_LENGTH = 1 << 20

    def __init__(self):
        self.capabilities = set()
        self.greeting = defer.Deferred()
        self._queue = deque()
        self._current = None
        self._pieces = []
        self._literalLeft = 0
        self._tags = 0
        self.secure = False

    # -- receiving ------------------------------------------------------------------------

    def lineReceived(self, line):
        self._pieces.append(line)
        length = literalLength(line)
        if length is not None:
            self._literalLeft = length
            self._pieces.append(b"")
            if length == 0:
                self._literalDone(b"")
            else:
                self.setRawMode()
            return
        pieces, self._pieces = self._pieces, []
        self._response(pieces)

    def rawDataReceived(self, data):
        take = data[:self._literalLeft]
        self._pieces[-1] += take
        self._literalLeft -= len(take)
        if self._literalLeft == 0:
            self._literalDone(data[len(take):])

    def _literalDone(self, rest):
        # The text after the literal continues the response on the next line.
        self.setLineMode(rest)

    def _response(self, pieces):
        first = pieces[0]
        if first.startswith(b"+"):
            self._continuation(first[2:] if first.startswith(b"+ ") else first[1:])
            return
        tag, _, rest = first.partition(b" ")
        if tag == b"*":
            self._untagged([rest] + pieces[1:])
            return
        status, _, text = rest.partition(b" ")
        code, text = splitStatus(text)
        self._noteCode(code)
        current = self._current
        if current is None or tag != current["tag"]:
            return
        self._current = None
        status = status.decode("ascii", "replace").upper()
        if current.get("failed"):
            current["deferred"].errback(current["failed"])
        elif status == "OK":
            current["deferred"].callback(Response(current["untagged"], code, text))
        else:
            current["deferred"].errback(CommandFailed(status, code, text))
        self._sendNext()

    def _untagged(self, pieces):
        head = pieces[0]
        keyword = head.split(b" ", 1)[0].upper()
        if keyword in (b"OK", b"NO", b"BAD", b"BYE", b"PREAUTH"):
            code, text = splitStatus(head[len(keyword) + 1:])
            self._noteCode(code)
            item = [Atom(keyword.decode("ascii")), code, text]
            if not self.greeting.called:
                self.greeting.callback(item)
                return
        else:
            try:
                item = parse(pieces)
            except ResponseSyntaxError as e:
                self._badResponse(e)
                return
            if item and str(item[0]).upper() == "CAPABILITY":
                self.capabilities = {str(c).upper() for c in item[1:]}
        if self._current is not None:
            self._current["untagged"].append(item)

    def _badResponse(self, error):
        """
        A response this client cannot parse: the command in flight fails
        with it (once its tagged answer comes, that answer is ignored).
        """
        current = self._current
        if current is not None and not current.get("failed"):
            current["failed"] = error

    def _noteCode(self, code):
        if code and str(code[0]).upper() == "CAPABILITY":
            self.capabilities = {str(c).upper() for c in code[1:]}

    def _continuation(self, text):
        current = self._current
        if current is None:
            return
        if current["parts"]:
            self._sendParts(current)
        elif current.get("onChallenge"):
            self.sendLine(current["onChallenge"](text))

    def connectionLost(self, reason):
        failures = [self._current] + list(self._queue) if self._current else list(self._queue)
        self._current = None
        self._queue.clear()
        for entry in failures:
            entry["deferred"].errback(reason)
        if not self.greeting.called:
            self.greeting.errback(reason)

    # -- sending --------------------------------------------------------------------------

    def command(self, *args, onChallenge=None):
        """
        Send a command; its arguments are C{bytes} (sent as they are), C{str}
        (quoted as IMAP strings) or L{Literal}s, joined with spaces.

        @return: a L{Deferred} firing with a L{Response}.
        """
        parts = [[]]
        for arg in args:
            if isinstance(arg, str):
                arg = quote(arg)
            if isinstance(arg, Literal):
                parts[-1].append(b"{%d%s}" % (len(arg.data), b"+" if self._literalPlus() else b""))
                parts.append(arg.data)
                parts.append([])
            else:
                parts[-1].append(arg)
        entry = {"deferred": defer.Deferred(), "parts": deque(parts), "untagged": [],
                 "onChallenge": onChallenge}
        self._queue.append(entry)
        if self._current is None:
            self._sendNext()
        return entry["deferred"]

    def _literalPlus(self):
        return "LITERAL+" in self.capabilities

    def _sendNext(self):
        if self._current is not None or not self._queue:
            return
        entry = self._current = self._queue.popleft()
        self._tags += 1
        entry["tag"] = b"X%d" % (self._tags,)
        first = entry["parts"].popleft()
        entry["parts"].appendleft([entry["tag"]] + first)
        self._sendParts(entry)

    def _sendParts(self, entry):
        parts = entry["parts"]
        afterLiteral = False
        while parts:
            words = parts.popleft()
            if isinstance(words, bytes):
                self.transport.write(words)
                afterLiteral = True
                continue
            text = b""
            for word in words:
                if word:
                    text += word if (not text or word == b")") else b" " + word
            if afterLiteral and text and not text.startswith(b")"):
                text = b" " + text
            afterLiteral = False
            if text.endswith(b"}") and parts:
                self.sendLine(text)
                if not self._literalPlus():
                    return
                continue
            self.sendLine(text)

    # -- session --------------------------------------------------------------------------

    def capability(self):
        """
        Ask for the capabilities (C{CAPABILITY}); fires with the set.
        """
        return self.command(b"CAPABILITY").addCallback(lambda _: self.capabilities)

    @defer.inlineCallbacks
    def startTLS(self, contextFactory):
        """
        C{STARTTLS}, then TLS with C{contextFactory} (a client
        C{IOpenSSLClientConnectionCreator}), then C{CAPABILITY} again.
        """
        yield self.command(b"STARTTLS")
        self.transport.startTLS(contextFactory)
        self.secure = True
        self.capabilities = set()
        yield self.capability()

    def login(self, user, password, mechanism=None):
        """
        Log in with C{AUTHENTICATE}: PLAIN over TLS (or when asked),
        CRAM-MD5 on a clear-text connection that announces it.
        """
        if mechanism is None:
            cram = "AUTH=CRAM-MD5" in self.capabilities
            mechanism = "CRAM-MD5" if cram and not self.secure else "PLAIN"
        mechanism = mechanism.upper()
        if mechanism == "PLAIN":
            token = base64.b64encode(b"\0" + user.encode("utf-8") + b"\0" + password.encode("utf-8"))
            if "SASL-IR" in self.capabilities:
                d = self.command(b"AUTHENTICATE", b"PLAIN", token)
            else:
                d = self.command(b"AUTHENTICATE", b"PLAIN", onChallenge=lambda _: token)
        elif mechanism == "CRAM-MD5":
            def answer(challenge):
                digest = hmac.new(password.encode("utf-8"), base64.b64decode(challenge), hashlib.md5).hexdigest()
                return base64.b64encode(user.encode("utf-8") + b" " + digest.encode("ascii"))
            d = self.command(b"AUTHENTICATE", b"CRAM-MD5", onChallenge=answer)
        else:
            raise ValueError("unsupported mechanism %s" % (mechanism,))

        def loggedIn(response):
            if not (response.code and str(response.code[0]).upper() == "CAPABILITY"):
                return self.capability().addCallback(lambda _: response)
            return response
        return d.addCallback(loggedIn)

    def logout(self):
        """
        C{LOGOUT}.
        """
        return self.command(b"LOGOUT")

    @property
    def speaksXMAPI(self):
        """Whether the server announces C{XMAPI}."""
        return "XMAPI" in self.capabilities

    # -- folders --------------------------------------------------------------------------

    @defer.inlineCallbacks
    def listFolders(self, pattern="*", entries=(CLASS_ENTRY,)):
        """
        Open the store: every folder with its special use, rights, counts
        and class in one round trip (docs/xmapi.md 6.2).

        @return: a L{Deferred} firing with a C{list} of L{Folder}s.
        """
        options = [b"SPECIAL-USE", b"MYRIGHTS", b"STATUS (MESSAGES UNSEEN HIGHESTMODSEQ)"]
        if entries and "LIST-METADATA" in self.capabilities:
            options.append(b"METADATA (MAXSIZE 1024 (" + b" ".join(quote(e) for e in entries) + b"))")
        response = yield self.command(b"LIST", b'""', quote(pattern), b"RETURN (" + b" ".join(options) + b")")
        folders, byName = [], {}
        for item in response.untagged:
            keyword = str(item[0]).upper()
            if keyword == "LIST":
                folder = Folder(decodeMailbox(item[3]), [str(a) for a in item[1]], item[2])
                folders.append(folder)
                byName[folder.name] = folder
            elif keyword in ("STATUS", "METADATA", "MYRIGHTS"):
                folder = byName.get(decodeMailbox(item[1]))
                if folder is None:
                    continue
                if keyword == "STATUS":
                    values = item[2]
                    folder.status.update({str(values[i]).upper(): values[i + 1]
                                          for i in range(0, len(values) - 1, 2)})
                elif keyword == "METADATA":
                    values = item[2]
                    folder.metadata.update({str(values[i]).lower(): values[i + 1]
                                            for i in range(0, len(values) - 1, 2)})
                else:
                    folder.rights = str(item[2])
        return folders

    def specialFolder(self, folders, use):
        """
        The name of the folder with special use C{use} (C{"\\\\Trash"}) among
        C{folders}, or C{None}.
        """
        for folder in folders:
            if use.lower() in folder.attributes:
                return folder.name
        return None

    def select(self, name, readOnly=False):
        """
        C{SELECT} (or C{EXAMINE}) a folder; fires with the L{Response}.
        """
        return self.command(b"EXAMINE" if readOnly else b"SELECT", mailbox(name))

    def setACL(self, name, identifier, rights):
        """
        C{SETACL}: give C{identifier} C{rights} on a folder (RFC 4314).
        """
        return self.command(b"SETACL", mailbox(name), quote(identifier), quote(rights))

    @defer.inlineCallbacks
    def getACL(self, name):
        """
        C{GETACL}; fires with C{{identifier: rights}}.
        """
        response = yield self.command(b"GETACL", mailbox(name))
        acl = {}
        for item in response.named("ACL"):
            pairs = item[1:]
            acl.update({str(pairs[i]): str(pairs[i + 1]) for i in range(0, len(pairs) - 1, 2)})
        return acl

    # -- appointments ---------------------------------------------------------------------

    @defer.inlineCallbacks
    def searchOverlaps(self, start, end):
        """
        C{UID SEARCH RETURN (ALL) XOVERLAPS start end} in the selected folder.

        @return: a L{Deferred} firing with the sorted UIDs.
        """
        response = yield self.command(b"UID SEARCH RETURN (ALL) XOVERLAPS", xtime(start), xtime(end))
        return _esearchAll(response)

    @defer.inlineCallbacks
    def fetchInstances(self, uids, start, end, properties=("PidTagSubject", "PidLidLocation")):
        """
        C{UID FETCH uids (XINSTANCES (start end) XPROPS (...))}.

        @return: a L{Deferred} firing with C{{uid: (instances, props)}}:
            C{instances} a C{list} of C{(start, end, fbtype, recurrenceId)}
            (C{datetime}s, C{recurrenceId} C{None} for a single event),
            C{props} a C{dict} of requested id to typed value (or C{None}).
        """
        if not uids:
            return {}
        items = b"(XINSTANCES (" + xtime(start) + b" " + xtime(end) + b")"
        if properties:
            items += b" XPROPS (" + b" ".join(quote(p) for p in properties) + b")"
        items += b")"
        response = yield self.command(b"UID FETCH", formatSequenceSet(uids).encode("ascii"), items)
        result = {}
        for fetched in response.named("FETCH"):
            data = _pairs(fetched[1])
            instances = [(parseXtime(i[0]), parseXtime(i[1]), str(i[2]), parseXtime(i[3]) if i[3] else None)
                         for i in data.get("XINSTANCES", [])]
            result[data["UID"]] = (instances, decodeProperties(data.get("XPROPS", [])))
        return result

    @defer.inlineCallbacks
    def fetchProperties(self, uids, properties):
        """
        C{UID FETCH uids (XPROPS (...))}; fires with C{{uid: {id: value}}}.
        """
        items = b"(XPROPS (" + b" ".join(quote(p) for p in properties) + b"))"
        response = yield self.command(b"UID FETCH", formatSequenceSet(uids).encode("ascii"), items)
        return {data["UID"]: decodeProperties(data.get("XPROPS", []))
                for data in (_pairs(f[1]) for f in response.named("FETCH"))}

    def storeProperties(self, uid, values, unchangedSince=None):
        """
        C{UID STORE uid [(UNCHANGEDSINCE n)] XPROPS.SILENT (...)}: set typed
        properties (C{None} deletes one).

        @param values: C{dict} of property id text to Python value.
        """
        pairs = []
        for name, value in values.items():
            pairs.append(quote(name))
            pairs.append(b"NIL" if value is None else _wireValue(toText(parsePropertyId(name), value)))
        args = [b"UID STORE", str(uid).encode("ascii")]
        if unchangedSince is not None:
            args.append(b"(UNCHANGEDSINCE %d)" % (unchangedSince,))
        args.append(b"XPROPS.SILENT")
        return self.command(*(args + _parenthesized(pairs)))

    def freeBusy(self, who, start, end, detailed=False):
        """
        C{XFREEBUSY who start end [(DETAILED)]}; fires with the VCALENDAR
        text (C{str}).
        """
        args = [b"XFREEBUSY", quote(who), xtime(start), xtime(end)]
        if detailed:
            args.append(b"(DETAILED)")

        def text(response):
            for item in response.named("XFREEBUSY"):
                value = item[1]
                return value.decode("utf-8") if isinstance(value, bytes) else value
            raise CommandFailed("NO", None, "no XFREEBUSY response")
        return self.command(*args).addCallback(text)

    # -- items ----------------------------------------------------------------------------

    @defer.inlineCallbacks
    def append(self, name, message, flags=()):
        """
        C{APPEND} a message; fires with its UID when the server answers
        C{[APPENDUID]} (UIDPLUS), else C{None}.
        """
        args = [b"APPEND", mailbox(name)]
        if flags:
            args.append(b"(" + b" ".join(f.encode("ascii") for f in flags) + b")")
        args.append(Literal(message))
        response = yield self.command(*args)
        if response.code and str(response.code[0]).upper() == "APPENDUID":
            return response.code[2]
        return None

    def createAppointment(self, properties, folder="Calendar", uid=None):
        """
        Create an appointment from MAPI properties (canonical names, see
        L{convert.buildEvent}); fires with its UID.
        """
        body = convert.buildEvent(properties, uid=uid)
        return self.append(folder, itemMessage(body, "text/calendar", properties.get("PidTagSubject")))

    def createTask(self, properties, folder="Tasks", uid=None):
        """
        Create a task (L{convert.buildTask}); fires with its UID.
        """
        body = convert.buildTask(properties, uid=uid)
        return self.append(folder, itemMessage(body, "text/calendar", properties.get("PidTagSubject")))

    def createContact(self, properties, folder="Contacts", uid=None):
        """
        Create a contact (L{convert.buildContact}, C{text/vcard}); fires with its UID.
        """
        body = convert.buildContact(properties, uid=uid)
        subject = properties.get("PidTagDisplayName") or properties.get("PidTagSurname")
        return self.append(folder, itemMessage(body, "text/vcard", subject))

    @defer.inlineCallbacks
    def replaceItem(self, folder, oldUid, message):
        """
        Save a changed item: C{UID REPLACE} when the server announces
        REPLACE (RFC 8508), else APPEND the new message then delete and
        expunge the old one.  Fires with the new UID (or C{None}).
        """
        yield self.select(folder)
        if "REPLACE" in self.capabilities:
            response = yield self.command(b"UID REPLACE", str(oldUid).encode("ascii"), mailbox(folder),
                                          Literal(message))
            newUid = None
            for code in [response.code] + [u[1] for u in response.untagged if str(u[0]) == "OK"]:
                if code and str(code[0]).upper() == "APPENDUID":
                    newUid = code[2]
            return newUid
        newUid = yield self.append(folder, message)
        yield self.expunge(oldUid)
        return newUid

    @defer.inlineCallbacks
    def expunge(self, uid):
        """
        Delete one message of the selected folder for good: C{\\Deleted},
        then C{UID EXPUNGE} of that UID only (UIDPLUS).
        """
        yield self.command(b"UID STORE", str(uid).encode("ascii"), b"+FLAGS.SILENT (\\Deleted)")
        yield self.command(b"UID EXPUNGE", str(uid).encode("ascii"))

    def changeAppointment(self, folder, oldUid, properties, uid=None):
        """
        Change an appointment: its new properties replace the old item
        (keep C{uid}, the iCalendar UID, to keep its identity).
        """
        body = convert.buildEvent(properties, uid=uid)
        return self.replaceItem(folder, oldUid, itemMessage(body, "text/calendar", properties.get("PidTagSubject")))

    def changeTask(self, folder, oldUid, properties, uid=None):
        """
        Change a task (see L{changeAppointment}).
        """
        body = convert.buildTask(properties, uid=uid)
        return self.replaceItem(folder, oldUid, itemMessage(body, "text/calendar", properties.get("PidTagSubject")))

    def changeContact(self, folder, oldUid, properties, uid=None):
        """
        Change a contact (see L{changeAppointment}).
        """
        body = convert.buildContact(properties, uid=uid)
        subject = properties.get("PidTagDisplayName") or properties.get("PidTagSurname")
        return self.replaceItem(folder, oldUid, itemMessage(body, "text/vcard", subject))

    @defer.inlineCallbacks
    def deleteItem(self, folder, uid, trash=None):
        """
        Delete an item as the connector does (R-DEL-2): C{UID MOVE} it to
        the viewer's own Deleted Items (the C{\\Trash} folder); an item
        already there is deleted for good (C{\\Deleted}, C{UID EXPUNGE}).
        """
        if trash is None:
            folders = yield self.listFolders(entries=())
            trash = self.specialFolder(folders, "\\Trash") or "Deleted Items"
        yield self.select(folder)
        if folder == trash:
            yield self.expunge(uid)
            return
        yield self.command(b"UID MOVE", str(uid).encode("ascii"), mailbox(trash))

    @defer.inlineCallbacks
    def fetchBodies(self, uids=None):
        """
        C{UID FETCH (UID BODY.PEEK[])} of the selected folder (all messages
        when C{uids} is C{None}); fires with C{{uid: bytes}}.
        """
        which = formatSequenceSet(uids).encode("ascii") if uids else b"1:*"
        response = yield self.command(b"UID FETCH", which, b"(UID BODY.PEEK[])")
        bodies = {}
        for fetched in response.named("FETCH"):
            data = _pairs(fetched[1])
            bodies[data["UID"]] = data.get("BODY[]")
        return bodies


def _parenthesized(words):
    """
    C{words} (C{bytes} or L{Literal}s) as arguments of one parenthesized
    list: the parentheses glued to the first and last word.
    """
    words = list(words)
    if not words:
        return [b"()"]
    words[0] = b"(" + words[0]  # property ids are ASCII: never literals
    words.append(b")")
    return words


def _wireValue(value):
    if isinstance(value, list):
        return b"(" + b" ".join(_wireValue(v) for v in value) + b")"
    if isinstance(value, int):
        return str(value).encode("ascii")
    return quote(value)


def _pairs(items):
    """
    A FETCH response's C{(name value ...)} as a C{dict} (names upper case).
    """
    return {str(items[i]).upper(): items[i + 1] for i in range(0, len(items) - 1, 2)}


def _esearchAll(response):
    uids = []
    for item in response.named("ESEARCH"):
        words = item[1:] if item and isinstance(item[0], list) else item
        for i, word in enumerate(words):
            if str(word).upper() == "ALL" and i + 1 < len(words):
                uids.extend(parseSequenceSet(words[i + 1]))
    for item in response.named("SEARCH"):
        uids.extend(int(n) for n in item)
    return sorted(uids)


def decodeProperties(items):
    """
    An C{XPROPS (id value ...)} list as C{{id: typed value}}, typed with
    L{gateway.mapi.properties.fromText} (C{None} for C{NIL}).
    """
    values = {}
    for i in range(0, len(items) - 1, 2):
        name, raw = str(items[i]), items[i + 1]
        if raw is None:
            values[name] = None
            continue
        raw = _plain(raw)
        try:
            values[name] = fromText(parsePropertyId(name), raw)
        except ValueError:
            values[name] = raw
    return values


def _plain(raw):
    if isinstance(raw, list):
        return [_plain(r) for r in raw]
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    if isinstance(raw, Atom):
        return str(raw)
    return raw


def main(argv=None):
    """
    C{python -m gateway.mapi.client}: the command-line front.
    """
    from gateway.mapi.client_agenda import main as agendaMain

    return agendaMain(argv)


if __name__ == "__main__":
    import sys

    sys.exit(main())
