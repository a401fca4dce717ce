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
import itertools
import json
import os
import pwd
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from support.scripts import executable

from kloset_sdk.guard import Guard
from plakar_mysql.core.gtid import GtidSet, Position
from plakar_mysql.physical.replay_point import set_point_in_datadir
from plakar_mysql_harness.datadir import DatadirServer
from plakar_mysql_harness.mariadb import MariaDBServer
from plakar_mysql_harness.mysql import MySQLServer
from plakar_mysql_harness.plakar import Plakar, make_plakar

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
    physical: str  # physical snapshot (mysql+bin://), taken while money moved


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
            physical = plakar.backup(uri(source, "mysql+bin"), password(source))
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


@pytest.fixture
def target(tmp_path: Path) -> Iterator[MariaDBServer]:
    server = start_server(tmp_path / "target", log_bin=False)
    try:
        yield server
    finally:
        server.cleanup()


def restore_base(s: Scenario, target: MariaDBServer) -> None:
    # The base holds two databases, not the whole server: its point is recorded
    # only when asked (restore_point=true).
    proc = s.plakar.restore(s.base, uri(target), password(target), "restore_point=true")
    assert "recorded the base's point" in proc.stdout + proc.stderr
    point = target.query("SELECT @@gtid_slave_pos")[0][0]
    assert point == s.base_gtid


def replay(s: Scenario, target: MariaDBServer, *opts: str, check: bool = True) -> str:
    proc = s.plakar.restore(s.archive, binlog_uri(target), password(target), *opts, check=check)
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
    assert f"nothing to apply: the target is already at stop_datetime {s.stop_datetime}" in out
    assert f"@@gtid_slave_pos is {s.stop_gtid}, read from the target" in out, out
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
    # Everything before the failing transaction is applied and recorded, and said
    # as the server holds it.
    assert target.query("SELECT @@gtid_slave_pos")[0][0] == s.mid_gtid
    assert f"(@@gtid_slave_pos is {s.mid_gtid}, read from the target)" in out, out
    assert "run the same restore again to go on from there" in out, out
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


def test_a_replay_blocked_by_a_lock_stops_naming_the_holder(
    scenario: Scenario, target: MariaDBServer
) -> None:
    """Another client holds ``LOCK TABLES ... WRITE`` on a table the replay writes:
    the replay waits lock_wait_timeout, then stops in one line that names that
    client's session; nothing is applied, and it resumes once the lock is gone."""
    s = scenario
    restore_base(s, target)
    restored = fingerprint(target)
    with target.connect() as holder, holder.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID()")
        (session,) = cur.fetchone()
        cur.execute("LOCK TABLES bank_a.accounts WRITE")
        began = time.monotonic()
        proc = s.plakar.restore(
            s.archive, binlog_uri(target), password(target),
            f"stop_datetime={s.stop_datetime}", "lock_wait_timeout=2", check=False, timeout=120,
        )  # fmt: skip
        waited = time.monotonic() - began
        cur.execute("UNLOCK TABLES")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    lines = [line for line in out.splitlines() if "Lock wait timeout exceeded" in line]
    assert lines, out
    assert "waited 2 s, lock_wait_timeout" in lines[0], out
    assert f"session {session} (" in lines[0], out
    assert waited < 60, waited
    assert fingerprint(target) == restored
    assert target.query("SELECT @@gtid_slave_pos")[0][0] == s.base_gtid
    replay(s, target, f"stop_datetime={s.stop_datetime}")
    assert fingerprint(target) == s.expected


def test_a_chatty_binlog_tool_does_not_block_the_replay(
    scenario: Scenario, target: MariaDBServer, tmp_path: Path
) -> None:
    """A mariadb-binlog that writes 256 KiB of warnings (four times a pipe's
    buffer) before its SQL: its stderr is drained as it runs, so it never blocks
    on it, and the replay ends as usual."""
    s = scenario
    real = {name: shutil.which(name) for name in ("mariadb-binlog", "mariadb")}
    tools = tmp_path / "tools"
    executable(
        tools / "mariadb-binlog",
        "#!/bin/sh\n"
        'if [ "$1" != --version ]; then\n'
        "  yes 'mariadb-binlog: Warning: a chatty tool' | head -c 262144 >&2\n"
        "fi\n"
        f'exec {real["mariadb-binlog"]} "$@"\n',
    )
    (tools / "mariadb").symlink_to(str(real["mariadb"]))
    restore_base(s, target)
    proc = s.plakar.restore(
        s.archive, binlog_uri(target), password(target),
        f"stop_datetime={s.stop_datetime}", f"bin_dir={tools}", timeout=120,
    )  # fmt: skip
    assert "applied" in proc.stdout + proc.stderr
    assert fingerprint(target) == s.expected


# What a private start of the server must not leave in a restored data directory.
DROPPINGS = ("multi-master.info", "ib_buffer_pool", "ibtmp1", "mysqld.pid", "mysqld.sock")


def test_replay_onto_a_physical_base(scenario: Scenario, target: MariaDBServer) -> None:
    """The physical restore leaves the backup's GTID in @@gtid_slave_pos by itself:
    the replay then starts there, nothing copied by hand."""
    s = scenario
    gtid = json.loads(s.plakar.cat(s.physical, "/manifest.json"))["binlog"]["gtid"]
    target.stop()
    shutil.rmtree(target.datadir)
    proc = s.plakar.restore(s.physical, f"mysql+bin://{target.datadir}")
    out = proc.stdout + proc.stderr
    assert f"set the backup's point {gtid} in @@gtid_slave_pos" in out, out
    # Nothing of the private start is left, no binary log; every file is still ours.
    names = set(os.listdir(target.datadir))
    assert not names & set(DROPPINGS), names
    assert not [n for n in names if n.startswith("mysql-bin") or n.endswith((".pid", ".sock"))]
    owners = {(p.lstat().st_uid, p.lstat().st_gid) for p in target.datadir.rglob("*")}
    assert owners == {(os.geteuid(), os.getegid())}, owners
    target.root_password = s.source.root_password  # the accounts are the source's now
    target.start()
    assert target.query("SELECT @@gtid_slave_pos")[0][0] == gtid
    assert fingerprint(target) != s.expected
    out = replay(s, target, f"stop_datetime={s.stop_datetime}")
    assert f"starting after the target's restored point {gtid}" in out, out
    assert fingerprint(target) == s.expected
    assert target.query("SELECT @@gtid_slave_pos")[0][0] == s.stop_gtid


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_the_private_start_runs_as_the_files_owner(
    scenario: Scenario, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Run as root on files owned by another user: the server runs as that user,
    and no file changes owner."""
    s = scenario
    # Out of pytest's root-only tmp_path: the other user must reach the directory.
    reachable = Path(tempfile.mkdtemp(prefix="plakar-mysql-owner-"))
    reachable.chmod(0o711)
    request.addfinalizer(lambda: shutil.rmtree(reachable, ignore_errors=True))
    datadir = reachable / "restored"
    s.plakar.restore(s.physical, f"mysql+bin://{datadir}")
    nobody = pwd.getpwnam("nobody")
    for path in [datadir, *datadir.rglob("*")]:
        os.lchown(path, nobody.pw_uid, nobody.pw_gid)
    before = set(os.listdir(datadir))
    server = shutil.which("mariadbd", path=f"{os.environ['PATH']}:/usr/sbin")
    assert server is not None
    set_point_in_datadir(server, str(datadir), Position.parse("0-1-7,5-2-9"), Guard.off())
    assert set(os.listdir(datadir)) == before
    owners = {(p.lstat().st_uid, p.lstat().st_gid) for p in [datadir, *datadir.rglob("*")]}
    assert owners == {(nobody.pw_uid, nobody.pw_gid)}, owners
    copy = DatadirServer(datadir, tmp_path / "run", root_password=s.source.root_password)
    try:
        assert copy.query("SELECT @@gtid_slave_pos")[0][0] == "0-1-7,5-2-9"
    finally:
        copy.cleanup()


def store_bytes(plakar: Plakar) -> int:
    return sum(p.stat().st_size for p in Path(plakar.store).rglob("*") if p.is_file())


def binlog_bytes(server: MariaDBServer) -> int:
    return sum(int(row[1]) for row in server.query("SHOW BINARY LOGS"))


_PACKFILE_ID = re.compile(r"^[0-9a-f]{64}$", re.M)
# A line of "plakar diag packfile ID": "blob[N]: <mac> <offset> <length> <flags> <type>".
_BLOB = re.compile(r"^blob\[\d+\]: [0-9a-f]+ \d+ (?P<length>\d+) [0-9a-f]+ (?P<type>\S+)$", re.M)


def packfiles(plakar: Plakar) -> set[str]:
    """The ids of the store's packfiles."""
    return set(_PACKFILE_ID.findall(plakar.at("diag", "packfile").stdout))


def padding(plakar: Plakar, packs: set[str]) -> int:
    """The random bytes in ``packs``: Plakar (kloset's packer) pads every packfile at
    its start and at its end with 1 B to 512 KiB (the chunker's minimum size) of
    random data, drawn afresh each time, so that a packfile's size says nothing of
    what it holds."""
    if not packs:
        return 0
    out = plakar.at("diag", "packfile", *sorted(packs)).stdout
    return sum(int(blob["length"]) for blob in _BLOB.finditer(out) if blob["type"] == "random")


def test_second_snapshot_costs_the_new_bytes(tmp_path: Path) -> None:
    """Closed logs are stored once: a snapshot costs the new binary-log bytes plus
    Plakar's own per-snapshot metadata, measured here by a snapshot with nothing new.

    Each snapshot's store growth is counted without the random padding of its
    packfiles (up to 1 MiB each, 2 or more packfiles a snapshot): that padding
    varies by megabytes between two snapshots of the same data, and a bound
    made of it fails at random while hiding a re-stored chunk."""
    plakar = make_plakar(tmp_path)
    server = start_server(tmp_path / "source", log_bin=True)
    rng = random.Random(1)

    def write(first: int, count: int) -> None:
        for i in range(first, first + count):  # incompressible rows
            server.execute("INSERT INTO d.blobs VALUES (%s, %s)", (i, rng.randbytes(1 << 20)))
            if i % 3 == 2:
                server.execute("FLUSH BINARY LOGS")

    def snapshot() -> int:
        """The store's growth by one more binlog snapshot, padding left out."""
        before, packs = store_bytes(plakar), packfiles(plakar)
        plakar.backup(binlog_uri(server), password(server))
        grown = store_bytes(plakar) - before
        padded = padding(plakar, packfiles(plakar) - packs)
        print(f"snapshot: store +{grown}, of which random padding {padded}")
        return grown - padded

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
            f"after +{new} new binlog bytes +{growth} (padding left out)"
        )
        assert logs > 16 << 20 and new > 8 << 20
        assert first > logs * 0.9  # random rows: the store really holds them
        # Encryption adds well under 1 % to the new bytes; a re-stored chunk of an old
        # log (Plakar's chunks average 1 MiB) does not fit in that slack.
        bound = new + overhead + new // 100 + (64 << 10)
        assert new * 0.9 < growth < bound, (growth, new, overhead)
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
        plakar.restore(base, uri(target), password(target), "restore_point=true")
        restored = fingerprint(target)
        point = target.query("SELECT @@gtid_slave_pos")[0][0]
        proc = plakar.restore(archive, binlog_uri(target), password(target), check=False)
        out = proc.stdout + proc.stderr
        assert f"the archive starts with {last} at GTID position" in out, out
        assert "are missing" in out and "nothing was applied" in out, out
        assert fingerprint(target) == restored
        assert target.query("SELECT @@gtid_slave_pos")[0][0] == point
    finally:
        target.cleanup()
        source.cleanup()
        plakar.close()


def digest(server: MariaDBServer, db: str) -> str:
    rows = server.query(f"SELECT id, balance FROM {db}.accounts ORDER BY id")
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_replay_of_one_database_leaves_the_other_alone(tmp_path: Path) -> None:
    """``databases=bank_a``: statements by their default database (``USE``), row
    events by their table's database, even inside a transaction that writes both."""
    plakar = make_plakar(tmp_path)
    source = start_server(tmp_path / "source", log_bin=True)  # binlog_format MIXED
    target = start_server(tmp_path / "target", log_bin=False)
    rng = random.Random(21)
    try:
        create_bank(source)
        base = plakar.backup(uri(source), password(source), "databases=bank_a,bank_b")
        for db in DATABASES:  # statement events, each under its own database
            with source.connect(db) as conn, conn.cursor() as cur:
                for _ in range(30):
                    cur.execute(
                        "UPDATE accounts SET balance = balance + %s WHERE id = %s",
                        (rng.randrange(1, 50), rng.randrange(ACCOUNTS)),
                    )
        with source.connect() as conn, conn.cursor() as cur:  # row events, no default db
            cur.execute("SET SESSION binlog_format = 'ROW'")
            for _ in range(30):
                cur.execute("BEGIN")
                for db in DATABASES:
                    cur.execute(
                        f"UPDATE {db}.accounts SET balance = balance - %s WHERE id = %s",
                        (rng.randrange(1, 50), rng.randrange(ACCOUNTS)),
                    )
                cur.execute("COMMIT")
        expected = {db: digest(source, db) for db in DATABASES}
        end = str(source.query("SELECT @@gtid_binlog_pos")[0][0])
        archive = plakar.backup(binlog_uri(source), password(source))
        plakar.restore(base, uri(target), password(target), "restore_point=true")
        untouched = digest(target, "bank_b")
        assert untouched != expected["bank_b"] and digest(target, "bank_a") != expected["bank_a"]
        proc = plakar.at(
            "restore", "-to", binlog_uri(target), "-o", password(target),
            "-o", "databases=bank_a", archive,
        )  # fmt: skip
        assert "applied 90 transaction(s)" in proc.stdout + proc.stderr, proc.stderr
        assert digest(target, "bank_a") == expected["bank_a"]
        assert digest(target, "bank_b") == untouched
        # The skipped transactions count as replayed: the next replay starts after them.
        assert target.query("SELECT @@gtid_slave_pos")[0][0] == end
    finally:
        target.cleanup()
        source.cleanup()
        plakar.close()


def test_replays_that_cannot_reach_the_point_fail_naming_the_range(
    scenario: Scenario, target: MariaDBServer
) -> None:
    """No false success: a stop before the base, a GTID stop behind it, a start the
    archive does not hold, a stop after the archive's end each fail (non-zero) with
    the archive's first and last transactions and the target's point read from it;
    the target is left as it was (or, for the late stop, with everything archived)."""
    s = scenario
    restore_base(s, target)
    restored = fingerprint(target)
    manifest = json.loads(s.plakar.cat(s.archive, "/manifest.json"))
    first = next(f for f in manifest["files"] if f["transactions"])
    first_time = datetime.fromisoformat(first["first_event_time"]).astimezone()
    early = first_time.strftime("%Y-%m-%d %H:%M:%S")
    said = f"@@gtid_slave_pos is {s.base_gtid}, read from the target"
    range_start = f"hold {first['first_gtid']} of "
    base_seq = Position.parse(s.base_gtid).seq(0)
    for option, message in (
        (f"stop_datetime={early}", "the target already holds transaction 0-1-"),
        (f"stop_position=0-1-{base_seq - 1}", f"after stop_position 0-1-{base_seq - 1}"),
        ("start_position=0-1-999999", "after the archive's end"),
    ):
        out = replay(s, target, option, check=False)
        line = next((x for x in out.splitlines() if message in x), "")
        assert line, (option, out)
        assert "a replay only goes forward" in line or "older than the target" in line, line
        assert said in line and range_start in line, line
        assert fingerprint(target) == restored
        assert target.query("SELECT @@gtid_slave_pos")[0][0] == s.base_gtid
    out = replay(s, target, "stop_datetime=2099-01-01 00:00:00", check=False)
    line = next((x for x in out.splitlines() if "the archive ends at" in x), "")
    assert "before stop_datetime 2099-01-01 00:00:00" in line, out
    end = manifest["gtid_end"]
    assert f"@@gtid_slave_pos is {end}, read from the target" in line and range_start in line, line


def test_start_position_behind_the_target_goes_on_after_its_point(
    scenario: Scenario, target: MariaDBServer
) -> None:
    """A start_position behind what the target records applies nothing twice: the
    replay says so, with the target's real point, and goes on after it."""
    s = scenario
    restore_base(s, target)
    behind = f"0-1-{Position.parse(s.base_gtid).seq(0) - 5}"
    out = replay(s, target, f"start_position={behind}", f"stop_datetime={s.stop_datetime}")
    assert (
        f"start_position {behind} is behind what the target records as applied "
        f"({s.base_gtid}): going on after {s.base_gtid}"
    ) in out, out
    assert fingerprint(target) == s.expected
    assert target.query("SELECT @@gtid_slave_pos")[0][0] == s.stop_gtid


# Names MariaDB accepts that the replay's SQL text must carry as data: a line break
# (alone, and before text shaped as the tool's own lines and as SQL), a backtick,
# quotes, a hash, the end of a comment, a tab, letters outside ASCII.  (MariaDB
# refuses a 4-byte character such as an emoji in a name, and a name ending in a
# space or a line break.)
AWKWARD = (
    "a\nb",
    "x`y",
    "q'\"z",
    "h#sh",
    "c*/m",
    "tab\tand\rcr",
    "ü€",
    "nl\n# at 4\nDROP DATABASE keep;",
)


def quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def awkward_rows(server: MariaDBServer) -> dict[str, list[tuple[object, ...]]]:
    return {
        name: list(server.query(f"SELECT * FROM {quoted(name)}.{quoted(name)} ORDER BY id"))
        for name in AWKWARD
    }


def test_names_with_line_breaks_survive_the_replay(tmp_path: Path) -> None:
    """Databases and tables named with line breaks and other awkward bytes, written
    by row and by statement events, inside transactions and by DDL: the replay
    brings every row over exactly and runs nothing of a name as SQL; a failure on
    such a table names it escaped, on one line."""
    plakar = make_plakar(tmp_path)
    source = start_server(tmp_path / "source", log_bin=True)
    target = start_server(tmp_path / "target", log_bin=False)
    try:
        source.execute("RESET MASTER")  # the archive starts at the first transaction
        source.execute("CREATE DATABASE keep")  # 0-1-1: what a name run as SQL would drop
        for name in AWKWARD:
            q = quoted(name)
            source.execute(f"CREATE DATABASE {q}")
            source.execute(f"CREATE TABLE {q}.{q} (id INT PRIMARY KEY, v TEXT)")
            with source.connect() as conn, conn.cursor() as cur:
                cur.execute("SET SESSION binlog_format = 'ROW'")
                cur.execute(f"INSERT INTO {q}.{q} VALUES (1, 'row event')")
                cur.execute("SET SESSION binlog_format = 'STATEMENT'")
                cur.execute(f"USE {q}")
                cur.execute(f"INSERT INTO {q} VALUES (2, 'line\\nCOMMIT/*!*/;\\n# at 4')")
        archive = plakar.backup(binlog_uri(source), password(source))
        proc = s_restore(plakar, archive, target, "start_position=0-1-0")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert awkward_rows(target) == awkward_rows(source)
        assert target.query("SHOW DATABASES LIKE 'keep'")  # nothing of a name ran
        # A failure on such a database: its name escaped in the one line that says so.
        target.execute("SET GLOBAL gtid_slave_pos = '0-1-1'")  # CREATE DATABASE `a<LF>b` next
        proc = s_restore(plakar, archive, target)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0, out
        lines = [line for line in out.splitlines() if "database exists" in line]
        assert lines and "'a\\nb'" in lines[0], out
    finally:
        target.cleanup()
        source.cleanup()
        plakar.close()


def s_restore(
    plakar: Plakar, archive: str, target: MariaDBServer, *opts: str
) -> subprocess.CompletedProcess[str]:
    return plakar.restore(archive, binlog_uri(target), password(target), *opts, check=False)


def test_the_replay_checks_its_privileges_before_applying(
    scenario: Scenario, target: MariaDBServer
) -> None:
    """An account that may replay the events but not record them is refused in one
    line naming the grant, before anything is applied; once granted (to PUBLIC: the
    server's own rules count), the replay goes through exactly."""
    s = scenario
    restore_base(s, target)
    restored = fingerprint(target)
    target.execute("CREATE USER replayer@'%' IDENTIFIED BY 'pw'")
    target.execute("GRANT BINLOG REPLAY, REPLICATION SLAVE ADMIN ON *.* TO replayer@'%'")
    target.execute("GRANT ALL ON bank_a.* TO replayer@'%'")
    target.execute("GRANT ALL ON bank_b.* TO replayer@'%'")
    uri = f"mysql+binlog://replayer@{target.host}:{target.port}"
    stop = f"stop_datetime={s.stop_datetime}"
    proc = s.plakar.restore(s.archive, uri, "password=pw", stop, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    line = next((x for x in out.splitlines() if "lacks what the replay needs" in x), "")
    assert "SELECT, INSERT ON mysql.gtid_slave_pos" in line, out
    assert (
        "GRANT SELECT, INSERT ON mysql.gtid_slave_pos TO" in line and "nothing was applied" in line
    )
    assert fingerprint(target) == restored
    target.execute("GRANT SELECT, INSERT ON mysql.gtid_slave_pos TO PUBLIC")
    s.plakar.restore(s.archive, uri, "password=pw", stop)
    assert fingerprint(target) == s.expected


# -- Oracle MySQL 9.7 ---------------------------------------------------------------
#
# The same bank, on MySQL servers of ``make mysql`` (binary log with GTIDs:
# gtid_mode=ON, enforce_gtid_consistency=ON, log_bin, server_id, as the harness
# runs them, named again here as extra_args).  MySQL's point is @@gtid_executed,
# a GTID set: the logical base's dump records the source's, the restore adds it to
# the target's @@gtid_purged, and the replay applies each transaction under its own
# GTID, which the target records as it commits and never applies twice.

MYSQL_PITR = (
    "--log-bin=binlog",
    "--server-id=1",
    "--gtid-mode=ON",
    "--enforce-gtid-consistency=ON",
)


def mysql_opts(server: MariaDBServer, *more: str) -> tuple[str, ...]:
    """The password, MySQL's client tools (``bin_dir``) and ``more``."""
    return (password(server), f"bin_dir={server.bin_dir}", *more)


def executed(server: MariaDBServer) -> GtidSet:
    return GtidSet.parse(str(server.query("SELECT @@GLOBAL.gtid_executed")[0][0]))


def last_gtid(server: MariaDBServer) -> str:
    """The source's last transaction, ``uuid:n``."""
    uuid = str(server.query("SELECT @@server_uuid")[0][0])
    return f"{uuid}:{executed(server).seq(uuid)}"


@dataclass
class MySQLScenario:
    plakar: Plakar
    source: MySQLServer
    uuid: str  # the source's server_uuid
    base: str  # logical snapshot of bank_a and bank_b, taken while money moved
    archive: str  # binlog snapshot, taken after the accident
    late_archive: str  # binlog snapshot taken after the source purged its first logs
    expected: tuple[str, int]  # fingerprint just before the accident
    expected_a: str  # digest of bank_a then
    base_gtid: str  # the base's GTID set, from its manifest
    mid_gtid: str  # a transaction between the base and the accident
    stop_datetime: str  # the second of the DROP
    stop_gtid: str  # the last transaction before the DROP
    stop_file_position: str  # file:position of the DROP's first event


@pytest.fixture(scope="module")
def mysql_scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MySQLScenario]:
    root = tmp_path_factory.mktemp("pitr-mysql")
    plakar = make_plakar(root)
    source = MySQLServer(root / "source", extra_args=MYSQL_PITR)
    try:
        uuid = str(source.query("SELECT @@server_uuid")[0][0])
        create_bank(source)
        transfers = Transfers(source, seed=23)
        with transfers:
            while transfers.done < 50:
                time.sleep(0.05)
            base = plakar.backup(uri(source), *mysql_opts(source, "databases=bank_a,bank_b"))
            source.execute("FLUSH BINARY LOGS")  # the replay crosses a log boundary
            time.sleep(0.3)
        transfers.run(100)
        mid_gtid = last_gtid(source)
        source.execute("FLUSH BINARY LOGS")
        transfers.run(100)
        expected = fingerprint(source)
        expected_a = digest(source, "bank_a")
        assert expected[1] == 2 * ACCOUNTS * START_BALANCE

        wait_next_second()
        stop_datetime = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        stop_gtid = last_gtid(source)
        file, position = source.query("SHOW BINARY LOG STATUS")[0][:2]
        source.execute("DROP TABLE bank_b.accounts")
        source.execute("DELETE FROM bank_a.accounts")
        archive = plakar.backup(binlog_uri(source), *mysql_opts(source))
        source.execute(f"PURGE BINARY LOGS TO '{file}'")  # the logs of the base's time
        late_archive = plakar.backup(binlog_uri(source), *mysql_opts(source))
        manifest = json.loads(plakar.cat(base, "/manifest.json"))
        yield MySQLScenario(
            plakar=plakar,
            source=source,
            uuid=uuid,
            base=base,
            archive=archive,
            late_archive=late_archive,
            expected=expected,
            expected_a=expected_a,
            base_gtid="".join(manifest["binlog"]["gtid"].split()),
            mid_gtid=mid_gtid,
            stop_datetime=stop_datetime,
            stop_gtid=stop_gtid,
            stop_file_position=f"{file}:{position}",
        )
    finally:
        source.cleanup()
        plakar.close()


def mysql_restore_base(s: MySQLScenario, target: MariaDBServer) -> None:
    """The base, restored with its point: the source's GTID set joins the target's."""
    proc = s.plakar.restore(s.base, uri(target), *mysql_opts(target, "restore_point=true"))
    assert "recorded the base's point" in proc.stdout + proc.stderr, proc.stderr
    base = GtidSet.parse(s.base_gtid)
    assert executed(target).intervals(s.uuid) == base.intervals(s.uuid)


def mysql_replay(s: MySQLScenario, target: MariaDBServer, *opts: str, check: bool = True) -> str:
    proc = s.plakar.restore(s.archive, binlog_uri(target), *mysql_opts(target, *opts), check=check)
    return proc.stdout + proc.stderr


def test_mysql_archive_records_gtid_sets_times_and_uuid(mysql_scenario: MySQLScenario) -> None:
    """MySQL's logs byte for byte; the manifest's GTID sets (uuid:interval), event
    times and server_uuid, each log's set starting where the one before ended."""
    s = mysql_scenario
    manifest = json.loads(s.plakar.cat(s.archive, "/manifest.json"))
    assert manifest["flavour"] == "mysql"
    assert manifest["server_uuid"] == s.uuid
    assert manifest["gtid_mode"] == "ON"
    files = manifest["files"]
    names = [entry.name for entry in s.plakar.ls(s.archive, "/binlog")]
    assert [f["name"] for f in files] == names and len(names) >= 4
    assert GtidSet.parse(manifest["gtid_end"]).seq(s.uuid) > int(s.stop_gtid.split(":")[1])
    for entry in files[:-1]:  # closed: as the server wrote them
        data = s.plakar.cat(s.archive, f"/binlog/{entry['name']}")
        assert len(data) == entry["size"]
        if (s.source.datadir / entry["name"]).exists():
            assert data == (s.source.datadir / entry["name"]).read_bytes()
    assert files[0]["gtid_start"] == ""  # the server's first log: nothing before it
    for before, after in itertools.pairwise(files):
        assert before["gtid_end"] == after["gtid_start"]
    busy = [f for f in files if f["transactions"]]
    assert busy and all(f["first_event_time"] <= f["last_event_time"] for f in busy)
    assert busy[0]["first_gtid"] == f"{s.uuid}:1"
    # The late archive starts after the purge: its first set is not empty.
    late = json.loads(s.plakar.cat(s.late_archive, "/manifest.json"))
    assert late["gtid_purged"] and late["files"][0]["gtid_start"] == late["gtid_purged"]


def test_mysql_bank_replay_to_the_moment_before_the_accident(
    mysql_scenario: MySQLScenario, tmp_path: Path
) -> None:
    """The bank on MySQL: base taken while money moved, replayed up to a GTID, then to
    the second of the DROP: every balance and the total exact; again: nothing twice.
    The archive whose logs of the base's time were purged is a gap, refused first."""
    s = mysql_scenario
    target = MySQLServer(tmp_path / "target", extra_args=MYSQL_PITR)
    try:
        mysql_restore_base(s, target)
        restored = fingerprint(target)
        assert restored[1] == 2 * ACCOUNTS * START_BALANCE and restored != s.expected
        # A gap: the late archive lacks the transactions between the base and its logs.
        proc = s.plakar.restore(
            s.late_archive, binlog_uri(target), *mysql_opts(target), check=False
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0 and "are missing" in out and "nothing was applied" in out, out
        assert f"transactions {s.uuid}:" in out, out
        assert fingerprint(target) == restored
        # Up to a GTID: whole transactions only.
        out = mysql_replay(s, target, f"stop_position={s.mid_gtid}")
        assert executed(target).seq(s.uuid) == int(s.mid_gtid.split(":")[1]), out
        halfway = fingerprint(target)
        assert halfway[1] == 2 * ACCOUNTS * START_BALANCE and halfway != s.expected
        # To the second of the DROP.
        out = mysql_replay(s, target, f"stop_datetime={s.stop_datetime}")
        assert "applied" in out, out
        assert fingerprint(target) == s.expected
        stop = int(s.stop_gtid.split(":")[1])
        assert executed(target).intervals(s.uuid) == ((1, stop),)
        assert f"@@gtid_executed is {executed(target)}, read from the target" in out, out
        # Again: nothing is applied twice.
        out = mysql_replay(s, target, f"stop_datetime={s.stop_datetime}")
        assert f"nothing to apply: the target is already at stop_datetime {s.stop_datetime}" in out
        assert fingerprint(target) == s.expected
        # The base restored again over it: the later transactions it holds are named
        # (a replay would take them as applied), and nothing is added twice.
        proc = s.plakar.restore(
            s.base, uri(target), *mysql_opts(target, "restore_point=true", "overwrite=true")
        )
        out = proc.stdout + proc.stderr
        later = f"{s.uuid}:{GtidSet.parse(s.base_gtid).seq(s.uuid) + 1}-{stop}"
        assert f"warning: the target already holds {later}, after the base's point" in out, out
        assert "RESET BINARY LOGS AND GTIDS" in out, out
        assert "the target already holds the base's point" in out, out
    finally:
        target.cleanup()


def test_mysql_replay_of_one_database_to_a_file_position(
    mysql_scenario: MySQLScenario, tmp_path: Path
) -> None:
    """A failing event on MySQL (a table the target lacks) is named with its file,
    position and GTID, nothing applied.  Then ``databases=bank_a`` with a
    ``file:position`` stop: bank_a comes to the moment before the accident, bank_b
    stays as restored; the transactions left out count as applied (their GTIDs are
    recorded), as on MariaDB, replayed by an account holding REPLICATION_APPLIER and
    SESSION_VARIABLES_ADMIN, not SUPER (refused before it holds the second).  A stop
    before the target's point is refused."""
    s = mysql_scenario
    target = MySQLServer(tmp_path / "target", extra_args=MYSQL_PITR)
    try:
        mysql_restore_base(s, target)
        untouched = digest(target, "bank_b")
        # A failing event: named with its file, position and GTID; nothing applied.
        target.execute("RENAME TABLE bank_b.accounts TO bank_b.hidden")
        point = executed(target)
        out = mysql_replay(s, target, f"stop_position={s.mid_gtid}", check=False)
        assert "the replay stopped at the event at binlog.0000" in out, out
        assert f"(transaction {s.uuid}:" in out and "bank_b.accounts" in out, out
        assert f"@@gtid_executed is {point}, read from the target" in out, out
        assert executed(target) == point
        target.execute("RENAME TABLE bank_b.hidden TO bank_b.accounts")
        # An account without SUPER: refused, naming what it lacks, until granted it.
        target.execute("CREATE USER replayer@'%' IDENTIFIED BY 'replay-pw-7'")
        target.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON *.* TO replayer@'%'")
        target.execute("GRANT REPLICATION_APPLIER ON *.* TO replayer@'%'")
        replayer = f"mysql+binlog://replayer@{target.host}:{target.port}"
        args = (
            "password=replay-pw-7", f"bin_dir={target.bin_dir}",
            "databases=bank_a", f"stop_position={s.stop_file_position}",
        )  # fmt: skip
        proc = s.plakar.restore(s.archive, replayer, *args, check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0 and "lacks what the replay needs" in out, out
        assert "SESSION_VARIABLES_ADMIN ON *.*" in out and "nothing was applied" in out, out
        target.execute("GRANT SESSION_VARIABLES_ADMIN ON *.* TO replayer@'%'")
        proc = s.plakar.restore(s.archive, replayer, *args)
        out = proc.stdout + proc.stderr
        assert "applied" in out, out
        assert digest(target, "bank_a") == s.expected_a
        assert digest(target, "bank_b") == untouched
        stop = int(s.stop_gtid.split(":")[1])
        assert executed(target).intervals(s.uuid) == ((1, stop),)
        # A GTID stop behind what the target holds: a replay only goes forward.
        out = mysql_replay(s, target, f"stop_position={s.mid_gtid}", check=False)
        assert "a replay only goes forward" in out, out
        assert digest(target, "bank_a") == s.expected_a
    finally:
        target.cleanup()
