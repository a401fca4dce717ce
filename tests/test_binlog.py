"""Point-in-time recovery end to end: binary logs archived with ``mysql+binlog://``
and replayed onto a restored base, through the real plakar CLI, against private
MariaDB servers that write binary logs with GTIDs.

The scenario is the one a DBA fears: money moves between two databases while the
base backup runs and after it; then a ``DROP TABLE`` and a ``DELETE`` without
``WHERE``.  The replay must bring back the state just before them, exactly:
every account's balance (a digest of all rows) and the total, which the
transfers never change.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from support.mariadb import MariaDBServer
from support.plakar import Plakar, make_plakar

LOG_BIN = ("--log-bin=mysql-bin", "--server-id=1")
ACCOUNTS = 40
START_BALANCE = 1000
DATABASES = ("bank_a", "bank_b")


def uri(server: MariaDBServer, scheme: str = "mysql") -> str:
    return f"{scheme}://root@{server.host}:{server.port}"


def password(server: MariaDBServer) -> str:
    return f"password={server.root_password}"


def binlog_uri(server: MariaDBServer) -> str:
    return uri(server, "mysql+binlog")


def fingerprint(server: MariaDBServer) -> tuple[str, int]:
    """A digest of every account of both databases, and the total money."""
    digest = hashlib.sha256()
    total = 0
    for db in DATABASES:
        for row in server.query(f"SELECT id, balance FROM {db}.accounts ORDER BY id"):
            digest.update(f"{db}:{row[0]}:{row[1]}\n".encode())
            total += int(row[1])
    return digest.hexdigest(), total


def create_bank(server: MariaDBServer) -> None:
    for db in DATABASES:
        server.execute(f"CREATE DATABASE {db}")
        server.execute(
            f"CREATE TABLE {db}.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL)"
            " ENGINE=InnoDB"
        )
        values = ", ".join(f"({i}, {START_BALANCE})" for i in range(ACCOUNTS))
        server.execute(f"INSERT INTO {db}.accounts VALUES {values}")


class Transfers:
    """Moves money between the two databases, one transaction per transfer,
    in a thread; deterministic amounts and accounts."""

    def __init__(self, server: MariaDBServer, seed: int) -> None:
        self.server = server
        self.random = random.Random(seed)
        self.done = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def run(self, count: int) -> None:
        """``count`` transfers, now, in this thread."""
        with self.server.connect() as conn:
            for _ in range(count):
                self._one(conn)

    def _one(self, conn: object) -> None:
        source, target = self.random.sample(DATABASES, 2)
        a, b = self.random.randrange(ACCOUNTS), self.random.randrange(ACCOUNTS)
        amount = self.random.randrange(1, 50)
        with conn.cursor() as cur:  # type: ignore[attr-defined]
            cur.execute("BEGIN")
            cur.execute(
                f"UPDATE {source}.accounts SET balance = balance - %s WHERE id = %s", (amount, a)
            )
            cur.execute(
                f"UPDATE {target}.accounts SET balance = balance + %s WHERE id = %s", (amount, b)
            )
            cur.execute("COMMIT")
        self.done += 1

    def __enter__(self) -> Transfers:
        def loop() -> None:
            try:
                with self.server.connect() as conn:
                    while not self._stop.is_set():
                        self._one(conn)
                        time.sleep(0.002)
            except BaseException as exc:
                self.error = exc

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(30)
        assert self.error is None, self.error


def wait_next_second() -> None:
    """Sleep into a new second, so that events before and after differ in time."""
    time.sleep(1.05 - (time.time() % 1.0))


@dataclass
class Scenario:
    plakar: Plakar
    source: MariaDBServer
    base: str  # logical snapshot
    archive: str  # binlog snapshot, taken after the disaster
    expected: tuple[str, int]  # fingerprint just before the disaster
    base_gtid: str
    stop_datetime: str  # the second of the DROP
    stop_file_position: str  # file:position of the DROP's first event
    stop_gtid: str  # the last transaction before the DROP
    mid_gtid: str  # a transaction between the base and the DROP
    audit_gtid: str  # the CREATE TABLE bank_a.audit right after it
    physical: Path  # a prepared mariadb-backup of the source, taken while money moved


def start_server(base: Path, *, log_bin: bool) -> MariaDBServer:
    return MariaDBServer(base, extra_args=LOG_BIN if log_bin else ())


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    root = tmp_path_factory.mktemp("pitr")
    plakar = make_plakar(root)
    source = start_server(root / "source", log_bin=True)
    try:
        create_bank(source)
        transfers = Transfers(source, seed=15)
        with transfers:
            while transfers.done < 50:
                time.sleep(0.05)
            base = plakar.backup(uri(source), password(source), "databases=bank_a,bank_b")
            source.execute("FLUSH BINARY LOGS")  # the replay crosses a log boundary
            physical = physical_backup(source, root / "physical")
            time.sleep(0.3)
        transfers.run(100)
        mid_gtid = str(source.query("SELECT @@gtid_binlog_pos")[0][0])
        source.execute("CREATE TABLE bank_a.audit (id INT PRIMARY KEY)")
        audit_gtid = str(source.query("SELECT @@gtid_binlog_pos")[0][0])
        source.execute("FLUSH BINARY LOGS")
        transfers.run(100)
        expected = fingerprint(source)
        assert expected[1] == 2 * ACCOUNTS * START_BALANCE

        wait_next_second()
        stop_datetime = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        stop_gtid = str(source.query("SELECT @@gtid_binlog_pos")[0][0])
        file, position = source.query("SHOW MASTER STATUS")[0][:2]
        source.execute("DROP TABLE bank_b.accounts")
        source.execute("DELETE FROM bank_a.accounts")
        archive = plakar.backup(binlog_uri(source), password(source))
        manifest = json.loads(plakar.cat(base, "/manifest.json"))
        yield Scenario(
            plakar=plakar,
            source=source,
            base=base,
            archive=archive,
            expected=expected,
            base_gtid=manifest["binlog"]["gtid"],
            stop_datetime=stop_datetime,
            stop_file_position=f"{file}:{position}",
            stop_gtid=stop_gtid,
            mid_gtid=mid_gtid,
            audit_gtid=audit_gtid,
            physical=physical,
        )
    finally:
        source.cleanup()
        plakar.close()


def physical_backup(server: MariaDBServer, directory: Path) -> Path:
    """``mariadb-backup --backup`` then ``--prepare`` of ``server`` (run directly: the
    physical kind of this integration is built elsewhere)."""
    options = server.base_dir / "backup.cnf"
    fd = os.open(options, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f'[client]\nuser=root\npassword="{server.root_password}"\n')
    tool = shutil.which("mariadb-backup") or "mariadb-backup"
    for step in ("--backup", "--prepare"):
        subprocess.run(
            [
                tool,
                f"--defaults-file={options}",
                step,
                f"--target-dir={directory}",
                f"--socket={server.socket}",
                f"--datadir={server.datadir}",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return directory


@pytest.fixture
def target(tmp_path: Path) -> Iterator[MariaDBServer]:
    server = start_server(tmp_path / "target", log_bin=False)
    try:
        yield server
    finally:
        server.cleanup()


def restore_base(s: Scenario, target: MariaDBServer) -> None:
    proc = s.plakar.restore(s.base, uri(target), password(target))
    assert "recorded the base's point" in proc.stdout + proc.stderr
    point = target.query("SELECT @@gtid_slave_pos")[0][0]
    assert point == s.base_gtid


def replay(s: Scenario, target: MariaDBServer, *opts: str, check: bool = True) -> str:
    args = ["restore", "-to", binlog_uri(target), "-o", password(target)]
    for opt in opts:
        args += ["-o", opt]
    proc = s.plakar.at(*args, s.archive, check=check)
    return proc.stdout + proc.stderr


def test_archive_holds_every_log_byte_for_byte(scenario: Scenario) -> None:
    s = scenario
    listed = s.source.query("SHOW BINARY LOGS")
    names = [entry.name for entry in s.plakar.ls(s.archive, "/binlog")]
    assert names == [row[0] for row in listed]
    manifest = json.loads(s.plakar.cat(s.archive, "/manifest.json"))
    assert manifest["server_id"] == 1
    assert manifest["gtid_binlog_pos"] == s.source.query("SELECT @@gtid_binlog_pos")[0][0]
    assert [f["name"] for f in manifest["files"]] == names
    assert manifest["gtid_end"] == manifest["gtid_binlog_pos"]
    for entry, row in zip(manifest["files"], listed, strict=True):
        data = s.plakar.cat(s.archive, f"/binlog/{entry['name']}")
        assert len(data) == entry["size"]
        if entry["name"] != listed[-1][0]:  # closed: as the server wrote it
            assert entry["size"] == row[1]
            assert data == (s.source.datadir / entry["name"]).read_bytes()
        else:  # being written: the server may have added a checkpoint event since
            assert entry["size"] <= row[1]
        if entry["transactions"]:
            assert entry["first_event_time"] <= entry["last_event_time"]
            assert entry["first_gtid"] and entry["last_gtid"]
    # The files' GTID ranges follow each other.
    for before, after in zip(manifest["files"], manifest["files"][1:], strict=False):
        assert before["gtid_end"] == after["gtid_start"]


def test_replay_to_a_datetime_then_again_applies_nothing_twice(
    scenario: Scenario, target: MariaDBServer
) -> None:
    s = scenario
    restore_base(s, target)
    assert fingerprint(target) != s.expected  # the base is older than the disaster
    out = replay(s, target, f"stop_datetime={s.stop_datetime}")
    assert "applied" in out
    assert fingerprint(target) == s.expected
    assert target.query("SELECT @@gtid_slave_pos")[0][0] == s.stop_gtid
    # The same replay again starts after what was applied: nothing is applied twice.
    out = replay(s, target, f"stop_datetime={s.stop_datetime}")
    assert "nothing to replay" in out
    assert fingerprint(target) == s.expected


def test_replay_by_gtid_then_by_file_position(scenario: Scenario, target: MariaDBServer) -> None:
    s = scenario
    restore_base(s, target)
    replay(s, target, f"stop_position={s.mid_gtid}")
    assert target.query("SELECT @@gtid_slave_pos")[0][0] == s.mid_gtid
    halfway = fingerprint(target)
    assert halfway[1] == 2 * ACCOUNTS * START_BALANCE  # whole transactions only
    assert halfway != s.expected
    replay(s, target, f"stop_position={s.stop_file_position}")
    assert fingerprint(target) == s.expected
    assert target.query("SELECT @@gtid_slave_pos")[0][0] == s.stop_gtid


def test_failing_event_stops_with_its_position_and_resumes(
    scenario: Scenario, target: MariaDBServer
) -> None:
    s = scenario
    restore_base(s, target)
    target.execute("CREATE TABLE bank_a.audit (id INT PRIMARY KEY)")  # in the way
    out = replay(s, target, f"stop_datetime={s.stop_datetime}", check=False)
    assert "the replay stopped at the event at mysql-bin." in out, out
    assert f"(transaction {s.audit_gtid})" in out, out
    assert "Table 'audit' already exists" in out, out
    # Everything before the failing transaction is applied and recorded.
    assert target.query("SELECT @@gtid_slave_pos")[0][0] == s.mid_gtid
    assert fingerprint(target)[1] == 2 * ACCOUNTS * START_BALANCE
    # The cause fixed, the same replay goes on from there.
    target.execute("DROP TABLE bank_a.audit")
    replay(s, target, f"stop_datetime={s.stop_datetime}")
    assert fingerprint(target) == s.expected


def test_bad_replay_options_say_so(scenario: Scenario, target: MariaDBServer) -> None:
    s = scenario
    for option, message in (
        ("stop_datetime=yesterday", "is not 'YYYY-MM-DD HH:MM:SS'"),
        ("stop_position=12:zz", "is neither a GTID position"),
        ("databases=bank_a,bank_b", "the replay filters one database"),
    ):
        out = replay(s, target, option, check=False)
        assert message in out, (option, out)
    # No restored point on a fresh server: the replay refuses rather than guess.
    out = replay(s, target, check=False)
    assert "has no restored point (@@gtid_slave_pos is empty)" in out, out
    # A server without binary logs has nothing to archive: no snapshot.
    before = s.plakar.snapshots()
    proc = s.plakar.at("backup", "-o", password(target), binlog_uri(target), check=False)
    assert "binary logging is off" in proc.stdout + proc.stderr
    assert s.plakar.snapshots() == before


@pytest.mark.skipif(shutil.which("mariadb-backup") is None, reason="mariadb-backup not installed")
def test_replay_onto_a_physical_base(scenario: Scenario, target: MariaDBServer) -> None:
    """The documented way for a physical base: the GTID of mariadb_backup_binlog_info
    recorded in @@gtid_slave_pos, then the same replay."""
    s = scenario
    target.stop()
    shutil.rmtree(target.datadir)
    shutil.copytree(s.physical, target.datadir)
    target.root_password = s.source.root_password  # the accounts are the source's now
    target.start()
    # mariadb_backup_binlog_info from MariaDB 11; xtrabackup_binlog_info in 10.x.
    info = next(
        s.physical / name
        for name in ("mariadb_backup_binlog_info", "xtrabackup_binlog_info")
        if (s.physical / name).exists()
    )
    gtid = info.read_text().split()[2]
    target.execute("SET GLOBAL gtid_slave_pos = %s", (gtid,))
    assert fingerprint(target) != s.expected
    replay(s, target, f"stop_datetime={s.stop_datetime}")
    assert fingerprint(target) == s.expected
    assert target.query("SELECT @@gtid_slave_pos")[0][0] == s.stop_gtid


def store_bytes(plakar: Plakar) -> int:
    return sum(p.stat().st_size for p in Path(plakar.store).rglob("*") if p.is_file())


def binlog_bytes(server: MariaDBServer) -> int:
    return sum(int(row[1]) for row in server.query("SHOW BINARY LOGS"))


def test_second_snapshot_costs_the_new_bytes(tmp_path: Path) -> None:
    """Closed logs are stored once: a snapshot costs the new binary-log bytes plus
    Plakar's own per-snapshot metadata, measured here by a snapshot with nothing new."""
    plakar = make_plakar(tmp_path)
    server = start_server(tmp_path / "source", log_bin=True)
    rng = random.Random(1)

    def write(first: int, count: int) -> None:
        for i in range(first, first + count):  # incompressible rows
            server.execute("INSERT INTO d.blobs VALUES (%s, %s)", (i, rng.randbytes(1 << 20)))
            if i % 3 == 2:
                server.execute("FLUSH BINARY LOGS")

    def snapshot() -> int:
        before = store_bytes(plakar)
        plakar.backup(binlog_uri(server), password(server))
        return store_bytes(plakar) - before

    try:
        server.execute("CREATE DATABASE d")
        server.execute("CREATE TABLE d.blobs (id INT PRIMARY KEY, b LONGBLOB)")
        write(0, 8)
        first = snapshot()
        logs = binlog_bytes(server)
        overhead = snapshot()  # nothing new: Plakar's metadata alone
        write(100, 4)
        new = binlog_bytes(server) - logs
        growth = snapshot()
        print(
            f"binlog bytes {logs}: first snapshot +{first}; with nothing new +{overhead}; "
            f"after +{new} new binlog bytes +{growth}"
        )
        assert logs > 16 << 20 and new > 8 << 20
        assert first > logs * 0.9  # random rows: the store really holds them
        assert new * 0.9 < growth < new + overhead + (1 << 20), (growth, new, overhead)
    finally:
        server.cleanup()
        plakar.close()


def test_purged_log_is_a_gap_and_nothing_is_applied(tmp_path: Path) -> None:
    plakar = make_plakar(tmp_path)
    source = start_server(tmp_path / "source", log_bin=True)
    target = start_server(tmp_path / "target", log_bin=False)
    try:
        create_bank(source)
        base = plakar.backup(uri(source), password(source), "databases=bank_a,bank_b")
        Transfers(source, seed=7).run(30)
        source.execute("FLUSH BINARY LOGS")
        Transfers(source, seed=8).run(30)
        last = source.query("SHOW MASTER STATUS")[0][0]
        source.execute(f"PURGE BINARY LOGS TO '{last}'")
        archive = plakar.backup(binlog_uri(source), password(source))
        plakar.restore(base, uri(target), password(target))
        restored = fingerprint(target)
        point = target.query("SELECT @@gtid_slave_pos")[0][0]
        proc = plakar.at(
            "restore", "-to", binlog_uri(target), "-o", password(target), archive, check=False
        )
        out = proc.stdout + proc.stderr
        assert f"the archive starts with {last} at GTID position" in out, out
        assert "are missing" in out and "nothing was applied" in out, out
        assert fingerprint(target) == restored
        assert target.query("SELECT @@gtid_slave_pos")[0][0] == point
    finally:
        target.cleanup()
        source.cleanup()
        plakar.close()
