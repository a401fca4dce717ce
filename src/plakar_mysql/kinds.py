"""Which kind of backup a snapshot is, from its paths: for a restore of the wrong kind.

Each kind has a scheme and a layout of its own (``/databases`` and
``/catalog.json``, ``/datadir``, ``/binlog``).  A restore handed a snapshot of
another kind says which kind it is and which ``-to`` location restores it,
rather than failing on the first file it does not expect.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str  # as the docs say it
    restore_to: str  # the -to location that restores it
    tops: tuple[str, ...]  # its top-level names in a snapshot
    snapshot: str  # what its snapshots are called in messages


LOGICAL = Kind(
    "logical", "mysql://host[:port]", ("databases", "catalog.json", "dump.sql"), "MySQL snapshot"
)
PHYSICAL = Kind("physical", "mysql+bin:///path/to/empty/dir", ("datadir",), "physical snapshot")
BINLOG = Kind("binary-log", "mysql+binlog://host[:port]", ("binlog",), "binary-log snapshot")
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
