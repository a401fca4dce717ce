"""Throwaway MariaDB servers for tests.

Every :class:`MariaDBServer` is a private ``mariadbd`` with its own data
directory, UNIX socket and loopback TCP port, so tests never touch a system
server and several servers can run side by side (a backup taken from one is
restored into another).  The server is created with ``mariadb-install-db``,
started with ``--no-defaults`` so that no option file on the machine changes
its behaviour, and secured with a root password that is accepted both on the
socket and over TCP on 127.0.0.1, which is how the code under test connects.

The root password never appears in a command line or in the environment of a
child process: the ``mariadb`` client gets it from a 0600 option file, the way
the production code is expected to pass credentials.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pymysql
import pymysql.connections
import pymysql.cursors

__all__ = [
    "MariaDBError",
    "MariaDBServer",
    "free_port",
    "quote_identifier",
]

#: Directories searched after ``PATH``: ``mariadbd`` lives in ``/usr/sbin`` on
#: Debian, which is not on a non-root user's ``PATH``.
_EXTRA_PROGRAM_DIRS = ("/usr/sbin", "/usr/local/sbin", "/usr/libexec", "/usr/local/bin")

#: Longest UNIX socket path we use; the kernel limit (``sun_path``) is 107 bytes.
_MAX_SOCKET_PATH = 100

#: Accounts given the root password and all privileges.  ``%`` makes TCP
#: connections work whatever the client address resolves to.
_ROOT_HOSTS = ("localhost", "127.0.0.1", "::1", "%")

_ACCESS_DENIED = 1045

#: The default 96M redo log is written out in full: with it, every test server
#: leaves over 100 MB in pytest's kept tmp_path directories.
_REDO_LOG_SIZE = "--innodb-log-file-size=16M"

#: Data directories as installed, one per install command and binary: see
#: :meth:`MariaDBServer._install`.  ``make clean`` removes them.
_TEMPLATES = Path(__file__).resolve().parents[2] / "build" / "server-templates"

_live_lock = threading.Lock()
_live_servers: set[MariaDBServer] = set()


class MariaDBError(RuntimeError):
    """A throwaway server could not be installed, started, stopped or fed SQL."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that is free right now.

    The port is only reserved while this function runs, so another process may
    take it before the server binds it; :class:`MariaDBServer` retries with a
    new port when that happens.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def quote_identifier(name: str) -> str:
    """Quote ``name`` as a MariaDB identifier: backticks around, inner ones doubled."""
    return "`" + name.replace("`", "``") + "`"


def _find_program(*names: str) -> str:
    """Find the first of ``names`` on ``PATH`` or in the usual server directories."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *_EXTRA_PROGRAM_DIRS])
    for name in names:
        found = shutil.which(name, path=search)
        if found is not None:
            return found
    raise MariaDBError(
        f"none of {', '.join(names)} found on PATH or in {', '.join(_EXTRA_PROGRAM_DIRS)}; "
        "install the MariaDB server and client packages"
    )


def _tail(path: Path, offset: int = 0, lines: int = 40) -> str:
    """Return the last ``lines`` lines of ``path`` written after byte ``offset``."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return f"({path} does not exist)"
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


def _option_value(value: str) -> str:
    """Quote ``value`` for a MariaDB option file (double quotes, backslash escapes)."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


@atexit.register
def _kill_leftover_servers() -> None:
    """Kill servers a crashed or interrupted test session did not stop."""
    with _live_lock:
        servers = list(_live_servers)
    for server in servers:
        server.kill()


class MariaDBServer:
    """A private MariaDB server running from its own temporary directory.

    Creating the object installs a fresh data directory and starts the server;
    when the constructor returns, root can connect over TCP on :attr:`host`
    and :attr:`port` (and on :attr:`socket`) with :attr:`root_password`.

    ``base_dir`` holds everything the server writes (``data/``, the error log,
    the pid file, the socket when the path is short enough); when it is None a
    temporary directory is created and :meth:`cleanup` removes it.  ``extra_args``
    are appended to the ``mariadbd`` command line (``--log-bin``, TLS options,
    ``--server-id=2``...); coming last, they override the harness's own
    settings.  ``start_timeout`` bounds the wait for the server to accept
    connections.

    Use it as a context manager, or call :meth:`stop` (clean shutdown) or
    :meth:`kill` (SIGKILL, for fault tests) and then :meth:`cleanup`.  A stopped
    or killed server can be started again on the same data directory and port
    with :meth:`start`.
    """

    host: str
    """Address the server listens on (loopback only)."""
    port: int
    """TCP port the server listens on."""
    socket: Path
    """UNIX socket of the server."""
    root_password: str
    """Password of every ``root`` account."""
    base_dir: Path
    """Directory holding the data directory, logs and (usually) the socket."""
    datadir: Path
    """The server's data directory."""
    error_log: Path
    """The server's error log (``--log-error``)."""
    version: str
    """``SELECT VERSION()`` of the running server, e.g. ``10.11.19-MariaDB-0+deb12u1``."""
    extra_args: tuple[str, ...]
    """Extra ``mariadbd`` arguments given to the constructor."""
    flavour: str = "mariadb"
    """The server's flavour as the integration's manifests name it."""
    bin_dir: str | None = None
    """Directory of this flavour's client tools for ``-o bin_dir=``; None: on ``PATH``."""

    def __init__(
        self,
        base_dir: Path | str | None = None,
        *,
        root_password: str | None = None,
        extra_args: Sequence[str] = (),
        start_timeout: float = 60.0,
    ) -> None:
        self._find_programs()
        self._owned_dirs: list[Path] = []
        if base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="mariadb-"))
            self._owned_dirs.append(self.base_dir)
        else:
            self.base_dir = Path(base_dir).resolve()
            self.base_dir.mkdir(parents=True, exist_ok=True)
        self.datadir = self.base_dir / "data"
        self.error_log = self.base_dir / "error.log"
        self._stdout_log = self.base_dir / "mariadbd.out"
        self._pid_file = self.base_dir / "mysqld.pid"
        self._tmpdir = self.base_dir / "tmp"
        self.socket = self.base_dir / "mysqld.sock"
        if len(os.fsencode(self.socket)) > _MAX_SOCKET_PATH:
            # Deep pytest tmp_path directories overflow sun_path.
            socket_dir = Path(tempfile.mkdtemp(prefix="mdb-"))
            self._owned_dirs.append(socket_dir)
            self.socket = socket_dir / "mysqld.sock"
        self.host = "127.0.0.1"
        self.port = 0
        self.root_password = (
            root_password if root_password is not None else secrets.token_urlsafe(18)
        )
        self.extra_args = tuple(extra_args)
        self.version = ""
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._secured = False
        try:
            self._install()
            self.start()
        except BaseException:
            self.kill()
            self._remove_owned_dirs()
            raise

    # -- lifecycle -------------------------------------------------------------

    def _find_programs(self) -> None:
        """Find the server, its installer and the command-line client."""
        self._mariadbd = _find_program("mariadbd", "mysqld")
        self._install_db = _find_program("mariadb-install-db", "mysql_install_db")
        self._client = _find_program("mariadb", "mysql")

    @property
    def pid(self) -> int | None:
        """Process id of the running ``mariadbd``, or None when it is not running."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the ``mariadbd`` process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def _as_root_args(self) -> list[str]:
        """``--user=root`` when we are root: mariadbd refuses to run as root without it."""
        return ["--user=root"] if os.geteuid() == 0 else []

    def _install(self) -> None:
        """Fill the new, empty data directory with system tables: a copy of a template.

        Installing is most of a test server's start-up (seconds of fsyncs, more
        for MySQL), and every server of the same flavour and install options
        starts from the same files.  So each distinct install runs once, into
        ``build/server-templates/<key>`` (the key covers the command and the
        binaries), and servers copy it.  MySQL's ``auto.cnf`` (the server's
        UUID) is not copied: each server makes its own.
        """
        if self.datadir.exists() and any(self.datadir.iterdir()):
            raise MariaDBError(f"{self.datadir} is not empty; refusing to reinstall over it")
        self._tmpdir.mkdir(parents=True, exist_ok=True)
        template = self._template()
        shutil.copytree(
            template, self.datadir, symlinks=True, ignore=shutil.ignore_patterns("auto.cnf")
        )

    def _template(self) -> Path:
        """The data directory this server's install command makes, made once and kept."""
        placeholder = "@BASE@"
        command = [arg.replace(str(self.base_dir), placeholder) for arg in self._install_command()]
        binaries = [Path(command[0]).resolve(), Path(self._mariadbd).resolve()]
        identity = repr(
            (command, [(str(b), b.stat().st_mtime_ns, b.stat().st_size) for b in binaries])
        )
        key = hashlib.sha256(identity.encode()).hexdigest()[:16]
        _TEMPLATES.mkdir(parents=True, exist_ok=True)
        template = _TEMPLATES / key
        with (_TEMPLATES / f"{key}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one worker installs, the others wait for it
            if not (template / "data").is_dir():
                work = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=_TEMPLATES))
                try:
                    (work / "tmp").mkdir()
                    self._run_install(
                        [arg.replace(placeholder, str(work)) for arg in command], work
                    )
                    work.rename(template)
                except BaseException:
                    shutil.rmtree(work, ignore_errors=True)
                    raise
        return template / "data"

    def _run_install(self, cmd: list[str], base: Path) -> None:
        """Run the install command in ``base``; its error, with the log, on failure."""
        try:
            result = subprocess.run(cmd, capture_output=True, timeout=180, check=False, cwd=base)
        except subprocess.TimeoutExpired as exc:
            raise MariaDBError(f"{' '.join(cmd)} did not finish in 180 s") from exc
        if result.returncode != 0:
            logs = [base / "error.log", base / "data" / f"{socket.gethostname()}.err"]
            log = "".join(p.read_text(errors="replace") for p in logs if p.exists())
            output = (result.stdout + result.stderr).decode("utf-8", errors="replace") + log
            raise MariaDBError(
                f"{' '.join(cmd)} failed with exit code {result.returncode}:\n"
                + "\n".join(output.splitlines()[-40:])
            )

    def _tree_args(self) -> list[str]:
        """Where a server of a tree of its own finds its messages and plugins: nothing
        for the system's MariaDB."""
        return []

    def _base_args(self, program: str) -> list[str]:
        """``program`` without option files, as root if need be, on this data directory,
        with a private tmpdir: bootstraps running at once in the same /tmp
        intermittently fail with "Unknown table 'mysql.tmp_user_sys'"."""
        return [
            program,
            "--no-defaults",
            *self._tree_args(),
            *self._as_root_args(),
            f"--datadir={self.datadir}",
            f"--tmpdir={self._tmpdir}",
        ]

    def _page_size_args(self) -> list[str]:
        """The page size of :attr:`extra_args`: fixed when the system tablespace is created."""
        return [arg for arg in self.extra_args if arg.startswith("--innodb-page-size=")]

    def _install_command(self) -> list[str]:
        """The command that creates the system tables (``mariadb-install-db``)."""
        return [
            *self._base_args(self._install_db),
            _REDO_LOG_SIZE,
            *self._page_size_args(),
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ]

    def _command(self) -> list[str]:
        """The ``mariadbd`` command line for the current port."""
        return [
            *self._base_args(self._mariadbd),
            f"--socket={self.socket}",
            f"--port={self.port}",
            f"--bind-address={self.host}",
            f"--pid-file={self._pid_file}",
            f"--log-error={self.error_log}",
            "--skip-name-resolve",
            *self._server_args(),
            *self.extra_args,
        ]

    def _server_args(self) -> list[str]:
        """This flavour's own settings of the server, before :attr:`extra_args`."""
        return ["--innodb-buffer-pool-size=64M", _REDO_LOG_SIZE]

    def start(self) -> None:
        """Start the server and wait until it accepts connections.

        The first start also secures the root accounts.  A fresh port is picked
        (and retried a few times if another process grabs it first) on the
        first start; later starts reuse the same port so that clients holding
        :attr:`port` can reconnect.
        """
        if self.running:
            raise MariaDBError(f"server on port {self.port} is already running")
        fixed_port = self.port != 0
        attempts = 1 if fixed_port else 5
        for attempt in range(attempts):
            if not fixed_port:
                self.port = free_port(self.host)
            log_offset = self.error_log.stat().st_size if self.error_log.exists() else 0
            self._launch()
            failure = self._wait_ready(time.monotonic() + self._start_timeout)
            if failure is None:
                break
            self.kill()
            log = _tail(self.error_log, log_offset)
            port_taken = "Address already in use" in log or "another mysqld" in log
            if port_taken and attempt + 1 < attempts:
                continue
            raise MariaDBError(
                f"{self.flavour} server on port {self.port} did not start: {failure}\n"
                f"--- {self.error_log} ---\n{log}\n"
                f"--- {self._stdout_log} ---\n{_tail(self._stdout_log, lines=10)}"
            )
        if not self._secured:
            self._secure()
        self.version = str(self.query("SELECT VERSION()")[0][0])

    def _launch(self) -> None:
        """Spawn ``mariadbd`` in the background, output appended to a log file."""
        with self._stdout_log.open("ab") as out:
            self._proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.base_dir,
            )
        with _live_lock:
            _live_servers.add(self)

    def _wait_ready(self, deadline: float) -> str | None:
        """Poll the socket until root can log in; return why not, or None on success."""
        password = self.root_password if self._secured else ""
        last_error = "no connection attempt made"
        while time.monotonic() < deadline:
            assert self._proc is not None
            code = self._proc.poll()
            if code is not None:
                return f"mariadbd exited with code {code}"
            try:
                conn = pymysql.connect(
                    unix_socket=str(self.socket),
                    user="root",
                    password=password.encode("utf-8"),
                    connect_timeout=2,
                )
            except pymysql.err.OperationalError as exc:
                if exc.args and exc.args[0] == _ACCESS_DENIED:
                    return f"root cannot log in: {exc}"
                last_error = str(exc)
                time.sleep(0.1)
                continue
            conn.close()
            return None
        return f"no connection within {self._start_timeout:g} s (last error: {last_error})"

    def _secure(self) -> None:
        """Give root a password on the socket and over TCP; drop anonymous accounts.

        ``mariadb-install-db`` creates passwordless ``root`` accounts plus
        anonymous ones (which would shadow other accounts for local logins) and
        accounts for the machine's host name (useless with
        ``--skip-name-resolve``).
        """
        conn = pymysql.connect(
            unix_socket=str(self.socket), user="root", password="", autocommit=True
        )
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT User, Host FROM mysql.user WHERE User = '' OR "
                    "(User = 'root' AND Host NOT IN %s)",
                    (_ROOT_HOSTS,),
                )
                for user, host in cur.fetchall():
                    cur.execute("DROP USER %s@%s", (user, host))
                for host in _ROOT_HOSTS:
                    cur.execute(
                        "CREATE USER IF NOT EXISTS 'root'@%s IDENTIFIED BY %s",
                        (host, self.root_password),
                    )
                    cur.execute("ALTER USER 'root'@%s IDENTIFIED BY %s", (host, self.root_password))
                    cur.execute(
                        "GRANT ALL PRIVILEGES ON *.* TO 'root'@%s WITH GRANT OPTION", (host,)
                    )
        finally:
            conn.close()
        self._secured = True

    def kill(self) -> None:
        """SIGKILL the server (a crash, for fault tests) and reap it."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        with _live_lock:
            _live_servers.discard(self)

    def stop(self, timeout: float = 60.0) -> None:
        """Shut the server down cleanly (SIGTERM); SIGKILL it after ``timeout`` seconds."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with _live_lock:
            _live_servers.discard(self)

    def _remove_owned_dirs(self) -> None:
        """Remove the directories this object created itself."""
        for directory in self._owned_dirs:
            shutil.rmtree(directory, ignore_errors=True)
        self._owned_dirs.clear()

    def cleanup(self) -> None:
        """Stop the server and remove the temporary directories this object created.

        A ``base_dir`` given to the constructor is left in place (pytest owns
        ``tmp_path`` and keeps it for post-mortems).
        """
        self.stop()
        self._remove_owned_dirs()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {self.host}:{self.port} {state} in {self.base_dir}>"

    # -- clients -----------------------------------------------------------------

    def connect(
        self,
        database: str | None = None,
        user: str = "root",
        password: str | None = None,
        **kwargs: Any,
    ) -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
        """Open a TCP connection (utf8mb4, autocommit) to the server.

        ``password`` defaults to :attr:`root_password` for ``root`` and to the
        empty password for other users.  ``kwargs`` go to ``pymysql.connect``
        (``ssl=...``, ``cursorclass=...``, ``read_timeout=...``).
        """
        if password is None:
            password = self.root_password if user == "root" else ""
        options: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": user,
            # PyMySQL would encode a str password as latin-1; the server hashed
            # the UTF-8 bytes of the password we set, as the mariadb client sends.
            "password": password.encode("utf-8"),
            "database": database,
            "charset": "utf8mb4",
            "autocommit": True,
            "connect_timeout": 10,
        }
        options.update(kwargs)
        return pymysql.connect(**options)

    def query(
        self,
        sql: str,
        args: Sequence[Any] | Mapping[str, Any] | None = None,
        database: str | None = None,
    ) -> list[tuple[Any, ...]]:
        """Run one statement as root on a new connection and return all its rows."""
        with self.connect(database) as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return [tuple(row) for row in cur.fetchall()]

    def execute(
        self,
        sql: str,
        args: Sequence[Any] | Mapping[str, Any] | None = None,
        database: str | None = None,
    ) -> int:
        """Run one statement as root on a new connection; return the affected row count."""
        with self.connect(database) as conn, conn.cursor() as cur:
            return cur.execute(sql, args)

    def load_sql_file(
        self, path: Path | str, database: str | None = None, *, timeout: float = 600.0
    ) -> None:
        """Pipe an SQL script into the ``mariadb`` command-line client as root.

        The client reads ``user`` and ``password`` from a 0600 option file given
        with ``--defaults-extra-file`` (deleted afterwards), so the password is
        neither in the process list nor in the environment.  The connection
        uses this server's socket and utf8mb4 unless the script says otherwise.
        Raises :class:`MariaDBError` with the client's stderr when it fails.
        """
        path = Path(path)
        fd, option_file = tempfile.mkstemp(prefix=".client-", suffix=".cnf", dir=self.base_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(f"[client]\nuser=root\npassword={_option_value(self.root_password)}\n")
            cmd = [
                self._client,
                f"--defaults-extra-file={option_file}",
                "--protocol=SOCKET",
                f"--socket={self.socket}",
                "--default-character-set=utf8mb4",
                "--batch",
            ]
            if database is not None:
                cmd.append(f"--database={database}")
            with path.open("rb") as stdin:
                try:
                    result = subprocess.run(
                        cmd, stdin=stdin, capture_output=True, timeout=timeout, check=False
                    )
                except subprocess.TimeoutExpired as exc:
                    raise MariaDBError(f"loading {path} took more than {timeout:g} s") from exc
        finally:
            os.unlink(option_file)
        if result.returncode != 0:
            stderr = result.stderr.decode("utf-8", errors="replace").strip()
            raise MariaDBError(
                f"loading {path} failed with exit code {result.returncode}: {stderr}"
            )
