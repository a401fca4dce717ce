"""Peak memory of the plugin, of plakar and of the stock tools, for databases of several sizes.

Issue 4 ("Scale") sets the goal: the plugin process stays under
:data:`GOAL_MIB` MiB, and its peak does not grow with the size of the
database.  The importer streams the dump into Plakar table by table, and the
exporter writes each table to a temporary file or straight into a client, so
neither should ever hold a table in memory; this benchmark checks that on
generated data of two sizes (by default 100 MB and 1 GB of SQL).

Set-up: two private servers (:mod:`bench.servers`), a *source* and a *target*,
and plakar with the package from ``dist/`` installed, in a private home
(:func:`~plakar_mysql_harness.plakar.make_plakar`, as the tests and the restore
benchmark use it).  Then:

1. **Floor.**  A tiny database (:data:`bench.workload.PROBE_DB`: one table,
   two rows) is backed up and restored, measured like the others.  Its
   figures are what the plugin costs with almost no data flowing (the
   interpreter, the libraries, a gRPC session), and the first use of the
   package falls on it.  Then each plugin executable, as plakar installed it,
   is started alone: it loads its bundle, starts its gRPC server and waits for
   plakar, which never speaks; after :data:`IDLE_SECONDS` it is stopped.  Its
   peak is what the bundle costs by itself.
2. **For each size**, smallest first: ``benchdb`` is generated on the source
   (:mod:`bench.datagen`: the same size and seed always give the same rows),
   backed up once with ``plakar at STORE backup`` into a store of its own
   (empty, so that no size benefits from another's chunks or state), then
   restored once with ``plakar at STORE restore`` (``jobs`` left at its
   default, the number of CPUs) into a freshly created ``benchdb`` on the
   target, which is checked afterwards (exact row counts, the view and the
   function), then dropped.  The source's ``benchdb`` is dropped before the
   next size is generated.

While each plakar command runs, its process tree is sampled every
:data:`SAMPLE_SECONDS` seconds (:func:`plakar_mysql_harness.timing.run_timed`), and each
live process is classified by its executable (``/proc/PID/exe``): the plugin
(``mysql-importer`` during a backup, ``mysql-exporter`` during a restore:
PyInstaller onedir bundles, one process each), plakar itself (the command),
other plakar processes (its cache daemon), the dump tool (``mariadb-dump``),
the clients (``mariadb``), anything else.  From ``/proc/PID/status`` each
sample reads ``VmRSS`` with its parts (``RssAnon``: the process's own heap
and stacks; ``RssFile``: mapped files, mostly the bundle's shared libraries,
shared with the page cache and with any other process mapping them;
``RssShmem``), ``VmHWM`` (the kernel's own high-water mark of ``VmRSS``, which
no sampling interval can miss, read while the process lives) and the thread
count.  Whenever the plugin reaches a new peak, its ``/proc/PID/smaps`` is
read too and summed by mapping, so the report can say where the memory is.

A figure never fails the benchmark: the report states whether the goal is
met.  The exit status is 1 only when a step could not run at all.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from bench import datagen, workload
from bench.environment import Environment, describe_environment
from bench.rounds import failure
from bench.servers import SOURCE_ARGS, TARGET_ARGS, BenchServer
from bench.workspace import Workspace
from plakar_mysql_harness.plakar import Plakar, find_ptar
from plakar_mysql_harness.timing import run_timed, tail

__all__ = [
    "CLIENT",
    "DUMP_TOOL",
    "GOAL_MIB",
    "GROWTH_TOLERANCE",
    "IDLE_SECONDS",
    "KINDS",
    "OTHER",
    "PLAKAR",
    "PLAKAR_OTHER",
    "PLUGIN",
    "SAMPLE_SECONDS",
    "MemoryOptions",
    "MemoryResult",
    "Phase",
    "ProcessPeak",
    "SizeResult",
    "run",
]

GOAL_MIB = 64
"""Goal of issue 4: the plugin's peak resident memory under this many MiB."""
GROWTH_TOLERANCE = 0.10
"""The plugin's peak "does not grow with the size" if the largest size's peak is at most
this share above the smallest size's (sampling and allocator noise)."""
SAMPLE_SECONDS = 0.1
"""How often the process tree is sampled."""
SMAPS_STEP_KIB = 1024
"""The plugin's mappings are read again each time its peak grows by at least this much."""
TIMELINE_POINTS = 240
"""At most this many points of each command's memory timeline go into the JSON results."""
IDLE_SECONDS = 2.0
"""How long each plugin executable started alone is left waiting before it is stopped."""

PLUGIN = "plugin"
PLAKAR = "plakar"
PLAKAR_OTHER = "plakar, other processes"
DUMP_TOOL = "dump tool"
CLIENT = "clients"
OTHER = "other"
KINDS = (PLUGIN, PLAKAR, PLAKAR_OTHER, DUMP_TOOL, CLIENT, OTHER)
"""Kinds of process, in the order they are reported."""
_PLUGINS = frozenset({"mysql-importer", "mysql-exporter"})
_DUMP_TOOLS = frozenset({"mariadb-dump", "mysqldump"})
_CLIENTS = frozenset({"mariadb", "mysql"})
_STATUS_FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "Threads", "PPid")
_TOP_MAPPINGS = 8


@dataclass(frozen=True)
class MemoryOptions:
    sizes_mb: tuple[float, ...] = (100.0, 1000.0)
    seed: str = "plakar-mysql-bench"
    workdir: Path | None = None
    keep: bool = False
    timeout: float = 3600.0
    """Seconds after which one backup or restore is killed."""
    target_args: tuple[str, ...] = TARGET_ARGS
    ptar: Path | None = None
    """The package to measure; None: the one in dist/."""


@dataclass
class ProcessPeak:
    """The memory of one kind of process during one command, in KiB."""

    kind: str
    names: list[str] = field(default_factory=list)
    """Executables of this kind that ran."""
    processes: int = 0
    """Distinct processes of this kind seen."""
    peak_rss_kib: int = 0
    """Largest ``VmRSS`` of one process at one sample."""
    hwm_kib: int = 0
    """Largest ``VmHWM`` read (the kernel's peak of one process, between samples too)."""
    peak_sum_kib: int = 0
    """Largest sum of the ``VmRSS`` of this kind's processes at one sample."""
    anon_kib: int = 0
    """``RssAnon`` of the process at its peak sample."""
    file_kib: int = 0
    """``RssFile`` of the process at its peak sample."""
    shmem_kib: int = 0
    """``RssShmem`` of the process at its peak sample."""
    threads: int = 0
    """Threads of the process at its peak sample."""
    median_sum_kib: int = 0
    """Median over the samples where this kind was running of its summed ``VmRSS``."""
    mappings: list[tuple[str, int]] = field(default_factory=list)
    """The plugin only: its largest mappings (file name or ``[anon]``...) with their
    resident KiB, read at its peak (to within :data:`SMAPS_STEP_KIB`)."""

    @property
    def peak_kib(self) -> int:
        """The peak of one process: the high-water mark, or the sampled peak if larger."""
        return max(self.hwm_kib, self.peak_rss_kib)


@dataclass
class Phase:
    """One measured plakar command: a backup or a restore of one database."""

    phase: str
    """``backup`` or ``restore``."""
    command: str
    """The command line, for the report (no secret)."""
    seconds: float | None = None
    """Wall time; None when the command failed."""
    error: str | None = None
    samples: int = 0
    kinds: dict[str, ProcessPeak] = field(default_factory=dict)
    tree_peak_kib: int = 0
    """Largest summed ``VmRSS`` of the whole tree at one sample."""
    timeline: list[list[float]] = field(default_factory=list)
    """``[seconds, plugin, plakar, dump tool and clients]`` (KiB, summed per kind), at most
    :data:`TIMELINE_POINTS` points: each the largest values of consecutive samples."""
    left_running: list[str] = field(default_factory=list)

    def peak(self, kind: str) -> int | None:
        found = self.kinds.get(kind)
        return found.peak_kib if found is not None and found.processes else None


@dataclass
class SizeResult:
    """One database, backed up and restored."""

    label: str
    size_mb: float
    """SQL asked of the generator (0 for the tiny database)."""
    sql_bytes: int = 0
    rows: int = 0
    data_bytes: int = 0
    index_bytes: int = 0
    store_bytes: int = 0
    generate_seconds: float = 0.0
    backup: Phase | None = None
    restore: Phase | None = None

    def phases(self) -> list[Phase]:
        return [p for p in (self.backup, self.restore) if p is not None]


@dataclass
class MemoryResult:
    options: dict[str, object]
    environment: Environment
    baseline: SizeResult | None = None
    """The tiny database: the floor of every figure."""
    startup: list[Phase] = field(default_factory=list)
    """Each plugin executable started alone and stopped at once: what the bundle costs."""
    sizes: list[SizeResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failure: str | None = None

    def plugin_peaks(self, phase: str) -> list[tuple[SizeResult, int]]:
        """The plugin's peak for ``phase`` at every measured size, smallest first."""
        found = []
        for size in self.sizes:
            measured = size.backup if phase == "backup" else size.restore
            peak = measured.peak(PLUGIN) if measured is not None else None
            if peak is not None and measured is not None and measured.error is None:
                found.append((size, peak))
        return found

    def verdict(self, phase: str) -> tuple[bool | None, bool | None]:
        """(under the goal at every size, not growing with size) for the plugin of
        ``phase``; None where there is nothing to judge (no size measured, one size)."""
        peaks = self.plugin_peaks(phase)
        if not peaks:
            return None, None
        under = all(kib < GOAL_MIB * 1024 for _, kib in peaks)
        if len(peaks) < 2:
            return under, None
        return under, peaks[-1][1] <= peaks[0][1] * (1 + GROWTH_TOLERANCE)

    @property
    def goal_met(self) -> bool | None:
        """Whether both plugins meet both halves of the goal (None: not enough measured)."""
        judged = [v for phase in ("backup", "restore") for v in self.verdict(phase)]
        if any(v is False for v in judged):
            return False
        return None if any(v is None for v in judged) else True


def _read_status(pid: int) -> dict[str, int] | None:
    """The numeric fields of ``/proc/PID/status`` this benchmark uses (kB as KiB)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    found: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in _STATUS_FIELDS:
            found[name] = int(value.split()[0])
    return found if "VmRSS" in found else None  # kernel threads and zombies have none


def _executable(pid: int) -> str:
    """The base name of the process's executable (its ``comm`` if that is unreadable)."""
    try:
        return Path(os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")).name
    except OSError:
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return ""


def _classify(name: str, ppid: int) -> str:
    if name in _PLUGINS:
        return PLUGIN
    if name == "plakar":
        # The command itself is this process's child; anything else is one it started.
        return PLAKAR if ppid == os.getpid() else PLAKAR_OTHER
    if name in _DUMP_TOOLS:
        return DUMP_TOOL
    if name in _CLIENTS:
        return CLIENT
    return OTHER


def _mappings(pid: int) -> list[tuple[str, int]]:
    """Resident KiB of ``pid`` per mapped file (base name) or kind of anonymous mapping,
    largest first: where its memory is."""
    try:
        with open(f"/proc/{pid}/smaps", encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    totals: dict[str, int] = {}
    current = "[anon]"
    for line in lines:
        head = line.split(maxsplit=5)
        if len(head) >= 5 and "-" in head[0] and not head[0].endswith(":"):
            path = head[5].strip() if len(head) == 6 else ""
            current = (path if path.startswith("[") else Path(path).name) if path else "[anon]"
        elif line.startswith("Rss:"):
            totals[current] = totals.get(current, 0) + int(line.split()[1])
    return sorted(((k, v) for k, v in totals.items() if v), key=lambda kv: -kv[1])


class _Watch:
    """Follows the memory of each kind of process of one command's tree, sample by sample
    (the ``on_sample`` observer of :func:`plakar_mysql_harness.timing.run_timed`)."""

    def __init__(self) -> None:
        self.kinds: dict[str, ProcessPeak] = {}
        self.seen: set[tuple[int, str]] = set()
        self.samples = 0
        self.tree_peak = 0
        self.timeline: list[list[float]] = []
        self.sums: dict[str, list[int]] = {}
        self.started = time.monotonic()
        self.smaps_at = 0

    def sample(self, pids: Collection[int]) -> None:
        self.samples += 1
        sums: dict[str, int] = {}
        for pid in pids:
            status = _read_status(pid)
            if status is None:
                continue
            name = _executable(pid)
            kind = _classify(name, status.get("PPid", 0))
            peak = self.kinds.setdefault(kind, ProcessPeak(kind))
            if (pid, name) not in self.seen:
                self.seen.add((pid, name))
                peak.processes += 1
                if name not in peak.names:
                    peak.names.append(name)
            rss = status["VmRSS"]
            sums[kind] = sums.get(kind, 0) + rss
            peak.hwm_kib = max(peak.hwm_kib, status.get("VmHWM", 0))
            if rss > peak.peak_rss_kib:
                peak.peak_rss_kib = rss
                peak.anon_kib = status.get("RssAnon", 0)
                peak.file_kib = status.get("RssFile", 0)
                peak.shmem_kib = status.get("RssShmem", 0)
                peak.threads = status.get("Threads", 0)
                if kind == PLUGIN and rss >= self.smaps_at:
                    peak.mappings = _mappings(pid)[:_TOP_MAPPINGS]
                    self.smaps_at = rss + SMAPS_STEP_KIB
        for kind, total in sums.items():
            self.kinds[kind].peak_sum_kib = max(self.kinds[kind].peak_sum_kib, total)
            self.sums.setdefault(kind, []).append(total)
        self.tree_peak = max(self.tree_peak, sum(sums.values()))
        tools = sums.get(DUMP_TOOL, 0) + sums.get(CLIENT, 0)
        self.timeline.append(
            [
                round(time.monotonic() - self.started, 2),
                sums.get(PLUGIN, 0),
                sums.get(PLAKAR, 0),
                tools,
            ]
        )

    def into(self, phase: Phase) -> None:
        """Put what was seen into ``phase``."""
        for kind, values in self.sums.items():
            self.kinds[kind].median_sum_kib = int(statistics.median(values))
        phase.kinds = {kind: self.kinds[kind] for kind in KINDS if kind in self.kinds}
        phase.samples = self.samples
        phase.tree_peak_kib = self.tree_peak
        phase.timeline = _downsample(self.timeline, TIMELINE_POINTS)


def _downsample(points: list[list[float]], most: int) -> list[list[float]]:
    """At most ``most`` points: consecutive samples merged, keeping the first time and
    the largest value of each column (so no peak is lost)."""
    if len(points) <= most:
        return points
    step = -(-len(points) // most)
    merged = []
    for start in range(0, len(points), step):
        group = points[start : start + step]
        merged.append([group[0][0], *(max(p[i] for p in group) for i in range(1, len(group[0])))])
    return merged


class _Measure:
    """The state of one memory benchmark while it runs."""

    def __init__(self, options: MemoryOptions, space: Workspace, result: MemoryResult) -> None:
        self.options = options
        self.space = space
        self.workdir = space.path
        self.result = result
        self.logs = space.logs
        self.source: BenchServer | None = None
        self.target: BenchServer | None = None
        self.plakar: Plakar | None = None
        self.package = ""

    def start(self) -> tuple[BenchServer, BenchServer, Plakar]:
        started = time.perf_counter()
        self.source = self.space.server("source", SOURCE_ARGS)
        self.target = self.space.server("target", self.options.target_args)
        ptar = self.options.ptar or find_ptar()
        # Read before installing it: `make build` elsewhere may replace dist/ meanwhile.
        self.package = workload.package_description(ptar)
        self.plakar = self.space.plakar("plakar", ptar)
        print(
            f"bench: two servers, plakar store and package: {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        return self.source, self.target, self.plakar

    def measure(
        self,
        phase: str,
        args: list[str],
        shown: str,
        label: str,
        judge: Callable[[], str | None],
    ) -> Phase:
        """Run ``plakar at STORE ARGS...`` with its memory watched; ``judge`` says why a
        run that plakar counts as a success does not count (or None)."""
        assert self.plakar is not None
        plakar = self.plakar
        measured = Phase(phase, shown)
        watch = _Watch()
        timed = run_timed(
            [str(plakar.binary), "at", str(plakar.store), *args],
            self.logs / f"{label}-{phase}.log",
            env=plakar.env,
            cwd=plakar.base,
            timeout=self.options.timeout,
            interval=SAMPLE_SECONDS,
            on_sample=watch.sample,
        )
        watch.into(measured)
        measured.left_running = list(timed.left_running)
        measured.error = failure(timed, self.options.timeout, plakar) or judge()
        if measured.error is None:
            measured.seconds = timed.seconds
        outcome = f"{timed.seconds:.1f} s" if measured.error is None else measured.error
        peaks = ", ".join(f"{k} {p.peak_kib / 1024:.1f}" for k, p in measured.kinds.items())
        plugin = measured.kinds.get(PLUGIN)
        median = f" (plugin median {plugin.median_sum_kib / 1024:.1f})" if plugin else ""
        print(f"bench: {label} {phase}: {outcome}; peak RSS MiB: {peaks}{median}", flush=True)
        return measured

    def backup_and_restore(
        self, size: SizeResult, database: str, counts: dict[str, int], objects: list[str]
    ) -> None:
        """Back ``database`` up into the current store, then restore it into a freshly
        created database of the same name on the target, and check the copy."""
        assert self.source is not None and self.target is not None and self.plakar is not None
        source, target, plakar = self.source, self.target, self.plakar
        size.backup = self.measure(
            "backup",
            ["backup", "-o", f"password={source.password}", source.uri(database)],
            f"plakar at STORE backup -o password=... {source.uri(database)}",
            size.label,
            lambda: None,
        )
        size.store_bytes = workload.tree_bytes(Path(plakar.store))
        if size.backup.error is not None:
            return
        snapshots = plakar.snapshots()
        if len(snapshots) != 1:
            size.backup.error = f"expected one snapshot in the store, found {len(snapshots)}"
            return
        target.recreate_database(database, *workload.CHARSET)
        size.restore = self.measure(
            "restore",
            [
                "restore",
                "-to",
                target.uri(database),
                "-o",
                f"password={target.password}",
                snapshots[0],
            ],
            f"plakar at STORE restore -to {target.uri(database)} -o password=... SNAPSHOT",
            size.label,
            lambda: workload.copy_differs(target, database, counts, objects),
        )
        target.drop_database(database)

    def new_store(self, label: str) -> None:
        """Point plakar at a new, empty store for the next database."""
        assert self.plakar is not None
        self.plakar.store = self.workdir / f"store-{label.replace(' ', '')}"
        self.plakar.create_store(encrypted=True)

    def baseline(self) -> SizeResult:
        assert self.source is not None
        size = SizeResult("tiny", 0.0, rows=2)
        workload.make_probe(self.source)
        self.backup_and_restore(size, workload.PROBE_DB, {"t": 2}, [])
        self.source.drop_database(workload.PROBE_DB)
        return size

    def startup(self) -> list[Phase]:
        """Start each plugin executable, as plakar installed it, alone: with nobody on the
        other end of its standard input it loads its bundle, starts its gRPC server and
        waits; after :data:`IDLE_SECONDS` its standard input is closed and it stops.

        Its peak is read from ``/proc`` while it waits (``VmHWM``): ``wait4``'s
        ``ru_maxrss`` cannot tell, since it also counts the memory of this benchmark's
        process, which the child shared until it executed the plugin."""
        assert self.plakar is not None
        ptar = self.options.ptar or find_ptar()
        directory = self.plakar.plugin_dir(ptar.name)
        self.logs.mkdir(parents=True, exist_ok=True)
        found: list[Phase] = []
        for name in sorted(_PLUGINS):
            executable = directory / name
            if not executable.is_file():
                self.result.notes.append(
                    f"Start-up alone not measured: {executable} not found (plakar's plugin"
                    " cache has another layout)."
                )
                return found
            measured = Phase("start-up", f"{name}, alone and idle")
            watch = _Watch()
            log = self.logs / f"startup-{name}.log"
            with log.open("wb") as err:
                process = subprocess.Popen(
                    [str(executable)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    cwd=self.workdir,
                )
                started = time.monotonic()
                while time.monotonic() - started < IDLE_SECONDS and process.poll() is None:
                    watch.sample([process.pid])
                    time.sleep(SAMPLE_SECONDS)
                watch.sample([process.pid])
                assert process.stdin is not None
                process.stdin.close()
                try:
                    code = process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    code = process.wait()
            watch.into(measured)
            plugin = measured.kinds.get(PLUGIN)
            if code != 0 or plugin is None:
                measured.error = f"exit status {code}: {tail(log, 3)}"
                print(f"bench: {name} alone: FAILED: {measured.error}", flush=True)
            else:
                measured.seconds = IDLE_SECONDS
                print(
                    f"bench: {name} alone and idle: peak {plugin.peak_kib / 1024:.1f} MiB",
                    flush=True,
                )
            found.append(measured)
        return found

    def one_size(self, size_mb: float) -> SizeResult:
        assert self.source is not None
        source = self.source
        size = SizeResult(f"{size_mb:g} MB", size_mb)
        self.result.sizes.append(size)
        source.drop_database(datagen.DATABASE)
        stats = workload.generate(source, size_mb, self.options.seed)
        print(
            f"bench: {size.label}: generated in {stats.seconds:.1f} s"
            f" ({workload.generation_detail(stats)})",
            flush=True,
        )
        found = workload.inventory(source, stats)
        size.sql_bytes, size.rows = stats.sql_bytes, stats.rows
        size.generate_seconds = round(stats.seconds, 1)
        size.data_bytes, size.index_bytes = found.data_bytes, found.index_bytes
        self.new_store(size.label)
        self.backup_and_restore(size, datagen.DATABASE, found.counts, found.objects)
        return size


def run(options: MemoryOptions, progress: Callable[[str], None] = print) -> MemoryResult:
    """Run the memory benchmark; never raises for a figure, only reports."""
    result = MemoryResult(
        options={
            "sizes_mb": list(options.sizes_mb),
            "seed": options.seed,
            "sample_seconds": SAMPLE_SECONDS,
            "target_server_args": list(options.target_args),
            "source_server_args": list(SOURCE_ARGS),
            "generator_version": datagen.GENERATOR_VERSION,
            "jobs": os.cpu_count(),
        },
        environment=describe_environment({}),
    )
    space = Workspace("memory", result, options.workdir, keep=options.keep, progress=progress)
    measure = _Measure(options, space, result)
    with space:
        measure.start()
        result.baseline = measure.baseline()
        result.startup = measure.startup()
        result.environment = describe_environment(
            workload.versions(measure.target, measure.package, myloader=False)
        )
        for size_mb in sorted(set(options.sizes_mb)):
            measure.one_size(size_mb)
    if not result.environment.versions:
        result.environment = describe_environment(
            workload.versions(measure.target, measure.package, myloader=False)
        )
    return result
