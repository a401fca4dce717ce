"""Atomic overwrite: load into shadow databases, then swap every table in one statement.

An overwrite restore never writes into the target while it loads.  Each target
database gets a shadow database on the same server
(``plakar_restore_<session>_<n>``) that receives the tables, rows and triggers.
Only when every table has loaded does :meth:`Shadow.swap` replace the target's
tables, with one ``RENAME TABLE`` statement that moves each existing table
aside (``plakar_old_<session>_<n>``, in its own database) and each shadow table
in: InnoDB commits it whole or not at all, and readers wait on it rather than
see half a restore.  A restore that fails or is cancelled before it leaves the
target untouched; its shadow databases are dropped (or, after a ``kill -9``,
by the next overwrite restore, once the session that made them is gone).

Three things do not follow a table across databases and are put right after
the swap, on the same connection:

* triggers: the server refuses to move a table with triggers to another
  database, so the shadow tables' triggers are read (``SHOW CREATE TRIGGER``,
  with the session state they were made with), dropped, and created again on
  the swapped tables - after the triggers of the tables moved aside;
* foreign keys: InnoDB re-points a foreign key at the renamed table it
  references, so a table the restore does not replace (in the target or in
  another database) that referenced a replaced table now references the one
  moved aside; and a restored table whose key references a table outside the
  restore still references it in the shadow database.  Each such key is
  dropped and added again, referencing the target's table of that name;
* the tables moved aside, dropped last.

Grants on tables are held by name (``mysql.tables_priv``), so the swapped
tables keep the target's.  The cost: room for a second copy of the restored
tables until the swap.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import pymysql

from plakar_mysql.locks import holders, is_lock_timeout
from plakar_mysql.server import quote_identifier

Connection: TypeAlias = "pymysql.connections.Connection[Any]"
Log: TypeAlias = Callable[[str], None]

SHADOW_PREFIX = "plakar_restore_"
OLD_PREFIX = "plakar_old_"
_LEFTOVER = re.compile(r"^plakar_(?:restore|old)_(\d+)_\d+$")

# MySQL character sets as Python codecs: a trigger is sent in the one it was made with.
_CODECS = {"utf8mb4": "utf-8", "utf8mb3": "utf-8", "utf8": "utf-8", "latin1": "cp1252"}
_CODECS |= {"ascii": "ascii", "binary": "utf-8", "ucs2": "utf-16-be", "utf16": "utf-16-be"}


class SwapError(RuntimeError):
    """The swap failed; one line for the user, saying what state the target is in."""


def _q(*names: str) -> str:
    return ".".join(quote_identifier(name) for name in names)


@dataclass(frozen=True)
class _Trigger:
    schema: str
    table: str
    name: str
    sql_mode: str
    charset: str
    collation: str
    statement: str


@dataclass(frozen=True)
class _ForeignKey:
    schema: str
    table: str
    name: str
    columns: tuple[str, ...]
    referenced: tuple[str, str]  # (schema, table) it must reference
    referenced_columns: tuple[str, ...]
    update_rule: str
    delete_rule: str

    def add_sql(self) -> str:
        sql = (
            f"ALTER TABLE {_q(self.schema, self.table)} ADD CONSTRAINT {_q(self.name)}"
            f" FOREIGN KEY ({', '.join(map(quote_identifier, self.columns))})"
            f" REFERENCES {_q(*self.referenced)}"
            f" ({', '.join(map(quote_identifier, self.referenced_columns))})"
        )
        if self.delete_rule != "RESTRICT":
            sql += f" ON DELETE {self.delete_rule}"
        if self.update_rule != "RESTRICT":
            sql += f" ON UPDATE {self.update_rule}"
        return sql


class Shadow:
    """The shadow databases of one overwrite restore, made on first use."""

    def __init__(self, db: Connection, log: Log, bound: int) -> None:
        self._db = db
        self._log = log
        self._bound = bound
        self._session = int(self._rows("SELECT CONNECTION_ID()")[0][0])
        self._shadows: dict[str, str] = {}  # target -> its shadow
        self._targets: dict[str, str] = {}  # target -> CREATE DATABASE options if missing
        self.swapped = False

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._db.cursor() as cursor:
            cursor.execute(sql, tuple(args) or None)
            return list(cursor.fetchall())

    def _exists(self, database: str) -> bool:
        return bool(
            self._rows(
                "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", [database]
            )
        )

    def register(self, target: str, create_options: str) -> None:
        """``target`` is written by the restore; it is created at the swap if missing."""
        self._targets.setdefault(target, create_options)

    def database_for(self, target: str, create_options: str) -> str:
        """The shadow database of ``target``, created on first use."""
        self.register(target, create_options)
        shadow = self._shadows.get(target)
        if shadow is None:
            shadow = f"{SHADOW_PREFIX}{self._session}_{len(self._shadows) + 1}"
            if self._exists(target):
                create = str(self._rows(f"SHOW CREATE DATABASE {_q(target)}")[0][1])
                create_options = create[len("CREATE DATABASE ") + len(_q(target)) :]
            self._rows(f"CREATE DATABASE {_q(shadow)}{create_options}")
            self._shadows[target] = shadow
            self._log(f"loading {target!r} into the shadow database {shadow!r}")
        return shadow

    # -- the swap ------------------------------------------------------------------

    def swap(self) -> None:
        """Create missing targets, swap every shadow table in, then put triggers,
        foreign keys right and drop the tables moved aside."""
        created = [t for t in sorted(self._targets) if not self._exists(t)]
        for target in created:
            self._rows(f"CREATE DATABASE {_q(target)}{self._targets[target]}")
            self._log(f"created database {target!r}")
        self._rows("SET SESSION foreign_key_checks = 0")
        try:
            self._swap(created)
        finally:
            with contextlib.suppress(pymysql.err.MySQLError):
                self._rows("SET SESSION foreign_key_checks = 1")

    def _swap(self, created: list[str]) -> None:
        moves: list[tuple[str, str, str, str]] = []  # (from schema, table, to schema, table)
        old: dict[tuple[str, str], str] = {}  # (target, old name) -> original name
        triggers: list[_Trigger] = []
        for target, shadow in sorted(self._shadows.items()):
            present = {
                name: kind
                for name, kind in self._rows(
                    "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES"
                    " WHERE TABLE_SCHEMA = %s",
                    [target],
                )
            }
            for (name,) in self._rows(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
                " ORDER BY TABLE_NAME",
                [shadow],
            ):
                if name in present:
                    aside = f"{OLD_PREFIX}{self._session}_{len(old) + 1}"
                    old[(target, aside)] = name
                    moves.append((target, name, target, aside))
                moves.append((shadow, name, target, name))
            triggers += self._triggers(shadow)
        for trigger in triggers:
            self._rows(f"DROP TRIGGER {_q(trigger.schema, trigger.name)}")
        if moves:
            sql = "RENAME TABLE " + ", ".join(f"{_q(a, b)} TO {_q(c, d)}" for a, b, c, d in moves)
            try:
                self._rows(sql)
            except pymysql.err.MySQLError as exc:
                self._undo_created(created)
                raise self._refused(exc, [(a, b) for a, b, c, _ in moves if a == c]) from exc
        self.swapped = True
        self._log(
            f"swapped in {sum(1 for a, _, c, _ in moves if a != c)} table(s) in one statement"
        )
        step = "dropping the triggers of the tables replaced"
        try:
            self._drop_old_triggers(old)
            step = "creating the triggers of the restored tables"
            for trigger in triggers:
                self._create_trigger(trigger, self._target_of(trigger.schema))
            step = "re-pointing foreign keys at the restored tables"
            self._fix_foreign_keys(old)
            step = "dropping the tables replaced"
            self._drop_old(old)
        except pymysql.err.MySQLError as exc:
            where = f" ({holders(self._db, list(old))})" if is_lock_timeout(exc) else ""
            raise SwapError(
                f"the tables were swapped in, but {step} failed: {exc.args[-1]}{where}; "
                f"the replaced tables are kept as {', '.join(f'{t}.{n}' for t, n in old)}"
            ) from exc
        for shadow in sorted(self._shadows.values()):
            self._rows(f"DROP DATABASE {_q(shadow)}")
        self._shadows.clear()

    def _refused(self, exc: pymysql.err.MySQLError, targets: list[tuple[str, str]]) -> SwapError:
        """The swap statement failed: nothing changed; say why, naming a lock's holder."""
        if is_lock_timeout(exc):
            names = ", ".join(f"{t}.{n}" for t, n in targets[:8])
            return SwapError(
                f"could not replace {names}: {holders(self._db, targets)}; gave up after "
                f"{self._bound} s (lock_wait_timeout): nothing was restored, the target is "
                "as it was"
            )
        return SwapError(
            f"swapping the restored tables in failed: {exc.args[-1]}: nothing was restored, "
            "the target is as it was"
        )

    def _undo_created(self, created: Iterable[str]) -> None:
        for target in created:
            with contextlib.suppress(pymysql.err.MySQLError):
                self._rows(f"DROP DATABASE {_q(target)}")

    def _target_of(self, shadow: str) -> str:
        return next(t for t, s in self._shadows.items() if s == shadow)

    def _triggers(self, shadow: str) -> list[_Trigger]:
        found = []
        for table, name, sql_mode, charset, collation in self._rows(
            "SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME, SQL_MODE, CHARACTER_SET_CLIENT,"
            " COLLATION_CONNECTION FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s"
            " ORDER BY EVENT_OBJECT_TABLE, EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER",
            [shadow],
        ):
            statement = str(self._rows(f"SHOW CREATE TRIGGER {_q(shadow, name)}")[0][2])
            found.append(_Trigger(shadow, table, name, sql_mode, charset, collation, statement))
        return found

    def _create_trigger(self, trigger: _Trigger, target: str) -> None:
        """Create ``trigger`` in ``target`` with the session state it was made with."""
        codec = _CODECS.get(trigger.charset)
        charset = trigger.charset if codec else "utf8mb4"
        (mode,) = self._rows("SELECT @@SESSION.sql_mode")[0]
        self._db.select_db(target)
        try:
            self._rows(
                "SET SESSION sql_mode = %s, character_set_client = %s, collation_connection = %s",
                [trigger.sql_mode, charset, trigger.collation if codec else "utf8mb4_general_ci"],
            )
            self._db.query(trigger.statement.encode(codec or "utf-8"))
        finally:
            self._rows(
                "SET SESSION sql_mode = %s, character_set_client = utf8mb4,"
                " collation_connection = utf8mb4_general_ci",
                [mode],
            )

    def _drop_old_triggers(self, old: dict[tuple[str, str], str]) -> None:
        for target, aside in old:
            for (name,) in self._rows(
                "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS"
                " WHERE TRIGGER_SCHEMA = %s AND EVENT_OBJECT_TABLE = %s",
                [target, aside],
            ):
                self._rows(f"DROP TRIGGER {_q(target, name)}")

    def _fix_foreign_keys(self, old: dict[tuple[str, str], str]) -> None:
        shadows = {shadow: target for target, shadow in self._shadows.items()}
        schemas = sorted({*shadows, *(target for target, _ in old)})
        if not schemas:
            return
        marks = ", ".join(["%s"] * len(schemas))
        keys: list[_ForeignKey] = []
        for schema, table, name, ref_schema, ref_table, update, delete in self._rows(
            "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, UNIQUE_CONSTRAINT_SCHEMA,"
            " REFERENCED_TABLE_NAME, UPDATE_RULE, DELETE_RULE"
            f" FROM information_schema.REFERENTIAL_CONSTRAINTS"
            f" WHERE UNIQUE_CONSTRAINT_SCHEMA IN ({marks})",
            schemas,
        ):
            if (schema, table) in old:
                continue  # a table moved aside: dropped below
            if (ref_schema, ref_table) in old:
                referenced = (ref_schema, old[(ref_schema, ref_table)])
            elif ref_schema in shadows:
                referenced = (shadows[ref_schema], ref_table)
            else:
                continue
            columns = self._rows(
                "SELECT COLUMN_NAME, REFERENCED_COLUMN_NAME"
                " FROM information_schema.KEY_COLUMN_USAGE"
                " WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = %s AND CONSTRAINT_NAME = %s"
                " AND REFERENCED_TABLE_NAME IS NOT NULL ORDER BY ORDINAL_POSITION",
                [schema, table, name],
            )
            keys.append(
                _ForeignKey(
                    schema,
                    table,
                    name,
                    tuple(c for c, _ in columns),
                    referenced,
                    tuple(r for _, r in columns),
                    update,
                    delete,
                )
            )
        for key in keys:
            self._rows(f"ALTER TABLE {_q(key.schema, key.table)} DROP FOREIGN KEY {_q(key.name)}")
            self._rows(key.add_sql())
            self._log(
                f"foreign key {key.schema}.{key.table}.{key.name} references "
                f"{key.referenced[0]}.{key.referenced[1]} again"
            )

    def _drop_old(self, old: dict[tuple[str, str], str]) -> None:
        if not old:
            return
        kinds = {
            (schema, name): kind
            for schema, name, kind in self._rows(
                "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES"
                f" WHERE TABLE_NAME LIKE '{OLD_PREFIX}{self._session}\\_%'"
            )
        }
        views = [key for key in old if kinds.get(key) == "VIEW"]
        tables = [key for key in old if key in kinds and kinds[key] != "VIEW"]
        if views:
            self._rows("DROP VIEW " + ", ".join(_q(*key) for key in views))
        if tables:
            self._rows("DROP TABLE " + ", ".join(_q(*key) for key in tables))

    # -- failure and leftovers -------------------------------------------------------

    def discard(self) -> None:
        """Drop the shadow databases (the restore failed or was cancelled); never raises."""
        for target, shadow in sorted(self._shadows.items()):
            try:
                self._rows(f"DROP DATABASE IF EXISTS {_q(shadow)}")
                self._log(f"dropped the shadow database {shadow!r}: {target!r} is as it was")
            except (pymysql.err.MySQLError, OSError) as exc:
                self._log(f"could not drop the shadow database {shadow!r}: {exc}")
        self._shadows.clear()


def drop_leftovers(db: Connection, log: Log) -> None:
    """Drop the shadow databases and set-aside tables of restores whose session is
    gone (killed before they could clean up).  Only with the PROCESS privilege:
    without it, another account's running restore would look gone."""
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES"
            " WHERE PRIVILEGE_TYPE IN ('PROCESS', 'SUPER')"
        )
        if not cursor.fetchone()[0]:
            return
        cursor.execute("SELECT ID FROM information_schema.PROCESSLIST")
        alive = {int(row[0]) for row in cursor.fetchall()}
        cursor.execute(
            "SELECT SCHEMA_NAME, '' FROM information_schema.SCHEMATA"
            " WHERE SCHEMA_NAME LIKE 'plakar\\_restore\\_%'"
            " UNION ALL SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES"
            " WHERE TABLE_NAME LIKE 'plakar\\_old\\_%'"
        )
        for schema, table in cursor.fetchall():
            match = _LEFTOVER.match(table or schema)
            if match is None or int(match.group(1)) in alive:
                continue
            if table:
                cursor.execute(f"DROP TABLE IF EXISTS {_q(schema, table)}")
                log(f"dropped {schema}.{table}, left behind by an interrupted restore")
            else:
                cursor.execute(f"DROP DATABASE IF EXISTS {_q(schema)}")
                log(f"dropped the shadow database {schema!r} of an interrupted restore")
