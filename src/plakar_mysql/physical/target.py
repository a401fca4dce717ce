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
- :meth:`Target.undo` removes what was written, the same way; so does
  :func:`remove_restored`, the undo action a guardian process runs if the
  restore is killed (:meth:`Target.undo_action`), which first checks that the
  directory is still the one the restore opened (device and inode).

Every refusal, and every file-system error on the way, is one line naming the
path and what was being done (:func:`os_error_line`).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import pwd
import shutil
import stat
from collections.abc import Callable, Iterator

from plakar_mysql.core.errors import PlakarMySQLError
from plakar_mysql.physical.errors import describe, os_error_line

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_MODE = 0o750
_FILE_MODE = 0o640


class TargetError(PlakarMySQLError, RuntimeError):
    """The target directory cannot be used, or a file in it cannot be written; one line."""


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
        raise TargetError(f"cannot open {shown}: {describe(exc)}") from None


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


def _empty(fd: int, path: str) -> None:
    """Remove everything below the open directory ``fd`` (shown as ``path``), relative to
    its descriptor: no symbolic link is followed.  Raises :class:`TargetError`."""
    try:
        names = os.listdir(fd)
    except OSError as exc:
        raise TargetError(os_error_line("list", path, exc)) from None
    for name in names:
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(name, dir_fd=fd)
            else:
                os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            continue  # already gone
        except OSError as exc:
            raise TargetError(os_error_line("remove", os.path.join(path, name), exc)) from None


def remove_restored(path: str, device: int, inode: int, created: bool) -> None:
    """Undo an unfinished restore into ``path``: empty it, and remove it if the restore
    created it (``created``).

    The guardian process runs this once the plugin is gone (killed, or interrupted),
    so the path is checked again the way :meth:`Target.open` does: reached without
    following a symbolic link, and still the very directory the restore opened
    (``device``, ``inode``).  A directory that is gone is left so; one that is not
    the restore's any more is left alone, and so is everything else.  Raises
    :class:`TargetError` (one line) when something cannot be removed.
    """
    parent_path, name = os.path.split(path)
    try:
        parent = _walk(parent_path, os.geteuid())
    except TargetError as exc:
        raise TargetError(f"{path} was left alone: {exc}") from None
    try:
        try:
            os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return
        try:
            fd = _open_directory(name, parent, path)
        except TargetError as exc:
            raise TargetError(f"{path} was left alone: {exc}") from None
        try:
            info = os.fstat(fd)
            if (info.st_dev, info.st_ino) != (device, inode):
                raise TargetError(
                    f"{path} was left alone: it is not the directory the restore wrote any more"
                )
            _empty(fd, path)
        finally:
            os.close(fd)
        if created:
            try:
                os.rmdir(name, dir_fd=parent)
            except OSError as exc:
                raise TargetError(os_error_line("remove", path, exc)) from None
    finally:
        os.close(parent)


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
                    raise TargetError(f"cannot create {path}: {describe(exc)}") from None
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
        try:
            entries = os.listdir(self.fd)
        except OSError as exc:
            raise TargetError(os_error_line("list", self.path, exc)) from None
        if entries:
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
            raise TargetError(f"cannot create {relative} in {self.path}: {describe(exc)}") from None

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
            raise TargetError(f"cannot write {relative} in {self.path}: {describe(exc)}") from None
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
            try:
                return f.read(limit)
            except OSError as exc:
                raise TargetError(
                    os_error_line("read", os.path.join(self.path, name), exc)
                ) from None

    def names(self) -> set[str]:
        return set(os.listdir(self.fd))

    def undo(self) -> None:
        """Remove everything below the target (descriptor-relative: no link is followed).
        Raises :class:`TargetError` (one line)."""
        _empty(self.fd, self.path)

    def undo_action(self) -> Callable[[], None]:
        """What a guardian runs if the restore is killed: :func:`remove_restored` of this
        very directory (a picklable callable)."""
        info = os.fstat(self.fd)
        return functools.partial(
            remove_restored, self.path, info.st_dev, info.st_ino, not self.existed
        )

    def close(self, *, undo: bool = False) -> None:
        """Release the descriptors; with ``undo``, empty the target and remove it if it
        was created here (:class:`TargetError` if that fails)."""
        try:
            if undo and self.fd >= 0:
                self.undo()
                if not self.existed:
                    try:
                        os.rmdir(os.path.basename(self.path), dir_fd=self._parent)
                    except OSError as exc:
                        raise TargetError(os_error_line("remove", self.path, exc)) from None
        finally:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1
            if self._parent >= 0:
                os.close(self._parent)
                self._parent = -1
