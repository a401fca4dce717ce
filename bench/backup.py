"""Backup speed: the integration against the dump tool alone and against what a
user would pick instead, on the same generated database, in one run.

For each size (about 100 MB and 1 GB of SQL by default), a private source
server is filled by :mod:`bench.datagen`; one untimed ``plakar backup`` warms
the caches and tells the dump tool's exact arguments (the snapshot's
``/manifest.json``), which every dump-based contender then uses.  Each round
runs every contender once, in turn (A, B, C, D, E, A, B, ...), each into a
store, repository or directory of its own made for that run, once the machine
is nearly idle:

- ``floor``: ``mariadb-dump ARGS > /dev/null``, what any logical backup costs;
- ``gzip``: ``mariadb-dump ARGS | gzip -1 > dump.sql.gz``;
- ``restic``: ``mariadb-dump ARGS | restic backup --stdin`` into a new repository;
- ``mydumper``: ``mydumper --threads 2`` into a new directory;
- ``plakar-file``: ``plakar at STORE backup`` of a directory holding the same
  dump, written once beforehand: what Plakar itself costs, without the plugin;
- ``plakar``: ``plakar at STORE backup`` of the database into a new encrypted store;
- ``official``: the same with Plakar's official ``mysql`` integration
  (``mysql+mariadb://``), when its package is given (:mod:`bench.official`;
  skipped otherwise, and the report says so).

Every process of a run's tree is followed (read from ``/proc`` every 50 ms, so
a process's last few milliseconds may be missed): its CPU time (user + system),
grouped by what it is (:data:`PROCESS_GROUPS`: plakar, the plugin, the dump
tool, anything else), and for the two plugin contenders the plugin's peak
resident memory.  The source server is outside the tree: its CPU time over the
run (``mariadbd``'s, read before and after) is reported on its own.  The sum,
over the machine's CPUs, is the least wall time the run could take with
perfect overlap, shown next to the wall time it took.

Times are medians over the rounds; each ratio is computed within a round
against that round's ``floor`` and the median of those is reported.  The
deduplication scenario (:mod:`bench.dedup`) runs on the same server afterwards.
A timing never fails the benchmark.

With ``flavour="mysql"`` (``python -m bench backup --flavour mysql``) the source
is MySQL 9.7 (``make mysql``'s tree, binary log with GTIDs), the dump tool is
MySQL's ``mysqldump`` (through the tree's loader, whose process is counted as the
dump tool), this integration gets ``-o bin_dir=`` and the official one runs
through its MySQL connector, ``mysql://`` with ``-o mysql_bin_dir=``; mydumper is
left out (Debian 12's cannot dump MySQL 9: it runs ``SHOW MASTER STATUS``, which
MySQL 8.4 removed).
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import datagen, dedup, official, workload
from bench.environment import Environment, describe_environment
from bench.rounds import Contender, Round, failure, median, play, round_ratios, run_times
from bench.servers import BenchServer, find_program, source_args, tool_version
from bench.workspace import Workspace
from plakar_mysql_harness.plakar import Plakar, find_ptar
from plakar_mysql_harness.timing import ProcessWatch, run_timed, wait_for_quiet

__all__ = ["BackupOptions", "BackupResult", "Contender", "SizeResult", "run"]

GOAL_RATIO = 1.5
"""Goal: the integration's backup in at most this many times the dump tool alone."""
GOAL_VS_OFFICIAL = 1.0
"""Goal: the integration's backup no slower than the official integration's (same round)."""
GOAL_VS_PLAKAR_FILE = 1.15
"""Goal: at most this many times Plakar alone backing up the same dump file (same round)."""
GOAL_CPU_PER_GB = 3.0
"""Goal: the importer process's CPU time, in seconds per GB of SQL dumped."""
GOAL_PLUGIN_MIB = 64
"""Goal: the importer process's peak resident memory, in MiB."""
BASE = "floor"


@dataclass(frozen=True)
class BackupOptions:
    sizes_mb: tuple[float, ...] = (100.0, 1000.0)
    runs: int = 3
    seed: str = "plakar-mysql-bench"
    workdir: Path | None = None
    keep: bool = False
    quiet_timeout: float = 60.0
    timeout: float = 3600.0
    ptar: Path | None = None
    official_ptar: Path | None = None
    """The official integration's package; None: that contender is skipped."""
    mydumper_threads: int = 2
    dedup: bool = True
    flavour: str = "mariadb"
    """The servers' flavour (:data:`bench.servers.FLAVOURS`)."""


@dataclass
class Run(Round):
    cpu_seconds: float = 0.0
    """CPU time of the command's process tree (the server's is not included)."""
    max_rss_kib: int = 0
    output_bytes: int = 0
    """What the run left on disk (store, repository, file or directory)."""
    plugin_cpu_seconds: float | None = None
    """CPU time of the plugin process alone (plugin contenders only)."""
    plugin_rss_kib: int | None = None
    """Peak resident memory of the plugin process (plugin contenders only)."""
    cpu_by_group: dict[str, float] = field(default_factory=dict)
    """CPU time of the tree's processes, summed by group (:data:`PROCESS_GROUPS`)."""
    server_cpu_seconds: float | None = None
    """CPU time the source server (``mariadbd``) used during the run."""

    @property
    def total_cpu_seconds(self) -> float:
        """Every process's CPU time, the server's included."""
        return sum(self.cpu_by_group.values()) + (self.server_cpu_seconds or 0.0)


@dataclass
class SizeResult:
    size_mb: float
    sql_bytes: int = 0
    dump_bytes: int = 0
    """Size of the dump file the dump-based contenders read (what the importer streams)."""
    rows: int = 0
    data_bytes: int = 0
    index_bytes: int = 0
    runs: list[Run] = field(default_factory=list)
    dedup: dedup.DedupResult | None = None

    def times(self, key: str) -> list[float]:
        return run_times(self.runs, key)

    def ratios(self, key: str, base: str = BASE) -> list[float]:
        return round_ratios(self.runs, key, base)

    def median_time(self, key: str) -> float | None:
        return median(self.times(key))

    def median_ratio(self, key: str, base: str = BASE) -> float | None:
        return median(self.ratios(key, base))

    def plugin_cpu(self, key: str) -> float | None:
        """Median CPU time of the plugin process over the runs that succeeded."""
        return median(
            [
                r.plugin_cpu_seconds
                for r in self.runs
                if r.contender == key and r.seconds is not None and r.plugin_cpu_seconds is not None
            ]
        )

    def cpu_of(self, key: str, group: str) -> float | None:
        """Median CPU time of one group of processes (or ``"server"``, or
        ``"total"``) over ``key``'s runs that succeeded."""

        def value(run: Run) -> float | None:
            if group == "server":
                return run.server_cpu_seconds
            if group == "total":
                return run.total_cpu_seconds if run.cpu_by_group else None
            return run.cpu_by_group.get(group, 0.0) if run.cpu_by_group else None

        found = [value(r) for r in self.runs if r.contender == key and r.seconds is not None]
        return median([v for v in found if v is not None])

    def plugin_peak_kib(self, key: str) -> int | None:
        """Largest resident memory of the plugin process over every run."""
        peaks = [r.plugin_rss_kib for r in self.runs if r.contender == key and r.plugin_rss_kib]
        return max(peaks) if peaks else None


@dataclass
class BackupResult:
    options: dict[str, object]
    environment: Environment
    contenders: list[Contender] = field(default_factory=list)
    sizes: list[SizeResult] = field(default_factory=list)
    dump_arguments: list[str] = field(default_factory=list)
    server_version: str = ""
    notes: list[str] = field(default_factory=list)
    failure: str | None = None


class _Size:
    """One size: its source server, its plakar homes, its contenders."""

    def __init__(self, options: BackupOptions, space: Workspace, source: BenchServer) -> None:
        self.options = options
        self.workdir = space.path
        self.logs = space.logs
        self.source = source
        self.plakar = space.plakar("plakar", options.ptar or find_ptar())
        self.official = (
            space.plakar("plakar-official", options.official_ptar)
            if options.official_ptar is not None
            else None
        )
        self.restic = find_program("restic")
        self.mydumper = find_program("mydumper") if source.flavour == "mariadb" else None
        self.password_file = self.workdir / "restic.password"
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.plakar.passphrase + "\n")
        self.arguments: list[str] = []
        self.dump_dir = self.workdir / "dump"

    def prepare(self) -> None:
        """One untimed plakar backup: caches warm, the dump arguments known."""
        snapshot = self.plakar.backup(
            self.source.uri(datagen.DATABASE),
            f"password={self.source.password}",
            *self.source.plugin_options(),
            timeout=self.options.timeout,
        )
        self.arguments = workload.dump_arguments(self.plakar, snapshot)
        self.dump_dir.mkdir(parents=True, exist_ok=True)
        with (self.dump_dir / f"{datagen.DATABASE}.sql").open("wb") as out:
            workload.check_call(self.source.dump_command(self.arguments), stdout=out)

    def contenders(self) -> list[Contender]:
        dump = self.source.dump_name
        found = [
            Contender(BASE, f"{dump} > /dev/null (the floor)", f"{dump} ARGS > /dev/null"),
            Contender("gzip", f"{dump} | gzip -1", f"{dump} ARGS | gzip -1 > dump.sql.gz"),
        ]
        if self.restic:
            found.append(
                Contender(
                    "restic",
                    f"{dump} | restic backup --stdin",
                    f"{dump} ARGS | restic -r NEW_REPO backup --stdin",
                )
            )
        if self.mydumper:
            threads = self.options.mydumper_threads
            found.append(
                Contender(
                    "mydumper", f"mydumper -t {threads}", f"mydumper --threads {threads} -o NEW_DIR"
                )
            )
        found.append(
            Contender(
                "plakar-file",
                "plakar backup of the dump file (Plakar alone)",
                "plakar at NEW_STORE backup DIRECTORY_WITH_THE_DUMP",
            )
        )
        uri = self.source.uri(datagen.DATABASE)
        found.append(
            Contender(
                "plakar",
                "the integration: plakar backup",
                "plakar at NEW_STORE backup -o password=... "
                + "".join(f"-o {o} " for o in self.source.plugin_options())
                + uri,
            )
        )
        if self.official is not None:
            found.append(
                Contender(
                    official.KEY,
                    "Plakar's official mysql integration: plakar backup",
                    "plakar at NEW_STORE backup -o password=... "
                    + "".join(f"-o {o} " for o in self.source.official_options())
                    + official.uri(uri, self.source.flavour),
                )
            )
        return found

    def dump_pipeline(self, tail_command: str) -> list[str]:
        dump = shlex.join(self.source.dump_command(self.arguments))
        return ["bash", "-o", "pipefail", "-c", f"{dump} {tail_command}"]

    def command(self, key: str, out: Path) -> tuple[list[str], dict[str, str] | None]:
        """The command of a contender writing to ``out``, and its environment."""
        if key == BASE:
            return self.dump_pipeline("> /dev/null"), None
        if key == "gzip":
            return self.dump_pipeline(f"| gzip -1 > {shlex.quote(str(out))}"), None
        if key == "restic":
            assert self.restic is not None
            restic = shlex.join([self.restic, "-r", str(out), "--quiet"])
            return self.dump_pipeline(
                f"| {restic} backup --stdin --stdin-filename {datagen.DATABASE}.sql"
            ), self.restic_env()
        if key == "mydumper":
            assert self.mydumper is not None
            source = self.source
            return [
                self.mydumper,
                f"--defaults-file={source.option_file}",
                *("--host", source.host, "--port", str(source.port), "--user", "root"),
                *("--database", datagen.DATABASE, "--outputdir", str(out)),
                *("--threads", str(self.options.mydumper_threads)),
                *("--routines", "--triggers", "--events", "--verbose", "2"),
            ], None
        if key == "plakar-file":
            return [str(self.plakar.binary), "at", str(out), "backup", str(self.dump_dir)], (
                self.plakar.env
            )
        if key in ("plakar", official.KEY):
            plakar = self.plakar_of(key)
            uri = self.source.uri(datagen.DATABASE)
            if key == official.KEY:
                uri = official.uri(uri, self.source.flavour)
                tools = self.source.official_options()
            else:
                tools = self.source.plugin_options()
            options = [f"password={self.source.password}", *tools]
            return [
                str(plakar.binary),
                "at",
                str(out),
                "backup",
                *(arg for option in options for arg in ("-o", option)),
                uri,
            ], plakar.env
        raise ValueError(key)

    def plakar_of(self, key: str) -> Plakar:
        """The plakar home a contender runs in (the official package has its own)."""
        if key == official.KEY:
            assert self.official is not None
            return self.official
        return self.plakar

    def restic_env(self) -> dict[str, str]:
        return {**os.environ, "RESTIC_PASSWORD_FILE": str(self.password_file)}

    def prepare_output(self, key: str, out: Path) -> None:
        """A new, empty store or repository (untimed); nothing for the others."""
        shutil.rmtree(out, ignore_errors=True)
        out.unlink(missing_ok=True)
        if key.startswith("plakar") or key == official.KEY:
            self.plakar_of(key).run("at", str(out), "create")
        elif key == "restic":
            assert self.restic is not None
            workload.check_call(
                [self.restic, "-r", str(out), "--quiet", "init"], env=self.restic_env()
            )

    def run_one(self, number: int, contender: Contender) -> Run:
        run = Run(number, contender.key)
        out = self.workdir / "out" / contender.key
        out.parent.mkdir(parents=True, exist_ok=True)
        self.prepare_output(contender.key, out)
        if self.options.quiet_timeout > 0:
            wait_for_quiet(self.options.quiet_timeout)
        cmd, env = self.command(contender.key, out)
        plugin = _ProcessWatch()
        server_before = self.source.cpu_seconds()
        timed = run_timed(
            cmd,
            self.logs / f"round{number}-{contender.key}.log",
            env=env,
            cwd=self.workdir,
            timeout=self.options.timeout,
            interval=0.05,
            on_sample=plugin,
        )
        plakar = self.plakar_of(contender.key) if contender.key.startswith("plakar") else None
        if contender.key == official.KEY:
            plakar = self.plakar_of(contender.key)
        run.error = failure(timed, self.options.timeout, plakar)
        run.server_cpu_seconds = self.source.cpu_seconds() - server_before
        run.cpu_seconds, run.max_rss_kib = timed.cpu_seconds, timed.max_rss_kib
        run.cpu_by_group = plugin.cpu_by_group()
        if plugin.seen:
            run.plugin_cpu_seconds, run.plugin_rss_kib = plugin.cpu_seconds, plugin.rss_kib
        if out.exists():
            run.output_bytes = workload.tree_bytes(out) if out.is_dir() else out.stat().st_size
        if run.error is None:
            run.seconds = timed.seconds
        shown = f"{timed.seconds:.1f} s" if run.error is None else f"FAILED: {run.error}"
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in sorted(run.cpu_by_group.items()) if v)
        shown += f" (CPU s: {cpu}, server {run.server_cpu_seconds:.1f})"
        print(f"bench: backup round {number} {contender.key}: {shown}", flush=True)
        return run


_PLUGINS = frozenset({"mysql-importer", "mariadbImporter", "mysqlImporter"})
"""Process names of the importers: ours and the official integration's (MariaDB, MySQL)."""
PROCESS_GROUPS = ("plakar", "plugin", "dump tool", "other")
"""How a run's processes are grouped for their CPU time."""
_DUMP_TOOLS = frozenset({"mariadb-dump", "mysqldump", "ld-linux-x86-64"})
"""The dump tools' process names.  MySQL's tools run through the tree's dynamic
loader (``make mysql``), whose name the process takes: in a backup run the only
such process is ``mysqldump`` (and the official importer's one-line ``mysql``
version check)."""


def process_group(name: str) -> str:
    """The group (:data:`PROCESS_GROUPS`) of a process, by its name."""
    if name in _PLUGINS:
        return "plugin"
    if name in _DUMP_TOOLS:
        return "dump tool"
    return "plakar" if name == "plakar" else "other"


class _ProcessWatch(ProcessWatch):
    """A run's processes, read as the importer (ours or the official one) and
    the groups of :data:`PROCESS_GROUPS`."""

    @property
    def seen(self) -> bool:
        return any(proc.name in _PLUGINS for proc in self.last.values())

    @property
    def cpu_seconds(self) -> float:
        return sum(cpu for name, cpu in self.cpu_by_name().items() if name in _PLUGINS)

    @property
    def rss_kib(self) -> int:
        return max((self.peak_rss.get(name, 0) for name in _PLUGINS), default=0) // 1024

    def cpu_by_group(self) -> dict[str, float]:
        groups = dict.fromkeys(PROCESS_GROUPS, 0.0)
        for name, cpu in self.cpu_by_name().items():
            groups[process_group(name)] += cpu
        return {k: round(v, 2) for k, v in groups.items()}


def _one_size(
    options: BackupOptions, size_mb: float, space: Workspace, result: BackupResult
) -> SizeResult:
    """Measure one size in ``space`` (its own directory), stopping what it started."""
    measured = SizeResult(size_mb)
    result.sizes.append(measured)
    try:
        source = space.server("source", source_args(options.flavour))
        result.server_version = source.version
        stats = workload.generate(source, size_mb, options.seed)
        found = workload.inventory(source, stats)
        measured.sql_bytes, measured.rows = stats.sql_bytes, stats.rows
        measured.data_bytes, measured.index_bytes = found.data_bytes, found.index_bytes
        size = _Size(options, space, source)
        size.prepare()
        measured.dump_bytes = (size.dump_dir / f"{datagen.DATABASE}.sql").stat().st_size
        result.dump_arguments = size.arguments
        result.contenders = size.contenders()
        measured.runs = play(options.runs, result.contenders, size.run_one)
        shutil.rmtree(space.path / "out", ignore_errors=True)
        if options.dedup:
            measured.dedup = dedup.run(
                source, size.plakar, size.arguments, space.path / "dedup", size.restic_env()
            )
    finally:
        space.stop()
    return measured


def run(options: BackupOptions, progress: Callable[[str], None] = print) -> BackupResult:
    """Run the backup benchmark at every size; never raises for a timing, only reports."""
    result = BackupResult(
        options={
            "sizes_mb": list(options.sizes_mb),
            "runs": options.runs,
            "seed": options.seed,
            "mydumper_threads": options.mydumper_threads,
            "official_ptar": str(options.official_ptar) if options.official_ptar else None,
            "flavour": options.flavour,
            "source_server_args": list(source_args(options.flavour)),
            "generator_version": datagen.GENERATOR_VERSION,
        },
        environment=describe_environment({}),
    )
    space = Workspace(
        "backup",
        result,
        options.workdir,
        keep=options.keep,
        prefix="plakar-mysql-bench-backup-",
        progress=progress,
        flavour=options.flavour,
    )
    if options.official_ptar is None:
        result.notes.append(official.skipped_note())
        progress(f"bench: {official.skipped_note()}")
    with space:
        for size_mb in options.sizes_mb:
            _one_size(options, size_mb, space.below(f"{size_mb:g}mb"), result)
    package = workload.package_description(options.ptar or find_ptar())
    versions = workload.versions(None, package, myloader=False, flavour=options.flavour)
    versions[workload.server_label(options.flavour)] = result.server_version or "not started"
    versions["mydumper"] = tool_version(find_program("mydumper"))
    versions["restic"] = tool_version(find_program("restic"), "version")
    versions["gzip"] = tool_version(find_program("gzip"))
    if options.official_ptar is not None:
        versions["official integration"] = workload.package_description(options.official_ptar)
    result.environment = describe_environment(versions)
    return result
