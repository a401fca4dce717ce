"""Interrupted physical runs (``mysql+bin://``): the real plakar, ``mariadb-backup`` and
MariaDB 10.11, stopped the ways a DBA or a scheduler stops them.

Plakar SIGKILLs its plugin when it gets SIGINT or SIGTERM; a terminal's Ctrl-C
also sends the plugin SIGINT itself; ``kill -9`` of plakar leaves the plugin to
notice alone.  A restore is interrupted while files arrive (each of the four
ways), during ``mariadb-backup --prepare``, and during the private server start
that sets the backup's point; a backup while the tool streams.  After each:

- nothing of the run is left running (:func:`support.interrupt.settle`), no
  ``mariadb-backup`` nor private ``mariadbd`` on the target, nothing in the
  run's private TMPDIR, no Python traceback in the output;
- the restore's target is absent again (or, when it existed empty, empty, the
  very same directory);
- the backup's source server holds no connection and no ``BACKUP STAGE`` lock
  of the tool, and no snapshot was added;
- the same command, run again, succeeds, and a server started on the
  directory it restores holds exactly the source's rows and the backup's point.

Finding 14 of issue 21: the target's file system turned read-only in the
middle of a restore gives one line naming the file, never a raw ``[Errno 30]``,
and says what it could not remove.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.interrupt import HOW, Interrupted, interrupted_run, run_tmp, settle
from support.mounts import tmpfs
from test_backup_restore import password
from test_physical import LOG_BIN, bin_uri, restore_uri

from plakar_mysql_harness.datadir import DatadirServer
from plakar_mysql_harness.mariadb import MariaDBServer
from plakar_mysql_harness.plakar import Plakar, make_plakar

pytestmark = pytest.mark.skipif(
    shutil.which("mariadb-backup") is None, reason="mariadb-backup missing: run `make deps`"
)

ROWS = 120_000  # about 30 MB of table: a copy long enough to be caught in the middle
TIMEOUT = 120.0
CHECKSUMS = "CHECKSUM TABLE bank.accounts, bank.filler EXTENDED"


@dataclass(frozen=True)
class Source:
    server: MariaDBServer
    plakar: Plakar
    snapshot: str
    checksums: list[tuple[object, ...]]
    gtid: str
    root: Path


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    """A server with a known data set, a store and one physical snapshot of it."""
    root = tmp_path_factory.mktemp("interrupt-physical")
    ptar = os.environ.get("PLAKAR_MYSQL_PTAR")  # as the plakar fixture: another package
    plakar = make_plakar(root, ptar=Path(ptar) if ptar else None)
    server = MariaDBServer(root / "source", extra_args=LOG_BIN)
    try:
        server.execute("CREATE DATABASE bank")
        server.execute("CREATE TABLE bank.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL)")
        server.execute(
            "INSERT INTO bank.accounts SELECT seq, seq * 7 FROM seq_1_to_1000", database="bank"
        )
        server.execute("CREATE TABLE bank.filler (id INT PRIMARY KEY, pad VARBINARY(255))")
        server.execute(
            f"INSERT INTO bank.filler SELECT seq, RANDOM_BYTES(200) FROM seq_1_to_{ROWS}",
            database="bank",
        )
        checksums = server.query(CHECKSUMS)
        gtid = str(server.query("SELECT @@gtid_binlog_pos")[0][0])
        snapshot = plakar.backup(bin_uri(server), password(server))
        yield Source(server, plakar, snapshot, checksums, gtid, root)
    finally:
        server.cleanup()
        plakar.close()


# -- what is left --------------------------------------------------------------------


def processes_naming(needle: str) -> list[str]:
    """Command lines of live processes that contain ``needle``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmdline and int(pid) != os.getpid():
            found.append(f"{pid}: {cmdline.strip()}")
    return found


def tree_bytes(directory: Path) -> int:
    total = 0
    for parent, _dirs, names in os.walk(directory):
        for name in names:
            try:
                total += os.lstat(os.path.join(parent, name)).st_size
            except OSError:
                continue
    return total


def at_least(directory: Path, size: int) -> Callable[[], bool]:
    return lambda: directory.is_dir() and tree_bytes(directory) >= size


def running(*needles: str) -> Callable[[], bool]:
    """A process whose command line holds every needle exists."""
    return lambda: any(all(n in p for n in needles) for p in processes_naming(needles[0]))


#: Plakar's own packfile directory (``plakar backup`` removes it in a Go ``defer``,
#: which a SIGKILL of plakar skips): plakar's, not the plugin's.
PLAKAR_PACKFILES = "plakar-backup-"


def assert_clean(
    result: Interrupted, plakar: Plakar, *needles: str, plakars_own: tuple[str, ...] = ()
) -> None:
    """Nothing of the run left: processes, temporary entries, tracebacks.  Entries
    that start with one of ``plakars_own`` are plakar's own: named, then removed."""
    settle(plakar)
    output = result.output
    assert "Traceback" not in output, output
    left = [name for name in result.tmp_entries() if not name.startswith(plakars_own)]
    assert left == [], output
    for name in result.tmp_entries():
        shutil.rmtree(result.tmp / name)
    for needle in needles:
        assert processes_naming(needle) == [], output


def restored_server(target: Path, source: Source, name: str) -> DatadirServer:
    return DatadirServer(
        target, source.root / f"run-{name}", root_password=source.server.root_password
    )


def assert_exact(target: Path, source: Source, name: str) -> None:
    """A server started on ``target`` holds the source's rows and the backup's point."""
    server = restored_server(target, source, name)
    try:
        assert server.query(CHECKSUMS) == source.checksums
        assert server.query("SELECT @@gtid_slave_pos") == [(source.gtid,)]
    finally:
        server.cleanup()


# -- restore ---------------------------------------------------------------------------


def interrupted_restore(source: Source, target: Path, how: str, when: Callable[[], bool]) -> None:
    """Restore into ``target``, interrupted ``how`` once ``when()``; then check that
    nothing is left and that the same command restores the exact data."""
    existed = target.exists()
    before = target.stat() if existed else None
    args = ["restore", "-to", restore_uri(target), source.snapshot]
    result = interrupted_run(source.plakar, args, how=how, when=when, timeout=TIMEOUT)
    assert result.returncode != 0, result.output
    assert_clean(result, source.plakar, str(target))
    if how != "kill-plakar":  # plakar SIGKILLed the plugin: its guardian cleaned up
        done = "empty" if existed else "remove"
        assert f"{done} {target} (an unfinished physical restore): done" in result.output
    if before is None:
        assert not target.exists(), (sorted(os.listdir(target)), result.output)
    else:
        now = target.stat()
        assert (now.st_dev, now.st_ino, now.st_mode) == (
            before.st_dev,
            before.st_ino,
            before.st_mode,
        )
        assert os.listdir(target) == [], result.output
    rerun = source.plakar.restore(source.snapshot, restore_uri(target))
    assert "Traceback" not in rerun.stdout + rerun.stderr
    assert_exact(target, source, f"{how}-{target.name}")


@pytest.mark.parametrize("how", HOW)
def test_a_restore_interrupted_while_files_arrive_leaves_nothing(
    source: Source, tmp_path: Path, how: str
) -> None:
    target = tmp_path / "restored"
    if how == "term-plakar":  # an empty directory given: it stays, empty
        target.mkdir(mode=0o700)
    interrupted_restore(source, target, how, at_least(target, 4 << 20))


def test_a_restore_interrupted_during_prepare_leaves_nothing(
    source: Source, tmp_path: Path
) -> None:
    target = tmp_path / "restored"
    when = running("mariadb-backup", "--prepare", f"--target-dir={target}")
    interrupted_restore(source, target, "kill-plakar", when)


@pytest.mark.parametrize("how", ["int-plakar", "kill-plakar"])
def test_a_restore_interrupted_while_the_point_is_set_leaves_nothing(
    source: Source, tmp_path: Path, how: str
) -> None:
    target = tmp_path / "restored"
    when = running(f"--datadir={target}", "--skip-grant-tables")
    interrupted_restore(source, target, how, when)


# -- backup ----------------------------------------------------------------------------


def tool_read(needle: str, size: int) -> Callable[[], bool]:
    """A ``mariadb-backup --backup`` whose command line holds ``needle`` has read
    ``size`` bytes (``/proc/PID/io``): it is in the middle of its copy."""

    def check() -> bool:
        for line in processes_naming("--backup"):
            pid, cmdline = line.split(": ", 1)
            if "mariadb-backup" not in cmdline or needle not in cmdline:
                continue
            try:
                io = Path(f"/proc/{pid}/io").read_text()
            except OSError:
                continue
            fields = dict(row.split(": ") for row in io.splitlines())
            if int(fields["rchar"]) >= size:
                return True
        return False

    return check


def assert_server_free(server: MariaDBServer) -> None:
    """No connection but ours, and no backup lock: a new backup stage can block commits."""
    deadline = time.monotonic() + 20
    while True:
        others = server.query(
            "SELECT ID, USER, COMMAND, INFO FROM information_schema.PROCESSLIST "
            "WHERE ID <> CONNECTION_ID() AND COMMAND NOT IN ('Daemon', 'Binlog Dump')"
        )
        if not others or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert others == [], others
    with server.connect() as conn, conn.cursor() as cursor:
        cursor.execute("SET SESSION lock_wait_timeout = 5")
        cursor.execute("BACKUP STAGE START")
        cursor.execute("BACKUP STAGE BLOCK_COMMIT")
        cursor.execute("BACKUP STAGE END")


@pytest.mark.parametrize("how", ["int-group", "kill-plakar"])
def test_a_backup_interrupted_while_the_tool_streams_leaves_nothing(
    source: Source, tmp_path: Path, how: str
) -> None:
    snapshots = source.plakar.snapshots()
    args = ["backup", "-o", password(source.server), bin_uri(source.server)]
    work_dir = f"--target-dir={run_tmp(source.plakar)}/plakar-mysql-bin-"  # this run's tool
    result = interrupted_run(
        source.plakar, args, how=how, when=tool_read(work_dir, 8 << 20), timeout=TIMEOUT
    )
    assert result.returncode != 0, result.output
    own = (PLAKAR_PACKFILES,) if how == "kill-plakar" else ()
    assert_clean(result, source.plakar, work_dir, plakars_own=own)
    assert_server_free(source.server)
    assert source.plakar.snapshots() == snapshots
    again = source.plakar.backup(bin_uri(source.server), password(source.server))
    target = tmp_path / "restored"
    source.plakar.restore(again, restore_uri(target))
    assert_exact(target, source, f"backup-{how}")


# -- a read-only file system (finding 14) ----------------------------------------------


def remount(directory: Path, options: str, deadline: float) -> None:
    """``mount -o remount,OPTIONS,bind``, retried while files are open for writing
    (EBUSY): between two files of the restore none is."""
    while True:
        done = subprocess.run(
            ["mount", "-o", f"remount,{options},bind", str(directory)],
            capture_output=True,
            check=False,
        )
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"cannot remount {directory} {options}: {done.stderr!r}")
        time.sleep(0.002)


@contextlib.contextmanager
def bind_mount(directory: Path) -> Iterator[Path]:
    """``directory`` bind-mounted on itself (so that it can be remounted read-only
    alone), unmounted when the block ends."""
    directory.mkdir()
    bound = subprocess.run(
        ["mount", "--bind", str(directory), str(directory)], capture_output=True, check=False
    )
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bound.stderr.decode().strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "--lazy", str(directory)], check=False)


def test_a_target_turned_read_only_mid_restore_is_one_line(source: Source, tmp_path: Path) -> None:
    with bind_mount(tmp_path / "mount") as mount:
        target = mount / "restored"
        outcome: list[subprocess.CompletedProcess[str]] = []
        thread = threading.Thread(
            target=lambda: outcome.append(
                source.plakar.restore(source.snapshot, restore_uri(target), check=False)
            )
        )
        thread.start()
        try:
            deadline = time.monotonic() + TIMEOUT
            while not at_least(target, 2 << 20)():
                assert thread.is_alive() and time.monotonic() < deadline, outcome
                time.sleep(0.005)
            remount(mount, "ro", time.monotonic() + 30)
        finally:
            thread.join(TIMEOUT)
            remount(mount, "rw", time.monotonic() + 30)
        (proc,) = outcome
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, output
        assert "Errno" not in output and "Traceback" not in output, output
        assert any(
            f"in {target}: read-only file system; what was restored is left in {target} "
            f"(cannot remove {target}/"
            in line
            and line.endswith(": read-only file system): remove it by hand before restoring again")
            for line in output.splitlines()
        ), output
        assert processes_naming(str(target)) == []
        # As the message says: remove it by hand, then the same command restores.
        shutil.rmtree(target)
        source.plakar.restore(source.snapshot, restore_uri(target))
        assert (target / "xtrabackup_checkpoints").is_file()


def test_a_full_temporary_directory_during_a_backup_is_one_line(
    source: Source, tmp_path: Path
) -> None:
    """The redo log copy is held aside in TMPDIR while the data files stream: a full
    TMPDIR is named in one line, no ``[Errno 28]``, no snapshot, nothing running."""
    with tmpfs(tmp_path / "small", "size=512k,mode=700") as small:
        server = source.server
        snapshots = source.plakar.snapshots()
        try:
            # Fresh redo for the copy to hold aside (MiBs, over the tmpfs's size).
            server.execute("CREATE TABLE bank.scratch (id INT PRIMARY KEY, pad VARBINARY(255))")
            server.execute(
                "INSERT INTO bank.scratch SELECT seq, RANDOM_BYTES(200) FROM seq_1_to_20000",
                database="bank",
            )
            source.plakar.extra_env["TMPDIR"] = str(small)
            proc = source.plakar.at(
                "backup",
                "-packfiles",
                "memory",
                "-o",
                password(server),
                bin_uri(server),
                check=False,
            )
            output = proc.stdout + proc.stderr
            assert proc.returncode != 0, output
            assert (
                f"cannot hold a file of the stream aside in {small}: no space left on device"
                in output
            )
            assert "Errno" not in output and "Traceback" not in output, output
            assert processes_naming(f"--target-dir={small}/") == []
            assert os.listdir(small) == []
        finally:
            source.plakar.extra_env.pop("TMPDIR", None)
            server.execute("DROP TABLE IF EXISTS bank.scratch")
    assert source.plakar.snapshots() == snapshots
