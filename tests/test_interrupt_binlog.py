"""Interrupted binlog replays and backups, through the real plakar, on real servers.

A replay of a few thousand one-row transactions is interrupted in its middle
by each of the four ways a user or a scheduler stops plakar (SIGINT to plakar,
SIGINT to its process group, SIGTERM, SIGKILL), and once at its start.  Each
transaction records itself on the target as it commits, so whatever the
moment: no process and no temporary file is left, the target records exactly
the last transaction it applied (its rows are the archive's first rows, no
more, no fewer), and the same command run again finishes with the source's
exact rows.  A binlog backup interrupted while it reads the logs leaves no
snapshot and nothing behind, and the next backup is complete.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.interrupt import HOW, interrupted_run, running, settle

from plakar_mysql.core.gtid import GtidSet, Position
from plakar_mysql_harness.mariadb import MariaDBServer
from plakar_mysql_harness.mysql import MySQLServer
from plakar_mysql_harness.plakar import Plakar, make_plakar

TRANSACTIONS = 2000
PTAR = os.environ.get("PLAKAR_MYSQL_PTAR")  # as the plakar fixture: a package to test


def plakar_at(root: Path) -> Plakar:
    return make_plakar(root, ptar=Path(PTAR) if PTAR else None)


TABLE = "CREATE TABLE shop.ledger (id INT PRIMARY KEY, note TEXT) ENGINE=InnoDB"


@dataclass
class Archive:
    plakar: Plakar
    source: MariaDBServer
    target: MariaDBServer
    snapshot: str
    base: Position  # the point the target starts from: the table, empty
    end: Position  # the source's last transaction


def digest(server: MariaDBServer) -> str:
    rows = server.query("SELECT id, note FROM shop.ledger ORDER BY id")
    return hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    root = tmp_path_factory.mktemp("interrupt-binlog")
    plakar = plakar_at(root)
    source = MariaDBServer(root / "source", extra_args=("--log-bin=mysql-bin", "--server-id=1"))
    target = MariaDBServer(root / "target")
    try:
        source.execute("CREATE DATABASE shop")
        source.execute(TABLE)
        # One transaction per row (autocommit), each its own GTID, in id order; 4 KB a
        # row: 8 MB of logs, more than plakar hands its plugin ahead of the replay.
        source.execute(
            "CREATE PROCEDURE shop.fill(n INT) BEGIN DECLARE i INT DEFAULT 1; "
            "WHILE i <= n DO "
            "INSERT INTO shop.ledger VALUES (i, CONCAT('row ', i, REPEAT('.', 4000))); "
            "SET i = i + 1; END WHILE; END"
        )
        base = Position.parse(str(source.query("SELECT @@gtid_binlog_pos")[0][0]))
        source.execute("FLUSH BINARY LOGS")
        source.execute("CALL shop.fill(%s)", (TRANSACTIONS,))
        end = Position.parse(str(source.query("SELECT @@gtid_binlog_pos")[0][0]))
        snapshot = plakar.backup(
            f"mysql+binlog://root@{source.host}:{source.port}", f"password={source.root_password}"
        )
        yield Archive(plakar, source, target, snapshot, base, end)
    finally:
        target.cleanup()
        source.cleanup()
        plakar.close()


def fresh_base(a: Archive) -> None:
    """The target as a restore of the base leaves it: the empty table, the base's
    point recorded (``SET GLOBAL`` also empties ``mysql.gtid_slave_pos``)."""
    a.target.execute("DROP DATABASE IF EXISTS shop")
    a.target.execute("CREATE DATABASE shop")
    a.target.execute(TABLE)
    a.target.execute("SET GLOBAL gtid_slave_pos = %s", (str(a.base),))


def replay_args(a: Archive) -> list[str]:
    uri = f"mysql+binlog://root@{a.target.host}:{a.target.port}"
    return ["restore", "-to", uri, "-o", f"password={a.target.root_password}", a.snapshot]


def rows(a: Archive) -> int:
    return int(a.target.query("SELECT COUNT(*) FROM shop.ledger")[0][0])


def recorded(a: Archive) -> Position:
    """The target's point as the server loads it at its start: per domain, the row of
    mysql.gtid_slave_pos with the highest sub_id."""
    found = a.target.query(
        "SELECT CONCAT(domain_id, '-', server_id, '-', seq_no) FROM mysql.gtid_slave_pos p "
        "WHERE sub_id = (SELECT MAX(sub_id) FROM mysql.gtid_slave_pos q "
        "WHERE q.domain_id = p.domain_id)"
    )
    return Position.parse(",".join(str(row[0]) for row in found))


def started(a: Archive) -> bool:
    """The restore's plugin runs, and nothing is applied yet."""
    plugins = [argv for _, argv in running(a.plakar) if "exporter" in argv]
    return bool(plugins) and rows(a) == 0


def quiet(a: Archive, timeout: float = 30) -> None:
    """Wait until the target runs no session but ours: a statement the killed client
    sent before it died is finished (committed or rolled back) by the server."""
    deadline = time.monotonic() + timeout
    sql = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()"
    sql += " AND COMMAND NOT IN ('Daemon', 'Binlog Dump')"
    while int(a.target.query(sql)[0][0]):
        assert time.monotonic() < deadline, a.target.query("SHOW PROCESSLIST")
        time.sleep(0.1)


def middle(a: Archive) -> bool:
    return rows(a) >= TRANSACTIONS // 3


CASES = [(how, "middle") for how in HOW] + [("int-plakar", "start")]


@pytest.mark.parametrize(("how", "moment"), CASES)
def test_an_interrupted_replay_resumes_exactly(archive: Archive, how: str, moment: str) -> None:
    a = archive
    fresh_base(a)
    when = {"start": started, "middle": middle}[moment]
    result = interrupted_run(a.plakar, replay_args(a), how=how, when=lambda: when(a))
    settle(a.plakar)
    quiet(a)
    assert result.returncode != 0, result.output
    assert "Traceback" not in result.output, result.output
    assert result.tmp_entries() == [], result.tmp_entries()
    # The client may commit what it was sent before its input closes: read after it ends.
    point = recorded(a)
    variable = a.target.query("SELECT @@gtid_slave_pos")[0][0]
    applied = point.seq(0) - a.base.seq(0)
    # SIGKILL to plakar alone leaves its plugin running: it may finish what it holds.
    assert 0 <= applied <= TRANSACTIONS, (point, a.base)
    if moment == "middle":
        assert applied >= TRANSACTIONS // 3
    # Exactly the archive's first transactions: one row each, in order, none more.
    count, top = a.target.query("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM shop.ledger")[0]
    assert (int(count), int(top)) == (applied, applied), (count, top, point)
    # The same command again goes on from there and ends with the source's rows.
    proc = a.plakar.at(*replay_args(a), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    if variable != str(point):  # killed before its end: the variable lags the table
        assert f"mysql.gtid_slave_pos records {point}, ahead of @@gtid_slave_pos" in out, out
    if applied < TRANSACTIONS:
        assert f"applied {TRANSACTIONS - applied} transaction(s)" in out, out
    else:
        assert "nothing to apply: the target is already at the archive's end" in out, out
    assert digest(a.target) == digest(a.source)
    assert a.target.query("SELECT @@gtid_slave_pos")[0][0] == str(a.end)
    assert recorded(a) == a.end
    # The end put the variable and the table in agreement: one row per domain.
    assert a.target.query("SELECT COUNT(*) FROM mysql.gtid_slave_pos")[0][0] == 1


def test_an_interrupted_binlog_backup_leaves_nothing(tmp_path: Path) -> None:
    """SIGINT to the process group (a terminal's Ctrl-C) while the logs are read:
    no snapshot, no process, no temporary directory; the next backup holds every log."""
    plakar = plakar_at(tmp_path)
    source = MariaDBServer(tmp_path / "source", extra_args=("--log-bin=mysql-bin", "--server-id=1"))
    try:
        source.execute("CREATE DATABASE d")
        source.execute("CREATE TABLE d.b (id INT PRIMARY KEY, v LONGBLOB)")
        rng = random.Random(3)
        for i in range(24):  # 24 MiB of incompressible logs in 8 files: a moment to read
            source.execute("INSERT INTO d.b VALUES (%s, %s)", (i, rng.randbytes(1 << 20)))
            if i % 3 == 2:
                source.execute("FLUSH BINARY LOGS")
        before = plakar.snapshots()
        uri = f"mysql+binlog://root@{source.host}:{source.port}"
        args = ["backup", "-o", f"password={source.root_password}", uri]

        def reading() -> bool:
            return any("--read-from-remote-server" in argv for _, argv in running(plakar))

        result = interrupted_run(plakar, args, how="int-group", when=reading)
        settle(plakar)
        assert result.returncode != 0, result.output
        assert "Traceback" not in result.output, result.output
        assert result.tmp_entries() == [], result.tmp_entries()
        assert plakar.snapshots() == before
        snapshot = plakar.backup(uri, f"password={source.root_password}")
        names = [entry.name for entry in plakar.ls(snapshot, "/binlog")]
        assert names == [row[0] for row in source.query("SHOW BINARY LOGS")]
    finally:
        source.cleanup()
        plakar.close()


# -- Oracle MySQL 9.7 -----------------------------------------------------------------
#
# On MySQL the replay applies each transaction under its own GTID (SET GTID_NEXT): the
# target records it in @@gtid_executed as it commits, atomically with it, and skips a
# GTID it holds.  So after a kill the target holds exactly the archive's first
# transactions, and the same command applies the rest, none twice.

MYSQL_ARGS = (
    "--log-bin=binlog",
    "--server-id=1",
    "--gtid-mode=ON",
    "--enforce-gtid-consistency=ON",
)
MYSQL_TRANSACTIONS = 1500


@dataclass
class MySQLArchive:
    plakar: Plakar
    source: MySQLServer
    target: MySQLServer
    snapshot: str
    uuid: str  # the source's server_uuid
    base: GtidSet  # the source's set once the table was made, before the rows


def mysql_seq(server: MariaDBServer, uuid: str) -> int:
    return GtidSet.parse(str(server.query("SELECT @@GLOBAL.gtid_executed")[0][0])).seq(uuid)


@pytest.fixture(scope="module")
def mysql_archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MySQLArchive]:
    root = tmp_path_factory.mktemp("interrupt-binlog-mysql")
    plakar = plakar_at(root)
    source = MySQLServer(root / "source", extra_args=MYSQL_ARGS)
    target = MySQLServer(root / "target", extra_args=MYSQL_ARGS)
    try:
        source.execute("CREATE DATABASE shop")
        source.execute(TABLE)
        source.execute(
            "CREATE PROCEDURE shop.fill(n INT) BEGIN DECLARE i INT DEFAULT 1; "
            "WHILE i <= n DO "
            "INSERT INTO shop.ledger VALUES (i, CONCAT('row ', i, REPEAT('.', 4000))); "
            "SET i = i + 1; END WHILE; END"
        )
        uuid = str(source.query("SELECT @@server_uuid")[0][0])
        base = GtidSet.parse(str(source.query("SELECT @@GLOBAL.gtid_executed")[0][0]))
        source.execute("FLUSH BINARY LOGS")
        source.execute("CALL shop.fill(%s)", (MYSQL_TRANSACTIONS,))
        snapshot = plakar.backup(
            f"mysql+binlog://root@{source.host}:{source.port}",
            f"password={source.root_password}",
            f"bin_dir={source.bin_dir}",
        )
        yield MySQLArchive(plakar, source, target, snapshot, uuid, base)
    finally:
        target.cleanup()
        source.cleanup()
        plakar.close()


def mysql_fresh_base(a: MySQLArchive) -> None:
    """The target as a restore of the base leaves it: the empty table, and the
    source's set up to it in @@gtid_purged (after a reset of the target's GTIDs)."""
    a.target.execute("RESET BINARY LOGS AND GTIDS")
    a.target.execute("DROP DATABASE IF EXISTS shop")
    a.target.execute("CREATE DATABASE shop")
    a.target.execute(TABLE)
    a.target.execute("SET GLOBAL gtid_purged = %s", ("+" + str(a.base),))


@pytest.mark.parametrize("how", ["kill-plakar"])
def test_an_interrupted_replay_on_mysql_resumes_exactly(
    mysql_archive: MySQLArchive, how: str
) -> None:
    a = mysql_archive
    mysql_fresh_base(a)
    uri = f"mysql+binlog://root@{a.target.host}:{a.target.port}"
    args = [
        "restore", "-to", uri, "-o", f"password={a.target.root_password}",
        "-o", f"bin_dir={a.target.bin_dir}", a.snapshot,
    ]  # fmt: skip

    def middle() -> bool:
        count = int(a.target.query("SELECT COUNT(*) FROM shop.ledger")[0][0])
        return count >= MYSQL_TRANSACTIONS // 3

    result = interrupted_run(a.plakar, args, how=how, when=middle)
    settle(a.plakar)
    deadline = time.monotonic() + 30
    sql = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()"
    sql += " AND COMMAND NOT IN ('Daemon', 'Binlog Dump', 'Binlog Dump GTID')"
    sql += " AND USER <> 'event_scheduler'"
    while int(a.target.query(sql)[0][0]):
        assert time.monotonic() < deadline, a.target.query("SHOW PROCESSLIST")
        time.sleep(0.1)
    assert result.returncode != 0, result.output
    assert "Traceback" not in result.output, result.output
    assert result.tmp_entries() == [], result.tmp_entries()
    # Exactly the archive's first transactions, each recorded by its GTID.
    applied = mysql_seq(a.target, a.uuid) - a.base.seq(a.uuid)
    assert MYSQL_TRANSACTIONS // 3 <= applied <= MYSQL_TRANSACTIONS, applied
    count, top = a.target.query("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM shop.ledger")[0]
    assert (int(count), int(top)) == (applied, applied)
    proc = a.plakar.at(*args, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    if applied < MYSQL_TRANSACTIONS:
        assert f"applied {MYSQL_TRANSACTIONS - applied} transaction(s)" in out, out
    assert digest(a.target) == digest(a.source)
    assert mysql_seq(a.target, a.uuid) == mysql_seq(a.source, a.uuid)
