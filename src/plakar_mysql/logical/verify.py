"""``verify=true``: every restored table dumped again and compared with its snapshot file.

As a table file passes by on its way to the client, its digest and its last
bytes (the row-count footer) are taken (:class:`Fingerprint`); once every
table is in, the :class:`Verifier` dumps each again from the target, rebuilds
the file as the backup wrote it, and compares digests and row counts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from plakar_mysql.core.flavour import Flavour, Tool, find_tool
from plakar_mysql.logical.dump import DumpProcess, base_arguments
from plakar_mysql.logical.layout import FileHeader, footer, session_frame
from plakar_mysql.logical.scheduler import Scheduler
from plakar_mysql.logical.split import DumpSplitter
from plakar_mysql.logical.target import RestoreError, Target, log
from plakar_mysql.logical.writer import one_newline_at_end


@dataclass
class Loaded:
    """A table loaded into the target: what verify compares."""

    header: FileHeader
    target: str
    digest: str
    rows: int | None


#: A column's ``CHARACTER SET`` spelt out before a collation of that same set.
_CHARSET_BEFORE_ITS_COLLATION = re.compile(rb" CHARACTER SET (\w+) COLLATE (\1_\w+)")
#: Where a dump's ``CREATE TABLE`` ends (its table options follow).
_CREATE_TABLE_END = b"\n) ENGINE="
#: A ``CREATE TABLE`` longer than this is compared as it is.
_CREATE_TABLE_LIMIT = 4 << 20


class TableDigest:
    """The SHA-256 of a table file as ``verify`` compares it.

    On MySQL the ``CREATE TABLE`` is compared in a canonical form.  MySQL 8.0 and
    later remember whether a column's collation was written out: the source's
    ``name VARCHAR(80)`` in a ``utf8mb4_unicode_ci`` table is dumped as ``name
    varchar(80) COLLATE utf8mb4_unicode_ci``; loaded, that column's collation is
    explicit, and the same table is dumped again as ``name varchar(80) CHARACTER
    SET utf8mb4 COLLATE utf8mb4_unicode_ci`` (found on MySQL 9.7.4: every table
    with such a column failed ``verify``).  Both spell the same column, so until
    the end of the ``CREATE TABLE`` a ``CHARACTER SET x`` right before a collation
    of ``x`` is left out; the rows after it are hashed as they are.
    """

    def __init__(self, canonical_create: bool) -> None:
        self._sha = hashlib.sha256()
        self._head: bytes | None = b"" if canonical_create else None

    def update(self, data: bytes) -> None:
        if self._head is None:
            self._sha.update(data)
            return
        self._head += data
        if _CREATE_TABLE_END in self._head or len(self._head) > _CREATE_TABLE_LIMIT:
            self._hash_head()

    def _hash_head(self) -> None:
        head, self._head = self._head or b"", None
        end = head.find(_CREATE_TABLE_END)
        if end < 0:
            end = 0 if len(head) > _CREATE_TABLE_LIMIT else len(head)
        self._sha.update(_CHARSET_BEFORE_ITS_COLLATION.sub(rb" COLLATE \2", head[:end]))
        self._sha.update(head[end:])

    def hexdigest(self) -> str:
        if self._head is not None:
            self._hash_head()
        return self._sha.hexdigest()


class Fingerprint:
    """The digest of a table file (for ``verify``, see :class:`TableDigest`) and
    its last bytes (the row-count footer), taken as the file passes by."""

    def __init__(self, digest: TableDigest | None) -> None:
        self.digest = digest
        self.tail = b""

    def __call__(self, blocks: Iterable[bytes]) -> Iterator[bytes]:
        for block in blocks:
            if self.digest is not None:
                self.digest.update(block)
            self.tail = (self.tail + block[-4096:])[-4096:]
            yield block


def table_digest(flavour: Flavour) -> TableDigest:
    """A digest for ``verify``, canonical as the target's ``flavour`` needs."""
    return TableDigest(canonical_create=flavour is Flavour.MYSQL)


class Verifier:
    """Compares the restored tables with their snapshot files, in the loader threads."""

    def __init__(self, target: Target, scheduler: Scheduler, *, compare_definitions: bool) -> None:
        self._target = target
        self._scheduler = scheduler
        # definer=current changes the triggers' definers on purpose: rows only then.
        self._compare_definitions = compare_definitions

    def verify(self, loaded: list[Loaded]) -> None:
        """Dump each of ``loaded`` again and compare it with its snapshot file."""
        flavour = self._target.server.flavour
        tool = find_tool(flavour.dump_names, flavour, self._target.config.connection.bin_dir)
        failures = [
            problem
            for problem in self._scheduler.map(lambda one: self._verify_one(tool, one), loaded)
            if problem
        ]
        if failures:
            raise RestoreError(f"verify failed: {'; '.join(failures)}")
        log(f"verified {len(loaded)} table(s): each matches its snapshot file")

    def _verify_one(self, tool: Tool, loaded: Loaded) -> str | None:
        header = loaded.header
        assert header.name is not None
        label = f"{loaded.target}.{header.name}"
        args = [
            *base_arguments(),
            "--single-transaction",
            "--skip-routines",
            "--skip-events",
            "--no-tablespaces",
        ]
        if header.hex_blob:
            args.append("--hex-blob")  # dumped again as the snapshot was
        if tool.flavour is Flavour.MARIADB:
            args.append("--dump-history")
        else:
            args += ["--column-statistics=0", "--set-gtid-purged=OFF"]
        args += ["--", loaded.target, header.name]
        digest = table_digest(tool.flavour)  # the server's: find_tool checks it
        rows: int | None = None
        with DumpProcess(tool, args, self._target.config.connection) as dump:
            splitter = DumpSplitter(dump.stream())
            frame = (b"", b"")
            for section, chunks in splitter:
                if section.kind == "preamble":
                    frame = session_frame(b"".join(chunks))
                elif section.kind == "table":
                    digest.update(header.encode() + frame[0])
                    for chunk in one_newline_at_end(chunks):
                        digest.update(chunk)
                    rows = splitter.rows if loaded.rows is not None else None
                    digest.update(frame[1] + footer(rows))
                else:
                    for _ in chunks:
                        pass
            dump.finish()
        if rows != loaded.rows:
            return f"{label} has {rows} rows, the snapshot {loaded.rows}"
        if self._compare_definitions and digest.hexdigest() != loaded.digest:
            return f"{label} differs from its snapshot file"
        return None
