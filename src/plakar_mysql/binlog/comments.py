"""Names are data: keep every comment line ``mariadb-binlog`` writes a comment.

Before each table-map event the tool writes a comment line naming the table,
``#... Table_map: `db`.`table` mapped to number 42``, with the names as they
are: a database or table named with a line break ends that comment in the
middle of the name, and the client runs the rest of the name, and every line
up to the next backtick, as SQL (``ERROR 1064 ... near 'b`.`a'``).  Every
other name the tool writes is inside a statement, where a line break is data
(``use `a<LF>b```, ``INSERT INTO `a<LF>b```), or in lines it starts with ``#Q>``
one by one.

The scanner decodes each table map the replay keeps (its names and table id)
before the tool sees it, and only when a name holds a line break does it ask
for a fix here: the exact text the tool will write for it, found in the SQL
when it comes, gets ``#`` after each of its line breaks.  The SQL of every
other event is passed on untouched, with no work per line or per row.
"""

from __future__ import annotations

from collections import deque

_HEADER_LINE = 4096  # more than the comment's start, before the names, ever takes


def _quoted(name: bytes) -> bytes:
    """A name as the tool writes it in a comment (``%`s``: backticks, doubled inside)."""
    return b"`" + name.replace(b"`", b"``") + b"`"


class Comments:
    """The table-map comments still to fix, in the order the tool writes them.

    :meth:`expect` is called by the thread that feeds the tool, before the
    event's bytes reach it; :meth:`fix` by the thread that reads its SQL (a
    deque's append and popleft are safe between two threads)."""

    def __init__(self, database: str | None = None) -> None:
        self._pending: deque[tuple[bytes, bytes]] = deque()  # (as written, fixed)
        # The tool's --database filter: it writes no other database's table maps.
        self._only = None if database is None else database.encode()

    def expect(self, database: bytes, table: bytes, table_id: int) -> None:
        """A kept table map whose names are these; a no-op unless one holds a line break."""
        if b"\n" not in database and b"\n" not in table:
            return
        if self._only is not None and database != self._only:
            return
        written = (
            b"\tTable_map: "
            + _quoted(database)
            + b"."
            + _quoted(table)
            + b" mapped to number "
            + str(table_id).encode()
        )
        self._pending.append((written, written.replace(b"\n", b"\n#")))

    def __bool__(self) -> bool:
        return bool(self._pending)

    def fix(self, text: bytes) -> tuple[bytes, bytes]:
        """``text`` (whole lines of the tool's SQL) with the comments expected in it
        fixed, and the tail to hold back until the next lines come: from the start
        of a comment that began but is not whole yet."""
        at = 0
        while self._pending:
            written, fixed = self._pending[0]
            found = text.find(written, at)
            if found < 0:
                first = text.find(written.split(b"\n", 1)[0], at)
                if first < 0:
                    return text, b""  # its event's SQL has not come yet
                cut = text.rfind(b"\n", 0, first) + 1
                if len(text) - cut <= len(written) + _HEADER_LINE:
                    return text[:cut], text[cut:]
                self._pending.popleft()  # not the tool's comment after all: leave it
                continue
            self._pending.popleft()
            text = text[:found] + fixed + text[found + len(written) :]
            at = found + len(fixed)
        return text, b""
