# -*- test-case-name: tests.test_imap_sort -*-
"""
THREAD (RFC 5256): the ORDEREDSUBJECT and REFERENCES algorithms over what
the index holds of each message (its header block: Message-ID, References,
In-Reply-To, Subject, Date), and the response's thread-list syntax.

A thread is a L{Node}: C{message} is the message's number in the response
(sequence number or UID), or C{None} for a dummy that only holds its
children together.
"""

import re

from gateway.imap import mimeparts
from gateway.imap.search import decodeHeader
from gateway.imap.sort import baseSubject, sentTimestamp

ALGORITHMS = ("ORDEREDSUBJECT", "REFERENCES")

_MSG_ID = re.compile(rb"<([^<>]*)>")
_NO_SPACE = re.compile(rb"[ \t\r\n]+")


class ThreadMessage:
    """
    What threading needs of one message.

    @ivar number: its number in the response.
    @ivar order: its position in the mailbox (ties sort by it).
    @ivar date: its sent date (POSIX seconds; internal date when it has
        no usable Date header).
    @ivar subject: its base subject; C{isReply}: the subject was marked as
        a reply or forward.
    @ivar messageId: its Message-ID, or C{None}.
    @ivar references: the Message-IDs it refers to, oldest first (its
        References, else the first of In-Reply-To).
    """

    def __init__(self, number, order, date, subject, isReply=False, messageId=None, references=()):
        self.number = number
        self.order = order
        self.date = date
        self.subject = subject
        self.isReply = isReply
        self.messageId = messageId
        self.references = list(references)


def _messageIds(value):
    return [_NO_SPACE.sub(b"", m).decode("latin-1") for m in _MSG_ID.findall(value) if m.strip()]


def threadFields(info):
    """
    What a L{ThreadMessage} holds of a message besides its numbers:
    C{(date, subject, isReply, messageId, references)}, from an
    L{gateway.interfaces.IMessageInfo} with its header block.
    """
    fields = _threadFields(info.headers or b"")
    subjects = fields["subject"]
    subject, isReply = baseSubject(decodeHeader(subjects[0]) if subjects else "")
    ids = fields["message-id"]
    messageId = (_messageIds(ids[0]) or [None])[0] if ids else None
    references = []
    for value in fields["references"]:
        references.extend(_messageIds(value))
    if not references:
        for value in fields["in-reply-to"]:
            references = _messageIds(value)[:1]
            break
    return (sentTimestamp(info, fields["date"]), subject.lower(), isReply, messageId, tuple(references))


_THREAD_FIELDS = ("date", "in-reply-to", "message-id", "references", "subject")


def _threadFields(block):
    """
    The values (unfolded, stripped) of the fields threading reads, by
    lower-case name: one pass over the header block.
    """
    fields = {name: [] for name in _THREAD_FIELDS}
    for raw in mimeparts.namedFields(block, _THREAD_FIELDS):
        colon = raw.index(b":")
        name = raw[:colon].strip().lower().decode("ascii", "replace")
        value = raw[colon + 1:]
        if value.count(b"\n") > 1:
            value = b"".join(line.rstrip(b"\r") for line in value.split(b"\n"))
        if name in fields:
            fields[name].append(value.strip())
    return fields


class Node:
    """
    A message (or dummy) of a thread with its children.
    """

    def __init__(self, message=None):
        self.message = message
        self.parent = None
        self.children = []

    def addChild(self, child):
        if child.parent is not None:
            child.parent.children.remove(child)
        child.parent = self
        self.children.append(child)

    def isAncestorOf(self, other):
        node = other
        while node is not None:
            if node is self:
                return True
            node = node.parent
        return False

    def sortKey(self):
        """
        Sent date and mailbox order of the message, or of a dummy's first
        child.
        """
        node = self
        while node.message is None and node.children:
            node = node.children[0]
        if node.message is None:
            return (0, 0)
        return (node.message.date, node.message.order)


def _sortSiblings(nodes):
    nodes.sort(key=Node.sortKey)


def orderedSubject(messages):
    """
    ORDEREDSUBJECT: messages grouped by base subject, each group in sent
    date order with its first message the parent of the others; groups in
    the order of their first messages.

    @return: C{list} of root L{Node}s.
    """
    ordered = sorted(messages, key=lambda m: (m.subject, m.date, m.order))
    roots = []
    current = None
    for message in ordered:
        node = Node(message)
        if current is not None and current.message.subject == message.subject:
            current.addChild(node)
        else:
            current = node
            roots.append(node)
    _sortSiblings(roots)
    return roots


def references(messages):
    """
    REFERENCES (RFC 5256 3): threads from Message-ID, References and
    In-Reply-To, then root threads with the same base subject gathered.

    @return: C{list} of root L{Node}s.
    """
    containers = {}
    unique = 0
    ordered = sorted(messages, key=lambda m: m.order)
    for message in ordered:
        # (1) one container per Message-ID; a duplicate counts as none.
        node = containers.get(message.messageId) if message.messageId is not None else None
        if node is None or node.message is not None:
            key = message.messageId
            if key is None or node is not None:
                unique += 1
                key = ("unique", unique)
            node = containers[key] = Node()
        node.message = message
        # (1A) link the references in order.
        previous = None
        for ref in message.references:
            container = containers.get(ref)
            if container is None:
                container = containers[ref] = Node()
            if previous is not None and container.parent is None and container is not previous \
                    and not container.isAncestorOf(previous):
                previous.addChild(container)
            previous = container
        # (1B) the message is a child of its last reference.
        if previous is not None and previous is not node and not node.isAncestorOf(previous):
            previous.addChild(node)
        elif node.parent is not None:
            # No reference, or one that would make a loop: the old link
            # goes all the same (RFC 5256 1.C).
            node.parent.children.remove(node)
            node.parent = None
    # (2) the root set; (3) dummies pruned.
    roots = _prune([node for node in containers.values() if node.parent is None], root=True)
    # (4) siblings in date order (a dummy sorts by its first child).
    _sortTree(roots)
    # (5) roots with the same base subject gathered.
    roots = _gatherSubjects(roots)
    # (6) siblings in date order, throughout.
    _sortTree(roots)
    return roots


def _prune(nodes, root=False):
    """
    Dummies without children dropped; a dummy's children take its place,
    except a dummy with several children at the root.
    """
    result = []
    for node in nodes:
        node.children = _prune(node.children)
        for child in node.children:
            child.parent = node
        if node.message is not None:
            result.append(node)
        elif not node.children:
            continue
        elif root and len(node.children) > 1:
            result.append(node)
        else:
            for child in node.children:
                child.parent = None if root else node.parent
            result.extend(node.children)
    return result


def _subjectOf(node):
    message = node.message if node.message is not None else (
        node.children[0].message if node.children else None)
    return (message.subject, message.isReply) if message is not None else ("", False)


def _gatherSubjects(roots):
    table = {}
    for node in roots:
        subject, isReply = _subjectOf(node)
        if not subject:
            continue
        old = table.get(subject)
        if old is None or (node.message is None and old.message is not None) or (
                old.message is not None and old.message.isReply and node.message is not None
                and not isReply):
            table[subject] = node
    result = []
    for node in roots:
        subject, isReply = _subjectOf(node)
        target = table.get(subject) if subject else None
        if target is None or target is node:
            result.append(node)
            continue
        if target.message is None and node.message is None:
            for child in list(node.children):
                target.addChild(child)
        elif target.message is None:
            target.addChild(node)
        elif node.message is not None and isReply and not target.message.isReply:
            target.addChild(node)
        else:
            dummy = Node()
            position = result.index(target) if target in result else None
            dummy.addChild(target)
            dummy.addChild(node)
            table[subject] = dummy
            if position is not None:
                result[position] = dummy
            else:
                roots[roots.index(target)] = dummy
    return result


def _sortTree(nodes):
    _sortSiblings(nodes)
    for node in nodes:
        _sortTree(node.children)


def formatThreads(roots):
    """
    The THREAD response's thread list for C{roots}: C{(3 6 (4 23)(44 7 96))}.
    """
    return b"".join(b"(" + _members(node) + b")" for node in roots)


def _members(node):
    parts = []
    while True:
        if node.message is not None:
            parts.append(b"%d" % (node.message.number,))
        if len(node.children) == 1 and node.message is not None:
            node = node.children[0]
            continue
        if node.children:
            nested = b"".join(b"(" + _members(child) + b")" for child in node.children)
            parts.append(nested)
        return b" ".join(parts)
