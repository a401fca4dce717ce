"""The pure parts of physical backups: options, paths, metadata, manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from kloset_sdk import Options
from plakar_mysql.core.options import ConfigError
from plakar_mysql.entry import make_exporter, make_importer
from plakar_mysql.logical.backup import MySQLImporter
from plakar_mysql.logical.restore import MySQLExporter
from plakar_mysql.physical.backup import PhysicalImporter, parse_physical
from plakar_mysql.physical.manifest import build_manifest, parse_binlog_info, parse_key_values
from plakar_mysql.physical.restore import (
    PhysicalExporter,
    PhysicalRestoreError,
    relative_datadir_path,
    target_directory,
)
from plakar_mysql.physical.target import TargetError


def test_the_scheme_chooses_the_kind_of_backup(tmp_path: Path) -> None:
    physical = {"location": "mysql+bin://root@127.0.0.1:3307"}
    assert isinstance(make_importer(Options(), "mysql+bin", physical), PhysicalImporter)
    logical = {"location": "mysql://root@127.0.0.1/shop"}
    assert isinstance(make_importer(Options(), "mysql", logical), MySQLImporter)
    assert isinstance(make_exporter(Options(), "mysql", logical), MySQLExporter)
    restore = {"location": f"mysql+bin://{tmp_path}/new"}
    assert isinstance(make_exporter(Options(), "mysql+bin", restore), PhysicalExporter)


def test_physical_options() -> None:
    config = parse_physical("mysql+bin", {"location": "mysql+bin://u@db:3307", "parallel": "4"})
    assert (config.connection.host, config.connection.port) == ("db", 3307)
    assert config.parallel == 4
    assert parse_physical("mysql+bin", {"location": "mysql+bin://db"}).parallel == 1
    with pytest.raises(ConfigError, match="copies the whole data directory"):
        parse_physical("mysql+bin", {"location": "mysql+bin://u@db/shop"})
    with pytest.raises(ConfigError, match="option tables applies to logical backups"):
        parse_physical("mysql+bin", {"location": "mysql+bin://db", "tables": "a.b"})
    with pytest.raises(ConfigError, match="parallel"):
        parse_physical("mysql+bin", {"location": "mysql+bin://db", "parallel": "0"})


def test_restore_target_is_a_local_absolute_directory() -> None:
    assert target_directory("mysql+bin:///var/lib/my%20sql/") == "/var/lib/my sql"
    for bad in ("mysql+bin://host/dir", "mysql+bin://relative", "mysql+bin:///d?x=1"):
        with pytest.raises(ConfigError, match="local directory"):
            target_directory(bad)


def test_snapshot_paths_map_into_the_data_directory() -> None:
    assert relative_datadir_path("/datadir/shop/t.ibd") == "shop/t.ibd"
    for own in ("/", "/datadir", "/manifest.json"):
        assert relative_datadir_path(own) is None
    # Only the whole snapshot: the manifest check needs /manifest.json.
    with pytest.raises(PhysicalRestoreError, match="not part of a physical backup"):
        relative_datadir_path("/shop/t.ibd")
    for unsafe in ("/datadir/../etc/passwd", "/datadir/a//b", "/datadir/a\x00b"):
        with pytest.raises(PhysicalRestoreError, match="unsafe"):
            relative_datadir_path(unsafe)


def test_a_non_empty_target_is_refused_before_anything(tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    with pytest.raises(TargetError, match="is not empty"):
        PhysicalExporter(Options(), "mysql+bin", {"location": f"mysql+bin://{busy}"})
    with pytest.raises(TargetError, match="does not exist"):
        PhysicalExporter(Options(), "mysql+bin", {"location": f"mysql+bin://{busy}/a/b"})


def test_metadata_and_manifest() -> None:
    checkpoints = b"backup_type = full-backuped\nfrom_lsn = 0\nto_lsn = 44878\nlast_lsn = 48345\n"
    info = b"tool_name = mariadb-backup\ntool_version = 10.11.19-MariaDB\n"
    binlog = b"mysql-bin.000001\t3100\t0-1-16\n"
    assert parse_key_values(info.decode())["tool_version"] == "10.11.19-MariaDB"
    point = parse_binlog_info(binlog.decode())
    assert point is not None and (point.file, point.position, point.gtid) == (
        "mysql-bin.000001",
        3100,
        "0-1-16",
    )
    assert parse_binlog_info("") is None
    manifest = build_manifest(
        generator="g",
        server={"version": "10.11.19"},
        tool={"name": "mariadb-backup"},
        metadata={
            "xtrabackup_checkpoints": checkpoints,
            "xtrabackup_info": info,
            "xtrabackup_binlog_info": binlog,
        },
        files={"ibdata1": 100, "shop/t.ibd": 50},
        peak_spooled_bytes=7,
        started_at="s",
        finished_at="f",
    )
    assert manifest["lsn"] == {"from": 0, "to": 44878, "last": 48345}
    assert manifest["binlog"] == {"file": "mysql-bin.000001", "position": 3100, "gtid": "0-1-16"}
    assert (manifest["file_count"], manifest["total_bytes"]) == (2, 150)
    assert manifest["tool"]["reported_version"] == "10.11.19-MariaDB"
