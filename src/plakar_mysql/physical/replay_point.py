"""Leave a physical backup's binary-log point in the restored data directory.

A replay of archived binary logs (``mysql+binlog://``) starts after the
target's ``@@gtid_slave_pos``, as a replica does.  A logical restore sets it
over its connection; a physical restore has no server to talk to, only files.
So, after ``--prepare``, the restore starts the server once on those files,
privately (no network, no grant tables, a socket in a private temporary
directory, no binary log), runs ``SET GLOBAL gtid_slave_pos``, which MariaDB
keeps in the table ``mysql.gtid_slave_pos``, and shuts it down cleanly.
(``mariadbd --bootstrap`` refuses that statement: "Server shutdown in
progress".)

The start is bounded in time, runs as the owner of the restored files, and
leaves nothing behind: the files the server creates at the top of the data
directory (``multi-master.info``, ...) are removed again.  Every failure is one
line and never fails the restore: the restored files are good, and the line
gives the statement to run by hand.  If the plugin dies meanwhile (Plakar
SIGKILLs it when interrupted), the SDK's guardian kills the server and removes
its private directory (``guard.child``, ``guard.temp_dir``); the restore's own
undo then removes the directory the server ran on.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pymysql

from kloset_sdk.guard import Guard
from plakar_mysql.core.errors import PlakarMySQLError
from plakar_mysql.core.flavour import Flavour, ToolError, detect, version_tuple
from plakar_mysql.core.gtid import GtidError, Position
from plakar_mysql.physical.backup_tool import version_text
from plakar_mysql.physical.errors import describe, os_error_line
from plakar_mysql.physical.manifest import BinlogPoint

SERVER_NAMES = ("mariadbd", "mysqld")
SYSTEM_SBIN = "/usr/sbin"
START_TIMEOUT = 300.0
STOP_TIMEOUT = 300.0
_POLL = 0.1


class PointError(PlakarMySQLError, RuntimeError):
    """The private start failed; one line, with the server's own error."""


def by_hand(point: Position) -> str:
    """The statement a DBA runs on the started server instead."""
    return f"SET GLOBAL gtid_slave_pos = '{point}';"


def server_directories(
    tool_path: str, bin_dir: str | None, *, path: str | None = None, system: str = SYSTEM_SBIN
) -> list[str]:
    """Where to look for the server: ``bin_dir``, beside the backup tool (and its
    ``../sbin``, as Debian installs them), then PATH, then /usr/sbin."""
    tool_dir = os.path.dirname(os.path.abspath(tool_path))
    search = os.environ.get("PATH", "") if path is None else path
    found = [
        *([bin_dir] if bin_dir else []),
        tool_dir,
        os.path.join(os.path.dirname(tool_dir), "sbin"),
        *search.split(os.pathsep),
        system,
    ]
    unique: list[str] = []
    for directory in found:
        if directory and os.path.normpath(directory) not in unique:
            unique.append(os.path.normpath(directory))
    return unique


def find_server(
    tool_path: str,
    version: tuple[int, int, int],
    bin_dir: str | None,
    *,
    path: str | None = None,
    system: str = SYSTEM_SBIN,
) -> tuple[str | None, str]:
    """A MariaDB server binary of ``version``'s major release, or None and why not."""
    wanted = f"{version[0]}.{version[1]}"
    wrong: list[str] = []
    for directory in server_directories(tool_path, bin_dir, path=path, system=system):
        for name in SERVER_NAMES:
            candidate = os.path.join(directory, name)
            if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
                continue
            try:
                text = version_text(candidate)
            except ToolError:
                text = ""  # a server that does not run is not MariaDB's, for the message
            if detect(text) is not Flavour.MARIADB:
                wrong.append(f"{candidate} is not MariaDB's")
                continue
            if version_tuple(text)[:2] != version[:2]:
                found = ".".join(map(str, version_tuple(text)[:2]))
                wrong.append(f"{candidate} is {found}")
                continue
            return candidate, ""
    where = "bin_dir, beside the backup tool, in PATH or /usr/sbin"
    return None, f"no mariadbd {wanted} in {where}" + (f" ({'; '.join(wrong)})" if wrong else "")


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int

    @property
    def user(self) -> str:
        """The name mariadbd's ``--user`` takes (a number if the uid has none)."""
        try:
            return pwd.getpwuid(self.uid).pw_name
        except KeyError:
            return str(self.uid)


def files_owner(datadir: str) -> Owner:
    """Who owns the restored files (``ibdata1``; else the directory): the server runs
    as them, so that it reads every file and what it rewrites keeps its owner."""
    ibdata = os.path.join(datadir, "ibdata1")
    stat = os.stat(ibdata if os.path.isfile(ibdata) else datadir)
    return Owner(stat.st_uid, stat.st_gid)


def _last_error(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in reversed(lines):
        if "[ERROR]" in line and "Aborting" not in line:
            return line.split("[ERROR]", 1)[1].strip()
    return lines[-1] if lines else "no message"


@contextlib.contextmanager
def _private_directory(owner: Owner | None, guard: Guard) -> Iterator[str]:
    """A short private directory for the socket, pid file, log and temporary files,
    removed afterwards (by the guardian if the plugin dies meanwhile)."""
    try:
        path = guard.temp_dir("plakar-mysql-point-")
    except OSError as exc:
        raise PointError(
            os_error_line("create a directory in", tempfile.gettempdir(), exc)
        ) from None
    try:
        if owner is not None:
            os.chown(path, owner.uid, owner.gid)
        yield path
    finally:
        guard.remove_dir(path)


def server_command(
    server: str, datadir: str, private: str, owner: Owner | None, layout: Sequence[str] = ()
) -> list[str]:
    """The private start: no option file at all (``--no-defaults``: the snapshot's
    ``backup-my.cnf`` is never read as one), the backup's checked InnoDB layout
    (``layout``, see :mod:`plakar_mysql.physical.layout`) as arguments, nothing
    reachable, no plugin directory but the private one, no events, nothing logged."""
    return [
        server,
        "--no-defaults",
        *layout,
        *([f"--user={owner.user}"] if owner is not None else []),
        f"--datadir={datadir}",
        "--skip-networking",
        "--skip-grant-tables",
        "--skip-slave-start",
        "--skip-log-bin",
        "--event-scheduler=DISABLED",
        f"--plugin-dir={private}",
        f"--secure-file-priv={private}",
        f"--socket={os.path.join(private, 'mysqld.sock')}",
        f"--pid-file={os.path.join(private, 'mysqld.pid')}",
        f"--log-error={os.path.join(private, 'error.log')}",
        f"--tmpdir={private}",
        "--innodb-buffer-pool-load-at-startup=0",
        "--innodb-buffer-pool-dump-at-shutdown=0",
    ]


def set_point_in_datadir(
    server: str,
    datadir: str,
    point: Position,
    guard: Guard,
    *,
    layout: Sequence[str] = (),
    start_timeout: float = START_TIMEOUT,
    stop_timeout: float = STOP_TIMEOUT,
) -> None:
    """Start ``server`` privately on ``datadir`` (with the ``layout`` arguments), set
    ``gtid_slave_pos``, stop it.

    Raises :class:`PointError`.  Whatever happens, the server is gone and the
    files it created at the top of ``datadir`` are removed when this returns.
    """
    try:
        before = set(os.listdir(datadir))
        owner = files_owner(datadir) if os.geteuid() == 0 else None
    except OSError as exc:
        raise PointError(os_error_line("read", datadir, exc)) from None
    with _private_directory(owner, guard) as private:
        log_path = os.path.join(private, "error.log")
        try:
            process = subprocess.Popen(
                server_command(server, datadir, private, owner, layout),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            raise PointError(os_error_line("run", server, exc)) from None
        with guard.child(process):
            try:
                _set_and_stop(
                    process,
                    os.path.join(private, "mysqld.sock"),
                    point,
                    start_timeout=start_timeout,
                    stop_timeout=stop_timeout,
                    log=lambda: _read(log_path),
                )
            finally:
                if process.poll() is None:
                    process.kill()
                process.wait()
                _remove_new_files(datadir, before)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _set_and_stop(
    process: subprocess.Popen[bytes],
    socket: str,
    point: Position,
    *,
    start_timeout: float,
    stop_timeout: float,
    log: Callable[[], str],
) -> None:
    name = os.path.basename(str(process.args[0]))  # type: ignore[index]
    deadline = time.monotonic() + start_timeout
    db = None
    while db is None:
        if process.poll() is not None:
            raise PointError(f"{name} did not start: {_last_error(log())}")
        if time.monotonic() > deadline:
            raise PointError(f"{name} did not start in {start_timeout:g} s: {_last_error(log())}")
        if os.path.exists(socket):
            with contextlib.suppress(pymysql.err.OperationalError):
                # Reads and writes bounded too: a hung statement or SHUTDOWN must
                # fail here, not block before the kill in the caller's ``finally``.
                db = pymysql.connect(
                    unix_socket=socket,
                    user="root",
                    connect_timeout=10,
                    read_timeout=stop_timeout,
                    write_timeout=stop_timeout,
                )
        if db is None:
            time.sleep(_POLL)
    failure: PointError | None = None
    try:
        with db.cursor() as cursor:
            cursor.execute("SET GLOBAL gtid_slave_pos = %s", (str(point),))
            cursor.execute("SELECT @@GLOBAL.gtid_slave_pos")
            row = cursor.fetchone()
            if row is None or Position.parse(str(row[0])) != point:
                failure = PointError(f"{name} kept gtid_slave_pos {row[0] if row else None!r}")
    except pymysql.err.MySQLError as exc:
        failure = PointError(f"{name}: {exc.args[-1]}")
    # A clean shutdown in every case: the files are left as a stopped server leaves them.
    try:
        with db.cursor() as cursor:
            cursor.execute("SHUTDOWN")
    except pymysql.err.MySQLError as exc:
        failure = failure or PointError(f"{name} refused to shut down: {exc.args[-1]}")
    finally:
        with contextlib.suppress(Exception):
            db.close()
    try:
        code = process.wait(stop_timeout)
    except subprocess.TimeoutExpired:
        raise failure or PointError(f"{name} did not stop in {stop_timeout:g} s") from None
    if failure is not None:
        raise failure
    if code != 0:
        raise PointError(f"{name} stopped with status {code}: {_last_error(log())}")


def _remove_new_files(datadir: str, before: set[str]) -> None:
    """The server's droppings at the top of the data directory (files only)."""
    for name in set(os.listdir(datadir)) - before:
        path = os.path.join(datadir, name)
        if os.path.isfile(path) or os.path.islink(path):
            with contextlib.suppress(OSError):
                os.unlink(path)


def leave_point(
    datadir: str,
    binlog: BinlogPoint | None,
    flavour: Flavour,
    find: Callable[[], tuple[str | None, str]],
    say: Callable[[str], None],
    *,
    guard: Guard,
    layout: Sequence[str] = (),
) -> Position | None:
    """Set the backup's GTID point (``binlog``) in ``datadir`` if possible; say in one line what
    happened, and what to run by hand if it was not set.  Never raises for the
    restore: the files are good either way."""
    if binlog is None:
        say("the backup records no binary-log point (binary logging was off on the source)")
        return None
    gtid = binlog.gtid
    if not gtid:
        say(
            f"the backup records no binary-log GTID, only {binlog.file}:{binlog.position}: "
            f"no point was set; give a binlog replay start_position={binlog.file}:"
            f"{binlog.position}"
        )
        return None
    if flavour is not Flavour.MARIADB:
        say(
            f"the backup's point {gtid} was not set: automatic for MariaDB only "
            f"(on MySQL: SET GLOBAL gtid_purged = '{gtid}';)"
        )
        return None
    try:
        point = Position.parse(gtid)
    except GtidError:
        say(f"the backup's point {gtid!r} is not a MariaDB GTID position: not set")
        return None
    server, why = find()
    if server is None:
        say(
            f"the backup's point {point} was not set ({why}): once the server runs on "
            f"{datadir}, run {by_hand(point)}"
        )
        return None
    try:
        set_point_in_datadir(server, datadir, point, guard, layout=layout)
    except (PointError, OSError) as exc:
        reason = f"{describe(exc)}: {exc.filename}" if isinstance(exc, OSError) else str(exc)
        say(
            f"warning: could not set the backup's point {point} ({reason}); the restored files "
            f"are good: once the server runs on them, run {by_hand(point)}"
        )
        return None
    say(
        f"set the backup's point {point} in @@gtid_slave_pos (mysql.gtid_slave_pos), with "
        f"{server}: a binlog replay onto this server starts after it"
    )
    return point
