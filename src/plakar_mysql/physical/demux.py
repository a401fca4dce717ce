"""Hand several files of one mbstream to Plakar at once, each as its own record.

Plakar reads the content of several records at once (one per worker, up to its
``-concurrency``), as it does from a directory.  ``mariadb-backup --parallel=N``
copies N data files at once and interleaves their chunks in one stream, plus
the redo log copy throughout.  :class:`Demultiplexer` reads that stream in a
thread of its own (the *pump*) and sorts each chunk's bytes into the buffer of
its file; each file is announced as soon as its first chunk arrives (see
:meth:`Demultiplexer.files`), and its content (:class:`FileContent`) is read
by whoever Plakar sends to fetch it, concurrently with the others.

Bounds, whatever the stream:

- memory: a file being read holds at most :data:`FILE_MEMORY` bytes in memory;
  when it is full the pump waits for its reader, who is there to drain it.
  A file nobody reads yet (Plakar's workers are all busy) holds bytes in memory
  only while all such files together hold less than :data:`WAITING_MEMORY`;
  beyond, the pump waits for its reader when it is sure to come
  (``reader_wait``), else - or if it does not come in time - the file's bytes
  go to an anonymous temporary file (the *spool*);
- temporary disk: only what arrives for files nobody reads yet, and the files
  held back until the end (the redo log copy, which the tool appends to
  throughout: handed out live it would keep a Plakar worker waiting for the
  whole backup); the peak is :attr:`Demultiplexer.peak_spooled_bytes`.  A spool
  is unlinked from its creation: nothing is left on disk, even after a kill.

Every chunk's checksum and offset is checked by :mod:`.mbstream`'s chunk
parser; a broken stream fails every file not yet complete (its reader raises
:class:`MbstreamError`) and :meth:`Demultiplexer.files`.
"""

from __future__ import annotations

import collections
import io
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Collection, Iterator
from typing import IO

from plakar_mysql.physical.mbstream import BLOCK, MbstreamError, _Chunk, _ChunkSource

FILE_MEMORY = 1 << 20
"""Bytes a file being read may hold in memory before the pump waits for its reader."""
WAITING_MEMORY = 4 << 20
"""Bytes all the files nobody reads yet may hold in memory together; beyond, they spool."""


class _Stopped(MbstreamError):
    """The demultiplexer was stopped: the backup is being abandoned (never seen by a
    user: the pump turns it into the files' failure)."""


class FileContent(io.RawIOBase):
    """One file of the stream, as it arrives: first what was spooled, then memory.

    ``read`` waits for the pump when nothing has arrived yet, returns ``b""`` once
    the file's end chunk was read and everything before it handed out, and raises
    :class:`MbstreamError` if the stream broke before the file's end.  ``close``
    (read or not) tells the pump to drop the rest of the file's bytes."""

    def __init__(
        self, demux: Demultiplexer, path: str, keep_limit: int, reader_wait: float = 0.0
    ) -> None:
        super().__init__()
        self._reader_wait = reader_wait  # seconds the pump may wait for the reader to come
        self.path = path
        self.size = 0  # bytes received so far; the file's size once complete
        self.complete = False
        self._demux = demux
        self._cond = threading.Condition()
        self._blocks: collections.deque[bytes] = collections.deque()
        self._memory = 0
        self._spool: IO[bytes] | None = None
        self._spool_written = 0
        self._spool_read = 0
        self._opened = False
        self._gone = False  # the reader closed it: drop what comes
        self._failure: BaseException | None = None
        self._keep = bytearray() if keep_limit else None
        self._keep_limit = keep_limit

    # --- the reader's side -------------------------------------------------------

    def opened(self) -> FileContent:
        """Called once the reader is there: from now on the pump may wait for it."""
        with self._cond:
            if not self._opened:
                self._opened = True
                # What it holds no longer counts against the files nobody reads.
                self._demux._unwait(self._memory)
            self._cond.notify_all()
        return self

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        want = BLOCK if size is None or size < 0 else max(1, size)
        with self._cond:
            while True:
                if self._spool is not None and self._spool_read < self._spool_written:
                    data = os.pread(
                        self._spool.fileno(),
                        min(want, self._spool_written - self._spool_read),
                        self._spool_read,
                    )
                    self._spool_read += len(data)
                    if self._spool_read == self._spool_written:
                        self._drop_spool()
                    return data
                if self._blocks:
                    data = self._take(want)
                    self._cond.notify_all()
                    return data
                if self._failure is not None:
                    raise MbstreamError(str(self._failure))
                if self.complete or self._gone:
                    return b""
                self._cond.wait()

    def _take(self, want: int) -> bytes:
        first = self._blocks[0]
        if len(first) <= want:
            self._blocks.popleft()
            data = first
        else:
            data, self._blocks[0] = first[:want], first[want:]
        self._memory -= len(data)
        self._demux._released(len(data), waiting=not self._opened)
        return data

    def close(self) -> None:
        if self.closed:
            return
        with self._cond:
            self._gone = True
            freed = self._memory
            self._blocks.clear()
            self._memory = 0
            self._drop_spool()
            self._cond.notify_all()
        self._demux._released(freed, waiting=not self._opened)
        super().close()

    # --- the pump's side ---------------------------------------------------------

    @property
    def copy(self) -> bytes:
        """The file's first bytes, up to the ``keep_limit`` it was created with."""
        return bytes(self._keep or b"")

    def _put(self, data: bytes) -> None:
        """Add the file's next bytes: to memory if there is room, to the spool if
        nobody reads the file yet, else wait for its reader to make room."""
        self.size += len(data)
        if self._keep is not None and len(self._keep) < self._keep_limit:
            self._keep += data[: self._keep_limit - len(self._keep)]
        with self._cond:
            while True:
                if self._gone:
                    return
                if self._demux._stopped:
                    raise _Stopped
                if not self._opened:
                    if self._spool is None and self._demux._reserve(
                        len(data), self._memory, FILE_MEMORY
                    ):
                        self._blocks.append(data)
                        self._memory += len(data)
                        self._cond.notify_all()
                        return
                    if self._spool is None and self._reader_wait > 0:
                        # Its reader is on its way: wait for it rather than use the disk.
                        waited = self._cond.wait_for(
                            lambda: self._opened or self._gone or self._demux._stopped,
                            self._reader_wait,
                        )
                        if waited:
                            continue
                        self._reader_wait = 0.0  # it did not come: spool from now on
                    self._spill(data)
                    return
                if not self._memory or self._memory + len(data) <= FILE_MEMORY:
                    self._blocks.append(data)
                    self._memory += len(data)
                    self._demux._count(len(data))
                    self._cond.notify_all()
                    return
                self._cond.wait()

    def _spill(self, data: bytes) -> None:
        """Write ``data`` (after what is in memory) to the spool; memory goes there first."""
        if self._spool is None:
            self._spool = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the file
            moved = b"".join(self._blocks)
            self._blocks.clear()
            self._demux._released(len(moved), waiting=True)
            self._memory = 0
            data = moved + data
        os.pwrite(self._spool.fileno(), data, self._spool_written)
        self._spool_written += len(data)
        self._demux._spooled(len(data))
        self._cond.notify_all()

    def _drop_spool(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._demux._spooled(-self._spool_written)
            self._spool = None
            self._spool_written = self._spool_read = 0

    def _end(self, failure: BaseException | None = None) -> None:
        with self._cond:
            if failure is None:
                self.complete = True
            elif not self.complete:
                self._failure = failure
            self._cond.notify_all()


class Demultiplexer:
    """The files of an mbstream read from ``source`` by a pump thread, announced in the
    order their first chunks arrive (``held_back`` files: once complete), each
    readable at once and concurrently with the others.

    ``keep`` names files whose first ``keep_limit`` bytes are also kept
    (:attr:`FileContent.copy`).  ``reader_wait`` > 0 (seconds) says that every
    file announced will be opened or closed soon, whatever the others do - as
    when Plakar reads at least as many records at once as the tool copies files
    and acknowledges every record: a file nobody reads yet then waits that long
    for its reader, past the memory bounds, before it spools.  Call :meth:`stop`
    if the backup is abandoned before the stream's end: the pump then stops
    waiting for readers."""

    def __init__(
        self,
        source: IO[bytes],
        *,
        held_back: Collection[str] = (),
        keep: Collection[str] = (),
        keep_limit: int = 0,
        on_progress: Callable[[int], None] = lambda done: None,
        reader_wait: float = 0.0,
    ) -> None:
        self._chunks = _ChunkSource(source)
        self._reader_wait = reader_wait
        self._held_back = frozenset(held_back)
        self._keep = frozenset(keep)
        self._keep_limit = keep_limit
        self._on_progress = on_progress
        self._events: queue.Queue[FileContent | BaseException | None] = queue.Queue()
        self._lock = threading.Lock()
        self._waiting_memory = 0
        self._memory = 0
        self._stopped = False
        self._started = False
        self._thread = threading.Thread(target=self._pump, name="mbstream-pump", daemon=True)
        self.spooled_bytes = 0
        self.peak_spooled_bytes = 0
        self.peak_memory_bytes = 0
        self.files_seen: dict[str, FileContent] = {}

    @property
    def bytes_read(self) -> int:
        return self._chunks.bytes_read

    def files(self) -> Iterator[FileContent]:
        """Each file as soon as it starts (held-back files once complete); ends with the
        stream, or raises :class:`MbstreamError` if it is broken."""
        if not self._started:
            self._started = True
            self._thread.start()
        while True:
            event = self._events.get()
            if event is None:
                return
            if isinstance(event, BaseException):
                raise event
            yield event

    def stop(self) -> None:
        """Abandon the stream: the pump stops at its next chunk, and every file not
        complete fails."""
        with self._lock:
            self._stopped = True
        for content in list(self.files_seen.values()):
            with content._cond:
                content._cond.notify_all()

    # --- accounting, called by the files ------------------------------------------

    def _reserve(self, size: int, held: int, file_limit: int) -> bool:
        """Whether a file nobody reads yet may keep ``size`` more bytes in memory."""
        with self._lock:
            if held + size > file_limit or self._waiting_memory + size > WAITING_MEMORY:
                return False
            self._waiting_memory += size
            self._count_locked(size)
            return True

    def _count(self, size: int) -> None:
        with self._lock:
            self._count_locked(size)

    def _count_locked(self, size: int) -> None:
        self._memory += size
        self.peak_memory_bytes = max(self.peak_memory_bytes, self._memory)

    def _released(self, size: int, *, waiting: bool) -> None:
        with self._lock:
            self._memory -= size
            if waiting:
                self._waiting_memory -= size

    def _unwait(self, size: int) -> None:
        with self._lock:
            self._waiting_memory -= size

    def _spooled(self, size: int) -> None:
        with self._lock:
            self.spooled_bytes += size
            self.peak_spooled_bytes = max(self.peak_spooled_bytes, self.spooled_bytes)

    # --- the pump ----------------------------------------------------------------

    def _pump(self) -> None:
        live: dict[str, FileContent] = {}
        offsets: dict[str, int] = {}
        try:
            while (chunk := self._chunks.next_chunk()) is not None:
                if self._stopped:
                    raise _Stopped
                content = live.get(chunk.path)
                if content is None:
                    content = self._start(chunk, live, offsets)
                if chunk.eof:
                    del live[chunk.path], offsets[chunk.path]
                    content._end()
                    if chunk.path in self._held_back:
                        self._events.put(content)
                    continue
                self._copy(chunk, content, offsets)
            if live:
                raise MbstreamError("the stream ended before the end of " + ", ".join(sorted(live)))
            self._events.put(None)
        except BaseException as exc:
            failure = exc if not isinstance(exc, _Stopped) else MbstreamError("backup abandoned")
            for content in live.values():
                content._end(failure)
            self._events.put(failure)

    def _start(
        self, chunk: _Chunk, live: dict[str, FileContent], offsets: dict[str, int]
    ) -> FileContent:
        if chunk.path in self.files_seen:
            raise MbstreamError(f"{chunk.path} appears twice in the stream")
        limit = self._keep_limit if chunk.path in self._keep else 0
        wait = 0.0 if chunk.path in self._held_back else self._reader_wait
        content = FileContent(self, chunk.path, limit, wait)
        self.files_seen[chunk.path] = content
        live[chunk.path] = content
        offsets[chunk.path] = 0
        if chunk.path not in self._held_back:
            self._events.put(content)
        return content

    def _copy(self, chunk: _Chunk, content: FileContent, offsets: dict[str, int]) -> None:
        expected = offsets[chunk.path]
        if chunk.offset != expected:
            raise MbstreamError(
                f"{chunk.path}: chunk at offset {chunk.offset}, expected {expected} (out of order)"
            )
        offsets[chunk.path] = expected + chunk.length
        while data := self._chunks.payload():
            content._put(data)
            self._on_progress(self._chunks.bytes_read)
