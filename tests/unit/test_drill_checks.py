"""The restore drill's parts that need no server: the binary-log comparison, the
accounts file, the report, the disk estimate, the options."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from plakar_mysql.binlog.scanner import FileFacts
from plakar_mysql.core.flavour import Flavour
from plakar_mysql.core.gtid import Gtid, Position
from plakar_mysql.core.option_models import DrillOptions
from plakar_mysql.core.options import ConfigError
from plakar_mysql.core.private_server import private_args
from plakar_mysql.drill import binlog, checks, space
from plakar_mysql.drill.physical import _clone_server
from plakar_mysql.drill.report import DatabaseResult, DrillReport
from plakar_mysql.drill.server import DrillError, find_server


def _facts(name: str, start: str, last: int, size: int = 100) -> FileFacts:
    facts = FileFacts(name, size=size, start=Position.parse(start))
    facts.last = {0: Gtid(0, 1, last)}
    facts.first = {0: Gtid(0, 1, last)}
    facts.first_time = facts.last_time = 1_700_000_000
    facts.transactions = 1
    return facts


def _archive(*facts: FileFacts, drop: str = "") -> binlog._Archive:
    archive = binlog._Archive(DatabaseResult("(binary logs)"))
    archive.facts = {f.name: f for f in facts if f.name != drop}
    archive.manifest = {
        "files": [f.as_json() for f in facts],
        "gtid_end": facts[-1].as_json()["gtid_end"],
    }
    return archive


def test_continuous_logs_matching_their_manifest_pass() -> None:
    logs = (_facts("b.1", "0-1-0", 5), _facts("b.2", "0-1-5", 9), _facts("b.3", "0-1-9", 12))
    archive = _archive(*logs)
    binlog._compare(archive, archive.result)
    assert archive.result.problems == []


def test_a_missing_log_and_the_gap_it_leaves_are_named() -> None:
    logs = (_facts("b.1", "0-1-0", 5), _facts("b.2", "0-1-5", 9), _facts("b.3", "0-1-9", 12))
    archive = _archive(*logs, drop="b.2")
    binlog._compare(archive, archive.result)
    assert archive.result.problems == [
        "b.2 is in the manifest but missing from the archive",
        "gap between b.1 (ends at 0-1-5) and b.3 (starts at 0-1-9)",
    ]


def test_a_log_unlike_its_manifest_entry_is_named() -> None:
    logs = (_facts("b.1", "0-1-0", 5), _facts("b.2", "0-1-5", 9))
    archive = _archive(*logs)
    assert archive.manifest is not None
    archive.manifest["files"][1]["size"] = 99
    archive.manifest["files"][1]["last_event_time"] = "2001-01-01T00:00:00+00:00"
    archive.manifest["gtid_end"] = "0-1-10"
    binlog._compare(archive, archive.result)
    problems = archive.result.problems
    assert "b.2: size is 100, the manifest says 99" in problems
    assert any(p.startswith("b.2: last_event_time is 2023-") for p in problems), problems
    assert "the last log ends at 0-1-9, the manifest's gtid_end is 0-1-10" in problems


USERS = b"""/*!40101 SET @saved = @@sql_mode */;
-- Account: ["app", "%", false]
CREATE USER `app`@`%` IDENTIFIED BY PASSWORD '*0123456789ABCDEF0123456789ABCDEF01234567';
-- Account: ["reader", "", true]
CREATE ROLE `reader`;
-- Grants for: ["app", "%", false]
GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*0123456789ABCDEF0123456789ABCDEF01234567';
GRANT SELECT (`b`, `a`) ON `shop`.`t` TO `app`@`%`;
-- Grants for: ["reader", "", true]
GRANT SELECT ON `shop`.* TO `reader`;
"""


def test_the_accounts_file_gives_each_account_and_its_grants() -> None:
    accounts, grants = checks.users_file(USERS)
    assert accounts == [("app", "%", False), ("reader", "", True)]
    assert grants[("app", "%")][1] == "GRANT SELECT (`b`, `a`) ON `shop`.`t` TO `app`@`%`"
    assert grants[("reader", "")] == ["GRANT SELECT ON `shop`.* TO `reader`"]
    # Column lists compare in any order; a password hash never reaches a message.
    assert checks._normalised(grants[("app", "%")][1]) == checks._normalised(
        "GRANT SELECT (`a`, `b`) ON `shop`.`t` TO `app`@`%`"
    )
    assert "0123456789" not in checks._masked(grants[("app", "%")][0])


def test_the_report_fails_on_any_problem_and_times_its_phases(tmp_path: Path) -> None:
    report = DrillReport(kind="logical", server="MariaDB 10.11.19")
    shop = report.database("shop")
    shop.tables, shop.rows, shop.bytes, shop.objects = 2, 10, 4096, 3
    with report.phase("check"):
        pass
    report.finish()
    assert report.ok
    lines = report.lines()
    assert lines[0] == "shop: OK: 2 table(s), 10 row(s), 4.0 KiB, 3 other object(s)"
    assert lines[-1].startswith("measured recovery time: ")
    assert report.recovery_seconds == pytest.approx(report.total_seconds - report.phases["check"])
    shop.problems.append("table 't' has 9 row(s), the backup counted 10")
    assert not report.ok
    assert report.mismatches() == ["shop: table 't' has 9 row(s), the backup counted 10"]
    path = tmp_path / "report.json"
    report.write_json(str(path))
    data = json.loads(path.read_text())
    assert data["ok"] is False and data["databases"][0]["problems"]
    assert set(data["phases"]) == {"fetch", "load", "prepare", "start", "check"}
    assert os.listdir(tmp_path) == ["report.json"]  # no temporary file left


def test_a_file_system_without_the_estimated_space_is_refused(tmp_path: Path) -> None:
    free = space.free_bytes(str(tmp_path))
    with pytest.raises(DrillError, match=f"not enough space in {tmp_path}: "):
        space.refuse_without(str(tmp_path), free, "for the throwaway server")
    space.refuse_without(str(tmp_path), 0, "to start")
    watch = space.SpaceWatch(str(tmp_path), space.LOGICAL_FACTOR)
    watch.admit("/databases/a/tables/t.sql", 1 << 20)
    with pytest.raises(DrillError, match=r"for /databases/a/tables/big.sql \("):
        watch.admit("/databases/a/tables/big.sql", free)


def test_drill_options() -> None:
    parsed = DrillOptions.parse({"location": "mysql+drill://", "jobs": "3"})
    assert parsed.jobs == 3 and parsed.tmpdir is None and parsed.start_timeout == 300
    with pytest.raises(ConfigError, match="a drill takes no host or path"):
        DrillOptions.parse({"location": "mysql+drill://db.example.com"})
    with pytest.raises(ConfigError, match="option tmpdir: /nonexistent is not a directory"):
        DrillOptions.parse({"location": "mysql+drill://", "tmpdir": "/nonexistent"})
    with pytest.raises(ConfigError, match="unknown option users"):
        DrillOptions.parse({"location": "mysql+drill://", "users": "true"})


def test_the_server_is_looked_for_beside_the_client_tools_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``bin_dir``'s ``../sbin`` (as packages lay a server out) comes before PATH and
    /usr/sbin; a server of another major version is named, not taken."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "sbin").mkdir()
    fake = tmp_path / "sbin" / "mariadbd"
    fake.write_text("#!/bin/sh\necho 'mariadbd  Ver 10.6.99-MariaDB for Linux'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", "/nonexistent")
    found = find_server(Flavour.MARIADB, (10, 6), str(tmp_path / "bin"))
    assert found.path == str(fake) and found.version == (10, 6, 99)
    with pytest.raises(DrillError) as failure:
        find_server(Flavour.MARIADB, (99, 1), str(tmp_path / "bin"))
    message = str(failure.value)
    assert message.startswith("no MariaDB server 99.1 (mariadbd/mysqld) in bin_dir, beside")
    assert f"{fake} is 10.6" in message and "install MariaDB's server 99.1" in message


USAGE = "GRANT USAGE ON *.* TO `a`@`%`"


@pytest.mark.parametrize(
    "grant",
    [
        f"{USAGE} IDENTIFIED BY PASSWORD '*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29'",
        f"{USAGE} IDENTIFIED VIA ed25519 USING 'ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY'",
        f"{USAGE} IDENTIFIED VIA mysql_native_password USING"
        " '*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29'"
        " OR unix_socket",
        "CREATE USER `a`@`%` IDENTIFIED WITH 'caching_sha2_password' AS 0x24412430303524AB12CD",
        f"{USAGE} IDENTIFIED BY PASSWORD 'it''s \\' a secret'",
    ],
)
def test_no_part_of_a_hash_reaches_a_message(grant: str) -> None:
    """Whatever the plugin and however the server quotes it, a grant shown in the
    report keeps its privileges and account and hides every literal."""
    shown = checks._masked(grant)
    assert "`a`@`%`" in shown and "'***'" in shown
    for secret in ("94BDCEBE", "ZIgUREUg", "24412430", "secret"):
        assert secret not in shown


def test_a_mysql_log_point_is_read_so_continuity_is_checked() -> None:
    """A MySQL archive records GTID sets: read, so gaps between logs are compared
    (they were silently skipped when only MariaDB's positions were understood)."""
    uuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
    first, second = binlog._position(f"{uuid}:1-57"), binlog._position(f"{uuid}:1-58")
    assert first is not None and second is not None and first != second
    assert binlog._position(f"{uuid}:1-57") == first
    assert binlog._position("0-1-57") is not None
    assert binlog._position("not a point") is None


def test_private_starts_are_inert_on_each_flavour() -> None:
    """The flags every private start shares: no network, no replication, no binary log on
    both flavours; MySQL's own names and its X Protocol and certificates off."""
    mariadb, mysql = private_args(Flavour.MARIADB), private_args(Flavour.MYSQL)
    for args in (mariadb, mysql):
        assert {"--skip-networking", "--skip-log-bin", "--event-scheduler=OFF"} <= set(args)
    assert "--skip-slave-start" in mariadb and "--skip-slave-start" not in mysql
    assert {"--skip-replica-start", "--mysqlx=OFF", "--auto-generate-certs=OFF"} <= set(mysql)


def test_a_clone_manifest_gives_its_settings_and_refuses_malformed_ones(tmp_path: Path) -> None:
    """A clone's InnoDB settings become arguments, only the known ones; a value with a
    line break (an untrusted manifest) is refused in one line."""
    mysqld = tmp_path / "mysqld"
    mysqld.write_text(
        "#!/bin/sh\necho 'mysqld  Ver 9.7.4 for Linux on x86_64 (MySQL Community Server - GPL)'\n"
    )
    mysqld.chmod(0o755)
    server = {
        "version": "9.7.4",
        "settings": {"innodb_page_size": "16384", "lower_case_table_names": "0", "datadir": "/x"},
    }
    binary, arguments = _clone_server(server, str(tmp_path))
    assert binary.flavour is Flavour.MYSQL and binary.path == str(mysqld)
    assert arguments == ["--innodb-page-size=16384", "--lower-case-table-names=0"]
    server["settings"] = {"innodb_data_file_path": "ibdata1:12M\n--init-file=/x"}
    with pytest.raises(DrillError, match="innodb_data_file_path is malformed"):
        _clone_server(server, str(tmp_path))
