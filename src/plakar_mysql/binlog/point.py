"""The restored point: where a restore leaves the base backup's position on the target.

A replica keeps the last transaction it applied in ``@@gtid_slave_pos``; a
restore does the same with the point of its base backup (the logical dump's
``--master-data --gtid`` position, or the GTID in mariadb-backup's
``mariadb_backup_binlog_info``), and the replay advances it with every
transaction it applies.  The replay then starts right after it, without the
user copying numbers, and never applies a transaction twice.

These functions are all a restore needs, so that every kind of restore
(logical, physical) records its point the same way.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import pymysql

from plakar_mysql.binlog.gtid import GtidError, Position
from plakar_mysql.options import Connection
from plakar_mysql.server import connect


def restored_point(db: pymysql.connections.Connection[Any]) -> Position:
    """The target's restored point (``@@gtid_slave_pos``; empty if none)."""
    with db.cursor() as cursor:
        cursor.execute("SELECT @@GLOBAL.gtid_slave_pos")
        row = cursor.fetchone()
    return Position.parse(str(row[0] or "")) if row else Position()


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
