"""What the importer and exporter services share: building the connector, Ping, Close."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Generic, NoReturn, Protocol, TypeVar

import grpc

from kloset_sdk.errors import error_line
from kloset_sdk.records import ConnectorInfo, Options

if TYPE_CHECKING:  # each side loads only its own protocol
    from kloset_sdk._pb import exporter_pb2, importer_pb2


class Connector(Protocol):
    def info(self) -> ConnectorInfo: ...
    def ping(self) -> None: ...
    def close(self) -> None: ...


C = TypeVar("C", bound=Connector)
R = TypeVar("R")


def abort(context: grpc.ServicerContext, code: grpc.StatusCode, exc: BaseException) -> NoReturn:
    """End the call with ``exc`` as the line Plakar prints (a bug told as one:
    :mod:`kloset_sdk.errors`)."""
    context.abort(code, error_line(exc))
    raise AssertionError("unreachable: abort raises")


class Session(Generic[C]):
    """The connector of one Plakar session, built by ``Init``."""

    def __init__(self, factory: Callable[[Options, str, Mapping[str, str]], C]) -> None:
        self._factory = factory
        self._connector: C | None = None

    def init(
        self,
        request: importer_pb2.InitRequest | exporter_pb2.InitRequest,
        context: grpc.ServicerContext,
        response: Callable[..., R],
    ) -> R:
        """Build the connector and answer with ``response(origin=, type=, root=, flags=)``."""
        info = self._connect(request, context)
        return response(origin=info.origin, type=info.type, root=info.root, flags=int(info.flags))

    def _connect(
        self,
        request: importer_pb2.InitRequest | exporter_pb2.InitRequest,
        context: grpc.ServicerContext,
    ) -> ConnectorInfo:
        o = request.options
        options = Options(
            hostname=o.hostname,
            os=o.os,
            arch=o.arch,
            cwd=o.cwd,
            max_concurrency=max(1, o.maxconcurrency),
            excludes=tuple(o.excludes),
            no_xattr=o.noxattr,
        )
        try:
            self._connector = self._factory(options, request.proto, dict(request.config))
            return self._connector.info()
        except Exception as exc:
            abort(context, grpc.StatusCode.INVALID_ARGUMENT, exc)

    def get(self, context: grpc.ServicerContext) -> C:
        if self._connector is None:
            abort(context, grpc.StatusCode.FAILED_PRECONDITION, RuntimeError("not initialised"))
        return self._connector

    def ping(self, context: grpc.ServicerContext) -> None:
        try:
            self.get(context).ping()
        except Exception as exc:
            abort(context, grpc.StatusCode.UNAVAILABLE, exc)

    def close(self, context: grpc.ServicerContext) -> None:
        try:
            if self._connector is not None:
                self._connector.close()
        except Exception as exc:
            abort(context, grpc.StatusCode.INTERNAL, exc)
