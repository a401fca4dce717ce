"""One entry point per executable, as in the Go SDK: serve an importer or an exporter.

Before serving, each starts the process's guardian (:mod:`kloset_sdk.guard`)
and hands it to the connector in ``Options.guard``, and makes SIGINT and SIGTERM
end the process quietly: plakar, which sends SIGKILL right after on a Ctrl-C,
reports the interruption, and the guardian cleans up what was registered.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from collections.abc import Callable, Mapping
from types import FrameType
from typing import TYPE_CHECKING, TypeVar

from kloset_sdk.guard import Guard
from kloset_sdk.records import Options
from kloset_sdk.transport import serve

if TYPE_CHECKING:
    from kloset_sdk.exporter import ExporterFactory
    from kloset_sdk.importer import ImporterFactory

C = TypeVar("C")


def _start(kind: str) -> Guard:
    if len(sys.argv) != 1:
        sys.exit(
            f"usage: {sys.argv[0]}\n(a Plakar {kind} plugin: Plakar starts it, with no arguments)"
        )
    guard = Guard.start(os.path.basename(sys.argv[0]))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _quiet_exit)
    return guard


def _quiet_exit(signum: int, _frame: FrameType | None) -> None:
    """No traceback and no unwinding on an interrupt: the guardian does the clean-up."""
    os._exit(128 + signum)


def _guarded(
    factory: Callable[[Options, str, Mapping[str, str]], C], guard: Guard
) -> Callable[[Options, str, Mapping[str, str]], C]:
    def make(options: Options, scheme: str, config: Mapping[str, str]) -> C:
        return factory(dataclasses.replace(options, guard=guard), scheme, config)

    return make


def run_importer(factory: ImporterFactory) -> None:
    """Serve the importer built by ``factory`` on stdin/stdout until Plakar hangs up."""
    from kloset_sdk.importer import ImporterService, add_to_server  # not the exporter's

    service = ImporterService(_guarded(factory, _start("importer")))
    serve(lambda server: add_to_server(service, server))


def run_exporter(factory: ExporterFactory) -> None:
    """Serve the exporter built by ``factory`` on stdin/stdout until Plakar hangs up."""
    from kloset_sdk._pb import exporter_pb2_grpc  # not the importer's
    from kloset_sdk.exporter import ExporterService

    service = ExporterService(_guarded(factory, _start("exporter")))
    try:
        serve(lambda server: exporter_pb2_grpc.add_ExporterServicer_to_server(service, server))  # type: ignore[no-untyped-call]
    finally:
        service.wait()  # an export cut short by Plakar's exit still cleans up
