"""Run the server's own dump tool and read its output as one checked stream.

One invocation covers every database of the backup, inside one transaction
(``--single-transaction``), so the whole snapshot is one point in time.  The
output is read in large blocks and passed on untouched; the reader only keeps
the first and the last few kilobytes, where the tool writes the binary-log
coordinates of the dump's point in time and its completion line.  A dump is good only if
the tool exits 0 *and* its output ends with that line: a tool killed by a
signal, or a server that went away, fails either test.
"""

from __future__ import annotations

import io
import logging
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from kloset_sdk.transport import enlarge_pipe
from plakar_mysql.core.client import MAX_PACKET
from plakar_mysql.core.credentials import option_pipe
from plakar_mysql.core.errors import PlakarMySQLError
from plakar_mysql.core.flavour import Flavour, Tool
from plakar_mysql.core.heap import release_free_memory
from plakar_mysql.core.option_models import LogicalBackupOptions
from plakar_mysql.core.options import Connection

_log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

TRAILER = b"-- Dump completed"
_HEAD_BYTES = 64 << 10
_TAIL_BYTES = 4 << 10
_STDERR_KEEP = 16 << 10
_BLOCK = 512 << 10  # what close() skips at a time
_PIPE = 1 << 20  # the tool's output pipe: the tool writes ahead while we send
_PROGRESS_SECONDS = 10.0
_RELEASE_BYTES = 64 << 20  # free heap pages go back to the system this often
_OUTPUT_BUFFER = "1M"  # the dump tool's stdout buffer, through stdbuf


def large_writes() -> list[str]:
    """``stdbuf -o 1M``, to run the dump tool with, when this system's ``stdbuf`` works.

    The tools write through stdio, which on a pipe flushes every 4 KiB
    (measured: 35,088 writes of 4 KiB for one 140 MB table), and every write
    wakes the importer for the few bytes it brings.  With a 1 MiB buffer the
    tool writes 256 times less often and the importer wakes as rarely (its CPU
    at 1 GB fell from 3.6 to 3.0 s, median of three).  The buffer changes
    when bytes are written, never which: without a working ``stdbuf`` (not
    installed, or its preload library missing) the tool runs as it is."""
    stdbuf = shutil.which("stdbuf")
    if stdbuf is None:
        return []
    prefix = [stdbuf, "-o", _OUTPUT_BUFFER]
    try:
        check = subprocess.run(
            [*prefix, "true"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return prefix if check.returncode == 0 else []


class DumpError(PlakarMySQLError, RuntimeError):
    """The dump failed; the message carries the tool's own error."""


@dataclass(frozen=True)
class BinlogPosition:
    file: str
    position: int
    gtid: str | None


def base_arguments() -> list[str]:
    """What every dump runs with: stable output, read in one pass."""
    return [
        "--default-character-set=utf8mb4",
        f"--max-allowed-packet={MAX_PACKET}",
        "--skip-dump-date",  # keeps unchanged data byte-identical between backups
        "--comments",  # the completion line we check
        "--quick",
        "--tz-utc",
        # No LOCK TABLES around rows: tables load in parallel, and a lock taken
        # while a table it refers to is being created fails the load.
        "--skip-add-locks",
    ]


def dump_arguments(
    tool: Tool,
    config: LogicalBackupOptions,
    databases: Sequence[str],
    *,
    log_bin: bool,
    ignored: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """The tool's arguments (after ``--defaults-file``) for one consistent dump."""
    args = base_arguments()
    if config.single_transaction:
        args.append("--single-transaction")
    args.append("--routines" if config.routines else "--skip-routines")
    args.append("--skip-events")  # read with SQL instead: see events.py
    if not config.triggers:
        args.append("--skip-triggers")
    for name, wanted in (
        ("no-data", config.no_data),
        ("no-create-info", config.no_create_info),
        ("hex-blob", config.hex_blob),
    ):
        if wanted:
            args.append("--" + name)
    if config.no_tablespaces:
        args.append("--no-tablespaces")
    if tool.flavour is Flavour.MARIADB:
        args.append("--dump-history")  # system-versioned tables keep their history
        if log_bin:
            args += ["--master-data=2", "--gtid"]
    else:
        if not config.column_statistics:
            args.append("--column-statistics=0")
        args.append(f"--set-gtid-purged={config.set_gtid_purged}")
        if log_bin:
            source_data = "--source-data=2" if tool.version >= (8, 0, 26) else "--master-data=2"
            args.append(source_data)
    # The tool compares "database.table" as one string, so any name is safe here.
    args += [f"--ignore-table={database}.{table}" for database, table in ignored]
    # Always --databases: each database's section starts with its CREATE DATABASE.
    return [*args, "--databases", "--", *databases]


_CHANGE_MASTER = re.compile(
    rb"^-- CHANGE (?:MASTER|REPLICATION SOURCE) TO (?:MASTER|SOURCE)_LOG_FILE='([^']+)',"
    rb" (?:MASTER|SOURCE)_LOG_POS=(\d+)",
    re.M,
)
_GTID = re.compile(
    rb"^-- SET GLOBAL gtid_slave_pos='([^']*)'"
    # MySQL 8.0 and later write the '+' (add to the set); 5.7 wrote the set alone.
    rb"|^SET @@GLOBAL\.GTID_PURGED=(?:/\*!80000 '\+'\*/ )?'([^']*)'",
    re.M,
)


def parse_binlog_position(head: bytes, tail: bytes = b"") -> BinlogPosition | None:
    """Binary-log coordinates the tool wrote, as comments, at the top of the dump
    (MariaDB writes the GTID position at the end)."""
    found = _CHANGE_MASTER.search(head)
    if not found:
        return None
    gtid = _GTID.search(head) or _GTID.search(tail)
    gtid_text = next((g for g in gtid.groups() if g is not None), b"") if gtid else None
    return BinlogPosition(
        file=found.group(1).decode(),
        position=int(found.group(2)),
        gtid=gtid_text.decode() if gtid_text is not None else None,
    )


class DumpProcess:
    """A running dump tool; :attr:`stream` is its output, :meth:`finish` its verdict.

    Use as a context manager: leaving the block kills a tool that is still
    running (a cancelled backup) and closes every descriptor.
    """

    def __init__(self, tool: Tool, args: Sequence[str], conn: Connection) -> None:
        self.tool = tool
        self._args = list(args)
        self._conn = conn
        self._stderr = bytearray()
        self._head = bytearray()
        self._tail = b""
        self._drained = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr_thread: threading.Thread | None = None

    def __enter__(self) -> DumpProcess:
        with option_pipe(self._conn, self.tool.flavour) as (fd, defaults):
            self._process = subprocess.Popen(
                [*large_writes(), self.tool.path, defaults, *self._args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(fd,),
                bufsize=0,  # read by DumpStream.readinto, unbuffered
            )
        assert self._process.stdout is not None
        # A larger pipe (kernel memory, not ours): the tool writes ahead while we send.
        enlarge_pipe(self._process.stdout.fileno(), _PIPE)
        self._stderr_thread = threading.Thread(target=self._collect_stderr, daemon=True)
        self._stderr_thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        assert process.stdout is not None
        process.stdout.close()
        self._drained.set()

    def _collect_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        for line in self._process.stderr:
            self._stderr += line
            del self._stderr[:-_STDERR_KEEP]

    @property
    def name(self) -> str:
        return self.tool.path.rsplit("/", 1)[-1]

    def stream(self) -> DumpStream:
        """The tool's output; read it to the end (or close it) exactly once."""
        assert self._process is not None and self._process.stdout is not None
        # bufsize=0 made it the pipe's raw FileIO, which reads into a buffer.
        return DumpStream(self, cast(io.RawIOBase, self._process.stdout))

    def _record(self, data: memoryview) -> None:
        if len(self._head) < _HEAD_BYTES:
            self._head += data[: _HEAD_BYTES - len(self._head)]
        self._tail = (self._tail + data[-_TAIL_BYTES:].tobytes())[-_TAIL_BYTES:]

    def binlog_position(self) -> BinlogPosition | None:
        return parse_binlog_position(bytes(self._head), self._tail)

    def verdict(self) -> DumpError | None:
        """Why the dump failed, or None; call once the output has been read to its end."""
        assert self._process is not None
        code = self._process.wait()
        if self._stderr_thread is not None:
            self._stderr_thread.join()
        message = self._stderr.decode(errors="replace").strip()
        last = message.splitlines()[-1] if message else ""
        if code != 0:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            return DumpError(f"{self.name} {how}: {last or 'no error message'}")
        if not self._tail.rstrip().endswith(TRAILER):
            return DumpError(
                f"{self.name} reported no error, but its output ended without "
                f"'{TRAILER.decode()}': the dump is incomplete"
            )
        return None

    def finish(self) -> None:
        """Wait until the output was consumed, then raise :class:`DumpError` if it failed."""
        self._drained.wait()
        error = self.verdict()
        if error is not None:
            raise error


class DumpStream(io.RawIOBase):
    """The dump's bytes, as read; the end of a failed dump raises instead of a clean EOF.

    The pipe is read without Python's buffering, straight into the caller's
    buffer (:meth:`readinto`): each byte is copied once on its way in, by the
    kernel, where a buffered ``read`` copied it twice more (into the reader's
    buffer, then into a new ``bytes``)."""

    def __init__(self, dump: DumpProcess, pipe: io.RawIOBase) -> None:
        super().__init__()
        self._dump = dump
        self._pipe = pipe
        self._done = False
        self._bytes = 0
        self._released = 0
        self._started = self._reported = time.monotonic()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Fill ``buffer`` (less only at the end of the dump); 0 once it is over."""
        if self._done:
            return 0
        with memoryview(buffer) as view, view.cast("B") as target:
            filled = 0
            while filled < len(target) and (n := self._pipe.readinto(target[filled:])):
                filled += n
            if filled:
                self._dump._record(target[:filled])
                self._progress(filled)
                return filled
        self._done = True
        self._dump._drained.set()
        error = self._dump.verdict()
        if error is not None:
            raise error
        return 0

    def _progress(self, n: int) -> None:
        self._bytes += n
        if self._bytes - self._released >= _RELEASE_BYTES:
            self._released = self._bytes
            release_free_memory()
        now = time.monotonic()
        if now - self._reported >= _PROGRESS_SECONDS:
            self._reported = now
            rate = self._bytes / 2**20 / (now - self._started)
            _log.info(f"{self._dump.name}: {self._bytes / 2**20:.0f} MiB dumped ({rate:.1f} MiB/s)")

    def close(self) -> None:
        """Skip what was not read, so the tool can finish and be judged."""
        if not self.closed:
            try:
                while not self._done and self.read(_BLOCK):
                    pass
            except DumpError:
                pass  # finish() reports it to the importer
            finally:
                self._dump._drained.set()
        super().close()
