"""Bounded lock waits, and who holds the lock when a wait runs out.

Every session a restore opens sets ``lock_wait_timeout`` (metadata locks:
``LOCK TABLES``, a table read inside an open transaction, DDL) and
``innodb_lock_wait_timeout`` (row locks) to the ``lock_wait_timeout`` option,
so no statement of a restore waits longer than that for another client.

When a wait runs out (error 1205), :func:`holders` says which session holds
the lock, from what the server exposes: ``information_schema.METADATA_LOCK_INFO``
(MariaDB's ``metadata_lock_info`` plugin) or ``performance_schema.metadata_locks``
(MySQL 8, or MariaDB with the performance schema on) name the exact session;
without either, the sessions that can hold one - those with an open
transaction, then any other idle session - are named as candidates.  Each is
described from the process list: id, user, host and statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeAlias

import pymysql

from plakar_mysql.core.credentials import hide_secrets

Connection: TypeAlias = "pymysql.connections.Connection[Any]"

DEFAULT_LOCK_WAIT_TIMEOUT = 30
LOCK_WAIT_TIMEOUT = 1205
_NO_TABLE = (1109, 1146, 1142)  # unknown table (I_S, P_S), access denied: no such source


def bounds_sql(seconds: int) -> str:
    """The statement that bounds a session's lock waits to ``seconds``."""
    return (
        f"SET SESSION lock_wait_timeout = {int(seconds)}, innodb_lock_wait_timeout = {int(seconds)}"
    )


def is_lock_timeout(exc: BaseException) -> bool:
    return (
        isinstance(exc, pymysql.err.MySQLError)
        and bool(exc.args)
        and (exc.args[0] == LOCK_WAIT_TIMEOUT)
    )


def _rows(db: Connection, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with db.cursor() as cursor:
        cursor.execute(sql, tuple(args) or None)
        return list(cursor.fetchall())


def _optional(db: Connection, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]] | None:
    """Rows of a query on a table the server may not have (a plugin, the performance schema)."""
    try:
        return _rows(db, sql, args)
    except pymysql.err.MySQLError as exc:
        if exc.args and exc.args[0] in _NO_TABLE:
            return None
        raise


def _session(row: tuple[Any, ...]) -> str:
    """``session 12 (app@10.0.0.5:4711, Query 3 s: SELECT ...)`` from a process list row."""
    ident, user, host, command, seconds, info = row
    # Another session's statement may set a password (ALTER USER ... IDENTIFIED BY).
    statement = hide_secrets(" ".join(str(info).split()))[:160] if info else "no statement running"
    return f"session {ident} ({user}@{host}, {command} for {seconds} s, {statement})"


def _describe(db: Connection, ids: Iterable[int]) -> list[str]:
    wanted = sorted(set(ids))
    if not wanted:
        return []
    marks = ", ".join(["%s"] * len(wanted))
    rows = _rows(
        db,
        "SELECT ID, USER, HOST, COMMAND, TIME, INFO FROM information_schema.PROCESSLIST"
        f" WHERE ID IN ({marks}) ORDER BY ID",
        wanted,
    )
    return [_session(row) for row in rows]


def _qualified(schema: str, table: str) -> str:
    return f"{schema}.{table}" if table else schema


def _exact(db: Connection, objects: Sequence[tuple[str, str]]) -> list[str] | None:
    """Holders of metadata locks on ``objects`` ((schema, table), table "" for a
    whole schema), as ``object locked by session ...``; None if the server cannot say."""
    me = _rows(db, "SELECT CONNECTION_ID()")[0][0]
    found = _optional(
        db,
        "SELECT THREAD_ID, TABLE_SCHEMA, TABLE_NAME FROM information_schema.METADATA_LOCK_INFO",
    )
    if found is None:
        found = _optional(
            db,
            "SELECT t.PROCESSLIST_ID, l.OBJECT_SCHEMA, l.OBJECT_NAME"
            " FROM performance_schema.metadata_locks l"
            " JOIN performance_schema.threads t ON t.THREAD_ID = l.OWNER_THREAD_ID"
            " WHERE l.LOCK_STATUS = 'GRANTED' AND l.OBJECT_TYPE = 'TABLE'",
        )
        if found is not None and not found and not _p_s_mdl_on(db):
            found = None
    if found is None:
        return None
    wanted = set(objects)
    schemas = {schema for schema, table in objects if not table}
    hits: dict[int, set[str]] = {}
    for thread, schema, table in found:
        if thread is None or thread == me or schema is None:
            continue
        if (schema, table or "") in wanted or (schema in schemas and table):
            hits.setdefault(int(thread), set()).add(_qualified(schema, table or ""))
    lines = []
    for ident in sorted(hits):
        for described in _describe(db, [ident]):
            lines.append(f"{', '.join(sorted(hits[ident]))} locked by {described}")
    return lines


def _p_s_mdl_on(db: Connection) -> bool:
    rows = _optional(
        db,
        "SELECT ENABLED FROM performance_schema.setup_instruments"
        " WHERE NAME = 'wait/lock/metadata/sql/mdl'",
    )
    return bool(rows) and rows is not None and rows[0][0] == "YES"


def _candidates(db: Connection) -> str:
    """Sessions that may hold the lock, when the server cannot say which does."""
    me = _rows(db, "SELECT CONNECTION_ID()")[0][0]
    in_transaction = {
        int(row[0])
        for row in _optional(db, "SELECT trx_mysql_thread_id FROM information_schema.INNODB_TRX")
        or ()
        if row[0] and row[0] != me
    }
    if in_transaction:
        listed = _describe(db, in_transaction)
        return f"sessions with an open transaction: {'; '.join(listed)}"
    idle = [
        int(row[0])
        for row in _rows(
            db,
            "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()"
            " AND COMMAND = 'Sleep' ORDER BY TIME DESC LIMIT 5",
        )
    ]
    listed = _describe(db, idle)
    return f"other sessions: {'; '.join(listed)}" if listed else "no other session is visible"


def holders(db: Connection, objects: Sequence[tuple[str, str]]) -> str:
    """One line naming who holds locks on ``objects`` ((schema, table); table ""
    means any table of the schema).  Never raises: a restore is already failing."""
    try:
        exact = _exact(db, objects)
        if exact:
            return "; ".join(exact)
        guess = _candidates(db)
        how = (
            "the server did not list the holder"
            if exact is not None
            else "the server cannot say which session holds it (load the metadata_lock_info "
            "plugin, or turn the performance schema on, to be told)"
        )
        return f"{how}; {guess}"
    except (pymysql.err.MySQLError, OSError) as exc:
        return f"the lock holder could not be read ({exc.args[-1] if exc.args else exc})"
