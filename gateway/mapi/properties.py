# -*- test-case-name: tests.test_mapi -*-
"""
MAPI properties: identifiers (tags, named properties, MS-OXPROPS canonical
names), types, and typed values (C{docs/xmapi.md} section 3).

An identifier is parsed into a L{PropertyKey}; a value is checked and
converted by L{fromText}/L{toText} between its Python form and the neutral
form the wire uses (an C{int}, a C{str}, or a C{list} of those for a
multi-valued type).  How those are written (number, quoted string, literal)
is the IMAP layer's business.
"""

import base64
import binascii
import datetime
import decimal
import re
import uuid

import attr

# -- types --------------------------------------------------------------------------

PT_SHORT = 0x0002
PT_LONG = 0x0003
PT_FLOAT = 0x0004
PT_DOUBLE = 0x0005
PT_CURRENCY = 0x0006
PT_APPTIME = 0x0007
PT_ERROR = 0x000A
PT_BOOLEAN = 0x000B
PT_I8 = 0x0014
PT_STRING8 = 0x001E
PT_UNICODE = 0x001F
PT_SYSTIME = 0x0040
PT_CLSID = 0x0048
PT_BINARY = 0x0102
MV_FLAG = 0x1000

TYPE_NAMES = {
    PT_SHORT: "PT_SHORT",
    PT_LONG: "PT_LONG",
    PT_FLOAT: "PT_FLOAT",
    PT_DOUBLE: "PT_DOUBLE",
    PT_CURRENCY: "PT_CURRENCY",
    PT_APPTIME: "PT_APPTIME",
    PT_ERROR: "PT_ERROR",
    PT_BOOLEAN: "PT_BOOLEAN",
    PT_I8: "PT_I8",
    PT_STRING8: "PT_STRING8",
    PT_UNICODE: "PT_UNICODE",
    PT_SYSTIME: "PT_SYSTIME",
    PT_CLSID: "PT_CLSID",
    PT_BINARY: "PT_BINARY",
}

#: The integer types and their ranges.
_INTEGER_RANGES = {
    PT_SHORT: (-2**15, 2**15 - 1),
    PT_LONG: (-2**31, 2**31 - 1),
    PT_ERROR: (0, 2**32 - 1),
    PT_I8: (-2**63, 2**63 - 1),
}
_DECIMAL_TYPES = (PT_FLOAT, PT_DOUBLE, PT_APPTIME, PT_CURRENCY)


class PropertyError(ValueError):
    """
    A malformed property identifier, an unknown canonical name, or a value
    that does not fit its property's type.  The message names the property.
    """


def isKnownType(propType):
    """
    Is C{propType} (with or without L{MV_FLAG}) a type L{fromText} handles?
    Multi-valued booleans and errors do not exist in MAPI.
    """
    base = propType & ~MV_FLAG
    if propType & MV_FLAG and base in (PT_BOOLEAN, PT_ERROR):
        return False
    return base in TYPE_NAMES


# -- property sets ---------------------------------------------------------------------

PROPERTY_SETS = {
    "PSETID_Appointment": uuid.UUID("00062002-0000-0000-C000-000000000046"),
    "PSETID_Task": uuid.UUID("00062003-0000-0000-C000-000000000046"),
    "PSETID_Address": uuid.UUID("00062004-0000-0000-C000-000000000046"),
    "PSETID_Common": uuid.UUID("00062008-0000-0000-C000-000000000046"),
    "PSETID_Log": uuid.UUID("0006200A-0000-0000-C000-000000000046"),
    "PSETID_Note": uuid.UUID("0006200E-0000-0000-C000-000000000046"),
    "PSETID_Sharing": uuid.UUID("00062040-0000-0000-C000-000000000046"),
    "PSETID_Meeting": uuid.UUID("6ED8DA90-450B-101B-98DA-00AA003F1305"),
    "PS_PUBLIC_STRINGS": uuid.UUID("00020329-0000-0000-C000-000000000046"),
    "PS_INTERNET_HEADERS": uuid.UUID("00020386-0000-0000-C000-000000000046"),
}
_SET_NAMES = {guid: name for name, guid in PROPERTY_SETS.items()}
_SETS_BY_UPPER = {name.upper(): guid for name, guid in PROPERTY_SETS.items()}


@attr.s(frozen=True, slots=True)
class PropertyKey:
    """
    What a property is, independent of how a client wrote it.

    @ivar propType: the MAPI type (C{PT_*}, with L{MV_FLAG} for multi-valued).
    @ivar propId: for a tagged property, its id (C{0x0001}-C{0x7FFF});
        C{None} for a named property.
    @ivar propSet: for a named property, its property set (C{uuid.UUID}).
    @ivar lid: for a numeric named property, its LID (C{int}).
    @ivar name: for a string named property, its name (C{str}, case kept:
        string names compare exactly, as in MAPI).
    """

    propType = attr.ib()
    propId = attr.ib(default=None)
    propSet = attr.ib(default=None)
    lid = attr.ib(default=None)
    name = attr.ib(default=None)

    @property
    def named(self):
        return self.propId is None

    def text(self):
        """
        The normal written form: C{0x0037001F}, C{PSETID_Appointment/0x820D/0x0040},
        C{PS_PUBLIC_STRINGS/name=Keywords/0x101F} (upper-case hex; a property
        set's name where it has one).
        """
        if not self.named:
            return "0x%04X%04X" % (self.propId, self.propType)
        propSet = _SET_NAMES.get(self.propSet) or "{%s}" % (str(self.propSet).upper(),)
        member = "0x%04X" % (self.lid,) if self.name is None else "name=" + self.name
        return "%s/%s/0x%04X" % (propSet, member, self.propType)


@attr.s(frozen=True, slots=True)
class PropertyDef:
    """
    A property gateway knows by an MS-OXPROPS canonical name.

    @ivar derived: computed from the message itself, never stored
        (C{docs/xmapi.md} section 3.3).
    """

    canonical = attr.ib()
    key = attr.ib()
    derived = attr.ib(default=False)


def _tag(canonical, tag, derived=False):
    return PropertyDef(canonical, PropertyKey(propType=tag & 0xFFFF, propId=tag >> 16), derived)


def _lid(canonical, propSet, lid, propType, derived=False):
    return PropertyDef(canonical, PropertyKey(propType=propType, propSet=PROPERTY_SETS[propSet], lid=lid),
                       derived)


def _string(canonical, propSet, name, propType, derived=False):
    return PropertyDef(canonical, PropertyKey(propType=propType, propSet=PROPERTY_SETS[propSet], name=name),
                       derived)


#: The properties gateway knows by name (MS-OXPROPS).  C{derived} ones are
#: computed from the message (C{docs/xmapi.md} section 3.3); the others are
#: known so that a client may use their names, and are stored.
PROPERTIES = [
    # Messages (MS-OXCMSG, MS-OXCMAIL)
    _tag("PidTagMessageClass", 0x001A001F, derived=True),
    _tag("PidTagSubject", 0x0037001F, derived=True),
    _tag("PidTagSubjectPrefix", 0x003D001F, derived=True),
    _tag("PidTagNormalizedSubject", 0x0E1D001F, derived=True),
    _tag("PidTagSenderName", 0x0C1A001F, derived=True),
    _tag("PidTagSenderEmailAddress", 0x0C1F001F, derived=True),
    _tag("PidTagSentRepresentingName", 0x0042001F, derived=True),
    _tag("PidTagDisplayTo", 0x0E04001F, derived=True),
    _tag("PidTagDisplayCc", 0x0E03001F, derived=True),
    _tag("PidTagMessageSize", 0x0E080003, derived=True),
    _tag("PidTagMessageDeliveryTime", 0x0E060040, derived=True),
    _tag("PidTagClientSubmitTime", 0x00390040, derived=True),
    _tag("PidTagInternetMessageId", 0x1035001F, derived=True),
    _tag("PidTagImportance", 0x00170003, derived=True),
    _tag("PidTagSensitivity", 0x00360003, derived=True),
    _tag("PidTagHasAttachments", 0x0E1B000B, derived=True),
    _tag("PidTagBody", 0x1000001F),
    _tag("PidTagConversationTopic", 0x0070001F),
    _tag("PidTagIconIndex", 0x10800003),
    _tag("PidTagFlagStatus", 0x10900003),
    _tag("PidTagLastModificationTime", 0x30080040),
    _tag("PidTagCreationTime", 0x30070040),
    # Folders
    _tag("PidTagContainerClass", 0x3613001F),
    _tag("PidTagDisplayName", 0x3001001F, derived=True),
    # Contacts (MS-OXOCNTC)
    _tag("PidTagGivenName", 0x3A06001F, derived=True),
    _tag("PidTagSurname", 0x3A11001F, derived=True),
    _tag("PidTagCompanyName", 0x3A16001F, derived=True),
    _tag("PidTagTitle", 0x3A17001F, derived=True),
    _tag("PidTagBusinessTelephoneNumber", 0x3A08001F, derived=True),
    _tag("PidTagHomeTelephoneNumber", 0x3A09001F, derived=True),
    _tag("PidTagMobileTelephoneNumber", 0x3A1C001F, derived=True),
    _lid("PidLidEmail1DisplayName", "PSETID_Address", 0x8080, PT_UNICODE),
    _lid("PidLidEmail1EmailAddress", "PSETID_Address", 0x8083, PT_UNICODE, derived=True),
    _lid("PidLidEmail2EmailAddress", "PSETID_Address", 0x8093, PT_UNICODE, derived=True),
    _lid("PidLidEmail3EmailAddress", "PSETID_Address", 0x80A3, PT_UNICODE, derived=True),
    _lid("PidLidFreeBusyLocation", "PSETID_Address", 0x80D8, PT_UNICODE, derived=True),
    _lid("PidLidFileUnder", "PSETID_Address", 0x8005, PT_UNICODE),
    _lid("PidLidInstantMessagingAddress", "PSETID_Address", 0x8062, PT_UNICODE),
    # Appointments and meetings (MS-OXOCAL)
    _lid("PidLidAppointmentStartWhole", "PSETID_Appointment", 0x820D, PT_SYSTIME, derived=True),
    _lid("PidLidAppointmentEndWhole", "PSETID_Appointment", 0x820E, PT_SYSTIME, derived=True),
    _lid("PidLidAppointmentSubType", "PSETID_Appointment", 0x8215, PT_BOOLEAN, derived=True),
    _lid("PidLidLocation", "PSETID_Appointment", 0x8208, PT_UNICODE, derived=True),
    _lid("PidLidBusyStatus", "PSETID_Appointment", 0x8205, PT_LONG, derived=True),
    _lid("PidLidRecurring", "PSETID_Appointment", 0x8223, PT_BOOLEAN, derived=True),
    _lid("PidLidIntendedBusyStatus", "PSETID_Appointment", 0x8224, PT_LONG),
    _lid("PidLidAppointmentColor", "PSETID_Appointment", 0x8214, PT_LONG),
    _lid("PidLidAppointmentStateFlags", "PSETID_Appointment", 0x8217, PT_LONG),
    _lid("PidLidResponseStatus", "PSETID_Appointment", 0x8218, PT_LONG),
    _lid("PidLidAppointmentSequence", "PSETID_Appointment", 0x8201, PT_LONG),
    _lid("PidLidAppointmentRecur", "PSETID_Appointment", 0x8216, PT_BINARY),
    _lid("PidLidClipStart", "PSETID_Appointment", 0x8235, PT_SYSTIME),
    _lid("PidLidClipEnd", "PSETID_Appointment", 0x8236, PT_SYSTIME),
    _lid("PidLidTimeZoneDescription", "PSETID_Appointment", 0x8234, PT_UNICODE),
    _lid("PidLidGlobalObjectId", "PSETID_Meeting", 0x0003, PT_BINARY, derived=True),
    _lid("PidLidCleanGlobalObjectId", "PSETID_Meeting", 0x0023, PT_BINARY, derived=True),
    _lid("PidLidIsRecurring", "PSETID_Meeting", 0x0005, PT_BOOLEAN),
    _lid("PidLidIsException", "PSETID_Meeting", 0x000A, PT_BOOLEAN),
    _lid("PidLidMeetingType", "PSETID_Meeting", 0x0026, PT_LONG),
    # Common (MS-OXORMDR and others)
    _lid("PidLidReminderSet", "PSETID_Common", 0x8503, PT_BOOLEAN, derived=True),
    _lid("PidLidReminderDelta", "PSETID_Common", 0x8501, PT_LONG, derived=True),
    _lid("PidLidReminderSignalTime", "PSETID_Common", 0x8560, PT_SYSTIME),
    _lid("PidLidCommonStart", "PSETID_Common", 0x8516, PT_SYSTIME),
    _lid("PidLidCommonEnd", "PSETID_Common", 0x8517, PT_SYSTIME),
    _lid("PidLidPrivate", "PSETID_Common", 0x8506, PT_BOOLEAN),
    # Tasks (MS-OXOTASK)
    _lid("PidLidTaskStatus", "PSETID_Task", 0x8101, PT_LONG, derived=True),
    _lid("PidLidPercentComplete", "PSETID_Task", 0x8102, PT_DOUBLE, derived=True),
    _lid("PidLidTaskStartDate", "PSETID_Task", 0x8104, PT_SYSTIME),
    _lid("PidLidTaskDueDate", "PSETID_Task", 0x8105, PT_SYSTIME, derived=True),
    _lid("PidLidTaskDateCompleted", "PSETID_Task", 0x810F, PT_SYSTIME),
    _lid("PidLidTaskComplete", "PSETID_Task", 0x811C, PT_BOOLEAN, derived=True),
    # Notes (MS-OXONOTE)
    _lid("PidLidNoteColor", "PSETID_Note", 0x8B00, PT_LONG),
    # Categories (MS-OXCMSG: PidNameKeywords)
    _string("PidNameKeywords", "PS_PUBLIC_STRINGS", "Keywords", PT_UNICODE | MV_FLAG),
]

BY_CANONICAL = {p.canonical.lower(): p for p in PROPERTIES}
BY_KEY = {p.key: p for p in PROPERTIES}


# -- identifiers -------------------------------------------------------------------------

_TAG = re.compile(r"0x([0-9A-Fa-f]{4})([0-9A-Fa-f]{4})\Z")
_NAMED = re.compile(
    r"(?P<set>[A-Za-z_]+|\{[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}\})"
    r"/(?:0x(?P<lid>[0-9A-Fa-f]{1,8})|name=(?P<name>[\x21-\x2e\x30-\x7e]+))"
    r"/0x(?P<type>[0-9A-Fa-f]{4})\Z")
_CANONICAL = re.compile(r"(?:PidTag|PidLid|PidName)[A-Za-z0-9]+\Z", re.IGNORECASE)


def parsePropertyId(text):
    """
    Parse a property identifier as C{docs/xmapi.md} section 3.1 writes it.

    @param text: C{str}
    @rtype: L{PropertyKey}
    @raise PropertyError: a malformed identifier, an unknown canonical name,
        a tag in the named-property range (R-ID-3) or an unknown type.
    """
    match = _TAG.match(text)
    if match:
        propId, propType = int(match.group(1), 16), int(match.group(2), 16)
        if propId == 0 or propId >= 0x8000:
            raise PropertyError("%s: tags 0x8000 and above are named properties; use the named form" % (text,))
        key = PropertyKey(propType=propType, propId=propId)
    elif _CANONICAL.match(text):
        known = BY_CANONICAL.get(text.lower())
        if known is None:
            raise PropertyError("%s: unknown property name" % (text,))
        return known.key
    else:
        match = _NAMED.match(text)
        if match is None:
            raise PropertyError("%s: not a property identifier" % (text,))
        propSetText = match.group("set")
        if propSetText.startswith("{"):
            propSet = uuid.UUID(propSetText[1:-1])
        else:
            propSet = _SETS_BY_UPPER.get(propSetText.upper())
            if propSet is None:
                raise PropertyError("%s: unknown property set %s" % (text, propSetText))
        propType = int(match.group("type"), 16)
        if match.group("lid") is not None:
            key = PropertyKey(propType=propType, propSet=propSet, lid=int(match.group("lid"), 16))
        else:
            key = PropertyKey(propType=propType, propSet=propSet, name=match.group("name"))
    if not isKnownType(key.propType):
        raise PropertyError("%s: unknown property type 0x%04X" % (text, key.propType))
    return key


def canonicalText(key):
    """
    How the server writes C{key} when the client did not name it
    (C{XPROPS (*)}, R-ID-4): its canonical name where known, else
    L{PropertyKey.text}.
    """
    known = BY_KEY.get(key)
    return known.canonical if known is not None else key.text()


def isDerived(key):
    """
    Is the property computed from the message (and so read-only)?
    """
    known = BY_KEY.get(key)
    return known is not None and known.derived


# -- values --------------------------------------------------------------------------------

_SYSTIME = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z\Z")
_DECIMAL = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\Z")
_CURRENCY = re.compile(r"-?\d+(?:\.\d{1,4})?\Z")


def fromText(key, raw, label=None):
    """
    Check a value from the wire against its property's type and convert it.

    @param key: the L{PropertyKey}.
    @param raw: C{int} (an IMAP number), C{str} (a string's text), or a
        C{list} of those for a multi-valued type.
    @param label: how to name the property in an error (default: its text).
    @return: the Python value: C{int}, C{bool}, C{decimal.Decimal},
        C{datetime.datetime} (UTC), C{str}, C{bytes}, C{uuid.UUID}, or a
        C{list} of these.
    @raise PropertyError: when the value does not fit (R-VAL-1).
    """
    label = label or key.text()
    if key.propType & MV_FLAG:
        if not isinstance(raw, list):
            raise PropertyError("%s: a multi-valued property takes a list" % (label,))
        base = key.propType & ~MV_FLAG
        return [_single(base, item, label) for item in raw]
    if isinstance(raw, list):
        raise PropertyError("%s: a single-valued property takes one value" % (label,))
    return _single(key.propType, raw, label)


def _single(propType, raw, label):
    if propType in _INTEGER_RANGES:
        return _integer(propType, raw, label)
    if propType == PT_BOOLEAN:
        if raw in (0, 1) and not isinstance(raw, str):
            return bool(raw)
        raise PropertyError("%s: a boolean is 0 or 1" % (label,))
    if not isinstance(raw, str):
        raise PropertyError("%s: %s takes a string" % (label, TYPE_NAMES[propType]))
    if propType in (PT_UNICODE, PT_STRING8):
        return raw
    if propType == PT_SYSTIME:
        match = _SYSTIME.match(raw)
        try:
            return datetime.datetime(*map(int, match.groups()), tzinfo=datetime.timezone.utc)
        except (AttributeError, ValueError):
            raise PropertyError('%s: a time is "YYYYMMDDTHHMMSSZ" in UTC' % (label,)) from None
    if propType in _DECIMAL_TYPES:
        pattern = _CURRENCY if propType == PT_CURRENCY else _DECIMAL
        if not pattern.match(raw):
            raise PropertyError("%s: not a decimal number for %s" % (label, TYPE_NAMES[propType]))
        return decimal.Decimal(raw)
    if propType == PT_BINARY:
        try:
            return base64.b64decode(raw.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise PropertyError("%s: binary values are base64" % (label,)) from None
    if propType == PT_CLSID:
        if not (raw.startswith("{") and raw.endswith("}")):
            raise PropertyError('%s: a CLSID is "{GUID}"' % (label,))
        try:
            return uuid.UUID(raw[1:-1])
        except ValueError:
            raise PropertyError('%s: a CLSID is "{GUID}"' % (label,)) from None
    raise PropertyError("%s: unknown type" % (label,))


def _integer(propType, raw, label):
    if isinstance(raw, bool):
        raw = int(raw)
    if isinstance(raw, str):
        if not re.match(r"-?\d+\Z", raw):
            raise PropertyError("%s: not an integer" % (label,))
        raw = int(raw)
    low, high = _INTEGER_RANGES[propType]
    if not low <= raw <= high:
        raise PropertyError("%s: %d is out of range for %s" % (label, raw, TYPE_NAMES[propType]))
    return raw


def toText(key, value):
    """
    The wire-neutral form of a value of C{key}'s type: the inverse of
    L{fromText}.  Non-negative integers and booleans are C{int}; negative
    integers and every other type are C{str}; multi-valued are C{list}.
    """
    if key.propType & MV_FLAG:
        base = key.propType & ~MV_FLAG
        return [_singleText(base, item) for item in value]
    return _singleText(key.propType, value)


def _singleText(propType, value):
    if propType in _INTEGER_RANGES:
        return value if value >= 0 else str(value)
    if propType == PT_BOOLEAN:
        return int(bool(value))
    if propType in (PT_UNICODE, PT_STRING8):
        return value
    if propType == PT_SYSTIME:
        value = value.astimezone(datetime.timezone.utc)
        return value.strftime("%Y%m%dT%H%M%SZ")
    if propType in _DECIMAL_TYPES:
        return str(value)
    if propType == PT_BINARY:
        return base64.b64encode(value).decode("ascii")
    if propType == PT_CLSID:
        return "{%s}" % (str(value).upper(),)
    raise PropertyError("unknown type 0x%04X" % (propType,))
