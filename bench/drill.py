"""The restore drill against a plain restore: ``python -m bench drill`` (named only).

One generated ``benchdb`` (:mod:`bench.workload`), one logical snapshot of it;
then ``--runs`` rounds of, in turn:

- a plain restore, ``plakar restore -to mysql://TARGET`` into a running, empty
  server (started untimed before, removed after);
- the drill, ``plakar restore -to mysql+drill://``: a server installed and
  started, the same restore with ``verify=true`` and ``users=true``, the checks,
  everything removed; its own report (``report=``) gives each phase.

What the drill costs beyond the restore is the server's installation and
start, the re-dump of every table (``verify``) and the checks.  Results go to
``bench/results/drill.json`` and ``drill.md``.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import RESULTS, datagen, workload
from bench.servers import SOURCE_ARGS, TARGET_ARGS, BenchServer
from plakar_mysql_harness.plakar import find_ptar, make_plakar


def run(size_mb: float, runs: int, workdir: Path) -> dict[str, Any]:
    source = BenchServer(workdir / "source", SOURCE_ARGS)
    try:
        stats = workload.generate(source, size_mb, seed="drill")
        plakar = make_plakar(workdir / "plakar", ptar=find_ptar())
        snapshot = plakar.backup(source.uri(datagen.DATABASE), f"password={source.password}")
    finally:
        source.cleanup()
    plain: list[float] = []
    drills: list[float] = []
    reports: list[dict[str, Any]] = []
    for number in range(runs):
        target = BenchServer(workdir / f"target-{number}", TARGET_ARGS)
        try:
            started = time.perf_counter()
            plakar.restore(snapshot, target.uri(), f"password={target.password}", timeout=7200)
            plain.append(time.perf_counter() - started)
        finally:
            target.cleanup()
        report = workdir / f"drill-{number}.json"
        started = time.perf_counter()
        plakar.restore(snapshot, "mysql+drill://", f"report={report}", timeout=7200)
        drills.append(time.perf_counter() - started)
        reports.append(json.loads(report.read_text()))
        print(
            f"bench: round {number + 1}: plain restore {plain[-1]:.1f} s, drill {drills[-1]:.1f} s "
            f"(recovery time {reports[-1]['recovery_seconds']:.1f} s)",
            flush=True,
        )
    plakar.close()
    phases = {
        name: statistics.median(r["phases"][name] for r in reports) for name in reports[0]["phases"]
    }
    return {
        "size_mb": size_mb,
        "sql_bytes": stats.sql_bytes,
        "runs": runs,
        "plain_restore_s": plain,
        "drill_s": drills,
        "median_plain_s": statistics.median(plain),
        "median_drill_s": statistics.median(drills),
        "ratio": statistics.median(drills) / statistics.median(plain),
        "median_recovery_s": statistics.median(r["recovery_seconds"] for r in reports),
        "median_phases_s": phases,
        "rows": sum(d["rows"] for d in reports[0]["databases"]),
    }


def markdown(result: dict[str, Any]) -> str:
    phases = ", ".join(f"{k} {v:.1f}" for k, v in result["median_phases_s"].items())
    return "\n".join(
        [
            f"# Restore drill, {result['sql_bytes'] / 1e6:.0f} MB of generated SQL "
            f"({result['rows']} rows), {result['runs']} rounds",
            "",
            "| | median (s) |",
            "|---|---|",
            "| plain restore `-to mysql://` into a running empty server "
            f"| {result['median_plain_s']:.1f} |",
            "| drill `-to mysql+drill://` (install, start, restore with verify and users, "
            f"checks, removal) | {result['median_drill_s']:.1f} |",
            f"| ratio | {result['ratio']:.2f}x |",
            f"| the drill's measured recovery time | {result['median_recovery_s']:.1f} |",
            "",
            f"The drill's phases (median seconds): {phases}.",
            "",
        ]
    )


def measure(size_mb: float, runs: int, workdir: Path | None = None) -> dict[str, Any]:
    """:func:`run` in ``workdir/drill`` (kept), or in a temporary directory (removed)."""
    if workdir is not None:
        return run(size_mb, runs, workdir.resolve() / "drill")
    with tempfile.TemporaryDirectory(prefix="bench-drill-") as tmp:
        return run(size_mb, runs, Path(tmp))


def write(result: dict[str, Any], results: Path = RESULTS) -> Path:
    """``drill.json`` and ``drill.md`` in ``results``; returns the Markdown path."""
    results.mkdir(parents=True, exist_ok=True)
    (results / "drill.json").write_text(json.dumps(result, indent=2) + "\n")
    path = results / "drill.md"
    path.write_text(markdown(result))
    return path
