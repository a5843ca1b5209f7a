# -*- test-case-name: tests.test_sqlitewal -*-
"""
Putting a SQLite database into write-ahead-log mode when several processes
may open it for the first time at once.

The mode is kept in the database file: once one connection set it, every
later one finds it.  But two connections that make a new database at once
(the two workers' first login of a new account: its index, its Recent
claims; the workers' run state at start-up) each hold the shared lock the
other's change needs, and SQLite breaks that deadlock by answering one of
them C{database is locked} at once, without waiting its busy timeout: 130
of 200 such races here.  Under imaptest that was the first STATUS of a run
failing with C{NO [SERVERBUG]}.  L{useWal} looks first and tries again.
"""

import sqlite3
import time

#: Tries before the error is let through, and the longest pause between
#: two (they double from a millisecond): about a third of a second in all.
ATTEMPTS = 12
LONGEST_PAUSE = 0.05


def _busy(error):
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(error) or "busy" in str(error)


def useWal(conn, sleep=time.sleep):
    """
    Make sure the database of C{conn} is in WAL mode.

    @raise sqlite3.OperationalError: another error, or still locked after
        L{ATTEMPTS} tries.
    """
    for attempt in range(ATTEMPTS):
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if not _busy(e) or attempt == ATTEMPTS - 1:
                raise
        sleep(min(0.001 * 2 ** attempt, LONGEST_PAUSE))
