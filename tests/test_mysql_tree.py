"""``make mysql``'s tree (``scripts/mysql_tree.sh``): each wrapper in its ``bin``
runs MySQL's own tool with the arguments it was given, exactly, and adds nothing to
the environment; the server the tests start is MySQL with GTIDs on; the script
prints the version of the MySQL it has, and fails in one line, leaving nothing
behind, when the mirror does not serve the packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from plakar_mysql_harness.mariadb import free_port
from plakar_mysql_harness.mysql import MySQLServer, mysql_bin_dir

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "mysql_tree.sh"

TOOLS = ("mysqld", "mysql", "mysqldump", "mysqlbinlog", "mysqladmin")


def test_every_wrapper_runs_mysqls_own_tool() -> None:
    bin_dir = mysql_bin_dir()
    for tool in TOOLS:
        out = subprocess.run(
            [bin_dir / tool, "--no-defaults", "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        assert f"{tool}  Ver " in out and " for Linux " in out, out
        assert "mariadb" not in out.lower(), out


def proc_list(pid: int, name: str) -> list[bytes]:
    """``/proc/PID/cmdline`` or ``environ``: its NUL-terminated items."""
    return Path(f"/proc/{pid}/{name}").read_bytes().split(b"\0")[:-1]


def tool_running(pid: int) -> bool:
    """The wrapper's shell has exec'ed ``mysqlbinlog`` (until then its own argv names it)."""
    argv = proc_list(pid, "cmdline")
    return bool(argv) and argv[0] != b"/bin/sh" and b"mysqlbinlog" in b"".join(argv[:4])


def assert_runs_through_the_tree(argv: list[bytes], program: str) -> list[bytes]:
    """``argv`` is the tree's loader and libraries running the tree's ``program``;
    the arguments the program got."""
    tree = mysql_bin_dir().parent / "tree"
    assert argv[0] == os.fsencode(tree / "lib64" / "ld-linux-x86-64.so.2")
    assert argv[1] == b"--library-path"
    assert argv[3] == os.fsencode(tree / "usr" / program)
    return argv[4:]


def test_arguments_and_environment_reach_the_tool_unchanged(tmp_path: Path) -> None:
    """``mysqlbinlog`` waiting on its standard input: its arguments (spaces, quotes,
    ``$``, ``*``, an empty one) are the wrapper's, and its environment is exactly the
    one the wrapper got (but for ``PWD``, which ``sh`` sets)."""
    # "-" first: the tool reads its standard input, which stays open, before the others.
    args = ["--no-defaults", "--result-file=/dev/null", "-", "a b'c\"d $HOME *", ""]
    env = {"MARKER": "x y $HOME", "PATH": "/usr/bin:/bin"}
    tool = subprocess.Popen(
        [mysql_bin_dir() / "mysqlbinlog", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 20
        while not tool_running(tool.pid):
            assert time.monotonic() < deadline and tool.poll() is None, "the tool did not start"
            time.sleep(0.05)
        got = assert_runs_through_the_tree(proc_list(tool.pid, "cmdline"), "bin/mysqlbinlog")
        assert got == [os.fsencode(arg) for arg in args]
        environ = dict(item.split(b"=", 1) for item in proc_list(tool.pid, "environ"))
        assert environ.pop(b"PWD", os.fsencode(tmp_path)) == os.fsencode(tmp_path)
        assert environ == {k.encode(): v.encode() for k, v in env.items()}
    finally:
        tool.kill()
        tool.wait()


def test_the_test_server_runs_as_given(tmp_path: Path) -> None:
    """The tests' MySQL server: ``mysqld`` got exactly the harness's arguments (one
    with spaces and quotes added), and runs with GTIDs and the binary log on."""
    init = tmp_path / "in it $HOME *'\""
    init.write_text("SELECT 1;\n")
    server = MySQLServer(tmp_path / "mysql", extra_args=[f"--init-file={init}"])
    try:
        assert server.pid is not None
        got = assert_runs_through_the_tree(proc_list(server.pid, "cmdline"), "sbin/mysqld")
        assert got == [os.fsencode(arg) for arg in server._command()[1:]]
        assert got[-1] == os.fsencode(f"--init-file={init}")
        assert server.query("SELECT @@gtid_mode, @@enforce_gtid_consistency, @@log_bin") == [
            ("ON", "ON", 1)
        ]
        assert "MariaDB" not in server.version
    finally:
        server.cleanup()


def test_the_script_prints_the_version_of_the_tree_it_has() -> None:
    """With the tree there, nothing is built: the one line printed names the version
    its ``mysqld`` reports (whatever sid served) and the tree."""
    tree = mysql_bin_dir().parent
    started = time.monotonic()
    proc = subprocess.run([SCRIPT, tree], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stderr == "", proc
    version = (
        subprocess.run(
            [tree / "bin" / "mysqld", "--no-defaults", "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        .stdout.split("mysqld  ", 1)[1]
        .strip()
    )
    assert version.startswith("Ver 9.") or version.startswith("Ver 8."), version
    assert proc.stdout == f"mysql: MySQL {version} in {tree}\n"
    assert time.monotonic() - started < 10


def test_a_mirror_that_does_not_serve_the_packages_fails_in_one_line(tmp_path: Path) -> None:
    """``MYSQL_MIRROR`` pointed at a loopback port nothing listens on: the script
    exits 1 with one line on its standard error naming the mirror, the packages
    and debootstrap's own reason, and leaves no tree and no temporary directory."""
    if shutil.which("debootstrap", path=f"{os.environ.get('PATH', '')}:/usr/sbin") is None:
        pytest.skip("debootstrap is not installed (make mysql installs it)")
    mirror = f"http://127.0.0.1:{free_port()}/debian"
    dest = tmp_path / "mysql-sid"
    proc = subprocess.run(
        [SCRIPT, dest],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "MYSQL_MIRROR": mirror},
    )
    assert proc.returncode == 1, proc
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(
        f"mysql: {mirror} did not serve mysql-server-core,mysql-client-core for Debian sid: E: "
    ), lines
    assert mirror in lines[0].split(": E: ", 1)[1], lines  # debootstrap's reason, not a guess
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".mysql-sid.lock"]
