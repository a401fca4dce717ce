"""Dump arguments per flavour, tool detection, binary-log coordinates, credentials."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from support.scripts import executable

from plakar_mysql.core.credentials import option_file_text, option_pipe
from plakar_mysql.core.flavour import Flavour, Tool, ToolError, detect, find_tool, version_tuple
from plakar_mysql.core.option_models import LogicalBackupOptions
from plakar_mysql.core.options import ConfigError
from plakar_mysql.logical.dump import dump_arguments, large_writes, parse_binlog_position

MARIADB_DUMP = Tool(
    "/usr/bin/mariadb-dump",
    Flavour.MARIADB,
    "mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)",
)
MYSQLDUMP_8 = Tool(
    "/opt/mysql/bin/mysqldump",
    Flavour.MYSQL,
    "mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)",
)
MYSQLDUMP_57 = Tool(
    "/opt/mysql/bin/mysqldump",
    Flavour.MYSQL,
    "mysqldump  Ver 10.13 Distrib 5.7.44, for Linux (x86_64)",
)


def config(**options: str) -> LogicalBackupOptions:
    return LogicalBackupOptions.parse({"location": "mysql://h", **options}, "mysql")


def test_flavour_detection() -> None:
    assert detect("10.11.6-MariaDB-0+deb12u1", "Debian 12") is Flavour.MARIADB
    assert detect("5.5.5-10.6.12-MariaDB", "mariadb.org binary distribution") is Flavour.MARIADB
    assert detect("8.0.36", "MySQL Community Server - GPL") is Flavour.MYSQL
    assert version_tuple(MARIADB_DUMP.version_text) == (10, 11, 19)
    assert version_tuple(MYSQLDUMP_8.version_text) == (8, 0, 36)
    assert version_tuple(MYSQLDUMP_57.version_text) == (5, 7, 44)


def test_mariadb_arguments_one_database() -> None:
    args = dump_arguments(MARIADB_DUMP, config(), ["shop"], log_bin=True)
    assert args[-3:] == ["--databases", "--", "shop"]  # each database creates itself
    for flag in (
        "--single-transaction",
        "--routines",
        "--skip-events",  # read with SQL: the tool hangs on some
        "--dump-history",
        "--master-data=2",
        "--gtid",
        "--skip-dump-date",
    ):
        assert flag in args
    assert not any("password" in a for a in args)


def test_mariadb_arguments_several_and_switches() -> None:
    args = dump_arguments(
        MARIADB_DUMP,
        config(triggers="false", routines="false", hex_blob="true", single_transaction="false"),
        ["a", "-b"],
        log_bin=False,
    )
    assert args[-4:] == ["--databases", "--", "a", "-b"]
    assert "--skip-triggers" in args and "--skip-routines" in args and "--hex-blob" in args
    assert "--single-transaction" not in args and "--master-data=2" not in args


def test_mysql_arguments() -> None:
    args = dump_arguments(MYSQLDUMP_8, config(), ["shop"], log_bin=True)
    assert "--source-data=2" in args and "--column-statistics=0" in args
    assert "--set-gtid-purged=AUTO" in args and "--dump-history" not in args
    old = dump_arguments(MYSQLDUMP_57, config(set_gtid_purged="OFF"), ["shop"], log_bin=True)
    assert "--master-data=2" in old and "--set-gtid-purged=OFF" in old


@pytest.mark.parametrize(
    ("version", "option"),
    [
        ("5.7.44", "--master-data=2"),
        ("8.0.25", "--master-data=2"),  # --source-data came in 8.0.26
        ("8.0.26", "--source-data=2"),
        ("8.4.3", "--source-data=2"),  # 8.4 removed --master-data
        ("9.7.4", "--source-data=2"),
    ],
)
def test_mysql_source_data_by_version(version: str, option: str) -> None:
    """Each MySQL release gets the option it knows, never the other one."""
    text = f"mysqldump  Ver {version} for Linux on x86_64 (MySQL Community Server - GPL)"
    tool = Tool("/opt/mysql/bin/mysqldump", Flavour.MYSQL, text)
    args = dump_arguments(tool, config(), ["shop"], log_bin=True)
    other = "--master-data=2" if option == "--source-data=2" else "--source-data=2"
    assert option in args and other not in args


def test_binlog_position_mariadb_and_mysql() -> None:
    head = (
        b"-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;\n"
        b"-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000001', MASTER_LOG_POS=3376223;\n"
    )
    tail = b"-- SET GLOBAL gtid_slave_pos='0-1-57';\n-- Dump completed\n"
    position = parse_binlog_position(head, tail)
    assert position is not None
    assert (position.file, position.position, position.gtid) == ("binlog.000001", 3376223, "0-1-57")
    mysql = (
        b"SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5';\n"
        b"-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000002', SOURCE_LOG_POS=157;\n"
    )
    position = parse_binlog_position(mysql)
    assert position is not None and position.file == "binlog.000002" and position.position == 157
    assert position.gtid == "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5"
    assert parse_binlog_position(b"-- MariaDB dump\n") is None
    # MySQL before 8.0.26: CHANGE MASTER; 5.7 sets GTID_PURGED without the '+'.
    old = (
        b"SET @@GLOBAL.GTID_PURGED='3E11FA47-71CA-11E1-9E33-C80AA9429562:1-9';\n"
        b"-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000007', MASTER_LOG_POS=154;\n"
    )
    position = parse_binlog_position(old)
    assert position is not None and (position.file, position.position) == ("mysql-bin.000007", 154)
    assert position.gtid == "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-9"


def fake_tool(directory: Path, name: str, version: str) -> None:
    executable(directory / name, f"#!/bin/sh\necho '{version}'\n")


def test_the_dump_tool_writes_through_a_large_buffer_when_stdbuf_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = large_writes()
    assert prefix[1:] == ["-o", "1M"] and prefix[0].endswith("/stdbuf")
    # What stdbuf hands the tool: its stdout buffer size, through the C library.
    child = subprocess.run([*prefix, "env"], capture_output=True, check=True).stdout
    assert b"_STDBUF_O=1048576\n" in child
    # A stdbuf that cannot run its preload library: the tool runs as it is.
    broken = tmp_path / "broken"
    executable(
        broken / "stdbuf", "#!/bin/sh\necho 'stdbuf: failed to find libstdbuf.so' >&2\nexit 125\n"
    )
    monkeypatch.setenv("PATH", f"{broken}:{os.environ['PATH']}")
    assert large_writes() == []
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    assert large_writes() == []


def test_find_tool_names_the_binary_to_install(tmp_path: Path) -> None:
    fake_tool(tmp_path, "mysqldump", MARIADB_DUMP.version_text.replace("mariadb-dump", "mysqldump"))
    with pytest.raises(ToolError, match=r"MariaDB's build.*point bin_dir to MySQL's mysqldump"):
        find_tool(Flavour.MYSQL.dump_names, Flavour.MYSQL, str(tmp_path))
    assert find_tool(Flavour.MARIADB.dump_names, Flavour.MARIADB, str(tmp_path)).path.endswith(
        "mysqldump"
    )
    with pytest.raises(
        ToolError, match=r"mariadb or mysql not found in .*apt-get install mariadb-client"
    ):
        find_tool(Flavour.MARIADB.client_names, Flavour.MARIADB, str(tmp_path / "none"))
    fake_tool(tmp_path, "mysql", MYSQLDUMP_8.version_text.replace("mysqldump", "mysql"))
    assert (
        find_tool(Flavour.MYSQL.client_names, Flavour.MYSQL, str(tmp_path)).flavour is Flavour.MYSQL
    )


def test_option_file_quotes_and_never_leaks(tmp_path: Path) -> None:
    conn = LogicalBackupOptions.parse(
        {"location": "mysql://u@h:1234", "password": 'p#"\\ x'}
    ).connection
    text = option_file_text(conn, Flavour.MARIADB)
    assert 'password="p#\\"\\\\ x"' in text
    assert 'host="h"' in text and 'port="1234"' in text
    with option_pipe(conn, Flavour.MARIADB) as (fd, argument):
        assert argument == f"--defaults-file=/dev/fd/{fd}"
        assert stat.S_ISFIFO(os.fstat(fd).st_mode)
        assert os.read(fd, 65536).decode() == text
    with pytest.raises(OSError):
        os.fstat(fd)
    bad = LogicalBackupOptions.parse({"location": "mysql://u@h", "password": "a\nb"}).connection
    with pytest.raises(ConfigError, match="line break"):
        option_file_text(bad, Flavour.MARIADB)


def test_tls_settings_per_flavour(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    conn = LogicalBackupOptions.parse(
        {"location": "mysql://h", "ssl_mode": "verify_ca", "ssl_ca": str(ca)}
    ).connection
    assert "ssl-verify-server-cert" in option_file_text(conn, Flavour.MARIADB)
    assert "ssl-mode=VERIFY_CA" in option_file_text(conn, Flavour.MYSQL)
