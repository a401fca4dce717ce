"""A Python SDK for Plakar integrations: importers and exporters over Plakar's gRPC protocol.

Write an :class:`Importer` (yields :class:`Record` objects and answers for
their content) or an :class:`Exporter` (takes records and reports a
:class:`Result` for each), then hand a factory to :func:`run_importer` or
:func:`run_exporter` in the executable's ``main``.

Each name is imported when first used (PEP 562): an importer never loads the
exporter's side, nor an exporter the importer's, so that each plugin starts
with only what it runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kloset_sdk.entrypoint import run_exporter, run_importer
    from kloset_sdk.errors import ConnectorError
    from kloset_sdk.exporter import Exporter, ExporterFactory, Report, Reporter, export_each
    from kloset_sdk.guard import Guard
    from kloset_sdk.importer import Importer, ImporterFactory
    from kloset_sdk.records import ConnectorInfo, FileInfo, Flags, Options, Record, Result

_HOME = {
    "run_exporter": "entrypoint",
    "run_importer": "entrypoint",
    "ConnectorError": "errors",
    "Exporter": "exporter",
    "ExporterFactory": "exporter",
    "Report": "exporter",
    "Reporter": "exporter",
    "export_each": "exporter",
    "Guard": "guard",
    "Importer": "importer",
    "ImporterFactory": "importer",
    "ConnectorInfo": "records",
    "FileInfo": "records",
    "Flags": "records",
    "Options": "records",
    "Record": "records",
    "Result": "records",
}


def __getattr__(name: str) -> object:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


__all__ = [
    "ConnectorError",
    "ConnectorInfo",
    "Exporter",
    "ExporterFactory",
    "FileInfo",
    "Flags",
    "Guard",
    "Importer",
    "ImporterFactory",
    "Options",
    "Record",
    "Report",
    "Reporter",
    "Result",
    "export_each",
    "run_exporter",
    "run_importer",
]
