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

A restore treats all of this as untrusted input: the catalog, the headers and
the paths are checked here (types, names, format, that a file's path is the
one its header implies) and read whole only up to a cap, so that a crafted or
damaged snapshot fails with one line instead of writing where its header
points or exhausting memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast, get_args

from plakar_mysql.core.errors import PlakarMySQLError

MANIFEST_PATH = "/manifest.json"
CATALOG_PATH = "/catalog.json"
USERS_PATH = "/server/users.sql"
DATABASES_DIR = "/databases"
DUMP_PATH = "/dump.sql"  # format 1
HEADER_PREFIX = b"-- plakar-mysql "
FOOTER_PREFIX = b"-- plakar-mysql end "
FORMAT = 2

# The most a restore reads whole of one file; larger is refused, naming the file.
JSON_LIMIT = 16 << 20  # /catalog.json, /manifest.json (a few KiB per database)
HELD_LIMIT = 64 << 20  # views, routines, events, users: definitions, held until the tables are in
HEADER_LIMIT = 16 << 20  # a header line (its inventory lists every object of a database)
MAX_PACKET = 1 << 30  # the server's own maximum for max_allowed_packet
NAME_LIMIT = 64  # characters in a database or object name, as the servers allow

Scope = Literal["database", "databases", "server"]
Kind = Literal["schema", "table", "views", "routines", "events", "users"]


class SnapshotError(PlakarMySQLError, ValueError):
    """A file of the snapshot is malformed, too large or not what its place says:
    one line, which the caller prefixes with the file's path."""


def read_capped(chunks: Iterable[bytes], limit: int) -> bytes:
    """All of ``chunks``, refused once more than ``limit`` bytes have come."""
    data = bytearray()
    for chunk in chunks:
        data += chunk
        if len(data) > limit:
            raise SnapshotError(
                f"larger than {limit >> 20} MiB, the most a restore reads of such a file"
            )
    return bytes(data)


# -- checking what a snapshot says -------------------------------------------------


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SnapshotError(f"{what} is not a JSON object")
    return value


def _text(data: dict[str, Any], key: str, what: str, *, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise SnapshotError(f"{what}: {key!r} is missing or not a string")
    return value


def _name(value: Any, what: str, limit: int = NAME_LIMIT) -> str:
    """A database or object name: any characters but NUL, 1 to 64 of them."""
    if not isinstance(value, str) or not 0 < len(value) <= limit or "\0" in value:
        raise SnapshotError(
            f"{what} {value!r} is not a valid name (1 to {limit} characters, no NUL)"
        )
    return value


# A routine is listed as "PROCEDURE name", "FUNCTION name", "PACKAGE BODY name"...
_ROUTINE_LIMIT = NAME_LIMIT + len("PACKAGE BODY ")


def _names(value: Any, what: str, kind: str = "") -> tuple[str, ...]:
    """A list of names (of ``kind``: tables, routines...) without repeats."""
    if not isinstance(value, list):
        raise SnapshotError(f"{what} is not a list")
    limit = _ROUTINE_LIMIT if kind == "routines" else NAME_LIMIT
    names = tuple(_name(item, what, limit) for item in value)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SnapshotError(f"{what} names {repeated[0]!r} twice")
    return names


_WORD = re.compile(r"\w{1,64}", re.ASCII)


def _word(value: Any, what: str) -> str | None:
    """A character set or collation name: it is written into SQL, so letters,
    digits and underscores only."""
    if value is None:
        return None
    if not isinstance(value, str) or not (value == "" or _WORD.fullmatch(value)):
        raise SnapshotError(f"{what} {value!r} is not a character set or collation name")
    return value


# What SHOW CREATE DATABASE puts after the name (it is written into CREATE DATABASE).
_DB_OPTION = (
    r"(?:DEFAULT )?(?:CHARACTER SET|CHARSET|COLLATE) \w+"
    r"|DEFAULT ENCRYPTION='[YN]'"
    r"|COMMENT '(?:[^'\\]|\\.|'')*'"
)
_CREATE_OPTIONS = re.compile(
    rf"(?: (?:/\*!\d+ (?:{_DB_OPTION})(?: (?:{_DB_OPTION}))* \*/|{_DB_OPTION}))*", re.ASCII
)


def _create_options(value: Any) -> str:
    if not isinstance(value, str) or not _CREATE_OPTIONS.fullmatch(value):
        raise SnapshotError(
            f"create_options {value!r} are not a database's character set, collation and comment"
        )
    return value


def _scope(value: Any) -> Scope:
    if value not in get_args(Scope):
        raise SnapshotError(f"scope {value!r} is not one of {', '.join(get_args(Scope))}")
    return cast(Scope, value)


def _kind(value: Any) -> Kind:
    if value not in get_args(Kind):
        raise SnapshotError(
            f"its header's kind {value!r} is not one of {', '.join(get_args(Kind))}"
        )
    return cast(Kind, value)


def _packet(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_PACKET:
        raise SnapshotError(f"max_allowed_packet {value!r} is not a size up to {MAX_PACKET}")
    return value


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
    def from_json(cls, value: Any) -> Inventory:
        """An inventory as a catalog or a header gives it, checked."""
        data = _object(value, "an inventory")
        database = _name(data.get("database"), "database")
        what = f"database {database!r}"
        lists = {
            key: _names(data.get(key, []), f"{what}: {key}", key)
            for key in ("tables", "views", "routines", "events", "triggers")
        }
        definers = data.get("definers", [])
        if not isinstance(definers, list) or not all(isinstance(d, str) for d in definers):
            raise SnapshotError(f"{what}: definers is not a list of accounts")
        return cls(
            database=database,
            character_set=_word(_text(data, "character_set", what), "character set") or "",
            collation=_word(_text(data, "collation", what), "collation") or "",
            definers=tuple(definers),
            create_options=_create_options(data.get("create_options", "")),
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
        """The catalog in ``data``, checked: one line saying what is wrong otherwise."""
        raw = _object(_json(data), "the catalog")
        _check_format(raw.get("format"))
        scope = _scope(raw.get("scope"))
        databases = raw.get("databases")
        if not isinstance(databases, list):
            raise SnapshotError("'databases' is missing or not a list")
        inventories = tuple(Inventory.from_json(d) for d in databases)
        _names([i.database for i in inventories], "the catalog's databases")
        users = raw.get("users", False)
        if not isinstance(users, bool):
            raise SnapshotError(f"users {users!r} is not true or false")
        return cls(
            flavour=_text(raw, "flavour", "the catalog"),
            scope=scope,
            databases=inventories,
            users=users,
        )


# -- /manifest.json ------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestServer:
    """The source server as the manifest describes it."""

    address: str
    version: str
    version_comment: str
    character_set: str
    collation: str
    max_allowed_packet: int
    log_bin: bool


@dataclass(frozen=True)
class ManifestTool:
    """The dump tool that made the snapshot, and how it was run."""

    path: str
    version: str
    arguments: tuple[str, ...]


@dataclass(frozen=True)
class ManifestBinlog:
    """Where the dump stands in the source's binary log."""

    file: str
    position: int
    gtid: str | None


@dataclass(frozen=True)
class ManifestTable:
    """A table (or view, sequence) of a database backed up, with its rows if counted."""

    name: str
    type: str
    engine: str | None
    rows: int | None
    rows_estimate: int | None
    data_bytes: int | None


@dataclass(frozen=True)
class ManifestDatabase:
    name: str
    character_set: str
    collation: str
    tables: tuple[ManifestTable, ...]


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """``/manifest.json``: the backup's volatile facts (server, times, binlog point,
    file map), which no ``.sql`` file carries.  A restore reads only its format
    and binlog point (:func:`check_manifest`); people read the rest."""

    format: int = FORMAT
    generator: str
    scope: Scope
    flavour: str
    server: ManifestServer
    dump_tool: ManifestTool
    binlog: ManifestBinlog | None
    options: dict[str, str]  # the backup's options, without secrets
    databases: tuple[ManifestDatabase, ...]
    grants: dict[str, list[str] | str] | None  # one database's grants, or why not read
    files: dict[str, dict[str, str | None]]  # path -> kind, database, name
    started_at: str
    finished_at: str

    def encode(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n").encode()


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:  # UnicodeDecodeError is one too
        raise SnapshotError(f"not valid JSON ({exc})") from None


def check_manifest(data: bytes) -> bool:
    """Whether ``/manifest.json`` is ours: a JSON object of a known format (a
    restore reads only its binary-log point from it).  Another tool's (the
    official integration's has no ``format``) is a JSON object too, and not used."""
    manifest = _object(_json(data), "the manifest")
    if "format" not in manifest:
        return False
    _check_format(manifest["format"])
    return True


# -- file headers ----------------------------------------------------------------


def _check_format(value: Any) -> None:
    if isinstance(value, bool) or value not in (1, FORMAT):
        raise SnapshotError(f"snapshot format {value!r} is not supported (expected {FORMAT})")


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
    hex_blob: bool | None = None  # True: binary values were dumped as 0x literals
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
    """The header in a file's first line, checked, or None if it is not one of ours."""
    if not line.startswith(HEADER_PREFIX) or line.startswith(FOOTER_PREFIX):
        return None
    data = _object(_json(line[len(HEADER_PREFIX) :]), "its header")
    _check_format(data.get("format"))
    if data["format"] == 1:
        return _dump_header(data)
    return _file_header(data)


_HEADER_KEYS = {f for f in FileHeader.__dataclass_fields__}


def _file_header(data: dict[str, Any]) -> FileHeader:
    unknown = sorted(set(data) - _HEADER_KEYS)
    if unknown:
        raise SnapshotError(f"its header has unknown fields: {', '.join(unknown)}")
    kind = _kind(data.get("kind"))
    database = data.get("database")
    if kind == "users":
        if database is not None or data.get("name") is not None:
            raise SnapshotError("its header says it holds accounts, yet names a database")
    else:
        database = _name(database, "database")
    name = data.get("name")
    if (kind == "table") != (name is not None):
        raise SnapshotError(
            f"its header names {'no' if name is None else 'an'} object for a {kind} file"
        )
    inventory = data.get("inventory")
    if inventory is not None:
        inventory = Inventory.from_json(inventory)
        if kind != "schema" or inventory.database != database:
            raise SnapshotError(
                f"its header's inventory of {inventory.database!r} does not "
                f"belong in a {kind} file of {database!r}"
            )
    names = data.get("names")
    if names is not None and kind not in ("views", "routines", "events"):
        raise SnapshotError(f"its header lists object names in a {kind} file")
    hex_blob = data.get("hex_blob")
    if hex_blob not in (None, True) or (hex_blob and kind != "table"):
        raise SnapshotError(f"its header's hex_blob is not true in a table file: {hex_blob!r}")
    return FileHeader(
        kind=kind,
        flavour=_text(data, "flavour", "its header"),
        max_allowed_packet=_packet(data.get("max_allowed_packet")),
        database=database,
        name=_name(name, "table") if name is not None else None,
        character_set=_word(data.get("character_set"), "character set"),
        collation=_word(data.get("collation"), "collation"),
        inventory=inventory,
        names=_names(names, f"its header's {kind}", kind) if names is not None else None,
        hex_blob=hex_blob,
    )


def _dump_header(data: dict[str, Any]) -> DumpHeader:
    scope = _scope(data.get("scope"))
    entries = data.get("databases")
    if not isinstance(entries, list) or not entries:
        raise SnapshotError("its header lists no databases")
    databases = []
    for item in entries:
        entry = _object(item, "a database of its header")
        name = _name(entry.get("name"), "database")
        databases.append(
            DatabaseEntry(
                name,
                _word(_text(entry, "character_set", name), "character set") or "",
                _word(_text(entry, "collation", name), "collation") or "",
                _names(entry.get("tables", []), f"database {name!r}: tables"),
            )
        )
    _names([d.name for d in databases], "its header's databases")
    return DumpHeader(
        scope=scope,
        flavour=_text(data, "flavour", "its header"),
        databases=tuple(databases),
        max_allowed_packet=_packet(data.get("max_allowed_packet")),
    )


def describe(header: FileHeader) -> str:
    """What a header says its file is, for a message."""
    if header.kind == "users":
        return "the accounts"
    if header.kind == "table":
        return f"table {header.name!r} of database {header.database!r}"
    return f"the {header.kind} of database {header.database!r}"


def check_path(pathname: str, header: FileHeader) -> str:
    """Refuse a file whose path is not where its header says it belongs; return
    the snapshot directory being restored, as the header implies it.

    Plakar hands a restore each path below what is restored (``/tables/t.sql``
    when ``/databases/shop`` is restored): that part must end the path the
    header implies, segment for segment, so a file cannot say it is another
    database's table, or the accounts, than the place it was found in.  The
    part above (``/databases/shop``) must then be the same for every file of
    the restore.
    """
    expected = object_path(header.kind, header.database, header.name).split("/")
    got = pathname.split("/")
    if got[0] != "" or len(got) > len(expected) or expected[-len(got) + 1 :] != got[1:]:
        raise SnapshotError(
            f"its header says it is {describe(header)}, which a snapshot holds at "
            f"{'/'.join(expected)}"
        )
    return "/".join(expected[: len(expected) - len(got) + 1])


def footer(rows: int | None) -> bytes:
    """The last line of a table file: its row count (None when the dump's format hides it)."""
    return FOOTER_PREFIX + json.dumps({"rows": rows}).encode() + b"\n"


def read_footer(tail: bytes) -> int | None:
    """The row count in the footer at the end of ``tail``, or None."""
    start = tail.rfind(FOOTER_PREFIX)
    if start < 0:
        return None
    data = _json(tail[start + len(FOOTER_PREFIX) :])
    rows = data.get("rows") if isinstance(data, dict) else "?"
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 0):
        raise SnapshotError(f"its row-count footer says {rows!r}, not a count")
    return rows


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
