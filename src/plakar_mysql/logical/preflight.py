"""Checks a logical restore makes before it loads anything.

The target must not already hold an object the restore writes, unless
``overwrite=true`` (:class:`Preflight` for a per-object snapshot, checked for
each database as soon as its inventory is known; :func:`existing` for a
single dump as well).  The server's own rules are checked too, each turning an
error that would otherwise stop the restore half-way (a table or a grant at a
time, after others have loaded) into one line before the first statement that
writes:

- a target that writes a binary log refuses to create a stored function or a
  trigger (ERROR 1419) unless the account holds ``SUPER`` or the server sets
  ``log_bin_trust_function_creators``;
- an ``overwrite=true`` restore creates its shadow databases
  (``plakar_restore_<session>_<n>``) and the databases of the tables it moves
  aside (``plakar_old_<session>_<n>``): without the privileges on those names
  the server answers ERROR 1044 at the first table.

Privileges held through active roles or granted to ``PUBLIC`` count
(:mod:`plakar_mysql.core.grants`).  The definers of the snapshot's views,
routines, triggers and events that the target lacks are said, not refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pymysql

from plakar_mysql.core.grants import Grants, session_grants
from plakar_mysql.core.options import Connection
from plakar_mysql.core.server import ServerError, current_user
from plakar_mysql.logical.layout import Inventory
from plakar_mysql.logical.target import RestoreError, Target, log, names

#: Databases an overwrite restore creates, as sample names, and what it does in them.
OVERWRITE_DATABASES = (
    ("plakar_restore_1_1", "plakar\\_restore\\_%"),
    ("plakar_old_1_1", "plakar\\_old\\_%"),
)
OVERWRITE_PRIVILEGES = ("CREATE", "DROP", "ALTER", "INSERT", "SELECT")


def _one(db: Any, sql: str) -> Any:
    with db.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
        return None if row is None else row[0]


def binlogged_code(inventories: Sequence[Inventory]) -> list[str]:
    """The stored functions and triggers of ``inventories``, as ``db.name``: the
    objects a server that writes a binary log guards with ERROR 1419."""
    found = []
    for inventory in inventories:
        for routine in inventory.routines:
            kind, _, name = routine.partition(" ")
            if kind == "FUNCTION":
                found.append(f"function {inventory.database}.{name}")
        found += [f"trigger {inventory.database}.{name}" for name in inventory.triggers]
    return found


def check_code_creation(
    db: Any, grants: Grants, inventories: Sequence[Inventory], who: str, address: str
) -> None:
    """Refuse when the target writes a binary log and would refuse the snapshot's
    functions or triggers to this account."""
    code = binlogged_code(inventories)
    if not code or not _one(db, "SELECT @@log_bin"):
        return
    if _one(db, "SELECT @@log_bin_trust_function_creators") or grants.has("SUPER"):
        return
    more = f" and {len(code) - 3} more" if len(code) > 3 else ""
    raise ServerError(
        f"{address} writes a binary log (log_bin=ON) and {who} lacks SUPER, so it may not "
        f"create the snapshot's {', '.join(code[:3])}{more} (ERROR 1419): GRANT SUPER ON *.* "
        f"TO {who}, or SET GLOBAL log_bin_trust_function_creators = ON; nothing was restored"
    )


def check_overwrite_grants(grants: Grants, who: str) -> None:
    """Refuse an ``overwrite=true`` restore whose account may not create, fill and
    drop the shadow databases and the databases of the tables moved aside."""
    lacking, fixes = [], []
    for sample, pattern in OVERWRITE_DATABASES:
        missing = [p for p in OVERWRITE_PRIVILEGES if not grants.has(p, sample)]
        if missing:
            lacking.append(f"{', '.join(missing)} ON `{pattern}`.*")
            fixes.append(f"GRANT ALL PRIVILEGES ON `{pattern}`.* TO {who}")
    if lacking:
        raise ServerError(
            f"overwrite=true loads into shadow databases, and {who} lacks "
            f"{'; '.join(lacking)} ({'; '.join(fixes)}); nothing was restored"
        )


def check_restore(
    db: Any, inventories: Sequence[Inventory], overwrite: bool, conn: Connection
) -> None:
    """Every check above, for a restore of ``inventories`` through session ``db``
    (connected as ``conn`` says)."""
    grants = session_grants(db)
    who = current_user(db)
    if overwrite:
        check_overwrite_grants(grants, who)
    check_code_creation(db, grants, inventories, who, conn.address)


def may_shadow(db: Any) -> bool:
    """Whether the session may create, fill and drop ``plakar_restore_*`` databases."""
    grants = session_grants(db)
    sample = OVERWRITE_DATABASES[0][0]
    return all(grants.has(privilege, sample) for privilege in OVERWRITE_PRIVILEGES)


# -- objects the target already holds ------------------------------------------------


def existing(target: Target, database: str, inventory: Inventory | None) -> list[str]:
    """What ``database`` of the target already holds of ``inventory``'s tables,
    views, routines and events (``None``: a dump that may write any table, so
    every table and view it holds), as names for a message."""
    if not target.database_exists(database):
        return []
    relations = {
        name
        for (name,) in target.query(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
            [database],
        )
    }
    if inventory is None:
        return sorted(relations)
    found = sorted(relations & {*inventory.tables, *inventory.views})
    if inventory.routines:
        routines = {
            f"{kind} {name}"
            for kind, name in target.query(
                "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES"
                " WHERE ROUTINE_SCHEMA = %s",
                [database],
            )
        }
        found += sorted(routines & set(inventory.routines))
    if inventory.events:
        events = {
            name
            for (name,) in target.query(
                "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s",
                [database],
            )
        }
        found += sorted(f"EVENT {e}" for e in events & set(inventory.events))
    return found


def refuse_existing(held: dict[str, list[str]]) -> None:
    """Refuse the restore if a target database already holds what it would write."""
    conflicts = [f"{database!r} already holds {names(found)}" for database, found in held.items()]
    if conflicts:
        raise RestoreError(
            f"{'; '.join(conflicts)}: nothing was restored; restore into another database, "
            "or set overwrite=true"
        )


class Preflight:
    """The checks of a per-object restore, as each database's inventory arrives."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._warned: set[str] = set()  # definers already checked

    def check(
        self, inventories: list[Inventory], fresh: list[Inventory], *, complete: bool
    ) -> None:
        """Refuse if the target holds any object of ``fresh`` (those of
        ``inventories`` not checked before), or if the server would refuse what
        ``inventories`` create; ``complete``: whole databases, not one file."""
        target = self._target
        held: dict[str, list[str]] = {}
        for inventory in fresh:
            database = target.database_for(inventory.database)
            found = existing(target, database, inventory)
            if found:
                held[database] = found
        if not target.overwrite:
            refuse_existing(held)
        check_restore(target.connection(), inventories, target.overwrite, target.config.connection)
        if complete:
            self._warn_definers(inventories)

    def check_table(self, source: str, table: str) -> None:
        """Refuse if the target already holds ``table`` (of a database not checked whole)."""
        database = self._target.database_for(source)
        if not self._target.overwrite and self._target.query(
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            [database, table],
        ):
            refuse_existing({database: [table]})

    def _warn_definers(self, inventories: list[Inventory]) -> None:
        if self._target.config.definer == "current":
            return
        wanted = {d for inventory in inventories for d in inventory.definers} - self._warned
        self._warned |= wanted
        if not wanted:
            return
        try:
            accounts = {
                f"{u}@{h}" for u, h in self._target.query("SELECT User, Host FROM mysql.user")
            }
        except pymysql.err.MySQLError:
            log("could not read mysql.user to check the definers of views, routines and triggers")
            return
        missing = sorted(wanted - accounts)
        if missing:
            log(
                f"warning: definer {names(missing)} does not exist on the target: the objects "
                "it defines will load but fail when used; set definer=current to define them "
                "as the restoring account, or users=true if the snapshot holds the accounts"
            )
