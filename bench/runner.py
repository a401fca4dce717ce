"""The one bench runner: ``python -m bench [SCENARIO...] [--sizes-mb LIST] [--runs N] ...``.

The scenarios are data: :data:`SCENARIOS` is a table, each row a name, what
it measures, whether ``all`` includes it, and the function that runs it from
the command line's :class:`Settings` and writes its report.  The runner parses
the command line once, runs the scenarios named (all of those ``all`` includes
when none is), then :mod:`bench.summary` gathers the latest results into
``bench/results/summary.md`` and ``summary.png``.

With no scenario named: ``backup`` (with its deduplication scenario),
``restore`` and ``memory``, each at every size of ``--sizes-mb`` (default
about 100 MB and 1 GB of SQL), and ``binlog`` (the binary-log replay against
``mariadb-binlog | mariadb``, ``--binlog-transactions`` transactions).
``physical`` and ``drill`` run only when named.  A quick check of the whole chain:
``python -m bench --sizes-mb 10 --runs 1 --quiet-timeout 0
--binlog-transactions 1000``.

``--flavour mysql`` runs the scenarios that support it (``backup`` and
``restore``) on MySQL 9.7 (``make mysql``'s tree) instead of MariaDB; their
reports are then ``mysql-backup`` and ``mysql-restore-<N>mb``.  Results go
to ``bench/results/`` and are printed.  The exit status is 0 whatever the
figures; it is 1 only when a benchmark could not run at all (a server would
not start, the package is missing...).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import RESULTS, binlog_replay, drill, official, physical, summary
from bench.backup import BackupOptions
from bench.backup import run as run_backup
from bench.memory import MemoryOptions
from bench.memory import run as run_memory
from bench.report import write_backup, write_memory, write_restore
from bench.restore import RestoreOptions
from bench.restore import run as run_restore
from bench.servers import FLAVOURS, TARGET_ARGS, target_args

__all__ = ["SCENARIOS", "Scenario", "Settings", "main"]


@dataclass(frozen=True)
class Settings:
    """The command line, once parsed: what every scenario reads its options from."""

    sizes_mb: tuple[float, ...]
    runs: int
    seed: str
    workdir: Path | None
    keep: bool
    quiet_timeout: float
    timeout: float
    ptar: Path | None
    official_ptar: Path | None
    dedup: bool
    warmup: bool
    myloader: bool
    myloader_threads: int
    target_args: tuple[str, ...] | None
    """``--target-arg``s; None: the flavour's default."""
    binlog_transactions: int
    results: Path
    command: str
    """The command line, for the reports."""
    flavour: str = "mariadb"
    """The servers' flavour (``--flavour``)."""

    def report_name(self, name: str) -> str:
        """A report's file name: ``name``, prefixed ``mysql-`` on MySQL."""
        return name if self.flavour == "mariadb" else f"{self.flavour}-{name}"

    def below(self, name: str) -> Path | None:
        """The work directory of one scenario: ``--workdir``'s subdirectory ``name``."""
        return self.workdir / name if self.workdir else None


@dataclass(frozen=True)
class Scenario:
    """One benchmark: its name on the command line and how it is run."""

    name: str
    about: str
    run: Callable[[Settings], int]
    """Measures, writes and prints the report; returns the exit status it calls for."""
    in_all: bool = True
    """Whether ``all`` (no scenario named) includes it."""
    flavours: tuple[str, ...] = ("mariadb",)
    """The server flavours (``--flavour``) it runs on."""


def _backup(settings: Settings) -> int:
    result = run_backup(
        BackupOptions(
            sizes_mb=settings.sizes_mb,
            runs=settings.runs,
            seed=settings.seed,
            workdir=settings.below("backup"),
            keep=settings.keep,
            quiet_timeout=settings.quiet_timeout,
            timeout=settings.timeout,
            ptar=settings.ptar,
            official_ptar=settings.official_ptar,
            dedup=settings.dedup,
            flavour=settings.flavour,
        )
    )
    path = write_backup(result, settings.command, settings.results, settings.report_name("backup"))
    return _show(path, result.failure)


def _restore(settings: Settings) -> int:
    status = 0
    for size_mb in settings.sizes_mb:
        result = run_restore(
            RestoreOptions(
                size_mb=size_mb,
                runs=settings.runs,
                seed=settings.seed,
                workdir=settings.below(f"restore-{size_mb:g}mb"),
                keep=settings.keep,
                myloader=settings.myloader,
                warmup=settings.warmup,
                quiet_timeout=settings.quiet_timeout,
                ptar=settings.ptar,
                official_ptar=settings.official_ptar,
                myloader_threads=settings.myloader_threads,
                timeout=settings.timeout,
                target_args=settings.target_args,
                flavour=settings.flavour,
            )
        )
        name = settings.report_name(f"restore-{size_mb:g}mb")
        path = write_restore(result, settings.command, settings.results, name)
        status |= _show(path, result.failure)
    return status


def _memory(settings: Settings) -> int:
    result = run_memory(
        MemoryOptions(
            sizes_mb=settings.sizes_mb,
            seed=settings.seed,
            workdir=settings.below("memory"),
            keep=settings.keep,
            timeout=settings.timeout,
            target_args=settings.target_args or TARGET_ARGS,
            ptar=settings.ptar,
        )
    )
    return _show(write_memory(result, settings.command, settings.results), result.failure)


def _binlog(settings: Settings) -> int:
    """The binlog replay benchmark; its exit status (1 if it could not run)."""
    try:
        result = binlog_replay.run(
            binlog_replay.ReplayOptions(
                transactions=settings.binlog_transactions,
                runs=settings.runs,
                ptar=settings.ptar,
                quiet_timeout=settings.quiet_timeout,
                timeout=settings.timeout,
            )
        )
    except Exception as exc:  # a server that would not start, a failed round...
        print(f"bench: binlog replay could not run: {exc}", file=sys.stderr)
        return 1
    return _show(binlog_replay.write(result, settings.results), None)


def _physical(settings: Settings) -> int:
    """The physical benchmark at the first of ``--sizes-mb``; its exit status."""
    try:
        result = physical.measure(settings.sizes_mb[0], settings.runs, settings.workdir)
    except Exception as exc:
        print(f"bench: physical could not run: {exc}", file=sys.stderr)
        return 1
    return _show(physical.write(result, settings.results), None)


def _drill(settings: Settings) -> int:
    """The restore drill against a plain restore, at the first of ``--sizes-mb``."""
    try:
        result = drill.measure(settings.sizes_mb[0], settings.runs, settings.workdir)
    except Exception as exc:
        print(f"bench: drill could not run: {exc}", file=sys.stderr)
        return 1
    return _show(drill.write(result, settings.results), None)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "backup",
        "backup speed against the dump tool and others, deduplication",
        _backup,
        flavours=FLAVOURS,
    ),
    Scenario(
        "restore",
        "restore speed against the stock client and myloader",
        _restore,
        flavours=FLAVOURS,
    ),
    Scenario("memory", "peak memory of the plugin, plakar and the tools", _memory),
    Scenario("binlog", "binlog replay against mariadb-binlog | mariadb", _binlog),
    Scenario(
        "physical",
        "mysql+bin:// backup, dedup and restore at the first size; named only",
        _physical,
        in_all=False,
    ),
    Scenario(
        "drill",
        "mysql+drill:// against a plain restore at the first size; named only",
        _drill,
        in_all=False,
    ),
)
"""Every scenario, in the order they run."""


def _sizes(text: str) -> tuple[float, ...]:
    """``--sizes-mb``: comma-separated positive sizes in MB."""
    try:
        sizes = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of sizes in MB: {text!r}") from None
    if not sizes or any(size <= 0 for size in sizes):
        raise argparse.ArgumentTypeError(f"sizes must be positive: {text!r}")
    return sizes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of the Plakar MySQL/MariaDB integration.",
    )
    parser.add_argument(
        "benchmarks",
        nargs="*",
        metavar="BENCHMARK",
        help="which to run: "
        + "; ".join(f"{s.name} ({s.about})" for s in SCENARIOS)
        + "; or all (the default: every one not marked 'named only')",
    )
    parser.add_argument(
        "--sizes-mb",
        type=_sizes,
        default=(100.0, 1000.0),
        metavar="LIST",
        help="the database sizes to measure, in MB of SQL, comma-separated (default 100,1000)",
    )
    parser.add_argument(
        "--no-dedup", action="store_true", help="backup: leave the deduplication scenario out"
    )
    parser.add_argument(
        "--binlog-transactions",
        type=int,
        default=20000,
        metavar="N",
        help="binlog: transactions replayed (default 20000, about 22 MiB of binary logs)",
    )
    parser.add_argument("--runs", type=int, default=3, help="rounds of every contender (default 3)")
    parser.add_argument("--seed", default="plakar-mysql-bench", help="seed of the data generator")
    parser.add_argument(
        "--workdir",
        type=Path,
        help="where servers, dumps and the store go (default: a temporary directory,"
        " removed afterwards); kept when given (memory uses its subdirectory memory/)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    parser.add_argument(
        "--quiet-timeout",
        type=float,
        default=60.0,
        help="before each run, wait up to this many seconds for the machine to be nearly"
        " idle (default 60; 0: do not wait)",
    )
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="skip the untimed single-stream restore made before the first round",
    )
    parser.add_argument(
        "--no-myloader", action="store_true", help="leave the myloader reference out"
    )
    parser.add_argument(
        "--myloader-threads", type=int, default=2, help="myloader's threads (default 2)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="seconds after which one backup or restore is killed (default 3600)",
    )
    parser.add_argument(
        "--target-arg",
        action="append",
        metavar="ARG",
        help="a server argument for the restore target, as --target-arg=--name=value "
        f"(repeatable; replaces the default: on MariaDB {' '.join(TARGET_ARGS)},"
        f" on MySQL {' '.join(target_args('mysql'))})",
    )
    parser.add_argument(
        "--flavour",
        choices=FLAVOURS,
        default="mariadb",
        help="the servers: mariadb (Debian 12's, the default) or mysql (MySQL 9.7 from"
        " `make mysql`'s tree; backup and restore only, reports prefixed mysql-)",
    )
    parser.add_argument(
        "--ptar",
        type=Path,
        help="the package to measure (default: the one `make build` left in dist/)",
    )
    parser.add_argument(
        "--official-ptar",
        type=Path,
        help="the package of Plakar's official mysql integration, built from its source"
        f" (see the README); default ${official.ENVIRONMENT}; without it that contender"
        " is skipped",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="directory for the Markdown and JSON results (default bench/results)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(args_list)
    names = {s.name for s in SCENARIOS}
    unknown = sorted(set(args.benchmarks) - {*names, "all"})
    if unknown:
        parser.error(
            f"unknown benchmark {', '.join(unknown)} (choose from {', '.join(names)}, all)"
        )
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    wanted = set(args.benchmarks or ["all"])
    unsupported = sorted(
        s.name for s in SCENARIOS if s.name in wanted and args.flavour not in s.flavours
    )
    if unsupported:
        parser.error(f"{', '.join(unsupported)}: not available with --flavour {args.flavour}")
    try:
        official_ptar = official.find_package(args.official_ptar)
    except FileNotFoundError as exc:
        parser.error(str(exc))
    settings = Settings(
        sizes_mb=args.sizes_mb,
        runs=args.runs,
        seed=args.seed,
        workdir=args.workdir,
        keep=args.keep,
        quiet_timeout=args.quiet_timeout,
        timeout=args.timeout,
        ptar=args.ptar.resolve() if args.ptar else None,
        official_ptar=official_ptar,
        dedup=not args.no_dedup,
        warmup=not args.no_warmup,
        myloader=not args.no_myloader,
        myloader_threads=args.myloader_threads,
        target_args=tuple(args.target_arg) if args.target_arg else None,
        binlog_transactions=args.binlog_transactions,
        results=args.results,
        command=shlex.join(["python", "-m", "bench", *args_list]),
        flavour=args.flavour,
    )
    status = 0
    for scenario in SCENARIOS:
        if settings.flavour not in scenario.flavours:
            continue
        if scenario.name in wanted or ("all" in wanted and scenario.in_all):
            status |= scenario.run(settings)
    path = summary.write(args.results)
    print(f"bench: written {path} and {path.with_suffix('.png')}")
    return status


def _show(path: Path, failure: str | None) -> int:
    """Print a written report; the exit status it calls for."""
    print()
    print(path.read_text(encoding="utf-8"))
    print(f"bench: written {path} and {path.with_suffix('.json')}")
    return 0 if failure is None else 1
