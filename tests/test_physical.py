"""Physical backups (``mysql+bin://``) end to end: the packaged integration, the real
plakar CLI, ``mariadb-backup`` and private MariaDB 10.11 servers.

A restore is proven by starting ``mariadbd`` on the restored directory and
comparing what it holds with the source: totals under concurrent writes, and
every object of the test corpus and of a generated dataset, one by one.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import MariaDBFactory
from support.compare import describe_accounts, describe_server, diff, diff_accounts
from support.corpus import load_corpus
from support.scripts import executable
from test_backup_restore import password
from test_consistency import ACCOUNTS, BALANCE, TOTAL, TOTALS, Transfers

from plakar_mysql_harness.datadir import DatadirServer
from plakar_mysql_harness.mariadb import MariaDBServer
from plakar_mysql_harness.plakar import Plakar

pytestmark = pytest.mark.skipif(
    shutil.which("mariadb-backup") is None, reason="mariadb-backup missing: run `make deps`"
)

LOG_BIN = ["--log-bin=binlog", "--server-id=1"]
REAL_TOOL = shutil.which("mariadb-backup") or "mariadb-backup"
GRANT_TABLES = ("global_priv", "db", "tables_priv", "columns_priv", "procs_priv", "roles_mapping")


def bin_uri(server: MariaDBServer) -> str:
    return f"mysql+bin://root@{server.host}:{server.port}"


def restore_uri(directory: Path) -> str:
    return f"mysql+bin://{directory}"


def fill_accounts(server: MariaDBServer, filler_rows: int = 200_000) -> None:
    """Two databases of accounts (the total never changes) and a filler to copy meanwhile."""
    for name in ("a", "b"):
        server.execute(f"CREATE DATABASE {name}")
        server.execute(
            f"CREATE TABLE {name}.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL)"
        )
        server.execute(
            f"INSERT INTO {name}.accounts SELECT seq, {BALANCE} FROM seq_1_to_{ACCOUNTS}",
            database=name,
        )
    server.execute("CREATE TABLE a.filler (id INT PRIMARY KEY, pad VARBINARY(255))")
    server.execute(
        f"INSERT INTO a.filler SELECT seq, RANDOM_BYTES(200) FROM seq_1_to_{filler_rows}",
        database="a",
    )


def fill_generated(server: MariaDBServer, seed: int = 14) -> None:
    """A deterministic dataset over several engines, types and table kinds."""
    rng = random.Random(seed)
    server.execute("CREATE DATABASE gen CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    server.execute(
        "CREATE TABLE gen.orders (id INT PRIMARY KEY, customer VARCHAR(64), amount DECIMAL(12,2),"
        " created DATETIME(6), note TEXT, payload BLOB, KEY (customer)) ENGINE=InnoDB"
    )
    server.execute(
        "CREATE TABLE gen.parts (id INT, region CHAR(2), qty INT, PRIMARY KEY (id, region))"
        " ENGINE=InnoDB PARTITION BY KEY (region) PARTITIONS 4"
    )
    server.execute("CREATE TABLE gen.legacy (id INT PRIMARY KEY, label VARCHAR(40)) ENGINE=MyISAM")
    server.execute("CREATE TABLE gen.notes (id INT PRIMARY KEY, body TEXT) ENGINE=Aria")
    orders = [
        (
            i,
            f"cust-{rng.randrange(500)} ü\u2019",
            f"{rng.randrange(10**8) / 100:.2f}",
            f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} 12:34:56.{i % 10**6:06d}",
            "note " * rng.randrange(20),
            rng.randbytes(rng.randrange(300)),
        )
        for i in range(1, 20_001)
    ]
    with server.connect() as conn, conn.cursor() as cursor:
        cursor.executemany("INSERT INTO gen.orders VALUES (%s, %s, %s, %s, %s, %s)", orders)
        cursor.executemany(
            "INSERT INTO gen.parts VALUES (%s, %s, %s)",
            [(i, rng.choice(["fr", "de", "us", "jp"]), rng.randrange(1000)) for i in range(5000)],
        )
        cursor.executemany(
            "INSERT INTO gen.legacy VALUES (%s, %s)", [(i, f"label {i}") for i in range(3000)]
        )
        cursor.executemany(
            "INSERT INTO gen.notes VALUES (%s, %s)", [(i, "x" * (i % 500)) for i in range(3000)]
        )


def snapshot_manifest(plakar: Plakar, snapshot: str) -> dict[str, object]:
    manifest: dict[str, object] = json.loads(plakar.cat(snapshot, "/manifest.json"))
    return manifest


@pytest.fixture
def restored(tmp_path: Path) -> Iterator[list[DatadirServer]]:
    """Servers started on restored directories, stopped after the test."""
    servers: list[DatadirServer] = []
    yield servers
    for server in servers:
        server.cleanup()


def start_on(
    datadir: Path, tmp_path: Path, source: MariaDBServer, servers: list[DatadirServer]
) -> DatadirServer:
    server = DatadirServer(
        datadir, tmp_path / f"restored-{len(servers)}", root_password=source.root_password
    )
    servers.append(server)
    return server


# -- backup and restore ---------------------------------------------------------------


def test_hot_backup_under_transfers_restores_the_exact_total(
    plakar: Plakar,
    mariadb_factory: MariaDBFactory,
    tmp_path: Path,
    restored: list[DatadirServer],
) -> None:
    source = mariadb_factory(extra_args=LOG_BIN)
    fill_accounts(source)
    with Transfers(source) as transfers:
        transfers.wait_for(50)
        before = transfers.commits
        snapshot = plakar.backup(bin_uri(source), password(source))
        during = transfers.commits - before
        transfers.wait_for(transfers.commits + 10)
    assert during > 0, "no transfer committed while the backup ran: nothing was tested"

    manifest = snapshot_manifest(plakar, snapshot)
    assert manifest["kind"] == "physical"
    server = manifest["server"]
    assert isinstance(server, dict)
    assert server["version"] == source.version and server["flavour"] == "mariadb"
    tool = manifest["tool"]
    assert isinstance(tool, dict) and tool["name"] == "mariadb-backup"
    assert "10.11" in str(tool["version"])
    lsn = manifest["lsn"]
    assert isinstance(lsn, dict) and isinstance(lsn["to"], int) and lsn["to"] > 0
    binlog = manifest["binlog"]
    assert isinstance(binlog, dict)
    assert str(binlog["file"]).startswith("binlog.") and int(binlog["position"]) > 0
    assert str(binlog["gtid"]).startswith("0-1-")
    files = manifest["files"]
    assert isinstance(files, dict) and manifest["file_count"] == len(files)
    assert manifest["total_bytes"] == sum(files.values())
    assert "xtrabackup_checkpoints" in files and "ibdata1" in files
    assert files["a/filler.ibd"] > 40 << 20
    # Streamed, not copied: only the redo log copy was held aside.
    assert 0 < manifest["peak_spooled_bytes"] <= files["ib_logfile0"]  # type: ignore[operator]
    assert source.root_password not in json.dumps(manifest)

    top = {e.name for e in plakar.ls(snapshot)}
    assert top == {"datadir", "manifest.json"}
    in_a = {e.name for e in plakar.ls(snapshot, "/datadir/a")}
    assert {"accounts.ibd", "accounts.frm", "filler.ibd"} <= in_a
    checkpoints = plakar.cat(snapshot, "/datadir/xtrabackup_checkpoints").decode()
    assert f"to_lsn = {lsn['to']}" in checkpoints

    target = tmp_path / "restored-datadir"
    proc = plakar.restore(snapshot, restore_uri(target))
    assert "--prepare" in proc.stderr
    copy = start_on(target, tmp_path, source, restored)
    assert copy.query(TOTALS) == [(TOTAL, 2 * ACCOUNTS)]
    assert copy.query("SELECT COUNT(*) FROM a.filler") == [(200_000,)]


def test_corpus_and_generated_data_survive_object_by_object(
    plakar: Plakar,
    mariadb_factory: MariaDBFactory,
    tmp_path: Path,
    restored: list[DatadirServer],
) -> None:
    source = mariadb_factory(
        extra_args=[*LOG_BIN, "--log-bin-trust-function-creators=1", "--skip-name-resolve=0"]
    )
    # A physical copy does not go through the dump tool: its hazards are kept.
    load_corpus(source)
    fill_generated(source)
    snapshot = plakar.backup(bin_uri(source), password(source))
    target = tmp_path / "restored-datadir"
    plakar.restore(snapshot, restore_uri(target))
    copy = start_on(target, tmp_path, source, restored)

    wanted = describe_server(source)
    got = describe_server(copy)
    assert "gen" in wanted and len(wanted) > 3
    assert sorted(got) == sorted(wanted)
    # MEMORY tables keep their rows in RAM only: a copy of the files, like a
    # restart, brings their definitions back, empty.  Nothing else may differ.
    memory = {
        (str(db), str(table))
        for db, table in source.query(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES"
            " WHERE ENGINE = 'MEMORY' AND TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN"
            " ('information_schema', 'performance_schema', 'mysql', 'sys')"
        )
    }
    assert memory, "the corpus has a MEMORY table: the exception below is exercised"
    for db, table in memory:
        assert copy.query(f"SELECT COUNT(*) FROM `{db}`.`{table}`") == [(0,)]
        source.execute(f"DELETE FROM `{db}`.`{table}`")
    wanted = describe_server(source)
    for name in wanted:
        assert diff(wanted[name], got[name]) == [], name
    # The grant tables are copied as they are stored...
    for table in GRANT_TABLES:
        select = f"SELECT * FROM mysql.{table} ORDER BY 1, 2, 3"
        assert copy.query(select) == source.query(select), table
    # ...and a server reads them back as the source itself does once restarted
    # (MariaDB re-reads some grants differently from how it made them).
    source.stop()
    source.start()
    assert diff_accounts(describe_accounts(source), describe_accounts(copy)) == []


def test_plain_file_restore_then_prepare_by_hand(
    plakar: Plakar,
    mariadb_factory: MariaDBFactory,
    tmp_path: Path,
    restored: list[DatadirServer],
) -> None:
    source = mariadb_factory(extra_args=LOG_BIN)
    fill_generated(source)
    snapshot = plakar.backup(bin_uri(source), password(source))

    # The documented manual way: Plakar's own file restore, then --prepare.
    files = tmp_path / "files"
    plakar.restore(f"{snapshot}:/datadir", files)
    datadirs = [p.parent for p in files.rglob("xtrabackup_checkpoints")]
    assert datadirs == [files]  # the contents of /datadir, as docs/physical.md says
    prepared = subprocess.run(
        [REAL_TOOL, "--prepare", f"--target-dir={datadirs[0]}"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert prepared.returncode == 0, prepared.stderr[-2000:]
    copy = start_on(datadirs[0], tmp_path, source, restored)
    assert diff(describe_server(source)["gen"], describe_server(copy)["gen"]) == []

    # mysql+bin:// refuses a directory that holds anything, and leaves it alone.
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    proc = plakar.restore(snapshot, restore_uri(busy), check=False)
    assert proc.returncode != 0
    assert f"{busy} is not empty" in proc.stderr + proc.stdout
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]


def test_a_64k_page_size_backup_prepares_and_starts(
    plakar: Plakar,
    mariadb_factory: MariaDBFactory,
    tmp_path: Path,
    restored: list[DatadirServer],
) -> None:
    """--prepare and the private start read no option file: the page size comes from the
    backup's backup-my.cnf, parsed and checked, as an argument."""
    source = mariadb_factory(extra_args=[*LOG_BIN, "--innodb-page-size=65536"])
    assert source.query("SELECT @@innodb_page_size") == [(65536,)]
    fill_generated(source)
    snapshot = plakar.backup(bin_uri(source), password(source))
    cnf = plakar.cat(snapshot, "/datadir/backup-my.cnf").decode()
    assert "innodb_page_size=65536" in cnf

    target = tmp_path / "restored-datadir"
    proc = plakar.restore(snapshot, restore_uri(target))
    assert "is ready for mariadbd --datadir" in proc.stderr
    assert "set the backup's point" in proc.stderr  # the private start ran on 64 KiB pages
    copy = DatadirServer(
        target,
        tmp_path / "restored-0",
        root_password=source.root_password,
        extra_args=["--innodb-page-size=65536"],  # as a DBA starts it: the source's setting
    )
    restored.append(copy)
    assert copy.query("SELECT @@innodb_page_size") == [(65536,)]
    assert diff(describe_server(source)["gen"], describe_server(copy)["gen"]) == []


# -- failures --------------------------------------------------------------------------


def wrapper(directory: Path, body: str) -> Path:
    """A ``mariadb-backup`` in ``directory`` that runs ``body`` (sh), with $REAL the real one."""
    executable(directory / "mariadb-backup", f"#!/bin/sh\nREAL={REAL_TOOL}\n{body}\n")
    return directory


#: Passes --version through; the caller adds --throttle=4 (4 I/O pairs of 1 MiB a second)
#: so that the copy of the filler lasts long enough to be interrupted.
SLOW = 'if [ "$1" = "--version" ]; then exec "$REAL" --version; fi\n'


def assert_failed_without_snapshot(
    plakar: Plakar, proc: subprocess.CompletedProcess[str], *needles: str
) -> str:
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert plakar.snapshots() == [], output
    for needle in needles:
        assert needle in output, output
    return output


def test_a_killed_backup_tool_leaves_no_snapshot(
    plakar: Plakar, mariadb_factory: MariaDBFactory, tmp_path: Path
) -> None:
    source = mariadb_factory(extra_args=LOG_BIN)
    fill_accounts(source, filler_rows=100_000)
    tools = wrapper(
        tmp_path / "killed",
        SLOW + '( sleep 2; kill -9 $$ ) >/dev/null 2>&1 &\nexec "$REAL" "$@" --throttle=4',
    )
    proc = plakar.at(
        "backup", "-o", password(source), "-o", f"bin_dir={tools}", bin_uri(source), check=False
    )
    assert_failed_without_snapshot(plakar, proc, "killed by signal 9")


def test_a_server_gone_mid_backup_leaves_no_snapshot(
    plakar: Plakar, mariadb_factory: MariaDBFactory, tmp_path: Path
) -> None:
    source = mariadb_factory(extra_args=LOG_BIN)
    fill_accounts(source, filler_rows=100_000)
    started = tmp_path / "started"
    tools = wrapper(tmp_path / "slow", SLOW + f'touch {started}\nexec "$REAL" "$@" --throttle=4')

    def kill_server() -> None:
        deadline = time.monotonic() + 120
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)
        source.kill()

    killer = threading.Thread(target=kill_server)
    killer.start()
    try:
        proc = plakar.at(
            "backup",
            "-o",
            password(source),
            "-o",
            f"bin_dir={tools}",
            bin_uri(source),
            check=False,
        )
    finally:
        killer.join()
    assert started.exists()
    # e.g. "mariadb-backup exited with status 1: ... failed to execute query BACKUP LOCK
    # `mysql`.`index_stats`: Server has gone away"
    assert_failed_without_snapshot(plakar, proc, "mariadb-backup exited with status")


def test_missing_or_mismatched_tool_is_one_line_saying_what_to_install(
    plakar: Plakar, mariadb: MariaDBServer, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = plakar.at(
        "backup", "-o", password(mariadb), "-o", f"bin_dir={empty}", bin_uri(mariadb), check=False
    )
    assert_failed_without_snapshot(
        plakar, proc, "mariadb-backup or mariabackup not found", "apt-get install mariadb-backup"
    )

    old = wrapper(
        tmp_path / "old",
        'echo "mariadb-backup based on MariaDB server 10.6.18-MariaDB debian-linux-gnu" >&2',
    )
    proc = plakar.at(
        "backup", "-o", password(mariadb), "-o", f"bin_dir={old}", bin_uri(mariadb), check=False
    )
    output = assert_failed_without_snapshot(
        plakar, proc, "is version 10.6.18 but the server is 10.11", "install mariadb-backup 10.11"
    )
    assert output.count("install mariadb-backup 10.11") == 1


def test_missing_privileges_are_named(plakar: Plakar, mariadb: MariaDBServer) -> None:
    mariadb.execute("CREATE USER 'weak'@'%' IDENTIFIED BY 'weak-pw'")
    mariadb.execute("GRANT RELOAD ON *.* TO 'weak'@'%'")
    # Reading mysql.* shows every account's privileges: only its own count.
    mariadb.execute("GRANT SELECT ON mysql.* TO 'weak'@'%'")
    uri = f"mysql+bin://weak@{mariadb.host}:{mariadb.port}"
    proc = plakar.at("backup", "-o", "password=weak-pw", uri, check=False)
    output = assert_failed_without_snapshot(plakar, proc, "PROCESS, LOCK TABLES, BINLOG MONITOR")
    assert "lacks" in output and "RELOAD," not in output

    mariadb.execute("GRANT PROCESS, LOCK TABLES, BINLOG MONITOR ON *.* TO 'weak'@'%'")
    snapshot = plakar.backup(uri, "password=weak-pw")
    assert "weak-pw" not in plakar.cat(snapshot, "/manifest.json").decode()


def test_bad_physical_inputs_are_refused_in_one_line(
    plakar: Plakar, mariadb: MariaDBServer, tmp_path: Path
) -> None:
    cases = [
        (["-o", password(mariadb), bin_uri(mariadb) + "/shop"], "copies the whole data directory"),
        (
            ["-o", password(mariadb), "-o", "no_data=true", bin_uri(mariadb)],
            "option no_data applies to logical backups",
        ),
    ]
    for args, needle in cases:
        proc = plakar.at("backup", *args, check=False)
        assert_failed_without_snapshot(plakar, proc, needle)
