"""What a physical snapshot says about itself: the tool's metadata files, and ``/manifest.json``.

The backup tools write a few small text files beside the data files: the LSN
range of the copy (``xtrabackup_checkpoints``), the binary log coordinates of
its point in time (``xtrabackup_binlog_info``) and a summary
(``xtrabackup_info``).  MariaDB 11 renamed them ``mariadb_backup_*``.  They
stay in the snapshot as they are (``--prepare`` needs them) and their values are
copied into the manifest, where a DBA reads them without restoring anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DATADIR = "/datadir"
MANIFEST_PATH = "/manifest.json"
KIND = "physical"
METADATA_LIMIT = 1 << 20

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
) -> dict[str, Any]:
    """The manifest of a physical snapshot; ``files`` maps each datadir path to its size."""
    checkpoints = parse_key_values(first_of(CHECKPOINTS, metadata) or "")
    info = parse_key_values(first_of(INFO, metadata) or "")
    binlog_text = first_of(BINLOG_INFO, metadata)
    binlog = parse_binlog_info(binlog_text) if binlog_text else None
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
