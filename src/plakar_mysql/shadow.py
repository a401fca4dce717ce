"""Atomic overwrite: load into shadow databases, then swap every table in one statement.

An overwrite restore never writes into the target while it loads.  Each target
database gets a shadow database on the same server
(``plakar_restore_<session>_<n>``) that receives the tables, rows and triggers.
Only when every table has loaded does :meth:`Shadow.swap` replace the target's
tables, with one ``RENAME TABLE`` statement that moves each table it replaces
into a database of its own (``plakar_old_<session>_<n>``: in the target, its
foreign keys' names would clash with the new table's; a view of a restored
table's name is renamed in place) and each shadow table in: the server
commits it whole or not at all, and readers wait on it rather than see half a
restore.  A restore that fails or is cancelled before that
leaves the target untouched; its databases are dropped (or, after a ``kill -9``,
by the next overwrite restore, once the session that made them is gone).

Before the swap, ``LOCK TABLES ... WRITE`` on the tables it replaces (released
at once) waits, within the bound, for any other client's lock: a lock held
elsewhere fails the restore there, with nothing changed.

What does not follow a table across databases is put right on the same connection:

* triggers: the server moves no table with triggers to another database.  The
  shadow tables' triggers are read (``SHOW CREATE TRIGGER``, with the session
  state they were made with) and dropped; the replaced tables' are dropped just
  before the swap (and created again if it fails); after it, the restored
  triggers are created on the swapped tables;
* foreign keys: InnoDB re-points a key at the renamed table it references, so
  a table the restore does not replace (in the target or in another database)
  that referenced a replaced table now references the one moved aside; and a
  restored table whose key references a table outside the restore still
  references it in the shadow database.  Each such key is dropped and added
  again, referencing the target's table of that name;
* the tables moved aside are dropped last.

Grants on tables are held by name (``mysql.tables_priv``), so the swapped
tables keep the target's.  The cost: room for a second copy of the restored
tables until the swap.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

import pymysql

from plakar_mysql.grants import session_grants
from plakar_mysql.locks import holders, is_lock_timeout
from plakar_mysql.server import quote_identifier

Connection: TypeAlias = "pymysql.connections.Connection[Any]"
Log: TypeAlias = Callable[[str], None]

SHADOW_PREFIX = "plakar_restore_"
OLD_PREFIX = "plakar_old_"
_LEFTOVER = re.compile(r"^plakar_(?:restore|old)_(\d+)_\d+$")
_IDENT = r"(?:`(?:[^`\n]|``)+`|[0-9A-Za-z_$\u0080-\uffff]+)"
# SHOW CREATE TRIGGER's statement, up to where the trigger's table is named.
_TRIGGER_HEAD = re.compile(
    r"^(CREATE\s+(?:DEFINER=(?:CURRENT_USER|`(?:[^`]|``)*`@`(?:[^`]|``)*`)\s+)?TRIGGER\s+)"
    r"(" + _IDENT + r"\s+(?i:BEFORE|AFTER)\s+(?i:INSERT|UPDATE|DELETE)\s+(?i:ON)\s+)"
)

#: Per shadow database, per trigger: the database qualifiers its name and table
#: were typed with (dropped to load it into the shadow; see loader.TriggerRewriter).
Qualifiers: TypeAlias = Mapping[str, Mapping[str, tuple[str, str]]]

# MySQL character sets as Python codecs: a trigger is sent in the one it was made with.
_CODECS = {"utf8mb4": "utf-8", "utf8mb3": "utf-8", "utf8": "utf-8", "latin1": "cp1252"}
_CODECS |= {"ascii": "ascii", "binary": "utf-8", "ucs2": "utf-16-be", "utf16": "utf-16-be"}


class SwapError(RuntimeError):
    """The swap failed; one line for the user, saying what state the target is in."""


def _requalified(statement: str, typed: tuple[str, str]) -> str:
    """A trigger's statement with the qualifiers of its name and table put back."""
    match = _TRIGGER_HEAD.match(statement)
    if match is None:
        return statement
    return match[1] + typed[0] + match[2] + typed[1] + statement[match.end() :]


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
        self._trash: dict[str, str] = {}  # database of the tables moved aside -> its target
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

    def swap(
        self, qualifiers: Qualifiers | None = None, cancelled: Callable[[], bool] | None = None
    ) -> None:
        """Create missing targets, swap every shadow table in, then put triggers,
        foreign keys right and drop the tables moved aside."""
        created = [t for t in sorted(self._targets) if not self._exists(t)]
        for target in created:
            self._rows(f"CREATE DATABASE {_q(target)}{self._targets[target]}")
            self._log(f"created database {target!r}")
        self._rows("SET SESSION foreign_key_checks = 0")
        try:
            self._swap(created, qualifiers or {}, cancelled or (lambda: False))
        finally:
            with contextlib.suppress(pymysql.err.MySQLError):
                self._rows("SET SESSION foreign_key_checks = 1")

    def _swap(
        self, created: list[str], qualifiers: Qualifiers, cancelled: Callable[[], bool]
    ) -> None:
        moves: list[tuple[str, str, str, str]] = []  # (from schema, table, to schema, table)
        replaced: list[tuple[str, str]] = []  # (target, table) moved aside
        views: list[tuple[str, str]] = []  # (target, view) named as a restored table
        new_triggers: list[_Trigger] = []
        old_triggers: list[_Trigger] = []
        for target, shadow in sorted(self._shadows.items()):
            present = dict(
                self._rows(
                    "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES"
                    " WHERE TABLE_SCHEMA = %s",
                    [target],
                )
            )
            names = [
                name
                for (name,) in self._rows(
                    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
                    " ORDER BY TABLE_NAME",
                    [shadow],
                )
            ]
            aside = [n for n in names if n in present and present[n] != "VIEW"]
            for n in names:
                if present.get(n) == "VIEW":  # a view may not change database: renamed in place
                    views.append((target, f"{OLD_PREFIX}{self._session}_v{len(views) + 1}"))
                    moves.append((target, n, *views[-1]))
            if aside:
                trash = f"{OLD_PREFIX}{self._session}_{len(self._trash) + 1}"
                self._rows(f"CREATE DATABASE {_q(trash)}")
                self._trash[trash] = target
                moves += [(target, n, trash, n) for n in aside]
                replaced += [(target, n) for n in aside]
                old_triggers += [t for t in self._triggers(target) if t.table in aside]
            moves += [(shadow, n, target, n) for n in names]
            new_triggers += self._triggers(shadow)
        self._probe([*replaced, *((a, b) for a, b, c, d in moves if (c, d) in views)], created)
        if cancelled():
            self._undo_created(created)
            raise SwapError("the restore was cancelled: nothing was restored")
        for trigger in new_triggers:
            self._rows(f"DROP TRIGGER {_q(trigger.schema, trigger.name)}")
        dropped: list[_Trigger] = []
        try:
            # The server moves no table with triggers to another database: the
            # replaced tables lose theirs just before the swap (and get them back
            # if it fails).
            for trigger in old_triggers:
                self._rows(f"DROP TRIGGER {_q(trigger.schema, trigger.name)}")
                dropped.append(trigger)
            if moves:
                self._rows(
                    "RENAME TABLE " + ", ".join(f"{_q(a, b)} TO {_q(c, d)}" for a, b, c, d in moves)
                )
        except pymysql.err.MySQLError as exc:
            for trigger in dropped:
                with contextlib.suppress(pymysql.err.MySQLError):
                    self._create_trigger(trigger, trigger.schema)
            self._undo_created(created)
            raise self._refused(exc, replaced) from exc
        self.swapped = True
        swapped = sum(1 for a, *_ in moves if a in self._shadows.values())
        self._log(f"swapped in {swapped} table(s) in one statement")
        self._finish(new_triggers, replaced, qualifiers)
        if views:
            self._rows("DROP VIEW " + ", ".join(_q(*view) for view in views))

    def _finish(
        self, new_triggers: list[_Trigger], replaced: list[tuple[str, str]], qualifiers: Qualifiers
    ) -> None:
        """After the swap: the restored triggers, the foreign keys, the old tables dropped."""
        step = "creating the triggers of the restored tables"
        try:
            for trigger in new_triggers:
                typed = qualifiers.get(trigger.schema, {}).get(trigger.name)
                if typed:  # as it was typed: CREATE TRIGGER db.name ... ON db.table
                    trigger = replace(trigger, statement=_requalified(trigger.statement, typed))  # noqa: PLW2901
                self._create_trigger(trigger, self._target_of(trigger.schema))
            step = "re-pointing foreign keys at the restored tables"
            self._fix_foreign_keys()
            step = "dropping the tables replaced"
            for trash in sorted(self._trash):
                self._rows(f"DROP DATABASE {_q(trash)}")
                del self._trash[trash]
        except pymysql.err.MySQLError as exc:
            where = f" ({holders(self._db, replaced)})" if is_lock_timeout(exc) else ""
            raise SwapError(
                f"the tables were swapped in, but {step} failed: {exc.args[-1]}{where}; "
                f"the replaced tables are kept in {', '.join(sorted(self._trash))}"
            ) from exc
        for shadow in sorted(self._shadows.values()):
            self._rows(f"DROP DATABASE {_q(shadow)}")
        self._shadows.clear()

    def _probe(self, tables: list[tuple[str, str]], created: list[str]) -> None:
        """Wait (within the bound) until no other client holds a lock on ``tables``,
        before anything changes: a lock wait then fails with nothing done."""
        if not tables:
            return
        try:
            self._rows("LOCK TABLES " + ", ".join(f"{_q(*t)} WRITE" for t in tables))
        except pymysql.err.MySQLError as exc:
            self._undo_created(created)
            raise self._refused(exc, tables) from exc
        finally:
            self._rows("UNLOCK TABLES")

    def _refused(self, exc: pymysql.err.MySQLError, targets: list[tuple[str, str]]) -> SwapError:
        """The swap failed before it changed anything; say why, naming a lock's holder."""
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

    def _fix_foreign_keys(self) -> None:
        """Keys that reference a table in a shadow or moved aside reference the
        target's table of that name again."""
        moved = {shadow: target for target, shadow in self._shadows.items()} | self._trash
        if not moved:
            return
        marks = ", ".join(["%s"] * len(moved))
        keys: list[_ForeignKey] = []
        for schema, table, name, ref_schema, ref_table, update, delete in self._rows(
            "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, UNIQUE_CONSTRAINT_SCHEMA,"
            " REFERENCED_TABLE_NAME, UPDATE_RULE, DELETE_RULE"
            f" FROM information_schema.REFERENTIAL_CONSTRAINTS"
            f" WHERE UNIQUE_CONSTRAINT_SCHEMA IN ({marks})",
            sorted(moved),
        ):
            if schema in moved:
                continue  # a table moved aside (dropped below) or left in a shadow
            referenced = (moved[ref_schema], ref_table)
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

    # -- failure and leftovers -------------------------------------------------------

    def discard(self) -> None:
        """Drop the shadow databases (the restore failed or was cancelled); never raises."""
        for trash in sorted(self._trash):
            with contextlib.suppress(pymysql.err.MySQLError, OSError):
                self._rows(f"DROP DATABASE IF EXISTS {_q(trash)}")  # empty unless swapped
        self._trash.clear()
        for target, shadow in sorted(self._shadows.items()):
            try:
                self._rows(f"DROP DATABASE IF EXISTS {_q(shadow)}")
                self._log(f"dropped the shadow database {shadow!r}: {target!r} is as it was")
            except (pymysql.err.MySQLError, OSError) as exc:
                self._log(f"could not drop the shadow database {shadow!r}: {exc}")
        self._shadows.clear()


def drop_leftovers(db: Connection, log: Log) -> None:
    """Drop the shadow databases (and databases of tables moved aside) of restores
    whose session is gone, killed before they could clean up.  Only with the
    PROCESS privilege: without it, another account's running restore would look gone."""
    grants = session_grants(db)  # roles and PUBLIC count; other accounts' rows do not
    if not (grants.has("PROCESS") or grants.has("SUPER")):
        return
    with db.cursor() as cursor:
        cursor.execute("SELECT ID FROM information_schema.PROCESSLIST")
        alive = {int(row[0]) for row in cursor.fetchall()}
        cursor.execute(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"
            " WHERE SCHEMA_NAME LIKE 'plakar\\_restore\\_%' OR SCHEMA_NAME LIKE 'plakar\\_old\\_%'"
        )
        for (schema,) in cursor.fetchall():
            match = _LEFTOVER.match(schema)
            if match is None or int(match.group(1)) in alive:
                continue
            cursor.execute(f"DROP DATABASE IF EXISTS {_q(schema)}")
            log(f"dropped {schema!r}, left behind by an interrupted restore")
