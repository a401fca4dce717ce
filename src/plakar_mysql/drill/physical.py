"""The drill of a physical snapshot: the files, ``--prepare``, a start on them, the checks.

The physical exporter does the restore as a user's would, into a directory of
the drill's: every file checked against ``/manifest.json``, then
``mariadb-backup --prepare`` (and its private start that sets the backup's
point).  The drill then starts the server of the backup's major version on
those files, with the backup's InnoDB layout, and reads every table whole
(``CHECK TABLE``): a damaged page fails the check, naming its table.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import pymysql

from kloset_sdk import Options, Record
from plakar_mysql.core.errors import PlakarMySQLError
from plakar_mysql.core.flavour import Flavour, version_tuple
from plakar_mysql.drill import checks
from plakar_mysql.drill.report import DrillReport
from plakar_mysql.drill.run import Run
from plakar_mysql.drill.scope import ScopedGuard
from plakar_mysql.drill.server import DrillError, DrillServer, find_server
from plakar_mysql.drill.space import PHYSICAL_FACTOR, SpaceWatch, refuse_without
from plakar_mysql.drill.tap import Tap
from plakar_mysql.physical.layout import FILE_NAME as LAYOUT_FILE
from plakar_mysql.physical.layout import SIZE_LIMIT as LAYOUT_LIMIT
from plakar_mysql.physical.layout import LayoutError, parse_layout
from plakar_mysql.physical.manifest import INFO, parse_key_values
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


def drill_physical(run: Run, records: Iterator[Record]) -> None:
    """Restore, prepare, start, check; the server and its directory gone at the end."""
    config, tmpdir, guard, drill, report = run.config, run.tmpdir, run.guard, run.drill, run.report
    # Fail before fetching anything when no MariaDB server is there at all.
    find_server(Flavour.MARIADB, None, config.bin_dir)
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
        began = time.monotonic()
        try:
            exporter.export(ended.records(tap.records(records)), report)
        except PlakarMySQLError as exc:
            raise DrillError(f"the snapshot does not restore: {exc}") from None
        finished = time.monotonic()
        written = (ended.at or finished) - began
        drill.phases["fetch"] += tap.fetch_seconds
        drill.phases["load"] += max(written - tap.fetch_seconds, 0.0)
        drill.phases["prepare"] += finished - (ended.at or finished)
        info = parse_key_values(
            next(
                (d for n in INFO if (d := _read(datadir, n, _INFO_LIMIT)) is not None), b""
            ).decode(errors="replace")
        )
        version = version_tuple(info.get("server_version", "") or info.get("tool_version", ""))
        binary = find_server(Flavour.MARIADB, version[:2] if any(version) else None, config.bin_dir)
        drill.server = f"MariaDB {'.'.join(map(str, binary.version))} ({binary.path})"
        layout_data = _read(datadir, LAYOUT_FILE, LAYOUT_LIMIT + 1)
        try:
            layout = parse_layout(layout_data).arguments() if layout_data is not None else []
        except LayoutError as exc:
            raise DrillError(str(exc)) from None
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
