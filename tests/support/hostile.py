"""Hostile snapshots: craft them, and prove a restore of one did nothing but load data.

A snapshot is untrusted input.  A test of a hostile snapshot needs three proofs
beyond the restore's own result, and this module gives each:

* **nothing was executed**: the would-be commands planted in the snapshot each
  write a *sentinel* file (or create a sentinel database) that must never
  appear (:class:`Sentinels`, :func:`client_commands`);
* **nothing was written outside the target**: the directories a restore could
  write to are listed before and after, recursively, and must be unchanged
  (:class:`TreeWatch`);
* **the target is as it was when the restore failed**: compare
  :func:`server_state` before and after.

Snapshots are crafted the way an attacker would: by ``plakar backup`` of a
directory laid out as ours, its files taken from a real snapshot
(:func:`snapshot_files`) and edited (:func:`plant`), or written whole
(:func:`write_layout`, :func:`craft_snapshot`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plakar_mysql_harness.mariadb import MariaDBServer
from plakar_mysql_harness.plakar import Plakar
from support.compare import describe_accounts, describe_server

#: The line a recent mariadb-dump writes first so that its own client enters
#: sandbox mode: crafted files leave it out, so that a test proves the restore's
#: own protection and not the dump's (an attacker does not write it either).
_DUMP_SANDBOX_LINE = re.compile(rb"^/\*M?!999999\\- enable the sandbox mode \*/[^\n]*\n", re.M)

#: The client commands a snapshot could try, by name: ``{sentinel}`` is a path
#: the command would create, ``{payload}`` an SQL file it would read.
CLIENT_COMMANDS: Mapping[str, str] = {
    "shell": "\\! touch {sentinel}",
    "system": "system touch {sentinel}",
    "tee": "\\T {sentinel}",
    "source-short": "\\. {payload}",
    "source": "source {payload}",
}


#: What :meth:`Sentinels.secret` holds: a row that only a read of that file could load.
SECRET_ROW = "secret-row-read-from-the-restoring-machine"


@dataclass(frozen=True)
class Sentinels:
    """Paths that only an executed command would create, in ``directory``.

    Also names a *payload*: an SQL file on the restoring machine that a
    ``source`` or ``\\.`` would read; reading it would create the sentinel
    database :attr:`database` and the sentinel file ``sourced``.
    """

    directory: Path
    database: str = "hostile_sourced"

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        """The sentinel file ``name`` (not created)."""
        return self.directory / f"sentinel-{name}"

    def payload(self) -> Path:
        """The SQL file a ``source`` would read (created once)."""
        path = self.directory / "payload.sql"
        if not path.exists():
            path.write_text(
                f"CREATE DATABASE IF NOT EXISTS `{self.database}`;\n"
                f"\\! touch {self.path('sourced')}\n"
            )
        return path

    def secret(self) -> Path:
        """A file on the restoring machine that a snapshot must not be able to read
        into the target (``LOAD DATA LOCAL INFILE``): one tab-separated row
        ``3, SECRET_ROW``, which must never appear in a table (created once)."""
        path = self.directory / "secret.txt"
        if not path.exists():
            path.write_text(f"3\t{SECRET_ROW}\n")
        return path

    def found(self, server: MariaDBServer | None = None) -> list[str]:
        """The sentinels that exist: files, and the database on ``server``."""
        found = sorted(p.name for p in self.directory.glob("sentinel-*"))
        if server is not None and server.query(
            "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", [self.database]
        ):
            found.append(f"database {self.database}")
        return found


def client_commands(sentinels: Sentinels, tag: str) -> dict[str, bytes]:
    """Each of :data:`CLIENT_COMMANDS` as a line of SQL (newline included) whose
    sentinel is ``sentinels.path(f"{tag}-{name}")``."""
    return {
        name: (
            template.format(sentinel=sentinels.path(f"{tag}-{name}"), payload=sentinels.payload())
            + "\n"
        ).encode()
        for name, template in CLIENT_COMMANDS.items()
    }


@dataclass(frozen=True)
class _Entry:
    kind: str
    size: int
    mtime_ns: int
    mode: int


class TreeWatch:
    """What lies in ``roots`` (recursively) now, to compare with later.

    ``ignore`` lists paths (files or whole directories) that the restore may
    change: the server's data directory, Plakar's store and caches.  Symbolic
    links are recorded, never followed.
    """

    def __init__(self, roots: Iterable[Path], ignore: Iterable[Path] = ()) -> None:
        self.roots = [Path(r) for r in roots]
        self.ignore = {Path(p) for p in ignore}
        self.before = self._scan()

    def _scan(self) -> dict[Path, _Entry]:
        seen: dict[Path, _Entry] = {}
        for root in self.roots:
            for directory, subdirs, files in os.walk(root):
                here = Path(directory)
                subdirs[:] = [d for d in subdirs if here / d not in self.ignore]
                for name in [*subdirs, *files, "."]:
                    path = here / name if name != "." else here
                    if path in self.ignore:
                        continue
                    try:
                        info = path.lstat()
                    except FileNotFoundError:
                        continue  # gone while listing: counted as absent
                    kind = "dir" if path.is_dir() and not path.is_symlink() else "file"
                    size = 0 if kind == "dir" else info.st_size
                    seen[path] = _Entry(kind, size, info.st_mtime_ns, info.st_mode)
        return seen

    def changes(self) -> list[str]:
        """Every path added, removed or modified since the watch began."""
        after = self._scan()
        changed = [f"added {p}" for p in sorted(set(after) - set(self.before))]
        changed += [f"removed {p}" for p in sorted(set(self.before) - set(after))]
        changed += [
            f"changed {p}"
            for p in sorted(set(after) & set(self.before))
            if after[p] != self.before[p] and after[p].kind == "file"
        ]
        return changed


def server_state(server: MariaDBServer) -> tuple[Any, ...]:
    """Everything a restore could change on ``server``: each database's objects
    and rows (:func:`~support.compare.describe_server`), the list of databases
    (the server's own included) and every account with its grants."""
    databases = tuple(name for (name,) in server.query("SHOW DATABASES"))
    return (databases, describe_server(server), describe_accounts(server))


def snapshot_files(plakar: Plakar, snapshot: str) -> dict[str, bytes]:
    """Every file of a snapshot by its path in the snapshot (``/catalog.json``, ...)."""
    return plakar.files(snapshot)


def without_dump_sandbox(data: bytes) -> bytes:
    """``data`` without the sandbox line a recent dump tool writes first."""
    return _DUMP_SANDBOX_LINE.sub(b"", data)


def plant(data: bytes, line: bytes, *, after: bytes) -> bytes:
    """``data`` with ``line`` inserted after the first line that starts with
    ``after`` (a whole line, so that the client reads it as a command)."""
    lines = data.splitlines(keepends=True)
    for number, text in enumerate(lines):
        if text.startswith(after):
            return b"".join([*lines[: number + 1], line, *lines[number + 1 :]])
    raise AssertionError(f"no line starts with {after!r}")


def write_layout(directory: Path, files: Mapping[str, bytes]) -> Path:
    """Write ``files`` (snapshot path -> content) below ``directory``; return it."""
    for name, data in files.items():
        path = directory / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return directory


def craft_snapshot(plakar: Plakar, directory: Path) -> str:
    """``plakar backup`` of ``directory``, laid out as one of ours: its files
    restore with ``f"{snapshot}:{directory}/..."`` as if they were a snapshot's."""
    return plakar.backup(str(directory))


def one_line(output: str, *needles: str) -> str:
    """The one line of ``output`` holding every one of ``needles``; fails otherwise."""
    lines = [line for line in output.splitlines() if all(n in line for n in needles)]
    assert len(lines) >= 1, f"no line with {needles!r} in:\n{output}"
    return lines[0]
