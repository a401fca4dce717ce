"""GTIDs of both flavours, and the points they make.

MariaDB: a GTID is ``domain-server-sequence``, and a :class:`Position` such as
``0-1-57,1-2-9`` says, per replication domain, the last transaction applied.
Only the domain and the sequence number order transactions; the server id
tells who wrote one.

MySQL: a GTID is ``uuid:n`` (``uuid:tag:n`` from 8.4 on), where the uuid is the
``server_uuid`` of the server that first committed it, and a :class:`GtidSet`
such as ``3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7`` holds, per uuid (and
tag), the intervals of transactions executed (``@@gtid_executed``,
``@@gtid_purged``, a binary log's ``Previous_gtids``).  A set may have holes,
so "applied" is membership, not order.

Both are :data:`Point`: the replay asks the same questions of either (which
transactions a point covers, the last one per domain or uuid, what one point
holds that another lacks).  A MySQL :class:`Gtid` has the uuid (and tag) as
its ``domain``, and the server id of the event that carried it (0 when parsed
from text).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from plakar_mysql.core.errors import PlakarMySQLError

_GTID = re.compile(r"^(\d+)-(\d+)-(\d+)$")
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_TAG = r"[A-Za-z_][A-Za-z0-9_]{0,31}"
_MYSQL_GTID = re.compile(rf"^({_UUID}(?::{_TAG})?):(\d+)$")
_MYSQL_ITEM = re.compile(rf"^({_UUID})((?::(?:{_TAG}|\d+(?:-\d+)?))*)$")
_INTERVAL = re.compile(r"^(\d+)(?:-(\d+))?$")


class GtidError(PlakarMySQLError, ValueError):
    """A malformed GTID or position; one line for the user."""


@dataclass(frozen=True, order=True)
class Gtid:
    """One transaction: MariaDB's (domain, server id, sequence number) or MySQL's
    (uuid or ``uuid:tag`` as the domain, the event's server id, number)."""

    domain: int | str
    server: int
    seq: int

    def __str__(self) -> str:
        if isinstance(self.domain, str):
            return f"{self.domain}:{self.seq}"
        return f"{self.domain}-{self.server}-{self.seq}"

    @classmethod
    def parse_mysql(cls, text: str) -> Gtid:
        """``uuid:n`` or ``uuid:tag:n``."""
        found = _MYSQL_GTID.match(text.strip())
        if not found or int(found[2]) < 1:
            raise GtidError(f"{text!r} is not a MySQL GTID (uuid:number)")
        return cls(found[1].lower(), 0, int(found[2]))

    @classmethod
    def parse(cls, text: str) -> Gtid:
        found = _GTID.match(text.strip())
        if not found:
            raise GtidError(f"{text!r} is not a GTID (domain-server-sequence, e.g. 0-1-57)")
        return cls(*(int(part) for part in found.groups()))


def domain_order(domain: int | str) -> tuple[int, int, str]:
    """A sort key: MariaDB's domains by number, MySQL's uuids by text."""
    return (1, 0, domain) if isinstance(domain, str) else (0, domain, "")


class Position:
    """A GTID position: the last transaction of each domain (an immutable mapping)."""

    def __init__(self, gtids: Iterable[Gtid] = ()) -> None:
        last: dict[int | str, Gtid] = {}
        for gtid in gtids:
            if gtid.domain not in last or gtid.seq > last[gtid.domain].seq:
                last[gtid.domain] = gtid
        self._last: Mapping[int | str, Gtid] = last

    @classmethod
    def parse(cls, text: str) -> Position:
        """``0-1-57,1-2-9`` (spaces and newlines allowed, as the server prints them)."""
        items = [item for item in re.split(r"[\s,]+", text.strip()) if item]
        gtids = [Gtid.parse(item) for item in items]
        if len({g.domain for g in gtids}) != len(gtids):
            raise GtidError(f"{text!r} names a domain twice")
        return cls(gtids)

    def __str__(self) -> str:
        return ",".join(str(self._last[d]) for d in self.domains)

    def __repr__(self) -> str:
        return f"Position({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Position) and dict(self._last) == dict(other._last)

    def __hash__(self) -> int:
        return hash(str(self))

    def __bool__(self) -> bool:
        return bool(self._last)

    def seq(self, domain: int | str) -> int:
        """The last sequence number of ``domain`` (0: none)."""
        gtid = self._last.get(domain)
        return gtid.seq if gtid else 0

    @property
    def domains(self) -> tuple[int | str, ...]:
        return tuple(sorted(self._last, key=domain_order))

    def get(self, domain: int | str) -> Gtid | None:
        return self._last.get(domain)

    def gtids(self) -> tuple[Gtid, ...]:
        return tuple(self._last[d] for d in self.domains)

    def advanced(self, gtids: Iterable[Gtid]) -> Position:
        """This position with ``gtids`` applied after it."""
        return Position([*self.gtids(), *gtids])

    def union(self, other: Point) -> Position:
        """Per domain, the later of the two."""
        return Position([*self.gtids(), *other.gtids()])

    def covers(self, gtid: Gtid) -> bool:
        """Whether the transaction ``gtid`` is at or before this position."""
        return gtid.seq <= self.seq(gtid.domain)

    def ahead_of(self, other: Point) -> list[tuple[Gtid | None, Gtid]]:
        """Domains where this position is past ``other``: (other's GTID, ours)."""
        return [(other.get(g.domain), g) for g in self.gtids() if g.seq > other.seq(g.domain)]


Interval = tuple[int, int]  # first and last transaction number, both included


def _merged(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    """Sorted, with overlapping and adjacent intervals joined."""
    out: list[Interval] = []
    for first, last in sorted(intervals):
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return tuple(out)


class GtidSet:
    """A MySQL GTID set: per uuid (or ``uuid:tag``), the intervals of transactions
    it holds (an immutable value).  Its methods answer as :class:`Position`'s do,
    a uuid standing for a domain: the "last" of a uuid is its highest number."""

    def __init__(self, intervals: Mapping[str, Iterable[Interval]] | None = None) -> None:
        sets = {key: _merged(spans) for key, spans in (intervals or {}).items()}
        self._sets: Mapping[str, tuple[Interval, ...]] = {k: v for k, v in sets.items() if v}

    @classmethod
    def parse(cls, text: str) -> GtidSet:
        """``uuid:1-5:7,uuid2:3`` (and ``uuid:tag:1-5``), spaces and newlines
        allowed, as ``@@gtid_executed`` prints them; empty text: the empty set."""
        sets: dict[str, list[Interval]] = {}
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            found = _MYSQL_ITEM.match(item)
            if not found:
                raise GtidError(f"{item!r} is not a MySQL GTID set (uuid:1-5:7)")
            key = found[1].lower()
            parts = found[2].split(":")[1:]
            if not parts or _INTERVAL.match(parts[-1]) is None:
                raise GtidError(f"{item!r} is not a MySQL GTID set: no interval after {key}")
            for part in parts:
                interval = _INTERVAL.match(part)
                if interval is None:  # a tag: the intervals after it are of uuid:tag
                    key = f"{found[1].lower()}:{part.lower()}"
                    continue
                first = int(interval[1])
                last = int(interval[2] or first)
                if first < 1 or last < first:
                    raise GtidError(f"{item!r}: {part!r} is not an interval of transactions")
                sets.setdefault(key, []).append((first, last))
        return cls(sets)

    def __str__(self) -> str:
        return ",".join(
            key + "".join(f":{a}" if a == b else f":{a}-{b}" for a, b in self._sets[key])
            for key in self.domains
        )

    def __repr__(self) -> str:
        return f"GtidSet({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GtidSet) and dict(self._sets) == dict(other._sets)

    def __hash__(self) -> int:
        return hash(str(self))

    def __bool__(self) -> bool:
        return bool(self._sets)

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(sorted(self._sets))

    def intervals(self, domain: int | str) -> tuple[Interval, ...]:
        return self._sets.get(str(domain), ())

    def seq(self, domain: int | str) -> int:
        """The highest transaction number of ``domain`` (0: none)."""
        spans = self.intervals(domain)
        return spans[-1][1] if spans else 0

    def get(self, domain: int | str) -> Gtid | None:
        seq = self.seq(domain)
        return Gtid(str(domain), 0, seq) if seq else None

    def gtids(self) -> tuple[Gtid, ...]:
        """The last transaction of each uuid."""
        return tuple(Gtid(key, 0, self._sets[key][-1][1]) for key in self.domains)

    def covers(self, gtid: Gtid) -> bool:
        """Whether the set holds the transaction ``gtid``."""
        return any(first <= gtid.seq <= last for first, last in self.intervals(gtid.domain))

    def advanced(self, gtids: Iterable[Gtid]) -> GtidSet:
        """This set with ``gtids`` added."""
        sets: dict[str, list[Interval]] = {key: list(v) for key, v in self._sets.items()}
        for gtid in gtids:
            sets.setdefault(str(gtid.domain), []).append((gtid.seq, gtid.seq))
        return GtidSet(sets)

    def union(self, other: Point) -> GtidSet:
        sets: dict[str, list[Interval]] = {key: list(v) for key, v in self._sets.items()}
        if isinstance(other, GtidSet):
            for key in other.domains:
                sets.setdefault(key, []).extend(other.intervals(key))
        else:
            for gtid in other.gtids():
                sets.setdefault(str(gtid.domain), []).append((gtid.seq, gtid.seq))
        return GtidSet(sets)

    def difference(self, other: GtidSet) -> GtidSet:
        """The transactions of this set that ``other`` lacks."""
        out: dict[str, list[Interval]] = {}
        for key, spans in self._sets.items():
            holes = other.intervals(key)
            for first, last in spans:
                at = first
                for a, b in holes:
                    if b < at or a > last:
                        continue
                    if a > at:
                        out.setdefault(key, []).append((at, a - 1))
                    at = max(at, b + 1)
                if at <= last:
                    out.setdefault(key, []).append((at, last))
        return GtidSet(out)

    def ahead_of(self, other: Point) -> list[tuple[Gtid | None, Gtid]]:
        """The uuids of which this set holds transactions that ``other`` lacks:
        (other's last GTID, the last one lacking)."""
        theirs = other if isinstance(other, GtidSet) else GtidSet().union(other)
        lacking = self.difference(theirs)
        return [(other.get(g.domain), g) for g in lacking.gtids()]


Point = Position | GtidSet
"""Where a server is: MariaDB's :class:`Position` or MySQL's :class:`GtidSet`."""


def parse_point(text: str) -> Point:
    """A MariaDB GTID position (``0-1-57``) or a MySQL GTID set (``uuid:1-57``)."""
    try:
        return Position.parse(text)
    except GtidError:
        pass
    try:
        return GtidSet.parse(text)
    except GtidError:
        raise GtidError(
            f"{text!r} is neither a MariaDB GTID position (0-1-57) nor a MySQL GTID set (uuid:1-57)"
        ) from None
