"""``make mysql``'s tree (``scripts/mysql_tree.sh``): each wrapper in its ``bin``
runs MySQL's own tool with the arguments it was given, exactly, and adds nothing to
the environment; the server the tests start is MySQL with GTIDs on."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from plakar_mysql_harness.mysql import MySQLServer, mysql_bin_dir

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
