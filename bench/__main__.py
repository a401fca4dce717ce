"""``python -m bench [backup] [restore] [memory] [binlog] [--sizes-mb LIST] [--runs N] ...``.

With no benchmark named, all of them run (``backup`` with its deduplication
scenario, ``restore``, ``memory``), each at every size of ``--sizes-mb``
(default about 100 MB and 1 GB of SQL), and ``binlog`` (the binary-log replay
against ``mariadb-binlog | mariadb``, ``--binlog-transactions`` transactions),
then :mod:`bench.summary` gathers the latest results into
``bench/results/summary.md`` and ``summary.png``.  A quick check of the whole
chain: ``python -m bench --sizes-mb 10 --runs 1 --quiet-timeout 0
--binlog-transactions 1000``.  Results go to ``bench/results/`` and are printed.  The
exit status is 0 whatever the figures; it is 1 only when a benchmark could not
run at all (a server would not start, the package is missing...).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from bench import RESULTS, binlog_replay, official, summary
from bench.backup import BackupOptions
from bench.backup import run as run_backup
from bench.memory import MemoryOptions
from bench.memory import run as run_memory
from bench.report import write_backup, write_memory, write_restore
from bench.restore import RestoreOptions
from bench.restore import run as run_restore
from bench.servers import TARGET_ARGS

BENCHMARKS = ("backup", "restore", "memory", "binlog")


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
        help=f"which to run: {', '.join(BENCHMARKS)} or all (the default)",
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
        help="a mariadbd argument for the restore target, as --target-arg=--name=value "
        f"(repeatable; replaces the default {' '.join(TARGET_ARGS)})",
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
    unknown = sorted(set(args.benchmarks) - {*BENCHMARKS, "all"})
    if unknown:
        parser.error(
            f"unknown benchmark {', '.join(unknown)} (choose from {', '.join(BENCHMARKS)}, all)"
        )
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    wanted = args.benchmarks or ["all"]
    chosen = BENCHMARKS if "all" in wanted else tuple(dict.fromkeys(wanted))
    command = shlex.join(["python", "-m", "bench", *args_list])
    try:
        official_ptar = official.find_package(args.official_ptar)
    except FileNotFoundError as exc:
        parser.error(str(exc))
    status = 0
    if "backup" in chosen:
        backup = run_backup(
            BackupOptions(
                sizes_mb=args.sizes_mb,
                runs=args.runs,
                seed=args.seed,
                workdir=args.workdir / "backup" if args.workdir else None,
                keep=args.keep,
                quiet_timeout=args.quiet_timeout,
                timeout=args.timeout,
                ptar=args.ptar.resolve() if args.ptar else None,
                official_ptar=official_ptar,
                dedup=not args.no_dedup,
            )
        )
        status |= _show(write_backup(backup, command, args.results), backup.failure)
    for size_mb in args.sizes_mb if "restore" in chosen else ():
        result = run_restore(
            RestoreOptions(
                size_mb=size_mb,
                runs=args.runs,
                seed=args.seed,
                workdir=args.workdir / f"restore-{size_mb:g}mb" if args.workdir else None,
                keep=args.keep,
                myloader=not args.no_myloader,
                warmup=not args.no_warmup,
                quiet_timeout=args.quiet_timeout,
                ptar=args.ptar.resolve() if args.ptar else None,
                official_ptar=official_ptar,
                myloader_threads=args.myloader_threads,
                timeout=args.timeout,
                target_args=tuple(args.target_arg) if args.target_arg else TARGET_ARGS,
            )
        )
        path = write_restore(result, command, args.results, f"restore-{size_mb:g}mb")
        status |= _show(path, result.failure)
    if "memory" in chosen:
        measured = run_memory(
            MemoryOptions(
                sizes_mb=args.sizes_mb,
                seed=args.seed,
                workdir=args.workdir / "memory" if args.workdir else None,
                keep=args.keep,
                timeout=args.timeout,
                target_args=tuple(args.target_arg) if args.target_arg else TARGET_ARGS,
                ptar=args.ptar.resolve() if args.ptar else None,
            )
        )
        status |= _show(write_memory(measured, command, args.results), measured.failure)
    if "binlog" in chosen:
        status |= _binlog(args)
    path = summary.write(args.results)
    print(f"bench: written {path} and {path.with_suffix('.png')}")
    return status


def _binlog(args: argparse.Namespace) -> int:
    """The binlog replay benchmark; its exit status (1 if it could not run)."""
    try:
        result = binlog_replay.run(
            binlog_replay.ReplayOptions(
                transactions=args.binlog_transactions,
                runs=args.runs,
                ptar=args.ptar.resolve() if args.ptar else None,
                quiet_timeout=args.quiet_timeout,
                timeout=args.timeout,
            )
        )
    except Exception as exc:  # a server that would not start, a failed round...
        print(f"bench: binlog replay could not run: {exc}", file=sys.stderr)
        return 1
    return _show(binlog_replay.write(result, args.results), None)


def _show(path: Path, failure: str | None) -> int:
    """Print a written report; the exit status it calls for."""
    print()
    print(path.read_text(encoding="utf-8"))
    print(f"bench: written {path} and {path.with_suffix('.json')}")
    return 0 if failure is None else 1


if __name__ == "__main__":
    sys.exit(main())
