# -*- test-case-name: tests.test_imap_sort -*-
"""
SORT keys (RFC 5256, RFC 5957 DISPLAYFROM/DISPLAYTO) computed from what the
index holds of a message (L{gateway.interfaces.IMessageInfo}: internal
date, size and the header block), never from the message file.

Strings compare with the C{i;unicode-casemap} collation (see
L{caseMap}); messages that tie on every key keep mailbox order, which a
stable sort of the ascending UIDs gives.
"""

import calendar
import collections
import email.utils
import re
import unicodedata

from zope.interface import implementer

from gateway.imap import mimeparts
from gateway.imap.search import decodeHeader
from gateway.interfaces import IIdleRelease

#: The sort keys: name -> whether it reads the header block.
SORT_KEYS = {
    "ARRIVAL": False, "CC": True, "DATE": True, "FROM": True, "SIZE": False,
    "SUBJECT": True, "TO": True, "DISPLAYFROM": True, "DISPLAYTO": True,
}

_ASCII_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}
_SPACES = re.compile(r"[ \t\r\n]+")
_FWD_TRAILER = re.compile(r"(?:[ \t]*\(fwd\))+[ \t]*\Z|[ \t]+\Z", re.I)
_BLOB = r"\[[^\[\]]*\][ \t]*"
_REFWD = re.compile(r"(?:%s)*(?:re|fwd?)[ \t]*(?:%s)?:" % (_BLOB, _BLOB), re.I)
_LEADING_BLOB = re.compile(_BLOB)
_DATE = re.compile(rb"\s*(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{1,2}):(\d\d)(?::(\d\d))?"
                   rb"\s+([+-])(\d\d)(\d\d)(?:\s|\(|\Z)")
_MONTHS = {m: i for i, m in enumerate(
    (b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec"), 1)}

#: Mailboxes whose computed keys L{KeyCache} keeps.
CACHED_MAILBOXES = 16


class SortCriterion:
    """
    One sort key of a SORT command.

    @ivar key: the upper-case key name (a name of L{SORT_KEYS}).
    @ivar reverse: C{True} after C{REVERSE}.
    """

    def __init__(self, key, reverse=False):
        self.key = key
        self.reverse = reverse

    def __repr__(self):
        return "<SortCriterion %s%s>" % ("REVERSE " if self.reverse else "", self.key)


def parseCriteria(items):
    """
    The sort criteria of a parenthesized list of atoms.

    @raise ValueError: unknown or misplaced keys, or an empty list.
    """
    criteria = []
    reverse = False
    for item in items:
        if not isinstance(item, str):
            raise ValueError("sort criteria are atoms")
        name = item.upper()
        if name == "REVERSE":
            if reverse:
                raise ValueError("REVERSE REVERSE")
            reverse = True
            continue
        if name not in SORT_KEYS:
            raise ValueError("unknown sort key %s" % (item[:20],))
        criteria.append(SortCriterion(name, reverse))
        reverse = False
    if reverse or not criteria:
        raise ValueError("incomplete sort criteria")
    return criteria


def needsHeaders(criteria):
    return any(SORT_KEYS[c.key] for c in criteria)


def caseMap(text):
    """
    C{text} in the form C{i;unicode-casemap} (RFC 5051, which RFC 5256's
    I18NLEVEL=1 requires) compares by code point: upper case, then
    decomposed, so that C{"Éclair"} sorts beside C{"Eclair"}, not after
    C{"Zebra"}.  ASCII text is only upper-cased (the common case, fast).
    """
    if text.isascii():
        return text.translate(_ASCII_UPPER)
    return unicodedata.normalize("NFKD", text.upper())


def baseSubject(subject):
    """
    The base subject of RFC 5256 2.1 (decoded, white space collapsed, reply
    and forward markers and leading blobs removed), and whether anything
    marked it as a reply or forward.

    @param subject: the decoded Subject (C{str}).
    @return: C{(base, isReplyOrForward)}.
    """
    text = _SPACES.sub(" ", subject).strip()
    marked = False
    while True:
        # (2) trailing "(fwd)" and white space
        stripped = _FWD_TRAILER.sub("", text)
        marked |= "(fwd)" in text[len(stripped):].lower()
        text = stripped
        # (3)-(5) leading "re:", "fw:", "fwd:" (with blobs) and blobs
        while True:
            changed = False
            match = _REFWD.match(text)
            while match is not None or text[:1] == " ":
                if match is not None:
                    text = text[match.end():]
                    marked = True
                else:
                    text = text[1:]
                changed = True
                match = _REFWD.match(text)
            match = _LEADING_BLOB.match(text)
            if match is not None and text[match.end():].strip():
                text = text[match.end():]
                changed = True
            if not changed:
                break
        # (6) "[fwd: ...]"
        if text[:5].lower() == "[fwd:" and text.endswith("]"):
            text = text[5:-1]
            marked = True
            continue
        return text, marked


def _headerText(info, name):
    """
    The first C{name} field of the message (lower-case name), decoded, or C{""}.
    """
    values = mimeparts.fieldValues(info.headers or b"", name)
    return decodeHeader(values[0]) if values else ""


def _firstAddress(info, name):
    """
    C{(display name, addr-spec)} of the first address of field C{name},
    or C{("", "")}.
    """
    values = mimeparts.fieldValues(info.headers or b"", name)
    first = mimeparts.parseAddressList(values[0])[:1] if values else ()
    if first and first[0][2] is not None and first[0][3] is None:
        # A group: the envelope's first address is its start, whose
        # mailbox is the group name (as Dovecot sorts it).
        return "", decodeHeader(first[0][2])
    value = decodeHeader(values[0]) if values else ""
    if not value:
        return "", ""
    for display, address in email.utils.getaddresses([value]):
        if display or address:
            return display.strip(), address.strip()
    return "", ""


def sentTimestamp(info, values=None):
    """
    The message's sent date (its Date header) as POSIX seconds, or its
    internal date when the header is missing or unparseable (RFC 5256).

    @param values: the values of its Date fields, when already read.
    """
    if values is None:
        values = mimeparts.fieldValues(info.headers or b"", "date")
    if values:
        match = _DATE.match(values[0])
        if match is not None and match.group(2).lower() in _MONTHS:
            day, month, year, hh, mm, ss, sign, zh, zm = match.groups()
            try:
                when = calendar.timegm((int(year), _MONTHS[month.lower()], int(day), int(hh), int(mm),
                                        int(ss or 0), 0, 0, 0))
            except (ValueError, OverflowError):
                when = None
            if when is not None and int(day) <= calendar.monthrange(int(year), _MONTHS[month.lower()])[1] \
                    and int(hh) < 24 and int(mm) < 60:
                offset = (int(zh) * 3600 + int(zm) * 60) * (-1 if sign == b"-" else 1)
                return when - offset
        try:
            return email.utils.parsedate_to_datetime(values[0].decode("latin-1")).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    return info.internalDate.timestamp()


def _mailboxPart(info, name):
    return caseMap(_firstAddress(info, name)[1].split("@", 1)[0])


def _display(info, name):
    display, address = _firstAddress(info, name)
    if display:
        return caseMap(decodeHeader(display.encode("utf-8")))
    return caseMap(address)


_KEYS = {
    "ARRIVAL": lambda info: info.internalDate.timestamp(),
    "SIZE": lambda info: info.size,
    "DATE": sentTimestamp,
    "SUBJECT": lambda info: caseMap(baseSubject(_headerText(info, "subject"))[0]),
    "FROM": lambda info: _mailboxPart(info, "from"),
    "TO": lambda info: _mailboxPart(info, "to"),
    "CC": lambda info: _mailboxPart(info, "cc"),
    "DISPLAYFROM": lambda info: _display(info, "from"),
    "DISPLAYTO": lambda info: _display(info, "to"),
}


def sortKeyValue(criterion, info):
    """
    The value C{info} sorts by for one criterion (without REVERSE).
    """
    return _KEYS[criterion.key](info)


def sortInfos(infos, criteria):
    """
    C{infos} (in mailbox order) sorted by C{criteria}: one stable sort per
    key from the last to the first, so ties keep mailbox order and REVERSE
    reverses one key only.

    @return: a new C{list}.
    """
    items = list(infos)
    for criterion in reversed(criteria):
        keys = {id(info): sortKeyValue(criterion, info) for info in items}
        items.sort(key=lambda info: keys[id(info)], reverse=criterion.reverse)
    return items


@implementer(IIdleRelease)
class KeyCache:
    """
    The sort and thread keys computed for the messages of the last few
    mailboxes sorted: a message's keys come from its internal date, size
    and header block, which never change while its UID lives, so a SORT
    after the first reads no header again.  L{releaseIdle} lets go of the
    keys of mailboxes not sorted since its previous call.
    """

    def __init__(self, size=CACHED_MAILBOXES):
        self.size = size
        self._mailboxes = collections.OrderedDict()
        self._used = set()

    def values(self, mailbox, name):
        """
        The C{{uid: value}} kept for key C{name} of C{mailbox} (to read
        and fill).
        """
        key = (mailbox, mailbox.uidValidity)
        self._used.add(key)
        keys = self._mailboxes.get(key)
        if keys is None:
            keys = self._mailboxes[key] = {}
            while len(self._mailboxes) > self.size:
                self._used.discard(self._mailboxes.popitem(last=False)[0])
        else:
            self._mailboxes.move_to_end(key)
        return keys.setdefault(name, {})

    def order(self, mailbox, name):
        """
        Every UID whose key C{name} of C{mailbox} is kept, in the order of
        C{(value, uid)}: kept beside the values and brought up to date when
        they grew, so that a SORT by one key walks it instead of sorting.

        @return: a C{list} the caller must not change.
        """
        values = self.values(mailbox, name)
        keys = self._mailboxes[(mailbox, mailbox.uidValidity)]
        kept = keys.get((ORDER, name))
        if kept is not None and kept[1] == len(values):
            return kept[0]
        if kept is not None and kept[0]:
            # New mail: only UIDs above the ones ordered (a sort of a
            # sorted list with a sorted tail appended costs little).
            order, _, highest = kept
            added = sorted(uid for uid in values if uid > highest)
            if len(order) + len(added) != len(values):
                order = None
        else:
            order = None
        if order is None:
            order = sorted(values)
            order.sort(key=values.__getitem__)
        else:
            order = order + added
            order.sort(key=values.__getitem__)
        keys[(ORDER, name)] = (order, len(values), max(values, default=0))
        return order


    def releaseIdle(self):
        """
        Let go of the keys of the mailboxes not sorted or threaded since
        the previous call.

        @return: how many mailboxes' keys were let go.
        """
        idle = [key for key in self._mailboxes if key not in self._used]
        for key in idle:
            del self._mailboxes[key]
        self._used.clear()
        return len(idle)

    def describe(self):
        return ["sort keys: of %d mailboxes, %d values"
                % (len(self._mailboxes), sum(len(v) for keys in self._mailboxes.values() for v in keys.values()))]


#: The key under which L{KeyCache.order} keeps an order beside the values.
ORDER = object()


def sortUids(uids, criteria, values, order=None):
    """
    C{uids} (ascending) sorted by C{criteria} from the keys kept: ties keep
    mailbox order, also under C{REVERSE} (RFC 5256).

    @param values: C{{key name: {uid: value}}} holding every UID's keys.
    @param order: C{order(name)} gives L{KeyCache.order} of a key (or
        C{None} when it has none of C{values}), or C{None}: a single key is
        then sorted like several.
    @return: a new C{list} of UIDs.
    """
    if len(criteria) == 1 and order is not None:
        criterion = criteria[0]
        ordered = order(criterion.key)
        if ordered is not None and len(uids) * 8 >= len(ordered):
            wanted = set(uids)
            result = [uid for uid in ordered if uid in wanted]
            if criterion.reverse:
                # Already ascending: the stable reverse sort keeps ties
                # in mailbox order in one pass.
                result.sort(key=values[criterion.key].__getitem__, reverse=True)
            return result
    result = list(uids)
    for criterion in reversed(criteria):
        result.sort(key=values[criterion.key].__getitem__, reverse=criterion.reverse)
    return result


#: The process's L{KeyCache}.
keyCache = KeyCache()
