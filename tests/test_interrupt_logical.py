"""Interrupted logical restores and backups, through the real plakar CLI.

Plakar answers SIGINT and SIGTERM by SIGKILLing the plugin, so what an
interrupted restore leaves is cleaned up by the SDK's guardian, which runs the
undo action the restore keeps registered (:mod:`plakar_mysql.logical.rollback`).  Each
case interrupts a real ``plakar`` at a moment polled on the server, then checks:
the target is exactly as it was (every database of the server described and
compared, so a shadow or ``plakar_old_*`` database left over shows too), no
process of the run is left, nothing is left in its private ``TMPDIR``, no
Python traceback was printed, and the same command run again gives the exact
result.

- a restore into a new database, interrupted while a client loads rows into
  the shadow, with each of the four ways (SIGINT to plakar, SIGINT to the
  process group as a terminal's Ctrl-C, SIGTERM, SIGKILL); and one by an
  account that may not create shadows, which loads straight into the target;
- an overwrite restore interrupted the same way (two signals), and one killed
  during its swap: the ``RENAME TABLE`` is held on a metadata lock taken by the
  test on a shadow table, after the target's triggers were dropped for it;
- a logical backup interrupted while the dump reads the large table;
- finding 6: a one-database restore leaves ``@@gtid_slave_pos`` as it was and
  says so; with ``restore_point=true`` it records the base's point and says so.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pymysql
import pytest
from support.compare import DatabaseDescription, describe_database, describe_server, diff
from support.interrupt import HOW, interrupted_run, settle
from test_backup_restore import password, uri

from plakar_mysql_harness.mariadb import MariaDBServer
from plakar_mysql_harness.plakar import Plakar, make_plakar

#: Rows of ``big.bulk``: a few seconds of loading, so a poll finds it mid-way.
ROWS = 300_000
#: Seconds a run may take before the harness gives up on it.
TIMEOUT = 120
#: The swap's RENAME TABLE in the server's process list.
RENAMING = "SELECT 1 FROM information_schema.PROCESSLIST WHERE INFO LIKE 'RENAME TABLE%'"
#: The base's point, and what the target's restored point is before each restore.
TARGET_POINT = "0-9-5"

BIG = (
    "CREATE DATABASE big CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    "CREATE TABLE big.bulk (id INT PRIMARY KEY, v INT NOT NULL, KEY (v))",
    f"INSERT INTO big.bulk SELECT seq, (seq * 7919) % 100003 FROM seq_1_to_{ROWS}",
    # No trigger on `plain`: the swap test holds a lock on its shadow copy.
    "CREATE TABLE big.plain (id INT PRIMARY KEY, label VARCHAR(20) NOT NULL)",
    "INSERT INTO big.plain SELECT seq, CONCAT('p', seq) FROM seq_1_to_50",
    "CREATE TABLE big.audited (id INT PRIMARY KEY AUTO_INCREMENT, what VARCHAR(40) NOT NULL)",
    "CREATE TABLE big.noted (id INT PRIMARY KEY, note VARCHAR(40) NOT NULL DEFAULT '')",
    "INSERT INTO big.noted SELECT seq, '' FROM seq_1_to_20",
    # Typed without a database name, so they read the same under another name.
    "CREATE TRIGGER noted_audit AFTER UPDATE ON noted FOR EACH ROW"
    " INSERT INTO audited (what) VALUES (CONCAT('noted ', NEW.id))",
    "CREATE VIEW plain_labels AS SELECT label FROM plain",
    "CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN 2 * x",
)


@dataclass
class Setup:
    plakar: Plakar
    source: MariaDBServer
    target: MariaDBServer
    snapshot: str
    base_point: str
    expected: DatabaseDescription  # ``big`` as backed up


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """A source with a binary log and ``big``, one snapshot of it, and a target."""
    root = tmp_path_factory.mktemp("interrupt-logical")
    source = MariaDBServer(root / "source", extra_args=("--log-bin=binlog", "--server-id=1"))
    target = MariaDBServer(root / "target")
    try:
        source.execute(BIG[0])
        for statement in BIG[1:]:
            source.execute(statement, database="big")
        plakar = make_plakar(root / "plakar")
        snapshot = plakar.backup(uri(source, "big"), password(source))
        (point,) = source.query("SELECT @@gtid_binlog_pos")[0]
        yield Setup(plakar, source, target, snapshot, str(point), describe_database(source, "big"))
    finally:
        target.cleanup()
        source.cleanup()


def restore_args(s: Setup, database: str, *options: str) -> list[str]:
    args = ["restore", "-to", uri(s.target, database), "-o", password(s.target)]
    for option in options:
        args += ["-o", option]
    return [*args, s.snapshot]


def loading_rows_into_a_shadow(server: MariaDBServer) -> Callable[[], bool]:
    """True once a client inserts rows into a shadow database (the load is under way)."""

    def when() -> bool:
        return bool(
            server.query(
                "SELECT 1 FROM information_schema.PROCESSLIST WHERE DB LIKE 'plakar\\_restore\\_%'"
                " AND INFO LIKE 'INSERT INTO%'"
            )
        )

    return when


def assert_clean(s: Setup, result: object, before: object, how: str) -> None:
    """After an interrupted run: no process, no temporary entry, no traceback, and
    the target's databases exactly as ``before``."""
    output = getattr(result, "output", "")
    settle(s.plakar)
    assert "Traceback" not in output, output
    # The guardian undid what the restore had made (plakar SIGKILLs the plugin on
    # SIGINT and SIGTERM); a plugin that outlives plakar (SIGKILL) does it itself.
    by_itself = how.startswith("kill-plakar") and "dropped the shadow database" in output
    assert by_itself or "undid the interrupted MySQL restore" in output, output
    assert "FAILED" not in output, output
    assert result.tmp_entries() == [], (how, result.tmp_entries(), output)  # type: ignore[attr-defined]
    now = describe_server(s.target)
    assert sorted(now) == sorted(before), (how, sorted(now), output)  # type: ignore[call-overload]
    for name, description in now.items():
        assert diff(before[name], description) == [], (how, name, output)  # type: ignore[index]


def restored_exactly(s: Setup, database: str) -> None:
    restored = describe_database(s.target, database, rename={database: "big"})
    assert diff(s.expected, restored) == []


@contextlib.contextmanager
def dropped_afterwards(s: Setup, *databases: str) -> Iterator[None]:
    try:
        yield
    finally:
        for database in databases:
            s.target.execute(f"DROP DATABASE IF EXISTS `{database}`")


@pytest.mark.parametrize("how", HOW)
def test_a_restore_into_a_new_database_interrupted_while_loading_leaves_nothing(
    setup: Setup, how: str
) -> None:
    s = setup
    database = f"new_{how.replace('-', '_')}"
    with dropped_afterwards(s, database):
        before = describe_server(s.target)
        args = restore_args(s, database, "jobs=2")
        result = interrupted_run(
            s.plakar, args, how=how, when=loading_rows_into_a_shadow(s.target), timeout=TIMEOUT
        )
        assert result.returncode != 0, result.output
        assert_clean(s, result, before, how)
        s.plakar.at(*args, timeout=TIMEOUT)  # the same command again
        restored_exactly(s, database)


def test_a_restore_straight_into_the_target_interrupted_while_loading_leaves_nothing(
    setup: Setup,
) -> None:
    """An account that may not create ``plakar_restore_%`` databases loads straight
    into the target (and is told so); interrupted, what it loaded is dropped."""
    s = setup
    database = "direct"
    s.target.execute("CREATE USER 'narrow'@'%' IDENTIFIED BY 'pw-narrow'")
    s.target.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO 'narrow'@'%'")
    s.target.execute("GRANT SET USER ON *.* TO 'narrow'@'%'")  # the objects' definer is root
    try:
        with dropped_afterwards(s, database):
            before = describe_server(s.target)
            location = f"mysql://narrow@{s.target.host}:{s.target.port}/{database}"
            args = ["restore", "-to", location, "-o", "password=pw-narrow", "-o", "jobs=2"]
            args.append(s.snapshot)

            def loading() -> bool:
                return bool(
                    s.target.query(
                        "SELECT 1 FROM information_schema.PROCESSLIST WHERE DB = %s"
                        " AND INFO LIKE 'INSERT INTO%%'",
                        [database],
                    )
                )

            result = interrupted_run(
                s.plakar, args, how="int-plakar", when=loading, timeout=TIMEOUT
            )
            assert "loading straight into the target" in result.output, result.output
            assert result.returncode != 0, result.output
            assert_clean(s, result, before, "int-plakar, straight into the target")
            s.plakar.at(*args, timeout=TIMEOUT)
            restored_exactly(s, database)
    finally:
        s.target.execute("DROP USER IF EXISTS 'narrow'@'%'")


def drifted_copy(s: Setup, database: str) -> None:
    """``database`` restored from the snapshot, then changed: fewer rows, other values,
    an extra trigger of the target's own (kept or dropped with its table)."""
    s.plakar.restore(s.snapshot, uri(s.target, database), password(s.target))
    s.target.execute(f"DELETE FROM `{database}`.bulk WHERE id % 3 = 0")
    s.target.execute(f"UPDATE `{database}`.plain SET label = 'changed' WHERE id < 10")
    s.target.execute(
        f"CREATE TRIGGER `{database}`.plain_guard BEFORE UPDATE ON `{database}`.plain"
        " FOR EACH ROW SET NEW.label = UPPER(NEW.label)"
    )


class SwapHeld:
    """A ``when`` for the swap: takes a metadata lock on the shadow copy of
    ``plain`` as soon as it exists (a read in an open transaction: loads go on,
    the ``RENAME TABLE`` of the swap waits), and is true once the swap's
    ``RENAME TABLE`` waits on it - after the target's triggers were dropped for
    it.  Then a thread lets go of the lock once that session is gone (the
    guardian kills it), so that the guardian can drop the shadow."""

    def __init__(self, server: MariaDBServer) -> None:
        self.server = server
        self.holder: pymysql.connections.Connection[pymysql.cursors.Cursor] | None = None
        self.releaser: threading.Thread | None = None

    def __call__(self) -> bool:
        if self.holder is None:
            found = self.server.query(
                "SELECT TABLE_SCHEMA FROM information_schema.TABLES"
                " WHERE TABLE_SCHEMA LIKE 'plakar\\_restore\\_%' AND TABLE_NAME = 'plain'"
            )
            if found:
                self.holder = self.server.connect()
                with self.holder.cursor() as cursor:
                    cursor.execute("BEGIN")
                    cursor.execute(f"SELECT COUNT(*) FROM `{found[0][0]}`.plain")
            return False
        if not self.server.query(RENAMING):
            return False
        self.releaser = threading.Thread(target=self.release, daemon=True)
        self.releaser.start()
        return True

    def release(self) -> None:
        assert self.holder is not None
        with contextlib.closing(self.holder):
            with contextlib.suppress(AssertionError):
                wait_until(lambda: not self.server.query(RENAMING), 60)
            self.holder.commit()

    def close(self) -> None:
        if self.releaser is not None:
            self.releaser.join(90)
        elif self.holder is not None:
            self.holder.close()


def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_an_overwrite_restore_interrupted_while_loading_or_during_its_swap_changes_nothing(
    setup: Setup,
) -> None:
    """Interrupted while loading (SIGINT, SIGKILL to plakar), and killed during the
    swap, between dropping the target's triggers and the ``RENAME TABLE``: the
    guardian ends the swap's session before it renames anything, creates the
    triggers again and drops the shadow.  Each time the target is as it was; the
    same command then finishes the restore."""
    s = setup
    database = "over"
    with dropped_afterwards(s, database):
        drifted_copy(s, database)
        before = describe_server(s.target)
        args = restore_args(s, database, "overwrite=true", "jobs=2")
        for how in ("int-plakar", "kill-plakar"):
            result = interrupted_run(
                s.plakar, args, how=how, when=loading_rows_into_a_shadow(s.target), timeout=TIMEOUT
            )
            assert result.returncode != 0, result.output
            assert_clean(s, result, before, f"{how} while loading")
        held = SwapHeld(s.target)
        try:
            result = interrupted_run(s.plakar, args, how="int-plakar", when=held, timeout=TIMEOUT)
        finally:
            held.close()
        assert result.returncode != 0, result.output
        assert "trigger(s) of the target put back" in result.output, result.output
        assert_clean(s, result, before, "int-plakar during the swap")
        s.plakar.at(*args, timeout=TIMEOUT)  # the same command again
        restored_exactly(s, database)


def test_a_backup_interrupted_while_dumping_leaves_no_snapshot(setup: Setup) -> None:
    s = setup
    snapshots = s.plakar.snapshots()
    args = ["backup", "-o", password(s.source), uri(s.source, "big")]

    def dumping() -> bool:
        return bool(
            s.source.query(
                "SELECT 1 FROM information_schema.PROCESSLIST"
                " WHERE INFO LIKE 'SELECT /*!40001 SQL_NO_CACHE */ % FROM `bulk`'"
            )
        )

    result = interrupted_run(s.plakar, args, how="int-plakar", when=dumping, timeout=TIMEOUT)
    assert result.returncode != 0, result.output
    settle(s.plakar)
    assert "Traceback" not in result.output, result.output
    assert result.tmp_entries() == [], result.tmp_entries()
    assert s.plakar.snapshots() == snapshots
    snapshot = s.plakar.backup(uri(s.source, "big"), password(s.source))  # the same command again
    # Complete and exact: every file of the database, byte for byte, as the first
    # backup's (an unchanged object gives the same file).
    files = s.plakar.files(snapshot, "/databases")
    assert files and files == s.plakar.files(s.snapshot, "/databases")


def test_a_one_database_restore_moves_the_restored_point_only_when_asked(setup: Setup) -> None:
    """Finding 6: ``@@gtid_slave_pos`` is server-wide.  A one-database snapshot
    restored under its own name keeps it and says so; with ``restore_point=true``
    the base's point is recorded and said; a part of a snapshot carries no point
    (its manifest is not restored), which ``restore_point=true`` says too."""
    s = setup
    s.target.execute(f"SET GLOBAL gtid_slave_pos = '{TARGET_POINT}'")
    try:
        with dropped_afterwards(s, "big"):
            proc = s.plakar.restore(s.snapshot, uri(s.target), password(s.target))
            assert s.target.query("SELECT @@GLOBAL.gtid_slave_pos") == [(TARGET_POINT,)]
            assert (
                f"left @@gtid_slave_pos as it was ({TARGET_POINT}): this restore is not of a "
                f"whole server (restore_point=true records it); the base's point is "
                f"{s.base_point}: to replay binary logs onto this restore, give "
                f"start_position={s.base_point}"
            ) in proc.stderr, proc.stderr
        with dropped_afterwards(s, "part"):
            proc = s.plakar.restore(
                f"{s.snapshot}:/databases/big/tables/plain.sql", uri(s.target, "part"),
                password(s.target), "restore_point=true",
            )  # fmt: skip
            assert s.target.query("SELECT @@GLOBAL.gtid_slave_pos") == [(TARGET_POINT,)]
            assert "restore_point=true, but what was restored holds no binary-log point" in (
                proc.stderr
            ), proc.stderr
        with dropped_afterwards(s, "big"):
            proc = s.plakar.restore(
                s.snapshot, uri(s.target), password(s.target), "restore_point=true"
            )
            assert s.target.query("SELECT @@GLOBAL.gtid_slave_pos") == [(s.base_point,)]
            assert (
                f"recorded the base's point {s.base_point} in @@gtid_slave_pos (where a binlog "
                f"replay starts; server-wide: it was {TARGET_POINT}, it is now {s.base_point})"
            ) in proc.stderr, proc.stderr
    finally:
        s.target.execute("SET GLOBAL gtid_slave_pos = ''")
