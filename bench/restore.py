"""Restore speed: the integration against the stock client fed the same dump, and myloader.

Set-up (once, not timed for the comparison):

1. two private servers: a *source*, filled by :mod:`bench.datagen` with
   ``benchdb``, and a *target* that every contender restores into;
2. a local encrypted plakar store with the package from ``dist/`` installed
   (the tests' :func:`~plakar_mysql_harness.plakar.make_plakar`), and one backup of
   ``benchdb`` into it, exactly as the tests take one;
3. the dump the single-stream contender loads: ``mariadb-dump`` run with the
   arguments the integration recorded in the snapshot's ``/manifest.json``
   (a built-in copy of them if the manifest has none), written to a file; when
   the snapshot holds the whole dump as ``/dump.sql`` the two are compared;
4. a mydumper dump (two threads), when mydumper is installed;
5. a probe: a tiny database backed up and restored with ``jobs=1``, which
   tells whether the integration accepts the ``jobs`` option, and warms up
   plakar's plugin cache so that no timed run pays for unpacking the plugin.

Then one untimed single-stream restore warms the target up (the first load
into a new server grows its system and undo tablespaces), and, for each round,
the contenders run one after the other (A, B, C, D, A, B, C, D, ...), each
into a freshly dropped and created ``benchdb`` database on the target server
(the source's name, so that the dump loads unedited), once InnoDB has written
out what the previous run left dirty and the machine is nearly idle (it may
be shared: up to a minute's wait, then the run starts anyway):

- ``single``: ``mariadb --database benchdb < dump.sql``;
- ``plakar``: ``plakar at STORE restore -to mysql://root@127.0.0.1:PORT/benchdb
  -o password=... SNAPSHOT`` with the ``jobs`` option left at its default (the
  number of CPUs); the whole snapshot is restored, whatever its layout;
- ``plakar-jobs1``: the same with ``-o jobs=1`` (only if the option exists);
- ``myloader``: ``myloader -t 2 -B benchdb`` on the mydumper dump;
- ``official``: Plakar's official ``mysql`` integration restoring its own
  backup of ``benchdb`` (taken once at set-up, in a plakar home and store of
  its own) with ``plakar at STORE restore -to mysql+mariadb://...``, when its
  package is given (:mod:`bench.official`; skipped otherwise, and said so).

Each run is checked afterwards (exact row count of every table, the view and
the function are there); a failed or wrong run is reported, not timed.  The
times reported are medians over the rounds; ratios are computed within each
round against that round's ``single`` run, and their median is reported (and,
separately, the median over the rounds where neither run shared the machine
with other work).  Each run also records the CPU time of its process tree, of
the server and of everything else, the redo log and bytes the server wrote,
and the peak memory of its processes.  A timing never fails the benchmark.

With ``flavour="mysql"`` (``python -m bench restore --flavour mysql``) both servers
are MySQL 9.7 (``make mysql``'s tree) with the binary log and GTIDs on, the single
stream is MySQL's ``mysql`` client fed ``mysqldump``'s dump, this integration gets
``-o bin_dir=``, and the official one restores through its MySQL connector
(``mysql://`` with ``-o mysql_bin_dir=``).  A MySQL dump sets
``@@GLOBAL.GTID_PURGED`` to the source's GTIDs, which a target that already
executed them refuses: before each run (untimed, with the database's drop and
create) the target's GTID history and binary logs are emptied, as on a fresh
server.  myloader is left out (Debian 12's mydumper cannot dump MySQL 9).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import datagen, official, workload
from bench.environment import Environment, describe_environment
from bench.rounds import Contender, Round, failure, median, play, round_ratios, run_times
from bench.servers import BenchServer, find_program, source_args, target_args
from bench.workspace import Workspace
from plakar_mysql_harness.plakar import Plakar, find_ptar
from plakar_mysql_harness.timing import (
    busy_cpu_seconds,
    load_average,
    run_timed,
    tail,
    wait_for_quiet,
)

__all__ = ["Contender", "RestoreOptions", "RestoreResult", "Run", "run"]

TARGET_DB = datagen.DATABASE
"""The target server is another server, so the copy keeps the source's name: the dump the
integration makes (``--databases``: it creates and selects its database) then loads
into the stock client as it is, unedited."""
ALONE_SHARE = 0.1
"""A run had the machine to itself if other work used at most this share of one CPU."""
GOAL_RATIO = 0.55
"""Goal: the integration with its default ``jobs`` in at most this share of the single stream."""

#: What the integration's dump_arguments() gives for one MariaDB database without a
#: binary log (src/plakar_mysql/logical/dump.py), used when the manifest does not say.
FALLBACK_DUMP_ARGUMENTS = (
    "--default-character-set=utf8mb4",
    "--max-allowed-packet=1073741824",
    "--skip-dump-date",
    "--comments",
    "--quick",
    "--tz-utc",
    "--skip-add-locks",
    "--single-transaction",
    "--routines",
    "--events",
    "--no-tablespaces",
    "--dump-history",
)
_HEADER_PREFIX = b"-- plakar-mysql "


@dataclass(frozen=True)
class RestoreOptions:
    size_mb: float = 300.0
    runs: int = 3
    seed: str = "plakar-mysql-bench"
    workdir: Path | None = None
    keep: bool = False
    myloader: bool = True
    myloader_threads: int = 2
    timeout: float = 3600.0
    target_args: tuple[str, ...] | None = None
    """The target server's arguments; None: :func:`bench.servers.target_args`."""
    ptar: Path | None = None
    """The package to measure; None: the one in dist/."""
    official_ptar: Path | None = None
    """The official integration's package; None: that contender is skipped."""
    quiet_timeout: float = 60.0
    """Before each run, wait up to this long for the machine to be nearly idle."""
    warmup: bool = True
    """One untimed single-stream restore first: the first load into a new server also
    grows its system and undo tablespaces, which no later run pays for."""
    flavour: str = "mariadb"
    """The servers' flavour (:data:`bench.servers.FLAVOURS`)."""

    @property
    def target_server_args(self) -> tuple[str, ...]:
        """The target's arguments: as given, else the flavour's default."""
        return target_args(self.flavour) if self.target_args is None else self.target_args


@dataclass
class Run(Round):
    client_cpu_seconds: float = 0.0
    server_cpu_seconds: float = 0.0
    max_rss_kib: int = 0
    """Largest resident set of one process of the command's tree."""
    tree_rss_kib: int = 0
    """Largest summed resident set of the command's tree."""
    left_running: list[str] = field(default_factory=list)
    """Processes of the tree still running once the command had exited."""
    settle_seconds: float = 0.0
    quiet_wait_seconds: float = 0.0
    quiet: bool = True
    """Whether the machine was nearly idle when the run started."""

    @property
    def alone(self) -> bool:
        """Whether other work used less than a tenth of one CPU on average during the run."""
        return self.seconds is not None and self.other_cpu_seconds <= ALONE_SHARE * self.seconds

    other_cpu_seconds: float = 0.0
    """CPU time the rest of the machine used meanwhile (other users of a shared machine)."""
    load_before: float = 0.0
    """One-minute load average when the run started."""
    redo_bytes: int = 0
    """Redo log the target wrote during the run."""
    server_written_bytes: int = 0
    """What the target's mariadbd wrote to storage during the run."""
    binlog_bytes: int | None = None
    """On MySQL, the binary logs the target held after the run (emptied before it);
    None when the target writes none."""


def _both_alone(mine: Run, theirs: Run) -> bool:
    return mine.alone and theirs.alone


@dataclass
class Step:
    """A one-off step of the set-up, timed for information."""

    name: str
    seconds: float
    detail: str = ""


@dataclass
class RestoreResult:
    options: dict[str, object]
    environment: Environment
    contenders: list[Contender] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tables: list[dict[str, object]] = field(default_factory=list)
    dump_bytes: int = 0
    dump_arguments_from: str = ""
    dump_arguments: list[str] = field(default_factory=list)
    jobs_option: str = ""
    store_bytes: int = 0
    data_bytes: int = 0
    index_bytes: int = 0
    target_settings: list[str] = field(default_factory=list)
    failure: str | None = None

    def times(self, key: str) -> list[float]:
        return run_times(self.runs, key)

    def ratios(self, key: str, base: str = "single", *, alone: bool = False) -> list[float]:
        """``key``'s time over ``base``'s, round by round (with ``alone``, only rounds
        where neither run shared the machine with other work)."""
        return round_ratios(self.runs, key, base, _both_alone if alone else None)

    def median_time(self, key: str) -> float | None:
        return median(self.times(key))

    def median_ratio(self, key: str, base: str = "single", *, alone: bool = False) -> float | None:
        return median(self.ratios(key, base, alone=alone))


class _SetUp:
    """The one-off steps before the rounds: servers, data, backups, dumps, probe."""

    def __init__(self, options: RestoreOptions, space: Workspace, result: RestoreResult) -> None:
        self.options = options
        self.space = space
        self.workdir = space.path
        self.result = result
        self.target: BenchServer | None = None
        self.plakar: Plakar | None = None
        self.snapshot = ""
        self.official: Plakar | None = None
        self.official_snapshot = ""
        self.dump_file = space.path / "dump.sql"
        self.mydumper_dir = space.path / "mydumper"
        self.source_counts: dict[str, int] = {}
        self.source_objects: list[str] = []
        self.charset = workload.CHARSET
        self.jobs_available = False
        self.package = ""

    def step(self, name: str, seconds: float, detail: str = "") -> None:
        self.result.steps.append(Step(name, seconds, detail))
        print(f"bench: {name}: {seconds:.1f} s{f' ({detail})' if detail else ''}", flush=True)

    def start_servers(self) -> tuple[BenchServer, BenchServer]:
        started = time.perf_counter()
        source = self.space.server("source", source_args(self.options.flavour))
        self.target = self.space.server("target", self.options.target_server_args)
        self.step("start two servers", time.perf_counter() - started)
        return source, self.target

    def fill_source(self, source: BenchServer) -> None:
        stats = workload.generate(source, self.options.size_mb, self.options.seed, self.charset)
        self.step("generate and load the data", stats.seconds, workload.generation_detail(stats))
        found = workload.inventory(source, stats)
        self.source_counts = found.counts
        self.source_objects = found.objects
        self.result.data_bytes, self.result.index_bytes = found.data_bytes, found.index_bytes
        self.result.tables.extend(found.tables)

    def backup(self, source: BenchServer) -> Plakar:
        started = time.perf_counter()
        ptar = self.options.ptar or find_ptar()
        # Read before installing it: `make build` elsewhere may replace dist/ meanwhile.
        self.package = workload.package_description(ptar)
        plakar = self.plakar = self.space.plakar("plakar", ptar)
        self.step("plakar store and package", time.perf_counter() - started, str(ptar))
        started = time.perf_counter()
        self.snapshot = plakar.backup(
            source.uri(datagen.DATABASE),
            f"password={source.password}",
            *source.plugin_options(),
            timeout=self.options.timeout,
        )
        self.result.store_bytes = workload.tree_bytes(Path(plakar.store))
        self.step(
            "plakar backup",
            time.perf_counter() - started,
            f"snapshot {self.snapshot[:8]}, store {self.result.store_bytes / 1e6:.0f} MB",
        )
        return plakar

    def backup_official(self, source: BenchServer) -> None:
        """The official integration's backup of ``benchdb``, into a home and store of its own."""
        if self.options.official_ptar is None:
            return
        started = time.perf_counter()
        self.official = self.space.plakar("plakar-official", self.options.official_ptar)
        self.official_snapshot = self.official.backup(
            official.uri(source.uri(datagen.DATABASE), source.flavour),
            f"password={source.password}",
            *source.official_options(),
            timeout=self.options.timeout,
        )
        self.step(
            "official integration: plakar backup",
            time.perf_counter() - started,
            f"snapshot {self.official_snapshot[:8]}",
        )

    def dump_arguments(self, plakar: Plakar) -> list[str]:
        """The arguments the integration ran its dump tool with, from the manifest."""
        try:
            arguments = workload.dump_arguments(plakar, self.snapshot)
            self.result.dump_arguments_from = "the snapshot's /manifest.json"
            return arguments
        except Exception as exc:  # the manifest's layout is not ours to rely on
            self.result.dump_arguments_from = (
                f"a built-in copy of dump_arguments() (manifest: {type(exc).__name__}: {exc})"
            )
            return [*FALLBACK_DUMP_ARGUMENTS, "--databases", "--", datagen.DATABASE]

    def make_dump(self, source: BenchServer, plakar: Plakar) -> None:
        arguments = self.dump_arguments(plakar)
        self.result.dump_arguments = arguments
        timed = run_timed(
            source.dump_command(arguments),
            self.space.logs / f"{source.dump_name}.log",
            stdout=self.dump_file,
            timeout=self.options.timeout,
        )
        if timed.returncode != 0:
            raise RuntimeError(f"{source.dump_name} failed: {tail(timed.log)}")
        self.result.dump_bytes = self.dump_file.stat().st_size
        self.step(
            f"{source.dump_name} to a file",
            timed.seconds,
            f"{self.result.dump_bytes / 1e6:.0f} MB;"
            f" arguments from {self.result.dump_arguments_from}",
        )
        self.compare_with_snapshot(plakar)

    def compare_with_snapshot(self, plakar: Plakar) -> None:
        """If the snapshot holds the whole dump as /dump.sql, check it is the same dump."""
        try:
            names = {entry.name for entry in plakar.ls(self.snapshot)}
        except AssertionError as exc:
            self.result.notes.append(f"Could not list the snapshot: {exc}")
            return
        if "dump.sql" not in names:
            self.result.notes.append(
                "The snapshot has no /dump.sql (files: "
                + ", ".join(sorted(names))
                + "): the single-stream dump was made with the integration's arguments"
                " and not compared byte for byte."
            )
            return
        mine = hashlib.sha256()
        with self.dump_file.open("rb") as fh:
            while block := fh.read(1 << 20):
                mine.update(block)
        theirs = hashlib.sha256()
        process = subprocess.Popen(
            [str(plakar.binary), "at", str(plakar.store), "cat", f"{self.snapshot}:/dump.sql"],
            env=plakar.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert process.stdout is not None
        first = process.stdout.readline()
        if not first.startswith(_HEADER_PREFIX):
            theirs.update(first)
        while block := process.stdout.read(1 << 20):
            theirs.update(block)
        process.wait()
        same = process.returncode == 0 and mine.digest() == theirs.digest()
        self.result.notes.append(
            "The single-stream dump is byte for byte the snapshot's /dump.sql (less its"
            " one-line header comment)."
            if same
            else "Warning: the single-stream dump differs from the snapshot's /dump.sql."
        )

    def make_mydumper(self, source: BenchServer) -> bool:
        mydumper, myloader = find_program("mydumper"), find_program("myloader")
        if not self.options.myloader:
            self.result.notes.append("myloader left out (--no-myloader).")
            return False
        if source.flavour == "mysql":
            self.result.notes.append(
                "myloader left out on MySQL: Debian 12's mydumper runs SHOW MASTER STATUS,"
                " which MySQL 8.4 removed."
            )
            return False
        if mydumper is None or myloader is None:
            self.result.notes.append(
                "myloader not measured: mydumper/myloader are not installed"
                " (apt-get install mydumper)."
            )
            return False
        threads = str(self.options.myloader_threads)
        timed = run_timed(
            [
                mydumper,
                f"--defaults-file={source.option_file}",
                *("--host", source.host, "--port", str(source.port), "--user", "root"),
                *("--database", datagen.DATABASE, "--outputdir", str(self.mydumper_dir)),
                *("--threads", threads, "--routines", "--triggers", "--events", "--verbose", "2"),
            ],
            self.space.logs / "mydumper.log",
            timeout=self.options.timeout,
        )
        if timed.returncode != 0:
            self.result.notes.append(f"myloader not measured: mydumper failed: {tail(timed.log)}")
            return False
        size = workload.tree_bytes(self.mydumper_dir)
        self.step("mydumper", timed.seconds, f"{threads} threads, {size / 1e6:.0f} MB")
        return True

    def probe_jobs(self, source: BenchServer, target: BenchServer, plakar: Plakar) -> None:
        """Does the restore accept ``jobs``?  A tiny snapshot answers (and warms plakar up)."""
        workload.make_probe(source)
        probe = plakar.backup(
            source.uri(workload.PROBE_DB), f"password={source.password}", *source.plugin_options()
        )
        password = f"password={target.password}"
        tools = [arg for option in target.plugin_options() for arg in ("-o", option)]
        target.drop_database(workload.PROBE_DB)
        target.forget_gtids()
        warm = plakar.at(
            "restore",
            "-to",
            target.uri(workload.PROBE_DB),
            "-o",
            password,
            *tools,
            probe,
            check=False,
        )
        target.drop_database(workload.PROBE_DB)
        target.forget_gtids()
        target.drop_database(workload.PROBE_DB)
        proc = plakar.at(
            "restore",
            "-to",
            target.uri(workload.PROBE_DB),
            "-o",
            password,
            "-o",
            "jobs=1",
            *tools,
            probe,
            check=False,
        )
        output = proc.stdout + proc.stderr
        target.drop_database(workload.PROBE_DB)
        source.drop_database(workload.PROBE_DB)
        if warm.returncode != 0:
            self.result.notes.append(
                "Warning: restoring a tiny probe snapshot failed: "
                + workload.last_lines(warm.stdout + warm.stderr)
            )
        if proc.returncode == 0:
            self.jobs_available = True
            self.result.jobs_option = "available (jobs=1 accepted)"
        elif "jobs" in output and "unknown option" in output:
            self.result.jobs_option = "jobs option not available"
            self.result.notes.append(
                "The restore rejects the jobs option (`unknown option jobs`): the integration"
                " was measured with its default behaviour only, and `plakar-jobs1` was not run."
            )
        else:
            self.result.jobs_option = "unknown: the probe restore with jobs=1 failed"
            self.result.notes.append(
                "The probe restore with jobs=1 failed for another reason: "
                + workload.last_lines(output)
            )
        print(f"bench: jobs option: {self.result.jobs_option}", flush=True)


class _Rounds:
    """The timed part: the contenders, their commands, each run and its check."""

    def __init__(self, setup: _SetUp, target: BenchServer) -> None:
        self.setup = setup
        self.options = setup.options
        self.target = target

    def contenders(self, with_myloader: bool) -> list[Contender]:
        uri = self.target.uri(TARGET_DB)
        client = self.target.client_name
        tools = "".join(f"-o {o} " for o in self.target.plugin_options())
        official_tools = "".join(f"-o {o} " for o in self.target.official_options())
        found = [
            Contender(
                "single",
                f"{client} < dump.sql (single stream)",
                f"{client} --database {TARGET_DB} < dump.sql",
            ),
            Contender(
                "plakar",
                f"plakar restore, jobs default (= {os.cpu_count()} CPUs)"
                if self.setup.jobs_available
                else "plakar restore (jobs option not available)",
                f"plakar at STORE restore -to {uri} -o password=... {tools}SNAPSHOT",
            ),
        ]
        if self.setup.jobs_available:
            found.append(
                Contender(
                    "plakar-jobs1",
                    "plakar restore, jobs=1",
                    f"plakar at STORE restore -to {uri} -o password=... -o jobs=1 {tools}SNAPSHOT",
                )
            )
        if self.setup.official is not None:
            found.append(
                Contender(
                    official.KEY,
                    "Plakar's official mysql integration: plakar restore",
                    f"plakar at STORE restore -to {official.uri(uri, self.target.flavour)}"
                    f" -o password=... {official_tools}SNAPSHOT",
                )
            )
        if with_myloader:
            threads = self.options.myloader_threads
            found.append(
                Contender(
                    "myloader",
                    f"myloader -t {threads} (reference)",
                    f"myloader --threads {threads} --database {TARGET_DB} --directory DUMP",
                )
            )
        return found

    def home(self, key: str) -> Plakar | None:
        """The plakar home a contender runs in; None for the stock tools."""
        if key == official.KEY:
            return self.setup.official
        return self.setup.plakar if key.startswith("plakar") else None

    def command(self, key: str) -> tuple[list[str], Path | None]:
        """The command line of a contender, and the file on its standard input."""
        setup, target = self.setup, self.target
        if key == "single":
            return target.client(TARGET_DB), setup.dump_file
        if key == "myloader":
            return [
                find_program("myloader") or "myloader",
                f"--defaults-file={target.option_file}",
                *("--host", target.host, "--port", str(target.port), "--user", "root"),
                *("--database", TARGET_DB, "--directory", str(setup.mydumper_dir)),
                *("--threads", str(self.options.myloader_threads), "--verbose", "2"),
            ], None
        home = self.home(key)
        if home is None:
            raise ValueError(key)
        uri = target.uri(TARGET_DB)
        snapshot = setup.official_snapshot if key == official.KEY else setup.snapshot
        opts = ["-o", f"password={target.password}"]
        if key == "plakar-jobs1":
            opts += ["-o", "jobs=1"]
        tools = target.official_options() if key == official.KEY else target.plugin_options()
        opts += [arg for option in tools for arg in ("-o", option)]
        to = official.uri(uri, target.flavour) if key == official.KEY else uri
        return [
            str(home.binary),
            "at",
            str(home.store),
            "restore",
            "-to",
            to,
            *opts,
            snapshot,
        ], None

    def run_one(self, number: int, contender: Contender) -> Run:
        target = self.target
        run = Run(number, contender.key)
        target.recreate_database(TARGET_DB, *self.setup.charset)
        target.forget_gtids()
        run.settle_seconds = target.settle().seconds
        if self.options.quiet_timeout > 0:
            run.quiet_wait_seconds, run.quiet = wait_for_quiet(self.options.quiet_timeout)
        cmd, stdin = self.command(contender.key)
        home = self.home(contender.key)
        run.load_before = load_average()
        lsn, written = target.redo_lsn(), target.written_bytes()
        server_cpu, busy = target.cpu_seconds(), busy_cpu_seconds()
        timed = run_timed(
            cmd,
            self.setup.space.logs / f"round{number}-{contender.key}.log",
            stdin=stdin,
            env=home.env if home is not None else None,
            cwd=self.setup.workdir,
            timeout=self.options.timeout,
        )
        run.server_cpu_seconds = target.cpu_seconds() - server_cpu
        run.client_cpu_seconds = timed.cpu_seconds
        run.other_cpu_seconds = max(
            0.0, busy_cpu_seconds() - busy - run.server_cpu_seconds - run.client_cpu_seconds
        )
        run.redo_bytes = target.redo_lsn() - lsn
        run.server_written_bytes = target.written_bytes() - written
        if target.flavour == "mysql":
            run.binlog_bytes = target.binlog_bytes()
        run.max_rss_kib = timed.max_rss_kib
        run.tree_rss_kib = timed.tree_rss_kib
        run.left_running = list(timed.left_running)
        run.error = failure(timed, self.options.timeout, home) or workload.copy_differs(
            target, TARGET_DB, self.setup.source_counts, self.setup.source_objects
        )
        if run.error is None:
            run.seconds = timed.seconds
        shown = f"{timed.seconds:.1f} s" if run.error is None else f"FAILED: {run.error}"
        which = f"round {number}" if number else "warm-up"
        print(
            f"bench: {which} {contender.key}: {shown} (server CPU {run.server_cpu_seconds:.1f} s,"
            f" others' CPU {run.other_cpu_seconds:.1f} s, redo {run.redo_bytes / 1e6:.0f} MB,"
            f" written {run.server_written_bytes / 1e6:.0f} MB"
            + (
                f", binary log {run.binlog_bytes / 1e6:.0f} MB"
                if run.binlog_bytes is not None
                else ""
            )
            + ")",
            flush=True,
        )
        return run

    def warm_up(self, contenders: list[Contender]) -> None:
        warm = self.run_one(0, contenders[0])
        self.setup.step(
            "warm-up: one untimed single-stream restore",
            warm.seconds or 0.0,
            warm.error or "",
        )

    def rounds(self, contenders: list[Contender]) -> list[Run]:
        runs = play(
            self.options.runs,
            contenders,
            self.run_one,
            lambda number, contender, exc: Run(number, contender.key, error=str(exc)),
        )
        self.target.drop_database(TARGET_DB)
        return runs


def run(options: RestoreOptions, progress: Callable[[str], None] = print) -> RestoreResult:
    """Run the restore benchmark; never raises for a timing, only reports."""
    result = RestoreResult(
        options={
            "size_mb": options.size_mb,
            "runs": options.runs,
            "seed": options.seed,
            "myloader_threads": options.myloader_threads,
            "flavour": options.flavour,
            "target_server_args": list(options.target_server_args),
            "source_server_args": list(source_args(options.flavour)),
            "generator_version": datagen.GENERATOR_VERSION,
            "warmup": options.warmup,
            "quiet_timeout": options.quiet_timeout,
            "official_ptar": str(options.official_ptar) if options.official_ptar else None,
        },
        environment=describe_environment({}),
    )
    space = Workspace(
        "restore",
        result,
        options.workdir,
        keep=options.keep,
        progress=progress,
        flavour=options.flavour,
    )
    setup = _SetUp(options, space, result)
    if options.official_ptar is None:
        result.notes.append(official.skipped_note())
        progress(f"bench: {official.skipped_note()}")
    with space:
        source, target = setup.start_servers()
        result.target_settings = [
            f"{name}={target.variable(name)}"
            for name in (
                "innodb_buffer_pool_size",
                "innodb_log_file_size",
                "innodb_flush_log_at_trx_commit",
                "innodb_doublewrite",
                "max_allowed_packet",
            )
        ]
        setup.fill_source(source)
        plakar = setup.backup(source)
        setup.make_dump(source, plakar)
        setup.backup_official(source)
        with_myloader = setup.make_mydumper(source)
        setup.probe_jobs(source, target, plakar)
        result.environment = describe_environment(
            workload.versions(target, setup.package, flavour=options.flavour)
        )
        timed = _Rounds(setup, target)
        result.contenders = timed.contenders(with_myloader)
        if options.warmup:
            timed.warm_up(result.contenders)
        result.runs = timed.rounds(result.contenders)
    if not result.environment.versions:
        result.environment = describe_environment(
            workload.versions(setup.target, setup.package, flavour=options.flavour)
        )
    return result
