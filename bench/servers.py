"""Private MariaDB or MySQL servers for the benchmarks, and the stock client tools run
against them.

The servers are the tests' throwaway servers (:class:`plakar_mysql_harness.mariadb.MariaDBServer`,
or with the ``mysql`` flavour :class:`plakar_mysql_harness.mysql.MySQLServer`, the
MySQL 9.7 of ``make mysql``; imported, not copied): a private ``mariadbd`` or
``mysqld`` on a free loopback port with a random root password.  On MySQL the
client tools are MySQL's own (``mysql``, ``mysqldump``, from the server's
``bin_dir``), and the integrations are pointed at them with their options
(:meth:`BenchServer.plugin_options`).  On top of it this module keeps an option file (0600,
in the server's directory) so that ``mariadb``, ``mariadb-dump``, ``mydumper``
and ``myloader`` get the password without it appearing on a command line, and
adds what a benchmark needs between runs: drop and create a database, wait for
InnoDB to write its dirty pages out, count rows, read the server's CPU time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from plakar_mysql_harness.mariadb import MariaDBServer, quote_identifier
from plakar_mysql_harness.mysql import MySQLServer

__all__ = [
    "FLAVOURS",
    "MYSQL_SOURCE_ARGS",
    "MYSQL_TARGET_ARGS",
    "SOURCE_ARGS",
    "TARGET_ARGS",
    "BenchServer",
    "find_program",
    "source_args",
    "target_args",
    "tool_version",
]

FLAVOURS = ("mariadb", "mysql")
"""The servers a benchmark can run on: MariaDB (Debian 12's) or MySQL (``make mysql``'s)."""

#: The source only has to be filled quickly: no flush at each commit.
SOURCE_ARGS: tuple[str, ...] = (
    "--innodb-buffer-pool-size=1G",
    "--innodb-log-file-size=512M",
    "--innodb-flush-log-at-trx-commit=2",
)
#: The restore target: a buffer pool and a redo log large enough for a few hundred MB
#: of rows (so that a run is not throttled by checkpoints it has not caused itself),
#: durability left at its default (flush at each commit, doublewrite).
TARGET_ARGS: tuple[str, ...] = (
    "--innodb-buffer-pool-size=1G",
    "--innodb-log-file-size=1G",
)

#: MySQL 9 has no ``innodb_log_file_size``: its redo log is sized as a whole.  The
#: binary log stays on with GTIDs, as the harness (and a DBA) runs MySQL; the source
#: does not sync it at each commit, the target does (MySQL's default).
MYSQL_SOURCE_ARGS: tuple[str, ...] = (
    "--innodb-buffer-pool-size=1G",
    "--innodb-redo-log-capacity=512M",
    "--innodb-flush-log-at-trx-commit=2",
    "--sync-binlog=0",
)
MYSQL_TARGET_ARGS: tuple[str, ...] = (
    "--innodb-buffer-pool-size=1G",
    "--innodb-redo-log-capacity=1G",
)


def source_args(flavour: str) -> tuple[str, ...]:
    """The source server's arguments for ``flavour``."""
    return MYSQL_SOURCE_ARGS if flavour == "mysql" else SOURCE_ARGS


def target_args(flavour: str) -> tuple[str, ...]:
    """The restore target's default arguments for ``flavour``."""
    return MYSQL_TARGET_ARGS if flavour == "mysql" else TARGET_ARGS


MAX_PACKET = "--max-allowed-packet=1073741824"
_EXTRA_DIRS = ("/usr/sbin", "/usr/local/sbin", "/usr/local/bin")


def find_program(*names: str) -> str | None:
    """The first of ``names`` on ``PATH`` or in the usual server directories, or None."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *_EXTRA_DIRS])
    for name in names:
        found = shutil.which(name, path=search)
        if found is not None:
            return found
    return None


def tool_version(program: str | None, *args: str) -> str:
    """First line of ``program --version`` (or ``args``), or why there is none."""
    if program is None:
        return "not installed"
    try:
        proc = subprocess.run(
            [program, *(args or ("--version",))],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def _quote_option(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (from ``/proc``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # Fields after the command name: state is [0], utime [11], stime [12].
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class SettleResult:
    seconds: float
    dirty_pages_left: int


class BenchServer:
    """A private server plus the option file the client tools read their credentials from."""

    def __init__(self, base_dir: Path, extra_args: Sequence[str], flavour: str = "mariadb") -> None:
        if flavour not in FLAVOURS:
            raise ValueError(f"unknown flavour {flavour!r} (choose from {', '.join(FLAVOURS)})")
        self.flavour = flavour
        kind = MySQLServer if flavour == "mysql" else MariaDBServer
        self.server = kind(base_dir, extra_args=extra_args, start_timeout=120.0)
        self.extra_args = tuple(extra_args)
        if self.server.bin_dir is not None:  # MySQL: its own tools, not MariaDB's on PATH
            self.client_program = str(Path(self.server.bin_dir) / "mysql")
            self.dump_program = str(Path(self.server.bin_dir) / "mysqldump")
        else:
            self.client_program = find_program("mariadb", "mysql") or "mariadb"
            self.dump_program = find_program("mariadb-dump", "mysqldump") or "mariadb-dump"
        self.option_file = self.server.base_dir / "bench-client.cnf"
        fd = os.open(self.option_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(
                "[client]\nuser=root\n"
                f"password={_quote_option(self.server.root_password)}\n"
                f"host={self.server.host}\nport={self.server.port}\nprotocol=TCP\n"
            )

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def version(self) -> str:
        return self.server.version

    @property
    def password(self) -> str:
        return self.server.root_password

    @property
    def dump_name(self) -> str:
        """The dump tool's name, for the reports: ``mariadb-dump`` or ``mysqldump``."""
        return "mysqldump" if self.flavour == "mysql" else "mariadb-dump"

    @property
    def client_name(self) -> str:
        """The stock client's name, for the reports: ``mariadb`` or ``mysql``."""
        return "mysql" if self.flavour == "mysql" else "mariadb"

    @property
    def daemon_name(self) -> str:
        """The server program's name, for the reports: ``mariadbd`` or ``mysqld``."""
        return "mysqld" if self.flavour == "mysql" else "mariadbd"

    def plugin_options(self) -> tuple[str, ...]:
        """This integration's options naming the flavour's client tools (none on MariaDB,
        whose tools are on ``PATH``)."""
        bin_dir = self.server.bin_dir
        return () if bin_dir is None else (f"bin_dir={bin_dir}",)

    def official_options(self) -> tuple[str, ...]:
        """The same for Plakar's official integration (its option is ``mysql_bin_dir``)."""
        bin_dir = self.server.bin_dir
        return () if bin_dir is None else (f"mysql_bin_dir={bin_dir}",)

    def forget_gtids(self) -> None:
        """On MySQL, empty ``gtid_executed`` and the binary logs, as on a fresh server.

        A MySQL dump sets ``@@GLOBAL.GTID_PURGED`` to the source's GTIDs, which fails
        once they are in the target's ``gtid_executed``: each restore round starts from
        an empty GTID history (untimed).  Nothing on MariaDB."""
        if self.flavour == "mysql":
            self.server.execute("RESET BINARY LOGS AND GTIDS")

    def binlog_bytes(self) -> int | None:
        """The size of the binary logs the server holds now, or None when it writes
        none: after :meth:`forget_gtids`, what a run wrote to them."""
        if self.variable("log_bin") not in ("ON", "1"):
            return None
        return sum(int(str(row[1])) for row in self.query("SHOW BINARY LOGS"))

    def uri(self, database: str = "") -> str:
        """The URI the integration is given, as in the tests (the password goes in ``-o``)."""
        return f"mysql://root@{self.host}:{self.port}/{database}"

    def client(self, database: str | None = None) -> list[str]:
        """``mariadb`` reading SQL on its standard input, over TCP as the integration does."""
        cmd = [
            self.client_program,
            f"--defaults-file={self.option_file}",
            "--batch",
            "--silent",
            MAX_PACKET,
            "--default-character-set=utf8mb4",
        ]
        if database is not None:
            cmd += ["--database", database]
        return cmd

    def dump_command(self, arguments: Sequence[str]) -> list[str]:
        """``mariadb-dump`` with our credentials and the given arguments."""
        return [self.dump_program, f"--defaults-file={self.option_file}", *arguments]

    def run_sql(self, sql: bytes, database: str | None = None, timeout: float = 600.0) -> None:
        """Run a script through the ``mariadb`` client; raise with its error on failure."""
        proc = subprocess.run(
            self.client(database), input=sql, capture_output=True, timeout=timeout, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"mariadb failed (exit status {proc.returncode}): "
                + proc.stderr.decode(errors="replace").strip()
            )

    def query(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        return self.server.query(sql, args or None)

    def recreate_database(self, name: str, charset: str, collation: str) -> None:
        db = quote_identifier(name)
        self.server.execute(f"DROP DATABASE IF EXISTS {db}")
        self.server.execute(f"CREATE DATABASE {db} CHARACTER SET {charset} COLLATE {collation}")

    def drop_database(self, name: str) -> None:
        self.server.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)}")

    def charset_of(self, database: str) -> tuple[str, str]:
        rows = self.query(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME"
            " FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
            database,
        )
        return str(rows[0][0]), str(rows[0][1])

    def row_counts(self, database: str, tables: Sequence[str]) -> dict[str, int]:
        """Exact ``COUNT(*)`` of each table (missing tables are left out)."""
        present = {
            str(row[0])
            for row in self.query(
                "SELECT TABLE_NAME FROM information_schema.TABLES"
                " WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE'",
                database,
            )
        }
        db = quote_identifier(database)
        return {
            table: int(
                str(self.query(f"SELECT COUNT(*) FROM {db}.{quote_identifier(table)}")[0][0])
            )
            for table in tables
            if table in present
        }

    def objects(self, database: str) -> list[str]:
        """Views and routines of ``database``, as ``VIEW name`` / ``FUNCTION name``."""
        views = self.query(
            "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s", database
        )
        routines = self.query(
            "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES"
            " WHERE ROUTINE_SCHEMA = %s",
            database,
        )
        return sorted([f"VIEW {v[0]}" for v in views] + [f"{r[0]} {r[1]}" for r in routines])

    def data_bytes(self, database: str) -> tuple[int, int]:
        """InnoDB's data and index sizes for ``database`` (estimates)."""
        self.server.execute(f"ANALYZE TABLE {self._tables_list(database)}")
        row = self.query(
            "SELECT COALESCE(SUM(DATA_LENGTH), 0), COALESCE(SUM(INDEX_LENGTH), 0)"
            " FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
            database,
        )[0]
        return int(str(row[0])), int(str(row[1]))

    def _tables_list(self, database: str) -> str:
        rows = self.query(
            "SELECT TABLE_NAME FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE'",
            database,
        )
        db = quote_identifier(database)
        return ", ".join(f"{db}.{quote_identifier(str(r[0]))}" for r in rows)

    def variable(self, name: str) -> str:
        """A global variable's value, or "" (``SHOW``: MySQL has no
        ``information_schema.GLOBAL_VARIABLES``)."""
        rows = self.query("SHOW GLOBAL VARIABLES LIKE %s", name)
        return str(rows[0][1]) if rows else ""

    def status(self, *names: str) -> int | None:
        """The first of the global status counters ``names`` the server has, or None."""
        for name in names:
            rows = self.query("SHOW GLOBAL STATUS LIKE %s", name)
            if rows:
                return int(str(rows[0][1]))
        return None

    def settle(self, timeout: float = 120.0) -> SettleResult:
        """Let InnoDB write out what the previous run left dirty, so a run does not pay
        for the one before it; then ``sync`` the file systems."""
        started = time.monotonic()
        saved = self.variable("innodb_max_dirty_pages_pct")
        saved_lwm = self.variable("innodb_max_dirty_pages_pct_lwm")
        dirty = 0
        try:
            self.server.execute("SET GLOBAL innodb_max_dirty_pages_pct_lwm = 0.001")
            self.server.execute("SET GLOBAL innodb_max_dirty_pages_pct = 0")
            while True:
                dirty = self.status("Innodb_buffer_pool_pages_dirty") or 0
                if dirty == 0 or time.monotonic() - started > timeout:
                    break
                time.sleep(0.25)
        finally:
            if saved:
                self.server.execute("SET GLOBAL innodb_max_dirty_pages_pct = %s", (float(saved),))
            if saved_lwm:
                self.server.execute(
                    "SET GLOBAL innodb_max_dirty_pages_pct_lwm = %s", (float(saved_lwm),)
                )
        os.sync()
        return SettleResult(time.monotonic() - started, dirty)

    def redo_lsn(self) -> int:
        """InnoDB's current log sequence number: its difference is the redo log written."""
        return self.status("Innodb_lsn_current", "Innodb_redo_log_current_lsn") or 0

    def written_bytes(self) -> int:
        """Bytes the server (``mariadbd``, ``mysqld``) caused to be written to storage
        so far (``/proc/PID/io``)."""
        pid = self.server.pid
        if pid is None:
            return 0
        try:
            for line in Path(f"/proc/{pid}/io").read_text().splitlines():
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def cpu_seconds(self) -> float:
        """CPU time the server used so far."""
        pid = self.server.pid
        return _cpu_seconds(pid) if pid is not None else 0.0

    def cleanup(self) -> None:
        self.server.cleanup()
