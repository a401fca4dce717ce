"""Read the xbstream/mbstream archive format entry by entry, the way :mod:`tarfile` reads a tar.

``mariadb-backup --stream=mbstream`` (and Percona XtraBackup's ``--stream=xbstream``)
writes a sequence of chunks.  Every chunk names the file it belongs to:

=========  =======================================================================
magic      8 bytes, ``XBSTCK01``
flags      1 byte; bit 0 says a reader may skip the chunk if it does not know its type
type       1 byte: ``P`` (payload), ``E`` (end of file), ``S`` (sparse payload, Percona)
path       4-byte little-endian length, then the path (relative, ``/``-separated)
payload    ``P`` only: 8-byte length, 8-byte offset in the file, 4-byte CRC-32 of the
           payload (zlib's), then the payload bytes
=========  =======================================================================

Chunks of one file come in order (each offset is where the previous one ended),
but chunks of several files interleave: the redo log is copied by its own
thread while the data files stream, and ``--parallel`` copies several data
files at once.

:class:`MbstreamReader` hands out one :class:`Entry` at a time.  The entry that
is being read streams straight from the pipe; chunks of *other* files met
meanwhile are spooled to temporary files (in memory while small).  When the
streaming entry ends, a complete spooled file is handed out next, else a
spooled file still in progress streams on from where its spool ends.  The
redo log copy is the exception: the tool appends to it from the first chunk
to the last, so it is always spooled (streamed live, it would hold every data
file back).  So the only bytes kept aside are those the interleaving forces -
the redo log copy, and with ``--parallel`` what other files sent while one
streamed - and a payload is never held whole in memory: it is read in blocks
of at most :data:`BLOCK` bytes.
"""

from __future__ import annotations

import io
import struct
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from plakar_mysql.core.errors import PlakarMySQLError

MAGIC = b"XBSTCK01"
BLOCK = 1 << 20
FLAG_IGNORABLE = 0x01
_HEADER = struct.Struct("<8sBBI")  # magic, flags, type, path length
_PAYLOAD = struct.Struct("<QQI")  # length, offset, checksum
_MAX_PATH = 4096
_SPOOL_IN_MEMORY = 256 << 10


#: Files the tool appends to for the whole backup (the redo log copy): streamed
#: live, they would hold every other file back, so they are always spooled.
COPIED_THROUGHOUT = frozenset({"ib_logfile0", "xtrabackup_logfile"})


def _copied_throughout(path: str) -> bool:
    return path in COPIED_THROUGHOUT


class MbstreamError(PlakarMySQLError, RuntimeError):
    """The stream is malformed, truncated or corrupt; one line for the user."""


def _read_exactly(source: IO[bytes], size: int, what: str) -> bytes:
    data = source.read(size)
    if len(data) == size:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = source.read(size - got)
        if not more:
            raise MbstreamError(f"the stream ends in the middle of {what}")
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def safe_path(raw: bytes) -> str:
    """The chunk's path as text, refused if it could escape the directory it is restored to."""
    try:
        path = raw.decode()
    except UnicodeDecodeError:
        raise MbstreamError(f"file name {raw!r} is not UTF-8") from None
    parts = path.split("/")
    if (
        not path
        or "\x00" in path
        or path.startswith("/")
        or any(part in ("", ".", "..") for part in parts[1:])
        or parts[0] in ("", "..")
    ):
        raise MbstreamError(f"unsafe file name {path!r} in the stream")
    return path.removeprefix("./")


@dataclass
class _Chunk:
    """One chunk header; a payload's bytes are still in the pipe (``remaining`` of them)."""

    path: str
    eof: bool
    offset: int = 0
    length: int = 0
    checksum: int = 0


class _ChunkSource:
    """Chunk headers and payload blocks from the raw pipe, with every checksum verified."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self._remaining = 0  # payload bytes of the current chunk still in the pipe
        self._crc = 0
        self._chunk: _Chunk | None = None
        self.bytes_read = 0

    def next_chunk(self) -> _Chunk | None:
        """The next chunk's header, or None at the clean end of the stream."""
        if self._remaining:
            raise AssertionError("payload of the previous chunk not read")
        first = self._source.read(_HEADER.size)
        if not first:
            return None
        head = first + (
            _read_exactly(self._source, _HEADER.size - len(first), "a chunk header")
            if len(first) < _HEADER.size
            else b""
        )
        magic, flags, kind, path_len = _HEADER.unpack(head)
        if magic != MAGIC:
            raise MbstreamError(f"bad chunk magic at byte {self.bytes_read}: not an mbstream")
        if path_len == 0 or path_len > _MAX_PATH:
            raise MbstreamError(f"chunk at byte {self.bytes_read} has a path of {path_len} bytes")
        path = safe_path(_read_exactly(self._source, path_len, "a file name"))
        self.bytes_read += _HEADER.size + path_len
        if kind == ord("E"):
            return _Chunk(path, eof=True)
        if kind == ord("S"):
            raise MbstreamError(
                f"{path}: sparse chunks (XtraBackup's punch-hole copies) are not supported"
            )
        if kind != ord("P"):
            if flags & FLAG_IGNORABLE:
                raise MbstreamError(f"{path}: skippable chunk type {kind:#x} is not supported")
            raise MbstreamError(f"{path}: unknown chunk type {kind:#x}")
        length, offset, checksum = _PAYLOAD.unpack(
            _read_exactly(self._source, _PAYLOAD.size, "a chunk header")
        )
        self.bytes_read += _PAYLOAD.size
        self._remaining = length
        self._crc = 0
        self._chunk = _Chunk(path, eof=False, offset=offset, length=length, checksum=checksum)
        return self._chunk

    def payload(self, size: int = BLOCK) -> bytes:
        """Up to ``size`` bytes of the current payload; b"" once it is all read (checked)."""
        want = min(size, self._remaining)
        if not want:
            return b""
        # A pipe hands out at most its capacity per read: gather up to ``want``.
        data = self._source.read(want)
        if data and len(data) < want:
            parts, got = [data], len(data)
            while got < want and (more := self._source.read(want - got)):
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        if not data:
            raise MbstreamError(f"the stream ends in the middle of {self._current().path}")
        self._remaining -= len(data)
        self.bytes_read += len(data)
        self._crc = zlib.crc32(data, self._crc)
        if not self._remaining and self._crc != self._current().checksum:
            chunk = self._current()
            raise MbstreamError(
                f"{chunk.path}: checksum mismatch in the chunk at offset {chunk.offset}"
            )
        return data

    def _current(self) -> _Chunk:
        assert self._chunk is not None
        return self._chunk


def _spool_file() -> IO[bytes]:
    """A temporary file, in memory while small; closed when its entry is handed out."""
    return tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)


@dataclass
class _Spool:
    """Bytes of a file met while another one was streaming."""

    file: IO[bytes] = field(default_factory=_spool_file)
    size: int = 0
    complete: bool = False


class Entry(io.RawIOBase):
    """One file of the archive: its path, then its bytes through :meth:`read`.

    Read it to the end (or close it, which skips the rest) before asking the
    reader for the next entry.  ``size`` counts the bytes read so far.
    """

    def __init__(
        self, reader: MbstreamReader, path: str, spool: _Spool | None, *, live: bool
    ) -> None:
        super().__init__()
        self.path = path
        self.size = 0
        self._reader = reader
        self._spool = spool  # what arrived before the entry was handed out
        self._live = live  # the rest streams from the pipe
        self._done = False
        self._keep: bytearray | None = None
        if spool is not None:
            spool.file.seek(0)

    def keep_copy(self, limit: int) -> None:
        """Also keep the bytes read (at most ``limit``), for :attr:`copy`."""
        self._keep = bytearray()
        self._limit = limit

    @property
    def copy(self) -> bytes:
        return bytes(self._keep or b"")

    @property
    def done(self) -> bool:
        return self._done

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self._done:
            return b""
        want = BLOCK if size is None or size < 0 else max(1, min(size, BLOCK))
        data = b""
        if self._spool is not None:
            data = self._spool.file.read(want)
            if not data:
                self._spool.file.close()
                self._spool = None
        if not data and self._live:
            data = self._reader._live_read(self.path, want)
        if not data:
            self._finish()
            return b""
        self.size += len(data)
        if self._keep is not None and len(self._keep) < self._limit:
            self._keep += data[: self._limit - len(self._keep)]
        return data

    def _finish(self) -> None:
        self._done = True
        if self._spool is not None:
            self._spool.file.close()
            self._spool = None
        self._reader._entry_done(self)

    def close(self) -> None:
        """Skip what was not read, so that the next entry can start."""
        if not self.closed:
            try:
                while self.read(BLOCK):
                    pass
            finally:
                super().close()


class MbstreamReader:
    """Entries of an mbstream read from ``source`` (a pipe), one at a time, in arrival order."""

    def __init__(self, source: IO[bytes]) -> None:
        self._chunks = _ChunkSource(source)
        self._spools: dict[str, _Spool] = {}
        self._offsets: dict[str, int] = {}
        self._finished: set[str] = set()
        self._current: Entry | None = None
        self._pending: _Chunk | None = None  # first chunk of the next live entry
        self.spooled_bytes = 0
        self.peak_spooled_bytes = 0

    @property
    def bytes_read(self) -> int:
        return self._chunks.bytes_read

    def __iter__(self) -> Iterator[Entry]:
        while (entry := self.next()) is not None:
            yield entry

    def next(self) -> Entry | None:
        """The next complete or streaming file; None at the end of the stream."""
        current, self._current = self._current, None
        if current is not None and not current.done:
            current.close()
            if not current.done:
                raise MbstreamError(f"{current.path} was not read to its end: the stream broke")
        while True:
            for path, spool in self._spools.items():
                if spool.complete:
                    return self._hand_out(path, live=False)
            # A file interleaved with the previous one streams on from where it is.
            behind = [p for p in self._spools if not _copied_throughout(p)]
            if behind:
                return self._hand_out(max(behind, key=lambda p: self._spools[p].size), live=True)
            chunk = self._pending or self._chunks.next_chunk()
            self._pending = None
            if chunk is None:
                if self._spools:
                    raise MbstreamError(
                        "the stream ended before the end of " + ", ".join(sorted(self._spools))
                    )
                return None
            if chunk.path in self._spools or _copied_throughout(chunk.path):
                self._store(chunk)
                continue
            self._start(chunk)
            if chunk.eof:  # an empty file
                self._finished.add(chunk.path)
                del self._offsets[chunk.path]
                self._current = Entry(self, chunk.path, None, live=False)
                return self._current
            self._pending = chunk
            self._current = Entry(self, chunk.path, None, live=True)
            return self._current

    def _hand_out(self, path: str, *, live: bool) -> Entry:
        spool = self._spools.pop(path)
        self.spooled_bytes -= spool.size
        self._current = Entry(self, path, spool, live=live)
        return self._current

    def _start(self, chunk: _Chunk) -> None:
        if chunk.path in self._finished or chunk.path in self._offsets:
            raise MbstreamError(f"{chunk.path} appears twice in the stream")
        self._offsets[chunk.path] = 0

    def _check_offset(self, chunk: _Chunk) -> None:
        expected = self._offsets[chunk.path]
        if chunk.offset != expected:
            raise MbstreamError(
                f"{chunk.path}: chunk at offset {chunk.offset}, expected {expected} (out of order)"
            )
        self._offsets[chunk.path] = expected + chunk.length

    def _store(self, chunk: _Chunk) -> None:
        """Spool a chunk of a file that is not the one streaming."""
        if chunk.path not in self._spools:
            self._start(chunk)
            self._spools[chunk.path] = _Spool()
        spool = self._spools[chunk.path]
        if chunk.eof:
            spool.complete = True
            self._finished.add(chunk.path)
            del self._offsets[chunk.path]
            return
        self._check_offset(chunk)
        while data := self._chunks.payload():
            spool.file.write(data)
            spool.size += len(data)
            self.spooled_bytes += len(data)
        self.peak_spooled_bytes = max(self.peak_spooled_bytes, self.spooled_bytes)

    def _live_read(self, path: str, size: int) -> bytes:
        """Bytes of the streaming file ``path``; chunks of other files are spooled meanwhile."""
        while True:
            if self._pending is not None:
                chunk, self._pending = self._pending, None
                self._check_offset(chunk)
            data = self._chunks.payload(size)
            if data:
                return data
            chunk_or_none = self._chunks.next_chunk()
            if chunk_or_none is None:
                raise MbstreamError(f"the stream ended before the end of {path}")
            if chunk_or_none.path != path:
                self._store(chunk_or_none)
                continue
            if chunk_or_none.eof:
                self._finished.add(path)
                del self._offsets[path]
                return b""
            self._pending = chunk_or_none

    def _entry_done(self, entry: Entry) -> None:
        if entry is self._current:
            self._current = None
