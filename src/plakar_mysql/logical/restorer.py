"""Restore a per-object snapshot: checked first, tables in parallel, the rest in order.

Plakar hands the files over one at a time, in name order: ``/catalog.json``
first, then per database ``events.sql``, ``routines.sql``, ``schema.sql``,
every table, ``views.sql``.  The :class:`Restorer` answers each as it comes,
through parts that each do one job and share the :class:`~plakar_mysql.logical.target.Target`:

* the catalog (or, for one database, ``schema.sql``; for one table, its own
  header) tells what will be written: before anything is written, the target
  is checked for every table, view, routine and event of the same name, and
  the restore is refused if one exists, unless ``overwrite=true``;
* a table is written to a private temporary file as fast as Plakar sends it
  and loaded by one of ``jobs`` clients, each on its own connection, while the
  next tables arrive (with ``jobs=1`` it streams straight into the client); a
  temporary file is taken only when a client is free, so at most ``jobs`` of
  them exist at once.  ``jobs`` (by default the number of CPUs) is capped at
  :data:`~plakar_mysql.logical.scheduler.MAX_JOBS` and by the connections the
  server has free (:mod:`~plakar_mysql.logical.scheduler`);
* with ``overwrite=true`` the tables load into shadow databases and replace
  the target's all at once when every one has loaded (:mod:`plakar_mysql.logical.shadow`):
  a restore that fails or is cancelled leaves the target as it was
  (:mod:`~plakar_mysql.logical.tables`);
* routines, views, events (and accounts) are kept aside and loaded once every
  table is in, in that order: a view may call a function, and the views of
  all databases get placeholders before any is defined, so a view over a view
  of another database loads whatever the order (:mod:`~plakar_mysql.logical.deferred`).

Every session it opens bounds its lock waits (``lock_wait_timeout``); a wait
that runs out fails the restore with the lock's holder named (:mod:`plakar_mysql.core.locks`).
No connection is shared between threads: the restore's own connection belongs
to the thread that handles Plakar's files; a load failing in a worker thread
asks who holds the lock on a short-lived connection of its own.  A
``max_allowed_packet`` raised for the snapshot's rows is put back at the end,
whether the restore succeeds, fails or is cancelled.

``verify=true`` then dumps every restored table again and compares it with the
snapshot's file and its row count (:mod:`~plakar_mysql.logical.verify`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from kloset_sdk.guard import Guard
from kloset_sdk.records import Content
from plakar_mysql.core.client import blocks
from plakar_mysql.core.option_models import LogicalRestoreOptions
from plakar_mysql.logical.admission import Admission
from plakar_mysql.logical.deferred import Deferred
from plakar_mysql.logical.layout import HELD_LIMIT, Catalog, FileHeader, Inventory, read_capped
from plakar_mysql.logical.preflight import Preflight
from plakar_mysql.logical.scheduler import MAX_JOBS, Scheduler
from plakar_mysql.logical.tables import Tables
from plakar_mysql.logical.target import RestoreError, Target
from plakar_mysql.logical.users import check_account_privileges
from plakar_mysql.logical.verify import Verifier


class Restorer:
    """Restores the files of one snapshot (format 2) as Plakar hands them over."""

    def __init__(self, config: LogicalRestoreOptions, target: str | None, guard: Guard) -> None:
        self.config = config
        jobs = config.jobs or min(os.cpu_count() or 1, MAX_JOBS)
        self.scheduler = Scheduler(jobs, guard)
        self.target = Target(config, target, guard, on_connect=self.scheduler.cap)
        self._admission = Admission()
        self._preflight = Preflight(self.target)
        self._tables = Tables(self.target, self.scheduler, verify=config.verify)
        self._deferred = Deferred(self.target)

    # -- checks before anything is written -----------------------------------------

    def catalog(self, catalog: Catalog) -> None:
        """The whole snapshot is being restored: check all of it first.  From now
        on every file must be one the catalog names, and each must arrive."""
        self._admission.declare(catalog)
        for inventory in catalog.databases:
            self.target.database_for(inventory.database)
        self._check(list(catalog.databases))
        if catalog.users and self.config.users:  # refused before anything is written
            check_account_privileges(self.target.connection(), outcome="; nothing was restored")

    def _check(self, inventories: list[Inventory], *, complete: bool = True) -> None:
        """Refuse if the target holds any object of ``inventories`` (all of a
        database's objects if ``complete``, else only those of one file)."""
        if complete:
            fresh = [i for i in inventories if self._admission.first_check(i)]
            self.scheduler.progress.total += sum(len(i.tables) for i in fresh)
        else:
            fresh = [i for i in inventories if not self._admission.checked(i.database)]
        self._preflight.check(inventories, fresh, complete=complete)

    def _ensure_database(self, header: FileHeader) -> str:
        assert header.database is not None
        return self._tables.ensure_database(header.database, self._admission.create_options(header))

    # -- files ---------------------------------------------------------------------

    def file(self, path: str, header: FileHeader, first_line: bytes, stream: Content) -> None:
        """One ``.sql`` file of the snapshot, found at ``path`` (already checked
        against its header); ``first_line`` is what was already read of it (its
        header line, and maybe more), ``stream`` the rest.  Views, routines,
        events and accounts are read whole (up to ``HELD_LIMIT``) and held."""
        self._admission.admit(path, header)
        if header.kind == "users":
            self._deferred.hold_users(read_capped(blocks(stream, first_line), HELD_LIMIT))
            return
        assert header.database is not None
        if header.kind == "schema":
            if header.inventory is not None:
                self._check([header.inventory])
            self._ensure_database(header)
            for _ in blocks(stream):
                pass
            return
        if header.kind in ("views", "routines", "events"):
            # The file's own objects, when its database was not checked whole.
            names, kind = header.names or (), header.kind
            partial = Inventory(
                header.database,
                "",
                "",
                views=names if kind == "views" else (),
                routines=names if kind == "routines" else (),
                events=names if kind == "events" else (),
            )
            self._check([partial], complete=False)
            self._deferred.hold(header, read_capped(blocks(stream, first_line), HELD_LIMIT))
            return
        if header.kind == "table":
            self._table(header, first_line, stream)
            return
        raise RestoreError(f"unknown file kind {header.kind!r}")

    def _table(self, header: FileHeader, first_line: bytes, stream: Content) -> None:
        assert header.database is not None and header.name is not None
        self.scheduler.raise_failure()
        if not self._admission.checked(header.database):
            self._preflight.check_table(header.database, header.name)
        known = self._admission.inventory(header.database)
        self._tables.load(
            header,
            first_line,
            stream,
            options=self._admission.create_options(header),
            known=known.tables if known is not None else None,
        )

    # -- the end -------------------------------------------------------------------

    def finish(self, cancelled: Callable[[], bool] | None = None) -> None:
        """Wait for the tables, then load routines, views, events and accounts; verify.
        ``cancelled`` says whether Plakar went away: then the shadow is not swapped in."""
        try:
            # Before anything is swapped in or loaded from the held files; their
            # databases are created only then (a held file is not trusted before).
            self._admission.check_complete(self._deferred.headers())
            for header in self._deferred.headers():
                self._ensure_database(header)
            self.scheduler.wait()
            if cancelled is not None and cancelled():
                raise RestoreError("the restore was cancelled: nothing was restored")
            self._tables.swap(cancelled)
            self.target.note_new(objects=self._deferred.objects())
            self._deferred.load_code()
            catalog = self._admission.catalog
            self._deferred.load_users(catalog is not None and catalog.users)
            if self.config.verify:
                definitions = self.config.definer != "current"
                verifier = Verifier(self.target, self.scheduler, compare_definitions=definitions)
                verifier.verify(self._tables.loaded)
        except BaseException:
            self.close()
            raise

    def done(self) -> None:
        """The restore is complete: nothing is undone from now on, whatever happens."""
        self.target.done()
        self.close()

    def close(self) -> None:
        """End the restore; if it did not complete, undo what may be undone (a
        restore into new objects drops them; an overwrite's swapped tables stay)."""
        self.scheduler.close()
        self._tables.discard()
        self.target.close()
