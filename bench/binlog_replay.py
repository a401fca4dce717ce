"""``python -m bench.binlog_replay [--transactions N] [--runs N]``: the binlog replay's speed.

One source server with binary logs runs ``--transactions`` small transactions
(two rows each, about 500 bytes a row) after a known GTID; its logs are
archived once with ``plakar backup mysql+binlog://``.  Then, in alternating
rounds on one target server reset to the same base state each time:

* **direct**: ``mariadb-binlog <the log files> | mariadb``, what a DBA types;
* **plakar**: ``plakar restore -to mysql+binlog://`` of the archive (Plakar
  reads and decompresses the snapshot; the integration walks the events,
  feeds ``mariadb-binlog`` and relays its SQL to ``mariadb``).

Each round checks that the target holds every row afterwards.  The medians
and their ratio go to ``bench/results/binlog-replay.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench import RESULTS
from bench.servers import TARGET_ARGS, BenchServer, find_program
from tests.support.plakar import find_ptar, make_plakar

LOG_BIN = ("--log-bin=mysql-bin", "--server-id=1", "--innodb-flush-log-at-trx-commit=2")
ROW_BYTES = 500


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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.binlog_replay")
    parser.add_argument("--transactions", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    binlog_program = find_program("mariadb-binlog", "mysqlbinlog") or "mariadb-binlog"
    with tempfile.TemporaryDirectory(prefix="bench-binlog-") as tmp:
        work = Path(tmp)
        source = BenchServer(work / "source", LOG_BIN)
        target = BenchServer(work / "target", TARGET_ARGS)
        try:
            point = _fill(source, args.transactions)
            logs = [str(row[0]) for row in source.query("SHOW BINARY LOGS")]
            log_bytes = sum(int(str(row[1])) for row in source.query("SHOW BINARY LOGS"))
            plakar = make_plakar(work / "plakar", ptar=find_ptar())
            snapshot = plakar.backup(
                f"mysql+binlog://root@{source.host}:{source.port}", f"password={source.password}"
            )
            files = [str(source.server.datadir / name) for name in logs]
            times: dict[str, list[float]] = {"direct": [], "plakar": []}
            for _ in range(args.runs):
                for name in ("direct", "plakar"):
                    _reset(target, point)
                    started = time.monotonic()
                    if name == "direct":
                        # The whole history; the target's state is before the workload.
                        binlog = subprocess.Popen(
                            [binlog_program, f"--start-position={point}", *files],
                            stdout=subprocess.PIPE,
                        )
                        subprocess.run(
                            [*target.client(), "--binary-mode"], stdin=binlog.stdout, check=True
                        )
                        assert binlog.wait() == 0
                    else:
                        plakar.restore(
                            snapshot,
                            f"mysql+binlog://root@{target.host}:{target.port}",
                            f"password={target.password}",
                            timeout=3600,
                        )
                    times[name].append(time.monotonic() - started)
                    rows = _rows(target)
                    assert rows == 2 * args.transactions, (name, rows)
            plakar.close()
        finally:
            source.server.cleanup()
            target.server.cleanup()
    direct, through = statistics.median(times["direct"]), statistics.median(times["plakar"])
    result = {
        "transactions": args.transactions,
        "binlog_bytes": log_bytes,
        "runs": args.runs,
        "seconds": times,
        "median_direct": direct,
        "median_plakar": through,
        "ratio": through / direct,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "binlog-replay.json").write_text(json.dumps(result, indent=2) + "\n")
    table = (
        f"# Binlog replay: {args.transactions} transactions, {log_bytes / 2**20:.1f} MiB of "
        f"binary logs, {args.runs} rounds\n\n"
        "| replay | median (s) | rounds (s) |\n| --- | --- | --- |\n"
        f"| `mariadb-binlog FILES \\| mariadb` | {direct:.2f} | "
        f"{', '.join(f'{t:.2f}' for t in times['direct'])} |\n"
        f"| `plakar restore -to mysql+binlog://` | {through:.2f} | "
        f"{', '.join(f'{t:.2f}' for t in times['plakar'])} |\n\n"
        f"Ratio plakar / direct: {through / direct:.2f}\n"
    )
    (RESULTS / "binlog-replay.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
