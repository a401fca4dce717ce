"""A physical restore decides ``--prepare`` from the files, not from the manifest's word.

The manifest's ``tool.name`` (``mysql-clone``: no ``--prepare``, no layout checks) is
untrusted: a manifest claiming a clone while listing a mariadb-backup/XtraBackup
``*_checkpoints`` file, or claiming a copy without one, is refused in one line as
soon as it arrives, before any file is written to the target.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kloset_sdk import Options, Record, Result
from plakar_mysql.physical.restore import PhysicalExporter, PhysicalRestoreError

_NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _file(path: str, data: bytes) -> Record:
    return Record.file(path, lambda: io.BytesIO(data), _NOW, size=len(data))


def _restore(target: Path, tool: str, files: dict[str, bytes]) -> str:
    """The restore's one-line error; every data file was skipped, never written."""
    manifest = json.dumps(
        {"kind": "physical", "tool": {"name": tool}, "files": {k: len(v) for k, v in files.items()}}
    ).encode()
    # The manifest first: the refusal must come before the first data file is written.
    records = [_file("/manifest.json", manifest)]
    records += [_file(f"/datadir/{name}", data) for name, data in files.items()]
    results: list[Result] = []
    exporter = PhysicalExporter(Options(), "mysql+bin", {"location": f"mysql+bin://{target}"})
    with pytest.raises(PhysicalRestoreError) as caught:
        exporter.export(iter(records), results.append)
    assert [r.error for r in results[1:]] == ["skipped"] * len(files)
    assert not target.exists()  # the directory the restore made is removed again
    return str(caught.value)


def test_a_clone_manifest_over_a_backup_copy_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "restored"
    files = {"xtrabackup_checkpoints": b"backup_type = full-backuped\n", "ibdata1": b"x" * 16}
    error = _restore(target, "mysql-clone", files)
    assert "mysql-clone" in error and "xtrabackup_checkpoints" in error, error
    assert "\n" not in error


def test_a_backup_manifest_without_checkpoints_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "restored"
    error = _restore(target, "mariadb-backup", {"ibdata1": b"x" * 16})
    assert "the snapshot has no xtrabackup_checkpoints" in error
