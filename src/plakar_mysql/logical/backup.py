"""The backup side: dump a server's databases into a Plakar snapshot.

``scan`` asks the server what it holds, runs one dump of all the databases of
the backup (one transaction, one point in time), and lays it out one file per
object while it streams (:mod:`plakar_mysql.logical.writer`).  Only once the dump tool
has exited cleanly and written its completion line does it hand over the
per-database files, ``/catalog.json`` and ``/manifest.json``.  If anything
fails, ``scan`` raises and Plakar keeps no snapshot.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from kloset_sdk import ConnectorInfo, Flags, Importer, Options, Record
from plakar_mysql import __version__
from plakar_mysql.core.flavour import Flavour, find_tool
from plakar_mysql.core.kinds import LOGICAL, refuse_foreign_options
from plakar_mysql.core.options import Config, parse
from plakar_mysql.core.server import (
    ServerError,
    connect,
    current_user,
    database_objects,
    describe,
    missing_privileges,
    server_errors,
    server_info,
    user_databases,
)
from plakar_mysql.logical.dump import DumpProcess, dump_arguments
from plakar_mysql.logical.events import dump_events
from plakar_mysql.logical.filters import select
from plakar_mysql.logical.layout import MANIFEST_PATH, Inventory, Scope
from plakar_mysql.logical.users import dump_accounts, grants_on
from plakar_mysql.logical.writer import SnapshotWriter, SourceFacts

_log = logging.getLogger(__name__)

_SECRET_OPTIONS = frozenset({"password", "location", "username"})


def _scope(config: Config) -> Scope:
    if len(config.databases) == 1:
        return "database"
    return "databases" if config.databases else "server"


class MySQLImporter(Importer):
    """Backs up one database, several, or every database of a server."""

    def __init__(self, options: Options, scheme: str, config: Mapping[str, str]) -> None:
        refuse_foreign_options(config, LOGICAL, backup=True)
        self.config = parse("importer", scheme, config)

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
        scope = _scope(self.config)
        with server_errors(conn.address), contextlib.closing(connect(conn)) as db:
            server = server_info(db)
            candidates = list(self.config.databases) or user_databases(db)
            if not candidates:
                raise ServerError(f"{conn.address} holds no database to back up")
            selection = select(self.config, describe(db, candidates))
            databases = list(selection.databases)
            names = [d.name for d in databases]
            missing = missing_privileges(
                db,
                server.flavour,
                names,
                routines=self.config.flag("routines", True),
                triggers=self.config.flag("triggers", True),
                events=self.config.flag("events", True),
            )
            if missing:
                raise ServerError(
                    f"{current_user(db)} lacks what the backup needs: {'; '.join(missing)}"
                )
            objects = database_objects(db, names)
            # Accounts are not transactional: reading them just before the dump
            # is as consistent as reading them inside it.
            with_users = scope == "server" and self.config.flag("users", True)
            users = list(dump_accounts(db)) if with_users else None
            grants = {names[0]: grants_on(db, names[0])} if scope == "database" else None
            events = {
                name: dump_events(db, name, list(objects[name].events))
                for name in names
                if self.config.flag("events", True) and objects[name].events
            }
        tool = find_tool(server.flavour.dump_names, server.flavour, conn.bin_dir)
        args = dump_arguments(
            tool, self.config, names, log_bin=server.log_bin, ignored=selection.ignored
        )
        facts = SourceFacts(
            flavour=server.flavour.value,
            scope=scope,
            max_allowed_packet=server.max_allowed_packet,
            count_rows=tool.flavour is Flavour.MARIADB,
            charsets={d.name: (d.character_set, d.collation) for d in databases},
            events=events,
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
                for name, o in objects.items()
            },
        )
        _log.info(
            f"dumping {len(names)} database(s) from {server.flavour.title} "
            f"{server.version} at {conn.address} with {tool.path}"
        )

        writer = SnapshotWriter(facts, started)
        yield Record.directory("/", started)
        with DumpProcess(tool, args, conn) as dump:
            yield from writer.tables(dump.stream())
            dump.finish()
            binlog = dump.binlog_position()
        yield from writer.held(users)
        finished = datetime.now(UTC)

        manifest: dict[str, Any] = {
            "format": 2,
            "generator": f"plakar-mysql {__version__}",
            "scope": scope,
            "flavour": server.flavour.value,
            "server": {
                "address": conn.address,
                "version": server.version,
                "version_comment": server.version_comment,
                "character_set": server.character_set,
                "collation": server.collation,
                "max_allowed_packet": server.max_allowed_packet,
                "log_bin": server.log_bin,
            },
            "dump_tool": {"path": tool.path, "version": tool.version_text, "arguments": args},
            "binlog": None
            if binlog is None
            else {"file": binlog.file, "position": binlog.position, "gtid": binlog.gtid},
            "options": {
                k: v for k, v in sorted(self.config.values.items()) if k not in _SECRET_OPTIONS
            },
            "databases": [
                {
                    "name": d.name,
                    "character_set": d.character_set,
                    "collation": d.collation,
                    "tables": [
                        {
                            "name": t.name,
                            "type": t.kind,
                            "engine": t.engine,
                            "rows": writer.rows.get((d.name, t.name)),
                            "rows_estimate": t.rows_estimate,
                            "data_bytes": t.data_bytes,
                        }
                        for t in d.tables
                    ],
                }
                for d in databases
            ],
            "grants": grants,
            "files": writer.files,
            "started_at": started.isoformat(),
            "finished_at": finished.isoformat(),
        }
        data = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
        yield Record.file(MANIFEST_PATH, lambda: io.BytesIO(data), started, size=len(data))
