"""What an interrupted logical restore leaves undone: the guardian's undo action.

Plakar kills a plugin with SIGKILL when it is cancelled (Ctrl-C, SIGTERM), so
a restore cannot clean up after itself: the SDK's guardian process does it
(:mod:`kloset_sdk.guard`), running the action registered here if the plugin
ends before the restore has released it.  The action is one picklable value,
:class:`Undo`, that says what the restore has done so far; the restore
registers a fresh one each time that changes (:class:`Rollback`), the new one
before the old is discarded, so that there is always one, and running an older
one as well does no harm: every step looks at the server before it acts and
undoes only what is still the restore's.

What it undoes, in this order, once the restore's own session and those of
its loading clients are gone (waited for within the lock bound, then killed:
they are the restore's, the plugin that drove them is dead):

1. the target's triggers an overwrite dropped just before its swap, created
   again when the swap did not happen (the shadow still holds the tables);
2. the tables a restore into new tables moved in from its shadow (those the
   shadow no longer holds: the ``RENAME TABLE`` is all or nothing) or loaded
   straight into the target, and the views, routines and events it created:
   none of them existed before, the restore checked;
3. its shadow databases (``plakar_restore_<session>_...``: made by the
   restore's own session, whose id they carry; once swapped they are empty);
4. the target databases it created, and the ``plakar_old_*`` databases made
   for the tables an overwrite moves aside, if they are empty then (a
   ``plakar_old_*`` database holding tables is the DBA's: see
   :func:`plakar_mysql.logical.shadow.drop_leftovers`).

Tables an overwrite restore swapped in stay: the same command run again
replaces them again, and finishes what the interrupted one did not.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

import pymysql

from kloset_sdk.guard import Guard
from plakar_mysql.core import options
from plakar_mysql.core.locks import bounds_sql
from plakar_mysql.core.server import connect, quote_identifier
from plakar_mysql.logical.shadow import Trigger, create_trigger

Connection: TypeAlias = "pymysql.connections.Connection[Any]"

#: Seconds the undo waits for the restore's sessions to end before it kills them.
SESSION_WAIT = 5.0
#: Kinds of objects besides tables, as DROP names them.
OBJECT_KINDS = ("VIEW", "PROCEDURE", "FUNCTION", "EVENT")


def _q(*names: str) -> str:
    return ".".join(quote_identifier(name) for name in names)


@dataclass(frozen=True)
class Undo:
    """What a restore has done to the server that must not outlive it."""

    conn: options.Connection
    session: int  # CONNECTION_ID() of the restore's own connection
    bound: int  # lock_wait_timeout, seconds
    shadows: tuple[tuple[str, str], ...] = ()  # (target, its shadow database)
    created: tuple[str, ...] = ()  # target databases the swap created
    made: tuple[str, ...] = ()  # target databases created before it (straight loads)
    new_tables: tuple[tuple[str, str], ...] = ()  # (target, table) that did not exist before
    objects: tuple[tuple[str, str, str], ...] = ()  # (target, kind, name) that did not exist
    old_triggers: tuple[Trigger, ...] = ()  # dropped before the swap
    aside: tuple[str, ...] = ()  # plakar_old_* databases made for the tables moved aside

    def __call__(self) -> None:
        undo(self)

    def describe(self) -> str:
        """What running it does, for the guardian's one line."""
        parts = []
        if self.old_triggers:
            parts.append(f"{len(self.old_triggers)} trigger(s) of the target put back")
        if self.new_tables or self.objects:
            targets = sorted({t for t, _ in self.new_tables} | {t for t, _, _ in self.objects})
            parts.append(f"what it had restored into {', '.join(map(_q, targets))} dropped")
        if self.shadows:
            parts.append(f"shadow database(s) {', '.join(_q(s) for _, s in self.shadows)} dropped")
        if self.created or self.made or self.aside:
            made = ", ".join(map(_q, (*self.created, *self.made, *self.aside)))
            parts.append(f"database(s) {made} dropped if empty")
        return "undid the interrupted MySQL restore: " + ("; ".join(parts) or "nothing to undo")

    @property
    def empty(self) -> bool:
        return not (
            self.shadows
            or self.created
            or self.made
            or self.new_tables
            or self.objects
            or self.old_triggers
            or self.aside
        )


class Rollback:
    """The :class:`Undo` of one restore, registered with the guard and kept up to date."""

    def __init__(self, guard: Guard, undo: Undo) -> None:
        self._guard = guard
        self.state = undo
        self._token: int | None = None

    def update(self, **changes: Any) -> None:
        """Register the state with ``changes``, then discard the previous one."""
        state = replace(self.state, **changes)
        token = None if state.empty else self._guard.on_exit(state, state.describe())
        if self._token is not None:
            self._guard.discard(self._token)
        self.state, self._token = state, token

    def release(self) -> None:
        """The restore finished (or undid itself): nothing is left to undo."""
        if self._token is not None:
            self._guard.discard(self._token)
        self._token = None
        self.state = Undo(self.state.conn, self.state.session, self.state.bound)


def undo(state: Undo) -> None:
    """Undo what ``state`` says, each step checked against the server (see the module)."""
    with contextlib.closing(connect(state.conn)) as db:
        # Every wait bounded: reads, lock waits, and the sessions awaited.
        db._read_timeout = db._write_timeout = state.bound + 30  # type: ignore[attr-defined]
        _rows(db, bounds_sql(state.bound))
        shadows = dict(state.shadows)
        _end_sessions(db, state.session, set(shadows.values()))
        for trigger in state.old_triggers:
            shadow = shadows.get(trigger.schema)
            if shadow and _holds(db, shadow, trigger.table) and not _trigger_exists(db, trigger):
                create_trigger(db, trigger, trigger.schema)
        for target, table in state.new_tables:
            shadow = shadows.get(target)
            if shadow is None or not _holds(db, shadow, table):  # moved in, or loaded there
                _rows(db, f"DROP TABLE IF EXISTS {_q(target, table)}")
        for target, kind, name in state.objects:
            _rows(db, f"DROP {kind} IF EXISTS {_q(target, name)}")
        for shadow in shadows.values():
            _rows(db, f"DROP DATABASE IF EXISTS {_q(shadow)}")
        for database in (*state.created, *state.made, *state.aside):
            if _is_empty(db, database):
                _rows(db, f"DROP DATABASE IF EXISTS {_q(database)}")


def _rows(db: Connection, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    with db.cursor() as cursor:
        cursor.execute(sql, tuple(args) or None)
        return list(cursor.fetchall())


def _sessions(db: Connection, session: int, shadows: set[str]) -> list[int]:
    """The restore's own session and those using one of its shadows (its clients)."""
    return [
        int(ident)
        for ident, schema in _rows(db, "SELECT ID, DB FROM information_schema.PROCESSLIST")
        if int(ident) == session or schema in shadows
    ]


def _end_sessions(db: Connection, session: int, shadows: set[str]) -> None:
    """Wait (bounded) until the restore's sessions are gone; kill those left.  A
    statement still running (a client's last batch, the swap) ends first."""
    deadline = time.monotonic() + SESSION_WAIT
    while (left := _sessions(db, session, shadows)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for ident in left:
        with contextlib.suppress(pymysql.err.MySQLError):
            _rows(db, f"KILL {int(ident)}")
    deadline = time.monotonic() + SESSION_WAIT
    while _sessions(db, session, shadows) and time.monotonic() < deadline:
        time.sleep(0.1)


def _holds(db: Connection, schema: str, table: str) -> bool:
    return bool(
        _rows(
            db,
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            [schema, table],
        )
    )


def _trigger_exists(db: Connection, trigger: Trigger) -> bool:
    return bool(
        _rows(
            db,
            "SELECT 1 FROM information_schema.TRIGGERS"
            " WHERE TRIGGER_SCHEMA = %s AND TRIGGER_NAME = %s",
            [trigger.schema, trigger.name],
        )
    )


def _is_empty(db: Connection, database: str) -> bool:
    """No table, view, routine or event in ``database``."""
    return not any(
        _rows(db, sql, [database])
        for sql in (
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s LIMIT 1",
            "SELECT 1 FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s LIMIT 1",
            "SELECT 1 FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s LIMIT 1",
        )
    )


def routine_objects(target: str, names: Iterable[str]) -> Iterator[tuple[str, str, str]]:
    """``(target, kind, name)`` of an inventory's ``"PROCEDURE name"`` entries."""
    for entry in names:
        kind, _, name = entry.partition(" ")
        if kind in OBJECT_KINDS:
            yield target, kind, name
