"""One line for a file-system error, as the user should read it.

Python's own text of an ``OSError`` (``[Errno 30] Read-only file system:
'/x/y'``) names neither what was being done nor, often, the path that
mattered.  Every OSError that reaches the user from the physical backup or
restore is turned into ``cannot create /x/y: read-only file system``.
"""

from __future__ import annotations


def describe(error: OSError) -> str:
    """An OSError's cause in words, without the errno number: ``read-only file system``."""
    if error.errno is None or not error.strerror:
        return str(error)
    return error.strerror[:1].lower() + error.strerror[1:]


def os_error_line(doing: str, path: str, error: OSError) -> str:
    """What was being done, to which path, and why it failed:
    ``cannot create /x/y: read-only file system``."""
    return f"cannot {doing} {path}: {describe(error)}"
