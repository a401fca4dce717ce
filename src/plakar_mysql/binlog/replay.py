"""The replay: apply the archived transactions after the target's restored point, up to a stop.

Plakar hands the binary logs over one at a time, in name order, then
``/manifest.json``.  Each log streams through three stages:

1. a :class:`~plakar_mysql.binlog.events.Scanner` walks its events and keeps
   the file's own header events and the transactions to apply: those after
   the start point (the target's ``@@gtid_slave_pos``, or ``start_position``)
   and before the stop, whole transactions only (a stop given as
   ``file:position`` cuts at that event, and the cut transaction is rolled
   back);
2. ``mariadb-binlog -`` turns what is kept into SQL;
3. one ``mariadb`` client, for the whole replay, runs it.

Before anything is written, the first log's GTID list (the position before its
first event) is compared with the start point: if transactions between them
are not in the archive (a log purged before it was archived), the replay stops
with an error that names them.  Each later log must follow the one before.

A failing statement stops the client; the replay names the event (file,
position, GTID) and the server's error, and records on the target the position
of the last transaction applied, so the same restore run again after fixing
the cause goes on from there.  A successful replay records its end the same
way: no transaction is ever applied twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any, NoReturn

import pymysql

from kloset_sdk import ConnectorInfo, Exporter, Options, Record, Report, export_each
from kloset_sdk.records import Content
from kloset_sdk.transport import enlarge_pipe
from plakar_mysql.binlog import SCHEME
from plakar_mysql.binlog.archive import BINLOG_DIR, MANIFEST_PATH
from plakar_mysql.binlog.events import GTID, BinlogFormatError, FileFacts, Scanner
from plakar_mysql.binlog.gtid import Gtid, GtidError, Position
from plakar_mysql.binlog.point import restored_point, set_restored_point
from plakar_mysql.binlog.tools import binlog_tool, client_tool
from plakar_mysql.credentials import option_pipe
from plakar_mysql.dump import MAX_PACKET
from plakar_mysql.flavour import Flavour, Tool
from plakar_mysql.kinds import BINLOG, not_ours, refuse_foreign_options
from plakar_mysql.loader import StderrTail
from plakar_mysql.locks import DEFAULT_LOCK_WAIT_TIMEOUT, bounds_sql, holders
from plakar_mysql.options import Config, ConfigError, parse
from plakar_mysql.server import connect, server_info

_BLOCK = 1 << 20
_DATETIME = "%Y-%m-%d %H:%M:%S"
_FILE_POSITION = re.compile(r"^(?P<file>[^\s:/]+):(?P<pos>\d+)$")
_LOG_NUMBER = re.compile(r"^(?P<base>.*)\.(?P<number>\d+)$")
# The comment line mariadb-binlog writes before each event.
_EVENT_LINE = re.compile(
    rb"^#\d{6} +\d+:\d\d:\d\d server id \d+ +end_log_pos (\d+)(?P<rest>[^\n]*)$", re.M
)
_GTID_TEXT = re.compile(rb"\tGTID (\d+)-(\d+)-(\d+)")
_ERROR_LINE = re.compile(r"at line (\d+)")
_RECENT = 200_000  # events remembered to name the one that failed
MANIFEST_LIMIT = 16 << 20  # some 40,000 logs' entries: a larger manifest is not ours
_SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")
# The pipes between the stages are widened to 1 MiB (enlarge_pipe): a stage writes
# a whole block at once, and the three processes wake each other far less often.


class ReplayError(RuntimeError):
    """The replay cannot go on; one line for the user."""


def log(message: str) -> None:
    print(f"plakar-mysql: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True, order=True)
class FilePosition:
    file: str
    pos: int

    def __str__(self) -> str:
        return f"{self.file}:{self.pos}"


def _point(name: str, text: str) -> Position | FilePosition:
    found = _FILE_POSITION.match(text.strip())
    if found:
        return FilePosition(found["file"], int(found["pos"]))
    try:
        return Position.parse(text)
    except GtidError as exc:
        raise ConfigError(
            f"option {name}: {text!r} is neither a GTID position (0-1-57) nor file:position "
            f"(mysql-bin.000012:4711) ({exc})"
        ) from None


@dataclass(frozen=True)
class Bounds:
    """Where the replay starts and stops, as the user gave it."""

    start: Position | FilePosition | None = None
    stop_time: int | None = None  # Unix time: the first transaction at or after it is not applied
    stop_text: str | None = None
    stop: Position | FilePosition | None = None

    @classmethod
    def from_options(cls, values: Mapping[str, Any]) -> Bounds:
        start = values.get("start_position")
        stop = values.get("stop_position")
        stop_datetime = values.get("stop_datetime")
        if stop is not None and stop_datetime is not None:
            raise ConfigError("give stop_datetime or stop_position, not both")
        stop_time = None
        if stop_datetime is not None:
            try:
                moment = datetime.strptime(stop_datetime.strip(), _DATETIME)
            except ValueError:
                raise ConfigError(
                    f"option stop_datetime: {stop_datetime!r} is not 'YYYY-MM-DD HH:MM:SS'"
                ) from None
            stop_time = int(time.mktime(moment.timetuple()))  # local time, as mariadb-binlog
        bounds = cls(
            start=None if start is None else _point("start_position", start),
            stop_time=stop_time,
            stop_text=stop_datetime,
            stop=None if stop is None else _point("stop_position", stop),
        )
        if isinstance(bounds.start, Position) and isinstance(bounds.stop, Position):
            behind = bounds.start.ahead_of(bounds.stop)
            if any(ours.domain in bounds.stop.domains for _, ours in behind):
                raise ConfigError(
                    f"stop_position {bounds.stop} is not after start_position {bounds.start}"
                )
        return bounds

    def describe_stop(self) -> str:
        if self.stop_time is not None:
            return f"stop_datetime {self.stop_text}"
        return f"stop_position {self.stop}" if self.stop is not None else "the archive's end"


def _log_number(name: str) -> tuple[str, int] | None:
    found = _LOG_NUMBER.match(name)
    return (found["base"], int(found["number"])) if found else None


class Selector:
    """Decides, event by event across the logs, what the replay applies.

    A transaction (a GTID event and what follows it) is applied whole or not
    at all, except at a ``file:position`` stop, which cuts at that event.
    :attr:`applied` is the start point advanced by every transaction kept
    and complete.
    """

    def __init__(self, bounds: Bounds, start: Position, start_at: FilePosition | None) -> None:
        self.bounds = bounds
        self.applied = start
        self.start = start
        self.start_at = start_at
        self.started = start_at is None
        self.stopped = False
        self.stop_reason = ""
        self.kept = 0  # transactions
        self.first_time: int | None = None
        self.last_time: int | None = None
        self.file = ""
        self.recent: deque[tuple[str, int, int]] = deque(maxlen=_RECENT)  # file, start, end
        self._pending: Gtid | None = None
        self._in_group = False
        self._keep = False

    def begin(self, name: str) -> None:
        self.file = name
        self._in_group = False
        stop = self.bounds.stop
        if isinstance(stop, FilePosition) and name > stop.file:
            self._stop(f"stop_position {stop}")  # the stop was at the end of an earlier log

    def end(self) -> None:
        self._settle()

    def _settle(self) -> None:
        if self._pending is not None:
            self.applied = self.applied.advanced([self._pending])
            self._pending = None

    def _stop(self, reason: str) -> bool:
        if not self.stopped:
            self.stopped = True
            self.stop_reason = reason
            if self._pending is not None:  # cut inside a transaction: it is rolled back
                self._pending = None
                self.kept -= 1
        return False

    def _stop_reached(self) -> bool:
        stop = self.bounds.stop
        if not isinstance(stop, Position):
            return False
        return all(self.applied.seq(g.domain) >= g.seq for g in stop.gtids())

    def __call__(self, offset: int, length: int, kind: int, stamp: int, gtid: Gtid | None) -> bool:
        keep = self._decide(offset, kind, stamp, gtid)
        if keep:
            self.recent.append((self.file, offset, offset + length))
        return keep

    def _decide(self, offset: int, kind: int, stamp: int, gtid: Gtid | None) -> bool:
        if self.stopped:
            return False
        starts = kind == GTID and gtid is not None
        if starts:
            self._settle()  # the transaction before is whole
        stop = self.bounds.stop
        if isinstance(stop, FilePosition) and self.file == stop.file and offset >= stop.pos:
            return self._stop(f"stop_position {stop}")
        if not starts:
            # The file's own header events, or the rest of the current transaction.
            return self._keep if self._in_group else True
        assert gtid is not None
        self._in_group = True
        self._keep = False
        if self.bounds.stop_time is not None and stamp >= self.bounds.stop_time:
            return self._stop(f"stop_datetime {self.bounds.stop_text}")
        if isinstance(stop, Position):
            if self._stop_reached():
                return self._stop(f"stop_position {stop}")
            limit = stop.get(gtid.domain)
            if limit is not None and gtid.seq > limit.seq:
                return False
        if not self.started:
            assert self.start_at is not None
            if self.file != self.start_at.file or offset < self.start_at.pos:
                return False
            self.started = True
        if self.start.covers(gtid):
            return False
        self._keep = True
        self._pending = gtid
        self.kept += 1
        if self.first_time is None:
            self.first_time = stamp
        self.last_time = stamp
        return True

    def event_at(self, file: str, end: int) -> int | None:
        """The start of the kept event of ``file`` that ends at ``end``, if remembered."""
        for name, start, stop in reversed(self.recent):
            if name == file and stop == end:
                return start
        return None


@dataclass(frozen=True)
class _Marker:
    line: int  # of the event's comment line in the client's input
    file: str
    end: int  # end_log_pos
    gtid: Gtid | None


class _Client:
    """The one ``mariadb`` client of the replay, and what it was sent.

    It remembers where each event's comment line fell in its input (a bounded
    window: the client is never far behind), so that the line of its error
    names an event and a transaction.
    """

    def __init__(self, tool: Tool, config: Config, base: Position, lock_wait: int) -> None:
        self.name = tool.path.rsplit("/", 1)[-1]
        self.lines = 0
        self.markers: deque[_Marker] = deque()
        self.base = base  # the start advanced by the transactions of markers dropped
        with option_pipe(config.connection, tool.flavour) as (fd, defaults):
            self.process = subprocess.Popen(
                [
                    tool.path,
                    defaults,
                    f"--init-command={bounds_sql(lock_wait)}",
                    "--batch",
                    "--silent",
                    "--binary-mode",  # the tool's output holds raw bytes
                    *tool.sandbox_args,  # a logged \! or connect must not run
                    f"--max-allowed-packet={MAX_PACKET}",
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(fd,),
            )
        assert self.process.stdin is not None and self.process.stderr is not None
        enlarge_pipe(self.process.stdin.fileno())
        self.errors = StderrTail(self.process.stderr)

    def send(self, file: str, text: bytes) -> None:
        """Whole lines of SQL; raises BrokenPipeError if the client has stopped."""
        line, at = self.lines, 0
        for found in _EVENT_LINE.finditer(text):
            line += text.count(b"\n", at, found.start()) + 1
            at = found.start() + 1
            gtid_text = _GTID_TEXT.search(found["rest"]) if b"GTID" in found["rest"] else None
            gtid = Gtid(*(int(g) for g in gtid_text.groups())) if gtid_text else None
            self.markers.append(_Marker(line, file, int(found[1]), gtid))
            line -= 1  # counted again from this line's start
        if len(self.markers) > _RECENT:
            dropped = [self.markers.popleft() for _ in range(len(self.markers) - _RECENT)]
            self.base = self.base.advanced(m.gtid for m in dropped if m.gtid is not None)
        self.lines += text.count(b"\n")
        assert self.process.stdin is not None
        self.process.stdin.write(text)

    def finish(self) -> int:
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()
        return self.process.wait()

    def error(self) -> str:
        return self.errors.text() or f"{self.name} exit status {self.process.poll()}"

    def failed_at(self) -> tuple[_Marker | None, Gtid | None, Position]:
        """The event and transaction the client failed on, and the position before it."""
        found = _ERROR_LINE.search(self.error())
        if found is None:
            return None, None, self.base
        line = int(found[1])
        before = [m for m in self.markers if m.line <= line]
        event = before[-1] if before else None
        failing = next((m for m in reversed(before) if m.gtid is not None), None)
        applied = self.base.advanced(
            m.gtid
            for m in before
            if m.gtid is not None and (failing is None or m.line < failing.line)
        )
        return event, failing.gtid if failing else None, applied

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class _Feeder(threading.Thread):
    """Feeds what is kept of one log to ``mariadb-binlog``'s stdin, in a thread: the
    head already read, then the rest as it streams in, up to the stop."""

    def __init__(
        self,
        sink: IO[bytes],
        scanner: Scanner,
        head: list[bytes],
        stream: Content,
        selector: Selector,
    ) -> None:
        super().__init__(name="binlog-feed", daemon=True)
        self.sink, self.scanner, self.head = sink, scanner, head
        self.stream, self.selector = stream, selector
        self.error: BaseException | None = None
        self.ended = False  # the log was read to its end

    def run(self) -> None:
        try:
            for first in self.head:
                self.sink.write(first)
            while not self.selector.stopped:
                block = self.stream.read(_BLOCK)
                if not block:
                    self.scanner.finish()
                    self.ended = True
                    break
                for piece in self.scanner.feed(block):
                    self.sink.write(piece)
        except BrokenPipeError:
            pass  # the tool stopped: its own error says why
        except BaseException as exc:
            self.error = exc
        finally:
            with contextlib.suppress(BrokenPipeError):
                self.sink.close()


class Replay:
    """One replay into one target: the logs arrive one by one through :meth:`file`."""

    def __init__(self, config: Config, bounds: Bounds) -> None:
        self.config = config
        self.bounds = bounds
        self.database = config.databases[0] if config.databases else None
        self.lock_wait = int(config.values.get("lock_wait_timeout", DEFAULT_LOCK_WAIT_TIMEOUT))
        self.seen: dict[str, int | None] = {}  # each log received: its size (None: not read)
        self._db: pymysql.connections.Connection[Any] | None = None
        self._selector: Selector | None = None
        self._client: _Client | None = None
        self._binlog: Tool | None = None
        self._previous: FileFacts | None = None
        self._files = 0
        self.manifest_checked = False

    # -- before the first log ------------------------------------------------------

    def _begin(self) -> Selector:
        conn = self.config.connection
        self._db = db = connect(conn)
        with db.cursor() as cursor:
            cursor.execute(bounds_sql(self.lock_wait))
        server = server_info(db)
        if server.read_only:
            raise ReplayError(
                f"{conn.address} is read-only (read_only=ON, a replica?): nothing was applied"
            )
        if server.flavour is not Flavour.MARIADB:
            raise ReplayError(
                f"{conn.address} is {server.flavour.title}: the binary-log replay supports "
                "MariaDB targets only (MariaDB GTIDs); nothing was applied"
            )
        start = self.bounds.start
        if start is None:
            point = restored_point(db)
            if not point:
                raise ReplayError(
                    f"{conn.address} has no restored point (@@gtid_slave_pos is empty): restore "
                    "a base backup first, or give start_position=; nothing was applied"
                )
            start = point
            log(f"starting after the target's restored point {point} (@@gtid_slave_pos)")
        else:
            log(f"starting at start_position {start}")
        selector = Selector(
            self.bounds,
            start if isinstance(start, Position) else Position(),
            start if isinstance(start, FilePosition) else None,
        )
        self._binlog = binlog_tool(server.flavour, conn.bin_dir)
        self._client = _Client(
            client_tool(server.flavour, conn.bin_dir), self.config, selector.start, self.lock_wait
        )
        self._selector = selector
        return selector

    # -- each log -------------------------------------------------------------------

    def file(self, name: str, stream: Content) -> None:
        if self._selector is not None and self._selector.stopped:
            self.seen[name] = None
            log(f"{name}: after the stop, not read")
            return
        selector = self._selector or self._begin()
        selector.begin(name)
        scanner = Scanner(name, select=selector)
        try:
            head = read_head(scanner, stream)
        except BinlogFormatError as exc:
            self.fail(str(exc))  # before any of its bytes is applied
        self._check_follows(scanner.facts, selector)
        self._previous = scanner.facts
        whole = self._apply(name, scanner, head, stream)
        selector.end()
        self.seen[name] = scanner.offset if whole else None
        self._files += 1

    def check_manifest(self, path: str, data: bytes) -> None:
        """The snapshot's logs must be those its manifest lists, with their sizes;
        else stop, saying what was applied (the manifest comes after the logs)."""
        if len(data) > MANIFEST_LIMIT:
            self.fail(f"{path} is larger than {MANIFEST_LIMIT} bytes: not a binlog manifest")
        try:
            listed = _listed_logs(path, data)
        except ReplayError as exc:
            self.fail(str(exc))
        absent = [name for name in listed if name not in self.seen]
        if absent:
            self.fail(f"{path} lists {_names(absent)}, absent from the snapshot")
        extra = [name for name in self.seen if name not in listed]
        if extra:
            self.fail(f"{BINLOG_DIR}/{extra[0]} is in the snapshot but not in {path}")
        for name, size in self.seen.items():
            if size is not None and size != listed[name]:
                self.fail(f"{BINLOG_DIR}/{name} holds {size} bytes, {path} says {listed[name]}")
        self.manifest_checked = True

    def _check_follows(self, facts: FileFacts, selector: Selector) -> None:
        """Nothing may be missing between the start (or the previous log) and this log."""
        previous = self._previous
        if previous is not None:
            numbers = _log_number(previous.name), _log_number(facts.name)
            if numbers[0] and numbers[1] and numbers[1] != (numbers[0][0], numbers[0][1] + 1):
                self.fail(f"{facts.name} does not follow {previous.name}: a log is missing")
            if facts.start is not None and previous.end is not None:
                missing = facts.start.ahead_of(previous.end)
                if missing:
                    self.fail(f"{facts.name} does not follow {previous.name}: " + _gap(missing))
            return
        start_at = selector.start_at
        if start_at is not None:
            if start_at.file < facts.name:
                raise ReplayError(
                    f"start_position {start_at} is before the archive's first log {facts.name}: "
                    "nothing was applied"
                )
            return
        if facts.start is None:
            raise ReplayError(f"{facts.name} has no GTID list: not a MariaDB binary log")
        missing = facts.start.ahead_of(selector.start)
        if missing:
            raise ReplayError(
                f"the archive starts with {facts.name} at GTID position {facts.start}, after the "
                f"start point {selector.start}: {_gap(missing)} (purged before they were "
                "archived?); nothing was applied"
            )

    def _apply(self, name: str, scanner: Scanner, head: list[bytes], stream: Content) -> bool:
        """Replay the log; whether it was read to its end (not if the stop came first)."""
        assert self._binlog is not None and self._client is not None
        selector = self._selector
        assert selector is not None
        args = [self._binlog.path, "--no-defaults"]
        if self.database is not None:
            args.append(f"--database={self.database}")
        binlog = subprocess.Popen(
            [*args, "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert binlog.stdin is not None and binlog.stdout is not None and binlog.stderr is not None
        tool_errors = StderrTail(binlog.stderr)  # drained as it runs: a full pipe would block it
        enlarge_pipe(binlog.stdin.fileno())
        enlarge_pipe(binlog.stdout.fileno())
        feeder = _Feeder(binlog.stdin, scanner, head, stream, selector)
        feeder.start()
        try:
            self._relay(name, binlog)
        finally:
            if binlog.poll() is None and self._client.process.poll() is not None:
                binlog.kill()
            feeder.join()
            code = binlog.wait()
            tool_error = tool_errors.text()
            binlog.stdout.close()
            binlog.stderr.close()
        if feeder.error is not None:
            self.fail(f"{name}: {feeder.error}")
        if code != 0:
            self.fail(f"{self._binlog.path} failed on {name}: {tool_error or f'status {code}'}")
        return feeder.ended

    def _relay(self, name: str, binlog: subprocess.Popen[bytes]) -> None:
        """The tool's SQL to the client, whole lines at a time."""
        assert binlog.stdout is not None and self._client is not None
        out = binlog.stdout.fileno()
        line: list[bytes] = []  # the start of a line not yet ended (a statement may be long)
        try:
            # What the tool has written so far: the client never waits for a
            # whole block to fill while there is SQL to run.
            while block := os.read(out, _BLOCK):
                cut = block.rfind(b"\n") + 1
                if not cut:
                    line.append(block)
                    continue
                if line:
                    line.append(block[:cut])
                    self._client.send(name, b"".join(line))
                    line = []
                else:
                    self._client.send(name, block[:cut])
                if cut < len(block):
                    line.append(block[cut:])
            if line:
                self._client.send(name, b"".join(line) + b"\n")
        except BrokenPipeError:
            binlog.kill()
            self._client_failed()

    # -- the end --------------------------------------------------------------------

    def _client_failed(self) -> None:
        assert self._client is not None and self._selector is not None
        self._client.finish()
        event, gtid, applied = self._client.failed_at()
        where = "an event"
        if event is not None:
            start = self._selector.event_at(event.file, event.end)
            pos = (
                f"{event.file}:{start}"
                if start is not None
                else f"{event.file} ending at {event.end}"
            )
            where = f"the event at {pos}" + (f" (transaction {gtid})" if gtid else "")
        self._record(applied)
        error = self._client.error()
        if "ERROR 1205" in error:
            error += f" (waited {self.lock_wait} s, lock_wait_timeout; {self._holders()})"
        raise ReplayError(
            f"the replay stopped at {where}: {error}; the transactions before it "
            f"are applied (@@gtid_slave_pos is {applied or 'empty'}): fix the cause and run the "
            "same restore again to go on from there"
        )

    def _holders(self) -> str:
        """Who holds the lock the client waited for, in the databases it may write."""
        assert self._db is not None
        schemas = [self.database] if self.database is not None else []
        if not schemas:
            try:
                with self._db.cursor() as cursor:
                    cursor.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
                    rows = cursor.fetchall()
            except pymysql.err.MySQLError as exc:
                return f"the lock holder could not be read ({exc.args[-1]})"
            schemas = [str(row[0]) for row in rows if row[0] not in _SYSTEM_SCHEMAS]
        return holders(self._db, [(schema, "") for schema in schemas])

    def fail(self, message: str) -> NoReturn:
        """Stop now: the client finishes what it was sent, and what was applied so far
        is recorded and said (killing it would leave some applied but unrecorded)."""
        applied = self._finish_client()
        raise ReplayError(
            f"{message}; "
            + (
                f"the transactions up to {applied} are applied"
                if applied
                else "nothing was applied"
            )
        )

    def _finish_client(self) -> Position | None:
        """Let the client end; record and return the position it reached."""
        client, selector = self._client, self._selector
        if client is None or selector is None:
            return None
        if client.finish() != 0:
            self._client_failed()
        selector.end()
        if selector.kept:
            self._record(selector.applied)
            return selector.applied
        return None

    def _record(self, applied: Position) -> None:
        assert self._selector is not None and self._db is not None
        if applied == self._selector.start or not applied:
            return
        try:
            set_restored_point(self._db, applied)
        except pymysql.err.MySQLError as exc:
            log(f"warning: could not set @@gtid_slave_pos to {applied}: {exc.args[-1]}")

    def finish(self) -> None:
        selector = self._selector
        if selector is None:
            log("no binary log in the snapshot: nothing to replay")
            return
        if not self.manifest_checked:
            log(
                f"warning: no {MANIFEST_PATH} came with the logs (a part of a snapshot?): "
                "they were not checked against it"
            )
        applied = self._finish_client()
        span = ""
        if selector.first_time is not None and selector.last_time is not None:
            span = f" (from {_when(selector.first_time)} to {_when(selector.last_time)})"
        if not selector.kept:
            log(
                f"nothing to replay: no transaction of the {self._files} log(s) is after the "
                f"start point {selector.start or selector.start_at} and before "
                f"{self.bounds.describe_stop()}"
            )
            return
        ended = selector.stop_reason or "the end of the archive"
        log(
            f"applied {selector.kept} transaction(s){span} from {self._files} log(s), up to "
            f"{ended}; @@gtid_slave_pos is now {applied}"
        )
        if not selector.stopped and (self.bounds.stop_time is not None or self.bounds.stop):
            log(
                f"warning: the archive ends before {self.bounds.describe_stop()}: everything "
                "archived was applied; a later binlog snapshot may hold more"
            )

    def close(self) -> None:
        if self._client is not None:
            self._client.kill()
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None


def read_head(scanner: Scanner, stream: Content) -> list[bytes]:
    """The start of a log, read until its GTID list is known (the list follows the
    format description), and what ``scanner`` kept of it: a block or two, whatever
    the log's size, even if it has no GTID list."""
    head: list[bytes] = []
    while not scanner.past_head:
        block = stream.read(_BLOCK)
        if not block:
            break
        head += [bytes(piece) for piece in scanner.feed(block)]
    return head


def _read_upto(stream: Content, limit: int) -> bytes:
    """The content, or its first ``limit`` bytes or a little more if it is longer."""
    data = bytearray()
    while len(data) < limit and (block := stream.read(_BLOCK)):
        data += block
    return bytes(data)


def _listed_logs(path: str, data: bytes) -> dict[str, int]:
    """The logs a binlog manifest lists, with their sizes; raises ReplayError."""
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise ReplayError(f"{path} is not JSON ({exc})") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(manifest, dict) or manifest.get("kind") != "binlog":
        raise ReplayError(f'{path} is not the manifest of a binlog snapshot (no "kind": "binlog")')
    listed: dict[str, int] = {}
    for entry in files if isinstance(files, list) else [None]:
        name = entry.get("name") if isinstance(entry, dict) else None
        size = entry.get("size") if isinstance(entry, dict) else None
        if not isinstance(name, str) or type(size) is not int or size < 0 or name in listed:
            raise ReplayError(f'{path}: "files" must list each log once, with its name and size')
        listed[name] = size
    return listed


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _gap(missing: list[tuple[Gtid | None, Gtid]]) -> str:
    parts = []
    for have, wanted in missing:
        first = (have.seq if have else 0) + 1
        parts.append(f"transactions {wanted.domain}-*-{first} to {wanted} are missing")
    return "; ".join(parts)


def _when(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, UTC).astimezone().strftime(_DATETIME)


class BinlogExporter(Exporter):
    """Replays a binary-log snapshot into a running server."""

    def __init__(self, options: Options, scheme: str, config: Mapping[str, str]) -> None:
        refuse_foreign_options(config, BINLOG, backup=False)
        self.config: Config = parse("binlog_exporter", scheme, config, (SCHEME,))
        if len(self.config.databases) > 1:
            raise ConfigError(
                "option databases: the replay filters one database (as mariadb-binlog "
                "--database); give one, or none to replay every database"
            )
        self.bounds = Bounds.from_options(self.config.values)

    def info(self) -> ConnectorInfo:
        return ConnectorInfo(origin=self.config.connection.address, type=SCHEME, root="/")

    def ping(self) -> None:
        connect(self.config.connection).close()

    def export(self, records: Iterator[Record], report: Report) -> None:
        replay = Replay(self.config, self.bounds)
        try:
            failure = export_each(records, report, lambda r: self._one(replay, r))
            if failure is None:
                replay.finish()
        finally:
            replay.close()
        if failure is not None:
            raise failure

    def _one(self, replay: Replay, record: Record) -> None:
        if record.opener is None:  # a directory
            return
        path = record.pathname
        stream = record.open()
        try:
            if path.endswith(MANIFEST_PATH):
                replay.check_manifest(path, _read_upto(stream, MANIFEST_LIMIT + 1))
                return
            directory, _, name = path.rpartition("/")
            if not directory.endswith(BINLOG_DIR) or not name:
                replay.fail(not_ours(path, BINLOG))
            replay.file(name, stream)
        finally:
            stream.close()
