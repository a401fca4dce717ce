"""Where and how each table of a per-object restore loads.

With ``overwrite=true`` (or, without it, when the account may make them) the
tables load into shadow databases and replace the target's all at once when
every one has loaded (:mod:`plakar_mysql.logical.shadow`): a restore that fails
or is cancelled leaves the target as it was.  Otherwise they load straight
into the target, and what they create is undone if the restore stops.  Each
table file goes to a loader of the :class:`~plakar_mysql.logical.scheduler.Scheduler`
(with ``jobs=1`` it streams straight into the client).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import IO

from kloset_sdk.records import Content
from plakar_mysql.core.client import DefinerRewriter, LoadError, TriggerRewriter, blocks
from plakar_mysql.core.flavour import Flavour
from plakar_mysql.logical.ddl_lock import DdlSerializer
from plakar_mysql.logical.layout import FileHeader, read_footer
from plakar_mysql.logical.preflight import may_shadow
from plakar_mysql.logical.scheduler import Scheduler
from plakar_mysql.logical.shadow import Shadow, SwapError, drop_leftovers
from plakar_mysql.logical.target import RestoreError, Target, log
from plakar_mysql.logical.verify import Fingerprint, Loaded, table_digest

#: What the start of a table file says when it is a sequence or its default uses one.
_SEQUENCE_MARKS = (
    b"-- sequence structure for",
    b"create sequence",
    b" sequence=1",
    b"nextval(",
    b"next value for",
    b"lastval(",
)

_Rewriter = Callable[[Iterable[bytes]], Iterator[bytes]]


def is_or_uses_sequence(start: bytes) -> bool:
    """Whether the table file beginning with ``start`` (its definition comes before
    its rows) creates a sequence or a table whose definition names one."""
    definition = start.split(b"\nINSERT INTO ", 1)[0].lower()
    return any(mark in definition for mark in _SEQUENCE_MARKS)


class Tables:
    """The tables of one restore: their databases, shadows and loads."""

    def __init__(self, target: Target, scheduler: Scheduler, *, verify: bool) -> None:
        self._target = target
        self._scheduler = scheduler
        self._verify = verify
        self._definer_current = target.config.definer == "current"
        # Whether the tables load into shadow databases (always with overwrite;
        # otherwise when the account may make them): decided once connected.
        self._atomic: bool | None = None
        self._shadow: Shadow | None = None
        # Per shadow database: the qualifiers its triggers were typed with.
        self._qualifiers: dict[str, dict[str, tuple[str, str]]] = {}
        self.loaded: list[Loaded] = []
        # Parallel loads into MySQL run their tables' DDL one at a time, under this
        # user-level lock (see plakar_mysql.logical.ddl_lock).
        self._ddl_lock = f"plakar_ddl_{uuid.uuid4().hex}"

    # -- where they go ---------------------------------------------------------------

    def shadow(self) -> Shadow:
        """The shadow databases of an overwrite restore (leftovers of killed ones dropped)."""
        if self._shadow is None:
            db = self._target.connection()
            drop_leftovers(db, log)
            self._shadow = Shadow(db, log, self._target.lock_wait, self._target.rollback)
        return self._shadow

    def atomic(self) -> bool:
        """Whether the tables load into shadow databases and are renamed into the
        target at the end: always with ``overwrite``, and otherwise when the account
        may make them (else they load straight into the target, and it is said)."""
        if self._atomic is None:
            self._atomic = self._target.overwrite or may_shadow(self._target.connection())
            if not self._atomic:
                log(
                    "loading straight into the target: this account may not create the "
                    "plakar_restore_% shadow databases, so other sessions see the tables fill "
                    "(an interrupted or failed restore drops them again); GRANT ALL PRIVILEGES "
                    "ON `plakar\\_restore\\_%`.* to load into a shadow and rename at the end"
                )
        return self._atomic

    def ensure_database(self, source: str, options: str) -> str:
        """The target database of ``source``, made sure of: registered with the
        shadow (created at the swap, so that a failed restore creates nothing),
        found, or created now with ``options``."""
        target = self._target.database_for(source)
        create_db = self._target.config.create_db
        if self.atomic() and create_db:
            self.shadow().register(target, options)
            return target
        if self._target.database_exists(target):
            return target
        if not create_db:
            raise RestoreError(f"database {target!r} does not exist and create_db=false")
        self._create_now(target, options)
        return target

    def _create_now(self, target: str, options: str) -> None:
        """``target`` created now if missing (a shadowed restore creates it at the swap)."""
        if self._target.database_exists(target):
            return
        self._target.note_new(made=(target,))
        self._target.create_database(target, options)
        log(f"created database {target!r}")

    def _into(
        self, header: FileHeader, first: bytes, options: str, known: tuple[str, ...] | None
    ) -> str:
        """Where the table of ``header`` loads (its target database or a shadow):
        what it creates straight in the target is noted to be undone."""
        assert header.database is not None and header.name is not None
        target = self.ensure_database(header.database, options)
        if self.atomic() and not (not self._target.overwrite and is_or_uses_sequence(first)):
            return self.shadow().database_for(target, options)
        if self.atomic():
            # A table's default names its sequence with the target's name: from a
            # shadow it would name a sequence that is not there yet.  Both load
            # straight into the target (undone like the rest if the restore stops).
            log(
                f"loading {target}.{header.name} straight into {target!r}: a sequence, or a "
                "table whose default uses one, cannot be loaded into a shadow database"
            )
            self._create_now(target, options)
            self._target.note_new(new_tables=((target, header.name),))
        else:
            # All the database's tables at once (each checked absent): the undo is
            # registered before any client starts, so the guardian kills the
            # clients (newer) before it drops what they load.
            names = known if known is not None else (header.name,)
            self._target.note_new(new_tables=tuple((target, n) for n in (*names, header.name)))
        return target

    # -- loading ---------------------------------------------------------------------

    def load(
        self,
        header: FileHeader,
        first: bytes,
        stream: Content,
        *,
        options: str,
        known: tuple[str, ...] | None,
    ) -> None:
        """Load the table file of ``header`` (``first``, then ``stream``); its
        database is created with ``options``; ``known``: every table of that
        database, if its inventory is known."""
        assert header.database is not None and header.name is not None
        into = self._into(header, first, options, known)
        target = self._target.database_for(header.database)
        self._target.fit_packet(header.max_allowed_packet)
        label = f"{target}.{header.name}"
        digest = table_digest(self._target.server.flavour) if self._verify else None
        fingerprint = Fingerprint(digest)
        data = fingerprint(blocks(stream, first))
        self._target.client()  # made here, not by the loader threads at once
        if self._scheduler.jobs == 1:
            self._load(header, target, label, data, fingerprint, into=into)
            return
        self._scheduler.submit(
            data,
            lambda spool: self._load(header, target, label, spool, fingerprint, into=into),
        )

    def _rewriters(self, header: FileHeader, target: str, into: str) -> list[_Rewriter]:
        rewriters: list[_Rewriter] = []
        if self._scheduler.jobs > 1 and self._target.server.flavour is Flavour.MYSQL:
            rewriters.append(DdlSerializer(self._ddl_lock, self._target.lock_wait))
        if self._definer_current:
            rewriters.append(DefinerRewriter())
        if into != header.database:
            # A shadow or another name.  Into a shadow of the same name, what is
            # dropped is put back when the trigger is created in the target.
            same_name = target == header.database
            rewriters.append(
                TriggerRewriter(self._qualifiers.setdefault(into, {}) if same_name else None)
            )
        return rewriters

    def _load(
        self,
        header: FileHeader,
        target: str,
        label: str,
        source: IO[bytes] | Iterable[bytes],
        fingerprint: Fingerprint,
        *,
        into: str,
    ) -> None:
        """Load one table file into ``into`` (``target`` or its shadow)."""
        log(f"loading table {label}")
        client = self._target.client()
        what = f"table {label}"
        rewriters = self._rewriters(header, target, into)
        try:
            if rewriters:
                chunks = blocks(source) if isinstance(source, io.IOBase) else source
                for rewrite in rewriters:
                    chunks = rewrite(chunks)
                ignored = client.load(what, into, chunks=chunks)
            elif isinstance(source, io.IOBase):
                ignored = client.load(what, into, file=source)  # type: ignore[arg-type]
            else:
                ignored = client.load(what, into, chunks=source)
        except LoadError as exc:
            raise self._target.load_error(exc, [target]) from None
        if ignored:
            log(f"{label}: errors ignored (force=true): {ignored}")
        digest = fingerprint.digest.hexdigest() if fingerprint.digest else ""
        self.loaded.append(Loaded(header, target, digest, read_footer(fingerprint.tail)))
        log(f"loaded table {label} ({self._scheduler.progress.finished()})")

    # -- the end -----------------------------------------------------------------------

    def swap(self, cancelled: Callable[[], bool] | None) -> None:
        """Rename the shadows' tables into the target (if they loaded into shadows)."""
        if self._shadow is None:
            return
        # Into new tables: undone after the rename too, until the restore ends.
        self._target.note_new(
            new_tables=tuple((t.target, t.header.name or "") for t in self.loaded)
        )
        try:
            self._shadow.swap(self._qualifiers, cancelled)
        except SwapError as exc:
            raise RestoreError(str(exc)) from None

    def discard(self) -> None:
        """Drop the shadows unless swapped in (a failed or cancelled restore
        leaves the target untouched)."""
        if self._shadow is not None and not self._shadow.swapped:
            self._shadow.discard()
        self._shadow = None
