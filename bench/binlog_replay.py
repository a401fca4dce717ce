"""``python -m bench.binlog_replay [--transactions N] [--runs N]``, or ``python -m bench
binlog``: the binlog replay's speed, and where its CPU time goes.

One source server with binary logs runs ``--transactions`` small transactions
(two rows each, about 500 bytes a row) after a known GTID; its logs are
archived once with ``plakar backup mysql+binlog://``.  Then, in alternating
rounds on one target server reset to the same base state each time:

* **direct**: ``mariadb-binlog <the log files> | mariadb``, what a DBA types;
* **plakar**: ``plakar restore -to mysql+binlog://`` of the archive (Plakar
  reads and decompresses the snapshot; the integration walks the events,
  feeds ``mariadb-binlog`` and relays its SQL to ``mariadb``).

Each round is run with :func:`plakar_mysql_harness.timing.run_timed`, whose sampler also
gives the CPU time of every process of the round by name (plakar, the
exporter, ``mariadb-binlog``, ``mariadb``), and the target server's CPU time
is read before and after: that says which stage works and which waits.
Each round checks that the target holds every row afterwards.  The medians
and their ratio go to ``binlog-replay.json`` and ``.md`` in the results directory.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import RESULTS
from bench.servers import TARGET_ARGS, BenchServer, find_program
from plakar_mysql_harness.plakar import find_ptar, make_plakar
from plakar_mysql_harness.timing import ProcessWatch, run_timed, wait_for_quiet

LOG_BIN = ("--log-bin=mysql-bin", "--server-id=1", "--innodb-flush-log-at-trx-commit=2")
ROW_BYTES = 500
CONTENDERS = ("direct", "plakar")
LABELS = {
    "direct": "`mariadb-binlog FILES \\| mariadb`",
    "plakar": "`plakar restore -to mysql+binlog://`",
}


@dataclass(frozen=True)
class ReplayOptions:
    transactions: int = 20000
    runs: int = 3
    ptar: Path | None = None
    results: Path = RESULTS
    quiet_timeout: float = 60.0
    timeout: float = 3600.0


def _fill(source: BenchServer, transactions: int) -> str:
    """The workload; returns the GTID position before it."""
    source.server.execute("CREATE DATABASE bench")
    source.server.execute("CREATE TABLE bench.t (id INT PRIMARY KEY, pad VARCHAR(600))")
    before = str(source.query("SELECT @@gtid_binlog_pos")[0][0])
    pad = "x" * ROW_BYTES
    with source.server.connect() as conn, conn.cursor() as cur:
        for n in range(transactions):
            cur.execute("BEGIN")
            cur.execute(
                "INSERT INTO bench.t VALUES (%s, %s), (%s, %s)", (2 * n, pad, 2 * n + 1, pad)
            )
            cur.execute("COMMIT")
    return before


def _reset(target: BenchServer, point: str) -> None:
    target.server.execute("DROP DATABASE IF EXISTS bench")
    target.server.execute("CREATE DATABASE bench")
    target.server.execute("CREATE TABLE bench.t (id INT PRIMARY KEY, pad VARCHAR(600))")
    target.server.execute("SET GLOBAL gtid_slave_pos = %s", (point,))


def _rows(target: BenchServer) -> int:
    return int(str(target.query("SELECT COUNT(*) FROM bench.t")[0][0]))


def run(options: ReplayOptions) -> dict[str, Any]:
    """Measure; return the result (also what :func:`write` takes)."""
    binlog_program = find_program("mariadb-binlog", "mysqlbinlog") or "mariadb-binlog"
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in CONTENDERS}
    with tempfile.TemporaryDirectory(prefix="bench-binlog-") as tmp:
        work = Path(tmp)
        source = BenchServer(work / "source", LOG_BIN)
        target = BenchServer(work / "target", TARGET_ARGS)
        try:
            point = _fill(source, options.transactions)
            listed = source.query("SHOW BINARY LOGS")
            log_bytes = sum(int(str(row[1])) for row in listed)
            plakar = make_plakar(work / "plakar", ptar=options.ptar or find_ptar())
            snapshot = plakar.backup(
                f"mysql+binlog://root@{source.host}:{source.port}", f"password={source.password}"
            )
            files = [str(source.server.datadir / str(row[0])) for row in listed]
            direct = (
                f"{shlex.join([binlog_program, f'--start-position={point}', *files])}"
                f" | {shlex.join([*target.client(), '--binary-mode'])}"
            )
            commands = {
                "direct": ["sh", "-c", direct],
                "plakar": [
                    str(plakar.binary), "at", str(plakar.store), "restore",
                    "-to", f"mysql+binlog://root@{target.host}:{target.port}",
                    "-o", f"password={target.password}", snapshot,
                ],
            }  # fmt: skip
            for n in range(options.runs):
                for name in CONTENDERS:
                    _reset(target, point)
                    wait_for_quiet(options.quiet_timeout)
                    cpu = ProcessWatch()
                    server_before = target.cpu_seconds()
                    timed = run_timed(
                        commands[name],
                        work / f"{name}-{n}.log",
                        env=plakar.env,
                        cwd=work,
                        timeout=options.timeout,
                        interval=0.1,
                        on_sample=cpu,
                    )
                    server = target.cpu_seconds() - server_before
                    rows = _rows(target)
                    if timed.returncode != 0 or rows != 2 * options.transactions:
                        raise RuntimeError(
                            f"{name}: exit status {timed.returncode}, {rows} rows:\n"
                            + timed.log.read_text(errors="replace")[-2000:]
                        )
                    rounds[name].append(
                        {
                            "seconds": round(timed.seconds, 2),
                            "cpu_seconds": round(timed.cpu_seconds, 2),
                            "server_cpu_seconds": round(server, 2),
                            "cpu_by_process": {
                                name: round(seconds, 2)
                                for name, seconds in sorted(
                                    cpu.cpu_by_name().items(), key=lambda item: -item[1]
                                )
                            },
                        }
                    )
                    print(f"binlog-replay: {name} round {n + 1}: {rounds[name][-1]}", flush=True)
            plakar.close()
        finally:
            source.server.cleanup()
            target.server.cleanup()
    medians = {name: statistics.median(r["seconds"] for r in rounds[name]) for name in CONTENDERS}
    return {
        "transactions": options.transactions,
        "binlog_bytes": log_bytes,
        "runs": options.runs,
        "rounds": rounds,
        "median_direct": medians["direct"],
        "median_plakar": medians["plakar"],
        "ratio": medians["plakar"] / medians["direct"],
    }


def _cpu_cell(rounds: list[dict[str, Any]]) -> str:
    """Median CPU seconds of each process name over the rounds."""
    names = {name for r in rounds for name in r["cpu_by_process"]}
    medians = {
        name: statistics.median(r["cpu_by_process"].get(name, 0.0) for r in rounds)
        for name in names
    }
    server = statistics.median(r["server_cpu_seconds"] for r in rounds)
    parts = [f"{n} {s:.1f}" for n, s in sorted(medians.items(), key=lambda i: -i[1]) if s >= 0.05]
    return ", ".join([f"target mariadbd {server:.1f}", *parts])


def write(result: dict[str, Any], results: Path = RESULTS) -> Path:
    """``binlog-replay.json`` and ``binlog-replay.md``; returns the Markdown path."""
    results.mkdir(parents=True, exist_ok=True)
    (results / "binlog-replay.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Binlog replay: {result['transactions']} transactions, "
        f"{result['binlog_bytes'] / 2**20:.1f} MiB of binary logs, {result['runs']} rounds",
        "",
        "| replay | median (s) | rounds (s) | median CPU (s) by process |",
        "| --- | --- | --- | --- |",
    ]
    for name in CONTENDERS:
        rounds = result["rounds"][name]
        seconds = ", ".join(f"{r['seconds']:.2f}" for r in rounds)
        lines.append(
            f"| {LABELS[name]} | {result[f'median_{name}']:.2f} | {seconds} | {_cpu_cell(rounds)} |"
        )
    lines += ["", f"Ratio plakar / direct: {result['ratio']:.2f}", ""]
    path = results / "binlog-replay.md"
    path.write_text("\n".join(lines))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.binlog_replay")
    parser.add_argument("--transactions", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quiet-timeout", type=float, default=60.0)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = run(
        ReplayOptions(
            transactions=args.transactions,
            runs=args.runs,
            quiet_timeout=args.quiet_timeout,
            results=args.results,
        )
    )
    print(write(result, args.results).read_text())


if __name__ == "__main__":
    main()
