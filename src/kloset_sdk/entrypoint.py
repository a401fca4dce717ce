"""One entry point per executable, as in the Go SDK: serve an importer or an exporter.

Before serving, each starts the process's guardian (:mod:`kloset_sdk.guard`)
and hands it to the connector in ``Options.guard``, and makes SIGINT and SIGTERM
end the process quietly: plakar, which sends SIGKILL right after on a Ctrl-C,
reports the interruption, and the guardian cleans up what was registered.

Once Plakar hangs up (it closed our stdin: the session is over, or Plakar is
dead), the process ends at once with ``os._exit``, whatever its threads are
doing; an exporter's running ``export`` gets
:data:`kloset_sdk.exporter.CLEANUP_SECONDS` first.  A normal interpreter exit
would join gRPC's worker threads, and one of them may wait for ever for a peer
that is gone: a scan waiting for a record to be read, a thread blocked on a
pipe.  The guardian, which sees our end of its pipe close, then kills the
children and removes the directories registered with it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import traceback
from collections.abc import Callable, Mapping
from types import FrameType
from typing import TYPE_CHECKING, NoReturn, TypeVar

import grpc

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


def run_importer(factory: ImporterFactory) -> NoReturn:
    """Serve the importer built by ``factory`` on stdin/stdout until Plakar hangs up."""
    from kloset_sdk.importer import ImporterService, add_to_server  # not the exporter's

    service = ImporterService(_guarded(factory, _start("importer")))
    _serve_then_exit(lambda server: add_to_server(service, server))


def run_exporter(factory: ExporterFactory) -> NoReturn:
    """Serve the exporter built by ``factory`` on stdin/stdout until Plakar hangs up."""
    from kloset_sdk._pb import exporter_pb2_grpc  # not the importer's
    from kloset_sdk.exporter import ExporterService

    service = ExporterService(_guarded(factory, _start("exporter")))
    _serve_then_exit(
        lambda server: exporter_pb2_grpc.add_ExporterServicer_to_server(service, server),  # type: ignore[no-untyped-call]
        service.wait,  # an export cut short by Plakar's exit still cleans up
    )


def _serve_then_exit(
    register: Callable[[grpc.Server], None], unwind: Callable[[], object] = lambda: None
) -> NoReturn:
    """Serve until Plakar hangs up, let ``unwind`` bound its own wait, then end the
    process without joining any thread (see the module's docstring)."""
    try:
        serve(register)
    except Exception:
        traceback.print_exc()  # a fault of the SDK itself: say where
        status = 1
    else:
        status = 0
    unwind()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)
