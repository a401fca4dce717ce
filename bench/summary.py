"""One page and one chart from the latest results: ``bench/results/summary.md``
and ``summary.png``, built from the JSON files the benchmarks wrote
(``backup.json``, ``restore-<N>mb.json``, ``memory.json``, ``binlog-replay.json``),
whichever exist.

The README shows both.  Figures are copied from the JSON files as they are;
nothing is measured here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: render straight to a file
import matplotlib.pyplot as plt

from bench import RESULTS
from bench.backup import GOAL_RATIO as BACKUP_GOAL
from bench.memory import GOAL_MIB as MEMORY_GOAL
from bench.report import markdown_cell
from bench.restore import GOAL_RATIO as RESTORE_GOAL

__all__ = ["write"]

Json = dict[str, Any]

DEDUP_BOUNDS = (
    "What bounds deduplication of logical dumps: Plakar (like restic) cuts files into"
    " content-defined chunks of 512 KiB to 8 MiB, about 1 MiB on average, and stores a"
    " chunk again whenever one byte of it changes.  Rows appended at the end of a table"
    " or updated at its end change only its last chunks; but 0.1% of a table's rows"
    " updated at random, a row every 1,000, is one change every ~160 KB of dump for"
    " `customers`, closer together than a chunk: every chunk of that table changes and"
    " the whole table is stored again.  One file per table keeps that to the tables"
    " that changed, and lets each table start on a chunk boundary; a single dump file"
    " has chunks that straddle tables.  A table smaller than a chunk is stored again"
    " whole at its first change.  Every snapshot also adds Plakar's own metadata"
    " (its index of files and chunks), about 1 MB whatever changed and a little more"
    " for many files than for one: that is what an unchanged database adds.",
)


def _load(path: Path) -> Json | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _restores(directory: Path) -> dict[str, Json]:
    """``restore-<N>mb.json`` files by size label (``"100"``), smallest first."""
    found = {}
    for path in directory.glob("restore-*mb.json"):
        data = _load(path)
        if data is not None:
            found[f"{data['options']['size_mb']:g}"] = data
    return dict(sorted(found.items(), key=lambda item: float(item[0])))


def _cell(value: float | None, form: str) -> str:
    return "n/a" if value is None else format(value, form)


def _time_rows(
    title: str,
    base: str,
    labels: dict[str, str],
    by_size: dict[str, Json],
    ratio_field: str,
) -> tuple[list[str], dict[str, dict[str, float | None]]]:
    """Markdown rows (median seconds and ratio to ``base`` per size, a contender per
    row), and for the chart: the ratios by contender label and size.  ``by_size``
    maps a size to its summary (contender key to figures)."""
    sizes = list(by_size)
    rows = [
        f"| {title} | " + " | ".join(f"{s} MB: s (ratio to {base})" for s in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    chart: dict[str, dict[str, float | None]] = {}
    for key, label in labels.items():
        cells = []
        for size in sizes:
            figures = by_size[size].get(key, {})
            ratio = figures.get(ratio_field)
            chart.setdefault(label, {})[size] = ratio
            cells.append(f"{_cell(figures.get('median_seconds'), '.1f')} ({_cell(ratio, '.2f')})")
        rows.append(f"| {markdown_cell(label)} | " + " | ".join(cells) + " |")
    return rows, chart


def _dedup_rows(backup: Json) -> tuple[list[str], dict[str, dict[str, float | None]]]:
    rows = [
        "| stored as | size | first backup | again, unchanged | after a day of changes |",
        "|---|---|---|---|---|",
    ]
    chart: dict[str, dict[str, float | None]] = {}
    for size in backup["sizes"]:
        found = size.get("dedup")
        if not found:
            continue
        for growth in found["growth"]:
            first = growth["first_bytes"]
            unchanged = growth["unchanged_bytes"] / first if first else None
            changed = growth["changed_bytes"] / first if first else None
            chart.setdefault(growth["label"], {})[f"{size['size_mb']:g}"] = changed
            rows.append(
                f"| {markdown_cell(growth['label'])} | {size['size_mb']:g} MB"
                f" | {first / 1e6:.1f} MB | {_cell(unchanged, '.2%')} | {_cell(changed, '.2%')} |"
            )
    return rows, chart


def _memory_rows(memory: Json) -> tuple[list[str], dict[str, dict[str, float | None]]]:
    peaks: dict[str, Json] = memory["summary"]["peak_kib"]
    sizes = [label for label in peaks if label != "tiny"]
    rows = [
        "| peak RSS (MiB) | " + " | ".join(sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    chart: dict[str, dict[str, float | None]] = {}
    for phase in ("backup", "restore"):
        for process in ("plugin", "plakar"):
            label = f"{process}, {phase}"
            values = [peaks[size].get(phase, {}).get(process) for size in sizes]
            for size, value in zip(sizes, values, strict=True):
                chart.setdefault(label, {})[size.removesuffix(" MB")] = (
                    value / 1024 if value else None
                )
            rows.append(
                f"| {label} | "
                + " | ".join(_cell(v / 1024 if v else None, ".1f") for v in values)
                + " |"
            )
    return rows, chart


Panel = tuple[str, dict[str, dict[str, float | None]], str, float | None]
"""Title, values by series label and size, unit, and the goal (a dashed line) if any."""


def _bars(axis: Any, panel: Panel) -> None:
    """Grouped bars: one group per size, one bar per contender."""
    title, series, unit, goal = panel
    sizes = sorted({size for values in series.values() for size in values}, key=float)
    width = 0.8 / max(len(series), 1)
    for index, (label, values) in enumerate(series.items()):
        xs = [i + index * width for i in range(len(sizes))]
        ys = [values.get(size) or 0.0 for size in sizes]
        axis.bar(xs, ys, width, label=label)
    axis.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(sizes))])
    axis.set_xticklabels([f"{size} MB" for size in sizes])
    axis.set_title(title, fontsize=10)
    axis.set_ylabel(unit, fontsize=9)
    if goal is not None:
        axis.axhline(goal, color="black", linestyle="--", linewidth=1, label=f"goal {goal:g}")
    axis.legend(fontsize=7)


def _replay_rows(replay: Json) -> list[str]:
    """The binlog replay: both medians and their ratio (details in binlog-replay.md)."""
    return [
        f"Binlog replay of {replay['transactions']} transactions"
        f" ({replay['binlog_bytes'] / 2**20:.1f} MiB of binary logs, {replay['runs']} rounds);"
        " details in binlog-replay.md.",
        "",
        "| binlog replay | median s (ratio) |",
        "|---|---|",
        f"| mariadb-binlog FILES \\| mariadb | {replay['median_direct']:.1f} (1.00) |",
        f"| plakar restore -to mysql+binlog:// | {replay['median_plakar']:.1f}"
        f" ({replay['ratio']:.2f}) |",
    ]


def write(directory: Path = RESULTS) -> Path:
    """Write ``summary.md`` and ``summary.png`` into ``directory``; return the Markdown path."""
    backup, memory = _load(directory / "backup.json"), _load(directory / "memory.json")
    restores = _restores(directory)
    lines = ["# Benchmark summary", ""]
    panels: list[Panel] = []
    if backup:
        lines += [f"Backup measured {backup['environment']['date']}; details in backup.md.", ""]
        labels = {c["key"]: c["label"] for c in backup["contenders"]}
        rows, chart = _time_rows(
            "backup", "the floor", labels, backup["summary"], "median_ratio_vs_floor"
        )
        lines += [*rows, ""]
        panels.append(
            ("Backup time, ratio to mariadb-dump > /dev/null", chart, "ratio", BACKUP_GOAL)
        )
        rows, chart = _dedup_rows(backup)
        lines += [*rows, "", *DEDUP_BOUNDS, ""]
        panels.append(("Store growth after a day of changes", chart, "share of 1st backup", None))
    if restores:
        any_restore = next(iter(restores.values()))
        lines += [
            f"Restore measured {any_restore['environment']['date']};"
            " details in restore-<size>mb.md.",
            "",
        ]
        labels = {c["key"]: c["label"] for data in restores.values() for c in data["contenders"]}
        summaries = {size: data["summary"] for size, data in restores.items()}
        rows, chart = _time_rows(
            "restore", "the single stream", labels, summaries, "median_ratio_vs_single"
        )
        lines += [*rows, ""]
        panels.append(("Restore time, ratio to mariadb < dump.sql", chart, "ratio", RESTORE_GOAL))
    if memory:
        lines += [f"Memory measured {memory['environment']['date']}; details in memory.md.", ""]
        rows, chart = _memory_rows(memory)
        lines += [*rows, ""]
        panels.append(("Peak resident memory (goal: the plugins)", chart, "MiB", MEMORY_GOAL))
    replay = _load(directory / "binlog-replay.json")
    if replay and "rounds" in replay:
        lines += [*_replay_rows(replay), ""]
    path = directory / "summary.md"
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    grid_rows = max((len(panels) + 1) // 2, 1)
    figure, axes = plt.subplots(grid_rows, 2, figsize=(11, 4.2 * grid_rows), squeeze=False)
    for axis, panel in zip(axes.flat, panels, strict=False):
        _bars(axis, panel)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    figure.tight_layout()
    figure.savefig(path.with_suffix(".png"), dpi=110)
    plt.close(figure)
    return path
