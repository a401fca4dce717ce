"""The restore side: load a snapshot's dump into a server with its own client.

Before anything is loaded, the dump's header says which databases and tables
it holds; the restore refuses to write over a table that already exists
(unless ``overwrite=true``), creates a missing target database with the
source's character set and collation, and makes sure the server accepts rows
as large as the source did.  The dump then streams into the client; any
failing statement fails the restore with the server's error and its line.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pymysql

from kloset_sdk import ConnectorInfo, Exporter, Options, Record, Report, Result
from kloset_sdk.records import Content
from plakar_mysql.credentials import option_pipe
from plakar_mysql.dump import MAX_PACKET
from plakar_mysql.flavour import Flavour, Tool, find_tool
from plakar_mysql.layout import MANIFEST_PATH, DumpHeader
from plakar_mysql.options import Config, ConfigError, parse
from plakar_mysql.server import ServerInfo, connect, server_info

_BLOCK = 1 << 20
_PROGRESS_SECONDS = 5.0


class RestoreError(RuntimeError):
    """The restore cannot go on; one line for the user."""


def quote_identifier(name: str) -> str:
    """A MySQL identifier as a backquoted literal, safe for any name."""
    if "\x00" in name:
        raise RestoreError(f"identifier {name!r} contains a NUL byte")
    return "`" + name.replace("`", "``") + "`"


@dataclass(frozen=True)
class LoadPlan:
    """One dump file to load: into which database (None: the dump selects its own)."""

    database: str | None
    creates: tuple[tuple[str, str, str], ...]  # (database, character set, collation) to create
    tables: Mapping[str, tuple[str, ...] | None]  # database -> tables it writes (None: unknown)
    blind: bool = False  # a plain dump that selects its own databases: what it writes is unknown


def plan_load(header: DumpHeader | None, pathname: str, target: str | None) -> LoadPlan:
    """Decide where a dump file goes, from its header (ours) or its name (a plain dump)."""
    if header is None:
        # A plain dump, e.g. the official integration's /all.sql or /<db>.sql.
        name = pathname.rsplit("/", 1)[-1].removesuffix(".sql")
        if name == "all":
            if target:
                raise RestoreError(
                    f"{pathname} holds several databases: restore it without a database in the URI"
                )
            return LoadPlan(None, (), {}, blind=True)
        database = target or name
        return LoadPlan(database, ((database, "", ""),), {database: None})
    if header.scope == "database":
        source = header.databases[0]
        database = target or source.name
        return LoadPlan(
            database,
            ((database, source.character_set, source.collation),),
            {database: source.tables},
        )
    if target is not None:
        names = ", ".join(d.name for d in header.databases)
        raise RestoreError(
            f"this snapshot holds several databases ({names}) that it restores under their own "
            "names: restore it without a database in the URI"
        )
    return LoadPlan(None, (), {d.name: d.tables for d in header.databases})


def read_first_line(stream: Content, limit: int = 16 << 20) -> tuple[bytes, bytes]:
    """The first line of ``stream`` (with its newline) and whatever was read past it."""
    buffered = b""
    while True:
        end = buffered.find(b"\n")
        if end >= 0:
            return buffered[: end + 1], buffered[end + 1 :]
        if len(buffered) > limit:
            return b"", buffered  # no line this long is a header: treat it all as data
        chunk = stream.read(_BLOCK)
        if not chunk:
            return buffered, b""
        buffered += chunk


def _blocks(first: bytes, stream: Content) -> Iterator[bytes]:
    if first:
        yield first
    while chunk := stream.read(_BLOCK):
        yield chunk


class _StderrTail:
    """Collects a child's stderr in the background, keeping its last lines."""

    def __init__(self, pipe: io.BufferedReader) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._run, args=(pipe,), daemon=True)
        self._thread.start()

    def _run(self, pipe: io.BufferedReader) -> None:
        for raw in pipe:
            self.lines = [*self.lines[-19:], raw.decode(errors="replace").rstrip()]

    def text(self) -> str:
        """The client's error lines (``ERROR ... at line N: ...``), else its last lines."""
        self._thread.join()
        errors = [line for line in self.lines if line.startswith("ERROR")]
        return " | ".join(errors or [line for line in self.lines if line.strip("- ")])


class MySQLExporter(Exporter):
    """Restores a snapshot into a server, under the original or another database name."""

    def __init__(self, options: Options, scheme: str, config: Mapping[str, str]) -> None:
        self.config: Config = parse("exporter", scheme, config)
        if len(self.config.databases) > 1:
            raise ConfigError("restore into one database at most (the URI path or database=)")
        self.target = self.config.databases[0] if self.config.databases else None
        self._server: ServerInfo | None = None
        self._client: Tool | None = None

    def info(self) -> ConnectorInfo:
        conn = self.config.connection
        origin = conn.address + (f"/{self.target}" if self.target else "")
        return ConnectorInfo(origin=origin, type="mysql", root="/")

    def ping(self) -> None:
        connect(self.config.connection).close()

    def export(self, records: Iterator[Record], report: Report) -> None:
        failure: Exception | None = None
        for record in records:
            if failure is not None or record.opener is None:
                report(Result.failed(record, "skipped") if failure else Result.ok(record))
                continue
            try:
                self._restore(record)
                report(Result.ok(record))
            except Exception as exc:
                report(Result.failed(record, exc))
                failure = exc
        if failure is not None:
            raise failure

    def _restore(self, record: Record) -> None:
        if record.pathname.endswith(MANIFEST_PATH):
            return
        if not record.pathname.endswith(".sql"):
            raise RestoreError(f"{record.pathname} is not part of a MySQL snapshot")
        stream = record.open()
        try:
            first_line, rest = read_first_line(stream)
            header = DumpHeader.decode(first_line)
            plan = plan_load(header, record.pathname, self.target)
            with contextlib.closing(connect(self.config.connection)) as db:
                self._server = server_info(db)
                if self._server.read_only:
                    # Even an account allowed to write through read_only should not:
                    # a read-only server is most often a replica.
                    raise RestoreError(
                        f"{self.config.connection.address} is read-only (read_only=ON, a "
                        "replica?): nothing was restored; restore elsewhere or turn read_only off"
                    )
                self._prepare(db, plan, header)
            # The header is a comment: load it too, so error line numbers match the file.
            self._load(record.pathname, first_line + rest, stream, plan)
        finally:
            stream.close()

    def _prepare(
        self, db: pymysql.connections.Connection[Any], plan: LoadPlan, header: DumpHeader | None
    ) -> None:
        overwrite = self.config.flag("overwrite", False)
        if plan.blind and not overwrite:
            raise RestoreError(
                "this plain dump creates its own databases and may replace any table in them: "
                "nothing was restored; set overwrite=true to load it"
            )
        with db.cursor() as cursor:
            for database, tables in plan.tables.items():
                if tables == () or overwrite:
                    continue
                cursor.execute(
                    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
                    (database,),
                )
                present = {row[0] for row in cursor.fetchall()}
                existing = sorted(present if tables is None else set(tables) & present)
                if existing:
                    shown = ", ".join(existing[:5]) + (
                        f" and {len(existing) - 5} more" if len(existing) > 5 else ""
                    )
                    raise RestoreError(
                        f"database {database!r} already holds {shown}: nothing was restored; "
                        "restore into another database, or set overwrite=true"
                    )
            for database, charset, collation in plan.creates:
                cursor.execute(
                    "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (database,)
                )
                if cursor.fetchone():
                    continue
                if not self.config.flag("create_db", True):
                    raise RestoreError(f"database {database!r} does not exist and create_db=false")
                sql = f"CREATE DATABASE {quote_identifier(database)}"
                if charset:
                    sql += f" CHARACTER SET {charset} COLLATE {collation}"
                cursor.execute(sql)
            if header is not None:
                self._fit_packet(cursor, header.max_allowed_packet)

    def _fit_packet(self, cursor: pymysql.cursors.Cursor, needed: int) -> None:
        """Raise the target's max_allowed_packet to the source's, so every dumped row fits."""
        cursor.execute("SELECT @@GLOBAL.max_allowed_packet")
        row = cursor.fetchone()
        current = int(row[0]) if row else 0
        if current >= needed:
            return
        try:
            cursor.execute("SET GLOBAL max_allowed_packet = %s", (needed,))
            print(
                f"plakar-mysql: raised max_allowed_packet from {current} to {needed}"
                " (the source's value)",
                file=sys.stderr,
            )
        except pymysql.err.MySQLError as exc:
            print(
                f"plakar-mysql: warning: the target's max_allowed_packet ({current}) is below the "
                f"source's ({needed}) and could not be raised ({exc.args[-1]}): rows larger than "
                f"{current} bytes will fail to load",
                file=sys.stderr,
            )

    def _client_tool(self) -> Tool:
        if self._client is None:
            assert self._server is not None
            flavour: Flavour = self._server.flavour
            self._client = find_tool(flavour.client_names, flavour, self.config.connection.bin_dir)
        return self._client

    def _load(self, pathname: str, first: bytes, stream: Content, plan: LoadPlan) -> None:
        tool = self._client_tool()
        args = [
            "--batch",
            "--silent",
            f"--max-allowed-packet={MAX_PACKET}",
            "--default-character-set=utf8mb4",
        ]
        if self.config.flag("force", False):
            args.append("--force")
        if plan.database is not None:
            args += ["--database", plan.database]
        where = (
            f"into {plan.database!r}" if plan.database else "under the snapshot's database names"
        )
        print(f"plakar-mysql: restoring {pathname} {where} with {tool.path}", file=sys.stderr)
        with option_pipe(self.config.connection, tool.flavour) as (fd, defaults):
            process = subprocess.Popen(
                [tool.path, defaults, *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(fd,),
            )
        assert process.stdin is not None and process.stderr is not None
        errors = _StderrTail(process.stderr)  # type: ignore[arg-type]
        loaded, started, last = 0, time.monotonic(), time.monotonic()
        try:
            for chunk in _blocks(first, stream):
                process.stdin.write(chunk)
                loaded += len(chunk)
                if time.monotonic() - last >= _PROGRESS_SECONDS:
                    last = time.monotonic()
                    print(
                        f"plakar-mysql: {pathname}: {loaded / 2**20:.1f} MiB loaded",
                        file=sys.stderr,
                    )
            process.stdin.close()
        except BrokenPipeError:
            pass  # the client stopped on an error: its message says which
        finally:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
            code = process.wait()
        message = errors.text()
        if code != 0:
            raise RestoreError(
                f"{tool.path.rsplit('/', 1)[-1]} failed loading {pathname} {where}: "
                f"{message or f'exit status {code}'}"
            )
        if message and self.config.flag("force", False):
            print(
                f"plakar-mysql: {pathname}: errors ignored (force=true): {message}", file=sys.stderr
            )
        elapsed = time.monotonic() - started
        print(
            f"plakar-mysql: restored {pathname}: {loaded / 2**20:.1f} MiB in {elapsed:.1f} s",
            file=sys.stderr,
        )
