"""The checks a drill runs on its restored server, each naming what it found wrong.

Tables are counted and, for a logical snapshot, their files' digests compared
with those the backup recorded (the restore itself, with ``verify=true``, has
dumped each table again and compared it with its file); views are selected
from; routines, triggers and events are looked up; accounts and their grants
compared with ``/server/users.sql``.  A physical snapshot has no inventory of
its own: its tables are checked (``CHECK TABLE``, which reads every page and
fails on a damaged one) and counted.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, TypeAlias

import pymysql

from plakar_mysql.core.server import quote_identifier
from plakar_mysql.drill.report import DatabaseResult

Connection: TypeAlias = "pymysql.connections.Connection[Any]"

SYSTEM_DATABASES = frozenset({"mysql", "information_schema", "performance_schema", "sys"})
_ACCOUNT = "-- Account: "
_GRANTS = "-- Grants for: "
# A quoted string or a hex literal in a grant: a hash (``IDENTIFIED BY PASSWORD
# '*..'``, ``VIA ed25519 USING '..'``, ``AS 0x..``) or anything else the server quotes.
_LITERAL = re.compile(r"'(?:[^'\\]|\\.|'')*'|\b0x[0-9A-Fa-f]+")
_COLUMNS = re.compile(r"\(([^()]*)\)")


def rows(db: Connection, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    with db.cursor() as cursor:
        cursor.execute(sql, args)
        return list(cursor.fetchall())


def _error(exc: pymysql.err.MySQLError) -> str:
    return str(exc.args[-1]) if exc.args else str(exc)


def count_rows(db: Connection, database: str, table: str) -> int | str:
    """The table's rows, or the server's error."""
    name = f"{quote_identifier(database)}.{quote_identifier(table)}"
    try:
        return int(rows(db, f"SELECT COUNT(*) FROM {name}")[0][0])
    except pymysql.err.MySQLError as exc:
        return _error(exc)


#: Seconds a view may take to give its first row: a view of the snapshot may call
#: SLEEP() or read a huge join; the drill asks only that it can be selected from.
VIEW_SECONDS = 60


@contextlib.contextmanager
def _bounded_selects(db: Connection) -> Iterator[None]:
    """Each SELECT of this session capped at :data:`VIEW_SECONDS` meanwhile
    (MariaDB's variable, else MySQL's), then uncapped again for the table checks."""
    try:
        rows(db, f"SET SESSION max_statement_time = {VIEW_SECONDS}")
        variable = "max_statement_time"
    except pymysql.err.MySQLError:
        rows(db, f"SET SESSION max_execution_time = {VIEW_SECONDS * 1000}")
        variable = "max_execution_time"
    try:
        yield
    finally:
        rows(db, f"SET SESSION {variable} = DEFAULT")


def check_views(db: Connection, result: DatabaseResult, views: Iterable[str]) -> None:
    with _bounded_selects(db):
        _check_views(db, result, views)


def _check_views(db: Connection, result: DatabaseResult, views: Iterable[str]) -> None:
    for view in views:
        result.objects += 1
        name = f"{quote_identifier(result.name)}.{quote_identifier(view)}"
        try:
            rows(db, f"SELECT * FROM {name} LIMIT 1")
        except pymysql.err.MySQLError as exc:
            result.problems.append(f"view {view!r} cannot be selected from: {_error(exc)}")


def check_code(
    db: Connection,
    result: DatabaseResult,
    routines: Iterable[str],
    triggers: Iterable[str],
    events: Iterable[str],
) -> None:
    """Every routine (``PROCEDURE name``), trigger and event the snapshot lists exists."""
    database = result.name
    found_routines = {
        f"{kind} {name}"
        for kind, name in rows(
            db,
            "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES "
            "WHERE ROUTINE_SCHEMA = %s",
            (database,),
        )
    }
    found_triggers = {
        name
        for (name,) in rows(
            db,
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s",
            (database,),
        )
    }
    found_events = {
        name
        for (name,) in rows(
            db,
            "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s",
            (database,),
        )
    }
    for what, wanted, found in (
        ("routine", routines, found_routines),
        ("trigger", triggers, found_triggers),
        ("event", events, found_events),
    ):
        for name in wanted:
            result.objects += 1
            if name not in found:
                result.problems.append(f"{what} {name!r} is missing")


def user_databases(db: Connection) -> list[str]:
    return sorted(name for (name,) in rows(db, "SHOW DATABASES") if name not in SYSTEM_DATABASES)


def check_physical_database(db: Connection, result: DatabaseResult) -> None:
    """Every table read whole (``CHECK TABLE``) and counted; views selected from;
    routines, triggers and events counted."""
    database = result.name
    listed = rows(
        db,
        "SELECT TABLE_NAME, TABLE_TYPE, COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0) "
        "FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME",
        (database,),
    )
    views = [name for name, kind, _ in listed if kind == "VIEW"]
    for name, kind, size in listed:
        if kind == "VIEW":
            continue
        result.tables += 1
        result.bytes += int(size)
        label = f"{quote_identifier(database)}.{quote_identifier(name)}"
        try:
            verdicts = rows(db, f"CHECK TABLE {label}")
        except pymysql.err.MySQLError as exc:
            result.problems.append(f"table {name!r} cannot be checked: {_error(exc)}")
            continue
        bad = [str(text) for _t, _op, kind_, text in verdicts if kind_ in ("error", "Error")]
        status = [str(text) for _t, _op, kind_, text in verdicts if kind_ == "status"]
        if bad or (status and status[-1] != "OK"):
            result.problems.append(f"table {name!r} is damaged: {'; '.join(bad or status)}")
            continue
        counted = count_rows(db, database, name)
        if isinstance(counted, str):
            result.problems.append(f"table {name!r} cannot be read: {counted}")
        else:
            result.rows += counted
    check_views(db, result, views)
    for table in ("ROUTINES", "TRIGGERS", "EVENTS"):
        column = {"ROUTINES": "ROUTINE", "TRIGGERS": "TRIGGER", "EVENTS": "EVENT"}[table]
        result.objects += int(
            rows(
                db,
                f"SELECT COUNT(*) FROM information_schema.{table} WHERE {column}_SCHEMA = %s",
                (database,),
            )[0][0]
        )


def _masked(statement: str) -> str:
    """A grant as a message may show it: every literal hidden, so no hash, whatever
    the plugin and however the server writes it (accounts are in backquotes)."""
    return _LITERAL.sub("'***'", statement)


def _normalised(statement: str) -> str:
    """A grant with its column lists sorted: SHOW GRANTS orders them freely."""
    return _COLUMNS.sub(
        lambda m: "(" + ", ".join(sorted(c.strip() for c in m[1].split(","))) + ")", statement
    )


def users_file(text: bytes) -> tuple[list[tuple[str, str, bool]], dict[tuple[str, str], list[str]]]:
    """The accounts of ``/server/users.sql`` and each one's grants."""
    accounts: list[tuple[str, str, bool]] = []
    grants: dict[tuple[str, str], list[str]] = {}
    current: tuple[str, str] | None = None
    for raw in text.decode(errors="replace").splitlines():
        if raw.startswith(_ACCOUNT):
            user, host, role = json.loads(raw[len(_ACCOUNT) :])
            accounts.append((str(user), str(host), bool(role)))
            current = None
        elif raw.startswith(_GRANTS):
            user, host, role = json.loads(raw[len(_GRANTS) :])
            current = (str(user), "" if role else str(host))
            grants.setdefault(current, [])
        elif current is not None and raw.startswith("GRANT ") and raw.rstrip().endswith(";"):
            grants[current].append(raw.rstrip().removesuffix(";"))
    return accounts, grants


def _account_sql(user: str, host: str) -> str:
    quoted = "`" + user.replace("`", "``") + "`"
    return quoted if not host else quoted + "@`" + host.replace("`", "``") + "`"


def check_accounts(
    db: Connection, result: DatabaseResult, text: bytes, kept: set[tuple[str, str]]
) -> None:
    """Every account of the snapshot exists, and holds every grant it held; those the
    throwaway server had of its own (``kept``: the restore leaves them) are only
    looked up."""
    accounts, grants = users_file(text)
    present = {(str(u), str(h)) for u, h in rows(db, "SELECT User, Host FROM mysql.user")}
    for user, host, role in accounts:
        key = (user, "" if role else host)
        result.objects += 1
        if (user, "" if role else host) not in present and (user, host) not in present:
            if user != "PUBLIC":
                result.problems.append(f"account {_account_sql(*key)} is missing")
            continue
        if key in kept or user == "PUBLIC":
            continue
        try:
            have = {
                _normalised(str(g)) for (g,) in rows(db, f"SHOW GRANTS FOR {_account_sql(*key)}")
            }
        except pymysql.err.MySQLError as exc:
            result.problems.append(f"grants of {_account_sql(*key)}: {_error(exc)}")
            continue
        missing = [g for g in grants.get(key, []) if _normalised(g) not in have]
        if missing:
            result.problems.append(
                f"{_account_sql(*key)} lacks {len(missing)} grant(s): {_masked(missing[0])}"
            )
