"""Consistency under load, through the real plakar CLI.

Writers move amounts between accounts held in two databases, ``a`` and ``b``,
one transaction per transfer, so the total over both never changes.  They run
throughout a whole-server backup and a two-database backup (``databases=a,b``)
of the same server.  Each snapshot, restored into a fresh server, must hold
exactly the original total and the same number of accounts: a dump that read
``a`` and ``b`` at two different moments would be off by whatever moved in
between.

To make that window wide, ``a`` also holds a large ``filler`` table, dumped
after ``a.accounts`` and before ``b.accounts``; the test checks that the
writers committed transfers while the dump was reading it, so the property was
really put to the test.
"""

from __future__ import annotations

import random
import threading
import time
from decimal import Decimal
from types import TracebackType

import pymysql
import pytest
from conftest import MariaDBFactory
from test_backup_restore import password, uri

from plakar_mysql_harness.mariadb import MariaDBServer
from plakar_mysql_harness.plakar import Plakar

ACCOUNTS = 1000  # in each database
BALANCE = 1000  # each account's opening balance
TOTAL = 2 * ACCOUNTS * BALANCE
FILLER_ROWS = 600_000  # about 60 MB of dump between a.accounts and b.accounts
WRITERS = 4
#: Transfers that must commit while the dump reads the filler.
MIN_COMMITS_DURING_DUMP = 100
_LOCK_WAIT_TIMEOUT, _DEADLOCK = 1205, 1213

TOTALS = (
    "SELECT (SELECT SUM(balance) FROM a.accounts) + (SELECT SUM(balance) FROM b.accounts),"
    " (SELECT COUNT(*) FROM a.accounts) + (SELECT COUNT(*) FROM b.accounts)"
)


class Transfers:
    """``WRITERS`` threads, each on its own connection, moving random amounts
    between a random account of ``a`` and one of ``b``, one transaction each."""

    def __init__(self, server: MariaDBServer) -> None:
        self.server = server
        self.commits = 0
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._write, args=(seed,), name=f"writer-{seed}")
            for seed in range(WRITERS)
        ]

    def __enter__(self) -> Transfers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _write(self, seed: int) -> None:
        rng = random.Random(seed)
        try:
            with self.server.connect(autocommit=False) as conn, conn.cursor() as cursor:
                while not self._stop.is_set():
                    amount = rng.randint(1, 100) * rng.choice((1, -1))
                    try:
                        cursor.execute(
                            "UPDATE a.accounts SET balance = balance - %s WHERE id = %s",
                            (amount, rng.randint(1, ACCOUNTS)),
                        )
                        cursor.execute(
                            "UPDATE b.accounts SET balance = balance + %s WHERE id = %s",
                            (amount, rng.randint(1, ACCOUNTS)),
                        )
                        conn.commit()
                    except pymysql.err.OperationalError as exc:
                        if exc.args[0] not in (_LOCK_WAIT_TIMEOUT, _DEADLOCK):
                            raise
                        conn.rollback()
                        continue
                    with self._lock:
                        self.commits += 1
        except BaseException as exc:
            self.errors.append(exc)

    def wait_for(self, commits: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.commits < commits and not self.errors:
            if time.monotonic() > deadline:
                pytest.fail(f"the writers committed {self.commits} transfers in {timeout:g} s")
            time.sleep(0.01)
        assert not self.errors, self.errors


class DumpWatch:
    """Samples the writers' commit count whenever the dump is seen reading the filler."""

    def __init__(self, server: MariaDBServer, transfers: Transfers) -> None:
        self.server = server
        self.transfers = transfers
        self.seen: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="dump-watch")

    def __enter__(self) -> DumpWatch:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        with self.server.connect() as conn, conn.cursor() as cursor:
            while not self._stop.is_set():
                cursor.execute(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE %s",
                    ("SELECT /*!40001 SQL_NO_CACHE */ % FROM `filler`",),
                )
                if cursor.fetchone()[0]:  # type: ignore[index]
                    self.seen.append(self.transfers.commits)
                time.sleep(0.02)

    @property
    def commits_during_dump(self) -> int:
        return self.seen[-1] - self.seen[0] if self.seen else 0


def make_bank(server: MariaDBServer) -> None:
    for name in ("a", "b"):
        server.execute(f"CREATE DATABASE {name}")
        server.execute(
            f"CREATE TABLE {name}.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL)"
            " ENGINE=InnoDB"
        )
        server.execute(
            f"INSERT INTO accounts SELECT seq, {BALANCE} FROM seq_1_to_{ACCOUNTS}", database=name
        )
    server.execute(
        "CREATE TABLE a.filler (id INT PRIMARY KEY, pad VARCHAR(255) NOT NULL) ENGINE=InnoDB"
    )
    server.execute(
        f"INSERT INTO filler SELECT seq, REPEAT(MD5(seq), 3) FROM seq_1_to_{FILLER_ROWS}",
        database="a",
    )


def totals(server: MariaDBServer) -> tuple[int, int]:
    total, accounts = server.query(TOTALS)[0]
    assert isinstance(total, Decimal) and total == int(total)
    return int(total), int(accounts)


def test_backups_under_load_restore_the_exact_total(
    plakar: Plakar, mariadb_factory: MariaDBFactory
) -> None:
    source = mariadb_factory(
        extra_args=[
            "--log-bin=binlog",
            "--server-id=1",
            # Many small commits; durability is not what is tested here.
            "--innodb-flush-log-at-trx-commit=2",
            "--sync-binlog=0",
        ]
    )
    make_bank(source)
    assert totals(source) == (TOTAL, 2 * ACCOUNTS)

    snapshots: dict[str, str] = {}
    during: dict[str, int] = {}
    with Transfers(source) as transfers:
        transfers.wait_for(100)  # busy before the backups start
        for scope, options in (("server", ()), ("a,b", ("databases=a,b",))):
            before = transfers.commits
            with DumpWatch(source, transfers) as watch:
                snapshots[scope] = plakar.backup(uri(source), password(source), *options)
            during[scope] = watch.commits_during_dump
            assert transfers.commits > before
            assert not transfers.errors, transfers.errors
    assert not transfers.errors, transfers.errors
    # The writers kept the invariant on the source itself.
    assert totals(source) == (TOTAL, 2 * ACCOUNTS)
    for scope, commits in during.items():
        assert commits >= MIN_COMMITS_DURING_DUMP, (
            f"{scope}: only {commits} transfers committed while the dump read a.filler"
        )

    for scope, snapshot in snapshots.items():
        target = mariadb_factory()
        plakar.restore(snapshot, uri(target), password(target))
        assert totals(target) == (TOTAL, 2 * ACCOUNTS), scope
        # The snapshot is of a moment after transfers began, not of the opening state.
        moved = target.query(f"SELECT COUNT(*) FROM a.accounts WHERE balance <> {BALANCE}")
        assert moved[0][0] > 0, scope
        assert target.query("SELECT COUNT(*) FROM a.filler")[0][0] == FILLER_ROWS, scope
