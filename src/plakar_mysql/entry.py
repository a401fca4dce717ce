"""Executable entry points: ``mysql-importer`` and ``mysql-exporter`` in the package."""

from __future__ import annotations

from kloset_sdk import run_exporter, run_importer
from plakar_mysql.exporter import MySQLExporter
from plakar_mysql.heap import bound_malloc
from plakar_mysql.importer import MySQLImporter


def importer_main() -> None:
    bound_malloc()
    run_importer(MySQLImporter)


def exporter_main() -> None:
    bound_malloc()
    run_exporter(MySQLExporter)
