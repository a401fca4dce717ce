"""The backup side: dump a server's databases into a Plakar snapshot.

``scan`` asks the server what it holds, runs one dump of all the databases of
the backup (one transaction, one point in time), and lays it out one file per
object while it streams (:mod:`plakar_mysql.logical.writer`).  Only once the dump tool
has exited cleanly and written its completion line does it hand over the
per-database files, ``/catalog.json`` and ``/manifest.json``.  If anything
fails, ``scan`` raises and Plakar keeps no snapshot.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pymysql

from kloset_sdk import ConnectorInfo, Flags, Importer, Options, Record
from plakar_mysql import __version__
from plakar_mysql.core.flavour import find_tool
from plakar_mysql.core.kinds import LOGICAL, refuse_foreign_options
from plakar_mysql.core.option_models import LogicalBackupOptions
from plakar_mysql.core.server import (
    DatabaseInfo,
    DatabaseObjects,
    ServerError,
    ServerInfo,
    connect,
    current_user,
    database_objects,
    describe,
    missing_privileges,
    session,
    user_databases,
)
from plakar_mysql.logical.dump import DumpProcess, dump_arguments
from plakar_mysql.logical.events import dump_events
from plakar_mysql.logical.filters import select
from plakar_mysql.logical.layout import (
    MANIFEST_PATH,
    Inventory,
    Manifest,
    ManifestBinlog,
    ManifestDatabase,
    ManifestServer,
    ManifestTable,
    ManifestTool,
    Scope,
)
from plakar_mysql.logical.users import dump_accounts, grants_on
from plakar_mysql.logical.writer import SnapshotWriter, SourceFacts

_log = logging.getLogger(__name__)

_SECRET = frozenset({"password", "location", "username"})


def _scope(config: LogicalBackupOptions) -> Scope:
    if len(config.databases) == 1:
        return "database"
    return "databases" if config.databases else "server"


class MySQLImporter(Importer):
    """Backs up one database, several, or every database of a server."""

    def __init__(self, options: Options, scheme: str, config: Mapping[str, str]) -> None:
        refuse_foreign_options(config, LOGICAL, backup=True)
        self.config = LogicalBackupOptions.parse(config, scheme)

    def info(self) -> ConnectorInfo:
        conn = self.config.connection
        origin = conn.address
        if len(self.config.databases) == 1:
            origin += "/" + self.config.databases[0]
        elif self.config.databases:
            origin += "/" + ",".join(self.config.databases)
        return ConnectorInfo(origin=origin, type="mysql", root="/", flags=Flags.STREAM)

    def ping(self) -> None:
        connect(self.config.connection).close()

    def scan(self) -> Iterator[Record]:
        started = datetime.now(UTC)
        conn = self.config.connection
        with session(conn) as (db, server):
            survey = self._survey(db, server)
        tool = find_tool(server.flavour.dump_names, server.flavour, conn.bin_dir)
        names = [d.name for d in survey.databases]
        args = dump_arguments(
            tool, self.config, names, log_bin=server.log_bin, ignored=survey.ignored
        )
        _log.info(
            f"dumping {len(names)} database(s) from {server.flavour.title} "
            f"{server.version} at {conn.address} with {tool.path}"
        )

        writer = SnapshotWriter(_facts(server, survey, hex_blob=self.config.hex_blob), started)
        yield Record.directory("/", started)
        with DumpProcess(tool, args, conn) as dump:
            yield from writer.tables(dump.stream())
            dump.finish()
            binlog = dump.binlog_position()
        yield from writer.held(survey.users)
        manifest = Manifest(
            generator=f"plakar-mysql {__version__}",
            scope=survey.scope,
            flavour=server.flavour.value,
            server=_manifest_server(conn.address, server),
            dump_tool=ManifestTool(tool.path, tool.version_text, tuple(args)),
            binlog=None
            if binlog is None
            else ManifestBinlog(binlog.file, binlog.position, binlog.gtid),
            options={k: v for k, v in sorted(self.config.given.items()) if k not in _SECRET},
            databases=tuple(_manifest_database(d, writer.rows) for d in survey.databases),
            grants=survey.grants,
            files=writer.files,
            started_at=started.isoformat(),
            finished_at=datetime.now(UTC).isoformat(),
        )
        data = manifest.encode()
        yield Record.file(MANIFEST_PATH, lambda: io.BytesIO(data), started, size=len(data))

    def _survey(self, db: pymysql.connections.Connection[Any], server: ServerInfo) -> _Survey:
        """What the backup dumps, read from the server before the dump starts."""
        conn = self.config.connection
        scope = _scope(self.config)
        candidates = list(self.config.databases) or user_databases(db)
        if not candidates:
            raise ServerError(f"{conn.address} holds no database to back up")
        selection = select(self.config, describe(db, candidates))
        names = [d.name for d in selection.databases]
        missing = missing_privileges(
            db,
            server.flavour,
            names,
            routines=self.config.routines,
            triggers=self.config.triggers,
            events=self.config.events,
        )
        if missing:
            raise ServerError(
                f"{current_user(db)} lacks what the backup needs: {'; '.join(missing)}"
            )
        objects = database_objects(db, names)
        # Accounts are not transactional: reading them just before the dump
        # is as consistent as reading them inside it.
        with_users = scope == "server" and self.config.users
        return _Survey(
            scope=scope,
            databases=selection.databases,
            ignored=selection.ignored,
            objects=objects,
            users=list(dump_accounts(db)) if with_users else None,
            grants={names[0]: grants_on(db, names[0])} if scope == "database" else None,
            events={
                name: dump_events(db, name, list(objects[name].events))
                for name in names
                if self.config.events and objects[name].events
            },
        )


@dataclass(frozen=True)
class _Survey:
    """What a backup learns of the server before it dumps."""

    scope: Scope
    databases: tuple[DatabaseInfo, ...]
    ignored: tuple[tuple[str, str], ...]  # (database, table) left out
    objects: dict[str, DatabaseObjects]
    users: list[bytes] | None  # users.sql's body (whole-server backups)
    grants: dict[str, list[str] | str] | None  # the grants on the one database backed up
    events: dict[str, bytes]  # database -> its events' definitions


def _facts(server: ServerInfo, survey: _Survey, *, hex_blob: bool) -> SourceFacts:
    """What the snapshot writer needs to know of the source."""
    return SourceFacts(
        flavour=server.flavour.value,
        scope=survey.scope,
        max_allowed_packet=server.max_allowed_packet,
        count_rows=True,  # one row per line (MariaDB) or one INSERT per line (MySQL)
        hex_blob=hex_blob,
        charsets={d.name: (d.character_set, d.collation) for d in survey.databases},
        events=survey.events,
        objects={
            name: Inventory(
                name,
                "",
                "",
                routines=o.routines,
                events=o.events,
                definers=o.definers,
                create_options=o.create_options,
                triggers=o.triggers,
            )
            for name, o in survey.objects.items()
        },
    )


def _manifest_server(address: str, server: ServerInfo) -> ManifestServer:
    return ManifestServer(
        address=address,
        version=server.version,
        version_comment=server.version_comment,
        character_set=server.character_set,
        collation=server.collation,
        max_allowed_packet=server.max_allowed_packet,
        log_bin=server.log_bin,
    )


def _manifest_database(
    database: DatabaseInfo, rows: Mapping[tuple[str, str], int | None]
) -> ManifestDatabase:
    """A database of the manifest, with the rows the dump counted of each table."""
    return ManifestDatabase(
        name=database.name,
        character_set=database.character_set,
        collation=database.collation,
        tables=tuple(
            ManifestTable(
                name=t.name,
                type=t.kind,
                engine=t.engine,
                rows=rows.get((database.name, t.name)),
                rows_estimate=t.rows_estimate,
                data_bytes=t.data_bytes,
            )
            for t in database.tables
        ),
    )
