"""The directory a physical restore writes, opened so that no one else can steer it.

A restore often runs as root.  If the directory, or one on the way to it, were
a symbolic link, or belonged to (or could be written by) another user, that
user could redirect what the restore writes, or slip files of their own -
a ``backup-my.cnf``, a table - among the restored ones before the server
starts on them.  So:

- every directory on the way is opened without following symbolic links
  (``O_NOFOLLOW``, one component at a time from ``/``), and must belong to
  root or to the restoring user and not be writable by others (unless sticky,
  as ``/tmp``);
- the target itself must be empty (or absent: it is then created, 0750) and
  belong to the restoring user, writable by no one else;
- everything below it is created relative to the directory's descriptor,
  with ``O_NOFOLLOW``, ``O_EXCL`` for files, never through a path string;
- :meth:`Target.undo` removes what was written, the same way.

Every refusal is one line naming the directory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import shutil
import stat
from collections.abc import Iterator

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_MODE = 0o750
_FILE_MODE = 0o640


class TargetError(RuntimeError):
    """The target directory cannot be used, or a file in it cannot be written; one line."""


def _describe(error: OSError) -> str:
    if error.errno == errno.EROFS:
        return "read-only file system"
    return error.strerror or str(error)


def _owner_name(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} ({uid})"
    except KeyError:
        return str(uid)


def _open_directory(name: str, parent: int | None, shown: str) -> int:
    """Open directory ``name`` (relative to ``parent``) without following a symbolic link."""
    try:
        return os.open(name, _DIRECTORY, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            with contextlib.suppress(OSError):
                if stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
                    raise TargetError(
                        f"{shown} is a symbolic link: a physical restore follows none; "
                        f"give the real path ({os.path.realpath(shown)})"
                    ) from None
            raise TargetError(f"{shown} is not a directory") from None
        raise TargetError(f"cannot open {shown}: {_describe(exc)}") from None


def _check_trusted(fd: int, shown: str, user: int) -> None:
    """A directory on the way: root's or the user's, and no one else may change it."""
    info = os.fstat(fd)
    if info.st_uid not in (0, user):
        raise TargetError(
            f"{shown} belongs to {_owner_name(info.st_uid)}: every directory on the way to "
            "a physical restore's target must belong to root or to the restoring user"
        )
    if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
        raise TargetError(
            f"{shown} is writable by other users (mode {stat.S_IMODE(info.st_mode):o}): "
            "they could replace the restore's target"
        )


def _walk(path: str, user: int) -> int:
    """A descriptor of ``path`` (absolute, normalized), every component checked."""
    fd = os.open("/", _DIRECTORY)
    shown = ""
    try:
        _check_trusted(fd, "/", user)
        for part in [p for p in path.split("/") if p]:
            shown = f"{shown}/{part}"
            child = _open_directory(part, fd, shown)
            os.close(fd)
            fd = child
            _check_trusted(fd, shown, user)
    except BaseException:
        os.close(fd)
        raise
    return fd


class Target:
    """The target directory, held open; create with :meth:`open`, finish with :meth:`close`."""

    def __init__(self, path: str, parent: int, fd: int, existed: bool) -> None:
        self.path = path
        self.existed = existed
        self._parent = parent
        self.fd = fd

    @classmethod
    def open(cls, path: str, *, create: bool) -> Target:
        """Check ``path`` (an absolute, normalized path) and open it; create it if
        absent and ``create``.  Raises :class:`TargetError`."""
        user = os.geteuid()
        parent_path, name = os.path.split(path)
        if not name:
            raise TargetError(f"{path} cannot be a physical restore's target")
        try:
            parent = _walk(parent_path, user)
        except TargetError as exc:
            if not os.path.isdir(parent_path):
                raise TargetError(f"{parent_path} does not exist: create it first") from None
            raise exc
        existed = True
        try:
            try:
                os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                existed = False
                if not create:
                    return cls(path, parent, -1, existed)
                try:
                    os.mkdir(name, _DIR_MODE, dir_fd=parent)
                except OSError as exc:
                    raise TargetError(f"cannot create {path}: {_describe(exc)}") from None
            fd = _open_directory(name, parent, path)
        except BaseException:
            os.close(parent)
            raise
        target = cls(path, parent, fd, existed)
        try:
            target._check()
        except BaseException:
            target.close(undo=not existed)
            raise
        return target

    def _check(self) -> None:
        info = os.fstat(self.fd)
        user = os.geteuid()
        if info.st_uid != user:
            raise TargetError(
                f"{self.path} belongs to {_owner_name(info.st_uid)}, not to the restoring user "
                f"{_owner_name(user)}: give a directory of your own, or an absent one"
            )
        if stat.S_IMODE(info.st_mode) & 0o022:
            raise TargetError(
                f"{self.path} is writable by other users (mode {stat.S_IMODE(info.st_mode):o}): "
                f"chmod go-w {self.path} first"
            )
        if os.listdir(self.fd):
            raise TargetError(
                f"{self.path} is not empty: a physical restore writes only into an empty "
                "directory; nothing was restored"
            )
        if os.fstatvfs(self.fd).f_flag & os.ST_RDONLY:
            raise TargetError(f"{self.path} is on a read-only file system")

    def _directory(self, parts: list[str]) -> int:
        """A descriptor of the directory ``parts`` below the target, created as needed."""
        fd = os.dup(self.fd)
        try:
            for part in parts:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, _DIR_MODE, dir_fd=fd)
                child = _open_directory(part, fd, os.path.join(self.path, part))
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def make_directory(self, relative: str) -> None:
        """Create ``relative`` (a checked ``a/b`` path) and its parents."""
        try:
            os.close(self._directory(relative.split("/")))
        except OSError as exc:
            raise TargetError(
                f"cannot create {relative} in {self.path}: {_describe(exc)}"
            ) from None

    @contextlib.contextmanager
    def new_file(self, relative: str) -> Iterator[int]:
        """A descriptor of a new file ``relative`` (a checked path), its directories created."""
        *parents, name = relative.split("/")
        try:
            directory = self._directory(parents)
            try:
                fd = os.open(name, _NEW_FILE, _FILE_MODE, dir_fd=directory)
            finally:
                os.close(directory)
        except OSError as exc:
            raise TargetError(f"cannot write {relative} in {self.path}: {_describe(exc)}") from None
        try:
            yield fd
        finally:
            os.close(fd)

    def read(self, name: str, limit: int) -> bytes | None:
        """At most ``limit`` bytes of the regular file ``name`` at the top, or None if absent."""
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.fd)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None
            return f.read(limit)

    def names(self) -> set[str]:
        return set(os.listdir(self.fd))

    def undo(self) -> None:
        """Remove everything below the target (descriptor-relative: no link is followed)."""
        for name in os.listdir(self.fd):
            info = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(name, dir_fd=self.fd)
            else:
                os.unlink(name, dir_fd=self.fd)

    def close(self, *, undo: bool = False) -> None:
        """Release the descriptors; with ``undo``, empty the target and remove it if it
        was created here."""
        try:
            if undo and self.fd >= 0:
                self.undo()
                if not self.existed:
                    os.rmdir(os.path.basename(self.path), dir_fd=self._parent)
        finally:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1
            if self._parent >= 0:
                os.close(self._parent)
                self._parent = -1
