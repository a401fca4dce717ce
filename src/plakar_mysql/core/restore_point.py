"""The restored point: where a restore leaves the base backup's position on the target.

A replica keeps the last transaction it applied in ``@@gtid_slave_pos``; a
restore does the same with the point of its base backup (the logical dump's
``--master-data --gtid`` position, or the GTID in mariadb-backup's
``mariadb_backup_binlog_info``), and the replay advances it with every
transaction it applies.  The replay then starts right after it, without the
user copying numbers, and never applies a transaction twice.

These functions are all a restore needs, so that every kind of restore
(logical, physical) records its point the same way.

The replay records its progress as MariaDB's own replica does: a row of
``mysql.gtid_slave_pos`` (an InnoDB table) written inside each transaction it
applies, just before its COMMIT, so that the row and the transaction commit
together or not at all.  ``@@gtid_slave_pos`` is the server's copy of that
table in memory, read from it at the server's start; rows written by a
statement do not reach it until then, so after an interrupted replay the table
is ahead of the variable, and :func:`recorded_point` reads the table.  The
replay's end sets the variable (``SET GLOBAL gtid_slave_pos``), which also
rewrites the table to one row per domain.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import pymysql

from plakar_mysql.core.gtid import Gtid, GtidError, Position
from plakar_mysql.core.options import Connection
from plakar_mysql.core.server import connect


def restored_point(db: pymysql.connections.Connection[Any]) -> Position:
    """The target's restored point (``@@gtid_slave_pos``; empty if none)."""
    with db.cursor() as cursor:
        cursor.execute("SELECT @@GLOBAL.gtid_slave_pos")
        row = cursor.fetchone()
    return Position.parse(str(row[0] or "")) if row else Position()


# Per domain, the row with the highest sub_id: what the server loads at its start.
_TABLE_POINT = (
    "SELECT domain_id, server_id, seq_no FROM mysql.gtid_slave_pos AS p WHERE sub_id = "
    "(SELECT MAX(sub_id) FROM mysql.gtid_slave_pos AS q WHERE q.domain_id = p.domain_id)"
)
RECORD_TABLE = "mysql.gtid_slave_pos"
RECORD_COLUMNS = "(domain_id, sub_id, server_id, seq_no)"


def table_point(db: pymysql.connections.Connection[Any]) -> Position:
    """The point ``mysql.gtid_slave_pos`` holds (empty if it holds no row)."""
    with db.cursor() as cursor:
        cursor.execute(_TABLE_POINT)
        rows = cursor.fetchall()
    return Position(Gtid(int(d), int(s), int(q)) for d, s, q in rows)


def recorded_point(db: pymysql.connections.Connection[Any]) -> Position:
    """The target's restored point as the server itself would load it at its next
    start: per domain, the last row of ``mysql.gtid_slave_pos`` (an interrupted
    replay left its progress there, ahead of ``@@gtid_slave_pos``); for a domain
    the table lacks, ``@@gtid_slave_pos``."""
    table = table_point(db)
    variable = restored_point(db)
    return Position(
        [*(g for g in variable.gtids() if g.domain not in table.domains), *table.gtids()]
    )


def next_sub_id(db: pymysql.connections.Connection[Any]) -> int:
    """A ``sub_id`` above every row of the table: the order of the replay's rows."""
    with db.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(sub_id), 0) + 1 FROM {RECORD_TABLE}")
        row = cursor.fetchone()
    return int(row[0]) if row else 1


def record_sql(gtid: Gtid, sub_id: int, *, unlogged: bool) -> bytes:
    """The statement that records ``gtid`` as applied.  ``unlogged`` keeps it out
    of the target's binary log (it runs alone, after a statement that committed
    itself: logged, it would take the next transaction's GTID)."""
    sql = (
        f"INSERT INTO {RECORD_TABLE} {RECORD_COLUMNS} "
        f"VALUES ({gtid.domain}, {sub_id}, {gtid.server}, {gtid.seq})"
    )
    return (("SET STATEMENT sql_log_bin=0 FOR " if unlogged else "") + sql).encode()


def set_restored_point(db: pymysql.connections.Connection[Any], point: Position) -> None:
    """Record ``point`` as the target's restored point; raises the server's error."""
    with db.cursor() as cursor:
        cursor.execute("SET GLOBAL gtid_slave_pos = %s", (str(point),))


def record_restored_point(
    conn: Connection, gtid: str, log: Callable[[str], None]
) -> Position | None:
    """After a restore of a base taken at ``gtid``: record it on the target, or say
    why not and what to pass to the replay instead.  Never fails the restore."""
    try:
        point = Position.parse(gtid)
    except GtidError:
        log(f"the base's binary-log point {gtid!r} is not a MariaDB GTID: not recorded")
        return None
    if not point:
        return None
    try:
        with contextlib.closing(connect(conn)) as db:
            before = restored_point(db)
            set_restored_point(db, point)
    except Exception as exc:  # the restore itself succeeded: only say what to do
        reason = exc.args[-1] if isinstance(exc, pymysql.err.MySQLError) else exc
        log(
            f"warning: could not record the base's point {point} in @@gtid_slave_pos "
            f"({reason}): to replay binary logs onto this restore, give start_position={point}"
        )
        return None
    log(
        f"recorded the base's point {point} in @@gtid_slave_pos (where a binlog replay "
        f"starts; server-wide: it was {before or 'empty'}, it is now {point})"
    )
    return point


def base_point(manifest: bytes) -> str | None:
    """The binary-log GTID of a base backup, from its ``/manifest.json`` (None if the
    source had no binary log, or the manifest says nothing of it)."""
    try:
        data = json.loads(manifest)
        gtid = data["binlog"]["gtid"] if data.get("flavour") == "mariadb" else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return str(gtid) if gtid else None
