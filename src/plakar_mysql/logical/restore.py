"""The restore side: load a snapshot into a server.

Each file Plakar hands over says what it is in its first line.  Files of a
per-object snapshot go to the :class:`~plakar_mysql.logical.restorer.Restorer`.  A
single dump file - ``/dump.sql`` of a first-release snapshot, or the official
integration's ``/<db>.sql`` and ``/all.sql`` - is loaded here in one stream:
the restore refuses to write over a table that already exists (unless
``overwrite=true``), creates a missing target database, makes sure the server
accepts rows as large as the source did, and fails on the first failing
statement with the server's error and its line.

A snapshot is untrusted input: every file is checked before it is used (a
JSON file is read whole only up to a cap, a header must be well formed and
match the file's path, and every file of one restore must come from the same
place in the snapshot), and any problem fails the restore with one line
naming the file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pymysql

from kloset_sdk import ConnectorInfo, Exporter, Options, Record, Report, Reporter, export_each
from kloset_sdk.records import Content
from plakar_mysql.core.client import LoadError, blocks
from plakar_mysql.core.errors import shown
from plakar_mysql.core.gtid import GtidError
from plakar_mysql.core.kinds import LOGICAL, not_ours, refuse_foreign_options
from plakar_mysql.core.option_models import LogicalRestoreOptions
from plakar_mysql.core.options import ConfigError
from plakar_mysql.core.restore_point import base_point, record_restored_point, restored_point
from plakar_mysql.core.server import ServerError, connect, error_text, quote_identifier
from plakar_mysql.logical.gtid_purged import without_gtid_purged
from plakar_mysql.logical.layout import (
    CATALOG_PATH,
    DUMP_PATH,
    HEADER_LIMIT,
    HEADER_PREFIX,
    JSON_LIMIT,
    MANIFEST_PATH,
    Catalog,
    DumpHeader,
    FileHeader,
    Inventory,
    SnapshotError,
    check_manifest,
    check_path,
    read_capped,
    read_header,
)
from plakar_mysql.logical.preflight import existing, refuse_existing
from plakar_mysql.logical.restorer import Restorer
from plakar_mysql.logical.target import RestoreError, Target, create_options, log

__all__ = ["MySQLExporter", "RestoreError", "plan_load", "quote_identifier", "read_first_line"]


@dataclass(frozen=True)
class LoadPlan:
    """One dump file to load: into which database (None: the dump selects its own)."""

    database: str | None
    creates: tuple[tuple[str, str, str], ...]  # (database, character set, collation) to create
    tables: Mapping[str, tuple[str, ...] | None]  # database -> tables it writes (None: unknown)
    blind: bool = False  # a plain dump that selects its own databases: what it writes is unknown


def plan_load(header: DumpHeader | None, pathname: str, target: str | None) -> LoadPlan:
    """Decide where a dump file goes, from its header (ours) or its name (a plain dump).

    A single dump file stands alone at the top of what is restored: a file
    further down without a header of ours is not one (a table file whose
    header was removed must not load into a database named after the table).
    """
    if pathname.count("/") != 1:
        raise RestoreError(
            f"{shown(pathname)}: no plakar-mysql header, and not a dump at the top of the "
            "snapshot: not part of a MySQL snapshot"
        )
    if header is not None and pathname != DUMP_PATH:
        raise RestoreError(f"{shown(pathname)}: a first-release header outside {DUMP_PATH}")
    if header is None:
        # A plain dump, e.g. the official integration's /all.sql or /<db>.sql.
        name = pathname[1:].removesuffix(".sql")
        if not 0 < len(name) <= 64 or "\0" in name:
            raise RestoreError(f"{shown(pathname)}: {name!r} cannot be a database's name")
        if name == "all":
            if target:
                raise RestoreError(
                    f"{pathname} holds several databases: restore it without a database in the URI"
                )
            return LoadPlan(None, (), {}, blind=True)
        database = target or name
        return LoadPlan(database, ((database, "", ""),), {database: None})
    if header.scope == "database":
        source = header.databases[0]
        database = target or source.name
        return LoadPlan(
            database,
            ((database, source.character_set, source.collation),),
            {database: source.tables},
        )
    if target is not None:
        names = ", ".join(d.name for d in header.databases)
        raise RestoreError(
            f"this snapshot holds several databases ({names}) that it restores under their own "
            "names: restore it without a database in the URI"
        )
    return LoadPlan(None, (), {d.name: d.tables for d in header.databases})


def read_first_line(stream: Content, limit: int = HEADER_LIMIT) -> tuple[bytes, bytes]:
    """The first line of ``stream`` (with its newline) and whatever was read past it;
    at most ``limit`` bytes and a block are read looking for it."""
    buffered = b""
    while True:
        end = buffered.find(b"\n")
        if end >= 0:
            return buffered[: end + 1], buffered[end + 1 :]
        if len(buffered) > limit:
            if buffered.startswith(HEADER_PREFIX):
                raise SnapshotError(f"its header line is longer than {limit >> 20} MiB")
            return b"", buffered  # no line this long is a header: treat it all as data
        chunk = stream.read(1 << 20)
        if not chunk:
            return buffered, b""
        buffered += chunk


class MySQLExporter(Exporter):
    """Restores a snapshot into a server, under the original or another database name."""

    def __init__(self, options: Options, scheme: str, config: Mapping[str, str]) -> None:
        refuse_foreign_options(config, LOGICAL, backup=False)
        self.config = LogicalRestoreOptions.parse(config, scheme)
        if len(self.config.databases) > 1:
            raise ConfigError("restore into one database at most (the URI path or database=)")
        self.target = self.config.databases[0] if self.config.databases else None
        self._guard = options.guard  # undoes what an interrupted restore leaves
        self._base_point: str | None = None  # the snapshot's binlog GTID, from its manifest
        self._whole_server = False  # the whole snapshot of a whole server is restored
        # Where in the snapshot the files of this restore come from, and from which
        # layout (per-object files, or single dumps): all of them must agree.
        self._origin: tuple[str, str] | None = None

    def info(self) -> ConnectorInfo:
        conn = self.config.connection
        origin = conn.address + (f"/{self.target}" if self.target else "")
        return ConnectorInfo(origin=origin, type="mysql", root="/")

    def ping(self) -> None:
        connect(self.config.connection).close()

    def export(self, records: Iterator[Record], report: Report) -> None:
        restorer = Restorer(self.config, self.target, self._guard)
        try:
            failure = export_each(records, report, lambda r: self._restore(restorer, r))
            if failure is None:
                # Plakar gone (cancelled, killed): nothing may be committed.
                restorer.finish(
                    cancelled=report.cancelled if isinstance(report, Reporter) else None
                )
                restorer.done()  # complete: nothing is undone from here
                self._restore_point()
        finally:
            restorer.close()
        if isinstance(failure, pymysql.err.MySQLError):
            raise ServerError(f"{self.config.connection.address}: {error_text(failure)}")
        if failure is not None:
            raise failure

    def _restore_point(self) -> None:
        """Record the base's point in ``@@gtid_slave_pos`` (where a binlog replay
        starts) when asked (``restore_point``), by default only after a restore of
        a whole server under its own names: the variable is server-wide, and a
        restore of one database must not move the point of the others.  Says
        what it did either way."""
        if not self._base_point:
            if self.config.restore_point:
                log(
                    "restore_point=true, but what was restored holds no binary-log point (the "
                    "source wrote no binary log, or /manifest.json was not part of the restore): "
                    "@@gtid_slave_pos was left as it was"
                )
            return
        whole = self._whole_server and self.target is None
        wanted = self.config.restore_point
        if wanted or (wanted is None and whole):
            record_restored_point(self.config.connection, self._base_point, log)
            return
        why = (
            "restore_point=false"
            if self.config.restore_point is not None
            else "this restore is not of a whole server (restore_point=true records it)"
        )
        try:
            with contextlib.closing(connect(self.config.connection)) as db:
                now = str(restored_point(db)) or "empty"
        except (ServerError, pymysql.err.MySQLError, GtidError) as exc:
            now = f"not read: {error_text(exc) if isinstance(exc, pymysql.err.MySQLError) else exc}"
        log(
            f"left @@gtid_slave_pos as it was ({now}): {why}; the base's point is "
            f"{self._base_point}: to replay binary logs onto this restore, give "
            f"start_position={self._base_point}"
        )

    def _restore(self, restorer: Restorer, record: Record) -> None:
        path = record.pathname
        if record.error:
            raise RestoreError(
                f"{shown(path)}: the snapshot holds an error, not the file: {shown(record.error)}"
            )
        if record.opener is None:
            if record.file_info is None or record.file_info.is_dir:
                return
            raise RestoreError(
                f"{shown(path)} is not a regular file (a symbolic link?): "
                "not part of a MySQL snapshot"
            )
        stream = record.open()
        try:
            self._dispatch(restorer, path, stream)
        except SnapshotError as exc:
            raise RestoreError(f"{shown(path)}: {exc}") from None
        finally:
            stream.close()

    def _dispatch(self, restorer: Restorer, path: str, stream: Content) -> None:
        """One file, by what its path and first line say it is."""
        if path == CATALOG_PATH:
            self._place(path, "", "per-object")
            catalog = Catalog.decode(read_capped(blocks(stream), JSON_LIMIT))
            restorer.catalog(catalog)
            self._whole_server = catalog.scope == "server"
            return
        if path == MANIFEST_PATH:
            self._place(path, "", None)
            data = read_capped(blocks(stream), JSON_LIMIT)
            if check_manifest(data):
                self._base_point = base_point(data)
            return
        if not path.endswith(".sql"):
            raise RestoreError(not_ours(shown(path), LOGICAL))
        first_line, rest = read_first_line(stream)
        header = read_header(first_line)
        if isinstance(header, FileHeader):
            self._place(path, check_path(path, header), "per-object")
            restorer.file(path, header, first_line + rest, stream)
        else:
            plan = plan_load(header, path, self.target)
            self._whole_server = header is not None and header.scope == "server"
            self._place(path, "", "dump")
            self._single_dump(restorer, path, header, plan, blocks(stream, first_line + rest))

    def _place(self, path: str, root: str, layout: str | None) -> None:
        """Every file of one restore comes from one place (``root``, the snapshot
        directory restored, as the files' headers imply it) and one ``layout``
        (None: either): a file whose header disagrees with the others' is lying
        about its database."""
        if self._origin is None:
            if layout is not None:
                self._origin = (root, layout)
            return
        if layout is not None and self._origin[1] != layout:
            raise RestoreError(
                f"{shown(path)}: single dump files and per-object files in one restore: "
                "not a MySQL snapshot of either layout"
            )
        if self._origin[0] != root:
            raise SnapshotError(
                f"its header places it below {root or '/'}, the files before it below "
                f"{self._origin[0] or '/'}: one of them says it belongs to another database"
            )

    # -- one dump file (first release, official integration) ----------------------

    def _single_dump(
        self,
        restorer: Restorer,
        path: str,
        header: DumpHeader | None,
        plan: LoadPlan,
        chunks: Iterator[bytes],
    ) -> None:
        target = restorer.target
        self._prepare(target, plan)
        if header is not None:
            target.fit_packet(header.max_allowed_packet)
        where = f"into {plan.database!r}" if plan.database else "under the snapshot's names"
        log(f"restoring {path} {where}")
        # The header is a comment: load it too, so error line numbers match the file.
        try:
            ignored = target.client().load(
                f"{path} {where}", plan.database, chunks=without_gtid_purged(chunks, log)
            )
        except LoadError as exc:
            raise target.load_error(exc, plan.tables or [plan.database or ""]) from None
        if ignored:
            log(f"{path}: errors ignored (force=true): {ignored}")
        if plan.blind:
            # A whole-server dump (the official integration's /all.sql) loads the
            # mysql schema's tables: the accounts take effect only once reloaded.
            target.query("FLUSH PRIVILEGES")
            log("reloaded the privilege tables (FLUSH PRIVILEGES)")
        log(f"restored {path}")

    def _prepare(self, target: Target, plan: LoadPlan) -> None:
        """Refuse to write over what the target holds (unless ``overwrite``), and
        create the plan's missing databases (unless ``create_db=false``)."""
        target.connection()
        if plan.blind and not target.overwrite:
            raise RestoreError(
                "this plain dump creates its own databases and may replace any table in them: "
                "nothing was restored; set overwrite=true to load it"
            )
        if not target.overwrite:
            refuse_existing(
                {
                    database: found
                    for database, tables in plan.tables.items()
                    if tables != ()
                    and (found := existing(target, database, _tables_only(database, tables)))
                }
            )
        for database, charset, collation in plan.creates:
            if target.database_exists(database):
                continue
            if not self.config.create_db:
                raise RestoreError(f"database {database!r} does not exist and create_db=false")
            target.create_database(database, create_options(charset, collation))


def _tables_only(database: str, tables: tuple[str, ...] | None) -> Inventory | None:
    """What a dump writes in ``database``: its ``tables`` (None: it may write any)."""
    return None if tables is None else Inventory(database, "", "", tables=tables)
