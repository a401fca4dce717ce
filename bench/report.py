"""Benchmark results as Markdown (for people) and JSON (for later plots and comparisons).

Each benchmark writes ``bench/results/<name>.md`` and ``bench/results/<name>.json``
and prints the Markdown.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from bench import RESULTS
from bench.environment import Environment
from bench.restore import ALONE_SHARE, GOAL_RATIO, RestoreResult, Run

__all__ = ["render_restore", "write_restore"]


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _median_of(runs: list[Run], attribute: str) -> float | None:
    values = sorted(float(getattr(r, attribute)) for r in runs if r.seconds is not None)
    if not values:
        return None
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def _environment(env: Environment) -> list[str]:
    lines = [
        "| | |",
        "|---|---|",
        f"| date | {env.date} |",
        f"| machine | {env.cpu_model}, {env.cpus} CPUs, {env.memory_gib:.1f} GiB of memory |",
        f"| system | {env.kernel}, Python {env.python} |",
        f"| source revision | {env.revision} |",
    ]
    lines += [f"| {name} | {value} |" for name, value in env.versions.items()]
    return lines


def render_restore(result: RestoreResult, command: str) -> str:
    out: list[str] = ["# Restore speed", ""]
    options = result.options
    dump_mb = result.dump_bytes / 1e6
    out += [
        f"Restore of one database (`benchdb`, about {options['size_mb']} MB of SQL, "
        f"{len(result.tables)} tables) into a freshly created `benchdb` on a second private "
        "MariaDB server, by the integration through `plakar restore` and by the stock tools.  "
        f"Median of {options['runs']} round(s); in each round the contenders run one after "
        "the other, each into a freshly dropped and created database; ratios are taken "
        "within a round against that round's single stream, then their median.",
        "",
        f"Command: `{command}`",
        "",
    ]
    if result.failure:
        out += [f"**The benchmark stopped early:** {result.failure}", ""]

    ratio = result.median_ratio("plakar")
    if ratio is not None:
        verdict = "met" if ratio <= GOAL_RATIO else "not met"
        label = (
            "integration (jobs default)"
            if result.jobs_option.startswith("available")
            else "integration (no jobs option)"
        )
        out += [
            f"**{label} / single stream: {ratio:.2f}** (goal at most {GOAL_RATIO}: {verdict}).",
            "",
        ]
        alone = result.ratios("plakar", alone=True)
        if alone:
            out += [
                f"In the {len(alone)} round(s) where neither run shared the machine with other "
                f"work (others' CPU at most {ALONE_SHARE} CPU on average): "
                f"{_ratio(result.median_ratio('plakar', alone=True))}.",
                "",
            ]
    out += [f"jobs option: {result.jobs_option or 'not probed'}", ""]

    out += [
        "| contender | median s | each run s | MB/s of dump | vs single | client CPU s "
        "| server CPU s | others' CPU s | peak RSS MiB |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for contender in result.contenders:
        runs = [r for r in result.runs if r.contender == contender.key]
        each = ", ".join(_seconds(r.seconds) if r.error is None else "failed" for r in runs)
        best = result.median_time(contender.key)
        rate = f"{dump_mb / best:.1f}" if best else "n/a"
        versus = "1" if contender.key == "single" else _ratio(result.median_ratio(contender.key))
        rss = _median_of(runs, "tree_rss_kib")
        out.append(
            f"| {contender.label} | {_seconds(best)} | {each} | {rate} | {versus} "
            f"| {_seconds(_median_of(runs, 'client_cpu_seconds'))} "
            f"| {_seconds(_median_of(runs, 'server_cpu_seconds'))} "
            f"| {_seconds(_median_of(runs, 'other_cpu_seconds'))} "
            f"| {'n/a' if rss is None else f'{rss / 1024:.0f}'} |"
        )
    if result.median_ratio("plakar", "plakar-jobs1") is not None:
        out += [
            "",
            "jobs default / jobs=1: "
            f"{_ratio(result.median_ratio('plakar', 'plakar-jobs1'))}"
            " (median of per-round ratios).",
        ]
    lingering = sorted(
        {
            f"{name.rsplit(' (', 1)[0]} ({r.contender})"
            for r in result.runs
            for name in r.left_running
        }
    )
    if lingering:
        out += [
            "",
            "Processes still running after their command had exited (their CPU time is "
            f"counted): {', '.join(lingering)}.",
        ]
    failures = [r for r in result.runs if r.error]
    if failures:
        out += ["", "Failed runs (not timed):", ""]
        out += [f"- round {r.round}, {r.contender}: {r.error}" for r in failures]
    out += [
        "",
        "MB/s is the single-stream dump's size over the median time.  CPU times are user + "
        "system, medians over the runs: *client* for the command and every process descended "
        "from it (plakar, its plugin, the clients it runs), *server* for the target's "
        "`mariadbd`, *others'* for everything else on the machine meanwhile (on a shared "
        "machine, other work competing for the same CPUs: a run with a large figure there "
        "is slower than it would be alone).  Peak RSS: the largest sum of the resident sets "
        "of the command's processes at one time (sampled every 0.2 s).",
        "",
        "## Contenders",
        "",
    ]
    out += [f"- **{c.label}**: `{c.command}`" for c in result.contenders]
    if result.runs:
        out += [
            "",
            "## Every run",
            "",
            "| round | contender | s | client CPU s | server CPU s | others' CPU s "
            "| load before | quiet at start | alone | redo MB | written by server MB |",
            "|---:|---|---:|---:|---:|---:|---:|---|---|---:|---:|",
        ]
        out += [
            f"| {r.round} | {r.contender} | {_seconds(r.seconds)} | {r.client_cpu_seconds:.1f} "
            f"| {r.server_cpu_seconds:.1f} | {r.other_cpu_seconds:.1f} | {r.load_before:.2f} "
            f"| {'yes' if r.quiet else 'no'} (waited {r.quiet_wait_seconds:.0f} s) "
            f"| {'yes' if r.alone else 'no'} "
            f"| {r.redo_bytes / 1e6:.0f} | {r.server_written_bytes / 1e6:.0f} |"
            for r in result.runs
        ]

    out += ["", "## Data set", ""]
    if result.tables:
        out += ["| table | rows | SQL MB generated | load s |", "|---|---:|---:|---:|"]
        for table in result.tables:
            out.append(
                f"| {table['name']} | {int(str(table['rows'])):,} "
                f"| {int(str(table['sql_bytes'])) / 1e6:.1f} | {table['load_seconds']} |"
            )
        out += [
            "",
            f"Single-stream dump: {dump_mb:.0f} MB (`mariadb-dump "
            f"{' '.join(result.dump_arguments)}`, the arguments from "
            f"{result.dump_arguments_from}).  InnoDB: {result.data_bytes / 1e6:.0f} MB of data "
            f"and {result.index_bytes / 1e6:.0f} MB of secondary indexes on the source.  "
            f"Plakar store after one backup: {result.store_bytes / 1e6:.0f} MB.  "
            f"Generated by `bench/datagen.py` (seed `{options['seed']}`, generator version "
            f"{options['generator_version']}).",
        ]
    out += ["", "## Set-up (timed once, for information)", ""]
    out += [
        f"- {s.name}: {s.seconds:.1f} s" + (f" ({s.detail})" if s.detail else "")
        for s in result.steps
    ]
    out += [
        "",
        "## Servers",
        "",
        "Private `mariadbd` instances (`tests/support/mariadb.py`), one source and one "
        "target, on loopback TCP; every contender connects over TCP.",
        "",
        f"- target arguments: `{' '.join(map(str, options['target_server_args']))}`"  # type: ignore[call-overload]
        f" ({', '.join(result.target_settings)})",
        f"- source arguments: `{' '.join(map(str, options['source_server_args']))}`",  # type: ignore[call-overload]
        "- before each run: the target database is dropped and created again, InnoDB's dirty "
        "pages are written out, then `sync`; then the run waits (up to "
        f"{options.get('quiet_timeout', 0)} s) for the machine to be nearly idle (under 0.2 "
        "CPU busy over a second), since other work may share it.",
    ]
    if result.notes:
        out += ["", "## Notes", ""]
        out += [f"- {note}" for note in result.notes]
    out += ["", "## Machine and versions", ""]
    out += _environment(result.environment)
    return "\n".join(out) + "\n"


def write_restore(result: RestoreResult, command: str, directory: Path = RESULTS) -> Path:
    """Write ``restore.md`` and ``restore.json``; return the Markdown file's path."""
    directory.mkdir(parents=True, exist_ok=True)
    markdown = directory / "restore.md"
    markdown.write_text(render_restore(result, command), encoding="utf-8")
    data = dataclasses.asdict(result)
    data["command"] = command
    data["summary"] = {
        c.key: {
            "median_seconds": result.median_time(c.key),
            "median_ratio_vs_single": result.median_ratio(c.key),
        }
        for c in result.contenders
    }
    (directory / "restore.json").write_text(
        json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8"
    )
    return markdown
