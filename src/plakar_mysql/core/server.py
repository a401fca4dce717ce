"""Ask the server what a dump tool cannot tell: flavour, version, databases, tables.

A query through a driver is simpler and safer here than parsing a tool's
output: values come back typed and identifiers never need quoting by hand,
because every name travels as a bound parameter.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pymysql
import pymysql.connections
import pymysql.cursors

from plakar_mysql.core.errors import PlakarMySQLError
from plakar_mysql.core.flavour import Flavour, detect
from plakar_mysql.core.grants import consistent_point_lacking, session_grants
from plakar_mysql.core.options import Connection

SYSTEM_DATABASES = frozenset({"information_schema", "performance_schema", "sys", "mysql"})
_BAD_CREDENTIALS = {1045, 1698}
_NO_DATABASE_ACCESS = 1044
_UNKNOWN_DATABASE = 1049
_SERVER_LOST = 2013


class ServerError(PlakarMySQLError, RuntimeError):
    """The server refused or could not be reached; one line for the user."""


def error_text(exc: pymysql.err.MySQLError) -> str:
    """A driver error as words: its ``str`` is the tuple ``(1044, "Access denied …")``."""
    if len(exc.args) >= 2 and isinstance(exc.args[0], int):
        return f"{' '.join(str(exc.args[1]).split())} (server error {exc.args[0]})"
    return " ".join(str(exc).split()) or type(exc).__name__


@contextlib.contextmanager
def server_errors(address: str) -> Iterator[None]:
    """Turn a driver error raised inside the block into one line naming the server."""
    try:
        yield
    except pymysql.err.MySQLError as exc:
        raise ServerError(f"{address}: {error_text(exc)}") from None


@dataclass(frozen=True)
class ServerInfo:
    flavour: Flavour
    version: str
    version_comment: str
    character_set: str
    collation: str
    log_bin: bool
    gtid: str
    max_allowed_packet: int
    read_only: bool


@dataclass(frozen=True)
class TableInfo:
    name: str
    kind: str  # "BASE TABLE", "VIEW", "SEQUENCE", "SYSTEM VERSIONED"
    engine: str | None
    rows_estimate: int | None
    data_bytes: int | None


@dataclass(frozen=True)
class DatabaseInfo:
    name: str
    character_set: str
    collation: str
    tables: tuple[TableInfo, ...]


_NO_VERIFY = (None, False, 0, "0", "none", "false", "no")


class _Connection(pymysql.connections.Connection):
    """PyMySQL's connection, without the system's CA certificates where nothing
    is verified.

    For a TLS session that checks no certificate (``ssl_mode`` ``preferred``,
    the default, or ``required`` without ``ssl_ca``), PyMySQL still builds its
    context with :func:`ssl.create_default_context`, which loads every CA
    certificate of the system: measured, 2 MiB of resident memory and tens of
    milliseconds per connection, for a store nothing reads.  Any context that
    verifies, or carries a client certificate or ciphers, is PyMySQL's own."""

    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
        if isinstance(sslp, dict) and not (sslp.keys() & {"ca", "capath", "cert", "cipher"}):
            mode = sslp.get("verify_mode")
            if (mode.lower() if isinstance(mode, str) else mode) in _NO_VERIFY:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                return ctx
        made: ssl.SSLContext = super()._create_ssl_ctx(sslp)  # type: ignore[misc]
        return made


def _ssl_args(conn: Connection) -> dict[str, Any]:
    if conn.ssl_mode == "disabled":
        return {"ssl_disabled": True}
    args: dict[str, Any] = {}
    if conn.ssl_ca:
        args["ssl_ca"] = conn.ssl_ca
    if conn.ssl_cert:
        args["ssl_cert"] = conn.ssl_cert
    if conn.ssl_key:
        args["ssl_key"] = conn.ssl_key
    if conn.ssl_mode in ("verify_ca", "verify_identity"):
        args["ssl_verify_cert"] = True
        args["ssl_verify_identity"] = conn.ssl_mode == "verify_identity"
    elif conn.ssl_mode == "required" and not args:
        args["ssl"] = {"check_hostname": False, "verify_mode": 0}
    return args


def connect(conn: Connection, database: str | None = None) -> pymysql.connections.Connection[Any]:
    """Open a connection; turn the driver's errors into one line that names the cause."""
    kwargs: dict[str, Any] = {
        "user": conn.user,
        "password": conn.password or "",
        "database": database,
        "connect_timeout": conn.connect_timeout,
        # The driver's connect_timeout covers only the TCP connection: a server that
        # accepts and never greets would hang the handshake.  Bound it too, and lift
        # the bound once connected (queries may legitimately take long).
        "read_timeout": conn.connect_timeout,
        "write_timeout": conn.connect_timeout,
        "charset": "utf8mb4",
        "autocommit": True,
        **_ssl_args(conn),
    }
    if conn.socket:
        kwargs["unix_socket"] = conn.socket
    else:
        kwargs["host"], kwargs["port"] = conn.host, conn.port
    if conn.defaults_file:
        kwargs["read_default_file"] = conn.defaults_file
        if conn.password is None:
            del kwargs["password"]
    try:
        db = _Connection(**kwargs)
        db._read_timeout = db._write_timeout = None  # type: ignore[attr-defined]
        return db
    except pymysql.err.OperationalError as exc:
        code, message = (*exc.args, None, "")[:2]
        who = f" as {conn.user}" if conn.user else ""
        if code in _BAD_CREDENTIALS:
            raise ServerError(
                f"cannot connect to {conn.address}{who}: access denied "
                f"(wrong user or password): {message}"
            ) from None
        if code == _SERVER_LOST:
            raise ServerError(
                f"cannot connect to {conn.address}: no answer within "
                f"{conn.connect_timeout} s (connect_timeout)"
            ) from None
        if code == _NO_DATABASE_ACCESS:
            raise ServerError(
                f"{conn.user or 'this user'} may not use database {database!r}: {message}"
            ) from None
        if code == _UNKNOWN_DATABASE:
            raise ServerError(f"database {database!r} does not exist on {conn.address}") from None
        raise ServerError(f"cannot connect to {conn.address}{who}: {message}") from None
    except pymysql.err.MySQLError as exc:
        raise ServerError(f"cannot connect to {conn.address}: {error_text(exc)}") from None
    except OSError as exc:
        raise ServerError(f"cannot connect to {conn.address}: {exc.strerror or exc}") from None


def _rows(db: pymysql.connections.Connection[Any], sql: str, args: Sequence[Any] = ()) -> list[Any]:
    with db.cursor() as cursor:
        # No arguments must mean None: PyMySQL would expand "%" in the SQL.
        cursor.execute(sql, args or None)
        return list(cursor.fetchall())


def server_info(db: pymysql.connections.Connection[Any]) -> ServerInfo:
    version, comment, charset, collation, log_bin, packet, read_only = _rows(
        db,
        "SELECT VERSION(), @@version_comment, @@character_set_server, @@collation_server,"
        " @@log_bin, @@max_allowed_packet, @@read_only",
    )[0]
    flavour = detect(version, comment)
    gtid_var = "@@gtid_binlog_pos" if flavour is Flavour.MARIADB else "@@gtid_executed"
    try:
        gtid = str(_rows(db, f"SELECT {gtid_var}")[0][0] or "")
    except pymysql.err.MySQLError:
        gtid = ""
    return ServerInfo(
        flavour=flavour,
        version=version,
        version_comment=comment,
        character_set=charset,
        collation=collation,
        log_bin=bool(log_bin),
        gtid=gtid,
        max_allowed_packet=int(packet),
        read_only=bool(read_only),
    )


@contextlib.contextmanager
def session(conn: Connection) -> Iterator[tuple[pymysql.connections.Connection[Any], ServerInfo]]:
    """A connection to the server and what it says of itself, for the block's
    time; a driver error inside the block is one line naming the server."""
    with server_errors(conn.address), contextlib.closing(connect(conn)) as db:
        yield db, server_info(db)


def current_user(db: pymysql.connections.Connection[Any]) -> str:
    """The account the server matched us to, as ``'user'@'host'``."""
    user, _, host = str(_rows(db, "SELECT CURRENT_USER()")[0][0]).rpartition("@")
    return f"'{user}'@'{host}'"


def user_databases(db: pymysql.connections.Connection[Any]) -> list[str]:
    """Every database a full-server backup covers (system schemas are left out)."""
    names = [row[0] for row in _rows(db, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")]
    return sorted(name for name in names if name not in SYSTEM_DATABASES)


def describe(db: pymysql.connections.Connection[Any], names: Sequence[str]) -> list[DatabaseInfo]:
    """Character set, collation and tables of each database; raise if one is missing."""
    if not names:
        return []
    marks = ", ".join(["%s"] * len(names))
    schemata = {
        row[0]: row
        for row in _rows(
            db,
            "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME"
            f" FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ({marks})",
            names,
        )
    }
    missing = [name for name in names if name not in schemata]
    if missing:
        raise ServerError(f"database {', '.join(map(repr, missing))} does not exist")
    tables: dict[str, list[TableInfo]] = {name: [] for name in names}
    for schema, name, kind, engine, rows, data in _rows(
        db,
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_ROWS, DATA_LENGTH"
        f" FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ({marks})"
        " ORDER BY TABLE_SCHEMA, TABLE_NAME",
        names,
    ):
        tables[schema].append(TableInfo(name, kind, engine, rows, data))
    return [
        DatabaseInfo(name, schemata[name][1], schemata[name][2], tuple(tables[name]))
        for name in names
    ]


_NO_TABLE_ACCESS = 1142


def _can_read_routines(db: pymysql.connections.Connection[Any], flavour: Flavour) -> bool:
    if flavour is Flavour.MARIADB:
        try:
            _rows(db, "SELECT 1 FROM mysql.proc LIMIT 0")
        except pymysql.err.MySQLError as exc:
            if exc.args and exc.args[0] == _NO_TABLE_ACCESS:
                return False
            raise
        return True
    grants = session_grants(db)
    return grants.has("SELECT") or grants.has("SHOW_ROUTINE")


def missing_privileges(
    db: pymysql.connections.Connection[Any],
    flavour: Flavour,
    databases: Sequence[str],
    *,
    routines: bool,
    triggers: bool,
    events: bool,
) -> list[str]:
    """Privileges whose absence would make the dump tool leave objects out *silently*,
    or stop it part-way: each named as the grant that gives it.

    Without them the tools skip triggers and routines without an error, so the
    backup would look complete and not be; a view without ``SHOW VIEW``, or
    MySQL's consistent point without ``RELOAD`` and ``REPLICATION CLIENT``
    (:func:`~plakar_mysql.core.grants.consistent_point_lacking`), stop the tool.
    Privileges held through the active roles or granted to ``PUBLIC`` count
    (:mod:`plakar_mysql.core.grants`).
    """
    grants = session_grants(db)
    missing: list[str] = []
    if routines and not _can_read_routines(db, flavour):
        what = "SELECT ON mysql.proc" if flavour is Flavour.MARIADB else "SHOW_ROUTINE ON *.*"
        missing.append(f"{what} (for stored routines; or set routines=false)")
    if flavour is Flavour.MYSQL:
        log_bin, gtid_mode = _rows(db, "SELECT @@log_bin, @@gtid_mode")[0]
        missing += consistent_point_lacking(
            grants, log_bin=bool(log_bin), gtid_mode=str(gtid_mode).upper() == "ON"
        )
    with_views = _with_views(db, databases)
    for name in databases:
        if name in with_views and not grants.has("SHOW VIEW", name, any_table=True):
            missing.append(f"SHOW VIEW ON {name}.* (for its views)")
        if triggers and not grants.has("TRIGGER", name, any_table=True):
            missing.append(f"TRIGGER ON {name}.* (for triggers; or set triggers=false)")
        if events and not grants.has("EVENT", name, any_table=True):
            missing.append(f"EVENT ON {name}.* (for events; or set events=false)")
    return missing


def _with_views(db: pymysql.connections.Connection[Any], databases: Sequence[str]) -> set[str]:
    """Those of ``databases`` that hold a view: dumping one takes ``SHOW VIEW``."""
    if not databases:
        return set()
    marks = ", ".join(["%s"] * len(databases))
    sql = "SELECT DISTINCT TABLE_SCHEMA FROM information_schema.VIEWS WHERE TABLE_SCHEMA IN "
    return {str(row[0]) for row in _rows(db, f"{sql}({marks})", databases)}


@dataclass(frozen=True)
class DatabaseObjects:
    """What a database holds besides tables and views, and who defines its code."""

    routines: tuple[str, ...]  # "PROCEDURE name" / "FUNCTION name"
    events: tuple[str, ...]
    definers: tuple[str, ...]  # user@host
    create_options: str  # what follows the name in SHOW CREATE DATABASE (charset, comment)
    triggers: tuple[str, ...] = ()


def database_objects(
    db: pymysql.connections.Connection[Any], names: Sequence[str]
) -> dict[str, DatabaseObjects]:
    """Routines, events, triggers and definers of each database, from information_schema."""
    marks = ", ".join(["%s"] * len(names))
    routines: dict[str, list[str]] = {name: [] for name in names}
    events: dict[str, list[str]] = {name: [] for name in names}
    definers: dict[str, set[str]] = {name: set() for name in names}
    for schema, kind, name, definer in _rows(
        db,
        "SELECT ROUTINE_SCHEMA, ROUTINE_TYPE, ROUTINE_NAME, DEFINER"
        f" FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA IN ({marks})",
        names,
    ):
        routines[schema].append(f"{kind} {name}")
        definers[schema].add(definer)
    for schema, name, definer in _rows(
        db,
        "SELECT EVENT_SCHEMA, EVENT_NAME, DEFINER FROM information_schema.EVENTS"
        f" WHERE EVENT_SCHEMA IN ({marks})",
        names,
    ):
        events[schema].append(name)
        definers[schema].add(definer)
    triggers: dict[str, list[str]] = {name: [] for name in names}
    for schema, definer in _rows(
        db,
        "SELECT TABLE_SCHEMA, DEFINER FROM information_schema.VIEWS"
        f" WHERE TABLE_SCHEMA IN ({marks})",
        names,
    ):
        definers[schema].add(definer)
    for schema, name, definer in _rows(
        db,
        "SELECT TRIGGER_SCHEMA, TRIGGER_NAME, DEFINER FROM information_schema.TRIGGERS"
        f" WHERE TRIGGER_SCHEMA IN ({marks})",
        names,
    ):
        triggers[schema].append(name)
        definers[schema].add(definer)
    options = {}
    for name in names:
        create = str(_rows(db, f"SHOW CREATE DATABASE {quote_identifier(name)}")[0][1])
        options[name] = create[len("CREATE DATABASE ") + len(quote_identifier(name)) :]
    return {
        name: DatabaseObjects(
            tuple(sorted(routines[name])),
            tuple(sorted(events[name])),
            tuple(sorted(definers[name])),
            options[name],
            tuple(sorted(triggers[name])),
        )
        for name in names
    }


def quote_identifier(name: str) -> str:
    """A MySQL identifier as a backquoted literal, safe for any name."""
    if "\x00" in name:
        raise ServerError(f"identifier {name!r} contains a NUL byte")
    return "`" + name.replace("`", "``") + "`"
