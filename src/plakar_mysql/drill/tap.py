"""The records of a drill, passed on to a kind's exporter, timed and fingerprinted.

Every read of a file's content is timed (the ``fetch`` phase: waiting for
Plakar) and hashed (SHA-256, compared with the digest the backup recorded);
the file's announced size goes through the disk estimate first.  A stream its
consumer closes before the end is read to its end, so the digest is always of
the whole file.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator

from kloset_sdk import Record
from kloset_sdk.records import Content

_BLOCK = 1 << 20


class TimedStream:
    """A record's content, read on behalf of its consumer; its digest once complete."""

    def __init__(self, inner: Content, clock: Callable[[float], None]) -> None:
        self._inner = inner
        self._clock = clock
        self._sha = hashlib.sha256()
        self.size = 0
        self.done = False

    def read(self, size: int = -1, /) -> bytes:
        began = time.monotonic()
        data = self._inner.read(size)
        self._clock(time.monotonic() - began)
        if data:
            self._sha.update(data)
            self.size += len(data)
        elif size != 0:
            self.done = True
        return data

    def close(self) -> None:
        while not self.done:
            self.read(_BLOCK)
        self._inner.close()

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


class Tap:
    """Wraps each record; keeps the digest and size of every file read, by path."""

    def __init__(self, admit: Callable[[str, int], None]) -> None:
        self.fetch_seconds = 0.0
        self.streams: dict[str, TimedStream] = {}
        self._admit = admit

    def _clock(self, seconds: float) -> None:
        self.fetch_seconds += seconds

    def records(self, records: Iterator[Record]) -> Iterator[Record]:
        while True:
            began = time.monotonic()
            record = next(records, None)
            self.fetch_seconds += time.monotonic() - began
            if record is None:
                return
            yield self.wrap(record)

    def wrap(self, record: Record) -> Record:
        opener = record.opener
        if opener is None or record.file_info is None or not record.file_info.is_regular:
            return record
        self._admit(record.pathname, record.file_info.size)
        path = record.pathname

        def open_timed() -> Content:
            stream = TimedStream(opener(), self._clock)
            self.streams[path] = stream
            return stream

        return record.with_opener(open_timed)

    def digest(self, path: str) -> str | None:
        stream = self.streams.get(path)
        return stream.hexdigest() if stream is not None and stream.done else None
