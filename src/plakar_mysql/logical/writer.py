"""Lay one dump stream out as snapshot files, while it streams.

:class:`SnapshotWriter` walks the sections of the dump (:mod:`plakar_mysql.logical.split`).
Each table goes to Plakar as soon as the dump reaches it, as a record whose
content is the section itself, framed by the session state it needs: the
writer waits until Plakar has read that content before it reads on, so the
dump is never copied and memory stays bounded by one block.  The small
per-database files (schema, views, routines, events), whose pieces are spread
over the dump, are assembled on the side (spilling to disk past a few MiB) and
handed over at the end, with ``/catalog.json``.
"""

from __future__ import annotations

import hashlib
import io
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import IO

from kloset_sdk import Record
from kloset_sdk.records import Content
from plakar_mysql.logical.layout import (
    CATALOG_PATH,
    USERS_PATH,
    Catalog,
    FileHeader,
    Inventory,
    Kind,
    Scope,
    footer,
    object_path,
    session_frame,
)
from plakar_mysql.logical.split import DumpSplitter, Readable, Section

_SPILL = 8 << 20
_NEWLINES = re.compile(rb"\n*")


def one_newline_at_end(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The blocks of a section, ending in exactly one newline.

    The tools write a blank line between objects but not before their closing
    statements, so the last object of a database or of the dump would
    otherwise differ by a byte from the same object elsewhere.  Blocks pass
    through as they are; only the last one with content is cut short.
    """
    last = b""  # the latest block holding more than newlines, held back
    gap: list[bytes] = []  # blocks of newlines only, seen after it
    for chunk in chunks:
        if _NEWLINES.fullmatch(chunk):
            gap.append(chunk)
            continue
        if last:
            yield last
        yield from gap
        last, gap = chunk, []
    end = len(last)
    while end and last[end - 1] == 0x0A:
        end -= 1
    if end == len(last) - 1:
        yield last  # the usual case: it ends with one newline already
    elif end:
        yield last[: end + 1] if end < len(last) else last + b"\n"
    else:
        yield b"\n"


class ChunkReader(io.RawIOBase):
    """A readable stream over an iterator of byte blocks; closing it drains the rest."""

    def __init__(self, chunks: Iterable[bytes], on_close: Callable[[], None] = lambda: None):
        super().__init__()
        self._chunks = iter(chunks)
        self._pending = b""
        self._on_close = on_close

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._pending = chunk
        if size is None or size < 0 or size >= len(self._pending):
            data, self._pending = self._pending, b""
        else:
            data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def close(self) -> None:
        if not self.closed:
            try:
                for _ in self._chunks:
                    pass
            finally:
                self._on_close()
        super().close()


def _spool() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=_SPILL)


@dataclass
class _Database:
    """What the dump showed of one database so far."""

    name: str
    schema: bytes = b""
    tables: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    placeholders: IO[bytes] = field(default_factory=_spool)
    final_views: IO[bytes] = field(default_factory=_spool)
    routines: IO[bytes] = field(default_factory=_spool)


@dataclass(frozen=True)
class SourceFacts:
    """What the writer needs to know of the source besides the dump."""

    flavour: str
    scope: Scope
    max_allowed_packet: int
    count_rows: bool  # count the rows of each table file (both tools' formats are counted)
    hex_blob: bool  # binary values dumped as 0x literals: a table file's header says so
    charsets: dict[str, tuple[str, str]]  # database -> (character set, collation)
    events: dict[str, bytes]  # database -> its events (read with SQL, not dumped)
    objects: dict[str, Inventory]  # routines, events, definers per database


class SnapshotWriter:
    """Turns a dump stream into records; see the module docstring."""

    def __init__(self, facts: SourceFacts, started: datetime) -> None:
        self.facts = facts
        self.started = started
        self._frame = (b"", b"")
        self._databases: dict[str, _Database] = {}
        self._directories: set[str] = set()
        self.files: dict[str, dict[str, str | None]] = {}
        self.rows: dict[tuple[str, str], int | None] = {}

    # -- records -----------------------------------------------------------------

    def _directories_for(self, path: str) -> Iterator[Record]:
        parts = path.split("/")[1:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/" + "/".join(parts[:depth])
            if directory not in self._directories:
                self._directories.add(directory)
                yield Record.directory(directory, self.started)

    def _file(
        self,
        path: str,
        kind: str,
        database: str | None,
        name: str | None,
        opener: Callable[[], Content],
    ) -> Iterator[Record]:
        yield from self._directories_for(path)
        self.files[path] = {"kind": kind, "database": database, "name": name}
        yield Record.file(path, opener, self.started)

    def header(self, kind: Kind, database: str | None = None, name: str | None = None) -> bytes:
        facts = self.facts
        charset, collation = facts.charsets.get(database or "", (None, None))
        inventory = self.inventory(database) if database and kind != "table" else None
        names = kind if kind in ("views", "routines", "events") else None
        return FileHeader(
            kind=kind,
            flavour=facts.flavour,
            max_allowed_packet=facts.max_allowed_packet,
            database=database,
            name=name,
            character_set=charset,
            collation=collation,
            inventory=inventory if kind == "schema" else None,
            names=getattr(inventory, names) if inventory and names else None,
            hex_blob=True if kind == "table" and facts.hex_blob else None,
        ).encode()

    def inventory(self, database: str) -> Inventory:
        """Everything a restore must check of ``database``: tables and views as
        the dump showed them, routines, events and definers as the server listed them."""
        seen = self._databases.get(database)
        charset, collation = self.facts.charsets[database]
        return replace(
            self.facts.objects.get(database) or Inventory(database, "", ""),
            character_set=charset,
            collation=collation,
            tables=tuple(seen.tables) if seen else (),
            views=tuple(seen.views) if seen else (),
        )

    # -- the dump ----------------------------------------------------------------

    def tables(self, dump: Readable) -> Iterator[Record]:
        """Yield a record per table as the dump reaches it; keep the other pieces."""
        splitter = DumpSplitter(dump, count_rows=self.facts.count_rows)
        database: _Database | None = None
        for section, raw in splitter:
            chunks = one_newline_at_end(raw)
            if section.kind == "preamble":
                self._frame = session_frame(b"".join(chunks))
            elif section.kind == "database":
                database = self._enter(section, chunks)
            elif section.kind == "table":
                assert database is not None and section.name is not None
                database.tables.append(section.name)
                yield from self._table(database.name, section, chunks, splitter)
            elif database is not None and section.kind in (
                "view",
                "final_view",
                "routines",
            ):
                if section.kind == "view" and section.name is not None:
                    database.views.append(section.name)
                target = {
                    "view": database.placeholders,
                    "final_view": database.final_views,
                    "routines": database.routines,
                }[section.kind]
                for chunk in chunks:
                    target.write(chunk)
            # The trailer (and anything before the first database) is the tool's own.

    def _enter(self, section: Section, chunks: Iterator[bytes]) -> _Database:
        """A database starts; it shows up a second time before its final views."""
        assert section.database is not None
        data = b"".join(chunks)
        known = self._databases.get(section.database)
        if known is not None:
            return known
        database = _Database(section.database, schema=data)
        self._databases[section.database] = database
        return database

    def _table(
        self, database: str, section: Section, chunks: Iterator[bytes], splitter: DumpSplitter
    ) -> Iterator[Record]:
        assert section.name is not None
        consumed = threading.Event()
        start, end = self._frame
        key = (database, section.name)

        def pieces() -> Iterator[bytes]:
            yield self.header("table", database, section.name) + start
            yield from chunks
            self.rows[key] = splitter.rows if self.facts.count_rows else None
            yield end + footer(self.rows[key])

        def parts() -> Iterator[bytes]:
            # The file's SHA-256 goes into the manifest: a drill checks each table
            # file it restores against what the backup wrote (docs/drill.md).
            digest = hashlib.sha256()
            for piece in pieces():
                digest.update(piece)
                yield piece
            self.files[path]["sha256"] = digest.hexdigest()

        path = object_path("table", database, section.name)
        yield from self._file(
            path, "table", database, section.name, lambda: ChunkReader(parts(), consumed.set)
        )
        consumed.wait()

    # -- what is held until the end ---------------------------------------------

    def held(self, users: list[bytes] | None) -> Iterator[Record]:
        """The per-database files, the users and the catalog, once the dump is complete."""
        start, end = self._frame
        for name in sorted(self._databases):
            database = self._databases[name]
            pieces: list[tuple[Kind, list[IO[bytes] | bytes]]] = [
                ("schema", [database.schema]),
                ("views", [database.placeholders, database.final_views]),
                ("routines", [database.routines]),
                ("events", [self.facts.events.get(name, b"")]),
            ]
            for kind, parts in pieces:
                if kind != "schema" and not any(_has_statements(p) for p in parts):
                    continue
                yield from self._file(
                    object_path(kind, name),
                    kind,
                    name,
                    None,
                    _joined([self.header(kind, name) + start, *parts, end]),
                )
        if users is not None:
            data = b"".join([self.header("users"), start, *users, end])
            yield from self._file(USERS_PATH, "users", None, None, lambda: io.BytesIO(data))
        catalog = Catalog(
            flavour=self.facts.flavour,
            scope=self.facts.scope,
            databases=tuple(self.inventory(name) for name in sorted(self._databases)),
            users=users is not None,
        ).encode()
        yield from self._file(CATALOG_PATH, "catalog", None, None, lambda: io.BytesIO(catalog))


def _has_statements(part: IO[bytes] | bytes) -> bool:
    """Whether a piece holds more than the tools' comments (they announce
    "Dumping events for database" even when there is none)."""
    if isinstance(part, bytes):
        part = io.BytesIO(part)
    part.seek(0)
    return any(line.strip() and not line.startswith(b"--") for line in part)


def _joined(parts: list[IO[bytes] | bytes]) -> Callable[[], Content]:
    def blocks() -> Iterator[bytes]:
        for part in parts:
            if isinstance(part, bytes):
                yield part
                continue
            part.seek(0)
            while block := part.read(1 << 20):
                yield block
            part.close()

    return lambda: ChunkReader(blocks())
