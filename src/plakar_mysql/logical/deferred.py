"""The objects a restore keeps aside until every table is in: routines, views,
events and accounts.

They are read whole (up to ``HELD_LIMIT``) as they arrive and loaded at the
end, in that order: a view may call a function, and the views of all
databases get placeholders before any is defined, so a view over a view of
another database loads whatever the order.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

from plakar_mysql.core.client import DefinerRewriter, LoadError
from plakar_mysql.logical.layout import FileHeader
from plakar_mysql.logical.rollback import routine_objects
from plakar_mysql.logical.split import DumpSplitter
from plakar_mysql.logical.target import Target, log
from plakar_mysql.logical.users import StandIns, restore_accounts


def sections(data: bytes, kinds: tuple[str, ...]) -> bytes:
    """The file ``data`` with only its ``kinds`` sections (plus its start and end)."""
    out = bytearray()
    for section, chunks in DumpSplitter(io.BytesIO(data)):
        body = b"".join(chunks)
        if section.kind in (*kinds, "preamble", "trailer"):
            out += body
    return bytes(out)


class Deferred:
    """The held files of one restore, and their loading once the tables are in."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._held: dict[tuple[str, str], tuple[FileHeader, bytes]] = {}  # (kind, database) ->
        self._users: bytes | None = None

    def hold(self, header: FileHeader, data: bytes) -> None:
        """Keep the views, routines or events file of ``header``'s database."""
        assert header.database is not None
        self._held[(header.kind, header.database)] = (header, data)

    def hold_users(self, data: bytes) -> None:
        self._users = data

    def headers(self) -> list[FileHeader]:
        """The headers of the held files."""
        return [header for header, _ in self._held.values()]

    def objects(self) -> tuple[tuple[str, str, str], ...]:
        """``(target, kind, name)`` of every view, routine and event the held files create."""
        found: list[tuple[str, str, str]] = []
        for (kind, source), (header, _) in sorted(self._held.items()):
            target = self._target.database_for(source)
            names = header.names or ()
            if kind == "routines":
                found += routine_objects(target, names)
            elif kind in ("views", "events"):
                found += [(target, kind[:-1].upper(), name) for name in names]
        return tuple(found)

    def _files(self, kind: str) -> Iterator[tuple[str, bytes]]:
        for (held_kind, source), (_, data) in sorted(self._held.items()):
            if held_kind == kind:
                yield source, data

    def load_code(self) -> None:
        """Routines, then view placeholders and views, then events."""
        for source, data in self._files("routines"):
            self._load("routines", source, data)
        views = list(self._files("views"))
        for phase, kinds in (("view placeholders", ("view",)), ("views", ("final_view",))):
            for source, data in views:
                self._load(phase, source, sections(data, kinds))
        for source, data in self._files("events"):
            self._load("events", source, data)

    def _load(self, what: str, source: str, data: bytes) -> None:
        target = self._target.database_for(source)
        log(f"loading {what} of {target!r}")
        chunks: Iterable[bytes] = [data]
        if self._target.config.definer == "current":
            chunks = DefinerRewriter()(chunks)
        try:
            ignored = self._target.client().load(f"{what} of {target!r}", target, chunks=chunks)
        except LoadError as exc:
            raise self._target.load_error(exc, [target]) from None
        if ignored:
            log(f"{what} of {target!r}: errors ignored (force=true): {ignored}")

    def load_users(self, in_snapshot: bool) -> None:
        """The accounts, if held and ``users=true``; ``in_snapshot``: the catalog
        says the snapshot holds them (if they were not restored, it is said)."""
        if self._users is None:
            if in_snapshot:
                log(
                    "the snapshot holds accounts and grants (/server/users.sql) that were not "
                    "restored; restore that file with users=true to load them"
                )
            return
        if not self._target.config.users:
            log("accounts and grants (/server/users.sql) were not restored: set users=true")
            return
        restored, _ = restore_accounts(
            self._target.connection(),
            self._users,
            overwrite=self._target.overwrite,
            log=log,
            checks=StandIns(self._target.config.connection, self._target.guard),
        )
        log(f"restored {len(restored)} account(s) and role(s) with their grants")
