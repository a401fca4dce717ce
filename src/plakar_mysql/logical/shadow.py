"""Atomic overwrite: load into shadow databases, then swap every table in one statement.

An overwrite restore never writes into the target while it loads.  Each target
database gets a shadow database on the same server
(``plakar_restore_<session>_<n>_<account>``: the connection id that owns it and
a tag of the account, see :func:`owner_tag`) that receives the tables, rows and
triggers.
Only when every table has loaded does :meth:`Shadow.swap` replace the target's
tables, with one ``RENAME TABLE`` statement that moves each table it replaces
into a database of its own (``plakar_old_<session>_<n>_<account>``: in the target, its
foreign keys' names would clash with the new table's; a view of a restored
table's name is renamed in place) and each shadow table in: the server
commits it whole or not at all, and readers wait on it rather than see half a
restore.  A restore that fails or is cancelled before that
leaves the target untouched; its databases are dropped (or, after a ``kill -9``,
by the next overwrite restore, once it is proven that the session that made
them is gone: see :func:`drop_leftovers`).

Before the swap, ``LOCK TABLES ... WRITE`` on the tables it replaces (released
at once) waits, within the bound, for any other client's lock: a lock held
elsewhere fails the restore there, with nothing changed.

What does not follow a table across databases is put right on the same connection:

* triggers: the server moves no table with triggers to another database.  The
  shadow tables' triggers are read (``SHOW CREATE TRIGGER``, with the session
  state they were made with) and dropped; the replaced tables' are dropped just
  before the swap (and created again if it fails: a trigger that cannot be is
  named in the error, with its definition in the log); after it, the restored
  triggers are created on the swapped tables;
* foreign keys: InnoDB re-points a key at the renamed table it references, so
  a table the restore does not replace (in the target or in another database)
  that referenced a replaced table now references the one moved aside; and a
  restored table whose key references a table outside the restore still
  references it in the shadow database.  Each such key is dropped and added
  again, referencing the target's table of that name;
* the tables moved aside are dropped last.  If a step after the swap fails,
  they are kept in their ``plakar_old_*`` database, and no restore ever drops
  a ``plakar_old_*`` database that holds a table: the DBA does.

Grants on tables are held by name (``mysql.tables_priv``), so the swapped
tables keep the target's.  The cost: room for a second copy of the restored
tables until the swap.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeAlias

import pymysql
import pymysql.cursors

from plakar_mysql.core.errors import PlakarMySQLError
from plakar_mysql.core.locks import holders, is_lock_timeout
from plakar_mysql.core.server import quote_identifier

Connection: TypeAlias = "pymysql.connections.Connection[Any]"
Log: TypeAlias = Callable[[str], None]

SHADOW_PREFIX = "plakar_restore_"
OLD_PREFIX = "plakar_old_"
# (kind, owner connection id, owner account tag: absent in names of release 0.1.0)
_LEFTOVER = re.compile(r"^plakar_(restore|old)_(\d+)_\d+(?:_([0-9a-f]{8}))?$")
_IDENT = r"(?:`(?:[^`\n]|``)+`|[0-9A-Za-z_$\u0080-\uffff]+)"
# SHOW CREATE TRIGGER's statement, up to where the trigger's table is named.
_TRIGGER_HEAD = re.compile(
    r"^(CREATE\s+(?:DEFINER=(?:CURRENT_USER|`(?:[^`]|``)*`@`(?:[^`]|``)*`)\s+)?TRIGGER\s+)"
    r"(" + _IDENT + r"\s+(?i:BEFORE|AFTER)\s+(?i:INSERT|UPDATE|DELETE)\s+(?i:ON)\s+)"
)

# A table is referenced by a foreign key: it cannot be dropped (MariaDB, MySQL).
_REFERENCED = (1451, 3730)

#: Per shadow database, per trigger: the database qualifiers its name and table
#: were typed with (dropped to load it into the shadow; see loader.TriggerRewriter).
Qualifiers: TypeAlias = Mapping[str, Mapping[str, tuple[str, str]]]

# MySQL character sets as Python codecs: a trigger is sent in the one it was made with.
_CODECS = {"utf8mb4": "utf-8", "utf8mb3": "utf-8", "utf8": "utf-8", "latin1": "cp1252"}
_CODECS |= {"ascii": "ascii", "binary": "utf-8", "ucs2": "utf-16-be", "utf16": "utf-16-be"}


class Noter(Protocol):
    """Told, as the restore goes, what must be undone if its process dies."""

    def update(self, **changes: Any) -> None: ...


class SwapError(PlakarMySQLError, RuntimeError):
    """The swap failed; one line for the user, saying what state the target is in."""


def owner_tag(account: str) -> str:
    """Eight hex digits naming ``account`` (``CURRENT_USER()``) in the names of the
    databases a restore makes: an account that cannot see other accounts' sessions
    (no ``PROCESS``) can still tell its own leftovers, whose sessions it does see."""
    return hashlib.sha256(account.encode("utf-8")).hexdigest()[:8]


def _requalified(statement: str, typed: tuple[str, str]) -> str:
    """A trigger's statement with the qualifiers of its name and table put back."""
    match = _TRIGGER_HEAD.match(statement)
    if match is None:
        return statement
    return match[1] + typed[0] + match[2] + typed[1] + statement[match.end() :]


def _q(*names: str) -> str:
    return ".".join(quote_identifier(name) for name in names)


@dataclass(frozen=True)
class Trigger:
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

    def __init__(self, db: Connection, log: Log, bound: int, rollback: Noter | None = None) -> None:
        self._db = db
        self._log = log
        self._bound = bound
        self._rollback = rollback  # told what the guardian must undo if the plugin dies
        session, account = self._rows("SELECT CONNECTION_ID(), CURRENT_USER()")[0]
        self._session = int(session)
        self._tag = owner_tag(str(account))
        self._shadows: dict[str, str] = {}  # target -> its shadow
        self._targets: dict[str, str] = {}  # target -> CREATE DATABASE options if missing
        self._trash: dict[str, str] = {}  # database of the tables moved aside -> its target
        self.swapped = False

    def _note(self, **changes: Any) -> None:
        """Tell the guardian's undo action what changed (see :mod:`.rollback`)."""
        if self._rollback is not None:
            self._rollback.update(**changes)

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
            shadow = f"{SHADOW_PREFIX}{self._session}_{len(self._shadows) + 1}_{self._tag}"
            if self._exists(target):
                create = str(self._rows(f"SHOW CREATE DATABASE {_q(target)}")[0][1])
                create_options = create[len("CREATE DATABASE ") + len(_q(target)) :]
            self._rows(f"CREATE DATABASE {_q(shadow)}{create_options}")
            self._shadows[target] = shadow
            self._note(shadows=tuple(sorted(self._shadows.items())))
            self._log(f"loading {target!r} into the shadow database {shadow!r}")
        return shadow

    # -- the swap ------------------------------------------------------------------

    def swap(
        self, qualifiers: Qualifiers | None = None, cancelled: Callable[[], bool] | None = None
    ) -> None:
        """Create missing targets, swap every shadow table in, then put triggers,
        foreign keys right and drop the tables moved aside."""
        created = [t for t in sorted(self._targets) if not self._exists(t)]
        self._note(created=tuple(created))
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
        new_triggers: list[Trigger] = []
        old_triggers: list[Trigger] = []
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
                trash = f"{OLD_PREFIX}{self._session}_{len(self._trash) + 1}_{self._tag}"
                self._trash[trash] = target
                self._note(aside=tuple(self._trash))
                self._rows(f"CREATE DATABASE {_q(trash)}")
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
        dropped: list[Trigger] = []
        try:
            # The server moves no table with triggers to another database: the
            # replaced tables lose theirs just before the swap (and get them back
            # if it fails).
            self._note(old_triggers=tuple(old_triggers))
            for trigger in old_triggers:
                self._rows(f"DROP TRIGGER {_q(trigger.schema, trigger.name)}")
                dropped.append(trigger)
            if moves:
                self._rows(
                    "RENAME TABLE " + ", ".join(f"{_q(a, b)} TO {_q(c, d)}" for a, b, c, d in moves)
                )
        except pymysql.err.MySQLError as exc:
            lost = self._recreate(dropped)
            self._note(old_triggers=())
            self._undo_created(created)
            raise self._refused(exc, replaced, lost) from exc
        self.swapped = True
        self._note(old_triggers=())
        swapped = sum(1 for a, *_ in moves if a in self._shadows.values())
        self._log(f"swapped in {swapped} table(s) in one statement")
        self._finish(new_triggers, replaced, qualifiers)
        if views:
            self._rows("DROP VIEW " + ", ".join(_q(*view) for view in views))

    def _finish(
        self, new_triggers: list[Trigger], replaced: list[tuple[str, str]], qualifiers: Qualifiers
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
            # With the checks on, the server refuses to drop a table that a key
            # still references: one this account could not see (information_schema
            # hides a table on which it holds only SELECT) is left dangling otherwise.
            self._rows("SET SESSION foreign_key_checks = 1")
            for trash in sorted(self._trash):
                self._rows(f"DROP DATABASE {_q(trash)}")
                del self._trash[trash]
            self._note(aside=())
        except pymysql.err.MySQLError as exc:
            where = f" ({holders(self._db, replaced)})" if is_lock_timeout(exc) else ""
            if exc.args and exc.args[0] in _REFERENCED:
                where = (
                    " (a key still references one of them: a table outside the restore, "
                    "maybe one on which this account holds no privilege but SELECT)"
                )
            kept = ", ".join(sorted(self._trash))
            self._drop_shadows(quietly=True)  # emptied by the swap
            raise SwapError(
                f"the tables were swapped in, but {step} failed: {exc.args[-1]}{where}; "
                f"the replaced tables not dropped are kept in {kept} (no restore drops them: "
                "DROP DATABASE each once they are no longer needed)"
            ) from exc
        self._drop_shadows(quietly=False)

    def _drop_shadows(self, *, quietly: bool) -> None:
        """Drop the shadow databases, empty once swapped in (``quietly``: a failure
        is not raised, the restore is already failing)."""
        for shadow in sorted(self._shadows.values()):
            try:
                self._rows(f"DROP DATABASE {_q(shadow)}")
            except (pymysql.err.MySQLError, OSError):
                if not quietly:
                    raise
        self._shadows.clear()
        self._note(shadows=())

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

    def _recreate(self, dropped: list[Trigger]) -> list[tuple[Trigger, str]]:
        """Create the replaced tables' triggers again after a failed swap; return those
        that could not be, with why (each one's definition is logged, to be run by hand)."""
        lost: list[tuple[Trigger, str]] = []
        for trigger in dropped:
            try:
                self._create_trigger(trigger, trigger.schema)
            except (pymysql.err.MySQLError, OSError) as exc:
                why = str(exc.args[-1]) if exc.args else str(exc)
                lost.append((trigger, why))
                self._log(
                    f"trigger {trigger.schema}.{trigger.table}.{trigger.name} could not be "
                    f"created again ({why}); its definition (sql_mode {trigger.sql_mode!r}, "
                    f"character set {trigger.charset}):\n{trigger.statement}"
                )
        return lost

    def _refused(
        self,
        exc: pymysql.err.MySQLError,
        targets: list[tuple[str, str]],
        lost: list[tuple[Trigger, str]] | None = None,
    ) -> SwapError:
        """The swap failed before it changed anything but the triggers named in
        ``lost``; say why, naming a lock's holder, and exactly what changed."""
        state = "the target is as it was"
        if lost:
            names = ", ".join(f"{t.schema}.{t.name} (on {t.table})" for t, _ in lost)
            state = (
                f"the target is as it was except that the triggers {names} are gone: they "
                f"could not be created again ({lost[0][1]}); their definitions are in the log"
            )
        if is_lock_timeout(exc):
            names = ", ".join(f"{t}.{n}" for t, n in targets[:8])
            return SwapError(
                f"could not replace {names}: {holders(self._db, targets)}; gave up after "
                f"{self._bound} s (lock_wait_timeout): nothing was restored, {state}"
            )
        return SwapError(
            f"swapping the restored tables in failed: {exc.args[-1]}: nothing was restored, {state}"
        )

    def _undo_created(self, created: Iterable[str]) -> None:
        for target in created:
            with contextlib.suppress(pymysql.err.MySQLError):
                self._rows(f"DROP DATABASE {_q(target)}")
        self._note(created=())

    def _target_of(self, shadow: str) -> str:
        return next(t for t, s in self._shadows.items() if s == shadow)

    def _triggers(self, shadow: str) -> list[Trigger]:
        found = []
        for table, name, sql_mode, charset, collation in self._rows(
            "SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME, SQL_MODE, CHARACTER_SET_CLIENT,"
            " COLLATION_CONNECTION FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s"
            " ORDER BY EVENT_OBJECT_TABLE, EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER",
            [shadow],
        ):
            statement = str(self._rows(f"SHOW CREATE TRIGGER {_q(shadow, name)}")[0][2])
            found.append(Trigger(shadow, table, name, sql_mode, charset, collation, statement))
        return found

    def _create_trigger(self, trigger: Trigger, target: str) -> None:
        create_trigger(self._db, trigger, target)

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
        self._note(aside=())
        left = {}
        for target, shadow in sorted(self._shadows.items()):
            try:
                self._rows(f"DROP DATABASE IF EXISTS {_q(shadow)}")
                self._log(f"dropped the shadow database {shadow!r}: {target!r} is as it was")
            except (pymysql.err.MySQLError, OSError) as exc:
                self._log(f"could not drop the shadow database {shadow!r}: {exc}")
                left[target] = shadow
        self._shadows.clear()
        self._note(shadows=tuple(sorted(left.items())))  # the guardian tries again


def create_trigger(db: Connection, trigger: Trigger, target: str) -> None:
    """Create ``trigger`` in ``target`` with the session state it was made with."""
    codec = _CODECS.get(trigger.charset)
    charset = trigger.charset if codec else "utf8mb4"
    with db.cursor() as cursor:
        cursor.execute("SELECT @@SESSION.sql_mode")
        (mode,) = cursor.fetchall()[0]
        db.select_db(target)
        try:
            cursor.execute(
                "SET SESSION sql_mode = %s, character_set_client = %s, collation_connection = %s",
                [trigger.sql_mode, charset, trigger.collation if codec else "utf8mb4_general_ci"],
            )
            db.query(trigger.statement.encode(codec or "utf-8"))
        finally:
            cursor.execute(
                "SET SESSION sql_mode = %s, character_set_client = utf8mb4,"
                " collation_connection = utf8mb4_general_ci",
                [mode],
            )


def sees_every_session(db: Connection) -> bool:
    """Whether the account holds the global ``PROCESS`` privilege in effect, without
    which the process list shows only its own sessions.

    The server is asked to decide, not a table of grants read and matched by
    hand: ``SHOW ENGINE INNODB STATUS`` needs exactly that privilege, and the
    server counts it from wherever it comes - the account's own grants, its
    active roles (nested ones too) and ``PUBLIC`` - as it does for the process
    list.  (Reading ``USER_PRIVILEGES`` unfiltered saw root's row from any
    account that may read ``mysql.*``.)  Any error means: not proven."""
    try:
        with db.cursor() as cursor:
            cursor.execute("SHOW ENGINE INNODB STATUS")
            cursor.fetchall()
    except pymysql.err.MySQLError:
        return False
    return True


@dataclass(frozen=True)
class _Leftover:
    """A database named like a restore's, with what the process list says of its owner."""

    name: str
    kind: str  # "restore" (a shadow) or "old" (tables moved aside)
    owner: int  # the connection id that made it
    tag: str | None  # the owner account's tag (None: a name of release 0.1.0)


def _leftovers(names: Iterable[str]) -> list[_Leftover]:
    found = []
    for name in names:
        match = _LEFTOVER.match(name)
        if match is not None:
            found.append(_Leftover(name, match[1], int(match[2]), match[3]))
    return found


def drop_leftovers(db: Connection, log: Log) -> None:
    """Drop what restores killed before their clean-up left, once it is proven abandoned.

    A database is abandoned when the connection that made it (its name carries
    the connection id) is gone and no session uses it.  That is proven only when
    every session that could own it is visible: all of them with the ``PROCESS``
    privilege (:func:`sees_every_session`), or those of this account, which the
    name's account tag designates.  Anything else may be another account's
    running restore: it is left, and named.  A ``plakar_old_*`` database that
    holds tables is never dropped: they are the target's tables a restore
    replaced and could not drop (the user was told they are kept), or those of a
    restore stopped mid-swap; the DBA drops it."""
    with db.cursor() as cursor:
        # The names first, then the sessions: a database listed here was made by a
        # session that existed before the process list is read.
        cursor.execute(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"
            " WHERE SCHEMA_NAME LIKE 'plakar\\_restore\\_%' OR SCHEMA_NAME LIKE 'plakar\\_old\\_%'"
            " ORDER BY SCHEMA_NAME"
        )
        found = _leftovers(name for (name,) in cursor.fetchall())
        if not found:
            return
        cursor.execute("SELECT CURRENT_USER()")
        mine = owner_tag(str(cursor.fetchall()[0][0]))
        every = sees_every_session(db)
        cursor.execute("SELECT ID, DB FROM information_schema.PROCESSLIST")
        sessions = cursor.fetchall()
        alive = {int(ident) for ident, _ in sessions}
        in_use = {schema for _, schema in sessions if schema}
        undecided: list[str] = []
        kept: list[str] = []
        for leftover in found:
            if leftover.owner in alive or leftover.name in in_use:
                continue  # a restore still running
            if not every and leftover.tag != mine:
                undecided.append(leftover.name)
                continue
            if leftover.kind == "old" and _holds_tables(cursor, leftover.name):
                kept.append(leftover.name)
                continue
            try:
                cursor.execute(f"DROP DATABASE IF EXISTS {_q(leftover.name)}")
            except pymysql.err.MySQLError as exc:  # not this restore's concern: say, go on
                log(f"could not drop {leftover.name!r}, left by an interrupted restore: {exc}")
                continue
            log(f"dropped {leftover.name!r}, left behind by an interrupted restore")
    if kept:
        log(
            f"kept {', '.join(kept)}: the tables an earlier overwrite restore replaced and "
            "could not drop (a step after its swap failed, or it was stopped); no restore "
            "drops them: once they are no longer needed, DROP DATABASE each"
        )
    if undecided:
        log(
            f"left {', '.join(undecided)}: made by another account's session, which this "
            "account cannot see (it lacks the PROCESS privilege): it may still be restoring"
        )


def _holds_tables(cursor: pymysql.cursors.Cursor, schema: str) -> bool:
    cursor.execute(
        "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s LIMIT 1", [schema]
    )
    return bool(cursor.fetchall())
