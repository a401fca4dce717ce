"""Restore drills end to end (``plakar restore -to mysql+drill://``): the real plakar, the
package of ``make build``, MariaDB 10.11, and MySQL 9.7 (``make mysql``'s tree) for the
drill of a MySQL snapshot.

One source server (binary log on, a small database with every kind of object
and an account of its own) gives one logical, one physical and one binary-log
snapshot, shared by every test of the module.  Each test drills one of them,
or a copy made wrong on purpose: the snapshot's files restored to a directory,
changed there, and backed up again as plain files (Plakar's own ``fs``
importer), then drilled at that path, as the drill drills any snapshot.

Checked each time: the exit status, the line that names what is wrong, the
JSON report, and that nothing is left behind (no server process, nothing in
the drill's temporary directory).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.interrupt import interrupted_run, run_tmp, running, settle
from support.mounts import tmpfs
from test_backup_restore import password, uri
from test_physical import LOG_BIN, bin_uri

from plakar_mysql_harness.mariadb import MariaDBServer
from plakar_mysql_harness.mysql import MySQLServer
from plakar_mysql_harness.plakar import Plakar, make_plakar

TIMEOUT = 300.0
ROWS = {"customer": 2000, "orders": 6000, "item": 50}

SCHEMA = [
    "CREATE DATABASE shop",
    "CREATE TABLE shop.customer (id INT PRIMARY KEY, name VARCHAR(80) NOT NULL)",
    "CREATE TABLE shop.item (id INT PRIMARY KEY, label VARCHAR(40), price DECIMAL(8,2))",
    "CREATE TABLE shop.orders (id INT PRIMARY KEY, customer INT NOT NULL, item INT NOT NULL, "
    "qty INT NOT NULL, FOREIGN KEY (customer) REFERENCES shop.customer (id), "
    "FOREIGN KEY (item) REFERENCES shop.item (id))",
    "CREATE TABLE shop.audit (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(80))",
    "INSERT INTO shop.customer SELECT seq, CONCAT('client ', seq) FROM seq_1_to_2000",
    "INSERT INTO shop.item SELECT seq, CONCAT('item ', seq), seq * 1.5 FROM seq_1_to_50",
    "INSERT INTO shop.orders SELECT seq, 1 + seq % 2000, 1 + seq % 50, 1 + seq % 7 "
    "FROM seq_1_to_6000",
    "CREATE VIEW shop.order_totals AS SELECT o.customer, SUM(o.qty * i.price) AS total "
    "FROM shop.orders o JOIN shop.item i ON i.id = o.item GROUP BY o.customer",
    "CREATE FUNCTION shop.double_it (x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
    "CREATE PROCEDURE shop.touch () INSERT INTO shop.audit (note) VALUES ('touched')",
    "CREATE TRIGGER shop.orders_audit AFTER INSERT ON shop.orders FOR EACH ROW "
    "INSERT INTO shop.audit (note) VALUES (CONCAT('order ', NEW.id))",
    "CREATE EVENT shop.nightly ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM shop.audit",
    "CREATE USER 'reporting'@'%' IDENTIFIED BY 'not-a-real-secret-1'",
    "GRANT SELECT ON shop.* TO 'reporting'@'%'",
]


@dataclass(frozen=True)
class Source:
    root: Path
    plakar: Plakar
    server: MariaDBServer
    logical: str
    physical: str
    binlog: str


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    root = tmp_path_factory.mktemp("drill")
    ptar = os.environ.get("PLAKAR_MYSQL_PTAR")
    plakar = make_plakar(root, ptar=Path(ptar) if ptar else None)
    server = MariaDBServer(root / "source", extra_args=LOG_BIN)
    try:
        for statement in SCHEMA:
            server.execute(statement, database="shop" if statement != SCHEMA[0] else None)
        server.execute("FLUSH BINARY LOGS")
        server.execute("INSERT INTO shop.audit (note) VALUES ('second log')")
        server.execute("FLUSH BINARY LOGS")
        server.execute("INSERT INTO shop.audit (note) VALUES ('third log')")
        logical = plakar.backup(uri(server), password(server))
        # A clean restart checkpoints InnoDB: the physical copy's redo log then holds
        # no page of the tables, which --prepare would otherwise rewrite over a
        # tampered one (the tampered-file test changes a page).
        server.stop()
        server.start()
        physical = plakar.backup(bin_uri(server), password(server))
        binlog = plakar.backup(uri(server).replace("mysql://", "mysql+binlog://"), password(server))
        yield Source(root, plakar, server, logical, physical, binlog)
    finally:
        server.cleanup()
        plakar.close()


def drill(
    s: Source | MySQLSource, snapshot: str, tmp: Path, *opts: str, check: bool = False
) -> tuple[int, str, dict[str, object] | None]:
    """Drill ``snapshot`` with its temporary files in ``tmp`` (made here); the exit status,
    the whole output and the JSON report; nothing may be left in ``tmp``."""
    tmp.mkdir(exist_ok=True)
    report = tmp.parent / f"{tmp.name}.json"
    proc = s.plakar.restore(
        snapshot,
        "mysql+drill://",
        f"tmpdir={tmp}",
        f"report={report}",
        *opts,
        check=check,
        timeout=TIMEOUT,
    )
    assert os.listdir(tmp) == [], f"the drill left {os.listdir(tmp)} in {tmp}"
    assert not [p for p in _servers() if str(tmp) in p], "the drill's server is still running"
    data = json.loads(report.read_text()) if report.exists() else None
    return proc.returncode, proc.stdout + proc.stderr, data


def _servers() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "mariadbd" in argv or "mysqld" in argv:
                found.append(argv)
    return found


@dataclass(frozen=True)
class MySQLSource:
    plakar: Plakar
    tools: str  # bin_dir=, MySQL's tools
    logical: str
    physical: str  # the clone plugin's


#: A MySQL source: no sequence engine, so the rows come from a recursive CTE (0..99
#: twice: 10,000 numbers, under MySQL's default recursion depth of 1,000).
NUMBERS = (
    "WITH RECURSIVE d (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM d WHERE i < 99) "
    "SELECT a.i * 100 + b.i + 1 AS n FROM d a, d b"
)
MYSQL_SCHEMA = [
    *SCHEMA[1:5],
    f"INSERT INTO shop.customer SELECT n, CONCAT('client ', n) FROM ({NUMBERS}) s WHERE n <= 2000",
    f"INSERT INTO shop.item SELECT n, CONCAT('item ', n), n * 1.5 FROM ({NUMBERS}) s WHERE n <= 50",
    "INSERT INTO shop.orders SELECT n, 1 + n % 2000, 1 + n % 50, 1 + n % 7 "
    f"FROM ({NUMBERS}) s WHERE n <= 6000",
    *SCHEMA[8:],
]


@pytest.fixture(scope="module")
def mysql_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MySQLSource]:
    """MySQL 9.7 with ``shop`` (every kind of object) and an account with a grant: one
    logical and one clone snapshot; the server is gone before any drill runs."""
    root = tmp_path_factory.mktemp("drill-mysql")
    ptar = os.environ.get("PLAKAR_MYSQL_PTAR")
    plakar = make_plakar(root, ptar=Path(ptar) if ptar else None)
    try:
        server = MySQLServer(root / "source")
        try:
            server.execute(SCHEMA[0])
            for statement in MYSQL_SCHEMA:
                server.execute(statement, database="shop")
            tools = f"bin_dir={server.bin_dir}"
            logical = plakar.backup(uri(server), password(server), tools)
            physical = plakar.backup(bin_uri(server), password(server), tools)
        finally:
            server.cleanup()
        yield MySQLSource(plakar, tools, logical, physical)
    finally:
        plakar.close()


def test_mysql_logical_drill_with_accounts_leaves_nothing(
    mysql_source: MySQLSource, tmp_path: Path
) -> None:
    """A logical snapshot of MySQL 9.7 (an account of its own, every kind of object)
    drilled on a throwaway MySQL 9.7 (``mysqld --initialize-insecure``), found in
    ``bin_dir``: every check passes; no ``mysqld`` and no directory is left."""
    s = mysql_source
    assert b"reporting" in s.plakar.cat(s.logical, "/server/users.sql")  # the account to check
    code, output, report = drill(s, s.logical, tmp_path / "t", s.tools)
    assert code == 0, output
    assert "shop: OK: 4 table(s), 8050 row(s)" in output, output
    assert "drill of a logical snapshot on MySQL 9.7." in output, output
    assert report is not None and report["ok"] is True, report
    databases = {d["name"]: d for d in report["databases"]}  # type: ignore[union-attr, index]
    assert databases["shop"]["objects"] == 5  # a view, two routines, a trigger, an event
    # root's accounts of the throwaway server are only looked up; 'reporting' is checked
    accounts = databases["(accounts)"]
    assert accounts["problems"] == [] and accounts["objects"] >= 2, accounts
    assert report["phases"]["start"] > 0 and report["phases"]["load"] > 0  # type: ignore[index]


def test_mysql_clone_drill_starts_the_files_and_checks_every_table(
    mysql_source: MySQLSource, tmp_path: Path
) -> None:
    """A clone snapshot of MySQL 9.7: its files restored (no ``--prepare``), MySQL's
    ``mysqld`` of the manifest's version started on them, every table read whole."""
    s = mysql_source
    manifest = json.loads(s.plakar.cat(s.physical, "/manifest.json"))
    assert manifest["tool"]["name"] == "mysql-clone", manifest["tool"]
    code, output, report = drill(s, s.physical, tmp_path / "t", s.tools)
    assert code == 0, output
    assert "shop: OK: 4 table(s), 8050 row(s)" in output, output
    assert "drill of a physical snapshot on MySQL 9.7." in output, output
    assert report is not None and report["kind"] == "physical" and report["ok"] is True
    assert report["phases"]["start"] > 0  # type: ignore[index]


def altered(s: Source, snapshot: str, change: Callable[[Path], None]) -> str:
    """``snapshot``'s files, changed by ``change`` and backed up again as plain files:
    ``SNAPSHOT:/path`` of the copy."""
    files = s.root / f"altered-{len(list(s.root.glob('altered-*')))}"
    s.plakar.restore(snapshot, files)
    change(files)
    copy = s.plakar.backup(str(files))
    return f"{copy}:{files}"


def test_logical_drill_reports_every_database_and_the_recovery_time(
    source: Source, tmp_path: Path
) -> None:
    code, output, report = drill(source, source.logical, tmp_path / "t")
    assert code == 0, output
    assert "shop: OK: 4 table(s), 8052 row(s)" in output, output
    assert "(accounts): OK" in output, output
    assert "measured recovery time:" in output
    assert report is not None and report["ok"] is True, report
    databases = {d["name"]: d for d in report["databases"]}  # type: ignore[union-attr, index]
    assert databases["shop"]["rows"] == sum(ROWS.values()) + 2
    # a view, a function, a procedure, a trigger, an event
    assert databases["shop"]["objects"] == 5
    assert databases["(accounts)"]["objects"] >= 1
    phases = report["phases"]
    assert isinstance(phases, dict) and phases["start"] > 0 and phases["load"] > 0
    assert 0 < report["recovery_seconds"] <= report["total_seconds"]  # type: ignore[operator]
    assert "no table digests" not in output  # this backup recorded them


def test_physical_drill_prepares_starts_and_checks_every_table(
    source: Source, tmp_path: Path
) -> None:
    code, output, report = drill(source, source.physical, tmp_path / "t")
    assert code == 0, output
    assert "shop: OK: 4 table(s), 8052 row(s)" in output, output
    assert report is not None and report["kind"] == "physical"
    assert report["phases"]["prepare"] > 0  # type: ignore[index]


def test_binlog_drill_reads_every_log_and_names_a_gap(source: Source, tmp_path: Path) -> None:
    code, output, report = drill(source, source.binlog, tmp_path / "t")
    assert code == 0, output
    assert "(binary logs): OK: 3 table(s)" in output or "(binary logs): OK" in output, output
    assert report is not None and report["databases"][0]["tables"] >= 3  # type: ignore[index]

    def drop_middle(files: Path) -> None:
        logs = sorted((files / "binlog").iterdir())
        assert len(logs) >= 3, logs
        logs[1].unlink()

    code, output, _ = drill(source, altered(source, source.binlog, drop_middle), tmp_path / "g")
    assert code != 0
    assert "missing from the archive" in output, output
    assert "gap between" in output, output


def test_tampered_table_file_is_named(source: Source, tmp_path: Path) -> None:
    def tamper(files: Path) -> None:
        table = files / "databases" / "shop" / "tables" / "customer.sql"
        text = table.read_bytes()
        assert b"'client 1234'" in text
        table.write_bytes(text.replace(b"'client 1234'", b"'client 4321'"))

    code, output, report = drill(source, altered(source, source.logical, tamper), tmp_path / "t")
    assert code != 0, output
    assert "table 'customer': its file is not the one the backup wrote" in output, output
    assert report is not None and report["ok"] is False


def test_tampered_physical_table_file_is_named(source: Source, tmp_path: Path) -> None:
    def tamper(files: Path) -> None:
        ibd = files / "datadir" / "shop" / "orders.ibd"
        with ibd.open("r+b") as f:  # the same size: only the page checksums can tell
            f.seek(3 * 16384 + 200)
            data = f.read(64)
            f.seek(3 * 16384 + 200)
            f.write(bytes(b ^ 0xFF for b in data))

    code, output, report = drill(source, altered(source, source.physical, tamper), tmp_path / "t")
    assert code != 0, output
    assert "drill failed: shop: table 'orders' is damaged" in output, output
    assert report is not None and report["ok"] is False


def test_snapshot_that_does_not_restore_names_the_object(source: Source, tmp_path: Path) -> None:
    def break_it(files: Path) -> None:
        table = files / "databases" / "shop" / "tables" / "item.sql"
        text = table.read_bytes()
        cut = text.index(b"INSERT INTO")
        table.write_bytes(text[:cut] + b"INSERT INTO `item` VALUES (1,'dup',1.00);\n" + text[cut:])

    code, output, _ = drill(source, altered(source, source.logical, break_it), tmp_path / "t")
    assert code != 0, output
    assert "the snapshot does not restore" in output, output
    assert "item" in output.split("the snapshot does not restore", 1)[1].splitlines()[0], output


def test_no_matching_server_says_what_to_install(source: Source, tmp_path: Path) -> None:
    def make_mysql(files: Path) -> None:
        catalog = files / "catalog.json"
        data = json.loads(catalog.read_text())
        data["flavour"] = "mysql"
        catalog.write_text(json.dumps(data))

    code, output, _ = drill(source, altered(source, source.logical, make_mysql), tmp_path / "t")
    assert code != 0, output
    assert "no MySQL server (mysqld) in bin_dir, beside the client tools, in PATH" in output, output
    assert "install MySQL's server" in output, output


def test_killed_drill_leaves_nothing(source: Source) -> None:
    plakar = source.plakar

    tmp = run_tmp(plakar)

    def loading() -> bool:
        """The drill's server runs and holds the restore's shadow database: mid-load."""
        server = any("mariadbd" in argv and "plakar-drill-" in argv for _, argv in running(plakar))
        return server and any(tmp.glob("plakar-drill-*/data/plakar_restore_*"))

    run = interrupted_run(
        plakar,
        ["restore", "-to", "mysql+drill://", source.logical],
        how="term-plakar",
        when=loading,
        timeout=TIMEOUT,
    )
    settle(plakar)
    assert run.returncode != 0
    left = [name for name in run.tmp_entries() if name.startswith("plakar-drill")]
    assert left == [], f"the killed drill left {left} in {run.tmp}"
    assert "Traceback" not in run.output, run.output


def test_full_disk_is_refused_in_one_line(source: Source, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "size=100m") as small:
        code, output, report = drill(source, source.logical, small)
    assert code != 0, output
    assert f"not enough space in {small}" in output, output
    assert report is not None and report["ok"] is False
    lines = [line for line in output.splitlines() if "not enough space" in line]
    assert lines and all(len(line) < 400 for line in lines)


def test_drill_options_are_checked(source: Source, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    proc = source.plakar.restore(
        source.logical, "mysql+drill://", f"tmpdir={missing}", check=False, timeout=TIMEOUT
    )
    assert proc.returncode != 0
    assert f"option tmpdir: {missing} is not a directory" in proc.stdout + proc.stderr
