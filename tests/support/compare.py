"""Object-by-object description and comparison of MariaDB databases.

A backup is only proven by restoring it and checking that the result is the
same database.  :func:`describe_database` reads everything that defines a
database into a :class:`DatabaseDescription` - every table's definition, row
count and a digest of all its rows, and the full definition of every view,
routine, trigger and event - and :func:`diff` lists, in words, what differs
between two descriptions.  An empty diff means identical.
:func:`describe_accounts` and :func:`diff_accounts` do the same for the
server's user accounts, roles and grants.

What SHOW CREATE TABLE prints is compared whole, so partitioning, CHECK
constraints, generated and invisible columns, system versioning, foreign keys,
indexes and table options are covered by it; a sequence's definition is its
SHOW CREATE TABLE (``CREATE SEQUENCE ...``) and its state is its one row,
digested like any row and also shown as :attr:`TableDescription.sequence_state`.
Rows are read column by column from information_schema.COLUMNS, so invisible
columns (which ``SELECT *`` leaves out) are digested too.  Objects are looked
up by the exact, case-sensitive name of their database: information_schema
compares names without regard to case, and ``server`` and ``Server`` are two
databases.

The comparison is deliberately exact.  Only these things are normalised away:

* the ``AUTO_INCREMENT=N`` table option, because the counter is not part of
  the data and legitimately changes with a restore;
* the database name where it qualifies an object (`` `src`.`t` ``), when the
  caller passes ``rename={"src": "dst"}``, so that a database restored under
  another name compares equal to its source;
* in SHOW CREATE VIEW, the qualifier of the view's own database, which the
  server prints or not for the same stored view (the stored, fully qualified
  definition is compared as it is);
* the order of the columns in a column privilege of SHOW GRANTS, which the
  server does not keep.

Bookkeeping that every restore necessarily changes is not collected at all:
creation and modification times of routines, triggers and events, the last
execution time and originating server id of events, and table statistics.

Row digests are computed by the server: one SHA-256 per row over an
unambiguous encoding of every column (``N`` for NULL, otherwise ``v`` and the
SHA-256 of the column's value, joined by a separator), summed modulo 2**256 on
the client while the rows are streamed with an unbuffered cursor.  The sum is
independent of row order but counts duplicates, and no table is ever held in
memory.  Hashing each column first (rather than concatenating ``HEX`` or
``QUOTE`` of the values) keeps every intermediate string small: a string
function whose result would exceed ``max_allowed_packet`` returns NULL, which
would make any two large BLOBs look alike.  System-versioned tables are read
``FOR SYSTEM_TIME ALL`` with their row start and end columns, so history must
survive a restore too.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import pymysql.connections
import pymysql.cursors

from plakar_mysql_harness.mariadb import MariaDBServer, quote_identifier

__all__ = [
    "SERVER_ACCOUNT_USERS",
    "AccountDescription",
    "DatabaseDescription",
    "EventDescription",
    "RoutineDescription",
    "TableDescription",
    "TriggerDescription",
    "ViewDescription",
    "describe_accounts",
    "describe_database",
    "describe_server",
    "diff",
    "diff_accounts",
]

Connection: TypeAlias = "pymysql.connections.Connection[pymysql.cursors.Cursor]"
"""The connection type accepted by this module (as made by ``pymysql.connect``)."""

#: Databases that belong to the server, not to the user.
SYSTEM_DATABASES = frozenset({"information_schema", "mysql", "performance_schema", "sys"})

_DIGEST_MODULUS = 2**256
_FETCH_BATCH = 1000

#: AUTO_INCREMENT=N among the table options, which SHOW CREATE TABLE prints on
#: the first line that starts with ")" (column lines are indented).
_AUTO_INCREMENT_OPTION = re.compile(r"^(\).*?) AUTO_INCREMENT=\d+", re.MULTILINE)


@dataclass(frozen=True)
class TableDescription:
    """A base table (or sequence): its definition and a digest of all its rows."""

    name: str
    kind: str
    """``BASE TABLE``, ``SYSTEM VERSIONED`` or ``SEQUENCE`` (information_schema.TABLES)."""
    engine: str | None
    create_statement: str
    """SHOW CREATE TABLE, without the AUTO_INCREMENT=N table option."""
    row_count: int
    """Rows visible now (current rows of a system-versioned table)."""
    digested_rows: int
    """Rows covered by :attr:`digest`: :attr:`row_count` plus history rows."""
    digest: str
    """64 hex digits: sum of per-row SHA-256 modulo 2**256."""
    sequence_state: str | None = None
    """A sequence's one row, ``column=value`` comma-separated (its next value,
    bounds, increment, cache, cycle option and cycle count), so that a lost
    state is named and not only seen as a different digest; None for tables."""


@dataclass(frozen=True)
class ViewDescription:
    """A view's definition and attributes."""

    name: str
    create_statement: str
    """SHOW CREATE VIEW, run with the view's database as the current database,
    without the qualifier `` `db`. `` of the view's own database."""
    definition: str
    """information_schema.VIEWS.VIEW_DEFINITION (fully qualified)."""
    check_option: str
    is_updatable: str
    definer: str
    security_type: str
    algorithm: str
    character_set_client: str
    collation_connection: str


@dataclass(frozen=True)
class RoutineDescription:
    """A stored procedure, function or package and its attributes."""

    name: str
    type: str
    """``PROCEDURE``, ``FUNCTION``, ``PACKAGE`` or ``PACKAGE BODY``."""
    create_statement: str
    """The body text of SHOW CREATE PROCEDURE/FUNCTION/..."""
    parameters: tuple[tuple[int, str | None, str | None, str], ...]
    """(ordinal, mode, name, data type) per parameter; ordinal 0 is a function's result."""
    returns: str | None
    """Declared return type of a function (information_schema.ROUTINES.DTD_IDENTIFIER)."""
    sql_mode: str
    definer: str
    security_type: str
    is_deterministic: str
    sql_data_access: str
    comment: str
    character_set_client: str
    collation_connection: str
    database_collation: str


@dataclass(frozen=True)
class TriggerDescription:
    """A trigger and its attributes."""

    name: str
    table: str
    timing: str
    event: str
    action_order: int
    statement: str
    """information_schema.TRIGGERS.ACTION_STATEMENT (the body)."""
    create_statement: str
    """SHOW CREATE TRIGGER (the whole statement as stored)."""
    definer: str
    sql_mode: str
    character_set_client: str
    collation_connection: str
    database_collation: str


@dataclass(frozen=True)
class EventDescription:
    """A scheduled event: its definition, schedule and state."""

    name: str
    create_statement: str
    definition: str
    event_type: str
    execute_at: str | None
    interval_value: str | None
    interval_field: str | None
    starts: str | None
    ends: str | None
    status: str
    on_completion: str
    definer: str
    sql_mode: str
    time_zone: str
    comment: str
    character_set_client: str
    collation_connection: str
    database_collation: str


@dataclass(frozen=True)
class DatabaseDescription:
    """Everything that defines one database, object by object."""

    name: str
    """The database's name, after ``rename``."""
    default_character_set: str
    default_collation: str
    comment: str
    tables: Mapping[str, TableDescription] = field(default_factory=dict)
    views: Mapping[str, ViewDescription] = field(default_factory=dict)
    routines: Mapping[tuple[str, str], RoutineDescription] = field(default_factory=dict)
    """Keyed by (type, name), e.g. ``("PROCEDURE", "film_in_stock")``."""
    triggers: Mapping[str, TriggerDescription] = field(default_factory=dict)
    events: Mapping[str, EventDescription] = field(default_factory=dict)


# -- reading -------------------------------------------------------------------------


def _text(value: Any) -> str:
    """A text column as str (the server may send binary-collated text as bytes)."""
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="surrogateescape")
    return str(value)


def _optional_text(value: Any) -> str | None:
    """Like :func:`_text`, but keeps NULL as None."""
    return None if value is None else _text(value)


class _Renamer:
    """Rewrites `` `src`. `` qualifiers to `` `dst`. `` for each entry of ``rename``.

    Only a quoted name followed by a dot is rewritten: that is how the server
    qualifies objects in the text it generates, and it leaves a column or a
    string that happens to spell the database name alone.
    """

    def __init__(self, rename: Mapping[str, str] | None) -> None:
        self._pairs = [
            (quote_identifier(src) + ".", quote_identifier(dst) + ".")
            for src, dst in (rename or {}).items()
            if src != dst
        ]

    def __call__(self, text: str) -> str:
        for src, dst in self._pairs:
            text = text.replace(src, dst)
        return text


@contextmanager
def _connection(source: Connection | MariaDBServer) -> Iterator[Connection]:
    """Yield a connection: the caller's own, or a new one to a server that is closed after."""
    if isinstance(source, MariaDBServer):
        conn = source.connect()
        try:
            yield conn
        finally:
            conn.close()
    else:
        yield source


@contextmanager
def _describing_session(conn: Connection, database: str) -> Iterator[None]:
    """Make the session's output deterministic while describing ``database``.

    UTC makes TIMESTAMP values independent of the server's time zone, an empty
    sql_mode keeps ANSI_QUOTES and friends out of SHOW CREATE output, and the
    described database is made current so that SHOW CREATE VIEW does not
    qualify the view's own objects.  The previous settings and current
    database are restored afterwards (a connection that had no current
    database keeps the described one: the protocol cannot unselect it).
    """
    with conn.cursor() as cur:
        cur.execute(
            "SELECT @@session.time_zone, @@session.sql_mode, "
            "@@session.sql_quote_show_create, DATABASE()"
        )
        saved = cur.fetchone()
        assert saved is not None
        cur.execute("SET SESSION time_zone = '+00:00', sql_mode = '', sql_quote_show_create = 1")
    conn.select_db(database)
    try:
        yield
    finally:
        with conn.cursor() as cur:
            cur.execute(
                "SET SESSION time_zone = %s, sql_mode = %s, sql_quote_show_create = %s",
                saved[:3],
            )
        if saved[3] is not None:
            conn.select_db(saved[3])


def _rows(conn: Connection, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    """Run a (small) query and return its rows."""
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return [tuple(row) for row in cur.fetchall()]


def _column_expression(name: str, data_type: str) -> str:
    """SQL encoding one column of a row as ``N`` (NULL) or ``v`` + SHA-256 of its value.

    ``SHA2`` hashes a string's own bytes, in the column's character set (no
    conversion, whatever the connection's), and the exact text or bytes of
    numbers, temporal values and the special types (BIT, UUID, INET6,
    geometry); it does so however large the value is, where ``CAST``,
    ``HEX`` or ``CONCAT`` would return NULL beyond ``max_allowed_packet``.
    FLOAT is first widened to DOUBLE, which is exact, because FLOAT's text
    form has only six significant digits; DOUBLE's text form is the shortest
    that round-trips.
    """
    column = quote_identifier(name)
    value = f"CAST({column} AS DOUBLE)" if data_type.lower() == "float" else column
    return f"IF({column} IS NULL, 'N', CONCAT('v', SHA2({value}, 256)))"


def _digest_table(
    conn: Connection,
    database: str,
    table: str,
    columns: list[tuple[str, str]],
    *,
    versioned: bool,
    implicit_period: bool,
) -> tuple[int, str]:
    """Stream per-row SHA-256 digests of ``table``; return (rows, combined digest).

    ``columns`` are (name, data type) pairs.  A system-versioned table is read
    with its history; ``implicit_period`` adds the ``row_start`` and
    ``row_end`` columns that implicit system versioning creates but
    information_schema.COLUMNS does not list.
    """
    if implicit_period:
        columns = [*columns, ("row_start", "timestamp"), ("row_end", "timestamp")]
    # CONCAT, not CONCAT_WS: should any part be NULL, the row digest is NULL
    # and we fail loudly instead of silently skipping a column.
    row_expression = "CONCAT({})".format(
        ", '|', ".join(_column_expression(name, data_type) for name, data_type in columns)
    )
    sql = (
        f"SELECT SHA2({row_expression}, 256) FROM "
        f"{quote_identifier(database)}.{quote_identifier(table)}"
    )
    if versioned:
        sql += " FOR SYSTEM_TIME ALL"
    total = 0
    count = 0
    with conn.cursor(pymysql.cursors.SSCursor) as cur:
        cur.execute(sql)
        while batch := cur.fetchmany(_FETCH_BATCH):
            for (row_digest,) in batch:
                if row_digest is None:
                    raise RuntimeError(
                        f"cannot digest a row of {quote_identifier(database)}."
                        f"{quote_identifier(table)}: the server returned NULL"
                    )
                total = (total + int(_text(row_digest), 16)) % _DIGEST_MODULUS
            count += len(batch)
    return count, f"{total:064x}"


def _describe_tables(
    conn: Connection, database: str, renamer: _Renamer
) -> dict[str, TableDescription]:
    """Describe every base table, system-versioned table and sequence."""
    columns: dict[str, list[tuple[str, str]]] = {}
    explicit_period: set[str] = set()
    for table, column, data_type, generation in _rows(
        conn,
        "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, GENERATION_EXPRESSION "
        "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s COLLATE utf8mb4_bin "
        "ORDER BY TABLE_NAME, ORDINAL_POSITION",
        (database,),
    ):
        columns.setdefault(_text(table), []).append((_text(column), _text(data_type)))
        if _text(generation) == "ROW START":
            explicit_period.add(_text(table))
    tables: dict[str, TableDescription] = {}
    for name, kind, engine in _rows(
        conn,
        "SELECT TABLE_NAME, TABLE_TYPE, ENGINE FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = %s COLLATE utf8mb4_bin "
        "AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED', 'SEQUENCE') ORDER BY TABLE_NAME",
        (database,),
    ):
        table = _text(name)
        qualified = f"{quote_identifier(database)}.{quote_identifier(table)}"
        create = _text(_rows(conn, f"SHOW CREATE TABLE {qualified}")[0][1])
        create = _AUTO_INCREMENT_OPTION.sub(r"\1", create, count=1)
        versioned = _text(kind) == "SYSTEM VERSIONED"
        digested, digest = _digest_table(
            conn,
            database,
            table,
            columns.get(table, []),
            versioned=versioned,
            implicit_period=versioned and table not in explicit_period,
        )
        if versioned:
            row_count = int(_rows(conn, f"SELECT COUNT(*) FROM {qualified}")[0][0])
        else:
            row_count = digested
        tables[table] = TableDescription(
            name=table,
            kind=_text(kind),
            engine=_optional_text(engine),
            create_statement=renamer(create),
            row_count=row_count,
            digested_rows=digested,
            digest=digest,
            sequence_state=_sequence_state(conn, qualified) if _text(kind) == "SEQUENCE" else None,
        )
    return tables


def _sequence_state(conn: Connection, qualified: str) -> str:
    """The row of a sequence as ``column=value, ...`` (reading it does not advance it)."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {qualified}")
        row = cur.fetchone()
        names = [column[0] for column in cur.description or ()]
    assert row is not None, f"sequence {qualified} has no row"
    return ", ".join(f"{name}={_text(value)}" for name, value in zip(names, row, strict=True))


def _describe_views(
    conn: Connection, database: str, renamer: _Renamer
) -> dict[str, ViewDescription]:
    """Describe every view."""
    views: dict[str, ViewDescription] = {}
    for row in _rows(
        conn,
        "SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, IS_UPDATABLE, DEFINER, "
        "SECURITY_TYPE, ALGORITHM, CHARACTER_SET_CLIENT, COLLATION_CONNECTION "
        "FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s COLLATE utf8mb4_bin "
        "ORDER BY TABLE_NAME",
        (database,),
    ):
        name = _text(row[0])
        create = _text(
            _rows(
                conn,
                f"SHOW CREATE VIEW {quote_identifier(database)}.{quote_identifier(name)}",
            )[0][1]
        )
        # SHOW CREATE VIEW qualifies column references with the view's own
        # database or not depending on how the view was first written and on
        # whether its definer existed then (two servers holding the same
        # stored definition print it both ways), so that qualifier is dropped
        # here; `definition` keeps the stored, fully qualified text exact.
        create = create.replace(quote_identifier(database) + ".", "")
        views[name] = ViewDescription(
            name=name,
            create_statement=renamer(create),
            definition=renamer(_text(row[1])),
            check_option=_text(row[2]),
            is_updatable=_text(row[3]),
            definer=_text(row[4]),
            security_type=_text(row[5]),
            algorithm=_text(row[6]),
            character_set_client=_text(row[7]),
            collation_connection=_text(row[8]),
        )
    return views


def _describe_routines(
    conn: Connection, database: str, renamer: _Renamer
) -> dict[tuple[str, str], RoutineDescription]:
    """Describe every procedure, function and package."""
    parameters: dict[tuple[str, str], list[tuple[int, str | None, str | None, str]]] = {}
    for rtype, rname, ordinal, mode, pname, dtd in _rows(
        conn,
        "SELECT ROUTINE_TYPE, SPECIFIC_NAME, ORDINAL_POSITION, PARAMETER_MODE, "
        "PARAMETER_NAME, DTD_IDENTIFIER FROM information_schema.PARAMETERS "
        "WHERE SPECIFIC_SCHEMA = %s COLLATE utf8mb4_bin "
        "ORDER BY ROUTINE_TYPE, SPECIFIC_NAME, ORDINAL_POSITION",
        (database,),
    ):
        parameters.setdefault((_text(rtype), _text(rname)), []).append(
            (int(ordinal), _optional_text(mode), _optional_text(pname), _text(dtd))
        )
    routines: dict[tuple[str, str], RoutineDescription] = {}
    for row in _rows(
        conn,
        "SELECT ROUTINE_TYPE, ROUTINE_NAME, DTD_IDENTIFIER, SQL_MODE, DEFINER, "
        "SECURITY_TYPE, IS_DETERMINISTIC, SQL_DATA_ACCESS, ROUTINE_COMMENT, "
        "CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DATABASE_COLLATION "
        "FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s COLLATE utf8mb4_bin "
        "ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
        (database,),
    ):
        rtype, name = _text(row[0]), _text(row[1])
        shown = _rows(
            conn,
            f"SHOW CREATE {rtype} {quote_identifier(database)}.{quote_identifier(name)}",
        )[0]
        # (Name, sql_mode, Create <type>, character_set_client, ...)
        create = _text(shown[2])
        routines[(rtype, name)] = RoutineDescription(
            name=name,
            type=rtype,
            create_statement=renamer(create),
            parameters=tuple(parameters.get((rtype, name), [])),
            returns=_optional_text(row[2]) if rtype == "FUNCTION" else None,
            sql_mode=_text(row[3]),
            definer=_text(row[4]),
            security_type=_text(row[5]),
            is_deterministic=_text(row[6]),
            sql_data_access=_text(row[7]),
            comment=_text(row[8]),
            character_set_client=_text(row[9]),
            collation_connection=_text(row[10]),
            database_collation=_text(row[11]),
        )
    return routines


def _describe_triggers(
    conn: Connection, database: str, renamer: _Renamer
) -> dict[str, TriggerDescription]:
    """Describe every trigger."""
    triggers: dict[str, TriggerDescription] = {}
    for row in _rows(
        conn,
        "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, "
        "ACTION_ORDER, ACTION_STATEMENT, DEFINER, SQL_MODE, CHARACTER_SET_CLIENT, "
        "COLLATION_CONNECTION, DATABASE_COLLATION FROM information_schema.TRIGGERS "
        "WHERE TRIGGER_SCHEMA = %s COLLATE utf8mb4_bin ORDER BY TRIGGER_NAME",
        (database,),
    ):
        name = _text(row[0])
        create = _text(
            _rows(
                conn,
                f"SHOW CREATE TRIGGER {quote_identifier(database)}.{quote_identifier(name)}",
            )[0][2]
        )
        triggers[name] = TriggerDescription(
            name=name,
            table=_text(row[1]),
            timing=_text(row[2]),
            event=_text(row[3]),
            action_order=int(row[4]),
            statement=renamer(_text(row[5])),
            create_statement=renamer(create),
            definer=_text(row[6]),
            sql_mode=_text(row[7]),
            character_set_client=_text(row[8]),
            collation_connection=_text(row[9]),
            database_collation=_text(row[10]),
        )
    return triggers


def _describe_events(
    conn: Connection, database: str, renamer: _Renamer
) -> dict[str, EventDescription]:
    """Describe every event."""
    events: dict[str, EventDescription] = {}
    for row in _rows(
        conn,
        "SELECT EVENT_NAME, EVENT_DEFINITION, EVENT_TYPE, EXECUTE_AT, INTERVAL_VALUE, "
        "INTERVAL_FIELD, STARTS, ENDS, STATUS, ON_COMPLETION, DEFINER, SQL_MODE, TIME_ZONE, "
        "EVENT_COMMENT, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DATABASE_COLLATION "
        "FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s COLLATE utf8mb4_bin "
        "ORDER BY EVENT_NAME",
        (database,),
    ):
        name = _text(row[0])
        create = _text(
            _rows(
                conn,
                f"SHOW CREATE EVENT {quote_identifier(database)}.{quote_identifier(name)}",
            )[0][3]
        )
        events[name] = EventDescription(
            name=name,
            create_statement=renamer(create),
            definition=renamer(_text(row[1])),
            event_type=_text(row[2]),
            execute_at=_optional_text(row[3]),
            interval_value=_optional_text(row[4]),
            interval_field=_optional_text(row[5]),
            starts=_optional_text(row[6]),
            ends=_optional_text(row[7]),
            status=_text(row[8]),
            on_completion=_text(row[9]),
            definer=_text(row[10]),
            sql_mode=_text(row[11]),
            time_zone=_text(row[12]),
            comment=_text(row[13]),
            character_set_client=_text(row[14]),
            collation_connection=_text(row[15]),
            database_collation=_text(row[16]),
        )
    return events


def _describe(
    conn: Connection, database: str, rename: Mapping[str, str] | None
) -> DatabaseDescription:
    """Describe ``database`` on an open connection (see :func:`describe_database`)."""
    schema = _rows(
        conn,
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME, SCHEMA_COMMENT "
        "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s COLLATE utf8mb4_bin",
        (database,),
    )
    if not schema:
        raise LookupError(f"database {quote_identifier(database)} does not exist")
    renamer = _Renamer(rename)
    with _describing_session(conn, database):
        return DatabaseDescription(
            name=(rename or {}).get(database, database),
            default_character_set=_text(schema[0][0]),
            default_collation=_text(schema[0][1]),
            comment=_text(schema[0][2]),
            tables=_describe_tables(conn, database, renamer),
            views=_describe_views(conn, database, renamer),
            routines=_describe_routines(conn, database, renamer),
            triggers=_describe_triggers(conn, database, renamer),
            events=_describe_events(conn, database, renamer),
        )


def describe_database(
    conn_or_server: Connection | MariaDBServer,
    database: str,
    *,
    rename: Mapping[str, str] | None = None,
) -> DatabaseDescription:
    """Describe every object of ``database``, exactly, for comparison with :func:`diff`.

    ``conn_or_server`` is an open utf8mb4 PyMySQL connection (its session
    settings are restored afterwards) or a :class:`MariaDBServer` (a connection
    is opened and closed).  ``rename`` maps database names to the names they
    should have in the description, so that a description of ``src`` with
    ``rename={"src": "dst"}`` equals one of a faithful restore of ``src`` as
    ``dst``; it also applies to cross-database references.  Raises
    ``LookupError`` if the database does not exist.
    """
    with _connection(conn_or_server) as conn:
        return _describe(conn, database, rename)


def describe_server(
    conn_or_server: Connection | MariaDBServer,
    databases: Iterable[str] | None = None,
    *,
    rename: Mapping[str, str] | None = None,
) -> dict[str, DatabaseDescription]:
    """Describe several databases, keyed by their name after ``rename``.

    ``databases`` defaults to every database but the server's own
    (information_schema, mysql, performance_schema, sys).
    """
    with _connection(conn_or_server) as conn:
        if databases is None:
            databases = [
                _text(name)
                for (name,) in _rows(conn, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
                if _text(name) not in SYSTEM_DATABASES
            ]
        result: dict[str, DatabaseDescription] = {}
        for database in sorted(databases):
            description = _describe(conn, database, rename)
            result[description.name] = description
        return result


# -- accounts ---------------------------------------------------------------------------

#: Users every server is installed with (``root`` holds the test server's own
#: password, ``mariadb.sys`` owns the system views): not part of what a backup
#: of accounts must bring over, and never equal between two test servers.
SERVER_ACCOUNT_USERS = frozenset(
    {"root", "mariadb.sys", "mysql.sys", "mysql.session", "mysql.infoschema"}
)


@dataclass(frozen=True)
class AccountDescription:
    """A user account or a role: how it is created and every privilege it holds."""

    name: str
    """``'user'@'host'`` for a user, ``'role'`` for a role, ``PUBLIC`` for PUBLIC."""
    is_role: bool
    create_statement: str | None
    """SHOW CREATE USER: authentication (password hash), TLS requirements,
    resource limits, password expiry, lock; None for a role."""
    grants: tuple[str, ...]
    """SHOW GRANTS FOR the account, sorted: global, database, table, column,
    routine and proxy privileges, the roles it holds (WITH ADMIN OPTION) and
    its default role."""
    default_role: str
    """mysql.user.default_role (empty when none); on MySQL, the default roles of
    mysql.default_roles, sorted and joined by commas."""


#: A parenthesised list of quoted column names in a grant: ``(`a`, `b``c`)``.
_GRANT_COLUMNS = re.compile(r"\((`(?:[^`]|``)*`(?:, `(?:[^`]|``)*`)*)\)")
_QUOTED_NAME = re.compile(r"`(?:[^`]|``)*`")


def _normalise_grant(grant: str) -> str:
    """Sort the columns of each column privilege: SHOW GRANTS lists them in no fixed order."""
    return _GRANT_COLUMNS.sub(
        lambda m: "(" + ", ".join(sorted(_QUOTED_NAME.findall(m[1]))) + ")", grant
    )


def _string_literal(value: str) -> str:
    """``value`` as an SQL string literal (the session's sql_mode is empty)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _describe_accounts(
    conn: Connection, include_server_accounts: bool
) -> dict[str, AccountDescription]:
    """Describe the accounts on an open connection whose sql_mode is empty.

    MySQL has no ``is_role`` (a role is an account, described as one), keeps
    default roles in ``mysql.default_roles`` and prints password hashes as
    bytes unless asked for hex."""
    columns = {str(d[0]).lower() for d in _describe_columns(conn, "mysql.user")}
    if "is_role" not in columns:
        return _describe_mysql_accounts(conn, include_server_accounts)
    accounts: dict[str, AccountDescription] = {}
    for row in _rows(conn, "SELECT User, Host, is_role, default_role FROM mysql.user"):
        user, host, role = _text(row[0]), _text(row[1]), _text(row[2]) == "Y"
        if user in SERVER_ACCOUNT_USERS and not include_server_accounts:
            continue
        if not role:
            name = f"{_string_literal(user)}@{_string_literal(host)}"
        elif user == "PUBLIC":
            name = "PUBLIC"
        else:
            name = _string_literal(user)
        create = None if role else _text(_rows(conn, f"SHOW CREATE USER {name}")[0][0])
        grants = tuple(
            sorted(
                _normalise_grant(_text(grant))
                for (grant,) in _rows(conn, f"SHOW GRANTS FOR {name}")
            )
        )
        accounts[name] = AccountDescription(
            name=name,
            is_role=role,
            create_statement=create,
            grants=grants,
            default_role=_text(row[3]),
        )
    return accounts


def describe_accounts(
    conn_or_server: Connection | MariaDBServer, *, include_server_accounts: bool = False
) -> dict[str, AccountDescription]:
    """Describe every user account, role and the PUBLIC grants of a server, by name.

    The accounts the server was installed with (:data:`SERVER_ACCOUNT_USERS`)
    are left out unless ``include_server_accounts``.  Grants are what SHOW
    GRANTS prints, so they name databases, tables, columns and routines as
    they are (no ``rename``).  The session's sql_mode is emptied while
    describing (SHOW GRANTS quotes names with double quotes under
    ANSI_QUOTES) and restored after.
    """
    with _connection(conn_or_server) as conn:
        saved = _rows(conn, "SELECT @@session.sql_mode")[0][0]
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = ''")
        try:
            return _describe_accounts(conn, include_server_accounts)
        finally:
            with conn.cursor() as cur:
                cur.execute("SET SESSION sql_mode = %s", (saved,))


# -- comparing --------------------------------------------------------------------------

_MAX_DIFF_LINES = 30


def _show(value: Any) -> str:
    """A short one-line rendering of a field value for a difference message."""
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _show_pair(first: Any, second: Any) -> str:
    """Render two differing values; long strings are cut around the first difference."""
    if isinstance(first, str) and isinstance(second, str) and max(len(first), len(second)) > 100:
        start = 0
        while start < min(len(first), len(second)) and first[start] == second[start]:
            start += 1
        start = max(0, start - 40)
        prefix = "..." if start else ""
        return (
            f"{_show(prefix + first[start : start + 100])} != "
            f"{_show(prefix + second[start : start + 100])} (from character {start})"
        )
    return f"{_show(first)} != {_show(second)}"


def _field_difference(label: str, name: str, first: Any, second: Any) -> str:
    """Describe how one field differs; multi-line text gets a unified diff."""
    if isinstance(first, str) and isinstance(second, str) and ("\n" in first or "\n" in second):
        lines = list(
            difflib.unified_diff(
                first.splitlines(), second.splitlines(), "first", "second", lineterm="", n=1
            )
        )
        if len(lines) > _MAX_DIFF_LINES:
            lines = [*lines[:_MAX_DIFF_LINES], f"... ({len(lines) - _MAX_DIFF_LINES} more lines)"]
        return f"{label}: {name} differs:\n  " + "\n  ".join(lines)
    return f"{label}: {name} differs: {_show_pair(first, second)}"


def _diff_objects(label: str, first: Any, second: Any) -> list[str]:
    """Compare two descriptions of the same object field by field."""
    differences: list[str] = []
    if isinstance(first, TableDescription) and isinstance(second, TableDescription):
        if first.digest != second.digest or first.digested_rows != second.digested_rows:
            differences.append(
                f"{label}: rows differ ({first.digested_rows} rows, digest "
                f"{first.digest[:16]}... != {second.digested_rows} rows, digest "
                f"{second.digest[:16]}...)"
            )
        skip = {"digest", "digested_rows"}
    else:
        skip = set()
    for item in dataclasses.fields(first):
        if item.name in skip:
            continue
        a, b = getattr(first, item.name), getattr(second, item.name)
        if a != b:
            differences.append(_field_difference(label, item.name, a, b))
    return differences


def _diff_collection(kind: str, first: Mapping[Any, Any], second: Mapping[Any, Any]) -> list[str]:
    """Compare two collections of objects of one kind, keyed by name."""

    def label(key: Any) -> str:
        if isinstance(key, tuple):
            return f"{key[0].lower()} {quote_identifier(key[1])}"
        return f"{kind} {quote_identifier(key)}"

    differences: list[str] = []
    for key in sorted(first.keys() | second.keys(), key=repr):
        if key not in second:
            differences.append(f"{label(key)}: only in the first database")
        elif key not in first:
            differences.append(f"{label(key)}: only in the second database")
        else:
            differences.extend(_diff_objects(label(key), first[key], second[key]))
    return differences


def diff(a: DatabaseDescription, b: DatabaseDescription) -> list[str]:
    """List the differences between two descriptions, in words; empty means identical.

    Each message starts with the object it concerns (``table `actor`: ...``),
    so a test can both show it and check which objects differ.
    """
    differences: list[str] = []
    for name in ("name", "default_character_set", "default_collation", "comment"):
        first, second = getattr(a, name), getattr(b, name)
        if first != second:
            differences.append(f"database: {name} differs: {_show_pair(first, second)}")
    differences += _diff_collection("table", a.tables, b.tables)
    differences += _diff_collection("view", a.views, b.views)
    differences += _diff_collection("routine", a.routines, b.routines)
    differences += _diff_collection("trigger", a.triggers, b.triggers)
    differences += _diff_collection("event", a.events, b.events)
    return differences


def diff_accounts(
    a: Mapping[str, AccountDescription], b: Mapping[str, AccountDescription]
) -> list[str]:
    """List the differences between two :func:`describe_accounts`; empty means identical.

    Each message starts with the account it concerns (``account 'app'@'%': ...``).
    """
    differences: list[str] = []
    for name in sorted(a.keys() | b.keys()):
        label = f"account {name}"
        if name not in b:
            differences.append(f"{label}: only in the first server")
        elif name not in a:
            differences.append(f"{label}: only in the second server")
        else:
            first, second = a[name], b[name]
            for item in dataclasses.fields(first):
                x, y = getattr(first, item.name), getattr(second, item.name)
                if item.name == "grants" and x != y:
                    lost, gained = sorted(set(x) - set(y)), sorted(set(y) - set(x))
                    differences.extend(f"{label}: grant only in the first: {g}" for g in lost)
                    differences.extend(f"{label}: grant only in the second: {g}" for g in gained)
                elif x != y:
                    differences.append(_field_difference(label, item.name, x, y))
    return differences


def _describe_columns(conn: Connection, table: str) -> list[Any]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {table} LIMIT 0")
        return list(cur.description or ())


def _describe_mysql_accounts(
    conn: Connection, include_server_accounts: bool
) -> dict[str, AccountDescription]:
    """:func:`_describe_accounts` on MySQL: every account (roles included) by
    ``'user'@'host'``, its hash in hex, its default roles from mysql.default_roles."""
    with conn.cursor() as cur:
        cur.execute("SET SESSION print_identified_with_as_hex = ON")
    defaults: dict[tuple[str, str], list[str]] = {}
    for user, host, role, role_host in _rows(conn, "SELECT * FROM mysql.default_roles"):
        defaults.setdefault((_text(user), _text(host)), []).append(
            f"`{_text(role)}`@`{_text(role_host)}`"
        )
    accounts: dict[str, AccountDescription] = {}
    for row in _rows(conn, "SELECT User, Host FROM mysql.user"):
        user, host = _text(row[0]), _text(row[1])
        if user in SERVER_ACCOUNT_USERS and not include_server_accounts:
            continue
        name = f"{_string_literal(user)}@{_string_literal(host)}"
        create = _text(_rows(conn, f"SHOW CREATE USER {name}")[0][0])
        grants = tuple(
            sorted(
                _normalise_grant(_text(grant))
                for (grant,) in _rows(conn, f"SHOW GRANTS FOR {name}")
            )
        )
        accounts[name] = AccountDescription(
            name=name,
            is_role=False,
            create_statement=create,
            grants=grants,
            default_role=",".join(sorted(defaults.get((user, host), []))),
        )
    return accounts
