"""MySQL's side of the binary-log walk and of GTIDs, on synthetic logs and sets.

The logs are built here event by event in MySQL's format (format description
with CRC32 checksums, ``Previous_gtids``, GTID events of ``uuid:n``), so that
each case (a hole in a set, a transaction without a GTID, a tagged set, a
malformed set) is exact and known.  The end-to-end tests on MySQL 9.7 are in
``tests/test_binlog.py`` and ``tests/test_interrupt_binlog.py``.
"""

from __future__ import annotations

import struct
import uuid as uuidlib
import zlib

import pytest

from plakar_mysql.binlog.restore import Bounds, FilePosition, Selector, _gap, _point
from plakar_mysql.binlog.scanner import (
    ANONYMOUS_GTID,
    FORMAT_DESCRIPTION,
    MAGIC,
    MYSQL_GTID,
    PREVIOUS_GTIDS,
    BinlogFormatError,
    Scanner,
)
from plakar_mysql.core.gtid import Gtid, GtidError, GtidSet, Position, parse_point
from plakar_mysql.core.options import ConfigError

XID = 16
T0 = 1_800_000_000
UUID = "f788715c-ef40-11f1-94f5-02fc00000001"
OTHER = "0a0b0c0d-0000-1111-2222-333344445555"


def event(kind: int, stamp: int, body: bytes, at: int) -> bytes:
    """One event with its CRC32, as a log with checksums holds it."""
    length = 19 + len(body) + 4
    head = struct.pack("<IBIIIH", stamp, kind, 1, length, at + length, 0) + body
    return head + struct.pack("<I", zlib.crc32(head))


def gtid_set_body(sets: dict[str, list[tuple[int, int]]], head: int | None = None) -> bytes:
    """``Previous_gtids``: n_sids, then per uuid its intervals, ends exclusive."""
    out = struct.pack("<Q", len(sets) if head is None else head)
    for key, spans in sets.items():
        out += uuidlib.UUID(key).bytes + struct.pack("<Q", len(spans))
        out += b"".join(struct.pack("<QQ", a, b + 1) for a, b in spans)
    return out


def mysql_log(
    previous: dict[str, list[tuple[int, int]]],
    gnos: list[int],
    *,
    anonymous: bool = False,
    head: int | None = None,
) -> bytes:
    out = bytearray(MAGIC)
    version = b"9.7.4".ljust(50, b"\0")
    fde = struct.pack("<H", 4) + version + struct.pack("<IB", T0, 19) + b"\0" * 40 + b"\x01"
    out += event(FORMAT_DESCRIPTION, T0, fde, len(out))
    out += event(PREVIOUS_GTIDS, T0, gtid_set_body(previous, head), len(out))
    for gno in gnos:
        body = b"\x01" + uuidlib.UUID(UUID).bytes + struct.pack("<Q", gno) + b"\x02" + b"\0" * 16
        kind = ANONYMOUS_GTID if anonymous else MYSQL_GTID
        out += event(kind, T0 + gno, body, len(out))
        out += event(XID, T0 + gno, struct.pack("<Q", gno), len(out))
    return bytes(out)


def scan(data: bytes, select: Selector | None = None, block: int = 7) -> Scanner:
    scanner = Scanner("binlog.000002", select=select)
    if select is not None:
        select.begin(scanner)
    for at in range(0, len(data), block):
        scanner.feed(data[at : at + block])
    scanner.finish()
    if select is not None:
        select.end()
    return scanner


def test_the_scanner_reads_mysql_sets_gtids_and_times() -> None:
    data = mysql_log({UUID: [(1, 10), (12, 12)], OTHER: [(1, 3)]}, [13, 14, 15])
    facts = scan(data).facts
    assert facts.server_version == "9.7.4" and facts.checksum
    assert facts.start == GtidSet.parse(f"{UUID}:1-10:12,{OTHER}:1-3")
    assert facts.first[UUID] == Gtid(UUID, 1, 13) and facts.last[UUID] == Gtid(UUID, 1, 15)
    assert str(facts.end) == f"{OTHER}:1-3,{UUID}:1-10:12-15"
    entry = facts.as_json()
    assert entry["gtid_start"] == f"{OTHER}:1-3,{UUID}:1-10:12"
    assert (entry["first_gtid"], entry["last_gtid"]) == (f"{UUID}:13", f"{UUID}:15")
    assert entry["transactions"] == 3
    assert entry["first_event_time"] < entry["last_event_time"]


def test_transactions_without_a_gtid_are_counted_and_refused_by_the_replay() -> None:
    data = mysql_log({}, [1, 2], anonymous=True)
    facts = scan(data).facts
    assert facts.transactions == 0 and facts.as_json()["anonymous_transactions"] == 2
    selector = Selector(Bounds(), GtidSet(), None)
    with pytest.raises(BinlogFormatError, match="without a GTID"):
        scan(data, selector)


def test_malformed_and_tagged_sets() -> None:
    with pytest.raises(BinlogFormatError, match="malformed Previous_gtids"):
        scan(mysql_log({UUID: [(1, 3)]}, [], head=1 << 40))  # more uuids than bytes
    tagged = scan(mysql_log({}, [], head=1 << 56)).facts  # the tagged format's flag
    assert tagged.start is None and tagged.tagged


def test_the_selector_skips_what_the_target_holds_and_stops_at_a_gtid() -> None:
    data = mysql_log({UUID: [(1, 2)]}, [3, 4, 5, 6])
    held = GtidSet.parse(f"{UUID}:1-4,{OTHER}:1-9")  # the target's own transactions too
    selector = Selector(Bounds(stop=parse_point(f"{UUID}:5")), held, None)
    scan(data, selector)
    assert selector.kept == 1 and selector.stopped
    assert selector.applied == GtidSet.parse(f"{UUID}:1-5,{OTHER}:1-9")
    # A hole in the target's set is applied, not jumped over.
    selector = Selector(Bounds(), GtidSet.parse(f"{UUID}:1-3:5"), None)
    scan(data, selector)
    assert selector.kept == 2 and selector.applied == GtidSet.parse(f"{UUID}:1-6")


def test_gtid_sets() -> None:
    text = f"{UUID.upper()}:1-19:25,\n{OTHER}:3, {UUID}:tag_1:1-3"
    found = GtidSet.parse(text)
    assert str(found) == f"{OTHER}:3,{UUID}:1-19:25,{UUID}:tag_1:1-3"
    assert GtidSet.parse(str(found)) == found and not GtidSet.parse("")
    assert found.covers(Gtid(UUID, 0, 25)) and not found.covers(Gtid(UUID, 0, 20))
    lacking = found.difference(GtidSet.parse(f"{UUID}:5-30"))
    assert str(lacking) == f"{OTHER}:3,{UUID}:1-4,{UUID}:tag_1:1-3"
    assert GtidSet.parse(f"{UUID}:1-3").advanced([Gtid(UUID, 1, 4)]) == GtidSet.parse(f"{UUID}:1-4")
    assert _gap(GtidSet.parse(f"{UUID}:1-9").ahead_of(GtidSet.parse(f"{UUID}:1-4"))) == (
        f"transactions {UUID}:5-9 are missing"
    )
    for bad in ("nonsense", f"{UUID}:0", f"{UUID}:5-3", f"{UUID}:1-"):
        with pytest.raises(GtidError):
            GtidSet.parse(bad)
    assert Gtid.parse_mysql(f"{UUID}:7") == Gtid(UUID, 0, 7)
    assert isinstance(parse_point("0-1-5"), Position)
    assert isinstance(parse_point(f"{UUID}:1-5"), GtidSet)


def test_a_mysql_gtid_is_not_a_file_position() -> None:
    assert _point("stop_position", f"{UUID}:57") == GtidSet.parse(f"{UUID}:57")
    assert _point("stop_position", "binlog.000003:57") == FilePosition("binlog.000003", 57)
    with pytest.raises(ConfigError, match="uuid:1-57"):
        _point("stop_position", f"{UUID}:x")
