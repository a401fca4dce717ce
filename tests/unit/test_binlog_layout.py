"""binlog.layout: the manifest the backup writes is the one the replay reads, and
a manifest that is not one is refused in one line that names it."""

from __future__ import annotations

import json

import pytest

from plakar_mysql.binlog.layout import (
    BINLOG_DIR,
    MANIFEST_PATH,
    ManifestError,
    listed_logs,
    log_path,
    manifest_bytes,
)
from plakar_mysql.core.errors import PlakarMySQLError


def _manifest(files: list[dict[str, object]]) -> bytes:
    return manifest_bytes(
        generator="plakar-mysql test",
        flavour="mariadb",
        server={"address": "127.0.0.1:3306", "version": "11.8.3"},
        server_id=7,
        gtid_binlog_pos="0-7-12",
        files=files,
        options={"flush": "true"},
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:01+00:00",
    )


def test_the_backups_manifest_reads_back_with_every_log_and_size() -> None:
    files = [
        {"name": "mysql-bin.000001", "size": 1024, "gtid_end": "0-7-10"},
        {"name": "mysql-bin.000002", "size": 365, "gtid_end": "0-7-12"},
    ]
    data = _manifest(files)
    assert listed_logs(MANIFEST_PATH, data) == {"mysql-bin.000001": 1024, "mysql-bin.000002": 365}
    manifest = json.loads(data)
    assert manifest["kind"] == "binlog" and manifest["format"] == 1
    assert manifest["gtid_end"] == "0-7-12"  # the last log's
    assert data.endswith(b"}\n")


def test_an_empty_archive_has_no_gtid_end() -> None:
    data = _manifest([])
    assert json.loads(data)["gtid_end"] is None
    assert listed_logs(MANIFEST_PATH, data) == {}


def test_a_log_sits_under_the_binlog_directory() -> None:
    assert (
        log_path("mysql-bin.000003")
        == f"{BINLOG_DIR}/mysql-bin.000003"
        == "/binlog/mysql-bin.000003"
    )


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"\xff not json", "is not JSON"),
        (b"[" * 100_000, "is not JSON"),
        (b'{"kind": "physical", "files": {}}', "not the manifest of a binlog snapshot"),
        (b'{"kind": "binlog"}', '"files" must list each log once'),
        (b'{"kind": "binlog", "files": [{"name": "a", "size": -1}]}', "must list each log"),
        (b'{"kind": "binlog", "files": [{"name": "a", "size": true}]}', "must list each log"),
        (
            b'{"kind": "binlog", "files": [{"name": "a", "size": 1}, {"name": "a", "size": 1}]}',
            "must list each log once",
        ),
    ],
)
def test_a_malformed_manifest_is_refused_in_one_line(data: bytes, needle: str) -> None:
    with pytest.raises(ManifestError) as caught:
        listed_logs("/manifest.json", data)
    message = str(caught.value)
    assert message.startswith("/manifest.json") and needle in message
    assert "\n" not in message
    assert isinstance(caught.value, PlakarMySQLError)
