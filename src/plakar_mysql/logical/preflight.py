"""Checks a logical restore makes before it loads anything: the server's own rules.

Each one turns an error that would otherwise stop the restore half-way (a
table or a grant at a time, after others have loaded) into one line before
the first statement that writes:

- a target that writes a binary log refuses to create a stored function or a
  trigger (ERROR 1419) unless the account holds ``SUPER`` or the server sets
  ``log_bin_trust_function_creators``;
- an ``overwrite=true`` restore creates its shadow databases
  (``plakar_restore_<session>_<n>``) and the databases of the tables it moves
  aside (``plakar_old_<session>_<n>``): without the privileges on those names
  the server answers ERROR 1044 at the first table.

Privileges held through active roles or granted to ``PUBLIC`` count
(:mod:`plakar_mysql.core.grants`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from plakar_mysql.core.grants import Grants, session_grants
from plakar_mysql.core.options import Connection
from plakar_mysql.core.server import ServerError, current_user
from plakar_mysql.logical.layout import Inventory

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
