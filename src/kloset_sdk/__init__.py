"""A Python SDK for Plakar integrations: importers and exporters over Plakar's gRPC protocol.

Write an :class:`Importer` (yields :class:`Record` objects and answers for
their content) or an :class:`Exporter` (takes records and reports a
:class:`Result` for each), then hand a factory to :func:`run_importer` or
:func:`run_exporter` in the executable's ``main``.
"""

from kloset_sdk.entrypoint import run_exporter, run_importer
from kloset_sdk.errors import ConnectorError
from kloset_sdk.exporter import Exporter, ExporterFactory, Report, Reporter, export_each
from kloset_sdk.guard import Guard
from kloset_sdk.importer import Importer, ImporterFactory
from kloset_sdk.records import ConnectorInfo, FileInfo, Flags, Options, Record, Result

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
