"""The three kinds of backup, told apart: by a snapshot's paths and by the options each reads.

Each kind has a scheme and a layout of its own (``/databases`` and
``/catalog.json``, ``/datadir``, ``/binlog``).  A restore handed a snapshot of
another kind says which kind it is and which ``-to`` location restores it,
rather than failing on the first file it does not expect; and an option that
another kind reads is refused naming that kind, rather than taken, stored in a
manifest and ignored, or called unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from plakar_mysql.core.option_models import (
    BinlogBackupOptions,
    BinlogRestoreOptions,
    LogicalBackupOptions,
    LogicalRestoreOptions,
    PhysicalBackupOptions,
)
from plakar_mysql.core.options import ConfigError, OptionModel, option_fields


@dataclass(frozen=True)
class Kind:
    name: str  # as the docs say it
    scheme: str
    restore_to: str  # the -to location that restores it
    tops: tuple[str, ...]  # its top-level names in a snapshot
    snapshot: str  # what its snapshots are called in messages


LOGICAL = Kind(
    name="logical",
    scheme="mysql",
    restore_to="mysql://host[:port]",
    tops=("databases", "catalog.json", "dump.sql"),
    snapshot="MySQL snapshot",
)
PHYSICAL = Kind(
    name="physical",
    scheme="mysql+bin",
    restore_to="mysql+bin:///path/to/empty/dir",
    tops=("datadir",),
    snapshot="physical snapshot",
)
BINLOG = Kind(
    name="binary-log",
    scheme="mysql+binlog",
    restore_to="mysql+binlog://host[:port]",
    tops=("binlog",),
    snapshot="binary-log snapshot",
)
KINDS = (LOGICAL, PHYSICAL, BINLOG)


def kind_of(tops: Iterable[str]) -> Kind | None:
    """The kind whose top-level names are among ``tops``; None if none is."""
    names = set(tops)
    return next((kind for kind in KINDS if names & set(kind.tops)), None)


def kind_of_path(path: str) -> Kind | None:
    """The kind a snapshot path such as ``/datadir/ibdata1`` belongs to."""
    return kind_of([path.lstrip("/").split("/", 1)[0]])


def wrong_kind(found: Kind, restoring: Kind) -> str:
    """One line: this is a snapshot of ``found``, not of the kind being restored."""
    return (
        f"this is a {found.name} snapshot, not a {restoring.name} one: "
        f"restore it with -to {found.restore_to}"
    )


def not_ours(path: str, restoring: Kind) -> str:
    """One line for a file that a restore of ``restoring`` cannot take."""
    found = kind_of_path(path)
    if found is not None and found is not restoring:
        return f"{path}: {wrong_kind(found, restoring)}"
    return f"{path} is not part of a {restoring.snapshot}"


def _names(model: type[OptionModel]) -> frozenset[str]:
    return frozenset(option_fields(model))


def options_by_kind(backup: bool) -> dict[Kind, frozenset[str]]:
    """The options each kind reads, for a backup or a restore, from its model.  (A
    physical restore takes only its location and ``bin_dir``: it refuses the others
    itself.)"""
    if backup:
        return {
            LOGICAL: _names(LogicalBackupOptions),
            PHYSICAL: _names(PhysicalBackupOptions),
            BINLOG: _names(BinlogBackupOptions),
        }
    return {LOGICAL: _names(LogicalRestoreOptions), BINLOG: _names(BinlogRestoreOptions)}


def refuse_foreign_options(config: Mapping[str, str], kind: Kind, *, backup: bool) -> None:
    """Refuse, in one line naming the kind it belongs to, an option that another
    kind reads and ``kind`` would otherwise take, store and ignore, or call unknown."""
    known = options_by_kind(backup)
    for name in sorted(set(config) - known[kind]):
        owners = [other for other, options in known.items() if name in options]
        if owners:
            what = "backups" if backup else "restores"
            where = " and ".join(f"{o.name} {what} ({o.scheme}://)" for o in owners)
            raise ConfigError(
                f"option {name} applies to {where}, not to {kind.name} ones ({kind.scheme}://)"
            )
