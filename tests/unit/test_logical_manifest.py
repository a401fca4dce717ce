"""``/manifest.json`` of a logical snapshot, as :class:`Manifest` writes it: the
shape and key order people and tools read (and that the first typed builder
must keep from the inline dict it replaced)."""

from __future__ import annotations

import json

from plakar_mysql.logical.layout import (
    FORMAT,
    Manifest,
    ManifestBinlog,
    ManifestDatabase,
    ManifestServer,
    ManifestTable,
    ManifestTool,
    check_manifest,
)


def _manifest(binlog: ManifestBinlog | None) -> Manifest:
    return Manifest(
        generator="plakar-mysql 0.1.0",
        scope="database",
        flavour="mariadb",
        server=ManifestServer("127.0.0.1:3306", "11.8.3", "MariaDB", "utf8mb4", "x_ci", 1024, True),
        dump_tool=ManifestTool("/usr/bin/mariadb-dump", "mariadb-dump 11.8", ("--a", "--", "shop")),
        binlog=binlog,
        options={"database": "shop"},
        databases=(
            ManifestDatabase(
                "shop",
                "utf8mb4",
                "x_ci",
                (ManifestTable("t", "BASE TABLE", "InnoDB", 3, 2, 16384),),
            ),
        ),
        grants={"shop": ["GRANT SELECT ON `shop`.* TO `a`@`%`"]},
        files={"/databases/shop/tables/t.sql": {"kind": "table", "database": "shop", "name": "t"}},
        started_at="2025-01-01T00:00:00+00:00",
        finished_at="2025-01-01T00:00:01+00:00",
    )


def test_the_manifest_keeps_its_shape_and_order() -> None:
    data = _manifest(ManifestBinlog("bin.000001", 4, "0-1-5")).encode()
    manifest = json.loads(data)
    assert list(manifest) == [
        "format", "generator", "scope", "flavour", "server", "dump_tool", "binlog",
        "options", "databases", "grants", "files", "started_at", "finished_at",
    ]  # fmt: skip
    assert manifest["format"] == FORMAT
    assert list(manifest["server"]) == [
        "address", "version", "version_comment", "character_set", "collation",
        "max_allowed_packet", "log_bin",
    ]  # fmt: skip
    assert manifest["dump_tool"] == {
        "path": "/usr/bin/mariadb-dump",
        "version": "mariadb-dump 11.8",
        "arguments": ["--a", "--", "shop"],
    }
    assert manifest["binlog"] == {"file": "bin.000001", "position": 4, "gtid": "0-1-5"}
    assert manifest["databases"] == [
        {
            "name": "shop",
            "character_set": "utf8mb4",
            "collation": "x_ci",
            "tables": [
                {
                    "name": "t",
                    "type": "BASE TABLE",
                    "engine": "InnoDB",
                    "rows": 3,
                    "rows_estimate": 2,
                    "data_bytes": 16384,
                }
            ],
        }
    ]
    assert data.endswith(b"}\n") and b'\n  "format": 2,' in data
    assert check_manifest(data)


def test_no_binlog_is_null() -> None:
    assert json.loads(_manifest(None).encode())["binlog"] is None
