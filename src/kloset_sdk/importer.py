"""The importer side of the protocol: a connector that reads a source into a snapshot.

An :class:`Importer` yields records from :meth:`Importer.scan`.  The SDK sends
each one to Plakar and keeps its opener until Plakar either asks for the
content (``Open``) or acknowledges the record without reading it; in the latter
case the content is opened and closed at once, so a streaming importer (one
whose records are consecutive parts of one stream) can move past it.

An error raised by ``scan`` fails the whole backup: the SDK ends the ``Import``
call with that error before telling Plakar that the scan is finished, so Plakar
never commits the snapshot.  This is how an importer reports a dump that broke
after some of its records were already stored.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Iterator, Mapping

import grpc

from kloset_sdk._pb import importer_pb2 as pb
from kloset_sdk._pb import importer_pb2_grpc as pb_grpc
from kloset_sdk._session import Session, abort
from kloset_sdk.records import (
    ConnectorInfo,
    Content,
    Opener,
    Options,
    Record,
    Result,
    record_to_proto,
    result_from_proto,
)

CHUNK_SIZE = 3 << 20
"""Largest piece of content in one ``Open`` message.  The Go SDK sends 1 MiB; a
larger message means fewer round trips through gRPC for the same bytes, and
3 MiB stays well below the 4 MiB that Plakar's gRPC client accepts by default."""
_CHUNK_FIELD = b"\x0a"  # OpenResponse.chunk: field 1, length-delimited


class Importer(abc.ABC):
    """What a connector implements to back up a source."""

    @abc.abstractmethod
    def info(self) -> ConnectorInfo:
        """Origin, type, root and flags, answered once to ``Init``."""

    @abc.abstractmethod
    def scan(self) -> Iterator[Record]:
        """Yield the records of the snapshot; raise to fail the backup."""

    def acknowledge(self, result: Result) -> None:  # noqa: B027 - optional hook
        """Called once Plakar has stored (or failed to store) a record."""

    def ping(self) -> None:  # noqa: B027 - optional hook
        """Raise if the source cannot be reached."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the importer holds; called at the end of the session."""


ImporterFactory = Callable[[Options, str, Mapping[str, str]], Importer]
"""Builds an importer from Plakar's options, the URI scheme and the configuration."""


class _HeldReaders:
    """Openers of records sent to Plakar whose content has not been taken yet.

    :meth:`shut` (the ``Import`` call was cut short) closes them all, and any
    record held after it at once: nobody will ever read them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._openers: dict[str, Opener] = {}
        self._shut = False

    def hold(self, record: Record) -> None:
        if record.opener is None or not record.has_content:
            return
        with self._lock:
            if not self._shut:
                self._openers[record.key] = record.opener
                return
        record.opener().close()

    def take(self, key: str) -> Opener | None:
        with self._lock:
            return self._openers.pop(key, None)

    def discard(self, key: str) -> None:
        opener = self.take(key)
        if opener is not None:
            opener().close()

    def discard_all(self) -> None:
        with self._lock:
            openers, self._openers = list(self._openers.values()), {}
        for opener in openers:
            opener().close()

    def shut(self) -> None:
        with self._lock:
            self._shut = True
        self.discard_all()


class ImporterService(pb_grpc.ImporterServicer):
    """Serves one importer session for Plakar."""

    def __init__(self, factory: ImporterFactory) -> None:
        self._session = Session(factory)
        self._held = _HeldReaders()

    def Init(self, request: pb.InitRequest, context: grpc.ServicerContext) -> pb.InitResponse:
        return self._session.init(request, context, pb.InitResponse)

    def Ping(self, request: pb.PingRequest, context: grpc.ServicerContext) -> pb.PingResponse:
        self._session.ping(context)
        return pb.PingResponse()

    def Import(
        self, request_iterator: Iterator[pb.ImportRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.ImportResponse]:
        importer = self._session.get(context)
        held = self._held = _HeldReaders()
        acks_done = threading.Event()
        completed = threading.Event()
        ack_error: list[BaseException] = []

        # Plakar gone mid-import (killed, or the stream cut): nobody will ever read
        # the records sent and not read yet, so their contents are closed, and an
        # importer waiting for one to be read (as a stream's next part) goes on.
        # Whether the acknowledgements ended too says nothing: a cut stream ends
        # them, often before gRPC runs this.  Closing a content may read the rest
        # of a stream, so not in gRPC's own thread, which runs the callback.
        def cut_short() -> None:
            if not completed.is_set():
                _in_thread(held.shut, "import-cut")

        if not context.add_callback(cut_short):  # the call is over already
            cut_short()

        def receive_acks() -> None:
            try:
                for request in request_iterator:
                    result = result_from_proto(request.result)
                    held.discard(result.record.key)
                    importer.acknowledge(result)
            except Exception as exc:
                if context.is_active():
                    ack_error.append(exc)
            finally:
                acks_done.set()

        _in_thread(receive_acks, "import-acks")
        try:
            for record in importer.scan():
                held.hold(record)
                yield pb.ImportResponse(record=record_to_proto(record))
                if ack_error:
                    raise ack_error[0]
        except Exception as exc:
            abort(context, grpc.StatusCode.ABORTED, exc)
        yield pb.ImportResponse(finished=True)
        # Plakar keeps sending results after "finished"; answer them all before ending.
        acks_done.wait()
        completed.set()

    def Open(self, request: pb.OpenRequest, context: grpc.ServicerContext) -> Iterator[bytes]:
        """The record's content, as the pieces its reader returns; each is sent
        as one ``OpenResponse`` by :func:`serialize_open_response`."""
        key = _open_key(request)
        opener = self._held.take(key)
        if opener is None:
            abort(context, grpc.StatusCode.NOT_FOUND, FileNotFoundError(f"{key}: no such file"))
        try:
            stream = opener()
        except Exception as exc:
            abort(context, grpc.StatusCode.DATA_LOSS, exc)
        try:
            yield from _chunks(stream, context)
        except Exception as exc:
            abort(context, grpc.StatusCode.DATA_LOSS, exc)
        finally:
            stream.close()

    def Close(self, request: pb.CloseRequest, context: grpc.ServicerContext) -> pb.CloseResponse:
        self._held.discard_all()
        self._session.close(context)
        return pb.CloseResponse()


def _in_thread(target: Callable[[], None], name: str) -> None:
    threading.Thread(target=target, name=name, daemon=True).start()


def _open_key(request: pb.OpenRequest) -> str:
    msg = request.record
    return Record(
        pathname=msg.pathname,
        file_info=None,
        is_xattr=msg.isXattr,
        xattr_name=msg.xattrName,
        xattr_type=msg.xattrType,
    ).key


def _chunks(stream: Content, context: grpc.ServicerContext) -> Iterator[bytes]:
    while context.is_active():
        chunk = stream.read(CHUNK_SIZE)
        if not chunk:
            return
        yield chunk


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def serialize_open_response(chunk: bytes) -> bytes:
    """``OpenResponse(chunk=chunk)`` in protobuf's wire format, written directly.

    The message has one field, so its encoding is the field's tag, the length
    and the bytes: one copy of the content, where building the message and
    serialising it would copy it twice."""
    if not chunk:
        return b""  # proto3 leaves an empty bytes field out
    return b"".join((_CHUNK_FIELD, _varint(len(chunk)), chunk))


def add_to_server(service: ImporterService, server: grpc.Server) -> None:
    """Register ``service`` as Plakar's ``importer.Importer`` service on ``server``.

    As the generated ``add_ImporterServicer_to_server``, except that ``Open``
    answers with content serialised by :func:`serialize_open_response`."""
    handlers = {
        "Init": grpc.unary_unary_rpc_method_handler(
            service.Init,
            request_deserializer=pb.InitRequest.FromString,
            response_serializer=pb.InitResponse.SerializeToString,
        ),
        "Ping": grpc.unary_unary_rpc_method_handler(
            service.Ping,
            request_deserializer=pb.PingRequest.FromString,
            response_serializer=pb.PingResponse.SerializeToString,
        ),
        "Import": grpc.stream_stream_rpc_method_handler(
            service.Import,
            request_deserializer=pb.ImportRequest.FromString,
            response_serializer=pb.ImportResponse.SerializeToString,
        ),
        "Open": grpc.unary_stream_rpc_method_handler(
            service.Open,
            request_deserializer=pb.OpenRequest.FromString,
            response_serializer=serialize_open_response,
        ),
        "Close": grpc.unary_unary_rpc_method_handler(
            service.Close,
            request_deserializer=pb.CloseRequest.FromString,
            response_serializer=pb.CloseResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("importer.Importer", handlers),)
    )


__all__ = ["Importer", "ImporterFactory", "ImporterService", "add_to_server"]
