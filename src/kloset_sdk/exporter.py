"""The exporter side of the protocol: a connector that writes a snapshot to a destination.

Plakar sends, on one stream, a record, then (if it has content) the content as
chunks ended by an empty chunk, then the next record.  The SDK turns that into
an iterator of :class:`Record` whose ``open()`` returns the content as a
read-only binary stream.  As in the Go SDK, the next record is read from the
wire only once the current content has been read to its end or closed (closing
skips what was not read), so content arrives one record at a time and is never
held in memory.  The exporter reports one :class:`Result` per record, from any
thread, in any order.

When Plakar goes away in the middle of a restore (cancelled, killed), the
reads of the record stream fail and ``export`` unwinds: the process waits for
that, up to :data:`CLEANUP_SECONDS`, before it exits (:meth:`ExporterService.wait`),
so that an exporter's clean-up (dropping what it had not committed) is never cut
short by the end of the process.
"""

from __future__ import annotations

import abc
import io
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping

import grpc

from kloset_sdk._pb import exporter_pb2 as pb
from kloset_sdk._pb import exporter_pb2_grpc as pb_grpc
from kloset_sdk._session import Session, abort
from kloset_sdk.records import (
    ConnectorInfo,
    Content,
    Opener,
    Options,
    Record,
    Result,
    record_from_proto,
    result_to_proto,
)

Report = Callable[[Result], None]

CLEANUP_SECONDS = 120.0
"""How long an exporter process waits, once Plakar has gone, for exports still
unwinding (their clean-up) before it exits anyway."""


class Reporter:
    """The ``report`` handed to :meth:`Exporter.export`: a :data:`Report` that can
    also tell whether Plakar is still there (it cancelled the restore, or died),
    so that an exporter can stop before it commits anything."""

    def __init__(self, put: Callable[[Result], None], active: Callable[[], bool]) -> None:
        self._put = put
        self._active = active

    def __call__(self, result: Result) -> None:
        self._put(result)

    def cancelled(self) -> bool:
        return not self._active()


def export_each(
    records: Iterator[Record], report: Report, handle: Callable[[Record], None]
) -> Exception | None:
    """Call ``handle`` on each record and report its result; return the first failure.

    Plakar waits for a result for every record it sends, so once a record has
    failed the rest are reported as skipped rather than handled.  The failure is
    returned, not raised, so that the exporter can clean up before raising it.
    """
    failure: Exception | None = None
    for record in records:
        if failure is not None:
            report(Result.failed(record, "skipped"))
            continue
        try:
            handle(record)
        except Exception as exc:
            report(Result.failed(record, exc))
            failure = exc
        else:
            report(Result.ok(record))
    return failure


class Exporter(abc.ABC):
    """What a connector implements to restore a snapshot."""

    @abc.abstractmethod
    def info(self) -> ConnectorInfo:
        """Origin, type, root and flags, answered once to ``Init``."""

    @abc.abstractmethod
    def export(self, records: Iterator[Record], report: Report) -> None:
        """Consume ``records`` and ``report`` a result for each; raise to fail the restore."""

    def ping(self) -> None:  # noqa: B027 - optional hook
        """Raise if the destination cannot be reached."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the exporter holds; called at the end of the session."""


ExporterFactory = Callable[[Options, str, Mapping[str, str]], Exporter]


class ProtocolError(Exception):
    """Plakar sent something the protocol does not allow here."""


class _ChunkStream(io.RawIOBase):
    """A record's content, read from the export stream chunk by chunk."""

    def __init__(self, packets: Iterator[pb.ExportRequest]) -> None:
        super().__init__()
        self._packets = packets
        self._chunk = memoryview(b"")
        self._eof = False

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        while not self._chunk and not self._eof:
            packet = next(self._packets, None)
            if packet is None:
                raise ProtocolError("stream ended in the middle of a file's content")
            if packet.WhichOneof("packet") != "chunk":
                raise ProtocolError("expected content, got a record")
            if not packet.chunk:
                self._eof = True
            self._chunk = memoryview(packet.chunk)
        return bool(self._chunk)

    def read(self, size: int | None = -1) -> bytes:
        if not self._fill():
            return b""
        if size is None or size < 0 or size >= len(self._chunk):
            data, self._chunk = self._chunk, memoryview(b"")
        else:
            data, self._chunk = self._chunk[:size], self._chunk[size:]
        return bytes(data)

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self._fill():
            return 0
        n = min(len(buffer), len(self._chunk))
        buffer[:n] = self._chunk[:n]
        self._chunk = self._chunk[n:]
        return n

    def close(self) -> None:
        """Skip whatever content was not read, so the next record can follow."""
        if not self.closed:
            while self._fill():
                self._chunk = memoryview(b"")
        super().close()


def _records(packets: Iterator[pb.ExportRequest]) -> Iterator[Record]:
    for packet in packets:
        if packet.WhichOneof("packet") != "record":
            raise ProtocolError("expected a record, got content")
        record = record_from_proto(packet.record)
        if not packet.record.hasReader:
            yield record
            continue
        stream = _ChunkStream(packets)
        yield record.with_opener(_constant(stream))
        stream.close()  # the exporter may not have read it all


def _constant(stream: Content) -> Opener:
    return lambda: stream


_DONE = object()


class ExporterService(pb_grpc.ExporterServicer):
    """Serves one exporter session for Plakar."""

    def __init__(self, factory: ExporterFactory) -> None:
        self._session = Session(factory)
        self._exports: list[threading.Thread] = []

    def wait(self, timeout: float = CLEANUP_SECONDS) -> bool:
        """Wait, ``timeout`` seconds at most in all, for the exports still running
        to end; whether they all did.  The session is over (Plakar closed our
        stdin) and an export may be unwinding: its thread is a daemon, which the
        process's exit would otherwise stop in the middle of its clean-up."""
        deadline = time.monotonic() + timeout
        for thread in self._exports:
            thread.join(max(0.0, deadline - time.monotonic()))
        running = sum(thread.is_alive() for thread in self._exports)
        if running:
            print(
                f"kloset-sdk: {running} export(s) still running after {timeout:.0f} s;"
                " exiting without waiting for their clean-up",
                file=sys.stderr,
            )
        return not running

    def Init(self, request: pb.InitRequest, context: grpc.ServicerContext) -> pb.InitResponse:
        return self._session.init(request, context, pb.InitResponse)

    def Ping(self, request: pb.PingRequest, context: grpc.ServicerContext) -> pb.PingResponse:
        self._session.ping(context)
        return pb.PingResponse()

    def Export(
        self, request_iterator: Iterator[pb.ExportRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.ExportResponse]:
        exporter = self._session.get(context)
        outbox: queue.Queue[object] = queue.Queue()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                exporter.export(_records(request_iterator), Reporter(outbox.put, context.is_active))
            except BaseException as exc:
                failure.append(exc)
            finally:
                outbox.put(_DONE)

        thread = threading.Thread(target=run, name="export", daemon=True)
        self._exports.append(thread)
        thread.start()
        while (item := outbox.get()) is not _DONE:
            assert isinstance(item, Result)
            yield pb.ExportResponse(result=result_to_proto(item))
        if failure:
            abort(context, grpc.StatusCode.ABORTED, failure[0])

    def Close(self, request: pb.CloseRequest, context: grpc.ServicerContext) -> pb.CloseResponse:
        self._session.close(context)
        return pb.CloseResponse()


__all__ = [
    "Exporter",
    "ExporterFactory",
    "ExporterService",
    "ProtocolError",
    "Report",
    "Reporter",
    "export_each",
]
