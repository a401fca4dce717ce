"""What a physical snapshot says about itself: the tool's metadata files, and ``/manifest.json``.

The backup tools write a few small text files beside the data files: the LSN
range of the copy (``xtrabackup_checkpoints``), the binary log coordinates of
its point in time (``xtrabackup_binlog_info``) and a summary
(``xtrabackup_info``).  MariaDB 11 renamed them ``mariadb_backup_*``.  They
stay in the snapshot as they are (``--prepare`` needs them) and their values are
copied into the manifest, where a DBA reads them without restoring anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from plakar_mysql.core.errors import PlakarMySQLError

DATADIR = "/datadir"
MANIFEST_PATH = "/manifest.json"
KIND = "physical"
METADATA_LIMIT = 1 << 20
#: ``/manifest.json`` is read whole: about 100 bytes a file, so a million files fit.
MANIFEST_LIMIT = 128 << 20
_SHOWN = 3

CHECKPOINTS = ("xtrabackup_checkpoints", "mariadb_backup_checkpoints")
BINLOG_INFO = ("xtrabackup_binlog_info", "mariadb_backup_binlog_info")
INFO = ("xtrabackup_info", "mariadb_backup_info")
METADATA_FILES = frozenset((*CHECKPOINTS, *BINLOG_INFO, *INFO, "backup-my.cnf"))


def parse_key_values(text: str) -> dict[str, str]:
    """``key = value`` lines, as in ``xtrabackup_checkpoints`` and ``xtrabackup_info``."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


@dataclass(frozen=True)
class BinlogPoint:
    file: str
    position: int
    gtid: str | None


def parse_binlog_info(text: str) -> BinlogPoint | None:
    """``file<TAB>position[<TAB>gtid]``: where the copy stands in the binary log."""
    fields = text.strip().split("\t")
    if len(fields) < 2 or not fields[1].isdigit():
        return None
    gtid = fields[2].strip() if len(fields) > 2 and fields[2].strip() else None
    return BinlogPoint(fields[0], int(fields[1]), gtid)


def _lsn(values: dict[str, str], key: str) -> int | None:
    value = values.get(key, "")
    return int(value) if value.isdigit() else None


def first_of(names: tuple[str, ...], files: dict[str, bytes]) -> str | None:
    for name in names:
        if name in files:
            return files[name].decode(errors="replace")
    return None


def build_manifest(
    *,
    generator: str,
    server: dict[str, Any],
    tool: dict[str, Any],
    metadata: dict[str, bytes],
    files: dict[str, int],
    peak_spooled_bytes: int,
    started_at: str,
    finished_at: str,
    binlog: BinlogPoint | None = None,
) -> dict[str, Any]:
    """The manifest of a physical snapshot; ``files`` maps each datadir path to its size.
    ``binlog`` is the copy's point when the tool wrote no metadata file of it (the
    MySQL clone, which reads it from ``performance_schema.clone_status``)."""
    checkpoints = parse_key_values(first_of(CHECKPOINTS, metadata) or "")
    info = parse_key_values(first_of(INFO, metadata) or "")
    binlog_text = first_of(BINLOG_INFO, metadata)
    if binlog_text:
        binlog = parse_binlog_info(binlog_text)
    return {
        "format": 1,
        "kind": KIND,
        "generator": generator,
        "server": server,
        "tool": {**tool, "reported_version": info.get("tool_version")},
        "backup_type": checkpoints.get("backup_type"),
        "lsn": {
            "from": _lsn(checkpoints, "from_lsn"),
            "to": _lsn(checkpoints, "to_lsn"),
            "last": _lsn(checkpoints, "last_lsn"),
        },
        "binlog": None
        if binlog is None
        else {"file": binlog.file, "position": binlog.position, "gtid": binlog.gtid},
        "datadir": DATADIR,
        "file_count": len(files),
        "total_bytes": sum(files.values()),
        "peak_spooled_bytes": peak_spooled_bytes,
        "files": dict(sorted(files.items())),
        "started_at": started_at,
        "finished_at": finished_at,
    }


class ManifestError(PlakarMySQLError, ValueError):
    """``/manifest.json`` is missing, too large or malformed, or the files disagree with it."""


@dataclass(frozen=True)
class ManifestSummary:
    """What a restore takes from ``/manifest.json``: the files, which tool made them
    (``tool.name``: the clone's files need no ``--prepare``) and the copy's point."""

    files: dict[str, int]
    tool: str | None
    binlog: BinlogPoint | None


def manifest_files(data: bytes, check_path: Callable[[str], object]) -> dict[str, int]:
    """The ``files`` of a physical manifest (datadir path to size), every path passed to
    ``check_path`` (which raises for a path that could escape the directory)."""
    return read_manifest(data, check_path).files


def _manifest_binlog(value: object) -> BinlogPoint | None:
    """The manifest's ``binlog`` if it is well formed, else None (shown, never trusted)."""
    if not isinstance(value, dict):
        return None
    file, position, gtid = value.get("file"), value.get("position"), value.get("gtid")
    if not isinstance(file, str) or not isinstance(position, int) or isinstance(position, bool):
        return None
    return BinlogPoint(file, position, gtid if isinstance(gtid, str) else None)


def read_manifest(data: bytes, check_path: Callable[[str], object]) -> ManifestSummary:
    """:class:`ManifestSummary` of a physical manifest; :class:`ManifestError` if malformed."""
    where = MANIFEST_PATH.lstrip("/")
    if len(data) > MANIFEST_LIMIT:
        raise ManifestError(f"{where} is larger than {MANIFEST_LIMIT >> 20} MiB: refused")
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{where} is malformed: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        raise ManifestError(f"{where} is not the manifest of a physical backup")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(size, int) and not isinstance(size, bool) and size >= 0
        for size in files.values()
    ):
        raise ManifestError(f"{where} is malformed: 'files' must map each file to its size")
    for path in files:
        check_path(path)
    tool = manifest.get("tool")
    name = tool.get("name") if isinstance(tool, dict) else None
    return ManifestSummary(
        dict(files),
        name if isinstance(name, str) else None,
        _manifest_binlog(manifest.get("binlog")),
    )


def _some(names: set[str] | list[str]) -> str:
    shown = [name if name.isprintable() else repr(name) for name in sorted(names)[:_SHOWN]]
    more = len(names) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def check_received(expected: Mapping[str, int], received: Mapping[str, int]) -> None:
    """Every file of the manifest arrived with its size, and no other file did."""
    where = MANIFEST_PATH.lstrip("/")
    missing = set(expected) - set(received)
    if missing:
        raise ManifestError(
            f"{len(missing)} file(s) of {where} are not in the snapshot: {_some(missing)}"
        )
    extra = set(received) - set(expected)
    if extra:
        raise ManifestError(f"{len(extra)} file(s) not listed in {where}: {_some(extra)}")
    wrong = sorted(path for path in expected if received[path] != expected[path])
    if wrong:
        first = wrong[0]
        raise ManifestError(
            f"{len(wrong)} file(s) differ in size from {where}: {first} has "
            f"{received[first]} bytes, the manifest says {expected[first]}"
        )
