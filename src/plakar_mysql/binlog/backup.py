"""The archive: every binary log the server still has, as ``/binlog/<file>``.

``SHOW BINARY LOGS`` lists the files and their sizes; each record's content is
read over the network, when Plakar asks for it, by the server's own
``mariadb-binlog --read-from-remote-server --raw`` (one process per file, so
that Plakar can read several at once), whose output file is a symbolic link
to its standard output: the bytes stream through a pipe and never sit whole in
memory or on disk.  A closed file comes back byte for byte as the server
wrote it, so the same file in the next snapshot is the same chunks and costs
nothing; the file being written is cut at the size listed, which is always
the end of a transaction.

Unless ``flush=false``, the backup first runs ``FLUSH BINARY LOGS``: every log
it archives is then closed (the new one holds only its header), so the next
snapshot finds them unchanged and stores only the logs written since.
Without it, the log being written changes between snapshots and its last
chunk (Plakar's chunks average 1 MiB) is stored again each time.

Every record is stamped with the snapshot's start time, so Plakar always reads
the content (the manifest is computed from it) and deduplicates it by chunks.
``/manifest.json`` comes last: per file its size, time span and GTID range
(:mod:`.scanner`), the server's ``gtid_binlog_pos`` and ``server_id``; from MySQL
also its ``server_uuid``, ``gtid_executed`` and ``gtid_purged`` (GTID sets).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pymysql

from kloset_sdk import ConnectorInfo, Flags, Guard, Importer, Options, Record
from plakar_mysql import __version__
from plakar_mysql.binlog import SCHEME
from plakar_mysql.binlog.layout import BINLOG_DIR, MANIFEST_PATH, log_path, manifest_bytes
from plakar_mysql.binlog.scanner import FileFacts, Scanner
from plakar_mysql.core.client import StderrTail
from plakar_mysql.core.credentials import option_pipe
from plakar_mysql.core.errors import PlakarMySQLError
from plakar_mysql.core.flavour import Flavour, Tool
from plakar_mysql.core.grants import session_grants
from plakar_mysql.core.kinds import BINLOG, refuse_foreign_options
from plakar_mysql.core.option_models import BinlogBackupOptions
from plakar_mysql.core.options import Connection
from plakar_mysql.core.server import ServerError, connect, current_user, server_info, session
from plakar_mysql.core.tools import binlog_tool

_BLOCK = 1 << 20
_SECRET_OPTIONS = frozenset({"password", "location", "username"})


_log = logging.getLogger(__name__)


class ArchiveError(PlakarMySQLError, RuntimeError):
    """A binary log could not be read whole; one line for the user."""


class RemoteLog(io.RawIOBase):
    """One binary log read from the server: the first ``size`` bytes of the file.

    The tool starts on the first read (a record Plakar never reads costs
    nothing); :attr:`done` is set once the content was read whole (then
    :attr:`facts` holds what it contains) or abandoned.
    """

    def __init__(self, tool: Tool, conn: Connection, name: str, size: int, guard: Guard) -> None:
        super().__init__()
        self.tool = tool
        self.guard = guard  # removes the directory and kills the tool if the plugin dies
        self._child = contextlib.ExitStack()
        self.conn = conn
        self.name = name
        self.size = size
        self.facts: FileFacts | None = None
        self.error: BaseException | None = None
        self.opened = False
        self.done = threading.Event()
        self._scanner = Scanner(name)
        self._left = size
        self._process: subprocess.Popen[bytes] | None = None
        self._dir: str | None = None
        self._errors: StderrTail | None = None

    def readable(self) -> bool:
        return True

    def opener(self) -> RemoteLog:
        """The record's opener: the content is this object, read once."""
        return self

    def _start(self) -> subprocess.Popen[bytes]:
        self.opened = True
        # --raw writes to <result-file><log name>: that name links to the tool's stdout.
        self._dir = self.guard.temp_dir("plakar-binlog-")
        os.symlink("/dev/stdout", os.path.join(self._dir, self.name))
        with option_pipe(self.conn, self.tool.flavour) as (fd, defaults):
            process = subprocess.Popen(
                [
                    self.tool.path,
                    defaults,
                    "--read-from-remote-server",
                    "--raw",
                    f"--result-file={self._dir}/",
                    "--",
                    self.name,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(fd,),
            )
        self._process = process
        self._child.enter_context(self.guard.child(process))
        assert process.stderr is not None
        self._errors = StderrTail(process.stderr)
        return process

    def _tool_error(self) -> str:
        assert self._process is not None and self._errors is not None
        code = self._process.wait()
        return self._errors.text() or f"exit status {code}"

    def read(self, size: int | None = -1) -> bytes:
        if self.done.is_set() and self._left == 0:
            return b""
        try:
            process = self._process or self._start()
            assert process.stdout is not None
            if self._left == 0:
                self._finish()
                return b""
            want = _BLOCK if size is None or size < 0 else size
            data = process.stdout.read(min(want, self._left))
            if not data:
                raise ArchiveError(
                    f"{self.tool.path.rsplit('/', 1)[-1]} stopped after "
                    f"{self.size - self._left} of {self.size} bytes of {self.name}: "
                    f"{self._tool_error()}"
                )
            self._left -= len(data)
            self._scanner.feed(data)
            if self._left == 0:
                self._finish()
            return data
        except BaseException as exc:
            self.error = exc
            self.close()
            raise

    def _finish(self) -> None:
        """The listed size is read: the file must end on an event boundary there."""
        if self.done.is_set():
            return
        self.facts = self._scanner.finish()
        self._stop()
        self.done.set()

    def _stop(self) -> None:
        process = self._process
        if process is not None:
            if process.poll() is None:
                process.kill()  # the file being written: the rest is for the next snapshot
            process.wait()
            self._child.close()
            assert process.stdout is not None
            process.stdout.close()
        if self._dir is not None:
            self.guard.remove_dir(self._dir)
            self._dir = None

    def close(self) -> None:
        if not self.closed:
            self._stop()
            self.done.set()
        super().close()


def _mysql_facts(db: pymysql.connections.Connection[Any]) -> dict[str, Any]:
    """What a MySQL source says of its GTIDs: its ``server_uuid`` (the uuid of the
    GTIDs it writes), ``gtid_mode`` and ``gtid_purged`` (the transactions no log
    it still has holds: a base older than them cannot be brought forward)."""
    with db.cursor() as cursor:
        cursor.execute("SELECT @@server_uuid, @@GLOBAL.gtid_mode, @@GLOBAL.gtid_purged")
        uuid, mode, purged = cursor.fetchone() or ("", "", "")
    return {
        "server_uuid": str(uuid),
        "gtid_mode": str(mode),
        "gtid_purged": "".join(str(purged or "").split()),
    }


def _binary_logs(db: pymysql.connections.Connection[Any], who: str) -> list[tuple[str, int]]:
    try:
        with db.cursor() as cursor:
            cursor.execute("SHOW BINARY LOGS")
            rows = cursor.fetchall()
    except pymysql.err.MySQLError as exc:
        raise ServerError(
            f"{who} may not list the binary logs (SHOW BINARY LOGS needs the BINLOG MONITOR "
            f"or REPLICATION CLIENT privilege, and reading them REPLICATION SLAVE): {exc.args[-1]}"
        ) from None
    logs = [(str(row[0]), int(row[1])) for row in rows]
    for name, _ in logs:
        if "/" in name or name.startswith(".") or not name.isprintable():
            raise ServerError(f"the server lists a binary log named {name!r}: refusing it")
    return logs


def _check_privileges(db: pymysql.connections.Connection[Any], flavour: Flavour, who: str) -> None:
    """Refuse before anything runs on the server (``FLUSH BINARY LOGS`` above all)
    when the session cannot list and read the logs; roles and ``PUBLIC`` count."""
    listing = "BINLOG MONITOR" if flavour is Flavour.MARIADB else "REPLICATION CLIENT"
    missing = session_grants(db).lacking(["REPLICATION SLAVE", listing])
    if missing:
        names = ", ".join(missing)
        raise ServerError(
            f"{who} lacks what {SCHEME}:// needs: {names} ON *.* (REPLICATION SLAVE reads "
            f"the logs, {listing} lists them; GRANT {names} ON *.* TO ...): nothing was run"
        )


def _flush(db: pymysql.connections.Connection[Any], who: str) -> None:
    """Close the log being written, so that every archived log is final."""
    try:
        with db.cursor() as cursor:
            cursor.execute("FLUSH BINARY LOGS")
    except pymysql.err.MySQLError as exc:
        _log.info(
            f"warning: {who} may not FLUSH BINARY LOGS (needs RELOAD): {exc.args[-1]}; the log "
            "being written is archived as it stands, and its end is stored again next time "
            "(set flush=false to silence this)"
        )


class BinlogImporter(Importer):
    """Archives every binary log of one server."""

    def __init__(self, options: Options, scheme: str, config: Mapping[str, str]) -> None:
        refuse_foreign_options(config, BINLOG, backup=True)
        self.config = BinlogBackupOptions.parse(config, scheme)
        self.guard = options.guard

    def info(self) -> ConnectorInfo:
        conn = self.config.connection
        return ConnectorInfo(origin=conn.address, type=SCHEME, root="/", flags=Flags.STREAM)

    def ping(self) -> None:
        connect(self.config.connection).close()

    def scan(self) -> Iterator[Record]:
        started = datetime.now(UTC)
        conn = self.config.connection
        with session(conn) as (db, server):
            if not server.log_bin:
                raise ServerError(
                    f"binary logging is off on {conn.address} (log_bin=OFF): there is nothing "
                    "to archive; start the server with log-bin"
                )
            _check_privileges(db, server.flavour, current_user(db))
            if self.config.flush:
                _flush(db, current_user(db))
            with db.cursor() as cursor:
                cursor.execute("SELECT @@server_id, @@binlog_format")
                server_id, binlog_format = cursor.fetchone() or (0, "")
            mysql = _mysql_facts(db) if server.flavour is Flavour.MYSQL else {}
            # Read before the list: every transaction up to it is in the listed bytes.
            gtid_binlog_pos = server_info(db).gtid
            if mysql:
                gtid_binlog_pos = "".join(gtid_binlog_pos.split())  # printed with line breaks
                mysql["gtid_executed"] = gtid_binlog_pos
            logs = _binary_logs(db, current_user(db))
        tool = binlog_tool(server.flavour, conn.bin_dir)
        total = sum(size for _, size in logs)
        _log.info(
            f"archiving {len(logs)} binary log(s), {total} bytes, from {server.flavour.title} "
            f"{server.version} at {conn.address} with {tool.path}"
        )
        yield Record.directory("/", started)
        yield Record.directory(BINLOG_DIR, started)
        remote = [RemoteLog(tool, conn, name, size, self.guard) for name, size in logs]
        for item in remote:
            yield Record.file(log_path(item.name), item.opener, started, size=item.size)
        files = [self._facts(item) for item in remote]
        data = manifest_bytes(
            generator=f"plakar-mysql {__version__}",
            flavour=server.flavour.value,
            server={
                "address": conn.address,
                "version": server.version,
                "version_comment": server.version_comment,
                "binlog_format": binlog_format,
            },
            server_id=int(server_id),
            gtid_binlog_pos=gtid_binlog_pos,
            files=files,
            options={
                k: v for k, v in sorted(self.config.given.items()) if k not in _SECRET_OPTIONS
            },
            started_at=started.isoformat(),
            finished_at=datetime.now(UTC).isoformat(),
            extra=mysql,
        )
        yield Record.file(MANIFEST_PATH, lambda: io.BytesIO(data), started, size=len(data))
        _log.info(f"archived {len(logs)} binary log(s), {total} bytes")

    def _facts(self, item: RemoteLog) -> dict[str, Any]:
        """What ``item`` holds, once Plakar has read it (or read here if Plakar did not)."""
        item.done.wait()
        if item.error is not None:
            raise ArchiveError(f"{item.name}: {item.error}")
        if item.facts is None:
            # Plakar took the record without reading it: read it for the manifest only.
            again = RemoteLog(item.tool, item.conn, item.name, item.size, item.guard)
            try:
                while again.read(_BLOCK):
                    pass
            finally:
                again.close()
            item.facts = again.facts
        assert item.facts is not None
        return item.facts.as_json()
