"""What the benchmark ran on: machine, versions, date, source revision."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench import ROOT

__all__ = ["Environment", "describe_environment"]


@dataclass(frozen=True)
class Environment:
    date: str
    cpu_model: str
    cpus: int
    """CPUs this process may run on (what ``nproc`` prints)."""
    memory_gib: float
    kernel: str
    python: str
    revision: str
    versions: dict[str, str] = field(default_factory=dict)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def _revision() -> str:
    def git(*args: str) -> str:
        proc = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
        )
        return proc.stdout.strip() if proc.returncode == 0 else ""

    commit = git("rev-parse", "--short=12", "HEAD")
    if not commit:
        return "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src", "packaging")
    return commit + (" with uncommitted changes in src/ or packaging/" if dirty else "")


def describe_environment(versions: dict[str, str]) -> Environment:
    return Environment(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cpu_model=_cpu_model(),
        cpus=len(os.sched_getaffinity(0)),
        memory_gib=_memory_gib(),
        kernel=f"{platform.system()} {platform.release()}",
        python=sys.version.split()[0],
        revision=_revision(),
        versions=dict(versions),
    )
