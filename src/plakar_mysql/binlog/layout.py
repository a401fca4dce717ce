"""What a binary-log snapshot holds, and how its manifest is written and read.

::

    /binlog/<file>     every binary log the server still had, byte for byte
    /manifest.json     last: per log its name, size, time span and GTID range,
                       the server's gtid_binlog_pos and server_id (MySQL: also
                       server_uuid, gtid_executed and gtid_purged, GTID sets)

The backup (:mod:`.backup`) writes this layout with :func:`manifest_bytes`; the
replay (:mod:`.restore`) reads it back.  A snapshot is untrusted input: the
replay takes only the logs' names and sizes from the manifest
(:func:`listed_logs`), each refused in one line if it is not what the
backup writes, and checks them against the logs it was given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from plakar_mysql.core.errors import PlakarMySQLError

__all__ = [
    "BINLOG_DIR",
    "FORMAT",
    "KIND",
    "MANIFEST_LIMIT",
    "MANIFEST_PATH",
    "ManifestError",
    "listed_logs",
    "log_path",
    "manifest_bytes",
]

BINLOG_DIR = "/binlog"
MANIFEST_PATH = "/manifest.json"
KIND = "binlog"
FORMAT = 1
MANIFEST_LIMIT = 16 << 20  # some 40,000 logs' entries: a larger manifest is not ours


class ManifestError(PlakarMySQLError, ValueError):
    """``/manifest.json`` is not JSON, not a binlog manifest, or lists its logs
    wrongly; one line for the user, which names the file."""


def log_path(name: str) -> str:
    """Where the binary log ``name`` sits in the snapshot: ``/binlog/<name>``."""
    return f"{BINLOG_DIR}/{name}"


def manifest_bytes(
    *,
    generator: str,
    flavour: str,
    server: Mapping[str, Any],
    server_id: int,
    gtid_binlog_pos: str | None,
    files: Sequence[Mapping[str, Any]],
    options: Mapping[str, str],
    started_at: str,
    finished_at: str,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """``/manifest.json`` of a binlog snapshot, as stored: indented UTF-8 JSON.

    ``files`` holds one entry per log, in archive order (the scanner's
    ``FileFacts.as_json``); the last one's ``gtid_end`` is the snapshot's.
    ``extra`` holds what one flavour adds (MySQL: ``server_uuid``,
    ``gtid_executed``, ``gtid_purged``), after ``server_id``."""
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "kind": KIND,
        "generator": generator,
        "flavour": flavour,
        "server": dict(server),
        "server_id": server_id,
        **dict(extra or {}),
        "gtid_binlog_pos": gtid_binlog_pos,
        "gtid_end": files[-1].get("gtid_end") if files else None,
        "files": [dict(entry) for entry in files],
        "options": dict(options),
        "started_at": started_at,
        "finished_at": finished_at,
    }
    return (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()


def listed_logs(path: str, data: bytes) -> dict[str, int]:
    """The logs a binlog manifest lists, with their sizes; :class:`ManifestError`
    if ``data`` is not such a manifest (``path`` names it in the message)."""
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise ManifestError(f"{path} is not JSON ({exc})") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        raise ManifestError(
            f'{path} is not the manifest of a binlog snapshot (no "kind": "binlog")'
        )
    listed: dict[str, int] = {}
    for entry in files if isinstance(files, list) else [None]:
        name = entry.get("name") if isinstance(entry, dict) else None
        size = entry.get("size") if isinstance(entry, dict) else None
        if not isinstance(name, str) or type(size) is not int or size < 0 or name in listed:
            raise ManifestError(f'{path}: "files" must list each log once, with its name and size')
        listed[name] = size
    return listed
