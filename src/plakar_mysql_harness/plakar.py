"""Drive the real plakar CLI (``bin/plakar``, Plakar v1.1.4) from tests.

Every call runs in a private home under the test's temporary directory:
HOME and the XDG config/cache/data directories are the test's own (so are
plakar's configuration, cache, ``cached`` daemon and installed plugins),
``PLAKAR_PASSPHRASE`` carries a random passphrase for an encrypted store,
and plakar's update ("security") check is disabled before the first real
command, so it never tries to reach the network.

The cache directory is not under the test's directory but in a short-named
temporary directory (removed by :meth:`Plakar.close`, or at exit): plakar
talks to its ``cached`` daemon through ``$XDG_CACHE_HOME/plakar/cached.sock``
and a Unix socket path is limited to 107 bytes, which pytest's tmp_path
easily exceeds. plakar then prints "failed to run cached" and still exits 0;
:meth:`Plakar.run` treats such error lines as failures.

Syntax of the plakar commands used here (Plakar v1.1.4). Go's flag parsing
stops at the first operand, so every option must come before the operands::

    plakar -disable-security-check          # records the choice, exits
    plakar at STORE create [-plaintext]     # encrypted with $PLAKAR_PASSPHRASE, or not
    plakar pkg add /abs/path/NAME_vX.Y.Z_OS_ARCH.ptar
    plakar pkg list                         # "NAME@vX.Y.Z" lines (pkg show: same)
    plakar at STORE backup [-o KEY=VALUE]... URI
    plakar at STORE ls [-uuid]              # snapshots, newest first
    plakar at STORE ls [-recursive] SNAPSHOT[:PATH]
    plakar at STORE restore -to URI_OR_DIR [-o KEY=VALUE]... SNAPSHOT[:PATH]
    plakar at STORE check [SNAPSHOT[:PATH]]...

``-o KEY=VALUE`` (``-o KEY`` alone means ``KEY=true``) adds KEY to the
configuration map handed to the importer (backup) or exporter (restore),
next to ``location`` (the URI, normalised to ``proto://rest``); an explicit
``-o location=...`` wins over the URI.

A backup whose importer reported errors still exits 0 (plakar commits the
snapshot and prints ``completed with N errors``): :meth:`Plakar.backup`
turns that into a failure unless ``allow_errors=True``.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLAKAR_BIN = ROOT / "bin" / "plakar"
DIST = ROOT / "dist"
DEFAULT_TIMEOUT = 300.0

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# "<8 hex>: backup completed without errors in 28ms (in: 0 B, out: 1.4 MiB)"
_RESULT = re.compile(
    r"^(?P<short>[0-9a-f]{8}): (?P<workflow>\w+) completed "
    r"(?:without errors|with (?P<errors>\d+) errors?) in ",
    re.M,
)
# "plakar ls -uuid": "<RFC 3339 time> <64 hex id> <size> <duration> <source dir>[ tags=...]"
_SNAPSHOT = re.compile(r"^\S+\s+(?P<id>[0-9a-f]{64})\s", re.M)
# "plakar ls SNAPSHOT:PATH": "<time> <mode> <user> <group> <size> <unit> <name>[ -> <target>]"
_ENTRY = re.compile(
    r"^(?P<mtime>\S+) (?P<mode>\S+) +(?P<user>\S+) +(?P<group>\S+) +"
    r"(?P<size>\S+ \S+) (?P<name>.*)$"
)


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def describe(args: Sequence[str], returncode: int | None, stdout: str, stderr: str) -> str:
    """Readable account of one plakar run, for assertion messages."""
    return (
        f"$ {' '.join(args)}\n"
        f"exit status: {returncode}\n"
        f"--- stdout ---\n{stdout.rstrip()}\n"
        f"--- stderr ---\n{stderr.rstrip()}"
    )


@dataclass(frozen=True)
class Entry:
    """One line of ``plakar ls SNAPSHOT:PATH``."""

    name: str
    mode: str
    size: str
    mtime: str
    user: str
    group: str

    @property
    def is_dir(self) -> bool:
        return self.mode.startswith("d")


class Plakar:
    """The plakar CLI, run in a private home below ``base``.

    ``store`` is where the test's encrypted store lives: a path (by default
    ``base/plakar-store``), or any location plakar takes after ``at``
    (``@name``, ``http://...``, an archive ``.ptar``); it exists once
    :meth:`create_store` has run (:func:`make_plakar` does that). Call
    :meth:`close` (or use it as a context manager) to remove the cache
    directory at once rather than at exit.
    """

    def __init__(
        self,
        base: Path,
        *,
        binary: Path = PLAKAR_BIN,
        passphrase: str | None = None,
        env: Mapping[str, str] | None = None,
        store: Path | str | None = None,
    ) -> None:
        if not binary.is_file():
            raise AssertionError(f"{binary} is missing: run `make build` first")
        self.base = Path(base)
        self.binary = binary
        self.home = self.base / "plakar-home"
        self.store = store if store is not None else self.base / "plakar-store"
        self.cache_home = Path(tempfile.mkdtemp(prefix="plakar-", dir=_short_tmp()))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.cache_home, ignore_errors=True)
        self.passphrase = passphrase if passphrase is not None else secrets.token_urlsafe(24)
        self.extra_env: dict[str, str] = dict(env or {})
        self.home.mkdir(parents=True, exist_ok=True)
        # Only records the choice in the private cache directory and exits.
        self.run("-disable-security-check")

    @property
    def env(self) -> dict[str, str]:
        """Environment of every plakar run."""
        env = {
            key: value
            for key, value in os.environ.items()
            # PLAKAR_REPOSITORY / PLAKAR_TAGS / ... of the caller, and
            # REEXEC (which would keep `plakar cached` in the foreground).
            if not key.startswith("PLAKAR_") and key != "REEXEC"
        }
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_CACHE_HOME=str(self.cache_home),
            XDG_DATA_HOME=str(self.home / ".local" / "share"),
            PLAKAR_PASSPHRASE=self.passphrase,
        )
        env.update(self.extra_env)
        return env

    def close(self) -> None:
        """Remove the cache directory (extracted plugins, plakar's caches)."""
        self._cleanup()

    def __enter__(self) -> Plakar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run(
        self,
        *args: str,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``plakar ARGS...``; on failure (with ``check``) raise AssertionError.

        Output is decoded as UTF-8 (undecodable bytes replaced), with
        terminal colour codes removed.
        """
        raw = self.run_bytes(*args, check=check, timeout=timeout, cwd=cwd)
        return subprocess.CompletedProcess(
            raw.args, raw.returncode, _text(raw.stdout), _text(raw.stderr)
        )

    def run_bytes(
        self,
        *args: str,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Like :meth:`run`, with stdout and stderr left as bytes."""
        cmd = [str(self.binary), *args]
        # Its own process group: on a timeout plakar, its plugins and their
        # clients all go at once, so the test fails now and nothing is left
        # holding the output pipes open.
        with subprocess.Popen(
            cmd,
            env=self.env,
            cwd=cwd if cwd is not None else self.base,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        ) as child:
            try:
                stdout, stderr = child.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                running = _group_processes(child.pid)
                os.killpg(child.pid, signal.SIGKILL)
                stdout, stderr = child.communicate()
                raise AssertionError(
                    f"plakar timed out after {timeout:g}s; still running:\n{running}\n"
                    + describe(cmd, None, _text(stdout), _text(stderr))
                ) from None
        proc = subprocess.CompletedProcess(cmd, child.returncode, stdout, stderr)
        if check and (proc.returncode != 0 or self._reported_error(proc)):
            raise AssertionError(
                describe(cmd, proc.returncode, _text(proc.stdout), _text(proc.stderr))
            )
        return proc

    def _reported_error(self, proc: subprocess.CompletedProcess[bytes]) -> bool:
        """Whether plakar printed a fatal "<argv0>: <error>" line.

        plakar exits 0 when the state rebuild through its cached daemon fails
        (e.g. "failed to run cached"), after printing such a line.
        """
        prefix = f"{self.binary}: ".encode()
        lines = (proc.stdout + b"\n" + proc.stderr).splitlines()
        return any(line.startswith(prefix) for line in lines)

    def at(
        self, *args: str, check: bool = True, timeout: float = DEFAULT_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run ``plakar at STORE ARGS...``."""
        return self.run("at", str(self.store), *args, check=check, timeout=timeout)

    # --- store ---------------------------------------------------------

    def create_store(self, *, encrypted: bool = False) -> Path | str:
        """Create the store: encrypted (passphrase: ``self.passphrase``) or not.

        Plakar derives an encrypted store's key with Argon2id (256 MiB, 4 passes)
        at every command, about 1.5 s of CPU each: a test whose subject is not
        the store uses a plaintext one (the plugin sees the same protocol
        either way), and the tests of encryption, of storage and of the
        documented commands use encrypted ones."""
        self.at("create", *(() if encrypted else ("-plaintext",)))
        return self.store

    def snapshots(self) -> list[str]:
        """Full ids of the store's snapshots, newest first."""
        out = self.at("ls", "-uuid").stdout
        return [m["id"] for m in _SNAPSHOT.finditer(out)]

    def resolve(self, snapshot: str) -> str:
        """Full id of the one snapshot whose id starts with ``snapshot``."""
        found = [s for s in self.snapshots() if s.startswith(snapshot)]
        if len(found) != 1:
            raise AssertionError(f"{len(found)} snapshots match {snapshot!r}: {found}")
        return found[0]

    def check(self, *snapshots: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """``plakar check`` (every snapshot when none is given); returns stdout."""
        proc = self.at("check", *snapshots, timeout=timeout)
        if re.search(r"^[0-9a-f]{8}: KO ", proc.stdout + proc.stderr, re.M):
            raise AssertionError("check reported errors\n" + proc.stdout + proc.stderr)
        return proc.stdout

    # --- packages ------------------------------------------------------

    def pkg_add(self, ptar: Path) -> subprocess.CompletedProcess[str]:
        """Install a package from a local .ptar file."""
        return self.run("pkg", "add", str(Path(ptar).resolve()))

    def pkg_list(self) -> list[str]:
        """Installed packages, as ``NAME@VERSION``."""
        return self.run("pkg", "list").stdout.split()

    def plugin_dir(self, ptar_name: str) -> Path:
        """Where plakar extracted an installed package (API v1.1.0 layout)."""
        stem = ptar_name.removesuffix(".ptar")
        return self.cache_home / "plakar" / "plugins" / "v1.1.0" / stem

    # --- snapshots -----------------------------------------------------

    def backup(
        self,
        uri: str,
        *opts: str,
        allow_errors: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> str:
        """Back ``uri`` up; each of ``opts`` is a ``KEY=VALUE`` for ``-o``.

        Returns the full id of the new snapshot.
        """
        args = ["backup"]
        for opt in opts:
            args += ["-o", opt]
        args.append(uri)
        proc = self.at(*args, timeout=timeout)
        results = [m for m in _RESULT.finditer(proc.stdout) if m["workflow"] == "backup"]
        if len(results) != 1:
            raise AssertionError(
                "no backup result line in plakar's output\n"
                + describe(args, proc.returncode, proc.stdout, proc.stderr)
            )
        result = results[0]
        if result["errors"] and not allow_errors:
            raise AssertionError(
                f"backup completed with {result['errors']} error(s)\n"
                + describe(args, proc.returncode, proc.stdout, proc.stderr)
            )
        return self.resolve(result["short"])

    def ls(self, snapshot_id: str, path: str = "/", *, recursive: bool = False) -> list[Entry]:
        """Entries below ``path`` in a snapshot (names are full paths if recursive)."""
        args = ["ls"]
        if recursive:
            args.append("-recursive")
        args.append(f"{snapshot_id}:{path}")
        entries = []
        for line in self.at(*args).stdout.splitlines():
            m = _ENTRY.match(line)
            if m is None:
                raise AssertionError(f"unexpected `plakar ls` line: {line!r}")
            entries.append(
                Entry(
                    name=m["name"],
                    mode=m["mode"],
                    size=m["size"],
                    mtime=m["mtime"],
                    user=m["user"],
                    group=m["group"],
                )
            )
        return entries

    def cat(self, snapshot_id: str, path: str, *, timeout: float = DEFAULT_TIMEOUT) -> bytes:
        """Content of one file of a snapshot."""
        return self.run_bytes(
            "at", str(self.store), "cat", f"{snapshot_id}:{path}", timeout=timeout
        ).stdout

    def files(self, snapshot_id: str, path: str = "/") -> dict[str, bytes]:
        """Every file below ``path`` of a snapshot, by its full path, from one
        ``plakar restore`` into a directory (one plakar run instead of a
        ``cat`` per file)."""
        with tempfile.TemporaryDirectory(dir=self.base) as tmp:
            self.restore(f"{snapshot_id}:{path}", tmp)
            root = Path(tmp)
            prefix = path.rstrip("/")
            return {
                f"{prefix}/{file.relative_to(root).as_posix()}": file.read_bytes()
                for file in root.rglob("*")
                if file.is_file()
            }

    def restore(
        self,
        snapshot_or_path: str,
        to_uri: str | Path,
        *opts: str,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Restore ``SNAPSHOT[:PATH]`` to a URI or a directory (``-to``), each of
        ``opts`` as ``-o``; ``check=False`` returns a failed restore instead of raising."""
        args = ["restore", "-to", str(to_uri)]
        for opt in opts:
            args += ["-o", opt]
        args.append(snapshot_or_path)
        return self.at(*args, check=check, timeout=timeout)


def assert_no_clear_data(root: Path, needles: Sequence[bytes]) -> None:
    """Every file below ``root`` (a store, or what a storage server holds) is
    free of each of ``needles``; and there is at least one file."""
    files = [path for path in root.rglob("*") if path.is_file()]
    assert files, f"nothing stored below {root}"
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"{needle!r} in clear in {path}"


def _group_processes(pgid: int) -> str:
    """``ps`` lines (state, CPU, elapsed time, command) of the session ``pgid`` leads."""
    listing = subprocess.run(
        ["ps", "-o", "pid=,stat=,pcpu=,etime=,args=", "--sid", str(pgid)],
        capture_output=True,
        text=True,
        check=False,
    )
    return listing.stdout.rstrip() or "(none)"


def _text(data: str | bytes | None) -> str:
    """Decoded, colour-free text of a captured output."""
    if data is None:
        return ""
    if isinstance(data, bytes):
        data = data.decode("utf-8", errors="replace")
    return strip_ansi(data)


def _short_tmp() -> str:
    """A temporary directory with a short enough path for Unix sockets."""
    tmp = tempfile.gettempdir()
    return tmp if len(tmp) <= 32 else "/tmp"  # noqa: S108 (the parent of a mkdtemp)


def find_ptar(dist: Path = DIST) -> Path:
    """The one package ``make build`` left in dist/."""
    found = sorted(dist.glob("*.ptar"))
    if len(found) != 1:
        raise AssertionError(f"expected exactly one .ptar in {dist} (run `make build`): {found}")
    return found[0]


def make_plakar(
    tmp_path: Path,
    *,
    ptar: Path | None = None,
    store: Path | None = None,
    encrypted: bool = False,
) -> Plakar:
    """Plakar with a fresh private home, an empty store (at ``store`` when given;
    encrypted or not, see :meth:`Plakar.create_store`) and the package built by
    ``make build`` installed."""
    plakar = Plakar(tmp_path, store=store)
    plakar.pkg_add(ptar if ptar is not None else find_ptar())
    plakar.create_store(encrypted=encrypted)
    return plakar
