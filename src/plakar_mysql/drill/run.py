"""What every part of one drill shares: its options, where it writes, its guardian, its reports."""

from __future__ import annotations

from dataclasses import dataclass

from kloset_sdk import Report
from kloset_sdk.guard import Guard
from plakar_mysql.core.option_models import DrillOptions
from plakar_mysql.drill.report import DrillReport


@dataclass(frozen=True)
class Run:
    config: DrillOptions
    tmpdir: str
    guard: Guard
    report: Report  # Plakar's, one result per record
    drill: DrillReport  # the drill's own
