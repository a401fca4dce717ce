"""The server a logical restore writes into, shared by every part of the restore.

One :class:`Target` per restore holds its connection (opened on first use,
bounded in its lock waits, refused on a read-only server), the dump client
that loads files, the target database each source database goes to, the
databases it finds or creates, ``max_allowed_packet`` raised for the
snapshot's rows (and put back at the end), and what the guardian undoes if
the restore stops (:mod:`plakar_mysql.logical.rollback`).  The per-object
restore (:mod:`plakar_mysql.logical.restorer`) and the single-dump path
(:mod:`plakar_mysql.logical.restore`) both go through it.

No connection is shared between threads: the target's own connection belongs
to the thread that handles Plakar's files; a load failing in a worker thread
asks who holds the lock on a short-lived connection of its own.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

import pymysql

from kloset_sdk.guard import Guard
from plakar_mysql.core.client import Client, LoadError
from plakar_mysql.core.errors import PlakarMySQLError
from plakar_mysql.core.flavour import find_tool
from plakar_mysql.core.locks import bounds_sql, holders
from plakar_mysql.core.option_models import LogicalRestoreOptions
from plakar_mysql.core.server import (
    ServerError,
    ServerInfo,
    connect,
    error_text,
    quote_identifier,
    server_info,
)
from plakar_mysql.logical.rollback import Rollback, Undo, undo

Connection: TypeAlias = "pymysql.connections.Connection[Any]"


class RestoreError(PlakarMySQLError, RuntimeError):
    """The restore cannot go on; one line for the user."""


log = logging.getLogger(__name__).info
"""Progress and notices of the restore, as ``plakar-mysql: <message>`` lines."""


def names(items: Iterable[str], limit: int = 8) -> str:
    """Names for a one-line message: a name with a line break or other control
    character is shown quoted and escaped."""
    items = [item if item.isprintable() else repr(item) for item in items]
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def create_options(character_set: str | None, collation: str | None) -> str:
    """What follows a database's name in CREATE DATABASE for a character set and
    collation (nothing unless both are known)."""
    if character_set and collation:
        return f" CHARACTER SET {character_set} COLLATE {collation}"
    return ""


class Target:
    """The target server of one restore, and ``name``, the database of the URI (if any)."""

    def __init__(
        self,
        config: LogicalRestoreOptions,
        name: str | None,
        guard: Guard,
        on_connect: Callable[[Target], None] | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self.guard = guard
        self.overwrite = config.overwrite
        self.lock_wait = config.lock_wait_timeout
        self._on_connect = on_connect  # told once connected, before any load
        self._db: Connection | None = None
        self._server: ServerInfo | None = None
        self._client: Client | None = None
        self._sources: set[str] = set()
        self._existing: set[str] = set()  # databases known to exist
        self.rollback: Rollback | None = None  # what the guardian undoes if the plugin dies
        self._done = False
        self._packet_raised = False
        self._packet_to_restore: tuple[int, int] | None = None  # (what it was, what we set)

    # -- the connection ------------------------------------------------------------

    def connection(self) -> Connection:
        if self._db is None:
            self._db = connect(self.config.connection)
            self.query(bounds_sql(self.lock_wait))
            self._server = server_info(self._db)
            if self._server.read_only:
                # Even an account allowed to write through read_only should not:
                # a read-only server is most often a replica.
                raise RestoreError(
                    f"{self.config.connection.address} is read-only (read_only=ON, a "
                    "replica?): nothing was restored; restore elsewhere or turn read_only off"
                )
            if self._on_connect is not None:
                self._on_connect(self)
            ((session,),) = self.query("SELECT CONNECTION_ID()")
            self.rollback = Rollback(
                self.guard, Undo(self.config.connection, int(session), self.lock_wait)
            )
        return self._db

    @property
    def server(self) -> ServerInfo:
        self.connection()
        assert self._server is not None
        return self._server

    def query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self.connection().cursor() as cursor:
            # No arguments must mean None: PyMySQL would expand "%" in the SQL.
            cursor.execute(sql, tuple(args) or None)
            return list(cursor.fetchall())

    def client(self) -> Client:
        if self._client is None:
            flavour = self.server.flavour
            tool = find_tool(flavour.client_names, flavour, self.config.connection.bin_dir)
            self._client = Client(
                tool,
                self.config.connection,
                force=self.config.force,
                init_command=bounds_sql(self.lock_wait),
                guard=self.guard,
            )
        return self._client

    def load_error(self, exc: LoadError, targets: Iterable[str]) -> RestoreError:
        """A failed load as one line; a lock wait that ran out names the lock's holder.
        Called from loader threads too: the holder is asked on a connection of its own."""
        message = str(exc)
        if "ERROR 1205" in message:
            objects = [(target, "") for target in targets]
            try:
                with contextlib.closing(connect(self.config.connection)) as db:
                    where = holders(db, objects)
            except ServerError as error:
                where = f"the lock holder could not be read ({error})"
            message += f" (waited {self.lock_wait} s, lock_wait_timeout; {where})"
        return RestoreError(message)

    # -- databases -----------------------------------------------------------------

    def database_for(self, source: str) -> str:
        """The target database of the snapshot's database ``source``."""
        self._sources.add(source)
        if self.name is not None and len(self._sources) > 1:
            raise RestoreError(
                f"these files come from several databases ({names(sorted(self._sources))}): "
                "restore one database into another name, or restore without a database in the URI"
            )
        return self.name or source

    def database_exists(self, database: str) -> bool:
        if database in self._existing:
            return True
        if self.query(
            "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", [database]
        ):
            self._existing.add(database)
            return True
        return False

    def create_database(self, database: str, options: str) -> None:
        """CREATE DATABASE ``database`` followed by ``options`` (see :func:`create_options`)."""
        self.query(f"CREATE DATABASE {quote_identifier(database)}{options}")
        self._existing.add(database)

    # -- max_allowed_packet --------------------------------------------------------

    def fit_packet(self, needed: int) -> None:
        """Raise the target's max_allowed_packet to the source's, so every dumped row fits."""
        if self._packet_raised:
            return
        self._packet_raised = True
        current = int(self.query("SELECT @@GLOBAL.max_allowed_packet")[0][0])
        if current >= needed:
            return
        try:
            self.query("SET GLOBAL max_allowed_packet = %s", [needed])
            # What the server made of it (it rounds to 1 KiB, caps at 1 GiB).
            (now,) = self.query("SELECT @@GLOBAL.max_allowed_packet")[0]
            self._packet_to_restore = (current, int(now))
            log(
                f"raised max_allowed_packet from {current} to {needed} (the source's value) "
                "until the restore ends"
            )
        except pymysql.err.MySQLError as exc:
            log(
                f"warning: the target's max_allowed_packet ({current}) is below the source's "
                f"({needed}) and could not be raised ({exc.args[-1]}): rows larger than "
                f"{current} bytes will fail to load"
            )

    def _put_packet_back(self) -> None:
        """``max_allowed_packet`` as it was before the restore raised it, unless
        someone changed it since (then it is left, and said).  Never raises."""
        if self._packet_to_restore is None:
            return
        was, raised = self._packet_to_restore
        self._packet_to_restore = None
        try:
            with contextlib.ExitStack() as stack:
                db = self._db or stack.enter_context(
                    contextlib.closing(connect(self.config.connection))
                )
                cursor = stack.enter_context(db.cursor())
                cursor.execute("SELECT @@GLOBAL.max_allowed_packet")
                (now,) = cursor.fetchall()[0]
                if int(now) != raised:
                    log(
                        f"max_allowed_packet was changed to {now} during the restore: "
                        f"left so (it was {was} before)"
                    )
                    return
                cursor.execute("SET GLOBAL max_allowed_packet = %s", [was])
            log(f"put max_allowed_packet back to {was}")
        except (ServerError, pymysql.err.MySQLError, OSError) as exc:
            reason = exc.args[-1] if exc.args else exc
            log(
                f"warning: could not put max_allowed_packet back to {was} ({reason}): "
                f"it is {raised}; SET GLOBAL max_allowed_packet = {was} to put it back"
            )

    # -- what is undone if the restore stops ----------------------------------------

    def note_new(self, **changes: tuple[Any, ...]) -> None:
        """What a restore into new objects has created, added to what the guardian
        (or :meth:`close`, on failure) undoes.  Not with ``overwrite``: what it
        swapped in stays, and the same command again finishes the restore."""
        if self.overwrite or self.rollback is None:
            return
        state = self.rollback.state
        merged = {
            key: tuple(dict.fromkeys((*getattr(state, key), *new))) for key, new in changes.items()
        }
        if any(merged[key] != getattr(state, key) for key in merged):
            self.rollback.update(**merged)

    def done(self) -> None:
        """The restore is complete: nothing is undone from now on, whatever happens."""
        self._done = True
        if self.rollback is not None:
            self.rollback.release()

    def close(self) -> None:
        """Put ``max_allowed_packet`` back, close the connection and, if the restore
        did not complete, undo what may be undone."""
        self._put_packet_back()
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None
        if self.rollback is not None and not self._done:
            self._undo_new(self.rollback)

    def _undo_new(self, rollback: Rollback) -> None:
        """The restore failed: drop what a restore into new objects made (its tables
        moved in, views, routines, events, databases left empty).  Never raises."""
        state = rollback.state
        if not self.overwrite and (
            state.new_tables or state.objects or state.created or state.made
        ):
            try:
                undo(state)
                log(state.describe().replace("the interrupted", "the failed", 1))
            except Exception as exc:  # the guardian tries again when the plugin ends
                reason = error_text(exc) if isinstance(exc, pymysql.err.MySQLError) else exc
                log(f"could not undo the failed restore ({reason})")
                return
        rollback.release()
