"""Checks before work (issue 21): grants as ``SHOW GRANTS`` lists them, the proof that a
server runs here in its data directory, the kind of a snapshot, the restore's preflight.

Against fixtures where no server is needed: ``SHOW GRANTS`` lines as MariaDB 10.11
prints them, and real sockets of this very process for the locality proof (the
kernel's own ``/proc`` tables, no mock).
"""

from __future__ import annotations

import os
import re
import socket
import stat
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pymysql
import pytest

from plakar_mysql.core.grants import Grants, parse_grant
from plakar_mysql.core.kinds import (
    BINLOG,
    LOGICAL,
    PHYSICAL,
    Kind,
    kind_of,
    not_ours,
    refuse_foreign_options,
    wrong_kind,
)
from plakar_mysql.core.option_models import LogicalBackupOptions
from plakar_mysql.core.options import ConfigError
from plakar_mysql.core.server import ServerError, error_text, server_errors
from plakar_mysql.logical.backup import MySQLImporter
from plakar_mysql.logical.layout import Inventory
from plakar_mysql.logical.preflight import binlogged_code, check_overwrite_grants
from plakar_mysql.physical.locality import decode_proc_address, prove_local, socket_inodes

#: SHOW GRANTS of 'u'@'%' on MariaDB 10.11 with the default role r1 (which holds r2)
#: and grants to PUBLIC: the case of finding 11.
SHOW_GRANTS = [
    "GRANT `r1` TO `u`@`%`",
    "GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*419256D0B4CBC2A2A3EDF9A19'",
    "GRANT SELECT ON `test`.* TO `u`@`%`",
    "GRANT `r2` TO `r1`",
    "GRANT RELOAD ON *.* TO `r1`",
    "GRANT PROCESS ON *.* TO `r2`",
    "GRANT LOCK TABLES ON *.* TO PUBLIC",
    "GRANT EVENT, TRIGGER ON `test`.* TO PUBLIC",
    "GRANT ALL PRIVILEGES ON `plakar\\_restore\\_%`.* TO `u`@`%`",
    "GRANT SELECT (`a ON b`, `c`), INSERT ON `odd``db`.`t` TO `u`@`%`",
    "GRANT EXECUTE ON PROCEDURE `test`.`p` TO `u`@`%`",
    "SET DEFAULT ROLE `r1` FOR `u`@`%`",
]


def test_grants_of_roles_and_public_count() -> None:
    grants = Grants.parse(SHOW_GRANTS)
    assert grants.has("TRIGGER", "test") and grants.has("EVENT", "test")
    assert not grants.has("TRIGGER", "other")
    assert grants.lacking(["RELOAD", "PROCESS", "LOCK TABLES", "BINLOG MONITOR"]) == [
        "BINLOG MONITOR"
    ]


def test_database_grants_are_patterns_and_table_grants_count_only_when_asked() -> None:
    grants = Grants.parse(SHOW_GRANTS)
    assert grants.has("DROP", "plakar_restore_7_1")
    assert not grants.has("DROP", "plakarXrestore_7_1")  # \_ is a literal underscore
    assert not grants.has("DROP", "plakar_old_7_1")
    assert not grants.has("INSERT", "odd`db")
    assert grants.has("INSERT", "odd`db", any_table=True)
    assert not grants.has("EXECUTE", "test")  # on one routine, not the database


def test_grant_lines_parse_with_quoted_names_and_column_lists() -> None:
    grant = parse_grant(SHOW_GRANTS[9])
    assert grant is not None
    assert grant.privileges == {"SELECT", "INSERT"}
    assert (grant.database, grant.table, grant.routine) == ("odd`db", "t", False)
    assert parse_grant(SHOW_GRANTS[0]) is None  # a role grant
    assert parse_grant("SET DEFAULT ROLE `r1` FOR `u`@`%`") is None


def test_replication_privileges_imply_as_mariadb_does() -> None:
    assert Grants.parse(["GRANT SUPER ON *.* TO `u`@`%`"]).has("BINLOG MONITOR")
    assert not Grants.parse(["GRANT SUPER ON *.* TO `u`@`%`"]).has("REPLICATION SLAVE")
    assert Grants.parse(["GRANT REPLICATION CLIENT ON *.* TO PUBLIC"]).has("BINLOG MONITOR")


def test_proc_addresses_decode_as_the_kernel_writes_them() -> None:
    assert str(decode_proc_address("0100007F:0CEA")[0]) == "127.0.0.1"
    assert decode_proc_address("0100007F:0CEA")[1] == 3306
    mapped = decode_proc_address("0000000000000000FFFF00000100007F:0CEA")
    assert str(mapped[0]) == "127.0.0.1"  # a dual-stack listener's view of an IPv4 client


class _Db:
    """What prove_local reads of a PyMySQL connection: its socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock


def _connected_pair() -> tuple[socket.socket, socket.socket, socket.socket]:
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    served, _ = listener.accept()
    return listener, client, served


def test_a_tcp_server_is_proven_by_the_socket_it_holds(tmp_path: Path) -> None:
    """This process plays the server: its pid file names it, it holds the far end of
    the connection, and its working directory is the data directory."""
    listener, client, served = _connected_pair()
    pid_file = tmp_path / "server.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    try:
        with open(f"/proc/{os.getpid()}/net/tcp") as table:
            ours, theirs = client.getsockname(), client.getpeername()
            found = socket_inodes(
                table.read(), (ip_address(theirs[0]), theirs[1]), (ip_address(ours[0]), ours[1])
            )
        assert found == {os.fstat(served.fileno()).st_ino}
        prove_local(_Db(client), os.getcwd(), str(pid_file), "127.0.0.1:1")
        with pytest.raises(ServerError, match="is not the one the server"):
            prove_local(_Db(client), str(tmp_path), str(pid_file), "127.0.0.1:1")
        # The pid file names a live process that does not hold the connection.
        pid_file.write_text("1\n")
        with pytest.raises(ServerError, match="is not the server this connection reaches"):
            prove_local(_Db(client), os.getcwd(), str(pid_file), "127.0.0.1:1")
        with pytest.raises(ServerError, match="not on this machine"):
            prove_local(_Db(client), os.getcwd(), str(tmp_path / "none.pid"), "h:1")
    finally:
        for sock in (client, served, listener):
            sock.close()


def test_a_socket_server_is_the_kernel_s_peer(tmp_path: Path) -> None:
    mine, theirs = socket.socketpair()
    try:
        prove_local(_Db(mine), os.getcwd(), str(tmp_path / "unused.pid"), "sock")
        with pytest.raises(ServerError, match="is not the one the server"):
            prove_local(_Db(mine), str(tmp_path), str(tmp_path / "unused.pid"), "sock")
    finally:
        mine.close()
        theirs.close()


def test_snapshot_kinds_are_named_with_the_location_that_restores_them() -> None:
    assert kind_of(["catalog.json", "databases"]) is LOGICAL
    assert kind_of(["binlog"]) is BINLOG
    assert kind_of(["ibdata1"]) is None
    assert "a logical snapshot" in wrong_kind(LOGICAL, PHYSICAL)
    assert "-to mysql://" in wrong_kind(LOGICAL, PHYSICAL)
    assert "-to mysql+bin://" in not_ours("/datadir/ibdata1", LOGICAL)
    assert "-to mysql+binlog://" in not_ours("/binlog/mysql-bin.000001", LOGICAL)
    assert "-to mysql://" in not_ours("/catalog.json", BINLOG)
    assert not_ours("/elsewhere/x", LOGICAL) == "/elsewhere/x is not part of a MySQL snapshot"
    assert not_ours("/x", BINLOG) == "/x is not part of a binary-log snapshot"


def test_preflight_names_functions_and_triggers_and_the_overwrite_grants() -> None:
    inventory = Inventory("shop", "", "", routines=("FUNCTION f", "PROCEDURE p"), triggers=("t1",))
    assert binlogged_code([inventory]) == ["function shop.f", "trigger shop.t1"]
    assert binlogged_code([Inventory("x", "", "", routines=("PROCEDURE p",))]) == []
    with pytest.raises(ServerError) as raised:
        check_overwrite_grants(Grants.parse(SHOW_GRANTS), "'u'@'%'")
    message = str(raised.value)
    assert "SELECT ON `plakar\\_old\\_%`.* (GRANT ALL PRIVILEGES ON `plakar\\_old" in message
    assert "plakar\\_restore" not in message  # held through the pattern grant
    assert "\n" not in message
    everything = Grants.parse(["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost`"])
    check_overwrite_grants(everything, "root")


def test_a_world_writable_option_file_is_refused(tmp_path: Path) -> None:
    cnf = tmp_path / "my.cnf"
    cnf.write_text("[client]\nuser=backup\n")
    cnf.chmod(0o666)
    with pytest.raises(ConfigError, match=f"chmod 600 {cnf}"):
        LogicalBackupOptions.parse({"location": "mysql://h", "defaults_file": str(cnf)})
    cnf.chmod(0o640)  # group-writable or readable is what the tools accept
    assert stat.S_IMODE(cnf.stat().st_mode) == 0o640
    LogicalBackupOptions.parse({"location": "mysql://h", "defaults_file": str(cnf)})


def test_a_logical_backup_refuses_the_physical_backup_s_options() -> None:
    options: Any = None
    with pytest.raises(
        ConfigError, match=r"option parallel applies to physical backups \(mysql\+bin://\)"
    ):
        MySQLImporter(options, "mysql", {"location": "mysql://h", "parallel": "4"})
    MySQLImporter(options, "mysql", {"location": "mysql://h"})


def test_a_server_error_is_one_line_of_words_not_the_driver_s_tuple() -> None:
    denied = pymysql.err.OperationalError(
        1044, "Access denied for user 'rest'@'%' to database\n'plakar_restore_9_1'"
    )
    assert str(denied).startswith("(1044, ")  # what the SDK printed before
    assert error_text(denied) == (
        "Access denied for user 'rest'@'%' to database 'plakar_restore_9_1' (server error 1044)"
    )
    with pytest.raises(ServerError) as raised, server_errors("db:3306"):
        raise denied
    assert str(raised.value).startswith("db:3306: Access denied") and "(1044," not in str(
        raised.value
    )


@pytest.mark.parametrize(
    ("backup", "kind", "config", "message"),
    [
        (True, BINLOG, {"parallel": "4"}, "option parallel applies to physical backups"),
        (True, PHYSICAL, {"no_data": "true"}, "option no_data applies to logical backups"),
        (True, LOGICAL, {"flush": "false"}, "option flush applies to binary-log backups"),
        (False, BINLOG, {"overwrite": "true"}, "option overwrite applies to logical restores"),
        (
            False,
            LOGICAL,
            {"stop_datetime": "x"},
            "applies to binary-log restores (mysql+binlog://)",
        ),
    ],
)
def test_options_of_another_kind_name_the_kind(
    backup: bool, kind: Kind, config: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        refuse_foreign_options({"location": f"{kind.scheme}://h", **config}, kind, backup=backup)
    refuse_foreign_options({"location": f"{kind.scheme}://h", "typo": "1"}, kind, backup=backup)


def test_each_kind_takes_its_own_options() -> None:
    own = {"stop_datetime": "x", "start_position": "0-1-2", "databases": "a", "bin_dir": "/usr"}
    refuse_foreign_options({"location": "mysql+binlog://h", **own}, BINLOG, backup=False)
    refuse_foreign_options({"location": "mysql+binlog://h", "flush": "false"}, BINLOG, backup=True)
    refuse_foreign_options({"location": "mysql+bin://h", "parallel": "4"}, PHYSICAL, backup=True)
    logical = {"overwrite": "true", "jobs": "2", "database": "a", "definer": "current"}
    refuse_foreign_options({"location": "mysql://h", **logical}, LOGICAL, backup=False)
    refuse_foreign_options({"location": "mysql://h", "tables": "t"}, LOGICAL, backup=True)
