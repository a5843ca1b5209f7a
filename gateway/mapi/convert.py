# -*- test-case-name: tests.test_mapi_convert -*-
"""
Between MAPI properties and Internet formats: one table per object type
(MS-OXCMAIL for mail and notes, MS-OXCICAL for appointments, meetings and
tasks, MS-OXVCARD for contacts and distribution lists).

The tables are data: each row names a property, where its value comes from
in the Internet object, and how it is converted.  L{derive} reads the
derived properties of a message (C{docs/xmapi.md} section 3.3) through
them; the reference client builds items from properties through the same
rows (L{buildEvent}, L{buildTask}, L{buildContact}).
"""

import datetime
import decimal
import email.header
import email.utils
import re
import uuid

import icalendar

from gateway.mapi.properties import BY_CANONICAL

UTC = datetime.timezone.utc

#: Busy status values (PidLidBusyStatus, MS-OXOCAL 2.2.1.2).
FREE, TENTATIVE, BUSY, OOF, WORKING_ELSEWHERE = range(5)
_CDO_BUSY = {"FREE": FREE, "TENTATIVE": TENTATIVE, "BUSY": BUSY, "OOF": OOF,
             "WORKINGELSEWHERE": WORKING_ELSEWHERE}
_SENSITIVITY = {"PUBLIC": 0, "PRIVATE": 2, "CONFIDENTIAL": 3}
_SENSITIVITY_HEADER = {"personal": 1, "private": 2, "company-confidential": 3}
#: iTIP method -> message class (MS-OXCICAL 2.1.3.1.1.20.1; REPLY by PARTSTAT).
_METHOD_CLASSES = {"REQUEST": "IPM.Schedule.Meeting.Request", "CANCEL": "IPM.Schedule.Meeting.Canceled"}
_REPLY_CLASSES = {"ACCEPTED": "IPM.Schedule.Meeting.Resp.Pos", "TENTATIVE": "IPM.Schedule.Meeting.Resp.Tent",
                  "DECLINED": "IPM.Schedule.Meeting.Resp.Neg"}
#: The header of a global object id (MS-OXOCAL 2.2.1.27): the Outlook class
#: id, then instance date (4 bytes), creation time (8), reserved (8), size, data.
_GLOBAL_ID_HEADER = bytes.fromhex("040000008200E00074C5B7101A82E008")
#: The prefix Outlook writes before a non-Outlook UID in the data (vCal-Uid).
_VCAL_UID = b"vCal-Uid\x01\x00\x00\x00"


def key(canonical):
    """
    The L{gateway.mapi.properties.PropertyKey} of a canonical name.
    """
    return BY_CANONICAL[canonical.lower()].key


# -- RFC 5322 (MS-OXCMAIL) -----------------------------------------------------------

def _decoded(value):
    if value is None:
        return None
    return str(email.header.make_header(email.header.decode_header(str(value))))


def _displayNames(value):
    names = []
    for name, address in email.utils.getaddresses([_decoded(value)] if value else []):
        names.append(name or address)
    return "; ".join(n for n in names if n) or None


_PREFIX = re.compile(r"\A((?:[A-Za-z]{1,3}|[A-Za-z]{2}\.)\s*:\s*)")


def _subjectParts(subject):
    """
    MS-OXCMAIL's subject prefix rule: one to three letters then a colon
    (C{Re: }, C{AW: }) are the prefix, the rest the normalized subject.
    """
    match = _PREFIX.match(subject)
    if match is None:
        return "", subject
    return match.group(1), subject[match.end():]


def _importance(headers):
    value = (headers.get("Importance") or "").strip().lower()
    if value in ("low", "normal", "high"):
        return {"low": 0, "normal": 1, "high": 2}[value]
    priority = (headers.get("X-Priority") or "").strip()[:1]
    if priority.isdigit():
        return 2 if priority in "12" else 0 if priority in "45" else 1
    return None


def _date(value):
    try:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


#: Mail rows: (canonical name, function of the headers).
MAIL_TABLE = [
    ("PidTagSubject", lambda h: _decoded(h.get("Subject"))),
    ("PidTagSenderName", lambda h: _displayNames(h.get("Sender") or h.get("From"))),
    ("PidTagSenderEmailAddress",
     lambda h: email.utils.parseaddr(_decoded(h.get("Sender") or h.get("From")) or "")[1] or None),
    ("PidTagSentRepresentingName", lambda h: _displayNames(h.get("From"))),
    ("PidTagDisplayTo", lambda h: _displayNames(h.get("To"))),
    ("PidTagDisplayCc", lambda h: _displayNames(h.get("Cc"))),
    ("PidTagClientSubmitTime", lambda h: _date(h.get("Date"))),
    ("PidTagInternetMessageId", lambda h: (h.get("Message-ID") or "").strip() or None),
    ("PidTagImportance", _importance),
    ("PidTagSensitivity", lambda h: _SENSITIVITY_HEADER.get((h.get("Sensitivity") or "").strip().lower())),
]


def deriveMail(headers, size=None, internalDate=None):
    """
    The derived properties of a message from its header fields.

    @param headers: an C{email.message.Message} (or a mapping with C{get}).
    @return: C{dict} of L{PropertyKey} to value, without missing properties.
    """
    values = {}
    for canonical, read in MAIL_TABLE:
        value = read(headers)
        if value is not None:
            values[key(canonical)] = value
    subject = values.get(key("PidTagSubject"))
    if subject is not None:
        prefix, normalized = _subjectParts(subject)
        values[key("PidTagSubjectPrefix")] = prefix
        values[key("PidTagNormalizedSubject")] = normalized
    if size is not None:
        values[key("PidTagMessageSize")] = min(size, 2**31 - 1)
    if internalDate is not None:
        values[key("PidTagMessageDeliveryTime")] = internalDate.astimezone(UTC)
    values[key("PidTagMessageClass")] = "IPM.Note"
    return values


# -- iCalendar (MS-OXCICAL) ---------------------------------------------------------------

def _utc(value, zone):
    """
    A DTSTART-like value as an aware UTC time: a date is midnight of
    C{zone}, a floating time is read in C{zone}.
    """
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return value.astimezone(UTC)
    return datetime.datetime(value.year, value.month, value.day, tzinfo=zone).astimezone(UTC)


def busyStatus(component):
    """
    PidLidBusyStatus of a VEVENT: C{X-MICROSOFT-CDO-BUSYSTATUS} if present,
    else TRANSP and STATUS (C{docs/xmapi.md} section 3.3).
    """
    cdo = str(component.get("X-MICROSOFT-CDO-BUSYSTATUS", "")).upper()
    if cdo in _CDO_BUSY:
        return _CDO_BUSY[cdo]
    status = str(component.get("STATUS", "")).upper()
    if str(component.get("TRANSP", "")).upper() == "TRANSPARENT" or status == "CANCELLED":
        return FREE
    return TENTATIVE if status == "TENTATIVE" else BUSY


def globalObjectId(uid):
    """
    PidLidGlobalObjectId from a UID (MS-OXCICAL 2.1.3.1.1.20.26): a UID that
    is a hex-encoded global object id is that id; any other UID is wrapped
    after the C{vCal-Uid} marker.
    """
    try:
        raw = bytes.fromhex(uid)
    except ValueError:
        raw = None
    if raw is not None and raw.startswith(_GLOBAL_ID_HEADER) and len(raw) >= 40:
        return raw
    data = _VCAL_UID + uid.encode("utf-8") + b"\x00"
    return _GLOBAL_ID_HEADER + bytes(4 + 8 + 8) + len(data).to_bytes(4, "little") + data


def cleanGlobalObjectId(globalId):
    """
    PidLidCleanGlobalObjectId: the global id with its instance date zeroed.
    """
    return globalId[:16] + bytes(4) + globalId[20:]


def _reminder(component):
    for alarm in component.walk("VALARM"):
        trigger = alarm.get("TRIGGER")
        if trigger is None:
            continue
        delta = getattr(trigger, "dt", None)
        related = str(trigger.params.get("RELATED", "START")).upper() if hasattr(trigger, "params") else "START"
        if isinstance(delta, datetime.timedelta) and related == "START" and delta <= datetime.timedelta(0):
            return int(-delta.total_seconds() // 60)
    return None


def _text(component, name):
    value = component.get(name)
    return None if value is None else str(value)


def addDuration(start, duration):
    """
    C{start} plus a C{DURATION} (RFC 5545 3.3.6): its days are nominal (the
    same wall-clock time in the start's zone), the rest exact, so that
    C{PT2H} across a DST change lasts two hours.
    """
    if isinstance(start, datetime.datetime) and start.tzinfo is not None:
        days = datetime.timedelta(days=duration.days)
        return (start + days).astimezone(UTC) + (duration - days)
    return start + duration


def _eventEnd(component):
    if "DTEND" in component:
        return component.decoded("DTEND")
    start = component.decoded("DTSTART")
    if "DURATION" in component:
        return addDuration(start, component.decoded("DURATION"))
    if isinstance(start, datetime.datetime):
        return start
    return start + datetime.timedelta(days=1)


def _priorityImportance(component):
    priority = component.get("PRIORITY")
    if priority is None:
        return None
    priority = int(priority)
    if priority == 0:
        return None
    return 2 if priority <= 4 else 1 if priority == 5 else 0


#: Appointment rows: (canonical name, function of (component, zone)).
EVENT_TABLE = [
    ("PidTagSubject", lambda c, z: _text(c, "SUMMARY")),
    ("PidLidLocation", lambda c, z: _text(c, "LOCATION")),
    ("PidLidAppointmentStartWhole", lambda c, z: _utc(c.decoded("DTSTART"), z) if "DTSTART" in c else None),
    ("PidLidAppointmentEndWhole", lambda c, z: _utc(_eventEnd(c), z) if "DTSTART" in c else None),
    ("PidLidAppointmentSubType",
     lambda c, z: not isinstance(c.decoded("DTSTART"), datetime.datetime) if "DTSTART" in c else None),
    ("PidLidBusyStatus", lambda c, z: busyStatus(c)),
    ("PidLidRecurring", lambda c, z: "RRULE" in c or "RDATE" in c),
    ("PidTagSensitivity", lambda c, z: _SENSITIVITY.get(str(c.get("CLASS", "")).upper())),
    ("PidTagImportance", lambda c, z: _priorityImportance(c)),
    ("PidLidReminderDelta", lambda c, z: _reminder(c)),
    ("PidLidReminderSet", lambda c, z: _reminder(c) is not None),
    ("PidLidGlobalObjectId", lambda c, z: globalObjectId(str(c["UID"])) if "UID" in c else None),
    ("PidTagSenderName", lambda c, z: _organizer(c)),
]


#: The rows of L{EVENT_TABLE} that L{deriveSummarizedEvent} answers.
SUMMARIZED_EVENT_NAMES = ("PidTagSubject", "PidLidLocation", "PidLidAppointmentStartWhole",
                          "PidLidAppointmentEndWhole", "PidLidAppointmentSubType", "PidLidBusyStatus",
                          "PidLidRecurring", "PidLidGlobalObjectId", "PidLidCleanGlobalObjectId",
                          "PidTagMessageClass")

#: L{deriveSummarizedEvent} cannot tell this value from its summary.
UNKNOWN = object()
#: L{deriveSummarizedEvent}: the event does not set this property; the
#: message's header fields do (L{MAIL_TABLE}).
FROM_HEADERS = object()


def deriveSummarizedEvent(event, canonical, zone=UTC):
    """
    One property of L{SUMMARIZED_EVENT_NAMES} from the summary of an event
    (what the calendar store keeps of a VEVENT: its UID, raw start, end and
    duration, C{(STATUS, TRANSP, X-MICROSOFT-CDO-BUSYSTATUS)}, C{(SUMMARY,
    LOCATION)} with C{None} for an absent one, whether it recurs), the
    value L{EVENT_TABLE} reads from the component.

    @param event: an object with C{uid}, C{start}, C{end}, C{duration},
        C{traits}, C{details}, C{recurring} and C{method} (its calendar's
        iTIP METHOD, upper case), as L{gateway.store.calendar.parse._Event}.
    @return: the value, C{None} when the event has none, L{FROM_HEADERS}
        for a subject without SUMMARY, or L{UNKNOWN} when the summary
        cannot tell (a cancelled event, which may be an iTIP CANCEL whose
        STATUS says otherwise).
    """
    if canonical == "PidTagSubject":
        return FROM_HEADERS if event.details[0] is None else event.details[0]
    if canonical == "PidLidLocation":
        return event.details[1]
    if canonical == "PidLidAppointmentStartWhole":
        return _utc(event.start, zone)
    if canonical == "PidLidAppointmentEndWhole":
        if event.end is not None:
            end = event.end
        elif event.duration is not None:
            end = addDuration(event.start, event.duration)
        elif isinstance(event.start, datetime.datetime):
            end = event.start
        else:
            end = event.start + datetime.timedelta(days=1)
        return _utc(end, zone)
    if canonical == "PidLidAppointmentSubType":
        return not isinstance(event.start, datetime.datetime)
    if canonical == "PidLidBusyStatus":
        status, transp, cdo = event.traits[:3]
        if cdo in _CDO_BUSY:
            return _CDO_BUSY[cdo]
        if status == "CANCELLED":
            # An iTIP CANCEL's events are summarized as cancelled whatever
            # their own STATUS, which this property reads.
            return UNKNOWN if event.method == "CANCEL" else FREE
        if transp == "TRANSPARENT":
            return FREE
        return TENTATIVE if status == "TENTATIVE" else BUSY
    if canonical == "PidLidRecurring":
        return bool(event.recurring)
    if canonical == "PidTagMessageClass":
        # messageClassOf: a calendar with a VEVENT (a summary has one) that
        # is not an iTIP REPLY (whose events are not summarized).
        return _METHOD_CLASSES.get(event.method, "IPM.Appointment")
    if event.uid is None:
        return None
    globalId = globalObjectId(event.uid)
    return globalId if canonical == "PidLidGlobalObjectId" else cleanGlobalObjectId(globalId)


def _organizer(component):
    organizer = component.get("ORGANIZER")
    if organizer is None:
        return None
    return str(organizer.params.get("CN", "")) or str(organizer).split(":", 1)[-1]


#: Task rows (VTODO).
TASK_TABLE = [
    ("PidTagSubject", lambda c, z: _text(c, "SUMMARY")),
    ("PidLidTaskDueDate", lambda c, z: _utc(c.decoded("DUE"), z) if "DUE" in c else None),
    ("PidLidTaskComplete", lambda c, z: str(c.get("STATUS", "")).upper() == "COMPLETED"),
    ("PidLidTaskStatus", lambda c, z: _taskStatus(c)),
    ("PidLidPercentComplete", lambda c, z: _percent(c)),
    ("PidTagSensitivity", lambda c, z: _SENSITIVITY.get(str(c.get("CLASS", "")).upper())),
    ("PidTagImportance", lambda c, z: _priorityImportance(c)),
]


def _taskStatus(component):
    # MS-OXOTASK 2.2.2.2.2: 0 not started, 1 in progress, 2 complete, 3 waiting, 4 deferred.
    status = str(component.get("STATUS", "NEEDS-ACTION")).upper()
    return {"NEEDS-ACTION": 0, "IN-PROCESS": 1, "COMPLETED": 2, "CANCELLED": 4}.get(status, 0)


def _percent(component):
    if "PERCENT-COMPLETE" in component:
        return decimal.Decimal(int(component["PERCENT-COMPLETE"])) / 100
    if str(component.get("STATUS", "")).upper() == "COMPLETED":
        return decimal.Decimal(1)
    return None


def deriveCalendar(calendar, zone=UTC):
    """
    The derived properties of a calendar item: its message class, and the
    rows of L{EVENT_TABLE} or L{TASK_TABLE} for its master component (the
    one without RECURRENCE-ID, else the first).

    @param calendar: an C{icalendar.Calendar}.
    @param zone: the account's time zone (for dates and floating times).
    @return: C{dict} of L{PropertyKey} to value; empty if it holds no
        event or task.
    """
    events = calendar.walk("VEVENT")
    tasks = calendar.walk("VTODO")
    components, table = (events, EVENT_TABLE) if events else (tasks, TASK_TABLE)
    if not components:
        return {}
    master = next((c for c in components if "RECURRENCE-ID" not in c), components[0])
    values = {}
    for canonical, read in table:
        value = read(master, zone)
        if value is not None:
            values[key(canonical)] = value
    globalId = values.get(key("PidLidGlobalObjectId"))
    if globalId is not None:
        values[key("PidLidCleanGlobalObjectId")] = cleanGlobalObjectId(globalId)
    values[key("PidTagMessageClass")] = messageClassOf(calendar)
    return values


def messageClassOf(calendar):
    """
    PidTagMessageClass of a calendar item (C{docs/xmapi.md} section 3.3).
    """
    if calendar.walk("VTODO") and not calendar.walk("VEVENT"):
        return "IPM.Task"
    method = str(calendar.get("METHOD", "")).upper()
    if method == "REPLY":
        partstat = ""
        for event in calendar.walk("VEVENT"):
            attendee = event.get("ATTENDEE")
            attendee = attendee[0] if isinstance(attendee, list) else attendee
            if attendee is not None:
                partstat = str(attendee.params.get("PARTSTAT", "")).upper()
                break
        return _REPLY_CLASSES.get(partstat, "IPM.Schedule.Meeting.Resp.Pos")
    return _METHOD_CLASSES.get(method, "IPM.Appointment")


# -- vCard (MS-OXVCARD) --------------------------------------------------------------------

def parseVCard(text):
    """
    The properties of a vCard (3.0 or 4.0) as C{(name, params, value)}
    triples, lines unfolded, names upper-cased, group prefixes dropped,
    params a C{dict} of upper-case name to C{list} of lower-case values,
    values still escaped (structured values are split before unescaping).
    """
    lines = re.sub(r"\r?\n[ \t]", "", text).splitlines()
    result = []
    for line in lines:
        if ":" not in line:
            continue
        head, value = _splitUnquoted(line)
        parts = head.split(";")
        name = parts[0].rsplit(".", 1)[-1].upper()
        params = {}
        for part in parts[1:]:
            pname, _, pvalue = part.partition("=")
            if not _:
                pname, pvalue = "TYPE", pname
            values = [v.strip('"').lower() for v in pvalue.split(",")]
            params.setdefault(pname.upper(), []).extend(values)
        result.append((name, params, value))
    return result


def _splitUnquoted(line):
    quoted = False
    for i, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return line[:i], line[i + 1:]
    return line, ""


def _unescape(value):
    return re.sub(r"\\([\\,;nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def _first(card, name, types=None, raw=False):
    for pname, params, value in card:
        if pname != name:
            continue
        if types is None or set(types) & set(params.get("TYPE", [])):
            return value if raw else _unescape(value)
    return None


def _structured(value, index):
    if value is None:
        return None
    fields = re.split(r"(?<!\\);", value)
    return _unescape(fields[index]) or None if index < len(fields) else None


#: Contact rows: (canonical name, function of the parsed card).
CONTACT_TABLE = [
    ("PidTagDisplayName", lambda c: _first(c, "FN")),
    ("PidTagSubject", lambda c: _first(c, "FN")),
    ("PidTagSurname", lambda c: _structured(_rawFirst(c, "N"), 0)),
    ("PidTagGivenName", lambda c: _structured(_rawFirst(c, "N"), 1)),
    ("PidTagCompanyName", lambda c: _structured(_rawFirst(c, "ORG"), 0)),
    ("PidTagTitle", lambda c: _first(c, "TITLE")),
    ("PidTagBusinessTelephoneNumber", lambda c: _first(c, "TEL", ["work"])),
    ("PidTagHomeTelephoneNumber", lambda c: _first(c, "TEL", ["home"])),
    ("PidTagMobileTelephoneNumber", lambda c: _first(c, "TEL", ["cell"])),
    ("PidLidFreeBusyLocation", lambda c: _first(c, "FBURL")),
]

_EMAIL_SLOTS = ["PidLidEmail1EmailAddress", "PidLidEmail2EmailAddress", "PidLidEmail3EmailAddress"]


def _rawFirst(card, name):
    # N and ORG are structured: split on unescaped ';' before unescaping.
    return _first(card, name, raw=True)


def deriveContact(text):
    """
    The derived properties of a contact or distribution list (vCard text).
    """
    card = parseVCard(text)
    values = {}
    for canonical, read in CONTACT_TABLE:
        value = read(card)
        if value is not None:
            values[key(canonical)] = value
    emails = [_unescape(value) for name, params, value in card if name == "EMAIL"]
    for slot, address in zip(_EMAIL_SLOTS, emails, strict=False):
        values[key(slot)] = address
    kind = (_first(card, "KIND") or _first(card, "X-ADDRESSBOOKSERVER-KIND") or "").lower()
    values[key("PidTagMessageClass")] = "IPM.DistList" if kind == "group" else "IPM.Contact"
    return values


# -- building items from properties (the reference client) -----------------------------------

def _icalTime(value):
    return value.astimezone(UTC)


def buildEvent(properties, uid=None, dtstamp=None):
    """
    A VCALENDAR with one VEVENT from appointment properties (the inverse of
    L{EVENT_TABLE} for subject, location, start, end, all-day, busy status,
    sensitivity, reminder).

    @param properties: C{dict} of canonical name to value.
    @return: the iCalendar text (C{str}, CRLF line ends).
    """
    calendar = icalendar.Calendar()
    calendar.add("PRODID", "-//gateway//XMAPI reference client//EN")
    calendar.add("VERSION", "2.0")
    event = icalendar.Event()
    event.add("UID", uid or str(uuid.uuid4()))
    event.add("DTSTAMP", dtstamp or datetime.datetime.now(UTC))
    start, end = properties["PidLidAppointmentStartWhole"], properties["PidLidAppointmentEndWhole"]
    if properties.get("PidLidAppointmentSubType"):
        event.add("DTSTART", start.date())
        event.add("DTEND", end.date())
    else:
        event.add("DTSTART", _icalTime(start))
        event.add("DTEND", _icalTime(end))
    if properties.get("PidTagSubject"):
        event.add("SUMMARY", properties["PidTagSubject"])
    if properties.get("PidLidLocation"):
        event.add("LOCATION", properties["PidLidLocation"])
    status = properties.get("PidLidBusyStatus")
    if status is not None:
        event.add("TRANSP", "TRANSPARENT" if status == FREE else "OPAQUE")
        if status == TENTATIVE:
            event.add("STATUS", "TENTATIVE")
        name = {v: k for k, v in _CDO_BUSY.items()}[status]
        event.add("X-MICROSOFT-CDO-BUSYSTATUS", name)
    sensitivity = properties.get("PidTagSensitivity")
    if sensitivity:
        event.add("CLASS", {2: "PRIVATE", 3: "CONFIDENTIAL"}.get(sensitivity, "PUBLIC"))
    if properties.get("RRULE"):
        event.add("RRULE", icalendar.vRecur.from_ical(properties["RRULE"]))
    delta = properties.get("PidLidReminderDelta")
    if properties.get("PidLidReminderSet") and delta is not None:
        alarm = icalendar.Alarm()
        alarm.add("ACTION", "DISPLAY")
        alarm.add("DESCRIPTION", properties.get("PidTagSubject") or "Reminder")
        alarm.add("TRIGGER", datetime.timedelta(minutes=-delta))
        event.add_component(alarm)
    calendar.add_component(event)
    return calendar.to_ical().decode("utf-8")


def buildTask(properties, uid=None, dtstamp=None):
    """
    A VCALENDAR with one VTODO from task properties.
    """
    calendar = icalendar.Calendar()
    calendar.add("PRODID", "-//gateway//XMAPI reference client//EN")
    calendar.add("VERSION", "2.0")
    todo = icalendar.Todo()
    todo.add("UID", uid or str(uuid.uuid4()))
    todo.add("DTSTAMP", dtstamp or datetime.datetime.now(UTC))
    if properties.get("PidTagSubject"):
        todo.add("SUMMARY", properties["PidTagSubject"])
    if properties.get("PidLidTaskDueDate"):
        todo.add("DUE", _icalTime(properties["PidLidTaskDueDate"]))
    if properties.get("PidLidTaskComplete"):
        todo.add("STATUS", "COMPLETED")
    elif properties.get("PidLidTaskStatus") == 1:
        todo.add("STATUS", "IN-PROCESS")
    else:
        todo.add("STATUS", "NEEDS-ACTION")
    if properties.get("PidLidPercentComplete") is not None:
        todo.add("PERCENT-COMPLETE", int(properties["PidLidPercentComplete"] * 100))
    calendar.add_component(todo)
    return calendar.to_ical().decode("utf-8")


def _escape(value):
    return value.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;").replace("\n", "\\n")


def buildContact(properties, uid=None):
    """
    A vCard 4.0 from contact properties (the inverse of L{CONTACT_TABLE}).
    """
    lines = ["BEGIN:VCARD", "VERSION:4.0", "UID:" + (uid or "urn:uuid:%s" % (uuid.uuid4(),))]
    if properties.get("IsGroup"):
        lines.append("KIND:group")
    display = properties.get("PidTagDisplayName") or " ".join(
        p for p in (properties.get("PidTagGivenName"), properties.get("PidTagSurname")) if p)
    lines.append("FN:" + _escape(display or ""))
    lines.append("N:%s;%s;;;" % (_escape(properties.get("PidTagSurname") or ""),
                                 _escape(properties.get("PidTagGivenName") or "")))
    if properties.get("PidTagCompanyName"):
        lines.append("ORG:" + _escape(properties["PidTagCompanyName"]))
    if properties.get("PidTagTitle"):
        lines.append("TITLE:" + _escape(properties["PidTagTitle"]))
    for slot in _EMAIL_SLOTS:
        if properties.get(slot):
            lines.append("EMAIL:" + properties[slot])
    for canonical, kind in (("PidTagBusinessTelephoneNumber", "work"), ("PidTagHomeTelephoneNumber", "home"),
                            ("PidTagMobileTelephoneNumber", "cell")):
        if properties.get(canonical):
            lines.append("TEL;TYPE=%s:%s" % (kind, properties[canonical]))
    if properties.get("PidLidFreeBusyLocation"):
        lines.append("FBURL:" + properties["PidLidFreeBusyLocation"])
    for member in properties.get("Members", ()):
        lines.append("MEMBER:mailto:" + member)
    lines.append("END:VCARD")
    return "\r\n".join(lines) + "\r\n"
