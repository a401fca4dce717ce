"""The ``mysql+drill://`` exporter: tell the snapshot's kind, drill it, report, fail on a mismatch.

The kind is told by the first file Plakar hands over (``/catalog.json``,
``/datadir/...`` or ``/binlog/...``).  Whatever happens, the report is
printed (``plakar-mysql:`` lines) and, with ``report=PATH``, written as JSON;
any mismatch, or a snapshot that does not restore, fails the restore with one
line, so ``plakar restore`` exits non-zero.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Mapping

from kloset_sdk import ConnectorInfo, Exporter, Options, Record, Report, Result
from plakar_mysql.core.errors import PlakarMySQLError
from plakar_mysql.core.kinds import BINLOG, LOGICAL, PHYSICAL, kind_of_path
from plakar_mysql.core.option_models import DrillOptions
from plakar_mysql.drill.binlog import drill_binlog
from plakar_mysql.drill.logical import drill_logical
from plakar_mysql.drill.physical import drill_physical
from plakar_mysql.drill.report import DrillReport
from plakar_mysql.drill.run import Run
from plakar_mysql.drill.server import DrillError
from plakar_mysql.logical.layout import CATALOG_PATH

_log = logging.getLogger(__name__)


class DrillExporter(Exporter):
    """Restores a snapshot into a throwaway server, checks it, removes everything."""

    def __init__(self, options: Options, scheme: str, config: Mapping[str, str]) -> None:
        self.config = DrillOptions.parse(config, scheme)
        self.tmpdir = self.config.tmpdir or tempfile.gettempdir()
        self.guard = options.guard

    def info(self) -> ConnectorInfo:
        return ConnectorInfo(origin="drill", type="mysql", root="/")

    def ping(self) -> None:
        if not os.access(self.tmpdir, os.W_OK | os.X_OK):
            raise DrillError(f"tmpdir {self.tmpdir} is not writable")

    def export(self, records: Iterator[Record], report: Report) -> None:
        drill = DrillReport()
        run = Run(self.config, self.tmpdir, self.guard, report, drill)
        ahead: list[Record] = []
        try:
            first = _first_file(records, ahead)
            kind = kind_of_path(first.pathname) if first is not None else None
            if first is None or kind is None:
                raise DrillError(
                    "this is not a MySQL snapshot (no /catalog.json, /datadir or /binlog)"
                )
            drill.kind = kind.name
            if kind is LOGICAL:
                if first.pathname != CATALOG_PATH:
                    raise DrillError(
                        f"a drill restores a whole logical snapshot: {CATALOG_PATH} is missing "
                        "(drill the snapshot, not a path inside it)"
                    )
                drill_logical(run, first, ahead, records)
            elif kind is PHYSICAL:
                drill_physical(run, _chain(ahead, first, records))
            elif kind is BINLOG:
                drill_binlog(_chain(ahead, first, records), report, drill)
        except (PlakarMySQLError, OSError) as exc:
            if isinstance(exc, OSError):  # a temporary directory that cannot be made
                drill.problems.append(f"{exc.filename or self.tmpdir}: {exc.strerror}")
            else:
                drill.problems.append(str(exc))
            for record in records:  # Plakar waits for a result for each
                report(Result.failed(record, "skipped"))
        finally:
            drill.finish()
            for line in drill.lines():
                _log.info(line)
            if self.config.report is not None:
                self._write(drill)
        if not drill.ok:
            found = drill.mismatches()
            more = f" (and {len(found) - 1} more: see the report)" if len(found) > 1 else ""
            raise DrillError(f"drill failed: {found[0]}{more}")

    def _write(self, drill: DrillReport) -> None:
        assert self.config.report is not None
        try:
            drill.write_json(self.config.report)
        except OSError as exc:
            drill.problems.append(f"cannot write the report {self.config.report}: {exc.strerror}")


def _first_file(records: Iterator[Record], ahead: list[Record]) -> Record | None:
    """The first record with content; the directories before it go to ``ahead``."""
    for record in records:
        if record.file_info is not None and record.file_info.is_dir:
            ahead.append(record)
            continue
        return record
    return None


def _chain(ahead: list[Record], first: Record, rest: Iterator[Record]) -> Iterator[Record]:
    yield from ahead
    yield first
    yield from rest
