"""What every benchmark does the same way: the data, the package, and how a run is judged.

Each benchmark fills ``benchdb`` on a private source server with
:mod:`bench.datagen`, backs it up through the package ``make build`` left in
``dist/`` and restores it into a second server.  The pieces below are shared
so that the benchmarks measure the integration on the same data, describe the
same versions, and count a run as failed for the same reasons (plakar's own
error lines, a restored copy whose row counts or objects differ):

- :func:`generate` and :func:`inventory`: create and fill ``benchdb``, then
  record what a restored copy must hold;
- :func:`make_probe` and :data:`PROBE_DB`: a tiny database, for a quick
  backup and restore (options probed, plugin cache warmed, baseline memory);
- :func:`plakar_failure` and :func:`copy_differs`: why a run does not count;
- :func:`package_description` and :func:`versions`: what was measured.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from bench import datagen
from bench.servers import BenchServer, find_program, tool_version
from plakar_mysql_harness.mysql import mysql_bin_dir
from plakar_mysql_harness.plakar import PLAKAR_BIN, Plakar

__all__ = [
    "CHARSET",
    "PROBE_DB",
    "Inventory",
    "copy_differs",
    "generate",
    "generation_detail",
    "inventory",
    "last_lines",
    "make_probe",
    "package_description",
    "plakar_failure",
    "server_label",
    "tree_bytes",
    "versions",
]

CHARSET = ("utf8mb4", "utf8mb4_unicode_ci")
"""Character set and collation of ``benchdb`` on the source and of every copy."""
PROBE_DB = "bench_probe"
_PLAKAR_ERRORS = re.compile(r"\b(\w+) completed with (\d+) errors?\b")


@dataclass(frozen=True)
class Inventory:
    """What the source's ``benchdb`` holds once filled: a restored copy must match it."""

    counts: dict[str, int]
    """Exact row count of every table."""
    objects: list[str]
    """Views and routines (:meth:`BenchServer.objects`)."""
    data_bytes: int
    index_bytes: int
    tables: list[dict[str, object]]
    """Per table: name, rows, SQL bytes generated, load time (for the reports)."""


def generate(
    source: BenchServer, size_mb: float, seed: str, charset: tuple[str, str] = CHARSET
) -> datagen.GenerationStats:
    """Create ``benchdb`` on ``source`` and fill it with about ``size_mb`` MB of SQL."""
    db = datagen.DATABASE
    source.server.execute(f"CREATE DATABASE {db} CHARACTER SET {charset[0]} COLLATE {charset[1]}")
    print(
        f"bench: generating about {size_mb:g} MB of SQL into {db}"
        f" ({len(datagen.TABLES)} tables, seed {seed!r})",
        flush=True,
    )
    return datagen.generate(
        source.client(db), size_mb, seed, run_sql=lambda sql: source.run_sql(sql, db)
    )


def generation_detail(stats: datagen.GenerationStats) -> str:
    """One line on the generated data, for a report's set-up steps."""
    return (
        f"{stats.sql_bytes / 1e6:.0f} MB of INSERTs, {stats.rows:,} rows, "
        f"{stats.sql_bytes / 1e6 / stats.seconds:.1f} MB/s, 2 tables at a time"
    )


def inventory(source: BenchServer, stats: datagen.GenerationStats) -> Inventory:
    """Row counts, objects and InnoDB sizes of the freshly generated ``benchdb``."""
    db = datagen.DATABASE
    counts = source.row_counts(db, [t.name for t in datagen.TABLES])
    objects = source.objects(db)
    data_bytes, index_bytes = source.data_bytes(db)
    tables: list[dict[str, object]] = [
        {
            "name": table.name,
            "rows": counts.get(table.name, 0),
            "sql_bytes": table.sql_bytes,
            "load_seconds": round(table.seconds, 2),
        }
        for table in stats.tables
    ]
    return Inventory(counts, objects, data_bytes, index_bytes, tables)


def make_probe(source: BenchServer) -> None:
    """Create :data:`PROBE_DB` on ``source``: one table of two rows."""
    source.server.execute(f"CREATE DATABASE {PROBE_DB}")
    source.server.execute(f"CREATE TABLE {PROBE_DB}.t (id INT PRIMARY KEY, v VARCHAR(20))")
    source.server.execute(f"INSERT INTO {PROBE_DB}.t VALUES (1, 'one'), (2, 'two')")


def plakar_failure(plakar: Plakar, log: str) -> str | None:
    """Why plakar's output (colour codes removed) says the command failed, or None.

    plakar may exit 0 after a fatal ``<argv0>: <error>`` line, and a backup or
    restore whose connector reported errors ends ``completed with N errors``.
    """
    prefix = f"{plakar.binary}: "
    fatal = [line for line in log.splitlines() if line.startswith(prefix)]
    errors = [m for m in _PLAKAR_ERRORS.finditer(log) if int(m.group(2)) > 0]
    return "plakar reported errors: " + last_lines(log) if fatal or errors else None


def copy_differs(
    target: BenchServer, database: str, counts: dict[str, int], objects: list[str]
) -> str | None:
    """How ``database`` on ``target`` differs from what the source held, or None."""
    try:
        found = target.row_counts(database, list(counts))
        found_objects = target.objects(database)
    except Exception as exc:
        return f"could not check the restored copy: {exc}"
    wrong = [
        f"{name}: {found.get(name, 'missing')} rows, expected {rows}"
        for name, rows in counts.items()
        if found.get(name) != rows
    ]
    if found_objects != objects:
        wrong.append(f"objects {found_objects}, expected {objects}")
    return "restored copy differs: " + "; ".join(wrong) if wrong else None


def tree_bytes(path: Path) -> int:
    """Total size of the files below ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def last_lines(text: str, lines: int = 3) -> str:
    """The last non-blank lines of a command's output, on one line."""
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) or "(no output)"


def package_description(ptar: Path) -> str:
    """The package's name, digest and build time (dist/ may be rebuilt at any time)."""
    digest = hashlib.sha256(ptar.read_bytes()).hexdigest()[:12]
    built = datetime.fromtimestamp(ptar.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{ptar.name} (sha256 {digest}..., built {built})"


def server_label(flavour: str) -> str:
    """The server's line in a report's versions: ``MariaDB server`` or ``MySQL server``."""
    return "MySQL server" if flavour == "mysql" else "MariaDB server"


def versions(
    target: BenchServer | None,
    package: str,
    *,
    myloader: bool = True,
    flavour: str = "mariadb",
) -> dict[str, str]:
    """Versions of the server, the stock tools, plakar and the package (and of
    mydumper/myloader with ``myloader``: only the restore benchmark runs them).
    On MySQL the tools are the tree's (``make mysql``), not those on ``PATH``."""
    if flavour == "mysql":
        bin_dir = mysql_bin_dir()
        client: str | None = str(bin_dir / "mysql")
        dump: str | None = str(bin_dir / "mysqldump")
    else:
        client = find_program("mariadb", "mysql")
        dump = find_program("mariadb-dump", "mysqldump")
    name = "mysql" if flavour == "mysql" else "mariadb"
    found = {
        server_label(flavour): target.version if target is not None else "not started",
        f"{name} client": tool_version(client),
        "mysqldump" if flavour == "mysql" else "mariadb-dump": tool_version(dump),
        "plakar": tool_version(str(PLAKAR_BIN) if PLAKAR_BIN.exists() else None, "version"),
    }
    if myloader:
        found["mydumper"] = tool_version(find_program("mydumper"))
        found["myloader"] = tool_version(find_program("myloader"))
    found["package"] = package or "not installed"
    return found


def check_call(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
) -> None:
    """Run a set-up command; raise with the end of its error output if it fails."""
    proc = subprocess.run(
        list(cmd),
        env=dict(env) if env is not None else None,
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        stdout=stdout if stdout is not None else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    if proc.returncode != 0:
        error = last_lines(proc.stderr.decode(errors="replace"))
        raise RuntimeError(f"{Path(cmd[0]).name} failed (exit status {proc.returncode}): {error}")


def dump_arguments(plakar: Plakar, snapshot: str) -> list[str]:
    """The arguments the integration ran its dump tool with, from the snapshot's
    ``/manifest.json`` (credentials left out)."""
    manifest = json.loads(plakar.cat(snapshot, "/manifest.json"))
    arguments = manifest["dump_tool"]["arguments"]
    if not isinstance(arguments, list) or not all(isinstance(a, str) for a in arguments):
        raise TypeError("the manifest's dump_tool.arguments is not a list of strings")
    return [a for a in arguments if not a.startswith("--defaults")]
