"""The drill of a logical snapshot: a fresh server, the whole restore, then the checks.

``/catalog.json`` comes first: it names the flavour, hence the server to
install.  The restore is the logical exporter's own, with what a DBA's full
restore would give it: every database and object, the accounts
(``users=true``), ``verify=true`` (each table dumped again from the server and
compared with its file) and ``jobs``.  Then the checks
(:mod:`~plakar_mysql.drill.checks`) compare the server with what the backup
recorded: rows per table and each table file's SHA-256 (``/manifest.json``),
the catalog's views, routines, triggers and events, the accounts and grants of
``/server/users.sql``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import pymysql

from kloset_sdk import Options, Record
from plakar_mysql.core.client import blocks
from plakar_mysql.core.errors import PlakarMySQLError
from plakar_mysql.core.flavour import Flavour
from plakar_mysql.drill import checks
from plakar_mysql.drill.report import DrillReport
from plakar_mysql.drill.run import Run
from plakar_mysql.drill.scope import ScopedGuard
from plakar_mysql.drill.server import DrillError, DrillServer, find_installer, find_server, install
from plakar_mysql.drill.space import (
    LOGICAL_FACTOR,
    MYSQL_SERVER_FOOTPRINT,
    SERVER_FOOTPRINT,
    SpaceWatch,
    refuse_without,
)
from plakar_mysql.drill.tap import Tap
from plakar_mysql.logical.layout import (
    CATALOG_PATH,
    JSON_LIMIT,
    MANIFEST_PATH,
    USERS_PATH,
    Catalog,
    SnapshotError,
    object_path,
    read_capped,
)
from plakar_mysql.logical.restore import MySQLExporter

_log = logging.getLogger(__name__)
_KEPT = (MANIFEST_PATH, USERS_PATH)


def read_catalog(record: Record) -> tuple[Catalog, Record]:
    """The catalog, and its record again, to be handed on (its stream is spent)."""
    stream = record.open()
    try:
        data = read_capped(blocks(stream), JSON_LIMIT)
    except SnapshotError as exc:
        raise DrillError(f"{CATALOG_PATH}: {exc}") from None
    finally:
        stream.close()
    try:
        catalog = Catalog.decode(data)
    except SnapshotError as exc:
        raise DrillError(f"{CATALOG_PATH}: {exc}") from None
    return catalog, record.with_opener(lambda: io.BytesIO(data))


def _flavour(catalog: Catalog) -> Flavour:
    try:
        return Flavour(catalog.flavour)
    except ValueError:
        raise DrillError(f"{CATALOG_PATH}: unknown flavour {catalog.flavour!r}") from None


class Keeper:
    """The small files the checks read again (manifest, users), kept as they pass."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def records(self, records: Iterator[Record]) -> Iterator[Record]:
        for record in records:
            if record.pathname in _KEPT and record.opener is not None:
                yield self._kept(record)
            else:
                yield record

    def _kept(self, record: Record) -> Record:
        """``record`` read whole (it is small) and handed on from memory."""
        stream = record.open()
        try:
            data = read_capped(blocks(stream), JSON_LIMIT * 4)
        except SnapshotError as exc:
            raise DrillError(f"{record.pathname}: {exc}") from None
        finally:
            stream.close()
        self.files[record.pathname] = data
        return record.with_opener(lambda: io.BytesIO(data))


def drill_logical(
    run: Run, catalog_record: Record, ahead: list[Record], rest: Iterator[Record]
) -> None:
    """Install, start, restore, check; the server and its directory gone at the end."""
    config, tmpdir, guard, drill = run.config, run.tmpdir, run.guard, run.drill
    catalog, catalog_record = read_catalog(catalog_record)
    flavour = _flavour(catalog)
    binary = find_server(flavour, None, config.bin_dir)
    installer = find_installer(binary, config.bin_dir)
    footprint = MYSQL_SERVER_FOOTPRINT if flavour is Flavour.MYSQL else SERVER_FOOTPRINT
    refuse_without(tmpdir, footprint, "for the throwaway server")
    private = guard.temp_dir("plakar-drill-", dir=tmpdir)
    try:
        datadir = os.path.join(private, "data")
        drill.server = f"{flavour.title} {'.'.join(map(str, binary.version))} ({binary.path})"
        with drill.phase("start"):
            install(installer, datadir, private, guard, flavour)
            server = DrillServer(
                binary, datadir, private, guard, start_timeout=config.start_timeout
            )
            server.__enter__()
        try:
            with contextlib.closing(server.connect()) as db:
                kept = {
                    (str(u), str(h))
                    for u, h in checks.rows(db, "SELECT User, Host FROM mysql.user")
                }
            tap = Tap(SpaceWatch(private, LOGICAL_FACTOR).admit)
            keeper = Keeper()
            records = keeper.records(tap.records(_chain([*ahead, catalog_record], rest)))
            _load(run, server, catalog, tap, records)
            with drill.phase("check"):
                try:
                    _check(server, catalog, (tap, keeper), kept, drill)
                except pymysql.err.MySQLError as exc:  # the server went away, say
                    drill.problems.append(f"the checks stopped: {exc.args[-1]}")
        finally:
            server.__exit__(None, None, None)
    finally:
        guard.remove_dir(private)


def _load(
    run: Run, server: DrillServer, catalog: Catalog, tap: Tap, records: Iterator[Record]
) -> None:
    """The logical exporter's restore into the throwaway server, timed."""
    config, drill = run.config, run.drill
    settings = {
        "location": "mysql://localhost",
        "socket": server.socket,
        "username": "root",
        "verify": "true",
        "users": "true" if catalog.users else "false",
    }
    if config.jobs is not None:
        settings["jobs"] = str(config.jobs)
    if config.bin_dir is not None:
        settings["bin_dir"] = config.bin_dir
    exporter = MySQLExporter(
        Options(guard=ScopedGuard(run.guard, server.private)), "mysql", settings
    )
    with drill.phase("load"):
        try:
            exporter.export(records, run.report)
        except PlakarMySQLError as exc:
            raise DrillError(f"the snapshot does not restore: {exc}") from None
    drill.phases["load"] -= tap.fetch_seconds
    drill.phases["fetch"] += tap.fetch_seconds


def _chain(first: list[Record], rest: Iterator[Record]) -> Iterator[Record]:
    yield from first
    yield from rest


def _manifest(keeper: Keeper, drill: DrillReport) -> dict[str, Any]:
    data = keeper.files.get(MANIFEST_PATH)
    if data is None:
        drill.problems.append(f"the snapshot has no {MANIFEST_PATH}: nothing to check rows against")
        return {}
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        drill.problems.append(f"{MANIFEST_PATH} is not JSON ({exc})")
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _check(
    server: DrillServer,
    catalog: Catalog,
    seen: tuple[Tap, Keeper],
    kept: set[tuple[str, str]],
    drill: DrillReport,
) -> None:
    """Every database of the catalog, then the accounts, against what the backup recorded."""
    tap, keeper = seen
    manifest = _manifest(keeper, drill)
    recorded_rows = {
        (d.get("name"), t.get("name")): t.get("rows")
        for d in manifest.get("databases", [])
        if isinstance(d, dict)
        for t in d.get("tables", [])
        if isinstance(t, dict)
    }
    files = manifest.get("files", {})
    files = files if isinstance(files, dict) else {}
    digests = 0
    with contextlib.closing(server.connect()) as db:
        for inventory in catalog.databases:
            result = drill.database(inventory.database)
            for table in inventory.tables:
                path = object_path("table", inventory.database, table)
                result.tables += 1
                stream = tap.streams.get(path)
                result.bytes += stream.size if stream is not None else 0
                counted = checks.count_rows(db, inventory.database, table)
                if isinstance(counted, str):
                    result.problems.append(f"table {table!r} cannot be read: {counted}")
                    continue
                result.rows += counted
                wanted = recorded_rows.get((inventory.database, table))
                if isinstance(wanted, int) and wanted != counted:
                    result.problems.append(
                        f"table {table!r} has {counted} row(s), the backup counted {wanted}"
                    )
                entry = files.get(path)
                recorded = entry.get("sha256") if isinstance(entry, dict) else None
                if recorded is None:
                    continue
                digests += 1
                if tap.digest(path) != recorded:
                    result.problems.append(
                        f"table {table!r}: its file is not the one the backup wrote "
                        "(SHA-256 differs from the manifest's)"
                    )
            checks.check_views(db, result, inventory.views)
            checks.check_code(db, result, inventory.routines, inventory.triggers, inventory.events)
        if catalog.users:
            users = keeper.files.get(USERS_PATH)
            accounts = drill.database("(accounts)")
            if users is None:
                accounts.problems.append(f"the catalog lists accounts, but {USERS_PATH} is missing")
            else:
                checks.check_accounts(db, accounts, users, kept)
    tables = sum(d.tables for d in drill.databases)
    if tables and not digests:
        drill.notes.append(
            "the manifest records no table digests (a backup made before they were): "
            "tables were compared with their files only (verify=true)"
        )
