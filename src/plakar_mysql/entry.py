"""Executable entry points: ``mysql-importer`` and ``mysql-exporter`` in the package.

Each kind of backup is imported only once the URI has chosen it, and an
importer never imports the restore side: start-up time and the resident set
of every backup pay only for what that backup runs (PyInstaller still finds
these imports and bundles them).  Each ``main`` sets up, before anything
runs, where progress and notices go (:mod:`plakar_mysql.core.logs`), and
serves each connector wrapped so that a driver error no code put in words is
told as the server's answer, in one line, not as a bug.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

from kloset_sdk import (
    ConnectorInfo,
    Exporter,
    Importer,
    Options,
    Record,
    Report,
    Result,
    run_exporter,
    run_importer,
)
from plakar_mysql.binlog import SCHEME as BINLOG
from plakar_mysql.core.errors import server_answers
from plakar_mysql.core.heap import bound_malloc
from plakar_mysql.core.logs import configure as configure_logging
from plakar_mysql.physical import SCHEME as PHYSICAL


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
    """By the URI scheme: physical restore, binary-log replay or logical restore."""
    kind = _scheme(scheme, config)
    if kind == PHYSICAL:
        from plakar_mysql.physical.restore import PhysicalExporter

        return PhysicalExporter(options, scheme, config)
    if kind == BINLOG:
        from plakar_mysql.binlog.restore import BinlogExporter

        return BinlogExporter(options, scheme, config)
    from plakar_mysql.logical.restore import MySQLExporter

    return MySQLExporter(options, scheme, config)


class _ToldImporter(Importer):
    """An importer whose escaping driver errors are told as the server's answers,
    not as bugs (:func:`~plakar_mysql.core.errors.server_answers`)."""

    def __init__(self, inner: Importer) -> None:
        self._inner = inner

    def info(self) -> ConnectorInfo:
        with server_answers():
            return self._inner.info()

    def scan(self) -> Iterator[Record]:
        with server_answers():
            yield from self._inner.scan()

    def acknowledge(self, result: Result) -> None:
        with server_answers():
            self._inner.acknowledge(result)

    def ping(self) -> None:
        with server_answers():
            self._inner.ping()

    def close(self) -> None:
        with server_answers():
            self._inner.close()


class _ToldExporter(Exporter):
    """The same for an exporter."""

    def __init__(self, inner: Exporter) -> None:
        self._inner = inner

    def info(self) -> ConnectorInfo:
        with server_answers():
            return self._inner.info()

    def export(self, records: Iterator[Record], report: Report) -> None:
        with server_answers():
            self._inner.export(records, report)

    def ping(self) -> None:
        with server_answers():
            self._inner.ping()

    def close(self) -> None:
        with server_answers():
            self._inner.close()


def _told_importer(options: Options, scheme: str, config: Mapping[str, str]) -> Importer:
    with server_answers():
        return _ToldImporter(make_importer(options, scheme, config))


def _told_exporter(options: Options, scheme: str, config: Mapping[str, str]) -> Exporter:
    with server_answers():
        return _ToldExporter(make_exporter(options, scheme, config))


def importer_main() -> None:
    bound_malloc()
    configure_logging()
    run_importer(_told_importer)


def exporter_main() -> None:
    bound_malloc()
    configure_logging()
    run_exporter(_told_exporter)
