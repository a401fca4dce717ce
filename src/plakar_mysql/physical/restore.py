"""The physical restore side: write a snapshot's data directory, then make it consistent.

``plakar restore -to mysql+bin:///path/to/dir SNAP`` writes every file of
``/datadir`` under the directory, then runs the tool's ``--prepare``, which
replays the redo log copied beside the data files: the result is a data
directory that ``mariadbd --datadir=/path/to/dir`` starts on.  Last, the
backup's binary-log GTID is left in the restored ``gtid_slave_pos``, where a
binlog replay starts (:mod:`plakar_mysql.physical.point`), or one line says
why not and what to run by hand.

The directory must be empty (or absent).  Should anything fail - a file, a
missing part of the snapshot, the prepare step - everything written is removed
again, so the directory is left as it was found.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from urllib.parse import unquote, urlsplit

import jsonschema

from kloset_sdk import ConnectorInfo, Exporter, Options, Record, Report, export_each
from plakar_mysql.flavour import Flavour, ToolError, version_tuple
from plakar_mysql.kinds import PHYSICAL, kind_of, wrong_kind
from plakar_mysql.options import ConfigError, load_schema
from plakar_mysql.physical import SCHEME
from plakar_mysql.physical.manifest import (
    BINLOG_INFO,
    CHECKPOINTS,
    DATADIR,
    INFO,
    MANIFEST_PATH,
    first_of,
    parse_binlog_info,
    parse_key_values,
)
from plakar_mysql.physical.mbstream import MbstreamError, safe_path
from plakar_mysql.physical.point import find_server, leave_point
from plakar_mysql.physical.tool import BackupTool, find_backup_tool

OPTIONS = frozenset({"location", "bin_dir", "mysql_bin_dir", "mariadb_bin_dir"})
_BLOCK = 1 << 20
_PREPARE_TIMEOUT = 24 * 3600.0


class PhysicalRestoreError(RuntimeError):
    """The restore failed; one line for the user."""


def target_directory(location: str) -> str:
    """The local directory of ``mysql+bin:///path/to/dir``."""
    url = urlsplit(location)
    if url.scheme != SCHEME:
        raise ConfigError(f"location {location!r} must start with {SCHEME}:///")
    if url.netloc or not url.path.startswith("/") or url.query or url.fragment:
        raise ConfigError(
            f"location {location!r}: a physical restore writes a local directory: "
            f"{SCHEME}:///absolute/path/to/dir"
        )
    return os.path.normpath(unquote(url.path))


def relative_datadir_path(pathname: str) -> str | None:
    """Where a snapshot path goes inside the data directory; None for paths outside it.

    Plakar hands paths relative to what is restored: ``/datadir/shop/t.ibd``
    for a whole snapshot, ``/shop/t.ibd`` when only ``SNAP:/datadir`` is.
    """
    if pathname in (MANIFEST_PATH, "/", "", DATADIR):
        return None
    prefix = DATADIR + "/"
    path = pathname[len(prefix) :] if pathname.startswith(prefix) else pathname.lstrip("/")
    try:
        return safe_path(path.encode())
    except MbstreamError as exc:
        raise PhysicalRestoreError(str(exc)) from None


class PhysicalExporter(Exporter):
    """Restores a physical snapshot into an empty local directory, prepared for the server."""

    def __init__(self, options: Options, scheme: str, config: Mapping[str, str]) -> None:
        foreign = sorted(set(config) - OPTIONS)
        if foreign:
            raise ConfigError(
                f"option {', '.join(foreign)} does not apply to {SCHEME}:// restores "
                f"(known: {', '.join(sorted(OPTIONS))})"
            )
        schema = load_schema("exporter")
        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(schema).iter_errors(dict(config))
        )
        if error is not None:
            raise ConfigError(
                f"option {'.'.join(map(str, error.path)) or 'location'}: {error.message}"
            )
        if "location" not in config:
            raise ConfigError(f"missing location ({SCHEME}:///path/to/dir)")
        self.target = target_directory(config["location"])
        dirs = {config[k] for k in ("bin_dir", "mysql_bin_dir", "mariadb_bin_dir") if k in config}
        if len(dirs) > 1:
            raise ConfigError("bin_dir, mysql_bin_dir and mariadb_bin_dir disagree; give one")
        self.bin_dir = next(iter(dirs), None)
        self._check_target()  # refuse at once, before Plakar reads anything

    def info(self) -> ConnectorInfo:
        return ConnectorInfo(origin=self.target, type="mysql", root="/")

    def ping(self) -> None:
        self._check_target()

    def _check_target(self) -> bool:
        """Whether the target exists already; raise if it is not an empty directory."""
        if not os.path.lexists(self.target):
            parent = os.path.dirname(self.target)
            if not os.path.isdir(parent):
                raise PhysicalRestoreError(f"{parent} does not exist: create it first")
            return False
        if not os.path.isdir(self.target) or os.path.islink(self.target):
            raise PhysicalRestoreError(f"{self.target} is not a directory")
        if os.listdir(self.target):
            raise PhysicalRestoreError(
                f"{self.target} is not empty: a physical restore writes only into an empty "
                "directory; nothing was restored"
            )
        return True

    def export(self, records: Iterator[Record], report: Report) -> None:
        existed = self._check_target()
        os.makedirs(self.target, mode=0o750, exist_ok=True)
        try:
            self._write_all(records, report)
            tool = self._prepare()
        except BaseException:
            self._undo(existed)
            raise
        self._leave_point(tool)

    def _leave_point(self, tool: BackupTool) -> None:
        """The backup's binary-log point into the restored ``gtid_slave_pos``, where a
        binlog replay starts (see :mod:`plakar_mysql.physical.point`); the restore
        succeeds whether or not it could be set."""
        text = self._metadata(BINLOG_INFO)
        leave_point(
            self.target,
            parse_binlog_info(text) if text else None,
            tool.flavour,
            lambda: find_server(tool.path, tool.version, self.bin_dir),
            lambda line: print(f"plakar-mysql: {line}", file=sys.stderr, flush=True),
        )

    def _undo(self, existed: bool) -> None:
        """Leave the target as it was: empty, or absent."""
        if not existed:
            shutil.rmtree(self.target, ignore_errors=True)
            return
        for name in os.listdir(self.target):
            path = os.path.join(self.target, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)

    def _write_all(self, records: Iterator[Record], report: Report) -> None:
        failure = export_each(records, report, self._write)
        if failure is not None:
            raise failure

    def _write(self, record: Record) -> None:
        relative = relative_datadir_path(record.pathname)
        if relative is None or record.file_info is None:
            return
        path = os.path.join(self.target, relative)
        if record.file_info.is_dir:
            os.makedirs(path, mode=0o750, exist_ok=True)
            return
        if record.opener is None:
            return
        os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
        stream = record.open()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
            with os.fdopen(fd, "wb", buffering=0) as out:
                while data := stream.read(_BLOCK):
                    out.write(data)
        finally:
            stream.close()

    def _metadata(self, names: tuple[str, ...]) -> str | None:
        files: dict[str, bytes] = {}
        for name in names:
            path = os.path.join(self.target, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    files[name] = f.read(1 << 20)
        return first_of(names, files)

    def _prepare(self) -> BackupTool:
        """Replay the copied redo log with the tool that made the copy (same major version)."""
        if self._metadata(CHECKPOINTS) is None:
            found = kind_of(os.listdir(self.target))
            if found is not None and found is not PHYSICAL:
                raise PhysicalRestoreError(wrong_kind(found, PHYSICAL))
            raise PhysicalRestoreError(
                f"the snapshot has no {CHECKPOINTS[0]}: it is not a complete physical backup "
                "(restore the whole snapshot, or /datadir)"
            )
        info = parse_key_values(self._metadata(INFO) or "")
        made_by = info.get("tool_name", "mariadb-backup")
        flavour = Flavour.MYSQL if made_by == "xtrabackup" else Flavour.MARIADB
        version = version_tuple(info.get("tool_version", "") or info.get("server_version", ""))
        try:
            tool = find_backup_tool(flavour, version, self.bin_dir)
        except ToolError as exc:
            raise PhysicalRestoreError(f"cannot prepare the restored files: {exc}") from None
        print(f"plakar-mysql: {tool.name} --prepare in {self.target}", file=sys.stderr)
        command = [
            tool.path,
            "--no-defaults",
            "--prepare",
            f"--target-dir={self.target}",
        ]
        try:
            done = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=_PREPARE_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise PhysicalRestoreError(
                f"{tool.name} --prepare did not finish in {_PREPARE_TIMEOUT:g} s"
            ) from None
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        if done.returncode != 0 or not lines or not lines[-1].endswith("completed OK!"):
            last = next(
                (line for line in reversed(lines) if "error" in line.lower()),
                lines[-1] if lines else "no message",
            )
            raise PhysicalRestoreError(
                f"{tool.name} --prepare failed (exit status {done.returncode}): {last.strip()}"
            )
        print(f"plakar-mysql: {self.target} is ready for mariadbd --datadir", file=sys.stderr)
        return tool
