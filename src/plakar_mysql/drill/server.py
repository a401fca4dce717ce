"""The drill's throwaway server: found, installed, started privately, and gone at the end.

The server is the snapshot's flavour (and major version when it is known),
looked for in ``bin_dir``, in PATH, then in ``/usr/sbin`` (where Debian puts
``mariadbd``).  It runs with no option file, no network (``--skip-networking``:
its only door is a socket in a 0700 directory of the drill's), no binary log,
no event scheduler, as the user running the drill: the flags of every private
start of the integration (:func:`~plakar_mysql.core.private_server.private_args`,
which the MySQL clone backup's start on its clone uses too).  A MariaDB data
directory is made by ``mariadb-install-db``, a MySQL one by ``mysqld
--initialize-insecure`` (MySQL's server is its own installer).  Its process is registered
with the SDK's guardian (``guard.child``) and its directory too
(``guard.temp_dir``): if the plugin is killed, the guardian kills the server and
removes everything, so a killed drill leaves no process and no directory.

``root@localhost`` has no password on this server: only the drill's own user
can reach the socket, and the server lives for the drill alone.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import pymysql

from kloset_sdk.guard import Guard
from plakar_mysql.core.errors import PlakarMySQLError
from plakar_mysql.core.flavour import Flavour, detect, version_tuple
from plakar_mysql.core.private_server import private_args

SYSTEM_SBIN = "/usr/sbin"
SERVER_NAMES = {Flavour.MARIADB: ("mariadbd", "mysqld"), Flavour.MYSQL: ("mysqld",)}
INSTALL_NAMES = ("mariadb-install-db", "mysql_install_db")
_INSTALL_TIMEOUT = 600.0
_STOP_TIMEOUT = 120.0
#: A bound on any one statement's answer (a check reads whole tables: generous).
_QUERY_TIMEOUT = 3600
_POLL = 0.1
_SOCKET_LIMIT = 100  # sun_path holds 107 bytes
_ACCESS_DENIED = 1045


class DrillError(PlakarMySQLError, RuntimeError):
    """The drill could not run, or found a mismatch; one line for the user."""


@dataclass(frozen=True)
class ServerBinary:
    path: str
    version: tuple[int, int, int]
    flavour: Flavour

    @property
    def release(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"


def search_path(bin_dir: str | None, path: str | None = None) -> list[str]:
    """Where servers and tools are looked for: ``bin_dir`` and its ``../sbin``, beside
    the client tools found in PATH (and their ``../sbin``, as packages install them),
    PATH, then /usr/sbin."""
    search = os.environ.get("PATH", "") if path is None else path
    clients = [
        os.path.dirname(client)
        for name in ("mariadb", "mysql")
        if (client := shutil.which(name, path=search)) is not None
    ]
    places = [*([bin_dir] if bin_dir else []), *clients]
    beside = [item for d in places for item in (d, os.path.join(os.path.dirname(d), "sbin"))]
    found: list[str] = []
    for directory in [*beside, *search.split(os.pathsep), SYSTEM_SBIN]:
        if directory and os.path.normpath(directory) not in found:
            found.append(os.path.normpath(directory))
    return found


def _version_text(path: str) -> str:
    try:
        done = subprocess.run(
            [path, "--no-defaults", "--version"], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.decode(errors="replace")


def install_hint(flavour: Flavour, release: str | None) -> str:
    """What to install for a server of ``flavour`` (and ``release``)."""
    if flavour is Flavour.MARIADB:
        return (
            f"install MariaDB's server{' ' + release if release else ''} "
            "(Debian: apt-get install mariadb-server) or give bin_dir="
        )
    return (
        f"install MySQL's server{' ' + release if release else ''} (mysql-server from "
        "MySQL's own packages) or give bin_dir="
    )


def find_server(
    flavour: Flavour, release: tuple[int, int] | None, bin_dir: str | None
) -> ServerBinary:
    """The server binary of ``flavour`` (of ``release``'s major version when given);
    :class:`DrillError` saying what was found and what to install otherwise."""
    wrong: list[str] = []
    for directory in search_path(bin_dir):
        for name in SERVER_NAMES[flavour]:
            candidate = os.path.join(directory, name)
            if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
                continue
            text = _version_text(candidate)
            if not text or detect(text) is not flavour:
                wrong.append(f"{candidate} is not {flavour.title}'s")
                continue
            version = version_tuple(text)
            if release is not None and version[:2] != release:
                wrong.append(f"{candidate} is {version[0]}.{version[1]}")
                continue
            return ServerBinary(candidate, version, flavour)
    wanted = f"{release[0]}.{release[1]}" if release else None
    where = "bin_dir, beside the client tools, in PATH or /usr/sbin"
    seen = f" ({'; '.join(wrong)})" if wrong else ""
    names = "/".join(SERVER_NAMES[flavour])
    raise DrillError(
        f"no {flavour.title} server {wanted or ''}".rstrip()
        + f" ({names}) in {where}{seen}: {install_hint(flavour, wanted)}"
    )


def find_installer(binary: ServerBinary, bin_dir: str | None) -> str:
    """``mariadb-install-db``, beside the server (and its ``../bin``) or on the search path;
    MySQL's ``mysqld`` itself (``--initialize-insecure``)."""
    if binary.flavour is Flavour.MYSQL:
        return binary.path
    here = os.path.dirname(binary.path)
    places = [here, os.path.join(os.path.dirname(here), "bin"), *search_path(bin_dir)]
    for directory in places:
        for name in INSTALL_NAMES:
            candidate = os.path.join(directory, name)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
    raise DrillError(
        f"no mariadb-install-db beside {binary.path} nor in bin_dir, PATH or /usr/sbin: "
        f"{install_hint(binary.flavour, binary.release)}"
    )


def _last_error(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in reversed(lines):
        if "[ERROR]" in line and "Aborting" not in line:
            message = line.split("[ERROR]", 1)[1].strip()
            while message.startswith("[") and "]" in message:  # MySQL's [MY-010119] [Server]
                message = message.split("]", 1)[1].strip()
            return message
    return lines[-1] if lines else "no message"


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _as_user() -> list[str]:
    """mariadbd refuses to run as root unless told to: as the drill's own user."""
    if os.geteuid() != 0:
        return []
    return [f"--user={pwd.getpwuid(os.geteuid()).pw_name}"]


class DrillServer:
    """One private server on ``datadir``, its socket, pid file and log in ``private``.

    A context manager: started on entry (bounded by ``start_timeout``), stopped
    on exit, killed if it does not stop; killed by the guardian if the plugin dies.
    """

    def __init__(
        self,
        binary: ServerBinary,
        datadir: str,
        private: str,
        guard: Guard,
        *,
        start_timeout: float,
        extra: Sequence[str] = (),
    ) -> None:
        self.binary = binary
        self.datadir = datadir
        self.private = private
        self.socket = os.path.join(private, "s")
        if len(os.fsencode(self.socket)) > _SOCKET_LIMIT:
            self.socket = os.path.join(guard.temp_dir("plakar-drill-s-"), "s")
        self._guard = guard
        self._timeout = start_timeout
        self._extra = tuple(extra)
        self._stack = contextlib.ExitStack()
        self._process: subprocess.Popen[bytes] | None = None
        self.log = os.path.join(private, "error.log")

    def command(self) -> list[str]:
        tmp = os.path.join(self.private, "tmp")
        os.makedirs(tmp, exist_ok=True)
        return [
            self.binary.path,
            "--no-defaults",
            *self._extra,
            *_as_user(),
            f"--datadir={self.datadir}",
            *private_args(self.binary.flavour),
            f"--socket={self.socket}",
            f"--pid-file={os.path.join(self.private, 'mysqld.pid')}",
            f"--log-error={self.log}",
            f"--tmpdir={tmp}",
            f"--secure-file-priv={tmp}",
        ]

    def __enter__(self) -> DrillServer:
        try:
            process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            raise DrillError(f"cannot run {self.binary.path}: {exc.strerror}") from None
        self._process = process
        self._stack.enter_context(self._guard.child(process))
        try:
            self._wait_ready(process)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> None:
        name = os.path.basename(self.binary.path)
        deadline = time.monotonic() + self._timeout
        while True:
            if process.poll() is not None:
                raise DrillError(f"{name} did not start: {_last_error(_read(self.log))}")
            if time.monotonic() > deadline:
                raise DrillError(
                    f"{name} did not start in {self._timeout:g} s: {_last_error(_read(self.log))}"
                )
            if os.path.exists(self.socket):
                try:
                    self.connect().close()
                    return
                except pymysql.err.OperationalError as exc:
                    if exc.args and exc.args[0] == _ACCESS_DENIED:
                        raise DrillError(f"{name} refused the drill: {exc.args[-1]}") from None
            time.sleep(_POLL)

    def connect(self, timeout: int = _QUERY_TIMEOUT) -> pymysql.connections.Connection[Any]:
        """root on the private socket; no answer waited for longer than ``timeout`` s."""
        return pymysql.connect(
            unix_socket=self.socket,
            user="root",
            connect_timeout=10,
            read_timeout=timeout,
            write_timeout=timeout,
            charset="utf8mb4",
        )

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        process = self._process
        try:
            if process is not None and process.poll() is None:
                with (
                    contextlib.suppress(pymysql.err.MySQLError),
                    contextlib.closing(self.connect(timeout=30)) as db,
                    db.cursor() as cursor,
                ):
                    cursor.execute("SHUTDOWN")
                try:
                    process.wait(_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            self._stack.close()


def _install_command(installer: str, datadir: str, flavour: Flavour) -> list[str]:
    """MariaDB's installer, or MySQL's server initialising its data directory (its
    messages on stderr: no ``--log-error``), with the server's own defaults."""
    if flavour is Flavour.MYSQL:
        return [
            installer,
            "--no-defaults",
            *_as_user(),
            f"--datadir={datadir}",
            "--initialize-insecure",
        ]
    return [
        installer,
        "--no-defaults",
        *_as_user(),
        f"--datadir={datadir}",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        "--innodb-log-file-size=16M",
    ]


def install(
    installer: str, datadir: str, private: str, guard: Guard, flavour: Flavour = Flavour.MARIADB
) -> None:
    """A fresh data directory: the system tables, root without password on the socket.
    The installer is killed with the plugin (``guard.child``)."""
    command = _install_command(installer, datadir, flavour)
    tmp = os.path.join(private, "tmp")
    os.makedirs(tmp, exist_ok=True)
    try:
        process = subprocess.Popen(
            [*command, f"--tmpdir={tmp}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=private,
            stdin=subprocess.DEVNULL,
        )
    except OSError as exc:
        raise DrillError(f"cannot run {installer}: {exc.strerror}") from None
    with guard.child(process):
        try:
            output, _ = process.communicate(timeout=_INSTALL_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise DrillError(f"{installer} did not finish in {_INSTALL_TIMEOUT:g} s") from None
    if process.returncode != 0:
        raise DrillError(
            f"{os.path.basename(installer)} failed (exit status {process.returncode}): "
            f"{_last_error(output.decode(errors='replace'))}"
        )


def directory_bytes(path: str) -> int:
    """The bytes of every file below ``path`` (what the drill's data took)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def remove(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
