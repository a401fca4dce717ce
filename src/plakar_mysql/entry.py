"""Executable entry points: ``mysql-importer`` and ``mysql-exporter`` in the package.

Each kind of backup is imported only once the URI has chosen it, and an
importer never imports the restore side: start-up time and the resident set
of every backup pay only for what that backup runs (PyInstaller still finds
these imports and bundles them).  Each ``main`` sets up, before anything
runs, where progress and notices go (:mod:`plakar_mysql.core.logs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from plakar_mysql.binlog import SCHEME as BINLOG
from plakar_mysql.core.heap import bound_malloc
from plakar_mysql.core.logs import configure as configure_logging
from plakar_mysql.drill import SCHEME as DRILL
from plakar_mysql.physical import SCHEME as PHYSICAL

if TYPE_CHECKING:
    from kloset_sdk import Exporter, Importer, Options


def _scheme(scheme: str, config: Mapping[str, str]) -> str:
    """The kind of backup: the location's scheme (Plakar's may be missing)."""
    return urlsplit(config.get("location", "")).scheme or scheme


def make_importer(options: Options, scheme: str, config: Mapping[str, str]) -> Importer:
    """By the URI scheme: physical (mysql+bin://), binary logs (mysql+binlog://) or
    logical (mysql://, mariadb://)."""
    kind = _scheme(scheme, config)
    if kind == PHYSICAL:
        from plakar_mysql.physical.backup import PhysicalImporter

        return PhysicalImporter(options, scheme, config)
    if kind == BINLOG:
        from plakar_mysql.binlog.backup import BinlogImporter

        return BinlogImporter(options, scheme, config)
    from plakar_mysql.logical.backup import MySQLImporter

    return MySQLImporter(options, scheme, config)


def make_exporter(options: Options, scheme: str, config: Mapping[str, str]) -> Exporter:
    """By the URI scheme: physical restore, binary-log replay, restore drill or logical
    restore."""
    kind = _scheme(scheme, config)
    if kind == DRILL:
        from plakar_mysql.drill.exporter import DrillExporter

        return DrillExporter(options, scheme, config)
    if kind == PHYSICAL:
        from plakar_mysql.physical.restore import PhysicalExporter

        return PhysicalExporter(options, scheme, config)
    if kind == BINLOG:
        from plakar_mysql.binlog.restore import BinlogExporter

        return BinlogExporter(options, scheme, config)
    from plakar_mysql.logical.restore import MySQLExporter

    return MySQLExporter(options, scheme, config)


def importer_main() -> None:
    from kloset_sdk import run_importer  # the importer's side only

    bound_malloc()
    configure_logging()
    run_importer(make_importer)


def exporter_main() -> None:
    from kloset_sdk import run_exporter  # the exporter's side only

    bound_malloc()
    configure_logging()
    run_exporter(make_exporter)
