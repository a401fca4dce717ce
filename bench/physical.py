"""Physical backups (``mysql+bin://``) measured side by side in one run:
``python -m bench.physical [--size-mb 300] [--runs 3]`` or ``python -m bench physical``.

- backup time: ``plakar backup mysql+bin://`` into an empty store against
  ``mariadb-backup --backup --stream=mbstream > /dev/null`` on the same server,
  and against Plakar alone (``plakar backup`` of the same copy extracted to a
  directory beforehand, untimed), ``--runs`` rounds; medians and ratios; the
  plugin's peak resident memory;
- deduplication: a second physical backup of the unchanged server, then one
  after the day of changes of :mod:`bench.dedup`, each as a share of what the
  first stored; the logical backup (``mysql://``) of the same database on the
  same days, in a store of its own, beside it.  InnoDB is let write out its
  dirty pages before each backup (:meth:`BenchServer.settle`): pages still
  being flushed after the bulk load would otherwise change between backups of
  an "unchanged" server;
- restore time: ``plakar restore -to mysql+bin://DIR`` (files + ``--prepare``)
  plus starting ``mariadbd`` on DIR, against the logical restore of the same
  day's snapshot into a running empty server.

The source is one generated ``benchdb`` (:mod:`bench.datagen`).  Results go to
``bench/results/physical.json`` and ``physical.md`` and are printed.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import RESULTS, datagen, dedup, workload
from bench.servers import SOURCE_ARGS, TARGET_ARGS, BenchServer
from plakar_mysql.physical.manifest import CHECKPOINTS, DATADIR
from plakar_mysql_harness.datadir import DatadirServer
from plakar_mysql_harness.plakar import Plakar, find_ptar, make_plakar
from plakar_mysql_harness.timing import run_timed, tail

LOG_BIN = ("--log-bin=binlog", "--server-id=1")
CHUNKING = (
    "Plakar v1.1.4 stores cut by FastCDC, 512 KiB min, 1 MiB average, 8 MiB max"
    " (kloset chunking.DefaultConfiguration); `plakar create` takes -hashing,"
    " -no-compression, -plaintext, weak-passphrase, no chunking option"
)


def _timed(command: Sequence[str], **kwargs: object) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, timeout=7200, **kwargs)  # type: ignore[call-overload]
    return time.perf_counter() - started


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


@dataclass
class Rounds:
    """Seconds of each contender in each round, and the plugin's peak memory."""

    tool: list[float] = field(default_factory=list)
    plakar: list[float] = field(default_factory=list)
    plakar_alone: list[float] = field(default_factory=list)
    importer_peak_kib: list[int] = field(default_factory=list)


def _tool_command(source: BenchServer, tool: str, scratch: Path) -> list[str]:
    return [
        tool,
        f"--defaults-file={source.option_file}",
        "--backup",
        "--stream=mbstream",
        f"--target-dir={scratch}",
    ]


def _backup_rounds(source: BenchServer, tool: str, runs: int, workdir: Path) -> Rounds:
    """Each round: ``mariadb-backup`` to /dev/null; ``plakar backup mysql+bin://``; and
    Plakar alone, ``plakar backup`` of the same copy extracted to a directory (untimed
    extraction), each into an empty store; with the plugin's peak resident memory."""
    rounds = Rounds()
    for number in range(runs):
        source.settle()
        scratch = Path(tempfile.mkdtemp(dir=workdir, prefix="mbstream-"))
        with open("/dev/null", "wb") as null:
            rounds.tool.append(
                _timed(_tool_command(source, tool, scratch), stdout=null, stderr=subprocess.DEVNULL)
            )
        shutil.rmtree(scratch)
        home = workdir / f"round-{number}"
        plakar = make_plakar(home, ptar=find_ptar())
        watch = _ImporterMemory()
        timed = run_timed(
            [
                str(plakar.binary),
                "at",
                str(plakar.store),
                "backup",
                "-o",
                f"password={source.password}",
                _bin_uri(source),
            ],
            home / "backup.log",
            env=plakar.env,
            timeout=7200,
            on_sample=watch.sample,
        )
        if timed.returncode != 0:
            raise SystemExit(f"bench.physical: plakar backup failed:\n{tail(timed.log)}")
        rounds.plakar.append(timed.seconds)
        rounds.importer_peak_kib.append(watch.peak_kib)
        # Plakar alone: the same files, from a directory.
        files = home / "files"
        files.mkdir()
        scratch.mkdir()
        tool_out = subprocess.Popen(
            _tool_command(source, tool, scratch),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        subprocess.run(
            ["mbstream", "-x", "-C", str(files)], stdin=tool_out.stdout, check=True, timeout=7200
        )
        assert tool_out.stdout is not None
        tool_out.stdout.close()
        if tool_out.wait() != 0:
            raise SystemExit("bench.physical: mariadb-backup | mbstream -x failed")
        shutil.rmtree(scratch)
        alone = home / "alone-store"
        plakar.run("at", str(alone), "create", "-plaintext")  # as make_plakar's store
        started = time.perf_counter()
        plakar.run("at", str(alone), "backup", str(files), timeout=7200)
        rounds.plakar_alone.append(time.perf_counter() - started)
        plakar.close()
        shutil.rmtree(home, ignore_errors=True)
        print(
            f"bench: round {number + 1}: mariadb-backup {rounds.tool[-1]:.1f} s, "
            f"plakar mysql+bin {rounds.plakar[-1]:.1f} s, "
            f"plakar alone {rounds.plakar_alone[-1]:.1f} s, "
            f"importer peak RSS {rounds.importer_peak_kib[-1] / 1024:.0f} MiB",
            flush=True,
        )
    return rounds


class _ImporterMemory:
    """The largest resident set of the ``mysql-importer`` plugin seen while sampling."""

    def __init__(self) -> None:
        self.peak_kib = 0

    def sample(self, pids: Collection[int]) -> None:
        for pid in pids:
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() != "mysql-importer":
                    continue
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    self.peak_kib = max(self.peak_kib, int(line.split()[1]))


def _bin_uri(source: BenchServer) -> str:
    return f"mysql+bin://root@{source.host}:{source.port}"


def _dedup(
    source: BenchServer, plakar: Plakar, stores: dict[str, Path]
) -> tuple[list[str], dict[str, dict[str, float]]]:
    """Physical and logical backups on day 0, again unchanged, and after the day of changes."""
    uris = {"physical": _bin_uri(source), "logical": source.uri(datagen.DATABASE)}
    sizes = {kind: [workload.tree_bytes(store)] for kind, store in stores.items()}
    changes: list[str] = []
    for day in ("day 0", "unchanged", "day 1"):
        if day == "day 1":
            changes = dedup._apply_changes(source)
        source.settle()
        for kind, store in stores.items():
            plakar.run(
                "at",
                str(store),
                "backup",
                "-o",
                f"password={source.password}",
                uris[kind],
                timeout=7200,
            )
            sizes[kind].append(workload.tree_bytes(store))
        print(f"bench: dedup, {day}: {sizes}", flush=True)
    growth = {
        kind: {
            "first_bytes": s[1] - s[0],
            "unchanged_bytes": s[2] - s[1],
            "changed_bytes": s[3] - s[2],
            "unchanged_share": (s[2] - s[1]) / (s[1] - s[0]),
            "changed_share": (s[3] - s[2]) / (s[1] - s[0]),
        }
        for kind, s in sizes.items()
    }
    return changes, growth


LOAD_SECONDS = 60.0
"""How long the steady write load runs between two backups."""
LOAD_RATE = 20.0
"""Transactions a second of the steady load (each updates two random rows, appends one)."""


class _SteadyLoad:
    """A live application's writes: :data:`LOAD_RATE` small transactions a second,
    each updating a random customer's balance and a random order's status and
    appending one event, in a thread, until :meth:`stop`."""

    def __init__(self, source: BenchServer) -> None:
        self._db = source.server.connect(datagen.DATABASE)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steady-load", daemon=True)
        self.transactions = 0
        with self._db.cursor() as cursor:
            cursor.execute("SELECT MAX(id) FROM customers")
            self._customers = int(cursor.fetchone()[0])  # type: ignore[index]
            cursor.execute("SELECT MAX(id) FROM orders")
            self._orders = int(cursor.fetchone()[0])  # type: ignore[index]
            cursor.execute("SELECT MAX(id) FROM events")
            self._events = int(cursor.fetchone()[0])  # type: ignore[index]
            cursor.execute(
                "SELECT GROUP_CONCAT(CONCAT('`', COLUMN_NAME, '`') ORDER BY ORDINAL_POSITION)"
                " FROM information_schema.COLUMNS"
                " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'events' AND COLUMN_NAME <> 'id'"
            )
            self._event_columns = str(cursor.fetchone()[0])  # type: ignore[index]
        self._next_event = self._events

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=60)
        self._db.close()
        return self.transactions

    def _run(self) -> None:
        rng = random.Random(20261203)  # noqa: S311 - a reproducible load, not a secret
        pause = 1.0 / LOAD_RATE
        cols = self._event_columns
        while not self._stop.wait(pause):
            self._next_event += 1
            with self._db.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute(
                    "UPDATE customers SET balance = balance + 1.00 WHERE id = %s",
                    (rng.randint(1, self._customers),),
                )
                cursor.execute(
                    "UPDATE orders SET status = 'delivered' WHERE id = %s",
                    (rng.randint(1, self._orders),),
                )
                cursor.execute(
                    f"INSERT INTO events (id, {cols}) SELECT %s, {cols} FROM events WHERE id = %s",
                    (self._next_event, rng.randint(1, self._events)),
                )
                cursor.execute("COMMIT")
            self.transactions += 1


def _incremental_bytes(source: BenchServer, tool: str, lsn: int, workdir: Path) -> int:
    """Bytes of ``mariadb-backup --incremental-lsn=LSN``'s stream: the pages changed
    since ``lsn``, what a page-level incremental would store."""
    scratch = Path(tempfile.mkdtemp(dir=workdir, prefix="incremental-"))
    try:
        done = subprocess.run(
            [*_tool_command(source, tool, scratch), f"--incremental-lsn={lsn}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=7200,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return len(done.stdout)


def _backup_lsn(plakar: Plakar, store: Path) -> int:
    """``to_lsn`` of the newest physical snapshot of ``store``."""
    view = copy.copy(plakar)
    view.store = store
    manifest = json.loads(view.cat(view.snapshots()[0], "/manifest.json"))
    return int(manifest["lsn"]["to"])


def _live_storage(
    source: BenchServer, tool: str, plakar: Plakar, workdir: Path
) -> list[dict[str, object]]:
    """What each backup adds to the store, physical and logical, on a live server:
    right after a bulk load, again with no new writes, after the dirty pages are
    written out, and from one backup to the next under a steady write load; with
    the size of a page-level incremental (``--incremental-lsn``) for the same change."""
    stores = {"physical": workdir / "live-physical", "logical": workdir / "live-logical"}
    for store in stores.values():
        plakar.run("at", str(store), "create", "-plaintext")
    uris = {"physical": _bin_uri(source), "logical": source.uri(datagen.DATABASE)}
    sizes = {kind: workload.tree_bytes(store) for kind, store in stores.items()}
    steps: list[dict[str, object]] = []

    def backup(label: str, incremental: bool = True) -> None:
        lsn = _backup_lsn(plakar, stores["physical"]) if steps else 0
        row: dict[str, object] = {"step": label}
        for kind, store in stores.items():
            plakar.run(
                "at",
                str(store),
                "backup",
                "-o",
                f"password={source.password}",
                uris[kind],
                timeout=7200,
            )
            now = workload.tree_bytes(store)
            row[f"{kind}_added_bytes"] = now - sizes[kind]
            sizes[kind] = now
        if steps and incremental:
            row["incremental_bytes"] = _incremental_bytes(source, tool, lsn, workdir)
        steps.append(row)
        print(f"bench: live storage, {label}: {row}", flush=True)

    source.settle()
    backup("first backup (settled)")
    source.server.execute(
        f"CREATE TABLE {datagen.DATABASE}.bulk_copy ENGINE=InnoDB AS"
        f" SELECT * FROM {datagen.DATABASE}.events"
    )
    backup("right after a bulk load (a copy of `events`)")
    backup("again, no new writes (InnoDB writing the load's dirty pages)")
    source.settle()
    backup("again, after the dirty pages were written out")
    backup("again, settled, no new writes")
    load = _SteadyLoad(source)
    load.start()
    try:
        time.sleep(LOAD_SECONDS)
        backup(f"under a steady load ({LOAD_RATE:g} tx/s), after {LOAD_SECONDS:g} s")
        time.sleep(LOAD_SECONDS)
        backup(f"under the same load, {LOAD_SECONDS:g} s later")
    finally:
        transactions = load.stop()
    steps[-1]["transactions"] = transactions
    first = steps[0]
    for row in steps:
        for kind in stores:
            row[f"{kind}_share"] = int(str(row[f"{kind}_added_bytes"])) / int(
                str(first[f"{kind}_added_bytes"])
            )
    return steps


def _checkpoints_dir(root: Path) -> Path:
    """The directory below ``root`` that holds the tool's checkpoints file."""
    for name in CHECKPOINTS:
        for found in sorted(root.rglob(name)):
            return found.parent
    raise SystemExit(f"bench.physical: no checkpoints file below {root}")


def _restores(
    source: BenchServer,
    tool: str,
    plakar: Plakar,
    stores: dict[str, Path],
    workdir: Path,
    *,
    runs: int,
) -> dict[str, object]:
    """The latest physical snapshot, each round: ``plakar restore -to mysql+bin://DIR``
    (files + ``--prepare``) against Plakar alone, ``plakar restore`` of the same files
    to a directory plus ``mariadb-backup --prepare`` on it, side by side; then once a
    server started on the restored directory, and the logical restore of the same day."""
    snapshot = _latest_snapshot(plakar, stores["physical"])
    at = ("at", str(stores["physical"]))
    ours: list[float] = []
    alone: list[float] = []
    target_dir = workdir / "restored-datadir"
    for number in range(runs):
        shutil.rmtree(target_dir, ignore_errors=True)
        started = time.perf_counter()
        plakar.run(*at, "restore", "-to", f"mysql+bin://{target_dir}", snapshot, timeout=7200)
        ours.append(time.perf_counter() - started)
        plain = workdir / "plain-restore"
        shutil.rmtree(plain, ignore_errors=True)
        plain.mkdir()
        started = time.perf_counter()
        plakar.run(*at, "restore", "-to", str(plain), f"{snapshot}:{DATADIR}", timeout=7200)
        subprocess.run(
            [tool, "--prepare", f"--target-dir={_checkpoints_dir(plain)}"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=7200,
        )
        alone.append(time.perf_counter() - started)
        shutil.rmtree(plain, ignore_errors=True)
        print(
            f"bench: restore round {number + 1}: mysql+bin {ours[-1]:.1f} s, "
            f"plakar restore + --prepare {alone[-1]:.1f} s",
            flush=True,
        )
    started = time.perf_counter()
    restored = DatadirServer(target_dir, workdir / "restored", root_password=source.password)
    server_start = time.perf_counter() - started
    restored.cleanup()
    target = BenchServer(workdir / "logical-target", TARGET_ARGS)
    try:
        started = time.perf_counter()
        plakar.run(
            "at",
            str(stores["logical"]),
            "restore",
            "-to",
            target.uri(datagen.DATABASE),
            "-o",
            f"password={target.password}",
            _latest_snapshot(plakar, stores["logical"]),
            timeout=7200,
        )
        logical = time.perf_counter() - started
    finally:
        target.cleanup()
    physical = _median(ours) + server_start
    return {
        "physical_files_and_prepare_s": ours,
        "plakar_restore_and_prepare_s": alone,
        "median_physical_s": _median(ours),
        "median_plakar_alone_s": _median(alone),
        "ratio_plakar_alone": _median(ours) / _median(alone),
        "server_start_s": server_start,
        "physical_files_and_prepare_s_median": _median(ours),
        "physical_with_server_start_s": physical,
        "logical_s": logical,
        "ratio_logical_over_physical": logical / physical,
    }


def run(size_mb: float, runs: int, workdir: Path) -> dict[str, object]:
    tool = shutil.which("mariadb-backup")
    if tool is None:
        raise SystemExit("bench.physical: mariadb-backup missing (make deps)")
    source = BenchServer(workdir / "source", [*SOURCE_ARGS, *LOG_BIN])
    try:
        stats = workload.generate(source, size_mb, seed="physical")
        datadir = Path(str(source.server.query("SELECT @@datadir")[0][0]))
        datadir_bytes = workload.tree_bytes(datadir)
        print(f"bench: {stats.sql_bytes / 1e6:.0f} MB of SQL generated", flush=True)
        rounds = _backup_rounds(source, tool, runs, workdir)
        stores = {"physical": workdir / "dedup-physical", "logical": workdir / "dedup-logical"}
        plakar = make_plakar(workdir / "dedup", ptar=find_ptar(), store=stores["physical"])
        plakar.run("at", str(stores["logical"]), "create", "-plaintext")
        changes, growth = _dedup(source, plakar, stores)
        manifest = json.loads(
            plakar.cat(_latest_snapshot(plakar, stores["physical"]), "/manifest.json")
        )
        stream_bytes = int(manifest["total_bytes"])
        restore = _restores(source, tool, plakar, stores, workdir, runs=runs)
        live = _live_storage(source, tool, plakar, workdir)
    finally:
        source.cleanup()
    return {
        "size_mb": size_mb,
        "sql_bytes": stats.sql_bytes,
        "datadir_bytes": datadir_bytes,
        "runs": runs,
        "backup": {
            "mariadb_backup_to_devnull_s": rounds.tool,
            "plakar_mysql_bin_s": rounds.plakar,
            "plakar_alone_s": rounds.plakar_alone,
            "median_tool_s": _median(rounds.tool),
            "median_plakar_s": _median(rounds.plakar),
            "median_plakar_alone_s": _median(rounds.plakar_alone),
            "ratio": _median(rounds.plakar) / _median(rounds.tool),
            "ratio_plakar_alone": _median(rounds.plakar_alone) / _median(rounds.tool),
            "importer_peak_rss_kib": rounds.importer_peak_kib,
            "stream_bytes": stream_bytes,
        },
        "dedup": {"changes": changes, "growth": growth},
        "restore": restore,
        "live_storage": live,
        "chunking": CHUNKING,
    }


def _latest_snapshot(plakar: Plakar, store: Path) -> str:
    """The newest snapshot of ``store`` (same home and passphrase as ``plakar``)."""
    view = copy.copy(plakar)
    view.store = store
    return view.snapshots()[0]


def markdown(result: dict[str, object]) -> str:
    backup = result["backup"]
    dedup_ = result["dedup"]
    restore = result["restore"]
    assert isinstance(backup, dict) and isinstance(dedup_, dict) and isinstance(restore, dict)
    lines = [
        f"# Physical backups, {result['size_mb']:g} MB of generated SQL "
        f"({int(str(result['datadir_bytes'])) / 1e6:.0f} MB data directory, "
        f"{int(str(backup['stream_bytes'])) / 1e6:.0f} MB copied), "
        f"{result['runs']} rounds",
        "",
        "| backup | median (s) |",
        "|---|---|",
        "| `mariadb-backup --backup --stream=mbstream > /dev/null` "
        f"| {backup['median_tool_s']:.1f} |",
        f"| `plakar backup mysql+bin://` (empty store) | {backup['median_plakar_s']:.1f} |",
        f"| ratio | {backup['ratio']:.2f}x |",
        "| Plakar alone: `plakar backup` of the same files extracted to a directory "
        f"| {backup['median_plakar_alone_s']:.1f} ({backup['ratio_plakar_alone']:.2f}x) |",
        "| plugin peak RSS (MiB, max of rounds) "
        f"| {max(backup['importer_peak_rss_kib']) / 1024:.0f} |",
        "",
        "| growth of the store | physical | logical |",
        "|---|---|---|",
    ]
    growth = dedup_["growth"]
    for key, label in (
        ("unchanged_share", "2nd backup, unchanged"),
        ("changed_share", "after a day of changes"),
    ):
        lines.append(f"| {label} | {growth['physical'][key]:.2%} | {growth['logical'][key]:.2%} |")
    lines += [
        f"| first backup stored (MB) | {growth['physical']['first_bytes'] / 1e6:.1f} "
        f"| {growth['logical']['first_bytes'] / 1e6:.1f} |",
        "",
        "| restore | seconds |",
        "|---|---|",
        "| physical: `plakar restore -to mysql+bin://DIR` (files + `--prepare`) "
        f"| {restore['median_physical_s']:.1f} |",
        "| Plakar alone: `plakar restore -to DIR snapshot:/datadir` + `--prepare` "
        f"| {restore['median_plakar_alone_s']:.1f} ({restore['ratio_plakar_alone']:.2f}x) |",
        f"| physical: + `mariadbd` started | {restore['physical_with_server_start_s']:.1f} |",
        f"| logical `mysql://` into a running server | {restore['logical_s']:.1f} |",
        "",
        "Day of changes: " + "; ".join(dedup_["changes"]),
        "",
        "| live server: what each backup adds (share of the first) | physical | logical "
        "| `--incremental-lsn` delta |",
        "|---|---|---|---|",
    ]
    live = result["live_storage"]
    assert isinstance(live, list)
    for row in live:
        delta = row.get("incremental_bytes")
        lines.append(
            f"| {row['step']} | {row['physical_added_bytes'] / 1e6:.1f} MB "
            f"({row['physical_share']:.1%}) | {row['logical_added_bytes'] / 1e6:.1f} MB "
            f"({row['logical_share']:.1%}) | "
            + (f"{delta / 1e6:.1f} MB |" if delta is not None else "- |")
        )
    lines += ["", f"Chunking: {result['chunking']}.", ""]
    return "\n".join(lines)


def measure(size_mb: float, runs: int, workdir: Path | None = None) -> dict[str, object]:
    """:func:`run` in ``workdir/physical`` (kept), or in a temporary directory (removed)."""
    if workdir is not None:
        return run(size_mb, runs, workdir.resolve() / "physical")
    with tempfile.TemporaryDirectory(prefix="bench-physical-") as tmp:
        return run(size_mb, runs, Path(tmp))


def write(result: dict[str, object], results: Path = RESULTS) -> Path:
    """``physical.json`` and ``physical.md`` in ``results``; returns the Markdown path."""
    results.mkdir(parents=True, exist_ok=True)
    (results / "physical.json").write_text(json.dumps(result, indent=2) + "\n")
    path = results / "physical.md"
    path.write_text(markdown(result))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.physical``: the same as ``python -m bench physical``, with its
    own defaults (300 MB, 3 rounds)."""
    parser = argparse.ArgumentParser(prog="python -m bench.physical")
    parser.add_argument("--size-mb", type=float, default=300.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    print(write(measure(args.size_mb, args.runs)).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
