"""Checks before work, with the server's real rules (issue 21), end to end: the packaged
integration, the real plakar CLI and private MariaDB 10.11 servers.

- a physical backup copies the data directory of the server the URI names, or none:
  a server in its own mount namespace whose data directory, pid file and socket
  paths all name *another* live server's files on this machine is refused;
- privileges granted to ``PUBLIC`` or held through the default role count;
- options of another kind, a world-writable option file, a binlog account without
  ``REPLICATION SLAVE`` are refused before anything runs;
- a restore onto a server that writes a binary log, or an overwrite restore
  without the shadow databases' grants, is refused before anything loads, in one line;
- a snapshot restored with the wrong kind of location says which kind it is.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import MariaDBFactory
from test_backup_restore import password

from plakar_mysql_harness.mariadb import MariaDBServer
from plakar_mysql_harness.plakar import Plakar

LOG_BIN = ["--log-bin=binlog", "--server-id=1"]
HAS_BACKUP_TOOL = shutil.which("mariadb-backup") is not None


def uri(server: MariaDBServer, scheme: str = "mysql", user: str = "root") -> str:
    return f"{scheme}://{user}@{server.host}:{server.port}"


def failed_without_snapshot(plakar: Plakar, proc: subprocess.CompletedProcess[str]) -> str:
    """The run failed, left no snapshot, and said why without a Python tuple."""
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert plakar.snapshots() == [], output
    assert "(1044," not in output and "Traceback" not in output, output
    return output


class MaskedServer(MariaDBServer):
    """A server whose every path is ``seen_as``'s, in a mount namespace of its own.

    Its files live in ``base_dir``; inside its private mount namespace that
    directory is bind-mounted over ``seen_as``, so it reports ``@@datadir``,
    ``@@pid_file`` and its socket under ``seen_as``, paths that on this machine
    hold another, running server's files: as a remote server, a container or a
    server of another namespace whose paths happen to exist here.
    """

    def __init__(self, base_dir: Path, seen_as: Path, *, extra_args: list[str]) -> None:
        self.seen_as = seen_as
        super().__init__(base_dir, extra_args=extra_args)

    def _command(self) -> list[str]:
        real = str(self.base_dir)
        args = [arg.replace(real, str(self.seen_as)) for arg in super()._command()]
        mount = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
        return [
            "unshare",
            "--mount",
            "--propagation=private",
            "sh",
            "-c",
            mount,
            "sh",
            real,
            str(self.seen_as),
            *args,
        ]


@pytest.mark.skipif(not HAS_BACKUP_TOOL, reason="mariadb-backup missing: run `make deps`")
@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare(1) missing")
def test_a_server_whose_paths_name_another_servers_files_here_is_refused(
    plakar: Plakar, mariadb: MariaDBServer, tmp_path: Path
) -> None:
    """Finding 1: the path exists locally, and is another server's data directory."""
    mariadb.execute("CREATE DATABASE local_only")
    masked = MaskedServer(tmp_path / "masked", mariadb.base_dir, extra_args=LOG_BIN)
    try:
        masked.execute("CREATE DATABASE remote_only")
        datadir, pid_file = masked.query("SELECT @@datadir, @@pid_file")[0]
        # The reproduction is real: its paths exist here, and are the other server's.
        assert Path(datadir).resolve() == mariadb.datadir.resolve()
        assert Path(pid_file).read_text().strip() == str(mariadb.pid)
        assert (mariadb.datadir / "local_only").is_dir()
        assert not (mariadb.datadir / "remote_only").exists()

        # Over TCP: the pid file names a live server here, but not the one connected to.
        proc = plakar.at(
            "backup",
            "-o",
            f"password={masked.root_password}",
            uri(masked, "mysql+bin"),
            check=False,
        )
        output = failed_without_snapshot(plakar, proc)
        assert "is not the server this connection reaches" in output, output
        assert "copied" not in output

        # Over its socket: the kernel names the process, whose data directory differs.
        proc = plakar.at(
            "backup",
            "-o",
            f"password={masked.root_password}",
            "-o",
            f"socket={masked.socket}",
            "mysql+bin://root@localhost",
            check=False,
        )
        output = failed_without_snapshot(plakar, proc)
        assert f"the data directory {datadir} on this machine is not the one" in output, output
    finally:
        masked.cleanup()


@pytest.mark.skipif(not HAS_BACKUP_TOOL, reason="mariadb-backup missing: run `make deps`")
def test_a_local_server_through_its_socket_is_backed_up(
    plakar: Plakar, mariadb: MariaDBServer
) -> None:
    """The proof by the socket's peer lets the real server through."""
    snapshot = plakar.backup(
        "mysql+bin://root@localhost", password(mariadb), f"socket={mariadb.socket}"
    )
    assert any(entry.name.endswith("ibdata1") for entry in plakar.ls(snapshot, "/datadir"))


def test_grants_to_public_and_through_the_default_role_count(
    plakar: Plakar, mariadb: MariaDBServer
) -> None:
    """Finding 11: TRIGGER and EVENT held by PUBLIC, mysql.proc through a role."""
    mariadb.execute("CREATE DATABASE test")
    mariadb.execute("CREATE TABLE test.t (id INT PRIMARY KEY)")
    mariadb.execute("CREATE TRIGGER test.stamp BEFORE INSERT ON test.t FOR EACH ROW SET @x = 1")
    mariadb.execute("CREATE USER 'pub'@'%' IDENTIFIED BY 'pub-pw'")
    mariadb.execute("GRANT SELECT, SHOW VIEW ON test.* TO 'pub'@'%'")
    mariadb.execute("GRANT TRIGGER, EVENT ON test.* TO PUBLIC")
    mariadb.execute("CREATE ROLE routine_reader")
    mariadb.execute("GRANT SELECT ON mysql.proc TO routine_reader")
    mariadb.execute("GRANT routine_reader TO 'pub'@'%'")
    mariadb.execute("SET DEFAULT ROLE routine_reader FOR 'pub'@'%'")
    try:
        snapshot = plakar.backup(uri(mariadb, user="pub") + "/test", "password=pub-pw")
        assert b"CREATE" in plakar.cat(snapshot, "/databases/test/tables/t.sql")
        assert b"stamp" in plakar.cat(snapshot, "/databases/test/tables/t.sql")

        # Without PUBLIC's grant the same account is refused, naming the grant.
        mariadb.execute("REVOKE TRIGGER ON test.* FROM PUBLIC")
        proc = plakar.at(
            "backup", "-o", "password=pub-pw", uri(mariadb, user="pub") + "/test", check=False
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0 and "lacks" in output and "TRIGGER ON test.*" in output
        assert "EVENT ON" not in output
    finally:
        mariadb.execute("DROP USER 'pub'@'%'")
        mariadb.execute("DROP ROLE routine_reader")
        mariadb.execute("REVOKE ALL PRIVILEGES ON test.* FROM PUBLIC")


@pytest.mark.skipif(not HAS_BACKUP_TOOL, reason="mariadb-backup missing: run `make deps`")
def test_physical_privileges_held_through_a_role_count(
    plakar: Plakar, mariadb: MariaDBServer
) -> None:
    """A role with RELOAD, PROCESS and LOCK TABLES: only BINLOG MONITOR is named."""
    mariadb.execute("CREATE ROLE copier")
    mariadb.execute("GRANT RELOAD, PROCESS, LOCK TABLES ON *.* TO copier")
    mariadb.execute("CREATE USER 'phys'@'%' IDENTIFIED BY 'phys-pw'")
    mariadb.execute("GRANT copier TO 'phys'@'%'")
    mariadb.execute("SET DEFAULT ROLE copier FOR 'phys'@'%'")
    proc = plakar.at(
        "backup", "-o", "password=phys-pw", uri(mariadb, "mysql+bin", "phys"), check=False
    )
    output = failed_without_snapshot(plakar, proc)
    assert "lacks what mysql+bin:// needs: BINLOG MONITOR ON *.*" in output, output
    assert "RELOAD" not in output and "PROCESS" not in output


def test_options_of_another_kind_and_a_world_writable_option_file_are_refused(
    plakar: Plakar, mariadb: MariaDBServer, tmp_path: Path
) -> None:
    """Findings 12 and 13."""
    proc = plakar.at(
        "backup", "-o", password(mariadb), "-o", "parallel=4", uri(mariadb), check=False
    )
    output = failed_without_snapshot(plakar, proc)
    assert "option parallel applies to physical backups (mysql+bin://)" in output, output

    cnf = tmp_path / "backup.cnf"
    cnf.write_text(f"[client]\nuser=root\npassword={mariadb.root_password}\n")
    cnf.chmod(0o666)
    proc = plakar.at(
        "backup", "-o", f"defaults_file={cnf}", uri(mariadb).replace("root@", ""), check=False
    )
    output = failed_without_snapshot(plakar, proc)
    assert f"chmod 600 {cnf}" in output and "Access denied" not in output, output
    assert mariadb.root_password not in output

    mariadb.execute("CREATE DATABASE shop")
    mariadb.execute("CREATE TABLE shop.t (id INT PRIMARY KEY)")
    cnf.chmod(0o600)
    plakar.backup(uri(mariadb).replace("root@", ""), f"defaults_file={cnf}")


def test_binlog_privileges_are_checked_before_the_flush(
    plakar: Plakar, mariadb_factory: MariaDBFactory
) -> None:
    """Finding 16: nothing runs on the server (no FLUSH BINARY LOGS) before the refusal."""
    server = mariadb_factory(extra_args=LOG_BIN)
    server.execute("CREATE USER 'arch'@'%' IDENTIFIED BY 'arch-pw'")
    server.execute("GRANT BINLOG MONITOR, RELOAD ON *.* TO 'arch'@'%'")
    before = server.query("SHOW BINARY LOGS")
    proc = plakar.at(
        "backup", "-o", "password=arch-pw", uri(server, "mysql+binlog", "arch"), check=False
    )
    output = failed_without_snapshot(plakar, proc)
    assert "lacks what mysql+binlog:// needs: REPLICATION SLAVE ON *.*" in output, output
    assert server.query("SHOW BINARY LOGS") == before  # not flushed

    server.execute("GRANT REPLICATION SLAVE ON *.* TO PUBLIC")  # PUBLIC counts here too
    plakar.backup(uri(server, "mysql+binlog", "arch"), "password=arch-pw")
    assert len(server.query("SHOW BINARY LOGS")) == len(before) + 1  # flushed once


def _shop_with_code(server: MariaDBServer) -> None:
    server.execute("CREATE DATABASE shop")
    for n in range(1, 4):
        server.execute(f"CREATE TABLE shop.t{n} (id INT PRIMARY KEY)")
        server.execute(f"INSERT INTO shop.t{n} VALUES (1), (2)")
    server.execute("CREATE TRIGGER shop.stamp BEFORE INSERT ON shop.t3 FOR EACH ROW SET @x = 1")
    server.execute("CREATE FUNCTION shop.twice(n INT) RETURNS INT DETERMINISTIC RETURN 2 * n")


def test_a_restore_onto_a_binlogging_server_without_super_is_refused_before_loading(
    plakar: Plakar, mariadb: MariaDBServer, mariadb_factory: MariaDBFactory
) -> None:
    """Finding 17: ERROR 1419 would stop the restore at the trigger's table."""
    _shop_with_code(mariadb)
    snapshot = plakar.backup(uri(mariadb) + "/shop", password(mariadb))
    target = mariadb_factory(extra_args=LOG_BIN)
    target.execute("CREATE USER 'rest'@'%' IDENTIFIED BY 'rest-pw'")
    target.execute("GRANT ALL PRIVILEGES ON shop.* TO 'rest'@'%'")
    to = uri(target, user="rest") + "/shop"
    proc = plakar.restore(snapshot, to, "password=rest-pw", "definer=current", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "writes a binary log (log_bin=ON) and 'rest'@'%' lacks SUPER" in output, output
    assert "function shop.twice, trigger shop.stamp" in output, output
    assert "log_bin_trust_function_creators" in output
    assert target.query("SHOW DATABASES LIKE 'shop'") == []  # nothing loaded

    target.execute("SET GLOBAL log_bin_trust_function_creators = ON")
    plakar.restore(snapshot, to, "password=rest-pw", "definer=current")
    assert target.query("SELECT shop.twice(21)") == [(42,)]
    assert target.query("SELECT COUNT(*) FROM information_schema.TRIGGERS") == [(1,)]


def test_an_overwrite_without_the_shadow_grants_is_refused_in_one_line(
    plakar: Plakar, mariadb: MariaDBServer
) -> None:
    """Finding 17: the raw tuple (1044, "Access denied ...") at the first table."""
    _shop_with_code(mariadb)
    snapshot = plakar.backup(uri(mariadb) + "/shop", password(mariadb))
    mariadb.execute("DELETE FROM shop.t1")
    mariadb.execute("CREATE USER 'rest'@'%' IDENTIFIED BY 'rest-pw'")
    mariadb.execute("GRANT ALL PRIVILEGES ON shop.* TO 'rest'@'%'")
    mariadb.execute("GRANT ALL PRIVILEGES ON `plakar\\_restore\\_%`.* TO 'rest'@'%'")
    to = uri(mariadb, user="rest") + "/shop"
    proc = plakar.restore(
        snapshot, to, "password=rest-pw", "overwrite=true", "definer=current", check=False
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "(1044," not in output and "Traceback" not in output
    assert "overwrite=true loads into shadow databases, and 'rest'@'%' lacks" in output, output
    assert "GRANT ALL PRIVILEGES ON `plakar\\_old\\_%`.* TO 'rest'@'%'" in output, output
    assert mariadb.query("SELECT COUNT(*) FROM shop.t1") == [(0,)]  # nothing changed
    assert mariadb.query("SHOW DATABASES LIKE 'plakar%'") == []

    mariadb.execute("GRANT ALL PRIVILEGES ON `plakar\\_old\\_%`.* TO 'rest'@'%'")
    plakar.restore(snapshot, to, "password=rest-pw", "overwrite=true", "definer=current")
    assert mariadb.query("SELECT COUNT(*) FROM shop.t1") == [(2,)]


@pytest.mark.skipif(not HAS_BACKUP_TOOL, reason="mariadb-backup missing: run `make deps`")
def test_a_snapshot_restored_with_the_wrong_kind_of_location_says_which_kind(
    plakar: Plakar, mariadb_factory: MariaDBFactory, tmp_path: Path
) -> None:
    """Finding 15, and its reverse cases."""
    server = mariadb_factory(extra_args=LOG_BIN)
    server.execute("CREATE DATABASE shop")
    server.execute("CREATE TABLE shop.t (id INT PRIMARY KEY)")
    logical = plakar.backup(uri(server) + "/shop", password(server))
    binlog = plakar.backup(uri(server, "mysql+binlog"), password(server))
    physical = plakar.backup(uri(server, "mysql+bin"), password(server))
    directory = tmp_path / "restored"
    pw = [password(server)]
    to_dir, to_logical = f"mysql+bin://{directory}", uri(server) + "/other"
    to_binlog = uri(server, "mysql+binlog")
    logical_hint = "a logical snapshot, not a {} one: restore it with -to mysql://"
    cases = [
        (logical, to_dir, [], logical_hint.format("physical")),
        (logical, to_binlog, pw, logical_hint.format("binary-log")),
        (
            physical,
            to_logical,
            pw,
            "physical snapshot, not a logical one: restore it with -to mysql+bin://",
        ),
        (
            binlog,
            to_logical,
            pw,
            "binary-log snapshot, not a logical one: restore it with -to mysql+binlog://",
        ),
        (physical, to_binlog, pw, "a physical snapshot, not a binary-log one"),
        (
            binlog,
            to_dir,
            [],
            "binary-log snapshot, not a physical one: restore it with -to mysql+binlog://",
        ),
    ]
    for snapshot, to, options, needle in cases:
        proc = plakar.restore(snapshot, to, *options, check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, output
        assert needle in output, output
        assert "has no xtrabackup_checkpoints" not in output  # the old, misleading hint
    assert not directory.exists() or not any(directory.iterdir())
    assert server.query("SHOW DATABASES LIKE 'other'") == []
