# -*- test-case-name: tests.test_access -*-
"""
Per-user C{\\Seen} in shared mailboxes: a viewer who is not the owner keeps
their own C{\\Seen} state in the owner's index (table C{userflags}), and the
owner's flags are not changed by it.  Every other flag is shared.

These functions take the owner's L{gateway.store.mailbox.Mailbox} and work
on its index; L{gateway.store.access.SharedMailbox} calls them.
"""

from gateway.store import index

#: The flags kept per user.
PRIVATE = frozenset(["\\Seen"])
SEEN = "\\Seen"


def seenUids(mailbox, user, uids=None):
    """
    The UIDs among C{uids} (or all) that C{user} has seen.
    """
    conn, mailboxId = mailbox._conn, mailbox._id
    if uids is None:
        rows = conn.execute("SELECT uid FROM userflags WHERE mailbox = ? AND user = ?", (mailboxId, user))
        return {row[0] for row in rows}
    if not uids:
        return set()
    rows = conn.execute("SELECT uid FROM userflags WHERE mailbox = ? AND user = ? AND uid BETWEEN ? AND ?",
                        (mailboxId, user, min(uids), max(uids))).fetchall()
    if not rows:
        return set()
    return {row[0] for row in rows} & set(uids)


def personalize(mailbox, user, infos, own=False):
    """
    C{infos} with C{\\Seen} as C{user} has it.

    @param own: C{True} when the infos are the caller's own (made afresh by
        C{messages()}) and may be changed in place; otherwise (shared ones,
        such as C{changesSince}'s, which every session in step gets) a
        changed info is a copy.
    """
    if not infos:
        return infos
    seen = seenUids(mailbox, user, [info.uid for info in infos])
    personal = infos if own else list(infos)
    # One flag set per distinct value, as the store gives them, so that
    # FETCH formats each once; the caller's own infos are changed in place
    # (a copy per message cost a fifth of a viewer's FETCH).
    unseen, seenSets = {}, {}
    for i, info in enumerate(infos):
        flags = info.flags
        if seen and info.uid in seen:
            if SEEN in flags:
                continue
            changed = seenSets.get(flags)
            if changed is None:
                changed = seenSets[flags] = flags | PRIVATE
        else:
            if SEEN not in flags:
                continue  # as the owner has it
            changed = unseen.get(flags)
            if changed is None:
                changed = unseen[flags] = flags - PRIVATE
        if own:
            info.flags = changed
        else:
            personal[i] = info.withFlags(changed)
    return personal


def setSeen(mailbox, user, uids, mode):
    """
    Change C{user}'s C{\\Seen} on C{uids}: C{"+"} set, C{"-"} clear.  A
    change takes a new MODSEQ for the message, so the viewer's other
    sessions (and CONDSTORE clients) learn of it as of any flag change;
    other users' sessions then get an unchanged FETCH FLAGS, which RFC 3501
    allows.

    @return: the UIDs whose state changed.
    """
    conn, mailboxId = mailbox._conn, mailbox._id
    present = {info.uid for info in mailbox.messages(uids, headers=False)}
    with index.transaction(conn):
        before = seenUids(mailbox, user, present)
        if mode == "+":
            changed = present - before
            conn.executemany("INSERT OR IGNORE INTO userflags (mailbox, user, uid, flags) VALUES (?, ?, ?, ?)",
                             [(mailboxId, user, uid, SEEN) for uid in changed])
        else:
            changed = before
            conn.executemany("DELETE FROM userflags WHERE mailbox = ? AND user = ? AND uid = ?",
                             [(mailboxId, user, uid) for uid in changed])
        if changed:
            modseq = index.bumpModSeq(conn, mailboxId)
            conn.executemany("UPDATE messages SET modseq = ? WHERE mailbox = ? AND uid = ?",
                             [(modseq, mailboxId, uid) for uid in changed])
    if changed:
        mailbox._changed()
    return sorted(changed)


def forget(mailbox):
    """
    Remove every user's flags of a mailbox that is being deleted (its id
    may be used again).
    """
    with index.transaction(mailbox._conn):
        mailbox._conn.execute("DELETE FROM userflags WHERE mailbox = ?", (mailbox._id,))


def _columns(conn):
    return [row[1] for row in conn.execute("PRAGMA table_info(messages)")]


def search(mailbox, user, term, limit=None):
    """
    L{gateway.interfaces.IMailbox.search} with C{\\Seen} as C{user} has it:
    the condition runs over the messages with their C{flags} column
    rewritten for the user.
    """
    conn, mailboxId = mailbox._conn, mailbox._id
    condition, params = term.sql()
    columns = ", ".join("m." + c for c in _columns(conn) if c != "flags")
    flags = ("(trim(replace(' ' || m.flags || ' ', ' \\Seen ', ' '))"
             " || CASE WHEN u.uid IS NULL THEN '' ELSE ' \\Seen' END)")
    mailbox._row("id")
    return conn.execute(
        "SELECT uid, modseq FROM (SELECT %s, %s AS flags FROM messages m LEFT JOIN userflags u"
        " ON u.mailbox = m.mailbox AND u.uid = m.uid AND u.user = ? WHERE m.mailbox = ?)"
        " WHERE (%s) ORDER BY uid LIMIT ?" % (columns, flags, condition),
        (user, mailboxId, *params, -1 if limit is None else limit)).fetchall()


def unseenCount(mailbox, user):
    """
    How many messages C{user} has not seen.
    """
    conn, mailboxId = mailbox._conn, mailbox._id
    return conn.execute(
        "SELECT count(*) FROM messages m WHERE m.mailbox = ? AND NOT EXISTS (SELECT 1 FROM userflags u"
        " WHERE u.mailbox = m.mailbox AND u.uid = m.uid AND u.user = ?)", (mailboxId, user)).fetchone()[0]
