"""One table's DDL at a time on MySQL targets: what keeps parallel loads from deadlocking.

MySQL 8.0 and later lock, in their metadata locks, the tables a ``CREATE TABLE``
or ``DROP TABLE`` is related to by foreign keys: the parents its keys name and
the children that already reference it, exclusively, after it holds its own
table's lock.  Two clients creating related tables at the same time (``store``
and ``staff`` reference each other; ``rental`` and ``payment`` reference
``staff``) can each hold one lock and wait for the other's: the server sees the
cycle and fails one ``CREATE TABLE`` with ``ERROR 1213 Deadlock found`` (measured
on MySQL 9.7.4: 16 of 30 parallel loads of a Sakila-like database failed so,
every time in a ``CREATE TABLE``).  ``foreign_key_checks = 0`` does not change
that, and ``LOCK TABLES t WRITE`` (which every dump writes before a table's
rows) also locks every table related to ``t`` by a key, checks or not.
MariaDB takes neither lock.

So on a MySQL target each table file is rewritten as it streams to its client:

* its head (up to the rows: ``DROP TABLE``, ``CREATE TABLE``) runs under a
  user-level lock of the restore (``GET_LOCK``), released where the rows
  start: the tables' DDL runs one at a time, while their rows load in
  parallel;
* the ``LOCK TABLES ... WRITE`` before the rows and the ``UNLOCK TABLES`` after
  them are left out: an ``INSERT`` with the checks off locks its own table
  only, so nothing a load holds is waited for by another's DDL.

The head is lexed statement by statement (quotes, comments, ``DELIMITER``), so
a ``LOCK TABLES`` inside a quoted default or comment is not taken for one; the
rows are never examined: the ``UNLOCK TABLES`` line is found with one search,
since a dump writes no line break inside a value.  The lock is the session's:
it ends with the client, however the client ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from plakar_mysql.logical.split import _statement_end

#: A head longer than this is not a dump's: the rest streams as it is.
_HEAD_LIMIT = 16 << 20
_UNLOCK = b"UNLOCK TABLES;\n"


def _sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class DdlSerializer:
    """Rewrites one table file: its DDL under the lock ``name`` (waited for at most
    ``wait`` seconds), its ``LOCK TABLES``/``UNLOCK TABLES`` left out (see the module)."""

    def __init__(self, name: str, wait: int) -> None:
        self._acquire = f"DO GET_LOCK({_sql_string(name)}, {int(wait)});\n".encode()
        self._release = f"DO RELEASE_LOCK({_sql_string(name)});\n".encode()

    def __call__(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        source = iter(chunks)
        yield self._acquire
        head = bytearray()
        pos = 0  # where the next line of the head starts
        delimiter = b";"
        state: list[bytes | None] = [None]
        in_statement = False
        for chunk in source:
            head += chunk
            while (end := head.find(b"\n", pos)) >= 0:
                line = bytes(head[pos : end + 1])
                stripped = line.strip()
                if not in_statement:
                    if stripped.startswith(b"LOCK TABLES ") and stripped.endswith(b";"):
                        yield bytes(head[:pos]) + self._release
                        yield from self._without_unlock(head[end + 1 :], source)
                        return
                    if stripped.startswith((b"INSERT", b"DELIMITER", b"/*!50003")):
                        yield bytes(head[:pos]) + self._release + bytes(head[pos:])
                        yield from source
                        return
                    if stripped and not stripped.startswith((b"--", b"#")):
                        in_statement = True
                if in_statement and _statement_end(line.rstrip(b"\r\n"), delimiter, state):
                    in_statement = False
                pos = end + 1
            if len(head) > _HEAD_LIMIT:
                break
        yield bytes(head) + self._release
        yield from source

    @staticmethod
    def _without_unlock(start: bytes | bytearray, source: Iterator[bytes]) -> Iterator[bytes]:
        """``start`` and then ``source`` without the first ``UNLOCK TABLES;`` line."""
        pending = bytearray(b"\n") + start  # the line after LOCK TABLES starts a line
        skip = 1
        keep = len(_UNLOCK)
        while True:
            found = pending.find(b"\n" + _UNLOCK)
            if found >= 0:
                yield bytes(pending[skip : found + 1])
                yield bytes(pending[found + 1 + len(_UNLOCK) :])
                yield from source
                return
            chunk = next(source, None)
            if chunk is None:
                yield bytes(pending[skip:])
                return
            if len(pending) > keep + skip:
                yield bytes(pending[skip:-keep])
                del pending[:-keep]
                skip = 0
            pending += chunk
