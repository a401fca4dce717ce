"""Split one dump stream into its sections, as it streams: the reader behind the
per-object snapshot layout.

Like :mod:`tarfile` read in stream mode, :class:`DumpSplitter` yields one
:class:`Section` at a time with a reader for its bytes; the reader must be read
to its end (or closed) before the next section is asked for.  Concatenating the
sections gives back the input byte for byte: nothing is added or lost.

Boundaries are the comment lines the dump tools write between objects
(``-- Table structure for table `t```, ``-- Current Database: `d```, ...), and
they count only where a statement may start: the splitter follows statements,
quotes, comments and ``DELIMITER`` changes, so a procedure body or a string
holding such a line does not cut a section.  Rows are never examined one by
one: the tools escape line breaks inside values, so an ``INSERT`` ends at the
first ``;`` that ends a line, which is found with one search over a large
buffer.  MariaDB's tools write one row per line, so the rows of a section are
counted the same way (:attr:`DumpSplitter.rows`); MySQL's write a whole
``INSERT`` on one line, whose rows are counted by :func:`rows_on_one_line`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import repeat
from typing import Literal, Protocol

import stringzilla

from plakar_mysql.core.errors import PlakarMySQLError

SectionKind = Literal[
    "preamble", "database", "table", "view", "events", "routines", "final_view", "trailer"
]

_BLOCK = 512 << 10
"""Bytes per block of a section.  Half a MiB holds the importer under 64 MiB at
1 GB (measured: 61 MiB, where 1 MiB blocks peaked at 70) for the same CPU time:
gRPC's cost per message is small next to the copies."""
_MARKERS: list[tuple[bytes, SectionKind]] = [
    (b"-- Current Database: ", "database"),
    (b"-- Table structure for table ", "table"),
    (b"-- Sequence structure for ", "table"),
    (b"-- Temporary table structure for view ", "view"),
    (b"-- Temporary view structure for view ", "view"),
    (b"-- Dumping events for database ", "events"),
    (b"-- Dumping routines for database ", "routines"),
    (b"-- Final view structure for view ", "final_view"),
    # The end of the dump: what the tools write after the last object (the
    # deferred GTID position, then the session state put back).
    (b"-- The deferred gtid setting", "trailer"),
    (b"SET @@SESSION.SQL_LOG_BIN = @MYSQLDUMP_TEMP_LOG_BIN", "trailer"),
    (b"/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;", "trailer"),
    (b"-- Dump completed", "trailer"),
]
_DELIMITER = re.compile(rb"^DELIMITER\s+(\S+)\s*$")


def _search(buf: bytearray, needle: bytes, start: int) -> int:
    """``buf.find(needle, start)``, with SIMD: the two scans every byte of
    rows goes through (the end of an ``INSERT`` and its line breaks) run at
    10-13 GB/s in StringZilla, where ``bytes.find`` and ``re`` run at 1-3 and
    ``bytes.count`` at 2.8 (measured on a generated dump)."""
    return int(stringzilla.find(buf, needle, start))


def _count(buf: bytearray, needle: bytes, start: int, end: int) -> int:
    """``buf.count(needle, start, end)``, with SIMD (see :func:`_search`)."""
    return int(stringzilla.count(buf, needle, start, end))


def rows_on_one_line(values: bytes) -> int:
    r"""The rows of an ``INSERT``'s ``VALUES`` list written on one line (``mysqldump``'s
    way), with byte operations only: no value is looked at from Python.

    Between two rows the tools write ``),(``, and nowhere else outside a quoted
    value: what is not quoted is a number, ``NULL``, a ``0x`` hex literal or an
    introducer (``_binary``).  So the rows are the ``),(`` outside quotes, plus
    one.  Inside quotes the tools escape with a backslash (``\\``, ``\'``,
    ``\n``, ``\0``, ``\Z``...), and only there: removing every ``\\`` pair first,
    left to right as the server reads them, then every ``\'``, leaves each
    remaining ``'`` a quote that opens or closes a value (a quote doubled inside
    one, under ``NO_BACKSLASH_ESCAPES``, reads as a value closed and another
    opened, with nothing between).  Splitting at the quotes, the pieces at even
    places are what lies outside them, each counted.  Each step runs in C.
    """
    if b"\\\\" in values:
        values = values.replace(b"\\\\", b"")
    if b"\\'" in values:
        values = values.replace(b"\\'", b"")
    if b"'" not in values:
        return values.count(b"),(") + 1
    return sum(map(bytes.count, values.split(b"'")[::2], repeat(b"),("))) + 1


class Readable(Protocol):
    """A dump stream: read into the splitter's own buffer, as ``io`` streams are."""

    def readinto(self, buffer: bytearray, /) -> int | None: ...


class SplitError(PlakarMySQLError, ValueError):
    """The stream is not shaped like a dump this splitter knows."""


@dataclass(frozen=True)
class Section:
    """Which part of the dump a run of bytes is; ``name`` is the object's exact name."""

    kind: SectionKind
    database: str | None
    name: str | None


def parse_quoted(text: bytes, quote: bytes) -> str | None:
    """The name in ``text`` quoted with ``quote`` (doubled inside), or None if unclosed."""
    start = text.find(quote)
    if start < 0:
        return None
    out = bytearray()
    i = start + 1
    while i < len(text):
        if text[i : i + 1] == quote:
            if text[i + 1 : i + 2] == quote:
                out += quote
                i += 2
                continue
            return out.decode("utf-8", errors="surrogateescape")
        out += text[i : i + 1]
        i += 1
    return None


def _statement_end(text: bytes, delimiter: bytes, state: list[bytes | None]) -> bool:
    """Lex ``text`` (one line) in the given state; True if the statement ends at its end.

    ``state[0]`` is the open quote or comment (``'``, ``"``, `````, ``/*``) carried
    across lines.
    """
    i, n = 0, len(text)
    open_ = state[0]
    while i < n:
        c = text[i : i + 1]
        if open_ is not None:
            if open_ == b"/*":
                end = text.find(b"*/", i)
                if end < 0:
                    i = n
                    break
                i, open_ = end + 2, None
                continue
            if c == b"\\" and open_ != b"`":
                i += 2
                continue
            if c == open_:
                if text[i + 1 : i + 2] == open_:
                    i += 2
                    continue
                open_ = None
            i += 1
            continue
        if text.startswith(delimiter, i) and not text[i + len(delimiter) :].strip():
            state[0] = None
            return True
        if c in (b"'", b'"', b"`"):
            open_ = c
        elif text.startswith(b"/*", i) and not text.startswith(b"/*!", i):
            open_ = b"/*"
            i += 1
        elif c == b"#" or (text.startswith(b"-- ", i) or text[i:].rstrip() == b"--"):
            break  # comment to the end of the line
        i += 1
    state[0] = open_
    return False


class DumpSplitter:
    """Iterate over ``(Section, reader)`` pairs of a dump stream.

    The buffer is scanned in place: a section's statements are only measured
    (their end offsets found), and a block of them leaves the buffer in one
    copy, so each byte is copied once on its way through.
    """

    def __init__(self, stream: Readable, block: int = _BLOCK, *, count_rows: bool = True) -> None:
        self._stream = stream
        self._block = block
        self._read = bytearray(block)
        self._count_rows = count_rows
        self._buf = bytearray()
        self._eof = False
        self._delimiter = b";"
        self._database: str | None = None
        self._next: tuple[Section, int] | None = None
        self.rows = 0
        """Rows in the ``INSERT`` statements of the current section (one per line)."""

    # -- buffer ---------------------------------------------------------------

    def _fill(self) -> bool:
        if self._eof:
            return False
        n = self._stream.readinto(self._read)
        if not n:
            self._eof = True
            return False
        with memoryview(self._read) as read:
            self._buf += read[:n]
        return True

    def _find(self, needle: bytes, start: int) -> int:
        """Index of ``needle`` at or after ``start``, reading on as needed; -1 at the end."""
        while (found := self._buf.find(needle, start)) < 0:
            start = max(start, len(self._buf) - len(needle) + 1)
            if not self._fill():
                return -1
        return found

    def _line_end(self, start: int = 0) -> int:
        """Index just past the next newline at or after ``start`` (or the end of input)."""
        end = self._find(b"\n", start)
        return end + 1 if end >= 0 else len(self._buf)

    def _take(self, n: int) -> bytes:
        """The first ``n`` bytes of the buffer, removed from it (one copy)."""
        with memoryview(self._buf) as view:
            data = view[:n].tobytes()
        del self._buf[:n]
        return data

    # -- sections -------------------------------------------------------------

    def _marker(self, start: int) -> tuple[Section, int] | None:
        """If a section marker starts at ``start`` (possibly after a ``--`` line),
        the section and the offset just past the marker block it starts with."""
        first = self._line_end(start)
        dashes = (
            self._buf.startswith(b"--", start, first) and not self._buf[start + 2 : first].rstrip()
        )
        offset = first if dashes else start
        end = self._line_end(offset) if dashes else first
        for prefix, kind in _MARKERS:
            if not self._buf.startswith(prefix, offset, end):
                continue
            line = bytes(self._buf[offset:end])
            if kind == "trailer":
                return Section(kind, None, None), end
            if kind in ("events", "routines"):
                # The tools print this name between single quotes without escaping
                # them; it runs to the end of the line.
                rest = line[len(prefix) :].rstrip(b"\r\n")
                quoted = rest[1:-1].decode("utf-8", errors="surrogateescape")
                return Section(kind, self._database or quoted, None), end
            name = parse_quoted(line[len(prefix) :], b"`")
            while name is None:  # a name holding a line break goes on on the next line
                longer = self._line_end(end)
                if longer == end:
                    raise SplitError(f"unterminated name in {line[:200]!r}")
                end = longer
                line = bytes(self._buf[offset:end])
                name = parse_quoted(line[len(prefix) :], b"`")
            # In a comment the tools write each line break of a name as "\n-- ",
            # so that the rest of the name cannot run as SQL; take that back.
            name = name.replace("\n-- ", "\n")
            if kind == "database":
                self._database = name
                return Section(kind, name, None), end
            return Section(kind, self._database, name), end
        return None

    def _values(self, start: int) -> int:
        """Index just past ``VALUES`` in the ``INSERT`` at ``start``.

        The table's name, and the column list some tables get, are quoted
        names, which may hold anything: line breaks, ``;``, ``VALUES``.  So
        the quoted spans are stepped over (a doubled backquote stays inside)."""
        pos = start + len(b"INSERT INTO ")
        while (values := self._find(b" VALUES", pos)) >= 0:
            quote = self._buf.find(b"`", pos, values)
            if quote < 0:
                return values + len(b" VALUES")
            pos = self._quoted_end(quote)
        return len(self._buf)

    def _quoted_end(self, quote: int) -> int:
        """Index just past the backquoted name opening at ``quote``."""
        pos = quote + 1
        while (close := self._find(b"`", pos)) >= 0:
            while close + 1 >= len(self._buf) and self._fill():
                pass
            if self._buf[close + 1 : close + 2] != b"`":
                return close + 1
            pos = close + 2
        return len(self._buf)

    def _insert(self, start: int) -> int:
        """End offset of the ``INSERT`` at ``start``.

        The tools escape line breaks inside values, so, after the quoted names,
        the statement ends at the first ``;`` that ends a line: one search, over
        bytes already in memory.  For the same reason each line after
        ``VALUES`` holds one row in MariaDB's dumps, so its rows are its line
        breaks (plus the first row, when it shares the ``VALUES`` line),
        counted in the same stretch; both scans are SIMD ones (:func:`_search`).
        A statement on one line (MySQL's tools) is counted by :func:`rows_on_one_line`.
        """
        values = self._values(start)
        first = self._line_end(values)
        if self._buf[first - 2 : first] == b";\n":
            stop = first - 2  # the whole statement is one line (MySQL's tools)
        else:
            search = first
            while (stop := _search(self._buf, b";\n", search)) < 0:
                search = max(first, len(self._buf) - 1)
                if not self._fill():
                    return len(self._buf)
        if self._count_rows and first - 2 == stop:
            with memoryview(self._buf) as view:
                self.rows += rows_on_one_line(view[values:stop].tobytes())
        elif self._count_rows:
            alone = self._buf.startswith(b"\n", values)  # no row on the VALUES line
            self.rows += _count(self._buf, b"\n", values, stop) + (0 if alone else 1)
        return stop + 2

    def _statement(self, start: int) -> int:
        """End offset of the statement (or blank, comment or DELIMITER line) at ``start``."""
        end = self._line_end(start)
        if self._delimiter == b";" and self._buf.startswith(b"INSERT INTO ", start, end):
            return self._insert(start)
        line = bytes(self._buf[start:end])
        stripped = line.strip()
        if not stripped or stripped.startswith((b"--", b"#")):
            return end
        found = _DELIMITER.match(stripped)
        if found:
            self._delimiter = found.group(1)
            return end
        state: list[bytes | None] = [None]
        while not _statement_end(line.rstrip(b"\r\n"), self._delimiter, state):
            if end >= len(self._buf) and not self._fill():
                return len(self._buf)
            begin, end = end, self._line_end(end)
            line = bytes(self._buf[begin:end])
        return end

    def __iter__(self) -> Iterator[tuple[Section, Iterator[bytes]]]:
        if not self._buf and not self._fill():
            return
        section, start = Section("preamble", None, None), 0
        marker = self._marker(0)
        if marker is not None:
            section, start = marker
        while True:
            chunks = self._section_chunks(start)
            yield section, chunks
            for _ in chunks:  # the caller may have stopped early
                pass
            if self._next is None:
                return
            section, start = self._next

    def _section_chunks(self, pos: int) -> Iterator[bytes]:
        """The current section's bytes in blocks of exactly ``block`` bytes (the
        last one shorter); it starts with the first ``pos`` bytes of the buffer
        (its marker) and stops at the next marker.

        A block may end inside a statement: its bytes are measured first, and
        only boundaries between sections matter to the reader.  Blocks of one
        size are what keeps the heap flat: a freed block fits the next one
        exactly, where blocks of whole statements (1 to 2 MiB) left holes that
        the next, larger one could not reuse (measured at 1 GB: the heap's
        median 17.5 MiB with them, 10.9 MiB with fixed blocks of 1 MiB)."""
        self._next = None
        self.rows = 0
        empty = pos == 0  # only the preamble starts without its marker
        while pos < len(self._buf) or self._fill():
            marker = self._marker(pos)
            if marker is not None and not empty:
                section, end = marker
                self._next = (section, end - pos)
                break
            pos = marker[1] if marker is not None else self._statement(pos)
            empty = False
            while pos >= self._block:
                yield self._take(self._block)
                pos -= self._block
        if pos:
            yield self._take(pos)
