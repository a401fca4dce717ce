"""Finish a MySQL clone with one private start of the server's own ``mysqld``.

A local clone (``CLONE LOCAL DATA DIRECTORY``) leaves work for its first start,
and fills ``performance_schema.clone_status``'s binary-log file, position and
GTID set only then.  So the backup starts ``mysqld`` once on the clone, with no
option file, no network, no grant tables, no binary log and the clone plugin
only, reads the point, shuts it down cleanly and removes what the start added
at the top of the directory: the snapshot is a data directory ``mysqld`` starts
on as it is.  The start is bounded in time; if the plugin dies meanwhile, the
SDK's guardian kills the server and removes its private directory.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import stat
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pymysql

from kloset_sdk.guard import Guard
from plakar_mysql.core.flavour import Flavour, ToolError, detect, version_tuple
from plakar_mysql.core.private_server import private_args
from plakar_mysql.physical.backup_tool import version_text
from plakar_mysql.physical.clone import SONAME, CloneError, query
from plakar_mysql.physical.errors import os_error_line
from plakar_mysql.physical.manifest import BinlogPoint

START_TIMEOUT = 300.0
STOP_TIMEOUT = 300.0
SOCKET_PATH_MAX = 107
_POLL = 0.1


def find_mysqld(version: tuple[int, int, int], bin_dir: str | None) -> str:
    """The server binary of ``version``'s major release: ``bin_dir``, PATH, /usr/sbin."""
    search = [*([bin_dir] if bin_dir else []), *os.environ.get("PATH", "").split(os.pathsep)]
    search.append("/usr/sbin")
    wrong: list[str] = []
    for directory in search:
        candidate = os.path.join(directory, "mysqld")
        if not directory or not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
            continue
        try:
            text = version_text(candidate)
        except ToolError:
            text = ""
        if detect(text) is not Flavour.MYSQL or version_tuple(text)[:2] != version[:2]:
            wrong.append(f"{candidate}: {text[:60]!r}")
            continue
        return candidate
    wanted = f"{version[0]}.{version[1]}"
    raise CloneError(
        f"no MySQL mysqld {wanted} in bin_dir, PATH or /usr/sbin to finish the clone with"
        + (f" ({'; '.join(wrong)})" if wrong else "")
    )


def start_command(
    mysqld: str, datadir: str, private: str, paths: dict[str, str], settings: dict[str, str]
) -> list[str]:
    """The private start: no option file, the source's installation paths and InnoDB
    layout as arguments, nothing reachable, no grant tables, the clone plugin only."""
    user = [f"--user={_user_name(os.stat(datadir).st_uid)}"] if os.geteuid() == 0 else []
    return [
        mysqld,
        "--no-defaults",
        *[f"--{name.replace('_', '-')}={value}" for name, value in sorted(paths.items())],
        *[f"--{name.replace('_', '-')}={value}" for name, value in sorted(settings.items())],
        *user,
        f"--datadir={datadir}",
        "--skip-grant-tables",
        *private_args(Flavour.MYSQL),
        f"--plugin-load-add={SONAME}",
        f"--secure-file-priv={private}",
        f"--socket={os.path.join(private, 'mysqld.sock')}",
        f"--pid-file={os.path.join(private, 'mysqld.pid')}",
        f"--log-error={os.path.join(private, 'error.log')}",
        f"--tmpdir={private}",
    ]


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _last_error(log: str) -> str:
    """The server's first error line (the cause; the last is "Aborting"), without its
    time stamp and codes."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if "[ERROR]" in line and "Aborting" not in line]
    if errors:
        return errors[0].split("]", 3)[-1].strip()
    return lines[-1] if lines else "no message"


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()[-(64 << 10) :]
    except OSError:
        return ""


def finish_clone(
    mysqld: str,
    datadir: str,
    paths: dict[str, str],
    settings: dict[str, str],
    guard: Guard,
    *,
    start_timeout: float = START_TIMEOUT,
    stop_timeout: float = STOP_TIMEOUT,
) -> BinlogPoint | None:
    """Start ``mysqld`` privately on the clone, read its point, shut it down cleanly, and
    remove what the start added at the top of the directory (certificates, ``auto.cnf``:
    a restored server makes its own).  Raises :class:`CloneError`."""
    before = set(os.listdir(datadir))
    private = _start_directory(guard)
    try:
        os.chown(private, os.stat(datadir).st_uid, -1)
        log_path = os.path.join(private, "error.log")
        try:
            process = subprocess.Popen(
                start_command(mysqld, datadir, private, paths, settings),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            raise CloneError(os_error_line("run", mysqld, exc)) from None
        with guard.child(process):
            try:
                return _read_point_and_stop(
                    process,
                    os.path.join(private, "mysqld.sock"),
                    start_timeout,
                    stop_timeout,
                    lambda: _read(log_path),
                )
            finally:
                if process.poll() is None:
                    process.kill()
                process.wait()
    finally:
        guard.remove_dir(private)
        _remove_new(datadir, before)


def _start_directory(guard: Guard) -> str:
    """The private start's directory, in TMPDIR unless its socket's path would be too
    long there for a Unix socket (107 bytes): then in /tmp."""
    private = guard.temp_dir("plakar-mysql-clone-start-")
    if len(os.path.join(private, "mysqld.sock").encode()) <= SOCKET_PATH_MAX:
        return private
    guard.remove_dir(private)
    return guard.temp_dir("pmc-", dir="/tmp")  # noqa: S108 - mkdtemp: new, 0700, random


def _remove_new(datadir: str, before: set[str]) -> None:
    for name in set(os.listdir(datadir)) - before:
        path = os.path.join(datadir, name)
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(os.lstat(path).st_mode):
                shutil.rmtree(path)
            else:
                os.unlink(path)


def _read_point_and_stop(
    process: subprocess.Popen[bytes],
    socket: str,
    start_timeout: float,
    stop_timeout: float,
    log: Callable[[], str],
) -> BinlogPoint | None:
    deadline = time.monotonic() + start_timeout
    db = None
    while db is None:
        if process.poll() is not None:
            raise CloneError(f"mysqld did not start on the clone: {_last_error(log())}")
        if time.monotonic() > deadline:
            raise CloneError(f"mysqld did not start on the clone in {start_timeout:g} s")
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
    failure: CloneError | None = None
    point: BinlogPoint | None = None
    try:
        found = query(
            db,
            "SELECT BINLOG_FILE, BINLOG_POSITION, GTID_EXECUTED "
            "FROM performance_schema.clone_status ORDER BY ID DESC LIMIT 1",
        )
        point = _point(found[0] if found else None)
    except pymysql.err.MySQLError as exc:
        failure = CloneError(f"cannot read the clone's point: {exc.args[-1]}")
    try:
        query(db, "SHUTDOWN")
    except pymysql.err.MySQLError as exc:
        failure = failure or CloneError(f"mysqld on the clone refused to stop: {exc.args[-1]}")
    finally:
        with contextlib.suppress(Exception):
            db.close()
    try:
        code = process.wait(stop_timeout)
    except subprocess.TimeoutExpired:
        raise failure or CloneError(
            f"mysqld on the clone did not stop in {stop_timeout:g} s"
        ) from None
    if failure is not None:
        raise failure
    if code != 0:
        raise CloneError(f"mysqld on the clone stopped with status {code}: {_last_error(log())}")
    return point


def _point(row: tuple[Any, ...] | None) -> BinlogPoint | None:
    """``clone_status``'s binary log file, position and GTID set; None without a log."""
    if row is None or not row[0]:
        return None
    gtid = " ".join(str(row[2] or "").split())
    return BinlogPoint(str(row[0]), int(row[1]), gtid or None)
