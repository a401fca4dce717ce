"""MariaDB GTID positions: ``domain-server-sequence`` triples, one per domain.

A position such as ``0-1-57,1-2-9`` says, per replication domain, the last
transaction applied.  Only the domain and the sequence number order
transactions; the server id tells who wrote one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from plakar_mysql.core.errors import PlakarMySQLError

_GTID = re.compile(r"^(\d+)-(\d+)-(\d+)$")


class GtidError(PlakarMySQLError, ValueError):
    """A malformed GTID or position; one line for the user."""


@dataclass(frozen=True, order=True)
class Gtid:
    domain: int
    server: int
    seq: int

    def __str__(self) -> str:
        return f"{self.domain}-{self.server}-{self.seq}"

    @classmethod
    def parse(cls, text: str) -> Gtid:
        found = _GTID.match(text.strip())
        if not found:
            raise GtidError(f"{text!r} is not a GTID (domain-server-sequence, e.g. 0-1-57)")
        return cls(*(int(part) for part in found.groups()))


class Position:
    """A GTID position: the last transaction of each domain (an immutable mapping)."""

    def __init__(self, gtids: Iterable[Gtid] = ()) -> None:
        last: dict[int, Gtid] = {}
        for gtid in gtids:
            if gtid.domain not in last or gtid.seq > last[gtid.domain].seq:
                last[gtid.domain] = gtid
        self._last: Mapping[int, Gtid] = last

    @classmethod
    def parse(cls, text: str) -> Position:
        """``0-1-57,1-2-9`` (spaces and newlines allowed, as the server prints them)."""
        items = [item for item in re.split(r"[\s,]+", text.strip()) if item]
        gtids = [Gtid.parse(item) for item in items]
        if len({g.domain for g in gtids}) != len(gtids):
            raise GtidError(f"{text!r} names a domain twice")
        return cls(gtids)

    def __str__(self) -> str:
        return ",".join(str(self._last[d]) for d in sorted(self._last))

    def __repr__(self) -> str:
        return f"Position({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Position) and dict(self._last) == dict(other._last)

    def __hash__(self) -> int:
        return hash(str(self))

    def __bool__(self) -> bool:
        return bool(self._last)

    def seq(self, domain: int) -> int:
        """The last sequence number of ``domain`` (0: none)."""
        gtid = self._last.get(domain)
        return gtid.seq if gtid else 0

    @property
    def domains(self) -> tuple[int, ...]:
        return tuple(sorted(self._last))

    def get(self, domain: int) -> Gtid | None:
        return self._last.get(domain)

    def gtids(self) -> tuple[Gtid, ...]:
        return tuple(self._last[d] for d in sorted(self._last))

    def advanced(self, gtids: Iterable[Gtid]) -> Position:
        """This position with ``gtids`` applied after it."""
        return Position([*self.gtids(), *gtids])

    def covers(self, gtid: Gtid) -> bool:
        """Whether the transaction ``gtid`` is at or before this position."""
        return gtid.seq <= self.seq(gtid.domain)

    def ahead_of(self, other: Position) -> list[tuple[Gtid | None, Gtid]]:
        """Domains where this position is past ``other``: (other's GTID, ours)."""
        return [(other.get(g.domain), g) for g in self.gtids() if g.seq > other.seq(g.domain)]
