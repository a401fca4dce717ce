"""What a per-object restore accepts of a snapshot's files, before it uses them.

The catalog (or, for one database, its ``schema.sql``) says what the
snapshot holds.  From then on every file must be one it names, no object may
come twice, and before anything is swapped in or loaded from the held files
every file the catalog names must have arrived.  A snapshot is untrusted
input: a file that breaks these rules fails the restore with one line.
"""

from __future__ import annotations

from collections.abc import Iterable

from plakar_mysql.logical.layout import (
    Catalog,
    FileHeader,
    Inventory,
    Kind,
    SnapshotError,
    describe,
    object_path,
)
from plakar_mysql.logical.target import RestoreError, create_options, names


def conform(header: FileHeader, declared: Inventory) -> None:
    """``header``'s objects are among those ``declared`` for its database."""
    where = f"the inventory of {declared.database!r}"
    if header.kind == "schema":
        if header.inventory is not None and header.inventory != declared:
            raise SnapshotError(f"its inventory differs from {where} in the catalog")
        return
    if header.kind == "table":
        listed: tuple[str, ...] = declared.tables
        found: tuple[str, ...] = (header.name or "",)
    else:
        listed = getattr(declared, header.kind)
        found = header.names or ()
    extra = sorted(set(found) - set(listed))
    if extra:
        raise SnapshotError(f"{describe(header)} holds {names(extra)}, not in {where}")


class Admission:
    """The files of one restore so far, held to what the snapshot declares."""

    def __init__(self) -> None:
        self.catalog: Catalog | None = None
        self._arrived: dict[tuple[str, str | None, str | None], str] = {}  # what -> its path
        self._inventories: dict[str, Inventory] = {}  # database -> what it declares

    def declare(self, catalog: Catalog) -> None:
        """The whole snapshot is being restored: from now on every file must be
        one the catalog names, and each must arrive."""
        if self._arrived or self.catalog is not None:
            raise SnapshotError("a catalog must come first, and once")
        self.catalog = catalog

    def checked(self, database: str) -> bool:
        """Whether ``database`` was checked whole (its inventory is known)."""
        return database in self._inventories

    def first_check(self, inventory: Inventory) -> bool:
        """Record ``inventory`` as what its database holds, unless it was already:
        whether this is the first time."""
        if inventory.database in self._inventories:
            return False
        self._inventories[inventory.database] = inventory
        return True

    def inventory(self, database: str) -> Inventory | None:
        return self._inventories.get(database)

    def admit(self, path: str, header: FileHeader) -> None:
        """Refuse a second file for one object, or a file the snapshot's catalog
        (or its database's ``schema.sql``) does not name, before it is used."""
        key = (header.kind, header.database, header.name)
        if key in self._arrived:
            raise SnapshotError(
                f"a second file for {describe(header)} (the first: {self._arrived[key]})"
            )
        self._arrived[key] = path
        if header.kind == "users":
            if self.catalog is not None and not self.catalog.users:
                raise SnapshotError("the catalog says the snapshot holds no accounts")
            return
        assert header.database is not None
        declared = self._inventories.get(header.database)
        if declared is None:
            if self.catalog is not None:
                raise SnapshotError(f"{describe(header)} is not in the catalog")
            return  # a database restored without its schema.sql (yet): nothing to hold it to
        conform(header, declared)

    def check_complete(self, held: Iterable[FileHeader]) -> None:
        """Every file the catalog names has arrived, and the ``held`` files fit
        their database's inventory (those that came before its ``schema.sql``
        were not checked yet)."""
        if self.catalog is not None:
            wanted: list[tuple[Kind, str | None, str | None]] = []
            if self.catalog.users:
                wanted.append(("users", None, None))
            for inventory in self.catalog.databases:
                wanted.append(("schema", inventory.database, None))
                wanted += [("table", inventory.database, t) for t in inventory.tables]
            missing = [object_path(*key) for key in wanted if key not in self._arrived]
            if missing:
                # Nothing was restored: an overwrite swaps nothing in, a restore into
                # new objects drops what it loaded straight into the target.
                raise RestoreError(
                    f"/catalog.json names files that are not in the snapshot "
                    f"({names(missing, 3)}): the snapshot is incomplete; nothing was restored"
                )
        for header in held:
            assert header.database is not None
            declared = self._inventories.get(header.database)
            if declared is not None:
                try:
                    conform(header, declared)
                except SnapshotError as exc:
                    path = self._arrived[(header.kind, header.database, None)]
                    raise RestoreError(f"{path}: {exc}") from None

    def create_options(self, header: FileHeader) -> str:
        """What follows the name in CREATE DATABASE: the source's options."""
        assert header.database is not None
        known = self._inventories.get(header.database)
        if known is not None and known.create_options:
            return known.create_options  # character set, collation, comment: as the source's
        return create_options(header.character_set, header.collation)
