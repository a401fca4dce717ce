"""Physical backups of Oracle MySQL 9.7 without XtraBackup: the server's clone plugin,
end to end with the packaged integration, the real plakar CLI and ``make mysql``'s tree.

One MySQL server serves the module (a start costs seconds).  A restore is proven
by starting MySQL's ``mysqld`` on the restored directory: money moved between
accounts while the backup ran, and the total is exact; the restored server's
``@@gtid_executed`` is the clone's point that the manifest records.  Refusals
(no ``BACKUP_ADMIN``, no right to install the plugin, not enough temporary disk,
a server that is not local) are one line and leave no snapshot and no file; an
interrupted backup leaves no clone on the server and nothing in TMPDIR.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest
from support.interrupt import interrupted_run, run_tmp
from support.mounts import tmpfs
from test_checks_before_work import MaskedServer
from test_consistency import ACCOUNTS, BALANCE, TOTAL, TOTALS, Transfers
from test_interrupt_physical import PLAKAR_PACKFILES, assert_clean, tree_bytes

from plakar_mysql.physical.clone import (
    TOOL_NAME,
    CloneError,
    check_room,
    clone_restored,
    needed_bytes,
)
from plakar_mysql.physical.manifest import BinlogPoint, ManifestSummary, read_manifest
from plakar_mysql_harness.datadir import DatadirServer
from plakar_mysql_harness.mariadb import MariaDBError
from plakar_mysql_harness.mysql import MySQLServer, mysql_bin_dir
from plakar_mysql_harness.plakar import Plakar, make_plakar


def _mysql_missing() -> str | None:
    try:
        mysql_bin_dir()
    except MariaDBError as exc:
        return str(exc)
    return None


pytestmark = pytest.mark.skipif(_mysql_missing() is not None, reason=str(_mysql_missing()))

FILLER_ROWS = 150_000  # about 40 MB: the clone, throttled, lasts a few seconds
TIMEOUT = 120.0


class MySQLDatadirServer(DatadirServer, MySQLServer):
    """MySQL's ``mysqld`` started on a restored data directory, as it is."""


@dataclass
class Source:
    server: MySQLServer
    plakar: Plakar
    root: Path
    tmp: Path  # the plugin's TMPDIR: the clone goes there


def bin_uri(server: MySQLServer, user: str = "root") -> str:
    return f"mysql+bin://{user}@{server.host}:{server.port}"


def backup_args(server: MySQLServer, user: str = "root", pw: str | None = None) -> list[str]:
    secret = server.root_password if pw is None else pw
    return [
        "backup",
        "-o",
        f"password={secret}",
        "-o",
        f"bin_dir={server.bin_dir}",
        bin_uri(server, user),
    ]


def seq(rows: int, expression: str) -> str:
    """``SELECT n, expression`` for n in 1..rows (MySQL has no sequence tables)."""
    return (
        f"SELECT /*+ SET_VAR(cte_max_recursion_depth = {rows + 1}) */ n, {expression} FROM "
        f"(WITH RECURSIVE s (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {rows}) "
        "SELECT n FROM s) AS numbers"
    )


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    """A MySQL server with the two account tables and a filler, and a store."""
    root = tmp_path_factory.mktemp("physical-mysql")
    ptar = os.environ.get("PLAKAR_MYSQL_PTAR")
    plakar = make_plakar(root, ptar=Path(ptar) if ptar else None)
    tmp = root / "plugin-tmp"
    tmp.mkdir()
    plakar.extra_env["TMPDIR"] = str(tmp)
    server = MySQLServer(root / "source")
    try:
        for name in ("a", "b"):
            server.execute(f"CREATE DATABASE {name}")
            server.execute(
                f"CREATE TABLE {name}.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL)"
            )
            server.execute(f"INSERT INTO {name}.accounts {seq(ACCOUNTS, str(BALANCE))}")
        server.execute("CREATE TABLE a.filler (id INT PRIMARY KEY, pad VARBINARY(255))")
        server.execute(f"INSERT INTO a.filler {seq(FILLER_ROWS, 'RANDOM_BYTES(200)')}")
        yield Source(server, plakar, root, tmp)
    finally:
        server.cleanup()
        plakar.close()


class CloneWatch:
    """The writers' commit count each time the server is seen running the clone."""

    def __init__(self, server: MySQLServer, transfers: Transfers) -> None:
        self.server = server
        self.transfers = transfers
        self.seen: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="clone-watch")

    def __enter__(self) -> CloneWatch:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        with self.server.connect() as conn, conn.cursor() as cursor:
            while not self._stop.is_set():
                cursor.execute(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'CLONE%'"
                )
                row = cursor.fetchone()
                if row is not None and row[0]:
                    self.seen.append(self.transfers.commits)
                time.sleep(0.02)


def plugin_installed(server: MySQLServer) -> bool:
    return bool(
        server.query("SELECT 1 FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'clone'")
    )


def clones_running(server: MySQLServer) -> list[tuple[object, ...]]:
    return server.query(
        "SELECT ID, INFO FROM information_schema.PROCESSLIST WHERE INFO LIKE 'CLONE%'"
    )


def failed_in_one_line(
    source: Source, proc: subprocess.CompletedProcess[str], needle: str, snapshots: list[str]
) -> str:
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert needle in output, output
    assert "Traceback" not in output and "(1227," not in output, output
    assert source.plakar.snapshots() == snapshots, output
    assert os.listdir(source.tmp) == [], output
    return output


# -- backup and restore ---------------------------------------------------------------


def test_a_clone_under_transfers_restores_the_exact_total_and_its_point(
    source: Source, tmp_path: Path
) -> None:
    server = source.server
    assert not plugin_installed(server), "the backup is to install it"
    with Transfers(server) as transfers, CloneWatch(server, transfers) as watch:
        transfers.wait_for(50)
        proc = source.plakar.at(*backup_args(server))
        transfers.wait_for(transfers.commits + 10)
    assert len(watch.seen) >= 2 and watch.seen[-1] > watch.seen[0], (
        f"no transfer committed while the server cloned: nothing was tested ({watch.seen})"
    )
    output = proc.stdout + proc.stderr
    assert "installed the MySQL clone plugin" in output, output
    assert f"into {source.tmp}/plakar-mysql-clone-" in output, output
    assert "of temporary disk" in output, output
    assert os.listdir(source.tmp) == [], "the clone was left behind"
    [snapshot] = source.plakar.snapshots()

    manifest = json.loads(source.plakar.cat(snapshot, "/manifest.json"))
    assert manifest["kind"] == "physical" and manifest["tool"]["name"] == "mysql-clone"
    assert manifest["server"]["flavour"] == "mysql" and manifest["server"]["version"].startswith(
        "9.7"
    )
    binlog = manifest["binlog"]
    uuid = str(server.query("SELECT @@server_uuid")[0][0])
    assert binlog["file"].startswith("binlog.") and binlog["position"] > 4
    assert binlog["gtid"].startswith(f"{uuid}:1-")
    files = manifest["files"]
    assert {"ibdata1", "mysql.ibd", "a/accounts.ibd", "b/accounts.ibd"} <= set(files)
    assert files["a/filler.ibd"] > 30 << 20
    assert not {"auto.cnf", "xtrabackup_checkpoints"} & set(files)
    assert not any(name.endswith(".pem") for name in files)
    assert manifest["total_bytes"] == sum(files.values())
    assert server.root_password not in json.dumps(manifest)
    assert {e.name for e in source.plakar.ls(snapshot)} == {"datadir", "manifest.json"}

    target = tmp_path / "restored"
    restored = source.plakar.restore(snapshot, f"mysql+bin://{target}")
    assert "no --prepare needed" in restored.stderr, restored.stderr
    assert f"GTID set {binlog['gtid']}" in restored.stderr, restored.stderr
    copy = MySQLDatadirServer(
        target, tmp_path / "restored-server", root_password=server.root_password
    )
    try:
        assert copy.query(TOTALS) == [(TOTAL, 2 * ACCOUNTS)]
        assert copy.query("SELECT COUNT(*) FROM a.filler") == [(FILLER_ROWS,)]
        # The point the replay starts after: the clone's, in the restored files.
        assert copy.query("SELECT @@gtid_executed") == [(binlog["gtid"],)]
        assert copy.query("SELECT @@server_uuid") != [(uuid,)]
    finally:
        copy.cleanup()


# -- refusals -------------------------------------------------------------------------


def test_an_account_without_backup_admin_or_the_plugin_right_is_refused_in_one_line(
    source: Source,
) -> None:
    server = source.server
    snapshots = source.plakar.snapshots()
    server.execute("CREATE USER IF NOT EXISTS 'weak'@'%' IDENTIFIED BY 'weak-pw'")
    proc = source.plakar.at(*backup_args(server, "weak", "weak-pw"), check=False)
    failed_in_one_line(
        source, proc, "lacks what a MySQL clone backup needs: BACKUP_ADMIN", snapshots
    )

    if plugin_installed(server):
        server.execute("UNINSTALL PLUGIN clone")
    server.execute("GRANT BACKUP_ADMIN ON *.* TO 'weak'@'%'")
    proc = source.plakar.at(*backup_args(server, "weak", "weak-pw"), check=False)
    failed_in_one_line(source, proc, "run INSTALL PLUGIN clone SONAME 'mysql_clone.so'", snapshots)
    assert not plugin_installed(server)


def test_too_little_temporary_disk_is_refused_before_the_clone(
    source: Source, tmp_path: Path
) -> None:
    snapshots = source.plakar.snapshots()
    with tmpfs(tmp_path / "small", "size=16m,mode=700") as small:
        source.plakar.extra_env["TMPDIR"] = str(small)
        try:
            proc = source.plakar.at(*backup_args(source.server), check=False)
        finally:
            source.plakar.extra_env["TMPDIR"] = str(source.tmp)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, output
        assert "the clone needs about" in output and f"of temporary disk in {small}/" in output
        assert "point TMPDIR to a larger file system" in output, output
        assert os.listdir(small) == [], output
    assert source.plakar.snapshots() == snapshots
    assert clones_running(source.server) == []


class MaskedMySQL(MaskedServer, MySQLServer):
    """A MySQL server in a mount namespace of its own whose paths name another's files."""


@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare(1) missing")
def test_a_server_that_is_not_local_is_refused_saying_the_clone_is_local(
    source: Source, tmp_path: Path
) -> None:
    snapshots = source.plakar.snapshots()
    masked = MaskedMySQL(tmp_path / "masked", source.server.base_dir, extra_args=[])
    try:
        proc = source.plakar.at(*backup_args(masked), check=False)
        output = failed_in_one_line(
            source,
            proc,
            "the MySQL clone plugin writes its copy on the server's own machine",
            snapshots,
        )
        assert "is not the server this connection reaches" in output, output
        assert clones_running(masked) == []
    finally:
        masked.cleanup()


# -- interrupted ----------------------------------------------------------------------


def clone_growing(tmp: Path, size: int) -> Callable[[], bool]:
    """The server is writing the clone in ``tmp`` and has written ``size`` bytes."""

    def check() -> bool:
        return any(
            tree_bytes(entry / "data") >= size
            for entry in tmp.glob("plakar-mysql-clone-*")
            if (entry / "data").is_dir()
        )

    return check


@pytest.mark.parametrize("how", ["int-group", "kill-plakar"])
def test_a_backup_interrupted_while_the_server_clones_leaves_nothing(
    source: Source, how: str
) -> None:
    server = source.server
    snapshots = source.plakar.snapshots()
    if not plugin_installed(server):
        server.execute("INSTALL PLUGIN clone SONAME 'mysql_clone.so'")
    server.execute("SET GLOBAL clone_max_data_bandwidth = 8")  # MiB/s: seconds to catch it
    try:
        run = run_tmp(source.plakar)
        result = interrupted_run(
            source.plakar,
            backup_args(server),
            how=how,
            when=clone_growing(run, 4 << 20),
            timeout=TIMEOUT,
        )
    finally:
        server.execute("SET GLOBAL clone_max_data_bandwidth = 0")
    assert result.returncode != 0, result.output
    # The guardian stopped the clone on the server, then removed its directory.
    assert "stop the MySQL clone on the server: done" in result.output, result.output
    own = (PLAKAR_PACKFILES,) if how == "kill-plakar" else ()
    assert_clean(result, source.plakar, "plakar-mysql-clone-", plakars_own=own)
    deadline = time.monotonic() + 30
    while clones_running(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert clones_running(server) == [], result.output
    assert source.plakar.snapshots() == snapshots


# -- the parts, without a server ------------------------------------------------------


def test_the_room_check_and_the_restore_line_take_nothing_on_trust(tmp_path: Path) -> None:
    """The disk check's verdict and message; the restore's line shows a manifest's point
    only when it looks like one; the manifest says which tool made the files."""
    free = check_room(str(tmp_path), 1 << 20)
    assert free >= needed_bytes(1 << 20) == (1 << 20) + (1 << 20) // 10 + (64 << 20)
    with pytest.raises(CloneError, match=r"the clone needs about \d+ MiB of temporary disk in "):
        check_room(str(tmp_path), free)

    said: list[str] = []
    clone_restored("/r", BinlogPoint("binlog.000002", 157, "u:1-5"), said.append)
    assert said[-1].startswith("the clone's point binlog.000002:157, GTID set u:1-5, is in")
    clone_restored("/r", BinlogPoint("binlog.000002", 157, "'; DROP TABLE x; --"), said.append)
    assert "DROP" not in said[-1] and "start_position=binlog.000002:157" in said[-1]

    manifest = {
        "kind": "physical",
        "files": {"ibdata1": 3},
        "tool": {"name": TOOL_NAME},
        "binlog": {"file": "binlog.000001", "position": 9, "gtid": "u:1-2"},
    }
    summary = read_manifest(json.dumps(manifest).encode(), lambda path: path)
    assert summary == ManifestSummary(
        {"ibdata1": 3}, TOOL_NAME, BinlogPoint("binlog.000001", 9, "u:1-2")
    )
    manifest["binlog"] = {"file": "binlog.000001", "position": "9"}
    assert read_manifest(json.dumps(manifest).encode(), lambda path: path).binlog is None
