"""Physical backups of MySQL without XtraBackup: the server's own ``clone`` plugin.

MySQL 8.0.17 and later ship a ``clone`` plugin: ``CLONE LOCAL DATA DIRECTORY =
'/dir'`` makes the server itself write a consistent copy of its InnoDB data
into a new directory on its own machine.  When XtraBackup is not installed,
``mysql+bin://`` on MySQL uses it (:mod:`.clone_backup` runs the steps; this
module holds the checks, the clone itself, the hand-over of the files and the
restore's line):

1. before anything is written: the account holds ``BACKUP_ADMIN`` (and, if the
   plugin is not loaded yet, may install it: ``INSERT`` on ``mysql.plugin``),
   the server runs on this machine (the clone is written by the server, into
   *its* file system: :mod:`.locality` proves that it is ours), the backup runs
   as root or as the server's own system user (the server writes the clone as
   itself), and the temporary directory has room for the data;
2. the server clones into a private directory (``TMPDIR/plakar-mysql-clone-*``);
   if the plugin dies meanwhile, the guardian kills the clone on the server
   (``KILL QUERY``) and removes the directory;
3. the clone is finished by one private start of the server's own ``mysqld`` on
   it (:mod:`.clone_start`: no network, no grant tables, no binary log, the clone plugin only): the
   start completes what a clone leaves for the first start, reads the copy's
   point from ``performance_schema.clone_status`` (binary log file, position,
   GTID set) and shuts down cleanly, so the snapshot is a data directory
   ``mysqld`` starts on with no preparation;
4. each file is handed to Plakar under ``/datadir/...`` and removed once Plakar
   has read it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import re
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import pymysql

from kloset_sdk import Record
from kloset_sdk.guard import Guard
from kloset_sdk.records import Content
from plakar_mysql.core.errors import PlakarMySQLError
from plakar_mysql.core.grants import session_grants
from plakar_mysql.core.options import Connection
from plakar_mysql.core.server import ServerError, connect, current_user, server_errors
from plakar_mysql.physical.errors import os_error_line
from plakar_mysql.physical.manifest import DATADIR, BinlogPoint

_log = logging.getLogger(__name__)

#: ``tool.name`` in the manifest of a snapshot made by the clone plugin: the restore
#: reads it there to know that the files need no ``--prepare``.
TOOL_NAME = "mysql-clone"
PLUGIN = "clone"
SONAME = "mysql_clone.so"
PRIVILEGE = "BACKUP_ADMIN"
#: Room asked for beyond the data's size: the clone's redo and the private start's files.
MARGIN_RATIO = 0.10
MARGIN_BYTES = 64 << 20
KILL_WAIT = 60.0
#: Files handed to Plakar and not read yet, at most: Plakar reads a few at once.
WINDOW = 8
#: How long the backup waits for Plakar to read a handed file before giving up (the
#: clone, full size, is in TMPDIR meanwhile): generous, as Plakar may be slow to store.
HANDOVER_WAIT = 3600.0
_GTID_SET = re.compile(r"[0-9A-Za-z_:,\-\s]{0,65536}")  # tags (uuid:tag:1-5) too
_RUN_HERE = "run the backup on the server's machine, as root or as the server's system user"

#: Server settings the clone's files were made with, which ``mysqld`` needs to start on them.
SETTINGS = ("innodb_page_size", "innodb_data_file_path", "lower_case_table_names")
#: Where the server's own installation keeps what a private start needs.
PATHS = ("basedir", "lc_messages_dir", "character_sets_dir", "plugin_dir")


class CloneError(PlakarMySQLError, RuntimeError):
    """The clone could not be made or finished; one line for the user."""


def xtrabackup_absent(bin_dir: str | None) -> bool:
    """No ``xtrabackup`` where the backup tool is looked for: MySQL's backups use the clone."""
    path = shutil.which("xtrabackup", path=bin_dir) if bin_dir else shutil.which("xtrabackup")
    return path is None


def locality_error(exc: ServerError) -> ServerError:
    """A locality refusal, saying why it matters for the clone."""
    return ServerError(
        "the MySQL clone plugin writes its copy on the server's own machine, which must be "
        f"this one: {exc}"
    )


def query(db: Any, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
    with db.cursor() as cursor:
        cursor.execute(sql, args)
        return list(cursor.fetchall())


def plugin_status(db: Any) -> str | None:
    """``ACTIVE``, ``DISABLED``..., or None when the clone plugin is not installed."""
    found = query(
        db, "SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME = %s", (PLUGIN,)
    )
    return str(found[0][0]) if found else None


def check_privileges(db: Any) -> None:
    """``BACKUP_ADMIN`` is what ``CLONE LOCAL`` needs; refuse in one line without it."""
    if session_grants(db).lacking([PRIVILEGE]):
        raise ServerError(
            f"{current_user(db)} lacks what a MySQL clone backup needs: {PRIVILEGE} ON *.* "
            f"(GRANT {PRIVILEGE} ON *.* TO ...)"
        )


def ensure_plugin(db: Any) -> None:
    """Load the clone plugin if it is not (``INSTALL PLUGIN``, which needs ``INSERT`` on
    ``mysql.plugin``); refuse in one line, saying what to run, when it cannot be."""
    status = plugin_status(db)
    if status == "ACTIVE":
        return
    if status is not None:
        raise ServerError(
            f"the MySQL clone plugin is {status}: start the server with it enabled "
            "(remove clone=OFF, or --clone=ON)"
        )
    install = f"INSTALL PLUGIN {PLUGIN} SONAME '{SONAME}'"
    if session_grants(db).lacking(["INSERT"], "mysql"):
        raise ServerError(
            f"the MySQL clone plugin is not installed and {current_user(db)} may not install "
            f"it (INSERT ON mysql.plugin): run {install}; as an administrator once, or "
            "GRANT INSERT ON mysql.plugin TO the backup account"
        )
    try:
        query(db, install)
    except pymysql.err.MySQLError as exc:
        raise ServerError(
            f"cannot install the MySQL clone plugin ({install}): {exc.args[-1]}"
        ) from None
    _log.info(f"installed the MySQL clone plugin ({install})")


def data_bytes(datadir: str, skip: Sequence[str]) -> int:
    """The size of what the clone copies: the data directory's files, less the binary and
    relay logs (``skip``: their absolute base names) and the temporary tablespaces."""
    total = 0
    for parent, dirs, names in os.walk(datadir):
        dirs[:] = [d for d in dirs if d != "#innodb_temp"]
        for name in names:
            path = os.path.join(parent, name)
            if name == "ibtmp1" or any(path.startswith(prefix + ".") for prefix in skip if prefix):
                continue
            with contextlib.suppress(OSError):
                total += os.lstat(path).st_size
    return total


def needed_bytes(data: int) -> int:
    return data + int(data * MARGIN_RATIO) + MARGIN_BYTES


def check_room(directory: str, data: int) -> int:
    """Free bytes in ``directory``; refuse in one line if the clone would not fit."""
    try:
        info = os.statvfs(directory)
    except OSError as exc:
        raise CloneError(os_error_line("read the free space of", directory, exc)) from None
    free = info.f_bavail * info.f_frsize
    need = needed_bytes(data)
    if free < need:
        raise CloneError(
            f"the clone needs about {need / 2**20:.0f} MiB of temporary disk in {directory} "
            f"({data / 2**20:.0f} MiB of data), only {free / 2**20:.0f} MiB are free: free "
            "some, or point TMPDIR to a larger file system on the server's machine"
        )
    return free


def process_uid(pid: int) -> int:
    """The real uid of process ``pid`` (``/proc/PID/status``)."""
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
        for line in handle:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise CloneError(f"cannot tell which user runs the server process {pid}")


def prepare_directory(path: str, server_pid: int) -> None:
    """Let the server (process ``server_pid``) write into ``path``, ours and private: the
    server writes the clone as its own user, which must be ours, or we root."""
    uid = process_uid(server_pid)
    if uid != os.geteuid():
        if os.geteuid() != 0:
            raise CloneError(
                f"the server runs as uid {uid} and writes the clone as that user: {_RUN_HERE}"
            )
        os.chown(path, uid, -1)
    try:
        seen = os.stat(f"/proc/{server_pid}/root{path}")
    except OSError:
        seen = None
    if seen is None or not os.path.samestat(seen, os.stat(path)):
        raise CloneError(
            f"the server does not see {path} as this backup does (a private /tmp, a "
            "container): point TMPDIR to a directory the server shares"
        )


def kill_clone(conn: Connection, connection_id: int) -> None:
    """The guardian's action: stop the clone running on the connection ``connection_id``
    (``KILL QUERY``) and wait, bounded, until the server has left it, so that the
    directory's removal that follows is not raced by the server."""
    with contextlib.closing(connect(conn)) as db:
        # Every read bounded: the guardian must not hang on a server that does not answer.
        db._read_timeout = db._write_timeout = KILL_WAIT + 30  # type: ignore[attr-defined]
        with contextlib.suppress(pymysql.err.MySQLError):
            query(db, f"KILL QUERY {int(connection_id)}")
        deadline = time.monotonic() + KILL_WAIT
        while time.monotonic() < deadline:
            running = query(
                db,
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s "
                "AND INFO LIKE 'CLONE%%'",
                (int(connection_id),),
            )
            if not running or not running[0][0]:
                return
            time.sleep(0.2)


def run_clone(conn: Connection, directory: str, guard: Guard) -> None:
    """``CLONE LOCAL DATA DIRECTORY = directory`` on a connection of its own; the
    guardian stops it on the server if the plugin dies meanwhile."""
    with server_errors(conn.address), contextlib.closing(connect(conn)) as db:
        session_id = int(query(db, "SELECT CONNECTION_ID()")[0][0])
        action = functools.partial(kill_clone, conn, session_id)
        with guard.pending(action, "stop the MySQL clone on the server"):
            try:
                query(db, "CLONE LOCAL DATA DIRECTORY = %s", (directory,))
            except pymysql.err.MySQLError as exc:
                raise CloneError(f"the MySQL clone failed: {exc.args[-1]}") from None


def valid_gtid_set(text: str) -> bool:
    """A MySQL GTID set's characters only: fit to show from an untrusted manifest."""
    return bool(_GTID_SET.fullmatch(text))


# -- handing the files ---------------------------------------------------------------


class _Handed(io.RawIOBase):
    """A file of the clone handed to Plakar, removed from the disk once read and closed."""

    def __init__(self, path: str, on_done: Callable[[int], None]) -> None:
        super().__init__()
        self._path = path
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._read = 0
        self._on_done = on_done

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._file.readinto(buffer)
        self._read += count
        return count

    def close(self) -> None:
        if not self.closed:
            try:
                self._file.close()
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._path)
                self._on_done(self._read)
            finally:
                super().close()


class Handover:
    """The files handed to Plakar: each one's size, and those not read yet.

    Plakar takes a record's content later, from another thread (or the SDK opens
    and closes it at once when Plakar skips it): a file may be removed, and the
    clone's directory with it, only once that has happened.  At most
    :data:`WINDOW` files are outstanding at a time; :meth:`wait_all` waits for
    the last.  Each wait is bounded by ``wait`` seconds without a file read: if
    Plakar stops reading, the backup fails (and its clone is removed) instead of
    hanging."""

    def __init__(self, wait: float = HANDOVER_WAIT) -> None:
        self.files: dict[str, int] = {}
        self.read_bytes = 0
        self._outstanding = 0
        self._changed = threading.Condition()
        self._wait = wait

    def begin(self) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self._outstanding < WINDOW, self._wait):
                raise CloneError(self._stalled(f"any of the {WINDOW} files handed"))
            self._outstanding += 1

    def done(self, size: int) -> None:
        with self._changed:
            self.read_bytes += size
            self._outstanding -= 1
            self._changed.notify_all()

    def wait_all(self) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self._outstanding == 0, self._wait):
                raise CloneError(self._stalled(f"the last {self._outstanding} files handed"))

    def _stalled(self, what: str) -> str:
        return f"Plakar did not read {what} to it within {self._wait:g} s: the backup is abandoned"


def records(root: str, started: datetime, handover: Handover) -> Iterator[Record]:
    """A record for each directory and file of the clone at ``root``, under ``/datadir``;
    each file is removed once Plakar has read it.  Only regular files and directories
    are expected from the server; anything else is refused."""
    for parent, dirs, names in os.walk(root):
        dirs.sort()
        relative_dir = os.path.relpath(parent, root)
        if relative_dir != ".":
            yield Record.directory(f"{DATADIR}/{relative_dir}", started)
        for name in sorted(names):
            path = os.path.join(parent, name)
            info = os.lstat(path)
            relative = name if relative_dir == "." else f"{relative_dir}/{name}"
            if not stat.S_ISREG(info.st_mode):
                raise CloneError(f"the clone holds {relative}, which is not a regular file")
            handover.files[relative] = info.st_size
            handover.begin()
            yield Record.file(
                f"{DATADIR}/{relative}",
                functools.partial(_open, path, handover),
                started,
                size=info.st_size,
            )


def _open(path: str, handover: Handover) -> Content:
    try:
        return _Handed(path, handover.done)
    except OSError as exc:
        handover.done(0)  # never to be read: not outstanding any more
        raise CloneError(os_error_line("read", path, exc)) from None


@contextlib.contextmanager
def clone_directory(guard: Guard) -> Iterator[str]:
    """A private directory for the clone in TMPDIR, removed afterwards (by the guardian
    if the plugin dies meanwhile)."""
    try:
        parent = guard.temp_dir("plakar-mysql-clone-")
    except OSError as exc:
        raise CloneError(
            os_error_line("create a directory in", tempfile.gettempdir(), exc)
        ) from None
    try:
        yield parent
    finally:
        guard.remove_dir(parent)


# -- the restore ---------------------------------------------------------------------


def clone_restored(target: str, binlog: BinlogPoint | None, say: Callable[[str], None]) -> None:
    """Say what a restored clone is: ready for ``mysqld`` as it is (the backup finished it
    with a clean start and stop), its point already in its own ``mysql.gtid_executed``,
    where a binlog replay onto MySQL starts.  The manifest's point is only shown, and
    only if it looks like one."""
    say(f"{target} is a MySQL clone, ready for mysqld --datadir (no --prepare needed)")
    if binlog is None:
        say("the backup records no binary-log point (binary logging was off on the source)")
        return
    position = f"{binlog.file}:{binlog.position}"
    if not (binlog.file.isprintable() and len(binlog.file) < 256):
        say("the manifest's binary-log point is malformed: not shown")
        return
    gtid = binlog.gtid if binlog.gtid and valid_gtid_set(binlog.gtid) else None
    if gtid is None:
        say(
            f"the clone's point is {position} (no GTID set): give a binlog replay "
            f"start_position={position}"
        )
        return
    say(
        f"the clone's point {position}, GTID set {gtid}, is in the restored mysql.gtid_executed: "
        "a server started on it has it as @@gtid_executed, and a binlog replay onto it "
        "skips what it holds"
    )
