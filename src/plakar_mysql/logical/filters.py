"""Which databases and tables a backup covers: ``tables=``, ``exclude_tables=`` and
``exclude_databases=``, applied to the server's catalogue before dumping.

Patterns are shell globs matched case-sensitively against ``database.table``
(the exact names joined by a dot), so any name can be selected, including
names that differ only in case.  A pattern that matches nothing is an error:
it is almost always a typo, and a silent typo in a backup filter means data
that is not backed up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase

from plakar_mysql.core.option_models import LogicalBackupOptions
from plakar_mysql.core.options import ConfigError
from plakar_mysql.core.server import DatabaseInfo


def patterns(raw: str | None, name: str) -> tuple[str, ...]:
    """The comma-separated patterns of option ``name`` (None: not given)."""
    if raw is None:
        return ()
    items = tuple(item.strip() for item in raw.split(","))
    if not all(items):
        raise ConfigError(f"option {name}: empty pattern in {raw!r}")
    return items


@dataclass(frozen=True)
class Selection:
    """The databases to dump, each with the tables kept, and the tables left out."""

    databases: tuple[DatabaseInfo, ...]
    ignored: tuple[tuple[str, str], ...]  # (database, table) for --ignore-table


def select(config: LogicalBackupOptions, databases: Sequence[DatabaseInfo]) -> Selection:
    """Apply the filters; raise :class:`ConfigError` for a pattern that matches nothing."""
    include = patterns(config.tables, "tables")
    exclude = patterns(config.exclude_tables, "exclude_tables")
    drop_dbs = patterns(config.exclude_databases, "exclude_databases")

    for pattern in drop_dbs:
        if not any(fnmatchcase(d.name, pattern) for d in databases):
            raise ConfigError(f"exclude_databases pattern {pattern!r} matches no database")
    requested = set(config.databases)
    kept_dbs = []
    for database in databases:
        if any(fnmatchcase(database.name, p) for p in drop_dbs):
            if database.name in requested:
                raise ConfigError(f"database {database.name!r} is both requested and excluded")
            continue
        kept_dbs.append(database)

    def full(db: DatabaseInfo, table: str) -> str:
        return f"{db.name}.{table}"

    for option, group in (("tables", include), ("exclude_tables", exclude)):
        for pattern in group:
            if not any(fnmatchcase(full(d, t.name), pattern) for d in kept_dbs for t in d.tables):
                raise ConfigError(f"{option} pattern {pattern!r} matches no table")

    selected, ignored = [], []
    for database in kept_dbs:
        kept = []
        for table in database.tables:
            name = full(database, table.name)
            wanted = not include or any(fnmatchcase(name, p) for p in include)
            if wanted and not any(fnmatchcase(name, p) for p in exclude):
                kept.append(table)
            else:
                ignored.append((database.name, table.name))
        selected.append(replace(database, tables=tuple(kept)))
    if not selected:
        raise ConfigError("exclude_databases leaves no database to back up")
    return Selection(tuple(selected), tuple(ignored))
