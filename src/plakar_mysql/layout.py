"""Where things live in a snapshot, and the header that makes each file self-describing.

A snapshot holds one file per object::

    /catalog.json                        what the snapshot holds (read first by a restore)
    /manifest.json                       the backup's facts: server, times, binlog, file map
    /server/users.sql                    accounts, roles and grants (full-server backups)
    /databases/<db>/schema.sql           CREATE DATABASE
    /databases/<db>/tables/<table>.sql   a table (or sequence), its rows and its triggers
    /databases/<db>/views.sql            the database's views
    /databases/<db>/routines.sql         its procedures and functions
    /databases/<db>/events.sql           its events

Plakar hands a restore the files in depth-first name order and strips the
restored sub-path from their names, so no file may rely on its path or on the
manifest: the first line of every ``.sql`` file is a comment carrying, as JSON,
what the file is (``-- plakar-mysql {...}``).  Nothing in a file changes between
two backups of unchanged objects: volatile facts live in the manifest only, so
Plakar stores an unchanged table once.  ``/catalog.json`` sorts before
``/databases``: a restore of the whole snapshot learns everything it will write
before it writes anything.

Snapshots of the first release (one ``/dump.sql`` starting with a format-1
header, :class:`DumpHeader`) still restore.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

MANIFEST_PATH = "/manifest.json"
CATALOG_PATH = "/catalog.json"
USERS_PATH = "/server/users.sql"
DATABASES_DIR = "/databases"
DUMP_PATH = "/dump.sql"  # format 1
HEADER_PREFIX = b"-- plakar-mysql "
FOOTER_PREFIX = b"-- plakar-mysql end "
FORMAT = 2

Scope = Literal["database", "databases", "server"]
Kind = Literal["schema", "table", "views", "routines", "events", "users"]


# -- paths ---------------------------------------------------------------------


def encode_segment(name: str) -> str:
    """A name as one path segment: only ``%``, ``/`` and a leading ``.`` are encoded."""
    text = name.replace("%", "%25").replace("/", "%2F")
    return "%2E" + text[1:] if text.startswith(".") else text


def decode_segment(segment: str) -> str:
    return re.sub("%(25|2F|2E)", lambda m: {"25": "%", "2F": "/", "2E": "."}[m.group(1)], segment)


def database_dir(database: str) -> str:
    return f"{DATABASES_DIR}/{encode_segment(database)}"


def object_path(kind: Kind, database: str | None = None, name: str | None = None) -> str:
    """The snapshot path of one file."""
    if kind == "users":
        return USERS_PATH
    assert database is not None
    if kind == "table":
        assert name is not None
        return f"{database_dir(database)}/tables/{encode_segment(name)}.sql"
    return f"{database_dir(database)}/{'schema' if kind == 'schema' else kind}.sql"


# -- what a database holds -------------------------------------------------------


@dataclass(frozen=True)
class Inventory:
    """The objects of one database in a snapshot, as a restore must know them up front."""

    database: str
    character_set: str
    collation: str
    tables: tuple[str, ...] = ()  # base tables and sequences
    views: tuple[str, ...] = ()
    routines: tuple[str, ...] = ()  # "PROCEDURE name" / "FUNCTION name"
    events: tuple[str, ...] = ()
    definers: tuple[str, ...] = ()  # user@host of views, routines, triggers, events
    create_options: str = ""  # what follows the name in SHOW CREATE DATABASE
    triggers: tuple[str, ...] = ()  # names; empty in snapshots made before they were listed

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Inventory:
        kinds = ("tables", "views", "routines", "events", "triggers")
        lists = {k: tuple(data.get(k, ())) for k in kinds}
        return cls(
            database=data["database"],
            character_set=data["character_set"],
            collation=data["collation"],
            definers=tuple(data.get("definers", ())),
            create_options=data.get("create_options", ""),
            **lists,
        )


@dataclass(frozen=True)
class Catalog:
    """``/catalog.json``: every database of the snapshot; stable while the schema is."""

    flavour: str
    scope: Scope
    databases: tuple[Inventory, ...]
    users: bool = False
    format: int = FORMAT

    def encode(self) -> bytes:
        return (
            json.dumps(asdict(self), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> Catalog:
        raw: dict[str, Any] = json.loads(data)
        _check_format(raw.get("format"))
        return cls(
            flavour=raw["flavour"],
            scope=raw["scope"],
            databases=tuple(Inventory.from_json(d) for d in raw["databases"]),
            users=bool(raw.get("users")),
        )


# -- file headers ----------------------------------------------------------------


def _check_format(value: Any) -> None:
    if value not in (1, FORMAT):
        raise ValueError(f"snapshot format {value} is not supported (expected {FORMAT})")


@dataclass(frozen=True)
class FileHeader:
    """The first line of every ``.sql`` file of a snapshot: what the file is.

    ``inventory`` rides on ``schema.sql``, so that restoring one database
    checks every object it will write before loading any; ``names`` lists the
    objects of a ``views``, ``routines`` or ``events`` file, for the same check
    when that file is restored alone.
    """

    kind: Kind
    flavour: str
    max_allowed_packet: int
    database: str | None = None
    name: str | None = None
    character_set: str | None = None
    collation: str | None = None
    inventory: Inventory | None = field(default=None)
    names: tuple[str, ...] | None = None
    format: int = FORMAT

    def encode(self) -> bytes:
        data = {k: v for k, v in asdict(self).items() if v is not None}
        text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return HEADER_PREFIX + text.encode() + b"\n"


@dataclass(frozen=True)
class DatabaseEntry:
    name: str
    character_set: str
    collation: str
    tables: tuple[str, ...]


@dataclass(frozen=True)
class DumpHeader:
    """The header of a format-1 snapshot's single ``/dump.sql``.

    ``scope`` is ``database`` when the dump holds one database without naming
    it (so it can be loaded under any name); otherwise the dump creates and
    selects each of its databases itself.
    """

    scope: Scope
    flavour: str
    databases: tuple[DatabaseEntry, ...]
    max_allowed_packet: int
    format: int = 1

    def encode(self) -> bytes:
        text = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return HEADER_PREFIX + text.encode() + b"\n"


def read_header(line: bytes) -> FileHeader | DumpHeader | None:
    """The header in a file's first line, or None if it is not one of ours."""
    if not line.startswith(HEADER_PREFIX) or line.startswith(FOOTER_PREFIX):
        return None
    data: dict[str, Any] = json.loads(line[len(HEADER_PREFIX) :])
    _check_format(data.get("format"))
    if data["format"] == 1:
        return DumpHeader(
            scope=data["scope"],
            flavour=data["flavour"],
            databases=tuple(
                DatabaseEntry(d["name"], d["character_set"], d["collation"], tuple(d["tables"]))
                for d in data["databases"]
            ),
            max_allowed_packet=int(data["max_allowed_packet"]),
        )
    inventory = data.pop("inventory", None)
    names = data.pop("names", None)
    return FileHeader(
        **data,
        inventory=Inventory.from_json(inventory) if inventory is not None else None,
        names=tuple(names) if names is not None else None,
    )


def footer(rows: int | None) -> bytes:
    """The last line of a table file: its row count (None when the dump's format hides it)."""
    return FOOTER_PREFIX + json.dumps({"rows": rows}).encode() + b"\n"


def read_footer(tail: bytes) -> int | None:
    """The row count in the footer at the end of ``tail``, or None."""
    start = tail.rfind(FOOTER_PREFIX)
    if start < 0:
        return None
    rows = json.loads(tail[start + len(FOOTER_PREFIX) :]).get("rows")
    return int(rows) if rows is not None else None


# -- the session state every file sets and restores --------------------------------

_SAVED = re.compile(rb"^(/\*M?!\d+ )SET @OLD_(\w+)=@@(\w+)")


def session_frame(preamble: bytes) -> tuple[bytes, bytes]:
    """The statements a file starts and ends with, from the dump's own preamble.

    The start is the preamble's versioned ``SET`` lines (character set, time
    zone, SQL mode, unique and foreign-key checks off...), without anything
    global (GTID) or volatile; the end puts back every variable they saved.
    """
    start, end = [], []
    for line in preamble.splitlines(keepends=True):
        if not line.startswith((b"/*!", b"/*M!")) or b"GLOBAL" in line.upper():
            continue
        start.append(line)
        saved = _SAVED.match(line)
        if saved:
            version, old, variable = saved.groups()
            end.append(version + b"SET " + variable + b"=@OLD_" + old + b" */;\n")
    return b"".join(start), b"".join(reversed(end))
