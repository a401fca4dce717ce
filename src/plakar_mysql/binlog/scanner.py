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

Only MariaDB's GTID events are decoded; on MySQL the times and sizes are
still read, the GTIDs are not.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from plakar_mysql.core.errors import PlakarMySQLError
from plakar_mysql.core.gtid import Gtid, Position

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
# Events kept whole (they are small): those whose body is decoded, and the
# start of encryption, which may come between the format description and the
# GTID list.
_DECODED = frozenset({FORMAT_DESCRIPTION, GTID_LIST, GTID, START_ENCRYPTION})
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


def _time(stamp: int | None) -> str | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC).isoformat()


@dataclass
class FileFacts:
    """What a binary log holds, as the manifest records it."""

    name: str
    size: int = 0
    server_version: str = ""
    start: Position | None = None  # the GTID list: the position before the file's first event
    first: dict[int, Gtid] = field(default_factory=dict)  # per domain
    last: dict[int, Gtid] = field(default_factory=dict)
    first_time: int | None = None  # of the first and last transaction (its GTID event)
    last_time: int | None = None
    max_time: int = 0  # of any event
    opened: int | None = None  # the format description's time: when the log was opened
    checksum: bool = False  # every event ends with a CRC32
    transactions: int = 0

    @property
    def end(self) -> Position | None:
        """The GTID position after the file's last transaction."""
        if self.start is None:
            return None
        return self.start.advanced(self.last.values())

    def as_json(self) -> dict[str, Any]:
        end = self.end
        return {
            "name": self.name,
            "size": self.size,
            "first_event_time": _time(self.first_time),
            "last_event_time": _time(self.last_time),
            "transactions": self.transactions,
            "gtid_start": None if self.start is None else str(self.start),
            "gtid_end": None if end is None else str(end),
            "first_gtid": ",".join(str(self.first[d]) for d in sorted(self.first)) or None,
            "last_gtid": ",".join(str(self.last[d]) for d in sorted(self.last)) or None,
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
            facts.first.setdefault(domain, gtid)
            facts.last[domain] = gtid
            if facts.first_time is None:
                facts.first_time = stamp
            facts.last_time = stamp
            facts.transactions += 1
            return gtid
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
