"""Restore a per-object snapshot: checked first, tables in parallel, the rest in order.

Plakar hands the files over one at a time, in name order: ``/catalog.json``
first, then per database ``events.sql``, ``routines.sql``, ``schema.sql``,
every table, ``views.sql``.  The :class:`Restorer` answers each as it comes:

* the catalog (or, for one database, ``schema.sql``; for one table, its own
  header) tells what will be written: before anything is written, the target
  is checked for every table, view, routine and event of the same name, and
  the restore is refused if one exists, unless ``overwrite=true``;
* a table is written to a private temporary file as fast as Plakar sends it
  and loaded by one of ``jobs`` clients, each on its own connection, while the
  next tables arrive (with ``jobs=1`` it streams straight into the client); a
  temporary file is taken only when a client is free, so at most ``jobs`` of
  them exist at once.  ``jobs`` (by default the number of CPUs) is capped at
  :data:`MAX_JOBS` and by the connections the server has free;
* with ``overwrite=true`` the tables load into shadow databases and replace
  the target's all at once when every one has loaded (:mod:`plakar_mysql.logical.shadow`):
  a restore that fails or is cancelled leaves the target as it was;
* routines, views, events (and accounts) are kept aside and loaded once every
  table is in, in that order: a view may call a function, and the views of
  all databases get placeholders before any is defined, so a view over a view
  of another database loads whatever the order.

Every session it opens bounds its lock waits (``lock_wait_timeout``); a wait
that runs out fails the restore with the lock's holder named (:mod:`plakar_mysql.core.locks`).
No connection is shared between threads: the restore's own connection belongs
to the thread that handles Plakar's files; a load failing in a worker thread
asks who holds the lock on a short-lived connection of its own.  A
``max_allowed_packet`` raised for the snapshot's rows is put back at the end,
whether the restore succeeds, fails or is cancelled.

``verify=true`` then dumps every restored table again and compares it with the
snapshot's file and its row count.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any, TypeAlias

import pymysql

from kloset_sdk.guard import Guard
from kloset_sdk.records import Content
from plakar_mysql.core.client import Client, DefinerRewriter, LoadError, TriggerRewriter, blocks
from plakar_mysql.core.errors import PlakarMySQLError
from plakar_mysql.core.flavour import Flavour, Tool, find_tool
from plakar_mysql.core.grants import session_grants
from plakar_mysql.core.locks import DEFAULT_LOCK_WAIT_TIMEOUT, bounds_sql, holders
from plakar_mysql.core.options import Config
from plakar_mysql.core.server import (
    ServerError,
    ServerInfo,
    connect,
    error_text,
    quote_identifier,
    server_info,
)
from plakar_mysql.logical.dump import DumpProcess, base_arguments
from plakar_mysql.logical.layout import (
    HELD_LIMIT,
    Catalog,
    FileHeader,
    Inventory,
    Kind,
    SnapshotError,
    describe,
    footer,
    object_path,
    read_capped,
    read_footer,
    session_frame,
)
from plakar_mysql.logical.preflight import OVERWRITE_DATABASES, OVERWRITE_PRIVILEGES, check_restore
from plakar_mysql.logical.rollback import Rollback, Undo, routine_objects, undo
from plakar_mysql.logical.shadow import Shadow, SwapError, drop_leftovers
from plakar_mysql.logical.split import DumpSplitter
from plakar_mysql.logical.users import restore_accounts
from plakar_mysql.logical.writer import one_newline_at_end

Connection: TypeAlias = "pymysql.connections.Connection[Any]"

#: The most ``jobs`` may be: the exporter schema's maximum.
MAX_JOBS = 64


class RestoreError(PlakarMySQLError, RuntimeError):
    """The restore cannot go on; one line for the user."""


log = logging.getLogger(__name__).info
"""Progress and notices of the restore, as ``plakar-mysql: <message>`` lines."""


def _names(items: Iterable[str], limit: int = 8) -> str:
    """Names for a one-line message: a name with a line break or other control
    character is shown quoted and escaped."""
    items = [item if item.isprintable() else repr(item) for item in items]
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


@dataclass
class _Loaded:
    """A table loaded into the target: what verify compares."""

    header: FileHeader
    target: str
    digest: str
    rows: int | None


#: A column's ``CHARACTER SET`` spelt out before a collation of that same set.
_CHARSET_BEFORE_ITS_COLLATION = re.compile(rb" CHARACTER SET (\w+) COLLATE (\1_\w+)")
#: Where a dump's ``CREATE TABLE`` ends (its table options follow).
_CREATE_TABLE_END = b"\n) ENGINE="
#: A ``CREATE TABLE`` longer than this is compared as it is.
_CREATE_TABLE_LIMIT = 4 << 20


class _TableDigest:
    """The SHA-256 of a table file as ``verify`` compares it.

    On MySQL the ``CREATE TABLE`` is compared in a canonical form.  MySQL 8.0 and
    later remember whether a column's collation was written out: the source's
    ``name VARCHAR(80)`` in a ``utf8mb4_unicode_ci`` table is dumped as ``name
    varchar(80) COLLATE utf8mb4_unicode_ci``; loaded, that column's collation is
    explicit, and the same table is dumped again as ``name varchar(80) CHARACTER
    SET utf8mb4 COLLATE utf8mb4_unicode_ci`` (found on MySQL 9.7.4: every table
    with such a column failed ``verify``).  Both spell the same column, so until
    the end of the ``CREATE TABLE`` a ``CHARACTER SET x`` right before a collation
    of ``x`` is left out; the rows after it are hashed as they are.
    """

    def __init__(self, canonical_create: bool) -> None:
        self._sha = hashlib.sha256()
        self._head: bytes | None = b"" if canonical_create else None

    def update(self, data: bytes) -> None:
        if self._head is None:
            self._sha.update(data)
            return
        self._head += data
        if _CREATE_TABLE_END in self._head or len(self._head) > _CREATE_TABLE_LIMIT:
            self._hash_head()

    def _hash_head(self) -> None:
        head, self._head = self._head or b"", None
        end = head.find(_CREATE_TABLE_END)
        if end < 0:
            end = 0 if len(head) > _CREATE_TABLE_LIMIT else len(head)
        self._sha.update(_CHARSET_BEFORE_ITS_COLLATION.sub(rb" COLLATE \2", head[:end]))
        self._sha.update(head[end:])

    def hexdigest(self) -> str:
        if self._head is not None:
            self._hash_head()
        return self._sha.hexdigest()


class _Fingerprint:
    """The digest of a table file (for ``verify``, see :class:`_TableDigest`) and
    its last bytes (the row-count footer), taken as the file passes by."""

    def __init__(self, digest: _TableDigest | None) -> None:
        self.digest = digest
        self.tail = b""

    def __call__(self, blocks: Iterable[bytes]) -> Iterator[bytes]:
        for block in blocks:
            if self.digest is not None:
                self.digest.update(block)
            self.tail = (self.tail + block[-4096:])[-4096:]
            yield block


@dataclass
class _Progress:
    total: int = 0
    done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def finished(self) -> str:
        with self.lock:
            self.done += 1
            return f"{self.done}/{self.total}" if self.total else str(self.done)


class Restorer:
    """Restores the files of one snapshot (format 2) as Plakar hands them over."""

    def __init__(self, config: Config, target: str | None, guard: Guard) -> None:
        self.config = config
        self.target = target
        self.guard = guard
        self.overwrite = config.flag("overwrite", False)
        # Whether the tables load into shadow databases (always with overwrite;
        # otherwise when the account may make them): decided once connected.
        self._atomic: bool | None = None
        self._rollback: Rollback | None = None  # what the guardian undoes if the plugin dies
        self._done = False
        self.jobs = int(config.values.get("jobs") or min(os.cpu_count() or 1, MAX_JOBS))
        self.lock_wait = int(config.values.get("lock_wait_timeout", DEFAULT_LOCK_WAIT_TIMEOUT))
        self._shadow: Shadow | None = None
        # Per shadow database: the qualifiers its triggers were typed with.
        self._qualifiers: dict[str, dict[str, tuple[str, str]]] = {}
        self._db: Connection | None = None
        self._server: ServerInfo | None = None
        self._client: Client | None = None
        self._sources: set[str] = set()
        self._checked: set[str] = set()
        self._inventories: dict[str, Inventory] = {}
        self._warned: set[str] = set()  # definers already checked
        self._existing_dbs: set[str] = set()
        self._held: dict[tuple[str, str], tuple[FileHeader, bytes]] = {}  # (kind, database) ->
        self._users: bytes | None = None
        self._catalog: Catalog | None = None
        self._arrived: dict[tuple[str, str | None, str | None], str] = {}  # what -> its path
        self._loaded: list[_Loaded] = []
        self._progress = _Progress()
        self._start_pool()
        self._futures: list[Future[None]] = []
        self._spool_dir: str | None = None
        self._packet_raised = False
        self._packet_to_restore: tuple[int, int] | None = None  # (what it was, what we set)

    def _start_pool(self) -> None:
        """The ``jobs`` loader threads, and one slot per thread: a table is spooled
        only once it holds a slot, so at most ``jobs`` spools exist at once."""
        self._pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="load")
        self._slots = threading.Semaphore(self.jobs)

    # -- the target --------------------------------------------------------------

    def _connection(self) -> Connection:
        if self._db is None:
            self._db = connect(self.config.connection)
            self._query(bounds_sql(self.lock_wait))
            self._server = server_info(self._db)
            if self._server.read_only:
                # Even an account allowed to write through read_only should not:
                # a read-only server is most often a replica.
                raise RestoreError(
                    f"{self.config.connection.address} is read-only (read_only=ON, a "
                    "replica?): nothing was restored; restore elsewhere or turn read_only off"
                )
            self._cap_jobs()
            ((session,),) = self._query("SELECT CONNECTION_ID()")
            self._rollback = Rollback(
                self.guard, Undo(self.config.connection, int(session), self.lock_wait)
            )
        return self._db

    def _cap_jobs(self) -> None:
        """Lower ``jobs`` to the connections the server has free (before any load)."""
        (limit,) = self._query("SELECT @@GLOBAL.max_connections")[0]
        (_, in_use) = self._query("SHOW GLOBAL STATUS LIKE 'Threads_connected'")[0]
        jobs = capped_jobs(self.jobs, int(limit), int(in_use))
        if jobs < self.jobs:
            log(
                f"jobs lowered from {self.jobs} to {jobs}: the server allows {limit} "
                f"connections, {in_use} are in use and {connection_margin(int(limit))} are "
                "left for others"
            )
            self._pool.shutdown(wait=False)  # no thread was started yet
            self.jobs = jobs
            self._start_pool()

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connection().cursor() as cursor:
            # No arguments must mean None: PyMySQL would expand "%" in the SQL.
            cursor.execute(sql, tuple(args) or None)
            return list(cursor.fetchall())

    def client(self) -> Client:
        if self._client is None:
            self._connection()
            assert self._server is not None
            flavour: Flavour = self._server.flavour
            tool = find_tool(flavour.client_names, flavour, self.config.connection.bin_dir)
            self._client = Client(
                tool,
                self.config.connection,
                force=self.config.flag("force", False),
                init_command=bounds_sql(self.lock_wait),
                guard=self.guard,
            )
        return self._client

    def shadow(self) -> Shadow:
        """The shadow databases of an overwrite restore (leftovers of killed ones dropped)."""
        if self._shadow is None:
            db = self._connection()
            drop_leftovers(db, log)
            self._shadow = Shadow(db, log, self.lock_wait, self._rollback)
        return self._shadow

    def atomic(self) -> bool:
        """Whether the tables load into shadow databases and are renamed into the
        target at the end: always with ``overwrite``, and otherwise when the account
        may make them (else they load straight into the target, and it is said)."""
        if self._atomic is None:
            self._atomic = self.overwrite or may_shadow(self._connection())
            if not self._atomic:
                log(
                    "loading straight into the target: this account may not create the "
                    "plakar_restore_% shadow databases, so other sessions see the tables fill "
                    "(an interrupted or failed restore drops them again); GRANT ALL PRIVILEGES "
                    "ON `plakar\\_restore\\_%`.* to load into a shadow and rename at the end"
                )
        return self._atomic

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

    def target_of(self, source: str) -> str:
        self._sources.add(source)
        if self.target is not None and len(self._sources) > 1:
            raise RestoreError(
                f"these files come from several databases ({_names(sorted(self._sources))}): "
                "restore one database into another name, or restore without a database in the URI"
            )
        return self.target or source

    # -- checks before anything is written ---------------------------------------

    def catalog(self, catalog: Catalog) -> None:
        """The whole snapshot is being restored: check all of it first.  From now
        on every file must be one the catalog names, and each must arrive."""
        if self._arrived or self._catalog is not None:
            raise SnapshotError("a catalog must come first, and once")
        self._catalog = catalog
        for inventory in catalog.databases:
            self.target_of(inventory.database)
        self._check(list(catalog.databases))

    def _admit(self, path: str, header: FileHeader) -> None:
        """Refuse a second file for one object, or a file the snapshot's catalog
        (or its database's ``schema.sql``) does not name, before it is used."""
        key = (header.kind, header.database, header.name)
        if key in self._arrived:
            raise SnapshotError(
                f"a second file for {describe(header)} (the first: {self._arrived[key]})"
            )
        self._arrived[key] = path
        if header.kind == "users":
            if self._catalog is not None and not self._catalog.users:
                raise SnapshotError("the catalog says the snapshot holds no accounts")
            return
        assert header.database is not None
        declared = self._inventories.get(header.database)
        if declared is None:
            if self._catalog is not None:
                raise SnapshotError(f"{describe(header)} is not in the catalog")
            return  # a database restored without its schema.sql (yet): nothing to hold it to
        self._conform(header, declared)

    @staticmethod
    def _conform(header: FileHeader, declared: Inventory) -> None:
        """``header``'s objects are among those ``declared`` for its database."""
        where = f"the inventory of {declared.database!r}"
        if header.kind == "schema":
            if header.inventory is not None and header.inventory != declared:
                raise SnapshotError(f"its inventory differs from {where} in the catalog")
            return
        if header.kind == "table":
            listed: tuple[str, ...] = declared.tables
            names: tuple[str, ...] = (header.name or "",)
        else:
            listed = getattr(declared, header.kind)
            names = header.names or ()
        extra = sorted(set(names) - set(listed))
        if extra:
            raise SnapshotError(f"{describe(header)} holds {_names(extra)}, not in {where}")

    def _check_complete(self) -> None:
        """Before anything is swapped in or loaded from the held files: every file
        the catalog names has arrived, and the held files fit their database's
        inventory (those that came before its ``schema.sql`` were not checked yet);
        then their databases are created (not before: a held file is not trusted
        until then)."""
        if self._catalog is not None:
            wanted: list[tuple[Kind, str | None, str | None]] = []
            if self._catalog.users:
                wanted.append(("users", None, None))
            for inventory in self._catalog.databases:
                wanted.append(("schema", inventory.database, None))
                wanted += [("table", inventory.database, t) for t in inventory.tables]
            missing = [object_path(*key) for key in wanted if key not in self._arrived]
            if missing:
                raise RestoreError(
                    f"/catalog.json names files that are not in the snapshot "
                    f"({_names(missing, 3)}): the snapshot is incomplete; "
                    + self._nothing_changed()
                )
        for header, _ in self._held.values():
            assert header.database is not None
            declared = self._inventories.get(header.database)
            if declared is not None:
                try:
                    self._conform(header, declared)
                except SnapshotError as exc:
                    path = self._arrived[(header.kind, header.database, None)]
                    raise RestoreError(f"{path}: {exc}") from None
        for header, _ in self._held.values():
            self._ensure_database(header)

    def _nothing_changed(self) -> str:
        """What a failure found before the swap and the held files leaves: nothing
        (an overwrite swaps nothing in; a restore into new objects drops what it
        loaded straight into the target, see :meth:`close`)."""
        return "nothing was restored"

    def _check(self, inventories: list[Inventory], *, complete: bool = True) -> None:
        """Refuse if the target holds any object of ``inventories`` (all of a
        database's objects if ``complete``, else only those of one file)."""
        conflicts: list[str] = []
        for inventory in inventories:
            if inventory.database in self._checked:
                continue
            if complete:
                self._checked.add(inventory.database)
                self._inventories[inventory.database] = inventory
                self._progress.total += len(inventory.tables)
            target = self.target_of(inventory.database)
            if not self._query(
                "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", [target]
            ):
                continue
            self._existing_dbs.add(target)
            relations = {
                name
                for (name,) in self._query(
                    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
                    [target],
                )
            }
            routines = {
                f"{kind} {name}"
                for kind, name in self._query(
                    "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES"
                    " WHERE ROUTINE_SCHEMA = %s",
                    [target],
                )
            }
            events = {
                name
                for (name,) in self._query(
                    "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s",
                    [target],
                )
            }
            found = sorted(relations & {*inventory.tables, *inventory.views})
            found += sorted(routines & set(inventory.routines))
            found += sorted(f"EVENT {e}" for e in events & set(inventory.events))
            if found:
                conflicts.append(f"{target!r} already holds {_names(found)}")
        if conflicts and not self.overwrite:
            raise RestoreError(
                f"{'; '.join(conflicts)}: nothing was restored; restore into another database, "
                "or set overwrite=true"
            )
        check_restore(self._connection(), inventories, self.overwrite, self.config.connection)
        if complete:
            self._warn_definers(inventories)

    def _warn_definers(self, inventories: list[Inventory]) -> None:
        if self.config.text("definer") == "current":
            return
        wanted = {d for inventory in inventories for d in inventory.definers} - self._warned
        self._warned |= wanted
        if not wanted:
            return
        try:
            accounts = {f"{u}@{h}" for u, h in self._query("SELECT User, Host FROM mysql.user")}
        except pymysql.err.MySQLError:
            log("could not read mysql.user to check the definers of views, routines and triggers")
            return
        missing = sorted(wanted - accounts)
        if missing:
            log(
                f"warning: definer {_names(missing)} does not exist on the target: the objects "
                "it defines will load but fail when used; set definer=current to define them "
                "as the restoring account, or users=true if the snapshot holds the accounts"
            )

    def _create_options(self, header: FileHeader) -> str:
        """What follows the name in CREATE DATABASE: the source's options."""
        assert header.database is not None
        known = self._inventories.get(header.database)
        if known is not None and known.create_options:
            return known.create_options  # character set, collation, comment: as the source's
        if header.character_set and header.collation:
            return f" CHARACTER SET {header.character_set} COLLATE {header.collation}"
        return ""

    def _ensure_database(self, header: FileHeader) -> str:
        assert header.database is not None
        target = self.target_of(header.database)
        if self.atomic() and self.config.flag("create_db", True):
            # Created (if missing) at the swap, so that a failed restore creates nothing.
            self.shadow().register(target, self._create_options(header))
            return target
        if target in self._existing_dbs:
            return target
        if self._query(
            "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", [target]
        ):
            self._existing_dbs.add(target)
            return target
        if not self.config.flag("create_db", True):
            raise RestoreError(f"database {target!r} does not exist and create_db=false")
        self._create_now(header, target)
        return target

    def _fit_packet(self, needed: int) -> None:
        """Raise the target's max_allowed_packet to the source's, so every dumped row fits."""
        if self._packet_raised:
            return
        self._packet_raised = True
        current = int(self._query("SELECT @@GLOBAL.max_allowed_packet")[0][0])
        if current >= needed:
            return
        try:
            self._query("SET GLOBAL max_allowed_packet = %s", [needed])
            # What the server made of it (it rounds to 1 KiB, caps at 1 GiB).
            (now,) = self._query("SELECT @@GLOBAL.max_allowed_packet")[0]
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

    # -- files ---------------------------------------------------------------------

    def file(self, path: str, header: FileHeader, first_line: bytes, stream: Content) -> None:
        """One ``.sql`` file of the snapshot, found at ``path`` (already checked
        against its header); ``first_line`` is what was already read of it (its
        header line, and maybe more), ``stream`` the rest.  Views, routines,
        events and accounts are read whole (up to ``HELD_LIMIT``) and held."""
        self._admit(path, header)
        if header.kind == "users":
            self._users = read_capped(blocks(stream, first_line), HELD_LIMIT)
            return
        assert header.database is not None
        if header.kind == "schema":
            if header.inventory is not None:
                self._check([header.inventory])
            self._ensure_database(header)
            for _ in blocks(stream):
                pass
            return
        if header.kind in ("views", "routines", "events"):
            # The file's own objects, when its database was not checked whole.
            names, kind = header.names or (), header.kind
            partial = Inventory(
                header.database,
                "",
                "",
                views=names if kind == "views" else (),
                routines=names if kind == "routines" else (),
                events=names if kind == "events" else (),
            )
            self._check([partial], complete=False)
            data = read_capped(blocks(stream, first_line), HELD_LIMIT)
            self._held[(header.kind, header.database)] = (header, data)
            return
        if header.kind == "table":
            self._table(header, first_line, stream)
            return
        raise RestoreError(f"unknown file kind {header.kind!r}")

    def _table(self, header: FileHeader, first_line: bytes, stream: Content) -> None:
        assert header.database is not None and header.name is not None
        self._raise_failure()
        if header.database not in self._checked:
            self._check_table(header)
        target = self._ensure_database(header)
        into = target
        if self.atomic() and not (not self.overwrite and _is_or_uses_sequence(first_line)):
            into = self.shadow().database_for(target, self._create_options(header))
        elif self.atomic():
            # A table's default names its sequence with the target's name: from a
            # shadow it would name a sequence that is not there yet.  Both load
            # straight into the target (undone like the rest if the restore stops).
            log(
                f"loading {target}.{header.name} straight into {target!r}: a sequence, or a "
                "table whose default uses one, cannot be loaded into a shadow database"
            )
            self._create_now(header, target)
            self._note_new(new_tables=((target, header.name),))
        else:
            # All the database's tables at once (each checked absent): the undo is
            # registered before any client starts, so the guardian kills the
            # clients (newer) before it drops what they load.
            known = self._inventories.get(header.database)
            names = known.tables if known is not None else (header.name,)
            self._note_new(new_tables=tuple((target, name) for name in (*names, header.name)))
        self._fit_packet(header.max_allowed_packet)
        label = f"{target}.{header.name}"
        fingerprint = _Fingerprint(
            self._table_digest() if self.config.flag("verify", False) else None
        )
        data = fingerprint(blocks(stream, first_line))
        self.client()  # made here, not by the loader threads at once
        if self.jobs == 1:
            self._load_table(header, target, label, data, fingerprint, into=into)
            return
        self._spool_and_load(
            data,
            lambda spool: self._load_table(header, target, label, spool, fingerprint, into=into),
        )

    def _create_now(self, header: FileHeader, target: str) -> None:
        """``target`` created now if missing (a shadowed restore creates it at the swap)."""
        if target in self._existing_dbs or self._query(
            "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", [target]
        ):
            return
        self._note_new(made=(target,))
        self._query(f"CREATE DATABASE {quote_identifier(target)}{self._create_options(header)}")
        self._existing_dbs.add(target)
        log(f"created database {target!r}")

    def _check_table(self, header: FileHeader) -> None:
        assert header.database is not None and header.name is not None
        target = self.target_of(header.database)
        exists = self._query(
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            [target, header.name],
        )
        if exists and not self.overwrite:
            raise RestoreError(
                f"{target!r} already holds {_names([header.name])}: nothing was restored; "
                "restore into another database, or set overwrite=true"
            )

    def _spool_and_load(self, data: Iterable[bytes], load: Callable[[IO[bytes]], None]) -> None:
        """Once a loader is free (waits for one), spool ``data`` and have it loaded
        by ``load`` in a loader thread; the spool is closed when that is done."""
        self._slots.acquire()
        try:
            spool = self._spool(data)
        except BaseException:
            self._slots.release()
            raise
        self._futures.append(self._pool.submit(self._load_spooled, spool, load))

    def _spool(self, data: Iterable[bytes]) -> IO[bytes]:
        """A table file in a private temporary file, ready to be read by a client
        (in a directory the guardian removes if the plugin dies)."""
        if self._spool_dir is None:
            self._spool_dir = self.guard.temp_dir("plakar-mysql-")
        spool = tempfile.TemporaryFile(dir=self._spool_dir)  # noqa: SIM115 - closed by the loader
        for block in data:
            spool.write(block)
        spool.seek(0)
        return spool

    def _load_spooled(self, spool: IO[bytes], load: Callable[[IO[bytes]], None]) -> None:
        try:
            load(spool)
        finally:
            spool.close()
            self._slots.release()

    def _load_table(
        self,
        header: FileHeader,
        target: str,
        label: str,
        source: IO[bytes] | Iterable[bytes],
        fingerprint: _Fingerprint,
        *,
        into: str,
    ) -> None:
        """Load one table file into ``into`` (``target`` or its shadow)."""
        log(f"loading table {label}")
        client = self.client()
        what = f"table {label}"
        rewriters: list[Callable[[Iterable[bytes]], Iterator[bytes]]] = []
        if self.config.text("definer") == "current":
            rewriters.append(DefinerRewriter())
        if into != header.database:
            # A shadow or another name.  Into a shadow of the same name, what is
            # dropped is put back when the trigger is created in the target.
            same_name = target == header.database
            rewriters.append(
                TriggerRewriter(self._qualifiers.setdefault(into, {}) if same_name else None)
            )
        try:
            if rewriters:
                chunks = blocks(source) if isinstance(source, io.IOBase) else source
                for rewrite in rewriters:
                    chunks = rewrite(chunks)
                ignored = client.load(what, into, chunks=chunks)
            elif isinstance(source, io.IOBase):
                ignored = client.load(what, into, file=source)  # type: ignore[arg-type]
            else:
                ignored = client.load(what, into, chunks=source)
        except LoadError as exc:
            raise self.load_error(exc, [target]) from None
        if ignored:
            log(f"{label}: errors ignored (force=true): {ignored}")
        self._loaded.append(
            _Loaded(
                header,
                target,
                fingerprint.digest.hexdigest() if fingerprint.digest else "",
                read_footer(fingerprint.tail),
            )
        )
        log(f"loaded table {label} ({self._progress.finished()})")

    def _raise_failure(self) -> None:
        for future in self._futures:
            if future.done():
                future.result()  # raises if that load failed

    # -- the end -------------------------------------------------------------------

    def finish(self, cancelled: Callable[[], bool] | None = None) -> None:
        """Wait for the tables, then load routines, views, events and accounts; verify.
        ``cancelled`` says whether Plakar went away: then the shadow is not swapped in."""
        try:
            self._check_complete()
            self._wait_tables()
            if cancelled is not None and cancelled():
                raise RestoreError("the restore was cancelled: nothing was restored")
            if self._shadow is not None:
                # Into new tables: undone after the rename too, until the restore ends.
                self._note_new(
                    new_tables=tuple((t.target, t.header.name or "") for t in self._loaded)
                )
                try:
                    self._shadow.swap(self._qualifiers, cancelled)
                except SwapError as exc:
                    raise RestoreError(str(exc)) from None
            self._note_new(objects=self._held_objects())
            self._load_code()
            self._load_users()
            if self.config.flag("verify", False):
                self._verify()
        except BaseException:
            self.close()
            raise

    def done(self) -> None:
        """The restore is complete: nothing is undone from now on, whatever happens."""
        self._done = True
        if self._rollback is not None:
            self._rollback.release()
        self.close()

    def _note_new(self, **changes: tuple[Any, ...]) -> None:
        """What a restore into new objects has created, added to what the guardian
        (or :meth:`close`, on failure) undoes.  Not with ``overwrite``: what it
        swapped in stays, and the same command again finishes the restore."""
        if self.overwrite or self._rollback is None:
            return
        state = self._rollback.state
        merged = {
            key: tuple(dict.fromkeys((*getattr(state, key), *new))) for key, new in changes.items()
        }
        if any(merged[key] != getattr(state, key) for key in merged):
            self._rollback.update(**merged)

    def _held_objects(self) -> tuple[tuple[str, str, str], ...]:
        """``(target, kind, name)`` of every view, routine and event the held files create."""
        found: list[tuple[str, str, str]] = []
        for (kind, source), (header, _) in sorted(self._held.items()):
            target = self.target_of(source)
            names = header.names or ()
            if kind == "routines":
                found += routine_objects(target, names)
            elif kind in ("views", "events"):
                found += [(target, kind[:-1].upper(), name) for name in names]
        return tuple(found)

    def _wait_tables(self) -> None:
        for future in self._futures:
            future.result()  # the first failed load raises

    def _held_files(self, kind: str) -> Iterator[tuple[str, bytes]]:
        for (held_kind, source), (_, data) in sorted(self._held.items()):
            if held_kind == kind:
                yield source, data

    def _load_code(self) -> None:
        rewrite = self.config.text("definer") == "current"

        def load(what: str, source: str, data: bytes) -> None:
            target = self.target_of(source)
            log(f"loading {what} of {target!r}")
            chunks: Iterable[bytes] = [data]
            if rewrite:
                chunks = DefinerRewriter()(chunks)
            try:
                ignored = self.client().load(f"{what} of {target!r}", target, chunks=chunks)
            except LoadError as exc:
                raise self.load_error(exc, [target]) from None
            if ignored:
                log(f"{what} of {target!r}: errors ignored (force=true): {ignored}")

        for source, data in self._held_files("routines"):
            load("routines", source, data)
        views = list(self._held_files("views"))
        for phase, kinds in (("view placeholders", ("view",)), ("views", ("final_view",))):
            for source, data in views:
                load(phase, source, _sections(data, kinds))
        for source, data in self._held_files("events"):
            load("events", source, data)

    def _load_users(self) -> None:
        if self._users is None:
            if self._catalog is not None and self._catalog.users:
                log(
                    "the snapshot holds accounts and grants (/server/users.sql) that were not "
                    "restored; restore that file with users=true to load them"
                )
            return
        if not self.config.flag("users", False):
            log("accounts and grants (/server/users.sql) were not restored: set users=true")
            return
        restored, _ = restore_accounts(
            self._connection(), self._users, overwrite=self.overwrite, log=log
        )
        log(f"restored {len(restored)} account(s) and role(s) with their grants")

    # -- verify --------------------------------------------------------------------

    def _table_digest(self) -> _TableDigest:
        """A digest for ``verify``, canonical as the target's flavour needs."""
        assert self._server is not None
        return _TableDigest(canonical_create=self._server.flavour is Flavour.MYSQL)

    def _verify(self) -> None:
        assert self._server is not None
        flavour = self._server.flavour
        tool = find_tool(flavour.dump_names, flavour, self.config.connection.bin_dir)
        failures = [
            problem
            for problem in self._pool.map(
                lambda loaded: self._verify_one(tool, loaded), self._loaded
            )
            if problem
        ]
        if failures:
            raise RestoreError(f"verify failed: {'; '.join(failures)}")
        log(f"verified {len(self._loaded)} table(s): each matches its snapshot file")

    def _verify_one(self, tool: Tool, loaded: _Loaded) -> str | None:
        header = loaded.header
        assert header.name is not None
        label = f"{loaded.target}.{header.name}"
        args = [
            *base_arguments(),
            "--single-transaction",
            "--skip-routines",
            "--skip-events",
            "--no-tablespaces",
        ]
        if tool.flavour is Flavour.MARIADB:
            args.append("--dump-history")
        else:
            args += ["--column-statistics=0", "--set-gtid-purged=OFF"]
        args += ["--", loaded.target, header.name]
        digest = self._table_digest()
        rows: int | None = None
        with DumpProcess(tool, args, self.config.connection) as dump:
            splitter = DumpSplitter(dump.stream())
            frame = (b"", b"")
            for section, chunks in splitter:
                if section.kind == "preamble":
                    frame = session_frame(b"".join(chunks))
                elif section.kind == "table":
                    digest.update(header.encode() + frame[0])
                    for chunk in one_newline_at_end(chunks):
                        digest.update(chunk)
                    rows = splitter.rows if loaded.rows is not None else None
                    digest.update(frame[1] + footer(rows))
                else:
                    for _ in chunks:
                        pass
            dump.finish()
        if rows != loaded.rows:
            return f"{label} has {rows} rows, the snapshot {loaded.rows}"
        # definer=current changes the triggers' definers on purpose: rows only then.
        if self.config.text("definer") != "current" and digest.hexdigest() != loaded.digest:
            return f"{label} differs from its snapshot file"
        return None

    def close(self) -> None:
        """End the restore; if it did not complete, undo what may be undone (a
        restore into new objects drops them; an overwrite's swapped tables stay)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._shadow is not None and not self._shadow.swapped:
            self._shadow.discard()  # failed or cancelled before the swap: the target is untouched
        self._shadow = None
        self._put_packet_back()
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None
        if self._rollback is not None and not self._done:
            self._undo_new(self._rollback)
        if self._spool_dir is not None:
            self.guard.remove_dir(self._spool_dir)
            self._spool_dir = None

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


#: What the start of a table file says when it is a sequence or its default uses one.
_SEQUENCE_MARKS = (
    b"-- sequence structure for",
    b"create sequence",
    b" sequence=1",
    b"nextval(",
    b"next value for",
    b"lastval(",
)


def _is_or_uses_sequence(start: bytes) -> bool:
    """Whether the table file beginning with ``start`` (its definition comes before
    its rows) creates a sequence or a table whose definition names one."""
    definition = start.split(b"\nINSERT INTO ", 1)[0].lower()
    return any(mark in definition for mark in _SEQUENCE_MARKS)


def may_shadow(db: Connection) -> bool:
    """Whether the session may create, fill and drop ``plakar_restore_*`` databases."""
    grants = session_grants(db)
    sample = OVERWRITE_DATABASES[0][0]
    return all(grants.has(privilege, sample) for privilege in OVERWRITE_PRIVILEGES)


def connection_margin(max_connections: int) -> int:
    """Connections a restore leaves free for others: two and a tenth of the limit."""
    return 2 + max_connections // 10


def capped_jobs(jobs: int, max_connections: int, in_use: int) -> int:
    """``jobs`` within :data:`MAX_JOBS` and the server's free connections (its
    ``max_connections`` less those in use and a margin): each load is a client
    connection, and so is each ``verify`` dump.  At least one."""
    free = max_connections - in_use - connection_margin(max_connections)
    return max(1, min(jobs, MAX_JOBS, free))


def _sections(data: bytes, kinds: tuple[str, ...]) -> bytes:
    """The file ``data`` with only its ``kinds`` sections (plus its start and end)."""
    out = bytearray()
    for section, chunks in DumpSplitter(io.BytesIO(data)):
        body = b"".join(chunks)
        if section.kind in (*kinds, "preamble", "trailer"):
            out += body
    return bytes(out)
