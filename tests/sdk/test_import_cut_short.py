"""An ``Import`` cut short (Plakar killed, the stream cancelled) closes the contents of
the records it sent and Plakar never read, whatever order gRPC learns it in.

The service is driven here without a server, by a stand-in for gRPC's servicer
context that runs the call's callbacks when the test cuts it, as gRPC does once
the call is cancelled.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime

import grpc
import pytest

from kloset_sdk import ConnectorInfo, Flags, Importer, Options, Record
from kloset_sdk._pb import importer_pb2 as pb
from kloset_sdk.importer import ImporterService

WAIT = 10.0  # seconds: far more than the few milliseconds a passing run needs


class CutContext:
    """The little of ``grpc.ServicerContext`` the service uses."""

    def __init__(self) -> None:
        self.active = True
        self.callbacks: list[Callable[[], None]] = []

    def is_active(self) -> bool:
        return self.active

    def add_callback(self, callback: Callable[[], None]) -> bool:
        self.callbacks.append(callback)
        return True

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise RuntimeError(f"{code}: {details}")

    def cut(self) -> None:
        """Cancelled: no longer active, then the callbacks, as gRPC runs them."""
        self.active = False
        for callback in self.callbacks:
            callback()


class Part(io.RawIOBase):
    """A content whose closing lets the scan go on (one part of a stream)."""

    def __init__(self, closed: threading.Event) -> None:
        super().__init__()
        self._closed = closed

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return b""

    def close(self) -> None:
        self._closed.set()
        super().close()


class StreamingImporter(Importer):
    """Hands over one part, then waits (bounded) until it was read or closed, as the
    physical backup waits before it reads the next file of the tool's stream."""

    def __init__(self, before_yield: Callable[[], None] = lambda: None) -> None:
        self.before_yield = before_yield
        self.part_closed = threading.Event()
        self.waiting = threading.Event()

    def info(self) -> ConnectorInfo:
        return ConnectorInfo(origin="test", type="test", flags=Flags.STREAM)

    def scan(self) -> Iterator[Record]:
        self.before_yield()
        part = Part(self.part_closed)
        yield Record.file("/part", lambda: part, datetime.now(UTC))
        self.waiting.set()
        self.part_closed.wait(WAIT)


def start_import(
    importer: Importer, requests: Iterator[pb.ImportRequest], context: CutContext
) -> Iterator[pb.ImportResponse]:
    def factory(_o: Options, _s: str, _c: Mapping[str, str]) -> Importer:
        return importer

    service = ImporterService(factory)
    service.Init(pb.InitRequest(proto="test"), context)  # type: ignore[arg-type]
    return service.Import(requests, context)  # type: ignore[arg-type]


def cancelled_requests(cut: threading.Event) -> Iterator[pb.ImportRequest]:
    """Plakar's results: none, then the error gRPC raises once the call is cancelled."""
    cut.wait()
    raise grpc.RpcError("cancelled")
    yield pb.ImportRequest()  # a generator  # pragma: no cover


def acks_thread() -> threading.Thread:
    (thread,) = [t for t in threading.enumerate() if t.name == "import-acks"]
    return thread


def test_a_scan_waiting_for_a_record_goes_on_when_the_acks_ended_first() -> None:
    """The order that kept the MySQL importer alive after ``kill -9`` of plakar:
    the results' stream ends (its thread sees the cancellation) before gRPC runs
    the call's callbacks.  The record sent and never read is closed all the same,
    and the scan that waits for it goes on."""
    importer, context, cut = StreamingImporter(), CutContext(), threading.Event()
    responses = start_import(importer, cancelled_requests(cut), context)
    assert next(responses).record.pathname == "/part"
    acks = acks_thread()
    resumed = threading.Thread(target=next, args=(responses, None), daemon=True)
    resumed.start()  # as gRPC asks for the next response once the record is sent
    assert importer.waiting.wait(WAIT)
    cut.set()  # the acknowledgements end first...
    acks.join(WAIT)
    assert not acks.is_alive()
    context.cut()  # ...then gRPC runs the callbacks
    assert importer.part_closed.wait(WAIT / 2), "the record sent and not read stayed open"
    resumed.join(WAIT)
    assert not resumed.is_alive()


@pytest.mark.parametrize("acks_first", [True, False], ids=["acks first", "callbacks first"])
def test_a_record_handed_over_after_the_cut_is_closed(acks_first: bool) -> None:
    """The cancellation lands while the scan makes its next record: that record,
    held after the callbacks ran, is closed too (nobody will ever ask for it)."""
    cut = threading.Event()
    context = CutContext()

    def cancel() -> None:
        if acks_first:
            cut.set()
            acks_thread().join(WAIT)
        context.cut()

    importer = StreamingImporter(before_yield=cancel)
    responses = start_import(importer, cancelled_requests(cut), context)
    next(responses)
    assert importer.part_closed.wait(WAIT / 2), "the record handed over after the cut stayed open"
    cut.set()
