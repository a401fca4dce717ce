"""The physical backup side: copy a running server's data directory into a snapshot.

``scan`` checks what a DBA would check first (the data directory is on this
machine, the account holds the privileges the tool needs, the tool is of the
server's version), then runs ``mariadb-backup --backup --stream=mbstream`` (or
XtraBackup for MySQL) and hands each file of its stream to Plakar as it
streams, under ``/datadir/<path>``.  Only once the tool has exited 0 and said
``completed OK!`` does it hand over ``/manifest.json``; if anything fails,
``scan`` raises and Plakar keeps no snapshot.

An interrupted backup (Plakar SIGKILLs the plugin on SIGINT or SIGTERM) leaves
no snapshot either, and nothing running: the tool runs under the SDK's guard,
whose guardian kills it - releasing its ``BACKUP STAGE`` lock and connection
on the server - and removes its work directory (see :mod:`.tool`).
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pymysql

from kloset_sdk import ConnectorInfo, Flags, Importer, Options, Record
from kloset_sdk.records import Content
from plakar_mysql import __version__
from plakar_mysql.core.flavour import Flavour, version_tuple
from plakar_mysql.core.grants import session_grants
from plakar_mysql.core.kinds import PHYSICAL, refuse_foreign_options
from plakar_mysql.core.option_models import PhysicalBackupOptions
from plakar_mysql.core.options import ConfigError
from plakar_mysql.core.server import ServerError, connect, current_user, session
from plakar_mysql.physical import SCHEME
from plakar_mysql.physical.backup_tool import (
    BackupProcess,
    PhysicalBackupError,
    Progress,
    find_backup_tool,
)
from plakar_mysql.physical.clone import locality_error, xtrabackup_absent
from plakar_mysql.physical.clone_backup import scan_with_clone
from plakar_mysql.physical.demux import Demultiplexer
from plakar_mysql.physical.errors import os_error_line
from plakar_mysql.physical.locality import prove_local
from plakar_mysql.physical.manifest import (
    CHECKPOINTS,
    DATADIR,
    MANIFEST_PATH,
    METADATA_FILES,
    METADATA_LIMIT,
    build_manifest,
)
from plakar_mysql.physical.mbstream import COPIED_THROUGHOUT

_log = logging.getLogger(__name__)

MAX_DEFAULT_PARALLEL = 8
"""The tool's ``--parallel`` when the option is not given: Plakar's concurrency, at most this."""
READER_WAIT = 5.0
"""Seconds the stream waits for Plakar to come for a file before holding it aside on
disk: a short wait, so that a stream waiting on a reader that waits on the stream
costs seconds (one backup of the bench took 63.7 s with 60 s here)."""


def parse_physical(scheme: str, config: Mapping[str, str]) -> PhysicalBackupOptions:
    """The options of a ``mysql+bin://`` backup; refuses options of other kinds."""
    refuse_foreign_options(config, PHYSICAL, backup=True)
    parsed = PhysicalBackupOptions.parse(config, scheme)
    if parsed.databases:
        raise ConfigError(
            f"{SCHEME}:// copies the whole data directory: give no database "
            "(back up single databases with mysql://)"
        )
    return parsed


def missing_privileges(db: pymysql.connections.Connection[Any], flavour: Flavour) -> list[str]:
    """Global privileges the backup tool needs and the session lacks; those of its
    active roles and of ``PUBLIC`` count."""
    if flavour is Flavour.MARIADB:
        needed = ["RELOAD", "PROCESS", "LOCK TABLES", "BINLOG MONITOR"]
    else:
        needed = ["RELOAD", "PROCESS", "LOCK TABLES", "REPLICATION CLIENT", "BACKUP_ADMIN"]
    return session_grants(db).lacking(needed)


def _one(db: pymysql.connections.Connection[Any], sql: str) -> Any:
    with db.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
        return None if row is None else row[0]


def check_datadir(datadir: str, address: str) -> None:
    """The tool reads the data files directly: they must be here, and readable."""
    if not os.path.isdir(datadir):
        raise ServerError(
            f"the server at {address} keeps its data in {datadir}, which is not on this "
            "machine: run the physical backup where the server runs"
        )
    if not os.access(datadir, os.R_OK | os.X_OK):
        raise ServerError(
            f"cannot read the data directory {datadir}: run the backup as root or as the "
            "server's own system user"
        )


class PhysicalImporter(Importer):
    """Backs up a whole server's data directory with its own physical backup tool."""

    def __init__(self, options: Options, scheme: str, config: Mapping[str, str]) -> None:
        self.config = parse_physical(scheme, config)
        # Plakar reads as many records at once as its -concurrency: the tool copies
        # (and interleaves in its stream) as many files, each handed over as it streams.
        self.parallel = (
            self.config.parallel
            if "parallel" in config
            else max(1, min(options.max_concurrency, MAX_DEFAULT_PARALLEL))
        )
        self.guard = options.guard
        # Plakar reads every file of the stream as it comes when it reads at least as
        # many records at once as the tool copies files: the stream may wait for them.
        self.reader_wait = READER_WAIT if self.parallel <= options.max_concurrency else 0.0

    def info(self) -> ConnectorInfo:
        return ConnectorInfo(
            origin=self.config.connection.address,
            type="mysql",
            root="/",
            # NEEDACK: a record Plakar skips (excluded) is acknowledged, so the SDK
            # closes its content and the stream moves on without it.
            flags=Flags.STREAM | Flags.NEEDACK,
        )

    def ping(self) -> None:
        connect(self.config.connection).close()

    def scan(self) -> Iterator[Record]:
        started = datetime.now(UTC)
        conn = self.config.connection
        with session(conn) as (db, server):
            datadir = str(_one(db, "SELECT @@datadir"))
            # MySQL without XtraBackup: the server's own clone plugin (see .clone_backup).
            clone = server.flavour is Flavour.MYSQL and xtrabackup_absent(conn.bin_dir)
            try:
                check_datadir(datadir, conn.address)
                prove_local(db, datadir, str(_one(db, "SELECT @@pid_file")), conn.address)
            except ServerError as exc:
                raise (locality_error(exc) if clone else exc) from None
            missing = [] if clone else missing_privileges(db, server.flavour)
            if missing:
                raise ServerError(
                    f"{current_user(db)} lacks what {SCHEME}:// needs: "
                    f"{', '.join(missing)} ON *.* (GRANT {', '.join(missing)} ON *.* TO ...)"
                )
        if clone:
            yield from scan_with_clone(conn, server, datadir, started, self.guard)
            return
        tool = find_backup_tool(server.flavour, version_tuple(server.version), conn.bin_dir)
        _log.info(
            f"copying the data directory {datadir} of {server.flavour.title} "
            f"{server.version} at {conn.address} with {tool.path}"
        )
        yield Record.directory("/", started)
        yield Record.directory(DATADIR, started)
        with BackupProcess(tool, conn, self.parallel, self.guard) as process:
            reader = Demultiplexer(
                process.stdout,
                held_back=COPIED_THROUGHOUT,
                keep=METADATA_FILES,
                keep_limit=METADATA_LIMIT,
                on_progress=Progress(tool.name).update,
                reader_wait=self.reader_wait,
            )
            streamed = False
            try:
                yield from _stream_records(reader, started)
                streamed = True
            except OSError as exc:
                # Holding a file aside (the redo log copy, interleaved chunks) failed: the
                # tool is not at fault, and is killed when the block ends.
                raise PhysicalBackupError(
                    os_error_line("hold a file of the stream aside in", tempfile.gettempdir(), exc)
                ) from None
            except Exception as exc:
                # The tool's own error explains a broken stream better than the stream does.
                failure = process.verdict(timeout=30)
                raise (failure or exc) from None
            finally:
                if not streamed:  # the pump must not wait for readers that are gone
                    reader.stop()
            failure = process.verdict()
            if failure is not None:
                raise failure
        files = {path: content.size for path, content in reader.files_seen.items()}
        metadata = {
            path: content.copy
            for path, content in reader.files_seen.items()
            if path in METADATA_FILES
        }
        if not any(name in metadata for name in CHECKPOINTS):
            raise PhysicalBackupError(
                f"{tool.name} finished without writing {CHECKPOINTS[0]}: the copy is unusable"
            )
        finished = datetime.now(UTC)
        _log.info(
            f"copied {len(files)} files, {sum(files.values()) / 2**20:.1f} MiB "
            f"(at most {reader.peak_spooled_bytes / 2**20:.1f} MiB held aside on disk, "
            f"{reader.peak_memory_bytes / 2**20:.1f} MiB in memory)"
        )
        manifest = build_manifest(
            generator=f"plakar-mysql {__version__}",
            server={
                "address": conn.address,
                "flavour": server.flavour.value,
                "version": server.version,
                "version_comment": server.version_comment,
                "datadir": datadir,
                "log_bin": server.log_bin,
            },
            tool={
                "name": tool.name,
                "path": tool.path,
                "version": tool.version_text,
                "arguments": process.arguments,
            },
            metadata=metadata,
            files=files,
            peak_spooled_bytes=reader.peak_spooled_bytes,
            started_at=started.isoformat(),
            finished_at=finished.isoformat(),
        )
        data = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
        yield Record.file(MANIFEST_PATH, lambda: _bytes(data), started, size=len(data))


def _stream_records(reader: Demultiplexer, started: datetime) -> Iterator[Record]:
    """A record for each file of the tool's stream (and each directory on the way),
    handed over as soon as the file starts: Plakar reads several at once, as the
    tool's ``--parallel`` copies interleave them in the stream."""
    directories = {DATADIR}
    for content in reader.files():
        path = f"{DATADIR}/{content.path}"
        parent = path.rsplit("/", 1)[0]
        for depth in range(2, parent.count("/") + 1):
            directory = "/".join(parent.split("/")[: depth + 1])
            if directory not in directories:
                directories.add(directory)
                yield Record.directory(directory, started)
        yield Record.file(path, content.opened, started)


def _bytes(data: bytes) -> Content:
    return io.BytesIO(data)
