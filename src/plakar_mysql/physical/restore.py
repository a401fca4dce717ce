"""The physical restore side: write a snapshot's data directory, then make it consistent.

``plakar restore -to mysql+bin:///path/to/dir SNAP`` writes every file of
``/datadir`` under the directory, then runs the tool's ``--prepare``, which
replays the redo log copied beside the data files: the result is a data
directory that ``mariadbd --datadir=/path/to/dir`` starts on.  Last, the
backup's binary-log GTID is left in the restored ``gtid_slave_pos``, where a
binlog replay starts (:mod:`plakar_mysql.physical.replay_point`), or one line says
why not and what to run by hand.

A snapshot of MySQL made by the clone plugin (the manifest's ``tool.name`` is
``mysql-clone``, see :mod:`plakar_mysql.physical.clone`) is a data directory
already finished by the backup: it gets no ``--prepare``, and its point is in
its own ``mysql.gtid_executed``; the restore only says so.  The manifest's word
is checked against its files as soon as it arrives: a clone has no
``*_checkpoints`` file, a mariadb-backup/XtraBackup copy has one, and a manifest
that disagrees is refused (:func:`check_tool_matches`).

The snapshot is untrusted input.  The directory must be empty (or absent),
the restoring user's, and reached through no symbolic link
(:mod:`plakar_mysql.physical.target`); only regular files and directories
under ``/datadir`` are written, relative to the directory's descriptor; every
file of ``/manifest.json`` must arrive with its size and no other file may,
before ``--prepare`` runs; ``backup-my.cnf`` is parsed for its InnoDB layout
only (:mod:`plakar_mysql.physical.layout`), never read by a program as an
option file.  Should anything fail - a file, a missing part of the snapshot,
the prepare step - everything written is removed again, so the directory is
left as it was found.

Plakar SIGKILLs the plugin when it is interrupted (SIGINT, SIGTERM), so that
clean-up is also registered with the SDK's guardian process
(``options.guard``) as soon as the directory is opened: if the plugin dies
before the restore has finished - while files arrive, during ``--prepare``, or
during the private start that sets the point - the guardian kills the
children still running (``--prepare``, the private server), removes their
temporary directories, and removes what the restore wrote (the directory
itself if the restore created it), after checking that the directory is
still the one the restore opened.  Once the restore has succeeded, the
clean-up is discarded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from urllib.parse import unquote, urlsplit

from kloset_sdk import ConnectorInfo, Exporter, Options, Record, Report, Reporter, export_each
from kloset_sdk.guard import Guard
from plakar_mysql.core.errors import PlakarMySQLError
from plakar_mysql.core.flavour import Flavour, ToolError, version_tuple
from plakar_mysql.core.kinds import PHYSICAL, kind_of_path, wrong_kind
from plakar_mysql.core.option_models import PhysicalRestoreOptions
from plakar_mysql.core.options import ConfigError, redact
from plakar_mysql.physical import SCHEME
from plakar_mysql.physical.backup_tool import (
    BackupTool,
    ToolStopped,
    ToolTimeout,
    find_backup_tool,
    run_draining,
)
from plakar_mysql.physical.clone import TOOL_NAME as CLONE_TOOL
from plakar_mysql.physical.clone import clone_restored
from plakar_mysql.physical.errors import describe, os_error_line
from plakar_mysql.physical.layout import FILE_NAME as LAYOUT_FILE
from plakar_mysql.physical.layout import SIZE_LIMIT as LAYOUT_LIMIT
from plakar_mysql.physical.layout import Layout, LayoutError, parse_layout
from plakar_mysql.physical.manifest import (
    BINLOG_INFO,
    CHECKPOINTS,
    DATADIR,
    INFO,
    MANIFEST_LIMIT,
    MANIFEST_PATH,
    METADATA_LIMIT,
    BinlogPoint,
    ManifestError,
    check_received,
    first_of,
    parse_binlog_info,
    parse_key_values,
    read_manifest,
)
from plakar_mysql.physical.mbstream import MbstreamError, safe_path
from plakar_mysql.physical.replay_point import find_server, leave_point
from plakar_mysql.physical.target import Target, TargetError

_BLOCK = 1 << 20
_PREPARE_TIMEOUT = 24 * 3600.0
_CANCELLED = "Plakar went away (the restore was cancelled): what was restored is removed"


_log = logging.getLogger(__name__)


class PhysicalRestoreError(PlakarMySQLError, RuntimeError):
    """The restore failed; one line for the user."""


def target_directory(location: str) -> str:
    """The local directory of ``mysql+bin:///path/to/dir``."""
    url = urlsplit(location)
    shown = redact(location)  # never a password in a message
    if url.scheme != SCHEME:
        raise ConfigError(f"location {shown!r} must start with {SCHEME}:///")
    if url.netloc or not url.path.startswith("/") or url.query or url.fragment:
        raise ConfigError(
            f"location {shown!r}: a physical restore writes a local directory: "
            f"{SCHEME}:///absolute/path/to/dir"
        )
    return os.path.normpath(unquote(url.path))


def relative_datadir_path(pathname: str) -> str | None:
    """Where a snapshot path goes inside the data directory; None for the snapshot's
    own entries (``/``, ``/datadir``, ``/manifest.json``).

    Plakar hands paths relative to what is restored, ``/datadir/shop/t.ibd``
    for a whole snapshot.  Any other path, or one that could leave the
    directory (``..``, NUL, not UTF-8), is refused.
    """
    if pathname in (MANIFEST_PATH, "/", "", DATADIR):
        return None
    prefix = DATADIR + "/"
    if not pathname.startswith(prefix):
        found = kind_of_path(pathname)
        if found is not None and found is not PHYSICAL:  # not a physical snapshot at all
            raise PhysicalRestoreError(wrong_kind(found, PHYSICAL))
        raise PhysicalRestoreError(
            f"{pathname!r} is not part of a physical backup (only {DATADIR} and "
            f"{MANIFEST_PATH} are); restore the whole snapshot"
        )
    try:
        return safe_path(pathname[len(prefix) :].encode(errors="surrogateescape"))
    except MbstreamError as exc:
        raise PhysicalRestoreError(f"{exc}: {pathname!r}") from None


def check_manifest_path(path: str) -> str:
    """A manifest's file path, refused like a snapshot path if it could escape."""
    relative = relative_datadir_path(f"{DATADIR}/{path}")
    if relative != path:
        raise PhysicalRestoreError(f"unsafe file name {path!r} in {MANIFEST_PATH.lstrip('/')}")
    return relative


def check_tool_matches(tool: str | None, files: Mapping[str, int]) -> None:
    """Refuse a manifest whose ``tool.name`` disagrees with its files.

    The manifest is untrusted and decides whether ``--prepare`` and the layout checks
    run: a clone has no ``*_checkpoints`` file, a mariadb-backup/XtraBackup copy has
    one.  The files must be the manifest's (:func:`check_received`), so checking its
    list decides from the files, and refuses as soon as the manifest arrives."""
    found = [name for name in CHECKPOINTS if name in files]
    if tool == CLONE_TOOL and found:
        raise PhysicalRestoreError(
            f"{MANIFEST_PATH.lstrip('/')} says the backup was made by {CLONE_TOOL}, but it "
            f"holds {found[0]} (a mariadb-backup/XtraBackup copy): refused"
        )
    if tool != CLONE_TOOL and not found:
        raise PhysicalRestoreError(
            f"the snapshot has no {CHECKPOINTS[0]}: it is not a complete physical backup "
            "(restore the whole snapshot)"
        )


class PhysicalExporter(Exporter):
    """Restores a physical snapshot into an empty local directory, prepared for the server."""

    def __init__(self, options: Options, scheme: str, config: Mapping[str, str]) -> None:
        parsed = PhysicalRestoreOptions.parse(config, scheme)
        self.target = target_directory(parsed.location)
        self.bin_dir = parsed.bin_dir
        self.guard: Guard = options.guard
        self._check_target()  # refuse at once, before Plakar reads anything
        self._received: dict[str, int] = {}
        self._expected: dict[str, int] | None = None
        self._made_by: str | None = None
        self._binlog: BinlogPoint | None = None

    def info(self) -> ConnectorInfo:
        return ConnectorInfo(origin=self.target, type="mysql", root="/")

    def ping(self) -> None:
        self._check_target()

    def _check_target(self) -> None:
        """Refuse a target that cannot be used, creating nothing."""
        Target.open(self.target, create=False).close()

    def export(self, records: Iterator[Record], report: Report) -> None:
        target = Target.open(self.target, create=True)
        # Registered before a byte is written: if the plugin dies from here on, the
        # guardian removes what was written (see the module's docstring).
        what = (
            f"empty {self.target} (an unfinished physical restore)"
            if target.existed
            else f"remove {self.target} (an unfinished physical restore)"
        )
        token = self.guard.on_exit(target.undo_action(), what)
        # Plakar gone (cancelled, killed): the restore must not finish behind its back.
        cancelled = report.cancelled if isinstance(report, Reporter) else _never
        try:
            try:
                self._write_all(target, records, report)
                self._check_files()
                # The manifest's tool, checked against its files (check_tool_matches).
                if self._made_by == CLONE_TOOL:
                    clone_restored(self.target, self._binlog, _log.info)
                else:
                    layout = self._layout(target)
                    _still_wanted(cancelled)
                    tool = self._prepare(target, layout, cancelled)
                    _still_wanted(cancelled)
                    self._leave_point(target, tool, layout)
                _still_wanted(cancelled)
            except Exception as exc:
                raise self._undone(target, exc) from None
            except BaseException:
                target.close(undo=True)
                raise
            target.close()
        finally:
            self.guard.discard(token)

    def _undone(self, target: Target, failure: Exception) -> Exception:
        """Remove what was written after ``failure``; the error to raise, which also says
        what is left if the removal failed too (``read-only file system``)."""
        try:
            target.close(undo=True)
        except TargetError as exc:
            return PhysicalRestoreError(
                f"{failure}; what was restored is left in {self.target} ({exc}): "
                "remove it by hand before restoring again"
            )
        if isinstance(failure, OSError):  # not expected: every write has its own message
            return PhysicalRestoreError(os_error_line("restore into", self.target, failure))
        return failure

    def _leave_point(self, target: Target, tool: BackupTool, layout: Layout) -> None:
        """The backup's binary-log point into the restored ``gtid_slave_pos``, where a
        binlog replay starts (see :mod:`plakar_mysql.physical.replay_point`); the restore
        succeeds whether or not it could be set."""
        text = self._metadata(target, BINLOG_INFO)
        leave_point(
            self.target,
            parse_binlog_info(text) if text else None,
            tool.flavour,
            lambda: find_server(tool.path, tool.version, self.bin_dir),
            _log.info,
            guard=self.guard,
            layout=layout.arguments(),
        )

    def _write_all(self, target: Target, records: Iterator[Record], report: Report) -> None:
        failure = export_each(records, report, lambda record: self._write(target, record))
        if failure is not None:
            raise failure

    def _write(self, target: Target, record: Record) -> None:
        if record.pathname == MANIFEST_PATH:
            self._read_manifest(record)
            return
        relative = relative_datadir_path(record.pathname)
        if relative is None or record.file_info is None:
            return
        if record.file_info.is_dir:
            target.make_directory(relative)
            return
        if not record.file_info.is_regular:
            raise PhysicalRestoreError(
                f"{record.pathname!r} is not a regular file (a symbolic link or a special "
                "file): a physical backup holds only files and directories"
            )
        if record.opener is None:
            raise PhysicalRestoreError(f"{record.pathname!r} arrived without its content")
        stream = record.open()
        written = 0
        try:
            with target.new_file(relative) as fd:
                while data := stream.read(_BLOCK):
                    _write_whole(fd, data, relative, self.target)
                    written += len(data)
        finally:
            stream.close()
        self._received[relative] = written

    def _read_manifest(self, record: Record) -> None:
        """``/manifest.json``'s file list, read whole but only up to its size limit."""
        where = MANIFEST_PATH.lstrip("/")
        if record.file_info is None or not record.file_info.is_regular or record.opener is None:
            raise ManifestError(f"{where} is not a regular file")
        if record.file_info.size > MANIFEST_LIMIT:
            raise ManifestError(
                f"{where} is {record.file_info.size} bytes, over the limit of "
                f"{MANIFEST_LIMIT >> 20} MiB: refused"
            )
        stream = record.open()
        try:
            data = bytearray()
            while len(data) <= MANIFEST_LIMIT and (block := stream.read(_BLOCK)):
                data += block
        finally:
            stream.close()
        summary = read_manifest(bytes(data), check_manifest_path)
        check_tool_matches(summary.tool, summary.files)
        self._expected = summary.files
        self._made_by = summary.tool
        self._binlog = summary.binlog

    def _check_files(self) -> None:
        """Before anything reads the files: they are exactly the manifest's, with its sizes."""
        if self._expected is None:
            raise ManifestError(
                f"the snapshot has no {MANIFEST_PATH}: restore the whole snapshot "
                "(a physical restore checks every file against it)"
            )
        check_received(self._expected, self._received)

    def _layout(self, target: Target) -> Layout:
        """The backup's checked InnoDB layout (none without ``backup-my.cnf``)."""
        data = target.read(LAYOUT_FILE, LAYOUT_LIMIT + 1)
        if data is None:
            return Layout({})
        try:
            layout = parse_layout(data)
        except LayoutError as exc:
            raise PhysicalRestoreError(str(exc)) from None
        ignored = layout.ignored_line()
        if ignored is not None:
            _log.info(ignored)
        return layout

    def _metadata(self, target: Target, names: tuple[str, ...]) -> str | None:
        files: dict[str, bytes] = {}
        for name in names:
            data = target.read(name, METADATA_LIMIT)
            if data is not None:
                files[name] = data
        return first_of(names, files)

    def _prepare(self, target: Target, layout: Layout, cancelled: Callable[[], bool]) -> BackupTool:
        """Replay the copied redo log with the tool that made the copy (same major
        version), reading no option file: the layout comes as arguments.  Stopped
        (the tool killed) as soon as ``cancelled()``: Plakar went away."""
        if self._metadata(target, CHECKPOINTS) is None:
            raise PhysicalRestoreError(
                f"the snapshot has no {CHECKPOINTS[0]}: it is not a complete physical backup "
                "(restore the whole snapshot)"
            )
        info = parse_key_values(self._metadata(target, INFO) or "")
        made_by = info.get("tool_name", "mariadb-backup")
        flavour = Flavour.MYSQL if made_by == "xtrabackup" else Flavour.MARIADB
        version = version_tuple(info.get("tool_version", "") or info.get("server_version", ""))
        try:
            tool = find_backup_tool(flavour, version, self.bin_dir)
        except ToolError as exc:
            raise PhysicalRestoreError(f"cannot prepare the restored files: {exc}") from None
        _log.info(f"{tool.name} --prepare in {self.target}")
        command = [
            tool.path,
            "--no-defaults",
            *layout.arguments(),
            "--prepare",
            f"--target-dir={self.target}",
        ]
        try:
            code, lines = run_draining(command, _PREPARE_TIMEOUT, self.guard, stop=cancelled)
        except ToolTimeout as exc:
            raise PhysicalRestoreError(f"{exc} (--prepare)") from None
        except ToolStopped:
            raise PhysicalRestoreError(_CANCELLED) from None
        except OSError as exc:
            raise PhysicalRestoreError(os_error_line("run", tool.path, exc)) from None
        if code != 0 or not lines or not lines[-1].endswith("completed OK!"):
            last = next(
                (line for line in reversed(lines) if "error" in line.lower()),
                lines[-1] if lines else "no message",
            )
            raise PhysicalRestoreError(
                f"{tool.name} --prepare failed (exit status {code}): {last.strip()}"
            )
        _log.info(f"{self.target} is ready for mariadbd --datadir")
        return tool


def _still_wanted(cancelled: Callable[[], bool]) -> None:
    """Raise if Plakar went away (killed, or cancelled the restore): a restore it can
    no longer report must not finish behind its back, since the same command, run
    again, needs the directory as it was."""
    if cancelled():
        raise PhysicalRestoreError(_CANCELLED)


def _never() -> bool:
    return False


def _write_whole(fd: int, data: bytes, relative: str, target: str) -> None:
    """All of ``data`` to ``fd`` (a write may be partial), or a one-line error."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except OSError as exc:
            raise TargetError(f"cannot write {relative} in {target}: {describe(exc)}") from None
