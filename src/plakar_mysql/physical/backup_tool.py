"""The physical backup tools: MariaDB's ``mariadb-backup``, Percona XtraBackup for MySQL.

Both copy a running server's data directory and stream it in the xbstream
format; both must be of the server's own major version (the copy understands
only the redo log format of its own release).  This module finds the right
binary, checks its version, runs it with the connection settings in a private
option file, and judges how it ended: a backup is good only if the tool exits 0
*and* says ``completed OK!`` last.

Every child runs under the SDK's guard (``guard.child``): Plakar SIGKILLs the
plugin when it is interrupted, and a ``mariadb-backup --backup`` left running
would go on holding its ``BACKUP STAGE`` locks on the server, a ``--prepare``
would go on rewriting a directory that is being removed.  The guardian kills
them, and removes the backup's work directory (``guard.temp_dir``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO

from kloset_sdk.guard import Guard
from plakar_mysql.core.credentials import option_file_text
from plakar_mysql.core.errors import PlakarMySQLError
from plakar_mysql.core.flavour import Flavour, Tool, ToolError, detect
from plakar_mysql.core.options import Connection
from plakar_mysql.physical.errors import os_error_line

_log = logging.getLogger(__name__)

COMPLETED = "completed OK!"
_STDERR_KEEP = 32 << 10
_PIPE_SIZE = 1 << 20
_PROGRESS_SECONDS = 10.0
_STOP_POLL = 0.5


class PhysicalBackupError(PlakarMySQLError, RuntimeError):
    """The backup tool failed; the message carries its own last error line."""


def tool_names(flavour: Flavour) -> tuple[str, ...]:
    if flavour is Flavour.MARIADB:
        return ("mariadb-backup", "mariabackup")
    return ("xtrabackup",)


def install_hint(flavour: Flavour, version: tuple[int, int, int]) -> str:
    """What to install for a server of ``flavour`` and ``version``."""
    major = f"{version[0]}.{version[1]}"
    if flavour is Flavour.MARIADB:
        return f"install mariadb-backup {major} (Debian: apt-get install mariadb-backup)"
    return f"install Percona XtraBackup {major} (percona-xtrabackup-{version[0]}{version[1]})"


@dataclass(frozen=True)
class BackupTool(Tool):
    """A backup executable (mariadb-backup, xtrabackup) of a known flavour and version."""

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def stream_format(self) -> str:
        return "mbstream" if self.flavour is Flavour.MARIADB else "xbstream"


def version_text(path: str) -> str:
    """The first line of ``PATH --version`` (stdout or stderr); ToolError if it does not run."""
    try:
        done = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolError(f"{path} does not run ({exc})") from None
    # mariadb-backup and xtrabackup print their version on stderr.
    text = (done.stdout + done.stderr).strip()
    return text.splitlines()[0] if text else ""


def find_backup_tool(
    flavour: Flavour, server_version: tuple[int, int, int], bin_dir: str | None
) -> BackupTool:
    """The backup tool for a server of ``flavour`` and ``server_version`` (same major version)."""
    hint = install_hint(flavour, server_version)
    names = tool_names(flavour)
    where = bin_dir or "PATH"
    for name in names:
        path = shutil.which(name, path=bin_dir) if bin_dir else shutil.which(name)
        if path is None:
            continue
        text = version_text(path)
        tool = BackupTool(path, flavour, text)
        if detect(text) is not flavour and flavour is Flavour.MARIADB:
            raise ToolError(f"{path} is not MariaDB's build ({text!r}): {hint}")
        if tool.version[:2] != server_version[:2]:
            found = ".".join(map(str, tool.version))
            wanted = ".".join(map(str, server_version))
            raise ToolError(
                f"{path} is version {found} but the server is {wanted}: {hint}, "
                "or point bin_dir to the right one"
            )
        return tool
    raise ToolError(f"{' or '.join(names)} not found in {where}: {hint}")


@contextlib.contextmanager
def option_memfd(conn: Connection, flavour: Flavour) -> Iterator[tuple[int, str]]:
    """Yield ``(fd, "--defaults-file=/dev/fd/N")`` for a child started with ``pass_fds=(fd,)``.

    Unlike the dump tools, the backup tools read their option file several
    times (once for the server's groups, once for their own), which a pipe
    cannot serve.  An anonymous in-memory file can: each ``open`` of
    ``/dev/fd/N`` starts at its beginning, and the password never touches a disk.
    """
    data = option_file_text(conn, flavour).encode()
    fd = os.memfd_create("plakar-mysql-options", os.MFD_CLOEXEC)
    try:
        os.fchmod(fd, 0o600)  # the tools ignore a world-writable option file (a memfd is 0777)
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
        yield fd, f"--defaults-file=/dev/fd/{fd}"
    finally:
        os.close(fd)


def backup_arguments(tool: BackupTool, work_dir: str, parallel: int) -> list[str]:
    """The backup's arguments after the option file: stream the copy to stdout."""
    return [
        "--backup",
        f"--stream={tool.stream_format}",
        f"--target-dir={work_dir}",
        f"--parallel={parallel}",
    ]


class BackupProcess:
    """A running backup tool; :attr:`stdout` is its stream, :meth:`verdict` its outcome.

    Use as a context manager: leaving the block kills a tool still running (a
    failed or cancelled backup) and removes its scratch directory; if the plugin
    dies inside the block, the guardian does both.
    """

    def __init__(self, tool: BackupTool, conn: Connection, parallel: int, guard: Guard) -> None:
        self.tool = tool
        self._conn = conn
        self._parallel = parallel
        self._guard = guard
        self._stderr = bytearray()
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._child = contextlib.ExitStack()
        self._work_dir = ""
        self.arguments: list[str] = []

    def __enter__(self) -> BackupProcess:
        self._work_dir = work_directory(self._guard, "plakar-mysql-bin-")
        self.arguments = backup_arguments(self.tool, self._work_dir, self._parallel)
        try:
            with option_memfd(self._conn, self.tool.flavour) as (fd, defaults):
                self._process = subprocess.Popen(
                    [self.tool.path, defaults, *self.arguments],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    pass_fds=(fd,),
                    bufsize=0,
                )
                self._child.enter_context(self._guard.child(self._process))
        except BaseException as exc:
            self._guard.remove_dir(self._work_dir)
            if isinstance(exc, OSError):
                raise PhysicalBackupError(os_error_line("run", self.tool.path, exc)) from None
            raise
        with contextlib.suppress(OSError, AttributeError):
            # A 1 MiB pipe: fewer, larger reads on the hot path (Linux; best effort).
            fcntl.fcntl(self.stdout.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        self._thread = threading.Thread(target=self._collect_stderr, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        process = self._process
        if process is not None:
            if process.poll() is None:
                process.kill()
            process.wait()
            self._child.close()
            assert process.stdout is not None
            process.stdout.close()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._guard.remove_dir(self._work_dir)

    @property
    def stdout(self) -> IO[bytes]:
        assert self._process is not None and self._process.stdout is not None
        return self._process.stdout

    def _collect_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        drain(self._process.stderr, self._stderr)

    def messages(self) -> list[str]:
        return self._stderr.decode(errors="replace").strip().splitlines()

    def verdict(self, timeout: float = 600.0) -> PhysicalBackupError | None:
        """Why the backup failed, or None; call once the stream has been read to its end."""
        assert self._process is not None
        try:
            code = self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            return PhysicalBackupError(
                f"{self.tool.name} did not exit {timeout:g} s after its stream ended"
            )
        if self._thread is not None:
            self._thread.join(timeout=30)
        lines = self.messages()
        last = _last_error(lines)
        if code != 0:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            return PhysicalBackupError(f"{self.tool.name} {how}: {last or 'no error message'}")
        if not lines or not lines[-1].rstrip().endswith(COMPLETED):
            return PhysicalBackupError(
                f"{self.tool.name} exited 0 without saying '{COMPLETED}': the copy is incomplete"
            )
        return None


def drain(stream: IO[bytes], tail: bytearray) -> None:
    """Read ``stream`` to its end as it comes, keeping its last :data:`_STDERR_KEEP`
    bytes in ``tail``: a child never blocks on a full pipe, and memory stays bounded."""
    for line in stream:
        tail += line
        del tail[:-_STDERR_KEEP]


class ToolTimeout(PlakarMySQLError, RuntimeError):
    """A child ran past its time limit and was killed."""


def work_directory(guard: Guard, prefix: str) -> str:
    """A private temporary directory the guardian removes if the plugin dies; a
    one-line error if it cannot be created (``cannot create a directory in /tmp:
    read-only file system``)."""
    try:
        return guard.temp_dir(prefix)
    except OSError as exc:
        raise PhysicalBackupError(
            os_error_line("create a directory in", tempfile.gettempdir(), exc)
        ) from None


class ToolStopped(RuntimeError):
    """A child was killed because its caller asked it to stop."""


def _wait(process: subprocess.Popen[bytes], timeout: float, stop: Callable[[], bool]) -> int:
    """The child's exit status; :class:`subprocess.TimeoutExpired` after ``timeout``
    seconds, :class:`ToolStopped` as soon as ``stop()`` (asked twice a second)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return process.wait(min(_STOP_POLL, max(0.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                raise
            if stop():
                raise ToolStopped(str(process.args)) from None


def run_draining(
    command: Sequence[str],
    timeout: float,
    guard: Guard,
    *,
    stop: Callable[[], bool] = lambda: False,
) -> tuple[int, list[str]]:
    """Run ``command`` (no stdin, no stdout) to its end, its stderr drained by a thread
    as it runs; its exit status and its last stderr lines.  Raises :class:`ToolTimeout`
    (the child killed) after ``timeout`` seconds, :class:`ToolStopped` (the child
    killed) once ``stop()`` says so.  The guardian kills the child if the plugin dies
    meanwhile."""
    tail = bytearray()
    process = subprocess.Popen(
        list(command), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    with guard.child(process):
        reader = threading.Thread(target=drain, args=(process.stderr, tail), daemon=True)
        reader.start()
        try:
            code = _wait(process, timeout, stop)
        except subprocess.TimeoutExpired:
            raise ToolTimeout(
                f"{os.path.basename(command[0])} did not finish in {timeout:g} s"
            ) from None
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            reader.join(timeout=30)
            process.stderr.close()
    return code, tail.decode(errors="replace").strip().splitlines()


def _last_error(lines: Sequence[str]) -> str:
    """The tool's most telling line: the last that names an error, else the last one."""
    for line in reversed(lines):
        lowered = line.lower()
        if "error" in lowered or "failed" in lowered or "fatal" in lowered:
            return line.strip()
    return lines[-1].strip() if lines else ""


class Progress:
    """A line on stderr every few seconds with the bytes streamed so far."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._started = self._reported = time.monotonic()

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self._reported >= _PROGRESS_SECONDS:
            self._reported = now
            rate = done / 2**20 / max(now - self._started, 1e-9)
            _log.info(
                f"{self._name}: {done / 2**20:.0f} MiB copied ({rate:.1f} MiB/s)",
            )
