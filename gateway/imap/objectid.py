# -*- test-case-name: tests.test_imap_objectid -*-
"""
OBJECTID (RFC 8474) message items: the FETCH items C{EMAILID} and
C{THREADID} and the SEARCH keys C{EMAILID} and C{THREADID}, rows that
L{install} adds to an IMAP factory's registries.  MAILBOXID (STATUS,
SELECT/EXAMINE, CREATE) is answered by L{gateway.imap.commands_mailbox}.

What the ids are and how they stay stable (restart, index rebuild, COPY,
MOVE) is L{gateway.store.objectid}; this module is the syntax.
"""

from gateway.imap.fetchitems import FetchItem
from gateway.imap.protocol import capability
from gateway.imap.search import SearchKey
from gateway.store import objectid

capability("OBJECTID")

#: FETCH/SEARCH name -> which of the ids (index in L{objectid.objectIds}'s
#: pairs, column of the index).
_IDS = {"EMAILID": (0, "emailid"), "THREADID": (1, "threadid")}


def install(registries):
    """
    Add the OBJECTID rows to C{registries} (a
    L{gateway.imap.registry.Registries}).
    """
    for name in _IDS:
        registries.fetch.add(name, _renderer, parse=_parser(name))
        registries.search.add(name, parseSearchId)


# -- FETCH EMAILID / THREADID ------------------------------------------------------------------

class ObjectIdItem(FetchItem):
    """
    C{EMAILID} or C{THREADID}: L{prepare} reads the ids of each batch
    before it is rendered (one index query, see
    L{gateway.store.objectid.objectIds}).
    """

    def __init__(self, name):
        FetchItem.__init__(self, name)
        self.ids = {}

    def prepare(self, session, uids):
        def got(found):
            self.ids = found
        return objectid.objectIds(session.view.mailbox, uids).addCallback(got)


def _parser(name):
    def parse(text, pos):
        return ObjectIdItem(name), pos
    return parse


def _renderer(item, threshold):
    which = _IDS[item.name][0]

    def render(parts, message, flags, recent):
        found = item.ids.get(message.info.uid)
        if found is None or found[which] is None:
            parts.append(b"NIL")
        else:
            parts.append(b"(" + found[which].encode("ascii") + b")")
    return render


# -- SEARCH EMAILID / THREADID -----------------------------------------------------------------

class ObjectIdKey(SearchKey):
    """
    C{EMAILID objectid} / C{THREADID objectid} (RFC 8474 6): the messages
    of the selected mailbox with that id, found with one index query
    (L{prepare}) before the search, then matched by membership.
    """

    def __init__(self, session, column, value):
        self.session = session
        self.column, self.value = column, value
        self.uids = frozenset()

    def prepare(self):
        def got(found):
            self.uids = frozenset(found)
        return objectid.uidsWith(self.session.view.mailbox, self.column, self.value).addCallback(got)

    def match(self, m):
        return m.info.uid in self.uids


def parseSearchId(parser, name):
    """
    The SEARCH registry's parser of C{EMAILID} and C{THREADID}.
    """
    value = parser.atom("%s objectid" % (name,))
    if not objectid.OBJECTID.match(value):
        raise ValueError("%s: %r is not an object id" % (name, value[:40]))
    key = ObjectIdKey(parser.context, _IDS[name][1], value)
    if parser.context is not None:
        parser.prepareWith(key.prepare)
    return key
