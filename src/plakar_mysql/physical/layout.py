"""The backup's InnoDB layout, read from its ``backup-my.cnf`` as data, never as an option file.

``mariadb-backup`` writes ``backup-my.cnf`` beside the data files: the InnoDB
settings the files were made with (page size, redo log size, undo
tablespaces, checksum algorithm, system tablespace files).  ``--prepare`` and
a server started on the files need them: a 64 KiB page size read with the
default 16 KiB fails.  But the file comes from the snapshot, and an option
file given to ``mariadbd`` or ``mariadb-backup`` can load a library
(``plugin_dir`` + ``plugin_load_add``), run SQL (``init_file``), or write
anywhere (logs).  So neither ever reads it: this module parses it, keeps only
:data:`ALLOWED` settings whose values pass their check, and turns them into
command-line arguments that follow ``--no-defaults``.  Every other setting
is ignored and named; a malformed file is refused in one line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from plakar_mysql.core.errors import PlakarMySQLError

FILE_NAME = "backup-my.cnf"
SIZE_LIMIT = 64 << 10
GROUP = "mysqld"

_SIZE = re.compile(r"(\d{1,20})([kKmMgG]?)")
_DATA_FILE = re.compile(
    r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}:\d{1,20}[kKmMgG]?(:autoextend(:max:\d{1,20}[kKmMgG]?)?)?"
)
_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


class LayoutError(PlakarMySQLError, ValueError):
    """``backup-my.cnf`` is malformed or holds a value out of range; one line."""


def _size(value: str) -> int | None:
    match = _SIZE.fullmatch(value)
    if match is None:
        return None
    return int(match[1]) * _UNITS[match[2].lower()]


def _page_size(value: str) -> bool:
    return _size(value) in (4096, 8192, 16384, 32768, 65536)


def _log_file_size(value: str) -> bool:
    size = _size(value)
    return size is not None and 1 << 20 <= size <= 1 << 40


def _undo_tablespaces(value: str) -> bool:
    return value.isascii() and value.isdigit() and int(value) <= 127


def _checksum(value: str) -> bool:
    return value.lower() in {
        "crc32",
        "strict_crc32",
        "full_crc32",
        "strict_full_crc32",
        "innodb",
        "strict_innodb",
        "none",
        "strict_none",
    }


def _data_file_path(value: str) -> bool:
    """``ibdata1:12M:autoextend``: plain file names in the data directory only (no
    directory, no raw device), as ``mariadb-backup`` writes them."""
    return len(value) <= 1024 and all(_DATA_FILE.fullmatch(part) for part in value.split(";"))


def _compression_level(value: str) -> bool:
    return value.isascii() and value.isdigit() and int(value) <= 9


#: The settings taken from ``backup-my.cnf``, each with the check its value must pass.
ALLOWED: dict[str, Callable[[str], bool]] = {
    "innodb_page_size": _page_size,
    "innodb_log_file_size": _log_file_size,
    "innodb_undo_tablespaces": _undo_tablespaces,
    "innodb_checksum_algorithm": _checksum,
    "innodb_data_file_path": _data_file_path,
    "innodb_compression_level": _compression_level,
}


@dataclass(frozen=True)
class Layout:
    """The checked settings (canonical name to value) and what was left out, by name."""

    settings: dict[str, str]
    ignored: tuple[str, ...] = ()

    def arguments(self) -> list[str]:
        """``--innodb-page-size=65536`` ...: for a child started with ``--no-defaults``."""
        return [
            f"--{name.replace('_', '-')}={value}" for name, value in sorted(self.settings.items())
        ]

    def ignored_line(self) -> str | None:
        """One line naming what was not taken, or None."""
        if not self.ignored:
            return None
        return (
            f"{FILE_NAME}: ignored {', '.join(self.ignored)} (only InnoDB layout settings are "
            f"taken from a snapshot: {', '.join(ALLOWED)})"
        )


def _unquote(value: str, number: int) -> str:
    """A value as MySQL reads it: quotes removed; an unquoted ``#`` starts a comment."""
    if value[:1] in ("'", '"'):
        quote = value[0]
        end = value.find(quote, 1)
        if end < 0 or value[end + 1 :].strip()[:1] not in ("", "#"):
            raise LayoutError(f"{FILE_NAME} line {number}: unbalanced quotes")
        inner = value[1:end]
        if "\\" in inner:
            raise LayoutError(f"{FILE_NAME} line {number}: escape sequences are not accepted")
        return inner
    return value.split("#", 1)[0].strip()


def _canonical(key: str) -> str:
    name = key.replace("-", "_").lower()
    return name.removeprefix("loose_")


def parse_layout(data: bytes) -> Layout:
    """The allowed settings of ``[mysqld]`` in ``data``; :class:`LayoutError` if malformed.

    ``!include`` and ``!includedir`` are never followed: they are refused.
    Settings of other groups, and settings not in :data:`ALLOWED`, are ignored.
    """
    if len(data) > SIZE_LIMIT:
        raise LayoutError(f"{FILE_NAME} is larger than {SIZE_LIMIT} bytes: not a backup's")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise LayoutError(f"{FILE_NAME} is not UTF-8 text") from None
    if "\x00" in text:
        raise LayoutError(f"{FILE_NAME} holds a NUL byte")
    group: str | None = None
    settings: dict[str, str] = {}
    ignored: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("!"):
            raise LayoutError(f"{FILE_NAME} line {number}: {line.split()[0]} is not accepted")
        if line.startswith("["):
            if not line.endswith("]") or not _KEY.fullmatch(line[1:-1].strip()):
                raise LayoutError(f"{FILE_NAME} line {number}: malformed group {line[:40]!r}")
            group = line[1:-1].strip().lower()
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if group is None or not _KEY.fullmatch(key):
            raise LayoutError(f"{FILE_NAME} line {number}: malformed line {line[:40]!r}")
        name = _canonical(key)
        check = ALLOWED.get(name)
        if group != GROUP or check is None:
            shown = name if group == GROUP else f"[{group}] {name}"
            if shown not in ignored:
                ignored.append(shown)
            continue
        value = _unquote(value.strip(), number) if sep else ""
        if not check(value):
            raise LayoutError(f"{FILE_NAME} line {number}: {name} = {value[:60]!r} is out of range")
        settings[name] = value
    return Layout(settings, tuple(ignored))
