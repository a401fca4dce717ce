"""Benchmark results as Markdown (for people) and JSON (for later plots and comparisons).

Each benchmark writes ``bench/results/<name>.md`` and ``bench/results/<name>.json``
and prints the Markdown.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from bench import RESULTS
from bench.backup import (
    GOAL_CPU_PER_GB,
    GOAL_PLUGIN_MIB,
    GOAL_VS_OFFICIAL,
    GOAL_VS_PLAKAR_FILE,
    PROCESS_GROUPS,
    BackupResult,
    Contender,
)
from bench.backup import GOAL_RATIO as BACKUP_GOAL
from bench.backup import SizeResult as BackupSize
from bench.dedup import GOAL_UNCHANGED
from bench.environment import Environment
from bench.memory import (
    CLIENT,
    DUMP_TOOL,
    GOAL_MIB,
    GROWTH_TOLERANCE,
    IDLE_SECONDS,
    PLAKAR,
    PLAKAR_OTHER,
    PLUGIN,
    SAMPLE_SECONDS,
    MemoryResult,
    Phase,
    SizeResult,
)
from bench.official import KEY as OFFICIAL
from bench.restore import ALONE_SHARE, GOAL_RATIO, RestoreResult, Run

__all__ = [
    "markdown_cell",
    "render_backup",
    "render_memory",
    "render_restore",
    "write_backup",
    "write_memory",
    "write_restore",
]


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


_ON_MYSQL = (
    "**On MySQL** (`--flavour mysql`): the servers are MySQL (`make mysql`'s tree, binary"
    " log with GTIDs on); read `mysqld`, `mysql` and `mysqldump` where this report says"
    " `mariadbd`, `mariadb` and `mariadb-dump`.  This integration is given `-o bin_dir=`,"
    " the official one runs through its MySQL connector (`mysql://`, `-o mysql_bin_dir=`)."
)


def _flavour_lines(options: dict[str, object]) -> list[str]:
    """A paragraph saying the servers were MySQL, when they were; nothing on MariaDB."""
    return [_ON_MYSQL, ""] if options.get("flavour") == "mysql" else []


def _against_official(result: RestoreResult) -> list[str]:
    """The restore against Plakar's official integration, when it ran."""
    if not any(c.key == OFFICIAL for c in result.contenders):
        return []
    against = result.median_ratio("plakar", OFFICIAL)
    return [
        "**integration / Plakar's official integration, same rounds: "
        + ("n/a" if against is None else f"{against:.2f}")
        + "** (for information: no goal).",
        "",
    ]


def _every_run(runs: list[Run]) -> list[str]:
    """The table of every restore run (with the binary log each wrote, on MySQL)."""
    if not runs:
        return []
    binlog = any(r.binlog_bytes is not None for r in runs)
    out = [
        "",
        "## Every run",
        "",
        "| round | contender | s | client CPU s | server CPU s | others' CPU s "
        "| load before | quiet at start | alone | redo MB | written by server MB |"
        + (" binary log MB |" if binlog else ""),
        "|---:|---|---:|---:|---:|---:|---:|---|---|---:|---:|" + ("---:|" if binlog else ""),
    ]
    out += [
        f"| {r.round} | {r.contender} | {_seconds(r.seconds)} | {r.client_cpu_seconds:.1f} "
        f"| {r.server_cpu_seconds:.1f} | {r.other_cpu_seconds:.1f} | {r.load_before:.2f} "
        f"| {'yes' if r.quiet else 'no'} (waited {r.quiet_wait_seconds:.0f} s) "
        f"| {'yes' if r.alone else 'no'} "
        f"| {r.redo_bytes / 1e6:.0f} | {r.server_written_bytes / 1e6:.0f} |"
        + (f" {(r.binlog_bytes or 0) / 1e6:.0f} |" if binlog else "")
        for r in runs
    ]
    return out


def render_restore(result: RestoreResult, command: str) -> str:
    out: list[str] = ["# Restore speed", ""]
    options = result.options
    dump_mb = result.dump_bytes / 1e6
    out += [
        f"Restore of one database (`benchdb`, about {options['size_mb']} MB of SQL, "
        f"{len(result.tables)} tables) into a freshly created `benchdb` on a second private "
        f"{'MySQL' if options.get('flavour') == 'mysql' else 'MariaDB'} server, by the "
        "integration through `plakar restore` and by the stock tools.  "
        f"Median of {options['runs']} round(s); in each round the contenders run one after "
        "the other, each into a freshly dropped and created database; ratios are taken "
        "within a round against that round's single stream, then their median.",
        "",
        f"Command: `{command}`",
        "",
        *_flavour_lines(options),
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
    out += [*_against_official(result), f"jobs option: {result.jobs_option or 'not probed'}", ""]

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
    out += _every_run(result.runs)

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
        "Private `mariadbd` instances (`src/plakar_mysql_harness/mariadb.py`), one source and one "
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


def _write(directory: Path, name: str, markdown: str, data: dict[str, object]) -> Path:
    """Write ``NAME.md`` and ``NAME.json`` into ``directory``; return the Markdown file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.md"
    path.write_text(markdown, encoding="utf-8")
    (directory / f"{name}.json").write_text(
        json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8"
    )
    return path


def write_restore(
    result: RestoreResult, command: str, directory: Path = RESULTS, name: str = "restore"
) -> Path:
    """Write ``NAME.md`` and ``NAME.json``; return the Markdown file's path."""
    data = dataclasses.asdict(result)
    data["command"] = command
    data["summary"] = {
        c.key: {
            "median_seconds": result.median_time(c.key),
            "median_ratio_vs_single": result.median_ratio(c.key),
        }
        for c in result.contenders
    }
    return _write(directory, name, render_restore(result, command), data)


def _mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f}"


def _yes(value: bool | None) -> str:
    return "n/a" if value is None else ("yes" if value else "no")


def _measured(result: MemoryResult) -> list[SizeResult]:
    """The tiny database first, then each size."""
    return ([result.baseline] if result.baseline is not None else []) + result.sizes


def _phase_label(phase: Phase) -> str:
    plugin = phase.kinds.get(PLUGIN)
    return f"{phase.phase} ({', '.join(plugin.names)})" if plugin else phase.phase


def _kind_cell(phase: Phase, kind: str) -> str:
    """Peak of one process of ``kind``; with several, how many and their peak sum."""
    found = phase.kinds.get(kind)
    if found is None or not found.processes:
        return "-"
    cell = _mib(found.peak_kib)
    if found.processes > 1:
        cell += f" ({found.processes} processes, together {_mib(found.peak_sum_kib)})"
    return cell


def _memory_verdict(result: MemoryResult) -> list[str]:
    out = []
    goal = result.goal_met
    out += [
        f"**Goal of issue 4, the plugin under {GOAL_MIB} MiB and not growing with the size "
        f"of the database: {'met' if goal else 'not met' if goal is False else 'not judged'}.**",
        "",
    ]
    for phase in ("backup", "restore"):
        peaks = result.plugin_peaks(phase)
        if not peaks:
            out.append(f"- {phase}: nothing measured.")
            continue
        under, flat = result.verdict(phase)
        measured = next(
            (
                p
                for size, _ in peaks
                for p in size.phases()
                if p.phase == phase and PLUGIN in p.kinds
            ),
            None,
        )
        name = ", ".join(measured.kinds[PLUGIN].names) if measured is not None else "plugin"
        figures = ", ".join(f"{_mib(kib)} MiB at {size.label}" for size, kib in peaks)
        line = f"- {phase}, `{name}`: peak {figures}; under {GOAL_MIB} MiB: {_yes(under)}"
        if len(peaks) > 1:
            growth = peaks[-1][1] / peaks[0][1] - 1
            line += (
                f"; from {peaks[0][0].label} to {peaks[-1][0].label}: {growth:+.1%}"
                f" (not growing, at most {GROWTH_TOLERANCE:.0%}: {_yes(flat)})"
            )
        out.append(line + ".")
    baseline = result.baseline
    if baseline is not None:
        floors = [
            f"{p.phase} {_mib(p.peak(PLUGIN))} MiB" for p in baseline.phases() if p.peak(PLUGIN)
        ]
        if floors:
            out += [
                "",
                "The same plugins on a database of one table of two rows (what they cost "
                f"with almost no data flowing): {', '.join(floors)}.",
            ]
    alone = [
        f"{', '.join(p.kinds[PLUGIN].names)} {_mib(p.peak(PLUGIN))} MiB"
        for p in result.startup
        if p.peak(PLUGIN)
    ]
    if alone:
        out += [
            "",
            "Each executable started alone (its bundle loaded, its gRPC server started, "
            f"waiting for plakar, stopped after {IDLE_SECONDS:g} s): {', '.join(alone)}.",
        ]
    return out


def render_memory(result: MemoryResult, command: str) -> str:
    out: list[str] = ["# Memory", ""]
    out += [
        "Peak resident memory of the plugin, of plakar and of the stock tools while one "
        "database is backed up with `plakar backup` and restored with `plakar restore` (into "
        "a freshly created database on a second private MariaDB server, `jobs` at its "
        f"default, the number of CPUs: {result.options.get('jobs')}), for a tiny database and "
        "for generated "
        f"databases of {', '.join(f'{s:g}' for s in result.options['sizes_mb'])} MB of SQL "  # type: ignore[attr-defined]
        "(`bench/datagen.py`).  Each size is backed up into an empty store of its own.",
        "",
        f"Command: `{command}`",
        "",
    ]
    if result.failure:
        out += [f"**The benchmark stopped early:** {result.failure}", ""]
    out += _memory_verdict(result)

    measured = _measured(result)
    out += [
        "",
        "## Peak resident memory, MiB",
        "",
        "| database | command | s | plugin | plakar | plakar, other processes "
        "| dump tool | clients | whole tree |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in measured:
        for phase in size.phases():
            out.append(
                f"| {size.label} | {_phase_label(phase)} | {_seconds(phase.seconds)} "
                f"| {_kind_cell(phase, PLUGIN)} | {_kind_cell(phase, PLAKAR)} "
                f"| {_kind_cell(phase, PLAKAR_OTHER)} | {_kind_cell(phase, DUMP_TOOL)} "
                f"| {_kind_cell(phase, CLIENT)} | {_mib(phase.tree_peak_kib)} |"
            )
    out += [
        "",
        "Each figure is the peak of one process: the larger of its `VmHWM` (the kernel's "
        "high-water mark of its resident set, which catches what happens between samples) "
        f"and of its `VmRSS` sampled every {SAMPLE_SECONDS:g} s, from `/proc/PID/status`; "
        "for several processes of a kind (clients loading tables side by side), their count "
        "and the peak of their summed `VmRSS`.  *Whole tree*: the peak of the summed "
        "`VmRSS` of every process of the command at one sample.  A resident set counts the "
        "pages of shared libraries and mapped files it uses (`RssFile`) in full, although "
        "they are shared with the page cache and with every process mapping the same "
        "files.",
        "",
        "## The plugin",
        "",
        "| database | command | peak (VmHWM) | sampled peak VmRSS | median VmRSS "
        "| RssAnon | RssFile | RssShmem | threads | samples |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [("none", p) for p in result.startup]
    rows += [(size.label, phase) for size in measured for phase in size.phases()]
    for label, phase in rows:
        plugin = phase.kinds.get(PLUGIN)
        if plugin is not None:
            out.append(
                f"| {label} | {_phase_label(phase)} | {_mib(plugin.hwm_kib)} "
                f"| {_mib(plugin.peak_rss_kib)} | {_mib(plugin.median_sum_kib)} "
                f"| {_mib(plugin.anon_kib)} | {_mib(plugin.file_kib)} "
                f"| {_mib(plugin.shmem_kib)} | {plugin.threads} | {phase.samples} |"
            )
    out += [
        "",
        "MiB.  RssAnon (the process's own memory: Python's heap, buffers, thread stacks), "
        "RssFile (mapped files: the bundle's interpreter and libraries, shared) and RssShmem "
        "are read at the sample of the sampled peak, with the thread count; the median is "
        "over the samples while the plugin ran.",
        "",
        "### Where the plugin's memory is, at its peak",
        "",
        "Resident KiB per mapping of `/proc/PID/smaps` (files by name; `[anon]`: anonymous "
        "memory outside the heap, such as the allocator's arenas and thread stacks), largest "
        "first, read when the plugin reached its peak (to within 1 MiB).",
        "",
    ]
    for label, phase in rows:
        plugin = phase.kinds.get(PLUGIN)
        if plugin is not None and plugin.mappings:
            top = ", ".join(f"{name} {kib:,}" for name, kib in plugin.mappings)
            out.append(f"- {label}, {_phase_label(phase)}: {top}")

    lingering = sorted(
        {
            f"{name.rsplit(' (', 1)[0]} ({size.label} {phase.phase})"
            for size in measured
            for phase in size.phases()
            for name in phase.left_running
        }
    )
    failures = [
        f"{size.label} {phase.phase}: {phase.error}"
        for size in measured
        for phase in size.phases()
        if phase.error
    ]
    if failures:
        out += ["", "Failed commands (their figures are shown but do not count):", ""]
        out += [f"- {failure}" for failure in failures]
    out += [
        "",
        "## Data sets",
        "",
        "| database | SQL MB generated | rows | InnoDB data + indexes MB | store MB "
        "| generated in s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for size in measured:
        out.append(
            f"| {size.label} | {size.sql_bytes / 1e6:.0f} | {size.rows:,} "
            f"| {(size.data_bytes + size.index_bytes) / 1e6:.0f} "
            f"| {size.store_bytes / 1e6:.1f} | {size.generate_seconds:.1f} |"
        )
    out += [
        "",
        f"Generated by `bench/datagen.py` (seed `{result.options['seed']}`, generator "
        f"version {result.options['generator_version']}); the tiny database is one table of "
        "two rows.  Source server arguments: "
        f"`{' '.join(map(str, result.options['source_server_args']))}`; target: "  # type: ignore[call-overload]
        f"`{' '.join(map(str, result.options['target_server_args']))}`.",  # type: ignore[call-overload]
    ]
    notes = list(result.notes)
    if lingering:
        notes.append(
            "Processes still running when their command had exited (sampled until "
            f"then): {', '.join(lingering)}."
        )
    if notes:
        out += ["", "## Notes", ""]
        out += [f"- {note}" for note in notes]
    out += ["", "## Machine and versions", ""]
    out += _environment(result.environment)
    return "\n".join(out) + "\n"


def write_memory(result: MemoryResult, command: str, directory: Path = RESULTS) -> Path:
    """Write ``memory.md`` and ``memory.json``; return the Markdown file's path."""
    data = dataclasses.asdict(result)
    data["command"] = command
    data["summary"] = {
        "goal_mib": GOAL_MIB,
        "growth_tolerance": GROWTH_TOLERANCE,
        "goal_met": result.goal_met,
        "peak_kib": {
            size.label: {
                phase.phase: {kind: peak.peak_kib for kind, peak in phase.kinds.items()}
                for phase in size.phases()
            }
            for size in _measured(result)
        },
    }
    return _write(directory, "memory", render_memory(result, command), data)


def markdown_cell(text: str) -> str:
    """``text`` for a Markdown table cell (a ``|`` would end the cell)."""
    return text.replace("|", "\\|")


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _dedup_lines(size: BackupSize) -> list[str]:
    found = size.dedup
    if found is None:
        return []
    lines = [
        "",
        f"#### Deduplication, {size.size_mb:g} MB",
        "",
        "Dumps: "
        + ", ".join(f"{b / 1e6:.1f} MB" for b in found.dump_bytes)
        + " (day 0, unchanged, day 1). The day of changes:",
        "",
        *(f"- {change}" for change in found.changes),
        "",
        "| stored as | first backup | again, unchanged | after the day of changes |",
        "|---|---|---|---|",
    ]
    for g in found.growth:
        lines.append(
            f"| {markdown_cell(g.label)} | {g.first_bytes / 1e6:.1f} MB"
            f" | +{g.unchanged_bytes / 1e6:.2f} MB ({_share(g.share(g.unchanged_bytes))})"
            f" | +{g.changed_bytes / 1e6:.2f} MB ({_share(g.share(g.changed_bytes))}) |"
        )
    return lines


def _dedup_verdict(result: BackupResult) -> list[str]:
    lines = []
    for size in result.sizes:
        if size.dedup is None:
            continue
        by = {g.contender: g for g in size.dedup.growth}
        ours = by.get("plakar")
        if ours is None:
            continue
        changed = ours.share(ours.changed_bytes)
        others = [(g.label, g.share(g.changed_bytes)) for key, g in by.items() if key != "plakar"]
        worse = [
            label
            for label, share in others
            if share is not None and changed is not None and changed > share
        ]
        unchanged = ours.share(ours.unchanged_bytes)
        lines.append(
            f"- {size.size_mb:g} MB: after the day of changes the integration's store grew by"
            f" {_share(changed)} of its first backup"
            + (f"; more than {', '.join(worse)}" if worse else "; no more than any other")
            + f". Unchanged again: {_share(unchanged)}"
            + (
                " (goal: under 0.5%, met)."
                if unchanged is not None and unchanged < GOAL_UNCHANGED
                else " (goal: under 0.5%, **not met**)."
            )
        )
    return lines


def _goal(value: float | None, goal: float) -> str:
    if value is None:
        return "not measured"
    return "met" if value <= goal else "**not met**"


def _plugin_verdict(size: BackupSize, keys: set[str]) -> list[str]:
    """The goals of issue 13: against the official integration and Plakar alone,
    the importer's CPU time per GB and its memory."""
    lines = []
    if OFFICIAL in keys:
        ratio = size.median_ratio("plakar", OFFICIAL)
        lines.append(
            f"  - against Plakar's official integration, same rounds: {_ratio(ratio)}"
            f" (goal: at most {GOAL_VS_OFFICIAL:g}, {_goal(ratio, GOAL_VS_OFFICIAL)})."
        )
    else:
        lines.append("  - against Plakar's official integration: skipped (no package given).")
    ratio = size.median_ratio("plakar", "plakar-file")
    lines.append(
        f"  - against Plakar alone backing up the same dump file, same rounds: {_ratio(ratio)}"
        f" (goal: at most {GOAL_VS_PLAKAR_FILE:g}, {_goal(ratio, GOAL_VS_PLAKAR_FILE)})."
    )
    cpu = size.plugin_cpu("plakar")
    per_gb = cpu / (size.dump_bytes / 1e9) if cpu is not None and size.dump_bytes else None
    lines.append(
        f"  - importer CPU: {_seconds(cpu)} s for {size.dump_bytes / 1e6:.0f} MB of SQL,"
        f" {_seconds(per_gb)} s per GB (goal: at most {GOAL_CPU_PER_GB:g},"
        f" {_goal(per_gb, GOAL_CPU_PER_GB)})"
        + (
            f"; the official importer: {_seconds(size.plugin_cpu(OFFICIAL))} s."
            if OFFICIAL in keys
            else "."
        )
    )
    peak = size.plugin_peak_kib("plakar")
    lines.append(
        f"  - importer peak memory: {_mib(peak)} MiB (goal: at most {GOAL_PLUGIN_MIB},"
        f" {_goal(None if peak is None else peak / 1024, GOAL_PLUGIN_MIB)})."
    )
    return lines


def _cpu_lines(size: BackupSize, contenders: list[Contender], cpus: int) -> list[str]:
    """Where each contender's CPU time went, process group by group, and the least
    wall time that much CPU allows on this machine's CPUs (perfect overlap)."""
    groups = [*PROCESS_GROUPS, "server"]
    lines = [
        "",
        f"CPU time by process (medians, s; the server is `mariadbd`'s CPU time during the"
        f" run). The lower bound is the total over the {cpus} CPUs: the wall time with"
        " every process overlapping perfectly and nothing else running.",
        "",
        "| contender | " + " | ".join(groups) + " | total | lower bound | wall time"
        " | wall / lower bound |",
        "|---|" + "---|" * (len(groups) + 4),
    ]
    for c in contenders:
        total = size.cpu_of(c.key, "total")
        if total is None:
            continue
        bound = total / max(cpus, 1)
        wall = size.median_time(c.key)
        cells = [_seconds(size.cpu_of(c.key, g)) for g in groups]
        lines.append(
            f"| {markdown_cell(c.label)} | {' | '.join(cells)} | {_seconds(total)}"
            f" | {_seconds(bound)} | {_seconds(wall)}"
            f" | {_ratio(wall / bound if wall is not None and bound else None)} |"
        )
    return lines


def render_backup(result: BackupResult, command: str) -> str:
    lines = [
        "# Backup speed and deduplication",
        "",
        f"Command: `{command}`. Every figure is the median of {result.options['runs']} rounds"
        " in which the contenders ran in turn; a ratio is taken within each round against"
        " that round's `mariadb-dump > /dev/null`, then the median is reported. Each run"
        " writes into a store, repository or directory of its own, made for it (a first,"
        " full backup). Nothing fails on a timing.",
        "",
        *_flavour_lines(result.options),
        *_environment(result.environment),
        "",
        "Dump arguments (from the integration's manifest): `"
        + " ".join(result.dump_arguments)
        + "`",
        "",
    ]
    if result.failure:
        lines += [f"**The benchmark could not finish: {result.failure}**", ""]
    for size in result.sizes:
        lines += [
            f"## {size.size_mb:g} MB of SQL ({size.sql_bytes / 1e6:.0f} MB of INSERTs,"
            f" {size.rows:,} rows; InnoDB data {size.data_bytes / 1e6:.0f} MB,"
            f" indexes {size.index_bytes / 1e6:.0f} MB)",
            "",
            "| contender | median time (s) | ratio to the floor | CPU (s) | peak RSS (MiB)"
            " | plugin CPU (s) | plugin peak RSS (MiB) | written (MB) | failed runs |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for c in result.contenders:
            runs = [r for r in size.runs if r.contender == c.key]
            ok = [r for r in runs if r.seconds is not None]
            cpu = sorted(r.cpu_seconds for r in ok)
            rss = max((r.max_rss_kib for r in ok), default=0)
            out = sorted(r.output_bytes for r in ok)
            lines.append(
                f"| {markdown_cell(c.label)} | {_seconds(size.median_time(c.key))}"
                f" | {_ratio(size.median_ratio(c.key))}"
                f" | {_seconds(cpu[len(cpu) // 2] if cpu else None)}"
                f" | {rss / 1024:.0f} | {_seconds(size.plugin_cpu(c.key))}"
                f" | {_mib(size.plugin_peak_kib(c.key))}"
                f" | {out[len(out) // 2] / 1e6 if out else 0:.0f}"
                f" | {len(runs) - len(ok)} |"
            )
        lines += _cpu_lines(size, result.contenders, result.environment.cpus)
        errors = [f"- round {r.round} {r.contender}: {r.error}" for r in size.runs if r.error]
        lines += ["", *errors] if errors else []
        lines += _dedup_lines(size)
        lines.append("")
    lines += ["## Verdict", ""]
    for size in result.sizes:
        ratio = size.median_ratio("plakar")
        met = ratio is not None and ratio <= BACKUP_GOAL
        lines.append(
            f"- {size.size_mb:g} MB: the integration's backup took {_ratio(ratio)} times the"
            f" dump alone (goal: at most {BACKUP_GOAL:g}, {'met' if met else '**not met**'})."
        )
        lines += _plugin_verdict(size, {c.key for c in result.contenders})
    lines += _dedup_verdict(result)
    lines += ["", "Commands:", ""]
    lines += [f"- {c.label}: `{c.command}`" for c in result.contenders]
    lines += ["", *result.notes] if result.notes else []
    return "\n".join(lines) + "\n"


def write_backup(
    result: BackupResult, command: str, directory: Path = RESULTS, name: str = "backup"
) -> Path:
    """Write ``NAME.md`` and ``NAME.json`` (``backup``); return the Markdown file's path."""
    data = dataclasses.asdict(result)
    data["command"] = command
    data["summary"] = {
        f"{size.size_mb:g}": {
            c.key: {
                "median_seconds": size.median_time(c.key),
                "median_ratio_vs_floor": size.median_ratio(c.key),
            }
            for c in result.contenders
        }
        for size in result.sizes
    }
    return _write(directory, name, render_backup(result, command), data)
