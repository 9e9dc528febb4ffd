"""Database errors classed as the database classes them: retry, or refuse the rows.

PostgreSQL by SQLSTATE class, as Telegraf's outputs/postgresql does: connection exceptions
(08), insufficient resources (53: disk full, out of memory, too many connections), operator
intervention (57: shutdown, cancel), transaction rollback (40: serialization failure,
deadlock) and system errors (58: I/O) pass with time, so the batch is kept and retried.
Everything else, notably data exceptions (22), integrity violations (23), syntax or access
(42) and program limits (54: an index row over the btree limit), comes back the same however
often it is tried: the rows that cause it are refused and the rest stored.

SQLite by result code: a busy or locked database, a full disk, an I/O error, a read-only
file and running out of memory pass (the same resource classes); a constraint, a value too
big, a type mismatch or an SQL error do not.
"""

from __future__ import annotations

import sqlite3

import msgspec
import psycopg

TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
# lock_not_available: a lock_timeout ran out, which another try may not meet.
TRANSIENT_SQLSTATES = frozenset({"55P03"})

# The `cause` label a refused row is counted under (ingestd_messages_rejected_total).
_CAUSE_BY_SQLSTATE_CLASS = {
    "22": "db_data_exception",
    "23": "db_integrity_violation",
    "42": "db_syntax_or_access",
    "54": "db_program_limit_exceeded",
}
OTHER_DATABASE_CAUSE = "db_refused"  # a permanent error of any other class or code
WRITE_ERROR_CAUSE = "write_error"  # not the database's: a row the driver could not send

_SQLITE_TRANSIENT = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
    }
)
_SQLITE_CAUSES = {
    sqlite3.SQLITE_CONSTRAINT: "db_integrity_violation",
    sqlite3.SQLITE_TOOBIG: "db_program_limit_exceeded",
    sqlite3.SQLITE_MISMATCH: "db_data_exception",
    sqlite3.SQLITE_RANGE: "db_data_exception",
    sqlite3.SQLITE_ERROR: "db_syntax_or_access",
}

CAUSES = frozenset({*_CAUSE_BY_SQLSTATE_CLASS.values(), OTHER_DATABASE_CAUSE, WRITE_ERROR_CAUSE})


class Verdict(msgspec.Struct, frozen=True):
    transient: bool
    cause: str


def classify_postgres(error: BaseException) -> Verdict:
    if isinstance(error, psycopg.Error):
        sqlstate = error.sqlstate
        if sqlstate is None:
            # Raised on the client's side. The connection failed, was lost or closed, or the
            # pool had none to give (PoolTimeout is an OperationalError): transient. Others
            # are about the data (a DataError for U+0000 in text): permanent.
            connection = isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))
            return Verdict(connection, OTHER_DATABASE_CAUSE)
        if sqlstate[:2] in TRANSIENT_SQLSTATE_CLASSES or sqlstate in TRANSIENT_SQLSTATES:
            return Verdict(True, OTHER_DATABASE_CAUSE)
        return Verdict(False, _CAUSE_BY_SQLSTATE_CLASS.get(sqlstate[:2], OTHER_DATABASE_CAUSE))
    return Verdict(False, WRITE_ERROR_CAUSE)


def classify_sqlite(error: BaseException) -> Verdict:
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        if code is None:
            # Raised by the sqlite3 module itself (e.g. a closed connection), not by SQLite.
            return Verdict(False, OTHER_DATABASE_CAUSE)
        primary = code & 0xFF  # extended codes keep the primary code in the low byte
        if primary in _SQLITE_TRANSIENT:
            return Verdict(True, OTHER_DATABASE_CAUSE)
        return Verdict(False, _SQLITE_CAUSES.get(primary, OTHER_DATABASE_CAUSE))
    return Verdict(False, WRITE_ERROR_CAUSE)
