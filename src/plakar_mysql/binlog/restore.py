"""The replay: apply the archived transactions after the target's restored point, up to a stop.

Plakar hands the binary logs over one at a time, in name order, then
``/manifest.json``.  Each log streams through three stages:

1. a :class:`~plakar_mysql.binlog.scanner.Scanner` walks its events and keeps
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

Each transaction applied records itself on the target as it commits (a row of
``mysql.gtid_slave_pos``, see :mod:`~plakar_mysql.core.restore_point` and
:class:`Selector`), and the replay starts after what the target records: a
replay that failed, was cancelled or was killed is finished by the same
command run again, and no transaction is ever applied twice.  A failing
statement stops the client; the replay names the event (file, position, GTID),
the server's error and the target's point as read from it.  A replay that
cannot bring the target to the requested point fails (:func:`verdict`).

On a MySQL target the same stages run MySQL's ``mysqlbinlog`` and ``mysql``,
and the point is ``@@gtid_executed``: ``mysqlbinlog`` writes each
transaction's ``SET GTID_NEXT``, so the server records each GTID as its
transaction commits, atomically with it, and skips any transaction whose GTID
it already holds (the scanner leaves those out before).  No record event is
put among the events there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any, NoReturn

import pymysql

from kloset_sdk import ConnectorInfo, Exporter, Guard, Options, Record, Report, export_each
from kloset_sdk.records import Content
from kloset_sdk.transport import enlarge_pipe
from plakar_mysql.binlog import SCHEME
from plakar_mysql.binlog.comments import Comments
from plakar_mysql.binlog.layout import (
    BINLOG_DIR,
    MANIFEST_LIMIT,
    MANIFEST_PATH,
    ManifestError,
    listed_logs,
    log_path,
)
from plakar_mysql.binlog.scanner import (
    FL_COMPLETED_XA,
    FL_PREPARED_XA,
    FL_STANDALONE,
    FL_TRANSACTIONAL,
    QUERY,
    TABLE_MAP,
    XID,
    BinlogFormatError,
    FileFacts,
    Scanner,
)
from plakar_mysql.core.client import MAX_PACKET, StderrTail
from plakar_mysql.core.credentials import hide_secrets, option_pipe
from plakar_mysql.core.errors import PlakarMySQLError, shown
from plakar_mysql.core.flavour import Flavour, Tool
from plakar_mysql.core.grants import session_grants
from plakar_mysql.core.gtid import (
    Gtid,
    GtidError,
    GtidSet,
    Point,
    domain_order,
    parse_point,
)
from plakar_mysql.core.kinds import BINLOG, not_ours, refuse_foreign_options
from plakar_mysql.core.locks import bounds_sql, holders
from plakar_mysql.core.option_models import BinlogRestoreOptions
from plakar_mysql.core.options import ConfigError
from plakar_mysql.core.restore_point import (
    RECORD_COLUMNS,
    RECORD_TABLE,
    next_sub_id,
    point_variable,
    record_sql,
    recorded_point,
    restored_point,
    set_restored_point,
)
from plakar_mysql.core.server import connect, current_user, server_info
from plakar_mysql.core.tools import binlog_tool, client_tool

_BLOCK = 1 << 20
_DATETIME = "%Y-%m-%d %H:%M:%S"
_FILE_POSITION = re.compile(r"^(?P<file>[^\s:/]+):(?P<pos>\d+)$")
_LOG_NUMBER = re.compile(r"^(?P<base>.*)\.(?P<number>\d+)$")
# The comment line mariadb-binlog writes before each event.
_EVENT_LINE = re.compile(
    rb"^#\d{6} +\d+:\d\d:\d\d server id \d+ +end_log_pos (\d+)(?P<rest>[^\n]*)$", re.M
)
_GTID_TEXT = re.compile(rb"\tGTID (\d+)-(\d+)-(\d+)")
# MySQL's mysqlbinlog names a transaction's GTID in the statement after the comment.
_GTID_NEXT = re.compile(
    rb"^SET @@SESSION\.GTID_NEXT= '([0-9a-f-]{36}(?::[A-Za-z0-9_]+)?):(\d+)'", re.M
)
_UUID_COLON = re.compile(r"^[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}:")
_ERROR_LINE = re.compile(r"at line (\d+)")
_RECENT = 200_000  # events remembered to name the one that failed
_SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")
# The pipes between the stages are widened to 1 MiB (enlarge_pipe): a stage writes
# a whole block at once, and the three processes wake each other far less often.


class ReplayError(PlakarMySQLError, RuntimeError):
    """The replay cannot go on; one line for the user."""


_log = logging.getLogger(__name__)


def log(message: str) -> None:
    """Progress or a notice, on one line: the names in it escaped (they come from
    the snapshot and the server, and may hold a line break)."""
    _log.info(escaped(message))


@dataclass(frozen=True, order=True)
class FilePosition:
    file: str
    pos: int

    def __str__(self) -> str:
        return f"{self.file}:{self.pos}"


def _point(name: str, text: str) -> Point | FilePosition:
    found = _FILE_POSITION.match(text.strip())
    if found and not _UUID_COLON.match(text.strip()):  # uuid:57 is a MySQL GTID
        return FilePosition(found["file"], int(found["pos"]))
    try:
        return parse_point(text)
    except GtidError as exc:
        raise ConfigError(
            f"option {name}: {text!r} is neither a GTID position (0-1-57, or MySQL's "
            f"uuid:1-57) nor file:position (mysql-bin.000012:4711) ({exc})"
        ) from None


@dataclass(frozen=True)
class Bounds:
    """Where the replay starts and stops, as the user gave it."""

    start: Point | FilePosition | None = None
    stop_time: int | None = None  # Unix time: the first transaction at or after it is not applied
    stop_text: str | None = None
    stop: Point | FilePosition | None = None

    @classmethod
    def from_options(cls, options: BinlogRestoreOptions) -> Bounds:
        start = options.start_position
        stop = options.stop_position
        stop_datetime = options.stop_datetime
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
        if not isinstance(bounds.start, FilePosition | None) and not isinstance(
            bounds.stop, FilePosition | None
        ):
            if type(bounds.start) is not type(bounds.stop):
                raise ConfigError("start_position and stop_position are of different flavours")
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


class Recorder:
    """Makes the events that record each transaction on the target (see
    :mod:`~plakar_mysql.core.restore_point`): a query event per transaction, put among
    the log's events, which the tool turns into SQL in its place."""

    def __init__(self, sub_id: int, database: str | None, binlogging: bool) -> None:
        self.sub_id = sub_id
        self.database = (database or "").encode()  # passes the tool's --database filter
        self.binlogging = binlogging

    def event(self, scanner: Scanner, gtid: Gtid, stamp: int, *, alone: bool) -> bytes:
        """The record of ``gtid``: inside its transaction, or ``alone`` after it."""
        sql = record_sql(gtid, self.sub_id, unlogged=alone and self.binlogging)
        self.sub_id += 1
        return scanner.query_event(stamp, gtid.server, sql, self.database)


# A group records itself inside, before its COMMIT, only when it is transactional
# and none of these: without a COMMIT of its own (a DDL), an XA transaction's part.
# A group that also changes non-transactional tables (MyISAM) records itself after
# its end: a target writing a binary log would log its non-transactional part as a
# group of its own, and the record as another, taking the next transaction's GTID.
_RECORD_AFTER = FL_STANDALONE | FL_PREPARED_XA | FL_COMPLETED_XA


class Selector:
    """Decides, event by event across the logs, what the replay applies.

    A transaction (a GTID event and what follows it) is applied whole or not
    at all, except at a ``file:position`` stop, which cuts at that event.
    :attr:`applied` is the start point advanced by every transaction kept
    and complete.

    With a :class:`Recorder`, each kept transaction also records itself on the
    target: its record goes just before its COMMIT (the XID event, or the
    ``COMMIT`` query event of a non-transactional group), so that both commit
    together; a group that commits by itself (a DDL, an XA part) or ends in
    ``ROLLBACK`` records itself right after it (before the next transaction, or
    at the end of what is fed).  With :class:`Comments`, each kept table map
    whose names hold a line break is announced there.
    """

    def __init__(
        self,
        bounds: Bounds,
        start: Point,
        start_at: FilePosition | None,
        recorder: Recorder | None = None,
        comments: Comments | None = None,
    ) -> None:
        self.bounds = bounds
        self.applied = start
        self.start = start
        self.start_at = start_at
        self.recorder = recorder
        self.comments = comments
        self.started = start_at is None
        self.stopped = False
        self.stop_reason = ""
        self.kept = 0  # transactions
        self.first_time: int | None = None
        self.last_time: int | None = None
        # A transaction the target already holds at or after the stop: it is past it.
        self.beyond: tuple[Gtid, int] | None = None
        self.stop_seen = False  # the transaction that the stop excludes was seen
        self.file = ""
        self.recent: deque[tuple[str, int, int]] = deque(maxlen=_RECENT)  # file, start, end
        self._scanner: Scanner | None = None
        self._pending: Gtid | None = None
        self._stamp = 0
        self._complete = False  # the pending transaction's last event was sent
        self._commits = False  # it records itself before its COMMIT
        self._owed: Gtid | None = None  # a transaction to record before the next one
        self._covered: Gtid | None = None  # the group walked, when the target holds it
        self._in_group = False
        self._keep = False

    def begin(self, scanner: Scanner) -> None:
        self._scanner = scanner
        self.file = name = scanner.facts.name
        self._in_group = False
        stop = self.bounds.stop
        if isinstance(stop, FilePosition) and name > stop.file:
            self._stop(f"stop_position {stop}")  # the stop was at the end of an earlier log
        start_at = self.start_at
        if start_at is not None and name > start_at.file:
            self.started = True  # the start was at the end of an earlier log

    def end(self) -> None:
        self._settle()

    def _settle(self) -> None:
        if self._pending is not None:
            self.applied = self.applied.advanced([self._pending])
            self._pending = None

    def owed(self) -> bytes | None:
        """The record still owed at the end of what is fed (after a DDL, say)."""
        gtid, self._owed = self._owed, None
        if gtid is None or self.recorder is None or self._scanner is None:
            return None
        return self.recorder.event(self._scanner, gtid, self._stamp, alone=True)

    def _stop(self, reason: str) -> bool:
        if not self.stopped:
            self.stopped = True
            self.stop_reason = reason
            if self._pending is not None and not self._complete:
                # Cut inside a transaction: the client rolls it back.
                if self._owed == self._pending:
                    self._owed = None
                self._pending = None
                self.kept -= 1
        return False

    def _stop_reached(self) -> bool:
        stop = self.bounds.stop
        if stop is None or isinstance(stop, FilePosition):
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
        starts = gtid is not None
        if starts:
            self._settle()  # the transaction before is whole
            self._pay_owed()
        stop = self.bounds.stop
        if isinstance(stop, FilePosition) and self.file == stop.file and offset >= stop.pos:
            self.stop_seen = True
            held = gtid if starts and gtid is not None and self.start.covers(gtid) else None
            if held is None and not starts and self._in_group:
                held = self._covered  # the stop cuts a transaction the target holds whole
            if held is not None:
                self.beyond = (held, stamp)
            return self._stop(f"stop_position {stop}")
        if not starts:
            # The file's own header events, or the rest of the current transaction.
            if not self._in_group:
                return True
            if self._keep:
                self._inside(kind)
            return self._keep
        assert gtid is not None
        self._in_group = True
        self._keep = False
        self._covered = gtid if self.start.covers(gtid) else None
        if self.bounds.stop_time is not None and stamp >= self.bounds.stop_time:
            self.stop_seen = True
            if self._covered is not None:
                self.beyond = (gtid, stamp)
            return self._stop(f"stop_datetime {self.bounds.stop_text}")
        if stop is not None and not isinstance(stop, FilePosition):
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
        if self._covered is not None:
            return False
        return self._take(gtid, stamp)

    def _take(self, gtid: Gtid, stamp: int) -> bool:
        self._keep = True
        self._pending = gtid
        self._stamp = stamp
        self._complete = False
        self.kept += 1
        if self.first_time is None:
            self.first_time = stamp
        self.last_time = stamp
        flags = self._scanner.flags if self._scanner is not None else 0
        self._commits = bool(flags & FL_TRANSACTIONAL) and not flags & _RECORD_AFTER
        if not self._commits:
            self._owed = gtid
        return True

    def _inside(self, kind: int) -> None:
        """An event of a kept transaction: record it before its COMMIT; announce a
        table map's awkward names."""
        scanner = self._scanner
        if scanner is None:
            return
        if kind == TABLE_MAP and self.comments is not None and scanner.table_map is not None:
            self.comments.expect(*scanner.table_map)
        if not self._commits:
            self._complete = True  # a DDL's statement, or an event of a group recorded after
            return
        ends = kind == XID or (kind == QUERY and scanner.query in (b"COMMIT", b"ROLLBACK"))
        if not ends:
            return
        self._complete = True
        self._commits = False
        assert self._pending is not None
        if kind == QUERY and scanner.query == b"ROLLBACK":
            self._owed = self._pending  # what it changed outside transactions stays
        elif self.recorder is not None:
            scanner.insert = self.recorder.event(scanner, self._pending, self._stamp, alone=False)

    def _pay_owed(self) -> None:
        record = self.owed()
        if record is not None and self._scanner is not None:
            self._scanner.insert = record

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

    def __init__(self, tool: Tool, config: BinlogRestoreOptions, lock_wait: int) -> None:
        self.name = tool.path.rsplit("/", 1)[-1]
        self.lines = 0
        self.markers: deque[_Marker] = deque(maxlen=_RECENT)
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
        starts: list[int] = []  # where each event's comment line starts in text
        for found in _EVENT_LINE.finditer(text):
            line += text.count(b"\n", at, found.start()) + 1
            at = found.start() + 1
            gtid_text = _GTID_TEXT.search(found["rest"]) if b"GTID" in found["rest"] else None
            gtid = Gtid(*(int(g) for g in gtid_text.groups())) if gtid_text else None
            self.markers.append(_Marker(line, file, int(found[1]), gtid))
            starts.append(found.start())
            line -= 1  # counted again from this line's start
        if b"GTID_NEXT" in text:
            self._name_gtids(text, starts)
        self.lines += text.count(b"\n")
        assert self.process.stdin is not None
        self.process.stdin.write(text)

    def _name_gtids(self, text: bytes, starts: list[int]) -> None:
        """MySQL: give each GTID event's marker the GTID of the ``SET GTID_NEXT`` that
        follows its comment line (the event comes before the statement it sets)."""
        for found in _GTID_NEXT.finditer(text):
            before = sum(1 for start in starts if start < found.start())
            index = len(self.markers) - len(starts) + before - 1
            if 0 <= index < len(self.markers):
                marker = self.markers[index]
                gtid = Gtid(found[1].decode(), 0, int(found[2]))
                self.markers[index] = _Marker(marker.line, marker.file, marker.end, gtid)

    def finish(self) -> int:
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()
        return self.process.wait()

    def error(self) -> str:
        """The client's error, whole: a name with a line break in it spans lines."""
        text = self.errors.text()
        lines = self.errors.lines
        first = next((i for i, line in enumerate(lines) if line.startswith("ERROR")), None)
        if first is not None:
            text = hide_secrets("\n".join(lines[first:]))
        return text or f"{self.name} exit status {self.process.poll()}"

    def failed_at(self) -> tuple[_Marker | None, Gtid | None]:
        """The event and the transaction the client failed on, if it says."""
        found = _ERROR_LINE.search(self.error())
        if found is None:
            return None, None
        line = int(found[1])
        before = [m for m in self.markers if m.line <= line]
        event = before[-1] if before else None
        failing = next((m for m in reversed(before) if m.gtid is not None), None)
        return event, failing.gtid if failing else None

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
            owed = self.selector.owed()  # the record of a DDL that ends what is fed
            if owed is not None:
                self.sink.write(owed)
        except BrokenPipeError:
            pass  # the tool stopped: its own error says why
        except BaseException as exc:
            self.error = exc
        finally:
            with contextlib.suppress(BrokenPipeError):
                self.sink.close()


class Replay:
    """One replay into one target: the logs arrive one by one through :meth:`file`."""

    def __init__(self, config: BinlogRestoreOptions, bounds: Bounds, guard: Guard) -> None:
        self.config = config
        self.bounds = bounds
        self.guard = guard
        self.database = config.databases[0] if config.databases else None
        self.lock_wait = config.lock_wait_timeout
        self.seen: dict[str, int | None] = {}  # each log received: its size (None: not read)
        self.read: list[FileFacts] = []  # what each log read holds (the archive's range)
        self.comments = Comments(self.database)
        self._db: pymysql.connections.Connection[Any] | None = None
        self._selector: Selector | None = None
        self._client: _Client | None = None
        self._children = contextlib.ExitStack()  # the client, killed if the plugin dies
        self._binlog: Tool | None = None
        self._previous: FileFacts | None = None
        self._held = b""  # the start of a table-map comment not yet whole
        self._variable: Point | None = None  # @@gtid_slave_pos as last read
        self._mysql = False  # the target is MySQL: its point is @@gtid_executed
        self._var = "@@gtid_slave_pos"
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
        self._mysql = server.flavour is Flavour.MYSQL
        self._var = point_variable(self._mysql)
        binlogging = bool(_one(db, "SELECT @@log_bin"))
        if self._mysql:
            check_mysql_target(db, conn.address)
        else:
            check_privileges(db, binlogging, conn.address)
        engine = None if self._mysql else _one(db, _RECORD_ENGINE)
        if engine is not None and str(engine).lower() != "innodb":
            log(
                f"warning: {RECORD_TABLE} is an {engine} table, not InnoDB: a transaction and "
                "its record do not commit together, and a replay killed between them applies "
                f"that transaction again when run again (ALTER TABLE {RECORD_TABLE} ENGINE=InnoDB)"
            )
        point = self._target_point(db)
        begin, start_at = self._start(point)
        # MySQL records each transaction itself (its GTID, as it commits).
        recorder = None if self._mysql else Recorder(next_sub_id(db), self.database, binlogging)
        selector = Selector(self.bounds, begin, start_at, recorder, self.comments)
        self._binlog = binlog_tool(server.flavour, conn.bin_dir)
        self._client = _Client(
            client_tool(server.flavour, conn.bin_dir), self.config, self.lock_wait
        )
        self._children.enter_context(self.guard.child(self._client.process))
        self._selector = selector
        return selector

    def _target_point(self, db: pymysql.connections.Connection[Any]) -> Point:
        """Where the target is: the point it records (see :func:`recorded_point`)."""
        point = recorded_point(db)
        if isinstance(point, GtidSet):
            return point
        variable = restored_point(db)
        if point != variable:
            log(
                f"mysql.gtid_slave_pos records {point}, ahead of @@gtid_slave_pos "
                f"({variable or 'empty'}): a replay was interrupted there; going on from it"
            )
        return point

    def _start(self, point: Point) -> tuple[Point, FilePosition | None]:
        """The transactions the target holds (never applied again) and, for a
        ``file:position`` start, where in the logs to begin."""
        start = self.bounds.start
        address = self.config.connection.address
        if start is None:
            if not point:
                raise ReplayError(
                    f"{address} has no restored point ({self._var} is empty): restore "
                    "a base backup first, or give start_position=; nothing was applied"
                )
            log(f"starting after the target's restored point {point} ({self._var})")
            return point, None
        if isinstance(start, FilePosition):
            held = f", leaving out what the target records as applied ({point})" if point else ""
            log(f"starting at start_position {start}{held}")
            return point, start
        if type(start) is not type(point):
            raise ReplayError(
                f"start_position {start} is not a GTID of the target's flavour (its point is "
                f"{point or 'empty'}): nothing was applied"
            )
        begin = start.union(point)  # per domain, the later one (MySQL: both sets)
        if any(point.seq(g.domain) > g.seq for g in start.gtids()):
            log(
                f"start_position {start} is behind what the target records as applied "
                f"({point}): going on after {begin}, so that no transaction is applied twice"
            )
        else:
            log(f"starting at start_position {start}")
        return begin, None

    # -- each log -------------------------------------------------------------------

    def file(self, name: str, stream: Content) -> None:
        if self._selector is not None and self._selector.stopped:
            self.seen[name] = None
            log(f"{shown(name)}: after the stop, not read")
            return
        selector = self._selector or self._begin()
        scanner = Scanner(name, select=selector)
        selector.begin(scanner)
        try:
            head = read_head(scanner, stream)
        except BinlogFormatError as exc:
            self.fail(str(exc))  # before any of its bytes is applied
        self._check_follows(scanner.facts, selector)
        self._previous = scanner.facts
        self.read.append(scanner.facts)
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
            listed = listed_logs(path, data)
        except ManifestError as exc:
            self.fail(str(exc))
        absent = [name for name in listed if name not in self.seen]
        if absent:
            self.fail(f"{path} lists {_names(absent)}, absent from the snapshot")
        extra = [name for name in self.seen if name not in listed]
        if extra:
            self.fail(f"{log_path(shown(extra[0]))} is in the snapshot but not in {path}")
        for name, size in self.seen.items():
            if size is not None and size != listed[name]:
                self.fail(f"{log_path(name)} holds {size} bytes, {path} says {listed[name]}")
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
        if start_at is not None and start_at.file < facts.name:
            raise ReplayError(
                f"start_position {start_at} is before the archive's first log {facts.name}: "
                "nothing was applied"
            )
        if facts.start is None:
            raise ReplayError(
                f"{facts.name} has no GTID list (MariaDB's Gtid_list, MySQL's untagged "
                "Previous_gtids): nothing was applied"
            )
        if type(facts.start) is not type(selector.start):
            log_of, server = ("MariaDB", "MySQL") if self._mysql else ("MySQL", "MariaDB")
            raise ReplayError(
                f"{facts.name} is a {log_of} binary log: it cannot be replayed onto a {server} "
                "server; nothing was applied"
            )
        missing = facts.start.ahead_of(selector.start)
        if missing and start_at is None:
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
        with self.guard.child(binlog):
            tool_errors = StderrTail(binlog.stderr)  # drained as it runs: a full pipe would block
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
                    self._send(name, b"".join(line))
                    line = []
                else:
                    self._send(name, block[:cut])
                if cut < len(block):
                    line.append(block[cut:])
            if line:
                self._send(name, b"".join(line) + b"\n")
            held, self._held = self._held, b""
            if held:
                self._client.send(name, held)
        except BrokenPipeError:
            binlog.kill()
            self._client_failed()

    def _send(self, name: str, text: bytes) -> None:
        """Lines of SQL to the client, table-map comments made whole comments first
        (only while one is expected: see :mod:`~plakar_mysql.binlog.comments`)."""
        assert self._client is not None
        if self.comments or self._held:
            text, self._held = self.comments.fix(self._held + text)
        if text:
            self._client.send(name, text)

    # -- the end --------------------------------------------------------------------

    def _client_failed(self) -> NoReturn:
        assert self._client is not None and self._selector is not None
        self._client.finish()
        event, gtid = self._client.failed_at()
        where = "an event"
        if event is not None:
            start = self._selector.event_at(event.file, event.end)
            pos = (
                f"{event.file}:{start}"
                if start is not None
                else f"{event.file} ending at {event.end}"
            )
            where = f"the event at {pos}" + (f" (transaction {gtid})" if gtid else "")
        point = self._settle()
        error = self._client.error()
        if "ERROR 1205" in error:
            error += f" (waited {self.lock_wait} s, lock_wait_timeout; {self._holders()})"
        error = escaped(error)
        raise ReplayError(
            f"the replay stopped at {where}: {error}; the transactions before it are applied "
            f"and recorded ({self._said(point)}): fix the cause and {_AGAIN}"
        )

    def _said(self, point: Point | None) -> str:
        """The target's point as read from it, for a message."""
        if point is None:
            return "the target's point could not be read"
        if self._mysql:
            return f"@@gtid_executed is {point or 'empty'}, read from the target"
        if self._variable == point:
            return f"@@gtid_slave_pos is {point or 'empty'}, read from the target"
        return (
            f"the target records {point} in mysql.gtid_slave_pos, read from it "
            f"(@@gtid_slave_pos says {self._variable or 'empty'})"
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
        """Stop now: the client finishes what it was sent (each transaction it commits
        records itself), and the target's point is read and said."""
        applied = self._finish_client()
        raise ReplayError(
            f"{message}; "
            + (
                f"the transactions up to {applied} are applied (read from the target): "
                f"{_AGAIN} once the cause is fixed"
                if applied
                else "nothing was applied"
            )
        )

    def _finish_client(self) -> Point | None:
        """Let the client end; the target's point if the replay applied anything."""
        client, selector = self._client, self._selector
        if client is None or selector is None:
            return None
        if client.finish() != 0:
            self._client_failed()
        selector.end()
        return self._settle() if selector.kept else None

    def _settle(self) -> Point | None:
        """Make ``@@gtid_slave_pos`` what the target records (the replay wrote its
        progress in ``mysql.gtid_slave_pos``, which the variable does not see), which
        also leaves one row per domain in the table; the point, read back."""
        if self._db is None:
            return None
        if self._mysql:  # the server recorded each GTID as its transaction committed
            try:
                self._variable = recorded_point(self._db)
            except pymysql.err.MySQLError:
                return None
            return self._variable
        try:
            point = recorded_point(self._db)
            self._variable = restored_point(self._db)
            if point != self._variable:
                set_restored_point(self._db, point)
                self._variable = restored_point(self._db)
            return point
        except pymysql.err.MySQLError as exc:
            log(
                f"warning: could not set @@gtid_slave_pos to what mysql.gtid_slave_pos records "
                f"({exc.args[-1]}): the next replay reads the table"
            )
            try:
                return recorded_point(self._db)
            except pymysql.err.MySQLError:
                return None

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
        self._check_reached(selector, applied)
        if not selector.kept:
            log(f"nothing to apply: {self._already(selector)}; {self._range()}")
            return
        span = ""
        if selector.first_time is not None and selector.last_time is not None:
            span = f" (from {_when(selector.first_time)} to {_when(selector.last_time)})"
        ended = selector.stop_reason or "the end of the archive"
        log(
            f"applied {selector.kept} transaction(s){span} from {self._files} log(s), up to "
            f"{ended}; {self._said(applied)}"
        )

    def _check_reached(self, selector: Selector, applied: Point | None) -> None:
        """Fail unless the target is now at the requested point (see :func:`verdict`)."""
        problem = verdict(self.bounds, selector, self.read)
        if problem is None:
            return
        point = applied if applied is not None else self._settle()
        done = f"{selector.kept} transaction(s) applied" if selector.kept else "nothing applied"
        raise ReplayError(f"{problem} ({done}; {self._said(point)}); {self._range()}")

    def _already(self, selector: Selector) -> str:
        """Why the target is provably at the requested point with nothing applied."""
        point = self._settle()
        where = self._said(point)
        if self.bounds.stop_time is not None or self.bounds.stop is not None:
            return f"the target is already at {self.bounds.describe_stop()} ({where})"
        return f"the target is already at the archive's end ({where})"

    def _range(self) -> str:
        read = {facts.name for facts in self.read}
        return archive_range(self.read, [name for name in self.seen if name not in read])

    def close(self) -> None:
        if self._client is not None:
            self._client.kill()
        self._children.close()
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None


def _one(db: pymysql.connections.Connection[Any], sql: str) -> Any:
    with db.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
    return None if row is None else row[0]


_RECORD_ENGINE = (
    "SELECT ENGINE FROM information_schema.TABLES "
    "WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'gtid_slave_pos'"
)
_DENIED = 1142  # "INSERT command denied to user ... for table ..."


def check_privileges(
    db: pymysql.connections.Connection[Any], binlogging: bool, address: str
) -> None:
    """Refuse, before anything is applied, an account that could not replay the logs
    or record its progress: ``SUPER``, or ``BINLOG REPLAY`` (the logs' events set
    ``gtid_seq_no`` and run ``BINLOG`` statements), ``REPLICATION SLAVE ADMIN`` (``SET
    GLOBAL gtid_slave_pos``) and, on a target writing a binary log, ``BINLOG ADMIN``
    (a DDL's record stays out of it); and ``SELECT, INSERT`` on the record table,
    asked of the server itself (``EXPLAIN`` checks them and changes nothing)."""
    who = current_user(db)
    grants = session_grants(db)
    missing: list[str] = []
    if not grants.has("SUPER"):
        needed = ["BINLOG REPLAY", "REPLICATION SLAVE ADMIN", *(["BINLOG ADMIN"] * binlogging)]
        missing = grants.lacking(needed)
    table: list[str] = []
    for privilege, probe in (
        ("SELECT", f"EXPLAIN SELECT sub_id FROM {RECORD_TABLE}"),
        ("INSERT", f"EXPLAIN INSERT INTO {RECORD_TABLE} {RECORD_COLUMNS} VALUES (0, 0, 0, 0)"),
    ):
        try:
            _one(db, probe)
        except pymysql.err.MySQLError as exc:
            if exc.args[0] != _DENIED:
                raise
            table.append(privilege)
    if not missing and not table:
        return
    grant = [f"GRANT {', '.join(missing)} ON *.* TO {who}"] if missing else []
    grant += [f"GRANT {', '.join(table)} ON {RECORD_TABLE} TO {who}"] if table else []
    lacks = [", ".join(missing) + " ON *.*"] if missing else []
    lacks += [f"{', '.join(table)} ON {RECORD_TABLE}"] if table else []
    raise ReplayError(
        f"{who} lacks what the replay needs on {address}: {'; '.join(lacks)} (the replay runs "
        f"the logs' events and records each transaction in {RECORD_TABLE} as it commits; "
        f"{'; '.join(grant)}); nothing was applied"
    )


_MYSQL_NEEDED = ("REPLICATION_APPLIER", "SESSION_VARIABLES_ADMIN")


def check_mysql_target(db: pymysql.connections.Connection[Any], address: str) -> None:
    """Refuse, before anything is applied, a MySQL target that could not take the
    logs' transactions under their own GTIDs: ``gtid_mode`` must be ``ON`` (or
    ``ON_PERMISSIVE``) for ``SET GTID_NEXT``, and the account needs ``SUPER``, or
    ``REPLICATION_APPLIER`` (the events, ``BINLOG`` statements, ``GTID_NEXT``) and
    ``SESSION_VARIABLES_ADMIN`` (the session variables the events set)."""
    mode = str(_one(db, "SELECT @@GLOBAL.gtid_mode") or "")
    if mode not in ("ON", "ON_PERMISSIVE"):
        raise ReplayError(
            f"{address} runs with gtid_mode={mode or 'OFF'}: the replay applies each "
            "transaction under its own GTID (SET GTID_NEXT), which needs gtid_mode=ON "
            "(and enforce_gtid_consistency=ON); nothing was applied"
        )
    grants = session_grants(db)
    if grants.has("SUPER"):
        return
    missing = grants.lacking(_MYSQL_NEEDED)
    if missing:
        who = current_user(db)
        raise ReplayError(
            f"{who} lacks what the replay needs on {address}: {', '.join(missing)} ON *.* "
            f"(the logs' events, under their GTIDs; GRANT {', '.join(missing)} ON *.* TO "
            f"{who}); nothing was applied"
        )


def verdict(bounds: Bounds, selector: Selector, read: list[FileFacts]) -> str | None:
    """Why the target is not at the requested point once the logs are applied, or
    None when it is: a replay only goes forward, and what it cannot reach, or
    cannot show it reached, is a failure, never a success that did nothing."""
    held = selector.start  # what the target held before the replay
    if selector.beyond is not None:
        gtid, stamp = selector.beyond
        return (
            f"the target already holds transaction {gtid} of {_when(stamp)}, at or after "
            f"{bounds.describe_stop()}: a replay only goes forward and cannot bring it back "
            "there; restore a base taken before that point, then replay"
        )
    start_at = selector.start_at
    if start_at is not None and not selector.started:
        return f"start_position {start_at} was not reached: no log read holds it"
    stop = bounds.stop
    if stop is not None and not isinstance(stop, FilePosition):
        past = [
            str(g) for g in held.gtids() if g.domain in stop.domains and g.seq > stop.seq(g.domain)
        ]
        if past:
            return (
                f"the target already holds {', '.join(past)}, after stop_position {stop}: a "
                "replay only goes forward; restore a base taken before that point, then replay"
            )
        if any(selector.applied.seq(g.domain) < g.seq for g in stop.gtids()):
            return f"the archive ends before stop_position {stop}: {_LATER}"
        return None
    if isinstance(stop, FilePosition):
        if stop.file < read[0].name:
            return f"stop_position {stop} is before the archive's first log {read[0].name}"
        if not selector.stopped and stop.file > read[-1].name:
            return f"the archive ends with {read[-1].name}, before stop_position {stop}: {_LATER}"
        return None
    if bounds.stop_time is not None:
        end = max(facts.max_time for facts in read)
        if not selector.stop_seen and end < bounds.stop_time:
            return (
                f"the archive ends at {_when(end)}, before stop_datetime {bounds.stop_text}: "
                f"{_LATER}"
            )
        opened = read[0].opened
        if not selector.kept and (opened is None or opened >= bounds.stop_time):
            # What the target held before the archive began is of before its first log.
            return (
                f"the archive begins at {_when(opened or 0)} (its first log was opened "
                f"then), not before stop_datetime {bounds.stop_text}: it cannot show that "
                "the target's point is before that time"
            )
        return None
    end_position = read[-1].end
    if end_position is not None:
        past = [
            str(g)
            for g in held.gtids()
            if g.domain in end_position.domains and g.seq > end_position.seq(g.domain)
        ]
        if past:
            return (
                f"the target already holds {', '.join(past)}, after the archive's end "
                f"{end_position}: the archive is older than the target; replay a later "
                "binlog snapshot"
            )
    return None


# How to go on after a failure: the same restore starts after what the target records.
_AGAIN = "run the same restore again to go on from there"
_LATER = "everything archived up to there is applied; a later binlog snapshot may hold the rest"


def _gtids(per_domain: Mapping[int | str, Gtid]) -> str:
    return ",".join(str(per_domain[d]) for d in sorted(per_domain, key=domain_order))


def archive_range(read: list[FileFacts], unread: list[str]) -> str:
    """The archive's logs and transactions, for a message: first and last GTID, and times."""
    if not read:
        return "no log of the archive was read"
    logs = read[0].name if len(read) == 1 else f"{read[0].name} to {read[-1].name}"
    held = [facts for facts in read if facts.transactions]
    if not held:
        text = f"the archive's logs {logs} hold no transaction after {read[0].start}"
    else:
        first, last = held[0], held[-1]
        text = (
            f"the archive's logs {logs} hold {_gtids(first.first)} of "
            f"{_when(first.first_time or 0)} to {_gtids(last.last)} of "
            f"{_when(last.last_time or 0)}"
        )
    if unread:
        text += f" ({len(unread)} later log(s), after the stop, not read)"
    return text


# Control characters as escapes: a name or a server's message on one line.
_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(32), 127] if c != 9} | {10: "\\n", 13: "\\r"}


def escaped(text: str) -> str:
    """``text`` on one line: line breaks and other control characters escaped."""
    return text.translate(_ESCAPES)


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


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _gap(missing: list[tuple[Gtid | None, Gtid]]) -> str:
    parts = []
    for have, wanted in missing:
        first = (have.seq if have else 0) + 1
        if isinstance(wanted.domain, str):  # MySQL: uuid:first-last
            parts.append(f"transactions {wanted.domain}:{first}-{wanted.seq} are missing")
        else:
            parts.append(f"transactions {wanted.domain}-*-{first} to {wanted} are missing")
    return "; ".join(parts)


def _when(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, UTC).astimezone().strftime(_DATETIME)


class BinlogExporter(Exporter):
    """Replays a binary-log snapshot into a running server."""

    def __init__(self, options: Options, scheme: str, config: Mapping[str, str]) -> None:
        refuse_foreign_options(config, BINLOG, backup=False)
        self.config = BinlogRestoreOptions.parse(config, scheme)
        if len(self.config.databases) > 1:
            raise ConfigError(
                "option databases: the replay filters one database (as mariadb-binlog "
                "--database); give one, or none to replay every database"
            )
        self.bounds = Bounds.from_options(self.config)
        self.guard = options.guard

    def info(self) -> ConnectorInfo:
        return ConnectorInfo(origin=self.config.connection.address, type=SCHEME, root="/")

    def ping(self) -> None:
        connect(self.config.connection).close()

    def export(self, records: Iterator[Record], report: Report) -> None:
        replay = Replay(self.config, self.bounds, self.guard)
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
