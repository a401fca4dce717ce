"""The binary-log walk and the replay's choice of transactions, on synthetic logs.

The logs are built here event by event in MariaDB's format (19-byte headers,
GTID list, GTID events), so every boundary case - an event split across
blocks, a stop inside a transaction - is exact and known.
"""

from __future__ import annotations

import struct

import pytest

from plakar_mysql.binlog.events import (
    FORMAT_DESCRIPTION,
    GTID,
    GTID_LIST,
    MAGIC,
    BinlogFormatError,
    Scanner,
)
from plakar_mysql.binlog.gtid import Gtid, GtidError, Position
from plakar_mysql.binlog.replay import Bounds, FilePosition, Selector, _gap, read_head
from plakar_mysql.options import ConfigError

QUERY = 2
XID = 16
T0 = 1_800_000_000


def event(kind: int, stamp: int, body: bytes, at: int, server: int = 1) -> bytes:
    length = 19 + len(body)
    return struct.pack("<IBIIIH", stamp, kind, server, length, at + length, 0) + body


def binlog(start: list[Gtid], transactions: list[tuple[Gtid, int, bytes]]) -> bytes:
    """A log: format description, GTID list, then per transaction GTID + query + xid."""
    out = bytearray(MAGIC)
    version = b"10.11.19-MariaDB".ljust(50, b"\0")
    out += event(FORMAT_DESCRIPTION, T0, struct.pack("<H", 4) + version + b"\0" * 40, len(out))
    items = b"".join(struct.pack("<IIQ", g.domain, g.server, g.seq) for g in start)
    out += event(GTID_LIST, T0, struct.pack("<I", len(start)) + items, len(out))
    for gtid, stamp, sql in transactions:
        out += event(
            GTID, stamp, struct.pack("<QIB", gtid.seq, gtid.domain, 0), len(out), gtid.server
        )
        out += event(QUERY, stamp, sql, len(out))
        out += event(XID, stamp, struct.pack("<Q", gtid.seq), len(out))
    return bytes(out)


def feed(scanner: Scanner, data: bytes, size: int) -> bytes:
    return b"".join(
        bytes(piece)
        for k in range(0, len(data), size)
        for piece in scanner.feed(data[k : k + size])
    )


TX = [(Gtid(0, 1, n), T0 + n, b"UPDATE t SET v = v + 1 -- " + b"x" * (n * 7)) for n in range(5, 11)]
LOG = binlog([Gtid(0, 1, 4)], TX)


@pytest.mark.parametrize("size", [1, 7, 19, 64, 1 << 20])
def test_scanner_reads_the_facts_whatever_the_blocks(size: int) -> None:
    scanner = Scanner("mysql-bin.000002")
    assert feed(scanner, LOG, size) == b""  # nothing selected, nothing returned
    facts = scanner.finish()
    assert facts.size == len(LOG)
    assert facts.server_version == "10.11.19-MariaDB"
    assert facts.start == Position.parse("0-1-4")
    assert facts.end == Position.parse("0-1-10")
    assert facts.transactions == 6
    assert (facts.first_time, facts.last_time) == (T0 + 5, T0 + 10)
    assert facts.as_json()["first_gtid"] == "0-1-5"
    assert facts.as_json()["last_gtid"] == "0-1-10"


@pytest.mark.parametrize("size", [1, 5, 19, 100, 1 << 20])
def test_selecting_everything_gives_the_bytes_back(size: int) -> None:
    scanner = Scanner("f", select=lambda *_: True)
    assert feed(scanner, LOG, size) == LOG


def test_truncated_or_foreign_bytes_are_refused() -> None:
    scanner = Scanner("f")
    scanner.feed(LOG[:-3])
    with pytest.raises(BinlogFormatError, match="ends in the middle of an event"):
        scanner.finish()
    with pytest.raises(BinlogFormatError, match="not a binary log"):
        Scanner("g").feed(b"-- a dump\n")


def kept(selector: Selector, name: str, data: bytes, size: int = 13) -> list[int]:
    """The sequence numbers of the transactions kept from ``data``."""
    scanner = Scanner(name, select=selector)
    selector.begin(scanner)
    out = feed(scanner, data, size) + (selector.owed() or b"")
    selector.end()
    return [g.seq for g in gtid_offsets(out)]


def gtid_offsets(data: bytes) -> dict[Gtid, int]:
    """Each transaction's GTID in ``data`` (a whole log), and its offset."""
    found: dict[Gtid, int] = {}

    def note(offset: int, length: int, kind: int, stamp: int, gtid: Gtid | None) -> bool:
        if gtid is not None:
            found[gtid] = offset
        return True

    scanner = Scanner("probe", select=note)
    scanner.feed(data)
    scanner.finish()
    return found


def test_selector_starts_after_the_restored_point_and_stops_at_a_time() -> None:
    bounds = Bounds(stop_time=T0 + 9, stop_text="then")
    selector = Selector(bounds, Position.parse("0-1-6"), None)
    assert kept(selector, "mysql-bin.000002", LOG) == [7, 8]
    assert selector.applied == Position.parse("0-1-8")
    assert selector.stopped and "stop_datetime" in selector.stop_reason


def test_selector_stops_after_a_gtid_inclusive() -> None:
    bounds = Bounds(stop=Position.parse("0-1-7"))
    selector = Selector(bounds, Position.parse("0-1-4"), None)
    assert kept(selector, "mysql-bin.000002", LOG) == [5, 6, 7]
    assert selector.applied == Position.parse("0-1-7")


def test_a_file_position_stop_inside_a_transaction_drops_it() -> None:
    # The query event of transaction 8: its GTID event comes before the stop.
    query_of_8 = gtid_offsets(LOG)[Gtid(0, 1, 8)] + 19 + 13
    bounds = Bounds(stop=FilePosition("mysql-bin.000002", query_of_8))
    selector = Selector(bounds, Position.parse("0-1-4"), None)
    seqs = kept(selector, "mysql-bin.000002", LOG)
    assert seqs == [5, 6, 7, 8]  # 8's GTID event is sent; its statements are not
    assert selector.applied == Position.parse("0-1-7")
    assert selector.kept == 3


def test_a_file_position_start_skips_what_comes_before() -> None:
    start = FilePosition("mysql-bin.000002", gtid_offsets(LOG)[Gtid(0, 1, 9)])
    selector = Selector(Bounds(start=start), Position(), start)
    assert kept(selector, "mysql-bin.000001", binlog([], [(Gtid(0, 1, 1), T0, b"x")])) == []
    assert kept(selector, "mysql-bin.000002", LOG) == [9, 10]


def test_positions() -> None:
    point = Position.parse("0-1-57, 1-2-9")
    assert str(point) == "0-1-57,1-2-9"
    assert point.covers(Gtid(0, 3, 57)) and not point.covers(Gtid(1, 2, 10))
    assert point.advanced([Gtid(1, 2, 12)]) == Position.parse("0-1-57,1-2-12")
    later = Position.parse("0-1-120")
    assert _gap(later.ahead_of(point)) == "transactions 0-*-58 to 0-1-120 are missing"
    assert not Position()
    with pytest.raises(GtidError):
        Position.parse("0-1-5,0-2-6")
    with pytest.raises(GtidError):
        Position.parse("0-1")


def test_bounds_from_options() -> None:
    assert Bounds.from_options({"stop_position": "mysql-bin.000012:4711"}).stop == FilePosition(
        "mysql-bin.000012", 4711
    )
    with pytest.raises(ConfigError, match="not 'YYYY-MM-DD HH:MM:SS'"):
        Bounds.from_options({"stop_datetime": "14:02"})
    with pytest.raises(ConfigError, match="not both"):
        Bounds.from_options({"stop_datetime": "2026-01-01 00:00:00", "stop_position": "0-1-2"})
    with pytest.raises(ConfigError, match="is not after start_position"):
        Bounds.from_options({"start_position": "0-1-9", "stop_position": "0-1-5"})
    with pytest.raises(ConfigError, match="neither a GTID position"):
        Bounds.from_options({"start_position": "yesterday"})


def test_a_file_position_stop_at_a_transaction_start_keeps_the_one_before() -> None:
    gtid_of_8 = gtid_offsets(LOG)[Gtid(0, 1, 8)]
    bounds = Bounds(stop=FilePosition("mysql-bin.000002", gtid_of_8))
    selector = Selector(bounds, Position.parse("0-1-4"), None)
    assert kept(selector, "mysql-bin.000002", LOG) == [5, 6, 7]
    assert selector.applied == Position.parse("0-1-7")
    assert selector.kept == 3


def test_a_file_position_stop_at_the_end_of_a_log_applies_no_later_log() -> None:
    bounds = Bounds(stop=FilePosition("mysql-bin.000002", len(LOG)))
    selector = Selector(bounds, Position.parse("0-1-4"), None)
    assert kept(selector, "mysql-bin.000002", LOG) == [5, 6, 7, 8, 9, 10]
    later = binlog([Gtid(0, 1, 10)], [(Gtid(0, 1, 11), T0 + 11, b"x")])
    assert kept(selector, "mysql-bin.000003", later) == []
    assert selector.applied == Position.parse("0-1-10")
    assert selector.stopped


class LazyLog:
    """A log of ``count`` 1 MiB query events after its head, made as it is read
    (never whole in memory); :attr:`served` counts the bytes read from it."""

    def __init__(self, count: int, start: list[Gtid] | None = None) -> None:
        self.buffer = bytearray(binlog(start, [])) if start is not None else bytearray(MAGIC)
        if start is None:  # a format description, and no GTID list
            version = b"10.11.19-MariaDB".ljust(50, b"\0")
            body = struct.pack("<H", 4) + version + b"\0" * 40
            self.buffer += event(FORMAT_DESCRIPTION, T0, body, len(self.buffer))
        self.left = count
        self.served = 0

    def read(self, size: int = -1) -> bytes:
        while self.left and len(self.buffer) < size:
            self.buffer += event(QUERY, T0, b"x" * ((1 << 20) - 19), 0)
            self.left -= 1
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        self.served += len(data)
        return data


@pytest.mark.parametrize("start", [None, [Gtid(0, 1, 4)]])
def test_the_head_of_a_log_is_read_in_bounded_memory(start: list[Gtid] | None) -> None:
    """Whether the log has a GTID list or not (a hostile or foreign log), the
    replay reads a block of it to know, not the whole log (here 64 MiB)."""
    log = LazyLog(64, start)
    scanner = Scanner("mysql-bin.000001", select=lambda *_: True)
    head = read_head(scanner, log)
    assert scanner.facts.start == (Position(start) if start else None)
    assert log.served <= 2 << 20, log.served
    assert sum(len(piece) for piece in head) == log.served
