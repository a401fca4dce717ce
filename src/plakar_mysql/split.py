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
counted the same way (:attr:`DumpSplitter.rows`); MySQL's write them on one
line, where they cannot be counted without parsing every value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from kloset_sdk.records import Content

SectionKind = Literal[
    "preamble", "database", "table", "view", "events", "routines", "final_view", "trailer"
]

_BLOCK = 1 << 20
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


class SplitError(ValueError):
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
    """Iterate over ``(Section, reader)`` pairs of a dump stream."""

    def __init__(self, stream: Content, block: int = _BLOCK) -> None:
        self._stream = stream
        self._block = block
        self._buf = bytearray()
        self._eof = False
        self._delimiter = b";"
        self._database: str | None = None
        self._next: tuple[Section, bytes] | None = None
        self.rows = 0
        """Rows in the ``INSERT`` statements of the current section (one per line)."""

    # -- buffer ---------------------------------------------------------------

    def _fill(self) -> bool:
        if self._eof:
            return False
        data = self._stream.read(self._block)
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def _line_end(self, start: int = 0) -> int:
        """Index just past the next newline at or after ``start`` (or the end of input)."""
        while True:
            end = self._buf.find(b"\n", start)
            if end >= 0:
                return end + 1
            start = len(self._buf)
            if not self._fill():
                return len(self._buf)

    def _take(self, n: int) -> bytes:
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    # -- sections -------------------------------------------------------------

    def _marker(self) -> tuple[Section, int] | None:
        """If a section marker starts the buffer (possibly after a ``--`` line),
        the section and the length of the marker block it starts with."""
        first = self._line_end()
        offset = first if bytes(self._buf[:first]).rstrip() == b"--" else 0
        end = self._line_end(offset)
        line = bytes(self._buf[offset:end])
        for prefix, kind in _MARKERS:
            if not line.startswith(prefix):
                continue
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

    def _statement(self) -> int:
        """Length of the statement (or blank, comment or DELIMITER line) at the start."""
        end = self._line_end()
        line = bytes(self._buf[:end])
        stripped = line.strip()
        if not stripped or stripped.startswith((b"--", b"#")):
            return end
        found = _DELIMITER.match(stripped)
        if found:
            self._delimiter = found.group(1)
            return end
        if self._delimiter == b";" and line.startswith(b"INSERT INTO "):
            start = 0
            while True:
                stop = self._buf.find(b";\n", start)
                if stop >= 0:
                    self.rows += self._buf.count(b"),\n(", 0, stop) + 1
                    return stop + 2
                start = max(0, len(self._buf) - 1)
                if not self._fill():
                    return len(self._buf)
        state: list[bytes | None] = [None]
        while not _statement_end(line.rstrip(b"\r\n"), self._delimiter, state):
            if end >= len(self._buf) and not self._fill():
                return len(self._buf)
            start, end = end, self._line_end(end)
            line = bytes(self._buf[start:end])
        return end

    def __iter__(self) -> Iterator[tuple[Section, Iterator[bytes]]]:
        if not self._buf and not self._fill():
            return
        section, pending = Section("preamble", None, None), b""
        marker = self._marker()
        if marker is not None:
            section, pending = marker[0], self._take(marker[1])
        while True:
            chunks = self._section_chunks(pending)
            yield section, chunks
            for _ in chunks:  # the caller may have stopped early
                pass
            if self._next is None:
                return
            section, pending = self._next

    def _section_chunks(self, first: bytes) -> Iterator[bytes]:
        """The current section's bytes in blocks; stops at the next marker."""
        self._next = None
        self.rows = 0
        out = bytearray(first)
        empty = not first  # only the preamble starts without its marker
        while self._buf or self._fill():
            marker = self._marker()
            if marker is not None and not empty:
                section, length = marker
                self._next = (section, self._take(length))
                break
            length = marker[1] if marker is not None else self._statement()
            out += self._take(length)
            empty = False
            if len(out) >= self._block:
                yield bytes(out)
                out.clear()
        if out:
            yield bytes(out)
