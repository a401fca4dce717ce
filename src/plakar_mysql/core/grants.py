"""What the current session may do, as the server's own ``SHOW GRANTS`` says.

``information_schema.USER_PRIVILEGES`` and its siblings list only the rows of
the account itself: privileges held through an active role (and the roles it
holds in turn) or granted ``TO PUBLIC`` (MariaDB 10.11) are missing, so a check
built on them refuses accounts the server would let through.  ``SHOW GRANTS``
without ``FOR`` lists the account's grants, those of its enabled roles and
MariaDB's ``PUBLIC`` grants: the privileges that really apply to this session.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

ALL = "ALL PRIVILEGES"

#: Privileges that another one implies (MariaDB keeps SUPER's old powers for these).
_IMPLIED = {
    "BINLOG MONITOR": ("SUPER", "REPLICATION CLIENT"),
    "REPLICATION CLIENT": ("BINLOG MONITOR",),
    "REPLICATION SLAVE": ("REPLICATION REPLICA",),
}

_IDENTIFIER = r"(?:`(?:[^`]|``)*`|\*)"
_OBJECT = re.compile(
    rf"(?:(?:PROCEDURE|FUNCTION|PACKAGE BODY|PACKAGE)\s+)?({_IDENTIFIER})\.({_IDENTIFIER})"
)


@dataclass(frozen=True)
class Grant:
    """One ``GRANT privileges ON database.table`` line; ``*`` for every one."""

    privileges: frozenset[str]
    database: str
    table: str
    routine: bool = False


def _unquote(text: str) -> str:
    return "*" if text == "*" else text[1:-1].replace("``", "`")


def _top_level(text: str) -> Iterator[tuple[int, str, bool]]:
    """Each character of ``text`` with its index, and whether it stands outside
    backquotes and parentheses (the state after that character)."""
    depth, quoted = 0, False
    for index, char in enumerate(text):
        if char == "`":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        yield index, char, depth == 0 and not quoted


def _split_privileges(text: str) -> frozenset[str]:
    """``SELECT (`a`, `b`), INSERT`` as ``{"SELECT", "INSERT"}``: column lists dropped."""
    names: list[str] = []
    current: list[str] = []
    for _, char, top in _top_level(text):
        if top and char == ",":
            names.append("".join(current))
            current = []
        elif top and char not in "()`":
            current.append(char)
    names.append("".join(current))
    return frozenset(" ".join(name.split()).upper() for name in names if name.strip())


def _privileges_end(line: str) -> int:
    """Where `` ON `` ends the privilege list (outside quotes and parentheses), or -1."""
    for index, _, top in _top_level(line):
        if top and line.startswith(" ON ", index):
            return index
    return -1


def parse_grant(line: str) -> Grant | None:
    """One line of ``SHOW GRANTS``; None for role grants, ``PROXY`` and the like."""
    if not line.startswith("GRANT "):
        return None
    end = _privileges_end(line)
    if end < 0:
        return None  # GRANT `role` TO ...
    match = _OBJECT.match(line, end + len(" ON "))
    if match is None:
        return None
    routine = not line.startswith(("`", "*"), end + len(" ON "))
    return Grant(
        _split_privileges(line[len("GRANT ") : end]),
        _unquote(match.group(1)),
        _unquote(match.group(2)),
        routine,
    )


def _like(pattern: str, name: str) -> bool:
    """SQL ``LIKE`` as database grants use it: ``_`` and ``%`` wild, ``\\`` escapes."""
    regex, escaped = [], False
    for char in pattern:
        if escaped:
            regex.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            regex.append(".*")
        elif char == "_":
            regex.append(".")
        else:
            regex.append(re.escape(char))
    return re.fullmatch("".join(regex), name, re.DOTALL) is not None


@dataclass(frozen=True)
class Grants:
    """The grants that apply to a session; ask :meth:`has` about one privilege."""

    grants: tuple[Grant, ...]

    @classmethod
    def parse(cls, lines: Iterable[str]) -> Grants:
        return cls(tuple(g for g in map(parse_grant, lines) if g is not None))

    def _holds(self, grant: Grant, privilege: str) -> bool:
        names = {privilege, *_IMPLIED.get(privilege, ())}
        return bool(grant.privileges & names) or ALL in grant.privileges

    def has(self, privilege: str, database: str | None = None, *, any_table: bool = False) -> bool:
        """Whether ``privilege`` is held globally, or on ``database`` (database grants
        are patterns), or, with ``any_table``, on some table of it."""
        for grant in self.grants:
            if grant.routine or not self._holds(grant, privilege):
                continue
            if grant.database == "*":
                return True
            if database is None:
                continue
            if grant.table == "*" and _like(grant.database, database):
                return True
            if any_table and grant.database == database:
                return True
        return False

    def lacking(self, privileges: Iterable[str], database: str | None = None) -> list[str]:
        """Those of ``privileges`` not held (globally, or on ``database``)."""
        return [name for name in privileges if not self.has(name, database)]


def session_grants(db: Any) -> Grants:
    """``SHOW GRANTS`` of the session ``db`` (a PyMySQL connection)."""
    with db.cursor() as cursor:
        cursor.execute("SHOW GRANTS")
        return Grants.parse(str(row[0]) for row in cursor.fetchall())


def consistent_point_lacking(grants: Grants, *, log_bin: bool, gtid_mode: bool) -> list[str]:
    """What Oracle's ``mysqldump`` needs, beyond reading, to take its consistent point.

    From 8.0.32 on, ``--single-transaction`` with ``--source-data`` (written when
    the server keeps a binary log) or with GTIDs (``--set-gtid-purged``)
    opens the transaction under ``FLUSH TABLES WITH READ LOCK``, which takes
    ``RELOAD`` (or ``FLUSH_TABLES``), and reads the point with ``SHOW BINARY LOG
    STATUS``, which takes ``REPLICATION CLIENT``.  Without them the tool stops
    after its first statements; measured on MySQL 9.7.4 (docs/security.md)."""
    lacking: list[str] = []
    if (log_bin or gtid_mode) and not (grants.has("RELOAD") or grants.has("FLUSH_TABLES")):
        lacking.append(
            "RELOAD ON *.* (mysqldump takes FLUSH TABLES WITH READ LOCK for the dump's "
            "binary-log point)"
        )
    if log_bin and not (grants.has("REPLICATION CLIENT") or grants.has("SUPER")):
        lacking.append(
            "REPLICATION CLIENT ON *.* (mysqldump reads the binary-log point with "
            "SHOW BINARY LOG STATUS)"
        )
    return lacking
