"""The little of the binary-log format that archiving and replaying need.

A binary log is a 4-byte magic number and a sequence of events, each with a
19-byte header (time, type, server id, length, next position, flags).  The
:class:`Scanner` walks those headers in the blocks as they stream by, jumping
over event bodies, and decodes only three small kinds of event: the format
description (server version), the GTID list at the start of each file (the
GTID position before its first transaction) and each transaction's GTID.
That gives a file's time span and GTID range, and lets the replay check, from
the first few hundred bytes, that no transaction is missing between the
restored point and the archive.

Both flavours' logs are read (the same header, magic and CRC32 checksums):
MariaDB's GTID list and GTID events, and MySQL's ``Previous_gtids`` (a GTID
set, :class:`~plakar_mysql.core.gtid.GtidSet`) and GTID events (``uuid:n``).
A MySQL transaction without a GTID (``Anonymous_gtid``, written while
``gtid_mode`` was not ON) is counted; the replay refuses it, since it applies
and records transactions by GTID.  MySQL 8.4's tagged GTIDs are not decoded:
an archive of such a log records no GTID range, and the replay refuses it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from plakar_mysql.core.errors import PlakarMySQLError
from plakar_mysql.core.gtid import Gtid, GtidSet, Interval, Point, Position, domain_order

MAGIC = b"\xfebin"
_HEADER = struct.Struct("<IBIIIH")
HEADER_SIZE = _HEADER.size  # 19
_U32 = struct.Struct("<I")
_GTID_BODY = struct.Struct("<QI")  # sequence number, domain id
_GTID_LIST_ITEM = struct.Struct("<IIQ")  # domain id, server id, sequence number

QUERY = 2
XID = 16
FORMAT_DESCRIPTION = 15
TABLE_MAP = 19
GTID_LIST = 163
GTID = 162
START_ENCRYPTION = 164
# MySQL's: a transaction's GTID, one without, the GTID set before the file's first
# transaction, and 8.4's tagged GTID.
MYSQL_GTID = 33
ANONYMOUS_GTID = 34
PREVIOUS_GTIDS = 35
TAGGED_GTID = 42
_U64 = struct.Struct("<Q")
_UUID_SIZE = 16
# Events kept whole (they are small): those whose body is decoded, and the
# start of encryption, which may come between the format description and the
# GTID list.
_DECODED = frozenset(
    {
        FORMAT_DESCRIPTION,
        GTID_LIST,
        GTID,
        START_ENCRYPTION,
        MYSQL_GTID,
        ANONYMOUS_GTID,
        PREVIOUS_GTIDS,
        TAGGED_GTID,
    }
)
# Decoded only when at most this long: a query event as short holds no statement
# but COMMIT or ROLLBACK (a transaction's end); a table map names its table.
_SMALL = {QUERY: 512, TABLE_MAP: 64 << 10}
_QUERY_POST_HEADER = struct.Struct("<IIBHH")  # thread, exec time, db length, error, status length
_TABLE_ID = struct.Struct("<IH")  # a table map's 6-byte table id, low and high parts
# A GTID event's flags: a group without BEGIN/COMMIT (DDL), an XA transaction's parts.
FL_STANDALONE = 0x01
FL_TRANSACTIONAL = 0x04  # every change of the group is to transactional tables
FL_PREPARED_XA = 0x40
FL_COMPLETED_XA = 0x80
_SUPPRESS_USE = 0x08  # a query event's flag: the tool prints no USE for it
_CHECKSUM_CRC32 = 1
# What may come before the GTID list: past them, a log without one has none.
_BEFORE_GTID_LIST = frozenset({FORMAT_DESCRIPTION, START_ENCRYPTION})
_LARGEST_DECODED = 1 << 20


class BinlogFormatError(PlakarMySQLError, ValueError):
    """The bytes are not a binary log, or end in the middle of an event."""


def _uuid(raw: bytes) -> str:
    """A server uuid as MySQL writes it: 8-4-4-4-12 lower-case hex digits."""
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _time(stamp: int | None) -> str | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC).isoformat()


@dataclass
class FileFacts:
    """What a binary log holds, as the manifest records it."""

    name: str
    size: int = 0
    server_version: str = ""
    start: Point | None = None  # the GTID list: the position before the file's first event
    first: dict[int | str, Gtid] = field(default_factory=dict)  # per domain (MySQL: uuid)
    last: dict[int | str, Gtid] = field(default_factory=dict)
    executed: Point | None = None  # the start with every transaction seen so far
    anonymous: int = 0  # MySQL transactions without a GTID
    tagged: bool = False  # MySQL 8.4's tagged GTIDs: not decoded
    first_time: int | None = None  # of the first and last transaction (its GTID event)
    last_time: int | None = None
    max_time: int = 0  # of any event
    opened: int | None = None  # the format description's time: when the log was opened
    checksum: bool = False  # every event ends with a CRC32
    transactions: int = 0

    @property
    def end(self) -> Point | None:
        """The GTID position (MySQL: set) after the file's last transaction."""
        if self.executed is not None:
            return self.executed
        return None if self.start is None else self.start.advanced(self.last.values())

    def saw(self, gtid: Gtid, stamp: int) -> None:
        """A transaction's GTID event, at ``stamp``."""
        self.first.setdefault(gtid.domain, gtid)
        self.last[gtid.domain] = gtid
        if self.first_time is None:
            self.first_time = stamp
        self.last_time = stamp
        self.transactions += 1
        if self.start is not None:
            self.executed = (self.executed or self.start).advanced([gtid])

    def as_json(self) -> dict[str, Any]:
        end = self.end
        mysql = {"anonymous_transactions": self.anonymous} if self.anonymous else {}
        return mysql | {
            "name": self.name,
            "size": self.size,
            "first_event_time": _time(self.first_time),
            "last_event_time": _time(self.last_time),
            "transactions": self.transactions,
            "gtid_start": None if self.start is None else str(self.start),
            "gtid_end": None if end is None else str(end),
            "first_gtid": ",".join(str(self.first[d]) for d in sorted(self.first, key=domain_order))
            or None,
            "last_gtid": ",".join(str(self.last[d]) for d in sorted(self.last, key=domain_order))
            or None,
        }


Select = Callable[[int, int, int, int, "Gtid | None"], bool]
"""``select(offset, length, type, time, gtid)``: whether to keep the event at
``offset`` (``gtid`` is set for a transaction's GTID event)."""


class Scanner:
    """Walks the events of one binary log fed in blocks; :attr:`facts` is what it saw.

    The work per block is one header unpack per event; bodies are jumped over,
    except the few small ones decoded (see the module's docstring).  With
    ``select``, :meth:`feed` also returns the bytes of the events kept (the
    magic number always is), as views into the blocks: runs of consecutive kept
    events come out as one piece.
    """

    def __init__(self, name: str, select: Select | None = None) -> None:
        self.facts = FileFacts(name)
        self._select = select
        self._carry = b""  # the start of an event (or of the magic) not yet complete
        self._skip = 0  # bytes of the current event's body still to jump over
        self._keep = False  # whether those bytes are kept
        self._offset = 0  # bytes fed so far
        self._magic = False
        self._pieces: list[memoryview] = []  # what feed returns, filled by _walk too
        self.past_head = False  # an event after the head was walked (see _walk)
        # What the event just handed to ``select`` holds, when decoded:
        self.flags = 0  # a GTID event's flags
        self.query = b""  # a short query event's statement
        self.table_map: tuple[bytes, bytes, int] | None = None  # database, table, table id
        # Bytes the selector asks to put before the event just handed to it.
        self.insert: bytes | None = None

    def feed(self, block: bytes) -> list[memoryview]:
        """Scan ``block``; with ``select``, return the pieces of it to keep."""
        out: list[memoryview] = []
        self._pieces = out
        at = self._offset  # file offset of block[0]
        self._offset += len(block)
        self.facts.size = self._offset
        view = memoryview(block)
        if self._skip:
            take = min(self._skip, len(block))
            if self._keep:
                out.append(view[:take])
            self._skip -= take
            if take == len(block):
                return out
            view = view[take:]
            at += take
        if self._carry:
            data = memoryview(self._carry + bytes(view))
            at -= len(self._carry)
            self._carry = b""
        else:
            data = view
        i = 0
        run: int | None = None  # start of the run of kept bytes in data
        if not self._magic:
            if len(data) < len(MAGIC):
                self._carry = bytes(data)
                return out
            if bytes(data[: len(MAGIC)]) != MAGIC:
                raise BinlogFormatError(f"{self.facts.name} is not a binary log (bad magic)")
            self._magic = True
            i = len(MAGIC)
            run = 0 if self._select is not None else None
        i, run = self._walk(data, at, i, run)
        if run is not None and run < i:
            out.append(data[run:i])
        self._carry = bytes(data[i:])
        return out

    def _walk(self, data: memoryview, at: int, i: int, run: int | None) -> tuple[int, int | None]:
        """Walk the events of ``data`` from ``i``; return where the walk stopped and
        the start of the run of kept bytes still open there."""
        select = self._select
        n = len(data)
        facts = self.facts
        while n - i >= HEADER_SIZE:
            stamp, kind, server, length, _next, _flags = _HEADER.unpack_from(data, i)
            if length < HEADER_SIZE:
                raise BinlogFormatError(f"{facts.name}: an event of {length} bytes at {at + i}")
            facts.max_time = max(facts.max_time, stamp)
            gtid: Gtid | None = None
            if kind in _DECODED:
                if length > _LARGEST_DECODED:
                    raise BinlogFormatError(f"{facts.name}: an event of {length} bytes")
                if n - i < length:
                    break
                gtid = self._decode(data[i : i + length], kind=kind, stamp=stamp, server=server)
            elif select is not None and kind in _SMALL:
                if length > _SMALL[kind]:
                    self.query, self.table_map = b"", None  # not decoded: not an end, no name
                elif n - i < length:
                    break
                else:
                    self._decode_small(data[i : i + length], kind)
            if kind not in _BEFORE_GTID_LIST:
                self.past_head = True  # after a GTID list's decoding: facts.start is final
            if select is not None:
                keep = select(at + i, length, kind, stamp, gtid)
                if self.insert is not None:
                    if run is not None:
                        self._pieces.append(data[run:i])
                    self._pieces.append(memoryview(self.insert))
                    self.insert = None
                    run = i if keep else None
                elif keep and run is None:
                    run = i
                elif not keep and run is not None:
                    self._pieces.append(data[run:i])
                    run = None
            if n - i < length:
                self._skip = length - (n - i)
                self._keep = run is not None
                return n, run
            i += length
        return i, run

    @property
    def offset(self) -> int:
        """Bytes fed so far."""
        return self._offset

    def _decode(self, data: memoryview, *, kind: int, stamp: int, server: int) -> Gtid | None:
        """Decode one whole event of a kind in ``_DECODED``."""
        facts = self.facts
        at, length = 0, len(data)
        body = at + HEADER_SIZE
        if kind == GTID:
            seq, domain = _GTID_BODY.unpack_from(data, body)
            self.flags = data[body + _GTID_BODY.size]
            gtid = Gtid(domain, server, seq)
            facts.saw(gtid, stamp)
            return gtid
        if kind in (MYSQL_GTID, ANONYMOUS_GTID, TAGGED_GTID, PREVIOUS_GTIDS):
            return self._decode_mysql(data, kind=kind, stamp=stamp, server=server)
        elif kind == GTID_LIST:
            (count,) = _U32.unpack_from(data, body)
            count &= 0x0FFFFFFF  # the high bits are flags
            if body + 4 + count * _GTID_LIST_ITEM.size > at + length:
                raise BinlogFormatError(f"{facts.name}: a malformed GTID list")
            items = [
                Gtid(*_GTID_LIST_ITEM.unpack_from(data, body + 4 + k * _GTID_LIST_ITEM.size))
                for k in range(count)
            ]
            if facts.start is None:
                facts.start = Position(items)
        elif kind == FORMAT_DESCRIPTION and not facts.server_version:
            raw = bytes(data[body + 2 : body + 52])
            facts.server_version = raw.split(b"\0", 1)[0].decode(errors="replace")
            facts.opened = stamp
            # The checksum algorithm is the byte before the event's own 4-byte checksum.
            facts.checksum = length > body + 57 and data[length - 5] == _CHECKSUM_CRC32
        return None

    def _decode_mysql(self, data: memoryview, *, kind: int, stamp: int, server: int) -> Gtid | None:
        """MySQL's GTID events and ``Previous_gtids``.  With ``select`` (the replay),
        a transaction without a GTID or with a tagged one is refused: it could
        neither be skipped when the target holds it nor recorded."""
        facts = self.facts
        body = HEADER_SIZE
        end = len(data) - (4 if facts.checksum else 0)
        if kind == MYSQL_GTID:
            if end < body + 1 + _UUID_SIZE + _U64.size:
                raise BinlogFormatError(f"{facts.name}: a malformed GTID event")
            uuid = _uuid(bytes(data[body + 1 : body + 1 + _UUID_SIZE]))
            (seq,) = _U64.unpack_from(data, body + 1 + _UUID_SIZE)
            # Every MySQL transaction records its GTID as it commits (no MariaDB flags).
            self.flags = FL_TRANSACTIONAL
            gtid = Gtid(uuid, server, seq)
            facts.saw(gtid, stamp)
            return gtid
        if kind == PREVIOUS_GTIDS:
            if facts.start is None:
                facts.start = self._gtid_set(data[body:end])
            return None
        if kind == ANONYMOUS_GTID:
            facts.anonymous += 1
            what = "a transaction without a GTID (written while gtid_mode was not ON)"
        else:
            facts.tagged = True
            what = "a tagged GTID (MySQL 8.4+), which this version does not read"
        if self._select is not None:
            raise BinlogFormatError(
                f"{facts.name} holds {what}: the replay applies and records each "
                "transaction by its GTID"
            )
        return None

    def _gtid_set(self, body: memoryview) -> GtidSet | None:
        """A ``Previous_gtids`` body: n_sids, then per uuid its intervals (the end of
        each exclusive).  None for the tagged format, which is not decoded."""
        name = self.facts.name
        if len(body) < _U64.size:
            raise BinlogFormatError(f"{name}: a malformed Previous_gtids event")
        (head,) = _U64.unpack_from(body, 0)
        if head >> 56:
            self.facts.tagged = True
            return None
        at, sets = _U64.size, dict[str, list[Interval]]()
        for _ in range(head):
            if at + _UUID_SIZE + _U64.size > len(body):
                raise BinlogFormatError(f"{name}: a malformed Previous_gtids event")
            uuid = _uuid(bytes(body[at : at + _UUID_SIZE]))
            (count,) = _U64.unpack_from(body, at + _UUID_SIZE)
            at += _UUID_SIZE + _U64.size
            if at + count * 2 * _U64.size > len(body):
                raise BinlogFormatError(f"{name}: a malformed Previous_gtids event")
            for _ in range(count):
                first, stop = _U64.unpack_from(body, at)[0], _U64.unpack_from(body, at + 8)[0]
                at += 2 * _U64.size
                if not 0 < first < stop:
                    raise BinlogFormatError(f"{name}: a malformed Previous_gtids event")
                sets.setdefault(uuid, []).append((first, stop - 1))
        return GtidSet(sets)

    def _decode_small(self, data: memoryview, kind: int) -> None:
        """A short query event's statement, or a table map's names (see ``_SMALL``)."""
        end = len(data) - (4 if self.facts.checksum else 0)
        body = HEADER_SIZE
        if kind == QUERY and end >= body + _QUERY_POST_HEADER.size:
            _thread, _time, db_len, _error, status = _QUERY_POST_HEADER.unpack_from(data, body)
            self.query = bytes(data[body + _QUERY_POST_HEADER.size + status + db_len + 1 : end])
        elif kind == TABLE_MAP and end >= body + 8:
            low, high = _TABLE_ID.unpack_from(data, body)
            names = bytes(data[body + 8 : end])  # length, name, NUL; length, name, NUL
            db = names[1 : 1 + names[0]] if names else b""
            rest = names[1 + len(db) + 1 :]
            table = rest[1 : 1 + rest[0]] if rest else b""
            self.table_map = (db, table, low | high << 32)

    def query_event(self, stamp: int, server: int, sql: bytes, database: bytes) -> bytes:
        """A query event running ``sql``, as this log writes one (with its checksum if
        the log has them), to put among its events: the tool then turns it into SQL in
        its place.  It carries no USE (its flag suppresses it), and ``database`` only
        lets it pass the tool's ``--database`` filter."""
        post = _QUERY_POST_HEADER.pack(0, 0, len(database), 0, 0)
        body = post + database + b"\0" + sql
        length = HEADER_SIZE + len(body) + (4 if self.facts.checksum else 0)
        head = _HEADER.pack(stamp, QUERY, server, length, 0, _SUPPRESS_USE)
        event = head + body
        if self.facts.checksum:
            event += _U32.pack(zlib.crc32(event))
        return event

    def finish(self) -> FileFacts:
        """The facts; raise if the bytes ended in the middle of an event."""
        if not self._magic or self._carry or self._skip:
            raise BinlogFormatError(
                f"{self.facts.name} ends in the middle of an event (after {self.facts.size} bytes)"
            )
        return self.facts
