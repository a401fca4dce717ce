"""The ``mysql+bin://`` backup of a MySQL server by its clone plugin (see :mod:`.clone`).

:func:`scan_with_clone` is what :class:`~plakar_mysql.physical.backup.PhysicalImporter`
runs for MySQL when XtraBackup is absent, once the server is proven local: every
check first (privileges, plugin, the server binary that finishes the clone, the
temporary disk), then the clone, its private start, the files, the manifest.
Nothing is handed to Plakar before the clone is complete, and the manifest
comes last: a failure anywhere leaves no snapshot.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from kloset_sdk import Record
from kloset_sdk.guard import Guard
from plakar_mysql import __version__
from plakar_mysql.core.flavour import version_tuple
from plakar_mysql.core.options import Connection
from plakar_mysql.core.server import ServerInfo, session
from plakar_mysql.physical.clone import (
    PATHS,
    SETTINGS,
    TOOL_NAME,
    Handover,
    check_privileges,
    check_room,
    clone_directory,
    data_bytes,
    ensure_plugin,
    prepare_directory,
    query,
    records,
    run_clone,
)
from plakar_mysql.physical.clone_start import find_mysqld, finish_clone
from plakar_mysql.physical.locality import server_pid
from plakar_mysql.physical.manifest import DATADIR, MANIFEST_PATH, build_manifest

_log = logging.getLogger(__name__)


def _tree_bytes(root: str) -> int:
    total = 0
    for parent, _dirs, names in os.walk(root):
        for name in names:
            total += os.lstat(os.path.join(parent, name)).st_size
    return total


def scan_with_clone(
    conn: Connection, server: ServerInfo, datadir: str, started: datetime, guard: Guard
) -> Iterator[Record]:
    """Records of a clone of the server's data directory, then ``/manifest.json``."""
    with session(conn) as (db, _info):
        pid_file = str(query(db, "SELECT @@pid_file")[0][0])
        pid = server_pid(db, os.path.join(datadir, pid_file), conn.address)
        check_privileges(db)
        ensure_plugin(db)
        names = (*PATHS, *SETTINGS, "log_bin_basename", "relay_log_basename")
        values = query(db, "SELECT " + ", ".join(f"@@{name}" for name in names))[0]
    found = dict(zip(names, values, strict=True))
    paths = {name: str(found[name]) for name in PATHS if found[name]}
    settings = {name: str(found[name]) for name in SETTINGS if found[name] is not None}
    mysqld = find_mysqld(version_tuple(server.version), conn.bin_dir)
    data = data_bytes(
        datadir, [str(found["log_bin_basename"] or ""), str(found["relay_log_basename"] or "")]
    )
    with clone_directory(guard) as parent:
        prepare_directory(parent, pid)
        free = check_room(parent, data)
        target = os.path.join(parent, "data")
        _log.info(
            f"cloning the data directory of MySQL {server.version} at {conn.address} with the "
            f"clone plugin into {parent} (about {data / 2**20:.1f} MiB, "
            f"{free / 2**20:.0f} MiB free there)"
        )
        began = time.monotonic()
        run_clone(conn, target, guard)
        cloned = _tree_bytes(target)
        _log.info(f"cloned {cloned / 2**20:.1f} MiB in {time.monotonic() - began:.1f} s")
        point = finish_clone(mysqld, target, paths, settings, guard)
        held = _tree_bytes(target)
        _log.info(
            "the clone's point: "
            + (
                f"{point.file}:{point.position}, GTID set {point.gtid or '(none)'}"
                if point
                else "none"
            )
        )
        yield Record.directory("/", started)
        yield Record.directory(DATADIR, started)
        handover = Handover()
        yield from records(target, started, handover)
        handover.wait_all()  # Plakar has read every file: the directory may go
        finished = datetime.now(UTC)
        _log.info(
            f"handed {len(handover.files)} files, {sum(handover.files.values()) / 2**20:.1f} MiB "
            f"(at most {max(cloned, held) / 2**20:.1f} MiB of temporary disk in {parent})"
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
                "settings": settings,
            },
            tool={
                "name": TOOL_NAME,
                "path": mysqld,
                "version": server.version,
                "arguments": ["CLONE LOCAL DATA DIRECTORY"],
                "temporary_bytes": max(cloned, held),
            },
            metadata={},
            files=handover.files,
            peak_spooled_bytes=0,
            started_at=started.isoformat(),
            finished_at=finished.isoformat(),
            binlog=point,
        )
        data_out = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
        yield Record.file(MANIFEST_PATH, lambda: io.BytesIO(data_out), started, size=len(data_out))
