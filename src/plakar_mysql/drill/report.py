"""What a drill found: one line per database, a summary, the phases' times, as text or JSON.

The recovery time is the wall-clock time from the drill's first byte to the
end of its last check, less the check itself: how long bringing this snapshot
back took, here, on this machine.  Each phase is timed on its own: ``fetch``
(waiting for Plakar's bytes), ``load`` (the server loading them, or the files
being written), ``prepare`` (the physical kind's ``--prepare``), ``start`` (the
throwaway server installed and started), ``check``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

PHASES = ("fetch", "load", "prepare", "start", "check")


@dataclass
class DatabaseResult:
    """The checks of one database (or of the binary-log archive, as one line)."""

    name: str
    tables: int = 0
    rows: int = 0
    bytes: int = 0
    objects: int = 0  # views, routines, triggers, events checked
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        state = "OK" if not self.problems else "MISMATCH"
        text = (
            f"{self.name}: {state}: {self.tables} table(s), {self.rows} row(s), "
            f"{_size(self.bytes)}, {self.objects} other object(s)"
        )
        return text + (f": {'; '.join(self.problems)}" if self.problems else "")


@dataclass
class DrillReport:
    """The whole drill: its kind, server, databases, phases and outcome."""

    kind: str = ""
    server: str = ""
    databases: list[DatabaseResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # not of one database
    notes: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    recovery_seconds: float = 0.0
    total_seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Add the block's wall-clock time to ``name``."""
        began = time.monotonic()
        try:
            yield
        finally:
            self.phases[name] += time.monotonic() - began

    def database(self, name: str) -> DatabaseResult:
        for result in self.databases:
            if result.name == name:
                return result
        result = DatabaseResult(name)
        self.databases.append(result)
        return result

    @property
    def ok(self) -> bool:
        return not self.problems and not any(d.problems for d in self.databases)

    def mismatches(self) -> list[str]:
        return [*self.problems, *(f"{d.name}: {p}" for d in self.databases for p in d.problems)]

    def finish(self) -> None:
        self.total_seconds = time.monotonic() - self.started
        self.recovery_seconds = self.total_seconds - self.phases["check"]

    def lines(self) -> list[str]:
        """What the drill prints, a DBA's reading order."""
        out = [d.line() for d in self.databases]
        checked = sum(d.tables + d.objects for d in self.databases)
        rows = sum(d.rows for d in self.databases)
        size = sum(d.bytes for d in self.databases)
        phases = ", ".join(f"{name} {self.phases[name]:.1f}s" for name in PHASES)
        out.append(
            f"drill of a {self.kind} snapshot on {self.server or 'no server'}: "
            f"{'OK' if self.ok else 'FAILED'}: {checked} object(s) checked, {rows} row(s), "
            f"{_size(size)}; {phases}"
        )
        out.extend(f"note: {note}" for note in self.notes)
        out.extend(f"problem: {problem}" for problem in self.problems)
        out.append(f"measured recovery time: {self.recovery_seconds:.1f}s")
        return out

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["started"]
        data["ok"] = self.ok
        data["phases"] = {k: round(v, 3) for k, v in self.phases.items()}
        data["recovery_seconds"] = round(self.recovery_seconds, 3)
        data["total_seconds"] = round(self.total_seconds, 3)
        return data

    def write_json(self, path: str) -> None:
        """``path`` replaced at once (a monitor never reads half a report)."""
        temporary = f"{path}.tmp-{os.getpid()}"
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(self.as_json(), out, indent=2, ensure_ascii=False)
            out.write("\n")
        os.replace(temporary, path)


def _size(count: int) -> str:
    if count < 1 << 20:
        return f"{count / 1024:.1f} KiB"
    if count < 1 << 30:
        return f"{count / (1 << 20):.1f} MiB"
    return f"{count / (1 << 30):.2f} GiB"
