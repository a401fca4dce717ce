"""The binary-log walk and the replay's choice of transactions, on synthetic logs.

The logs are built here event by event in MariaDB's format (19-byte headers,
GTID list, GTID events), so every boundary case - an event split across
blocks, a stop inside a transaction - is exact and known.
"""

from __future__ import annotations

import struct

import pytest

from plakar_mysql.binlog.comments import Comments
from plakar_mysql.binlog.restore import (
    Bounds,
    FilePosition,
    Recorder,
    Selector,
    _gap,
    archive_range,
    escaped,
    read_head,
    verdict,
)
from plakar_mysql.binlog.scanner import (
    FORMAT_DESCRIPTION,
    GTID,
    GTID_LIST,
    MAGIC,
    BinlogFormatError,
    FileFacts,
    Scanner,
)
from plakar_mysql.core.gtid import Gtid, GtidError, Position
from plakar_mysql.core.option_models import BinlogRestoreOptions
from plakar_mysql.core.options import ConfigError

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


def bounds(**options: str) -> Bounds:
    return Bounds.from_options(
        BinlogRestoreOptions.parse({"location": "mysql+binlog://h", **options})
    )


def test_bounds_from_options() -> None:
    assert bounds(stop_position="mysql-bin.000012:4711").stop == FilePosition(
        "mysql-bin.000012", 4711
    )
    with pytest.raises(ConfigError, match="not 'YYYY-MM-DD HH:MM:SS'"):
        bounds(stop_datetime="14:02")
    with pytest.raises(ConfigError, match="not both"):
        bounds(stop_datetime="2026-01-01 00:00:00", stop_position="0-1-2")
    with pytest.raises(ConfigError, match="is not after start_position"):
        bounds(start_position="0-1-9", stop_position="0-1-5")
    with pytest.raises(ConfigError, match="neither a GTID position"):
        bounds(start_position="yesterday")


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


# -- the replay's records, its verdict, names in comments (issue 21) --------------

TABLE_MAP = 19
FL_STANDALONE, FL_TRANSACTIONAL = 0x01, 0x04


def group_log(groups: list[tuple[Gtid, int, list[tuple[int, bytes]]]]) -> bytes:
    """A log of groups: each a GTID event with ``flags`` and its events (kind, body)."""
    out = bytearray(binlog([Gtid(0, 1, 0)], []))
    for gtid, flags, events in groups:
        body = struct.pack("<QIB", gtid.seq, gtid.domain, flags)
        out += event(GTID, T0 + gtid.seq, body, len(out), gtid.server)
        for kind, payload in events:
            out += event(kind, T0 + gtid.seq, payload, len(out))
    return bytes(out)


def query(sql: bytes, db: bytes = b"d") -> bytes:
    return struct.pack("<IIBHH", 7, 0, len(db), 0, 0) + db + b"\0" + sql


def table_map(db: bytes, table: bytes, table_id: int) -> bytes:
    ids = struct.pack("<IH", table_id & 0xFFFFFFFF, table_id >> 32) + b"\1\0"
    return ids + bytes([len(db)]) + db + b"\0" + bytes([len(table)]) + table + b"\0\1\3\0"


RECORDER_LOG = group_log(
    [
        (Gtid(0, 1, 1), FL_TRANSACTIONAL, [(QUERY, query(b"UPDATE t SET v = 1")), (XID, b"x" * 8)]),
        (Gtid(0, 1, 2), FL_STANDALONE, [(QUERY, query(b"CREATE TABLE u (i INT)"))]),
        (
            Gtid(0, 1, 3),
            0,
            [(QUERY, query(b"INSERT INTO myisam VALUES (1)")), (QUERY, query(b"COMMIT"))],
        ),
        (
            Gtid(0, 1, 4),
            FL_TRANSACTIONAL,
            [(QUERY, query(b"UPDATE t SET v = 2")), (QUERY, query(b"ROLLBACK"))],
        ),
        (Gtid(0, 1, 5), FL_STANDALONE, [(QUERY, query(b"DROP TABLE u"))]),
    ]
)


def records_in(data: bytes) -> list[tuple[str, int]]:
    """Each record event in ``data`` (the query events whose statement names the
    record table): the GTID it records and the GTID of the group it sits in."""
    found: list[tuple[str, int]] = []
    group = [0]

    def note(offset: int, length: int, kind: int, stamp: int, gtid: Gtid | None) -> bool:
        if gtid is not None:
            group[0] = gtid.seq
        if kind == QUERY and b"gtid_slave_pos" in data[offset : offset + length]:
            values = data[offset : offset + length].rsplit(b"VALUES (", 1)[1].rstrip(b")")
            domain, _sub, server, seq = values.split(b", ")
            found.append((f"{int(domain)}-{int(server)}-{int(seq)}", group[0]))
        return True

    scanner = Scanner("probe", select=note)
    scanner.feed(data)
    return found


def test_each_transaction_records_itself_before_its_commit_or_after_it() -> None:
    """A transactional group's record sits inside it, before the XID; a DDL, a
    non-transactional group and one ending in ROLLBACK record themselves after
    their end (inside the next group's bytes only as its first, separate event)."""
    recorder = Recorder(100, None, binlogging=True)
    selector = Selector(Bounds(), Position.parse("0-1-0"), None, recorder)
    scanner = Scanner("mysql-bin.000002", select=selector)
    selector.begin(scanner)
    out = feed(scanner, RECORDER_LOG, 23) + (selector.owed() or b"")
    selector.end()
    assert selector.applied == Position.parse("0-1-5")
    records = records_in(out)
    # 0-1-1 inside its own group; the others right after theirs (before the next GTID).
    assert records == [("0-1-1", 1), ("0-1-2", 2), ("0-1-3", 3), ("0-1-4", 4), ("0-1-5", 5)]
    inside = out.index(b"VALUES (0, 100, 1, 1)")
    assert inside < out.index(b"UPDATE t SET v = 2")
    # Alone, after a DDL, on a target writing a binary log: kept out of that log.
    assert out.count(b"SET STATEMENT sql_log_bin=0 FOR INSERT") == 4
    assert b"VALUES (0, 104, 1, 5)" in out  # sub_id goes up by one per record


def test_a_stop_inside_a_transaction_records_nothing_for_it() -> None:
    cut = gtid_offsets(RECORDER_LOG)[Gtid(0, 1, 2)] + 32  # at 0-1-2's DDL event
    bounds = Bounds(stop=FilePosition("mysql-bin.000002", cut))
    selector = Selector(bounds, Position.parse("0-1-0"), None, Recorder(1, None, False))
    scanner = Scanner("mysql-bin.000002", select=selector)
    selector.begin(scanner)
    out = feed(scanner, RECORDER_LOG, 1 << 20) + (selector.owed() or b"")
    assert [r[0] for r in records_in(out)] == ["0-1-1"]
    assert b"sql_log_bin" not in out  # the target writes no binary log


def test_names_with_line_breaks_keep_their_comment_whole() -> None:
    comments = Comments()
    name = b"nl\n# at 4\nDROP DATABASE zz;"
    comments.expect(b"plain", b"t`1", 5)  # no line break: nothing to do
    assert not comments
    comments.expect(name, b"a\nb", 22)
    filtered = Comments("x")  # the tool's --database=x writes no other table map
    filtered.expect(name, b"a\nb", 22)
    assert not filtered
    header = b"#261203 11:45:35 server id 1  end_log_pos 7579 CRC32 0x5fc32500 "
    written = b"\tTable_map: `" + name + b"`.`a\nb` mapped to number 22\n"
    before = b"INSERT INTO t VALUES ('\tTable_map: `nl')\n/*!*/;\n"
    text = before + header + written + b"# at 7579\nBINLOG '\nxyz\n'/*!*/;\n"
    # Cut anywhere: what is sent never holds a line of the comment that is not one.
    for cut in range(len(before) + 1, len(text)):
        if text[cut - 1 : cut] != b"\n":
            continue
        comments = Comments()
        comments.expect(name, b"a\nb", 22)
        first, held = comments.fix(text[:cut])
        second, rest = comments.fix(held + text[cut:])
        assert rest == b"" and not comments
        sent = first + second
        assert sent.startswith(before)
        lines = sent[len(before) :].split(b"\n")
        assert all(line.startswith(b"#") for line in lines[:5]), lines
        assert b"DROP DATABASE zz;`.`a" in sent and lines[5] == b"BINLOG '"


def test_the_scanner_decodes_what_the_selector_needs() -> None:
    seen: list[tuple[int, int, bytes, tuple[bytes, bytes, int] | None]] = []
    log = group_log(
        [(Gtid(0, 1, 1), FL_TRANSACTIONAL, [(TABLE_MAP, table_map(b"a\nb", b"t", 1 << 33))])]
    )
    scanner = Scanner("f")

    def note(offset: int, length: int, kind: int, stamp: int, gtid: Gtid | None) -> bool:
        seen.append((kind, scanner.flags, scanner.query, scanner.table_map))
        return False

    scanner._select = note
    feed(scanner, log, 5)
    assert seen[-2][:2] == (GTID, FL_TRANSACTIONAL)
    assert seen[-1][3] == (b"a\nb", b"t", 1 << 33)


def facts(name: str, first: int, last: int, opened: int = T0) -> FileFacts:
    found = FileFacts(name, start=Position.parse(f"0-1-{first - 1}"), opened=opened)
    found.first, found.last = {0: Gtid(0, 1, first)}, {0: Gtid(0, 1, last)}
    found.first_time, found.last_time, found.max_time = T0 + first, T0 + last, T0 + last + 1
    found.transactions = last - first + 1
    return found


def test_the_verdict_refuses_what_the_replay_cannot_reach() -> None:
    read = [facts("mysql-bin.000001", 1, 10), facts("mysql-bin.000002", 11, 20)]
    # The target already past a stop_datetime: it holds a transaction at or after it.
    past_time = Bounds(stop_time=T0 + 5, stop_text="early")
    selector = Selector(past_time, Position.parse("0-1-12"), None)
    selector.beyond = (Gtid(0, 1, 5), T0 + 5)
    assert "already holds transaction 0-1-5" in (verdict(past_time, selector, read) or "")
    # A stop_position GTID behind the target, and one beyond the archive.
    behind = Bounds(stop=Position.parse("0-1-3"))
    assert "after stop_position 0-1-3" in (
        verdict(behind, Selector(behind, Position.parse("0-1-12"), None), read) or ""
    )
    beyond = Bounds(stop=Position.parse("0-1-99"))
    done = Selector(beyond, Position.parse("0-1-20"), None)
    assert "the archive ends before stop_position" in (verdict(beyond, done, read) or "")
    # Already at the GTID stop: provably there.
    assert (
        verdict(
            Bounds(stop=Position.parse("0-1-12")),
            Selector(Bounds(), Position.parse("0-1-12"), None),
            read,
        )
        is None
    )
    # No stop: a target past the archive's end, and one right at it.
    assert "after the archive's end 0-1-20" in (
        verdict(Bounds(), Selector(Bounds(), Position.parse("0-1-25"), None), read) or ""
    )
    assert verdict(Bounds(), Selector(Bounds(), Position.parse("0-1-20"), None), read) is None
    # A stop_datetime after the archive's last event.
    late = Bounds(stop_time=T0 + 500, stop_text="late")
    assert "the archive ends at" in (
        verdict(late, Selector(late, Position.parse("0-1-20"), None), read) or ""
    )
    # Nothing applied before a stop_datetime: proven only if the archive began before it.
    soon = Bounds(stop_time=T0 + 15, stop_text="soon")
    waiting = Selector(soon, Position.parse("0-1-14"), None)
    waiting.stop_seen = True
    assert verdict(soon, waiting, read) is None
    assert "cannot show" in (
        verdict(soon, waiting, [facts("x.000001", 1, 20, opened=T0 + 16)]) or ""
    )
    # A file:position start the logs never reached.
    start = FilePosition("mysql-bin.000009", 4)
    assert "was not reached" in (
        verdict(Bounds(start=start), Selector(Bounds(start=start), Position(), start), read) or ""
    )


def test_the_archive_range_names_first_and_last_transactions() -> None:
    read = [facts("mysql-bin.000001", 1, 10), facts("mysql-bin.000002", 11, 20)]
    text = archive_range(read, ["mysql-bin.000003"])
    assert text.startswith("the archive's logs mysql-bin.000001 to mysql-bin.000002 hold 0-1-1 of ")
    assert " to 0-1-20 of " in text and "(1 later log(s), after the stop, not read)" in text


def test_messages_print_names_on_one_line() -> None:
    assert escaped("Table 'a\nb\r' \x01 exists\t!") == "Table 'a\\nb\\r' \\x01 exists\t!"
