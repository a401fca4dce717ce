"""The backup side: dump a server's databases into a Plakar snapshot.

``scan`` asks the server what it holds, runs one dump of all the databases of
the backup, hands Plakar the dump as ``/dump.sql`` while it is produced (no
temporary copy), checks that the dump completed, and only then hands over
``/manifest.json``.  If anything fails, ``scan`` raises and Plakar keeps no
snapshot.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from kloset_sdk import ConnectorInfo, Flags, Importer, Options, Record
from plakar_mysql import __version__
from plakar_mysql.dump import DumpProcess, dump_arguments
from plakar_mysql.filters import select
from plakar_mysql.flavour import find_tool
from plakar_mysql.layout import DUMP_PATH, MANIFEST_PATH, DatabaseEntry, DumpHeader, Scope
from plakar_mysql.options import Config, parse
from plakar_mysql.server import (
    DatabaseInfo,
    ServerError,
    connect,
    current_user,
    describe,
    missing_privileges,
    server_info,
    user_databases,
)

_SECRET_OPTIONS = frozenset({"password", "location", "username"})


def _scope(config: Config) -> Scope:
    if len(config.databases) == 1:
        return "database"
    return "databases" if config.databases else "server"


def _header(scope: Scope, flavour: str, dbs: list[DatabaseInfo], packet: int) -> DumpHeader:
    return DumpHeader(
        scope=scope,
        flavour=flavour,
        databases=tuple(
            DatabaseEntry(d.name, d.character_set, d.collation, tuple(t.name for t in d.tables))
            for d in dbs
        ),
        max_allowed_packet=packet,
    )


class MySQLImporter(Importer):
    """Backs up one database, several, or every database of a server."""

    def __init__(self, options: Options, scheme: str, config: Mapping[str, str]) -> None:
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
        with contextlib.closing(connect(conn)) as db:
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
        tool = find_tool(server.flavour.dump_names, server.flavour, conn.bin_dir)
        scope = _scope(self.config)
        args = dump_arguments(
            tool,
            self.config,
            names,
            several=scope != "database",
            log_bin=server.log_bin,
            ignored=selection.ignored,
        )
        header = _header(scope, server.flavour.value, databases, server.max_allowed_packet)
        print(
            f"plakar-mysql: dumping {len(names)} database(s) from {server.flavour.title} "
            f"{server.version} at {conn.address} with {tool.path}",
            file=sys.stderr,
        )

        yield Record.directory("/", started)
        with DumpProcess(tool, args, conn) as dump:
            yield Record.file(DUMP_PATH, lambda: dump.stream(prefix=header.encode()), started)
            dump.finish()
            binlog = dump.binlog_position()
        finished = datetime.now(UTC)

        manifest: dict[str, Any] = {
            "format": header.format,
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
                            "rows_estimate": t.rows_estimate,
                            "data_bytes": t.data_bytes,
                        }
                        for t in d.tables
                    ],
                }
                for d in databases
            ],
            "files": {DUMP_PATH: {"databases": names}},
            "started_at": started.isoformat(),
            "finished_at": finished.isoformat(),
        }
        data = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
        yield Record.file(MANIFEST_PATH, lambda: io.BytesIO(data), started, size=len(data))
