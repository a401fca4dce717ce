"""The mbstream reader on hand-made streams: interleaving, spooling, and every way a
stream can be broken.  (A real ``mariadb-backup`` stream is read in tests/test_physical.py.)"""

from __future__ import annotations

import hashlib
import io
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from plakar_mysql.physical.mbstream import MbstreamError, MbstreamReader


def payload(path: str, offset: int, data: bytes, *, crc: int | None = None) -> bytes:
    name = path.encode()
    checksum = zlib.crc32(data) if crc is None else crc
    return (
        b"XBSTCK01"
        + struct.pack("<BBI", 0, ord("P"), len(name))
        + name
        + struct.pack("<QQI", len(data), offset, checksum)
        + data
    )


def eof(path: str) -> bytes:
    name = path.encode()
    return b"XBSTCK01" + struct.pack("<BBI", 0, ord("E"), len(name)) + name


def read_all(stream: bytes, block: int = 1 << 20) -> tuple[list[str], dict[str, bytes], int]:
    reader = MbstreamReader(io.BytesIO(stream))
    order: list[str] = []
    files: dict[str, bytes] = {}
    for entry in reader:
        order.append(entry.path)
        parts = []
        while data := entry.read(block):
            parts.append(data)
        files[entry.path] = b"".join(parts)
    return order, files, reader.peak_spooled_bytes


def test_sequential_files_stream_without_spooling() -> None:
    a, b = b"a" * 3000, bytes(range(256)) * 10
    stream = (
        payload("ibdata1", 0, a[:1000])
        + payload("ibdata1", 1000, a[1000:])
        + eof("ibdata1")
        + payload("./shop/t.ibd", 0, b)
        + eof("./shop/t.ibd")
        + eof("empty")
    )
    order, files, peak = read_all(stream, block=777)
    assert order == ["ibdata1", "shop/t.ibd", "empty"]
    assert files == {"ibdata1": a, "shop/t.ibd": b, "empty": b""}
    assert peak == 0


def test_interleaved_file_is_spooled_and_handed_out_once_complete() -> None:
    log = [bytes([i]) * 500 for i in range(4)]
    data = [bytes([100 + i]) * 800 for i in range(3)]
    stream = (
        payload("ib_logfile0", 0, log[0])
        + payload("ibdata1", 0, data[0])
        + payload("ib_logfile0", 500, log[1])
        + payload("ibdata1", 800, data[1])
        + eof("ibdata1")
        + payload("shop/t.ibd", 0, data[2])
        + payload("ib_logfile0", 1000, log[2])
        + eof("shop/t.ibd")
        + payload("ib_logfile0", 1500, log[3])
        + eof("ib_logfile0")
    )
    order, files, peak = read_all(stream)
    # The redo log copy starts first and goes on for the whole backup: it is
    # kept aside, and comes out when its end arrives; the data files stream.
    assert order == ["ibdata1", "shop/t.ibd", "ib_logfile0"]
    assert files["ib_logfile0"] == b"".join(log)
    assert files["ibdata1"] == data[0] + data[1]
    assert files["shop/t.ibd"] == data[2]
    assert peak == 2000  # the redo log only


def test_a_data_file_interleaved_with_another_streams_on_once_that_one_ends() -> None:
    """--parallel: two data files at once; the second is spooled only while the first runs."""
    a = [bytes([1]) * 1000, bytes([2]) * 1000]
    b = [bytes([3]) * 700, bytes([4]) * 900, bytes([5]) * 50000]
    stream = (
        payload("db/a.ibd", 0, a[0])
        + payload("db/b.ibd", 0, b[0])
        + payload("db/a.ibd", 1000, a[1])
        + eof("db/a.ibd")
        + payload("db/b.ibd", 700, b[1])
        + payload("db/b.ibd", 1600, b[2])
        + eof("db/b.ibd")
    )
    order, files, peak = read_all(stream)
    assert order == ["db/a.ibd", "db/b.ibd"]
    assert files == {"db/a.ibd": b"".join(a), "db/b.ibd": b"".join(b)}
    assert peak == 700  # what arrived while a.ibd was streaming, not the rest of b.ibd


def test_only_the_interleaved_bytes_are_spooled() -> None:
    big = bytes(range(256)) * 8192  # 2 MiB, streamed live
    stream = payload("big.ibd", 0, big[: 1 << 20])
    stream += payload("ib_logfile0", 0, b"L" * 4096)
    stream += payload("big.ibd", 1 << 20, big[1 << 20 :]) + eof("big.ibd")
    stream += eof("ib_logfile0")
    order, files, peak = read_all(stream)
    assert order == ["big.ibd", "ib_logfile0"]
    assert files["big.ibd"] == big and files["ib_logfile0"] == b"L" * 4096
    assert peak == 4096


def test_an_entry_closed_unread_is_skipped() -> None:
    stream = payload("a", 0, b"x" * 5000) + eof("a") + payload("b", 0, b"y") + eof("b")
    reader = MbstreamReader(io.BytesIO(stream))
    first = reader.next()
    assert first is not None and first.path == "a"
    second = reader.next()
    assert second is not None and second.path == "b" and second.read() == b"y"
    assert reader.next() is None


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (payload("a", 0, b"abc", crc=1) + eof("a"), "checksum mismatch"),
        (payload("a", 0, b"abc")[:-1], "ends in the middle"),
        (payload("a", 0, b"abc"), "ended before the end of a"),
        (payload("a", 0, b"abc") + eof("a") + b"XBST", "ends in the middle of a chunk header"),
        (b"NOTMAGIC" + b"\0" * 6, "bad chunk magic"),
        (payload("a", 0, b"abc") + payload("a", 5, b"d") + eof("a"), "out of order"),
        (payload("../etc/passwd", 0, b"x") + eof("../etc/passwd"), "unsafe file name"),
        (payload("/etc/passwd", 0, b"x") + eof("/etc/passwd"), "unsafe file name"),
        (payload("a/../../b", 0, b"x") + eof("a/../../b"), "unsafe file name"),
        (payload("a", 0, b"x") + eof("a") + payload("a", 0, b"y") + eof("a"), "appears twice"),
        (
            payload("a", 0, b"x") + payload("b", 0, b"y") + eof("a"),
            "ended before the end of b",
        ),
    ],
)
def test_broken_streams_raise_one_clear_error(stream: bytes, message: str) -> None:
    with pytest.raises(MbstreamError, match=message):
        read_all(stream)


@pytest.mark.skipif(shutil.which("mbstream") is None, reason="mbstream (mariadb-backup) missing")
def test_hand_made_stream_is_what_mbstream_extracts(tmp_path: Path) -> None:
    """The format as written here is the format MariaDB's own extractor reads."""
    data = {"ibdata1": b"i" * 70000, "shop/t.ibd": bytes(range(256)) * 300, "log": b"L" * 10}
    stream = (
        payload("ibdata1", 0, data["ibdata1"][:40000])
        + payload("log", 0, data["log"])
        + payload("ibdata1", 40000, data["ibdata1"][40000:])
        + eof("ibdata1")
        + payload("shop/t.ibd", 0, data["shop/t.ibd"])
        + eof("shop/t.ibd")
        + eof("log")
    )
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["mbstream", "-x", "-C", str(out)], input=stream, check=True, timeout=60)
    extracted = {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in out.rglob("*")
        if p.is_file()
    }
    _, files, _ = read_all(stream)
    assert extracted == {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}
