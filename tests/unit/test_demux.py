"""The demultiplexer that hands several files of one mbstream to Plakar at once:
interleaved chunks sorted to the right file whatever order and pace the files are
read in, memory bounded, files nobody reads spooled, a broken stream failing every
file not complete, and a stop that frees a pump waiting for a reader."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import threading
import time
import zlib

import pytest

from plakar_mysql.physical import demux
from plakar_mysql.physical.demux import Demultiplexer, FileContent
from plakar_mysql.physical.mbstream import MbstreamError


def payload(path: str, offset: int, data: bytes, *, crc: int | None = None) -> bytes:
    """A payload chunk of ``path`` (see :mod:`plakar_mysql.physical.mbstream`)."""
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


def interleaved(files: dict[str, bytes], chunk: int, seed: int = 1) -> bytes:
    """An mbstream of ``files`` whose chunks of ``chunk`` bytes interleave at random,
    each file's chunks in order, as ``mariadb-backup --parallel`` writes them."""
    rng = random.Random(seed)
    offsets = dict.fromkeys(files, 0)
    out = []
    while offsets:
        path = rng.choice(sorted(offsets))
        offset = offsets[path]
        data = files[path][offset : offset + chunk]
        if data:
            out.append(payload(path, offset, data))
            offsets[path] = offset + len(data)
        else:
            out.append(eof(path))
            del offsets[path]
    return b"".join(out)


def distinct_files(count: int, size: int) -> dict[str, bytes]:
    """Files whose every 64-byte block says which file and offset it is, so that any
    byte put in the wrong file or at the wrong place changes a digest."""
    files = {}
    for n in range(count):
        blocks = [f"file {n:03d} block {i:012d}".ljust(64, ".").encode() for i in range(size // 64)]
        files[f"db{n % 3}/t{n}.ibd"] = b"".join(blocks)
    return files


class _Pipe(io.RawIOBase):
    """A stream handed out in small reads, as a pipe does."""

    def __init__(self, data: bytes, piece: int = 65536) -> None:
        super().__init__()
        self._data = memoryview(data)
        self._piece = piece

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = self._piece if size < 0 else min(size, self._piece)
        data, self._data = bytes(self._data[:size]), self._data[size:]
        return data


def read_concurrently(
    reader: Demultiplexer, delay: float = 0.0, reverse: bool = False
) -> dict[str, bytes]:
    """Every file read by a thread of its own (as Plakar's workers do); with
    ``reverse``, the files are opened only once all were announced, last first."""
    got: dict[str, bytes] = {}
    errors: list[BaseException] = []

    def drain(content: FileContent) -> None:
        parts = []
        try:
            while data := content.read(3 << 20):
                parts.append(data)
                if delay:
                    time.sleep(delay)
            got[content.path] = b"".join(parts)
        except BaseException as exc:
            errors.append(exc)
        finally:
            content.close()

    announced = list(reader.files()) if reverse else None
    threads = []
    for content in reversed(announced) if announced is not None else reader.files():
        content.opened()  # as the SDK does when Plakar's request arrives
        thread = threading.Thread(target=drain, args=(content,))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return got


def digests(files: dict[str, bytes]) -> dict[str, str]:
    return {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}


def test_interleaved_files_read_at_once_each_get_their_own_bytes() -> None:
    files = distinct_files(6, 600_000)
    reader = Demultiplexer(_Pipe(interleaved(files, 70_000)))
    got = read_concurrently(reader)
    assert digests(got) == digests(files)
    assert {path: content.size for path, content in reader.files_seen.items()} == {
        path: len(data) for path, data in files.items()
    }
    assert reader.peak_spooled_bytes == 0  # every file had a reader: nothing on disk


def test_a_chunk_put_in_the_wrong_file_is_seen() -> None:
    """The digests above catch a mix-up: swap two files' chunks and they differ."""
    files = distinct_files(2, 128)
    a, b = sorted(files)
    swapped = payload(a, 0, files[b]) + payload(b, 0, files[a]) + eof(a) + eof(b)
    got = read_concurrently(Demultiplexer(_Pipe(swapped)))
    assert digests(got) != digests(files)


def test_files_nobody_reads_yet_spool_beyond_the_memory_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(demux, "WAITING_MEMORY", 300_000)
    monkeypatch.setattr(demux, "FILE_MEMORY", 200_000)
    files = distinct_files(5, 400_000)
    reader = Demultiplexer(_Pipe(interleaved(files, 50_000, seed=7)))
    got = read_concurrently(reader, reverse=True)  # nothing opened before the stream ends
    assert digests(got) == digests(files)
    assert reader.peak_memory_bytes <= 300_000
    assert reader.peak_spooled_bytes >= sum(map(len, files.values())) - 300_000
    assert reader.spooled_bytes == 0  # every spool removed once read


def test_the_pump_waits_for_a_slow_reader_within_the_memory_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(demux, "FILE_MEMORY", 100_000)
    files = distinct_files(3, 1_000_000)
    reader = Demultiplexer(_Pipe(interleaved(files, 40_000, seed=3)))
    got = read_concurrently(reader, delay=0.001)
    assert digests(got) == digests(files)
    # Three files read as they come: at most a bound's worth each, plus one payload block
    # (before its reader came, a file may have spooled instead).
    assert reader.peak_memory_bytes <= 3 * (100_000 + 40_000)


def test_held_back_files_are_announced_complete_and_last() -> None:
    files = {"ib_logfile0": b"redo" * 50_000, **distinct_files(2, 300_000)}
    reader = Demultiplexer(_Pipe(interleaved(files, 30_000, seed=5)), held_back={"ib_logfile0"})
    order = []
    got = {}
    for content in reader.files():  # each read to its end before the next is announced
        order.append((content.path, content.complete))
        parts = []
        stream = content.opened()
        while data := stream.read(1 << 20):
            parts.append(data)
        got[content.path] = b"".join(parts)
    assert order[-1] == ("ib_logfile0", True)
    assert digests(got) == digests(files)


def test_kept_copies_and_empty_files() -> None:
    stream = payload("xtrabackup_checkpoints", 0, b"backup_type = full-backuped\n") + eof(
        "xtrabackup_checkpoints"
    )
    stream += eof("empty.MYD")
    reader = Demultiplexer(_Pipe(stream), keep={"xtrabackup_checkpoints"}, keep_limit=12)
    got = read_concurrently(reader)
    assert got == {
        "xtrabackup_checkpoints": b"backup_type = full-backuped\n",
        "empty.MYD": b"",
    }
    assert reader.files_seen["xtrabackup_checkpoints"].copy == b"backup_type "


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (payload("a", 0, b"x" * 1000, crc=1) + eof("a"), "checksum mismatch"),
        (payload("a", 0, b"x" * 1000) + payload("a", 5, b"y") + eof("a"), "out of order"),
        (payload("a", 0, b"x" * 1000) + eof("a") + payload("a", 0, b"x"), "appears twice"),
        (payload("a", 0, b"x" * 1000) + payload("b", 0, b"y"), "before the end of a, b"),
        (payload("a", 0, b"x" * 1000)[:-10], "ends in the middle"),
    ],
)
def test_a_broken_stream_fails_the_scan_and_every_unfinished_file(
    stream: bytes, message: str
) -> None:
    reader = Demultiplexer(_Pipe(stream))
    announced = []
    with pytest.raises(MbstreamError, match=message):
        for content in reader.files():
            announced.append(content)
    for content in announced:
        if not content.complete:
            with pytest.raises(MbstreamError, match=message):
                while content.opened().read(1 << 20):
                    pass


def test_stop_frees_a_pump_waiting_for_a_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demux, "FILE_MEMORY", 10_000)
    files = distinct_files(1, 1_000_000)
    reader = Demultiplexer(_Pipe(interleaved(files, 5_000)))
    events = reader.files()
    content = next(events)
    content.opened()  # opened, never read: the pump fills its bound and waits
    deadline = time.monotonic() + 10
    while reader.peak_memory_bytes < 10_000 and time.monotonic() < deadline:
        time.sleep(0.01)
    reader.stop()
    with pytest.raises(MbstreamError, match="abandoned"):
        next(events)
    with pytest.raises(MbstreamError, match="abandoned"):
        while content.read(1 << 20):
            pass


def test_a_closed_file_is_dropped_and_the_others_go_on() -> None:
    files = distinct_files(3, 500_000)
    reader = Demultiplexer(_Pipe(interleaved(files, 20_000, seed=11)))
    got: dict[str, bytes] = {}
    threads = []
    closed = ""
    for n, content in enumerate(reader.files()):
        if n == 0:
            closed = content.path
            content.close()  # Plakar never reads it
            continue

        def drain(c: FileContent = content) -> None:
            parts = []
            while data := c.opened().read(1 << 20):
                parts.append(data)
            got[c.path] = b"".join(parts)

        threads.append(threading.Thread(target=drain))
        threads[-1].start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(got) == sorted(set(files) - {closed})
    assert digests(got) == {k: v for k, v in digests(files).items() if k != closed}
    assert reader.spooled_bytes == 0


def test_with_reader_wait_a_file_not_opened_yet_waits_for_its_reader_not_the_disk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As when Plakar reads as many files at once as the tool copies: the readers come
    late (after 0.2 s), the stream waits for them and nothing goes to disk but the
    held-back redo log."""
    monkeypatch.setattr(demux, "WAITING_MEMORY", 100_000)
    monkeypatch.setattr(demux, "FILE_MEMORY", 50_000)
    files = {"ib_logfile0": b"redo" * 100_000, **distinct_files(3, 800_000)}
    reader = Demultiplexer(
        _Pipe(interleaved(files, 20_000, seed=13)), held_back={"ib_logfile0"}, reader_wait=30
    )
    got: dict[str, bytes] = {}
    threads = []

    def late(content: FileContent) -> None:
        time.sleep(0.2)
        parts = []
        stream = content.opened()
        while data := stream.read(1 << 20):
            parts.append(data)
        got[content.path] = b"".join(parts)

    for content in reader.files():
        threads.append(threading.Thread(target=late, args=(content,)))
        threads[-1].start()
    for thread in threads:
        thread.join(timeout=30)
    assert digests(got) == digests(files)
    assert reader.peak_spooled_bytes == len(files["ib_logfile0"])
    assert reader.peak_memory_bytes <= 100_000 + 3 * (50_000 + 20_000)


def test_a_reader_that_does_not_come_in_time_lets_the_file_spool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(demux, "FILE_MEMORY", 50_000)
    files = distinct_files(2, 400_000)
    reader = Demultiplexer(_Pipe(interleaved(files, 20_000, seed=2)), reader_wait=0.05)
    got = read_concurrently(reader, reverse=True)  # opened only after the stream's end
    assert digests(got) == digests(files)
    assert reader.peak_spooled_bytes > 0
