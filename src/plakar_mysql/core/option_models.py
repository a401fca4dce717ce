"""The option model of each kind and role: every option, its type, default and help, once.

Six frozen dataclasses, one per kind (logical, physical, binary logs) and role
(backup: the importer; restore: the exporter).  The servers' connection block
is :class:`~plakar_mysql.core.options.ServerOptions`, shared by all but the
physical restore (a local directory).  Each connector parses Plakar's map with
its model's ``parse`` and reads typed attributes; :mod:`plakar_mysql.core.kinds`
tells an option of another kind by these models; ``scripts/gen_options.py``
writes the package's JSON schemas and the man page from them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from plakar_mysql.core.locks import DEFAULT_LOCK_WAIT_TIMEOUT
from plakar_mysql.core.options import (
    SCHEMES,
    ConfigError,
    OptionModel,
    ServerOptions,
    ToolOptions,
    one_bin_dir,
    option,
    option_fields,
)

#: The most tables a logical restore loads at once.
MAX_JOBS = 64

_DATABASE = "One database (overrides the URI path)."


@dataclass(frozen=True, kw_only=True)
class LogicalBackupOptions(ServerOptions):
    """``mysql://`` backups: one dump of one database, several or all."""

    SCHEMES: ClassVar[tuple[str, ...]] = SCHEMES
    SCHEMA: ClassVar[str] = "logical_backup"
    NAME: ClassVar[str] = "logical backup"
    TOOLS: ClassVar[str] = "mariadb-dump/mariadb or mysqldump/mysql"
    EXCLUSIVE: ClassVar[tuple[tuple[str, str], ...]] = (("no_data", "no_create_info"),)

    database: str | None = option(None, _DATABASE)
    databases: tuple[str, ...] = option(
        (), "Several databases, comma-separated; one consistent dump of all of them."
    )
    single_transaction: bool = option(
        True, "Dump InnoDB tables inside one consistent transaction (--single-transaction)."
    )
    routines: bool = option(True, "Include stored procedures and functions.")
    events: bool = option(True, "Include events.")
    triggers: bool = option(True, "Include triggers.")
    users: bool = option(
        True,
        "Whole-server backups: write accounts, roles and grants to /server/users.sql (needs "
        "SELECT on mysql.user).",
    )
    no_data: bool = option(False, "Schema only: no rows. Excludes no_create_info.")
    no_create_info: bool = option(False, "Rows only: no CREATE statements. Excludes no_data.")
    no_tablespaces: bool = option(True, "Leave out CREATE TABLESPACE statements.")
    hex_blob: bool = option(False, "Dump binary columns in hexadecimal.")
    column_statistics: bool = option(
        False, "MySQL's mysqldump only: query column histograms (false: --column-statistics=0)."
    )
    set_gtid_purged: Literal["AUTO", "ON", "OFF"] = option(
        "AUTO", "MySQL's mysqldump only: --set-gtid-purged."
    )
    tables: str | None = option(
        None,
        "Only these tables: comma-separated db.table glob patterns (* ? [...]), matched "
        "case-sensitively against the exact names.",
    )
    exclude_tables: str | None = option(
        None, "Leave these tables out: comma-separated db.table glob patterns."
    )
    exclude_databases: str | None = option(
        None,
        "Leave these databases out of a whole-server or several-database backup: "
        "comma-separated glob patterns.",
    )

    @classmethod
    def location_help(cls) -> str:
        return (
            "mysql://[user[:password]@]host[:port][/database] (also mariadb:// and "
            "mysql+mariadb://)."
        )


@dataclass(frozen=True, kw_only=True)
class LogicalRestoreOptions(ServerOptions):
    """``mysql://`` restores: the snapshot's files loaded through the stock client."""

    SCHEMES: ClassVar[tuple[str, ...]] = SCHEMES
    SCHEMA: ClassVar[str] = "logical_restore"
    NAME: ClassVar[str] = "logical restore"
    TOOLS: ClassVar[str] = "mariadb-dump/mariadb or mysqldump/mysql"

    database: str | None = option(None, _DATABASE)
    create_db: bool = option(True, "Create the target database when it does not exist.")
    force: bool = option(False, "Keep loading after a failing statement (the client's --force).")
    overwrite: bool = option(
        False,
        "Allow restoring over tables, views, routines, events and accounts that already exist "
        "in the target (false: refuse).",
    )
    jobs: int | None = option(
        None,
        "How many tables load at the same time, each on its own connection (default: the "
        "number of CPUs).",
        minimum=1,
        maximum=MAX_JOBS,
    )
    lock_wait_timeout: int = option(
        DEFAULT_LOCK_WAIT_TIMEOUT,
        "Seconds any statement of the restore may wait for a lock held by another client "
        "(sets lock_wait_timeout and innodb_lock_wait_timeout in every session of the "
        "restore). A wait that runs out fails the restore, naming the session that holds "
        "the lock.",
        minimum=1,
        maximum=31536000,
    )
    users: bool = option(
        False,
        "Restore accounts, roles and grants from /server/users.sql. The account the restore "
        "connects as is never changed.",
    )
    verify: bool = option(
        False,
        "After loading, dump each restored table again and compare it with the snapshot's "
        "file, and its row count.",
    )
    restore_point: bool | None = option(
        None,
        "Record the snapshot's binary-log point in the target's @@gtid_slave_pos "
        "(server-wide: where a binlog replay, and a replica, resume). Default: true for a "
        "restore of a whole-server snapshot under its own names, false otherwise (one "
        "database, several, or part of a snapshot). The restore says what it did either way.",
    )
    definer: Literal["keep", "current"] = option(
        "keep",
        "keep: views, routines, triggers and events keep their DEFINER; current: they are "
        "defined by the restoring account.",
    )

    @classmethod
    def location_help(cls) -> str:
        return LogicalBackupOptions.location_help()


@dataclass(frozen=True, kw_only=True)
class PhysicalBackupOptions(ServerOptions):
    """``mysql+bin://`` backups: the data directory, copied hot by the server's backup tool."""

    SCHEMES: ClassVar[tuple[str, ...]] = ("mysql+bin",)
    SCHEMA: ClassVar[str] = "physical_backup"
    NAME: ClassVar[str] = "physical backup"
    TOOLS: ClassVar[str] = "mariadb-backup, or xtrabackup for MySQL"

    parallel: int = option(
        1,
        "Files the backup tool copies at once (--parallel); when not given, as many "
        "as Plakar reads at once (its -concurrency, at most 8).",
        minimum=1,
        maximum=64,
    )

    @classmethod
    def location_help(cls) -> str:
        return (
            "mysql+bin://[user@]host[:port]: a physical backup of the whole data directory, "
            "run on the server's machine (docs/physical.md)."
        )


@dataclass(frozen=True, kw_only=True)
class PhysicalRestoreOptions(ToolOptions):
    """``mysql+bin://`` restores: files into an empty local directory, then prepared.

    Only the location and the tool directory: a restore of files talks to no server.
    """

    SCHEMES: ClassVar[tuple[str, ...]] = ("mysql+bin",)
    SCHEMA: ClassVar[str] = "physical_restore"
    NAME: ClassVar[str] = "physical restore"
    TOOLS: ClassVar[str] = "mariadb-backup, and mariadbd, looked for first there"
    MISSING_LOCATION: ClassVar[str] = "missing location (mysql+bin:///path/to/dir)"

    @classmethod
    def location_help(cls) -> str:
        return (
            "mysql+bin:///path/to/empty/dir: the local directory the data directory is "
            "restored into (docs/physical.md)."
        )

    @classmethod
    def parse(cls, config: Mapping[str, str], scheme: str = "") -> PhysicalRestoreOptions:
        """As every model, but an option of another kind is named before anything else."""
        foreign = sorted(set(config) - set(option_fields(cls)))
        if foreign:
            raise cls.unknown(foreign)
        return super().parse(config, scheme)

    @classmethod
    def unknown(cls, names: list[str]) -> ConfigError:
        known = ", ".join(sorted(option_fields(cls)))
        return ConfigError(
            f"option {', '.join(names)} does not apply to mysql+bin:// restores (known: {known})"
        )

    @classmethod
    def _build(cls, typed: dict[str, Any], scheme: str) -> PhysicalRestoreOptions:
        bin_dir = one_bin_dir(typed)
        return cls(given=typed, **{**typed, "bin_dir": bin_dir})


_BINLOG_LOCATION = (
    "mysql+binlog://[user[:password]@]host[:port]: the server whose binary logs are "
    "archived (backup) or replayed into (restore)."
)


@dataclass(frozen=True, kw_only=True)
class BinlogBackupOptions(ServerOptions):
    """``mysql+binlog://`` backups: every binary log the server holds, byte for byte."""

    SCHEMES: ClassVar[tuple[str, ...]] = ("mysql+binlog",)
    SCHEMA: ClassVar[str] = "binlog_backup"
    NAME: ClassVar[str] = "binary-log archive"
    TOOLS: ClassVar[str] = "mariadb-binlog and mariadb, or mysqlbinlog and mysql"

    flush: bool = option(
        True,
        "FLUSH BINARY LOGS before listing them: every archived log is then closed, identical "
        "in the next snapshot, so each snapshot stores only the bytes written since the "
        "previous one. Needs the RELOAD privilege; without it the backup warns and archives "
        "the log being written as it stands.",
    )

    @classmethod
    def location_help(cls) -> str:
        return _BINLOG_LOCATION


@dataclass(frozen=True, kw_only=True)
class BinlogRestoreOptions(ServerOptions):
    """``mysql+binlog://`` restores: the archived events replayed up to a stop."""

    SCHEMES: ClassVar[tuple[str, ...]] = ("mysql+binlog",)
    SCHEMA: ClassVar[str] = "binlog_restore"
    NAME: ClassVar[str] = "binary-log replay"
    TOOLS: ClassVar[str] = BinlogBackupOptions.TOOLS

    stop_datetime: str | None = option(
        None,
        "Replay the events before this moment, 'YYYY-MM-DD HH:MM:SS' in the local time zone "
        "of the host running plakar (as mariadb-binlog reads it): the first event at or "
        "after it is not applied.",
    )
    stop_position: str | None = option(
        None,
        "Replay up to this point: a GTID position (domain-server-sequence[,...]: that "
        "transaction is the last applied) or file:position (the event that starts at that "
        "position is the first not applied).",
    )
    start_position: str | None = option(
        None,
        "Replay from this point instead of the target's restored point (@@gtid_slave_pos): "
        "a GTID position (the transactions after it are applied) or file:position (the event "
        "at that position is the first applied).",
    )
    databases: tuple[str, ...] = option(
        (),
        "Apply only the events of this database (mariadb-binlog --database: a statement by "
        "its default database, a row event by its table's database). Default: every database.",
    )
    database: str | None = option(None, "Same as databases.")
    lock_wait_timeout: int = option(
        DEFAULT_LOCK_WAIT_TIMEOUT,
        "Seconds a statement of the replay may wait for a lock held by another client (sets "
        "lock_wait_timeout and innodb_lock_wait_timeout in the replay's sessions). A wait that "
        "runs out stops the replay, naming the session that holds the lock; what was applied "
        "before is recorded.",
        minimum=1,
        maximum=31536000,
    )

    @classmethod
    def location_help(cls) -> str:
        return _BINLOG_LOCATION


@dataclass(frozen=True, kw_only=True)
class DrillOptions(ToolOptions):
    """``mysql+drill://`` restores: the snapshot restored into a throwaway server and checked.

    No server to connect to: the drill starts its own (docs/drill.md).
    """

    SCHEMES: ClassVar[tuple[str, ...]] = ("mysql+drill",)
    SCHEMA: ClassVar[str] = "drill_restore"
    NAME: ClassVar[str] = "restore drill"
    TOOLS: ClassVar[str] = (
        "mariadbd or mysqld, with mariadb-install-db, the client and the backup tool"
    )
    MISSING_LOCATION: ClassVar[str] = "missing location (mysql+drill://)"

    tmpdir: str | None = option(
        None,
        "Directory the throwaway server and its data go in (default: TMPDIR, else /tmp); the "
        "drill refuses to start when it lacks the space it estimates.",
        path="directory",
    )
    jobs: int | None = option(
        None,
        "How many tables load at the same time, as for a logical restore (default: the "
        "number of CPUs).",
        minimum=1,
        maximum=MAX_JOBS,
    )
    report: str | None = option(
        None, "Also write the drill's report as JSON to this file (for monitoring)."
    )
    start_timeout: int = option(
        300, "Seconds the throwaway server may take to start.", minimum=1, maximum=86400
    )

    @classmethod
    def location_help(cls) -> str:
        return (
            "mysql+drill://: restore the snapshot into a private throwaway server, check it "
            "against what the backup recorded, report, remove everything (docs/drill.md)."
        )

    @classmethod
    def _build(cls, typed: dict[str, Any], scheme: str) -> DrillOptions:
        if typed["location"].rstrip("/") != "mysql+drill:":
            raise ConfigError("location: a drill takes no host or path: mysql+drill://")
        for name in ("tmpdir", "bin_dir", "mysql_bin_dir", "mariadb_bin_dir"):
            if name in typed:
                _check_directory(name, typed[name])
        return cls(given=typed, **{**typed, "bin_dir": one_bin_dir(typed)})


def _check_directory(name: str, path: str) -> None:
    if not os.path.isdir(path):
        raise ConfigError(f"option {name}: {path} is not a directory")


#: Every model, in the man page's order.
MODELS: tuple[type[OptionModel], ...] = (
    LogicalBackupOptions,
    LogicalRestoreOptions,
    PhysicalBackupOptions,
    PhysicalRestoreOptions,
    BinlogBackupOptions,
    BinlogRestoreOptions,
    DrillOptions,
)
