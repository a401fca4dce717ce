"""The disk a drill needs, estimated before it writes, and refused in one line when missing.

A drill cannot know a snapshot's total size before its files arrive (Plakar
hands them over one by one, the manifest last), so the estimate is made twice:
before anything starts, the throwaway server's own footprint (its system
tables and redo log); then, as each file arrives, the space that file will take
once loaded (a table's rows take about twice their SQL size in InnoDB with its
indexes, plus the spooled copy; a physical file its own size).  When the
temporary directory's file system has less free space than that plus a reserve,
the drill stops there and says so, rather than filling the disk.
"""

from __future__ import annotations

import os

from plakar_mysql.drill.server import DrillError

MIB = 1 << 20
#: A fresh MariaDB's data directory with a 16 MiB redo log, and its temporary files.
SERVER_FOOTPRINT = 160 * MIB
#: A fresh MySQL 9.7's (``--initialize-insecure``: 187 MiB measured, 100 MiB of it the
#: default redo log).
MYSQL_SERVER_FOOTPRINT = 200 * MIB
#: Left free at all times: the server's logs, temporary tables, the checks' dumps.
RESERVE = 64 * MIB
#: Bytes on disk per byte of a logical table file, loaded (rows and indexes; the spool).
LOGICAL_FACTOR = 3
PHYSICAL_FACTOR = 1


def free_bytes(path: str) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def _mib(count: int) -> str:
    return f"{(count + MIB - 1) // MIB} MiB"


def refuse_without(path: str, needed: int, what: str) -> None:
    """Raise :class:`DrillError` when ``path``'s file system lacks ``needed`` bytes plus the
    reserve."""
    free = free_bytes(path)
    if free < needed + RESERVE:
        raise DrillError(
            f"not enough space in {path}: {_mib(free)} free, the drill needs about "
            f"{_mib(needed + RESERVE)} {what}: give tmpdir= on a larger file system"
        )


class SpaceWatch:
    """The running estimate as files arrive: refuses the file that would not fit."""

    def __init__(self, path: str, factor: int) -> None:
        self.path = path
        self.factor = factor
        self.received = 0

    def admit(self, name: str, size: int) -> None:
        self.received += size
        refuse_without(
            self.path,
            size * self.factor,
            f"for {name} ({_mib(self.received)} of the snapshot received so far)",
        )
