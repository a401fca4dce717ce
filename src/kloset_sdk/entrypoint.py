"""One entry point per executable, as in the Go SDK: serve an importer or an exporter."""

from __future__ import annotations

import sys

from kloset_sdk._pb import exporter_pb2_grpc
from kloset_sdk.exporter import ExporterFactory, ExporterService
from kloset_sdk.importer import ImporterFactory, ImporterService, add_to_server
from kloset_sdk.transport import serve


def _check_args(kind: str) -> None:
    if len(sys.argv) != 1:
        sys.exit(
            f"usage: {sys.argv[0]}\n(a Plakar {kind} plugin: Plakar starts it, with no arguments)"
        )


def run_importer(factory: ImporterFactory) -> None:
    """Serve the importer built by ``factory`` on stdin/stdout until Plakar hangs up."""
    _check_args("importer")
    service = ImporterService(factory)
    serve(lambda server: add_to_server(service, server))


def run_exporter(factory: ExporterFactory) -> None:
    """Serve the exporter built by ``factory`` on stdin/stdout until Plakar hangs up."""
    _check_args("exporter")
    service = ExporterService(factory)
    try:
        serve(lambda server: exporter_pb2_grpc.add_ExporterServicer_to_server(service, server))  # type: ignore[no-untyped-call]
    finally:
        service.wait()  # an export cut short by Plakar's exit still cleans up
