# -*- test-case-name: tests.test_imap_partial -*-
"""
Result options of SEARCH and SORT (ESEARCH, RFC 4731; ESORT, RFC 5267;
SEARCHRES, RFC 5182; PARTIAL, RFC 9394): parsing C{RETURN (...)} and the
PARTIAL ranges (also a FETCH modifier), and the pieces of an ESEARCH
response.
"""

import re

_PARTIAL = re.compile(r"(-?)(\d{1,10}):(-?)(\d{1,10})\Z")


def parsePartialRange(text):
    """
    A PARTIAL range (RFC 9394): C{"1:500"} counts from the first result,
    C{"-1:-500"} from the last.

    @return: C{(fromEnd, low, high)} with C{1 <= low <= high}.
    @raise ValueError: when malformed.
    """
    match = _PARTIAL.match(text)
    if match is None or match.group(1) != match.group(3):
        raise ValueError("bad PARTIAL range %r" % (text[:30],))
    low, high = sorted((int(match.group(2)), int(match.group(4))))
    if low < 1 or high > 0xFFFFFFFF:
        raise ValueError("bad PARTIAL range %r" % (text[:30],))
    return (bool(match.group(1)), low, high)


def partialSlice(items, partial):
    """
    The results a PARTIAL range selects of C{items} (in result order),
    in that order.
    """
    fromEnd, low, high = partial
    if not fromEnd:
        return items[low - 1:high]
    count = len(items)
    return items[max(count - high, 0):max(count - low + 1, 0)]


def parseReturnOptions(items, allowed):
    """
    ESEARCH/ESORT return options: C{(options, partial)}, the C{list} of
    upper-case options (C{["ALL"]} for none) and the L{parsePartialRange}
    of C{PARTIAL} (or C{None}).

    @raise ValueError: for an option not in C{allowed}, or PARTIAL without
        a range or with ALL.
    """
    options, partial = [], None
    i = 0
    while i < len(items):
        option = items[i]
        option = option.decode("ascii", "replace") if isinstance(option, bytes) else option
        if not isinstance(option, str) or option.upper() not in allowed + ("PARTIAL",):
            raise ValueError("unknown RETURN option %r" % (option,))
        option = option.upper()
        if option == "PARTIAL":
            i += 1
            if i >= len(items) or not isinstance(items[i], str) or partial is not None:
                raise ValueError("PARTIAL needs one range")
            partial = parsePartialRange(items[i])
        if option not in options:
            options.append(option)
        i += 1
    if partial is not None and "ALL" in options:
        raise ValueError("PARTIAL and ALL cannot be combined")
    return options or ["ALL"], partial


def formatPartial(partial, results):
    """
    The C{PARTIAL (range results)} of an ESEARCH response (RFC 9394);
    C{results} is the page as a sequence set (C{""}: none).
    """
    fromEnd, low, high = partial
    sign = "-" if fromEnd else ""
    return ("PARTIAL (%s%d:%s%d %s)" % (sign, low, sign, high, results or "NIL")).encode("ascii")


def formatOrdered(numbers):
    """
    A sequence set that keeps the order of C{numbers}: only ascending runs
    become ranges (ESORT's ALL, RFC 5267 4.2).
    """
    parts = []
    i = 0
    while i < len(numbers):
        j = i
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
            j += 1
        parts.append("%d" % (numbers[i],) if i == j else "%d:%d" % (numbers[i], numbers[j]))
        i = j + 1
    return ",".join(parts)


def esearchParts(tag, uid, numbers, options, partial, formatNumbers):
    """
    The ESEARCH response's parts (RFC 4731, RFC 5267, RFC 9394) for the
    found C{numbers}, in the order they were found: the tag, C{UID}, and
    MIN, MAX, COUNT, ALL and PARTIAL as C{options} and C{partial} ask.

    @param formatNumbers: how a list of numbers is written: a sequence set
        (SEARCH), or in order (SORT).
    @return: C{list} of C{bytes}, for the caller to add MODSEQ to.
    """
    parts = [b'(TAG "' + tag.encode("latin-1") + b'")']
    if uid:
        parts.append(b"UID")
    if numbers:
        if "MIN" in options:
            parts.append(b"MIN %d" % (numbers[0],))
        if "MAX" in options:
            parts.append(b"MAX %d" % (numbers[-1],))
    if "COUNT" in options:
        parts.append(b"COUNT %d" % (len(numbers),))
    if numbers and "ALL" in options:
        parts.append(b"ALL " + formatNumbers(numbers).encode("ascii"))
    if partial is not None:
        parts.append(formatPartial(partial, formatNumbers(partialSlice(numbers, partial))))
    return parts
