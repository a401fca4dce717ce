"""The drill of a physical snapshot: the files, ``--prepare``, a start on them, the checks.

The physical exporter does the restore as a user's would, into a directory of
the drill's: every file checked against ``/manifest.json``, then
``mariadb-backup --prepare`` (and its private start that sets the backup's
point).  The drill then starts the server of the backup's major version on
those files, with the backup's InnoDB layout, and reads every table whole
(``CHECK TABLE``): a damaged page fails the check, naming its table.

A snapshot of MySQL made by the clone plugin (``/manifest.json``'s tool is
``mysql-clone``) gets no ``--prepare``: the backup finished the clone with a
start of its own, and the physical exporter only writes and checks the files.
The drill then starts MySQL's ``mysqld`` of the version the manifest records,
with the InnoDB settings it records (page size, system tablespace,
``lower_case_table_names``: a data directory starts only with its own), and
checks it the same way.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pymysql

from kloset_sdk import Options, Record
from plakar_mysql.core.client import blocks
from plakar_mysql.core.errors import PlakarMySQLError
from plakar_mysql.core.flavour import Flavour, version_tuple
from plakar_mysql.drill import checks
from plakar_mysql.drill.report import DrillReport
from plakar_mysql.drill.run import Run
from plakar_mysql.drill.scope import ScopedGuard
from plakar_mysql.drill.server import DrillError, DrillServer, ServerBinary, find_server
from plakar_mysql.drill.space import PHYSICAL_FACTOR, SpaceWatch, refuse_without
from plakar_mysql.drill.tap import Tap
from plakar_mysql.logical.layout import SnapshotError, read_capped
from plakar_mysql.physical.clone import SETTINGS as CLONE_SETTINGS
from plakar_mysql.physical.clone import TOOL_NAME as CLONE_TOOL
from plakar_mysql.physical.layout import FILE_NAME as LAYOUT_FILE
from plakar_mysql.physical.layout import SIZE_LIMIT as LAYOUT_LIMIT
from plakar_mysql.physical.layout import LayoutError, parse_layout
from plakar_mysql.physical.manifest import INFO, MANIFEST_LIMIT, MANIFEST_PATH, parse_key_values
from plakar_mysql.physical.restore import PhysicalExporter

_INFO_LIMIT = 1 << 20


def _read(datadir: str, name: str, limit: int) -> bytes | None:
    try:
        with open(os.path.join(datadir, name), "rb") as f:
            return f.read(limit)
    except FileNotFoundError:
        return None


class _Exhausted:
    """Notes when the records run out: the files are written, ``--prepare`` starts."""

    def __init__(self, drill: DrillReport) -> None:
        self.at: float | None = None
        self._drill = drill

    def records(self, records: Iterator[Record]) -> Iterator[Record]:
        yield from records
        self.at = time.monotonic()


class _Manifest:
    """``/manifest.json``'s bytes, kept as the record passes (the physical exporter reads
    it too): it says whether the snapshot is a MySQL clone, of which version."""

    def __init__(self) -> None:
        self.data: bytes | None = None

    def records(self, records: Iterator[Record]) -> Iterator[Record]:
        for record in records:
            if record.pathname != MANIFEST_PATH or record.opener is None:
                yield record
                continue
            stream = record.open()
            try:
                data = read_capped(blocks(stream), MANIFEST_LIMIT)
            except SnapshotError as exc:
                raise DrillError(f"{MANIFEST_PATH}: {exc}") from None
            finally:
                stream.close()
            self.data = data
            yield _from_memory(record, data)

    def clone(self) -> dict[str, Any] | None:
        """The manifest's ``server`` of a MySQL clone snapshot; None for another tool."""
        try:
            manifest = json.loads(self.data or b"{}")
        except ValueError:
            return None  # the physical exporter has refused it already
        tool = manifest.get("tool") if isinstance(manifest, dict) else None
        if not isinstance(tool, dict) or tool.get("name") != CLONE_TOOL:
            return None
        server = manifest.get("server")
        return server if isinstance(server, dict) else {}


def _from_memory(record: Record, data: bytes) -> Record:
    return record.with_opener(lambda: io.BytesIO(data))


def _any_server(bin_dir: str | None) -> None:
    """Fail before fetching anything when neither flavour's server is there at all."""
    try:
        find_server(Flavour.MARIADB, None, bin_dir)
    except DrillError:
        try:
            find_server(Flavour.MYSQL, None, bin_dir)
        except DrillError:
            pass
        else:
            return
        raise


def _clone_server(server: dict[str, Any], bin_dir: str | None) -> tuple[ServerBinary, list[str]]:
    """MySQL's ``mysqld`` of the clone's version, and the clone's InnoDB settings as
    arguments (only those the backup records, each one printable value)."""
    version = version_tuple(str(server.get("version", "")))
    binary = find_server(Flavour.MYSQL, version[:2] if any(version) else None, bin_dir)
    settings = server.get("settings")
    settings = settings if isinstance(settings, dict) else {}
    arguments = []
    for name in CLONE_SETTINGS:
        value = settings.get(name)
        if value is None:
            continue
        text = str(value)
        if not text.isprintable() or len(text) > 256:
            raise DrillError(f"{MANIFEST_PATH}: the clone's {name} is malformed")
        arguments.append(f"--{name.replace('_', '-')}={text}")
    return binary, arguments


def _mariadb_server(datadir: str, bin_dir: str | None) -> tuple[ServerBinary, list[str]]:
    """MariaDB's server of the backup tool's version, and the backup's InnoDB layout."""
    info = parse_key_values(
        next((d for n in INFO if (d := _read(datadir, n, _INFO_LIMIT)) is not None), b"").decode(
            errors="replace"
        )
    )
    version = version_tuple(info.get("server_version", "") or info.get("tool_version", ""))
    binary = find_server(Flavour.MARIADB, version[:2] if any(version) else None, bin_dir)
    layout_data = _read(datadir, LAYOUT_FILE, LAYOUT_LIMIT + 1)
    try:
        layout = parse_layout(layout_data).arguments() if layout_data is not None else []
    except LayoutError as exc:
        raise DrillError(str(exc)) from None
    return binary, layout


def drill_physical(run: Run, records: Iterator[Record]) -> None:
    """Restore, prepare, start, check; the server and its directory gone at the end."""
    config, tmpdir, guard, drill, report = run.config, run.tmpdir, run.guard, run.drill, run.report
    _any_server(config.bin_dir)
    refuse_without(tmpdir, 0, "to start")
    private = guard.temp_dir("plakar-drill-", dir=tmpdir)
    try:
        datadir = os.path.join(private, "datadir")
        settings = {"location": f"mysql+bin://{datadir}"}
        if config.bin_dir is not None:
            settings["bin_dir"] = config.bin_dir
        exporter = PhysicalExporter(
            Options(guard=ScopedGuard(guard, private)), "mysql+bin", settings
        )
        tap = Tap(SpaceWatch(private, PHYSICAL_FACTOR).admit)
        ended = _Exhausted(drill)
        kept = _Manifest()
        began = time.monotonic()
        try:
            exporter.export(ended.records(kept.records(tap.records(records))), report)
        except PlakarMySQLError as exc:
            raise DrillError(f"the snapshot does not restore: {exc}") from None
        finished = time.monotonic()
        written = (ended.at or finished) - began
        drill.phases["fetch"] += tap.fetch_seconds
        drill.phases["load"] += max(written - tap.fetch_seconds, 0.0)
        drill.phases["prepare"] += finished - (ended.at or finished)
        clone = kept.clone()
        if clone is not None:
            binary, layout = _clone_server(clone, config.bin_dir)
        else:
            binary, layout = _mariadb_server(datadir, config.bin_dir)
        drill.server = (
            f"{binary.flavour.title} {'.'.join(map(str, binary.version))} ({binary.path})"
        )
        with drill.phase("start"):
            server = DrillServer(
                binary,
                datadir,
                private,
                guard,
                start_timeout=config.start_timeout,
                # The source's accounts, passwords included, are in these files: the
                # checks read tables, so the grant tables are not loaded at all.
                extra=[*layout, "--skip-grant-tables"],
            )
            server.__enter__()
        try:
            with drill.phase("check"), contextlib.closing(server.connect()) as db:
                for name in checks.user_databases(db):
                    result = drill.database(name)
                    try:
                        checks.check_physical_database(db, result)
                    except pymysql.err.MySQLError as exc:  # the server went away, say
                        result.problems.append(f"the checks stopped: {exc.args[-1]}")
        finally:
            server.__exit__(None, None, None)
    finally:
        guard.remove_dir(private)
