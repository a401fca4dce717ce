"""Faults, through the real plakar CLI against private MariaDB servers.

For each fault: ``plakar backup`` or ``plakar restore`` exits non-zero, its
output names the cause, no snapshot is left (``plakar ls`` shows none after a
failed backup), ``plakar check`` passes on the store afterwards, and the next
run, the fault gone, succeeds and is complete.

Covered elsewhere (``test_backup_restore.py``), so not repeated here: the
server killed in the middle of a dump, and a dump that ends without the tool's
completion line although the tool exited 0.

The store made unwritable: the tests run as root, and root's
``CAP_DAC_OVERRIDE`` ignores file modes, so ``chmod`` alone proves nothing.
plakar runs under ``setpriv`` with ``CAP_DAC_OVERRIDE``, ``CAP_DAC_READ_SEARCH``
and ``CAP_FOWNER`` dropped from its bounding set: it is still root and owns the
store, but the modes now bind it, exactly as they bind an ordinary user whose
store directories are read-only.  Nothing outlives the test (a read-only bind
mount or ``chattr +i`` would leave a mount or an undeletable directory behind
if the test died half-way), and it needs no second account.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import MariaDBFactory
from support.compare import describe_database, diff
from support.scripts import executable
from test_backup_restore import password, uri
from test_both_flavours import checksums
from test_both_flavours import options as flavour_options

from plakar_mysql_harness.mariadb import MariaDBServer
from plakar_mysql_harness.plakar import Plakar, describe

#: Rows of ``big.t``: about 100 MiB of dump, a few seconds of backup.
BIG_ROWS = 1_000_000
#: The dump's connection is cut once this much has gone from the server to it.
CUT_AFTER = 20 << 20
#: The dump tool reading the rows of ``big.t``, as the server's process list shows it.
DUMP_QUERY = "SELECT /*!40001 SQL_NO_CACHE */ % FROM `t`"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """A server with ``big`` (a ~100 MB table between two small ones) and ``small``."""
    server = MariaDBServer(tmp_path_factory.mktemp("faults") / "mariadb")
    try:
        server.execute("CREATE DATABASE big")
        server.execute("CREATE TABLE big.t (id INT PRIMARY KEY, pad VARCHAR(255)) ENGINE=InnoDB")
        server.execute(
            f"INSERT INTO t SELECT seq, REPEAT(MD5(seq), 3) FROM seq_1_to_{BIG_ROWS}",
            database="big",
        )
        for name in ("a", "z"):
            server.execute(f"CREATE TABLE big.{name} (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
            server.execute(
                f"INSERT INTO {name} SELECT seq, seq * 7 FROM seq_1_to_1000", database="big"
            )
        server.execute("CREATE DATABASE small")
        server.execute("CREATE TABLE small.t (id INT PRIMARY KEY, v VARCHAR(20))")
        server.execute("INSERT INTO small.t VALUES (1, 'one'), (2, 'two')")
        yield server
    finally:
        server.cleanup()


# -- helpers -------------------------------------------------------------------------


def start(plakar: Plakar, *args: str, prefix: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    """``plakar at STORE ARGS...`` in the background, stdout and stderr together."""
    return subprocess.Popen(
        [*prefix, str(plakar.binary), "at", str(plakar.store), *args],
        env=plakar.env,
        cwd=plakar.base,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def backup_args(server: MariaDBServer, database: str, *options: str) -> list[str]:
    args = ["backup", "-o", password(server)]
    for option in options:
        args += ["-o", option]
    return [*args, uri(server, database)]


def failed(proc: subprocess.Popen[str], timeout: float = 180) -> str:
    """Wait for a plakar run that must fail; return its output."""
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        pytest.fail(f"plakar did not end within {timeout:g} s after the fault:\n{output}")
    assert proc.returncode != 0, describe(proc.args, proc.returncode, output, "")
    return output


def failing_backup(plakar: Plakar, server: MariaDBServer, database: str, *options: str) -> str:
    proc = plakar.at(*backup_args(server, database, *options), check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, describe(proc.args, proc.returncode, output, "")
    return output


def nothing_left(plakar: Plakar) -> None:
    """No snapshot, and a store that passes ``plakar check``."""
    assert plakar.snapshots() == []
    plakar.check()


def next_backup_is_complete(
    plakar: Plakar, server: MariaDBServer, database: str, *options: str
) -> str:
    """The fault gone, a backup succeeds and counted every row of every table."""
    snapshot = plakar.backup(uri(server, database), password(server), *options)
    manifest = json.loads(plakar.cat(snapshot, "/manifest.json"))
    rows = {t["name"]: t["rows"] for t in manifest["databases"][0]["tables"]}
    expected = {
        name: server.query(f"SELECT COUNT(*) FROM `{database}`.`{name}`")[0][0] for name in rows
    }
    assert rows == expected
    return snapshot


def wait_for_query(server: MariaDBServer, pattern: str, proc: subprocess.Popen[str]) -> None:
    """Return once a query LIKE ``pattern`` runs on ``server`` (other than ours)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"plakar ended before {pattern!r} ran:\n{proc.communicate()[0]}")
        running = server.query(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
            " WHERE ID <> CONNECTION_ID() AND INFO LIKE %s",
            (pattern,),
        )[0][0]
        if running:
            return
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"{pattern!r} never ran")


def children(pid: int) -> list[tuple[int, list[bytes]]]:
    """Direct children of ``pid`` with their argv (zombies have none and are left out)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z" and argv[0]:
            found.append((int(entry.name), argv))
    return found


def gone(pid: int, timeout: float = 15) -> bool:
    """Whether process ``pid`` has exited (or is a zombie) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False


# -- the connection cut in the middle of a dump ---------------------------------------


class CuttingProxy:
    """A loopback TCP proxy to ``127.0.0.1:target``.

    While :attr:`cut_after` is set, a connection is cut - both of its sockets
    shut down and closed - once that many bytes have gone from the server to the
    client: the client sees the connection drop in the middle of a result.
    """

    def __init__(self, target: int, cut_after: int | None) -> None:
        self.target = target
        self.cut_after = cut_after
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._open |= {client, server}
            pair = (client, server)
            threading.Thread(target=self._pump, args=(client, server, None, pair)).start()
            limit = self.cut_after
            threading.Thread(target=self._pump, args=(server, client, limit, pair)).start()

    def _pump(
        self,
        src: socket.socket,
        dst: socket.socket,
        limit: int | None,
        pair: tuple[socket.socket, socket.socket],
    ) -> None:
        sent = 0
        try:
            while data := src.recv(1 << 16):
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[: limit - sent])
                    with self._lock:
                        self.cuts += 1
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            self._close(pair)

    def _close(self, sockets: tuple[socket.socket, ...]) -> None:
        for sock in sockets:
            with self._lock:
                self._open.discard(sock)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the other pump's recv
            sock.close()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            left = tuple(self._open)
        self._close(left)


def test_connection_cut_in_the_middle_of_a_dump(plakar: Plakar, source: MariaDBServer) -> None:
    """The dump's connection dropped 20 MiB into ``big.t``: the tool's own error,
    naming the table, reaches the user; through the same proxy, intact, the
    next backup is complete."""
    proxy = CuttingProxy(source.port, cut_after=CUT_AFTER)
    through = f"port={proxy.port}"
    try:
        output = failed(start(plakar, *backup_args(source, "big", through)))
        assert proxy.cuts == 1, output  # the dump's connection, and only it
        assert "mariadb-dump exited with status" in output, output
        assert "Lost connection to server during query" in output, output
        assert "when dumping table `t`" in output, output
        nothing_left(plakar)

        proxy.cut_after = None
        next_backup_is_complete(plakar, source, "big", through)
    finally:
        proxy.close()


# -- the dump tool missing, not executable, of the other flavour ----------------------


def empty_bin_dir(directory: Path) -> str:
    return f"mariadb-dump or mysqldump not found in {directory}"


def not_executable(directory: Path) -> str:
    copy = directory / "mariadb-dump"
    shutil.copy(shutil.which("mariadb-dump") or "/usr/bin/mariadb-dump", copy)
    copy.chmod(0o644)
    return f"{copy} is not executable"


def other_flavour(directory: Path) -> str:
    # Answers --version as MySQL's build; run for anything else, it leaves a mark.
    fake = executable(
        directory / "mysqldump",
        "#!/bin/sh\n"
        'if [ "$1" = --version ]; then\n'
        "  echo 'mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)'\n"
        "  exit 0\n"
        "fi\n"
        f"touch {directory / 'ran'}\n",
    )
    return f"the server is MariaDB but {fake} is MySQL's build"


def test_unusable_dump_tool(plakar: Plakar, source: MariaDBServer, tmp_path: Path) -> None:
    """Missing, not executable, MySQL's build for a MariaDB server: each is named,
    with what to install, before the dump; then a good ``bin_dir`` works."""
    faults: list[Callable[[Path], str]] = [empty_bin_dir, not_executable, other_flavour]
    for make in faults:
        directory = tmp_path / make.__name__
        directory.mkdir()
        message = make(directory)
        output = failing_backup(plakar, source, "small", f"bin_dir={directory}")
        assert message in output, output
        assert "install MariaDB's client tools" in output, output
        assert not (directory / "ran").exists()  # only ever asked for its version
        nothing_left(plakar)

    real = Path(shutil.which("mariadb-dump") or "/usr/bin/mariadb-dump").parent
    next_backup_is_complete(plakar, source, "small", f"bin_dir={real}")


# -- the plugin killed during a backup -------------------------------------------------


def test_plugin_killed_during_a_backup(plakar: Plakar, source: MariaDBServer) -> None:
    """SIGKILL to this run's mysql-importer while it streams ``big.t``: plakar
    says the integration went away, commits nothing, and the dump tool ends."""
    backup = start(plakar, *backup_args(source, "big"))
    wait_for_query(source, DUMP_QUERY, backup)
    plugins = [
        (pid, argv)
        for pid, argv in children(backup.pid)
        if argv[0].endswith(b"/mysql-importer") and str(plakar.cache_home).encode() in argv[0]
    ]
    assert len(plugins) == 1, children(backup.pid)
    importer = plugins[0][0]
    dumps = [pid for pid, argv in children(importer) if argv[0].endswith(b"mariadb-dump")]
    assert len(dumps) == 1, children(importer)
    os.kill(importer, signal.SIGKILL)

    output = failed(backup)
    assert "failed to backup source" in output, output
    assert "error reading from server: EOF" in output, output  # the plugin's end
    # Its dump tool does not go on dumping into a pipe nobody reads.
    assert gone(dumps[0]), f"mariadb-dump {dumps[0]} still runs"
    nothing_left(plakar)

    next_backup_is_complete(plakar, source, "big")


# -- the store not writable --------------------------------------------------------------

#: plakar as root, but bound by file modes (see the module's docstring).
WITHOUT_DAC = ("setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--")


def make_store_read_only(plakar: Plakar, modes: dict[Path, int]) -> None:
    """Every directory of the store read-only; ``modes`` keeps what they were."""
    for directory in [plakar.store, *(p for p in plakar.store.rglob("*") if p.is_dir())]:
        modes.setdefault(directory, directory.stat().st_mode & 0o7777)
        directory.chmod(0o555)


def restore_modes(modes: dict[Path, int]) -> None:
    for directory, mode in modes.items():
        directory.chmod(mode)
    modes.clear()


@pytest.mark.parametrize("middle", [False, True], ids=["from the start", "mid-dump"])
def test_store_not_writable(plakar: Plakar, source: MariaDBServer, middle: bool) -> None:
    """Read-only from the start (plakar cannot write its first file), or made
    read-only while the dump runs (plakar cannot store the data or commit)."""
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is needed to make root obey file modes")
    # Refused from the start, the backup reads nothing: a small database will do.
    database = "big" if middle else "small"
    probe = plakar.store / "probe"
    modes: dict[Path, int] = {}
    try:
        make_store_read_only(plakar, modes)
        refused = subprocess.run(
            [*WITHOUT_DAC, "touch", str(probe)], capture_output=True, check=False
        )
        assert refused.returncode != 0 and not probe.exists(), "the modes do not bind"
        if middle:
            restore_modes(modes)
        backup = start(plakar, *backup_args(source, database), prefix=WITHOUT_DAC)
        if middle:
            wait_for_query(source, DUMP_QUERY, backup)
            make_store_read_only(plakar, modes)
        output = failed(backup)
    finally:
        restore_modes(modes)
    assert f"{plakar.store}/" in output and "permission denied" in output, output
    if middle:
        assert "failed to commit snapshot" in output, output
    nothing_left(plakar)

    next_backup_is_complete(plakar, source, database)


# -- the restore target killed in the middle of a restore ------------------------------


def test_restore_target_killed_in_the_middle_of_a_restore(
    plakar: Plakar, source: MariaDBServer, mariadb_factory: MariaDBFactory
) -> None:
    """SIGKILL to the target server while ``big.t`` loads: the error names that
    table; restarted, the target holds nothing of the first run (it loaded into a
    shadow database), and the same command again restores it exactly."""
    snapshot = plakar.backup(uri(source, "big"), password(source))
    target = mariadb_factory()
    args = ["restore", "-to", uri(target, "copy"), "-o", password(target)]
    restore = start(plakar, *args, snapshot)
    wait_for_query(target, "INSERT INTO `t` VALUES%", restore)
    time.sleep(0.3)  # well into the table
    target.kill()

    output = failed(restore)
    assert "mariadb failed loading table copy.t: ERROR 2013" in output, output
    assert "Lost connection to server during query" in output, output
    assert plakar.snapshots() == [snapshot]
    plakar.check()

    target.start()
    assert target.query("SHOW DATABASES LIKE 'copy'") == []
    plakar.at(*args, snapshot)  # the same command again
    expected = describe_database(source, "big", rename={"big": "copy"})
    assert diff(expected, describe_database(target, "copy")) == []


@pytest.mark.parametrize("flavour", ["mysql"])
def test_mysql_restore_target_killed_in_the_middle_of_a_restore(
    plakar: Plakar, server_factory: MariaDBFactory
) -> None:
    """As above on MySQL 9.7 (its client's message, its one-line ``INSERT``s, its
    crash recovery): SIGKILL to the target while ``big.t`` loads fails the restore
    naming that table; restarted, the target holds nothing of it, and the same
    command again restores every row."""
    source = server_factory()
    source.execute("CREATE DATABASE big")
    source.execute("CREATE TABLE big.t (id INT PRIMARY KEY, pad VARCHAR(255))")
    with source.connect() as conn, conn.cursor() as cur:
        cur.execute("SET SESSION cte_max_recursion_depth = 300000")
        cur.execute(
            "INSERT INTO big.t WITH RECURSIVE seq (n) AS (SELECT 1 UNION ALL"
            " SELECT n + 1 FROM seq WHERE n < 250000)"
            " SELECT n, REPEAT(LPAD(n, 10, 'x'), 20) FROM seq"
        )
        conn.commit()
    snapshot = plakar.backup(uri(source, "big"), *flavour_options(source))
    target = server_factory()
    args = ["restore", "-to", uri(target, "copy")]
    for option in flavour_options(target):
        args += ["-o", option]
    restore = start(plakar, *args, snapshot)
    wait_for_query(target, "INSERT INTO `t` VALUES%", restore)
    time.sleep(0.3)  # well into the table
    target.kill()

    output = failed(restore)
    assert "mysql failed loading table copy.t: ERROR 2013" in output, output
    assert plakar.snapshots() == [snapshot]

    target.start()
    assert target.query("SHOW DATABASES LIKE 'copy'") == []
    plakar.at(*args, snapshot)  # the same command again
    assert checksums(target, "copy") == checksums(source, "big")
