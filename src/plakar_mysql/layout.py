"""Where things live in a snapshot, and the header that makes a dump file self-describing.

A snapshot holds ``/dump.sql`` (one consistent dump of every database of the
backup) and ``/manifest.json`` (what was backed up, from where, when).  Plakar
hands an exporter the files in path order, and only the files below the path
being restored, so the dump cannot rely on the manifest: its first line is a
comment carrying, as JSON, what a restore must know before loading anything.
That line holds nothing that changes between two backups of unchanged data,
so Plakar stores identical dumps once.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

DUMP_PATH = "/dump.sql"
MANIFEST_PATH = "/manifest.json"
HEADER_PREFIX = b"-- plakar-mysql "
FORMAT = 1

Scope = Literal["database", "databases", "server"]


@dataclass(frozen=True)
class DatabaseEntry:
    name: str
    character_set: str
    collation: str
    tables: tuple[str, ...]


@dataclass(frozen=True)
class DumpHeader:
    """What a restore needs to know before it loads a dump file.

    ``scope`` is ``database`` when the dump holds one database without naming
    it (so it can be loaded under any name); otherwise the dump creates and
    selects each of its databases itself.
    """

    scope: Scope
    flavour: str
    databases: tuple[DatabaseEntry, ...]
    max_allowed_packet: int
    format: int = FORMAT

    def encode(self) -> bytes:
        text = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return HEADER_PREFIX + text.encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> DumpHeader | None:
        """The header in ``line``, or None if the file does not start with one."""
        if not line.startswith(HEADER_PREFIX):
            return None
        data: dict[str, Any] = json.loads(line[len(HEADER_PREFIX) :])
        if data.get("format") != FORMAT:
            raise ValueError(
                f"dump format {data.get('format')} is not supported (expected {FORMAT})"
            )
        return cls(
            scope=data["scope"],
            flavour=data["flavour"],
            databases=tuple(
                DatabaseEntry(d["name"], d["character_set"], d["collation"], tuple(d["tables"]))
                for d in data["databases"]
            ),
            max_allowed_packet=int(data["max_allowed_packet"]),
        )
