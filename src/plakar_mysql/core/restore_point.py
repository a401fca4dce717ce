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

On MySQL the point is ``@@gtid_executed``, a GTID set: a logical base's dump
records the source's set (``SET @@GLOBAL.GTID_PURGED``), and the restore adds
it to the target's ``@@gtid_purged`` (which adds it to ``@@gtid_executed``).
The replay applies each transaction under its own GTID (``SET GTID_NEXT``),
which the server records as the transaction commits, atomically with it, and a
transaction whose GTID the target holds is skipped by the server itself.  So
MySQL needs no record table: :func:`recorded_point` is ``@@gtid_executed``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import pymysql

from plakar_mysql.core.flavour import Flavour, detect
from plakar_mysql.core.gtid import Gtid, GtidError, GtidSet, Point, Position
from plakar_mysql.core.options import Connection
from plakar_mysql.core.server import connect


def is_mysql(db: pymysql.connections.Connection[Any]) -> bool:
    """Whether ``db`` is a MySQL server (its point is ``@@gtid_executed``)."""
    with db.cursor() as cursor:
        cursor.execute("SELECT VERSION(), @@version_comment")
        row = cursor.fetchone()
    return detect(*(str(value) for value in row or ())) is Flavour.MYSQL


def point_variable(mysql: bool) -> str:
    """The variable that holds a server's restored point, for messages."""
    return "@@gtid_executed" if mysql else "@@gtid_slave_pos"


def restored_point(db: pymysql.connections.Connection[Any]) -> Point:
    """The target's restored point (``@@gtid_slave_pos``, on MySQL
    ``@@gtid_executed``; empty if none)."""
    mysql = is_mysql(db)
    with db.cursor() as cursor:
        cursor.execute(f"SELECT {point_variable(mysql).replace('@@', '@@GLOBAL.')}")
        row = cursor.fetchone()
    text = str(row[0] or "") if row else ""
    return GtidSet.parse(text) if mysql else Position.parse(text)


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


def recorded_point(db: pymysql.connections.Connection[Any]) -> Point:
    """The target's restored point as the server itself would load it at its next
    start: per domain, the last row of ``mysql.gtid_slave_pos`` (an interrupted
    replay left its progress there, ahead of ``@@gtid_slave_pos``); for a domain
    the table lacks, ``@@gtid_slave_pos``.  On MySQL, ``@@gtid_executed``."""
    variable = restored_point(db)
    if isinstance(variable, GtidSet):
        return variable
    table = table_point(db)
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


def set_restored_point(db: pymysql.connections.Connection[Any], point: Point) -> None:
    """Record ``point`` as the target's restored point; raises the server's error."""
    with db.cursor() as cursor:
        cursor.execute("SET GLOBAL gtid_slave_pos = %s", (str(point),))


def record_restored_point(conn: Connection, gtid: str, log: Callable[[str], None]) -> Point | None:
    """After a restore of a base taken at ``gtid``: record it on the target, or say
    why not and what to pass to the replay instead.  Never fails the restore."""
    variable = "the target's restored point"
    try:
        with contextlib.closing(connect(conn)) as db:
            if is_mysql(db):
                variable = "@@gtid_purged"
                return _record_mysql_point(db, gtid, log)
            variable = "@@gtid_slave_pos"
            try:
                point = Position.parse(gtid)
            except GtidError:
                log(f"the base's binary-log point {gtid!r} is not a MariaDB GTID: not recorded")
                return None
            if not point:
                return None
            before = restored_point(db)
            set_restored_point(db, point)
    except Exception as exc:  # the restore itself succeeded: only say what to do
        _not_recorded("".join(gtid.split()), exc, variable, log)
        return None
    log(
        f"recorded the base's point {point} in @@gtid_slave_pos (where a binlog replay "
        f"starts; server-wide: it was {before or 'empty'}, it is now {point})"
    )
    return point


def _not_recorded(
    point: str, exc: BaseException, variable: str, log: Callable[[str], None]
) -> None:
    reason = exc.args[-1] if isinstance(exc, pymysql.err.MySQLError) else exc
    log(
        f"warning: could not record the base's point {point} in {variable} "
        f"({reason}): to replay binary logs onto this restore, give start_position={point}"
    )


def _executed(db: pymysql.connections.Connection[Any]) -> GtidSet:
    """A MySQL server's ``@@gtid_executed``."""
    with db.cursor() as cursor:
        cursor.execute("SELECT @@GLOBAL.gtid_executed")
        row = cursor.fetchone()
    return GtidSet.parse(str(row[0] or "") if row else "")


def _record_mysql_point(
    db: pymysql.connections.Connection[Any], gtid: str, log: Callable[[str], None]
) -> Point | None:
    """MySQL: add the base's GTID set to the target's ``@@gtid_purged`` (what it
    lacks of it: the same restore run twice adds nothing), so that the replay
    starts after it and the server skips what it holds.  A target that already
    holds later transactions of the base's sources is said: the replay would
    skip them as applied (a restore onto the server the base was taken from
    needs ``RESET BINARY LOGS AND GTIDS`` first)."""
    try:
        point = GtidSet.parse(gtid)
    except GtidError:
        log(f"the base's binary-log point {gtid!r} is not a MySQL GTID set: not recorded")
        return None
    if not point:
        return None
    before = _executed(db)
    later = GtidSet({key: before.intervals(key) for key in point.domains}).difference(point)
    if later:
        log(
            f"warning: the target already holds {later}, after the base's point {point}: a "
            "binlog replay skips them as applied (MySQL skips a GTID it holds); if they are "
            "not this base's data (a restore onto the server the base was taken from), run "
            "RESET BINARY LOGS AND GTIDS on the target and restore again"
        )
    missing = point.difference(before)
    if not missing:
        log(f"the target already holds the base's point {point} in @@gtid_executed")
        return point
    with db.cursor() as cursor:
        cursor.execute("SET GLOBAL gtid_purged = %s", ("+" + str(missing),))
    after = _executed(db)
    log(
        f"recorded the base's point {point} in @@gtid_purged (where a binlog replay starts; "
        f"server-wide: @@gtid_executed was {before or 'empty'}, it is now {after})"
    )
    return point


def base_point(manifest: bytes) -> str | None:
    """The binary-log GTID of a base backup, from its ``/manifest.json``: MariaDB's
    position, MySQL's set (None if the source had no binary log, or the manifest
    says nothing of it)."""
    try:
        data = json.loads(manifest)
        gtid = data["binlog"]["gtid"] if data.get("flavour") in ("mariadb", "mysql") else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return "".join(str(gtid).split()) if gtid else None  # MySQL prints sets over lines
