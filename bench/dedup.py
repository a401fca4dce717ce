"""Deduplication on a realistic day of changes: how much a second backup adds
to what is stored.

Three ways of keeping the same database are compared, each in a store of its
own:

- ``plakar``: the integration (one file per table, ``plakar backup`` of the
  database);
- ``restic``: ``mariadb-dump | restic backup --stdin``;
- ``plakar-file``: the same dump stored as one file by ``plakar backup`` of a
  directory, which is what an integration writing one file per snapshot gets.

Each is backed up three times: the database as generated (day 0); the same
database again, unchanged; and after a day of changes (day 1):

- ``orders`` and ``events`` grow by 1% (copies of their oldest rows under new
  ids, at the end of the key), and their newest 1% of rows are updated;
- 0.1% of the ``customers`` rows, scattered across the table, are updated.

Growth is reported as a share of what the first backup stored, from byte
counts of the stores' files in one run.  The data and its changes are the same
at every run (the generator's seed, a CRC32 of the key); Plakar's own
per-snapshot metadata varies by a few hundred KB from one run to the next.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import datagen, workload
from bench.servers import BenchServer, find_program
from plakar_mysql_harness.plakar import Plakar

__all__ = ["CHANGES", "DedupResult", "Growth", "run"]

#: ``(table, appended share, updated share of the newest rows, scattered updated share)``.
CHANGES: tuple[tuple[str, float, float, float], ...] = (
    ("orders", 0.01, 0.01, 0.0),
    ("events", 0.01, 0.01, 0.0),
    ("customers", 0.0, 0.0, 0.001),
)
#: Each updated row gets this, so that its dump line changes without growing much.
_UPDATES = {
    "orders": "status = 'delivered', shipped_on = DATE(ordered_at)",
    "events": "kind = 'processed'",
    "customers": "balance = balance + 1.00",
}
GOAL_UNCHANGED = 0.005
"""Goal: backing up an unchanged database again grows the store by less than this share."""


@dataclass
class Growth:
    contender: str
    label: str
    first_bytes: int = 0
    """What the first backup added to the empty store."""
    unchanged_bytes: int = 0
    """What backing up the unchanged database again added."""
    changed_bytes: int = 0
    """What the backup after a day of changes added."""

    def share(self, added: int) -> float | None:
        return added / self.first_bytes if self.first_bytes else None


@dataclass
class DedupResult:
    growth: list[Growth] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    """What the day of changes did, table by table (rows touched)."""
    dump_bytes: list[int] = field(default_factory=list)
    """Size of the dump on each of the three days."""


def _apply_changes(source: BenchServer) -> list[str]:
    """The day of changes; returns one line per table on what was done."""
    done = []
    db = datagen.DATABASE
    for table, appended, newest, scattered in CHANGES:
        rows, top = (
            int(str(v)) for v in source.query(f"SELECT COUNT(*), MAX(id) FROM {db}.{table}")[0]
        )
        script = []
        add, update, spread = int(rows * appended), int(rows * newest), scattered
        if update:
            script.append(f"UPDATE {table} SET {_UPDATES[table]} WHERE id > {top - update};")
        if add:
            script += [
                f"CREATE TEMPORARY TABLE copied AS SELECT * FROM {table} ORDER BY id LIMIT {add};",
                f"UPDATE copied SET id = id + {top};",
                f"INSERT INTO {table} SELECT * FROM copied;",
                "DROP TEMPORARY TABLE copied;",
            ]
        if spread:
            # A fixed, scattered 1 in 1/spread of the rows: CRC32 of the key.
            script.append(
                f"UPDATE {table} SET {_UPDATES[table]}"
                f" WHERE CRC32(CONCAT('day1:', id)) % {round(1 / spread)} = 0;"
            )
        source.run_sql("\n".join(script).encode(), db)
        parts = [f"{add:,} rows appended"] if add else []
        parts += [f"newest {update:,} rows updated"] if update else []
        parts += [f"{spread:.1%} of the rows updated at random"] if spread else []
        done.append(f"{table} ({rows:,} rows): " + ", ".join(parts))
    return done


def run(
    source: BenchServer,
    plakar: Plakar,
    dump_arguments: Sequence[str],
    workdir: Path,
    restic_env: Mapping[str, str],
) -> DedupResult:
    """The scenario on ``source``'s database (which it changes); stores go below ``workdir``."""
    result = DedupResult()
    restic = find_program("restic")
    stores = {
        "plakar": workdir / "plakar-store",
        "restic": workdir / "restic-repo",
        "plakar-file": workdir / "plakar-file-store",
    }
    labels = {
        "plakar": "the integration (one file per table)",
        "restic": f"{source.dump_name} | restic backup --stdin",
        "plakar-file": "the dump as one file, plakar backup",
    }
    wanted = [key for key in stores if key != "restic" or restic]
    result.growth = [Growth(key, labels[key]) for key in wanted]
    dumps = workdir / "dumps"
    dumps.mkdir(parents=True)
    dump_file = dumps / f"{datagen.DATABASE}.sql"
    for key in wanted:
        if key == "restic":
            assert restic is not None
            workload.check_call([restic, "-r", str(stores[key]), "--quiet", "init"], env=restic_env)
        else:
            plakar.run("at", str(stores[key]), "create")
    sizes = {key: [workload.tree_bytes(stores[key])] for key in wanted}

    for day in ("day 0", "unchanged", "day 1"):
        if day == "day 1":
            result.changes = _apply_changes(source)
        print(f"bench: dedup, {day}", flush=True)
        with dump_file.open("wb") as out:
            workload.check_call(source.dump_command(dump_arguments), stdout=out)
        result.dump_bytes.append(dump_file.stat().st_size)
        for key in wanted:
            if key == "plakar":
                plakar.run(
                    "at",
                    str(stores[key]),
                    "backup",
                    "-o",
                    f"password={source.password}",
                    *(arg for option in source.plugin_options() for arg in ("-o", option)),
                    source.uri(datagen.DATABASE),
                    timeout=3600,
                )
            elif key == "plakar-file":
                plakar.run("at", str(stores[key]), "backup", str(dumps), timeout=3600)
            else:
                assert restic is not None
                with dump_file.open("rb") as inp:
                    workload.check_call(
                        [
                            restic,
                            "-r",
                            str(stores[key]),
                            "--quiet",
                            "backup",
                            "--stdin",
                            "--stdin-filename",
                            dump_file.name,
                        ],
                        env=restic_env,
                        stdin=inp,
                    )
            sizes[key].append(workload.tree_bytes(stores[key]))
    for growth in result.growth:
        empty, first, again, changed = sizes[growth.contender]
        growth.first_bytes = first - empty
        growth.unchanged_bytes = again - first
        growth.changed_bytes = changed - again
    return result
